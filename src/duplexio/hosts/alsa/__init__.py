"""The ALSA host: PCMs of libasound, hardware or plugin.

Devices are the PCMs of ALSA's device hints (``snd_device_name_hint``: the
cards' ``hw:``/``plughw:`` PCMs, ``default`` and every PCM of the user's
configuration that has a ``hint`` section) that open in at least one
direction; ids are ``alsa:<pcm name>``. Any other PCM name is reached by id
(``host.device_by_id("alsa:mypcm")``), which opens it to check it exists.
The ``null`` PCM is left out of the list: it opens both ways but has no
clock.

Supported configurations are read from the PCM's hardware parameters
(channels, rate and period size ranges) with the PCM opened and closed
again at once. ``BufferSize.fixed(n)`` is the period size. The device's
sample format is float32 when it offers it, else s32 or s16, converted in C;
the callback may use any format (the engine converts).

A duplex stream opens capture and playback on the same PCM name with the
same rate and period size and runs them in lockstep on one I/O thread in C
(``alsa.c`` beside this file): one period read, one written, per cycle. Both
directions of one PCM name are taken to share its clock, which holds for a
hardware PCM (the two are linked with ``snd_pcm_link``) and for the plugin
PCMs of a sound server (``jack``, ``pulse``: one server, one clock). The
round trip is measured from the PCM delays, every cycle (a lasting shift is
reported as an xrun), except where the delays cannot tell: a ``type jack``
PCM's share of JACK is asked of the JACK host through the registry
(`external_latency()`), and a
duplex stream on a ``type pulse`` PCM is measured from the plugin's ring
positions (see `_latency_model()`). Both are found by following the
PCM's definition in the configuration. libasound is loaded at run time.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from dataclasses import dataclass

from duplexio._engine import ffi, lib
from duplexio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexio.contract import (
    CData,
    HandleBackend,
    StreamParams,
    clib,
    owned,
    read_text,
)
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat
from duplexio.host import (
    Device,
    DeviceDescription,
    DeviceId,
    Direction,
    Host,
    HostId,
    host_from_id,
)
from duplexio.timing import StreamLatency
from duplexio.watch import POLL_SECONDS, ChangeSource, Polling

logger = logging.getLogger("duplexio")

#: Preferred period (frames) for ``BufferSize.DEFAULT``, when the PCM allows it.
DEFAULT_FRAMES = 256
# Plugin PCMs such as null report "anything" (rates up to 2**32 - 1): keep the
# ranges to what a stream could ever ask for.
_MAX_CHANNELS = 256
_MAX_RATE = 768000
_MAX_PERIOD = 1 << 20
_NO_CLOCK = frozenset({"null"})
_FORMAT_NAMES = {1: "float32le", 2: "s32le", 4: "s16le"}

_config_lock = threading.Lock()
_config_path: str | None = None


def _load() -> None:
    """Load libasound; ``HOST_UNAVAILABLE`` when it cannot be."""
    clib.da_alsa_load(context="the ALSA host is unavailable", default=ErrorKind.HOST_UNAVAILABLE)
    _follow_config()


def _follow_config() -> None:
    """Make libasound re-read its configuration when ``ALSA_CONFIG_PATH`` changed.

    libasound reads the variable once, when it first loads its configuration;
    a program (or test) that points it elsewhere later would otherwise keep
    seeing the old PCMs.
    """
    global _config_path
    with _config_lock:
        now = os.environ.get("ALSA_CONFIG_PATH")
        if now != _config_path:
            _config_path = now
            lib.da_alsa_reload_config()


def _cards_and_config() -> tuple[object, ...]:
    """What changes when ALSA's devices do: the cards (``/proc/asound/cards``,
    ``/dev/snd``) and the configuration files' times."""
    try:
        with open("/proc/asound/cards") as f:
            cards = f.read()
    except OSError:
        cards = ""
    try:
        nodes = sorted(os.listdir("/dev/snd"))
    except OSError:
        nodes = []
    files = [*os.environ.get("ALSA_CONFIG_PATH", "").split(":"), "/etc/asound.conf",
             os.path.expanduser("~/.asoundrc")]  # fmt: skip
    times: list[tuple[str, int | None]] = []
    for path in filter(None, files):
        try:
            times.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            times.append((path, None))
    return (cards, tuple(nodes), tuple(times))


@dataclass(frozen=True)
class _Caps:
    """One direction of a PCM, as its hardware parameters describe it."""

    channels: tuple[int, int]
    rates: tuple[int, int]
    periods: tuple[int, int]
    buffer: tuple[int, int]
    formats: tuple[str, ...]


