"""cryofm.fourier on GPUs: CuPy and torch-CUDA give the NumPy numbers and keep their device.

Skipped (with the reason) on machines without a CUDA device.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cryofm.fourier as F


def _cupy_or_skip():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
        reason = "CuPy sees no CUDA device"
    except Exception as err:  # ImportError, or CUDARuntimeError without a driver
        reason = f"CuPy with a CUDA device is not available ({type(err).__name__}: {err})"
    pytest.skip(reason)


def _cases(rng):
    a = rng.standard_normal((24, 24, 24)).astype(np.float32)
    b = (a + rng.standard_normal(a.shape)).astype(np.float32)
    m = F.soft_sphere_mask(a.shape, 8, 3)
    return a, b, m


def _run_all(a, b, m):
    """Every backend-sensitive function once; returns a dict of results."""
    return {
        "fsc": F.fsc(a, b, mask=m, voxel_size=1.1).fsc,
        "power": F.power_spectrum(a),
        "crop": F.fourier_crop(a, (16, 17, 15)),
        "pad": F.fourier_pad(a, (30, 31, 32)),
        "resample": F.resample(a, 1.05, 1.5)[0],
        "lowpass": F.lowpass(a, 4.0, 1.1),
        "bfactor": F.bfactor(a, 20.0, 1.1),
        "noise_power": F.half_map_noise_power(a, b),
        "wiener": F.wiener_average(a, b),
        "wedge": F.missing_wedge_mask(a.shape, (-50, 40), like=a),
        "auto_mask": F.auto_mask(a + 3 * m, 1.1, lowpass_A=6.0),
    }


def test_cupy_matches_numpy():
    cupy = _cupy_or_skip()
    a, b, m = _cases(np.random.default_rng(0))
    ref = _run_all(a, b, m)
    got = _run_all(cupy.asarray(a), cupy.asarray(b), cupy.asarray(m))
    for name, value in got.items():
        assert isinstance(value, cupy.ndarray), name
        np.testing.assert_allclose(value.get(), ref[name], atol=1e-5, err_msg=name)
    noise = F.coloured_noise((24, 24, 24), cupy.ones(12, dtype=cupy.float32), seed=0)
    assert isinstance(noise, cupy.ndarray)


def test_torch_cuda_matches_numpy():
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    a, b, m = _cases(np.random.default_rng(1))
    ref = _run_all(a, b, m)
    dev = torch.device("cuda")
    got = _run_all(*(torch.from_numpy(v).to(dev) for v in (a, b, m)))
    for name, value in got.items():
        assert isinstance(value, torch.Tensor) and value.device.type == "cuda", name
        np.testing.assert_allclose(value.cpu().numpy(), ref[name], atol=1e-5, err_msg=name)
    x = torch.randn(6, 6, 6, device=dev, dtype=torch.float64, requires_grad=True)
    F.fsc_curve(x, x.detach() + 1).sum().backward()
    assert x.grad is not None and x.grad.device.type == "cuda"


def test_torch_cpu_matches_numpy():
    a, b, m = _cases(np.random.default_rng(2))
    ref = _run_all(a, b, m)
    got = _run_all(*(torch.from_numpy(v) for v in (a, b, m)))
    for name, value in got.items():
        assert isinstance(value, torch.Tensor), name
        np.testing.assert_allclose(value.numpy(), ref[name], atol=1e-5, err_msg=name)
