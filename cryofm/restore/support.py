"""The solvent as a constraint for maps with unmeasured Fourier components (the missing wedge).

A molecule in solvent is confined to a support: outside a soft mask `m` (1 = molecule) the map is
flat at the solvent level.  Known support couples the missing Fourier components to the measured
ones (classical solvent flattening), so it adds information the data lack.  `support_fit` is the
map `level + m z` that best matches a target on the measured components and a reference
everywhere, each weighted per Fourier component (a Gaussian posterior mean confined to the
support), by conjugate gradients.  Uses in the wedge pipeline (`cryofm.restore.api`):

1. the noise power of a single wedged map (`support_noise_power`): the residual of the plain fit
   to the data, per shell, corrected for the measured degrees of freedom the fit absorbs.  The
   solvent of a wedged map holds the molecule's wedge streaks, which a solvent estimate counts as
   noise; on a noise-free wedged map the residual reports under 1% of the solvent estimate, and
   white noise of known power within 20% (`tests/test_restore_support.py`);
2. every `dc` step (`SupportConstraint`): the step's estimate confined to the support of its own
   automatic mask; and, for a sampler that starts part-way along the flow (`fps`), the starting
   map: the support-constrained Wiener filter of the data (data weighted by their signal-to-noise
   ratio, pulled to the solvent level with weight 1) instead of the masked Wiener map;
3. the final map: flattening the solvent moves the measured components, so they are fitted again
   within the support to the restored map's, weighted by their posterior precision.

Maps whose support fills much of the box against the measured fraction (a crop inside a complex,
a narrow tilt range) gain little from uses 2 and 3, and `support_fraction_ok` says when to make
them; the noise estimate (use 1) is still made there, and runs low (see `support_noise_power`).
"""

from __future__ import annotations

import numpy as np
import torch

from cryofm.fourier import auto_mask, hermitian_weight, irfftn, rfftn, shell_sum

__all__ = ["flatten_solvent", "support_fit", "support_noise_power", "support_fraction_ok", "SupportConstraint",
           "MAX_SUPPORT_RATIO", "ITERS"]

# the fit has mean(m) / measured-fraction of the measured degrees of freedom; beyond this the
# residual holds too little of the noise to measure it, and the constraint adds little
MAX_SUPPORT_RATIO = 0.6
# conjugate-gradient iterations: the benchmark wedge maps stop changing at 60 (quick set FSC_AUC
# 0.947 with 30, 0.948 with 60 and with 100: `benchmarks/restore.py --quick --samplers dc --tasks
# wedge --support-iters N`)
ITERS = 60