#: Probe failures that mean the PCM has no such direction, rather than a
#: reason it cannot be used now.
_ABSENT = frozenset({-errno.ENOENT, -errno.EINVAL})


def _probe(name: str, capture: bool) -> _Caps | Error:
    """The PCM's ranges in one direction, or why it does not open."""
    caps = ffi.new("da_alsa_caps *")
    try:
        clib.da_alsa_probe(
            name.encode(),
            int(capture),
            caps,
            context=f"ALSA device 'alsa:{name}'",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )
    except Error as err:
        return err
    if not caps.formats:
        return Error(
            ErrorKind.UNSUPPORTED_CONFIG,
            f"ALSA device 'alsa:{name}' offers none of float32, s32, s16",
            code=-errno.EINVAL,
        )
    return _Caps(
        channels=(max(1, caps.channels_min), max(1, min(caps.channels_max, _MAX_CHANNELS))),
        rates=(max(1, caps.rate_min), max(1, min(caps.rate_max, _MAX_RATE))),
        periods=(max(1, caps.period_min), max(1, min(caps.period_max, _MAX_PERIOD))),
        buffer=(int(caps.buffer_min), int(caps.buffer_max)),
        formats=tuple(n for bit, n in _FORMAT_NAMES.items() if caps.formats & bit),
    )


def _hints() -> list[tuple[str, str, str]]:
    """(name, description, ioid) of every PCM hint; none when there are no hints."""
    try:
        _, text = read_text(lib.da_alsa_hints, context="ALSA's device hints")
    except Error as err:
        logger.warning("%s", err)
        return []
    found = []
    for record in text.split("\x02"):
        fields = record.split("\x01")
        if len(fields) == 3 and fields[0]:
            found.append((fields[0], fields[1], fields[2]))
    return found


def _served_by(name: str, capture: bool) -> tuple[int, list[str]]:
    """Which server plugin serves PCM `name` in one direction (``lib.DA_ALSA_SERVED_*``
    or 0), and for a jack PCM the JACK ports it connects to."""
    served, text = read_text(
        lib.da_alsa_served_by, name.encode(), int(capture), context=f"ALSA PCM '{name}'"
    )
    return served, [port for port in text.split("\x01") if port]


@dataclass(frozen=True)
class _Model:
    """How a stream's round trip is measured; see ``da_alsa_set_model``."""

    by_position: bool = False
    play_ahead: int = 0
    beyond: StreamLatency | None = None
    #: The playback PCM goes on playing what it last played once dropped
    #: (the jack PCM): stop and pause let it play silence first.
    replays_on_drop: bool = False


def _latency_model(name: str, params: StreamParams) -> _Model:
    """How to measure the round trip of a stream on PCM `name`.

    The PCM delays, for most PCMs. A ``type jack`` PCM's delays cover the
    plugin's ring buffers only: what JACK adds past the plugin's ports is
    asked of the JACK host and added (its ``external_latency``).
    A duplex stream on a ``type pulse`` PCM is measured from the ring
    positions, which the plugin moves as the server's stream positions move;
    its playback position runs one period ahead of the server's read
    position, less one frame (the plugin asks for early requests of one
    period, and holds one frame back from a full buffer). Its delays instead add the
    server's latency estimates, which jitter and count the sink's latency,
    which a loop through the sink's monitor never waits for.
    """
    served = {capture: _served_by(name, capture) for capture in (True, False)}
    duplex = bool(params.input_channels and params.output_channels)
    if duplex and served[True][0] == served[False][0] == lib.DA_ALSA_SERVED_PULSE:
        return _Model(by_position=True, play_ahead=params.device_frames - 1)
    reads = served[True][1] if params.input_channels else []
    writes = served[False][1] if params.output_channels else []
    if not reads and not writes:
        return _Model()
    replays = bool(writes)
    try:
        beyond = host_from_id(HostId.JACK).external_latency(reads, writes)
        return _Model(beyond=beyond, replays_on_drop=replays)
    except Error as err:
        logger.warning("ALSA PCM '%s': JACK's share of the latency is unknown: %s", name, err)
        return _Model(replays_on_drop=replays)


def is_available() -> bool:
    """True when libasound loads."""
    try:
        _load()
    except Error:
        return False
    return True


def open_host() -> AlsaHost:
    """The ALSA host; ``HOST_UNAVAILABLE`` when libasound cannot be loaded."""
    _load()
    return AlsaHost()


