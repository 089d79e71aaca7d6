"""What every stream shares, whatever its host.

The state machine (built stopped, start, pause, stop with drain, close), the
Python worker that runs the user's callback on the engine's blocks, the
supervisor thread that delivers errors and watches for a stalled device,
statistics, and the process-wide switch-interval policy. Program streams
(`ProgramStream`: play from and record into arrays inside the engine,
no callback) share all of it except the worker. Hosts provide a
`Backend` (open device, start, stop, close, latency); nothing here
knows which host it is talking to. What a backend must guarantee is written
in `duplexio.contract`. Validation of user input happens
before a stream exists, in `duplexio.host`.
"""

from __future__ import annotations

import atexit
import enum
import logging
import math
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from duplexio._engine import ffi, lib
from duplexio._validate import checked, checked_methods, optional_seconds
from duplexio.blocking import ReadStatus, Rings, WriteStatus
from duplexio.config import StreamKind
from duplexio.contract import Backend, StreamParams, attempt, clib, owned
from duplexio.errors import Error, ErrorKind
from duplexio.formats import silent_frames
from duplexio.stats import StreamStats
from duplexio.timing import (
    CallbackInfo,
    CallbackTimestamp,
    DuplexCallbackInfo,
    StreamLatency,
    ns_to_frames,
)

__all__ = [
    "CallbackAbort",
    "CallbackStop",
    "ErrorCallback",
    "ProgramSpec",
    "ProgramStatus",
    "ProgramStream",
    "Stream",
    "set_switch_interval",
]

logger = logging.getLogger("duplexio")

ErrorCallback = Callable[[Error], None]


@dataclass(frozen=True)
class ProgramSpec:
    """What a callback-free stream plays and records, validated by the host layer.

    Attributes
    ----------
    play
        Shape ``(frames, output_channels)`` in the output format's dtype,
        C-contiguous, owned by the stream (a copy of the user's data); None
        for an input stream.
    record_frames
        Frames of recording the user gets: for a duplex stream, aligned with
        ``play`` (the engine records the round trip more and the stream
        slices it off).
    """

    play: np.ndarray[Any, np.dtype[Any]] | None
    record_frames: int


@dataclass(frozen=True)
class ProgramStatus:
    """Where a program stream is (a snapshot).

    Attributes
    ----------
    frames_done, total_frames
        Frames the device has played and recorded so far, out of the
        program's total (which includes the output latency at the end of a
        play, so that the last frame has left the device).
    finished
        The whole program has run.
    round_trip
        Output minus input device instant of the first block, in frames:
        how far the recording of a duplex stream is shifted before alignment.
        None before the first block and for one-direction streams.
    xruns
        Device glitches after the first block. Non-zero means frames were
        lost and the recording may be shifted from that point on.
    """

    frames_done: int
    total_frames: int
    finished: bool
    round_trip: int | None
    xruns: int


class CallbackStop(Exception):
    """Raise in a callback to stop its stream: the output it wrote plays, then what
    is in flight drains (as ``stop()``), and the stream is stopped.

    No error and no traceback: ``wait()`` returns True, ``stream.error`` stays
    None. The callback is not called again until ``start()``.
    """


class CallbackAbort(Exception):
    """Raise in a callback to halt its stream now (as ``pause()``): this block's
    output is silence and nothing drains; ``start()`` resumes.

    No error and no traceback, like `CallbackStop`.
    """


