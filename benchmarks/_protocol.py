"""The restoration benchmark protocol (../shared/bench/PROTOCOL.md), as functions.

Ground truths: 64^3 boxes at 1.5 A, zero mean and unit standard deviation, from the sample maps in
data/ (Fourier-resampled to 1.5 A, cropped around the centre of mass) and from atomic models
outside the training corpus (the validation maps' models) simulated with gemmi (electron form
factors, extra B of 30 A^2), centred in the box.  Degradations, metric and baseline as in the
protocol.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryofm.fourier import (
    auto_mask,
    coloured_noise,
    fourier_crop,
    fourier_pad,
    frequency_grid,
    fsc_curve,
    missing_wedge_mask,
    power_spectrum,
    resample_volume,
    shell_frequencies,
    wiener_average,
    irfftn,
    rfftn,
)
from cryofm.io import read_map

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CURVES = Path(os.environ.get("CRYOFM_BENCH_CURVES", ROOT.parent / "shared" / "bench" / "fsc_curves.csv"))
BOX, VOXEL = 64, 1.5

REAL_MAPS = {
    "emd_3488": DATA / "emd_3488" / "emd_3488.mrc",
    "emd_5168_monomer": DATA / "emd_5168" / "emd_5168_monomer.mrc",
    "emd_2566_crop": DATA / "emd_2566_crop" / "2566_3J6B_9.mrc",
    "emd_21457_segment": DATA / "emd_21457_segment" / "emd_21457_seg.mrc",
}
MODELS = {
    "5me2": DATA / "emd_3488" / "5me2.pdb.gz",
    "3mfp": DATA / "emd_5168" / "3mfp.pdb.gz",
    "3j6b_chain9": DATA / "emd_2566_crop" / "3j6b_chain9.pdb.gz",
    "6vyb_ndom": DATA / "emd_21457_segment" / "6vyb_ndom.pdb.gz",
}
# CryoFM (ICLR 2025), CryoFM-S, 1000 steps: observation and result per SNR level; the wedge
PUBLISHED = {
    "denoise": {"levels": ["3.2A", "4.3A", "6.1A", "8.5A", "15A"],
                "observation": [0.888, 0.553, 0.497, 0.328, 0.201], "cryofm": [0.95, 0.68, 0.62, 0.38, 0.24]},
    "wedge": {"observation": 0.80, "cryofm": 0.92},
    # "anisotropic noise 45/30/15 deg"; the protocol does not define that degradation (see `degrade_preferred`)
    "preferred": {"cones": [45, 30, 15], "observation": [0.662, 0.632, 0.611], "cryofm": [0.88, 0.84, 0.81]},
}
# Preferred orientation (not defined by the protocol; ours): the 3.2 A curve's noise, scaled per
# direction by the inverse coverage of views of which 95 % lie within CONE degrees of the z axis
# and 5 % are uniform.  The uniform share was set so that the 45-degree observation (0.80) lies
# between the published anisotropic observations (0.66) and the isotropic 3.2 A one (0.91), before
# any restoration was run.
PREFERRED_LEVEL, PREFERRED_UNIFORM = "3.2A", 0.05


@dataclass
class GroundTruth:
    name: str
    kind: str  # "map" or "model"
    data: np.ndarray  # [64, 64, 64], zero mean, unit std


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


def _crop_centred(x: np.ndarray, centre: np.ndarray, box: int = BOX) -> np.ndarray:
    """A `box`^3 crop of `x` centred at `centre` (voxels, z y x), padded with the edge median."""
    out = np.full((box,) * 3, float(np.median(x)))
    lo = np.round(centre).astype(int) - box // 2
    src = tuple(slice(max(0, l), min(n, l + box)) for l, n in zip(lo, x.shape))
    dst = tuple(slice(s.start - l, s.stop - l) for s, l in zip(src, lo))
    out[dst] = x[src]
    return out


def real_truth(name: str, path: Path) -> GroundTruth:
    vol = resample_volume(read_map(path), VOXEL)
    x = np.asarray(vol.data, dtype=np.float64)
    weight = np.clip(x - np.median(x), 0, None)
    grids = np.indices(x.shape).reshape(3, -1)
    centre = (grids * weight.ravel()).sum(axis=1) / weight.sum()
    return GroundTruth(name, "map", _standardise(_crop_centred(x, centre)))


def model_truth(name: str, path: Path, b_extra: float = 30.0) -> GroundTruth:
    from cryofm.datasets.simulate import simulate_map

    sim = simulate_map(path, b_extra=b_extra, quaternion=np.array([1.0, 0.0, 0.0, 0.0]), voxel_size=VOXEL)
    x = np.asarray(sim.volume.data, dtype=np.float64)
    centre = sim.atom_voxels.mean(axis=0)
    return GroundTruth(name, "model", _standardise(_crop_centred(x, centre)))


def ground_truths(quick: bool = False) -> list[GroundTruth]:
    models = list(MODELS.items())[:2] if quick else list(MODELS.items())
    maps = list(REAL_MAPS.items())[:1] if quick else list(REAL_MAPS.items())
    return [model_truth(n, p) for n, p in models] + [real_truth(n, p) for n, p in maps]


# --- degradations --------------------------------------------------------------------------
def read_curves(path: Path = CURVES) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`(frequency 1/A, {label: FSC})` from fsc_curves.csv."""
    with open(path) as fh:
        rows = list(csv.reader(fh))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    return values[:, 0], {label: values[:, i] for i, label in enumerate(header) if i > 0}


