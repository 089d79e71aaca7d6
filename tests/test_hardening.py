"""No thread of ours dies silently, close() is bounded, bad values get an Error.

Faults are injected the hard way: an exception raised where the library's
own code expects none (its C library replaced by a proxy that fails on
cue), a callback that never returns, values chosen to overflow.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import duplexio as dio
import duplexio.stream as stream_module
from duplexio.hosts.virtual import VirtualDevice, VirtualHost

RATE = 48000


def config() -> dio.DuplexStreamConfig:
    return dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(128))


class FailingLib:
    """The engine's C library, except that ``name`` raises from its ``after``-th call."""

    def __init__(self, real: Any, name: str, after: int) -> None:
        self._real, self._name, self._left = real, name, after

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._real, attr)
        if attr != self._name:
            return value

        def failing(*args: Any) -> Any:
            self._left -= 1
            if self._left < 0:
                raise RuntimeError(f"injected failure in {attr}")
            return value(*args)

        return failing


@pytest.fixture
def fail_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """fail_in(name, after): make the stream module's ``lib.<name>`` raise."""

    def install(name: str, after: int = 0) -> None:
        real = stream_module.lib  # type: ignore[attr-defined]
        monkeypatch.setattr(stream_module, "lib", FailingLib(real, name, after))

    yield install


def ours() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("duplexio")}


# -- no thread dies silently ------------------------------------------------------------


def test_a_failing_event_thread_ends_the_stream_with_an_error(
    loopback: VirtualDevice, fail_in: Any
) -> None:
    errors: list[dio.Error] = []
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None, errors.append)
    fail_in("da_event_wait", after=3)  # the supervisor's loop, mid-run
    stream.start()
    with pytest.raises(dio.Error) as raised:
        stream.wait(10)
    assert raised.value.kind is dio.ErrorKind.OTHER
    assert "duplexio-events" in raised.value.message
    assert "injected failure" in raised.value.message
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert errors == [raised.value] and not stream.running
    stream.close()


def test_a_failing_worker_ends_the_stream_with_an_error(
    loopback: VirtualDevice, fail_in: Any
) -> None:
    fail_in("da_worker_next", after=5)  # the worker's C call, between callbacks
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None, lambda e: None)
    stream.start()
    with pytest.raises(dio.Error) as raised:
        stream.wait(10)
    assert raised.value.kind is dio.ErrorKind.OTHER
    assert "duplexio-worker" in raised.value.message
    assert not stream.running
    stream.close()


def test_an_exception_whose_str_raises_still_reaches_the_user(loopback: VirtualDevice) -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise ValueError("no text for you")

    def callback(i: Any, o: Any, info: Any) -> None:
        raise Nasty

    stream = loopback.build_duplex_stream(config(), callback, lambda e: None)
    stream.start()
    with pytest.raises(dio.Error) as raised:
        stream.wait(10)
    assert raised.value.kind is dio.ErrorKind.CALLBACK_FAILED
    assert "Nasty" in raised.value.message and isinstance(raised.value.__cause__, Nasty)
    stream.close()


def test_a_huge_finite_timeout_is_just_long(loopback: VirtualDevice) -> None:
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None, timeout=1e300)
    with stream:
        assert not stream.wait(0.3)  # still running: the supervisor did not die
        assert stream.running
    assert stream.error is None


# -- close() is bounded -----------------------------------------------------------------


def stuck(release: threading.Event) -> Any:
    def callback(i: Any, o: Any, info: Any) -> None:
        release.wait()

    return callback


