"""The PortAudio host against real servers: Debian's libportaudio2, through
its JACK host API (a private ``jackd -L``) and its ALSA host API (the jack
and pulse plugin PCMs of a private ALSA configuration).

Round trips are measured on the audio (impulses) and compared with what the
stream reports. Tests that kill a server run the stream in a child process:
PortAudio's JACK host API cannot close a stream whose server died (it waits
ten minutes), so that process is left with an abandoned stream.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts import portaudio
from duplexio.hosts.portaudio import PortAudioBackend, PortAudioDevice, PortAudioHost
from support.servers import ALSA_JACK_CONFIG, JackServer, PulseServer
from tests.blocking import blocking_round_trips
from tests.conftest import server_unavailable
from tests.impulses import ImpulseLoop, assert_deadlines_from_wakeups, run_loop
from tests.recorders import Errors
from tests.signals import frequency, tone

RATE = 48000
JACK_API = "JACK Audio Connection Kit"
PCM = "daloop"


@pytest.fixture(autouse=True)
def _libportaudio() -> None:
    if not portaudio.is_available():
        server_unavailable("libportaudio2 is not installed (scripts/install-servers)")


@pytest.fixture
def alsa_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "asound.conf"
    path.write_text(ALSA_JACK_CONFIG.format(name=PCM))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(path))
    return path


@pytest.fixture
def on_jackd(jackd_128: JackServer, monkeypatch: pytest.MonkeyPatch) -> JackServer:
    """PortAudio's JACK host API talks to the session's 128-frame jackd."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_128.name)
    return jackd_128


@pytest.fixture
def jack_pcm(jackd_256: JackServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The jack PCM on a 256-frame jackd, listed by PortAudio's ALSA host API.

    On a 128-frame jackd PortAudio cannot set the PCM's period size
    (snd_pcm_hw_params_set_period_size_near fails) and leaves it out."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    return f"ALSA/{PCM}"


def pa_host() -> PortAudioHost:
    host = dio.host_from_id("portaudio")
    assert isinstance(host, PortAudioHost)
    return host


def device(key: str) -> PortAudioDevice:
    found = pa_host().device_by_id(f"portaudio:{key}")
    assert isinstance(found, PortAudioDevice), f"portaudio:{key} not listed: {pa_host().devices()}"
    return found


# -- devices -------------------------------------------------------------------------------


def test_jack_clients_are_duplex_devices_and_plugin_pcms_are_not(jack_pcm: str) -> None:
    loop = device(f"{JACK_API}/loopback")
    assert loop.supports_duplex() and loop.description.direction == "duplex"
    assert {r.min_sample_rate for r in loop.supported_output_configs()} == {RATE}
    assert str(loop.id) == f"portaudio:{JACK_API}/loopback"
    pcm = device(jack_pcm)
    assert pcm.supports_input() and pcm.supports_output() and not pcm.supports_duplex()
    assert pcm.description.direction == "input+output"
    with pytest.raises(dio.Error) as raised:
        pcm.build_duplex_stream(dio.DuplexStreamConfig(2, 2, RATE), lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "native ALSA" in raised.value.message


def test_portaudio_is_never_the_default_host_on_linux(on_jackd: JackServer) -> None:
    assert pa_host().devices()  # it has devices here, and still:
    assert dio.default_host().id is not dio.HostId.PORTAUDIO
    assert "PortAudio V19" in pa_host().name


def test_a_device_gone_from_portaudios_list_is_not_available(on_jackd: JackServer) -> None:
    loop = device(f"{JACK_API}/loopback")
    gone = PortAudioDevice(portaudio._Info(**{**loop._info.__dict__, "name": "no-such-client"}))
    with pytest.raises(dio.Error) as raised:
        gone.build_duplex_stream(dio.DuplexStreamConfig(2, 2, RATE), lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "no-such-client" in raised.value.message


# -- duplex through PortAudio's JACK host API ---------------------------------------------


@pytest.mark.parametrize("frames", [128, 256])
def test_round_trip_through_jack_loopback_is_constant_and_what_the_stream_reports(
    on_jackd: JackServer, frames: int
) -> None:
    dev = device(f"{JACK_API}/loopback")
    loop = ImpulseLoop(600)
    stream = dev.build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(frames)), loop
    )
    before = stream.latency  # known before the first block
    run_loop(stream, loop)
    found = loop.round_trips()
    assert len(found) >= 40, f"{len(found)} impulses, xruns at {loop.xrun_blocks}"
    # PortAudio's buffer processor adds one block to JACK's one cycle through
    # the loopback (the native JACK host: one cycle, 128), and says so.
    assert set(found) == {stream.latency.round_trip} == loop.reported
    assert stream.latency.round_trip == 128 + frames
    assert isinstance(stream.backend, PortAudioBackend) and stream.backend.host_api == JACK_API
    steps = [s for k, s in enumerate(loop.callback_steps, 1) if k not in loop.xrun_blocks]
    assert set(steps) == {frames} and loop.sizes == {frames}
    assert stream.latency == before  # and readable after close: the last figure
    assert stream.stats.cycles >= 600


def test_under_load_every_timestamp_discontinuity_is_flagged_on_its_block(
    on_jackd: JackServer, busy_processes: None
) -> None:
    dev = device(f"{JACK_API}/loopback")
    loop = ImpulseLoop(2000)
    stream = dev.build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(128)), loop
    )
    run_loop(stream, loop)
    loop.assert_discontinuities_flagged(128)
    assert set(loop.round_trips()) <= {stream.latency.round_trip}
    # No impulse lost with nothing flagged (one in three runs was, before the
    # JACK host API's stream time was read for loss on every block).
    assert loop.unflagged_losses(stream.latency.round_trip) == []
    assert_deadlines_from_wakeups(stream, 2000)


