"""The library's own face, where a user first touches it: a callback of the
wrong shape refused at build time, an error reported once, configs taken in
the forms a user has at hand, results that print as a person reads them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualDevice


def test_a_callback_of_the_wrong_shape_is_refused_when_the_stream_is_built(
    loopback: VirtualDevice,
) -> None:
    def sounddevice_style(indata: Any, outdata: Any, frames: int, time: Any, status: Any) -> None:
        pass

    with pytest.raises(dio.Error) as raised:
        loopback.build_duplex_stream(loopback.default_duplex_config(), sounddevice_style)
    message = str(raised.value)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert "(input, output, info)" in message and "sounddevice_style" in message
    assert "duplexio.sounddevice" in message
    with pytest.raises(dio.Error, match=r"\(data, info\)"):
        loopback.build_input_stream(loopback.default_input_config(), lambda data: None)
    # What can take the arguments passes: defaults, *args, a callable object.
    loopback.build_input_stream(loopback.default_input_config(), lambda *a: None).close()
    loopback.build_input_stream(loopback.default_input_config(), print).close()


def test_a_callbacks_exception_is_raised_by_wait_and_not_logged_as_well(
    loopback: VirtualDevice, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(inp: Any, out: Any, info: Any) -> None:
        raise ValueError("boom")

    config = loopback.default_duplex_config()
    with caplog.at_level(logging.ERROR, logger="duplexio"):
        with (
            loopback.build_duplex_stream(config, boom) as stream,
            pytest.raises(dio.Error) as raised,
        ):
            stream.wait(5)
        time.sleep(2 * dio.stream.REPORT_GRACE_SECONDS)
    assert raised.value.kind is dio.ErrorKind.CALLBACK_FAILED
    assert isinstance(raised.value.__cause__, ValueError)
    assert not [r for r in caplog.records if "boom" in r.getMessage()]


def test_an_error_nobody_takes_is_logged_once(
    loopback: VirtualDevice, caplog: pytest.LogCaptureFixture
) -> None:
    failed = threading.Event()

    def boom(inp: Any, out: Any, info: Any) -> None:
        failed.set()
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="duplexio"):
        stream = loopback.build_duplex_stream(loopback.default_duplex_config(), boom)
        stream.start()
        assert failed.wait(5)
        time.sleep(4 * dio.stream.REPORT_GRACE_SECONDS)
        stream.close()
    logged = [r for r in caplog.records if "boom" in r.getMessage()]
    assert len(logged) == 1 and "CALLBACK_FAILED" in logged[0].getMessage()


def test_wait_on_a_stream_never_started_raises(loopback: VirtualDevice) -> None:
    with loopback.build_input_stream(loopback.default_input_config().config()) as stream:
        stream.pause()
    unstarted = loopback.build_input_stream(loopback.default_input_config().config())
    with pytest.raises(dio.Error) as raised:
        unstarted.wait(0.1)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert "start()" in str(raised.value)
    unstarted.close()
    assert stream.wait(0.1)  # started once: stopped, returns


def test_configs_in_the_forms_at_hand(loopback: VirtualDevice) -> None:
    """A SupportedStreamConfig (what default_input_config() returns), an int
    buffer size, a whole-number float rate."""
    with loopback.build_input_stream(loopback.default_input_config()) as stream:
        assert stream.sample_rate == 48000
    config = dio.StreamConfig(2, 48000.0, 512)  # type: ignore[arg-type]
    assert config == dio.StreamConfig(2, 48000, dio.BufferSize.fixed(512))
    assert dio.DuplexStreamConfig(1, 1, 44100.0, 64).buffer_size == dio.BufferSize.fixed(64)  # type: ignore[arg-type]
    for bad in (44100.5, float("nan"), True):
        with pytest.raises(dio.Error) as raised:
            dio.StreamConfig(2, bad)  # type: ignore[arg-type]
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    with pytest.raises(dio.Error, match="an int"):
        dio.StreamConfig(2, 48000, 512.0)  # type: ignore[arg-type]


def test_the_stream_says_its_dtype_and_the_callback_its_frames(loopback: VirtualDevice) -> None:
    seen: list[int] = []
    config = loopback.default_duplex_config()

    def callback(inp: Any, out: Any, info: dio.DuplexCallbackInfo) -> None:
        seen.append(info.frames)

    stream = loopback.build_duplex_stream(config, callback, input_format="int16")
    assert stream.dtype == (np.dtype(np.int16), np.dtype(np.float32))
    with stream:
        time.sleep(0.1)
    assert seen and set(seen) == {stream.buffer_size}
    out = loopback.build_output_stream(loopback.default_output_config(), sample_format="u8")
    assert out.dtype == np.dtype(np.uint8)
    out.close()


def test_a_latency_report_prints_as_a_person_reads_it(loopback: VirtualDevice) -> None:
    report = dio.measure_latency(loopback, impulses=3)
    text, shown = str(report), repr(report)
    assert text.startswith(f"round trip {report.frames} frames = ")
    assert "matches the stream's report" in text and "0 lost" in text
    assert f"response=<{len(report.response)} samples>" in shown
    assert len(shown) < 500 and len(text) < 300  # not the impulse response's samples
