"""The rule that turns a missing audio server into a failure in CI."""

from __future__ import annotations

import pytest

from tests.conftest import server_unavailable


def test_missing_server_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUPLEXIO_REQUIRE_SERVERS", raising=False)
    with pytest.raises(pytest.skip.Exception):
        server_unavailable("no jackd")


def test_missing_server_fails_when_ci_requires_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUPLEXIO_REQUIRE_SERVERS", "1")
    with pytest.raises(pytest.fail.Exception, match="no jackd"):
        server_unavailable("no jackd")
