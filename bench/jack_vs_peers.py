"""duplexaudio, sounddevice and JACK-Client on the same JACK server, same run.

    python bench/jack_vs_peers.py [--seconds N] [--frames 128 256] [--out bench/results]
        [--docs docs/benchmarks.md]

For each block size the script starts one private jackd (dummy driver, no
loopback ports) and runs, one after the other and each in a fresh
interpreter, a copy-through duplex stream of each library wired to
``system:*``, for N seconds, without and then with a second Python thread
busy in a pure-Python loop. Per row: blocks per second delivered, CPU per
block of the audio thread (the process's real-time threads: where JACK calls
the client; for duplexaudio a C callback, for the peers the Python callback),
CPU per block of the whole client process (minus the busy thread), and the
server's xruns counted by a monitor client.

Writes ``jack_vs_peers.json`` and ``jack_vs_peers.md`` into ``--out`` and the
section of ``docs/benchmarks.md`` between the jack_vs_peers markers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.servers: the one jackd launcher

from _docs import update_section  # noqa: E402
from _peers import PeerError, open_jack_client, open_sounddevice, xrun_monitor  # noqa: E402

from tests import servers  # noqa: E402

RATE = 48000
CHANNELS = 2
LIBRARIES = ("duplexaudio", "JACK-Client", "sounddevice")


class Session(Protocol):
    """A stream opened but not started."""

    def start(self) -> None: ...

    def figures(self) -> dict[str, Any]: ...


class DuplexaudioSession:
    """A duplexaudio stream on ``jack:<server>``; figures from its engine."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def start(self) -> None:
        self.stream.start()

    def figures(self) -> dict[str, Any]:
        s = self.stream.stats
        return {"callbacks": s.callbacks + s.late_blocks, "delivered": s.callbacks,
                "late": s.late_blocks + s.skipped_blocks}  # fmt: skip


@contextmanager
def open_duplexaudio(frames: int, rate: int, channels: int) -> Iterator[Session]:
    """A copy-through duplex stream on the default JACK server's driver ports."""
    import duplexaudio as da

    device = da.host_from_id("jack").default_duplex_device()
    if device is None:
        raise PeerError("no JACK server answers")
    config = da.DuplexStreamConfig(channels, channels, rate, da.BufferSize.fixed(frames))

    def callback(inp: Any, out: Any, info: Any) -> None:
        out[:] = inp

    stream = device.build_duplex_stream(config, callback)
    try:
        yield DuplexaudioSession(stream)
    finally:
        stream.close()


OPENERS: dict[str, Callable[[int, int, int], AbstractContextManager[Any]]] = {
    "duplexaudio": open_duplexaudio,
    "JACK-Client": open_jack_client,
    "sounddevice": open_sounddevice,
}


def realtime_cpu_seconds() -> float:
    """CPU time (s) of this process's SCHED_FIFO/RR threads: where JACK calls the client."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        if int(fields[38]) in (1, 2):  # policy: SCHED_FIFO or SCHED_RR
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(lib: str, frames: int, seconds: float, load: bool) -> dict[str, Any]:
    """One row, in this interpreter: open, start, run, report."""
    stop = False
    loops = 0

    def busy() -> None:
        nonlocal loops
        while not stop:
            loops += 1

    with OPENERS[lib](frames, RATE, CHANNELS) as session:
        thread = threading.Thread(target=busy, daemon=True)
        if load:
            thread.start()
        cpu0, rt0, wall0 = time.process_time(), realtime_cpu_seconds(), time.perf_counter()
        busy_clock = time.pthread_getcpuclockid(thread.ident) if thread.ident is not None else None
        busy0 = time.clock_gettime(busy_clock) if busy_clock is not None else 0.0
        session.start()
        time.sleep(seconds)
        figures = session.figures()
        wall = time.perf_counter() - wall0
        rt_cpu = realtime_cpu_seconds() - rt0
        busy_cpu = time.clock_gettime(busy_clock) - busy0 if busy_clock is not None else 0.0
        cpu = time.process_time() - cpu0 - busy_cpu
        stop = True
    callbacks = figures["callbacks"] or 1
    return {
        "lib": lib, "frames": frames, "load": load, "wall_s": wall,
        "blocks_per_s": figures["delivered"] / wall, "expected_blocks_per_s": RATE / frames,
        "audio_thread_us_per_block": rt_cpu / callbacks * 1e6,
        "process_us_per_block": cpu / callbacks * 1e6,
        "late": figures.get("late", 0),
        "busy_loops_per_s": loops / wall if load else None,
    }  # fmt: skip


def run_worker(
    lib: str, frames: int, seconds: float, load: bool, env: dict[str, str]
) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter, so its CPU time is one stream's alone."""
    spec = json.dumps({"lib": lib, "frames": frames, "seconds": seconds, "load": load})
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", spec]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120,
                              env=env, check=False)  # fmt: skip
        row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as exc:
        row = {"lib": lib, "frames": frames, "load": load, "error": f"{type(exc).__name__}"}
    return row


