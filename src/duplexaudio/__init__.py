"""duplexaudio: real-time audio I/O for Python built around the synchronized duplex stream.

One callback gets the input block and fills the output block of the same
device cycle, sample-aligned, on one clock. The callback runs on a Python
worker fed by a native real-time engine, so a slow callback costs a counted,
reported glitch, never a stalled device.

>>> import duplexaudio as da
>>> dev = da.default_host().default_duplex_device()
>>> def cb(inp, out, info):
...     out[:] = inp
>>> with dev.build_duplex_stream(dev.default_duplex_config(), cb) as stream:
...     stream.wait(1.0)

This module only re-exports; see the submodules for the code.
"""

from __future__ import annotations

from duplexaudio.aggregate import AggregateDevice, aggregate
from duplexaudio.blocking import ReadStatus, WriteStatus
from duplexaudio.config import (
    STANDARD_SAMPLE_RATES,
    BufferSize,
    DuplexStreamConfig,
    StreamConfig,
    SupportedBufferSize,
    SupportedStreamConfig,
    SupportedStreamConfigRange,
)
from duplexaudio.devices import Defaults, DeviceList, default, find_device, query_devices
from duplexaudio.errors import Error, ErrorKind
from duplexaudio.files import FileReport, Glitch, play_file, record_file
from duplexaudio.formats import SampleFormat, from_float, to_float
from duplexaudio.host import (
    Device,
    DeviceDescription,
    DeviceId,
    Host,
    HostId,
    available_hosts,
    default_host,
    host_from_id,
)
from duplexaudio.measure import LatencyReport, measure_latency, play, playrec, rec, stop, wait
from duplexaudio.stream import (
    AggregateStatus,
    CallbackAbort,
    CallbackStop,
    ProgramStatus,
    ProgramStream,
    Stream,
    StreamKind,
    StreamStats,
    set_switch_interval,
)
from duplexaudio.timing import CallbackInfo, CallbackTimestamp, DuplexCallbackInfo, StreamLatency

__version__ = "0.1.0"

__all__ = [
    "STANDARD_SAMPLE_RATES",
    "AggregateDevice",
    "AggregateStatus",
    "BufferSize",
    "CallbackAbort",
    "CallbackInfo",
    "CallbackStop",
    "CallbackTimestamp",
    "Defaults",
    "Device",
    "DeviceDescription",
    "DeviceId",
    "DeviceList",
    "DuplexCallbackInfo",
    "DuplexStreamConfig",
    "Error",
    "ErrorKind",
    "FileReport",
    "Glitch",
    "Host",
    "HostId",
    "LatencyReport",
    "ProgramStatus",
    "ProgramStream",
    "ReadStatus",
    "SampleFormat",
    "Stream",
    "StreamConfig",
    "StreamKind",
    "StreamLatency",
    "StreamStats",
    "SupportedBufferSize",
    "SupportedStreamConfig",
    "SupportedStreamConfigRange",
    "WriteStatus",
    "__version__",
    "aggregate",
    "available_hosts",
    "default",
    "default_host",
    "find_device",
    "from_float",
    "host_from_id",
    "measure_latency",
    "play",
    "play_file",
    "playrec",
    "query_devices",
    "rec",
    "record_file",
    "set_switch_interval",
    "stop",
    "to_float",
    "wait",
]
