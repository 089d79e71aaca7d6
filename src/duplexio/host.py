"""Hosts and devices as users meet them, device ids, and the host registry.

A *host* is an audio API (the virtual host, JACK, ALSA, PulseAudio); it lists
*devices*; a device builds *streams*. This module gives `Host` and
`Device` everything a user calls, built once on the hooks each host
implements (`DeviceHooks`, `HostHooks`, `HostModule`, here; the stream's
side in `duplexio.contract`, which a host author reads first), plus device
ids and which hosts exist. It validates
everything a user passes to ``build_*_stream`` before any host code runs, so
every host rejects bad input the same way. What a stream does once built
lives in `duplexio.stream`; each host's own code lives in its folder
under `duplexio.hosts`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from duplexio._validate import checked, checked_methods, flag, optional_seconds, whole
from duplexio.blocking import ring_frames
from duplexio.config import (
    STANDARD_SAMPLE_RATES,
    DuplexStreamConfig,
    StreamConfig,
    StreamKind,
    SupportedStreamConfig,
    SupportedStreamConfigRange,
    check_config,
    device_period,
)
from duplexio.contract import Backend, CData, StreamParams
from duplexio.declarations import declared_hosts
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat, as_frames
from duplexio.ids import DeviceId, HostId, parse_host_id
from duplexio.stream import ErrorCallback, ProgramSpec, ProgramStream, Stream
from duplexio.timing import StreamLatency
from duplexio.watch import (
    POLL_SECONDS,
    ChangeSource,
    DeviceEvent,
    DeviceWatcher,
    EventDirection,
    Listing,
    Polling,
)

logger = logging.getLogger("duplexio")

DataCallback = Callable[..., None]

#: A device description's direction, where it names one direction only.
_ONE_WAY: dict[str, EventDirection] = {"input": "input", "output": "output"}


#: Each host as its folder declares it, in order of preference.
_DECLARED = {HostId(d.name): d for d in declared_hosts()}
#: The host that works everywhere, used when no real host has devices.
_FALLBACK = next(h for h, d in _DECLARED.items() if d.fallback)


def _built_here(host_id: HostId) -> bool:
    return _DECLARED[host_id].builds_on(sys.platform)


def _host_module(host_id: HostId) -> HostModule:
    module: HostModule = importlib.import_module(f"duplexio.hosts.{host_id.value}")
    return module


@dataclass(frozen=True)
class DeviceDescription:
    """What a device is, for people choosing one.

    Attributes
    ----------
    name
        Human-readable name.
    driver
        The host or driver behind it (``"virtual"``, ``"jackd"``, ...).
    direction
        ``"input"``, ``"output"``, ``"duplex"`` (both, on one clock) or
        ``"input+output"`` (both, but not as one duplex stream).
    details
        Free-form extra lines (card, server, ports, ...).
    """

    name: str
    driver: str
    direction: str
    details: tuple[str, ...] = ()


def _check_callable(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        accepted = "a callable or None" if optional else "a callable"
        raise Error(ErrorKind.INVALID_INPUT, f"{name} must be {accepted}, got {shown(value)}")


def _check_signature(callback: Callable[..., Any], kind: StreamKind) -> None:
    """Refuse a callback that cannot take the stream's arguments now, rather
    than at its first block."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # a builtin or extension callable: not knowable
        return
    wanted = "(input, output, info)" if kind is StreamKind.DUPLEX else "(data, info)"
    try:
        signature.bind(*range(3 if kind is StreamKind.DUPLEX else 2))
    except TypeError:
        name = getattr(callback, "__qualname__", type(callback).__name__)
        hint = (
            " (sounddevice's callbacks run on `import duplexio.sounddevice as sd`)"
            if len(signature.parameters) in (4, 5)
            else ""
        )
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{'an' if kind is StreamKind.INPUT else 'a'} {kind.value} stream's callback "
            f"takes {wanted}; {shown(name)}{signature} "
            f"does not{hint}",
        ) from None


def _check_play_data(data: object, channels: int) -> tuple[Any, SampleFormat]:
    arr, fmt = as_frames(data)
    if arr.shape[1] != channels:
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"data has {arr.shape[1]} channels but the stream's config has {channels}; "
            "pass data of shape (frames, channels) matching the config",
        )
    return arr, fmt


