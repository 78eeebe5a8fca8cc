"""cryofm.fourier filters: analytic response to single Fourier modes, inverses, backends, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import (
    apply_fourier_filter,
    bfactor,
    bfactor_filter,
    lowpass,
    lowpass_filter,
    radial_frequency,
)

N = 32


def _mode(kz, ky, kx, n=N):
    """A real plane wave with integer wave vector (cycles per box)."""
    z, y, x = np.meshgrid(*(np.arange(n),) * 3, indexing="ij")
    return np.cos(2 * np.pi * (kz * z + ky * y + kx * x) / n + 0.3)


def test_bfactor_scales_a_plane_wave_by_exp_minus_b_s2_over_4():
    vs = 1.3
    wave = _mode(2, 3, 1)
    s2 = (2**2 + 3**2 + 1**2) / (N * vs) ** 2
    for b in (80.0, -40.0):
        np.testing.assert_allclose(bfactor(wave, b, vs), math.exp(-b * s2 / 4) * wave, atol=1e-12)
    x = np.random.default_rng(0).standard_normal((N, N, N))
    np.testing.assert_allclose(bfactor(bfactor(x, 50.0, vs), -50.0, vs), x, atol=1e-10)


def test_lowpass_passes_keeps_half_and_removes_plane_waves():
    vs = 1.0
    res = N * vs / 8  # cut-off at shell 8, edge of 2 shells: 1 up to shell 7, 0 from shell 9
    for k, gain in ((7, 1.0), (8, 0.5), (9, 0.0), (3, 1.0)):
        wave = _mode(0, k, 0)
        np.testing.assert_allclose(lowpass(wave, res, vs), gain * wave, atol=1e-12)
    hard = lowpass_filter((N, N, N), res, vs, edge_width_shells=0)
    np.testing.assert_array_equal(hard, (radial_frequency((N, N, N), vs) <= 1 / res).astype(float))
    filt = lowpass_filter((N, N, N), res, vs)
    assert filt.shape == (N, N, N // 2 + 1) and filt.min() >= 0 and filt.max() <= 1


def test_apply_fourier_filter_identity_and_shape_checks():
    x = np.random.default_rng(1).standard_normal((2, 10, 12, 9))
    np.testing.assert_allclose(apply_fourier_filter(x, np.ones((10, 12, 5))), x, atol=1e-12)
    np.testing.assert_allclose(apply_fourier_filter(x, np.full((1, 1, 1), 2.0)), 2 * x, atol=1e-12)
    with pytest.raises(CryofmInputError, match="rfft layout"):
        apply_fourier_filter(x, np.ones((10, 12, 9)))
    with pytest.raises(CryofmInputError, match="resolution_A"):
        lowpass(x, 0.0, 1.0)


def test_torch_filters_match_numpy():
    x = np.random.default_rng(2).standard_normal((2, 16, 14, 12)).astype(np.float32)
    t = torch.from_numpy(x)
    got = lowpass(t, 5.0, 1.1)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), lowpass(x, 5.0, 1.1), atol=1e-5)
    np.testing.assert_allclose(bfactor(t, 30.0, 1.1).numpy(), bfactor(x, 30.0, 1.1), atol=1e-5)
    f = bfactor_filter(x.shape, 30.0, 1.1, like=t)
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float32


def test_gradients_flow_through_filters():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: lowpass(v, 3.0, 1.0), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda v: bfactor(v, 5.0, 1.0), (x,), fast_mode=True)
    b = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda bb: bfactor(x.detach(), bb, 1.0), (b,), fast_mode=True)
    filt = torch.rand(6, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: apply_fourier_filter(x.detach(), f), (filt,), fast_mode=True)
