"""The model contract `Prior` (docs/ARCHITECTURE.md) and `load_prior`.

A `Prior` wraps the velocity network with what samplers and the pipeline need: the voxel size it
was trained at, the box divisor, the normalisation, and the per-shell error power of its one-step
estimate `x_hat` (used by the `dc` sampler).  Weights live in one .safetensors file whose metadata
holds the model config as JSON (key ``cryofm_config``); a sibling .yaml, when present, is ignored
for weights and only used when the metadata lacks a config.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryofm.errors import CryofmInputError
from cryofm.prior.normalize import NORMALIZATIONS, NormStats
from cryofm.prior.sure import sure_let
from cryofm.prior.unet import UNetConfig, VelocityNet

__all__ = ["ModelConfig", "Prior", "load_prior", "torch_device", "analytic_error_power", "MODEL_CONFIGS", "ERROR_POWER_SHELLS"]

ERROR_POWER_SHELLS = 32  # shells 0..31 of a 64^3 box


@dataclass(frozen=True)
class ModelConfig:
    """What a prior is: network hyper-parameters plus the data conventions it was trained with."""

    name: str = "default"
    unet: UNetConfig = field(default_factory=UNetConfig)
    voxel_size: float = 1.5
    normalization: str = "standardize"
    box: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.unet, dict):
            object.__setattr__(self, "unet", UNetConfig(**self.unet))
        if self.normalization not in NORMALIZATIONS:
            raise CryofmInputError(
                f"unknown normalization {self.normalization!r}; known: {sorted(NORMALIZATIONS)}"
            )

    def to_dict(self) -> dict:
        return {"name": self.name, "unet": self.unet.to_dict(), "voxel_size": self.voxel_size,
                "normalization": self.normalization, "box": self.box}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {"name", "unet", "voxel_size", "normalization", "box"}
        unknown = set(d) - known
        if unknown:
            raise CryofmInputError(f"unknown model config keys {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if "unet" in d:
            u = dict(d["unet"])
            bad = set(u) - set(UNetConfig.__dataclass_fields__)
            if bad:
                raise CryofmInputError(f"unknown unet config keys {sorted(bad)}; known: {sorted(UNetConfig.__dataclass_fields__)}")
            d["unet"] = UNetConfig(**u)
        return cls(**d)


MODEL_CONFIGS = {
    # the shipped model: ~3.4 M parameters (14 MB float32), divisor 8
    "default": ModelConfig("default", UNetConfig(channels=(16, 32, 64, 96), attention=True)),
    # for tests: a 32^3 forward in tens of ms on a CPU, divisor 2
    "tiny": ModelConfig("tiny", UNetConfig(channels=(8, 16), attention=False, time_dim=32, groups=8)),
}


def analytic_error_power(t: torch.Tensor | float, shells: int = ERROR_POWER_SHELLS) -> torch.Tensor:
    """Fallback error power for untrained priors: the oracle *linear* estimator on white data.

    For standardised data with a flat spectrum (power 1 per component) the best linear estimate
    of x from x_t = (1-t)x + t e is `(1-t)/D x_t`, D = (1-t)^2 + t^2, with error power t^2/D in
    every shell.  Real maps are far from white, so this is only a scale-correct placeholder.

    Returns:
        [shells] (or [len(t), shells]) float32.
    """
    tt = torch.as_tensor(t, dtype=torch.float32)
    v = tt**2 / ((1 - tt) ** 2 + tt**2)
    return v[..., None].expand(*v.shape, shells).clone()


def _as_time(t: Any, batch: int, device) -> torch.Tensor:
    tt = torch.as_tensor(t, dtype=torch.float32, device=device)
    if tt.ndim == 0:
        tt = tt.expand(batch)
    if tt.shape != (batch,):
        raise CryofmInputError(f"t must be a scalar or shape [{batch}], got shape {tuple(tt.shape)}")
    if torch.any((tt < 0) | (tt > 1)) or not torch.all(torch.isfinite(tt)):
        raise CryofmInputError(f"t must lie in [0, 1], got values from {float(tt.min())} to {float(tt.max())}")
    return tt


class Prior:
    """The generative prior: a velocity field over standardised 1.5 A density patches.

    Flow convention: x_t = (1 - t) x + t e, t = 1 is noise, v = e - x, x_hat = x_t - t v.

    `velocity` refines the network's x_hat per Fourier shell by SURE (`cryofm.prior.sure`) unless
    `refine` (attribute, or the keyword) is False; the restoration samplers use the network alone.
    """

    def __init__(self, net: VelocityNet, config: ModelConfig, *, error_power_t: torch.Tensor | None = None,
                 error_power_value: torch.Tensor | None = None, metadata: dict | None = None) -> None:
        # Frozen for inference: no autograd graph is built unless the caller's x requires grad,
        # as `fps` does to back-propagate its data misfit through the network.
        self.net = net.eval().requires_grad_(False)
        self.config = config
        # velocity()'s default: refine the network's x_hat by per-shell SURE (cryofm.prior.sure)
        self.refine = True
        self.metadata = dict(metadata or {})
        if error_power_t is None:
            ts = torch.linspace(0.0, 1.0, 21)
            self._ep_t, self._ep_v = ts, analytic_error_power(ts)
            self.error_power_source = "analytic"
        else:
            self._ep_t = error_power_t.float().cpu()
            self._ep_v = error_power_value.float().cpu()
            self.error_power_source = self.metadata.get("error_power_source", "measured")

    # --- the contract -------------------------------------------------------------------
    @property
    def voxel_size(self) -> float:
        return float(self.config.voxel_size)

    @property
    def divisor(self) -> int:
        return self.config.unet.divisor

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def velocity(self, x: torch.Tensor, t: torch.Tensor | float, *, refine: bool | None = None) -> torch.Tensor:
        """v(x_t, t): x float32 [B, 1, D, H, W] (D, H, W multiples of `divisor`), t [B] in [0, 1].

        With `refine` (default: the prior's `refine` attribute, True) the network's one-step
        estimate is refined shell by shell by Stein's unbiased risk estimate (`cryofm.prior.sure`;
        one more network call) for `x_t` on the flow path; `refine=False` is the network alone.

        Returns:
            float32 [B, 1, D, H, W] on x's device.

        Raises:
            CryofmInputError: wrong rank, a side not divisible by `divisor`, or t out of range.
        """
        if isinstance(x, np.ndarray):
            raise CryofmInputError(f"x must be a torch tensor [B, 1, D, H, W], got a NumPy array of shape "
                                   f"{tuple(x.shape)}; pass torch.as_tensor(x)")
        if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[1] != 1:
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise CryofmInputError(f"x must be a tensor [B, 1, D, H, W], got {shape}; add batch/channel axes")
        bad = [s for s in x.shape[2:] if s % self.divisor]
        if bad:
            raise CryofmInputError(
                f"box {tuple(x.shape[2:])} has sides not divisible by {self.divisor}; pad or crop to a "
                f"multiple of prior.divisor"
            )
        tt = _as_time(t, x.shape[0], x.device)
        x = x.float()
        v = self.net(x, tt).float()
        if not (self.refine if refine is None else refine):
            return v
        t5 = tt[:, None, None, None, None]

        def network(z: torch.Tensor) -> torch.Tensor:
            return z - t5 * self.net(z, tt).float()

        x_hat = sure_let(network, x, tt, x - t5 * v)
        # v = (x_t - x_hat) / t; where t = 0 the refinement is off and v the network's
        return torch.where(t5 > 0, (x - x_hat) / t5.clamp_min(1e-12), v)

    def x_hat(self, x_t: torch.Tensor, t: torch.Tensor | float, *, refine: bool | None = None) -> torch.Tensor:
        """One-step estimate of the clean patch, `x_t - t v(x_t, t)` [B, 1, D, H, W]."""
        tt = _as_time(t, x_t.shape[0], x_t.device)
        return x_t - tt[:, None, None, None, None] * self.velocity(x_t, tt, refine=refine)

    def normalize(self, array: Any, stats: NormStats | None = None) -> tuple[Any, NormStats]:
        """Normalise with the config's function (standardize); returns (normalized, stats)."""
        return NORMALIZATIONS[self.config.normalization][0](array, stats)

    def denormalize(self, normalized: Any, stats: NormStats) -> Any:
        """Undo `normalize` with the same stats."""
        return NORMALIZATIONS[self.config.normalization][1](normalized, stats)

    def error_power(self, t: float | torch.Tensor) -> torch.Tensor:
        """Per-shell mean power of the network's x_hat - x (`refine=False`, as the samplers use it)
        at time t, shells 0..31 of a 64^3 box: float32 [32].

        Linear interpolation in t of the table shipped with the weights (`error_power.t`,
        `error_power.value`), measured on validation patches; `error_power_source` says
        "measured" or "analytic" (the fallback of `analytic_error_power`).
        """
        tv = float(t)
        if not 0.0 <= tv <= 1.0:
            raise CryofmInputError(f"t must lie in [0, 1], got {tv}")
        ts = self._ep_t
        i = int(torch.searchsorted(ts, torch.tensor(tv)).clamp(1, len(ts) - 1))
        t0, t1 = float(ts[i - 1]), float(ts[i])
        a = 0.0 if t1 == t0 else min(max((tv - t0) / (t1 - t0), 0.0), 1.0)
        return ((1 - a) * self._ep_v[i - 1] + a * self._ep_v[i]).clone()

    def set_error_power(self, t: torch.Tensor, value: torch.Tensor, source: str = "measured") -> None:
        """Replace the error-power table: t [T] increasing, value [T, 32]."""
        if value.shape != (len(t), ERROR_POWER_SHELLS):
            raise CryofmInputError(f"error power table must be [T, {ERROR_POWER_SHELLS}], got {tuple(value.shape)}")
        self._ep_t, self._ep_v = t.float().cpu(), value.float().cpu()
        self.error_power_source = source
        self.metadata["error_power_source"] = source

    def to(self, device: str | torch.device) -> "Prior":
        self.net.to(device)
        return self

    # --- construction and files -----------------------------------------------------------
    @classmethod
    def from_config(cls, model_config: ModelConfig | str | dict, seed: int = 0) -> "Prior":
        """A randomly initialised prior (tests, training start). `model_config` may be a name
        in `MODEL_CONFIGS` ("default", "tiny"), a dict or a ModelConfig.

        Note: the output layer is zero-initialised, so a fresh EDM-preconditioned prior is the
        linear white-spectrum denoiser; tests that need a non-trivial field can perturb weights.
        """
        if isinstance(model_config, str):
            if model_config not in MODEL_CONFIGS:
                raise CryofmInputError(f"unknown model config {model_config!r}; known: {sorted(MODEL_CONFIGS)}")
            model_config = MODEL_CONFIGS[model_config]
        elif isinstance(model_config, dict):
            model_config = ModelConfig.from_dict(model_config)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            net = VelocityNet(model_config.unet)
        finally:
            torch.random.set_rng_state(gen_state)
        return cls(net, model_config)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        out["error_power.t"] = self._ep_t.contiguous()
        out["error_power.value"] = self._ep_v.contiguous()
        return out

    def save(self, path: str | os.PathLike, *, extra_metadata: dict[str, str] | None = None) -> Path:
        """Write weights + error-power table (.safetensors, config JSON in the metadata) and a
        sibling .yaml of the config, each atomically."""
        import yaml

        from cryofm.io import atomic_output, save_tensors

        path = Path(path)
        meta = {"cryofm_config": json.dumps(self.config.to_dict()), "format": "cryofm-prior-v1",
                "error_power_source": self.error_power_source}
        for k, v in {**self.metadata, **(extra_metadata or {})}.items():
            if k not in meta:
                meta[k] = v if isinstance(v, str) else json.dumps(v)
        save_tensors(path, self.state_tensors(), metadata=meta)
        with atomic_output(path.with_suffix(".yaml")) as tmp:
            tmp.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> "Prior":
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise CryofmInputError(f"{path}: no such weights file; pass a .safetensors written by cryofm")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
            tensors = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise CryofmInputError(f"{path}: not a safetensors weights file ({exc})") from exc
        if "cryofm_config" in meta:
            cfg = ModelConfig.from_dict(json.loads(meta["cryofm_config"]))
        elif path.with_suffix(".yaml").is_file():
            import yaml

            cfg = ModelConfig.from_dict(yaml.safe_load(path.with_suffix(".yaml").read_text()))
        else:
            raise CryofmInputError(f"{path}: no model config in its metadata and no sibling {path.with_suffix('.yaml').name}")
        net = VelocityNet(cfg.unet)
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise CryofmInputError(f"{path}: weights do not match its config ({exc})") from exc
        prior = cls(net, cfg, error_power_t=tensors.get("error_power.t"),
                    error_power_value=tensors.get("error_power.value"), metadata=meta)
        # which weights these are, for reports (kept out of `metadata`, which `save` writes back)
        prior.source = {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        return prior.to(device)


def torch_device(device: str | torch.device) -> torch.device:
    """A usable torch device from "auto", "cpu", "cuda", "cuda:N" (or a torch.device): the one
    check of a device argument, for loading a prior, restoring and training."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise CryofmInputError(f"device {device!r} is not a device cryofm can use; pass 'cpu', 'cuda' or "
                               f"'auto'") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise CryofmInputError(f"device {device!r} is not supported; pass 'cpu', 'cuda' or 'auto'")
    if not torch.cuda.is_available():
        raise CryofmInputError(f"device {device!r} requested but no CUDA GPU is visible; use the CPU "
                               "(--device cpu or auto; device='cpu' in Python)")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CryofmInputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) visible; "
                               f"pick an index below that")
    return dev


def load_prior(path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> Prior:
    """Load a prior: the shipped default (offline, from the package) or a user's .safetensors.

    Raises:
        CryofmInputError: missing/invalid file, or no shipped weights in this installation.
    """
    if path is None:
        res = resources.files("cryofm.prior") / "weights" / "default.safetensors"
        with resources.as_file(res) as p:
            if not Path(p).is_file():
                raise CryofmInputError(
                    "the shipped weights cryofm/prior/weights/default.safetensors are missing from this "
                    "installation; reinstall cryofm or pass a weights path"
                )
            return Prior.load(p, device=torch_device(device))
    return Prior.load(path, device=torch_device(device))
