"""Aggregates on the virtual host: a cable between two clocks set apart in ppm.

What the cable carries is read at the input clock's own instants, so the
input really runs fast or slow against the output; the aggregate must lock
onto it, report the drift, hold the round trip to a frame and pass the
audio cleanly through its resampler.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualDevice, VirtualHost
from tests.blocking import blocking_round_trips
from tests.impulses import ImpulseLoop, run_loop
from tests.recorders import Errors

RATE = 48000
FRAMES = 128
_names = itertools.count()

Cable = Callable[..., tuple[VirtualDevice, VirtualDevice]]


@pytest.fixture
def cable(virtual_host: VirtualHost) -> Iterator[Cable]:
    """Factory: cable(output_ppm, input_ppm, **options) -> (output, input), removed after."""
    made: list[VirtualDevice] = []

    def make(
        output_ppm: float = 0.0, input_ppm: float = 0.0, **options: Any
    ) -> tuple[VirtualDevice, VirtualDevice]:
        options.setdefault("default_buffer_size", FRAMES)
        pair = virtual_host.add_cable(
            f"test-cable-{next(_names)}", output_ppm, input_ppm, **options
        )
        made.extend(pair)
        return pair

    yield make
    for device in made:
        virtual_host.remove_device(device.id)


def expected_drift(output_ppm: float, input_ppm: float) -> float:
    """How much faster the input clock runs than the output's, in ppm."""
    return ((1 + input_ppm * 1e-6) / (1 + output_ppm * 1e-6) - 1) * 1e6


def no_jump_without_cause(status: dio.AggregateStatus) -> None:
    """The read position was set afresh at the start, and again only after an
    underrun or overrun (on a loaded machine a device thread can wake later
    than the fill allows: flagged, and the impulses around it left out)."""
    assert status.jumps >= 1
    assert status.jumps == 1 or status.underruns + status.overruns > 0, status


def locked_stream(stream: dio.Stream, seconds: float = 5.0) -> float:
    """Wait until the stream's aggregate locks; the seconds it took by its own count."""
    deadline = time.monotonic() + seconds + 1.0
    while time.monotonic() < deadline:
        status = stream.stats.aggregate
        assert status is not None
        if status.lock_seconds is not None:
            return status.lock_seconds
        time.sleep(0.05)
    pytest.fail(f"no lock in {seconds} s: {stream.stats.aggregate}")


@pytest.mark.parametrize(
    ("output_ppm", "input_ppm"),
    [(0, 100), (0, -100), (0, 1000), (0, -1000), (600, -400), (-1e4, 1e4), (1e4, -1e4)],
    ids=["+100", "-100", "+1000", "-1000", "both-off", "widest+", "widest-"],
)
def test_locks_reports_the_drift_and_holds_the_round_trip(
    cable: Cable, output_ppm: float, input_ppm: float
) -> None:
    out, inp = cable(output_ppm, input_ppm)
    dev = dio.aggregate(inp, out)
    assert dev.supports_duplex() and dev.description.direction == "duplex"
    loop = ImpulseLoop(int(4.5 * RATE / FRAMES), every=10)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    round_trip = stream.latency.round_trip
    run_loop(stream, loop)
    status = stream.stats.aggregate  # readable after close: the last figures
    assert status is not None
    assert status.lock_seconds is not None and status.lock_seconds <= 5.0
    want = expected_drift(output_ppm, input_ppm)
    assert stream.stats.drift_ppm == pytest.approx(want, abs=max(5.0, 0.1 * abs(want)))
    no_jump_without_cause(status)
    # After the lock, every impulse one round trip later, to a frame, and that
    # round trip is the one reported from before the first block.
    since = int(status.lock_seconds * RATE / FRAMES) + 1
    found = loop.round_trips(since)
    assert len(found) >= 20, f"xruns at {loop.xrun_blocks}"
    # It holds to a frame either way. Where it sits against the report moves
    # with the drift: a virtual input's capture instant is its block's frames
    # at the nominal rate, on a clock that runs |drift| away (a frame per
    # 4,000 ppm of a 256-frame block; real devices' clocks are within
    # hundreds of ppm).
    off = round(abs(want) * 1e-6 * FRAMES)
    [reported] = loop.reported  # one figure in every block
    assert set(found) <= {reported - 1, reported, reported + 1}, sorted(set(found))
    assert abs(reported - round_trip) <= off, (reported, round_trip)
    # Input latency plus the fill, and the cable's delay as the output's.
    assert stream.latency.output == 480
    assert round_trip == FRAMES + (FRAMES + 40 + 1 + 2 * FRAMES) + 480


