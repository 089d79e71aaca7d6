"""Behaviour of duplexio.timing: block timestamps, latency, frame/ns conversion."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duplexio.errors import Error, ErrorKind
from duplexio.timing import (
    CallbackInfo,
    CallbackTimestamp,
    DuplexCallbackInfo,
    StreamLatency,
    frames_to_ns,
    ns_to_frames,
)


def round_half_up(x: Fraction) -> int:
    return int((x + Fraction(1, 2)).__floor__())


def duplex(
    in_device: int, out_device: int, *, in_xrun: bool = False, out_xrun: bool = False
) -> DuplexCallbackInfo:
    return DuplexCallbackInfo(
        CallbackInfo(CallbackTimestamp(1_000, in_device), in_xrun, 64),
        CallbackInfo(CallbackTimestamp(1_000, out_device), out_xrun, 64),
    )


# --- timestamps and callback info ---------------------------------------------


def test_timestamp_holds_callback_and_device_instants_in_ns() -> None:
    ts = CallbackTimestamp(123, 456)
    assert (ts.callback, ts.device) == (123, 456)
    assert repr(ts) == "CallbackTimestamp(callback=123, device=456)"


def test_timestamps_compare_by_value() -> None:
    assert CallbackTimestamp(1, 2) == CallbackTimestamp(1, 2)
    assert CallbackTimestamp(1, 2) != CallbackTimestamp(1, 3)
    assert CallbackTimestamp(1, 2) != (1, 2)
    assert hash(CallbackTimestamp(1, 2)) == hash(CallbackTimestamp(1, 2))


def test_block_info_objects_are_slotted_and_carry_no_dict() -> None:
    ts = CallbackTimestamp(1, 2)
    info = CallbackInfo(ts, False, 64)
    objects: list[Any] = [ts, info, DuplexCallbackInfo(info, info)]
    for obj in objects:
        assert not hasattr(obj, "__dict__")
        with pytest.raises(AttributeError):
            obj.extra = 1


def test_callback_info_holds_timestamp_xrun_and_frames() -> None:
    ts = CallbackTimestamp(10, 20)
    info = CallbackInfo(ts, True, 256)
    assert info.timestamp is ts
    assert info.xrun is True
    assert info.frames == 256
    assert info == CallbackInfo(CallbackTimestamp(10, 20), True, 256)
    assert info != CallbackInfo(ts, False, 256)
    assert "xrun=True" in repr(info)
    assert "frames=256" in repr(info)


@pytest.mark.parametrize(
    ("in_xrun", "out_xrun", "expected"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_duplex_info_reports_an_xrun_in_either_direction(
    in_xrun: bool, out_xrun: bool, expected: bool
) -> None:
    assert duplex(0, 0, in_xrun=in_xrun, out_xrun=out_xrun).xrun is expected


def test_duplex_round_trip_is_playback_instant_minus_capture_instant() -> None:
    assert duplex(1_000_000, 6_333_333).round_trip_ns == 5_333_333
    assert duplex(5, 5).round_trip_ns == 0


def test_duplex_info_compares_by_value_and_shows_both_directions() -> None:
    assert duplex(1, 2) == duplex(1, 2)
    assert duplex(1, 2) != duplex(1, 3)
    assert "input=" in repr(duplex(1, 2))
    assert "output=" in repr(duplex(1, 2))


# --- latency ------------------------------------------------------------------


def test_stream_latency_round_trip_is_input_plus_output_frames() -> None:
    latency = StreamLatency(input=128, output=256)
    assert latency.round_trip == 384
    assert tuple(latency) == (128, 256)
    inp, out = latency
    assert (inp, out) == (128, 256)


# --- frames and nanoseconds ---------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "rate", "ns"),
    [
        (0, 48000, 0),
        (48000, 48000, 1_000_000_000),
        (3, 48000, 62_500),
        (1, 48000, 20_833),  # 20833.33...
        (2, 48000, 41_667),  # 41666.66...
        (1, 44100, 22_676),  # 22675.73...
        (1, 2_000_000, 500),
        (1, 3, 333_333_333),
        (2, 3, 666_666_667),
        (-1, 48000, -20_833),
        (-2, 48000, -41_667),
    ],
)
def test_frames_to_ns_rounds_to_the_nearest_ns(frames: int, rate: int, ns: int) -> None:
    assert frames_to_ns(frames, rate) == ns


def test_frames_to_ns_rounds_exact_halves_up() -> None:
    # 1 frame at 16 MHz... is not a valid stream rate, but the arithmetic is
    # the same: 62.5 ns rounds up to 63 and -62.5 to -62.
    assert frames_to_ns(1, 16_000_000) == 63
    assert frames_to_ns(-1, 16_000_000) == -62


@pytest.mark.parametrize(
    ("ns", "rate", "frames"),
    [
        (0, 48000, 0),
        (1_000_000_000, 48000, 48000),
        (20_833, 48000, 1),
        (10_416, 48000, 0),  # 0.49997 frames
        (10_417, 48000, 1),  # 0.50002 frames
        (500_000_000, 3, 2),  # exactly 1.5 rounds up
        (-500_000_000, 3, -1),  # exactly -1.5 rounds up too
        (5_333_333, 48000, 256),
    ],
)
def test_ns_to_frames_rounds_to_the_nearest_frame(ns: int, rate: int, frames: int) -> None:
    assert ns_to_frames(ns, rate) == frames


@given(frames=st.integers(-(2**40), 2**40), rate=st.integers(1, 10_000_000))
def test_frames_to_ns_is_exact_integer_rounding(frames: int, rate: int) -> None:
    assert frames_to_ns(frames, rate) == round_half_up(Fraction(frames * 10**9, rate))


@given(ns=st.integers(-(2**62), 2**62), rate=st.integers(1, 10_000_000))
def test_ns_to_frames_is_exact_integer_rounding(ns: int, rate: int) -> None:
    assert ns_to_frames(ns, rate) == round_half_up(Fraction(ns * rate, 10**9))


@given(frames=st.integers(-(2**40), 2**40), rate=st.integers(1, 10_000_000))
def test_frames_survive_a_trip_through_ns(frames: int, rate: int) -> None:
    assert ns_to_frames(frames_to_ns(frames, rate), rate) == frames


def test_conversions_accept_numpy_integers_and_return_int() -> None:
    result = frames_to_ns(np.int64(48000), np.int32(48000))
    assert result == 1_000_000_000
    assert type(result) is int
    assert type(ns_to_frames(np.int64(10**9), np.int64(48000))) is int


@pytest.mark.parametrize("rate", [0, -48000])
def test_conversions_reject_rates_below_one_hz(rate: int) -> None:
    for convert in (frames_to_ns, ns_to_frames):
        with pytest.raises(Error) as info:
            convert(1, rate)
        assert info.value.kind is ErrorKind.INVALID_INPUT
        assert str(rate) in info.value.message


@pytest.mark.parametrize("bad", [1.5, 48000.0, "48000", None])
def test_conversions_reject_non_integers(bad: Any) -> None:
    for convert in (frames_to_ns, ns_to_frames):
        with pytest.raises(Error) as info:
            convert(bad, 48000)
        assert info.value.kind is ErrorKind.INVALID_INPUT
        with pytest.raises(Error) as info:
            convert(1, bad)
        assert info.value.kind is ErrorKind.INVALID_INPUT
        assert repr(bad) in info.value.message
