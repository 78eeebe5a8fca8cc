"""How wrong the prior's error table is inside the deterministic `dc` flow.

`python benchmarks/dc_error.py [--label 15A] [--truth 5me2] [--error-scale S] [--t-start T]` denoises one
benchmark ground truth (the protocol's half maps at one FSC curve) with the default `dc` sampler
and prints, per shell and for every step, the power of `x_hat - x` (normalised units) beside the
table `E_t` the sampler weighs `x_hat` by (times the error scale in use), with the truth's signal
power `S` and the data's noise power `N`.  Scratch-free source of the figures quoted for
`cryofm.restore.pipeline.DETERMINISTIC_ERROR_SCALE`.
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

SHELLS = [2, 4, 6, 8, 10, 12, 16, 24, 31]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="15A", help="FSC curve of the protocol (3.2A ... 15A)")
    ap.add_argument("--truth", default="5me2", help="benchmark ground truth name")
    ap.add_argument("--error-scale", type=float, default=None, help="override the dc error scale")
    ap.add_argument("--t-start", type=float, default=None, help="override where denoising's dc flow starts")
    ap.add_argument("--quick", action="store_true", help="only the quick ground truths")
    args = ap.parse_args(argv)
    P.override_defaults(error_scale=args.error_scale, t_start=args.t_start)
    prior = cryofm.load_prior(device="cpu")
    freq, curves = P.read_curves()
    truths = P.ground_truths(args.quick)
    index = [gt.name for gt in truths].index(args.truth)
    gt = truths[index]
    if args.label not in curves:
        raise SystemExit(f"no curve {args.label!r}; choose one of {list(curves)}")
    _, h1, h2 = next(case for case in P.denoise_cases(gt.data, index, freq, curves) if case[0] == args.label)
    seen: list[tuple[float, np.ndarray]] = []
    velocity = prior.velocity

    def recording(x, t, **kwargs):  # the samplers ask for refine=False (the network alone)
        v = velocity(x, t, **kwargs)
        seen.append((float(t[0]), (x - t.view(-1, 1, 1, 1, 1) * v)[0, 0].double().numpy()))
        return v

    prior.velocity = recording
    result = P.restore("denoise", (h1, h2), prior)
    extra = result.report.get("extra", result.report)
    stats = extra["normalization"]
    scale = result.report["settings"]["error_scale"]
    truth = (gt.data - stats["mean"]) / stats["std"]
    noise = np.asarray(extra["noise_power_prior_grid"]) / stats["std"] ** 2
    print(f"{gt.name}, denoise {args.label}: FSC_AUC {P.fsc_auc(result.volume.data, gt.data):.4f} "
          f"(observation {P.fsc_auc((h1 + h2) / 2, gt.data):.4f}); error scale {scale:g}")
    print("shell        " + " ".join(f"{s:>8d}" for s in SHELLS))
    print("S            " + " ".join(f"{v:8.3f}" for v in np.asarray(power_spectrum(truth))[SHELLS]))
    print("N            " + " ".join(f"{v:8.3f}" for v in noise[SHELLS]))
    for t, x_hat in seen:
        err = np.asarray(power_spectrum(x_hat - truth))[SHELLS]
        table = np.asarray(prior.error_power(t))[SHELLS]
        print(f"t={t:.2f} x_hat " + " ".join(f"{v:8.3f}" for v in err))
        print(f"       E_t   " + " ".join(f"{v:8.3f}" for v in table) + "   (table, unscaled)")


if __name__ == "__main__":
    main()
