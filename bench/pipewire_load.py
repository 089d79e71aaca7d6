"""duplexio on PipeWire under load: the native host against pipewire-pulse.

    python bench/pipewire_load.py [--seconds N] [--runs N] [--frames 128]
        [--out bench/results] [--docs docs/benchmarks.md]

For each run a private PipeWire stack (TESTING.md: session bus, pipewire,
wireplumber, pipewire-pulse, a null sink, the quantum forced to FRAMES)
carries a copy-through duplex stream on the null sink for N seconds under
each load of ``jack_vs_peers.py`` (none, a busy Python thread, two busy
processes, both): once through the native PipeWire host (one filter node
on the graph's clock), once through the PulseAudio host on pipewire-pulse
(the sink and its monitor over the pulse protocol). Each row runs in a
fresh interpreter. Columns as in ``jack_vs_peers.py``; PipeWire shows a
client no server xruns, so that column is empty here.

Writes ``pipewire_load.json`` and ``pipewire_load.md`` into ``--out`` and
the section of ``docs/benchmarks.md`` between the pipewire_load markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jack_vs_peers as jvp
from _docs import publish

from support import servers

SINK = "da_sink"
#: Row label -> the duplex device it runs on.
ROUTES = {
    "duplexio, PipeWire host": f"pipewire:{SINK}",
    "duplexio, pulse host on pipewire-pulse": f"pulse:{SINK}",
}


def run_all(
    frame_sizes: Sequence[int], seconds: float, runs: int
) -> tuple[list[dict[str, Any]], str]:
    """Every run's rows, and a note (why nothing ran, or '')."""
    reason = servers.pipewire_missing()
    if reason:
        return [], f"not run: {reason}"
    rows = []
    for run in range(1, runs + 1):
        for frames in frame_sizes:
            stack = servers.start_pipewire(sink=SINK, quantum=frames)
            try:
                for lib in ROUTES:
                    for load, (busy_thread, processes) in jvp.LOADS.items():
                        with servers.busy_processes(jvp.BUSY_PROCESSES if processes else 0):
                            row = jvp.run_python(lib, frames, seconds, busy_thread, stack.env,
                                                 script=Path(__file__))  # fmt: skip
                        row.update(load=load, run=run, server_xruns=None)
                        done = row.get("error", "done")
                        print(f"  run {run}, {lib}, {frames} frames, load {load}: {done}",
                              file=sys.stderr, flush=True)  # fmt: skip
                        rows.append(row)
            finally:
                stack.stop()
    return rows, ""


def table(rows: list[dict[str, Any]], frames: int) -> str:
    """Median (min-max) per route and load, the columns of jack_vs_peers but server xruns."""
    cells = jvp.summary(rows)
    shown = [c[0] for c in jvp.COLUMNS if c[0] != "server xruns"]
    out = "| route | load | " + " | ".join(shown) + " |\n|---|---|" + "---|" * len(shown) + "\n"
    for lib in ROUTES:
        for load in jvp.LOADS:
            out += jvp.cells_row(cells, (lib, frames, load), f"{lib} | {load}", shown)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one row of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, nargs="+", default=[128])
    parser.add_argument("--out", type=Path, default=jvp.REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=jvp.REPO / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        jvp.OPENERS[spec["lib"]] = jvp.open_duplexio(True, device_id=ROUTES[spec["lib"]])
        return jvp.worker(spec)
    rows, note = run_all(args.frames, args.seconds, args.runs)
    md = (
        "## PipeWire under load: the native host and pipewire-pulse\n\n"
        f"How measured: `python bench/pipewire_load.py` ({args.seconds:g} s per row, "
        f"{args.runs} runs, median and range), a copy-through duplex stream on a PipeWire "
        "null sink (quantum forced), through the native PipeWire host and through the "
        "PulseAudio host on pipewire-pulse, under the loads above. PipeWire shows a client "
        "no server xruns: *on time* counts the stream's own flags only. The audio-thread "
        "column counts SCHED_FIFO threads, and PipeWire's data thread runs at normal "
        "priority here (no RTKit): for the native host its CPU is in the process column.\n\n"
    )
    for frames in args.frames:
        md += f"### {frames} frames\n\n" + (table(rows, frames) if rows else note + "\n") + "\n"
    publish(args.out, args.docs, "pipewire_load", {"rows": rows}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
