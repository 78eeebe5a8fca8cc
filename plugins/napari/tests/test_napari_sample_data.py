"""Sample data: the bundled EMD-3488 map and its noisy half-maps (realistic FSC, seeded)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cryofm
from cryofm.fourier import fsc
from cryofm.io import Volume
from napari_cryofm._sample_data import emd_3488, emd_3488_halves, emd_3488_path

REPO = Path(__file__).resolve().parents[3]


def test_emd_3488_opens_from_the_repository_memory_mapped():
    assert emd_3488_path() == REPO / "data" / "emd_3488" / "emd_3488.mrc"
    [(data, kwargs, layer_type)] = emd_3488()
    assert layer_type == "image" and kwargs["name"] == "EMD-3488"
    assert data.shape == (100, 100, 100)
    np.testing.assert_allclose(kwargs["scale"], (1.05, 1.05, 1.05), rtol=1e-6)
    assert kwargs["metadata"]["cryofm"]["path"] == str(emd_3488_path())
    assert not data.flags.owndata  # a view of the file, not a copy


def test_half_maps_are_noisy_reproducible_and_resolve_to_about_4_angstrom():
    (d1, k1, _), (d2, k2, _) = emd_3488_halves()
    assert (k1["name"], k2["name"]) == ("EMD-3488 half1", "EMD-3488 half2")
    assert (k1["metadata"]["cryofm"]["half"], k2["metadata"]["cryofm"]["half"]) == (1, 2)
    assert k1["scale"] == k2["scale"] and k1["translate"] == k2["translate"]
    [(clean, _, _)] = emd_3488()
    noise = np.asarray(d1) - np.asarray(clean)
    assert 0.05 < np.var(np.asarray(clean)) / np.var(noise) < 0.5  # noisy: SNR well below 1 over the box
    result = fsc(Volume(d1, voxel_size=1.05), Volume(d2, voxel_size=1.05))
    assert 3.5 < result.resolution(0.143) < 4.5
    (again, _, _), _ = emd_3488_halves()
    np.testing.assert_array_equal(again, d1)


def test_missing_map_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(cryofm, "__file__", str(tmp_path / "site" / "cryofm" / "__init__.py"))
    monkeypatch.delenv("CRYOFM_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="CRYOFM_DATA"):
        emd_3488_path()
    (tmp_path / "data" / "emd_3488").mkdir(parents=True)
    shutil.copy(REPO / "data" / "emd_3488" / "emd_3488.mrc", tmp_path / "data" / "emd_3488")
    monkeypatch.setenv("CRYOFM_DATA", str(tmp_path / "data"))
    assert emd_3488_path() == tmp_path / "data" / "emd_3488" / "emd_3488.mrc"
