"""Time grids for the flow ODE: `steps + 1` times from exactly 1.0 (noise) to exactly 0.0 (data).

(The reference implementation steps by `1000 // N` on an integer grid, which stops short of 0 when
N does not divide 1000; these grids always end at 0.)
"""

from __future__ import annotations

import torch

from cryofm.errors import CryofmInputError

__all__ = ["time_grid", "GRID_KINDS"]

GRID_KINDS = ("uniform", "quadratic", "cosine")


def time_grid(steps: int, kind: str = "uniform", *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Decreasing times t_0 = 1 > t_1 > ... > t_steps = 0, shape [steps + 1].

    kinds: "uniform" (t_i = 1 - i/steps); "quadratic" (t_i = (1 - i/steps)^2: finer steps near the
    data, where fine detail forms); "cosine" (t_i = cos(pi/2 * i/steps): finer near t = 1).

    Raises:
        CryofmInputError: steps < 1 or an unknown kind.
    """
    if not isinstance(steps, int) or steps < 1:
        raise CryofmInputError(f"steps must be a positive integer, got {steps!r}")
    u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    if kind == "uniform":
        t = 1.0 - u
    elif kind == "quadratic":
        t = (1.0 - u) ** 2
    elif kind == "cosine":
        t = torch.cos(0.5 * torch.pi * u)
    else:
        raise CryofmInputError(f"unknown time grid kind {kind!r}; choose one of {GRID_KINDS}")
    t[0], t[-1] = 1.0, 0.0
    return t.to(dtype)
