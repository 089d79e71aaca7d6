"""Device events from the real servers, started by the tests: null sinks
loaded and unloaded (PulseAudio, PipeWire through pipewire-pulse), defaults
moved with the servers' own tools, a second JACK client's ports, each server
killed and started again."""

from __future__ import annotations

import subprocess
import time

import pytest

import duplexio as dio
from duplexio.watch import DeviceEvent, DeviceEventKind
from support.servers import (
    JackServer,
    PipeWire,
    PulseServer,
    ServerUnavailable,
    start_jackd,
    start_pipewire,
    stop_process,
)

ADDED, REMOVED = DeviceEventKind.ADDED, DeviceEventKind.REMOVED
DEFAULT_CHANGED = DeviceEventKind.DEFAULT_CHANGED


def collect(
    watcher: dio.DeviceWatcher, wanted: set[tuple[DeviceEventKind, str]], within: float
) -> list[DeviceEvent]:
    """Events until every (kind, device id) in `wanted` came, at most `within` s."""
    got: list[DeviceEvent] = []
    deadline = time.monotonic() + within
    while not wanted <= {(e.kind, str(e.device_id)) for e in got}:
        event = watcher.get(max(0.0, deadline - time.monotonic()))
        assert event is not None, f"wanted {sorted(wanted)}, got {[str(e) for e in got]}"
        got.append(event)
    return got


def pulse_host(monkeypatch: pytest.MonkeyPatch, server: PulseServer) -> dio.Host:
    monkeypatch.setenv("PULSE_SERVER", server.address)
    return dio.host_from_id("pulse")


