"""Behaviour of duplexio.formats: the formats, their dtypes, and conversions."""

from __future__ import annotations

import math
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat, from_float, to_float

INT_FORMATS = [f for f in SampleFormat if not f.is_float]
FLOAT_FORMATS = [SampleFormat.F32, SampleFormat.F64]
UP_TO_32_BITS = [f for f in INT_FORMATS if f.bits <= 32]
SIXTY_FOUR_BITS = [SampleFormat.I64, SampleFormat.U64]

EXPECTED = {
    # format: (code, dtype, bits, sample_size)
    SampleFormat.I8: (1, np.int8, 8, 1),
    SampleFormat.I16: (2, np.int16, 16, 2),
    SampleFormat.I24: (3, np.int32, 24, 4),
    SampleFormat.I32: (4, np.int32, 32, 4),
    SampleFormat.I64: (5, np.int64, 64, 8),
    SampleFormat.U8: (6, np.uint8, 8, 1),
    SampleFormat.U16: (7, np.uint16, 16, 2),
    SampleFormat.U32: (8, np.uint32, 32, 4),
    SampleFormat.U64: (9, np.uint64, 64, 8),
    SampleFormat.F32: (10, np.float32, 32, 4),
    SampleFormat.F64: (11, np.float64, 64, 8),
}


def int_range(fmt: SampleFormat) -> tuple[int, int]:
    """The smallest and largest sample value of an integer format."""
    half = 1 << (fmt.bits - 1)
    if fmt.is_unsigned:
        return 0, 2 * half - 1
    return -half, half - 1


def top_value(fmt: SampleFormat) -> int:
    """What +1.0 converts to: the largest value, or 2**63 - 1024 for 64 bits."""
    scale = 2.0 ** (fmt.bits - 1)
    hi = int(min(scale - 1, math.nextafter(scale, 0.0)))
    return hi + (1 << (fmt.bits - 1) if fmt.is_unsigned else 0)


def ref_from_float(x: float, fmt: SampleFormat) -> int:
    """The conversion rule written out with Python scalars, one sample at a time."""
    scale = 2.0 ** (fmt.bits - 1)
    hi = min(scale - 1, math.nextafter(scale, 0.0))
    v = 0.0 if math.isnan(x) else x * scale
    v = min(max(v, -scale), hi)
    n = round(v)  # Python's round is half to even, like np.rint
    return n + (1 << (fmt.bits - 1) if fmt.is_unsigned else 0)


def ref_to_float(n: int, fmt: SampleFormat) -> float:
    offset = 1 << (fmt.bits - 1) if fmt.is_unsigned else 0
    return float(n - offset) / 2.0 ** (fmt.bits - 1)


# --- the formats -------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_every_format_has_its_engine_code_dtype_bits_and_sample_size(fmt: SampleFormat) -> None:
    code, dtype, bits, size = EXPECTED[fmt]
    assert fmt.value == code
    assert fmt.dtype == np.dtype(dtype)
    assert fmt.bits == bits
    assert fmt.sample_size == size == fmt.dtype.itemsize


def test_there_are_exactly_eleven_formats() -> None:
    assert len(SampleFormat) == 11 == len(EXPECTED)


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_each_format_is_exactly_one_of_float_signed_unsigned(fmt: SampleFormat) -> None:
    assert [fmt.is_float, fmt.is_signed, fmt.is_unsigned].count(True) == 1
    assert fmt.is_float == fmt.name.startswith("F")
    assert fmt.is_signed == fmt.name.startswith("I")
    assert fmt.is_unsigned == fmt.name.startswith("U")


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        (SampleFormat.I8, 0),
        (SampleFormat.I16, 0),
        (SampleFormat.I24, 0),
        (SampleFormat.I32, 0),
        (SampleFormat.I64, 0),
        (SampleFormat.U8, 128),
        (SampleFormat.U16, 32768),
        (SampleFormat.U32, 2**31),
        (SampleFormat.U64, 2**63),
        (SampleFormat.F32, 0.0),
        (SampleFormat.F64, 0.0),
    ],
)
def test_equilibrium_is_silence_of_the_right_python_type(
    fmt: SampleFormat, value: int | float
) -> None:
    assert fmt.equilibrium == value
    assert type(fmt.equilibrium) is type(value)


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_equilibrium_converts_to_and_from_zero(fmt: SampleFormat) -> None:
    silence = np.full(4, fmt.equilibrium, dtype=fmt.dtype)
    assert np.array_equal(to_float(silence, fmt), np.zeros(4))
    assert np.array_equal(from_float(np.zeros(4), fmt), silence)


