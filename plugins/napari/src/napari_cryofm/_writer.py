"""npe2 writers: one image layer to an MRC map, or several into a folder, via
`cryofm.io.write_map`. No Qt.

Endings: ``.mrc``, ``.map``, ``.ccp4``, ``.rec``, each also with ``.gz`` or ``.bz2``
(compressed), as the manifest's ``filename_extensions`` list them.

The layer's ``scale`` and ``translate`` (z, y, x, Angstrom) become the header's voxel size and
origin (x, y, z); its labels (``metadata["cryofm"]["labels"]``) are kept and a cryofm
provenance label is added.  A map read with its origin in ``nxstart``/``nystart``/``nzstart``
(what `cryofm.io.read_map` records as ``nstart`` and ``header_origin``) is written the same
way, as the CLI does, while the layer's translate is a whole number of voxels (nstart is
then computed from the translate, so a moved layer is written where it now is); otherwise
the origin goes in the header's ``origin`` field.  The write is atomic (temporary file, then
rename).

Overwriting: napari's *Save Layer* dialog already asks "replace?" before it calls a writer,
so an existing file is replaced (``overwrite=True``), except an input: the file the layer
was read from (cryofm never writes over an input, and the layer may be a memory-mapped view
of it) and, for a restored layer, the files the restoration read
(``metadata["cryofm"]["inputs"]``).  Scripts that call ``viewer.layers.save`` or
``napari.save_layers`` get the same behaviour; they choose the path themselves.

Several selected layers (napari's *Save Selected Layers* with a folder name) go to
`write_mrc_folder`: one ``<layer name>.mrc`` per layer in that folder (created if needed;
whitespace and path separators in the name become ``_``).  Every layer is checked before
anything is written, and an existing map in the folder or two layers that would share a file
name are refused: napari asks about the folder, not about the files in it.

Refusals raise `MapWriteRefused`, an `OSError`: napari's ``save_layers`` turns a writer's
``ValueError`` (which `cryofm.CryofmInputError` is) into a vague "No data written!" warning,
but lets other exceptions through, so the message reaches the user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryofm._layers import META_KEY, angstrom_factors

__all__ = ["write_mrc", "write_mrc_folder", "MapWriteRefused"]


class MapWriteRefused(OSError):
    """The writer refused to save a layer (nothing was written); the message says why and what to do."""


def write_mrc(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a 3D image layer as a float32 MRC map.

    Args:
        path: output file ending in ``.mrc``, ``.map``, ``.ccp4`` or ``.rec`` (``.gz`` or
            ``.bz2`` appended: compressed).
        data: the layer data, shape (nz, ny, nx) (NumPy, memmap, dask or zarr array).
        meta: napari's layer attributes: ``scale``, ``translate`` (z, y, x, Angstrom),
            ``name``, ``metadata``.

    Returns:
        ``[path]``, the file written.

    Raises:
        MapWriteRefused: not a 3D single-channel layer, a non-positive scale, an unknown
            ending, an input (the layer's own source file or a file its restoration read),
            or a missing folder.
    """
    from cryofm.errors import CryofmInputError

    try:
        return [str(_write(Path(path), data, meta))]
    except CryofmInputError as exc:
        raise MapWriteRefused(str(exc)) from exc


def write_mrc_folder(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Write several 3D image layers as float32 MRC maps into the folder `path`, one
    ``<layer name>.mrc`` each (whitespace and path separators in the name become ``_``).

    Args:
        path: the folder (created, with its parents, if it does not exist).
        layer_data: napari's ``(data, meta, layer_type)`` tuples, as for `write_mrc`.

    Returns:
        The files written, in the layers' order.

    Raises:
        MapWriteRefused: `path` is a file; a layer `write_mrc` would refuse; two layers with one
            file name; a map of that name already in the folder.  Nothing is written then.
    """
    from cryofm.errors import CryofmInputError
    from cryofm.io import write_map

    folder = Path(path).expanduser()
    try:
        if folder.exists() and not folder.is_dir():
            raise CryofmInputError(f"{folder}: is a file; several layers are saved into a folder: give a folder name")
        targets = [folder / f"{_file_stem(meta.get('name'), i)}.mrc" for i, (_, meta, _) in enumerate(layer_data)]
        seen: dict[Path, str] = {}
        for target, (_, meta, _) in zip(targets, layer_data):
            if target in seen:
                raise CryofmInputError(f"layers {seen[target]!r} and {meta.get('name')!r} would both be saved as "
                                       f"{target.name}: rename one of them")
            seen[target] = str(meta.get("name"))
        existing = [t.name for t in targets if t.exists()]
        if existing:
            raise CryofmInputError(f"{folder}: already holds {', '.join(existing)}; cryofm does not replace maps in "
                                   "a folder: choose a new folder or move them")
        prepared = [_prepare(t, data, meta) for t, (data, meta, _) in zip(targets, layer_data)]
        folder.mkdir(parents=True, exist_ok=True)
        return [str(write_map(t, volume, overwrite=False, label=label)) for t, (volume, label) in zip(targets, prepared)]
    except CryofmInputError as exc:
        raise MapWriteRefused(str(exc)) from exc


def _file_stem(name: Any, index: int) -> str:
    """A layer name as a file name: whitespace and path separators become '_'; no leading dot."""
    stem = "_".join(str(name or "").replace(os.sep, " ").replace("/", " ").split()).lstrip(".")
    return stem or f"layer_{index}"


def _write(path: Path, data: Any, meta: dict[str, Any]) -> Path:
    from cryofm.io import write_map

    volume, label = _prepare(path, data, meta)
    return write_map(path, volume, overwrite=True, label=label)


def _prepare(path: Path, data: Any, meta: dict[str, Any]) -> tuple[Any, str]:
    """The layer as a `Volume` for `path`, and its provenance label; refuses what `write_mrc` refuses."""
    from cryofm.errors import CryofmInputError
    from cryofm.io import Volume

    name = meta.get("name")
    if meta.get("rgb") or meta.get("multiscale"):
        raise CryofmInputError(
            f"layer {name!r} is RGB or multiscale; only single 3D maps can be saved as MRC"
        )
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 3:
        raise CryofmInputError(
            f"layer {name!r} has shape {shape}; an MRC map needs a 3D image [z, y, x]"
        )
    info = dict((meta.get("metadata") or {}).get(META_KEY) or {})
    target = os.path.realpath(path.expanduser())
    for source in info.get("inputs") or ():
        if os.path.realpath(str(source)) == target:
            raise CryofmInputError(
                f"{path}: is an input of the restoration that made layer {name!r}; cryofm never "
                "overwrites an input: choose another file name"
            )
    ndim = len(shape)
    # world units to Angstrom: a length unit (nm, ...) is converted; napari's pixel is taken as A
    to_angstrom = np.asarray([f or 1.0 for f in angstrom_factors(meta.get("units"), ndim)], dtype=np.float64)
    scale = np.asarray(meta.get("scale", np.ones(ndim)), dtype=np.float64) * to_angstrom
    translate = np.asarray(meta.get("translate", np.zeros(ndim)), dtype=np.float64) * to_angstrom
    # nstart/header_origin: write_map keeps an nstart header while the origin is whole voxels
    header = {key: info[key] for key in ("nstart", "header_origin") if info.get(key) is not None}
    volume = Volume(
        data=np.asarray(data, dtype=np.float32),
        voxel_size=scale[::-1],
        origin=translate[::-1],
        metadata={"labels": list(info.get("labels", [])), "path": info.get("path"), **header},
    )
    return volume, f"napari layer {meta.get('name', '')}".strip()
