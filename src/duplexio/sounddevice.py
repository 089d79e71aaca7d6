"""python-sounddevice's API on this library's engine.

A program written for sounddevice runs by changing one line::

    import duplexio.sounddevice as sd

The names, signatures and meanings are sounddevice's, reproduced from its
documentation: `query_devices`, `default`, `play` / `rec` / `playrec` /
`wait` / `stop`, `Stream` and its relatives with the callback
``(indata, outdata, frames, time, status)``, `CallbackFlags`,
`CallbackStop`, `CallbackAbort` and `PortAudioError`. Underneath are the
engine's streams: the callback runs on a worker fed by the real-time
engine, so a slow or stalled Python costs a flagged block, never a stalled
device; ``play``, ``rec`` and ``playrec`` run inside the engine with no
Python per block; and a ``blocksize`` the device does not run is re-blocked.

Where this cannot mean what sounddevice means, it says so: a clear
`PortAudioError` (a `duplexio.Error`; for a bad argument also a
``ValueError``, as sounddevice raises), never a silent change. The
differences are listed on the docs page "From sounddevice and PyAudio".
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from duplexio._version import __version__ as _duplexio_version
from duplexio.aggregate import aggregate
from duplexio.config import BufferSize, DuplexStreamConfig, StreamConfig
from duplexio.devices import find_device
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat, as_frames
from duplexio.host import Device, HostId, considered_hosts
from duplexio.measure import duplex_or_pair
from duplexio.numbering import Numbering, Translating, hostapi_name
from duplexio.stream import CallbackAbort, CallbackStop, ProgramStream
from duplexio.stream import Stream as _EngineStream
from duplexio.timing import CallbackInfo, DuplexCallbackInfo

__all__ = [
    "AsioSettings",
    "CallbackAbort",
    "CallbackFlags",
    "CallbackStop",
    "CoreAudioSettings",
    "DeviceList",
    "InputStream",
    "OutputStream",
    "PortAudioError",
    "RawInputStream",
    "RawOutputStream",
    "RawStream",
    "Stream",
    "WasapiSettings",
    "__version__",
    "check_input_settings",
    "check_output_settings",
    "default",
    "get_portaudio_version",
    "get_status",
    "get_stream",
    "play",
    "playrec",
    "query_devices",
    "query_hostapis",
    "rec",
    "sleep",
    "stop",
    "wait",
]

__version__ = _duplexio_version


class PortAudioError(Error):
    """What this module raises: a `duplexio.Error` under sounddevice's name.

    ``kind`` says what went wrong (`duplexio.ErrorKind`), ``args[0]`` is the
    message, as sounddevice's first argument is.
    """


class _InvalidArgument(PortAudioError, ValueError):
    """A bad argument: sounddevice raises ``ValueError`` there, so this is one too."""


def _fail(err: Error) -> NoReturn:
    """Raise ``err`` as this module's error (its kind, its message, the cause kept)."""
    cls = _InvalidArgument if err.kind is ErrorKind.INVALID_INPUT else PortAudioError
    raise cls(err.kind, err.message, code=err.code) from err


def _invalid(message: str) -> NoReturn:
    raise _InvalidArgument(ErrorKind.INVALID_INPUT, message)


def _unsupported(message: str) -> NoReturn:
    raise PortAudioError(ErrorKind.UNSUPPORTED_OPERATION, message)


_translated = Translating(PortAudioError, _fail)


# -- flags and times ------------------------------------------------------------


class CallbackFlags:
    """The status a callback gets, and `wait()` and `get_status()` return.

    Five flags, each a property: ``input_underflow``, ``input_overflow``,
    ``output_underflow``, ``output_overflow``, ``priming_output``. True in a
    boolean context when any is set; ``|`` combines two.

    Here ``input_overflow`` means input frames were lost before this block
    (the device or server dropped cycles, or the callback was too busy to
    get a block), and ``output_underflow`` that output was replaced with
    silence (a late callback, a lost cycle). The engine flags every glitch
    on the block it hits. ``priming_output`` is never set: no host here
    primes output through the callback.
    """

    _NAMES = (
        "input_underflow",
        "input_overflow",
        "output_underflow",
        "output_overflow",
        "priming_output",
    )
    __slots__ = ("_flags",)

    def __init__(self, flags: int = 0) -> None:
        if isinstance(flags, bool) or not isinstance(flags, int) or not 0 <= flags < 32:
            _invalid(f"CallbackFlags takes an int of the five flag bits, got {shown(flags)}")
        self._flags = flags

    def _bit(self, index: int) -> bool:
        return bool(self._flags >> index & 1)

    @property
    def input_underflow(self) -> bool:
        """Input was asked for before it was there (never set here: blocks wait)."""
        return self._bit(0)

    @property
    def input_overflow(self) -> bool:
        """Input frames were lost before this block."""
        return self._bit(1)

    @property
    def output_underflow(self) -> bool:
        """Output was replaced with silence."""
        return self._bit(2)

    @property
    def output_overflow(self) -> bool:
        """Output was discarded (never set here: the engine never drops output it was given)."""
        return self._bit(3)

    @property
    def priming_output(self) -> bool:
        """The block primes the output (never set here)."""
        return self._bit(4)

    def __bool__(self) -> bool:
        return bool(self._flags)

    def __int__(self) -> int:
        return self._flags

    def __or__(self, other: CallbackFlags) -> CallbackFlags:
        if not isinstance(other, CallbackFlags):
            return NotImplemented
        return CallbackFlags(self._flags | other._flags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CallbackFlags) and other._flags == self._flags

    def __hash__(self) -> int:
        return hash((CallbackFlags, self._flags))

    def __str__(self) -> str:
        return ", ".join(n.replace("_", " ") for i, n in enumerate(self._NAMES) if self._bit(i))

    def __repr__(self) -> str:
        text = str(self)
        return (
            f"<duplexio.sounddevice.CallbackFlags: {text}>"
            if text
            else ("<duplexio.sounddevice.CallbackFlags: no flags set>")
        )


