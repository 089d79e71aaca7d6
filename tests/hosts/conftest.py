"""Fixtures shared by the tests that run on every host's test device."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import duplexio as dio
from duplexio.declarations import declared_hosts
from tests.hosts.devices import duplex_device

#: Every host the tree declares (hosts/<name>/host.json).
HOSTS = [d.name for d in declared_hosts()]


@pytest.fixture(params=HOSTS)
def each_host_device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dio.Device]:
    """Each host's duplex test device in turn (tests/hosts/devices.py)."""
    yield duplex_device(request, monkeypatch, tmp_path, request.param)
    dio.stop()
