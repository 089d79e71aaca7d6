"""Sample formats and the conversions between them and floating point.

What lives here: `SampleFormat` (the eleven sample formats a stream can
carry, their numpy dtypes, sizes and silence values) and the two conversions
`to_float()` and `from_float()`. The native engine implements the very
same conversion rules, bit for bit, so that a block converted in C and a block
converted here are identical; change one only together with the other.

What does not live here: stream configurations (`duplexio.config`),
byte-order handling (every array in duplexio is in the machine's native
byte order) and any resampling or dithering.
"""

from __future__ import annotations

import enum
import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from duplexio._validate import checked, checked_methods
from duplexio.errors import Error, ErrorKind, shown

__all__ = ["SampleFormat", "as_frames", "from_float", "silent_frames", "to_float"]


@checked_methods
class SampleFormat(enum.Enum):
    """The format of one sample in a stream's arrays.

    ``I`` formats are signed integers, ``U`` unsigned integers (silence is the
    midpoint of their range), ``F`` IEEE floats (full scale is -1.0..1.0). The
    number is the count of significant bits. ``I24`` samples are held in an
    ``int32`` container, right-aligned: values run from ``-2**23`` to
    ``2**23 - 1``.

    The member values are the codes the native engine uses for each format;
    they are part of the engine's ABI.

    Examples
    --------
    >>> SampleFormat.parse("f32") is SampleFormat.F32
    True
    >>> SampleFormat.I24.dtype, SampleFormat.I24.sample_size
    (dtype('int32'), 4)
    """

    I8 = 1
    I16 = 2
    I24 = 3
    I32 = 4
    I64 = 5
    U8 = 6
    U16 = 7
    U32 = 8
    U64 = 9
    F32 = 10
    F64 = 11

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of arrays in this format (native byte order).

        ``I24`` uses ``int32`` as its container.
        """
        return _INFO[self].dtype

    @property
    def bits(self) -> int:
        """Significant bits per sample (8, 16, 24, 32 or 64)."""
        return _INFO[self].bits

    @property
    def sample_size(self) -> int:
        """Bytes one sample occupies in its container (4 for ``I24``)."""
        return _INFO[self].dtype.itemsize

    @property
    def is_float(self) -> bool:
        """True for ``F32`` and ``F64``."""
        return _INFO[self].dtype.kind == "f"

    @property
    def is_signed(self) -> bool:
        """True for the signed integer formats (``I8`` .. ``I64``).

        Float formats are neither signed nor unsigned in this sense.
        """
        return _INFO[self].dtype.kind == "i"

    @property
    def is_unsigned(self) -> bool:
        """True for the unsigned integer formats (``U8`` .. ``U64``)."""
        return _INFO[self].dtype.kind == "u"

    @property
    def equilibrium(self) -> int | float:
        """The value of silence in this format.

        ``0`` for signed integers, ``2**(bits - 1)`` for unsigned integers (for
        example 128 for ``U8``) and ``0.0`` for floats. Output arrays are filled
        with this value before each callback.
        """
        if self.is_float:
            return 0.0
        if self.is_unsigned:
            return 1 << (self.bits - 1)
        return 0

    @classmethod
    def from_dtype(cls, dtype_like: npt.DTypeLike) -> SampleFormat:
        """The format whose arrays have this numpy dtype.

        Parameters
        ----------
        dtype_like
            Anything `numpy.dtype()` accepts (``np.float32``, ``"int16"``,
            a dtype). Must be native byte order.

        Returns
        -------
        SampleFormat
            ``int32`` maps to ``I32``, never to ``I24`` (whose container is
            also ``int32``): a dtype alone cannot say that only 24 bits are used.

        Raises
        ------
        Error
            ``INVALID_INPUT`` if no format uses that dtype.
        """
        accepted = ", ".join(str(_INFO[f].dtype) for f in cls if f is not cls.I24)
        if dtype_like is None:
            # np.dtype(None) is float64; a missing dtype is almost surely a bug.
            raise Error(
                ErrorKind.INVALID_INPUT, f"no sample format for dtype None; accepted: {accepted}"
            )
        try:
            dtype = np.dtype(dtype_like)
        except (TypeError, ValueError, SyntaxError) as exc:  # SyntaxError: numpy parses "a,b"
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"{shown(dtype_like)} is not a numpy dtype; accepted: {accepted}",
            ) from exc
        for fmt, info in _INFO.items():
            if fmt is not cls.I24 and info.dtype == dtype:
                return fmt
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"no sample format for dtype {dtype} ({dtype.str}); accepted: {accepted}"
            " (native byte order)",
        )

    @classmethod
    def parse(cls, name_or_fmt: object) -> SampleFormat:
        """Read a sample format from a name, a dtype, or a format.

        Parameters
        ----------
        name_or_fmt
            A `SampleFormat`; a member name in any case (``"f32"``,
            ``"F32"``, ``"i24"``); a numpy type name (``"float32"``,
            ``"int16"``, ``"uint8"``; ``"int24"`` names ``I24``); or a numpy
            dtype or scalar type (``np.float32``), mapped as in
            `from_dtype()`.

        Returns
        -------
        SampleFormat

        Raises
        ------
        Error
            ``INVALID_INPUT`` naming the value and listing the accepted names.

        Notes
        -----
        Short numpy codes such as ``"i8"`` are read as member names, so
        ``"i8"`` is ``I8`` (8 bits), not numpy's ``int64``.
        """
        if isinstance(name_or_fmt, SampleFormat):
            return name_or_fmt
        if isinstance(name_or_fmt, str):
            key = name_or_fmt.strip().lower()
            found = _NAMES.get(key)
            if found is not None:
                return found
        elif isinstance(name_or_fmt, np.dtype) or (
            isinstance(name_or_fmt, type) and issubclass(name_or_fmt, np.generic)
        ):
            return cls.from_dtype(name_or_fmt)
        names = ", ".join(sorted(_NAMES, key=lambda n: (len(n) > 3, _NAMES[n].value, n)))
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{shown(name_or_fmt)} is not a sample format; accepted names: {names}"
            " (any case), a SampleFormat, or a numpy dtype",
        )


class _FormatInfo(NamedTuple):
    dtype: np.dtype[Any]
    bits: int


_INFO: dict[SampleFormat, _FormatInfo] = {
    SampleFormat.I8: _FormatInfo(np.dtype(np.int8), 8),
    SampleFormat.I16: _FormatInfo(np.dtype(np.int16), 16),
    SampleFormat.I24: _FormatInfo(np.dtype(np.int32), 24),
    SampleFormat.I32: _FormatInfo(np.dtype(np.int32), 32),
    SampleFormat.I64: _FormatInfo(np.dtype(np.int64), 64),
    SampleFormat.U8: _FormatInfo(np.dtype(np.uint8), 8),
    SampleFormat.U16: _FormatInfo(np.dtype(np.uint16), 16),
    SampleFormat.U32: _FormatInfo(np.dtype(np.uint32), 32),
    SampleFormat.U64: _FormatInfo(np.dtype(np.uint64), 64),
    SampleFormat.F32: _FormatInfo(np.dtype(np.float32), 32),
    SampleFormat.F64: _FormatInfo(np.dtype(np.float64), 64),
}

_NAMES: dict[str, SampleFormat] = {
    **{fmt.name.lower(): fmt for fmt in SampleFormat},
    **{str(info.dtype): fmt for fmt, info in _INFO.items() if fmt is not SampleFormat.I24},
    "int24": SampleFormat.I24,
}

# Unsigned samples are converted through the signed integer of the same width:
# u - 2**(b-1) and s + 2**(b-1) modulo 2**b are both "flip the top bit", which
# is exact and cannot overflow, even for 64 bits.
_SIGNED_TWIN: dict[SampleFormat, np.dtype[Any]] = {
    SampleFormat.U8: np.dtype(np.int8),
    SampleFormat.U16: np.dtype(np.int16),
    SampleFormat.U32: np.dtype(np.int32),
    SampleFormat.U64: np.dtype(np.int64),
}


def _top_bit(fmt: SampleFormat) -> np.generic:
    return fmt.dtype.type(1 << (fmt.bits - 1))  # type: ignore[no-any-return]


@checked
def to_float(
    data: npt.ArrayLike,
    fmt: SampleFormat | str,
    dtype: npt.DTypeLike = np.float64,
) -> npt.NDArray[Any]:
    """Convert samples in ``fmt`` to floats where full scale is -1.0..1.0.

    Parameters
    ----------
    data
        Samples of any shape, typically ``(frames, channels)``. Must have
        ``fmt.dtype`` exactly (``int32`` for ``I24``); lists and scalars go
        through `numpy.asarray()` first and are held to the same rule.
    fmt
        The format of ``data`` (or a name `SampleFormat.parse()` reads).
    dtype
        A floating dtype for the result (default ``float64``).

    Returns
    -------
    numpy.ndarray
        A new array of ``data``'s shape in ``dtype``.

    Raises
    ------
    Error
        ``INVALID_INPUT`` if ``data`` has the wrong dtype for ``fmt`` or
        ``dtype`` is not a floating dtype.

    Notes
    -----
    Float formats are cast as they are: no scaling, no clipping. An integer
    format of ``b`` bits is divided by ``2**(b-1)`` in float64 (unsigned
    formats first have ``2**(b-1)`` subtracted), then cast to ``dtype``; so
    the most negative value maps to exactly -1.0 and the most positive to
    just below 1.0. ``I24`` values outside -2**23..2**23-1 are not checked:
    they map beyond -1.0..1.0.
    """
    fmt = SampleFormat.parse(fmt)
    out_dtype = _float_dtype(dtype)
    arr = _array(data)
    if arr.dtype != fmt.dtype:
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"data of dtype {arr.dtype} cannot be read as sample format {fmt.name}, "
            f"which needs dtype {fmt.dtype}",
        )
    if fmt.is_float:
        return arr.astype(out_dtype)
    # Work on a 1-d view so that every numpy operation returns an array, never
    # a numpy scalar (0-d inputs would otherwise take numpy's scalar paths).
    flat = arr.reshape(-1)
    if fmt.is_unsigned:
        flat = np.bitwise_xor(flat, _top_bit(fmt)).view(_SIGNED_TWIN[fmt])
    scale = float(1 << (fmt.bits - 1))
    result = flat.astype(np.float64) / scale
    return result.astype(out_dtype, copy=False).reshape(arr.shape)


@checked
def from_float(data: npt.ArrayLike, fmt: SampleFormat | str) -> npt.NDArray[Any]:
    """Convert floats where full scale is -1.0..1.0 to samples in ``fmt``.

    Parameters
    ----------
    data
        Real numbers of any shape (floating or integer dtype; lists and
        scalars go through `numpy.asarray()`).
    fmt
        The format to produce (or a name `SampleFormat.parse()` reads).

    Returns
    -------
    numpy.ndarray
        A new array of ``data``'s shape in ``fmt.dtype``.

    Raises
    ------
    Error
        ``INVALID_INPUT`` if ``data`` is not real numbers (complex, bool,
        strings, objects).

    Notes
    -----
    Float formats are cast as they are: no scaling, no clipping (values too
    large for ``F32`` become infinities).

    An integer format of ``b`` bits uses ``scale = 2**(b-1)``: the value is
    read as float64, multiplied by ``scale``, clipped to
    ``[-scale, hi]`` where ``hi`` is the smaller of ``scale - 1`` and the
    largest float64 below ``scale`` (they differ only for 64 bits, where
    ``hi = 2**63 - 1024``), rounded half to even, and stored. Unsigned
    formats then add ``2**(b-1)``. So 1.0 and above give the largest value,
    -1.0 and below the smallest, and **NaN gives silence** (the format's
    `SampleFormat.equilibrium`).
    """
    fmt = SampleFormat.parse(fmt)
    arr = _array(data)
    if arr.dtype.kind not in "fiu":
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"data of dtype {arr.dtype} cannot be converted to sample format {fmt.name}; "
            "it needs real numbers (a floating or integer dtype)",
        )
    if fmt.is_float:
        # An overflow to infinity is the documented result of a plain cast.
        with np.errstate(over="ignore"):
            return arr.astype(fmt.dtype)
    flat = arr.reshape(-1)
    scale = float(1 << (fmt.bits - 1))
    hi = min(scale - 1.0, math.nextafter(scale, 0.0))
    # Huge values overflow to infinity here, which the clip below handles.
    with np.errstate(over="ignore"):
        scaled = flat.astype(np.float64) * scale
    # NaN has no integer value; silence is the least harmful thing to play.
    scaled = np.where(np.isnan(scaled), 0.0, scaled)
    rounded = np.rint(np.clip(scaled, -scale, hi))
    result: npt.NDArray[Any]
    if fmt.is_unsigned:
        signed = rounded.astype(_SIGNED_TWIN[fmt])
        result = np.bitwise_xor(signed.view(fmt.dtype), _top_bit(fmt))
    else:
        result = rounded.astype(fmt.dtype)
    return result.reshape(arr.shape)


def as_frames(data: object, name: str = "data") -> tuple[npt.NDArray[Any], SampleFormat]:
    """Read audio the user hands over as a fresh ``(frames, channels)`` array.

    Parameters
    ----------
    data
        A numpy array (or anything `numpy.asarray()` takes) of shape
        ``(frames,)`` (one channel) or ``(frames, channels)``, at least one
        frame and one channel, in a dtype of a `SampleFormat`.
    name
        The argument's name, for error messages.

    Returns
    -------
    (array, SampleFormat)
        A C-contiguous copy of shape ``(frames, channels)`` (the caller may
        change ``data`` afterwards without effect), and its format (``int32``
        reads as ``I32``).

    Raises
    ------
    Error
        ``INVALID_INPUT`` naming the shape or dtype and what is accepted.
    """
    arr = _array(data, name)
    shape = arr.shape
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"{name} must have shape (frames,) or (frames, channels) with at least one "
            f"frame and channel, got shape {shape}",
        )
    fmt = SampleFormat.from_dtype(arr.dtype)
    return np.array(arr, order="C", copy=True), fmt


def silent_frames(frames: int, channels: int, fmt: SampleFormat, what: str) -> npt.NDArray[Any]:
    """A ``(frames, channels)`` array in ``fmt``, filled with its silence.

    The engine keeps a pointer into it, so nobody may move its memory: it does
    not own its data (numpy refuses to ``resize`` it, even with
    ``refcheck=False``), and what owns the data, a ``bytearray`` numpy holds
    a buffer of, cannot be resized either.

    Raises
    ------
    Error
        ``RESOURCE_EXHAUSTED`` naming ``what`` and its size when the machine
        cannot give that much memory (never a bare MemoryError).
    """
    try:
        store = bytearray(frames * channels * fmt.dtype.itemsize)
        arr: npt.NDArray[Any] = np.frombuffer(store, fmt.dtype).reshape(frames, channels)
    except (MemoryError, ValueError, OverflowError) as exc:  # beyond what can be indexed
        size = frames * channels * fmt.dtype.itemsize
        raise Error(
            ErrorKind.RESOURCE_EXHAUSTED,
            f"{what} needs {frames} x {channels} samples of {fmt.name} ({size / 2**30:.1f} GiB), "
            "more memory than this machine gives",
        ) from exc
    if fmt.equilibrium:
        arr[...] = fmt.equilibrium
    return arr


def _array(data: object, name: str = "data") -> npt.NDArray[Any]:
    """``numpy.asarray(data)``, or ``INVALID_INPUT`` saying why it is not an array."""
    try:
        return np.asarray(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise Error(ErrorKind.INVALID_INPUT, f"{name} is not an array: {exc}") from exc


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    try:
        out = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise Error(ErrorKind.INVALID_INPUT, f"{shown(dtype)} is not a numpy dtype") from exc
    if dtype is None or out.kind != "f":
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"to_float needs a floating result dtype (float32 or float64), got {shown(dtype)}",
        )
    return out
