"""The contract between duplexio and its hosts: read this first to write one.

A host is one folder, ``duplexio/hosts/<name>/``:

- ``__init__.py`` has the module functions of `duplexio.host.HostModule`
  (``is_available``, ``open_host``), a subclass of
  `duplexio.host.Host` (whose hooks are `duplexio.host.HostHooks`), a
  subclass of `duplexio.host.Device` (hooks: `duplexio.host.DeviceHooks`)
  and, per stream, a `Backend` (usually a `HandleBackend`), declared here.
- Where it has C: ``<name>.c`` holds the device thread, which includes the
  engine's ``engine.h`` and calls ``da_engine_process`` once per cycle, and
  ``<name>_api.h`` declares what Python may call, in the C subset cffi's
  cdef parses. The build gathers every host's folder; nothing else changes.
- ``host.json`` declares where it runs, the headers its C compiles
  against and its preference for `duplexio.host.default_host`
  (`duplexio.declarations`); the build, the registry, ``scripts/cross-check``
  and the tests read it.
- One line in `duplexio.host.HostId` names it.

What a host may use: this module; `duplexio.host` (``Device``,
``Host``, ``DeviceId``, ``DeviceDescription``, ``HostId``, ``host_from_id``
to ask another host a declared question); the value types of
`duplexio.config`, `duplexio.formats`,
`duplexio.errors`, `duplexio.timing` and `duplexio.stats`; and
`duplexio._engine` for its own C. Hosts never import each other
(a test pins it), and override nothing of ``Device`` or ``Host`` that
starts with an underscore unless it is declared a hook.

The C boundary, one convention for the engine and every host (``engine.h``
says it in C): a function that can fail returns 0 (or a count) or a
negative errno code and writes why into a message buffer its caller passes
last (``char *msg, size_t len``); a constructor returns its object through
its first parameter; a text result goes into a caller's buffer and
``-ENOSPC`` asks for a larger one. `call()` and `read_text()` make such
calls, and `check()` turns the result into `Error` with the kind the code
means (`ERRNO_KINDS`, the one mapping) and the C side's own message;
`attempt()` makes one whose failure is only noted.

It sits below `duplexio.blocking`, `duplexio.stream` and `duplexio.host`,
which build on it, and imports only the value types and the engine.
"""

from __future__ import annotations

import errno
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, cast

from duplexio._engine import ffi, lib
from duplexio.config import StreamKind
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat
from duplexio.stats import AggregateStatus
from duplexio.timing import StreamLatency
from duplexio.watch import ChangeSource

if TYPE_CHECKING:
    from duplexio._engine._native import _Checked

P = ParamSpec("P")

#: A cffi pointer or struct of the engine or a host (its fields are the C
#: headers'; the calls that take and return them are typed by _native.pyi).
CData = Any

__all__ = [
    "ERRNO_KINDS",
    "MESSAGE_BYTES",
    "Backend",
    "CData",
    "HandleBackend",
    "StreamParams",
    "attempt",
    "c_text",
    "call",
    "check",
    "clib",
    "owned",
    "read_text",
]


@dataclass(frozen=True)
class StreamParams:
    """A validated request for a stream, as a host's backend receives it.

    Every value has been checked against the device's ranges before the
    backend sees it (`duplexio.host`); a backend refuses only what
    the device itself turns down when it is opened.

    Attributes
    ----------
    kind
        Input, output or duplex.
    device
        The device id, for messages.
    input_channels, output_channels
        Channel counts (0 for an absent direction).
    input_format, output_format
        The callback's sample formats (the engine converts; devices work in float32).
    frames
        Frames per callback block, agreed for the stream's life.
    device_frames
        Frames per device period, the size the backend opens the device
        with; the engine re-blocks when it differs from ``frames``.
    sample_rate
        Hz.
    pipelined
        The callback's output plays one period later.
    deadline
        Fraction of the period the device thread waits for the callback.
    timeout
        Seconds without a device cycle before the stream reports ``TIMED_OUT``.
    realtime
        The Python worker asks for real-time scheduling.
    ring_frames
        A blocking stream's ring size per direction (frames); 0 for a
        stream with a callback or a program.
    """

    kind: StreamKind
    device: str
    input_channels: int
    output_channels: int
    input_format: SampleFormat
    output_format: SampleFormat
    frames: int
    device_frames: int
    sample_rate: int
    pipelined: bool
    deadline: float
    timeout: float
    realtime: bool = True
    ring_frames: int = 0


