"""Two devices made one duplex device: `aggregate()`.

A USB microphone and separate speakers run on two clocks, so neither is a
duplex device and no library in this field gives one callback for both
without a ring that drifts. `aggregate()` does: the output device's clock
is the master; the input device runs on its own device thread into a ring;
each output cycle reads its input from that ring through a band-limited
resampler whose ratio a control loop sets from both devices' timestamps
(``_engine/aggregate.c`` says how). The callback then sees input and output
on one clock, with a round trip that holds to a frame: both devices'
latencies plus the ring's set fill.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np

from duplexio._engine import ffi, lib
from duplexio._validate import checked, optional_seconds
from duplexio.config import StreamKind, SupportedStreamConfigRange
from duplexio.contract import Backend, CData, StreamParams, clib, owned
from duplexio.devices import DeviceLike, find_device
from duplexio.errors import Error, ErrorKind, shown
from duplexio.formats import SampleFormat
from duplexio.host import Device, DeviceDescription, DeviceId
from duplexio.stats import AggregateStatus
from duplexio.timing import StreamLatency, ns_to_frames

__all__ = ["AggregateDevice", "aggregate"]

#: Frames of the resampler's kernel on each side of a position (resample.c).
KERNEL_FRAMES = 40


@checked
def aggregate(
    input_device: DeviceLike, output_device: DeviceLike, *, fill: float | None = None
) -> AggregateDevice:
    """Two devices on two clocks as one duplex device.

    The output device's clock is the master; the engine measures the input
    clock against it and resamples the input so that a duplex stream (with
    a callback, blocking, or ``playrec``) sees both on one clock.
    ``stream.stats.drift_ppm`` is the drift measured, ``stream.stats.locked``
    whether the loop holds, and ``stream.latency.round_trip`` the round trip
    the audio takes (both devices' latencies plus `fill`), constant to a
    frame once locked.

    Parameters
    ----------
    input_device, output_device
        Devices as ``rec()`` and ``play()`` take them (a ``Device``, an id,
        an index into `query_devices()`, part of a name); None for the
        default. Their sample rates must overlap.
    fill
        Seconds of input held between the two device threads beyond the
        input's own latency: the slack for both devices' blocks, the
        resampler's kernel and their threads' jitter. Default: an output
        block, the kernel and two input blocks (at least one and 2 ms). Raise it for devices whose
        blocks come irregularly (a PulseAudio device under load); a fill
        too short shows as flagged blocks (``stream.stats.aggregate.underruns``).

    Returns
    -------
    AggregateDevice
        ``supports_duplex()`` is true; its streams open both devices.

    Raises
    ------
    Error
        ``INVALID_INPUT`` for a bad `fill` or a device given twice;
        ``DEVICE_NOT_AVAILABLE`` for a device that is not there;
        ``UNSUPPORTED_OPERATION`` when the input device cannot capture or
        the output device cannot play.
    """
    seconds = optional_seconds("fill", fill)
    inp = find_device(input_device, direction="input")
    out = find_device(output_device, direction="output")
    if inp.id == out.id and inp.supports_duplex():
        raise Error(
            ErrorKind.INVALID_INPUT,
            f"device '{inp.id}' is already a duplex device on one clock: use it as it is",
        )
    for device, direction in ((inp, "input"), (out, "output")):
        ranges = (
            device.supported_input_configs()
            if direction == "input"
            else device.supported_output_configs()
        )
        if not ranges:
            raise Error(ErrorKind.UNSUPPORTED_OPERATION, f"device '{device.id}' has no {direction}")
    return AggregateDevice(inp, out, seconds)


class AggregateDevice(Device):
    """An input device and an output device as one duplex device (see `aggregate()`).

    Its id is ``"<output host>:aggregate(<input id> -> <output id>)"``; it
    belongs to no host's device list. Streams built on it open both devices.
    Its buffer size and default configuration are the output device's; the
    input device runs at its own default buffer size.
    """

    def __init__(self, input_device: Device, output_device: Device, fill: float | None) -> None:
        self._in = input_device
        self._out = output_device
        self._fill_seconds = fill

    @property
    def input_device(self) -> Device:
        """The device the input comes from."""
        return self._in

    @property
    def output_device(self) -> Device:
        """The device played to, whose clock is the master."""
        return self._out

    @property
    def id(self) -> DeviceId:
        """``"<output host>:aggregate(<input id> -> <output id>)"``."""
        return DeviceId(self._out.id.host, f"aggregate({self._in.id} -> {self._out.id})")

    @property
    def description(self) -> DeviceDescription:
        """Both devices' names, driver ``aggregate``, duplex."""
        return DeviceDescription(
            f"{self._in.name} + {self._out.name}",
            "aggregate",
            "duplex",
            (
                f"input from {self._in.id}, resampled onto the clock of",
                f"output to {self._out.id} (the master)",
            ),
        )

    def _rates(self) -> tuple[int, int] | None:
        """The sample rates both devices take, or None."""
        ins, outs = self._in.supported_input_configs(), self._out.supported_output_configs()
        if not ins or not outs:
            return None
        low = max(min(r.min_sample_rate for r in ins), min(r.min_sample_rate for r in outs))
        high = min(max(r.max_sample_rate for r in ins), max(r.max_sample_rate for r in outs))
        return (low, high) if low <= high else None

    def _ranges(
        self, channels_from: list[SupportedStreamConfigRange]
    ) -> list[SupportedStreamConfigRange]:
        rates = self._rates()
        if rates is None or not channels_from:
            return []
        channels = (min(r.min_channels for r in channels_from),
                    max(r.max_channels for r in channels_from))  # fmt: skip
        # Any format (the stream's engine converts), the output's block sizes.
        buffers = self._out.supported_output_configs()[0].buffer_size
        return [SupportedStreamConfigRange(*channels, *rates, buffers, fmt) for fmt in SampleFormat]

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        """The input device's channels, at the rates both devices take."""
        return self._ranges(self._in.supported_input_configs())

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        """The output device's channels, at the rates both devices take."""
        return self._ranges(self._out.supported_output_configs())

    def _duplex_refusal(self) -> str | None:
        if self._rates() is None:
            return f"'{self._in.id}' and '{self._out.id}' have no sample rate in common"
        return None

    def _preferred_sample_rate(self) -> int | None:
        rates = self._rates()
        for device in (self._out, self._in):
            rate = device._preferred_sample_rate()
            if rate is not None and rates is not None and rates[0] <= rate <= rates[1]:
                return rate
        return None

    def _default_frames(self, sample_rate: int) -> int:
        return self._out._default_frames(sample_rate)

    def _fill_frames(self, rate: int, input_frames: int, output_frames: int) -> int:
        """The fill in frames: the user's, or the least (an output block and the
        kernel) plus two input blocks, or one and 2 ms if that is more: the
        input's thread may wake that late under load before a block is short."""
        least = output_frames + KERNEL_FRAMES + 1
        if self._fill_seconds is None:
            return least + input_frames + max(input_frames, math.ceil(rate / 500))
        frames = round(self._fill_seconds * rate)
        if frames < least:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"fill {shown(self._fill_seconds)} s is {frames} frames at {rate} Hz; it must "
                f"hold an output block and the resampler's kernel: at least {least} frames "
                f"({least / rate:.6f} s)",
            )
        return frames

    def _open_backend(self, engine: CData, params: StreamParams) -> Backend:
        return AggregateBackend(self, engine, params)


