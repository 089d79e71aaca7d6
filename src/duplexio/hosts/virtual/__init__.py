"""The virtual host: clocked devices that live inside the process.

The embedded default when a machine has no audio server or sound card, and a
test double for users' own audio code: a duplex loopback whose round trip is
exact and known, an output-only device, and an input-only device that plays
a signal you give it. Each stream's device clock is a C thread that sleeps to
absolute times, so it runs at real time and never drifts, unless it is asked
to: a device takes a clock offset in ppm (and a slow wander), and a *cable*
joins an output device to an input device on two such clocks, as a USB
microphone and separate speakers are. Faults a real device can have
(disconnect, buffer-size or sample-rate change, a stalled clock) can be
injected through the device's methods.

Nothing here talks to a real audio API. The clock thread is ``virtual.c``
beside this file.
"""

from __future__ import annotations

import inspect
import math
import numbers
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from duplexio._engine import ffi, lib
from duplexio._validate import flag, optional_seconds, seconds, whole
from duplexio.config import (
    MAX_BUFFER_FRAMES,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    SupportedBufferSize,
    SupportedStreamConfigRange,
)
from duplexio.contract import CData, HandleBackend, StreamParams, clib, owned
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat
from duplexio.host import Device, DeviceDescription, DeviceId, Host, HostId
from duplexio.timing import StreamLatency
from duplexio.watch import ChangeSource

_KINDS = {
    "loopback": lib.DA_VIRTUAL_LOOPBACK,
    "output": lib.DA_VIRTUAL_OUTPUT,
    "input": lib.DA_VIRTUAL_INPUT,
}


def is_available() -> bool:
    """The virtual host needs nothing but the engine: always True."""
    return True


def open_host() -> VirtualHost:
    """A new virtual host with its three standard devices."""
    return VirtualHost()


#: The largest clock offset or wander a virtual device takes (ppm): 1 %.
MAX_PPM = 10000.0


