"""Whole-map restoration: the API `denoise`, `complete_wedge`, `upsample` and its result types.

See docs/ARCHITECTURE.md ("Restoration API") and `cryofm.restore.pipeline` for the data flow.
"""

from cryofm.restore.api import complete_wedge, denoise, upsample
from cryofm.restore.types import Progress, Restoration

__all__ = ["denoise", "complete_wedge", "upsample", "Restoration", "Progress"]
