"""The native real-time engine (C, built with cffi at install time).

Exposes ``ffi`` and ``lib`` of the compiled module and nothing else; the
Python side of streams is :mod:`duplexaudio.stream`, the C sources are next
to this file (``engine.c``: hand-over between device thread and Python
worker; ``virtual.c``: the virtual host's clock).
"""

from __future__ import annotations

try:
    from duplexaudio._engine._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "duplexaudio's native engine is not built. Install the package with pip "
        "(it compiles at install time: needs a C compiler and Python's headers), "
        "or build it in place with `python src/duplexaudio/_engine/build.py`"
    ) from exc

__all__ = ["ffi", "lib"]