class AlsaBackend(HandleBackend):
    """One stream: capture and/or playback PCMs on an I/O thread in C.

    Attributes
    ----------
    linked
        True when ``snd_pcm_link`` joined capture and playback (hardware
        PCMs); plugin PCMs are started back to back instead.
    beyond
        What a sound server adds past the PCM, which its delays cannot show
        (a ``type jack`` PCM: the latencies of the JACK ports it connects to,
        one cycle for ``jackd -L``'s loopback ports), as asked of the server;
        included in ``latency``. None for other PCMs.
    by_position
        True when the round trip is measured from the ring positions rather
        than the delays (duplex on a ``type pulse`` PCM; see
        `_latency_model()`).
    """

    def __init__(self, device: AlsaDevice, engine: CData, params: StreamParams) -> None:
        out = ffi.new("da_alsa **")
        clib.da_alsa_new(
            out,
            engine,
            device.pcm.encode(),
            device._pcm_channels(True, params.input_channels),
            device._pcm_channels(False, params.output_channels),
            params.sample_rate,
            params.device_frames,
            context=f"ALSA device '{device.id}'",
        )
        # The C stream points at the engine: its destructor keeps the engine alive.
        super().__init__(owned(out[0], lib.da_alsa_free, engine), lib.da_alsa_stop)
        self._device = device
        self.linked = bool(lib.da_alsa_linked(self._handle))
        model = _latency_model(device.pcm, params)
        self.beyond = model.beyond
        self.by_position = model.by_position
        outside = model.beyond or StreamLatency(0, 0)
        lib.da_alsa_set_model(
            self._handle,
            model.by_position,
            model.play_ahead,
            outside.input,
            outside.output,
            model.replays_on_drop,
        )
        self._last = StreamLatency(params.device_frames, params.device_frames)

    @property
    def latency(self) -> StreamLatency:
        """(capture delay + one period, playback delay) in frames, plus what a
        server adds beyond the PCM (`beyond`), measured at the first
        cycle of the stream and again after each xrun or slip."""
        capture = ffi.new("int64_t *")
        playback = ffi.new("int64_t *")
        if self._with_handle(lib.da_alsa_latency, capture, playback) is self.CLOSED:
            return self._last
        if capture[0] >= 0:
            self._last = StreamLatency(int(capture[0]), int(playback[0]))
        return self._last

    def start(self) -> None:
        """Prepare, pre-fill and start the PCMs, then the I/O thread."""
        self._call(
            clib.da_alsa_start,
            context=f"cannot start a stream on '{self._device.id}'",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )

    def _before_release(self) -> None:
        self.latency  # noqa: B018 - keep the last figures for after close


