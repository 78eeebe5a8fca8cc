"""Frequency grids, shell indices and Hermitian weights in the rfft layout.

Layout (ARCHITECTURE.md): a real map [..., nz, ny, nx] transforms to [..., nz, ny, nx // 2 + 1];
z and y frequencies follow `fftfreq`, x follows `rfftfreq`, in cycles per voxel, divided by the
voxel size for 1/A.  Shell ``k`` holds the components with ``round(n * |f|) == k``, ``n`` the
largest box dimension, ``f`` in cycles per voxel (ties round up); shells ``0 .. n // 2 - 1`` are
reported, shell ``k`` sits at ``k / (n * voxel_size)`` 1/A.

Grids are built once per (shape, voxel size, library, device, precision) and cached; the
returned arrays are shared, so treat them as read-only (NumPy ones are flagged read-only).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from . import _backend
from ._checks import check_shape, check_voxel_size

__all__ = [
    "clear_grid_cache",
    "frequency_grid",
    "hermitian_weight",
    "n_shells",
    "radial_frequency",
    "shell_frequencies",
    "shell_index",
]

_CACHE_SIZE = 32
_INT_GRIDS = ("shell", "shell_clipped")


# -- NumPy builders (float64 / int64), cached per shape -------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _np_freq_cycles(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    kz = np.fft.fftfreq(nz).reshape(nz, 1, 1)
    ky = np.fft.fftfreq(ny).reshape(1, ny, 1)
    kx = np.fft.rfftfreq(nx).reshape(1, 1, nx // 2 + 1)
    return kz, ky, kx


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _np_shell_index(shape: tuple[int, int, int]) -> np.ndarray:
    kz, ky, kx = _np_freq_cycles(shape)
    radius = max(shape) * np.sqrt(kz**2 + ky**2 + kx**2)
    return np.floor(radius + 0.5).astype(np.int64)


def _np_hermitian_weight(shape: tuple[int, int, int]) -> np.ndarray:
    nx = shape[2]
    w = np.full(nx // 2 + 1, 2.0)
    w[0] = 1.0
    if nx % 2 == 0:
        w[-1] = 1.0
    return w.reshape(1, 1, nx // 2 + 1)


def _np_build(name: str, shape: tuple[int, int, int], voxel_size: float) -> Any:
    if name == "freq":
        return tuple(k / voxel_size for k in _np_freq_cycles(shape))
    if name == "radius":
        kz, ky, kx = _np_freq_cycles(shape)
        return np.sqrt(kz**2 + ky**2 + kx**2) / voxel_size
    if name == "shell":
        return _np_shell_index(shape)
    if name == "shell_clipped":
        # shells beyond the reported ones (the corners) go to one extra bin, n_shells
        return np.minimum(_np_shell_index(shape), max(shape) // 2).ravel()
    if name == "weight":
        return _np_hermitian_weight(shape)
    if name == "counts":
        idx = np.minimum(_np_shell_index(shape), max(shape) // 2)
        w = np.broadcast_to(_np_hermitian_weight(shape), idx.shape)
        return np.bincount(idx.ravel(), weights=w.ravel(), minlength=max(shape) // 2 + 1)[:-1]
    raise KeyError(name)  # pragma: no cover - internal names only


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cached(name: str, shape: tuple[int, int, int], voxel_size: float, place: _backend.Placement) -> Any:
    value = _np_build(name, shape, voxel_size)

    def convert(a: np.ndarray) -> Any:
        out = _backend.from_numpy(a, place)
        if place.backend == "numpy":
            out.flags.writeable = False
        return out

    if isinstance(value, tuple):
        return tuple(convert(v) for v in value)
    return convert(value)


def _grid(name: str, shape: Any, voxel_size: float = 1.0, like: Any = None) -> Any:
    """Internal: the cached grid ``name`` for ``shape`` on the placement of ``like``."""
    place = _backend.placement(like)
    if name in _INT_GRIDS:  # integer grids do not depend on the precision of ``like``
        place = replace(place, real_dtype="float64")
    return _cached(name, check_shape(shape), float(voxel_size), place)


def clear_grid_cache() -> None:
    """Drop every cached grid (frees device memory held by cached torch/CuPy grids)."""
    _cached.cache_clear()
    _np_shell_index.cache_clear()
    _np_freq_cycles.cache_clear()


# -- public ----------------------------------------------------------------------------------


def frequency_grid(shape: Any, voxel_size: float = 1.0, *, like: Any = None) -> tuple[Any, Any, Any]:
    """Frequency components of the rfft layout, in 1/A.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``; only the last three entries are used.
        voxel_size: voxel edge in Angstrom (cubic voxels).
        like: an array whose library, device and precision the grids take (default NumPy
            float64).

    Returns:
        ``(kz, ky, kx)`` of shapes (nz, 1, 1), (1, ny, 1), (1, 1, nx // 2 + 1) that broadcast to
        the rfft layout (nz, ny, nx // 2 + 1); ``fftfreq``/``rfftfreq`` divided by
        ``voxel_size``.  Cached and shared: do not modify in place.
    """
    return _grid("freq", shape, check_voxel_size(voxel_size), like)


def radial_frequency(shape: Any, voxel_size: float = 1.0, like: Any = None) -> Any:
    """``|k|`` in 1/A on the rfft layout, shape (nz, ny, nx // 2 + 1).

    Args as in `frequency_grid`.  Cached and shared: do not modify in place.
    """
    return _grid("radius", shape, check_voxel_size(voxel_size), like)


def shell_index(shape: Any, like: Any = None) -> Any:
    """Integer shell of every rfft-layout component, shape (nz, ny, nx // 2 + 1).

    Shell = ``floor(n * |f| + 0.5)`` (round half up), ``f`` in cycles per voxel and ``n`` the
    largest of (nz, ny, nx).  Values run past ``n_shells(shape) - 1`` in the corners.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        like: array whose library and device the int64 result takes (default NumPy).
    """
    return _grid("shell", shape, 1.0, like)


def n_shells(shape: Any) -> int:
    """Number of reported shells, ``max(nz, ny, nx) // 2``."""
    return max(check_shape(shape)) // 2


def shell_frequencies(shape: Any, voxel_size: float = 1.0, *, like: Any = None) -> Any:
    """Frequency of each reported shell, ``k / (n * voxel_size)`` 1/A for ``k = 0 .. n//2 - 1``.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``; ``n`` is its largest dimension.
        voxel_size: Angstrom.
        like: array whose library/device/precision the result takes (default NumPy float64).

    Returns:
        [n_shells] array in 1/A.
    """
    dims = check_shape(shape)
    vs = check_voxel_size(voxel_size)
    n = max(dims)
    freqs = np.arange(n // 2, dtype=np.float64) / (n * vs)
    return _backend.from_numpy(freqs, _backend.placement(like))


def hermitian_weight(shape: Any, like: Any = None) -> Any:
    """Hermitian weight of the rfft layout, shape (1, 1, nx // 2 + 1), broadcastable.

    ``w = 1`` on the planes ``kx = 0`` and ``kx = nx / 2`` (even nx), ``2`` elsewhere, so that
    ``sum(w * |F|**2) == sum(x**2)`` (Parseval with ortho norm) and half-space sums equal
    full-space sums.  Library/device/precision from ``like`` (default NumPy float64).
    """
    return _grid("weight", shape, 1.0, like)
