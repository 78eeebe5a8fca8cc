"""Reader and writer: geometry (scale/translate <-> voxel size/origin) survives round trips."""

from __future__ import annotations

import bz2
import gzip
import shutil
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from napari_cryofm_test_geometry import ORIGIN_XYZ, VOXEL_SIZE_XYZ

import napari_cryofm
from cryofm.errors import CryofmInputError
from cryofm.io import read_map
from cryofm.io.mrc import MAP_SUFFIXES
from napari_cryofm._reader import MAP_ENDINGS, get_reader
from napari_cryofm._writer import MapWriteRefused, write_mrc

REPO = Path(__file__).resolve().parents[3]
NSTART_MAP = REPO / "data" / "emd_21457_segment" / "emd_21457_seg_nstart.mrc"

SCALE_ZYX = VOXEL_SIZE_XYZ[::-1]
TRANSLATE_ZYX = ORIGIN_XYZ[::-1]


def _manifest():
    import npe2

    return npe2.PluginManifest.from_file(Path(napari_cryofm.__file__).parent / "napari.yaml")


def _copy_as(src: Path, dst: Path) -> Path:
    """`src` copied to `dst`, gzip- or bzip2-compressed when `dst`'s name ends so."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(dst.suffix.lower(), open)
    with open(src, "rb") as fin, opener(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def _viewer():
    from napari.components import ViewerModel

    return ViewerModel()


def _header_placement(path):
    with mrcfile.open(path, header_only=True) as mrc:
        hdr = mrc.header
        nstart = (int(hdr.nxstart), int(hdr.nystart), int(hdr.nzstart))
        origin = (float(hdr.origin.x), float(hdr.origin.y), float(hdr.origin.z))
    return nstart, origin


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


def test_reader_claims_only_maps_and_zarr_volumes(tmp_path, small_mrc, small_volume):
    from cryofm.io.zarr_store import write_zarr_volume

    for name in ("a.map", "a.mrcs", "a.rec", "A.MRC", "a.mrc.gz", "a.map.gz", "a.ccp4", "a.MAP.BZ2"):
        assert get_reader(str(tmp_path / name)) is not None, name
    assert get_reader(str(tmp_path / "a.tif")) is None
    assert get_reader(str(tmp_path / "a.gz")) is None
    assert get_reader([str(small_mrc), str(tmp_path / "a.tif")]) is None
    store = write_zarr_volume(tmp_path / "vol.zarr", small_volume)
    assert get_reader(str(store)) is not None
    renamed = store.rename(tmp_path / "volume_folder")  # a cryofm volume whatever its name
    assert get_reader(str(renamed)) is not None
    assert get_reader(str(tmp_path / "missing.zarr")) is None  # not a folder
    # folders that are not cryofm zarr volumes are left to other readers
    (tmp_path / "empty.zarr").mkdir()
    assert get_reader(str(tmp_path / "empty.zarr")) is None
    assert get_reader(str(tmp_path)) is None
    other = tmp_path / "other.zarr"
    other.mkdir()
    (other / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array", "attributes": {}}')
    assert get_reader(str(other)) is None
    (other / "zarr.json").write_text("not json")
    assert get_reader(str(other)) is None


def test_manifest_patterns_are_the_readers_endings_and_cover_cryofm_formats():
    reader = _manifest().contributions.readers[0]
    assert reader.accepts_directories
    assert set(reader.filename_patterns) == {f"*{e}" for e in MAP_ENDINGS} | {"*.zarr"}
    for suffix in MAP_SUFFIXES:  # every map ending cryofm writes, plain and compressed
        for compression in ("", ".gz", ".bz2"):
            assert suffix + compression in MAP_ENDINGS


def test_manifest_writer_extensions_are_what_write_map_writes():
    from cryofm.io.mrc import split_map_suffix

    extensions = _manifest().contributions.writers[0].filename_extensions
    assert extensions[0] == ".mrc"  # napari appends the first to a name without an ending
    expected = {s + c for s in MAP_SUFFIXES for c in ("", ".gz", ".bz2")}
    assert set(extensions) == expected
    for ext in extensions:
        split_map_suffix(Path("x" + ext))  # write_map accepts it


@pytest.mark.parametrize("pattern", [p for p in _manifest().contributions.readers[0].filename_patterns])
def test_every_manifest_pattern_opens_through_napari(pattern, small_mrc, small_volume, tmp_path):
    if pattern == "*.zarr":
        from cryofm.io.zarr_store import write_zarr_volume

        path = write_zarr_volume(tmp_path / "x.zarr", small_volume)
    else:
        path = _copy_as(small_mrc, tmp_path / ("x" + pattern[1:]))
    [layer] = _viewer().open(str(path), plugin="napari-cryofm")
    assert layer.name == "x"
    np.testing.assert_allclose(layer.scale, SCALE_ZYX)
    np.testing.assert_allclose(layer.translate, TRANSLATE_ZYX)
    np.testing.assert_array_equal(np.asarray(layer.data), small_volume.data)


def test_emdb_map_gz_opens_without_naming_the_plugin(small_mrc, small_volume, tmp_path):
    path = _copy_as(small_mrc, tmp_path / "emd_1234.map.gz")
    [layer] = _viewer().open(str(path), plugin=None)  # napari picks the reader, as File > Open does
    assert layer.name == "emd_1234"
    np.testing.assert_array_equal(np.asarray(layer.data), small_volume.data)


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


def test_writer_converts_length_units_to_angstrom(tmp_path):
    from napari.layers import Image

    layer = Image(np.zeros((4, 5, 6), np.float32), scale=(0.15, 0.12, 0.1), translate=(1.0, 2.0, 3.0), units="nm")
    out = tmp_path / "nm.mrc"
    write_mrc(str(out), layer.data, layer._get_state())
    back = read_map(out)
    np.testing.assert_allclose(back.voxel_size, [1.0, 1.2, 1.5], rtol=1e-6)  # (x, y, z) Angstrom
    np.testing.assert_allclose(back.origin, [30.0, 20.0, 10.0], rtol=1e-6)


def test_writer_replaces_other_files_but_never_the_layer_source(small_mrc, tmp_path):
    [(data, kwargs, _)] = get_reader(str(small_mrc))(str(small_mrc))
    before = small_mrc.read_bytes()
    with pytest.raises(MapWriteRefused, match="never overwrites an input"):
        write_mrc(str(small_mrc), data, kwargs)
    assert small_mrc.read_bytes() == before
    other = tmp_path / "other.mrc"
    other.write_bytes(b"old")
    write_mrc(str(other), np.asarray(data) * 2, kwargs)  # napari's dialog asked already
    np.testing.assert_allclose(read_map(other).data, np.asarray(data) * 2)


def test_writer_refuses_2d_layers(tmp_path):
    with pytest.raises(MapWriteRefused, match="3D"):
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


def test_writer_writes_every_manifest_extension(small_mrc, small_volume, tmp_path):
    [(data, kwargs, _)] = get_reader(str(small_mrc))(str(small_mrc))
    for ext in _manifest().contributions.writers[0].filename_extensions:
        out = tmp_path / f"out{ext}"
        assert write_mrc(str(out), data, kwargs) == [str(out)]
        back = read_map(out)
        np.testing.assert_array_equal(back.data, small_volume.data)
        np.testing.assert_allclose(back.origin, ORIGIN_XYZ, rtol=1e-6)
        assert back.metadata["compression"] == {".gz": "gzip", ".bz2": "bzip2"}.get(out.suffix)


def _save_refused(viewer, path, match):
    """`viewer.layers.save` through the plugin raises the writer's message (not a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # napari's "No data written!" would fail here
        with pytest.raises(MapWriteRefused, match=match):
            viewer.layers.save(str(path), selected=False, plugin="napari-cryofm")


