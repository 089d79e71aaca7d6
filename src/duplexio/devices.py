"""Every host's devices in one table, a device picked the way a user names it, defaults.

`query_devices()` lists the devices of every usable host, numbered: printed
it is one table, iterated it is a list of `Device`.
`find_device()` turns whatever a user passes as ``device=`` into a
device: a ``Device``, an id (``"jack:system"``), an index into that table, a
unique part of a device's name, or None for the default. `default`
holds the settable defaults the module-level calls (``play``, ``rec``,
``playrec``, ``measure_latency``) use for what they are not given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from duplexio._validate import checked, checked_methods, whole
from duplexio.config import BufferSize
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat
from duplexio.host import (
    Device,
    DeviceEvent,
    DeviceId,
    DeviceWatcher,
    Host,
    HostId,
    considered_hosts,
    default_host,
    host_from_id,
    watch,
)

__all__ = ["Defaults", "DeviceList", "default", "find_device", "query_devices", "watch_devices"]

DeviceLike = Device | DeviceId | str | int | None


def channel_count(device: Device, direction: str) -> int:
    """The channels ``device`` has that way (``"input"`` or ``"output"``): its own,
    where its ranges allow more; 0 for none."""
    ranges = (
        device.supported_input_configs()
        if direction == "input"
        else device.supported_output_configs()
    )
    most = max((r.max_channels for r in ranges), default=0)
    native = device._native_channels("input" if direction == "input" else "output")
    return most if native is None or not most else min(native, most)


def _rates(device: Device) -> str:
    ranges = device.supported_input_configs() + device.supported_output_configs()
    if not ranges:
        return "-"
    low = min(r.min_sample_rate for r in ranges)
    high = max(r.max_sample_rate for r in ranges)
    return f"{low}" if low == high else f"{low}-{high}"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of text as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@checked_methods
class DeviceList(Sequence[Device]):
    """The devices of every usable host at one moment, numbered from 0.

    A sequence of `Device` (``list(...)``,
    indexing, ``len``); ``str()`` and ``repr()`` give one table: index, id,
    name, input and output channels, sample rates, and which device is each
    host's default input, output and duplex device (``*`` marks the default
    host's). The index is what ``device=3`` picks.
    """

    def __init__(self, devices: Sequence[Device], marks: Sequence[str], default: HostId) -> None:
        self._devices = list(devices)
        self._marks = list(marks)
        self._default = default

    @overload
    def __getitem__(self, index: int) -> Device: ...
    @overload
    def __getitem__(self, index: slice) -> list[Device]: ...
    def __getitem__(self, index: int | slice) -> Device | list[Device]:
        return self._devices[index]

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self._devices)

    def __str__(self) -> str:
        rows = [["#", "id", "name", "direction", "in", "out", "rates (Hz)", "default"]]
        for n, (dev, mark) in enumerate(zip(self._devices, self._marks, strict=True)):
            rows.append(
                [
                    str(n),
                    str(dev.id),
                    dev.name,
                    dev.description.direction,
                    str(channel_count(dev, "input")),
                    str(channel_count(dev, "output")),
                    _rates(dev),
                    mark,
                ]
            )
        return f"{table(rows)}\n(* the default host: {self._default.value})"

    def __repr__(self) -> str:
        return str(self)


def _marks(host: Host, devices: Sequence[Device], is_default: bool) -> list[str]:
    picks = {
        "in": host.default_input_device(),
        "out": host.default_output_device(),
        "duplex": host.default_duplex_device(),
        "loopback": host.default_loopback_device(),
    }
    star = "*" if is_default else ""
    out = []
    for dev in devices:
        words = [k for k, d in picks.items() if d is not None and d._listed_id() == dev.id]
        out.append(star + ",".join(words) if words else "")
    return out


@checked
def query_devices(host: HostId | str | None = None) -> DeviceList:
    """The devices of every usable host (or of ``host``), as a table and a list.

    On Linux PortAudio's devices are listed only when asked for by name
    (``query_devices("portaudio")``): the native hosts list the same devices.

    Parameters
    ----------
    host
        A host id to list only that one's devices.

    Returns
    -------
    DeviceList
        Printed, one numbered table; iterated, the devices. A host that
        fails while it is listed is left out (``duplexio hosts`` says why).

    Raises
    ------
    Error
        ``INVALID_INPUT`` or ``HOST_UNAVAILABLE`` for a ``host`` that is not
        one or cannot be used.
    """
    chosen = default_host().id
    ids = [HostId(host_from_id(host).id)] if host is not None else considered_hosts()
    devices: list[Device] = []
    marks: list[str] = []
    for hid in ids:
        try:
            h = host_from_id(hid)
            found = h.devices()
            marks += _marks(h, found, hid is chosen)
        except Error:
            continue
        devices += found
    return DeviceList(devices, marks, chosen)


@checked
def watch_devices(callback: Callable[[DeviceEvent], object] | None = None) -> DeviceWatcher:
    """Device events from every host `query_devices()` lists, as they happen.

    Each host tells what it can (its server's notifications, or a listing
    every half second where it has none; the hosts' pages say which). Events
    of one host come in the order they happened.

    Parameters
    ----------
    callback
        Called with each `DeviceEvent`, in order, on a thread of the
        watcher's (never an audio thread); None to iterate the watcher
        (``for event in watcher``, ``async for``, `DeviceWatcher.get`).

    Returns
    -------
    DeviceWatcher
        Close it (or use ``with``) to stop watching.
    """
    hosts: list[Host] = []
    for hid in considered_hosts():
        try:
            hosts.append(host_from_id(hid))
        except Error:
            continue
    return watch(hosts, callback)


def _direction_ok(device: Device, direction: str) -> bool:
    return {
        "input": device.supports_input,
        "output": device.supports_output,
        "duplex": device.supports_duplex,
    }[direction]()


def _by_name(text: str, direction: str) -> Device:
    """The one device (of the direction) whose id or name is or contains ``text``."""
    usable = [d for d in query_devices() if _direction_ok(d, direction)]
    needle = text.casefold()
    exact = [d for d in usable if needle in (str(d.id).casefold(), d.name.casefold())]
    found = exact or [
        d for d in usable if needle in str(d.id).casefold() or needle in d.name.casefold()
    ]
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"'{d.id}' ({d.name})" for d in (found or usable)) or "none"
    if found:
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"device {shown(text)} matches {len(found)} {direction} devices: {names}; "
            "give more of the name, or the id",
        )
    hint = ""
    try:
        SampleFormat.parse(text)
        hint = " (that is a sample format: pass it as sample_format=)"
    except Error:
        pass
    raise Error(
        ErrorKind.DEVICE_NOT_AVAILABLE,
        f"no {direction} device matches {shown(text)}{hint}; {direction} devices: {names}",
    )


#: What find_device's ``direction`` takes.
_DIRECTIONS = ("input", "output", "duplex")


@checked
def find_device(device: DeviceLike, *, direction: str) -> Device:
    """Resolve a user's device argument into a device that can do ``direction``.

    Parameters
    ----------
    device
        A ``Device``; a ``DeviceId`` or its text ``"<host>:<name>"``; an
        index into `query_devices()`; a unique part of a device's name or
        id (case-insensitive, among the devices of that direction); or None:
        `default`'s device for the direction, else the default host's.
    direction
        ``"input"``, ``"output"`` or ``"duplex"``.

    Raises
    ------
    Error
        ``DEVICE_NOT_AVAILABLE`` naming the device (and, for a name, the
        candidates) when none matches now; ``INVALID_INPUT`` for an
        ambiguous name, an index out of range or a value of another type.
    """
    if not isinstance(direction, str) or direction not in _DIRECTIONS:
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"direction must be one of {', '.join(map(repr, _DIRECTIONS))}, got {shown(direction)}",
        )
    if isinstance(device, Device):
        return device
    if device is None:
        chosen = default.device_for(direction)
        if chosen is not None:
            return find_device(chosen, direction=direction)
        return _host_default(direction)
    if isinstance(device, int) and not isinstance(device, bool):
        listed = query_devices()
        if not 0 <= device < len(listed):
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"device index {device} is not in the table (0..{len(listed) - 1}, "
                "see dio.query_devices())",
            )
        return listed[device]
    if isinstance(device, str) and not _has_host_prefix(device):
        return _by_name(device, direction)
    if not isinstance(device, (str, DeviceId)):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"device must be a Device, an id, an index or a name, got {shown(device)}",
        )
    did = DeviceId.parse(device)
    found = host_from_id(did.host).device_by_id(did)
    if found is None:
        raise Error(ErrorKind.DEVICE_NOT_AVAILABLE, f"no device '{did}' on host '{did.host}' now")
    return found


def _has_host_prefix(text: str) -> bool:
    head, colon, _ = text.partition(":")
    return bool(colon) and head.strip().lower() in {h.value for h in HostId}


def _host_default(direction: str) -> Device:
    host = default_host()
    pick = {
        "input": host.default_input_device,
        "output": host.default_output_device,
        "duplex": host.default_duplex_device,
    }[direction]()
    if pick is None:
        raise Error(
            ErrorKind.DEVICE_NOT_AVAILABLE, f"host '{host.id}' has no default {direction} device"
        )
    return pick


@checked_methods
class Defaults:
    """What the module-level calls use for what they are not given (``dio.default``).

    Attributes (each None until set, and checked when set)
    ----------
    device
        The device for every direction (anything ``device=`` takes).
    input_device, output_device
        Override ``device`` for that direction (duplex uses ``device``).
    sample_rate
        Hz; None: the device's default rate.
    buffer_size
        Frames per block; None: the device's default.
    channels
        Input channels for ``rec`` and ``playrec``; None: the device's default.
    sample_format
        The recording's format; None: float32.

    ``reset()`` puts every one back to None.
    """

    _FIELDS = ("device", "input_device", "output_device", "sample_rate", "buffer_size",
               "channels", "sample_format")  # fmt: skip

    device: DeviceLike
    input_device: DeviceLike
    output_device: DeviceLike
    sample_rate: int | None
    buffer_size: int | None
    channels: int | None
    sample_format: SampleFormat | str | None  # stored parsed: a SampleFormat

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Every default back to None."""
        for name in self._FIELDS:
            object.__setattr__(self, name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._FIELDS:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"dio.default has no {shown(name)}; it has: {', '.join(self._FIELDS)}",
            )
        if value is not None:
            if name == "sample_rate":
                value = whole("dio.default.sample_rate", value, unit="Hz")
            elif name in ("buffer_size", "channels"):
                value = whole(f"dio.default.{name}", value)
            elif name == "sample_format":
                value = SampleFormat.parse(value)
            elif not isinstance(value, (Device, DeviceId, str, int)) or isinstance(value, bool):
                raise Error(
                    ErrorKind.INVALID_INPUT,
                    f"dio.default.{name} must be a device, an id, an index or a name, "
                    f"got {shown(value)}",
                )
        object.__setattr__(self, name, value)

    def device_for(self, direction: str) -> DeviceLike:
        """The default device set for ``direction``, or None."""
        specific = {"input": self.input_device, "output": self.output_device}.get(direction)
        return specific if specific is not None else self.device

    def _buffer_size_for(self, buffer_size: int | None) -> BufferSize:
        """``buffer_size`` if given, else this default's, else the device's."""
        frames = buffer_size if buffer_size is not None else self.buffer_size
        return BufferSize.DEFAULT if frames is None else BufferSize.fixed(frames)

    def _sample_rate_for(self, sample_rate: int | None, device_rate: int) -> int:
        """``sample_rate`` if given, else this default's, else ``device_rate``."""
        if sample_rate is not None:
            return sample_rate
        return self.sample_rate if self.sample_rate is not None else device_rate

    def _channels_for(self, channels: int | None, device_channels: int) -> int:
        """``channels`` if given, else this default's, else ``device_channels``."""
        if channels is not None:
            return channels
        return self.channels if self.channels is not None else device_channels

    def _sample_format_for(self, sample_format: SampleFormat | str | None) -> SampleFormat | str:
        """``sample_format`` if given, else this default's, else float32."""
        if sample_format is not None:
            return sample_format
        return self.sample_format or SampleFormat.F32

    def __repr__(self) -> str:
        return "dio.default(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._FIELDS) + ")"


#: The process's defaults; set attributes on it (``dio.default.sample_rate = 44100``).
default = Defaults()
