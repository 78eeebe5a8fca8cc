"""The restoration generator (no Qt): progress relayed in order, cancel, errors returned.

These tests stand in a scripted API function for `cryofm.denoise`, to control timing; the
real API with a tiny model runs in test_widget.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

import cryofm
from cryofm.errors import Cancelled, CryofmInputError
from napari_cryofm._worker import RestoreRequest, restore_steps


@dataclass(frozen=True)
class _Progress:
    stage: str
    done: int
    total: int
    message: str = ""


def _drain(gen):
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def _scripted(steps: int, delay: float = 0.0, fail: BaseException | None = None):
    calls = {}

    def denoise(data, half2=None, *, progress=None, cancel=None, **kw):
        calls.update(kw, thread=threading.current_thread().name)
        for i in range(steps):
            if cancel():
                raise Cancelled("stopped")
            time.sleep(delay)
            progress(_Progress("sample", i + 1, steps))
        if fail is not None:
            raise fail
        return "restoration"

    return denoise, calls


@pytest.fixture
def request_(small_volume):
    return RestoreRequest(task="denoise", data=small_volume, steps=5, sampler="fps", seed=3, model="m.pt")


def test_progress_is_yielded_in_order_and_result_returned(monkeypatch, request_):
    denoise, calls = _scripted(5)
    monkeypatch.setattr(cryofm, "denoise", denoise, raising=False)
    items, outcome = _drain(restore_steps(request_, threading.Event()))
    assert [p.done for p in items] == [1, 2, 3, 4, 5]
    assert outcome.restoration == "restoration" and outcome.error is None and not outcome.cancelled
    assert calls["thread"] == "cryofm-restore"  # the API runs off the caller's thread
    assert (calls["steps"], calls["sampler"], calls["seed"], calls["prior"]) == (5, "fps", 3, "m.pt")


def test_cancel_stops_at_the_next_step(monkeypatch, request_):
    denoise, _ = _scripted(10_000, delay=0.005)
    monkeypatch.setattr(cryofm, "denoise", denoise, raising=False)
    cancel = threading.Event()
    gen = restore_steps(request_, cancel)
    next(gen)
    next(gen)
    t0 = time.perf_counter()
    cancel.set()
    items, outcome = _drain(gen)
    assert outcome.cancelled and outcome.restoration is None and outcome.error is None
    assert time.perf_counter() - t0 < 2.0
    assert len(items) < 50
    assert not any(t.name == "cryofm-restore" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("error", [CryofmInputError("bad map"), RuntimeError("CUDA out of memory")])
def test_errors_are_returned_not_raised(monkeypatch, request_, error):
    denoise, _ = _scripted(2, fail=error)
    monkeypatch.setattr(cryofm, "denoise", denoise, raising=False)
    items, outcome = _drain(restore_steps(request_, threading.Event()))
    assert len(items) == 2
    assert outcome.error is error and not outcome.cancelled


def test_closing_the_generator_stops_the_api_thread(monkeypatch, request_):
    denoise, _ = _scripted(10_000, delay=0.005)
    monkeypatch.setattr(cryofm, "denoise", denoise, raising=False)
    cancel = threading.Event()
    gen = restore_steps(request_, cancel)
    next(gen)
    gen.close()
    assert cancel.is_set()
    assert not any(t.name == "cryofm-restore" and t.is_alive() for t in threading.enumerate())


def test_upsample_refuses_half_maps(small_volume):
    request = RestoreRequest(task="upsample", data=small_volume, half2=small_volume)
    _, outcome = _drain(restore_steps(request, threading.Event()))
    assert isinstance(outcome.error, CryofmInputError)
    assert "half-maps" in str(outcome.error)
    assert np.all(np.isfinite(small_volume.data))


def test_anisotropic_reaches_denoise_only_with_half_maps(monkeypatch, small_volume):
    seen = []
    monkeypatch.setattr(cryofm, "denoise", lambda data, half2=None, **kw: seen.append(kw.get("anisotropic")) or "d",
                        raising=False)
    for half2 in (small_volume, None):
        request = RestoreRequest(task="denoise", data=small_volume, half2=half2, anisotropic=True)
        assert _drain(restore_steps(request, threading.Event()))[1].restoration == "d"
    assert seen == [True, None]


def test_wedge_and_upsample_settings_reach_the_api(monkeypatch, small_volume):
    seen = {}

    def complete_wedge(data, half2=None, **kw):
        seen["wedge"] = (half2, kw["tilt_range"], kw["tilt_axis"], kw["independent_halves"])
        return "w"

    def upsample(data, **kw):
        seen["upsample"] = kw["factor"]
        return "u"

    monkeypatch.setattr(cryofm, "complete_wedge", complete_wedge, raising=False)
    monkeypatch.setattr(cryofm, "upsample", upsample, raising=False)
    wedge = RestoreRequest(
        task="wedge", data=small_volume, half2=small_volume, tilt_range=(-40.0, 50.0), tilt_axis="x",
        independent_halves=True,
    )
    assert _drain(restore_steps(wedge, threading.Event()))[1].restoration == "w"
    assert seen["wedge"] == (small_volume, (-40.0, 50.0), "x", True)
    up = RestoreRequest(task="upsample", data=small_volume, factor=1.5)
    assert _drain(restore_steps(up, threading.Event()))[1].restoration == "u"
    assert seen["upsample"] == 1.5


def test_cuda_is_offered_only_when_torch_sees_a_device(monkeypatch):
    import torch

    from napari_cryofm._worker import available_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert available_devices() == ("auto", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert available_devices() == ("auto", "cpu", "cuda")


@pytest.mark.parametrize("task, word", [("denoise", "denoised"), ("wedge", "wedge"), ("upsample", "upsampled")])
def test_result_layer_is_named_for_its_task_as_the_cli_names_files(small_volume, task, word):
    from cryofm.restore import Restoration
    from napari_cryofm._worker import Outcome, result_layers

    request = RestoreRequest(task=task, data=small_volume, name="m")
    done = Outcome(request, restoration=Restoration(small_volume, None, small_volume, {}))
    names = [kwargs["name"] for _, kwargs, _ in result_layers(done)]
    assert names[0] == f"m {word}"
    assert names[1:] == ([] if task == "upsample" else ["m difference"])
    assert [kwargs["name"] for _, kwargs, _ in result_layers(done, suffix="preview")][0] == f"m preview {word}"
