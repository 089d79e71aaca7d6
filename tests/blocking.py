"""Blocking-stream checks shared by the virtual and the real-host tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import duplexio as dio


def timeline(status: dio.ReadStatus, frames: int) -> np.ndarray:
    """The input position of each frame of a read's data, from its status."""
    positions = status.position + np.arange(frames)
    for offset, lost in status.gaps:
        if offset > 0:
            positions[offset:] += lost
    return positions


def impulse_train(frames: int, every: int, channels: int, first: int = 64) -> np.ndarray:
    """Silence with a 0.5 impulse on every channel each `every` frames from `first`."""
    signal = np.zeros((frames, channels), np.float32)
    signal[first::every] = 0.5
    return signal


@dataclass
class RoundTrips:
    """What :func:`blocking_round_trips` found."""

    offsets: list[int]  # per impulse back before the first flag: arrival - sent
    flagged: list[dio.ReadStatus]  # every flagged read (or write, as a read status)
    reported: list[int]  # stream.latency.round_trip as each of those impulses arrived


#: A slip is flagged some cycles after it happens (ALSA waits 8 to be sure):
#: arrivals this many blocks before the first flag are left out.
FLAG_LAG_BLOCKS = 12


def blocking_round_trips(
    stream: dio.Stream, seconds: float, every: int = 4800, warm: float = 0.0
) -> RoundTrips:
    """Play an impulse train through a blocking duplex stream and read it back:
    for each impulse found, the input position it arrived at minus the output
    position it was written to; and every flagged read or write.

    Without `warm` the train is written before start (it plays from the first
    cycle, frame k at output position k) and fits the ring. With `warm`, the
    stream first runs that long on silence that never lets the output ring
    run dry (a device whose start-up glitches, flagged, settles meanwhile),
    then the train is queued behind it: its frame k plays at the write's
    ``position + k``. Reads are one block each, so a flagged one pins its
    gap; impulses after the first flag, and those of the
    ``FLAG_LAG_BLOCKS`` blocks before it, are left out (the library said
    alignment broke there). `every` must exceed the round trip, so each
    arrival pairs with the impulse sent last before it.
    """
    rate, block = stream.sample_rate, stream.buffer_size
    total = int(seconds * rate)
    assert total <= stream.write_available, "the train must fit the ring"
    signal = impulse_train(total, every, stream.output_channels)
    silence = np.zeros((block, stream.output_channels), np.float32)
    arrived: list[tuple[int, int]] = []  # (input position, round trip reported then)
    flagged: list[dio.ReadStatus] = []
    origin = 0
    if not warm:
        status = stream.write(signal)
        assert status.position == 0 and not status
    else:
        stream.write(np.zeros((int(0.2 * rate), stream.output_channels), np.float32))
    with stream:
        position = 0
        if warm:
            while position < warm * rate:
                data, got = stream.read(block, timeout=10)
                stream.write(silence, timeout=10)  # the ring stays 0.2 s ahead
                position = int(timeline(got, len(data))[-1]) + 1
            status = stream.write(signal, timeout=10)
            origin = status.position
            if status:
                flagged.append(dio.ReadStatus(origin, ((0, status.underflowed),)))
        end = origin + total + stream.latency.round_trip + 4 * block
        while position < end:
            data, got = stream.read(block, timeout=10)
            where = timeline(got, len(data))
            if got:
                if not flagged:
                    horizon = int(where[0]) - FLAG_LAG_BLOCKS * block
                    arrived = [(a, rt) for a, rt in arrived if a < horizon]
                flagged.append(got)
            if not flagged:
                rt = stream.latency.round_trip  # what the stream says as the impulse arrives
                arrived.extend((int(where[i]), rt) for i in np.flatnonzero(data[:, 0] > 0.25))
            position = int(where[-1]) + 1
    sent = origin + np.flatnonzero(signal[:, 0])
    offsets = [a - int(sent[np.searchsorted(sent, a, side="right") - 1]) for a, _ in arrived]
    return RoundTrips(offsets, flagged, [rt for _, rt in arrived])
