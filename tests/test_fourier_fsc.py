"""cryofm.fourier FSC: analytic limits, noise statistics, RELION-style masked FSC, backends, real data."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import (
    FSCResult,
    bfactor,
    fsc,
    fsc_curve,
    lowpass,
    masked_fsc,
    resample,
    resolution_at,
    shell_counts,
    soft_sphere_mask,
)
from cryofm.io.volume import Volume


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_fsc_of_a_map_with_itself_and_its_scaled_copy_is_one():
    x = _rng().standard_normal((24, 24, 24)).astype(np.float32)
    r = fsc(x, 3.0 * x + 0.0, voxel_size=1.2)
    assert isinstance(r, FSCResult) and isinstance(r.fsc, np.ndarray)
    np.testing.assert_allclose(r.fsc, 1.0, atol=1e-6)
    np.testing.assert_allclose(r.frequency, np.arange(12) / (24 * 1.2))
    assert r.resolution() is None
    np.testing.assert_allclose(fsc_curve(x, -x), -1.0, atol=1e-6)


def test_fsc_of_independent_noise_is_within_three_sigma_of_zero():
    rng = _rng(1)
    a, b = rng.standard_normal((2, 48, 48, 48))
    curve = fsc(a, b).fsc
    n = shell_counts(a.shape)
    assert np.all(np.abs(curve[1:]) < 3.0 / np.sqrt(n[1:]))


def test_fsc_matches_signal_to_noise_expectation():
    # h_i = s + n_i, white s and n: FSC = S / (S + N) in every shell
    rng = _rng(2)
    s = rng.standard_normal((32, 32, 32))
    h1 = s + 0.5 * rng.standard_normal(s.shape)
    h2 = s + 0.5 * rng.standard_normal(s.shape)
    curve = fsc(h1, h2).fsc
    n = shell_counts(s.shape)
    assert np.all(np.abs(curve[3:] - 0.8) < 4.0 / np.sqrt(n[3:]))


def test_batched_fsc_equals_looped():
    rng = _rng(3)
    a = rng.standard_normal((3, 16, 16, 16))
    b = a + rng.standard_normal(a.shape)
    batched = fsc_curve(a, b)
    for i in range(3):
        np.testing.assert_allclose(batched[i], fsc_curve(a[i], b[i]), rtol=1e-12)
    broadcast = fsc_curve(a, b[0])
    np.testing.assert_allclose(broadcast[1], fsc_curve(a[1], b[0]), rtol=1e-12)


def test_resolution_at_interpolates_linearly_in_frequency():
    freqs = np.arange(6) / 60.0
    curve = np.array([1.0, 0.9, 0.6, 0.2, 0.1, 0.0])
    # 0.5 is crossed between shell 2 (0.6) and 3 (0.2): a quarter of the way
    assert resolution_at(curve, freqs, 0.5) == pytest.approx(1.0 / (2.25 / 60.0))
    assert resolution_at(curve, freqs, 0.143) == pytest.approx(1.0 / ((3 + 0.057 / 0.1) / 60.0))
    assert resolution_at(curve, freqs, -0.5) is None
    # shell 0 is ignored; a curve below at shell 1 gives the box size
    assert resolution_at(np.array([-1.0, 1.0, 0.0]), np.arange(3) / 30.0, 0.5) == pytest.approx(20.0)
    assert resolution_at(np.array([1.0, 0.1, 0.0]), np.arange(3) / 30.0, 0.5) == pytest.approx(30.0)
    with pytest.raises(CryofmInputError, match="one curve"):
        resolution_at(np.zeros((2, 6)), freqs)


def test_fsc_accepts_volumes_and_checks_grids():
    x = _rng(4).standard_normal((16, 16, 16)).astype(np.float32)
    r = fsc(Volume(x, 2.0), Volume(x, 2.0))
    assert r.voxel_size == 2.0 and r.box == (16, 16, 16)
    with pytest.raises(CryofmInputError, match="voxel sizes"):
        fsc(Volume(x, 2.0), Volume(x, 1.0))
    with pytest.raises(CryofmInputError, match="same grid"):
        fsc(x, x[:8])
    with pytest.raises(CryofmInputError, match="voxel size 2.0"):
        fsc(Volume(x, 2.0), x, voxel_size=1.0)


def _band_limited_particle(rng, n, *, B=None, resolution=None, radius=13):
    blob = rng.standard_normal((n, n, n)) * soft_sphere_mask((n, n, n), radius, 4)
    s = bfactor(blob, B, 1.0) if B is not None else lowpass(blob, resolution, 1.0, edge_width_shells=0)
    return s / s.std()


def test_masked_fsc_agrees_with_unmasked_for_a_loose_mask():
    rng = _rng(5)
    n = 48
    s = _band_limited_particle(rng, n, B=100.0)
    support = soft_sphere_mask((n, n, n), 17, 0)
    h1 = s + rng.standard_normal(s.shape) * support
    h2 = s + rng.standard_normal(s.shape) * support
    r = masked_fsc(h1, h2, soft_sphere_mask((n, n, n), 18, 4), 1.0, seed=0)
    assert r.randomize_shell is not None and r.fsc_unmasked[r.randomize_shell] < 0.8
    assert np.max(np.abs(r.fsc - r.fsc_unmasked)) < 0.05
    assert r.resolution() == pytest.approx(resolution_at(r.fsc_unmasked, r.frequency), rel=0.05)


def test_phase_randomisation_removes_the_correlation_a_sharp_mask_creates():
    # signal strictly band-limited to shell 8: its true FSC is 0 beyond; a hard mask spreads the
    # strong low-resolution signal to every shell, the correction must take it out again
    rng = _rng(6)
    n = 48
    s = 3.0 * _band_limited_particle(rng, n, resolution=n / 8.5)
    h1 = s + rng.standard_normal(s.shape)
    h2 = s + rng.standard_normal(s.shape)
    r = masked_fsc(h1, h2, soft_sphere_mask((n, n, n), 17, 0), 1.0, seed=1)
    k0 = r.randomize_shell
    assert k0 == 9
    beyond = slice(k0 + 2, None)
    assert np.mean(r.fsc_masked[beyond]) > 0.3  # the artefact is there ...
    assert abs(np.mean(r.fsc[beyond])) < 0.03  # ... and corrected away
    assert np.max(np.abs(r.fsc[beyond])) < 0.2
    np.testing.assert_array_equal(r.fsc[: k0 + 2], r.fsc_masked[: k0 + 2])
    # an explicit randomisation resolution picks the shell int(n * voxel / resolution)
    r2 = masked_fsc(h1, h2, soft_sphere_mask((n, n, n), 17, 0), 1.0, randomize_from=4.0, seed=1)
    assert r2.randomize_shell == 12 and r2.randomize_resolution == pytest.approx(4.0)


def test_masked_fsc_is_reproducible_from_a_seed_and_validates():
    rng = _rng(7)
    a = rng.standard_normal((16, 16, 16))
    b = a + rng.standard_normal(a.shape)
    m = soft_sphere_mask(a.shape, 6, 2)
    r1 = masked_fsc(a, b, m, 1.0, seed=3)
    r2 = masked_fsc(a, b, m, 1.0, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(r1.fsc, r2.fsc)
    with pytest.raises(CryofmInputError, match="not both"):
        masked_fsc(a, b, m, 1.0, seed=1, generator=np.random.default_rng(1))
    with pytest.raises(CryofmInputError, match="randomize_from"):
        masked_fsc(a, b, m, 1.0, randomize_from=100.0)


def test_torch_fsc_matches_numpy_and_stays_torch():
    rng = _rng(8)
    a = rng.standard_normal((20, 18, 16)).astype(np.float32)
    b = (a + rng.standard_normal(a.shape)).astype(np.float32)
    m = soft_sphere_mask(a.shape, 6, 3)
    ref = fsc(a, b, mask=m, voxel_size=1.5)
    got = fsc(torch.from_numpy(a), torch.from_numpy(b), mask=m, voxel_size=1.5)
    assert isinstance(got.fsc, torch.Tensor) and isinstance(got.frequency, torch.Tensor)
    np.testing.assert_allclose(got.fsc.numpy(), ref.fsc, atol=1e-5)
    assert got.resolution(0.6) == pytest.approx(ref.resolution(0.6), rel=1e-5)


def test_gradients_flow_through_fsc_curve():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = (a.detach() + torch.randn(6, 6, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(fsc_curve, (a, b), fast_mode=True)


def _simulate_model_map(pdb_gz, shape, voxel_size):
    gemmi = pytest.importorskip("gemmi")
    with gzip.open(pdb_gz, "rt") as handle:
        st = gemmi.read_pdb_string(handle.read())
    nz, ny, nx = shape
    dc = gemmi.DensityCalculatorE()
    dc.grid.set_unit_cell(gemmi.UnitCell(nx * voxel_size, ny * voxel_size, nz * voxel_size, 90, 90, 90))
    dc.grid.set_size(nx, ny, nz)  # d_min stays 0, so put_model_density_on_grid keeps this grid
    dc.put_model_density_on_grid(st[0])
    return np.array(dc.grid, copy=True).transpose(2, 1, 0)  # gemmi grids are [x, y, z]


def test_real_map_against_its_model(data_dir):
    mrcfile = pytest.importorskip("mrcfile")
    with mrcfile.open(data_dir / "emd_3488" / "emd_3488.mrc", permissive=True) as mrc:
        data = np.asarray(mrc.data, dtype=np.float32)
        vs = float(mrc.voxel_size.x)
        assert float(mrc.header.origin.x) == 0 and int(mrc.header.nxstart) == 0  # model frame = map frame
    model = _simulate_model_map(data_dir / "emd_3488" / "5me2.pdb.gz", data.shape, vs)
    r = fsc(data, model, voxel_size=vs)
    res = r.resolution(0.5)
    assert res is not None and 2.8 < res < 6.0  # EMD-3488 is reported at 3.2 A
    # control: a 3-voxel shift of the model destroys the agreement at high resolution
    shifted = fsc(data, np.roll(model, 3, axis=2), voxel_size=vs).resolution(0.5)
    assert shifted is None or shifted > 2 * res
    # resampling to 1.5 A and back keeps every shell below the 1.5 A Nyquist (3 A) exactly
    down, vs_down = resample(data, vs, 1.5)
    assert down.shape == (70, 70, 70) and vs_down == pytest.approx(1.5)
    back, vs_back = resample(down, vs_down, vs)
    assert back.shape == data.shape and vs_back == pytest.approx(vs)
    kept = fsc(data, back, voxel_size=vs)
    inside = kept.frequency < 1 / 3.0 - 1.5 / (100 * vs)
    assert math.isclose(float(np.min(kept.fsc[inside])), 1.0, abs_tol=1e-5)
