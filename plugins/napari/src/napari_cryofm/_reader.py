"""npe2 reader: MRC/CCP4 maps and cryofm zarr volumes (a folder written by
`cryofm.io.zarr_store`). No Qt.

Map endings (case-insensitive): ``.mrc``, ``.map``, ``.ccp4``, ``.mrcs``, ``.rec``, each also
gzip- or bzip2-compressed (``.map.gz``, EMDB's format, ``.mrc.bz2``, ...): `MAP_ENDINGS`, the
same set as the manifest's ``filename_patterns``.  A folder is claimed only when it is a
cryofm zarr volume: its ``zarr.json`` describes an array with a ``voxel_size`` attribute.

Each map becomes one image layer in world coordinates in Angstrom: ``scale`` is the voxel
size and ``translate`` the origin, both in (z, y, x) order (the header stores them (x, y, z)).
``metadata["cryofm"]`` holds the voxel size and origin (x, y, z), the path, the labels and the
other header facts that `cryofm.io.read_map` reports.

Large maps open lazily: an uncompressed float32 MRC is memory-mapped (the layer's data is a
view of the file, read as napari displays slices); a zarr volume is passed as the zarr array.
Compressed maps and other modes are read whole (they cannot be memory-mapped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from cryofm.io.mrc import MAP_SUFFIXES
from napari_cryofm._layers import LayerData, map_layer_data, volume_layer_data

__all__ = ["get_reader", "read_paths", "MAP_ENDINGS"]

#: Map file endings: `cryofm.io.mrc.MAP_SUFFIXES` and ``.mrcs`` (stacks), each plain or
#: compressed (`read_map` detects gzip and bzip2 from the content).
_MAP_SUFFIXES = MAP_SUFFIXES + (".mrcs",)
_COMPRESSION_SUFFIXES = (".gz", ".bz2")
#: File name endings this reader opens (case-insensitive); the manifest lists the same.
MAP_ENDINGS = _MAP_SUFFIXES + tuple(s + c for c in _COMPRESSION_SUFFIXES for s in _MAP_SUFFIXES)
ZARR_ENDING = ".zarr"
_ZARR_JSON_MAX_BYTES = 1 << 20


def _is_cryofm_zarr(path: Path) -> bool:
    """Whether a folder is a cryofm zarr volume, from its ``zarr.json`` alone (nothing else read):
    a zarr v3 array whose attributes hold ``voxel_size``."""
    meta_file = path / "zarr.json"
    try:
        if not meta_file.is_file() or meta_file.stat().st_size > _ZARR_JSON_MAX_BYTES:
            return False
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(meta, dict) or meta.get("node_type") != "array":
        return False
    attrs = meta.get("attributes")
    return isinstance(attrs, dict) and "voxel_size" in attrs


def _kind(path: str | Path) -> str | None:
    p = Path(path)
    if p.is_dir():
        return "zarr" if _is_cryofm_zarr(p) else None
    name = str(path).lower()
    if name.endswith(MAP_ENDINGS):
        return "mrc"
    return None


def get_reader(path: str | Sequence[str]) -> Callable[[str | Sequence[str]], list[LayerData]] | None:
    """Return `read_paths` when every path is a map or a cryofm zarr volume, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(_kind(p) is None for p in paths):
        return None
    return read_paths


def read_paths(path: str | Sequence[str]) -> list[LayerData]:
    """Read one or several maps; one image layer each (see the module docstring).

    Raises:
        cryofm.CryofmInputError: a file that is not a readable map (napari shows the message).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [_read_zarr(p) if _kind(p) == "zarr" else _read_mrc(p) for p in paths]


def _layer_name(path: str | Path) -> str:
    name = Path(str(path).rstrip("/\\")).name
    for ending in (*MAP_ENDINGS, ZARR_ENDING):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def _read_mrc(path: str | Path) -> LayerData:
    from cryofm.io import read_map

    volume = read_map(path, mmap=True)
    return volume_layer_data(volume, name=_layer_name(path), path=Path(path).absolute())


def _read_zarr(path: str | Path) -> LayerData:
    from cryofm.io import zarr_store

    array, voxel_size, origin = zarr_store.open_zarr_volume(path)
    attrs = dict(array.attrs)
    meta = {"labels": list(attrs.get("labels", [])), "source": attrs.get("source"), "format": "zarr"}
    return map_layer_data(
        array, voxel_size, origin, name=_layer_name(path), path=Path(path).absolute(), metadata=meta
    )