def test_a_blocking_duplex_stream_captures_what_it_wrote_one_round_trip_later(
    on_jackd: JackServer,
) -> None:
    dev = device(f"{JACK_API}/loopback")
    stream = dev.build_duplex_stream(dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(128)))
    found = blocking_round_trips(stream, 1.5)
    stream.close()
    assert found.offsets, f"no impulse came back before a flag: {found.flagged[:3]}"
    assert set(found.offsets) == {256} == set(found.reported)


def test_a_new_jack_buffer_size_ends_the_stream_before_its_report_is_wrong(
    jackd_private: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PortAudio absorbs JACK's new buffer size and keeps calling back with
    # the old block size; the round trip then moves (256 -> 384 measured
    # here). The host sees it in PortAudio's exact JACK times and ends the stream.
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_private.name)
    dev = device(f"{JACK_API}/loopback")
    errors = Errors()
    loop = ImpulseLoop(10**9)
    stream = dev.build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(128)), loop, errors
    )
    with stream:
        time.sleep(0.3)
        changed = jackd_private.tool("jack_bufsize", "256")
        assert changed.returncode == 0, changed.stderr
        assert errors.arrived.wait(20)
    [err] = errors.items
    assert err.kind is dio.ErrorKind.STREAM_INVALIDATED and "latency" in err.message
    # Every impulse that came back before the end is the reported round trip.
    assert set(loop.round_trips()) <= {stream.latency.round_trip}


# -- the ALSA host API: plugin PCMs, one direction a stream -------------------------------


