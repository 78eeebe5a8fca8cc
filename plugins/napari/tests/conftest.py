"""Shared fixtures: small maps on disk with a known, anisotropic geometry.

Without a display (no X server, no Wayland, and no Xvfb for pytest-xvfb to start) Qt would abort
the whole run; there the widget tests run on Qt's offscreen platform and the `gui` tests, which
need OpenGL, are skipped with the reason.  `.ci/run` sets CRYOFM_REQUIRE_DISPLAY=1 so that CI
fails rather than skips them.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from cryofm.io import Volume, write_map

from napari_cryofm_test_geometry import ORIGIN_XYZ, VOXEL_SIZE_XYZ


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_collection_modifyitems(config, items):
    """After pytest-xvfb had its chance to start Xvfb (pytest_configure) and before any QApplication."""
    if _has_display() or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("CRYOFM_REQUIRE_DISPLAY") == "1":
        raise pytest.UsageError("no display for napari's GUI tests and CRYOFM_REQUIRE_DISPLAY=1: install Xvfb "
                                "(Debian: apt install xvfb) so that pytest-xvfb can start one")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    skip = pytest.mark.skip(reason="no display: install Xvfb (Debian: apt install xvfb; pytest-xvfb starts it) "
                                   "or run .ci/run to run napari's window tests")
    for item in items:
        if item.get_closest_marker("gui") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _discover_plugins():
    """napari's application discovers plugins at start-up; a bare ViewerModel needs this."""
    import npe2

    npe2.PluginManager.instance().discover()


@pytest.fixture
def small_volume() -> Volume:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((12, 10, 8)).astype(np.float32)  # (z, y, x), all sizes differ
    return Volume(data, voxel_size=VOXEL_SIZE_XYZ, origin=ORIGIN_XYZ, metadata={"labels": ["test map"]})


@pytest.fixture
def small_mrc(tmp_path, small_volume):
    return write_map(tmp_path / "small.mrc", small_volume)


@pytest.fixture(scope="session")
def tiny_prior_path(tmp_path_factory):
    """A tiny, randomly initialised prior saved to disk: passed to the dock as the model path."""
    from cryofm.prior import Prior

    path = tmp_path_factory.mktemp("prior") / "tiny.safetensors"
    Prior.from_config("tiny", seed=0).save(path)
    return path


@pytest.fixture
def map_32() -> Volume:
    """A 32^3 map of smooth random blobs at the prior's 1.5 A, with an origin off zero."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(1)
    data = gaussian_filter(rng.standard_normal((32, 32, 32)), 2.0).astype(np.float32)
    data += 0.3 * rng.standard_normal(data.shape).astype(np.float32)
    return Volume(data, voxel_size=1.5, origin=(15.0, -30.0, 45.0))
