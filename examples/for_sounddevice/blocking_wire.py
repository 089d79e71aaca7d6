#!/usr/bin/env python3
"""Pass the input to the output with read() and write(): no callback.

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
parser.add_argument("-d", "--device", type=int_or_str, help="a device that can do both")
parser.add_argument("-b", "--blocksize", type=int, default=1024, help="frames per read")
parser.add_argument("-n", "--reads", type=int, default=20, help="how many reads")
parser.add_argument("-c", "--channels", type=int, default=1, help="channels")
args = parser.parse_args()

overflows = underflows = 0
with sd.Stream(device=args.device, channels=args.channels, blocksize=args.blocksize) as stream:
    for _ in range(args.reads):
        data, overflowed = stream.read(args.blocksize)
        overflows += overflowed
        underflows += stream.write(data)
print(
    f"{args.reads} reads of {args.blocksize} frames: {overflows} overflowed, "
    f"{underflows} underflowed"
)
