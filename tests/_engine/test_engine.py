"""The engine's C sample conversion follows formats.py's rules bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import duplexio as dio
from duplexio._engine import ffi, lib
from duplexio.contract import clib


def c_convert(data: np.ndarray, src: dio.SampleFormat, dst: dio.SampleFormat) -> np.ndarray:
    data = np.ascontiguousarray(data, dtype=src.dtype)
    out = np.empty(data.shape, dtype=dst.dtype)
    clib.da_convert(
        ffi.from_buffer(data),
        src.value,
        ffi.from_buffer(out),
        dst.value,
        data.size,
        context="conversion",
    )
    return out


floats = hnp.arrays(
    np.float64,
    st.integers(1, 64),
    elements=st.floats(-1.5, 1.5, allow_nan=False) | st.sampled_from([-1.0, 1.0, 0.5, -0.0]),
)


@pytest.mark.parametrize("fmt", list(dio.SampleFormat))
@settings(max_examples=60, deadline=None)
@given(data=floats)
def test_c_from_float_equals_formats_from_float(fmt: dio.SampleFormat, data: np.ndarray) -> None:
    assert np.array_equal(c_convert(data, dio.SampleFormat.F64, fmt), dio.from_float(data, fmt))


@pytest.mark.parametrize("fmt", list(dio.SampleFormat))
@settings(max_examples=60, deadline=None)
@given(data=floats)
def test_c_to_float_equals_formats_to_float(fmt: dio.SampleFormat, data: np.ndarray) -> None:
    samples = dio.from_float(data, fmt)
    assert np.array_equal(
        c_convert(samples, fmt, dio.SampleFormat.F64), dio.to_float(samples, fmt), equal_nan=True
    )


def test_c_conversion_maps_nan_to_equilibrium() -> None:
    nan = np.array([np.nan])
    for fmt in dio.SampleFormat:
        if not fmt.is_float:
            assert c_convert(nan, dio.SampleFormat.F64, fmt)[0] == fmt.equilibrium


def test_c_conversion_rejects_unknown_format_codes() -> None:
    buf = np.zeros(4)
    with pytest.raises(dio.Error, match="no conversion from format 99 to 11") as caught:
        clib.da_convert(ffi.from_buffer(buf), 99, ffi.from_buffer(buf), 11, 1, context="x")
    assert caught.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG


@pytest.mark.parametrize(
    ("frames", "deadline", "blocks"), [(0, 0.8, True), (64, 1.5, True), (64, 0.8, False)]
)
def test_engine_refuses_impossible_parameters(frames: int, deadline: float, blocks: bool) -> None:
    block = np.zeros(64, np.float32)
    ptr = ffi.from_buffer(block) if blocks else ffi.NULL
    made = ffi.new("da_engine **")
    with pytest.raises(dio.Error, match="engine: no engine for") as caught:
        clib.da_engine_new(made, 1, 10, ptr, 1 if blocks else 0, 10, ptr, frames, frames, 48000,
             0, deadline, context="engine")  # fmt: skip
    assert caught.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG and made[0] == ffi.NULL


def test_frames_to_ns_in_c_matches_python() -> None:
    from duplexio.timing import frames_to_ns

    for frames in (0, 1, 127, 128, 255, 10**9 + 7):
        for rate in (8000, 44100, 48000, 96000):
            assert lib.da_frames_to_ns(frames, rate) == frames_to_ns(frames, rate)


# -- the ring ---------------------------------------------------------------------


def test_the_ring_keeps_frames_in_order_across_the_wrap_and_never_overfills() -> None:
    made = ffi.new("da_ring **")
    clib.da_ring_new(made, 10, 8, context="ring")  # 10 frames of 8 bytes
    ring = ffi.gc(made[0], lib.da_ring_free)
    frames = np.arange(40, dtype=np.float32).reshape(20, 2)  # 8-byte frames
    out = np.zeros((20, 2), np.float32)
    assert lib.da_ring_write(ring, ffi.from_buffer(frames), 7) == 7
    assert lib.da_ring_read(ring, ffi.from_buffer(out), 5) == 5
    np.testing.assert_array_equal(out[:5], frames[:5])
    # 2 left, room for 8: the next write wraps around the end.
    assert lib.da_ring_writable(ring) == 8
    assert lib.da_ring_write(ring, ffi.from_buffer(frames[7:]), 13) == 8
    assert lib.da_ring_writable(ring) == 0 and lib.da_ring_readable(ring) == 10
    assert lib.da_ring_read(ring, ffi.from_buffer(out), 20) == 10
    np.testing.assert_array_equal(out[:10], frames[5:15])
    assert (lib.da_ring_write_total(ring), lib.da_ring_read_total(ring)) == (15, 15)


def test_a_ring_too_big_for_memory_is_refused_not_crashed() -> None:
    made = ffi.new("da_ring **")
    with pytest.raises(dio.Error, match="no memory for a ring") as caught:
        clib.da_ring_new(made, 2**62, 8, context="ring")
    assert caught.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED and made[0] == ffi.NULL
    with pytest.raises(dio.Error, match="holds nothing") as caught:
        clib.da_ring_new(made, 0, 8, context="ring")
    assert caught.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
