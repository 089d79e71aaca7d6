"""The duplex device each host's tests share, on the session's own servers.

jackd's loopback client (``jack``, and ``portaudio`` through its JACK host
API), PulseAudio's and PipeWire's null sinks (their monitors the input),
ALSA's jack PCM on jackd's loopback ports, and a virtual loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import duplexio as dio
from duplexio.hosts.virtual import VirtualHost
from support.servers import ALSA_JACK_CONFIG, JackServer, PipeWire
from tests.conftest import session_server_device

#: The ALSA PCM of type jack that ALSA_JACK_CONFIG defines on jackd's loopback.
JACK_PCM = "daloop"


def duplex_device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str
) -> dio.Device:
    """``host``'s duplex test device, reachable by the library's own lookups."""
    if host == "virtual":
        virtual = dio.host_from_id("virtual")
        assert isinstance(virtual, VirtualHost)
        name = f"every-host-loop-{request.node.name}"
        found: dio.Device | None = virtual.add_loopback(name[:60], channels=8)
        request.addfinalizer(lambda: virtual.remove_device(found.id))  # type: ignore[union-attr]
    elif host != "alsa":
        found = session_server_device(request, monkeypatch, host)
    else:
        jackd: JackServer = request.getfixturevalue("jackd_256")
        monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd.name)
        path = tmp_path / "asound.conf"
        path.write_text(ALSA_JACK_CONFIG.format(name=JACK_PCM))
        monkeypatch.setenv("ALSA_CONFIG_PATH", str(path))
        found = dio.host_from_id("alsa").device_by_id(f"alsa:{JACK_PCM}")
    assert found is not None and found.supports_duplex(), host
    return found


def pipewire_host(monkeypatch: pytest.MonkeyPatch, stack: PipeWire) -> dio.Host:
    """The PipeWire host, this process pointed at `stack` (libpipewire finds it
    by XDG_RUNTIME_DIR)."""
    for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, stack.env[key])
    return dio.host_from_id("pipewire")
