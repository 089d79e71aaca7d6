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
SOURCES = ["engine.c", "virtual.c", "jack.c"]


def make_builder(*, absolute: bool = False) -> FFI:
    """The cffi builder; setuptools wants source paths relative to the project root."""

    def path(name: str) -> str:
        full = HERE / name
        return str(full if absolute else full.relative_to(Path.cwd()))

    builder = FFI()
    builder.cdef((HERE / "engine_api.h").read_text())
    builder.set_source(
        "duplexaudio._engine._native",
        '#include "engine.h"',
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
