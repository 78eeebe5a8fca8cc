"""The one place that knows about array libraries: NumPy, torch (CPU/CUDA) and CuPy.

Everything else in `cryofm.fourier` is written against the array-API namespace returned by
`namespace` plus the few helpers below.  The Fourier convention (ARCHITECTURE.md) lives here:
real-to-complex transforms over the last three axes, ``norm="ortho"``, DC at index 0.

- NumPy: `scipy.fft` with ``workers=-1`` (all cores).
- torch: `torch.fft` (keeps autograd and the device).
- CuPy: `cupy.fft`; CuPy is imported only inside functions, when a CuPy array arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
import scipy.fft

from cryofm.errors import CryofmInputError

__all__ = [
    "Placement",
    "backend_name",
    "fftn",
    "from_numpy",
    "ifftn",
    "irfftn",
    "namespace",
    "placement",
    "make_generator",
    "random_normal",
    "resolve_generator",
    "rfft_shape",
    "rfftn",
    "scatter_add_last",
    "to_numpy",
    "as_float_array",
]

_AXES = (-3, -2, -1)


def namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (NumPy, torch or CuPy), via `array_api_compat`."""
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays}))
        raise CryofmInputError(
            f"expected NumPy arrays, torch tensors or CuPy arrays of one kind, got {kinds}; "
            "convert the inputs to one array library"
        ) from err


def backend_name(x: Any) -> str:
    """``"numpy"``, ``"torch"`` or ``"cupy"`` for an array ``x``."""
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    raise CryofmInputError(
        f"expected a NumPy array, torch tensor or CuPy array, got {type(x).__name__}; "
        "convert it with numpy.asarray"
    )


@dataclass(frozen=True)
class Placement:
    """Where and in which precision to create an array: the key of the grid caches.

    Attributes:
        backend: ``"numpy"``, ``"torch"`` or ``"cupy"``.
        device: ``"cpu"`` for NumPy, ``str(tensor.device)`` for torch, the device id for CuPy.
        real_dtype: ``"float32"`` or ``"float64"``.
    """

    backend: str = "numpy"
    device: str | int = "cpu"
    real_dtype: str = "float64"


def placement(like: Any = None, default_dtype: str = "float64") -> Placement:
    """The `Placement` of an array ``like`` (its library, device and real precision).

    ``like=None`` gives NumPy with ``default_dtype``.  Complex arrays give their real precision;
    float64/complex128 give float64, every other dtype float32.
    """
    if like is None:
        return Placement("numpy", "cpu", default_dtype)
    if isinstance(like, Placement):
        return like
    name = backend_name(like)
    dtype = str(like.dtype).replace("torch.", "")
    real = "float64" if dtype in ("float64", "complex128") else "float32"
    if name == "torch":
        return Placement("torch", str(like.device), real)
    if name == "cupy":
        return Placement("cupy", int(like.device.id), real)
    return Placement("numpy", "cpu", real)


def _dtype(place: Placement, kind: str) -> Any:
    """The library dtype object for ``kind`` in ``{"real", "complex", "int64", "bool"}``."""
    name = {
        "real": place.real_dtype,
        "complex": "complex128" if place.real_dtype == "float64" else "complex64",
        "int64": "int64",
        "bool": "bool",
    }[kind]
    if place.backend == "torch":
        import torch

        return getattr(torch, name)
    return np.dtype(name)


def from_numpy(array: np.ndarray, place: Placement, kind: str | None = None) -> Any:
    """A copy of the NumPy array on ``place`` (floats cast to its real dtype, ints to int64).

    ``kind`` forces ``"real"``, ``"complex"``, ``"int64"`` or ``"bool"``; by default it follows
    the array's own kind.
    """
    array = np.asarray(array)
    if kind is None:
        if array.dtype == bool:
            kind = "bool"
        elif np.issubdtype(array.dtype, np.integer):
            kind = "int64"
        elif np.iscomplexobj(array):
            kind = "complex"
        else:
            kind = "real"
    dtype = _dtype(place, kind)
    if place.backend == "numpy":
        return np.array(array, dtype=dtype, copy=True)
    if place.backend == "torch":
        import torch

        return torch.from_numpy(np.array(array, copy=True)).to(device=place.device, dtype=dtype)
    import cupy  # lazy: only when CuPy arrays are in play

    with cupy.cuda.Device(place.device):
        return cupy.asarray(array, dtype=dtype)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array (torch: detached and moved to the CPU; CuPy: copied to the host)."""
    name = backend_name(x)
    if name == "torch":
        return x.detach().cpu().numpy()
    if name == "cupy":
        return x.get()
    return np.asarray(x)


def as_float_array(x: Any, name: str = "x") -> Any:
    """``x`` as a real floating array: float32/float64 kept, other real dtypes made float32.

    Python sequences become NumPy arrays.  Raises `CryofmInputError` for complex input.
    """
    if not (array_api_compat.is_array_api_obj(x)):
        x = np.asarray(x)
    xp = namespace(x)
    dtype = str(x.dtype).replace("torch.", "")
    if dtype.startswith("complex"):
        raise CryofmInputError(f"{name} must be a real-valued map, got dtype {dtype}; pass the real part")
    if dtype in ("float32", "float64"):
        return x
    return xp.astype(x, xp.float32)


def rfft_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The rfft-layout shape ``(nz, ny, nx // 2 + 1)`` of a real ``(..., nz, ny, nx)`` shape."""
    nz, ny, nx = (int(s) for s in shape[-3:])
    return nz, ny, nx // 2 + 1


