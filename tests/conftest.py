"""Shared fixtures: private virtual devices, and a guard against leaked threads."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

import duplexio as dio
from duplexio.declarations import declared_hosts
from duplexio.hosts import portaudio
from duplexio.hosts.virtual import VirtualDevice, VirtualHost
from support import servers

#: The hosts with a server or library the tests start: all but the in-process fallback.
SERVER_HOSTS = [d.name for d in declared_hosts() if not d.fallback]

#: Windows' own tests run under wine, on the installed wheel (scripts/windows-check).
collect_ignore = ["windows"]

_names = itertools.count()


#: Linux's view of this process; elsewhere the leak checks see Python's threads only.
_PROC = Path("/proc/self/task").is_dir()


def os_thread_count() -> int:
    """Threads of this process as the kernel sees them (C threads included); where
    there is no /proc, Python's threads."""
    if not _PROC:
        return threading.active_count()
    return len(os.listdir("/proc/self/task"))


def open_fds() -> dict[str, str]:
    """This process's open fds, each with what it is (a path, ``anon_inode:[eventfd]``, ...);
    none where there is no /proc to list them."""
    found: dict[str, str] = {}
    if not _PROC:
        return found
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, closed by now
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return found


def settled_os_thread_count(at_most: int, seconds: float = 5.0) -> int:
    """The OS thread count once it is <= at_most, or after `seconds`.

    A joined Python thread has finished its work but its OS thread may take
    a moment more to exit, so a count taken right after join can be one high.
    """
    deadline = time.monotonic() + seconds
    count = os_thread_count()
    while count > at_most and time.monotonic() < deadline:
        time.sleep(0.01)
        count = os_thread_count()
    return count


def session_server_device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, host: str
) -> dio.Device | None:
    """The device a test uses on ``host``'s session server, with this process
    pointed at that server: jackd's loopback client (``jack``, and
    ``portaudio`` through its JACK host API), PulseAudio's and PipeWire's
    null sinks (their monitors the input)."""
    if host in ("jack", "portaudio"):
        if host == "portaudio" and not portaudio.is_available():
            server_unavailable("libportaudio2 is not installed (scripts/install-servers)")
        jackd: servers.JackServer = request.getfixturevalue("jackd_128")
        monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd.name)
        key = f"jack:{jackd.name}/loopback"
        if host == "portaudio":
            key = "portaudio:JACK Audio Connection Kit/loopback"
        return dio.host_from_id(host).device_by_id(key)
    if host == "pulse":
        pulse: servers.PulseServer = request.getfixturevalue("pulseaudio")
        monkeypatch.setenv("PULSE_SERVER", pulse.address)
        return dio.host_from_id("pulse").device_by_id(f"pulse:{pulse.sink}")
    stack: servers.PipeWire = request.getfixturevalue("pipewire")
    for name in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(name, stack.env[name])
    return dio.host_from_id("pipewire").device_by_id(f"pipewire:{stack.sink}")


@pytest.fixture(autouse=True)
def _fresh_defaults() -> Iterator[None]:
    """``dio.default`` starts empty in every test, also after one that failed midway."""
    yield
    dio.default.reset()


@pytest.fixture
def virtual_host() -> VirtualHost:
    host = dio.host_from_id("virtual")
    assert isinstance(host, VirtualHost)
    return host


@pytest.fixture
def loopback(virtual_host: VirtualHost) -> Iterator[VirtualDevice]:
    """A loopback of the test's own, so injected faults touch no other test."""
    device = virtual_host.add_loopback(f"test-loop-{next(_names)}")
    yield device
    virtual_host.remove_device(device.id)


@pytest.fixture
def make_device(virtual_host: VirtualHost) -> Iterator[object]:
    """Factory: make_device(kind, **options) -> a private VirtualDevice."""
    made: list[VirtualDevice] = []

    def make(kind: str, **options: object) -> VirtualDevice:
        adder = {
            "loopback": virtual_host.add_loopback,
            "output": virtual_host.add_output,
            "input": virtual_host.add_input,
        }[kind]
        device = adder(f"test-{kind}-{next(_names)}", **options)
        made.append(device)
        return device

    yield make
    for device in made:
        virtual_host.remove_device(device.id)


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail when a test leaves a Python or OS thread behind."""
    before_py = {t.ident for t in threading.enumerate()}
    before_os = os_thread_count()
    yield
    leaked = [t for t in threading.enumerate() if t.ident not in before_py]
    assert not leaked, f"threads left behind: {leaked}"
    assert settled_os_thread_count(before_os) <= before_os, "an OS thread outlived the test"


@pytest.fixture
def busy_processes() -> Iterator[None]:
    """The standard load (TESTING.md): two CPU-busy processes, stopped by PID."""
    with servers.busy_processes(2):
        yield


def server_unavailable(reason: str) -> None:
    """Skip a real-server test, or fail it where CI demands the servers.

    CI sets ``DUPLEXIO_REQUIRE_SERVERS=1`` so that a test against JACK,
    PulseAudio, PipeWire or ALSA can never pass by being skipped.
    """
    if os.environ.get("DUPLEXIO_REQUIRE_SERVERS") == "1":
        pytest.fail(f"server required but unavailable: {reason}")
    pytest.skip(reason)


# -- real servers ---------------------------------------------------------------


_TEST_PREFIX = "dio-test"
_stale_released = False


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)


def _serve(what: str, start: Callable[[], S]) -> Iterator[S]:
    """Start a server for a fixture, skip (or fail in CI) when it cannot run, stop it after."""
    try:
        server = start()
    except servers.ServerUnavailable as why:
        server_unavailable(f"{what}: {why}")
        raise  # unreachable: server_unavailable raises
    try:
        yield server
    finally:
        server.stop()


def _jackd(frames: int) -> Iterator[servers.JackServer]:
    global _stale_released
    if not _stale_released and not servers.jack_missing():
        _stale_released = True
        servers.release_stale_jack_servers(_TEST_PREFIX)
    name = servers.unique_name(_TEST_PREFIX)
    yield from _serve("JACK", lambda: servers.start_jackd(name, frames=frames))


@pytest.fixture(scope="session")
def jackd_128() -> Iterator[servers.JackServer]:
    """A private jackd at 48 kHz, 128 frames, with loopback ports, for the session."""
    yield from _jackd(128)


@pytest.fixture
def jackd_256() -> Iterator[servers.JackServer]:
    """A private jackd at 48 kHz, 256 frames, with loopback ports, for one test.

    Not per session: jackd2 refuses a third server ("Too many servers already
    active"), and the session's 128-frame one plus one per test is two.
    """
    yield from _jackd(256)


@pytest.fixture
def jackd_private() -> Iterator[servers.JackServer]:
    """A jackd of the test's own, which the test may kill or reconfigure."""
    yield from _jackd(128)


@pytest.fixture(scope="session")
def pipewire() -> Iterator[servers.PipeWire]:
    """A private PipeWire stack (with pipewire-pulse and a null sink) for the session."""
    yield from _serve("PipeWire", servers.start_pipewire)


@pytest.fixture(scope="session")
def pulseaudio() -> Iterator[servers.PulseServer]:
    """A private PulseAudio daemon with a null sink, for the session."""
    yield from _serve("PulseAudio", servers.start_pulseaudio)


@pytest.fixture
def pulseaudio_private() -> Iterator[servers.PulseServer]:
    """A PulseAudio daemon of the test's own, which it may kill."""
    yield from _serve("PulseAudio", lambda: servers.start_pulseaudio(sink="da_private"))


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 256 KiB file system of its own (a tmpfs), for a take that
    fills it: what a full disk does to a recording, without filling a real one."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
