"""The one check for whole numbers and durations a user passes in.

Every public entry point that takes a count, a rate, a frame number or a
number of seconds checks it here, so the same value gets the same rule and
the same ``INVALID_INPUT`` message everywhere. Nothing else lives here.
"""

from __future__ import annotations

import math
import numbers
import operator

from duplexaudio.errors import Error, ErrorKind

__all__ = ["optional_seconds", "positive", "seconds", "whole"]


def _as_whole(value: object) -> int | None:
    """``value`` as an int if it is an integer (Python or numpy), else None.

    bool is refused although it is an int: ``channels=True`` is a bug, not 1.
    Floats are refused even when integral, so that 48000.0 from a computation
    is noticed rather than silently truncated somewhere else.
    """
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def whole(
    name: str,
    value: object,
    *,
    minimum: int | None = 1,
    maximum: int | None = None,
    unit: str = "",
) -> int:
    """``value`` as an int, if it is a whole number in ``minimum..maximum``.

    Parameters
    ----------
    name
        What the value is, for the message (``"channels"``).
    value
        What the user passed.
    minimum, maximum
        Inclusive bounds; None leaves that side open.
    unit
        The unit, for the message (``"frames"``, ``"Hz"``).

    Raises
    ------
    Error
        ``INVALID_INPUT``: "<name> must be a whole number [of <unit>] <range>,
        got <value>".
    """
    n = _as_whole(value)
    if n is None or (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        of = f" of {unit}" if unit else ""
        if minimum is not None and maximum is not None:
            bounds = f" in {minimum}..{maximum}"
        elif minimum is not None:
            bounds = f" >= {minimum}"
        elif maximum is not None:
            bounds = f" <= {maximum}"
        else:
            bounds = ""
        raise Error(
            ErrorKind.INVALID_INPUT, f"{name} must be a whole number{of}{bounds}, got {value!r}"
        )
    return n


def positive(name: str, value: object, *, zero: bool = False, unit: str = "") -> float:
    """``value`` as a float, if it is a finite real number > 0 (>= 0 with `zero`).

    Parameters
    ----------
    name
        What the value is, for the message (``"amplitude"``).
    value
        What the user passed: a real number (Python or numpy, not bool).
    zero
        0 is accepted too.
    unit
        The unit, for the message (``"seconds"``).

    Raises
    ------
    Error
        ``INVALID_INPUT``: "<name> must be a finite number [of <unit>] > 0
        (>= 0), got <value>". NaN and infinity are refused.
    """
    return _positive(name, value, zero=zero, unit=unit, accepted="")


def seconds(name: str, value: object, *, zero: bool = False) -> float:
    """A duration: :func:`positive` in seconds."""
    return _positive(name, value, zero=zero, unit="seconds", accepted="")


def optional_seconds(name: str, value: object, *, zero: bool = False) -> float | None:
    """As :func:`seconds`, but None is accepted (and returned)."""
    if value is None:
        return None
    return _positive(name, value, zero=zero, unit="seconds", accepted="None or ")


def _positive(name: str, value: object, *, zero: bool, unit: str, accepted: str) -> float:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if real else math.nan  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        of = f" of {unit}" if unit else ""
        bound = ">= 0" if zero else "> 0"
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{name} must be {accepted}a finite number{of} {bound}, got {value!r}",
        )
    return number
