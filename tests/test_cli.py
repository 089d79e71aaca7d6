"""The duplexio command line."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import duplexio as dio
from duplexio.cli import main
from tests.signals import frequency, tone


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
    # Every impulse that came back took 128 frames; one may be lost only to a
    # glitch the report flags (the virtual clock is a thread of a noisy machine).
    assert set(report["round_trips"]) == {128}
    assert len(report["round_trips"]) + report["lost"] == 3
    if report["lost"]:
        assert report["xruns"] + report["late_blocks"] > 0
    assert report["sample_rate"] == 44100 and report["buffer_size"] == 64


def test_a_device_is_picked_by_its_index_in_the_table_or_part_of_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = [str(d.id) for d in dio.query_devices()]
    loop, mic = listed.index("virtual:loopback"), listed.index("virtual:input")
    assert main(["latency", "-d", str(loop), "-n", "2", "--interval", "0.02"]) == 0
    assert "device       virtual:loopback" in capsys.readouterr().out
    path = tmp_path / "take.wav"
    assert main(["record", str(path), "-s", "0.1", "-d", str(mic)]) == 0
    assert main(["record", str(path), "-s", "0.1", "-d", "Virtual input"]) == 0
    assert sf.info(str(path)).frames == 4800
    capsys.readouterr()
    assert main(["latency", "-d", str(len(listed))]) == 2  # past the table's end: an Error
    assert f"device index {len(listed)} is not in the table" in capsys.readouterr().err


def test_devices_table_lists_ids_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--host", "virtual"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.split()[1:2] == ["virtual:loopback"])
    assert line.split()[0].isdigit()  # the index a device= argument takes
    assert "duplex" in line and "in,out,duplex" in line and "8000-192000" in line


def test_devices_lists_every_usable_host_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out == str(dio.query_devices()) + "\n"
    assert "(* the default host:" in out


def test_hosts_lists_virtual_as_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hosts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["host", "available", "devices", "default", "why"]
    assert any(x.split()[:2] == ["virtual", "yes"] for x in lines)
    # A host that is not usable says why (its library, its build or its server).
    assert all(len(x.split()) > 3 for x in lines[1:] if x.split()[1] == "no")


def test_duplex_feedback_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["duplex-feedback", "-s", "0.2", "-b", "128"]) == 0
    assert "blocks" in capsys.readouterr().out


def test_errors_exit_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latency", "-d", "virtual:nope"]) == 2
    assert "DEVICE_NOT_AVAILABLE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["latency", "-b", "2000000"])
    assert exited.value.code == 2 and "2000000" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "duplexio", "devices"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "virtual:loopback" in done.stdout


# -- files, beep, feedback, plot ---------------------------------------------------


def known_signal(frames: int, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)


@pytest.mark.parametrize(("suffix", "atol"), [(".wav", 0.0), (".flac", 2.0**-23)])
def test_record_writes_exactly_what_the_input_captured(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, atol: float
) -> None:
    signal = known_signal(30000)
    path = tmp_path / f"take{suffix}"
    for _ in range(6):  # a take with glitches (reported) is taken again
        device = make_device("input", signal=signal, loop=False)
        args = ["record", str(path), "-s", "0.5", "-d", str(device.id), "-b", "128"]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"{path}: 24000 frames = 0.50 s, 2 channels, 48000 Hz" in out
        if out.rstrip().endswith("; no glitches"):
            break
    else:
        pytest.fail("every take glitched")
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 48000 and data.shape == (24000, 2)
    np.testing.assert_allclose(data, signal[:24000], rtol=0, atol=atol)


def test_record_shows_progress_and_level_on_stderr_and_plots_the_level(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = make_device("input", signal=known_signal(96000), loop=False)
    png = tmp_path / "level.png"
    args = [
        "record",
        str(tmp_path / "x.wav"),
        "-s",
        "1.5",
        "-d",
        str(device.id),
        "--plot",
        str(png),
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "dBFS" in err and "[" in err and "%" in err
    assert f"level plot saved to {png}" in err and png.read_bytes()[:4] == b"\x89PNG"


def test_play_plays_a_file_to_the_end(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.flac"
    sf.write(path, known_signal(12000), 48000, subtype="PCM_24")
    device = make_device("output")
    assert main(["play", str(path), "-d", str(device.id), "-b", "256"]) == 0
    out = capsys.readouterr().out
    assert "played 12000 frames (0.25 s)" in out
    assert "no glitches" in out or "glitches (" in out  # a glitch is reported, never hidden


def test_record_at_a_rate_the_device_refuses_converts_it(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = make_device(
        "input", channels=1, signal=tone(96000, 48000), sample_rates=(48000, 48000)
    )
    path = tmp_path / "take.wav"
    assert (
        main(["record", str(path), "-s", "1", "-r", "44100", "-c", "1", "-d", str(device.id)]) == 0
    )
    captured = capsys.readouterr()
    assert "refused 44100 Hz: recorded at 48000 Hz and converted" in captured.err
    assert f"{path}: 44100 frames = 1.00 s, 1 channel, 44100 Hz" in captured.out
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    assert rate == 44100 and data.shape == (44100, 1)
    # At the right pitch: read as 48 kHz it would be 8.8 % off.
    assert frequency(data[4410:, 0], rate) == pytest.approx(1000.0, rel=1e-3)


def test_play_at_a_rate_the_device_refuses_converts_it(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.wav"
    sf.write(path, tone(22050, 44100), 44100, subtype="FLOAT")
    device = make_device("output", sample_rates=(48000, 48000))
    assert main(["play", str(path), "-d", str(device.id)]) == 0
    captured = capsys.readouterr()
    assert "refused 44100 Hz: converted to 48000 Hz (soxr)" in captured.err
    assert "played 22050 frames (0.50 s)" in captured.out


def test_a_recording_keeps_the_device_timeline_across_a_glitch_and_marks_it(
    make_device: Any, tmp_path: Path
) -> None:
    """A stall mid-take: the lost input is silence in the file, every other
    frame is where the device captured it, and the glitch is reported."""
    ramp = (np.arange(96000) / 2**17).astype(np.float32)
    device = make_device("input", channels=1, signal=ramp, loop=False)
    path = tmp_path / "take.wav"

    def stall_once(written: int, block: np.ndarray) -> None:
        if 9600 <= written < 9600 + 4800:
            device.stall(0.2)

    report = dio.record_file(path, 1.5, 48000, 1, device, buffer_size=128, on_block=stall_once)
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    assert report.frames == len(data) == 72000
    lost = [g for g in report.glitches if g.frames]
    assert lost, report.glitches  # the stall cost cycles, and the report says where
    silent = np.zeros(len(data), bool)
    for g in report.glitches:
        silent[g.frame : g.frame + g.frames] = True
    assert silent.sum() >= 0.1 * 48000
    frames = np.arange(len(data))
    np.testing.assert_array_equal(data[~silent, 0], ramp[frames[~silent]])
    assert not data[silent, 0].any()
    labels = tmp_path / "take.labels.txt"
    report.write_labels(labels)
    assert labels.read_text().count("\n") == len(report.glitches)
    first = labels.read_text().splitlines()[0].split("\t")
    assert float(first[0]) == pytest.approx(lost[0].frame / 48000, abs=1e-6)
    assert first[2] == f"{lost[0].frames} frames lost"


@pytest.mark.parametrize("how", ["SIGINT in the background", "SIGTERM"])
def test_a_take_ended_by_a_signal_is_a_valid_file_of_what_was_recorded(
    tmp_path: Path, how: str
) -> None:
    """Ten hours asked for (no whole-take buffer: it streams), ended after a
    second by a signal: the file is complete up to there and says how long."""
    path = tmp_path / "take.wav"  # float WAV: its header's sizes are set on close
    # A script's background job starts with SIGINT ignored; the command's own
    # handler must still catch it.
    background = how.startswith("SIGINT")
    proc = subprocess.Popen(
        [sys.executable, "-m", "duplexio", "record", str(path), "-s", "36000",
         "-d", "virtual:loopback", "-c", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size > 40000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT if background else signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    info = sf.info(str(path))
    assert info.samplerate == 48000 and info.channels == 1 and info.frames > 4800
    assert f"{path}: {info.frames} frames = {info.frames / 48000:.2f} s" in out
    assert "interrupted" in out


def test_beep_plays_on_the_default_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["beep", "-s", "0.1", "-f", "1000"]) == 0
    assert "1000 Hz for 0.1 s" in capsys.readouterr().out


def test_feedback_runs_two_streams_and_prints_their_drift(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["feedback", "-s", "0.5", "-b", "128"]) == 0
    out = capsys.readouterr().out
    # The virtual devices share one clock: the drift is exactly zero.
    assert "drift        +0.0 ppm" in out
    assert "underruns" in out and "overruns" in out


def test_latency_plot_saves_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lat.png"
    assert main(["latency", "-n", "4", "--interval", "0.02", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_take_the_device_cannot_record_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "never.wav"
    assert main(["record", str(path), "-s", "1", "-c", "99", "-d", "virtual:loopback"]) == 2
    assert "99 input channels" in capsys.readouterr().err
    assert not path.exists()


def test_a_take_that_fills_the_disk_ends_with_a_clear_error_and_a_readable_file(
    full_disk: Path,
) -> None:
    """The disk fills mid-take: Error(RESOURCE_EXHAUSTED) naming the file, the
    take so far kept and readable; the command prints one line and exits 2
    (it printed soundfile's traceback)."""
    path = full_disk / "take.wav"
    with pytest.raises(dio.Error) as raised:
        dio.record_file(path, seconds=5, sample_rate=48000, channels=2, device="virtual:loopback")
    assert raised.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED
    assert str(path) in raised.value.message and "full" in raised.value.message
    kept = sf.info(str(path)).frames
    assert kept > 0 and f"{kept} frames" in raised.value.message
    path.unlink()
    done = subprocess.run(
        [sys.executable, "-m", "duplexio", "record", str(path), "-s", "5",
         "-d", "virtual:loopback"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "RESOURCE_EXHAUSTED" in errors[0] and str(path) in errors[0]
    assert sf.info(str(path)).frames > 0


def test_bare_duplexio_lists_the_devices_and_version_says_which(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    assert "virtual:loopback" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("duplexio ")


def test_play_dash_reads_the_file_from_standard_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tone.wav"
    sf.write(str(path), np.full((2400, 1), 0.25), 48000)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert main(["play", "-", "-d", "virtual:loopback"]) == 0
    captured = capsys.readouterr()
    assert "played 2400 frames" in captured.out
    assert captured.err.startswith("standard input: 1 channel, 48000 Hz")


def test_messages_name_the_command_line_not_the_python_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["latency", "-d", "99"]) == 2
    err = capsys.readouterr().err
    assert "`duplexio devices`" in err and "query_devices" not in err


def test_an_empty_host_listing_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No JACK server by that name: the table is empty and the reason follows
    (or, where the host cannot be used at all, the error says why)."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "duplexio-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    status = main(["devices", "--host", "jack"])
    err = capsys.readouterr().err
    if status == 2:
        assert "HOST_UNAVAILABLE" in err, err
    else:
        assert status == 0 and "no devices:" in err and "server" in err, err
