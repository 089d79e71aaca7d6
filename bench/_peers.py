"""The peers of ``bench/engine_overhead.py``, on a real JACK server.

A monitor client that counts the server's xruns, and copy-through streams of
the two libraries Python users pick today: JACK-Client (``jack``) and
python-sounddevice (PortAudio's JACK host API). Both run the Python callback
on the server's process thread. The server itself is a private jackd from
``support/servers.py``; its name reaches these functions through
``JACK_DEFAULT_SERVER`` (or ``servername`` for the monitor).

The peer packages are imported only when a peer stream or the monitor is
opened, so the benchmark runs (and says why peers were skipped) on a machine
without them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: PortAudio's name for its JACK host API.
PORTAUDIO_JACK_API = "JACK Audio Connection Kit"


def compile_c(name: str, into: Path) -> Path | str:
    """Compile ``bench/<name>.c`` (a JACK client declaring libjack's ABI itself) into
    ``into``; the binary's path, or why it could not be built."""
    binary = into / name
    done = subprocess.run(
        ["cc", "-O2", "-o", str(binary), str(Path(__file__).with_name(f"{name}.c")),
         "-l:libjack.so.0", "-lpthread"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return binary if done.returncode == 0 else f"{name}.c did not build: {done.stderr[-300:]}"


class PeerError(RuntimeError):
    """A peer cannot run here (the message says why)."""


class XrunMonitor:
    """A JACK client without a process callback that counts the server's xruns."""

    def __init__(self, server: str) -> None:
        import jack

        self.xruns = 0
        self.times: list[float] = []  # time.monotonic() of each, to count a window's
        self._client = jack.Client("bench-xrun-monitor", no_start_server=True, servername=server)
        self._client.set_xrun_callback(self._on_xrun)
        self._client.activate()

    def _on_xrun(self, delay_usecs: float) -> None:
        self.xruns += 1
        self.times.append(time.monotonic())

    def between(self, start: float, end: float) -> int:
        """Xruns the server reported in [start, end] (``time.monotonic()`` seconds;
        CLOCK_MONOTONIC, the same in every process)."""
        return sum(start <= t <= end for t in self.times)

    def close(self) -> None:
        """Leave the server."""
        self._client.deactivate()
        self._client.close()


@contextmanager
def xrun_monitor(server: str) -> Iterator[XrunMonitor | None]:
    """An :class:`XrunMonitor` for the block, or None without JACK-Client."""
    try:
        monitor = XrunMonitor(server)
    except ImportError:
        yield None
        return
    try:
        yield monitor
    finally:
        monitor.close()


class Steps:
    """Discontinuities in a stream's block clock, and whether each was flagged.

    ``see(position, flagged)`` per block, with the block's position on the
    stream's own clock (frames, ns, or s: whatever ``period`` is in) and
    whether the library told its callback about a glitch on this block. A
    step off the period by more than half a period is a discontinuity;
    ``lost`` counts the whole periods skipped.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.last: float | None = None
        self.discontinuities = 0
        self.unflagged = 0
        self.lost = 0

    def see(self, position: float, flagged: bool) -> None:
        """One block: its clock position and whether it came flagged."""
        last, self.last = self.last, position
        if last is None:
            return
        step = position - last
        if abs(step - self.period) * 2 <= self.period:
            return
        self.discontinuities += 1
        self.unflagged += not flagged
        self.lost += max(0, round(step / self.period) - 1)

    def figures(self) -> dict[str, int]:
        """The counts, for a benchmark row."""
        return {"discontinuities": self.discontinuities, "unflagged": self.unflagged,
                "lost_cycles": self.lost}  # fmt: skip


class PeerSession:
    """A peer stream opened but not yet started; its callback counts blocks.

    Implements the benchmark's session interface: ``start()`` at the start
    of the measured window, ``figures()`` once at its end.
    """

    def __init__(self, backend: str, period: float) -> None:
        self.backend = backend
        self.steps = Steps(period)
        self.callbacks = 0
        self.frames_seen = 0
        self.shut_down = False
        self.on_start: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Start the stream."""
        self.on_start()

    def helper_threads(self) -> set[int]:
        """None: the peer's only real-time thread is libjack's, where its callback runs."""
        return set()

    def figures(self) -> dict[str, Any]:
        """Callbacks run so far; every one delivered a block (late ones are server xruns)."""
        return {
            "callbacks": self.callbacks,
            "delivered": self.callbacks,
            "frames_seen": self.frames_seen,
            "backend": self.backend,
            "shut_down": self.shut_down,
            **self.steps.figures(),
        }


@contextmanager
def open_jack_client(frames: int, rate: int, channels: int) -> Iterator[PeerSession]:
    """A JACK-Client client copying its inputs to its outputs, wired to ``system:*``."""
    import jack

    client = jack.Client("bench-jack-client", no_start_server=True)
    try:
        if client.blocksize != frames or client.samplerate != rate:
            raise PeerError(
                f"server runs {client.blocksize} frames at {client.samplerate} Hz, "
                f"not {frames} at {rate}"
            )
        pairs = [
            (client.inports.register(f"in_{n}"), client.outports.register(f"out_{n}"))
            for n in range(1, channels + 1)
        ]
        session = PeerSession(f"JACK-Client {jack.__version__}, libjack", frames)
        session.frames_seen = client.blocksize
        xrun = [False]  # set by the xrun callback (another thread), read by the next block

        def process(blocksize: int) -> None:
            for inport, outport in pairs:
                outport.get_array()[:] = inport.get_array()
            session.callbacks += 1
            flagged, xrun[0] = xrun[0], False
            session.steps.see(client.last_frame_time, flagged)

        def on_xrun(delay_usecs: float) -> None:
            xrun[0] = True

        def shutdown(status: Any, reason: str) -> None:
            session.shut_down = True

        def start() -> None:
            client.activate()
            for n, (inport, outport) in enumerate(pairs, 1):
                client.connect(f"system:capture_{n}", inport)
                client.connect(outport, f"system:playback_{n}")

        client.set_process_callback(process)
        client.set_xrun_callback(on_xrun)
        client.set_shutdown_callback(shutdown)
        session.on_start = start
        yield session
        client.deactivate()
    finally:
        client.close()


@contextmanager
def open_sounddevice(frames: int, rate: int, channels: int) -> Iterator[PeerSession]:
    """A sounddevice duplex stream on PortAudio's JACK device, copying input to output."""
    import sounddevice as sd

    api = next((h for h in sd.query_hostapis() if h["name"] == PORTAUDIO_JACK_API), None)
    if api is None or api["default_output_device"] < 0:
        raise PeerError("PortAudio has no JACK host API or no JACK device (is jackd running?)")
    version = f"sounddevice {sd.__version__}, {sd.get_portaudio_version()[1]}"
    session = PeerSession(version, frames / rate)

    def callback(indata: Any, outdata: Any, blocksize: int, time: Any, status: Any) -> None:
        outdata[:] = indata
        session.callbacks += 1
        session.frames_seen = blocksize
        session.steps.see(time.outputBufferDacTime, bool(status))

    stream = sd.Stream(
        samplerate=rate,
        blocksize=0,  # the server's period, handed through
        device=api["default_output_device"],
        channels=channels,
        dtype="float32",
        callback=callback,
    )
    try:
        session.on_start = stream.start
        yield session
        stream.stop()
    finally:
        stream.close()
