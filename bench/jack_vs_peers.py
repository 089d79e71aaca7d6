"""duplexio, JACK-Client, sounddevice and a C client on one JACK server, under load.

    python bench/jack_vs_peers.py [--seconds N] [--runs N] [--frames 128 256]
        [--out bench/results] [--docs docs/benchmarks.md]

For each run and block size the script starts one private jackd (dummy
driver, no loopback ports) and a monitor client that counts the server's
xruns, then runs, one after the other, a copy-through duplex stream of each
library wired to ``system:*`` for N seconds under each load:

- *none*;
- *thread*: a second thread of the client busy the whole time (for the
  Python libraries a pure-Python loop, for the C client a C loop);
- *processes*: two CPU-busy processes (``sh -c 'while :; do :; done'``),
  started before the row and stopped by PID after it;
- *both*.

duplexio runs twice: with its real-time worker (the default) and with
``realtime=False``. The C client (``c_client.c``, compiled by the script) is
the floor: what the server and libjack cost with no Python at all. Each
Python row runs in a fresh interpreter, so its CPU time is one stream's.

Per row: blocks on time, late blocks (duplexio's deadline misses; the
peers have none, a late peer is a server xrun), cycles lost (steps of the
block clock), discontinuities of the block clock that no flag announced,
server xruns, and CPU per block of the whole client process (minus the busy
thread) and of its audio thread (the real-time thread libjack calls). The
tables show, per library and load, the median over the runs and the range.

Writes ``jack_vs_peers.json`` (every run's rows) and ``jack_vs_peers.md``
into ``--out`` and the section of ``docs/benchmarks.md`` between the
jack_vs_peers markers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # support.servers: the one jackd launcher

from _docs import publish  # noqa: E402
from _peers import (  # noqa: E402
    PeerError,
    Steps,
    XrunMonitor,
    compile_c,
    open_jack_client,
    open_sounddevice,
    xrun_monitor,
)

from support import servers  # noqa: E402

RATE = 48000
CHANNELS = 2
DUPLEXIO = "duplexio"
DUPLEXIO_NO_RT = "duplexio, realtime=False"
JACK_CLIENT = "JACK-Client"
SOUNDDEVICE = "sounddevice"
#: sounddevice's own callback and calls, the import changed (duplexio.sounddevice).
SOUNDDEVICE_FACE = "duplexio.sounddevice"
C_CLIENT = "C client"
LIBRARIES = (DUPLEXIO, DUPLEXIO_NO_RT, SOUNDDEVICE_FACE, JACK_CLIENT, SOUNDDEVICE, C_CLIENT)
PYTHON_PEERS = (JACK_CLIENT, SOUNDDEVICE)
#: Load name -> (busy thread in the client, two busy processes beside it).
LOADS = {
    "none": (False, False),
    "thread": (True, False),
    "processes": (False, True),
    "both": (True, True),
}
#: How many CPU-busy processes the *processes* load starts (TESTING.md's standard load).
BUSY_PROCESSES = 2


class Session(Protocol):
    """A stream opened but not started."""

    def start(self) -> None: ...

    def figures(self) -> dict[str, Any]: ...

    def helper_threads(self) -> set[int]:
        """Native ids of the library's real-time threads that are not the audio thread."""
        ...


class DuplexioSession:
    """A duplexio stream on ``jack:<server>``; figures from its engine and its blocks."""

    def __init__(self, stream: Any, steps: Steps) -> None:
        self.stream = stream
        self.steps = steps

    def start(self) -> None:
        self.stream.start()

    def figures(self) -> dict[str, Any]:
        s = self.stream.stats
        return {
            "cycles": s.cycles,
            "callbacks": s.callbacks + s.late_blocks,
            "delivered": s.callbacks,
            "late": s.late_blocks + s.skipped_blocks,
            "library_lost_cycles": s.lost_cycles,
            "library_xruns": s.xruns,
            "worker_realtime": s.worker_realtime,
            **self.steps.figures(),
        }

    def helper_threads(self) -> set[int]:
        # The real-time Python worker is not where libjack calls the client.
        return {
            t.native_id
            for t in threading.enumerate()
            if t.name.startswith("duplexio-worker") and t.native_id is not None
        }


