"""The virtual host: its devices, their configuration, and fault-injection inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualDevice, VirtualHost


def test_standard_devices_are_listed_with_directions(virtual_host: VirtualHost) -> None:
    by_id = {str(d.id): d for d in virtual_host.devices()}
    assert {"virtual:loopback", "virtual:output", "virtual:input"} <= set(by_id)
    assert by_id["virtual:loopback"].supports_duplex()
    assert (
        by_id["virtual:output"].supports_output() and not by_id["virtual:output"].supports_input()
    )
    assert by_id["virtual:input"].supports_input() and not by_id["virtual:input"].supports_output()
    assert by_id["virtual:loopback"].description.direction == "duplex"


def test_defaults_form_a_duplex_pair(virtual_host: VirtualHost) -> None:
    assert str(virtual_host.default_duplex_device().id) == "virtual:loopback"  # type: ignore[union-attr]
    assert virtual_host.default_input_device() is virtual_host.default_output_device()


def test_every_sample_format_is_offered(virtual_host: VirtualHost) -> None:
    device = virtual_host.device_by_id("virtual:loopback")
    assert device is not None
    formats = {r.sample_format for r in device.supported_output_configs()}
    assert formats == set(dio.SampleFormat)
    r = device.supported_input_configs()[0]
    assert (r.min_channels, r.max_channels) == (1, 2)
    assert (r.buffer_size.min_frames, r.buffer_size.max_frames) == (16, 8192)


def test_custom_device_ranges_are_reported_and_enforced(make_device: Any) -> None:
    device = make_device(
        "loopback",
        channels=8,
        sample_rates=(44100, 96000),
        buffer_sizes=(32, 512),
        default_sample_rate=96000,
        default_buffer_size=64,
    )
    r = device.supported_input_configs()[0]
    assert (r.max_channels, r.min_sample_rate, r.max_sample_rate) == (8, 44100, 96000)
    assert device.default_output_config().sample_rate == 96000
    with pytest.raises(dio.Error) as raised:
        device.build_duplex_stream(
            dio.DuplexStreamConfig(8, 8, 48000, dio.BufferSize.device(16)), lambda i, o, n: None
        )
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "16 frames" in raised.value.message and "32..512" in raised.value.message


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"channels": 0}, "channels"),
        ({"sample_rates": (48000, 8000)}, "min 48000 > max 8000"),
        ({"sample_rates": 48000}, "(min, max)"),
        ({"default_sample_rate": 4000}, "outside"),
        ({"default_buffer_size": 8}, "outside"),
        ({"latency": 0}, "latency"),
    ],
)
def test_bad_device_options_are_invalid_input(
    virtual_host: VirtualHost, options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(dio.Error) as raised:
        virtual_host.add_loopback("bad-options", **options)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert needle in raised.value.message
    assert virtual_host.device_by_id("virtual:bad-options") is None


def test_duplicate_device_names_are_refused(make_device: Any, virtual_host: VirtualHost) -> None:
    device = make_device("output")
    with pytest.raises(dio.Error) as raised:
        virtual_host.add_output(device.id.name)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT


def test_signal_shape_is_checked(make_device: Any) -> None:
    device = make_device("input", channels=2)
    with pytest.raises(dio.Error) as raised:
        device.set_signal(np.zeros((10, 3)))
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT and "(10, 3)" in raised.value.message
    with pytest.raises(dio.Error):
        device.set_signal(np.zeros((0, 1)))
    loop = make_device("loopback")
    with pytest.raises(dio.Error) as not_input:
        loop.set_signal(np.zeros(4))
    assert not_input.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION


def test_fault_arguments_are_checked(make_device: Any) -> None:
    device: VirtualDevice = make_device("loopback", buffer_sizes=(16, 1024))
    cases: tuple[tuple[Callable[[], object], str], ...] = (
        (lambda: device.change_buffer_size(4096), "4096"),
        (lambda: device.change_sample_rate(1), "1"),
        (lambda: device.stall(-1), "-1"),
    )
    for call, needle in cases:
        with pytest.raises(dio.Error) as raised:
            call()
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
        assert needle in raised.value.message


def test_buffer_size_change_becomes_the_new_default(make_device: Any) -> None:
    device = make_device("loopback")
    device.change_buffer_size(512)
    stream = device.build_duplex_stream(dio.DuplexStreamConfig(1, 1, 48000), lambda i, o, n: None)
    assert stream.buffer_size == 512
    stream.close()


def test_removed_device_disappears(virtual_host: VirtualHost) -> None:
    virtual_host.add_output("to-remove")
    virtual_host.remove_device("virtual:to-remove")
    assert virtual_host.device_by_id("virtual:to-remove") is None
    with pytest.raises(dio.Error):
        virtual_host.remove_device("virtual:to-remove")
