"""cryofm.fourier masks: wedge/cone geometry, projection properties, soft edges, automatic masks."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import (
    auto_mask,
    cone_mask,
    irfftn,
    missing_wedge_mask,
    rfftn,
    soft_sphere_mask,
    wedge_mask_from_angles,
)

N = 16


def test_wedge_geometry_for_beam_z_and_tilt_axis_y():
    m = missing_wedge_mask((N, N, N), (-60, 60))
    assert m.shape == (N, N, N // 2 + 1) and m.dtype == np.float32
    assert m[0, 0, 0] == 1  # DC
    assert m[0, 5, 0] == 1  # the tilt axis lies in every plane
    assert m[1, 3, 2] == 1  # atan(1/2) = 26.6 deg
    assert m[3, 0, 2] == 1  # atan(3/2) = 56.3 deg
    assert m[2, 0, 1] == 0  # 63.4 deg
    assert m[-2, 4, 1] == 0  # -63.4 deg
    assert m[3, 0, 0] == 0  # along the beam
    # |kz| <= |kx| tan(60) everywhere (the symmetric-range formula)
    kz = np.fft.fftfreq(N)[:, None, None]
    kx = np.fft.rfftfreq(N)[None, None, :]
    expected = (np.abs(kz) <= np.abs(kx) * np.tan(np.radians(60)) + 1e-12) | ((kz == 0) & (kx == 0))
    np.testing.assert_array_equal(m, np.broadcast_to(expected, m.shape))


def test_asymmetric_ranges_and_other_axes():
    m = missing_wedge_mask((N, N, N), (-30, 60))
    assert m[1, 0, 1] == 1  # +45 deg
    assert m[-1, 0, 1] == 0  # -45 deg
    assert m[-1, 0, 2] == 1  # -26.6 deg
    full = missing_wedge_mask((N, N, N), (-90, 90))
    assert full.min() == 1
    mx = missing_wedge_mask((N, N, N), (-45, 45), tilt_axis="x")  # beam z, angle atan2(kz, ky)
    assert mx[1, 2, 7] == 1 and mx[2, 1, 0] == 0 and mx[2, -1, 3] == 0
    with pytest.raises(CryofmInputError, match="tilt_range"):
        missing_wedge_mask((N, N, N), (30, -30))
    with pytest.raises(CryofmInputError, match="different axes"):
        missing_wedge_mask((N, N, N), tilt_axis="z")


@pytest.mark.parametrize(
    "make",
    [
        lambda s: missing_wedge_mask(s, (-35, 55)),
        lambda s: missing_wedge_mask(s, (-50, 20), tilt_axis="x", beam_axis="y"),
        lambda s: wedge_mask_from_angles(s, np.arange(-54, 61, 6)),
        lambda s: cone_mask(s, (1.0, 0.5, 0.2), 25),
    ],
)
@pytest.mark.parametrize("shape", [(12, 12, 12), (11, 10, 9)])
def test_fourier_masks_give_real_orthogonal_projections(make, shape):
    m = make(shape).astype(np.float64)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, *shape))

    def project(v):
        return irfftn(m * rfftn(v), shape)

    px = project(x)
    np.testing.assert_allclose(project(px), px, atol=1e-12)  # idempotent
    assert np.sum(px * y) == pytest.approx(np.sum(x * project(y)), rel=1e-10)  # self-adjoint


def test_wedge_from_angles_slabs():
    single = wedge_mask_from_angles((N, N, N), [0.0])
    kz = np.fft.fftfreq(N)[:, None, None]
    np.testing.assert_array_equal(single, np.broadcast_to(kz == 0, single.shape).astype(np.float32))
    dense = wedge_mask_from_angles((32, 32, 32), np.arange(-60, 61, 3))
    wedge = missing_wedge_mask((32, 32, 32), (-60, 60))
    radius = 32 * np.sqrt(np.fft.fftfreq(32)[:, None, None] ** 2 + np.fft.rfftfreq(32)[None, None, :] ** 2)
    low = np.broadcast_to(radius <= 8, wedge.shape)
    assert np.all(dense[low & (wedge == 1)] == 1)  # slabs overlap at low resolution
    coarse = wedge_mask_from_angles((32, 32, 32), [-15.0, 0.0, 15.0])
    # 7.5 deg at radius 15: 15 sin(7.5 deg) = 1.96 voxels from both planes -> a gap
    kz, kx = round(15 * np.sin(np.radians(7.5))), round(15 * np.cos(np.radians(7.5)))
    assert coarse[kz, 0, kx] == 0 and wedge[kz, 0, kx] == 1


def test_cone_mask_half_angle():
    m = cone_mask((32, 32, 32), "z", 30)
    assert m[0, 0, 0] == 1 and m[5, 0, 0] == 1
    assert m[10, 5, 0] == 1 and m[10, 0, 6] == 0  # 26.6 and 31.0 deg from +z
    assert m[-10, -5, 0] == 1 and m[-10, 0, 6] == 0  # the same angles from -z (double cone)
    assert m[0, 4, 4] == 0


def test_soft_sphere_profile():
    m = soft_sphere_mask((N, N, N), 4.0, 4.0)
    c = N // 2
    assert m[c, c, c] == 1 and m[c, c, c + 4] == 1
    assert m[c, c, c + 6] == pytest.approx(0.5)
    assert m[c, c - 8, c] == 0 and m[0, 0, 0] == 0
    off = soft_sphere_mask((N, N, N), 2.0, 0.0, center=(3, 4, 5))
    assert off[3, 4, 7] == 1 and off[3, 4, 8] == 0
    t = soft_sphere_mask((N, N, N), 4.0, 4.0, like=torch.zeros(1, dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), m, atol=1e-7)


def _blobs(shape, centres, sigma):
    grid = np.indices(shape).astype(np.float64)
    out = np.zeros(shape)
    for c, amp in centres:
        out += amp * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grid, c)) / (2 * sigma**2))
    return out


def test_auto_mask_covers_molecule_drops_specks_and_matches_torch():
    shape = (40, 40, 40)
    x = _blobs(shape, [((20, 18, 20), 1.0), ((20, 24, 21), 1.0), ((5, 5, 34), 0.6)], 2.5)
    x += _blobs(shape, [((34, 34, 5), 0.6)], 1.5)  # a speck: 33 voxels above threshold, vs 832
    x += 0.02 * np.random.default_rng(0).standard_normal(shape)
    m = auto_mask(x, 1.0, lowpass_A=6.0, dilate_A=2.0, soft_edge_A=3.0, min_component_fraction=0.2)
    assert m.shape == shape and m.dtype == np.float64
    assert 0 <= m.min() and m.max() <= 1
    assert m[20, 18, 20] == 1 and m[20, 24, 21] == 1 and m[20, 21, 20] == 1
    assert m[5, 5, 34] == 1  # a weaker but large blob stays
    assert m[0, 39, 0] == 0 and m[34, 34, 5] == 0
    lowered = auto_mask(x, 1.0, lowpass_A=6.0, dilate_A=2.0, soft_edge_A=3.0, min_component_fraction=0.0)
    assert lowered[34, 34, 5] > 0.5  # kept when components are not filtered
    t = auto_mask(torch.from_numpy(x.astype(np.float32)), 1.0, lowpass_A=6.0, dilate_A=2.0, soft_edge_A=3.0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    ref = auto_mask(x.astype(np.float32), 1.0, lowpass_A=6.0, dilate_A=2.0, soft_edge_A=3.0)
    np.testing.assert_allclose(t.numpy(), ref, atol=1e-5)
    with pytest.raises(CryofmInputError, match="threshold"):
        auto_mask(x, 1.0, threshold=10.0)


def test_auto_mask_of_a_real_map_contains_its_model(data_dir):
    mrcfile = pytest.importorskip("mrcfile")
    gemmi = pytest.importorskip("gemmi")
    with mrcfile.open(data_dir / "emd_3488" / "emd_3488.mrc", permissive=True) as mrc:
        data = np.asarray(mrc.data, dtype=np.float32)
        vs = float(mrc.voxel_size.x)
    with gzip.open(data_dir / "emd_3488" / "5me2.pdb.gz", "rt") as handle:
        st = gemmi.read_pdb_string(handle.read())
    xyz = np.array([atom.pos.tolist() for chain in st[0] for res in chain for atom in res])
    m = auto_mask(data, vs)
    ix = np.round(xyz / vs).astype(int)  # origin 0: voxel index = position / voxel size
    inside = m[ix[:, 2], ix[:, 1], ix[:, 0]]
    assert np.mean(inside > 0.99) > 0.97
    assert 0.05 < np.mean(m > 0.5) < 0.4  # a molecular mask, not the whole box


def test_numpy_and_torch_fourier_masks_agree():
    like = torch.zeros(1)
    for make in (
        lambda **k: missing_wedge_mask((10, 12, 14), (-40, 50), **k),
        lambda **k: wedge_mask_from_angles((10, 12, 14), [-30, 0, 30], **k),
        lambda **k: cone_mask((10, 12, 14), "x", 20, **k),
    ):
        t = make(like=like)
        assert isinstance(t, torch.Tensor)
        np.testing.assert_array_equal(t.numpy(), make())


def test_auto_mask_keeps_every_molecule_of_a_crowded_box():
    # a merged cluster of four touching blobs beside single molecules of the same density: the
    # relative size rule alone (10 % of the largest component) dropped the singles
    shape = (64, 64, 64)
    cluster = [((12 + 6 * i, 12 + 6 * j, 12 + 6 * k), 1.0) for i in range(3) for j in range(3) for k in range(2)]
    singles = [((50, 50, 50), 1.0), ((50, 14, 50), 1.0), ((14, 50, 50), 1.0)]
    x = _blobs(shape, cluster + singles, 3.0)
    x += 0.02 * np.random.default_rng(0).standard_normal(shape)
    relative_only = auto_mask(x, 1.5, lowpass_A=6.0, min_component_radius_A=1e6)
    assert relative_only[50, 50, 50] == 0  # the old rule: a whole molecule cut away
    m = auto_mask(x, 1.5, lowpass_A=6.0)
    for c, _ in cluster + singles:
        assert m[c] == 1
    assert m[0, 63, 0] == 0 and m[32, 32, 62] == 0
    with pytest.raises(CryofmInputError, match="min_component_radius_A"):
        auto_mask(x, 1.5, min_component_radius_A=-1.0)
