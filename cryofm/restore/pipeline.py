"""The whole-map restoration pipeline (docs/ARCHITECTURE.md, data flow):

1. resample the observation (and the halves) onto the prior's grid: its voxel size, on a box
   that is a multiple of `prior.divisor` (`model_shape`; never padded);
2. estimate the noise power per shell (half maps, or the solvent outside a given/automatic mask)
   and the clean map's mean and standard deviation (data power minus noise power), normalise
   with them (`prior.normalize`);
3. sample the posterior over the whole box when the network fits it in memory (`memory_plan`);
   else `dc` still combines the data over the whole box and runs only the network on
   overlapping tiles blended with a partition of unity (`cryofm.restore.tiled_prior`; tiles of
   pure solvent take the Wiener estimate; tiles batched), and `fps` samples tile by tile;
4. undo the normalisation, resample back to the output grid, and take the Fourier components
   beyond the prior's band from the (Wiener-weighted) data.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch

from cryofm.errors import Cancelled, CryofmInputError
from cryofm.fourier.resample import regrid
from cryofm.fourier import (
    expand_shells,
    fourier_crop,
    irfftn,
    rfftn,
    fourier_pad,
    frequency_grid,
    shell_counts,
    shell_sum,
)
from cryofm.operators import noise_power_from_halves, noise_power_from_solvent
from cryofm.prior.normalize import NormStats
from cryofm.restore.problems import Problem
from cryofm.restore.tiled_prior import TiledVelocity
from cryofm.restore.tiling import blend, plan_tiles
from cryofm.restore.types import Progress
from cryofm.sampling.dc import sample_dc
from cryofm.sampling.fps import sample_fps
from cryofm.sampling.grid import time_grid

__all__ = ["Settings", "DEFAULT_STEPS", "DEFAULT_T_START", "DETERMINISTIC_ERROR_SCALE", "POSTERIOR_ETA", "sample_map",
           "plan_for", "memory_plan", "available_memory", "resize", "noise_from_solvent_or_halves", "clean_stats", "merge_beyond_band", "time_grid_for", "Ticker",
           "band_mask", "wiener_shells", "wiener_filter", "model_shape", "regrid"]

# steps, and where the flow starts on the straight path from the classical estimate, per (task,
# sampler); chosen on the benchmark ground truths (benchmarks/restore.py), never on held-out maps.
# The wedge with dc integrates the whole flow from t = 1 in 16 steps: with the solvent constraint
# at every step (`SupportConstraint`) more steps keep paying (FSC_AUC 0.940 with 4 steps, 0.946
# with 8, 0.950 with 16, on the 8 benchmark truths: `benchmarks/restore.py --tasks wedge
# --steps-dc N`), at ~22 s per 64^3 map.
DEFAULT_STEPS = {("denoise", "dc"): 4, ("wedge", "dc"): 16, ("upsample", "dc"): 4,
                 ("denoise", "fps"): 4, ("wedge", "fps"): 4, ("upsample", "fps"): 4}
FALLBACK_STEPS = 4  # a Settings made without a task
# the dc sampler's factor on the prior's error table when the flow starts from the noise's mean
# (one sample): x_hat on those noise-free inputs is 2-160x worse than the table (5ME2 at 15 A, shells
# 6-31, every step; `benchmarks/dc_error.py --error-scale 1`; 5-270x with `--t-start 0.6`); 50 chosen on the benchmark truths with denoising's
# flow then starting at 0.6 (`benchmarks/restore.py --samplers dc --tasks denoise --error-scale S
# --t-start-dc 0.6`; FSC_AUC gain, mean of 8: 3.2 A +0.070 -> +0.071, 4.3 A +0.135 -> +0.143, 6.1 A +0.158 -> +0.168, 8.5 A +0.088 -> +0.108,
# 15 A +0.073 -> +0.114; with 25: +0.073, +0.140, -, -, +0.100; with 100: +0.069, +0.142, -, -, +0.123)
DETERMINISTIC_ERROR_SCALE = 50.0
# Denoising with dc starts at t = 0.8 (0.6 until the error scale above was adopted; with it, more of
# the flow pays).  `python benchmarks/flow_start.py` (8 truths; mean FSC_AUC gain at 3.2 / 4.3 /
# 6.1 / 8.5 / 15 A): from 0.6 +0.071 +0.142 +0.168 +0.108 +0.113; from 0.8 +0.071 +0.162 +0.188
# +0.128 +0.132; from 1.0 +0.071 +0.172 +0.200 +0.137 +0.134 (from 0.4: +0.071 +0.124 +0.153
# +0.092 +0.094, `benchmarks/restore.py --samplers dc --tasks denoise --t-start-dc 0.4`).
# 1.0 was not taken: at 8.5 and 15 A its real-space correlation with the truth falls below 0.8's
# (0.664 and 0.508 against 0.668 and 0.539) and at 15 A its power in shells 10-31 overshoots the
# truth's (1.31x; 0.55x from 0.8): detail made up, not restored.  0.8 raises the mean
# correlation over 0.6 at every level.
# Upsampling stays at 0.8 (`benchmarks/restore.py --tasks upsample --t-start-dc T`: +0.060 from
# 0.6, +0.073 from 0.8, +0.067 from 0.9, +0.054 from 1.0).
DEFAULT_T_START = {("denoise", "dc"): 0.8, ("wedge", "dc"): 1.0, ("upsample", "dc"): 0.8,
                   ("denoise", "fps"): 0.6, ("wedge", "fps"): 0.6, ("upsample", "fps"): 0.6}
# dc's `eta` for posterior samples (K > 1; one sample is the deterministic flow, eta 0), per task.
# With eta = 1 every step draws fresh noise, x_t = (1-t) x_c + t z: the network's inputs then follow
# its training distribution, and the prior's SURE refinement applies (`Settings.refine`).  It pays
# where the flow runs from full noise, the wedge (mean of K = 4, `benchmarks/restore.py --samples 4
# --samplers dc --tasks wedge --posterior-eta 0|1`, FSC_AUC gain on the 8 truths: eta 0 +0.101, the
# 4 simulated +0.111, the 4 real maps +0.091; eta 1 +0.124, +0.141, +0.108; one sample +0.121),
# and not where it starts part-way from the classical estimate (`--quick --samples 4 --posterior-eta 0|1
# --tasks denoise,upsample`, eta 0 -> 1:
# denoise 3.2 A +0.057 -> +0.062, 4.3 A +0.100 -> +0.084, 6.1 A +0.099 -> +0.102, 8.5 A +0.061 ->
# +0.054, 15 A +0.045 -> +0.038; upsample +0.041 -> +0.017), which keeps eta 0 and the network alone.
POSTERIOR_ETA = {("wedge", "dc"): 1.0}
_DIMS = (-3, -2, -1)


@dataclass(frozen=True)
class Settings:
    """Sampler and tiling settings.  The API and CLI set sampler, steps, samples, device and seed;
    the other fields are the pipeline's defaults, chosen on the benchmark ground truths."""

    sampler: str = "dc"
    steps: int | None = None
    samples: int = 1
    device: str = "cpu"
    seed: int = 0
    eta: float = 0.0
    grid: str = "uniform"
    t_start: float = 1.0
    init_noise: float | None = None
    mask_output: bool = True
    zeta: float = 1.0
    lambda_max: float = 5.0
    tile: int = 64
    overlap: int = 16
    whole_box_voxels: int = 128**3
    batch: int = 2

    def __post_init__(self) -> None:
        if self.sampler not in ("dc", "fps"):
            raise CryofmInputError(f"sampler must be 'dc' or 'fps', got {self.sampler!r}")
        if self.steps is not None and int(self.steps) < 1:
            raise CryofmInputError(f"steps must be >= 1, got {self.steps}")
        if int(self.samples) < 1:
            raise CryofmInputError(f"samples must be >= 1, got {self.samples}")
        if not 0.0 < self.t_start <= 1.0:
            raise CryofmInputError(f"t_start must be in (0, 1], got {self.t_start}")
        if not 0.0 <= self.eta <= 1.0:
            raise CryofmInputError(f"eta must be in [0, 1], got {self.eta}")

    @property
    def start_noise(self) -> float:
        """Scale of the initial noise: by default 0 for one sample (the deterministic flow from the
        noise's mean: a posterior-mean estimate, exact for a Gaussian prior) and 1 for K > 1
        samples (posterior samples, whose mean and per-voxel std are returned)."""
        if self.init_noise is not None:
            return float(self.init_noise)
        return 0.0 if self.samples == 1 else 1.0

    @property
    def error_scale(self) -> float:
        """The dc sampler's factor on the prior's error table: `DETERMINISTIC_ERROR_SCALE` for the
        flow from the noise's mean, 1 for posterior samples (whose inputs the table describes)."""
        return DETERMINISTIC_ERROR_SCALE if self.start_noise == 0.0 else 1.0

    @property
    def refine(self) -> bool:
        """Whether dc asks the prior for its SURE-refined velocity (`cryofm.prior.sure`): only when
        every input of the network is `(1-t) x_c + t z` with fresh standard noise `z` (posterior
        samples from full noise with `eta` 1), the noise model the refinement assumes."""
        return self.sampler == "dc" and self.start_noise == 1.0 and self.eta == 1.0

    @property
    def n_steps(self) -> int:
        return int(self.steps) if self.steps is not None else FALLBACK_STEPS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": self.n_steps, "init_noise": self.start_noise, "error_scale": self.error_scale,
                "refine": self.refine}


