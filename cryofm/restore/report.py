"""The restoration report: a JSON-serialisable dict, and its PNG figure."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cryofm.fourier import fsc_curve, power_spectrum, resolution_at, shell_frequencies
from cryofm.io.volume import Volume

__all__ = ["build_report", "write_png"]


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _describe(vol: Volume | None) -> dict[str, Any] | None:
    if vol is None:
        return None
    return {"shape": list(vol.shape), "voxel_size": _floats(vol.voxel_size), "origin": _floats(vol.origin),
            "path": vol.metadata.get("path")}


def _fsc_entry(a: np.ndarray, b: np.ndarray, voxel_size: float) -> dict[str, Any]:
    curve = np.asarray(fsc_curve(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))
    freq = shell_frequencies(a.shape, voxel_size)
    return {"frequency": _floats(freq), "fsc": _floats(curve), "resolution_0143": resolution_at(curve, freq, 0.143)}


def _versions() -> dict[str, str]:
    import torch

    from cryofm import __version__

    return {"cryofm": __version__, "torch": torch.__version__, "numpy": np.__version__}


def build_report(task: str, observation: Volume, restored: Volume, half1: Volume, half2: Volume | None,
                 halves_restored: list[np.ndarray] | None, *, settings, infos, seconds: float, prior,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """Everything a user needs to judge a restoration (see `Restoration.report`)."""
    from cryofm.restore.pipeline import resize

    out_vs = float(np.mean(restored.voxel_size))
    before = resize(observation.data, restored.shape)
    report: dict[str, Any] = {
        "task": task,
        "inputs": {"data": _describe(half1), "half2": _describe(half2)},
        "output": _describe(restored),
        "settings": settings.to_dict(),
        "prior": {"voxel_size": float(prior.voxel_size), "divisor": int(prior.divisor),
                  "error_power_source": getattr(prior, "error_power_source", None),
                  "name": getattr(getattr(prior, "config", None), "name", None),
                  "weights": getattr(prior, "source", None)},
        "software": _versions(),
        "seconds": float(seconds),
        "tiles": infos,
        "spectra": {
            "frequency": _floats(shell_frequencies(restored.shape, out_vs)),
            "power_before": _floats(power_spectrum(np.asarray(before, dtype=np.float64))),
            "power_after": _floats(power_spectrum(restored.data.astype(np.float64))),
        },
        "fsc_input_output": _fsc_entry(before, restored.data, out_vs),
    }
    if half2 is not None:
        report["fsc_halves_before"] = _fsc_entry(half1.data, half2.data, float(np.mean(half1.voxel_size)))
    if halves_restored is not None:
        report["fsc_halves_after"] = _fsc_entry(halves_restored[0], halves_restored[1], out_vs)
    report.update(extra)
    return report


def write_png(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Plot the FSC between halves before/after (when restored independently) or the power
    spectrum before/after, and save it as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if "fsc_halves_after" in report:
        for key, label in (("fsc_halves_before", "half maps"), ("fsc_halves_after", "restored halves")):
            entry = report[key]
            ax.plot(entry["frequency"][1:], entry["fsc"][1:], label=label)
        ax.axhline(0.143, color="grey", lw=0.8, ls="--")
        ax.set_ylabel("FSC between halves")
    else:
        spectra = report["spectra"]
        f = spectra["frequency"][1:]
        ax.semilogy(f, np.maximum(spectra["power_before"][1:len(f) + 1], 1e-30), label="input")
        ax.semilogy(f, np.maximum(spectra["power_after"][1:len(f) + 1], 1e-30), label="restored")
        ax.set_ylabel("power per shell")
    ax.set_xlabel("spatial frequency (1/A)")
    ax.set_title(f"cryofm {report['task']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")
