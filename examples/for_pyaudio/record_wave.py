#!/usr/bin/env python3
"""Record a few seconds from the default input into a WAV file, with read().

Written for PyAudio; duplexio runs it with the import changed.
"""

import sys
import wave

import pyaudio

CHUNK = 1024
FORMAT = pyaudio.paInt16
CHANNELS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
RATE = 48000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0

p = pyaudio.PyAudio()
with wave.open(sys.argv[1], "wb") as wf:
    wf.setnchannels(CHANNELS)
    wf.setsampwidth(p.get_sample_size(FORMAT))
    wf.setframerate(RATE)
    stream = p.open(
        format=FORMAT, channels=CHANNELS, rate=RATE, input=True, frames_per_buffer=CHUNK
    )
    for _ in range(int(RATE / CHUNK * SECONDS)):
        wf.writeframes(stream.read(CHUNK))
    stream.stop_stream()
    stream.close()
p.terminate()
with wave.open(sys.argv[1], "rb") as wf:
    print(f"recorded {wf.getnframes()} frames, {wf.getnchannels()} channel(s)")
