"""Measurements built on the public API: round-trip latency for now.

``measure_latency`` sends impulses through a duplex stream and times their
return from the stream's own timestamps, so every figure is in frames of the
device's clock, not in wall-clock guesses. Nothing here touches a host or the
engine directly; the command line (:mod:`duplexaudio.cli`) prints what this
module returns.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field

import numpy as np

from duplexaudio.config import BufferSize, DuplexStreamConfig
from duplexaudio.errors import Error, ErrorKind
from duplexaudio.host import Device, DeviceId, find_device
from duplexaudio.timing import DuplexCallbackInfo, frames_to_ns, ns_to_frames


@dataclass(frozen=True)
class LatencyReport:
    """The result of :func:`measure_latency`.

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
        Impulses sent that never came back.
    xruns, late_blocks
        The stream's glitch counters over the measurement.
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
    def matches_report(self) -> bool:
        """True when every impulse came back exactly where the stream's timestamps said."""
        return len(self.reported) == 1 and set(self.round_trips) == set(self.reported)


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
        self.reported: set[int] = set()
        self.lost = 0
        self.done = threading.Event()

    def __call__(self, inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
        in_ns = info.input.timestamp.device
        out_ns = info.output.timestamp.device
        self.reported.add(ns_to_frames(out_ns - in_ns, self.rate))
        frames = out.shape[0]
        if self.sent_ns is not None:
            hits = np.flatnonzero(np.abs(inp[:, self.channel]) >= self.threshold)
            for m in hits:
                at = in_ns + frames_to_ns(int(m), self.rate)
                if at >= self.sent_ns:
                    self.round_trips.append(ns_to_frames(at - self.sent_ns, self.rate))
                    self.sent_ns = None
                    break
            else:
                if in_ns > self.give_up_ns:
                    self.lost += 1
                    self.sent_ns = None
        if self.sent_ns is None:
            if self.remaining == 0:
                self.done.set()
                return
            if self.next_send_ns is None:
                # Let the stream settle (first blocks warm the worker up).
                self.next_send_ns = in_ns + frames_to_ns(self.gap_frames, self.rate)
            if in_ns >= self.next_send_ns:
                # The round trip counts frames from writing a sample to reading
                # it back, so a sample written at out[n] is dated on the input
                # timeline, where in[n] of the same block sits.
                out[0, :] = self.amplitude
                self.sent_ns = in_ns
                self.give_up_ns = in_ns + 1_000_000_000
                self.next_send_ns = in_ns + frames_to_ns(self.gap_frames + frames, self.rate)
                self.remaining -= 1


def measure_latency(
    device: Device | DeviceId | str | None = None,
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

    Parameters
    ----------
    device
        A duplex device, its id, or None for the default host's default
        duplex device.
    sample_rate
        Hz; default: the device's default.
    buffer_size
        Frames per block; default: the device's default.
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
    if isinstance(impulses, bool) or not isinstance(impulses, int) or impulses < 1:
        raise Error(ErrorKind.INVALID_INPUT, f"impulses must be an int >= 1, got {impulses!r}")
    if not isinstance(interval, (int, float)) or not interval > 0:
        raise Error(ErrorKind.INVALID_INPUT, f"interval must be > 0 seconds, got {interval!r}")
    if not isinstance(amplitude, (int, float)) or not 0 < amplitude <= 1:
        raise Error(ErrorKind.INVALID_INPUT, f"amplitude must be in (0, 1], got {amplitude!r}")
    dev = find_device(device, direction="duplex")
    default = dev.default_duplex_config()
    rate = default.sample_rate if sample_rate is None else sample_rate
    config = DuplexStreamConfig(
        default.input_channels,
        default.output_channels,
        rate,
        BufferSize.DEFAULT if buffer_size is None else BufferSize.fixed(buffer_size),
    )
    if (
        isinstance(input_channel, bool)
        or not isinstance(input_channel, int)
        or not (0 <= input_channel < config.input_channels)
    ):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"input_channel must be 0..{config.input_channels - 1}, got {input_channel!r}",
        )
    loop = _ImpulseLoop(rate, impulses, float(interval), float(amplitude), input_channel)
    stream = dev.build_duplex_stream(config, loop, pipelined=pipelined)
    with stream:
        finished = loop.done.wait(timeout)
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
            xruns=stats.xruns,
            late_blocks=stats.late_blocks + stats.skipped_blocks,
            pipelined=pipelined,
        )
