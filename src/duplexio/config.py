"""Stream configurations: what a stream asks for and what a device offers.

What lives here: the requests (`StreamConfig`,
`DuplexStreamConfig`, `BufferSize`), the offers a device lists
(`SupportedStreamConfigRange`, `SupportedStreamConfig`,
`SupportedBufferSize`), and `check_config()`, which every host
uses to reject a request before it opens anything. All of it is plain,
immutable values checked when they are made.

What does not live here: sample formats and conversions
(`duplexio.formats`), and how a host finds its devices' ranges
(``duplexio.hosts``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import ClassVar, NoReturn, final

from duplexio._validate import checked_methods, whole
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat

__all__ = [
    "MAX_SAMPLE_RATE",
    "STANDARD_SAMPLE_RATES",
    "BufferSize",
    "DuplexStreamConfig",
    "StreamConfig",
    "StreamKind",
    "SupportedBufferSize",
    "SupportedStreamConfig",
    "SupportedStreamConfigRange",
    "check_config",
    "device_period",
]

STANDARD_SAMPLE_RATES: tuple[int, ...] = (48000, 44100)
"""Sample rates (Hz) preferred by `SupportedStreamConfigRange.with_standard_sample_rate()`,
best first."""

MAX_SAMPLE_RATE = 10_000_000
"""The highest sample rate (Hz) a config accepts; anything above is a typo."""


def _invalid(field: str, value: object, accepted: str) -> NoReturn:
    raise Error(ErrorKind.INVALID_INPUT, f"{field} must be {accepted}, got {shown(value)}")


MAX_CHANNELS = 4096
"""The most channels a config accepts (beyond any interface or server's)."""

MAX_BUFFER_FRAMES = 1 << 20
"""The longest block (frames) a config accepts: about 22 s at 48 kHz."""


def _check_count(field: str, value: object) -> int:
    return whole(field, value, maximum=MAX_CHANNELS)


def _check_rate(field: str, value: object) -> int:
    # A whole-number float (48000.0, what a device reports as its rate in
    # other libraries) is that rate; 44100.5 is refused.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return whole(field, value, maximum=MAX_SAMPLE_RATE, unit="Hz")


def _check_frames(field: str, value: object) -> int:
    return whole(field, value, maximum=MAX_BUFFER_FRAMES, unit="frames")


@checked_methods
@final
class BufferSize:
    """The number of frames per block a stream asks for.

    - `BufferSize.DEFAULT`: whatever the device or server runs.
    - `BufferSize.fixed()`: blocks of exactly that many frames, on any
      device. Where the device runs another period the engine re-blocks
      (the output is delayed by the few frames that takes, counted in
      `Stream.latency`); `Stream.device_buffer_size` says what the device
      runs.
    - `BufferSize.device()`: the device itself runs periods of that many
      frames, or the stream is refused with ``Error(UNSUPPORTED_CONFIG)``
      (a JACK server's period is the server's).
    - ``BufferSize.fixed(n, device_period=m)``: n-frame blocks, re-blocked
      from m-frame device periods, which the device must run (for a short
      device period under a long analysis block).

    Instances are immutable, hashable and compare by value; there is one
    ``DEFAULT`` instance, so ``size is BufferSize.DEFAULT`` also works.

    Attributes
    ----------
    DEFAULT : BufferSize
        Whatever the device or server is using (for JACK, its period).
    """

    __slots__ = ("_device", "_frames")
    _frames: int | None
    _device: int | None
    DEFAULT: ClassVar[BufferSize]

    def __new__(cls, *args: NoReturn, **kwargs: NoReturn) -> BufferSize:
        # One way to make one: a class method or BufferSize.DEFAULT. The
        # NoReturn arguments make type checkers flag BufferSize(n) too.
        raise Error(
            ErrorKind.INVALID_INPUT,
            "use BufferSize.fixed(frames), BufferSize.device(frames) or BufferSize.DEFAULT, "
            "not BufferSize(...)",
        )

    @classmethod
    def _make(cls, frames: int | None, device: int | None = None) -> BufferSize:
        self = object.__new__(cls)
        object.__setattr__(self, "_frames", frames)
        object.__setattr__(self, "_device", device)
        return self

    @classmethod
    def fixed(cls, frames: int, device_period: int | None = None) -> BufferSize:
        """Ask for blocks of ``frames`` frames, whatever the device's period.

        Parameters
        ----------
        frames
            Frames per callback block (a Python or numpy integer >= 1).
        device_period
            The period the device must run (frames), or None to let the
            host pick: ``frames`` itself where the device can run it, else
            the period that adds the least re-blocking delay.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for 0, negatives, bools and non-integers
            (including floats such as 256.0), in either argument.
        """
        period = None if device_period is None else _check_frames("device_period", device_period)
        return cls._make(_check_frames("buffer size", frames), period)

    @classmethod
    def device(cls, frames: int) -> BufferSize:
        """Ask for the device itself to run periods of ``frames`` frames.

        The blocks are the device's periods, with no re-blocking delay; a
        device that cannot run that period refuses the stream with
        ``Error(UNSUPPORTED_CONFIG)`` naming the periods it can.

        Raises
        ------
        Error
            ``INVALID_INPUT`` as for `fixed()`.
        """
        checked = _check_frames("buffer size", frames)
        return cls._make(checked, checked)

    @property
    def device_period(self) -> int | None:
        """The period the device must run (frames), or None where the host picks it."""
        return self._device

    @property
    def frames(self) -> int | None:
        """Frames per block asked for, or None for `DEFAULT`."""
        return self._frames

    @property
    def is_default(self) -> bool:
        """True for `DEFAULT`, False for a fixed size."""
        return self._frames is None

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {shown(name)}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {shown(name)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BufferSize):
            return NotImplemented
        return (self._frames, self._device) == (other._frames, other._device)

    def __hash__(self) -> int:
        return hash((BufferSize, self._frames, self._device))

    def __repr__(self) -> str:
        if self._frames is None:
            return "BufferSize.DEFAULT"
        if self._device == self._frames:
            return f"BufferSize.device({self._frames})"
        if self._device is not None:
            return f"BufferSize.fixed({self._frames}, device_period={self._device})"
        return f"BufferSize.fixed({self._frames})"

    def __reduce__(self) -> tuple[object, ...]:
        # Pickle by value and keep DEFAULT a singleton after a round trip.
        return (_restore_buffer_size, (self._frames, self._device))


BufferSize.DEFAULT = BufferSize._make(None)


def _restore_buffer_size(frames: int | None, device: int | None = None) -> BufferSize:
    return BufferSize.DEFAULT if frames is None else BufferSize.fixed(frames, device)


@checked_methods
@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """What an input or output stream asks of a device.

    Parameters
    ----------
    channels
        Channels per frame (an integer >= 1).
    sample_rate
        Frames per second, in Hz (an integer, 1..10,000,000; a whole-number
        float such as 48000.0 is taken as that integer).
    buffer_size
        Frames per callback block: a `BufferSize` (`BufferSize.DEFAULT` lets
        the device choose), or an int n for ``BufferSize.fixed(n)``.

    Raises
    ------
    Error
        ``INVALID_INPUT`` naming the field, the value and what is accepted.
        Bools and fractional floats are refused; numpy integers are accepted
        and stored as ``int``.
    """

    channels: int
    sample_rate: int
    buffer_size: BufferSize = BufferSize.DEFAULT

    def __post_init__(self) -> None:
        # object.__setattr__ because the dataclass is frozen; this is where
        # numpy integers become plain ints.
        object.__setattr__(self, "channels", _check_count("channels", self.channels))
        object.__setattr__(self, "sample_rate", _check_rate("sample_rate", self.sample_rate))
        object.__setattr__(self, "buffer_size", _check_buffer_size(self.buffer_size))


@checked_methods
@dataclasses.dataclass(frozen=True)
class DuplexStreamConfig:
    """What a duplex stream asks of a device: both directions, one clock.

    Parameters
    ----------
    input_channels
        Channels per captured frame (an integer >= 1).
    output_channels
        Channels per played frame (an integer >= 1).
    sample_rate
        Frames per second for both directions, in Hz (an integer,
        1..10,000,000).
    buffer_size
        Frames per callback block, the same for both directions;
        `BufferSize.DEFAULT` lets the device choose.

    Raises
    ------
    Error
        ``INVALID_INPUT`` naming the field, the value and what is accepted.
    """

    input_channels: int
    output_channels: int
    sample_rate: int
    buffer_size: BufferSize = BufferSize.DEFAULT

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "input_channels", _check_count("input_channels", self.input_channels)
        )
        object.__setattr__(
            self, "output_channels", _check_count("output_channels", self.output_channels)
        )
        object.__setattr__(self, "sample_rate", _check_rate("sample_rate", self.sample_rate))
        object.__setattr__(self, "buffer_size", _check_buffer_size(self.buffer_size))

    def input_config(self) -> StreamConfig:
        """The input half: ``input_channels`` at the shared rate and buffer size."""
        return StreamConfig(self.input_channels, self.sample_rate, self.buffer_size)

    def output_config(self) -> StreamConfig:
        """The output half: ``output_channels`` at the shared rate and buffer size."""
        return StreamConfig(self.output_channels, self.sample_rate, self.buffer_size)


