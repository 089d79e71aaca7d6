"""playrec under a GIL-holding C extension: duplexio against sounddevice.

A thread calls a C busy loop that holds the GIL for 50 ms every 100 ms (see
``support/gil_hog.py``) while ``playrec`` plays a noise burst through a
private jackd's loopback ports (128 frames, 48 kHz) and records it back.
Each library makes ten calls with no load and ten under the load; for each
call we record:

- ``lag``: where the recording best matches what was played (frames, from
  the cross-correlation peak); 0 means ``recording[n]`` was captured when
  ``data[n]`` was played, i.e. the library aligned it;
- ``bad_blocks``: 128-frame blocks of the recording that differ from the
  played data once shifted by ``lag`` (blocks lost, late or glitched, as
  heard);
- what the library itself reports: duplexio's program xruns and late or
  skipped blocks, sounddevice's status flags.

duplexio runs the same calls on its virtual loopback too. sounddevice
reaches jackd through PortAudio's JACK host (device ``loopback``). Results
go to ``bench/results/gil_stall.json`` and ``.md``.

Run: ``python bench/gil_stall.py`` (needs jackd, ``pip install sounddevice``
and Debian's ``libportaudio2``; sounddevice is skipped, and said so, when
missing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duplexio as dio  # noqa: E402
from support import servers  # noqa: E402
from support.gil_hog import GilHog  # noqa: E402

RATE = 48000
FRAMES = 128
RESULTS = ROOT / "bench" / "results"

Call = Callable[[np.ndarray], dict[str, Any]]


def noise_burst(seconds: float, seed: int = 0) -> np.ndarray:
    """Stereo: a quarter of silence, half noise, a quarter of silence."""
    frames = int(seconds * RATE)
    data = np.zeros((frames, 2), np.float32)
    rng = np.random.default_rng(seed)
    start, stop = frames // 4, 3 * frames // 4
    data[start:stop] = rng.uniform(-0.5, 0.5, (stop - start, 2))
    return data


def lag_of(recording: np.ndarray, played: np.ndarray) -> int:
    """Frames by which the recording trails the played data (cross-correlation peak)."""
    n = len(played) + len(recording)
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(recording[:, 0], size) * np.conj(np.fft.rfft(played[:, 0], size))
    corr = np.fft.irfft(spec, size)
    lag = int(np.argmax(np.abs(corr)))
    return lag - size if lag > size // 2 else lag


def bad_blocks(recording: np.ndarray, played: np.ndarray, lag: int) -> int:
    """Blocks of the recording that are not the played data shifted by ``lag``."""
    shifted = np.zeros_like(played)
    if lag >= 0:
        shifted[lag:] = played[: len(played) - lag]
    else:
        shifted[:lag] = played[-lag:]
    diff = np.abs(recording[: len(played)] - shifted).max(axis=1)
    blocks = len(diff) // FRAMES
    per_block = diff[: blocks * FRAMES].reshape(blocks, FRAMES).max(axis=1)
    return int(np.count_nonzero(per_block > 1e-4))


def duplexio_call(device: str) -> Call:
    def call(data: np.ndarray) -> dict[str, Any]:
        stream = dio.playrec(data, RATE, 2, device, blocking=False, buffer_size=None)
        try:
            if not stream.wait(60):
                raise RuntimeError("duplexio playrec did not finish in 60 s")
            status, stats = stream.status, stream.stats
            recording = stream.recording.copy()
        finally:
            stream.close()
        return {
            "recording": recording,
            "reported": {
                "program_xruns": status.xruns,
                "device_xruns": stats.xruns,
                "late_blocks": stats.late_blocks,
                "skipped_blocks": stats.skipped_blocks,
                "round_trip_frames": status.round_trip,
            },
        }

    return call


def sounddevice_call(sd: Any, device: int) -> Call:
    def call(data: np.ndarray) -> dict[str, Any]:
        recording = sd.playrec(
            data, RATE, channels=2, dtype="float32", device=(device, device), blocking=True
        )
        flags = sd.get_status()
        return {
            "recording": np.asarray(recording),
            "reported": {
                "input_overflow": bool(flags.input_overflow),
                "input_underflow": bool(flags.input_underflow),
                "output_underflow": bool(flags.output_underflow),
                "output_overflow": bool(flags.output_overflow),
            },
        }

    return call


def run(call: Call, data: np.ndarray, calls: int, load: bool) -> dict[str, Any]:
    rows = []
    hog = GilHog(hold=0.05, every=0.1) if load else None
    if hog is not None:
        hog.__enter__()
    try:
        for _ in range(calls):
            out = call(data)
            lag = lag_of(out["recording"], data)
            rows.append(
                {
                    "lag": lag,
                    "bad_blocks": bad_blocks(out["recording"], data, lag),
                    **out["reported"],
                }
            )
    finally:
        if hog is not None:
            hog.__exit__(None, None, None)
    lags = [r["lag"] for r in rows]
    return {
        "load": "C extension holds the GIL 50 ms every 100 ms" if load else "none",
        "gil_holds": hog.holds if hog is not None else 0,
        "calls": rows,
        "lags": lags,
        "aligned_calls": sum(1 for x in lags if x == 0),
        "distinct_lags": sorted(set(lags)),
        "bad_blocks_total": sum(r["bad_blocks"] for r in rows),
        "blocks_per_call": len(data) // FRAMES,
    }


def sounddevice_or_reason() -> tuple[Any, str | None]:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        return None, f"sounddevice unavailable: {exc}"
    return sd, None


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# playrec under a GIL-holding C extension",
        "",
        f"{results['machine']}; jackd dummy driver, {FRAMES} frames, {RATE} Hz; "
        f"{results['calls']} calls of {results['seconds']} s per row; "
        "load: a C busy loop holding the GIL 50 ms every 100 ms (ctypes.PyDLL).",
        "",
        "`lag` is where the recording matches what was played (0: aligned); "
        "`bad blocks` are 128-frame blocks that differ from the played data at that lag.",
        "",
        "| library | device | load | aligned calls | lags (frames) | bad blocks | reported |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if "skipped" in row:
            lines.append(
                f"| {row['library']} | {row['device']} | - | - | - | - | {row['skipped']} |"
            )
            continue
        reported: dict[str, Any] = {}
        for call in row["calls"]:
            for key, value in call.items():
                if key in ("lag", "bad_blocks", "round_trip_frames"):
                    continue
                reported[key] = reported.get(key, 0) + int(value)
        rep = ", ".join(f"{k} {v}" for k, v in reported.items())
        lines.append(
            f"| {row['library']} | {row['device']} | {'GIL' if row['gil_holds'] else 'none'} | "
            f"{row['aligned_calls']}/{len(row['calls'])} | "
            f"{', '.join(map(str, row['lags']))} | "
            f"{row['bad_blocks_total']} of {row['blocks_per_call'] * len(row['calls'])} | {rep} |"
        )
    lines += [
        "",
        "sounddevice flags are counted per call (a call with any flag counts 1).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10, help="calls per row (10)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each call (2)")
    args = parser.parse_args()
    data = noise_burst(args.seconds)
    rows: list[dict[str, Any]] = []

    def add(library: str, device: str, call: Call) -> None:
        for load in (False, True):
            result = run(call, data, args.calls, load)
            rows.append({"library": library, "device": device, **result})
            print(
                f"{library:12} {device:18} load={'GIL ' if load else 'none'} "
                f"aligned {result['aligned_calls']}/{args.calls} lags {result['distinct_lags']} "
                f"bad blocks {result['bad_blocks_total']}",
                file=sys.stderr,
            )

    add("duplexio", "virtual:loopback", duplexio_call("virtual:loopback"))
    name = servers.unique_name("dio-bench-gil")
    with servers.jackd(name, frames=FRAMES, rate=RATE) as server:
        # PortAudio reads the server name when it initializes (on import).
        os.environ.update({"JACK_DEFAULT_SERVER": server.name, "JACK_NO_AUDIO_RESERVATION": "1"})
        add("duplexio", "jack loopback", duplexio_call(f"jack:{server.name}/loopback"))
        sd, reason = sounddevice_or_reason()
        if sd is None:
            rows.append({"library": "sounddevice", "device": "jack loopback", "skipped": reason})
        else:
            try:
                index = next(
                    i
                    for i, d in enumerate(sd.query_devices())
                    if d["name"] == "loopback" and "JACK" in sd.query_hostapis(d["hostapi"])["name"]
                )
                add(f"sounddevice {sd.__version__}", "jack loopback", sounddevice_call(sd, index))
            finally:
                # PortAudio asserts if its JACK client outlives the server.
                sd._terminate()
    results = {
        "benchmark": "gil_stall",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "calls": args.calls,
        "seconds": args.seconds,
        "frames": FRAMES,
        "rate": RATE,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gil_stall.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "gil_stall.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