def open_duplexio(
    realtime: bool,
    deadline: float | None = None,
    device_id: str | None = None,
    pipelined: bool = False,
) -> Callable[[int, int, int], AbstractContextManager[Any]]:
    """An opener of a copy-through duplex stream on the JACK server's driver ports
    (or on the duplex device `device_id` of any host); blocks of the opener's
    ``frames``, re-blocked where the device runs another period."""

    @contextmanager
    def opener(frames: int, rate: int, channels: int) -> Iterator[Session]:
        import duplexio as dio

        if device_id is None:
            device = dio.host_from_id("jack").default_duplex_device()
        else:
            device = dio.find_device(device_id, direction="duplex")
        if device is None:
            raise PeerError("no JACK server answers")
        config = dio.DuplexStreamConfig(channels, channels, rate, dio.BufferSize.fixed(frames))
        steps = Steps(frames * 1e9 / rate)

        def callback(inp: Any, out: Any, info: Any) -> None:
            out[:] = inp
            steps.see(info.input.timestamp.callback, info.input.xrun)

        stream = device.build_duplex_stream(
            config, callback, realtime=realtime, deadline=deadline, pipelined=pipelined
        )
        try:
            yield DuplexioSession(stream, steps)
        finally:
            stream.close()

    return opener


@contextmanager
def open_sounddevice_face(frames: int, rate: int, channels: int) -> Iterator[Session]:
    """sounddevice's row, the same callback, with ``import duplexio.sounddevice as sd``:
    what a sounddevice program gets by changing its import (latency 'high', its
    default, as in sounddevice's row)."""
    import duplexio as dio
    import duplexio.sounddevice as sd

    device = dio.host_from_id("jack").default_duplex_device()
    if device is None:
        raise PeerError("no JACK server answers")
    steps = Steps(frames / rate)

    def callback(indata: Any, outdata: Any, blocksize: int, time: Any, status: Any) -> None:
        outdata[:] = indata
        steps.see(time.currentTime, bool(status))

    stream = sd.Stream(
        samplerate=rate,
        blocksize=0,  # the server's period, as sounddevice's row
        device=str(device.id),
        channels=channels,
        dtype="float32",
        callback=callback,
    )
    try:
        yield DuplexioSession(stream._stream, steps)
    finally:
        stream.close()


OPENERS: dict[str, Callable[[int, int, int], AbstractContextManager[Any]]] = {
    DUPLEXIO: open_duplexio(True),
    DUPLEXIO_NO_RT: open_duplexio(False),
    SOUNDDEVICE_FACE: open_sounddevice_face,
    JACK_CLIENT: open_jack_client,
    SOUNDDEVICE: open_sounddevice,
}


def realtime_cpu_seconds(leave_out: set[int]) -> float:
    """CPU time (s) of this process's SCHED_FIFO/RR threads, but those in ``leave_out``."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) in leave_out:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        if int(fields[38]) in (1, 2):  # policy: SCHED_FIFO or SCHED_RR
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def row_of(
    lib: str,
    frames: int,
    wall: float,
    figures: dict[str, Any],
    process_cpu: float,
    audio_cpu: float,
) -> dict[str, Any]:
    """A row's figures, the same for every library."""
    callbacks = figures["callbacks"] or 1
    return {
        "lib": lib,
        "frames": frames,
        "wall_s": wall,
        "expected_blocks": wall * RATE / frames,
        **figures,
        "process_us_per_block": process_cpu / callbacks * 1e6,
        "audio_thread_us_per_block": audio_cpu / callbacks * 1e6,
    }


def measure(lib: str, frames: int, seconds: float, busy_thread: bool) -> dict[str, Any]:
    """One Python library's row, in this interpreter: open, start, run, report."""
    stop = False

    def busy() -> None:
        x = 0
        while not stop:
            x += 1

    with OPENERS[lib](frames, RATE, CHANNELS) as session:
        thread = threading.Thread(target=busy, daemon=True)
        if busy_thread:
            thread.start()
        busy_clock = time.pthread_getcpuclockid(thread.ident) if thread.ident is not None else None
        session.start()
        time.sleep(0.5)  # past the start: connections made, worker up
        leave_out = session.helper_threads()
        cpu0, rt0, wall0 = time.process_time(), realtime_cpu_seconds(leave_out), time.monotonic()
        busy0 = time.clock_gettime(busy_clock) if busy_clock is not None else 0.0
        start = session.figures()
        time.sleep(seconds)
        end = session.figures()
        wall = time.monotonic() - wall0
        rt_cpu = realtime_cpu_seconds(leave_out) - rt0
        busy_cpu = time.clock_gettime(busy_clock) - busy0 if busy_clock is not None else 0.0
        cpu = time.process_time() - cpu0 - busy_cpu
        window = [wall0, wall0 + wall]
        stop = True
    figures = {
        k: v - start[k] if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in end.items()
    }
    figures.setdefault("cycles", figures["callbacks"])
    figures.setdefault("late", 0)
    return {**row_of(lib, frames, wall, figures, cpu, rt_cpu), "window": window}


