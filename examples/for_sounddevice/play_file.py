#!/usr/bin/env python3
"""Play a sound file block by block from a queue; stop at its end.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import argparse
import queue
import threading

import sounddevice as sd
import soundfile as sf


def int_or_str(text):
    try:
        return int(text)
    except ValueError:
        return text


parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("filename", help="the file to play")
parser.add_argument("-d", "--device", type=int_or_str, help="output device")
parser.add_argument("-b", "--blocksize", type=int, default=2048, help="frames per block")
parser.add_argument("-q", "--buffersize", type=int, default=20, help="blocks queued ahead")
args = parser.parse_args()

q = queue.Queue(maxsize=args.buffersize)
event = threading.Event()
played = 0


def callback(outdata, frames, time, status):
    global played
    assert frames == args.blocksize
    try:
        data = q.get_nowait()
    except queue.Empty as e:
        raise sd.CallbackAbort from e
    if len(data) < len(outdata):
        outdata[: len(data)] = data
        outdata[len(data) :] = 0
        played += len(data)
        raise sd.CallbackStop
    outdata[:] = data
    played += len(data)


with sf.SoundFile(args.filename) as f:
    for _ in range(args.buffersize):
        data = f.read(args.blocksize, dtype="float32", always_2d=True)
        if not len(data):
            break
        q.put_nowait(data)
    stream = sd.OutputStream(
        samplerate=f.samplerate,
        blocksize=args.blocksize,
        device=args.device,
        channels=f.channels,
        dtype="float32",
        callback=callback,
        finished_callback=event.set,
    )
    with stream:
        timeout = args.blocksize * args.buffersize / f.samplerate
        while len(data):
            data = f.read(args.blocksize, dtype="float32", always_2d=True)
            q.put(data, timeout=timeout + 5)
        event.wait()
print(f"played {played} of {f.frames} frames")
