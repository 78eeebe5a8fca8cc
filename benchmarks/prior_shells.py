"""Where a prior's one-step error sits, shell by shell, on one real map (the diagnosis behind the
model card): the map's mean power per component along the shells, then for t in {0.2, 0.4, 0.8}
the error power of the model's x_hat and of the oracle Wiener filter summed over bands of shells.

    python benchmarks/prior_shells.py data/emd_5168/emd_5168.map [--model runs/default_maplike]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prior_quality import load_any  # noqa: E402

BANDS = ((0, 3), (3, 6), (6, 10), (10, 16), (16, 24), (24, 32))  # shells to Nyquist (corners: none)


def main(argv=None) -> int:
    from cryofm.fourier import shell_sum
    from cryofm.prior._quality import map_patches, oracle_wiener

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("map", help="an MRC map (resampled to 1.5 A; one 64^3 crop at its centre of mass)")
    ap.add_argument("--model", default=None, help="weights .safetensors or a run folder; default shipped")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    prior = load_any(args.model)
    x = map_patches(args.map, count=1).double()
    shape = tuple(x.shape[-3:])

    def power(a: torch.Tensor) -> torch.Tensor:  # per-shell power of a [1, n, n, n] batch (full space)
        f = torch.fft.rfftn(a, dim=(-3, -2, -1), norm="ortho")
        return shell_sum(f.real**2 + f.imag**2, shape)[0]

    signal = power(x)
    count = shell_sum(torch.ones(shape[0], shape[1], shape[2] // 2 + 1, dtype=torch.float64), shape)
    print("mean power per component, every 2nd shell from 0:")
    print(" ".join(f"{float(signal[k] / count[k]):.2g}" for k in range(0, min(40, len(signal)), 2)))
    for t in (0.2, 0.4, 0.8):
        e = torch.randn(x.shape, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float64)
        xt = (1 - t) * x + t * e
        with torch.no_grad():
            xh = prior.x_hat(xt[:, None].float(), t)[:, 0].double()
        em, ew = power(xh - x), power(oracle_wiener(x, xt, t).double() - x)
        print(f"\nt = {t}: ratio {float(em.sum() / ew.sum()):.2f}")
        print("| shells | wavelengths | map power | model error | Wiener error |\n|---|---|---|---|---|")
        for lo, hi in BANDS:
            print(f"| {lo}-{hi} | > {shape[0] * prior.voxel_size / hi:.1f} A | {float(signal[lo:hi].sum()):.0f} "
                  f"| {float(em[lo:hi].sum()):.0f} | {float(ew[lo:hi].sum()):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
