"""Blocking streams: read() and write() on the engine's rings, iteration, asyncio.

A stream built without a callback gets a ring per direction in the engine
(``_engine/ring.c``). The device thread itself moves each cycle's input into
the input ring and takes each cycle's output from the output ring, so no
Python runs per block: a caller that is late by a second (a GIL stall, a slow
model) loses nothing while the ring holds out (2 s by default).

Positions: input frames are counted from the stream's first cycle, output
frames from the first frame it played. What the ring could not carry is
never silent. A full input ring drops whole blocks and a device glitch loses
cycles: the read that meets the gap gets ``ReadStatus.gaps`` (where in its
data, how many frames are missing there) and its ``position`` stays the true
one. An output ring that runs dry plays silence: the next write's
``WriteStatus.underflowed`` says how many frames of it, and its ``position``
is where its data will play. Read and write never raise for these.

This module holds the rings' Python side; `duplexio.stream` owns one
per blocking stream and gives `Stream` its
methods.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from duplexio._engine import ffi, lib
from duplexio._validate import optional_seconds, whole
from duplexio.contract import StreamParams, clib, owned
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat, as_frames

__all__ = ["DEFAULT_RING_SECONDS", "ReadStatus", "Rings", "WriteStatus"]

#: Seconds of audio each ring of a blocking stream holds unless told otherwise.
DEFAULT_RING_SECONDS = 2.0
#: Longest single wait in C: a blocked read() or write() comes back to Python
#: this often, so Ctrl-C and a closed stream are noticed.
_WAIT_SLICE_NS = 100_000_000
#: Gaps fetched from the engine per C call.
_GAP_BATCH = 64


@dataclass(frozen=True)
class ReadStatus:
    """What a `read()` met, beside its data.

    True when frames were lost (``if status: ...`` reads like sounddevice's
    ``overflowed``).

    Attributes
    ----------
    position
        The input frame ``data[0]`` is, counted from the stream's first cycle
        (frame 0), lost frames included: the capture timeline, not a count of
        frames read.
    gaps
        ``(offset, lost)`` pairs, in order: ``lost`` frames are missing
        just before ``data[offset]`` (the ring was full, or the device lost
        cycles). ``lost`` is 0 where the device reported a glitch that cost
        no whole cycle (a restart or re-alignment of its directions): the
        data is not continuous there, and in a duplex stream
        ``stream.latency`` may have changed from that frame on. Empty when
        the data is continuous with the previous read.
    """

    position: int
    gaps: tuple[tuple[int, int], ...] = ()

    @property
    def lost(self) -> int:
        """Frames missing in and before this read's data, since the previous read."""
        return sum(n for _, n in self.gaps)

    def __bool__(self) -> bool:
        return bool(self.gaps)


@dataclass(frozen=True)
class WriteStatus:
    """What a `write()` met.

    True when the output ran dry since the previous write (``if status:``
    reads like sounddevice's ``underflowed``).

    Attributes
    ----------
    position
        The output frame ``data[0]`` will be played as, counted from the
        stream's first frame: frames written before it plus the silence and
        lost cycles played so far. Another underflow before it plays moves it
        later by that much (the next write says so).
    underflowed
        Frames of silence played since the previous write because nothing
        was written (plus frames the device lost): the output timeline moved
        on without data.
    xruns
        Glitches the device reported since the previous write, whether or
        not they cost whole cycles (``stream.stats.xruns`` counts them all):
        what was played around them may have been disturbed.
    """

    position: int
    underflowed: int = 0
    xruns: int = 0

    def __bool__(self) -> bool:
        return self.underflowed > 0 or self.xruns > 0


def ring_frames(seconds: object, sample_rate: int, frames: int) -> int:
    """Frames a ring of ``seconds`` holds: at least two blocks."""
    s = optional_seconds("ring_seconds", seconds)
    wanted = math.ceil((DEFAULT_RING_SECONDS if s is None else s) * sample_rate)
    return max(wanted, 2 * frames)


