"""Per-shell SURE-LET refinement of the network's one-step estimate.

On the flow path `x_t = (1-t) x + t e` (e white, unit variance per voxel) the observation
`y = x_t / (1-t) = x + s e`, `s = t / (1-t)`, is the clean patch in white Gaussian noise of known
power `s^2`.  Given the network's estimate `N = x_hat_net(x_t)`, each Fourier shell `k` (`n_k`
real degrees of freedom, ortho rfft with Hermitian weights) gets

    f_k = a_k N_k + b_k y_k,   (a_k, b_k) in [0, 1]^2,

with `(a_k, b_k)` minimising Stein's unbiased estimate of the shell's squared error,

    SURE_k(a, b) = |a N_k + (b - 1) y_k|^2 + 2 s^2 (a div_k N + b n_k) - n_k s^2,

a linear expansion of two estimators fitted by SURE (SURE-LET: Blu & Luisier, IEEE TIP 2007),
which needs nothing but `x_t`.  `div_k N`, the trace of the network's Jacobian over shell `k`,
comes from one fixed random-phase probe `p` and a finite difference (one more network call):
`div_k N ~ <P, F[N(y + h p) - N(y)] / h>_k / (|P|^2_k / n_k)`.

Why: where a map is unlike the training data (a 6.6 A filament that fills its box, a 23 A
subtomogram average), the network puts in detail that `x_t` itself shows is not there; SURE sees
it and shrinks that shell towards the observation's own Wiener-like estimate, while on maps like
the training data it keeps the network (`a ~ 1, b ~ 0`).  The box `[0, 1]^2` keeps every shell a
non-amplifying mix.  SURE's coefficients get noisy when `x_t` is nearly all noise, so the
refinement is applied in full up to `t = T_FULL` and faded out linearly by `T_OFF` (at t = 0.97
the unfaded fit was 14-20 % worse than the network alone).  It holds only for `x_t` on the path,
with white noise of power `t^2`: the restoration samplers, whose deterministic flow feeds the
network noise-free inputs, use the network alone (`Prior.velocity(..., refine=False)`).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch

from cryofm.fourier import expand_shells, shell_sum

__all__ = ["sure_let", "refine_weight", "T_FULL", "T_OFF", "T_MIN"]

T_MIN = 1e-3  # below: x_t is the clean patch to within the net's own error; no refinement
T_FULL = 0.90  # refinement in full for T_MIN <= t <= T_FULL
T_OFF = 0.95  # ... faded out linearly to none at T_OFF and above
_STEP = 0.1  # finite-difference step, in units of the noise std s: 1e-3 to 1e-1 give the same ratios
# to 0.006 on the shipped model; the largest keeps the difference well above bf16's rounding
_PROBE_SEED = 20_250_122
_DIMS = (-3, -2, -1)


def refine_weight(t: torch.Tensor) -> torch.Tensor:
    """How much of the refinement is applied at each t [B]: 1 on [T_MIN, T_FULL], 0 outside (T_MIN, T_OFF)."""
    w = ((T_OFF - t) / (T_OFF - T_FULL)).clamp(0.0, 1.0)
    return torch.where(t < T_MIN, torch.zeros_like(w), w)


@functools.lru_cache(maxsize=8)
def _probe_spectrum(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed real-space probe whose rfft has unit modulus and random phases (the same for every
    call, so `velocity` stays a deterministic function of its inputs), and its rfft (float64, CPU)."""
    gen = torch.Generator().manual_seed(_PROBE_SEED)
    half = (shape[0], shape[1], shape[2] // 2 + 1)
    phase = torch.rand(half, generator=gen, dtype=torch.float64) * (2 * math.pi)
    p = torch.fft.irfftn(torch.polar(torch.ones_like(phase), phase), s=shape, dim=_DIMS, norm="ortho")
    p = p / p.std()
    return p, torch.fft.rfftn(p, dim=_DIMS, norm="ortho")


def _box_minimum(U, C, V, D, n, s2):
    """argmin over (a, b) in [0, 1]^2 of a^2 U + 2 a (b-1) C + (b-1)^2 V + 2 s2 (a D + b n), elementwise.

    The quadratic is convex (its Hessian is the Gram matrix of N and y), so the minimum is the
    unconstrained one when that lies in the box, else the best of the four edges' clipped minima."""
    def q(a, b):
        return a * a * U + 2 * a * (b - 1) * C + (b - 1) ** 2 * V + 2 * s2 * (a * D + b * n)

    det = U * V - C * C
    ok = det > 1e-12 * (U * V).clamp_min(1e-300)
    safe = torch.where(ok, det, torch.ones_like(det))
    a0 = s2 * (n * C - D * V) / safe
    b0 = 1 + s2 * (D * C - n * U) / safe
    inside = ok & (a0 >= 0) & (a0 <= 1) & (b0 >= 0) & (b0 <= 1)
    cands = [(torch.where(inside, a0, torch.ones_like(a0)), torch.where(inside, b0, torch.zeros_like(b0)))]
    for a_edge in (0.0, 1.0):
        b = (1 - (a_edge * C + s2 * n) / V.clamp_min(1e-300)).clamp(0, 1)
        cands.append((torch.full_like(b, a_edge), b))
    for b_edge in (0.0, 1.0):
        a = (((1 - b_edge) * C - s2 * D) / U.clamp_min(1e-300)).clamp(0, 1)
        cands.append((a, torch.full_like(a, b_edge)))
    best_a, best_b = cands[0]
    best = torch.where(inside, q(best_a, best_b), torch.full_like(U, float("inf")))
    for a, b in cands[1:]:
        val = q(a, b)
        take = val < best
        best = torch.where(take, val, best)
        best_a, best_b = torch.where(take, a, best_a), torch.where(take, b, best_b)
    return best_a, best_b


def sure_let(network: Callable[[torch.Tensor], torch.Tensor], x_t: torch.Tensor, t: torch.Tensor,
             x_hat: torch.Tensor) -> torch.Tensor:
    """Refine the network's estimate `x_hat = network(x_t)` shell by shell (module docstring).

    Args:
        network: `x_t -> x_hat` at the same times `t` (one more call, at a probed `x_t`).
        x_t: [B, 1, D, H, W] on the path at times `t`.
        t: [B] in [0, 1].
        x_hat: `network(x_t)`, [B, 1, D, H, W].

    Returns:
        The refined estimate, same shape and dtype as `x_hat`; `x_hat` itself where
        `refine_weight(t)` is 0 (and the network is not called again when it is 0 for all).
    """
    weight = refine_weight(t.double())
    if not bool((weight > 0).any()):
        return x_hat
    shape = tuple(x_t.shape[-3:])
    tt = t.double().clamp(max=T_OFF)
    s = (tt / (1 - tt)).view(-1, 1)  # noise std of y, [B, 1]
    probe, fp = (a.to(x_t.device) for a in _probe_spectrum(shape))
    step = (_STEP * s).view(-1, 1, 1, 1, 1)
    # y + h p  <=>  x_t + (1 - t) h p
    shifted = network(x_t + ((1 - tt).view(-1, 1, 1, 1, 1) * step * probe).to(x_t.dtype))

    def rfft(a):
        return torch.fft.rfftn(a[:, 0].double(), dim=_DIMS, norm="ortho")

    def dot(a, b):  # per-shell sum (out to the corners) of Re(conj(a) b), [B, shells]
        return shell_sum(a.real * b.real + a.imag * b.imag, shape, corners=True)

    fn = rfft(x_hat)
    fy = rfft(x_t) / (1 - tt).view(-1, 1, 1, 1)
    jp = (rfft(shifted) - fn) / step.view(-1, 1, 1, 1)
    n = shell_sum(torch.ones_like(fp.real), shape, corners=True)  # real degrees of freedom per shell
    probe_power = dot(fp, fp) / n.clamp_min(1.0)
    div = dot(fp[None], jp) / probe_power.clamp_min(1e-300)
    a, b = _box_minimum(dot(fn, fn), dot(fn, fy), dot(fy, fy), div, n, s**2)
    keep = n < 2  # shell 0 (the box mean, one component): the network's
    a = torch.where(keep, torch.ones_like(a), a)
    b = torch.where(keep, torch.zeros_like(b), b)
    w = weight.view(-1, 1)
    a, b = 1 + w * (a - 1), w * b  # fade out: (1, 0) is the network alone
    refined_f = expand_shells(a, shape) * fn + expand_shells(b, shape) * fy
    refined = torch.fft.irfftn(refined_f, s=shape, dim=_DIMS, norm="ortho")[:, None]
    return refined.to(x_hat.dtype)
