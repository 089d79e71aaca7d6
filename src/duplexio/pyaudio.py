"""PyAudio's API on this library's engine.

A program written for PyAudio runs by changing one line::

    import duplexio.pyaudio as pyaudio

`PyAudio` opens streams (blocking ``read``/``write`` of bytes, or a
``stream_callback`` returning ``(out_data, flag)``), lists devices and host
APIs as PortAudio numbers them (`duplexio.numbering`), and the ``pa*``
constants mean what they mean there. Underneath are the engine's streams:
a slow callback costs a flagged block, never a stalled device, and a
``frames_per_buffer`` the device does not run is re-blocked.

Errors are PyAudio's: an ``OSError`` whose ``errno`` is PortAudio's code
(``paInputOverflowed`` from ``read()``...), a ``ValueError`` for a bad
argument, both also a `duplexio.Error`. What cannot mean what it means
there is refused with one (``paInt24``'s packed 3-byte samples, host-API
specific stream info); the docs page "From sounddevice and PyAudio" lists
the differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from duplexio._version import __version__
from duplexio.aggregate import aggregate
from duplexio.config import BufferSize, DuplexStreamConfig, StreamConfig, check_config
from duplexio.devices import find_device
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat
from duplexio.host import Device
from duplexio.numbering import DeviceFacts, Numbering, Translating
from duplexio.stream import CallbackAbort, CallbackStop
from duplexio.stream import Stream as _EngineStream
from duplexio.timing import CallbackInfo, DuplexCallbackInfo

__all__ = [
    "PyAudio",
    "PyAudioError",
    "Stream",
    "get_format_from_width",
    "get_portaudio_version",
    "get_portaudio_version_text",
    "get_sample_size",
]

# Sample formats (PortAudio's bits).
paFloat32 = 1
paInt32 = 2
paInt24 = 4
paInt16 = 8
paInt8 = 16
paUInt8 = 32
paCustomFormat = 65536

# What a callback returns with its data.
paContinue = 0
paComplete = 1
paAbort = 2

# A callback's status flags.
paInputUnderflow = 1
paInputOverflow = 2
paOutputUnderflow = 4
paOutputOverflow = 8
paPrimingOutput = 16

paFramesPerBufferUnspecified = 0

# PortAudio's error codes, as OSError.errno.
paNoError = 0
paNotInitialized = -10000
paUnanticipatedHostError = -9999
paInvalidChannelCount = -9998
paInvalidSampleRate = -9997
paInvalidDevice = -9996
paInvalidFlag = -9995
paSampleFormatNotSupported = -9994
paBadIODeviceCombination = -9993
paInsufficientMemory = -9992
paBufferTooBig = -9991
paBufferTooSmall = -9990
paNullCallback = -9989
paBadStreamPtr = -9988
paTimedOut = -9987
paInternalError = -9986
paDeviceUnavailable = -9985
paIncompatibleHostApiSpecificStreamInfo = -9984
paStreamIsStopped = -9983
paStreamIsNotStopped = -9982
paInputOverflowed = -9981
paOutputUnderflowed = -9980
paHostApiNotFound = -9979
paInvalidHostApi = -9978
paCanNotReadFromACallbackStream = -9977
paCanNotWriteToACallbackStream = -9976
paCanNotReadFromAnOutputOnlyStream = -9975
paCanNotWriteToAnInputOnlyStream = -9974
paIncompatibleStreamHostApi = -9973

# Host API types.
paInDevelopment = 0
paDirectSound = 1
paMME = 2
paASIO = 3
paSoundManager = 4
paCoreAudio = 5
paOSS = 7
paALSA = 8
paAL = 9
paBeOS = 10
paWDMKS = 11
paJACK = 12
paWASAPI = 13
paNoDevice = -1

#: Host API names (PortAudio's, and this library's hosts) and their types;
#: a host with no PortAudio type is paInDevelopment.
_HOSTAPI_TYPES = {
    "JACK Audio Connection Kit": paJACK,
    "ALSA": paALSA,
    "MME": paMME,
    "Windows DirectSound": paDirectSound,
    "Windows WASAPI": paWASAPI,
    "Windows WDM-KS": paWDMKS,
    "ASIO": paASIO,
    "Core Audio": paCoreAudio,
    "OSS": paOSS,
}

#: The formats the engine gives, by PortAudio's bits.
_FORMATS = {
    paFloat32: SampleFormat.F32,
    paInt32: SampleFormat.I32,
    paInt16: SampleFormat.I16,
    paInt8: SampleFormat.I8,
    paUInt8: SampleFormat.U8,
}


class PyAudioError(Error, OSError):
    """What this module raises: an ``OSError`` whose ``errno`` is PortAudio's
    error code (``args`` is ``(errno, message)``, as PyAudio's), and a
    `duplexio.Error` with its ``kind``."""

    def __init__(
        self, kind: ErrorKind, message: str, errno: int = paUnanticipatedHostError
    ) -> None:
        super().__init__(kind, message)
        self.errno = errno
        self.strerror = self.message
        self.args = (errno, self.message)


class _InvalidArgument(PyAudioError, ValueError):
    """A bad argument: PyAudio raises ``ValueError`` there, so this is one too."""


def _code(err: Error) -> int:
    """PortAudio's error code for what a `duplexio.Error` says."""
    text = err.message.lower()
    if err.kind is ErrorKind.UNSUPPORTED_CONFIG:
        if "channel" in text:
            return paInvalidChannelCount
        if " hz" in text:
            return paInvalidSampleRate
        if "format" in text:
            return paSampleFormatNotSupported
        return paBadIODeviceCombination
    return {
        ErrorKind.DEVICE_NOT_AVAILABLE: paDeviceUnavailable,
        ErrorKind.DEVICE_BUSY: paDeviceUnavailable,
        ErrorKind.INVALID_INPUT: paInvalidDevice if "device" in text else paBadIODeviceCombination,
        ErrorKind.TIMED_OUT: paTimedOut,
        ErrorKind.UNSUPPORTED_OPERATION: paBadIODeviceCombination,
        ErrorKind.STREAM_INVALIDATED: paStreamIsStopped,
        ErrorKind.RESOURCE_EXHAUSTED: paInsufficientMemory,
    }.get(err.kind, paUnanticipatedHostError)


def _fail(err: Error) -> NoReturn:
    cls = _InvalidArgument if err.kind is ErrorKind.INVALID_INPUT else PyAudioError
    raise cls(err.kind, err.message, _code(err)) from err


def _invalid(message: str, errno: int = paBadIODeviceCombination) -> NoReturn:
    raise _InvalidArgument(ErrorKind.INVALID_INPUT, message, errno)


_translated = Translating(PyAudioError, _fail)


# -- formats --------------------------------------------------------------------


def _format(fmt: object) -> SampleFormat:
    if fmt == paInt24:
        raise PyAudioError(
            ErrorKind.UNSUPPORTED_OPERATION,
            "paInt24 (3-byte packed samples) is not offered: use paInt32, which carries "
            "24-bit devices' samples in full",
            paSampleFormatNotSupported,
        )
    found = _FORMATS.get(fmt) if isinstance(fmt, int) and not isinstance(fmt, bool) else None
    if found is None:
        _invalid(
            f"format must be paFloat32, paInt32, paInt16, paInt8 or paUInt8, got {shown(fmt)}",
            paSampleFormatNotSupported,
        )
    return found


def get_sample_size(format: int) -> int:
    """Bytes per sample of a ``pa*`` format (paInt24: 3)."""
    if format == paInt24:
        return 3
    return int(_format(format).dtype.itemsize)


def get_format_from_width(width: int, unsigned: bool = True) -> int:
    """The format of ``width``-byte samples: 1 paUInt8 (paInt8 signed), 2
    paInt16, 3 paInt24, 4 paFloat32 (as PyAudio maps it)."""
    if width == 1:
        return paUInt8 if unsigned else paInt8
    formats = {2: paInt16, 3: paInt24, 4: paFloat32}
    if width not in formats:
        _invalid(f"width must be 1, 2, 3 or 4 bytes, got {shown(width)}")
    return formats[width]


def get_portaudio_version() -> int:
    """0: no PortAudio is under these streams but the PortAudio host's."""
    return 0


def get_portaudio_version_text() -> str:
    """A text naming this engine."""
    return f"duplexio {__version__} engine; not PortAudio"


# -- streams ------------------------------------------------------------------------


def _whole(name: str, value: object, errno: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        _invalid(f"{name} must be a whole number >= {least}, got {shown(value)}", errno)
    return int(value)


def _rate(value: object) -> int:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return _whole("rate", value, paInvalidSampleRate)


class Stream:
    """A PyAudio stream; made by `PyAudio.open()` (arguments as its).

    Started at once unless ``start=False``. Without ``stream_callback`` it
    is blocking: ``read()`` returns bytes, ``write()`` takes bytes. With
    one, ``stream_callback(in_data, frame_count, time_info, status_flags)``
    runs once per block and returns ``(out_data, flag)``; ``paComplete``
    (or fewer bytes than the block) ends it once the output has played,
    ``paAbort`` ends it now.
    """

    def __init__(
        self,
        PA_manager: PyAudio,
        rate: float,
        channels: int,
        format: int,
        input: bool = False,
        output: bool = False,
        input_device_index: int | None = None,
        output_device_index: int | None = None,
        frames_per_buffer: int = paFramesPerBufferUnspecified,
        start: bool = True,
        input_host_api_specific_stream_info: Any = None,
        output_host_api_specific_stream_info: Any = None,
        stream_callback: Callable[..., Any] | None = None,
    ) -> None:
        if not (input or output):
            _invalid("Must specify an input or output stream.")
        if input_host_api_specific_stream_info is not None or (
            output_host_api_specific_stream_info is not None
        ):
            raise PyAudioError(
                ErrorKind.UNSUPPORTED_OPERATION,
                "host-API specific stream info has no meaning here",
                paIncompatibleHostApiSpecificStreamInfo,
            )
        if stream_callback is not None and not callable(stream_callback):
            _invalid(f"stream_callback must be callable, got {shown(stream_callback)}")
        self._rate = _rate(rate)
        self._channels = _whole("channels", channels, paInvalidChannelCount)
        self._format = _format(format)
        self._frame_bytes = self._channels * int(self._format.dtype.itemsize)
        frames = _whole("frames_per_buffer", frames_per_buffer, paBufferTooSmall, least=0)
        self._input, self._output = bool(input), bool(output)
        self._callback = stream_callback
        table = PA_manager._numbering()
        with _translated:
            ins = _device(table, input_device_index, "input") if input else None
            outs = _device(table, output_device_index, "output") if output else None
            size = BufferSize.fixed(frames) if frames else BufferSize.DEFAULT
            self._stream = self._build(ins, outs, size)
        self._running = False
        self._manager = PA_manager
        PA_manager._streams.add(self)
        if start:
            self.start_stream()

    def _build(self, ins: Device | None, outs: Device | None, size: BufferSize) -> _EngineStream:
        wrapped = None if self._callback is None else self._wrap(self._callback)
        if ins is not None and outs is not None:
            device = ins if ins.id == outs.id and ins.supports_duplex() else aggregate(ins, outs)
            config = DuplexStreamConfig(self._channels, self._channels, self._rate, size)
            return device.build_duplex_stream(config, wrapped, None, self._format, self._format)
        single = ins or outs
        assert single is not None
        build = single.build_input_stream if ins is not None else single.build_output_stream
        # PyAudio asks PortAudio for the device's low latency: the same cycle.
        return build(StreamConfig(self._channels, self._rate, size), wrapped, None, self._format)

    def _wrap(self, callback: Callable[..., Any]) -> Callable[..., None]:
        """The engine's callback, calling the user's as PyAudio does."""
        views: dict[int, memoryview] = {}
        inputs, outputs = self._input, self._output

        def view(array: np.ndarray) -> memoryview:
            found = views.get(id(array))
            if found is None:
                found = views[id(array)] = array.data.cast("B")
            return found

        def call(
            inp: np.ndarray | None,
            out: np.ndarray | None,
            info: CallbackInfo | DuplexCallbackInfo,
            adc: float,
            dac: float,
            now: float,
        ) -> None:
            status = 0
            if info.xrun:
                if inputs and (info.lost_frames or not outputs):
                    status |= paInputOverflow
                if outputs:
                    status |= paOutputUnderflow
            timing = {
                "input_buffer_adc_time": adc,
                "current_time": now,
                "output_buffer_dac_time": dac,
            }
            in_data = bytes(view(inp)) if inp is not None else None
            result = callback(in_data, info.frames, timing, status)
            if not isinstance(result, tuple) or len(result) != 2:
                _invalid(
                    f"stream_callback must return (out_data, flag), got {shown(result)}",
                    paInternalError,
                )
            out_data, flag = result
            short = False
            if out is not None:
                target = view(out)
                if out_data is None:
                    _invalid("an output stream's callback must return bytes, got None")
                got = memoryview(out_data).cast("B")
                take = min(len(got), len(target))
                target[:take] = got[:take]
                short = take < len(target)
            if flag == paAbort:
                raise CallbackAbort
            if flag == paComplete or short:
                raise CallbackStop
            if flag != paContinue:
                _invalid(
                    f"the callback's flag must be paContinue, paComplete or paAbort, not {flag!r}"
                )

        if inputs and outputs:

            def duplex(inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
                call(
                    inp, out, info, info.input.timestamp.device / 1e9,
                    info.output.timestamp.device / 1e9, info.input.timestamp.callback / 1e9,
                )  # fmt: skip

            return duplex
        if inputs:

            def record(inp: np.ndarray, info: CallbackInfo) -> None:
                call(
                    inp, None, info, info.timestamp.device / 1e9, 0.0, info.timestamp.callback / 1e9
                )

            return record

        def play(out: np.ndarray, info: CallbackInfo) -> None:
            call(None, out, info, 0.0, info.timestamp.device / 1e9, info.timestamp.callback / 1e9)

        return play

    # -- control -------------------------------------------------------------

    def start_stream(self) -> None:
        """Start the stream; nothing happens when it runs already (as in PyAudio)."""
        if self._running:
            return
        with _translated:
            self._stream.start()
        self._running = True

    def stop_stream(self) -> None:
        """Stop once the output handed over has played."""
        if not self._running:
            return
        with _translated:
            self._stream.stop()
        self._running = False

    def close(self) -> None:
        """Stop now and release the device."""
        self._stream.close()
        self._running = False
        self._manager._streams.discard(self)

    def is_active(self) -> bool:
        """True while the stream runs (a finished callback stream is not active)."""
        return self._stream.running

    def is_stopped(self) -> bool:
        """True before ``start_stream()`` and after ``stop_stream()``; a stream
        whose callback finished is inactive but not stopped."""
        return not self._running or self._stream.closed

    # -- what it is ----------------------------------------------------------

    def get_input_latency(self) -> float:
        """Input latency in seconds (the device's own figure)."""
        return self._stream.latency.input / self._rate if self._input else 0.0

    def get_output_latency(self) -> float:
        """Output latency in seconds (the device's, and the engine's pipelined block)."""
        return self._stream.latency.output / self._rate if self._output else 0.0

    def get_time(self) -> float:
        """The stream's clock now, in seconds."""
        return self._stream.now() / 1e9

    def get_cpu_load(self) -> float:
        """The callback's mean share of its block's duration."""
        return float(self._stream.stats.load)

    # -- blocking I/O ----------------------------------------------------------

    def _blocking(self, what: str, direction: bool, errno: int) -> None:
        if self._callback is not None:
            raise PyAudioError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"{what} on a callback stream",
                paCanNotReadFromACallbackStream
                if what == "read"
                else paCanNotWriteToACallbackStream,
            )
        if not direction:
            raise PyAudioError(
                ErrorKind.UNSUPPORTED_OPERATION, f"{what} on a stream without it", errno
            )
        if self._stream.closed:
            raise PyAudioError(ErrorKind.STREAM_INVALIDATED, "the stream is closed", paBadStreamPtr)

    def read(self, num_frames: int, exception_on_overflow: bool = True) -> bytes:
        """Wait for ``num_frames`` frames of input and return their bytes.

        Raises ``OSError`` with ``errno == paInputOverflowed`` when input was
        lost before them, unless ``exception_on_overflow`` is False.
        """
        self._blocking("read", self._input, paCanNotReadFromAnOutputOnlyStream)
        frames = _whole("num_frames", num_frames, paBufferTooSmall)
        with _translated:
            data, status = self._stream.read(frames)
        if status and exception_on_overflow:
            raise PyAudioError(ErrorKind.OTHER, "Input overflowed", paInputOverflowed)
        return data.tobytes()

    def write(
        self, frames: Any, num_frames: int | None = None, exception_on_underflow: bool = False
    ) -> None:
        """Queue the bytes ``frames`` for output, waiting for room.

        Raises ``OSError`` with ``errno == paOutputUnderflowed`` when output
        ran dry before them, if ``exception_on_underflow``.
        """
        self._blocking("write", self._output, paCanNotWriteToAnInputOnlyStream)
        try:
            data = np.frombuffer(frames, dtype=self._format.dtype)
        except (TypeError, ValueError) as exc:
            _invalid(f"write() takes bytes of {self._format.dtype} samples: {exc}")
        if num_frames is not None:
            data = data[: _whole("num_frames", num_frames, paBufferTooSmall) * self._channels]
        if data.size % self._channels:
            _invalid(f"write() got {data.size} samples, not whole frames of {self._channels}")
        with _translated:
            status = self._stream.write(data.reshape(-1, self._channels))
        if status.underflowed and exception_on_underflow:
            raise PyAudioError(ErrorKind.OTHER, "Output underflowed", paOutputUnderflowed)

    def get_read_available(self) -> int:
        """Frames ``read()`` returns without waiting."""
        with _translated:
            return self._stream.read_available

    def get_write_available(self) -> int:
        """Frames ``write()`` takes without waiting."""
        with _translated:
            return self._stream.write_available


def _device(table: Numbering, index: object, direction: str) -> Device:
    if index is None:
        return find_device(None, direction=direction)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        _invalid(f"{direction}_device_index must be an int, got {shown(index)}", paInvalidDevice)
    if not 0 <= int(index) < len(table.devices):
        _invalid(
            f"{direction}_device_index {index} is not a device (0..{len(table.devices) - 1})",
            paInvalidDevice,
        )
    device = table.devices[int(index)]
    supported = device.supports_input() if direction == "input" else device.supports_output()
    if not supported:
        _invalid(f"device {index} ({device.name}) has no {direction}", paInvalidDevice)
    return device


# -- the manager ------------------------------------------------------------------


def _device_info(facts: DeviceFacts) -> dict[str, Any]:
    return {
        "index": facts.index,
        "structVersion": 2,
        "name": facts.name,
        "hostApi": facts.hostapi,
        "maxInputChannels": facts.max_input_channels,
        "maxOutputChannels": facts.max_output_channels,
        "defaultLowInputLatency": facts.low_input_latency,
        "defaultLowOutputLatency": facts.low_output_latency,
        "defaultHighInputLatency": facts.high_input_latency,
        "defaultHighOutputLatency": facts.high_output_latency,
        "defaultSampleRate": facts.default_samplerate,
    }


class PyAudio:
    """PyAudio's manager: devices, host APIs, and `open()` for streams.

    The devices are those there when it was made (as PortAudio lists them
    once when initialised); ``terminate()`` closes every stream it opened.
    """

    def __init__(self) -> None:
        self._streams: set[Stream] = set()
        # As PortAudio's initialisation does, the devices are listed once:
        # a new PyAudio() sees what changed since.
        with _translated:
            self._table = Numbering()

    def _numbering(self) -> Numbering:
        return self._table

    def terminate(self) -> None:
        """Close every stream this manager opened."""
        for stream in list(self._streams):
            stream.close()

    def open(self, *args: Any, **kwargs: Any) -> Stream:
        """Open a stream (see `Stream`); it runs at once unless ``start=False``."""
        return Stream(self, *args, **kwargs)

    def close(self, stream: Stream) -> None:
        """Close ``stream``."""
        if not isinstance(stream, Stream):
            _invalid(f"close() takes a Stream, got {shown(stream)}", paBadStreamPtr)
        stream.close()

    def get_sample_size(self, format: int) -> int:
        """Bytes per sample of ``format``."""
        return get_sample_size(format)

    def get_format_from_width(self, width: int, unsigned: bool = True) -> int:
        """The format of ``width``-byte samples."""
        return get_format_from_width(width, unsigned)

    # -- devices -------------------------------------------------------------

    def get_device_count(self) -> int:
        """How many devices there are."""
        return len(self._numbering().devices)

    def get_device_info_by_index(self, device_index: int) -> dict[str, Any]:
        """PyAudio's dict of device ``device_index``."""
        table = self._numbering()
        if (
            isinstance(device_index, bool)
            or not isinstance(device_index, (int, np.integer))
            or (not 0 <= int(device_index) < len(table.devices))
        ):
            _invalid(f"Invalid device index {shown(device_index)}", paInvalidDevice)
        return _device_info(table.facts(int(device_index)))

    def _default_info(self, direction: str) -> dict[str, Any]:
        table = self._numbering()
        try:
            device = find_device(None, direction=direction)
        except Error as err:
            raise PyAudioError(
                ErrorKind.DEVICE_NOT_AVAILABLE,
                f"No Default {direction.capitalize()} Device Available",
                paDeviceUnavailable,
            ) from err
        # Its row, or -1 for one the table leaves out (PortAudio's on Linux).
        return _device_info(table.facts(table.index(device), device))

    def get_default_input_device_info(self) -> dict[str, Any]:
        """The default input device's dict (``OSError`` when there is none)."""
        return self._default_info("input")

    def get_default_output_device_info(self) -> dict[str, Any]:
        """The default output device's dict (``OSError`` when there is none)."""
        return self._default_info("output")

    # -- host APIs -------------------------------------------------------------

    def get_host_api_count(self) -> int:
        """How many host APIs there are."""
        return len(self._numbering().hostapis)

    def get_default_host_api_info(self) -> dict[str, Any]:
        """The default host's host API dict."""
        table = self._numbering()
        index = table.default_hostapi()
        if index < 0:
            raise PyAudioError(ErrorKind.HOST_UNAVAILABLE, "no host API", paHostApiNotFound)
        return self._hostapi(table, index)

    def get_host_api_info_by_index(self, host_api_index: int) -> dict[str, Any]:
        """PyAudio's dict of host API ``host_api_index``."""
        table = self._numbering()
        if (
            isinstance(host_api_index, bool)
            or not isinstance(host_api_index, int)
            or not (0 <= host_api_index < len(table.hostapis))
        ):
            _invalid(f"Invalid host api info {shown(host_api_index)}", paInvalidHostApi)
        return self._hostapi(table, host_api_index)

    def get_host_api_info_by_type(self, host_api_type: int) -> dict[str, Any]:
        """The host API of PortAudio type ``host_api_type`` (``paJACK``...)."""
        table = self._numbering()
        for index, name in enumerate(table.hostapis):
            if _HOSTAPI_TYPES.get(name, paInDevelopment) == host_api_type:
                return self._hostapi(table, index)
        raise PyAudioError(
            ErrorKind.HOST_UNAVAILABLE,
            f"no host API of type {shown(host_api_type)}",
            paHostApiNotFound,
        )

    def get_device_info_by_host_api_device_index(
        self, host_api_index: int, host_api_device_index: int
    ) -> dict[str, Any]:
        """The dict of a host API's ``host_api_device_index``-th device."""
        table = self._numbering()
        info = self.get_host_api_info_by_index(host_api_index)
        members = table.members(host_api_index)
        if not isinstance(host_api_device_index, int) or not (
            0 <= host_api_device_index < info["deviceCount"]
        ):
            _invalid(
                f"Invalid host api device index {shown(host_api_device_index)}", paInvalidDevice
            )
        return _device_info(table.facts(members[host_api_device_index]))

    def _hostapi(self, table: Numbering, index: int) -> dict[str, Any]:
        name = table.hostapis[index]
        return {
            "index": index,
            "structVersion": 1,
            "type": _HOSTAPI_TYPES.get(name, paInDevelopment),
            "name": name,
            "deviceCount": len(table.members(index)),
            "defaultInputDevice": table.hostapi_default(index, "input"),
            "defaultOutputDevice": table.hostapi_default(index, "output"),
        }

    def is_format_supported(
        self,
        rate: float,
        input_device: int | None = None,
        input_channels: int | None = None,
        input_format: int | None = None,
        output_device: int | None = None,
        output_channels: int | None = None,
        output_format: int | None = None,
    ) -> bool:
        """True when a stream of these settings can run; else ``ValueError``
        (its ``errno`` PortAudio's code), as PyAudio."""
        if input_device is None and output_device is None:
            _invalid("must specify stream format for input, output, or both", paInvalidDevice)
        table = self._numbering()
        for direction, index, channels, fmt in (
            ("input", input_device, input_channels, input_format),
            ("output", output_device, output_channels, output_format),
        ):
            if index is None:
                continue
            device = _device(table, index, direction)
            config = StreamConfig(
                _whole(f"{direction}_channels", channels, paInvalidChannelCount), _rate(rate)
            )
            ranges = (
                device.supported_input_configs()
                if direction == "input"
                else device.supported_output_configs()
            )
            try:
                check_config(
                    config, ranges, _format(fmt), device=str(device.id), direction=direction
                )
            except Error as err:
                raise _InvalidArgument(err.kind, err.message, _code(err)) from err
        return True


PyAudio.Stream = Stream  # type: ignore[attr-defined]  # PyAudio names its stream class there too
