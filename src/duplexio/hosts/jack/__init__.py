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
`JackHost.external_latency()` answers the ALSA host's one question of
JACK (asked through the registry): what the graph adds around a
``type jack`` PCM.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from duplexio._engine import ffi, lib
from duplexio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexio.contract import (
    CData,
    HandleBackend,
    NativeNotices,
    StreamParams,
    attempt,
    c_text,
    clib,
    owned,
    read_text,
)
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat
from duplexio.host import Device, DeviceDescription, DeviceId, Host, HostId
from duplexio.timing import StreamLatency
from duplexio.watch import ChangeSource

logger = logging.getLogger("duplexio")

#: Most ports a stream may open in each direction (ports beyond the device's
#: own are left unconnected).
MAX_CHANNELS = 64

_DRIVER_CLIENT = "system"
_LOOPBACK_CLIENT = "loopback"  # jackd -L: copies after exactly one cycle


def default_server() -> str:
    """The server libjack talks to by default: ``$JACK_DEFAULT_SERVER`` or ``default``."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def _load() -> None:
    """Load libjack; ``HOST_UNAVAILABLE`` when it cannot be."""
    clib.da_jack_load(context="the JACK host is unavailable", default=ErrorKind.HOST_UNAVAILABLE)


#: Open clients per server, process-wide. libjack (jack2 1.9.21, checked here)
#: crashes the process when it opens a client on one server while a client
#: on another is open: so that is refused (one server at a time per process).
_clients: collections.Counter[str] = collections.Counter()
_clients_lock = threading.Lock()


def _open_client(name: str, server: str, engine: CData | None = None) -> CData:
    """A JACK client on `server` (never starts a server), closed on release.

    A client bound to an engine keeps that engine alive until it is closed.

    Raises
    ------
    Error
        ``UNSUPPORTED_OPERATION`` while clients of another server are open in
        this process (libjack would crash); the host's kinds otherwise.
    """
    resolved = default_server() if server == "default" else server
    out = ffi.new("da_jack **")
    # "default" means: no server name, so libjack applies its own rules.
    wanted = ffi.NULL if server == "default" else server.encode()
    with _clients_lock:
        busy = sorted(s for s, n in _clients.items() if n and s != resolved)
        if busy:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"cannot open a client of JACK server '{resolved}' while streams or devices "
                f"of server '{busy[0]}' are open in this process: libjack crashes the "
                "process then; close those first",
            )
        clib.da_jack_open(
            out,
            name.encode(),
            wanted,
            context=f"cannot reach JACK server '{server}'",
        )
        _clients[resolved] += 1
    return owned(out[0], lambda c: _close_client(c, engine, resolved))


#: How long closing a client may take before it is abandoned (seconds).
CLOSE_TIMEOUT = 5.0
#: Engines of abandoned clients: their process callback may still run.
_abandoned: list[CData | None] = []


def _close_client(client: CData, engine: CData | None, server: str) -> None:
    # Runs as a cffi destructor, where an exception would only be printed:
    # the one failure (libjack did not return) is logged instead.
    result, why = attempt(lib.da_jack_close_within, client, int(CLOSE_TIMEOUT * 1000))
    if result == 0:
        with _clients_lock:
            _clients[server] -= 1
    else:
        _abandoned.append(engine)
        logger.warning(
            "closing a JACK client: %s (libjack deadlocked; seen with pipewire-jack 0.3); "
            "the client was left behind",
            why,
        )


def _ports(client: CData, pattern: str, flags: int) -> list[str]:
    _, text = read_text(lib.da_jack_ports, client, pattern.encode(), flags, context="JACK ports")
    return [name for name in text.split("\n") if name]


@dataclass(frozen=True)
class _Server:
    """What a probe client saw of a server."""

    name: str
    sample_rate: int
    buffer_size: int
    outputs: dict[str, list[str]]  # client -> its output (capture-side) ports
    inputs: dict[str, list[str]]  # client -> its input (playback-side) ports


def _by_client(ports: list[str]) -> dict[str, list[str]]:
    """Each client's ports in channel order: by name, numbers by value
    (``capture_2`` before ``capture_10``). Not the server's order, which
    follows port ids, and jackd reuses the ids of ports that went away."""
    grouped: dict[str, list[str]] = {}
    for port in ports:
        grouped.setdefault(port.split(":", 1)[0], []).append(port)
    return {client: sorted(names, key=_channel_order) for client, names in grouped.items()}


def _channel_order(port: str) -> list[tuple[int, int | str]]:
    """A sort key comparing the digit runs of a port name as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", port)]


