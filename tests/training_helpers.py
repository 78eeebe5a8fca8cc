"""Helpers shared by the training tests (a module of its own: `conftest` is ambiguous when the
plugin's tests run in the same session)."""

from __future__ import annotations

from pathlib import Path

TINY_YAML = Path(__file__).resolve().parent.parent / "configs" / "train" / "tiny.yaml"


def tiny_config(run_dir: Path, store: Path, **overrides):
    """The tiny training config writing to `run_dir`, reading the patches of `store`."""
    from cryofm.training import load_train_config

    cfg = load_train_config(TINY_YAML, run_dir=str(run_dir), **overrides)
    cfg.data.store = str(store)
    return cfg
