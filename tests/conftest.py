"""Shared pytest fixtures.

`data_dir` is the repository's ``data/`` folder (small sample maps, see data/README.md);
tests never read ../shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's sample-data folder (``data/``)."""
    if not _DATA_DIR.is_dir():  # pragma: no cover - a broken checkout
        pytest.fail(f"sample data folder {_DATA_DIR} is missing; it ships with the repository")
    return _DATA_DIR


TINY_YAML = _DATA_DIR.parent / "configs" / "train" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """The tiny training config's patch store, simulated once for the session."""
    from cryofm.training import load_train_config, prepare_store

    cfg = load_train_config(TINY_YAML, run_dir=str(tmp_path_factory.mktemp("store")))
    return prepare_store(cfg, progress=False)

