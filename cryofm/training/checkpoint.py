"""Resumable checkpoints in safetensors + JSON (no pickle).

A checkpoint folder ``<run_dir>/checkpoints/step_0001234/`` holds:

- ``model.safetensors`` (raw weights), ``ema.safetensors`` (EMA weights);
- ``optimizer.safetensors``: AdamW state tensors named ``state.<param index>.<key>``, plus
  ``rng.torch`` (the global torch RNG state, uint8);
- ``state.json``: step, epoch, position in the epoch, scheduler, optimizer param groups, config.

``<run_dir>/checkpoints/latest`` names the newest complete one (written last).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint"]


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(folder: Path, *, model: torch.nn.Module, ema: dict, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], keep: int = 3) -> Path:
    """Write a checkpoint to `<folder>/step_XXXXXXX/` atomically and update `latest`."""
    from cryofm.io import save_tensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{state['step']:07d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tmp / "model.safetensors", {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    save_tensors(tmp / "ema.safetensors", {k: v.detach().cpu().contiguous() for k, v in ema.items()})
    tensors, opt_json = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.random.get_rng_state()
    save_tensors(tmp / "optimizer.safetensors", tensors)
    (tmp / "state.json").write_text(json.dumps({**state, "optimizer": opt_json}, indent=1, default=str))
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    (folder / "latest.tmp").write_text(name)
    os.replace(folder / "latest.tmp", folder / "latest")
    _prune(folder, final, int(state["step"]), keep)
    return final


def _step_of(path: Path) -> int | None:
    """The step number of a `step_XXXXXXX` folder, None for anything else."""
    digits = path.name[len("step_"):]
    return int(digits) if path.name.startswith("step_") and digits.isdigit() else None


def _prune(folder: Path, newest: Path, step: int, keep: int) -> None:
    """Keep the `keep` highest-step checkpoints up to `step` (the one just written, `newest`, always).

    Ordered by step number, not by name; folders of a later step than the one just written are not
    this run's history and are left alone.
    """
    if keep <= 0:
        return
    ours = sorted((s, p) for p in folder.glob("step_*")
                  if p.is_dir() and (s := _step_of(p)) is not None and s <= step and p != newest)
    for _, p in ours[: max(len(ours) - (keep - 1), 0)]:
        shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    marker = Path(folder) / "latest"
    if not marker.is_file():
        return None
    p = Path(folder) / marker.read_text().strip()
    return p if p.is_dir() else None


def load_checkpoint(path: Path, *, model: torch.nn.Module, ema_state: dict, optimizer: torch.optim.Optimizer) -> dict:
    """Load a checkpoint in place; returns its state.json dict."""
    from safetensors.torch import load_file

    path = Path(path)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    ema = load_file(str(path / "ema.safetensors"))
    for k in ema_state:
        ema_state[k].copy_(ema[k])
    state = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "optimizer.safetensors"))
    torch.random.set_rng_state(tensors.pop("rng.torch"))
    opt_json = state["optimizer"]
    opt_state: dict[int, dict] = {}
    for name, val in tensors.items():
        _, idx, key = name.split(".", 2)
        opt_state.setdefault(int(idx), {})[key] = val
    for idx, sc in opt_json["scalars"].items():
        opt_state.setdefault(int(idx), {}).update(sc)
    groups = opt_json["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    return state
