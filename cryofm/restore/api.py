"""The restoration API: `denoise`, `complete_wedge`, `upsample` (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from cryofm.errors import CryofmInputError
from cryofm.fourier import auto_mask, expand_shells
from cryofm.io.volume import Volume
from cryofm.operators import check_tilt_range, tilt_range_from_angles
from cryofm.operators.wedge import wedge_mask
from cryofm.restore import pipeline as pl
from cryofm.restore._inputs import as_count, as_volume, check_mask_values, check_pair, check_same_grid, resolve_device
from cryofm.operators.anisotropic import DirectionalNoise, directional_noise
from cryofm.restore.problems import AnisotropicDenoiseProblem, DenoiseProblem, Problem, UpsampleProblem, WedgeProblem
from cryofm.restore.report import build_report
from cryofm.restore.support import flatten_solvent, support_fit, support_fraction_ok, support_noise_power
from cryofm.restore.types import Progress, Restoration
from cryofm.fourier import resample_shells

__all__ = ["denoise", "complete_wedge", "upsample"]

# an automatic solvent mask covering more of the box than this is a crowded box (a crop inside a
# complex), where a threshold picks the densest parts rather than the molecule: not applied
MAX_AUTO_MASK_FRACTION = 0.5

ProgressFn = Callable[[Progress], None] | None
CancelFn = Callable[[], bool] | None


def _load_prior(prior: Any, device: str):
    from cryofm.prior import Prior, load_prior

    if prior is None:
        return load_prior(device=device)
    if isinstance(prior, (str, os.PathLike)):
        return load_prior(prior, device=device)
    if isinstance(prior, Prior):
        return prior.to(device)
    if all(hasattr(prior, a) for a in ("velocity", "normalize", "denormalize", "voxel_size", "divisor")):
        return prior  # anything that honours the model contract
    raise CryofmInputError(f"prior must be a Prior, a weights path or None (the shipped model), got {type(prior).__name__}")


def _mask_volume(mask: Any, like: Volume, geometry: bool) -> np.ndarray | None:
    """The mask on the map's grid, checked (`geometry`: both carry an origin of their own)."""
    if mask is None:
        return None
    vol = as_volume(mask, like.voxel_size, "mask")
    check_same_grid(like, vol, ("the map", "the mask"), origin=geometry)
    check_mask_values(vol)
    return np.clip(vol.data.astype(np.float64), 0.0, 1.0)


def _solvent_mask(obs: np.ndarray, voxel_size: float, mask: np.ndarray | None) -> np.ndarray:
    if mask is not None:
        return np.clip(mask, 0.0, 1.0)
    return np.asarray(auto_mask(obs, voxel_size), dtype=np.float64)


def _prepare_one(task: str, obs_m: np.ndarray, halves_m, mask_m: np.ndarray, prior, *, ratio: float,
                 coarse: dict | None, wedge: dict | None, average: bool,
                 directional: DirectionalNoise | None = None):
    """Normalised model-grid data, the Problem, and the normalisation stats for one observation."""
    shape = obs_m.shape
    measured = None
    if task == "upsample":
        c_obs, c_mask = coarse["obs"], coarse["mask"]
        noise = pl.noise_from_solvent_or_halves(c_obs, None, c_mask)
        stats, signal = pl.clean_stats(c_obs, noise)
        noise = _noise_floor(noise, signal)
        noise_box = max(c_obs.shape)
    elif task == "wedge":
        measured = _wedge_measured(shape, wedge)
        noise = _wedge_noise(obs_m, halves_m, mask_m, measured, average)
        stats, signal = pl.clean_stats(obs_m, noise, measured, halves_m)
        noise = _noise_floor(noise, signal)
        noise_box = max(shape)
    else:
        noise = pl.noise_from_solvent_or_halves(obs_m, halves_m, mask_m, average=average)
        stats, signal = pl.clean_stats(obs_m, noise, measured, halves_m)
        noise_box = max(shape)
    noise_n = torch.as_tensor(noise / stats.std**2, dtype=torch.float64)
    if task == "denoise" and directional is not None:  # measured for the average; one half has twice it
        cones = directional.table * (1.0 if average else 2.0) / stats.std**2
        problem: Problem = AnisotropicDenoiseProblem(noise_n, noise_box, cone_shells=cones, axes=directional.axes)
    elif task == "denoise":
        problem = DenoiseProblem(noise_n, noise_box)
    elif task == "wedge":
        problem = WedgeProblem(noise_n, noise_box, wedge["tilt_range"], wedge["tilt_axis"], wedge["tilt_angles"])
    else:
        problem = UpsampleProblem(noise_n, noise_box, ratio=ratio)
    y = np.asarray(prior.normalize(obs_m, stats)[0], dtype=np.float64)
    wiener = pl.wiener_shells(signal, noise)
    return y, problem, stats, noise, wiener


