"""Round-trip latency of a duplex device, measured on the audio and checked
against what the stream's timestamps report; ``--plot PNG`` draws the
impulse as it came back and the spread of the round trips.

Connect the output to the input first (a cable, a server's loopback). On a
machine without sound hardware the default is the virtual loopback.

    python examples/latency.py
    python examples/latency.py -d "jack:default/loopback" -n 50 --plot latency.png
"""

from __future__ import annotations

import argparse

import numpy as np

import duplexio as dio


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="duplex device (index, id or part of a name)"
    )
    parser.add_argument("-n", "--impulses", type=int, default=20, help="impulses (20)")
    parser.add_argument("-b", "--buffer-size", type=int, help="frames per block")
    parser.add_argument("--plot", metavar="PNG", help="save the response and a histogram")
    args = parser.parse_args(argv)

    report = dio.measure_latency(
        args.device, buffer_size=args.buffer_size, impulses=args.impulses, interval=0.05
    )
    if report.frames is None:
        raise SystemExit(
            f"no impulse came back on {report.device}: is the output looped to the input?"
        )
    print(f"{report.device}: {report.frames} frames = {report.ms:.3f} ms round trip "
          f"(median of {len(report.round_trips)}, spread {report.spread} frames)")  # fmt: skip
    print(f"the stream reports {report.reported}: "
          f"{'matches' if report.matches_report else 'DIFFERS'}; {report.lost} lost, "
          f"{report.xruns} device glitches, {report.late_blocks} late blocks")  # fmt: skip
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), layout="constrained")
        response = np.asarray(report.response)
        shown = response[: report.frames * 2]
        top.plot(np.arange(len(shown)), shown)
        top.axvline(report.frames, color="C1", linestyle="--", label="round trip")
        top.set(xlabel="frames after the impulse left", ylabel="input", title=report.device)
        top.legend()
        lo, hi = min(report.round_trips), max(report.round_trips)
        # Whole frames, a few either side: one bar when the round trip never moves.
        bottom.hist(report.round_trips, bins=np.arange(lo - 3.5, hi + 4.5), rwidth=0.8)
        bottom.xaxis.get_major_locator().set_params(integer=True)
        bottom.set(xlabel="round trip, frames", ylabel="impulses")
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
