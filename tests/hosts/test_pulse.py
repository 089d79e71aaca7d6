"""The PulseAudio host against a real PulseAudio (null sink) and pipewire-pulse.

Each test points libpulse at its server through ``PULSE_SERVER``; round trips
are measured on the audio itself (impulses through the sink and back from
its monitor) and compared with what the stream reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.pulse import PulseDevice
from support.servers import PipeWire, PulseServer
from tests.blocking import blocking_round_trips
from tests.impulses import ImpulseLoop, assert_deadlines_from_wakeups, run_loop
from tests.recorders import Errors, wait_for

RATE = 48000


def use(monkeypatch: pytest.MonkeyPatch, address: str) -> dio.Host:
    monkeypatch.setenv("PULSE_SERVER", address)
    return dio.host_from_id("pulse")


def pipewire_address(stack: PipeWire) -> str:
    return stack.env["PULSE_SERVER"]


def run_impulses(device: dio.Device, frames: int, blocks: int) -> tuple[ImpulseLoop, dio.Stream]:
    loop = ImpulseLoop(blocks, every=8)
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(frames))
    stream = device.build_duplex_stream(config, loop)
    run_loop(stream, loop)
    return loop, stream


# -- enumeration ------------------------------------------------------------------------


def test_enumeration_finds_the_null_sink_its_monitor_and_the_defaults(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio.address)
    ids = {str(d.id) for d in host.devices()}
    sink, monitor = f"pulse:{pulseaudio.sink}", f"pulse:{pulseaudio.sink}.monitor"
    assert {sink, monitor, "pulse:@DEFAULT_SINK@", "pulse:@DEFAULT_SOURCE@"} <= ids
    info = pulseaudio.run("pactl", "info").stdout
    default_sink = next(
        x.split(": ", 1)[1] for x in info.splitlines() if x.startswith("Default Sink")
    )
    default_source = next(
        x.split(": ", 1)[1] for x in info.splitlines() if x.startswith("Default Source")
    )
    out, inp = host.default_output_device(), host.default_input_device()
    assert isinstance(out, PulseDevice) and isinstance(inp, PulseDevice)
    assert f"now '{default_sink}'" in " ".join(out.description.details)
    assert f"now '{default_source}'" in " ".join(inp.description.details)
    assert host.device_by_id(sink).supports_duplex()  # type: ignore[union-attr]
    assert not host.device_by_id(monitor).supports_duplex()  # type: ignore[union-attr]


def test_a_source_is_not_duplex_and_says_why(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio.address)
    monitor = host.device_by_id(f"pulse:{pulseaudio.sink}.monitor")
    assert monitor is not None
    with pytest.raises(dio.Error) as raised:
        monitor.build_duplex_stream(dio.DuplexStreamConfig(2, 2, RATE), lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "separate clocks" in raised.value.message


def test_unknown_device_is_not_available_naming_it(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, pulseaudio.address)
    with pytest.raises(dio.Error) as raised:
        dio.measure_latency("pulse:no_such_sink")
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "pulse:no_such_sink" in raised.value.message


# -- duplex on a sink and its monitor --------------------------------------------------


@pytest.mark.parametrize("frames", [256, 512])
def test_duplex_impulses_return_at_the_reported_offset(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch, frames: int
) -> None:
    host = use(monkeypatch, pulseaudio.address)
    device = host.device_by_id(f"pulse:{pulseaudio.sink}")
    assert device is not None
    loop, stream = run_impulses(device, frames, 240)
    trips = loop.round_trips()
    assert len(trips) >= 25
    assert len(set(trips)) == 1, trips
    assert loop.reported == set(trips)
    assert stream.latency.round_trip == trips[0]


@pytest.mark.xfail(
    strict=False,
    reason="known limit (docs/hosts/pulse.md; issue 16): through pipewire-pulse the offset "
    "can move by a quantum mid-run with no flag the protocol shows (seen once in a "
    "full run: 768 -> 896); the native PipeWire host is the fix",
)
def test_pipewire_pulse_keeps_one_offset_one_quantum_beyond_the_report(
    pipewire: PipeWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pipewire-pulse's timing counters do not show the graph cycle the
    # monitor adds, and the quantum is not visible through the protocol:
    # the offset is constant, and documented as one quantum more.
    host = use(monkeypatch, pipewire_address(pipewire))
    device = host.device_by_id(f"pulse:{pipewire.sink}")
    assert isinstance(device, PulseDevice) and device.on_pipewire
    loop, _ = run_impulses(device, 256, 240)
    trips = loop.round_trips()
    assert len(trips) >= 25
    assert len(set(trips)) == 1, trips
    assert loop.reported == {trips[0] - pipewire.quantum}


def test_under_load_every_timestamp_discontinuity_is_flagged_on_its_block(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch, busy_processes: None
) -> None:
    # Honesty, not speed: under two busy processes blocks may be dropped
    # (Python behind, the FIFO full) or come late, but timestamps stay on
    # the block grid and every step off it is flagged on its block.
    host = use(monkeypatch, pulseaudio.address)
    device = host.device_by_id(f"pulse:{pulseaudio.sink}")
    assert device is not None
    loop, stream = run_impulses(device, 256, 1500)
    assert len(loop.callback_steps) >= 1499
    loop.assert_discontinuities_flagged(256)
    assert stream.stats.realtime  # the I/O thread runs SCHED_FIFO (root here)
    assert_deadlines_from_wakeups(stream, 1500)


def test_output_and_input_streams_run(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio.address)
    sink = host.device_by_id(f"pulse:{pulseaudio.sink}")
    monitor = host.device_by_id(f"pulse:{pulseaudio.sink}.monitor")
    assert sink is not None and monitor is not None
    counts = {"out": 0, "in": 0}

    def out_cb(data: np.ndarray, info: dio.CallbackInfo) -> None:
        counts["out"] += 1

    def in_cb(data: np.ndarray, info: dio.CallbackInfo) -> None:
        counts["in"] += 1

    config = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512))
    with sink.build_output_stream(config, out_cb), monitor.build_input_stream(config, in_cb):
        assert wait_for(lambda: min(counts.values()) >= 20)


# -- failures ------------------------------------------------------------------------


def test_killing_the_server_reports_device_not_available(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio_private.address)
    device = host.device_by_id(f"pulse:{pulseaudio_private.sink}")
    assert device is not None
    errors = Errors()
    stream = device.build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(512)), lambda i, o, n: None, errors
    )
    stream.start()
    assert wait_for(lambda: stream.stats.cycles >= 5)
    pulseaudio_private.kill()
    assert errors.arrived.wait(20)
    assert errors.items[0].kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    with pytest.raises(dio.Error):
        stream.wait(20)
    stream.close()


def test_removing_the_sink_reports_device_not_available(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio_private.address)
    loaded = pulseaudio_private.run(
        "pactl", "load-module", "module-null-sink", "sink_name=da_removable"
    )
    assert loaded.returncode == 0, loaded.stderr
    device = host.device_by_id("pulse:da_removable")
    assert device is not None
    errors = Errors()
    stream = device.build_output_stream(
        dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512)), lambda d, n: None, errors
    )
    with stream:
        assert wait_for(lambda: stream.stats.cycles >= 5)
        pulseaudio_private.run("pactl", "unload-module", loaded.stdout.strip())
        assert errors.arrived.wait(20)
    assert errors.items[0].kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE


def test_default_sink_moved_reports_device_changed_and_keeps_running(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio_private.address)
    other = pulseaudio_private.run("pactl", "load-module", "module-null-sink", "sink_name=da_other")
    assert other.returncode == 0, other.stderr
    device = host.default_output_device()
    assert device is not None
    errors = Errors()
    calls: list[int] = []
    stream = device.build_output_stream(
        dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512)), lambda d, n: calls.append(1), errors
    )
    with stream:
        # An idle null sink takes a while to start a new stream (TESTING.md).
        assert wait_for(lambda: len(calls) >= 5)
        pulseaudio_private.run("pactl", "set-default-sink", "da_other")
        assert errors.arrived.wait(20)
        before = len(calls)
        assert wait_for(lambda: len(calls) >= before + 5)
        assert stream.running
    assert [e.kind for e in errors.items] == [dio.ErrorKind.DEVICE_CHANGED]


def test_latency_command_on_pulse(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from duplexio.cli import main

    use(monkeypatch, pulseaudio.address)
    assert main(["latency", "-d", f"pulse:{pulseaudio.sink}", "-b", "256", "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert "identical for every impulse" in out and "(matches)" in out


# -- blocking streams -------------------------------------------------------------


def test_a_blocking_duplex_stream_captures_what_it_wrote_one_round_trip_later(
    pulseaudio: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = use(monkeypatch, pulseaudio.address)
    device = host.device_by_id(f"pulse:{pulseaudio.sink}")
    assert device is not None
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    stream = device.build_duplex_stream(config)
    found = blocking_round_trips(stream, 1.5)
    stream.close()
    assert found.offsets, f"no impulse came back before a flag: {found.flagged[:3]}"
    assert set(found.offsets) == set(found.reported)
    if not found.flagged:
        assert len(found.offsets) == 15
