"""The geometry of the tests' small map (a module with a unique name: the repository's own
tests have a conftest.py too, so `from conftest import ...` would be ambiguous)."""

# (x, y, z) Angstrom, deliberately all different so that an axis-order slip shows
VOXEL_SIZE_XYZ = (1.5, 2.0, 2.5)
ORIGIN_XYZ = (10.0, -20.0, 30.0)
