"""`cryofm denoise`, `cryofm wedge`, `cryofm upsample`: thin shells around `cryofm.restore`.

Every run writes the map, a JSON report (`<out>.json`) and a PNG (`<out>.png`), plus
`<out>_std.mrc` with `--samples K > 1`.  All outputs are checked before anything is computed
(name, folder, existing files): an existing one without `--force` stops the run with nothing
touched, and an input is never overwritten.  The set is written all or nothing: every file goes
to a hidden temporary name first and is renamed only when all have been written; with `--force`
a `<out>_std.mrc` left by an earlier run with more samples is removed, so no stale file sits
beside the new map.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click

from cryofm.cli.main import cli
from cryofm.errors import CryofmInputError

__all__ = ["denoise_command", "wedge_command", "upsample_command", "output_paths", "common_stem"]

_MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrcs", ".rec", ".st")


def _strip_map_suffix(name: str) -> str:
    for comp in (".gz", ".bz2"):
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    for suffix in _MAP_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def common_stem(path1: Path, path2: Path) -> str:
    """The name two half maps share: their common prefix and suffix, e.g. `run_half1_class001`
    and `run_half2_class001` -> `run_half_class001`."""
    a, b = _strip_map_suffix(path1.name), _strip_map_suffix(path2.name)
    if a == b:
        return a
    prefix = os.path.commonprefix([a, b])
    suffix = os.path.commonprefix([a[len(prefix):][::-1], b[len(prefix):][::-1]])[::-1]
    stem = (prefix.rstrip("_-. ") + ("_" if prefix.rstrip("_-. ") and suffix.strip("_-. ") else "")
            + suffix.lstrip("_-. ")).strip("_-. ")
    return stem or "halves"


def output_paths(inputs: list[Path], task_suffix: str, output: str | None, samples: int,
                 folder: Path | None = None) -> dict[str, Path]:
    """The files a run writes: map, json, png (and std with samples > 1).  By default beside the
    first input, or in `folder` (a RELION STAR file's job folder, not the refinement's)."""
    if output is not None:
        out = Path(output)
    else:
        first = inputs[0]
        stem = common_stem(inputs[0], inputs[1]) if len(inputs) > 1 else _strip_map_suffix(first.name)
        out = (folder or first.parent) / f"{stem}_{task_suffix}.mrc"
    paths = {"map": out, **_companions(out)}
    if samples <= 1:
        del paths["std"]
    return paths


def _companions(out: Path) -> dict[str, Path]:
    base = out.with_name(_strip_map_suffix(out.name))
    return {"json": base.with_name(base.name + ".json"), "png": base.with_name(base.name + ".png"),
            "std": base.with_name(base.name + "_std.mrc")}


def _check_outputs(paths: dict[str, Path], inputs: list[Path], force: bool) -> None:
    """Before any work: a map name cryofm can write, writable folders, no input among the outputs,
    and no existing output (nor a stale `_std.mrc` of an earlier run) without --force."""
    from cryofm.io.mrc import split_map_suffix

    split_map_suffix(paths["map"])
    resolved_inputs = {p.resolve() for p in inputs}
    for path in {**_companions(paths["map"]), **paths}.values():
        if path.resolve() in resolved_inputs:
            raise CryofmInputError(f"output {path} is an input; cryofm never overwrites its input: choose another -o")
        if path.is_dir():
            raise CryofmInputError(f"output {path} is a folder; choose another -o")
    for folder in {p.parent for p in paths.values()}:
        if not folder.is_dir():
            raise CryofmInputError(f"output folder {folder} does not exist; create it or choose another -o")
        try:
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as exc:
            raise CryofmInputError(f"cannot write in the output folder {folder} ({exc.strerror}); choose another -o") from None
    stale = _companions(paths["map"])["std"]
    existing = [str(p) for p in {**paths, "stale std": stale}.values() if p.exists()]
    if existing and not force:
        raise CryofmInputError(f"output exists: {', '.join(existing)}; pass --force to overwrite or -o to choose another name")


def _resolve_inputs(maps: tuple[str, ...], mask: str | None, allow_pair: bool, allow_star: bool):
    """Read the map(s): MAP, HALF1 HALF2, or a RELION postprocess/refine STAR file.

    Returns (map paths, volumes, mask volume, every input file, the folder for default outputs:
    the STAR file's, so a PostProcess job writes into its own folder, else None)."""
    from cryofm.io import read_map

    if not maps:
        raise click.UsageError("give a map, two half maps" + (" or a RELION postprocess.star" if allow_star else ""))
    if len(maps) > (2 if allow_pair else 1):
        raise click.UsageError(f"too many maps: {' '.join(maps)}")
    paths = [Path(m) for m in maps]
    mask_path = Path(mask) if mask else None
    if allow_star and len(paths) == 1 and (paths[0].suffix.lower() == ".star" or paths[0].is_dir()):
        # a STAR file, or a PostProcess / Refine3D job folder holding one
        from cryofm.io.star import resolve_relion_star

        relion = resolve_relion_star(paths[0])
        paths = [Path(relion.half1), Path(relion.half2)]
        mask_path = mask_path or (Path(relion.mask) if relion.mask else None)
    else:
        relion = None
    volumes = [read_map(p) for p in paths]
    mask_vol = read_map(mask_path) if mask_path is not None else None
    inputs = paths + ([mask_path] if mask_path is not None else [])
    if relion is None:
        return paths, volumes, mask_vol, inputs, None
    _warn_star_voxel_size(relion, volumes[0])
    return paths, volumes, mask_vol, inputs + [Path(relion.source)], Path(relion.source).parent


def _warn_star_voxel_size(relion, volume) -> None:
    """RELION's PostProcess may be given another pixel size than the half maps' headers (--angpix);
    cryofm restores on the headers' grid, so say so when the two differ."""
    header = sum(float(v) for v in volume.voxel_size) / 3
    if relion.voxel_size is not None and abs(relion.voxel_size - header) > 0.002 * header:
        click.echo(f"cryofm: warning: {relion.source} gives a pixel size of {relion.voxel_size:g} A but the half "
                   f"maps' headers say {header:g} A; cryofm uses the headers' (the output keeps them). If the "
                   "STAR file's is right, correct the headers first (e.g. relion_image_handler --angpix)", err=True)


class _Bar:
    """A tqdm progress bar fed by `Progress` messages."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def __call__(self, p) -> None:
        from cryofm.progress import progress_bar

        if self.bar is None:
            self.bar = progress_bar(total=p.total, desc=self.desc, unit="step", leave=False)
        if p.message:
            self.bar.set_postfix_str(p.message, refresh=False)
        self.bar.update(p.done - self.bar.n)  # redraws no more often than the bar's interval

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_and_write(task: str, run: Callable[..., Any], paths: dict[str, Path], inputs: list[Path],
                   options: dict[str, Any], force: bool, label: str) -> None:
    from cryofm.io import write_map
    from cryofm.restore.report import write_png

    bar = _Bar(task)
    try:
        result = run(progress=bar)
    finally:
        bar.close()
    result.report["inputs_files"] = [str(p.absolute()) for p in inputs]
    result.report["outputs"] = {k: str(v.absolute()) for k, v in paths.items()}
    result.report["cli_options"] = options
    root = click.get_current_context().find_root()
    result.report["command_line"] = (root.obj or {}).get("argv") or ["cryofm", *sys.argv[1:]]
    result.report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    temps = {k: v.with_name(f".cryofm-{os.getpid()}-{v.name}") for k, v in paths.items()}
    try:  # all or nothing: every file under a temporary name first, renamed once all are written
        write_map(temps["map"], result.volume, overwrite=True, label=label)
        if "std" in paths and result.std is not None:
            write_map(temps["std"], result.std, overwrite=True, label=label + " std")
        temps["json"].write_text(json.dumps(result.report, indent=1))
        write_png(result.report, temps["png"])
        for kind, tmp in temps.items():
            if tmp.exists():
                tmp.replace(paths[kind])
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    stale = _companions(paths["map"])["std"]
    if "std" not in paths and force and stale.exists():
        stale.unlink()  # an earlier run's uncertainty map would pass for this run's
        click.echo(f"removed {stale} (from an earlier run; this one has --samples 1)")
    click.echo(f"wrote {paths['map']} ({result.report['seconds']:.1f} s)")
    test = result.report.get("noise_anisotropy")
    if test and test["used"]:
        why = "as asked" if test["requested"] == "always" else \
            f"the half maps' noise differs between directions: chi-square per dof {test['chi2_per_dof']:g} > {test['threshold']:g}"
        click.echo(f"directional noise model used ({why}; --isotropic turns it off)")


def _shared_options(func):
    options = [
        click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output map (default: beside the input)."),
        click.option("--mask", type=click.Path(exists=True, dir_okay=False), help="Solvent mask (1 = protein) on the map's grid."),
        click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampler steps (default per task and sampler: 16 for wedge with dc, else 4)."),
        click.option("--sampler", type=click.Choice(["dc", "fps"]), default="dc", show_default=True),
        click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Posterior samples; >1 also writes <out>_std.mrc."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--model", type=click.Path(exists=True, dir_okay=False), help="Prior weights (.safetensors); default the shipped model."),
        click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _api_kwargs(mask_vol, steps, sampler, samples, device, seed, model) -> dict[str, Any]:
    return {"mask": mask_vol, "steps": steps, "sampler": sampler, "samples": samples, "device": device,
            "seed": seed, "prior": model}


@cli.command("denoise")
@click.argument("maps", nargs=-1, type=click.Path(exists=True, dir_okay=True))
@_shared_options
@click.option("--independent-halves", is_flag=True, help="Restore each half on its own; report their FSC.")
@click.option("--anisotropic/--isotropic", default=None,
              help="Noise per direction as well as per shell (preferred orientations; half maps): always, or "
                   "never. Default: measured from the half maps, used where it differs between directions.")
def denoise_command(maps, output, mask, steps, sampler, samples, device, seed, model, force, independent_halves,
                    anisotropic):
    """Denoise MAP, the halves HALF1 HALF2, or a RELION postprocess.star."""
    from cryofm.restore import denoise
    from cryofm.restore.types import OUTPUT_SUFFIX

    paths, volumes, mask_vol, inputs, folder = _resolve_inputs(maps, mask, allow_pair=True, allow_star=True)
    out = output_paths(paths, OUTPUT_SUFFIX["denoise"], output, samples, folder)
    _check_outputs(out, inputs, force)
    half2 = volumes[1] if len(volumes) > 1 else None
    kwargs = _api_kwargs(mask_vol, steps, sampler, samples, device, seed, model)
    _run_and_write("denoise", lambda progress: denoise(volumes[0], half2, independent_halves=independent_halves,
                                                       anisotropic=anisotropic, progress=progress, **kwargs),
                   out, inputs, {**kwargs, "mask": mask, "independent_halves": independent_halves,
                                 "anisotropic": anisotropic}, force,
                   f"denoise {sampler}" + {True: " anisotropic", False: " isotropic"}.get(anisotropic, ""))


@cli.command("wedge")
@click.argument("maps", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--tilt-range", type=float, nargs=2, default=(-60.0, 60.0), show_default=True, help="MIN MAX degrees.")
@click.option("--tilt-axis", type=click.Choice(["x", "y"]), default="y", show_default=True)
@click.option("--tilt-star", type=click.Path(exists=True, dir_okay=False), help="Tilt-series STAR file with the tilt angles.")
@_shared_options
@click.option("--independent-halves", is_flag=True, help="Restore each half on its own; report their FSC.")
def wedge_command(maps, tilt_range, tilt_axis, tilt_star, output, mask, steps, sampler, samples, device, seed,
                  model, force, independent_halves):
    """Fill the missing wedge of MAP (or of the halves MAP HALF2); beam along z."""
    from cryofm.operators import check_tilt_range
    from cryofm.restore import complete_wedge
    from cryofm.restore.types import OUTPUT_SUFFIX

    check_tilt_range(tilt_range)
    paths, volumes, mask_vol, inputs, _ = _resolve_inputs(maps, mask, allow_pair=True, allow_star=False)
    angles = None
    if tilt_star:
        from cryofm.io.star import read_tilt_angles

        angles = read_tilt_angles(tilt_star)
        inputs = inputs + [Path(tilt_star)]
    out = output_paths(paths, OUTPUT_SUFFIX["wedge"], output, samples)
    _check_outputs(out, inputs, force)
    half2 = volumes[1] if len(volumes) > 1 else None
    kwargs = _api_kwargs(mask_vol, steps, sampler, samples, device, seed, model)
    _run_and_write("wedge", lambda progress: complete_wedge(volumes[0], half2, tilt_range=tuple(tilt_range),
                                                            tilt_axis=tilt_axis, tilt_angles=angles,
                                                            independent_halves=independent_halves,
                                                            progress=progress, **kwargs),
                   out, inputs, {**kwargs, "mask": mask, "tilt_range": list(tilt_range), "tilt_axis": tilt_axis,
                                 "tilt_star": tilt_star, "independent_halves": independent_halves},
                   force, f"wedge {tilt_range[0]:g}..{tilt_range[1]:g} {sampler}")


@cli.command("upsample")
@click.argument("maps", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--factor", type=float, default=None, help="Box multiplier, e.g. 2.")
@click.option("--voxel-size", "voxel_size", type=float, default=None, help="Target voxel size in Angstrom.")
@_shared_options
def upsample_command(maps, factor, voxel_size, output, mask, steps, sampler, samples, device, seed, model, force):
    """Upsample MAP to a finer grid (--factor F or --voxel-size A), restoring the missing spectrum."""
    from cryofm.restore import upsample
    from cryofm.restore.types import OUTPUT_SUFFIX

    if (factor is None) == (voxel_size is None):
        raise CryofmInputError("upsample needs exactly one of --factor (e.g. 2) or --voxel-size (Angstrom)")
    paths, volumes, mask_vol, inputs, _ = _resolve_inputs(maps, mask, allow_pair=False, allow_star=False)
    out = output_paths(paths, OUTPUT_SUFFIX["upsample"], output, samples)
    _check_outputs(out, inputs, force)
    kwargs = _api_kwargs(mask_vol, steps, sampler, samples, device, seed, model)
    _run_and_write("upsample", lambda progress: upsample(volumes[0], factor=factor, target_voxel_size=voxel_size,
                                                         progress=progress, **kwargs),
                   out, inputs, {**kwargs, "mask": mask, "factor": factor, "voxel_size": voxel_size}, force,
                   "upsample " + (f"x{factor:g}" if factor else f"{voxel_size:g} A"))
