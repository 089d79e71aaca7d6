"""The peers of ``bench/engine_overhead.py``, on a real JACK server.

A monitor client that counts the server's xruns, and copy-through streams of
the two libraries Python users pick today: JACK-Client (``jack``) and
python-sounddevice (PortAudio's JACK host API). Both run the Python callback
on the server's process thread. The server itself is a private jackd from
``tests/servers.py``; its name reaches these functions through
``JACK_DEFAULT_SERVER`` (or ``servername`` for the monitor).

The peer packages are imported only when a peer stream or the monitor is
opened, so the benchmark runs (and says why peers were skipped) on a machine
without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: PortAudio's name for its JACK host API.
PORTAUDIO_JACK_API = "JACK Audio Connection Kit"


class PeerError(RuntimeError):
    """A peer cannot run here (the message says why)."""


class XrunMonitor:
    """A JACK client without a process callback that counts the server's xruns."""

    def __init__(self, server: str) -> None:
        import jack

        self.xruns = 0
        self._client = jack.Client("bench-xrun-monitor", no_start_server=True, servername=server)
        self._client.set_xrun_callback(self._on_xrun)
        self._client.activate()

    def _on_xrun(self, delay_usecs: float) -> None:
        self.xruns += 1

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


class PeerSession:
    """A peer stream opened but not yet started; its callback counts blocks.

    Implements the benchmark's session interface: ``start()`` at the start
    of the measured window, ``figures()`` once at its end.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.callbacks = 0
        self.frames_seen = 0
        self.shut_down = False
        self.on_start: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Start the stream."""
        self.on_start()

    def figures(self) -> dict[str, Any]:
        """Callbacks run so far; every one delivered a block (late ones are server xruns)."""
        return {
            "callbacks": self.callbacks,
            "delivered": self.callbacks,
            "frames_seen": self.frames_seen,
            "backend": self.backend,
            "shut_down": self.shut_down,
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
        session = PeerSession(f"JACK-Client {jack.__version__}, libjack")
        session.frames_seen = client.blocksize

        def process(blocksize: int) -> None:
            for inport, outport in pairs:
                outport.get_array()[:] = inport.get_array()
            session.callbacks += 1

        def shutdown(status: Any, reason: str) -> None:
            session.shut_down = True

        def start() -> None:
            client.activate()
            for n, (inport, outport) in enumerate(pairs, 1):
                client.connect(f"system:capture_{n}", inport)
                client.connect(outport, f"system:playback_{n}")

        client.set_process_callback(process)
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
    session = PeerSession(f"sounddevice {sd.__version__}, {sd.get_portaudio_version()[1]}")

    def callback(indata: Any, outdata: Any, blocksize: int, time: Any, status: Any) -> None:
        outdata[:] = indata
        session.callbacks += 1
        session.frames_seen = blocksize

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
