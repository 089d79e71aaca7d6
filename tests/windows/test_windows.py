"""duplexio's Windows wheel, installed and run under wine (scripts/windows-check).

wine's audio driver reaches a private PulseAudio with one null sink: PortAudio
(the copy the wheel carries) sees it through its WASAPI, MME and DirectSound
host APIs as an output ("Null Output") and an input ("Monitor of Null
Output", what the sink plays). The two are separate devices, so duplex runs
as their aggregate, whose round trip is fixed when it starts. This folder
needs nothing but the installed wheel, numpy and pytest: Linux's suite
leaves it out (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import duplexio as dio

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows wheel's tests")

RATE = 48000
APIS = ("Windows WASAPI", "MME", "Windows DirectSound")
WASAPI_OUT = "portaudio:Windows WASAPI/Null Output"
WASAPI_MONITOR = "portaudio:Windows WASAPI/Monitor of Null Output"


def wasapi_pair() -> dio.AggregateDevice:
    """WASAPI's null sink as output and its monitor as input, one duplex device."""
    return dio.aggregate(WASAPI_MONITOR, WASAPI_OUT, fill=0.05)


def test_the_installed_wheel_answers_with_its_own_engine_and_portaudio() -> None:
    from duplexio.hosts import portaudio

    package = Path(dio.__file__).parent
    assert "site-packages" in package.parts
    assert (package / "_engine" / "duplexio.dll").is_file()
    assert not list(package.rglob("*.pyd")), "the engine is a plain DLL, not an extension"
    dio.query_devices("portaudio")
    assert portaudio._loaded_from == str(
        package / "hosts" / "portaudio" / "bundled" / "portaudio.dll"
    )
    assert (package / "hosts" / "portaudio" / "bundled" / "PortAudio-LICENSE.txt").is_file()


def test_every_host_api_lists_the_sink_and_its_monitor() -> None:
    devices = {str(d.id): d for d in dio.query_devices()}
    for api in APIS:
        out, monitor = (
            devices[f"portaudio:{api}/Null Output"],
            devices[f"portaudio:{api}/Monitor of Null Output"],
        )
        assert out.supports_output() and not out.supports_input()
        assert monitor.supports_input() and not monitor.supports_output()
    assert {"portaudio", "virtual"} <= {h.value for h in dio.available_hosts()}
    assert dio.default_host().id.value == "portaudio"


def test_default_configs_run_at_a_real_rate_not_the_lowest_supported() -> None:
    """PortAudio lists 8-192 kHz for every device under wine; the default is the
    device's own rate (the sink's 48 kHz), never the range's 8 kHz floor."""
    for api in APIS:
        out = dio.find_device(f"portaudio:{api}/Null Output", direction="output")
        monitor = dio.find_device(f"portaudio:{api}/Monitor of Null Output", direction="input")
        for config in (out.default_output_config(), monitor.default_input_config()):
            assert config.sample_rate in (44100, 48000), (api, config)
            assert config.channels == 2


def test_a_callback_stream_hears_what_it_plays() -> None:
    """A duplex callback plays a tone on WASAPI's sink and hears it on the monitor."""
    agg = wasapi_pair()
    heard: list[float] = []
    times: list[int] = []
    phase = 0

    def callback(
        inp: np.ndarray[Any, Any], out: np.ndarray[Any, Any], info: dio.DuplexCallbackInfo
    ) -> None:
        nonlocal phase
        n = out.shape[0]
        out[:] = (0.25 * np.sin(2 * np.pi * 1000 * (phase + np.arange(n)) / RATE))[:, None]
        phase += n
        heard.append(float(np.abs(inp).max()))
        times.append(info.output.timestamp.callback)

    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    with agg.build_duplex_stream(config, callback) as stream:
        stream.wait(2.0)
        assert stream.error is None
    assert len(heard) > 100
    assert max(heard[-50:]) > 0.2, "the tone never came back"
    assert all(b > a for a, b in itertools.pairwise(times)), "timestamps go forward"