def test_napari_save_raises_the_writers_refusals(small_mrc, tmp_path):
    viewer = _viewer()
    [layer] = viewer.open(str(small_mrc), plugin="napari-cryofm")
    before = small_mrc.read_bytes()
    _save_refused(viewer, small_mrc, "is the file this map was read from.*choose another output name")
    assert small_mrc.read_bytes() == before
    _save_refused(viewer, tmp_path / "missing" / "x.mrc", "does not exist; create it first")
    assert not (tmp_path / "missing").exists()

    flat = _viewer()
    flat.add_image(np.zeros((8, 8), np.float32), name="flat")
    _save_refused(flat, tmp_path / "flat.mrc", "'flat' has shape \\(8, 8\\); an MRC map needs a 3D image")
    assert not (tmp_path / "flat.mrc").exists()


def _restored_layer_data(small_volume, inputs):
    """Layer data as a restored layer carries it: no source path, the restoration's inputs."""
    from napari_cryofm._layers import volume_layer_data

    return volume_layer_data(
        small_volume.with_data(small_volume.data * 2), name="small restored",
        extra={"inputs": [str(p) for p in inputs]},
    )


def test_writer_refuses_the_inputs_of_a_restoration(small_mrc, small_volume, tmp_path):
    half2 = tmp_path / "half2.mrc"
    half2.write_bytes(small_mrc.read_bytes())
    data, kwargs, _ = _restored_layer_data(small_volume, [small_mrc.resolve(), half2.resolve()])
    assert kwargs["metadata"]["cryofm"]["path"] is None
    link = tmp_path / "link.mrc"
    link.symlink_to(half2)
    before = {p: p.read_bytes() for p in (small_mrc, half2)}
    for target in (small_mrc, half2, link, tmp_path / "sub" / ".." / "half2.mrc"):
        with pytest.raises(MapWriteRefused, match="is an input of the restoration.*choose another file name"):
            write_mrc(str(target), data, kwargs)
    assert {p: p.read_bytes() for p in before} == before
    assert link.is_symlink()
    # other names are written
    out = tmp_path / "restored.mrc"
    assert write_mrc(str(out), data, kwargs) == [str(out)]
    np.testing.assert_array_equal(read_map(out).data, small_volume.data * 2)
    # a layer without the list (made before it existed) is written as before
    del kwargs["metadata"]["cryofm"]["inputs"]
    write_mrc(str(tmp_path / "old_style.mrc"), data, kwargs)


