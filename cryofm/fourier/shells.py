"""Sums, averages and spectra over Fourier shells, and their inverse (`expand_shells`).

Every sum over Fourier components uses the Hermitian weight (1 on the planes kx = 0 and
kx = nx/2, 2 elsewhere), so a sum over the stored half space equals the sum over the full
space.  Components beyond the last reported shell (the corners of the box) are left out of
every per-shell result.  Results are [..., n_shells] with n_shells = max(nz, ny, nx) // 2.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from cryofm.errors import CryofmInputError

from . import _backend
from ._checks import check_map, check_shape
from .grids import _grid, hermitian_weight, n_shells

__all__ = ["expand_shells", "n_shells_to_corners", "power_spectrum", "resample_shells", "shell_average", "shell_counts",
           "shell_sum"]


def _as_fourier_values(values: Any, dims: tuple[int, int, int], like: Any) -> Any:
    if not array_api_compat.is_array_api_obj(values):
        values = np.asarray(values)
    if like is not None and _backend.backend_name(values) != _backend.backend_name(like):
        if _backend.backend_name(values) != "numpy":
            raise CryofmInputError(
                f"values is a {_backend.backend_name(values)} array but like= is "
                f"{_backend.backend_name(like)}; pass values in one library"
            )
        values = _backend.from_numpy(values, _backend.placement(like))
    expected = _backend.rfft_shape(dims)
    if values.ndim < 3 or tuple(values.shape[-3:]) != expected:
        raise CryofmInputError(
            f"values must be in the rfft layout [..., {expected[0]}, {expected[1]}, {expected[2]}] "
            f"of a map of shape {dims}, got shape {tuple(values.shape)}; pass rfftn(x)-shaped values"
        )
    return values


def _real_shell_sum(values: Any, dims: tuple[int, int, int], corners: bool = False) -> Any:
    """Weighted per-shell sum of real rfft-layout ``values`` [..., nz, ny, nxh] -> [..., n_shells]
    (with ``corners``: every shell out to the box's corners)."""
    xp = _backend.namespace(values)
    w = hermitian_weight(dims, like=values)
    weighted = values * w
    lead = tuple(weighted.shape[:-3])
    flat = xp.reshape(weighted, (*lead, -1))
    if corners:
        idx = xp.reshape(_grid("shell", dims, 1.0, values), (-1,))
        return _backend.scatter_add_last(flat, idx, n_shells_to_corners(dims))
    idx = _grid("shell_clipped", dims, 1.0, values)
    ns = n_shells(dims)
    return _backend.scatter_add_last(flat, idx, ns + 1)[..., :ns]


def n_shells_to_corners(shape: Any) -> int:
    """Number of shells out to the corners of the box: the largest `shell_index` plus one."""
    return int(_grid("shell", check_shape(shape), 1.0, None).max()) + 1


def shell_sum(values: Any, shape: Any, like: Any = None, *, corners: bool = False) -> Any:
    """Sum over each shell of values in the rfft layout, with Hermitian weights.

    Args:
        values: real or complex array [..., nz, ny, nx // 2 + 1] (rfft layout of ``shape``).
        shape: the real-space shape ``(..., nz, ny, nx)``.
        like: library/device for the result when ``values`` is a NumPy array or a sequence
            (it is converted first); default: that of ``values``.
        corners: also the shells beyond the last reported one, out to the box's corners.

    Returns:
        [..., n_shells] (with ``corners``: [..., n_shells_to_corners(shape)]):
        ``sum_{components in shell k} w * values`` (the full-space sum), in the dtype of
        ``values``.  Differentiable in torch.
    """
    dims = check_shape(shape)
    values = _as_fourier_values(values, dims, like)
    xp = _backend.namespace(values)
    if xp.isdtype(values.dtype, "complex floating"):
        return (_real_shell_sum(xp.real(values), dims, corners)
                + 1j * _real_shell_sum(xp.imag(values), dims, corners))
    if not xp.isdtype(values.dtype, "real floating"):  # integer or boolean values
        values = xp.astype(values, xp.float64)
    return _real_shell_sum(values, dims, corners)


def shell_counts(shape: Any, like: Any = None) -> Any:
    """Number of full-space Fourier components in each shell, [n_shells] (float).

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        like: array whose library/device/precision the result takes (default NumPy float64).
    """
    return _grid("counts", shape, 1.0, like)


def shell_average(values: Any, shape: Any, like: Any = None) -> Any:
    """Mean over each shell of values in the rfft layout (full-space mean, Hermitian weights).

    Args:
        values: real or complex array [..., nz, ny, nx // 2 + 1].
        shape: the real-space shape ``(..., nz, ny, nx)``.
        like: as in `shell_sum`.

    Returns:
        [..., n_shells] = ``shell_sum(values) / shell_counts(shape)``.
    """
    dims = check_shape(shape)
    sums = shell_sum(values, dims, like)
    counts = shell_counts(dims, like=sums)
    return sums / counts


def power_spectrum(x: Any) -> Any:
    """Mean ``|F|**2`` per shell of a real map (ortho units: white noise of variance s2 gives s2).

    Args:
        x: real map [..., nz, ny, nx] (NumPy, torch or CuPy; a `Volume` is accepted).

    Returns:
        [..., n_shells] in the precision of ``x``.  Differentiable in torch.
    """
    x = check_map(x)
    f = _backend.rfftn(x)
    xp = _backend.namespace(f)
    return shell_average(xp.real(f) ** 2 + xp.imag(f) ** 2, x.shape)


def expand_shells(per_shell: Any, shape: Any, *, fill: float | None = None, like: Any = None) -> Any:
    """Broadcast per-shell values onto every rfft-layout component (inverse of `shell_average`).

    Args:
        per_shell: [..., L] values for shells ``0 .. L - 1`` (usually L = n_shells(shape)).
        shape: real-space shape ``(..., nz, ny, nx)``; only the last three entries are used.
        fill: value for components whose shell is ``>= L`` (the corners); default: the value of
            the last shell ``L - 1``.
        like: library/device when ``per_shell`` is a NumPy array or sequence (it is converted);
            default: that of ``per_shell``.

    Returns:
        [..., nz, ny, nx // 2 + 1], same dtype as ``per_shell``.  Differentiable in torch.
    """
    dims = check_shape(shape)
    if not array_api_compat.is_array_api_obj(per_shell):
        per_shell = np.asarray(per_shell, dtype=np.float64)
    if like is not None and _backend.backend_name(per_shell) == "numpy":
        place = _backend.placement(like)
        per_shell = _backend.from_numpy(per_shell, place, "complex" if np.iscomplexobj(per_shell) else "real")
    if per_shell.ndim < 1 or per_shell.shape[-1] < 1:
        raise CryofmInputError(
            f"per_shell must be [..., n_shells] with at least one shell, got shape {tuple(per_shell.shape)}"
        )
    xp = _backend.namespace(per_shell)
    length = int(per_shell.shape[-1])
    shells = _grid("shell", dims, 1.0, per_shell)
    out = per_shell[..., xp.clip(shells, 0, length - 1)]
    if fill is not None:
        outside = shells >= length
        out = xp.where(outside, xp.asarray(fill, dtype=out.dtype, device=array_api_compat.device(out)), out)
    return out


def resample_shells(per_shell: "torch.Tensor", box: float, new_box: float, n_out: int | None = None) -> "torch.Tensor":
    """Per-shell values of a box `box` long, interpolated linearly in frequency onto the shells of
    a box `new_box` long (shell k of a box L lies at k / L): `n_out` values (default `new_box // 2`)
    along the last axis, so a `[rows, shells]` table is resampled row by row in one call.

    Lengths are in voxels of a common voxel size, or both in Angstrom.  Clamped at the ends."""
    import torch

    n_out = int(new_box) // 2 if n_out is None else int(n_out)
    last = per_shell.shape[-1] - 1
    pos = (torch.arange(n_out, dtype=torch.float64) * box / new_box).clamp(0, last)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=last)
    frac = pos - lo
    values = per_shell.double().cpu()
    return values[..., lo] * (1 - frac) + values[..., hi] * frac
