"""Ground truths for restoration tests, from the small maps in data/."""

from __future__ import annotations

import numpy as np


def centred_truth(path: str = "data/emd_5168/emd_5168_monomer.mrc", n: int = 40) -> np.ndarray:
    """The map at 1.5 A, its centre in an `n`^3 box (padded with its median), standardised."""
    from cryofm.fourier import resample_volume
    from cryofm.io import read_map

    x = resample_volume(read_map(path), 1.5).data.astype(np.float64)
    truth = np.full((n, n, n), float(np.median(x)))
    src = tuple(slice(max(0, (s - n) // 2), max(0, (s - n) // 2) + min(s, n)) for s in x.shape)
    dst = tuple(slice(max(0, (n - s) // 2), max(0, (n - s) // 2) + min(s, n)) for s in x.shape)
    truth[dst] = x[src]
    return (truth - truth.mean()) / truth.std()
