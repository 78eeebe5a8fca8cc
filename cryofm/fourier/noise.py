"""Noise spectra, coloured noise, and the FSC <-> SNR relations of half maps.

Units: power is mean ``|F|^2`` per component with the ortho FFT, so white noise of variance
``s2`` has power ``s2`` in every shell.  For two half maps ``h_i = s + n_i`` with independent
noise of equal power ``N`` and signal power ``S`` per shell, ``FSC = S / (S + N)`` and the SNR of
one half map is ``S / N = FSC / (1 - FSC)``.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from cryofm.errors import CryofmInputError

from . import _backend
from ._checks import check_map, check_shape, match_library
from .filters import apply_fourier_filter
from .fsc import fsc_curve
from .grids import n_shells
from .shells import expand_shells, power_spectrum

__all__ = [
    "coloured_noise",
    "fsc_from_snr",
    "fsc_full_from_half",
    "half_map_noise_power",
    "noise_power_per_component",
    "snr_from_fsc",
    "wiener_average",
]

#: FSC values are clipped to [0, _FSC_MAX] before dividing by 1 - FSC
_FSC_MAX = 1.0 - 1e-6


def _as_array(v: Any) -> Any:
    if array_api_compat.is_array_api_obj(v):
        return v
    return np.asarray(v, dtype=np.float64)


def coloured_noise(
    shape: Any,
    shell_power: Any,
    *,
    seed: int | None = None,
    generator: Any = None,
    like: Any = None,
) -> Any:
    """Real Gaussian noise whose expected power in each shell is ``shell_power``.

    Real white noise of unit variance is transformed (its rfft is Hermitian noise with
    ``E|W|^2 = 1`` per component), multiplied by ``sqrt(shell_power)`` of each component's shell
    (`expand_shells`: corners beyond the last shell take the last value) and transformed back.

    Args:
        shape: ``(..., nz, ny, nx)`` of the output (leading dimensions: independent draws).
        shell_power: [..., L] non-negative power per shell (ortho units), usually
            L = n_shells(shape).
        seed, generator: randomness (one of them; a generator of the output's library).
        like: library/device/precision of the output; default that of ``shell_power`` when it
            is a torch/CuPy array, else NumPy float32.

    Returns:
        [..., nz, ny, nx] real noise.
    """
    dims = check_shape(shape)
    full_shape = tuple(int(s) for s in shape)
    power = _as_array(shell_power)
    if like is None and _backend.backend_name(power) != "numpy":
        like = power
    place = _backend.placement(like, default_dtype="float32")
    if _backend.backend_name(power) == "numpy":
        power_np = np.asarray(power, dtype=np.float64)
        if power_np.ndim < 1 or not np.all(np.isfinite(power_np)) or np.any(power_np < 0):
            raise CryofmInputError("shell_power must be a [..., n_shells] array of finite values >= 0")
        power = _backend.from_numpy(power_np, place, "real")
    elif not bool(_backend.namespace(power).all(power >= 0)):
        raise CryofmInputError("shell_power must be >= 0 in every shell")
    xp = _backend.namespace(power)
    rng = _backend.resolve_generator(place, seed, generator)
    white = _backend.random_normal(full_shape, place, rng)
    amplitude = expand_shells(xp.sqrt(power), dims)
    return _backend.irfftn(_backend.rfftn(white) * amplitude, full_shape)


def half_map_noise_power(h1: Any, h2: Any) -> Any:
    """Noise power of ONE half map per shell: ``mean |F1 - F2|^2 / 2``.

    Args:
        h1, h2: half maps [..., nz, ny, nx] (same library).

    Returns:
        [..., n_shells] in the input's library (ortho units).
    """
    h1 = check_map(h1, "h1")
    h2 = match_library(check_map(h2, "h2"), h1, "h2")
    if tuple(h1.shape[-3:]) != tuple(h2.shape[-3:]):
        raise CryofmInputError(f"half maps have different boxes {tuple(h1.shape)} and {tuple(h2.shape)}")
    return 0.5 * power_spectrum(h1 - h2)


def noise_power_per_component(h1: Any, h2: Any) -> Any:
    """`half_map_noise_power` broadcast onto the rfft layout [..., nz, ny, nx // 2 + 1].

    The shell average is used for every component of the shell (the raw ``|F1 - F2|^2 / 2`` of
    one component is unbiased but has 100% relative error).  Corners take the last shell.
    """
    h1 = check_map(h1, "h1")
    return expand_shells(half_map_noise_power(h1, h2), h1.shape)


def snr_from_fsc(fsc: Any) -> Any:
    """SNR of one half map from the half-map FSC: ``F / (1 - F)``.

    ``F`` is clipped to ``[0, 1 - 1e-6]`` first (a negative FSC means no signal: SNR 0).
    Elementwise; any library (sequences become NumPy float64).
    """
    fsc = _as_array(fsc)
    xp = _backend.namespace(fsc)
    f = xp.clip(fsc, min=0.0, max=_FSC_MAX)
    return f / (1.0 - f)


def fsc_from_snr(snr: Any) -> Any:
    """Half-map FSC from the SNR of one half map: ``S / (1 + S)`` (S clipped at 0). Elementwise."""
    snr = _as_array(snr)
    xp = _backend.namespace(snr)
    s = xp.clip(snr, min=0.0)
    return s / (1.0 + s)


def fsc_full_from_half(fsc: Any) -> Any:
    """FSC of the full map (average of the halves) against the truth-like reference, from the
    half-map FSC: ``2 F / (1 + F)`` (Rosenthal & Henderson 2003).  ``F`` clipped to [0, 1]."""
    fsc = _as_array(fsc)
    xp = _backend.namespace(fsc)
    f = xp.clip(fsc, min=0.0, max=1.0)
    return 2.0 * f / (1.0 + f)


def wiener_average(h1: Any, h2: Any, *, fsc: Any = None) -> Any:
    """Average of two half maps, Wiener-filtered shell by shell with weights from their FSC.

    The weight of shell ``k`` is the Wiener weight of the average: the average has
    ``SNR_avg = 2 F / (1 - F)``, so ``SNR_avg / (1 + SNR_avg) = 2 F / (1 + F)``, which equals
    `fsc_full_from_half`.  This minimises the expected squared error of every component given
    the shell SNR.  (RELION's FSC weighting multiplies by ``C_ref = sqrt(2F / (1 + F))``, the
    expected correlation with the truth; it damps noisy shells less.  We use the Wiener weight
    because the result serves as the least-squares baseline for restoration.)  Shell 0 (the
    mean) keeps weight 1; negative FSC gives weight 0; corners take the last shell's weight.

    Args:
        h1, h2: half maps [..., nz, ny, nx] (same library).
        fsc: [..., n_shells] half-map FSC; default `fsc_curve(h1, h2)`.

    Returns:
        [..., nz, ny, nx] filtered average, in the library of ``h1``.
    """
    h1 = check_map(h1, "h1")
    h2 = match_library(check_map(h2, "h2"), h1, "h2")
    if tuple(h1.shape[-3:]) != tuple(h2.shape[-3:]):
        raise CryofmInputError(f"half maps have different boxes {tuple(h1.shape)} and {tuple(h2.shape)}")
    ns = n_shells(h1.shape)
    if fsc is None:
        fsc = fsc_curve(h1, h2)
    else:
        fsc = _as_array(fsc)
        if _backend.backend_name(fsc) != _backend.backend_name(h1):
            fsc = _backend.from_numpy(np.asarray(_backend.to_numpy(fsc)), _backend.placement(h1), "real")
    if fsc.shape[-1] != ns:
        raise CryofmInputError(
            f"fsc must have {ns} shells for a box of {tuple(h1.shape[-3:])}, got shape {tuple(fsc.shape)}"
        )
    xp = _backend.namespace(fsc)
    weight = fsc_full_from_half(fsc)
    weight = xp.concat([xp.ones_like(weight[..., :1]), weight[..., 1:]], axis=-1)
    return apply_fourier_filter(0.5 * (h1 + h2), expand_shells(weight, h1.shape))