def _check_buffer_size(value: object) -> BufferSize:
    if isinstance(value, BufferSize):
        return value
    if isinstance(value, int) or (type(value).__module__ == "numpy" and hasattr(value, "dtype")):
        return BufferSize.fixed(value)  # type: ignore[arg-type]
    _invalid("buffer_size", value, "BufferSize.DEFAULT, BufferSize.fixed(frames) or an int")


@checked_methods
@final
class SupportedBufferSize:
    """The block sizes a device accepts, as a device reports them.

    Either a range, `SupportedBufferSize.range()`, or
    `SupportedBufferSize.UNKNOWN` when the device does not say.
    Immutable, hashable, compared by value.

    Attributes
    ----------
    UNKNOWN : SupportedBufferSize
        The device did not report a range. Every size is passed on to it as
        asked, and the device may refuse or adjust it when the stream opens.
    """

    __slots__ = ("_max", "_min")
    _min: int | None
    _max: int | None
    UNKNOWN: ClassVar[SupportedBufferSize]

    def __new__(cls, *args: NoReturn, **kwargs: NoReturn) -> SupportedBufferSize:
        raise Error(
            ErrorKind.INVALID_INPUT,
            "use SupportedBufferSize.range(min_frames, max_frames) or "
            "SupportedBufferSize.UNKNOWN, not SupportedBufferSize(...)",
        )

    @classmethod
    def _make(cls, lo: int | None, hi: int | None) -> SupportedBufferSize:
        self = object.__new__(cls)
        object.__setattr__(self, "_min", lo)
        object.__setattr__(self, "_max", hi)
        return self

    @classmethod
    def range(cls, min_frames: int, max_frames: int) -> SupportedBufferSize:
        """Every size from ``min_frames`` to ``max_frames`` frames, inclusive.

        Raises
        ------
        Error
            ``INVALID_INPUT`` unless both are whole numbers of frames >= 1
            and ``min_frames <= max_frames``.
        """
        lo = _check_frames("min_frames", min_frames)
        hi = _check_frames("max_frames", max_frames)
        if lo > hi:
            _invalid("max_frames", max_frames, f">= min_frames ({lo})")
        return cls._make(lo, hi)

    @property
    def min_frames(self) -> int | None:
        """The smallest size in frames, or None if `UNKNOWN`."""
        return self._min

    @property
    def max_frames(self) -> int | None:
        """The largest size in frames, or None if `UNKNOWN`."""
        return self._max

    @property
    def is_unknown(self) -> bool:
        """True for `UNKNOWN`."""
        return self._min is None

    def contains(self, frames: int) -> bool:
        """Whether a block of ``frames`` frames may be asked for.

        Always True for `UNKNOWN`: the device gets to decide.
        """
        if self._min is None or self._max is None:
            return True
        return self._min <= frames <= self._max

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {shown(name)}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {shown(name)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SupportedBufferSize):
            return NotImplemented
        return (self._min, self._max) == (other._min, other._max)

    def __hash__(self) -> int:
        return hash((SupportedBufferSize, self._min, self._max))

    def __str__(self) -> str:
        if self._min is None:
            return "unknown"
        return f"{self._min}..{self._max} frames"

    def __repr__(self) -> str:
        if self._min is None:
            return "SupportedBufferSize.UNKNOWN"
        return f"SupportedBufferSize.range({self._min}, {self._max})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_restore_supported_buffer_size, (self._min, self._max))