def test_napari_save_refuses_a_restorations_input(small_mrc, small_volume, tmp_path):
    from napari.layers import Layer

    viewer = _viewer()
    viewer.add_layer(Layer.create(*_restored_layer_data(small_volume, [small_mrc.resolve()])))
    before = small_mrc.read_bytes()
    _save_refused(viewer, small_mrc, "is an input of the restoration that made layer 'small restored'")
    assert small_mrc.read_bytes() == before


def test_map_read_with_nstart_is_saved_with_nstart(tmp_path):
    original_nstart, original_origin = _header_placement(NSTART_MAP)
    assert original_nstart == (155, 220, 195) and original_origin == (0.0, 0.0, 0.0)
    viewer = _viewer()
    [layer] = viewer.open(str(NSTART_MAP), plugin="napari-cryofm")
    out = tmp_path / "again.mrc"
    viewer.layers.save(str(out), selected=False, plugin="napari-cryofm")
    assert _header_placement(out) == ((155, 220, 195), (0.0, 0.0, 0.0))
    np.testing.assert_array_equal(read_map(out).origin, read_map(NSTART_MAP).origin)
    # and through a second round trip, as the CLI keeps it
    [again] = _viewer().open(str(out), plugin="napari-cryofm")
    twice = tmp_path / "twice.mrc"
    write_mrc(str(twice), again.data, again.as_layer_data_tuple()[1])
    assert _header_placement(twice) == ((155, 220, 195), (0.0, 0.0, 0.0))


