"""Input validation shared by the public functions of `cryofm.fourier`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume

from . import _backend

__all__ = ["check_map", "check_shape", "check_voxel_size", "match_library", "unwrap"]


def check_shape(shape: Any, name: str = "shape") -> tuple[int, int, int]:
    """The last three entries of ``shape`` as positive ints ``(nz, ny, nx)``."""
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError as err:
        raise CryofmInputError(f"{name} must be a sequence of ints like (nz, ny, nx), got {shape!r}") from err
    if len(dims) < 3 or any(d < 1 for d in dims[-3:]):
        raise CryofmInputError(
            f"{name} must end with three positive box sizes (nz, ny, nx), got {shape!r}"
        )
    return dims[-3], dims[-2], dims[-1]


def check_voxel_size(voxel_size: Any, name: str = "voxel_size") -> float:
    """``voxel_size`` as a positive finite float (Angstrom)."""
    try:
        value = float(voxel_size)
    except (TypeError, ValueError) as err:
        raise CryofmInputError(
            f"{name} must be one number in Angstrom (cubic voxels), got {voxel_size!r}"
        ) from err
    if not math.isfinite(value) or value <= 0:
        raise CryofmInputError(f"{name} must be positive and finite, got {value} A; pass the map's voxel size")
    return value


def check_map(x: Any, name: str = "x") -> Any:
    """``x`` as a real float array with at least three dimensions [..., nz, ny, nx]."""
    if isinstance(x, Volume):
        x = x.data
    x = _backend.as_float_array(x, name)
    if x.ndim < 3:
        raise CryofmInputError(
            f"{name} must be a 3D map [..., nz, ny, nx], got shape {tuple(x.shape)}; pass the volume"
        )
    return x


def unwrap(x: Any, voxel_size: Any, name: str = "x") -> tuple[Any, float | None]:
    """Split a `Volume` into (data, voxel size); arrays pass through with ``voxel_size``.

    A `Volume` and an explicit ``voxel_size`` must agree (relative 1e-4).
    """
    if isinstance(x, Volume):
        vs = x.isotropic_voxel_size
        if voxel_size is not None and not np.isclose(float(voxel_size), vs, rtol=1e-4):
            raise CryofmInputError(
                f"{name} is a Volume with voxel size {vs} A but voxel_size={voxel_size} was given; "
                "drop voxel_size= or resample the map"
            )
        return x.data, vs
    return x, (None if voxel_size is None else check_voxel_size(voxel_size))


def match_library(y: Any, like: Any, name: str = "mask") -> Any:
    """``y`` (array or `Volume`) in the library, device and precision of ``like``.

    NumPy arrays are moved to ``like``'s library; arrays of another non-NumPy library raise.
    """
    if isinstance(y, Volume):
        y = y.data
    y = _backend.as_float_array(y, name)
    place = _backend.placement(like)
    if _backend.backend_name(y) == place.backend:
        if _backend.placement(y) == place:
            return y
        if place.backend == "torch":
            return y.to(device=place.device, dtype=like.dtype)
        xp = _backend.namespace(y)
        return xp.astype(y, like.dtype)
    if _backend.backend_name(y) != "numpy":
        raise CryofmInputError(
            f"{name} is a {_backend.backend_name(y)} array but the map is {place.backend}; "
            "pass both in one library"
        )
    return _backend.from_numpy(y, place, "real")
