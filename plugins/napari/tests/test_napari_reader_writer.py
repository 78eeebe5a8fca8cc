"""Reader and writer: geometry (scale/translate <-> voxel size/origin) survives round trips."""

from __future__ import annotations

import gzip
import shutil

import mrcfile
import numpy as np
import pytest
from napari_cryofm_test_geometry import ORIGIN_XYZ, VOXEL_SIZE_XYZ

from cryofm.errors import CryofmInputError
from cryofm.io import read_map
from napari_cryofm._reader import get_reader
from napari_cryofm._writer import write_mrc

SCALE_ZYX = VOXEL_SIZE_XYZ[::-1]
TRANSLATE_ZYX = ORIGIN_XYZ[::-1]


def _memory_mapped(array) -> bool:
    base = array
    while base is not None:
        if isinstance(base, np.memmap):
            return True
        base = getattr(base, "base", None)
    return False


def test_reader_places_map_in_angstrom_zyx(small_mrc, small_volume):
    reader = get_reader(str(small_mrc))
    assert reader is not None
    [(data, kwargs, layer_type)] = reader(str(small_mrc))
    assert layer_type == "image"
    assert kwargs["name"] == "small"
    np.testing.assert_allclose(kwargs["scale"], SCALE_ZYX)
    np.testing.assert_allclose(kwargs["translate"], TRANSLATE_ZYX)
    meta = kwargs["metadata"]["cryofm"]
    np.testing.assert_allclose(meta["voxel_size"], VOXEL_SIZE_XYZ)
    np.testing.assert_allclose(meta["origin"], ORIGIN_XYZ)
    assert meta["path"] == str(small_mrc)
    assert meta["labels"][0] == "test map"
    np.testing.assert_array_equal(np.asarray(data), small_volume.data)


def test_reader_memory_maps_float32_and_loads_gzip(small_mrc, small_volume, tmp_path):
    [(data, _, _)] = get_reader(str(small_mrc))(str(small_mrc))
    assert _memory_mapped(data), "an uncompressed float32 map must open as a view of the file"
    gz = tmp_path / "small.mrc.gz"
    with open(small_mrc, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    [(gz_data, kwargs, _)] = get_reader(str(gz))(str(gz))
    assert not _memory_mapped(gz_data)
    assert kwargs["name"] == "small"
    np.testing.assert_array_equal(gz_data, small_volume.data)
    np.testing.assert_allclose(kwargs["translate"], TRANSLATE_ZYX)


def test_reader_claims_only_maps_and_zarr_volumes(tmp_path, small_mrc):
    for name in ("a.map", "a.mrcs", "a.rec", "A.MRC", "a.mrc.gz"):
        assert get_reader(str(tmp_path / name)) is not None, name
    assert get_reader(str(tmp_path / "a.tif")) is None
    assert get_reader([str(small_mrc), str(tmp_path / "a.tif")]) is None
    (tmp_path / "folder.zarr").mkdir()
    assert get_reader(str(tmp_path / "folder.zarr")) is not None
    assert get_reader(str(tmp_path / "missing.zarr")) is None  # not a folder


def test_reader_opens_cryofm_zarr_volume_lazily(tmp_path, small_volume):
    import zarr

    from cryofm.io.zarr_store import write_zarr_volume

    store = write_zarr_volume(tmp_path / "vol.zarr", small_volume, chunks=(4, 4, 4))
    [(data, kwargs, _)] = get_reader(str(store))(str(store))
    assert isinstance(data, zarr.Array)  # not loaded
    assert kwargs["name"] == "vol"
    np.testing.assert_allclose(kwargs["scale"], SCALE_ZYX)
    np.testing.assert_allclose(kwargs["translate"], TRANSLATE_ZYX)
    np.testing.assert_array_equal(data[...], small_volume.data)


def test_reader_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"not a map" * 200)
    with pytest.raises(CryofmInputError, match="bad.mrc"):
        get_reader(str(bad))(str(bad))


def test_writer_round_trip_keeps_voxel_size_origin_and_labels(small_mrc, tmp_path):
    [(data, kwargs, _)] = get_reader(str(small_mrc))(str(small_mrc))
    out = tmp_path / "saved.map"
    assert write_mrc(str(out), data, kwargs) == [str(out)]
    back = read_map(out)
    np.testing.assert_allclose(back.voxel_size, VOXEL_SIZE_XYZ, rtol=1e-6)
    np.testing.assert_allclose(back.origin, ORIGIN_XYZ, rtol=1e-6)
    np.testing.assert_array_equal(back.data, np.asarray(data))
    assert back.metadata["labels"][0] == "test map"
    assert "napari layer small" in back.metadata["labels"][-1]
    [(_, kwargs2, _)] = get_reader(str(out))(str(out))
    np.testing.assert_allclose(kwargs2["scale"], kwargs["scale"], rtol=1e-6)
    np.testing.assert_allclose(kwargs2["translate"], kwargs["translate"], rtol=1e-6)


def test_writer_replaces_other_files_but_never_the_layer_source(small_mrc, tmp_path):
    [(data, kwargs, _)] = get_reader(str(small_mrc))(str(small_mrc))
    before = small_mrc.read_bytes()
    with pytest.raises(CryofmInputError, match="never overwrites an input"):
        write_mrc(str(small_mrc), data, kwargs)
    assert small_mrc.read_bytes() == before
    other = tmp_path / "other.mrc"
    other.write_bytes(b"old")
    write_mrc(str(other), np.asarray(data) * 2, kwargs)  # napari's dialog asked already
    np.testing.assert_allclose(read_map(other).data, np.asarray(data) * 2)


def test_writer_refuses_2d_layers(tmp_path):
    with pytest.raises(CryofmInputError, match="3D"):
        write_mrc(str(tmp_path / "x.mrc"), np.zeros((8, 8), np.float32), {"name": "img", "scale": (1, 1)})
    assert not (tmp_path / "x.mrc").exists()


def test_napari_opens_and_saves_through_the_plugin(small_mrc, tmp_path):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    [layer] = viewer.open(str(small_mrc), plugin="napari-cryofm")
    np.testing.assert_allclose(layer.scale, SCALE_ZYX)
    np.testing.assert_allclose(layer.translate, TRANSLATE_ZYX)
    out = tmp_path / "via_napari.mrc"
    viewer.layers.save(str(out), selected=False, plugin="napari-cryofm")
    with mrcfile.open(out) as mrc:
        np.testing.assert_allclose(mrc.voxel_size.tolist(), VOXEL_SIZE_XYZ, rtol=1e-6)
        np.testing.assert_allclose([mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z], ORIGIN_XYZ)