# --- from_dtype and parse ----------------------------------------------------


@pytest.mark.parametrize("fmt", [f for f in SampleFormat if f is not SampleFormat.I24])
def test_from_dtype_inverts_dtype(fmt: SampleFormat) -> None:
    assert SampleFormat.from_dtype(fmt.dtype) is fmt
    assert SampleFormat.from_dtype(fmt.dtype.type) is fmt
    assert SampleFormat.from_dtype(str(fmt.dtype)) is fmt


def test_from_dtype_maps_int32_to_i32_not_i24() -> None:
    assert SampleFormat.from_dtype(np.int32) is SampleFormat.I32


@pytest.mark.parametrize("bad", [np.float16, np.complex64, np.bool_, ">i2", "not-a-dtype", None])
def test_from_dtype_rejects_dtypes_without_a_format(bad: Any) -> None:
    with pytest.raises(Error) as info:
        SampleFormat.from_dtype(bad)
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert "float32" in info.value.message


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("f32", SampleFormat.F32),
        ("F32", SampleFormat.F32),
        (" f64 ", SampleFormat.F64),
        ("float32", SampleFormat.F32),
        ("FLOAT64", SampleFormat.F64),
        ("int16", SampleFormat.I16),
        ("i24", SampleFormat.I24),
        ("int24", SampleFormat.I24),
        ("int32", SampleFormat.I32),
        ("i8", SampleFormat.I8),
        ("uint8", SampleFormat.U8),
        ("u64", SampleFormat.U64),
        (SampleFormat.U16, SampleFormat.U16),
        (np.dtype(np.int16), SampleFormat.I16),
        (np.dtype(np.int32), SampleFormat.I32),
        (np.float32, SampleFormat.F32),
        (np.uint64, SampleFormat.U64),
    ],
)
def test_parse_accepts_names_formats_and_dtypes(given_: Any, expected: SampleFormat) -> None:
    assert SampleFormat.parse(given_) is expected


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_parse_accepts_every_member_name(fmt: SampleFormat) -> None:
    assert SampleFormat.parse(fmt.name) is fmt
    assert SampleFormat.parse(fmt.name.lower()) is fmt


@pytest.mark.parametrize("bad", ["f16", "float", "", "i4", "pcm16", 32, None, 1.5, True, [1]])
def test_parse_rejects_unknown_values_naming_them_and_listing_names(bad: object) -> None:
    with pytest.raises(Error) as info:
        SampleFormat.parse(bad)
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert repr(bad) in info.value.message
    for name in ("f32", "i16", "float32", "int16"):
        assert name in info.value.message


def test_parse_rejects_a_dtype_without_a_format() -> None:
    with pytest.raises(Error) as info:
        SampleFormat.parse(np.dtype(np.float16))
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert "float16" in info.value.message


# --- conversions: exact values and clipping -----------------------------------


@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_full_scale_floats_give_the_extreme_sample_values(fmt: SampleFormat) -> None:
    lo, _ = int_range(fmt)
    out = from_float(np.array([-1.0, 1.0]), fmt)
    assert out.dtype == fmt.dtype
    assert out.tolist() == [lo, top_value(fmt)]


@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_values_beyond_full_scale_are_clipped(fmt: SampleFormat) -> None:
    lo, _ = int_range(fmt)
    hi = top_value(fmt)
    data = np.array([1.0000001, 1.5, 2.0, 1e300, np.inf, -1.0000001, -1.5, -1e300, -np.inf])
    assert from_float(data, fmt).tolist() == [hi] * 5 + [lo] * 4


@pytest.mark.parametrize("fmt", [f for f in INT_FORMATS if f.bits <= 32])
def test_up_to_32_bits_plus_one_gives_the_largest_value(fmt: SampleFormat) -> None:
    assert top_value(fmt) == int_range(fmt)[1]


def test_64_bit_plus_one_gives_the_largest_float64_below_full_scale() -> None:
    # 2**63 - 1 is not a float64; the largest float64 below 2**63 is 2**63 - 1024.
    assert from_float([1.0], SampleFormat.I64).tolist() == [2**63 - 1024]
    assert from_float([1.0], SampleFormat.U64).tolist() == [2**64 - 1024]