def test_a_tone_played_on_the_jack_pcm_is_recorded_from_it(jack_pcm: str) -> None:
    pcm = device(jack_pcm)
    config = dio.StreamConfig(1, RATE, dio.BufferSize.fixed(256))
    signal = tone(RATE, RATE, 1000.0).astype(np.float32)
    captured: list[np.ndarray] = []
    steps: list[tuple[int, bool]] = []
    last: list[int] = []

    def record(data: np.ndarray, info: dio.CallbackInfo) -> None:
        captured.append(data[:, 0].copy())
        t = info.timestamp.callback
        if last:
            steps.append((round((t - last[0]) * RATE / 1e9), info.xrun))
        last[:] = [t]

    position = [0]

    def play(data: np.ndarray, info: dio.CallbackInfo) -> None:
        n = len(data)
        data[:, 0] = np.resize(signal, position[0] + n)[position[0] :]
        position[0] = (position[0] + n) % RATE

    with pcm.build_output_stream(config, play), pcm.build_input_stream(config, record):
        time.sleep(1.5)
    heard = np.concatenate(captured)[-RATE // 2 :]
    assert abs(frequency(heard, RATE) - 1000.0) < 2.0
    # Timestamps step by whole blocks; every other step is flagged.
    assert all(step > 0 and step % 256 == 0 for step, _ in steps)
    assert all(flagged for step, flagged in steps if step != 256)


def test_a_device_of_many_rates_defaults_to_portaudios_default_rate_in_float32(
    pulseaudio: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pulse PCM takes any rate: each probed rate is a range of its own,
    and the default config took the first, 8 kHz (a rec() on a Windows
    default device recorded at 8 kHz). It is PortAudio's defaultSampleRate."""
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    pcm = device("ALSA/pulse")
    rates = {r.min_sample_rate for r in pcm.supported_input_configs()}
    assert 8000 in rates and len(rates) > 3, rates  # the case: many rates, 8 kHz first
    own = round(pcm._info.default_rate)
    for config in (pcm.default_input_config(), pcm.default_output_config()):
        assert (config.sample_rate, config.sample_format) == (own, dio.SampleFormat.F32)
    assert dio.rec(64, device=pcm, blocking=False).sample_rate == own
    assert dio.wait(20) is True


def test_the_pulse_pcm_runs_output_and_input_streams(
    pulseaudio: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    pcm = device("ALSA/pulse")
    assert not pcm.supports_duplex()
    config = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512))
    blocks = {"in": 0, "out": 0}

    def count(kind: str) -> Callable[[np.ndarray, dio.CallbackInfo], None]:
        def callback(data: np.ndarray, info: dio.CallbackInfo) -> None:
            blocks[kind] += 1

        return callback

    with (
        pcm.build_output_stream(config, count("out")),
        pcm.build_input_stream(config, count("in")) as inp,
    ):
        deadline = time.monotonic() + 20
        while min(blocks.values()) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inp.latency.input > 0
    assert min(blocks.values()) >= 50, blocks


# -- a server that dies -----------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import duplexio as dio
    device = dio.host_from_id("portaudio").device_by_id(sys.argv[1])
    errors = []
    config = dio.StreamConfig(2, 48000, dio.BufferSize.fixed(256))
    build = device.build_output_stream
    if device.supports_duplex():
        config = dio.DuplexStreamConfig(2, 2, 48000, dio.BufferSize.fixed(256))
        build = device.build_duplex_stream
    stream = build(config, lambda *args: None, errors.append)
    stream.start()
    while stream.stats.cycles < 20:
        time.sleep(0.01)
    print("running", flush=True)
    sys.stdin.readline()  # the server is killed meanwhile
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    begun = time.monotonic()
    stream.close()
    print(json.dumps({"kinds": [e.kind.name for e in errors],
                      "close_s": time.monotonic() - begun}), flush=True)
    """
)


def run_child_through_server_death(device_id: str, kill: object) -> dict[str, object]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, device_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "running"
        kill()  # type: ignore[operator]
        child.stdin.write("\n")
        child.stdin.flush()
        result: dict[str, object] = json.loads(child.stdout.readline())
        assert child.wait(30) == 0
        return result
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_killing_jackd_reports_device_not_available(
    jackd_private: JackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_private.name)
    result = run_child_through_server_death(f"portaudio:{JACK_API}/loopback", jackd_private.kill)
    assert result["kinds"] == ["DEVICE_NOT_AVAILABLE"]
    # PortAudio cannot close it (the server is gone): close() abandons it, bounded.
    assert isinstance(result["close_s"], float) and result["close_s"] < 3.0


def test_killing_pulseaudio_under_the_pulse_pcm_reports_device_not_available(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    result = run_child_through_server_death("portaudio:ALSA/pulse", pulseaudio_private.kill)
    assert result["kinds"] == ["DEVICE_NOT_AVAILABLE"]


# -- where libportaudio comes from --------------------------------------------------------------


def _system_library() -> Path:
    found = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in found.splitlines():
        if line.strip().startswith("libportaudio.so.2 ("):
            return Path(line.split("=>")[-1].strip())
    pytest.skip("no libportaudio.so.2 in ldconfig's cache")


def test_the_copy_inside_sounddevices_wheel_is_found_first(tmp_path: Path) -> None:
    # sounddevice's macOS and Windows wheels carry libportaudio in the
    # _sounddevice_data package; here the system's copy stands in for it.
    folder = tmp_path / "_sounddevice_data" / "portaudio-binaries"
    folder.mkdir(parents=True)
    (tmp_path / "_sounddevice_data" / "__init__.py").write_text("")
    shutil.copy(_system_library(), folder / "libportaudio64bit.so")
    code = "from duplexio.hosts import portaudio; print(portaudio._load())"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).parents[2] / 'src'}"}
    env.pop("DUPLEXIO_PORTAUDIO", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(folder / "libportaudio64bit.so")


def test_a_library_that_does_not_load_makes_the_host_unavailable(tmp_path: Path) -> None:
    bogus = tmp_path / "libportaudio.so.2"
    bogus.write_text("not a library")
    code = textwrap.dedent(
        """
        import duplexio as dio
        print(dio.HostId.PORTAUDIO in dio.available_hosts())
        try:
            dio.host_from_id("portaudio")
        except dio.Error as err:
            print(err.kind.name, str(err))
        """
    )
    env = {**os.environ, "DUPLEXIO_PORTAUDIO": str(bogus)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "False"
    assert second.startswith("HOST_UNAVAILABLE") and str(bogus) in second
