"""The installed distribution's version, for ``duplexio.__version__`` and the CLI."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("duplexio")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