def test_pulse_sinks_loaded_and_unloaded_are_events_within_a_second(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pulse_host(monkeypatch, pulseaudio_private)
    with host.watch_devices() as watcher:
        assert watcher.get(1.0) is None, "an idle server told of a change"
        loaded = pulseaudio_private.run(
            "pactl", "load-module", "module-null-sink", "sink_name=da_watched"
        )
        assert loaded.returncode == 0, loaded.stderr
        got = collect(
            watcher, {(ADDED, "pulse:da_watched"), (ADDED, "pulse:da_watched.monitor")}, 1.0
        )
        monitor = next(e for e in got if str(e.device_id) == "pulse:da_watched.monitor")
        assert monitor.direction == "input" and monitor.host is dio.HostId.PULSE

        pulseaudio_private.run("pactl", "set-default-sink", "da_watched")
        got = collect(watcher, {(DEFAULT_CHANGED, "pulse:da_watched")}, 1.0)
        assert [e.direction for e in got if str(e.device_id) == "pulse:da_watched"] == ["output"]

        pulseaudio_private.run("pactl", "unload-module", loaded.stdout.strip())
        got = collect(
            watcher, {(REMOVED, "pulse:da_watched"), (REMOVED, "pulse:da_watched.monitor")}, 1.0
        )
        # The default fell back to the sink the server had.
        fallback = [e for e in got if e.kind is DEFAULT_CHANGED and e.direction == "output"]
        if not fallback:
            fallback = collect(
                watcher, {(DEFAULT_CHANGED, f"pulse:{pulseaudio_private.sink}")}, 1.0
            )
        assert str(fallback[-1].device_id) == f"pulse:{pulseaudio_private.sink}"


def test_a_pulse_watcher_outlives_its_server_and_sees_the_same_ids_again(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pulse_host(monkeypatch, pulseaudio_private)
    sink = f"pulse:{pulseaudio_private.sink}"
    with host.watch_devices() as watcher:
        pulseaudio_private.kill()
        gone = collect(watcher, {(REMOVED, sink), (REMOVED, f"{sink}.monitor")}, 2.0)
        assert {e.kind for e in gone} <= {REMOVED, DEFAULT_CHANGED}
        pulseaudio_private.restart()
        back = collect(watcher, {(ADDED, sink), (ADDED, f"{sink}.monitor")}, 2.0)
        assert {str(e.device_id) for e in back if e.kind is ADDED} == {
            str(e.device_id) for e in gone if e.kind is REMOVED
        }


def jack_host(monkeypatch: pytest.MonkeyPatch, server: JackServer) -> dio.Host:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    return dio.host_from_id("jack")


def test_a_second_jack_clients_ports_are_a_device_that_comes_and_goes(
    jackd_private: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = jack_host(monkeypatch, jackd_private)
    with host.watch_devices() as watcher:
        assert watcher.get(1.0) is None, "an idle server told of a change"
        metro = subprocess.Popen(
            ["jack_metro", "-n", "da_metro", "-b", "60"], env=jackd_private.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            [added] = collect(watcher, {(ADDED, f"jack:{jackd_private.name}/da_metro")}, 3.0)
            assert added.direction is None  # a JACK client is a duplex device
        finally:
            stop_process(metro)
        # jackd notices a killed client when its socket closes, which on a
        # busy machine can take it a moment.
        [removed] = collect(watcher, {(REMOVED, f"jack:{jackd_private.name}/da_metro")}, 3.0)
        assert removed.host is dio.HostId.JACK


def test_a_jack_watcher_outlives_its_server_and_sees_the_same_ids_again(
    jackd_private: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = jack_host(monkeypatch, jackd_private)
    server = f"jack:{jackd_private.name}"
    with host.watch_devices() as watcher:
        jackd_private.kill()
        gone = collect(watcher, {(REMOVED, server)}, 3.0)
        assert {e.kind for e in gone} <= {REMOVED, DEFAULT_CHANGED}
        again = start_jackd(jackd_private.name)
        try:
            back = collect(watcher, {(ADDED, server)}, 3.0)
            assert {str(e.device_id) for e in back if e.kind is ADDED} >= {server}
        finally:
            watcher.close()
            again.stop()


def pipewire_host(monkeypatch: pytest.MonkeyPatch, stack: PipeWire) -> dio.Host:
    for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, stack.env[key])
    return dio.host_from_id("pipewire")


def test_pipewire_nodes_and_defaults_are_events_within_a_second(
    pipewire: PipeWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pipewire_host(monkeypatch, pipewire)
    with host.watch_devices() as watcher:
        assert watcher.get(1.0) is None, "an idle graph told of a change"
        loaded = pipewire.run("pactl", "load-module", "module-null-sink", "sink_name=da_pw_watched")
        assert loaded.returncode == 0, loaded.stderr
        try:
            collect(watcher, {(ADDED, "pipewire:da_pw_watched")}, 1.0)
            moved = pipewire.run(
                "pw-metadata", "0", "default.configured.audio.sink", '{"name":"da_pw_watched"}'
            )
            assert moved.returncode == 0, moved.stderr
            got = collect(watcher, {(DEFAULT_CHANGED, "pipewire:da_pw_watched")}, 1.0)
            assert [e.direction for e in got if e.kind is DEFAULT_CHANGED][-1] == "output"
        finally:
            pipewire.run("pw-metadata", "-d", "0", "default.configured.audio.sink")
            pipewire.run("pactl", "unload-module", loaded.stdout.strip())
        collect(watcher, {(REMOVED, "pipewire:da_pw_watched")}, 1.0)


def test_a_pipewire_watcher_outlives_its_server_and_sees_the_same_ids_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        stack = start_pipewire(sink="da_pw_restarted")
    except ServerUnavailable as err:
        pytest.fail(f"no PipeWire stack: {err}")
    try:
        host = pipewire_host(monkeypatch, stack)
        sink = "pipewire:da_pw_restarted"
        with host.watch_devices() as watcher:
            stack.restart()
            gone = collect(watcher, {(REMOVED, sink)}, 3.0)
            assert {e.kind for e in gone} <= {REMOVED, DEFAULT_CHANGED}
            back = collect(watcher, {(ADDED, sink)}, 5.0)
            assert sink in {str(e.device_id) for e in back}
    finally:
        stack.stop()
