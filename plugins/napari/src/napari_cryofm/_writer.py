"""npe2 writer: one image layer to an MRC map (``.mrc``/``.map``), via `cryofm.io.write_map`. No Qt.

The layer's ``scale`` and ``translate`` (z, y, x, Angstrom) become the header's voxel size and
origin (x, y, z); its labels (``metadata["cryofm"]["labels"]``) are kept and a cryofm
provenance label is added.  The write is atomic (temporary file, then rename).

Overwriting: napari's *Save Layer* dialog already asks "replace?" before it calls a writer,
so an existing file is replaced (``overwrite=True``), except the file the layer was read from:
that one is refused (cryofm never writes over an input, and the layer may be a memory-mapped
view of it), with a message that napari shows.  Scripts that call ``viewer.layers.save`` or
``napari.save_layers`` get the same behaviour; they choose the path themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_cryofm._layers import META_KEY

__all__ = ["write_mrc"]


def write_mrc(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a 3D image layer as a float32 MRC map.

    Args:
        path: output file ending in ``.mrc`` or ``.map`` (``.gz`` also works).
        data: the layer data, shape (nz, ny, nx) (NumPy, memmap, dask or zarr array).
        meta: napari's layer attributes: ``scale``, ``translate`` (z, y, x, Angstrom),
            ``name``, ``metadata``.

    Returns:
        ``[path]``, the file written.

    Raises:
        cryofm.CryofmInputError: not a 3D single-channel layer, a non-positive scale, an
            unknown ending, the layer's own source file, or a missing folder.
    """
    from cryofm.errors import CryofmInputError
    from cryofm.io import Volume, write_map

    if meta.get("rgb") or meta.get("multiscale"):
        raise CryofmInputError(
            f"layer {meta.get('name')!r} is RGB or multiscale; only single 3D maps can be saved as MRC"
        )
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 3:
        raise CryofmInputError(
            f"layer {meta.get('name')!r} has shape {shape}; an MRC map needs a 3D image [z, y, x]"
        )
    ndim = len(shape)
    scale = np.asarray(meta.get("scale", np.ones(ndim)), dtype=np.float64)
    translate = np.asarray(meta.get("translate", np.zeros(ndim)), dtype=np.float64)
    info = dict((meta.get("metadata") or {}).get(META_KEY) or {})
    volume = Volume(
        data=np.asarray(data, dtype=np.float32),
        voxel_size=scale[::-1],
        origin=translate[::-1],
        metadata={"labels": list(info.get("labels", [])), "path": info.get("path")},
    )
    label = f"napari layer {meta.get('name', '')}".strip()
    written = write_map(Path(path), volume, overwrite=True, label=label)
    return [str(written)]
