"""Spectrogram of the input, in the terminal: one line a block, one character a band.

Reads a blocking stream with ``stream.blocks()``; each line shows the
magnitude of 60 frequency bands from ``--low`` to ``--high`` Hz as shades,
and the strongest frequency.

    python examples/spectrogram.py -s 10
    python examples/spectrogram.py --low 100 --high 4000
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

import duplexio as dio

SHADES = " .:-=+*#%@"


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="input device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=5.0, help="how long (5)")
    parser.add_argument("--low", type=float, default=100.0, help="lowest band, Hz (100)")
    parser.add_argument("--high", type=float, default=4000.0, help="highest band, Hz (4000)")
    parser.add_argument("--bands", type=int, default=60, help="characters a line (60)")
    args = parser.parse_args(argv)

    device = dio.find_device(args.device, direction="input")
    config = device.default_input_config().config()
    rate = config.sample_rate
    frames = 4096  # ~85 ms at 48 kHz: 11.7 Hz a bin
    edges = np.linspace(args.low, args.high, args.bands + 1) * frames / rate
    window = np.hanning(frames)
    lines = max(1, round(args.seconds * rate / frames))
    with device.build_input_stream(config) as stream:
        for n, (data, status) in enumerate(stream.blocks(frames)):
            spectrum = np.abs(np.fft.rfft(data[:, 0] * window)) / (frames / 4)
            bands = [spectrum[int(a) : max(int(a) + 1, int(b))].max()
                     for a, b in itertools.pairwise(edges)]  # fmt: skip
            db = 20 * np.log10(np.maximum(bands, 1e-6))
            shade = np.clip(((db + 60) / 60 * (len(SHADES) - 1)).astype(int), 0, len(SHADES) - 1)
            peak = np.argmax(spectrum[1:]) + 1
            flag = " lost" if status else ""
            print(f"|{''.join(SHADES[i] for i in shade)}| {peak * rate / frames:7.1f} Hz{flag}")
            if n + 1 >= lines:
                break


if __name__ == "__main__":
    main()
