"""Impulse response with playrec: play a sine sweep, record it aligned, deconvolve.

``dio.playrec`` returns ``recording[n]`` as captured when ``data[n]`` left
the output, from the stream's own timestamps. So the response shows only
what lies between the device's output and its input (a loudspeaker and a
room, a cable, a filter): an ideal loop peaks at frame 0, and a peak
elsewhere is delay the device did not report. ``--plot PNG`` draws it.

    python examples/impulse_response.py
    python examples/impulse_response.py -d "USB" --seconds 3 --plot ir.png
"""

from __future__ import annotations

import argparse

import numpy as np

import duplexio as dio


def sweep(seconds: float, rate: int, low: float = 20.0, high: float = 20000.0) -> np.ndarray:
    """An exponential sine sweep (Farina), -6 dBFS, with 10 ms fades."""
    t = np.arange(int(seconds * rate)) / rate
    k = np.log(high / low)
    x = 0.5 * np.sin(2 * np.pi * low * seconds / k * (np.exp(t * k / seconds) - 1))
    fade = int(0.01 * rate)
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    out: np.ndarray = x.astype(np.float32)
    return out


def deconvolve(recorded: np.ndarray, played: np.ndarray) -> np.ndarray:
    """The impulse response: recorded / played in the frequency domain, regularised."""
    n = 1 << int(np.ceil(np.log2(len(recorded) + len(played))))
    spectrum = np.fft.rfft(played, n)
    ir = np.fft.irfft(
        np.fft.rfft(recorded, n) * np.conj(spectrum) / (np.abs(spectrum) ** 2 + 1e-6), n
    )
    return ir[: len(played)]


def device_arg(text: str) -> int | str:
    """A device on the command line: all digits is an index in dio.query_devices()."""
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-d", "--device", type=device_arg, help="duplex device (index, id or part of a name)"
    )
    parser.add_argument("-s", "--seconds", type=float, default=2.0, help="sweep length (2)")
    parser.add_argument("-r", "--rate", type=int, default=48000, help="Hz (48000)")
    parser.add_argument("--plot", metavar="PNG", help="save the impulse response")
    args = parser.parse_args(argv)

    played = sweep(args.seconds, args.rate)
    tail = np.zeros(args.rate // 2, np.float32)  # room for the response to die away
    data = np.concatenate([played, tail])
    recording = dio.playrec(data, args.rate, 1, args.device)
    ir = deconvolve(recording[:, 0].astype(np.float64), played.astype(np.float64))
    peak = int(np.argmax(np.abs(ir)))
    print(f"impulse response of {len(ir)} frames; peak {ir[peak]:+.3f} at frame {peak} "
          f"({peak / args.rate * 1000:.3f} ms beyond what the stream reports)")  # fmt: skip
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        shown = ir[: max(256, 2 * peak + 64)]
        fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
        ax.plot(np.arange(len(shown)) / args.rate * 1000, shown)
        ax.set(xlabel="ms after the stream's reported round trip", ylabel="response",
               title="Impulse response (sweep, playrec aligned)")  # fmt: skip
        ax.grid(True, alpha=0.3)
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
