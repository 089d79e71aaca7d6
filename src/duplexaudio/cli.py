"""The ``duplexaudio`` command (also ``python -m duplexaudio``).

Subcommands: ``hosts``, ``devices``, ``latency`` (the main job: round-trip
latency of the default duplex device), ``duplex-feedback`` (input copied to
output). Only argument parsing and printing live here; the work is done by
the public API and :mod:`duplexaudio.measure`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence

import numpy as np

from duplexaudio.config import BufferSize, DuplexStreamConfig
from duplexaudio.errors import Error
from duplexaudio.host import (
    Device,
    HostId,
    available_hosts,
    default_host,
    find_device,
    host_from_id,
)
from duplexaudio.measure import measure_latency
from duplexaudio.timing import DuplexCallbackInfo


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _channels(device: Device, direction: str) -> str:
    ranges = (
        device.supported_input_configs() if direction == "in" else device.supported_output_configs()
    )
    return str(max((r.max_channels for r in ranges), default=0))


def _rates(device: Device) -> str:
    ranges = device.supported_input_configs() + device.supported_output_configs()
    if not ranges:
        return "-"
    low = min(r.min_sample_rate for r in ranges)
    high = max(r.max_sample_rate for r in ranges)
    return f"{low}" if low == high else f"{low}-{high}"


def cmd_hosts(args: argparse.Namespace) -> int:
    """Print every known host, whether it is usable here, and which is the default."""
    usable = set(available_hosts())
    chosen = default_host().id
    rows = [["host", "available", "devices", "default"]]
    for hid in HostId:
        count = str(len(host_from_id(hid).devices())) if hid in usable else "-"
        rows.append(
            [hid.value, "yes" if hid in usable else "no", count, "*" if hid is chosen else ""]
        )
    print(_table(rows))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """Print a table of the devices of one host (default: the default host)."""
    host = host_from_id(args.host) if args.host else default_host()
    defaults = {
        "in": host.default_input_device(),
        "out": host.default_output_device(),
        "duplex": host.default_duplex_device(),
    }
    rows = [["id", "name", "direction", "in", "out", "rates (Hz)", "default"]]
    for dev in host.devices():
        marks = ",".join(k for k, d in defaults.items() if d is not None and d.id == dev.id)
        rows.append(
            [
                str(dev.id),
                dev.name,
                dev.description.direction,
                _channels(dev, "in"),
                _channels(dev, "out"),
                _rates(dev),
                marks,
            ]
        )
    print(f"host: {host.id.value} ({host.name})")
    print(_table(rows))
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    """Measure and print the round trip of a duplex device."""
    report = measure_latency(
        args.device,
        sample_rate=args.rate,
        buffer_size=args.buffer_size,
        impulses=args.impulses,
        interval=args.interval,
        pipelined=args.pipelined,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "device": report.device,
                    "sample_rate": report.sample_rate,
                    "buffer_size": report.buffer_size,
                    "round_trip_frames": report.frames,
                    "round_trip_ms": report.ms,
                    "spread_frames": report.spread,
                    "round_trips": list(report.round_trips),
                    "reported_frames": list(report.reported),
                    "lost": report.lost,
                    "xruns": report.xruns,
                    "late_blocks": report.late_blocks,
                }
            )
        )
        return 0 if report.round_trips else 1
    print(f"device       {report.device}")
    print(
        f"config       {report.sample_rate} Hz, {report.buffer_size} frames per block"
        + (", pipelined" if report.pipelined else "")
    )
    if not report.round_trips:
        print(f"no impulse came back ({report.lost} lost): is the output looped to the input?")
        return 1
    assert report.frames is not None and report.ms is not None
    print(
        f"round trip   {report.frames} frames = {report.ms:.3f} ms "
        f"(median of {len(report.round_trips)} impulses)"
    )
    stable = (
        "identical for every impulse" if report.spread == 0 else f"spread {report.spread} frames"
    )
    print(f"stability    {stable}; min {min(report.round_trips)}, max {max(report.round_trips)}")
    print(
        f"reported     {', '.join(map(str, report.reported))} frames by the stream's timestamps"
        + (" (matches)" if report.matches_report else " (DIFFERS from measured)")
    )
    print(
        f"glitches     {report.xruns} xruns, {report.late_blocks} late blocks, "
        f"{report.lost} impulses lost"
    )
    return 0


def cmd_duplex_feedback(args: argparse.Namespace) -> int:
    """Copy the input of a duplex stream to its output for a while, then print the stats."""
    dev = find_device(args.device, direction="duplex")
    default = dev.default_duplex_config()
    config = DuplexStreamConfig(
        args.input_channels or default.input_channels,
        args.output_channels or default.output_channels,
        args.rate or default.sample_rate,
        BufferSize.fixed(args.buffer_size) if args.buffer_size else BufferSize.DEFAULT,
    )

    def copy(inp: np.ndarray, out: np.ndarray, info: DuplexCallbackInfo) -> None:
        n = min(inp.shape[1], out.shape[1])
        out[:, :n] = inp[:, :n]

    stream = dev.build_duplex_stream(config, copy, pipelined=args.pipelined)
    print(
        f"{dev.id}: {config.input_channels} in -> {config.output_channels} out, "
        f"{config.sample_rate} Hz, {stream.buffer_size} frames, latency "
        f"{stream.latency.round_trip} frames; copying for {args.seconds:g} s"
    )
    with stream:
        stream.wait(args.seconds)
        s = stream.stats
    print(
        f"{s.callbacks} blocks, {s.xruns} xruns, {s.late_blocks} late, "
        f"{s.skipped_blocks} skipped, load {s.load:.1%} (max {s.max_load:.1%})"
    )
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``duplexaudio`` command."""
    parser = argparse.ArgumentParser(
        prog="duplexaudio",
        description="Real-time audio with synchronized duplex streams.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("hosts", help="list hosts and whether they are usable")
    p.set_defaults(run=cmd_hosts)

    p = sub.add_parser("devices", help="list devices")
    p.add_argument("--host", help="host id (default: the default host)")
    p.set_defaults(run=cmd_devices)

    def stream_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-d",
            "--device",
            help="device id, e.g. virtual:loopback (default: default duplex device)",
        )
        p.add_argument("-r", "--rate", type=_positive_int, help="sample rate in Hz")
        p.add_argument("-b", "--buffer-size", type=_positive_int, help="frames per block")
        p.add_argument("--pipelined", action="store_true", help="give the callback a whole period")

    p = sub.add_parser("latency", help="measure the round-trip latency of a duplex device")
    stream_options(p)
    p.add_argument("-n", "--impulses", type=_positive_int, default=10, help="impulses to send (10)")
    p.add_argument(
        "--interval", type=_positive_float, default=0.1, help="seconds between impulses (0.1)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_latency)

    p = sub.add_parser("duplex-feedback", help="copy input to output in one duplex stream")
    stream_options(p)
    p.add_argument("-s", "--seconds", type=_positive_float, default=5.0, help="how long (5)")
    p.add_argument("--input-channels", type=_positive_int, help="input channels")
    p.add_argument("--output-channels", type=_positive_int, help="output channels")
    p.set_defaults(run=cmd_duplex_feedback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for duplexaudio errors)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="duplexaudio: %(message)s",
    )
    started = time.monotonic()
    try:
        status: int = args.run(args)
    except Error as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    logging.getLogger("duplexaudio").debug("done in %.2f s", time.monotonic() - started)
    return status


if __name__ == "__main__":
    sys.exit(main())
