"""duplexio.sounddevice: python-sounddevice's names, signatures and meanings
on the virtual host (its programs on every real server:
tests/hosts/test_sounddevice_programs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import duplexio as dio
import duplexio.sounddevice as sd
from duplexio.hosts.virtual import VirtualDevice, VirtualHost


@pytest.fixture
def loop(virtual_host: VirtualHost) -> Iterator[str]:
    """A 2-channel virtual loopback of fixed 256-frame periods, as sd's default device."""
    device = virtual_host.add_loopback("sd-loop", buffer_sizes=(256, 256), default_buffer_size=256)
    sd._initialize()  # as a sounddevice user rescans: the table is taken once
    sd.default.device = str(device.id)
    yield str(device.id)
    sd.stop()
    sd.default.reset()
    virtual_host.remove_device(device.id)


# -- flags, errors, defaults ---------------------------------------------------------


def test_callback_flags_are_five_named_bits() -> None:
    assert not sd.CallbackFlags()
    flags = sd.CallbackFlags(2) | sd.CallbackFlags(4)
    assert flags and flags.input_overflow and flags.output_underflow
    assert not (flags.input_underflow or flags.output_overflow or flags.priming_output)
    assert str(flags) == "input overflow, output underflow"
    assert int(flags) == 6 and flags == sd.CallbackFlags(6)
    with pytest.raises(ValueError, match="five flag bits"):
        sd.CallbackFlags(99)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dtype": "complex64"}, "dtype"),
        ({"samplerate": 44100.5}, "44100.5"),
        ({"samplerate": 0}, "samplerate"),
        ({"channels": 0}, "channels"),
        ({"channels": (1, 2, 3)}, "pair"),
        ({"device": "no such device anywhere"}, "no such device anywhere"),
        ({"device": 10**6}, "1000000"),
        ({"latency": "medium"}, "medium"),
        ({"blocksize": -3}, "-3"),
        ({"callback": 3}, "callable"),
    ],
)
def test_a_bad_argument_is_a_value_error_and_a_portaudio_error(
    loop: str, kwargs: dict[str, Any], needle: str
) -> None:
    """As sounddevice raises ValueError for arguments; here also a duplexio.Error
    with its kind, raised before anything opens."""
    with pytest.raises(ValueError) as raised:
        sd.Stream(**kwargs)
    assert isinstance(raised.value, sd.PortAudioError) and isinstance(raised.value, dio.Error)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert needle in str(raised.value) and len(str(raised.value)) < 400


def test_what_has_no_meaning_here_is_refused_clearly(loop: str) -> None:
    for make in (lambda: sd.AsioSettings(channel_selectors=[0]), lambda: sd.WasapiSettings()):
        with pytest.raises(sd.PortAudioError) as raised:
            make()
        assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    with pytest.raises(sd.PortAudioError, match="extra_settings"):
        sd.OutputStream(extra_settings=object())
    with pytest.raises(sd.PortAudioError, match="int32"):
        sd.RawInputStream(dtype="int24")


def test_an_error_while_opening_is_a_portaudio_error(loop: str) -> None:
    with pytest.raises(sd.PortAudioError) as raised:
        sd.OutputStream(channels=3)  # the loopback has 2
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert not isinstance(raised.value, ValueError)
    with pytest.raises(sd.PortAudioError):
        sd.check_output_settings(channels=3)
    sd.check_input_settings(channels=2, dtype="int16", samplerate=44100)


def test_defaults_are_pairs_assigned_one_value_or_two(loop: str) -> None:
    table = sd.query_devices()
    sd.default.device = loop
    ins, outs = sd.default.device
    assert ins == outs and table[ins]["name"] == dio.find_device(loop, direction="input").name
    sd.default.dtype = "int16", "float32"
    assert list(sd.default.dtype) == ["int16", "float32"] and sd.default.dtype["input"] == "int16"
    sd.default.channels = 1
    assert list(sd.default.channels) == [1, 1]
    sd.default.channels[1] = 2
    assert list(sd.default.channels) == [1, 2]
    with sd.Stream() as stream:
        assert stream.channels == (1, 2) and stream.dtype == ("int16", "float32")
    with pytest.raises(ValueError, match="no 'samplerat'"):
        sd.default.samplerat = 48000
    sd.default.reset()
    assert list(sd.default.dtype) == ["float32", "float32"] and sd.default.blocksize == 0


