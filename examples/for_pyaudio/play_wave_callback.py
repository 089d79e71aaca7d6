#!/usr/bin/env python3
"""Play a WAV file from a stream callback until it ends.

Written for PyAudio; duplexio runs it with the import changed.
"""

import sys
import time
import wave

import pyaudio

played = 0

with wave.open(sys.argv[1], "rb") as wf:

    def callback(in_data, frame_count, time_info, status):
        global played
        data = wf.readframes(frame_count)
        played += len(data) // (wf.getsampwidth() * wf.getnchannels())
        return (data, pyaudio.paContinue)

    p = pyaudio.PyAudio()
    stream = p.open(
        format=p.get_format_from_width(wf.getsampwidth()),
        channels=wf.getnchannels(),
        rate=wf.getframerate(),
        output=True,
        stream_callback=callback,
    )
    while stream.is_active():
        time.sleep(0.05)
    stream.close()
    p.terminate()
    print(f"played {played} of {wf.getnframes()} frames")
