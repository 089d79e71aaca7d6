"""duplexio.pyaudio: PyAudio's names, signatures and meanings on the virtual
host (its programs on every real server: tests/hosts/test_foreign_programs.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import duplexio as dio
import duplexio.pyaudio as pyaudio
from duplexio.hosts.virtual import VirtualDevice, VirtualHost


@pytest.fixture
def loop(virtual_host: VirtualHost) -> Iterator[VirtualDevice]:
    """A 2-channel 256-frame virtual loopback, the default device."""
    device = virtual_host.add_loopback("pa-loop", buffer_sizes=(256, 256), default_buffer_size=256)
    dio.default.device = device
    yield device
    virtual_host.remove_device(device.id)


@pytest.fixture
def p(loop: VirtualDevice) -> Iterator[pyaudio.PyAudio]:
    manager = pyaudio.PyAudio()
    yield manager
    manager.terminate()


def test_formats_and_sizes_are_portaudios() -> None:
    assert (pyaudio.paFloat32, pyaudio.paInt16, pyaudio.paUInt8) == (1, 8, 32)
    assert [pyaudio.get_sample_size(f) for f in (1, 2, 4, 8, 16, 32)] == [4, 4, 3, 2, 1, 1]
    assert [pyaudio.get_format_from_width(w) for w in (1, 2, 3, 4)] == [32, 8, 4, 1]
    assert pyaudio.get_format_from_width(1, unsigned=False) == pyaudio.paInt8
    with pytest.raises(ValueError):
        pyaudio.get_format_from_width(5)


@pytest.mark.parametrize(
    ("kwargs", "kind", "errno"),
    [
        ({"output": True, "format": pyaudio.paInt24}, OSError, pyaudio.paSampleFormatNotSupported),
        ({"output": True, "format": 3}, ValueError, pyaudio.paSampleFormatNotSupported),
        ({}, ValueError, pyaudio.paBadIODeviceCombination),
        ({"output": True, "channels": 3}, OSError, pyaudio.paInvalidChannelCount),
        ({"output": True, "channels": 0}, ValueError, pyaudio.paInvalidChannelCount),
        ({"output": True, "rate": 44100.5}, ValueError, pyaudio.paInvalidSampleRate),
        ({"output": True, "output_device_index": 999}, ValueError, pyaudio.paInvalidDevice),
        (
            {"output": True, "output_host_api_specific_stream_info": object()},
            OSError,
            pyaudio.paIncompatibleHostApiSpecificStreamInfo,
        ),
    ],
)
def test_errors_are_oserrors_with_portaudios_code(
    p: pyaudio.PyAudio, kwargs: dict[str, Any], kind: type[Exception], errno: int
) -> None:
    args = {"format": pyaudio.paInt16, "channels": 1, "rate": 48000, **kwargs}
    with pytest.raises(kind) as raised:
        p.open(**args)
    err = raised.value
    assert isinstance(err, dio.Error) and isinstance(err, OSError)
    assert err.errno == errno and err.args[0] == errno and len(str(err)) < 400


def test_device_and_host_api_dicts(p: pyaudio.PyAudio, loop: VirtualDevice) -> None:
    info = p.get_default_output_device_info()
    assert set(info) == {
        "index", "structVersion", "name", "hostApi", "maxInputChannels", "maxOutputChannels",
        "defaultLowInputLatency", "defaultLowOutputLatency", "defaultHighInputLatency",
        "defaultHighOutputLatency", "defaultSampleRate",
    }  # fmt: skip
    assert info["name"] == loop.name and info["maxOutputChannels"] == 2
    assert p.get_device_info_by_index(info["index"]) == info
    api = p.get_host_api_info_by_index(info["hostApi"])
    assert api["name"] == "duplexio virtual" and api["type"] == pyaudio.paInDevelopment
    members = [
        p.get_device_info_by_host_api_device_index(api["index"], j)["index"]
        for j in range(api["deviceCount"])
    ]
    assert info["index"] in members
    assert p.is_format_supported(48000, output_device=info["index"], output_channels=2,
                                 output_format=pyaudio.paInt16)  # fmt: skip
    with pytest.raises(ValueError) as raised:
        p.is_format_supported(48000, output_device=info["index"], output_channels=9,
                              output_format=pyaudio.paInt16)  # fmt: skip
    assert raised.value.errno == pyaudio.paInvalidChannelCount  # type: ignore[attr-defined]


def test_start_stream_on_a_running_stream_does_nothing(p: pyaudio.PyAudio) -> None:
    stream = p.open(format=pyaudio.paInt16, channels=1, rate=48000, output=True, start=False)
    assert stream.is_stopped() and not stream.is_active()
    stream.start_stream()
    stream.start_stream()
    assert stream.is_active() and not stream.is_stopped()
    stream.stop_stream()
    assert stream.is_stopped()
    stream.close()


def test_a_callback_gets_bytes_and_ends_the_stream_as_its_flag_says(p: pyaudio.PyAudio) -> None:
    seen: list[tuple[int, int, float, int]] = []

    def callback(in_data: bytes, frame_count: int, time_info: dict[str, float], status: int) -> Any:
        seen.append((len(in_data), frame_count, time_info["output_buffer_dac_time"]
                     - time_info["input_buffer_adc_time"], status))  # fmt: skip
        flag = pyaudio.paComplete if len(seen) == 6 else pyaudio.paContinue
        return in_data, flag

    stream = p.open(format=pyaudio.paInt16, channels=2, rate=48000, input=True, output=True,
                    frames_per_buffer=300, stream_callback=callback)  # fmt: skip
    deadline = time.monotonic() + 5
    while stream.is_active() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.is_active() and not stream.is_stopped() and len(seen) == 6
    assert {s[:2] for s in seen} == {(300 * 2 * 2, 300)}
    trip = stream.get_input_latency() + stream.get_output_latency()
    assert all(abs(s[2] - trip) < 1e-6 and s[3] == 0 for s in seen)
    stream.start_stream()  # PyAudio's: still "running", so nothing happens
    assert not stream.is_active()
    stream.close()


def test_fewer_bytes_than_the_block_end_the_stream_and_abort_halts(p: pyaudio.PyAudio) -> None:
    for flag, short in ((pyaudio.paContinue, True), (pyaudio.paAbort, False)):
        calls = [0]

        def callback(in_data: Any, frames: int, info: Any, status: int, *, short: bool = short,
                     flag: int = flag, calls: list[int] = calls) -> Any:  # fmt: skip
            calls[0] += 1
            return bytes(frames * 2 if not short or calls[0] < 3 else 10), flag

        stream = p.open(format=pyaudio.paInt16, channels=1, rate=48000, output=True,
                        stream_callback=callback)  # fmt: skip
        time.sleep(0.3)
        assert not stream.is_active() and calls[0] == (3 if short else 1)
        stream.close()


def test_read_raises_input_overflowed_where_input_was_lost(
    p: pyaudio.PyAudio, loop: VirtualDevice
) -> None:
    stream = p.open(format=pyaudio.paFloat32, channels=1, rate=48000, input=True)
    stream.read(256)
    loop.stall(0.05)
    time.sleep(0.2)
    with pytest.raises(OSError) as raised:
        for _ in range(100):
            stream.read(256)
    assert raised.value.errno == pyaudio.paInputOverflowed
    loop.stall(0.05)
    time.sleep(0.2)
    for _ in range(100):
        data = stream.read(256, exception_on_overflow=False)
    assert isinstance(data, bytes) and len(data) == 1024
    stream.close()


def test_write_raises_output_underflowed_only_when_asked(p: pyaudio.PyAudio) -> None:
    stream = p.open(format=pyaudio.paInt16, channels=1, rate=48000, output=True)
    silence = np.zeros(480, np.int16).tobytes()
    time.sleep(0.1)  # nothing written: the output ran dry
    stream.write(silence)
    time.sleep(0.1)
    with pytest.raises(OSError) as raised:
        stream.write(silence, exception_on_underflow=True)
    assert raised.value.errno == pyaudio.paOutputUnderflowed
    stream.write(silence, num_frames=100)
    assert stream.get_write_available() > 0
    with pytest.raises(OSError) as raised:
        stream.read(10)
    assert raised.value.errno == pyaudio.paCanNotReadFromAnOutputOnlyStream
    stream.close()


def test_terminate_closes_every_stream(p: pyaudio.PyAudio) -> None:
    streams = [p.open(format=pyaudio.paInt16, channels=1, rate=48000, output=True)
               for _ in range(3)]  # fmt: skip
    p.terminate()
    assert all(s.is_stopped() and not s.is_active() for s in streams)
