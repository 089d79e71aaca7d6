"""Sound files streamed block by block: `play_file()` and `record_file()`.

Both run on blocking streams (`duplexio.blocking`): the engine's
device thread moves each block between the device and a ring, and this
module moves about a tenth of a second at a time between the ring and the
file, so memory stays flat however long the file or the take. Where the
device refuses the file's rate the audio is converted on the way with soxr's
streaming resampler (``soxr`` on PyPI), never the whole file at once.

Glitches are written down, not hidden: every gap a recording's reads met
(frames the device or the ring lost) is filled with silence so the file keeps
the device's timeline, and its place in the file is reported; every
underflow or device glitch a playback's writes met is reported likewise.

Files are read and written with soundfile (``pip install
duplexio[files]``). The command line's ``play`` and ``record`` are these
two functions with a progress bar.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from duplexio._validate import checked, checked_methods, optional_seconds, whole
from duplexio.blocking import ReadStatus
from duplexio.config import MAX_CHANNELS, MAX_SAMPLE_RATE, StreamConfig
from duplexio.devices import DeviceLike, default, find_device
from duplexio.errors import Error, ErrorKind, shown
from duplexio.host import Device

__all__ = [
    "FileReport",
    "Glitch",
    "file_path",
    "level_dbfs",
    "optional_module",
    "play_file",
    "record_file",
    "sound_file",
]

#: Seconds of audio moved between the ring and the file per step.
_STEP_SECONDS = 0.1
#: The subtype each file format is written in by default: lossless for float32.
_SUBTYPES = {".wav": "FLOAT", ".flac": "PCM_24", ".ogg": "VORBIS"}


def optional_module(name: str, extra: str) -> Any:
    """Import an optional dependency, or raise an ``Error`` saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Error(
            ErrorKind.UNSUPPORTED_OPERATION,
            f"this needs the '{name}' package: pip install 'duplexio[{extra}]'",
        ) from exc


def file_path(name: str, value: object) -> Path:
    """``value`` as a Path, if it is a str or a path-like object naming a file.

    Anything else is refused rather than made a name with ``str()``: ``42``
    or an array as a file name is a bug, not a file called "42".

    Raises
    ------
    Error
        ``INVALID_INPUT``: "<name> must be a file path (str or os.PathLike),
        got <value>".
    """
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text and "\0" not in text:
            return Path(text)
    raise Error(
        ErrorKind.INVALID_INPUT,
        f"{name} must be a file path (a non-empty str or os.PathLike), got {shown(value)}",
    )


def sound_file(path: str | Path, mode: str, **format: Any) -> Any:
    """``soundfile.SoundFile(path, mode, ...)``, its failures as an ``Error`` naming the file.

    Opened before any device is, so a file that cannot be read or written
    costs no stream.
    """
    path = file_path("path", path)
    sf = optional_module("soundfile", "files")
    try:
        return sf.SoundFile(str(path), mode, **format)
    except (sf.LibsndfileError, OSError, RuntimeError, TypeError, ValueError, OverflowError) as exc:
        doing = "read" if mode == "r" else "write"
        raise Error(ErrorKind.INVALID_INPUT, f"cannot {doing} {shown(str(path))}: {exc}") from exc


@checked_methods
@dataclass(frozen=True)
class Glitch:
    """A place in a file where the audio is not what the device carried.

    Attributes
    ----------
    frame
        Where, in frames of the file (at the file's rate).
    frames
        How long, in frames of the file: silence filled in for lost input, or
        silence played because the output ran dry. 0 for a device glitch that
        lost no whole cycle (a restart): the audio around it may be disturbed.
    """

    frame: int
    frames: int


