"""Training data: rotations, simulation, patches, the zarr patch store, the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryofm.datasets import (
    SPLIT_TRAIN,
    SPLIT_VALIDATION,
    PatchRecord,
    PatchStore,
    PatchStoreWriter,
    SimulationSettings,
    build_simulated_store,
    entry_id,
    extract_patches,
    quaternion_to_matrix,
    random_rotation,
    read_entry_list,
    simulate_map,
    split_entries,
)
from cryofm.errors import CryofmInputError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "data" / "tiny_structures"


def test_random_rotation_is_proper_and_not_cubic():
    rng = np.random.default_rng(0)
    mats = []
    for _ in range(200):
        q, r = random_rotation(rng)
        assert abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)
        # not a multiple of 90 degrees: a cube rotation has entries in {-1, 0, 1} only
        assert np.abs(np.abs(r) - np.round(np.abs(r))).max() > 1e-3
        mats.append(r)
    # uniform on SO(3): E[R] = 0 (Haar measure), entries ~ within a few standard errors
    assert np.abs(np.mean(mats, axis=0)).max() < 0.1
    np.testing.assert_allclose(quaternion_to_matrix(np.array([1.0, 0, 0, 0])), np.eye(3))


def test_entry_id():
    assert entry_id("a/b/1CRN.pdb.gz") == "1crn" and entry_id("x/4hhb.cif") == "4hhb"


def test_simulated_density_sits_on_the_rotated_atoms():
    rng = np.random.default_rng(3)
    q, _ = random_rotation(rng)
    sim = simulate_map(TINY / "1crn.pdb.gz", b_extra=30.0, quaternion=q)
    d = sim.volume.data
    assert d.shape == (64, 64, 64) and np.allclose(sim.volume.voxel_size, 1.5)
    iz, iy, ix = np.round(sim.atom_voxels).astype(int).T
    on_atoms = d[iz, iy, ix].mean()
    assert on_atoms > 20 * d.mean()
    # a larger B spreads the same scattering mass: lower peaks, about the same total
    blurred = simulate_map(TINY / "1crn.pdb.gz", b_extra=80.0, quaternion=q).volume.data
    assert blurred.max() < d.max()
    assert blurred.sum() == pytest.approx(d.sum(), rel=0.05)


def test_extract_patches_are_centred_on_density():
    rng = np.random.default_rng(0)
    q, _ = random_rotation(rng)
    sim = simulate_map(TINY / "2ci2.pdb.gz", b_extra=40.0, quaternion=q)
    ps = extract_patches(sim.volume.data, sim.atom_voxels, 3, rng, box=32)
    assert len(ps) == 3
    for p in ps:
        assert p.data.shape == (32, 32, 32) and p.data.dtype == np.float32
        assert p.data[12:20, 12:20, 12:20].mean() > p.data.mean()
    # nothing above threshold -> no patches
    assert extract_patches(np.zeros((40, 40, 40), np.float32), np.array([[20.0, 20, 20]]), 2, rng, box=32) == []


def test_patch_store_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w = PatchStoreWriter(tmp_path / "s.zarr", box=8, voxel_size=1.5, flush_every=3)
    recs = []
    for k, (name, split) in enumerate([("aaa", 0), ("bbb", 1), ("ccc", 0)]):
        n = k + 1
        rec = PatchRecord(name, rng.normal(size=(n, 8, 8, 8)).astype(np.float32), np.full(n, 10.0 * k),
                          rng.normal(size=(n, 4)), rng.normal(size=(n, 3)), split)
        recs.append(rec)
        w.add(rec)
    w.close()
    s = PatchStore(tmp_path / "s.zarr")
    assert len(s) == 6 and s.entries == ["aaa", "bbb", "ccc"] and s.box == 8 and s.voxel_size == 1.5
    all_patches = np.concatenate([r.patches for r in recs])
    np.testing.assert_array_equal(s.load(), all_patches.astype(np.float16))
    np.testing.assert_array_equal(s.load(SPLIT_VALIDATION), recs[1].patches.astype(np.float16))
    np.testing.assert_array_equal(s.entry, [0, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(s.b_extra, [0, 10, 10, 20, 20, 20])
    np.testing.assert_allclose(s.quaternion, np.concatenate([r.quaternion for r in recs]), rtol=1e-6)
    assert s.entries_of(SPLIT_TRAIN) == {"aaa", "ccc"} and s.entries_of(SPLIT_VALIDATION) == {"bbb"}
    with pytest.raises(CryofmInputError, match="exists"):
        PatchStoreWriter(tmp_path / "s.zarr", box=8, voxel_size=1.5)


def test_simulated_store_split_has_no_entry_on_both_sides(tmp_path):
    settings = SimulationSettings(rotations=1, patches=2, box=32, seed=1)
    path, n, errors = build_simulated_store([TINY], tmp_path / "t.zarr", settings=settings,
                                            validation_entries=["2drk"], workers=1, progress=False)
    assert errors == [] and n > 0
    s = PatchStore(path)
    assert s.entries_of(SPLIT_VALIDATION) == {"2drk"}
    assert s.entries_of(SPLIT_TRAIN).isdisjoint(s.entries_of(SPLIT_VALIDATION))
    assert np.all((s.b_extra >= 16) & (s.b_extra <= 81))
    # the same seed gives the same store whatever the worker count
    path2, _, _ = build_simulated_store([TINY], tmp_path / "t2.zarr", settings=settings,
                                        validation_entries=["2drk"], workers=2, progress=False)
    np.testing.assert_array_equal(PatchStore(path2).load(), s.load())


def test_split_entries_and_validation_list():
    train, val = split_entries(["a", "B", "c"], ["b"])
    assert train == ["a", "c"] and val == ["B"]
    ids = read_entry_list(ROOT / "data" / "validation_entries.txt")
    assert len(ids) == 24 and len(set(ids)) == 24
    index = ROOT.parent / "shared" / "data" / "structures" / "INDEX.tsv"
    if index.is_file():  # the corpus is beside the clone in CI; optional here
        known = {line.split("\t")[0] for line in index.read_text().splitlines()[1:]}
        assert set(ids) <= known


def test_cli_data_simulate(tmp_path):
    from cryofm.cli.main import main

    out = tmp_path / "cli.zarr"
    assert main(["data", "simulate", str(TINY / "1crn.pdb.gz"), str(TINY / "1cka.pdb.gz"), "-o", str(out),
                 "--rotations", "1", "--patches", "1", "--box", "32", "--workers", "1"]) == 0
    assert PatchStore(out).entries_of(SPLIT_TRAIN) == {"1crn", "1cka"}
    assert main(["data", "simulate", str(TINY), "-o", str(out)]) == 2  # exists, no --force


def test_cli_data_maps(tmp_path, data_dir):
    from cryofm.cli.main import main

    out = tmp_path / "maps.zarr"
    assert main(["data", "maps", str(data_dir / "emd_3488" / "emd_3488.mrc"), "-o", str(out), "--patches", "2",
                 "--workers", "1", "--validation"]) == 0
    s = PatchStore(out)
    assert len(s) == 2 and s.voxel_size == 1.5 and set(s.split.tolist()) == {SPLIT_VALIDATION}
    assert np.all(np.isnan(s.b_extra))


def test_cli_data_refuses_when_no_patch_is_written(tmp_path):
    from cryofm.cli.main import main

    fake_gz = tmp_path / "1abc.pdb.gz"
    fake_gz.write_text("<html>not found</html>\n")  # a failed download, not gzip
    junk = tmp_path / "2abc.pdb"
    junk.write_text("garbage\n")
    out = tmp_path / "empty.zarr"
    assert main(["data", "simulate", str(fake_gz), str(junk), "-o", str(out), "--workers", "1"]) == 2
    assert not out.exists()
    with pytest.raises(CryofmInputError, match="no patch could be written.*not gzip-compressed"):
        build_simulated_store([fake_gz], out, workers=1, progress=False)
    assert not out.exists()
    with pytest.raises(CryofmInputError, match="unreadable: named .gz but not gzip"):
        simulate_map(fake_gz, b_extra=20.0, quaternion=np.array([1.0, 0, 0, 0]))
    bad_map = tmp_path / "x.mrc"
    bad_map.write_bytes(b"not a map")
    assert main(["data", "maps", str(bad_map), "-o", str(tmp_path / "m.zarr"), "--workers", "1"]) == 2
    assert not (tmp_path / "m.zarr").exists()


def test_a_failed_rebuild_keeps_the_earlier_store(tmp_path):
    from cryofm.cli.main import main
    from cryofm.io._atomic import default_mode

    settings = SimulationSettings(rotations=1, patches=1, box=32, seed=1)
    out = tmp_path / "t.zarr"
    build_simulated_store([TINY], out, settings=settings, workers=1, progress=False)
    before = PatchStore(out).load()
    junk = tmp_path / "2abc.pdb"
    junk.write_text("garbage\n")
    assert main(["data", "simulate", str(junk), "-o", str(out), "--workers", "1", "--force"]) == 2
    np.testing.assert_array_equal(PatchStore(out).load(), before)  # not replaced by an empty store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2abc.pdb", "t.zarr"]  # no partial store left
    path, n, _ = build_simulated_store([TINY], out, settings=SimulationSettings(rotations=1, patches=2, box=32, seed=2),
                                       workers=1, progress=False, overwrite=True)
    assert n == len(PatchStore(path)) and PatchStore(path).attrs["settings"]["patches"] == 2  # replaced
    assert out.stat().st_mode & 0o777 == default_mode(folder=True)  # the usual permissions, not mkdtemp's 0700
