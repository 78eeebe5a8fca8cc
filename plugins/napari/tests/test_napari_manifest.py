"""The manifest is valid and napari finds every contribution through it."""

from __future__ import annotations

from pathlib import Path

import npe2

import napari_cryofm

MANIFEST = Path(napari_cryofm.__file__).parent / "napari.yaml"


def test_manifest_validates_and_commands_import():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    manifest.validate_imports()  # every python_name resolves to a callable
    assert manifest.name == "napari-cryofm"
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} == {"Restore"}
    assert {s.key for s in contributions.sample_data} == {"emd_3488", "emd_3488_halves"}
    assert contributions.writers[0].filename_extensions[:2] == [".mrc", ".map"]  # .mrc: the default ending
    patterns = contributions.readers[0].filename_patterns
    assert {"*.mrc", "*.map", "*.mrcs", "*.rec", "*.mrc.gz", "*.zarr"} <= set(patterns)


def test_napari_lists_the_installed_plugin(small_mrc):
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert "napari-cryofm" in {m.name for m in pm.iter_manifests()}
    readers = [r.command for r in pm.iter_compatible_readers([str(small_mrc)])]
    assert "napari-cryofm.get_reader" in readers
    writers = [w.command for w in pm.iter_compatible_writers(["image"])]
    assert "napari-cryofm.write_mrc" in writers
