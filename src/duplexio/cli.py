"""The ``duplexio`` command (also ``python -m duplexio``).

Subcommands: ``hosts``, ``devices``, ``latency`` (the main job: round-trip
latency of the default duplex device, ``--plot`` with matplotlib), ``play``
and ``record`` (sound files through soundfile, with a progress bar and a
level meter), ``beep``, ``duplex-feedback`` (input copied to output in one
duplex stream) and ``feedback`` (the same with two separate streams and a
ring buffer, as it had to be done before duplex, printing the drift between
them). Only argument parsing, file I/O and printing live here; the work is
done by the public API and `duplexio.measure`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from duplexio._validate import positive, whole
from duplexio._version import __version__
from duplexio.aggregate import aggregate
from duplexio.config import (
    MAX_BUFFER_FRAMES,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    BufferSize,
    DuplexStreamConfig,
    StreamConfig,
)
from duplexio.devices import find_device, query_devices, table, watch_devices
from duplexio.errors import Error, ErrorKind, shown
from duplexio.files import (
    FileReport,
    level_dbfs,
    optional_module,
    play_file,
    record_file,
    sound_file,
)
from duplexio.formats import SampleFormat, silent_frames
from duplexio.host import (
    Device,
    HostId,
    available_hosts,
    considered_hosts,
    default_host,
    host_from_id,
)
from duplexio.measure import LatencyReport, measure_latency, play
from duplexio.timing import CallbackInfo, DuplexCallbackInfo


def _why_not(hid: HostId) -> str:
    """Why a host is not usable here: its library or build, else its server."""
    try:
        host_from_id(hid)
    except Error as err:
        return err.message
    return "its library loads, but no server answers"


def cmd_hosts(args: argparse.Namespace) -> int:
    """Print every known host, whether it is usable here (and why not), and the default."""
    usable = set(available_hosts())
    considered = set(considered_hosts())
    chosen = default_host().id
    rows = [["host", "available", "devices", "default", "why"]]
    for hid in HostId:
        if hid not in usable:
            rows.append([hid.value, "no", "-", "", _why_not(hid)])
            continue
        count = len(host_from_id(hid).devices())
        why = "" if hid in considered else "not a default here: the native hosts list its devices"
        if not why and not count and hid is not chosen:
            why = "no devices now"
        rows.append([hid.value, "yes", str(count), "*" if hid is chosen else "", why])
    print(table(rows))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """Print the table of every usable host's devices (or one host's): dio.query_devices();
    with --watch, then each device event as it comes, until Ctrl-C."""
    host = getattr(args, "host", None)
    listed = query_devices(host)
    print(listed, flush=True)
    if host is not None and not len(listed):
        # An empty table says nothing by itself: say why this host has none.
        print(f"no devices: {_why_not(HostId(host_from_id(host).id))}", file=sys.stderr)
    if getattr(args, "watch", False):
        _watch(host)
    return 0


def _watch(host: str | None) -> None:
    """One line per device event, stamped with the local time, until Ctrl-C."""
    watcher = host_from_id(host).watch_devices() if host is not None else watch_devices()
    print("watching for device changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
    with watcher:
        try:
            for event in watcher:
                print(f"{time.strftime('%H:%M:%S')}  {event}", flush=True)
        except KeyboardInterrupt:
            return


def cmd_latency(args: argparse.Namespace) -> int:
    """Measure and print the round trip of a duplex device."""
    report = measure_latency(
        args.device,
        sample_rate=args.rate,
        buffer_size=args.buffer_size,
        impulses=args.impulses,
        interval=args.interval,
        pipelined=args.pipelined,
    )
    if args.plot:
        _plot_latency(report, args.plot)
    if args.json:
        print(
            json.dumps(
                {
                    "device": report.device,
                    "sample_rate": report.sample_rate,
                    "buffer_size": report.buffer_size,
                    "round_trip_frames": report.frames,
                    "round_trip_ms": report.ms,
                    "spread_frames": report.spread,
                    "steady": report.steady,
                    "round_trips": list(report.round_trips),
                    "reported_frames": list(report.reported),
                    "lost": report.lost,
                    "glitched": report.glitched,
                    "xruns": report.xruns,
                    "late_blocks": report.late_blocks,
                }
            )
        )
        return 0 if report.round_trips else 1
    print(f"device       {report.device}")
    print(
        f"config       {report.sample_rate} Hz, {report.buffer_size} frames per block"
        + (", pipelined" if report.pipelined else "")
    )
    if not report.round_trips:
        if report.glitched:
            print(
                f"no clean impulse: {report.glitched} came back across a flagged glitch "
                f"({report.xruns} xruns, {report.late_blocks} late blocks); try again"
            )
        else:
            print(f"no impulse came back ({report.lost} lost): is the output looped to the input?")
        return 1
    assert report.frames is not None and report.ms is not None
    print(
        f"round trip   {report.frames} frames = {report.ms:.3f} ms "
        f"(median of {len(report.round_trips)} impulses)"
    )
    if report.spread == 0:
        stable = "identical for every impulse"
    elif report.steady:
        stable = "identical between glitches, changed where an xrun was flagged"
    else:
        stable = f"spread {report.spread} frames"

    print(f"stability    {stable}; min {min(report.round_trips)}, max {max(report.round_trips)}")
    print(
        f"reported     {', '.join(map(str, report.reported))} frames by the stream's timestamps"
        + (" (matches)" if report.matches_report else " (DIFFERS from measured)")
    )
    print(
        f"glitches     {report.xruns} xruns, {report.late_blocks} late blocks, "
        f"{report.lost} impulses lost"
        + (f", {report.glitched} left out (a glitch in their flight)" if report.glitched else "")
    )
    return 0


def cmd_duplex_feedback(args: argparse.Namespace) -> int:
    """Copy the input of a duplex stream to its output for a while, then print the stats."""
    dev = find_device(args.device, direction="duplex")
    default = dev.default_duplex_config()
    config = DuplexStreamConfig(
        args.input_channels or default.input_channels,
        args.output_channels or default.output_channels,
        args.rate or default.sample_rate,
        BufferSize.fixed(args.buffer_size) if args.buffer_size else BufferSize.DEFAULT,
    )

    def copy(inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
        n = min(inp.shape[1], out.shape[1])
        out[:, :n] = inp[:, :n]

    stream = dev.build_duplex_stream(config, copy, pipelined=args.pipelined)
    print(
        f"{dev.id}: {config.input_channels} in -> {config.output_channels} out, "
        f"{config.sample_rate} Hz, {stream.buffer_size} frames, latency "
        f"{stream.latency.round_trip} frames; copying for {args.seconds:g} s"
    )
    with stream:
        stream.wait(args.seconds)
        s = stream.stats
    print(
        f"{s.callbacks} blocks, {s.xruns} xruns, {s.late_blocks} late, "
        f"{s.skipped_blocks} skipped, load {s.load:.1%} (max {s.max_load:.1%})"
    )
    return 0


def _pyplot() -> Any:
    """matplotlib's pyplot drawing to files only (no display needed)."""
    optional_module("matplotlib", "plot").use("Agg")
    return optional_module("matplotlib.pyplot", "plot")


