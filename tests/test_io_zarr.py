"""cryofm.io.zarr_store: zarr v3 volumes, MRC conversion and block iteration."""

from __future__ import annotations

import os
import warnings

import mrcfile
import numpy as np
import pytest
import zarr

from cryofm import CryofmInputError, Volume
from cryofm.io import read_map
from cryofm.io.zarr_store import (
    block_slices,
    iter_blocks,
    mrc_to_zarr,
    open_zarr_volume,
    read_zarr_volume,
    write_zarr_volume,
)


def _volume(shape=(9, 10, 11)) -> Volume:
    data = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    return Volume(data, voxel_size=(1.1, 1.2, 1.3), origin=(5.0, -6.0, 7.5), metadata={"labels": ["a"]})


def test_write_read_round_trip(tmp_path):
    v = _volume()
    store = write_zarr_volume(tmp_path / "v.zarr", v, chunks=(4, 4, 4))
    back = read_zarr_volume(store)
    np.testing.assert_array_equal(back.data, v.data)
    np.testing.assert_allclose(back.voxel_size, v.voxel_size)
    np.testing.assert_allclose(back.origin, v.origin)
    assert back.metadata["labels"] == ["a"]
    array, voxel_size, origin = open_zarr_volume(store)
    assert isinstance(array, zarr.Array)
    assert array.chunks == (4, 4, 4) and array.dtype == np.float32
    assert array.metadata.dimension_names == ("z", "y", "x")
    np.testing.assert_array_equal(array[2:5, 3, 1:4], v.data[2:5, 3, 1:4])
    np.testing.assert_allclose(voxel_size, [1.1, 1.2, 1.3])
    np.testing.assert_allclose(origin, [5.0, -6.0, 7.5])
    assert [p.name for p in tmp_path.iterdir()] == ["v.zarr"]
    umask = os.umask(0)
    os.umask(umask)
    assert store.stat().st_mode & 0o777 == 0o777 & ~umask


def test_chunks_are_clipped_to_shape(tmp_path):
    store = write_zarr_volume(tmp_path / "small.zarr", _volume((3, 4, 5)))
    assert open_zarr_volume(store).array.chunks == (3, 4, 5)
    with pytest.raises(CryofmInputError, match="chunks"):
        write_zarr_volume(tmp_path / "bad.zarr", _volume(), chunks=(0, 4, 4))
    assert not (tmp_path / "bad.zarr").exists()


def test_overwrite_rules(tmp_path):
    store = write_zarr_volume(tmp_path / "v.zarr", _volume())
    with pytest.raises(CryofmInputError, match="exists; use --force / overwrite=True"):
        write_zarr_volume(store, _volume((4, 4, 4)))
    assert open_zarr_volume(store).array.shape == (9, 10, 11)
    write_zarr_volume(store, _volume((4, 4, 4)), overwrite=True)
    assert open_zarr_volume(store).array.shape == (4, 4, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["v.zarr"]
    loaded = read_zarr_volume(store)
    with pytest.raises(CryofmInputError, match="never overwrites an input"):
        write_zarr_volume(store, loaded, overwrite=True)


def test_failed_write_keeps_existing_store(tmp_path, monkeypatch):
    store = write_zarr_volume(tmp_path / "v.zarr", _volume())
    original = read_zarr_volume(store).data

    bad = _volume()

    def explode(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("cryofm.io.zarr_store._create", explode)
    with pytest.raises(OSError, match="disk full"):
        write_zarr_volume(store, bad, overwrite=True)
    np.testing.assert_array_equal(read_zarr_volume(store).data, original)
    assert [p.name for p in tmp_path.iterdir()] == ["v.zarr"]


def test_mrc_to_zarr_matches_read_map(data_dir, tmp_path):
    source = data_dir / "emd_2566_crop/2566_3J6B_9.mrc"
    store = mrc_to_zarr(source, tmp_path / "crop.zarr", chunks=(16, 16, 16))
    v = read_map(source)
    back = read_zarr_volume(store)
    np.testing.assert_array_equal(back.data, v.data)
    np.testing.assert_allclose(back.voxel_size, v.voxel_size)
    np.testing.assert_allclose(back.origin, v.origin)
    assert back.metadata["source"] == str(source.absolute())


def test_mrc_to_zarr_permuted_axes_and_nan(tmp_path):
    zyx = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = tmp_path / "perm.mrc"
    with mrcfile.new(path) as mrc:  # columns = z, rows = y, sections = x
        mrc.set_data(np.ascontiguousarray(zyx.transpose(2, 1, 0)))
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 3, 2, 1
        mrc.header.mx, mrc.header.my, mrc.header.mz = 6, 5, 4
        mrc.header.cella = (6.0, 5.0, 4.0)
    store = mrc_to_zarr(path, tmp_path / "perm.zarr", chunks=(3, 3, 3))
    np.testing.assert_array_equal(read_zarr_volume(store).data, zyx)

    bad = zyx.copy()
    bad[3, 0, 0] = np.nan
    nan_path = tmp_path / "nan.mrc"
    with warnings.catch_warnings(), mrcfile.new(nan_path) as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile's NaN header statistics
        mrc.set_data(bad)
        mrc.voxel_size = 1.0
    with pytest.raises(CryofmInputError, match=r"NaN.*z = 3"):
        mrc_to_zarr(nan_path, tmp_path / "nan.zarr", chunks=(3, 3, 3))
    assert not (tmp_path / "nan.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.mrc", "perm.mrc", "perm.zarr"]


def test_open_refuses_non_volumes(tmp_path):
    with pytest.raises(CryofmInputError, match="no zarr array"):
        open_zarr_volume(tmp_path / "absent.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CryofmInputError, match="no zarr array"):
        open_zarr_volume(tmp_path / "empty")
    zarr.create_array(store=str(tmp_path / "plain.zarr"), shape=(2, 2, 2), dtype="float32")
    with pytest.raises(CryofmInputError, match="voxel_size"):
        open_zarr_volume(tmp_path / "plain.zarr")
    zarr.create_array(store=str(tmp_path / "flat.zarr"), shape=(4, 4), dtype="float32")
    with pytest.raises(CryofmInputError, match="3D"):
        open_zarr_volume(tmp_path / "flat.zarr")


def test_block_slices_cover_with_overlap():
    shape = (10, 7, 33)
    blocks = block_slices(shape, block=(4, 7, 16), overlap=(1, 0, 4))
    covered = np.zeros(shape, dtype=int)
    for s in blocks:
        assert tuple(x.stop - x.start for x in s) == (4, 7, 16)  # all full-sized
        covered[s] += 1
    assert covered.min() >= 1
    starts_x = sorted({s[2].start for s in blocks})
    assert starts_x == [0, 12, 17]  # stride 12, last block moved back to end at 33
    assert block_slices((5, 5, 5), block=64) == [(slice(0, 5), slice(0, 5), slice(0, 5))]
    with pytest.raises(CryofmInputError, match="overlap"):
        block_slices(shape, block=8, overlap=8)


def test_iter_blocks_reads_zarr_blocks(tmp_path):
    v = _volume((9, 10, 11))
    array = open_zarr_volume(write_zarr_volume(tmp_path / "v.zarr", v, chunks=(4, 4, 4))).array
    n = 0
    for slices, block in iter_blocks(array, block=(4, 5, 6), overlap=(1, 1, 1)):
        np.testing.assert_array_equal(block, v.data[slices])
        assert block.dtype == np.float32
        n += 1
    assert n == len(block_slices(v.shape, (4, 5, 6), (1, 1, 1)))
