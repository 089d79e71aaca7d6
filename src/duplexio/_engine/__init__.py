"""The native real-time engine: a plain C shared library, loaded with cffi's ABI mode.

Exposes ``ffi`` (the declarations: ``_native.py``, written by the build from
the headers) and ``lib`` (the library, whose file ``library.py`` names) and
nothing else; the Python side of streams is `duplexio.stream`. Next to this
file is what every host's C shares, one unit per file: ``engine.c`` (a
stream's cycle and the hand-over to the Python worker; ``engine_internal.h``
its struct), ``program.c`` and ``blocking.c`` (the program and blocking
modes), ``ring.c``, ``samples.c`` (the one sample converter),
``resample.c`` and ``aggregate.c`` (two devices' clocks made one), the
platform layer (``platform.h``, ``platform_posix.c``, ``platform_win32.c``:
threads, semaphores, the clock, run-time library loading), the headers
(``engine_api.h`` for Python, ``engine.h`` for the hosts' C, one per unit
beside it), ``build.py`` (the library from these and each host's C) and
``_native.pyi`` (its types, generated from the headers). docs/architecture.md
has the same list, kept to the tree by a test.
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

# The library stays mapped until the process ends (RTLD_NODELETE where the
# platform has it): at interpreter shutdown the objects that own engine
# handles are collected in no set order, some after this module's `lib`, and
# their destructors call into the library, which must still be there.
_FLAGS = getattr(ffi, "RTLD_NOW", 0) | getattr(ffi, "RTLD_NODELETE", 0)

try:
    lib = ffi.dlopen(str(Path(__file__).with_name(library_file())), _FLAGS)
except OSError as exc:  # pragma: no cover - only without a build
    raise ImportError(f"{_HINT} ({exc})") from exc

__all__ = ["ffi", "lib"]
