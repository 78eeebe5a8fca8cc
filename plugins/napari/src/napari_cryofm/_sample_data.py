"""npe2 sample data: the EMD-3488 map shipped in cryofm's repository, and noisy half-maps
made from it on demand. No Qt (opening the Restore dock is delegated to `_widget`, lazily).

EMD-3488 (100^3 voxels at 1.05 A) lives in the cryofm repository at
``data/emd_3488/emd_3488.mrc``.  It is found, in order, under ``$CRYOFM_DATA`` (a folder
holding ``emd_3488/emd_3488.mrc``) and in the repository of the installed (editable) cryofm
package; otherwise a `FileNotFoundError` says where it was looked for and what to do.

The half-maps are the map plus two independent draws of coloured Gaussian noise
(`cryofm.fourier.coloured_noise`, seeds 1 and 2) whose spectrum makes their FSC fall like a
real gold-standard curve, crossing 0.143 at `HALF_MAP_RESOLUTION` (4 A): noisy enough that
denoising visibly helps.  Both layers are marked ``metadata["cryofm"]["half"] = 1 / 2`` so
the Restore dock selects them as a pair.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_cryofm._layers import LayerData, volume_layer_data

__all__ = [
    "HALF_MAP_RESOLUTION",
    "emd_3488",
    "emd_3488_halves",
    "emd_3488_path",
    "half_map_fsc_target",
    "noisy_halves",
]

_RELATIVE = Path("emd_3488") / "emd_3488.mrc"
#: where the noisy half-maps' FSC crosses 0.143, in Angstrom (the map's voxel is 1.05 A).
HALF_MAP_RESOLUTION = 4.0


def emd_3488_path() -> Path:
    """The bundled EMD-3488 map.

    Raises:
        FileNotFoundError: neither ``$CRYOFM_DATA/emd_3488/emd_3488.mrc`` nor the map in the
            installed cryofm's repository exists.
    """
    import cryofm

    tried = []
    env = os.environ.get("CRYOFM_DATA")
    if env:
        tried.append(Path(env).expanduser() / _RELATIVE)
    repo = Path(cryofm.__file__).resolve().parent.parent
    tried.append(repo / "data" / _RELATIVE)
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "the EMD-3488 sample map was not found (looked at "
        + ", ".join(str(p) for p in tried)
        + "); it ships in cryofm's source repository under data/emd_3488/: install cryofm from a "
        "git checkout (pip install -e .), or set CRYOFM_DATA to a folder holding emd_3488/emd_3488.mrc"
    )


def half_map_fsc_target(frequency: np.ndarray, resolution: float = HALF_MAP_RESOLUTION) -> np.ndarray:
    """The half-map FSC the sample's noise is designed for: a logistic fall-off in frequency.

    ``FSC(f) = 1 / (1 + exp((f - f50) / w))`` that crosses 0.143 at ``1 / resolution`` and 0.5 at
    ``f50 = 0.8 / resolution``, the shape of a typical gold-standard FSC curve.

    Args:
        frequency: [n_shells] in 1/A.
        resolution: where the FSC crosses 0.143, in Angstrom.
    """
    f143 = 1.0 / resolution
    f50 = 0.8 * f143
    width = (f143 - f50) / np.log(1.0 / 0.143 - 1.0)
    return 1.0 / (1.0 + np.exp((np.asarray(frequency, dtype=np.float64) - f50) / width))


def noisy_halves(clean, resolution: float = HALF_MAP_RESOLUTION, seeds: tuple[int, int] = (1, 2)):
    """Two half-maps of `clean` with independent coloured Gaussian noise (a realistic SNR).

    The noise power per shell is ``S (1 - F) / F`` (`cryofm.fourier.noise`: the half-map FSC of
    ``s + n_i`` is ``S / (S + N)``), with ``S`` the map's own power spectrum and ``F`` the
    target curve `half_map_fsc_target`, floored at 0.01 so that shells without signal still
    get noise: the half-map FSC then crosses 0.143 near `resolution`, the SNR per shell of one
    half-map falls from ~100 at the lowest frequencies to 0.01 beyond the resolution, and the
    variance of the map over that of the noise is ~0.15 over the box.

    Args:
        clean: the map, a `Volume` [z, y, x] float32.
        resolution: where the half-map FSC crosses 0.143, in Angstrom.
        seeds: one seed per half (reproducible).

    Returns:
        `(half1, half2)`: Volumes on `clean`'s grid (same voxel size and origin).
    """
    from cryofm.fourier import coloured_noise, power_spectrum, shell_frequencies

    signal = np.asarray(power_spectrum(clean.data), dtype=np.float64)
    frequency = shell_frequencies(clean.shape, clean.isotropic_voxel_size)
    target = np.clip(half_map_fsc_target(frequency, resolution), 0.01, 0.99)
    noise_power = signal * (1.0 - target) / target
    return tuple(
        clean.with_data(clean.data + np.asarray(coloured_noise(clean.shape, noise_power, seed=seed), np.float32))
        for seed in seeds
    )


def _open_dock_when_shown() -> None:
    """In a napari window, open the Restore dock (Qt is imported only then)."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None or getattr(viewer, "window", None) is None:
        return
    from napari_cryofm._widget import dock_restore_widget_later

    dock_restore_widget_later(viewer)


def emd_3488() -> list[LayerData]:
    """The EMD-3488 map as an image layer (memory-mapped), named "EMD-3488"."""
    from cryofm.io import read_map

    path = emd_3488_path()
    volume = read_map(path, mmap=True)
    _open_dock_when_shown()
    return [volume_layer_data(volume, name="EMD-3488", path=path)]


def emd_3488_halves() -> list[LayerData]:
    """Noisy half-maps of EMD-3488: layers "EMD-3488 half1" and "EMD-3488 half2"."""
    from cryofm.io import read_map

    path = emd_3488_path()
    clean = read_map(path)
    half1, half2 = noisy_halves(clean)
    _open_dock_when_shown()
    return [
        volume_layer_data(half, name=f"EMD-3488 half{i}", extra={"half": i, "derived_from": str(path)})
        for i, half in ((1, half1), (2, half2))
    ]
