"""Real audio servers for tests and benchmarks, started privately and stopped by PID.

Each server gets a private name (and, where it has one, a private runtime
dir), so a test never touches a server it did not start. Used by the test
fixtures (``tests/conftest.py``) and by the benchmarks under ``bench/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server cannot be started on this machine (the message says why)."""


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; reaps the process either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class JackServer:
    """A private ``jackd`` on the dummy driver.

    Attributes
    ----------
    name
        The server name (``jackd -n``); pass it as ``JACK_DEFAULT_SERVER`` or
        in device ids (``jack:<name>``).
    frames, rate
        Period size and sample rate.
    process
        The jackd process.
    log
        Where jackd's output goes.
    """

    name: str
    frames: int
    rate: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process (jack_* tools) that should use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1"}

    def tool(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run a JACK command-line tool (jack_connect, jack_lsp, jack_bufsize...) on this server."""
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system, s) jackd has used so far, from /proc."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """Kill jackd now (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop jackd (SIGTERM, then SIGKILL after 10 s), leaving nothing behind."""
        stop_process(self.process)
        if self.process.returncode == -signal.SIGKILL:
            _release_jack_name(self.name)


def _release_jack_name(name: str) -> None:
    """Free what a killed jackd left: its slot in libjack's server registry
    (there are 8; a dead server's slot is only reused by a server of the same
    name) and its files in /dev/shm. A jackd of that name that exits cleanly
    frees both."""
    try:
        start_jackd(name).stop()
    except ServerUnavailable:
        return
    # Semaphores of clients that were connected when the server was killed.
    for leftover in Path("/dev/shm").glob(f"jack_sem.*_{name}_*"):
        leftover.unlink(missing_ok=True)


def release_stale_jack_servers(prefix: str) -> None:
    """Free the registry slots of servers named `prefix`* that a killed run left behind.

    Only names with our own prefix are touched, and only when no server of
    that name answers.
    """
    for path in Path("/dev/shm").glob(f"jack_{prefix}*_0_0"):
        name = path.name[len("jack_") : -len("_0_0")]
        check = subprocess.run(
            ["jack_wait", "-s", name, "-c"], capture_output=True, text=True, timeout=20,
            check=False,
        )  # fmt: skip
        if "not running" in check.stdout:
            _release_jack_name(name)


def jack_missing() -> str | None:
    """Why no jackd can be started here, or None when it can."""
    missing = [t for t in ("jackd", "jack_wait", "jack_connect", "jack_lsp") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not found (scripts/install-servers: jackd2)"
    return None


def start_jackd(
    name: str, *, frames: int = 128, rate: int = 48000, channels: int = 2, loopback: int = 2
) -> JackServer:
    """Start ``jackd -n NAME -d dummy`` (with ``-L loopback`` ports) and wait until it answers.

    Raises
    ------
    ServerUnavailable
        jackd is missing or did not answer within 20 s.
    """
    reason = jack_missing()
    if reason:
        raise ServerUnavailable(reason)
    log = Path(tempfile.mkdtemp(prefix=f"jackd-{name}-")) / "jackd.log"
    command = [
        "jackd", "-n", name, "-t", "2000", "-L", str(loopback),
        "-d", "dummy", "-r", str(rate), "-p", str(frames), "-C", str(channels), "-P", str(channels),
    ]  # fmt: skip
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = JackServer(name, frames, rate, process, log)
    # Poll rather than `jack_wait -w`, which was seen giving up early on a
    # busy machine while jackd was still coming up.
    deadline = time.monotonic() + 20
    while True:
        check = server.tool("jack_wait", "-s", name, "-c")
        if check.returncode == 0 and "not running" not in check.stdout:
            return server
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerUnavailable(
                f"jackd -n {name} did not start ({check.stdout.strip()!r}): "
                f"{log.read_text()[-1500:]}"
            )
        time.sleep(0.1)


@contextmanager
def jackd(name: str, **options: int) -> Iterator[JackServer]:
    """A private jackd for the duration of the block; see :func:`start_jackd`."""
    server = start_jackd(name, **options)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def busy_processes(count: int = 2) -> Iterator[None]:
    """TESTING.md's standard load for the block: ``count`` CPU-busy processes
    (``sh -c 'while :; do :; done'``), stopped by PID."""
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def unique_name(prefix: str) -> str:
    """A server name no other run on this machine uses."""
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


@dataclass
class PipeWire:
    """A private PipeWire stack: session bus, pipewire, wireplumber, pipewire-pulse.

    Attributes
    ----------
    runtime_dir
        Its private ``XDG_RUNTIME_DIR`` (mode 700).
    sink
        The null sink loaded for loops (its monitor captures what it plays).
    quantum
        The forced graph period in frames.
    processes
        What was started, stopped in reverse order.
    """

    runtime_dir: Path
    sink: str
    quantum: int
    processes: list[subprocess.Popen[bytes]]

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process that should talk to this PipeWire."""
        env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.runtime_dir}/bus",
            "PULSE_SERVER": f"unix:{self.runtime_dir}/pulse/native",
        }
        env.pop("JACK_DEFAULT_SERVER", None)  # pipewire-jack has one graph
        return env

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command (pactl, pw-jack ...) against this PipeWire."""
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop(self) -> None:
        """Stop everything that was started, newest first, by PID."""
        for process in reversed(self.processes):
            stop_process(process)

    def restart(self) -> None:
        """Kill the stack (SIGKILL, as a crash would) and start it again in the same
        runtime dir, with its null sink.

        Raises
        ------
        ServerUnavailable
            A part did not come up again.
        """
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.processes.clear()
        for leftover in ("bus", "pipewire-0", "pipewire-0.lock", "pipewire-0-manager",
                         "pipewire-0-manager.lock"):  # fmt: skip
            (self.runtime_dir / leftover).unlink(missing_ok=True)
        _launch_pipewire(self)


def pipewire_missing() -> str | None:
    """Why no PipeWire stack can be started here, or None when it can."""
    tools = ("dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse", "pactl", "pw-metadata",
             "pw-jack")  # fmt: skip
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        return (
            f"{', '.join(missing)} not found (apt-get install pipewire pipewire-bin "
            "pipewire-jack pipewire-pulse wireplumber dbus pulseaudio-utils)"
        )
    return None


def _wait_for(check: Callable[[], bool], seconds: float, what: str, stack: PipeWire) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            stack.stop()
            raise ServerUnavailable(f"PipeWire: {what} did not come up within {seconds:g} s")
        time.sleep(0.1)


def start_pipewire(*, sink: str = "da_sink", quantum: int = 128) -> PipeWire:
    """Start the PipeWire stack headless, in the order it needs, with a null sink.

    Raises
    ------
    ServerUnavailable
        A part is missing or did not come up.
    """
    reason = pipewire_missing()
    if reason:
        raise ServerUnavailable(reason)
    runtime = Path(tempfile.mkdtemp(prefix="dio-pipewire-"))
    runtime.chmod(0o700)
    stack = PipeWire(runtime, sink, quantum, [])
    _launch_pipewire(stack)
    return stack


def _launch_pipewire(stack: PipeWire) -> None:
    """Start `stack`'s processes in its runtime dir and load its null sink."""
    runtime, env = stack.runtime_dir, stack.env

    def spawn(*command: str) -> None:
        log = open(runtime / f"{command[0]}.log", "ab")  # noqa: SIM115 - lives with the process
        stack.processes.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        )

    # Without a session bus wireplumber exits and nothing gets linked.
    spawn("dbus-daemon", "--session", f"--address={env['DBUS_SESSION_BUS_ADDRESS']}",
          "--nofork", "--nopidfile")  # fmt: skip
    _wait_for(lambda: (runtime / "bus").exists(), 10, "dbus-daemon", stack)
    spawn("pipewire")
    _wait_for(lambda: (runtime / "pipewire-0").exists(), 10, "pipewire", stack)
    spawn("wireplumber")
    spawn("pipewire-pulse")
    _wait_for(lambda: stack.run("pactl", "info").returncode == 0, 20, "pipewire-pulse", stack)
    loaded = stack.run(
        "pactl", "load-module", "module-null-sink", f"sink_name={stack.sink}", "rate=48000",
        "channels=2",
    )  # fmt: skip
    if loaded.returncode != 0:
        stack.stop()
        raise ServerUnavailable(f"PipeWire: null sink refused: {loaded.stderr}")
    stack.run("pw-metadata", "-n", "settings", "0", "clock.force-quantum", str(stack.quantum))