def test_close_with_a_stuck_callback_returns_within_the_bound(
    loopback: VirtualDevice, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    before = ours()
    stream = loopback.build_duplex_stream(config(), stuck(release))
    stream.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    stream.close()
    took = time.monotonic() - t0
    try:
        # Bounded, not timed: far below "forever", with room for a busy machine.
        assert took < stream_module.CLOSE_WAIT_SECONDS + 3.0, took
        assert "left behind" in caplog.text
        # Only the stuck worker remains of this stream's threads.
        assert {n for n in ours() - before} == {f"duplexio-worker {loopback.id}"}
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while ours() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not ours() - before  # it ends once the callback returns


def test_at_exit_stuck_streams_share_one_bound() -> None:
    code = """
import threading, time, duplexio as dio
host = dio.host_from_id("virtual")
never = threading.Event()
streams = []
for n in range(4):
    dev = host.add_loopback(f"stuck-{n}")
    s = dev.build_duplex_stream(dev.default_duplex_config(), lambda i, o, info: never.wait())
    s.start()
    streams.append(s)
time.sleep(0.2)
print("exiting", flush=True)
"""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert "exiting" in done.stdout
    # Four stuck callbacks share one 2 s bound; one each would be 8 s.
    assert took < 4 * stream_module.CLOSE_WAIT_SECONDS - 1.0, took
    assert done.stderr.count("left behind") == 4


# -- bad values get an Error ------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["1", float("nan"), -1, float("inf"), b"1", [1]])
def test_wait_and_stop_refuse_a_timeout_that_is_not_seconds(
    loopback: VirtualDevice, timeout: Any
) -> None:
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None)
    with stream:
        for call in (stream.wait, stream.stop):
            with pytest.raises(dio.Error) as raised:
                call(timeout)
            assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
            assert "timeout" in raised.value.message and repr(timeout) in raised.value.message


def test_a_timeout_too_long_for_the_os_waits_without_one(loopback: VirtualDevice) -> None:
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None)
    stream.start()
    threading.Timer(0.2, stream.pause).start()
    assert stream.wait(1e300) is True
    stream.close()


def test_numpy_scalars_pass_wherever_numbers_do(loopback: VirtualDevice) -> None:
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None)
    with stream:
        assert stream.wait(np.float64(0.05)) is False
    stream.close()


@pytest.mark.parametrize(
    ("make", "kind", "named"),
    [
        (lambda: dio.StreamConfig(10**9, RATE), dio.ErrorKind.INVALID_INPUT, "channels"),
        (lambda: dio.BufferSize.fixed(10**12), dio.ErrorKind.INVALID_INPUT, "buffer size"),
        (lambda: dio.DuplexStreamConfig(1, 2**40, RATE), dio.ErrorKind.INVALID_INPUT, "output"),
    ],
)
def test_counts_no_device_could_run_are_refused_naming_them(
    make: Any, kind: dio.ErrorKind, named: str
) -> None:
    with pytest.raises(dio.Error) as raised:
        make()
    assert raised.value.kind is kind and named in raised.value.message


def test_a_recording_beyond_memory_is_resource_exhausted(loopback: VirtualDevice) -> None:
    config = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(128))
    with pytest.raises(dio.Error) as raised:
        loopback.build_rec_stream(config, 2**45)  # 256 TiB of float32
    assert raised.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED
    assert "recording" in raised.value.message and "GiB" in raised.value.message


def test_virtual_devices_refuse_what_the_engine_cannot_hold(virtual_host: VirtualHost) -> None:
    cases: list[tuple[Any, str]] = [
        (lambda: virtual_host.add_loopback("too-late", latency=2**40), "latency"),
        (lambda: virtual_host.add_loopback("too-fast", sample_rates=(8000, 10**12)),
         "sample_rates[1]"),
        (lambda: virtual_host.add_input("complex", signal=np.ones(64) * 1j), "complex"),
        (lambda: virtual_host.add_input("words", signal=["a", "b"]), "dtype <U1"),
        (lambda: virtual_host.add_input("huge", signal=[0.5, 1e300]), "[-1, 1]"),
        (lambda: virtual_host.add_input("nan", signal=[np.nan]), "[-1, 1]"),
    ]  # fmt: skip
    for make, named in cases:
        with pytest.raises(dio.Error) as raised:
            make()
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT, named
        assert named in raised.value.message
    # Enumeration still works: nothing half-made was left in the host.
    assert all(str(d.id) for d in virtual_host.duplex_devices())


def test_a_stall_of_a_trillion_seconds_is_a_long_stall(loopback: VirtualDevice) -> None:
    stream = loopback.build_duplex_stream(config(), lambda i, o, n: None, timeout=60)
    with stream:
        loopback.stall(1e12)
        loopback.resume()
    assert stream.error is None


def test_a_device_id_is_checked_like_a_parsed_one(virtual_host: VirtualHost) -> None:
    made = dio.DeviceId("virtual", "loopback")  # type: ignore[arg-type]
    assert made == dio.DeviceId.parse("virtual:loopback")
    assert made.host is dio.HostId.VIRTUAL and str(made) == "virtual:loopback"
    assert virtual_host.device_by_id(made) is not None
    for host, name in (
        ("nohost", "x"),
        (dio.HostId.VIRTUAL, "bell\x07"),
        (dio.HostId.VIRTUAL, "\x1b[31m"),
    ):
        with pytest.raises(dio.Error) as raised:
            dio.DeviceId(host, name)  # type: ignore[arg-type]
        assert raised.value.kind is dio.ErrorKind.INVALID_INPUT


