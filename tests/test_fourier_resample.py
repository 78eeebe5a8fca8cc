"""cryofm.fourier resampling: adjoint identities, round trips, scale, the full-spectrum definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import fourier_crop, fourier_pad, resample, resample_volume
from cryofm.io.volume import Volume

PAIRS = [  # (large, small): even/odd sizes on every axis, and an unchanged axis
    ((12, 12, 12), (8, 8, 8)),
    ((9, 8, 7), (6, 5, 4)),
    ((8, 9, 10), (7, 6, 6)),
    ((10, 10, 10), (5, 5, 5)),
    ((8, 6, 10), (8, 5, 7)),
]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _reference_resize(x, new_shape):
    """Full-spectrum definition, axis by axis on an explicit matrix (slow, obvious)."""
    f = np.fft.fftn(x, norm="ortho")
    for axis, m in enumerate(new_shape):
        n = f.shape[axis]
        if m == n:
            continue
        big, small = max(n, m), min(n, m)
        mat = np.zeros((small, big))  # crop matrix C: small x big
        for k in range(-(small // 2), (small + 1) // 2):
            if small % 2 == 0 and k == -(small // 2):
                mat[k % small, k % big] = mat[k % small, (-k) % big] = 1 / math.sqrt(2)
            else:
                mat[k % small, k % big] = 1.0
        op = mat if m < n else mat.T
        f = np.moveaxis(np.tensordot(op, np.moveaxis(f, axis, 0), axes=1), 0, axis)
    out = np.fft.ifftn(f, norm="ortho") * math.sqrt(np.prod(new_shape) / x.size)
    assert np.abs(out.imag).max() < 1e-10
    return out.real


@pytest.mark.parametrize(("large", "small"), PAIRS)
def test_crop_and_pad_follow_the_full_spectrum_definition(large, small):
    rng = _rng(1)
    x = rng.standard_normal(large)
    y = rng.standard_normal(small)
    np.testing.assert_allclose(fourier_crop(x, small), _reference_resize(x, small), atol=1e-12)
    np.testing.assert_allclose(fourier_pad(y, large), _reference_resize(y, large), atol=1e-12)


@pytest.mark.parametrize(("large", "small"), PAIRS)
def test_crop_and_pad_are_adjoint_up_to_the_volume_ratio(large, small):
    rng = _rng(2)
    x = rng.standard_normal(large)
    y = rng.standard_normal(small)
    lhs = np.sum(fourier_crop(x, small) * y)
    rhs = np.prod(small) / np.prod(large) * np.sum(x * fourier_pad(y, large))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("large", "small"), PAIRS)
def test_round_trips_and_constants(large, small):
    rng = _rng(3)
    y = rng.standard_normal(small)
    # crop after pad is the identity for every map, Nyquist planes included
    np.testing.assert_allclose(fourier_crop(fourier_pad(y, large), small), y, atol=1e-12)
    # a map band-limited to the small grid survives pad after crop
    x = fourier_pad(y, large)
    np.testing.assert_allclose(fourier_pad(fourier_crop(x, small), large), x, atol=1e-12)
    np.testing.assert_allclose(fourier_crop(np.full(large, 2.5), small), 2.5, atol=1e-12)
    np.testing.assert_allclose(fourier_pad(np.full(small, 2.5), large), 2.5, atol=1e-12)


def test_pad_interpolates_a_band_limited_function():
    # a low-frequency wave sampled on 16 points, padded to 40, equals the wave sampled on 40
    def wave(n):
        t = np.arange(n) / n
        z, y, x = np.cos(2 * np.pi * 3 * t), np.ones(n), np.sin(2 * np.pi * 2 * t + 0.4)
        return z[:, None, None] * y[None, :, None] * x[None, None, :]

    np.testing.assert_allclose(fourier_pad(wave(16), (40, 40, 40)), wave(40), atol=1e-12)
    np.testing.assert_allclose(fourier_crop(wave(40), (16, 16, 16)), wave(16), atol=1e-12)


def test_resample_non_integer_ratio_round_trip_and_voxel_size():
    rng = _rng(4)
    coarse = rng.standard_normal((2, 32, 32, 32)).astype(np.float32)  # band-limited on its grid
    fine, vs_fine = resample(coarse, 1.5, 1.05)
    assert fine.shape == (2, 46, 46, 46) and fine.dtype == np.float32
    assert vs_fine == pytest.approx(1.5 * 32 / 46)
    back, vs_back = resample(fine, vs_fine, 1.5)
    assert back.shape == coarse.shape and vs_back == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(back, coarse, atol=1e-5)


def test_resample_rejects_axes_that_cannot_share_a_voxel_size():
    with pytest.raises(CryofmInputError, match="resample_volume"):
        resample(np.zeros((10, 10, 13)), 1.0, 1.5)
    with pytest.raises(CryofmInputError, match="fourier_pad"):
        fourier_crop(np.zeros((8, 8, 8)), (9, 8, 8))
    with pytest.raises(CryofmInputError, match="fourier_crop"):
        fourier_pad(np.zeros((8, 8, 8)), (7, 8, 8))


def test_resample_volume_keeps_origin_and_reports_per_axis_voxel_size():
    rng = _rng(5)
    vol = Volume(rng.standard_normal((20, 24, 30)), voxel_size=(1.0, 1.2, 1.4), origin=(5.0, -3.0, 7.5))
    vol.metadata["source"] = "test"
    out = resample_volume(vol, 2.0)
    # boxes round(n * v / 2) per axis, (z, y, x) = (round(14), round(14.4), round(15))
    assert out.shape == (14, 14, 15)
    np.testing.assert_allclose(out.voxel_size, [30 * 1.0 / 15, 24 * 1.2 / 14, 20 * 1.4 / 14])
    np.testing.assert_array_equal(out.origin, vol.origin)
    assert out.metadata == {"source": "test"}
    # physical box size is unchanged on every axis
    np.testing.assert_allclose(np.array(out.shape[::-1]) * out.voxel_size, np.array(vol.shape[::-1]) * vol.voxel_size)


def test_resample_volume_exact_gives_the_voxel_size_asked_on_every_axis():
    def blob(shape, v):
        z, y, x = np.indices(shape) * v
        return np.exp(-((x - 30.0) ** 2 + (y - 27.0) ** 2 + (z - 21.0) ** 2) / (2 * 4.0**2))

    shape = (28, 43, 41)  # the EMD-5168 monomer's box at 1.742 A: plain resampling gives 1.478-1.498 A
    vol = Volume(blob(shape, 1.742).astype(np.float32), voxel_size=1.742, origin=(5.0, -3.0, 7.5))
    plain = resample_volume(vol, 1.5)
    assert np.ptp(plain.voxel_size) > 0.01  # what exact=True is for
    out = resample_volume(vol, 1.5, exact=True)
    np.testing.assert_array_equal(out.voxel_size, 1.5)
    assert out.shape == plain.shape and out.data.dtype == np.float32
    np.testing.assert_array_equal(out.origin, vol.origin)
    np.testing.assert_allclose(out.data, blob(out.shape, 1.5), atol=2e-4)  # the same blob, sampled at 1.5 A
    cube = Volume(np.zeros((20, 20, 20), np.float32), voxel_size=1.05)  # 21 A: a whole number of 1.5 A voxels
    assert resample_volume(cube, 1.5, exact=True).shape == (14, 14, 14)


def test_torch_matches_numpy_and_is_differentiable():
    rng = _rng(6)
    x = rng.standard_normal((2, 12, 11, 10))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(fourier_crop(t, (8, 7, 6)).numpy(), fourier_crop(x, (8, 7, 6)), atol=1e-12)
    cube = x[:, :10, :10, :10]
    r_np, vs_np = resample(cube.astype(np.float32), 1.05, 1.5)
    r_t, vs_t = resample(torch.from_numpy(cube).float(), 1.05, 1.5)
    assert vs_t == vs_np and isinstance(r_t, torch.Tensor) and r_t.dtype == torch.float32
    np.testing.assert_allclose(r_t.numpy(), r_np, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    small = torch.randn(4, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    big = torch.randn(6, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fourier_pad(v, (6, 5, 6)), (small,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda v: fourier_crop(v, (4, 4, 4)), (big,), fast_mode=True)
