"""The engine's C sample conversion follows formats.py's rules bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import duplexaudio as da
from duplexaudio._engine import ffi, lib


def c_convert(data: np.ndarray, src: da.SampleFormat, dst: da.SampleFormat) -> np.ndarray:
    data = np.ascontiguousarray(data, dtype=src.dtype)
    out = np.empty(data.shape, dtype=dst.dtype)
    assert (
        lib.da_convert(ffi.from_buffer(data), src.value, ffi.from_buffer(out), dst.value, data.size)
        == 0
    )
    return out


floats = hnp.arrays(
    np.float64,
    st.integers(1, 64),
    elements=st.floats(-1.5, 1.5, allow_nan=False) | st.sampled_from([-1.0, 1.0, 0.5, -0.0]),
)


@pytest.mark.parametrize("fmt", list(da.SampleFormat))
@settings(max_examples=60, deadline=None)
@given(data=floats)
def test_c_from_float_equals_formats_from_float(fmt: da.SampleFormat, data: np.ndarray) -> None:
    assert np.array_equal(c_convert(data, da.SampleFormat.F64, fmt), da.from_float(data, fmt))


@pytest.mark.parametrize("fmt", list(da.SampleFormat))
@settings(max_examples=60, deadline=None)
@given(data=floats)
def test_c_to_float_equals_formats_to_float(fmt: da.SampleFormat, data: np.ndarray) -> None:
    samples = da.from_float(data, fmt)
    assert np.array_equal(
        c_convert(samples, fmt, da.SampleFormat.F64), da.to_float(samples, fmt), equal_nan=True
    )


def test_c_conversion_maps_nan_to_equilibrium() -> None:
    nan = np.array([np.nan])
    for fmt in da.SampleFormat:
        if not fmt.is_float:
            assert c_convert(nan, da.SampleFormat.F64, fmt)[0] == fmt.equilibrium


def test_c_conversion_rejects_unknown_format_codes() -> None:
    buf = np.zeros(4)
    assert lib.da_convert(ffi.from_buffer(buf), 99, ffi.from_buffer(buf), 11, 1) < 0


def test_engine_refuses_impossible_parameters() -> None:
    block = np.zeros(64, np.float32)
    ptr = ffi.from_buffer(block)
    assert lib.da_engine_new(1, 10, ptr, 1, 10, ptr, 0, 48000, 0, 0.8) == ffi.NULL
    assert lib.da_engine_new(1, 10, ptr, 1, 10, ptr, 64, 48000, 0, 1.5) == ffi.NULL
    assert lib.da_engine_new(1, 10, ffi.NULL, 0, 10, ffi.NULL, 64, 48000, 0, 0.8) == ffi.NULL


def test_frames_to_ns_in_c_matches_python() -> None:
    from duplexaudio.timing import frames_to_ns

    for frames in (0, 1, 127, 128, 255, 10**9 + 7):
        for rate in (8000, 44100, 48000, 96000):
            assert lib.da_frames_to_ns(frames, rate) == frames_to_ns(frames, rate)