def _check_deadline(deadline: float | None) -> float:
    if deadline is None:
        return Stream.DEFAULT_DEADLINE
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, (int, float))
        or not (0.0 < deadline <= 1.0)
    ):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"deadline is a fraction of the period in (0, 1], got {shown(deadline)}",
        )
    return float(deadline)


#: A direction of a device.
Direction = Literal["input", "output"]


@checked_methods
class DeviceHooks(ABC):
    """What a host's `Device` implements.

    ``Device`` builds everything a user calls (validation, defaults,
    ``build_*_stream``) on these members, once for every host. The abstract
    ones are required; the others have the default behaviour their
    docstrings give. Public members of ``Device`` (``supports_input``,
    ``name``...) may be overridden too; private ones may not.
    """

    @property
    @abstractmethod
    def id(self) -> DeviceId:
        """The device's id, ``"<host>:<name>"``; stable across runs where the host allows."""

    @property
    @abstractmethod
    def description(self) -> DeviceDescription:
        """Name, driver, direction and details of the device."""

    @abstractmethod
    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """The input configurations the device accepts (empty: no input)."""

    @abstractmethod
    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """The output configurations the device accepts (empty: no output)."""

    def _duplex_refusal(self) -> str | None:
        """Why this device cannot run a duplex stream, or None when it can.

        None only where input and output share one clock (a JACK client, a
        sink and its own monitor, the two directions of one PCM): duplex is
        never emulated across clocks. The reason ends up in the
        ``UNSUPPORTED_OPERATION`` message. Default: it refuses.
        """
        return "its input and output do not share a clock"

    def _direction_error(self, direction: Direction) -> Error | None:
        """Why `direction` cannot be used now, or None.

        Asked before a direction whose ranges are empty is reported as
        absent (``UNSUPPORTED_OPERATION``, "has no input"): a direction that
        failed to open for a reason (its server is gone, the device is busy)
        says so instead. Default: None.
        """
        return None

    def _native_channels(self, direction: Direction) -> int | None:
        """The channels the device itself has in ``direction``, where its ranges
        allow more (a server that remixes, JACK ports left unconnected); None,
        the default: its ranges' most."""
        return None

    def _listed_id(self) -> DeviceId:
        """The id of the row that lists this device in its host's ``devices()``.

        A host's default device may be a placeholder that follows the
        server's default (PipeWire's ``@DEFAULT_SINK@``): it names the device
        it stands for now. Default: the device's own id.
        """
        return self.id

    def _preferred_sample_rate(self) -> int | None:
        """The rate (Hz) default configurations use when the ranges allow it.

        For a device with a native rate (a server's, a virtual device's
        default). None, the default: the standard rate (48 kHz, else 44.1 kHz,
        else the highest).
        """
        return None

    @abstractmethod
    def _default_frames(self, sample_rate: int) -> int:
        """Frames per block when the user asks for ``BufferSize.DEFAULT``.

        Must lie in the device's buffer-size range at ``sample_rate``.
        """

    @abstractmethod
    def _open_backend(self, engine: CData, params: StreamParams) -> Backend:
        """Open the device for a validated stream and bind it to the engine.

        The backend's device thread must meet `Backend`'s guarantees;
        it keeps ``engine`` alive for as long as that thread can run. Raise
        `Error` (``DEVICE_NOT_AVAILABLE``, ``DEVICE_BUSY``,
        ``UNSUPPORTED_CONFIG``...) when the device cannot be opened, after
        releasing whatever was opened.
        """


