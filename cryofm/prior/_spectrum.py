"""Shell-averaged power under the project's Fourier convention (private; torch).

rfftn over the last three axes, norm="ortho"; shell k holds components with round(n |f|) == k;
the Hermitian weight w is 1 on the kx = 0 and kx = n/2 planes and 2 elsewhere.
"""

from __future__ import annotations

import torch

__all__ = ["shell_power", "shell_index"]


def shell_index(n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(shell index [n, n, n//2+1] int64, Hermitian weight [n, n, n//2+1]) for a cubic box n."""
    fz = torch.fft.fftfreq(n, device=device)
    fx = torch.fft.rfftfreq(n, device=device)
    r = torch.sqrt(fz[:, None, None] ** 2 + fz[None, :, None] ** 2 + fx[None, None, :] ** 2) * n
    w = torch.full((n, n, n // 2 + 1), 2.0, device=device)
    w[..., 0] = 1.0
    if n % 2 == 0:
        w[..., -1] = 1.0
    return torch.round(r).long(), w


def shell_power(x: torch.Tensor) -> torch.Tensor:
    """Mean power per shell of cubic volumes x [..., n, n, n] -> [..., n//2] (ortho rfft units)."""
    n = x.shape[-1]
    f = torch.fft.rfftn(x.double(), dim=(-3, -2, -1), norm="ortho")
    p = f.real**2 + f.imag**2
    idx, w = shell_index(n, x.device)
    nshell = n // 2
    keep = idx < nshell
    flat_idx = idx[keep]
    pw = (p * w)[..., keep]
    lead = pw.shape[:-1]
    pw = pw.reshape(-1, pw.shape[-1])
    num = torch.zeros(pw.shape[0], nshell, dtype=torch.float64, device=x.device)
    num.index_add_(1, flat_idx, pw)
    den = torch.zeros(nshell, dtype=torch.float64, device=x.device).index_add_(0, flat_idx, w[keep].double())
    return (num / den).reshape(*lead, nshell).float()
