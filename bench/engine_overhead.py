"""Per-block cost of duplexio's engine and Python dispatch, beside its peers.

    python bench/engine_overhead.py [--seconds N] [--out bench/results] [--frames 64 128 256]
        [--no-peers] [--docs docs/benchmarks.md]

For each block size, a duplex stream on the virtual host's loopback runs a
trivial callback (``out[:] = inp``) for N seconds, same-cycle and pipelined,
without and then with a second Python thread busy in a pure-Python loop. In
the same run the peers, JACK-Client and python-sounddevice (``_peers.py``),
run the same copy-through callback on a private jackd (dummy driver) that the
script starts and stops itself (``support/servers.py``); they run with Python's
default switch interval and, under load, also with duplexio's 0.1 ms.
Every measurement runs in a fresh
interpreter (this script with ``--worker``), so its process CPU time is that
of one stream and nothing else.

Writes ``engine_overhead.json`` (raw figures and machine info) and
``engine_overhead.md`` into ``--out``, prints the table, and regenerates the
section of ``docs/benchmarks.md`` between the engine_overhead markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from _docs import update_section
from _peers import open_jack_client, open_sounddevice, xrun_monitor

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from support import servers  # noqa: E402 - the project's private servers, shared with the tests

DOCS = REPO / "docs" / "benchmarks.md"

RATE = 48000
CHANNELS = 2
DEFAULT_FRAMES = (64, 128, 256)
#: duplexio's switch interval while streams run, also tried on the peers.
FAST_SWITCH = 1e-4
#: Entries of the engine's hand-over log (the engine keeps the last 65536).
HANDOFF_LOG_MAX = 65536

#: Base of the names of the jackd servers this run starts (servers.unique_name
#: appends our pid and a counter).
SERVER_BASE = "dio-bench"
#: Programs whose presence during a run is worth recording: they share the CPUs.
NEIGHBOURS = ("jackd", "pulseaudio", "pipewire", "wireplumber", "pytest")

DUPLEXIO = "duplexio"
DUPLEXIO_PIPELINED = "duplexio, pipelined"
JACK_CLIENT = "JACK-Client"
SOUNDDEVICE = "sounddevice"
JACKD_ALONE = "jackd, no client"
DUPLEXIO_MODES = (DUPLEXIO, DUPLEXIO_PIPELINED)
PEERS = (JACK_CLIENT, SOUNDDEVICE)


class Session(Protocol):
    """A stream opened but not started, as the measurement sees it."""

    def start(self) -> None:
        """Start the stream (first thing in the measured window)."""
        ...

    def figures(self) -> dict[str, Any]:
        """Counters at the end of the window: at least ``callbacks`` (Python
        callbacks run) and ``delivered`` (blocks that reached the device)."""
        ...


Opener = Callable[[int, int, int], AbstractContextManager[Session]]


# -- the streams measured ------------------------------------------------------


def thread_cpu_seconds(thread: threading.Thread) -> float:
    """CPU time a running Python thread has used."""
    assert thread.ident is not None, "the thread has not started"
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


class DuplexioSession:
    """A duplexio stream and the engine's own figures."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.worker = stream._core.worker  # the Python thread that runs the callback
        self.worker_cpu0 = 0.0

    def start(self) -> None:
        self.worker_cpu0 = thread_cpu_seconds(self.worker)
        self.stream.start()

    def figures(self) -> dict[str, Any]:
        worker_cpu = thread_cpu_seconds(self.worker) - self.worker_cpu0
        stats = self.stream.stats
        self.stream.pause()  # no more hand-overs: the log below matches the stats
        log_us = handoff_log_ns(self.stream) / 1e3
        return {
            "callbacks": stats.callbacks + stats.late_blocks,
            "delivered": stats.callbacks,
            "late": stats.late_blocks,
            "skipped": stats.skipped_blocks,
            "xruns": stats.xruns,
            "callback_mean_us": stats.callback_mean_ns / 1e3,
            "callback_max_us": stats.callback_max_ns / 1e3,
            "handoff_mean_us": stats.handoff_mean_ns / 1e3 if stats.handoff_mean_ns else None,
            "handoff_median_us": float(np.median(log_us)) if log_us.size else None,
            "handoff_p99_us": float(np.percentile(log_us, 99)) if log_us.size else None,
            "handoff_max_us": float(log_us.max()) if log_us.size else None,
            "handoffs_logged": int(log_us.size),
            "worker_cpu_s": worker_cpu,
            "realtime": stats.realtime,
            "backend": "virtual:loopback, C clock thread in this process",
            "pipelined": self.stream.pipelined,
        }


