"""Turn a training checkpoint into a shipped prior: EMA weights + a measured error-power table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from cryofm.errors import CryofmInputError
from cryofm.prior.prior import ERROR_POWER_SHELLS, ModelConfig, Prior
from cryofm.prior._spectrum import shell_power
from cryofm.prior.unet import VelocityNet
from cryofm.training.map_like import draw_map_like, map_like

__all__ = ["export_prior", "measure_error_power", "prior_from_checkpoint", "ERROR_POWER_TIMES"]

ERROR_POWER_TIMES = tuple(np.round(np.linspace(0.0, 1.0, 11), 4))


def prior_from_checkpoint(checkpoint: str | os.PathLike, *, ema: bool = True) -> Prior:
    """A Prior from a checkpoint folder (or a run folder: its latest checkpoint); EMA weights by default."""
    from safetensors.torch import load_file

    from cryofm.training.checkpoint import latest_checkpoint
    from cryofm.training.config import TrainConfig, _build

    path = Path(checkpoint)
    if (path / "checkpoints").is_dir():
        path = latest_checkpoint(path / "checkpoints") or path
    if not (path / "state.json").is_file():
        raise CryofmInputError(f"{checkpoint}: not a checkpoint folder (no state.json); pass runs/NAME or a step_* folder")
    state = json.loads((path / "state.json").read_text())
    cfg = _build(TrainConfig, state["config"], "checkpoint config")
    mcfg: ModelConfig = cfg.model_config
    net = VelocityNet(mcfg.unet)
    net.load_state_dict(load_file(str(path / ("ema.safetensors" if ema else "model.safetensors"))))
    meta = {"trained_steps": str(state["step"]), "train_seconds": f"{state.get('seconds', 0):.0f}",
            "train_config": cfg.name, "weights": "ema" if ema else "raw"}
    return Prior(net, mcfg, metadata=meta)


@torch.no_grad()
def measure_error_power(prior: Prior, patches: torch.Tensor, times=ERROR_POWER_TIMES, *, seed: int = 0,
                        batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-shell mean power of x_hat - x over validation patches, for each t: the network's own
    x_hat (`refine=False`), the one the restoration samplers combine with the data.

    Args:
        prior: the model.
        patches: standardised clean patches [N, 1, 64, 64, 64].
        times: t values (increasing, in [0, 1]).

    Returns:
        (t [T], power [T, 32]) float32; t = 0 has zero error by construction.
    """
    if patches.ndim != 5 or patches.shape[-1] != 2 * ERROR_POWER_SHELLS:
        raise CryofmInputError(f"patches must be [N, 1, 64, 64, 64], got {tuple(patches.shape)}")
    gen = torch.Generator().manual_seed(seed)
    ts = torch.tensor(times, dtype=torch.float32)
    out = torch.zeros(len(ts), ERROR_POWER_SHELLS)
    dev = prior.device
    for k, t in enumerate(ts.tolist()):
        acc = torch.zeros(ERROR_POWER_SHELLS)
        for s in range(0, len(patches), batch):
            x = patches[s : s + batch]
            e = torch.randn(x.shape, generator=gen)
            xt = (1 - t) * x + t * e
            xh = prior.x_hat(xt.to(dev), t, refine=False).cpu() if t > 0 else x
            acc += shell_power((xh - x)[:, 0]).sum(0)
        out[k] = acc / len(patches)
    return ts, out


def export_prior(checkpoint: str | os.PathLike, output: str | os.PathLike, *, store: str | os.PathLike | None = None,
                 patches: int = 8, ema: bool = True, seed: int = 0, map_like_fraction: float = 0.0) -> Prior:
    """Export EMA weights of a checkpoint to `output` (.safetensors + .yaml), with the error-power
    table measured on up to `patches` validation patches of `store` (analytic fallback without).

    `map_like_fraction` of those patches (every k-th) are first made to look like deposited maps
    (`cryofm.training.map_like`, default ranges, seeded): a prior errs more on real maps than on
    clean simulations, and the `dc` sampler trusts it according to this table."""
    from cryofm.datasets.store import SPLIT_VALIDATION, PatchStore
    from cryofm.prior.normalize import standardize

    prior = prior_from_checkpoint(checkpoint, ema=ema)
    if store is not None:
        ps = PatchStore(store)
        raw = ps.load(SPLIT_VALIDATION, patches)
        if len(raw) == 0:
            raise CryofmInputError(f"{store}: no validation patches to measure the error power on")
        gen = torch.Generator().manual_seed(seed)
        raw = np.asarray(raw, dtype=np.float32)
        count = round(map_like_fraction * len(raw))
        made = np.linspace(0, len(raw) - 1, count).round().astype(int) if count else []
        for k in made:
            raw[k] = map_like(raw[k], ps.voxel_size, draw_map_like(gen), gen)
        x = torch.stack([torch.from_numpy(standardize(r)[0]) for r in raw])[:, None]
        t, value = measure_error_power(prior, x, seed=seed)
        what = f"{len(x)} validation patches of {Path(store).name}" + (f" ({len(made)} made map-like)" if len(made) else "")
        prior.set_error_power(t, value, source=f"measured on {what}")
    prior.save(output)
    return prior
