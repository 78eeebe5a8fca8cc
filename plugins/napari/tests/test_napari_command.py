"""The equivalent command line: flags follow the settings, paths are shell-quoted."""

from __future__ import annotations

import shlex

import numpy as np

from napari_cryofm._command import command_line
from napari_cryofm._worker import RestoreRequest


def test_denoise_half_maps_command(small_volume):
    request = RestoreRequest(
        task="denoise", data=small_volume, half2=small_volume, steps=16, sampler="dc", samples=4, seed=7
    )
    cmd = command_line(request, "/data/run 1/half1.mrc", "/data/run 1/half2.mrc")
    args = shlex.split(cmd)
    assert args[:4] == ["cryofm", "denoise", "/data/run 1/half1.mrc", "/data/run 1/half2.mrc"]
    assert "-o" not in args  # the CLI's default output, beside the input
    assert args[args.index("--steps") + 1] == "16"
    assert args[args.index("--samples") + 1] == "4"
    assert args[args.index("--seed") + 1] == "7"
    assert "--model" not in args and "--tilt-range" not in args and "--anisotropic" not in args
    aniso = RestoreRequest(task="denoise", data=small_volume, half2=small_volume, anisotropic=True)
    assert "--anisotropic" in shlex.split(command_line(aniso, "h1.mrc", "h2.mrc"))
    one = RestoreRequest(task="denoise", data=small_volume, anisotropic=True)  # needs half-maps: not passed
    assert "--anisotropic" not in shlex.split(command_line(one, "map.mrc"))


def test_wedge_and_upsample_flags(small_volume):
    wedge = RestoreRequest(task="wedge", data=small_volume, tilt_range=(-45.0, 50.0), tilt_axis="x", model="p.ckpt")
    args = shlex.split(command_line(wedge, "tomo.rec"))
    i = args.index("--tilt-range")
    assert args[i + 1 : i + 3] == ["-45", "50"]
    assert args[args.index("--tilt-axis") + 1] == "x"
    assert args[args.index("--model") + 1] == "p.ckpt"
    assert "--steps" not in args  # default steps: left to the CLI
    up = RestoreRequest(task="upsample", data=small_volume, factor=1.5, name="my map")
    args = shlex.split(command_line(up, None))
    assert args[2] == "my map.mrc"  # no source file: the layer name, to be saved first
    assert args[args.index("--factor") + 1] == "1.5"


def test_the_command_runs_as_the_cli(tmp_path, map_32, tiny_prior_path):
    from cryofm.cli.main import main
    from cryofm.io import read_map, write_map

    src = write_map(tmp_path / "tomo map.mrc", map_32)
    request = RestoreRequest(task="wedge", data=map_32, steps=1, tilt_range=(-50.0, 55.0), model=str(tiny_prior_path))
    args = shlex.split(command_line(request, str(src)))
    assert main(args[1:]) == 0
    [out] = [p for p in tmp_path.glob("*.mrc") if p != src]
    restored = read_map(out)
    assert restored.shape == map_32.shape
    np.testing.assert_allclose(restored.origin, map_32.origin, rtol=1e-6)
