"""Map-like augmentation, crop choices and fine-tuning from a prior's weights."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cryofm.errors import CryofmInputError
from cryofm.prior import Prior
from training_helpers import tiny_config
from cryofm.training import train
from cryofm.training.map_like import MapLikeDraw, draw_map_like, map_like



def _radius(n: int, voxel_size: float) -> np.ndarray:
    f = np.fft.fftfreq(n) / voxel_size
    fx = np.fft.rfftfreq(n) / voxel_size
    return np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + fx[None, None, :] ** 2)


def _blob(n: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n, n)).astype(np.float32)


def test_identity_draw_changes_nothing():
    x = _blob()
    d = MapLikeDraw(resolution=0.5, edge=0.01, b_factor=0.0, low_damp=0.0, low_scale=20.0, noise=0.0)
    np.testing.assert_allclose(map_like(x, 1.5, d, torch.Generator()), x, atol=1e-5)


@pytest.mark.parametrize("noise", [0.0, 0.4])
def test_low_pass_leaves_nothing_beyond_the_edge(noise):
    x = _blob()
    d = MapLikeDraw(resolution=6.0, edge=0.1, b_factor=-120.0, low_damp=0.5, low_scale=30.0, noise=noise)
    y = map_like(x, 1.5, d, torch.Generator().manual_seed(3))
    fy = np.abs(np.fft.rfftn(y)) ** 2
    s = _radius(32, 1.5)
    beyond, inside = fy[s > 1.1 / 6.0].sum(), fy[s < 0.9 / 6.0].sum()
    assert beyond < 1e-8 * inside
    # sharpening raised the band just below the cut-off relative to the lowest shells (damped)
    fx = np.abs(np.fft.rfftn(x)) ** 2
    band, low = (s > 0.12) & (s < 0.9 / 6.0), (s > 0) & (s < 1 / 40)
    assert (fy[band].mean() / fx[band].mean()) > 2 * (fy[low].mean() / fx[low].mean())


def test_noise_reaches_its_own_cut_off_beyond_the_signal():
    x = _blob()
    d = MapLikeDraw(resolution=8.0, edge=0.05, b_factor=0.0, low_damp=0.0, low_scale=30.0, noise=0.3,
                    noise_resolution=4.0)
    y = map_like(x, 1.5, d, torch.Generator().manual_seed(1))
    p, s = np.abs(np.fft.rfftn(y)) ** 2, _radius(32, 1.5)
    between, beyond = p[(s > 1.1 / 8) & (s < 0.9 / 4)].mean(), p[s > 1.1 / 4].mean()
    assert between > 1e6 * max(beyond, 1e-30)  # noise, flat up to 4 A, nothing past it
    g = torch.Generator().manual_seed(0)
    draws = [draw_map_like(g, resolution=(3.0, 9.0), nyquist=3.0) for _ in range(100)]
    assert all(3.0 <= dr.noise_resolution <= dr.resolution for dr in draws)


def test_noise_has_the_asked_relative_std_and_is_reproducible():
    x = _blob()
    base = MapLikeDraw(resolution=4.0, edge=0.1, b_factor=0.0, low_damp=0.0, low_scale=30.0, noise=0.0)
    noisy = MapLikeDraw(**{**base.__dict__, "noise": 0.3})
    y0 = map_like(x, 1.5, base, torch.Generator())
    y = map_like(x, 1.5, noisy, torch.Generator().manual_seed(7))
    assert float((y - y0).std() / y0.std()) == pytest.approx(0.3, rel=1e-3)
    np.testing.assert_array_equal(y, map_like(x, 1.5, noisy, torch.Generator().manual_seed(7)))
    assert not np.array_equal(y, map_like(x, 1.5, noisy, torch.Generator().manual_seed(8)))


def test_draws_stay_in_their_ranges():
    g = torch.Generator().manual_seed(0)
    draws = [draw_map_like(g, resolution=(3.0, 9.0), b_factor=(-100.0, 0.0), noise=(0.1, 0.2)) for _ in range(200)]
    res = np.array([d.resolution for d in draws])
    assert res.min() >= 3.0 and res.max() <= 9.0
    assert np.mean(res < np.sqrt(27.0)) == pytest.approx(0.5, abs=0.1)  # log-uniform: median at the geometric mean
    assert all(-100.0 <= d.b_factor <= 0.0 and 0.1 <= d.noise <= 0.2 for d in draws)


_tiny = tiny_config


def test_fine_tune_from_weights_with_map_like_patches_and_crop_choices(tmp_path, tiny_store):
    start = Prior.from_config("tiny", seed=5)
    w0 = start.save(tmp_path / "start.safetensors")
    cfg = _tiny(tmp_path / "run", tiny_store, max_steps=3, val_every=0, init_weights=str(w0))
    cfg.data.map_like_prob = 1.0
    cfg.data.crop_choices = [16, 32]
    cfg.optim.lr = 0.0  # no update: the run's weights must be the initial ones
    result = train(cfg, progress=False)
    assert result.step == 3 and np.all(np.isfinite(result.losses))
    got = load_file(str(result.checkpoint / "model.safetensors"))
    for k, v in start.net.state_dict().items():
        torch.testing.assert_close(got[k], v, msg=k)


def test_export_measures_error_power_on_map_like_patches_too(tmp_path, tiny_store):
    from cryofm.datasets import PatchRecord, PatchStoreWriter
    from cryofm.training import export_prior

    result = train(_tiny(tmp_path / "run", tiny_store, max_steps=2, val_every=0), progress=False)
    # the error-power table is defined on 64^3 boxes: a store of 2 smooth random 64^3 patches
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    vols = np.stack([np.clip(gaussian_filter(rng.standard_normal((64, 64, 64)), 2.0), 0, None) for _ in range(2)])
    w = PatchStoreWriter(tmp_path / "s.zarr", box=64, voxel_size=1.5)
    w.add(PatchRecord("x", vols.astype(np.float32), np.zeros(2), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros((2, 3)),
                      split=1))
    store = w.close()
    plain = export_prior(result.run_dir, tmp_path / "a.safetensors", store=store, patches=2)
    mixed = export_prior(result.run_dir, tmp_path / "b.safetensors", store=store, patches=2, map_like_fraction=0.5)
    assert "made map-like" not in plain.error_power_source
    assert "(1 made map-like)" in mixed.error_power_source
    assert not torch.allclose(plain.error_power(0.5), mixed.error_power(0.5))


def test_fine_tune_adds_spectrum_conditioning_to_weights_without_it(tmp_path, tiny_store):
    start = Prior.from_config("tiny", seed=5)
    w0 = start.save(tmp_path / "start.safetensors")
    spectral = {"name": "tiny_spectral", "unet": {**start.config.unet.to_dict(), "spectrum_shells": 8}}
    cfg = _tiny(tmp_path / "run", tiny_store, max_steps=2, val_every=0, init_weights=str(w0), model=spectral)
    cfg.optim.lr = 0.0
    result = train(cfg, progress=False)
    got = load_file(str(result.checkpoint / "model.safetensors"))
    for k, v in start.net.state_dict().items():
        torch.testing.assert_close(got[k], v, msg=k)
    assert float(got["net.spectrum_mlp.2.weight"].abs().max()) == 0.0
    # weights with parameters the model lacks are still refused (same shapes: only the key check can refuse them)
    other = Prior.from_config({"name": "x", "unet": {**start.config.unet.to_dict(), "attention": True}})
    w1 = other.save(tmp_path / "other.safetensors")
    with pytest.raises(CryofmInputError, match="do not fit"):
        train(_tiny(tmp_path / "run2", tiny_store, max_steps=1, val_every=0, init_weights=str(w1)), progress=False)


def test_conditioning_lr_scale_applies_to_the_conditioning_only(tmp_path, tiny_store):
    start = Prior.from_config("tiny", seed=5)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # zero-initialised layers made non-zero, so that every parameter gets a gradient
        for name, p in start.net.named_parameters():
            if ".film." in name or ".conv2." in name or ".out." in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    w0 = start.save(tmp_path / "start.safetensors")
    spectral = {"name": "tiny_spectral", "unet": {**start.config.unet.to_dict(), "spectrum_shells": 8}}
    cfg = _tiny(tmp_path / "run", tiny_store, max_steps=2, val_every=0, init_weights=str(w0), model=spectral)
    cfg.optim.warmup_steps = 0
    cfg.optim.conditioning_lr_scale = 0.0
    got = load_file(str(train(cfg, progress=False).checkpoint / "model.safetensors"))
    assert float(got["net.spectrum_mlp.2.weight"].abs().max()) == 0.0  # frozen by its scale
    assert float((got["net.out.weight"] - start.net.state_dict()["net.out.weight"]).abs().max()) > 0.0
