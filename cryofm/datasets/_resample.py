"""Resampling of a map to the store's voxel size (`cryofm.fourier.resample_volume`, exact)."""

from __future__ import annotations

import numpy as np

from cryofm.io.volume import Volume

__all__ = ["resample_to"]


def resample_to(volume: Volume, voxel_size: float) -> np.ndarray:
    """The map's data on a grid of exactly `voxel_size` A on every axis, float32 [z, y, x]: a patch
    store states one voxel size, so the box / round(box / voxel) of plain Fourier cropping (1.478 A
    for 28 voxels of 1.742 A) would put patches of another scale among the rest."""
    from cryofm.fourier import resample_volume

    out = resample_volume(volume, voxel_size, exact=True)
    return np.asarray(getattr(out, "data", out), dtype=np.float32)
