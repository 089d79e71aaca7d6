#!/usr/bin/env python3
"""Hand input blocks from a callback to an asyncio coroutine.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import argparse
import asyncio

import numpy as np
import sounddevice as sd


def int_or_str(text):
    try:
        return int(text)
    except ValueError:
        return text


parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("-d", "--device", type=int_or_str, help="input device")
parser.add_argument("-n", "--blocks", type=int, default=20)
parser.add_argument("-c", "--channels", type=int, default=1)
args = parser.parse_args()


async def inputstream_generator(channels=1, **kwargs):
    q_in = asyncio.Queue()
    loop = asyncio.get_event_loop()

    def callback(indata, frame_count, time_info, status):
        loop.call_soon_threadsafe(q_in.put_nowait, (indata.copy(), status))

    stream = sd.InputStream(callback=callback, channels=channels, **kwargs)
    with stream:
        while True:
            indata, status = await q_in.get()
            yield indata, status


async def main():
    frames = count = flagged = 0
    async for indata, status in inputstream_generator(
        channels=args.channels, device=args.device, blocksize=512
    ):
        frames += len(indata)
        count += 1
        flagged += bool(status)
        if count == args.blocks:
            break
    print(
        f"{count} blocks, {frames} frames, {flagged} flagged, "
        f"last peak {np.max(np.abs(indata)):.3f}"
    )


asyncio.run(main())