class AggregateBackend:
    """Both devices of one aggregate stream, and the ring and loop between them."""

    def __init__(self, device: AggregateDevice, engine: CData, params: StreamParams) -> None:
        rate, channels = params.sample_rate, params.input_channels
        inp, out = device.input_device, device.output_device
        in_frames = inp._default_frames(rate)
        # A fill too short is refused here, before either device opens.
        self._fill = device._fill_frames(rate, in_frames, params.device_frames)
        self._rate = rate
        # The input side: an engine of its own (float32, no worker, no
        # Python) that only feeds the aggregate.
        self._in_block = np.zeros((in_frames, channels), np.float32)
        made = ffi.new("da_engine **")
        context = f"the aggregate '{device.id}'"
        clib.da_engine_new(
            made,
            channels,
            lib.DA_FMT_F32,
            ffi.from_buffer(self._in_block),
            0,
            lib.DA_FMT_F32,
            ffi.NULL,
            in_frames,
            in_frames,
            rate,
            0,
            1.0,
            context=context,
        )
        self._in_engine = owned(made[0], lib.da_engine_free, self._in_block)
        self._input = inp._open_backend(
            self._in_engine,
            StreamParams(
                kind=StreamKind.INPUT,
                device=str(inp.id),
                input_channels=channels,
                output_channels=0,
                input_format=SampleFormat.F32,
                output_format=SampleFormat.F32,
                frames=in_frames,
                device_frames=in_frames,
                sample_rate=rate,
                pipelined=False,
                deadline=1.0,
                timeout=params.timeout,
                realtime=False,
            ),
        )
        try:
            agg = ffi.new("da_agg **")
            clib.da_agg_new(
                agg,
                channels,
                rate,
                in_frames,
                params.device_frames,
                self._fill,
                context=context,
            )
            self._agg = owned(agg[0], lib.da_agg_free)
            clib.da_engine_feed(self._in_engine, self._agg, engine, context=context)
            clib.da_engine_pull(engine, self._agg, context=context)
            self._output = out._open_backend(
                engine,
                dataclasses.replace(
                    params, kind=StreamKind.OUTPUT, device=str(out.id), input_channels=0
                ),
            )
        except BaseException:
            self._input.close()
            raise
        self._timeout = params.timeout
        self._input_id, self._output_id = str(inp.id), str(out.id)
        self._lock = threading.Lock()
        self._closed = False
        self._last_latency = self._latency_now()
        self._last_status = self._status_now()

    def _latency_now(self) -> StreamLatency:
        # The input's latency as its own timestamps give it once it runs (a
        # PulseAudio monitor's is known only then), else as its host says.
        measured = int(self._status_c().input_latency_ns)
        own = ns_to_frames(measured, self._rate) if measured > 0 else self._input.latency.input
        return StreamLatency(own + self._fill, self._output.latency.output)

    def fault(self, now_ns: int, running_since_ns: int, timeout_ns: float) -> Error | None:
        """What ends the stream that the output's own cycles do not show, asked
        by its supervisor while it runs: the input delivered no block for the
        stream's timeout (it had played flagged zeros forever), or the two
        clocks are further apart than the loop follows (it had run unlocked,
        silently)."""
        s = self._status_c()
        last = max(int(s.input_cycle_ns), running_since_ns)
        if now_ns - last > timeout_ns:
            return Error(
                ErrorKind.TIMED_OUT,
                f"the input device '{self._input_id}' delivered no block for "
                f"{(now_ns - last) / 1e9:.2f} s (timeout {timeout_ns / 1e9:g} s); "
                "the stream stopped",
            )
        if s.clocks_settled and abs(s.drift_ppm) > s.max_drift_ppm:
            return Error(
                ErrorKind.UNSUPPORTED_CONFIG,
                f"the clocks of '{self._input_id}' and '{self._output_id}' differ by "
                f"{s.drift_ppm:+.0f} ppm; an aggregate follows up to +-{s.max_drift_ppm:.0f} ppm "
                "(do both run at the same nominal rate?); the stream stopped",
            )
        return None

    def _status_c(self) -> CData:
        s = ffi.new("da_agg_status *")
        lib.da_agg_status_get(self._agg, s)
        return s

    def _status_now(self) -> AggregateStatus:
        s = self._status_c()
        first = int(s.first_lock_ns)
        return AggregateStatus(
            drift_ppm=float(s.drift_ppm),
            error_frames=float(s.error_frames),
            locked=bool(s.locked),
            lock_seconds=first / 1e9 if first >= 0 else None,
            locks=int(s.locks),
            jumps=int(s.jumps),
            underruns=int(s.underruns),
            overruns=int(s.overruns),
        )

    @property
    def latency(self) -> StreamLatency:
        """Capture to callback: the input's latency plus the fill; callback to
        playback: the output's. The input's latency is what its timestamps
        say once it runs (before: what its host says)."""
        with self._lock:
            if not self._closed:
                self._last_latency = self._latency_now()
            return self._last_latency

    def moved_to(self) -> str | None:
        """None: an aggregate runs on the two devices it was made of."""
        return None

    def aggregate_status(self) -> AggregateStatus:
        """The clock loop's figures now (the last ones once closed)."""
        with self._lock:
            if not self._closed:
                self._last_status = self._status_now()
            return self._last_status

    def start(self) -> None:
        """Start the input, wait for its first block (its latency is then known:
        the first callback carries the final round trip), then the output."""
        lib.da_engine_set_state(self._in_engine, lib.DA_STATE_RUNNING, 0)
        self._input.start()
        deadline = time.monotonic() + self._timeout
        while int(self._status_c().input_latency_ns) <= 0 and time.monotonic() < deadline:
            time.sleep(0.001)  # a few input cycles at most; a stalled input times out below
        try:
            self._output.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Halt both devices; the next start sets the read position afresh."""
        self._output.stop()
        lib.da_engine_set_state(self._in_engine, lib.DA_STATE_STOPPED, 0)
        self._input.stop()

    def close(self) -> None:
        """Close both devices, then free what their threads shared."""
        with self._lock:
            if self._closed:
                return
            self._last_latency = self._latency_now()
            self._last_status = self._status_now()
            self._closed = True
        try:
            self._output.close()
        finally:
            self._input.close()
