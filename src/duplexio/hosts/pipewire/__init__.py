"""The PipeWire host, native: a duplex stream is one filter node on the graph's clock.

Devices are the graph's audio nodes, ``pipewire:<node name>``: a sink is a
duplex device (played to, and captured from its monitor: the loop a
measurement needs, on the sink's clock), a source an input device.
``pipewire:@DEFAULT_SINK@`` and ``pipewire:@DEFAULT_SOURCE@`` are the
graph's defaults (``default.audio.sink`` / ``source`` metadata) when the
stream opens.

A stream is one ``pw_filter`` node (``pipewire.c``) with input and output
ports, linked by the host to the device's ports before it starts: PipeWire
runs its process function once per graph cycle with both directions. The
rate and block size are the graph's (its rate, its quantum, fixed with
``clock.force-quantum``; otherwise the stream asks for its block size as
its ``node.latency``). libpipewire is loaded at run time; the build needs
libpipewire-0.3's headers (SPA's helpers are header-only), and without
them this host says so.
"""

from __future__ import annotations

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

MONITOR_SUFFIX = ".monitor"
DEFAULT_SINK = "@DEFAULT_SINK@"
DEFAULT_SOURCE = "@DEFAULT_SOURCE@"
#: Most channels a stream may open in each direction.
MAX_CHANNELS = 64
_SINK, _SOURCE = "Audio/Sink", "Audio/Source"


def _built() -> bool:
    return hasattr(lib, "da_pw_load")


def _load() -> None:
    """Load libpipewire; ``HOST_UNAVAILABLE`` when it cannot be, or was not built."""
    if not _built():
        raise Error(
            ErrorKind.HOST_UNAVAILABLE,
            "the PipeWire host is unavailable: built without PipeWire headers "
            "(libpipewire-0.3-dev); reinstall duplexio where they are",
        )
    clib.da_pw_load(
        context="the PipeWire host is unavailable",
        default=ErrorKind.HOST_UNAVAILABLE,
    )


@dataclass(frozen=True)
class _Node:
    """An audio node of the graph."""

    id: int
    media_class: str
    name: str
    description: str
    channels: int


@dataclass(frozen=True)
class _Graph:
    """What a listing saw: the clock settings, the defaults and the nodes."""

    rate: int
    quantum: int
    forced_quantum: int
    min_quantum: int
    max_quantum: int
    default_sink: str
    default_source: str
    nodes: tuple[_Node, ...]

    def node(self, name: str) -> _Node | None:
        """The node called `name` (a default's placeholder resolved)."""
        name = {DEFAULT_SINK: self.default_sink, DEFAULT_SOURCE: self.default_source}.get(
            name, name
        )
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def frames(self) -> tuple[int, int]:
        """The block sizes a stream may ask for: the forced quantum, or the graph's range."""
        if self.forced_quantum:
            return self.forced_quantum, self.forced_quantum
        lo = self.min_quantum or 32
        return lo, max(lo, self.max_quantum or 2048)


def _graph() -> _Graph:
    _load()
    _, text = read_text(
        lib.da_pw_list, context="PipeWire does not answer", default=ErrorKind.DEVICE_NOT_AVAILABLE
    )
    lines = [line.split("\t") for line in text.splitlines()]
    settings = next(fields for fields in lines if fields[0] == "settings")
    rate, quantum, forced, lo, hi = (int(v) for v in settings[1:6])
    nodes = tuple(
        _Node(int(f[1]), f[2], f[3], f[4], int(f[5]))
        for f in lines
        if f[0] == "node" and len(f) == 6
    )
    return _Graph(rate or 48000, quantum, forced, lo, hi, settings[6], settings[7], nodes)


def is_available() -> bool:
    """True when libpipewire loads and a PipeWire server answers."""
    try:
        _graph()
    except Error:
        return False
    return True


def open_host() -> PipeWireHost:
    """The PipeWire host.

    Raises
    ------
    Error
        ``HOST_UNAVAILABLE`` when libpipewire cannot be loaded or the host was
        built without PipeWire's headers.
    """
    _load()
    return PipeWireHost()


