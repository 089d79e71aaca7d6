"""Run every benchmark and regenerate docs/benchmarks.md, tables and plot.

    python bench/run_all.py [--quick]

Runs, one after the other (they share the machine's CPUs, so never at once):
``engine_overhead.py`` (engine + dispatch cost, virtual host, peers on JACK),
``jack_vs_peers.py`` (the libraries and a C client on one JACK server, under
load), ``deadline.py`` (the deadline default under load), ``reblock.py``
(block sizes re-blocked from the device's period, under load),
``pipewire_load.py`` (the PipeWire host and pipewire-pulse under the same loads),
``gil_stall.py`` (playrec under a GIL-holding C extension) and
``blocking_read.py`` (a read loop under the same load, against PyAudio,
sounddevice and C). Each writes its
results under ``bench/results/`` and its own section of the docs; this script
adds the GIL-stall section and draws ``docs/benchmarks.png`` (blocks on
time per library under each load, medians of the runs) from the results.
``--quick`` runs short rows, to check the pipeline, not to publish.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    """Draw on-time blocks per library and load from jack_vs_peers.json; the markdown."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(no plot: matplotlib is not installed; `pip install matplotlib`)\n"
    from jack_vs_peers import LIBRARIES, LOADS, summary

    cells = summary(json.loads((RESULTS / "jack_vs_peers.json").read_text())["rows"])
    if not cells:
        return "(no plot: jack_vs_peers has no rows)\n"
    frames = sorted({size for _, size, _ in cells})
    libs = [lib for lib in LIBRARIES if any(key[0] == lib for key in cells)]
    width = 0.8 / len(LOADS)
    fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 4.2), squeeze=False)
    for ax, size in zip(axes[0], frames, strict=True):
        for k, load in enumerate(LOADS):
            values = [
                statistics.median(cells[lib, size, load]["on time %"])
                if (lib, size, load) in cells else 0.0
                for lib in libs
            ]  # fmt: skip
            ax.bar([i + width * k for i in range(len(libs))], values, width=width, label=load)
        ticks = [i + 0.4 - width / 2 for i in range(len(libs))]
        # Slanted, so that long names never run into their neighbours.
        ax.set_xticks(ticks, libs, fontsize="small", rotation=25, ha="right")
        ax.set_ylim(0, 100)
        ax.set_title(f"{size} frames: blocks on time, % (median of runs)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title="load", loc="upper center", ncol=len(LOADS))
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    fig.savefig(PLOT, dpi=100)
    return f"![blocks on time per library and load]({PLOT.name})\n"


def summary_lines() -> str:
    """Five lines a reader takes in before the method, from the load benchmark's
    medians (jack_vs_peers.json)."""
    from jack_vs_peers import (
        C_CLIENT,
        DUPLEXIO,
        JACK_CLIENT,
        SOUNDDEVICE,
        SOUNDDEVICE_FACE,
        summary,
    )

    data = json.loads((RESULTS / "jack_vs_peers.json").read_text())
    cells = summary(data["rows"])
    meta = data.get("meta", {})

    def median(lib: str, frames: int, load: str, column: str) -> float | None:
        cell = cells.get((lib, frames, load))
        return statistics.median(cell[column]) if cell else None

    def pct(lib: str, load: str) -> str:
        value = median(lib, 128, load, "on time %")
        return "not in this run" if value is None else f"{value:.1f} %"

    def cpu(lib: str) -> str:
        value = median(lib, 128, "none", "process CPU µs/block")
        return "not in this run" if value is None else f"{value:.0f} µs"

    unflagged = sum(
        r.get("unflagged", 0) for r in data["rows"] if r.get("lib") in (DUPLEXIO, SOUNDDEVICE_FACE)
    )
    return (
        f"- **A busy Python thread, 128-frame JACK periods:** duplexio keeps "
        f"{pct(DUPLEXIO, 'thread')} of its blocks on time, sounddevice's own program with "
        f"`import duplexio.sounddevice` {pct(SOUNDDEVICE_FACE, 'thread')}; sounddevice "
        f"{pct(SOUNDDEVICE, 'thread')}, JACK-Client {pct(JACK_CLIENT, 'thread')}.\n"
        f"- **Two busy processes beside it:** duplexio {pct(DUPLEXIO, 'processes')}, the "
        f"sounddevice face {pct(SOUNDDEVICE_FACE, 'processes')}, sounddevice "
        f"{pct(SOUNDDEVICE, 'processes')}, the C client {pct(C_CLIENT, 'processes')}.\n"
        f"- **Both loads at once** is where every Python library loses blocks: duplexio "
        f"{pct(DUPLEXIO, 'both')}, sounddevice {pct(SOUNDDEVICE, 'both')}; every loss of "
        f"duplexio's is flagged ({unflagged} unflagged discontinuities in all runs).\n"
        f"- **CPU per block, no load (process):** duplexio {cpu(DUPLEXIO)}, its sounddevice "
        f"face {cpu(SOUNDDEVICE_FACE)}, sounddevice {cpu(SOUNDDEVICE)}, JACK-Client "
        f"{cpu(JACK_CLIENT)}, the C client {cpu(C_CLIENT)}: the hand-over to a worker costs "
        f"CPU, and buys the blocks above.\n"
        f"- Measured {meta.get('date', '?')[:10]} on {meta.get('nproc', '?')} CPUs "
        f"({meta.get('runs', '?')} runs of {meta.get('seconds', '?'):g} s rows, medians); the "
        f"method and every figure follow below.\n"
    )


def glance() -> str:
    """The section that opens the page: the plot and the summary."""
    return "## At a glance\n\n" + plot() + "\n" + summary_lines()


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, then the sections this script owns."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rows (pipeline check)")
    parser.add_argument(
        "--glance", action="store_true", help="only redraw the plot and summary from the results"
    )
    args = parser.parse_args(argv)
    if args.glance:
        update_section(DOCS, "plot", glance())
        return 0
    seconds = ["--seconds", "2"] if args.quick else []
    run("engine_overhead.py", *seconds)
    run("jack_vs_peers.py", *seconds, *(["--runs", "1"] if args.quick else []))
    run("deadline.py", *seconds, *(["--runs", "1"] if args.quick else []))
    run("reblock.py", *seconds, *(["--runs", "1"] if args.quick else []))
    run("pipewire_load.py", *seconds, *(["--runs", "1"] if args.quick else []))
    run("gil_stall.py", *(["--calls", "3", "--seconds", "1"] if args.quick else []))
    run("blocking_read.py", *(["--seconds", "5", "--runs", "1"] if args.quick else []))
    gil = RESULTS / "gil_stall.md"
    if gil.exists():
        update_section(DOCS, "gil_stall", gil.read_text())
    if (RESULTS / "jack_vs_peers.json").exists():
        update_section(DOCS, "plot", glance())
    return 0


if __name__ == "__main__":
    sys.exit(main())