def run_python(
    lib: str,
    frames: int,
    seconds: float,
    busy_thread: bool,
    env: dict[str, str],
    script: Path = Path(__file__),
) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter (``script --worker``), so its CPU time is
    one stream's alone."""
    spec = json.dumps({"lib": lib, "frames": frames, "seconds": seconds, "thread": busy_thread})
    command = [sys.executable, str(script.resolve()), "--worker", spec]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 120, env=env, check=False
        )
        row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as exc:
        row = {"lib": lib, "frames": frames, "error": f"{type(exc).__name__}"}
    return row


def run_c(
    binary: Path | str, frames: int, seconds: float, busy_thread: bool, env: dict[str, str]
) -> dict[str, Any]:
    """The C client's row (its own process, measuring itself)."""
    if isinstance(binary, str):
        return {"lib": C_CLIENT, "frames": frames, "error": binary}
    command = [str(binary), str(seconds), str(CHANNELS), *(["busy"] if busy_thread else [])]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, env=env, check=False
        )
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as exc:
        return {"lib": C_CLIENT, "frames": frames, "error": f"{type(exc).__name__}"}
    figures = {
        "cycles": out["callbacks"],
        "callbacks": out["callbacks"],
        "delivered": out["callbacks"],
        "late": 0,
        "discontinuities": out["discontinuities"],
        "unflagged": out["discontinuities"] - out["flagged"],
        "lost_cycles": out["lost"],
    }
    wall = out["end_s"] - out["start_s"]
    row = row_of(C_CLIENT, frames, wall, figures, out["process_cpu_s"], out["audio_cpu_s"])
    return {**row, "window": [out["start_s"], out["end_s"]]}


def run_all(
    frame_sizes: Sequence[int], seconds: float, runs: int
) -> tuple[list[dict[str, Any]], str]:
    """Every run's rows, and a note (why nothing ran, or '')."""
    reason = servers.jack_missing()
    if reason:
        return [], f"not run: {reason}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="dio-bench-") as tmp:
        c_client = compile_c("c_client", Path(tmp))
        for run in range(1, runs + 1):
            for frames in frame_sizes:
                name = servers.unique_name("dio-bench-peers")
                with (
                    servers.jackd(name, frames=frames, loopback=0) as server,
                    xrun_monitor(name) as mon,
                ):
                    for lib in LIBRARIES:
                        for load, (busy_thread, processes) in LOADS.items():
                            before = mon.xruns if mon else 0
                            with servers.busy_processes(BUSY_PROCESSES if processes else 0):
                                if lib == C_CLIENT:
                                    row = run_c(c_client, frames, seconds, busy_thread, server.env)
                                else:
                                    row = run_python(lib, frames, seconds, busy_thread, server.env)
                            row.update(load=load, run=run, **server_xruns(mon, before, row))
                            print(
                                f"  run {run}, {lib}, {frames} frames, load {load}: "
                                f"{row.get('error', 'done')}",
                                file=sys.stderr,
                                flush=True,
                            )
                            rows.append(row)
    return rows, ""


def server_xruns(mon: XrunMonitor | None, before: int, row: dict[str, Any]) -> dict[str, Any]:
    """The server's xruns during the row's measured window, and over the whole row
    (start and close included: activating a client can cost the server a cycle)."""
    if mon is None:
        return {"server_xruns": None, "server_xruns_row": None}
    window = row.get("window")
    return {"server_xruns": mon.between(*window) if window else None,
            "server_xruns_row": mon.xruns - before}  # fmt: skip


def on_time_fraction(row: dict[str, Any]) -> float:
    """Blocks whose output was the callback's, in a cycle the server completed, of all
    device cycles in the window. Conservative: a server xrun that is also a lost cycle
    counts twice (not every xrun steps the block clock, so neither count is enough)."""
    cycles = row["delivered"] + row["late"] + row["lost_cycles"]
    good = row["delivered"] - (row["server_xruns"] or 0)
    return max(0, good) / cycles if cycles else 0.0


