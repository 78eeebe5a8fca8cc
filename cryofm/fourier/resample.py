"""Fourier cropping, padding and resampling of real maps.

Crop and pad work on the (unshifted) spectrum axis by axis and keep the real-space scale: a
constant map stays the same constant, and voxel [0, 0, 0] keeps its physical position.  With
``N`` and ``M`` the voxel counts of the large and small boxes,

    fourier_crop(x) = sqrt(M / N) * irfftn_M(C rfftn_N(x)),
    fourier_pad(y)  = sqrt(N / M) * irfftn_N(C^T rfftn_M(y)),

so ``<fourier_crop(x), y> == (M / N) <x, fourier_pad(y)>`` and ``fourier_crop(fourier_pad(y))
== y`` exactly.

The Nyquist plane of an even small size ``m`` on one axis: the small grid has one bin,
``-m/2``, where the large grid has two, ``+m/2`` and ``-m/2``.  The crop takes their sum
divided by sqrt(2) and the pad puts the small Nyquist value divided by sqrt(2) in both.  This is
the only symmetric rule for which crop and pad are adjoint (up to M/N) *and* crop after pad is
the identity; it also keeps real maps real.  (Sampling the band-limited interpolant would sum
without the 1/sqrt(2), trigonometric interpolation would split in halves; those two compose to
the identity but are not adjoint.)  Maps band-limited below the small Nyquist are unaffected.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume

from . import _backend
from ._checks import check_map, check_shape, check_voxel_size

__all__ = ["fourier_crop", "fourier_pad", "regrid", "resample", "resample_volume"]

_SQRT_HALF = 1.0 / math.sqrt(2.0)


def _take(f: Any, axis: int, start: int, stop: int) -> Any:
    index = [slice(None)] * f.ndim
    index[axis] = slice(start, stop)
    return f[tuple(index)]


def _zeros_like_along(xp: Any, f: Any, axis: int, length: int) -> Any:
    shape = list(f.shape)
    shape[axis] = length
    return xp.zeros(tuple(shape), dtype=f.dtype, device=array_api_compat.device(f))


def _resize_full_axis(xp: Any, f: Any, axis: int, m: int) -> Any:
    """Crop or pad a full (fftfreq-ordered) spectrum axis from its size ``n`` to ``m``."""
    n = int(f.shape[axis])
    if m == n:
        return f
    if m < n:
        if m % 2:
            return xp.concat([_take(f, axis, 0, (m + 1) // 2), _take(f, axis, n - (m - 1) // 2, n)], axis=axis)
        h = m // 2
        nyquist = (_take(f, axis, h, h + 1) + _take(f, axis, n - h, n - h + 1)) * _SQRT_HALF
        return xp.concat([_take(f, axis, 0, h), nyquist, _take(f, axis, n - h + 1, n)], axis=axis)
    if n % 2:
        h = (n + 1) // 2
        return xp.concat([_take(f, axis, 0, h), _zeros_like_along(xp, f, axis, m - n), _take(f, axis, h, n)], axis=axis)
    h = n // 2
    nyquist = _take(f, axis, h, h + 1) * _SQRT_HALF
    return xp.concat(
        [
            _take(f, axis, 0, h),
            nyquist,
            _zeros_like_along(xp, f, axis, m - n - 1),
            nyquist,
            _take(f, axis, h + 1, n),
        ],
        axis=axis,
    )


def _hermitian_part(xp: Any, plane: Any) -> Any:
    """``(P[kz, ky] + conj(P[-kz, -ky])) / 2`` for a plane [..., nz, ny] of the spectrum."""
    mirrored = xp.roll(xp.flip(plane, axis=(-2, -1)), shift=(1, 1), axis=(-2, -1))
    return 0.5 * (plane + xp.conj(mirrored))


def _resize_half_axis(xp: Any, f: Any, n: int, m: int) -> Any:
    """Crop or pad the last (rfftfreq) axis from real size ``n`` to ``m``; ``f`` [..., n//2+1]."""
    if m == n:
        return f
    if m < n:
        if m % 2:
            return f[..., : m // 2 + 1]
        h = m // 2
        # full-spectrum rule (F[+h] + F[-h]) / sqrt(2), with F[..., -h] = conj(F[-k, +h])
        nyquist = _hermitian_part(xp, f[..., h]) * math.sqrt(2.0)
        return xp.concat([f[..., :h], nyquist[..., None]], axis=-1)
    extra = m // 2 + 1 - (n // 2 + 1)
    if n % 2:
        return xp.concat([f, _zeros_like_along(xp, f, -1, extra)], axis=-1)
    h = n // 2
    return xp.concat([f[..., :h], f[..., h : h + 1] * _SQRT_HALF, _zeros_like_along(xp, f, -1, extra)], axis=-1)


def _fourier_resize(x: Any, new_shape: tuple[int, int, int]) -> Any:
    """Crop or pad each axis of real ``x`` [..., nz, ny, nx] to ``new_shape`` in Fourier space."""
    xp = _backend.namespace(x)
    old = tuple(int(n) for n in x.shape[-3:])
    if old == tuple(new_shape):
        return x
    f = _backend.rfftn(x)
    f = _resize_full_axis(xp, f, -3, new_shape[0])
    f = _resize_full_axis(xp, f, -2, new_shape[1])
    f = _resize_half_axis(xp, f, old[2], new_shape[2])
    scale = math.sqrt(math.prod(new_shape) / math.prod(old))
    return _backend.irfftn(f, new_shape) * scale


def fourier_crop(x: Any, new_shape: Any) -> Any:
    """Crop the spectrum of real maps to a smaller box (downsampling; the box's physical size is
    kept, so the voxel size grows by ``old / new`` per axis).

    Args:
        x: real maps [..., nz, ny, nx].
        new_shape: ``(mz, my, mx)`` with every ``m <= n``.

    Returns:
        [..., mz, my, mx] in the library, device and precision of ``x``; constants are kept;
        differentiable in torch.  Adjoint: ``(M / N) * fourier_pad``, see the module notes.
    """
    x = check_map(x)
    new = check_shape(new_shape, "new_shape")
    old = tuple(int(n) for n in x.shape[-3:])
    if any(m > n for m, n in zip(new, old)):
        raise CryofmInputError(
            f"fourier_crop shrinks the box, but new_shape {new} is larger than {old} on some axis; "
            "use fourier_pad or resample"
        )
    return _fourier_resize(x, new)


def fourier_pad(x: Any, new_shape: Any) -> Any:
    """Zero-pad the spectrum of real maps to a larger box (band-limited upsampling).

    Args:
        x: real maps [..., nz, ny, nx].
        new_shape: ``(mz, my, mx)`` with every ``m >= n``.

    Returns:
        [..., mz, my, mx] in the library, device and precision of ``x``; constants are kept;
        ``fourier_crop(fourier_pad(x), x.shape) == x``.  Differentiable in torch.
    """
    x = check_map(x)
    new = check_shape(new_shape, "new_shape")
    old = tuple(int(n) for n in x.shape[-3:])
    if any(m < n for m, n in zip(new, old)):
        raise CryofmInputError(
            f"fourier_pad grows the box, but new_shape {new} is smaller than {old} on some axis; "
            "use fourier_crop or resample"
        )
    return _fourier_resize(x, new)


def _new_box(n: int, voxel_size: float, new_voxel_size: float) -> int:
    return max(1, int(math.floor(n * voxel_size / new_voxel_size + 0.5)))


def resample(x: Any, voxel_size: float, new_voxel_size: float) -> tuple[Any, float]:
    """Resample real maps to another voxel size by Fourier cropping or padding.

    The new box is ``round(n * voxel_size / new_voxel_size)`` on each axis, so the voxel size
    reached, ``voxel_size * n / m``, is the nearest one that fits the box exactly.

    Args:
        x: real maps [..., nz, ny, nx].
        voxel_size: current voxel size in Angstrom.
        new_voxel_size: requested voxel size in Angstrom.

    Returns:
        ``(resampled, actual_voxel_size)``: [..., mz, my, mx] in the library of ``x``, and the
        voxel size achieved in Angstrom.

    Raises:
        CryofmInputError: for a non-cubic box whose axes would reach different voxel sizes;
            use `resample_volume`, which keeps a voxel size per axis.
    """
    x = check_map(x)
    vs = check_voxel_size(voxel_size)
    new_vs = check_voxel_size(new_voxel_size, "new_voxel_size")
    old = tuple(int(n) for n in x.shape[-3:])
    new = tuple(_new_box(n, vs, new_vs) for n in old)
    achieved = [vs * n / m for n, m in zip(old, new)]
    if not np.allclose(achieved, achieved[0], rtol=1e-9, atol=0):
        raise CryofmInputError(
            f"resampling the box {old} from {vs} A to {new_vs} A gives boxes {new} whose voxel sizes "
            f"differ per axis ({', '.join(f'{a:.5g}' for a in achieved)} A); use resample_volume "
            "(a voxel size per axis) or crop the map to a cube first"
        )
    return _fourier_resize(x, new), float(achieved[0])


def resample_volume(volume: Volume, new_voxel_size: float, *, exact: bool = False) -> Volume:
    """Resample a `Volume` to ``new_voxel_size`` Angstrom.

    Each axis gets the box ``round(n * voxel_size_axis / new_voxel_size)`` by Fourier cropping or
    padding.  By default the new ``voxel_size`` is the value this reaches on each axis (x, y, z):
    ``voxel_size_axis * n / m``, as near as the box allows (e.g. 1.478 A for 28 voxels of 1.742 A
    asked at 1.5 A).  With ``exact=True`` every axis has exactly ``new_voxel_size``: the result
    samples the band-limited interpolant at that spacing (`regrid`; NumPy, float64), over a box
    that may differ from the input's by under one voxel.  The origin (the physical position of
    voxel [0, 0, 0]) and the metadata are kept.
    """
    if not isinstance(volume, Volume):
        raise CryofmInputError(
            f"resample_volume takes a Volume, got {type(volume).__name__}; use resample for arrays"
        )
    new_vs = check_voxel_size(new_voxel_size, "new_voxel_size")
    vs_zyx = volume.voxel_size[::-1]
    old = volume.shape
    new = tuple(_new_box(n, float(v), new_vs) for n, v in zip(old, vs_zyx))
    achieved_zyx = np.array([float(v) * n / m for v, n, m in zip(vs_zyx, old, new)])
    data = _fourier_resize(volume.data, new)
    if not exact or np.allclose(achieved_zyx, new_vs, rtol=1e-9, atol=0.0):
        return volume.with_data(data, voxel_size=achieved_zyx[::-1].copy())
    data = regrid(np.asarray(data), new, tuple(new_vs / achieved_zyx))
    return volume.with_data(data.astype(np.asarray(volume.data).dtype, copy=False),
                            voxel_size=np.full(3, new_vs))


def _periodic_sinc(u: np.ndarray, n: int) -> np.ndarray:
    """Weights of the band-limited (trigonometric) interpolant of `n` periodic samples at offset `u`
    voxels (the Dirichlet kernel; an even `n`'s Nyquist term split into two halves, so samples are
    reproduced exactly)."""
    u = np.asarray(u, dtype=np.float64)
    s = np.sin(np.pi * u / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.sin(np.pi * u) * (np.cos(np.pi * u / n) if n % 2 == 0 else 1.0) / (n * s)
    return np.where(np.abs(s) < 1e-12, 1.0, w)


def regrid(array: np.ndarray, shape: tuple[int, ...], step: tuple[float, ...]) -> np.ndarray:
    """Samples of the band-limited interpolant of periodic `array` at `j * step[axis]` voxels
    (`j < shape[axis]`), axis by axis: a grid of any voxel size over (nearly) the same box, where
    Fourier cropping or padding can only give voxels of `box / round(box / voxel)`.  Band-limit the
    array to the new grid's Nyquist first (`fourier_crop`) when the new grid is coarser.  NumPy,
    float64; memory: one [m, n] weight matrix per axis and two copies of the map."""
    out = np.asarray(array, dtype=np.float64)
    for axis, (m, h) in enumerate(zip(shape, step)):
        n = out.shape[axis]
        weights = _periodic_sinc(np.arange(m)[:, None] * float(h) - np.arange(n)[None, :], n)  # [m, n]
        out = np.moveaxis(np.tensordot(weights, out, axes=([1], [axis])), 0, axis)
    return out
