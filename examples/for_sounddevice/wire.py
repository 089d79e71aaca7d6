#!/usr/bin/env python3
"""Pass the input straight to the output, in a callback, for a while.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import argparse

import sounddevice as sd


def int_or_str(text):
    try:
        return int(text)
    except ValueError:
        return text


parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("-i", "--input-device", type=int_or_str, help="input device")
parser.add_argument("-o", "--output-device", type=int_or_str, help="output device")
parser.add_argument("-c", "--channels", type=int, default=2, help="channels")
parser.add_argument("-r", "--samplerate", type=float, help="sampling rate")
parser.add_argument("-b", "--blocksize", type=int, help="block size")
parser.add_argument("-l", "--latency", type=float, help="latency in seconds")
parser.add_argument("-t", "--dtype", help="sample type, e.g. int16")
parser.add_argument("-s", "--seconds", type=float, default=1.0, help="how long")
args = parser.parse_args()

flagged = 0
blocks = 0
sizes = set()


def callback(indata, outdata, frames, time, status):
    global flagged, blocks
    if status:
        flagged += 1
    sizes.add(frames)
    blocks += 1
    outdata[:] = indata


with sd.Stream(
    device=(args.input_device, args.output_device),
    samplerate=args.samplerate,
    blocksize=args.blocksize,
    dtype=args.dtype,
    latency=args.latency,
    channels=args.channels,
    callback=callback,
) as stream:
    sd.sleep(int(args.seconds * 1000))
    latency = stream.latency
print(f"{blocks} blocks of {sorted(sizes)} frames, {flagged} flagged")
print(f"latency in {latency[0] * 1000:.2f} ms, out {latency[1] * 1000:.2f} ms")
