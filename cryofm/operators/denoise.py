"""Denoising: `A` is the identity; the noise power comes from half maps or from the solvent.

- Half maps `h1 = x + n1`, `h2 = x + n2`: `h1 - h2 = n1 - n2`, so each half's noise power per
  shell is half the mean `|F1 - F2|^2`; their average has half that again.
- One map and a solvent mask `m` (1 in the protein, soft edge): the noise power per shell is the
  power of `(1 - m) y`, divided by the solvent's volume fraction `mean((1 - m)^2)`, which is
  exact for white noise and a good estimate for noise coloured slowly with frequency.
"""

from __future__ import annotations

from cryofm.errors import CryofmInputError

import torch

from cryofm.fourier import expand_shells, half_map_noise_power, power_spectrum
from cryofm.operators.base import DiagonalOperator, rfft_shape

__all__ = ["DenoiseOperator", "noise_power_from_halves", "noise_power_from_solvent"]


def noise_power_from_halves(half1: torch.Tensor, half2: torch.Tensor, average: bool = True) -> torch.Tensor:
    """Noise power per shell from two half maps `(D, H, W)` -> `(max(D,H,W)//2,)` float64.

    Returns the noise power of the average of the halves (`average=True`) or of one half.
    """
    per_half = half_map_noise_power(half1.double(), half2.double())
    return per_half / 2 if average else per_half


def noise_power_from_solvent(volume: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Noise power per shell of `volume` `(D, H, W)` from its solvent, outside the soft `mask` (1 = protein).

    Returns `(max(D,H,W)//2,)` float64.

    Raises:
        CryofmInputError (a ValueError): the mask leaves less than 2% of the box as solvent.
    """
    solvent = (1.0 - mask.double().clamp(0, 1))
    fraction = float((solvent**2).mean())
    if fraction < 0.02:
        raise CryofmInputError(f"the mask leaves {100 * fraction:.1f}% of the box as solvent; "
                         "noise cannot be estimated from the solvent: pass half maps or a tighter mask")
    centred = volume.double() - (volume.double() * solvent).sum() / solvent.sum()
    return power_spectrum(centred * solvent) / fraction


class DenoiseOperator(DiagonalOperator):
    """`y = x + n`: identity gain, noise power per component (per shell values expanded).

    Args:
        shape: grid `(D, H, W)`.
        noise_power: per-shell noise power `(S,)` (expanded by shell) or per component `(D, H, W//2+1)`.
    """

    def __init__(self, shape, noise_power: torch.Tensor) -> None:
        shape = tuple(int(s) for s in shape)
        noise = torch.as_tensor(noise_power)
        if noise.ndim == 1:
            noise = expand_shells(noise, shape)
        gain = torch.ones(rfft_shape(shape))
        super().__init__(shape, gain, noise.float())
