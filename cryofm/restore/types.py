"""Result and progress types of the restoration API (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryofm.io.volume import Volume

__all__ = ["OUTPUT_SUFFIX", "Progress", "Restoration"]

# the word for each task's result: the CLI writes `<input>_<word>.mrc`, the napari plugin names the
# layer `<layer> <word>`
OUTPUT_SUFFIX = {"denoise": "denoised", "wedge": "wedge", "upsample": "upsampled"}


@dataclass(frozen=True)
class Progress:
    """A progress message, passed to the caller's `progress` callback.

    stage: "prepare" | "sample" | "finish".
    done: units of work done so far (steps x tiles x samples); never decreases within a run.
    total: units of work in the run.
    message: free text for a status line.
    """

    stage: str
    done: int
    total: int
    message: str = ""


@dataclass
class Restoration:
    """A restored map.

    volume: the restored map, with the input's origin and voxel size (upsample: voxel size / factor)
        and the input's box (upsample: box x factor).
    std: per-voxel standard deviation over the samples (samples > 1), else None.
    input: the observation on the input grid (the average of the halves).
    report: JSON-serialisable dict: task, inputs, settings, seconds, spectra / FSC before and after.
    """

    volume: Volume
    std: Volume | None
    input: Volume
    report: dict[str, Any]
