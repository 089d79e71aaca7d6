"""Behaviour of duplexio.config: requests, device ranges, and check_config."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duplexio.config import (
    STANDARD_SAMPLE_RATES,
    BufferSize,
    DuplexStreamConfig,
    StreamConfig,
    SupportedBufferSize,
    SupportedStreamConfig,
    SupportedStreamConfigRange,
    check_config,
)
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat

BAD_COUNTS: list[Any] = [0, -1, -64, True, False, 2.0, 2.5, "2", None, np.float64(2.0)]
# A whole-number float (48000.0) is a rate; a fractional one is not.
BAD_RATES: list[Any] = [0, -48000, True, 44100.5, float("inf"), "48000", None, 10_000_001, 2**64]
BAD_FRAMES: list[Any] = [0, -1, -256, True, False, 256.5, 256.0, "256", None, np.float32(256)]


def assert_error(info: pytest.ExceptionInfo[Error], kind: ErrorKind, *parts: str) -> None:
    assert info.value.kind is kind
    for part in parts:
        assert part in info.value.message, (part, info.value.message)


# --- BufferSize ----------------------------------------------------------------


def test_default_buffer_size_is_one_shared_instance() -> None:
    assert BufferSize.DEFAULT.is_default
    assert BufferSize.DEFAULT.frames is None
    assert repr(BufferSize.DEFAULT) == "BufferSize.DEFAULT"
    assert pickle.loads(pickle.dumps(BufferSize.DEFAULT)) is BufferSize.DEFAULT
    assert copy.deepcopy(BufferSize.DEFAULT) is BufferSize.DEFAULT


def test_fixed_buffer_size_is_a_request_for_that_many_frames() -> None:
    size = BufferSize.fixed(256)
    assert size.frames == 256
    assert not size.is_default
    assert repr(size) == "BufferSize.fixed(256)"
    assert size == BufferSize.fixed(256)
    assert size != BufferSize.fixed(128)
    assert size != BufferSize.DEFAULT
    assert hash(size) == hash(BufferSize.fixed(256))
    assert pickle.loads(pickle.dumps(size)) == size


def test_fixed_buffer_size_accepts_numpy_integers_as_plain_ints() -> None:
    size = BufferSize.fixed(np.int64(512))
    assert size.frames == 512
    assert type(size.frames) is int
    assert BufferSize.fixed(np.uint16(64)).frames == 64


def test_fixed_buffer_size_rejects_zero_with_invalid_input() -> None:
    with pytest.raises(Error) as info:
        BufferSize.fixed(0)
    assert_error(info, ErrorKind.INVALID_INPUT, "0", "a whole number of frames in 1..1048576")


@pytest.mark.parametrize("bad", BAD_FRAMES)
def test_fixed_buffer_size_rejects_non_positive_and_non_integer_frames(bad: Any) -> None:
    with pytest.raises(Error) as info:
        BufferSize.fixed(bad)
    assert_error(info, ErrorKind.INVALID_INPUT, repr(bad), "a whole number of frames in 1..1048576")


def test_buffer_size_cannot_be_constructed_or_changed_directly() -> None:
    with pytest.raises(Error) as info:
        BufferSize(256)  # type: ignore[arg-type]
    assert_error(info, ErrorKind.INVALID_INPUT, "BufferSize.fixed")
    size = BufferSize.fixed(64)
    with pytest.raises(AttributeError):
        size._frames = 128
    with pytest.raises(AttributeError):
        size.frames = 128  # type: ignore[misc]


# --- StreamConfig and DuplexStreamConfig ---------------------------------------


def test_stream_config_defaults_to_the_default_buffer_size() -> None:
    config = StreamConfig(2, 48000)
    assert config.channels == 2
    assert config.sample_rate == 48000
    assert config.buffer_size is BufferSize.DEFAULT


def test_stream_config_normalises_numpy_integers_to_int() -> None:
    config = StreamConfig(np.int32(2), np.int64(44100), BufferSize.fixed(np.int16(64)))
    assert type(config.channels) is int
    assert type(config.sample_rate) is int
    assert config == StreamConfig(2, 44100, BufferSize.fixed(64))


def test_stream_config_is_frozen_and_hashable() -> None:
    config = StreamConfig(2, 48000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.channels = 4  # type: ignore[misc]
    assert hash(config) == hash(StreamConfig(2, 48000))


def test_stream_config_accepts_the_extreme_rates() -> None:
    assert StreamConfig(1, 1).sample_rate == 1
    assert StreamConfig(1, 10_000_000).sample_rate == 10_000_000


@pytest.mark.parametrize("bad", BAD_COUNTS)
def test_stream_config_rejects_bad_channels_naming_field_and_value(bad: Any) -> None:
    with pytest.raises(Error) as info:
        StreamConfig(bad, 48000)
    assert_error(info, ErrorKind.INVALID_INPUT, "channels", repr(bad), "in 1..4096")


@pytest.mark.parametrize("bad", BAD_RATES)
def test_stream_config_rejects_bad_sample_rates_naming_field_and_value(bad: Any) -> None:
    with pytest.raises(Error) as info:
        StreamConfig(2, bad)
    assert_error(info, ErrorKind.INVALID_INPUT, "sample_rate", repr(bad), "1..10000000")


@pytest.mark.parametrize("bad", [256.0, None, "default", SupportedBufferSize.UNKNOWN])
def test_stream_config_rejects_a_buffer_size_that_is_not_a_buffer_size(bad: Any) -> None:
    with pytest.raises(Error) as info:
        StreamConfig(2, 48000, bad)
    assert_error(info, ErrorKind.INVALID_INPUT, "buffer_size", repr(bad), "BufferSize.fixed")


def test_an_int_buffer_size_is_a_fixed_one_and_checked_as_one() -> None:
    assert StreamConfig(2, 48000, 256).buffer_size == BufferSize.fixed(256)  # type: ignore[arg-type]
    assert StreamConfig(2, 48000, np.int16(64)).buffer_size == BufferSize.fixed(64)
    for bad in (0, -1, 1 << 21):
        with pytest.raises(Error) as info:
            StreamConfig(2, 48000, bad)  # type: ignore[arg-type]
        assert_error(info, ErrorKind.INVALID_INPUT, "buffer size", str(bad))


def test_duplex_config_splits_into_input_and_output_configs() -> None:
    duplex = DuplexStreamConfig(1, 2, 48000, BufferSize.fixed(128))
    assert duplex.input_config() == StreamConfig(1, 48000, BufferSize.fixed(128))
    assert duplex.output_config() == StreamConfig(2, 48000, BufferSize.fixed(128))
    assert DuplexStreamConfig(2, 2, 44100).buffer_size is BufferSize.DEFAULT


def test_duplex_config_normalises_numpy_integers_to_int() -> None:
    duplex = DuplexStreamConfig(np.int8(1), np.uint8(2), np.int64(96000))
    assert (type(duplex.input_channels), type(duplex.output_channels)) == (int, int)
    assert type(duplex.sample_rate) is int


@pytest.mark.parametrize("field", ["input_channels", "output_channels"])
@pytest.mark.parametrize("bad", BAD_COUNTS)
def test_duplex_config_rejects_bad_channel_counts_naming_the_field(field: str, bad: Any) -> None:
    kwargs: dict[str, Any] = {"input_channels": 2, "output_channels": 2, "sample_rate": 48000}
    kwargs[field] = bad
    with pytest.raises(Error) as info:
        DuplexStreamConfig(**kwargs)
    assert_error(info, ErrorKind.INVALID_INPUT, field, repr(bad), "in 1..4096")


@pytest.mark.parametrize("bad", BAD_RATES)
def test_duplex_config_rejects_bad_sample_rates(bad: Any) -> None:
    with pytest.raises(Error) as info:
        DuplexStreamConfig(2, 2, bad)
    assert_error(info, ErrorKind.INVALID_INPUT, "sample_rate", repr(bad))


@pytest.mark.parametrize("bad", [64.0, None, "default"])
def test_duplex_config_rejects_a_buffer_size_that_is_not_a_buffer_size(bad: Any) -> None:
    with pytest.raises(Error) as info:
        DuplexStreamConfig(2, 2, 48000, bad)
    assert_error(info, ErrorKind.INVALID_INPUT, "buffer_size", repr(bad))


@given(
    channels=st.integers(1, 1024),
    rate=st.integers(1, 10_000_000),
    frames=st.one_of(st.none(), st.integers(1, 2**20)),
)
def test_any_valid_config_is_accepted_unchanged(
    channels: int, rate: int, frames: int | None
) -> None:
    size = BufferSize.DEFAULT if frames is None else BufferSize.fixed(frames)
    config = StreamConfig(channels, rate, size)
    assert (config.channels, config.sample_rate, config.buffer_size.frames) == (
        channels,
        rate,
        frames,
    )


# --- SupportedBufferSize --------------------------------------------------------


def test_supported_buffer_size_range_contains_its_inclusive_bounds() -> None:
    sizes = SupportedBufferSize.range(64, 4096)
    assert (sizes.min_frames, sizes.max_frames) == (64, 4096)
    assert not sizes.is_unknown
    assert sizes.contains(64)
    assert sizes.contains(4096)
    assert not sizes.contains(63)
    assert not sizes.contains(4097)
    assert str(sizes) == "64..4096 frames"
    assert repr(sizes) == "SupportedBufferSize.range(64, 4096)"
    assert sizes == SupportedBufferSize.range(64, 4096)
    assert pickle.loads(pickle.dumps(sizes)) == sizes


def test_unknown_supported_buffer_size_lets_every_size_through() -> None:
    unknown = SupportedBufferSize.UNKNOWN
    assert unknown.is_unknown
    assert unknown.min_frames is None
    assert unknown.contains(1)
    assert unknown.contains(1 << 20)
    assert str(unknown) == "unknown"
    assert repr(unknown) == "SupportedBufferSize.UNKNOWN"
    assert pickle.loads(pickle.dumps(unknown)) is unknown


@pytest.mark.parametrize(("lo", "hi"), [(0, 64), (64, 0), (128, 64), (1.5, 64), (True, 64)])
def test_supported_buffer_size_rejects_impossible_ranges(lo: Any, hi: Any) -> None:
    with pytest.raises(Error) as info:
        SupportedBufferSize.range(lo, hi)
    assert info.value.kind is ErrorKind.INVALID_INPUT


# --- SupportedStreamConfigRange -------------------------------------------------


def make_range(
    channels: tuple[int, int] = (1, 2),
    rates: tuple[int, int] = (8000, 96000),
    sizes: SupportedBufferSize | None = None,
    fmt: SampleFormat = SampleFormat.F32,
) -> SupportedStreamConfigRange:
    return SupportedStreamConfigRange(
        channels[0],
        channels[1],
        rates[0],
        rates[1],
        SupportedBufferSize.range(16, 4096) if sizes is None else sizes,
        fmt,
    )


def test_standard_sample_rates_prefer_48000_then_44100() -> None:
    assert STANDARD_SAMPLE_RATES == (48000, 44100)


def test_with_standard_sample_rate_prefers_48000() -> None:
    assert make_range(rates=(8000, 192000)).with_standard_sample_rate().sample_rate == 48000
    assert make_range(rates=(48000, 48000)).with_standard_sample_rate().sample_rate == 48000


def test_with_standard_sample_rate_falls_back_to_44100() -> None:
    assert make_range(rates=(8000, 44100)).with_standard_sample_rate().sample_rate == 44100
    assert make_range(rates=(44100, 44100)).with_standard_sample_rate().sample_rate == 44100


def test_with_standard_sample_rate_falls_back_to_the_highest_rate() -> None:
    assert make_range(rates=(88200, 192000)).with_standard_sample_rate().sample_rate == 192000
    assert make_range(rates=(8000, 22050)).with_standard_sample_rate().sample_rate == 22050
    assert make_range(rates=(44101, 47999)).with_standard_sample_rate().sample_rate == 47999


def test_with_max_sample_rate_picks_the_top_of_the_range() -> None:
    assert make_range(rates=(8000, 96000)).with_max_sample_rate().sample_rate == 96000


def test_with_sample_rate_carries_buffer_sizes_and_format() -> None:
    sizes = SupportedBufferSize.range(32, 1024)
    config = make_range(sizes=sizes, fmt=SampleFormat.I16).with_sample_rate(44100)
    assert config == SupportedStreamConfig(2, 44100, sizes, SampleFormat.I16)


@pytest.mark.parametrize(
    ("channels", "picked"), [((1, 1), 1), ((1, 2), 2), ((1, 8), 2), ((2, 64), 2), ((4, 8), 4)]
)
def test_picked_configs_are_stereo_where_the_range_allows(
    channels: tuple[int, int], picked: int
) -> None:
    assert make_range(channels=channels).with_max_sample_rate().channels == picked


@pytest.mark.parametrize("rate", [7999, 96001, 1, 10_000_000])
def test_with_sample_rate_outside_the_range_is_unsupported_config(rate: int) -> None:
    with pytest.raises(Error) as info:
        make_range(rates=(8000, 96000)).with_sample_rate(rate)
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, f"{rate} Hz", "8000..96000 Hz")


@pytest.mark.parametrize("bad", [0, 48000.5, True, "48000"])
def test_with_sample_rate_rejects_non_rates_as_invalid_input(bad: Any) -> None:
    with pytest.raises(Error) as info:
        make_range().with_sample_rate(bad)
    assert_error(info, ErrorKind.INVALID_INPUT, repr(bad))


def test_range_supports_its_inclusive_bounds() -> None:
    r = make_range(channels=(2, 8), rates=(44100, 48000))
    assert r.supports_channels(2)
    assert r.supports_channels(8)
    assert not r.supports_channels(1)
    assert not r.supports_channels(9)
    assert r.supports_rate(44100)
    assert r.supports_rate(48000)
    assert not r.supports_rate(44099)
    assert not r.supports_rate(48001)


@pytest.mark.parametrize(
    ("channels", "rates"),
    [((0, 2), (8000, 48000)), ((3, 2), (8000, 48000)), ((1, 2), (48000, 8000)), ((1, 2), (0, 1))],
)
def test_range_rejects_impossible_bounds(channels: tuple[int, int], rates: tuple[int, int]) -> None:
    with pytest.raises(Error) as info:
        make_range(channels=channels, rates=rates)
    assert info.value.kind is ErrorKind.INVALID_INPUT


def test_supported_config_makes_a_request_with_the_given_buffer_size() -> None:
    supported = SupportedStreamConfig(2, 48000, SupportedBufferSize.UNKNOWN, SampleFormat.F32)
    assert supported.config() == StreamConfig(2, 48000)
    assert supported.config(BufferSize.fixed(64)) == StreamConfig(2, 48000, BufferSize.fixed(64))


# --- check_config -------------------------------------------------------------

DEVICE = "virtual:loopback"
RANGES = [
    make_range(channels=(1, 2), rates=(44100, 48000), fmt=SampleFormat.F32),
    make_range(channels=(1, 2), rates=(44100, 48000), fmt=SampleFormat.I16),
]


def check(
    config: StreamConfig,
    fmt: SampleFormat = SampleFormat.F32,
    ranges: list[SupportedStreamConfigRange] | None = None,
    direction: str = "input",
) -> None:
    check_config(
        config, RANGES if ranges is None else ranges, fmt, device=DEVICE, direction=direction
    )


def test_check_config_accepts_a_config_inside_a_range() -> None:
    check(StreamConfig(2, 48000, BufferSize.fixed(256)))
    check(StreamConfig(1, 44100), SampleFormat.I16)
    check(StreamConfig(2, 48000, BufferSize.fixed(16)))
    check(StreamConfig(2, 48000, BufferSize.fixed(4096)))


def test_check_config_rejects_a_sample_format_listing_the_accepted_ones() -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 48000), SampleFormat.I24)
    assert_error(
        info, ErrorKind.UNSUPPORTED_CONFIG, repr(DEVICE), "input", "I24", "accepts F32, I16"
    )


@pytest.mark.parametrize("channels", [3, 64])
def test_check_config_rejects_too_many_channels_naming_the_accepted_range(channels: int) -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(channels, 48000))
    assert_error(
        info,
        ErrorKind.UNSUPPORTED_CONFIG,
        f"device {DEVICE!r} cannot do {channels} input channels; it accepts 1..2",
    )


def test_check_config_rejects_too_few_channels() -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(1, 48000), ranges=[make_range(channels=(2, 8))], direction="output")
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, "1 output channel;", "accepts 2..8")


@pytest.mark.parametrize("rate", [8000, 44099, 48001, 192000])
def test_check_config_rejects_a_sample_rate_naming_the_accepted_range(rate: int) -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(2, rate))
    assert_error(
        info, ErrorKind.UNSUPPORTED_CONFIG, repr(DEVICE), f"{rate} Hz", "accepts 44100..48000 Hz"
    )


@pytest.mark.parametrize("frames", [2, 8, 15, 4097, 1 << 20])
def test_check_config_rejects_a_device_period_outside_the_range(frames: int) -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 48000, BufferSize.device(frames)))
    assert_error(
        info,
        ErrorKind.UNSUPPORTED_CONFIG,
        repr(DEVICE),
        "input",
        f"device period {frames} frames is outside 16..4096 frames",
        f"BufferSize.fixed({frames})",
    )
    # A block size alone is re-blocked from whatever period the device runs.
    check(StreamConfig(2, 48000, BufferSize.fixed(frames)))
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 48000, BufferSize.fixed(256, device_period=frames)))
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, f"device period {frames} frame")


def test_check_config_always_passes_the_default_buffer_size() -> None:
    check(StreamConfig(2, 48000, BufferSize.DEFAULT))


def test_check_config_passes_any_fixed_size_when_the_device_does_not_say() -> None:
    ranges = [make_range(sizes=SupportedBufferSize.UNKNOWN)]
    check(StreamConfig(2, 48000, BufferSize.fixed(7)), ranges=ranges)


def test_check_config_reports_format_before_channels_rate_and_buffer_size() -> None:
    bad_everything = StreamConfig(9, 7, BufferSize.fixed(1))
    with pytest.raises(Error) as info:
        check(bad_everything, SampleFormat.U8)
    assert "format U8" in info.value.message
    with pytest.raises(Error) as info:
        check(bad_everything)
    assert "9 input channels" in info.value.message
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 7, BufferSize.fixed(1)))
    assert "7 Hz" in info.value.message
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 48000, BufferSize.device(1)))
    assert "device period 1 frame is outside 16..4096 frames" in info.value.message


def test_check_config_finds_a_fit_in_any_of_several_ranges() -> None:
    ranges = [
        make_range(channels=(1, 2), rates=(44100, 48000), sizes=SupportedBufferSize.range(64, 128)),
        make_range(channels=(4, 8), rates=(96000, 96000), sizes=SupportedBufferSize.range(16, 32)),
    ]
    check(StreamConfig(8, 96000, BufferSize.fixed(16)), ranges=ranges)
    check(StreamConfig(2, 44100, BufferSize.fixed(128)), ranges=ranges)
    with pytest.raises(Error) as info:
        check(StreamConfig(3, 48000), ranges=ranges)
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, "3 input channels", "accepts 1..2, 4..8")
    with pytest.raises(Error) as info:
        # Rates are reported from the ranges that can do 8 channels only.
        check(StreamConfig(8, 48000), ranges=ranges)
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, "48000 Hz", "accepts 96000 Hz")
    with pytest.raises(Error) as info:
        check(StreamConfig(8, 96000, BufferSize.device(64)), ranges=ranges)
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, "64 frames is outside 16..32 frames")


def test_check_config_merges_overlapping_ranges_in_its_message() -> None:
    ranges = [make_range(channels=(1, 2)), make_range(channels=(2, 4))]
    with pytest.raises(Error) as info:
        check(StreamConfig(5, 48000), ranges=ranges)
    assert "accepts 1..4" in info.value.message


def test_check_config_rejects_everything_for_a_device_without_ranges() -> None:
    with pytest.raises(Error) as info:
        check(StreamConfig(2, 48000), ranges=[], direction="output")
    assert_error(info, ErrorKind.UNSUPPORTED_CONFIG, repr(DEVICE), "output")
