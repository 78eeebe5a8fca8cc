"""Posterior samplers against an analytic case.

`GaussianPrior` implements the model contract for a Gaussian data distribution whose Fourier
components are independent with power `S(f)` (a function of frequency): with
`x_t = (1-t) x + t e`, `E[x | x_t] = (1-t) S / ((1-t)^2 S + t^2) x_t` per component, and the
error of that estimate has power `S t^2 / ((1-t)^2 S + t^2)`.  With data `y = A x + n`, the
posterior mean is known in closed form per component.
"""

from __future__ import annotations

import math

import pytest
import torch

from cryofm.operators import DenoiseOperator, WedgeOperator
from cryofm.fourier import shell_index
from cryofm.prior.normalize import destandardize, standardize
from cryofm.sampling.dc import sample_dc
from cryofm.sampling.fps import sample_fps

_DIMS = (-3, -2, -1)


def spectrum(freq: torch.Tensor) -> torch.Tensor:
    """Signal power per component at `freq` cycles/voxel: falls from 8 at DC to ~0.1 at Nyquist."""
    return 8.0 * torch.exp(-(freq / 0.15) ** 2) + 0.1


class GaussianPrior:
    """The model contract for a Gaussian distribution with power `spectrum(f)` per component."""

    voxel_size = 1.5
    divisor = 4

    def __init__(self):
        self._cache = {}

    def _power(self, shape):
        if shape not in self._cache:
            self._cache[shape] = spectrum(shell_index(shape, like=torch.zeros(1, dtype=torch.float64)) / max(shape))
        return self._cache[shape]

    def _gain(self, t: torch.Tensor, shape):
        s = self._power(shape)
        t = t.double().view(-1, 1, 1, 1, 1).clamp(1e-6, 1.0)
        return (1 - t) * s / ((1 - t) ** 2 * s + t**2), t

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        gain, tt = self._gain(t, tuple(x.shape[-3:]))
        x_f = torch.fft.rfftn(x.double(), dim=_DIMS, norm="ortho")
        x_hat = torch.fft.irfftn(gain * x_f, s=x.shape[-3:], dim=_DIMS, norm="ortho")
        return ((x.double() - x_hat) / tt).to(x.dtype)

    def error_power(self, t: float) -> torch.Tensor:
        s = spectrum(torch.arange(32, dtype=torch.float64) / 64)
        t = min(max(t, 1e-6), 1.0)
        return s * t**2 / ((1 - t) ** 2 * s + t**2)

    def normalize(self, array, stats=None):
        return standardize(array, stats)

    def denormalize(self, array, stats):
        return destandardize(array, stats)

    def sample(self, shape, generator):
        """A draw `[1, 1, *shape]` from the distribution."""
        z = torch.randn(1, 1, *shape, generator=generator, dtype=torch.float64)
        z_f = torch.fft.rfftn(z, dim=_DIMS, norm="ortho") * self._power(shape).sqrt()
        return torch.fft.irfftn(z_f, s=shape, dim=_DIMS, norm="ortho").float()


SHAPE = (16, 16, 16)