def test_query_devices_gives_sounddevices_dicts_and_table(loop: str) -> None:
    info = sd.query_devices(loop)
    assert set(info) == {
        "name", "index", "hostapi", "max_input_channels", "max_output_channels",
        "default_low_input_latency", "default_low_output_latency",
        "default_high_input_latency", "default_high_output_latency", "default_samplerate",
    }  # fmt: skip
    assert (info["max_input_channels"], info["max_output_channels"]) == (2, 2)
    assert info["default_low_output_latency"] == pytest.approx(256 / 48000)
    assert info["default_samplerate"] == 48000.0
    table = sd.query_devices()
    assert table[info["index"]] == info
    line = next(x for x in repr(table).splitlines() if f" {info['index']} " in x[:5])
    assert line.startswith("*") and "(2 in, 2 out)" in line  # sd's default both ways
    assert sd.query_devices(kind="output") == info
    api = sd.query_hostapis(info["hostapi"])
    assert api["name"] == "duplexio virtual" and info["index"] in api["devices"]
    with pytest.raises(ValueError):
        sd.query_devices(kind="sideways")


# -- streams ---------------------------------------------------------------------


def test_a_duplex_callback_gets_sounddevices_arguments(loop: str) -> None:
    """(indata, outdata, frames, time, status): 1000-frame blocks on 256-frame
    periods, re-blocked; time in seconds on stream.time's clock, the
    output after the input by the stream's latency."""
    seen: list[tuple[Any, ...]] = []
    done = threading.Event()

    def callback(indata: Any, outdata: Any, frames: int, time_: Any, status: Any) -> None:
        seen.append((indata.shape, outdata.shape, frames, time_.inputBufferAdcTime,
                     time_.outputBufferDacTime, time_.currentTime, bool(status)))  # fmt: skip
        outdata[:] = indata
        if len(seen) == 10:
            done.set()

    with sd.Stream(blocksize=1000, latency="low", callback=callback) as stream:
        assert done.wait(10)
        now = stream.time
        assert (stream.blocksize, stream.samplerate, stream.channels) == (1000, 48000.0, (2, 2))
        latency = stream.latency
    assert {s[:3] for s in seen} == {((1000, 2), (1000, 2), 1000)}
    trips = {round(s[4] - s[3], 6) for s in seen}
    assert trips == {round(sum(latency), 6)}
    assert all(s[3] < now + 1 and s[5] <= now for s in seen)
    assert not any(s[6] for s in seen)


def test_latency_high_gives_the_callback_a_period_and_says_so(loop: str) -> None:
    with sd.OutputStream(latency="low") as low, sd.OutputStream(latency="high") as high:
        assert high.latency == pytest.approx(low.latency + 256 / 48000)
    assert sd.OutputStream().latency == pytest.approx(high.latency)  # 'high' is the default


def test_lost_input_is_flagged_input_overflow(virtual_host: VirtualHost, loop: str) -> None:
    flags: list[Any] = []
    device = dio.find_device(loop, direction="input")
    assert isinstance(device, VirtualDevice)
    with sd.InputStream(callback=lambda i, f, t, s: flags.append(s)) as stream:
        time.sleep(0.1)
        device.stall(0.05)
        time.sleep(0.3)
        assert stream.active
    flagged = [f for f in flags if f]
    assert flagged and all(f.input_overflow and not f.output_underflow for f in flagged)


