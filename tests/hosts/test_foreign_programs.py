"""Programs written for python-sounddevice (examples/for_sounddevice/) and for
PyAudio (examples/for_pyaudio/) run with one line changed, ``import
sounddevice as sd`` to ``import duplexio.sounddevice as sd`` and ``import
pyaudio`` to ``import duplexio.pyaudio as pyaudio``, on every host's test
device: the virtual loopback and each real server the tests start
(tests/hosts/devices.py).

Each runs in this process, from its own text with that one line replaced,
so that what is checked is the program as its author wrote it.
"""

from __future__ import annotations

import re
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import duplexio as dio
from duplexio.declarations import declared_hosts
from tests.hosts.devices import duplex_device

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HOSTS = [d.name for d in declared_hosts()]
#: Per library: its programs, and the one line that changes.
LIBRARIES = {
    "sounddevice": ("import sounddevice as sd", "import duplexio.sounddevice as sd"),
    "pyaudio": ("import pyaudio", "import duplexio.pyaudio as pyaudio"),
}


@pytest.fixture(params=HOSTS)
def device(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The device argument the programs get: the test device's id; it is the
    default device too (for PyAudio's programs, which use the defaults)."""
    import duplexio.sounddevice as sd

    found = duplex_device(request, monkeypatch, tmp_path, request.param)
    dio.default.device = found
    sd._initialize()  # a fresh process would list the session's servers' devices
    yield str(found.id)

    sd.stop()
    sd.default.reset()


def run(
    name: str, *args: str, capsys: pytest.CaptureFixture[str], library: str = "sounddevice"
) -> str:
    """Run examples/for_<library>/<name>.py, its import changed, with ``args``."""
    path = EXAMPLES / f"for_{library}" / f"{name}.py"
    text = path.read_text()
    original, changed_line = LIBRARIES[library]
    assert text.count(original + "\n") == 1, f"{name} imports {library} once"
    changed = text.replace(original + "\n", changed_line + "\n")
    # Only that line differs.
    diff = [a for a, b in zip(text.splitlines(), changed.splitlines(), strict=True) if a != b]
    assert diff == [original]
    old = sys.argv
    sys.argv = [str(path), *args]
    try:
        exec(compile(changed, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
    finally:
        sys.argv = old
    return capsys.readouterr().out


def seconds(device: str) -> str:
    """How long a program that runs for a while runs: PulseAudio's null sink
    starts a stream late (its timer was armed for its idle block: docs/hosts/pulse.md)."""
    return "3" if device.startswith("pulse:") else "0.5"


def test_every_program_runs_here() -> None:
    tests = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    for library in LIBRARIES:
        programs = {p.stem for p in (EXAMPLES / f"for_{library}").glob("*.py")}
        prefix = "" if library == "sounddevice" else f"{library}_"
        assert {prefix + p for p in programs} <= tests, library


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
    if device.startswith("portaudio:"):
        return  # the default device is PortAudio's, which the table leaves out: -1
    ins, outs = (int(n) for n in re.search(r"default devices: \[(-?\d+), (-?\d+)\]", out).groups())  # type: ignore[union-attr]
    assert ins >= 0 and outs >= 0, out
    marks = {"input": ">" if ins != outs else "*", "output": "<" if ins != outs else "*"}
    assert re.search(rf"^{re.escape(marks['input'])}\s+{ins} ", out, re.M), out
    assert re.search(rf"^{re.escape(marks['output'])}\s+{outs} ", out, re.M), out


# -- PyAudio's --------------------------------------------------------------------


def test_pyaudio_record_wave(
    device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PyAudio's read() raises on lost input (its exception_on_overflow): a take
    the library so flagged (a busy machine's xrun) is taken again."""
    import duplexio.pyaudio as pyaudio

    path = tmp_path / "take.wav"
    for _ in range(3):
        try:
            out = run("record_wave", str(path), "0.5", "2", capsys=capsys, library="pyaudio")
            break
        except OSError as exc:
            assert exc.errno == pyaudio.paInputOverflowed, exc
    else:
        raise AssertionError("three takes lost input")
    with wave.open(str(path), "rb") as wf:
        frames = wf.getnframes()
    assert frames == 23 * 1024 and f"recorded {frames} frames, 2 channel(s)" in out, out


def test_pyaudio_play_wave_callback(
    device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every frame handed over; the short last block ends the stream (paComplete)."""
    path = tmp_path / "tone.wav"
    t = np.arange(20000) / 48000
    sf.write(str(path), 0.2 * np.sin(2 * np.pi * 440 * np.stack([t, t], axis=1)), 48000,
             subtype="PCM_16")  # fmt: skip
    out = run("play_wave_callback", str(path), capsys=capsys, library="pyaudio")
    assert "played 20000 of 20000 frames" in out, out


def test_pyaudio_wire_blocking(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("wire_blocking", "0.5", "2", capsys=capsys, library="pyaudio")
    assert "23 chunks of 1024 frames" in out, out


def test_pyaudio_wire_callback(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("wire_callback", seconds(device), "2", capsys=capsys, library="pyaudio")
    assert re.search(r"^\d+ blocks of \[1000\] frames", out, re.M), out


def test_pyaudio_list_devices(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every device under its host API; the defaults are the test device."""
    out = run("list_devices", capsys=capsys, library="pyaudio")
    name = dio.find_device(device, direction="duplex").name
    assert f"default input: {name}" in out and f"default output: {name}" in out, out
    listed = re.findall(r"^  (\d+): ", out, re.M)
    assert [int(i) for i in listed] == sorted(int(i) for i in listed), out
    assert len(listed) == len(dio.query_devices()), out
