"""The JACK host against real jackd servers (dummy driver) started by the tests.

Round trips are measured on the audio itself (impulses), in frames of the
server's clock, and compared with what the stream's timestamps report.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import duplexio as dio
from duplexio.hosts.jack import JackBackend, JackDevice, JackHost
from support.servers import JackServer
from tests.blocking import blocking_round_trips, timeline
from tests.impulses import ImpulseLoop, assert_deadlines_from_wakeups, run_loop
from tests.recorders import Errors
from tests.signals import frequency, tone

RATE = 48000


def jack_host() -> JackHost:
    host = dio.host_from_id("jack")
    assert isinstance(host, JackHost)
    return host


def device(server: JackServer, client: str | None = None) -> JackDevice:
    name = f"jack:{server.name}" + (f"/{client}" if client else "")
    found = jack_host().device_by_id(name)
    assert isinstance(found, JackDevice), f"{name} not found"
    return found


# -- devices and configs ----------------------------------------------------------


def test_server_and_its_loopback_client_are_devices(jackd_128: JackServer) -> None:
    ids = {str(d.id) for d in jack_host().devices()} | {
        str(device(jackd_128).id),
        str(device(jackd_128, "loopback").id),
    }
    assert {f"jack:{jackd_128.name}", f"jack:{jackd_128.name}/loopback"} <= ids
    dev = device(jackd_128)
    assert dev.supports_duplex()
    assert dev.ports() == (
        ["system:capture_1", "system:capture_2"],
        ["system:playback_1", "system:playback_2"],
    )
    r = dev.supported_input_configs()[0]
    assert (r.min_sample_rate, r.max_sample_rate) == (RATE, RATE)
    assert (r.buffer_size.min_frames, r.buffer_size.max_frames) == (128, 128)


def test_a_device_period_other_than_the_servers_names_the_servers(jackd_128: JackServer) -> None:
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.device(256))
    with pytest.raises(dio.Error) as raised:
        device(jackd_128).build_duplex_stream(config, lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "256" in raised.value.message and "128" in raised.value.message
    # A block size alone runs on the server's period, re-blocked.
    fixed = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    with device(jackd_128).build_duplex_stream(fixed, lambda i, o, n: None) as stream:
        assert (stream.buffer_size, stream.device_buffer_size) == (256, 128)


def test_unreachable_server_is_not_available() -> None:
    assert jack_host().device_by_id("jack:no-such-server-here") is None
    with pytest.raises(dio.Error) as raised:
        dio.measure_latency("jack:no-such-server-here")
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE


# -- round trips --------------------------------------------------------------------


@pytest.fixture(params=["jackd_128", "jackd_256"])
def any_jackd(request: pytest.FixtureRequest) -> JackServer:
    server: JackServer = request.getfixturevalue(request.param)
    return server


def test_round_trip_through_loopback_ports_is_exactly_one_period(any_jackd: JackServer) -> None:
    dev = device(any_jackd, "loopback")
    loop = ImpulseLoop(1100, clean=100, at_most=4400)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    run_loop(stream, loop)
    period = any_jackd.frames
    assert len(loop.round_trips()) >= 100, f"xruns at {loop.xrun_blocks}"
    assert set(loop.round_trips()) == {period}, f"xruns at {loop.xrun_blocks}"
    assert loop.reported == {period}
    assert stream.latency.round_trip == period


def test_round_trip_from_own_output_to_own_input_is_exactly_one_period(
    any_jackd: JackServer,
) -> None:
    dev = device(any_jackd).unconnected()
    loop = ImpulseLoop(1100, clean=100, at_most=4400)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    backend = stream.backend
    assert isinstance(backend, JackBackend)

    def connect_own_ports() -> None:
        # A real third-party client makes the connection.
        done = any_jackd.tool("jack_connect", backend.output_ports[0], backend.input_ports[0])
        assert done.returncode == 0, done.stderr

    run_loop(stream, loop, connect_own_ports)
    period = any_jackd.frames
    assert len(loop.round_trips()) >= 100, f"xruns at {loop.xrun_blocks}"
    assert set(loop.round_trips()) == {period}
    assert loop.reported == {period}


def test_callback_timestamps_advance_one_period_per_block(jackd_128: JackServer) -> None:
    dev = device(jackd_128, "loopback")
    loop = ImpulseLoop(400)
    run_loop(dev.build_duplex_stream(dev.default_duplex_config(), loop), loop)
    steps = [s for k, s in enumerate(loop.callback_steps, 1) if k not in loop.xrun_blocks]
    assert set(steps) == {128}
    assert loop.sizes == {128}


def test_under_load_every_timestamp_discontinuity_is_flagged_on_its_block(
    jackd_128: JackServer, busy_processes: None
) -> None:
    # The assertion is about honesty, not speed: late or lost cycles may
    # happen under two busy processes, but each is flagged on the block
    # after it, and timestamps step by whole periods, never 0 or back.
    dev = device(jackd_128, "loopback")
    loop = ImpulseLoop(3000)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    run_loop(stream, loop)
    assert len(loop.callback_steps) >= 2999  # more when close() comes a block late
    loop.assert_discontinuities_flagged(128)
    # The deadline ran from the JACK thread's own wake-up on every block.
    assert_deadlines_from_wakeups(stream, 3000)


def test_ports_are_visible_to_other_clients_and_gone_after_close(jackd_128: JackServer) -> None:
    dev = device(jackd_128, "loopback")
    stream = dev.build_duplex_stream(dio.DuplexStreamConfig(1, 3, RATE), lambda i, o, n: None)
    backend = stream.backend
    assert isinstance(backend, JackBackend)
    ports = backend.input_ports + backend.output_ports
    assert len(ports) == 4
    with stream:
        listed = jackd_128.tool("jack_lsp").stdout.split()
        assert set(ports) <= set(listed)
        connections = jackd_128.tool("jack_lsp", "-c", backend.input_ports[0]).stdout
        assert "loopback:capture_1" in connections
    listed = jackd_128.tool("jack_lsp").stdout.split()
    assert not set(ports) & set(listed)


# -- failures -------------------------------------------------------------------------


def test_killing_jackd_reports_device_not_available(jackd_private: JackServer) -> None:
    dev = device(jackd_private, "loopback")
    errors = Errors()
    stream = dev.build_duplex_stream(dev.default_duplex_config(), lambda i, o, n: None, errors)
    stream.start()
    time.sleep(0.2)
    jackd_private.kill()
    assert errors.arrived.wait(20)
    assert errors.items[0].kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    with pytest.raises(dio.Error) as raised:
        stream.wait(20)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    stream.close()
    assert stream.closed


def test_jack_bufsize_mid_stream_invalidates_the_stream(jackd_private: JackServer) -> None:
    dev = device(jackd_private, "loopback")
    errors = Errors()
    loop = ImpulseLoop(10**9)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop, errors)
    with stream:
        time.sleep(0.2)
        changed = jackd_private.tool("jack_bufsize", "256")
        assert changed.returncode == 0, changed.stderr
        assert errors.arrived.wait(20)
        assert not stream.running
    [err] = errors.items
    assert err.kind is dio.ErrorKind.STREAM_INVALIDATED
    assert "256" in err.message
    assert loop.sizes == {128}


def test_slow_callback_counts_late_blocks_without_server_xruns(jackd_128: JackServer) -> None:
    dev = device(jackd_128, "loopback")
    period = 128 / RATE
    calls: list[bool] = []

    def slow(inp: np.ndarray, out: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        calls.append(info.xrun)
        time.sleep(2 * period)

    with dev.build_duplex_stream(dev.default_duplex_config(), slow) as stream:
        while len(calls) < 60:
            time.sleep(0.01)
        stats = stream.stats
    assert stats.late_blocks >= 40
    # The server's own xrun notifications. A client that ran this callback on
    # the process thread would cause one per late block (60 here), and more
    # (each sleep spans two periods). Here the device thread gives up at the
    # deadline; when the VM's host steals time its wake-up from that wait can
    # overshoot the period's rest now and then, and the dummy driver xruns on
    # its own (4 or 5 in 60 seen while the host stole ~8 %; 13 in one CI run).
    # What must hold is that the server is not held for the callback.
    assert stats.xruns * 2 < stats.late_blocks, stats
    assert stats.cycles > 2 * len(calls)


def test_latency_command_on_jack(jackd_128: JackServer, capsys: pytest.CaptureFixture[str]) -> None:
    from duplexio.cli import main

    assert (
        main(["latency", "-d", f"jack:{jackd_128.name}/loopback", "-n", "10", "--interval", "0.05"])
        == 0
    )
    out = capsys.readouterr().out
    # Impulses across a flagged glitch are left out (and counted): every other one is exact.
    assert "round trip   128 frames" in out and "(matches)" in out


def test_a_44k1_file_plays_at_its_pitch_on_a_48k_server(
    jackd_128: JackServer, tmp_path: Path
) -> None:
    """The server takes only its own rate: play_file converts with soxr, and
    what comes back through jackd -L's loop is the file's tone, not one 8.8 %
    sharp."""
    path = tmp_path / "tone.wav"
    sf.write(path, tone(44100, 44100), 44100, subtype="FLOAT")
    dev = device(jackd_128, "loopback")
    listen = dev.build_input_stream(dio.StreamConfig(1, RATE))
    with listen:
        report = dio.play_file(path, dev)
        data, _ = listen.read(listen.read_available)
    assert report.resampled and report.device_rate == RATE and report.frames == 44100
    heard = np.flatnonzero(np.abs(data[:, 0]) > 0.1)
    assert len(heard) > RATE // 2, "the tone did not come back"
    middle = data[heard[0] + RATE // 10 : heard[0] + RATE // 10 + RATE // 2, 0]
    # A glitch (flagged or not) cannot move the peak by 8.8 %; 0.5 % is the check.
    assert frequency(middle.astype(np.float64), RATE) == pytest.approx(1000.0, rel=5e-3)


# -- PipeWire's libjack -------------------------------------------------------------

PIPEWIRE_SCRIPT = """
import faulthandler; faulthandler.dump_traceback_later(40, exit=True)  # a hang shows where
import json, duplexio as dio
host = dio.host_from_id("jack")
[dev] = [d for d in host.devices() if "{sink}" in str(d.id)]
report = dio.measure_latency(dev, impulses=6, interval=0.05)
print(json.dumps({{"id": str(dev.id), "round_trips": report.round_trips, "lost": report.lost,
                   "reported": report.reported, "frames": report.buffer_size}}))