#: Columns of the tables: heading, the row's value, its format.
COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], float], str], ...] = (
    ("on time %", lambda r: 100 * on_time_fraction(r), "{:.2f}"),
    ("late", lambda r: r["late"], "{:g}"),
    ("lost cycles", lambda r: r["lost_cycles"], "{:g}"),
    ("unflagged", lambda r: r["unflagged"], "{:g}"),
    ("server xruns", lambda r: r["server_xruns"] or 0, "{:g}"),
    ("process CPU µs/block", lambda r: r["process_us_per_block"], "{:.1f}"),
    ("audio-thread CPU µs/block", lambda r: r["audio_thread_us_per_block"], "{:.1f}"),
)


def summary(rows: list[dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, list[float]]]:
    """(library, frames, load) -> column -> every run's value."""
    out: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    for r in rows:
        if "error" in r:
            continue
        cell = out.setdefault((r["lib"], r["frames"], r["load"]), {c[0]: [] for c in COLUMNS})
        for heading, value, _ in COLUMNS:
            cell[heading].append(value(r))
    return out


def spread(values: list[float], fmt: str) -> str:
    """Median, and the range when the runs differ."""
    mid = fmt.format(statistics.median(values))
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return mid if lo == hi else f"{mid} ({lo}-{hi})"


def cells_row(
    cells: dict[tuple[str, int, str], dict[str, list[float]]],
    key: tuple[str, int, str],
    label: str,
    shown: Sequence[str],
) -> str:
    """One markdown row: `label`, then the median (min-max) of each `shown` column
    of ``cells[key]``, or ``error`` when that cell has no run."""
    cell = cells.get(key)
    if cell is None:
        return f"| {label} | error |" + " |" * (len(shown) - 1) + "\n"
    formats = {heading: fmt for heading, _, fmt in COLUMNS}
    return f"| {label} | " + " | ".join(spread(cell[h], formats[h]) for h in shown) + " |\n"


def table(rows: list[dict[str, Any]], frames: int) -> str:
    """One block size's rows as a markdown table: median (min-max) over the runs."""
    cells = summary(rows)
    head = "| library | load | " + " | ".join(c[0] for c in COLUMNS) + " |\n"
    head += "|---|---|" + "---|" * len(COLUMNS) + "\n"
    lines = []
    for lib in LIBRARIES:
        for load in LOADS:
            cell = cells.get((lib, frames, load))
            errors = [
                r["error"]
                for r in rows
                if r["lib"] == lib
                and r["frames"] == frames
                and r.get("load") == load
                and "error" in r
            ]
            if cell is None:
                lines.append(
                    f"| {lib} | {load} | error: {errors[0] if errors else '?'} |"
                    + " |" * (len(COLUMNS) - 1)
                )
                continue
            values = [spread(cell[h], fmt) for h, _, fmt in COLUMNS]
            note = f" ({len(errors)} run(s) failed)" if errors else ""
            lines.append(f"| {lib}{note} | {load} | " + " | ".join(values) + " |")
    return head + "\n".join(lines) + "\n"


def targets(rows: list[dict[str, Any]], frame_sizes: Sequence[int]) -> str:
    """The load benchmark's targets against this run's figures, one line each: met,
    or by how much not."""
    cells = summary(rows)

    def median(lib: str, frames: int, load: str, column: str) -> float | None:
        cell = cells.get((lib, frames, load))
        return statistics.median(cell[column]) if cell else None

    lines = []
    for load in ("thread", "processes"):
        cell = cells.get((DUPLEXIO, 128, load))
        if cell:
            worst = min(cell["on time %"])
            lines.append(
                f"- {load} load, 128 frames: ≥ 99.9 % on time in every run — worst run "
                f"{worst:.2f} %: {'met' if worst >= 99.9 else 'missed'}."
            )
            xruns = median(DUPLEXIO, 128, load, "server xruns") or 0.0
            floor = median(C_CLIENT, 128, load, "server xruns")
            if floor is not None:
                lines.append(
                    f"- {load} load, 128 frames: server xruns at the C client's floor — "
                    f"{xruns:g} against {floor:g}: {'met' if xruns <= floor else 'missed'}."
                )
    for frames in frame_sizes:
        ours = median(DUPLEXIO, frames, "none", "process CPU µs/block")
        c = median(C_CLIENT, frames, "none", "process CPU µs/block")
        peers = [
            v
            for p in PYTHON_PEERS
            if (v := median(p, frames, "none", "process CPU µs/block")) is not None
        ]
        if ours is None:
            continue
        if peers:
            cheapest = min(peers)
            lines.append(
                f"- {frames} frames, no load: process CPU ≤ 0.5x the cheapest Python peer "
                f"— {ours:.1f} µs against {cheapest:.1f} ({ours / cheapest:.2f}x): "
                f"{'met' if ours <= 0.5 * cheapest else 'missed'}."
            )
        if c:
            audio = median(DUPLEXIO, frames, "none", "audio-thread CPU µs/block") or 0.0
            c_audio = median(C_CLIENT, frames, "none", "audio-thread CPU µs/block") or 1.0
            lines.append(
                f"- {frames} frames, no load: process CPU ≤ 2.5x the C client — "
                f"{ours / c:.2f}x: {'met' if ours <= 2.5 * c else 'missed'}; audio-thread "
                f"CPU ≤ 1.5x — {audio / c_audio:.2f}x: "
                f"{'met' if audio <= 1.5 * c_audio else 'missed'}."
            )
    unflagged = [
        r
        for r in rows
        if "error" not in r and r["lib"] in (DUPLEXIO, DUPLEXIO_NO_RT) and r["unflagged"]
    ]
    lines.append(
        f"- duplexio, every row of every run: 0 unflagged discontinuities — "
        f"{len(unflagged)} row(s) with any: {'met' if not unflagged else 'missed'}."
    )
    return "\n".join(lines) + "\n"


