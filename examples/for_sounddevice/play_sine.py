#!/usr/bin/env python3
"""Play a sine tone from a callback, keeping its phase across blocks.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import argparse

import numpy as np
import sounddevice as sd


def int_or_str(text):
    try:
        return int(text)
    except ValueError:
        return text


parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("frequency", nargs="?", type=float, default=500.0, help="Hz")
parser.add_argument("-d", "--device", type=int_or_str, help="output device")
parser.add_argument("-a", "--amplitude", type=float, default=0.2, help="amplitude")
parser.add_argument("-b", "--blocksize", type=int, default=0, help="block size")
parser.add_argument("-s", "--seconds", type=float, default=1.0, help="how long")
parser.add_argument("-c", "--channels", type=int, default=1, help="channels")
args = parser.parse_args()

start = 0
samplerate = sd.query_devices(args.device, "output")["default_samplerate"]


def callback(outdata, frames, time, status):
    global start
    t = (start + np.arange(frames)) / samplerate
    outdata[:] = args.amplitude * np.sin(2 * np.pi * args.frequency * t).reshape(-1, 1)
    start += frames


with sd.OutputStream(
    device=args.device,
    channels=args.channels,
    callback=callback,
    samplerate=samplerate,
    blocksize=args.blocksize,
):
    sd.sleep(int(args.seconds * 1000))
print(f"played {start} frames of {args.frequency:g} Hz at {samplerate:g} Hz")
