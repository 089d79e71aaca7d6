#!/usr/bin/env python3
"""Pass the input to the output from a stream callback.

Written for PyAudio; duplexio runs it with the import changed.
"""

import sys
import time

import pyaudio

CHANNELS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
blocks = []


def callback(in_data, frame_count, time_info, status):
    blocks.append(frame_count)
    return (in_data, pyaudio.paContinue)


p = pyaudio.PyAudio()
stream = p.open(
    format=pyaudio.paFloat32,
    channels=CHANNELS,
    rate=48000,
    input=True,
    output=True,
    frames_per_buffer=1000,
    stream_callback=callback,
)
time.sleep(SECONDS)
stream.stop_stream()
stream.close()
p.terminate()
print(f"{len(blocks)} blocks of {sorted(set(blocks))} frames")