def test_moved_nstart_layer_is_saved_where_it_now_is(tmp_path):
    [(data, kwargs, _)] = get_reader(str(NSTART_MAP))(str(NSTART_MAP))
    voxel = np.asarray(kwargs["scale"])  # z, y, x
    start = np.asarray(kwargs["translate"])
    # moved by whole voxels (z -2, y 0, x 3): nstart follows the layer, not the stored header
    kwargs["translate"] = tuple(start + np.array([-2, 0, 3]) * voxel)
    write_mrc(str(tmp_path / "whole.mrc"), data, kwargs)
    assert _header_placement(tmp_path / "whole.mrc")[0] == (158, 220, 193)
    moved_xyz = np.asarray(kwargs["translate"])[::-1]
    np.testing.assert_allclose(read_map(tmp_path / "whole.mrc").origin, moved_xyz, atol=1e-3)
    # moved by half a voxel: nstart cannot say it; the origin field does, with nstart 0
    kwargs["translate"] = tuple(start + 0.5 * voxel)
    write_mrc(str(tmp_path / "half.mrc"), data, kwargs)
    nstart, origin = _header_placement(tmp_path / "half.mrc")
    assert nstart == (0, 0, 0)
    np.testing.assert_allclose(origin, np.asarray(kwargs["translate"])[::-1], atol=1e-3)


def test_several_layers_are_saved_into_a_folder_through_napari(small_mrc, small_volume, tmp_path):
    viewer = _viewer()
    [layer] = viewer.open(str(small_mrc), plugin="napari-cryofm")
    viewer.add_image(np.asarray(layer.data) * 2, name="small denoised", scale=layer.scale, translate=layer.translate)
    folder = tmp_path / "maps"
    written = viewer.layers.save(str(folder), selected=False, plugin="napari-cryofm")
    assert written == [str(folder / "small.mrc"), str(folder / "small_denoised.mrc")]
    for path, factor in zip(written, (1, 2)):
        back = read_map(path)
        np.testing.assert_array_equal(back.data, small_volume.data * factor)
        np.testing.assert_allclose(back.voxel_size, VOXEL_SIZE_XYZ, rtol=1e-6)
        np.testing.assert_allclose(back.origin, ORIGIN_XYZ, rtol=1e-6)
    # saved again into the same folder: refused, the maps there untouched
    before = {p: Path(p).read_bytes() for p in written}
    _save_refused(viewer, folder, "already holds small.mrc, small_denoised.mrc; cryofm does not replace maps")
    assert {p: Path(p).read_bytes() for p in written} == before


def test_folder_writer_checks_every_layer_before_writing_any(small_mrc, small_volume, tmp_path):
    from napari_cryofm._writer import write_mrc_folder

    [(data, kwargs, kind)] = get_reader(str(small_mrc))(str(small_mrc))
    good = (data, kwargs, kind)
    folder = tmp_path / "out"
    flat = (np.zeros((8, 8), np.float32), {"name": "flat", "scale": (1, 1)}, "image")
    with pytest.raises(MapWriteRefused, match="'flat' has shape"):
        write_mrc_folder(str(folder), [good, flat])
    twin = (data, {**kwargs, "name": "small"}, kind)
    with pytest.raises(MapWriteRefused, match="would both be saved as small.mrc"):
        write_mrc_folder(str(folder), [good, twin])
    restored = _restored_layer_data(small_volume, [(folder / "small_restored.mrc").resolve()])
    with pytest.raises(MapWriteRefused, match="is an input of the restoration"):
        write_mrc_folder(str(folder), [good, restored])
    assert not folder.exists()  # nothing written, not even the folder
    a_file = tmp_path / "a_file"
    a_file.write_bytes(b"x")
    with pytest.raises(MapWriteRefused, match="is a file; several layers are saved into a folder"):
        write_mrc_folder(str(a_file), [good, restored])
    assert a_file.read_bytes() == b"x"
    odd = (data, {**kwargs, "name": "../run 1/half  map"}, kind)
    [path] = write_mrc_folder(str(folder), [odd])
    assert Path(path) == folder / "_run_1_half_map.mrc"
