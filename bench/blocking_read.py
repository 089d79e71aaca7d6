"""Blocking read under a GIL-holding C extension: duplexio, PyAudio, sounddevice.

The loop every speech and live-model script starts with: ``data =
stream.read(256)`` in a ``while`` loop, 2 channels at 48 kHz on one private
jackd (256 frames, dummy driver), while another thread calls a C busy loop
that holds the GIL 50 ms out of every 100 ms (``support/gil_hog.py``).

What is read is a ramp (frame k of the server's timeline carries
``(k mod 2**20) / 2**20``, exact in float32) that a C client (``c_ramp.c``)
plays on its ports ``ramp:out_N``; each reader connects to them (JACK runs a
client after those it reads from, so the loop has no ordering race, unlike
one through jackd's loopback ports). Frames lost are counted on the audio
itself, from the ramp's steps, and set beside what the library reported:
duplexio's ``status.lost`` (a read that met a gap), sounddevice's
``overflowed`` flag; PyAudio's ``exception_on_overflow=False`` hides it. The
floor is the same check in C on JACK's own thread (``c_ramp read``). Server
xruns in each window come from a JACK-Client monitor, so a loss of the
source itself is not blamed on a reader.

Each library reads ``--seconds`` (60) per run, ``--runs`` (3) runs; the
table gives the median and range. Results: ``bench/results/blocking_read``
and the ``blocking_read`` section of ``docs/benchmarks.md``.

Run: ``python bench/blocking_read.py`` (needs jackd; PyAudio needs Debian's
``portaudio19-dev`` to build: ``apt-get install portaudio19-dev && pip
install pyaudio``; sounddevice needs ``libportaudio2``; a missing peer is
skipped and said so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _docs import publish  # noqa: E402
from _peers import compile_c, xrun_monitor  # noqa: E402

import duplexio as dio  # noqa: E402
from support import servers  # noqa: E402
from support.gil_hog import GilHog  # noqa: E402

RATE = 48000
FRAMES = 256
CHANNELS = 2
SCALE = 1 << 20  # the ramp's period: exact in float32
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

#: A reader: (seconds) -> per-read arrays and the library's own loss report.
Reader = Callable[[float], tuple[list[np.ndarray], dict[str, Any]]]


def frames_lost(blocks: list[np.ndarray]) -> tuple[int, int]:
    """(frames lost, discontinuities) in what was read, from the ramp's steps.

    The first frames (before the source reached the loopback) are silence
    and skipped."""
    column = np.concatenate([b[:, 0] for b in blocks]) if blocks else np.zeros(0, np.float32)
    ticks = np.rint(column.astype(np.float64) * SCALE).astype(np.int64)
    live = np.flatnonzero(ticks)
    if len(live) < 2:
        return 0, 0
    steps = np.diff(ticks[live[0] :]) % SCALE
    bad = steps != 1
    # A step forward skipped frames; a step back (a repeat) lost none.
    skipped = steps[bad & (steps < SCALE // 2)] - 1
    return int(np.sum(skipped)), int(np.count_nonzero(bad))


def duplexio_reader(server: str) -> Reader:
    device = dio.host_from_id("jack").device_by_id(f"jack:{server}/ramp")
    assert device is not None

    def read(seconds: float) -> tuple[list[np.ndarray], dict[str, Any]]:
        config = dio.StreamConfig(CHANNELS, RATE, dio.BufferSize.fixed(FRAMES))
        blocks, reported = [], 0
        with device.build_input_stream(config) as stream:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                data, status = stream.read(FRAMES, timeout=5)
                blocks.append(data)
                reported += status.lost
        return blocks, {"reported_lost_frames": reported, "overflows": stream.stats.overflows}

    return read


def portaudio_index(sd: Any) -> int:
    """PortAudio's JACK device for the ramp client."""
    for i, d in enumerate(sd.query_devices()):
        if d["name"] == "ramp" and "JACK" in sd.query_hostapis(d["hostapi"])["name"]:
            return i
    raise RuntimeError("PortAudio lists no JACK device 'ramp'")


def sounddevice_reader(sd: Any) -> Reader:
    index = portaudio_index(sd)

    def read(seconds: float) -> tuple[list[np.ndarray], dict[str, Any]]:
        blocks, flagged = [], 0
        with sd.InputStream(
            samplerate=RATE, blocksize=FRAMES, device=index, channels=CHANNELS, dtype="float32"
        ) as stream:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                data, overflowed = stream.read(FRAMES)
                blocks.append(np.array(data))
                flagged += bool(overflowed)
        return blocks, {"overflowed_reads": flagged}

    return read


def pyaudio_reader(pa_module: Any, pa: Any) -> Reader:
    index = next(
        i
        for i in range(pa.get_device_count())
        if pa.get_device_info_by_index(i)["name"] == "ramp"
        and "JACK"
        in pa.get_host_api_info_by_index(pa.get_device_info_by_index(i)["hostApi"])["name"]
    )

    def read(seconds: float) -> tuple[list[np.ndarray], dict[str, Any]]:
        stream = pa.open(
            format=pa_module.paFloat32,
            channels=CHANNELS,
            rate=RATE,
            input=True,
            frames_per_buffer=FRAMES,
            input_device_index=index,
        )
        blocks = []
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                raw = stream.read(FRAMES, exception_on_overflow=False)
                blocks.append(np.frombuffer(raw, np.float32).reshape(-1, CHANNELS))
        finally:
            stream.stop_stream()
            stream.close()
        return blocks, {}

    return read