class _State(enum.Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"  # by an error; cannot be restarted
    CLOSED = "closed"


# -- process-wide switch interval -------------------------------------------
# The worker must get the GIL back within a fraction of a period even when
# another Python thread is busy; CPython hands the GIL over only every
# switch interval (5 ms by default), longer than a 128-frame period. So while
# any stream has been started and not yet closed, the interval is lowered.

_switch_lock = threading.Lock()
_switch_policy: float | None = 1e-4
_switch_saved: float | None = None
_switch_users = 0


@checked
def set_switch_interval(seconds: float | None) -> None:
    """Choose the interpreter switch interval used while streams run.

    Parameters
    ----------
    seconds
        The interval (s) applied by ``sys.setswitchinterval`` when the first
        stream starts and restored when the last started stream closes.
        ``None`` opts out: duplexio never touches the interval. Default
        ``1e-4``: with Python's 5 ms, a worker sharing the GIL with a busy
        thread misses every short period (docs/benchmarks.md has the figures).

    Raises
    ------
    Error
        ``INVALID_INPUT`` for anything but None or a finite number > 0.
    """
    global _switch_policy
    policy = optional_seconds("switch interval", seconds)
    with _switch_lock:
        _switch_policy = policy
        if _switch_users and _switch_policy is not None:
            sys.setswitchinterval(_switch_policy)


def _switch_acquire() -> None:
    global _switch_saved, _switch_users
    with _switch_lock:
        _switch_users += 1
        if _switch_users == 1 and _switch_policy is not None:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(_switch_policy)


def _switch_release() -> None:
    global _switch_saved, _switch_users
    with _switch_lock:
        _switch_users -= 1
        if _switch_users == 0 and _switch_saved is not None:
            sys.setswitchinterval(_switch_saved)
            _switch_saved = None


# -- a real-time worker --------------------------------------------------------
# Under CPU load from other processes, a worker at normal priority misses
# whole periods while it waits for a CPU; SCHED_FIFO (below the device
# thread's priority), with the deadline on the real wake-up, does not
# (docs/benchmarks.md, "deadline").

#: The worker's SCHED_FIFO priority: below every device thread's (JACK's
#: client threads, the engine's own at 60), above every ordinary thread.
WORKER_PRIORITY = 1

_denial_noted = False


def _ask_realtime(engine: Any, device: str) -> None:
    """Make the calling worker thread SCHED_FIFO; refused, say so once per process."""
    global _denial_noted
    result, why = attempt(lib.da_worker_realtime, engine, WORKER_PRIORITY)
    if result == 0 or _denial_noted:
        return
    _denial_noted = True
    denied = Error(
        ErrorKind.REALTIME_DENIED,
        f"stream on '{device}': {why}; the worker "
        "runs at normal priority (late blocks are likelier on a busy machine). Allow it "
        "with RLIMIT_RTPRIO (ulimit -r) or CAP_SYS_NICE, or pass realtime=False",
    )
    logger.warning("%s", denied)


def _wait_seconds(timeout: object) -> float | None:
    """A user's timeout for a wait: None, or seconds >= 0 (NaN and inf refused);
    one too long for the OS to wait counts as no timeout."""
    seconds = optional_seconds("timeout", timeout, zero=True)
    return None if seconds is None or seconds >= threading.TIMEOUT_MAX else seconds


def _text(exc: BaseException | None) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises."""
    try:
        return str(exc)
    except BaseException:
        return f"<{type(exc).__name__} whose str() raised>"


# -- streams ------------------------------------------------------------------

_live: weakref.WeakSet[_Core] = weakref.WeakSet()


#: How long close() waits for a callback that does not return, then leaves
#: its thread behind (with a warning): the device is released either way.
CLOSE_WAIT_SECONDS = 2.0
#: Seconds an error without an error_callback waits to be taken (``wait()``
#: raising it, ``stream.error`` read) before it is logged instead: reported
#: once either way.
REPORT_GRACE_SECONDS = 0.5


@atexit.register
def _close_all() -> None:
    # Device threads are C threads: stop them before the interpreter goes.
    # One deadline for all: N stuck callbacks cost 2 s at exit, not 2N.
    # Every stream is told to end first, so that the others' threads finish
    # while a stuck callback's is waited for.
    deadline = time.monotonic() + CLOSE_WAIT_SECONDS
    released = [core for core in list(_live) if core.release()]
    for core in released:
        core.join(deadline)


_EVENT_MESSAGES = {
    lib.DA_EV_DEVICE_LOST: (
        ErrorKind.DEVICE_NOT_AVAILABLE,
        "device '{device}' is no longer available (disconnected or its server "
        "stopped); the stream stopped",
    ),
    lib.DA_EV_BUFFER_SIZE_CHANGED: (
        ErrorKind.STREAM_INVALIDATED,
        "device '{device}' changed its buffer size from {frames} to {value} frames; "
        "the stream stopped before any block of the new size. Build a new stream",
    ),
    lib.DA_EV_SAMPLE_RATE_CHANGED: (
        ErrorKind.STREAM_INVALIDATED,
        "device '{device}' changed its sample rate from {rate} to {value} Hz; "
        "the stream stopped. Build a new stream",
    ),
    lib.DA_EV_LATENCY_CHANGED: (
        ErrorKind.STREAM_INVALIDATED,
        "device '{device}' changed its latency by {value} frames (e.g. its server's buffer "
        "size changed), so the reported round trip no longer holds; the stream stopped. "
        "Build a new stream",
    ),
    lib.DA_EV_DUPLEX_MOVED: (
        ErrorKind.DEVICE_CHANGED,
        "the default device under the duplex stream on '{device}' changed, and its two "
        "directions cannot move there together on one clock; the stream stopped. Build a "
        "new stream on the new default",
    ),
    lib.DA_EV_BACKEND_ERROR: (
        ErrorKind.BACKEND_ERROR,
        "device '{device}' reported error {value}; the stream stopped",
    ),
}


class _Core:
    """The stream's machinery. Threads reference this, never the Stream, so
    that a Stream nobody holds is collected and closed."""

    def __init__(
        self,
        params: StreamParams,
        callback: Callable[..., None] | None,
        error_callback: ErrorCallback | None,
        open_backend: Callable[[Any, StreamParams], Backend],
        program: ProgramSpec | None = None,
    ) -> None:
        assert callback is None or program is None, "a callback or a program, not both"
        self.params = params
        self.callback = callback
        self.error_callback = error_callback
        self.lock = threading.RLock()
        self.state = _State.STOPPED
        self.error: Error | None = None
        self.stopped = threading.Event()
        self.stopped.set()
        self.drained = threading.Event()
        self.ended = threading.Event()  # set once an error has ended the stream
        self.started_once = False
        p = params
        # A blocking stream's engine passes whole device periods through these.
        rows = p.frames if callback is not None else max(p.frames, p.device_frames)
        self.input = silent_frames(rows, p.input_channels, p.input_format, "the input block")
        self.output = silent_frames(rows, p.output_channels, p.output_format, "the output block")
        in_ptr = ffi.from_buffer(self.input) if p.input_channels else ffi.NULL
        out_ptr = ffi.from_buffer(self.output) if p.output_channels else ffi.NULL
        made = ffi.new("da_engine **")
        clib.da_engine_new(
            made,
            p.input_channels,
            p.input_format.value,
            in_ptr,
            p.output_channels,
            p.output_format.value,
            out_ptr,
            p.frames,
            p.device_frames,
            p.sample_rate,
            int(p.pipelined),
            p.deadline,
            context=f"the engine of the stream on '{p.device}'",
        )
        # The engine points into the arrays: the destructor keeps them alive
        # (program arrays join the list once they exist).
        keep: list[object] = [self.input, self.output, in_ptr, out_ptr]
        self.engine = owned(made[0], lib.da_engine_free, keep)
        # No callback and no program: a blocking stream, the engine's rings
        # made before the device opens (a ring too big for memory costs none).
        self.rings = (
            Rings(p, self.engine, keep, self.final_error, lambda: self.state is _State.CLOSED)
            if callback is None and program is None
            else None
        )
        # What the callback asked for by raising CallbackStop or CallbackAbort.
        self.callback_end: type[BaseException] | None = None
        # Called once each time the stream stops running, however it stopped
        # (the faces of other libraries' APIs hang a finished callback here).
        self.on_inactive: Callable[[], None] | None = None
        self.active = False
        # Errors with no error_callback, not yet taken by the program; each is
        # logged once its grace has passed (or at close) unless taken first.
        self.unreported: list[tuple[Error, float]] = []
        self.backend = open_backend(self.engine, params)
        self.program = program
        self.record: np.ndarray[Any, np.dtype[Any]] | None = None
        if program is not None:
            try:
                self._load_program(program, keep)
            except BaseException:
                self.backend.close()
                raise
        # A program stream runs entirely in the engine: no worker, no Python per block.
        self.worker = (
            threading.Thread(target=self._work, name=f"duplexio-worker {p.device}", daemon=True)
            if callback is not None
            else None
        )
        self.supervisor = threading.Thread(
            target=self._supervise, name=f"duplexio-events {p.device}", daemon=True
        )
        self.callback_exception: BaseException | None = None
        try:
            if self.worker is not None:
                self.worker.start()
            self.supervisor.start()
        except RuntimeError as exc:  # "can't start new thread": out of threads or memory
            lib.da_worker_quit(self.engine)
            self.backend.close()
            raise Error(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"cannot start the threads of the stream on '{p.device}': {exc}",
            ) from exc
        _live.add(self)

    def _load_program(self, program: ProgramSpec, keep: list[object]) -> None:
        """Allocate the recording and hand both arrays to the engine."""
        p = self.params
        latency = self.latency()
        play_frames = program.play.shape[0] if program.play is not None else 0
        record_frames = 0
        if p.input_channels:
            # Duplex: the input of the first block is the round trip older than
            # its output, so that much more is recorded and sliced off later.
            # The round trip the first block's timestamps give may exceed the
            # one reported before the start (a host that rounds down; ALSA's
            # jack PCM settling a JACK cycle or two longer under load): twice
            # it and two periods more cost a few kilobytes and absorb both.
            period = max(p.frames, p.device_frames)
            extra = 2 * (latency.round_trip + period) if p.kind is StreamKind.DUPLEX else 0
            record_frames = program.record_frames + extra
            self.record = silent_frames(
                record_frames, p.input_channels, p.input_format, "the recording"
            )
        # Output: keep running silence until the last frame has left the device.
        tail = latency.output if p.output_channels else 0
        total = max(play_frames + tail, record_frames)
        play_ptr = ffi.from_buffer(program.play) if program.play is not None else ffi.NULL
        rec_ptr = ffi.from_buffer(self.record) if self.record is not None else ffi.NULL
        keep.extend((program.play, self.record, play_ptr, rec_ptr))
        clib.da_engine_program(
            self.engine,
            play_ptr,
            play_frames,
            rec_ptr,
            record_frames,
            total,
            context=f"the stream on '{self.params.device}'",
        )

    def program_status(self) -> ProgramStatus:
        st = ffi.new("da_program_status *")
        lib.da_engine_program_status(self.engine, st)
        round_trip = None
        if st.started and self.params.kind is StreamKind.DUPLEX:
            round_trip = ns_to_frames(
                int(st.output_device_ns - st.input_device_ns), self.params.sample_rate
            )
        return ProgramStatus(
            frames_done=int(st.frames_done),
            total_frames=int(st.total_frames),
            finished=bool(st.finished),
            round_trip=round_trip,
            xruns=int(st.xruns),
        )

    # -- threads -------------------------------------------------------------

    def _dispatch(self) -> Callable[[Any], None]:
        """The call the worker makes per block, shaped once for the stream's kind.

        Takes the engine's ``da_block_info`` and runs the user's callback with
        this stream's arrays and a fresh info object.
        """
        callback, inp, out, frames = self.callback, self.input, self.output, self.params.frames
        assert callback is not None  # only callback streams have a worker
        kind = self.params.kind
        if kind is StreamKind.DUPLEX:

            def duplex(b: Any) -> None:
                xrun, lost = bool(b.xrun), int(b.lost_frames)
                callback(
                    inp,
                    out,
                    DuplexCallbackInfo(
                        CallbackInfo(
                            CallbackTimestamp(b.callback_ns, b.input_device_ns), xrun, frames, lost
                        ),
                        CallbackInfo(
                            CallbackTimestamp(b.callback_ns, b.output_device_ns), xrun, frames, lost
                        ),
                    ),
                )

            return duplex
        if kind is StreamKind.INPUT:

            def record(b: Any) -> None:
                stamp = CallbackTimestamp(b.callback_ns, b.input_device_ns)
                callback(inp, CallbackInfo(stamp, bool(b.xrun), frames, int(b.lost_frames)))

            return record

        def play(b: Any) -> None:
            stamp = CallbackTimestamp(b.callback_ns, b.output_device_ns)
            callback(out, CallbackInfo(stamp, bool(b.xrun), frames, int(b.lost_frames)))

        return play

    def _work(self) -> None:
        """The worker thread: `_work_loop()` under a guard, so that nothing ends it
        without the user hearing."""
        try:
            self._work_loop()
        except BaseException as exc:  # the callback's own failures are caught inside
            self._internal_failure(self.worker, exc)

    def _work_loop(self) -> None:
        """Run the callback on each block. The loop makes one C call per block."""
        if self.params.realtime:
            _ask_realtime(self.engine, self.params.device)
        engine, nxt, run = self.engine, lib.da_worker_next, self._dispatch()
        info_c = ffi.new("da_block_info *")
        status = lib.DA_BLOCK_NONE
        while nxt(engine, status, info_c):
            try:
                run(info_c)
                status = lib.DA_BLOCK_OK
            except CallbackStop:
                status = lib.DA_BLOCK_OK  # this block's output still plays
                self._callback_ends(CallbackStop)
            except CallbackAbort:
                status = lib.DA_BLOCK_FAILED  # silence from this block on
                self._callback_ends(CallbackAbort)
            except BaseException as exc:
                status = lib.DA_BLOCK_FAILED
                if self.callback_exception is None:
                    self.callback_exception = exc
                    lib.da_engine_set_state(engine, lib.DA_STATE_FAILED, 0)
                    lib.da_event_post(engine, lib.DA_EV_CALLBACK_FAILED, 0)

    def _callback_ends(self, how: type[BaseException]) -> None:
        """The worker's half of CallbackStop/CallbackAbort: the engine hands over no
        more blocks from now (draining the output latency for a stop); the
        supervisor then settles the stream's state without the worker waiting."""
        if self.callback_end is not None:
            return
        self.callback_end = how  # before the engine moves: DRAINED may come first
        cycles = self.drain_cycles() if how is CallbackStop else 0
        if cycles:
            lib.da_engine_set_state(self.engine, lib.DA_STATE_DRAINING, cycles)
        else:
            lib.da_engine_set_state(self.engine, lib.DA_STATE_STOPPED, 0)
        lib.da_event_post(self.engine, lib.DA_EV_CALLBACK_STOP, 0)

    def _settle_callback_end(self) -> None:
        """The supervisor's half: once the engine has stopped, the stream is stopped
        (CallbackStop) or paused (CallbackAbort), with no error."""
        how = self.callback_end
        if how is None or lib.da_engine_state(self.engine) != lib.DA_STATE_STOPPED:
            return  # still draining: DRAINED settles it
        self.callback_end = None
        with self.lock:
            self._halt(_State.STOPPED if how is CallbackStop else _State.PAUSED)
        self._went_inactive()

    def _supervise(self) -> None:
        """The event thread: `_supervise_loop()` under a guard. Were it to die
        silently, no later error would reach the user and ``wait()`` could hang."""
        try:
            self._supervise_loop()
        except BaseException as exc:
            self._internal_failure(self.supervisor, exc)

    def _supervise_loop(self) -> None:
        """Deliver events in order, off the audio thread; watch for a stalled device."""
        engine = self.engine
        ev = ffi.new("da_event *")
        stats = ffi.new("da_stats *")
        timeout_ns = self.params.timeout * 1e9  # float: any finite timeout compares
        running_since = 0
        while True:
            got = lib.da_event_wait(engine, 50_000_000, ev)
            if got:
                if ev.code == lib.DA_EV_WAKE:
                    if self.state is _State.CLOSED:
                        break
                    continue
                self._on_event(int(ev.code), int(ev.value))
                continue
            self.log_unreported(time.monotonic())
            if self.state is not _State.RUNNING:
                running_since = 0
                continue
            now = lib.da_now_ns()
            running_since = running_since or now
            lib.da_engine_stats(engine, stats)
            last = max(stats.last_cycle_ns, running_since)
            failed = None
            if now - last > timeout_ns:
                failed = Error(
                    ErrorKind.TIMED_OUT,
                    f"device '{self.params.device}' delivered no block for "
                    f"{(now - last) / 1e9:.2f} s (timeout {self.params.timeout:g} s); "
                    "the stream stopped",
                )
            else:  # what the backend watches beyond the cycles (an aggregate's input side)
                failed = self.backend.fault(now, running_since, timeout_ns)
            if failed is not None:
                lib.da_engine_set_state(engine, lib.DA_STATE_FAILED, 0)
                self._end(failed)
        # Deliver whatever was still queued when the stream closed.
        while lib.da_event_wait(engine, 0, ev):
            if ev.code != lib.DA_EV_WAKE:
                self._on_event(int(ev.code), int(ev.value))
        self.log_unreported(math.inf)

    def log_unreported(self, now: float) -> None:
        """Log the errors nobody took whose grace has passed by ``now``."""
        with self.lock:
            due = [err for err, at in self.unreported if at <= now]
            self.unreported = [(err, at) for err, at in self.unreported if at > now]
        for err in due:
            logger.error("stream on '%s': %s", self.params.device, err, exc_info=err)

    def taken(self) -> Error | None:
        """The stream's error, as the program takes it: no longer to be logged."""
        with self.lock:
            self.unreported = [(e, at) for e, at in self.unreported if e is not self.error]
            return self.error

    def _on_event(self, code: int, value: int) -> None:
        p = self.params
        if code == lib.DA_EV_DRAINED:
            self.drained.set()
            self._settle_callback_end()
            return
        if code == lib.DA_EV_CALLBACK_STOP:
            self._settle_callback_end()
            return
        if code == lib.DA_EV_DEVICE_CHANGED:
            # A notice, never the stream's error: the default moved and the
            # stream followed it; the first block from there is flagged.
            now = self.backend.moved_to()
            there = f"'{now}'" if now else "another device"
            self._deliver(
                Error(
                    ErrorKind.DEVICE_CHANGED,
                    f"the default device changed: the stream on '{p.device}' moved to "
                    f"{there} and goes on there",
                ),
                notice=True,
            )
            return
        if code == lib.DA_EV_FINISHED:
            self._finish()
            return
        if code == lib.DA_EV_CALLBACK_FAILED:
            exc = self.callback_exception
            err = Error(
                ErrorKind.CALLBACK_FAILED,
                f"the callback of the stream on '{p.device}' raised "
                f"{type(exc).__name__}: {_text(exc)}; the stream stopped",
            )
            err.__cause__ = exc
            self._end(err)
            return
        kind, template = _EVENT_MESSAGES.get(
            code, (ErrorKind.OTHER, "device '{device}' reported event {value}")
        )
        message = template.format(device=p.device, frames=p.frames, rate=p.sample_rate, value=value)
        self._end(Error(kind, message))

    def _internal_failure(self, thread: threading.Thread | None, exc: BaseException) -> None:
        """One of our threads failed where nothing should: end the stream with an
        ``OTHER`` error that says so, the exception as its cause."""
        name = thread.name if thread is not None else threading.current_thread().name
        err = Error(
            ErrorKind.OTHER,
            f"stream on '{self.params.device}': {name} failed unexpectedly "
            f"({type(exc).__name__}: {_text(exc)}); the stream stopped. Please report this",
        )
        err.__cause__ = exc
        lib.da_engine_set_state(self.engine, lib.DA_STATE_FAILED, 0)
        try:
            self._end(err)
        except BaseException:
            # Even delivering failed: keep the error and release wait().
            if self.error is None:
                self.error = err
            self.stopped.set()

    def _end(self, err: Error) -> None:
        """The stream ends with an error: stop the device, keep and report the error."""
        with self.lock:
            first = self.error is None
            if first:
                self.error = err
                self.ended.set()
            if self.state in (_State.RUNNING, _State.PAUSED, _State.STOPPED):
                self.state = _State.ENDED
                self.backend.stop()
            self.stopped.set()
        self._went_inactive()
        if first or self.state is not _State.CLOSED:
            self._deliver(err)

    def _finish(self) -> None:
        """A program ran to its end: stop now (its output tail has already played)."""
        with self.lock:
            self._halt(_State.STOPPED)
        self._went_inactive()

    def _went_inactive(self) -> None:
        """Call `on_inactive` once for the run that just ended (not under the lock:
        it is the user's code)."""
        with self.lock:
            if not self.active or self.state is _State.RUNNING:
                return
            self.active = False
            hook = self.on_inactive
        if hook is None:
            return
        try:
            hook()
        except Exception:
            logger.exception(
                "the finished callback of the stream on '%s' raised", self.params.device
            )

    def _halt(self, state: _State) -> None:
        """Stop a running stream without draining; the caller holds the lock."""
        if self.state is not _State.RUNNING:
            return
        lib.da_engine_set_state(self.engine, lib.DA_STATE_STOPPED, 0)
        self.backend.stop()
        self.state = state
        self.stopped.set()

    def _deliver(self, err: Error, *, notice: bool = False) -> None:
        if self.error_callback is None:
            if notice:  # nothing to take: the stream goes on; say so once
                logger.warning("stream on '%s': %s", self.params.device, err)
                return
            with self.lock:
                self.unreported.append((err, time.monotonic() + REPORT_GRACE_SECONDS))
            return
        try:
            self.error_callback(err)
        except Exception:
            logger.exception("the error_callback of the stream on '%s' raised", self.params.device)

    # -- control -------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.state is _State.CLOSED:
            raise Error(
                ErrorKind.STREAM_INVALIDATED, f"the stream on '{self.params.device}' is closed"
            )
        if self.state is _State.ENDED:
            raise Error(
                ErrorKind.STREAM_INVALIDATED,
                f"the stream on '{self.params.device}' ended with {self.error}; build a new one",
            )

    def start(self) -> None:
        with self.lock:
            self._check_usable()
            if self.state is _State.RUNNING:
                return
            if self.program is not None and self.program_status().finished:
                raise Error(
                    ErrorKind.STREAM_INVALIDATED,
                    f"the stream on '{self.params.device}' has finished its program; "
                    "build a new one",
                )
            if not self.started_once:
                self.started_once = True
                _switch_acquire()
            # The device starts first (a JACK client connects its ports once
            # active), so the first callback already sees a ready device.
            self.backend.start()
            self.callback_end = None
            self.active = True
            self.stopped.clear()
            lib.da_engine_set_state(self.engine, lib.DA_STATE_RUNNING, 0)
            self.state = _State.RUNNING
        lib.da_event_post(self.engine, lib.DA_EV_WAKE, 0)

    def pause(self) -> None:
        with self.lock:
            self._check_usable()
            self._halt(_State.PAUSED)
        self._went_inactive()

    def stop(self, timeout: float | None) -> None:
        with self.lock:
            if self.state is not _State.RUNNING:
                if self.state is _State.PAUSED:
                    self.state = _State.STOPPED
                return
            self.callback_end = None  # this stop settles it
            cycles = self.drain_cycles()
            # A blocking stream's output ring plays out first, then the cycles.
            queued = self.rings.queued() if self.rings is not None else 0
            if cycles:
                self.drained.clear()
                lib.da_engine_set_state(self.engine, lib.DA_STATE_DRAINING, cycles)
                frames = cycles * self.params.device_frames + queued
                self.drained.wait(
                    timeout if timeout is not None else frames / self.params.sample_rate + 1.0
                )
            lib.da_engine_set_state(self.engine, lib.DA_STATE_STOPPED, 0)
            self.backend.stop()
            if self.state is _State.RUNNING:
                self.state = _State.STOPPED
            self.stopped.set()
        self._went_inactive()

    def final_error(self) -> Error | None:
        """The error that ended the stream, once the engine has failed: the device
        thread fails first and the supervisor delivers the error a moment later,
        so a reader woken by the failure waits for it (bounded)."""
        if self.error is None and lib.da_engine_state(self.engine) == lib.DA_STATE_FAILED:
            self.ended.wait(CLOSE_WAIT_SECONDS)
        return self.error

    def drain_cycles(self) -> int:
        """Cycles a stop lets run so that the output handed over has played.

        The latency says when a block's first frame plays; one cycle more and
        its last has played too. Stopped a cycle short, the device halts
        inside the last block (ALSA's jack PCM then repeated that block's
        frames until the stream closed)."""
        if not self.params.output_channels:
            return 0
        return -(-self.latency().output // self.params.device_frames) + 1

    def close(self, deadline: float | None = None) -> None:
        """Release everything; wait for our threads until ``deadline`` (monotonic
        seconds; default `CLOSE_WAIT_SECONDS` from now), then leave a stuck
        one behind with a warning."""
        if deadline is None:
            deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        if self.release():
            self.join(deadline)

    def release(self) -> bool:
        """Stop the device, tell our threads to end, free the server connection; do
        not wait. False if the stream was closed already."""
        with self.lock:
            if self.state is _State.CLOSED:
                return False
            self.state = _State.CLOSED
            lib.da_engine_set_state(self.engine, lib.DA_STATE_STOPPED, 0)
            self.backend.close()
            lib.da_worker_quit(self.engine)
            lib.da_event_post(self.engine, lib.DA_EV_WAKE, 0)
            self.stopped.set()
            if self.started_once:
                _switch_release()
        _live.discard(self)
        self._went_inactive()
        return True

    def join(self, deadline: float) -> None:
        """Wait for our threads until ``deadline``; warn about one still running."""
        me = threading.current_thread()
        # Called from the callback or the error_callback, the thread ends by
        # itself when that returns; joining it here would wait for ourselves.
        for thread in (self.worker, self.supervisor):
            if thread is not None and thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning(
                        "stream on '%s': %s did not finish within %.1f s of close() (a "
                        "callback that never returns?); the device is released, the thread "
                        "is left behind",
                        self.params.device,
                        thread.name,
                        CLOSE_WAIT_SECONDS,
                    )

    def latency(self) -> StreamLatency:
        base = self.backend.latency
        if not self.params.output_channels:
            return base
        # Only a callback's blocks are re-blocked: rings and programs take
        # whole device periods.
        extra = int(lib.da_engine_reblock_latency(self.engine)) if self.callback else 0
        if self.params.pipelined:
            extra += self.params.frames
        return StreamLatency(base.input, base.output + extra)

    def stats(self) -> StreamStats:
        s = ffi.new("da_stats *")
        lib.da_engine_stats(self.engine, s)
        period_ns = self.params.frames * 1e9 / self.params.sample_rate
        finished = s.callbacks + s.late_blocks
        cb_mean = s.callback_ns_total / finished if finished else 0.0
        r = self.rings.status() if self.rings is not None else None
        return StreamStats(
            cycles=int(s.cycles),
            callbacks=int(s.callbacks),
            late_blocks=int(s.late_blocks),
            skipped_blocks=int(s.skipped_blocks),
            xruns=int(s.xruns),
            lost_cycles=int(s.lost_cycles),
            callback_mean_ns=cb_mean,
            callback_max_ns=int(s.callback_ns_max),
            handoff_mean_ns=s.handoff_ns_total / s.handoffs if s.handoffs else 0.0,
            handoff_max_ns=int(s.handoff_ns_max),
            load=cb_mean / period_ns,
            max_load=s.callback_ns_max / period_ns,
            realtime=bool(s.realtime),
            worker_realtime=bool(s.worker_realtime),
            events_dropped=int(s.events_dropped),
            overflows=int(r.overflows) if r else 0,
            overflow_frames=int(r.overflow_frames) if r else 0,
            underflows=int(r.underflows) if r else 0,
            underflow_frames=int(r.underflow_frames) if r else 0,
            aggregate=self.backend.aggregate_status(),
        )


@checked_methods
class Stream:
    """A running or stopped audio stream. Built by a device's ``build_*_stream``.

    Streams are built stopped. Use as a context manager to start on enter and
    close on exit. All methods are safe to call from any thread, including
    from the callback and the error callback.
    """

    #: Default fraction of the period the device thread waits for the callback.
    DEFAULT_DEADLINE = 0.8
    #: Default seconds without a device cycle before ``TIMED_OUT``.
    DEFAULT_TIMEOUT = 5.0

    def __init__(
        self,
        params: StreamParams,
        callback: Callable[..., None] | None,
        error_callback: ErrorCallback | None,
        open_backend: Callable[[Any, StreamParams], Backend],
        program: ProgramSpec | None = None,
    ) -> None:
        self._core = _Core(params, callback, error_callback, open_backend, program)

    # -- control -------------------------------------------------------------

    def start(self) -> None:
        """Start (or resume) the callbacks.

        Raises
        ------
        Error
            ``STREAM_INVALIDATED`` when the stream is closed or ended with an
            error; the host's kind when the device cannot start.
        """
        self._core.start()

    def pause(self) -> None:
        """Halt now, without draining; ``start()`` resumes. The device stops too."""
        self._core.pause()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the output already handed to the device has played.

        Parameters
        ----------
        timeout
            Seconds to wait for the drain at most; then the stream halts
            anyway. Default: the output latency plus one second.
        """
        self._core.stop(_wait_seconds(timeout))

    def close(self) -> None:
        """Stop now and release the device, the threads and the engine.

        Idempotent; safe from any thread, after an error and from inside the
        callback (the callback is allowed to return first). Also done when
        the stream is garbage-collected and at interpreter exit. Bounded: a
        callback that does not return within ``CLOSE_WAIT_SECONDS`` (2 s) is
        left behind in its thread, with a warning on the ``duplexio``
        logger; the device and the server connection are released anyway.
        """
        self._core.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream is stopped (by ``stop``, ``pause``, ``close`` or an error).

        Returns
        -------
        bool
            True when stopped, False when ``timeout`` seconds passed first.

        Raises
        ------
        Error
            The error that ended the stream, if any: ``CALLBACK_FAILED``
            (with the callback's exception as ``__cause__``),
            ``DEVICE_NOT_AVAILABLE``, ``STREAM_INVALIDATED``, ``TIMED_OUT``...
            ``UNSUPPORTED_OPERATION`` for a stream never started (it would
            return at once). An error raised here is not logged as well.
        """
        if not self._core.started_once:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"the stream on '{self._core.params.device}' was never started: wait() "
                "would return at once; start() it first",
            )
        done = self._core.stopped.wait(_wait_seconds(timeout))
        error = self._core.taken() if done else None
        if error is not None:
            raise error
        return done

    # -- blocking streams (built without a callback) ------------------------

    def _rings(self, what: str) -> Rings:
        rings = self._core.rings
        if rings is None:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"{what}: the stream on '{self.device}' has a callback (or a program); "
                "build it without one to read and write",
            )
        return rings

    def read(
        self, frames: int, timeout: float | None = None
    ) -> tuple[np.ndarray[Any, np.dtype[Any]], ReadStatus]:
        """Take ``frames`` frames of input, waiting until they have been captured.

        The device thread fills the stream's ring each cycle by itself, so
        reading late loses nothing while the ring holds (``ring_seconds``).

        Parameters
        ----------
        frames
            How many (0 up to the ring's size).
        timeout
            Seconds to wait at most; None waits as long as the stream runs.

        Returns
        -------
        (numpy.ndarray, ReadStatus)
            A new array of shape ``(frames, input_channels)`` in the stream's
            dtype, and where it sits: ``status.position`` is the input frame
            ``data[0]`` is (counted from the first cycle, lost frames
            included), ``status.gaps`` where frames were lost (the ring was
            full, or the device glitched; a glitch that lost no whole cycle
            is a gap of 0 frames). ``bool(status)``: the data is not
            continuous with the previous read. Lost frames never raise.

        Raises
        ------
        Error
            ``TIMED_OUT``; the stream's own error once it ended with one;
            ``UNSUPPORTED_OPERATION`` on a stream that is not running with
            fewer frames left, or that has a callback or no input;
            ``STREAM_INVALIDATED`` once closed.
        """
        got = self._rings("read").read(frames, timeout)
        assert got is not None
        return got

    def write(self, data: Any, timeout: float | None = None) -> WriteStatus:
        """Queue ``data`` for output, waiting for room in the ring as it plays.

        Written before ``start()`` (up to the ring's size), it plays from the
        first cycle: a duplex stream then captures frame ``k`` of what was
        written as input frame ``k + stream.latency.round_trip``.

        Parameters
        ----------
        data
            Shape ``(frames,)`` (one channel) or ``(frames, output_channels)``,
            any `SampleFormat` dtype (converted to
            the stream's by the engine's rules).
        timeout
            Seconds to wait for room at most; None waits as long as the stream runs.

        Returns
        -------
        WriteStatus
            ``position``: the output frame ``data[0]`` will be;
            ``underflowed``: frames of silence played since the previous
            write because the ring ran dry; ``xruns``: device glitches since
            then (``bool(status)``: either).

        Raises
        ------
        Error
            ``INVALID_INPUT`` for data of the wrong shape or dtype;
            ``TIMED_OUT`` (the message says how much was queued); the
            stream's own error; ``UNSUPPORTED_OPERATION`` when it is not
            running and the ring is full; ``STREAM_INVALIDATED`` once closed.
        """
        return self._rings("write").write(data, timeout)

    @property
    def read_available(self) -> int:
        """Input frames in the ring: a ``read()`` of this many returns at once."""
        return self._rings("read_available").read_available()

    @property
    def write_available(self) -> int:
        """Room in the output ring (frames): a ``write()`` of this many returns at once."""
        return self._rings("write_available").write_available()

    def blocks(
        self, frames: int | None = None, timeout: float | None = None
    ) -> Iterator[tuple[np.ndarray[Any, np.dtype[Any]], ReadStatus]]:
        """Input as it comes: ``(data, status)`` as `read()` returns them.

        Ends when the stream stops or pauses (after what was captured before
        is read) or closes (at once); raises the stream's error if it ends
        with one.

        Parameters
        ----------
        frames
            Frames per item (default: the buffer size).
        timeout
            As for `read()`, per item.
        """
        return self._rings("blocks").blocks(frames, timeout)

    def __aiter__(self) -> AsyncIterator[tuple[np.ndarray[Any, np.dtype[Any]], ReadStatus]]:
        """``async for data, status in stream``: `blocks()` for asyncio.

        While too few frames are there, a thread of the event loop's executor
        waits for them in the engine (no polling) and the loop awaits it, so
        any event loop runs it, Windows' proactor included. Ends and raises
        like `blocks()`.
        """
        return self._rings("async for").aiter()

    def __enter__(self) -> Stream:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None:
            core.close()

    # -- facts ---------------------------------------------------------------

    @property
    def device(self) -> str:
        """The device id the stream runs on now: the one it was built on, or, for a
        stream on a host's default that followed the default elsewhere
        (``DEVICE_CHANGED``), the device it moved to."""
        return self._core.backend.moved_to() or self._core.params.device

    @property
    def backend(self) -> Backend:
        """The host's object behind this stream, for host-specific extras.

        For JACK: ``client_name``, ``input_ports``, ``output_ports``.
        """
        return self._core.backend

    @property
    def kind(self) -> StreamKind:
        """Input, output or duplex."""
        return self._core.params.kind

    @property
    def buffer_size(self) -> int:
        """Frames per block, fixed for the stream's life: what the callback gets."""
        return self._core.params.frames

    @property
    def dtype(self) -> np.dtype[Any] | tuple[np.dtype[Any], np.dtype[Any]]:
        """The numpy dtype of the callback's arrays (and of ``read()``'s, what
        ``write()`` takes); a duplex stream's is an (input, output) pair."""
        p = self._core.params
        if p.kind is StreamKind.DUPLEX:
            return (p.input_format.dtype, p.output_format.dtype)
        return (p.input_format if p.input_channels else p.output_format).dtype

    @property
    def device_buffer_size(self) -> int:
        """Frames per device period: what the device runs.

        Differs from `buffer_size` when the engine re-blocks (a
        `BufferSize.fixed()` size the device cannot run); the delay that adds
        is in `latency`.
        """
        return self._core.params.device_frames

    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz."""
        return self._core.params.sample_rate

    @property
    def input_channels(self) -> int:
        """Input channels (0 for an output stream)."""
        return self._core.params.input_channels

    @property
    def output_channels(self) -> int:
        """Output channels (0 for an input stream)."""
        return self._core.params.output_channels

    @property
    def pipelined(self) -> bool:
        """True when the callback's output plays one period later than same-cycle."""
        return self._core.params.pipelined

    @property
    def latency(self) -> StreamLatency:
        """(input, output) latency in frames: capture to callback, callback to playback.

        Includes the extra period of pipelined mode, so ``latency.round_trip``
        is what a loop from output to input measures.
        """
        return self._core.latency()

    @property
    def stats(self) -> StreamStats:
        """Counters since the stream was built (a snapshot)."""
        return self._core.stats()

    @property
    def error(self) -> Error | None:
        """The error that ended the stream, or None."""
        return self._core.taken()

    @property
    def running(self) -> bool:
        """True between ``start()`` and a stop, pause, close or error."""
        return self._core.state is _State.RUNNING

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
        return self._core.state is _State.CLOSED

    def now(self) -> int:
        """The current time (ns) on the clock of the callback timestamps (CLOCK_MONOTONIC)."""
        return int(lib.da_now_ns())

    def __repr__(self) -> str:
        p = self._core.params
        return (
            f"<Stream {p.kind.value} on {p.device}: {p.input_channels} in, "
            f"{p.output_channels} out, {p.sample_rate} Hz, {p.frames} frames, "
            f"{self._core.state.value}>"
        )


