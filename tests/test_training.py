"""Training: the tiny config learns, resume is exact, configs are strict, torchrun with gloo works."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from cryofm.errors import CryofmInputError
from cryofm.training import load_train_config, train
from training_helpers import tiny_config
from cryofm.training.augment import apply_symmetry, cube_symmetries
from cryofm.training.schedule import lr_factor, sample_time

ROOT = Path(__file__).resolve().parent.parent
TINY_YAML = ROOT / "configs" / "train" / "tiny.yaml"


_tiny = tiny_config


def test_tiny_config_trains_and_loss_falls(tmp_path, tiny_store):
    result = train(_tiny(tmp_path, tiny_store), progress=False)
    assert result.step == 40 and result.stopped_by == "max_steps"
    first, last = np.mean(result.losses[:8]), np.mean(result.losses[-8:])
    assert last < first, (first, last)
    # the deterministic validation loss (fixed t and noise, EMA weights) falls clearly
    assert result.val_loss < 0.9 * result.initial_val_loss, (result.initial_val_loss, result.val_loss)
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,val_loss,seconds,patches_per_s" and len(log) > 5
    ck = result.checkpoint
    assert (ck / "model.safetensors").is_file() and (ck / "ema.safetensors").is_file()
    assert json.loads((ck / "state.json").read_text())["step"] == 40


def test_resume_continues_at_the_exact_step(tmp_path, tiny_store):
    over = {"max_steps": 8, "val_every": 0}
    a = train(_tiny(tmp_path / "a", tiny_store, **over), stop_at=4, progress=False)
    assert a.step == 4 and a.stopped_by == "stop_at"
    a2 = train(_tiny(tmp_path / "a", tiny_store, **over), resume=True, progress=False)
    b = train(_tiny(tmp_path / "b", tiny_store, **over), progress=False)
    assert a2.step == b.step == 8
    np.testing.assert_allclose(a2.losses, b.losses[4:], rtol=1e-6)
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        wa, wb = load_file(str(a2.checkpoint / name)), load_file(str(b.checkpoint / name))
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-7, msg=f"{name}:{k}")
    sa = json.loads((a2.checkpoint / "state.json").read_text())
    sb = json.loads((b.checkpoint / "state.json").read_text())
    assert (sa["step"], sa["epoch"], sa["position"]) == (sb["step"], sb["epoch"], sb["position"])


def test_resume_without_checkpoint_is_an_error(tmp_path, tiny_store):
    with pytest.raises(CryofmInputError, match="no checkpoint"):
        train(_tiny(tmp_path, tiny_store), resume=True, progress=False)


def test_config_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "optim": {"lr": 1e-3, "learning_rate": 2}}))
    with pytest.raises(CryofmInputError, match="learning_rate"):
        load_train_config(bad)
    bad.write_text(yaml.safe_dump({"time_sampling": "beta"}))
    with pytest.raises(CryofmInputError, match="time_sampling"):
        load_train_config(bad)
    cfg = load_train_config(ROOT / "configs" / "train" / "default.yaml")
    assert cfg.data.flips is False and cfg.model_config.unet.divisor == 8
    assert isinstance(cfg.optim.betas, tuple)


def test_schedule_and_time_sampling():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.55)
    g = torch.Generator().manual_seed(0)
    t = sample_time(20000, "logit_normal", g)
    assert 0 < float(t.min()) and float(t.max()) < 1 and abs(float(t.median()) - 0.5) < 0.02
    u = sample_time(20000, "uniform", g)
    assert abs(float(u.mean()) - 0.5) < 0.01


def test_cube_symmetries_are_the_rotation_group():
    rots = cube_symmetries(flips=False)
    assert len(rots) == 24 and len(cube_symmetries(flips=True)) == 48
    x = torch.arange(27.0).reshape(3, 3, 3)
    images = {tuple(apply_symmetry(x, s).flatten().tolist()) for s in rots}
    assert len(images) == 24  # all distinct
    # a proper rotation never equals a mirror image of an asymmetric object
    mirrors = {tuple(apply_symmetry(x, s).flatten().tolist()) for s in cube_symmetries(True)} - images
    assert len(mirrors) == 24 and tuple(torch.flip(x, [0]).flatten().tolist()) in mirrors


def test_torchrun_two_processes_gloo(tmp_path, tiny_store):
    cfg = load_train_config(TINY_YAML)
    values = dataclasses.asdict(cfg)
    values.update(run_dir=str(tmp_path / "ddp"), max_steps=3, val_every=0, log_every=1)
    values["data"]["store"] = str(tiny_store)
    values["data"]["crop"] = 8
    values["model"] = "tiny"
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(values))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "cryofm", "train", str(path), "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "checkpoints" / "step_0000003" / "state.json").read_text())
    assert state["world"] == 2 and state["step"] == 3
    rows = (tmp_path / "ddp" / "log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows[:3]] == ["1", "2", "3"]  # one log line per step, then final val


def test_blur_augmentation_is_a_b_factor():
    from cryofm.training.loop import _blur

    x = np.zeros((32, 32, 32), np.float32)
    x[16, 16, 16] = 1.0
    y = _blur(x, 100.0, 1.5)
    assert y.sum() == pytest.approx(1.0, rel=1e-5)  # DC kept
    prof = y.sum((1, 2))
    z = (np.arange(32) - 16) * 1.5
    var = float((prof * z**2).sum() / prof.sum())
    assert var == pytest.approx(100.0 / (8 * np.pi**2), rel=0.03)  # B = 8 pi^2 <u^2>


def test_cli_train_export_and_sample(tmp_path, tiny_store):
    from cryofm.cli.main import main
    from cryofm.io import read_map
    from cryofm.prior import load_prior

    cfg = load_train_config(TINY_YAML)
    values = dataclasses.asdict(cfg)
    values.update(run_dir=str(tmp_path / "run"), max_steps=2, val_every=0)
    values["data"]["store"] = str(tiny_store)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    assert main(["train", str(path), "--quiet"]) == 0
    weights = tmp_path / "w.safetensors"
    assert main(["export-prior", str(tmp_path / "run"), "-o", str(weights)]) == 0
    prior = load_prior(weights)
    assert prior.metadata["trained_steps"] == "2" and prior.error_power_source == "analytic"
    out = tmp_path / "samples"
    assert main(["sample", "-n", "2", "-o", str(out), "--steps", "2", "--box", "16", "--model", str(weights),
                 "--solver", "euler"]) == 0
    vol = read_map(out / "sample_001.mrc")
    assert vol.shape == (16, 16, 16) and np.allclose(vol.voxel_size, 1.5)
    # refuses to overwrite without --force; a box that is not a multiple of the divisor is an input error
    assert main(["sample", "-n", "1", "-o", str(out), "--steps", "1", "--box", "16", "--model", str(weights)]) == 2
    assert main(["sample", "-n", "1", "-o", str(tmp_path / "s2"), "--box", "15", "--model", str(weights)]) == 2
    # bad --box / --device: an input error before anything is created
    for extra in (["--box", "0"], ["--box", "-8"], ["--box", "15"]) + ((["--device", "cuda"],)
                                                                       if not torch.cuda.is_available() else ()):
        assert main(["sample", "-n", "1", "-o", str(tmp_path / "s3"), "--steps", "1", "--model", str(weights),
                     *extra]) == 2, extra
        assert not (tmp_path / "s3").exists(), extra


def _fill_run(run_dir: Path) -> dict[str, bytes]:
    """Put an earlier run's log.csv and checkpoints (higher steps than a new run writes) in `run_dir`."""
    files = {"log.csv": b"step,loss\n500,0.1\n", "checkpoints/latest": b"step_0000500",
             "checkpoints/step_0000400/state.json": b"{}", "checkpoints/step_0000500/state.json": b"{}"}
    for name, data in files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)
    return files


