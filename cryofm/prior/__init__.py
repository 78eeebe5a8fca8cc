"""The prior: a 3D U-Net velocity field, the `Prior` model contract, normalisation, `load_prior`."""

from cryofm.prior.normalize import NormStats, destandardize, standardize
from cryofm.prior.prior import MODEL_CONFIGS, ModelConfig, Prior, analytic_error_power, load_prior
from cryofm.prior.unet import UNetConfig, VelocityNet

__all__ = [
    "MODEL_CONFIGS",
    "ModelConfig",
    "NormStats",
    "Prior",
    "UNetConfig",
    "VelocityNet",
    "analytic_error_power",
    "destandardize",
    "load_prior",
    "standardize",
]
