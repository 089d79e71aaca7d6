"""The duplexaudio command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from duplexaudio.cli import main


def test_latency_reports_the_loopback_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latency", "-n", "4", "--interval", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "round trip   512 frames = 10.667 ms" in out
    assert "identical for every impulse" in out
    assert "(matches)" in out


def test_latency_json_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "latency",
                "-d",
                "virtual:loopback",
                "-b",
                "64",
                "-r",
                "44100",
                "-n",
                "3",
                "--interval",
                "0.02",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["round_trips"] == [128, 128, 128]
    assert report["sample_rate"] == 44100 and report["buffer_size"] == 64


def test_devices_table_lists_ids_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--host", "virtual"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("virtual:loopback "))
    assert "duplex" in line and "in,out,duplex" in line and "8000-192000" in line


def test_hosts_lists_virtual_as_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hosts"]) == 0
    assert any(x.split()[:2] == ["virtual", "yes"] for x in capsys.readouterr().out.splitlines())


def test_duplex_feedback_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["duplex-feedback", "-s", "0.2", "-b", "128"]) == 0
    assert "blocks" in capsys.readouterr().out


def test_errors_exit_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latency", "-d", "virtual:nope"]) == 2
    assert "DEVICE_NOT_AVAILABLE" in capsys.readouterr().err
    assert main(["latency", "-b", "8"]) == 2
    assert "8 frames" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "duplexaudio", "devices"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "virtual:loopback" in done.stdout
