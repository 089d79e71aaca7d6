#!/usr/bin/env python3
"""Print the input level of every 50 ms block.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import argparse
import queue

import numpy as np
import sounddevice as sd


def int_or_str(text):
    try:
        return int(text)
    except ValueError:
        return text


parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("-d", "--device", type=int_or_str, help="input device")
parser.add_argument("-b", "--blocks", type=int, default=10, help="how many blocks")
parser.add_argument("-c", "--channels", type=int, default=1, help="channels")
args = parser.parse_args()

samplerate = sd.query_devices(args.device, "input")["default_samplerate"]
blocksize = int(samplerate * 0.05)
levels = queue.Queue()


def callback(indata, frames, time, status):
    if status:
        print(status)
    levels.put((frames, float(np.sqrt(np.mean(indata[:, 0] ** 2)))))


with sd.InputStream(
    device=args.device,
    channels=args.channels,
    samplerate=samplerate,
    blocksize=blocksize,
    callback=callback,
):
    for _ in range(args.blocks):
        frames, rms = levels.get()
        db = 20 * np.log10(max(rms, 1e-10))
        print(f"{frames} frames  {db:7.1f} dBFS  " + "#" * max(0, int(db + 60)))
