"""Measurements built on the public API: play, rec, playrec and round-trip latency.

``play``, ``rec`` and ``playrec`` run on callback-free streams
(`ProgramStream`): the engine plays and records
arrays itself, so they survive any GIL stall, and ``playrec`` aligns its
recording with the played data from the stream's own timestamps.
``measure_latency`` sends impulses through a duplex stream and times their
return from those timestamps, so every figure is in frames of the device's
clock, not in wall-clock guesses. Nothing here touches a host or the engine
directly; the command line (`duplexio.cli`) prints what this module
returns.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from duplexio._validate import checked, checked_methods, flag, positive, seconds, whole
from duplexio.aggregate import aggregate
from duplexio.config import DuplexStreamConfig, StreamConfig
from duplexio.devices import DeviceLike, default, find_device
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat, as_frames
from duplexio.host import Device
from duplexio.stream import ProgramStream
from duplexio.timing import DuplexCallbackInfo, frames_to_ns, ns_to_frames

logger = logging.getLogger("duplexio")

DeviceArg = DeviceLike

#: Seconds a blocking call waits beyond the program's own duration.
_WAIT_MARGIN = 10.0


_last_lock = threading.Lock()
# The last module-level play/rec/playrec, blocking or not: a blocking one is
# reachable too, so that stop() from another thread (a UI, a timer, a signal
# handler) ends a take that is waiting in its caller.
_last: ProgramStream | None = None


@checked
def wait(timeout: float | None = None) -> bool:
    """Wait for the last ``play``, ``rec`` or ``playrec``.

    That is the last one started with ``blocking=False``, or one blocking in
    another thread.

    Returns
    -------
    bool
        True once it has finished (or when there is none), False when
        ``timeout`` seconds passed first.

    Raises
    ------
    Error
        The error it ended with, if any.
    """
    with _last_lock:
        stream = _last
    return True if stream is None else stream.wait(timeout)


@checked
def stop() -> None:
    """Stop and close the last ``play``, ``rec`` or ``playrec``.

    That is the last one started with ``blocking=False``, or one blocking in
    another thread, which then returns early, without an error. What ``rec``
    recorded so far stays in its ``recording``. Nothing happens when there is
    none.
    """
    global _last
    with _last_lock:
        stream, _last = _last, None
    if stream is not None:
        stream.close()


def _run(stream: ProgramStream, blocking: bool) -> ProgramStream:
    """Start a program stream; when blocking, wait for its end and close it."""
    global _last
    stream.start()
    with _last_lock:
        previous, _last = _last, stream
    if not blocking:
        return stream
    try:
        seconds = stream.status.total_frames / stream.sample_rate
        if not stream.wait(seconds + _WAIT_MARGIN):
            raise Error(
                ErrorKind.TIMED_OUT,
                f"the program on '{stream.device}' ran {stream.progress:.0%} of "
                f"{seconds:.2f} s in {seconds + _WAIT_MARGIN:.2f} s",
            )
        xruns = stream.status.xruns
        if xruns:
            logger.warning(
                "stream on '%s': %d device glitches while running; frames were lost "
                "and the recording may be shifted after them",
                stream.device,
                xruns,
            )
    finally:
        with _last_lock:
            if _last is stream:  # a non-blocking one started before is the last again
                _last = previous
        stream.close()
    return stream


@checked
def play(
    data: npt.ArrayLike,
    sample_rate: int | None = None,
    device: DeviceArg = None,
    blocking: bool = True,
    *,
    buffer_size: int | None = None,
) -> ProgramStream:
    """Play an array once, inside the engine (no Python per block).

    Parameters
    ----------
    data
        Samples, shape ``(frames,)`` or ``(frames, channels)``; the dtype
        picks the sample format (``float32`` in [-1, 1) is the usual).
    sample_rate
        Hz; default ``dio.default.sample_rate``, else the device's default.
    device
        An output device: a ``Device``, an id, an index into
        `query_devices()`, a unique part of its
        name, or None for ``dio.default``'s, else the default output device.
    blocking
        Wait until the last frame has left the device and close the stream
        (default). False returns at once with the running stream: ``wait()``,
        ``stop()``, ``progress``; `wait()` and `stop()` reach the
        last one started so (and `stop()` from another thread ends a
        blocking one early).
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.

    Returns
    -------
    ProgramStream
        Closed when ``blocking``; running otherwise.

    Raises
    ------
    Error
        ``INVALID_INPUT`` for bad data or arguments (before anything opens),
        ``DEVICE_NOT_AVAILABLE``, ``TIMED_OUT``, or the stream's own error.
    """
    blocking = flag("blocking", blocking)
    arr, _ = as_frames(data)
    dev = find_device(device, direction="output")
    rate = default._sample_rate_for(sample_rate, dev.default_output_config().sample_rate)
    config = StreamConfig(arr.shape[1], rate, default._buffer_size_for(buffer_size))
    return _run(dev.build_play_stream(config, arr), blocking)


@overload
def rec(
    frames: int,
    sample_rate: int | None = ...,
    channels: int | None = ...,
    device: DeviceArg = ...,
    blocking: Literal[True] = ...,
    *,
    sample_format: SampleFormat | str | None = ...,
    buffer_size: int | None = ...,
) -> np.ndarray[Any, np.dtype[Any]]: ...


@overload
def rec(
    frames: int,
    sample_rate: int | None = ...,
    channels: int | None = ...,
    device: DeviceArg = ...,
    *,
    blocking: Literal[False],
    sample_format: SampleFormat | str | None = ...,
    buffer_size: int | None = ...,
) -> ProgramStream: ...


@checked
def rec(
    frames: int,
    sample_rate: int | None = None,
    channels: int | None = None,
    device: DeviceArg = None,
    blocking: bool = True,
    *,
    sample_format: SampleFormat | str | None = None,
    buffer_size: int | None = None,
) -> np.ndarray[Any, np.dtype[Any]] | ProgramStream:
    """Record ``frames`` frames, inside the engine (no Python per block).

    Parameters
    ----------
    frames
        How many frames to record (>= 1).
    sample_rate
        Hz; default ``dio.default.sample_rate``, else the device's default.
    channels
        Input channels; default ``dio.default.channels``, else the device's.
    device
        An input device, as for `play()`.
    blocking
        Wait and return the recording (default). False returns the running
        stream; its ``recording`` fills as it runs.
    sample_format
        Format (and dtype) of the recording; default ``dio.default.sample_format``,
        else float32.
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.

    Returns
    -------
    numpy.ndarray or ProgramStream
        Shape ``(frames, channels)``; frame 0 is the first captured after
        the stream started.

    Raises
    ------
    Error
        As `play()`.
    """
    blocking = flag("blocking", blocking)
    dev = find_device(device, direction="input")
    own = dev.default_input_config()
    config = StreamConfig(
        default._channels_for(channels, own.channels),
        default._sample_rate_for(sample_rate, own.sample_rate),
        default._buffer_size_for(buffer_size),
    )
    stream = _run(
        dev.build_rec_stream(
            config, frames, sample_format=default._sample_format_for(sample_format)
        ),
        blocking,
    )
    return stream.recording.copy() if blocking else stream


@overload
def playrec(
    data: npt.ArrayLike,
    sample_rate: int | None = ...,
    input_channels: int | None = ...,
    device: DeviceArg = ...,
    blocking: Literal[True] = ...,
    *,
    record_frames: int | None = ...,
    sample_format: SampleFormat | str | None = ...,
    buffer_size: int | None = ...,
) -> np.ndarray[Any, np.dtype[Any]]: ...


@overload
def playrec(
    data: npt.ArrayLike,
    sample_rate: int | None = ...,
    input_channels: int | None = ...,
    device: DeviceArg = ...,
    *,
    blocking: Literal[False],
    record_frames: int | None = ...,
    sample_format: SampleFormat | str | None = ...,
    buffer_size: int | None = ...,
) -> ProgramStream: ...


@checked
def playrec(
    data: npt.ArrayLike,
    sample_rate: int | None = None,
    input_channels: int | None = None,
    device: DeviceArg = None,
    blocking: bool = True,
    *,
    record_frames: int | None = None,
    sample_format: SampleFormat | str | None = None,
    buffer_size: int | None = None,
) -> np.ndarray[Any, np.dtype[Any]] | ProgramStream:
    """Play an array and record at once on a duplex device, sample-aligned.

    ``recording[n]`` is what the input captured when ``data[n]`` left the
    output: the stream's timestamps give the round trip (output minus input
    device instant of the first block), the engine records that much more,
    and it is sliced off. With a loop from output to input the recording is
    ``data`` at lag 0, in every call. Runs inside the engine, so it survives
    any GIL stall.

    Parameters
    ----------
    data
        What to play, shape ``(frames,)`` or ``(frames, channels)``.
    sample_rate
        Hz; default ``dio.default.sample_rate``, else the device's default.
    input_channels
        Channels to record; default ``dio.default.channels``, else the device's.
    device
        A duplex device, as for `play()`.
    blocking
        Wait and return the recording (default). False returns the running
        stream; its ``recording`` is aligned once the first block has run.
    record_frames
        Aligned frames to record (default ``len(data)``).
    sample_format
        Format (and dtype) of the recording; default ``dio.default.sample_format``,
        else float32.
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.

    Returns
    -------
    numpy.ndarray or ProgramStream
        Shape ``(record_frames, input_channels)``.

    Raises
    ------
    Error
        As `play()`; ``UNSUPPORTED_OPERATION`` when the device's input
        and output do not share a clock.
    """
    blocking = flag("blocking", blocking)
    arr, _ = as_frames(data)
    dev = find_device(device, direction="duplex")
    own = dev.default_duplex_config()
    config = DuplexStreamConfig(
        default._channels_for(input_channels, own.input_channels),
        arr.shape[1],
        default._sample_rate_for(sample_rate, own.sample_rate),
        default._buffer_size_for(buffer_size),
    )
    stream = _run(
        dev.build_playrec_stream(
            config, arr, record_frames, input_format=default._sample_format_for(sample_format)
        ),
        blocking,
    )
    return stream.recording.copy() if blocking else stream


@checked_methods
@dataclass(frozen=True)
class LatencyReport:
    """The result of `measure_latency()`.

    Attributes
    ----------
    device
        The device id measured.
    sample_rate
        Hz.
    buffer_size
        Frames per block.
    round_trips
        Frames from each impulse leaving the output to its return at the
        input, one entry per impulse that came back, measured on the audio.
    reported
        The round trip the stream reports from its timestamps
        (``output.device - input.device``) in frames; one value per distinct
        report seen (one, when the stream never drifts).
    lost
        Impulses sent that never came back, with no glitch flagged.
    glitched
        Impulses left out of `round_trips`: the stream flagged a glitch
        (``xrun``) between their sending and the block after their return
        (or, for one that never came back, before it was given up).
    expected
        For each entry of `round_trips`, the round trip the stream reported
        when that impulse was sent.
    after_xruns
        For each entry of `round_trips`, how many blocks the stream had
        flagged ``xrun`` before that impulse was sent. A glitch can shift
        input against output for good (a device that restarts, frames lost
        on one side only), so the round trip may change where this number
        does, and nowhere else (`steady`).
    xruns, late_blocks
        The stream's glitch counters over the measurement.
    pipelined
        The stream ran in pipelined mode (one period more).
    response
        The input channel from the block the first impulse was written in
        onward (float samples): index k is k frames after the impulse was
        written, so the impulse shows at the round trip. Empty when no
        impulse was sent.
    """

    device: str
    sample_rate: int
    buffer_size: int
    round_trips: tuple[int, ...]
    reported: tuple[int, ...]
    lost: int
    xruns: int
    late_blocks: int
    pipelined: bool = field(default=False)
    response: tuple[float, ...] = field(default=())
    glitched: int = field(default=0)
    expected: tuple[int, ...] = field(default=())
    after_xruns: tuple[int, ...] = field(default=())

    @property
    def frames(self) -> int | None:
        """Median measured round trip in frames (None when no impulse came back)."""
        return int(statistics.median(self.round_trips)) if self.round_trips else None

    @property
    def ms(self) -> float | None:
        """Median measured round trip in milliseconds."""
        frames = self.frames
        return None if frames is None else frames * 1000.0 / self.sample_rate

    @property
    def spread(self) -> int | None:
        """Largest minus smallest measured round trip, frames (0: sample-exact every time)."""
        return max(self.round_trips) - min(self.round_trips) if self.round_trips else None

    @property
    def steady(self) -> bool:
        """True when every impulse sent between the same two flagged glitches came
        back at the same lag (with no glitch: all of them; see `after_xruns`)."""
        stretches = self.after_xruns or (0,) * len(self.round_trips)
        lags: dict[int, set[int]] = {}
        for stretch, lag in zip(stretches, self.round_trips, strict=True):
            lags.setdefault(stretch, set()).add(lag)
        return all(len(seen) == 1 for seen in lags.values())

    @property
    def matches_report(self) -> bool:
        """True when every impulse came back exactly where the stream's timestamps
        said as it was sent (when `expected` is known; else: one report, equal to
        every measurement)."""
        if self.expected:
            return self.round_trips == self.expected
        return len(self.reported) == 1 and set(self.round_trips) == set(self.reported)

    def __str__(self) -> str:
        """What a person reads: the round trip, the report, the glitches."""
        if self.frames is None:
            head = f"no impulse came back on '{self.device}' ({self.lost} lost)"
        else:
            head = (
                f"round trip {self.frames} frames = {self.ms:.3f} ms on '{self.device}' "
                f"({len(self.round_trips)} impulses, spread {self.spread})"
            )
        said = "matches" if self.matches_report else "differs from"
        reported = "/".join(map(str, self.reported)) or "none"
        glitches = (
            f"{self.xruns} xruns, {self.late_blocks} late blocks, {self.glitched} impulses "
            f"left out, {self.lost} lost"
        )
        return (
            f"{head}; {said} the stream's report ({reported} frames); "
            f"{self.sample_rate} Hz, {self.buffer_size}-frame blocks"
            f"{', pipelined' if self.pipelined else ''}; {glitches}"
        )

    def __repr__(self) -> str:
        # The response (tens of thousands of samples) stays an attribute.
        return (
            f"LatencyReport(device={self.device!r}, frames={self.frames}, ms="
            f"{None if self.ms is None else round(self.ms, 3)}, round_trips="
            f"{_short(self.round_trips)}, reported={self.reported}, lost={self.lost}, "
            f"glitched={self.glitched}, xruns={self.xruns}, late_blocks={self.late_blocks}, "
            f"sample_rate={self.sample_rate}, buffer_size={self.buffer_size}, "
            f"pipelined={self.pipelined}, response=<{len(self.response)} samples>)"
        )


def _short(values: tuple[int, ...], most: int = 12) -> str:
    shown_values = ", ".join(map(str, values[:most]))
    return f"({shown_values}{', ...' if len(values) > most else ''})"


class _ImpulseLoop:
    """The callback's state: one impulse in flight at a time."""

    def __init__(
        self, rate: int, impulses: int, interval: float, amplitude: float, channel: int
    ) -> None:
        self.rate = rate
        self.remaining = impulses
        self.gap_frames = max(1, int(interval * rate))
        self.amplitude = amplitude
        self.threshold = amplitude / 2
        self.channel = channel
        self.sent_ns: int | None = None
        self.next_send_ns: int | None = None
        self.give_up_ns = 0
        self.round_trips: list[int] = []
        self.expected: list[int] = []  # the round trip reported as each impulse was sent
        self.after_xruns: list[int] = []  # xrun blocks flagged before each impulse was sent
        self.xruns = 0
        self.sent_xruns = 0
        self.reported: set[int] = set()
        self.lost = 0
        self.glitched = 0  # impulses left out: a glitch was flagged in their flight
        self.sent_report = 0
        self.spoiled = False
        self.arrived: tuple[int, int, int] | None = None  # (measured, reported, xruns before)
        self.done = threading.Event()
        # Whether the stream's timing holds still: an aggregate's clock loop
        # slews its read position (so the round trip) until locked.
        self.steady: Callable[[], bool] = lambda: True
        # The first impulse's response: blocks of the input channel from the
        # block it was written in, until twice the reported round trip is kept.
        self.response: list[np.ndarray] = []
        self.response_left = -1

    def _settle(self, measured: int, reported: int, sent_xruns: int, *, glitch: bool) -> None:
        """Keep an impulse whose flight had no flagged glitch; count the others.

        Across a glitch the audio may have slipped (frames lost or
        repeated), so such an impulse says nothing of the device's round trip.
        """
        if self.spoiled or glitch:
            self.glitched += 1
        else:
            self.round_trips.append(measured)
            self.expected.append(reported)
            self.after_xruns.append(sent_xruns)

    def _keep_response(self, inp: np.ndarray) -> None:
        self.response.append(inp[:, self.channel].astype(np.float64))  # a copy: blocks are reused
        self.response_left -= inp.shape[0]

    def __call__(self, inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
        in_ns = info.input.timestamp.device
        out_ns = info.output.timestamp.device
        report = ns_to_frames(out_ns - in_ns, self.rate)
        self.reported.add(report)
        frames = out.shape[0]
        self.xruns += info.xrun
        if self.response_left > 0:
            self._keep_response(inp)
        if self.arrived is not None:
            # A glitch is flagged on the block after it, so the block after an
            # arrival decides whether the impulse's flight was clean.
            self._settle(*self.arrived, glitch=info.xrun or not self.steady())
            self.arrived = None
        if self.sent_ns is not None:
            self.spoiled |= info.xrun
            hits = np.flatnonzero(np.abs(inp[:, self.channel]) >= self.threshold)
            for m in hits:
                at = in_ns + frames_to_ns(int(m), self.rate)
                if at >= self.sent_ns:
                    measured = ns_to_frames(at - self.sent_ns, self.rate)
                    self.arrived = (measured, self.sent_report, self.sent_xruns)
                    self.sent_ns = None
                    break
            else:
                if in_ns > self.give_up_ns:
                    # One a flagged glitch swallowed (a late block's output is
                    # silence) is the glitch's; lost is what vanished unflagged.
                    if self.spoiled:
                        self.glitched += 1
                    else:
                        self.lost += 1
                    self.sent_ns = None
        if self.sent_ns is None and self.arrived is None:
            if self.remaining == 0:
                self.done.set()
                return
            if self.next_send_ns is None:
                # Let the stream settle (first blocks warm the worker up).
                self.next_send_ns = in_ns + frames_to_ns(self.gap_frames, self.rate)
            if in_ns >= self.next_send_ns and self.steady():
                # The round trip counts frames from writing a sample to reading
                # it back, so a sample written at out[n] is dated on the input
                # timeline, where in[n] of the same block sits.
                out[0, :] = self.amplitude
                if self.response_left < 0:
                    self.response_left = 2 * max(self.reported) + frames
                    self._keep_response(inp)
                self.sent_ns = in_ns
                self.sent_report = report
                self.sent_xruns = self.xruns
                self.spoiled = False
                self.give_up_ns = in_ns + 1_000_000_000
                self.next_send_ns = in_ns + frames_to_ns(self.gap_frames + frames, self.rate)
                self.remaining -= 1


def duplex_or_pair(device: DeviceArg) -> Device:
    """``device`` as a duplex device; for None where the default host has no duplex
    device, its default input and output as one aggregate."""
    try:
        return find_device(device, direction="duplex")
    except Error as err:
        if device is not None or err.kind is not ErrorKind.DEVICE_NOT_AVAILABLE:
            raise
        try:
            return aggregate(None, None)
        except Error:
            raise err from None


@checked
def measure_latency(
    device: DeviceArg = None,
    *,
    sample_rate: int | None = None,
    buffer_size: int | None = None,
    impulses: int = 10,
    interval: float = 0.1,
    amplitude: float = 0.5,
    input_channel: int = 0,
    pipelined: bool = False,
    timeout: float = 30.0,
) -> LatencyReport:
    """Measure the round trip of a duplex device with impulses.

    Each impulse (one sample of ``amplitude`` on every output channel) is
    timed, on the input timeline given by the stream's timestamps, from the
    block it was written in to the frame it is read back in: the result is
    the device's round trip in its own frames, and it should equal what the
    timestamps report (``output.device - input.device``). Needs
    a loop from output to input: the virtual loopback has one built in; on a
    real host, connect output to input (cable, loopback ports, monitor).

    An impulse whose flight the stream flagged (an xrun) is left out and
    counted (`LatencyReport.glitched`). On an `aggregate` the first impulse
    waits until its clock loop is locked (a second or two), and one that
    returns while it is not locked is left out too: until then the loop is
    still moving the input against the output.

    Parameters
    ----------
    device
        A duplex device, its id, or None for the default host's default
        duplex device; where that host has none (on Windows, WASAPI, MME and
        DirectSound list inputs and outputs as separate devices), its
        default input and output as one `aggregate`.
    sample_rate
        Hz; default ``dio.default.sample_rate``, else the device's default.
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.
    impulses
        How many impulses to send (>= 1).
    interval
        Seconds of silence between impulses (> 0).
    amplitude
        Impulse height in (0, 1]; detection threshold is half of it.
    input_channel
        The input channel (0-based) to listen on.
    pipelined
        Measure the stream in pipelined mode (one more period).
    timeout
        Seconds the whole measurement may take before ``TIMED_OUT``.

    Returns
    -------
    LatencyReport

    Raises
    ------
    Error
        ``INVALID_INPUT`` for bad arguments, ``UNSUPPORTED_OPERATION`` when
        the device cannot run duplex, ``TIMED_OUT`` when the impulses did not
        finish in time, or the stream's own error.
    """
    count = whole("impulses", impulses)
    gap = seconds("interval", interval)
    peak = positive("amplitude", amplitude)
    limit = seconds("timeout", timeout)
    if peak > 1:
        raise Error(ErrorKind.INVALID_INPUT, f"amplitude must be in (0, 1], got {shown(amplitude)}")
    dev = duplex_or_pair(device)
    own = dev.default_duplex_config()
    rate = default._sample_rate_for(sample_rate, own.sample_rate)
    config = DuplexStreamConfig(
        own.input_channels, own.output_channels, rate, default._buffer_size_for(buffer_size)
    )
    channel = whole("input_channel", input_channel, minimum=0, maximum=config.input_channels - 1)
    loop = _ImpulseLoop(rate, count, gap, peak, channel)
    stream = dev.build_duplex_stream(config, loop, pipelined=pipelined)
    loop.steady = lambda: stream.stats.locked is not False
    with stream:
        finished = loop.done.wait(min(limit, threading.TIMEOUT_MAX))  # beyond: the OS refuses
        stats = stream.stats
        if stream.error is not None:
            raise stream.error
        if not finished:
            raise Error(
                ErrorKind.TIMED_OUT,
                f"latency measurement on '{dev.id}' did not finish in {timeout:g} s "
                f"({len(loop.round_trips)} of {impulses} impulses back)",
            )
        return LatencyReport(
            device=str(dev.id),
            sample_rate=rate,
            buffer_size=stream.buffer_size,
            round_trips=tuple(loop.round_trips),
            reported=tuple(sorted(loop.reported)),
            lost=loop.lost,
            glitched=loop.glitched,
            expected=tuple(loop.expected),
            after_xruns=tuple(loop.after_xruns),
            xruns=stats.xruns,
            late_blocks=stats.late_blocks + stats.skipped_blocks,
            pipelined=pipelined,
            response=tuple(np.concatenate(loop.response).tolist()) if loop.response else (),
        )
