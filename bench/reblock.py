"""Any block size: a callback's blocks re-blocked from the device's period, under load.

    python bench/reblock.py [--seconds N] [--runs N] [--sizes 64 256 1000 1024]
        [--out bench/results] [--docs docs/benchmarks.md]

On one private jackd at 256-frame periods, duplexio's copy-through duplex
stream asks for each block size: 256 (the period itself, no re-blocking),
64 (four blocks a period), 1000 (neither a divisor nor a multiple) and 1024
(one block every four periods). A re-blocked block's callback runs in the
device cycle that completes its input, within that cycle's deadline (0.8 of
a 256-frame period however long the block), so a long block has less time
per frame than the device's own; pipelined gives it until the next block is
due. Each size runs same-cycle and pipelined, with no load, a busy Python
thread and two busy processes. Per row, as in ``jack_vs_peers.py``: blocks
on time, late, server xruns, CPU per block; median (range) over the runs.

Writes ``reblock.json`` and ``reblock.md`` into ``--out`` and the section of
``docs/benchmarks.md`` between the reblock markers.
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

PERIOD = 256
LOADS = ("none", "thread", "processes")
MODES = ("same-cycle", "pipelined")


def lib_name(frames: int, mode: str) -> str:
    """The row's label, which is also how the worker finds its opener."""
    return f"duplexio, {frames} on {PERIOD}, {mode}"


def run_all(sizes: Sequence[int], seconds: float, runs: int) -> list[dict[str, Any]]:
    """Every run's rows (none where jackd is missing)."""
    if servers.jack_missing():
        return []
    rows = []
    for run in range(1, runs + 1):
        name = servers.unique_name("dio-bench-reblock")
        with servers.jackd(name, frames=PERIOD, loopback=0) as server, xrun_monitor(name) as mon:
            for frames in sizes:
                for mode in MODES:
                    for load in LOADS:
                        rows.append(row_of(frames, mode, load, seconds, server, mon, run))
    return rows


def row_of(
    frames: int, mode: str, load: str, seconds: float, server: Any, mon: Any, run: int
) -> dict[str, Any]:
    """One row, in a fresh interpreter, with the server's xruns during it."""
    busy_thread, processes = jvp.LOADS[load]
    before = mon.xruns if mon else 0
    with servers.busy_processes(jvp.BUSY_PROCESSES if processes else 0):
        row = jvp.run_python(
            lib_name(frames, mode), frames, seconds, busy_thread, server.env, Path(__file__)
        )
    row.update(load=load, run=run, mode=mode, **jvp.server_xruns(mon, before, row))
    print(f"  run {run}, {frames} frames, {mode}, {load}: {row.get('error', 'done')}",
          file=sys.stderr, flush=True)  # fmt: skip
    return row


def table(rows: list[dict[str, Any]], sizes: Sequence[int]) -> str:
    """Median (min-max) per block size, mode and load."""
    cells = jvp.summary(rows)
    shown = ("on time %", "late", "server xruns", "process CPU µs/block")
    out = "| block | mode | load | " + " | ".join(shown) + " |\n"
    out += "|---|---|---|" + "---|" * len(shown) + "\n"
    for frames in sizes:
        for mode in MODES:
            for load in LOADS:
                key = (lib_name(frames, mode), frames, load)
                out += jvp.cells_row(cells, key, f"{frames} | {mode} | {load}", shown)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep (or, with --worker, one row of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 64, 1000, 1024])
    parser.add_argument("--out", type=Path, default=jvp.REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=jvp.REPO / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        mode = spec["lib"].rsplit(", ", 1)[1]
        jvp.OPENERS[spec["lib"]] = jvp.open_duplexio(True, pipelined=mode == "pipelined")
        return jvp.worker(spec)
    rows = run_all(args.sizes, args.seconds, args.runs)
    md = (
        "## Any block size: re-blocked callbacks under load\n\n"
        f"How measured: `python bench/reblock.py` ({args.seconds:g} s per row, {args.runs} "
        f"runs, median and range), duplexio's copy-through duplex stream on a private jackd "
        f"at {PERIOD}-frame periods, its real-time worker, each block size same-cycle and "
        "pipelined, with no load, a busy Python thread (*thread*) and two busy processes "
        "(*processes*). *On time* counts blocks against the blocks the time allows; CPU is "
        "the process's per block.\n\n"
        + (table(rows, args.sizes) if rows else "not run: no jackd\n")
    )
    publish(args.out, args.docs, "reblock", {"rows": rows}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