_INPUT_OVERFLOW, _OUTPUT_UNDERFLOW = 2, 4


def _flags(info: CallbackInfo | DuplexCallbackInfo, inputs: bool, outputs: bool) -> CallbackFlags:
    """sounddevice's flags for a block the engine flagged."""
    if not info.xrun:
        return _NO_FLAGS
    bits = 0
    if inputs and (info.lost_frames or not outputs):
        bits |= _INPUT_OVERFLOW
    if outputs:
        bits |= _OUTPUT_UNDERFLOW
    return CallbackFlags(bits)


_NO_FLAGS = CallbackFlags()


class CallbackTime:
    """The ``time`` a callback gets: three instants in seconds, on `Stream.time`'s clock.

    ``inputBufferAdcTime``: when the block's first input frame was captured
    (0 for an output stream); ``outputBufferDacTime``: when its first output
    frame will be played (0 for an input stream); ``currentTime``: when the
    engine handled the block.
    """

    __slots__ = ("currentTime", "inputBufferAdcTime", "outputBufferDacTime")

    def __init__(self, adc: float, dac: float, current: float) -> None:
        self.inputBufferAdcTime = adc
        self.outputBufferDacTime = dac
        self.currentTime = current

    def __repr__(self) -> str:
        return (
            f"CallbackTime(inputBufferAdcTime={self.inputBufferAdcTime!r}, "
            f"outputBufferDacTime={self.outputBufferDacTime!r}, currentTime={self.currentTime!r})"
        )


# -- host-API settings: there are none to give ----------------------------------


class _NoSettings:
    """sounddevice's host-API specific settings: refused, with what to do instead."""

    _instead = ""

    def __init__(self, *args: object, **kwargs: object) -> None:
        _unsupported(
            f"{type(self).__name__} is PortAudio's host-API specific setting and has no "
            f"meaning here{self._instead}"
        )


class AsioSettings(_NoSettings):
    """Refused: ASIO channel selectors. Use ``mapping=`` of play/rec or slice the arrays."""

    _instead = "; choose channels with play()/rec()'s mapping= or by slicing the arrays"


class CoreAudioSettings(_NoSettings):
    """Refused: Core Audio channel maps and conversion quality."""

    _instead = "; choose channels with play()/rec()'s mapping= or by slicing the arrays"


class WasapiSettings(_NoSettings):
    """Refused: WASAPI exclusive mode."""

    _instead = " (the PortAudio host opens WASAPI shared)"


# -- devices and host APIs --------------------------------------------------------


_snapshot_lock = threading.Lock()
_snapshot: Numbering | None = None


def _numbering() -> Numbering:
    """The device table as of the first call, or of the last `_initialize()`: as
    in sounddevice, whose PortAudio lists the devices once, at import."""
    global _snapshot
    with _snapshot_lock:
        if _snapshot is None:
            with _translated:
                _snapshot = Numbering()
        return _snapshot


def _terminate() -> None:
    """Forget the device table (sounddevice's way to rescan: ``_terminate()``
    then ``_initialize()``)."""
    global _snapshot
    with _snapshot_lock:
        _snapshot = None


def _initialize() -> None:
    """Take the device table anew."""
    _terminate()
    _numbering()


def _info(numbering: Numbering, index: int, device: Device | None = None) -> dict[str, Any]:
    """sounddevice's dict of a device."""
    f = numbering.facts(index, device)
    return {
        "name": f.name,
        "index": f.index,
        "hostapi": f.hostapi,
        "max_input_channels": f.max_input_channels,
        "max_output_channels": f.max_output_channels,
        "default_low_input_latency": f.low_input_latency,
        "default_low_output_latency": f.low_output_latency,
        "default_high_input_latency": f.high_input_latency,
        "default_high_output_latency": f.high_output_latency,
        "default_samplerate": f.default_samplerate,
    }


