"""The restoration as a generator of typed progress messages, with cancel. No Qt.

`restore_steps(request, cancel)` runs `cryofm.denoise` / `complete_wedge` / `upsample` in a
helper thread with ``progress=`` and ``cancel=`` hooks, and yields every `cryofm.restore.Progress`
it receives (after each sampler step, per tile and sample); it returns an `Outcome`.  The dock
widget hands it to ``napari.qt.threading.thread_worker`` so the progress bar moves with each
yield; any other caller can iterate it directly:

    cancel = threading.Event()
    gen = restore_steps(request, cancel)
    try:
        while True:
            print(next(gen))          # Progress(stage, done, total, message)
    except StopIteration as stop:
        outcome = stop.value          # Outcome(restoration | None, error | None, cancelled)

Setting ``cancel`` makes the API raise `cryofm.Cancelled` at its next step; the generator then
returns ``Outcome(cancelled=True)``.  The generator never raises: errors come back in
``Outcome.error`` (napari's worker would otherwise swallow `RuntimeError`s, `Cancelled` among
them, as "aborted thread" warnings).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryofm.io.volume import Volume
from cryofm.restore.types import OUTPUT_SUFFIX
from napari_cryofm._layers import LayerData, volume_layer_data

__all__ = ["TASKS", "SAMPLERS", "DEVICES", "RestoreRequest", "Outcome", "available_devices", "restore_steps",
           "result_layers"]

TASKS = ("denoise", "wedge", "upsample")
SAMPLERS = ("dc", "fps")
DEVICES = ("auto", "cpu", "cuda")


def available_devices() -> tuple[str, ...]:
    """The devices this machine can restore on: ``auto`` and ``cpu``, and ``cuda`` only where
    cryofm's one device check (`cryofm.prior.prior.torch_device`) accepts it (offering it
    otherwise only leads to an error after the user chose it)."""
    from cryofm.errors import CryofmInputError
    from cryofm.prior.prior import torch_device

    try:
        torch_device("cuda")
    except CryofmInputError:
        return tuple(d for d in DEVICES if d != "cuda")
    return DEVICES


@dataclass(frozen=True)
class RestoreRequest:
    """One restoration: the task, its input maps and the settings the API takes.

    Attributes:
        task: ``"denoise"``, ``"wedge"`` (missing-wedge completion) or ``"upsample"``.
        data: the map (or half-map 1), a `Volume` [z, y, x] with voxel size/origin (x, y, z) A.
        half2: the second half-map on the same grid, or None.
        steps: sampler steps; None takes the API's default.
        sampler: ``"dc"`` or ``"fps"``.
        samples: number of posterior samples (> 1 also gives a standard deviation map).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: random seed.
        model: path of a prior checkpoint, or None for the shipped model.
        tilt_range: (min, max) tilt in degrees, for ``wedge``.
        tilt_axis: ``"y"`` or ``"x"``, for ``wedge``.
        factor: upsampling factor (> 1), for ``upsample``.
        independent_halves: also restore each half-map on its own (the report then has the FSC
            between the restored halves); half-maps only, not for ``upsample``.
        anisotropic: always model the half-maps' noise per direction as well as per shell (maps
            from preferred orientations); ``denoise`` of half-maps only.  Off, cryofm still
            measures it and uses it where it differs between directions.
        name: the input layer's name (names the result layers).
        mask: a soft molecular mask on the input's grid (1 = molecule; the solvent outside it
            gives a single map's noise), or None for cryofm's automatic mask.
        inputs: absolute paths of the files behind the input layers (the result layers carry
            them, so the writer never saves a result over its input).
    """

    task: str
    data: Volume
    half2: Volume | None = None
    steps: int | None = None
    sampler: str = "dc"
    samples: int = 1
    device: str = "auto"
    seed: int = 0
    model: str | None = None
    tilt_range: tuple[float, float] = (-60.0, 60.0)
    tilt_axis: str = "y"
    factor: float = 2.0
    independent_halves: bool = False
    anisotropic: bool = False
    name: str = "map"
    mask: Volume | None = None
    inputs: tuple[str, ...] = ()

    def api_kwargs(self) -> dict[str, Any]:
        """Keywords shared by the three API functions (without the hooks)."""
        return {
            "sampler": self.sampler,
            "steps": self.steps,
            "samples": self.samples,
            "device": self.device,
            "seed": self.seed,
            "prior": self.model or None,
            "mask": self.mask,
        }

    def run(self, progress: Any = None, cancel: Any = None) -> Any:
        """Call the API function for `task` and return its `cryofm.restore.Restoration`."""
        import cryofm

        kw = {**self.api_kwargs(), "progress": progress, "cancel": cancel}
        halves = {"independent_halves": self.independent_halves and self.half2 is not None}
        if self.task == "denoise":
            aniso = {"anisotropic": True} if self.anisotropic and self.half2 is not None else {}
            return cryofm.denoise(self.data, self.half2, **halves, **aniso, **kw)
        if self.task == "wedge":
            return cryofm.complete_wedge(
                self.data, self.half2, tilt_range=tuple(self.tilt_range), tilt_axis=self.tilt_axis, **halves, **kw
            )
        if self.task == "upsample":
            if self.half2 is not None:
                from cryofm.errors import CryofmInputError

                raise CryofmInputError("upsample takes one map, not half-maps; choose 'map' as the input")
            return cryofm.upsample(self.data, factor=self.factor, **kw)
        from cryofm.errors import CryofmInputError

        raise CryofmInputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")


@dataclass
class Outcome:
    """How a run ended: a `Restoration`, an error, or cancelled (exactly one of them)."""

    request: RestoreRequest
    restoration: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    progress: list[Any] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class _Ended:
    result: Any = None
    error: BaseException | None = None


def restore_steps(request: RestoreRequest, cancel: threading.Event) -> Generator[Any, None, Outcome]:
    """Run `request`, yielding each `cryofm.restore.Progress`; return an `Outcome`.

    Args:
        request: what to restore and how.
        cancel: set it (from any thread) to stop the run at the API's next step.

    Yields:
        `cryofm.restore.Progress` messages, in the order the API sends them.

    Returns:
        `Outcome`; never raises.
    """
    from cryofm.errors import Cancelled

    messages: queue.Queue = queue.Queue()

    def target() -> None:
        try:
            result = request.run(progress=messages.put, cancel=cancel.is_set)
        except BaseException as exc:  # relayed to the caller, whatever it is
            messages.put(_Ended(error=exc))
        else:
            messages.put(_Ended(result=result))

    thread = threading.Thread(target=target, name="cryofm-restore", daemon=True)
    outcome = Outcome(request)
    ended = False
    try:
        thread.start()
        while True:
            try:
                item = messages.get(timeout=0.2)
            except queue.Empty:
                if not thread.is_alive() and messages.empty():
                    outcome.error = RuntimeError("the restoration thread ended without a result")
                    break
                continue
            if isinstance(item, _Ended):
                ended = True
                if isinstance(item.error, Cancelled) or (item.error is not None and cancel.is_set()):
                    outcome.cancelled = True
                elif item.error is not None:
                    outcome.error = item.error
                else:
                    outcome.restoration = item.result
                break
            outcome.progress.append(item)
            yield item
    finally:
        if not ended:  # closed early (GeneratorExit): stop the helper thread too
            cancel.set()
        thread.join(timeout=10.0)
    return outcome


def result_layers(outcome: Outcome, *, suffix: str = "") -> list[LayerData]:
    """Image layers for a finished restoration, placed like their input.

    - ``<name> denoised`` (``wedge``, ``upsampled``: the task's word, as in the CLI's output
      ``<input>_denoised.mrc``): the restored map (its own voxel size and origin: for ``upsample``
      the voxel size is divided by the factor and the origin stays the input's).
    - ``<name> std``: the per-voxel standard deviation over samples (only when samples > 1).
    - ``<name> difference``: restored minus the input (the average of the halves), for
      ``denoise`` and ``wedge``: what the prior removed or filled in.  Omitted for
      ``upsample``: the two grids differ, and the difference against the Fourier-padded input
      is only the content added beyond the input's Nyquist frequency, which the restored map
      itself shows.

    Every layer's ``metadata["cryofm"]["report"]`` holds the restoration report, and
    ``metadata["cryofm"]["inputs"]`` the absolute paths of the input files (the writer refuses them).
    """
    restoration = outcome.restoration
    name = outcome.request.name + (f" {suffix}" if suffix else "")
    report = dict(restoration.report or {})
    inputs = [os.path.realpath(p) for p in outcome.request.inputs]
    extra = {"report": report, "task": outcome.request.task, "inputs": inputs}
    layers = [
        volume_layer_data(restoration.volume, name=f"{name} {OUTPUT_SUFFIX[outcome.request.task]}", extra=extra,
                          colormap="gray"),
    ]
    if restoration.std is not None:
        layers.append(
            volume_layer_data(
                restoration.std, name=f"{name} std", extra=extra, colormap="magma", blending="additive",
                visible=False,
            )
        )
    if outcome.request.task != "upsample" and restoration.input is not None:
        diff = restoration.volume.data - restoration.input.data
        limit = float(np.max(np.abs(diff))) or 1.0
        layers.append(
            volume_layer_data(
                restoration.volume.with_data(diff),
                name=f"{name} difference",
                extra=extra,
                colormap="bwr",
                contrast_limits=(-limit, limit),
                visible=False,
            )
        )
    return layers
