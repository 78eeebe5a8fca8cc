"""The ``cryofm`` command line equivalent to the dock widget's settings. No Qt.

The command restores the whole map (the CLI has no preview crop) and writes where the CLI
writes by default: ``<input stem>_<task>.mrc`` (with its report) beside the input.  A layer
that was not read from a file (a sample, a computed layer) has no path: the command names
``<layer name>.mrc`` instead, for the user to save the layer there first (File > Save
Selected Layers).
"""

from __future__ import annotations

import shlex

from napari_cryofm._worker import RestoreRequest

__all__ = ["command_line"]

_COMMAND = {"denoise": "denoise", "wedge": "wedge", "upsample": "upsample"}


def _number(value: float) -> str:
    return f"{value:g}"


def command_line(request: RestoreRequest, input_path: str | None, half2_path: str | None = None,
                 mask_path: str | None = None) -> str:
    """The shell command that runs `request` on the files behind its layers.

    Args:
        request: the settings (its `data`/`half2` volumes are not used; the paths are).
        input_path: the map (or half-map 1) file, or None: ``<request.name>.mrc`` is used.
        half2_path: half-map 2's file (None for one map; ``<name>.mrc`` placeholders when
            `request.half2` is set but the path is unknown).
        mask_path: the mask's file (``--mask``), or None for no mask.

    Returns:
        One line, each argument quoted for a POSIX shell.
    """
    first = input_path or f"{request.name}.mrc"
    args = ["cryofm", _COMMAND[request.task], first]
    if request.half2 is not None or half2_path:
        name2 = request.half2.metadata.get("name", "half2") if request.half2 is not None else "half2"
        args.append(half2_path or f"{name2}.mrc")
    if request.task == "wedge":
        lo, hi = request.tilt_range
        args += ["--tilt-range", _number(lo), _number(hi), "--tilt-axis", request.tilt_axis]
    if request.task == "upsample":
        args += ["--factor", _number(request.factor)]
    if request.independent_halves and (request.half2 is not None or half2_path):
        args.append("--independent-halves")
    if request.anisotropic and request.task == "denoise" and (request.half2 is not None or half2_path):
        args.append("--anisotropic")
    if mask_path:
        args += ["--mask", mask_path]
    if request.steps is not None:
        args += ["--steps", str(int(request.steps))]
    args += ["--sampler", request.sampler, "--samples", str(int(request.samples))]
    args += ["--device", request.device, "--seed", str(int(request.seed))]
    if request.model:
        args += ["--model", request.model]
    return " ".join(shlex.quote(a) for a in args)
