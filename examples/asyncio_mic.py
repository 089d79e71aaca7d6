"""An asyncio consumer of the microphone: ``async for`` over a blocking stream.

The event loop is woken by the engine's device thread through a pipe (no
polling), so other tasks run between blocks; here a second task ticks
beside the one that reads.

    python examples/asyncio_mic.py -s 5
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

import duplexio as dio


async def listen(device: dio.Device, seconds: float) -> int:
    """Print each block's RMS level; returns how many blocks came."""
    config = device.default_input_config().config()
    blocks = 0
    with device.build_input_stream(config) as stream:
        wanted = seconds * stream.sample_rate / stream.buffer_size
        async for data, status in stream:
            rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
            if blocks % 20 == 0:
                lost = f"  (lost {status.lost} frames)" if status else ""
                print(f"block {blocks:5d}  position {status.position:9d}  rms {rms:.4f}{lost}")
            blocks += 1
            if blocks >= wanted:
                break
    return blocks


async def tick(stop: asyncio.Event) -> int:
    """Another task: it keeps running while the stream is read."""
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.1)
        ticks += 1
    return ticks


async def main_async(device: dio.Device, seconds: float) -> None:
    stop = asyncio.Event()
    ticker = asyncio.create_task(tick(stop))
    blocks = await listen(device, seconds)
    stop.set()
    print(f"{blocks} blocks read; the other task ticked {await ticker} times meanwhile")


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="input device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=5.0, help="how long (5)")
    args = parser.parse_args(argv)
    asyncio.run(main_async(dio.find_device(args.device, direction="input"), args.seconds))


if __name__ == "__main__":
    main()
