"""Two devices, one duplex stream: a microphone and separate speakers.

A USB microphone and the speakers of another card run on two clocks; no
duplex device spans them. ``dio.aggregate()`` makes one: the engine resamples
the input onto the output's clock, so the callback gets both in one cycle
and the round trip holds. This wires the input to the output and prints
what the clock loop found: the drift between the two crystals, when it
locked, and the round trip.

    python examples/two_devices.py -i "USB" -o "speakers" -s 60
    python examples/two_devices.py --cable-ppm 120   # no hardware: a virtual cable
"""

from __future__ import annotations

import argparse

import numpy as np

import duplexio as dio
from duplexio.hosts.virtual import VirtualHost


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-i", "--input-device", type=device_arg, help="input device (index, id or part of a name)"
    )
    parser.add_argument(
        "-o", "--output-device", type=device_arg, help="output device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=5.0, help="how long (5)")
    parser.add_argument(
        "--cable-ppm", type=float, help="use a virtual cable whose input clock runs this fast"
    )
    args = parser.parse_args(argv)

    inp, out = args.input_device, args.output_device
    if args.cable_ppm is not None:  # two virtual devices on two clocks, wired together
        host = dio.host_from_id("virtual")
        assert isinstance(host, VirtualHost)
        out, inp = host.add_cable("example", output_ppm=0.0, input_ppm=args.cable_ppm)
    device = dio.aggregate(inp, out)
    config = device.default_duplex_config()
    channels = min(config.input_channels, config.output_channels)

    def callback(i: np.ndarray, o: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        o[:, :channels] = i[:, :channels]  # one cycle, one clock: no ring between them

    with device.build_duplex_stream(config, callback) as stream:
        stream.wait(args.seconds)
    loop = stream.stats.aggregate
    assert loop is not None
    print(f"{device.name}: {stream.buffer_size} frames at {stream.sample_rate} Hz")
    locked = f"locked after {loop.lock_seconds:.2f} s" if loop.lock_seconds else "not locked"
    print(f"drift {loop.drift_ppm:+.1f} ppm, {locked}, {loop.jumps - 1} re-locks")
    rt = stream.latency.round_trip
    print(f"round trip {rt} frames ({rt / stream.sample_rate * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
