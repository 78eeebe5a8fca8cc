"""`cryofm info` and `cryofm fsc`, called through cryofm.cli.main.main."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryofm import CryofmInputError, Volume
from cryofm.cli.main import main
from cryofm.io import read_map, write_map

SEG = "emd_21457_segment/emd_21457_seg.mrc"


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _noisy_halves(data_dir: Path, folder: Path, sigma: float = 0.3) -> tuple[Path, Path, Volume]:
    truth = read_map(data_dir / SEG)
    rng = np.random.default_rng(7)
    paths = []
    for i in (1, 2):
        noisy = truth.data + sigma * rng.standard_normal(truth.shape).astype(np.float32)
        paths.append(write_map(folder / f"half{i}.mrc", Volume(noisy, truth.voxel_size, truth.origin)))
    return paths[0], paths[1], truth


def _assert_one_line_error(code: int, err: str, *names: object) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cryofm: error: ")
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0]


# --------------------------------------------------------------------------------------
# info


def test_info_json_matches_the_map(data_dir, capsys):
    path = data_dir / "emd_21457_segment/emd_21457_seg_nstart.mrc"
    code, out, err = _run(capsys, "info", "--json", path)
    assert code == 0 and err == ""
    record = json.loads(out)  # exactly one JSON object
    v = read_map(path)
    assert record["shape"] == [47, 40, 48]
    np.testing.assert_allclose(record["origin"], [162.75, 231.0, 204.75], atol=1e-3)
    np.testing.assert_allclose(record["voxel_size"], v.voxel_size)
    assert record["axis_order"] == [1, 2, 3] and record["mode"] == 2
    assert record["nstart"] == [155, 220, 195]
    np.testing.assert_allclose(
        [record["min"], record["max"], record["mean"], record["std"]],
        [v.data.min(), v.data.max(), v.data.astype(np.float64).mean(), v.data.astype(np.float64).std()],
        rtol=1e-6,
    )
    assert record["labels"] == v.metadata["labels"]


def test_info_text(data_dir, capsys):
    code, out, _ = _run(capsys, "info", data_dir / "emd_2566_crop/2566_3J6B_9.mrc")
    assert code == 0
    assert "47 52 35 (z y x)" in out
    assert "1 2 3 (mapc mapr maps)" in out
    assert "Chimera" in out


# --------------------------------------------------------------------------------------
# fsc


def test_fsc_json_of_noisy_halves(data_dir, tmp_path, capsys):
    h1, h2, truth = _noisy_halves(data_dir, tmp_path)
    code, out, err = _run(capsys, "fsc", h1, h2, "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert set(report) == {"frequency", "fsc", "resolution_0.143", "resolution_0.5"}
    n = max(truth.shape)
    assert len(report["frequency"]) == len(report["fsc"]) == n // 2
    np.testing.assert_allclose(report["frequency"], np.arange(n // 2) / (n * truth.voxel_size[0]), rtol=1e-5)
    fsc = np.asarray(report["fsc"])
    assert fsc[1] > 0.9 and fsc[-1] < 0.5  # signal at low frequency, noise at high
    res143, res05 = report["resolution_0.143"], report["resolution_0.5"]
    assert 2 * truth.voxel_size[0] < res143 < res05 < n * truth.voxel_size[0]


def test_fsc_identical_maps_never_cross(data_dir, capsys):
    same_data = data_dir / "emd_21457_segment/emd_21457_seg_orig0.mrc"
    code, _, err = _run(capsys, "fsc", data_dir / SEG, same_data, "--json")
    assert code == 2 and "different origins" in err  # the headers place the two maps differently
    code, out, _ = _run(capsys, "fsc", data_dir / SEG, same_data, "--json", "--ignore-origin")
    assert code == 0
    report = json.loads(out)
    np.testing.assert_allclose(report["fsc"][1:], 1.0, atol=1e-5)
    assert report["resolution_0.143"] is None and report["resolution_0.5"] is None


def test_fsc_text_output(data_dir, tmp_path, capsys):
    h1, h2, _ = _noisy_halves(data_dir, tmp_path)
    code, out, _ = _run(capsys, "fsc", h1, h2)
    assert code == 0
    assert "resolution at FSC = 0.143:" in out and "resolution at FSC = 0.5:" in out


def test_fsc_with_mask(data_dir, tmp_path, capsys):
    h1, h2, truth = _noisy_halves(data_dir, tmp_path)
    z, y, x = np.indices(truth.shape)
    centre = (np.asarray(truth.shape) - 1) / 2
    r = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    soft = np.clip((20 - r) / 4, 0, 1).astype(np.float32)
    mask = write_map(tmp_path / "mask.mrc", Volume(soft, truth.voxel_size, truth.origin))
    code, out, err = _run(capsys, "fsc", h1, h2, "--mask", mask, "--json")
    assert code == 0, err
    masked = json.loads(out)
    _, out, _ = _run(capsys, "fsc", h1, h2, "--json")
    plain = json.loads(out)
    assert masked["frequency"] == plain["frequency"]
    assert masked["fsc"] != plain["fsc"]
    # out-of-range mask values are refused
    bad = write_map(tmp_path / "bad_mask.mrc", Volume(soft * 3, truth.voxel_size))
    code, _, err = _run(capsys, "fsc", h1, h2, "--mask", bad)
    _assert_one_line_error(code, err, bad)


def test_fsc_plot_is_written_once_unless_forced(data_dir, tmp_path, capsys):
    h1, h2, _ = _noisy_halves(data_dir, tmp_path)
    plot = tmp_path / "fsc.png"
    code, _, err = _run(capsys, "fsc", h1, h2, "--plot", plot)
    assert code == 0, err
    first = plot.read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = _run(capsys, "fsc", h1, h2, "--plot", plot)
    _assert_one_line_error(code, err, plot)
    assert "--force" in err and plot.read_bytes() == first
    code, _, err = _run(capsys, "fsc", h1, h2, "--plot", plot, "--force")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fsc.png", "half1.mrc", "half2.mrc"]
    code, _, err = _run(capsys, "fsc", h1, h2, "--plot", h1, "--force")  # never over an input
    _assert_one_line_error(code, err, h1)


# --------------------------------------------------------------------------------------
# errors: exit code 2, one line on stderr, no traceback


def _bad_maps(data_dir: Path, folder: Path) -> dict[str, Path]:
    good = (data_dir / SEG).read_bytes()
    paths = {"truncated": folder / "truncated.mrc", "text": folder / "text.mrc",
             "nan": folder / "nan.mrc", "voxel0": folder / "voxel0.mrc"}
    paths["truncated"].write_bytes(good[: len(good) // 2])
    paths["text"].write_text("this is a text file, not a map\n" * 50)
    clean = read_map(data_dir / SEG).data
    data = clean.copy()
    data[3, 4, 5] = np.nan
    with warnings.catch_warnings(), mrcfile.new(paths["nan"]) as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile's NaN header statistics
        mrc.set_data(data)
        mrc.voxel_size = 1.05
    with mrcfile.new(paths["voxel0"]) as mrc:
        mrc.set_data(clean[:5])
        mrc.voxel_size = 0.0
    return paths


@pytest.mark.parametrize("kind", ["truncated", "text", "nan", "voxel0"])
def test_bad_maps_give_one_line_errors(data_dir, tmp_path, capsys, kind):
    bad = _bad_maps(data_dir, tmp_path)[kind]
    code, out, err = _run(capsys, "info", bad)
    _assert_one_line_error(code, err, bad)
    assert out == ""
    code, _, err = _run(capsys, "fsc", data_dir / SEG, bad)
    _assert_one_line_error(code, err, bad)


def test_different_shapes_and_voxel_sizes_name_both_files(data_dir, tmp_path, capsys):
    a = data_dir / SEG
    b = data_dir / "emd_2566_crop/2566_3J6B_9.mrc"
    code, _, err = _run(capsys, "fsc", a, b)
    _assert_one_line_error(code, err, a, b)
    assert "different boxes" in err
    v = read_map(a)
    c = write_map(tmp_path / "coarser.mrc", Volume(v.data, voxel_size=2.0))
    code, _, err = _run(capsys, "fsc", a, c)
    _assert_one_line_error(code, err, a, c)
    assert "voxel sizes" in err


def test_missing_file_is_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "info", tmp_path / "absent.mrc")
    _assert_one_line_error(code, err, tmp_path / "absent.mrc")


def test_debug_shows_the_traceback(data_dir, tmp_path):
    bad = _bad_maps(data_dir, tmp_path)["text"]
    with pytest.raises(CryofmInputError, match="text.mrc"):
        main(["--debug", "info", str(bad)])


def test_info_does_not_touch_input(data_dir, tmp_path, capsys):
    path = tmp_path / "copy.mrc"
    shutil.copy(data_dir / SEG, path)
    before = path.read_bytes()
    assert _run(capsys, "info", path)[0] == 0
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["copy.mrc"]
