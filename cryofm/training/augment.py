"""Augmentations of cubic patches: the 24 proper cube rotations (optionally the 48 with mirrors),
random crops."""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["cube_symmetries", "apply_symmetry", "random_crop"]


def cube_symmetries(flips: bool = False) -> list[tuple[tuple[int, int, int], tuple[int, ...]]]:
    """Signed axis permutations of a cube as (perm, flipped axes): 24 with det +1, or all 48."""
    out = []
    for perm in itertools.permutations(range(3)):
        sign_perm = np.linalg.det(np.eye(3)[list(perm)])
        for signs in itertools.product((1, -1), repeat=3):
            det = sign_perm * np.prod(signs)
            if det > 0 or flips:
                out.append((perm, tuple(i for i, s in enumerate(signs) if s < 0)))
    return out


def apply_symmetry(x: torch.Tensor, sym: tuple[tuple[int, int, int], tuple[int, ...]]) -> torch.Tensor:
    """Apply (perm, flipped axes) to the last three axes of x."""
    perm, flip = sym
    lead = list(range(x.ndim - 3))
    y = x.permute(*lead, *(len(lead) + p for p in perm))
    if flip:
        y = torch.flip(y, dims=[len(lead) + a for a in flip])
    return y.contiguous()


def random_crop(x: torch.Tensor, size: int | None, generator: torch.Generator) -> torch.Tensor:
    """A random `size`^3 crop of the last three axes (x unchanged when size is None or >= box)."""
    if size is None or size >= x.shape[-1]:
        return x
    starts = [int(torch.randint(0, s - size + 1, (1,), generator=generator)) for s in x.shape[-3:]]
    z, y, w = starts
    return x[..., z : z + size, y : y + size, w : w + size]
