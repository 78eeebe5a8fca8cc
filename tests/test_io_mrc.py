"""cryofm.io.mrc: reading MRC maps into the [z, y, x] / (x, y, z) frame, and safe writing."""

from __future__ import annotations

import gzip
import os
import shutil
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

import cryofm
from cryofm import CryofmInputError, Volume
from cryofm.io import read_map, read_map_header, write_map

SAMPLE_MAPS = [
    "emd_3488/emd_3488.mrc",
    "emd_3488/emd_3488_contour_mask.mrc",
    "emd_21457_segment/emd_21457_seg.mrc",
    "emd_21457_segment/emd_21457_seg_nstart.mrc",
    "emd_21457_segment/emd_21457_seg_orig0.mrc",
    "emd_2566_crop/2566_3J6B_9.mrc",
    "emd_3197_sta/EMD-3197.map",
    "emd_5168/emd_5168.map",
    "emd_5168/emd_5168_monomer.mrc",
]


def _raw_map(path: Path, data: np.ndarray, *, voxel_size=1.0, **header) -> Path:
    """Write a map with mrcfile directly, setting header fields after the data."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_size
        for name, value in header.items():
            setattr(mrc.header, name, value)
    return path


def _small_volume(shape=(6, 7, 8), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.standard_normal(shape).astype(np.float32), voxel_size=(1.2, 1.3, 1.4),
                  origin=(10.0, -20.5, 3.25))


# --------------------------------------------------------------------------------------
# the sample maps


@pytest.mark.parametrize("name", SAMPLE_MAPS)
def test_sample_map_round_trip(data_dir, tmp_path, name):
    original = read_map(data_dir / name)
    with mrcfile.open(data_dir / name) as mrc:  # standard axis order: file array is [z, y, x]
        np.testing.assert_array_equal(original.data, mrc.data.astype(np.float32))
    assert original.data.dtype == np.float32
    assert original.metadata["path"] == str((data_dir / name).absolute())

    out = write_map(tmp_path / "copy.mrc", original, label="round trip")
    again = read_map(out)
    np.testing.assert_array_equal(again.data, original.data)
    np.testing.assert_allclose(again.voxel_size, original.voxel_size, rtol=1e-6)
    np.testing.assert_allclose(again.origin, original.origin, atol=1e-3)
    assert again.metadata["labels"][: len(original.metadata["labels"])] == original.metadata["labels"]
    assert again.metadata["labels"][-1].startswith(f"cryofm {cryofm.__version__}: round trip")
    # the input's origin convention is kept: nstart stays nstart, the origin field stays
    used_nstart = any(original.metadata["nstart"]) and not any(original.metadata["header_origin"])
    assert again.metadata["nstart"] == (original.metadata["nstart"] if used_nstart else [0, 0, 0])
    assert again.metadata["header_origin"] == (
        [0.0, 0.0, 0.0] if used_nstart else original.metadata["header_origin"]
    )
    with mrcfile.open(out) as mrc:
        assert int(mrc.header.mode) == 2
        assert (int(mrc.header.mapc), int(mrc.header.mapr), int(mrc.header.maps)) == (1, 2, 3)


def test_emd_21457_variants_share_origin_and_data(data_dir):
    folder = data_dir / "emd_21457_segment"
    with_origin = read_map(folder / "emd_21457_seg.mrc")
    with_nstart = read_map(folder / "emd_21457_seg_nstart.mrc")
    zero = read_map(folder / "emd_21457_seg_orig0.mrc")
    # nstart (155, 220, 195) voxels of 1.05 A lands where the origin field says
    np.testing.assert_allclose(with_nstart.origin, np.array([155, 220, 195]) * 1.05, atol=1e-3)
    np.testing.assert_allclose(with_origin.origin, with_nstart.origin, atol=1e-3)
    assert with_nstart.metadata["nstart"] == [155, 220, 195]
    assert with_nstart.metadata["header_origin"] == [0.0, 0.0, 0.0]
    # the third copy lost its placement in the header (origin 0 and nstart 0): same data only
    np.testing.assert_array_equal(zero.origin, 0.0)
    for v in (with_nstart, zero):
        np.testing.assert_array_equal(v.data, with_origin.data)
        np.testing.assert_allclose(v.voxel_size, with_origin.voxel_size, rtol=1e-6)


def test_nstart_origin_of_archive_maps(data_dir):
    sta = read_map(data_dir / "emd_3197_sta/EMD-3197.map")  # nstart (-2, 0, 0) at 11.4 A
    np.testing.assert_allclose(sta.origin, [-22.8, 0.0, 0.0], atol=1e-4)
    actin = read_map_header(data_dir / "emd_5168/emd_5168.map")  # nstart -50 at 1.742 A
    np.testing.assert_allclose(actin.origin, [-87.1] * 3, atol=1e-4)
    assert actin.shape == (100, 100, 100)


def test_non_cubic_box_keeps_x_last(data_dir):
    v = read_map(data_dir / "emd_2566_crop/2566_3J6B_9.mrc")
    header = read_map_header(data_dir / "emd_2566_crop/2566_3J6B_9.mrc")
    with mrcfile.open(data_dir / "emd_2566_crop/2566_3J6B_9.mrc", header_only=True) as mrc:
        nx, ny, nz = int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)
    assert (nx, ny, nz) == (35, 52, 47)
    assert v.shape == header.shape == (nz, ny, nx)
    np.testing.assert_allclose(v.origin, [356.44, 155.44, 159.46], atol=1e-3)


# --------------------------------------------------------------------------------------
# axis order, modes, compression


@pytest.mark.parametrize("axis_order", [(3, 2, 1), (2, 3, 1), (3, 1, 2), (1, 3, 2)])
def test_axis_order_is_transposed_to_zyx(tmp_path, axis_order):
    mapc, mapr, maps = axis_order
    zyx = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)  # [z, y, x], all sizes distinct
    # file axes are (sections, rows, columns) = physical axes (maps, mapr, mapc); phys p is zyx axis 3 - p
    stored = np.ascontiguousarray(zyx.transpose(3 - maps, 3 - mapr, 3 - mapc))
    voxel = np.array([1.0, 2.0, 3.0])  # x, y, z
    counts_xyz = np.array([5, 4, 3])
    nstart_crs = (7, 8, 9)  # columns, rows, sections
    path = _raw_map(
        tmp_path / "permuted.mrc", stored,
        mapc=mapc, mapr=mapr, maps=maps,
        mx=int(counts_xyz[0]), my=int(counts_xyz[1]), mz=int(counts_xyz[2]),
        cella=tuple(voxel * counts_xyz),
        nxstart=nstart_crs[0], nystart=nstart_crs[1], nzstart=nstart_crs[2],
    )
    v = read_map(path)
    np.testing.assert_array_equal(v.data, zyx)
    np.testing.assert_allclose(v.voxel_size, voxel)
    expected_origin = np.zeros(3)
    for start, phys in zip(nstart_crs, axis_order):
        expected_origin[phys - 1] = start * voxel[phys - 1]
    np.testing.assert_allclose(v.origin, expected_origin)
    assert v.metadata["axis_order"] == list(axis_order)
    # mmap gives the same view of the file, and writing normalises the order
    lazy = read_map(path, mmap=True)
    np.testing.assert_array_equal(lazy.data, zyx)
    out = read_map(write_map(tmp_path / "normal.mrc", v))
    assert out.metadata["axis_order"] == [1, 2, 3]
    np.testing.assert_array_equal(out.data, zyx)
    np.testing.assert_allclose(out.origin, expected_origin)


@pytest.mark.parametrize("dtype,mode", [(np.int8, 0), (np.int16, 1), (np.uint16, 6), (np.float16, 12)])
def test_integer_and_half_modes_read_as_float32(tmp_path, dtype, mode):
    values = np.arange(-60, 60, dtype=np.int64).reshape(4, 5, 6)
    if dtype == np.uint16:
        values = values + 60
    raw = values.astype(dtype)
    v = read_map(_raw_map(tmp_path / f"mode{mode}.mrc", raw, voxel_size=2.0))
    assert v.data.dtype == np.float32
    assert v.metadata["mode"] == mode
    np.testing.assert_array_equal(v.data, values.astype(np.float32))
    lazy = read_map(tmp_path / f"mode{mode}.mrc", mmap=True)  # not float32: loaded
    assert lazy.metadata["mmap"] is False and lazy.data.flags.writeable


def test_big_endian_float32(tmp_path):
    values = np.linspace(-1, 1, 60, dtype=np.float32).reshape(3, 4, 5)
    path = _raw_map(tmp_path / "be.mrc", values.astype(">f4"))
    with mrcfile.open(path, header_only=True) as mrc:
        assert mrc.header.mode.dtype.byteorder == ">"
    v = read_map(path, mmap=True)  # not native order: loaded and converted
    np.testing.assert_array_equal(v.data, values)
    assert v.metadata["mmap"] is False


def test_mmap_gives_read_only_view_of_float32_file(data_dir):
    path = data_dir / "emd_3488/emd_3488.mrc"
    lazy = read_map(path, mmap=True)
    assert lazy.metadata["mmap"] is True
    assert not lazy.data.flags.writeable
    base = lazy.data
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)
    np.testing.assert_array_equal(lazy.data, read_map(path).data)


@pytest.mark.parametrize("suffix", [".mrc.gz", ".map.gz"])
def test_gzip_read_and_write(data_dir, tmp_path, suffix):
    source = read_map(data_dir / "emd_3197_sta/EMD-3197.map")
    out = write_map(tmp_path / f"sta{suffix}", source, label="gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    again = read_map(out)
    assert again.metadata["compression"] == "gzip"
    np.testing.assert_array_equal(again.data, source.data)
    np.testing.assert_allclose(again.origin, source.origin, atol=1e-4)
    # a map gzipped by another program
    other = tmp_path / f"by_gzip{suffix}"
    with open(data_dir / "emd_3197_sta/EMD-3197.map", "rb") as src, gzip.open(other, "wb") as dst:
        shutil.copyfileobj(src, dst)
    np.testing.assert_array_equal(read_map(other, mmap=True).data, source.data)


# --------------------------------------------------------------------------------------
# bad input


def _assert_names_file(excinfo, path):
    assert str(path) in str(excinfo.value)


def test_truncated_map(data_dir, tmp_path):
    path = tmp_path / "cut.mrc"
    path.write_bytes((data_dir / "emd_3197_sta/EMD-3197.map").read_bytes()[:-100])
    with pytest.raises(CryofmInputError, match="truncated") as excinfo:
        read_map(path)
    _assert_names_file(excinfo, path)
    with pytest.raises(CryofmInputError, match="truncated"):
        read_map(path, mmap=True)


def test_truncated_gzip(data_dir, tmp_path):
    path = tmp_path / "cut.mrc.gz"
    path.write_bytes(gzip.compress((data_dir / "emd_3197_sta/EMD-3197.map").read_bytes())[:-50])
    with pytest.raises(CryofmInputError, match="truncated") as excinfo:
        read_map(path)
    _assert_names_file(excinfo, path)


@pytest.mark.parametrize("text", ["hello, not a map\n" * 100, "hi"])
def test_text_file_named_mrc(tmp_path, text):
    path = tmp_path / "notes.mrc"
    path.write_text(text)
    with pytest.raises(CryofmInputError, match="not a map|not an MRC") as excinfo:
        read_map(path)
    _assert_names_file(excinfo, path)


def test_text_file_permissive_still_fails(tmp_path):
    path = tmp_path / "notes.mrc"
    path.write_text("hello, not a map\n" * 100)
    with pytest.raises(CryofmInputError) as excinfo:
        read_map(path, permissive=True)
    _assert_names_file(excinfo, path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, bad):
    data = np.zeros((3, 4, 5), np.float32)
    data[1, 2, 3] = bad
    with warnings.catch_warnings():  # mrcfile warns about the header statistics
        warnings.simplefilter("ignore", RuntimeWarning)
        path = _raw_map(tmp_path / "nan.mrc", data)
    with pytest.raises(CryofmInputError, match=r"NaN or infinite.*\(1, 2, 3\)") as excinfo:
        read_map(path)
    _assert_names_file(excinfo, path)


def test_voxel_size_zero(tmp_path):
    path = _raw_map(tmp_path / "vs0.mrc", np.ones((3, 4, 5), np.float32), voxel_size=0.0)
    with pytest.raises(CryofmInputError, match="voxel size") as excinfo:
        read_map(path)
    _assert_names_file(excinfo, path)


def test_zero_sampling_is_voxel_size_error(tmp_path):
    path = _raw_map(tmp_path / "mx0.mrc", np.ones((3, 4, 5), np.float32), mx=0)
    with pytest.raises(CryofmInputError, match="voxel size"):
        read_map_header(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CryofmInputError, match="no such file"):
        read_map(tmp_path / "absent.mrc")
    with pytest.raises(CryofmInputError, match="not a file"):
        read_map(tmp_path)


def test_complex_and_2d_are_refused(tmp_path):
    path = _raw_map(tmp_path / "complex.mrc", np.ones((3, 4, 5), np.complex64))
    with pytest.raises(CryofmInputError, match="mode 4"):
        read_map(path)
    path = _raw_map(tmp_path / "image.mrc", np.ones((4, 5), np.float32))
    with pytest.raises(CryofmInputError, match="2D image"):
        read_map(path)


def test_bad_axis_order_strict_and_permissive(tmp_path):
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    path = _raw_map(tmp_path / "axes.mrc", data, mapc=1, mapr=1, maps=3)
    with pytest.raises(CryofmInputError, match="permutation"):
        read_map(path)
    with pytest.warns(RuntimeWarning, match="assumed"):
        v = read_map(path, permissive=True)
    np.testing.assert_array_equal(v.data, data)
    assert v.metadata["axis_order"] == [1, 2, 3]


def test_damaged_map_id_needs_permissive(tmp_path):
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    path = _raw_map(tmp_path / "noid.mrc", data)
    raw = bytearray(path.read_bytes())
    raw[208:212] = b"XXXX"
    path.write_bytes(bytes(raw))
    with pytest.raises(CryofmInputError, match="MAP "):
        read_map(path)
    with pytest.warns(RuntimeWarning, match="Map ID"):
        v = read_map(path, permissive=True)
    np.testing.assert_array_equal(v.data, data)


# --------------------------------------------------------------------------------------
# writing


def test_refuses_to_overwrite_without_flag(tmp_path):
    target = tmp_path / "out.mrc"
    write_map(target, _small_volume(seed=1))
    before = target.read_bytes()
    with pytest.raises(CryofmInputError, match=r"exists; use --force / overwrite=True"):
        write_map(target, _small_volume(seed=2))
    assert target.read_bytes() == before
    write_map(target, _small_volume(seed=2), overwrite=True)
    np.testing.assert_array_equal(read_map(target).data, _small_volume(seed=2).data)


def test_never_overwrites_its_input(tmp_path, data_dir):
    path = tmp_path / "input.mrc"
    shutil.copy(data_dir / "emd_3197_sta/EMD-3197.map", path)
    before = path.read_bytes()
    v = read_map(path)
    for spelling in (path, tmp_path / "sub" / ".." / "input.mrc"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(CryofmInputError, match="never overwrites an input"):
            write_map(spelling, v, overwrite=True)
    link = tmp_path / "link.mrc"
    os.symlink(path, link)
    with pytest.raises(CryofmInputError, match="never overwrites an input"):
        write_map(link, v, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.mrc", "link.mrc", "sub"]


def test_write_leaves_no_temporary_file(tmp_path):
    write_map(tmp_path / "a.mrc", _small_volume())
    write_map(tmp_path / "b.mrc.gz", _small_volume())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mrc", "b.mrc.gz"]
    assert (tmp_path / "a.mrc").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_write_keeps_existing_target(tmp_path, monkeypatch):
    target = tmp_path / "out.mrc"
    write_map(target, _small_volume(seed=1))
    before = target.read_bytes()

    def broken_set_data(self, data):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(mrcfile.mrcobject.MrcObject, "set_data", broken_set_data)
    with pytest.raises(OSError, match="disk full"):
        write_map(target, _small_volume(seed=2), overwrite=True)
    monkeypatch.undo()
    assert target.read_bytes() == before

    def broken_replace(src, dst):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr("cryofm.io._atomic.os.replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_map(target, _small_volume(seed=2), overwrite=True)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mrc"]


def test_labels_keep_history_up_to_ten(tmp_path):
    v = _small_volume()
    v.metadata["labels"] = [f"step {i}" for i in range(10)]
    out = read_map(write_map(tmp_path / "l.mrc", v, label="x" * 200))
    labels = out.metadata["labels"]
    assert len(labels) == 10
    assert labels[0] == "step 0" and labels[-2] == "step 9"
    assert labels[-1].startswith(f"cryofm {cryofm.__version__}: xxx") and len(labels[-1]) <= 80
    assert labels[-1][-19:-15].isdigit()  # ends with a timestamp YYYY-mm-dd HH:MM:SS


def test_write_checks_its_arguments(tmp_path):
    with pytest.raises(CryofmInputError, match="Volume"):
        write_map(tmp_path / "a.mrc", np.zeros((2, 2, 2), np.float32))
    with pytest.raises(CryofmInputError, match="ending"):
        write_map(tmp_path / "a.tif", _small_volume())
    with pytest.raises(CryofmInputError, match="does not exist"):
        write_map(tmp_path / "missing" / "a.mrc", _small_volume())


def test_anisotropic_voxels_round_trip(tmp_path):
    v = _small_volume(shape=(5, 6, 7))
    again = read_map(write_map(tmp_path / "aniso.map", v))
    np.testing.assert_allclose(again.voxel_size, [1.2, 1.3, 1.4], rtol=1e-6)
    np.testing.assert_allclose(again.origin, [10.0, -20.5, 3.25], atol=1e-4)
    np.testing.assert_array_equal(again.data, v.data)


def test_nstart_map_is_written_with_integer_nstart(data_dir, tmp_path):
    original = read_map(data_dir / "emd_21457_segment/emd_21457_seg_nstart.mrc")
    assert original.metadata["nstart"] == [155, 220, 195]
    out = write_map(tmp_path / "nstart.mrc", original)
    with mrcfile.open(out) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (155, 220, 195)
        assert (float(hdr.origin.x), float(hdr.origin.y), float(hdr.origin.z)) == (0.0, 0.0, 0.0)
    again = read_map(out)
    np.testing.assert_array_equal(again.origin, original.origin)  # the same physical origin
    np.testing.assert_array_equal(again.data, original.data)
    np.testing.assert_allclose(again.voxel_size, original.voxel_size, rtol=1e-7)
    # and it stays so through a second round trip
    with mrcfile.open(write_map(tmp_path / "twice.mrc", again)) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (155, 220, 195)


def test_nstart_map_follows_a_moved_origin(data_dir, tmp_path):
    original = read_map(data_dir / "emd_21457_segment/emd_21457_seg_nstart.mrc")
    # cropped by whole voxels (x 3, y 0, z -2): still nstart, shifted
    shifted = original.with_data(original.data, origin=original.origin + np.array([3, 0, -2]) * original.voxel_size)
    with mrcfile.open(write_map(tmp_path / "crop.mrc", shifted)) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (158, 220, 193)
        assert float(hdr.origin.x) == 0.0
    np.testing.assert_allclose(read_map(tmp_path / "crop.mrc").origin, shifted.origin, atol=1e-4)
    # moved by half a voxel: not representable in nstart, so the origin fields are used
    half = original.with_data(original.data, origin=original.origin + 0.5 * original.voxel_size)
    with mrcfile.open(write_map(tmp_path / "half.mrc", half)) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (0, 0, 0)
        np.testing.assert_allclose([hdr.origin.x, hdr.origin.y, hdr.origin.z], half.origin, atol=1e-4)
    np.testing.assert_allclose(read_map(tmp_path / "half.mrc").origin, half.origin, atol=1e-4)


@pytest.mark.parametrize("name", ["emd_21457_segment/emd_21457_seg.mrc", "emd_2566_crop/2566_3J6B_9.mrc"])
def test_origin_field_map_keeps_its_origin_field(data_dir, tmp_path, name):
    # both origins are whole numbers of voxels, but the input used the origin field
    original = read_map(data_dir / name)
    with mrcfile.open(write_map(tmp_path / "o.mrc", original)) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (0, 0, 0)
        np.testing.assert_allclose([hdr.origin.x, hdr.origin.y, hdr.origin.z], original.origin, atol=1e-4)
    np.testing.assert_allclose(read_map(tmp_path / "o.mrc").origin, original.origin, atol=1e-4)


def test_volume_without_header_metadata_uses_origin_field(tmp_path):
    v = Volume(np.zeros((4, 5, 6), np.float32), voxel_size=2.0, origin=(10.0, 20.0, -4.0))
    with mrcfile.open(write_map(tmp_path / "plain.mrc", v)) as mrc:
        hdr = mrc.header
        assert (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart)) == (0, 0, 0)
        assert (float(hdr.origin.x), float(hdr.origin.y), float(hdr.origin.z)) == (10.0, 20.0, -4.0)


def test_write_keeps_input_labels(data_dir, tmp_path):
    original = read_map(data_dir / "emd_3197_sta/EMD-3197.map")
    assert original.metadata["labels"]
    # a processed copy that keeps the metadata (with_data copies it) keeps the labels
    again = read_map(write_map(tmp_path / "l.mrc", original.with_data(original.data * 2)))
    assert again.metadata["labels"][:-1] == original.metadata["labels"]


def test_messages_show_plain_numbers(tmp_path):
    path = _raw_map(tmp_path / "vs0.mrc", np.ones((3, 4, 5), np.float32), voxel_size=0.0)
    with pytest.raises(CryofmInputError, match=r"voxel size is \(0, 0, 0\) A \(cell \(0, 0, 0\) A") as excinfo:
        read_map(path)
    assert "np." not in str(excinfo.value)
    with pytest.raises(CryofmInputError, match=r"got \(1.5, 0, 1.5\) A") as excinfo:
        Volume(np.zeros((2, 2, 2)), voxel_size=(1.5, 0.0, 1.5))
    assert "np." not in str(excinfo.value)
    v = Volume(np.zeros((2, 2, 2)), voxel_size=(1.0, 1.5, 1.0))
    with pytest.raises(CryofmInputError, match=r"voxel size \(1, 1.5, 1\) A") as excinfo:
        v.isotropic_voxel_size
    assert "np." not in str(excinfo.value)


@pytest.mark.parametrize("bad", ["abc", [1.5, 1.5], [1.0, 1.0, 1.0, 1.0], np.ones((2, 3))])
def test_volume_refuses_malformed_voxel_size(bad):
    with pytest.raises(CryofmInputError, match="voxel_size must be a number or three numbers"):
        Volume(np.zeros((2, 2, 2)), voxel_size=bad)
    with pytest.raises(ValueError):  # still a ValueError for existing callers
        Volume(np.zeros((2, 2, 2)), voxel_size=bad)
    with pytest.raises(CryofmInputError, match="origin must be a number or three numbers"):
        Volume(np.zeros((2, 2, 2)), voxel_size=1.0, origin=bad)