#: Probes of a server before it counts as not there. A jackd on a busy
#: machine now and then refuses a client it would take a moment later
#: (status 0x21); one that is not running refuses at once, so the tries
#: cost nothing then.
PROBE_TRIES = 3


def _probe(server: str) -> _Server:
    for tries in range(PROBE_TRIES):
        try:
            return _probe_once(server)
        except Error as err:
            # Another server's clients are open: say so, not "not there".
            if err.kind is ErrorKind.UNSUPPORTED_OPERATION or tries == PROBE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _probe_once(server: str) -> _Server:
    client = _open_client("duplexio-probe", server)
    try:
        return _Server(
            name=server,
            sample_rate=int(lib.da_jack_sample_rate(client)),
            buffer_size=int(lib.da_jack_buffer_size(client)),
            outputs=_by_client(_ports(client, "", lib.DA_JACK_PORT_OUTPUT)),
            inputs=_by_client(_ports(client, "", lib.DA_JACK_PORT_INPUT)),
        )
    finally:
        ffi.release(client)


def is_available() -> bool:
    """True when libjack loads and the default server answers."""
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
    _load()
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

    def __init__(self, device: JackDevice, engine: CData, params: StreamParams) -> None:
        client = _open_client("duplexio", device.server, engine)
        rate, frames = int(lib.da_jack_sample_rate(client)), int(lib.da_jack_buffer_size(client))
        if (rate, frames) != (params.sample_rate, params.device_frames):
            ffi.release(client)
            raise Error(
                ErrorKind.STREAM_INVALIDATED,
                f"JACK server '{device.server}' now runs at {rate} Hz, {frames} frames, "
                f"not the {params.sample_rate} Hz, {params.device_frames} frames asked for",
            )
        try:
            clib.da_jack_bind(
                client,
                engine,
                params.input_channels,
                params.output_channels,
                context=f"JACK server '{device.server}' refused the stream's ports",
            )
        except Error:
            ffi.release(client)
            raise
        # The client stays active and connected across stop: the engine, already
        # stopped, answers each cycle with silence, and a restart is immediate.
        # Deactivating would drop the connections, and jack_deactivate is where
        # pipewire-jack was seen to deadlock.
        super().__init__(client, stop=None)
        lib.da_jack_set_graph_loop(client, int(device.client == _LOOPBACK_CLIENT))
        self.client_name = c_text(lib.da_jack_client_name(client))
        self.input_ports = [
            c_text(lib.da_jack_port_name(client, 0, i)) for i in range(params.input_channels)
        ]
        self.output_ports = [
            c_text(lib.da_jack_port_name(client, 1, i)) for i in range(params.output_channels)
        ]
        self._device = device
        self._frames = params.device_frames
        self._active = False

    @property
    def latency(self) -> StreamLatency:
        capture = ffi.new("uint32_t *")
        playback = ffi.new("uint32_t *")
        if self._with_handle(lib.da_jack_latency, capture, playback) is self.CLOSED:
            return StreamLatency(0, self._frames)
        return StreamLatency(int(capture[0]), int(playback[0]))

    def start(self) -> None:
        server = self._device.server
        with self._lock:
            if self._handle is None or self._active:
                return
            clib.da_jack_activate(
                self._handle,
                context=f"cannot activate the client on JACK server '{server}'",
                default=ErrorKind.DEVICE_NOT_AVAILABLE,
            )
            self._active = True
            if not self._device.connect:
                return
            sources, sinks = self._device.ports()
            pairs = [*zip(sources, self.input_ports, strict=False)]
            pairs += zip(self.output_ports, sinks, strict=False)
            for source, destination in pairs:
                try:
                    clib.da_jack_connect(
                        self._handle,
                        source.encode(),
                        destination.encode(),
                        context=f"JACK server '{server}': connecting {source} to {destination}",
                    )
                except Error as err:
                    # The stream runs on with that port unconnected; say so.
                    logger.warning("%s", err)


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

    def _native_channels(self, direction: str) -> int | None:
        sources, sinks = self.ports()
        return len(sources if direction == "input" else sinks)

    def _default_frames(self, sample_rate: int) -> int:
        return self._server.buffer_size

    def _open_backend(self, engine: CData, params: StreamParams) -> JackBackend:
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
                f"a JACK server name is a non-empty string without '/', got {shown(name)}",
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
        clients = [c for c in clients if not c.startswith("duplexio")]
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

    def _change_source(self) -> ChangeSource:
        """A client of the default server told of ports registered and gone (a
        device is a client with audio ports) and of the server going away."""
        client = _open_client("duplexio-watch", default_server())
        clib.da_jack_watch(
            client, context="watching the JACK server", default=ErrorKind.DEVICE_NOT_AVAILABLE
        )
        return NativeNotices(client, lib.da_jack_watch_wait, f"JACK server '{default_server()}'")

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

    def external_latency(
        self, capture_ports: Sequence[str], playback_ports: Sequence[str]
    ) -> StreamLatency:
        """What JACK adds around a capture client reading `capture_ports` and a
        playback client writing `playback_ports` (full port names) on the
        default server: the ALSA host's question for a ``type jack`` PCM,
        whose two directions are two JACK clients.

        Each side is the largest latency of its ports (capture latency of
        what is read, playback latency of what is written): a sound card's
        buffers for the driver's ports, and nothing for a path through other
        clients, which run in the same cycle in graph order (the two clients
        form no feedback loop, unlike a JACK host stream looping through
        another client). The ports of ``jackd -L``'s ``loopback`` driver are
        the exception: it copies its playback ports to its capture ports one
        cycle later, and reports the main driver's latencies instead, so a
        side on them counts that cycle (playback) or nothing (capture).

        Raises
        ------
        Error
            ``DEVICE_NOT_AVAILABLE`` when the server does not answer.
        """
        client = _open_client("duplexio-latency", default_server())
        try:
            sides = []
            frames = ffi.new("uint32_t *")
            for playback, ports in enumerate((capture_ports, playback_ports)):
                if ports and all(port.split(":", 1)[0] == _LOOPBACK_CLIENT for port in ports):
                    sides.append(int(lib.da_jack_buffer_size(client)) if playback else 0)
                    continue
                latest = 0
                for port in ports:
                    # A port that is not there (yet) adds nothing.
                    found, _ = attempt(
                        lib.da_jack_named_port_latency, client, port.encode(), playback, frames
                    )
                    if found == 0:
                        latest = max(latest, int(frames[0]))
                sides.append(latest)
            return StreamLatency(*sides)
        finally:
            ffi.release(client)

    def device_by_id(self, device_id: str | DeviceId) -> Device | None:
        """The device with this id; any server name is probed, listed or not.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` while clients of another JACK server are
            open in this process (libjack would crash on this one).
        """
        wanted = DeviceId.parse(device_id)
        if wanted.host is not HostId.JACK:
            return None
        server, _, client = wanted.name.partition("/")
        try:
            probed = _probe(server)
        except Error as err:
            if err.kind is ErrorKind.UNSUPPORTED_OPERATION:
                raise  # another server's clients are open: say so, not "no such device"
            return None
        if not client:
            return JackDevice(probed, None)
        return next((d for d in self._devices_of(probed) if d.id == wanted), None)
