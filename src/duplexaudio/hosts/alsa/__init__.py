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
PCM's share of JACK is asked of JACK (:func:`duplexaudio.hosts.jack.latency_beyond`),
and a duplex stream on a ``type pulse`` PCM is measured from the plugin's
ring positions (see :func:`_latency_model`). Both are found by following the
PCM's definition in the configuration. libasound is loaded at run time.
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

#: Preferred period (frames) for ``BufferSize.DEFAULT``, when the PCM allows it.
DEFAULT_FRAMES = 256
# Plugin PCMs such as null report "anything" (rates up to 2**32 - 1): keep the
# ranges to what a stream could ever ask for.
_MAX_CHANNELS = 256
_MAX_RATE = 768000
_MAX_PERIOD = 1 << 20
_NO_CLOCK = frozenset({"null"})
_ERRNO_KINDS = {
    -2: ErrorKind.DEVICE_NOT_AVAILABLE,  # ENOENT: no such PCM
    -19: ErrorKind.DEVICE_NOT_AVAILABLE,  # ENODEV
    -111: ErrorKind.DEVICE_NOT_AVAILABLE,  # ECONNREFUSED: the server behind a plugin
    -16: ErrorKind.DEVICE_BUSY,  # EBUSY
    -13: ErrorKind.PERMISSION_DENIED,  # EACCES
    -1: ErrorKind.PERMISSION_DENIED,  # EPERM
    -22: ErrorKind.UNSUPPORTED_CONFIG,  # EINVAL: hardware parameters refused
}
_FORMAT_NAMES = {1: "float32le", 2: "s32le", 4: "s16le"}

_config_lock = threading.Lock()
_config_path: str | None = None


def _load() -> None:
    if lib.da_alsa_load() != 0:
        raise Error(ErrorKind.HOST_UNAVAILABLE, ffi.string(lib.da_alsa_load_error()).decode())
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


def _strerror(err: int) -> str:
    return str(ffi.string(lib.da_alsa_strerror(err)).decode(errors="replace"))


@dataclass(frozen=True)
class _Caps:
    """One direction of a PCM, as its hardware parameters describe it."""

    channels: tuple[int, int]
    rates: tuple[int, int]
    periods: tuple[int, int]
    buffer: tuple[int, int]
    formats: tuple[str, ...]


def _probe(name: str, capture: bool) -> _Caps | int:
    """The PCM's ranges in one direction, or ALSA's negative error code."""
    caps = ffi.new("da_alsa_caps *")
    err = int(lib.da_alsa_probe(name.encode(), int(capture), caps))
    if err:
        return err
    if not caps.formats:
        return -22
    return _Caps(
        channels=(max(1, caps.channels_min), max(1, min(caps.channels_max, _MAX_CHANNELS))),
        rates=(max(1, caps.rate_min), max(1, min(caps.rate_max, _MAX_RATE))),
        periods=(max(1, caps.period_min), max(1, min(caps.period_max, _MAX_PERIOD))),
        buffer=(int(caps.buffer_min), int(caps.buffer_max)),
        formats=tuple(n for bit, n in _FORMAT_NAMES.items() if caps.formats & bit),
    )


def _hints() -> list[tuple[str, str, str]]:
    size = 1 << 16
    while True:
        buf = ffi.new("char[]", size)
        count = lib.da_alsa_hints(buf, size)
        if count != -2:
            break
        size *= 4
    if count < 0:
        return []
    found = []
    for record in ffi.string(buf).decode(errors="replace").split("\x02"):
        fields = record.split("\x01")
        if len(fields) == 3 and fields[0]:
            found.append((fields[0], fields[1], fields[2]))
    return found


def _served_by(name: str, capture: bool) -> tuple[int, list[str]]:
    """Which server plugin serves PCM `name` in one direction (``lib.DA_ALSA_SERVED_*``
    or 0), and for a jack PCM the JACK ports it connects to."""
    buf = ffi.new("char[]", 1 << 14)
    served = int(lib.da_alsa_served_by(name.encode(), int(capture), buf, len(buf)))
    ports = ffi.string(buf).decode(errors="replace").split("\x01")
    return max(served, 0), [port for port in ports if port]


@dataclass(frozen=True)
class _Model:
    """How a stream's round trip is measured; see ``da_alsa_set_model``."""

    by_position: bool = False
    play_ahead: int = 0
    beyond: StreamLatency | None = None


