"""Typed training configuration loaded from YAML; unknown keys are errors.

Relative paths in a config are resolved against the current directory first, then against the
repository root the config file sits in (``configs/train/NAME.yaml`` -> two folders up), so
``../shared/data/structures`` works from the repository root.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from cryofm.errors import CryofmInputError
from cryofm.prior.prior import MODEL_CONFIGS, ModelConfig

__all__ = ["DataConfig", "OptimConfig", "TrainConfig", "load_train_config", "resolve_path"]


@dataclass
class DataConfig:
    """Where the training patches come from and how they are augmented.

    store: a patch store made by `cryofm data simulate`; when missing and `structures` is set,
        it is simulated first (into `store`, or `<run_dir>/patches.zarr` when store is null).
    structures: structure files/folders to simulate from.
    validation_entries: file of held-out entry ids (flagged split=1 in the store).
    rotations, patches_per_map, box, seed, workers: simulation settings (see SimulationSettings).
    crop: random crop of each 64^3 patch to this side for training (the net is fully
        convolutional; crops are standardised with the full patch's statistics); null = no crop.
    rot90: random proper rotations of the cube (24).
    flips: also mirror images (48 in all).  Off by default: a mirror image changes handedness
        (alpha helices become left-handed), which real protein density never shows.
    val_patches: validation patches for the periodic validation loss.
    blur_prob, blur_b_max: with probability `blur_prob` a patch is blurred further, before
        standardisation, by a B-factor uniform in [0, blur_b_max] A^2 (exp(-B s^2/4) in Fourier
        space), so the prior also sees lower-resolution maps than the simulation's B range gives
        (b_extra + 200 A^2 reaches d = sqrt(B)/2 ~ 8 A).  0 = off.
    crop_choices: when set, each step crops its whole batch to a side drawn uniformly from this
        list (e.g. [48, 48, 64]: mostly cheap crops, full patches often enough to learn the
        lowest shells of a 64^3 box); `crop` then only sets the validation crop.
    map_like_prob: probability that a patch is made to look like a deposited map instead of being
        blurred (cryofm.training.map_like: low-pass at a resolution drawn log-uniformly from
        `map_like_resolution`, B from `map_like_b` (negative sharpens), lowest shells damped by a
        fraction from `map_like_low_damp`, band-limited noise of relative std from
        `map_like_noise`).  0 = off.
    crowd_prob: probability that neighbours are packed around a patch before anything else
        (cryofm.training.crowd: a box full of density, as a crop of a filament or complex),
        `crowd_neighbours` of them (inclusive range), each a copy of the patch itself with
        probability `crowd_same_prob`, else another training patch.  0 = off.
    """

    store: str | None = None
    structures: list[str] = field(default_factory=list)
    validation_entries: str | None = None
    rotations: int = 3
    patches_per_map: int = 3
    box: int = 64
    seed: int = 0
    workers: int = 2
    crop: int | None = 32
    rot90: bool = True
    flips: bool = False
    val_patches: int = 32
    blur_prob: float = 0.0
    blur_b_max: float = 0.0
    crop_choices: list[int] = field(default_factory=list)
    map_like_prob: float = 0.0
    map_like_resolution: tuple[float, float] = (2.8, 10.0)
    map_like_b: tuple[float, float] = (-150.0, 50.0)
    map_like_low_damp: tuple[float, float] = (0.0, 0.9)
    map_like_noise: tuple[float, float] = (0.0, 0.5)
    crowd_prob: float = 0.0
    crowd_neighbours: tuple[int, int] = (1, 4)
    crowd_same_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("blur_prob", "map_like_prob", "crowd_prob", "crowd_same_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise CryofmInputError(f"data.{name} is a probability, in [0, 1]; got {getattr(self, name)}")
        lo, hi = (int(v) for v in self.crowd_neighbours)
        if not 0 <= lo <= hi:
            raise CryofmInputError(f"data.crowd_neighbours must be [min, max] with 0 <= min <= max, "
                                   f"got {list(self.crowd_neighbours)}")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to `lr * min_lr_ratio` at `max_steps`.

    conditioning_lr_scale: learning-rate multiplier for the spectrum conditioning's parameters
        (`UNetConfig.spectrum_shells`), which start from zero when fine-tuning weights without it.
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    conditioning_lr_scale: float = 1.0


@dataclass
class TrainConfig:
    """A training run.

    model: a name in MODEL_CONFIGS ("default", "tiny") or a full model config mapping.
    time_sampling: "uniform" or "logit_normal" (logit t ~ N(logit_mean, logit_std)).
    loss_weight: "edm" (D(t) |v - v*|^2, equals the preconditioned net's unit-variance target)
        or "uniform" (plain |v - v*|^2).
    max_minutes: wall-clock stop for the whole run, resumed segments included (a checkpoint is
        written), null = none.
    checkpoint_minutes / checkpoint_every: save after this many minutes / steps (both may be set).
    init_weights: a prior's .safetensors (e.g. the shipped default) to start from: fine-tuning
        with a fresh optimiser and schedule; its model config must match `model`.  Ignored when
        resuming (the checkpoint has the weights).
    """

    name: str = "default"
    run_dir: str = "runs/default"
    model: Any = "default"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 8
    max_steps: int = 10000
    max_minutes: float | None = None
    time_sampling: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    loss_weight: str = "edm"
    seed: int = 0
    log_every: int = 10
    val_every: int = 200
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 10.0
    keep_checkpoints: int = 3
    device: str = "auto"
    threads: int | None = None
    init_weights: str | None = None

    def __post_init__(self) -> None:
        if self.time_sampling not in ("uniform", "logit_normal"):
            raise CryofmInputError(f"time_sampling must be 'uniform' or 'logit_normal', got {self.time_sampling!r}")
        if self.loss_weight not in ("edm", "uniform"):
            raise CryofmInputError(f"loss_weight must be 'edm' or 'uniform', got {self.loss_weight!r}")
        if self.batch_size < 1 or self.max_steps < 1:
            raise CryofmInputError(f"batch_size and max_steps must be >= 1, got {self.batch_size}, {self.max_steps}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise CryofmInputError(f"device must be auto, cpu or cuda, got {self.device!r}")

    @property
    def model_config(self) -> ModelConfig:
        if isinstance(self.model, str):
            if self.model not in MODEL_CONFIGS:
                raise CryofmInputError(f"unknown model {self.model!r}; known: {sorted(MODEL_CONFIGS)}")
            return MODEL_CONFIGS[self.model]
        return ModelConfig.from_dict(self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _TypeMismatch(CryofmInputError):
    """A config value of the wrong type (a union tries its next member)."""


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _type_name(hint) -> str:
    """A readable name of a field annotation: int, float, bool, str, list of int, ..."""
    if hint is Any:
        return "any value"
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is tuple:
        return f"[{', '.join(_type_name(a) for a in args)}]"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _check(value: Any, hint, key: str, where: str) -> Any:
    """`value` checked (and converted where harmless) against the annotation `hint` of field `key`.

    int: an int (not a bool), or an integral float; float: a number, or a numeric string as
    PyYAML leaves `5e-3`; bool: true/false only; str: a string; T | None: null or T; list[T]: a
    list; tuple[A, B]: a list of that length; a dataclass: a mapping.  Ints must be >= 0.
    """
    def bad() -> CryofmInputError:
        return _TypeMismatch(f"{where}: {key} = {value!r} is not {_type_name(hint)}; "
                                f"write it as {_type_name(hint)} in the config")

    if hint is Any:
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for a in inner:
            try:
                return _check(value, a, key, where)
            except _TypeMismatch:
                pass
        raise bad()
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, prefix=f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        return [_check(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value)] if args else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad()
        return tuple(_check(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        if value < 0:
            raise CryofmInputError(f"{where}: {key} = {value} must not be negative; write a number >= 0")
        return value
    if hint is float:
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value)  # PyYAML reads 5e-3 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if not math.isfinite(value):
            raise CryofmInputError(f"{where}: {key} = {value!r} is not a finite number; write a finite float")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value


def _build(cls, values: dict, where: str, prefix: str = ""):
    if not isinstance(values, dict):
        what = f"{prefix[:-1]} " if prefix else "the config "
        raise CryofmInputError(f"{where}: {what}must be a mapping of keys to values, got "
                               f"{type(values).__name__} {values!r:.60}; see configs/train/ for examples")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise CryofmInputError(f"{where}: unknown keys {[prefix + str(k) for k in sorted(unknown, key=str)]}; "
                               f"known: {sorted(names)}")
    hints = get_type_hints(cls)
    kwargs = {k: _check(v, hints[k], prefix + k, where) for k, v in values.items()}
    return cls(**kwargs)


def resolve_path(value: str | None, config_path: Path | None) -> Path | None:
    """A config path: absolute as is; relative to the cwd if it exists there, else to the repo root."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists() or config_path is None:
        return p
    root = Path(config_path).resolve().parent.parent.parent
    alt = root / p
    return alt if alt.exists() or alt.parent.exists() else p


def load_train_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """Read a training YAML into a TrainConfig; `overrides` replace top-level fields."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CryofmInputError(f"{path}: no such config file; see configs/train/ for examples")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise CryofmInputError(f"{path}: not valid YAML ({detail}); fix the syntax there") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        _build(TrainConfig, values, str(path))  # raises: the file must be a mapping
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = _build(TrainConfig, values, str(path))
    cfg._config_path = path  # type: ignore[attr-defined]
    return cfg
