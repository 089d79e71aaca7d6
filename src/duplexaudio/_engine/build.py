"""cffi build script for the native engine (API mode, compiled at install).

Used by ``setup.py`` (``cffi_modules``); run it directly to build in place
during development: ``python src/duplexaudio/_engine/build.py``. It needs a
C compiler and Python's headers only: audio libraries are loaded at run time
with ``dlopen``, so none of their headers or packages are needed to build.

One extension module holds the engine (this folder) and every host's C
(``hosts/<name>/*.c``, declared to Python by ``hosts/<name>/<name>_api.h``):
adding a host adds its folder and touches nothing here.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HOSTS = HERE.parent / "hosts"
ENGINE_API = HERE / "engine_api.h"
# The engine's interface first, then each host's, in a stable order.
API_HEADERS = [ENGINE_API, *sorted(HOSTS.glob("*/*_api.h"))]
SOURCES = sorted(HERE.glob("*.c")) + sorted(HOSTS.glob("*/*.c"))


def make_builder(*, absolute: bool = False) -> FFI:
    """The cffi builder; setuptools wants source paths relative to the project root."""

    def path(full: Path) -> str:
        return str(full if absolute else full.relative_to(Path.cwd()))

    builder = FFI()
    builder.cdef("\n".join(header.read_text() for header in API_HEADERS))
    builder.set_source(
        "duplexaudio._engine._native",
        "\n".join(['#include "engine.h"'] + [f'#include "{h.name}"' for h in API_HEADERS[1:]]),
        sources=[path(source) for source in SOURCES],
        include_dirs=[path(HERE)] + [path(h.parent) for h in API_HEADERS[1:]],
        libraries=["m", "pthread", "dl"],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )
    return builder


if __name__ == "__main__":
    make_builder(absolute=True).compile(tmpdir=str(HERE.parent.parent), verbose=False)
else:
    ffibuilder = make_builder()
