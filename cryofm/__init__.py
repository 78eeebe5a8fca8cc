"""cryofm: a generative flow-matching prior of protein density for cryo-EM and cryo-ET.

Public API (imported lazily so that `import cryofm` stays light):

- maps: `Volume`, `read_map`, `write_map`
- Fourier tools: `fsc`, `resolution_at` (see `cryofm.fourier` for the rest)
- the prior: `load_prior`
- restoration: `denoise`, `complete_wedge`, `upsample`
"""

from __future__ import annotations

import importlib
from typing import Any

from cryofm.errors import Cancelled, CryofmInputError
from cryofm.io.volume import Volume

__version__ = "0.1.0"

_LAZY = {
    "read_map": "cryofm.io",
    "write_map": "cryofm.io",
    "fsc": "cryofm.fourier",
    "resolution_at": "cryofm.fourier",
    "load_prior": "cryofm.prior",
    "denoise": "cryofm.restore",
    "complete_wedge": "cryofm.restore",
    "upsample": "cryofm.restore",
    "Restoration": "cryofm.restore",
    "Progress": "cryofm.restore",
}

__all__ = ["Volume", "CryofmInputError", "Cancelled", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cryofm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
