"""Programs written for python-sounddevice (examples/for_sounddevice/) run with one
line changed, ``import sounddevice as sd`` to ``import duplexio.sounddevice
as sd``, on every host's test device: the virtual loopback and each real
server the tests start (tests/hosts/devices.py).

Each runs in this process, from its own text with that one line replaced,
so that what is checked is the program as a sounddevice user wrote it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import duplexio as dio
from duplexio.declarations import declared_hosts
from tests.hosts.devices import duplex_device

PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "for_sounddevice"
HOSTS = [d.name for d in declared_hosts()]
ORIGINAL, CHANGED = "import sounddevice as sd", "import duplexio.sounddevice as sd"


@pytest.fixture(params=HOSTS)
def device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The device argument the programs get: the test device's id."""
    yield str(duplex_device(request, monkeypatch, tmp_path, request.param).id)
    import duplexio.sounddevice as sd

    sd.stop()
    sd.default.reset()


def run(name: str, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run examples/for_sounddevice/<name>.py, its import changed, with ``args``."""
    path = PROGRAMS / f"{name}.py"
    text = path.read_text()
    assert text.count(ORIGINAL) == 1, f"{name} imports sounddevice once"
    changed = text.replace(ORIGINAL, CHANGED)
    # Only that line differs.
    diff = [a for a, b in zip(text.splitlines(), changed.splitlines(), strict=True) if a != b]
    assert diff == [ORIGINAL]
    old = sys.argv
    sys.argv = [str(path), *args]
    try:
        exec(compile(changed, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
    finally:
        sys.argv = old
    return capsys.readouterr().out


def seconds(device: str) -> str:
    """How long a program that runs for a while runs: PulseAudio's null sink
    starts a stream up to 2 s late (its timer was armed for its idle block)."""
    return "3" if device.startswith("pulse:") else "0.5"


def test_every_program_runs_here() -> None:
    programs = {p.stem for p in PROGRAMS.glob("*.py")}
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    assert programs <= tested, programs - tested


def test_wire(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A 1000-frame block, which no device here runs, re-blocked."""
    out = run(
        "wire", "-i", device, "-o", device, "-s", seconds(device), "-b", "1000", capsys=capsys
    )
    assert re.search(r"^\d+ blocks of \[1000\] frames", out, re.M), out


def test_play_sine(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        "play_sine",
        "440",
        "-d",
        device,
        "-b",
        "1024",
        "-s",
        seconds(device),
        "-c",
        "2",
        capsys=capsys,
    )
    played = int(re.search(r"played (\d+) frames", out).group(1))  # type: ignore[union-attr]
    assert played > 0 and played % 1024 == 0, out


def test_measure_delay(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """sounddevice's playrec: the recording is not aligned, so the impulse comes
    back one round trip late, the round trip the stream reports."""
    out = run("measure_delay", "-d", device, "-c", "2", capsys=capsys)
    later = int(re.search(r"(-?\d+) frames later", out).group(1))  # type: ignore[union-attr]
    reported = int(re.search(r"stream latency: (\d+) frames", out).group(1))  # type: ignore[union-attr]
    if device.startswith("alsa:"):
        # jackd's loopback race (docs/hosts/alsa.md): a JACK cycle early at times.
        assert later in (reported, reported - 256), out
    else:
        assert later == reported > 0, out


def test_level(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """50 ms blocks: 2400 frames at 48 kHz, whatever the device's period."""
    out = run("level", "-d", device, "-b", "5", "-c", "2", capsys=capsys)
    blocks = re.findall(r"^(\d+) frames", out, re.M)
    assert blocks == ["2400"] * 5, out


def test_blocking_wire(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("blocking_wire", "-d", device, "-b", "1000", "-n", "10", "-c", "2", capsys=capsys)
    assert "10 reads of 1000 frames" in out, out


def test_play_file(device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every frame of the file handed over, the last block short, CallbackStop at
    its end and the finished_callback called (the program waits for it)."""
    path = tmp_path / "tone.wav"
    t = np.arange(30000) / 48000
    sf.write(str(path), 0.2 * np.sin(2 * np.pi * 440 * np.stack([t, t], axis=1)), 48000)
    out = run("play_file", str(path), "-d", device, "-b", "2048", "-q", "4", capsys=capsys)
    assert "played 30000 of 30000 frames" in out, out


def test_asyncio_blocks(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("asyncio_blocks", "-d", device, "-n", "10", "-c", "2", capsys=capsys)
    assert "10 blocks, 5120 frames" in out, out


def test_list_devices(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists the test device, numbered (PortAudio's are listed on
    Linux only when named); the default input and output are marked, and
    are the rows sd.default.device names."""
    out = run("list_devices", capsys=capsys)
    table = dio.query_devices()
    rows = [i for i, d in enumerate(table) if str(d.id) == device]
    assert rows or device.startswith("portaudio:"), out
    for index in rows:
        name = re.escape(table[index].name)
        assert re.search(rf"^[ *<>]\s+{index} {name}, ", out, re.M), out
    ins, outs = (int(n) for n in re.search(r"default devices: \[(-?\d+), (-?\d+)\]", out).groups())  # type: ignore[union-attr]
    assert ins >= 0 and outs >= 0, out
    marks = {"input": ">" if ins != outs else "*", "output": "<" if ins != outs else "*"}
    assert re.search(rf"^{re.escape(marks['input'])}\s+{ins} ", out, re.M), out
    assert re.search(rf"^{re.escape(marks['output'])}\s+{outs} ", out, re.M), out
