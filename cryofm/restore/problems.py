"""The three restoration tasks as forward models on the prior's grid, for any tile shape.

A `Problem` knows the data's noise power per shell (normalised units, for a box of side `box`
on the data's grid) and builds, for a tile (or whole-box) shape on the model grid, the operator
and the data's Fourier components.  Noise power per component is box-independent with the ortho
FFT, so a tile's shells are the whole box's shells interpolated by frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cryofm.fourier import expand_shells
from cryofm.operators import DenoiseOperator, UpsampleOperator, WedgeOperator
from cryofm.operators.anisotropic import expand_cone_shells
from cryofm.operators.base import DiagonalOperator
from cryofm.operators.wedge import wedge_mask
from cryofm.fourier import resample_shells

__all__ = ["Problem", "DenoiseProblem", "AnisotropicDenoiseProblem", "WedgeProblem", "UpsampleProblem"]

_DIMS = (-3, -2, -1)


@dataclass
class Problem:
    """Denoising-like base: data on the model grid.

    noise_shells: `[box // 2]` float64 noise power per shell (normalised units) of a box of side `box`.
    """

    noise_shells: torch.Tensor
    box: int

    def noise_for(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """Noise power per component on the rfft grid of `shape` (same voxel size as `box`)."""
        shells = resample_shells(self.noise_shells, self.box, max(shape))
        return expand_shells(shells, tuple(shape)).float().clamp_min(1e-12)

    def operator(self, shape: tuple[int, int, int]) -> DiagonalOperator:
        return DenoiseOperator(shape, self.noise_for(shape))

    def data_fourier(self, y: torch.Tensor) -> torch.Tensor:
        """Data rfft for the operator of `y.shape[-3:]`; `y` is `[B, 1, D, H, W]` on the model grid."""
        return torch.fft.rfftn(y, dim=_DIMS, norm="ortho")

    def constraint(self, shape: tuple[int, int, int], voxel_size: float):
        """A real-space constraint for the `dc` sampler's estimates on tiles of `shape`, or None."""
        return None


@dataclass
class DenoiseProblem(Problem):
    pass


@dataclass
class AnisotropicDenoiseProblem(Problem):
    """Denoising with a noise power per direction and shell (`directional_noise` of the half maps
    on the model grid, normalised units): `cone_shells` is `[len(axes), box // 2]`."""

    cone_shells: torch.Tensor | None = None
    axes: tuple[tuple[float, float, float], ...] = ()

    def noise_for(self, shape):
        table = resample_shells(self.cone_shells, self.box, max(shape))
        return expand_cone_shells(table, tuple(shape), self.axes).float().clamp_min(1e-12)


@dataclass
class WedgeProblem(Problem):
    tilt_range: tuple[float, float] = (-60.0, 60.0)
    tilt_axis: str = "y"
    tilt_angles: tuple[float, ...] | None = None

    def operator(self, shape):
        return WedgeOperator(shape, self.noise_for(shape), self.tilt_range, self.tilt_axis, tilt_angles=self.tilt_angles)

    def measured(self, shape) -> np.ndarray:
        """0/1 float64 rfft mask of the measured components on a grid of `shape`."""
        return wedge_mask(shape, self.tilt_range, self.tilt_axis, tilt_angles=self.tilt_angles).double().numpy()

    def constraint(self, shape, voxel_size):
        """The solvent (`SupportConstraint`; it leaves tiles whose support fills the box alone)."""
        from cryofm.restore.support import SupportConstraint

        return SupportConstraint(self.measured(shape), voxel_size)


@dataclass
class UpsampleProblem(Problem):
    """Data on a coarser grid: `ratio` = model voxel size / data voxel size (< 1).

    `noise_shells` and `box` refer to the data (coarse) grid.  The model-grid data `y` passed to
    `data_fourier` is the coarse data Fourier-padded onto the model grid; cropping it back to the
    tile's coarse shape is lossless.
    """

    ratio: float = 0.5

    def coarse_shape(self, shape):
        return tuple(max(2, min(int(round(s * self.ratio)), s)) for s in shape)

    def operator(self, shape):
        coarse = self.coarse_shape(shape)
        return UpsampleOperator(shape, coarse, self.noise_for(coarse))

    def data_fourier(self, y):
        from cryofm.fourier import fourier_crop

        return torch.fft.rfftn(fourier_crop(y, self.coarse_shape(tuple(y.shape[-3:]))), dim=_DIMS, norm="ortho")