@checked_methods
class HostHooks(ABC):
    """What a host's `Host` implements.

    ``Host`` adds the filters and defaults users call; a host may also
    override its public ``default_input_device``, ``default_output_device``
    and ``device_by_id`` (for ids it can reach without listing them).
    """

    @property
    @abstractmethod
    def id(self) -> HostId:
        """The host's id."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The host's human-readable name."""

    @abstractmethod
    def devices(self) -> list[Device]:
        """All devices the host can reach now, inputs, outputs and duplex.

        Never raises for a server that does not answer: it has no devices then.
        """

    def external_latency(
        self, capture_ports: Sequence[str], playback_ports: Sequence[str]
    ) -> StreamLatency:
        """What this host's graph adds around ports that another host's plugin uses.

        A question one host may ask another through the registry (the ALSA
        host asks JACK about a ``type jack`` PCM's ports) instead of
        importing it. ``capture_ports`` are read by a capture client,
        ``playback_ports`` written by a playback client; the answer is
        (capture side, playback side) in frames.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` for a host without ports (the default),
            ``DEVICE_NOT_AVAILABLE`` when its server does not answer.
        """
        raise Error(ErrorKind.UNSUPPORTED_OPERATION, f"host '{self.id}' has no ports to ask about")

    def _change_source(self) -> ChangeSource:
        """Where a device watcher hears of changes on this host.

        A host whose server notifies changes returns a source fed by those
        notifications, raising ``DEVICE_NOT_AVAILABLE`` while its server is
        down. Default: a listing every `POLL_SECONDS`, for a host that
        cannot tell.
        """
        return Polling(POLL_SECONDS)


class HostModule(Protocol):
    """What each module ``duplexio.hosts.<name>`` provides."""

    def is_available(self) -> bool:
        """True when the host can be used now (its library loads, its server answers)."""
        ...

    def open_host(self) -> Host:
        """The host (called once per process); ``HOST_UNAVAILABLE`` when it cannot be used."""
        ...


