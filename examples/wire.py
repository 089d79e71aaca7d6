"""Wire: the input copied to the output in one duplex stream.

The callback gets the input block and fills the output block of the same
device cycle, so the two never drift apart. At the end it prints what the
stream reports: the round trip and every glitch it counted.

    python examples/wire.py                      # the default duplex device, 5 s
    python examples/wire.py -d "jack:default" -s 60
"""

from __future__ import annotations

import argparse

import numpy as np

import duplexio as dio


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="duplex device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=5.0, help="how long (5)")
    parser.add_argument("-b", "--buffer-size", type=int, help="frames per block")
    args = parser.parse_args(argv)

    device = dio.find_device(args.device, direction="duplex")
    config = device.default_duplex_config()
    if args.buffer_size:
        config = dio.DuplexStreamConfig(
            config.input_channels, config.output_channels, config.sample_rate,
            dio.BufferSize.fixed(args.buffer_size),
        )  # fmt: skip
    channels = min(config.input_channels, config.output_channels)

    def callback(inp: np.ndarray, out: np.ndarray, info: dio.DuplexCallbackInfo) -> None:
        out[:, :channels] = inp[:, :channels]  # same cycle: no ring buffer between them

    with device.build_duplex_stream(config, callback) as stream:
        stream.wait(args.seconds)  # raises if the callback raised
    stats = stream.stats
    print(f"{device.id}: {stream.buffer_size} frames at {stream.sample_rate} Hz")
    print(f"round trip {stream.latency.round_trip} frames "
          f"({stream.latency.round_trip / stream.sample_rate * 1000:.2f} ms)")  # fmt: skip
    print(f"{stats.callbacks} blocks, {stats.late_blocks} late, {stats.xruns} device glitches")


if __name__ == "__main__":
    main()