def test_callback_stop_drains_then_calls_finished_callback_once(loop: str) -> None:
    finished: list[float] = []
    blocks = [0]

    def callback(outdata: Any, frames: int, time_: Any, status: Any) -> None:
        outdata.fill(0.25)
        blocks[0] += 1
        if blocks[0] == 5:
            raise sd.CallbackStop

    stream = sd.OutputStream(callback=callback, finished_callback=lambda: finished.append(1))
    stream.start()
    deadline = time.monotonic() + 5
    while stream.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.active and not stream.stopped and finished == [1] and blocks[0] == 5
    stream.stop()
    assert stream.stopped and finished == [1]
    stream.close()
    assert stream.closed and finished == [1]


def test_abort_and_close_call_finished_callback_once_each_run(loop: str) -> None:
    finished: list[int] = []
    stream = sd.Stream(callback=lambda *a: None, finished_callback=lambda: finished.append(1))
    stream.start()
    stream.abort()
    assert finished == [1] and stream.stopped
    stream.start()
    stream.close()
    assert finished == [1, 1]


def test_raw_streams_hand_bytes(loop: str) -> None:
    got: list[int] = []

    def callback(indata: Any, outdata: Any, frames: int, time_: Any, status: Any) -> None:
        got.append(indata.nbytes)
        outdata[:] = bytes(len(outdata))

    with sd.RawStream(dtype="int16", blocksize=300, callback=callback) as stream:
        time.sleep(0.2)
        assert stream.samplesize == (2, 2)
    assert got and set(got) == {300 * 2 * 2}
    with sd.RawStream(dtype="int16", channels=1) as stream:
        assert stream.write(np.arange(960, dtype=np.int16).tobytes()) in (True, False)
        data, overflowed = stream.read(480)
        assert isinstance(data, memoryview) and data.nbytes == 960 and overflowed is False


def test_blocking_read_and_write(loop: str) -> None:
    with sd.Stream(channels=1, blocksize=500) as stream:
        for _ in range(5):
            data, overflowed = stream.read(500)
            assert data.shape == (500, 1) and data.dtype == np.float32 and not overflowed
            assert stream.write(data) in (True, False)
        assert stream.read_available >= 0 and stream.write_available > 0
    with pytest.raises(sd.PortAudioError):
        stream.read(10)


# -- play, rec, playrec -----------------------------------------------------------


def test_playrec_is_sounddevices_not_aligned(loop: str) -> None:
    """recording[n] came in the cycle that handed data[n] over: an impulse comes
    back one round trip later, the round trip the stream reports."""
    signal = np.zeros((9600, 2), np.float32)
    signal[100] = 0.5
    recording = sd.playrec(signal, 48000, channels=2)
    assert sd.wait() is None
    rate = sd.get_stream().samplerate
    trip = round(sum(sd.get_stream().latency) * rate)
    assert int(np.argmax(recording[:, 0])) == 100 + trip == 100 + 512


def test_mappings_put_columns_on_the_channels_they_name(loop: str) -> None:
    signal = np.zeros((4800, 1), np.float32)
    signal[100] = 0.5
    both = sd.playrec(signal, 48000, output_mapping=[2], input_mapping=[2, 1], blocking=True)
    assert both.shape == (4800, 2)
    assert both[:, 0].max() == pytest.approx(0.5) and not both[:, 1].any()


def test_rec_fills_the_array_it_returned_and_out(loop: str) -> None:
    out = np.full((2400, 2), 7, np.int16)
    got = sd.rec(out=out)
    assert got is out
    sd.wait()
    assert not out.any()  # the loopback is silent
    take = sd.rec(1200, 48000, channels=1, dtype="int16", blocking=True)
    assert take.shape == (1200, 1) and take.dtype == np.int16
    with pytest.raises(ValueError, match="frames"):
        sd.rec()


def test_play_stops_the_previous_and_loop_runs_until_stop(loop: str) -> None:
    tone = np.full(4800, 0.1, np.float32)
    sd.play(tone, 48000, loop=True)
    stream = sd.get_stream()
    time.sleep(0.3)
    assert stream.active  # 0.3 s of a 0.1 s loop
    sd.play(tone, 48000)
    assert stream.closed and not stream.active
    assert sd.wait() is None
    assert not sd.get_stream().active and sd.get_status() == sd.CallbackFlags()
    sd.stop()
