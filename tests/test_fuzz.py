"""Every public entry point, driven with generated arguments: a result or an Error.

Each test takes one group of the public API (module functions, config and id
constructors, a virtual device's and host's methods, a stream's methods),
fills every parameter from :func:`hostile` (wrong types, numpy scalars, NaN,
infinities, huge and negative numbers, bool, str, bytes, None, arrays of odd
dtypes and shapes, and sometimes a value that works) and asserts that the
call returns or raises :class:`duplexio.Error`, nothing else. Streams it
manages to build are closed; afterwards no thread and no fd of ours is left.

The CI profile runs a few dozen examples per group (well within a minute in
all); ``DUPLEXIO_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` runs the
long one.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import duplexio as dio
import duplexio.stream as stream_module
from duplexio.hosts.virtual import VirtualDevice, VirtualHost
from tests.conftest import SERVER_HOSTS, open_fds, session_server_device

EXAMPLES = int(os.environ.get("DUPLEXIO_FUZZ_EXAMPLES", "40"))
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
        st.sampled_from(list(dio.SampleFormat) + list(dio.HostId)),
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
    if kwargs and data.draw(st.integers(0, 9), label="misspell one") == 0:
        name = data.draw(st.sampled_from(sorted(kwargs)), label="misspelt")
        kwargs[name + "s"] = kwargs.pop(name)  # the commonest typo
    return args, kwargs


def outcome(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call: a result, or None after a :class:`dio.Error`; anything else fails the test."""
    try:
        result = fn(*args, **kwargs)
    except dio.Error:
        return None
    except BaseException as exc:
        pytest.fail(f"{fn.__qualname__}(*{args!r}, **{kwargs!r}) raised {exc!r}, not dio.Error")
    if isinstance(result, dio.Stream):
        result.close()
    return result


def ours() -> int:
    return sum(t.name.startswith("duplexio") for t in threading.enumerate())


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    threads, before = ours(), open_fds()
    policy = stream_module._switch_policy
    yield
    dio.set_switch_interval(policy)
    deadline = time.monotonic() + 5
    while ours() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours() <= threads, [t.name for t in threading.enumerate()]
    after = open_fds()
    new = {fd: what for fd, what in after.items() if before.get(fd) != what}
    assert len(after) <= len(before) + 2, new  # the odd lazily opened library file


MODULE_FUNCTIONS: list[Callable[..., Any]] = [
    dio.from_float, dio.to_float, dio.set_switch_interval, dio.host_from_id, dio.BufferSize.fixed,
    dio.DeviceId.parse, dio.SampleFormat.from_dtype, dio.SampleFormat.parse, dio.query_devices,
    dio.wait, dio.stop, dio.find_device, dio.aggregate,
]  # fmt: skip
CONSTRUCTORS: list[Callable[..., Any]] = [
    dio.StreamConfig, dio.DuplexStreamConfig, dio.DeviceId, dio.SupportedBufferSize,
    dio.SupportedStreamConfigRange,
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
    fn = getattr(dio, name)
    args, kwargs = fill(data, fn)
    # Mostly on the test's own loopback, so that what works finishes at once.
    if data.draw(st.booleans(), label="on the loopback"):
        kwargs["device"] = loopback
    # A valid take can be long (rec(57225104) is twenty minutes): dio.stop()
    # from another thread ends it, as a user would, and the test goes on; a
    # long measurement ends at its own timeout, 2 s unless one was drawn.
    if name == "measure_latency":
        kwargs.setdefault("timeout", 2.0)
    stopper = threading.Timer(0.5, dio.stop)
    stopper.start()
    try:
        outcome(fn, args, kwargs)
    finally:
        stopper.cancel()
        stopper.join()


@pytest.mark.parametrize("name", ["play_file", "record_file"])
@FUZZ
@given(data=st.data())
def test_file_functions(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    """Hostile arguments but for the file (a private one, a real WAV to play) and
    a stop that comes after 0.2 s, so a take of ten hours or of no end ends."""
    fn = getattr(dio, name)
    args, kwargs = fill(data, fn)
    folder = Path(tempfile.mkdtemp(prefix="dio-fuzz-"))
    try:
        wav = folder / "x.wav"
        sf.write(wav, np.zeros((4800, 2), np.float32), 48000)
        kwargs["path"] = wav if name == "play_file" else folder / "take.wav"
        if data.draw(st.booleans(), label="on the loopback"):
            kwargs["device"] = loopback
        if kwargs.get("stop") is None:  # else a hostile one, refused before anything opens
            kwargs["stop"] = threading.Event()
            threading.Timer(0.2, kwargs["stop"].set).start()
        outcome(fn, args, kwargs)
    finally:
        shutil.rmtree(folder)


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


@pytest.mark.parametrize("name", DEVICE_METHODS[:10])
@FUZZ
@given(data=st.data())
def test_aggregate_device_methods(
    virtual_host: VirtualHost, name: str, data: st.DataObject
) -> None:
    """The same on an aggregate of a cable's two ends: what opens two devices
    refuses bad values as one does, and leaves nothing behind."""
    out, inp = virtual_host.add_cable(f"fuzz-cable-{data.draw(st.integers(0, 10**9))}")
    try:
        device = dio.aggregate(inp, out)
        method = getattr(device, name)
        outcome(method, *fill(data, method))
    finally:
        virtual_host.remove_device(out.id)
        virtual_host.remove_device(inp.id)


@pytest.mark.parametrize(
    "name", ["add_loopback", "add_output", "add_input", "add_cable", "device_by_id"]
)
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
                             "lantency", "clock_ppm", "wander_ppm", "wander_seconds", "delay"]),
            hostile(), max_size=3))  # fmt: skip
        kwargs.update(options)
    made = outcome(method, args, kwargs)
    for device in made if isinstance(made, tuple) else (made,):
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