@checked_methods
class Device(DeviceHooks):
    """An audio device of a host: a source of input, a sink of output, or both.

    Hosts subclass this and implement the hooks of
    `DeviceHooks` (``id``,
    ``description``, the supported configs, ``_open_backend``...);
    everything a user calls to build a stream is implemented here, once, so
    that validation and error messages are the same on every host.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every host's public methods refuse a misspelt keyword with an Error.
        super().__init_subclass__(**kwargs)
        checked_methods(cls)

    @property
    def name(self) -> str:
        """The device's human-readable name."""
        return self.description.name

    def supports_input(self) -> bool:
        """True when the device can capture."""
        return bool(self.supported_input_configs())

    def supports_output(self) -> bool:
        """True when the device can play."""
        return bool(self.supported_output_configs())

    def supports_duplex(self) -> bool:
        """True when input and output run on one clock, so a duplex stream can be built."""
        return self._duplex_refusal() is None

    def default_input_config(self) -> SupportedStreamConfig:
        """The configuration an input stream uses when the user has no preference.

        Float32 (else the first format offered), the device's own rate (its
        server's, PortAudio's default rate for it), else 48 kHz, else 44.1 kHz,
        else the highest; up to two channels.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` when the device has no input.
        """
        return self._default_config("input")

    def default_output_config(self) -> SupportedStreamConfig:
        """The configuration an output stream uses when the user has no preference.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` when the device has no output.
        """
        return self._default_config("output")

    def default_duplex_config(self) -> DuplexStreamConfig:
        """The configuration a duplex stream uses when the user has no preference.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` when the device cannot run duplex.
        """
        self._require_duplex()
        inp = self.default_input_config()
        out = self.default_output_config()
        return DuplexStreamConfig(inp.channels, out.channels, out.sample_rate)

    def _supported(self, direction: Direction) -> list[SupportedStreamConfigRange]:
        """The ranges of one direction; the host's reason, or ``UNSUPPORTED_OPERATION``,
        when it has none."""
        ranges = (
            self.supported_input_configs()
            if direction == "input"
            else self.supported_output_configs()
        )
        if not ranges:
            reason = self._direction_error(direction)
            if reason is not None:
                raise reason
            raise Error(ErrorKind.UNSUPPORTED_OPERATION, f"device '{self.id}' has no {direction}")
        return ranges

    def _default_config(self, direction: Direction) -> SupportedStreamConfig:
        """Float32 where offered, at the device's own rate, else the standard one,
        from whichever range has it: a device that lists each rate as a range
        of its own (PortAudio's) is not held to the first, lowest one (8 kHz)."""
        ranges = self._supported(direction)
        pool = [r for r in ranges if r.sample_format is SampleFormat.F32] or ranges
        own = self._preferred_sample_rate()
        for rate in (own, *STANDARD_SAMPLE_RATES):
            for r in pool:
                if rate is not None and r.supports_rate(rate):
                    return r.with_sample_rate(rate)
        return max(pool, key=lambda r: r.max_sample_rate).with_max_sample_rate()

    def _require_duplex(self) -> None:
        reason = self._duplex_refusal()
        if reason is not None:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"device '{self.id}' cannot run a duplex stream: {reason}. "
                "Use separate input and output streams, or a device whose "
                "supports_duplex() is true",
            )

    # -- building streams ----------------------------------------------------

    def build_input_stream(
        self,
        config: StreamConfig | SupportedStreamConfig,
        callback: DataCallback | None = None,
        error_callback: ErrorCallback | None = None,
        sample_format: SampleFormat | str = SampleFormat.F32,
        timeout: float | None = None,
        *,
        pipelined: bool = False,
        deadline: float | None = None,
        realtime: bool = True,
        ring_seconds: float | None = None,
    ) -> Stream:
        """Build a stopped input stream.

        Parameters
        ----------
        config
            Channels, sample rate (Hz) and buffer size (frames per block); a
            `SupportedStreamConfig` (what ``default_input_config()`` returns)
            is taken at the device's default block size.
        callback
            ``callback(data, info)``: ``data`` is a read-only-by-convention
            numpy array of shape ``(frames, channels)`` in ``sample_format``'s
            dtype, reused every block (copy what you keep); ``info`` is a
            `CallbackInfo` whose
            ``timestamp.device`` is the capture instant (ns) of ``data[0]``.
            Runs on a Python worker thread, never on the audio thread.
            None (the default) builds a *blocking* stream: no callback, the
            engine's device thread fills a ring that ``stream.read()``,
            ``stream.blocks()`` and ``async for`` take from.
        error_callback
            ``error_callback(error)`` for errors while running, called from
            a non-real-time thread, in order. Without it errors are logged and
            kept in ``stream.error``.
        sample_format
            The callback's sample format (the engine converts).
        timeout
            Seconds the device may go without delivering a block while the
            stream runs before it is reported as ``TIMED_OUT`` and stopped
            (default 5 s).
        pipelined
            Give the callback a whole period (its output plays one period
            later). Input streams have no output, so this only changes
            bookkeeping here; it matters for output and duplex streams.
        deadline
            Fraction of the period the device thread waits for the callback
            (default 0.8). A callback that misses it is counted as late.
        realtime
            Run the callback's worker thread with real-time scheduling
            (``SCHED_FIFO``, below the device thread) where the system allows
            it (default). Refused, the stream runs on at normal priority and
            a ``REALTIME_DENIED`` warning says so once;
            ``stream.stats.worker_realtime`` tells which it got. False opts out.
        ring_seconds
            A blocking stream's ring, per direction, in seconds of audio
            (default 2.0; at least two blocks). Ignored with a callback.

        Returns
        -------
        Stream
            Built stopped; ``start()`` it or use it as a context manager.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for malformed arguments, ``UNSUPPORTED_CONFIG``
            for values outside the device's ranges, ``UNSUPPORTED_OPERATION``
            when the device has no input, ``DEVICE_NOT_AVAILABLE`` when it
            is gone. All before anything is opened.
        """
        cfg = _stream_config(config)
        fmt = SampleFormat.parse(sample_format)
        return self._build(
            kind=StreamKind.INPUT,
            in_cfg=cfg,
            in_fmt=fmt,
            callback=callback,
            error_callback=error_callback,
            timeout=timeout,
            pipelined=pipelined,
            deadline=deadline,
            realtime=realtime,
            ring_seconds=ring_seconds,
        )

    def build_output_stream(
        self,
        config: StreamConfig | SupportedStreamConfig,
        callback: DataCallback | None = None,
        error_callback: ErrorCallback | None = None,
        sample_format: SampleFormat | str = SampleFormat.F32,
        timeout: float | None = None,
        *,
        pipelined: bool = False,
        deadline: float | None = None,
        realtime: bool = True,
        ring_seconds: float | None = None,
    ) -> Stream:
        """Build a stopped output stream.

        ``callback(data, info)`` fills ``data``, a numpy array of shape
        ``(frames, channels)`` pre-filled with the format's equilibrium
        (silence) before each call; ``info.timestamp.device`` is when
        ``data[0]`` will be played (ns). Other parameters, return value and
        errors are as for `build_input_stream()`. Without a callback the
        stream is blocking: `write()` queues
        what it plays.
        """
        cfg = _stream_config(config)
        fmt = SampleFormat.parse(sample_format)
        return self._build(
            kind=StreamKind.OUTPUT,
            out_cfg=cfg,
            out_fmt=fmt,
            callback=callback,
            error_callback=error_callback,
            timeout=timeout,
            pipelined=pipelined,
            deadline=deadline,
            realtime=realtime,
            ring_seconds=ring_seconds,
        )

    def build_duplex_stream(
        self,
        config: DuplexStreamConfig,
        callback: DataCallback | None = None,
        error_callback: ErrorCallback | None = None,
        input_format: SampleFormat | str = SampleFormat.F32,
        output_format: SampleFormat | str = SampleFormat.F32,
        timeout: float | None = None,
        *,
        pipelined: bool = False,
        deadline: float | None = None,
        realtime: bool = True,
        ring_seconds: float | None = None,
    ) -> Stream:
        """Build a stopped synchronized duplex stream.

        ``callback(input, output, info)`` gets the input block and fills the
        output block of the same device cycle. ``info`` is a
        `DuplexCallbackInfo`;
        ``info.output.timestamp.device - info.input.timestamp.device`` is the
        round-trip latency (ns) and is the same in every block.

        Without a callback the stream is blocking (``read()`` and
        ``write()``): what is written before ``start()`` plays from the first
        cycle, and input frame ``k + stream.latency.round_trip`` is what
        the output played as frame ``k``, until a flagged gap or underflow.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` (with the reason) when the device's
            input and output do not share a clock; otherwise as
            `build_input_stream()`.
        """
        cfg = _expect(config, DuplexStreamConfig, "config")
        in_fmt = SampleFormat.parse(input_format)
        out_fmt = SampleFormat.parse(output_format)
        self._require_duplex()
        return self._build(
            kind=StreamKind.DUPLEX,
            in_cfg=cfg.input_config(),
            out_cfg=cfg.output_config(),
            in_fmt=in_fmt,
            out_fmt=out_fmt,
            callback=callback,
            error_callback=error_callback,
            timeout=timeout,
            pipelined=pipelined,
            deadline=deadline,
            realtime=realtime,
            ring_seconds=ring_seconds,
        )

    # -- callback-free streams -------------------------------------------------

    def build_play_stream(
        self,
        config: StreamConfig | SupportedStreamConfig,
        data: Any,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> ProgramStream:
        """Build a stopped output stream that plays ``data`` once, inside the engine.

        No Python runs per block: the device thread copies each block from
        the stream's own copy of ``data``, so playback survives any GIL stall.
        The stream stops by itself once the last frame has left the device
        (the output latency after the last block).

        Parameters
        ----------
        config
            Channels (must equal ``data``'s), sample rate (Hz), buffer size.
        data
            Shape ``(frames,)`` or ``(frames, channels)``; its dtype picks the
            sample format (``float32`` is ``F32``, ``int16`` is ``I16``...).
            Copied: changing it afterwards has no effect.
        error_callback, timeout
            As for `build_output_stream()`.

        Returns
        -------
        ProgramStream
            Built stopped; ``start()``, then ``wait()``.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for data of the wrong shape, channel count or
            dtype; otherwise as `build_output_stream()`. All before
            anything is opened.
        """
        cfg = _stream_config(config)
        play, fmt = _check_play_data(data, cfg.channels)
        return _program(
            self._build(
                kind=StreamKind.OUTPUT,
                out_cfg=cfg,
                out_fmt=fmt,
                program=ProgramSpec(play, 0),
                error_callback=error_callback,
                timeout=timeout,
            )
        )

    def build_rec_stream(
        self,
        config: StreamConfig | SupportedStreamConfig,
        frames: int,
        error_callback: ErrorCallback | None = None,
        sample_format: SampleFormat | str = SampleFormat.F32,
        timeout: float | None = None,
    ) -> ProgramStream:
        """Build a stopped input stream that records ``frames`` frames, inside the engine.

        The recording (``stream.recording``, shape ``(frames, channels)`` in
        ``sample_format``'s dtype) starts with the first frame captured after
        ``start()``; the stream stops by itself when it is full.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for ``frames`` < 1; otherwise as
            `build_input_stream()`.
        """
        cfg = _stream_config(config)
        fmt = SampleFormat.parse(sample_format)
        spec = ProgramSpec(None, whole("frames", frames))
        return _program(
            self._build(
                kind=StreamKind.INPUT,
                in_cfg=cfg,
                in_fmt=fmt,
                program=spec,
                error_callback=error_callback,
                timeout=timeout,
            )
        )

    def build_playrec_stream(
        self,
        config: DuplexStreamConfig,
        data: Any,
        record_frames: int | None = None,
        error_callback: ErrorCallback | None = None,
        input_format: SampleFormat | str = SampleFormat.F32,
        timeout: float | None = None,
    ) -> ProgramStream:
        """Build a stopped duplex stream that plays ``data`` and records, aligned.

        Runs inside the engine like `build_play_stream()`. The recording
        is aligned with ``data`` from the stream's timestamps:
        ``stream.recording[n]`` is what the input captured when ``data[n]``
        left the output, so a device with a loop from output to input gives
        back ``data`` at lag 0. The engine records the round trip more than
        asked and the stream slices it off.

        Parameters
        ----------
        config
            Input channels, output channels (must equal ``data``'s), rate
            (Hz), buffer size.
        data
            What to play, shape ``(frames,)`` or ``(frames, channels)``; its
            dtype picks the output format. Copied.
        record_frames
            Aligned frames to record (default ``len(data)``); more than
            ``len(data)`` records a tail while silence plays.
        error_callback, timeout
            As for `build_duplex_stream()`.
        input_format
            Sample format of the recording.

        Returns
        -------
        ProgramStream

        Raises
        ------
        Error
            ``INVALID_INPUT`` for bad data or ``record_frames``;
            ``UNSUPPORTED_OPERATION`` when input and output do not share a
            clock; otherwise as `build_duplex_stream()`.
        """
        cfg = _expect(config, DuplexStreamConfig, "config")
        play, out_fmt = _check_play_data(data, cfg.output_channels)
        frames = play.shape[0] if record_frames is None else record_frames
        spec = ProgramSpec(play, whole("record_frames", frames))
        in_fmt = SampleFormat.parse(input_format)
        self._require_duplex()
        return _program(
            self._build(
                kind=StreamKind.DUPLEX,
                in_cfg=cfg.input_config(),
                out_cfg=cfg.output_config(),
                in_fmt=in_fmt,
                out_fmt=out_fmt,
                program=spec,
                error_callback=error_callback,
                timeout=timeout,
            )
        )

    def _build(
        self,
        *,
        kind: StreamKind,
        in_cfg: StreamConfig | None = None,
        out_cfg: StreamConfig | None = None,
        in_fmt: SampleFormat = SampleFormat.F32,
        out_fmt: SampleFormat = SampleFormat.F32,
        callback: DataCallback | None = None,
        error_callback: ErrorCallback | None,
        timeout: float | None,
        pipelined: bool = False,
        deadline: float | None = None,
        realtime: bool = True,
        ring_seconds: float | None = None,
        program: ProgramSpec | None = None,
    ) -> Stream:
        """Validate a request and build the stream: the one path every build takes."""
        if program is None:
            _check_callable("callback", callback, optional=True)
            if callback is not None:
                _check_signature(callback, kind)
        _check_callable("error_callback", error_callback, optional=True)
        stall_timeout = optional_seconds("timeout", timeout)
        fraction = _check_deadline(deadline)
        pipelined, realtime = flag("pipelined", pipelined), flag("realtime", realtime)
        cfg = in_cfg or out_cfg
        assert cfg is not None
        checks: tuple[tuple[Direction, StreamConfig | None, SampleFormat], ...] = (
            ("input", in_cfg, in_fmt),
            ("output", out_cfg, out_fmt),
        )
        fitting = [
            check_config(
                c, self._supported(direction), fmt, device=str(self.id), direction=direction
            )
            for direction, c, fmt in checks
            if c is not None
        ]
        own = self._default_frames(cfg.sample_rate)
        frames = cfg.buffer_size.frames if cfg.buffer_size.frames is not None else own
        device_frames = cfg.buffer_size.device_period or (
            own if cfg.buffer_size.frames is None else device_period(frames, fitting, own)
        )
        ring = ring_frames(ring_seconds, cfg.sample_rate, frames)  # checked in any case
        params = StreamParams(
            kind=kind,
            device=str(self.id),
            input_channels=in_cfg.channels if in_cfg else 0,
            output_channels=out_cfg.channels if out_cfg else 0,
            input_format=in_fmt,
            output_format=out_fmt,
            frames=frames,
            device_frames=device_frames,
            sample_rate=cfg.sample_rate,
            pipelined=pipelined,
            deadline=fraction,
            timeout=stall_timeout if stall_timeout is not None else Stream.DEFAULT_TIMEOUT,
            realtime=realtime,
            ring_frames=ring if callback is None and program is None else 0,
        )
        try:
            return self._stream(params, callback, error_callback, program)
        except Error as err:
            picked = cfg.buffer_size.device_period is None and device_frames != own
            if err.kind is not ErrorKind.UNSUPPORTED_CONFIG or not picked:
                raise
            # The period picked for the block size is in the device's range
            # yet was refused when it opened (an ALSA plugin's rules are
            # finer than its range): re-block from the device's own. Refused
            # again, the first refusal is the one that names the request.
            params = dataclasses.replace(params, device_frames=own)
            try:
                return self._stream(params, callback, error_callback, program)
            except Error:
                raise err from None

    def _stream(
        self,
        params: StreamParams,
        callback: DataCallback | None,
        error_callback: ErrorCallback | None,
        program: ProgramSpec | None,
    ) -> Stream:
        if program is not None:
            return ProgramStream(params, None, error_callback, self._open_backend, program)
        return Stream(params, callback, error_callback, self._open_backend)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {shown(self.name)}>"


def _program(stream: Stream) -> ProgramStream:
    """The stream a ``build_*`` with a program made, typed as what it is."""
    assert isinstance(stream, ProgramStream)
    return stream


def _stream_config(config: object) -> StreamConfig:
    """A stream's config: a `StreamConfig`, or a `SupportedStreamConfig`
    (what ``default_input_config()`` returns) at its device's default block size."""
    if isinstance(config, SupportedStreamConfig):
        return config.config()
    return _expect(config, StreamConfig, "config")  # type: ignore[no-any-return]


def _expect(value: object, cls: type[Any], name: str) -> Any:
    if not isinstance(value, cls):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{name} must be a {cls.__name__}, got {type(value).__name__} {shown(value)}",
        )
    return value


