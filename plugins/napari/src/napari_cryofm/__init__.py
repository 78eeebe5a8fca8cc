"""napari-cryofm: open, save and restore cryo-EM/ET maps with cryofm inside napari.

Everything is registered in ``napari.yaml`` (reader, writer, sample data, the Restore dock
widget).  The modules split as follows:

- ``_layers``: Volume <-> napari layer data (scale/translate from voxel size/origin), crops;
  no Qt.
- ``_reader`` / ``_writer`` / ``_sample_data``: npe2 contributions; no Qt.
- ``_worker``: the restoration as a generator that yields typed ``Progress`` messages and
  honours a cancel ``threading.Event``; no Qt.
- ``_command``: the equivalent ``cryofm`` command line; no Qt.
- ``_widget``: the Qt dock widget that ties these together.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
