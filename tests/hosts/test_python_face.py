"""The Python face on every real host: iteration, asyncio, overflow, the stop
exceptions, picking a device by name or index, and dio.default.

Each test runs on jackd's loopback client, a PulseAudio null sink (its monitor
is the input), ALSA's jack PCM, a PipeWire null sink (native host) and
PortAudio's JACK client, all started by the tests. Alignment of blocking
duplex streams is checked per host in that host's own file.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from support.servers import JackServer
from tests.blocking import timeline
from tests.conftest import SERVER_HOSTS
from tests.hosts.devices import duplex_device

RATE = 48000


@pytest.fixture(params=SERVER_HOSTS)
def device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dio.Device]:
    """A duplex device of each real host, reachable by the library's own lookups."""
    yield duplex_device(request, monkeypatch, tmp_path, request.param)
    dio.default.reset()
    dio.stop()


def input_config(device: dio.Device) -> dio.StreamConfig:
    return device.default_input_config().config()  # the server's period on JACK


def test_blocks_iterate_in_order_and_end_when_stopped(device: dio.Device) -> None:
    stream = device.build_input_stream(input_config(device))
    stream.start()
    ends = []
    frames = stream.buffer_size
    for data, status in stream.blocks():
        assert data.shape == (frames, stream.input_channels)
        ends.append(int(timeline(status, len(data))[-1]))
        if len(ends) == 40:
            stream.stop()
    stream.close()
    assert len(ends) >= 40 and ends[0] == frames - 1
    assert all(b > a for a, b in itertools.pairwise(ends))


def test_async_for_reads_and_ends_cleanly_on_close(device: dio.Device) -> None:
    async def consume() -> int:
        stream = device.build_input_stream(input_config(device))
        stream.start()
        count = 0
        async for _data, _status in stream:
            count += 1
            if count == 30:
                stream.close()
        return count

    assert asyncio.run(consume()) == 30


def test_a_reader_too_slow_for_the_ring_is_told_where_frames_went(device: dio.Device) -> None:
    stream = device.build_input_stream(input_config(device), ring_seconds=0.05)
    with stream:
        stream.read(256, timeout=10)  # running: the device delivers
        time.sleep(0.5)  # ten rings' worth unread
        lost = 0
        for _ in range(30):
            _, status = stream.read(256, timeout=10)
            lost += status.lost
    stats = stream.stats
    assert stats.overflows >= 1 and lost >= stats.overflow_frames > 0


def test_callback_stop_and_abort_end_a_real_stream_without_an_error(device: dio.Device) -> None:
    for how, after in ((dio.CallbackStop, "stopped"), (dio.CallbackAbort, "paused")):
        calls = 0

        def callback(inp: Any, out: Any, info: Any, how: type[Exception] = how) -> None:
            nonlocal calls
            calls += 1
            if calls == 10:
                raise how

        stream = device.build_duplex_stream(device.default_duplex_config(), callback)
        stream.start()
        assert stream.wait(20) is True, after
        time.sleep(0.05)
        assert calls == 10 and stream.error is None and not stream.running, after
        stream.close()


def test_the_device_is_found_by_index_by_name_and_through_the_defaults(
    device: dio.Device,
) -> None:
    if device.id.host != "portaudio":  # on Linux not in the all-hosts table, by design
        listed = dio.query_devices()
        index = next(n for n, d in enumerate(listed) if d.id == device.id)
        assert dio.rec(256, device=index).shape[0] == 256
    assert dio.rec(256, device=device).shape[0] == 256
    assert dio.rec(256, device=str(device.id)).shape[0] == 256
    probe = device.build_input_stream(input_config(device))
    frames = probe.buffer_size
    probe.close()
    dio.default.device = device.id
    dio.default.buffer_size = frames
    stream = dio.rec(512, blocking=False)
    assert stream.device == str(device.id) and stream.buffer_size == frames
    assert dio.wait(20) is True
    stream.close()
    # The default reaches the output side too.
    dio.play(np.zeros((256, 2), np.float32), blocking=False)
    assert dio.wait(20) is True
    dio.stop()  # closed: libjack must not see a client of this server when the next opens


def test_libjack_is_kept_from_crashing_on_a_second_server(
    jackd_128: JackServer, jackd_256: JackServer
) -> None:
    """libjack crashes the process when a client of another server opens while
    one is open (seen with jack2 1.9.21): the JACK host refuses instead."""
    first = dio.host_from_id("jack").device_by_id(f"jack:{jackd_128.name}/loopback")
    assert first is not None
    with first.build_input_stream(input_config(first)):
        with pytest.raises(dio.Error) as raised:
            dio.host_from_id("jack").device_by_id(f"jack:{jackd_256.name}/loopback")
        assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
        assert jackd_128.name in raised.value.message
    # Once closed, the other server is reachable.
    assert dio.host_from_id("jack").device_by_id(f"jack:{jackd_256.name}/loopback") is not None
