"""Zarr v3 patch stores: float16 patches [N, box, box, box] and per-patch metadata.

Layout of a store folder (one zarr v3 group):

- ``patches``: float16 [N, box, box, box], one chunk per patch, raw (unnormalised) density;
- ``entry``: int32 [N], index into the group attribute ``entries`` (entry ids);
- ``split``: int8 [N], 0 = train, 1 = validation (a flagged subset; entries never on both sides);
- ``b_extra``: float32 [N], extra B-factor in A^2 (NaN for real maps);
- ``quaternion``: float32 [N, 4], rotation (w, x, y, z) applied before simulation (identity for maps);
- ``centre``: float32 [N, 3], patch centre (z, y, x) in voxels of the (rotated) source map.

Group attributes: ``entries``, ``voxel_size``, ``box``, ``source`` (what made it), ``settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io._atomic import StagedFolder

__all__ = ["PatchRecord", "PatchStoreWriter", "PatchStore", "SPLIT_TRAIN", "SPLIT_VALIDATION"]

SPLIT_TRAIN, SPLIT_VALIDATION = 0, 1


@dataclass
class PatchRecord:
    """Patches of one entry with their metadata (arrays with a leading N)."""

    entry: str
    patches: np.ndarray  # [N, box, box, box]
    b_extra: np.ndarray  # [N]
    quaternion: np.ndarray  # [N, 4]
    centre: np.ndarray  # [N, 3]
    split: int = SPLIT_TRAIN


class PatchStoreWriter:
    """Append `PatchRecord`s to a new store; `close()` writes the attributes."""

    def __init__(self, path: str | os.PathLike, *, box: int, voxel_size: float, overwrite: bool = False,
                 source: str = "", settings: dict[str, Any] | None = None, flush_every: int = 64) -> None:
        import zarr

        self.path = Path(path)
        # built under a hidden name beside the target; `close` moves it into place, so an earlier
        # store is replaced only by a finished one and a failed build leaves nothing at `path`
        self._stage = StagedFolder(self.path, overwrite)
        self.box = box
        self.group = zarr.open_group(str(self._stage.open()), mode="w", zarr_format=3)
        self.group.attrs.update({"voxel_size": float(voxel_size), "box": int(box), "source": source,
                                 "settings": settings or {}, "entries": []})
        self.arrays = {
            "patches": self.group.create_array("patches", shape=(0, box, box, box), dtype="float16",
                                               chunks=(1, box, box, box)),
            "entry": self.group.create_array("entry", shape=(0,), dtype="int32", chunks=(4096,)),
            "split": self.group.create_array("split", shape=(0,), dtype="int8", chunks=(4096,)),
            "b_extra": self.group.create_array("b_extra", shape=(0,), dtype="float32", chunks=(4096,)),
            "quaternion": self.group.create_array("quaternion", shape=(0, 4), dtype="float32", chunks=(4096, 4)),
            "centre": self.group.create_array("centre", shape=(0, 3), dtype="float32", chunks=(4096, 3)),
        }
        self.entries: list[str] = []
        self._buffer: list[PatchRecord] = []
        self._buffered = 0
        self.flush_every = flush_every
        self.count = 0

    def add(self, record: PatchRecord) -> None:
        if record.patches.shape[1:] != (self.box,) * 3:
            raise CryofmInputError(f"patch shape {record.patches.shape[1:]} != store box {self.box}")
        if len(record.patches) == 0:
            return
        if record.entry not in self.entries:
            self.entries.append(record.entry)
        self._buffer.append(record)
        self._buffered += len(record.patches)
        if self._buffered >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        recs = self._buffer
        n = sum(len(r.patches) for r in recs)
        cols = {
            "patches": np.concatenate([r.patches for r in recs]).astype(np.float16),
            "entry": np.concatenate([np.full(len(r.patches), self.entries.index(r.entry), np.int32) for r in recs]),
            "split": np.concatenate([np.full(len(r.patches), r.split, np.int8) for r in recs]),
            "b_extra": np.concatenate([r.b_extra for r in recs]).astype(np.float32),
            "quaternion": np.concatenate([r.quaternion for r in recs]).astype(np.float32),
            "centre": np.concatenate([r.centre for r in recs]).astype(np.float32),
        }
        for name, arr in self.arrays.items():
            arr.resize((self.count + n, *arr.shape[1:]))
            arr[self.count : self.count + n] = cols[name]
        self.count += n
        self._buffer, self._buffered = [], 0

    def close(self, attrs: dict[str, Any] | None = None) -> Path:
        """Flush, write the attributes (plus `attrs`) and move the finished store onto `path`;
        an earlier store there (allowed by `overwrite`) is removed only now."""
        self.flush()
        self.group.attrs.update({"entries": list(self.entries), "count": self.count, **(attrs or {})})
        self._stage.commit()
        return self.path

    def discard(self) -> None:
        """Remove the unfinished store; whatever was at `path` stays."""
        self._stage.discard()


class PatchStore:
    """Read access to a patch store.  `load(split)` reads a subset into memory."""

    def __init__(self, path: str | os.PathLike) -> None:
        import zarr

        self.path = Path(path)
        if not self.path.exists():
            raise CryofmInputError(f"{self.path}: no such patch store; make one with `cryofm data simulate`")
        try:
            self.group = zarr.open_group(str(self.path), mode="r")
            self.patches = self.group["patches"]
        except Exception as exc:  # zarr raises several types for a folder that is not a store
            raise CryofmInputError(f"{self.path}: not a cryofm patch store ({exc})") from exc
        attrs = dict(self.group.attrs)
        self.entries: list[str] = list(attrs["entries"])
        self.voxel_size = float(attrs["voxel_size"])
        self.box = int(attrs["box"])
        self.attrs = attrs
        self.entry = np.asarray(self.group["entry"][:])
        self.split = np.asarray(self.group["split"][:])
        self.b_extra = np.asarray(self.group["b_extra"][:])
        self.quaternion = np.asarray(self.group["quaternion"][:])
        self.centre = np.asarray(self.group["centre"][:])

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    def indices(self, split: int | None = None, max_count: int | None = None) -> np.ndarray:
        idx = np.arange(len(self)) if split is None else np.flatnonzero(self.split == split)
        return idx if max_count is None else idx[:max_count]

    def entries_of(self, split: int) -> set[str]:
        return {self.entries[i] for i in np.unique(self.entry[self.split == split])}

    def load(self, split: int | None = None, max_count: int | None = None) -> np.ndarray:
        """Patches of a split as float16 [N, box, box, box] in memory (contiguous reads)."""
        idx = self.indices(split, max_count)
        if len(idx) == 0:
            return np.zeros((0,) + (self.box,) * 3, np.float16)
        if np.all(np.diff(idx) == 1):
            return np.asarray(self.patches[idx[0] : idx[-1] + 1])
        out = np.empty((len(idx),) + (self.box,) * 3, np.float16)
        # read in contiguous runs
        starts = np.flatnonzero(np.diff(idx, prepend=-2) != 1)
        ends = np.append(starts[1:], len(idx))
        for s, e in zip(starts, ends):
            out[s:e] = self.patches[idx[s] : idx[e - 1] + 1]
        return out
