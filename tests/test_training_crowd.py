"""Crowded boxes (cryofm.training.crowd) and their place in the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryofm.training.crowd import crowd, shifted, support
from training_helpers import tiny_config


def _molecule(n: int = 32, radius: float = 5.0, centre=None) -> np.ndarray:
    """A positive ball of density on zero solvent."""
    c = np.full(3, (n - 1) / 2) if centre is None else np.asarray(centre, dtype=float)
    z, y, x = np.indices((n, n, n))
    r2 = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
    return np.exp(-r2 / (2 * radius**2)).astype(np.float32) * (r2 < (2.2 * radius) ** 2)


def test_shift_fills_zeros_and_never_wraps():
    x = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    y = shifted(x, (1, -2, 0))
    np.testing.assert_array_equal(y[1:, :3, :], x[:-1, 2:, :])
    assert np.all(y[0] == 0) and np.all(y[:, 3:, :] == 0)
    assert not np.any(shifted(x, (4, 0, 0)))


def test_neighbours_touch_without_interpenetrating():
    x = _molecule()
    other = _molecule(radius=4.0)
    gen = torch.Generator().manual_seed(0)
    y = crowd(x, lambda: other, 3, gen, same_prob=0.5, max_overlap=0.03)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(y >= x)  # the patch's own density is kept
    assert support(y).sum() > 1.5 * support(x).sum()  # the box is fuller
    # what was added lies beside the molecule, not on it
    added = (y > x + 1e-6) & support(x)
    assert added.sum() <= 0.03 * support(x).sum() * 3


def test_crowding_is_deterministic_in_its_generator():
    x = _molecule()
    rng = np.random.default_rng(1)
    pool = [_molecule(radius=3.0 + i, centre=rng.uniform(12, 20, 3)) for i in range(3)]

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return crowd(x, lambda: pool[int(torch.randint(3, (1,), generator=gen))], 2, gen)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))
    np.testing.assert_array_equal(crowd(x, lambda: pool[0], 0, torch.Generator()), x)


def test_a_full_box_takes_no_neighbour():
    # density everywhere: any neighbour would overlap; values vary so that one placed by mistake shows
    x = np.random.default_rng(2).uniform(0.5, 1.0, (16, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(crowd(x, lambda: x, 3, torch.Generator().manual_seed(0)), x)


def test_training_with_crowded_boxes_and_unchanged_draws_when_off(tmp_path, tiny_store):
    from cryofm.datasets import PatchStore
    from cryofm.training import train
    from cryofm.training.loop import _crowd_transform, _Patches

    cfg = tiny_config(tmp_path / "run", tiny_store, max_steps=2, val_every=0)
    store = PatchStore(tiny_store)
    patches = _Patches(store, store.indices(0), cache=True)
    gen = torch.Generator().manual_seed(9)
    state = gen.get_state()
    assert _crowd_transform(cfg, patches, gen) is None  # crowd_prob 0: nothing drawn
    assert torch.equal(gen.get_state(), state)
    cfg.data.crowd_prob = 1.0
    pack = _crowd_transform(cfg, patches, gen)
    raw = patches.raw(0)
    packed = pack(raw)
    assert packed.shape == raw.shape and np.all(packed >= raw)
    result = train(cfg, progress=False)
    assert result.step == 2 and np.all(np.isfinite(result.losses))


@pytest.mark.parametrize("value", [[2, 1], [-1, 2]])
def test_bad_neighbour_range_is_refused(tmp_path, value):
    from cryofm.errors import CryofmInputError
    from cryofm.training import load_train_config
    from training_helpers import TINY_YAML

    with pytest.raises(CryofmInputError, match="crowd_neighbours"):
        load_train_config(TINY_YAML, run_dir=str(tmp_path), data={"crowd_neighbours": value})
