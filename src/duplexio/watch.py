"""Devices that come and go: events, told as they happen.

A `DeviceWatcher` keeps, for each host it watches, the host's device list
and defaults as last seen. Each host gives a *change source*: its server's
own notifications (PulseAudio's subscription, JACK's registration
callbacks, PipeWire's registry, the virtual host's own) or, where a host
has none, a timer. Whenever the source says something may have changed,
the watcher lists the host again and reports the difference: devices
added, removed or changed, and defaults moved. Listing afresh, rather than
trusting each notification's details, keeps the events consistent with what
``host.devices()`` answers at that moment, whichever notification came.

A source whose server went away raises ``DEVICE_NOT_AVAILABLE``; the
watcher then reports every device of that host removed and opens the
source again every `RETRY_SECONDS` until the server is back, when it
reports what came back as added (with the ids it had: ids name server
nodes, ports and cards, not connections).
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from duplexio._validate import checked_methods
from duplexio.errors import Error, ErrorKind
from duplexio.ids import DeviceId, HostId

logger = logging.getLogger("duplexio")

#: Seconds between looks for a host that cannot tell of changes itself.
POLL_SECONDS = 0.5
#: Seconds between attempts to reach a server that went away.
RETRY_SECONDS = 0.25
#: The longest one wait on a change source lasts, so that `close()` is prompt.
WAIT_SECONDS = 0.1
#: Seconds after a notice when the host is listed once more: a server may
#: send a notice before its own lists show the change (JACK tells of a
#: port going before the client is out of its graph).
SETTLE_SECONDS = 0.3
#: Seconds `close()` waits for the watcher's threads (a host's listing that
#: hangs on a dead server is bounded by that host's own timeouts).
JOIN_SECONDS = 5.0

EventDirection = Literal["input", "output"]


class DeviceEventKind(enum.Enum):
    """What happened to a device."""

    #: A device appeared (plugged in, a server node or client came up).
    ADDED = "added"
    #: A device went away (unplugged, its server or client stopped).
    REMOVED = "removed"
    #: The host's default input or output is now another device.
    DEFAULT_CHANGED = "default changed"
    #: A device is still there but described differently (name, channels).
    CHANGED = "changed"


@checked_methods
@dataclass(frozen=True)
class DeviceEvent:
    """One change to a host's devices.

    Attributes
    ----------
    kind
        What happened.
    host
        The host it happened on.
    device_id
        The device; for ``DEFAULT_CHANGED`` the new default, or None when
        the host has no default in that direction now.
    direction
        ``"input"`` or ``"output"``: the direction of a default that moved,
        or of a device that has only one; None for a device with both.
    name
        The device's human-readable name (empty when there is no device).
    """

    kind: DeviceEventKind
    host: HostId
    device_id: DeviceId | None
    direction: EventDirection | None
    name: str = ""

    def __str__(self) -> str:
        """One line: what, which device, which direction."""
        what = self.kind.value
        device = str(self.device_id) if self.device_id is not None else f"({self.host}: none)"
        direction = f" {self.direction}" if self.direction else ""
        name = f"  {self.name}" if self.name else ""
        if self.kind is DeviceEventKind.DEFAULT_CHANGED:
            return f"default{direction:<8} {device}{name}"
        return f"{what:<16} {device}{direction and f' ({self.direction})'}{name}"


class ChangeSource(ABC):
    """Where a host hears that its devices may have changed."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s; True when something may have changed.

        Raises
        ------
        Error
            ``DEVICE_NOT_AVAILABLE`` when the server went away.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the source (its connection); called once, by the thread that waits."""


class Polling(ChangeSource):
    """A host with no notifications: look every `interval` seconds.

    With a `fingerprint` (something cheap that changes when devices do, such
    as the list of sound cards), a look is that call, and the host is listed
    only when its answer changed; without one, every look is a listing.
    """

    def __init__(self, interval: float, fingerprint: Callable[[], object] | None = None) -> None:
        self._interval = interval
        self._fingerprint = fingerprint
        self._seen = fingerprint() if fingerprint is not None else None
        self._next = time.monotonic() + interval

    def wait(self, timeout: float) -> bool:
        """Sleep until the next look is due, or `timeout`; True when it found a change."""
        left = self._next - time.monotonic()
        if left > timeout:
            time.sleep(timeout)
            return False
        time.sleep(max(left, 0.0))
        self._next = time.monotonic() + self._interval
        if self._fingerprint is None:
            return True
        now = self._fingerprint()
        changed, self._seen = now != self._seen, now
        return changed

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class Listing:
    """A host's devices and defaults at one moment, as the watcher compares them.

    Attributes
    ----------
    devices
        Each device's id, with (direction, name, what else describes it).
    defaults
        The device each default (``"input"``, ``"output"``) stands for now.
    followers
        Ids of rows that stand for the current default (PulseAudio's
        ``@DEFAULT_SINK@``): a new description of theirs is the default
        moving, told once as ``DEFAULT_CHANGED``.
    """

    devices: Mapping[DeviceId, tuple[EventDirection | None, str, tuple[object, ...]]]
    defaults: Mapping[EventDirection, tuple[DeviceId, str] | None]
    followers: frozenset[DeviceId] = frozenset()


EMPTY = Listing({}, {"input": None, "output": None})


class Watched(Protocol):
    """What a watcher needs of a host (`duplexio.host.Host` is one)."""

    @property
    def id(self) -> HostId:
        """The host's id."""
        ...

    def _listing(self) -> Listing:
        """The host's devices and defaults now."""
        ...

    def _change_source(self) -> ChangeSource:
        """A new source of change notices; ``DEVICE_NOT_AVAILABLE`` while its server is down."""
        ...


