"""The ALSA host against real servers behind ALSA's plugin PCMs.

No sound card here (TESTING.md): each test points ``ALSA_CONFIG_PATH`` at a
private file that includes the system's ``alsa.conf`` and defines a
``type jack`` PCM bound to the ``loopback:*`` ports of a private jackd (a
real loop through the server, one JACK period long), and uses the ``pulse``
PCM against a private PulseAudio. Round trips are measured on the audio.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import duplexio as dio
from duplexio import contract
from duplexio._engine import lib
from duplexio.hosts.alsa import AlsaBackend, AlsaDevice, AlsaHost, _hints, _served_by
from duplexio.hosts.jack import JackBackend, JackDevice
from duplexio.timing import ns_to_frames
from support.servers import ALSA_JACK_CONFIG, JackServer, PulseServer
from tests.blocking import FLAG_LAG_BLOCKS, blocking_round_trips
from tests.conftest import server_unavailable
from tests.hosts.devices import JACK_PCM
from tests.impulses import ImpulseLoop, assert_deadlines_from_wakeups, run_loop
from tests.recorders import Errors

RATE = 48000


@pytest.fixture
def alsa_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ALSA configuration with the test's jack PCM; the host re-reads it."""
    path = tmp_path / "asound.conf"
    path.write_text(ALSA_JACK_CONFIG.format(name=JACK_PCM))
    if not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_jack.so")):
        server_unavailable("the jack and pulse PCM types need libasound2-plugins")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(path))
    return path


@pytest.fixture
def jack_alsa(
    jackd_256: JackServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AlsaHost]:
    """The ALSA host with the jack PCM reaching a private 256-frame jackd."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    host = dio.host_from_id("alsa")
    assert isinstance(host, AlsaHost)
    yield host


@pytest.fixture
def pulse_alsa(
    pulseaudio: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> AlsaHost:
    """The ALSA host with the pulse PCM reaching the session's PulseAudio."""
    monkeypatch.setenv("PULSE_SERVER", pulseaudio.address)
    host = dio.host_from_id("alsa")
    assert isinstance(host, AlsaHost)
    return host


def pcm(host: AlsaHost, name: str) -> AlsaDevice:
    device = host.device_by_id(f"alsa:{name}")
    assert isinstance(device, AlsaDevice), f"alsa:{name} did not open"
    return device


