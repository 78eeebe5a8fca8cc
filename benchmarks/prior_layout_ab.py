"""A/B of the inference path's kernel choices in a 64^3 forward pass, interleaved in one process so
that the machine's drift hits every variant alike: `python benchmarks/prior_layout_ab.py [--rounds 8]`.

Each variant undoes one more of the inference path's choices:
`shipped`: `cryofm.prior.unet` as it is: oneDNN convolutions on channels-last tensors where no
gradient flows, each way up (`UpConv3d`) as one stride-2 transposed convolution with the folded
4^3 kernel, the time modulation as one `addcmul` and SiLU in place;
`unfused`: the modulation as a multiply then an add, SiLU out of place;
`literal_up`: also nearest x2 upsampling then the 3^3 convolution (as training computes it);
`contiguous`: also the oneDNN convolutions on contiguous (NCDHW) tensors (the path before all four).
Every variant's velocity is compared with the shipped one (max abs difference).  `--grad` times
what fps does instead: the forward pass and the back-propagation of a loss to the input.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import torch
from torch.nn import functional as F

import cryofm.prior.unet as unet
from cryofm.prior import load_prior


def _contiguous(self, input, weight, bias):  # noqa: A002 - torch's signature
    return torch.mkldnn_convolution(input.contiguous(), weight, bias, list(self.padding), list(self.stride),
                                    list(self.dilation), self.groups)


def _unfused(self, x, temb):
    h = self.conv1(F.silu(self.norm1(x)))
    scale, shift = self.film(temb)[:, :, None, None, None].chunk(2, dim=1)
    h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
    return self.skip(x) + h


def _literal_up(self, input):  # noqa: A002 - torch's signature
    return unet.Conv3d.forward(self, F.interpolate(input, scale_factor=2, mode="nearest"))


@contextmanager
def _variant(name: str):
    conv, up, block, silu = unet.Conv3d._conv_forward, unet.UpConv3d.forward, unet.ResBlock.forward, unet._silu
    try:
        if name != "shipped":
            unet.ResBlock.forward, unet._silu = _unfused, F.silu
        if name in ("literal_up", "contiguous"):
            unet.UpConv3d.forward = _literal_up
        if name == "contiguous":
            unet.Conv3d._conv_forward = _contiguous
        yield
    finally:
        unet.Conv3d._conv_forward, unet.UpConv3d.forward, unet.ResBlock.forward, unet._silu = conv, up, block, silu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--grad", action="store_true", help="forward and backward to the input (fps)")
    args = ap.parse_args()
    prior = load_prior(device="cpu")
    x = torch.randn(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(0))
    names = ("shipped", "unfused", "literal_up", "contiguous")
    times: dict[str, list[float]] = {n: [] for n in names}
    diffs: dict[str, float] = {}

    def call() -> torch.Tensor:
        if not args.grad:
            return prior.velocity(x, 0.5)
        xg = x.clone().requires_grad_(True)
        prior.velocity(xg, 0.5).square().sum().backward()
        return xg.grad

    reference = call()
    for _ in range(args.rounds):
        for name in names:
            with _variant(name):
                call()  # warm-up of this variant's oneDNN primitives
                t0 = time.perf_counter()
                v = call()
                times[name].append(time.perf_counter() - t0)
            diffs[name] = float((v - reference).abs().max())
    for name, ts in times.items():
        ts.sort()
        what = "forward+backward" if args.grad else "forward"
        print(f"{name:11s} 64^3 {what}: best {ts[0] * 1000:.0f} ms, median {ts[len(ts) // 2] * 1000:.0f} ms,"
              f" max |difference from shipped| {diffs[name]:.1e}")


if __name__ == "__main__":
    main()
