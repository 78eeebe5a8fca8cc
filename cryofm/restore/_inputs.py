"""Validation and conversion of the restoration API's inputs (one numbered checklist).

1. `data` and `half2` are a `Volume`, a NumPy array or a torch tensor (CPU or CUDA); arrays need
   `voxel_size=` (a Volume's own voxel size wins).
2. Maps are 3D, at least `MIN_BOX` voxels on every side, finite (no NaN or inf).
3. Half maps have the same shape and voxel size.
4. The voxel size is positive and finite (checked by `Volume`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume

__all__ = ["MIN_BOX", "as_volume", "check_pair", "resolve_device"]

MIN_BOX = 16


def as_volume(data: Any, voxel_size: Any = None, name: str = "data") -> Volume:
    """A validated float32 `Volume` from a Volume, NumPy array or torch tensor."""
    if isinstance(data, Volume):
        vol = Volume(np.array(data.data, dtype=np.float32), data.voxel_size, data.origin, dict(data.metadata))
    else:
        try:
            import torch

            if isinstance(data, torch.Tensor):
                data = data.detach().to("cpu").numpy()
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        if not isinstance(data, np.ndarray):
            raise CryofmInputError(f"{name} must be a Volume, a NumPy array or a torch tensor, got {type(data).__name__}")
        if voxel_size is None:
            raise CryofmInputError(f"{name} is a bare array: pass voxel_size= (Angstrom), or pass a Volume")
        vol = Volume(np.asarray(data, dtype=np.float32), voxel_size)
    if any(s < MIN_BOX for s in vol.shape):
        raise CryofmInputError(f"{name} has box {vol.shape}; cryofm needs at least {MIN_BOX} voxels on every side: pad the map")
    if not np.all(np.isfinite(vol.data)):
        bad = int(np.count_nonzero(~np.isfinite(vol.data)))
        raise CryofmInputError(f"{name} has {bad} NaN or infinite voxels; fix or mask them before restoring")
    return vol


def check_pair(half1: Volume, half2: Volume) -> None:
    """Half maps must share shape and voxel size."""
    if half1.shape != half2.shape:
        raise CryofmInputError(f"half maps have different boxes {half1.shape} and {half2.shape}; pass the two halves of one reconstruction")
    if not np.allclose(half1.voxel_size, half2.voxel_size, rtol=1e-4):
        raise CryofmInputError(
            f"half maps have different voxel sizes {tuple(half1.voxel_size)} and {tuple(half2.voxel_size)} A; "
            "pass the two halves of one reconstruction"
        )


def resolve_device(device: Any) -> str:
    """"auto" -> "cuda" when available, else "cpu"; "cuda" without a GPU is an input error."""
    import torch

    name = str(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CryofmInputError(f"device {name!r} asked for, but no CUDA GPU is available; use device='cpu' or 'auto'")
    if not (name == "cpu" or name.startswith("cuda")):
        raise CryofmInputError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return name
