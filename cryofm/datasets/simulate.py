"""Density maps simulated from atomic models with gemmi's electron form factors.

A map is simulated after a random proper rotation of the atom coordinates (uniform on SO(3)) and
with an extra isotropic B-factor `b_extra` added to every atom.  The atoms' own B-factors are kept
relative to the structure's median, clipped to [0, 60] A^2, so local flexibility survives but
X-ray / NMR conventions do not set the global blur (NMR models carry B = 0).

Resolution of a blur B: a Gaussian blur multiplies amplitudes by exp(-B s^2 / 4) (s = 1/d), which
falls to 1/e at d = sqrt(B) / 2.  `b_extra` uniform in [16, 81] A^2 therefore spans 2.0 to 4.5 A by
that criterion (the per-atom relative B adds local blur on top).  At 1.5 A/voxel the map's Nyquist
limit is 3.0 A, so the sharp end is limited by sampling, as for real maps at that voxel size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryofm.errors import CryofmInputError
from cryofm.io.volume import Volume

__all__ = [
    "B_EXTRA_RANGE",
    "SimulatedMap",
    "random_rotation",
    "quaternion_to_matrix",
    "simulate_map",
    "entry_id",
    "STRUCTURE_SUFFIXES",
]

B_EXTRA_RANGE = (16.0, 81.0)  # A^2 -> 2.0 .. 4.5 A (amplitude 1/e at d = sqrt(B)/2)
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")


def entry_id(path: str | os.PathLike) -> str:
    """The entry id of a structure file: its name without the structure suffixes, lower case."""
    name = Path(path).name.lower()
    for suffix in sorted(STRUCTURE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) [4] -> proper rotation matrix [3, 3]."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def random_rotation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A rotation uniform on SO(3) (normalised 4D Gaussian quaternion, w >= 0).

    Returns:
        (quaternion [4] (w, x, y, z), matrix [3, 3]) with det +1.
    """
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return q, quaternion_to_matrix(q)


@dataclass
class SimulatedMap:
    """A simulated map and where its atoms are.

    volume: the map, [z, y, x], 1.5 A voxels, origin 0.
    atom_voxels: [N, 3] atom positions in voxel units, ordered (z, y, x).
    b_extra: the extra B-factor applied (A^2); quaternion: the rotation (w, x, y, z).
    """

    volume: Volume
    atom_voxels: np.ndarray
    b_extra: float
    quaternion: np.ndarray


def simulate_map(
    path: str | os.PathLike,
    *,
    b_extra: float,
    quaternion: np.ndarray,
    voxel_size: float = 1.5,
    min_box: int = 64,
    margin: float = 12.0,
) -> SimulatedMap:
    """Simulate the electron-scattering density of a model, rotated, with an extra blur.

    Args:
        path: PDB or mmCIF file (gzip allowed).
        b_extra: B-factor added to every atom, A^2.
        quaternion: rotation (w, x, y, z) applied to the coordinates about their centroid.
        voxel_size: A per voxel.
        min_box: smallest cubic box in voxels.
        margin: empty space around the atoms, A (the calculation is periodic).

    Returns:
        SimulatedMap with a cubic map whose side is even and >= min_box.

    Raises:
        CryofmInputError: unreadable file or a model without atoms.
    """
    import gemmi

    if str(path).lower().endswith(".gz"):
        try:
            with open(path, "rb") as f:
                magic = f.read(2)
        except OSError as exc:
            raise CryofmInputError(f"{path}: cannot read this file ({exc}); check the path and its permissions") from None
        if magic != b"\x1f\x8b":
            raise CryofmInputError(f"{path}: unreadable: named .gz but not gzip-compressed (a failed download?); "
                                   f"pass the real gzip file, or rename it without .gz if it is plain text")
    try:
        st = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise CryofmInputError(f"{path}: gemmi cannot read this structure ({exc}); pass a PDB or mmCIF file") from exc
    st.setup_entities()
    st.remove_hydrogens()
    st.remove_waters()
    st.remove_empty_chains()
    if len(st) == 0:
        raise CryofmInputError(f"{path}: no model in this file")
    model = st[0]
    atoms = [cra.atom for cra in model.all()]
    if not atoms:
        raise CryofmInputError(f"{path}: the first model has no atoms (after removing water and hydrogen)")
    xyz = np.array([a.pos.tolist() for a in atoms])
    bs = np.array([a.b_iso for a in atoms])
    rel_b = np.clip(bs - np.median(bs), 0.0, 60.0)
    for a, b in zip(atoms, rel_b):
        a.b_iso = float(b)
        a.aniso = gemmi.SMat33f(0, 0, 0, 0, 0, 0)
    rot = quaternion_to_matrix(quaternion)
    centre = xyz.mean(axis=0)
    radius = float(np.sqrt(((xyz - centre) ** 2).sum(axis=1)).max())
    n = max(min_box, int(np.ceil((2 * radius + 2 * margin) / voxel_size)))
    n += n % 2
    side = n * voxel_size
    shift = np.full(3, side / 2) - rot @ centre
    model.transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(rot.tolist()), gemmi.Vec3(*shift)))
    st.cell = gemmi.UnitCell(side, side, side, 90, 90, 90)
    st.spacegroup_hm = "P 1"
    dc = gemmi.DensityCalculatorE()
    dc.d_min = 2 * voxel_size
    dc.blur = float(b_extra)
    dc.set_grid_cell_and_spacegroup(st)
    dc.grid.set_size(n, n, n)
    dc.grid.fill(0.0)
    dc.add_model_density_to_grid(model)
    data = np.array(dc.grid, copy=True).transpose(2, 1, 0)  # gemmi [x, y, z] -> [z, y, x]
    moved = (rot @ (xyz - centre).T).T + side / 2
    atom_voxels = (moved / voxel_size)[:, ::-1].copy()
    vol = Volume(data.astype(np.float32), voxel_size, metadata={"path": str(path)})
    return SimulatedMap(vol, atom_voxels, float(b_extra), np.asarray(quaternion, dtype=np.float64))
