"""The native real-time engine (C, built with cffi at install time).

Exposes ``ffi`` and ``lib`` of the compiled module and nothing else; the
Python side of streams is `duplexio.stream`. Next to this file is
only what every host shares: ``engine.c`` (the hand-over between a device
thread and the Python worker, events, threads, run-time library loading),
``samples.c`` (the one sample converter), their headers (``engine_api.h`` for
Python, ``engine.h`` for the hosts' C), ``build.py`` (which gathers each
host's C from ``hosts/<name>/``) and ``_native.pyi`` (the compiled module's
types, generated from the headers).
"""

from __future__ import annotations

try:
    from duplexio._engine._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "duplexio's native engine is not built. Install the package with pip "
        "(it compiles at install time: needs a C compiler and Python's headers), "
        "or build it in place with `python src/duplexio/_engine/build.py`"
    ) from exc

__all__ = ["ffi", "lib"]