def _ppm(name: str, value: object) -> float:
    """A clock offset in ppm: a finite real number within +-MAX_PPM."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if real else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(number) and abs(number) <= MAX_PPM):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{name} must be a number of ppm within +-{MAX_PPM:g}, got {shown(value)}",
        )
    return number


def _range(name: str, value: object, maximum: int) -> tuple[int, int]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise Error(
            ErrorKind.INVALID_INPUT, f"{name} must be a (min, max) tuple, got {shown(value)}"
        )
    low = whole(f"{name}[0]", value[0], maximum=maximum)
    high = whole(f"{name}[1]", value[1], maximum=maximum)
    if low > high:
        raise Error(ErrorKind.INVALID_INPUT, f"{name} has min {low} > max {high}")
    return low, high


class _VirtualBackend(HandleBackend):
    """One stream's device: the C clock thread bound to the stream's engine."""

    def __init__(self, device: VirtualDevice, engine: CData, params: StreamParams) -> None:
        self._latency_frames = device._loop_latency(params.device_frames)
        self._signal = device._signal  # kept alive while the C thread reads it
        self._wire = device._wire  # likewise the cable
        c = ffi.new("da_virtual_params *")
        c.kind = _KINDS[device.kind]
        c.in_channels = params.input_channels
        c.out_channels = params.output_channels
        c.frames = params.device_frames
        c.sample_rate = params.sample_rate
        c.latency_frames = self._latency_frames
        if self._signal is not None:
            c.signal = ffi.cast("const float *", ffi.from_buffer(self._signal))
            c.signal_frames = self._signal.shape[0]
            c.signal_channels = self._signal.shape[1]
            c.signal_loop = int(device._signal_loop)
        c.realtime = 1
        c.clock_ppm = device._clock_ppm
        c.wander_ppm = device._wander_ppm
        c.wander_seconds = device._wander_seconds
        c.wire = self._wire if self._wire is not None else ffi.NULL
        out = ffi.new("da_virtual **")
        clib.da_virtual_new(out, engine, c, context=f"device '{device.id}'")
        # The C device points at the engine: its destructor (da_virtual_free,
        # which joins the clock thread) keeps the engine alive.
        super().__init__(owned(out[0], lib.da_virtual_free, engine), lib.da_virtual_stop)
        self._id = device.id
        self._frames = params.device_frames
        self._kind = device.kind

    @property
    def latency(self) -> StreamLatency:
        f = self._frames
        if self._kind == "input":
            return StreamLatency(f, 0)
        if self._kind == "output":
            return StreamLatency(0, self._latency_frames - f)
        return StreamLatency(f, self._latency_frames - f)

    def start(self) -> None:
        self._call(clib.da_virtual_start, context=f"device '{self._id}'")

    def inject(self, fault: int, value: int) -> None:
        self._with_handle(lib.da_virtual_fault, fault, value)

    def stall(self, until_ns: int) -> None:
        self._with_handle(lib.da_virtual_stall, until_ns)


class VirtualDevice(Device):
    """A device of the virtual host. Create more with `VirtualHost`'s ``add_*`` methods.

    Every virtual device accepts every `SampleFormat`
    (the engine converts from its float32 clock), any channel count from 1 to
    its ``channels``, any sample rate in its range and any buffer size in its
    range.

    Fault injection (for testing code that uses streams): `disconnect()`,
    `reconnect()`, `change_buffer_size()`, `change_sample_rate()`,
    `glitch()`, `stall()`, `resume()`. Each acts on every running
    stream of the device within one period, from the device's own clock thread, exactly as
    a failing real device would be reported.
    """

    def __init__(
        self,
        host: VirtualHost,
        name: str,
        kind: str,
        *,
        channels: int = 2,
        sample_rates: tuple[int, int] = (8000, 192000),
        buffer_sizes: tuple[int, int] = (16, 8192),
        default_sample_rate: int = 48000,
        default_buffer_size: int = 256,
        latency: int | None = None,
        signal: npt.ArrayLike | None = None,
        loop: bool = True,
        description: str | None = None,
        clock_ppm: float = 0.0,
        wander_ppm: float = 0.0,
        wander_seconds: float = 60.0,
    ) -> None:
        self._host = host
        self._id = DeviceId(HostId.VIRTUAL, name)
        self.kind = kind
        self._channels = whole("channels", channels, maximum=MAX_CHANNELS)
        self._rates = _range("sample_rates", sample_rates, MAX_SAMPLE_RATE)
        self._buffers = _range("buffer_sizes", buffer_sizes, MAX_BUFFER_FRAMES)
        self._default_rate = whole(
            "default_sample_rate", default_sample_rate, maximum=MAX_SAMPLE_RATE
        )
        if not self._rates[0] <= self._default_rate <= self._rates[1]:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"default_sample_rate {default_sample_rate} is outside sample_rates {sample_rates}",
            )
        self._default_buffer = self._check_buffer("default_buffer_size", default_buffer_size)
        if latency is not None and kind == "input":
            raise Error(ErrorKind.INVALID_INPUT, "an input-only device has no output latency")
        # The engine keeps the loop's latency in 32 bits.
        self._latency = None if latency is None else whole("latency", latency, maximum=2**31 - 1)
        self._text = description
        self._clock_ppm = _ppm("clock_ppm", clock_ppm)
        self._wander_ppm = _ppm("wander_ppm", wander_ppm)
        self._wander_seconds = seconds("wander_seconds", wander_seconds)
        self._wire: CData | None = None  # set by VirtualHost.add_cable
        self._cable_delay: int | None = None
        self._signal: np.ndarray[Any, np.dtype[np.float32]] | None = None
        self._signal_loop = True
        if kind == "input":
            self.set_signal(signal, loop=loop)
        elif signal is not None:
            raise Error(ErrorKind.INVALID_INPUT, f"only input devices take a signal, not {kind}")
        self.connected = True
        self._backends: weakref.WeakSet[_VirtualBackend] = weakref.WeakSet()
        self._lock = threading.Lock()

    def _check_buffer(self, name: str, frames: object) -> int:
        value = whole(name, frames)
        low, high = self._buffers
        if not low <= value <= high:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"{name} {value} is outside the device's buffer sizes {low}..{high} frames",
            )
        return value

    # -- Device contract -------------------------------------------------------

    @property
    def id(self) -> DeviceId:
        """``virtual:<name>``."""
        return self._id

    @property
    def description(self) -> DeviceDescription:
        """Name, driver ``virtual``, direction and the loop's latency."""
        direction = {"loopback": "duplex", "output": "output", "input": "input"}[self.kind]
        details = [f"{self._channels} channels, {self._rates[0]}..{self._rates[1]} Hz"]
        if self.kind == "loopback":
            loop = f"{self._latency} frames" if self._latency else "2 periods"
            details.append(f"output returns at the input after {loop}")
        if self._cable_delay is not None:
            way = "into" if self.kind == "output" else "from"
            details.append(f"one end of a cable: plays {way} it, {self._cable_delay} frames' delay")
        elif self.kind == "input":
            details.append("plays the signal given with set_signal()")
        if self._clock_ppm or self._wander_ppm:
            wander = f", wandering +-{self._wander_ppm:g}" if self._wander_ppm else ""
            details.append(f"its clock runs {self._clock_ppm:+g} ppm{wander}")
        name = (
            self._text
            or {
                "loopback": "Virtual loopback",
                "output": "Virtual output",
                "input": "Virtual input",
            }[self.kind]
        )
        return DeviceDescription(name, "virtual", direction, tuple(details))

    def _ranges(self) -> list[SupportedStreamConfigRange]:
        buffers = SupportedBufferSize.range(*self._buffers)
        return [
            SupportedStreamConfigRange(1, self._channels, *self._rates, buffers, fmt)
            for fmt in SampleFormat
        ]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """All formats, 1..channels, the device's rate and buffer ranges (empty for output-only)."""
        return self._ranges() if self.kind in ("loopback", "input") else []

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """All formats, 1..channels, the device's rate and buffer ranges (empty for input-only)."""
        return self._ranges() if self.kind in ("loopback", "output") else []

    def _duplex_refusal(self) -> str | None:
        if self.kind == "loopback":
            return None
        return f"it is a virtual {self.kind}-only device"

    def _preferred_sample_rate(self) -> int:
        return self._default_rate

    def _default_frames(self, sample_rate: int) -> int:
        return self._default_buffer

    def _loop_latency(self, frames: int) -> int:
        if self._cable_delay is not None:  # its output latency is the cable's delay
            return self._cable_delay + frames
        return self._latency if self._latency is not None else 2 * frames

    def _open_backend(self, engine: CData, params: StreamParams) -> _VirtualBackend:
        if not self.connected:
            raise Error(
                ErrorKind.DEVICE_NOT_AVAILABLE,
                f"device '{self.id}' is disconnected (reconnect() it first)",
            )
        loop = self._loop_latency(params.device_frames)
        if self.kind != "input" and loop < params.device_frames:
            raise Error(
                ErrorKind.UNSUPPORTED_CONFIG,
                f"device '{self.id}' has a latency of {loop} frames, shorter than the "
                f"buffer size {params.device_frames} frames: a block cannot come back before "
                f"it is played. Use a buffer size <= {loop} frames",
            )
        backend = _VirtualBackend(self, engine, params)
        with self._lock:
            self._backends.add(backend)
        return backend

    # -- configuration -------------------------------------------------------

    @property
    def channels(self) -> int:
        """The most channels a stream can open in each direction."""
        return self._channels

    @property
    def latency(self) -> int | None:
        """The loop's round trip in frames, or None for two periods of the stream."""
        return self._latency

    def set_signal(self, signal: npt.ArrayLike | None, *, loop: bool = True) -> None:
        """Set what an input device captures (streams built afterwards).

        Parameters
        ----------
        signal
            Float samples in [-1, 1], shape ``(frames,)`` (every channel
            the same) or ``(frames, channels)``; None for silence.
        loop
            Repeat the signal forever; False plays it once, then silence.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` on a device that is not input-only,
            ``INVALID_INPUT`` for a signal of the wrong shape or too many channels,
            or with samples outside [-1, 1] (NaN and infinity included).
        """
        if self.kind != "input" or self._wire is not None:
            what = "the end of a cable" if self._wire is not None else f"a {self.kind} device"
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"device '{self.id}' is {what}; only input devices take a signal",
            )
        loop = flag("loop", loop)
        if signal is None:
            self._signal = None
            return
        try:
            raw = np.asarray(signal)
        except (TypeError, ValueError) as exc:
            raise Error(ErrorKind.INVALID_INPUT, f"signal is not an array: {exc}") from exc
        if raw.dtype.kind not in "fiu":  # complex would lose its imaginary part
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"signal must be real numbers (float or integer), got dtype {raw.dtype}",
            )
        with np.errstate(invalid="ignore"):  # NaN is what this check is for
            peak = float(np.max(np.abs(raw))) if raw.size else 0.0
        if not peak <= 1.0:  # NaN fails too
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"signal samples must be finite and in [-1, 1], got a peak of {shown(peak)}",
            )
        arr = raw.astype(np.float32)
        if arr.ndim == 1:
            arr = np.repeat(arr[:, None], self._channels, axis=1)
        if arr.ndim != 2 or arr.shape[0] == 0 or not 1 <= arr.shape[1] <= self._channels:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"signal must have shape (frames,) or (frames, 1..{self._channels}) "
                f"with frames >= 1, got {arr.shape}",
            )
        self._signal = np.ascontiguousarray(arr)
        self._signal_loop = loop

    # -- faults ----------------------------------------------------------------

    def _each_backend(self) -> Iterable[_VirtualBackend]:
        with self._lock:
            return list(self._backends)

    def disconnect(self) -> None:
        """Unplug the device: running streams report ``DEVICE_NOT_AVAILABLE`` and
        stop; new streams cannot be built and the host stops listing it."""
        self.connected = False
        for backend in self._each_backend():
            backend.inject(lib.DA_FAULT_DISCONNECT, 0)
        self._host._changed()

    def reconnect(self) -> None:
        """Plug the device back in; streams must be built anew."""
        self.connected = True
        self._host._changed()

    def change_buffer_size(self, frames: int) -> None:
        """Change the device's buffer size, as a server reconfigured under you would.

        Running streams report ``STREAM_INVALIDATED`` and stop before any block
        of the new size is delivered; streams built afterwards with
        ``BufferSize.DEFAULT`` get ``frames``.
        """
        self._default_buffer = self._check_buffer("frames", frames)
        for backend in self._each_backend():
            backend.inject(lib.DA_FAULT_BUFFER_SIZE, self._default_buffer)

    def change_sample_rate(self, sample_rate: int) -> None:
        """Change the device's rate: running streams report ``STREAM_INVALIDATED`` and stop."""
        rate = whole("sample_rate", sample_rate)
        if not self._rates[0] <= rate <= self._rates[1]:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"sample_rate {rate} is outside the device's {self._rates[0]}..{self._rates[1]} Hz",
            )
        self._default_rate = rate
        for backend in self._each_backend():
            backend.inject(lib.DA_FAULT_SAMPLE_RATE, rate)

    def glitch(self) -> None:
        """Report a glitch that loses no cycle, as a device that restarted in
        time would (an ALSA restart, a re-alignment of its directions).

        Within a period, running streams flag their next block: the callback
        sees ``info.xrun``, ``stream.stats.xruns`` counts it (``lost_cycles``
        does not), a blocking read meets a gap of 0 frames there and the next
        write's ``status.xruns`` counts it. Timestamps go on unbroken.
        """
        for backend in self._each_backend():
            backend.inject(lib.DA_FAULT_GLITCH, 0)

    def stall(self, seconds: float | None = None) -> None:
        """Stop the device clock of running streams: no blocks, no callbacks.

        Parameters
        ----------
        seconds
            How long; None stalls until `resume()`. When the clock
            resumes the lost cycles count as one xrun. A stall longer than a
            stream's ``timeout`` ends that stream with ``TIMED_OUT``.
        """
        length = optional_seconds("seconds", seconds, zero=True)
        forever = 2**62  # ns: beyond any stream's life, within the engine's 64 bits
        until = forever
        if length is not None and length < forever / 1e9:
            until = min(forever, int(lib.da_now_ns()) + int(length * 1e9))
        for backend in self._each_backend():
            backend.stall(until)

    def resume(self) -> None:
        """End a stall started with `stall()`."""
        for backend in self._each_backend():
            backend.stall(0)