@dataclass
class PulseServer:
    """A private PulseAudio daemon with one null sink.

    Attributes
    ----------
    address
        Its ``PULSE_SERVER`` value (a unix socket in a private runtime dir).
    sink
        The null sink's name; its monitor is ``<sink>.monitor``.
    """

    address: str
    sink: str
    runtime_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process (pactl...) that should use this server."""
        return {
            **os.environ,
            "PULSE_SERVER": self.address,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command (pactl ...) against this server."""
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def kill(self) -> None:
        """Kill the daemon now (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """Start the daemon again on the same socket (after `kill`), with its null sink.

        Raises
        ------
        ServerUnavailable
            It did not answer within 20 s.
        """
        self.kill()
        self.process = _spawn_pulse(self.runtime_dir, self.sink)
        _await_pulse(self)

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after 10 s)."""
        stop_process(self.process)


def pulse_missing() -> str | None:
    """Why no PulseAudio daemon can be started here, or None when it can."""
    missing = [t for t in ("pulseaudio", "pactl") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install pulseaudio pulseaudio-utils)"
    return None


def _pulse_command(runtime: Path, sink: str) -> list[str]:
    socket = runtime / "pulse" / "native"
    return [
        "pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit",
        "--use-pid-file=no", "--log-target=stderr",
        f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
        f"--load=module-null-sink sink_name={sink} rate=48000 channels=2",
        "--load=module-always-sink",
    ]  # fmt: skip


