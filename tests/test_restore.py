"""Whole-map restoration: tiling, grids and geometry, the data beyond the prior's band,
progress and cancellation, input validation, and an end-to-end run with the shipped prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cryofm
from cryofm.errors import Cancelled, CryofmInputError
from cryofm.fourier import coloured_noise, fsc_curve, rfftn, radial_frequency
from cryofm.io.volume import Volume
from cryofm.restore import Progress, Restoration, complete_wedge, denoise, upsample
from cryofm.restore import pipeline as pl
from cryofm.restore.problems import DenoiseProblem
from cryofm.restore.tiling import map_tiles, plan_tiles, tile_window
from map_helpers import centred_truth
from test_sampling_posterior import GaussianPrior


class WhitePrior(GaussianPrior):
    """A Gaussian prior with a flat spectrum (power 1): its velocity acts voxel by voxel."""

    def _power(self, shape):
        return torch.ones(shape[0], shape[1], shape[2] // 2 + 1, dtype=torch.float64)

    def error_power(self, t):
        t = min(max(t, 1e-6), 1.0)
        return torch.full((32,), t**2 / ((1 - t) ** 2 + t**2), dtype=torch.float64)


def _blob_map(n=24, voxel=1.5, seed=0):
    """A smooth positive blob in a box of solvent, plus a little white noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((n, n, n)) - n / 2
    blob = np.exp(-(x**2 + (1.3 * y) ** 2 + (0.8 * z) ** 2) / (2 * (n / 7) ** 2))
    blob += 0.5 * np.exp(-((x - 3) ** 2 + (y + 2) ** 2 + z**2) / 4.0)
    return Volume((blob + 0.02 * rng.standard_normal(blob.shape)).astype(np.float32), voxel, origin=(10.0, -5.0, 2.5))