def handoff_log_ns(stream: Any) -> np.ndarray[Any, np.dtype[np.uint32]]:
    """The engine's per-block hand-over rounds (ns), oldest first."""
    from duplexio._engine import ffi, lib

    buf = ffi.new("uint32_t[]", HANDOFF_LOG_MAX)
    n = lib.da_engine_handoff_log(stream._core.engine, buf, HANDOFF_LOG_MAX)
    log: np.ndarray[Any, np.dtype[np.uint32]] = np.frombuffer(ffi.buffer(buf, 4 * n), np.uint32)
    copied: np.ndarray[Any, np.dtype[np.uint32]] = log.copy()
    return copied


@contextmanager
def open_duplexio(
    frames: int, rate: int, channels: int, pipelined: bool = False
) -> Iterator[Session]:
    """A copy-through duplex stream on ``virtual:loopback`` (same-cycle by default)."""
    import duplexio as dio

    device = dio.host_from_id("virtual").device_by_id("virtual:loopback")
    assert device is not None
    config = dio.DuplexStreamConfig(channels, channels, rate, dio.BufferSize.fixed(frames))

    def callback(inp: Any, out: Any, info: Any) -> None:
        out[:] = inp

    stream = device.build_duplex_stream(config, callback, pipelined=pipelined)
    try:
        yield DuplexioSession(stream)
    finally:
        stream.close()


class IdleSession:
    """No stream at all: what the server does by itself."""

    def start(self) -> None:
        pass

    def figures(self) -> dict[str, Any]:
        return {"callbacks": 0, "delivered": 0, "backend": "no client but the xrun monitor"}


@contextmanager
def open_nothing(frames: int, rate: int, channels: int) -> Iterator[Session]:
    """An :class:`IdleSession`."""
    yield IdleSession()


OPENERS: dict[str, Opener] = {
    DUPLEXIO: open_duplexio,
    DUPLEXIO_PIPELINED: partial(open_duplexio, pipelined=True),
    JACK_CLIENT: open_jack_client,
    SOUNDDEVICE: open_sounddevice,
    JACKD_ALONE: open_nothing,
}


# -- one measurement (in a worker interpreter) ----------------------------------


@dataclass(frozen=True)
class Spec:
    """One row of the table.

    ``switch_interval`` None leaves the interval to the library (duplexio
    lowers it to 0.1 ms while streams run) or the interpreter (5 ms).
    """

    lib: str
    frames: int
    seconds: float
    load: bool = False
    switch_interval: float | None = None


class BusyThread:
    """Another thread of the program, busy in a pure-Python loop (when active)."""

    def __init__(self, active: bool) -> None:
        self.loops = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="busy", daemon=True)
        self._active = active

    def _run(self) -> None:
        while not self._stop:
            self.loops += 1

    def __enter__(self) -> BusyThread:
        if self._active:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            self._stop = True
            self._thread.join()

    def snapshot(self) -> tuple[float, int]:
        """(CPU seconds the thread has used, loops it has made)."""
        if not self._active:
            return 0.0, 0
        return thread_cpu_seconds(self._thread), self.loops