def _latency_model(name: str, params: StreamParams) -> _Model:
    """How to measure the round trip of a stream on PCM `name`.

    The PCM delays, for most PCMs. A ``type jack`` PCM's delays cover the
    plugin's ring buffers only: what JACK adds past the plugin's ports is
    asked of JACK and added (see :func:`duplexaudio.hosts.jack.latency_beyond`).
    A duplex stream on a ``type pulse`` PCM is measured from the ring
    positions, which the plugin moves as the server's stream positions move;
    its playback position runs one period ahead of the server's read
    position, less one frame (measured at 128 to 1024-frame periods against
    PulseAudio 16; the plugin asks for early requests of one period, and
    holds one frame back from a full buffer). Its delays instead add the
    server's latency estimates, which jitter and count the sink's latency,
    which a loop through the sink's monitor never waits for.
    """
    served = {capture: _served_by(name, capture) for capture in (True, False)}
    duplex = bool(params.input_channels and params.output_channels)
    if duplex and served[True][0] == served[False][0] == lib.DA_ALSA_SERVED_PULSE:
        return _Model(by_position=True, play_ahead=params.frames - 1)
    reads = served[True][1] if params.input_channels else []
    writes = served[False][1] if params.output_channels else []
    if not reads and not writes:
        return _Model()
    from duplexaudio.hosts import jack  # only for jack PCMs: libjack is loaded on use

    try:
        return _Model(beyond=jack.latency_beyond(reads, writes))
    except Error as err:
        logger.warning("ALSA PCM '%s': JACK's share of the latency is unknown: %s", name, err)
        return _Model()


def is_available() -> bool:
    """True when libasound loads."""
    return bool(lib.da_alsa_load() == 0)


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
        :func:`_latency_model`).
    """

    def __init__(self, device: AlsaDevice, engine: Any, params: StreamParams) -> None:
        err = ffi.new("int *")
        msg = ffi.new("char[]", 512)
        raw = lib.da_alsa_new(
            engine, device.pcm.encode(), params.input_channels, params.output_channels,
            params.sample_rate, params.frames, err, msg, 512,
        )  # fmt: skip
        if raw == ffi.NULL:
            code = int(err[0])
            raise Error(
                _ERRNO_KINDS.get(code, ErrorKind.BACKEND_ERROR),
                f"ALSA device '{device.id}': {ffi.string(msg).decode(errors='replace')}",
                code=code,
            )
        # The C stream points at the engine: its destructor keeps the engine alive.
        super().__init__(ffi.gc(raw, lambda p, _engine=engine: lib.da_alsa_free(p)),
                         lib.da_alsa_stop)  # fmt: skip
        self._device = device
        self.linked = bool(lib.da_alsa_linked(self._handle))
        model = _latency_model(device.pcm, params)
        self.beyond = model.beyond
        self.by_position = model.by_position
        outside = model.beyond or StreamLatency(0, 0)
        lib.da_alsa_set_model(
            self._handle, model.by_position, model.play_ahead, outside.input, outside.output
        )
        self._last = StreamLatency(params.frames, params.frames)

    @property
    def latency(self) -> StreamLatency:
        """(capture delay + one period, playback delay) in frames, plus what a
        server adds beyond the PCM (:attr:`beyond`), measured at the first
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
        msg = ffi.new("char[]", 512)
        result = self._with_handle(lib.da_alsa_start, msg, 512)
        err = 0 if result is self.CLOSED else int(result)
        if err:
            raise Error(
                _ERRNO_KINDS.get(err, ErrorKind.DEVICE_NOT_AVAILABLE),
                f"cannot start a stream on '{self._device.id}': {ffi.string(msg).decode()}",
                code=err,
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
        self._caps: dict[bool, _Caps | int] = {}
        for capture in (False, True):
            wanted = {"Input": True, "Output": False}.get(ioid)
            self._caps[capture] = _probe(pcm, capture) if wanted in (None, capture) else -2

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
        return [
            SupportedStreamConfigRange(*c.channels, *c.rates, frames, fmt) for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """Capture's hardware-parameter ranges, in every sample format (converted in C)."""
        return self._ranges(True)

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """Playback's hardware-parameter ranges, in every sample format."""
        return self._ranges(False)

    def _supported(self, direction: str) -> list[SupportedStreamConfigRange]:
        # A direction that failed to open for a reason (server gone, busy)
        # says so, rather than that the PCM has no such direction.
        found = self._caps[direction == "input"]
        if isinstance(found, int) and found not in (-2, -22):
            raise Error(
                _ERRNO_KINDS.get(found, ErrorKind.DEVICE_NOT_AVAILABLE),
                f"ALSA device '{self.id}' does not open for {direction}: {_strerror(found)}",
                code=found,
            )
        return super()._supported(direction)

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

    def _open_backend(self, engine: Any, params: StreamParams) -> AlsaBackend:
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
