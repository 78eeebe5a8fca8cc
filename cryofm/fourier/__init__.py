"""All Fourier maths of cryofm, on NumPy, torch (CPU/CUDA, differentiable) and CuPy.

Convention (ARCHITECTURE.md): ``rfftn`` over the last three axes with ``norm="ortho"``, DC at
[0, 0, 0], x the half axis; sums over components use the Hermitian weight; shell ``k`` holds the
components with ``round(n |f|) == k`` (``n`` the largest box dimension), shells
``0 .. n // 2 - 1`` are reported at ``k / (n * voxel_size)`` 1/A.  Functions take arrays of any
of the three libraries (the namespace comes from the inputs) and return the same library on the
same device; leading batch dimensions [..., nz, ny, nx] are accepted where they make sense.

Modules: `grids` (frequency grids, shell indices, Hermitian weights), `shells` (shell sums,
averages, spectra), `fsc` (FSC, resolution, masked FSC), `resample` (crop, pad, resample, regrid),
`filters` (low-pass, B-factor), `masks` (wedge, cone, sphere, automatic mask), `noise` (noise
spectra, coloured noise, FSC <-> SNR).
"""

from __future__ import annotations

from ._backend import fftn, ifftn, irfftn, rfftn
from .filters import apply_fourier_filter, bfactor, bfactor_filter, lowpass, lowpass_filter
from .fsc import FSCResult, MaskedFSCResult, fsc, fsc_curve, masked_fsc, resolution_at
from .grids import (
    clear_grid_cache,
    frequency_grid,
    hermitian_weight,
    n_shells,
    radial_frequency,
    shell_frequencies,
    shell_index,
)
from .masks import auto_mask, cone_mask, missing_wedge_mask, soft_sphere_mask, wedge_mask_from_angles
from .noise import (
    coloured_noise,
    fsc_from_snr,
    fsc_full_from_half,
    half_map_noise_power,
    noise_power_per_component,
    snr_from_fsc,
    wiener_average,
)
from .resample import fourier_crop, fourier_pad, regrid, resample, resample_volume
from .shells import (expand_shells, n_shells_to_corners, power_spectrum, resample_shells, shell_average, shell_counts,
                     shell_sum)

__all__ = [
    # transforms (last three axes, ortho)
    "rfftn",
    "irfftn",
    "fftn",
    "ifftn",
    # grids
    "frequency_grid",
    "radial_frequency",
    "shell_index",
    "n_shells",
    "shell_frequencies",
    "hermitian_weight",
    "clear_grid_cache",
    # shells
    "shell_sum",
    "n_shells_to_corners",
    "shell_average",
    "shell_counts",
    "power_spectrum",
    "expand_shells",
    "resample_shells",
    # FSC
    "FSCResult",
    "MaskedFSCResult",
    "fsc",
    "fsc_curve",
    "masked_fsc",
    "resolution_at",
    # resampling
    "fourier_crop",
    "fourier_pad",
    "resample",
    "resample_volume",
    "regrid",
    # filters
    "lowpass",
    "lowpass_filter",
    "bfactor",
    "bfactor_filter",
    "apply_fourier_filter",
    # masks
    "missing_wedge_mask",
    "wedge_mask_from_angles",
    "cone_mask",
    "soft_sphere_mask",
    "auto_mask",
    # noise
    "coloured_noise",
    "half_map_noise_power",
    "noise_power_per_component",
    "snr_from_fsc",
    "fsc_from_snr",
    "fsc_full_from_half",
    "wiener_average",
]