SupportedBufferSize.UNKNOWN = SupportedBufferSize._make(None, None)


def _restore_supported_buffer_size(lo: int | None, hi: int | None) -> SupportedBufferSize:
    if lo is None or hi is None:
        return SupportedBufferSize.UNKNOWN
    return SupportedBufferSize.range(lo, hi)


@checked_methods
@dataclasses.dataclass(frozen=True)
class SupportedStreamConfig:
    """One configuration a device can run: a point picked from a range.

    Parameters
    ----------
    channels
        Channels per frame.
    sample_rate
        Frames per second, in Hz.
    buffer_size
        The block sizes (frames) the device accepts at this configuration.
    sample_format
        The device's native sample format for this configuration.
    """

    channels: int
    sample_rate: int
    buffer_size: SupportedBufferSize
    sample_format: SampleFormat

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _check_count("channels", self.channels))
        object.__setattr__(self, "sample_rate", _check_rate("sample_rate", self.sample_rate))

    def config(self, buffer_size: BufferSize = BufferSize.DEFAULT) -> StreamConfig:
        """A request for this configuration.

        Parameters
        ----------
        buffer_size
            Frames per block to ask for; it is checked against
            `buffer_size` when the stream is built, not here.
        """
        return StreamConfig(self.channels, self.sample_rate, buffer_size)


