"""The engine's build: a plain C shared library and cffi's ABI-mode module that loads it.

The engine (this folder) and every host's C (``hosts/<name>/*.c``, declared
to Python by ``hosts/<name>/<name>_api.h``) compile into one shared library
that includes no Python header (``libduplexio.so``, ``libduplexio.dylib``,
``duplexio.dll``; ``library.py``). Python loads it with cffi's out-of-line ABI
mode: ``_native.py``, generated from the same headers, holds the
declarations, and ``__init__.py`` opens the library. So one wheel per
platform serves every CPython and PyPy (tag ``py3-none-<platform>``).

Used by ``setup.py`` (with the platform's C compiler, through setuptools)
and by ``scripts/build-wheels`` (zig's, for every platform); run it directly
to build in place during development: ``python src/duplexio/_engine/build.py``
(which also writes ``_native.pyi``, the type stub, from the headers). Audio
libraries are loaded at run time with ``dlopen``, so none of their packages
are needed to build; adding a host adds its folder and touches nothing here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HOSTS = HERE.parent / "hosts"
ENGINE_API = HERE / "engine_api.h"
#: The ABI-mode module cffi writes beside this file.
MODULE = "duplexio._engine._native"

library_file = runpy.run_path(str(HERE / "library.py"))["library_file"]
#: What each host folder declares (hosts/<name>/host.json): where its C builds,
#: and the headers it compiles against (header-only helpers such as PipeWire's
#: SPA; the library itself is still loaded at run time). Without those headers
#: the host is left out of the build, and says so when asked for.
declared_hosts = runpy.run_path(str(HERE.parent / "declarations.py"))["declared_hosts"]


def _pkg_config_cflags(package: str) -> list[str] | None:
    """``pkg-config --cflags package`` split, or None when it is not there."""
    try:
        found = subprocess.run(
            ["pkg-config", "--cflags", package], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return found.stdout.split() if found.returncode == 0 else None


def built_hosts(platform: str) -> dict[str, list[str]]:
    """The hosts whose C is built for ``platform``, each with its headers' flags (the
    headers are this machine's: the hosts that need them are architecture-free C)."""
    built: dict[str, list[str]] = {}
    for host in declared_hosts(HOSTS):
        if not host.builds_on(platform):
            continue
        if host.pkg_config is None:
            built[host.name] = []
        elif (flags := _pkg_config_cflags(host.pkg_config)) is not None:
            built[host.name] = flags
    return built


@dataclass
class Plan:
    """What the library is made of for one platform (a ``sys.platform`` value)."""

    platform: str
    #: The engine's interface first, then each built host's, in a stable order.
    api_headers: list[Path] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)
    include_dirs: list[Path] = field(default_factory=list)
    #: A header host's library headers, as system headers (their warnings are not ours).
    system_flags: list[str] = field(default_factory=list)
    #: What the C needs from the system (never an audio library: those load at run time).
    libraries: list[str] = field(default_factory=list)

    @property
    def library(self) -> str:
        """The shared library's file name."""
        return str(library_file(self.platform))

    def gcc_flags(self) -> list[str]:
        """Compile flags for gcc, clang and zig cc. C11 with <stdatomic.h>; only the API is
        exported (DA_EXPORT), so the library's internals cannot clash with the process's."""
        std = "-std=gnu11" if self.platform.startswith("linux") else "-std=c11"
        hidden = [] if self.platform == "win32" else ["-fPIC", "-fvisibility=hidden"]
        return [std, "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", *hidden]

    @staticmethod
    def msvc_flags() -> list[str]:
        """Compile flags for MSVC, which takes C11 atomics from Visual Studio 2022 17.5."""
        return ["/O2", "/std:c11", "/experimental:c11atomics"]


def plan(platform: str = sys.platform) -> Plan:
    """The sources, headers and flags of the library for ``platform``."""
    flags = built_hosts(platform)
    hosts = [h for h in sorted(HOSTS.glob("*/*_api.h")) if h.parent.name in flags]
    return Plan(
        platform=platform,
        api_headers=[ENGINE_API, *hosts],
        sources=sorted(HERE.glob("*.c"))
        + [p for p in sorted(HOSTS.glob("*/*.c")) if p.parent.name in flags],
        include_dirs=[HERE, *(h.parent for h in hosts)],
        system_flags=[
            "-isystem" + f[2:] if f.startswith("-I") else f for fl in flags.values() for f in fl
        ],
        libraries=["m", "pthread", "dl"] if platform.startswith("linux") else [],
    )


def cdef_text(platform: str = sys.platform) -> str:
    """Every header Python sees, in order, as cffi declares them (DA_EXPORT removed)."""
    text = "\n".join(header.read_text() for header in plan(platform).api_headers)
    return re.sub(r"\bDA_EXPORT\s+", "", text)


def make_builder(platform: str = sys.platform) -> FFI:
    """The cffi builder of the ABI-mode module (declarations only, no C)."""
    builder = FFI()
    builder.cdef(cdef_text(platform))
    builder.set_source(MODULE, None)
    return builder


def emit_module(folder: Path, platform: str = sys.platform) -> Path:
    """Write ``_native.py`` (pure Python) and its type stub into ``folder``; the module's path."""
    target = folder / "_native.py"
    with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating <path>"
        make_builder(platform).emit_python_code(str(target))
    (folder / "_native.pyi").write_text(stub_text(platform))
    return target