def _directional_noise(task: str, halves_m, anisotropic: bool | None):
    """The half maps' directional noise for denoising when it is to be used, and the report's
    record of the test: `anisotropic` None uses it where the noise is significantly anisotropic
    (`DirectionalNoise.significant`), True always, False never (and skips the test)."""
    if task != "denoise" or halves_m is None or anisotropic is False:
        return None, None
    measured = directional_noise(halves_m[0], halves_m[1], average=True)
    used = anisotropic is True or measured.significant
    record = {"requested": "always" if anisotropic is True else "auto", "used": bool(used), **measured.summary()}
    if used:
        record["direction_weights"] = np.round(measured.weights, 3).tolist()
    return (measured if used else None), record


def _noise_floor(noise: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Noise power kept above 1e-4 of the signal (noise-free data would get infinite weight)."""
    return np.maximum(noise, 1e-4 * np.maximum(signal, signal[1:].max() * 1e-3))


def _wedge_noise(obs: np.ndarray, halves, mask: np.ndarray, measured: np.ndarray, average: bool = True) -> np.ndarray:
    """Noise power per shell (per measured component) of a wedged map: from the half maps when
    given, else from the residual of a support-constrained fit (`support_noise_power`).

    Also where the support is too large for the fit to constrain the map (`support_fraction_ok`
    false): the residual then holds less of the noise, so the estimate runs low (a 40^3 crowded crop
    with noise of power 0.25: 0.08-0.13), and the data are trusted a little more than they deserve.
    The solvent, used there until s13, is worse: it counts the molecule's wedge streaks as noise
    (power 2-3 on noise-free data, 1000x too high), and on a 48^3 crop of EMD-5168 at +-45 degrees
    the map came out worse than the input (FSC_AUC -0.135 noise-free, -0.230 with noise; now +0.099
    and +0.118, `tests/test_restore_support.py`).  At +-30 degrees on the 8 benchmark truths,
    `python benchmarks/restore.py --samplers dc --tasks wedge --wedge-tilt 30`: +0.108 -> +0.165.
    """
    if halves is not None:
        return pl.noise_from_solvent_or_halves(obs, halves, mask, average=average)
    return support_noise_power(obs, measured, mask)


def _wedge_measured(shape, wedge: dict) -> np.ndarray:
    """0/1 float64 rfft mask of the wedge's measured components on a grid of `shape`."""
    return wedge_mask(shape, wedge["tilt_range"], wedge["tilt_axis"], tilt_angles=wedge["tilt_angles"]).double().numpy()


@dataclass(frozen=True)
class _Grids:
    """The input's grid, the prior's (same physical box, a multiple of its divisor: never padded),
    the output's."""

    input: tuple[int, int, int]
    voxel_zyx: np.ndarray
    model: tuple[int, ...]
    output: tuple[int, ...]
    output_voxel_xyz: np.ndarray

    @classmethod
    def of(cls, vol: Volume, prior, out_voxel) -> "_Grids":
        vs_zyx = vol.voxel_size[::-1]
        m_shape = pl.model_shape(vol.shape, vs_zyx, prior.voxel_size, prior.divisor)
        out_vs = vol.voxel_size.copy() if out_voxel is None else np.asarray(out_voxel, dtype=np.float64)
        out_shape = tuple(max(1, int(round(n * v / o))) for n, v, o in zip(vol.shape, vs_zyx, out_vs[::-1]))
        return cls(vol.shape, vs_zyx, m_shape, out_shape, out_vs)

    def to_output(self, array: np.ndarray) -> np.ndarray:
        """A map on the input's physical box (input or prior grid) on the output grid, at exactly the
        output voxel size: Fourier crop/pad, then, where the box is not a whole number of output
        voxels (e.g. 45 x 1.05 A at 0.7 A), the band-limited interpolant at the output's voxels."""
        out = pl.resize(array, self.output)
        natural = np.array([n * v / m for n, v, m in zip(self.input, self.voxel_zyx, self.output)])  # zyx
        wanted = self.output_voxel_xyz[::-1]
        if np.allclose(natural, wanted, rtol=1e-9, atol=0.0):
            return out
        return pl.regrid(out, self.output, tuple(wanted / natural))

    @property
    def band_cutoff(self) -> float:
        """The prior grid's Nyquist frequency in 1/A (3 A for 1.5 A voxels)."""
        return min(m / (2.0 * n * v) for m, n, v in zip(self.model, self.input, self.voxel_zyx))


def _read_inputs(data, half2, mask, voxel_size, independent_halves):
    vol1 = as_volume(data, voxel_size, "data")
    vol2 = None
    if half2 is not None:
        vol2 = as_volume(half2, vol1.voxel_size if voxel_size is None else voxel_size, "half2")
        check_pair(vol1, vol2, origin=isinstance(data, Volume) and isinstance(half2, Volume))
    if independent_halves and vol2 is None:
        raise CryofmInputError("independent_halves=True needs two half maps; pass half2=")
    return vol1, vol2, _mask_volume(mask, vol1, geometry=isinstance(data, Volume) and isinstance(mask, Volume))


def _restore(task: str, data, half2, *, mask, voxel_size, sampler, steps, samples, device, seed, prior,
             independent_halves, progress: ProgressFn, cancel: CancelFn, out_voxel=None, wedge=None,
             anisotropic: bool | None = False) -> Restoration:
    """Read and check the inputs, sample on the prior's grid, return to the output grid, report."""
    started = time.perf_counter()
    vol1, vol2, mask_in = _read_inputs(data, half2, mask, voxel_size, independent_halves)
    anisotropic = None if anisotropic is None else bool(anisotropic)
    if anisotropic is True and vol2 is None:
        raise CryofmInputError("anisotropic noise is measured from the difference of two half maps; pass half2= "
                               "(on the command line: two maps)")
    dev = resolve_device(device)
    steps = pl.DEFAULT_STEPS.get((task, sampler)) if steps is None else as_count(steps, "steps", 1)
    samples = as_count(samples, "samples", 1)
    prior = _load_prior(prior, dev)
    settings = pl.Settings(sampler=sampler, steps=steps, samples=samples, device=dev,
                           seed=as_count(seed, "seed", -(2**63)),
                           t_start=pl.DEFAULT_T_START.get((task, sampler), 1.0),
                           eta=pl.POSTERIOR_ETA.get((task, sampler), 0.0) if samples > 1 else 0.0,
                           **pl.memory_plan(dev, sampler, prior.divisor))
    obs = vol1.data.astype(np.float64) if vol2 is None else 0.5 * (vol1.data.astype(np.float64) + vol2.data)
    grids = _Grids.of(vol1, prior, out_voxel)

    obs_m = pl.resize(obs, grids.model)
    mask_m = _solvent_mask(obs_m, prior.voxel_size, None if mask_in is None else pl.resize(mask_in, grids.model))
    halves_m = None if vol2 is None else (pl.resize(vol1.data, grids.model), pl.resize(vol2.data, grids.model))
    if independent_halves:  # each half on its own, with one half's noise (from the pair)
        runs = [(halves_m[0], halves_m, False), (halves_m[1], halves_m, False)]
    else:  # the observation (average of the halves) with the average's noise
        runs = [(obs_m, halves_m, True)]
    directional, noise_anisotropy = _directional_noise(task, halves_m, anisotropic)
    coarse = None
    if task == "upsample":  # the data's own grid: noise and statistics are estimated there
        coarse = {"obs": obs, "mask": _solvent_mask(obs, float(np.mean(grids.voxel_zyx)), mask_in)}

    plan, run_corners = pl.plan_for(grids.model, mask_m, settings)
    ticker = pl.Ticker(settings.n_steps * len(run_corners) * settings.samples * len(runs), progress, cancel)
    ticker.emit("prepare", f"{task}: box {grids.input} -> prior grid {grids.model}, {len(run_corners)} of {len(plan)} tiles")
    ticker.check()

    restored, stds, infos, extra = [], [], [], {}
    for obs_i, halves_i, average in runs:
        y, problem, stats, noise, wiener = _prepare_one(task, obs_i, halves_i, mask_m, prior,
                                                        ratio=max(grids.input) / max(grids.model),
                                                        coarse=coarse, wedge=wedge, average=average,
                                                        directional=directional)
        mean, std, info = _sample(task, prior, problem, y, wiener, mask_m, grids, settings, ticker)
        restored.append(grids.to_output(np.asarray(prior.denormalize(mean, stats), dtype=np.float64)))
        if std is not None:
            stds.append(grids.to_output(std * stats.std))
        infos.append(info)
        extra.setdefault("noise_power_prior_grid", noise.tolist())
        extra.setdefault("normalization", {"mean": stats.mean, "std": stats.std})
    if noise_anisotropy is not None:
        extra["noise_anisotropy"] = noise_anisotropy
    ticker.emit("finish", "masking; merging the data beyond the prior's band")

    result = _finish(task, np.mean(restored, axis=0), obs, vol1, vol2, mask_in, wedge, grids, settings)
    # the input's labels and placement convention (nstart or origin fields) travel to the outputs
    header = {k: vol1.metadata[k] for k in ("labels", "nstart", "header_origin") if k in vol1.metadata}
    volume = Volume(result.astype(np.float32), grids.output_voxel_xyz, vol1.origin.copy(), {"cryofm_task": task, **header})
    std_vol = None
    if stds:
        std_out = np.sqrt(np.mean(np.square(stds), axis=0)).clip(min=0.0).astype(np.float32)
        std_vol = Volume(std_out, grids.output_voxel_xyz, vol1.origin.copy(), {"cryofm_task": task + "_std", **header})
    seconds = time.perf_counter() - started
    observation = vol1.with_data(obs.astype(np.float32))
    report = build_report(task, observation, volume, vol1, vol2, restored if independent_halves else None,
                          settings=settings, infos=infos, seconds=seconds, prior=prior,
                          extra=extra | {"prior_grid": list(grids.model), "wedge": _jsonable(wedge)})
    ticker.emit("finish", f"done in {seconds:.1f} s")
    return Restoration(volume=volume, std=std_vol, input=observation, report=report)


def _sample(task, prior, problem, y, wiener, mask_m, grids: _Grids, settings, ticker):
    """Build the start/fallback (the masked-Wiener map; for a wedge whose molecule leaves room for
    solvent, the support-constrained Wiener map) of the normalised data, sample the posterior."""
    solvent = float(np.median(y[mask_m < 0.5])) if np.any(mask_m < 0.5) else 0.0
    # the Wiener weights' grid (the data's) and the prior's, both by their length in Angstrom
    data_len = float(max(n * v for n, v in zip(grids.input, grids.voxel_zyx))) if task == "upsample" \
        else max(grids.model) * prior.voxel_size
    w_p = resample_shells(torch.as_tensor(wiener), data_len, max(grids.model) * prior.voxel_size, max(grids.model) // 2)
    # the flow starts from the fallback when t_start < 1; from t = 1 it only fills skipped solvent tiles
    measured_p = problem.measured(grids.model) if task == "wedge" and settings.t_start < 1.0 else None
    if measured_p is not None and support_fraction_ok(mask_m, measured_p):
        fallback = support_fit(y, measured_p, mask_m, data_weight=_snr(w_p.numpy(), y.shape),
                               reference=np.full(y.shape, solvent), reference_weight=1.0)  # support-constrained Wiener
    else:
        fallback = flatten_solvent(pl.wiener_filter(y, w_p.numpy()), mask_m)  # the masked-Wiener estimate
    return pl.sample_map(prior, problem, y, settings, skip=mask_m, fallback=fallback, tick=ticker)


def _finish(task, result, obs, vol1, vol2, mask_in, wedge, grids: _Grids, settings) -> np.ndarray:
    """Flatten the solvent (soft mask), then take the components beyond the prior's band from the
    Wiener-weighted data; a wedge map's measured components are fitted again within the support."""
    wiener = None
    if settings.mask_output:
        if mask_in is not None:
            out_mask = grids.to_output(mask_in)
        else:  # an automatic mask is trusted only where the box is mostly solvent
            out_mask = _solvent_mask(result, float(grids.output_voxel_xyz.mean()), None)
            if float(out_mask.mean()) > MAX_AUTO_MASK_FRACTION:
                out_mask = None
        if out_mask is not None:
            out_mask = np.clip(out_mask, 0.0, 1.0)
            flat = flatten_solvent(result, out_mask)
            # flattening moved a wedge map's measured components: fit them again within the support
            if task == "wedge":
                wiener = _input_wiener(task, vol1, vol2, mask_in, obs, wedge)
                result = _refit_wedge(flat, result, out_mask, wedge, wiener)
            else:
                result = flat
    inside = pl.band_mask(grids.output, grids.output_voxel_xyz[::-1], grids.band_cutoff)
    if not inside.all():
        wiener = _input_wiener(task, vol1, vol2, mask_in, obs, wedge) if wiener is None else wiener
        result = pl.merge_beyond_band(result, grids.to_output(obs), wiener, inside)
    return result


def _refit_wedge(flat: np.ndarray, restored: np.ndarray, mask: np.ndarray, wedge: dict, wiener: np.ndarray) -> np.ndarray:
    """The solvent-flattened wedge map `flat` whose measured components are fitted, within the
    support `mask`, to those of the `restored` map before flattening (the posterior's blend of data
    and prior), weighted by their posterior precision `1 + S/N` against `flat`'s 1 (`support_fit`);
    `flat` where the support is too large to constrain anything."""
    measured = _wedge_measured(flat.shape, wedge)
    if not support_fraction_ok(mask, measured):
        return flat
    return support_fit(restored, measured, mask, data_weight=1.0 + _snr(wiener, flat.shape), reference=flat,
                       reference_weight=1.0)


def _snr(wiener: np.ndarray, shape) -> np.ndarray:
    """Signal-to-noise ratio per rfft component from per-shell Wiener weights `S / (S + N)`."""
    w = np.clip(np.asarray(wiener, dtype=np.float64), 0.0, 1.0)
    return np.asarray(expand_shells(np.minimum(w / np.maximum(1.0 - w, 1e-12), 1e4), shape))


def _input_wiener(task, vol1, vol2, mask_in, obs, wedge) -> np.ndarray:
    """Per-shell Wiener weights of the data on the input grid (for the band beyond the prior's and
    the wedge's final refit)."""
    halves = None if vol2 is None else (vol1.data.astype(np.float64), vol2.data.astype(np.float64))
    mask = _solvent_mask(obs, float(vol1.voxel_size.mean()), mask_in) if halves is None else None
    measured = _wedge_measured(obs.shape, wedge) if task == "wedge" else None
    if task == "wedge":
        noise = _wedge_noise(obs, halves, mask, measured)
    else:
        noise = pl.noise_from_solvent_or_halves(obs, halves, mask)
    _, signal = pl.clean_stats(obs, noise, measured, halves)
    return pl.wiener_shells(signal, noise, no_rebound=True)


def _as_number(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CryofmInputError(f"{name} must be a number, got {value!r}") from None


# float64 working copies per output voxel while a map is finished (restored, data, mask, spectra)
_BYTES_PER_OUTPUT_VOXEL = 48


def _check_memory(shape: tuple[int, ...]) -> None:
    """Refuse an output grid that cannot fit in the memory available now (Linux's MemAvailable;
    no check where it is unknown), before any work."""
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return
    need = _BYTES_PER_OUTPUT_VOXEL * math.prod(shape)
    if need > available:
        raise CryofmInputError(f"the output grid {' x '.join(map(str, shape))} needs about {need / 2**30:.1f} GiB, more than "
                               f"the {available / 2**30:.1f} GiB available; choose a smaller factor or crop the map")


def _jsonable(value):
    if value is None:
        return None
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in value.items()}


# --- the public functions ---------------------------------------------------------------------
def denoise(data, half2=None, *, mask=None, voxel_size=None, sampler="dc", steps=None, samples=1, device="auto",
            seed=0, prior=None, independent_halves=False, anisotropic=None, progress: ProgressFn = None,
            cancel: CancelFn = None) -> Restoration:
    """Denoise a map (or the average of two half maps) with the flow prior.

    Args:
        data: the map, or half map 1: `Volume`, NumPy array or torch tensor `(D, H, W)` [z, y, x].
        half2: half map 2 (same box and voxel size), or None.  With half maps the noise power is
            estimated from their difference; with one map from the solvent outside `mask` (or an
            automatic mask).
        mask: soft solvent mask on the map's grid (1 = protein), or None for an automatic one.
        voxel_size: Angstrom, needed for bare arrays.
        sampler: "dc" (closed-form data consistency, no back-propagation) or "fps".
        steps: sampler steps (default per task and sampler, `pipeline.DEFAULT_STEPS`); samples: K >= 1.
        device: "auto", "cpu" or "cuda"; seed: seeds a torch.Generator (no global seeding).
        prior: a `Prior`, a weights path, or None for the shipped model.
        independent_halves: restore each half on its own and report the FSC between them.
        anisotropic: the half maps' noise per direction as well as per shell, for maps from
            preferred orientations (`cryofm.operators.anisotropic`): None (default) measures it
            and uses it where it differs between directions beyond chance; True always (needs
            half2); False never.  The report's `noise_anisotropy` records the test.
        progress: called with `Progress` after every sampler step; cancel: polled between steps.

    Returns:
        `Restoration` with the input's box, voxel size and origin.

    Raises:
        CryofmInputError: bad inputs (voxel size, NaNs, a box under 16, mismatched halves,
            `anisotropic=True` without half maps).
        Cancelled: when `cancel()` returns True.
    """
    return _restore("denoise", data, half2, mask=mask, voxel_size=voxel_size, sampler=sampler, steps=steps,
                    samples=samples, device=device, seed=seed, prior=prior, independent_halves=independent_halves,
                    progress=progress, cancel=cancel, anisotropic=anisotropic)


def complete_wedge(data, half2=None, *, tilt_range=(-60.0, 60.0), tilt_axis="y", tilt_angles=None, mask=None,
                   voxel_size=None, sampler="dc", steps=None, samples=1, device="auto", seed=0, prior=None,
                   independent_halves=False, progress: ProgressFn = None, cancel: CancelFn = None) -> Restoration:
    """Fill the missing wedge of a tomographic map (beam along z) with the flow prior.

    Args:
        tilt_range: `(min, max)` degrees inside (-90, 90); tilt_axis: "y" (default) or "x";
        tilt_angles: the tilt series' angles (degrees; overrides `tilt_range`), e.g. from
            `cryofm.io.star.read_tilt_angles`.
        The other arguments as in `denoise`.

    Returns:
        `Restoration` with the input's box, voxel size and origin.
    """
    if tilt_angles is not None:
        angles = tuple(float(a) for a in np.asarray(tilt_angles, dtype=np.float64).ravel())
        tilt_range = tilt_range_from_angles(angles)
    else:
        angles = None
        tilt_range = check_tilt_range(tilt_range)
    if tilt_axis not in ("x", "y"):
        raise CryofmInputError(f"tilt_axis must be 'x' or 'y' (the beam runs along z), got {tilt_axis!r}")
    wedge = {"tilt_range": tilt_range, "tilt_axis": tilt_axis, "tilt_angles": angles}
    return _restore("wedge", data, half2, mask=mask, voxel_size=voxel_size, sampler=sampler, steps=steps,
                    samples=samples, device=device, seed=seed, prior=prior, independent_halves=independent_halves,
                    progress=progress, cancel=cancel, wedge=wedge)


def upsample(data, *, factor=None, target_voxel_size=None, mask=None, voxel_size=None, sampler="dc", steps=None,
             samples=1, device="auto", seed=0, prior=None, progress: ProgressFn = None,
             cancel: CancelFn = None) -> Restoration:
    """Restore the spectrum beyond the map's Nyquist on a finer grid (box x factor).

    Args:
        factor: box multiplier (> 1), or target_voxel_size: Angstrom (< the input's); exactly one.
        The other arguments as in `denoise`.

    Returns:
        `Restoration` on the finer grid: voxel size / factor, box x factor, the input's origin.
    """
    vol = as_volume(data, voxel_size, "data")
    if (factor is None) == (target_voxel_size is None):
        raise CryofmInputError("upsample needs exactly one of factor= (e.g. 2) or target_voxel_size= (Angstrom)")
    if factor is not None:
        factor = _as_number(factor, "factor")
        if not (math.isfinite(factor) and factor > 1.0):
            raise CryofmInputError(f"factor must be > 1, got {factor}")
        out_voxel = vol.voxel_size / factor
    else:
        target = _as_number(target_voxel_size, "target_voxel_size")
        if not (math.isfinite(target) and 0 < target < float(vol.voxel_size.min())):
            raise CryofmInputError(
                f"target voxel size must be positive and below the input's {float(vol.voxel_size.min()):.3f} A, got {target}"
            )
        out_voxel = np.full(3, target)
    _check_memory(tuple(int(round(n * v / o)) for n, v, o in zip(vol.shape, vol.voxel_size[::-1], out_voxel[::-1])))
    return _restore("upsample", vol, None, mask=mask, voxel_size=None, sampler=sampler, steps=steps, samples=samples,
                    device=device, seed=seed, prior=prior, independent_halves=False, progress=progress,
                    cancel=cancel, out_voxel=out_voxel)
