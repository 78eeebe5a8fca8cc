"""Atomic output: write a temporary file (or folder) beside the target, then rename it onto the target."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryofm.errors import CryofmInputError

__all__ = ["atomic_output", "save_tensors", "StagedFolder", "default_mode"]


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # portable fallback: set and restore at once
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Give a temporary path in ``target``'s folder; on success it replaces ``target``.

    Write the file under the yielded path (it exists, empty).  When the block ends without
    error the file is fsynced, given the usual permissions (0o666 minus the umask) and
    renamed onto ``target`` with `os.replace` (atomic on one file system); on error it is
    removed and ``target`` is untouched.  Checks on overwriting are the caller's.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write torch tensors to a .safetensors file atomically, readable as any other output.

    `safetensors` itself creates files with mode 0600, which a lab's group cannot read.
    """
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def default_mode(folder: bool = False) -> int:
    """The permissions a new file (0666) or folder (0777) gets under the process umask."""
    return (0o777 if folder else 0o666) & ~_umask()


class StagedFolder:
    """A temporary folder beside ``target`` (a zarr store) that replaces it only when complete.

    `open` creates it (with the usual permissions, not mkdtemp's 0700) and returns its path;
    `commit` moves an earlier target aside, renames the folder onto the target and deletes the old
    one; `discard` removes it, leaving the target as it was.  As a context manager: open on entry,
    commit on success, discard on error.

    Raises (on construction):
        CryofmInputError: ``target`` is ``source`` (the input), its folder does not exist, or it
            exists and ``overwrite`` is false.
    """

    def __init__(self, target: str | os.PathLike, overwrite: bool, source: Any = None) -> None:
        self.target = Path(target).expanduser().absolute()
        if source and os.path.realpath(source) == os.path.realpath(self.target):
            raise CryofmInputError(
                f"{self.target}: is the input this volume was read from; cryofm never overwrites "
                "an input: choose another output name"
            )
        if not self.target.parent.is_dir():
            raise CryofmInputError(
                f"{self.target}: folder {self.target.parent} does not exist; create it first"
            )
        if self.target.exists() and not overwrite:
            raise CryofmInputError(f"{self.target} exists; use --force / overwrite=True to replace it")
        self.tmp: Path | None = None

    def open(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent))
        os.chmod(self.tmp, default_mode(folder=True))
        return self.tmp

    def commit(self) -> Path:
        old = None
        if self.target.exists() or self.target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".old", dir=self.target.parent))
            os.replace(self.target, old / "store")
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
