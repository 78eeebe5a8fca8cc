"""Pieces shared by the posterior samplers: the result type, the prior's error power on a box,
and the sample loop that gives a mean and a per-voxel standard deviation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from cryofm.fourier import expand_shells, resample_shells

__all__ = ["PosteriorResult", "error_power_grid", "check_grid", "summarize", "network_velocity"]

ERROR_POWER_BOX = 64  # prior.error_power(t) is measured on 64^3 boxes (shells 0..31)


@dataclass
class PosteriorResult:
    """Output of a posterior sampler.

    mean: `[B, 1, D, H, W]` mean over the K samples of each batch item.
    std: `[B, 1, D, H, W]` per-voxel standard deviation over the samples (None when K == 1).
    """

    mean: torch.Tensor
    std: torch.Tensor | None


def network_velocity(prior, x: torch.Tensor, t: torch.Tensor, refine: bool = False) -> torch.Tensor:
    """The velocity the samplers use: by default the network alone, `prior.velocity(x, t,
    refine=False)` for a prior with SURE refinement (`cryofm.prior.sure`), whose noise model (white
    noise of power t^2 in x_t) the samplers' inputs need not follow (a deterministic flow feeds
    noise-free x_t); `refine=True` where they do (dc's posterior samples with fresh noise at every
    step).  Any other object with the contract gives `prior.velocity(x, t)`.  The error table
    `prior.error_power` is measured for the network alone."""
    if getattr(prior, "refine", None) is not None:
        return prior.velocity(x, t, refine=refine)
    return prior.velocity(x, t)


def check_grid(grid: torch.Tensor) -> torch.Tensor:
    """Validate a time grid: 1-D, strictly decreasing, from <= 1 to exactly 0."""
    grid = torch.as_tensor(grid, dtype=torch.float64).flatten()
    if grid.numel() < 2 or float(grid[-1]) != 0.0 or float(grid[0]) > 1.0 or not bool((grid[1:] < grid[:-1]).all()):
        raise ValueError(f"the time grid must decrease strictly from at most 1 to exactly 0, got {grid.tolist()}")
    return grid


def error_power_grid(prior, t: float, shape: tuple[int, int, int], device) -> torch.Tensor:
    """`prior.error_power(t)` (per shell of a 64^3 box) on the rfft grid of `shape`, float32, > 0."""
    per_shell = torch.as_tensor(prior.error_power(float(t)), dtype=torch.float64).flatten()
    per_shell = resample_shells(per_shell, ERROR_POWER_BOX, max(shape))
    return expand_shells(per_shell.to(device), tuple(shape)).float().clamp_min(1e-10)


def summarize(run: Callable[[torch.Generator | None], torch.Tensor], samples: int,
              generator: torch.Generator | None) -> PosteriorResult:
    """Call `run(generator)` `samples` times (each `[B, 1, D, H, W]`); mean and std over the calls."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    total = total_sq = None
    for _ in range(samples):
        x = run(generator).double()
        total = x if total is None else total + x
        total_sq = x**2 if total_sq is None else total_sq + x**2
    mean = total / samples
    std = None
    if samples > 1:
        std = ((total_sq / samples - mean**2).clamp_min(0) * samples / (samples - 1)).sqrt().float()
    return PosteriorResult(mean.float(), std)
