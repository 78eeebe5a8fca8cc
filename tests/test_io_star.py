"""cryofm.io.star: finding RELION half maps and reading tilt angles from STAR files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from cryofm import CryofmInputError
from cryofm.io.star import RelionMaps, read_tilt_angles, resolve_relion_star, resolve_star_path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _postprocess_project(root: Path, *, mask: str | None = "MaskCreate/job012/mask.mrc") -> Path:
    """A RELION project: Refine3D/job010 half maps, a mask, PostProcess/job011/postprocess.star."""
    _touch(root / "Refine3D/job010/run_half1_class001_unfil.mrc")
    _touch(root / "Refine3D/job010/run_half2_class001_unfil.mrc")
    general = {
        "rlnFinalResolution": 3.2,
        "rlnBfactorUsedForSharpening": -80.0,
        "rlnUnfilteredMapHalf1": "Refine3D/job010/run_half1_class001_unfil.mrc",
        "rlnUnfilteredMapHalf2": "Refine3D/job010/run_half2_class001_unfil.mrc",
        "rlnRandomiseFrom": 6.5,
    }
    if mask is not None:
        _touch(root / mask)
        general["rlnMaskName"] = mask
    fsc = pd.DataFrame({"rlnSpectralIndex": [0, 1, 2], "rlnResolution": [0.0, 0.01, 0.02],
                        "rlnFourierShellCorrelationCorrected": [1.0, 0.9, 0.1]})
    star = root / "PostProcess/job011/postprocess.star"
    star.parent.mkdir(parents=True)
    starfile.write({"general": general, "fsc": fsc}, star)
    return star


def test_postprocess_paths_resolve_against_project(tmp_path):
    star = _postprocess_project(tmp_path)
    maps = resolve_relion_star(star)
    assert isinstance(maps, RelionMaps)
    assert maps.half1 == tmp_path / "Refine3D/job010/run_half1_class001_unfil.mrc"
    assert maps.half2 == tmp_path / "Refine3D/job010/run_half2_class001_unfil.mrc"
    assert maps.mask == tmp_path / "MaskCreate/job012/mask.mrc"
    assert maps.resolution == pytest.approx(3.2)
    assert maps.voxel_size is None
    assert maps.source == star
    assert resolve_relion_star(star.parent) == maps  # the job folder works too


def test_postprocess_without_mask(tmp_path):
    maps = resolve_relion_star(_postprocess_project(tmp_path, mask=None))
    assert maps.mask is None


def test_postprocess_missing_half_map_names_it(tmp_path):
    star = _postprocess_project(tmp_path)
    (tmp_path / "Refine3D/job010/run_half2_class001_unfil.mrc").unlink()
    with pytest.raises(CryofmInputError, match="run_half2_class001_unfil.mrc") as excinfo:
        resolve_relion_star(star)
    assert str(star) in str(excinfo.value) and "_rlnUnfilteredMapHalf2" in str(excinfo.value)


def test_project_dir_wins_over_parents(tmp_path):
    star = _postprocess_project(tmp_path / "here")
    other = tmp_path / "elsewhere"
    _touch(other / "Refine3D/job010/run_half1_class001_unfil.mrc")
    _touch(other / "Refine3D/job010/run_half2_class001_unfil.mrc")
    _touch(other / "MaskCreate/job012/mask.mrc")
    maps = resolve_relion_star(star, project_dir=other)
    assert maps.half1.parent.parent.parent == other


def test_resolve_star_path_absolute_and_type_suffix(tmp_path):
    target = _touch(tmp_path / "maps/half.mrc")
    star = _touch(tmp_path / "a/b/c.star")
    assert resolve_star_path(star, str(target)) == target
    assert resolve_star_path(star, "maps/half.mrc:mrc") == target
    with pytest.raises(CryofmInputError, match="not found"):
        resolve_star_path(star, str(tmp_path / "nothing.mrc"))


def _refine_job(folder: Path, root: str = "run", unfil: bool = True) -> None:
    tag = "_unfil" if unfil else ""
    _touch(folder / f"{root}_half1_class001{tag}.mrc")
    _touch(folder / f"{root}_half2_class001{tag}.mrc")
    starfile.write(
        {"model_general": {"rlnReferenceDimensionality": 3, "rlnOriginalImageSize": 128,
                           "rlnCurrentResolution": 4.1, "rlnPixelSize": 1.06}},
        folder / f"{root}_model.star",
    )
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnImagePixelSize": [1.06], "rlnImageSize": [128]})
    particles = pd.DataFrame({"rlnImageName": ["1@p.mrcs"], "rlnOpticsGroup": [1]})
    starfile.write({"optics": optics, "particles": particles}, folder / f"{root}_data.star")


@pytest.mark.parametrize("which", ["run_model.star", "run_data.star", "folder"])
def test_refine_job_half_maps_beside_star(tmp_path, which):
    job = tmp_path / "Refine3D/job010"
    job.mkdir(parents=True)
    _refine_job(job)
    maps = resolve_relion_star(job if which == "folder" else job / which)
    assert maps.half1 == job / "run_half1_class001_unfil.mrc"
    assert maps.half2 == job / "run_half2_class001_unfil.mrc"
    assert maps.voxel_size == pytest.approx(1.06)
    assert maps.resolution == pytest.approx(4.1)
    assert maps.mask is None


def test_refine_iteration_without_unfil_maps(tmp_path):
    _refine_job(tmp_path, root="run_it025", unfil=False)
    maps = resolve_relion_star(tmp_path / "run_it025_data.star")
    assert maps.half1.name == "run_it025_half1_class001.mrc"


def test_refine_missing_half_map(tmp_path):
    _refine_job(tmp_path)
    (tmp_path / "run_half1_class001_unfil.mrc").unlink()
    with pytest.raises(CryofmInputError, match="run_half1_class001_unfil.mrc"):
        resolve_relion_star(tmp_path / "run_model.star")


def test_not_a_relion_star(tmp_path):
    other = tmp_path / "particles.star"
    starfile.write({"particles": pd.DataFrame({"rlnImageName": ["1@a.mrcs"]})}, other)
    with pytest.raises(CryofmInputError, match="neither a RELION postprocess"):
        resolve_relion_star(other)
    empty = tmp_path / "empty.star"
    empty.write_text("just some words\n")
    with pytest.raises(CryofmInputError, match=str(empty)):
        resolve_relion_star(empty)
    with pytest.raises(CryofmInputError, match="no such STAR file"):
        resolve_relion_star(tmp_path / "absent.star")
    with pytest.raises(CryofmInputError, match="holds no postprocess.star"):
        resolve_relion_star(tmp_path)


# --------------------------------------------------------------------------------------
# tilt angles

NOMINAL = np.array([0.0, 3.0, -3.0, 6.0, -6.0, 9.0, -9.0])
ALIGNED = NOMINAL + 0.25


def _tilt_series(path: Path, name: str = "TS_01", aligned: bool = True) -> Path:
    table = {
        "rlnMicrographName": [f"frames/{name}_{i:03d}.mrc" for i in range(NOMINAL.size)],
        "rlnTomoNominalStageTiltAngle": NOMINAL,
        "rlnMicrographPreExposure": np.arange(NOMINAL.size) * 3.0,
    }
    if aligned:
        table |= {"rlnTomoXTilt": np.zeros(NOMINAL.size), "rlnTomoYTilt": ALIGNED,
                  "rlnTomoZRot": np.full(NOMINAL.size, 85.0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    starfile.write({name: pd.DataFrame(table)}, path)
    return path


def test_tilt_angles_prefer_aligned_tilt(tmp_path):
    star = _tilt_series(tmp_path / "TS_01.star")
    np.testing.assert_allclose(read_tilt_angles(star), ALIGNED)
    np.testing.assert_allclose(read_tilt_angles(star, column="_rlnTomoNominalStageTiltAngle"), NOMINAL)
    nominal_only = _tilt_series(tmp_path / "TS_02.star", name="TS_02", aligned=False)
    np.testing.assert_allclose(read_tilt_angles(nominal_only), NOMINAL)


def test_tilt_angles_through_tomograms_star(tmp_path):
    _tilt_series(tmp_path / "AlignTiltSeries/job005/tilt_series/TS_01.star", "TS_01")
    _tilt_series(tmp_path / "AlignTiltSeries/job005/tilt_series/TS_02.star", "TS_02", aligned=False)
    tomograms = pd.DataFrame({
        "rlnTomoName": ["TS_01", "TS_02"],
        "rlnTomoTiltSeriesStarFile": ["AlignTiltSeries/job005/tilt_series/TS_01.star",
                                      "AlignTiltSeries/job005/tilt_series/TS_02.star"],
        "rlnTomoTiltSeriesPixelSize": [1.35, 1.35],
    })
    star = tmp_path / "Reconstruct/job006/tomograms.star"
    star.parent.mkdir(parents=True)
    starfile.write({"global": tomograms}, star)
    np.testing.assert_allclose(read_tilt_angles(star, tomo_name="TS_01"), ALIGNED)
    np.testing.assert_allclose(read_tilt_angles(star, tomo_name="TS_02"), NOMINAL)
    with pytest.raises(CryofmInputError, match="tomo_name"):
        read_tilt_angles(star)
    with pytest.raises(CryofmInputError, match="TS_09"):
        read_tilt_angles(star, tomo_name="TS_09")


def test_tilt_angles_one_block_per_tomogram(tmp_path):
    star = tmp_path / "all.star"
    starfile.write({
        "TS_A": pd.DataFrame({"rlnTomoNominalStageTiltAngle": [-3.0, 0.0, 3.0]}),
        "TS_B": pd.DataFrame({"rlnTomoNominalStageTiltAngle": [-60.0, 60.0]}),
    }, star)
    np.testing.assert_allclose(read_tilt_angles(star, tomo_name="TS_B"), [-60.0, 60.0])


def test_tilt_angles_generic_column_and_errors(tmp_path):
    star = tmp_path / "tilts.star"
    starfile.write({"": pd.DataFrame({"rlnTiltAngle": [-40.0, -20.0, 0.0, 20.0, 40.0]})}, star)
    np.testing.assert_allclose(read_tilt_angles(star), [-40, -20, 0, 20, 40])
    bad = tmp_path / "bad.star"
    starfile.write({"": pd.DataFrame({"rlnTiltAngle": [-40.0, 120.0]})}, bad)
    with pytest.raises(CryofmInputError, match=r"\[-90, 90\]"):
        read_tilt_angles(bad)
    none = tmp_path / "none.star"
    starfile.write({"": pd.DataFrame({"rlnDefocusU": [1.0]})}, none)
    with pytest.raises(CryofmInputError, match="no tilt-angle column"):
        read_tilt_angles(none)
