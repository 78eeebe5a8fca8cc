"""The solvent as a constraint for the missing wedge (`cryofm.restore.support`) and its use in
`complete_wedge`."""

from __future__ import annotations

import numpy as np
import pytest

import cryofm
from cryofm.fourier import auto_mask, fsc_curve, irfftn, missing_wedge_mask, rfftn
from map_helpers import centred_truth
from cryofm.restore.support import support_fit, support_fraction_ok, support_noise_power

N = 40


def _molecule(seed: int = 0, n: int = N) -> np.ndarray:
    """A compact random 'molecule' (60 Gaussian atoms of 1.2 voxel sd within radius n/5) in solvent."""
    rng = np.random.default_rng(seed)
    grid = np.indices((n, n, n)).astype(np.float64)
    x = np.zeros((n, n, n))
    for _ in range(60):
        d = rng.normal(size=3)
        centre = n / 2 + d / np.linalg.norm(d) * rng.uniform(0, n / 5)
        x += np.exp(-((grid - centre[:, None, None, None]) ** 2).sum(0) / (2 * 1.2**2))
    return (x - x.mean()) / x.std()


def _wedged(x: np.ndarray, noise_sd: float = 0.0, seed: int = 1):
    measured = np.asarray(missing_wedge_mask(x.shape, (-60, 60)), dtype=np.float64)
    y = x + noise_sd * np.random.default_rng(seed).standard_normal(x.shape)
    return np.asarray(irfftn(np.asarray(rfftn(y)) * measured, x.shape)), measured


def _missing_correlation(a: np.ndarray, truth: np.ndarray, measured: np.ndarray) -> float:
    fa, ft = np.asarray(rfftn(a)), np.asarray(rfftn(truth))
    out = measured == 0
    num = np.real(np.sum(fa[out] * np.conj(ft[out])))
    return float(num / np.sqrt(np.sum(np.abs(fa[out]) ** 2) * np.sum(np.abs(ft[out]) ** 2) + 1e-30))


def test_support_fit_fills_the_wedge_of_a_compact_molecule_and_keeps_the_solvent_flat():
    truth = _molecule()
    y, measured = _wedged(truth)
    mask = np.asarray(auto_mask(truth, 1.5), dtype=np.float64)
    fit = support_fit(y, measured, mask)
    assert abs(_missing_correlation(y, truth, measured)) < 0.1  # ~0: only the rfft planes kx = 0, n/2 leak
    assert _missing_correlation(fit, truth, measured) > 0.6
    outside = mask == 0
    assert np.ptp(fit[outside]) < 1e-9  # flat at the solvent level
    # the measured components still match the data
    resid = (np.asarray(rfftn(fit)) - np.asarray(rfftn(y))) * measured
    assert np.sum(np.abs(resid) ** 2) < 0.05 * np.sum(np.abs(np.asarray(rfftn(y))) ** 2)