class BlockLoop(ImpulseLoop):
    """An ImpulseLoop that also notes the round trip reported in each block."""

    def __init__(self, blocks: int) -> None:
        super().__init__(blocks, every=8)
        self.round_trip_at: list[int] = []  # the round trip info reported, per block

    def __call__(self, inp: np.ndarray, out: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        self.round_trip_at.append(ns_to_frames(info.round_trip_ns, RATE))
        super().__call__(inp, out, info)

    def returns(self, first: int = 0, last: int | None = None) -> list[tuple[int, list[int]]]:
        """(block sent, every round trip it came back at before the next was
        sent) of the impulses sent in blocks first..last that came back."""
        found = []
        bounds = [*self.sent[1:], None]
        for block, s, next_sent in zip(self.sent_blocks, self.sent, bounds, strict=True):
            if block < first or (last is not None and block > last):
                continue
            back = [b - s for b in self.back if b > s and (next_sent is None or b <= next_sent)]
            if back:
                found.append((block, back))
        return found

    def offsets(self, first: int = 0, last: int | None = None) -> list[int]:
        """Round trips of the impulses sent in blocks first..last that came back."""
        return [back[0] for _, back in self.returns(first, last)]

    def stretches(self) -> list[tuple[int, int]]:
        """(first, last) block of each stretch between xruns. A slip is flagged
        some cycles after it happens, so the blocks just before a flag are left out."""
        edges = [-1, *self.xrun_blocks, self.blocks]
        return [(lo + 1, hi - FLAG_LAG_BLOCKS) for lo, hi in itertools.pairwise(edges)]

    def after_last_xrun(self) -> int:
        """Alignment is re-established by each recovery: the last stretch is one run."""
        return max(self.xrun_blocks) + 1 if self.xrun_blocks else 0


def assert_one_offset(
    loop: BlockLoop, first: int, last: int | None, cycle: int, loopback_race: bool = False
) -> int:
    """Every impulse sent in blocks first..last came back at one offset, which is returned.

    With `loopback_race` (a loop through ``jackd -L``'s loopback ports) the
    offset may be one JACK cycle (`cycle` frames, whatever the ALSA period)
    short, the signature of a race inside jackd: its master driver wakes the
    clients that do not read from the loopback driver before that driver
    copies its playback ports to its capture ports
    (``JackAudioDriver::ProcessGraph{Async,Sync}Master``: ``ResumeRefNum``
    before ``ProcessReadSlaves``). When the jack PCM's playback client, a
    client of its own with no inputs, wins that race, it has written its next
    period before the copy: that period reaches capture one cycle early (and
    often again at the usual time; seen in 9 of 173 runs of 1000 blocks, in
    synchronous mode too, and under load for whole stretches). Both PCMs'
    rings keep their distance: nothing in ALSA can see it. Arrivals further
    apart than one JACK cycle fail; the later, on-time offset is returned.
    """
    found = loop.returns(first, last)
    if loopback_race:
        # The race can also hold for many periods in a row, or a whole stretch,
        # with no on-time copy: then arrivals are one JACK cycle apart at most,
        # never more, and the on-time one is the later.
        early = {back[0] for _, back in found}
        assert max(early) - min(early) in (0, cycle), (
            f"arrivals {sorted(early)} are not within one JACK cycle; xruns {loop.xrun_blocks}"
        )
        return max(early)
    firsts = [back[0] for _, back in found]
    common = max(set(firsts), key=firsts.count)
    for block, back in found:
        assert back[0] == common, f"sent in block {block}, back at {back}, usually {common}; " + (
            f"xruns {loop.xrun_blocks}"
        )
    return common


def run_duplex(device: AlsaDevice, frames: int, blocks: int) -> tuple[BlockLoop, dio.Stream]:
    loop = BlockLoop(blocks)
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(frames))
    stream = device.build_duplex_stream(config, loop)
    run_loop(stream, loop)
    return loop, stream


# -- enumeration and configs --------------------------------------------------------------


def test_config_pcms_are_listed_with_their_hardware_ranges(jack_alsa: AlsaHost) -> None:
    ids = {str(d.id) for d in jack_alsa.devices()}
    assert f"alsa:{JACK_PCM}" in ids
    assert "alsa:null" not in ids  # opens both ways, but has no clock
    device = pcm(jack_alsa, JACK_PCM)
    assert device.description.driver == "alsa"
    assert device.description.direction == "duplex"
    assert device.supports_duplex()
    [f32_in] = [
        r for r in device.supported_input_configs() if r.sample_format is dio.SampleFormat.F32
    ]
    # The jack plugin: the server's rate only, one channel per bound port
    # (fewer open both, the rest unused), periods from the server's period up.
    assert (f32_in.min_sample_rate, f32_in.max_sample_rate) == (RATE, RATE)
    assert (f32_in.min_channels, f32_in.max_channels) == (1, 2)
    assert f32_in.buffer_size.min_frames == 256
    default = device.default_duplex_config()
    assert (default.sample_rate, default.input_channels, default.output_channels) == (RATE, 2, 2)


def test_pulse_pcm_ranges_and_default_prefer_48k(pulse_alsa: AlsaHost) -> None:
    device = pcm(pulse_alsa, "pulse")
    assert "alsa:pulse" in {str(d.id) for d in pulse_alsa.devices()}
    [f32] = [
        r for r in device.supported_output_configs() if r.sample_format is dio.SampleFormat.F32
    ]
    assert f32.min_sample_rate < 48000 < f32.max_sample_rate
    assert f32.min_channels == 1 and f32.max_channels >= 2
    assert device.default_output_config().sample_rate == 48000
    assert "float32le" in " ".join(device.description.details)


