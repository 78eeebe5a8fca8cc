"""In a real napari window: the sample in three clicks, then a 3D screenshot of the result.

The test restores with a tiny random model and one step and keeps its screenshot in a temporary
folder.  The README's picture is made by the same steps with the shipped model and its default
settings: `CRYOFM_README_SCREENSHOT=1 xvfb-run -a .venv/bin/python -m pytest -q
plugins/napari/tests/test_napari_gui.py` writes docs/images/napari_3d.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_cryofm._widget import RestoreWidget

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "images" / "napari_3d.png"


@pytest.mark.gui
@pytest.mark.slow
def test_sample_restore_in_three_clicks_and_3d_screenshot(make_napari_viewer, qtbot, tiny_prior_path, tmp_path):
    readme = os.environ.get("CRYOFM_README_SCREENSHOT") == "1"
    viewer = make_napari_viewer(show=True)
    # click 1: File > Open Sample > cryofm > EMD-3488 noisy half-maps
    viewer.open_sample("napari-cryofm", "emd_3488_halves")
    # the Restore dock opens by itself with the pair chosen
    qtbot.waitUntil(lambda: any(isinstance(w, RestoreWidget) for w in viewer.window.dock_widgets.values()))
    widget = next(w for w in viewer.window.dock_widgets.values() if isinstance(w, RestoreWidget))
    assert (widget.mode.currentText(), widget.layer1.currentText(), widget.layer2.currentText()) == (
        "half-maps",
        "EMD-3488 half1",
        "EMD-3488 half2",
    )
    if not readme:  # for a test: a tiny random model and one step instead of the shipped model
        widget.model.setText(str(tiny_prior_path))
        widget.steps.setValue(1)
    # click 2: Run
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    restored = viewer.layers["EMD-3488 half1 denoised"]
    half1 = viewer.layers["EMD-3488 half1"]
    assert restored.data.shape == half1.data.shape
    np.testing.assert_allclose(restored.scale, half1.scale)
    np.testing.assert_allclose(restored.translate, half1.translate)

    for layer in viewer.layers:
        layer.visible = layer is restored
    # attenuated MIP: iso-surface ray casting takes minutes under Xvfb's software OpenGL
    data = np.asarray(restored.data)
    restored.rendering = "attenuated_mip"
    restored.contrast_limits = (float(np.percentile(data, 90)), float(np.percentile(data, 99.9)))
    viewer.window.resize(1300, 850)
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.camera.angles = (15.0, -35.0, 70.0)
    image = viewer.screenshot(canvas_only=True, flash=False)
    from PIL import Image

    Image.fromarray(np.asarray(image)).save(SCREENSHOT if readme else tmp_path / "napari_3d.png")
    rgb = np.asarray(image)[..., :3].astype(int)
    lit = (rgb.max(axis=-1) > 40).mean()
    assert 0.02 < lit < 0.9, f"{lit:.1%} of the 3D view is lit: expected a map on a dark background"