def test_support_fit_reaches_the_exact_minimiser_of_its_objective():
    """Against a dense least-squares solve on an 8^3 box: the objective summed over the full FFT
    grid, data weight and measured set both symmetric under k -> -k, a soft mask with a zero rim."""
    n = 8
    rng = np.random.default_rng(3)
    target, reference = rng.standard_normal((2, n, n, n))

    def on_grid(fz, fy, fx):
        measured = (np.abs(fx) >= 0.6 * np.abs(fz)).astype(np.float64)
        return measured, 1.0 + 20.0 * np.exp(-30.0 * (fz**2 + fy**2 + fx**2))

    f, r = np.fft.fftfreq(n), np.fft.rfftfreq(n)
    measured_full, weight_full = on_grid(*np.meshgrid(f, f, f, indexing="ij"))
    measured, weight = on_grid(*np.meshgrid(f, f, r, indexing="ij"))
    mask = np.zeros((n, n, n))
    mask[2:6, 1:7, 2:7] = rng.uniform(0.3, 1.0, (4, 6, 5))
    outside = mask < 0.5
    level = float(np.median(reference[outside]))
    fit = support_fit(target, measured, mask, data_weight=weight, reference=reference, reference_weight=0.5)

    # minimise sum_k wd |F(level + m z) - F(t)|^2 + wr |F(level + m z) - F(r)|^2 over z on the support
    fourier = np.fft.fftn(np.eye(n**3).reshape(n**3, n, n, n), axes=(1, 2, 3), norm="ortho").reshape(n**3, -1).T
    on = mask.ravel() > 0
    design = fourier[:, on] * mask.ravel()[on]
    wd, wr = (measured_full * weight_full).ravel(), np.full(n**3, 0.5)
    rows = np.concatenate([np.sqrt(wd)[:, None] * design, np.sqrt(wr)[:, None] * design])
    rhs = np.concatenate([np.sqrt(wd) * np.fft.fftn(target - level, norm="ortho").ravel(),
                          np.sqrt(wr) * np.fft.fftn(reference - level, norm="ortho").ravel()])
    rows_real = np.concatenate([rows.real, rows.imag])
    z = np.linalg.lstsq(rows_real, np.concatenate([rhs.real, rhs.imag]), rcond=None)[0]
    exact = np.full(n**3, level)
    exact[on] += mask.ravel()[on] * z
    exact = exact.reshape(n, n, n)
    assert np.linalg.norm(fit - exact) < 1e-4 * np.linalg.norm(exact - level)
    assert np.all(fit[mask == 0] == level)


@pytest.mark.parametrize("sd", [0.0, 0.5, 1.0])
def test_noise_power_from_the_support_fit_ignores_the_wedge_streaks(sd):
    truth = _molecule(2)
    y, measured = _wedged(truth, sd)
    mask = np.asarray(auto_mask(y, 1.5), dtype=np.float64)
    assert support_fraction_ok(mask, measured)
    est = support_noise_power(y, measured, mask)
    mid = est[4:N // 2 - 2]
    if sd == 0.0:  # no noise: the streaks in the solvent are the molecule's, not noise
        from cryofm.operators import noise_power_from_solvent
        import torch

        solvent = noise_power_from_solvent(torch.as_tensor(y), torch.as_tensor(mask)).numpy()
        assert est[1:].max() < 0.01 * solvent[1:4].max()
        assert est[1:].max() < 0.02 * 0.5**2  # 2% of the weakest noise tested below
    else:  # white noise of power sd^2 per component, within 20% per shell on average
        assert np.mean(mid) == pytest.approx(sd**2, rel=0.2)


def test_a_support_filling_the_box_is_not_used():
    measured = np.asarray(missing_wedge_mask((16, 16, 16), (-60, 60)), dtype=np.float64)
    assert not support_fraction_ok(np.ones((16, 16, 16)), measured)
    assert support_fraction_ok(np.zeros((16, 16, 16)), measured)


@pytest.mark.parametrize("sd", [0.0, 0.7])
def test_complete_wedge_with_the_shipped_prior_beats_the_wedged_map_and_the_support_alone(sd):
    truth = centred_truth(n=48)  # a real map (EMD-5168 monomer) at 1.5 A with solvent around it
    y, measured = _wedged(truth, sd, seed=5)
    assert support_fraction_ok(np.asarray(auto_mask(y, 1.5)), measured)
    out = cryofm.complete_wedge(y, voxel_size=1.5, prior=cryofm.load_prior(), device="cpu").volume.data
    assert _auc(out, truth) > _auc(y, truth) + 0.05
    assert _missing_correlation(out, truth, measured) > 0.6
    # the prior adds to what the support alone recovers
    support_only = support_fit(y, measured, np.asarray(auto_mask(y, 1.5), dtype=np.float64))
    assert _auc(out, truth) > _auc(support_only, truth) + 0.005


def test_complete_wedge_of_a_crowded_box_improves_without_the_support():
    truth = centred_truth(n=40)  # the molecule fills most of the box: the support is not used
    y, measured = _wedged(truth)
    assert not support_fraction_ok(np.asarray(auto_mask(y, 1.5)), measured)
    out = cryofm.complete_wedge(y, voxel_size=1.5, prior=cryofm.load_prior(), device="cpu").volume.data
    assert _auc(out, truth) > _auc(y, truth) + 0.02


def _auc(m: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(fsc_curve(np.asarray(m, np.float64), truth))[1:]))


