#!/usr/bin/env python3
"""Pass the input to the output with read() and write().

Written for PyAudio; duplexio runs it with the import changed.
"""

import sys

import pyaudio

CHUNK = 1024
CHANNELS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0

p = pyaudio.PyAudio()
stream = p.open(
    format=pyaudio.paInt16,
    channels=CHANNELS,
    rate=48000,
    input=True,
    output=True,
    frames_per_buffer=CHUNK,
)
chunks = int(48000 / CHUNK * SECONDS)
for _ in range(chunks):
    stream.write(stream.read(CHUNK, exception_on_overflow=False), CHUNK)
print(f"{chunks} chunks of {CHUNK} frames; latency in {stream.get_input_latency() * 1000:.1f} ms")
stream.close()
p.terminate()
