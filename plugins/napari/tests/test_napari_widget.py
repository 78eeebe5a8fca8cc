"""The Restore dock: layer choice, errors as notifications, runs, previews, cancel, command."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Layer
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from cryofm.io import Volume
from napari_cryofm._layers import volume_layer_data
from napari_cryofm._widget import RestoreWidget


def _errors(since: int) -> list[str]:
    return [
        str(n.message) for n in notification_manager.records[since:] if n.severity == NotificationSeverity.ERROR
    ]


def _add(viewer, volume: Volume, name: str, **extra):
    return viewer.add_layer(Layer.create(*volume_layer_data(volume, name=name, extra=extra or None)))


@pytest.fixture
def viewer():
    return ViewerModel()


@pytest.fixture
def widget(qtbot, viewer):
    w = RestoreWidget(viewer)
    qtbot.addWidget(w)
    return w


def test_new_maps_and_half_map_pairs_are_selected(widget, viewer, small_volume):
    _add(viewer, small_volume, "a")
    assert (widget.mode.currentText(), widget.layer1.currentText()) == ("map", "a")
    _add(viewer, small_volume, "h1", half=1)
    assert (widget.mode.currentText(), widget.layer1.currentText()) == ("map", "h1")
    _add(viewer, small_volume, "h2", half=2)
    assert (widget.mode.currentText(), widget.layer1.currentText(), widget.layer2.currentText()) == (
        "half-maps",
        "h1",
        "h2",
    )
    _add(viewer, small_volume.with_data(small_volume.data * 2), "a restored", report={})
    assert widget.layer1.currentText() == "h1"  # results do not take the choice over
    _add(viewer, small_volume, "b")
    assert (widget.mode.currentText(), widget.layer1.currentText()) == ("map", "b")
    assert not widget.layer2.isVisibleTo(widget)
    viewer.layers["b"].name = "b renamed"
    assert widget.layer1.currentText() == "b renamed"  # the choice follows the layer
    widget.mode.setCurrentText("half-maps")
    assert widget.layer2.isVisibleTo(widget)


def test_emdb_and_relion_half_maps_pair_by_name_and_a_mask_is_offered_as_mask(widget, viewer, small_volume):
    _add(viewer, small_volume, "run_half1_class001_unfil")
    _add(viewer, small_volume, "emd_3488_half_map_1")
    _add(viewer, small_volume, "emd_3488_half_map_2")
    assert (widget.mode.currentText(), widget.layer1.currentText(), widget.layer2.currentText()) == (
        "half-maps", "emd_3488_half_map_1", "emd_3488_half_map_2")
    _add(viewer, small_volume, "run_half2_class001_unfil")  # pairs with its own half 1, not EMDB's
    assert (widget.layer1.currentText(), widget.layer2.currentText()) == (
        "run_half1_class001_unfil", "run_half2_class001_unfil")
    _add(viewer, small_volume, "emd_3488_msk_1")  # not named a mask: the new map is chosen
    assert (widget.mode.currentText(), widget.layer1.currentText()) == ("map", "emd_3488_msk_1")
    _add(viewer, small_volume, "MaskCreate job012 mask")
    assert widget.layer1.currentText() == "emd_3488_msk_1" and widget.mask.currentText() == "MaskCreate job012 mask"
    assert "--mask" in widget.command.text()


def test_wrong_layer_choices_notify_instead_of_crashing(widget, viewer, small_volume, qtbot):
    start = len(notification_manager.records)
    widget.run()  # nothing open
    assert "no image layer" in _errors(start)[-1]
    viewer.add_image(np.zeros((16, 16), np.float32), name="flat")
    widget.select("flat")
    widget.run()
    assert "2 dimensions" in _errors(start)[-1]
    _add(viewer, small_volume, "h1")
    _add(viewer, small_volume.with_data(np.zeros((12, 10, 6), np.float32)), "h2")
    widget.select("h1", "h2")
    widget.preview()
    assert "differ in shape" in _errors(start)[-1]
    widget.select("h1", "h1")
    widget.run()
    assert "same layer" in _errors(start)[-1]
    assert len(_errors(start)) == 4
    assert widget.status.text().startswith("not started: half 1 and half 2 are the same layer")
    assert widget.worker is None and widget.run_button.isEnabled()
    assert [layer.name for layer in viewer.layers] == ["flat", "h1", "h2"]


def test_half_maps_placed_differently_are_refused(widget, viewer, small_volume):
    start = len(notification_manager.records)
    _add(viewer, small_volume, "h1", half=1)
    _add(viewer, small_volume.with_data(small_volume.data, origin=np.asarray(small_volume.origin) + 100.0), "h2", half=2)
    widget.select("h1", "h2")
    widget.run()
    assert "different origins" in _errors(start)[-1] and widget.worker is None


def test_removing_the_dock_cancels_a_running_restoration(widget):
    from qtpy.QtWidgets import QWidget

    dock = QWidget()
    widget.setParent(dock)  # as napari's dock holds it
    widget.cancel_event = threading.Event()
    widget.setParent(None)  # napari's close button: remove_dock_widget -> widget.setParent(None)
    assert widget.cancel_event.is_set()


def test_copy_command_names_an_mrc_for_a_zarr_layer(widget, viewer, small_volume, tmp_path):
    from cryofm.io.zarr_store import write_zarr_volume

    write_zarr_volume(tmp_path / "v.zarr", small_volume)
    viewer.open(str(tmp_path / "v.zarr"), plugin="napari-cryofm")
    text = widget.copy_command()
    assert "v.zarr" not in text and text.startswith("cryofm denoise ") and ".mrc" in text  # the CLI reads MRC


def test_copy_command_uses_source_paths(widget, viewer, small_mrc):
    viewer.open(str(small_mrc), plugin="napari-cryofm")
    widget.steps.setValue(12)
    widget.sampler.setCurrentText("fps")
    widget.task.setCurrentText("wedge")
    text = widget.copy_command()
    assert QApplication.clipboard().text() == text == widget.command.text()
    assert text.startswith(f"cryofm wedge {small_mrc} --tilt-range -60 60 ")
    assert "--steps 12" in text and "--sampler fps" in text and "--tilt-range -60 60" in text
    assert widget.tilt_row.isVisibleTo(widget) and not widget.factor.isVisibleTo(widget)


def _run_and_wait(qtbot, widget, button, timeout=60_000):
    values = []
    widget.progress.valueChanged.connect(values.append)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert widget.worker is not None and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)
    return values


def _configure(widget, model, steps=2, samples=1):
    widget.model.setText(str(model))
    widget.steps.setValue(steps)
    widget.samples.setValue(samples)
    widget.device.setCurrentText("cpu")


def test_run_adds_restored_std_and_difference_with_input_geometry(qtbot, widget, viewer, map_32, tiny_prior_path):
    layer = _add(viewer, map_32, "m")
    _configure(widget, tiny_prior_path, steps=2, samples=2)
    start = len(notification_manager.records)
    values = _run_and_wait(qtbot, widget, widget.run_button)
    assert _errors(start) == []
    assert [l.name for l in viewer.layers] == ["m", "m denoised", "m std", "m difference"]
    for result in viewer.layers[1:]:
        assert result.data.shape == (32, 32, 32)
        np.testing.assert_allclose(result.scale, layer.scale)
        np.testing.assert_allclose(result.translate, layer.translate)
        assert result.metadata["cryofm"]["report"]
    restored = np.asarray(viewer.layers["m denoised"].data)
    np.testing.assert_allclose(
        np.asarray(viewer.layers["m difference"].data), restored - map_32.data, atol=1e-5
    )
    assert np.all(np.asarray(viewer.layers["m std"].data) >= 0)
    assert len(values) >= 3 and values[-1] == widget.progress.maximum()  # moved per step
    assert widget.plot.curves  # before/after curves drawn
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_half_maps_restored_independently_plot_fsc_before_and_after(qtbot, widget, viewer, map_32, tiny_prior_path):
    rng = np.random.default_rng(5)
    for i in (1, 2):
        noisy = map_32.with_data(map_32.data + 0.5 * rng.standard_normal(map_32.shape).astype(np.float32))
        _add(viewer, noisy, f"h{i}", half=i)
    assert widget.independent.isVisibleTo(widget)
    widget.independent.setChecked(True)
    _configure(widget, tiny_prior_path, steps=1)
    assert "--independent-halves" in widget.command.text()
    _run_and_wait(qtbot, widget, widget.run_button)
    restored = viewer.layers["h1 denoised"]
    np.testing.assert_allclose(restored.translate, viewer.layers["h1"].translate)
    report = restored.metadata["cryofm"]["report"]
    assert "fsc_halves_before" in report and "fsc_halves_after" in report
    assert {"fsc half-maps", "fsc restored halves", "power input", "power restored"} <= set(widget.plot.curves)


def test_upsample_result_has_finer_voxels_same_origin_and_no_difference(qtbot, widget, viewer, map_32, tiny_prior_path):
    small = map_32.with_data(map_32.data[:16, :16, :16], voxel_size=np.full(3, 3.0))
    layer = _add(viewer, small, "coarse")
    widget.task.setCurrentText("upsample")
    widget.factor.setValue(2.0)
    assert widget.factor.isVisibleTo(widget) and not widget.tilt_row.isVisibleTo(widget)
    _configure(widget, tiny_prior_path, steps=1)
    _run_and_wait(qtbot, widget, widget.run_button)
    assert [l.name for l in viewer.layers] == ["coarse", "coarse upsampled"]
    up = viewer.layers["coarse upsampled"]
    assert up.data.shape == (32, 32, 32)
    np.testing.assert_allclose(up.scale, np.asarray(layer.scale) / 2)
    np.testing.assert_allclose(up.translate, layer.translate)


def test_preview_slab_and_box_land_where_they_were_cut(qtbot, widget, viewer, map_32, tiny_prior_path):
    layer = _add(viewer, map_32, "m")
    _configure(widget, tiny_prior_path, steps=1)
    viewer.dims.set_point(0, layer.translate[0] + 20 * 1.5)  # world z of slice 20
    widget.thickness.setValue(16)
    _run_and_wait(qtbot, widget, widget.preview_button)
    slab = viewer.layers["m preview denoised"]
    assert slab.data.shape == (16, 32, 32)
    np.testing.assert_allclose(slab.translate, np.asarray(layer.translate) + np.array([12, 0, 0]) * 1.5)
    np.testing.assert_allclose(slab.scale, layer.scale)

    # a rectangle over y 8..23, x 4..27 (voxels), drawn in world coordinates
    corners = np.array([[8, 4], [8, 27], [23, 27], [23, 4]], dtype=float) * 1.5 + np.asarray(layer.translate[1:])
    viewer.add_shapes([corners], shape_type="rectangle", name="box")
    widget.region.setCurrentText("box from Shapes")
    _run_and_wait(qtbot, widget, widget.preview_button)
    box = viewer.layers["m preview denoised [1]"]
    assert box.data.shape == (16, 16, 24)
    np.testing.assert_allclose(box.translate, np.asarray(layer.translate) + np.array([12, 8, 4]) * 1.5)


def test_results_follow_a_rotated_input_and_carry_its_files(qtbot, widget, viewer, map_32, tiny_prior_path, tmp_path):
    from cryofm.io import write_map

    write_map(tmp_path / "m.mrc", map_32)
    layer = viewer.open(str(tmp_path / "m.mrc"), plugin="napari-cryofm")[0]
    layer.rotate = 30.0
    _configure(widget, tiny_prior_path, steps=1)
    _run_and_wait(qtbot, widget, widget.run_button)
    restored = viewer.layers["m denoised"]
    np.testing.assert_allclose(restored.rotate, layer.rotate)
    np.testing.assert_allclose(restored.data_to_world((3, 4, 5)), layer.data_to_world((3, 4, 5)))
    assert restored.metadata["cryofm"]["inputs"] == [str((tmp_path / "m.mrc").resolve())]
    viewer.dims.set_point(0, float(layer.data_to_world((20, 0, 0))[0]))
    widget.thickness.setValue(16)
    _run_and_wait(qtbot, widget, widget.preview_button)
    slab = viewer.layers["m preview denoised"]
    np.testing.assert_allclose(slab.data_to_world((0, 3, 4)), layer.data_to_world((12, 3, 4)), atol=1e-9)


def test_a_mask_layer_is_used_checked_and_named_in_the_command(qtbot, widget, viewer, map_32, tiny_prior_path, tmp_path):
    from cryofm.io import write_map

    z, y, x = np.indices(map_32.shape) - 16
    write_map(tmp_path / "mask.mrc", map_32.with_data((x**2 + y**2 + z**2 < 10**2).astype(np.float32)))
    _add(viewer, map_32, "m")
    _configure(widget, tiny_prior_path, steps=1)
    _run_and_wait(qtbot, widget, widget.run_button)
    automatic = np.asarray(viewer.layers["m denoised"].data)
    viewer.open(str(tmp_path / "mask.mrc"), plugin="napari-cryofm")
    widget.select("m")
    widget.mask.setCurrentText("mask")
    assert f"--mask {tmp_path / 'mask.mrc'}" in widget.command.text()
    start = len(notification_manager.records)
    _run_and_wait(qtbot, widget, widget.run_button)
    assert _errors(start) == []
    masked = viewer.layers["m denoised [1]"]
    assert not np.allclose(np.asarray(masked.data), automatic)  # the noise came from another solvent
    assert str((tmp_path / "mask.mrc").resolve()) in masked.metadata["cryofm"]["inputs"]
    _add(viewer, map_32.with_data(np.ones((16, 16, 16), np.float32)), "small mask")
    widget.select("m")
    widget.mask.setCurrentText("small mask")
    widget.run()
    assert "not on the grid" in _errors(start)[-1]


def test_cancel_stops_the_run_promptly(qtbot, widget, viewer, map_32, tiny_prior_path):
    _add(viewer, map_32, "m")
    _configure(widget, tiny_prior_path, steps=400)
    seen = []
    widget.progress.valueChanged.connect(seen.append)
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(v > 0 for v in seen), timeout=30_000)
    t0 = time.perf_counter()
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=15_000)
    assert time.perf_counter() - t0 < 10
    assert widget.last_outcome.cancelled
    assert widget.status.text() == "cancelled" and widget.progress.value() == 0
    assert [l.name for l in viewer.layers] == ["m"]
    assert max(seen) < widget.progress.maximum()
    assert not any(t.name == "cryofm-restore" and t.is_alive() for t in threading.enumerate())


def test_errors_from_the_worker_become_notifications(qtbot, widget, viewer, map_32, tmp_path):
    _add(viewer, map_32, "m")
    _configure(widget, tmp_path / "missing.safetensors")
    start = len(notification_manager.records)
    _run_and_wait(qtbot, widget, widget.run_button)
    errors = _errors(start)
    assert len(errors) == 1 and "missing.safetensors" in errors[0]
    assert [l.name for l in viewer.layers] == ["m"]
    assert widget.run_button.isEnabled()
