"""Exceptions that cryofm raises at its public boundary.

`CryofmInputError` is a `ValueError`: bad user input (a file that is not a map, a voxel
size of 0, maps of different shapes).  The CLI prints its message on one line and exits
with code 2.  `Cancelled` is raised when a caller's cancel hook asks a long run to stop.
"""

from __future__ import annotations

__all__ = ["CryofmInputError", "Cancelled"]


class CryofmInputError(ValueError):
    """Input that cryofm cannot use; the message names the input, the problem and the fix."""


class Cancelled(RuntimeError):
    """A long-running computation was stopped by its caller's cancel hook."""