# --- tiling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,tile,overlap", [((40, 37, 50), 16, 6), ((20, 20, 20), 8, 3), ((16, 16, 16), 16, 4)])
def test_tiles_are_a_partition_of_unity(shape, tile, overlap):
    plan = plan_tiles(shape, tile, overlap)
    const = np.full(shape, 3.25)
    np.testing.assert_allclose(map_tiles(const, plan, lambda t: t), const, rtol=1e-12)
    x = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_allclose(map_tiles(x, plan, lambda t: t), x, rtol=1e-12)  # identity stays identity
    assert all(tile_window(plan, c).min() > 0 for c in plan.corners)
    for axis, starts in enumerate(plan.starts):  # tiles overlap by at least `overlap`
        assert all(b - a <= plan.tile[axis] - min(overlap, plan.tile[axis] // 2) for a, b in zip(starts, starts[1:]))


def test_tiled_sampling_agrees_with_the_whole_box():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((32, 32, 32))
    problem = DenoiseProblem(torch.full((16,), 1e-4, dtype=torch.float64), 32)
    prior = WhitePrior()
    whole = pl.Settings(steps=3, device="cpu")
    tiled = pl.Settings(steps=3, device="cpu", tile=16, overlap=6, whole_box_voxels=16**3, batch=4)
    calls = []
    a, _, info_a = pl.sample_map(prior, problem, y, whole, skip=None, fallback=y, tick=calls.append)
    b, _, info_b = pl.sample_map(prior, problem, y, tiled, skip=None, fallback=y, tick=calls.append)
    assert info_a["whole_box"] and info_b["tiles"] == 3**3
    # with a voxel-wise prior and nearly noiseless data both give the data back
    assert np.abs(a - b).max() < 0.05
    assert np.abs(b - y).max() < 0.05


def test_tiled_dc_keeps_the_low_shells_as_clean_as_the_whole_box(monkeypatch):
    # noise 1000x stronger past half Nyquist, as past a map's resolution.  A tile's crop smears
    # that noise into its low shells; dc combines the data over the whole box and tiles only the
    # network, so its low shells stay as clean as the whole box's (tiles of the whole posterior,
    # each with the box's noise per frequency, left 28x the whole box's error there)
    monkeypatch.setattr(pl, "DETERMINISTIC_ERROR_SCALE", 1.0)  # the WhitePrior's error table is exact
    n = 32
    noise_shells = torch.full((n // 2,), 0.01, dtype=torch.float64)
    noise_shells[n // 4:] = 10.0
    rng = np.random.default_rng(3)
    truth = rng.standard_normal((n, n, n))  # the WhitePrior's own kind of map
    y = truth + np.asarray(coloured_noise((n, n, n), noise_shells.numpy(), seed=4))
    problem = DenoiseProblem(noise_shells, n)
    whole = pl.Settings(steps=4, device="cpu")
    tiled = pl.Settings(steps=4, device="cpu", tile=16, overlap=4, whole_box_voxels=1, batch=8)
    a, _, _ = pl.sample_map(WhitePrior(), problem, y, whole, skip=None, fallback=y, tick=lambda k: None)
    b, _, info = pl.sample_map(WhitePrior(), problem, y, tiled, skip=None, fallback=y, tick=lambda k: None)
    assert info["tiles"] == 27 and not info["whole_box"]
    err_whole, err_tiled, err_data = (float(np.mean((v - truth) ** 2)) for v in (a, b, y))
    assert err_whole < 0.6 * err_data
    assert err_tiled < 1.02 * err_whole
    low = np.asarray(radial_frequency((n, n, n))) < 0.2
    low_error = [float(np.sum(np.abs(np.fft.rfftn(v - truth, norm="ortho")[low]) ** 2)) for v in (a, b)]
    assert low_error[1] < 2 * low_error[0]


@pytest.mark.parametrize("sampler", ["dc", "fps"])
def test_solvent_tiles_are_skipped(sampler):
    y = np.zeros((32, 32, 32))
    skip = np.zeros_like(y)
    skip[:12, :12, :12] = 1.0
    settings = pl.Settings(sampler=sampler, steps=2, device="cpu", tile=16, overlap=4, whole_box_voxels=1)
    problem = DenoiseProblem(torch.full((16,), 0.1, dtype=torch.float64), 32)
    fallback = np.full(y.shape, 7.0)
    seen = []

    class Counting(WhitePrior):
        def velocity(self, x, t):
            seen.append(x.shape[0])
            return super().velocity(x, t)

    out, _, info = pl.sample_map(Counting(), problem, y, settings, skip=skip, fallback=fallback, tick=lambda n: None)
    assert info["tiles_sampled"] < info["tiles"]
    if sampler == "fps":  # the posterior tile by tile: a solvent corner takes the fallback
        assert out[-1, -1, -1] == pytest.approx(7.0)
    else:  # the network sees only the tiles with density; a solvent corner's estimate is the fallback's,
        # combined with the data (0) over the whole box
        assert sum(seen) == info["tiles_sampled"] * settings.n_steps
        assert 0.0 < out[-1, -1, -1] < 7.0


# --- geometry of the outputs -------------------------------------------------------------------
def test_denoise_and_wedge_keep_the_grid_upsample_multiplies_it():
    vol = _blob_map(24, 1.5)
    kw = dict(prior=GaussianPrior(), steps=2, device="cpu")
    for result in (denoise(vol, **kw), complete_wedge(vol, tilt_range=(-50, 55), **kw)):
        assert isinstance(result, Restoration)
        assert result.volume.shape == vol.shape
        np.testing.assert_allclose(result.volume.voxel_size, vol.voxel_size)
        np.testing.assert_allclose(result.volume.origin, vol.origin)
    up = upsample(vol, factor=2, **kw)
    assert up.volume.shape == (48, 48, 48)
    np.testing.assert_allclose(up.volume.voxel_size, vol.voxel_size / 2)
    np.testing.assert_allclose(up.volume.origin, vol.origin)
    up = upsample(vol, target_voxel_size=1.0, **kw)
    assert up.volume.shape == (36, 36, 36)
    assert up.input.shape == vol.shape and up.std is None


def _centre_of_mass(vol: Volume) -> np.ndarray:
    d = np.clip(vol.data.astype(np.float64), 0.0, None)
    idx = np.indices(d.shape).reshape(3, -1)
    return vol.origin + ((idx * d.ravel()).sum(1) / d.sum())[::-1] * vol.voxel_size  # x, y, z in A


@pytest.mark.parametrize("kw", [dict(target_voxel_size=0.7), dict(factor=1.3)])
def test_upsample_gives_exactly_the_voxel_size_asked_for_on_any_box(kw):
    z, y, x = np.indices((21, 26, 30)) * 1.05
    blob = np.exp(-((x - 14.0) ** 2 + (y - 12.0) ** 2 + (z - 11.0) ** 2) / (2 * 2.5**2))
    vol = Volume(blob.astype(np.float32), 1.05, origin=(3.0, -7.5, 12.25))
    out = upsample(vol, prior=GaussianPrior(), steps=2, device="cpu", **kw).volume
    wanted = kw.get("target_voxel_size", 1.05 / kw.get("factor", 1.0))
    np.testing.assert_allclose(out.voxel_size, [wanted] * 3, rtol=1e-12)  # cubic, exactly as asked
    assert out.shape == tuple(int(round(n * 1.05 / wanted)) for n in vol.shape)
    np.testing.assert_allclose(out.origin, vol.origin)
    np.testing.assert_allclose(_centre_of_mass(out), _centre_of_mass(vol), atol=0.02)  # nothing moved


def test_regrid_samples_the_band_limited_interpolant():
    rng = np.random.default_rng(0)
    for n in (16, 17):
        x = rng.standard_normal((n, n, n))
        np.testing.assert_allclose(pl.regrid(x, x.shape, (1.0, 1.0, 1.0)), x, atol=1e-12)
        smooth = pl.resize(pl.resize(x, (n - 4,) * 3), x.shape)  # no Nyquist content: padding is exact there
        np.testing.assert_allclose(pl.regrid(smooth, (2 * n,) * 3, (0.5,) * 3), pl.resize(smooth, (2 * n,) * 3), atol=1e-12)

    def blob(n, v):
        z, y, x = np.indices((n, n, n)) * v
        return np.exp(-((x - 20.0) ** 2 + (y - 25.0) ** 2 + (z - 23.0) ** 2) / (2 * 3.0**2))

    np.testing.assert_allclose(pl.regrid(blob(48, 1.05), (72,) * 3, (0.7 / 1.05,) * 3), blob(72, 0.7), atol=1e-9)


def test_wiener_weights_do_not_rise_again_past_the_data_resolution():
    signal = np.array([0.0, 9.0, 4.0, 1.0, 0.02, 0.0, 0.3, 0.6, 0.5])  # a rebound after the data ran out
    np.testing.assert_allclose(pl.wiener_shells(signal, np.ones_like(signal))[6:], [0.3 / 1.3, 0.6 / 1.6, 0.5 / 1.5])
    w = pl.wiener_shells(signal, np.ones_like(signal), no_rebound=True)  # the data beyond the prior's band
    assert w[0] == 1.0
    np.testing.assert_allclose(w[:5], [1.0, 0.9, 0.8, 0.5, 0.02 / 1.02])
    np.testing.assert_array_equal(w[5:], 0.0)
    signal = np.array([0.0, 9.0, 3.0, 4.0, 1.0])  # a dip above the threshold is the data's own: kept
    np.testing.assert_allclose(pl.wiener_shells(signal, np.ones_like(signal), no_rebound=True)[1:], [0.9, 0.75, 0.8, 0.5])


def test_numpy_and_torch_inputs_and_samples_std():
    vol = _blob_map(20, 1.5)
    kw = dict(prior=GaussianPrior(), steps=2, device="cpu", voxel_size=1.5)
    a = denoise(vol.data, **kw)
    b = denoise(torch.as_tensor(vol.data), **kw)
    np.testing.assert_allclose(a.volume.data, b.volume.data, rtol=1e-5, atol=1e-6)
    c = denoise(vol.data, samples=3, **kw)
    assert c.std is not None and c.std.shape == vol.shape and float(c.std.data.mean()) > 0


def test_a_1A_map_keeps_its_components_beyond_3A():
    rng = np.random.default_rng(3)
    n = 36
    truth = _blob_map(n, 1.0).data + 0.3 * rng.standard_normal((n, n, n))  # power out to 2 A
    h1 = Volume((truth + 0.1 * rng.standard_normal(truth.shape)).astype(np.float32), 1.0)
    h2 = Volume((truth + 0.1 * rng.standard_normal(truth.shape)).astype(np.float32), 1.0)
    out = denoise(h1, h2, prior=GaussianPrior(), steps=2, device="cpu")
    beyond = np.asarray(radial_frequency((n, n, n), 1.0)) > 1 / 2.9
    f_out, f_in = rfftn(out.volume.data.astype(np.float64)), rfftn(out.input.data.astype(np.float64))
    corr = np.real(np.sum(f_out[beyond] * np.conj(f_in[beyond]))) / np.sqrt(
        np.sum(np.abs(f_out[beyond]) ** 2) * np.sum(np.abs(f_in[beyond]) ** 2))
    assert corr > 0.99  # the Wiener-weighted data, not zeros and not the prior's guess
    power_ratio = np.sum(np.abs(f_out[beyond]) ** 2) / np.sum(np.abs(f_in[beyond]) ** 2)
    assert 0.5 < power_ratio <= 1.0  # weighted by SNR / (1 + SNR) with SNR ~ 9 per half


# --- progress, cancel, halves -----------------------------------------------------------------
def test_progress_is_monotone_and_complete():
    seen: list[Progress] = []
    denoise(_blob_map(20), prior=GaussianPrior(), steps=3, samples=2, device="cpu", progress=seen.append)
    done = [p.done for p in seen]
    assert done == sorted(done)
    assert seen[0].stage == "prepare" and seen[-1].stage == "finish"
    assert seen[-1].done == seen[-1].total == 3 * 2
    assert {p.stage for p in seen} == {"prepare", "sample", "finish"}


def test_cancel_stops_between_steps():
    seen = []
    with pytest.raises(cryofm.Cancelled):
        denoise(_blob_map(20), prior=GaussianPrior(), steps=50, device="cpu", progress=seen.append,
                cancel=lambda: any(p.stage == "sample" for p in seen))
    assert sum(p.stage == "sample" for p in seen) == 1
    assert Cancelled is cryofm.Cancelled


def test_independent_halves_report_their_fsc():
    rng = np.random.default_rng(4)
    vol = _blob_map(20)
    h1 = vol.with_data(vol.data + 0.05 * rng.standard_normal(vol.shape))
    h2 = vol.with_data(vol.data + 0.05 * rng.standard_normal(vol.shape))
    out = denoise(h1, h2, prior=GaussianPrior(), steps=2, device="cpu", independent_halves=True)
    assert "fsc_halves_before" in out.report and "fsc_halves_after" in out.report
    np.testing.assert_allclose(out.input.data, (h1.data + h2.data) / 2, rtol=1e-6)
    import json

    json.dumps(out.report)  # JSON-serialisable


@pytest.mark.parametrize(
    "call",
    [
        lambda v: denoise(v.data, prior=GaussianPrior()),  # a bare array without voxel size
        lambda v: denoise(v.data, voxel_size=0.0, prior=GaussianPrior()),
        lambda v: denoise(v, v.with_data(v.data[:-2]), prior=GaussianPrior()),
        lambda v: denoise(v, Volume(v.data, 1.2), prior=GaussianPrior()),
        lambda v: denoise(Volume(v.data[:12], 1.5), prior=GaussianPrior()),
        lambda v: denoise(v.with_data(np.where(v.data > 0.9, np.nan, v.data)), prior=GaussianPrior()),
        lambda v: complete_wedge(v, tilt_range=(-95, 60), prior=GaussianPrior()),
        lambda v: complete_wedge(v, tilt_range=(-60, 90), prior=GaussianPrior()),
        lambda v: upsample(v, prior=GaussianPrior()),
        lambda v: denoise(v, independent_halves=True, prior=GaussianPrior()),
        lambda v: denoise(v, Volume(v.data * 1.01, v.voxel_size, origin=(0, 0, 0)), prior=GaussianPrior()),  # origins
        lambda v: denoise(v, v.with_data(v.data.copy()), prior=GaussianPrior()),  # the same map twice
        lambda v: denoise(v, mask=v.with_data(v.data - 0.5), prior=GaussianPrior()),  # a density map as mask
        lambda v: denoise(v, mask=Volume(np.ones(v.shape, np.float32), v.voxel_size * 1.3), prior=GaussianPrior()),
        lambda v: denoise(v, mask=Volume(np.ones(v.shape, np.float32), v.voxel_size), prior=GaussianPrior()),  # origin
        lambda v: denoise(v, seed="a", prior=GaussianPrior()),
        lambda v: denoise(v, steps=2.7, prior=GaussianPrior()),  # not silently truncated
        lambda v: denoise(v, samples=0, prior=GaussianPrior()),
        lambda v: upsample(v, factor="two", prior=GaussianPrior()),
        lambda v: upsample(v, factor=1e4, prior=GaussianPrior()),  # an output grid no machine holds: refused first
        lambda v: denoise(v.data.astype(np.complex64), voxel_size=1.5, prior=GaussianPrior()),
        lambda v: denoise(v, mask=np.ones(v.shape), prior=GaussianPrior()),  # no solvent left to measure noise in
    ],
)
def test_bad_inputs_raise_input_errors(call):
    with pytest.raises(CryofmInputError):
        call(_blob_map(20))


def test_a_bfloat16_tensor_is_restored():
    vol = _blob_map(20)
    out = denoise(torch.as_tensor(vol.data).bfloat16(), voxel_size=1.5, prior=GaussianPrior(), steps=2, device="cpu")
    assert out.volume.data.dtype == np.float32 and out.volume.shape == vol.shape


def test_bare_arrays_take_the_map_grid_and_need_no_origin():
    vol = _blob_map(20)  # origin (10, -5, 2.5)
    rng = np.random.default_rng(4)
    h2 = vol.data + 0.05 * rng.standard_normal(vol.shape).astype(np.float32)
    out = denoise(vol, h2, mask=np.ones(vol.shape), prior=GaussianPrior(), steps=2, device="cpu")
    np.testing.assert_allclose(out.volume.origin, vol.origin)


# --- the shipped prior, end to end ------------------------------------------------------------
def test_shipped_prior_improves_a_degraded_map():
    from cryofm.fourier import coloured_noise, power_spectrum

    prior = cryofm.load_prior()
    truth = centred_truth()  # the EMD-5168 monomer at 1.5 A, its centre in a 40^3 box, standardised
    noise_power = 3.0 * np.asarray(power_spectrum(truth))  # SNR 1/3 per half in every shell
    halves = [truth + np.asarray(coloured_noise(truth.shape, noise_power, seed=s)) for s in (11, 12)]
    out = denoise(halves[0], halves[1], voxel_size=1.5, prior=prior, device="cpu")
    auc = lambda m: float(np.mean(np.asarray(fsc_curve(np.asarray(m, np.float64), truth))[1:]))  # noqa: E731
    assert auc(out.volume.data) > auc(out.input.data) + 0.03


def test_anisotropic_noise_model_beats_the_isotropic_one_on_directional_noise():
    from cryofm.operators import cone_labels

    n = 24
    prior = GaussianPrior()
    truth = prior.sample((n, n, n), torch.Generator().manual_seed(0))[0, 0].double().numpy()
    truth = (truth - truth.mean()) / truth.std()
    labels = cone_labels((n, n, n))
    amplitude = np.where(labels == 0, 2.0, 0.15)  # noise in the direction bin nearest k_z 180x the rest
    rng = np.random.default_rng(3)

    def half(amp):
        f = np.fft.rfftn(rng.standard_normal((n, n, n)), norm="ortho") * amp
        return truth + np.fft.irfftn(f, s=(n, n, n), norm="ortho")

    h1, h2 = half(amplitude), half(amplitude)
    kw = dict(voxel_size=1.5, prior=prior, device="cpu", steps=8, samples=4, seed=1)
    iso = denoise(h1, h2, anisotropic=False, **kw)
    auto = denoise(h1, h2, **kw)  # the default measures the anisotropy and uses it
    mse = lambda r: float(np.mean((r.volume.data - truth) ** 2))  # noqa: E731
    assert mse(auto) < 0.7 * mse(iso), (mse(auto), mse(iso))
    record = auto.report["noise_anisotropy"]
    assert record["used"] and record["requested"] == "auto" and record["chi2_per_dof"] > record["threshold"]
    assert "noise_anisotropy" not in iso.report
    forced = denoise(h1, h2, anisotropic=True, **kw)
    np.testing.assert_array_equal(forced.volume.data, auto.volume.data)
    # isotropic noise: the test finds nothing, and the default restores exactly as the per-shell model
    f1, f2 = half(0.5), half(0.5)
    flat = denoise(f1, f2, **kw)
    assert not flat.report["noise_anisotropy"]["used"]
    np.testing.assert_array_equal(flat.volume.data, denoise(f1, f2, anisotropic=False, **kw).volume.data)
    with pytest.raises(CryofmInputError, match="two half maps"):
        denoise(h1, voxel_size=1.5, prior=prior, anisotropic=True)


def test_memory_plan_follows_the_memory_a_user_allows(monkeypatch):
    monkeypatch.setenv(pl.MEMORY_ENV, "2")
    dc, fps = pl.memory_plan("cpu", "dc"), pl.memory_plan("cpu", "fps")
    assert dc["whole_box_voxels"] == int(0.5 * 2 * 2**30 / pl.BYTES_PER_VOXEL["dc"])
    assert fps["whole_box_voxels"] < dc["whole_box_voxels"]  # fps back-propagates: smaller boxes
    for plan in (dc, fps):
        assert plan["tile"] % 32 == 0 and plan["tile"] >= 64 and plan["overlap"] == plan["tile"] // 4
        assert plan["tile"] ** 3 * plan["batch"] <= max(plan["whole_box_voxels"], 64**3)
    monkeypatch.setenv(pl.MEMORY_ENV, "0.001")  # never below one 64^3 tile
    assert pl.memory_plan("cpu", "dc")["whole_box_voxels"] == 64**3
    monkeypatch.setenv(pl.MEMORY_ENV, "lots")
    with pytest.raises(CryofmInputError, match="CRYOFM_MAX_MEMORY_GB"):
        pl.memory_plan("cpu", "dc")