def measure(spec: Spec) -> dict[str, Any]:
    """Open, start, run ``spec.seconds``, and report; CPU is this process's."""
    if spec.switch_interval is not None:
        sys.setswitchinterval(spec.switch_interval)
    with OPENERS[spec.lib](spec.frames, RATE, CHANNELS) as session, BusyThread(spec.load) as busy:
        busy_cpu0, loops0 = busy.snapshot()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        session.start()
        time.sleep(spec.seconds)
        switch = sys.getswitchinterval()
        wall1, cpu1 = time.perf_counter(), time.process_time()
        busy_cpu1, loops1 = busy.snapshot()
        figures = session.figures()
    wall = wall1 - wall0
    callbacks, delivered = figures.pop("callbacks"), figures.pop("delivered")
    client_cpu = (cpu1 - cpu0) - (busy_cpu1 - busy_cpu0)
    per_block = (
        {"worker_cpu_us_per_block": figures["worker_cpu_s"] / callbacks * 1e6}
        if callbacks and "worker_cpu_s" in figures
        else {}
    )
    return {
        **asdict(spec),
        "wall_s": wall,
        "switch_interval_s": switch,
        "expected_blocks_per_s": RATE / spec.frames,
        "callbacks": callbacks,
        "delivered": delivered,
        "blocks_per_s": delivered / wall,
        "client_cpu_s": client_cpu,
        "cpu_us_per_block": client_cpu / callbacks * 1e6 if callbacks else None,
        "busy_cpu_s": busy_cpu1 - busy_cpu0,
        "busy_loops_per_s": (loops1 - loops0) / wall if spec.load else None,
        **figures,
        **per_block,
    }


def worker_main(spec_json: str) -> int:
    """Measure one spec and print its row as the last line of stdout."""
    spec = Spec(**json.loads(spec_json))
    try:
        row = measure(spec)
    except Exception as exc:  # reported as the row's error, not a crash of the whole run
        row = {**asdict(spec), "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(row), flush=True)
    return 0


def run_worker(spec: Spec, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter (with ``env``, default ours)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(spec))]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=spec.seconds + 120, env=env
        )
    except subprocess.TimeoutExpired:
        return {**asdict(spec), "error": "worker did not finish in time (killed)"}
    try:
        row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = " / ".join(proc.stderr.strip().splitlines()[-2:])
        row = {**asdict(spec), "error": f"worker exited with {proc.returncode}: {tail}"}
    return row


# -- the whole run ---------------------------------------------------------------


def peer_specs(frames: int, seconds: float) -> list[Spec]:
    """The server alone, then each peer without load, with load, with load at 0.1 ms."""
    specs = [Spec(JACKD_ALONE, frames, seconds)]
    for lib in PEERS:
        specs += [
            Spec(lib, frames, seconds),
            Spec(lib, frames, seconds, load=True),
            Spec(lib, frames, seconds, load=True, switch_interval=FAST_SWITCH),
        ]
    return specs


def run_peers(frames: int, seconds: float, report: Callable[[dict[str, Any]], None]) -> None:
    """Run :func:`peer_specs` on a private jackd, adding server xruns and CPU to each row."""
    name = servers.unique_name(SERVER_BASE)
    with (
        servers.jackd(name, frames=frames, rate=RATE, channels=CHANNELS, loopback=0) as server,
        xrun_monitor(name) as monitor,
    ):
        for spec in peer_specs(frames, seconds):
            xruns0 = monitor.xruns if monitor else 0
            server_cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
            row = run_worker(spec, server.env)
            cycles = (time.perf_counter() - wall0) * RATE / frames
            row["xruns"] = monitor.xruns - xruns0 if monitor else None
            row["server_cpu_us_per_cycle"] = (server.cpu_seconds() - server_cpu0) / cycles * 1e6
            report(row)


def run_all(
    frame_sizes: Sequence[int], seconds: float, peers: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row, in order, and the notes (skipped peers)."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    seen = set(neighbours())

    def report(row: dict[str, Any]) -> None:
        rows.append(row)
        seen.update(neighbours())
        what = f"{row['lib']}, {row['frames']} frames" + (", busy thread" if row["load"] else "")
        if row["switch_interval"]:
            what += f", switch {row['switch_interval'] * 1e3:g} ms"
        print(f"  {what}: {row.get('error') or 'done'}", file=sys.stderr)

    reason = None if peers else "--no-peers given"
    reason = reason or servers.jack_missing()
    for frames in frame_sizes:
        for lib in DUPLEXIO_MODES:
            for load in (False, True):
                report(run_worker(Spec(lib, frames, seconds, load=load)))
        if reason is None:
            try:
                run_peers(frames, seconds, report)
            except servers.ServerUnavailable as exc:
                said = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip())
                notes.append(f"peers skipped at {frames} frames: {said[:400]}")
    if reason is not None:
        notes.append(f"peers skipped: {reason}")
    for row in rows:
        if "error" in row:
            note = f"{row['lib']} skipped: {row['error']}"
            if note not in notes:
                notes.append(note)
    if seen:
        notes.append(
            "other programs ran on the machine during the run (they share its CPUs): "
            + ", ".join(sorted(seen))
        )
    peer_xruns = [row.get("xruns") for row in rows if row["lib"] in PEERS and "error" not in row]
    if peer_xruns and all(xruns is None for xruns in peer_xruns):
        notes.append("server xruns not counted (the monitor needs JACK-Client)")
    return rows, notes