class DeviceList(tuple):  # type: ignore[type-arg]
    """The devices as sounddevice lists them: a tuple of dicts, printed as a table.

    ``>`` marks the default input device, ``<`` the default output device,
    ``*`` a device that is both.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        ins, outs = default.device
        lines = []
        for info in self:
            mark = (
                "*"
                if info["index"] == ins == outs
                else (">" if info["index"] == ins else "<" if info["index"] == outs else " ")
            )
            api = query_hostapis(info["hostapi"])["name"]
            lines.append(
                f"{mark} {info['index']:>2} {info['name']}, {api} "
                f"({info['max_input_channels']} in, {info['max_output_channels']} out)"
            )
        return "\n".join(lines)

    __str__ = __repr__


def query_devices(device: int | str | None = None, kind: str | None = None) -> Any:
    """Every device as a `DeviceList`, or one device's dict.

    Parameters
    ----------
    device
        An index or a name (as `Stream` takes it): that device's dict.
    kind
        ``"input"`` or ``"output"``: with no ``device``, the default
        device of that kind (its dict); with one, that device, which must do it.

    Returns
    -------
    DeviceList or dict
        A dict has sounddevice's keys: ``name``, ``index``, ``hostapi``,
        ``max_input_channels``, ``max_output_channels``,
        ``default_low/high_input/output_latency`` (seconds: one device period
        and two), ``default_samplerate``.
    """
    if kind not in (None, "input", "output"):
        _invalid(f"kind must be 'input', 'output' or None, got {shown(kind)}")
    table = _numbering()
    if device is None and kind is None:
        return DeviceList(_info(table, i) for i in range(len(table.devices)))
    found = _device(device, kind or "any", table)
    # A device missing from the table (PortAudio's on Linux are listed only
    # when named) has index -1, as one that is not there.
    return _info(table, table.index(found), found)


def query_hostapis(index: int | None = None) -> Any:
    """Every host API as a tuple of dicts, or one (``index``).

    Each has ``name``, ``devices`` (their indices), ``default_input_device``
    and ``default_output_device`` (an index, or -1).
    """
    table = _numbering()
    apis = [
        {
            "name": name,
            "devices": table.members(n),
            "default_input_device": table.hostapi_default(n, "input"),
            "default_output_device": table.hostapi_default(n, "output"),
        }
        for n, name in enumerate(table.hostapis)
    ]
    if index is None:
        return tuple(apis)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(apis):
        _invalid(f"host API index must be 0..{len(apis) - 1}, got {shown(index)}")
    return apis[index]


def _anything() -> bool:
    return True


def _supports(device: Device, kind: str) -> bool:
    return {
        "input": device.supports_input,
        "output": device.supports_output,
        "duplex": device.supports_duplex,
        "any": _anything,
    }[kind]()


def _device(value: object, kind: str, table: Numbering | None = None) -> Device:
    """sounddevice's ``device=`` for one direction: an index, a query string
    (every space-separated word in "name, host API", case-insensitive), a
    duplexio id or `Device`, or None for the default."""
    with _translated:
        if value is None:
            chosen = default._device[0 if kind == "input" else 1] if kind != "any" else None
            if chosen is not None:
                return _device(chosen, kind, table)
            return find_device(None, direction="output" if kind == "any" else kind)
        if isinstance(value, Device):
            return value
        table = table or _numbering()
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < len(table.devices):
                _invalid(
                    f"device index {value} is not in the table (0..{len(table.devices) - 1}, "
                    "see query_devices())"
                )
            found = table.devices[int(value)]
        elif isinstance(value, str):
            found = _by_query(value, kind, table)
        else:
            _invalid(f"device must be an index or a name, got {shown(value)}")
        if not _supports(found, kind):
            _invalid(f"device {int(table.index(found))} ({found.name}) has no {kind}")
        return found


def _by_query(text: str, kind: str, table: Numbering) -> Device:
    if ":" in text and text.split(":", 1)[0] in {h.value for h in HostId}:
        return find_device(text, direction="output" if kind == "any" else kind)
    words = text.casefold().split()
    candidates = [d for d in table.devices if _supports(d, kind)]
    full = [d for d in candidates if f"{d.name}, {hostapi_name(d)}".casefold() == text.casefold()]
    exact = [d for d in candidates if d.name.casefold() == text.casefold()]
    found = (
        full
        or exact
        or [
            d
            for d in candidates
            if all(w in f"{d.name}, {hostapi_name(d)} {d.id}".casefold() for w in words)
        ]
    )
    if len(found) == 1:
        return found[0]
    what = "" if kind == "any" else f"{kind} "
    if not found:
        _invalid(f"no {what}device matching {shown(text)} (see query_devices())")
    names = "; ".join(f"[{table.index(d)}] {d.name}, {hostapi_name(d)}" for d in found[:8])
    _invalid(f"several {what}devices match {shown(text)}: {names}")


# -- the defaults -----------------------------------------------------------------


class _Pair:
    """An (input, output) pair as sounddevice's defaults hold them: index 0 or
    ``'input'`` and 1 or ``'output'``; assigned one value, both take it."""

    __slots__ = ("_name", "_owner")

    def __init__(self, owner: _Defaults, name: str) -> None:
        self._owner = owner
        self._name = name

    def _values(self) -> list[Any]:
        return getattr(self._owner, "_" + self._name)  # type: ignore[no-any-return]

    def _shown(self) -> list[Any]:
        return self._owner._resolved(self._name)

    def __getitem__(self, key: int | str) -> Any:
        return self._shown()[_side(key)]

    def __setitem__(self, key: int | str, value: Any) -> None:
        values = list(self._values())
        values[_side(key)] = value
        setattr(self._owner, self._name, values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._shown())

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        try:
            return bool(list(self) == list(other))  # type: ignore[call-overload]
        except TypeError:
            return NotImplemented

    def __repr__(self) -> str:
        return repr(self._shown())


def _side(key: int | str) -> int:
    if key in (0, "input"):
        return 0
    if key in (1, "output"):
        return 1
    _invalid(f"a default pair takes 0/'input' or 1/'output', got {shown(key)}")


class _Defaults:
    """``sd.default``: what streams and play/rec/playrec use when not given.

    ``device``, ``channels``, ``dtype`` and ``latency`` are (input, output)
    pairs: assign one value for both or two (``sd.default.device = 1, 3``).
    ``samplerate`` and ``blocksize`` are single. ``extra_settings``,
    ``clip_off``, ``dither_off``, ``never_drop_input`` and
    ``prime_output_buffers_using_stream_callback`` are accepted as
    sounddevice accepts them (see `Stream`). ``hostapi`` is the index of
    the default host's API. ``reset()`` puts them all back.
    """

    _PAIRS = ("device", "channels", "dtype", "latency")
    _SINGLE = (
        "samplerate",
        "blocksize",
        "extra_settings",
        "clip_off",
        "dither_off",
        "never_drop_input",
        "prime_output_buffers_using_stream_callback",
    )

    _device: list[Any]
    _channels: list[Any]
    _dtype: list[Any]
    _latency: list[Any]

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Every default back to sounddevice's."""
        object.__setattr__(self, "_device", [None, None])
        object.__setattr__(self, "_channels", [None, None])
        object.__setattr__(self, "_dtype", ["float32", "float32"])
        object.__setattr__(self, "_latency", ["high", "high"])
        for name in self._SINGLE:
            object.__setattr__(self, name, None)
        object.__setattr__(self, "blocksize", 0)
        object.__setattr__(self, "clip_off", False)
        object.__setattr__(self, "dither_off", False)
        object.__setattr__(self, "never_drop_input", False)
        object.__setattr__(self, "prime_output_buffers_using_stream_callback", False)

    def __getattr__(self, name: str) -> Any:
        if name in self._PAIRS:
            return _Pair(self, name)
        if name == "hostapi":
            return _numbering().default_hostapi()
        raise AttributeError(f"sd.default has no {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._PAIRS:
            if isinstance(value, _Pair):
                value = list(value._values())
            pair = list(value) if isinstance(value, (list, tuple)) else [value, value]
            if len(pair) != 2:
                _invalid(f"sd.default.{name} takes one value or two, got {shown(value)}")
            object.__setattr__(self, "_" + name, pair)
            return
        if name in self._SINGLE:
            object.__setattr__(self, name, value)
            return
        _invalid(
            f"sd.default has no {shown(name)}; it has: {', '.join(self._PAIRS + self._SINGLE)}"
        )

    def _resolved(self, name: str) -> list[Any]:
        """A pair as shown: a device default that is unset shows the index it
        resolves to (-1 for none)."""
        values = list(getattr(self, "_" + name))
        if name != "device":
            return values
        table: Numbering | None = None
        for side, direction in enumerate(("input", "output")):
            if values[side] is None or not isinstance(values[side], int):
                table = table or _numbering()
                try:
                    values[side] = table.index(_device(values[side], direction, table))
                except Error:
                    values[side] = -1
        return values

    def __repr__(self) -> str:
        shown_values = {n: getattr(self, n) for n in self._PAIRS + self._SINGLE}
        return "sd.default(" + ", ".join(f"{n}={v!r}" for n, v in shown_values.items()) + ")"


#: The process's sounddevice defaults (``sd.default.samplerate = 44100``).
default = _Defaults()


# -- settings ---------------------------------------------------------------------

_DTYPES = {"float32", "int32", "int16", "int8", "uint8", "float64", "int24"}


def _format(dtype: object) -> tuple[SampleFormat, str]:
    """A sounddevice ``dtype`` as the engine's format and sounddevice's name for it."""
    name = dtype
    if not isinstance(dtype, str):
        try:
            name = np.dtype(dtype).name  # type: ignore[call-overload]
        except TypeError:
            _invalid(f"dtype must be a numpy dtype or its name, got {shown(dtype)}")
    assert isinstance(name, str)
    if name not in _DTYPES:
        _invalid(f"dtype {shown(dtype)} is not one of {', '.join(sorted(_DTYPES))}")
    if name == "int24":
        # sounddevice's raw int24 is packed in 3 bytes; the engine's is in 4.
        _unsupported(
            "dtype 'int24' (3-byte packed samples) is not offered: use 'int32', which "
            "carries 24-bit devices' samples in full"
        )
    return SampleFormat.parse(name), name


def _rate(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        _invalid(f"samplerate must be a number of Hz, got {shown(value)}")
    rate = float(value)
    if not math.isfinite(rate) or rate != int(rate) or rate < 1:
        _invalid(f"samplerate must be a whole number of Hz >= 1, got {shown(value)}")
    return int(rate)


def _blocksize(value: object) -> BufferSize:
    if value is None or (isinstance(value, (int, np.integer)) and int(value) == 0):
        return BufferSize.DEFAULT
    with _translated:
        return BufferSize.fixed(value)  # type: ignore[arg-type]


def _pipelined(latency: object, device: Device, rate: int) -> bool:
    """sounddevice's suggested ``latency``: ``'high'`` (its default) gives the
    callback a whole period (pipelined), ``'low'`` the same cycle; seconds
    are 'low' up to one device period and 'high' above."""
    if latency == "low":
        return False
    if latency == "high":
        return True
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0:
        _invalid(f"latency must be 'low', 'high' or seconds >= 0, got {shown(latency)}")
    return float(latency) > device._default_frames(rate) / rate


def _flag(name: str, value: object) -> bool:
    if value is None:
        return bool(getattr(default, name))
    if not isinstance(value, (bool, int)):
        _invalid(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def _check_extra(extra_settings: object) -> None:
    if extra_settings is not None or default.extra_settings is not None:
        _unsupported("extra_settings (PortAudio's host-API specific settings) have no meaning here")


class _Settings:
    """A stream's arguments, resolved and checked before anything opens."""

    def __init__(
        self,
        kind: str,
        samplerate: object,
        blocksize: object,
        device: object,
        channels: object,
        dtype: object,
        latency: object,
        extra_settings: object,
    ) -> None:
        _check_extra(extra_settings)
        self.kind = kind
        sides = ("input", "output") if kind == "duplex" else (kind,)
        devices = _pair(device, "device", kind)
        self.devices = [
            _device(d, side) if d is not None or default._device[_side(side)] is not None else None
            for d, side in zip(devices, sides, strict=True)
        ]
        self.device = self._one_device()
        own = (
            self.device.default_duplex_config().sample_rate
            if kind == "duplex"
            else self.device.default_input_config().sample_rate
            if kind == "input"
            else self.device.default_output_config().sample_rate
        )
        chosen_rate = samplerate if samplerate is not None else default.samplerate
        self.samplerate = _rate(chosen_rate) if chosen_rate is not None else own
        asked = blocksize if blocksize is not None else default.blocksize
        self.buffer_size = _blocksize(asked)
        self.blocksize = self.buffer_size.frames or 0
        self.channels = [
            _channel_count(c, side, self.device)
            for c, side in zip(_pair(channels, "channels", kind), sides, strict=True)
        ]
        formats = [
            _format(d if d is not None else default._dtype[_side(side)])
            for d, side in zip(_pair(dtype, "dtype", kind), sides, strict=True)
        ]
        self.formats = [f for f, _ in formats]
        self.dtypes = [n for _, n in formats]
        lat = _pair(latency, "latency", kind)
        chosen = [
            value if value is not None else default._latency[_side(side)]
            for value, side in zip(lat, sides, strict=True)
        ]
        with _translated:
            self.pipelined = any(_pipelined(v, self.device, self.samplerate) for v in chosen)

    def _one_device(self) -> Device:
        with _translated:
            if self.kind != "duplex":
                return self.devices[0] or _device(None, self.kind)
            ins, outs = self.devices
            if ins is None and outs is None:
                return duplex_or_pair(None)
            ins = ins or _device(None, "input")
            outs = outs or _device(None, "output")
            if ins.id == outs.id and ins.supports_duplex():
                return ins
            # Two devices (or one whose directions have two clocks): the
            # engine makes their clocks one, as a duplex stream needs.
            return aggregate(ins, outs)

    def config(self) -> StreamConfig | DuplexStreamConfig:
        with _translated:
            if self.kind == "duplex":
                return DuplexStreamConfig(
                    self.channels[0], self.channels[1], self.samplerate, self.buffer_size
                )
            return StreamConfig(self.channels[0], self.samplerate, self.buffer_size)


def _pair(value: object, name: str, kind: str) -> list[Any]:
    if kind != "duplex":
        if isinstance(value, (list, tuple)):
            _invalid(f"{name} of a one-direction stream is one value, got {shown(value)}")
        return [value]
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            _invalid(f"{name} takes one value or an (input, output) pair, got {shown(value)}")
        return list(value)
    return [value, value]


def _channel_count(value: object, side: str, device: Device) -> int:
    if value is None:
        value = default._channels[_side(side)]
    if value is None:
        with _translated:
            if side == "input":
                config = device.default_input_config()
            else:
                config = device.default_output_config()
        return config.channels
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        _invalid(f"channels must be a whole number >= 1, got {shown(value)}")
    return int(value)


def check_input_settings(
    device: object = None,
    channels: object = None,
    dtype: object = None,
    extra_settings: object = None,
    samplerate: object = None,
) -> None:
    """Raise `PortAudioError` if an input stream with these settings cannot be opened."""
    _check_settings("input", device, channels, dtype, extra_settings, samplerate)


def check_output_settings(
    device: object = None,
    channels: object = None,
    dtype: object = None,
    extra_settings: object = None,
    samplerate: object = None,
) -> None:
    """Raise `PortAudioError` if an output stream with these settings cannot be opened."""
    _check_settings("output", device, channels, dtype, extra_settings, samplerate)


def _check_settings(
    kind: str, device: object, channels: object, dtype: object, extra: object, rate: object
) -> None:
    from duplexio.config import check_config

    s = _Settings(kind, rate, None, device, channels, dtype, None, extra)
    config = s.config()
    assert isinstance(config, StreamConfig)
    with _translated:
        ranges = (
            s.device.supported_input_configs()
            if kind == "input"
            else s.device.supported_output_configs()
        )
        check_config(config, ranges, s.formats[0], device=str(s.device.id), direction=kind)


# -- streams ----------------------------------------------------------------------


class _StreamBase:
    """What every stream of this module shares: sounddevice's attributes and
    control on one engine stream."""

    _kind = "duplex"
    _raw = False

    def __init__(
        self,
        samplerate: float | None = None,
        blocksize: int | None = None,
        device: Any = None,
        channels: Any = None,
        dtype: Any = None,
        latency: Any = None,
        extra_settings: Any = None,
        callback: Callable[..., Any] | None = None,
        finished_callback: Callable[[], Any] | None = None,
        clip_off: bool | None = None,
        dither_off: bool | None = None,
        never_drop_input: bool | None = None,
        prime_output_buffers_using_stream_callback: bool | None = None,
    ) -> None:
        # clip_off: the engine always clips float to integer formats;
        # dither_off: it never dithers; never_drop_input: it never drops input
        # without a flag; priming: no host primes through the callback, so
        # the first callback is an ordinary one (as PortAudio does there).
        for name, value in (
            ("clip_off", clip_off),
            ("dither_off", dither_off),
            ("never_drop_input", never_drop_input),
            (
                "prime_output_buffers_using_stream_callback",
                prime_output_buffers_using_stream_callback,
            ),
        ):
            _flag(name, value)
        if callback is not None and not callable(callback):
            _invalid(f"callback must be callable or None, got {shown(callback)}")
        if finished_callback is not None and not callable(finished_callback):
            _invalid(f"finished_callback must be callable or None, got {shown(finished_callback)}")
        s = _Settings(
            self._kind, samplerate, blocksize, device, channels, dtype, latency, extra_settings
        )
        self._settings = s
        self._user_stopped = True
        self._stream = self._build(s, callback)
        self._stream._core.on_inactive = finished_callback

    def _build(self, s: _Settings, callback: Callable[..., Any] | None) -> _EngineStream:
        wrapped = None if callback is None else self._wrap(callback, s)
        config = s.config()
        with _translated:
            if self._kind == "duplex":
                assert isinstance(config, DuplexStreamConfig)
                return s.device.build_duplex_stream(
                    config, wrapped, None, input_format=s.formats[0],
                    output_format=s.formats[1], pipelined=s.pipelined,
                )  # fmt: skip
            assert isinstance(config, StreamConfig)
            build = (
                s.device.build_input_stream
                if self._kind == "input"
                else s.device.build_output_stream
            )
            return build(config, wrapped, None, sample_format=s.formats[0], pipelined=s.pipelined)

    def _wrap(self, callback: Callable[..., Any], s: _Settings) -> Callable[..., None]:
        """The engine's callback that calls the user's with sounddevice's arguments."""
        views: dict[int, Any] = {}
        raw = self._raw

        def face(array: np.ndarray) -> Any:
            # The engine reuses one array per direction: its byte view is made once.
            if not raw:
                return array
            view = views.get(id(array))
            if view is None:
                view = views[id(array)] = array.data.cast("B")
            return view

        if self._kind == "duplex":

            def duplex(inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
                stamp = CallbackTime(
                    info.input.timestamp.device / 1e9,
                    info.output.timestamp.device / 1e9,
                    info.input.timestamp.callback / 1e9,
                )
                callback(face(inp), face(out), info.frames, stamp, _flags(info, True, True))

            return duplex
        inputs = self._kind == "input"

        def single(data: np.ndarray, info: CallbackInfo) -> None:
            device_s = info.timestamp.device / 1e9
            stamp = CallbackTime(
                device_s if inputs else 0.0,
                0.0 if inputs else device_s,
                info.timestamp.callback / 1e9,
            )
            callback(face(data), info.frames, stamp, _flags(info, inputs, not inputs))

        return single

    # -- what it is ----------------------------------------------------------

    def _one_or_pair(self, values: Sequence[Any]) -> Any:
        return tuple(values) if self._kind == "duplex" else values[0]

    @property
    def samplerate(self) -> float:
        """The sampling frequency in Hz."""
        return float(self._stream.sample_rate)

    @property
    def blocksize(self) -> int:
        """Frames per callback block as asked for: 0 lets the device choose (its period)."""
        return self._settings.blocksize

    @property
    def device(self) -> Any:
        """The device index, or an (input, output) pair of them (an aggregate's two devices)."""
        table = _numbering()
        dev = self._settings.device
        if self._kind == "duplex":
            parts = getattr(dev, "input_device", dev), getattr(dev, "output_device", dev)
            return tuple(table.index(p) for p in parts)
        return table.index(dev)

    @property
    def channels(self) -> Any:
        """Channels, or an (input, output) pair."""
        return self._one_or_pair(self._settings.channels)

    @property
    def dtype(self) -> Any:
        """The sample format's name (``'float32'``...), or an (input, output) pair."""
        return self._one_or_pair(self._settings.dtypes)

    @property
    def samplesize(self) -> Any:
        """Bytes per sample, or an (input, output) pair."""
        return self._one_or_pair([f.dtype.itemsize for f in self._settings.formats])

    @property
    def latency(self) -> Any:
        """Input and/or output latency in seconds: the device's own figures
        (and the engine's, pipelined or re-blocked), not an estimate."""
        lat = self._stream.latency
        rate = self._stream.sample_rate
        if self._kind == "input":
            return lat.input / rate
        if self._kind == "output":
            return lat.output / rate
        return (lat.input / rate, lat.output / rate)

    @property
    def active(self) -> bool:
        """True while callbacks run (after ``start()``, until stopped, aborted or finished)."""
        return self._stream.running

    @property
    def stopped(self) -> bool:
        """True before ``start()`` and after ``stop()`` or ``abort()``; a stream
        its callback finished (CallbackStop) is inactive but not stopped."""
        return self._user_stopped or self._stream.closed

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._stream.closed

    @property
    def time(self) -> float:
        """The stream's clock now, in seconds (the callback's ``time`` instants' clock)."""
        return self._stream.now() / 1e9

    @property
    def cpu_load(self) -> float:
        """The callback's mean share of its block's duration (0.0 to 1.0 and over)."""
        return float(self._stream.stats.load)

    # -- control -------------------------------------------------------------

    def start(self) -> None:
        """Start the stream (the callbacks, or the blocking reads and writes)."""
        with _translated:
            self._stream.start()
        self._user_stopped = False

    def stop(self, ignore_errors: bool = True) -> None:
        """Stop once what was handed to the device has played."""
        self._halt(self._stream.stop, ignore_errors)

    def abort(self, ignore_errors: bool = True) -> None:
        """Stop now, dropping what is queued."""
        self._halt(self._stream.pause, ignore_errors)

    def close(self, ignore_errors: bool = True) -> None:
        """Stop now (as ``abort()``) and release the device."""
        self._halt(self._stream.close, ignore_errors)

    def _halt(self, how: Callable[[], None], ignore_errors: bool) -> None:
        self._user_stopped = True
        try:
            with _translated:
                if not self._stream.closed:
                    how()
                if not ignore_errors and self._stream.error is not None:
                    raise self._stream.error
        except PortAudioError:
            if not ignore_errors:
                raise

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    def __repr__(self) -> str:
        return (
            f"<duplexio.sounddevice.{type(self).__name__} on {self._settings.device.id}: "
            f"{self.channels} channels, {self.samplerate:g} Hz, {self.dtype}>"
        )

    # -- blocking I/O ----------------------------------------------------------

    @property
    def read_available(self) -> int:
        """Frames a ``read()`` returns without waiting."""
        with _translated:
            return self._stream.read_available

    @property
    def write_available(self) -> int:
        """Frames a ``write()`` takes without waiting."""
        with _translated:
            return self._stream.write_available

    def _read(self, frames: int) -> tuple[np.ndarray, bool]:
        with _translated:
            data, status = self._stream.read(frames)
        return data, bool(status)

    def _write(self, data: Any) -> bool:
        if self._raw:
            fmt = self._settings.formats[-1]
            channels = self._settings.channels[-1]
            try:
                flat = np.frombuffer(data, dtype=fmt.dtype)
            except (TypeError, ValueError) as exc:
                _invalid(f"write() takes a buffer of {fmt.dtype} samples: {exc}")
            if flat.size % channels:
                _invalid(f"write() got {flat.size} samples, not whole frames of {channels}")
            data = flat.reshape(-1, channels)
        with _translated:
            status = self._stream.write(data)
        return bool(status.underflowed)


class _Reader:
    """``read()`` of an input or duplex stream."""

    def read(self: Any, frames: int) -> tuple[Any, bool]:
        """Wait for ``frames`` frames of input; return them and whether input was lost.

        Returns
        -------
        (data, overflowed)
            ``data`` of shape ``(frames, channels)`` (raw streams: its bytes);
            ``overflowed`` True if the input was not continuous before it.
        """
        data, lost = self._read(frames)
        return (data.data.cast("B") if self._raw else data), lost


class _Writer:
    """``write()`` of an output or duplex stream."""

    def write(self: Any, data: Any) -> bool:
        """Queue ``data`` for output, waiting for room; return whether output underflowed before.

        ``data`` has shape ``(frames, channels)`` (or ``(frames,)`` for one
        channel) in the stream's dtype; raw streams take a buffer of samples.
        """
        return bool(self._write(data))


class Stream(_StreamBase, _Reader, _Writer):
    """A duplex stream: one callback ``callback(indata, outdata, frames, time, status)``
    gets the input block and fills the output block of the same device cycle,
    on one clock (two devices are made one clock by `duplexio.aggregate`).

    Arguments as sounddevice's (every one may be an (input, output) pair but
    ``samplerate`` and ``blocksize``). ``blocksize`` of any size is kept:
    the engine re-blocks where the device runs another period.
    ``latency='high'`` (the default) runs the callback pipelined (a whole
    period for it, one more of latency), ``'low'`` in the same cycle.
    Without a callback, ``read()`` and ``write()`` are the I/O.
    """


class InputStream(_StreamBase, _Reader):
    """An input stream; ``callback(indata, frames, time, status)``. As `Stream`."""

    _kind = "input"


class OutputStream(_StreamBase, _Writer):
    """An output stream; ``callback(outdata, frames, time, status)``. As `Stream`."""

    _kind = "output"


class RawStream(Stream):
    """`Stream` with buffers (``memoryview``s of bytes) instead of arrays."""

    _raw = True


class RawInputStream(InputStream):
    """`InputStream` with buffers (``memoryview``s of bytes) instead of arrays."""

    _raw = True


class RawOutputStream(OutputStream):
    """`OutputStream` with buffers (``memoryview``s of bytes) instead of arrays."""

    _raw = True


# -- play, rec, playrec -------------------------------------------------------------


class _ProgramFace(_StreamBase):
    """The stream behind play/rec/playrec, as `get_stream()` returns it: a
    program the engine runs with no Python per block."""

    def __init__(self, kind: str, settings: _Settings, stream: _EngineStream) -> None:
        self._kind = kind
        self._settings = settings
        self._stream = stream
        self._user_stopped = True


class _Take:
    """The last play/rec/playrec: its stream, and where its recording goes."""

    def __init__(
        self,
        face: _StreamBase,
        out: np.ndarray | None,
        mapping: list[int] | None,
    ) -> None:
        self.face = face
        self.out = out
        self.mapping = mapping
        self.copied = threading.Event()
        self.status = CallbackFlags()

    def settle(self) -> None:
        """Copy what was recorded into ``out`` (once), note the glitches."""
        if self.copied.is_set():
            return
        stream = self.face._stream
        if isinstance(stream, ProgramStream):
            if stream.status.xruns:
                self.status = CallbackFlags(_INPUT_OVERFLOW | _OUTPUT_UNDERFLOW)
            if self.out is not None:
                got = stream.captured
                if self.mapping is not None:
                    got = got[:, [m - 1 for m in self.mapping]]
                self.out[:] = got
        self.copied.set()


_take_lock = threading.Lock()
_take: _Take | None = None


def _begin(take: _Take, blocking: bool) -> None:
    global _take
    stop()
    with _take_lock:
        _take = take
    core = take.face._stream._core
    core.on_inactive = take.settle
    take.face.start()
    if blocking:
        wait()


def _mapping(mapping: object, columns: int, what: str) -> list[int] | None:
    if mapping is None:
        return None
    values: Any = [mapping] if isinstance(mapping, (int, np.integer)) else mapping
    try:
        result = [int(v) for v in values]
    except (TypeError, ValueError):
        _invalid(f"{what} must be channel numbers from 1, got {shown(mapping)}")
    if not result or min(result) < 1 or len(set(result)) != len(result):
        _invalid(f"{what} must be distinct channel numbers from 1, got {shown(mapping)}")
    if columns and len(result) != columns:
        _invalid(f"{what} names {len(result)} channels for {columns} of data")
    return result


def _mapped(arr: np.ndarray, mapping: list[int] | None) -> np.ndarray:
    """Data columns placed on the output channels ``mapping`` names (1-based)."""
    if mapping is None:
        return arr
    wide = np.zeros((arr.shape[0], max(mapping)), arr.dtype)
    wide[:, [m - 1 for m in mapping]] = arr
    return wide


def _data(data: npt.ArrayLike) -> np.ndarray:
    with _translated:
        arr, _ = as_frames(data)
    return arr


def play(
    data: npt.ArrayLike,
    samplerate: float | None = None,
    mapping: Any = None,
    blocking: bool = False,
    loop: bool = False,
    **kwargs: Any,
) -> None:
    """Play ``data``: inside the engine, no Python per block (``loop=True``
    repeats it until `stop()`). Stops the previous play/rec/playrec.

    ``mapping`` lists the output channels (from 1) the data's columns go
    to. ``kwargs`` are `OutputStream`'s (``device``, ``blocksize``,
    ``latency``...).
    """
    arr = _mapped(_data(data), _mapping(mapping, _data(data).shape[1], "mapping"))
    kwargs.setdefault("dtype", arr.dtype)
    kwargs["channels"] = arr.shape[1]
    if loop:
        position = [0]

        def again(out: np.ndarray, frames: int, time: CallbackTime, status: CallbackFlags) -> None:
            n = len(arr)
            at = position[0]
            taken = 0
            while taken < frames:
                step = min(frames - taken, n - at)
                out[taken : taken + step] = arr[at : at + step]
                taken += step
                at = (at + step) % n
            position[0] = at

        _begin(_Take(OutputStream(samplerate, callback=again, **kwargs), None, None), blocking)
        return
    s = _Settings(
        "output", samplerate, kwargs.pop("blocksize", None), kwargs.pop("device", None),
        kwargs.pop("channels"), kwargs.pop("dtype"), kwargs.pop("latency", None),
        kwargs.pop("extra_settings", None),
    )  # fmt: skip
    _no_more(kwargs, "play")
    config = s.config()
    assert isinstance(config, StreamConfig)
    with _translated:
        stream = s.device.build_play_stream(config, arr)
    _begin(_Take(_ProgramFace("output", s, stream), None, None), blocking)


def _no_more(kwargs: dict[str, Any], what: str) -> None:
    flags = {"clip_off", "dither_off", "never_drop_input",
             "prime_output_buffers_using_stream_callback"}  # fmt: skip
    for name in list(kwargs):
        if name in flags:
            _flag(name, kwargs.pop(name))
    if kwargs:
        _invalid(f"{what}() got unexpected arguments: {', '.join(sorted(kwargs))}")


def rec(
    frames: int | None = None,
    samplerate: float | None = None,
    channels: int | None = None,
    dtype: Any = None,
    out: np.ndarray | None = None,
    mapping: Any = None,
    blocking: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Record ``frames`` frames inside the engine and return the array they go to.

    The array is filled when the take ends: call `wait()` (or pass
    ``blocking=True``) before reading it (sounddevice fills it as it
    records). ``mapping`` picks input channels (from 1); ``out`` is an
    array to record into.
    """
    s, arr, mapped = _recording_setup(
        "input", frames, samplerate, channels, dtype, out, mapping, kwargs
    )
    config = s.config()
    assert isinstance(config, StreamConfig)
    with _translated:
        stream = s.device.build_rec_stream(config, len(arr), sample_format=s.formats[0])
    _begin(_Take(_ProgramFace("input", s, stream), arr, mapped), blocking)
    return arr


def _recording_setup(
    kind: str,
    frames: int | None,
    samplerate: object,
    channels: object,
    dtype: object,
    out: np.ndarray | None,
    mapping: object,
    kwargs: dict[str, Any],
    played: np.ndarray | None = None,
) -> tuple[_Settings, np.ndarray, list[int] | None]:
    if frames is None and out is None:
        if played is None:
            _invalid("rec() needs frames or out")
        frames = len(played)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.ndim not in (1, 2):
            _invalid(f"out must be a numpy array of (frames, channels), got {shown(out)}")
        if frames is not None and frames != out.shape[0]:
            _invalid(f"frames {frames} does not match out's {out.shape[0]} frames")
        frames = out.shape[0]
        columns = out.shape[1] if out.ndim == 2 else 1
        if channels is not None and channels != columns:
            _invalid(f"channels {channels} does not match out's {columns} columns")
        channels, dtype = columns, out.dtype
    mapped = _mapping(mapping, 0 if channels is None else int(channels), "mapping")  # type: ignore[call-overload]
    ins = max(mapped) if mapped is not None else channels
    device_pair: Any = kwargs.pop("device", None)
    if played is not None:
        device_pair = device_pair if isinstance(device_pair, (list, tuple)) else (
            device_pair, device_pair,
        )  # fmt: skip
        ins = (ins, played.shape[1])
        dtype = (dtype if dtype is not None else default._dtype[0], played.dtype)
    s = _Settings(
        kind, samplerate, kwargs.pop("blocksize", None), device_pair, ins, dtype,
        kwargs.pop("latency", None), kwargs.pop("extra_settings", None),
    )  # fmt: skip
    _no_more(kwargs, "rec" if played is None else "playrec")
    count = len(mapped) if mapped is not None else s.channels[0]
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        _invalid(f"frames must be a whole number >= 1, got {shown(frames)}")
    arr = out if out is not None else np.zeros((int(frames), count), s.formats[0].dtype)
    if out is not None and out.ndim == 1:
        arr = out.reshape(-1, 1)
    return s, arr, mapped


def playrec(
    data: npt.ArrayLike,
    samplerate: float | None = None,
    channels: int | None = None,
    dtype: Any = None,
    out: np.ndarray | None = None,
    input_mapping: Any = None,
    output_mapping: Any = None,
    blocking: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Play ``data`` and record at once, inside the engine; return the recording's array.

    As sounddevice's: ``recording[n]`` was captured in the same device cycle
    that ``data[n]`` was handed to the output, so a loop shows its round
    trip as a delay (`duplexio.playrec` aligns it instead). Filled when the
    take ends, as for `rec()`.
    """
    played = _mapped(_data(data), _mapping(output_mapping, _data(data).shape[1], "output_mapping"))
    s, arr, mapped = _recording_setup(
        "duplex", None if out is not None else len(played), samplerate, channels, dtype, out,
        input_mapping, kwargs, played,
    )  # fmt: skip
    config = s.config()
    assert isinstance(config, DuplexStreamConfig)
    with _translated:
        stream = s.device.build_playrec_stream(config, played, len(arr), input_format=s.formats[0])
    _begin(_Take(_ProgramFace("duplex", s, stream), arr, mapped), blocking)
    return arr


def wait(ignore_errors: bool = True) -> CallbackFlags | None:
    """Wait for the last play/rec/playrec to end; its glitches, if any.

    Returns
    -------
    CallbackFlags or None
        The flags of the glitches during the take; None when there were none.
    """
    with _take_lock:
        take = _take
    if take is None:
        return None
    stream = take.face._stream
    try:
        with _translated:
            while not stream.wait(0.1):
                pass
    except PortAudioError:
        if not ignore_errors:
            raise
    take.settle()
    return take.status or None


def stop(ignore_errors: bool = True) -> None:
    """Stop the last play/rec/playrec now; what was recorded so far is kept."""
    with _take_lock:
        take = _take
    if take is None:
        return
    take.face.close(ignore_errors)
    take.settle()


def get_status() -> CallbackFlags:
    """The glitches of the last play/rec/playrec so far."""
    with _take_lock:
        take = _take
    if take is None:
        _unsupported("get_status() needs a play(), rec() or playrec() first")
    stream = take.face._stream
    if isinstance(stream, ProgramStream) and stream.status.xruns:
        return CallbackFlags(_INPUT_OVERFLOW | _OUTPUT_UNDERFLOW)
    if stream.stats.xruns or stream.stats.late_blocks or stream.stats.skipped_blocks:
        return CallbackFlags(_OUTPUT_UNDERFLOW)
    return take.status


def get_stream() -> _StreamBase:
    """The stream of the last play/rec/playrec (sounddevice's attributes and control)."""
    with _take_lock:
        take = _take
    if take is None:
        _unsupported("get_stream() needs a play(), rec() or playrec() first")
    return take.face


def sleep(msec: float) -> None:
    """Sleep ``msec`` milliseconds."""
    _time.sleep(msec / 1000)


def get_portaudio_version() -> tuple[int, str]:
    """(0, a text naming this engine): no PortAudio is under these streams but
    the PortAudio host's."""
    hosts = ", ".join(h.value for h in considered_hosts())
    return 0, f"duplexio {__version__} engine (hosts: {hosts}); not PortAudio"
