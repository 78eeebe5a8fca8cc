"""cryofm.fourier grids and shells: the Fourier/shell conventions, Parseval, batching, backends."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import (
    expand_shells,
    frequency_grid,
    hermitian_weight,
    n_shells,
    n_shells_to_corners,
    power_spectrum,
    radial_frequency,
    rfftn,
    irfftn,
    shell_average,
    shell_counts,
    shell_frequencies,
    shell_index,
    shell_sum,
)

SHAPES = [(16, 16, 16), (12, 10, 9), (9, 11, 14)]


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_frequency_grid_matches_fftfreq_in_inverse_angstrom():
    kz, ky, kx = frequency_grid((8, 6, 5), 2.0)
    assert kz.shape == (8, 1, 1) and ky.shape == (1, 6, 1) and kx.shape == (1, 1, 3)
    np.testing.assert_allclose(kz.ravel(), np.fft.fftfreq(8) / 2.0)
    np.testing.assert_allclose(ky.ravel(), np.fft.fftfreq(6) / 2.0)
    np.testing.assert_allclose(kx.ravel(), np.fft.rfftfreq(5) / 2.0)
    r = radial_frequency((8, 6, 5), 2.0)
    np.testing.assert_allclose(r, np.sqrt(kz**2 + ky**2 + kx**2))
    assert not r.flags.writeable  # cached grids are shared


def test_shell_index_convention_uses_largest_dimension():
    shape = (8, 16, 12)
    idx = shell_index(shape)
    assert idx.shape == (8, 16, 7) and idx.dtype == np.int64
    # along each axis, one step of fftfreq is n / n_axis shells, n = 16
    assert idx[1, 0, 0] == 2  # 16 * 1/8
    assert idx[0, 1, 0] == 1
    assert idx[0, 0, 1] == 1  # round(16/12 = 1.33)
    assert idx[0, 0, 3] == 4  # 16 * 3/12
    assert idx[0, 3, 4] == round(np.hypot(3, 16 * 4 / 12))
    assert n_shells(shape) == 8
    np.testing.assert_allclose(shell_frequencies(shape, 1.5), np.arange(8) / (16 * 1.5))


def test_shell_index_rounds_half_up():
    # n = 10, nz = 4: a step along z is 10/4 = 2.5 shells -> shell 3
    assert shell_index((4, 10, 10))[1, 0, 0] == 3


@pytest.mark.parametrize("shape", SHAPES)
def test_parseval_with_hermitian_weights(shape):
    x = _rng().standard_normal(shape)
    f = rfftn(x)
    w = hermitian_weight(shape)
    np.testing.assert_allclose(np.sum(w * np.abs(f) ** 2), np.sum(x**2), rtol=1e-12)
    np.testing.assert_allclose(irfftn(f, shape), x, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_shell_sums_equal_full_space_sums(shape):
    x = _rng(1).standard_normal(shape)
    full = np.abs(np.fft.fftn(x, norm="ortho")) ** 2
    fz, fy, fx = np.meshgrid(*(np.fft.fftfreq(n) for n in shape), indexing="ij")
    shells = np.floor(max(shape) * np.sqrt(fz**2 + fy**2 + fx**2) + 0.5).astype(int)
    ns = n_shells(shape)
    expected = np.array([full[shells == k].sum() for k in range(ns)])
    counts = np.array([(shells == k).sum() for k in range(ns)])
    np.testing.assert_allclose(shell_sum(np.abs(rfftn(x)) ** 2, shape), expected, rtol=1e-10)
    np.testing.assert_array_equal(shell_counts(shape), counts)
    np.testing.assert_allclose(power_spectrum(x), expected / counts, rtol=1e-10)
    # out to the corners: every full-space component in its shell, and the shells sum to |x|^2
    nc = n_shells_to_corners(shape)
    assert nc == shells.max() + 1
    corner = np.array([full[shells == k].sum() for k in range(nc)])
    with_corners = shell_sum(np.abs(rfftn(x)) ** 2, shape, corners=True)
    np.testing.assert_allclose(with_corners, corner, rtol=1e-10)
    np.testing.assert_allclose(with_corners.sum(), np.sum(x**2), rtol=1e-12)


def test_white_noise_power_is_its_variance():
    x = 3.0 * _rng(2).standard_normal((4, 32, 32, 32))
    p = power_spectrum(x).mean(axis=0)
    counts = shell_counts((32, 32, 32))
    # relative std of a shell mean of |F|^2 over 4 maps ~ sqrt(2 / (4 * count))
    assert np.all(np.abs(p[2:] / 9.0 - 1) < 4 * np.sqrt(2 / (4 * counts[2:])))


def test_batched_equals_looped_and_complex_sums():
    x = _rng(3).standard_normal((2, 3, 10, 12, 8))
    batched = power_spectrum(x)
    assert batched.shape == (2, 3, 6)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(batched[i, j], power_spectrum(x[i, j]), rtol=1e-12)
    f = rfftn(x[0, 0])
    s = shell_sum(f, x.shape)
    np.testing.assert_allclose(s.real, shell_sum(f.real, x.shape))
    np.testing.assert_allclose(s.imag, shell_sum(f.imag, x.shape))


def test_expand_shells_inverts_shell_average_and_fills_corners():
    shape = (12, 12, 12)
    per_shell = np.arange(6, dtype=np.float64) + 1.0
    expanded = expand_shells(per_shell, shape)
    assert expanded.shape == (12, 12, 7)
    np.testing.assert_allclose(shell_average(expanded, shape), per_shell)
    corners = shell_index(shape) >= 6
    assert corners.any()
    assert np.all(expanded[corners] == 6.0)
    assert np.all(expand_shells(per_shell, shape, fill=0.0)[corners] == 0.0)
    batched = expand_shells(np.stack([per_shell, 2 * per_shell]), shape)
    np.testing.assert_allclose(batched[1], 2 * expanded)


def test_torch_matches_numpy_and_keeps_device_and_dtype():
    x = _rng(4).standard_normal((2, 12, 10, 14))
    t = torch.from_numpy(x.astype(np.float32))
    pt = power_spectrum(t)
    assert isinstance(pt, torch.Tensor) and pt.dtype == torch.float32 and pt.device == t.device
    np.testing.assert_allclose(pt.numpy(), power_spectrum(x), rtol=1e-5)
    kz, ky, kx = frequency_grid(x.shape, 1.3, like=t)
    assert kz.dtype == torch.float32 and isinstance(kx, torch.Tensor)
    assert shell_index(x.shape, like=t).dtype == torch.int64
    e = expand_shells(np.arange(7.0), x.shape, like=t)
    assert isinstance(e, torch.Tensor)
    np.testing.assert_allclose(e.numpy(), expand_shells(np.arange(7.0), x.shape))


def test_invalid_inputs_raise_cryofm_errors():
    with pytest.raises(CryofmInputError, match="rfft layout"):
        shell_sum(np.zeros((8, 8, 8)), (8, 8, 8))
    with pytest.raises(CryofmInputError, match="voxel_size"):
        frequency_grid((8, 8, 8), 0.0)
    with pytest.raises(CryofmInputError, match="3D map"):
        power_spectrum(np.zeros((8, 8)))
    with pytest.raises(CryofmInputError, match="shape"):
        shell_index((8, 8))


def test_import_does_not_load_cupy_or_torch():
    code = "import sys, cryofm.fourier; print('cupy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
