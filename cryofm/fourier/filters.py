"""Isotropic Fourier filters: cosine-edged low-pass, B-factor, and any filter in the rfft layout.

Frequencies are ``|k|`` in 1/A (``fftfreq`` per axis divided by the voxel size), not rounded to
shells.  Every function takes real maps [..., nz, ny, nx] in NumPy, torch or CuPy and returns the
same library, device and precision; torch keeps autograd.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from cryofm.errors import CryofmInputError

from . import _backend
from ._checks import check_map, check_shape, check_voxel_size
from .grids import radial_frequency

__all__ = ["apply_fourier_filter", "bfactor", "bfactor_filter", "lowpass", "lowpass_filter"]


def lowpass_filter(
    shape: Any,
    resolution_A: float,
    voxel_size: float,
    *,
    edge_width_shells: float = 2.0,
    like: Any = None,
) -> Any:
    """Cosine-edged low-pass filter in the rfft layout, shape (nz, ny, nx // 2 + 1).

    With ``fc = 1 / resolution_A`` and ``w = edge_width_shells / (n * voxel_size)`` 1/A
    (``n`` the largest box dimension, so ``w`` is that many shells wide), the filter is 1 for
    ``|k| <= fc - w/2``, 0 for ``|k| >= fc + w/2`` and ``(1 + cos(pi (|k| - fc + w/2) / w)) / 2``
    between: 0.5 at ``fc``.  ``edge_width_shells=0`` gives a hard edge (1 for ``|k| <= fc``).

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        resolution_A: cut-off resolution in Angstrom.
        voxel_size: Angstrom.
        edge_width_shells: width of the cosine edge in shells (>= 0).
        like: array whose library/device/precision the filter takes (default NumPy float64).
    """
    dims = check_shape(shape)
    vs = check_voxel_size(voxel_size)
    res = check_voxel_size(resolution_A, "resolution_A")
    if not (edge_width_shells >= 0):
        raise CryofmInputError(f"edge_width_shells must be >= 0, got {edge_width_shells}")
    k = radial_frequency(dims, vs, like=like)
    xp = _backend.namespace(k)
    fc = 1.0 / res
    if edge_width_shells == 0:
        return xp.astype(k <= fc, k.dtype)
    w = edge_width_shells / (max(dims) * vs)
    t = xp.clip((k - (fc - 0.5 * w)) / w, min=0.0, max=1.0)
    return 0.5 * (1.0 + xp.cos(math.pi * t))


def bfactor_filter(shape: Any, B: Any, voxel_size: float, *, like: Any = None) -> Any:
    """B-factor filter ``exp(-B |k|^2 / 4)`` in the rfft layout (``|k|`` in 1/A, B in A^2).

    Positive B blurs, negative B sharpens.  ``B`` may be a float or a 0-d array/tensor of the
    library of ``like`` (then the filter is differentiable in B).  Shape (nz, ny, nx // 2 + 1).
    """
    dims = check_shape(shape)
    vs = check_voxel_size(voxel_size)
    k = radial_frequency(dims, vs, like=like)
    xp = _backend.namespace(k)
    return xp.exp(-0.25 * B * k * k)


def apply_fourier_filter(x: Any, filter_rfft: Any) -> Any:
    """Multiply the spectrum of real maps by a filter: ``irfftn(rfftn(x) * filter)``.

    Args:
        x: real maps [..., nz, ny, nx].
        filter_rfft: real or complex array broadcastable to [..., nz, ny, nx // 2 + 1]
            (the rfft layout; DC at [0, 0, 0], not shifted).  A NumPy filter is moved to the
            library of ``x``.  It should be Hermitian-consistent on the kx = 0 and Nyquist
            planes (any real isotropic filter is); otherwise only its Hermitian part acts there.

    Returns:
        [..., nz, ny, nx], real, same library/device/precision as ``x``; differentiable in torch
        (in ``x`` and in the filter).
    """
    x = check_map(x)
    if not array_api_compat.is_array_api_obj(filter_rfft):
        raise CryofmInputError(
            f"filter_rfft must be an array in the rfft layout, got {type(filter_rfft).__name__}"
        )
    if _backend.backend_name(filter_rfft) != _backend.backend_name(x):
        if _backend.backend_name(filter_rfft) != "numpy":
            raise CryofmInputError(
                f"the filter is a {_backend.backend_name(filter_rfft)} array but the map is "
                f"{_backend.backend_name(x)}; pass both in one library"
            )
        filter_rfft = _backend.from_numpy(filter_rfft, _backend.placement(x))
    expected = _backend.rfft_shape(x.shape)
    tail = tuple(filter_rfft.shape[-3:]) if filter_rfft.ndim >= 3 else None
    if tail is None or any(t not in (1, e) for t, e in zip(tail, expected)):
        raise CryofmInputError(
            f"filter_rfft must broadcast to the rfft layout {expected} of a map of shape "
            f"{tuple(x.shape[-3:])}, got shape {tuple(filter_rfft.shape)}"
        )
    return _backend.irfftn(_backend.rfftn(x) * filter_rfft, x.shape)


def lowpass(x: Any, resolution_A: float, voxel_size: float, *, edge_width_shells: float = 2.0) -> Any:
    """Low-pass filter real maps [..., nz, ny, nx] to ``resolution_A`` Angstrom with a cosine
    edge ``edge_width_shells`` shells wide (see `lowpass_filter`); same library as ``x``."""
    x = check_map(x)
    filt = lowpass_filter(x.shape, resolution_A, voxel_size, edge_width_shells=edge_width_shells, like=x)
    return apply_fourier_filter(x, filt)


def bfactor(x: Any, B: Any, voxel_size: float) -> Any:
    """Apply a B-factor ``exp(-B |k|^2 / 4)`` (B in A^2; negative sharpens) to real maps
    [..., nz, ny, nx]; same library as ``x``.  See `bfactor_filter`."""
    x = check_map(x)
    return apply_fourier_filter(x, bfactor_filter(x.shape, B, voxel_size, like=x))