@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_extreme_sample_values_give_minus_one_and_just_below_one(fmt: SampleFormat) -> None:
    lo, hi = int_range(fmt)
    out = to_float(np.array([lo, hi], dtype=fmt.dtype), fmt)
    assert out[0] == -1.0
    assert out[1] == ref_to_float(hi, fmt)
    assert out[1] <= 1.0


@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_nan_becomes_silence(fmt: SampleFormat) -> None:
    out = from_float(np.array([np.nan, -np.nan, 0.5]), fmt)
    assert out[0] == fmt.equilibrium
    assert out[1] == fmt.equilibrium


def test_rounding_is_half_to_even() -> None:
    data = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) / 128.0
    assert from_float(data, SampleFormat.I8).tolist() == [0, 2, 2, 0, -2, -2]
    assert from_float(data, SampleFormat.U8).tolist() == [128, 130, 130, 128, 126, 126]


def test_unsigned_formats_are_offset_by_half_their_range() -> None:
    assert from_float([-0.5, 0.0, 0.5], SampleFormat.U8).tolist() == [64, 128, 192]
    assert to_float(
        np.array([0, 2**63, 2**64 - 1], dtype=np.uint64), SampleFormat.U64
    ).tolist() == [
        -1.0,
        0.0,
        1.0,  # (2**63 - 1) / 2**63 rounds to 1.0 in float64
    ]


def test_i24_uses_only_24_bits_of_its_int32_container() -> None:
    out = from_float([-1.0, 1.0, 0.5], SampleFormat.I24)
    assert out.dtype == np.int32
    assert out.tolist() == [-(2**23), 2**23 - 1, 2**22]
    assert to_float(np.array([2**22], dtype=np.int32), SampleFormat.I24).tolist() == [0.5]


@pytest.mark.parametrize("fmt", FLOAT_FORMATS)
def test_float_formats_are_cast_without_scaling_or_clipping(fmt: SampleFormat) -> None:
    data = np.array([-3.0, -1.0, 0.25, 1.0, 7.5, np.inf, np.nan])
    out = from_float(data, fmt)
    assert out.dtype == fmt.dtype
    np.testing.assert_array_equal(out, data.astype(fmt.dtype))
    np.testing.assert_array_equal(to_float(out, fmt), data)


def test_float_to_f32_overflows_to_infinity_quietly() -> None:
    with np.errstate(all="raise"):
        assert from_float([1e300], SampleFormat.F32).tolist() == [np.inf]


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_conversions_keep_the_shape_and_return_new_arrays(fmt: SampleFormat) -> None:
    block = np.zeros((64, 2))
    out = from_float(block, fmt)
    assert out.shape == (64, 2)
    back = to_float(out, fmt)
    assert back.shape == (64, 2)
    assert back.dtype == np.float64
    assert not np.shares_memory(back, out)
    assert from_float(0.5, fmt).shape == ()
    assert to_float(out[0, 0], fmt).shape == ()


@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_to_float_can_produce_float32(fmt: SampleFormat) -> None:
    data = from_float(np.array([-1.0, -0.25, 0.0, 0.5]), fmt)
    out = to_float(data, fmt, dtype=np.float32)
    assert out.dtype == np.float32
    # Computed in float64, then cast once.
    np.testing.assert_array_equal(out, to_float(data, fmt).astype(np.float32))


def test_to_float_rejects_the_wrong_dtype_naming_dtype_and_format() -> None:
    with pytest.raises(Error) as info:
        to_float(np.zeros(4, dtype=np.int32), SampleFormat.I16)
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert "int32" in info.value.message
    assert "I16" in info.value.message


def test_to_float_holds_lists_to_the_same_dtype_rule() -> None:
    with pytest.raises(Error) as info:
        to_float([1, 2], SampleFormat.I16)
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert to_float([0.5, 1.0], SampleFormat.F64).tolist() == [0.5, 1.0]


@pytest.mark.parametrize("bad", [np.int16, np.complex128, "not-a-dtype", None])
def test_to_float_rejects_a_non_floating_result_dtype(bad: Any) -> None:
    with pytest.raises(Error) as info:
        to_float(np.zeros(2, dtype=np.int16), SampleFormat.I16, dtype=bad)
    assert info.value.kind is ErrorKind.INVALID_INPUT


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array([True]), ["a"], np.array([None])])
def test_from_float_rejects_non_real_data(bad: Any) -> None:
    with pytest.raises(Error) as info:
        from_float(bad, SampleFormat.I16)
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert "I16" in info.value.message


