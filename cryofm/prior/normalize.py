"""The one normalisation of cryofm: standardisation by the array's own mean and std.

Training patches are standardised one by one; the restoration pipeline standardises with the
statistics of its own estimate of the clean map.  The model config names this function
(`normalization: standardize`), so a checkpoint says how its inputs were scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cryofm.errors import CryofmInputError

__all__ = ["NormStats", "standardize", "destandardize", "NORMALIZATIONS"]


@dataclass(frozen=True)
class NormStats:
    """Statistics of a standardisation: `normalized = (array - mean) / std`."""

    mean: float
    std: float


def _stats(array: Any) -> NormStats:
    if isinstance(array, torch.Tensor):
        a = array.detach().double()
        mean, std = float(a.mean()), float(a.std(unbiased=False))
    else:
        a = np.asarray(array, dtype=np.float64)
        mean, std = float(a.mean()), float(a.std())
    if not np.isfinite(mean) or not np.isfinite(std):
        raise CryofmInputError("cannot standardise an array with NaN or infinite values; clean the map first")
    if std <= 0.0:
        raise CryofmInputError(
            f"cannot standardise a constant array (mean {mean:.4g}, std 0); pass a map with contrast "
            "or give stats= explicitly"
        )
    return NormStats(mean, std)


def standardize(array: Any, stats: NormStats | None = None) -> tuple[Any, NormStats]:
    """Subtract the mean and divide by the standard deviation.

    Args:
        array: NumPy array or torch tensor of any shape (a map [D, H, W] or a batch).
        stats: statistics to use; None computes them from `array` (population std).

    Returns:
        `(normalized, stats)`: same type and shape as `array` (float32 for NumPy input).

    Raises:
        CryofmInputError: constant array, or NaN/inf values.
    """
    if stats is None:
        stats = _stats(array)
    if isinstance(array, torch.Tensor):
        return (array - stats.mean) / stats.std, stats
    return ((np.asarray(array, dtype=np.float32) - stats.mean) / stats.std).astype(np.float32), stats


def destandardize(normalized: Any, stats: NormStats) -> Any:
    """Undo `standardize`: `normalized * std + mean` (same type and shape as the input)."""
    if isinstance(normalized, torch.Tensor):
        return normalized * stats.std + stats.mean
    return (np.asarray(normalized, dtype=np.float32) * stats.std + stats.mean).astype(np.float32)


# name in the model config -> (forward, inverse)
NORMALIZATIONS = {"standardize": (standardize, destandardize)}