@checked_methods
@dataclass(frozen=True)
class FileReport:
    """What `play_file()` or `record_file()` did.

    Attributes
    ----------
    path
        The file.
    frames
        Frames of the file played, or written (at the file's rate).
    sample_rate
        The file's rate, Hz.
    device_rate
        The stream's rate, Hz; differs from ``sample_rate`` when soxr converted.
    channels
        The file's channels.
    glitches
        Every place the audio was not carried whole, in order.
    interrupted
        The stop event was set before the end (Ctrl-C in the command line).
    """

    path: str
    frames: int
    sample_rate: int
    device_rate: int
    channels: int
    glitches: tuple[Glitch, ...]
    interrupted: bool

    @property
    def seconds(self) -> float:
        """The length played or written, in seconds."""
        return self.frames / self.sample_rate

    @property
    def resampled(self) -> bool:
        """True when the audio was converted between the file's and the device's rate."""
        return self.sample_rate != self.device_rate

    def write_labels(self, path: str | Path) -> None:
        """Write the glitches as an Audacity label track (``start<TAB>end<TAB>label``, seconds)."""
        rate = self.sample_rate
        lines = [
            f"{g.frame / rate:.6f}\t{(g.frame + g.frames) / rate:.6f}\t"
            + (f"{g.frames} frames lost" if g.frames else "device glitch")
            for g in self.glitches
        ]
        file_path("path", path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


class _Converter:
    """The file's rate to the device's, or back: soxr's streaming resampler, or nothing."""

    def __init__(self, in_rate: int, out_rate: int, channels: int) -> None:
        self.ratio = out_rate / in_rate
        self.stream: Any = None
        if in_rate != out_rate:
            soxr = optional_module("soxr", "files")
            self.stream = soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32")

    def __call__(self, block: np.ndarray[Any, Any], last: bool = False) -> np.ndarray[Any, Any]:
        if self.stream is None:
            return block
        out: np.ndarray[Any, Any] = self.stream.resample_chunk(block, last=last)
        return out.reshape(-1, block.shape[1])

    def frames(self, device_frames: int) -> int:
        """``device_frames`` at the device's rate, in frames at the file's rate."""
        return round(device_frames / self.ratio) if self.stream is not None else device_frames


def _rate_for(device: Device, output: bool, rate: int, channels: int) -> int:
    """``rate`` if the device takes it with ``channels`` channels, else the device's own."""
    ranges = device.supported_output_configs() if output else device.supported_input_configs()
    if any(r.supports_channels(channels) and r.supports_rate(rate) for r in ranges):
        return rate
    own = device.default_output_config() if output else device.default_input_config()
    return own.sample_rate


def _hooks(
    stop: object, on_block: object
) -> tuple[threading.Event, Callable[[int, np.ndarray[Any, Any]], None] | None]:
    """The stop event (a new one for None) and the block hook, checked before anything opens."""
    if stop is None:
        stop = threading.Event()
    if not isinstance(stop, threading.Event):
        raise Error(
            ErrorKind.INVALID_INPUT, f"stop must be a threading.Event or None, got {shown(stop)}"
        )
    if on_block is not None and not callable(on_block):
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"on_block must be callable as on_block(frames, block) or None, got {shown(on_block)}",
        )
    return stop, on_block


@checked
def play_file(
    path: str | Path,
    device: DeviceLike = None,
    *,
    buffer_size: int | None = None,
    stop: threading.Event | None = None,
    on_block: Callable[[int, np.ndarray[Any, Any]], None] | None = None,
) -> FileReport:
    """Play a sound file from disk, a tenth of a second at a time.

    The first blocks are queued before the stream starts, so playback
    begins on the first cycle; the call returns when the last frame has
    left the device (or ``stop`` is set, which halts at once).

    Parameters
    ----------
    path
        Any file soundfile reads (WAV, FLAC, OGG, ...).
    device
        An output device as `play()` takes it; default the
        default output device.
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.
    stop
        Set it (from a signal handler, another thread) to end early.
    on_block
        Called after each step with the frames of the file played so far and
        that step's audio (at the file's rate): progress and level meters.

    Returns
    -------
    FileReport
        ``device_rate`` differs from the file's when the device refused it
        and soxr converted.

    Raises
    ------
    Error
        ``INVALID_INPUT`` for a file that cannot be read (before a device
        opens); ``UNSUPPORTED_OPERATION`` when conversion is needed and soxr
        is not installed; the stream's own errors.
    """
    stop, on_block = _hooks(stop, on_block)
    with sound_file(path, "r") as f:
        rate, channels = int(f.samplerate), int(f.channels)
        dev = find_device(device, direction="output")
        device_rate = _rate_for(dev, True, rate, channels)
        convert = _Converter(rate, device_rate, channels)
        stream = dev.build_output_stream(
            StreamConfig(channels, device_rate, default._buffer_size_for(buffer_size))
        )
        step = max(1, round(rate * _STEP_SECONDS))
        glitches: list[Glitch] = []
        played = 0
        try:
            capacity = stream.write_available
            started = False
            while not stop.is_set():
                block = f.read(step, dtype="float32", always_2d=True)
                last = len(block) < step
                out = convert(block, last=last)
                if not started and len(out) > stream.write_available:
                    stream.start()  # the ring is full: play what it holds
                    started = True
                if len(out):  # the resampler may hold a step back; the end is empty
                    status = stream.write(out)
                    if status:
                        glitches.append(Glitch(played, convert.frames(status.underflowed)))
                played += len(block)
                if on_block is not None:
                    on_block(played, block)
                if last:
                    break
            if not started:
                stream.start()
            # Until the ring has played out, then stop() lets the device's own
            # latency play too.
            while not stop.is_set() and stream.running and stream.write_available < capacity:
                time.sleep(0.02)
            if stop.is_set():
                stream.pause()
            elif stream.running:
                stream.stop()
            stream.wait(0)  # the stream's own error, if it ended with one
        finally:
            stream.close()
    return FileReport(
        str(path), played, rate, device_rate, channels, tuple(glitches), stop.is_set()
    )


