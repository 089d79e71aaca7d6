"""Streams on a host's default device follow it when it moves (PulseAudio and
PipeWire, the hosts whose default moves): the stream keeps running, the
first block from the new device is flagged, ``DEVICE_CHANGED`` reaches the
error callback as a notice (never ``stream.error``) and ``stream.device``
says where the stream is now. A duplex stream moves only where both its
directions move together on one clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import duplexio as dio
from support.servers import PipeWire, PulseServer
from tests.hosts.devices import pipewire_host
from tests.recorders import Errors, wait_for

RATE = 48000
CONFIG = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512))


class Blocks:
    """An output callback that counts its blocks and the flagged ones."""

    def __init__(self) -> None:
        self.count = 0
        self.flagged: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, out: np.ndarray, info: dio.CallbackInfo) -> None:
        with self.lock:
            self.count += 1
            if info.xrun:
                self.flagged.append(self.count)

    def flags_between(self, first: int, last: int) -> list[int]:
        with self.lock:
            return [b for b in self.flagged if first <= b <= last]


def follow_twice(
    device: dio.Device, move: Callable[[str], None], targets: tuple[str, str], host: str
) -> None:
    """An output stream on `device` (a host's default) across two moves of the
    default to `targets`: it keeps playing, says where it went, flags a block
    after each move and reports each as a notice."""
    blocks, errors = Blocks(), Errors()
    stream = device.build_output_stream(CONFIG, blocks, errors)
    with stream:
        # An idle null sink takes a while to start a new stream (docs/hosts/pulse.md).
        assert wait_for(lambda: blocks.count >= 5)
        for n, target in enumerate(targets, 1):
            at = blocks.count
            move(target)
            assert wait_for(lambda: len(errors.items) >= n), f"no notice of move {n}"  # noqa: B023
            assert wait_for(lambda: blocks.count >= at + 8), "it stopped playing"  # noqa: B023
            assert stream.running and stream.error is None
            assert stream.device == f"{host}:{target}"
            assert blocks.flags_between(at + 1, blocks.count), (
                f"no block flagged after move {n}: {blocks.flagged}"
            )
    assert [e.kind for e in errors.items] == [dio.ErrorKind.DEVICE_CHANGED] * 2
    assert target in str(errors.items[-1])
    assert stream.error is None and stream.device == f"{host}:{targets[-1]}"


@pytest.fixture
def two_pulse_sinks(pulseaudio_private: PulseServer) -> Iterator[PulseServer]:
    for name in ("da_first", "da_second"):
        loaded = pulseaudio_private.run(
            "pactl", "load-module", "module-null-sink", f"sink_name={name}"
        )
        assert loaded.returncode == 0, loaded.stderr
    # A new sink may become the default as it loads: start from the server's own.
    pulseaudio_private.run("pactl", "set-default-sink", pulseaudio_private.sink)
    yield pulseaudio_private


def test_a_pulse_stream_on_the_default_follows_it_across_two_changes(
    two_pulse_sinks: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", two_pulse_sinks.address)
    device = dio.host_from_id("pulse").default_output_device()
    assert device is not None and str(device.id) == "pulse:@DEFAULT_SINK@"

    def move(sink: str) -> None:
        assert two_pulse_sinks.run("pactl", "set-default-sink", sink).returncode == 0

    follow_twice(device, move, ("da_first", "da_second"), "pulse")


def test_a_pulse_duplex_stream_on_the_default_ends_when_it_moves(
    two_pulse_sinks: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server moves the sink's stream and the monitor's stream one by one:
    # their lockstep, and so the round trip, would not hold.
    monkeypatch.setenv("PULSE_SERVER", two_pulse_sinks.address)
    device = dio.host_from_id("pulse").default_duplex_device()
    assert device is not None and str(device.id) == "pulse:@DEFAULT_SINK@"
    calls: list[int] = []
    errors = Errors()
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(512))
    stream = device.build_duplex_stream(config, lambda i, o, n: calls.append(1), errors)
    stream.start()
    try:
        assert wait_for(lambda: len(calls) >= 5)
        two_pulse_sinks.run("pactl", "set-default-sink", "da_first")
        assert errors.arrived.wait(20)
        assert stream.error is not None and stream.error.kind is dio.ErrorKind.DEVICE_CHANGED
        assert "cannot move" in str(stream.error)
        with pytest.raises(dio.Error) as raised:
            stream.wait(10)
        assert raised.value.kind is dio.ErrorKind.DEVICE_CHANGED
    finally:
        stream.close()


@pytest.fixture
def two_pipewire_sinks(pipewire: PipeWire) -> Iterator[PipeWire]:
    modules = []
    for name in ("da_pw_first", "da_pw_second"):
        loaded = pipewire.run("pactl", "load-module", "module-null-sink", f"sink_name={name}")
        assert loaded.returncode == 0, loaded.stderr
        modules.append(loaded.stdout.strip())
    # A new sink may become the default as it loads: start from the stack's own.
    pipewire.run("pactl", "set-default-sink", pipewire.sink)
    assert wait_for(lambda: f'"{pipewire.sink}"' in default_sink(pipewire), 5)
    yield pipewire
    pipewire.run("pw-metadata", "-d", "0", "default.configured.audio.sink")
    for module in modules:
        pipewire.run("pactl", "unload-module", module)


def default_sink(stack: PipeWire) -> str:
    """The graph's default.audio.sink entry, as pw-metadata prints it."""
    listed = stack.run("pw-metadata", "0", "default.audio.sink").stdout
    return next((line for line in listed.splitlines() if "default.audio.sink" in line), "")


def move_pipewire(stack: PipeWire) -> Callable[[str], None]:
    def move(sink: str) -> None:
        moved = stack.run(
            "pw-metadata",
            "0",
            "default.configured.audio.sink",
            f'{{"name":"{sink}"}}',
            "Spa:String:JSON",
        )
        assert moved.returncode == 0, moved.stderr

    return move


def test_a_pipewire_stream_on_the_default_follows_it_across_two_changes(
    two_pipewire_sinks: PipeWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = pipewire_host(monkeypatch, two_pipewire_sinks).default_output_device()
    assert device is not None and str(device.id) == "pipewire:@DEFAULT_SINK@"
    follow_twice(
        device, move_pipewire(two_pipewire_sinks), ("da_pw_first", "da_pw_second"), "pipewire"
    )


def test_a_pipewire_duplex_stream_moves_with_its_sink_and_monitor_together(
    two_pipewire_sinks: PipeWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PipeWire the stream is one node linked to a sink and its monitor:
    # both links move in one step of the graph, on the new sink's clock.
    device = pipewire_host(monkeypatch, two_pipewire_sinks).default_duplex_device()
    assert device is not None
    calls: list[Any] = []
    errors = Errors()
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.DEFAULT)
    stream = device.build_duplex_stream(config, lambda i, o, n: calls.append(n.xrun), errors)
    with stream:
        assert wait_for(lambda: len(calls) >= 5)
        move_pipewire(two_pipewire_sinks)("da_pw_first")
        assert errors.arrived.wait(20)
        at = len(calls)
        assert wait_for(lambda: len(calls) >= at + 8)
        assert stream.running and stream.error is None
        assert stream.device == "pipewire:da_pw_first"
    assert [e.kind for e in errors.items] == [dio.ErrorKind.DEVICE_CHANGED]
    assert any(calls[at - 8 :]), "no block flagged after the move"
