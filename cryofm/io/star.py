"""RELION STAR files: where the half maps of a refinement are, and the tilt angles of a series.

Two questions only, answered with `starfile`:

- `resolve_relion_star`: from a PostProcess ``postprocess.star`` (general block:
  ``_rlnUnfilteredMapHalf1/2``, ``_rlnMaskName``, ``_rlnFinalResolution``) or a Refine3D
  ``<root>_data.star`` / ``<root>_model.star`` / ``<root>_optimiser.star`` (half maps
  ``<root>_half1_class001_unfil.mrc`` beside it; ``model_general`` gives ``_rlnPixelSize``
  and ``_rlnCurrentResolution``), the two half maps, the mask and the voxel size.
- `read_tilt_angles`: the tilt angles (degrees) of a RELION 5 tilt-series STAR file
  (``_rlnTomoYTilt`` after alignment, else ``_rlnTomoNominalStageTiltAngle``, else
  ``_rlnTiltAngle``), also through a ``tomograms.star`` (``_rlnTomoTiltSeriesStarFile``).

Paths inside STAR files are relative to the RELION project directory (where RELION ran),
which is usually two levels above the STAR file (``<Job>/jobNNN/file.star``).  They are
resolved against ``project_dir`` when given, then the STAR file's folder and each of its
parents in turn, then the current directory; the first that holds the file wins.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError

__all__ = ["RelionMaps", "resolve_relion_star", "read_tilt_angles", "resolve_star_path"]

_TILT_COLUMNS = ("rlnTomoYTilt", "rlnTomoNominalStageTiltAngle", "rlnTiltAngle")
_REFINE_SUFFIXES = ("_data.star", "_model.star", "_optimiser.star", "_sampling.star")


@dataclass(frozen=True)
class RelionMaps:
    """The maps of a RELION refinement, as absolute paths.

    Attributes:
        half1, half2: the unfiltered half maps.
        mask: the solvent mask used for the FSC, or None.
        voxel_size: pixel size in Angstrom when the STAR file states it, else None (then
            read it from the half maps' headers).
        source: the STAR file these were read from.
        resolution: RELION's gold-standard FSC resolution in Angstrom, if stated.
    """

    half1: Path
    half2: Path
    mask: Path | None
    voxel_size: float | None
    source: Path
    resolution: float | None = None


# --------------------------------------------------------------------------------------
# reading and path resolution


def _read_star(path: Path) -> dict[str, Any]:
    import starfile  # imports pandas: slow, so only when needed

    if not path.is_file():
        raise CryofmInputError(f"{path}: no such STAR file; check the path")
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # the parser raises many kinds; all mean "not a STAR file"
        raise CryofmInputError(
            f"{path}: cannot be read as a STAR file ({' '.join(str(exc).split())}); "
            "give a RELION .star file"
        ) from exc
    if not blocks:
        raise CryofmInputError(f"{path}: holds no data_ blocks; give a RELION .star file")
    return blocks


def _value(block: Any, key: str) -> Any:
    """A single value of a key-value block, or of a one-row loop; None if absent."""
    if isinstance(block, dict):
        return block.get(key)
    if key in block.columns and len(block) >= 1:
        return block[key].iloc[0]
    return None


def _find(blocks: dict[str, Any], key: str) -> Any:
    for block in blocks.values():
        value = _value(block, key)
        if value is not None:
            return value
    return None


def _candidate_folders(star: Path, project_dir: str | os.PathLike | None) -> list[Path]:
    folders = []
    if project_dir is not None:
        folders.append(Path(project_dir).expanduser().absolute())
    folders.extend([star.parent, *star.parent.parents])
    folders.append(Path.cwd())
    return list(dict.fromkeys(folders))


def resolve_star_path(
    star: str | os.PathLike,
    name: str,
    *,
    what: str = "file",
    project_dir: str | os.PathLike | None = None,
) -> Path:
    """Find the file that a STAR file names (RELION writes paths relative to its project).

    Args:
        star: the STAR file that holds the name.
        name: the path as written in the STAR file; RELION's ``:mrc`` type suffix is dropped.
        what: what the file is, for the error message (e.g. ``"_rlnMaskName"``).
        project_dir: the RELION project directory, tried first.

    Returns:
        The absolute path of the first existing candidate.

    Raises:
        CryofmInputError: no candidate exists; the message names the STAR file, the entry
            and the folders tried.
    """
    star = Path(star).expanduser().absolute()
    name = re.sub(r":(mrc|mrcs|star|map)$", "", str(name).strip())
    raw = Path(name).expanduser()
    if raw.is_absolute():
        if raw.is_file():
            return raw
        tried = [raw.parent]
    else:
        tried = _candidate_folders(star, project_dir)
        for folder in tried:
            candidate = folder / raw
            if candidate.is_file():
                return candidate
    shown = ", ".join(str(f) for f in tried[:4]) + (", ..." if len(tried) > 4 else "")
    raise CryofmInputError(
        f"{star}: {what} '{name}' not found (looked in {shown}); "
        "run from the RELION project directory, pass the project directory, or copy the file there"
    )


# --------------------------------------------------------------------------------------
# refinement maps


def _positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _from_postprocess(star: Path, blocks: dict[str, Any], project_dir) -> RelionMaps:
    half1 = resolve_star_path(star, _find(blocks, "rlnUnfilteredMapHalf1"),
                              what="_rlnUnfilteredMapHalf1", project_dir=project_dir)
    name2 = _find(blocks, "rlnUnfilteredMapHalf2")
    if name2 is None:  # RELION derives half2 from half1 when only --i is given
        name2 = str(_find(blocks, "rlnUnfilteredMapHalf1")).replace("half1", "half2")
    half2 = resolve_star_path(star, name2, what="_rlnUnfilteredMapHalf2", project_dir=project_dir)
    mask_name = _find(blocks, "rlnMaskName")
    mask = None
    if mask_name is not None and str(mask_name).strip() not in ("", "None", "<NA>"):
        mask = resolve_star_path(star, mask_name, what="_rlnMaskName", project_dir=project_dir)
    voxel_size = None
    for key in ("rlnPixelSize", "rlnImagePixelSize", "rlnMicrographOriginalPixelSize"):
        voxel_size = _positive_float(_find(blocks, key))
        if voxel_size is not None:
            break
    resolution = _positive_float(_find(blocks, "rlnFinalResolution"))
    return RelionMaps(half1, half2, mask, voxel_size, star, resolution)


def _refine_root(star: Path) -> str | None:
    for suffix in _REFINE_SUFFIXES:
        if star.name.endswith(suffix):
            return star.name[: -len(suffix)]
    return None


def _from_refine(star: Path, blocks: dict[str, Any], root: str) -> RelionMaps:
    folder = star.parent
    halves = []
    for half in ("half1", "half2"):
        names = [f"{root}_{half}_class001_unfil.mrc", f"{root}_{half}_class001.mrc"]
        found = next((folder / n for n in names if (folder / n).is_file()), None)
        if found is None:
            raise CryofmInputError(
                f"{star}: refinement half map not found: expected {folder / names[0]} "
                f"(or {names[1]}); point to the Refine3D job folder of a finished refinement"
            )
        halves.append(found)
    model_star = folder / f"{root}_model.star"
    model = blocks if star == model_star else (_read_star(model_star) if model_star.is_file() else {})
    voxel_size = _positive_float(_find(model, "rlnPixelSize"))
    if voxel_size is None:
        voxel_size = _positive_float(_find(blocks, "rlnImagePixelSize"))
    resolution = _positive_float(_find(model, "rlnCurrentResolution"))
    return RelionMaps(halves[0], halves[1], None, voxel_size, star, resolution)


def resolve_relion_star(
    path: str | os.PathLike, *, project_dir: str | os.PathLike | None = None
) -> RelionMaps:
    """The half maps (and mask, voxel size) of a RELION PostProcess or Refine3D job.

    Args:
        path: ``postprocess.star``; a refinement's ``<root>_data.star``,
            ``<root>_model.star`` or ``<root>_optimiser.star``; or a job folder holding
            one of ``postprocess.star``, ``run_model.star``, ``run_data.star``.
        project_dir: the RELION project directory (paths in postprocess.star are relative
            to it); by default the STAR file's folder and its parents are searched.

    Returns:
        A `RelionMaps` with absolute paths.

    Raises:
        CryofmInputError: the file is not a RELION postprocess/refine STAR file, or a map
            it names does not exist (the message names the STAR file and the entry).
    """
    star = Path(path).expanduser().absolute()
    if star.is_dir():
        for name in ("postprocess.star", "run_model.star", "run_data.star"):
            if (star / name).is_file():
                star = star / name
                break
        else:
            raise CryofmInputError(
                f"{star}: folder holds no postprocess.star, run_model.star or run_data.star; "
                "give a PostProcess or Refine3D job folder or STAR file"
            )
    blocks = _read_star(star)
    if _find(blocks, "rlnUnfilteredMapHalf1") is not None:
        return _from_postprocess(star, blocks, project_dir)
    root = _refine_root(star)
    if root is not None:
        return _from_refine(star, blocks, root)
    raise CryofmInputError(
        f"{star}: is neither a RELION postprocess.star (no _rlnUnfilteredMapHalf1; blocks: "
        f"{', '.join(repr(b) for b in blocks)}) nor a refinement <root>_data/_model.star; "
        "give postprocess.star or Refine3D's run_model.star"
    )


# --------------------------------------------------------------------------------------
# tilt angles


def _pick_block(star: Path, candidates: dict[str, Any], tomo_name: str | None, what: str):
    if tomo_name is not None and tomo_name in candidates:
        return candidates[tomo_name]
    if len(candidates) == 1 and tomo_name is None:
        return next(iter(candidates.values()))
    names = ", ".join(repr(n) for n in candidates)
    if tomo_name is None:
        raise CryofmInputError(f"{star}: holds several {what} ({names}); choose one with tomo_name=")
    raise CryofmInputError(f"{star}: no {what} named {tomo_name!r} (found {names}); check tomo_name")


def read_tilt_angles(
    path: str | os.PathLike,
    *,
    tomo_name: str | None = None,
    column: str | None = None,
    project_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """The tilt angles of a tilt series, in degrees, in file order.

    Args:
        path: a RELION 5 tilt-series STAR file (one row per tilt image), a ``tomograms.star``
            whose ``_rlnTomoTiltSeriesStarFile`` points to one, or a STAR file with one
            block per tomogram.
        tomo_name: which tomogram (``_rlnTomoName`` or block name) when there are several.
        column: the column to read (with or without the leading ``_``); by default the
            aligned tilt ``rlnTomoYTilt``, else ``rlnTomoNominalStageTiltAngle``, else
            ``rlnTiltAngle``.
        project_dir: RELION project directory for resolving the tilt-series path.

    Returns:
        float64 array of shape ``(n_tilts,)``, degrees.

    Raises:
        CryofmInputError: no tilt column, several tomograms and no ``tomo_name``, or angles
            that are not finite or outside [-90, 90].
    """
    star = Path(path).expanduser().absolute()
    blocks = _read_star(star)
    tables = {name: b for name, b in blocks.items() if not isinstance(b, dict)}

    series = {}
    for block in tables.values():
        if "rlnTomoTiltSeriesStarFile" in block.columns and "rlnTomoName" in block.columns:
            series.update(zip(block["rlnTomoName"].astype(str), block["rlnTomoTiltSeriesStarFile"]))
    if series:
        target = _pick_block(star, series, tomo_name, "tilt series")
        ts_star = resolve_star_path(star, target, what="_rlnTomoTiltSeriesStarFile", project_dir=project_dir)
        return read_tilt_angles(ts_star, tomo_name=None, column=column, project_dir=project_dir)

    wanted = (column.lstrip("_"),) if column else _TILT_COLUMNS
    for name in wanted:
        holding = {b: t for b, t in tables.items() if name in t.columns}
        if holding:
            table = _pick_block(star, holding, tomo_name, "tilt-series blocks")
            try:
                angles = table[name].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise CryofmInputError(f"{star}: column _{name} is not numeric; check the file") from exc
            break
    else:
        raise CryofmInputError(
            f"{star}: no tilt-angle column ({', '.join('_' + c for c in wanted)}); "
            "give a RELION tilt-series STAR file or name the column with column="
        )
    if angles.size == 0:
        raise CryofmInputError(f"{star}: column _{name} is empty; give a tilt series with images")
    if not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > 90):
        raise CryofmInputError(
            f"{star}: tilt angles in _{name} must be finite and within [-90, 90] degrees, "
            f"found range [{np.nanmin(angles)}, {np.nanmax(angles)}]; check the column"
        )
    return angles
