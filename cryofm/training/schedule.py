"""Learning-rate schedule and time sampling."""

from __future__ import annotations

import math

import torch

__all__ = ["lr_factor", "sample_time"]


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up from 0 to 1 over `warmup_steps`, then cosine decay to `min_ratio` at `max_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(max_steps - warmup_steps, 1)
    p = min(max((step - warmup_steps) / span, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def sample_time(n: int, kind: str, generator: torch.Generator, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """n times in (0, 1): "uniform", or "logit_normal" (sigmoid of N(mean, std))."""
    if kind == "uniform":
        return torch.rand(n, generator=generator)
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator))
