"""Play a file of any length: read from disk a tenth of a second at a time.

``dio.play_file`` queues the first blocks before the stream starts, converts
with soxr when the device refuses the file's rate, and reports every
underrun or device glitch it met.

    python examples/play_long_file.py concert.flac
    python examples/play_long_file.py speech.wav -d "jack:default"
"""

from __future__ import annotations

import argparse

import duplexio as dio


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="what to play (WAV, FLAC, OGG, ...)")
    parser.add_argument(
        "-d", "--device", type=device_arg, help="output device (index, id or part of a name)"
    )
    args = parser.parse_args(argv)

    report = dio.play_file(args.file, args.device)
    how = f", converted to {report.device_rate} Hz" if report.resampled else ""
    print(f"played {report.seconds:.2f} s at {report.sample_rate} Hz{how}; "
          f"{len(report.glitches)} glitches")  # fmt: skip


if __name__ == "__main__":
    main()