def compile_library(folder: Path, compiler: object = None) -> Path:
    """Build this platform's library into ``folder`` with setuptools' C compiler
    (MSVC on Windows, the system's cc elsewhere; ``CC`` is honoured); its path."""
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    import setuptools  # noqa: F401  (provides distutils on Python 3.12 and later)

    p = plan()
    cc = compiler or new_compiler()
    customize_compiler(cc)  # type: ignore[arg-type]
    msvc = getattr(cc, "compiler_type", "") == "msvc"
    if sys.platform == "darwin":
        # Python's LDSHARED makes a bundle for extension modules: a library is a dylib.
        linker = [a for a in cc.linker_so if a not in ("-bundle", "-undefined", "dynamic_lookup")]  # type: ignore[attr-defined]
        cc.linker_so = [*linker, "-dynamiclib"]  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        objects = cc.compile(  # type: ignore[attr-defined]
            [os.fspath(s) for s in p.sources],
            output_dir=tmp,
            include_dirs=[os.fspath(d) for d in p.include_dirs],
            extra_postargs=p.msvc_flags() if msvc else p.gcc_flags() + p.system_flags,
        )
        target = folder / p.library
        cc.link_shared_object(objects, os.fspath(target), libraries=p.libraries)  # type: ignore[attr-defined]
    return target


#: A function as the headers declare it: its parameters (name, Python type) and result type.
Signature = tuple[list[tuple[str, str]], str]


def declared_functions(platform: str = sys.platform) -> dict[str, Signature]:
    """Each function the headers declare for ``platform``, with Python's view of its types.

    Parsed with pycparser (which cffi itself uses): what the library must
    export, and what the type stub says of each call. Numbers are ``int``
    or ``float``; a ``char *`` parameter takes ``bytes`` too (cffi passes
    them as char arrays); any other pointer is cffi's ``CData``.
    """
    import pycparser  # type: ignore[import-untyped]
    from pycparser import c_ast

    def python_type(node: object, *, param: bool) -> str:
        if isinstance(node, c_ast.PtrDecl):
            pointee = node.type
            is_char = isinstance(pointee, c_ast.TypeDecl) and getattr(
                pointee.type, "names", None
            ) == ["char"]
            return "bytes | CData" if param and is_char else "CData"
        names = getattr(getattr(node, "type", None), "names", [])
        if names == ["void"]:
            return "None"
        return "float" if {"float", "double"} & set(names) else "int"

    code = re.sub(r"/\*.*?\*/", "", cdef_text(platform), flags=re.S)
    code = "\n".join(line for line in code.splitlines() if not line.startswith("#"))
    scalars = "uint8_t uint32_t int32_t uint64_t int64_t size_t uint_fast64_t"
    preamble = "".join(f"typedef int {name};" for name in scalars.split())
    found: dict[str, Signature] = {}
    for node in pycparser.CParser().parse(preamble + code).ext:
        if isinstance(node, c_ast.Decl) and isinstance(node.type, c_ast.FuncDecl):
            params = node.type.args.params if node.type.args else []
            typed = [(p.name, python_type(p.type, param=True)) for p in params if p.name]
            found[node.name] = (typed, python_type(node.type.type, param=False))
    return found


def declared_constants(platform: str = sys.platform) -> list[str]:
    """The integer constants the headers define (``#define NAME value``)."""
    return sorted(set(re.findall(r"^#define\s+(\w+)\s+-?\d+", cdef_text(platform), flags=re.M)))


def stub_text(platform: str = sys.platform) -> str:
    """The type stub of the ABI-mode module and the library it opens, from the headers.

    Written by the build beside ``_native.py`` (`emit_module`), so mypy
    checks every call into C against the C it calls.
    """
    lines = [
        "# The engine's interface (the ABI-mode module and the library it opens), written",
        "# by the build from the C headers (duplexio/_engine/build.py).",
        "from collections.abc import Callable",
        "from typing import Any",
        "",
        "from duplexio.errors import ErrorKind",
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
        "    def dlopen(self, name: str, flags: int = ..., /) -> _Lib: ...",
        "",
        "ffi: _FFI",
        "",
        "class _Lib:",
        *(f"    {name}: int" for name in declared_constants(platform)),
    ]
    checked = []
    for name, (params, result) in sorted(declared_functions(platform).items()):
        typed = [f"{pname}: {ptype}" for pname, ptype in params]
        # Positional-only, as C's parameters are.
        lines.append(f"    def {name}({', '.join(['self', *typed, '/'])}) -> {result}: ...")
        if [pname for pname, _ in params[-2:]] == ["msg", "len"]:
            # The C boundary's convention: the message buffer is supplied and
            # the result checked (duplexio.contract.clib).
            kept = ["self", *typed[:-2], "/", "*", "context: str", "default: ErrorKind = ..."]
            checked.append(f"    def {name}({', '.join(kept)}) -> int: ...")
    lines += [
        "",
        "class _Checked:",
        "    # Each function that can fail, as duplexio.contract.clib calls it: its",
        "    # message buffer supplied, a negative result raised as Error.",
        *checked,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # In place, beside the sources (git ignores both outputs).
    emit_module(HERE)
    compile_library(HERE)
