"""The one progress bar of cryofm (tqdm), quiet enough for logs.

On a terminal the bar redraws in place a few times a second.  Where stderr is not a terminal (a
cluster job's log file, a pipeline's captured output) every redraw would be kept as text, so the
bar writes at most one line every `LOG_INTERVAL` seconds, plus the final one, which it keeps.
"""

from __future__ import annotations

import sys

LOG_INTERVAL = 30.0  # seconds between progress lines in a log file


def progress_bar(**kwargs):
    """A `tqdm` bar on stderr; keyword arguments go to tqdm (total, desc, unit, disable, ...)."""
    from tqdm import tqdm

    stream = kwargs.pop("file", sys.stderr)
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    kwargs.setdefault("mininterval", 0.1 if interactive else LOG_INTERVAL)
    if not interactive:
        kwargs.setdefault("ascii", True)  # no block characters in a log
        kwargs["leave"] = True  # a log keeps the final line (erasing it would write a line of blanks)
    return tqdm(file=stream, dynamic_ncols=interactive, **kwargs)
