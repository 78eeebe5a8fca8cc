"""`cryofm denoise | wedge | upsample`: output naming, refusal without --force, bad inputs."""

from __future__ import annotations

import json
import warnings

import mrcfile
import numpy as np
import pytest

from cryofm.cli.main import main
from cryofm.io import Volume, read_map, write_map
from cryofm.prior import Prior


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    Prior.from_config("tiny").save(path)
    return str(path)


def _map(n=20, voxel=1.5, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((n, n, n)) - n / 2
    blob = np.exp(-(x**2 + y**2 + (1.4 * z) ** 2) / (2 * (n / 6) ** 2))
    return (blob + 0.05 * rng.standard_normal(blob.shape)).astype(np.float32)


def _write(path, data, voxel=1.5, origin=(3.0, 4.0, 5.0)):
    write_map(path, Volume(data, voxel, origin=origin))
    return str(path)


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_denoise_default_names_and_outputs(tmp_path, capsys, model):
    src = _write(tmp_path / "emd_1.mrc", _map())
    code, out, err = _run(capsys, "denoise", src, "--model", model, "--steps", "1", "--device", "cpu")
    assert code == 0, err
    result = read_map(tmp_path / "emd_1_denoised.mrc")
    assert result.shape == (20, 20, 20)
    np.testing.assert_allclose(result.voxel_size, 1.5, rtol=1e-5)
    np.testing.assert_allclose(result.origin, (3.0, 4.0, 5.0))
    report = json.loads((tmp_path / "emd_1_denoised.json").read_text())
    assert report["task"] == "denoise" and report["settings"]["steps"] == 1 and report["seconds"] > 0
    import hashlib
    from pathlib import Path

    assert report["prior"]["weights"]["sha256"] == hashlib.sha256(Path(model).read_bytes()).hexdigest()
    assert set(report["software"]) == {"cryofm", "torch", "numpy"}
    assert report["command_line"] == ["cryofm", "denoise", src, "--model", model, "--steps", "1", "--device", "cpu"]
    assert report["inputs_files"] == [str(tmp_path / "emd_1.mrc")]
    assert (tmp_path / "emd_1_denoised.png").stat().st_size > 0
    assert not (tmp_path / "emd_1_denoised_std.mrc").exists()


def test_half_maps_are_named_from_their_common_stem(tmp_path, capsys, model):
    (tmp_path / "a").mkdir()
    h1 = _write(tmp_path / "a" / "run_half1_class001_unfil.mrc", _map(seed=1))
    h2 = _write(tmp_path / "run_half2_class001_unfil.mrc", _map(seed=2))
    code, _, err = _run(capsys, "denoise", h1, h2, "--model", model, "--steps", "1", "--device", "cpu",
                        "--samples", "2", "--independent-halves")
    assert code == 0, err
    assert (tmp_path / "a" / "run_half_class001_unfil_denoised.mrc").exists()
    assert (tmp_path / "a" / "run_half_class001_unfil_denoised_std.mrc").exists()
    report = json.loads((tmp_path / "a" / "run_half_class001_unfil_denoised.json").read_text())
    assert "fsc_halves_after" in report


def test_wedge_and_upsample_boxes_and_explicit_output(tmp_path, capsys, model):
    src = _write(tmp_path / "tomo.mrc", _map(16))
    out = tmp_path / "filled.mrc"
    code, _, err = _run(capsys, "wedge", src, "--tilt-range", "-50", "50", "--model", model, "--steps", "1",
                        "--device", "cpu", "-o", str(out))
    assert code == 0, err
    assert read_map(out).shape == (16, 16, 16) and (tmp_path / "filled.json").exists()
    code, _, err = _run(capsys, "upsample", src, "--factor", "2", "--model", model, "--steps", "1", "--device", "cpu")
    assert code == 0, err
    up = read_map(tmp_path / "tomo_upsampled.mrc")
    assert up.shape == (32, 32, 32)
    np.testing.assert_allclose(up.voxel_size, 0.75, rtol=1e-5)


def test_existing_output_is_refused_and_nothing_is_touched(tmp_path, capsys, model):
    src = _write(tmp_path / "m.mrc", _map())
    (tmp_path / "m_denoised.png").write_bytes(b"keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _run(capsys, "denoise", src, "--model", model, "--steps", "1", "--device", "cpu")
    assert code == 2
    assert err.startswith("cryofm: error:") and len(err.strip().splitlines()) == 1 and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "m_denoised.png").read_bytes() == b"keep me"
    code, _, err = _run(capsys, "denoise", src, "--model", model, "--steps", "1", "--device", "cpu", "--force")
    assert code == 0, err
    assert (tmp_path / "m_denoised.png").read_bytes()[:4] == b"\x89PNG"
    # never over an input, even with --force
    code, _, err = _run(capsys, "denoise", src, "--model", model, "--steps", "1", "-o", src, "--force")
    assert code == 2 and "input" in err


def _nan_map(path):
    data = _map()
    data[3, 4, 5] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about the NaN we write on purpose
        with mrcfile.new(path) as m:
            m.set_data(data)
            m.voxel_size = 1.5
    return str(path)


def _zero_voxel_map(path):
    with mrcfile.new(path) as m:
        m.set_data(_map())
        m.voxel_size = 0.0
    return str(path)


def _folder_where_the_png_goes(folder):
    (folder / "pf.png").mkdir()
    return ["denoise", _write(folder / "a.mrc", _map(20)), "-o", str(folder / "pf.mrc"), "--force"]


@pytest.mark.parametrize(
    "make_args",
    [
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), _write(d / "b.mrc", _map(24))],
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), _write(d / "b.mrc", _map(20), voxel=1.2)],
        lambda d: ["denoise", _write(d / "small.mrc", _map(12))],
        lambda d: ["denoise", _nan_map(d / "nan.mrc")],
        lambda d: ["denoise", _zero_voxel_map(d / "zero.mrc")],
        lambda d: ["wedge", _write(d / "a.mrc", _map(20)), "--tilt-range", "-95", "60"],
        lambda d: ["upsample", _write(d / "a.mrc", _map(20))],
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), _write(d / "b.mrc", _map(20, seed=1), origin=(0, 0, 0))],
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), str(d / "a.mrc")],  # the same half twice
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), "--mask", _write(d / "m.mrc", _map(20) - 0.5)],
        lambda d: ["denoise", _write(d / "a.mrc", _map(20)), "-o", str(d / "out.txt")],
        lambda d: _folder_where_the_png_goes(d),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, model, make_args):
    args = make_args(tmp_path) + ["--model", model, "--steps", "1"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_denoise_a_relion_postprocess_star(tmp_path, capsys, model):
    """The half maps and the mask that a PostProcess STAR file names are found and used."""
    import starfile

    ref = tmp_path / "Refine3D" / "job010"
    ref.mkdir(parents=True)
    h1 = _write(ref / "run_half1_class001_unfil.mrc", _map(seed=1))
    h2 = _write(ref / "run_half2_class001_unfil.mrc", _map(seed=2))
    (tmp_path / "MaskCreate" / "job012").mkdir(parents=True)
    mask = _write(tmp_path / "MaskCreate" / "job012" / "mask.mrc", np.ones((20, 20, 20), np.float32))
    star = tmp_path / "PostProcess" / "job011" / "postprocess.star"
    star.parent.mkdir(parents=True)
    starfile.write({"general": {"rlnUnfilteredMapHalf1": "Refine3D/job010/run_half1_class001_unfil.mrc",
                                "rlnUnfilteredMapHalf2": "Refine3D/job010/run_half2_class001_unfil.mrc",
                                "rlnMaskName": "MaskCreate/job012/mask.mrc", "rlnFinalResolution": 4.0,
                                "rlnPixelSize": 1.5}}, star)
    code, _, err = _run(capsys, "denoise", str(star), "--model", model, "--steps", "1", "--device", "cpu")
    assert code == 0, err
    assert "warning" not in err
    out = star.parent / "run_half_class001_unfil_denoised.mrc"  # in the PostProcess job, not the refinement's
    assert read_map(out).shape == (20, 20, 20) and not list(ref.glob("*denoised*"))
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["inputs_files"] == [h1, h2, mask, str(star)]
    assert report["inputs"]["half2"] is not None  # restored from the pair, not from one map
    code, _, err = _run(capsys, "denoise", str(star.parent), "--model", model, "--steps", "1", "--device", "cpu",
                        "--force")  # the job folder works as its postprocess.star
    assert code == 0, err
    assert json.loads(out.with_suffix(".json").read_text())["inputs_files"][-1] == str(star)
    star.write_text(star.read_text().replace("1.5", "1.1"))  # PostProcess run with --angpix 1.1
    code, _, err = _run(capsys, "denoise", str(star), "--model", model, "--steps", "1", "--device", "cpu", "--force")
    assert code == 0, err
    assert "pixel size of 1.1 A but the half maps' headers say 1.5 A" in err
    np.testing.assert_allclose(read_map(out).voxel_size, 1.5)


def test_wedge_takes_its_tilt_angles_from_a_tilt_series_star(tmp_path, capsys, model):
    import pandas as pd
    import starfile

    src = _write(tmp_path / "sub.mrc", _map(16))
    ts = tmp_path / "TS_01.star"
    angles = np.arange(-30.0, 30.1, 3.0)
    starfile.write({"TS_01": pd.DataFrame({"rlnTomoNominalStageTiltAngle": angles})}, ts)
    common = ["--model", model, "--steps", "1", "--device", "cpu", "--seed", "0"]
    code, _, err = _run(capsys, "wedge", src, "--tilt-star", str(ts), "-o", str(tmp_path / "star.mrc"), *common)
    assert code == 0, err
    report = json.loads((tmp_path / "star.json").read_text())
    assert report["cli_options"]["tilt_star"] == str(ts) and str(ts) in report["inputs_files"]
    np.testing.assert_allclose(report["wedge"]["tilt_angles"], angles)
    code, _, err = _run(capsys, "wedge", src, "-o", str(tmp_path / "range.mrc"), *common)  # default -60..60
    assert code == 0, err
    # +-30 degrees of measured data is a different problem from the default +-60: the results differ
    assert not np.allclose(read_map(tmp_path / "star.mrc").data, read_map(tmp_path / "range.mrc").data)
    bad = tmp_path / "bad.star"
    starfile.write({"TS_01": pd.DataFrame({"rlnTomoNominalStageTiltAngle": [-95.0, 0.0, 40.0]})}, bad)
    code, _, err = _run(capsys, "wedge", src, "--tilt-star", str(bad), "-o", str(tmp_path / "bad.mrc"), *common)
    assert code == 2 and "90" in err and not (tmp_path / "bad.mrc").exists()


def test_anisotropic_denoise_needs_half_maps_and_records_its_test(tmp_path, capsys, model):
    one = _write(tmp_path / "one.mrc", _map())
    code, _, err = _run(capsys, "denoise", one, "--anisotropic", "--model", model, "--device", "cpu")
    assert code == 2 and "half maps" in err and len(err.strip().splitlines()) == 1
    h1, h2 = _write(tmp_path / "h1.mrc", _map(seed=1)), _write(tmp_path / "h2.mrc", _map(seed=2))
    code, out, err = _run(capsys, "denoise", h1, h2, "--anisotropic", "--model", model, "--steps", "1",
                          "--device", "cpu", "-o", str(tmp_path / "a.mrc"))
    assert code == 0, err
    assert "directional noise model used (as asked" in out
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["cli_options"]["anisotropic"] is True
    assert report["noise_anisotropy"]["requested"] == "always" and report["noise_anisotropy"]["used"] is True
    code, out, err = _run(capsys, "denoise", h1, h2, "--isotropic", "--model", model, "--steps", "1",
                        "--device", "cpu", "-o", str(tmp_path / "i.mrc"))
    assert code == 0, err
    assert "directional" not in out
    report = json.loads((tmp_path / "i.json").read_text())
    assert report["cli_options"]["anisotropic"] is False and "noise_anisotropy" not in report
    code, _, err = _run(capsys, "denoise", h1, h2, "--model", model, "--steps", "1",
                        "--device", "cpu", "-o", str(tmp_path / "d.mrc"))
    assert code == 0, err
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["cli_options"]["anisotropic"] is None and report["noise_anisotropy"]["requested"] == "auto"


def test_outputs_are_checked_before_any_work(tmp_path, capsys, model, monkeypatch):
    import cryofm.restore

    def no_work(*args, **kwargs):
        raise AssertionError("restoration started before the outputs were checked")

    monkeypatch.setattr(cryofm.restore, "denoise", no_work)
    src = _write(tmp_path / "a.mrc", _map(20))
    for bad in (["-o", str(tmp_path / "out.mrcs")], ["-o", str(tmp_path / "no_folder" / "x.mrc")]):
        code, _, err = _run(capsys, "denoise", src, "--model", model, *bad)
        assert code == 2 and "restoration started" not in err


def test_a_failed_write_leaves_no_output_and_a_stale_std_is_not_kept(tmp_path, capsys, model, monkeypatch):
    import cryofm.restore.report

    src = _write(tmp_path / "a.mrc", _map(20))
    args = ["denoise", src, "--model", model, "--steps", "1", "--device", "cpu", "-o", str(tmp_path / "r.mrc")]
    code, _, err = _run(capsys, *args, "--samples", "2")
    assert code == 0, err
    assert {p.name for p in tmp_path.iterdir()} == {"a.mrc", "r.mrc", "r.json", "r.png", "r_std.mrc"}
    code, _, err = _run(capsys, *args)  # an earlier run's files: refused without --force
    assert code == 2 and "r_std.mrc" in err

    def broken_png(report, path):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(cryofm.restore.report, "write_png", broken_png)
        before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
        code, _, err = _run(capsys, *args, "--force")
        assert code != 0
        assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing half-written
    code, out, err = _run(capsys, *args, "--force")
    assert code == 0, err
    assert {p.name for p in tmp_path.iterdir()} == {"a.mrc", "r.mrc", "r.json", "r.png"}  # no stale r_std.mrc
    assert "r_std.mrc" in out


def test_outputs_keep_the_input_header_conventions(tmp_path, capsys, model, data_dir):
    import shutil

    src = tmp_path / "seg.mrc"
    shutil.copy(data_dir / "emd_21457_segment/emd_21457_seg_nstart.mrc", src)  # placement in nstart, labels
    code, _, err = _run(capsys, "denoise", str(src), "--model", model, "--steps", "1", "--device", "cpu")
    assert code == 0, err
    with mrcfile.open(src) as a, mrcfile.open(tmp_path / "seg_denoised.mrc") as b:
        start = lambda h: (int(h.nxstart), int(h.nystart), int(h.nzstart))  # noqa: E731
        assert start(b.header) == start(a.header) == (155, 220, 195)
        assert float(b.header.origin.x) == float(b.header.origin.y) == float(b.header.origin.z) == 0.0
        labels = lambda h: [bytes(x).strip() for x in h.label[: int(h.nlabl)]]  # noqa: E731
        assert labels(b.header)[: len(labels(a.header))] == labels(a.header)  # the input's labels, then cryofm's
