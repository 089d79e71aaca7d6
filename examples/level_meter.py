"""Level meter: the input's peak level, block by block, from a blocking stream.

No callback: the engine fills a ring and this loop reads it, so a slow
terminal costs nothing. A read that met lost input says so. ``--plot PNG``
saves the level over time (matplotlib).

    python examples/level_meter.py -s 10
    python examples/level_meter.py -d "USB" --plot level.png
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import duplexio as dio


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="input device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=5.0, help="how long (5)")
    parser.add_argument("--plot", metavar="PNG", help="save the level over time")
    args = parser.parse_args(argv)

    device = dio.find_device(args.device, direction="input")
    config = device.default_input_config().config()
    step = config.sample_rate // 20  # 50 ms a line
    levels: list[float] = []
    with device.build_input_stream(config) as stream:
        for _ in range(max(1, round(args.seconds * 20))):
            data, status = stream.read(step)
            peak = float(np.max(np.abs(data))) if data.size else 0.0
            db = 20 * math.log10(peak) if peak > 0 else -120.0
            levels.append(db)
            bar = "#" * max(0, int((db + 60) / 1.5))
            print(f"{db:7.1f} dBFS |{bar:<40}|{'  lost ' + str(status.lost) if status else ''}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.arange(len(levels)) * step / config.sample_rate
        fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
        ax.plot(t, levels)
        ax.set(xlabel="s", ylabel="peak, dBFS", ylim=(-90, 3), title=f"Input level: {device.id}")
        ax.grid(True, alpha=0.3)
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