def _plot_level(report: FileReport, levels: list[tuple[int, float]], path: str) -> None:
    """Save a recording's peak level over time, its glitches marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    rate = report.sample_rate
    if levels:
        at, db = zip(*levels, strict=True)
        ax.plot(np.asarray(at) / rate, np.maximum(db, -120.0), lw=0.8)
    for n, g in enumerate(report.glitches):
        label = f"glitches ({len(report.glitches)})" if n == 0 else None
        ax.axvspan(g.frame / rate, (g.frame + max(g.frames, 1)) / rate, color="tab:red",
                   alpha=0.5, lw=1, label=label)  # fmt: skip
    if report.glitches:
        ax.legend(loc="lower right")
    ax.set(
        title=f"{report.path}: peak level, {report.seconds:.1f} s",
        xlabel="s",
        ylabel="peak (dBFS)",
        ylim=(-90, 3),
    )
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"level plot saved to {path}", file=sys.stderr)


def _plot_latency(report: LatencyReport, path: str) -> None:
    """Save the first impulse's response and a histogram of the round trips."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), layout="constrained")
    response = np.asarray(report.response)
    top.plot(np.arange(len(response)), response, lw=0.8)
    for frames in report.reported:
        top.axvline(frames, color="tab:red", ls="--", lw=0.8, label=f"reported {frames} frames")
    top.set(
        title=f"{report.device}: impulse response",
        xlabel="frames after the impulse was written",
        ylabel="input (full scale 1.0)",
    )
    if report.reported:
        top.legend(loc="upper right")
    trips = np.asarray(report.round_trips)
    if len(trips):
        low, high = int(trips.min()), int(trips.max())
        # Whole frames, a few either side: one bar when the round trip never moves.
        step = max(1, (high - low + 1) // 50)
        bottom.hist(trips, bins=np.arange(low - 3.5, high + 4.5, step), rwidth=0.8)
        bottom.xaxis.get_major_locator().set_params(integer=True)
    bottom.set(
        title=f"round trips of {len(trips)} impulses",
        xlabel="round trip (frames)",
        ylabel="impulses",
    )
    fig.savefig(path)
    plt.close(fig)
    print(f"plot         {path}", file=sys.stderr)


# -- files, progress and level ------------------------------------------------------


class _Progress:
    """A progress bar (when the length is known) and a peak meter on stderr,
    redrawn at most every 0.1 s on a terminal, every second elsewhere."""

    def __init__(self, rate: int, total: int | None) -> None:
        self.rate, self.total = rate, total
        self.tty = sys.stderr.isatty()
        self.every = 0.1 if self.tty else 1.0
        self.next = time.monotonic()
        self.last: tuple[int, np.ndarray] | None = None
        self.levels: list[tuple[int, float]] = []  # (frames done, peak dBFS) per step

    def __call__(self, done: int, block: np.ndarray) -> None:
        if block.size:
            self.levels.append((done, level_dbfs(block)))
        if block.size or self.last is None:  # the meter keeps the last sound heard
            self.last = (done, block)
        else:
            self.last = (done, self.last[1])
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + self.every
        self.draw(done, block)

    def draw(self, done: int, block: np.ndarray) -> None:
        db = level_dbfs(block)
        meter = max(0, min(20, int((db + 60) / 3))) if db > -math.inf else 0
        width, seconds = 30, done / self.rate
        if self.total:
            share = min(1.0, done / self.total)
            fill = int(share * width)
            where = f"[{'#' * fill}{'.' * (width - fill)}] {share:4.0%} "
            where += f"{seconds:6.1f}/{self.total / self.rate:.1f} s"
        else:
            where = f"{seconds:8.1f} s"
        print(
            f"\r{where}  |{'=' * meter}{' ' * (20 - meter)}| {db:6.1f} dBFS",
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def end(self) -> None:
        """Draw where it ended."""
        if self.last is not None:
            self.draw(*self.last)
        if self.tty:
            print(file=sys.stderr)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set, for as long as the block runs.

    Installed with ``signal.signal`` for both, so a command started in the
    background by a script (where SIGINT is ignored) still ends cleanly on
    it. Only the main thread can install handlers; elsewhere the event is
    only set by the caller.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, lambda number, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: '1 channel', '2 channels', '3 glitches'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def _glitch_summary(report: FileReport) -> str:
    if not report.glitches:
        return "no glitches"
    lost = sum(g.frames for g in report.glitches)
    at = ", ".join(f"{g.frame / report.sample_rate:.3f} s" for g in report.glitches[:5])
    more = f" and {len(report.glitches) - 5} more" if len(report.glitches) > 5 else ""
    return f"{_count(len(report.glitches), 'glitch')} ({lost} frames) at {at}{more}"


def cmd_play(args: argparse.Namespace) -> int:
    """Play a sound file (WAV, FLAC, ... via soundfile) from disk, block by block;
    ``-`` reads it from standard input first."""
    if args.file == "-":
        with tempfile.TemporaryDirectory(prefix="duplexio-") as where:
            path = Path(where) / "stdin"
            with path.open("wb") as copy:
                shutil.copyfileobj(sys.stdin.buffer, copy)
            args.file, args.label = str(path), "standard input"
            return cmd_play(args)
    with sound_file(args.file, "r") as f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
    print(
        f"{getattr(args, 'label', None) or args.file}: {_count(channels, 'channel')}, "
        f"{rate} Hz, {frames / rate:.1f} s",
        file=sys.stderr,
    )
    progress = _Progress(rate, frames)
    with _stop_on_signals() as stop:
        try:
            report = play_file(
                args.file, args.device, buffer_size=args.buffer_size, stop=stop, on_block=progress
            )
        finally:
            progress.end()
    if report.resampled:
        print(
            f"the device refused {rate} Hz: converted to {report.device_rate} Hz (soxr)",
            file=sys.stderr,
        )
    print(
        f"played {report.frames} frames ({report.seconds:.2f} s)"
        f"{', interrupted' if report.interrupted else ''}; {_glitch_summary(report)}"
    )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """Record into a sound file block by block, until -s seconds or Ctrl-C / SIGTERM."""
    total = None if args.seconds is None else round(args.seconds * args.rate)
    progress = _Progress(args.rate, total)
    with _stop_on_signals() as stop:
        try:
            report = record_file(
                args.file,
                args.seconds,
                args.rate,
                args.channels,
                args.device,
                subtype=args.subtype,
                buffer_size=args.buffer_size,
                stop=stop,
                on_block=progress,
            )
        finally:
            progress.end()
    if report.resampled:
        print(
            f"the device refused {args.rate} Hz: recorded at {report.device_rate} Hz and "
            "converted (soxr)",
            file=sys.stderr,
        )
    if args.plot:
        _plot_level(report, progress.levels, args.plot)
    if args.markers:
        labels = Path(args.file).with_suffix(".labels.txt")
        report.write_labels(labels)
        print(f"glitches written to {labels} (an Audacity label track)", file=sys.stderr)
    print(
        f"{args.file}: {report.frames} frames = {report.seconds:.2f} s, "
        f"{_count(report.channels, 'channel')}, {report.sample_rate} Hz"
        f"{', interrupted' if report.interrupted else ''}; "
        f"{_glitch_summary(report)}"
    )
    return 0


def cmd_beep(args: argparse.Namespace) -> int:
    """Play a sine beep (with 5 ms fades so it does not click)."""
    frames = max(1, round(args.seconds * args.rate))
    data = silent_frames(frames, args.channels, SampleFormat.F32, "the beep")
    try:
        t = np.arange(frames) / args.rate
    except MemoryError:
        raise Error(
            ErrorKind.RESOURCE_EXHAUSTED, f"a beep of {frames} frames does not fit in memory"
        ) from None
    tone = args.amplitude * np.sin(2 * np.pi * args.frequency * t)
    fade = min(frames // 2, round(0.005 * args.rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        tone[:fade] *= ramp
        tone[-fade:] *= ramp[::-1]
    data[:] = tone[:, None]
    stream = play(data, args.rate, args.device, buffer_size=args.buffer_size)
    print(f"{args.frequency:g} Hz for {args.seconds:g} s on {stream.device}")
    return 0


class _Ring:
    """Single-producer single-consumer ring of frames between two streams.

    Each side runs on its own stream's worker thread; the counters only grow
    and each is written by one side, which the GIL makes safe to read.
    """

    def __init__(self, frames: int, channels: int) -> None:
        self.buf = np.zeros((frames, channels), np.float32)
        self.written = 0
        self.read = 0
        self.overruns = 0
        self.underruns = 0

    def fill(self) -> int:
        return self.written - self.read

    def push(self, block: np.ndarray) -> None:
        n, size = block.shape[0], self.buf.shape[0]
        if self.fill() + n > size:
            self.overruns += 1
            return
        idx = (self.written + np.arange(n)) % size
        self.buf[idx, : block.shape[1]] = block[:, : self.buf.shape[1]]
        self.written += n

    def pop(self, out: np.ndarray) -> None:
        n, size = out.shape[0], self.buf.shape[0]
        if self.fill() < n:
            self.underruns += 1
            return  # out stays silent
        idx = (self.read + np.arange(n)) % size
        k = min(out.shape[1], self.buf.shape[1])
        out[:, :k] = self.buf[idx, :k]
        self.read += n


class _ClockWatch:
    """One stream's real rate: frames per second of its device time.

    Summed over consecutive blocks only, so a glitch (cycles lost, a block
    late or skipped: flagged on the block after it) costs that step and does
    not bend the rate.
    """

    def __init__(self) -> None:
        self.last_ns: int | None = None
        self.last_frames = 0
        self.frames = 0
        self.span_ns = 0

    def see(self, info: CallbackInfo) -> None:
        now = info.timestamp.device
        if self.last_ns is not None and not info.xrun:
            self.frames += self.last_frames
            self.span_ns += now - self.last_ns
        self.last_ns, self.last_frames = now, info.frames

    def rate(self) -> float | None:
        return self.frames * 1e9 / self.span_ns if self.span_ns > 0 else None


@dataclass(frozen=True)
class FeedbackSample:
    """One look at a feedback run (`run_feedback`).

    Attributes
    ----------
    seconds
        Since the copy began.
    delay_frames
        Input to output through the buffering now: both devices' latencies
        and the ring's fill (the aggregate's round trip and its loop's error).
    underruns, overruns
        Counted so far: the ring ran dry or full (the aggregate's resampler
        found too little input, or its ring was full).
    drift_ppm
        The input clock against the output's so far; None until measured.
    """

    seconds: float
    delay_frames: float
    underruns: int
    overruns: int
    drift_ppm: float | None


@dataclass(frozen=True)
class FeedbackRun:
    """What `run_feedback` saw: a line about the setup, and its samples."""

    setup: str
    samples: list[FeedbackSample]


def run_feedback(
    input_device: Device,
    output_device: Device,
    *,
    rate: int,
    channels: int,
    buffer_size: BufferSize,
    seconds: float,
    aggregate: bool = False,
    every: float = 0.5,
) -> FeedbackRun:
    """Copy input to output for `seconds` and sample the buffering every `every` s.

    Two ways across two clocks: two streams joined by a ring buffer sized for
    the worst case (what the peers do; the fill drifts with the clocks until
    it under- or overruns), or one duplex stream on `aggregate()` of the two
    (the engine resamples the input onto the output's clock: the delay
    holds).
    """
    if aggregate:
        return _aggregate_feedback(
            input_device, output_device, rate, channels, buffer_size, seconds, every
        )
    return _ring_feedback(input_device, output_device, rate, channels, buffer_size, seconds, every)


def _sample(
    running: Callable[[], bool],
    look: Callable[[float], FeedbackSample],
    seconds: float,
    every: float,
) -> list[FeedbackSample]:
    """``look(elapsed)`` every `every` s while `running()`, until `seconds` have passed."""
    samples: list[FeedbackSample] = []
    start = time.monotonic()
    while running():
        elapsed = time.monotonic() - start
        samples.append(look(elapsed))
        if elapsed >= seconds:
            break
        time.sleep(min(every, seconds - elapsed))
    return samples


def _ring_feedback(
    inp_dev: Device, out_dev: Device, rate: int, channels: int, buf: BufferSize,
    seconds: float, every: float,
) -> FeedbackRun:  # fmt: skip
    in_clock, out_clock = _ClockWatch(), _ClockWatch()
    ring: _Ring | None = None
    ready = threading.Event()

    def capture(data: np.ndarray, info: CallbackInfo) -> None:
        in_clock.see(info)
        if ring is not None:
            ring.push(data)

    def playback(data: np.ndarray, info: CallbackInfo) -> None:
        out_clock.see(info)
        if ring is not None and ready.is_set():
            ring.pop(data)

    in_stream = inp_dev.build_input_stream(StreamConfig(channels, rate, buf), capture)
    out_stream = out_dev.build_output_stream(StreamConfig(channels, rate, buf), playback)
    block = max(in_stream.buffer_size, out_stream.buffer_size)
    # Two blocks of slack each way: the streams wake in no fixed order.
    ring = _Ring(8 * block, channels)
    with in_stream, out_stream:
        while ring.fill() < 4 * block and in_stream.running:
            time.sleep(block / rate)
        ready.set()

        def look(elapsed: float) -> FeedbackSample:
            in_rate, out_rate = in_clock.rate(), out_clock.rate()
            drift = (in_rate / out_rate - 1) * 1e6 if in_rate and out_rate else None
            delay = in_stream.latency.input + ring.fill() + out_stream.latency.output
            return FeedbackSample(elapsed, delay, ring.underruns, ring.overruns, drift)

        samples = _sample(lambda: in_stream.running and out_stream.running, look, seconds, every)
    setup = (
        f"{inp_dev.id} -> {out_dev.id}: {channels} channels, {rate} Hz, two streams "
        f"({in_stream.buffer_size} and {out_stream.buffer_size} frames) joined by a "
        f"{len(ring.buf)}-frame ring"
    )
    return FeedbackRun(setup, samples)


def _aggregate_feedback(
    inp_dev: Device, out_dev: Device, rate: int, channels: int, buf: BufferSize,
    seconds: float, every: float,
) -> FeedbackRun:  # fmt: skip
    device = aggregate(inp_dev, out_dev)

    def copy(inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
        k = min(inp.shape[1], out.shape[1])
        out[:, :k] = inp[:, :k]

    config = DuplexStreamConfig(channels, channels, rate, buf)
    stream = device.build_duplex_stream(config, copy)

    def look(elapsed: float) -> FeedbackSample:
        loop = stream.stats.aggregate
        assert loop is not None
        drift = loop.drift_ppm if loop.lock_seconds is not None else None
        delay = stream.latency.round_trip + loop.error_frames
        return FeedbackSample(elapsed, delay, loop.underruns, loop.overruns, drift)

    with stream:
        samples = _sample(lambda: stream.running, look, seconds, every)
    stream.wait(0)  # an error that ended it is raised here
    setup = (
        f"{inp_dev.id} -> {out_dev.id}: {channels} channels, {rate} Hz, one duplex stream "
        f"on their aggregate ({stream.buffer_size} frames; the input resampled onto the "
        "output's clock)"
    )
    return FeedbackRun(setup, samples)


def cmd_feedback(args: argparse.Namespace) -> int:
    """Copy input to output across two devices' clocks.

    By default what users had to do before duplex streams: two streams, a
    buffer between them sized for the worst case, and a drift that
    eventually under- or overruns it. With ``--aggregate``, one duplex
    stream on the two devices' aggregate. Prints the drift measured, how
    the delay through the buffering moved, and the under- and overruns.
    """
    inp_dev = find_device(args.input_device, direction="input")
    out_dev = find_device(args.output_device, direction="output")
    rate = args.rate or out_dev.default_output_config().sample_rate
    buf = BufferSize.fixed(args.buffer_size) if args.buffer_size else BufferSize.DEFAULT
    run = run_feedback(
        inp_dev, out_dev, rate=rate, channels=args.channels, buffer_size=buf,
        seconds=args.seconds, aggregate=args.aggregate,
    )  # fmt: skip
    print(run.setup)
    first, last = run.samples[0], run.samples[-1]
    if last.drift_ppm is not None:
        drift = round(last.drift_ppm, 1) + 0.0  # no "-0.0" for equal clocks
        how = "the resampler's loop" if args.aggregate else "their device timestamps"
        print(f"drift        {drift:+.1f} ppm (by {how})")
    delays = [s.delay_frames for s in run.samples]
    print(
        f"delay        {first.delay_frames:.1f} -> {last.delay_frames:.1f} frames "
        f"(range {min(delays):.1f}..{max(delays):.1f} over {last.seconds:.1f} s)"
    )
    print(f"glitches     {last.underruns} underruns, {last.overruns} overruns")
    return 0


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, by the library's own rule."""
    return _whole(text, None)


def _device(text: str) -> str | int:
    """argparse type: a device as ``dio.query_devices()`` numbers it (all digits),
    else an id or a unique part of a name, as the Python calls take it."""
    return int(text) if text.isdigit() else text


_DEVICE_HELP = "an index in 'duplexio devices', an id, or a unique part of a name"


def _rate(text: str) -> int:
    """argparse type: a sample rate in Hz that a config accepts."""
    return _whole(text, MAX_SAMPLE_RATE)


def _buffer_frames(text: str) -> int:
    """argparse type: a buffer size in frames that a config accepts."""
    return _whole(text, MAX_BUFFER_FRAMES)


def _channel_count(text: str) -> int:
    """argparse type: a channel count that a config accepts."""
    return _whole(text, MAX_CHANNELS)


def _whole(text: str, maximum: int | None) -> int:
    try:
        return whole("the value", int(text), maximum=maximum)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {shown(text)}") from None
    except Error as err:
        raise argparse.ArgumentTypeError(err.message) from None


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0, by the library's own rule."""
    try:
        return positive("the value", float(text))
    except Error as err:
        raise argparse.ArgumentTypeError(err.message) from None


def _stream_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-d",
        "--device",
        type=_device,
        help=f"device: {_DEVICE_HELP} (default: the default duplex device)",
    )
    p.add_argument("-r", "--rate", type=_rate, help="sample rate in Hz")
    p.add_argument("-b", "--buffer-size", type=_buffer_frames, help="frames per block")
    p.add_argument("--pipelined", action="store_true", help="give the callback a whole period")


def _device_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "-d",
        "--device",
        type=_device,
        help=f"device: {_DEVICE_HELP} (default: the default {what} device)",
    )
    p.add_argument("-b", "--buffer-size", type=_buffer_frames, help="frames per block")


Subparsers = Any  # argparse's _SubParsersAction, private by name


def _add_listings(sub: Subparsers) -> None:
    p = sub.add_parser("hosts", help="list hosts and whether they are usable")
    p.set_defaults(run=cmd_hosts)
    p = sub.add_parser("devices", help="list devices")
    p.add_argument("--host", help="list only this host's devices (default: every usable host)")
    p.add_argument(
        "--watch", action="store_true", help="then print devices as they come and go, until Ctrl-C"
    )
    p.set_defaults(run=cmd_devices)


def _add_latency(sub: Subparsers) -> None:
    p = sub.add_parser("latency", help="measure the round-trip latency of a duplex device")
    _stream_options(p)
    p.add_argument("-n", "--impulses", type=_positive_int, default=10, help="impulses to send (10)")
    p.add_argument(
        "--interval", type=_positive_float, default=0.1, help="seconds between impulses (0.1)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--plot", metavar="PNG", help="save the impulse response and a round-trip histogram"
    )
    p.set_defaults(run=cmd_latency)


def _add_files(sub: Subparsers) -> None:
    p = sub.add_parser("play", help="play a sound file (WAV, FLAC, ...)")
    p.add_argument("file", help="the file to play (- for standard input)")
    _device_option(p, "output")
    p.set_defaults(run=cmd_play)

    p = sub.add_parser("record", help="record into a sound file (WAV, FLAC, ...)")
    p.add_argument("file", help="the file to write; its extension picks the format")
    p.add_argument(
        "-s", "--seconds", type=_positive_float, help="how long (default: until Ctrl-C or SIGTERM)"
    )
    p.add_argument("-r", "--rate", type=_rate, default=48000, help="Hz (48000)")
    p.add_argument("-c", "--channels", type=_channel_count, default=2, help="channels (2)")
    p.add_argument("--subtype", help="soundfile subtype (default FLOAT for WAV, PCM_24 for FLAC)")
    p.add_argument(
        "--markers",
        action="store_true",
        help="write the glitches beside the file (FILE.labels.txt, an Audacity label track)",
    )
    p.add_argument("--plot", metavar="PNG", help="save the level over time, glitches marked")
    _device_option(p, "input")
    p.set_defaults(run=cmd_record)


def _add_beep(sub: Subparsers) -> None:
    p = sub.add_parser("beep", help="play a sine beep")
    p.add_argument("-f", "--frequency", type=_positive_float, default=440.0, help="Hz (440)")
    p.add_argument("-s", "--seconds", type=_positive_float, default=0.5, help="how long (0.5)")
    p.add_argument("-a", "--amplitude", type=_positive_float, default=0.2, help="peak (0.2)")
    p.add_argument("-r", "--rate", type=_rate, default=48000, help="Hz (48000)")
    p.add_argument("-c", "--channels", type=_channel_count, default=2, help="channels (2)")
    _device_option(p, "output")
    p.set_defaults(run=cmd_beep)


def _add_feedbacks(sub: Subparsers) -> None:
    p = sub.add_parser(
        "feedback", help="copy input to output with two streams and a ring buffer (no duplex)"
    )
    p.add_argument(
        "-i", "--input-device", type=_device, help=f"input device: {_DEVICE_HELP} (default input)"
    )
    p.add_argument(
        "-o",
        "--output-device",
        type=_device,
        help=f"output device: {_DEVICE_HELP} (default output)",
    )
    p.add_argument("-r", "--rate", type=_rate, help="sample rate in Hz")
    p.add_argument("-b", "--buffer-size", type=_buffer_frames, help="frames per block")
    p.add_argument("-c", "--channels", type=_channel_count, default=2, help="channels (2)")
    p.add_argument("-s", "--seconds", type=_positive_float, default=5.0, help="how long (5)")
    p.add_argument(
        "--aggregate",
        action="store_true",
        help="one duplex stream on the devices' aggregate (the engine makes one clock)",
    )
    p.set_defaults(run=cmd_feedback)

    p = sub.add_parser("duplex-feedback", help="copy input to output in one duplex stream")
    _stream_options(p)
    p.add_argument("-s", "--seconds", type=_positive_float, default=5.0, help="how long (5)")
    p.add_argument("--input-channels", type=_channel_count, help="input channels")
    p.add_argument("--output-channels", type=_channel_count, help="output channels")
    p.set_defaults(run=cmd_duplex_feedback)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``duplexio`` command."""
    parser = argparse.ArgumentParser(
        prog="duplexio",
        description="Real-time audio with synchronized duplex streams.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"duplexio {__version__}")
    # With no command it lists the devices, as `python -m sounddevice` does.
    parser.set_defaults(run=cmd_devices, host=None)
    sub = parser.add_subparsers(dest="command")
    for add in (_add_listings, _add_latency, _add_files, _add_beep, _add_feedbacks):
        add(sub)
    return parser


#: The Python spellings a message may name, and what to type here instead.
_SPELLINGS = (
    (re.compile(r"dio\.query_devices\(\)|query_devices\(\)"), "`duplexio devices`"),
    (re.compile(r"BufferSize\.(?:fixed|device)\((\d+)\)"), r"-b \1"),
    (re.compile(r"dio\.default\.(device|sample_rate|buffer_size)"), "the -d/-r/-b option"),
)


def _as_command_line(message: str) -> str:
    """A library message with its Python spellings as this command's options."""
    for pattern, instead in _SPELLINGS:
        message = pattern.sub(instead, message)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for duplexio errors)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="duplexio: %(message)s",
    )
    started = time.monotonic()
    try:
        status: int = args.run(args)
    except Error as err:
        print(f"error: {_as_command_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    logging.getLogger("duplexio").debug("done in %.2f s", time.monotonic() - started)
    return status


if __name__ == "__main__":
    sys.exit(main())