class Rings:
    """A blocking stream's rings, their positions and its waits.

    ``failure`` and ``closed`` are the stream's, asked when no more cycles
    will come: the error it ended with (raised to the reader or writer), and
    whether it was closed (an error for read and write, the end for
    iteration).
    """

    def __init__(
        self,
        params: StreamParams,
        engine: Any,
        keep: list[object],
        failure: Callable[[], Error | None],
        closed: Callable[[], bool],
    ) -> None:
        p = params
        self.params, self.engine, self.failure, self.closed = p, engine, failure, closed
        self.capacity = p.ring_frames

        def make(channels: int, fmt: SampleFormat) -> Any:
            if not channels:
                return ffi.NULL
            made = ffi.new("da_ring **")
            clib.da_ring_new(
                made,
                self.capacity,
                channels * fmt.sample_size,
                context=f"the stream on '{p.device}' (a shorter ring_seconds needs less)",
            )
            return owned(made[0], lib.da_ring_free)

        self.input = make(p.input_channels, p.input_format)
        self.output = make(p.output_channels, p.output_format)
        keep.extend([self.input, self.output])  # freed after the engine
        clib.da_engine_rings(
            engine,
            self.input,
            self.output,
            context=f"the stream on '{p.device}'",
        )
        # One reader and one writer at a time: the rings are single-consumer,
        # single-producer on the Python side.
        self.read_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.gap_next = 0  # the next gap number to fetch
        self.lost_total = 0  # input frames lost before the last read's data ended
        self.written = 0  # frames the user wrote
        self.shift_seen = 0  # output_shift_frames at the last write
        self.xruns_seen = 0  # device glitches at the last write

    # -- status ----------------------------------------------------------

    def status(self) -> Any:
        st = ffi.new("da_ring_status *")
        lib.da_engine_ring_status(self.engine, st)
        return st

    def read_available(self) -> int:
        return int(lib.da_ring_readable(self._ring(self.input, "read_available")))

    def write_available(self) -> int:
        return int(lib.da_ring_writable(self._ring(self.output, "write_available")))

    def queued(self) -> int:
        """Frames written and not yet taken by the device (0 for an input stream)."""
        return int(lib.da_ring_readable(self.output)) if self.output != ffi.NULL else 0

    def _ring(self, ring: Any, what: str) -> Any:
        if ring == ffi.NULL:
            direction = "input" if ring is self.input else "output"
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"{what}: the stream on '{self.params.device}' has no {direction}",
            )
        return ring

    # -- waiting ---------------------------------------------------------

    def _wait(self, output: bool, frames: int, timeout: float | None, what: str) -> bool:
        """Until the ring has ``frames`` to read (or room for them). False when the
        stream stopped cleanly first; raises the stream's error, or TIMED_OUT."""
        deadline = None if timeout is None else lib.da_now_ns() + timeout * 1e9
        while True:
            left = _WAIT_SLICE_NS if deadline is None else deadline - lib.da_now_ns()
            got = lib.da_engine_ring_wait(
                self.engine, int(output), frames, int(max(0, min(left, _WAIT_SLICE_NS)))
            )
            if got == 1:
                return True
            if got < 0:  # -EPIPE: no cycles will come
                err = self.failure()
                if err is not None:
                    raise err
                return False
            if deadline is not None and lib.da_now_ns() >= deadline:
                raise Error(
                    ErrorKind.TIMED_OUT,
                    f"{what} of {frames} frames on '{self.params.device}' did not complete "
                    f"within {timeout:g} s",
                )

    # -- reading ---------------------------------------------------------

    def read(
        self, frames: object, timeout: object, *, ended_ok: bool = False
    ) -> tuple[np.ndarray[Any, Any], ReadStatus] | None:
        """``frames`` frames from the input ring and where they sit; None when the
        stream has stopped and ``ended_ok`` (iteration ends there)."""
        ring = self._ring(self.input, "read")
        n = whole("frames", frames, minimum=0, maximum=self.capacity, unit="frames")
        wait = optional_seconds("timeout", timeout, zero=True)
        p = self.params
        with self.read_lock:
            # Closed is closed: what the ring still holds is gone with it.
            if self.closed() and ended_ok:
                return None
            if self.closed() or not self._wait(False, n, wait, "read"):
                if ended_ok:
                    return None
                left = int(lib.da_ring_readable(ring))
                raise self._not_running(f"read of {n} frames", f"{left} frames are left")
            data = np.empty((n, p.input_channels), p.input_format.dtype)
            first = int(lib.da_ring_read_total(ring))
            lib.da_ring_read(ring, ffi.from_buffer(data), n)
            return data, self._read_status(first, n)

    def _read_status(self, first: int, n: int) -> ReadStatus:
        """The gaps in ring frames [first, first + n) and data[0]'s position."""
        gaps: list[tuple[int, int]] = []
        logged = int(self.status().gaps)
        # The engine keeps the last GAP_LOG gaps; older unread ones are gone.
        self.gap_next = max(self.gap_next, logged - lib.DA_GAP_LOG)
        buf = ffi.new("da_gap[]", _GAP_BATCH)
        while n:
            got = lib.da_engine_gaps(self.engine, self.gap_next, buf, _GAP_BATCH)
            # In order: the first gap past this read's data belongs to a later read.
            mine = [(int(g.at) - first, int(g.lost)) for g in buf[0:got] if g.at < first + n]
            gaps.extend(mine)
            self.gap_next += len(mine)
            if len(mine) < _GAP_BATCH:
                break
        at_start = sum(lost for offset, lost in gaps if offset == 0)
        status = ReadStatus(first + self.lost_total + at_start, tuple(gaps))
        self.lost_total += status.lost
        return status

    # -- writing ---------------------------------------------------------

    def write(self, data: object, timeout: object) -> WriteStatus:
        """Queue ``data`` on the output ring, waiting for room as it plays."""
        ring = self._ring(self.output, "write")
        p = self.params
        arr, fmt = as_frames(data)
        if arr.shape[1] != p.output_channels:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"data has {arr.shape[1]} channels; the stream on '{p.device}' plays "
                f"{p.output_channels}",
            )
        wait = optional_seconds("timeout", timeout, zero=True)
        if fmt is not p.output_format:
            converted = np.empty(arr.shape, p.output_format.dtype)
            clib.da_convert(
                ffi.from_buffer(arr),
                fmt.value,
                ffi.from_buffer(converted),
                p.output_format.value,
                arr.size,
                context=f"data for the stream on '{p.device}'",
            )
            arr = converted
        n = arr.shape[0]
        with self.write_lock:
            before = self.written
            st = self.status()
            shift, xruns = int(st.output_shift_frames), int(st.xruns)
            status = WriteStatus(before + shift, shift - self.shift_seen, xruns - self.xruns_seen)
            self.shift_seen, self.xruns_seen = shift, xruns
            flat = ffi.from_buffer(arr)
            frame_bytes = p.output_channels * p.output_format.sample_size
            done = 0
            deadline = None if wait is None else lib.da_now_ns() + wait * 1e9
            while done < n:
                done += int(lib.da_ring_write(ring, flat + done * frame_bytes, n - done))
                self.written = before + done
                if done == n:
                    break
                left = None if deadline is None else max(0.0, (deadline - lib.da_now_ns()) / 1e9)
                # Room for the rest, or for a whole ring when the rest is longer.
                need = min(n - done, self.capacity)
                try:
                    running = self._wait(True, need, left, "write")
                except Error as err:
                    if err.kind is ErrorKind.TIMED_OUT:
                        err.message = f"{err.message}; {done} of {n} frames were queued"
                        err.args = (err.message,)
                    raise
                if not running:
                    raise self._not_running(
                        f"write of {n} frames",
                        f"its ring took {done} (it holds {self.capacity} before a start)",
                    )
            return status

    def _not_running(self, what: str, detail: str) -> Error:
        device = self.params.device
        if self.closed():
            return Error(
                ErrorKind.STREAM_INVALIDATED, f"{what}: the stream on '{device}' is closed"
            )
        return Error(
            ErrorKind.UNSUPPORTED_OPERATION,
            f"{what}: the stream on '{device}' is not running and {detail}; start() it",
        )

    # -- iteration -------------------------------------------------------

    def blocks(
        self, frames: object, timeout: object
    ) -> Iterator[tuple[np.ndarray[Any, Any], ReadStatus]]:
        n = self.params.frames if frames is None else frames
        whole("frames", n, maximum=self.capacity, unit="frames")  # checked before the first
        while (got := self.read(n, timeout, ended_ok=True)) is not None:
            yield got

    async def aiter(
        self, frames: object = None
    ) -> AsyncIterator[tuple[np.ndarray[Any, Any], ReadStatus]]:
        """Blocks as they come. The device thread cannot call into Python, so while the
        ring is short a thread of the loop's executor waits in C and the loop awaits it:
        this works on every platform's default event loop (Windows' has no add_reader)."""
        self._ring(self.input, "async for")
        n = whole("frames", self.params.frames if frames is None else frames,
                  maximum=self.capacity, unit="frames")  # fmt: skip
        loop = asyncio.get_running_loop()
        while not self.closed():
            if lib.da_ring_readable(self.input) < n and not await loop.run_in_executor(
                None, self._until_readable, n
            ):
                err = self.failure()
                if err is not None:
                    raise err
                return
            got = self.read(n, 0, ended_ok=True)
            if got is None:  # closed meanwhile
                return
            yield got

    def _until_readable(self, frames: int) -> bool:
        """In an executor's thread: until the input ring holds ``frames`` (True) or no
        cycles will come (False: stopped, paused, failed or closed, from any thread;
        each wakes the wait at once). Never longer than the stream runs, so an
        abandoned wait (a cancelled ``async for``) ends with the next block."""
        while True:
            got = lib.da_engine_ring_wait(self.engine, 0, frames, _WAIT_SLICE_NS)
            if got != 0:  # 1: there; -EPIPE: no cycles will come
                return bool(got == 1)
