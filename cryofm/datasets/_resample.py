"""Resampling of a map to a target voxel size: `cryofm.fourier.resample_volume` when present."""

from __future__ import annotations

import numpy as np

from cryofm.io.volume import Volume

__all__ = ["resample_to"]


def resample_to(volume: Volume, voxel_size: float) -> np.ndarray:
    """The map's data on a grid of `voxel_size` A (Fourier crop/pad), float32 [z, y, x]."""
    from cryofm.fourier import resample_volume

    out = resample_volume(volume, voxel_size)
    return np.asarray(getattr(out, "data", out), dtype=np.float32)
