"""Shared fixtures: small maps on disk with a known, anisotropic geometry."""

from __future__ import annotations

import numpy as np
import pytest

from cryofm.io import Volume, write_map

from napari_cryofm_test_geometry import ORIGIN_XYZ, VOXEL_SIZE_XYZ


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
