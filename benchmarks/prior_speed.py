"""Speed of the prior: a 64^3 forward pass (CPU; GPU in bf16 when one is present) and training
throughput (patches per second) with the default training settings on this CPU.

    python benchmarks/prior_speed.py [--model tiny|default] [--repeats 5] [--train-steps 4]
        [--crop 32 48 64 --batch 6 2 2]   # training shapes: stage 1 (32^3 x 6), stage 2 (48^3 / 64^3 x 2)
        [--profile]   # also: where a CPU forward pass spends its time, convolutions per feature-map size

Note: on a shared machine the numbers include other users' load (printed as the load average).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[0], ts[len(ts) // 2]


def conv_profile(prior, x: torch.Tensor) -> None:
    """Print the self CPU time of the convolutions in one forward pass, per input feature-map side."""
    from torch.profiler import ProfilerActivity, profile

    prior.velocity(x, 0.5, refine=False)  # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        prior.velocity(x, 0.5, refine=False)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    per_side: dict[int, float] = {}
    for e in events:
        shapes = e.input_shapes or []
        if "convolution" in e.key and shapes and len(shapes[0]) == 5:
            per_side[shapes[0][-1]] = per_side.get(shapes[0][-1], 0.0) + e.self_cpu_time_total
    conv = sum(per_side.values())
    print(f"profile of one CPU forward 64^3: {total / 1000:.0f} ms in all, convolutions {conv / 1000:.0f} ms: "
          + ", ".join(f"{side}^3 inputs {us / 1000:.0f} ms" for side, us in sorted(per_side.items(), reverse=True)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=4, help="timed steps per training shape; 0 skips training")
    ap.add_argument("--batch", type=int, nargs="+", default=[6, 2, 2])
    ap.add_argument("--crop", type=int, nargs="+", default=[32, 48, 64])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="convolution time per feature-map size")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.train_steps < 0:
        ap.error("--repeats must be at least 1 and --train-steps at least 0 (0 skips the training timing)")
    if len(args.crop) != len(args.batch):
        ap.error("--crop and --batch take the same number of values")
    if args.threads:
        torch.set_num_threads(args.threads)
    from cryofm.prior import Prior
    from cryofm.training.loop import flow_loss

    prior = Prior.from_config(args.model)
    n_params = sum(p.numel() for p in prior.net.parameters())
    print(f"model {args.model}: {n_params / 1e6:.2f} M parameters ({4 * n_params / 2**20:.1f} MiB float32), "
          f"divisor {prior.divisor}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    x = torch.randn(1, 1, 64, 64, 64)
    best, med = timed(lambda: prior.velocity(x, 0.5, refine=False), args.repeats)
    print(f"CPU forward 64^3, batch 1: best {best * 1000:.0f} ms, median {med * 1000:.0f} ms")
    best, med = timed(lambda: prior.velocity(x, 0.5), args.repeats)
    print(f"CPU velocity 64^3 with the SURE refinement (two forward passes), batch 1: best {best * 1000:.0f} ms, "
          f"median {med * 1000:.0f} ms")
    if args.profile:
        conv_profile(prior, x)
    if torch.cuda.is_available():
        p = prior.to("cuda")
        xg = x.cuda()

        def gpu():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                p.velocity(xg, 0.5, refine=False)
            torch.cuda.synchronize()

        def gpu_refined():
            p.velocity(xg, 0.5)
            torch.cuda.synchronize()

        best, med = timed(gpu, args.repeats * 4)
        print(f"GPU ({torch.cuda.get_device_name()}) forward 64^3 bf16, batch 1: best {best * 1000:.1f} ms, "
              f"median {med * 1000:.1f} ms")
        best, med = timed(gpu_refined, args.repeats * 4)
        print(f"GPU velocity 64^3 with the SURE refinement, float32, batch 1: best {best * 1000:.1f} ms, "
              f"median {med * 1000:.1f} ms")
        prior.to("cpu")
    else:
        print("GPU: none available (no CUDA device), GPU timing skipped")
    if args.train_steps == 0:
        return 0
    net = prior.net.train().requires_grad_(True)  # a Prior's net is frozen for inference
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    for crop, batch in zip(args.crop, args.batch):
        g = torch.Generator().manual_seed(0)
        xb = torch.randn(batch, 1, crop, crop, crop, generator=g)
        e = torch.randn(xb.shape, generator=g)
        t = torch.rand(batch, generator=g)

        def step():
            xt = (1 - t[:, None, None, None, None]) * xb + t[:, None, None, None, None] * e
            loss = flow_loss(net(xt, t), xb, e, t, "edm")
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            step()
        dt = (time.perf_counter() - t0) / args.train_steps
        print(f"CPU training, batch {batch} of {crop}^3: {dt:.2f} s/step, "
              f"{batch / dt:.2f} patches/s ({batch * (crop / 64) ** 3 / dt:.2f} 64^3-equivalents/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
