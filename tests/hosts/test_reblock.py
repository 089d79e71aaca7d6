"""Any block size on any device: a callback asked for N-frame blocks on a
device running M-frame periods gets N-frame blocks, re-blocked by the
engine, with duplex alignment exact (DESIGN.md §2, "Any block size").

On every host's test device (tests/hosts/devices.py), its own period M is
kept (``BufferSize.fixed(N, device_period=M)``) and N is a quarter of it, a
little over half of it, four times it and two and a half times it plus
one: N below and above M, dividing it, a multiple of it and neither.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
import time
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualHost
from duplexio.timing import ns_to_frames
from tests.impulses import ImpulseLoop


@pytest.fixture
def device(each_host_device: dio.Device) -> dio.Device:
    return each_host_device


def sizes(period: int) -> list[int]:
    return [period // 4, period // 2 + 3, 4 * period, 5 * period // 2 + 1]


def period_of(device: dio.Device) -> int:
    """The device's own period: what a stream of the default size runs."""
    with device.build_duplex_stream(device.default_duplex_config()) as stream:
        return stream.device_buffer_size


def run_impulses(device: dio.Device, frames: int, period: int, pipelined: bool) -> None:
    config = dataclasses.replace(
        device.default_duplex_config(),
        buffer_size=dio.BufferSize.fixed(frames, device_period=period),
    )
    loop = ImpulseLoop(blocks=0, clean=4, at_most=4000, rate=config.sample_rate)
    stream = device.build_duplex_stream(config, loop, pipelined=pipelined)
    with stream:
        assert (stream.buffer_size, stream.device_buffer_size) == (frames, period)
        # An impulse is back before the next one goes (two blocks of margin;
        # a server's first latency figure may still be an estimate).
        loop.every = max(4, -(-2 * stream.latency.round_trip // frames) + 3)
        loop.blocks = 4 * loop.every
        assert loop.done.wait(60), f"{loop.count} blocks, {loop.round_trips()}"
        trip = stream.latency.round_trip
    assert stream.error is None, stream.error
    what = f"{frames} on {period}, pipelined={pipelined}: {loop.xrun_blocks}"
    assert loop.sizes == {frames}, what
    loop.assert_discontinuities_flagged(frames)
    # Exact: every unflagged impulse is back after the reported round trip,
    # which counts the re-blocking.
    found = loop.round_trips()
    assert len(found) >= 4, what
    if device.id.host == "alsa":
        # ALSA's jack PCM on jackd's loopback driver: jackd's own race carries
        # a period one JACK cycle early now and then, unflagged, and can hold
        # for a stretch between xruns (docs/hosts/alsa.md).
        cycle = 256
        assert set(found) <= {trip, trip - cycle}, (found, trip, what)
        assert loop.reported <= {trip, trip + cycle}, (loop.reported, trip, what)
        return
    assert set(found) == loop.reported == {trip}, (found, loop.reported, trip, what)


@pytest.mark.parametrize("pipelined", [False, True], ids=["same-cycle", "pipelined"])
def test_any_block_size_on_the_devices_own_period_keeps_alignment_exact(
    device: dio.Device, pipelined: bool
) -> None:
    period = period_of(device)
    for frames in sizes(period):
        run_impulses(device, frames, period, pipelined)


def test_re_blocking_delays_the_output_by_the_least_it_must(device: dio.Device) -> None:
    """N - gcd(N, M) frames more than the device's own round trip: nothing
    when N divides M, M - N ... the least that lets every block's callback
    run in the cycle that completes its input."""
    period = period_of(device)
    config = device.default_duplex_config()
    own = dataclasses.replace(config, buffer_size=dio.BufferSize.device(period))
    with device.build_duplex_stream(own, lambda i, o, info: None) as stream:
        base = stream.latency
    for frames in sizes(period):
        asked = dataclasses.replace(
            config, buffer_size=dio.BufferSize.fixed(frames, device_period=period)
        )
        with device.build_duplex_stream(asked, lambda i, o, info: None) as stream:
            added = frames - int(np.gcd(frames, period))
            assert stream.latency.input == base.input
            assert stream.latency.output == base.output + added, (frames, period)


def test_a_device_period_the_device_cannot_run_is_refused_before_it_opens() -> None:
    host = dio.host_from_id("virtual")
    assert isinstance(host, VirtualHost)
    device = host.add_loopback("reblock-refuse", buffer_sizes=(256, 256), default_buffer_size=256)
    try:
        for size in (dio.BufferSize.device(100), dio.BufferSize.fixed(100, device_period=512)):
            config = dio.DuplexStreamConfig(1, 1, 48000, size)
            with pytest.raises(dio.Error) as info:
                device.build_duplex_stream(config, lambda i, o, info: None)
            assert info.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
            assert "256" in str(info.value) and "BufferSize.fixed(100)" in str(info.value)
        # fixed() alone re-blocks on the period the device has.
        config = dio.DuplexStreamConfig(1, 1, 48000, dio.BufferSize.fixed(100))
        with device.build_duplex_stream(config, lambda i, o, info: None) as stream:
            assert (stream.buffer_size, stream.device_buffer_size) == (100, 256)
    finally:
        host.remove_device(device.id)


@pytest.mark.parametrize(
    ("asked", "period"),
    [(100, 300), (1024, 512), (2048, 512), (64, 256), (96, 288), (7, 16), (257, 257), (1000, 500)],
)
def test_the_host_picks_the_period_that_re_blocks_least(asked: int, period: int) -> None:
    """On a device of periods 256..512 (16 for 7): the block size itself where
    it fits; else the largest period that divides it, or the smallest it
    divides (no delay at all)."""
    host = dio.host_from_id("virtual")
    assert isinstance(host, VirtualHost)
    lo, hi = (16, 16) if period == 16 else (256, 512)
    device = host.add_loopback(
        f"reblock-pick-{asked}", buffer_sizes=(lo, hi), default_buffer_size=lo
    )
    try:
        config = dio.DuplexStreamConfig(1, 1, 48000, dio.BufferSize.fixed(asked))
        with device.build_duplex_stream(config, lambda i, o, info: None) as stream:
            assert stream.device_buffer_size == period
    finally:
        host.remove_device(device.id)


def test_a_re_blocked_callback_output_plays_to_its_last_frame_on_stop(
    request: pytest.FixtureRequest,
) -> None:
    """Every block the callback produced before stop() returned is heard, its
    last frame too: the frames waiting in the re-blocking FIFO drain."""
    host = dio.host_from_id("virtual")
    assert isinstance(host, VirtualHost)
    out, ear = host.add_cable("reblock-drain", buffer_sizes=(256, 256), default_buffer_size=256)
    for made in (out.id, ear.id):
        request.addfinalizer(functools.partial(host.remove_device, made))
    for frames, pipelined in ((1000, False), (100, True), (1024, True)):
        produced = [0]
        enough = threading.Event()

        def play(
            data: np.ndarray,
            info: Any,
            produced: list[int] = produced,
            enough: threading.Event = enough,
        ) -> None:
            data[:, 0] = 0.5
            produced[0] += 1
            if produced[0] == 12:
                enough.set()

        recorder = ear.build_input_stream(dio.StreamConfig(1, 48000))
        player = out.build_output_stream(
            dio.StreamConfig(1, 48000, dio.BufferSize.fixed(frames)), play, pipelined=pipelined
        )
        with recorder, player:
            assert player.device_buffer_size == 256
            recorder.start()
            player.start()
            assert enough.wait(30)
            player.stop()
            played = produced[0] * frames
            heard = 0
            quiet = 0
            while quiet < 48000 // 4:
                data, _ = recorder.read(256, timeout=10)
                loud = int(np.count_nonzero(data[:, 0] > 0.25))
                heard += loud
                quiet = quiet + 256 if heard and not loud else 0
        assert player.stats.xruns == 0
        # The cable's interpolator may round one frame at each edge.
        assert abs(heard - played) <= 2, (frames, pipelined, heard, played)


@pytest.mark.parametrize(
    ("frames", "stall", "stalls"),
    [(100, 0.05, 1), (1024, 0.011, 8)],
    ids=["gaps-of-many-blocks", "gaps-inside-one-block"],
)
def test_lost_device_cycles_advance_the_blocks_and_say_how_many_frames(
    frames: int, stall: float, stalls: int
) -> None:
    """A virtual device's glitch drops whole cycles: the re-blocked stream's
    next block is flagged, says how many input frames were lost, and its
    timestamps are exactly frames + lost_frames after the previous block's.
    Blocks of 1024 frames on 256-frame periods meet short gaps that end
    inside the block they began in, wherever in it they begin."""
    host = dio.host_from_id("virtual")
    assert isinstance(host, VirtualHost)
    device = host.add_loopback("reblock-lost", buffer_sizes=(256, 256), default_buffer_size=256)
    seen: list[tuple[int, bool, int, int]] = []
    count = threading.Semaphore(0)

    def record(data: np.ndarray, info: dio.CallbackInfo) -> None:
        seen.append((info.timestamp.device, info.xrun, info.lost_frames, info.frames))
        count.release()

    def blocks(n: int) -> None:
        for _ in range(n):
            assert count.acquire(timeout=30)

    try:
        config = dio.StreamConfig(1, 48000, dio.BufferSize.fixed(frames))
        with device.build_input_stream(config, record) as stream:
            blocks(3)
            for k in range(stalls):
                time.sleep(0.0013 * k)  # a different place in the block each time
                device.stall(stall)
                blocks(2)
            blocks(3)
        lost_cycles = stream.stats.lost_cycles
        steps = [
            (ns_to_frames(b[0] - a[0], 48000), b[1], b[2]) for a, b in itertools.pairwise(seen)
        ]
    finally:
        host.remove_device(device.id)
    assert lost_cycles > 0
    # On the grid of N-frame blocks; every step past it flagged, as is every
    # block that counts lost frames (the one the silence completed, and the
    # one after the skipped blocks); the counts add up to the cycles lost.
    assert all(step % frames == 0 for step, _, _ in steps), steps
    assert all(flag for step, flag, lost in steps if lost or step != frames), steps
    assert sum(lost for _, _, lost in steps) == lost_cycles * 256, steps
    assert sum(step - frames for step, _, _ in steps) <= lost_cycles * 256, steps
