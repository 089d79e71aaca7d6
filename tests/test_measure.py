"""measure_latency reports round trips exactly; play, rec and playrec run in the
engine, and playrec's recording is aligned with what it played."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest

import duplexio as dio
from duplexio.measure import LatencyReport, measure_latency
from support.gil_hog import GilHog
from support.servers import JackServer


def clean(measure: Callable[[], LatencyReport], tries: int = 8) -> LatencyReport:
    """The first of `tries` reports with no glitch flagged (the virtual clock is a
    thread of this noisy machine: now and then it wakes a period late, loses the
    cycle and says so, or a callback misses its deadline). Only flagged runs
    are left out; a clean run must then be exact."""
    for _ in range(tries):
        report = measure()
        if report.xruns == 0 and report.late_blocks == 0:
            return report
    pytest.fail(f"the stream glitched in all {tries} runs: {report}")


@pytest.mark.parametrize(("frames", "latency"), [(128, None), (256, None), (64, 1000)])
def test_latency_of_the_virtual_loopback_is_exact_for_every_impulse(
    make_device: Any, frames: int, latency: int | None
) -> None:
    device = make_device("loopback", latency=latency)
    report = measure_latency(device, buffer_size=frames, impulses=5, interval=0.02)
    expected = latency if latency is not None else 2 * frames
    # Every impulse that came back is exact; one may be lost only where the
    # stream flagged a glitch (the virtual clock is a thread of a noisy VM).
    assert set(report.round_trips) == {expected} and report.spread == 0
    assert len(report.round_trips) + report.lost + report.glitched == 5
    if report.lost or report.glitched:
        assert report.xruns + report.late_blocks > 0, report
    assert report.reported == (expected,) and report.matches_report
    assert report.ms == pytest.approx(expected * 1000 / 48000)


def test_an_impulse_whose_flight_was_flagged_is_left_out_and_counted(make_device: Any) -> None:
    # Across a flagged glitch the audio may have slipped, so such an impulse
    # is not a measurement of the device: left out, and said so. The virtual
    # glitch loses nothing, so what is kept must still be exact.
    device = make_device("loopback")
    stop = threading.Event()

    def glitch_now_and_then() -> None:
        while not stop.wait(0.021):  # not a multiple of the impulses' cycle (13 ms)
            device.glitch()

    thread = threading.Thread(target=glitch_now_and_then)
    thread.start()
    try:
        report = measure_latency(device, buffer_size=128, impulses=20, interval=0.01)
    finally:
        stop.set()
        thread.join()
    assert report.glitched >= 1 and report.xruns >= report.glitched and report.round_trips
    assert len(report.round_trips) + report.lost + report.glitched == 20
    assert set(report.round_trips) <= {256} and report.expected == (256,) * len(report.round_trips)
    assert report.matches_report and report.steady
    # Each kept impulse knows the glitches before it: counted in order, and
    # the later ones were sent after some.
    assert list(report.after_xruns) == sorted(report.after_xruns)
    assert len(report.after_xruns) == len(report.round_trips) and report.after_xruns[-1] >= 1


def _report(round_trips: tuple[int, ...], after_xruns: tuple[int, ...]) -> LatencyReport:
    return LatencyReport(
        "virtual:loopback",
        48000,
        128,
        round_trips,
        (256,),
        0,
        max(after_xruns, default=0),
        0,
        after_xruns=after_xruns,
    )


def test_a_round_trip_may_change_only_where_a_glitch_was_flagged() -> None:
    # A glitch can shift input against output for good (a device restarting
    # one side), so a new lag after a flagged xrun is steady; a new lag with
    # no glitch between is not.
    assert _report((256, 256, 300, 300), (0, 0, 1, 1)).steady
    assert not _report((256, 300, 300, 300), (0, 0, 1, 1)).steady
    assert not _report((256, 257), (0, 0)).steady
    assert _report((256, 256), ()).steady and not _report((256, 257), ()).steady


def test_pipelined_latency_is_one_period_more(make_device: Any) -> None:
    device = make_device("loopback")
    report = clean(
        lambda: measure_latency(device, buffer_size=128, impulses=3, interval=0.02, pipelined=True)
    )
    assert report.round_trips == (384,) * 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"impulses": 0}, "impulses"),
        ({"interval": 0}, "interval"),
        ({"amplitude": 2}, "amplitude"),
        ({"input_channel": 5}, "input_channel"),
    ],
)
def test_bad_arguments_are_invalid_input(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(dio.Error) as raised:
        measure_latency("virtual:loopback", **kwargs)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert needle in raised.value.message


def test_unknown_device_is_not_available() -> None:
    with pytest.raises(dio.Error) as raised:
        measure_latency("virtual:missing")
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "virtual:missing" in raised.value.message


# -- play, rec, playrec --------------------------------------------------------

RATE = 48000


def noise_burst(channels: int = 2, frames: int = 9600, seed: int = 0) -> np.ndarray:
    """Silence, a noise burst, silence: a signal with one sharp correlation peak."""
    rng = np.random.default_rng(seed)
    data = np.zeros((frames, channels), np.float32)
    data[frames // 4 : frames // 2] = rng.uniform(-0.5, 0.5, (frames // 4, channels))
    return data


def correlation_lag(recorded: np.ndarray, played: np.ndarray) -> int:
    """The lag (frames) at which the recording best matches what was played."""
    corr = np.correlate(recorded.astype(np.float64), played.astype(np.float64), mode="full")
    return int(np.argmax(np.abs(corr))) - (len(played) - 1)


T = TypeVar("T")


def unflagged(call: Callable[[], T], caplog: pytest.LogCaptureFixture, tries: int = 20) -> T:
    """The result of the first of `tries` runs of ``call()`` in which the library
    flagged no device glitch (play, rec and playrec warn on the ``duplexio``
    logger when frames were lost; on a loaded machine the virtual clock can
    wake a period late). Only flagged runs are left out."""
    for _ in range(tries):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="duplexio"):
            result = call()
        if not any("device glitches" in r.getMessage() for r in caplog.records):
            return result
    pytest.fail(f"the device glitched in all {tries} runs")


def assert_aligned_ten_times(
    device: Any, caplog: pytest.LogCaptureFixture, buffer_size: int | None = None
) -> None:
    data = noise_burst()
    for call in range(10):
        recording = unflagged(
            lambda: dio.playrec(data, RATE, 2, device, buffer_size=buffer_size), caplog
        )
        assert recording.shape == data.shape and recording.dtype == np.float32
        for ch in range(2):
            assert correlation_lag(recording[:, ch], data[:, ch]) == 0, f"call {call}"
        np.testing.assert_allclose(recording, data, atol=1e-6, err_msg=f"call {call}")


@pytest.mark.parametrize(("frames", "latency"), [(128, None), (256, None), (64, 1000)])
def test_playrec_on_the_virtual_loopback_is_aligned_to_the_sample_ten_times(
    make_device: Any, caplog: pytest.LogCaptureFixture, frames: int, latency: int | None
) -> None:
    assert_aligned_ten_times(make_device("loopback", latency=latency), caplog, frames)


def test_playrec_on_jacks_loopback_is_aligned_to_the_sample_ten_times(
    jackd_128: JackServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert_aligned_ten_times(f"jack:{jackd_128.name}/loopback", caplog)


def test_playrec_records_a_tail_past_the_data(
    make_device: Any, caplog: pytest.LogCaptureFixture
) -> None:
    device = make_device("loopback")
    data = noise_burst(frames=4800)
    recording = unflagged(
        lambda: dio.playrec(data, RATE, 2, device, record_frames=6000, buffer_size=128), caplog
    )
    assert recording.shape == (6000, 2)
    np.testing.assert_array_equal(recording[:4800], data)
    assert not recording[4800:].any()


def test_playrec_converts_the_formats_like_the_engine(
    make_device: Any, caplog: pytest.LogCaptureFixture
) -> None:
    device = make_device("loopback")
    data = (noise_burst(frames=2400) * 32767).astype(np.int16)
    recording = unflagged(
        lambda: dio.playrec(data, RATE, 2, device, sample_format="i32", buffer_size=128), caplog
    )
    assert recording.dtype == np.int32
    np.testing.assert_array_equal(recording, data.astype(np.int32) << 16)


def test_rec_returns_the_input_devices_signal_from_its_first_frame(
    make_device: Any, caplog: pytest.LogCaptureFixture
) -> None:
    signal = noise_burst(frames=6000, seed=3)
    device = make_device("input", signal=signal, loop=False)
    recording = unflagged(lambda: dio.rec(5000, RATE, 2, device, buffer_size=128), caplog)
    assert recording.shape == (5000, 2)
    np.testing.assert_array_equal(recording, signal[:5000])


def test_play_runs_the_whole_program_then_stops(make_device: Any) -> None:
    device = make_device("output")
    stream = dio.play(noise_burst(frames=4800), RATE, device, buffer_size=256)
    status = stream.status
    assert status.finished and status.frames_done == status.total_frames >= 4800
    assert stream.closed and stream.progress == 1.0 and status.xruns == 0
    # One program block per device cycle, and the tail covers the output latency.
    assert stream.stats.callbacks * 256 >= status.total_frames


def test_mono_data_plays_as_one_channel(make_device: Any, caplog: pytest.LogCaptureFixture) -> None:
    device = make_device("loopback", channels=1)
    data = noise_burst(channels=1, frames=2400)[:, 0]
    recording = unflagged(lambda: dio.playrec(data, RATE, 1, device, buffer_size=128), caplog)
    np.testing.assert_array_equal(recording[:, 0], data)


def test_non_blocking_playrec_reports_progress_and_stops_early(make_device: Any) -> None:
    device = make_device("loopback")
    stream = dio.playrec(noise_burst(frames=RATE * 30), RATE, 2, device, blocking=False)
    try:
        deadline = time.monotonic() + 10
        while stream.status.frames_done == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.stop()
        status = stream.status
        assert 0 < status.frames_done < status.total_frames and not status.finished
        assert 0.0 < stream.progress < 1.0
        assert stream.recording.shape == (RATE * 30, 2)
        assert stream.wait(5)
    finally:
        stream.close()


@pytest.mark.parametrize("where", ["virtual", "jack"])
def test_playrec_survives_a_c_extension_holding_the_gil(
    make_device: Any, request: pytest.FixtureRequest, where: str
) -> None:
    if where == "jack":
        device: Any = f"jack:{request.getfixturevalue('jackd_128').name}/loopback"
    else:
        device = make_device("loopback")
    data = noise_burst(frames=RATE * 2)  # 2 s: about 20 stalls of 50 ms
    with GilHog(hold=0.05, every=0.1) as hog:
        stream = dio.playrec(data, RATE, 2, device, blocking=False, buffer_size=128)
        try:
            assert stream.wait(30)
            status, stats = stream.status, stream.stats
            recording = stream.recording.copy()
        finally:
            stream.close()
    assert hog.holds >= 5 and status.finished
    # No Python per block: the GIL hog costs no block.
    assert stats.late_blocks == 0 and stats.skipped_blocks == 0
    if where == "virtual" and status.xruns:
        # The clock itself woke a period late (a loaded machine), which the
        # stream flagged: the recording may slip there, so alignment is not owed.
        return
    assert correlation_lag(recording[:, 0], data[:, 0]) == 0
    np.testing.assert_allclose(recording, data, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda d: dio.play(np.zeros((0, 2), np.float32), RATE, d), "at least one frame"),
        (lambda d: dio.play(np.zeros((4, 2, 2), np.float32), RATE, d), "shape"),
        (lambda d: dio.play(np.zeros(4, np.complex64), RATE, d), "complex64"),
        (lambda d: dio.play(np.zeros(4, np.float32), 0, d), "sample_rate"),
        (lambda d: dio.rec(0, RATE, 2, d), "frames"),
        (lambda d: dio.rec(10, RATE, 0, d), "channels"),
        (lambda d: dio.playrec(np.zeros(4, np.float32), RATE, 2, d, record_frames=0), "record"),
        (lambda d: dio.playrec(["a"], RATE, 2, d), "dtype"),
    ],
)
def test_bad_input_is_invalid_input_before_anything_opens(
    loopback: Any, no_leaked_threads: None, call: Any, needle: str
) -> None:
    with pytest.raises(dio.Error) as raised:
        call(loopback)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert needle in raised.value.message


def test_playrec_needs_a_duplex_device(make_device: Any) -> None:
    with pytest.raises(dio.Error) as raised:
        dio.playrec(np.zeros(64, np.float32), RATE, 1, make_device("output"))
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