def curve_on_shells(freq: np.ndarray, curve: np.ndarray, shell_freq: np.ndarray) -> np.ndarray:
    """The curve at the box's shell frequencies: 1 below the first point, 0 past the last,
    linear in between, clipped to [1e-3, 1 - 1e-6]."""
    f = np.interp(shell_freq, freq, curve, left=1.0, right=0.0)
    f[shell_freq > freq[-1]] = 0.0
    return np.clip(f, 1e-3, 1 - 1e-6)


def degrade_denoise(x: np.ndarray, freq, curve, rng: np.random.Generator,
                    voxel_size: float = VOXEL) -> tuple[np.ndarray, np.ndarray]:
    """Two half maps `x + n_i` (`x` at `voxel_size` A), the noise coloured so that the expected
    FSC follows `curve`."""
    signal = np.asarray(power_spectrum(x))
    fsc = curve_on_shells(freq, curve, np.asarray(shell_frequencies(x.shape, voxel_size)))
    noise = signal * (1 - fsc) / fsc
    seeds = rng.integers(0, 2**31, size=2)
    return tuple(x + np.asarray(coloured_noise(x.shape, noise, seed=int(s))) for s in seeds)  # type: ignore[return-value]


def denoise_cases(x: np.ndarray, index: int, freq, curves: dict[str, np.ndarray]):
    """`(label, h1, h2)` for every FSC curve, the draws of ground truth number `index` (seeded
    `1000 + index`, curves in file order), so every script sees the same half maps."""
    rng = np.random.default_rng(1000 + index)
    for label, curve in curves.items():
        yield (label, *degrade_denoise(x, freq, curve, rng))


def view_coverage(shape, cone_deg: float) -> np.ndarray:
    """Per rfft component of `shape`: how densely central sections sample its direction when the
    views are spread uniformly within `cone_deg` of the z axis, relative to uniform views (mean 1
    over directions).  A direction at polar angle a from k_z lies on the sections of views
    perpendicular to it; those within the cone form two arcs of half-angle arccos(cos(cone) /
    sin(a)), none when 90 - a > cone (the missing cone of top views)."""
    fz, fy, fx = (np.asarray(f) for f in frequency_grid(shape))
    k2 = np.broadcast_to(fz**2 + fy**2 + fx**2, (fz.shape[0], fy.shape[1], fx.shape[2]))
    sin_a = np.sqrt(np.clip((fy**2 + fx**2) / np.where(k2 > 0, k2, 1.0), 0.0, 1.0))
    cos_cone = np.cos(np.radians(cone_deg))
    with np.errstate(divide="ignore", invalid="ignore"):
        arc = np.where(sin_a > cos_cone, np.arccos(np.clip(cos_cone / sin_a, -1.0, 1.0)), 0.0)
    return np.where(k2 > 0, 2.0 * arc / (np.pi * (1.0 - cos_cone)), 1.0)


def degrade_preferred(x: np.ndarray, freq, curve, rng: np.random.Generator, cone_deg: float,
                      uniform: float = PREFERRED_UNIFORM) -> tuple[np.ndarray, np.ndarray]:
    """Two half maps of a preferred orientation: `degrade_denoise`'s noise with each component's
    power divided by the views' coverage of its direction, `uniform + (1 - uniform) view_coverage`
    (so the noise is that of the same number of particles, badly spread)."""
    h1, h2 = degrade_denoise(x, freq, curve, rng)
    scale = 1.0 / np.sqrt(uniform + (1.0 - uniform) * view_coverage(x.shape, cone_deg))
    return tuple(x + np.asarray(irfftn(np.asarray(rfftn(h - x)) * scale, x.shape)) for h in (h1, h2))  # type: ignore[return-value]


def preferred_cases(x: np.ndarray, index: int, freq, curves: dict[str, np.ndarray]):
    """`(label, h1, h2)` for each cone of `PUBLISHED["preferred"]`, seeded `3000 + index`."""
    for cone in PUBLISHED["preferred"]["cones"]:
        rng = np.random.default_rng(3000 + index)
        yield (f"preferred {cone}", *degrade_preferred(x, freq, curves[PREFERRED_LEVEL], rng, cone))


