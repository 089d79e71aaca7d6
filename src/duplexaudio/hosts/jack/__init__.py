"""The JACK host (also PipeWire, through its JACK library).

A JACK client's ports all share one process callback, so every JACK device
runs duplex on one clock. A stream is one JACK client with N input and M
output ports, registered at build time and connected to the device's ports
when it starts. The process callback is C (``jack.c`` beside this file); libjack is
loaded at run time, so a machine without it simply has no JACK host.

Devices
-------
``jack:<server>``
    The server's own driver ports (``system:*``). ``<server>`` is the value
    of ``JACK_DEFAULT_SERVER``, or ``default``.
``jack:<server>/<client>``
    The ports of another client, e.g. ``jack:<server>/loopback`` for the
    loop of ``jackd -L``: its output ports feed the stream's inputs and the
    stream's outputs feed its input ports.

Other servers are reached by id (``host.device_by_id("jack:other")``).
:func:`latency_beyond` answers the ALSA host's one question of JACK: what
the graph adds around a ``type jack`` PCM.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from duplexaudio._engine import ffi, lib
from duplexaudio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexaudio.errors import Error, ErrorKind
from duplexaudio.formats import SampleFormat
from duplexaudio.host import Device, DeviceDescription, DeviceId, Host, HostId
from duplexaudio.stream import HandleBackend, StreamParams
from duplexaudio.timing import StreamLatency

logger = logging.getLogger("duplexaudio")

#: Most ports a stream may open in each direction (ports beyond the device's
#: own are left unconnected).
MAX_CHANNELS = 64

_PORT_IS_INPUT = 0x1
_PORT_IS_OUTPUT = 0x2
_PORT_IS_PHYSICAL = 0x4
_SERVER_FAILED = 0x10  # jack_status_t JackServerFailed
_DRIVER_CLIENT = "system"
_LOOPBACK_CLIENT = "loopback"  # jackd -L: copies after exactly one cycle


def default_server() -> str:
    """The server libjack talks to by default: ``$JACK_DEFAULT_SERVER`` or ``default``."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def _message() -> str:
    return str(ffi.string(lib.da_jack_last_message()).decode(errors="replace"))


def _open_client(name: str, server: str, engine: Any = None) -> Any:
    """A JACK client on `server` (never starts a server), closed on release.

    A client bound to an engine keeps that engine alive until it is closed.
    """
    if lib.da_jack_load() != 0:
        raise Error(ErrorKind.HOST_UNAVAILABLE, ffi.string(lib.da_jack_load_error()).decode())
    status = ffi.new("int *")
    # "default" means: no server name, so libjack applies its own rules.
    wanted = ffi.NULL if server == "default" else server.encode()
    raw = lib.da_jack_open(name.encode(), wanted, status)
    if raw == ffi.NULL:
        why = "it is not running" if status[0] & _SERVER_FAILED else _message()
        raise Error(
            ErrorKind.DEVICE_NOT_AVAILABLE,
            f"cannot reach JACK server '{server}': {why} (status 0x{status[0] & 0xFFFF:x})",
            code=int(status[0]),
        )
    return ffi.gc(raw, lambda c, _engine=engine: _close_client(c, _engine))


#: How long closing a client may take before it is abandoned (seconds).
CLOSE_TIMEOUT = 5.0
#: Engines of abandoned clients: their process callback may still run.
_abandoned: list[Any] = []


def _close_client(client: Any, engine: Any) -> None:
    if lib.da_jack_close_within(client, int(CLOSE_TIMEOUT * 1000)) != 0:
        _abandoned.append(engine)
        logger.warning(
            "closing a JACK client did not return within %.0f s (libjack deadlocked; seen "
            "with pipewire-jack 0.3); the client was left behind",
            CLOSE_TIMEOUT,
        )


def _ports(client: Any, pattern: str, flags: int) -> list[str]:
    size = 1 << 16
    while True:
        buf = ffi.new("char[]", size)
        count = lib.da_jack_ports(client, pattern.encode(), flags, buf, size)
        if count >= 0:
            text = ffi.string(buf).decode(errors="replace")
            return [name for name in text.split("\n") if name]
        size *= 4


def latency_beyond(reads: list[str], writes: list[str], server: str | None = None) -> StreamLatency:
    """What JACK adds around a capture client reading `reads` and a playback
    client writing `writes` (full port names): the ALSA host's question for a
    ``type jack`` PCM, whose two directions are two JACK clients.

    Each side is the largest latency of its ports (capture latency of
    `reads`, playback latency of `writes`): a sound card's buffers for the
    driver's ports, and nothing for a path through other clients, which run
    in the same cycle in graph order (the two clients form no feedback loop,
    unlike a JACK host stream looping through another client). The ports of
    ``jackd -L``'s ``loopback`` driver are the exception: it copies its
    playback ports to its capture ports one cycle later, and reports the main
    driver's latencies instead, so a side on them counts that cycle (playback)
    or nothing (capture).

    Raises
    ------
    Error
        ``DEVICE_NOT_AVAILABLE`` when the server does not answer.
    """
    client = _open_client("duplexaudio-latency", server or default_server())
    try:
        sides = []
        frames = ffi.new("uint32_t *")
        for playback, ports in enumerate((reads, writes)):
            if ports and all(port.split(":", 1)[0] == _LOOPBACK_CLIENT for port in ports):
                sides.append(int(lib.da_jack_buffer_size(client)) if playback else 0)
                continue
            latest = 0
            for port in ports:
                if lib.da_jack_named_port_latency(client, port.encode(), playback, frames) == 0:
                    latest = max(latest, int(frames[0]))
            sides.append(latest)
        return StreamLatency(*sides)
    finally:
        ffi.release(client)