@checked
def record_file(
    path: str | Path,
    seconds: float | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    device: DeviceLike = None,
    *,
    subtype: str | None = None,
    buffer_size: int | None = None,
    stop: threading.Event | None = None,
    on_block: Callable[[int, np.ndarray[Any, Any]], None] | None = None,
) -> FileReport:
    """Record into a sound file on disk, a tenth of a second at a time.

    The file is valid whenever this returns or raises: a take ended by
    ``stop`` or by a device error keeps everything captured up to then.

    Parameters
    ----------
    path
        The file to write; its extension picks the format (float WAV,
        24-bit FLAC by default).
    seconds
        How long; None records until ``stop`` is set.
    sample_rate
        The file's rate, Hz; default ``dio.default.sample_rate``, else the
        device's. A rate the device refuses is recorded at the device's rate
        and converted with soxr.
    channels
        Default ``dio.default.channels``, else the device's.
    device
        An input device as `rec()` takes it.
    subtype
        soundfile's subtype (``PCM_16``, ``FLOAT``, ...).
    buffer_size
        Frames per block; default ``dio.default.buffer_size``, else the device's.
    stop
        Set it (from a signal handler, another thread) to end the take.
    on_block
        Called after each step with the frames written so far and that step's
        audio: progress and level meters.

    Returns
    -------
    FileReport
        ``glitches``: where silence was filled in for lost input.

    Raises
    ------
    Error
        ``INVALID_INPUT`` for bad arguments or a file that cannot be written
        (before a device opens); the stream's own errors (the file is closed
        valid first).
    """
    stop, on_block = _hooks(stop, on_block)
    path = file_path("path", path)
    if subtype is not None and not isinstance(subtype, str):
        raise Error(
            ErrorKind.INVALID_INPUT,
            "subtype must be None or a soundfile subtype name such as 'PCM_16', "
            f"got {shown(subtype)}",
        )
    limit = optional_seconds("seconds", seconds)
    dev = find_device(device, direction="input")
    own = dev.default_input_config()
    ch = whole("channels", default._channels_for(channels, own.channels), maximum=MAX_CHANNELS)
    rate = whole(
        "sample_rate",
        default._sample_rate_for(sample_rate, own.sample_rate),
        maximum=MAX_SAMPLE_RATE,
    )
    total = None if limit is None else round(limit * rate)
    if total is not None and total < 1:
        raise Error(ErrorKind.INVALID_INPUT, f"seconds {shown(seconds)} records no frame")
    device_rate = _rate_for(dev, False, rate, ch)
    convert = _Converter(device_rate, rate, ch)  # checks soxr before the file exists
    subtype = subtype or _SUBTYPES.get(path.suffix.lower())
    take = _Take(path, rate, ch, subtype, total, on_block)
    try:
        stream = dev.build_input_stream(
            StreamConfig(ch, device_rate, default._buffer_size_for(buffer_size))
        )
    except BaseException:
        take.discard()  # no empty file for a take never made
        raise
    try:
        step = max(stream.buffer_size, round(device_rate * _STEP_SECONDS))
        with stream:
            done = False
            while not done and not stop.is_set():
                data, status = stream.read(step)
                done = take.write(convert(take.gaps_as_silence(data, status, convert)))
        if not done:
            take.write(convert(np.zeros((0, ch), np.float32), last=True))
    except BaseException:
        take.abandon()
        raise
    take.close()
    return FileReport(
        str(path),
        take.written,
        rate,
        device_rate,
        ch,
        tuple(take.glitches),
        stop.is_set() and not done,
    )