def time_grid_for(settings: "Settings") -> torch.Tensor:
    """The sampler's time grid, from 1 to exactly 0 (`cryofm.sampling.grid.time_grid`)."""
    return settings.t_start * time_grid(settings.n_steps, settings.grid)


# --- grids ---------------------------------------------------------------------------------
def resize(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Fourier crop/pad a real map to `shape` (same physical box), axis by axis as needed."""
    shape = tuple(int(s) for s in shape)
    if tuple(array.shape) == shape:
        return np.asarray(array, dtype=np.float64)
    smaller = tuple(min(a, b) for a, b in zip(array.shape, shape))
    out = np.asarray(array, dtype=np.float64)
    if smaller != tuple(out.shape):
        out = fourier_crop(out, smaller)
    if smaller != shape:
        out = fourier_pad(out, shape)
    return np.asarray(out)


def model_shape(shape: tuple[int, int, int], voxel_size_zyx: np.ndarray, prior_voxel: float,
                divisor: int) -> tuple[int, ...]:
    """Box on the prior's grid covering the same physical box: `n v / v_prior` per axis rounded
    to the nearest multiple of `divisor` (at least 16 voxels), so the data are resampled onto a
    box the network takes and never padded.

    Padding is not neutral: a box padded with solvent is no longer periodic where density reaches
    its faces, and the step smears into every Fourier component; a wedged map padded so is no longer
    a wedged map, and the sampler enforced the smeared components as data (a crowded 90^3 box at
    1.5 A, padded to 96^3: wedge FSC_AUC 0.803 -> 0.711; resampled to 88^3: see the README).  The
    price is a voxel size up to `divisor / 2 / n` off the prior's (2.8 % for 70 -> 72 voxels).
    """
    exact = [n * float(v) / prior_voxel for n, v in zip(shape, voxel_size_zyx)]
    return tuple(max(16, int(round(e / divisor)) * int(divisor)) for e in exact)


# --- statistics ----------------------------------------------------------------------------
def noise_from_solvent_or_halves(obs: np.ndarray, halves: tuple[np.ndarray, np.ndarray] | None,
                                 mask: np.ndarray, average: bool = True) -> np.ndarray:
    """Noise power per shell `[n // 2]` of `obs` (the average of the halves when given).

    Half maps: half the mean `|F1 - F2|^2` per half, halved again for their average
    (`average=True`).  One map: the solvent outside `mask`, corrected for its volume fraction.
    """
    if halves is not None:
        h1, h2 = (torch.as_tensor(h, dtype=torch.float64) for h in halves)
        return noise_power_from_halves(h1, h2, average=average).numpy()
    return noise_power_from_solvent(torch.as_tensor(obs, dtype=torch.float64), torch.as_tensor(mask, dtype=torch.float64)).numpy()


def clean_stats(obs: np.ndarray, noise_shells: np.ndarray, measured: np.ndarray | None = None,
                halves: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[NormStats, np.ndarray]:
    """Mean and std of the clean map estimated from the data.

    The clean power per shell is the cross power of the halves, `Re<F1 F2*>` (unbiased), or the
    data power minus the noise power; both over the measured components only.  The variance sums
    these over the components of the shells whose signal is at least 5% of the noise (shells
    swamped by noise add estimation noise, not variance; clipping each shell at 0 instead would
    bias the sum upwards); the per-shell signal returned for Wiener weights is clipped at 0.

    Args:
        obs: real map `(D, H, W)`; noise_shells: `[n // 2]` noise power of `obs`;
        measured: 0/1 rfft mask or None (all); halves: the two half maps of `obs`, or None.

    Returns:
        `(NormStats(mean, std), signal_shells >= 0)`.
    """
    shape = obs.shape
    m = np.ones(rfftn(obs).shape) if measured is None else np.asarray(measured, dtype=np.float64)
    counted = np.maximum(shell_sum(m, shape), 1e-12)
    if halves is not None:
        cross = np.real(rfftn(halves[0]) * np.conj(rfftn(halves[1])))
        signal = shell_sum(m * cross, shape) / counted
    else:
        signal = shell_sum(m * np.abs(rfftn(obs)) ** 2, shape) / counted - noise_shells
    signal[0] = 0.0  # the mean is not part of the variance
    # shells where the noise swamps the signal add estimation noise, not variance: leave them out
    snr_ok = np.clip(signal, 0.0, None) > 0.05 * np.maximum(noise_shells, 1e-30)
    var = float(np.sum((shell_counts(shape) * signal)[snr_ok])) / float(np.prod(shape))
    floor = 1e-4 * float(obs.var())  # only guards against a non-positive estimate
    std = math.sqrt(max(var, floor, 1e-30))
    return NormStats(float(obs.mean()), std), np.clip(signal, 0.0, None)


WIENER_EXHAUSTED = 0.05


def wiener_shells(signal: np.ndarray, noise: np.ndarray, *, no_rebound: bool = False) -> np.ndarray:
    """Per-shell Wiener weight `S / (S + N)` (1 at DC).

    `no_rebound`: never rising again once the weight has fallen below `WIENER_EXHAUSTED`.  For the
    data's own components beyond the prior's band, where nothing else is there to judge them: past
    the data's resolution the signal is zero, and a rebound nearer Nyquist comes from the estimate
    (a box cut through density leaks power into every shell; a solvent noise estimate from a thin
    rim of solvent runs low), so it would pass noise.  Not inside the band, where the flow's start
    keeps the weak but real signal of noisy shells (fps lost 0.035 at 15 A with the rule there).
    """
    w = signal / np.maximum(signal + noise, 1e-30)
    w[0] = 1.0
    below = np.flatnonzero(w < WIENER_EXHAUSTED)
    if no_rebound and below.size:
        w[below[0]:] = np.minimum.accumulate(w[below[0]:])
    return w


def wiener_filter(array: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return irfftn(rfftn(array) * expand_shells(weights, array.shape), array.shape)


# --- how much of a box to sample at once ------------------------------------------------------
# Peak memory per voxel of the box the network takes, with a margin: the CLI's peak (maxrss) less
# ~0.4 GB of imports and model, `benchmarks/large_map.py` on the 2-core CPU: dc 3.3 GB for a
# 176^3 whole box (256^3 at 1.05 A; ~500 B/voxel, the map's own arrays included), fps 4.4 GB for
# 128^3 (`--box 128 --voxel 1.5 --sampler fps`; ~1,900: it back-propagates through the network).
BYTES_PER_VOXEL = {"dc": 600, "fps": 2400}
MEMORY_SHARE = 0.5  # of the memory available when the restoration starts
MEMORY_ENV = "CRYOFM_MAX_MEMORY_GB"


def available_memory(device: str) -> int:
    """Bytes free for a restoration on `device`, by which `memory_plan` sizes the network's boxes:
    the GPU's free memory, or the system's MemAvailable capped by the process's cgroup limit (a
    batch job's share of a node; elsewhere 4 GiB), and by `$CRYOFM_MAX_MEMORY_GB` when set.

    Raises:
        CryofmInputError: `$CRYOFM_MAX_MEMORY_GB` is not a positive number.
    """
    if str(device).startswith("cuda"):
        free = int(torch.cuda.mem_get_info(torch.device(device))[0])
    else:
        free = _read_number("/proc/meminfo", "MemAvailable:", 1024) or 4 * 2**30
        limit = _read_number("/sys/fs/cgroup/memory.max", "", 1)  # cgroup v2; "max" when unlimited
        if limit:
            free = min(free, limit)
    cap = os.environ.get(MEMORY_ENV)
    if cap:
        try:
            gb = float(cap)
        except ValueError:
            gb = -1.0
        if not gb > 0:
            raise CryofmInputError(f"{MEMORY_ENV}={cap!r} is not a positive number of gigabytes; set it to the "
                                   f"memory cryofm sizes its network's boxes by, e.g. 8, or unset it")
        free = min(free, int(gb * 2**30))
    return free


def _read_number(path: str, key: str, unit: int) -> int | None:
    """The integer after `key` on the first line starting with it in `path`, times `unit`; None if
    the file, the key or a number is missing."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    value = line[len(key):].split()
                    return int(value[0]) * unit if value and value[0].isdigit() else None
    except OSError:
        return None
    return None


def memory_plan(device: str, sampler: str, divisor: int = 8) -> dict:
    """`whole_box_voxels`, `tile`, `overlap` and `batch` for `Settings` from the memory available.

    The network takes the whole box when it fits: tiles recompute their overlaps, so the whole
    box is the fastest (a crowded 256^3 map at 1.05 A, 179^3 on the prior's grid, denoised in 34 s
    whole against 96 s in 27 tiles of 96^3 with the same gain, +0.062 and +0.060:
    `benchmarks/large_map.py`, the tiles with `CRYOFM_MAX_MEMORY_GB=2`).  Otherwise the largest
    tiles that fit, a multiple of 32 voxels (and of `divisor`), at least 64, overlapping by a
    quarter of the tile, as many at once as fit (at most 8 on a GPU, 2 on a CPU).  The budget is
    the network's: the map's own arrays come on top (3.1-3.5 GB peak for that 256^3 map with a
    2 GB setting).
    """
    per_voxel = BYTES_PER_VOXEL.get(sampler, max(BYTES_PER_VOXEL.values()))
    voxels = max(64**3, int(MEMORY_SHARE * available_memory(device) / per_voxel))
    step = math.lcm(32, int(divisor))
    tile = max(64, int(voxels ** (1 / 3) + 1e-9) // step * step)
    batch = max(1, min(8 if str(device).startswith("cuda") else 2, voxels // tile**3))
    return {"whole_box_voxels": voxels, "tile": tile, "overlap": tile // 4, "batch": batch}


# --- sampling ------------------------------------------------------------------------------
def plan_for(shape: tuple[int, ...], skip: np.ndarray | None, settings: Settings):
    """`(plan, corners to sample)`: the whole box when it fits, else tiles; tiles where the soft
    mask `skip` stays below 0.01 are left out."""
    if math.prod(shape) <= settings.whole_box_voxels:
        plan = plan_tiles(tuple(shape), max(shape), 0)
    else:
        plan = plan_tiles(tuple(shape), settings.tile, settings.overlap)
    run = [c for c in plan.corners if skip is None or float(skip[plan.slices(c)].max()) >= 0.01]
    return plan, run


def sample_map(prior, problem: Problem, y: np.ndarray, settings: Settings, *, skip: np.ndarray | None,
               fallback: np.ndarray, tick: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Posterior mean (and std over samples) of the normalised map `y` on the model grid.

    `dc` samples the whole box; its network runs on the whole box when `y.size <=
    settings.whole_box_voxels`, else on overlapping tiles of `settings.tile` (a multiple of
    `prior.divisor`; `cryofm.restore.tiled_prior`).  `fps` samples those tiles one by one.  Tiles
    where `skip` (a soft mask) stays below 0.01 are not sent to the network: they take `fallback`
    (the classical estimate).  With `settings.t_start < 1` the sampler starts at `t_start` on the
    straight path from `fallback`, `(1 - t) fallback + t e`.  `tick(n)` is called after every
    sampler step with the number of tile-samples the step advanced.

    Returns:
        `(mean, std or None, info)` as float64 arrays of `y.shape`; info: tiles, tiles_sampled,
        tile_shape, whole_box.
    """
    plan, run = plan_for(tuple(y.shape), skip, settings)
    device = torch.device(settings.device)
    generator = torch.Generator(device=device).manual_seed(int(settings.seed))
    grid = time_grid_for(settings)
    info = {"tiles": len(plan), "tiles_sampled": len(run), "tile_shape": list(plan.tile), "whole_box": len(plan) == 1}
    if settings.sampler == "dc" and run:  # the whole box; the network on tiles when it does not fit
        network = prior if len(plan) == 1 else TiledVelocity(prior, plan, run, torch.as_tensor(
            fallback, dtype=torch.float32, device=device), settings.batch)
        shape = tuple(y.shape)
        y_f = problem.data_fourier(torch.as_tensor(y, dtype=torch.float32, device=device)[None, None])
        result = _run_sampler(network, problem.operator(shape).to(device), y_f, grid, settings, generator,
                              lambda i: tick(len(run)), _x_init(fallback[None], settings, device),
                              problem.constraint(shape, prior.voxel_size))
        std = None if result.std is None else result.std[0, 0].double().cpu().numpy()
        return result.mean[0, 0].double().cpu().numpy(), std, info
    # fps, which back-propagates through the network, samples tile by tile
    operator = problem.operator(plan.tile).to(device)
    means, stds = [], []
    for start in range(0, len(run), settings.batch):
        batch = run[start:start + settings.batch]
        ys = torch.stack([torch.as_tensor(y[plan.slices(c)], dtype=torch.float32) for c in batch])[:, None].to(device)
        x_init = _x_init(np.stack([fallback[plan.slices(c)] for c in batch]), settings, device)
        result = _run_sampler(prior, operator, problem.data_fourier(ys), grid, settings, generator,
                              lambda i, n=len(batch): tick(n), x_init)
        means += [(c, r) for c, r in zip(batch, result.mean[:, 0].double().cpu().numpy())]
        if result.std is not None:
            stds += [(c, r) for c, r in zip(batch, result.std[:, 0].double().cpu().numpy())]
    skipped = [c for c in plan.corners if c not in run]
    mean = blend(plan, means + [(c, fallback[plan.slices(c)]) for c in skipped])
    std = None
    if settings.samples > 1:
        std = blend(plan, stds + [(c, np.zeros(plan.tile)) for c in skipped])
    return mean, std, info


def _x_init(fallback: np.ndarray, settings: Settings, device) -> Callable:
    """`generator -> x` at the first time of the grid for a batch of maps `fallback` `[B, D, H, W]`:
    the straight path from the classical estimate (t_start < 1) or from 0, with `init_noise` times
    the path's noise (1: posterior sampling; 0: the noise's mean, whose deterministic flow gives
    the posterior mean exactly for a Gaussian prior)."""
    t0, scale = settings.t_start, settings.start_noise
    start = torch.as_tensor(np.asarray(fallback), dtype=torch.float32)[:, None].to(device)
    if t0 >= 1.0:
        start = torch.zeros_like(start)
    return lambda gen: (1 - t0) * start + t0 * scale * torch.randn(start.shape, generator=gen, device=device)


def _run_sampler(prior, operator, y_f, grid, settings: Settings, generator, callback, x_init, constrain=None):
    if settings.sampler == "dc":
        return sample_dc(prior, operator, y_f, grid, samples=settings.samples, eta=settings.eta,
                         generator=generator, callback=callback, x_init=x_init, constrain=constrain,
                         error_scale=settings.error_scale, refine=settings.refine)
    return sample_fps(prior, operator, y_f, grid, samples=settings.samples, zeta=settings.zeta,
                      lambda_max=settings.lambda_max, generator=generator, callback=callback, x_init=x_init)


# --- back to the output grid -----------------------------------------------------------------
def band_mask(out_shape: tuple[int, ...], out_voxel_zyx, cutoff: float) -> np.ndarray:
    """Bool rfft mask of `out_shape`: True where the spatial frequency (1/A, voxel sizes
    `out_voxel_zyx`) is below `cutoff`, the prior grid's Nyquist frequency."""
    fz, fy, fx = frequency_grid(out_shape)  # cycles per voxel
    vz, vy, vx = (float(v) for v in out_voxel_zyx)
    radius = np.sqrt((fz / vz) ** 2 + (fy / vy) ** 2 + (fx / vx) ** 2)
    return radius < cutoff


def merge_beyond_band(restored: np.ndarray, data: np.ndarray, wiener: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Components of `restored` where `inside` (the prior's band), the Wiener-weighted `data` beyond.

    Args:
        restored, data: real maps of the output shape; wiener: per-shell weights of the data `[n // 2]`
            on the output grid's shells (corners take the last shell's); inside: `band_mask(...)`.
    """
    shape = restored.shape
    r_f = rfftn(restored)
    d_f = rfftn(data) * expand_shells(wiener, shape)
    return irfftn(np.where(inside, r_f, d_f), shape)


class Ticker:
    """Counts work units, reports `Progress` and polls the cancel hook between steps."""

    def __init__(self, total: int, progress, cancel) -> None:
        self.total, self.done, self.progress, self.cancel = int(total), 0, progress, cancel
        self.started = time.perf_counter()

    def emit(self, stage: str, message: str = "") -> None:
        if self.progress is not None:
            self.progress(Progress(stage, self.done, self.total, message))

    def __call__(self, n: int) -> None:
        self.done = min(self.total, self.done + int(n))
        self.emit("sample")
        if self.cancel is not None and self.cancel():
            raise Cancelled("restoration cancelled by the caller")

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("restoration cancelled by the caller")

