"""Conversions between cryofm `Volume`s and napari layers; crops for quick previews. No Qt.

Conventions (cryofm's, see docs/ARCHITECTURE.md): arrays are indexed [z, y, x];
`Volume.voxel_size` and `Volume.origin` are in Angstrom ordered (x, y, z), `origin` being the
physical position of voxel [0, 0, 0].  napari's `scale` and `translate` follow the array axes,
so `scale = voxel_size[::-1]` (z, y, x) and `translate = origin[::-1]` (z, y, x): a map then
sits in world coordinates (Angstrom) where its header says, and maps of different voxel sizes
overlay correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume

__all__ = [
    "META_KEY",
    "Box",
    "map_layer_data",
    "volume_layer_data",
    "layer_volume",
    "layer_source_path",
    "angstrom_factors",
    "slab_box",
    "box_from_corners",
]

META_KEY = "cryofm"
LayerData = tuple[Any, dict[str, Any], str]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def map_layer_data(
    data: Any,
    voxel_size: Any,
    origin: Any,
    *,
    name: str,
    path: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    **layer_kwargs: Any,
) -> LayerData:
    """An image `LayerData` tuple for a map given as an array and its geometry.

    Args:
        data: array of shape (nz, ny, nx): NumPy, a memmap view, or a lazy zarr/dask array.
        voxel_size: voxel size (x, y, z) in Angstrom; becomes `scale` (z, y, x).
        origin: position of voxel [0, 0, 0], (x, y, z) Angstrom; becomes `translate` (z, y, x).
        name: layer name.
        path: the file the map came from (None for computed maps).
        metadata: more entries for `metadata["cryofm"]` (labels, header facts, a report).
        layer_kwargs: other `Image` layer keywords (colormap, blending, ...).

    Returns:
        `(data, kwargs, "image")` with `kwargs["metadata"]["cryofm"]` holding `voxel_size` and
        `origin` (x, y, z, Angstrom), `path`, `labels` and the given metadata.
    """
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    org = np.broadcast_to(np.asarray(origin, dtype=np.float64), (3,))
    meta = {str(k): _jsonable(v) for k, v in (metadata or {}).items()}
    meta.update(
        voxel_size=[float(v) for v in vs],
        origin=[float(v) for v in org],
        path=None if path is None else str(path),
        labels=list(meta.get("labels") or []),
    )
    kwargs = {
        "name": name,
        "scale": tuple(float(v) for v in vs[::-1]),
        "translate": tuple(float(v) for v in org[::-1]),
        "units": ("angstrom",) * 3,  # napari's scale bar and any unit-aware code read Angstrom
        "metadata": {META_KEY: meta},
        **layer_kwargs,
    }
    return (data, kwargs, "image")


def volume_layer_data(
    volume: Volume,
    *,
    name: str,
    path: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    **layer_kwargs: Any,
) -> LayerData:
    """`map_layer_data` for a `Volume`: its metadata (and `extra`) go into `metadata["cryofm"]`."""
    meta = {k: v for k, v in volume.metadata.items() if k not in ("voxel_size", "origin", "path")}
    meta.update(extra or {})
    return map_layer_data(
        volume.data, volume.voxel_size, volume.origin, name=name, path=path, metadata=meta, **layer_kwargs
    )


@dataclass(frozen=True)
class Box:
    """A sub-box of a map in voxel indices: `[z0:z1, y0:y1, x0:x1]` (half-open)."""

    start: tuple[int, int, int]  # (z0, y0, x0)
    stop: tuple[int, int, int]  # (z1, y1, x1)

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start, self.stop))  # type: ignore[return-value]


def layer_source_path(layer: Any) -> str | None:
    """The file a layer was read from: napari's `layer.source.path`, else our metadata."""
    source = getattr(layer, "source", None)
    path = getattr(source, "path", None)
    if path:
        return str(path)
    meta = getattr(layer, "metadata", {}) or {}
    return (meta.get(META_KEY) or {}).get("path")


def layer_volume(layer: Any, box: Box | None = None) -> Volume:
    """The map shown by an image layer, as a `Volume` (optionally only a sub-box of it).

    Args:
        layer: a napari `Image` layer (or anything with `data`, `scale`, `translate`, `name`)
            holding a 3D array [z, y, x]; scale and translate in Angstrom.
        box: voxel sub-box to read; only that part of a lazy (memmap, dask, zarr) array is loaded.

    Returns:
        A `Volume` with voxel size `scale[::-1]` and origin `translate[::-1] + box.start[::-1] *
        voxel_size` (the physical position of the box's first voxel), so a restored crop lands
        where it came from.

    Raises:
        CryofmInputError: a layer that is not a single-channel 3D image, or a box outside it.
    """
    name = getattr(layer, "name", "layer")
    if getattr(layer, "rgb", False):
        raise CryofmInputError(f"layer {name!r} is an RGB image; choose a greyscale 3D map")
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    shape = tuple(int(s) for s in getattr(data, "shape", ()))
    if len(shape) != 3:
        raise CryofmInputError(
            f"layer {name!r} has {len(shape)} dimensions (shape {shape}); cryofm restores 3D maps "
            "[z, y, x]: choose a 3D image layer"
        )
    meta = dict((getattr(layer, "metadata", {}) or {}).get(META_KEY) or {})
    to_angstrom = _angstrom_per_unit(layer, name, has_voxel_size="voxel_size" in meta)
    voxel_size = (np.asarray(layer.scale, dtype=np.float64)[-3:] * to_angstrom)[::-1]
    origin = (np.asarray(layer.translate, dtype=np.float64)[-3:] * to_angstrom)[::-1]
    if box is not None:
        if any(a < 0 or b > n or b <= a for a, b, n in zip(box.start, box.stop, shape)):
            raise CryofmInputError(f"box {box.start}..{box.stop} is not inside layer {name!r} of shape {shape}")
        data = data[box.slices]
        origin = origin + np.asarray(box.start[::-1], dtype=np.float64) * voxel_size
        meta["crop_start_zyx"] = list(box.start)
    array = np.asarray(data, dtype=np.float32)
    return Volume(array, voxel_size=voxel_size, origin=origin, metadata={"name": name, **meta})


