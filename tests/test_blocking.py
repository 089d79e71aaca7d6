"""Blocking streams on the virtual host: read, write, alignment, gaps, iteration, asyncio.

The virtual input devices here capture a ramp whose value is its own frame
number, so every frame read says where on the input timeline it was
captured: positions and gaps are checked exactly, on a quiet machine or a
busy one (a frame the clock lost is a gap the status must name).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualDevice, VirtualHost
from support.gil_hog import hold_gil
from tests.blocking import blocking_round_trips, timeline
from tests.conftest import open_fds

RATE = 48000
#: The ramp: frame k captures k / SCALE, exact in float32 for k < SCALE.
SCALE = 1 << 20


@pytest.fixture
def ramp(virtual_host: VirtualHost) -> Iterator[VirtualDevice]:
    name = f"ramp-{time.monotonic_ns()}"
    device = virtual_host.add_input(
        name, channels=1, signal=np.arange(SCALE, dtype=np.float64) / SCALE
    )
    yield device
    virtual_host.remove_device(device.id)


def input_config(frames: int = 128) -> dio.StreamConfig:
    return dio.StreamConfig(1, RATE, dio.BufferSize.fixed(frames))


def assert_ramp(data: np.ndarray, status: dio.ReadStatus) -> None:
    """Each frame is the ramp value of the input position its status gives it."""
    expected = (timeline(status, len(data)) % SCALE) / SCALE
    np.testing.assert_array_equal(data[:, 0], expected.astype(np.float32))


# -- reading -------------------------------------------------------------------


def test_reads_are_the_captured_frames_in_order_from_frame_zero(ramp: VirtualDevice) -> None:
    with ramp.build_input_stream(input_config()) as stream:
        positions = []
        for n in (1, 100, 128, 1000, 0, 4096):
            data, status = stream.read(n, timeout=10)
            assert data.shape == (n, 1) and data.dtype == np.float32
            assert_ramp(data, status)
            positions.append(status.position)
    assert positions[0] == 0  # the first frame of the first cycle
    assert stream.stats.overflows == 0


def test_a_full_ring_drops_blocks_and_the_read_that_meets_the_gap_names_it(
    ramp: VirtualDevice,
) -> None:
    stream = ramp.build_input_stream(input_config(), ring_seconds=0.05)  # 2400 frames
    with stream:
        time.sleep(0.4)  # nobody reads: the ring fills, then blocks are dropped
        statuses = []
        for _ in range(40):
            data, status = stream.read(256, timeout=10)
            assert_ramp(data, status)  # exact, across the gap too
            statuses.append(status)
    gaps = [s for s in statuses if s]
    assert gaps, "the overflow reached no read"
    assert statuses[0].position == 0 and not statuses[0]  # the ring kept the oldest
    lost = sum(s.lost for s in statuses)
    stats = stream.stats
    assert stats.overflows >= 1 and lost >= stats.overflow_frames > 0
    assert stats.overflow_frames % 128 == 0  # whole blocks


def test_a_read_survives_a_gil_stall_of_a_second_with_nothing_lost(ramp: VirtualDevice) -> None:
    with ramp.build_input_stream(input_config()) as stream:
        stream.read(128, timeout=10)
        hold_gil(1.0)  # no Python runs for a second: the device thread fills the ring
        got = [stream.read(4800, timeout=10) for _ in range(20)]
    for data, status in got:
        assert_ramp(data, status)
    # Lost frames here can only be the virtual clock's own flagged glitches.
    assert stream.stats.overflows == 0
    assert sum(s.lost for _, s in got) == stream.stats.lost_cycles * 128


def test_every_device_glitch_meets_the_reader_even_one_that_lost_no_cycle(
    ramp: VirtualDevice,
) -> None:
    """A glitch that cost no whole cycle (a real device that restarted in time,
    ALSA's re-alignment) is a gap of 0 frames: one gap per xrun the stream
    counted, whatever the machine's own glitches add."""
    statuses: list[dio.ReadStatus] = []
    with ramp.build_input_stream(input_config()) as stream:
        for _ in range(3):
            statuses.append(stream.read(1280, timeout=10)[1])
            ramp.glitch()
            data, status = stream.read(1280, timeout=10)
            assert_ramp(data, status)
            statuses.append(status)
        stream.stop()
        while (got := stream.read(stream.read_available))[0].size:
            statuses.append(got[1])
    stats = stream.stats
    gaps = [gap for s in statuses for gap in s.gaps]
    assert stats.xruns >= 3 and stats.overflows == 0
    assert len(gaps) == stats.xruns, (gaps, stats)
    assert sum(lost for _, lost in gaps) == stats.lost_cycles * 128
    # The three injected ones lost nothing (unless the clock glitched in that cycle too).
    assert sum(1 for _, lost in gaps if lost == 0) >= 3 - stats.lost_cycles


def test_a_write_after_a_device_glitch_says_so(make_device: Any) -> None:
    device = make_device("loopback")
    stream = device.build_output_stream(dio.StreamConfig(2, RATE, dio.BufferSize.fixed(128)))
    silence = np.zeros((4800, 2), np.float32)
    with stream:
        stream.write(silence, timeout=10)
        device.glitch()
        time.sleep(0.05)
        status = stream.write(silence, timeout=10)
    assert status.xruns >= 1 and status
    assert status.xruns <= stream.stats.xruns


def test_a_ring_too_big_for_memory_is_resource_exhausted(ramp: VirtualDevice) -> None:
    with pytest.raises(dio.Error) as raised:
        ramp.build_input_stream(input_config(), ring_seconds=1e9)
    assert raised.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED
    assert "ring_seconds" in raised.value.message


def test_read_waits_at_most_its_timeout(ramp: VirtualDevice) -> None:
    with ramp.build_input_stream(input_config()) as stream:
        ramp.stall()
        # A cycle under way when the stall came still lands: wait it out, then
        # take what the ring holds, so the read below has to wait.
        time.sleep(0.05)
        stream.read(stream.read_available)
        with pytest.raises(dio.Error) as raised:
            stream.read(128, timeout=0.2)
        ramp.resume()
    assert raised.value.kind is dio.ErrorKind.TIMED_OUT
    assert "0.2 s" in raised.value.message


def test_what_a_stopped_stream_captured_can_still_be_read(ramp: VirtualDevice) -> None:
    stream = ramp.build_input_stream(input_config())
    with stream:
        time.sleep(0.1)
        stream.stop()
        left = stream.read_available
        assert left > 0
        data, status = stream.read(left)
        assert_ramp(data, status)
        with pytest.raises(dio.Error) as raised:
            stream.read(1)  # nothing more will come
        assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
        assert "not running" in raised.value.message
    with pytest.raises(dio.Error) as raised:
        stream.read(1)
    assert raised.value.kind is dio.ErrorKind.STREAM_INVALIDATED


def test_a_read_blocked_when_the_device_fails_raises_the_streams_error(
    ramp: VirtualDevice,
) -> None:
    with ramp.build_input_stream(input_config(), error_callback=lambda e: None) as stream:
        threading.Timer(0.2, ramp.disconnect).start()
        with pytest.raises(dio.Error) as raised:
            while True:
                stream.read(128)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert raised.value is stream.error


@pytest.mark.parametrize(
    ("call", "kind", "needle"),
    [
        (lambda s: s.read(10**9), dio.ErrorKind.INVALID_INPUT, "frames"),
        (lambda s: s.read(-1), dio.ErrorKind.INVALID_INPUT, "frames"),
        (lambda s: s.read(1, timeout=float("nan")), dio.ErrorKind.INVALID_INPUT, "timeout"),
        (lambda s: s.write(np.zeros(8)), dio.ErrorKind.UNSUPPORTED_OPERATION, "no output"),
        (lambda s: s.write_available, dio.ErrorKind.UNSUPPORTED_OPERATION, "no output"),
    ],
)
def test_bad_reads_are_errors_before_anything_waits(
    ramp: VirtualDevice, call: Any, kind: dio.ErrorKind, needle: str
) -> None:
    with ramp.build_input_stream(input_config()) as stream, pytest.raises(dio.Error) as raised:
        call(stream)
    assert raised.value.kind is kind and needle in raised.value.message


def test_a_callback_stream_has_no_read(loopback: VirtualDevice) -> None:
    stream = loopback.build_duplex_stream(loopback.default_duplex_config(), lambda i, o, n: None)
    with pytest.raises(dio.Error) as raised:
        stream.read(1)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "callback" in raised.value.message
    stream.close()


# -- writing and duplex --------------------------------------------------------


def duplex(device: VirtualDevice, frames: int = 128, **kwargs: Any) -> dio.Stream:
    config = dio.DuplexStreamConfig(1, 1, RATE, dio.BufferSize.fixed(frames))
    return device.build_duplex_stream(config, **kwargs)


def test_written_before_start_is_captured_exactly_one_round_trip_later(
    make_device: Any,
) -> None:
    """Frame k written becomes input frame k + round trip, bit for bit, until a
    flagged gap; a run the library flagged is retried (the virtual clock is a
    thread of this noisy machine), a clean run must be exact throughout."""
    device = make_device("loopback", latency=300)
    rng = np.random.default_rng(1)
    for _ in range(8):
        stream = duplex(device, ring_seconds=0.5)  # short runs: more of them clean
        room = stream.write_available - 2 * 300  # the read of it all must fit the ring
        signal = rng.uniform(-0.9, 0.9, (room, 1)).astype(np.float32)
        assert stream.write(signal).position == 0
        rt = stream.latency.round_trip
        with stream:
            data, status = stream.read(len(signal) + rt, timeout=10)
        # (The ring runs dry after the signal: underflows there are expected.)
        flagged = status or stream.stats.xruns
        first_gap = status.gaps[0][0] if status.gaps else len(data)
        # Up to the first gap it is exact in any run.
        end = min(first_gap, len(data))
        np.testing.assert_array_equal(data[rt:end, 0], signal[: end - rt, 0])
        assert not data[:rt].any()  # the loop's own silence first
        stream.close()
        if not flagged:
            assert rt == 300 and status.position == 0
            return
    pytest.fail("every run was flagged")


def test_the_impulse_check_used_on_real_hosts_holds_here(loopback: VirtualDevice) -> None:
    found = blocking_round_trips(duplex(loopback, 256), 1.0)
    if not found.flagged:
        assert len(found.offsets) == 10
    assert set(found.offsets) == {512} == set(found.reported)


def test_a_dry_output_ring_plays_silence_and_the_next_write_says_how_much(
    loopback: VirtualDevice,
) -> None:
    stream = duplex(loopback)
    first = stream.write(np.full(1280, 0.5, np.float32))  # before start: from frame 0
    assert first.position == 0 and not first
    with stream:
        time.sleep(0.3)  # 1280 frames played long ago
        second = stream.write(np.full(256, 0.25, np.float32))
    assert second and second.underflowed > 0
    assert second.position == 1280 + second.underflowed
    stats = stream.stats
    # The silence played, plus any cycles the virtual clock lost (flagged).
    assert stats.underflows >= 1
    assert stats.underflow_frames + 128 * stats.lost_cycles >= second.underflowed


def test_write_converts_any_sample_format_and_refuses_the_wrong_shape(
    loopback: VirtualDevice,
) -> None:
    stream = duplex(loopback)
    assert stream.write(np.array([0, 16384, -32768], np.int16)).position == 0
    assert stream.write([0.5, 0.25]).position == 3  # a list of floats is one channel
    with pytest.raises(dio.Error) as raised:
        stream.write(np.zeros((8, 2), np.float32))
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT and "2 channels" in raised.value.message
    stream.close()


def test_a_write_bigger_than_the_ring_before_start_says_how_much_it_took(
    loopback: VirtualDevice,
) -> None:
    stream = duplex(loopback, ring_seconds=0.1)
    room = stream.write_available
    assert room == 4800
    with pytest.raises(dio.Error) as raised:
        stream.write(np.zeros(room + 100, np.float32))
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert f"took {room}" in raised.value.message
    stream.close()


def test_a_long_write_on_a_running_stream_waits_for_room_as_it_plays(
    loopback: VirtualDevice,
) -> None:
    with duplex(loopback, ring_seconds=0.05) as stream:
        status = stream.write(np.zeros(RATE // 5, np.float32), timeout=10)  # 4 rings' worth
        assert status.position <= stream.stats.underflow_frames + 0  # written first
    assert stream.stats.cycles * 128 >= RATE // 5 - 2400


def test_stop_plays_what_was_written_first(loopback: VirtualDevice) -> None:
    stream = duplex(loopback)
    stream.write(np.full(4800, 0.5, np.float32))
    stream.start()
    stream.stop()  # drains: the 4800 frames and the output latency
    assert stream.write_available == stream._core.rings.capacity  # type: ignore[union-attr]
    stream.close()


# -- iteration and asyncio -----------------------------------------------------


def test_blocks_come_in_order_and_end_when_the_stream_stops(ramp: VirtualDevice) -> None:
    stream = ramp.build_input_stream(input_config())
    stream.start()
    seen = []
    for data, status in stream.blocks(256):
        assert data.shape == (256, 1)
        assert_ramp(data, status)
        seen.append(status.position)
        if len(seen) == 20:
            stream.stop()
    assert len(seen) >= 20 and seen[0] == 0
    stream.close()


def test_blocks_raise_the_error_that_ended_the_stream(ramp: VirtualDevice) -> None:
    stream = ramp.build_input_stream(input_config(), error_callback=lambda e: None)
    stream.start()
    with pytest.raises(dio.Error) as raised:
        for n, _ in enumerate(stream.blocks()):
            if n == 5:
                ramp.disconnect()
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    stream.close()


def test_async_for_gets_the_blocks_and_ends_cleanly_on_close(ramp: VirtualDevice) -> None:
    async def consume() -> list[dio.ReadStatus]:
        stream = ramp.build_input_stream(input_config())
        stream.start()
        got = []
        async for data, status in stream:
            assert_ramp(data, status)
            got.append(status)
            if len(got) == 30:
                stream.close()
        return got

    got = asyncio.run(consume())
    assert len(got) == 30 and got[0].position == 0
    assert [s.position for s in got] == [
        128 * k + sum(x.lost for x in got[: k + 1]) for k in range(30)
    ]


def test_async_for_raises_the_streams_error(ramp: VirtualDevice) -> None:
    async def consume(stream: dio.Stream) -> None:
        async for _ in stream:
            await asyncio.sleep(0)

    stream = ramp.build_input_stream(input_config(), error_callback=lambda e: None)
    stream.start()
    threading.Timer(0.2, ramp.disconnect).start()
    with pytest.raises(dio.Error) as raised:
        asyncio.run(consume(stream))
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    stream.close()


@pytest.mark.parametrize("closer", ["another task", "another thread"])
def test_async_for_ends_when_closed_while_it_waits(ramp: VirtualDevice, closer: str) -> None:
    """Closed while the loop awaits the next block (4096 frames: ~85 ms apart),
    from another task of the same event loop or from another thread: the
    iteration ends, and the wake-up pipe is closed with the stream."""
    before = open_fds()

    async def main() -> int:
        stream = ramp.build_input_stream(input_config(4096))
        streams.append(stream)
        stream.start()
        blocks = 0

        async def close_soon() -> None:
            await asyncio.sleep(0.3)
            stream.close()

        if closer == "another task":
            task = asyncio.create_task(close_soon())
        else:
            timer.start()
        async for _ in stream:
            blocks += 1
        if closer == "another task":
            await task
        return blocks

    timer = threading.Timer(0.3, lambda: streams[0].close())
    streams: list[dio.Stream] = []
    blocks = asyncio.run(asyncio.wait_for(main(), 20))  # a hang fails, not stalls, the suite
    if closer == "another thread":
        timer.join(20)  # its close() may still be finishing when the iteration has ended
    assert blocks >= 1
    assert open_fds() == before


def test_the_event_loop_stays_free_while_it_waits_for_audio(ramp: VirtualDevice) -> None:
    """Woken by the device thread, not a poll: other tasks run while it waits."""

    async def main() -> tuple[int, int]:
        stream = ramp.build_input_stream(input_config(4096))
        stream.start()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        blocks = 0
        async for _ in stream:
            blocks += 1
            if blocks == 5:
                break
        task.cancel()
        stream.close()
        return ticks, blocks

    ticks, blocks = asyncio.run(main())
    assert blocks == 5 and ticks > 50  # ~0.43 s of waiting, shared with the ticker


# -- CallbackStop and CallbackAbort --------------------------------------------


def test_callback_stop_stops_after_draining_with_no_error(
    loopback: VirtualDevice, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def callback(inp: Any, out: Any, info: Any) -> None:
        nonlocal calls
        calls += 1
        out[:] = 0.5
        if calls == 5:
            raise dio.CallbackStop

    stream = loopback.build_duplex_stream(loopback.default_duplex_config(), callback)
    with caplog.at_level(logging.WARNING, logger="duplexio"):
        stream.start()
        assert stream.wait(10) is True
        time.sleep(0.1)
    assert calls == 5 and not stream.running and stream.error is None
    assert not caplog.records  # no traceback, no warning
    stream.start()  # a stop, not an end: it runs again
    assert stream.running
    stream.close()


def test_callback_abort_pauses_now_and_start_resumes(
    loopback: VirtualDevice, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    resumed = threading.Event()

    def callback(inp: Any, out: Any, info: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise dio.CallbackAbort
        if calls > 3:
            resumed.set()

    stream = loopback.build_duplex_stream(loopback.default_duplex_config(), callback)
    with caplog.at_level(logging.WARNING, logger="duplexio"):
        stream.start()
        assert stream.wait(10) is True
        time.sleep(0.1)
        assert calls == 3 and stream.error is None
        stream.start()
        assert resumed.wait(10)
    assert not caplog.records
    stream.close()


def test_callback_stop_in_an_input_stream(ramp: VirtualDevice) -> None:
    def callback(data: Any, info: Any) -> None:
        raise dio.CallbackStop

    stream = ramp.build_input_stream(input_config(), callback)
    stream.start()
    assert stream.wait(10) is True and stream.error is None
    stream.close()