def _fft(kind: str, x: Any, **kwargs: Any) -> Any:
    """Call the library's `fft.<kind>` over the last three axes with ortho norm (the one
    dispatch behind `rfftn`, `irfftn`, `fftn` and `ifftn`)."""
    name = backend_name(x)
    if name == "torch":
        import torch

        return getattr(torch.fft, kind)(x, dim=_AXES, norm="ortho", **kwargs)
    if name == "cupy":
        import cupy

        return getattr(cupy.fft, kind)(x, axes=_AXES, norm="ortho", **kwargs)
    return getattr(scipy.fft, kind)(x, axes=_AXES, norm="ortho", workers=-1, **kwargs)


def rfftn(x: Any) -> Any:
    """Real-to-complex FFT of ``x`` [..., nz, ny, nx] over the last three axes, ortho norm.

    Returns [..., nz, ny, nx // 2 + 1], complex64 for float32 input, complex128 for float64.
    """
    return _fft("rfftn", x)


def irfftn(f: Any, shape: tuple[int, ...]) -> Any:
    """Inverse of `rfftn`: ``f`` [..., nz, ny, nx // 2 + 1] -> real [..., nz, ny, nx].

    ``shape``: the real-space shape; only its last three entries are used.
    """
    return _fft("irfftn", f, s=tuple(int(n) for n in shape[-3:]))


def fftn(x: Any) -> Any:
    """Complex FFT over the last three axes, ortho norm: [..., nz, ny, nx] -> same shape."""
    return _fft("fftn", x)


def ifftn(f: Any) -> Any:
    """Inverse of `fftn` over the last three axes, ortho norm (complex output)."""
    return _fft("ifftn", f)


def scatter_add_last(values: Any, index: Any, n_bins: int) -> Any:
    """Sum real ``values`` [..., M] into ``n_bins`` bins along the last axis.

    Args:
        values: real array [..., M] (any leading shape).
        index: int64 array [M] with entries in ``0 .. n_bins - 1`` (same library and device).
        n_bins: number of bins.

    Returns:
        [..., n_bins] in the real dtype of ``values``.  Sums accumulate in float64 on every
        backend; torch keeps autograd (``index_add``).
    """
    name = backend_name(values)
    lead = tuple(values.shape[:-1])
    m = int(values.shape[-1])
    if name == "torch":
        import torch

        flat = values.reshape(-1, m)
        out = torch.zeros((flat.shape[0], n_bins), dtype=torch.float64, device=values.device)
        out = out.index_add(1, index, flat.to(torch.float64))
        return out.to(values.dtype).reshape(*lead, n_bins)
    lib = np
    if name == "cupy":
        import cupy as lib
    flat = values.reshape(-1, m)
    # one bincount per leading row: no combined (batch x M) index array is ever built
    out = lib.stack([lib.bincount(index, weights=row, minlength=n_bins) for row in flat])
    return out.astype(values.dtype).reshape(*lead, n_bins)


def make_generator(place: Placement, seed: int | None = None) -> Any:
    """A fresh random generator for ``place``: NumPy `default_rng`, `torch.Generator` on the
    device, or `cupy.random.default_rng`; seeded with ``seed``, or from OS entropy when None."""
    if place.backend == "numpy":
        return np.random.default_rng(seed)
    if place.backend == "torch":
        import torch

        generator = torch.Generator(device=place.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        return generator
    import cupy

    with cupy.cuda.Device(place.device):
        return cupy.random.default_rng(seed)


def resolve_generator(place: Placement, seed: int | None, generator: Any) -> Any:
    """The generator to draw from: ``generator`` (checked against the library of ``place``) or a
    fresh one from ``seed``.  Raises `CryofmInputError` when both or a mismatched one are given."""
    if seed is not None and generator is not None:
        raise CryofmInputError("pass either seed= or generator=, not both")
    if generator is None:
        return make_generator(place, seed)
    if place.backend == "numpy" and not isinstance(generator, np.random.Generator):
        raise CryofmInputError(
            f"NumPy output needs a numpy.random.Generator, got {type(generator).__name__}; "
            "pass numpy.random.default_rng(seed) or seed="
        )
    if place.backend == "torch":
        import torch

        if not isinstance(generator, torch.Generator):
            raise CryofmInputError(
                f"torch output needs a torch.Generator, got {type(generator).__name__}; "
                "pass torch.Generator(device).manual_seed(seed) or seed="
            )
    return generator


def random_normal(shape: tuple[int, ...], place: Placement, generator: Any) -> Any:
    """Standard normal samples of ``shape`` on ``place`` drawn from ``generator``
    (see `resolve_generator`)."""
    shape = tuple(int(s) for s in shape)
    if place.backend == "numpy":
        return generator.standard_normal(shape, dtype=np.dtype(place.real_dtype))
    if place.backend == "torch":
        import torch

        return torch.randn(shape, generator=generator, dtype=_dtype(place, "real"), device=place.device)
    import cupy

    with cupy.cuda.Device(place.device):
        return generator.standard_normal(shape, dtype=np.dtype(place.real_dtype))
