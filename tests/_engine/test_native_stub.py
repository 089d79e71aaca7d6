"""The engine is a plain C library that cffi's ABI mode opens: its stub, its exports, its C."""

from __future__ import annotations

import re

from duplexio._engine import build, ffi, lib
from duplexio._engine.library import library_file


def test_the_committed_stub_matches_the_headers() -> None:
    assert build.STUB.read_text() == build.stub_text(), (
        "the C headers changed: run `python src/duplexio/_engine/build.py --stub`"
    )


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
