"""Forward models `y = A x + n`, with `A` diagonal in Fourier space (see `base`).

- `DenoiseOperator`: identity; noise from half maps or the solvent.
- `WedgeOperator`: keeps a tilt series' measured wedge.
- `UpsampleOperator`: crops the spectrum from the model grid to a coarser data grid.
- `AnisotropicDenoiseOperator`: identity with a directional noise power (half maps, per direction
  and shell: `directional_noise`).
"""

from cryofm.operators.anisotropic import (AnisotropicDenoiseOperator, DirectionalNoise, cone_labels,
                                          directional_noise, noise_power_in_cones)
from cryofm.operators.base import DiagonalOperator, rfft_shape
from cryofm.operators.denoise import DenoiseOperator, noise_power_from_halves, noise_power_from_solvent
from cryofm.operators.upsample import UpsampleOperator, crop_index
from cryofm.operators.wedge import WedgeOperator, check_tilt_range, tilt_range_from_angles, wedge_mask

__all__ = [
    "DiagonalOperator",
    "rfft_shape",
    "DenoiseOperator",
    "noise_power_from_halves",
    "noise_power_from_solvent",
    "WedgeOperator",
    "wedge_mask",
    "check_tilt_range",
    "tilt_range_from_angles",
    "UpsampleOperator",
    "crop_index",
    "AnisotropicDenoiseOperator",
    "noise_power_in_cones",
    "cone_labels",
    "DirectionalNoise",
    "directional_noise",
]
