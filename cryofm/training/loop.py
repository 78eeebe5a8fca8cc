"""The training loop: flow matching on standardised patches.

Per step (all randomness from a generator seeded by (seed, rank, step), so a resumed run repeats
an uninterrupted one exactly): take the next batch of the epoch's permutation (DistributedSampler
semantics: each rank its own slice), standardise each 64^3 patch, crop, rotate by a random cube
symmetry, draw t (uniform / logit-normal) and e ~ N(0, 1), form x_t = (1-t)x + t e and regress
v = e - x with weight D(t) = (1-t)^2 + t^2 ("edm") or 1.  AdamW, warm-up + cosine, clipping,
EMA, bf16 autocast on CUDA only.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import shutil
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from cryofm.datasets.store import SPLIT_TRAIN, SPLIT_VALIDATION, PatchStore
from cryofm.errors import CryofmInputError
from cryofm.fourier import radial_frequency
from cryofm.prior.normalize import standardize
from cryofm.prior.prior import torch_device
from cryofm.prior.unet import VelocityNet, is_conditioning_key
from cryofm.progress import progress_bar
from cryofm.training.augment import apply_symmetry, cube_symmetries, random_crop
from cryofm.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from cryofm.training.config import TrainConfig, resolve_path
from cryofm.training.distributed import DistInfo, setup_distributed, teardown_distributed
from cryofm.training.ema import EMA
from cryofm.training.crowd import crowd
from cryofm.training.map_like import draw_map_like, map_like
from cryofm.training.schedule import lr_factor, sample_time

__all__ = ["TrainResult", "train", "prepare_store", "flow_loss"]


@dataclass
class TrainResult:
    """What a run did: final step, losses, where its checkpoints are."""

    step: int
    run_dir: Path
    checkpoint: Path | None
    losses: list[float]
    val_loss: float | None
    seconds: float
    stopped_by: str  # "max_steps" | "stop_at" | "max_minutes"
    initial_val_loss: float | None = None  # validation loss before the first step (fresh runs)


def _config_path(cfg: TrainConfig):
    return getattr(cfg, "_config_path", None)


def prepare_store(cfg: TrainConfig, info: DistInfo = DistInfo(), progress: bool = True) -> Path:
    """The patch store of a config, simulated first (rank 0) when missing and structures are given."""
    cp = _config_path(cfg)
    run_dir = resolve_path(cfg.run_dir, cp)
    store = resolve_path(cfg.data.store, cp) if cfg.data.store else run_dir / "patches.zarr"
    if not store.exists():
        if not cfg.data.structures:
            raise CryofmInputError(f"patch store {store} does not exist and the config lists no structures to simulate")
        if info.main:
            from cryofm.datasets.build import SimulationSettings, build_simulated_store

            store.parent.mkdir(parents=True, exist_ok=True)
            settings = SimulationSettings(rotations=cfg.data.rotations, patches=cfg.data.patches_per_map,
                                          box=cfg.data.box, seed=cfg.data.seed)
            build_simulated_store([resolve_path(s, cp) for s in cfg.data.structures], store, settings=settings,
                                  validation_entries=resolve_path(cfg.data.validation_entries, cp),
                                  workers=cfg.data.workers, progress=progress)
        if info.enabled:
            dist.barrier()
    return store


def flow_loss(v_pred: torch.Tensor, x: torch.Tensor, e: torch.Tensor, t: torch.Tensor, weight: str) -> torch.Tensor:
    """Mean over the batch of w(t) |v_pred - (e - x)|^2 (per-voxel mean); w = D(t) for "edm"."""
    err = (v_pred.float() - (e - x)) ** 2
    per = err.flatten(1).mean(1)
    if weight == "edm":
        per = per * ((1 - t) ** 2 + t**2)
    return per.mean()


class _Patches:
    """Standardised patches of a store, read lazily (one zarr chunk each)."""

    def __init__(self, store: PatchStore, indices: np.ndarray, cache: bool) -> None:
        self.store = store
        self.indices = indices
        self.cache = store.load(None)[indices] if cache else None  # small stores: all in memory

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, i: int) -> np.ndarray:
        """Patch i as stored (float32), before any augmentation."""
        raw = self.cache[i] if self.cache is not None else self.store.patches[int(self.indices[i])]
        return np.asarray(raw, dtype=np.float32)

    def get(self, i: int, blur_b: float = 0.0, transform=None, pack=None) -> torch.Tensor:
        """Patch i, packed among neighbours by `pack(raw)` when given, then blurred by `blur_b` or
        passed through `transform(raw, voxel_size)`, standardised."""
        raw = self.raw(i)
        if pack is not None:
            raw = pack(raw)
        if transform is not None:
            raw = transform(raw, self.store.voxel_size)
        elif blur_b > 0:
            raw = _blur(raw, blur_b, self.store.voxel_size)
        x, _ = standardize(raw)
        return torch.from_numpy(x)


def _blur(x: np.ndarray, b: float, voxel_size: float) -> np.ndarray:
    """Multiply the spectrum of a cubic patch by exp(-b s^2 / 4), s in 1/A."""
    s2 = np.asarray(radial_frequency(x.shape, voxel_size)) ** 2
    f3 = np.fft.rfftn(x, axes=(-3, -2, -1)) * np.exp(-b * s2 / 4)
    return np.fft.irfftn(f3, s=x.shape[-3:], axes=(-3, -2, -1)).astype(np.float32)


def _init_from(net: VelocityNet, path: Path) -> None:
    """Load a prior's weights (safetensors only) into `net` to fine-tune them."""
    from cryofm.prior.prior import Prior

    try:
        result = net.load_state_dict(Prior.load(path).net.state_dict(), strict=False)
    except RuntimeError as exc:
        raise CryofmInputError(f"init_weights {path}: weights do not fit the config's model ({exc})") from exc
    # a model that adds the zero-initialised spectrum conditioning may start from weights without it
    if result.unexpected_keys or not all(map(is_conditioning_key, result.missing_keys)):
        raise CryofmInputError(f"init_weights {path}: weights do not fit the config's model (missing "
                               f"{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]})")


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}/{rank}/{step}".encode()))


