"""``cryofm info`` and ``cryofm fsc``: look at a map, compare two maps.

Thin shells over `cryofm.io` and `cryofm.fourier`; bad input raises `CryofmInputError`, which
`cryofm.cli.main` prints on one line with exit code 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from cryofm.cli.main import cli
from cryofm.errors import CryofmInputError
from cryofm.io import Volume, atomic_output, read_map
from cryofm.restore._inputs import check_mask_values, check_same_grid

__all__ = ["info", "fsc", "map_statistics", "fsc_report", "write_fsc_plot"]

_PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
_THRESHOLDS = (0.143, 0.5)


# --------------------------------------------------------------------------------------
# info


def map_statistics(volume: Volume, *, slab: int = 32) -> dict[str, float]:
    """min, max, mean and std of a map, a slab of z-sections at a time (memory-mapped maps
    are never loaded whole).

    Raises:
        CryofmInputError: the map holds NaN or infinite values.
    """
    data = volume.data
    n_total, mean, m2 = 0, 0.0, 0.0
    lo, hi = np.inf, -np.inf
    for z0 in range(0, data.shape[0], slab):
        block = np.asarray(data[z0 : z0 + slab], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise CryofmInputError(
                f"{volume.metadata.get('path', 'map')}: NaN or infinite values in sections "
                f"z = {z0}..{z0 + block.shape[0] - 1}; repair or regenerate the map"
            )
        n, block_mean = block.size, float(block.mean())
        block_m2 = float(np.sum((block - block_mean) ** 2))
        delta = block_mean - mean
        total = n_total + n
        mean += delta * n / total
        m2 += block_m2 + delta**2 * n_total * n / total
        n_total = total
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return {"min": lo, "max": hi, "mean": mean, "std": float(np.sqrt(m2 / n_total))}


def _fmt(values: Any, digits: int = 6) -> str:
    return " ".join(f"{float(v):.{digits}g}" for v in values)


@cli.command()
@click.argument("map_path", metavar="MAP", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--permissive", is_flag=True, help="Read a map whose header has errors.")
def info(map_path: Path, as_json: bool, permissive: bool) -> None:
    """Show a map's grid, geometry, header and value statistics.

    Shape is (z, y, x); voxel size and origin (position of voxel [0, 0, 0]) are in
    Angstrom, (x, y, z).
    """
    volume = read_map(map_path, permissive=permissive, mmap=True)
    meta = volume.metadata
    stats = map_statistics(volume)
    record = {
        "path": meta["path"],
        "shape": list(volume.shape),
        "voxel_size": [float(v) for v in volume.voxel_size],
        "origin": [float(v) for v in volume.origin],
        "axis_order": meta["axis_order"],
        "mode": meta["mode"],
        "dtype": np.dtype(meta["dtype"]).name,
        "nstart": meta["nstart"],
        "header_origin": meta["header_origin"],
        "compression": meta["compression"],
        **stats,
        "labels": meta["labels"],
    }
    if as_json:
        click.echo(json.dumps(record, allow_nan=False))
        return
    extent = np.asarray(volume.shape[::-1]) * volume.voxel_size
    lines = [
        ("file", record["path"]),
        ("shape", f"{_fmt(volume.shape)} (z y x)"),
        ("voxel size", f"{_fmt(volume.voxel_size, 5)} A (x y z)"),
        ("origin", f"{_fmt(volume.origin, 6)} A (x y z)"),
        ("extent", f"{_fmt(extent, 5)} A (x y z)"),
        ("axis order", f"{_fmt(record['axis_order'])} (mapc mapr maps)"),
        ("mode", f"{record['mode']} ({record['dtype']})"
                 + (f", {record['compression']}-compressed" if record["compression"] else "")),
        ("nstart", _fmt(record["nstart"])),
        ("min / max", f"{stats['min']:.6g} / {stats['max']:.6g}"),
        ("mean / std", f"{stats['mean']:.6g} / {stats['std']:.6g}"),
        ("labels", "\n".join(f"{' ' * 12}{s}" for s in record["labels"]).lstrip() or "(none)"),
    ]
    for key, value in lines:
        click.echo(f"{key:<12}{value}")


# --------------------------------------------------------------------------------------
# fsc


def fsc_report(
    a: Volume, b: Volume, *, mask: Volume | None = None, seed: int = 0, ignore_origin: bool = False
) -> dict[str, Any]:
    """The FSC of two maps as a JSON-serialisable dict.

    Without a mask: the plain FSC.  With a mask: the masked FSC corrected by phase
    randomisation (`cryofm.fourier.masked_fsc`, RELION's postprocess procedure; ``seed``
    fixes the random phases).  ``ignore_origin`` compares the voxel arrays of maps whose headers
    place them differently (one header lost its placement); by default that is refused.

    Returns:
        ``{"frequency": [1/A per shell], "fsc": [...], "resolution_0.143": A or None,
        "resolution_0.5": A or None}``.

    Raises:
        CryofmInputError: boxes, voxel sizes or origins differ (the message names the files), the
            voxels are not cubic, or the mask is not in [0, 1].
    """
    from cryofm.fourier.fsc import fsc, masked_fsc

    check_same_grid(a, b, origin=not ignore_origin)
    for v in (a, b):
        if not np.allclose(v.voxel_size, v.voxel_size[0], rtol=1e-4):
            raise CryofmInputError(
                f"{v.metadata.get('path', 'map')}: voxel size {tuple(v.voxel_size)} A is not cubic; "
                "resample it to cubic voxels first"
            )
    voxel_size = float(a.voxel_size[0])
    if mask is None:
        result = fsc(a.data, b.data, voxel_size=voxel_size)
    else:
        check_same_grid(a, mask, ("the map", "the mask"), origin=not ignore_origin)
        check_mask_values(mask)
        result = masked_fsc(a.data, b.data, np.asarray(mask.data), voxel_size, seed=seed)
    curve = np.asarray(result.fsc, dtype=np.float64)
    report: dict[str, Any] = {
        "frequency": [float(f) for f in np.asarray(result.frequency)],
        "fsc": [float(c) for c in curve],
    }
    for threshold in _THRESHOLDS:
        report[f"resolution_{threshold}"] = result.resolution(threshold)
    return report


def _atomic_target(path: Path, force: bool, inputs: list[Path]) -> Path:
    target = path.expanduser().absolute()
    for source in inputs:
        if os.path.realpath(source) == os.path.realpath(target):
            raise CryofmInputError(
                f"{target}: is an input; cryofm never overwrites an input: choose another name"
            )
    if target.suffix.lower() not in _PLOT_FORMATS:
        raise CryofmInputError(f"{target}: unknown plot format; name it *.png, *.pdf or *.svg")
    if not target.parent.is_dir():
        raise CryofmInputError(f"{target}: folder {target.parent} does not exist; create it first")
    if target.exists() and not force:
        raise CryofmInputError(f"{target} exists; use --force to replace it")
    return target


def write_fsc_plot(path: Path, report: dict[str, Any], *, title: str = "") -> Path:
    """Draw an FSC curve with the 0.143 and 0.5 thresholds and save it atomically.

    Args:
        path: output image (.png, .pdf or .svg); replaced if it exists.
        report: a dict from `fsc_report`.
        title: figure title.
    """
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    freq = np.asarray(report["frequency"])
    ax.plot(freq[1:], np.asarray(report["fsc"])[1:], color="black", lw=1.5, label="FSC")
    for threshold, colour in zip(_THRESHOLDS, ("tab:red", "tab:blue")):
        res = report[f"resolution_{threshold}"]
        text = f"{res:.2f} A" if res is not None else "not reached"
        ax.axhline(threshold, color=colour, ls="--", lw=1, label=f"FSC = {threshold}: {text}")
        if res is not None:
            ax.axvline(1.0 / res, color=colour, ls=":", lw=1)
    ax.set_xlim(0, float(freq[-1]))
    ax.set_ylim(min(-0.1, float(np.min(report["fsc"][1:], initial=0.0))), 1.05)
    ax.set_xlabel("spatial frequency (1/A)")
    ax.set_ylabel("Fourier shell correlation")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fmt = _PLOT_FORMATS[path.suffix.lower()]
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    return path


@cli.command()
@click.argument("map_a", metavar="A", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("map_b", metavar="B", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--mask", "mask_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Real-space mask in [0, 1]; the FSC is corrected by phase randomisation.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Save the curve with its 0.143 and 0.5 thresholds (.png, .pdf or .svg).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--force", is_flag=True, help="Replace the --plot file if it exists.")
@click.option("--ignore-origin", is_flag=True,
              help="Compare the voxel arrays even where the headers' origins differ (a header that lost its placement).")
def fsc(map_a: Path, map_b: Path, mask_path: Path | None, plot_path: Path | None,
        as_json: bool, force: bool, ignore_origin: bool) -> None:
    """Fourier shell correlation between maps A and B (e.g. two half maps).

    Prints the curve and the resolutions (Angstrom) where it falls below 0.143 and 0.5.
    """
    inputs = [p for p in (map_a, map_b, mask_path) if p is not None]
    target = _atomic_target(plot_path, force, inputs) if plot_path is not None else None
    a, b = read_map(map_a), read_map(map_b)
    mask = read_map(mask_path) if mask_path is not None else None
    report = fsc_report(a, b, mask=mask, ignore_origin=ignore_origin)
    if target is not None:
        title = f"{map_a.name} vs {map_b.name}" + (f", mask {mask_path.name}" if mask_path else "")
        write_fsc_plot(target, report, title=title)
    if as_json:
        click.echo(json.dumps(report, allow_nan=False))
        return
    click.echo(f"{'shell':>5} {'1/A':>9} {'A':>9} {'FSC':>8}")
    for k, (f, c) in enumerate(zip(report["frequency"], report["fsc"])):
        res = f"{1.0 / f:9.2f}" if f > 0 else f"{'inf':>9}"
        click.echo(f"{k:>5} {f:9.4f} {res} {c:8.4f}")
    for threshold in _THRESHOLDS:
        res = report[f"resolution_{threshold}"]
        text = f"{res:.2f} A" if res is not None else "not reached (resolved to Nyquist)"
        click.echo(f"resolution at FSC = {threshold}: {text}")
    if target is not None:
        click.echo(f"plot written to {target}")
