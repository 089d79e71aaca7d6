"""The engine is a plain C library that cffi's ABI mode opens: its stub, its exports, its C."""

from __future__ import annotations

import re

from duplexio._engine import build, ffi, lib
from duplexio._engine.library import library_file


def test_the_stub_beside_the_library_is_the_headers() -> None:
    """The build writes the stub mypy reads; a library built from other headers is stale."""
    written = (build.HERE / "_native.pyi").read_text()
    assert written == build.stub_text(), (
        "the C headers changed since the build: rebuild (pip install -e ., or "
        "python src/duplexio/_engine/build.py)"
    )


def test_the_stub_types_each_call_as_the_library_does() -> None:
    """pycparser's reading of the headers against cffi's of the built library."""
    for name, (params, result) in build.declared_functions().items():
        ctype = ffi.typeof(getattr(lib, name))
        assert len(params) == len(ctype.args), name
        for (_, ptype), arg in zip(params, ctype.args, strict=True):
            expected = {"primitive": "float" if arg.cname in ("float", "double") else "int"}.get(
                arg.kind, "bytes | CData" if arg.cname == "char *" else "CData"
            )
            assert ptype == expected, (name, arg.cname, ptype)
        assert result == {"void": "None"}.get(
            ctype.result.kind,
            "CData"
            if ctype.result.kind != "primitive"
            else ("float" if ctype.result.cname in ("float", "double") else "int"),
        ), name


def test_every_function_the_headers_declare_is_exported_by_the_library() -> None:
    """ABI mode resolves each name in the library when it is first used: a missing
    export would fail only then, in the middle of some stream."""
    declared = build.declared_functions()
    assert len(declared) > 50
    for name in declared:
        assert ffi.typeof(getattr(lib, name)).kind == "function", name


def test_the_library_is_the_platforms_file_and_no_python_extension() -> None:
    folder = build.HERE
    assert (folder / library_file()).is_file()
    assert not list(folder.glob("*.pyd")) and not list(folder.glob("_native*.so"))


def test_the_engines_c_includes_no_python_header() -> None:
    """So the library builds with a C compiler alone and serves every Python."""
    sources = [*build.HERE.glob("*.[ch]"), *build.HOSTS.glob("*/*.[ch]")]
    assert len(sources) > 10
    for path in sources:
        assert not re.search(r"#\s*include\s*[<\"]Python", path.read_text()), path