def test_from_float_accepts_lists_float32_and_integers() -> None:
    assert from_float([0.5], SampleFormat.I16).tolist() == [16384]
    assert from_float(np.array([0.5], dtype=np.float32), SampleFormat.I16).tolist() == [16384]
    assert from_float([0, 1, -1], SampleFormat.I16).tolist() == [0, 32767, -32768]


def test_conversions_emit_no_numpy_warnings() -> None:
    data = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 0.5])
    with np.errstate(all="raise"):
        for fmt in SampleFormat:
            to_float(from_float(data, fmt), fmt)


# --- conversions: properties over the whole range ----------------------------

unit_floats = hnp.arrays(
    np.float64,
    st.integers(1, 32),
    elements=st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=True),
)


@pytest.mark.parametrize("fmt", INT_FORMATS)
@given(data=unit_floats)
def test_float_to_int_to_float_is_within_half_an_lsb(
    fmt: SampleFormat, data: npt.NDArray[np.float64]
) -> None:
    back = to_float(from_float(data, fmt), fmt)
    lsb = 2.0 ** -(fmt.bits - 1)
    top = ref_to_float(top_value(fmt), fmt)
    below_top = data <= top
    # Everywhere but the clipped top the error is at most half an LSB...
    assert np.all(np.abs(back[below_top] - data[below_top]) <= 0.5 * lsb)
    # ...and the clipped top lands exactly on the largest value, which for up
    # to 32 bits is within one LSB of +1.0.
    assert np.all(back[~below_top] == top)
    if fmt.bits <= 32:
        assert np.all(np.abs(back - data) <= lsb)


def int_arrays(fmt: SampleFormat) -> st.SearchStrategy[npt.NDArray[Any]]:
    lo, hi = int_range(fmt)
    return hnp.arrays(fmt.dtype, st.integers(1, 32), elements=st.integers(lo, hi))


@pytest.mark.parametrize("fmt", UP_TO_32_BITS)
@given(data=st.data())
def test_int_to_float_to_int_is_exact_up_to_32_bits(fmt: SampleFormat, data: st.DataObject) -> None:
    samples = data.draw(int_arrays(fmt))
    np.testing.assert_array_equal(from_float(to_float(samples, fmt), fmt), samples)


def representable_64(fmt: SampleFormat) -> st.SearchStrategy[int]:
    # m * 2**e with |m| <= 2**53 is exactly a float64; e <= 10 keeps it within
    # [-2**63, 2**63 - 1024], the range +-1.0 maps to.
    signed = st.builds(lambda m, e: m << e, st.integers(-(2**53), 2**53 - 1), st.integers(0, 10))
    return signed.map(lambda s: s + 2**63) if fmt.is_unsigned else signed


@pytest.mark.parametrize("fmt", SIXTY_FOUR_BITS)
@given(data=st.data())
def test_int_to_float_to_int_is_exact_for_representable_64_bit_values(
    fmt: SampleFormat, data: st.DataObject
) -> None:
    values = data.draw(st.lists(representable_64(fmt), min_size=1, max_size=16))
    samples = np.array(values, dtype=fmt.dtype)
    np.testing.assert_array_equal(from_float(to_float(samples, fmt), fmt), samples)


any_floats = st.lists(
    st.one_of(
        st.floats(-1.5, 1.5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.5, -0.5, 1.0, -1.0, math.nextafter(1.0, 0.0)]),
    ),
    min_size=1,
    max_size=16,
)


@pytest.mark.parametrize("fmt", INT_FORMATS)
@given(values=any_floats)
def test_from_float_matches_the_rule_written_with_python_scalars(
    fmt: SampleFormat, values: list[float]
) -> None:
    assert from_float(np.array(values), fmt).tolist() == [ref_from_float(v, fmt) for v in values]


@pytest.mark.parametrize("fmt", INT_FORMATS)
@given(data=st.data())
def test_to_float_matches_the_rule_written_with_python_scalars(
    fmt: SampleFormat, data: st.DataObject
) -> None:
    samples = data.draw(int_arrays(fmt))
    expected = [ref_to_float(int(n), fmt) for n in samples]
    assert to_float(samples, fmt).tolist() == expected