class PipeWireBackend(HandleBackend):
    """One stream: a filter node linked to the device's node."""

    def __init__(self, device: PipeWireDevice, engine: CData, params: StreamParams) -> None:
        graph = _graph()
        node = graph.node(device.node_name)
        if node is None:
            raise Error(ErrorKind.DEVICE_NOT_AVAILABLE, f"PipeWire has no node for '{device.id}'")
        if graph.forced_quantum and graph.forced_quantum != params.device_frames:
            raise Error(
                ErrorKind.STREAM_INVALIDATED,
                f"PipeWire now runs a quantum of {graph.forced_quantum} frames, not the "
                f"{params.device_frames} asked for",
            )
        sink = node.name.encode() if node.media_class == _SINK else ffi.NULL
        source = node.name.encode() if node.media_class == _SOURCE else ffi.NULL
        out = ffi.new("da_pw **")
        clib.da_pw_open(
            out,
            engine,
            sink,
            source,
            params.input_channels,
            params.output_channels,
            params.sample_rate,
            params.device_frames,
            device.follows,
            context=f"PipeWire could not open '{device.id}'",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )
        # The filter runs from here on; the stopped engine answers with silence.
        super().__init__(owned(out[0], lib.da_pw_free, engine), stop=None)
        self._last = StreamLatency(0, 0)
        self._last = self.latency  # known before the first block: the links exist
        self._moved: str | None = None

    def moved_to(self) -> str | None:
        """``pipewire:<node>`` a default-following stream was last relinked to; None
        until it moved (kept after close)."""
        name = ffi.new("char[]", 256)
        if self._with_handle(lib.da_pw_moved_to, name, 256) == 1:
            self._moved = f"pipewire:{c_text(name)}"
        return self._moved

    def _before_release(self) -> None:
        self.moved_to()

    @property
    def latency(self) -> StreamLatency:
        """Capture and playback latency in frames (the last figure once closed)."""
        inp, outp = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        if self._with_handle(lib.da_pw_latency, inp, outp) is not self.CLOSED:
            self._last = StreamLatency(int(inp[0]), int(outp[0]))
        return self._last

    def start(self) -> None:
        """Nothing to do: the links exist, the filter runs; the engine starts."""