@checked_methods
@dataclasses.dataclass(frozen=True)
class SupportedStreamConfigRange:
    """A family of configurations a device can run, as the device lists it.

    Parameters
    ----------
    min_channels, max_channels
        Channels per frame, inclusive bounds.
    min_sample_rate, max_sample_rate
        Frames per second in Hz, inclusive bounds; any rate between them is
        accepted.
    buffer_size
        The block sizes (frames) accepted across this range.
    sample_format
        The sample format of this range.

    Raises
    ------
    Error
        ``INVALID_INPUT`` if a bound is not a whole number >= 1 or a minimum
        exceeds its maximum.
    """

    min_channels: int
    max_channels: int
    min_sample_rate: int
    max_sample_rate: int
    buffer_size: SupportedBufferSize
    sample_format: SampleFormat

    def __post_init__(self) -> None:
        lo_ch = _check_count("min_channels", self.min_channels)
        hi_ch = _check_count("max_channels", self.max_channels)
        if lo_ch > hi_ch:
            _invalid("max_channels", self.max_channels, f">= min_channels ({lo_ch})")
        lo_sr = _check_rate("min_sample_rate", self.min_sample_rate)
        hi_sr = _check_rate("max_sample_rate", self.max_sample_rate)
        if lo_sr > hi_sr:
            _invalid("max_sample_rate", self.max_sample_rate, f">= min_sample_rate ({lo_sr})")
        object.__setattr__(self, "min_channels", lo_ch)
        object.__setattr__(self, "max_channels", hi_ch)
        object.__setattr__(self, "min_sample_rate", lo_sr)
        object.__setattr__(self, "max_sample_rate", hi_sr)

    def supports_rate(self, rate: int) -> bool:
        """Whether ``rate`` (Hz) is within this range."""
        return self.min_sample_rate <= rate <= self.max_sample_rate

    def supports_channels(self, n: int) -> bool:
        """Whether ``n`` channels per frame is within this range."""
        return self.min_channels <= n <= self.max_channels

    def with_sample_rate(self, rate: int) -> SupportedStreamConfig:
        """This range at ``rate`` Hz.

        The channel count is stereo where the range allows it:
        ``max(min_channels, min(max_channels, 2))``.

        Raises
        ------
        Error
            ``INVALID_INPUT`` if ``rate`` is not a whole number of Hz;
            ``UNSUPPORTED_CONFIG`` naming the rate and the range if it is
            outside this range.
        """
        hz = _check_rate("sample_rate", rate)
        if not self.supports_rate(hz):
            raise Error(
                ErrorKind.UNSUPPORTED_CONFIG,
                f"sample rate {hz} Hz is outside {_hz_range(self)}",
            )
        channels = max(self.min_channels, min(self.max_channels, 2))
        return SupportedStreamConfig(channels, hz, self.buffer_size, self.sample_format)

    def with_max_sample_rate(self) -> SupportedStreamConfig:
        """This range at its highest rate (see `with_sample_rate()`)."""
        return self.with_sample_rate(self.max_sample_rate)

    def with_standard_sample_rate(self) -> SupportedStreamConfig:
        """This range at 48000 Hz if it can, else 44100 Hz, else its highest rate.

        See `STANDARD_SAMPLE_RATES` and `with_sample_rate()`.
        """
        for rate in STANDARD_SAMPLE_RATES:
            if self.supports_rate(rate):
                return self.with_sample_rate(rate)
        return self.with_max_sample_rate()


def _hz_range(r: SupportedStreamConfigRange) -> str:
    return _spans([(r.min_sample_rate, r.max_sample_rate)], " Hz")


