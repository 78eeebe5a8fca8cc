"""Time grids and the unconditional ODE solvers against an analytic flow."""

from __future__ import annotations

import math

import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.sampling import GRID_KINDS, euler, heun, sample_prior, time_grid


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_time_grid_runs_from_one_to_exactly_zero(kind):
    for steps in [*range(1, 60), 97, 128, 333, 999, 1000, 1001]:
        g = time_grid(steps, kind)
        assert g.shape == (steps + 1,)
        assert float(g[0]) == 1.0 and float(g[-1]) == 0.0  # exact, even where steps does not divide 1000
        assert torch.all(g[1:] < g[:-1])


def test_time_grid_rejects_bad_input():
    with pytest.raises(CryofmInputError):
        time_grid(0)
    with pytest.raises(CryofmInputError, match="kind"):
        time_grid(10, "log")


# Gaussian data x ~ N(mu, s^2) per component, x_t = (1-t) x + t e: the flow is linear,
# x_t = (1-t) mu + sigma_t z with sigma_t^2 = (1-t)^2 s^2 + t^2 and z = x_1, so the exact
# endpoint of the ODE from x_1 is x_0 = mu + s x_1.  Velocity: E[e - x | x_t].
MU, S = 1.5, 0.4


def gaussian_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    var = (1 - t) ** 2 * S**2 + t**2
    return -MU + (t - (1 - t) * S**2) / var * (x - (1 - t) * MU)


def test_gaussian_velocity_is_the_conditional_expectation():
    g = torch.Generator().manual_seed(0)
    x = MU + S * torch.randn(400000, generator=g, dtype=torch.float64)
    e = torch.randn(400000, generator=g, dtype=torch.float64)
    t = 0.6
    xt = (1 - t) * x + t * e
    target = e - x
    # E[target | x_t] is linear in x_t: regress and compare slope/intercept with the formula
    a = torch.stack([xt, torch.ones_like(xt)], 1)
    coef = torch.linalg.lstsq(a, target[:, None]).solution.flatten()
    probe = torch.tensor([0.0, 1.0], dtype=torch.float64)
    v = gaussian_velocity(probe, torch.full((2,), t))
    assert float(coef[1]) == pytest.approx(float(v[0]), abs=0.01)
    assert float(coef[0]) == pytest.approx(float(v[1] - v[0]), abs=0.01)


@pytest.mark.parametrize("solver,order", [(euler, 1), (heun, 2)])
def test_solvers_converge_at_their_order(solver, order):
    x1 = torch.randn(64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact = MU + S * x1
    errors = []
    for steps in (16, 32, 64):
        out = solver(gaussian_velocity, x1.clone(), time_grid(steps))
        errors.append(float((out - exact).abs().max()))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(r - order) < 0.3 for r in rates), (errors, rates)
    assert errors[-1] < (0.05 if order == 1 else 5e-4)


def test_sample_prior_shapes_and_seed():
    from cryofm.prior import Prior

    prior = Prior.from_config("tiny")
    calls = []
    a = sample_prior(prior, 2, box=8, steps=3, solver="heun", seed=5, callback=lambda i, n: calls.append(i))
    b = sample_prior(prior, 2, box=8, steps=3, solver="heun", seed=5)
    assert a.shape == (2, 1, 8, 8, 8) and torch.equal(a, b) and calls == [1, 2, 3, 1, 2, 3]
    with pytest.raises(CryofmInputError, match="divisor"):
        sample_prior(prior, 1, box=7)
    with pytest.raises(CryofmInputError, match="solver"):
        sample_prior(prior, 1, box=8, solver="rk4")
