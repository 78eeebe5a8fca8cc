"""Restoration benchmark: `python benchmarks/restore.py [--quick]`.

Runs the protocol of ../shared/bench/PROTOCOL.md (see `_protocol.py`) on ground truths from the
maps in data/ and from atomic models outside the training corpus, and prints one table: FSC_AUC
of the observation, of the masked-Wiener baseline, of cryofm's `fps` and `dc` samplers, and
CryoFM's published numbers beside; then seconds per map, peak memory, and the wall time of
`cryofm denoise data/emd_3488/emd_3488.mrc` with default settings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _protocol as P  # noqa: E402

import cryofm  # noqa: E402
import cryofm.restore.pipeline as pipeline  # noqa: E402
import cryofm.restore.support as support  # noqa: E402


TASKS = ("denoise", "wedge", "upsample", "preferred")
DEFAULT_TASKS = ("denoise", "wedge", "upsample")


def run(quick: bool, samplers: list[str], prior, device: str, steps: dict[str, int | None],
        tasks: tuple[str, ...] = DEFAULT_TASKS, wedge_noise: float = 0.0, samples: int = 1,
        wedge_tilt: float | None = None, anisotropic: bool | None = None) -> dict:
    freq, curves = P.read_curves()
    truths = P.ground_truths(quick)
    rows: dict[str, dict[str, list[float]]] = {}
    beyond: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}  # "sampler task" -> seconds per map
    calibration: dict[str, list[tuple[float, float]]] = {}  # "sampler case" -> uncertainty_check per map
    anisotropy: dict[str, list[tuple[float, bool]]] = {}  # case -> the half maps' anisotropy test per map
    for i, gt in enumerate(truths):
        cases = []
        if "denoise" in tasks:
            for label, h1, h2 in P.denoise_cases(gt.data, i, freq, curves):
                cases.append((f"denoise {label}", "denoise", (h1, h2), (h1 + h2) / 2, P.baseline_denoise(h1, h2)))
        if "preferred" in tasks:  # beyond the protocol's definitions: preferred orientations
            for label, h1, h2 in P.preferred_cases(gt.data, i, freq, curves):
                cases.append((label, "denoise", (h1, h2), (h1 + h2) / 2, P.baseline_denoise(h1, h2)))
        if "wedge" in tasks:
            w = P.degrade_wedge(gt.data)
            cases.append(("wedge +-60", "wedge", w, w, P.masked(w)))
            if wedge_noise > 0:  # beyond the protocol: white noise of this sd, then the wedge
                noisy = gt.data + wedge_noise * np.random.default_rng(2000 + i).standard_normal(gt.data.shape)
                w = P.degrade_wedge(noisy)
                cases.append((f"wedge sd {wedge_noise:g}", "wedge", w, w, P.masked(w)))
            if wedge_tilt is not None:  # beyond the protocol: a narrower (or wider) tilt range
                w = P.degrade_wedge(gt.data, (-wedge_tilt, wedge_tilt))
                cases.append((f"wedge +-{wedge_tilt:g}", "wedge", w, w, P.masked(w)))
        if "upsample" in tasks:
            c = P.degrade_upsample(gt.data)
            cases.append(("upsample x2", "upsample", c, P.padded(c), P.masked(P.padded(c))))
        for name, task, degraded, obs, base in cases:
            row = rows.setdefault(name, {"observation": [], "baseline": [], **{s: [] for s in samplers}})
            row["observation"].append(P.fsc_auc(obs, gt.data))
            row["baseline"].append(P.fsc_auc(base, gt.data))
            for s in samplers:
                t0 = time.perf_counter()
                tilt = (-wedge_tilt, wedge_tilt) if wedge_tilt is not None and name == f"wedge +-{wedge_tilt:g}" else (-60, 60)
                restored = P.restore(task, degraded, prior, sampler=s, device=device, steps=steps[s], samples=samples,
                                     tilt_range=tilt, anisotropic=anisotropic)
                seconds.setdefault(f"{s} {task}", []).append(time.perf_counter() - t0)
                out = restored.volume.data
                if "noise_anisotropy" in restored.report and s == samplers[0]:
                    test = restored.report["noise_anisotropy"]
                    anisotropy.setdefault(name, []).append((test["chi2_per_dof"], test["used"]))
                if restored.std is not None:  # posterior samples: does the std map tell where the errors are?
                    calibration.setdefault(f"{s} {name}", []).append(uncertainty_check(out, restored.std.data, gt.data))
                row[s].append(P.fsc_auc(out, gt.data))
                if task == "upsample":  # the spectrum beyond the input's Nyquist, which the data lack
                    beyond.setdefault(s, []).append(P.correlation_beyond(out, gt.data, degraded.shape))
            print(f"  {gt.name:18s} {name:14s} " + " ".join(f"{k}={v[-1]:.3f}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return {"truths": [g.name for g in truths], "kinds": [g.kind for g in truths], "rows": rows, "seconds": seconds, "calibration": calibration, "upsample_beyond_nyquist": beyond, "anisotropy": anisotropy}


def published(name: str) -> str:
    if name.startswith("denoise"):
        levels = P.PUBLISHED["denoise"]["levels"]
        k = levels.index(name.split()[1])
        obs, res = P.PUBLISHED["denoise"]["observation"][k], P.PUBLISHED["denoise"]["cryofm"][k]
        return f"{obs:.3f} -> {res:.2f} ({res - obs:+.2f})"
    if name.startswith("preferred"):  # CryoFM's anisotropic noise at that angle: another degradation
        k = P.PUBLISHED["preferred"]["cones"].index(int(name.split()[1]))
        obs, res = P.PUBLISHED["preferred"]["observation"][k], P.PUBLISHED["preferred"]["cryofm"][k]
        return f"({obs:.3f} -> {res:.2f} ({res - obs:+.2f}))"
    if name == "wedge +-60":
        obs, res = P.PUBLISHED["wedge"]["observation"], P.PUBLISHED["wedge"]["cryofm"]
        return f"{obs:.2f} -> {res:.2f} ({res - obs:+.2f})"
    return "-"


def table(result: dict, samplers: list[str]) -> str:
    head = ["case", "observation", "masked Wiener"] + [f"cryofm {s}" for s in samplers] + ["CryoFM published"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["rows"].items():
        obs = np.mean(row["observation"])
        cells = [name, f"{obs:.3f}", f"{np.mean(row['baseline']):.3f} ({np.mean(row['baseline']) - obs:+.3f})"]
        cells += [f"{np.mean(row[s]):.3f} ({np.mean(row[s]) - obs:+.3f})" for s in samplers]
        lines.append("| " + " | ".join(cells + [published(name)]) + " |")
    return "\n".join(lines)


def uncertainty_check(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """How well the per-voxel std of K posterior samples describes the mean's error: the correlation
    of |mean - truth| with std over the box, and mean (mean - truth)^2 / mean std^2 (1 + 1/K for
    samples from the true posterior; larger: the std understates the error)."""
    err = np.asarray(mean, np.float64) - truth
    std = np.asarray(std, np.float64)
    return float(np.corrcoef(np.abs(err).ravel(), std.ravel())[0, 1]), float(np.mean(err**2) / np.mean(std**2))


def gains_by_kind(result: dict, samplers: list[str]) -> str:
    """Per case, each sampler's mean gain over the observation on the simulated truths and on the
    real maps separately (the table's mean pools them)."""
    kinds = np.asarray(result["kinds"])
    lines = []
    for name, row in result["rows"].items():
        gain = {s: np.asarray(row[s]) - np.asarray(row["observation"]) for s in samplers}
        parts = [f"{s} simulated {np.mean(g[kinds == 'model']):+.3f}, real maps {np.mean(g[kinds == 'map']):+.3f}"
                 for s, g in gain.items() if (kinds == "model").any() and (kinds == "map").any()]
        if parts:
            lines.append(f"{name}: " + "; ".join(parts))
    return "\n".join(lines)


def time_cli_default(map_path: Path) -> float:
    """Wall time of `cryofm denoise MAP` (defaults) on a copy of the map in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / map_path.name
        shutil.copy(map_path, src)
        exe = Path(sys.executable).with_name("cryofm")
        cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "cryofm"]), "denoise", str(src)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t0


class RefinedForSamplers:
    """A prior as a bare model-contract object whose `velocity` is the SURE-refined one: the samplers
    ask a `Prior` for the network alone (`refine=False`) but call a contract object's `velocity` as
    it is, so `--refined-samplers` measures what the refinement would do to restoration."""

    def __init__(self, prior) -> None:
        self._prior = prior

    def __getattr__(self, name: str):
        if name == "refine":  # no switch to offer: the samplers take `velocity` as it is
            raise AttributeError(name)
        return getattr(self._prior, name)

    def velocity(self, x, t):
        return self._prior.velocity(x, t, refine=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 simulated + 1 real ground truth")
    parser.add_argument("--model", default=None, help="prior weights (default: the shipped model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samplers", default="fps,dc")
    parser.add_argument("--steps-dc", type=int, default=None)
    parser.add_argument("--steps-fps", type=int, default=None)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                        help="comma list of denoise, wedge, upsample, and preferred (half maps of a preferred "
                             "orientation, views within 45/30/15 degrees of z: not in the protocol, see _protocol.py)")
    parser.add_argument("--noise-model", choices=("auto", "isotropic", "anisotropic"), default="auto",
                        help="denoising's noise model (cryofm.denoise's anisotropic= None, False, True)")
    parser.add_argument("--wedge-noise", type=float, default=0.0,
                        help="also a wedge case with white noise of this sd added before the wedge (not in the protocol)")
    parser.add_argument("--wedge-tilt", type=float, default=None,
                        help="also a wedge case measured over +-this many degrees (not in the protocol)")
    parser.add_argument("--error-scale", type=float, default=None,
                        help="dc's factor on the prior's error table for one sample (default: "
                             "cryofm.restore.pipeline.DETERMINISTIC_ERROR_SCALE)")
    parser.add_argument("--t-start-dc", type=float, default=None,
                        help="where dc's flow starts, for every task run (default: "
                             "cryofm.restore.pipeline.DEFAULT_T_START per task)")
    parser.add_argument("--support-iters", type=int, default=None,
                        help="conjugate-gradient iterations of the wedge's support fits (default: "
                             "cryofm.restore.support.ITERS)")
    parser.add_argument("--no-cli-timing", action="store_true")
    parser.add_argument("--refined-samplers", action="store_true",
                        help="the samplers call the prior's SURE-refined velocity instead of the network alone "
                             "(an experiment: cryofm.prior.sure; the CLI timing keeps the shipped behaviour)")
    parser.add_argument("--samples", type=int, default=1,
                        help="restore the mean of K posterior samples instead of one (the default) flow")
    parser.add_argument("--posterior-eta", type=float, default=None,
                        help="dc's fresh noise per step for posterior samples, for every task run (the "
                             "pipeline's POSTERIOR_ETA; the SURE refinement applies only at 1)")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    args = parser.parse_args()

    samplers = [s for s in args.samplers.split(",") if s]
    tasks = tuple(t for t in args.tasks.split(",") if t)
    if not set(tasks) <= set(TASKS):
        parser.error(f"--tasks takes {', '.join(TASKS)}, got {args.tasks}")
    # overrides of the pipeline's defaults (the CLI timing runs in a subprocess and keeps them)
    P.override_defaults(error_scale=args.error_scale, t_start=args.t_start_dc, tasks=tasks,
                        support_iters=args.support_iters, posterior_eta=args.posterior_eta)
    prior = cryofm.load_prior(args.model, device="cpu")
    if args.refined_samplers:
        prior = RefinedForSamplers(prior)
    t0 = time.perf_counter()
    result = run(args.quick, samplers, prior, args.device, {"dc": args.steps_dc, "fps": args.steps_fps}, tasks,
                 args.wedge_noise, args.samples, args.wedge_tilt,
                 {"auto": None, "isotropic": False, "anisotropic": True}[args.noise_model])
    result["total_seconds"] = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nground truths ({len(result['truths'])}): {', '.join(result['truths'])}")
    print(f"prior: {args.model or 'shipped'} ({getattr(prior, 'error_power_source', '?')} error power"
          f"{'; samplers on the SURE-refined velocity' if args.refined_samplers else ''}); "
          f"device {args.device}; steps dc={args.steps_dc or 'default'} fps={args.steps_fps or 'default'}; "
          f"dc from t={args.t_start_dc if args.t_start_dc is not None else 'default'}; "
          f"error scale {pipeline.DETERMINISTIC_ERROR_SCALE:g}; support CG iterations {support.ITERS}; "
          f"samples {args.samples}; noise model {args.noise_model}" + (f" (dc eta per task: {pipeline.POSTERIOR_ETA})" if args.samples > 1 else "")
          + "\n")
    print(table(result, samplers))
    print(gains_by_kind(result, samplers))
    for key, values in result["calibration"].items():
        corr, ratio = np.mean(np.asarray(values), axis=0)
        print(f"uncertainty, {key}: corr(|mean - truth|, std) {corr:.3f}; mean squared error / mean std^2 {ratio:.2f} "
              f"({1 + 1 / args.samples:.2f} for calibrated samples)")
    for case, values in result["anisotropy"].items():
        chi2 = [v[0] for v in values]
        print(f"noise anisotropy test, {case}: chi-square per dof {min(chi2):.2f}-{max(chi2):.2f}; directional model "
              f"used for {sum(v[1] for v in values)} of {len(values)} maps")
    for s, values in result["upsample_beyond_nyquist"].items():
        print(f"upsample x2 ({s}): Fourier correlation with the truth beyond the input's Nyquist "
              f"{np.mean(values):.3f} (min {np.min(values):.3f}; the Fourier-padded input has ~0 there)")
    print()
    for s in samplers:
        mine = {k.split()[1]: v for k, v in result["seconds"].items() if k.split()[0] == s}
        per_task = ", ".join(f"{task} {np.mean(v):.1f}" for task, v in mine.items())
        medians = ", ".join(f"{task} {np.median(v):.1f}" for task, v in mine.items())
        print(f"seconds per map ({s}): {np.mean(np.concatenate(list(mine.values()))):.1f} ({per_task}; 64^3 box; "
              f"CPU cores: {os.cpu_count()}); median {medians} (a shared machine's stalls move the mean)")
    print(f"peak memory (maxrss): {peak_mb:.0f} MB")
    try:
        import torch

        if torch.cuda.is_available():
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
    except ImportError:
        pass
    if not args.no_cli_timing:
        secs = time_cli_default(P.DATA / "emd_3488" / "emd_3488.mrc")
        result["cli_default_denoise_emd_3488_seconds"] = secs
        print(f"`cryofm denoise data/emd_3488/emd_3488.mrc` (defaults): {secs:.1f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