class Backend(Protocol):
    """A host's side of one stream: the open device and its device thread.

    What the device thread must guarantee, on every host:

    - It calls ``da_engine_process`` once per device cycle, with timestamps
      that advance by exactly ``frames * (1 + cycles lost)``: never 0, never
      backwards, on ``CLOCK_MONOTONIC``.
    - It reports lost, repeated or late frames on the block that follows
      them (``device_xrun``, and ``lost_cycles`` in the cycle time), found
      synchronously on the device thread (frame counters, ring positions),
      not only from an asynchronous notification.
    - It anchors the worker's deadline on its own wake-up for the cycle
      (``deadline_anchor_ns``, recorded beside ``wakeup_ns``), never on an
      estimate that can lie before it, and bounds it by what the device
      allows (``deadline_limit_ns``).
    - It never hands over a block of a size the stream did not agree to: a
      buffer-size or rate change fails the engine first
      (``DA_EV_BUFFER_SIZE_CHANGED``, ``DA_EV_SAMPLE_RATE_CHANGED``), a
      device that is gone fails it with ``DA_EV_DEVICE_LOST``.
    - It never allocates, takes a lock Python can hold, or calls into
      Python; its C says so in one comment where it runs.

    ``start`` and ``stop`` may be called repeatedly; the stream puts the
    engine in its stopped state before ``stop``, so a device that keeps
    cycling after ``stop`` (a JACK client stays active) only plays silence.
    ``close`` releases everything, waits for the device thread, and is
    called once; nothing the backend opened (thread, descriptor, server
    connection) outlives it.

    `HandleBackend` gives the two questions only an aggregate answers
    (`fault`, `aggregate_status`) their answer for every other backend.
    """

    @property
    def latency(self) -> StreamLatency:
        """Device latency in frames, (capture to callback, callback to playback).

        Their sum is the round trip a loop from output to input measures;
        it must equal what the timestamps handed to the engine say. Readable
        after ``close`` (the last figure).
        """
        ...

    def start(self) -> None:
        """Start the device thread (raise `Error` on failure)."""
        ...

    def stop(self) -> None:
        """Halt the device, or leave it cycling into the stopped engine."""
        ...

    def close(self) -> None:
        """Release the device; the backend is not used again."""
        ...

    def fault(self, now_ns: int, running_since_ns: int, timeout_ns: float) -> Error | None:
        """A failure the engine's cycles cannot show, or None.

        For a backend with a thread of its own (an aggregate's input device):
        the stream's supervisor asks every 50 ms while the stream runs, and
        ends the stream with the `Error` returned.
        """
        ...

    def aggregate_status(self) -> AggregateStatus | None:
        """The clock loop's state for a stream on an aggregate device; None elsewhere."""
        ...

    def moved_to(self) -> str | None:
        """For a stream that follows its host's default: the id of the device it
        moved to when the default last moved; None until then, and elsewhere."""
        ...


