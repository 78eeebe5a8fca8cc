"""`dc`: closed-form data-consistency posterior sampling (no back-propagation).

At each time `t` of the grid (flow convention: `x_t = (1-t) x + t e`, `x_hat = x_t - t v`):

1. `x_hat = x_t - t v(x_t, t)`, the prior's estimate of the clean map, whose error has power
   `E_t(k) = prior.error_power(t)` per shell;
2. combine it with the data per Fourier component as a Gaussian posterior mean,
   `X_c = (A^T N^-1 Y + X_hat / E_t) / (diag(A^T N^-1 A) + 1 / E_t)`;
3. step along the straight path to `t'`: `x_t' = (1-t') x_c + t' e_c`, with the noise estimate
   `e_c = (x_t - (1-t) x_c) / t` consistent with `x_c`, optionally refreshed with new noise
   (`eta` in [0, 1]: `e <- sqrt(1-eta^2) e_c + eta z`).

The prior's error power comes from validation maps; a map unlike them (a real map with its own
features, say) gets a larger error.  With `adaptive_error` (default) the error power used is, per
shell, the larger of `E_t` and the data's own estimate of it, the mean of
`|Y - A X_hat|^2 - N` over the measured components (method of moments), so that good data are
not overruled by a prior that is wrong about this map.

For a Gaussian prior this is Euler integration of the exact posterior flow (with `eta = 0`, many
steps give posterior samples).  Using the prior's own noise estimate `(x_t - (1-t) x_hat) / t`
instead collapses the spread and biases the mean towards the data (one Gaussian component with
prior power 4, noise power 1 and y = 2: 400 steps give a mean of 2.01 and variance 0, against the
posterior's 1.6 and 0.8; with `e_c` they give 1.60 and 0.79).  Operators are
diagonal in Fourier space, so each step costs one velocity call and one FFT pair.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from cryofm.fourier import expand_shells, shell_sum
from cryofm.sampling._posterior import PosteriorResult, check_grid, error_power_grid, network_velocity, summarize

__all__ = ["sample_dc", "dc_step", "empirical_error", "Constraint"]

_DIMS = (-3, -2, -1)


Constraint = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def dc_step(prior, operator, y_f, information, precision, x, t: float, t_next: float, *, eta: float = 0.0,
            adaptive_error: bool = True, generator: torch.Generator | None = None,
            constrain: Constraint | None = None, error_scale: float = 1.0, refine: bool = False) -> torch.Tensor:
    """One step from `t` to `t_next` (see the module docstring); `x` is `[B, 1, D, H, W]`.

    `constrain(x_c, data_precision, prior_precision)`, when given, replaces the combined estimate
    `x_c` by one that also satisfies a real-space constraint (the solvent of a wedge map,
    `cryofm.restore.support.SupportConstraint`); the precisions (rfft grid) say how much each of
    `x_c`'s components is worth: `A^T N^-1 A + 1/E_t` and `1/E_t`.  `error_scale` multiplies the
    prior's error table `E_t` (see `sample_dc`); `refine` asks for the prior's SURE-refined velocity
    (see `sample_dc`)."""
    v = network_velocity(prior, x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype), refine=refine)
    x_hat = x - t * v
    x_hat_f = torch.fft.rfftn(x_hat, dim=_DIMS, norm="ortho")
    error = error_scale * error_power_grid(prior, t, operator.shape, x.device)
    if adaptive_error:
        error = torch.maximum(error, empirical_error(operator, x_hat_f, y_f))
    inv_err = 1.0 / error
    x_c_f = (information + x_hat_f * inv_err) / (precision + inv_err)
    x_c = torch.fft.irfftn(x_c_f, s=operator.shape, dim=_DIMS, norm="ortho")
    if constrain is not None:
        x_c = constrain(x_c, precision + inv_err, inv_err)
    if t_next == 0.0:
        return x_c
    e = (x - (1.0 - t) * x_c) / t
    if eta > 0.0:
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        e = math.sqrt(1.0 - eta**2) * e + eta * z
    return (1.0 - t_next) * x_c + t_next * e


def empirical_error(operator, x_hat_f: torch.Tensor, y_f: torch.Tensor) -> torch.Tensor:
    """Per-shell error power of `x_hat` estimated from the data: the mean over each shell's measured
    components of `|Y - A X_hat|^2 - N` (on the model grid), >= 0; `[B, 1, D, H, W//2+1]`.
    Shells without measured components get 0 (the prior's error power then stands)."""
    residual, noise, measured = operator.residual_power(x_hat_f, y_f)
    shape = operator.shape
    count = shell_sum(measured, shape)
    per_shell = shell_sum(measured * (residual - noise), shape) / count.clamp_min(1e-12)
    per_shell = torch.where(count > 0, per_shell, torch.zeros_like(per_shell)).clamp_min(0.0)
    return expand_shells(per_shell.float(), shape)


@torch.no_grad()
def sample_dc(prior, operator, y_f: torch.Tensor, grid: torch.Tensor, *, samples: int = 1, eta: float = 0.0,
              adaptive_error: bool = True, generator: torch.Generator | None = None, callback: Callable[[int], None] | None = None,
              x_init: Callable[[torch.Generator | None], torch.Tensor] | None = None,
              constrain: Constraint | None = None, error_scale: float = 1.0, refine: bool = False) -> PosteriorResult:
    """Posterior samples of `x` given data `y_f` under `operator` with the flow prior `prior`.

    Args:
        prior: anything with `velocity(x, t)` and `error_power(t)` (the model contract).
        operator: a `DiagonalOperator` on the model grid `(D, H, W)`.
        y_f: data rfft `[B, 1, *rfft_shape(operator.data_shape)]` (complex).
        grid: times from 1 (or lower) to exactly 0, decreasing.
        samples: K; the result holds their mean and per-voxel std.
        eta: fraction of fresh noise in the noise estimate at each step (0: deterministic flow).
        adaptive_error: raise the prior's error power to the data's own estimate where larger.
        generator: torch.Generator for the initial noise (and fresh noise); never global seeding.
        callback: called with the number of steps done after every step (progress, cancellation).
        x_init: optional `generator -> x_{grid[0]}` (defaults to standard normal noise).
        constrain: optional real-space constraint applied to each step's estimate (see `dc_step`).
        error_scale: factor on the prior's error table.  The table holds for `x_t` drawn with real
            noise (posterior sampling, 1); a flow started from the noise's mean (one sample, the
            restoration default) feeds the network noise-free inputs, on which `x_hat` is far
            worse than the table says: `python benchmarks/dc_error.py` measures 2-160x in the
            shells the data hardly inform (see `cryofm.restore.pipeline.DETERMINISTIC_ERROR_SCALE`).
        refine: use the prior's SURE-refined velocity (`cryofm.prior.sure`; a prior without the
            switch gives its `velocity` as it is).  Its noise model, `x_t = (1-t) x + t z` with
            white `z`, holds only for posterior samples from full noise with `eta = 1`; the error
            table, measured for the network alone, then overstates the error a little.

    Returns:
        `PosteriorResult` with `mean` and `std` `[B, 1, D, H, W]`.
    """
    grid = check_grid(grid).tolist()
    device = y_f.device
    information = operator.information(y_f)
    precision = operator.precision()
    shape = (y_f.shape[0], 1, *operator.shape)

    def run(gen):
        x = x_init(gen) if x_init is not None else torch.randn(shape, generator=gen, device=device)
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            x = dc_step(prior, operator, y_f, information, precision, x, t, t_next, eta=eta,
                        adaptive_error=adaptive_error, generator=gen, constrain=constrain, error_scale=error_scale,
                        refine=refine)
            if callback is not None:
                callback(i + 1)
        return x

    return summarize(run, samples, generator)
