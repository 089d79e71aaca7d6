"""The device table, picking a device the way a user names it, dio.default, dio.wait/stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import duplexio as dio
from duplexio.devices import find_device
from duplexio.hosts.virtual import VirtualHost
from support.servers import JackServer, PulseServer

RATE = 48000


@pytest.fixture(autouse=True)
def clean_defaults() -> Iterator[None]:
    dio.default.reset()
    yield
    dio.default.reset()
    dio.stop()


def test_the_table_lists_every_usable_hosts_devices_numbered(
    jackd_128: JackServer, pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    listed = dio.query_devices()
    ids = [str(d.id) for d in listed]
    assert f"jack:{jackd_128.name}/loopback" in ids
    assert f"pulse:{pulseaudio.sink}" in ids
    assert "virtual:loopback" in ids
    assert all(isinstance(d, dio.Device) for d in listed) and len(listed) == len(ids)
    lines = str(listed).splitlines()
    assert lines[0].split()[:3] == ["#", "id", "name"]
    for n, dev in enumerate(listed):
        assert lines[n + 1].split()[:2] == [str(n), str(dev.id)]
    assert repr(listed) == str(listed)
    # Each host marks its own defaults; the default host's carry a star.
    marked = [line for line in lines[1:-1] if line.rstrip().endswith(("in", "out", "duplex"))]
    assert any("*" in line for line in marked)
    # One host's devices only.
    assert {d.id.host for d in dio.query_devices("virtual")} == {dio.HostId.VIRTUAL}


def test_a_device_is_picked_by_index_name_part_or_id(virtual_host: VirtualHost) -> None:
    virtual_host.add_loopback("studio monitor", description="x")
    listed = dio.query_devices()
    index = next(n for n, d in enumerate(listed) if str(d.id) == "virtual:studio monitor")
    assert find_device(index, direction="duplex").id == listed[index].id
    assert str(find_device("STUDIO mon", direction="duplex").id) == "virtual:studio monitor"
    assert str(find_device("virtual:studio monitor", direction="duplex").id).endswith("monitor")
    # A name that is also a part of others: the exact one wins.
    assert str(find_device("virtual:loopback", direction="duplex").id) == "virtual:loopback"
    virtual_host.remove_device("virtual:studio monitor")


def test_an_ambiguous_or_unknown_name_lists_the_candidates(virtual_host: VirtualHost) -> None:
    virtual_host.add_loopback("mic one")
    virtual_host.add_loopback("mic two")
    try:
        with pytest.raises(dio.Error) as raised:
            find_device("mic", direction="input")
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
        assert "'virtual:mic one'" in raised.value.message
        assert "'virtual:mic two'" in raised.value.message
        with pytest.raises(dio.Error) as raised:
            find_device("no such thing", direction="input")
        assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
        assert "'virtual:mic one'" in raised.value.message  # what there is
        with pytest.raises(dio.Error) as raised:
            find_device(10**6, direction="input")
        assert "index" in raised.value.message
    finally:
        virtual_host.remove_device("virtual:mic one")
        virtual_host.remove_device("virtual:mic two")


def test_a_sample_format_in_the_device_place_says_so() -> None:
    # sounddevice's sd.rec(n, fs, 1, 'int16'): here the fourth positional is the device.
    with pytest.raises(dio.Error) as raised:
        dio.rec(256, RATE, 1, "int16")
    assert "sample_format=" in raised.value.message


def test_rec_by_index_and_by_name(virtual_host: VirtualHost) -> None:
    listed = dio.query_devices("virtual")
    index = next(n for n, d in enumerate(dio.query_devices()) if str(d.id) == "virtual:input")
    assert listed  # the virtual host's devices are in the full table too
    assert dio.rec(128, RATE, 2, index).shape == (128, 2)
    assert dio.rec(128, RATE, 2, "Virtual input").shape == (128, 2)


def test_defaults_fill_in_what_calls_leave_out(virtual_host: VirtualHost) -> None:
    dio.default.device = "virtual:loopback"
    dio.default.sample_rate = 44100
    dio.default.channels = 1
    dio.default.buffer_size = 64
    dio.default.sample_format = "int16"
    stream = dio.rec(441, blocking=False)
    assert (stream.sample_rate, stream.input_channels, stream.buffer_size) == (44100, 1, 64)
    assert stream.device == "virtual:loopback"
    assert dio.wait(10) is True
    assert stream.recording.shape == (441, 1) and stream.recording.dtype == np.int16
    # Direction-specific defaults override the general one.
    dio.default.input_device = "virtual:input"
    assert dio.rec(64, blocking=False).device == "virtual:input"
    dio.default.reset()
    assert dio.rec(64, blocking=False).sample_rate == 48000  # the device's default


def test_files_use_the_defaults_too(virtual_host: VirtualHost, tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    dio.default.device = "virtual:loopback"
    dio.default.sample_rate = 44100
    dio.default.channels = 1
    took = dio.record_file(tmp_path / "take.wav", 0.1)
    assert (took.sample_rate, took.device_rate, took.channels) == (44100, 44100, 1)
    assert dio.play_file(tmp_path / "take.wav").device_rate == 44100
    dio.default.buffer_size = 2**21  # beyond any block size: refused, so it was used
    calls: list[Callable[[], object]] = [
        lambda: dio.record_file(tmp_path / "never.wav", 0.1),
        lambda: dio.play_file(tmp_path / "take.wav"),
    ]
    for call in calls:
        with pytest.raises(dio.Error) as raised:
            call()
        assert str(2**21) in raised.value.message
    assert not (tmp_path / "never.wav").exists()


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("samplerate", 48000, "no 'samplerate'"),
        ("sample_rate", 0, "sample_rate"),
        ("channels", 1.5, "channels"),
        ("sample_format", "int17", "int17"),
        ("device", 1.0, "device"),
        ("device", True, "device"),
    ],
)
def test_a_default_that_cannot_work_is_refused_when_set(
    name: str, value: object, needle: str
) -> None:
    with pytest.raises(dio.Error) as raised:
        setattr(dio.default, name, value)
    assert raised.value.kind in (dio.ErrorKind.INVALID_INPUT, dio.ErrorKind.UNSUPPORTED_CONFIG)
    assert needle in raised.value.message


def test_wait_and_stop_reach_the_last_non_blocking_call(loopback: dio.Device) -> None:
    assert dio.wait() is True  # none running: nothing to wait for
    stream = dio.play(np.zeros(RATE // 10, np.float32), RATE, loopback, blocking=False)
    assert dio.wait(10) is True and stream.finished
    long = dio.play(np.zeros(RATE * 60, np.float32), RATE, loopback, blocking=False)
    time.sleep(0.1)
    assert dio.wait(0.05) is False and long.running
    dio.stop()
    assert long.closed
    assert dio.wait() is True


def test_stop_from_another_thread_ends_a_blocking_rec_early(virtual_host: VirtualHost) -> None:
    """As ``sd.stop()`` does: a minute's take blocking in its caller ends when
    another thread calls ``dio.stop()``, without an error, with what it got."""
    mic = virtual_host.add_input("stop-me", signal=np.full(RATE, 0.25, np.float32))
    try:
        stopper = threading.Timer(0.3, dio.stop)
        stopper.start()
        started = time.monotonic()
        take = dio.rec(RATE * 60, RATE, 1, mic)
        stopper.join()
    finally:
        virtual_host.remove_device(mic.id)
    assert time.monotonic() - started < 30  # not the minute asked for
    assert take.shape == (RATE * 60, 1)
    got = np.count_nonzero(take[:, 0] == np.float32(0.25))
    assert 0 < got < RATE * 30, got  # the part before the stop; the rest stays zero
    assert dio.wait() is True  # nothing left running


def test_a_blocking_call_leaves_the_non_blocking_one_reachable(loopback: dio.Device) -> None:
    long = dio.play(np.zeros(RATE * 60, np.float32), RATE, loopback, blocking=False)
    dio.rec(RATE // 10, RATE, 1, loopback)
    assert dio.wait(0.05) is False and long.running
    dio.stop()
    assert long.closed
