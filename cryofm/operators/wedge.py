"""Missing-wedge completion: `A` keeps the Fourier components a tilt series measured.

Geometry: the beam runs along z; a projection at tilt `theta` about the tilt axis (y by default)
measures the central slice perpendicular to the tilted beam, so a component `(kz, ky, kx)` is
measured when `theta = atan(-kz / kx)` (about y; about x: `atan(-kz / ky)`) lies inside the tilt
range.  The wedge is symmetric under `k -> -k`, so the rfft mask is Hermitian-consistent.
"""

from __future__ import annotations

import math

import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import missing_wedge_mask, wedge_mask_from_angles
from cryofm.operators.base import DiagonalOperator, rfft_shape

__all__ = ["WedgeOperator", "wedge_mask", "check_tilt_range", "tilt_range_from_angles"]


def check_tilt_range(tilt_range: tuple[float, float]) -> tuple[float, float]:
    """Validate a tilt range in degrees; both ends inside (-90, 90), min < max."""
    try:
        low, high = (float(v) for v in tilt_range)
    except (TypeError, ValueError):
        raise CryofmInputError(f"tilt range must be two angles in degrees, got {tilt_range!r}; e.g. (-60, 60)") from None
    if not (-90.0 < low < high < 90.0):
        raise CryofmInputError(
            f"tilt range must satisfy -90 < min < max < 90 degrees, got ({low:g}, {high:g}); e.g. --tilt-range -60 60"
        )
    return low, high


def wedge_mask(shape: tuple[int, int, int], tilt_range: tuple[float, float] = (-60.0, 60.0), tilt_axis: str = "y",
               tilt_angles=None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool tensor `(D, H, W//2+1)`: True on the measured rfft components of a `(D, H, W)` grid.

    Args:
        shape: real grid `(D, H, W)`, indexed [z, y, x]; the beam runs along z.
        tilt_range: `(min, max)` tilt in degrees, inside (-90, 90) (used when `tilt_angles` is None).
        tilt_axis: "y" (default) or "x".
        tilt_angles: tilt angles in degrees of a tilt series: the union of their central slabs
            (`cryofm.fourier.wedge_mask_from_angles`), which at high frequency leaves the gaps
            between tilts unmeasured.
    """
    if tilt_axis not in ("x", "y"):
        raise CryofmInputError(f"tilt axis must be 'x' or 'y' (the beam runs along z), got {tilt_axis!r}")
    like = torch.zeros(1, device=device)
    if tilt_angles is not None:
        tilt_range_from_angles(tilt_angles)
        mask = wedge_mask_from_angles(shape, list(tilt_angles), tilt_axis=tilt_axis, like=like)
    else:
        mask = missing_wedge_mask(shape, check_tilt_range(tilt_range), tilt_axis=tilt_axis, like=like)
    return mask > 0.5


class WedgeOperator(DiagonalOperator):
    """Keep the measured wedge: gain 1 where measured, 0 elsewhere (model grid = data grid).

    Args:
        shape: grid `(D, H, W)`.
        noise_power: per-component noise power, scalar or `(D, H, W//2+1)`.
        tilt_range: degrees; tilt_axis: "y" (default) or "x"; tilt_angles: a tilt series' angles
            (degrees; overrides `tilt_range`, see `wedge_mask`).
    """

    def __init__(self, shape, noise_power: torch.Tensor | float, tilt_range=(-60.0, 60.0), tilt_axis: str = "y",
                 tilt_angles=None) -> None:
        shape = tuple(int(s) for s in shape)
        self.tilt_range = tilt_range_from_angles(tilt_angles) if tilt_angles is not None else check_tilt_range(tilt_range)
        self.tilt_axis = tilt_axis
        gain = wedge_mask(shape, self.tilt_range, tilt_axis, tilt_angles=tilt_angles).float()
        noise = torch.as_tensor(noise_power, dtype=torch.float32).expand(rfft_shape(shape)).clone()
        super().__init__(shape, gain, noise)


def tilt_range_from_angles(angles) -> tuple[float, float]:
    """The `(min, max)` of a list of tilt angles in degrees (a tilt series' measured range)."""
    values = [float(a) for a in angles]
    if not values or not all(math.isfinite(v) for v in values):
        raise CryofmInputError(f"tilt angles must be finite numbers, got {angles!r}")
    return check_tilt_range((min(values), max(values)))

