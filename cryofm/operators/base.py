"""`DiagonalOperator`: a forward model `y = A x + n` with `A` diagonal in Fourier space.

Convention (docs/ARCHITECTURE.md): `rfftn` over the last three axes, `norm="ortho"`, DC at
index 0.  `x` lives on the *model grid* (the prior's 1.5 A grid, shape `(D, H, W)`); `y` lives on
the *data grid* (`data_shape`; equal to `shape` except for upsampling).  Every data component `j`
(a point of the data grid's rfft half-space) sees one model component `index[j]` times a real
gain `gain[j]`, plus Gaussian noise of power `noise_power[j]` (the variance of that component;
white noise of variance s2 has power s2 per component):

    Y[j] = gain[j] * X[index[j]] + N[j],      E|N[j]|^2 = noise_power[j].

Components with `gain == 0` or infinite noise power carry no information.  Posterior samplers
need only `precision()` (diag of A^T N^-1 A on the model grid) and `information(y)` (A^T N^-1 y),
both model-grid rfft arrays: every update costs one FFT pair.
"""

from __future__ import annotations

import copy

import torch

from cryofm.fourier import hermitian_weight

__all__ = ["DiagonalOperator", "rfft_shape"]


def rfft_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Shape of the rfftn half-space of a real `(D, H, W)` grid: `(D, H, W // 2 + 1)`."""
    d, h, w = shape
    return (d, h, w // 2 + 1)


class DiagonalOperator:
    """`y = A x + n`, A diagonal in Fourier space (see the module docstring).

    Args:
        shape: model grid `(D, H, W)`.
        gain: real tensor of shape `rfft_shape(data_shape)`, the diagonal of A (>= 0).
        noise_power: real tensor of shape `rfft_shape(data_shape)`: noise power per data component
            (may be `inf` where nothing is measured).
        data_shape: data grid; None means `shape` (then `index` must be None).
        index: LongTensor of shape `rfft_shape(data_shape)`: the flat model-grid rfft component
            each data component sees; None is the identity map.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        gain: torch.Tensor,
        noise_power: torch.Tensor,
        data_shape: tuple[int, int, int] | None = None,
        index: torch.Tensor | None = None,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.data_shape = self.shape if data_shape is None else tuple(int(s) for s in data_shape)
        expected = rfft_shape(self.data_shape)
        for name, value in (("gain", gain), ("noise_power", noise_power)):
            if tuple(value.shape) != expected:
                raise ValueError(f"{name} must have shape {expected} (rfft of {self.data_shape}), got {tuple(value.shape)}")
        if index is None and self.data_shape != self.shape:
            raise ValueError(f"data shape {self.data_shape} differs from model shape {self.shape}: pass index=")
        self.gain = gain.float()
        self.noise_power = noise_power.float()
        self.index = index

    # -- device ------------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> "DiagonalOperator":
        """A shallow copy with every tensor on `device`."""
        out = copy.copy(self)
        out.gain, out.noise_power = self.gain.to(device), self.noise_power.to(device)
        out.index = None if self.index is None else self.index.to(device)
        return out

    # -- Fourier-space maps --------------------------------------------------------------------
    def _gather(self, x_f: torch.Tensor) -> torch.Tensor:
        """Model-grid rfft `[..., D, H, W//2+1]` -> data-grid rfft (no gain)."""
        if self.index is None:
            return x_f
        flat = x_f.reshape(*x_f.shape[:-3], -1)
        return flat[..., self.index.reshape(-1)].reshape(*x_f.shape[:-3], *self.index.shape)

    def _scatter(self, y_f: torch.Tensor) -> torch.Tensor:
        """Data-grid rfft -> model-grid rfft, zero where no data component maps (no gain)."""
        if self.index is None:
            return y_f
        out = y_f.new_zeros(*y_f.shape[:-3], *rfft_shape(self.shape))
        flat = out.reshape(*out.shape[:-3], -1)
        flat[..., self.index.reshape(-1)] = y_f.reshape(*y_f.shape[:-3], -1)
        return out

    def forward_fourier(self, x_f: torch.Tensor) -> torch.Tensor:
        """A in Fourier space: model rfft `[..., D, H, W//2+1]` -> data rfft."""
        return self._gather(x_f) * self.gain

    def adjoint_fourier(self, y_f: torch.Tensor) -> torch.Tensor:
        """A^T in Fourier space: data rfft -> model rfft."""
        return self._scatter(y_f * self.gain)

    # -- real-space maps -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x: real `[..., D, H, W]` on the model grid -> real `[..., *data_shape]`."""
        x_f = torch.fft.rfftn(x, dim=(-3, -2, -1), norm="ortho")
        return torch.fft.irfftn(self.forward_fourier(x_f), s=self.data_shape, dim=(-3, -2, -1), norm="ortho")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: real `[..., *data_shape]` -> real `[..., D, H, W]` on the model grid."""
        y_f = torch.fft.rfftn(y, dim=(-3, -2, -1), norm="ortho")
        return torch.fft.irfftn(self.adjoint_fourier(y_f), s=self.shape, dim=(-3, -2, -1), norm="ortho")

    # -- what the posterior samplers use ---------------------------------------------------------
    def _inverse_noise(self) -> torch.Tensor:
        """1 / noise power per data component (0 where the noise is infinite or the gain is 0)."""
        inv = torch.where(self.noise_power > 0, 1.0 / self.noise_power.clamp_min(1e-30), torch.zeros_like(self.noise_power))
        return torch.where(self.gain > 0, inv, torch.zeros_like(inv))

    def precision(self) -> torch.Tensor:
        """diag(A^T N^-1 A) on the model rfft grid `[D, H, W//2+1]` (0 where unmeasured)."""
        return self._scatter(self.gain**2 * self._inverse_noise())

    def information(self, y_f: torch.Tensor) -> torch.Tensor:
        """A^T N^-1 y on the model rfft grid, from the data rfft `y_f` `[..., *rfft_shape(data_shape)]`."""
        return self._scatter(self.gain * self._inverse_noise() * y_f)

    def residual_power(self, x_f: torch.Tensor, y_f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The data residual of `x` seen on the model grid, for empirical error estimates.

        Args:
            x_f: model rfft `[..., D, H, W//2+1]`; y_f: data rfft (broadcastable).

        Returns:
            `(residual, noise, measured)` on the model rfft grid: `|Y - A X|^2 / gain^2`,
            `N / gain^2` (the part of the residual that is noise) and a 0/1 float mask of the
            components that are measured (gain > 0, finite noise); 0 elsewhere.
        """
        measured = ((self.gain > 0) & torch.isfinite(self.noise_power)).to(self.gain.dtype)
        inv_gain2 = torch.where(measured > 0, 1.0 / self.gain.clamp_min(1e-12) ** 2, torch.zeros_like(self.gain))
        residual = (y_f - self.forward_fourier(x_f)).abs() ** 2 * inv_gain2
        noise = torch.where(measured > 0, self.noise_power, torch.zeros_like(self.noise_power)) * inv_gain2
        return self._scatter(residual), self._scatter(noise), self._scatter(measured)

    def misfit(self, x: torch.Tensor, y_f: torch.Tensor, extra_power: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted data misfit `sum_j w_j |Y_j - (A X)_j|^2 / (N_j + gain_j^2 P_j)` per batch item.

        Args:
            x: real `[B, 1, D, H, W]` on the model grid (differentiable).
            y_f: data rfft `[*rfft_shape(data_shape)]` or broadcastable batch.
            extra_power: optional model-grid rfft `[D, H, W//2+1]` power `P` of the error of `x`
                (e.g. the prior's error power at time t), added to the noise power as seen through A.

        Returns:
            `[B]` tensor; `w` is the Hermitian weight, so this is the full-space sum.
        """
        x_f = torch.fft.rfftn(x, dim=(-3, -2, -1), norm="ortho")
        residual = y_f - self.forward_fourier(x_f)
        noise = self.noise_power
        if extra_power is not None:
            noise = noise + self.gain**2 * self._gather(extra_power)
        inverse = torch.where((self.gain > 0) & (noise > 0), 1.0 / noise.clamp_min(1e-30), torch.zeros_like(noise))
        weight = hermitian_weight(self.data_shape, like=x) * inverse
        return (weight * residual.abs() ** 2).flatten(1).sum(dim=1)
