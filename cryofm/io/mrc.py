"""Read and write MRC/CCP4 maps (plain, gzip or bzip2) as `Volume` objects, with mrcfile.

Reading puts every map in one frame: data float32 indexed ``[z, y, x]`` whatever the file's
axis order (``mapc``, ``mapr``, ``maps``), voxel size and origin in Angstrom ordered
``(x, y, z)``.  The origin is the header's ``origin`` field or, when that is zero, the
``nxstart``/``nystart``/``nzstart`` offsets times the voxel size (they count columns, rows and
sections, so they are mapped onto x, y, z through the axis order).

Writing is atomic (temporary file in the target folder, fsync, rename), refuses to replace an
existing file unless asked, never replaces the file a volume was read from (its
``metadata['path']``; other files are replaced with ``overwrite=True``), and adds a
provenance label.  It keeps the input's origin convention: a map read from a header that
placed it with ``nxstart``/``nystart``/``nzstart`` (origin fields 0) is written the same way
while its origin is a whole number of voxels; otherwise the origin goes in the ``origin`` field.

Validation on read, in order:

1. the file exists and is a file;
2. mrcfile reads its header (``MAP `` tag, known mode, consistent extended header);
3. the mode is real-valued (int8, int16, uint16, float16, float32);
4. the file holds all the data the header announces;
5. the axis order is a permutation of 1, 2, 3;
6. the voxel size is positive and finite on every axis;
7. every value is finite (not for ``mmap=True``: that would read the whole file).
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io._atomic import atomic_output
from cryofm.io.volume import Volume, _plain

__all__ = ["MapHeader", "read_map", "read_map_header", "write_map", "split_map_suffix", "MAP_SUFFIXES"]

#: File name endings that `write_map` accepts (each also with ``.gz`` or ``.bz2``).
MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".rec")

_HEADER_BYTES = 1024
_MAX_LABELS = 10
_LABEL_CHARS = 80
_SUPPORTED_DTYPES = ("int8", "int16", "uint16", "float16", "float32")


@dataclass(frozen=True)
class MapHeader:
    """The geometry and bookkeeping of a map file, read without its data.

    Attributes:
        path: absolute path of the file.
        shape: array shape ``(nz, ny, nx)`` once reordered to ``[z, y, x]``.
        voxel_size: voxel edge lengths in Angstrom, float array ``(x, y, z)``.
        origin: position of voxel ``[0, 0, 0]`` in Angstrom, float array ``(x, y, z)``.
        axis_order: ``(mapc, mapr, maps)``: the physical axis (1 = x, 2 = y, 3 = z) of the
            file's columns, rows and sections.
        mode: MRC mode number; ``dtype`` the matching NumPy dtype name (with byte order).
        labels: the non-empty text labels.
        nstart: ``(nxstart, nystart, nzstart)``: start of columns, rows, sections, in voxels.
        header_origin: the header's ``origin`` field ``(x, y, z)`` in Angstrom.
        compression: ``None``, ``"gzip"`` or ``"bzip2"``.
        stats: the header's ``dmin``, ``dmax``, ``dmean``, ``rms`` (as written by the producer).
        warnings: problems tolerated in permissive mode (and mrcfile's size warnings).
    """

    path: str
    shape: tuple[int, int, int]
    voxel_size: np.ndarray
    origin: np.ndarray
    axis_order: tuple[int, int, int]
    mode: int
    dtype: str
    labels: tuple[str, ...]
    nstart: tuple[int, int, int]
    header_origin: tuple[float, float, float]
    compression: str | None
    stats: dict[str, float]
    warnings: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """The header facts as a JSON-serialisable dict (what `read_map` puts in metadata)."""
        return {
            "path": self.path,
            "axis_order": list(self.axis_order),
            "mode": self.mode,
            "dtype": self.dtype,
            "labels": list(self.labels),
            "nstart": list(self.nstart),
            "header_origin": list(self.header_origin),
            "compression": self.compression,
            "header_stats": dict(self.stats),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------
# reading


def _compression_of(path: Path) -> str | None:
    with open(path, "rb") as f:
        start = f.read(_HEADER_BYTES)
    if start[208:212] == b"MAP ":
        return None
    if start[:2] == b"\x1f\x8b":
        return "gzip"
    if start[:3] == b"BZh":
        return "bzip2"
    return None


def _explain(path: Path, exc: BaseException, permissive: bool) -> CryofmInputError:
    """Turn an mrcfile/decompression error into a message naming the file and the fix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "enough bytes for MRC header" in text:
        problem = "is shorter than an MRC header (1024 bytes): it is empty, truncated or not a map"
        fix = "re-download or re-export it"
    elif "Map ID string not found" in text:
        problem = "is not an MRC/CCP4 map (no 'MAP ' tag in its header)"
        fix = "check that it is a map; pass permissive=True only for a map with a damaged header"
    elif isinstance(exc, (EOFError, zlib.error)) or "compressed" in text.lower():
        problem = f"is a truncated or corrupt compressed file ({text})"
        fix = "re-download it or decompress and check it"
    elif "data block" in text or "mmap length" in text:
        problem = f"is truncated ({text})"
        fix = "re-download or re-export it"
    else:
        problem = f"cannot be read as an MRC map ({text})"
        fix = (
            "check the file"
            if permissive
            else "check the file, or pass permissive=True to read a map with header errors"
        )
    return CryofmInputError(f"{path}: {problem}; {fix}")


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise CryofmInputError(f"{p}: no such file; check the path")
    if not p.is_file():
        raise CryofmInputError(f"{p}: is not a file (a folder?); give the path of an MRC map")
    return p.absolute()


def _labels(header: np.recarray) -> tuple[str, ...]:
    out = []
    for raw in header.label:
        text = bytes(raw).decode("ascii", errors="replace").strip(" \x00")
        if text:
            out.append(text)
    return tuple(out)


def _geometry(path: Path, header: np.recarray, permissive: bool, notes: list[str]) -> dict:
    """Axis order, shape, voxel size and origin from a raw header, validated."""
    axis_order = (int(header.mapc), int(header.mapr), int(header.maps))
    if sorted(axis_order) != [1, 2, 3]:
        if not permissive:
            raise CryofmInputError(
                f"{path}: axis order mapc/mapr/maps = {axis_order} is not a permutation of 1, 2, 3; "
                "fix the header, or pass permissive=True to assume 1, 2, 3"
            )
        notes.append(f"axis order {axis_order} is invalid; assumed (1, 2, 3)")
        axis_order = (1, 2, 3)
    counts = (int(header.nx), int(header.ny), int(header.nz))  # columns, rows, sections
    if min(counts) < 1:
        raise CryofmInputError(
            f"{path}: header dimensions nx, ny, nz = {counts} must be >= 1; fix the header"
        )
    # file axis 0 holds sections, 1 rows, 2 columns; physical axis p (1=x) of each:
    phys_of_file_axis = (axis_order[2], axis_order[1], axis_order[0])
    # output axis 0 is z (3), 1 is y (2), 2 is x (1)
    transpose = tuple(phys_of_file_axis.index(p) for p in (3, 2, 1))
    file_shape = (counts[2], counts[1], counts[0])
    shape = tuple(file_shape[i] for i in transpose)

    cella = np.array([header.cella.x, header.cella.y, header.cella.z], dtype=np.float64)
    sampling = np.array([header.mx, header.my, header.mz], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        voxel_size = cella / sampling
    if not np.all(np.isfinite(voxel_size)) or np.any(voxel_size <= 0):
        raise CryofmInputError(
            f"{path}: voxel size is {_plain(voxel_size)} A (cell {_plain(cella)} A, "
            f"sampling mx, my, mz = {tuple(int(s) for s in sampling)}); it must be positive: set it "
            "in the header, e.g. `with mrcfile.open(path, 'r+') as m: m.voxel_size = 1.05`"
        )
    nstart = (int(header.nxstart), int(header.nystart), int(header.nzstart))
    header_origin = (float(header.origin.x), float(header.origin.y), float(header.origin.z))
    if not all(np.isfinite(header_origin)):
        if not permissive:
            raise CryofmInputError(
                f"{path}: header origin is {_plain(header_origin)} A; fix the header or pass "
                "permissive=True"
            )
        notes.append(f"header origin {_plain(header_origin)} is not finite; ignored")
        header_origin = (0.0, 0.0, 0.0)
    if any(header_origin):
        origin = np.array(header_origin, dtype=np.float64)
    else:
        origin = np.zeros(3)
        for start, phys in zip(nstart, axis_order):  # columns, rows, sections
            origin[phys - 1] = start * voxel_size[phys - 1]
    return {
        "axis_order": axis_order,
        "transpose": transpose,
        "file_shape": file_shape,
        "shape": shape,
        "voxel_size": voxel_size,
        "origin": origin,
        "nstart": nstart,
        "header_origin": header_origin,
    }


def _open(path: Path, permissive: bool, *, header_only: bool, use_mmap: bool = False):
    """Open with mrcfile, turning its warnings into notes and its errors into ours."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if use_mmap:
                mrc = mrcfile.mmap(path, mode="r", permissive=permissive)
            else:
                mrc = mrcfile.open(path, mode="r", permissive=permissive, header_only=header_only)
    except (ValueError, EOFError, OSError, zlib.error) as exc:
        raise _explain(path, exc, permissive) from exc
    notes = [" ".join(str(w.message).split()) for w in caught]
    return mrc, notes


def _check_extended_header_size(path: Path) -> None:
    """Refuse a header whose extended-header size exceeds the file in either byte order
    (garbage, e.g. text), before mrcfile tries to allocate it."""
    with open(path, "rb") as f:
        start = f.read(_HEADER_BYTES)
    if len(start) < _HEADER_BYTES:
        return  # mrcfile reports the short header
    room = path.stat().st_size - _HEADER_BYTES
    nsymbt = [int(np.frombuffer(start[92:96], dtype=order + "i4")[0]) for order in "<>"]
    if all(n < 0 or n > room for n in nsymbt):
        raise CryofmInputError(
            f"{path}: is not an MRC map (its header announces an extended header of "
            f"{min(nsymbt, key=abs)} bytes, larger than the file); check that it is a map"
        )


def _read_header(path: Path, permissive: bool) -> tuple[MapHeader, dict]:
    compression = _compression_of(path)
    if compression is None and permissive:
        _check_extended_header_size(path)
    mrc, notes = _open(path, permissive, header_only=True)
    with mrc:
        header = mrc.header.copy()
        ext_bytes = int(header.nsymbt)
    try:
        dtype = mrcfile.utils.data_dtype_from_header(header)
    except ValueError as exc:
        raise CryofmInputError(
            f"{path}: unknown MRC mode {int(header.mode)}; the file is corrupt or not a map"
        ) from exc
    if dtype.name not in _SUPPORTED_DTYPES:
        raise CryofmInputError(
            f"{path}: MRC mode {int(header.mode)} ({dtype.name}) is not a real-valued density map; "
            f"cryofm reads modes 0, 1, 2, 6, 12 ({', '.join(_SUPPORTED_DTYPES)})"
        )
    geom = _geometry(path, header, permissive, notes)
    if int(header.nz) == 1:
        raise CryofmInputError(f"{path}: is a 2D image (nz = 1), not a 3D map; give a volume")
    if compression is None:
        expected = _HEADER_BYTES + ext_bytes + int(np.prod(geom["file_shape"])) * dtype.itemsize
        size = path.stat().st_size
        if size < expected:
            raise CryofmInputError(
                f"{path}: is truncated: the header announces {expected} bytes "
                f"({geom['file_shape'][::-1]} columns x rows x sections of {dtype.name}), "
                f"the file has {size}; re-download or re-export it"
            )
    info = MapHeader(
        path=str(path),
        shape=geom["shape"],
        voxel_size=geom["voxel_size"],
        origin=geom["origin"],
        axis_order=geom["axis_order"],
        mode=int(header.mode),
        dtype=dtype.str,
        labels=_labels(header),
        nstart=geom["nstart"],
        header_origin=geom["header_origin"],
        compression=compression,
        stats={
            "dmin": float(header.dmin),
            "dmax": float(header.dmax),
            "dmean": float(header.dmean),
            "rms": float(header.rms),
        },
        warnings=tuple(notes),
    )
    return info, geom


def read_map_header(path: str | os.PathLike, *, permissive: bool = False) -> MapHeader:
    """Read a map's geometry and header facts without reading its data.

    Args:
        path: an MRC/CCP4 map, optionally gzip- or bzip2-compressed.
        permissive: tolerate header errors (mrcfile's permissive mode; an invalid axis
            order is taken as 1, 2, 3); the problems are listed in ``MapHeader.warnings``.

    Returns:
        A `MapHeader`; ``shape`` is ``(nz, ny, nx)``, vectors are ``(x, y, z)`` Angstrom.

    Raises:
        CryofmInputError: the file is missing, not a map, truncated, complex-valued, or
            has a non-positive voxel size.
    """
    p = _check_path(path)
    return _read_header(p, permissive)[0]


def read_map(path: str | os.PathLike, *, permissive: bool = False, mmap: bool = False) -> Volume:
    """Read an MRC/CCP4 map into a `Volume` (float32 ``[z, y, x]``, Angstrom ``(x, y, z)``).

    Args:
        path: ``.mrc``/``.map``/... file, optionally gzip- or bzip2-compressed (detected
            from the content).
        permissive: tolerate header errors (see `read_map_header`); the data must still be
            complete, finite and have a positive voxel size.
        mmap: for an uncompressed native-endian float32 file, return data that is a
            read-only view of the file (memory-mapped, not loaded; values are not checked
            for NaN); other files are loaded as usual.

    Returns:
        A `Volume`; ``metadata`` holds ``path``, ``axis_order`` (mapc, mapr, maps),
        ``mode``, ``dtype``, ``labels``, ``nstart``, ``header_origin``, ``compression``,
        ``header_stats``, ``warnings`` and ``mmap`` (whether data is memory-mapped).

    Raises:
        CryofmInputError: the file is missing, not a map, truncated, of an unsupported mode,
            has a voxel size of 0, or holds NaN or infinite values.

    Warns:
        RuntimeWarning: header problems tolerated in permissive mode, or a file longer than
            its header announces.
    """
    p = _check_path(path)
    info, geom = _read_header(p, permissive)
    use_mmap = info.compression is None
    mrc, notes = _open(p, permissive, header_only=False, use_mmap=use_mmap)
    with mrc:
        raw = mrc.data
        if raw is None:
            raise CryofmInputError(
                f"{p}: the data block cannot be read ({'; '.join(notes) or 'unknown reason'}); "
                "the file is corrupt"
            )
        view = raw.reshape(geom["file_shape"]).transpose(geom["transpose"])
        lazy = mmap and use_mmap and raw.dtype == np.dtype(np.float32)  # native float32
        data = view if lazy else np.ascontiguousarray(view, dtype=np.float32)
    all_notes = list(dict.fromkeys([*info.warnings, *notes]))
    if not lazy:
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(finite.size - np.count_nonzero(finite))
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise CryofmInputError(
                f"{p}: {bad} of {data.size} values are NaN or infinite (first at [z, y, x] = "
                f"{first}); repair or regenerate the map (e.g. replace them with 0 in the "
                "program that wrote it)"
            )
    for note in all_notes:
        warnings.warn(f"{p}: {note}", RuntimeWarning, stacklevel=2)
    metadata = info.metadata()
    metadata["warnings"] = all_notes
    metadata["mmap"] = bool(lazy)
    return Volume(data=data, voxel_size=info.voxel_size, origin=info.origin, metadata=metadata)


# --------------------------------------------------------------------------------------
# writing


def split_map_suffix(path: Path) -> tuple[str, str | None]:
    """(map suffix, compression) of an output path, e.g. (".mrc", "gzip") for `x.mrc.gz`.

    Raises:
        CryofmInputError: an ending `write_map` cannot write (not one of `MAP_SUFFIXES`).
    """
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in (".gz", ".bz2"):
        compression = "gzip" if suffixes[-1] == ".gz" else "bzip2"
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in MAP_SUFFIXES:
        raise CryofmInputError(
            f"{path}: unknown map file ending; name the output *.mrc or *.map "
            "(optionally with .gz)"
        )
    return suffixes[-1], compression


def _same_file(a: Path, b: str | os.PathLike) -> bool:
    b = Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:  # pragma: no cover - races with deletion
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _provenance_label(label: str | None) -> str:
    from cryofm import __version__

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    text = " ".join((label or "written").split())
    head = f"cryofm {__version__}: {text}"
    room = _LABEL_CHARS - len(stamp) - 1
    if len(head) > room:
        head = head[: room - 3] + "..."
    full = f"{head} {stamp}"
    return full.encode("ascii", errors="replace").decode("ascii")


def _merge_labels(existing: list[str], new: str) -> list[str]:
    """Keep the oldest label and the most recent ones, so that at most 10 remain."""
    kept = [str(s)[:_LABEL_CHARS] for s in existing if str(s).strip()]
    if len(kept) > _MAX_LABELS - 1:
        kept = kept[:1] + kept[-(_MAX_LABELS - 2):]
    return [*kept, new]


def _nstart_for(volume: Volume) -> tuple[int, int, int] | None:
    """``(nxstart, nystart, nzstart)`` for a volume whose input header used nstart, else None.

    The volume must come from a header with ``origin`` 0 and a nonzero ``nstart`` (what
    `read_map` records as ``metadata['header_origin']`` and ``metadata['nstart']``), and its
    origin must be a whole number of voxels on every axis (within 1e-3 voxel).  The writer
    uses axis order 1, 2, 3, so columns, rows, sections are x, y, z.
    """
    meta = volume.metadata
    header_origin, nstart = meta.get("header_origin"), meta.get("nstart")
    try:
        used_nstart = (
            header_origin is not None
            and nstart is not None
            and len(header_origin) == 3
            and len(nstart) == 3
            and not any(float(v) for v in header_origin)
            and any(int(n) for n in nstart)
        )
    except (TypeError, ValueError):
        return None
    if not used_nstart:
        return None
    steps = np.asarray(volume.origin, dtype=np.float64) / np.asarray(volume.voxel_size)
    whole = np.round(steps)
    if not np.all(np.isfinite(steps)) or np.any(np.abs(steps - whole) > 1e-3):
        return None
    if np.any(np.abs(whole) > np.iinfo(np.int32).max):
        return None
    return int(whole[0]), int(whole[1]), int(whole[2])


def write_map(
    path: str | os.PathLike,
    volume: Volume,
    *,
    overwrite: bool = False,
    label: str | None = None,
) -> Path:
    """Write a `Volume` as a float32 MRC map, atomically.

    The header gets the voxel size, axis order 1, 2, 3, the origin and the label
    ``cryofm <version>: <label> <date time>`` after the volume's existing labels
    (``metadata['labels']``, at most 10 in all).  The origin keeps the input's convention:
    when ``metadata`` says the input header placed the map with ``nxstart``/``nystart``/
    ``nzstart`` (``header_origin`` 0, ``nstart`` nonzero, as `read_map` records them) and
    the origin is a whole number of voxels on every axis, it is written as integer
    ``nxstart``/``nystart``/``nzstart`` with the ``origin`` field 0; otherwise (including a
    volume without that metadata) in the ``origin`` field with ``nxstart`` etc. 0.

    Args:
        path: output file, ``*.mrc``/``*.map`` (``.gz`` or ``.bz2`` appended: compressed).
        volume: the map; ``data`` ``[z, y, x]``, ``voxel_size``/``origin`` ``(x, y, z)`` A.
        overwrite: replace an existing file.  Only the file ``volume`` was read from
            (``metadata['path']``) is never replaced; any other file, including another
            input of the same computation, is replaced when this is True.
        label: what was done, e.g. ``"denoise dc 32 steps"``.

    Returns:
        The absolute path written.

    Raises:
        CryofmInputError: ``volume`` is not a `Volume`; the ending is unknown; the folder
            does not exist; the file exists and ``overwrite`` is False; the file is the
            volume's own input.
    """
    if not isinstance(volume, Volume):
        raise CryofmInputError(
            f"write_map needs a cryofm Volume, got {type(volume).__name__}; "
            "wrap arrays as Volume(data, voxel_size=..., origin=...)"
        )
    target = Path(path).expanduser().absolute()
    _, compression = split_map_suffix(target)
    source = volume.metadata.get("path")
    if source and _same_file(target, source):
        raise CryofmInputError(
            f"{target}: is the file this map was read from; cryofm never overwrites an input: "
            "choose another output name"
        )
    if not target.parent.is_dir():
        raise CryofmInputError(f"{target}: folder {target.parent} does not exist; create it first")
    if target.is_dir():
        raise CryofmInputError(f"{target}: is a folder; give a file name")
    if target.exists() and not overwrite:
        raise CryofmInputError(f"{target} exists; use --force / overwrite=True to replace it")

    data = np.ascontiguousarray(volume.data, dtype=np.float32)
    nstart = _nstart_for(volume)
    labels = _merge_labels(list(volume.metadata.get("labels", [])), _provenance_label(label))
    with atomic_output(target) as tmp, mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
        mrc.set_data(data)
        mrc.set_volume()
        mrc.voxel_size = tuple(float(v) for v in volume.voxel_size)
        hdr = mrc.header
        if nstart is not None:  # the input's convention: whole voxels in nstart
            hdr.origin.x = hdr.origin.y = hdr.origin.z = 0.0
            hdr.nxstart, hdr.nystart, hdr.nzstart = nstart
        else:
            hdr.origin.x, hdr.origin.y, hdr.origin.z = (float(v) for v in volume.origin)
            hdr.nxstart = hdr.nystart = hdr.nzstart = 0
        hdr.mapc, hdr.mapr, hdr.maps = 1, 2, 3
        hdr.label = [s.encode("ascii", errors="replace") for s in labels] + [b""] * (
            _MAX_LABELS - len(labels)
        )
        hdr.nlabl = len(labels)
    return target

