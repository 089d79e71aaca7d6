"""Every script in examples/ runs, in its short mode, on the virtual host.

They run in this process (``runpy``) so that they can be pointed at virtual
devices made here: an input with a 1 kHz tone, a loopback.
"""

from __future__ import annotations

import re
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import duplexio as dio
from tests.signals import tone

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run examples/<name>.py with ``args``; what it printed."""
    old = sys.argv
    sys.argv = [str(EXAMPLES / f"{name}.py"), *args]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr().out


@pytest.fixture
def tone_input(make_device: Any) -> Any:
    return make_device("input", channels=1, signal=tone(48000, 48000)[:, 0])


def test_every_example_is_tested() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    assert scripts <= tested, scripts - tested


def test_wire(make_device: Any, capsys: pytest.CaptureFixture[str]) -> None:
    device = make_device("loopback")
    out = run("wire", "-d", str(device.id), "-s", "0.3", "-b", "128", capsys=capsys)
    assert "round trip 256 frames (5.33 ms)" in out
    assert re.search(r"\d+ blocks, \d+ late, \d+ device glitches", out)


def test_level_meter(tone_input: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "level.png"
    out = run(
        "level_meter", "-d", str(tone_input.id), "-s", "0.3", "--plot", str(png), capsys=capsys
    )
    lines = [line for line in out.splitlines() if "dBFS" in line]
    assert len(lines) == 6
    assert all(float(line.split()[0]) == pytest.approx(-6.0, abs=0.1) for line in lines)  # 0.5 peak
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_spectrogram(tone_input: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("spectrogram", "-d", str(tone_input.id), "-s", "0.3", capsys=capsys)
    peaks = [float(m) for m in re.findall(r"\|\s+([\d.]+) Hz", out)]
    assert peaks and all(abs(p - 1000) < 12 for p in peaks)  # one FFT bin: 11.7 Hz


def test_rec_unlimited(tone_input: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "take.wav"
    out = run("rec_unlimited", str(path), "-d", str(tone_input.id), "-s", "0.5", capsys=capsys)
    assert f"{path}: 0.50 s, 1 channel(s), 48000 Hz" in out
    assert sf.info(str(path)).frames == 24000


def test_play_long_file(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.wav"
    sf.write(path, tone(22050, 44100), 44100)
    device = make_device("output", sample_rates=(48000, 48000))
    out = run("play_long_file", str(path), "-d", str(device.id), capsys=capsys)
    assert "played 0.50 s at 44100 Hz, converted to 48000 Hz" in out


def test_asyncio_mic(tone_input: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("asyncio_mic", "-d", str(tone_input.id), "-s", "0.5", capsys=capsys)
    levels = [float(x) for x in re.findall(r"rms ([\d.]+)", out)]
    assert "block     0  position         0  rms" in out
    assert levels and all(x == pytest.approx(0.354, abs=0.01) for x in levels)  # 0.5 / sqrt(2)
    blocks, ticks = map(int, re.findall(r"(\d+) blocks read; the other task ticked (\d+)", out)[0])
    assert blocks == 94 and ticks >= 1  # 0.5 s of 256-frame blocks; the loop was not held


def test_latency(make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = make_device("loopback")
    png = tmp_path / "latency.png"
    index = [d.id for d in dio.query_devices()].index(device.id)  # as a user reads the table
    out = run(
        "latency", "-d", str(index), "-n", "3", "-b", "128", "--plot", str(png), capsys=capsys
    )
    assert "256 frames = 5.333 ms round trip" in out and "matches" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_impulse_response(
    make_device: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = make_device("loopback")
    png = tmp_path / "ir.png"
    out = run(
        "impulse_response", "-d", str(device.id), "-s", "0.5", "--plot", str(png), capsys=capsys
    )
    # playrec aligns the recording: an ideal loop peaks at frame 0, at full height.
    peak = re.search(r"peak ([+-][\d.]+) at frame (\d+)", out)
    assert peak and int(peak[2]) == 0 and float(peak[1]) == pytest.approx(1.0, abs=0.02)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(float(peak[1]))


def test_two_devices(capsys: pytest.CaptureFixture[str], virtual_host: Any) -> None:
    try:
        out = run("two_devices", "--cable-ppm", "250", "-s", "2", capsys=capsys)
    finally:
        for end in ("out", "in"):
            virtual_host.remove_device(f"virtual:example-{end}")
    drift = re.search(r"drift ([+-][\d.]+) ppm, locked after ([\d.]+) s", out)
    assert drift and float(drift.group(1)) == pytest.approx(250, abs=5), out
    assert "round trip" in out


def test_follow_default_input(
    virtual_host: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("duplexio.default_host", lambda: virtual_host)
    mic = virtual_host.add_input("follow-mic", channels=1, signal=tone(48000, 48000)[:, 0])

    def pick_the_mic() -> None:  # as a user would, in the desktop's settings
        time.sleep(0.5)
        virtual_host.set_default(mic, "input")

    picker = threading.Thread(target=pick_the_mic)
    picker.start()
    try:
        out = run("follow_default_input", "-s", "1.5", capsys=capsys)
    finally:
        picker.join()
        virtual_host.set_default("virtual:loopback")
        virtual_host.remove_device(mic.id)
    assert "recording from virtual:loopback" in out
    assert "the default input is now virtual:follow-mic" in out
    assert "from virtual:follow-mic" in out.split("recording from virtual:follow-mic", 1)[1]
