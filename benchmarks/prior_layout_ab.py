"""A/B of the convolution memory layout in a 64^3 forward pass, interleaved in one process so that
the machine's drift hits both alike: `python benchmarks/prior_layout_ab.py [--rounds 8]`.

`channels_last`: the shipped `cryofm.prior.unet.Conv3d` (channels-last where no gradient flows);
`contiguous`: the same oneDNN convolution on contiguous (NCDHW) tensors, as before.
"""

from __future__ import annotations

import argparse
import time

import torch

import cryofm.prior.unet as unet
from cryofm.prior import load_prior


def _contiguous(self, input, weight, bias):  # noqa: A002 - torch's signature
    return torch.mkldnn_convolution(input.contiguous(), weight, bias, list(self.padding), list(self.stride),
                                    list(self.dilation), self.groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    prior = load_prior(device="cpu")
    x = torch.randn(1, 1, 64, 64, 64)
    shipped = unet.Conv3d._conv_forward
    times: dict[str, list[float]] = {"channels_last": [], "contiguous": []}
    try:
        for _ in range(args.rounds):
            for name, forward in (("channels_last", shipped), ("contiguous", _contiguous)):
                unet.Conv3d._conv_forward = forward
                prior.velocity(x, 0.5)  # warm-up of this layout's oneDNN primitives
                t0 = time.perf_counter()
                prior.velocity(x, 0.5)
                times[name].append(time.perf_counter() - t0)
    finally:
        unet.Conv3d._conv_forward = shipped
    for name, ts in times.items():
        ts.sort()
        print(f"{name:14s} 64^3 forward: best {ts[0] * 1000:.0f} ms, median {ts[len(ts) // 2] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