def restore(task: str, degraded, prior, *, sampler: str = "dc", device: str = "cpu", steps: int | None = None,
            samples: int = 1, tilt_range=(-60.0, 60.0), anisotropic: bool | None = None):
    """Restore one degraded case as every benchmark script does (seed 0, the pipeline's defaults
    otherwise): `degraded` is `(h1, h2)` for "denoise", the wedged map for "wedge" (measured over
    `tilt_range`), the 3.0 A map for "upsample"; `samples` > 1 gives the mean of that many
    posterior samples; `anisotropic` as `cryofm.denoise`'s.  Returns the `cryofm` `Restoration`."""
    import cryofm

    kw = dict(prior=prior, device=device, sampler=sampler, steps=steps, seed=0, samples=samples)
    if task == "denoise":
        return cryofm.denoise(degraded[0], degraded[1], voxel_size=VOXEL, anisotropic=anisotropic, **kw)
    if task == "wedge":
        return cryofm.complete_wedge(degraded, voxel_size=VOXEL, tilt_range=tuple(tilt_range), **kw)
    if task == "upsample":
        return cryofm.upsample(degraded, voxel_size=2 * VOXEL, factor=2, **kw)
    raise ValueError(f"task must be denoise, wedge or upsample, got {task!r}")


def override_defaults(*, error_scale: float | None = None, t_start: float | None = None,
                      tasks=("denoise",), support_iters: int | None = None, posterior_eta: float | None = None) -> None:
    """Replace the pipeline's defaults in this process (benchmark scans only; a CLI subprocess keeps
    them): dc's error scale, where dc's flow starts for each of `tasks`, the wedge's CG iterations,
    dc's fresh noise per step for posterior samples (`eta`) for each of `tasks`.  None leaves a
    default as it is."""
    import cryofm.restore.pipeline as pipeline
    import cryofm.restore.support as support

    if error_scale is not None:
        pipeline.DETERMINISTIC_ERROR_SCALE = float(error_scale)
    if t_start is not None:
        for task in tasks:
            pipeline.DEFAULT_T_START[(task, "dc")] = float(t_start)
    if support_iters is not None:
        support.ITERS = int(support_iters)
    if posterior_eta is not None:
        for task in tasks:
            pipeline.POSTERIOR_ETA[(task, "dc")] = float(posterior_eta)


def degrade_wedge(x: np.ndarray, tilt_range=(-60.0, 60.0)) -> np.ndarray:
    """Keep the Fourier components within the tilt range about y (beam along z)."""
    return np.asarray(irfftn(rfftn(x) * np.asarray(missing_wedge_mask(x.shape, tilt_range)), x.shape))


def degrade_upsample(x: np.ndarray) -> np.ndarray:
    """Fourier-crop the 1.5 A map to 3.0 A (32^3)."""
    return np.asarray(fourier_crop(x, tuple(s // 2 for s in x.shape)))


# --- metric and baseline --------------------------------------------------------------------
def fsc_auc(a: np.ndarray, truth: np.ndarray) -> float:
    """Mean FSC over shells 1 .. n/2 - 1 against the ground truth, full box, no mask."""
    curve = np.asarray(fsc_curve(np.asarray(a, dtype=np.float64), np.asarray(truth, dtype=np.float64)))
    return float(np.mean(curve[1:]))


def correlation_beyond(a: np.ndarray, truth: np.ndarray, band_shape) -> float:
    """Fourier correlation with the truth over the components a grid of `band_shape` (same box)
    cannot hold (|k| beyond its Nyquist on some axis): the spectrum an upsampling had to invent."""
    fa, ft = np.asarray(rfftn(np.asarray(a, np.float64))), np.asarray(rfftn(np.asarray(truth, np.float64)))
    k = [np.abs(np.fft.fftfreq(n, 1.0 / n)) for n in truth.shape[:2]] + [np.arange(truth.shape[2] // 2 + 1)]
    inside = (2 * k[0][:, None, None] <= band_shape[0]) & (2 * k[1][None, :, None] <= band_shape[1]) \
        & (2 * k[2][None, None, :] <= band_shape[2])
    out = ~inside
    num = np.real(np.sum(fa[out] * np.conj(ft[out])))
    den = np.sqrt(np.sum(np.abs(fa[out]) ** 2) * np.sum(np.abs(ft[out]) ** 2))
    return float(num / den) if den > 0 else 0.0


def masked(x: np.ndarray, voxel_size: float = VOXEL) -> np.ndarray:
    """`x` (at `voxel_size` A) times an automatic soft solvent mask."""
    return x * np.asarray(auto_mask(x, voxel_size), dtype=np.float64)


def baseline_denoise(h1: np.ndarray, h2: np.ndarray, voxel_size: float = VOXEL) -> np.ndarray:
    """The FSC-weighted Wiener average of the halves times an automatic soft solvent mask."""
    return masked(np.asarray(wiener_average(h1, h2), dtype=np.float64), voxel_size)


def padded(coarse: np.ndarray, shape=(BOX,) * 3) -> np.ndarray:
    return np.asarray(fourier_pad(coarse, shape), dtype=np.float64)
