"""Forward models: adjoint identities, geometry of the wedge and of the crop, noise estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.operators import (
    AnisotropicDenoiseOperator,
    DenoiseOperator,
    UpsampleOperator,
    WedgeOperator,
    noise_power_from_halves,
    noise_power_from_solvent,
    directional_noise,
    noise_power_in_cones,
    wedge_mask,
)
from cryofm.fourier import shell_average, shell_index
from cryofm.operators.anisotropic import direction_axes, expand_cone_shells


def _dot_test(op, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, *op.shape, generator=g, dtype=torch.float64)
    y = torch.randn(2, 1, *op.data_shape, generator=g, dtype=torch.float64)
    lhs = (op.forward(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    return float(lhs), float(rhs)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DenoiseOperator((12, 10, 8), torch.rand(7) + 0.1),
        lambda: WedgeOperator((12, 12, 12), 0.5, tilt_range=(-60, 60)),
        lambda: WedgeOperator((10, 12, 9), 0.5, tilt_range=(-45, 30), tilt_axis="x"),
        lambda: UpsampleOperator((16, 16, 16), (8, 8, 8), 0.1),
        lambda: UpsampleOperator((16, 14, 15), (9, 8, 7), 0.1),
        lambda: AnisotropicDenoiseOperator((10, 10, 10), torch.rand(10, 10, 6) + 0.1),
    ],
)
def test_adjoint_dot_product(make):
    lhs, rhs = _dot_test(make())
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-9)


def test_wedge_geometry():
    mask = wedge_mask((32, 32, 32), (-60, 60))
    # a component along kx (perpendicular to the beam) is measured; along kz (the beam) it is not
    assert mask[0, 0, 5] and not mask[5, 0, 0]
    # 30 degrees from kx in the x-z plane is inside +-60, 70 degrees is outside
    kx = 5
    assert mask[round(kx * math.tan(math.radians(30))), 3, kx]
    assert not mask[round(kx * math.tan(math.radians(70))), 3, kx]
    # measured fraction of a +-60 wedge is 120/180 of the directions in the x-z plane
    frac = mask[:, 0, 1:].float().mean()
    assert 0.55 < float(frac) < 0.78
    with pytest.raises(CryofmInputError):
        wedge_mask((8, 8, 8), (-95, 60))


def test_upsample_forward_is_fourier_crop_of_band_limited_map():
    # a band-limited map sampled on 16^3 and on 8^3 of the same box: A maps one onto the other
    z, y, x = np.meshgrid(*(np.arange(16) / 16,) * 3, indexing="ij")
    fine = np.cos(2 * np.pi * (2 * x + y)) + 0.5 * np.sin(2 * np.pi * 3 * z)
    coarse = fine[::2, ::2, ::2]
    op = UpsampleOperator((16, 16, 16), (8, 8, 8), 0.1)
    out = op.forward(torch.as_tensor(fine))
    np.testing.assert_allclose(out.numpy(), coarse, atol=1e-10)


def test_noise_from_halves_matches_truth():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 24, 24, generator=g, dtype=torch.float64)
    h1 = x + 0.7 * torch.randn(24, 24, 24, generator=g, dtype=torch.float64)
    h2 = x + 0.7 * torch.randn(24, 24, 24, generator=g, dtype=torch.float64)
    per_half = noise_power_from_halves(h1, h2, average=False)
    avg = noise_power_from_halves(h1, h2)
    assert float(per_half[2:].mean()) == pytest.approx(0.49, rel=0.05)
    torch.testing.assert_close(avg, per_half / 2)


def test_noise_from_solvent_corrects_for_volume_fraction():
    g = torch.Generator().manual_seed(2)
    n = 32
    noise = 0.3 * torch.randn(n, n, n, generator=g, dtype=torch.float64)
    mask = torch.zeros(n, n, n, dtype=torch.float64)
    mask[8:24, 8:24, 8:24] = 1.0
    signal = mask * 5.0 * torch.randn(n, n, n, generator=g, dtype=torch.float64)
    power = noise_power_from_solvent(signal + noise, mask)
    assert float(power[3:].mean()) == pytest.approx(0.09, rel=0.08)


def test_posterior_pieces_on_model_grid():
    op = UpsampleOperator((8, 8, 8), (4, 4, 4), 2.0)
    prec = op.precision()
    assert prec.shape == (8, 8, 5)
    # 4^3 grid without its Nyquist planes: 3 x 3 x 2 measured components
    assert int((prec > 0).sum()) == 3 * 3 * 2
    assert float(prec.max()) == pytest.approx((64 / 512) / 2.0)


def _polar_scale(shape, cone_deg, amplitude):
    """`amplitude` on the rfft components within `cone_deg` of k_z (physical directions), 1 elsewhere."""
    kz, ky, kx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), np.fft.rfftfreq(shape[2]),
                             indexing="ij")
    r = np.sqrt(kz**2 + ky**2 + kx**2)
    near_z = np.abs(kz) > np.cos(np.radians(cone_deg)) * np.where(r > 0, r, 1)
    return np.where(near_z & (r > 0), amplitude, 1.0)


def _noisy_halves(shape, scale, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape)

    def noise():
        f = np.fft.rfftn(g.standard_normal(shape), norm="ortho") * scale
        return np.fft.irfftn(f, s=shape, norm="ortho")
    return x + noise(), x + noise()


@pytest.mark.parametrize("shape", [(40, 40, 40), (44, 36, 40)])
def test_directional_noise_finds_a_noisy_cone_and_isotropic_noise_passes_the_test(shape):
    # noise 9x the power within 35 degrees of k_z (a preferred orientation's poorly sampled cone)
    scale = _polar_scale(shape, 35, 3.0)
    h1, h2 = _noisy_halves(shape, scale, 5)
    measured = directional_noise(h1, h2, average=False)
    assert measured.significant and measured.chi2_per_dof > 10
    power = noise_power_in_cones(h1, h2, average=False).numpy()
    shell = np.asarray(shell_index(shape))
    inside = (shell >= 1) & (shell < max(shape) // 2)
    log_error = np.abs(np.log(power[inside] / scale[inside] ** 2))  # one half's noise power is scale^2
    assert np.median(log_error) < 0.25  # the per-shell (isotropic) model is off by 0.93 here
    # each shell keeps the isotropic estimate's mean power
    iso = np.asarray(noise_power_from_halves(torch.as_tensor(h1), torch.as_tensor(h2), average=False))
    np.testing.assert_allclose(np.asarray(shell_average(power, shape))[1:], iso[1:], rtol=1e-6)
    flat = directional_noise(*_noisy_halves(shape, np.ones_like(scale), 6))
    assert not flat.significant and 0.7 < flat.chi2_per_dof < 1.3


def test_direction_table_expands_onto_any_box_by_nearest_direction():
    axes = direction_axes(12)
    assert np.allclose(np.linalg.norm(axes, axis=1), 1) and min(a[0] for a in axes) > 0
    table = torch.arange(12 * 8, dtype=torch.float64).reshape(12, 8)
    shape = (16, 12, 14)
    out = expand_cone_shells(table, shape, axes).numpy()
    kz, ky, kx = np.meshgrid(np.fft.fftfreq(16), np.fft.fftfreq(12), np.fft.rfftfreq(14), indexing="ij")
    k = np.stack([kz, ky, kx], -1)
    nearest = np.argmax(np.abs(k @ np.asarray(axes).T), axis=-1)
    shell = np.minimum(np.floor(16 * np.linalg.norm(k, axis=-1) + 0.5).astype(int), 7)
    np.testing.assert_array_equal(out, table.numpy()[nearest, shell])
