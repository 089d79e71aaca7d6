"""cffi build script for the native engine (API mode, compiled at install).

Used by ``setup.py`` (``cffi_modules``); run it directly to build in place
during development: ``python src/duplexio/_engine/build.py``. It needs a
C compiler and Python's headers only: audio libraries are loaded at run time
with ``dlopen``, so none of their headers or packages are needed to build.

One extension module holds the engine (this folder) and every host's C
(``hosts/<name>/*.c``, declared to Python by ``hosts/<name>/<name>_api.h``):
adding a host adds its folder and touches nothing here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HOSTS = HERE.parent / "hosts"
ENGINE_API = HERE / "engine_api.h"
#: Hosts whose C is Linux's alone; left out of builds elsewhere (see
#: ``duplexio.host.LINUX_ONLY``, which a test keeps equal to this).
LINUX_ONLY_HOSTS = ("alsa", "jack", "pipewire", "pulse")
_ON_LINUX = sys.platform.startswith("linux")


#: Hosts whose C compiles against a library's headers (header-only helpers
#: such as PipeWire's SPA), by pkg-config name; the library itself is still
#: loaded at run time. Without the headers the host is left out of the
#: build, and says so when asked for.
HEADER_HOSTS = {"pipewire": "libpipewire-0.3"}


def _pkg_config_cflags(package: str) -> list[str] | None:
    """``pkg-config --cflags package`` split, or None when it is not there."""
    try:
        found = subprocess.run(
            ["pkg-config", "--cflags", package], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return found.stdout.split() if found.returncode == 0 else None


HEADER_FLAGS = {
    host: flags
    for host, package in HEADER_HOSTS.items()
    if _ON_LINUX and (flags := _pkg_config_cflags(package)) is not None
}


def _built(folder: Path) -> bool:
    if folder.name in HEADER_HOSTS:
        return folder.name in HEADER_FLAGS
    return _ON_LINUX or folder.name not in LINUX_ONLY_HOSTS


# The engine's interface first, then each host's, in a stable order.
API_HEADERS = [ENGINE_API, *(h for h in sorted(HOSTS.glob("*/*_api.h")) if _built(h.parent))]
# (_native.c is what cffi generates here, not a source.)
SOURCES = [p for p in sorted(HERE.glob("*.c")) if not p.name.startswith("_")] + [
    p for p in sorted(HOSTS.glob("*/*.c")) if _built(p.parent)
]
# What the C needs from the system, per platform (never an audio library:
# those are loaded at run time). The engine's C is C11 with <stdatomic.h>:
# MSVC takes it from Visual Studio 2022 17.5 with the flags below. Only the
# Linux build is exercised here; macOS and Windows are compiled by zig in
# scripts/cross-check, never by this build.
if sys.platform == "win32":
    LIBRARIES: list[str] = []
    COMPILE_ARGS = ["/O2", "/std:c11", "/experimental:c11atomics"]
elif sys.platform == "darwin":
    LIBRARIES = []
    COMPILE_ARGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
else:
    LIBRARIES = ["m", "pthread", "dl"]
    COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def make_builder() -> FFI:
    """The cffi builder; setuptools wants source paths relative to the working directory."""

    def path(full: Path) -> str:
        return os.path.relpath(full)

    builder = FFI()
    builder.cdef(cdef_text())
    builder.set_source(
        "duplexio._engine._native",
        "\n".join(['#include "engine.h"'] + [f'#include "{h.name}"' for h in API_HEADERS[1:]]),
        sources=[path(source) for source in SOURCES],
        include_dirs=[path(HERE)] + [path(h.parent) for h in API_HEADERS[1:]],
        libraries=LIBRARIES,
        # A library's headers as system headers: their own warnings are not ours.
        extra_compile_args=COMPILE_ARGS
        + [
            "-isystem" + f[2:] if f.startswith("-I") else f
            for flags in HEADER_FLAGS.values()
            for f in flags
        ],
    )
    return builder


def cdef_text() -> str:
    """Every header Python sees, in order: what cffi declares."""
    return "\n".join(header.read_text() for header in API_HEADERS)


STUB = HERE / "_native.pyi"


def stub_text() -> str:
    """The type stub of the compiled module, from the headers and the built module.

    Parameter names come from the headers (parsed with pycparser, which
    cffi itself uses), types from the compiled functions, so mypy checks
    every call into C. A test keeps the committed stub equal to this.
    """
    import re

    import pycparser  # type: ignore[import-untyped]
    from pycparser import c_ast

    from duplexio._engine._native import ffi, lib

    code = re.sub(r"/\*.*?\*/", "", cdef_text(), flags=re.S)
    code = "\n".join(line for line in code.splitlines() if not line.startswith("#"))
    scalars = "uint8_t uint32_t int32_t uint64_t int64_t size_t uint_fast64_t"
    preamble = "".join(f"typedef int {name};" for name in scalars.split())
    names: dict[str, list[str]] = {}
    for node in pycparser.CParser().parse(preamble + code).ext:
        if isinstance(node, c_ast.Decl) and isinstance(node.type, c_ast.FuncDecl):
            params = node.type.args.params if node.type.args else []
            names[node.name] = [p.name for p in params if p.name]

    def annotation(ctype: object, *, result: bool) -> str:
        kind, cname = ctype.kind, ctype.cname  # type: ignore[attr-defined]
        if kind == "void":
            return "None"
        if kind == "primitive":
            return "float" if cname in ("float", "double") else "int"
        if not result and cname == "char *":
            return "bytes | CData"  # cffi passes bytes as a char array
        return "CData"

    lines = [
        "# The compiled engine's interface, made by `python src/duplexio/_engine/build.py",
        "# --stub` from the headers; tests/_engine/test_native_stub.py keeps it current.",
        "from collections.abc import Callable",
        "from typing import Any",
        "",
        "# A pointer or struct: its fields are the C headers' (mypy checks the calls).",
        "CData = Any",
        "",
        "class _FFI:",
        "    # The part of cffi.FFI the package uses; what it makes has the headers' fields.",
        "    NULL: CData",
        "    def new(self, cdecl: str, init: object = ..., /) -> CData: ...",
        "    def from_buffer(self, python_buffer: object, /) -> CData: ...",
        "    def cast(self, cdecl: str, value: object, /) -> CData: ...",
        "    def gc(self, cdata: CData, destructor: Callable[[CData], object], /) -> CData: ...",
        "    def release(self, cdata: CData, /) -> None: ...",
        "    def string(self, cdata: CData, maxlen: int = ..., /) -> bytes | str: ...",
        "    def buffer(self, cdata: CData, size: int = ..., /) -> Any: ...",
        "    def typeof(self, cdecl: object, /) -> Any: ...",
        "",
        "ffi: _FFI",
        "",
        "class _Lib:",
    ]
    functions = []
    for name in sorted(dir(lib)):
        value = getattr(lib, name)
        if isinstance(value, int):
            lines.append(f"    {name}: int")
            continue
        ctype = ffi.typeof(value)
        params = [
            f"{pname}: {annotation(arg, result=False)}"
            for pname, arg in zip(names[name], ctype.args, strict=True)
        ]
        result = annotation(ctype.result, result=True)
        # Positional-only, as C's parameters are.
        signature = ", ".join(["self", *params, "/"])
        functions.append(f"    def {name}({signature}) -> {result}: ...")
    lines.extend(functions)
    lines += ["", "lib: _Lib", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--stub"]:
        STUB.write_text(stub_text())
        sys.exit(0)
    # From src/, so the module lands in the package and objects beside their
    # sources (git ignores both).
    os.chdir(HERE.parent.parent)
    make_builder().compile(verbose=False)
else:
    ffibuilder = make_builder()