def _spans(intervals: Sequence[tuple[int, int]], unit: str = "") -> str:
    """Inclusive intervals as text: '1..2, 4..8' (merged where they touch)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(set(intervals)):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return ", ".join(f"{lo}{unit}" if lo == hi else f"{lo}..{hi}{unit}" for lo, hi in merged)


def check_config(
    config: StreamConfig,
    ranges: Sequence[SupportedStreamConfigRange],
    sample_format: SampleFormat,
    *,
    device: str,
    direction: str,
) -> list[SupportedStreamConfigRange]:
    """Refuse a request that none of a device's ranges can run.

    Hosts call this before opening anything, once per direction. The checks
    run in the order format, channels, sample rate, buffer size, each among
    the ranges that passed the ones before, and the first that fails is
    reported.

    Parameters
    ----------
    config
        The request.
    ranges
        The device's supported ranges for this direction.
    sample_format
        The sample format the stream's arrays will have.
    device
        The device, as it should appear in the message (its id or name).
    direction
        ``"input"`` or ``"output"``, as it should appear in the message.

    Raises
    ------
    Error
        ``UNSUPPORTED_CONFIG`` naming the device, the direction, the value
        that cannot be run and what would have been accepted. Only a
        request's `BufferSize.device_period` is checked against the device's
        periods: the engine re-blocks to any block size.

    Returns
    -------
    list[SupportedStreamConfigRange]
        The ranges that can run it (`device_period()` picks among their
        buffer sizes).
    """
    if not ranges:
        raise Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"device {shown(device)} offers no {direction} configurations",
        )

    fitting = [r for r in ranges if r.sample_format is sample_format]
    if not fitting:
        formats = ", ".join(dict.fromkeys(r.sample_format.name for r in ranges))
        raise Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"device {shown(device)} cannot do {direction} sample format {sample_format.name}; "
            f"it accepts {formats}",
        )

    before, fitting = fitting, [r for r in fitting if r.supports_channels(config.channels)]
    if not fitting:
        accepted = _spans([(r.min_channels, r.max_channels) for r in before])
        raise Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"device {shown(device)} cannot do {config.channels} {direction} "
            f"{_plural(config.channels, 'channel')}; it accepts {accepted} "
            f"(format {sample_format.name})",
        )

    before, fitting = fitting, [r for r in fitting if r.supports_rate(config.sample_rate)]
    if not fitting:
        accepted = _spans([(r.min_sample_rate, r.max_sample_rate) for r in before], " Hz")
        raise Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"device {shown(device)} cannot run {direction} at {config.sample_rate} Hz with "
            f"{config.channels} {_plural(config.channels, 'channel')}; it accepts {accepted}",
        )

    frames = config.buffer_size.device_period
    if frames is not None and not any(r.buffer_size.contains(frames) for r in fitting):
        sizes = _spans(
            [
                (r.buffer_size.min_frames, r.buffer_size.max_frames)
                for r in fitting
                if r.buffer_size.min_frames is not None and r.buffer_size.max_frames is not None
            ],
            " frames",
        )
        raise Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"device {shown(device)} cannot do this {direction} block size: "
            f"device period {frames} {_plural(frames, 'frame')} is outside {sizes} (use "
            f"BufferSize.fixed({config.buffer_size.frames}) to let the engine re-block)",
        )
    return fitting


def device_period(
    frames: int, ranges: Sequence[Sequence[SupportedStreamConfigRange]], default: int
) -> int:
    """The period a device should run for ``frames``-frame blocks.

    ``frames`` itself where every direction's ranges allow it (no
    re-blocking); else the largest period that divides it or the smallest
    that it divides (re-blocking then delays the output by ``frames -
    gcd(frames, period)``, the least for such a period); else ``default``.

    Parameters
    ----------
    frames
        The block size asked for.
    ranges
        Per direction, the ranges that can run the stream (`check_config()`).
    default
        The device's own period.
    """

    def fits(period: int) -> bool:
        return all(any(r.buffer_size.contains(period) for r in side) for side in ranges)

    if fits(frames):
        return frames
    divisors = sorted(
        {d for k in range(1, math.isqrt(frames) + 1) if frames % k == 0 for d in (k, frames // k)},
        reverse=True,
    )
    longest = max((r.buffer_size.max_frames or 0 for side in ranges for r in side), default=0)
    multiples = range(2 * frames, longest + 1, frames)
    return next((p for p in (*divisors, *multiples) if fits(p)), default)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


class StreamKind(enum.Enum):
    """Which directions a stream runs."""

    INPUT = "input"
    OUTPUT = "output"
    DUPLEX = "duplex"
