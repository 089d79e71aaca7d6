"""The one place that writes a benchmark's results and its section of docs/benchmarks.md.

Each benchmark owns the text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; everything else in the file is left alone.
"""

from __future__ import annotations

import json
from pathlib import Path


def update_section(path: Path, name: str, section: str) -> None:
    """Replace the text between NAME's markers in `path` (appended if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{section}{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(out: Path, docs: Path, name: str, data: object, markdown: str) -> None:
    """Write ``NAME.json`` (the raw figures) and ``NAME.md`` into ``out`` and the
    markdown into NAME's section of ``docs``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1))
    (out / f"{name}.md").write_text(markdown)
    update_section(docs, name, markdown)