def _spawn_pulse(runtime: Path, sink: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    with open(runtime / "pulseaudio.log", "ab") as log:
        return subprocess.Popen(
            _pulse_command(runtime, sink), stdout=log, stderr=subprocess.STDOUT, env=env
        )


def _await_pulse(server: PulseServer) -> None:
    """Wait until `server`'s daemon answers; stop it and raise if it does not in 20 s."""
    runtime = server.runtime_dir
    deadline = time.monotonic() + 20
    while server.run("pactl", "info").returncode != 0:
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            log_text = (runtime / "pulseaudio.log").read_text()[-1500:]
            raise ServerUnavailable(f"pulseaudio did not start: {log_text}")
        time.sleep(0.1)


def start_pulseaudio(*, sink: str = "da_null") -> PulseServer:
    """Start ``pulseaudio`` headless with a null sink, in a private runtime dir.

    Raises
    ------
    ServerUnavailable
        pulseaudio is missing or did not answer within 20 s.
    """
    reason = pulse_missing()
    if reason:
        raise ServerUnavailable(reason)
    runtime = Path(tempfile.mkdtemp(prefix="dio-pulse-"))
    runtime.chmod(0o700)
    (runtime / "pulse").mkdir()
    process = _spawn_pulse(runtime, sink)
    server = PulseServer(f"unix:{runtime / 'pulse' / 'native'}", sink, runtime, process)
    _await_pulse(server)
    return server


#: A private ALSA configuration (ALSA_CONFIG_PATH): the system's, plus a
#: ``type jack`` PCM ``{name}`` on jackd -L's loopback ports (a real loop
#: through the server, one JACK period long), listed with a hint (PortAudio
#: lists only PCMs with one), a plug PCM over it and an asym PCM whose capture is null.
ALSA_JACK_CONFIG = """<confdir:alsa.conf>
pcm.{name} {{
    type jack
    playback_ports {{ 0 loopback:playback_1 1 loopback:playback_2 }}
    capture_ports {{ 0 loopback:capture_1 1 loopback:capture_2 }}
    hint {{ description "duplexio test loop through jackd -L" }}
}}
pcm.{name}_plug {{
    type plug
    slave.pcm "{name}"
}}
pcm.{name}_asym {{
    type asym
    playback.pcm "{name}_plug"
    capture.pcm "null"
}}
"""
