"""Maps in and out: `Volume`, MRC files, RELION STAR files, zarr stores.

- `read_map`, `read_map_header`, `write_map` (MRC/CCP4, plain or compressed): `cryofm.io.mrc`
- `atomic_output`: write any output file atomically (temporary file, fsync, rename);
  `save_tensors`: the same for a .safetensors file
- `cryofm.io.star`: RELION postprocess/refine STAR files and tilt-series STAR files
- `cryofm.io.zarr_store`: chunked volumes in zarr v3 stores

`star` and `zarr_store` are imported on first use (their dependencies, pandas and zarr, are
slow to import).
"""

from __future__ import annotations

import importlib
from typing import Any

from cryofm.io._atomic import atomic_output, save_tensors
from cryofm.io.mrc import MapHeader, read_map, read_map_header, write_map
from cryofm.io.volume import Volume

_LAZY_MODULES = ("star", "zarr_store")

__all__ = [
    "Volume",
    "MapHeader",
    "read_map",
    "read_map_header",
    "write_map",
    "atomic_output",
    "save_tensors",
    *_LAZY_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"cryofm.io.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cryofm.io' has no attribute {name!r}")
