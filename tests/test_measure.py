"""measure_latency reports the virtual loopback's round trip exactly."""

from __future__ import annotations

from typing import Any

import pytest

import duplexaudio as da
from duplexaudio.measure import measure_latency


@pytest.mark.parametrize(("frames", "latency"), [(128, None), (256, None), (64, 1000)])
def test_latency_of_the_virtual_loopback_is_exact_for_every_impulse(
    make_device: Any, frames: int, latency: int | None
) -> None:
    device = make_device("loopback", latency=latency)
    report = measure_latency(device, buffer_size=frames, impulses=5, interval=0.02)
    expected = latency if latency is not None else 2 * frames
    assert report.round_trips == (expected,) * 5
    assert report.reported == (expected,)
    assert report.matches_report and report.spread == 0 and report.lost == 0
    assert report.ms == pytest.approx(expected * 1000 / 48000)


def test_pipelined_latency_is_one_period_more(make_device: Any) -> None:
    device = make_device("loopback")
    report = measure_latency(device, buffer_size=128, impulses=3, interval=0.02, pipelined=True)
    assert report.round_trips == (384,) * 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"impulses": 0}, "impulses"),
        ({"interval": 0}, "interval"),
        ({"amplitude": 2}, "amplitude"),
        ({"input_channel": 5}, "input_channel"),
    ],
)
def test_bad_arguments_are_invalid_input(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(da.Error) as raised:
        measure_latency("virtual:loopback", **kwargs)
    assert raised.value.kind is da.ErrorKind.INVALID_INPUT
    assert needle in raised.value.message


def test_unknown_device_is_not_available() -> None:
    with pytest.raises(da.Error) as raised:
        measure_latency("virtual:missing")
    assert raised.value.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "virtual:missing" in raised.value.message
