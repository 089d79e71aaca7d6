"""The host contract: device ids, the registry, and validation before anything opens."""

from __future__ import annotations

import threading
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import duplexio as dio
from duplexio.hosts.virtual import VirtualDevice
from tests.conftest import os_thread_count

# Surrogates cannot be encoded; control characters (Cc) are refused in names.
_EXCLUDED: tuple[Literal["Cs"], Literal["Cc"]] = ("Cs", "Cc")
names = st.text(st.characters(exclude_categories=_EXCLUDED), min_size=1).filter(lambda s: s.strip())


@given(name=names)
def test_device_id_round_trips_through_str(name: str) -> None:
    did = dio.DeviceId(dio.HostId.VIRTUAL, name)
    assert dio.DeviceId.parse(str(did)) == did


def test_device_id_keeps_colons_after_the_host() -> None:
    did = dio.DeviceId.parse("virtual:hw:0,0")
    assert (did.host, did.name) == (dio.HostId.VIRTUAL, "hw:0,0")


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("loopback", "no host prefix"),
        ("nohost:", "unknown host"),
        ("virtual:", "non-empty name"),
        ("virtual:   ", "non-empty name"),
        (":x", "unknown host"),
        ("virtual:a\nb", "control character"),
        (42, "42"),
        (None, "None"),
    ],
)
def test_device_id_parse_rejects_malformed_ids(bad: Any, needle: str) -> None:
    with pytest.raises(dio.Error) as raised:
        dio.DeviceId.parse(bad)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert needle in raised.value.message


def test_unknown_host_id_is_invalid_input_listing_known_hosts() -> None:
    with pytest.raises(dio.Error) as raised:
        dio.host_from_id("nope")
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert "'nope'" in raised.value.message and "virtual" in raised.value.message


def test_virtual_host_is_always_available() -> None:
    assert dio.HostId.VIRTUAL in dio.available_hosts()
    assert dio.host_from_id("virtual") is dio.host_from_id(dio.HostId.VIRTUAL)


def test_default_host_falls_back_to_virtual_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    import duplexio.host as host_module

    host_module._fallback_noted = False
    with caplog.at_level("WARNING", logger="duplexio"):
        host = dio.default_host()
    real_with_devices = [
        h
        for h in dio.available_hosts()
        if h not in (dio.HostId.VIRTUAL, dio.HostId.PORTAUDIO) and dio.host_from_id(h).devices()
    ]
    if real_with_devices:
        pytest.skip(f"this machine has a real host with devices: {real_with_devices}")
    assert host.id is dio.HostId.VIRTUAL
    assert "virtual host" in caplog.text


def test_device_by_id_finds_devices_and_returns_none_for_strangers() -> None:
    host = dio.host_from_id("virtual")
    assert host.device_by_id("virtual:loopback") is not None
    assert host.device_by_id("virtual:no-such-device") is None


# -- build_*_stream validation: clear errors, nothing opened --------------------------


def nothing(*args: Any) -> None:
    pass


CONFIG = dio.DuplexStreamConfig(2, 2, 48000, dio.BufferSize.fixed(128))


@pytest.mark.parametrize(
    ("kwargs", "kind", "needle"),
    [
        ({"config": dio.StreamConfig(2, 48000)}, "INVALID_INPUT", "DuplexStreamConfig"),
        ({"callback": 3}, "INVALID_INPUT", "callback must be a callable"),
        ({"error_callback": "x"}, "INVALID_INPUT", "error_callback"),
        ({"input_format": "f16"}, "INVALID_INPUT", "'f16'"),
        ({"timeout": -1}, "INVALID_INPUT", "-1"),
        ({"deadline": 0}, "INVALID_INPUT", "(0, 1]"),
        ({"deadline": 1.5}, "INVALID_INPUT", "1.5"),
        ({"pipelined": "yes"}, "INVALID_INPUT", "'yes'"),
        (
            {"config": dio.DuplexStreamConfig(3, 2, 48000)},
            "UNSUPPORTED_CONFIG",
            "3 input channels",
        ),
        (
            {"config": dio.DuplexStreamConfig(2, 9, 48000)},
            "UNSUPPORTED_CONFIG",
            "9 output channels",
        ),
        (
            {"config": dio.DuplexStreamConfig(2, 2, 400000)},
            "UNSUPPORTED_CONFIG",
            "400000",
        ),
        (
            {"config": dio.DuplexStreamConfig(2, 2, 48000, dio.BufferSize.device(8))},
            "UNSUPPORTED_CONFIG",
            "8 frames",
        ),
        (
            {"config": dio.DuplexStreamConfig(2, 2, 48000, dio.BufferSize.device(10**6))},
            "UNSUPPORTED_CONFIG",
            "1000000 frames",
        ),
    ],
)
def test_bad_build_arguments_fail_before_anything_opens(
    loopback: VirtualDevice, kwargs: dict[str, Any], kind: str, needle: str
) -> None:
    args: dict[str, Any] = {"config": CONFIG, "callback": nothing, **kwargs}
    threads, os_threads = threading.active_count(), os_thread_count()
    with pytest.raises(dio.Error) as raised:
        loopback.build_duplex_stream(**args)
    assert raised.value.kind is dio.ErrorKind[kind]
    assert needle in raised.value.message
    assert (threading.active_count(), os_thread_count()) == (threads, os_threads)


def test_loop_shorter_than_a_block_is_unsupported(make_device: Any) -> None:
    device = make_device("loopback", latency=100)
    with pytest.raises(dio.Error) as raised:
        device.build_duplex_stream(CONFIG, nothing)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "100 frames" in raised.value.message and "128" in raised.value.message


def test_duplex_on_a_device_without_shared_clock_says_why(make_device: Any) -> None:
    device = make_device("output")
    assert not device.supports_duplex()
    with pytest.raises(dio.Error) as raised:
        device.build_duplex_stream(CONFIG, nothing)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "output-only" in raised.value.message


def test_input_stream_on_output_only_device_is_unsupported(make_device: Any) -> None:
    device = make_device("output")
    with pytest.raises(dio.Error) as raised:
        device.build_input_stream(dio.StreamConfig(2, 48000), nothing)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "has no input" in raised.value.message


def test_default_configs_prefer_48k_float32_stereo(loopback: VirtualDevice) -> None:
    cfg = loopback.default_input_config()
    assert (cfg.channels, cfg.sample_rate, cfg.sample_format) == (2, 48000, dio.SampleFormat.F32)
    assert loopback.default_duplex_config() == dio.DuplexStreamConfig(2, 2, 48000)
