"""Device events from the real servers, started by the tests: null sinks
loaded and unloaded (PulseAudio, PipeWire through pipewire-pulse), defaults
moved with the servers' own tools, a second JACK client's ports, each server
killed and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import duplexio as dio
from duplexio.watch import DeviceEvent, DeviceEventKind
from support.servers import (
    ALSA_JACK_CONFIG,
    JackServer,
    PipeWire,
    PulseServer,
    ServerUnavailable,
    start_jackd,
    start_pipewire,
    stop_process,
)
from tests.hosts.devices import pipewire_host

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


def metronome(server: JackServer, name: str) -> subprocess.Popen[bytes]:
    """A second JACK client with an audio port: ``jack_metro`` named `name`."""
    return subprocess.Popen(
        ["jack_metro", "-n", name, "-b", "60"], env=server.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def jack_host(monkeypatch: pytest.MonkeyPatch, server: JackServer) -> dio.Host:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    return dio.host_from_id("jack")


def test_a_second_jack_clients_ports_are_a_device_that_comes_and_goes(
    jackd_private: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = jack_host(monkeypatch, jackd_private)
    with host.watch_devices() as watcher:
        assert watcher.get(1.0) is None, "an idle server told of a change"
        metro = metronome(jackd_private, "da_metro")
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
                "pw-metadata",
                "0",
                "default.configured.audio.sink",
                '{"name":"da_pw_watched"}',
                "Spa:String:JSON",
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


def test_the_cli_prints_each_event_as_a_line_until_ctrl_c(pulseaudio_private: PulseServer) -> None:
    command = [sys.executable, "-m", "duplexio", "devices", "--host", "pulse", "--watch"]
    watching = subprocess.Popen(
        command, env=pulseaudio_private.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert watching.stderr is not None and watching.stdout is not None
        assert "watching" in watching.stderr.readline()  # the table is out, the watch is on
        loaded = pulseaudio_private.run(
            "pactl", "load-module", "module-null-sink", "sink_name=da_cli_watched"
        )
        assert loaded.returncode == 0, loaded.stderr
        deadline = time.monotonic() + 10
        lines: list[str] = []
        while not any("added" in x and "pulse:da_cli_watched " in x + " " for x in lines):
            assert time.monotonic() < deadline, lines
            lines.append(watching.stdout.readline())
        watching.send_signal(signal.SIGINT)
        assert watching.wait(5) == 0
    finally:
        if watching.poll() is None:
            os.kill(watching.pid, signal.SIGKILL)
            watching.wait()


def heard_on_loopback(host: dio.Host, seconds: float = 1.5) -> float:
    """The peak recorded on the host's loopback device while a 0.25 sine plays
    on its default output."""
    loopback = host.default_loopback_device()
    output = host.default_output_device()
    assert loopback is not None and output is not None
    phase = [0]

    def play(out: np.ndarray, info: object) -> None:  # a sine, on every channel
        n = np.arange(phase[0], phase[0] + len(out))
        out[:] = (0.25 * np.sin(2 * np.pi * 440 * n / 48000))[:, None]
        phase[0] += len(out)

    peaks: list[float] = []
    config = dio.StreamConfig(2, 48000, dio.BufferSize.fixed(512))
    player = output.build_output_stream(config, play)
    recorder = loopback.build_input_stream(
        config, lambda inp, info: peaks.append(float(np.abs(inp).max()))
    )
    with player, recorder:
        time.sleep(seconds)
    return max(peaks, default=0.0)


def test_pulse_loopback_is_the_default_sinks_monitor_and_records_what_it_plays(
    pulseaudio_private: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pulse_host(monkeypatch, pulseaudio_private)
    loopback = host.default_loopback_device()
    assert loopback is not None
    assert str(loopback.id) == f"pulse:{pulseaudio_private.sink}.monitor"
    assert not loopback.supports_output()
    # The null sink takes a while to start its first stream (docs/hosts/pulse.md).
    assert heard_on_loopback(host, 3.0) > 0.2
    loaded = pulseaudio_private.run("pactl", "load-module", "module-null-sink", "sink_name=da_lb")
    assert loaded.returncode == 0, loaded.stderr
    pulseaudio_private.run("pactl", "set-default-sink", "da_lb")
    moved = host.default_loopback_device()
    assert moved is not None and str(moved.id) == "pulse:da_lb.monitor"
    [row] = [x for x in str(dio.query_devices("pulse")).splitlines() if "pulse:da_lb.monitor" in x]
    assert "loopback" in row


def test_pipewire_loopback_is_the_default_sinks_monitor_and_records_what_it_plays(
    pipewire: PipeWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pipewire_host(monkeypatch, pipewire)
    loopback = host.default_loopback_device()
    assert loopback is not None and str(loopback.id) == f"pipewire:{pipewire.sink}.monitor"
    assert host.device_by_id(loopback.id) is not None
    assert not loopback.supports_output() and not loopback.supports_duplex()
    assert heard_on_loopback(host) > 0.2


def test_jack_has_no_loopback_device(
    jackd_128: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert jack_host(monkeypatch, jackd_128).default_loopback_device() is None


ADDED_PCM = """
pcm.da_added {
    type plug
    slave.pcm "da_watch_loop"
    hint { description "a PCM added while watched" }
}
"""


def test_an_alsa_pcm_added_to_the_configuration_is_an_event_without_probing_idly(
    jackd_128: JackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ALSA tells nothing itself: the watcher looks at the cards and the
    # configuration files, and lists (which opens every PCM; here a JACK
    # client each) only when they changed.
    config = tmp_path / "asound.conf"
    config.write_text(ALSA_JACK_CONFIG.format(name="da_watch_loop"))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(config))
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    alsa = dio.host_from_id("alsa")
    with alsa.watch_devices() as watcher, dio.host_from_id("jack").watch_devices() as jack:
        assert watcher.get(1.2) is None and jack.get(0.1) is None, "idle, yet told of a change"
        with config.open("a") as f:
            f.write(ADDED_PCM)
        [added] = collect(watcher, {(ADDED, "alsa:da_added")}, 1.5)
        assert added.host is dio.HostId.ALSA


def test_every_host_watched_at_once_is_quiet_while_nothing_changes(
    jackd_128: JackServer, pulseaudio: PulseServer, pipewire: PipeWire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, pipewire.env[key])
    with dio.watch_devices() as watcher:
        assert {dio.HostId.JACK, dio.HostId.PULSE, dio.HostId.PIPEWIRE} <= set(watcher.hosts)
        assert watcher.get(2.0) is None


def test_portaudio_is_looked_at_twice_a_second_and_holds_still_while_it_streams(
    jackd_128: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PortAudio has no hotplug notice: its watcher lists it every half second.
    # Its list is fixed while it is initialised, so while a stream of ours
    # runs on it, a new JACK client shows only once that stream closes.
    from duplexio.hosts import portaudio

    if not portaudio.is_available():
        pytest.fail("libportaudio2 is not installed (scripts/install-servers)")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    host = dio.host_from_id("portaudio")
    metro_id = "portaudio:JACK Audio Connection Kit/da_pa_metro"

    with host.watch_devices() as watcher:
        metro = metronome(jackd_128, "da_pa_metro")
        try:
            collect(watcher, {(ADDED, metro_id)}, 3.0)
        finally:
            stop_process(metro)
        collect(watcher, {(REMOVED, metro_id)}, 4.0)
        loop = host.device_by_id("portaudio:JACK Audio Connection Kit/loopback")
        assert loop is not None
        stream = loop.build_output_stream(dio.StreamConfig(2, 48000), lambda out, info: None)
        with stream:
            metro = metronome(jackd_128, "da_pa_metro")
            try:
                assert watcher.get(1.5) is None, "PortAudio's list moved while it streamed"
            finally:
                stream.close()
            try:
                collect(watcher, {(ADDED, metro_id)}, 3.0)
            finally:
                stop_process(metro)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_watchers_leave_no_connection_fd_or_thread_behind(
    jackd_128: JackServer, pulseaudio: PulseServer, pipewire: PipeWire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, pipewire.env[key])
    hosts = [dio.host_from_id(h) for h in ("jack", "pulse", "pipewire")]
    for host in hosts:  # libraries loaded, first connections made and gone
        host.watch_devices().close()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(3):
        watchers = [host.watch_devices() for host in hosts]
        time.sleep(0.3)  # every source open
        clients = pulseaudio.run("pactl", "list", "clients").stdout
        assert "duplexio-watch" in clients
        for watcher in watchers:
            watcher.close()
    assert "duplexio-watch" not in pulseaudio.run("pactl", "list", "clients").stdout
    assert threading.active_count() == threads
    assert open_fds() == fds


def test_a_watcher_left_open_does_not_hold_the_program_at_exit(
    pulseaudio: PulseServer, jackd_128: JackServer
) -> None:
    program = (
        "import duplexio as dio, threading\n"
        "seen = []\n"
        "watcher = dio.watch_devices(seen.append)\n"
        "dio.host_from_id('jack').watch_devices()\n"
        "print('watching', flush=True)\n"
    )
    env = {**pulseaudio.env, "JACK_DEFAULT_SERVER": jackd_128.name}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "watching" in done.stdout and time.monotonic() - began < 20
