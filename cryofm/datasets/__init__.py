"""Training data: gemmi simulation of maps from models, patch extraction, zarr patch stores, split."""

from cryofm.datasets.build import SimulationSettings, build_map_store, build_simulated_store, find_structures
from cryofm.datasets.patches import Patch, extract_patches
from cryofm.datasets.simulate import (
    B_EXTRA_RANGE,
    SimulatedMap,
    entry_id,
    quaternion_to_matrix,
    random_rotation,
    simulate_map,
)
from cryofm.datasets.split import read_entry_list, split_entries
from cryofm.datasets.store import SPLIT_TRAIN, SPLIT_VALIDATION, PatchRecord, PatchStore, PatchStoreWriter

__all__ = [
    "B_EXTRA_RANGE",
    "SimulatedMap",
    "SimulationSettings",
    "Patch",
    "PatchRecord",
    "PatchStore",
    "PatchStoreWriter",
    "SPLIT_TRAIN",
    "SPLIT_VALIDATION",
    "build_map_store",
    "build_simulated_store",
    "entry_id",
    "extract_patches",
    "find_structures",
    "quaternion_to_matrix",
    "random_rotation",
    "read_entry_list",
    "simulate_map",
    "split_entries",
]