class AlsaDevice(Device):
    """One ALSA PCM name, in the directions it opens.

    Its ranges are the PCM's hardware parameters (probed once, when the
    device object is made); every sample format is offered to the callback.
    """

    def __init__(self, pcm: str, description: str = "", ioid: str = "") -> None:
        self.pcm = pcm
        self._hint = description
        self._id = DeviceId(HostId.ALSA, pcm)
        # A direction the hint leaves out is not probed: None.
        self._caps: dict[bool, _Caps | Error | None] = {}
        for capture in (False, True):
            wanted = {"Input": True, "Output": False}.get(ioid)
            self._caps[capture] = _probe(pcm, capture) if wanted in (None, capture) else None

    def caps(self, capture: bool) -> _Caps | None:
        """The probed ranges of one direction, or None when it does not open."""
        found = self._caps[capture]
        return found if isinstance(found, _Caps) else None

    def opens(self) -> bool:
        """True when the PCM opened in at least one direction."""
        return self.caps(True) is not None or self.caps(False) is not None

    @property
    def id(self) -> DeviceId:
        """``alsa:<pcm name>``."""
        return self._id

    @property
    def description(self) -> DeviceDescription:
        """The hint's description, direction and the probed ranges."""
        first = self._hint.split("  ")[0].strip() or self.pcm
        inp, out = self.caps(True), self.caps(False)
        direction = "duplex" if inp and out else "input" if inp else "output"
        details = [f"PCM '{self.pcm}'", self._hint] if self._hint else [f"PCM '{self.pcm}'"]
        for label, c in (("capture", inp), ("playback", out)):
            if c is not None:
                details.append(
                    f"{label}: {c.channels[0]}-{c.channels[1]} channels, "
                    f"{c.rates[0]}-{c.rates[1]} Hz, periods {c.periods[0]}-{c.periods[1]} "
                    f"frames, {'/'.join(c.formats)}"
                )
        return DeviceDescription(first, "alsa", direction, tuple(details))

    def _ranges(self, capture: bool) -> list[SupportedStreamConfigRange]:
        c = self.caps(capture)
        if c is None:
            return []
        frames = SupportedBufferSize.range(*c.periods)
        # Fewer channels than the PCM's least are fine: it opens with its
        # least and the stream uses the first ones (as PortAudio does).
        return [
            SupportedStreamConfigRange(1, c.channels[1], *c.rates, frames, fmt)
            for fmt in SampleFormat
        ]

    def _pcm_channels(self, capture: bool, wanted: int) -> int:
        """The channels to open the PCM with for a stream of ``wanted``: at
        least its least (the stream's are its first; the rest are dropped on
        capture and silent on playback)."""
        c = self.caps(capture)
        return max(wanted, c.channels[0]) if c is not None and wanted else wanted

    def _native_channels(self, direction: str) -> int | None:
        c = self.caps(direction == "input")
        return c.channels[1] if c is not None else None

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """Capture's hardware-parameter ranges, in every sample format (converted in C)."""
        return self._ranges(True)

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """Playback's hardware-parameter ranges, in every sample format."""
        return self._ranges(False)

    def _direction_error(self, direction: Direction) -> Error | None:
        # A direction that failed to open for a reason (server gone, busy)
        # says so, rather than that the PCM has no such direction.
        found = self._caps[direction == "input"]
        if isinstance(found, Error) and found.code not in _ABSENT:
            return found
        return None

    def _duplex_refusal(self) -> str | None:
        if self.pcm in _NO_CLOCK:
            return f"the ALSA PCM '{self.pcm}' has no clock"
        if self.caps(True) is None or self.caps(False) is None:
            return f"the ALSA PCM '{self.pcm}' does not open for both capture and playback"
        return None

    def _default_frames(self, sample_rate: int) -> int:
        lo, hi = 1, _MAX_PERIOD
        for c in (self.caps(True), self.caps(False)):
            if c is not None:
                lo, hi = max(lo, c.periods[0]), min(hi, c.periods[1])
        return min(max(DEFAULT_FRAMES, lo), max(lo, hi))

    def _open_backend(self, engine: CData, params: StreamParams) -> AlsaBackend:
        return AlsaBackend(self, engine, params)


class AlsaHost(Host):
    """The PCMs libasound knows from its configuration (``ALSA_CONFIG_PATH``)."""

    @property
    def id(self) -> HostId:
        """``HostId.ALSA``."""
        return HostId.ALSA

    @property
    def name(self) -> str:
        """``"ALSA"``."""
        return "ALSA"

    def devices(self) -> list[Device]:
        """The hinted PCMs that open in some direction (``null`` left out).

        Each is opened and closed once per direction to read its ranges.
        """
        _follow_config()
        found: list[Device] = []
        for name, desc, ioid in _hints():
            if name in _NO_CLOCK:
                continue
            device = AlsaDevice(name, desc, ioid)
            if device.opens():
                found.append(device)
        return found

    def _change_source(self) -> ChangeSource:
        """The sound cards and the configuration files, looked at every
        `POLL_SECONDS`: listing itself opens every PCM (a ``type jack`` one is
        a JACK client), too much to do twice a second."""
        return Polling(POLL_SECONDS, _cards_and_config)

    def default_output_device(self) -> Device | None:
        """``alsa:default`` when it opens for playback, else the first output device."""
        return self._default(capture=False)

    def default_input_device(self) -> Device | None:
        """``alsa:default`` when it opens for capture, else the first input device."""
        return self._default(capture=True)

    def _default(self, capture: bool) -> Device | None:
        _follow_config()
        device = AlsaDevice("default")
        if device.caps(capture) is not None:
            return device
        found = self.input_devices() if capture else self.output_devices()
        return found[0] if found else None

    def device_by_id(self, device_id: str | DeviceId) -> Device | None:
        """The PCM with this name, hinted or not; None when it opens in neither direction."""
        wanted = DeviceId.parse(device_id)
        if wanted.host is not HostId.ALSA:
            return None
        _follow_config()
        hint = next((h for h in _hints() if h[0] == wanted.name), None)
        device = AlsaDevice(wanted.name, *(hint[1:] if hint else ()))
        return device if device.opens() else None