def differences(host: HostId, old: Listing, new: Listing) -> list[DeviceEvent]:
    """The events that take `old` to `new`: removals, additions, changes, then defaults."""
    events: list[DeviceEvent] = []
    for device_id, (direction, name, _) in old.devices.items():
        if device_id not in new.devices:
            events.append(DeviceEvent(DeviceEventKind.REMOVED, host, device_id, direction, name))
    for device_id, (direction, name, described) in new.devices.items():
        before = old.devices.get(device_id)
        if before is None:
            events.append(DeviceEvent(DeviceEventKind.ADDED, host, device_id, direction, name))
        elif before != (direction, name, described) and device_id not in new.followers:
            events.append(DeviceEvent(DeviceEventKind.CHANGED, host, device_id, direction, name))
    ways: tuple[EventDirection, ...] = ("input", "output")
    for way in ways:
        now = new.defaults.get(way)
        if now != old.defaults.get(way):
            kind = DeviceEventKind.DEFAULT_CHANGED
            if now is None:
                events.append(DeviceEvent(kind, host, None, way))
            else:
                events.append(DeviceEvent(kind, host, now[0], way, now[1]))
    return events


class _HostThread:
    """One host's side of a watcher: its thread waits on the host's change
    source, lists the host again and queues the differences."""

    def __init__(self, host: Watched, watcher: DeviceWatcher, first: Listing) -> None:
        self.host = host
        self.watcher = watcher
        self.last = first
        self.thread = threading.Thread(
            target=self._run, name=f"duplexio-watch-{host.id.value}", daemon=True
        )

    def _relist(self) -> None:
        try:
            now = self.host._listing()
        except Error as err:  # a listing that fails is a host with nothing reachable
            logger.debug("listing %s while watching failed: %s", self.host.id, err)
            now = EMPTY
        self.watcher._put(differences(self.host.id, self.last, now))
        self.last = now

    def _run(self) -> None:
        closed = self.watcher._closed
        source: ChangeSource | None = None
        again: float | None = None  # when to list once more after a notice
        try:
            while not closed.is_set():
                if source is None:
                    try:
                        source = self.host._change_source()
                    except Error:  # the server is down (or went before we heard it)
                        self._relist()
                        closed.wait(RETRY_SECONDS)
                        continue
                    self._relist()  # what happened while no source listened
                    continue
                try:
                    changed = source.wait(WAIT_SECONDS)
                except Error:
                    source.close()
                    source = None
                    self._relist()  # what went with the server
                    continue
                if closed.is_set():
                    break
                if changed:
                    self._relist()
                    again = time.monotonic() + SETTLE_SECONDS
                elif again is not None and time.monotonic() >= again:
                    self._relist()
                    again = None
        except BaseException as err:  # no thread of ours dies silently
            logger.exception("the %s device watcher stopped", self.host.id)
            self.watcher._fail(err)
        finally:
            if source is not None:
                source.close()


_live: weakref.WeakSet[DeviceWatcher] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for watcher in list(_live):
        watcher.close()


