"""Layer <-> Volume conversion and preview crops (no Qt, no viewer)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_cryofm_test_geometry import ORIGIN_XYZ, VOXEL_SIZE_XYZ
from napari.layers import Image, Layer

from cryofm.errors import CryofmInputError
from napari_cryofm._layers import Box, box_from_corners, layer_volume, slab_box, volume_layer_data


def test_layer_volume_inverts_volume_layer_data(small_volume):
    layer = Layer.create(*volume_layer_data(small_volume, name="m"))
    back = layer_volume(layer)
    np.testing.assert_allclose(back.voxel_size, VOXEL_SIZE_XYZ)
    np.testing.assert_allclose(back.origin, ORIGIN_XYZ)
    np.testing.assert_array_equal(back.data, small_volume.data)


def test_crop_origin_is_origin_plus_offset_times_voxel_size(small_volume):
    layer = Layer.create(*volume_layer_data(small_volume, name="m"))
    box = Box((2, 3, 4), (10, 9, 8))  # (z, y, x)
    crop = layer_volume(layer, box)
    np.testing.assert_array_equal(crop.data, small_volume.data[2:10, 3:9, 4:8])
    expected = np.asarray(ORIGIN_XYZ) + np.array([4, 3, 2]) * np.asarray(VOXEL_SIZE_XYZ)  # (x, y, z)
    np.testing.assert_allclose(crop.origin, expected)
    # the crop's voxel [0, 0, 0] is at the same world position as the map's voxel [2, 3, 4]
    np.testing.assert_allclose(layer.data_to_world((2, 3, 4)), crop.origin[::-1])


def test_non_3d_layers_are_refused():
    with pytest.raises(CryofmInputError, match="2 dimensions"):
        layer_volume(Image(np.zeros((8, 8), np.float32), name="flat"))
    with pytest.raises(CryofmInputError, match="RGB"):
        layer_volume(Image(np.zeros((8, 8, 8, 3), np.uint8), rgb=True, name="photo"))


def test_slab_stays_inside_and_has_the_minimum_thickness():
    assert slab_box((40, 20, 24), 20, 16) == Box((12, 0, 0), (28, 20, 24))
    assert slab_box((40, 20, 24), 1, 16) == Box((0, 0, 0), (16, 20, 24))
    assert slab_box((40, 20, 24), 39, 16) == Box((24, 0, 0), (40, 20, 24))
    assert slab_box((40, 20, 24), 20, 4).shape[0] == 16  # widened to what the API accepts
    assert slab_box((10, 20, 24), 5, 32).shape[0] == 10  # never more than the map


def test_box_from_rectangle_corners():
    corners = np.array([[8.0, 4.0], [8.0, 27.0], [23.0, 27.0], [23.0, 4.0]])
    assert box_from_corners((40, 32, 32), 20, 16, corners) == Box((12, 8, 4), (28, 24, 28))
    small = box_from_corners((40, 32, 32), 20, 16, np.array([[30.0, 1.0], [31.5, 3.0]]))
    assert small == Box((12, 16, 0), (28, 32, 16))  # widened to 16, kept inside
    with pytest.raises(CryofmInputError, match="does not overlap"):
        box_from_corners((40, 32, 32), 20, 16, np.array([[40.0, 40.0], [50.0, 50.0]]))


def test_voxel_size_comes_from_length_units_and_is_never_guessed():
    data = np.zeros((16, 16, 16), np.float32)
    in_nm = layer_volume(Image(data, scale=(0.15, 0.15, 0.15), translate=(1.0, 2.0, 3.0), units="nm", name="nm"))
    np.testing.assert_allclose(in_nm.voxel_size, 1.5)
    np.testing.assert_allclose(in_nm.origin, [30.0, 20.0, 10.0])  # (x, y, z) Angstrom
    with pytest.raises(CryofmInputError, match="no voxel size"):
        layer_volume(Image(data, name="plain"))  # an array with napari's default scale of 1 pixel
    np.testing.assert_allclose(layer_volume(Image(data, scale=(1.05,) * 3, name="em")).voxel_size, 1.05)  # px: A


def test_map_layers_are_in_angstrom(small_volume):
    layer = Layer.create(*volume_layer_data(small_volume, name="m"))
    assert {str(u) for u in layer.units} == {"angstrom"}
    np.testing.assert_allclose(layer_volume(layer).voxel_size, VOXEL_SIZE_XYZ)