def test_rec_takes_numpy_integers(loopback: VirtualDevice) -> None:
    got = dio.rec(np.int64(256), np.int32(RATE), np.uint8(2), loopback)
    assert got.shape == (256, 2)


def test_a_misspelt_virtual_device_option_names_the_accepted_ones(
    virtual_host: VirtualHost,
) -> None:
    with pytest.raises(dio.Error) as raised:
        virtual_host.add_loopback("typo", lantency=512)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert "'lantency'" in raised.value.message and "latency" in raised.value.message
    with pytest.raises(dio.Error) as raised:
        virtual_host.add_output("typo", signal=[0.0])
    assert "'signal'" in raised.value.message
    assert virtual_host.device_by_id("virtual:typo") is None


# -- a misspelt keyword is an Error, everywhere -----------------------------------------

from duplexio.hosts import alsa, jack, pulse  # noqa: E402  (grouped with the tests that use them)

#: Records the library makes and hands out; a user does not call into them.
RESULTS = {
    "CallbackInfo", "CallbackTimestamp", "DuplexCallbackInfo", "StreamLatency", "StreamStats",
    "ProgramStatus", "DeviceDescription", "Error", "ErrorKind", "HostId", "StreamKind",
    "ReadStatus", "WriteStatus", "AggregateStatus",
}  # fmt: skip
HOST_CLASSES = [
    VirtualHost, VirtualDevice, jack.JackHost, jack.JackDevice, pulse.PulseHost,
    pulse.PulseDevice, alsa.AlsaHost, alsa.AlsaDevice,
]  # fmt: skip


def entry_points() -> Iterator[tuple[str, Any]]:
    """(name, function) for every public function and method a user can call."""
    classes = [getattr(dio, n) for n in dio.__all__ if isinstance(getattr(dio, n), type)]
    for name in dio.__all__:
        value = getattr(dio, name)
        if callable(value) and not isinstance(value, type):
            yield name, value
    for cls in classes + HOST_CLASSES:
        if cls.__name__ in RESULTS:
            continue
        for klass in cls.__mro__:
            if klass.__module__.startswith("duplexio") and klass.__name__ not in RESULTS:
                for attr, member in vars(klass).items():
                    if attr == "__init__" or not attr.startswith("_"):
                        if isinstance(member, (classmethod, staticmethod)):
                            member = member.__func__
                        if inspect.isfunction(member):
                            yield f"{cls.__name__}.{attr}", getattr(cls, attr)


def test_every_entry_point_is_checked() -> None:
    found = dict(entry_points())
    assert len(found) > 80  # the enumeration itself works
    unchecked = sorted(n for n, fn in found.items() if not hasattr(fn, "__wrapped__"))
    assert unchecked == []


@pytest.mark.parametrize(
    "call",
    [
        lambda dev: dio.DuplexStreamConfig(2, 2, samplerate=RATE),  # type: ignore[call-arg]
        lambda dev: dio.rec(256, RATE, 1, dev, sampleformat="i16"),  # type: ignore[call-overload]
        lambda dev: dio.play(np.zeros(8), RATE, dev, blocksize=64),  # type: ignore[call-arg]
        lambda dev: dev.build_duplex_stream(dev.default_duplex_config(), calback=print),
        lambda dev: dio.BufferSize.fixed(frame=128),  # type: ignore[call-arg]
        lambda dev: dio.SampleFormat.parse(nam="f32"),  # type: ignore[call-arg]
        lambda dev: dio.host_from_id("virtual").device_by_id(device="virtual:x"),  # type: ignore[call-arg]
    ],
)
def test_a_misspelt_keyword_names_it_and_what_is_accepted(
    loopback: VirtualDevice, call: Any
) -> None:
    with pytest.raises(dio.Error) as raised:
        call(loopback)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert "unknown keyword argument" in raised.value.message
    assert "it takes:" in raised.value.message


