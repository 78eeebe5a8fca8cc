"""The benchmark scripts run (smallest settings): they are how the README's figures are made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_prior_speed_runs_forward_and_training_steps():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "prior_speed.py"), "--model", "tiny",
                          "--repeats", "1", "--train-steps", "1", "--crop", "8", "16", "--batch", "1", "2",
                          "--threads", "1", "--profile"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "CPU forward 64^3" in out.stdout
    assert "profile of one CPU forward 64^3" in out.stdout and "64^3 inputs" in out.stdout
    assert "batch 1 of 8^3" in out.stdout and "batch 2 of 16^3" in out.stdout


def test_prior_shells_prints_the_band_tables(data_dir):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "prior_shells.py"),
                          str(data_dir / "emd_3488" / "emd_3488.mrc")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("| shells |") == 3 and "t = 0.8: ratio" in out.stdout


def test_prior_layout_ab_times_every_variant():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "prior_layout_ab.py"), "--rounds", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert all(v in out.stdout for v in ("shipped", "unfused", "literal_up", "contiguous"))


def test_dc_error_prints_the_measured_error_beside_the_table():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _protocol

    if not _protocol.CURVES.exists():
        pytest.skip(f"the protocol's FSC curves ({_protocol.CURVES}) are not beside this clone")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dc_error.py"), "--quick", "--label", "15A"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("x_hat") == 4 and out.stdout.count("E_t") == 4 and "error scale 50" in out.stdout


def test_flow_start_prints_gain_correlation_and_power_per_start():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _protocol

    if not _protocol.CURVES.exists():
        pytest.skip(f"the protocol's FSC curves ({_protocol.CURVES}) are not beside this clone")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "flow_start.py"), "--quick", "--levels", "15A",
                          "--t", "0.6,1.0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| 15A |")]
    assert [r[1].strip() for r in rows] == ["0.6", "1"]
    for _, _, gain, corr, power in rows:
        assert -1 < float(gain) < 1 and -1 <= float(corr) <= 1 and float(power) > 0


def test_large_map_runs_the_cli_and_scores_it():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _protocol

    if not _protocol.CURVES.exists():
        pytest.skip(f"the protocol's FSC curves ({_protocol.CURVES}) are not beside this clone")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "large_map.py"), "--box", "40", "--voxel", "2.0",
                          "--tasks", "denoise", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| denoise 4.3A |")]
    assert len(rows) == 1 and rows[0][-1].strip().startswith("1 of 1")
    observation, restored = float(rows[0][1]), float(rows[0][3].split()[0])
    assert restored > observation  # a crowded 40^3 box at 2 A, 4.3 A half maps: cryofm gains
    assert "device(s) the CLI ran on: cpu" in out.stdout


def test_view_coverage_conserves_the_views_and_leaves_the_top_views_cone_empty():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _protocol

    import numpy as np

    shape = (64, 64, 64)
    kz, ky, kx = np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), np.fft.rfftfreq(64), indexing="ij")
    r = np.sqrt(kz**2 + ky**2 + kx**2)
    shell = (r > 0.3) & (r < 0.45)
    polar = np.degrees(np.arccos(np.abs(kz) / np.where(r > 0, r, 1)))
    weight = np.where(kx == 0, 1.0, 2.0)  # the rfft's half space stands for the whole sphere
    for cone in (45, 30, 15):
        coverage = _protocol.view_coverage(shape, cone)
        # each view samples one great circle, wherever it points: the mean over directions is 1
        assert np.sum((coverage * weight)[shell]) / np.sum(weight[shell]) == pytest.approx(1.0, abs=0.01)
        assert np.all(coverage[shell & (polar < 90 - cone - 1)] == 0)
        assert np.all(coverage[shell & (polar > 90 - cone + 1)] > 0)


def test_restore_benchmark_runs_the_preferred_orientation_cases():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _protocol

    if not _protocol.CURVES.exists():
        pytest.skip(f"the protocol's FSC curves ({_protocol.CURVES}) are not beside this clone")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "restore.py"), "--quick", "--samplers", "dc",
                          "--tasks", "preferred", "--no-cli-timing"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| preferred")]
    assert [r[0].strip() for r in rows] == ["preferred 45", "preferred 30", "preferred 15"]
    for r in rows:
        assert float(r[3].split()[0]) > float(r[2].split()[0]) > float(r[1])  # dc > masked Wiener > observation