def neighbours() -> list[str]:
    """Audio servers and test runs on the machine that this run did not start."""
    ours = f"{SERVER_BASE}-{os.getpid()}-"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [arg.decode(errors="replace") for arg in argv]
        words = [Path(arg).name for arg in args[:3]]
        hit = next((name for name in NEIGHBOURS if name in words), None)
        if hit and not any(arg.startswith(ours) for arg in args):
            found.append(f"{hit} ({entry.name})")
    return sorted(found)


def machine_info() -> dict[str, Any]:
    """What the figures depend on."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    def run(*command: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None

    def first_line(*command: str) -> str | None:
        out = run(*command)
        lines = (out.stdout or out.stderr).strip().splitlines() if out else []
        return lines[0] if out and out.returncode == 0 and lines else None

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    dirty = run("git", "diff", "--quiet", "HEAD")
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": models[0] if models else platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
        "commit": first_line("git", "rev-parse", "--short", "HEAD"),
        "uncommitted_changes": dirty is not None and dirty.returncode == 1,
        "versions": {
            dist: version(dist)
            for dist in ("duplexio", "numpy", "cffi", "JACK-Client", "sounddevice")
        },
        "jackd": first_line("jackd", "--version"),
    }


# -- output ------------------------------------------------------------------------

COLUMNS = (
    "library", "frames", "load", "switch", "blocks/s (expected)", "CPU µs/block",
    "server CPU µs/cycle", "handoff µs med/p99/max", "callback µs mean/max",
    "late/skipped", "xruns", "busy loops M/s",
)  # fmt: skip


HANDOFF_KEYS = ("handoff_median_us", "handoff_p99_us", "handoff_max_us")


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table_cells(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One list of cells per measured row (rows with an error are left out)."""
    cells = []
    for r in rows:
        if "error" in r:
            continue
        idle = r["lib"] == JACKD_ALONE
        engine = (
            [
                "/".join(_num(r[key], 0) for key in HANDOFF_KEYS)
                if r["handoff_median_us"] is not None
                else "—",
                f"{_num(r['callback_mean_us'])}/{_num(r['callback_max_us'], 0)}",
                f"{r['late']}/{r['skipped']}",
            ]
            if r["lib"] in DUPLEXIO_MODES
            else ["—"] * 3
        )
        loops = r["busy_loops_per_s"]
        cells.append(
            [
                r["lib"],
                str(r["frames"]),
                "busy thread" if r["load"] else "—",
                "—" if idle else f"{r['switch_interval_s'] * 1e3:g} ms",
                "—" if idle else f"{r['blocks_per_s']:.1f} ({r['expected_blocks_per_s']:g})",
                _num(r["cpu_us_per_block"]),
                _num(r.get("server_cpu_us_per_cycle")),
                *engine,
                "—" if r.get("xruns") is None else str(r["xruns"]),
                _num(loops / 1e6 if loops else None),
            ]
        )
    return cells


