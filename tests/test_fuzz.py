"""Every public entry point, driven with generated arguments: a result or an Error.

Each test takes one group of the public API (module functions, config and id
constructors, a virtual device's and host's methods, a stream's methods),
fills every parameter from :func:`hostile` (wrong types, numpy scalars, NaN,
infinities, huge and negative numbers, bool, str, bytes, None, arrays of odd
dtypes and shapes, and sometimes a value that works) and asserts that the
call returns or raises :class:`duplexaudio.Error`, nothing else. Streams it
manages to build are closed; afterwards no thread and no fd of ours is left.

The CI profile runs a few dozen examples per group (well within a minute in
all); ``DUPLEXAUDIO_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` runs the
long one.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import duplexaudio as da
import duplexaudio.stream as stream_module
from duplexaudio.hosts.virtual import VirtualDevice, VirtualHost

EXAMPLES = int(os.environ.get("DUPLEXAUDIO_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 128, 256, 48000, -1, 2**31, 2**32, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-9, 1e300, float("nan"), float("inf"), -0.0]),
)
_numpy_scalars = st.one_of(
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
    st.builds(np.uint8, st.integers(0, 255)),
    st.builds(np.int32, st.integers(-(2**31), 2**31 - 1)),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.float64, st.floats()),
    st.just(np.bool_(True)),
)
_arrays = st.one_of(
    st.builds(lambda n: np.zeros(n, np.float32), st.integers(0, 300)),
    st.builds(lambda n, c: np.zeros((n, c), np.float32), st.integers(0, 300), st.integers(0, 3)),
    st.sampled_from(
        [
            np.zeros((64, 2), np.int16),
            np.ones(16, np.complex64),
            np.array(["a", "b"]),
            np.zeros((2, 2, 2), np.float64),
            np.array([np.nan, np.inf], np.float32),
            np.zeros(8, object),
            np.zeros(4, bool),
        ]
    ),
)
_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "virtual",
            "virtual:loopback",
            "jack",
            "nohost:x",
            "F32",
            "i16",
            "int16",
            "",
            ":",
            "a\x00b",
        ]
    ),
)


def hostile() -> st.SearchStrategy[Any]:
    """Any argument a caller might pass by mistake (and a few that work)."""
    return st.one_of(
        st.none(),
        st.booleans(),
        _numbers,
        _numpy_scalars,
        _text,
        st.binary(max_size=8),
        _arrays,
        st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2)), max_size=4).map(tuple),
        st.lists(st.integers(0, 10), max_size=3),
        st.sampled_from(list(da.SampleFormat) + list(da.HostId)),
        st.just(lambda *a: None),
        st.builds(object),
    )


def fill(data: st.DataObject, fn: Callable[..., Any]) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for every required parameter of ``fn`` and some of its optional ones
    (by keyword, but for positional-only ones)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    skipped = False
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is p.empty
        if not required and not data.draw(st.booleans(), label=f"pass {name}"):
            skipped = True
            continue
        value = data.draw(hostile(), label=name)
        if p.kind is not p.POSITIONAL_ONLY:
            kwargs[name] = value
        elif not skipped:
            args.append(value)
    return args, kwargs


def outcome(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call: a result, or None after a :class:`da.Error`; anything else fails the test."""
    try:
        result = fn(*args, **kwargs)
    except da.Error:
        return None
    except BaseException as exc:
        pytest.fail(f"{fn.__qualname__}(*{args!r}, **{kwargs!r}) raised {exc!r}, not da.Error")
    if isinstance(result, da.Stream):
        result.close()
    return result


def ours() -> int:
    return sum(t.name.startswith("duplexaudio") for t in threading.enumerate())


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    threads, fds = ours(), len(os.listdir("/proc/self/fd"))
    policy = stream_module._switch_policy
    yield
    da.set_switch_interval(policy)
    deadline = time.monotonic() + 5
    while ours() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours() <= threads, [t.name for t in threading.enumerate()]
    assert len(os.listdir("/proc/self/fd")) <= fds + 2  # the odd lazily opened library file


MODULE_FUNCTIONS: list[Callable[..., Any]] = [
    da.from_float, da.to_float, da.set_switch_interval, da.host_from_id, da.BufferSize.fixed,
    da.DeviceId.parse, da.SampleFormat.from_dtype, da.SampleFormat.parse,
]  # fmt: skip
CONSTRUCTORS: list[Callable[..., Any]] = [
    da.StreamConfig, da.DuplexStreamConfig, da.DeviceId, da.SupportedBufferSize,
    da.SupportedStreamConfigRange,
]  # fmt: skip


@pytest.mark.parametrize("fn", MODULE_FUNCTIONS + CONSTRUCTORS, ids=lambda f: f.__qualname__)
@FUZZ
@given(data=st.data())
def test_module_functions_and_constructors(fn: Callable[..., Any], data: st.DataObject) -> None:
    outcome(fn, *fill(data, fn))


@pytest.mark.parametrize("name", ["play", "rec", "playrec", "measure_latency"])
@FUZZ
@given(data=st.data())
def test_one_call_functions(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    fn = getattr(da, name)
    args, kwargs = fill(data, fn)
    # Mostly on the test's own loopback, so that what works finishes at once.
    if data.draw(st.booleans(), label="on the loopback"):
        kwargs["device"] = loopback
    outcome(fn, args, kwargs)


DEVICE_METHODS = [
    "build_duplex_stream", "build_input_stream", "build_output_stream", "build_play_stream",
    "build_rec_stream", "build_playrec_stream", "supports_input", "supports_output",
    "supports_duplex", "default_duplex_config", "stall", "set_signal", "change_buffer_size",
    "change_sample_rate",
]  # fmt: skip


@pytest.mark.parametrize("name", DEVICE_METHODS)
@FUZZ
@given(data=st.data())
def test_device_methods(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    method = getattr(loopback, name)
    outcome(method, *fill(data, method))
    loopback.resume()


@pytest.mark.parametrize("name", ["add_loopback", "add_output", "add_input", "device_by_id"])
@FUZZ
@given(data=st.data())
def test_virtual_host_methods(virtual_host: VirtualHost, name: str, data: st.DataObject) -> None:
    method = getattr(virtual_host, name)
    args, kwargs = fill(data, method)
    if name.startswith("add_"):
        kwargs["name"] = f"fuzz-{data.draw(st.integers(0, 10**9))}"
        options = data.draw(st.dictionaries(
            st.sampled_from(["channels", "sample_rates", "buffer_sizes", "default_sample_rate",
                             "default_buffer_size", "latency", "signal", "loop", "description",
                             "lantency"]),
            hostile(), max_size=3))  # fmt: skip
        kwargs.update(options)
    device = outcome(method, args, kwargs)
    if isinstance(device, VirtualDevice) and name.startswith("add_"):
        virtual_host.remove_device(device.id)
    # Whatever happened, the host still enumerates.
    assert all(str(d.id) for d in virtual_host.duplex_devices())


@pytest.mark.parametrize("name", ["wait", "stop", "start", "pause", "close"])
@FUZZ
@given(data=st.data())
def test_stream_methods(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    stream = loopback.build_duplex_stream(loopback.default_duplex_config(), lambda i, o, n: None)
    try:
        method = getattr(stream, name)
        outcome(method, *fill(data, method))
    finally:
        stream.close()
