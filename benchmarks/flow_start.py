"""Where dc's denoising flow starts: FSC_AUC gain and two scale-aware checks per start time,
`python benchmarks/flow_start.py [--t 0.6,0.8,1.0] [--levels 4.3A,15A] [--quick]`.

FSC is blind to each shell's amplitude, so a start that lets the prior invent detail can gain FSC
while the map gets worse.  Beside the gain this prints, per noise level (the protocol's half maps,
`_protocol.denoise_cases`) and start time `t` (`cryofm.restore.pipeline.DEFAULT_T_START`):
- `corr`: the real-space correlation of the restored map with the truth (whole box);
- `power`: the restored map's power in shells 10-31 (4.8 A and finer) over the truth's, mean of
  the shells (1: the right amplitude; above 1: more detail than the truth has).
Means over the ground truths.  The shipped default is the t these tables favour on both counts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _protocol as P  # noqa: E402

import cryofm  # noqa: E402
from cryofm.fourier import power_spectrum  # noqa: E402

FINE_SHELLS = slice(10, 32)


def measure(out: np.ndarray, truth: np.ndarray, observation: np.ndarray) -> tuple[float, float, float]:
    """(FSC_AUC gain over the observation, real-space correlation, fine-shell power ratio)."""
    gain = P.fsc_auc(out, truth) - P.fsc_auc(observation, truth)
    corr = float(np.corrcoef(out.ravel(), truth.ravel())[0, 1])
    power = np.asarray(power_spectrum(out))[FINE_SHELLS] / np.asarray(power_spectrum(truth))[FINE_SHELLS]
    return gain, corr, float(power.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t", default="0.6,0.8,1.0", help="comma list of start times")
    ap.add_argument("--levels", default=None, help="comma list of noise levels (default: all five)")
    ap.add_argument("--quick", action="store_true", help="2 simulated + 1 real ground truth")
    args = ap.parse_args()
    starts = [float(t) for t in args.t.split(",")]
    freq, curves = P.read_curves()
    levels = args.levels.split(",") if args.levels else list(curves)
    unknown = set(levels) - set(curves)
    if unknown:
        ap.error(f"--levels takes {', '.join(curves)}, got {', '.join(sorted(unknown))}")
    prior = cryofm.load_prior(device="cpu")
    results: dict[tuple[str, float], list[tuple[float, float, float]]] = {}
    for i, gt in enumerate(P.ground_truths(args.quick)):
        for label, h1, h2 in P.denoise_cases(gt.data, i, freq, curves):
            if label not in levels:
                continue
            for t in starts:
                P.override_defaults(t_start=t)
                out = P.restore("denoise", (h1, h2), prior).volume.data
                results.setdefault((label, t), []).append(measure(out, gt.data, (h1 + h2) / 2))
        print(f"  {gt.name} done", file=sys.stderr, flush=True)
    print("| level | dc from t | FSC_AUC gain | corr | power, shells 10-31 |")
    print("|---|---|---|---|---|")
    for label in levels:
        for t in starts:
            gain, corr, power = np.mean(results[(label, t)], axis=0)
            print(f"| {label} | {t:g} | {gain:+.3f} | {corr:.3f} | {power:.2f} |")


if __name__ == "__main__":
    main()
