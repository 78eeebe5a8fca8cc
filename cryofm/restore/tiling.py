"""Overlapping tiles blended with a smooth window (a partition of unity).

A box is covered by tiles of side `tile` overlapping by at least `overlap` voxels on every axis;
each tile's result is weighted by a window that ramps (raised cosine) over the overlap on the
sides that have a neighbour, and the weighted sum is divided by the sum of the windows, so the
weights add up to exactly 1 everywhere: a constant field stays constant.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

__all__ = ["TilePlan", "plan_tiles", "blend", "tile_window", "map_tiles"]


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of a box sit.

    shape: the box `(D, H, W)`; tile: tile side per axis `(td, th, tw)`;
    starts: per axis, the start index of each tile row; overlap: the ramp width in voxels.
    """

    shape: tuple[int, int, int]
    tile: tuple[int, int, int]
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    overlap: int

    @property
    def corners(self) -> list[tuple[int, int, int]]:
        """Start `(z, y, x)` of every tile."""
        return list(itertools.product(*self.starts))

    def slices(self, corner: tuple[int, int, int]) -> tuple[slice, slice, slice]:
        return tuple(slice(c, c + t) for c, t in zip(corner, self.tile))  # type: ignore[return-value]

    def __len__(self) -> int:
        return math.prod(len(s) for s in self.starts)


def _axis_starts(n: int, tile: int, overlap: int) -> tuple[int, ...]:
    if n <= tile:
        return (0,)
    count = math.ceil((n - overlap) / (tile - overlap))
    return tuple(int(round(i * (n - tile) / (count - 1))) for i in range(count))


def plan_tiles(shape: tuple[int, int, int], tile: int, overlap: int) -> TilePlan:
    """Cover `shape` with tiles of side `min(tile, n)` overlapping by >= `overlap` on each axis."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    sides = tuple(min(tile, n) for n in shape)
    starts = tuple(_axis_starts(n, t, overlap) for n, t in zip(shape, sides))
    return TilePlan(tuple(shape), sides, starts, overlap)  # type: ignore[arg-type]


def _ramp(length: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    w = np.ones(length)
    if overlap > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        if left:
            w[:overlap] = ramp
        if right:
            w[length - overlap:] = np.minimum(w[length - overlap:], ramp[::-1])
    return w


def tile_window(plan: TilePlan, corner: tuple[int, int, int]) -> np.ndarray:
    """The blending window of the tile at `corner`, shape `plan.tile` (> 0 everywhere)."""
    axes = []
    for c, t, n, starts in zip(corner, plan.tile, plan.shape, plan.starts):
        overlap = min(plan.overlap, t // 2)
        axes.append(_ramp(t, overlap, left=c > 0, right=c + t < n))
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


def blend(plan: TilePlan, results: Iterable[tuple[tuple[int, int, int], np.ndarray]]) -> np.ndarray:
    """Sum `window * result` over `(corner, result)` pairs and divide by the sum of the windows.

    Returns:
        float64 array of `plan.shape`.  Voxels no tile covered are 0.
    """
    total = np.zeros(plan.shape)
    weight = np.zeros(plan.shape)
    for corner, result in results:
        w = tile_window(plan, corner)
        sl = plan.slices(corner)
        total[sl] += w * result
        weight[sl] += w
    return np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)


def map_tiles(volume: np.ndarray, plan: TilePlan, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply `fn` to every tile of `volume` and blend the results (a reference, used in tests)."""
    return blend(plan, ((c, fn(volume[plan.slices(c)])) for c in plan.corners))
