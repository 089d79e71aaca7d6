"""cffi build script for the native engine (API mode, compiled at install).

Used by ``setup.py`` (``cffi_modules``); run it directly to build in place
during development: ``python src/duplexaudio/_engine/build.py``. It needs a
C compiler and Python's headers only: audio libraries are loaded at run time
with ``dlopen``, so none of their headers or packages are needed to build.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
# The engine's interface first, then one <host>_api.h per host written in C:
# adding a host adds its own files here and touches nothing else.
API_HEADERS = [HERE / "engine_api.h", *sorted(set(HERE.glob("*_api.h")) - {HERE / "engine_api.h"})]
SOURCES = sorted(p.name for p in HERE.glob("*.c") if not p.name.startswith("_"))


def make_builder(*, absolute: bool = False) -> FFI:
    """The cffi builder; setuptools wants source paths relative to the project root."""

    def path(name: str) -> str:
        full = HERE / name
        return str(full if absolute else full.relative_to(Path.cwd()))

    builder = FFI()
    builder.cdef("\n".join(header.read_text() for header in API_HEADERS))
    builder.set_source(
        "duplexaudio._engine._native",
        "\n".join(['#include "engine.h"'] + [f'#include "{h.name}"' for h in API_HEADERS[1:]]),
        sources=[path(name) for name in SOURCES],
        include_dirs=[path(".")],
        libraries=["m", "pthread", "dl"],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )
    return builder


if __name__ == "__main__":
    make_builder(absolute=True).compile(tmpdir=str(HERE.parent.parent), verbose=False)
else:
    ffibuilder = make_builder()