def test_blocking_streams_write_and_read() -> None:
    out_device = dio.find_device(WASAPI_OUT, direction="output")
    in_device = dio.find_device(WASAPI_MONITOR, direction="input")
    noise = np.random.default_rng(2).uniform(-0.3, 0.3, (RATE, 2)).astype(np.float32)
    config = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(480))
    with (
        in_device.build_input_stream(config) as rec,
        out_device.build_output_stream(config) as play,
    ):
        play.write(noise)
        got, _ = rec.read(RATE // 2)
        play.write(noise)
        got2, _ = rec.read(RATE // 2)
    assert got.shape == (RATE // 2, 2) and got.dtype == np.float32
    assert float(np.abs(np.concatenate([got, got2])).max()) > 0.1, "the noise never came back"


def test_a_program_stream_records_what_it_plays_at_a_fixed_lag() -> None:
    noise = np.zeros((RATE, 2), np.float32)
    noise[RATE // 4 : 3 * RATE // 4] = np.random.default_rng(1).uniform(-0.5, 0.5, (RATE // 2, 1))
    recorded = dio.playrec(noise, RATE, input_channels=2, device=wasapi_pair())
    assert recorded.shape == (RATE, 2)
    x, y = noise[:, 0].astype(np.float64), recorded[:, 0].astype(np.float64)
    corr = np.fft.irfft(np.fft.rfft(y, 2 * RATE) * np.conj(np.fft.rfft(x, 2 * RATE)))
    peak = corr.max() / np.sqrt((x * x).sum() * (y * y).sum())
    assert peak > 0.5, f"normalised correlation {peak:.3f}"


def test_async_for_runs_on_windows_default_event_loop() -> None:
    """Windows' default loop (proactor) has no add_reader: async for must not need it."""
    device = dio.find_device(WASAPI_MONITOR, direction="input")

    async def main() -> tuple[str, int]:
        blocks = 0
        with device.build_input_stream(
            dio.StreamConfig(2, RATE, dio.BufferSize.fixed(480))
        ) as stream:
            async for block, _status in stream:
                assert block.shape == (480, 2)
                blocks += 1
                if blocks == 50:
                    break
        return type(asyncio.get_running_loop()).__name__, blocks

    loop_name, blocks = asyncio.run(main())
    assert loop_name == "ProactorEventLoop" and blocks == 50


def test_async_for_ends_when_another_thread_closes_the_stream() -> None:
    device = dio.find_device(WASAPI_MONITOR, direction="input")
    some_came = threading.Event()
    closed_at: list[float] = []

    def close_later(stream: dio.Stream) -> None:
        some_came.wait(10)
        closed_at.append(time.monotonic())
        stream.close()

    async def main() -> int:
        blocks = 0
        stream = device.build_input_stream(dio.StreamConfig(2, RATE, dio.BufferSize.fixed(480)))
        stream.start()
        threading.Thread(target=close_later, args=(stream,)).start()
        async for _ in stream:
            blocks += 1
            if blocks == 10:
                some_came.set()
        return blocks

    blocks = asyncio.run(asyncio.wait_for(main(), 20))
    ended = time.monotonic()
    assert blocks >= 10 and closed_at, "no block came in 10 s"
    assert ended - closed_at[0] < 1.0, "async for went on after close()"


def test_round_trips_through_wasapi_are_found_and_constant() -> None:
    """Each impulse comes back at the same lag within a stream, save where the stream
    flagged a glitch (wine's WASAPI may restart a side then). PortAudio's report of
    the latency under wine is not the measured one (the docs give both)."""
    report = dio.measure_latency(wasapi_pair(), sample_rate=RATE, impulses=5, interval=0.2)
    print(
        f"measured {report.round_trips} after {report.after_xruns} xruns, "
        f"reported {report.reported}"
    )
    assert len(report.round_trips) + report.glitched == 5 and report.lost == 0
    assert len(report.round_trips) >= 2
    # An aggregate holds its read position to a frame once locked.
    stretches: dict[int, list[int]] = {}
    for after, lag in zip(report.after_xruns, report.round_trips, strict=True):
        stretches.setdefault(after, []).append(lag)
    assert all(max(lags) - min(lags) <= 1 for lags in stretches.values()), stretches


def test_the_virtual_loopback_is_sample_exact_on_windows() -> None:
    report = dio.measure_latency("virtual:loopback", impulses=3, interval=0.05)
    assert report.round_trips == report.expected
