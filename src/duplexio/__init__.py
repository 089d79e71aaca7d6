"""duplexio: real-time audio I/O for Python built around the synchronized duplex stream.

One callback gets the input block and fills the output block of the same
device cycle, sample-aligned, on one clock. The callback runs on a Python
worker fed by a native real-time engine, so a slow callback costs a counted,
reported glitch, never a stalled device.

>>> import duplexio as dio
>>> dev = dio.default_host().default_duplex_device()
>>> def cb(inp, out, info):
...     out[:] = inp
>>> with dev.build_duplex_stream(dev.default_duplex_config(), cb) as stream:
...     stream.wait(1.0)

This module only re-exports; see the submodules for the code.
"""

from __future__ import annotations

from duplexio._version import __version__
from duplexio.aggregate import AggregateDevice, aggregate
from duplexio.blocking import ReadStatus, WriteStatus
from duplexio.config import (
    STANDARD_SAMPLE_RATES,
    BufferSize,
    DuplexStreamConfig,
    StreamConfig,
    StreamKind,
    SupportedBufferSize,
    SupportedStreamConfig,
    SupportedStreamConfigRange,
)
from duplexio.devices import (
    Defaults,
    DeviceList,
    default,
    find_device,
    query_devices,
    watch_devices,
)
from duplexio.errors import Error, ErrorKind
from duplexio.files import FileReport, Glitch, play_file, record_file
from duplexio.formats import SampleFormat, from_float, to_float
from duplexio.host import (
    Device,
    DeviceDescription,
    DeviceId,
    Host,
    HostId,
    available_hosts,
    default_host,
    host_from_id,
)
from duplexio.measure import LatencyReport, measure_latency, play, playrec, rec, stop, wait
from duplexio.stats import AggregateStatus, StreamStats
from duplexio.stream import (
    CallbackAbort,
    CallbackStop,
    ProgramStatus,
    ProgramStream,
    Stream,
    set_switch_interval,
)
from duplexio.timing import CallbackInfo, CallbackTimestamp, DuplexCallbackInfo, StreamLatency
from duplexio.watch import DeviceEvent, DeviceEventKind, DeviceWatcher

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
    "DeviceEvent",
    "DeviceEventKind",
    "DeviceId",
    "DeviceList",
    "DeviceWatcher",
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
    "watch_devices",
]
