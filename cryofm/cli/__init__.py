"""The `cryofm` command line (click). Commands are thin shells over the Python API."""