class PipeWireDevice(Device):
    """A sink (duplex, with its monitor) or a source (input) of the graph."""

    def __init__(
        self, graph: _Graph, node: _Node, name: str | None = None, *, monitor: bool = False
    ) -> None:
        self._graph = graph
        self._node = node
        #: Input only, from a sink's monitor ports (``<sink>.monitor``): what it plays.
        self.monitor = monitor
        self.node_name = name or node.name
        self._id = DeviceId(
            HostId.PIPEWIRE, f"{node.name}{MONITOR_SUFFIX}" if monitor else self.node_name
        )
        #: Streams follow the graph's default (relinked when it moves, with a
        #: ``DEVICE_CHANGED`` report): DA_PW_FOLLOW_SINK / _SOURCE, or 0.
        self.follows = {
            DEFAULT_SINK: lib.DA_PW_FOLLOW_SINK,
            DEFAULT_SOURCE: lib.DA_PW_FOLLOW_SOURCE,
        }.get(self.node_name, 0)

    @property
    def id(self) -> DeviceId:
        """``pipewire:<node name>`` (or a default's placeholder)."""
        return self._id

    def _listed_id(self) -> DeviceId:
        """A default's placeholder stands for the node it names now; a monitor is
        listed as its sink (which captures from it)."""
        return DeviceId(HostId.PIPEWIRE, self._node.name)

    @property
    def _plays(self) -> bool:
        return self._node.media_class == _SINK and not self.monitor

    @property
    def description(self) -> DeviceDescription:
        """The node's description, class and the graph's clock."""
        name = self._node.description or self._node.name
        return DeviceDescription(
            name=f"Monitor of {name}" if self.monitor else name,
            driver="pipewire",
            direction="duplex" if self._plays else "input",
            details=(
                f"node '{self._node.name}' ({self._node.media_class}), "
                f"{self._node.channels} channels",
                f"graph: {self._graph.rate} Hz, quantum {self._graph.quantum or '?'}"
                + (f" (forced {self._graph.forced_quantum})" if self._graph.forced_quantum else ""),
            ),
        )

    def _ranges(self) -> list[SupportedStreamConfigRange]:
        lo, hi = self._graph.frames
        frames = SupportedBufferSize.range(lo, hi)
        rate = self._graph.rate
        # Ports link by position and PipeWire does not remix them: a channel
        # beyond the node's would play nowhere.
        most = min(self._node.channels, MAX_CHANNELS) if self._node.channels > 0 else MAX_CHANNELS
        return [
            SupportedStreamConfigRange(1, most, rate, rate, frames, fmt) for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """The graph's rate, its quantum (range), every format, 1..the node's channels."""
        return self._ranges()

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """A sink's: the graph's rate and quantum; a source or a monitor has none."""
        return self._ranges() if self._plays else []

    def _duplex_refusal(self) -> str | None:
        if self._plays:
            return None
        if self.monitor:
            return f"a monitor only records; its sink 'pipewire:{self._node.name}' is duplex"
        return "a source has no output"

    def _default_frames(self, sample_rate: int) -> int:
        g = self._graph
        if g.forced_quantum:
            return g.forced_quantum
        lo, hi = g.frames
        return min(max(g.quantum or 1024, lo), hi)

    def _open_backend(self, engine: CData, params: StreamParams) -> PipeWireBackend:
        return PipeWireBackend(self, engine, params)


class PipeWireHost(Host):
    """The audio nodes of the PipeWire graph this process reaches."""

    @property
    def id(self) -> HostId:
        """``HostId.PIPEWIRE``."""
        return HostId.PIPEWIRE

    @property
    def name(self) -> str:
        """``"PipeWire"``."""
        return "PipeWire"

    def _change_source(self) -> ChangeSource:
        """A connection whose registry tells of device nodes coming and going, and
        whose ``default`` metadata of defaults moving."""
        _load()
        out = ffi.new("da_pw_watch **")
        clib.da_pw_watch_new(
            out, context="cannot watch PipeWire", default=ErrorKind.DEVICE_NOT_AVAILABLE
        )
        watch = owned(out[0], lib.da_pw_watch_free)
        return NativeNotices(watch, lib.da_pw_watch_wait, "PipeWire")

    def devices(self) -> list[Device]:
        """Every sink and source of the graph now."""
        try:
            graph = _graph()
        except Error:
            return []
        return [PipeWireDevice(graph, n) for n in graph.nodes if n.media_class in (_SINK, _SOURCE)]

    def default_output_device(self) -> Device | None:
        """``pipewire:@DEFAULT_SINK@`` when the graph has a default sink."""
        return self._default(DEFAULT_SINK)

    def default_input_device(self) -> Device | None:
        """``pipewire:@DEFAULT_SOURCE@`` when the graph has a default source."""
        return self._default(DEFAULT_SOURCE)

    def _default(self, placeholder: str) -> Device | None:
        try:
            graph = _graph()
        except Error:
            return None
        node = graph.node(placeholder)
        return PipeWireDevice(graph, node, placeholder) if node is not None else None

    def default_loopback_device(self) -> Device | None:
        """The monitor of the graph's default sink now (``pipewire:<sink>.monitor``)."""
        try:
            graph = _graph()
        except Error:
            return None
        node = graph.node(DEFAULT_SINK)
        return PipeWireDevice(graph, node, monitor=True) if node is not None else None

    def device_by_id(self, device_id: str | DeviceId) -> Device | None:
        """The device with this id, defaults' placeholders and sinks' monitors
        (``<sink>.monitor``) included."""
        wanted = DeviceId.parse(device_id)
        if wanted.host is not HostId.PIPEWIRE:
            return None
        try:
            graph = _graph()
        except Error:
            return None
        node = graph.node(wanted.name)
        if node is not None:
            return PipeWireDevice(graph, node, wanted.name)
        sink = graph.node(wanted.name.removesuffix(MONITOR_SUFFIX))
        if wanted.name.endswith(MONITOR_SUFFIX) and sink is not None and sink.media_class == _SINK:
            return PipeWireDevice(graph, sink, monitor=True)
        return None
