"""The Prior contract on a tiny random prior: shapes, divisor, normalisation, files, error power."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.prior import MODEL_CONFIGS, Prior, analytic_error_power, destandardize, load_prior, standardize
from cryofm.prior._spectrum import shell_power
from torch.nn import functional as F

from cryofm.prior.unet import UNetConfig, UpConv3d, VelocityNet, precondition_coefficients


@pytest.fixture(scope="module")
def tiny() -> Prior:
    prior = Prior.from_config("tiny", seed=0)
    # the output layer starts at zero; perturb it so the network part is not trivially 0
    with torch.no_grad():
        prior.net.net.out.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    return prior


def test_standardize_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    a = rng.gamma(2.0, 3.0, size=(8, 9, 10)).astype(np.float32) + 5
    n, st = standardize(a)
    assert abs(n.mean()) < 1e-5 and abs(n.std() - 1) < 1e-5
    np.testing.assert_allclose(destandardize(n, st), a, rtol=1e-5)
    t = torch.from_numpy(a)
    nt, st2 = standardize(t)
    assert isinstance(nt, torch.Tensor)
    assert st2.mean == pytest.approx(st.mean, rel=1e-6) and st2.std == pytest.approx(st.std, rel=1e-6)
    torch.testing.assert_close(destandardize(nt, st2), t)
    # given stats are used as is
    n3, st3 = standardize(a * 2, st)
    assert st3 is st and n3.mean() > n.mean()


def test_standardize_rejects_constant_and_nan():
    with pytest.raises(CryofmInputError, match="constant"):
        standardize(np.ones((4, 4, 4)))
    with pytest.raises(CryofmInputError, match="NaN"):
        standardize(np.full((4, 4, 4), np.nan))


def test_prior_normalize_uses_standardize(tiny):
    a = np.random.default_rng(1).normal(3, 2, (16, 16, 16)).astype(np.float32)
    n, st = tiny.normalize(a)
    np.testing.assert_allclose(n, standardize(a)[0])
    np.testing.assert_allclose(tiny.denormalize(n, st), a, rtol=1e-5, atol=1e-5)


def test_velocity_shape_dtype_and_batch_consistency(tiny):
    x = torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.3, 0.8])
    v = tiny.velocity(x, t)
    assert v.shape == x.shape and v.dtype == torch.float32
    # batched equals looped
    v0 = tiny.velocity(x[:1], t[:1])
    torch.testing.assert_close(v[:1], v0, atol=1e-5, rtol=1e-4)
    # scalar t broadcasts
    torch.testing.assert_close(tiny.velocity(x, 0.3)[0], v[0], atol=1e-5, rtol=1e-4)
    # non-cubic boxes that are multiples of the divisor work (fully convolutional)
    assert tiny.velocity(torch.randn(1, 1, 8, 12, 16), 0.5).shape == (1, 1, 8, 12, 16)


def test_velocity_validates_inputs(tiny):
    assert tiny.divisor == 2 and MODEL_CONFIGS["default"].unet.divisor == 8
    with pytest.raises(CryofmInputError, match="divisible"):
        tiny.velocity(torch.randn(1, 1, 15, 16, 16), 0.5)
    with pytest.raises(CryofmInputError, match=r"\[B, 1, D, H, W\]"):
        tiny.velocity(torch.randn(16, 16, 16), 0.5)
    with pytest.raises(CryofmInputError, match=r"\[0, 1\]"):
        tiny.velocity(torch.randn(1, 1, 16, 16, 16), 1.5)
    with pytest.raises(CryofmInputError, match=r"got a NumPy array .*torch\.as_tensor\(x\)"):
        tiny.velocity(np.zeros((2, 1, 16, 16, 16), np.float32), 0.5)


def test_x_hat_is_flow_convention(tiny):
    x = torch.randn(1, 1, 16, 16, 16)
    t = torch.tensor([0.4])
    torch.testing.assert_close(tiny.x_hat(x, t), x - 0.4 * tiny.velocity(x, t))


def test_untrained_edm_velocity_is_linear_white_denoiser():
    # with F = 0 the preconditioned net is x_hat = c_skip x_t, the best linear estimate for white data (the network alone)
    net = VelocityNet(UNetConfig(channels=(16, 32), attention=False, time_dim=32))
    prior = Prior(net, MODEL_CONFIGS["tiny"])
    x_t = torch.randn(3, 1, 8, 8, 8)
    t = torch.tensor([0.0, 0.5, 0.9])
    _, c_skip, _ = precondition_coefficients(t)
    torch.testing.assert_close(prior.x_hat(x_t, t, refine=False), c_skip[:, None, None, None, None] * x_t, atol=1e-5, rtol=1e-5)
    # t = 0: x_hat = x_t, and v is finite
    assert torch.isfinite(prior.velocity(x_t, 0.0)).all()


def test_upconv_folded_kernel_equals_upsample_then_convolve():
    """The inference path (one transposed convolution with the folded 4^3 kernel) computes nearest x2
    upsampling then the 3^3 convolution, values and input gradients, on a box that is not a cube."""
    gen = torch.Generator().manual_seed(3)
    up = UpConv3d(6, 5)
    with torch.no_grad():
        up.weight.copy_(torch.randn(up.weight.shape, generator=gen))
        up.bias.copy_(torch.randn(up.bias.shape, generator=gen))
    up.requires_grad_(False)
    x = torch.randn(2, 6, 4, 6, 5, generator=gen)
    literal = F.conv3d(F.interpolate(x, scale_factor=2, mode="nearest"), up.weight, up.bias, padding=1)
    with torch.no_grad():
        folded = up(x)
    assert folded.shape == (2, 5, 8, 12, 10)
    torch.testing.assert_close(folded, literal, atol=1e-4, rtol=1e-5)
    # fps: gradients flow to the input through the folded path
    xg = x.clone().requires_grad_(True)
    (up(xg) ** 2).sum().backward()
    xl = x.clone().requires_grad_(True)
    (F.conv3d(F.interpolate(xl, scale_factor=2, mode="nearest"), up.weight, up.bias, padding=1) ** 2).sum().backward()
    torch.testing.assert_close(xg.grad, xl.grad, atol=1e-3, rtol=1e-4)
    # training: the weight gets its gradient (the literal path)
    up.requires_grad_(True)
    up(x).sum().backward()
    assert up.weight.grad is not None and up.weight.grad.abs().sum() > 0


def test_save_load_round_trip(tiny, tmp_path):
    from cryofm.io._atomic import default_mode

    path = tiny.save(tmp_path / "p.safetensors")
    assert path.with_suffix(".yaml").is_file()
    assert path.stat().st_mode & 0o777 == default_mode()  # safetensors alone writes 0600
    assert sorted(q.name for q in tmp_path.iterdir()) == ["p.safetensors", "p.yaml"]  # no temporary left
    loaded = load_prior(path)
    x = torch.randn(1, 1, 16, 16, 16)
    torch.testing.assert_close(loaded.velocity(x, 0.5), tiny.velocity(x, 0.5))
    assert loaded.config == tiny.config and loaded.voxel_size == 1.5
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert json.loads(meta["cryofm_config"])["unet"]["channels"] == [8, 16]
        assert set(f.keys()) >= {"error_power.t", "error_power.value"}


def test_load_errors(tmp_path):
    with pytest.raises(CryofmInputError, match="no such weights"):
        load_prior(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CryofmInputError, match="safetensors"):
        load_prior(bad)


def test_analytic_error_power_fallback(tiny):
    assert tiny.error_power_source == "analytic"
    ep = tiny.error_power(0.5)
    assert ep.shape == (32,) and ep.dtype == torch.float32
    torch.testing.assert_close(ep, torch.full((32,), 0.5))  # t^2 / ((1-t)^2 + t^2) at t = 0.5
    assert float(tiny.error_power(0.0)[0]) == 0.0 and float(tiny.error_power(1.0)[0]) == pytest.approx(1.0)
    torch.testing.assert_close(analytic_error_power(0.2), torch.full((32,), 0.04 / 0.68))


def test_error_power_interpolates_table(tiny, tmp_path):
    p = Prior.from_config("tiny")
    t = torch.tensor([0.0, 0.5, 1.0])
    value = torch.stack([torch.zeros(32), torch.arange(32.0), 2 * torch.arange(32.0)])
    p.set_error_power(t, value, source="measured")
    torch.testing.assert_close(p.error_power(0.25), 0.5 * torch.arange(32.0))
    q = load_prior(p.save(tmp_path / "q.safetensors"))
    torch.testing.assert_close(q.error_power(0.75), 1.5 * torch.arange(32.0))
    assert q.error_power_source == "measured"


def test_shell_power_parseval_and_white_noise():
    x = torch.randn(2, 32, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = shell_power(x)
    assert p.shape == (2, 16)
    # white unit-variance noise has power 1 per component (ortho rfft)
    assert abs(float(p[:, 3:].mean()) - 1.0) < 0.05


def test_spectrum_feature_reads_white_noise_and_a_low_pass():
    from cryofm.prior.unet import spectrum_feature

    x = torch.randn(2, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0)) * 3.0
    feat = spectrum_feature(x, 8)
    assert feat.shape == (2, 8)
    # white noise of variance 9: log(9) in every shell but the two sparsely filled lowest ones
    torch.testing.assert_close(feat[:, 2:], torch.full((2, 6), float(np.log(9.0))), atol=0.15, rtol=0)
    # a map low-passed at a quarter of Nyquist keeps its low shells and loses the rest
    f = torch.fft.rfftn(x, dim=(-3, -2, -1))
    fz, fx = torch.fft.fftfreq(32), torch.fft.rfftfreq(32)
    r = torch.sqrt(fz[:, None, None] ** 2 + fz[None, :, None] ** 2 + fx[None, None, :] ** 2)
    low = torch.fft.irfftn(f * (r < 0.125), s=(32, 32, 32), dim=(-3, -2, -1))
    fl = spectrum_feature(low, 8)
    torch.testing.assert_close(fl[:, :2], feat[:, :2], atol=1e-4, rtol=0)
    assert bool((fl[:, 3:] < -10).all())
    # any box: the shells are fractions of Nyquist
    assert spectrum_feature(torch.randn(1, 1, 16, 24, 32), 8).shape == (1, 8)


def test_spectrum_conditioning_starts_as_the_unconditioned_net_and_then_reacts(tiny):
    cfg = UNetConfig(**{**tiny.config.unet.to_dict(), "spectrum_shells": 8})
    net = VelocityNet(cfg)
    result = net.load_state_dict(tiny.net.state_dict(), strict=False)
    assert not result.unexpected_keys and result.missing_keys
    from cryofm.prior.unet import is_conditioning_key

    assert all(map(is_conditioning_key, result.missing_keys))
    assert not all(map(is_conditioning_key, result.missing_keys + ["net.stem.weight"]))
    x = torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.3, 0.7])
    base = VelocityNet(tiny.config.unet)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for name, p in tiny.net.state_dict().items():  # residual branches and time modulation made non-zero
            p2 = p + 0.1 * torch.randn(p.shape, generator=g) if (".film." in name or ".conv2." in name) else p
            base.state_dict()[name].copy_(p2)
            net.state_dict()[name].copy_(p2)
        torch.testing.assert_close(net(x, t), base(x, t))  # zero-initialised: exactly as before
        net.net.spectrum_mlp[-1].weight.normal_(0, 0.5, generator=g)
        assert float((net(x, t) - base(x, t)).abs().max()) > 1e-3
    # differentiable to the input, as fps needs
    xg = x.clone().requires_grad_(True)
    net(xg, t).square().sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


@pytest.mark.parametrize("device", ["tpu", "bogus", "cuda", "cuda:7"])
def test_load_prior_rejects_unusable_devices(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    with pytest.raises(CryofmInputError, match="device"):
        load_prior(device=device)
