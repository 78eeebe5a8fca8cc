"""Anisotropic noise: denoising with a noise power that depends on direction as well as shell.

Maps from preferred particle orientations have noise that is stronger along some directions of
Fourier space.  Half maps measure it: each rfft component is assigned to the nearest of a fixed
set of cone axes (the three coordinate axes and the four body diagonals, each with its Friedel
opposite), and the noise power is averaged per shell within each cone.
"""

from __future__ import annotations

import numpy as np
import torch

from cryofm.fourier import expand_shells, frequency_grid, rfftn, shell_sum
from cryofm.operators.base import DiagonalOperator, rfft_shape

__all__ = ["CONE_AXES", "cone_labels", "cone_shell_noise", "expand_cone_shells", "noise_power_in_cones",
           "AnisotropicDenoiseOperator"]

# (dz, dy, dx); a component and its opposite share an axis (|k . a| is used)
CONE_AXES = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1))


def cone_labels(shape: tuple[int, int, int], axes=CONE_AXES) -> np.ndarray:
    """Int array `(D, H, W//2+1)`: the index of the cone axis nearest each component's direction."""
    fz, fy, fx = (np.asarray(f, dtype=np.float64) for f in frequency_grid(shape))
    k = np.stack(np.broadcast_arrays(fz * shape[0], fy * shape[1], fx * shape[2]))  # in voxel units of Fourier space
    a = np.asarray(axes, dtype=np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return np.argmax(np.abs(np.einsum("ad,d...->a...", a, k)), axis=0)


def cone_shell_noise(half1, half2, average: bool = True, axes=CONE_AXES) -> torch.Tensor:
    """Noise power per cone and shell from two half maps `(D, H, W)` -> `[len(axes), max(D,H,W)//2]`.

    For each cone and shell: half the mean `|F1 - F2|^2` (one half's noise), halved again for the
    average of the halves (`average=True`).  A shell without components in a cone takes the
    isotropic value of that shell.
    """
    shape = tuple(half1.shape[-3:])
    diff = np.asarray(rfftn(np.asarray(half1, dtype=np.float64) - np.asarray(half2, dtype=np.float64)))
    power = 0.5 * np.abs(diff) ** 2
    labels = cone_labels(shape, axes)
    ns = max(shape) // 2
    iso = shell_sum(power, shape)[:ns] / np.maximum(shell_sum(np.ones_like(power), shape)[:ns], 1e-30)
    table = np.empty((len(axes), ns))
    for c in range(len(axes)):
        member = (labels == c).astype(np.float64)
        count = shell_sum(member, shape)[:ns]
        table[c] = np.where(count > 0, shell_sum(member * power, shape)[:ns] / np.maximum(count, 1e-30), iso)
    if average:
        table = table / 2
    return torch.as_tensor(table)


def expand_cone_shells(table: torch.Tensor, shape: tuple[int, int, int], axes=CONE_AXES) -> torch.Tensor:
    """Per-component values `(D, H, W//2+1)` from a `[cones, shells]` table (corners: the last shell)."""
    shape = tuple(int(s) for s in shape)
    labels = torch.as_tensor(cone_labels(shape, axes))
    per_cone = torch.stack([expand_shells(torch.as_tensor(row), shape) for row in table])
    return torch.gather(per_cone, 0, labels[None].to(per_cone.device))[0]


def noise_power_in_cones(half1: torch.Tensor, half2: torch.Tensor, average: bool = True, axes=CONE_AXES) -> torch.Tensor:
    """Noise power per rfft component `(D, H, W//2+1)` from two half maps `(D, H, W)`
    (`cone_shell_noise` expanded onto the grid)."""
    return expand_cone_shells(cone_shell_noise(half1, half2, average, axes), tuple(half1.shape[-3:]), axes)


class AnisotropicDenoiseOperator(DiagonalOperator):
    """`y = x + n` with a noise power per component (e.g. from `noise_power_in_cones`)."""

    def __init__(self, shape, noise_power: torch.Tensor) -> None:
        shape = tuple(int(s) for s in shape)
        super().__init__(shape, torch.ones(rfft_shape(shape)), torch.as_tensor(noise_power).float())
