"""Cubic patches cut where there is density: centres on random atoms, sparse patches rejected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Patch", "extract_patches", "density_fraction"]


@dataclass
class Patch:
    """One patch: data [box, box, box] float32 and its centre (z, y, x) in voxels of the map."""

    data: np.ndarray
    centre: np.ndarray


def density_fraction(patch: np.ndarray, threshold: float) -> float:
    """Fraction of voxels above `threshold`."""
    return float((patch > threshold).mean())


def extract_patches(
    density: np.ndarray,
    atom_voxels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    box: int = 64,
    min_fraction: float = 0.005,
    tries_per_patch: int = 8,
) -> list[Patch]:
    """Cut up to `n` patches of `box`^3 voxels centred on random atoms.

    Voxels outside the map are zero (simulated maps are empty there).  A patch is kept when at
    least `min_fraction` of its voxels exceed 0.1 x the map's 99.9th percentile; small proteins
    fill little of a 96 A box, so the threshold is modest.

    Args:
        density: map [D, H, W].
        atom_voxels: [N, 3] atom positions (z, y, x) in voxels.
        n: patches wanted.
        rng: random generator (centres).
        box: patch side in voxels.

    Returns:
        Up to n patches (fewer when the map has little density).
    """
    half = box // 2
    padded = np.pad(density, half)
    threshold = 0.1 * float(np.percentile(density, 99.9))
    out: list[Patch] = []
    for _ in range(n * tries_per_patch):
        if len(out) >= n:
            break
        c = np.round(atom_voxels[rng.integers(len(atom_voxels))]).astype(int)
        c = np.clip(c, 0, np.array(density.shape) - 1)
        z, y, x = c + half
        p = padded[z - half : z - half + box, y - half : y - half + box, x - half : x - half + box]
        if density_fraction(p, threshold) < min_fraction:
            continue
        out.append(Patch(np.ascontiguousarray(p, dtype=np.float32), c.astype(np.float32)))
    return out
