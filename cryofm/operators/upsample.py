"""Upsampling: `A` crops the model grid's spectrum to the (coarser) data grid.

With ortho normalisation a band-limited map sampled on a grid of `n` voxels and on one of `N`
voxels (same physical box) has Fourier coefficients related by `Y = sqrt(n / N) X`, so
`A` gathers the model components the data grid holds and scales them by `sqrt(n / N)`.  The data
grid's Nyquist planes (even sides) have no Hermitian partner inside the crop; they are treated as
unmeasured (gain 0), which keeps `A` exactly diagonal and `A^T` exactly its adjoint.
"""

from __future__ import annotations

import math

import torch

from cryofm.operators.base import DiagonalOperator, rfft_shape

__all__ = ["UpsampleOperator", "crop_index"]


def crop_index(fine_shape: tuple[int, int, int], coarse_shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Map each coarse-grid rfft component to its fine-grid rfft component.

    Returns:
        `(index, inside)`: LongTensor of flat fine-grid rfft indices, shape `rfft_shape(coarse_shape)`,
        and a bool tensor of the same shape, False on the coarse grid's Nyquist planes.
    """
    if any(c > f for c, f in zip(coarse_shape, fine_shape)):
        raise ValueError(f"coarse shape {coarse_shape} must not exceed the fine shape {fine_shape}")
    (nz, ny, nx), (fz, fy, fx) = coarse_shape, fine_shape
    kz = torch.fft.fftfreq(nz, d=1.0 / nz).round().long()
    ky = torch.fft.fftfreq(ny, d=1.0 / ny).round().long()
    kx = torch.arange(nx // 2 + 1)
    inside = (
        (kz.abs() * 2 != nz)[:, None, None]
        & (ky.abs() * 2 != ny)[None, :, None]
        & (kx * 2 != nx)[None, None, :]
    )
    iz, iy = kz % fz, ky % fy
    fx_half = fx // 2 + 1
    index = (iz[:, None, None] * fy + iy[None, :, None]) * fx_half + kx[None, None, :]
    return index, inside


class UpsampleOperator(DiagonalOperator):
    """Fourier crop from the model grid `shape` to the data grid `data_shape` (same physical box).

    Args:
        shape: model (fine) grid `(D, H, W)`.
        data_shape: data (coarse) grid, each side <= the model's.
        noise_power: noise power per data component, a scalar or a tensor of shape
            `rfft_shape(data_shape)`.
    """

    def __init__(self, shape, data_shape, noise_power: torch.Tensor | float) -> None:
        index, inside = crop_index(tuple(shape), tuple(data_shape))
        scale = math.sqrt(math.prod(data_shape) / math.prod(shape))
        gain = inside.float() * scale
        noise = torch.as_tensor(noise_power, dtype=torch.float32)
        noise = noise.expand(rfft_shape(tuple(data_shape))).clone()
        super().__init__(shape, gain, noise, data_shape=data_shape, index=index)
