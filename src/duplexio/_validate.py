"""The one check for whole numbers, durations and argument lists a user passes in.

Every public entry point that takes a count, a rate, a frame number or a
number of seconds checks it here, so the same value gets the same rule and
the same ``INVALID_INPUT`` message everywhere. `checked()` and
`checked_methods()` do the same for the argument list itself: a misspelt
keyword or a missing argument is an ``INVALID_INPUT`` naming what is
accepted, not Python's bare ``TypeError``. Nothing else lives here.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
import operator
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from duplexio.errors import Error, ErrorKind, shown

__all__ = [
    "checked",
    "checked_methods",
    "flag",
    "optional_seconds",
    "positive",
    "seconds",
    "whole",
]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


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
            ErrorKind.INVALID_INPUT,
            f"{name} must be a whole number{of}{bounds}, got {shown(value)}",
        )
    return n


def flag(name: str, value: object) -> bool:
    """``value`` as a bool, if it is one (Python's or numpy's).

    Truthiness is not enough: ``loop=[]`` or ``blocking="no"`` is a bug to
    report, not a False to act on, and an array has no truth value at all.

    Raises
    ------
    Error
        ``INVALID_INPUT``: "<name> must be True or False, got <value>".
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise Error(ErrorKind.INVALID_INPUT, f"{name} must be True or False, got {shown(value)}")


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
    """A duration: `positive()` in seconds."""
    return _positive(name, value, zero=zero, unit="seconds", accepted="")


def optional_seconds(name: str, value: object, *, zero: bool = False) -> float | None:
    """As `seconds()`, but None is accepted (and returned)."""
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
            f"{name} must be {accepted}a finite number{of} {bound}, got {shown(value)}",
        )
    return number


def _call_problem(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str | None:
    """Why ``fn(*args, **kwargs)`` cannot bind, in words naming what is accepted; None if it can."""
    signature = inspect.signature(fn)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        problem = str(exc)
    else:
        return None
    names = [
        n for n, p in signature.parameters.items()
        if n not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]  # fmt: skip
    unknown = [k for k in kwargs if k not in signature.parameters]
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        # Say what was misspelt first: that is the mistake, a "missing"
        # argument is only its consequence.
        words = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1, cutoff=0.6)
            words.append(f"{shown(k)}" + (f" (did you mean {shown(close[0])}?)" if close else ""))
        problem = f"unknown keyword argument {', '.join(words)}"
    what = fn.__qualname__.removesuffix(".__init__")
    return f"{what}(): {problem}; it takes: {', '.join(names) or 'no arguments'}"


def checked(fn: F) -> F:
    """``fn``, except that a call whose arguments cannot bind raises ``Error``.

    The call goes straight through (no cost on the way in); only when it
    raises ``TypeError`` is the argument list bound against the signature, and
    if that fails the caller gets ``INVALID_INPUT`` naming the unknown or
    missing argument and the accepted ones. A ``TypeError`` from inside the
    body (the arguments bound) is not touched.
    """

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError:
            problem = _call_problem(fn, args, kwargs)
            if problem is None:
                raise
        raise Error(ErrorKind.INVALID_INPUT, problem)

    return call  # type: ignore[return-value]


def checked_methods(cls: C) -> C:
    """``cls`` with `checked()` on ``__init__`` and every public method it defines.

    Properties take no arguments and are left alone; class and static methods
    are wrapped inside their descriptor. Methods already checked are not
    wrapped twice, so a base class may apply this from ``__init_subclass__``.
    """
    for name, member in list(vars(cls).items()):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(member, (classmethod, staticmethod)):
            if not hasattr(member.__func__, "__wrapped__"):
                setattr(cls, name, type(member)(checked(member.__func__)))
        elif inspect.isfunction(member) and not hasattr(member, "__wrapped__"):
            setattr(cls, name, checked(member))
    return cls