@checked_methods
class Host(HostHooks):
    """An audio API that lists devices.

    Get one with `host_from_id()` or `default_host()`. Hosts subclass
    this and implement `HostHooks`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every host's public methods refuse a misspelt keyword with an Error.
        super().__init_subclass__(**kwargs)
        checked_methods(cls)

    def input_devices(self) -> list[Device]:
        """Devices that can capture."""
        return [d for d in self.devices() if d.supports_input()]

    def output_devices(self) -> list[Device]:
        """Devices that can play."""
        return [d for d in self.devices() if d.supports_output()]

    def duplex_devices(self) -> list[Device]:
        """Devices that can run a synchronized duplex stream."""
        return [d for d in self.devices() if d.supports_duplex()]

    def default_input_device(self) -> Device | None:
        """The host's default input device, or None when it has none."""
        found = self.input_devices()
        return found[0] if found else None

    def default_output_device(self) -> Device | None:
        """The host's default output device, or None when it has none."""
        found = self.output_devices()
        return found[0] if found else None

    def default_loopback_device(self) -> Device | None:
        """An input device that records what the default output plays, or None
        where this host has no such thing.

        PulseAudio and PipeWire: the monitor of the sink that is the default
        now (its id names the monitor: ``<host>:<sink>.monitor``; asked again
        after the default moved, it is the new sink's). The virtual host: its
        default output when that is a loopback. Others: None (their pages say
        why).
        """
        return None

    def default_duplex_device(self) -> Device | None:
        """The default output device if it can run duplex, else the first device that can."""
        out = self.default_output_device()
        if out is not None and out.supports_duplex():
            return out
        found = self.duplex_devices()
        return found[0] if found else None

    def device_by_id(self, device_id: str | DeviceId) -> Device | None:
        """The device with this id, or None when this host has no such device.

        Raises
        ------
        Error
            ``INVALID_INPUT`` when the id is malformed.
        """
        wanted = DeviceId.parse(device_id)
        return next((d for d in self.devices() if d.id == wanted), None)

    def watch_devices(
        self, callback: Callable[[DeviceEvent], object] | None = None
    ) -> DeviceWatcher:
        """Events for this host's devices as they come and go (see `DeviceWatcher`).

        Parameters
        ----------
        callback
            Called with each `DeviceEvent`, in order, on a thread of the
            watcher's; None to iterate the watcher instead.
        """
        return watch([self], callback)

    def _listing(self) -> Listing:
        """The devices and defaults a watcher compares (`duplexio.watch.Listing`)."""
        devices = {}
        followers = set()
        for device in self.devices():
            d = device.description
            direction = _ONE_WAY.get(d.direction)
            devices[device.id] = (direction, d.name, (d.direction, d.driver, d.details))
            if device._listed_id() != device.id:
                followers.add(device.id)
        defaults: dict[EventDirection, tuple[DeviceId, str] | None] = {}
        for way in _ONE_WAY.values():
            found = self.default_input_device() if way == "input" else self.default_output_device()
            defaults[way] = None if found is None else (found._listed_id(), found.description.name)
        return Listing(devices, defaults, frozenset(followers))

    def __repr__(self) -> str:
        return f"<Host {self.id.value}>"