def flatten_solvent(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`x` pulled to its solvent level (median where mask < 0.5) outside the soft `mask`."""
    outside = mask < 0.5
    level = float(np.median(x[outside])) if np.any(outside) else 0.0
    return level + (x - level) * mask


def _measured_fraction(measured: np.ndarray, shape: tuple[int, ...]) -> float:
    w = np.asarray(hermitian_weight(shape)) * np.ones(measured.shape)
    return float(np.sum(w * measured) / np.sum(w))


def support_fraction_ok(mask: np.ndarray, measured: np.ndarray) -> bool:
    """True when the soft `mask` is small enough, against the measured fraction of Fourier space,
    for the support to constrain the map (`MAX_SUPPORT_RATIO`)."""
    return float(np.mean(mask)) <= MAX_SUPPORT_RATIO * _measured_fraction(measured, mask.shape)


def support_fit(target: np.ndarray, measured: np.ndarray, mask: np.ndarray, *, data_weight: np.ndarray | float = 1.0,
                reference: np.ndarray | None = None, reference_weight: np.ndarray | float = 1e-3,
                iters: int | None = None) -> np.ndarray:
    """The map `x = level + mask * z` that best matches `target` on the measured components and
    `reference` everywhere, each with its weight per Fourier component:

        minimise  sum_k  measured_k data_weight_k |X_k - T_k|^2 + reference_weight_k |X_k - R_k|^2

    (a Gaussian posterior mean confined to the support: with `data_weight` the data's signal to
    noise ratio and `reference_weight` 1 it is the support-constrained Wiener filter).  Solved by
    conjugate gradients on the normal equations in `z`, from `z = reference - level`.  (Preconditioning
    by the inverse weights, exact where the mask is 1, made the benchmark wedge maps worse: the
    operator is singular outside the support.)

    Args:
        target: real map `(D, H, W)`; only its measured components count.
        measured: 0/1 rfft mask of the measured components, `(D, H, W // 2 + 1)`.
        mask: soft support `(D, H, W)` in [0, 1] (1 = molecule).
        data_weight: weight of the target's measured components, scalar or rfft-shaped, >= 0.
        reference: the map pulled towards (default: `target`); `level` is its median outside the mask.
        reference_weight: scalar or rfft-shaped, > 0 (the default, 1e-3, only fixes what neither the
            data nor the support determine).
        iters: conjugate-gradient iterations (default: the module's `ITERS`, read at call time).

    Returns:
        float64 `(D, H, W)`: flat at `level` where `mask == 0`.
    """
    shape = tuple(target.shape)
    iters = ITERS if iters is None else int(iters)
    m_np = np.clip(np.asarray(mask, dtype=np.float64), 0.0, 1.0)
    ref_np = np.asarray(target if reference is None else reference, dtype=np.float64)
    outside = m_np < 0.5
    level = float(np.median(ref_np[outside])) if outside.any() else 0.0
    wd_np = np.asarray(measured, dtype=np.float64) * data_weight
    wr_np = np.broadcast_to(np.asarray(reference_weight, dtype=np.float64), wd_np.shape)

    def t32(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

    # float32 vectors with float64 inner products: converges as float64 does at a quarter of the cost
    m, wd, wr = t32(m_np), t32(wd_np), t32(wr_np)
    total = wd + wr

    def normal(z: torch.Tensor) -> torch.Tensor:
        return m * irfftn(total * rfftn(m * z), shape)

    def dot(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.sum(a * b, dtype=torch.float64))

    def fourier(a: np.ndarray) -> torch.Tensor:
        return rfftn(t32(a - level))

    rhs = m * irfftn(wd * fourier(np.asarray(target, dtype=np.float64)) + wr * fourier(ref_np), shape)
    z = t32(ref_np - level)
    r = rhs - normal(z)
    d = r.clone()
    rs = dot(r, r)
    for _ in range(iters):
        if rs <= 0.0:
            break
        nd = normal(d)
        alpha = rs / dot(d, nd)
        z += alpha * d
        r -= alpha * nd
        rs_new = dot(r, r)
        d = r + (rs_new / rs) * d
        rs = rs_new
    return level + m_np * z.double().numpy()


def support_noise_power(y: np.ndarray, measured: np.ndarray, mask: np.ndarray, iters: int | None = None) -> np.ndarray:
    """Noise power per shell `[n // 2]` of a map `y` with unmeasured components, per measured
    component, from the residual of `support_fit(y, ...)`.

    The fit absorbs the noise in `mean(mask) / f` of the measured degrees of freedom (`f` the
    measured fraction), so the residual power is divided by what is left.  Where the support is too
    large (`support_fraction_ok` false) what is left is taken as `1 - MAX_SUPPORT_RATIO`, and the
    estimate runs low.
    """
    shape = tuple(y.shape)
    p = np.asarray(measured, dtype=np.float64)
    fit = support_fit(y, p, mask, iters=iters)
    residual = np.abs(np.asarray(rfftn(np.asarray(y, dtype=np.float64) - fit))) ** 2 * p
    per_shell = shell_sum(residual, shape) / np.maximum(shell_sum(p, shape), 1e-12)
    left = 1.0 - float(np.mean(mask)) / _measured_fraction(p, shape)
    return np.asarray(per_shell, dtype=np.float64) / max(left, 1.0 - MAX_SUPPORT_RATIO)


class SupportConstraint:
    """The solvent constraint inside the `dc` sampler (`cryofm.sampling.dc.dc_step`'s `constrain`).

    At each step the combined estimate `x_c` is flattened outside its own automatic mask (dynamic
    masking, as in density modification) and its measured components are fitted again within that
    support, weighted by their posterior precision, against the flattened map's prior precision:
    the posterior mean confined to the support.  Batch items whose support fills too much of the
    box are left as they are.

    The step's estimate is a clean map, not noisy data, so its mask follows the molecule more
    closely than the default automatic mask of an observation (low-pass 10 A instead of 15, dilation
    2 A instead of 3): on the 8 benchmark truths (`benchmarks/restore.py --tasks wedge`, 30 CG
    iterations) the wedge's FSC_AUC went from 0.946 to 0.949, every map gaining or holding; a 6 A
    low-pass, or a 1.5 A dilation with a 4 A edge, lose a real map's weak density (EMD-3488 fell
    from 0.91 to 0.87-0.88).

    Args:
        measured: 0/1 rfft mask of the tile's measured components (the wedge).
        voxel_size: of the model grid (Angstrom), for the automatic mask.
        iters: conjugate-gradient iterations per step.
        lowpass_A, dilate_A: of the step's automatic mask (`cryofm.fourier.auto_mask`).
    """

    def __init__(self, measured: np.ndarray, voxel_size: float, iters: int | None = None, lowpass_A: float = 10.0,
                 dilate_A: float = 2.0) -> None:
        self.measured = np.asarray(measured, dtype=np.float64)
        self.voxel_size = float(voxel_size)
        self.iters = iters  # None: support_fit's default
        self.mask_args = {"lowpass_A": float(lowpass_A), "dilate_A": float(dilate_A)}

    def __call__(self, x_c: torch.Tensor, data_precision: torch.Tensor, prior_precision: torch.Tensor) -> torch.Tensor:
        out = []
        for b in range(x_c.shape[0]):
            x = x_c[b, 0].double().cpu().numpy()
            mask = np.asarray(auto_mask(x, self.voxel_size, **self.mask_args), dtype=np.float64)
            if support_fraction_ok(mask, self.measured):
                weight = _item(data_precision, b) / _item(prior_precision, b)
                x = support_fit(x, self.measured, mask, data_weight=weight, reference=flatten_solvent(x, mask),
                                reference_weight=1.0, iters=self.iters)
            out.append(torch.as_tensor(x, dtype=x_c.dtype))
        return torch.stack(out)[:, None].to(x_c.device)


def _item(a: torch.Tensor, b: int) -> np.ndarray:
    """Batch item `b` of a precision grid `[..., D, H, W // 2 + 1]` (batch axes of size B or 1) as
    float64 NumPy."""
    flat = a.reshape(-1, *a.shape[-3:])
    return flat[b if flat.shape[0] > 1 else 0].double().cpu().numpy()