def render_text(rows: Sequence[dict[str, Any]]) -> str:
    """The table, columns aligned, for a terminal."""
    lines = [list(COLUMNS), *table_cells(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


HOW_MEASURED = """
How measured: `python bench/engine_overhead.py` runs a trivial duplex callback
(`out[:] = inp`, {channels} channels, {rate} Hz) for {seconds:g} s per row, each row in a
fresh interpreter, without and with *load* (a second Python thread in
`while not stop: x += 1`). **duplexio runs on its virtual host** (`virtual:loopback`:
a C clock thread in the same process drives the engine, which hands each block to the
Python worker and waits for it until 80 % of the period; *pipelined* rows give the worker
a whole period and play its output one period later). **The peers (JACK-Client, and
python-sounddevice through PortAudio's JACK host API) run against a private `jackd` with
the dummy driver**, started by the script, which calls their Python callback on its
process thread; jackd runs in its default asynchronous mode, where a client's output is
played one cycle later and a client is only counted late (an xrun) when it has not
finished by the next cycle, so its slack is closer to duplexio's pipelined rows. The
drivers differ: the comparable figures are the client process's CPU per block and the
blocks delivered per second. Each row is a single run: on a small VM the CPU figures and
the glitch counts under load vary noticeably from run to run, so compare rows of one run.

- *switch*: `sys.getswitchinterval()` during the run. duplexio lowers it to 0.1 ms
  while streams run; the peers keep Python's 5 ms unless the row says 0.1 ms.
- *blocks/s*: blocks delivered per second of the run. duplexio: blocks whose callback
  made the deadline. Peers: every callback run (one that ran late shows as xruns).
- *CPU µs/block*: the process's CPU time (`time.process_time`) over the run, minus the
  busy thread's own, per Python callback run. For duplexio it includes the virtual
  clock thread (the device's work; the worker thread alone is in the JSON as
  `worker_cpu_us_per_block`); the peers' device work is in jackd, shown apart as
  *server CPU µs/cycle* (from /proc, over the whole peer run).
- *handoff*: the engine's round from posting a block to getting its result, from its
  per-block log; only blocks that made the deadline are logged, so the maximum is at
  most the deadline. Same-cycle mode only.
- *callback*: the engine's timing of the worker, from its wake-up to its next request:
  the callback plus the dispatch and the wait for the GIL on the way in.
- *late/skipped*: duplexio blocks played as silence (callback missed the deadline /
  worker still busy with an earlier block).
- *xruns*: duplexio's are the virtual clock waking a period or more late; the peers'
  are jackd's, counted by a monitor client over the whole run (client start and stop
  included). The *jackd, no client* row is what the server does on its own.
- *busy loops M/s*: how far the busy thread got (the cost of the load's side).
"""


def render_markdown(result: dict[str, Any], heading: str = "#") -> str:
    """The table with how it was measured, the notes and the machine."""
    m = result["machine"]
    seconds = result["parameters"]["seconds"]
    v = m["versions"]
    lines = [
        f"{heading} Engine overhead",
        "",
        HOW_MEASURED.format(channels=CHANNELS, rate=RATE, seconds=seconds).strip(),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(cells) + " |" for cells in table_cells(result["rows"])),
        "",
    ]
    lines += [f"- {note}" for note in result["notes"]]
    lines += [
        *([""] if result["notes"] else []),
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}; "
        f"duplexio {v['duplexio']} (commit {m['commit']}"
        f"{', uncommitted changes' if m['uncommitted_changes'] else ''}), numpy {v['numpy']}, "
        f"JACK-Client {v['JACK-Client']}, sounddevice {v['sounddevice']}, {m['jackd']}. "
        f"Run {m['date']}; load average (1, 5, 15 min) before "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_before'])}, after "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_after'])}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per row (default 10)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--frames", type=int, nargs="+", default=list(DEFAULT_FRAMES))
    parser.add_argument("--no-peers", action="store_true", help="skip JACK-Client/sounddevice")
    parser.add_argument(
        "--docs", type=Path, default=DOCS, help="markdown file whose section is regenerated"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    machine = machine_info()  # the code and the machine as the run starts
    rows, notes = run_all(args.frames, args.seconds, peers=not args.no_peers)
    machine["load_average_after"] = os.getloadavg()
    result = {
        "machine": machine,
        "parameters": {
            "seconds": args.seconds,
            "frames": args.frames,
            "sample_rate": RATE,
            "channels": CHANNELS,
        },
        "rows": rows,
        "notes": notes,
    }
    print(render_text(rows))
    for note in notes:
        print(f"note: {note}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "engine_overhead.md").write_text(render_markdown(result))
    update_section(args.docs, "engine_overhead", render_markdown(result, heading="##"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
