"""Fourier shell correlation, resolution estimates and RELION-style masked FSC.

``FSC_k = Re sum_k w F1 conj(F2) / sqrt(sum_k w |F1|^2 * sum_k w |F2|^2)`` over shell ``k``
(shell convention and Hermitian weights ``w`` as in ARCHITECTURE.md).  A resolution is where the
curve first falls below a threshold (shell 0 ignored), linearly interpolated in frequency
between the two shells around the crossing; it is ``None`` when the curve never falls below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from cryofm.errors import CryofmInputError

from . import _backend
from ._checks import check_map, match_library, unwrap
from .grids import _grid, n_shells, shell_frequencies
from .shells import shell_counts, shell_sum

__all__ = ["FSCResult", "MaskedFSCResult", "fsc", "fsc_curve", "masked_fsc", "resolution_at"]

#: the unmasked FSC below which RELION starts phase randomisation (``--randomize_at_fsc``)
RANDOMIZE_FSC = 0.8


@dataclass
class FSCResult:
    """An FSC curve with its sampling.

    Attributes:
        frequency: [n_shells] shell frequencies in 1/A (``k / (n * voxel_size)``).
        fsc: [..., n_shells] FSC per shell.  NumPy arrays for NumPy/`Volume` input; torch
            tensors (on the input's device, differentiable) for torch input; CuPy for CuPy.
        voxel_size: Angstrom.
        box: real-space box ``(nz, ny, nx)``.
    """

    frequency: Any
    fsc: Any
    voxel_size: float
    box: tuple[int, int, int]

    def resolution(self, threshold: float = 0.143) -> float | None:
        """Resolution in Angstrom where the FSC first falls below ``threshold``.

        Linear interpolation between shells, shell 0 ignored (see `resolution_at`).  Returns
        ``None`` when the curve never falls below the threshold (the map is resolved to
        Nyquist or better).  Raises `CryofmInputError` for a batch of curves; call
        `resolution_at` on each.
        """
        return resolution_at(self.fsc, self.frequency, threshold)

    def components_per_shell(self) -> np.ndarray:
        """[n_shells] number of full-space Fourier components in each shell (NumPy)."""
        return np.asarray(shell_counts(self.box))


@dataclass
class MaskedFSCResult(FSCResult):
    """A masked FSC corrected by phase randomisation (``fsc`` is FSC_true).

    Attributes (besides those of `FSCResult`):
        fsc_unmasked: [n_shells] FSC of the maps without the mask.
        fsc_masked: [n_shells] FSC of the masked maps.
        fsc_randomized_masked: [n_shells] FSC of the masked, phase-randomised maps (equal to
            ``fsc_masked`` below the randomisation shell); None when nothing was randomised.
        randomize_shell: first randomised shell, or None when the unmasked FSC never fell
            below 0.8 (then ``fsc == fsc_masked``).
    """

    fsc_unmasked: Any = None
    fsc_masked: Any = None
    fsc_randomized_masked: Any = None
    randomize_shell: int | None = None

    @property
    def randomize_resolution(self) -> float | None:
        """Resolution in Angstrom of the first randomised shell, or None."""
        if self.randomize_shell is None:
            return None
        return max(self.box) * self.voxel_size / self.randomize_shell


def _checked_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Both maps checked (finite, 3D) and on the same box, else `CryofmInputError`."""
    a = check_map(a, "a")
    b = check_map(b, "b")
    if tuple(a.shape[-3:]) != tuple(b.shape[-3:]):
        raise CryofmInputError(
            f"the two maps have boxes {tuple(a.shape[-3:])} and {tuple(b.shape[-3:])}; "
            "an FSC needs maps on the same grid (resample or crop one)"
        )
    return a, b


def _pair(a: Any, b: Any, voxel_size: Any) -> tuple[Any, Any, float]:
    a, vs_a = unwrap(a, voxel_size, "a")
    b, vs_b = unwrap(b, voxel_size, "b")
    if vs_a is not None and vs_b is not None and not math.isclose(vs_a, vs_b, rel_tol=1e-4):
        raise CryofmInputError(
            f"the two maps have voxel sizes {vs_a} A and {vs_b} A; resample one onto the other's grid"
        )
    vs = vs_a if vs_a is not None else (vs_b if vs_b is not None else 1.0)
    a, b = _checked_pair(a, b)
    if _backend.backend_name(a) != _backend.backend_name(b):
        b = match_library(b, a, "b")
    return a, b, vs


def fsc_curve(a: Any, b: Any) -> Any:
    """Raw FSC per shell between two real maps.

    Args:
        a, b: real maps [..., nz, ny, nx] of one library (leading dimensions broadcast).

    Returns:
        [..., n_shells] in the namespace, device and precision of the input (float32 for
        float32 maps); differentiable in torch.  A shell where either map has no power gives 0.
    """
    a, b = _checked_pair(a, b)
    xp = _backend.namespace(a, b)
    fa = _backend.rfftn(a)
    fb = _backend.rfftn(b)
    ra, ia, rb, ib = xp.real(fa), xp.imag(fa), xp.real(fb), xp.imag(fb)
    cross = shell_sum(ra * rb + ia * ib, a.shape)
    pa = shell_sum(ra * ra + ia * ia, a.shape)
    pb = shell_sum(rb * rb + ib * ib, b.shape)
    tiny = float(xp.finfo(pa.dtype).tiny)
    return cross / xp.sqrt(xp.clip(pa * pb, min=tiny))


def fsc(a: Any, b: Any, *, mask: Any = None, voxel_size: float | None = None) -> FSCResult:
    """FSC between two maps, optionally both multiplied by a real-space mask (no correction;
    see `masked_fsc` for the phase-randomisation correction).

    Args:
        a, b: real maps [..., nz, ny, nx] (NumPy, torch, CuPy) or `Volume` objects.
        mask: real-space mask [nz, ny, nx] (array or `Volume`), or None.
        voxel_size: Angstrom; taken from the Volumes when given, 1.0 for bare arrays without it.

    Returns:
        `FSCResult`; its arrays are in the input's library (torch in, torch out).
    """
    a, b, vs = _pair(a, b, voxel_size)
    if mask is not None:
        mask = match_library(mask, a)
        a = a * mask
        b = b * mask
    curve = fsc_curve(a, b)
    box = tuple(int(n) for n in a.shape[-3:])
    return FSCResult(shell_frequencies(box, vs, like=curve), curve, vs, box)  # type: ignore[arg-type]


def resolution_at(fsc_values: Any, frequencies: Any, threshold: float = 0.143) -> float | None:
    """Resolution in Angstrom where an FSC curve first falls below ``threshold``.

    Args:
        fsc_values: [n_shells] FSC per shell (any library).
        frequencies: [n_shells] shell frequencies in 1/A.
        threshold: e.g. 0.143 (half maps, gold standard) or 0.5 (map against model).

    Returns:
        ``1 / f`` where ``f`` is linearly interpolated between the last shell at or above the
        threshold and the first shell below it, searching from shell 1 (shell 0, the mean, is
        ignored).  If shell 1 is already below, ``1 / frequencies[1]`` (the box size: nothing
        coarser can be resolved).  ``None`` when the curve never falls below.
    """
    values = np.asarray(_backend.to_numpy(_backend.as_float_array(fsc_values, "fsc_values")), dtype=np.float64)
    freqs = np.asarray(_backend.to_numpy(_backend.as_float_array(frequencies, "frequencies")), dtype=np.float64)
    if values.ndim != 1 or freqs.shape != values.shape:
        raise CryofmInputError(
            f"resolution_at needs one curve [n_shells] and frequencies of the same length, got "
            f"shapes {values.shape} and {freqs.shape}; for a batch call it once per curve"
        )
    below = np.nonzero(values[1:] < threshold)[0]
    if below.size == 0:
        return None
    i = int(below[0]) + 1
    if i == 1:
        return float(1.0 / freqs[1])
    c_lo, c_hi = values[i - 1], values[i]
    frac = (c_lo - threshold) / (c_lo - c_hi)
    f = freqs[i - 1] + frac * (freqs[i] - freqs[i - 1])
    return float(1.0 / f)


def _randomize_phases(x: Any, from_shell: int, generator: Any) -> Any:
    """``x`` with the phases of every component in shells >= ``from_shell`` replaced by random
    ones (amplitudes kept).  The random phases are those of the rfft of real white noise, so the
    result is exactly real (Hermitian-consistent on the kx = 0 and Nyquist planes)."""
    xp = _backend.namespace(x)
    place = _backend.placement(x)
    f = _backend.rfftn(x)
    noise = _backend.rfftn(_backend.random_normal(tuple(x.shape), place, generator))
    amp_noise = xp.abs(noise)
    phase = noise / xp.where(amp_noise > 0, amp_noise, xp.ones_like(amp_noise))
    shells = _grid("shell", x.shape, 1.0, x)
    randomized = xp.where(shells >= from_shell, xp.abs(f) * phase, f)
    return _backend.irfftn(randomized, x.shape)


def masked_fsc(
    a: Any,
    b: Any,
    mask: Any,
    voxel_size: float | None = None,
    *,
    randomize_from: float | None = None,
    seed: int | None = None,
    generator: Any = None,
) -> MaskedFSCResult:
    """Masked FSC corrected for the mask's own correlation by phase randomisation (RELION
    postprocess; Chen et al. 2013, Ultramicroscopy 135:24).

    1. ``fsc_unmasked`` of the maps, ``fsc_masked`` of the masked maps.
    2. Randomisation shell ``k0``: ``int(n * voxel_size / randomize_from)`` when
       ``randomize_from`` (Angstrom) is given, else the first shell > 0 where ``fsc_unmasked``
       falls below 0.8.
    3. Each map's phases in shells >= k0 are replaced by independent random phases, the
       results are masked and give ``fsc_randomized_masked``.
    4. ``FSC_true = (FSC_masked - FSC_rand) / (1 - FSC_rand)`` from shell ``k0 + 2`` on (RELION
       keeps the masked FSC for two more shells to avoid artefacts at the randomisation edge),
       ``FSC_masked`` below.

    Args:
        a, b: half maps [nz, ny, nx] (arrays or Volumes; one map each, no batch).
        mask: real-space mask [nz, ny, nx], values in [0, 1].
        voxel_size: Angstrom (default: from the Volumes, else 1.0).
        randomize_from: resolution in Angstrom from which phases are randomised.
        seed, generator: randomness of the phases (one of them; a generator of the maps'
            library, on their device for torch).

    Returns:
        `MaskedFSCResult` whose ``fsc`` is FSC_true; arrays in the input's library.
    """
    a, b, vs = _pair(a, b, voxel_size)
    if a.ndim != 3 or b.ndim != 3:
        raise CryofmInputError(
            f"masked_fsc takes one pair of maps [nz, ny, nx], got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; call it once per pair"
        )
    mask = match_library(mask, a)
    xp = _backend.namespace(a)
    box = tuple(int(n) for n in a.shape)
    ns = n_shells(box)
    unmasked = fsc_curve(a, b)
    masked = fsc_curve(a * mask, b * mask)
    if randomize_from is not None:
        if not (float(randomize_from) > 0):
            raise CryofmInputError(f"randomize_from must be a resolution in Angstrom > 0, got {randomize_from}")
        k0: int | None = int(max(box) * vs / float(randomize_from))
        if not 1 <= k0 < ns:
            raise CryofmInputError(
                f"randomize_from={randomize_from} A is shell {k0}, outside 1..{ns - 1} for a box of "
                f"{max(box)} voxels of {vs} A; pass a resolution between {2 * vs:.3g} and "
                f"{max(box) * vs:.3g} A"
            )
    else:
        curve = _backend.to_numpy(unmasked)
        below = np.nonzero(curve[1:] < RANDOMIZE_FSC)[0]
        k0 = int(below[0]) + 1 if below.size else None
    freqs = shell_frequencies(box, vs, like=masked)
    if k0 is None:
        return MaskedFSCResult(freqs, masked, vs, box, unmasked, masked, None, None)  # type: ignore[arg-type]
    rng = _backend.resolve_generator(_backend.placement(a), seed, generator)
    ra = _randomize_phases(a, k0, rng)
    rb = _randomize_phases(b, k0, rng)
    randomized = fsc_curve(ra * mask, rb * mask)
    shells = xp.arange(ns, device=array_api_compat.device(masked))
    denom = 1.0 - randomized
    safe = xp.where(xp.abs(denom) > 1e-6, denom, xp.ones_like(denom))
    corrected = xp.where(shells >= k0 + 2, (masked - randomized) / safe, masked)
    return MaskedFSCResult(freqs, corrected, vs, box, unmasked, masked, randomized, k0)  # type: ignore[arg-type]
