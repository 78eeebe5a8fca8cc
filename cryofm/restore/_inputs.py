"""Validation and conversion of the restoration API's inputs (one numbered checklist).

1. `data` and `half2` are a `Volume`, a NumPy array or a torch tensor (CPU or CUDA); arrays need
   `voxel_size=` (a Volume's own voxel size wins).
2. Maps are 3D, at least `MIN_BOX` voxels on every side, finite (no NaN or inf).
3. Half maps, and a mask, lie on the map's grid: the same shape and voxel size, and, where both
   carry their own geometry (Volumes, e.g. read from files), the same origin.
4. Half maps differ (the same map twice has no noise to measure); a mask's values lie in [0, 1].
5. The voxel size is positive and finite (checked by `Volume`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume, _plain

__all__ = ["MIN_BOX", "as_count", "as_volume", "check_pair", "check_same_grid", "check_mask_values", "resolve_device"]

MIN_BOX = 16


def as_volume(data: Any, voxel_size: Any = None, name: str = "data") -> Volume:
    """A validated float32 `Volume` from a Volume, NumPy array or torch tensor."""
    if isinstance(data, Volume):
        vol = Volume(np.array(data.data, dtype=np.float32), data.voxel_size, data.origin, dict(data.metadata))
    else:
        try:
            import torch

            if isinstance(data, torch.Tensor):
                if data.is_complex():
                    raise CryofmInputError(f"{name} is a complex tensor; pass the real map")
                data = data.detach().to("cpu")
                data = (data.float() if data.is_floating_point() else data).numpy()  # bfloat16 has no NumPy type
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        if not isinstance(data, np.ndarray):
            raise CryofmInputError(f"{name} must be a Volume, a NumPy array or a torch tensor, got {type(data).__name__}")
        if np.iscomplexobj(data):
            raise CryofmInputError(f"{name} is a complex array; pass the real map")
        if voxel_size is None:
            raise CryofmInputError(f"{name} is a bare array: pass voxel_size= (Angstrom), or pass a Volume")
        vol = Volume(np.asarray(data, dtype=np.float32), voxel_size)
    if any(s < MIN_BOX for s in vol.shape):
        raise CryofmInputError(f"{name} has box {vol.shape}; cryofm needs at least {MIN_BOX} voxels on every side: pad the map")
    if not np.all(np.isfinite(vol.data)):
        bad = int(np.count_nonzero(~np.isfinite(vol.data)))
        raise CryofmInputError(f"{name} has {bad} NaN or infinite voxels; fix or mask them before restoring")
    return vol


def _name(vol: Volume, fallback: str) -> str:
    return str(vol.metadata.get("path", fallback))


def check_same_grid(a: Volume, b: Volume, what: tuple[str, str] = ("first map", "second map"), *,
                    origin: bool = True) -> None:
    """`a` and `b` share box, voxel size and (with `origin=True`) origin, to 1% of a voxel."""
    na, nb = _name(a, what[0]), _name(b, what[1])
    if a.shape != b.shape:
        raise CryofmInputError(f"{na} and {nb} have different boxes {a.shape} and {b.shape} (z y x); "
                               "put both on one grid (resample or crop one onto the other's)")
    if not np.allclose(a.voxel_size, b.voxel_size, rtol=1e-4):
        raise CryofmInputError(f"{na} and {nb} have different voxel sizes {_plain(a.voxel_size)} and {_plain(b.voxel_size)} A; "
                               "put both on one grid (resample one onto the other's)")
    if origin and not np.allclose(a.origin, b.origin, rtol=0.0, atol=0.01 * float(a.voxel_size.min())):
        raise CryofmInputError(f"{na} and {nb} have different origins {_plain(a.origin)} and {_plain(b.origin)} A, "
                               "so their voxels sit in different places; put both on one grid (or fix the header)")


def check_pair(half1: Volume, half2: Volume, *, origin: bool = True) -> None:
    """Half maps share box, voxel size and origin (`origin=False` where one of them is a bare
    array, which has none of its own), and are not the same map twice."""
    check_same_grid(half1, half2, ("half map 1", "half map 2"), origin=origin)
    d1, d2 = half1.data.astype(np.float64), half2.data.astype(np.float64)
    if float(np.std(d1 - d2)) <= 1e-6 * max(float(np.std(d1)), 1e-30):
        raise CryofmInputError(f"half maps {_name(half1, '1')} and {_name(half2, '2')} are identical, so there is no noise "
                               "to measure from them: pass the two independent half maps of one reconstruction, "
                               "or the map alone (its noise is then measured in the solvent)")


def check_mask_values(mask: Volume, name: str = "mask") -> None:
    """A mask's values lie in [0, 1] (to 1e-3): anything else is a density map passed by mistake."""
    lo, hi = float(np.min(mask.data)), float(np.max(mask.data))
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise CryofmInputError(f"{_name(mask, name)}: mask values span [{lo:.4g}, {hi:.4g}]; a mask must lie in [0, 1] "
                               "(1 = molecule; use a soft binary mask, not a density map)")


def as_count(value: Any, name: str, minimum: int) -> int:
    """A whole number >= `minimum` (steps, samples, seed), refusing 2.7 or "a" rather than truncating."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CryofmInputError(f"{name} must be a whole number, got {value!r}") from None
    if not number.is_integer() or number < minimum:
        raise CryofmInputError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(number)


def resolve_device(device: Any) -> str:
    """The device name to restore on: "auto" -> "cuda" when available, else "cpu"; an unusable
    device is an input error (`cryofm.prior.prior.torch_device`)."""
    from cryofm.prior.prior import torch_device

    return str(torch_device(device))
