"""The `Volume` dataclass: a density map and where it sits in space."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError

__all__ = ["Volume"]


def _plain(values: Any) -> str:
    """Numbers as plain text for messages: ``(1.05, 1.05, 0)``, never ``np.float64(...)``."""
    items = [f"{float(v):.6g}" for v in np.ravel(np.asarray(values, dtype=np.float64))]
    return "(" + ", ".join(items) + ")"


def _xyz(value: Any, name: str) -> np.ndarray:
    """A number or three numbers ``(x, y, z)`` as a float64 array of 3, or CryofmInputError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
        return np.broadcast_to(arr, (3,)).copy()
    except ValueError as exc:
        raise CryofmInputError(
            f"{name} must be a number or three numbers (x, y, z) in Angstrom, got {value!r}; "
            f"pass e.g. {name}=1.05 or {name}=(1.05, 1.05, 1.05)"
        ) from exc


@dataclass
class Volume:
    """A 3D density map on a regular grid.

    Attributes:
        data: float32 array of shape (nz, ny, nx), indexed [z, y, x].
        voxel_size: voxel edge lengths in Angstrom, as a float array (x, y, z).
        origin: physical position of voxel [0, 0, 0] in Angstrom, as a float array (x, y, z).
        metadata: free-form information (source path, header fields, provenance labels).
    """

    data: np.ndarray
    voxel_size: np.ndarray
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        if self.data.ndim != 3:
            raise CryofmInputError(
                f"a Volume needs a 3D array, got shape {self.data.shape}; pass one map at a time"
            )
        if self.data.dtype != np.float32:
            self.data = self.data.astype(np.float32)
        vs = _xyz(self.voxel_size, "voxel_size")
        if not np.all(np.isfinite(vs)) or np.any(vs <= 0):
            raise CryofmInputError(
                f"voxel size must be positive and finite, got {_plain(vs)} A; "
                "set it in the map header (e.g. with mrcfile) or pass voxel_size="
            )
        self.voxel_size = vs
        self.origin = _xyz(self.origin, "origin")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (nz, ny, nx)."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def isotropic_voxel_size(self) -> float:
        """The voxel size in Angstrom when it is the same on all axes; raises otherwise."""
        if not np.allclose(self.voxel_size, self.voxel_size[0], rtol=1e-4):
            raise CryofmInputError(
                f"this operation needs cubic voxels, got voxel size {_plain(self.voxel_size)} A; "
                "resample the map to an isotropic grid first"
            )
        return float(self.voxel_size[0])

    def with_data(self, data: np.ndarray, **changes: Any) -> "Volume":
        """A copy with new data (same voxel size and origin unless changed)."""
        changes.setdefault("metadata", dict(self.metadata))
        return replace(self, data=np.asarray(data, dtype=np.float32), **changes)