@contextmanager
def ramp_source(binary: Path, env: dict[str, str]) -> Iterator[None]:
    """The C ramp on ``ramp:out_N`` for the block (stopped by PID)."""
    proc = subprocess.Popen(
        [str(binary), "source", str(CHANNELS)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def c_reader(binary: Path, env: dict[str, str]) -> Reader:
    """The floor: the ramp checked in C on JACK's thread; returns its counts, no blocks."""

    def read(seconds: float) -> tuple[list[np.ndarray], dict[str, Any]]:
        done = subprocess.run(
            [str(binary), "read", str(seconds), str(CHANNELS)],
            env=env, capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
        return [], {"c_counts": json.loads(done.stdout.strip().splitlines()[-1])}

    return read


def run(reader: Reader, monitor: Any, seconds: float) -> dict[str, Any]:
    with GilHog(hold=0.05, every=0.1) as hog:
        start = time.monotonic()
        blocks, reported = reader(seconds)
        stop = time.monotonic()
    counts: dict[str, Any] | None = reported.pop("c_counts", None)
    if counts is None:
        lost, breaks = frames_lost(blocks)
        counts = {"frames_read": sum(len(b) for b in blocks), "frames_lost": lost,
                  "discontinuities": breaks}  # fmt: skip
    return {
        **counts,
        "server_xruns": monitor.between(start, stop) if monitor is not None else None,
        "gil_holds": hog.holds,
        **reported,
    }


def summary(values: list[int]) -> str:
    return f"{statistics.median(values):g} ({min(values)}-{max(values)})"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Blocking read under a GIL-holding C extension",
        "",
        f"{results['machine']}; one jackd (dummy driver, {FRAMES} frames, {RATE} Hz), "
        f"{CHANNELS} channels read {FRAMES} frames at a time for {results['seconds']:g} s "
        f"per run, {results['runs']} runs (median and range); beside it a thread holding "
        "the GIL 50 ms every 100 ms. Frames lost are counted on the audio (a ramp "
        "from a C client), not taken from the library.",
        "",
        "| library | frames lost | discontinuities | the library said | server xruns |",
        "|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['library']} | - | - | skipped: {row['skipped']} | - |")
            continue
        runs = row["runs"]
        said_keys = [k for k in runs[0] if k in ("reported_lost_frames", "overflowed_reads")]
        said = ", ".join(
            f"{k.replace('_', ' ')} {summary([r[k] for r in runs])}" for k in said_keys
        ) or ("-" if row["library"].startswith("C ") else "nothing (exception_on_overflow=False)")
        xruns = [r["server_xruns"] for r in runs if r["server_xruns"] is not None]
        lines.append(
            f"| {row['library']} | {summary([r['frames_lost'] for r in runs])} | "
            f"{summary([r['discontinuities'] for r in runs])} | {said} | "
            f"{summary(xruns) if xruns else '-'} |"
        )
    lines += [
        "",
        "Target: 0 frames lost for duplexio (its device thread fills the ring; "
        "no Python runs per block).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per run (60)")
    parser.add_argument("--runs", type=int, default=3, help="runs per library (3)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    name = servers.unique_name("dio-bench-read")
    tmp = Path(tempfile.mkdtemp(prefix="dio-bench-read-"))
    binary = compile_c("c_ramp", tmp)
    if isinstance(binary, str):
        print(binary, file=sys.stderr)
        return 1
    with servers.jackd(name, frames=FRAMES, rate=RATE) as server, ramp_source(binary, server.env):
        # PortAudio reads the server name, and lists the clients, when it
        # initializes (on import): the ramp client exists by then.
        os.environ.update({"JACK_DEFAULT_SERVER": server.name, "JACK_NO_AUDIO_RESERVATION": "1"})
        readers: list[tuple[str, Reader | str]] = [
            ("C on JACK's thread (the floor)", c_reader(binary, server.env)),
            (f"duplexio {dio.__version__}", duplexio_reader(server.name)),
        ]
        pa: Any = None
        try:
            import pyaudio

            pa = pyaudio.PyAudio()
            readers.append((f"PyAudio {pyaudio.__version__}", pyaudio_reader(pyaudio, pa)))
        except Exception as exc:  # ImportError, OSError, no JACK device: say so
            readers.append(("PyAudio", f"{type(exc).__name__}: {exc}"))
        sd: Any = None
        try:
            import sounddevice

            sd = sounddevice
            readers.append((f"sounddevice {sd.__version__}", sounddevice_reader(sd)))
        except Exception as exc:
            readers.append(("sounddevice", f"{type(exc).__name__}: {exc}"))
        try:
            with xrun_monitor(server.name) as monitor:
                for run_no in range(args.runs):
                    for library, reader in readers:
                        row = next((r for r in rows if r["library"] == library), None)
                        if row is None:
                            row = {"library": library, "runs": []}
                            rows.append(row)
                        if isinstance(reader, str):
                            row["skipped"] = reader
                            continue
                        result = run(reader, monitor, args.seconds)
                        row["runs"].append(result)
                        print(f"run {run_no + 1} {library}: {result}", file=sys.stderr)
        finally:
            # PortAudio asserts if its JACK clients outlive the server.
            if pa is not None:
                pa.terminate()
            if sd is not None:
                sd._terminate()
    results = {
        "benchmark": "blocking_read",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "seconds": args.seconds,
        "runs": args.runs,
        "rows": rows,
    }
    shutil.rmtree(tmp, ignore_errors=True)
    text = markdown(results)
    publish(RESULTS, DOCS, "blocking_read", results, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