def _epoch_indices(n: int, seed: int, epoch: int, info: DistInfo) -> torch.Tensor:
    """DistributedSampler semantics: a seeded permutation per epoch, padded, rank-strided."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    total = math.ceil(n / info.world) * info.world
    perm = torch.cat([perm, perm[: total - n]])
    return perm[info.rank :: info.world]


def _map_like_transform(cfg: TrainConfig, gen: torch.Generator):
    """With probability map_like_prob, a transform making the raw patch look like a deposited map."""
    dc = cfg.data
    if dc.map_like_prob <= 0 or float(torch.rand(1, generator=gen)) >= dc.map_like_prob:
        return None
    d = draw_map_like(gen, resolution=dc.map_like_resolution, b_factor=dc.map_like_b,
                      low_damp=dc.map_like_low_damp, noise=dc.map_like_noise)
    return lambda raw, voxel_size: map_like(raw, voxel_size, d, gen)


def _crowd_transform(cfg: TrainConfig, patches: _Patches, gen: torch.Generator):
    """With probability crowd_prob, a function packing neighbours around the raw patch.  Draws
    nothing from `gen` when crowding is off, so older configs repeat their runs exactly."""
    dc = cfg.data
    if dc.crowd_prob <= 0 or float(torch.rand(1, generator=gen)) >= dc.crowd_prob:
        return None
    lo, hi = dc.crowd_neighbours
    count = int(torch.randint(int(lo), int(hi) + 1, (1,), generator=gen))

    def other() -> np.ndarray:
        return patches.raw(int(torch.randint(len(patches), (1,), generator=gen)))

    return lambda raw: crowd(raw, other, count, gen, same_prob=dc.crowd_same_prob)


def _batch(patches: _Patches, ids, cfg: TrainConfig, gen: torch.Generator, syms) -> torch.Tensor:
    xs = []
    crop = cfg.data.crop
    if cfg.data.crop_choices:
        crop = cfg.data.crop_choices[int(torch.randint(len(cfg.data.crop_choices), (1,), generator=gen))]
    for i in ids:
        pack = _crowd_transform(cfg, patches, gen)
        transform = _map_like_transform(cfg, gen)
        b = 0.0
        if transform is None and cfg.data.blur_prob > 0:
            u = torch.rand(2, generator=gen)
            b = float(u[1]) * cfg.data.blur_b_max if float(u[0]) < cfg.data.blur_prob else 0.0
        x = random_crop(patches.get(int(i), b, transform, pack), crop, gen)
        if len(syms) > 1:
            x = apply_symmetry(x, syms[int(torch.randint(len(syms), (1,), generator=gen))])
        xs.append(x)
    return torch.stack(xs)[:, None]


@torch.no_grad()
def _validate(net: torch.nn.Module, val: torch.Tensor, cfg: TrainConfig, device) -> float:
    """Deterministic validation loss: fixed t grid and noise, EMA weights."""
    if len(val) == 0:
        return float("nan")
    gen = torch.Generator().manual_seed(12345)
    n = len(val)
    t = ((torch.arange(n) + 0.5) / n)[torch.randperm(n, generator=gen)]
    e = torch.randn(val.shape, generator=gen)
    total = 0.0
    for s in range(0, n, cfg.batch_size):
        x, ee, tt = val[s : s + cfg.batch_size].to(device), e[s : s + cfg.batch_size].to(device), t[s : s + cfg.batch_size].to(device)
        xt = (1 - tt[:, None, None, None, None]) * x + tt[:, None, None, None, None] * ee
        with _autocast(device):
            v = net(xt, tt)
        total += float(flow_loss(v, x, ee, tt, cfg.loss_weight)) * len(x)
    return total / n


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(cfg: TrainConfig, *, resume: bool = False, device: str | None = None, stop_at: int | None = None,
          progress: bool = True, force: bool = False) -> TrainResult:
    """Run (or resume) training as configured.

    Args:
        cfg: the run's configuration.
        resume: continue from `<run_dir>/checkpoints/latest` (exactly: same batches, same noise).
        device: overrides `cfg.device` ("auto", "cpu", "cuda").
        stop_at: stop after this step (the lr schedule still spans `cfg.max_steps`).
        progress: tqdm bar on rank 0.
        force: start over in a run folder that holds an earlier run (checkpoints or log.csv),
            deleting them first; without it (and without `resume`) such a folder is refused.

    Returns:
        TrainResult.

    Raises:
        CryofmInputError: the run folder holds an earlier run and neither `resume` nor `force` is set.
    """
    dev = torch_device(device or cfg.device)
    info = setup_distributed(dev.type)
    if info.enabled and dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, info, dev, resume, stop_at, progress and info.main, force)
    finally:
        torch.set_num_threads(threads)
        teardown_distributed(info)


def _earlier_run(run_dir: Path) -> list[Path]:
    """What an earlier run left in `run_dir`: its checkpoints folder (if it holds any) and log.csv."""
    ckpt_dir = run_dir / "checkpoints"
    found = []
    if ckpt_dir.is_dir() and any(p.name.startswith("step_") or p.name == "latest" for p in ckpt_dir.iterdir()):
        found.append(ckpt_dir)
    if (run_dir / "log.csv").exists():
        found.append(run_dir / "log.csv")
    return found


def _train(cfg, info, dev, resume, stop_at, progress, force=False) -> TrainResult:
    cp = _config_path(cfg)
    run_dir = resolve_path(cfg.run_dir, cp)
    ckpt_dir = run_dir / "checkpoints"
    if not resume:
        earlier = _earlier_run(run_dir)
        if earlier and not force:
            raise CryofmInputError(f"run folder {run_dir} already holds a run ({', '.join(p.name for p in earlier)}); "
                                   f"add --resume to continue it, or --force to start over (deletes them)")
        if earlier and info.main:
            for p in earlier:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if info.enabled:
            dist.barrier()
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    store = PatchStore(prepare_store(cfg, info, progress))
    if store.box != cfg.data.box:
        raise CryofmInputError(f"store {store.path} has box {store.box}, config says {cfg.data.box}")
    train_idx = store.indices(SPLIT_TRAIN)
    if len(train_idx) == 0:
        raise CryofmInputError(f"store {store.path} has no training patches")
    small = len(store) * store.box**3 * 2 < 256 * 2**20
    patches = _Patches(store, train_idx, cache=small)
    val_idx = store.indices(SPLIT_VALIDATION, cfg.data.val_patches)
    vp = _Patches(store, val_idx, cache=small)
    crop = cfg.data.crop or store.box
    lo = (store.box - crop) // 2
    val = torch.stack([vp.get(i)[lo : lo + crop, lo : lo + crop, lo : lo + crop] for i in range(len(vp))])[:, None] \
        if len(vp) else torch.zeros(0)
    if info.main and cfg.data.val_patches > 0 and len(vp) == 0:
        print(f"cryofm: warning: validation is off: store {store.path} has no validation patches (split=1) but "
              f"data.val_patches is {cfg.data.val_patches}; build the store with validation entries to get a "
              f"validation loss", file=sys.stderr, flush=True)

    mcfg = cfg.model_config
    for side in [crop, *cfg.data.crop_choices]:
        if side % mcfg.unet.divisor or side > store.box:
            raise CryofmInputError(f"training crop {side} must be a multiple of the model divisor "
                                   f"{mcfg.unet.divisor} and at most the store's box {store.box}")
    torch.manual_seed(cfg.seed)
    net = VelocityNet(mcfg.unet)
    if cfg.init_weights and not resume:
        _init_from(net, resolve_path(cfg.init_weights, cp))
    net = net.to(dev)
    ema = EMA(net, cfg.optim.ema_decay)
    ema_net = copy.deepcopy(net).eval()
    model = torch.nn.parallel.DistributedDataParallel(net) if info.enabled else net
    named = list(net.named_parameters())
    conditioning = [p for n, p in named if is_conditioning_key(n)]
    groups = [{"params": [p for n, p in named if not is_conditioning_key(n)], "lr_scale": 1.0}]
    if conditioning:
        groups.append({"params": conditioning, "lr_scale": cfg.optim.conditioning_lr_scale})
    opt = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    step, epoch, pos = 0, 0, 0
    if resume:
        last = latest_checkpoint(ckpt_dir)
        if last is None:
            raise CryofmInputError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
        st = load_checkpoint(last, model=net, ema_state=ema.shadow, optimizer=opt)
        step, epoch, pos = st["step"], st["epoch"], st["position"]
    syms = cube_symmetries(cfg.data.flips) if cfg.data.rot90 else [((0, 1, 2), ())]
    per_rank = math.ceil(len(patches) / info.world)
    batches_per_epoch = max(per_rank // cfg.batch_size, 1)
    end = min(cfg.max_steps, stop_at) if stop_at is not None else cfg.max_steps

    log_path = run_dir / "log.csv"
    if info.main and (not log_path.exists() or not resume):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "loss", "lr", "val_loss", "seconds", "patches_per_s"])
    t_start = time.time()
    t_ckpt = t_start
    prior_seconds = 0.0
    if resume:
        prior_seconds = float(st.get("seconds", 0.0))
    losses: list[float] = []
    window: list[float] = []
    t_window = time.time()
    val_loss = None
    stopped_by = "stop_at" if end < cfg.max_steps else "max_steps"
    bar = progress_bar(total=end, initial=step, desc=cfg.name, unit="step", disable=not progress)
    last_ckpt = None

    def checkpoint() -> Path | None:
        state = {"step": step, "epoch": epoch, "position": pos, "seconds": prior_seconds + time.time() - t_start,
                 "scheduler": {"kind": "warmup_cosine", "step": step}, "config": cfg.to_dict(),
                 "world": info.world}
        if info.main:
            return save_checkpoint(ckpt_dir, model=net, ema=ema.state_dict(), optimizer=opt, state=state,
                                   keep=cfg.keep_checkpoints)
        return None

    if info.main and len(val) and cfg.val_every and step == 0:
        ema_net.load_state_dict(ema.state_dict())
        val_loss = _validate(ema_net, val, cfg, dev)
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow([0, "", "", f"{val_loss:.6f}", "0.0", ""])
    initial_val = val_loss
    while step < end:
        order = _epoch_indices(len(patches), cfg.seed, epoch, info)
        ids = order[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
        gen = _step_generator(cfg.seed, info.rank, step)
        x = _batch(patches, ids, cfg, gen, syms)
        t = sample_time(len(x), cfg.time_sampling, gen, cfg.logit_mean, cfg.logit_std)
        e = torch.randn(x.shape, generator=gen)
        x, t, e = x.to(dev), t.to(dev), e.to(dev)
        t5 = t[:, None, None, None, None]
        xt = (1 - t5) * x + t5 * e
        lr = cfg.optim.lr * lr_factor(step, cfg.optim.warmup_steps, cfg.max_steps, cfg.optim.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        with _autocast(dev):
            v = model(xt, t)
        loss = flow_loss(v, x, e, t, cfg.loss_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip and cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        opt.step()
        ema.update(net, step)
        step += 1
        pos += 1
        if pos >= batches_per_epoch:
            epoch, pos = epoch + 1, 0
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise RuntimeError(f"loss became {lv} at step {step}; lower optim.lr or check the data")
        losses.append(lv)
        window.append(lv)
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.4f}", lr=f"{lr:.2e}")
        val_now = None
        if cfg.val_every and step % cfg.val_every == 0 and len(val):
            ema_net.load_state_dict(ema.state_dict())
            val_now = val_loss = _validate(ema_net, val, cfg, dev)
        if info.main and (step % cfg.log_every == 0 or val_now is not None or step == end):
            dt = time.time() - t_window
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([step, f"{np.mean(window):.6f}", f"{lr:.6e}",
                                        "" if val_now is None else f"{val_now:.6f}",
                                        f"{prior_seconds + time.time() - t_start:.1f}",
                                        f"{len(window) * cfg.batch_size * info.world / max(dt, 1e-9):.2f}"])
            window, t_window = [], time.time()
        # stop / checkpoint decisions are rank 0's, broadcast so all ranks agree
        elapsed = prior_seconds + time.time() - t_start  # max_minutes counts the whole run, resumes included
        flags = torch.tensor([
            float(cfg.max_minutes is not None and elapsed >= cfg.max_minutes * 60),
            float(bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
                  or bool(cfg.checkpoint_minutes and time.time() - t_ckpt >= cfg.checkpoint_minutes * 60)),
        ])
        if info.enabled:
            dist.broadcast(flags, src=0)
        if flags[0] > 0:
            stopped_by = "max_minutes"
            break
        if flags[1] > 0 and step < end:
            last_ckpt = checkpoint()
            t_ckpt = time.time()
    bar.close()
    last_ckpt = checkpoint() or last_ckpt
    if len(val) and (val_loss is None or not cfg.val_every or step % cfg.val_every):
        ema_net.load_state_dict(ema.state_dict())
        val_loss = _validate(ema_net, val, cfg, dev)
        if info.main:
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([step, "", "", f"{val_loss:.6f}", f"{prior_seconds + time.time() - t_start:.1f}", ""])
    return TrainResult(step, run_dir, last_ckpt, losses, val_loss, prior_seconds + time.time() - t_start, stopped_by,
                       initial_val)