@checked_methods
class DeviceWatcher:
    """Device events from one or more hosts, as they happen.

    Made by `duplexio.watch_devices()` or ``host.watch_devices()``. Iterate
    it (``for event in watcher``, or ``async for``) to receive
    `DeviceEvent` s in the order they happened; iteration ends when the
    watcher is closed. Or give a callback, which then receives every event,
    in order, on a thread of the watcher's (never an audio thread). Events
    are never dropped: they wait in the watcher until taken.

    Close it with `close()` (also from its own callback, from any thread,
    any number of times) or use it as a context manager. Watchers still open
    at interpreter exit are closed then.
    """

    def __init__(
        self,
        hosts: Sequence[Watched],
        callback: Callable[[DeviceEvent], object] | None = None,
    ) -> None:
        self._events: deque[DeviceEvent] = deque()
        self._ready = threading.Condition()
        self._closed = threading.Event()
        self._failure: BaseException | None = None
        self._callback = callback
        # Each host's devices as they are now: later events are what differs.
        self._sides = [_HostThread(h, self, _first_listing(h)) for h in hosts]
        self._delivery: threading.Thread | None = None
        if callback is not None:
            self._delivery = threading.Thread(
                target=self._deliver, name="duplexio-watch-events", daemon=True
            )
            self._delivery.start()
        for side in self._sides:
            side.thread.start()
        _live.add(self)

    @property
    def hosts(self) -> list[HostId]:
        """The hosts watched."""
        return [side.host.id for side in self._sides]

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed.is_set()

    def _put(self, events: list[DeviceEvent]) -> None:
        if events:
            with self._ready:
                self._events.extend(events)
                self._ready.notify_all()

    def _fail(self, err: BaseException) -> None:
        self._failure = err
        self.close()

    def _take(self, timeout: float | None) -> DeviceEvent | None:
        """The next event; None when closed (and drained) or on timeout."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._events or self._closed.is_set(), timeout):
                return None
            return self._events.popleft() if self._events else None

    def _deliver(self) -> None:
        assert self._callback is not None
        while True:
            event = self._take(None)
            if event is None or self._closed.is_set():
                return
            try:
                self._callback(event)
            except Exception:  # the callback's fault: logged, the next event still comes
                logger.exception("device event callback raised on %s", event)

    def _ended(self) -> None:
        # Iteration that ends because a host's thread failed says so.
        if self._failure is not None:
            raise Error(
                ErrorKind.BACKEND_ERROR, f"the device watcher stopped: {self._failure!r}"[:300]
            )

    def _iteration(self) -> None:
        if self._callback is not None:
            raise Error(
                ErrorKind.UNSUPPORTED_OPERATION,
                "this watcher gives its events to its callback; iterate one made without",
            )

    def get(self, timeout: float | None = None) -> DeviceEvent | None:
        """The next event, waiting up to `timeout` s (None: until one comes or the
        watcher closes); None on timeout or once closed with none left.

        Raises
        ------
        Error
            ``UNSUPPORTED_OPERATION`` for a watcher with a callback.
        """
        self._iteration()
        if timeout is not None and timeout < 0:
            raise Error(ErrorKind.INVALID_INPUT, f"timeout must be >= 0 or None, got {timeout!r}")
        return self._take(timeout)

    def __iter__(self) -> Iterator[DeviceEvent]:
        """Events as they come, until the watcher is closed."""
        self._iteration()
        while True:
            event = self._take(None)
            if event is None:
                self._ended()
                return
            yield event

    def __aiter__(self) -> AsyncIterator[DeviceEvent]:
        """Events as they come, for ``async for``, until the watcher is closed."""
        self._iteration()
        return self._async_events()

    async def _async_events(self) -> AsyncIterator[DeviceEvent]:
        while True:
            event = self._take(0)
            if event is not None:
                yield event
            elif self._closed.is_set():
                self._ended()
                return
            else:  # the loop stays free between looks; events arrive within a second anyway
                await asyncio.sleep(WAIT_SECONDS / 2)

    def close(self) -> None:
        """Stop watching: threads end, connections to servers close. Idempotent.

        Events already queued can still be taken by iteration; a callback
        receives no more.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        with self._ready:
            self._ready.notify_all()
        me = threading.current_thread()
        for thread in [side.thread for side in self._sides] + [self._delivery]:
            if thread is not None and thread is not me and thread.ident is not None:
                thread.join(JOIN_SECONDS)
        _live.discard(self)

    def __enter__(self) -> DeviceWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<DeviceWatcher {state} on {', '.join(h.value for h in self.hosts)}>"


def _first_listing(host: Watched) -> Listing:
    try:
        return host._listing()
    except Error:
        return EMPTY


__all__ = [
    "ChangeSource",
    "DeviceEvent",
    "DeviceEventKind",
    "DeviceWatcher",
    "Listing",
    "Polling",
]