@checked_methods
class ProgramStream(Stream):
    """A callback-free stream: the engine plays from and records into arrays.

    Built by `build_play_stream()`,
    `build_rec_stream()` and
    `build_playrec_stream()`. The device thread
    copies every block itself, so no Python runs per block and the stream
    survives any GIL stall. It stops by itself when the program has run
    (`wait()` returns then); ``stop()`` ends it early, with what was
    recorded so far kept. A finished program cannot be restarted. ``pause()``
    and ``start()`` resume where it was, but the duplex alignment (from the
    first block's timestamps) holds only for an uninterrupted run, like it
    does only without device glitches (``status.xruns``).
    """

    @property
    def status(self) -> ProgramStatus:
        """Frames done, total, round trip and glitches of the program (a snapshot)."""
        return self._core.program_status()

    @property
    def progress(self) -> float:
        """Fraction of the program done, 0.0 to 1.0."""
        st = self._core.program_status()
        return st.frames_done / st.total_frames if st.total_frames else 1.0

    @property
    def finished(self) -> bool:
        """True once the whole program has run."""
        return self._core.program_status().finished

    @property
    def recording(self) -> np.ndarray[Any, np.dtype[Any]]:
        """What the input captured, shape ``(frames, input_channels)``, the stream's dtype.

        For an input stream, frame 0 is the first frame captured. For a
        duplex stream it is aligned with the played data: ``recording[n]`` is
        what the input captured when ``data[n]`` left the output, using the
        round trip of the stream's timestamps. Frames not yet recorded are
        zero (the equilibrium for unsigned formats is not applied). A view of
        the stream's buffer: copy it to keep it past another run.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` for an output stream;
            ``BACKEND_ERROR`` when the host's timestamps report a round trip
            longer than the latency it reported when the stream was built
            (the recording could not hold it).
        """
        core = self._core
        if core.record is None or core.program is None:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"the stream on '{core.params.device}' plays only; it records nothing",
            )
        want = core.program.record_frames
        if core.params.kind is not StreamKind.DUPLEX:
            return core.record[:want]
        round_trip = core.program_status().round_trip
        if round_trip is None:  # nothing ran yet: nothing aligned to give
            return core.record[:want]
        if round_trip < 0 or round_trip + want > core.record.shape[0]:
            raise Error(
                ErrorKind.BACKEND_ERROR,
                f"device '{core.params.device}' timestamps give a round trip of "
                f"{round_trip} frames, outside the {core.record.shape[0] - want} frames "
                "recorded for alignment",
            )
        return core.record[round_trip : round_trip + want]

    @property
    def captured(self) -> np.ndarray[Any, np.dtype[Any]]:
        """The input as captured, not aligned: frame n came in the device cycle
        that handed ``data[n]`` to the output, so a loop shows its round trip
        as a delay (what sounddevice's ``playrec`` returns). Shape and dtype
        as `recording`; for an input stream it is `recording`.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` for an output stream.
        """
        core = self._core
        if core.record is None or core.program is None:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"the stream on '{core.params.device}' plays only; it records nothing",
            )
        return core.record[: core.program.record_frames]
