"""cryofm.fourier noise: coloured noise spectra, half-map noise power, FSC <-> SNR, Wiener average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import (
    coloured_noise,
    fsc_from_snr,
    fsc_full_from_half,
    half_map_noise_power,
    n_shells,
    noise_power_per_component,
    power_spectrum,
    shell_average,
    shell_counts,
    snr_from_fsc,
    wiener_average,
)

SHAPE = (48, 48, 48)


def _target():
    k = np.arange(n_shells(SHAPE))
    return 2.0 * np.exp(-k / 8.0) + 0.05


def _well_sampled(batch):
    """Shells where 4 sigma of the shell-mean power of ``batch`` maps is below 5%."""
    counts = shell_counts(SHAPE)
    return 4.0 / np.sqrt(batch * counts / 2.0) < 0.05


def test_coloured_noise_reproduces_the_asked_spectrum():
    target = _target()
    noise = coloured_noise((8, *SHAPE), target, seed=0)
    assert noise.shape == (8, *SHAPE) and noise.dtype == np.float32
    realised = power_spectrum(noise).mean(axis=0)
    good = _well_sampled(8)
    assert good.sum() >= 8
    np.testing.assert_array_less(np.abs(realised[good] / target[good] - 1), 0.05)
    # the variance in real space is the mean power over all components
    assert float(noise.var()) == pytest.approx(float(np.mean(_expanded_mean(target))), rel=0.02)


def _expanded_mean(target):
    from cryofm.fourier import expand_shells, hermitian_weight

    e = expand_shells(target, SHAPE)
    w = np.broadcast_to(hermitian_weight(SHAPE), e.shape)
    return np.sum(w * e) / np.sum(w)


def test_coloured_noise_in_torch_is_seeded_and_on_spectrum():
    target = torch.tensor(_target(), dtype=torch.float32)
    a = coloured_noise((8, *SHAPE), target, seed=3)
    b = coloured_noise((8, *SHAPE), target, generator=torch.Generator().manual_seed(3))
    assert isinstance(a, torch.Tensor) and a.dtype == torch.float32
    assert torch.equal(a, b)
    realised = power_spectrum(a).mean(0).numpy()
    good = _well_sampled(8)
    np.testing.assert_array_less(np.abs(realised[good] / _target()[good] - 1), 0.05)
    with pytest.raises(CryofmInputError, match=">= 0"):
        coloured_noise(SHAPE, -np.ones(24), seed=0)


def test_half_map_noise_power_recovers_the_noise_spectrum():
    target = _target()
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(SHAPE) * 5
    n1, n2 = coloured_noise((2, 4, *SHAPE), target, seed=2)  # four pairs of half maps
    est = half_map_noise_power(signal + n1, signal + n2)
    assert est.shape == (4, n_shells(SHAPE))
    good = _well_sampled(4)
    np.testing.assert_array_less(np.abs(est.mean(axis=0)[good] / target[good] - 1), 0.05)
    per_component = noise_power_per_component(signal + n1, signal + n2)
    assert per_component.shape == (4, 48, 48, 25)
    np.testing.assert_allclose(shell_average(per_component, SHAPE), est, rtol=1e-6)


def test_fsc_snr_relations():
    snr = np.array([0.0, 0.25, 1.0, 4.0])
    fsc = fsc_from_snr(snr)
    np.testing.assert_allclose(fsc, [0.0, 0.2, 0.5, 0.8])
    np.testing.assert_allclose(snr_from_fsc(fsc), snr)
    np.testing.assert_allclose(fsc_full_from_half([1 / 3, 0.143, 1.0, -0.2]), [0.5, 0.286 / 1.143, 1.0, 0.0])
    assert snr_from_fsc(np.array([-0.3]))[0] == 0 and np.isfinite(snr_from_fsc(np.array([1.0]))[0])
    t = snr_from_fsc(torch.tensor([0.5], dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and float(t) == pytest.approx(1.0)


def test_half_map_fsc_matches_snr_relation():
    # h_i = s + n_i with white s (power S) and n_i (power N): FSC = S/(S+N), SNR = S/N
    rng = np.random.default_rng(4)
    s = 2.0 * rng.standard_normal(SHAPE)
    h1 = s + rng.standard_normal(SHAPE)
    h2 = s + rng.standard_normal(SHAPE)
    from cryofm.fourier import fsc_curve

    snr = snr_from_fsc(fsc_curve(h1, h2))
    good = shell_counts(SHAPE) > 500
    assert np.median(snr[good]) == pytest.approx(4.0, rel=0.1)


def test_wiener_average_weights_each_shell():
    rng = np.random.default_rng(5)
    h1, h2 = rng.standard_normal((2, *SHAPE))
    ns = n_shells(SHAPE)
    fsc = np.full(ns, 1 / 3)  # weight 2F/(1+F) = 0.5
    fsc[5:] = -0.5  # weight 0
    out = wiener_average(h1, h2, fsc=fsc)
    avg = 0.5 * (h1 + h2)
    from cryofm.fourier import expand_shells, irfftn, rfftn

    weight = np.full(ns, 0.5)
    weight[0] = 1.0  # the mean is kept
    weight[5:] = 0.0
    np.testing.assert_allclose(out, irfftn(rfftn(avg) * expand_shells(weight, SHAPE), SHAPE), atol=1e-12)
    np.testing.assert_allclose(out.mean(), avg.mean(), atol=1e-12)
    # identical halves: FSC 1 everywhere, the average passes unchanged
    np.testing.assert_allclose(wiener_average(h1, h1), h1, atol=1e-10)
    with pytest.raises(CryofmInputError, match="shells"):
        wiener_average(h1, h2, fsc=np.ones(5))


def test_numpy_and_torch_noise_functions_agree():
    rng = np.random.default_rng(6)
    h1, h2 = rng.standard_normal((2, 2, 20, 18, 16)).astype(np.float32)
    t1, t2 = torch.from_numpy(h1), torch.from_numpy(h2)
    np.testing.assert_allclose(half_map_noise_power(t1, t2).numpy(), half_map_noise_power(h1, h2), rtol=1e-5)
    np.testing.assert_allclose(wiener_average(t1, t2).numpy(), wiener_average(h1, h2), atol=1e-5)