def test_new_run_in_an_old_run_folder_is_refused_unless_force(tmp_path, tiny_store):
    from cryofm.cli.main import main

    over = {"max_steps": 2, "val_every": 0, "keep_checkpoints": 1}
    files = _fill_run(tmp_path)
    with pytest.raises(CryofmInputError, match="--resume to continue it, or --force"):
        train(_tiny(tmp_path, tiny_store, **over), progress=False)
    assert {n: (tmp_path / n).read_bytes() for n in files} == files  # untouched
    values = dataclasses.asdict(load_train_config(TINY_YAML))
    values.update(run_dir=str(tmp_path), **over)
    values["data"]["store"] = str(tiny_store)
    cfg = tmp_path.parent / f"{tmp_path.name}.yaml"
    cfg.write_text(yaml.safe_dump(values))
    assert main(["train", str(cfg), "--quiet"]) == 2
    assert {n: (tmp_path / n).read_bytes() for n in files} == files
    # --force starts over: the old checkpoints and log are gone, the new checkpoint is `latest`
    assert main(["train", str(cfg), "--quiet", "--force"]) == 0
    ck = tmp_path / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step_0000002"]
    assert (ck / "latest").read_text() == "step_0000002"
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,lr") and "500" not in [r.split(",")[0] for r in rows]


