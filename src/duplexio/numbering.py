"""Devices and host APIs numbered as PortAudio numbers them, for the faces of
PortAudio's Python bindings (`duplexio.sounddevice`, `duplexio.pyaudio`).

A device's index is its row in `duplexio.query_devices()` (what
``dio.default.device = 3`` picks too); each host is one host API, but
PortAudio's devices keep their own host API ("MME", "Windows WASAPI", ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import NoReturn

from duplexio.devices import channel_count, query_devices
from duplexio.errors import Error
from duplexio.host import Device, DeviceId, HostId, default_host, host_from_id

__all__ = [
    "HOSTAPI_NAMES",
    "DeviceFacts",
    "Numbering",
    "Translating",
    "hostapi_name",
    "own_channels",
]

#: What each host is called as a host API.
HOSTAPI_NAMES = {
    HostId.JACK: "JACK Audio Connection Kit",
    HostId.ALSA: "ALSA",
    HostId.PULSE: "PulseAudio",
    HostId.PIPEWIRE: "PipeWire",
    HostId.VIRTUAL: "duplexio virtual",
    HostId.PORTAUDIO: "PortAudio",
}


def hostapi_name(device: Device) -> str:
    """The host API a device belongs to (a PortAudio device: PortAudio's own)."""
    if device.id.host is HostId.PORTAUDIO and "/" in device.id.name:
        return device.id.name.split("/", 1)[0]
    return HOSTAPI_NAMES[device.id.host]


def own_channels(device: Device, direction: str) -> int:
    """The channels the device has in ``direction``, or 0."""
    try:
        return channel_count(device, direction)
    except Error:
        return 0


@dataclass(frozen=True)
class DeviceFacts:
    """What PortAudio's device info says, for one device.

    ``low_latency`` is one device period, ``high_latency`` two (the period
    pipelined mode adds); both in seconds, -1.0 for an absent direction.
    """

    index: int
    name: str
    hostapi: int
    max_input_channels: int
    max_output_channels: int
    low_input_latency: float
    low_output_latency: float
    high_input_latency: float
    high_output_latency: float
    default_samplerate: float


class Numbering:
    """One snapshot of the device table and its host APIs; what it is asked
    of a device or a host is asked once."""

    def __init__(self) -> None:
        self.devices: list[Device] = list(query_devices())
        names: list[str] = []
        for dev in self.devices:
            if hostapi_name(dev) not in names:
                names.append(hostapi_name(dev))
        self.hostapis = names
        self._facts: dict[int, DeviceFacts] = {}
        self._defaults: dict[tuple[HostId, str], DeviceId | None] = {}

    def index(self, device: Device | None) -> int:
        """The row of ``device`` (a default's placeholder: the device it stands for), or -1."""
        if device is None:
            return -1
        row = device._listed_id()
        return next((i for i, d in enumerate(self.devices) if d.id == row), -1)

    def facts(self, index: int, device: Device | None = None) -> DeviceFacts:
        """Row ``index``'s facts (or ``device``'s, which may be unlisted: index -1)."""
        if device is None and index in self._facts:
            return self._facts[index]
        found = self._facts_of(index, device or self.devices[index])
        if device is None:
            self._facts[index] = found
        return found

    def _facts_of(self, index: int, dev: Device) -> DeviceFacts:
        api = hostapi_name(dev)
        ins, outs = own_channels(dev, "input"), own_channels(dev, "output")
        config = dev.default_output_config() if outs else dev.default_input_config()
        rate = config.sample_rate
        period = dev._default_frames(rate) / rate
        return DeviceFacts(
            index=index,
            name=dev.name,
            hostapi=self.hostapis.index(api) if api in self.hostapis else -1,
            max_input_channels=ins,
            max_output_channels=outs,
            low_input_latency=period if ins else -1.0,
            low_output_latency=period if outs else -1.0,
            high_input_latency=2 * period if ins else -1.0,
            high_output_latency=2 * period if outs else -1.0,
            default_samplerate=float(rate),
        )

    def members(self, hostapi: int) -> list[int]:
        """The rows of host API ``hostapi``'s devices."""
        name = self.hostapis[hostapi]
        return [i for i, d in enumerate(self.devices) if hostapi_name(d) == name]

    def hostapi_default(self, hostapi: int, direction: str) -> int:
        """The row of a host API's default device for ``direction``, or -1."""
        for i in self.members(hostapi):
            dev = self.devices[i]
            if self._host_default(dev.id.host, direction) == dev.id:
                return i
        return -1

    def _host_default(self, host_id: HostId, direction: str) -> DeviceId | None:
        key = (host_id, direction)
        if key not in self._defaults:
            try:
                host = host_from_id(host_id)
                pick = (
                    host.default_input_device()
                    if direction == "input"
                    else host.default_output_device()
                )
            except Error:
                pick = None
            self._defaults[key] = pick._listed_id() if pick is not None else None
        return self._defaults[key]

    def default_hostapi(self) -> int:
        """The default host's host API, or -1."""
        name = HOSTAPI_NAMES[default_host().id]
        return self.hostapis.index(name) if name in self.hostapis else -1


class Translating:
    """``with Translating(own, fail):`` hands a `duplexio.Error` raised inside
    (but one of the face's ``own`` class) to ``fail``, which raises the
    face's own error for it."""

    def __init__(self, own: type[Error], fail: Callable[[Error], NoReturn]) -> None:
        self._own = own
        self._fail = fail

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Error) and not isinstance(exc, self._own):
            self._fail(exc)
