"""Curves from a `Restoration.report` onto matplotlib axes. No Qt (the widget owns the canvas).

The report (`cryofm.restore.report.build_report`) holds ``spectra`` (``frequency``,
``power_before``, ``power_after``: radial power per shell of the input and the restored map)
and, for half-maps, ``fsc_halves_before`` and, when the halves were restored independently,
``fsc_halves_after`` (``frequency``, ``fsc``, ``resolution_0143``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_report"]


def plot_report(figure: Any, report: dict[str, Any]) -> list[str]:
    """Draw the report's before/after curves on `figure` (cleared first).

    One axes with the power spectra before/after (log scale); a second one with the FSC
    between the halves before (and after) when the report has it.

    Returns:
        The labels of the curves drawn (empty when the report has no curves).
    """
    figure.clear()
    labels: list[str] = []
    fsc_keys = [k for k in ("fsc_halves_before", "fsc_halves_after") if k in report]
    spectra = report.get("spectra")
    n_axes = int(bool(spectra)) + int(bool(fsc_keys))
    if n_axes == 0:
        return labels
    axes = figure.subplots(n_axes, 1, squeeze=False)[:, 0]
    i = 0
    if spectra:
        ax = axes[i]
        i += 1
        f = np.asarray(spectra["frequency"], dtype=float)[1:]
        for key, label in (("power_before", "input"), ("power_after", "restored")):
            power = np.asarray(spectra[key], dtype=float)[1 : len(f) + 1]
            ax.semilogy(f[: len(power)], np.maximum(power, 1e-30), label=label)
            labels.append(f"power {label}")
        ax.set_ylabel("power")
        ax.legend(fontsize="x-small")
    if fsc_keys:
        ax = axes[i]
        for key, label in (("fsc_halves_before", "half-maps"), ("fsc_halves_after", "restored halves")):
            if key not in report:
                continue
            entry = report[key]
            res = entry.get("resolution_0143")
            text = f"{label} ({res:.2f} A)" if isinstance(res, (int, float)) else label
            ax.plot(np.asarray(entry["frequency"])[1:], np.asarray(entry["fsc"])[1:], label=text)
            labels.append(f"fsc {label}")
        ax.axhline(0.143, color="grey", lw=0.8, ls="--")
        ax.set_ylabel("FSC")
        ax.set_ylim(-0.1, 1.05)
        ax.legend(fontsize="x-small")
    axes[-1].set_xlabel("spatial frequency (1/A)")
    for ax in axes:
        ax.tick_params(labelsize="x-small")
    return labels
