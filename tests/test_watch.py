"""Device events on the virtual host: every kind, in order, within a second; a
watcher that closes from anywhere without a hang or a thread left behind."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator

import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualHost
from duplexio.ids import DeviceId, HostId
from duplexio.watch import DeviceEvent, DeviceEventKind, Listing, differences

ADDED, REMOVED = DeviceEventKind.ADDED, DeviceEventKind.REMOVED
DEFAULT_CHANGED, CHANGED = DeviceEventKind.DEFAULT_CHANGED, DeviceEventKind.CHANGED
_names = itertools.count()


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("duplexio-watch")]


@pytest.fixture
def name(virtual_host: VirtualHost) -> Iterator[str]:
    """A fresh device name, its device removed after the test if still there."""
    made = f"watched-{next(_names)}"
    yield made
    if virtual_host.device_by_id(f"virtual:{made}") is not None:
        virtual_host.remove_device(f"virtual:{made}")
    virtual_host.set_default("virtual:loopback")


def take(watcher: dio.DeviceWatcher, count: int, within: float = 1.0) -> list[DeviceEvent]:
    """`count` events, each of which must come within `within` s of the last."""
    got: list[DeviceEvent] = []
    for _ in range(count):
        event = watcher.get(within)
        assert event is not None, f"only {got} came"
        got.append(event)
    return got


def test_each_kind_of_change_is_an_event_within_a_second(
    virtual_host: VirtualHost, name: str
) -> None:
    device_id = DeviceId(HostId.VIRTUAL, name)
    with virtual_host.watch_devices() as watcher:
        device = virtual_host.add_output(name)
        [added] = take(watcher, 1)
        assert (added.kind, added.device_id, added.direction) == (ADDED, device_id, "output")
        assert added.host is HostId.VIRTUAL and added.name

        virtual_host.set_default(device_id)
        [moved] = take(watcher, 1)
        assert (moved.kind, moved.device_id, moved.direction) == (
            DEFAULT_CHANGED,
            device_id,
            "output",
        )

        device.disconnect()  # unplugged: gone, and the default falls back
        gone, fallback = take(watcher, 2)
        assert (gone.kind, gone.device_id) == (REMOVED, device_id)
        assert (fallback.kind, fallback.direction) == (DEFAULT_CHANGED, "output")
        assert fallback.device_id == DeviceId(HostId.VIRTUAL, "loopback")

        device.reconnect()  # back with the same id, and the default it had
        back, again = take(watcher, 2)
        assert (back.kind, back.device_id) == (ADDED, device_id)
        assert (again.kind, again.device_id) == (DEFAULT_CHANGED, device_id)

        virtual_host.remove_device(device_id)
        assert [e.kind for e in take(watcher, 2)] == [REMOVED, DEFAULT_CHANGED]
        assert watcher.get(0.6) is None  # nothing more happened, nothing more said


def test_a_duplex_device_has_no_one_direction_and_an_idle_host_says_nothing(
    virtual_host: VirtualHost, name: str
) -> None:
    with virtual_host.watch_devices() as watcher:
        assert watcher.get(0.6) is None
        virtual_host.add_loopback(name)
        [added] = take(watcher, 1)
        assert added.kind is ADDED and added.direction is None


def test_a_callback_gets_every_event_in_order_on_a_thread_of_the_watchers(
    virtual_host: VirtualHost, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[tuple[DeviceEvent, str]] = []
    done = threading.Event()

    def callback(event: DeviceEvent) -> None:
        got.append((event, threading.current_thread().name))
        if len(got) == 1:
            raise RuntimeError("a bug in the user's callback")
        if len(got) == 6:
            done.set()

    with virtual_host.watch_devices(callback) as watcher:
        for _ in range(3):
            device = virtual_host.add_input(name)
            time.sleep(0.2)  # each change listed on its own
            virtual_host.remove_device(device.id)
            time.sleep(0.2)
        assert done.wait(2), got
        with pytest.raises(dio.Error) as err:
            next(iter(watcher))
        assert err.value.kind is dio.ErrorKind.UNSUPPORTED_OPERATION
    assert [e.kind for e, _ in got] == [ADDED, REMOVED] * 3
    assert all(thread.startswith("duplexio-watch") for _, thread in got)
    # The callback's exception was told, and the next event still came.
    assert any(
        "a bug in the user's callback" in r.getMessage() or r.exc_info for r in caplog.records
    )


def test_a_watcher_closes_from_its_own_callback_from_another_thread_and_twice(
    virtual_host: VirtualHost, name: str
) -> None:
    before = len(watcher_threads())
    closed_inside = threading.Event()

    def close_me(event: DeviceEvent) -> None:
        own.close()
        closed_inside.set()

    own = virtual_host.watch_devices(close_me)
    virtual_host.add_output(name)
    assert closed_inside.wait(2)
    own.close()
    assert own.closed

    watcher = virtual_host.watch_devices()
    ended = threading.Event()

    def iterate() -> None:
        for _ in watcher:
            pass
        ended.set()

    reader = threading.Thread(target=iterate)
    reader.start()
    watcher.close()
    reader.join(2)
    assert ended.is_set(), "iteration did not end when the watcher closed"
    watcher.close()
    deadline = time.monotonic() + 2
    while len(watcher_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(watcher_threads()) == before, watcher_threads()


def test_async_for_gets_events_and_ends_on_close(virtual_host: VirtualHost, name: str) -> None:
    async def main() -> list[DeviceEvent]:
        got = []
        with virtual_host.watch_devices() as watcher:
            virtual_host.add_output(name)
            async for event in watcher:
                got.append(event)
                watcher.close()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 5))
    assert [e.kind for e in got] == [ADDED]


def test_watch_devices_covers_every_listed_host() -> None:
    with dio.watch_devices() as watcher:
        assert HostId.VIRTUAL in watcher.hosts
        assert set(watcher.hosts) <= set(dio.available_hosts())
        assert "open" in repr(watcher)
    assert watcher.closed and "closed" in repr(watcher)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda h: h.watch_devices(callback=3), "callback must be a callable"),
        (lambda h: dio.watch_devices(callback="print"), "callback must be a callable"),  # type: ignore[arg-type]
        (lambda h: h.watch_devices(callbak=print), "callbak"),
        (lambda h: h.set_default("virtual:nowhere"), "no virtual device"),
        (lambda h: h.set_default("virtual:input", "output"), "cannot be the default output"),
        (lambda h: h.set_default("virtual:loopback", "both"), "direction must be"),
    ],
)
def test_bad_arguments_are_invalid_input(
    virtual_host: VirtualHost, call: object, needle: str
) -> None:
    with pytest.raises(dio.Error) as err:
        call(virtual_host)  # type: ignore[operator]
    assert err.value.kind is dio.ErrorKind.INVALID_INPUT and needle in str(err.value)
    assert len(str(err.value)) < 300


def test_a_negative_timeout_is_invalid_input(virtual_host: VirtualHost) -> None:
    with virtual_host.watch_devices() as watcher, pytest.raises(dio.Error) as err:
        watcher.get(-1)
    assert err.value.kind is dio.ErrorKind.INVALID_INPUT


def _listing(*devices: tuple[str, str], default: str | None = None, follows: str = "") -> Listing:
    ids = {DeviceId(HostId.PULSE, d): ("output", n, ()) for d, n in devices}
    chosen = None if default is None else (DeviceId(HostId.PULSE, default), default)
    followers = frozenset({DeviceId(HostId.PULSE, follows)} if follows else ())
    return Listing(ids, {"input": None, "output": chosen}, followers)  # type: ignore[arg-type]


def test_a_row_that_stands_for_the_default_moves_as_one_default_changed() -> None:
    # PulseAudio's @DEFAULT_SINK@ row takes the new sink's name: that is the
    # default moving (told once), not a device changing.
    old = _listing(
        ("a", "A"), ("b", "B"), ("@DEFAULT_SINK@", "A"), default="a", follows="@DEFAULT_SINK@"
    )
    new = _listing(
        ("a", "A"), ("b", "B"), ("@DEFAULT_SINK@", "B"), default="b", follows="@DEFAULT_SINK@"
    )
    [event] = differences(HostId.PULSE, old, new)
    assert event.kind is DEFAULT_CHANGED and str(event.device_id) == "pulse:b"
    renamed = _listing(
        ("a", "A2"), ("b", "B"), ("@DEFAULT_SINK@", "B"), default="b", follows="@DEFAULT_SINK@"
    )
    [event] = differences(HostId.PULSE, new, renamed)
    assert event.kind is CHANGED and str(event.device_id) == "pulse:a" and event.name == "A2"


def test_events_read_as_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    event = DeviceEvent(ADDED, HostId.VIRTUAL, DeviceId(HostId.VIRTUAL, "x"), "input", "X")
    assert str(event).split() == ["added", "virtual:x", "(input)", "X"]
    none = DeviceEvent(DEFAULT_CHANGED, HostId.JACK, None, "output")
    assert "none" in str(none) and "\n" not in str(none)
    logging.getLogger("duplexio").info("%s", event)


def test_the_virtual_loopback_device_is_the_default_output_when_it_loops(
    virtual_host: VirtualHost, name: str
) -> None:
    loopback = virtual_host.default_loopback_device()
    assert loopback is not None and str(loopback.id) == "virtual:loopback"
    report = dio.measure_latency(loopback, impulses=2, interval=0.02)  # it records what it plays
    assert report.round_trips
    virtual_host.add_output(name)
    virtual_host.set_default(f"virtual:{name}", "output")
    assert virtual_host.default_loopback_device() is None  # an output alone records nothing
