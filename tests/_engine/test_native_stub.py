"""The type stub of the compiled module stays what the headers declare."""

from __future__ import annotations

from duplexio._engine import build


def test_the_committed_stub_matches_the_headers() -> None:
    assert build.STUB.read_text() == build.stub_text(), (
        "the C headers changed: run `python src/duplexio/_engine/build.py --stub`"
    )