def watch(hosts: Sequence[Host], callback: Callable[[DeviceEvent], object] | None) -> DeviceWatcher:
    """A watcher on `hosts`, its callback checked first."""
    _check_callable("callback", callback, optional=True)
    return DeviceWatcher(hosts, callback)


_hosts: dict[HostId, Host] = {}
_hosts_lock = threading.Lock()
_fallback_noted = False


@checked
def available_hosts() -> list[HostId]:
    """The hosts usable on this machine now (their library loads, their server answers)."""
    return [h for h in _DECLARED if _built_here(h) and _host_module(h).is_available()]


def considered_hosts() -> list[HostId]:
    """The usable hosts that default choices and the all-hosts device table
    consider, in order of preference: `available_hosts()` less those whose
    folder says they are not a default here (PortAudio on Linux, whose
    devices the native hosts already list)."""
    return [h for h in available_hosts() if _DECLARED[h].default_on(sys.platform)]


@checked
def host_from_id(host_id: HostId | str) -> Host:
    """The host with this id (one instance per process).

    Raises
    ------
    Error
        ``INVALID_INPUT`` for an unknown id, ``HOST_UNAVAILABLE`` when the
        host cannot be used on this machine now (the message says why).
    """
    hid = parse_host_id(host_id)
    if not _built_here(hid):
        where = ", ".join(_DECLARED[hid].platforms)
        message = f"the {hid.value} host runs on {where} only, not {sys.platform}"
        raise Error(ErrorKind.HOST_UNAVAILABLE, message)
    with _hosts_lock:
        if hid not in _hosts:
            _hosts[hid] = _host_module(hid).open_host()
        return _hosts[hid]


@checked
def default_host() -> Host:
    """The first real host that has devices; the virtual host when none has.

    On Linux PortAudio is passed over: the native hosts reach the same
    devices with exact timing (it stays reachable by id, ``portaudio:...``).
    Falling back to the virtual host is logged once per process (logger
    ``duplexio``, level WARNING), so a program never mistakes the
    in-process loopback for a sound card.
    """
    global _fallback_noted
    for hid in considered_hosts():
        if hid is _FALLBACK:
            continue
        try:
            host = host_from_id(hid)
            if host.devices():
                return host
        except Error:
            continue
    if not _fallback_noted:
        _fallback_noted = True
        logger.warning(
            "no real audio host has devices here; using the virtual host "
            "(in-process clocked loopback devices)"
        )
    return host_from_id(_FALLBACK)


__all__ = [
    "DataCallback",
    "Device",
    "DeviceDescription",
    "DeviceEvent",
    "DeviceId",
    "DeviceWatcher",
    "Host",
    "HostId",
    "available_hosts",
    "default_host",
    "host_from_id",
]
