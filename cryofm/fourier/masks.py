"""Masks: missing wedge and cone in the rfft layout; soft spheres and automatic molecular masks
in real space.

Fourier masks are built on the rfft layout (nz, ny, nx // 2 + 1) from the physical frequency
components (``fftfreq`` per axis), are 1 where a component counts as measured/inside and 0
elsewhere, and are symmetric under ``k -> -k`` on the self-conjugate planes (kx = 0 and the x
Nyquist plane), so ``irfftn(mask * rfftn(x))`` is the orthogonal projection it should be.

Real-space masks are [nz, ny, nx] with values in [0, 1].  Default precision is float32 (masks
multiply maps); pass ``like=`` for another library, device or precision.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.ndimage

from cryofm.errors import CryofmInputError

from . import _backend
from ._checks import check_map, check_shape, check_voxel_size
from .filters import lowpass

__all__ = ["auto_mask", "cone_mask", "missing_wedge_mask", "soft_sphere_mask", "wedge_mask_from_angles"]

_AXES = {"z": 0, "y": 1, "x": 2}


def _place(like: Any) -> _backend.Placement:
    return _backend.placement(like, default_dtype="float32")


def _freq_cycles(dims: tuple[int, int, int]) -> list[np.ndarray]:
    """Broadcastable (kz, ky, kx) in cycles per voxel (float64, NumPy)."""
    nz, ny, nx = dims
    return [
        np.fft.fftfreq(nz).reshape(nz, 1, 1),
        np.fft.fftfreq(ny).reshape(1, ny, 1),
        np.fft.rfftfreq(nx).reshape(1, 1, nx // 2 + 1),
    ]


def _symmetrize_planes(mask: np.ndarray, nx: int) -> np.ndarray:
    """AND of the mask at k and -k on the self-conjugate planes (kx = 0 and x Nyquist)."""
    out = mask.copy()
    planes = [0] + ([nx // 2] if nx % 2 == 0 and nx > 1 else [])
    for p in planes:
        plane = mask[:, :, p]
        mirrored = np.roll(np.flip(plane, axis=(0, 1)), shift=(1, 1), axis=(0, 1))
        out[:, :, p] = plane & mirrored
    return out


def _tilt_geometry(tilt_axis: str, beam_axis: str) -> tuple[int, int, int]:
    if tilt_axis not in _AXES or beam_axis not in _AXES or tilt_axis == beam_axis:
        raise CryofmInputError(
            f"tilt_axis and beam_axis must be two different axes of 'x', 'y', 'z', got "
            f"tilt_axis={tilt_axis!r}, beam_axis={beam_axis!r}"
        )
    t, b = _AXES[tilt_axis], _AXES[beam_axis]
    p = 3 - t - b
    return t, b, p


def missing_wedge_mask(
    shape: Any,
    tilt_range: Sequence[float] = (-60.0, 60.0),
    *,
    tilt_axis: str = "y",
    beam_axis: str = "z",
    like: Any = None,
) -> Any:
    """Measured region of a single-axis tilt series in the rfft layout (1 measured, 0 missing).

    Geometry: tilting by angle ``theta`` about ``tilt_axis`` measures the central plane that
    contains the tilt axis and the direction ``cos(theta) e_p + sin(theta) e_b`` in Fourier space,
    where ``e_b`` is the beam axis and ``e_p`` the third axis (for the defaults, beam z and tilt
    axis y: ``e_p = x``).  A component is measured iff its direction angle ``atan2(k_b, k_p)``,
    taken on the line through the origin (folded into [-90, 90] degrees), lies in
    ``[theta_min, theta_max]``; for a symmetric range this is ``|k_b| <= |k_p| tan(theta_max)``.
    Asymmetric ranges are handled as given (the sign follows ``atan2(k_b, k_p)``).  DC and the
    tilt axis itself (``k_b = k_p = 0``) lie in every plane and are measured.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        tilt_range: ``(theta_min, theta_max)`` in degrees, ``-90 <= theta_min <= theta_max <= 90``.
        tilt_axis, beam_axis: ``"x"``, ``"y"`` or ``"z"`` (different).
        like: library/device/precision of the result (default NumPy float32).

    Returns:
        (nz, ny, nx // 2 + 1) array of 0/1.
    """
    dims = check_shape(shape)
    try:
        lo, hi = (float(a) for a in tilt_range)
    except (TypeError, ValueError) as err:
        raise CryofmInputError(f"tilt_range must be (min, max) in degrees, got {tilt_range!r}") from err
    if not (-90.0 <= lo <= hi <= 90.0):
        raise CryofmInputError(
            f"tilt_range must satisfy -90 <= min <= max <= 90 degrees, got {tilt_range!r}"
        )
    _, b, p = _tilt_geometry(tilt_axis, beam_axis)
    k = _freq_cycles(dims)
    kb = np.broadcast_to(k[b], _backend.rfft_shape(dims))
    kp = np.broadcast_to(k[p], _backend.rfft_shape(dims))
    # fold the direction onto the half-line kp > 0 (or kp == 0): the angle of the line through 0
    sign = np.where(kp < 0, -1.0, 1.0)
    angle = np.degrees(np.arctan2(kb * sign, kp * sign))
    on_axis = (kb == 0) & (kp == 0)
    vertical = (kp == 0) & ~on_axis  # the beam direction itself: angle +-90
    measured = (angle >= lo) & (angle <= hi) & ~vertical
    measured |= on_axis | (vertical & (hi >= 90.0 or lo <= -90.0))
    measured = _symmetrize_planes(measured, dims[2])
    return _backend.from_numpy(measured.astype(np.float64), _place(like), "real")


def wedge_mask_from_angles(
    shape: Any,
    tilt_angles_deg: Sequence[float],
    *,
    slab_width_vox: float = 1.0,
    tilt_axis: str = "y",
    beam_axis: str = "z",
    like: Any = None,
) -> Any:
    """Measured region of a tilt series given its tilt angles: the union of the central slabs.

    Each tilt ``theta`` measures a central plane (geometry as in `missing_wedge_mask`); its slab
    holds the components within ``slab_width_vox / 2`` Fourier voxels of the plane (distance
    ``n * |k . normal|``, ``n`` the largest box dimension, ``k`` in cycles per voxel).  At low
    frequency neighbouring slabs overlap and the region equals the wedge of
    ``(min(angles), max(angles))``; at high frequency the gaps between tilts (beyond the Crowther
    resolution) stay unmeasured.  For the plain range use `missing_wedge_mask`.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        tilt_angles_deg: tilt angles in degrees (any order, at least one).
        slab_width_vox: full slab thickness in Fourier voxels (> 0).
        tilt_axis, beam_axis, like: as in `missing_wedge_mask`.

    Returns:
        (nz, ny, nx // 2 + 1) array of 0/1.
    """
    dims = check_shape(shape)
    angles = np.radians(np.asarray(tilt_angles_deg, dtype=np.float64).ravel())
    if angles.size == 0 or not np.all(np.isfinite(angles)):
        raise CryofmInputError(f"tilt_angles_deg must be finite angles in degrees, got {tilt_angles_deg!r}")
    if not slab_width_vox > 0:
        raise CryofmInputError(f"slab_width_vox must be > 0, got {slab_width_vox}")
    _, b, p = _tilt_geometry(tilt_axis, beam_axis)
    k = _freq_cycles(dims)
    out_shape = _backend.rfft_shape(dims)
    kb = np.broadcast_to(k[b], out_shape)
    kp = np.broadcast_to(k[p], out_shape)
    n = max(dims)
    measured = np.zeros(out_shape, dtype=bool)
    for theta in angles:
        # plane spanned by the tilt axis and cos(theta) e_p + sin(theta) e_b; normal (-sin, cos)
        distance = n * np.abs(-kp * math.sin(theta) + kb * math.cos(theta))
        measured |= distance <= 0.5 * slab_width_vox
    measured = _symmetrize_planes(measured, dims[2])
    return _backend.from_numpy(measured.astype(np.float64), _place(like), "real")


def cone_mask(shape: Any, axis: Any, half_angle_deg: float, *, like: Any = None) -> Any:
    """Double cone around ``axis`` in the rfft layout: 1 where the direction of ``k`` is within
    ``half_angle_deg`` of ``+axis`` or ``-axis`` (DC included), 0 elsewhere.

    A missing cone (e.g. preferred orientation, dual-axis tomography) is measured where
    ``1 - cone_mask`` is 1.

    Args:
        shape: real-space shape ``(..., nz, ny, nx)``.
        axis: ``"x"``, ``"y"``, ``"z"`` or a direction ``(dz, dy, dx)``.
        half_angle_deg: cone half angle in degrees, 0..90.
        like: library/device/precision of the result (default NumPy float32).

    Returns:
        (nz, ny, nx // 2 + 1) array of 0/1.
    """
    dims = check_shape(shape)
    if isinstance(axis, str):
        if axis not in _AXES:
            raise CryofmInputError(f"axis must be 'x', 'y', 'z' or (dz, dy, dx), got {axis!r}")
        direction = np.zeros(3)
        direction[_AXES[axis]] = 1.0
    else:
        direction = np.asarray(axis, dtype=np.float64).ravel()
        if direction.shape != (3,) or not np.all(np.isfinite(direction)) or not np.any(direction):
            raise CryofmInputError(f"axis must be 'x', 'y', 'z' or a non-zero (dz, dy, dx), got {axis!r}")
        direction = direction / np.linalg.norm(direction)
    if not 0.0 <= float(half_angle_deg) <= 90.0:
        raise CryofmInputError(f"half_angle_deg must be in [0, 90], got {half_angle_deg}")
    kz, ky, kx = _freq_cycles(dims)
    along = np.abs(kz * direction[0] + ky * direction[1] + kx * direction[2])
    radius = np.sqrt(kz**2 + ky**2 + kx**2)
    inside = along >= radius * math.cos(math.radians(float(half_angle_deg))) - 1e-12
    inside = _symmetrize_planes(np.broadcast_to(inside, _backend.rfft_shape(dims)), dims[2])
    return _backend.from_numpy(inside.astype(np.float64), _place(like), "real")


def _cosine_edge(distance: np.ndarray, start: float, width: float) -> np.ndarray:
    """1 for distance <= start, 0 for distance >= start + width, a raised cosine between."""
    if width <= 0:
        return (distance <= start).astype(np.float64)
    t = np.clip((distance - start) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def soft_sphere_mask(
    shape: Any,
    radius_vox: float,
    edge_vox: float,
    center: Sequence[float] | None = None,
    *,
    like: Any = None,
) -> Any:
    """Real-space sphere with a raised-cosine edge.

    Args:
        shape: ``(..., nz, ny, nx)``.
        radius_vox: radius in voxels where the edge starts (value 1 inside).
        edge_vox: width of the cosine fall-off in voxels (0: hard edge).
        center: ``(cz, cy, cx)`` in voxel indices; default the box centre ``(n // 2)`` per axis
            (the FFT centre).
        like: library/device/precision of the result (default NumPy float32).

    Returns:
        [nz, ny, nx] with values in [0, 1].
    """
    dims = check_shape(shape)
    if not (radius_vox >= 0 and edge_vox >= 0):
        raise CryofmInputError(f"radius_vox and edge_vox must be >= 0, got {radius_vox} and {edge_vox}")
    c = [n // 2 for n in dims] if center is None else [float(v) for v in center]
    if len(c) != 3:
        raise CryofmInputError(f"center must be (cz, cy, cx) in voxels, got {center!r}")
    z, y, x = (np.arange(n, dtype=np.float64) for n in dims)
    r = np.sqrt(
        (z[:, None, None] - c[0]) ** 2 + (y[None, :, None] - c[1]) ** 2 + (x[None, None, :] - c[2]) ** 2
    )
    return _backend.from_numpy(_cosine_edge(r, float(radius_vox), float(edge_vox)), _place(like), "real")


def auto_mask(
    x: Any,
    voxel_size: float,
    *,
    lowpass_A: float = 15.0,
    threshold: float | None = None,
    dilate_A: float = 3.0,
    soft_edge_A: float = 6.0,
    min_component_fraction: float = 0.1,
    min_component_radius_A: float | None = None,
) -> Any:
    """Automatic soft molecular mask of a map.

    1. Low-pass the map to ``lowpass_A`` (cosine edge, `lowpass`).
    2. Threshold it.  Default threshold: ``median + 0.2 * (max - median)`` of the low-passed map,
       i.e. 20% of the peak height above the solvent level (the median: most of a box is
       solvent).  This follows the "fraction of the maximum" rule of dynamic masking in common
       cryo-EM packages and is robust to the map's scale and offset; pass ``threshold=`` (in the
       units of the low-passed map) for full control.
    3. Keep the connected components (6-connectivity) whose volume is at least
       ``min_component_fraction`` of the largest one, or at least that of a ball of radius
       ``min_component_radius_A`` (default ``lowpass_A``).  This drops isolated noise specks,
       which the low-pass leaves about one resolution element (``lowpass_A``) across, but keeps
       every molecule of a crowded box (a field of particles, a filament's neighbours, a crop
       of a complex), where one molecule can be small beside a merged cluster of its
       neighbours: the relative rule alone dropped whole molecules there.
    4. Dilate by ``dilate_A`` and add a raised-cosine edge ``soft_edge_A`` wide, both by the
       Euclidean distance to the kept region.

    Args:
        x: real map [nz, ny, nx] (NumPy, torch or CuPy; computed with NumPy/scipy.ndimage and
            returned in the input's library, device and precision).
        voxel_size: Angstrom.
        lowpass_A, dilate_A, soft_edge_A: Angstrom (dilation and edge may be 0).
        threshold: absolute threshold on the low-passed map, or None for the default.
        min_component_fraction: in [0, 1].
        min_component_radius_A: Angstrom (>= 0); None: ``lowpass_A``.  Components of at least
            this ball's volume are kept whatever their size relative to the largest.

    Returns:
        [nz, ny, nx] mask, 1 in the molecule, 0 far from it.

    Raises:
        CryofmInputError: for a batch of maps, or a threshold that keeps no voxel.
    """
    x = check_map(x)
    if x.ndim != 3:
        raise CryofmInputError(f"auto_mask takes one map [nz, ny, nx], got shape {tuple(x.shape)}")
    vs = check_voxel_size(voxel_size)
    if dilate_A < 0 or soft_edge_A < 0:
        raise CryofmInputError(f"dilate_A and soft_edge_A must be >= 0, got {dilate_A} and {soft_edge_A}")
    if not 0.0 <= min_component_fraction <= 1.0:
        raise CryofmInputError(f"min_component_fraction must be in [0, 1], got {min_component_fraction}")
    if min_component_radius_A is not None and not min_component_radius_A >= 0:
        raise CryofmInputError(f"min_component_radius_A must be >= 0 (Angstrom), got {min_component_radius_A}")
    place = _backend.placement(x)
    data = np.asarray(_backend.to_numpy(x), dtype=np.float64)
    smooth = lowpass(data, lowpass_A, vs)
    if threshold is None:
        median = float(np.median(smooth))
        threshold = median + 0.2 * (float(smooth.max()) - median)
    binary = smooth > threshold
    if not binary.any():
        raise CryofmInputError(
            f"auto_mask threshold {threshold:.4g} keeps no voxel of the {lowpass_A} A low-passed map "
            f"(max {smooth.max():.4g}); pass a lower threshold="
        )
    labels, count = scipy.ndimage.label(binary)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        radius = float(lowpass_A if min_component_radius_A is None else min_component_radius_A)
        ball = 4.0 / 3.0 * np.pi * radius**3 / vs**3  # voxels
        keep = np.flatnonzero((sizes >= min_component_fraction * sizes.max()) | (sizes >= ball)) + 1
        binary = np.isin(labels, keep)
    distance = scipy.ndimage.distance_transform_edt(~binary) * vs
    mask = _cosine_edge(distance, float(dilate_A), float(soft_edge_A))
    return _backend.from_numpy(mask, place, "real")