def test_latency_is_measured_only_once_the_aggregate_is_locked(cable: Cable) -> None:
    # Until locked the loop still moves the input against the output, so a
    # round trip measured then is not the one the stream will keep. The lock
    # needs the output clock's loop past 1.25 s by design: impulses sent at
    # once would have finished long before.
    out, inp = cable(0, 300)
    began = time.monotonic()
    report = dio.measure_latency(dio.aggregate(inp, out), impulses=3, interval=0.01)
    assert time.monotonic() - began >= 1.25
    assert len(report.round_trips) + report.glitched == 3 and report.round_trips, report
    assert max(report.round_trips) - min(report.round_trips) <= 1, report


def first_clean(flagged: list[int], blocks: int, settle: int, length: int) -> int | None:
    """The first block of `length` blocks with no flag in them nor in the `settle`
    blocks before them (a flag may be a jump the loop settles from again), among
    the `blocks` so far; None while there is none."""
    start = settle
    for flag in [*flagged, blocks]:
        if flag - start >= length:
            return start
        start = max(start, flag + settle)
    return None


def sine_fit_residual_db(x: np.ndarray, frequency: float) -> float:
    """THD+N: what a least-squares fit of a sine at `frequency` (and DC) leaves, in dB
    of the sine."""
    n = np.arange(len(x))
    basis = np.stack(
        [np.sin(2 * np.pi * frequency * n / RATE), np.cos(2 * np.pi * frequency * n / RATE),
         np.ones(len(x))], axis=1,
    )  # fmt: skip
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    fitted = basis @ coef
    return float(10 * np.log10(np.mean((x - fitted) ** 2) / np.mean((fitted - coef[2]) ** 2)))


