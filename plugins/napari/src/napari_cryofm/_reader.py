"""npe2 reader: MRC/CCP4 maps (``.mrc``, ``.map``, ``.mrcs``, ``.rec``, ``.mrc.gz``) and
cryofm zarr volumes (a ``.zarr`` folder written by `cryofm.io.zarr_store`). No Qt.

Each map becomes one image layer in world coordinates in Angstrom: ``scale`` is the voxel
size and ``translate`` the origin, both in (z, y, x) order (the header stores them (x, y, z)).
``metadata["cryofm"]`` holds the voxel size and origin (x, y, z), the path, the labels and the
other header facts that `cryofm.io.read_map` reports.

Large maps open lazily: an uncompressed float32 MRC is memory-mapped (the layer's data is a
view of the file, read as napari displays slices); a zarr volume is passed as the zarr array.
Compressed maps and other modes are read whole (they cannot be memory-mapped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from napari_cryofm._layers import LayerData, map_layer_data, volume_layer_data

__all__ = ["get_reader", "read_paths", "MAP_ENDINGS"]

#: File name endings this reader opens (case-insensitive).
MAP_ENDINGS = (".mrc", ".map", ".mrcs", ".rec", ".mrc.gz", ".map.gz")
ZARR_ENDING = ".zarr"


def _kind(path: str | Path) -> str | None:
    name = str(path).rstrip("/\\").lower()
    if name.endswith(ZARR_ENDING):
        return "zarr" if Path(path).is_dir() else None
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
