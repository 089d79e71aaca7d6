"""Should the deadline default change now that the worker is real-time?

    python bench/deadline.py [--seconds N] [--runs N] [--deadlines 0.5 0.8 0.95]
        [--out bench/results] [--docs docs/benchmarks.md]

On one private jackd at 128 frames, a duplexio copy-through stream with
its real-time worker runs for N seconds with each deadline (a fraction of
the period after the device thread's wake-up) under the loads where blocks
come late: two CPU-busy processes, and those plus a busy Python thread.
Per row, as in ``jack_vs_peers.py`` (whose measurement this reuses): blocks
on time, late, lost cycles and server xruns, median over the runs.

Writes ``deadline.json`` and ``deadline.md`` into ``--out`` and the section
of ``docs/benchmarks.md`` between the deadline markers.
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
from _peers import xrun_monitor

from support import servers

FRAMES = 128
LOADS = ("processes", "both")


def lib_name(deadline: float) -> str:
    """The row's library label, which is also how the worker finds its opener."""
    return f"duplexio, deadline {deadline:g}"


def run_all(deadlines: Sequence[float], seconds: float, runs: int) -> list[dict[str, Any]]:
    """Every run's rows (none where jackd is missing)."""
    if servers.jack_missing():
        return []
    rows = []
    for run in range(1, runs + 1):
        name = servers.unique_name("dio-bench-deadline")
        with servers.jackd(name, frames=FRAMES, loopback=0) as server, xrun_monitor(name) as mon:
            for deadline in deadlines:
                for load in LOADS:
                    busy_thread, processes = jvp.LOADS[load]
                    before = mon.xruns if mon else 0
                    with servers.busy_processes(jvp.BUSY_PROCESSES if processes else 0):
                        row = jvp.run_python(lib_name(deadline), FRAMES, seconds, busy_thread,
                                             server.env, script=Path(__file__))  # fmt: skip
                    row.update(load=load, run=run, deadline=deadline,
                               **jvp.server_xruns(mon, before, row))  # fmt: skip
                    print(f"  run {run}, deadline {deadline:g}, load {load}: "
                          f"{row.get('error', 'done')}", file=sys.stderr, flush=True)  # fmt: skip
                    rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], deadlines: Sequence[float]) -> str:
    """Median (min-max) per deadline and load."""
    cells = jvp.summary(rows)
    shown = ("on time %", "late", "lost cycles", "server xruns")
    out = "| deadline | load | " + " | ".join(shown) + " |\n|---|---|" + "---|" * len(shown) + "\n"
    for deadline in deadlines:
        for load in LOADS:
            key = (lib_name(deadline), FRAMES, load)
            out += jvp.cells_row(cells, key, f"{deadline:g} | {load}", shown)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep (or, with --worker, one row of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deadlines", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    parser.add_argument("--out", type=Path, default=jvp.REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=jvp.REPO / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        deadline = float(spec["lib"].rsplit(" ", 1)[1])
        jvp.OPENERS[spec["lib"]] = jvp.open_duplexio(True, deadline)
        return jvp.worker(spec)
    rows = run_all(args.deadlines, args.seconds, args.runs)
    md = (
        "## The deadline, with a real-time worker\n\n"
        f"How measured: `python bench/deadline.py` ({args.seconds:g} s per row, {args.runs} "
        f"runs, median and range), duplexio's copy-through stream on a private jackd at "
        f"{FRAMES} frames, its real-time worker, each deadline under two busy processes "
        "(*processes*) and those plus a busy Python thread (*both*). Columns as in the table "
        "above.\n\n" + (table(rows, args.deadlines) if rows else "not run: no jackd\n")
    )
    publish(args.out, args.docs, "deadline", {"rows": rows}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