def write(rows: list[dict[str, Any]], note: str, args: argparse.Namespace) -> str:
    """Write the JSON and markdown results and the docs section; return the markdown."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "seconds": args.seconds,
        "runs": args.runs,
    }
    backends = sorted({r["backend"] for r in rows if "backend" in r})
    md = (
        "## duplexio vs JACK-Client vs sounddevice vs C, on one JACK server, under load\n\n"
        f"How measured: `python bench/jack_vs_peers.py` ({args.seconds:g} s per row, "
        f"{args.runs} runs; each cell is the median over the runs, the range in brackets when "
        "they differ). A copy-through duplex callback, 2 channels, 48 kHz, on a private jackd "
        "(dummy driver) started by the script, every library in the same run. Loads: *thread* "
        "is a second thread of the client in a busy loop (Python for the Python libraries, C "
        "for the C client); *processes* is two CPU-busy processes (`sh -c 'while :; do :; "
        "done'`); *both* is both.\n\n"
        "- *On time*: blocks whose output was the callback's, in a cycle the server "
        "completed (delivered - server xruns), of all device cycles in the measured window "
        "(delivered + late + lost). Conservative: an xrun that also lost a cycle counts "
        "twice.\n"
        "- *Late*: duplexio's blocks played as silence because the callback missed its "
        "deadline, flagged on the next block. The peers have none: a late peer is a server "
        "xrun.\n"
        "- *Lost cycles*: whole periods the block clock skipped (each library's own timestamps: "
        "duplexio's `info.timestamp.callback`, JACK-Client's and the C client's "
        "`last_frame_time`, sounddevice's `outputBufferDacTime`).\n"
        "- *Unflagged*: steps of that clock off one period that reached the callback without "
        "its library's flag (duplexio `info.xrun`; sounddevice `status`; JACK-Client and C: "
        "an xrun callback before the block).\n"
        "- *Server xruns*: counted by a monitor client, in the measured window (from 0.5 s "
        "after the start to the end, the same window as every other column).\n"
        "- *Process CPU*: the client process, minus the busy thread, per block. *Audio-thread "
        "CPU*: the real-time thread libjack calls (duplexio's C callback; the peers' Python "
        "callback), per block.\n\n"
        f"Run {meta['date']}, {meta['nproc']} CPUs, Python {meta['python']}"
        + (f"; {', '.join(backends)}" if backends else "")
        + ".\n\n"
    )
    if note:
        md += f"{note}\n"
    else:
        for frames in args.frames:
            md += (
                f"### {frames} frames ({frames / RATE * 1e3:.2f} ms)\n\n"
                + table(rows, frames)
                + "\n"
            )
        md += "### Targets\n\n" + targets(rows, args.frames)
    publish(out, args.docs, "jack_vs_peers", {"meta": meta, "rows": rows}, md)
    return md


def worker(spec: dict[str, Any]) -> int:
    """One row, printed as JSON: what ``run_python`` reads back."""
    try:
        row = measure(spec["lib"], spec["frames"], spec["seconds"], spec["thread"])
    except Exception as exc:  # one row's failure is that row's result
        row = {
            "lib": spec["lib"],
            "frames": spec["frames"],
            "error": f"{type(exc).__name__}: {exc}",
        }
    print(json.dumps(row), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one row of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    rows, note = run_all(args.frames, args.seconds, args.runs)
    print(write(rows, note, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