def test_the_sampler_constraint_flattens_compact_items_and_leaves_crowded_ones():
    import torch

    from cryofm.restore.support import SupportConstraint

    compact = _molecule(4, n=32)
    crowded = np.random.default_rng(0).standard_normal((32, 32, 32))  # no solvent anywhere
    measured = np.asarray(missing_wedge_mask((32, 32, 32), (-60, 60)), dtype=np.float64)
    x_c = torch.as_tensor(np.stack([compact, crowded])[:, None], dtype=torch.float32)
    data_prec = torch.as_tensor(1.0 + 100.0 * measured, dtype=torch.float32)[None, None]
    prior_prec = torch.ones_like(data_prec)
    out = SupportConstraint(measured, 1.5)(x_c, data_prec, prior_prec).double().numpy()
    assert out.shape == (2, 1, 32, 32, 32)
    np.testing.assert_allclose(out[1, 0], crowded, atol=1e-6)
    mask = np.asarray(auto_mask(compact, 1.5))
    assert np.ptp(out[0, 0][mask == 0]) < 1e-5
    assert np.corrcoef(out[0, 0].ravel(), compact.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("sd", [0.0, 0.5])
def test_a_narrow_tilt_range_with_a_large_support_still_beats_the_wedged_map(sd):
    # at +-45 the support of this crop is too large for the support fit to constrain the map; the
    # noise used to come from the solvent, which counts the molecule's wedge streaks as noise
    # (power ~2 on noise-free data), and the map came out worse than the input (-0.135, -0.230)
    truth = centred_truth(n=48)
    measured = np.asarray(missing_wedge_mask(truth.shape, (-45, 45)), dtype=np.float64)
    y = np.asarray(irfftn(np.asarray(rfftn(truth + sd * np.random.default_rng(3).standard_normal(truth.shape)))
                          * measured, truth.shape))
    assert not support_fraction_ok(np.asarray(auto_mask(y, 1.5)), measured)
    out = cryofm.complete_wedge(y, voxel_size=1.5, tilt_range=(-45, 45), prior=cryofm.load_prior(), device="cpu")
    assert _auc(out.volume.data, truth) > _auc(y, truth) + 0.05  # measured +0.099 and +0.118
    noise = np.asarray(out.report["noise_power_prior_grid"])
    assert noise[5] < 2.0 * (sd**2 + 0.01)  # measured 2.1e-3 and 0.22 for noise of power 0 and 0.25 (solvent: 2.0, 2.3)


def test_a_crowded_box_off_the_networks_divisor_is_resampled_not_padded():
    # a 44^3 crop of EMD-3488 cuts molecules at every face.  Padded with solvent to 48^3, the box
    # was no longer periodic and no longer a wedged map, and the sampler enforced the smeared
    # components as data: FSC_AUC 0.819 -> 0.686.  Resampled onto 48^3 it holds (0.814)
    x = centred_truth("data/emd_3488/emd_3488.mrc", 44)
    wedged = np.asarray(irfftn(rfftn(x) * np.asarray(missing_wedge_mask(x.shape, (-60, 60))), x.shape))
    result = cryofm.complete_wedge(wedged, voxel_size=1.5, device="cpu")
    assert result.report["prior_grid"] == [48, 48, 48]
    assert result.volume.shape == x.shape
    before = float(np.mean(np.asarray(fsc_curve(wedged, x))[1:]))
    after = float(np.mean(np.asarray(fsc_curve(np.asarray(result.volume.data, np.float64), x))[1:]))
    assert after > before - 0.02
