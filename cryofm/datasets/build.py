"""Build patch stores: simulated from atomic models, or cut from real maps.

Work is spread over worker processes (`multiprocessing`, one task per entry) with a tqdm bar.
Each entry's randomness comes from `SeedSequence((seed, crc32(entry id)))`, so a store is the
same whatever the number of workers or the order of the inputs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryofm.datasets.patches import extract_patches
from cryofm.datasets.simulate import B_EXTRA_RANGE, STRUCTURE_SUFFIXES, entry_id, random_rotation, simulate_map
from cryofm.datasets.split import read_entry_list
from cryofm.datasets.store import SPLIT_TRAIN, SPLIT_VALIDATION, PatchRecord, PatchStoreWriter
from cryofm.errors import CryofmInputError

__all__ = ["SimulationSettings", "find_structures", "simulate_entry", "build_simulated_store", "build_map_store",
           "MAP_SUFFIXES"]

MAP_SUFFIXES = (".mrc", ".map", ".mrcs", ".rec", ".mrc.gz", ".map.gz")


@dataclass(frozen=True)
class SimulationSettings:
    """How maps are simulated and cut.

    rotations: random rotations (maps) per entry; patches: patches per map; box: patch side;
    voxel_size: A; b_range: extra B-factor range (A^2), uniform; min_fraction: density fraction to
    keep a patch; seed: base seed.
    """

    rotations: int = 2
    patches: int = 3
    box: int = 64
    voxel_size: float = 1.5
    b_range: tuple[float, float] = B_EXTRA_RANGE
    min_fraction: float = 0.005
    seed: int = 0


def _find(paths, suffixes, what: str) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.iterdir() if f.name.lower().endswith(suffixes)))
        elif p.is_file():
            found.append(p)
        else:
            raise CryofmInputError(f"{p}: no such file or folder; pass {what} files or folders holding them")
    if not found:
        raise CryofmInputError(f"no {what} files found in {[str(p) for p in paths]} (suffixes {suffixes})")
    return found


def find_structures(paths) -> list[Path]:
    """Structure files from a mix of files and folders (folders: PDB/mmCIF files inside, sorted)."""
    return _find(paths, STRUCTURE_SUFFIXES, "structure")


def _entry_rng(seed: int, entry: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(entry.encode())]))


def simulate_entry(path: Path, settings: SimulationSettings, split: int = SPLIT_TRAIN) -> PatchRecord:
    """Simulate `settings.rotations` maps of one structure and cut its patches."""
    entry = entry_id(path)
    rng = _entry_rng(settings.seed, entry)
    patches, bs, qs, cs = [], [], [], []
    for _ in range(settings.rotations):
        q, _ = random_rotation(rng)
        b = float(rng.uniform(*settings.b_range))
        sim = simulate_map(path, b_extra=b, quaternion=q, voxel_size=settings.voxel_size, min_box=settings.box)
        for p in extract_patches(sim.volume.data, sim.atom_voxels, settings.patches, rng, box=settings.box,
                                 min_fraction=settings.min_fraction):
            patches.append(p.data)
            bs.append(b)
            qs.append(q)
            cs.append(p.centre)
    box = settings.box
    return PatchRecord(
        entry,
        np.stack(patches) if patches else np.zeros((0, box, box, box), np.float32),
        np.asarray(bs, np.float32),
        np.asarray(qs, np.float32).reshape(-1, 4),
        np.asarray(cs, np.float32).reshape(-1, 3),
        split,
    )


def _work(args):
    path, settings, split = args
    try:
        return simulate_entry(path, settings, split), None
    except Exception as exc:  # one bad file must not stop a corpus run; reported at the end
        return None, f"{path}: {type(exc).__name__}: {exc}"


def _run(tasks, worker, writer: PatchStoreWriter, workers: int, progress: bool, desc: str) -> list[str]:
    from cryofm.progress import progress_bar

    errors: list[str] = []
    bar = progress_bar(total=len(tasks), desc=desc, unit="entry", disable=not progress)
    if workers <= 1:
        results = map(worker, tasks)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap(worker, tasks, chunksize=1)
    try:
        for record, err in results:
            if err:
                errors.append(err)
            else:
                writer.add(record)
            bar.update(1)
            bar.set_postfix(patches=writer.count + writer._buffered)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        bar.close()
    return errors


def build_simulated_store(
    structures,
    output: str | os.PathLike,
    *,
    settings: SimulationSettings = SimulationSettings(),
    validation_entries: str | os.PathLike | list[str] | None = None,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Path, int, list[str]]:
    """Simulate every structure into one patch store, validation entries flagged `split == 1`.

    Returns:
        (store path, number of patches, list of per-file errors).
    """
    files = find_structures(structures)
    if isinstance(validation_entries, (str, os.PathLike)):
        val = set(read_entry_list(validation_entries))
    else:
        val = {v.lower() for v in (validation_entries or [])}
    ids = [entry_id(f) for f in files]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise CryofmInputError(f"the same entry appears in several files: {dup}; pass each entry once")
    writer = PatchStoreWriter(output, box=settings.box, voxel_size=settings.voxel_size, overwrite=overwrite,
                              source="simulated (gemmi DensityCalculatorE)",
                              settings={**settings.__dict__, "b_range": list(settings.b_range)})
    tasks = [(f, settings, SPLIT_VALIDATION if i in val else SPLIT_TRAIN) for f, i in zip(files, ids)]
    return _fill(writer, tasks, _work, workers, progress, "simulate", "structure")


def _fill(writer: PatchStoreWriter, tasks, worker, workers: int, progress: bool, desc: str,
          what: str) -> tuple[Path, int, list[str]]:
    """Run the tasks into the writer and put the store in place, or leave nothing new behind (an
    earlier store at the target is replaced only by a finished, non-empty one)."""
    try:
        errors = _run(tasks, worker, writer, workers, progress, desc)
        writer.flush()
        if writer.count == 0:
            _refuse_empty(writer.path, errors, len(tasks), what)
        path = writer.close({"errors": errors} if errors else None)
    except BaseException:
        writer.discard()
        raise
    return path, writer.count, errors


def _refuse_empty(path: Path, errors: list[str], n_files: int, what: str) -> None:
    """No patch written: say why (the first file's error, if any)."""
    if errors:
        why = f"{len(errors)} of {n_files} {what} file(s) could not be used (first: {errors[0]})"
        fix = f"pass readable {what} files"
    else:
        why = f"no {what} file gave a patch with enough density"
        fix = "pass larger inputs or a smaller --box"
    raise CryofmInputError(f"no patch could be written, so {path} was not written: {why}; {fix}")


def _map_work(args):
    path, settings, split = args
    try:
        return map_patches(path, settings, split), None
    except Exception as exc:
        return None, f"{path}: {type(exc).__name__}: {exc}"


def map_patches(path: Path, settings: SimulationSettings, split: int = SPLIT_TRAIN) -> PatchRecord:
    """Patches of a real map, resampled to `settings.voxel_size`, centres on voxels above threshold."""
    from cryofm.io import read_map

    from cryofm.datasets._resample import resample_to

    vol = read_map(path)
    data = resample_to(vol, settings.voxel_size)
    rng = _entry_rng(settings.seed, path.name)
    thr = np.percentile(data, 99.0)
    cand = np.argwhere(data > 0.2 * thr).astype(np.float64)
    if len(cand) == 0:
        cand = np.argwhere(data >= data.max()).astype(np.float64)
    box = settings.box
    ps = extract_patches(data, cand, settings.patches * settings.rotations, rng, box=box,
                         min_fraction=settings.min_fraction)
    n = len(ps)
    return PatchRecord(
        path.name,
        np.stack([p.data for p in ps]) if ps else np.zeros((0, box, box, box), np.float32),
        np.full(n, np.nan, np.float32),
        np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        np.asarray([p.centre for p in ps], np.float32).reshape(-1, 3),
        split,
    )


def build_map_store(maps, output, *, settings: SimulationSettings = SimulationSettings(), workers: int = 2,
                    overwrite: bool = False, progress: bool = True, split: int = SPLIT_TRAIN):
    """Cut patches from real maps (resampled to 1.5 A) into a patch store."""
    files = _find(maps, MAP_SUFFIXES, "map")
    writer = PatchStoreWriter(output, box=settings.box, voxel_size=settings.voxel_size, overwrite=overwrite,
                              source="real maps", settings={**settings.__dict__, "b_range": list(settings.b_range)})
    return _fill(writer, [(f, settings, split) for f in files], _map_work, workers, progress, "maps", "map")
