#!/usr/bin/env python3
"""Play an impulse and record at once with playrec(); print where it came back.

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
parser.add_argument("-d", "--device", type=int_or_str, help="a device that can do both")
parser.add_argument("-r", "--samplerate", type=int, default=48000)
parser.add_argument("-c", "--channels", type=int, default=1)
args = parser.parse_args()

fs = args.samplerate
signal = np.zeros((fs // 2, args.channels), dtype="float32")
signal[1000] = 0.5
recording = sd.playrec(signal, fs, channels=args.channels, device=args.device)
status = sd.wait()
stream = sd.get_stream()
peak = int(np.argmax(np.abs(recording[:, 0])))
print(f"impulse sent at 1000, heard at {peak}: {peak - 1000} frames later")
print(f"stream latency: {round(sum(stream.latency) * fs)} frames; status: {status}")
