"""The ALSA host against real servers behind ALSA's plugin PCMs.

No sound card here (TESTING.md): each test points ``ALSA_CONFIG_PATH`` at a
private file that includes the system's ``alsa.conf`` and defines a
``type jack`` PCM bound to the ``loopback:*`` ports of a private jackd (a
real loop through the server, one JACK period long), and uses the ``pulse``
PCM against a private PulseAudio. Round trips are measured on the audio.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import duplexaudio as da
from duplexaudio.hosts.alsa import AlsaDevice, AlsaHost
from tests.conftest import server_unavailable
from tests.impulses import ImpulseLoop, run_loop
from tests.recorders import Errors
from tests.servers import JackServer, PulseServer

RATE = 48000
JACK_PCM = "daloop"
CONFIG = """<confdir:alsa.conf>
pcm.{name} {{
    type jack
    playback_ports {{ 0 loopback:playback_1 1 loopback:playback_2 }}
    capture_ports {{ 0 loopback:capture_1 1 loopback:capture_2 }}
    hint {{ description "duplexaudio test loop through jackd -L" }}
}}
"""


@pytest.fixture
def alsa_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ALSA configuration with the test's jack PCM; the host re-reads it."""
    path = tmp_path / "asound.conf"
    path.write_text(CONFIG.format(name=JACK_PCM))
    if not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_jack.so")):
        server_unavailable("the jack and pulse PCM types need libasound2-plugins")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(path))
    return path


@pytest.fixture
def jack_alsa(
    jackd_256: JackServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AlsaHost]:
    """The ALSA host with the jack PCM reaching a private 256-frame jackd."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    host = da.host_from_id("alsa")
    assert isinstance(host, AlsaHost)
    yield host


@pytest.fixture
def pulse_alsa(
    pulseaudio: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> AlsaHost:
    """The ALSA host with the pulse PCM reaching the session's PulseAudio."""
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    host = da.host_from_id("alsa")
    assert isinstance(host, AlsaHost)
    return host


def pcm(host: AlsaHost, name: str) -> AlsaDevice:
    device = host.device_by_id(f"alsa:{name}")
    assert isinstance(device, AlsaDevice), f"alsa:{name} did not open"
    return device


def offsets_after_last_xrun(loop: ImpulseLoop, frames: int) -> list[int]:
    """Round trips of the impulses sent after the last glitch (alignment is
    re-established by each recovery, so only the last stretch is one run)."""
    start = (max(loop.xrun_blocks) + 1) * frames if loop.xrun_blocks else 0
    first_pos = min(loop.sent) - 5 if loop.sent else 0
    found = []
    bounds = [*loop.sent[1:], None]
    for s, next_sent in zip(loop.sent, bounds, strict=True):
        if s - first_pos < start:
            continue
        back = [b for b in loop.back if b > s and (next_sent is None or b <= next_sent)]
        if back:
            found.append(back[0] - s)
    return found


def run_duplex(device: AlsaDevice, frames: int, blocks: int) -> tuple[ImpulseLoop, da.Stream]:
    loop = ImpulseLoop(blocks, every=8)
    config = da.DuplexStreamConfig(2, 2, RATE, da.BufferSize.fixed(frames))
    stream = device.build_duplex_stream(config, loop)
    run_loop(stream, loop)
    return loop, stream


# -- enumeration and configs --------------------------------------------------------------


def test_config_pcms_are_listed_with_their_hardware_ranges(jack_alsa: AlsaHost) -> None:
    ids = {str(d.id) for d in jack_alsa.devices()}
    assert f"alsa:{JACK_PCM}" in ids
    assert "alsa:null" not in ids  # opens both ways, but has no clock
    device = pcm(jack_alsa, JACK_PCM)
    assert device.description.driver == "alsa"
    assert device.description.direction == "duplex"
    assert device.supports_duplex()
    [f32_in] = [
        r for r in device.supported_input_configs() if r.sample_format is da.SampleFormat.F32
    ]
    # The jack plugin: the server's rate only, one channel per bound port,
    # periods from the server's period up.
    assert (f32_in.min_sample_rate, f32_in.max_sample_rate) == (RATE, RATE)
    assert (f32_in.min_channels, f32_in.max_channels) == (2, 2)
    assert f32_in.buffer_size.min_frames == 256
    default = device.default_duplex_config()
    assert (default.sample_rate, default.input_channels, default.output_channels) == (RATE, 2, 2)


