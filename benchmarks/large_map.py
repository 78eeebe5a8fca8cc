"""A large map through the CLI: `python benchmarks/large_map.py [--box 256] [--voxel 1.05]`.

The restoration benchmark (`restore.py`) scores 64^3 boxes, which the prior samples whole. A
user's map is usually larger: a 256^3 box at 1.05 A is 179^3 on the prior's 1.5 A grid, over
the whole-box limit, so it is restored in overlapping tiles. This script times that as a user
meets it and checks that the tiles cost no quality:

1. a crowded ground truth of `--box`^3 at `--voxel` A: the models in data/ (outside the training
   corpus) simulated with gemmi (extra B 30 A^2) at random rotations and packed one per cell of
   a grid, so density fills the box and no tile is skipped as solvent (the worst case for time);
2. the protocol's degradations at that voxel size: two half maps on one FSC curve of
   ../shared/bench/fsc_curves.csv (`--level`, default 4.3A), and the +-60 degree wedge;
3. `cryofm denoise H1 H2` and `cryofm wedge MAP --tilt-range -60 60` with default settings in a
   subprocess each (`--device`, default auto: the GPU where there is one), timed by wall clock
   (imports, model loading, reading and writing included) with the child's peak memory;
4. FSC_AUC against the truth (mean over shells 1 .. n/2 - 1, full box, no mask) of the
   observation, the masked-Wiener baseline and cryofm's output, and the tiles cryofm sampled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _protocol as P  # noqa: E402

from cryofm.io import Volume, write_map  # noqa: E402

CELL_A = 64.0  # the packing grid's cell, A: a little larger than the data/ models (~50-60 A)


def crowded_truth(box: int, voxel: float, seed: int = 0) -> np.ndarray:
    """`box`^3 at `voxel` A: the data/ models at random rotations, one per grid cell, centred in
    it (+-2 A jitter); where neighbours meet the density is the larger of theirs (as in
    `cryofm.training.crowd`), not their sum.  Zero mean, unit std."""
    from cryofm.datasets.simulate import random_rotation, simulate_map

    rng = np.random.default_rng(seed)
    cells = max(1, int(box * voxel // CELL_A))
    cell = box / cells
    out = np.zeros((box,) * 3)
    models = list(P.MODELS.values())
    for idx in np.ndindex(cells, cells, cells):
        q, _ = random_rotation(rng)
        sim = simulate_map(models[rng.integers(len(models))], b_extra=30.0, quaternion=q, voxel_size=voxel,
                           min_box=16)
        m = np.asarray(sim.volume.data, dtype=np.float64)
        centre = (np.array(idx) + 0.5) * cell + rng.uniform(-2.0, 2.0, 3) / voxel
        lo = np.round(centre - sim.atom_voxels.mean(axis=0)).astype(int)  # where m's voxel 0 lands
        src = tuple(slice(max(0, -l), min(s, box - l)) for l, s in zip(lo, m.shape))
        dst = tuple(slice(s.start + l, s.stop + l) for s, l in zip(src, lo))
        out[dst] = np.maximum(out[dst], m[src])  # neighbours touch; no doubled density where they meet
    return (out - out.mean()) / out.std()


def run_cli(args: list[str]) -> tuple[float, float, dict]:
    """`(wall seconds, peak MB of the child, its JSON report)` of `python -m cryofm ARGS -o OUT`."""
    out = Path(args[args.index("-o") + 1])
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: nothing blocks while we wait
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cryofm", *args], stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"cryofm {' '.join(args)} failed:\n{log.read().decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, json.loads(out.with_suffix(".json").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--box", type=int, default=256)
    ap.add_argument("--voxel", type=float, default=1.05)
    ap.add_argument("--level", default="4.3A", help="the half maps' FSC curve (a column of fsc_curves.csv)")
    ap.add_argument("--tasks", default="denoise,wedge")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sampler", default="dc", choices=["dc", "fps"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="write the maps here instead of a temporary folder")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    truth = crowded_truth(args.box, args.voxel, args.seed)
    freq, curves = P.read_curves()
    rng = np.random.default_rng(1000 + args.seed)
    h1, h2 = P.degrade_denoise(truth, freq, curves[args.level], rng, voxel_size=args.voxel)
    wedged = P.degrade_wedge(truth)
    print(f"ground truth {args.box}^3 at {args.voxel} A ({time.perf_counter() - t0:.0f} s to build); "
          f"prior grid {round(args.box * args.voxel / 1.5)}^3 at 1.5 A; device {args.device}")

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)

        def save(name: str, data: np.ndarray) -> str:
            path = folder / name
            write_map(path, Volume(data.astype(np.float32), args.voxel), overwrite=True)
            return str(path)

        common = ["--device", args.device, "--sampler", args.sampler, "--force"]
        if "denoise" in tasks:
            files = [save("half1.mrc", h1), save("half2.mrc", h2)]
            wall, peak, report = run_cli(["denoise", *files, "-o", str(folder / "denoised.mrc"), *common])
            rows.append((f"denoise {args.level}", P.fsc_auc((h1 + h2) / 2, truth),
                         P.fsc_auc(P.baseline_denoise(h1, h2, args.voxel), truth), folder / "denoised.mrc", wall, peak, report))
        if "wedge" in tasks:
            wall, peak, report = run_cli(["wedge", save("wedged.mrc", wedged), "--tilt-range", "-60", "60",
                                          "-o", str(folder / "wedge.mrc"), *common])
            rows.append(("wedge +-60", P.fsc_auc(wedged, truth), P.fsc_auc(P.masked(wedged, args.voxel), truth),
                         folder / "wedge.mrc", wall, peak, report))

        from cryofm.io import read_map

        print(f"\n| case | observation | masked Wiener | cryofm {args.sampler} (CLI) | wall s | peak MB | tiles sampled |")
        print("|---|---|---|---|---|---|---|")
        for label, obs, base, path, wall, peak, report in rows:
            auc = P.fsc_auc(np.asarray(read_map(path).data, dtype=np.float64), truth)
            tiles = report["tiles"][0]
            print(f"| {label} | {obs:.3f} | {base:.3f} ({base - obs:+.3f}) | {auc:.3f} ({auc - obs:+.3f}) | "
                  f"{wall:.1f} | {peak:.0f} | {tiles['tiles_sampled']} of {tiles['tiles']} "
                  f"({'x'.join(map(str, tiles['tile_shape']))}) |")
        devices = {r[-1]["settings"].get("device") for r in rows}
        print(f"\ndevice(s) the CLI ran on: {', '.join(sorted(map(str, devices)))}; CPU cores: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
