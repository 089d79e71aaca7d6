"""Run every benchmark and regenerate docs/benchmarks.md, tables and plot.

    python bench/run_all.py [--quick]

Runs, one after the other (they share the machine's CPUs, so never at once):
``engine_overhead.py`` (engine + dispatch cost, virtual host, peers on JACK),
``jack_vs_peers.py`` (the three libraries on one JACK server) and
``gil_stall.py`` (playrec under a GIL-holding C extension). Each writes its
results under ``bench/results/`` and its own section of the docs; this script
adds the GIL-stall section and draws ``docs/benchmarks.png`` (blocks per
second delivered, with and without a busy Python thread) from the results.
``--quick`` runs short rows, to check the pipeline, not to publish.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from _docs import update_section

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOCS = BENCH.parent / "docs" / "benchmarks.md"
PLOT = DOCS.parent / "benchmarks.png"


def run(script: str, *args: str) -> None:
    """Run one benchmark script; a failure is reported and the others still run."""
    print(f"== {script} {' '.join(args)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(BENCH / script), *args], check=False)
    if done.returncode:
        print(f"{script} exited with {done.returncode}", file=sys.stderr)


def plot() -> str:
    """Draw blocks/s per library from jack_vs_peers.json; the markdown that shows it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(no plot: matplotlib is not installed; `pip install matplotlib`)\n"
    rows = json.loads((RESULTS / "jack_vs_peers.json").read_text())["rows"]
    rows = [r for r in rows if "error" not in r]
    if not rows:
        return "(no plot: jack_vs_peers has no rows)\n"
    frames = sorted({r["frames"] for r in rows})
    libs = list(dict.fromkeys(r["lib"] for r in rows))
    fig, axes = plt.subplots(1, len(frames), figsize=(5 * len(frames), 3.5), squeeze=False)
    for ax, size in zip(axes[0], frames, strict=True):
        for k, load in enumerate((False, True)):
            values = [
                next((r["blocks_per_s"] for r in rows
                      if r["lib"] == lib and r["frames"] == size and r["load"] == load), 0.0)
                for lib in libs
            ]  # fmt: skip
            ax.bar([i + 0.4 * k for i in range(len(libs))], values, width=0.4,
                   label="busy Python thread" if load else "no load")  # fmt: skip
        ax.axhline(48000 / size, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks([i + 0.2 for i in range(len(libs))], libs)
        ax.set_title(f"{size} frames: blocks/s delivered (dashed: all)")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    return f"![blocks per second delivered]({PLOT.name})\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, then the sections this script owns."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rows (pipeline check)")
    args = parser.parse_args(argv)
    seconds = ["--seconds", "2"] if args.quick else []
    run("engine_overhead.py", *seconds)
    run("jack_vs_peers.py", *seconds)
    run("gil_stall.py", *(["--calls", "3", "--seconds", "1"] if args.quick else []))
    gil = RESULTS / "gil_stall.md"
    if gil.exists():
        update_section(DOCS, "gil_stall", gil.read_text())
    if (RESULTS / "jack_vs_peers.json").exists():
        update_section(DOCS, "plot", "## At a glance\n\n" + plot())
    return 0


if __name__ == "__main__":
    sys.exit(main())