#: The keyword options of VirtualDevice, which add_loopback/add_output/add_input pass on.
_DEVICE_OPTIONS = frozenset(
    name
    for name, param in inspect.signature(VirtualDevice.__init__).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
)


class _Changes(ChangeSource):
    """A watcher's view of the virtual host's count of changes."""

    def __init__(self, host: VirtualHost) -> None:
        self._host = host
        with host._changes:
            self._seen = host._change_count

    def wait(self, timeout: float) -> bool:
        """True once the count moved past what this source saw last."""
        host = self._host
        with host._changes:
            host._changes.wait_for(lambda: host._change_count != self._seen, timeout)
            moved = host._change_count != self._seen
            self._seen = host._change_count
        return moved

    def close(self) -> None:
        """Nothing to release."""


class VirtualHost(Host):
    """The in-process host: ``virtual:loopback``, ``virtual:output``, ``virtual:input``.

    Add devices of your own with `add_loopback()`, `add_output()` and
    `add_input()`; remove them with `remove_device()`.
    """

    def __init__(self) -> None:
        self._devices: dict[str, VirtualDevice] = {}
        self._lock = threading.Lock()
        # Watchers wait on this for the count of changes to move.
        self._changes = threading.Condition(threading.Lock())
        self._change_count = 0
        self._default_names = {"input": "loopback", "output": "loopback"}
        self.add_loopback("loopback")
        self.add_output("output")
        self.add_input("input")

    @property
    def id(self) -> HostId:
        """``HostId.VIRTUAL``."""
        return HostId.VIRTUAL

    @property
    def name(self) -> str:
        """``"Virtual"``."""
        return "Virtual"

    def devices(self) -> list[Device]:
        """The connected virtual devices, in the order they were added."""
        with self._lock:
            return [d for d in self._devices.values() if d.connected]

    def default_input_device(self) -> Device | None:
        """The device `set_default()` chose, ``virtual:loopback`` unless changed (so
        that input and output defaults form a duplex pair); while that one is
        disconnected, the first input."""
        return self._default("input") or super().default_input_device()

    def default_output_device(self) -> Device | None:
        """As `default_input_device()`, for output."""
        return self._default("output") or super().default_output_device()

    def default_loopback_device(self) -> Device | None:
        """The default output when it is a loopback (its input is what it plays), else None."""
        found = self.default_output_device()
        return found if isinstance(found, VirtualDevice) and found.kind == "loopback" else None

    def _default(self, direction: str) -> Device | None:
        with self._lock:
            dev = self._devices.get(self._default_names[direction])
        return dev if dev is not None and dev.connected else None

    def set_default(self, device: str | DeviceId | Device, direction: str | None = None) -> None:
        """Make `device` the host's default input, output, or both (direction
        None: each direction it has), as a user choosing another device in
        their desktop's sound settings would.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for a device this host does not have, a
            direction other than ``"input"``, ``"output"`` or None, or one the
            device cannot do.
        """
        found = self.device_by_id(device.id if isinstance(device, Device) else device)
        if found is None:
            raise Error(ErrorKind.INVALID_INPUT, f"no virtual device {shown(device)}")
        if direction not in ("input", "output", None):
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"direction must be 'input', 'output' or None, got {shown(direction)}",
            )
        ways = [w for w in ("input", "output") if direction in (w, None)]
        able = [
            w for w in ways if (found.supports_input() if w == "input" else found.supports_output())
        ]
        if not able or (direction is not None and able != ways):
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"'{found.id}' cannot be the default {direction or 'input or output'}",
            )
        with self._lock:
            for way in able:
                self._default_names[way] = found.id.name
        self._changed()

    def _changed(self) -> None:
        """Tell watchers the devices or defaults changed."""
        with self._changes:
            self._change_count += 1
            self._changes.notify_all()

    def _change_source(self) -> ChangeSource:
        """The host's own notices: every device added, removed, unplugged,
        plugged back or made a default."""
        return _Changes(self)

    def device_by_id(self, device_id: str | DeviceId) -> VirtualDevice | None:
        """The device with this id, connected or not (so faults can be undone)."""
        wanted = DeviceId.parse(device_id)
        if wanted.host is not HostId.VIRTUAL:
            return None
        with self._lock:
            return self._devices.get(wanted.name)

    def _add(self, name: str, kind: str, **options: Any) -> VirtualDevice:
        accepted = _DEVICE_OPTIONS - ({"latency"} if kind == "input" else {"signal", "loop"})
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"unknown option {shown(unknown[0])} for a virtual {kind} device; accepted: "
                f"{', '.join(sorted(accepted))}",
            )
        device = VirtualDevice(self, name, kind, **options)
        with self._lock:
            if name in self._devices:
                raise Error(
                    ErrorKind.INVALID_INPUT, f"a virtual device named {shown(name)} already exists"
                )
            self._devices[name] = device
        self._changed()
        return device

    def add_loopback(self, name: str, **options: Any) -> VirtualDevice:
        """Add a duplex loopback: what is played comes back at the input.

        Parameters
        ----------
        name
            The id becomes ``virtual:<name>``.
        **options
            ``channels`` (default 2), ``sample_rates`` ((min, max) Hz, default
            (8000, 192000)), ``buffer_sizes`` ((min, max) frames, default
            (16, 8192)), ``default_sample_rate`` (48000),
            ``default_buffer_size`` (256), ``latency`` (round trip in frames,
            at least the buffer size; default None = two periods),
            ``description``.
        """
        return self._add(name, "loopback", **options)

    def add_output(self, name: str, **options: Any) -> VirtualDevice:
        """Add an output-only device; what is played is discarded.

        Options as `add_loopback()`.
        """
        return self._add(name, "output", **options)

    def add_input(self, name: str, **options: Any) -> VirtualDevice:
        """Add an input-only device that captures a signal you supply.

        Options as `add_loopback()` (but no ``latency``), plus ``signal``
        (see `VirtualDevice.set_signal()`) and ``loop`` (default True).
        """
        return self._add(name, "input", **options)

    def add_cable(
        self,
        name: str,
        output_ppm: float = 0.0,
        input_ppm: float = 0.0,
        *,
        delay: int = 480,
        wander_ppm: float = 0.0,
        wander_seconds: float = 60.0,
        **options: Any,
    ) -> tuple[VirtualDevice, VirtualDevice]:
        """Add two devices on two clocks joined by a cable: ``virtual:<name>-out``
        and ``virtual:<name>-in``.

        What a stream plays on the output device reaches the input device
        `delay` frames after the output's cycle, at the instant it is played
        (the output device's latency is the delay), and is captured at the
        input clock's own instants: between two clocks the wire is read
        through the engine's band-limited interpolator (flat to 0.001 dB up
        to 0.45 fs). Nothing played, or the output not running: silence.

        Parameters
        ----------
        name
            The devices are ``<name>-out`` and ``<name>-in``.
        output_ppm, input_ppm
            Each device's clock offset in ppm (the ``clock_ppm`` option).
        delay
            Frames from the output's cycle start to the instant its first
            frame is played, at least the output's buffer size plus 64
            (the kernel needs frames on both sides). Default 480 (10 ms at
            48 kHz).
        wander_ppm, wander_seconds
            The input clock wanders about `input_ppm` by this much, as a
            sine of this period (default: no wander).
        **options
            As `add_loopback()` (``channels``, ``sample_rates``, ...), for
            both devices; not ``latency``, ``signal`` or ``clock_ppm``.

        Returns
        -------
        tuple
            ``(output_device, input_device)``.

        Raises
        ------
        Error
            ``INVALID_INPUT`` for a bad value or option, or names in use.
        """
        for word in ("latency", "signal", "loop", "clock_ppm"):  # the cable's to set
            if word in options:
                raise Error(
                    ErrorKind.INVALID_INPUT,
                    f"a cable's devices take no {shown(word)} option (the cable sets it)",
                )
        frames = whole("delay", delay, minimum=1, maximum=2**31 - 1)
        if not isinstance(name, str):
            raise Error(ErrorKind.INVALID_INPUT, f"name must be a str, got {shown(name)}")
        out = VirtualDevice(self, f"{name}-out", "output", clock_ppm=output_ppm, **options)
        inp = VirtualDevice(
            self, f"{name}-in", "input", clock_ppm=input_ppm, wander_ppm=wander_ppm,
            wander_seconds=wander_seconds, **options,
        )  # fmt: skip
        if frames < out._default_buffer + 64:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"delay {frames} frames is shorter than the buffer size "
                f"{out._default_buffer} plus 64 frames the interpolator needs",
            )
        wire = lib.da_wire_new(out.channels)
        if wire == ffi.NULL:
            raise Error(ErrorKind.RESOURCE_EXHAUSTED, "out of memory for a cable")
        wire = owned(wire, lib.da_wire_free)
        for device in (out, inp):
            device._wire, device._cable_delay = wire, frames
        with self._lock:
            taken = [d.id.name for d in (out, inp) if d.id.name in self._devices]
            if taken:
                raise Error(
                    ErrorKind.INVALID_INPUT,
                    f"a virtual device named {shown(taken[0])} already exists",
                )
            self._devices[out.id.name] = out
            self._devices[inp.id.name] = inp
        self._changed()
        return out, inp

    def remove_device(self, device_id: str | DeviceId) -> None:
        """Disconnect a device and forget it. Unknown ids are an ``INVALID_INPUT`` error."""
        device = self.device_by_id(device_id)
        if device is None:
            raise Error(ErrorKind.INVALID_INPUT, f"no virtual device {shown(device_id)}")
        device.disconnect()
        with self._lock:
            del self._devices[device.id.name]
        self._changed()
