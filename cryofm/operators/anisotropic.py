"""Anisotropic noise: denoising with a noise power that depends on direction as well as shell.

Maps from preferred particle orientations have noise that is stronger along some directions of
Fourier space: a direction sampled by few particle views carries the noise of few images.  The
noise power is then close to separable, `N(k) = N_shell(|k|) w(k / |k|)`: the views' coverage
`w` of each direction scales every shell alike.  `directional_noise` measures it from the half
maps' difference that way.  Each rfft component is assigned to the nearest of a fixed set of
directions (a Fibonacci hemisphere: a component and its Friedel opposite share one); the ratio of
each component's power to its shell's mean is averaged per direction within a few radial bands,
so every direction's weight pools thousands of components rather than the few of one shell, and
is shrunk toward isotropy where a bin holds few.  The table it returns, noise power per direction
and shell, keeps each shell's mean power.

Whether the noise is anisotropic at all is a test on the same numbers: the spread of the
directions' unshrunk weights against the spread isotropic noise gives (chi-square per degree of
freedom, about 1 for isotropic noise).  `cryofm.denoise` with half maps uses the directional
model when the test says so (or when asked to).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from cryofm.fourier import frequency_grid, hermitian_weight, rfftn, shell_average, shell_index
from cryofm.operators.base import DiagonalOperator, rfft_shape

__all__ = ["DIRECTIONS", "BANDS", "direction_axes", "directions_for", "cone_labels", "DirectionalNoise",
           "directional_noise", "expand_cone_shells", "noise_power_in_cones", "AnisotropicDenoiseOperator"]

DIRECTIONS = 128  # the most direction bins (a 64^3 box fills 128 x 4 bins with ~270 components each)
BANDS = 4  # radial bands of equal width in shell index, each with its own direction weights
MIN_PER_BIN = 200  # fewer directions for small boxes, so that each (band, direction) bin holds this many
SHRINK = 20.0  # pseudo-components of weight 1 added to every bin: few components -> isotropic
# chi-square per degree of freedom above 1 + max(MIN_EXCESS, SIGMAS * sqrt(2 / dof)): anisotropic
SIGMAS, MIN_EXCESS = 5.0, 0.5


def direction_axes(m: int) -> tuple[tuple[float, float, float], ...]:
    """`m` unit directions `(dz, dy, dx)` spread evenly over the hemisphere `dz > 0` (a Fibonacci
    lattice); with `|k . a|` every direction of Fourier space has its nearest axis among them."""
    if m < 1:
        raise ValueError(f"need at least one direction, got {m}")
    i = np.arange(m) + 0.5
    z = 1.0 - i / m
    r = np.sqrt(1.0 - z * z)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return tuple((float(a), float(b), float(c)) for a, b, c in zip(z, r * np.sin(phi), r * np.cos(phi)))


def directions_for(shape: tuple[int, int, int]) -> int:
    """How many directions a box of `shape` can measure: each of `BANDS` x directions bins should
    hold about `MIN_PER_BIN` components (Hermitian-weighted, out to the last shell), at most
    `DIRECTIONS`, at least 6."""
    components = 4.0 / 3.0 * math.pi * (max(shape) // 2) ** 3 * math.prod(shape) / max(shape) ** 3
    return int(min(DIRECTIONS, max(6, components // (BANDS * MIN_PER_BIN))))


def _axes(shape: tuple[int, int, int], axes) -> tuple[tuple[float, float, float], ...]:
    """`axes` as a hashable tuple of float triples; None: `direction_axes(directions_for(shape))`."""
    if axes is None:
        return direction_axes(directions_for(shape))
    return tuple(tuple(float(v) for v in a) for a in axes)


@functools.lru_cache(maxsize=8)
def _labels(shape: tuple[int, int, int], axes: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    fz, fy, fx = (np.asarray(f, dtype=np.float64) for f in frequency_grid(shape))  # cycles per voxel
    k = np.stack(np.broadcast_arrays(fz, fy, fx), axis=-1).reshape(-1, 3)
    a = np.asarray(axes, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    labels = np.empty(len(k), dtype=np.int64)
    step = max(1, 2**25 // (8 * len(a)))  # rows per chunk: ~32 MB of projections at a time
    for start in range(0, len(k), step):
        labels[start:start + step] = np.argmax(np.abs(k[start:start + step] @ a.T), axis=1)
    labels = labels.reshape(rfft_shape(shape))
    labels.setflags(write=False)
    return labels


def cone_labels(shape: tuple[int, int, int], axes=None) -> np.ndarray:
    """Int array `(D, H, W//2+1)`: the index of the axis nearest each component's direction
    (directions by frequency in cycles per voxel, so a non-cubic box keeps its geometry); `axes`
    default to `direction_axes(directions_for(shape))`.  Cached; read-only."""
    shape = tuple(int(s) for s in shape[-3:])
    return _labels(shape, _axes(shape, axes))


@dataclass
class DirectionalNoise:
    """The half maps' noise per direction and shell, and the test of whether it is anisotropic.

    table: `[len(axes), max(shape) // 2]` float64 noise power per direction and shell (each shell's
        mean over its components is the isotropic estimate's).
    axes: the directions `(dz, dy, dx)`.
    weights: `[BANDS, len(axes)]` each direction's power over its shell's mean, per radial band.
    chi2_per_dof, dof: spread of the unshrunk weights against isotropic noise's (about 1 there).
    """

    table: torch.Tensor
    axes: tuple[tuple[float, float, float], ...]
    weights: np.ndarray
    chi2_per_dof: float
    dof: int

    @property
    def threshold(self) -> float:
        return 1.0 + max(MIN_EXCESS, SIGMAS * math.sqrt(2.0 / max(self.dof, 1)))

    @property
    def significant(self) -> bool:
        """True where the noise differs between directions beyond what chance gives."""
        return self.chi2_per_dof > self.threshold

    def summary(self) -> dict:
        """For a report: the test, and the range of the direction weights."""
        return {"chi2_per_dof": round(self.chi2_per_dof, 3), "threshold": round(self.threshold, 3), "dof": self.dof,
                "directions": len(self.axes), "bands": int(self.weights.shape[0]),
                "weight_min": round(float(self.weights.min()), 3), "weight_max": round(float(self.weights.max()), 3)}


def directional_noise(half1, half2, average: bool = True, axes=None) -> DirectionalNoise:
    """Noise power per direction and shell from two half maps `(D, H, W)` (module docstring).

    Per component, one half's noise is half of `|F1 - F2|^2`; `average` halves it again for the
    average of the halves.  Shell 0 and the box's corners keep the isotropic value.
    """
    shape = tuple(int(s) for s in half1.shape[-3:])
    axes = _axes(shape, axes)
    diff = np.asarray(rfftn(np.asarray(half1, dtype=np.float64) - np.asarray(half2, dtype=np.float64)))
    power = 0.5 * np.abs(diff) ** 2
    weight = np.broadcast_to(np.asarray(hermitian_weight(shape), dtype=np.float64), power.shape)
    ns = max(shape) // 2
    shell = np.minimum(np.asarray(shell_index(shape)), ns)  # ns: the corners
    iso = np.asarray(shell_average(power, shape), dtype=np.float64)
    inside = (shell >= 1) & (shell < ns)
    ratio = np.where(inside, power / np.maximum(iso[np.minimum(shell, ns - 1)], 1e-300), 0.0)
    labels = cone_labels(shape, axes)
    band_of_shell = np.minimum((np.arange(ns) - 1) * BANDS // max(ns - 1, 1), BANDS - 1).clip(0)
    band = band_of_shell[np.minimum(shell, ns - 1)]
    m = len(axes)
    weights = np.ones((BANDS, m))
    chi2, dof = 0.0, 0
    for b in range(BANDS):
        sel = inside & (band == b)
        total = np.bincount(labels[sel], weights=(ratio * weight)[sel], minlength=m)
        n = np.bincount(labels[sel], weights=weight[sel], minlength=m)
        weights[b] = (total + SHRINK) / (n + SHRINK)
        # a bin's mean of n/2 independent exponential ratios has variance 2/n under isotropy
        ok = n >= MIN_PER_BIN / 4
        chi2 += float(np.sum((total[ok] / n[ok] - 1.0) ** 2 * n[ok] / 2.0))
        dof += int(ok.sum())
    table = iso[None, :] * weights[band_of_shell].T
    table[:, 0] = iso[0]
    # each shell keeps its mean power: rescale by the shell's mean of the table over its components
    in_cone = np.bincount((labels * (ns + 1) + shell).ravel(), weights=weight.ravel(),
                          minlength=m * (ns + 1)).reshape(m, ns + 1)[:, :ns]
    mean = (in_cone * table).sum(axis=0) / np.maximum(in_cone.sum(axis=0), 1e-30)
    table *= np.where(mean > 0, iso / np.maximum(mean, 1e-300), 1.0)[None, :]
    if average:
        table = table / 2
    return DirectionalNoise(torch.as_tensor(table), axes, weights, chi2 / max(dof, 1), dof)


def expand_cone_shells(table: torch.Tensor, shape: tuple[int, int, int], axes) -> torch.Tensor:
    """Per-component values `(D, H, W//2+1)` from a `[directions, shells]` table on a box of
    `shape` with the table's shells (the corners take the last shell)."""
    shape = tuple(int(s) for s in shape)
    table = torch.as_tensor(table)
    index = cone_labels(shape, axes) * table.shape[1] + np.minimum(np.asarray(shell_index(shape)), table.shape[1] - 1)
    return table.reshape(-1)[torch.from_numpy(index).to(table.device)]


def noise_power_in_cones(half1, half2, average: bool = True, axes=None) -> torch.Tensor:
    """Noise power per rfft component `(D, H, W//2+1)` from two half maps `(D, H, W)`
    (`directional_noise` expanded onto the grid)."""
    noise = directional_noise(half1, half2, average, axes)
    return expand_cone_shells(noise.table, tuple(half1.shape[-3:]), noise.axes)


class AnisotropicDenoiseOperator(DiagonalOperator):
    """`y = x + n` with a noise power per component (e.g. from `noise_power_in_cones`)."""

    def __init__(self, shape, noise_power: torch.Tensor) -> None:
        shape = tuple(int(s) for s in shape)
        super().__init__(shape, torch.ones(rfft_shape(shape)), torch.as_tensor(noise_power).float())
