"""The PortAudio host: CoreAudio, WASAPI and ASIO where they run, and JACK and ALSA here.

libportaudio is loaded at run time: ``$DUPLEXIO_PORTAUDIO`` when set (a
file), else the copy duplexio's macOS and Windows wheels carry (``bundled/``
beside this file, with its license), else the copy inside sounddevice's
wheels (``_sounddevice_data``), else the system's (``libportaudio.so.2``,
``libportaudio.2.dylib``, ``portaudio.dll``). A machine without any simply
has no PortAudio host.

Devices are ``portaudio:<host API>/<device name>``, e.g.
``portaudio:JACK Audio Connection Kit/system`` or ``portaudio:ALSA/pulse``
(a second device of the same name gets `` #2``). PortAudio fixes its
device list when it is initialised, so the host initialises it for each
listing and for each stream, and terminates it again when the last one is
done: the list is current, and no PortAudio client lingers on a JACK server.

PortAudio's callback thread is the device thread (``portaudio.c``); the
stream's latency is what ``Pa_GetStreamInfo`` reports, and the timestamps
follow it. Duplex runs only where one PortAudio device has both directions
on one clock: JACK clients, CoreAudio devices, ASIO drivers, and ALSA
hardware PCMs (``hw:``), which PortAudio links. ALSA plugin PCMs through
PortAudio (``pulse``, ``jack``, ``default``) run input or output only: their
duplex offset moves within a stream (docs/hosts/portaudio.md).

On Linux the native hosts (JACK, PulseAudio, ALSA) reach every device
PortAudio does, with exact timing, so PortAudio is never the default host
there.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from duplexio._engine import ffi, lib
from duplexio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexio.contract import (
    CData,
    HandleBackend,
    StreamParams,
    attempt,
    c_text,
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

#: Rates probed with Pa_IsFormatSupported (PortAudio lists no ranges).
RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
#: Frames per block a stream may ask for; PortAudio adapts the host's buffers to it.
BUFFER_SIZES = (16, 8192)
#: Frames per block for BufferSize.DEFAULT.
DEFAULT_FRAMES = 256
#: Most channels a stream may open in each direction.
MAX_CHANNELS = 64
#: Host API type ids (PaHostApiTypeId) whose devices run both directions on one clock.
_ONE_CLOCK_APIS = {lib.DA_PA_JACK, lib.DA_PA_COREAUDIO, lib.DA_PA_ASIO}
_ENV = "DUPLEXIO_PORTAUDIO"
#: How long closing a stream may take before it is abandoned (seconds):
#: within the 2 s a stream's close() is allowed in all.
CLOSE_TIMEOUT = 1.5
#: Engines and sessions of abandoned streams: PortAudio may still call into them.
_abandoned: list[tuple[CData, object]] = []

logger = logging.getLogger("duplexio")


def library_candidates() -> list[str]:
    """Where libportaudio is looked for, in order (see the module's docstring)."""
    found: list[str] = []
    if os.environ.get(_ENV):
        return [os.environ[_ENV]]
    found += sorted(str(p) for p in _BUNDLED.glob("*portaudio*") if p.suffix in (".dll", ".dylib"))
    spec = importlib.util.find_spec("_sounddevice_data")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            found += sorted(str(p) for p in Path(folder, "portaudio-binaries").glob("*portaudio*"))
    if sys.platform == "darwin":
        found.append("libportaudio.2.dylib")
    elif sys.platform == "win32":
        found.append("portaudio.dll")
    else:
        found.append("libportaudio.so.2")
    return found


#: Where a wheel for macOS or Windows puts its PortAudio (scripts/build-wheels).
_BUNDLED = Path(__file__).with_name("bundled")
_load_lock = threading.Lock()
_loaded_from: str | None = None


def _load() -> str:
    """Load libportaudio from the first candidate that loads; where it came from.

    Raises
    ------
    Error
        ``HOST_UNAVAILABLE`` naming every place tried.
    """
    global _loaded_from
    with _load_lock:
        if _loaded_from is not None:
            return _loaded_from
        reasons = []
        for candidate in library_candidates():
            try:
                clib.da_pa_load(candidate.encode(), context=candidate)
            except Error as err:
                reasons.append(err.message)
                continue
            _loaded_from = candidate
            return candidate
        raise Error(
            ErrorKind.HOST_UNAVAILABLE,
            "the PortAudio host is unavailable: " + "; ".join(reasons),
        )


def _quiet_shared_libraries() -> None:
    """Have libasound and libjack report to the native hosts, not stderr.

    PortAudio's ALSA and JACK host APIs use the process's one libasound and
    libjack, which print every failed probe (dozens of lines on a machine
    without a sound card or a JACK server) unless told where to send them.
    Opening the native ALSA and JACK hosts (through the registry) loads both
    libraries and sets their handlers: ALSA's drops the text, JACK's routes
    it into the failing call's message. Where a host cannot be opened, its
    library is not there for PortAudio either.
    """
    if not sys.platform.startswith("linux"):
        return
    for native in (HostId.ALSA, HostId.JACK):
        try:
            host_from_id(native)
        except Error:
            continue


#: PortAudio's API is not thread-safe: every call Python's threads make into
#: it (initialise, list, probe, open, start, stop, close, terminate) holds
#: this lock. (The C watchdog's Pa_IsStreamActive reads one flag, lock-free.)
_pa = threading.RLock()


class _Session:
    """PortAudio initialised while anything of this host needs it (a listing, a stream)."""

    def __init__(self) -> None:
        _load()
        _quiet_shared_libraries()
        with _pa:
            clib.da_pa_initialize(context="PortAudio", default=ErrorKind.HOST_UNAVAILABLE)
        self._open = True

    def close(self) -> None:
        """Terminate this session's initialisation (once)."""
        with _pa:
            if self._open:
                self._open = False
                lib.da_pa_terminate()

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Info:
    """One PortAudio device as PortAudio described it."""

    index: int
    api: str
    api_type: int
    name: str
    max_inputs: int
    max_outputs: int
    default_rate: float
    low_input_latency: float
    low_output_latency: float
    default_input: bool
    default_output: bool

    @property
    def key(self) -> str:
        """The device's name in its id: ``<host API>/<device name>``."""
        return f"{self.api}/{self.name}"


def _rates(index: int, inputs: int, outputs: int) -> tuple[int, ...]:
    """The `RATES` device `index` takes with these channel counts."""
    with _pa:
        return tuple(
            rate
            for rate in RATES
            if attempt(lib.da_pa_supports, index, inputs, outputs, float(rate))[0] == 0
        )


def _scan() -> list[_Info]:
    """Every device of an initialised PortAudio, with its current index."""
    with _pa:
        _, text = read_text(lib.da_pa_devices, context="PortAudio devices")
    infos: list[_Info] = []
    seen: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 11:
            continue
        index, api, api_type, name = int(fields[0]), fields[1], int(fields[2]), fields[3]
        n_in, n_out = int(fields[4]), int(fields[5])
        seen[f"{api}/{name}"] = count = seen.get(f"{api}/{name}", 0) + 1
        if count > 1:
            name = f"{name} #{count}"

        infos.append(
            _Info(
                index=index, api=api, api_type=api_type, name=name,
                max_inputs=min(n_in, MAX_CHANNELS), max_outputs=min(n_out, MAX_CHANNELS),
                default_rate=float(fields[6]), low_input_latency=float(fields[7]),
                low_output_latency=float(fields[8]), default_input=fields[9] == "1",
                default_output=fields[10] == "1",
            )
        )  # fmt: skip
    return infos


def is_available() -> bool:
    """True when libportaudio loads (its devices are listed on demand)."""
    try:
        _load()
    except Error:
        return False
    return True


def open_host() -> PortAudioHost:
    """The PortAudio host.

    Raises
    ------
    Error
        ``HOST_UNAVAILABLE`` when no libportaudio can be loaded.
    """
    _load()
    return PortAudioHost()


class PortAudioBackend(HandleBackend):
    """One stream: a PortAudio stream whose callback runs the engine.

    Attributes
    ----------
    host_api
        The PortAudio host API the stream runs on (``"JACK Audio Connection Kit"``).
    """

    def __init__(self, device: PortAudioDevice, engine: CData, params: StreamParams) -> None:
        session = _Session()
        try:
            with _pa:
                info = device.find_now()
                out = ffi.new("da_pa **")
                suggested = max(info.low_input_latency, info.low_output_latency)
                clib.da_pa_open(
                    out,
                    engine,
                    info.index,
                    params.input_channels,
                    params.output_channels,
                    params.sample_rate,
                    params.device_frames,
                    suggested,
                    int(info.api_type == lib.DA_PA_JACK),
                    context=f"PortAudio could not open '{device.id}'",
                    default=ErrorKind.DEVICE_NOT_AVAILABLE,
                )
        except Error:
            session.close()
            raise
        stream = out[0]

        def release(handle: CData) -> None:
            # Runs as a cffi destructor, where an exception would only be
            # printed: the one failure (PortAudio did not return) is logged.
            with _pa:
                result, why = attempt(lib.da_pa_close_within, handle, int(CLOSE_TIMEOUT * 1000))
            if result == 0:
                session.close()  # after the stream: PortAudio's last user of this session
                return
            # The stuck close still uses PortAudio and the engine: neither may go.
            _abandoned.append((engine, session))
            logger.warning(
                "closing a PortAudio stream: %s (its server is gone); the stream was left "
                "behind and PortAudio stays initialised, so its device list is no longer "
                "refreshed in this process",
                why,
            )

        def stop(handle: CData) -> None:
            with _pa:
                lib.da_pa_stop(handle)

        super().__init__(owned(stream, release), stop)
        self.host_api = info.api
        self._device = device
        self._last = self._read_latency(stream)

    @staticmethod
    def _read_latency(stream: CData) -> StreamLatency:
        inp, outp = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        lib.da_pa_latency(stream, inp, outp)
        return StreamLatency(int(inp[0]), int(outp[0]))

    @property
    def latency(self) -> StreamLatency:
        """What Pa_GetStreamInfo reported when the stream was opened (frames)."""
        return self._last

    def start(self) -> None:
        """Start the PortAudio stream and its watchdog."""
        with _pa:
            self._call(
                clib.da_pa_start,
                context=f"PortAudio could not start '{self._device.id}'",
                default=ErrorKind.DEVICE_NOT_AVAILABLE,
            )


class PortAudioDevice(Device):
    """A PortAudio device: the rates PortAudio accepts for it, every sample
    format (the engine converts from float32), 1 to its channel counts, and
    any block size in `BUFFER_SIZES` (PortAudio adapts the host's buffers)."""

    def __init__(self, info: _Info) -> None:
        self._info = info
        self._id = DeviceId(HostId.PORTAUDIO, info.key)
        self._probe_lock = threading.Lock()
        self._rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._probe_error: Error | None = None

    def _probed_rates(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input rates, output rates) PortAudio accepts, asked once per device.

        Asked on first use, not when devices are listed: an ALSA plugin PCM
        is opened for every question (a JACK client each time for a
        ``type jack`` PCM), about 20 of them a device.
        """
        with self._probe_lock:
            if self._rates is None:
                try:
                    with _Session():
                        i = self.find_now()
                        self._rates = (
                            _rates(i.index, 1, 0) if i.max_inputs else (),
                            _rates(i.index, 0, 1) if i.max_outputs else (),
                        )
                    self._probe_error = None
                except Error as err:
                    # Not reachable now: no ranges, and why (asked again next time).
                    self._probe_error = err
                    return (), ()
            return self._rates

    def _direction_error(self, direction: Direction) -> Error | None:
        return self._probe_error

    def find_now(self) -> _Info:
        """This device in PortAudio's current list (PortAudio must be initialised).

        Raises
        ------
        Error
            ``DEVICE_NOT_AVAILABLE`` when PortAudio no longer lists it.
        """
        for info in _scan():
            if info.key == self._info.key:
                return info
        raise Error(
            ErrorKind.DEVICE_NOT_AVAILABLE, f"PortAudio no longer lists device '{self._id}'"
        )

    @property
    def id(self) -> DeviceId:
        """``portaudio:<host API>/<device name>``."""
        return self._id

    @property
    def description(self) -> DeviceDescription:
        """Name, host API, channels and PortAudio's default rate and latencies."""
        i = self._info
        if i.max_inputs and i.max_outputs:
            direction = "duplex" if self._duplex_refusal() is None else "input+output"
        else:
            direction = "input" if i.max_inputs else "output"
        return DeviceDescription(
            name=i.name,
            driver=f"portaudio {i.api}",
            direction=direction,
            details=(
                f"{i.max_inputs} in, {i.max_outputs} out, default {i.default_rate:g} Hz",
                f"default low latency: {i.low_input_latency * 1e3:.1f} ms in, "
                f"{i.low_output_latency * 1e3:.1f} ms out",
            ),
        )

    @staticmethod
    def _ranges(channels: int, rates: tuple[int, ...]) -> list[SupportedStreamConfigRange]:
        if not channels:
            return []
        frames = SupportedBufferSize.range(*BUFFER_SIZES)
        return [
            SupportedStreamConfigRange(1, channels, rate, rate, frames, fmt)
            for rate in rates
            for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """Each accepted rate, every format, 1..max input channels."""
        return self._ranges(self._info.max_inputs, self._probed_rates()[0])

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """Each accepted rate, every format, 1..max output channels."""
        return self._ranges(self._info.max_outputs, self._probed_rates()[1])

    def _duplex_refusal(self) -> str | None:
        i = self._info
        if not (i.max_inputs and i.max_outputs):
            return "it has only one direction"
        if i.api_type in _ONE_CLOCK_APIS:
            return None
        if i.api_type == lib.DA_PA_ALSA and i.name.startswith("hw:"):
            return None
        return (
            f"PortAudio's {i.api} device '{i.name}' does not run both directions on one "
            "clock (an ALSA plugin PCM: its duplex offset moves within a stream); use "
            "the native ALSA, PulseAudio or JACK host for duplex"
        )

    def _preferred_sample_rate(self) -> int | None:
        rate = round(self._info.default_rate)
        return rate if rate in RATES else None

    def _default_frames(self, sample_rate: int) -> int:
        return DEFAULT_FRAMES

    def _open_backend(self, engine: CData, params: StreamParams) -> PortAudioBackend:
        return PortAudioBackend(self, engine, params)


class PortAudioHost(Host):
    """The devices of every host API PortAudio was built with."""

    @property
    def id(self) -> HostId:
        """``HostId.PORTAUDIO``."""
        return HostId.PORTAUDIO

    @property
    def name(self) -> str:
        """``"PortAudio"``, with the library's version."""
        return f"PortAudio ({c_text(lib.da_pa_version())})"

    def devices(self) -> list[Device]:
        """Every device PortAudio lists now (it is initialised for the listing)."""
        try:
            with _Session():
                return [PortAudioDevice(info) for info in _scan()]
        except Error:
            return []

    def default_input_device(self) -> Device | None:
        """The default input of the first host API that has one."""
        return next((d for d in self._listed() if d._info.default_input), None)

    def default_output_device(self) -> Device | None:
        """The default output of the first host API that has one."""
        return next((d for d in self._listed() if d._info.default_output), None)

    def _listed(self) -> list[PortAudioDevice]:
        return [d for d in self.devices() if isinstance(d, PortAudioDevice)]
