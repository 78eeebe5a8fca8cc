"""The Restore dock widget: choose maps and settings, run cryofm in a worker thread.

The widget only gathers settings and shows results; the work is `_worker.restore_steps`
(a generator, no Qt) run by ``napari.qt.threading.thread_worker``.  Each `Progress` it yields
moves the progress bar; Cancel sets the `threading.Event` that the API polls between steps.
Errors (a wrong layer, half-maps that do not match, anything the API raises) become napari
notifications (`show_error`), never exceptions out of a slot.

*Run* restores the whole map; *Preview* restores only a slab of `thickness` z slices around
the viewer's current z slice, limited in y/x to a rectangle drawn in a Shapes layer when
"box from Shapes" is chosen.  Crops keep their place: their origin is the map's origin plus
the crop offset times the voxel size, so the result overlays the input.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryofm._command import command_line
from napari_cryofm._layers import META_KEY, MIN_CROP, Box, box_from_corners, layer_source_path, layer_volume, slab_box
from napari_cryofm._worker import (SAMPLERS, TASKS, Outcome, RestoreRequest, available_devices, restore_steps,
                                   result_layers)

__all__ = ["RestoreWidget", "dock_restore_widget_later", "PLUGIN_NAME", "WIDGET_NAME"]

PLUGIN_NAME = "napari-cryofm"
WIDGET_NAME = "Restore"
MODES = ("map", "half-maps")
REGIONS = ("slab at current z", "box from Shapes")


def dock_restore_widget_later(viewer: Any) -> None:
    """Open the Restore dock in `viewer`'s window once the event loop runs again.

    Sample-data commands call this so that the dock opens with the new layers selected
    (napari adds them after the command returns); an open dock selects them itself.
    """
    window = viewer.window

    def dock() -> None:
        try:
            window.add_plugin_dock_widget(PLUGIN_NAME, WIDGET_NAME)
        except Exception as exc:  # the sample is loaded anyway; say why the dock did not open
            show_error(f"cryofm: could not open the Restore dock: {exc}")

    QTimer.singleShot(0, dock)


NO_MASK = "none (automatic)"


def _map_file(path: str | None) -> str | None:
    """`path` if the CLI can read it (an MRC map), else None: a zarr volume or a TIFF must be
    saved as MRC first, and the command then names `<layer name>.mrc`."""
    from napari_cryofm._reader import MAP_ENDINGS

    return path if path and path.lower().endswith(MAP_ENDINGS) else None


def _input_files(*layers: Any) -> tuple[str, ...]:
    """The files behind input layers: their own source and, for a result restored again, the
    inputs it came from (so no result is ever saved over an original input)."""
    out: list[str] = []
    for layer in layers:
        path = layer_source_path(layer)
        meta = (getattr(layer, "metadata", {}) or {}).get(META_KEY) or {}
        out += ([path] if path else []) + [str(p) for p in meta.get("inputs") or []]
    return tuple(dict.fromkeys(out))


def _placement(layer: Any, box: Box | None) -> dict[str, Any]:
    """Rotation, shear and affine of the input layer, for the result layers to overlay it (the
    restoration itself works in the map's own frame).  For a crop of a rotated or sheared layer,
    also the translate that puts the crop's first voxel where it lies in the input."""
    from napari.utils.transforms import Affine

    rotate, shear = np.asarray(layer.rotate, dtype=np.float64), np.asarray(layer.shear, dtype=np.float64)
    affine = np.asarray(layer.affine.affine_matrix, dtype=np.float64)
    if np.allclose(rotate, np.eye(len(rotate))) and np.allclose(shear, 0) and np.allclose(affine, np.eye(len(affine))):
        return {}
    out: dict[str, Any] = {"rotate": rotate, "shear": shear, "affine": affine}
    if box is not None:
        frame = Affine(scale=layer.scale, translate=layer.translate, rotate=rotate, shear=shear)
        out["translate"] = tuple(float(v) for v in frame(np.asarray(box.start, dtype=np.float64)))
    return out


def _image_layers(viewer: Any) -> list[Any]:
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


#: a half-map's number in its name: EMDB's `emd_1234_half_map_1`, RELION's `run_half1_class001_unfil`
_HALF_NAME = re.compile(r"half[ _-]?(?:map[ _-]?)?([12])(?!\d)", re.IGNORECASE)


def _half_index(layer: Any) -> int | None:
    """1 or 2 for a half-map: marked in the metadata (the sample's), else named as EMDB and RELION
    name them; None otherwise."""
    meta = (getattr(layer, "metadata", {}) or {}).get(META_KEY) or {}
    half = meta.get("half")
    if half in (1, 2):
        return int(half)
    match = _HALF_NAME.search(str(getattr(layer, "name", "")))
    return int(match.group(1)) if match else None


def _half_stem(layer: Any) -> str:
    """The name without its half-map number: the two halves of one reconstruction share it."""
    return _HALF_NAME.sub("half", str(getattr(layer, "name", "")))


def _looks_like_mask(layer: Any) -> bool:
    return "mask" in str(getattr(layer, "name", "")).lower()


def _is_result(layer: Any) -> bool:
    meta = (getattr(layer, "metadata", {}) or {}).get(META_KEY) or {}
    return "report" in meta


class _ReportPlot(QWidget):
    """FSC (half-maps) or radial power spectrum curves before and after, from a report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.2, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(240)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.curves: list[str] = []

    def show_report(self, report: dict[str, Any]) -> None:
        from napari_cryofm._plot import plot_report

        self.curves = plot_report(self.figure, report)
        self.canvas.draw_idle()


class RestoreWidget(QWidget):
    """Dock widget: input layer(s), task and settings, Run/Preview/Cancel, results, command."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker: Any = None
        self.cancel_event: threading.Event | None = None
        self.last_outcome: Outcome | None = None
        self._result_placement: dict[str, Any] = {}  # the input layer's rotate/shear/affine, for results
        self.last_layers: list[Any] = []
        self._known_layers: set[int] = set()

        self._build()
        self._connect_layers()
        self._refresh_layers(select_new=True)
        self._update_visibility()
        self._update_command()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)

        inputs = QGroupBox("Input")
        form = QFormLayout(inputs)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.layer1 = QComboBox()
        self.layer2 = QComboBox()
        self.layer1_label = QLabel("Map")
        self.layer2_label = QLabel("Half 2")
        form.addRow("Input", self.mode)
        form.addRow(self.layer1_label, self.layer1)
        form.addRow(self.layer2_label, self.layer2)
        self.independent = QCheckBox("restore the halves independently (FSC after)")
        self.independent.setToolTip(
            "Restore each half-map on its own as well, and plot the FSC between the restored halves"
        )
        form.addRow(self.independent)
        self.anisotropic = QCheckBox("always model directional noise (preferred orientations)")
        self.anisotropic.setToolTip(
            "Denoising of half-maps measures their noise per direction as well as per resolution shell, "
            "and uses it where it differs between directions; check to use it always"
        )
        form.addRow(self.anisotropic)
        outer.addWidget(inputs)

        task_box = QGroupBox("Task")
        tform = QFormLayout(task_box)
        self.task = QComboBox()
        self.task.addItems(TASKS)
        tform.addRow("Task", self.task)
        self.tilt_min = QDoubleSpinBox()
        self.tilt_max = QDoubleSpinBox()
        for spin, value in ((self.tilt_min, -60.0), (self.tilt_max, 60.0)):
            spin.setRange(-89.9, 89.9)  # the API takes tilts strictly inside (-90, 90)
            spin.setDecimals(1)
            spin.setSingleStep(5.0)
            spin.setSuffix(" °")
            spin.setValue(value)
        self.tilt_axis = QComboBox()
        self.tilt_axis.addItems(("y", "x"))
        self.tilt_row = QWidget()
        row = QHBoxLayout(self.tilt_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.tilt_min)
        row.addWidget(QLabel("to"))
        row.addWidget(self.tilt_max)
        row.addWidget(QLabel("axis"))
        row.addWidget(self.tilt_axis)
        self.tilt_label = QLabel("Tilt range")
        tform.addRow(self.tilt_label, self.tilt_row)
        self.factor = QDoubleSpinBox()
        self.factor.setRange(1.1, 8.0)
        self.factor.setSingleStep(0.5)
        self.factor.setValue(2.0)
        self.factor_label = QLabel("Factor")
        tform.addRow(self.factor_label, self.factor)
        outer.addWidget(task_box)

        settings = QGroupBox("Settings")
        sform = QFormLayout(settings)
        self.steps = QSpinBox()
        self.steps.setRange(0, 10000)
        self.steps.setSpecialValueText("default")
        self.steps.setValue(0)
        self.sampler = QComboBox()
        self.sampler.addItems(SAMPLERS)
        self.samples = QSpinBox()
        self.samples.setRange(1, 64)
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.model = QLineEdit()
        self.model.setPlaceholderText("shipped model")
        self.model_browse = QPushButton("…")
        self.model_browse.setMaximumWidth(30)
        model_row = QWidget()
        mrow = QHBoxLayout(model_row)
        mrow.setContentsMargins(0, 0, 0, 0)
        mrow.addWidget(self.model)
        mrow.addWidget(self.model_browse)
        self.mask = QComboBox()
        self.mask.setToolTip("Molecular mask on the map's grid (1 = molecule); none: cryofm's automatic mask")
        self.mask.addItem(NO_MASK, None)
        sform.addRow("Mask", self.mask)
        sform.addRow("Steps", self.steps)
        sform.addRow("Sampler", self.sampler)
        sform.addRow("Samples", self.samples)
        sform.addRow("Device", self.device)
        sform.addRow("Seed", self.seed)
        sform.addRow("Model", model_row)
        outer.addWidget(settings)

        preview = QGroupBox("Preview region")
        pform = QFormLayout(preview)
        self.region = QComboBox()
        self.region.addItems(REGIONS)
        self.thickness = QSpinBox()
        self.thickness.setRange(MIN_CROP, 1024)
        self.thickness.setValue(32)
        self.thickness.setSuffix(" slices")
        pform.addRow("Region", self.region)
        pform.addRow("Thickness", self.thickness)
        outer.addWidget(preview)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Restore the whole map")
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Restore only the slab (or box) around the current z slice")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.cancel_button)
        outer.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        outer.addWidget(self.progress)
        outer.addWidget(self.status)

        self.plot = _ReportPlot()
        outer.addWidget(self.plot)

        cmd_row = QHBoxLayout()
        self.command = QLineEdit()
        self.command.setReadOnly(True)
        self.copy_button = QPushButton("Copy command")
        cmd_row.addWidget(self.command)
        cmd_row.addWidget(self.copy_button)
        outer.addLayout(cmd_row)
        outer.addStretch(1)

        self.mode.currentIndexChanged.connect(self._on_settings_changed)
        self.task.currentIndexChanged.connect(self._on_settings_changed)
        for combo in (self.layer1, self.layer2, self.mask, self.sampler, self.device, self.tilt_axis):
            combo.currentIndexChanged.connect(self._update_command)
        for spin in (self.steps, self.samples, self.seed):
            spin.valueChanged.connect(self._update_command)
        for dspin in (self.tilt_min, self.tilt_max, self.factor):
            dspin.valueChanged.connect(self._update_command)
        self.model.textChanged.connect(self._update_command)
        self.independent.toggled.connect(self._update_command)
        self.anisotropic.toggled.connect(self._update_command)
        self.model_browse.clicked.connect(self._browse_model)
        self.run_button.clicked.connect(self.run)
        self.preview_button.clicked.connect(self.preview)
        self.cancel_button.clicked.connect(self.cancel)
        self.copy_button.clicked.connect(self.copy_command)

    def _on_settings_changed(self) -> None:
        self._update_visibility()
        self._update_command()

    def _update_visibility(self) -> None:
        halves = self.mode.currentText() == "half-maps"
        self.layer1_label.setText("Half 1" if halves else "Map")
        self.layer2.setVisible(halves)
        self.layer2_label.setVisible(halves)
        self.independent.setVisible(halves and self.task.currentText() != "upsample")
        self.anisotropic.setVisible(halves and self.task.currentText() == "denoise")
        task = self.task.currentText()
        for w in (self.tilt_row, self.tilt_label):
            w.setVisible(task == "wedge")
        for w in (self.factor, self.factor_label):
            w.setVisible(task == "upsample")

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "cryofm prior checkpoint")
        if path:
            self.model.setText(path)

    # ------------------------------------------------------------------ layers
    def _connect_layers(self) -> None:
        events = self.viewer.layers.events
        events.inserted.connect(self._on_layers_changed)
        events.removed.connect(self._on_layers_changed)
        events.reordered.connect(self._on_layers_changed)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._on_layer_renamed)

    def _on_layers_changed(self, event: Any = None) -> None:
        if getattr(event, "type", None) == "inserted":
            event.value.events.name.connect(self._on_layer_renamed)
        self._refresh_layers(select_new=True)

    def _on_layer_renamed(self, event: Any = None) -> None:
        self._refresh_layers(select_new=False)

    def _refresh_layers(self, select_new: bool) -> None:
        """Fill the layer choices; select a new half-map pair or a new (non-result) map."""
        layers = _image_layers(self.viewer)
        names = [layer.name for layer in layers]
        new = [layer for layer in layers if id(layer) not in self._known_layers]
        self._known_layers = {id(layer) for layer in layers}
        ids = [id(layer) for layer in layers]
        for combo, first in ((self.layer1, []), (self.layer2, []), (self.mask, [NO_MASK])):
            old = combo.currentData()  # follow the chosen layer through renames and moves
            combo.blockSignals(True)
            combo.clear()
            for name, key in [(text, None) for text in first] + list(zip(names, ids)):
                combo.addItem(name, key)
            if old in ids:
                combo.setCurrentIndex(ids.index(old) + len(first))
            combo.blockSignals(False)
        if select_new and new:
            newest = new[-1]
            half = _half_index(newest)
            partners = [layer for layer in layers if half and _half_index(layer) == 3 - half]
            same = [layer for layer in partners if _half_stem(layer) == _half_stem(newest)]
            partners = same or partners  # the other half of the same reconstruction first
            if _looks_like_mask(newest) and not _is_result(newest):  # offered as the mask, not the map
                self.mask.setCurrentIndex(ids.index(id(newest)) + 1)
            elif partners:  # a half-map whose other half is open: choose the pair
                pair = {half: newest.name, 3 - half: partners[-1].name}
                self.mode.setCurrentIndex(MODES.index("half-maps"))
                self.layer1.setCurrentIndex(names.index(pair[1]))
                self.layer2.setCurrentIndex(names.index(pair[2]))
            elif not _is_result(newest):
                self.mode.setCurrentIndex(MODES.index("map"))
                self.layer1.setCurrentIndex(names.index(newest.name))
        if self.layer2.count() > 1 and self.layer2.currentText() == self.layer1.currentText():
            self.layer2.setCurrentIndex(1 if self.layer1.currentIndex() == 0 else 0)
        self._update_command()

    def select(self, layer1: str, layer2: str | None = None) -> None:
        """Choose the input by layer name(s): one map, or a half-map pair."""
        self.mode.setCurrentIndex(MODES.index("half-maps" if layer2 else "map"))
        self.layer1.setCurrentText(layer1)
        if layer2:
            self.layer2.setCurrentText(layer2)

    def _layer(self, combo: QComboBox) -> Any:
        name = combo.currentText()
        if not name or name not in self.viewer.layers:
            from cryofm.errors import CryofmInputError

            raise CryofmInputError("no image layer chosen; open a map (File > Open) or a sample first")
        return self.viewer.layers[name]

    # ------------------------------------------------------------------ request
    def _settings(self) -> dict[str, Any]:
        return {
            "task": self.task.currentText(),
            "steps": self.steps.value() or None,
            "sampler": self.sampler.currentText(),
            "samples": self.samples.value(),
            "device": self.device.currentText(),
            "seed": self.seed.value(),
            "model": os.path.expanduser(self.model.text().strip()) or None,
            "tilt_range": (self.tilt_min.value(), self.tilt_max.value()),
            "tilt_axis": self.tilt_axis.currentText(),
            "factor": self.factor.value(),
            "independent_halves": self.independent.isChecked() and self.mode.currentText() == "half-maps",
            "anisotropic": self.anisotropic.isChecked() and self.mode.currentText() == "half-maps",
        }

    def _preview_box(self, layer: Any) -> Box:
        shape = tuple(int(s) for s in layer.data.shape)
        if len(shape) != 3:
            layer_volume(layer)  # raises the 3D error
        z = int(round(float(layer.world_to_data(self.viewer.dims.point)[0])))
        if self.region.currentText() == "slab at current z":
            return slab_box(shape, z, self.thickness.value())
        corners = self._rectangle_corners(layer)
        return box_from_corners(shape, z, self.thickness.value(), corners)

    def _rectangle_corners(self, image: Any) -> np.ndarray:
        """(y, x) voxel coordinates in `image` of the selected (else last) drawn shape."""
        from cryofm.errors import CryofmInputError
        from napari.layers import Shapes

        shapes_layers = [layer for layer in self.viewer.layers if isinstance(layer, Shapes) and len(layer.data)]
        if not shapes_layers:
            raise CryofmInputError(
                "no rectangle to preview: add a Shapes layer, draw a rectangle over the map, "
                "or choose 'slab at current z'"
            )
        active = self.viewer.layers.selection.active
        shapes = active if active in shapes_layers else shapes_layers[-1]
        index = max(shapes.selected_data) if shapes.selected_data else len(shapes.data) - 1
        vertices = np.asarray(shapes.data[index], dtype=np.float64)
        point = np.asarray(self.viewer.dims.point, dtype=np.float64)
        out = []
        for vertex in vertices:
            world = point.copy()
            w = np.asarray(shapes.data_to_world(vertex), dtype=np.float64)
            world[-len(w):] = w
            out.append(np.asarray(image.world_to_data(world), dtype=np.float64)[-2:])
        return np.asarray(out)

    def build_request(self, preview: bool = False) -> RestoreRequest:
        """The request for the current choices (raises `CryofmInputError` for bad input)."""
        from cryofm.errors import CryofmInputError

        settings = self._settings()
        first = self._layer(self.layer1)
        box = self._preview_box(first) if preview else None
        half2 = None
        if self.mode.currentText() == "half-maps":
            second = self._layer(self.layer2)
            if second is first:
                raise CryofmInputError(f"half 1 and half 2 are the same layer {first.name!r}; choose two half-maps")
            shape1, shape2 = tuple(first.data.shape), tuple(second.data.shape)
            if shape1 != shape2:
                raise CryofmInputError(
                    f"half-maps {first.name!r} {shape1} and {second.name!r} {shape2} differ in shape; "
                    "choose the two halves of one reconstruction"
                )
            if not np.allclose(first.scale, second.scale, rtol=1e-4):
                raise CryofmInputError(
                    f"half-maps {first.name!r} and {second.name!r} have different voxel sizes "
                    f"({tuple(first.scale)} vs {tuple(second.scale)} A, z y x); choose matching halves"
                )
            half2 = layer_volume(second, box)
        data = layer_volume(first, box)
        if half2 is not None:  # the API's own check, before the run starts
            from cryofm.restore._inputs import check_same_grid

            check_same_grid(data, half2, (f"half-map {first.name!r}", f"half-map {second.name!r}"))
        mask, mask_layer = self._mask_volume(first, box)
        others = ([second] if half2 is not None else []) + ([mask_layer] if mask_layer is not None else [])
        inputs = _input_files(first, *others)
        self._result_placement = _placement(first, box)
        return RestoreRequest(data=data, half2=half2, name=first.name, mask=mask, inputs=inputs, **settings)

    def _mask_volume(self, first: Any, box: Box | None) -> tuple[Any, Any]:
        """(the chosen mask as a `Volume` cut like the map, its layer), or (None, None)."""
        from cryofm.errors import CryofmInputError

        if self.mask.currentData() is None:
            return None, None
        layer = self._layer(self.mask)
        if layer is first:
            raise CryofmInputError(f"the mask is the map itself ({first.name!r}); choose a mask layer or 'none'")
        if tuple(layer.data.shape) != tuple(first.data.shape):
            raise CryofmInputError(
                f"mask {layer.name!r} {tuple(layer.data.shape)} is not on the grid of {first.name!r} "
                f"{tuple(first.data.shape)}; choose a mask made for this map, or 'none'"
            )
        return layer_volume(layer, box), layer

    # ------------------------------------------------------------------ command line
    def _update_command(self, *_: Any) -> None:
        settings = self._settings()
        path1 = path2 = None
        name = self.layer1.currentText() or "map"
        halves = self.mode.currentText() == "half-maps"
        if name in self.viewer.layers:
            path1 = _map_file(layer_source_path(self.viewer.layers[name]))
        if halves:
            name2 = self.layer2.currentText()
            path2 = _map_file(layer_source_path(self.viewer.layers[name2])) if name2 in self.viewer.layers else None
            path2 = path2 or f"{name2 or 'half2'}.mrc"
        from cryofm.io.volume import Volume

        placeholder = Volume(np.zeros((1, 1, 1), np.float32), voxel_size=1.0)
        mask_name = self.mask.currentText() if self.mask.currentData() is not None else None
        mask_path = None
        if mask_name:
            layer = self.viewer.layers[mask_name] if mask_name in self.viewer.layers else None
            mask_path = (_map_file(layer_source_path(layer)) if layer is not None else None) or f"{mask_name}.mrc"
        request = RestoreRequest(data=placeholder, name=name, **settings)
        self.command.setText(command_line(request, path1, path2, mask_path))
        self.command.setCursorPosition(0)

    def copy_command(self) -> str:
        """Put the equivalent command line on the clipboard (and return it)."""
        self._update_command()
        text = self.command.text()
        QApplication.clipboard().setText(text)
        self.status.setText("command copied to the clipboard")
        return text

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        """Restore the whole chosen map."""
        self._start(preview=False)

    def preview(self) -> None:
        """Restore only the slab (or drawn box) around the current z slice."""
        self._start(preview=True)

    def _start(self, preview: bool) -> None:
        if self.worker is not None:
            show_info("cryofm: a restoration is already running; cancel it first")
            return
        try:
            request = self.build_request(preview=preview)
        except Exception as exc:  # bad choices (CryofmInputError) or an odd layer: say so, no traceback
            show_error(f"cryofm: {exc}")
            self.status.setText(f"not started: {exc}")  # not the last run's "done"
            return
        from napari.qt.threading import thread_worker

        self.cancel_event = threading.Event()
        self._suffix = "preview" if preview else ""
        worker = thread_worker(restore_steps, start_thread=False)(request, self.cancel_event)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        what = "preview of " if preview else ""
        voxel = "x".join(f"{float(v):g}" for v in np.unique(np.round(request.data.voxel_size, 4)))
        self.status.setText(f"{request.task}: {what}{request.name} {request.data.shape} at {voxel} A ...")
        self.progress.setRange(0, 0)  # busy until the first Progress says the total
        worker.start()

    def cancel(self) -> None:
        """Ask the running restoration to stop at its next step."""
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.status.setText("cancelling after the current step ...")
            self.cancel_button.setEnabled(False)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        """Closing the dock cancels a running restoration."""
        self.cancel()
        super().closeEvent(event)

    def event(self, event: Any) -> bool:
        """Removing the dock (napari's close button takes the widget out of its dock with
        `setParent(None)`, no close event) also cancels a running restoration."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.cancel()
        return super().event(event)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.preview_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, message: Any) -> None:
        total = max(int(getattr(message, "total", 0)), 1)
        done = min(int(getattr(message, "done", 0)), total)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        text = getattr(message, "message", "") or ""
        stage = getattr(message, "stage", "")
        if not (self.cancel_event and self.cancel_event.is_set()):
            self.status.setText(f"{stage} {done}/{total} {text}".strip())

    def _on_returned(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        if outcome.cancelled:
            self.progress.setValue(0)  # not a half-full bar for a run that made nothing
            self.status.setText("cancelled")
            show_info("cryofm: restoration cancelled")
            return
        if outcome.error is not None:
            self.status.setText(f"failed: {outcome.error}")
            kind = "" if isinstance(outcome.error, ValueError) else f"{type(outcome.error).__name__}: "
            show_error(f"cryofm: {kind}{outcome.error}")
            return
        try:
            self._add_results(outcome)
        except Exception as exc:  # a report or result we cannot show: say so, keep the viewer
            show_error(f"cryofm: could not show the result: {exc}")

    def _add_results(self, outcome: Outcome) -> None:
        from napari.layers import Layer

        added = []
        for data, kwargs, layer_type in result_layers(outcome, suffix=self._suffix):
            kwargs.update(self._result_placement)
            added.append(self.viewer.add_layer(Layer.create(data, kwargs, layer_type)))
        self.last_layers = added
        if added:
            self.viewer.layers.selection.active = added[0]
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        report = outcome.restoration.report or {}
        seconds = report.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        self.status.setText(f"done{took}: added {', '.join(layer.name for layer in added)}")
        try:
            self.plot.show_report(report)
        except Exception as exc:  # the layers are there; the plot is a bonus
            self.status.setText(self.status.text() + f" (no plot: {exc})")

    def _on_errored(self, exc: BaseException) -> None:
        # restore_steps returns its errors; this is for the unexpected (napari's worker has
        # already relayed the exception to the notifications)
        self.status.setText(f"failed: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.cancel_event = None
        self._set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