def test_pulse_pcm_ranges_and_default_prefer_48k(pulse_alsa: AlsaHost) -> None:
    device = pcm(pulse_alsa, "pulse")
    assert "alsa:pulse" in {str(d.id) for d in pulse_alsa.devices()}
    [f32] = [r for r in device.supported_output_configs() if r.sample_format is da.SampleFormat.F32]
    assert f32.min_sample_rate < 48000 < f32.max_sample_rate
    assert f32.min_channels == 1 and f32.max_channels >= 2
    assert device.default_output_config().sample_rate == 48000
    assert "float32le" in " ".join(device.description.details)


def test_a_pcm_that_does_not_exist_is_not_available_naming_it(alsa_config: Path) -> None:
    host = da.host_from_id("alsa")
    assert host.device_by_id("alsa:no_such_pcm") is None
    with pytest.raises(da.Error) as raised:
        da.rec(256, RATE, 1, device="alsa:no_such_pcm")
    assert raised.value.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "no_such_pcm" in raised.value.message


def test_rate_and_channels_outside_the_ranges_are_refused_naming_them(jack_alsa: AlsaHost) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    with pytest.raises(da.Error) as raised:
        device.build_duplex_stream(da.DuplexStreamConfig(2, 2, 44100), lambda i, o, n: None)
    assert raised.value.kind is da.ErrorKind.UNSUPPORTED_CONFIG
    assert "44100" in raised.value.message and "48000" in raised.value.message
    with pytest.raises(da.Error) as raised:
        device.build_input_stream(da.StreamConfig(3, RATE), lambda d, n: None)
    assert raised.value.kind is da.ErrorKind.UNSUPPORTED_CONFIG
    assert "3" in raised.value.message and "2" in raised.value.message
    with pytest.raises(da.Error) as raised:
        device.build_output_stream(da.StreamConfig(2, RATE, da.BufferSize.fixed(64)), print)
    assert raised.value.kind is da.ErrorKind.UNSUPPORTED_CONFIG
    assert "64" in raised.value.message and "256" in raised.value.message