def run_all(frame_sizes: Sequence[int], seconds: float) -> tuple[list[dict[str, Any]], str]:
    """Every row, and a note (why nothing ran, or '')."""
    reason = servers.jack_missing()
    if reason:
        return [], f"not run: {reason}"
    rows = []
    for frames in frame_sizes:
        name = servers.unique_name("da-bench-peers")
        with servers.jackd(name, frames=frames, loopback=0) as server, xrun_monitor(name) as mon:
            for lib in LIBRARIES:
                for load in (False, True):
                    before = mon.xruns if mon else 0
                    row = run_worker(lib, frames, seconds, load, server.env)
                    row["server_xruns"] = mon.xruns - before if mon else None
                    print(f"  {lib}, {frames} frames{', busy thread' if load else ''}: "
                          f"{row.get('error', 'done')}", file=sys.stderr)  # fmt: skip
                    rows.append(row)
    return rows, ""


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    head = (
        "| library | frames | load | blocks/s (expected) | audio-thread CPU µs/block "
        "| process CPU µs/block | late | server xruns |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['lib']} | {r['frames']} | {'busy' if r['load'] else '—'} | "
                          f"error: {r['error']} | | | | |")  # fmt: skip
            continue
        lines.append(
            f"| {r['lib']} | {r['frames']} | {'busy thread' if r['load'] else '—'} | "
            f"{r['blocks_per_s']:.1f} ({r['expected_blocks_per_s']:g}) | "
            f"{r['audio_thread_us_per_block']:.1f} | {r['process_us_per_block']:.1f} | "
            f"{r['late']} | {r['server_xruns'] if r['server_xruns'] is not None else '?'} |"
        )
    return head + "\n".join(lines) + "\n"


def write(rows: list[dict[str, Any]], note: str, seconds: float, out: Path, docs: Path) -> str:
    """Write the JSON and markdown results and the docs section; return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "seconds": seconds,
    }
    (out / "jack_vs_peers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = (
        "## duplexaudio vs sounddevice vs JACK-Client on one JACK server\n\n"
        f"How measured: `python bench/jack_vs_peers.py` ({seconds:g} s per row, each in a fresh "
        "interpreter), copy-through duplex callback, 2 channels, 48 kHz, on a private jackd "
        "(dummy driver) started by the script, all three libraries in the same run. "
        "*Audio-thread CPU* is the CPU of the process's real-time threads (where JACK calls "
        "the client: duplexaudio's C callback, the peers' Python callback) per callback; "
        "*process CPU* is the whole client process minus the busy thread. *Late* is "
        "duplexaudio's blocks played as silence because the callback missed its deadline "
        "(the peers have no such thing: a late Python callback is a server xrun). *Busy "
        f"thread*: another Python thread in `while True: x += 1`. Run {meta['date']}, "
        f"{meta['nproc']} CPUs, Python {meta['python']}.\n\n"
        + (f"{note}\n" if note else table(rows))
    )
    (out / "jack_vs_peers.md").write_text(md)
    update_section(docs, "jack_vs_peers", md)
    return md


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one row of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        try:
            row = measure(spec["lib"], spec["frames"], spec["seconds"], spec["load"])
        except Exception as exc:  # one row's failure is that row's result
            row = {**spec, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(row), flush=True)
        return 0
    rows, note = run_all(args.frames, args.seconds)
    print(write(rows, note, args.seconds, args.out, args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
