"""Quality of a prior's one-step estimate against the oracle Wiener filter (private helpers for
`benchmarks/prior_quality.py` and the tests).

For a clean standardised patch x, x_t = (1-t) x + t e (e white, unit variance).  The oracle
Wiener filter knows x's own per-shell power S_k (every shell, corners included) and applies the
per-component gain (1-t) S / ((1-t)^2 S + t^2) to the ortho rfft of x_t.  The ratio
MSE(x_hat, x) / MSE(wiener, x) is below 1 when the model knows more than the spectrum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["oracle_wiener", "mse_ratio", "map_patches", "QualityResult"]


def _all_shells(n: int) -> torch.Tensor:
    fz = torch.fft.fftfreq(n)
    fx = torch.fft.rfftfreq(n)
    r = torch.sqrt(fz[:, None, None] ** 2 + fz[None, :, None] ** 2 + fx[None, None, :] ** 2) * n
    return torch.round(r).long()


def oracle_wiener(x: torch.Tensor, x_t: torch.Tensor, t: float) -> torch.Tensor:
    """Oracle Wiener estimate of cubic patches x [B, n, n, n] from x_t (same shape) at time t."""
    n = x.shape[-1]
    idx = _all_shells(n).flatten()
    fx = torch.fft.rfftn(x.double(), dim=(-3, -2, -1), norm="ortho")
    p = (fx.real**2 + fx.imag**2).flatten(-3)
    nsh = int(idx.max()) + 1
    # Hermitian weights cancel in a per-shell mean of a real map's spectrum up to the kx = 0 plane;
    # use them anyway for exactness
    w = torch.full((n, n, n // 2 + 1), 2.0, dtype=torch.float64)
    w[..., 0] = 1.0
    if n % 2 == 0:
        w[..., -1] = 1.0
    w = w.flatten()
    num = torch.zeros(p.shape[0], nsh, dtype=torch.float64).index_add_(1, idx, p * w)
    den = torch.zeros(nsh, dtype=torch.float64).index_add_(0, idx, w)
    s = (num / den)[:, idx].reshape(fx.shape)
    gain = (1 - t) * s / ((1 - t) ** 2 * s + t**2)
    ft = torch.fft.rfftn(x_t.double(), dim=(-3, -2, -1), norm="ortho")
    return torch.fft.irfftn(gain * ft, s=x.shape[-3:], dim=(-3, -2, -1), norm="ortho").float()


@dataclass
class QualityResult:
    """Per t: MSE ratio model / oracle Wiener, and the two MSEs, over `count` patches x draws."""

    t: list[float]
    ratio: list[float]
    mse_model: list[float]
    mse_wiener: list[float]
    count: int


@torch.no_grad()
def mse_ratio(prior, patches: torch.Tensor, times=(0.2, 0.4, 0.6, 0.8), *, seed: int = 0, draws: int = 1,
              batch: int = 2) -> QualityResult:
    """MSE(prior.x_hat) / MSE(oracle Wiener) on standardised clean patches [N, n, n, n]."""
    gen = torch.Generator().manual_seed(seed)
    out = QualityResult([], [], [], [], len(patches) * draws)
    for t in times:
        em = ew = 0.0
        for _ in range(draws):
            for s in range(0, len(patches), batch):
                x = patches[s : s + batch].float()
                e = torch.randn(x.shape, generator=gen)
                xt = (1 - t) * x + t * e
                xh = prior.x_hat(xt[:, None].to(prior.device), t)[:, 0].cpu()
                em += float(((xh - x) ** 2).sum())
                ew += float(((oracle_wiener(x, xt, t) - x) ** 2).sum())
        out.t.append(float(t))
        out.ratio.append(em / ew)
        out.mse_model.append(em / (out.count * patches[0].numel()))
        out.mse_wiener.append(ew / (out.count * patches[0].numel()))
    return out


def map_patches(path: str | os.PathLike, *, voxel_size: float = 1.5, box: int = 64, count: int = 1,
                step: int = 12) -> torch.Tensor:
    """Standardised `box`^3 patches of a real map resampled to `voxel_size`: the first around the
    centre of mass of the positive density, the others shifted by +-`step` voxels along the axes
    (clipped to the map).  Returns [count, box, box, box]."""
    from cryofm.fourier import resample_volume
    from cryofm.io import read_map
    from cryofm.prior.normalize import standardize

    vol = resample_volume(read_map(path), voxel_size)
    d = np.asarray(vol.data, dtype=np.float32)
    if min(d.shape) < box:
        pad = [(max(0, (box - s + 1) // 2), max(0, (box - s + 1) // 2)) for s in d.shape]
        d = np.pad(d, pad)
    pos = np.clip(d, 0, None)
    grid = np.indices(d.shape).reshape(3, -1)
    com = (grid * pos.reshape(-1)).sum(1) / pos.sum()
    offsets = [np.zeros(3)] + [s * np.eye(3)[a] for a in range(3) for s in (step, -step)]
    out = []
    for off in offsets[:count]:
        c = np.round(com + off).astype(int)
        lo = np.clip(c - box // 2, 0, np.array(d.shape) - box)
        p = d[lo[0] : lo[0] + box, lo[1] : lo[1] + box, lo[2] : lo[2] + box]
        out.append(torch.from_numpy(standardize(p)[0]))
    return torch.stack(out)
