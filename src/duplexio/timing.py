"""Time as a stream's callback sees it: timestamps, block info, latency.

What lives here: `CallbackTimestamp`, `CallbackInfo` and
`DuplexCallbackInfo` (passed to callbacks, one per block),
`StreamLatency`, and exact integer conversions between frames and
nanoseconds. All times are integer nanoseconds on ``CLOCK_MONOTONIC``, the
clock of `time.monotonic_ns()` and of ``stream.now()``.

What does not live here: reading the clock or the device's timing (the
engine and the hosts do that), and stream statistics (``duplexio.stream``).
The block classes are deliberately small ``__slots__`` classes rather than
dataclasses: one is made per block per stream, and they are immutable by
convention only.
"""

from __future__ import annotations

from typing import NamedTuple

from duplexio._validate import whole

__all__ = [
    "CallbackInfo",
    "CallbackTimestamp",
    "DuplexCallbackInfo",
    "StreamLatency",
    "frames_to_ns",
    "ns_to_frames",
]

_NS_PER_S = 1_000_000_000


class CallbackTimestamp:
    """When a block was handled and when its first frame met the device.

    Parameters
    ----------
    callback
        When the device cycle that produced this block started, in ns on
        ``CLOCK_MONOTONIC``.
    device
        For input, when the block's first frame was captured; for output,
        when its first frame will be played. In ns on ``CLOCK_MONOTONIC``.

    Notes
    -----
    In a duplex stream, ``output.device - input.device`` is the device's
    round-trip latency and is the same for every block.
    """

    __slots__ = ("callback", "device")
    callback: int
    device: int

    def __init__(self, callback: int, device: int) -> None:
        self.callback = callback
        self.device = device

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallbackTimestamp):
            return NotImplemented
        return self.callback == other.callback and self.device == other.device

    def __hash__(self) -> int:
        return hash((self.callback, self.device))

    def __repr__(self) -> str:
        return f"CallbackTimestamp(callback={self.callback}, device={self.device})"


class CallbackInfo:
    """What a callback is told about its block, for one direction.

    Parameters
    ----------
    timestamp
        When the block was handled and when its first frame met the device.
    xrun
        True if a glitch (overrun, underrun, or a block missed because a
        callback was late) happened since the previous block.
    frames
        Frames in this block.
    lost_frames
        Input frames lost since the previous block (cycles the device or
        server dropped, blocks the callback was too busy to get): this
        block's timestamps are ``frames + lost_frames`` frames after the
        previous block's. A late callback loses no input frame, so a block
        may have ``xrun`` with ``lost_frames == 0``.
    """

    __slots__ = ("frames", "lost_frames", "timestamp", "xrun")
    timestamp: CallbackTimestamp
    xrun: bool
    frames: int
    lost_frames: int

    def __init__(
        self, timestamp: CallbackTimestamp, xrun: bool, frames: int, lost_frames: int = 0
    ) -> None:
        self.timestamp = timestamp
        self.xrun = xrun
        self.frames = frames
        self.lost_frames = lost_frames

    def _key(self) -> tuple[CallbackTimestamp, bool, int, int]:
        return (self.timestamp, self.xrun, self.frames, self.lost_frames)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallbackInfo):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        lost = f", lost_frames={self.lost_frames}" if self.lost_frames else ""
        return f"CallbackInfo({self.timestamp!r}, xrun={self.xrun}, frames={self.frames}{lost})"


class DuplexCallbackInfo:
    """What a duplex callback is told about its block: both directions.

    Parameters
    ----------
    input
        The captured block's info.
    output
        The played block's info.
    """

    __slots__ = ("input", "output")
    input: CallbackInfo
    output: CallbackInfo

    def __init__(self, input: CallbackInfo, output: CallbackInfo) -> None:
        self.input = input
        self.output = output

    @property
    def xrun(self) -> bool:
        """True if either direction glitched since the previous block."""
        return self.input.xrun or self.output.xrun

    @property
    def frames(self) -> int:
        """Frames in this block (the same in both directions)."""
        return self.input.frames

    @property
    def lost_frames(self) -> int:
        """Input frames lost since the previous block (`CallbackInfo.lost_frames`)."""
        return self.input.lost_frames

    @property
    def round_trip_ns(self) -> int:
        """Output playback instant minus input capture instant, in ns.

        The device's round-trip latency; constant for the life of a stream.
        """
        return self.output.timestamp.device - self.input.timestamp.device

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DuplexCallbackInfo):
            return NotImplemented
        return self.input == other.input and self.output == other.output

    def __hash__(self) -> int:
        return hash((self.input, self.output))

    def __repr__(self) -> str:
        return f"DuplexCallbackInfo(input={self.input!r}, output={self.output!r})"


class StreamLatency(NamedTuple):
    """A stream's latency in each direction, in frames.

    Attributes
    ----------
    input
        Frames between a sound reaching the device and its frame reaching
        the callback.
    output
        Frames between the callback writing a frame and the device playing it.
    """

    input: int
    output: int

    @property
    def round_trip(self) -> int:
        """``input + output``, in frames."""
        return self.input + self.output


def frames_to_ns(frames: int, sample_rate: int) -> int:
    """The duration of ``frames`` frames at ``sample_rate`` Hz, in ns.

    Exact: computed with integers and rounded half up (toward +infinity), so
    the same inputs give the same answer everywhere, including the engine.

    Raises
    ------
    Error
        ``INVALID_INPUT`` if an argument is not an integer or the rate is < 1.
    """
    f = whole("frames", frames, minimum=None)
    rate = whole("sample_rate", sample_rate, unit="Hz")
    # floor(x + 1/2) with x = f * 1e9 / rate, all in integers.
    return (2 * f * _NS_PER_S + rate) // (2 * rate)


def ns_to_frames(ns: int, sample_rate: int) -> int:
    """The number of frames ``ns`` nanoseconds spans at ``sample_rate`` Hz.

    Exact: computed with integers and rounded half up (toward +infinity).

    Raises
    ------
    Error
        ``INVALID_INPUT`` if an argument is not an integer or the rate is < 1.
    """
    t = whole("ns", ns, minimum=None)
    rate = whole("sample_rate", sample_rate, unit="Hz")
    return (2 * t * rate + _NS_PER_S) // (2 * _NS_PER_S)