def test_a_missing_argument_is_an_error_too() -> None:
    with pytest.raises(dio.Error) as raised:
        dio.StreamConfig()  # type: ignore[call-arg]
    assert "missing a required argument: 'channels'" in raised.value.message
    with pytest.raises(dio.Error) as raised:
        dio.rec(256, RATE, 1, None, False, "f32", 128, "extra")  # type: ignore[call-overload]
    assert "too many positional arguments" in raised.value.message


def test_a_type_error_from_inside_is_not_disguised(virtual_host: VirtualHost) -> None:
    # The arguments bind; what the body does with them is its own business.
    class Nasty:
        def __index__(self) -> int:
            raise TypeError("mine")

    with pytest.raises(dio.Error) as raised:  # the value check turns it into an Error...
        dio.BufferSize.fixed(Nasty())  # type: ignore[arg-type]
    assert "unknown keyword" not in raised.value.message


@pytest.mark.parametrize("failing", [1, 2], ids=["worker", "supervisor"])
def test_a_thread_that_cannot_start_is_resource_exhausted_and_leaves_nothing(
    loopback: VirtualDevice, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    before = ours()
    real_start = threading.Thread.start
    calls = 0

    def start(thread: threading.Thread) -> None:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(dio.Error) as raised:
        loopback.build_duplex_stream(config(), lambda i, o, n: None)
    monkeypatch.undo()
    assert raised.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED
    assert "can't start new thread" in raised.value.message
    deadline = time.monotonic() + 5
    while ours() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not ours() - before  # the worker that did start has ended
    # The device was released: it opens again and runs.
    with loopback.build_duplex_stream(config(), lambda i, o, n: None) as stream:
        assert not stream.wait(0.1)
    assert stream.error is None


BAD_FILE_ARGUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "subtype-array": ("record_file", {"subtype": np.zeros(0)}),
    "subtype-int": ("record_file", {"subtype": 24}),
    "path-int": ("record_file", {"path": 42}),
    "path-empty": ("record_file", {"path": ""}),
    "path-array": ("play_file", {"path": np.zeros(3)}),
    "path-bytes": ("play_file", {"path": b"x.wav"}),
    "rate-beyond-32-bits": ("record_file", {"sample_rate": 2**31}),
    "channels-beyond-any-device": ("record_file", {"channels": 10**6}),
}


@pytest.mark.parametrize("case", BAD_FILE_ARGUMENTS)
def test_file_names_and_subtypes_are_checked_before_anything_opens(
    loopback: VirtualDevice, tmp_path: Path, case: str
) -> None:
    """Found by the fuzz test: an array as subtype met ``subtype or ...`` (a bare
    ValueError), any object as path became a file named by its str(), and a
    rate beyond 32 bits reached libsndfile (a bare OverflowError)."""
    name, bad = BAD_FILE_ARGUMENTS[case]
    kwargs: dict[str, Any] = {"path": tmp_path / "t.wav", "device": loopback, **bad}
    if name == "record_file":
        kwargs["seconds"] = 0.1
    with pytest.raises(dio.Error) as raised:
        getattr(dio, name)(**kwargs)
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
    assert next(iter(bad)) in raised.value.message
    assert list(tmp_path.iterdir()) == [] and not (Path.cwd() / "42").exists()


HUGE = "x" * 2_000_000


@pytest.mark.parametrize(
    "call",
    [
        lambda: dio.StreamConfig(channels=HUGE, sample_rate=RATE),  # type: ignore[arg-type]
        lambda: dio.DuplexStreamConfig(2, 2, [0.5] * 1_000_000),  # type: ignore[arg-type]
        lambda: dio.DeviceId.parse(HUGE),
        lambda: dio.host_from_id(HUGE),
        lambda: dio.rec(HUGE),  # type: ignore[call-overload]
        lambda: dio.query_devices(HUGE),
        lambda: dio.BufferSize.fixed(-(10**100_000 // 7)),
        lambda: setattr(dio.default, "device", b"y" * 1_000_000),
    ],
)
def test_a_message_quotes_a_value_in_a_few_hundred_characters_at_most(call: Any) -> None:
    """A megabyte string, a million-element list or a 100,000-digit number
    as an argument: the message names it by its start (it was the whole repr,
    megabytes long)."""
    with pytest.raises(dio.Error) as raised:
        call()
    message = raised.value.message
    assert len(message) <= 1100, len(message)
    assert len(str(raised.value)) <= 1200
    assert raised.value.kind is dio.ErrorKind.INVALID_INPUT