class HandleBackend:
    """What backends that own one C stream object share.

    Calls on the handle are serialised and become no-ops once it is closed;
    ``close`` releases it exactly once (its cffi destructor frees the C side
    and joins its thread). Subclasses pass the C function that halts the
    device, or None when the device keeps cycling into the stopped engine.
    """

    #: What `_with_handle()` returns once the handle is closed (C calls
    #: may themselves return None).
    CLOSED: Any = object()

    def __init__(self, handle: CData, stop: Callable[[CData], object] | None) -> None:
        self._lock = threading.Lock()
        self._handle: CData | None = handle
        self._stop_c = stop

    def _with_handle(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(handle, *args)`` under the lock; `CLOSED` once it is closed."""
        with self._lock:
            return self.CLOSED if self._handle is None else fn(self._handle, *args)

    def _call(
        self, fn: Callable[Concatenate[CData, P], int], *args: P.args, **kwargs: P.kwargs
    ) -> int | None:
        """``fn(handle, *args, **kwargs)`` (a `clib` function) under the lock; None once
        the handle is closed."""
        with self._lock:
            if self._handle is None:
                return None
            return fn(self._handle, *args, **kwargs)

    def stop(self) -> None:
        """Halt the device, or leave it cycling into the stopped engine."""
        if self._stop_c is not None:
            self._with_handle(self._stop_c)

    def fault(self, now_ns: int, running_since_ns: int, timeout_ns: float) -> Error | None:
        """None: the engine's cycles show everything of one device."""
        return None

    def aggregate_status(self) -> AggregateStatus | None:
        """None: not an aggregate."""
        return None

    def moved_to(self) -> str | None:
        """None: a stream that never follows a default (hosts that move one say where)."""
        return None

    def _before_release(self) -> None:
        """Read what must outlive the handle (a last latency figure); no-op here."""

    def close(self) -> None:
        """Release the handle; the backend is not used again."""
        self._before_release()
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            ffi.release(handle)


# -- the C boundary -------------------------------------------------------------


def owned(handle: CData, free: Callable[[CData], object], keep: object = None) -> CData:
    """``handle``, freed by ``free`` when it is released or collected.

    ``keep`` (the engine a device thread points into) stays alive until then.
    """

    def release(h: CData, _keep: object = keep) -> None:
        free(h)

    return ffi.gc(handle, release)


class NativeNotices(ChangeSource):
    """A host's change source in C: `handle` (released, through `owned`, on
    close) waited on by ``wait(handle, timeout_ms, msg, len)``, which returns
    1 for a notice, 0 for none, or a negative errno (the server went away)."""

    def __init__(self, handle: CData, wait: Callable[..., int], what: str) -> None:
        self._handle = handle
        self._wait = wait
        self._what = what

    def wait(self, timeout: float) -> bool:
        """True when the server told of a change within `timeout` s."""
        changed = call(
            self._wait,
            self._handle,
            max(1, int(timeout * 1000)),
            context=f"watching {self._what}",
            default=ErrorKind.DEVICE_NOT_AVAILABLE,
        )
        return changed > 0

    def close(self) -> None:
        """Release the handle (its connection)."""
        ffi.release(self._handle)


def c_text(chars: CData) -> str:
    """A C string (``char *`` or ``char[]``) as text; undecodable bytes replaced."""
    raw = ffi.string(chars)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


#: Bytes of the message buffer passed to every fallible C call.
MESSAGE_BYTES = 512
#: The largest text result a C call may grow its buffer to.
TEXT_LIMIT = 64 << 20
_FIRST_TEXT = 1 << 16

#: The kind each errno code means; any other is ``BACKEND_ERROR`` (or the
#: call's own default).
ERRNO_KINDS: Mapping[int, ErrorKind] = {
    errno.ENOENT: ErrorKind.DEVICE_NOT_AVAILABLE,
    errno.ENODEV: ErrorKind.DEVICE_NOT_AVAILABLE,
    errno.ECONNREFUSED: ErrorKind.DEVICE_NOT_AVAILABLE,
    errno.ECONNRESET: ErrorKind.DEVICE_NOT_AVAILABLE,
    errno.EHOSTUNREACH: ErrorKind.DEVICE_NOT_AVAILABLE,
    errno.EBUSY: ErrorKind.DEVICE_BUSY,
    errno.EACCES: ErrorKind.PERMISSION_DENIED,
    errno.EPERM: ErrorKind.PERMISSION_DENIED,
    errno.EINVAL: ErrorKind.UNSUPPORTED_CONFIG,
    errno.ENOMEM: ErrorKind.RESOURCE_EXHAUSTED,
    errno.EAGAIN: ErrorKind.RESOURCE_EXHAUSTED,
    errno.ENOSPC: ErrorKind.RESOURCE_EXHAUSTED,
    errno.ETIMEDOUT: ErrorKind.TIMED_OUT,
    errno.ENOSYS: ErrorKind.UNSUPPORTED_OPERATION,
    errno.EOPNOTSUPP: ErrorKind.UNSUPPORTED_OPERATION,
}


def check(
    result: int,
    msg: CData,
    *,
    context: str,
    default: ErrorKind = ErrorKind.BACKEND_ERROR,
) -> int:
    """``result`` when it is not negative; else raise the `Error` it means.

    Parameters
    ----------
    result
        What the C function returned: >= 0, or a negative errno code.
    msg
        The ``char[]`` it wrote its message into.
    context
        What was being done, for the message (``"ALSA device 'alsa:x'"``).
    default
        The kind for a code `ERRNO_KINDS` does not list.

    Raises
    ------
    Error
        Of the code's kind, with ``f"{context}: {the C side's message}"`` and
        ``code=result``.
    """
    if result >= 0:
        return result
    text = c_text(msg) or f"error {result}"
    raise Error(ERRNO_KINDS.get(-result, default), f"{context}: {text}", code=result)


def call(
    fn: Callable[..., int],
    *args: Any,
    context: str,
    default: ErrorKind = ErrorKind.BACKEND_ERROR,
) -> int:
    """``fn(*args, msg, len)`` with a fresh message buffer, through `check()`."""
    msg = ffi.new("char[]", MESSAGE_BYTES)
    return check(int(fn(*args, msg, MESSAGE_BYTES)), msg, context=context, default=default)


class _CheckedLib:
    """The engine's and the hosts' fallible C functions, each made `call()`'s way:
    ``clib.da_x(*args, context=...)`` is ``call(lib.da_x, *args, context=...)``,
    with the arguments typed by the stub (``_native.pyi``'s ``_Checked``)."""

    def __getattr__(self, name: str) -> Callable[..., int]:
        return functools.partial(call, getattr(lib, name))


#: The C functions that can fail, their message buffer supplied and their result
#: checked (`call`), typed one by one.
clib: _Checked = cast("_Checked", _CheckedLib())


def attempt(fn: Callable[..., int], *args: Any) -> tuple[int, str]:
    """``fn(*args, msg, len)``: its result, and its message when it failed ("" when not).

    For a failure the caller notes and goes on from (a real-time request
    denied, a close that took too long) rather than raises.
    """
    msg = ffi.new("char[]", MESSAGE_BYTES)
    result = int(fn(*args, msg, MESSAGE_BYTES))
    return result, (c_text(msg) if result < 0 else "")


def read_text(
    fn: Callable[..., int],
    *args: Any,
    context: str,
    default: ErrorKind = ErrorKind.BACKEND_ERROR,
) -> tuple[int, str]:
    """``fn(*args, buf, len, msg, len)``, growing ``buf`` while it answers ``-ENOSPC``.

    Returns
    -------
    (int, str)
        What ``fn`` returned (>= 0) and the text it wrote.

    Raises
    ------
    Error
        As `check()`; ``RESOURCE_EXHAUSTED`` when the text would need
        more than `TEXT_LIMIT` bytes.
    """
    size = _FIRST_TEXT
    msg = ffi.new("char[]", MESSAGE_BYTES)
    while True:
        buf = ffi.new("char[]", size)
        result = int(fn(*args, buf, size, msg, MESSAGE_BYTES))
        if result != -errno.ENOSPC or size >= TEXT_LIMIT:
            break
        size *= 4
    check(result, msg, context=context, default=default)
    return result, c_text(buf)