def angstrom_factors(units: Any, ndim: int) -> list[float | None]:
    """Angstrom per unit for the last `ndim` of napari's layer `units` (pint units); None for the
    pixel (napari's default), a non-length unit or none given."""
    out: list[float | None] = []
    for unit in (tuple(units or ())[-ndim:] or (None,) * ndim):
        try:
            out.append(float((1 * unit).to("angstrom").magnitude))
        except Exception:  # pixel, None or a non-length unit: nothing to convert with
            out.append(None)
    return out


def _angstrom_per_unit(layer: Any, name: str, has_voxel_size: bool) -> np.ndarray:
    """Angstrom per world unit on each array axis (z, y, x) of a layer.

    A length unit (napari's `units`: nm, angstrom, ...) is converted.  napari's default unit,
    the pixel, carries no length: its scale is taken as Angstrom (as EM readers, cryofm's among
    them, set it), except where nothing says so: a layer of scale 1 px that did not come from a
    map file, whose voxel size is then unknown and refused rather than guessed.
    """
    factors = angstrom_factors(getattr(layer, "units", None), 3)
    if None in factors:
        scale = np.asarray(layer.scale, dtype=np.float64)[-3:]
        if not has_voxel_size and np.allclose(scale, 1.0):
            raise CryofmInputError(
                f"layer {name!r} has no voxel size (scale 1 pixel, not read from a map file): set it in "
                "Angstrom (in the console: layer.scale = (v, v, v); layer.units = 'angstrom') or open "
                "the map with napari-cryofm"
            )
        factors = [1.0 if f is None else f for f in factors]
    return np.asarray(factors, dtype=np.float64)


#: smallest side of a preview crop: cryofm's API restores boxes of at least 16 voxels a side
MIN_CROP = 16


def _window(center: float, size: int, n: int) -> tuple[int, int]:
    """`[start, start + size)` centred on `center`, shifted to lie inside `[0, n)`."""
    size = max(1, min(int(size), n))
    start = int(np.clip(int(round(center - size / 2)), 0, n - size))
    return start, start + size


def slab_box(shape: tuple[int, int, int], z_center: int, thickness: int) -> Box:
    """A slab of `thickness` (at least `MIN_CROP`) z slices centred on `z_center`, inside the map."""
    nz, ny, nx = (int(s) for s in shape)
    z0, z1 = _window(int(z_center), max(int(thickness), MIN_CROP), nz)
    return Box((z0, 0, 0), (z1, ny, nx))


def box_from_corners(
    shape: tuple[int, int, int], z_center: int, thickness: int, yx_corners: np.ndarray
) -> Box:
    """The slab around `z_center` limited in y and x to the bounding box of `yx_corners`.

    Args:
        shape: map shape (nz, ny, nx).
        z_center, thickness: the slab, as in `slab_box`.
        yx_corners: (N, 2) array of (y, x) positions in voxel coordinates of the map (e.g. the
            corners of a rectangle drawn in a Shapes layer); the box covers the voxels whose
            centres lie inside, widened about its centre to `MIN_CROP` where it is narrower.

    Raises:
        CryofmInputError: when the rectangle does not overlap the map.
    """
    slab = slab_box(shape, z_center, thickness)
    yx = np.asarray(yx_corners, dtype=np.float64).reshape(-1, 2)
    lo = np.ceil(yx.min(axis=0) - 1e-6).astype(int)
    hi = np.floor(yx.max(axis=0) + 1e-6).astype(int) + 1
    start, stop = [slab.start[0]], [slab.stop[0]]
    for axis, n in ((0, shape[1]), (1, shape[2])):
        a, b = max(lo[axis], 0), min(hi[axis], n)
        if b <= a:
            raise CryofmInputError(
                f"the drawn rectangle (y {lo[0]}..{hi[0] - 1}, x {lo[1]}..{hi[1] - 1} voxels) does not "
                f"overlap the map (ny {shape[1]}, nx {shape[2]}); draw it over the map"
            )
        if b - a < MIN_CROP:
            a, b = _window((a + b) / 2, MIN_CROP, n)
        start.append(a)
        stop.append(b)
    return Box(tuple(start), tuple(stop))  # type: ignore[arg-type]