def test_a_sine_through_the_resampler_stays_clean(cable: Cable) -> None:
    """1 kHz at -6 dBFS through the cable and the aggregate at +1000 ppm:
    THD+N <= -90 dB, at exactly 1 kHz on the output's clock. Measured from
    4.5 s: at lock (about 1.3 s) the read position is within a frame, which
    at 1 kHz is still a phase wobble of -50 dB; the loop takes it below
    1e-4 frames (-90 dB) by about 3.5 s."""
    out, inp = cable(0, 1000)
    dev = dio.aggregate(inp, out)
    played = [0]
    heard: list[np.ndarray] = []
    flagged: list[int] = []

    def callback(i: np.ndarray, o: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        n = np.arange(played[0], played[0] + len(o))
        o[:] = (0.5 * np.sin(2 * np.pi * 1000 * n / RATE))[:, None]
        played[0] += len(o)
        if info.xrun:
            flagged.append(len(heard))
        heard.append(i[:, 0].copy())

    settle, second = int(3.5 * RATE / FRAMES), RATE // FRAMES + 1

    def clean_window() -> int | None:
        return first_clean(flagged, len(heard), settle, second)

    stream = dev.build_duplex_stream(dev.default_duplex_config(), callback)
    with stream:
        locked_stream(stream)
        deadline = time.monotonic() + 15
        while clean_window() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    first = clean_window()
    st = stream.stats
    assert first is not None, f"no clean second: flags at {flagged} {st}"
    x = np.concatenate(heard[first : first + second])[:RATE]
    assert sine_fit_residual_db(x, 1000.0) <= -90.0


def sweep(seconds: float, top: float, pad: float) -> np.ndarray:
    """An exponential sweep from 20 Hz to `top` (Hz) at 0.5, faded in and out
    over 20 ms and framed by `pad` seconds of silence, so that a spectrum
    taken over the whole holds all of it and of its response."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rise = np.log(top / 20.0)
    phase = 2 * np.pi * 20.0 * seconds / rise * (np.exp(t / seconds * rise) - 1)
    fade = int(0.02 * RATE)
    window = np.ones(n)
    window[:fade] = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    window[-fade:] = window[:fade][::-1]
    silence = np.zeros(int(pad * RATE))
    return np.concatenate([silence, 0.5 * np.sin(phase) * window, silence])


def test_a_sweep_comes_through_flat_to_045_fs(cable: Cable) -> None:
    """playrec on the aggregate (a program stream: no Python per block): the
    recording is aligned with what was played, and its magnitude response
    (the recording's spectrum over the sweep's) flat to +-0.1 dB from
    100 Hz to 0.45 fs. Measured once settled, as the sine."""
    out, inp = cable(0, -1000)
    dev = dio.aggregate(inp, out)
    lead = int(4.5 * RATE)
    signal = sweep(1.0, 0.47 * RATE, pad=0.1)
    data = np.zeros((lead + len(signal) + RATE // 4, 1), np.float32)
    data[lead : lead + len(signal), 0] = signal
    recording = dio.playrec(data, RATE, 1, dev)
    played = data[lead : lead + len(signal), 0]
    got = recording[lead : lead + len(signal), 0]
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    band = (freqs >= 100) & (freqs <= 0.45 * RATE)
    gain = np.abs(np.fft.rfft(got)[band]) / np.abs(np.fft.rfft(played)[band])
    worst = float(np.max(np.abs(20 * np.log10(gain))))
    assert worst <= 0.1, f"worst {worst:.3f} dB"


def test_a_blocking_stream_captures_what_it_wrote_one_round_trip_later(cable: Cable) -> None:
    out, inp = cable(0, 300)
    dev = dio.aggregate(inp, out)
    # A take whose every impulse came after a flagged glitch (a VM's stolen
    # time) says nothing of the value: up to three takes, each a new stream.
    for _ in range(3):
        stream = dev.build_duplex_stream(dio.DuplexStreamConfig(2, 2, RATE))
        found = blocking_round_trips(stream, 1.5, warm=2.0)
        stream.close()
        if found.offsets:
            break
    assert found.offsets, f"no impulse before a flag in three takes: {found.flagged[:3]}"
    rt = stream.latency.round_trip
    assert set(found.offsets) <= {rt - 1, rt, rt + 1} and set(found.reported) == {rt}


@pytest.mark.parametrize(
    ("side", "fault"), [("input", "glitch"), ("output", "stall"), ("input", "stall")]
)
def test_a_glitch_on_either_device_is_flagged_and_the_lock_comes_back(
    cable: Cable, side: str, fault: str
) -> None:
    """Flagged on the block that meets it; the output's timeline goes on by
    whole blocks (its lost ones counted), never jumps. A glitch that loses
    no input, or a stalled output (the input waits in the ring), keeps the
    lock. An input stalled longer than the fill runs the ring dry: the read
    position is set afresh when it is back (flagged), and the loop locks
    again."""
    out, inp = cable(0, 500)
    dev = dio.aggregate(inp, out)
    loop = ImpulseLoop(10**9, every=10)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    rt = stream.latency.round_trip
    device = inp if side == "input" else out
    with stream:
        locked_stream(stream)
        time.sleep(0.3)
        faulted_at = loop.count
        if fault == "glitch":
            device.glitch()
        else:
            device.stall(0.03)
        time.sleep(2.5)
    status = stream.stats.aggregate
    assert status is not None
    assert any(b >= faulted_at for b in loop.xrun_blocks), "the fault went unflagged"
    loop.assert_discontinuities_flagged(FRAMES)
    if side == "input" and fault == "stall":
        assert status.underruns >= 1 and status.jumps >= 2 and status.locks >= 2
    else:
        no_jump_without_cause(status)
    # Impulses with a flag in flight are left out (round_trips); the rest,
    # from the fault on, are at the round trip.
    after = loop.round_trips(min(b for b in loop.xrun_blocks if b >= faulted_at))
    assert after and set(after) <= {rt - 1, rt, rt + 1}, (sorted(set(after)), loop.xrun_blocks)


def test_the_input_device_gone_ends_the_stream(cable: Cable) -> None:
    out, inp = cable(0, 100)
    dev = dio.aggregate(inp, out)
    errors = Errors()
    stream = dev.build_duplex_stream(dev.default_duplex_config(), lambda i, o, n: None, errors)
    with stream:
        time.sleep(0.2)
        inp.disconnect()
        assert errors.arrived.wait(5)
    assert [e.kind for e in errors.items] == [dio.ErrorKind.DEVICE_NOT_AVAILABLE]
    inp.reconnect()


@pytest.mark.parametrize("side", ["input", "output"])
def test_a_device_that_delivers_nothing_times_the_stream_out(cable: Cable, side: str) -> None:
    """Either device stalled for good: TIMED_OUT naming the side, within the
    stream's timeout, and wait() returns with it (a stalled input played
    flagged zeros forever, and wait() never returned)."""
    out, inp = cable(0, 100)
    dev = dio.aggregate(inp, out)
    errors = Errors()
    stream = dev.build_duplex_stream(
        dev.default_duplex_config(), lambda i, o, n: None, errors, timeout=1.0
    )
    with stream:
        time.sleep(0.3)
        (inp if side == "input" else out).stall()
        with pytest.raises(dio.Error) as raised:
            stream.wait(20)
    assert raised.value.kind is dio.ErrorKind.TIMED_OUT
    assert ("the input device" in raised.value.message) == (side == "input")
    assert [e.kind for e in errors.items] == [dio.ErrorKind.TIMED_OUT]


def test_clocks_further_apart_than_the_loop_follows_end_the_stream_within_5_s(
    cable: Cable,
) -> None:
    """The widest pair a virtual cable makes, its input wandering by another
    1 % (the clocks up to 4 % apart): the loop cannot follow, and the stream
    ends with UNSUPPORTED_CONFIG naming the drift within 5 s of start(),
    rather than running unlocked in silence."""
    out, inp = cable(-1e4, 1e4, wander_ppm=1e4, wander_seconds=4.0)
    stream = dio.aggregate(inp, out).build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE), lambda i, o, n: None, error_callback=lambda e: None
    )
    with stream, pytest.raises(dio.Error) as raised:
        stream.wait(5.0)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG, raised.value
    assert "ppm" in raised.value.message and str(inp.id) in raised.value.message


def test_bad_requests_get_an_error_before_any_device_opens(
    cable: Cable, loopback: VirtualDevice
) -> None:
    out, inp = cable()
    text: Any = "x"
    cases: list[tuple[Callable[[], object], dio.ErrorKind, str]] = [
        (lambda: dio.aggregate(inp, out, fill=-1), dio.ErrorKind.INVALID_INPUT, "fill"),
        (lambda: dio.aggregate(inp, out, fill=text), dio.ErrorKind.INVALID_INPUT, "fill"),
        (lambda: dio.aggregate(loopback, loopback), dio.ErrorKind.INVALID_INPUT, "already"),
        (lambda: dio.aggregate(out, out), dio.ErrorKind.UNSUPPORTED_OPERATION, "no input"),
        (lambda: dio.aggregate(inp, inp), dio.ErrorKind.UNSUPPORTED_OPERATION, "no output"),
        (
            lambda: dio.aggregate(inp, "virtual:nothing"),
            dio.ErrorKind.DEVICE_NOT_AVAILABLE,
            "nothing",
        ),
        (lambda: dio.aggregate(inp, out, **{"fil": 0.1}), dio.ErrorKind.INVALID_INPUT, "fill"),
    ]
    for make, kind, named in cases:
        with pytest.raises(dio.Error) as raised:
            make()
        assert raised.value.kind is kind and named in raised.value.message, raised.value
    short = dio.aggregate(inp, out, fill=0.001)  # 48 frames: less than a block and the kernel
    with pytest.raises(dio.Error) as raised:
        short.build_duplex_stream(short.default_duplex_config(), lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT and "fill" in raised.value.message
    # Nothing was left open: the cable's output can be opened again.
    with out.build_output_stream(dio.StreamConfig(2, RATE), lambda o, n: None):
        pass


def test_virtual_clock_options_are_checked(virtual_host: VirtualHost) -> None:
    for bad in ({"clock_ppm": 1e9}, {"clock_ppm": float("nan")}, {"wander_ppm": "3"},
                {"wander_seconds": 0}):  # fmt: skip
        with pytest.raises(dio.Error) as raised:
            virtual_host.add_output(f"test-bad-clock-{next(_names)}", **bad)
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    with pytest.raises(dio.Error) as raised:
        virtual_host.add_cable("test-bad-cable", delay=100)  # < 256 + 64
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT and "delay" in raised.value.message
    with pytest.raises(dio.Error):
        virtual_host.add_cable("test-bad-cable", latency=3)


def test_a_cable_output_takes_one_stream_at_a_time(cable: Cable) -> None:
    out, _ = cable()
    config = dio.StreamConfig(2, RATE)
    with out.build_output_stream(config, lambda o, n: None):
        with pytest.raises(dio.Error) as raised:
            out.build_output_stream(config, lambda o, n: None)
        assert raised.value.kind is dio.ErrorKind.DEVICE_BUSY


def test_a_wandering_clock_is_followed(cable: Cable) -> None:
    """+-50 ppm wandering about +300 every 20 s (a crystal warming up is slower):
    the loop follows, the lock holds, the round trip stays within a frame."""
    out, inp = cable(0, 300, wander_ppm=50, wander_seconds=20.0)
    dev = dio.aggregate(inp, out)
    loop = ImpulseLoop(int(6 * RATE / FRAMES), every=10)
    stream = dev.build_duplex_stream(dev.default_duplex_config(), loop)
    rt = stream.latency.round_trip
    run_loop(stream, loop)
    status = stream.stats.aggregate
    assert status is not None and status.lock_seconds is not None
    no_jump_without_cause(status)
    found = loop.round_trips(int(status.lock_seconds * RATE / FRAMES) + 1)
    assert found and set(found) <= {rt - 1, rt, rt + 1}, sorted(set(found))
    assert 240 <= stream.stats.drift_ppm <= 360  # type: ignore[operator]