@pytest.mark.parametrize("name", ["read", "write", "blocks", "start", "stop"])
@FUZZ
@given(data=st.data())
def test_blocking_stream_methods(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    config = loopback.default_duplex_config()
    stream = loopback.build_duplex_stream(config, ring_seconds=0.1)
    try:
        if data.draw(st.booleans(), label="running"):
            stream.start()
        method = getattr(stream, name)
        args, kwargs = fill(data, method)
        if name in ("read", "blocks") and "timeout" not in kwargs:
            kwargs["timeout"] = 0.5  # a valid wait, kept short
        if name == "write" and kwargs.get("timeout") is None:
            kwargs["timeout"] = 0.5
        result = outcome(method, args, kwargs)
        if result is not None and name == "blocks":
            outcome(lambda: list(itertools.islice(result, 2)), [], {})  # ends or errs
    finally:
        stream.close()


@pytest.mark.parametrize("name", [*dio.Defaults._FIELDS, "samplerate"])
@FUZZ
@given(data=st.data())
def test_defaults(loopback: VirtualDevice, name: str, data: st.DataObject) -> None:
    value = data.draw(hostile(), label=name)
    try:
        outcome(setattr, [dio.default, name, value], {})
        # Whatever was accepted, a call that uses the defaults returns or errs.
        outcome(dio.rec, [64], {"device": loopback})
    finally:
        dio.default.reset()


# -- the same against real servers ------------------------------------------------------

SERVER_METHODS = [
    "build_duplex_stream", "build_input_stream", "build_output_stream", "build_play_stream",
    "build_rec_stream", "build_playrec_stream", "supports_duplex", "default_duplex_config",
    "default_input_config", "default_output_config",
]  # fmt: skip


@pytest.fixture(params=SERVER_HOSTS)
def server_device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dio.Device:
    """A device of each real host: jackd's loopback client, PulseAudio's null sink
    monitor, ALSA's null PCM, PipeWire's null sink, PortAudio's JACK client."""
    if request.param != "alsa":
        found = session_server_device(request, monkeypatch, request.param)
    else:
        found = dio.host_from_id("alsa").device_by_id("alsa:null")
    assert found is not None, request.param
    return found


@FUZZ
@given(data=st.data())
def test_server_device_methods(server_device: dio.Device, data: st.DataObject) -> None:
    # One method per example: opening real clients is slower than the virtual host.
    method = getattr(server_device, data.draw(st.sampled_from(SERVER_METHODS), label="method"))
    args, kwargs = fill(data, method)
    params = inspect.signature(method).parameters
    if "config" in params and data.draw(st.booleans(), label="one bad value at most"):
        # A call that opens the device, with at most one optional argument
        # hostile: what a real server makes of each value on its own.
        keep = data.draw(st.sampled_from(sorted(kwargs) or ["config"]), label="kept")
        kwargs = {
            k: v
            for k, v in kwargs.items()
            if k == keep or (k in params and params[k].default is params[k].empty)
        }
        kwargs["config"] = working_config(server_device, method.__name__)
        if "callback" in params and keep != "callback":
            kwargs["callback"] = lambda *a: None
        if "data" in params and keep != "data":
            kwargs["data"] = np.zeros((256, 2), np.float32)
        if "frames" in params and keep != "frames":
            kwargs["frames"] = 256
    outcome(method, args, kwargs)


def working_config(device: dio.Device, method: str) -> Any:
    """The device's default config of the kind ``method`` takes (None if it has none)."""
    try:
        if "duplex" in method or "playrec" in method:
            return device.default_duplex_config()
        if "input" in method or "rec" in method:
            return device.default_input_config().config()
        return device.default_output_config().config()
    except dio.Error:
        return None  # the device lacks that direction: the build refuses


# -- the command line -------------------------------------------------------------------

#: Values for each option: mostly wrong, some right but short (a valid request
#: for an hour of audio is not a bug, only slow).
CLI_VALUES: dict[str, list[str]] = {
    "seconds": ["0.05", "0", "-1", "nan", "inf", "1e400", "x", ""],
    "rate": ["48000", "44100", "0", "-48000", "4.8e4", "99999999999999999999", "x"],
    "buffer_size": ["64", "256", "0", "3", "2000000", "x"],
    "channels": ["1", "2", "0", "100000", "x"],
    "impulses": ["2", "0", "-1", "x"],
    "interval": ["0.01", "0", "nan", "-1"],
    "device": [
        "virtual:loopback",
        "virtual:nope",
        "virtual",
        "nohost:x",
        "jack:",
        ":",
        "\x07",
        "0",
        "2",
        "99999999999999999999999",
        "Virtual",
    ],
    "host": ["virtual", "nohost", "", "jack"],
    "frequency": ["440", "0", "nan", "1e9"],
    "amplitude": ["0.1", "2", "nan", "inf"],
    "file": ["missing.wav", "out.wav", "out.flac", "out.xyz", "", "/dev/null"],
    "subtype": ["PCM_16", "NOPE", ""],
}
#: Left out, these default to seconds of audio: always given, often short.
LONG = {"seconds"}


def cli_options() -> dict[str, list[tuple[str, str | None]]]:
    """Each subcommand's options: (flag, or '' for a positional; its value key, or None)."""
    from duplexio.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, list[tuple[str, str | None]]] = {}
    for name, p in sub.choices.items():
        options: list[tuple[str, str | None]] = []
        for action in p._actions:
            if action.dest == "help":
                continue
            key = next((k for k in CLI_VALUES if action.dest.endswith(k)), None)
            flag = action.option_strings[-1] if action.option_strings else ""
            options.append((flag, key if action.nargs != 0 else None))
        commands[name] = options
    return commands


