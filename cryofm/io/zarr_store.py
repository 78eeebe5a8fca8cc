"""Chunked volumes in zarr v3 stores: write, read, open lazily, convert MRC, iterate blocks.

A cryofm zarr volume is one zarr v3 array, float32, shape ``(nz, ny, nx)``, dimension names
``("z", "y", "x")``, with attributes:

- ``voxel_size``: ``[x, y, z]`` in Angstrom;
- ``origin``: ``[x, y, z]`` in Angstrom, the position of voxel ``[0, 0, 0]``;
- ``unit``: ``"angstrom"``; ``axes``: ``"zyx"`` (array index order);
- ``labels`` and ``source`` (the MRC it came from), when known.

Stores are written to a temporary folder beside the target and renamed into place, so a
failed write leaves no partial store under the target name.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io._atomic import StagedFolder
from cryofm.io.volume import Volume

__all__ = [
    "LazyVolume",
    "write_zarr_volume",
    "read_zarr_volume",
    "open_zarr_volume",
    "mrc_to_zarr",
    "block_slices",
    "iter_blocks",
]

Slices = tuple[slice, slice, slice]


class LazyVolume(NamedTuple):
    """A zarr-backed volume, not loaded: index ``array[z0:z1, y0:y1, x0:x1]`` to read.

    Unpacks as ``array, voxel_size, origin = open_zarr_volume(path)``.
    """

    array: Any  # zarr.Array, float32 (nz, ny, nx)
    voxel_size: np.ndarray  # (x, y, z) Angstrom
    origin: np.ndarray  # (x, y, z) Angstrom


def _chunks(chunks: tuple[int, ...] | int, shape: tuple[int, ...], where: Path) -> tuple[int, int, int]:
    values = np.broadcast_to(np.asarray(chunks), (3,))
    if values.dtype.kind not in "iu" or np.any(values < 1):
        raise CryofmInputError(
            f"{where}: chunks must be 3 positive integers (z, y, x), got {chunks!r}; e.g. (64, 64, 64)"
        )
    return tuple(int(min(c, s)) for c, s in zip(values, shape))  # type: ignore[return-value]


def _attributes(voxel_size: np.ndarray, origin: np.ndarray, metadata: dict[str, Any]) -> dict:
    attrs: dict[str, Any] = {
        "voxel_size": [float(v) for v in voxel_size],
        "origin": [float(v) for v in origin],
        "unit": "angstrom",
        "axes": "zyx",
    }
    if metadata.get("labels"):
        attrs["labels"] = [str(s) for s in metadata["labels"]]
    if metadata.get("path"):
        attrs["source"] = str(metadata["path"])
    return attrs


def _create(store: Path, shape, chunks, attrs):
    import zarr

    return zarr.create_array(
        store=str(store),
        shape=tuple(int(s) for s in shape),
        dtype="float32",
        chunks=chunks,
        attributes=attrs,
        dimension_names=("z", "y", "x"),
        zarr_format=3,
        overwrite=True,
    )


def write_zarr_volume(
    path: str | os.PathLike,
    volume: Volume,
    *,
    chunks: tuple[int, int, int] | int = (64, 64, 64),
    overwrite: bool = False,
) -> Path:
    """Write a `Volume` as a zarr v3 array (float32 ``[z, y, x]``) with its geometry.

    Args:
        path: the store folder to create, e.g. ``tomogram.zarr``.
        volume: the map to store.
        chunks: chunk shape ``(z, y, x)`` in voxels (clipped to the volume's shape).
        overwrite: replace an existing store (never the volume's own input).

    Returns:
        The absolute path of the store.

    Raises:
        CryofmInputError: not a Volume, bad chunks, missing folder, or an existing target
            without ``overwrite``.
    """
    if not isinstance(volume, Volume):
        raise CryofmInputError(
            f"write_zarr_volume needs a cryofm Volume, got {type(volume).__name__}; "
            "wrap arrays as Volume(data, voxel_size=..., origin=...)"
        )
    return _write_slabs(path, volume, chunks, overwrite, check_finite=False)


def _write_slabs(path, volume: Volume, chunks, overwrite: bool, *, check_finite: bool) -> Path:
    """Stage a store, fill it one slab of ``chunks[0]`` z-sections at a time, rename it."""
    staged = StagedFolder(path, overwrite, volume.metadata.get("path"))
    chunk_shape = _chunks(chunks, volume.shape, staged.target)
    attrs = _attributes(volume.voxel_size, volume.origin, volume.metadata)
    with staged as tmp:
        array = _create(tmp, volume.shape, chunk_shape, attrs)
        step = chunk_shape[0]
        for z0 in range(0, volume.shape[0], step):  # memory-mapped inputs are read slab by slab
            slab = np.asarray(volume.data[z0 : z0 + step], dtype=np.float32)
            if check_finite and not np.all(np.isfinite(slab)):
                raise CryofmInputError(
                    f"{volume.metadata.get('path', 'volume')}: NaN or infinite values in sections "
                    f"z = {z0}..{z0 + len(slab) - 1}; repair or regenerate the map"
                )
            array[z0 : z0 + step] = slab
    return staged.target


def open_zarr_volume(path: str | os.PathLike) -> LazyVolume:
    """Open a cryofm zarr volume read-only without loading it.

    Args:
        path: a store written by `write_zarr_volume` or `mrc_to_zarr`.

    Returns:
        `LazyVolume` ``(array, voxel_size, origin)``: the zarr array ``(nz, ny, nx)`` and
        the geometry ``(x, y, z)`` in Angstrom.

    Raises:
        CryofmInputError: no zarr array at ``path``, not 3D, or no valid voxel size.
    """
    import zarr

    p = Path(path).expanduser().absolute()
    try:
        array = zarr.open_array(str(p), mode="r")
    except (FileNotFoundError, zarr.errors.BaseZarrError, ValueError, KeyError) as exc:
        raise CryofmInputError(
            f"{p}: no zarr array there ({' '.join(str(exc).split())}); give a store written by "
            "cryofm (write_zarr_volume or `mrc_to_zarr`)"
        ) from exc
    if array.ndim != 3:
        raise CryofmInputError(f"{p}: holds a {array.ndim}D array of shape {array.shape}; need a 3D volume")
    attrs = dict(array.attrs)
    try:
        voxel_size = np.asarray(attrs["voxel_size"], dtype=np.float64).reshape(3)
        origin = np.asarray(attrs.get("origin", [0.0, 0.0, 0.0]), dtype=np.float64).reshape(3)
    except (KeyError, TypeError, ValueError) as exc:
        raise CryofmInputError(
            f"{p}: attributes voxel_size/origin missing or not 3 numbers ({attrs!r}); "
            "set them, e.g. zarr.open_array(path, mode='r+').attrs['voxel_size'] = [1.0, 1.0, 1.0]"
        ) from exc
    if not np.all(np.isfinite(voxel_size)) or np.any(voxel_size <= 0):
        raise CryofmInputError(f"{p}: voxel_size attribute {voxel_size.tolist()} must be positive; fix it")
    return LazyVolume(array, voxel_size, origin)


def read_zarr_volume(path: str | os.PathLike) -> Volume:
    """Load a cryofm zarr volume into memory as a `Volume` (see `open_zarr_volume`)."""
    array, voxel_size, origin = open_zarr_volume(path)
    p = Path(path).expanduser().absolute()
    data = np.asarray(array[...], dtype=np.float32)
    attrs = dict(array.attrs)
    metadata = {"path": str(p), "labels": list(attrs.get("labels", [])), "source": attrs.get("source")}
    return Volume(data=data, voxel_size=voxel_size, origin=origin, metadata=metadata)


def mrc_to_zarr(
    mrc_path: str | os.PathLike,
    zarr_path: str | os.PathLike,
    chunks: tuple[int, int, int] | int = (64, 64, 64),
    *,
    overwrite: bool = False,
    permissive: bool = False,
) -> Path:
    """Convert an MRC map to a cryofm zarr volume slab by slab, without loading it whole.

    An uncompressed map is memory-mapped and copied one slab of ``chunks[0]`` z-sections at
    a time (any axis order), so a tomogram larger than memory converts; a compressed map
    is decompressed in memory first.

    Args:
        mrc_path: the map to convert.
        zarr_path: the store to create.
        chunks: chunk shape ``(z, y, x)``.
        overwrite: replace an existing store.
        permissive: read a map with header errors (see `cryofm.io.read_map`).

    Returns:
        The absolute path of the store.

    Raises:
        CryofmInputError: the map cannot be read, holds NaN or infinite values, or the
            target exists without ``overwrite``.
    """
    from cryofm.io.mrc import read_map

    volume = read_map(mrc_path, permissive=permissive, mmap=True)  # NaN not checked yet
    return _write_slabs(zarr_path, volume, chunks, overwrite, check_finite=True)


# --------------------------------------------------------------------------------------
# blocks


def _starts(n: int, size: int, stride: int) -> list[int]:
    if size >= n:
        return [0]
    starts = list(range(0, n - size, stride))
    starts.append(n - size)  # the last block ends at the edge
    return starts


def block_slices(
    shape: tuple[int, int, int],
    block: tuple[int, int, int] | int = (64, 64, 64),
    overlap: tuple[int, int, int] | int = 0,
) -> list[Slices]:
    """Slices of blocks that cover a volume, neighbours overlapping by at least ``overlap``.

    Blocks have shape ``block`` (clipped to ``shape``) and start every ``block - overlap``
    voxels; the last block on each axis is moved back to end at the edge, so every block
    is full-sized and the cover is complete.  Order: z slowest, x fastest.

    Args:
        shape: the volume's ``(nz, ny, nx)``.
        block: block shape ``(z, y, x)`` in voxels.
        overlap: minimum overlap ``(z, y, x)`` between neighbours, ``0 <= overlap < block``.

    Returns:
        A list of ``(slice_z, slice_y, slice_x)``.

    Raises:
        CryofmInputError: a block size below 1, or an overlap not smaller than the block.
    """
    shape3 = tuple(int(s) for s in np.broadcast_to(np.asarray(shape), (3,)))
    block3 = [int(b) for b in np.broadcast_to(np.asarray(block), (3,))]
    overlap3 = [int(o) for o in np.broadcast_to(np.asarray(overlap), (3,))]
    if any(b < 1 or o < 0 or o >= b for b, o in zip(block3, overlap3)):
        raise CryofmInputError(
            f"blocks need block >= 1 and 0 <= overlap < block on each axis, got block "
            f"{tuple(block3)} and overlap {tuple(overlap3)}; e.g. block=64, overlap=16"
        )
    per_axis = []
    for n, b, o in zip(shape3, block3, overlap3):
        size = min(b, n)
        per_axis.append([slice(s, s + size) for s in _starts(n, size, b - o)])
    return [tuple(s) for s in itertools.product(*per_axis)]  # type: ignore[misc]


def iter_blocks(
    array: Any,
    block: tuple[int, int, int] | int = (64, 64, 64),
    overlap: tuple[int, int, int] | int = 0,
) -> Iterator[tuple[Slices, np.ndarray]]:
    """Read a 3D array (zarr, memmap or NumPy) block by block; see `block_slices`.

    Yields:
        ``(slices, data)``: where the block sits, and its values as a float32 NumPy array
        of shape ``block`` (clipped to the array's shape).
    """
    if len(array.shape) != 3:
        raise CryofmInputError(f"iter_blocks needs a 3D array, got shape {tuple(array.shape)}")
    for slices in block_slices(tuple(array.shape), block, overlap):
        yield slices, np.asarray(array[slices], dtype=np.float32)
