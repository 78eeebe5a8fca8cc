"""Quality of the prior's one-step estimate x_hat against the oracle Wiener filter.

For t in {0.2, 0.4, 0.6, 0.8}: MSE(x_hat, x) / MSE(oracle Wiener, x), where the oracle knows each
clean patch's own per-shell power spectrum (see cryofm/prior/_quality.py).  Below 1 means the
model knows more than the spectrum.  Columns: simulated patches of held-out entries (split=1 of
the patch store), and real maps (`--maps`; default EMD-3488 and EMD-5168), resampled to 1.5 A,
64^3 crops around the centre of mass.  Also writes central slices of unconditional samples and
their radially averaged power spectrum beside the training data's.

    python benchmarks/prior_quality.py                       # shipped weights
    python benchmarks/prior_quality.py --model runs/default  # latest checkpoint's EMA weights
    python benchmarks/prior_quality.py --maps data/emd_2566_crop/2566_3J6B_9.mrc ...  # other real maps
    python benchmarks/prior_quality.py --network-only        # x_hat without the SURE refinement
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAPS = (ROOT / "data" / "emd_3488" / "emd_3488.mrc", ROOT / "data" / "emd_5168" / "emd_5168.map")


def load_any(model: str | None):
    from cryofm.prior import load_prior

    if model is None:
        return load_prior()
    p = Path(model)
    if p.is_dir():
        from cryofm.training.export import prior_from_checkpoint

        return prior_from_checkpoint(p)
    return load_prior(p)


def held_out_patches(store: Path, count: int) -> torch.Tensor:
    from cryofm.datasets import SPLIT_VALIDATION, PatchStore
    from cryofm.prior import standardize

    s = PatchStore(store)
    idx = s.indices(SPLIT_VALIDATION)
    # spread over entries: every k-th validation patch
    pick = idx[np.linspace(0, len(idx) - 1, count).round().astype(int)]
    return torch.stack([torch.from_numpy(standardize(s.patches[int(i)].astype(np.float32))[0]) for i in pick])


def table(results: dict, counts: dict) -> str:
    cols = list(results)
    head = "| t | " + " | ".join(f"{c} (n={counts[c]})" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for k, t in enumerate(results[cols[0]].t):
        lines.append(f"| {t:.1f} | " + " | ".join(f"{results[c].ratio[k]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def images(prior, store: Path | None, out: Path, samples: int, steps: int, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cryofm.prior._spectrum import shell_power
    from cryofm.sampling import sample_prior

    xs = sample_prior(prior, samples, box=64, steps=steps, solver="heun", seed=seed, batch=samples)[:, 0]
    power = shell_power(xs).mean(0)
    skew = float(((xs - xs.mean()) ** 3).mean() / xs.std() ** 3)
    print(f"\nsamples: finite {bool(torch.isfinite(xs).all())}; mean power per component at shells 1, 2, 4, 8, 16, 31: "
          + ", ".join(f"{float(power[k]):.3g}" for k in (1, 2, 4, 8, 16, 31)) + f"; skewness {skew:.2f}")
    fig, axes = plt.subplots(1, samples, figsize=(3 * samples, 3))
    for ax, x in zip(np.atleast_1d(axes), xs):
        ax.imshow(x[32].numpy(), cmap="gray")
        ax.set_axis_off()
    fig.suptitle(f"unconditional samples, central z slices (64^3 at 1.5 A, Heun {steps} steps)")
    fig.tight_layout()
    fig.savefig(out / "prior_samples.png", dpi=100)
    plt.close(fig)
    freq = np.arange(1, 32) / (64 * prior.voxel_size)  # shell 0 (the mean) is 0 after standardisation
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(freq, shell_power(xs).mean(0).numpy()[1:], label=f"samples (n={samples})")
    if store is not None and store.exists():
        from cryofm.datasets import SPLIT_TRAIN, PatchStore
        from cryofm.prior import standardize

        s = PatchStore(store)
        idx = s.indices(SPLIT_TRAIN)
        pick = idx[np.linspace(0, len(idx) - 1, 32).round().astype(int)]
        data = torch.stack([torch.from_numpy(standardize(s.patches[int(i)].astype(np.float32))[0]) for i in pick])
        ax.semilogy(freq, shell_power(data).mean(0).numpy()[1:], label="training patches (n=32)")
    ax.set_xlabel("spatial frequency (1/A)")
    ax.set_ylabel("mean power per shell (standardised)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "prior_spectrum.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="weights .safetensors, a run/checkpoint folder; default shipped")
    ap.add_argument("--store", default=str(ROOT / "runs" / "corpus.zarr"), help="patch store with split=1 patches")
    ap.add_argument("--patches", type=int, default=12, help="held-out simulated patches")
    ap.add_argument("--map-patches", type=int, default=2, help="crops per EMDB map")
    ap.add_argument("--draws", type=int, default=2, help="noise draws per patch")
    ap.add_argument("--maps", nargs="+", default=[str(p) for p in DEFAULT_MAPS],
                    help="real maps, one column each (default: EMD-3488 and EMD-5168); maps smaller than "
                         "64^3 at 1.5 A are zero-padded, which makes them easier")
    ap.add_argument("--samples", type=int, default=0, help="unconditional samples for the PNGs (0: none)")
    ap.add_argument("--steps", type=int, default=20, help="Heun steps for the samples")
    ap.add_argument("--images", default=str(ROOT / "docs" / "images"), help="folder for the PNGs")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network-only", action="store_true",
                    help="x_hat of the network alone, without the per-shell SURE refinement (cryofm.prior.sure)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from cryofm.prior._quality import map_patches, mse_ratio

    t0 = time.time()
    prior = load_any(args.model)
    prior.refine = not args.network_only
    sets = {}
    store = Path(args.store)
    if store.exists() and args.patches > 0:
        sets["simulated held-out"] = held_out_patches(store, args.patches)
    else:
        print(f"note: no patch store at {store}; skipping the simulated column", file=sys.stderr)
    for path in args.maps:
        sets[Path(path).stem] = map_patches(path, count=args.map_patches)
    results, counts = {}, {}
    for name, x in sets.items():
        results[name] = mse_ratio(prior, x, seed=args.seed, draws=args.draws)
        counts[name] = f"{len(x)}x{args.draws}"
    steps = prior.metadata.get("trained_steps", "?")
    what = "the network alone" if args.network_only else "network + per-shell SURE refinement"
    print(f"MSE(x_hat) / MSE(oracle Wiener), model {args.model or 'shipped'} ({steps} steps), {what}; "
          f"n = patches x noise draws\n")
    print(table(results, counts))
    if args.json:
        Path(args.json).write_text(json.dumps({k: vars(v) for k, v in results.items()}, indent=1))
    if args.samples:
        out = Path(args.images)
        out.mkdir(parents=True, exist_ok=True)
        images(prior, store, out, args.samples, args.steps, args.seed)
        print(f"\nwrote {out / 'prior_samples.png'} and {out / 'prior_spectrum.png'}")
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
