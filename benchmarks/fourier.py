"""Benchmark cryofm.fourier: FSC, resampling and coloured-noise synthesis per backend.

Run ``python benchmarks/fourier.py [--sizes 128 256] [--repeats 3]``.  For every box size and
backend (NumPy, torch on the CPU; torch-CUDA and CuPy when a GPU is present) it times

- ``fsc``: `cryofm.fourier.fsc_curve` of two float32 maps,
- ``resample``: `cryofm.fourier.resample` from 1.05 A to 1.5 A (box n -> round(0.7 n)),
- ``noise``: `cryofm.fourier.coloured_noise` of one float32 map from a per-shell spectrum,

after one untimed warm-up call, and prints a markdown table with the median wall time of the
repeats and the throughput in GB/s, counted as (bytes of the input arrays + bytes of the output
arrays) / median time: fsc 2 maps in + the curve out, resample 1 map in + 1 map out, noise the
spectrum in + 1 map out.  GPU timings synchronise the device before reading the clock.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
import torch

import cryofm.fourier as F


def _backends() -> tuple[list[tuple[str, Callable[[np.ndarray], Any], Callable[[], None]]], list[str]]:
    """(name, to_backend, synchronize) for every available backend, and lines for skipped ones."""
    available = [
        ("numpy", lambda a: a, lambda: None),
        ("torch-cpu", torch.from_numpy, lambda: None),
    ]
    skipped = []
    if torch.cuda.is_available():
        available.append(("torch-cuda", lambda a: torch.from_numpy(a).cuda(), torch.cuda.synchronize))
    else:
        skipped.append("torch-cuda: skipped, torch sees no CUDA device")
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        available.append(("cupy", cupy.asarray, lambda: cupy.cuda.Device().synchronize()))
    except Exception as err:  # ImportError, or a CUDA runtime error without a driver
        skipped.append(f"cupy: skipped ({type(err).__name__}: {str(err).splitlines()[0][:80]})")
    return available, skipped


def _nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.element_size() * x.nelement()
    return int(x.nbytes)


def _time(fn: Callable[[], Any], sync: Callable[[], None], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up: caches, plans, allocator
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    backends, skipped = _backends()
    for line in skipped:
        print(line)
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        a_np = rng.standard_normal((n, n, n), dtype=np.float32)
        b_np = (a_np + rng.standard_normal((n, n, n), dtype=np.float32)).astype(np.float32)
        spectrum_np = (np.exp(-np.arange(n // 2) / 20.0) + 0.1).astype(np.float32)
        for name, to_backend, sync in backends:
            a, b, spectrum = to_backend(a_np), to_backend(b_np), to_backend(spectrum_np)
            cases = {
                "fsc": (lambda a=a, b=b: F.fsc_curve(a, b), [a, b]),
                "resample 1.05->1.5 A": (lambda a=a: F.resample(a, 1.05, 1.5)[0], [a]),
                "coloured noise": (
                    lambda n=n, spectrum=spectrum: F.coloured_noise((n, n, n), spectrum, seed=0),
                    [spectrum],
                ),
            }
            for op, (fn, inputs) in cases.items():
                seconds, out = _time(fn, sync, repeats)
                moved = sum(_nbytes(v) for v in inputs) + _nbytes(out)
                rows.append(
                    {"op": op, "backend": name, "box": n, "seconds": seconds, "gbps": moved / seconds / 1e9}
                )
                print(f"  {op:>22s} {name:>10s} {n:4d}^3  {seconds * 1e3:9.1f} ms", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| operation | backend | box | median time (ms) | GB/s (in+out bytes) |", "|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['backend']} | {r['box']}^3 | {r['seconds'] * 1e3:.1f} | {r['gbps']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="box sizes (voxels)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per case (median reported)")
    args = parser.parse_args(argv)
    print(
        f"cryofm.fourier benchmark: {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, float32 maps, "
        f"median of {args.repeats} after one warm-up"
    )
    rows = run(args.sizes, args.repeats)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
