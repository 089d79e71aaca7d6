"""Every Python block of the migration page runs, on the virtual host.

The page's snippets use the default devices; the test points the default
host at the virtual loopback by asking for it (``da.default`` and a default
host with no other host's devices reachable), then executes each block in a
fresh namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import duplexaudio as da

PAGE = Path(__file__).resolve().parent.parent / "docs" / "from-sounddevice.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture(autouse=True)
def on_the_virtual_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No real server is reachable from here (private names elsewhere), so the
    # default host is the virtual one; the page's calls then use its devices.
    for name in ("JACK_DEFAULT_SERVER", "PULSE_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent")
    monkeypatch.setattr("duplexaudio.host._hosts", {})
    assert da.default_host().id is da.HostId.VIRTUAL
    yield
    da.default.reset()
    da.stop()


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_each_block_runs(code: str) -> None:
    exec(compile(code, str(PAGE), "exec"), {"__name__": "__docs__"})