def test_the_server_behind_a_pcm_is_found_through_its_slaves(alsa_config: Path) -> None:
    dio.host_from_id("alsa")  # loads libasound
    jack_ports = ["loopback:playback_1", "loopback:playback_2"]
    assert _served_by(JACK_PCM, False) == (lib.DA_ALSA_SERVED_JACK, jack_ports)
    assert _served_by(JACK_PCM, True) == (
        lib.DA_ALSA_SERVED_JACK, ["loopback:capture_1", "loopback:capture_2"]
    )  # fmt: skip
    # asym -> plug -> jack for playback; asym -> null for capture.
    assert _served_by(f"{JACK_PCM}_asym", False) == (lib.DA_ALSA_SERVED_JACK, jack_ports)
    assert _served_by(f"{JACK_PCM}_asym", True) == (0, [])
    assert _served_by("pulse", True) == (lib.DA_ALSA_SERVED_PULSE, [])
    assert _served_by("null", False) == (0, [])
    assert _served_by("no_such_pcm", False) == (0, [])


def test_text_from_c_grows_its_buffer_until_it_fits_or_fails_loudly(
    alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dio.host_from_id("alsa")  # loads libasound
    monkeypatch.setattr(contract, "_FIRST_TEXT", 8)  # every answer is longer
    assert _served_by(JACK_PCM, False) == (
        lib.DA_ALSA_SERVED_JACK, ["loopback:playback_1", "loopback:playback_2"]
    )  # fmt: skip
    assert JACK_PCM in [name for name, _, _ in _hints()]
    monkeypatch.setattr(contract, "TEXT_LIMIT", 32)
    with pytest.raises(dio.Error) as raised:
        _served_by(JACK_PCM, False)
    assert raised.value.kind is dio.ErrorKind.RESOURCE_EXHAUSTED
    assert JACK_PCM in raised.value.message and "32 bytes" in raised.value.message


def test_a_pcm_that_does_not_exist_is_not_available_naming_it(alsa_config: Path) -> None:
    host = dio.host_from_id("alsa")
    assert host.device_by_id("alsa:no_such_pcm") is None
    with pytest.raises(dio.Error) as raised:
        dio.rec(256, RATE, 1, device="alsa:no_such_pcm")
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "no_such_pcm" in raised.value.message


def test_rate_and_channels_outside_the_ranges_are_refused_naming_them(jack_alsa: AlsaHost) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    with pytest.raises(dio.Error) as raised:
        device.build_duplex_stream(dio.DuplexStreamConfig(2, 2, 44100), lambda i, o, n: None)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "44100" in raised.value.message and "48000" in raised.value.message
    with pytest.raises(dio.Error) as raised:
        device.build_input_stream(dio.StreamConfig(3, RATE), lambda d, n: None)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "3" in raised.value.message and "2" in raised.value.message
    with pytest.raises(dio.Error) as raised:
        device.build_output_stream(dio.StreamConfig(2, RATE, dio.BufferSize.device(64)), print)
    assert raised.value.kind is dio.ErrorKind.UNSUPPORTED_CONFIG
    assert "64" in raised.value.message and "256" in raised.value.message


def test_a_device_whose_server_is_gone_refuses_to_build(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    device = pcm(dio.host_from_id("alsa"), "pulse")  # type: ignore[arg-type]
    pulseaudio_private.kill()
    with pytest.raises(dio.Error) as raised:
        device.build_output_stream(dio.StreamConfig(2, RATE), lambda d, n: None)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "alsa:pulse" in raised.value.message
    # Probed with the server gone: the reason, not "no output".
    with pytest.raises(dio.Error) as raised:
        AlsaDevice("pulse").build_output_stream(dio.StreamConfig(2, RATE), lambda d, n: None)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
    assert "Connection refused" in raised.value.message


# -- duplex in lockstep ---------------------------------------------------------------------


def assert_each_stretch_reports_its_offset(
    loop: BlockLoop, cycle: int, loopback_race: bool = False
) -> list[int]:
    """Between xruns every impulse comes back at one offset, and that offset is
    the round trip info reported all through the stretch (once settled: a new
    run of the PCMs settles in its first 16 cycles). The offsets are returned."""
    found = []
    checked = 0
    for lo, hi in loop.stretches():
        count = len(loop.offsets(lo, hi))
        if count < 4:  # too short to say (start-up xruns come close)
            continue
        checked += count
        common = assert_one_offset(loop, lo, hi, cycle, loopback_race)
        reported = set(loop.round_trip_at[lo + 16 : hi + 1])
        # jackd's loopback race can also hold for a whole stretch: every period
        # then reaches capture one JACK cycle early and the rings, which the
        # report reads, cannot show it (docs/hosts/alsa.md). That one gap is allowed.
        raced = loopback_race and reported == {common + cycle}
        assert reported == {common} or raced, (
            f"offset {common}, reported {reported}, xruns {loop.xrun_blocks}"
        )
        found.append(common)
    assert found and checked >= 60, f"{checked} impulses checked, xruns at {loop.xrun_blocks}"
    return found


JACK_512_SPREADS = pytest.mark.xfail(
    strict=False,
    reason="known defect (docs/hosts/alsa.md): with 512-frame periods on a 256-frame jackd "
    "(two JACK cycles a period) arrivals within one stretch can spread over two JACK "
    "cycles with no xrun (seen in CI: 768, 1024, 1280); 256-frame periods hold",
)


@pytest.mark.parametrize(
    ("pcm_name", "frames"),
    [
        (JACK_PCM, 256),
        pytest.param(JACK_PCM, 512, marks=JACK_512_SPREADS),
        (f"{JACK_PCM}_plug", 256),
    ],
)
def test_duplex_on_the_jack_pcm_keeps_one_offset_and_reports_it(
    jack_alsa: AlsaHost, pcm_name: str, frames: int
) -> None:
    loop, stream = run_duplex(pcm(jack_alsa, pcm_name), frames, 1000)
    # The loopback race shifts by one cycle of the 256-frame jackd, not one ALSA period.
    offsets = assert_each_stretch_reports_its_offset(loop, 256, loopback_race=True)
    # The plugin's rings (capture: the period read; playback: two periods of
    # silence queued less the one played) plus JACK's one graph cycle, asked of
    # JACK. On a loaded machine a run can settle one JACK cycle shorter (seen
    # under two busy processes: 512 for 768, measured and reported alike), and
    # a stretch-long loopback race reports one JACK cycle more than is heard
    # (seen in CI: 1024 reported, docs/hosts/alsa.md); what must hold is that
    # the report is what the audio does, within one JACK cycle of nominal.
    assert stream.latency.round_trip in (offsets[-1], offsets[-1] + 256)  # + the race
    nominal = 2 * frames + 256
    assert stream.latency.round_trip in (nominal - 256, nominal, nominal + 256)
    backend = stream.backend
    assert isinstance(backend, AlsaBackend) and backend.beyond == dio.StreamLatency(0, 256)
    assert loop.sizes == {frames}
    steps = [s for k, s in enumerate(loop.callback_steps, 1) if k not in loop.xrun_blocks]
    assert set(steps) == {frames}


def test_duplex_on_a_jack_pcm_looped_through_a_jack_client_is_exact(
    jackd_256: JackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alsa_config: Path
) -> None:
    """A loop with no race in it: the PCM's ports wired through a JACK client
    (a JACK host stream passing its input to its output in the same cycle),
    which JACK runs after the plugin's playback client and before its capture
    client. Not one impulse may differ, and JACK adds nothing."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    through = dio.host_from_id("jack").device_by_id(f"jack:{jackd_256.name}")
    assert isinstance(through, JackDevice)

    def pass_through(inp: np.ndarray, out: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        out[:] = inp

    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    with through.unconnected().build_duplex_stream(config, pass_through) as client:
        backend = client.backend
        assert isinstance(backend, JackBackend)
        ours, theirs = backend.input_ports, backend.output_ports
        path = tmp_path / "through.conf"
        path.write_text(
            f"<{alsa_config}>\npcm.through {{\n    type jack\n"
            f'    playback_ports {{ 0 "{ours[0]}" 1 "{ours[1]}" }}\n'
            f'    capture_ports {{ 0 "{theirs[0]}" 1 "{theirs[1]}" }}\n}}\n'
        )
        monkeypatch.setenv("ALSA_CONFIG_PATH", str(path))
        loop, stream = run_duplex(pcm(dio.host_from_id("alsa"), "through"), 256, 1000)  # type: ignore[arg-type]
    # In every stretch between xruns the report is what is heard (checked
    # here): that is the guarantee. The figure itself is the plugin's rings
    # alone, 512; under load a restart after an xrun can settle one JACK
    # cycle longer (seen under two busy processes and a build: 768 heard and
    # reported), and stream.latency is the last figure the blocks carried
    # (the stream runs on past the loop's last checked block until closed).
    offsets = assert_each_stretch_reports_its_offset(loop, 256)
    assert set(offsets) <= {512, 768}, offsets
    assert stream.latency.round_trip in loop.round_trip_at
    assert isinstance(stream.backend, AlsaBackend)
    assert stream.backend.beyond == dio.StreamLatency(0, 0)


PULSE_SHIFTS = pytest.mark.xfail(
    strict=False,
    reason="known defect (docs/hosts/alsa.md): at short periods on a VM with steal time the "
    "pulse plugin's offset moves within a stretch with no xrun the PCM reports "
    "(seen at 128: 1024 -> 1280 -> 1408; once at 256 under heavy load: 1396 -> 1546); "
    "1024 holds",
)


@pytest.mark.parametrize(
    "frames", [pytest.param(128, marks=PULSE_SHIFTS), pytest.param(256, marks=PULSE_SHIFTS), 1024]
)
def test_duplex_on_the_pulse_pcm_keeps_one_offset_and_reports_it(
    pulse_alsa: AlsaHost, frames: int
) -> None:
    loop, stream = run_duplex(pcm(pulse_alsa, "pulse"), frames, 1000)
    assert_each_stretch_reports_its_offset(loop, frames)
    # stream.latency is what info carried (the stream ran on past the loop's
    # last checked block until closed, so an xrun there may have moved it).
    assert stream.latency.round_trip in loop.round_trip_at
    backend = stream.backend
    assert isinstance(backend, AlsaBackend) and backend.by_position
    # Flagged blocks: the PCMs' xruns, and blocks after a late or skipped one.
    stats = stream.stats
    flagged = len(loop.xrun_blocks)
    assert stats.xruns <= flagged <= stats.xruns + stats.late_blocks + stats.skipped_blocks


@pytest.mark.parametrize(
    ("host_fixture", "pcm_name"), [("jack_alsa", JACK_PCM), ("pulse_alsa", "pulse")]
)
def test_under_load_every_timestamp_discontinuity_is_flagged_on_its_block(
    request: pytest.FixtureRequest, host_fixture: str, pcm_name: str, busy_processes: None
) -> None:
    # Honesty, not speed: an xrun under two busy processes restarts both
    # directions; the time it took becomes whole lost periods, flagged on
    # the block after it, and the timestamps stay on the block grid.
    host: AlsaHost = request.getfixturevalue(host_fixture)
    loop, stream = run_duplex(pcm(host, pcm_name), 256, 1500)
    assert len(loop.callback_steps) >= 1499
    loop.assert_discontinuities_flagged(256)
    # Cycles missing from the timestamps are counted: lost by the PCM, or
    # skipped because the callback was still busy.
    if any(s != 256 for s in loop.callback_steps):
        assert stream.stats.lost_cycles + stream.stats.skipped_blocks > 0
    assert_deadlines_from_wakeups(stream, 1500)


def test_linked_duplex_starts_both_directions_as_one(jack_alsa: AlsaHost) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    stream = device.build_duplex_stream(
        dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256)), lambda i, o, n: None
    )
    assert isinstance(stream.backend, AlsaBackend)
    with stream:
        if not stream.backend.linked:
            pytest.skip(
                "snd_pcm_link answers ENOSYS on plugin PCMs (jack, pulse); it needs a "
                "hardware PCM, which this machine lacks"
            )
    loop, stream = run_duplex(device, 256, 400)
    assert_one_offset(loop, loop.after_last_xrun(), None, 256)


def stall_is_absorbed_or_reported(
    device: AlsaDevice, pid: int, seconds: float, loopback_race: bool = False
) -> tuple[BlockLoop, int]:
    """Stop the server behind the PCM for a moment mid-stream (SIGSTOP): the
    lockstep either keeps its offset or the slip is flagged as an xrun. The
    loop and the offset after the last xrun are returned."""
    loop = BlockLoop(1200)
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    with device.build_duplex_stream(config, loop):
        deadline = time.monotonic() + 30
        while loop.count < 500 and time.monotonic() < deadline:
            time.sleep(0.02)
        stalled_at = loop.count
        os.kill(pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)
        assert loop.done.wait(60), f"only {loop.count} blocks"
        # Xruns late in the run (a loaded machine) leave no settled stretch
        # to check after them: run on until one comes, for 30 s at most (a
        # busy machine's xruns came too often for four more runs of 400).
        until = time.monotonic() + 30
        while loop.count - loop.after_last_xrun() < 200 and time.monotonic() < until:
            loop.blocks += 200  # first: the callback sets done against it
            loop.done.clear()
            assert loop.done.wait(60), f"only {loop.count} blocks"
    # Skip the start-up (the pulse PCM's first blocks xrun) and the stall itself.
    settled = max([16, *(b + 1 for b in loop.xrun_blocks if b < stalled_at)])
    before = (settled, stalled_at - 20)
    after = (loop.after_last_xrun(), None)
    assert len(loop.offsets(*after)) >= 8, f"xruns at {loop.xrun_blocks}"
    now = assert_one_offset(loop, *after, 256, loopback_race)
    reported = set(loop.round_trip_at[after[0] + 16 :])
    assert reported == {now} or (loopback_race and reported == {now + 256}), (now, reported)
    # On a loaded machine xruns may come just before the stall: then there is
    # no settled offset before it to compare with.
    if len(loop.offsets(*before)) >= 4:
        was = assert_one_offset(loop, *before, 256, loopback_race)
        if was != now:
            assert any(b >= stalled_at for b in loop.xrun_blocks), "a slip went unreported"
    return loop, now


@pytest.mark.xfail(
    reason="known defect (docs/hosts/alsa.md): after a 0.5 s stall of pulseaudio the pulse "
    "plugin's ring positions do not show where the server's streams restarted, so in "
    "about one run in five the re-measured round trip is wrong (e.g. 517 reported, 584 "
    "measured); the glitch itself is flagged every time",
    strict=False,
)
def test_a_stalled_pulseaudio_is_absorbed_or_reported_as_an_xrun(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    device = pcm(dio.host_from_id("alsa"), "pulse")  # type: ignore[arg-type]
    stall_is_absorbed_or_reported(device, pulseaudio_private.process.pid, 0.5)


def test_a_stalled_jackd_keeps_the_offset(jack_alsa: AlsaHost, jackd_256: JackServer) -> None:
    device = pcm(jack_alsa, JACK_PCM)
    _, offset = stall_is_absorbed_or_reported(device, jackd_256.process.pid, 0.3, True)
    # The restarted run can settle one JACK cycle shorter or longer than the
    # first (seen: 512 and 1024 for 768), and says so: what must hold, and
    # stall_is_absorbed_or_reported checked, is that the report is the audio.
    assert offset in (512, 768, 1024)


# -- one direction on the pulse PCM ---------------------------------------------------------


def test_output_stream_on_the_pulse_pcm_reaches_the_sink(
    pulse_alsa: AlsaHost, pulseaudio: PulseServer
) -> None:
    device = pcm(pulse_alsa, "pulse")
    blocks: list[int] = []

    def tone(out: np.ndarray, info: dio.CallbackInfo) -> None:
        out[:] = 0.1
        blocks.append(out.shape[0])

    config = dio.StreamConfig(2, RATE, dio.BufferSize.fixed(512))
    with device.build_output_stream(config, tone) as stream:
        deadline = time.monotonic() + 20
        while len(blocks) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        inputs = pulseaudio.run("pactl", "list", "short", "sink-inputs").stdout
    assert len(blocks) >= 200 and set(blocks) == {512}
    assert inputs.strip(), "no sink input while the stream ran"
    assert stream.latency.output > 0


def test_input_stream_on_the_pulse_pcm_records_frames(pulse_alsa: AlsaHost) -> None:
    device = pcm(pulse_alsa, "pulse")
    got: list[int] = []
    done = threading.Event()

    def record(data: np.ndarray, info: dio.CallbackInfo) -> None:
        got.append(data.shape[0])
        if len(got) >= 200:
            done.set()

    config = dio.StreamConfig(1, RATE, dio.BufferSize.fixed(256))
    # The pulse PCM's first capture takes ~2 s here, and more on a busy
    # machine (beyond the default 5 s once, with two suites running: a
    # TIMED_OUT, said as it should be); this test is about the frames.
    stream = device.build_input_stream(
        config, record, sample_format=dio.SampleFormat.I16, timeout=20
    )
    with stream:
        assert done.wait(30), (len(got), stream.stats, stream.error)
    assert set(got) == {256}
    assert stream.latency.input >= 256


# -- failures ---------------------------------------------------------------------------------


def stops_with_an_error(device: AlsaDevice, kill: Callable[[], None]) -> dio.Error:
    """Run a duplex stream, kill the server behind the PCM, return what was reported."""
    errors = Errors()
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    stream = device.build_duplex_stream(config, lambda i, o, n: None, errors, timeout=5)
    stream.start()
    time.sleep(0.5)
    kill()
    assert errors.arrived.wait(30)
    with pytest.raises(dio.Error):
        stream.wait(30)
    stream.close()
    assert stream.closed
    return errors.items[0]


def test_killing_pulseaudio_mid_stream_stops_the_stream_with_an_error(
    pulseaudio_private: PulseServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulseaudio_private.address)
    device = pcm(dio.host_from_id("alsa"), "pulse")  # type: ignore[arg-type]
    err = stops_with_an_error(device, pulseaudio_private.kill)
    assert err.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE


def test_killing_jackd_mid_stream_stops_the_stream_with_an_error(
    jackd_256: JackServer, alsa_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jackd_256.name)
    device = pcm(dio.host_from_id("alsa"), JACK_PCM)  # type: ignore[arg-type]
    err = stops_with_an_error(device, jackd_256.kill)
    assert err.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE


# -- blocking streams -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_fixture", "pcm_name"), [("jack_alsa", JACK_PCM), ("pulse_alsa", "pulse")]
)
def test_a_blocking_duplex_stream_captures_what_it_wrote_one_round_trip_later(
    request: pytest.FixtureRequest, host_fixture: str, pcm_name: str
) -> None:
    host = request.getfixturevalue(host_fixture)
    config = dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(256))
    stream = pcm(host, pcm_name).build_duplex_stream(config)
    # The pulse PCM's first capture takes ~2 s here and its playback underruns
    # meanwhile (flagged, in callback streams alike): run it warm first.
    warm = 3.0 if pcm_name == "pulse" else 0.0
    found = blocking_round_trips(stream, 1.5, warm=warm)
    stream.close()
    offsets, reported = found.offsets, found.reported
    assert offsets, f"no impulse came back before a flag: {found.flagged[:3]}"
    # The figure settles over the first cycles after a start; after that a
    # change comes with a flag, so the last one stands for every impulse.
    rt = reported[-1]
    if pcm_name == JACK_PCM:
        # jackd -L's loopback race (see the callback tests): a stretch may
        # arrive one JACK cycle early; the report is the later of the two.
        assert set(offsets) <= {rt, rt - 256}, (offsets, rt)
    else:
        assert set(offsets) == {rt}, (offsets, found.flagged[:3])
