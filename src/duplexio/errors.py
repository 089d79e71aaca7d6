"""The one error type of duplexio and its kinds.

Every failure the library reports, whether raised to the caller or delivered
to a stream's ``error_callback``, is an `Error` carrying an
`ErrorKind`; and `shown()`, the one way a message quotes a value (bounded).
Nothing else lives here.
"""

from __future__ import annotations

import enum
import reprlib


class ErrorKind(enum.Enum):
    """What went wrong, as a category a program can branch on.

    Attributes
    ----------
    DEVICE_BUSY
        The device is in use by another client and cannot be opened.
    DEVICE_CHANGED
        The device behind a "default" stream was moved by the server.
    DEVICE_NOT_AVAILABLE
        The device does not exist, was disconnected, or its server died.
    HOST_UNAVAILABLE
        The host (audio API) cannot be used on this machine now.
    INVALID_INPUT
        An argument has the wrong type or an impossible value.
    PERMISSION_DENIED
        The operating system refused access to the device.
    REALTIME_DENIED
        Real-time scheduling was requested and refused.
    RESOURCE_EXHAUSTED
        Memory, threads or file descriptors ran out.
    STREAM_INVALIDATED
        The device changed its buffer size or sample rate under the stream.
    UNSUPPORTED_CONFIG
        The device cannot run the requested channels, rate, buffer size or format.
    UNSUPPORTED_OPERATION
        The device or stream cannot do this at all (for example duplex
        without a shared clock).
    BACKEND_ERROR
        The audio API reported an error not covered by another kind.
    CALLBACK_FAILED
        The user's callback raised; the original exception is ``__cause__``.
    TIMED_OUT
        The device stopped delivering blocks, or an operation took too long.
    OTHER
        Anything else.
    """

    DEVICE_BUSY = "device_busy"
    DEVICE_CHANGED = "device_changed"
    DEVICE_NOT_AVAILABLE = "device_not_available"
    HOST_UNAVAILABLE = "host_unavailable"
    INVALID_INPUT = "invalid_input"
    PERMISSION_DENIED = "permission_denied"
    REALTIME_DENIED = "realtime_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    STREAM_INVALIDATED = "stream_invalidated"
    UNSUPPORTED_CONFIG = "unsupported_config"
    UNSUPPORTED_OPERATION = "unsupported_operation"
    BACKEND_ERROR = "backend_error"
    CALLBACK_FAILED = "callback_failed"
    TIMED_OUT = "timed_out"
    OTHER = "other"


class Error(Exception):
    """The exception duplexio raises and reports.

    Parameters
    ----------
    kind
        The category of the failure; branch on this, not on the text.
    message
        A sentence naming the value, device or server involved and, where it
        applies, what would have been accepted.
    code
        The backend's own error code (an ``errno``, a JACK status, ...), if any.

    Examples
    --------
    >>> try:
    ...     dio.StreamConfig(channels=0, sample_rate=48000)
    ... except dio.Error as e:
    ...     assert e.kind is dio.ErrorKind.INVALID_INPUT
    """

    kind: ErrorKind
    message: str
    code: int | None

    def __init__(self, kind: ErrorKind, message: str, *, code: int | None = None) -> None:
        message = _bounded(message)
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.code = code

    def __str__(self) -> str:
        suffix = f" (code {self.code})" if self.code is not None else ""
        return f"[{self.kind.name}] {self.message}{suffix}"

    def __repr__(self) -> str:
        return f"Error({self.kind}, {self.message!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable (multiprocessing users) despite the keyword-only code.
        return (_rebuild, (self.kind, self.message, self.code))


def _rebuild(kind: ErrorKind, message: str, code: int | None) -> Error:
    return Error(kind, message, code=code)


#: The most characters of one value a message quotes.
SHOWN_CHARACTERS = 200
#: The most characters of a whole message: its start and its end (what is
#: accepted) are kept, the middle cut.
MESSAGE_CHARACTERS = 1000

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = SHOWN_CHARACTERS
_shown.maxlong = 60
_shown.maxlist = _shown.maxtuple = _shown.maxset = _shown.maxfrozenset = 8
_shown.maxdict = _shown.maxdeque = _shown.maxarray = 8
_shown.maxlevel = 3


def shown(value: object) -> str:
    """``repr(value)`` for a message, at most `SHOWN_CHARACTERS` long: a
    megabyte string or a long list is quoted by its start and end."""
    try:
        text = _shown.repr(value)
    except Exception:  # a repr that raises is the user's; the message still goes out
        text = f"<{type(value).__name__} object>"
    if len(text) > SHOWN_CHARACTERS:
        text = text[: SHOWN_CHARACTERS - 3] + "..."
    return text


def _bounded(message: str) -> str:
    """``message`` cut in the middle to `MESSAGE_CHARACTERS` when longer."""
    if len(message) <= MESSAGE_CHARACTERS:
        return message
    cut = len(message) - MESSAGE_CHARACTERS
    head = MESSAGE_CHARACTERS * 3 // 5
    return f"{message[:head]} ...({cut} characters cut)... {message[head + cut :]}"
