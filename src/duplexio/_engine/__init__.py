"""The native real-time engine: a plain C shared library, loaded with cffi's ABI mode.

Exposes ``ffi`` (the declarations, ``_native.py``, generated from the
headers at build time) and ``lib`` (the library, ``library.py`` names its
file) and nothing else; the Python side of streams is `duplexio.stream`.
Next to this file is only what every host shares: ``engine.c`` (the
hand-over between a device thread and the Python worker, events, threads,
run-time library loading), ``samples.c`` (the one sample converter), their
headers (``engine_api.h`` for Python, ``engine.h`` for the hosts' C),
``build.py`` (which gathers each host's C from ``hosts/<name>/``) and
``_native.pyi`` (the library's types, generated from the headers).
"""

from __future__ import annotations

from pathlib import Path

from duplexio._engine.library import library_file

_HINT = (
    "duplexio's engine is not built. Install the package with pip (a wheel needs "
    "nothing else; from source it compiles with the system's C compiler), or build "
    "it in place with `python src/duplexio/_engine/build.py`"
)

try:
    from duplexio._engine._native import ffi
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(_HINT) from exc

try:
    lib = ffi.dlopen(str(Path(__file__).with_name(library_file())))
except OSError as exc:  # pragma: no cover - only without a build
    raise ImportError(f"{_HINT} ({exc})") from exc

__all__ = ["ffi", "lib"]
