"""What a stream counts and reports: `StreamStats`, and an aggregate's `AggregateStatus`.

Plain, immutable values: the stream (``duplexio.stream``) fills them from
the engine's counters, an aggregate's backend (``duplexio.aggregate``) from
its clock loop; users read them from ``stream.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AggregateStatus", "StreamStats"]


@dataclass(frozen=True)
class AggregateStatus:
    """The clock loop of a stream on an `aggregate()` device.

    Attributes
    ----------
    drift_ppm
        How much faster the input device's clock runs than the output's
        (ppm; negative: slower), as measured from both devices' timestamps.
    error_frames
        Where the resampler read the input at the last cycle, against
        where it should have (frames): within one once locked.
    locked
        Within a frame of the target for a quarter second (and the clocks'
        loops settled); a lock lost shows here and in `locks`.
    lock_seconds
        From the first cycle to the first lock; None before it.
    locks
        Times the lock was gained (more than 1: it was lost and regained).
    jumps
        Times the read position was set afresh: at the start, and after an
        input gap, a stall or a stop. Each jump is flagged on its block.
    underruns
        Output cycles that found too little input (the fill too short for
        the devices' jitter, or the input stalled): zeros filled in, flagged.
    overruns
        Input blocks dropped because the ring was full (the output not
        reading).
    """

    drift_ppm: float
    error_frames: float
    locked: bool
    lock_seconds: float | None
    locks: int
    jumps: int
    underruns: int
    overruns: int


@dataclass(frozen=True)
class StreamStats:
    """Counters of a stream since it was built.

    Attributes
    ----------
    cycles
        Device cycles while the stream ran.
    callbacks
        Blocks whose callback finished before the deadline and were played.
    late_blocks
        Blocks whose callback missed the deadline; their output was played as
        silence and the next callback saw ``info.xrun``.
    skipped_blocks
        Cycles not handed to the callback because it was still busy with an
        earlier one (their input is lost, their output silent).
    xruns
        Glitches reported by the device or server itself (each flagged on
        the block after it).
    lost_cycles
        Whole device cycles those glitches lost, where the host can count
        them (a jump of its frame counter, a clock that woke late).
    callback_mean_ns, callback_max_ns
        The worker's turn per block (ns), mean and worst: from its wake-up to
        its result, so the wait for the GIL and the dispatch are included, not
        only your callback's own time.
    handoff_mean_ns, handoff_max_ns
        Device thread's wait from handing a block over to getting its result
        (ns): the whole round through the worker, GIL included. Only blocks
        that made the deadline count (a late one is in ``late_blocks``).
    load, max_load
        ``callback_mean_ns`` and ``callback_max_ns`` as a fraction of the period.
    realtime
        The device thread runs with real-time scheduling.
    worker_realtime
        The Python worker that runs the callback runs with real-time
        scheduling (``SCHED_FIFO`` below the device thread); False when the
        stream was built with ``realtime=False``, when the system refused it
        (a ``REALTIME_DENIED`` warning on the ``duplexio`` logger said so
        once), and for callback-free streams, which have no worker.
    events_dropped
        Events lost because nobody read them (should stay 0).
    overflows, overflow_frames
        A blocking stream's input ring was full: runs of blocks dropped, and
        their frames (each met by a read as a gap).
    underflows, underflow_frames
        A blocking stream's output ring ran short: blocks filled with
        silence, and the frames of silence (each reported by the next write).
    aggregate
        On an `aggregate()` device, its clock loop's figures; None elsewhere.
        ``drift_ppm`` and ``locked`` are its two most asked for.
    """

    cycles: int
    callbacks: int
    late_blocks: int
    skipped_blocks: int
    xruns: int
    lost_cycles: int
    callback_mean_ns: float
    callback_max_ns: int
    handoff_mean_ns: float
    handoff_max_ns: int
    load: float
    max_load: float
    realtime: bool
    worker_realtime: bool
    events_dropped: int
    overflows: int = 0
    overflow_frames: int = 0
    underflows: int = 0
    underflow_frames: int = 0
    aggregate: AggregateStatus | None = None

    @property
    def drift_ppm(self) -> float | None:
        """An aggregate's measured drift (`AggregateStatus.drift_ppm`); None elsewhere."""
        return self.aggregate.drift_ppm if self.aggregate else None

    @property
    def locked(self) -> bool | None:
        """Whether an aggregate's clock loop holds (`AggregateStatus.locked`); None elsewhere."""
        return self.aggregate.locked if self.aggregate else None
