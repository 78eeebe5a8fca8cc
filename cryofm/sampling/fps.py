"""`fps`: CryoFM's flow posterior sampling (Zhou et al., ICLR 2025).

An Euler step of the prior's flow plus a likelihood-guidance step: the gradient, taken with
respect to `x_t` and back-propagated through the network, of the weighted data misfit of the
prior's estimate `x_hat(x_t) = x_t - t v(x_t, t)`,

    L(x_t) = sum_k w_k |Y_k - (A X_hat)_k|^2 / (N_k + |A_k|^2 E_t(k)),

where `E_t` is the prior's error power at `t` (`prior.error_power`): the
Gaussian likelihood of `y` given `x_t` when `x ~ N(x_hat, E_t)` (as in pseudo-inverse guidance),
which keeps the nearly noiseless components from dominating the normalised gradient early on;
normalised to unit root-mean-square per voxel and weighted by
`zeta * min(lambda_max, t / (1 - t))` per unit of time:

    x_t' = x_t + (t' - t) v  -  (t - t') zeta min(lambda_max, t/(1-t)) grad L / rms(grad L).

`cryofm.prior.Prior.velocity` is differentiable in `x` (its weights are frozen, so a graph is
built only because `x` requires grad here), so the gradient includes the network's Jacobian.
"""

from __future__ import annotations

from typing import Callable

import torch

from cryofm.sampling._posterior import PosteriorResult, check_grid, error_power_grid, network_velocity, summarize

__all__ = ["sample_fps", "fps_step", "guidance_weight"]


def guidance_weight(t: float, lambda_max: float) -> float:
    """CryoFM's decayed guidance weight `min(lambda_max, t / (1 - t))` (lambda_max at t = 1)."""
    return lambda_max if t >= 1.0 else min(lambda_max, t / (1.0 - t))


def fps_step(prior, operator, y_f, x, t: float, t_next: float, *, zeta: float, lambda_max: float) -> torch.Tensor:
    """One guided Euler step from `t` to `t_next`; `x` is `[B, 1, D, H, W]`."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        v = network_velocity(prior, x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype))
        x_hat = x - t * v
        extra = error_power_grid(prior, t, operator.shape, x.device)
        misfit = operator.misfit(x_hat, y_f, extra).sum()
        (grad,) = torch.autograd.grad(misfit, x)
    rms = grad.pow(2).flatten(1).mean(dim=1).sqrt().clamp_min(1e-20).view(-1, 1, 1, 1, 1)
    step = (t - t_next) * zeta * guidance_weight(t, lambda_max)
    return (x + (t_next - t) * v - step * grad / rms).detach()


def sample_fps(prior, operator, y_f: torch.Tensor, grid: torch.Tensor, *, samples: int = 1, zeta: float = 1.0,
               lambda_max: float = 5.0, generator: torch.Generator | None = None,
               callback: Callable[[int], None] | None = None,
               x_init: Callable[[torch.Generator | None], torch.Tensor] | None = None) -> PosteriorResult:
    """Flow posterior sampling of `x` given data `y_f` under `operator` (see the module docstring).

    Args:
        prior: anything with `velocity(x, t)` (the model contract), differentiable in `x`.
        operator: a `DiagonalOperator` on the model grid `(D, H, W)`.
        y_f: data rfft `[B, 1, *rfft_shape(operator.data_shape)]` (complex).
        grid: times from 1 (or lower) to exactly 0, decreasing.
        samples: K; the result holds their mean and per-voxel std.
        zeta, lambda_max: guidance step size and the cap of the weight `t / (1 - t)`.
        generator: torch.Generator for the initial noise; never global seeding.
        callback: called with the number of steps done after every step.
        x_init: optional `generator -> x_{grid[0]}` (defaults to standard normal noise).

    Returns:
        `PosteriorResult` with `mean` and `std` `[B, 1, D, H, W]`.
    """
    grid = check_grid(grid).tolist()
    shape = (y_f.shape[0], 1, *operator.shape)

    def run(gen):
        x = x_init(gen) if x_init is not None else torch.randn(shape, generator=gen, device=y_f.device)
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            x = fps_step(prior, operator, y_f, x, t, t_next, zeta=zeta, lambda_max=lambda_max)
            if callback is not None:
                callback(i + 1)
        return x

    return summarize(run, samples, generator)
