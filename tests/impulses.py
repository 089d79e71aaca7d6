"""A duplex callback that sends impulses and finds them again, for host tests.

Positions are frames on the input timeline given by the stream's own
timestamps, so a round trip found here is in the device's frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

import duplexio as dio
from duplexio.timing import ns_to_frames

RATE = 48000


class ImpulseLoop:
    """Sends an impulse every `every` blocks, records where impulses come back.

    It runs `blocks` blocks from the moment it is armed (at once, unless
    :func:`run_loop` waits for a connection first), so a slow connection on a
    loaded machine does not cost impulses.
    """

    def __init__(
        self, blocks: int, every: int = 10, rate: int = RATE, *, clean: int = 0, at_most: int = 0
    ) -> None:
        self.blocks = blocks
        # Run on past `blocks` (to `at_most` blocks) until `clean` impulses came
        # back unflagged: on a loaded machine flagged ones are left out.
        self.clean = clean
        self.at_most = max(at_most, blocks)
        self.every = every
        self.rate = rate
        self.count = 0
        self.sent: list[int] = []  # absolute frame positions on the input timeline
        self.sent_blocks: list[int] = []  # the block each impulse was sent in
        self.back: list[int] = []
        self.reported: set[int] = set()
        self.callback_steps: list[int] = []
        self.sizes: set[int] = set()
        self.xrun_blocks: list[int] = []
        self.last_callback: int | None = None
        self.done = threading.Event()
        self.origin: int | None = None
        self.armed = threading.Event()  # impulses are sent once the loop exists
        self.armed.set()
        self.armed_at = 0  # the block count when it was armed

    def __call__(self, inp: np.ndarray, out: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        frames = inp.shape[0]
        self.sizes.add(frames)
        t_in = info.input.timestamp.device
        if self.origin is None:
            self.origin = t_in
        pos = ns_to_frames(t_in - self.origin, self.rate)
        self.reported.add(ns_to_frames(info.round_trip_ns, self.rate))
        if info.xrun:
            self.xrun_blocks.append(self.count)
        cb = info.input.timestamp.callback
        if self.last_callback is not None:
            self.callback_steps.append(ns_to_frames(cb - self.last_callback, self.rate))
        self.last_callback = cb
        for m in np.flatnonzero(np.abs(inp[:, 0]) > 0.25):
            self.back.append(pos + int(m))
        if (
            self.armed.is_set()
            and self.count % self.every == 0
            and self.count + self.every < self.armed_at + self.at_most
        ):
            out[5, :] = 0.5
            self.sent.append(pos + 5)
            self.sent_blocks.append(self.count)
        self.count += 1
        ran = self.count - self.armed_at
        if self.armed.is_set() and ran >= self.blocks and self._enough(ran):
            self.done.set()

    def _enough(self, ran: int) -> bool:
        if ran >= self.at_most or not self.clean:
            return True
        # Asked every 100 blocks: round_trips() walks every impulse.
        return ran % 100 == 0 and len(self.round_trips()) >= self.clean

    def arm(self) -> None:
        """Start sending impulses now, for `blocks` more blocks."""
        self.armed_at = self.count
        self.armed.set()

    def round_trips(self, since: int = 0) -> list[int]:
        """For each impulse that came back before the next was sent, the frames it took
        (only those sent at block `since` or later).

        An impulse lost to an xrun (its block played as silence) is left out,
        rather than paired with the next one's return; so is one whose flight
        the library flagged a glitch in (from its block to two blocks past its
        return: a glitch is flagged on the block after it). Under load jackd
        can hold its loopback copy a cycle across such an xrun (CI: 512 for
        256 with xruns flagged around it); what must hold is that every
        impulse not so flagged is exact.
        """
        found = []
        bounds = [*self.sent[1:], None]
        flagged = set(self.xrun_blocks)
        block_frames = max(self.sizes) if self.sizes else 1
        for s, block, next_sent in zip(self.sent, self.sent_blocks, bounds, strict=True):
            if block < since:
                continue
            back = [b for b in self.back if b > s and (next_sent is None or b <= next_sent)]
            if not back:
                continue
            last = block + -(-(back[0] - s) // block_frames) + 2
            if not flagged.intersection(range(block, last + 1)):
                found.append(back[0] - s)
        return found

    def unflagged_losses(self, round_trip: int) -> list[int]:
        """Blocks whose impulse never came back though no flag was raised from
        its block to two blocks past where it was due: audio lost with
        nothing said (impulses still in flight at the end are left out)."""
        block_frames = max(self.sizes) if self.sizes else 1
        due_blocks = -(-round_trip // block_frames)
        flagged = set(self.xrun_blocks)
        bounds = [*self.sent[1:], None]
        lost = []
        for s, block, next_sent in zip(self.sent, self.sent_blocks, bounds, strict=True):
            if block + due_blocks + 2 >= self.count:
                continue
            if any(b > s and (next_sent is None or b <= next_sent) for b in self.back):
                continue
            if not flagged.intersection(range(block, block + due_blocks + 3)):
                lost.append(block)
        return lost

    def assert_discontinuities_flagged(self, frames: int) -> None:
        """Callback timestamps step by whole periods, never 0 or back, and every
        step of more than one period is flagged on the block it reaches (DESIGN.md §2)."""
        for block, step in enumerate(self.callback_steps, 1):
            assert step > 0 and step % frames == 0, f"block {block} stepped {step} frames"
            if step != frames:
                assert block in self.xrun_blocks, f"block {block} stepped {step}, unflagged"


def deadline_log(stream: dio.Stream) -> tuple[list[int], list[int]]:
    """The engine's record of each block's deadline anchor and device wake-up (ns)."""
    from duplexio._engine import ffi, lib

    anchors, wakeups = ffi.new("int64_t[]", 4096), ffi.new("int64_t[]", 4096)
    n = lib.da_engine_timing_log(stream._core.engine, anchors, wakeups, 4096)
    return list(anchors[0:n]), list(wakeups[0:n])


def assert_deadlines_from_wakeups(stream: dio.Stream, blocks: int) -> None:
    """The deadline of (nearly) every block ran from the device thread's own
    wake-up or later, never from an earlier estimate."""
    anchors, wakeups = deadline_log(stream)
    assert len(anchors) >= min(blocks, 4096) * 0.95, len(anchors)
    assert all(a >= w for a, w in zip(anchors, wakeups, strict=True))


def run_loop(
    stream: dio.Stream, loop: ImpulseLoop, connect: Callable[[], None] | None = None
) -> None:
    """Run the stream until the loop has seen its blocks; `connect` makes the
    loop once the stream runs (no impulse is sent before)."""
    if connect is not None:
        loop.armed.clear()
    with stream:
        if connect is not None:
            connect()
            loop.arm()
        assert loop.done.wait(60), f"only {loop.count} of {loop.blocks} blocks"