def _problem(seed=0, noise=1.0):
    prior = GaussianPrior()
    g = torch.Generator().manual_seed(seed)
    x = prior.sample(SHAPE, g)
    y = x + math.sqrt(noise) * torch.randn(x.shape, generator=g)
    op = DenoiseOperator(SHAPE, torch.full((SHAPE[0] // 2 + 1,), noise))
    y_f = torch.fft.rfftn(y, dim=_DIMS, norm="ortho")
    s = prior._power(SHAPE)
    exact = torch.fft.irfftn(s / (s + noise) * y_f.to(torch.complex128), s=SHAPE, dim=_DIMS, norm="ortho").float()
    return prior, op, x, y, y_f, exact


def _grid(steps):
    return torch.linspace(1.0, 0.0, steps + 1)


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_dc_converges_to_the_exact_posterior_mean():
    # the deterministic dc flow is affine in its initial noise, so starting from 0 gives its mean
    prior, op, _, y, y_f, exact = _problem()
    zero = lambda gen: torch.zeros(1, 1, *SHAPE)  # noqa: E731
    err = _rel(sample_dc(prior, op, y_f, _grid(30), x_init=zero, adaptive_error=False).mean, exact)
    assert err < 0.01
    assert _rel(y, exact) > 0.3  # the data alone are far from it


def test_dc_samples_have_the_posterior_spread():
    prior, op, _, _, y_f, exact = _problem(seed=1)
    g = torch.Generator().manual_seed(5)
    res = sample_dc(prior, op, y_f, _grid(30), samples=3, generator=g, adaptive_error=False)
    s = prior._power(SHAPE)
    post_var = float((s * 1.0 / (s + 1.0)).mean())  # average posterior variance per voxel (white-ish)
    measured = float((res.std**2).mean())
    assert measured == pytest.approx(post_var, rel=0.2)


class OverconfidentPrior(GaussianPrior):
    """The same velocity, but an error power 20 times too small: it overrules good data."""

    def error_power(self, t):
        return super().error_power(t) / 20


def test_dc_adaptive_error_protects_good_data_from_an_overconfident_prior():
    prior, op, _, _, y_f, exact = _problem(seed=4, noise=0.05)
    zero = lambda gen: torch.zeros(1, 1, *SHAPE)  # noqa: E731
    wrong = OverconfidentPrior()
    fixed = sample_dc(wrong, op, y_f, _grid(8), x_init=zero, adaptive_error=False).mean
    adaptive = sample_dc(wrong, op, y_f, _grid(8), x_init=zero).mean
    assert _rel(adaptive, exact) < 0.5 * _rel(fixed, exact)


def test_dc_error_scale_restores_the_weights_of_a_table_that_is_too_small():
    prior, op, _, _, y_f, exact = _problem(seed=4, noise=0.05)
    zero = lambda gen: torch.zeros(1, 1, *SHAPE)  # noqa: E731
    honest = sample_dc(prior, op, y_f, _grid(8), x_init=zero, adaptive_error=False).mean
    wrong = sample_dc(OverconfidentPrior(), op, y_f, _grid(8), x_init=zero, adaptive_error=False).mean
    scaled = sample_dc(OverconfidentPrior(), op, y_f, _grid(8), x_init=zero, adaptive_error=False, error_scale=20.0).mean
    assert _rel(scaled, honest) < 1e-5
    assert _rel(wrong, honest) > 0.05


def test_restoration_scales_the_error_table_only_for_the_deterministic_flow():
    from cryofm.restore.pipeline import DETERMINISTIC_ERROR_SCALE, Settings

    assert Settings(samples=1).error_scale == DETERMINISTIC_ERROR_SCALE > 1.0
    assert Settings(samples=4).error_scale == 1.0  # posterior samples: the table's own inputs
    assert Settings(samples=1).to_dict()["error_scale"] == DETERMINISTIC_ERROR_SCALE


def test_dc_is_seeded_by_the_generator_only():
    prior, op, _, _, y_f, _ = _problem()
    a = sample_dc(prior, op, y_f, _grid(5), generator=torch.Generator().manual_seed(3), eta=0.5).mean
    torch.manual_seed(123)
    b = sample_dc(prior, op, y_f, _grid(5), generator=torch.Generator().manual_seed(3), eta=0.5).mean
    c = sample_dc(prior, op, y_f, _grid(5), generator=torch.Generator().manual_seed(4), eta=0.5).mean
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dc_fills_the_missing_wedge_with_the_prior():
    prior = GaussianPrior()
    g = torch.Generator().manual_seed(2)
    x = prior.sample(SHAPE, g)
    op = WedgeOperator(SHAPE, 0.01, tilt_range=(-50, 50))
    y_f = op.forward_fourier(torch.fft.rfftn(x, dim=_DIMS, norm="ortho"))
    zero = lambda gen: torch.zeros(1, 1, *SHAPE)  # noqa: E731
    mean = sample_dc(prior, op, y_f, _grid(25), x_init=zero, adaptive_error=False).mean
    mean_f = torch.fft.rfftn(mean, dim=_DIMS, norm="ortho")
    measured = op.gain > 0
    # measured components come back (noise 0.01 against power >= 0.1), missing ones go to the prior mean 0
    assert _rel(mean_f[..., measured], y_f[..., measured]) < 0.1
    assert float(mean_f[..., ~measured].abs().max()) < 1e-3


def test_fps_reduces_the_data_misfit():
    prior, op, x, _, y_f, _ = _problem(seed=3, noise=0.3)
    free = sample_fps(prior, op, y_f, _grid(10), zeta=0.0, generator=torch.Generator().manual_seed(0)).mean
    guided = sample_fps(prior, op, y_f, _grid(10), zeta=2.0, generator=torch.Generator().manual_seed(0)).mean
    assert float(op.misfit(guided, y_f)) < 0.5 * float(op.misfit(free, y_f))
    assert _rel(guided, x) < _rel(free, x)


def test_grid_must_end_at_zero():
    prior, op, _, _, y_f, _ = _problem()
    with pytest.raises(ValueError):
        sample_dc(prior, op, y_f, torch.linspace(1.0, 0.1, 5))