@dataclass(frozen=True)
class _Server:
    """What a probe client saw of a server."""

    name: str
    sample_rate: int
    buffer_size: int
    outputs: dict[str, list[str]]  # client -> its output (capture-side) ports
    inputs: dict[str, list[str]]  # client -> its input (playback-side) ports


def _by_client(ports: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for port in ports:
        grouped.setdefault(port.split(":", 1)[0], []).append(port)
    return grouped


def _probe(server: str) -> _Server:
    client = _open_client("duplexaudio-probe", server)
    try:
        return _Server(
            name=server,
            sample_rate=int(lib.da_jack_sample_rate(client)),
            buffer_size=int(lib.da_jack_buffer_size(client)),
            outputs=_by_client(_ports(client, "", _PORT_IS_OUTPUT)),
            inputs=_by_client(_ports(client, "", _PORT_IS_INPUT)),
        )
    finally:
        ffi.release(client)


def is_available() -> bool:
    """True when libjack loads and the default server answers."""
    if lib.da_jack_load() != 0:
        return False
    try:
        _probe(default_server())
    except Error:
        return False
    return True


def open_host() -> JackHost:
    """The JACK host.

    Raises
    ------
    Error
        ``HOST_UNAVAILABLE`` when libjack cannot be loaded.
    """
    if lib.da_jack_load() != 0:
        raise Error(ErrorKind.HOST_UNAVAILABLE, ffi.string(lib.da_jack_load_error()).decode())
    return JackHost()


class JackBackend(HandleBackend):
    """One stream's JACK client. Host-specific extras are public here.

    Attributes
    ----------
    client_name
        The client's name on the server (JACK may add a suffix).
    input_ports, output_ports
        Full names of the stream's ports, for connecting them elsewhere.
    """

    def __init__(self, device: JackDevice, engine: Any, params: StreamParams) -> None:
        client = _open_client("duplexaudio", device.server, engine)
        rate, frames = int(lib.da_jack_sample_rate(client)), int(lib.da_jack_buffer_size(client))
        if (rate, frames) != (params.sample_rate, params.frames):
            ffi.release(client)
            raise Error(
                ErrorKind.STREAM_INVALIDATED,
                f"JACK server '{device.server}' now runs at {rate} Hz, {frames} frames, "
                f"not the {params.sample_rate} Hz, {params.frames} frames asked for",
            )
        err = lib.da_jack_bind(client, engine, params.input_channels, params.output_channels)
        if err:
            ffi.release(client)
            raise Error(
                ErrorKind.BACKEND_ERROR,
                f"JACK server '{device.server}' refused the stream's ports: {_message()}",
                code=int(err),
            )
        # The client stays active and connected across stop: the engine, already
        # stopped, answers each cycle with silence, and a restart is immediate.
        # Deactivating would drop the connections, and jack_deactivate is where
        # pipewire-jack was seen to deadlock.
        super().__init__(client, stop=None)
        lib.da_jack_set_graph_loop(client, int(device.client == _LOOPBACK_CLIENT))
        self.client_name = ffi.string(lib.da_jack_client_name(client)).decode()
        self.input_ports = [
            ffi.string(lib.da_jack_port_name(client, 0, i)).decode()
            for i in range(params.input_channels)
        ]
        self.output_ports = [
            ffi.string(lib.da_jack_port_name(client, 1, i)).decode()
            for i in range(params.output_channels)
        ]
        self._device = device
        self._frames = params.frames
        self._active = False

    @property
    def latency(self) -> StreamLatency:
        capture = ffi.new("uint32_t *")
        playback = ffi.new("uint32_t *")
        if self._with_handle(lib.da_jack_latency, capture, playback) is self.CLOSED:
            return StreamLatency(0, self._frames)
        return StreamLatency(int(capture[0]), int(playback[0]))

    def start(self) -> None:
        with self._lock:
            if self._handle is None or self._active:
                return
            if lib.da_jack_activate(self._handle) != 0:
                raise Error(
                    ErrorKind.DEVICE_NOT_AVAILABLE,
                    f"cannot activate the client on JACK server '{self._device.server}': "
                    f"{_message()}",
                )
            self._active = True
            if self._device.connect:
                sources, sinks = self._device.ports()
                for theirs, ours in zip(sources, self.input_ports, strict=False):
                    lib.da_jack_connect(self._handle, theirs.encode(), ours.encode())
                for ours, theirs in zip(self.output_ports, sinks, strict=False):
                    lib.da_jack_connect(self._handle, ours.encode(), theirs.encode())


class JackDevice(Device):
    """A set of ports on a JACK server; every JACK device runs duplex on the server's clock.

    Its configuration is the server's: one sample rate, one buffer size
    (``BufferSize.fixed`` of any other size is ``UNSUPPORTED_CONFIG``), every
    sample format (the engine converts from JACK's float32), and 1 to
    ``MAX_CHANNELS`` channels each way; channels beyond the device's ports
    are left unconnected.
    """

    def __init__(self, server: _Server, client: str | None, *, connect: bool = True) -> None:
        self._server = server
        self.server = server.name
        self.client = client
        self.connect = connect
        name = server.name if client is None else f"{server.name}/{client}"
        self._id = DeviceId(HostId.JACK, name)

    def ports(self) -> tuple[list[str], list[str]]:
        """(ports that feed the stream's inputs, ports the stream's outputs feed), as probed."""
        owner = self.client or _DRIVER_CLIENT
        return self._server.outputs.get(owner, []), self._server.inputs.get(owner, [])

    def unconnected(self) -> JackDevice:
        """The same device, but streams leave their ports unconnected on start.

        Connect them yourself (``stream.backend.input_ports`` /
        ``output_ports``), e.g. with ``jack_connect``.
        """
        return JackDevice(self._server, self.client, connect=False)

    @property
    def id(self) -> DeviceId:
        """``jack:<server>`` or ``jack:<server>/<client>``."""
        return self._id

    @property
    def description(self) -> DeviceDescription:
        """Server, ports and the server's rate and buffer size."""
        sources, sinks = self.ports()
        who = f"client '{self.client}'" if self.client else "the server's driver ports"
        return DeviceDescription(
            name=f"JACK {self.server}" + (f" {self.client}" if self.client else ""),
            driver="jack",
            direction="duplex",
            details=(
                f"{who}: {len(sources)} capture, {len(sinks)} playback ports",
                f"{self._server.sample_rate} Hz, {self._server.buffer_size} frames per cycle",
            ),
        )

    def _ranges(self) -> list[SupportedStreamConfigRange]:
        s = self._server
        frames = SupportedBufferSize.range(s.buffer_size, s.buffer_size)
        return [
            SupportedStreamConfigRange(1, MAX_CHANNELS, s.sample_rate, s.sample_rate, frames, fmt)
            for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """The server's rate and buffer size, every format, 1..MAX_CHANNELS."""
        return self._ranges()

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """The server's rate and buffer size, every format, 1..MAX_CHANNELS."""
        return self._ranges()

    def _duplex_refusal(self) -> str | None:
        return None

    def _default_frames(self, sample_rate: int) -> int:
        return self._server.buffer_size

    def _open_backend(self, engine: Any, params: StreamParams) -> JackBackend:
        return JackBackend(self, engine, params)


class JackHost(Host):
    """JACK servers reachable from this process, as devices."""

    def __init__(self) -> None:
        self._servers: list[str] = []
        self._lock = threading.Lock()

    @property
    def id(self) -> HostId:
        """``HostId.JACK``."""
        return HostId.JACK

    @property
    def name(self) -> str:
        """``"JACK"``."""
        return "JACK"

    def add_server(self, name: str) -> None:
        """Also list the devices of the JACK server called `name`."""
        if not isinstance(name, str) or not name or "/" in name:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"a JACK server name is a non-empty string without '/', got {name!r}",
            )
        with self._lock:
            if name not in self._servers:
                self._servers.append(name)

    def _server_names(self) -> list[str]:
        with self._lock:
            extra = [s for s in self._servers if s != default_server()]
        return [default_server(), *extra]

    def _devices_of(self, server: _Server) -> list[JackDevice]:
        clients = sorted((set(server.outputs) | set(server.inputs)) - {_DRIVER_CLIENT})
        clients = [c for c in clients if not c.startswith("duplexaudio")]
        return [JackDevice(server, None)] + [JackDevice(server, c) for c in clients]

    def devices(self) -> list[Device]:
        """One device per reachable server, then one per other client with audio ports."""
        found: list[Device] = []
        for name in self._server_names():
            try:
                found.extend(self._devices_of(_probe(name)))
            except Error:
                continue
        return found

    def default_output_device(self) -> Device | None:
        """``jack:<default server>`` when it answers."""
        return self._driver_device(default_server())

    def default_input_device(self) -> Device | None:
        """``jack:<default server>`` when it answers."""
        return self._driver_device(default_server())

    def _driver_device(self, server: str) -> JackDevice | None:
        try:
            return JackDevice(_probe(server), None)
        except Error:
            return None

    def device_by_id(self, device_id: str | DeviceId) -> Device | None:
        """The device with this id; any server name is probed, listed or not."""
        wanted = DeviceId.parse(device_id)
        if wanted.host is not HostId.JACK:
            return None
        server, _, client = wanted.name.partition("/")
        try:
            probed = _probe(server)
        except Error:
            return None
        if not client:
            return JackDevice(probed, None)
        return next((d for d in self._devices_of(probed) if d.id == wanted), None)