def test_pruning_keeps_the_checkpoint_just_written(tmp_path):
    from cryofm.training.checkpoint import latest_checkpoint, save_checkpoint

    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    ema = {k: v.clone() for k, v in net.state_dict().items()}
    ck = tmp_path / "checkpoints"
    for step in (400, 500, 2, 3, 4):  # an old run's later steps sort after the new run's by name too
        save_checkpoint(ck, model=net, ema=ema, optimizer=opt, state={"step": step}, keep=2)
    # step 4 was just written and is kept with the next lower one (3); 2 is pruned; the later steps
    # 400 and 500 are not this run's history and are left alone
    assert sorted(p.name for p in ck.glob("step_*")) == ["step_0000003", "step_0000004", "step_0000400",
                                                          "step_0000500"]
    assert latest_checkpoint(ck).name == "step_0000004"


@pytest.mark.parametrize("text, match", [
    ("batch_size: eight", r"batch_size = 'eight' is not int"),
    ("data: {crop: '16'}", r"data\.crop = '16' is not int or null"),
    ("max_steps: 40.5", r"max_steps = 40\.5 is not int"),
    ("data: {rot90: 'no'}", r"data\.rot90 = 'no' is not bool"),
    ("data: {val_patches: -4}", r"data\.val_patches = -4 must not be negative"),
    ("optim: {lr: fast}", r"optim\.lr = 'fast' is not float"),
    ("optim: {betas: [0.9]}", r"optim\.betas = \[0\.9\] is not \[float, float\]"),
    ("data: {crop_choices: [8, x]}", r"data\.crop_choices\[1\] = 'x' is not int"),
    ("name: [a]", r"name = \['a'\] is not str"),
    ("just a string", r"must be a mapping"),
    ("data: 5", r"data must be a mapping"),
    ("a: [1, 2", r"not valid YAML"),
])
def test_config_values_are_type_checked(tmp_path, text, match):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\n")
    with pytest.raises(CryofmInputError, match=match) as info:
        load_train_config(bad)
    assert "\n" not in str(info.value)


def test_config_accepts_numeric_strings_for_floats(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("optim: {lr: 5e-3, weight_decay: 1}\nmax_minutes: 2\ndata: {crop: 16.0}\n")
    cfg = load_train_config(good)  # PyYAML reads 5e-3 as the string '5e-3'
    assert cfg.optim.lr == 0.005 and isinstance(cfg.optim.weight_decay, float)
    assert cfg.max_minutes == 2.0 and cfg.data.crop == 16 and isinstance(cfg.data.crop, int)


def test_store_without_validation_patches_warns(tmp_path, capsys):
    from cryofm.datasets import SimulationSettings, build_simulated_store

    store, n, _ = build_simulated_store([ROOT / "data" / "tiny_structures" / "1crn.pdb.gz"], tmp_path / "s.zarr",
                                        settings=SimulationSettings(rotations=1, patches=2, box=32), workers=1,
                                        progress=False)
    result = train(_tiny(tmp_path / "run", store, max_steps=1, val_every=0), progress=False)
    assert result.val_loss is None
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "validation is off" in warnings[0] and "val_patches" in warnings[0]
