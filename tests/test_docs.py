"""Every Python block of the migration, home and getting-started pages runs, on the virtual host.

The page's snippets use the default devices; the test points the default
host at the virtual loopback by asking for it (``dio.default`` and a default
host with no other host's devices reachable), then executes each block in a
fresh namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import duplexio as dio

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "from-sounddevice.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
#: (page, block) of the pages a new user reads first.
FIRST_PAGES = [
    (page, code)
    for page in ("index.md", "getting-started.md")
    for code in re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
]


@pytest.fixture(autouse=True)
def on_the_virtual_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No real server is reachable from here (private names elsewhere), so the
    # default host is the virtual one; the page's calls then use its devices.
    for name in ("JACK_DEFAULT_SERVER", "PULSE_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent")
    monkeypatch.setattr("duplexio.host._hosts", {})
    assert dio.default_host().id is dio.HostId.VIRTUAL
    yield
    dio.default.reset()
    dio.stop()


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_each_block_runs(code: str) -> None:
    exec(compile(code, str(PAGE), "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(
    ("page", "code"), FIRST_PAGES, ids=[f"{p}-{n}" for n, (p, _) in enumerate(FIRST_PAGES)]
)
def test_each_block_of_the_first_pages_runs(page: str, code: str) -> None:
    exec(compile(code, str(DOCS / page), "exec"), {"__name__": "__docs__"})


def test_the_architecture_pages_layout_is_the_trees() -> None:
    """Every module, folder and file of the engine the page's layout names exists,
    it names every one there is (the build's output aside), and every host."""
    layout = (DOCS / "architecture.md").read_text().split("```", 2)[1]
    named = set(re.findall(r"\w+(?:\.pyi|\.py|\.[ch](?!\w)|/(?=[\s<]))", layout))
    package = DOCS.parent / "src" / "duplexio"
    there = {p.name for p in package.iterdir() if p.suffix == ".py"}
    there |= {p.name + "/" for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
    engine = package / "_engine"
    there |= {p.name for p in engine.iterdir() if p.suffix in (".py", ".pyi", ".c", ".h")}
    there -= {"_native.py"}  # written by the build
    assert not there - named, f"not on the page: {sorted(there - named)}"
    # The layout's own names for kinds of file, and what the build writes.
    generic = {"duplexio/", "hosts/", "_api.h", "_native.py"}
    assert not named - there - generic, f"not in the tree: {sorted(named - there - generic)}"
    for host in (package / "hosts").glob("*/host.json"):
        assert host.parent.name in layout, host.parent.name