#: Options that make a command run until Ctrl-C (tested in
#: tests/hosts/test_watch_servers.py, with a signal).
UNTIL_CTRL_C = {"--watch"}


@FUZZ
@given(data=st.data())
def test_command_line(
    data: st.DataObject, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from duplexio.cli import main

    monkeypatch.chdir(tmp_path)  # whatever a command writes lands here
    commands = cli_options()
    command = data.draw(st.sampled_from(sorted(commands)), label="command")
    argv = [command]
    for flag, key in commands[command]:
        if flag in UNTIL_CTRL_C:
            continue
        if flag and key not in LONG and not data.draw(st.booleans(), label=f"pass {flag}"):
            continue
        value = data.draw(st.sampled_from(CLI_VALUES[key]), label=flag) if key else None
        if key in LONG and data.draw(st.booleans(), label=f"short {flag}"):
            value = "0.05"
        argv += ([flag] if flag else []) + ([value] if value is not None else [])
    if data.draw(st.integers(0, 9), label="unknown option") == 0:
        argv.append("--bogus")
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refusing the command line
        assert exc.code in (0, 2), argv
    except BaseException as exc:
        pytest.fail(f"main({argv!r}) raised {exc!r}")
    else:
        assert status in (0, 1, 2), (argv, status)
    capsys.readouterr()
