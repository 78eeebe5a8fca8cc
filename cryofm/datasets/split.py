"""The train/validation split, by entry: an entry is on one side only."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_entry_list", "split_entries"]


def read_entry_list(path: str | os.PathLike) -> list[str]:
    """Entry ids from a text file, one a line; '#' starts a comment; ids are lower-cased."""
    ids = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line.split()[0].lower())
    return ids


def split_entries(entries: list[str], validation: list[str]) -> tuple[list[str], list[str]]:
    """Split entry ids into (train, validation); validation keeps the order of `entries`."""
    val = {v.lower() for v in validation}
    return [e for e in entries if e.lower() not in val], [e for e in entries if e.lower() in val]