"""


def test_the_same_host_runs_on_pipewires_libjack(pipewire: Any) -> None:
    # libjack is chosen when the process loads it, so PipeWire's runs in a
    # child started by pw-jack, as a user would run it.
    done = pipewire.run(
        "pw-jack", sys.executable, "-c", PIPEWIRE_SCRIPT.format(sink=pipewire.sink), timeout=60
    )
    assert done.returncode == 0, done.stderr[-5000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["frames"] == pipewire.quantum
    # A loop through the null sink's monitor is exactly one quantum, for every
    # impulse that came back. pipewire-jack reports no xruns (issue 16: the
    # native PipeWire host will), so an impulse lost to one cannot be told
    # from the loss of a flag: at least half must come back.
    assert set(result["round_trips"]) == {pipewire.quantum}
    assert len(result["round_trips"]) + result["lost"] == 6 and result["lost"] <= 3
    assert result["reported"] == [pipewire.quantum]


# -- blocking streams -------------------------------------------------------------


@pytest.mark.parametrize("load", ["quiet", "busy"])
def test_a_blocking_duplex_stream_captures_what_it_wrote_one_round_trip_later(
    any_jackd: JackServer, request: pytest.FixtureRequest, load: str
) -> None:
    """Written before start, read back through the loopback client: every impulse
    one JACK period later, as reported, until a read the library flagged; with
    two busy processes beside it too (no Python runs per block here)."""
    if load == "busy":
        request.getfixturevalue("busy_processes")
    dev = device(any_jackd, "loopback")
    stream = dev.build_duplex_stream(dev.default_duplex_config())
    found = blocking_round_trips(stream, 1.5)
    stream.close()
    assert found.offsets, f"no impulse came back before a flag: {found.flagged[:3]}"
    assert set(found.offsets) == {any_jackd.frames} == set(found.reported)
    if not found.flagged:
        assert len(found.offsets) == 15


def test_blocking_input_and_output_streams_on_jack(jackd_128: JackServer) -> None:
    dev = device(jackd_128, "loopback")
    out = dev.build_output_stream(dev.default_output_config().config())
    inp = dev.build_input_stream(dev.default_input_config().config())
    signal = np.full((RATE // 2, out.output_channels), 0.25, np.float32)
    assert not out.write(signal)
    with out, inp:
        positions, statuses = [], []
        for _ in range(120):  # 0.64 s: the half second written runs out
            data, status = inp.read(256, timeout=10)
            assert data.shape == (256, inp.input_channels)
            positions.append(int(timeline(status, 256)[-1]))
            statuses.append(status)
        assert out.write(signal[:1024], timeout=10).position >= RATE // 2
    # Frame 255 of the first cycle, later by whatever the first read said was lost.
    assert positions[0] == 255 + statuses[0].lost
    assert all(b > a for a, b in itertools.pairwise(positions))
    assert out.stats.underflows >= 1  # the half second ran out before the second write
