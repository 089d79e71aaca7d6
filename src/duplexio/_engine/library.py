"""The file name of the engine's shared library on each platform.

Read by the build (``build.py``, ``setup.py``, ``scripts/build-wheels``),
which loads this file by its path, and by the loader (``__init__.py``).
"""

from __future__ import annotations

import sys


def library_file(platform: str = sys.platform) -> str:
    """The engine's file name for a ``sys.platform`` value (``linux``, ``darwin``, ``win32``)."""
    if platform == "win32":
        return "duplexio.dll"
    if platform == "darwin":
        return "libduplexio.dylib"
    return "libduplexio.so"
