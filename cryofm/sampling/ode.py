"""Unconditional sampling: Euler and Heun integration of dx/dt = v(x, t) from t = 1 to t = 0.

Each solver takes the model as a plain function `velocity(x, t)` (x [B, ...], t [B]) and an
explicit time grid (`time_grid`), so they know nothing of the network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cryofm.errors import CryofmInputError
from cryofm.sampling.grid import time_grid

__all__ = ["euler", "heun", "SOLVERS", "sample_prior"]

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _t(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((x.shape[0],), float(value), dtype=x.dtype, device=x.device)


def euler(velocity: Velocity, x: torch.Tensor, grid: torch.Tensor, callback=None) -> torch.Tensor:
    """First order: x <- x + (t_next - t) v(x, t) along the grid (from grid[0] to grid[-1])."""
    for i in range(len(grid) - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        x = x + (t_next - t) * velocity(x, _t(x, t))
        if callback is not None:
            callback(i + 1, len(grid) - 1)
    return x


def heun(velocity: Velocity, x: torch.Tensor, grid: torch.Tensor, callback=None) -> torch.Tensor:
    """Second order (trapezoidal predictor-corrector); 2 evaluations per step."""
    for i in range(len(grid) - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        h = t_next - t
        v0 = velocity(x, _t(x, t))
        x_pred = x + h * v0
        v1 = velocity(x_pred, _t(x, t_next))
        x = x + 0.5 * h * (v0 + v1)
        if callback is not None:
            callback(i + 1, len(grid) - 1)
    return x


SOLVERS = {"euler": euler, "heun": heun}


def sample_prior(prior, n: int, *, box: int = 64, steps: int = 50, solver: str = "heun", grid: str = "uniform",
                 seed: int = 0, batch: int = 1, callback=None) -> torch.Tensor:
    """Unconditional samples from a prior (standardised units).

    Args:
        prior: a `cryofm.prior.Prior` (or anything with `velocity`, `divisor`, `device`).
        n: number of samples; box: side in voxels (a multiple of `prior.divisor`).
        steps: ODE steps; solver: "euler" | "heun"; grid: time-grid kind; seed: noise seed.
        batch: samples integrated together.

    Returns:
        float32 [n, 1, box, box, box] on the CPU.
    """
    if solver not in SOLVERS:
        raise CryofmInputError(f"unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    if box % prior.divisor:
        raise CryofmInputError(f"box {box} is not a multiple of the prior's divisor {prior.divisor}")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((n, 1, box, box, box), generator=gen)
    ts = time_grid(steps, grid)
    out = []
    for s in range(0, n, batch):
        x = noise[s : s + batch].to(prior.device)
        out.append(SOLVERS[solver](prior.velocity, x, ts, callback).cpu())
    return torch.cat(out)