class _Take:
    """The file a `record_file` take goes into: what is written, where input was lost."""

    def __init__(
        self,
        path: Path,
        rate: int,
        channels: int,
        subtype: str | None,
        total: int | None,
        on_block: Callable[[int, np.ndarray[Any, Any]], None] | None,
    ) -> None:
        self.path, self.rate, self.channels, self.total = path, rate, channels, total
        self.on_block = on_block
        self.out = sound_file(path, "w", samplerate=rate, channels=channels, subtype=subtype)
        self.glitches: list[Glitch] = []
        self.written = 0

    def gaps_as_silence(
        self, data: np.ndarray[Any, Any], status: ReadStatus, convert: _Converter
    ) -> np.ndarray[Any, Any]:
        """``data`` with silence where the input lost frames (each a `Glitch`):
        the file keeps the device's timeline."""
        pieces, at, filled = [], 0, 0
        for offset, lost in status.gaps:
            where = self.written + convert.frames(offset + filled)
            self.glitches.append(Glitch(where, convert.frames(lost)))
            pieces += [data[at:offset], np.zeros((lost, self.channels), data.dtype)]
            at, filled = offset, filled + lost
        pieces.append(data[at:])
        return np.concatenate(pieces) if len(pieces) > 1 else data

    def write(self, block: np.ndarray[Any, Any]) -> bool:
        """Write what fits the take; True once it is complete."""
        if self.total is not None:
            block = block[: self.total - self.written]
        try:
            self.out.write(block)
        except _WRITE_ERRORS as exc:
            raise _write_failed(self.out, self.path, self.rate, exc) from exc
        self.written += len(block)
        if self.on_block is not None:
            self.on_block(self.written, block)
        return self.total is not None and self.written >= self.total

    def close(self) -> None:
        """Write the header's final lengths: the file is whole."""
        try:
            self.out.close()
        except _WRITE_ERRORS as exc:
            raise _write_failed(self.out, self.path, self.rate, exc) from exc

    def abandon(self) -> None:
        """Close after a failure, keeping what was written; the error in flight says more."""
        with contextlib.suppress(*_WRITE_ERRORS):
            self.out.close()

    def discard(self) -> None:
        """Close and remove the file: no take was made."""
        self.out.close()
        self.path.unlink(missing_ok=True)


#: What soundfile raises when libsndfile cannot write (its LibsndfileError is a RuntimeError).
_WRITE_ERRORS = (OSError, RuntimeError)


def _write_failed(out: Any, path: Path, rate: int, exc: BaseException) -> Error:
    """The take could not go on: the disk is full (``RESOURCE_EXHAUSTED``) or
    another write failure (``OTHER``). The file is closed, so that what was
    written before is kept and its header says how much."""
    with contextlib.suppress(*_WRITE_ERRORS):
        out.close()
    try:
        with sound_file(path, "r") as kept:
            written = int(kept.frames)
    except Error:
        written = 0
    try:
        usage = shutil.disk_usage(path.parent)
        full = usage.free < 1 << 20
    except OSError:
        full = False
    why = "the disk holding it is full" if full else f"the write failed ({exc})"
    return Error(
        ErrorKind.RESOURCE_EXHAUSTED if full else ErrorKind.OTHER,
        f"cannot go on writing {shown(str(path))}: {why}; the take so far is kept there, "
        f"readable ({written} frames, {written / rate:.1f} s)",
    )


def level_dbfs(block: np.ndarray[Any, Any]) -> float:
    """Peak level of ``block`` in dB full scale (-inf for silence)."""
    peak = float(np.max(np.abs(block))) if block.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf
