"""Crowded boxes: pack neighbours around a simulated patch so that density fills the box.

Each training patch is one molecule simulated alone, centred in solvent.  A box cut from a
filament, a crop inside a complex or a crowded tomogram has density up to its faces and little
solvent, and its lowest shells carry far more of the power (EMD-5168, an actin filament, is the
prior's worst validation map: see the model card).  `crowd` places neighbours, one by one, beside
the density already in the box: along a random direction, as close as they come without their
supports overlapping by more than `max_overlap` of the smaller one, so molecules touch as in a
complex rather than interpenetrate.  Neighbours are other patches (a hetero-complex) or, with
probability `same_prob`, copies of the patch itself (a homo-oligomer or a filament-like repeat).
Densities combine by their maximum, which equals their sum where the supports do not overlap.
Applied to the raw (positive, flat-solvent) patch before `map_like` and standardisation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["crowd", "support", "shifted"]


def support(x: np.ndarray, level: float = 0.1) -> np.ndarray:
    """Boolean support of a raw patch: density above `level` times its 99.5th percentile."""
    top = float(np.percentile(x, 99.5))
    return x > level * top if top > 0 else np.zeros(x.shape, dtype=bool)


def shifted(x: np.ndarray, offset) -> np.ndarray:
    """`x` translated by the integer voxel `offset` with zeros shifted in (no wrap-around)."""
    out = np.zeros_like(x)
    src, dst = [], []
    for o, n in zip(offset, x.shape):
        o = int(o)
        if abs(o) >= n:
            return out
        src.append(slice(max(0, -o), n - max(0, o)))
        dst.append(slice(max(0, o), n - max(0, -o)))
    out[tuple(dst)] = x[tuple(src)]
    return out


def _direction(gen: torch.Generator) -> np.ndarray:
    v = torch.randn(3, generator=gen).numpy().astype(np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def crowd(x: np.ndarray, neighbour: Callable[[], np.ndarray], count: int, gen: torch.Generator, *,
          same_prob: float = 0.5, max_overlap: float = 0.03, step: int = 2) -> np.ndarray:
    """`x` with up to `count` neighbours packed against its density (see the module docstring).

    Args:
        x: raw patch `(D, H, W)`, positive density on flat zero solvent.
        neighbour: returns another raw patch of the same shape (drawn by the caller).
        count: neighbours to place.
        gen: torch generator for every random choice (directions, same-or-other).
        same_prob: probability that a neighbour is a copy of `x` itself.
        max_overlap: the largest overlap of supports allowed, as a fraction of the smaller support.
        step: distance increment (voxels) of the search from contact outwards.

    Returns:
        float32 `(D, H, W)`; a neighbour that cannot touch without overlapping, or whose density
        would fall outside the box, is left out.
    """
    x = np.asarray(x, dtype=np.float32)
    out = x.copy()
    own = support(x)  # also the support of every copy of x
    occupied = own.copy()
    reach = int(max(x.shape))
    for _ in range(int(count)):
        same = float(torch.rand(1, generator=gen)) < same_prob
        nb = x if same else np.asarray(neighbour(), dtype=np.float32)
        nb_support = own if same else support(nb)
        size = max(int(nb_support.sum()), 1)
        direction = _direction(gen)
        # walk outwards from the centre until the neighbour only touches what is there
        for dist in range(step, reach, step):
            off = np.rint(direction * dist).astype(int)
            moved = shifted(nb_support, off)
            kept = int(moved.sum())
            if kept < 0.25 * size:  # mostly pushed out of the box: nothing gained
                break
            if (moved & occupied).sum() <= max_overlap * min(kept, max(int(occupied.sum()), 1)):
                out = np.maximum(out, shifted(nb, off))
                occupied |= moved
                break
    return out
