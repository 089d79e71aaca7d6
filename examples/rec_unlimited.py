"""Record to a file until Ctrl-C: memory stays flat, the file is valid whenever you stop.

``dio.record_file`` streams from a blocking stream's ring to disk a tenth of
a second at a time. Lost input is written as silence (the file keeps the
device's timeline) and reported with its place in the file.

    python examples/rec_unlimited.py take.wav          # until Ctrl-C
    python examples/rec_unlimited.py take.flac -s 60 -c 1
"""

from __future__ import annotations

import argparse
import signal
import threading

import duplexio as dio


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="where to write (WAV, FLAC, ...)")
    parser.add_argument(
        "-d", "--device", type=device_arg, help="input device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, help="stop after this long")
    parser.add_argument("-c", "--channels", type=int, help="channels (the device's)")
    parser.add_argument("-r", "--rate", type=int, help="Hz (the device's)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C ends the take cleanly
    print("recording; Ctrl-C to stop")
    report = dio.record_file(
        args.file, args.seconds, args.rate, args.channels, args.device, stop=stop
    )
    print(f"{report.path}: {report.seconds:.2f} s, {report.channels} channel(s), "
          f"{report.sample_rate} Hz, {len(report.glitches)} glitches")  # fmt: skip
    for glitch in report.glitches:
        print(f"  at {glitch.frame / report.sample_rate:.3f} s: {glitch.frames} frames lost")


if __name__ == "__main__":
    main()
