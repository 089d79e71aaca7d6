"""The PulseAudio host (also PipeWire's pulse server).

Devices are the server's sinks and sources; ids are ``pulse:<name>``. A sink
is an output device and, paired with its own monitor source, a duplex device:
the loop a measurement needs, on the sink's one clock. Sources (microphones,
monitors) are input devices; a source and a sink of different cards never
form a duplex device. ``pulse:@DEFAULT_SINK@`` and ``pulse:@DEFAULT_SOURCE@``
follow the server's defaults: when the server moves such a stream, it keeps
running and ``DEVICE_CHANGED`` is reported.

The server resamples and converts, so any rate, channel count and format is
accepted; the device's native sample spec is in its description. Streams run
on an I/O thread in C (``pulse.c`` beside this file); libpulse is loaded at run time.
Nothing here talks to another host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from duplexio._engine import ffi, lib
from duplexio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexio.contract import (
    CData,
    HandleBackend,
    NativeNotices,
    StreamParams,
    c_text,
    clib,
    owned,
    read_text,
)
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat
from duplexio.host import Device, DeviceDescription, DeviceId, Host, HostId
from duplexio.timing import StreamLatency
from duplexio.watch import ChangeSource

DEFAULT_SINK = "@DEFAULT_SINK@"
DEFAULT_SOURCE = "@DEFAULT_SOURCE@"
#: Frames per block when the user asks for BufferSize.DEFAULT.
DEFAULT_FRAMES = 512
_RATES = (8000, 384000)
_CHANNELS = 32
_BUFFERS = (32, 65536)
_LIST_TIMEOUT_MS = 3000
# PulseAudio's sample format codes, for descriptions.
_NATIVE_FORMATS = {0: "u8", 3: "s16le", 5: "float32le", 7: "s32le", 9: "s24le", 11: "s24-32le"}


def server_address() -> str | None:
    """The server libpulse connects to: ``$PULSE_SERVER``, or None for its default."""
    return os.environ.get("PULSE_SERVER") or None


@dataclass(frozen=True)
class _Node:
    """A sink or source as the server described it."""

    kind: str  # "sink" or "source"
    name: str
    description: str
    rate: int
    channels: int
    native_format: str
    monitor: str  # sink: its monitor source; source: the sink it monitors, or ""


@dataclass(frozen=True)
class _Server:
    default_sink: str
    default_source: str
    nodes: tuple[_Node, ...]
    name: str = ""

    @property
    def is_pipewire(self) -> bool:
        """pipewire-pulse names itself "PulseAudio (on PipeWire x.y.z)"."""
        return "PipeWire" in self.name


def _load() -> None:
    """Load libpulse; ``HOST_UNAVAILABLE`` when it cannot be."""
    clib.da_pulse_load(
        context="the PulseAudio host is unavailable",
        default=ErrorKind.HOST_UNAVAILABLE,
    )


def _probe(server: str | None) -> _Server:
    _load()
    _, text = read_text(
        lib.da_pulse_list,
        server.encode() if server else ffi.NULL,
        _LIST_TIMEOUT_MS,
        context=f"cannot reach the PulseAudio server {server or '(default)'}",
        default=ErrorKind.DEVICE_NOT_AVAILABLE,
    )
    default_sink = default_source = server_name = ""
    nodes = []
    for line in text.splitlines():
        fields = line.split("\t")
        if fields[0] == "server" and len(fields) >= 6:
            default_sink, default_source, server_name = fields[1], fields[2], fields[5]
        elif fields[0] in ("sink", "source") and len(fields) >= 7:
            nodes.append(
                _Node(
                    kind=fields[0],
                    name=fields[1],
                    description=fields[2],
                    rate=int(fields[3]),
                    channels=int(fields[4]),
                    native_format=_NATIVE_FORMATS.get(int(fields[5]), f"format {fields[5]}"),
                    monitor=fields[6],
                )
            )
    return _Server(default_sink, default_source, tuple(nodes), server_name)


def is_available() -> bool:
    """True when libpulse loads and the server answers."""
    try:
        _probe(server_address())
    except Error:
        return False
    return True


def open_host() -> PulseHost:
    """The PulseAudio host; ``HOST_UNAVAILABLE`` when libpulse cannot be loaded."""
    _load()
    return PulseHost()


class PulseBackend(HandleBackend):
    """One stream: record and/or playback streams on an I/O thread in C."""

    def __init__(self, device: PulseDevice, engine: CData, params: StreamParams) -> None:
        sink = source = ffi.NULL
        if not device.follows_default:
            if device.kind == "sink":
                sink = device.name_on_server.encode()
                if params.input_channels:
                    source = device.monitor.encode()
            else:
                source = device.name_on_server.encode()
        server = server_address()
        out = ffi.new("da_pulse **")
        clib.da_pulse_new(
            out,
            engine,
            server.encode() if server else ffi.NULL,
            sink,
            source,
            params.input_channels,
            params.output_channels,
            params.sample_rate,
            params.device_frames,
            int(device.follows_default),
            context=f"could not create a stream on '{device.id}'",
        )
        # The C stream points at the engine: its destructor keeps the engine alive.
        super().__init__(owned(out[0], lib.da_pulse_free, engine), lib.da_pulse_stop)
        self._device = device
        self._frames = params.device_frames
        self._duplex = bool(params.input_channels and params.output_channels)
        self._output = bool(params.output_channels)
        self._last = StreamLatency(0, 0)
        self._moved: str | None = None

    def moved_to(self) -> str | None:
        """``pulse:<sink or source>`` the server last moved this default-following
        stream to; None until it moved (kept after close)."""
        name = ffi.new("char[]", 256)
        if self._with_handle(lib.da_pulse_moved_to, name, 256) == 1:
            self._moved = f"pulse:{c_text(name)}"
        return self._moved

    @property
    def latency(self) -> StreamLatency:
        capture = ffi.new("int64_t *")
        round_trip = ffi.new("int64_t *")
        playback = ffi.new("int64_t *")
        if self._with_handle(lib.da_pulse_latency, capture, round_trip, playback) is self.CLOSED:
            return self._last  # what it was when the stream closed
        if not self._output:
            self._last = StreamLatency(int(capture[0]), 0)
        elif not self._duplex:
            self._last = StreamLatency(0, int(playback[0]))
        else:
            rt = int(round_trip[0]) if round_trip[0] >= 0 else 2 * self._frames
            inp = min(int(capture[0]), rt)
            self._last = StreamLatency(inp, rt - inp)
        return self._last

    def start(self) -> None:
        self._call(
            clib.da_pulse_start,
            context=f"cannot start a stream on '{self._device.id}'",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )

    def _before_release(self) -> None:
        self.latency  # noqa: B018 - keep the last figures for after close
        self.moved_to()


class PulseDevice(Device):
    """A sink (output; duplex with its monitor) or a source (input) of the server."""

    def __init__(
        self, node: _Node, *, follows_default: bool = False, current: str = "",
        on_pipewire: bool = False,
    ) -> None:  # fmt: skip
        self.kind = node.kind
        self.on_pipewire = on_pipewire
        self.name_on_server = node.name
        self.monitor = node.monitor
        self.follows_default = follows_default
        self._node = node
        self._current = current
        self._id = DeviceId(HostId.PULSE, node.name)

    @property
    def id(self) -> DeviceId:
        """``pulse:<sink or source name>``."""
        return self._id

    def _listed_id(self) -> DeviceId:
        """A default's placeholder stands for the sink or source it names now."""
        return DeviceId(HostId.PULSE, self._current) if self.follows_default else self._id

    @property
    def description(self) -> DeviceDescription:
        """Name, direction and the native sample spec (the server converts from it)."""
        n = self._node
        if self.kind == "sink":
            direction = "duplex"
            extra = f"duplex with its monitor '{n.monitor}'"
        else:
            direction = "input"
            extra = f"monitor of sink '{n.monitor}'" if n.monitor else "a source"
        details = [f"native {n.rate} Hz, {n.channels} channels, {n.native_format}", extra]
        if self.on_pipewire and self.kind == "sink":
            details.append(
                "pipewire-pulse: the reported round trip is one graph quantum short "
                "(the monitor lags a cycle its timing does not show)"
            )
        if self.follows_default:
            details.append(f"follows the server's default (now '{self._current}')")
        return DeviceDescription(n.description, "pulse", direction, tuple(details))

    def _ranges(self) -> list[SupportedStreamConfigRange]:
        buffers = SupportedBufferSize.range(*_BUFFERS)
        return [
            SupportedStreamConfigRange(1, _CHANNELS, *_RATES, buffers, fmt) for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """Any format, 1..32 channels, 8..384 kHz (the server converts); sources and sinks."""
        return self._ranges()

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """As input, for sinks; sources have no output."""
        return self._ranges() if self.kind == "sink" else []

    def supports_input(self) -> bool:
        """Sinks capture through their monitor, sources directly: always True."""
        return True

    def _duplex_refusal(self) -> str | None:
        if self.kind == "sink":
            return None
        return (
            "a PulseAudio source and a sink run on separate clocks; duplex is offered on "
            "a sink, paired with its own monitor"
        )

    def _preferred_sample_rate(self) -> int:
        return self._node.rate

    def _native_channels(self, direction: str) -> int | None:
        return self._node.channels or None

    def _default_frames(self, sample_rate: int) -> int:
        return DEFAULT_FRAMES

    def _open_backend(self, engine: CData, params: StreamParams) -> PulseBackend:
        if self.kind == "sink" and params.input_channels and not self.monitor:
            raise Error(ErrorKind.UNSUPPORTED_OPERATION, f"sink '{self.id}' has no monitor")
        return PulseBackend(self, engine, params)


class PulseHost(Host):
    """The sinks and sources of the PulseAudio server at ``$PULSE_SERVER`` (or the default)."""

    @property
    def id(self) -> HostId:
        """``HostId.PULSE``."""
        return HostId.PULSE

    @property
    def name(self) -> str:
        """``"PulseAudio"``."""
        return "PulseAudio"

    def _change_source(self) -> ChangeSource:
        """The server's notices of sinks, sources and the server (its defaults), from
        a connection subscribed to them."""
        _load()
        server = server_address()
        out = ffi.new("da_pulse_watch **")
        clib.da_pulse_watch_new(
            out,
            server.encode() if server else ffi.NULL,
            _LIST_TIMEOUT_MS,
            context=f"cannot watch the PulseAudio server {server or '(default)'}",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )
        watch = owned(out[0], lib.da_pulse_watch_free)
        return NativeNotices(watch, lib.da_pulse_watch_wait, "the PulseAudio server")

    def default_loopback_device(self) -> Device | None:
        """The monitor source of the server's default sink now (``pulse:<sink>.monitor``)."""
        server = self._server()
        if server is None:
            return None
        sink = next(
            (n for n in server.nodes if n.kind == "sink" and n.name == server.default_sink), None
        )
        monitor = next(
            (n for n in server.nodes if sink and n.kind == "source" and n.name == sink.monitor),
            None,
        )
        return PulseDevice(monitor, on_pipewire=server.is_pipewire) if monitor else None

    def _server(self) -> _Server | None:
        try:
            return _probe(server_address())
        except Error:
            return None

    def devices(self) -> list[Device]:
        """The default-following devices first, then every sink and source."""
        server = self._server()
        if server is None:
            return []
        found: list[Device] = self._defaults(server)
        found.extend(PulseDevice(node, on_pipewire=server.is_pipewire) for node in server.nodes)
        return found

    def _defaults(self, server: _Server) -> list[Device]:
        found: list[Device] = []
        for kind, alias, current in (
            ("sink", DEFAULT_SINK, server.default_sink),
            ("source", DEFAULT_SOURCE, server.default_source),
        ):
            node = next((n for n in server.nodes if n.kind == kind and n.name == current), None)
            if node is not None:
                follower = _Node(kind, alias, node.description, node.rate, node.channels,
                                 node.native_format, node.monitor)  # fmt: skip
                found.append(
                    PulseDevice(
                        follower,
                        follows_default=True,
                        current=current,
                        on_pipewire=server.is_pipewire,
                    )
                )
        return found

    def default_output_device(self) -> Device | None:
        """``pulse:@DEFAULT_SINK@``: follows the server's default sink."""
        return self._default_of("sink")

    def default_input_device(self) -> Device | None:
        """``pulse:@DEFAULT_SOURCE@``: follows the server's default source."""
        return self._default_of("source")

    def _default_of(self, kind: str) -> Device | None:
        server = self._server()
        if server is None:
            return None
        return next(
            (d for d in self._defaults(server) if isinstance(d, PulseDevice) and d.kind == kind),
            None,
        )