def test_a_device_whose_server_is_gone_refuses_to_build(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    device = pcm(da.host_from_id("alsa"), "pulse")  # type: ignore[arg-type]
    pulseaudio_private.kill()
    with pytest.raises(da.Error) as raised:
        device.build_output_stream(da.StreamConfig(2, RATE), lambda d, n: None)
    assert raised.value.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "alsa:pulse" in raised.value.message
    # Probed with the server gone: the reason, not "no output".
    with pytest.raises(da.Error) as raised:
        AlsaDevice("pulse").build_output_stream(da.StreamConfig(2, RATE), lambda d, n: None)
    assert raised.value.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "Connection refused" in raised.value.message


# -- duplex in lockstep ---------------------------------------------------------------------


def test_duplex_on_the_jack_pcm_keeps_one_offset_and_reports_it(jack_alsa: AlsaHost) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    loop, stream = run_duplex(device, 256, 1000)
    offsets = offsets_after_last_xrun(loop, 256)
    assert len(offsets) >= 60, f"xruns at {loop.xrun_blocks}"
    assert len(set(offsets)) == 1, f"offsets {sorted(set(offsets))}, xruns {loop.xrun_blocks}"
    # ALSA's delays cover the plugin's buffers; the loop through the
    # loopback ports adds JACK's one graph cycle, which no PCM delay shows.
    assert offsets[0] == stream.latency.round_trip + 256
    assert loop.sizes == {256}
    steps = [s for k, s in enumerate(loop.callback_steps, 1) if k not in loop.xrun_blocks]
    assert set(steps) == {256}


def test_duplex_on_the_pulse_pcm_keeps_one_offset(pulse_alsa: AlsaHost) -> None:
    device = pcm(pulse_alsa, "pulse")
    loop, stream = run_duplex(device, 256, 1000)
    offsets = offsets_after_last_xrun(loop, 256)
    assert len(offsets) >= 60, f"xruns at {loop.xrun_blocks}"
    assert len(set(offsets)) == 1, f"offsets {sorted(set(offsets))}, xruns {loop.xrun_blocks}"
    assert stream.latency.round_trip > 0
    assert stream.stats.xruns == len(loop.xrun_blocks)


@pytest.mark.xfail(
    strict=True,
    reason="the pulse PCM's delays count the null sink's own latency, which a loop "
    "through its monitor does not wait for: reported ~510, measured ~350 frames at 256",
)
def test_pulse_pcm_reported_round_trip_equals_the_measured_one(pulse_alsa: AlsaHost) -> None:
    loop, stream = run_duplex(pcm(pulse_alsa, "pulse"), 256, 400)
    assert set(offsets_after_last_xrun(loop, 256)) == {stream.latency.round_trip}


def test_linked_duplex_starts_both_directions_as_one(jack_alsa: AlsaHost) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    stream = device.build_duplex_stream(
        da.DuplexStreamConfig(2, 2, RATE, da.BufferSize.fixed(256)), lambda i, o, n: None
    )
    with stream:
        if not stream.backend.linked:
            pytest.skip(
                "snd_pcm_link answers ENOSYS on plugin PCMs (jack, pulse); it needs a "
                "hardware PCM, which this machine lacks"
            )
    loop, stream = run_duplex(device, 256, 400)
    offsets = offsets_after_last_xrun(loop, 256)
    assert len(set(offsets)) == 1


# -- one direction on the pulse PCM ---------------------------------------------------------


def test_output_stream_on_the_pulse_pcm_reaches_the_sink(
    pulse_alsa: AlsaHost, pulseaudio: PulseServer
) -> None:
    device = pcm(pulse_alsa, "pulse")
    blocks: list[int] = []

    def tone(out: np.ndarray, info: da.CallbackInfo) -> None:
        out[:] = 0.1
        blocks.append(out.shape[0])

    config = da.StreamConfig(2, RATE, da.BufferSize.fixed(512))
    with device.build_output_stream(config, tone) as stream:
        deadline = time.monotonic() + 20
        while len(blocks) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        inputs = pulseaudio.run("pactl", "list", "short", "sink-inputs").stdout
    assert len(blocks) >= 200 and set(blocks) == {512}
    assert inputs.strip(), "no sink input while the stream ran"
    assert stream.latency.output > 0


def test_input_stream_on_the_pulse_pcm_records_frames(pulse_alsa: AlsaHost) -> None:
    device = pcm(pulse_alsa, "pulse")
    got: list[int] = []
    done = threading.Event()

    def record(data: np.ndarray, info: da.CallbackInfo) -> None:
        got.append(data.shape[0])
        if len(got) >= 200:
            done.set()

    config = da.StreamConfig(1, RATE, da.BufferSize.fixed(256))
    with device.build_input_stream(config, record, sample_format=da.SampleFormat.I16) as stream:
        assert done.wait(30)
    assert set(got) == {256}
    assert stream.latency.input >= 256


# -- failures ---------------------------------------------------------------------------------


def stops_with_an_error(device: AlsaDevice, kill: Callable[[], None]) -> da.Error:
    """Run a duplex stream, kill the server behind the PCM, return what was reported."""
    errors = Errors()
    config = da.DuplexStreamConfig(2, 2, RATE, da.BufferSize.fixed(256))
    stream = device.build_duplex_stream(config, lambda i, o, n: None, errors, timeout=5)
    stream.start()
    time.sleep(0.5)
    kill()
    assert errors.arrived.wait(30)
    with pytest.raises(da.Error):
        stream.wait(30)
    stream.close()
    assert stream.closed
    return errors.items[0]


def test_killing_pulseaudio_mid_stream_stops_the_stream_with_an_error(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    device = pcm(da.host_from_id("alsa"), "pulse")  # type: ignore[arg-type]
    err = stops_with_an_error(device, pulseaudio_private.kill)
    assert err.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE


def test_killing_jackd_mid_stream_stops_the_stream_with_an_error(
    jackd_256: JackServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    device = pcm(da.host_from_id("alsa"), JACK_PCM)  # type: ignore[arg-type]
    err = stops_with_an_error(device, jackd_256.kill)
    assert err.kind is da.ErrorKind.DEVICE_NOT_AVAILABLE
