"""Across two clocks: a ring buffer between two streams against an aggregate.

    python bench/aggregate_drift.py [--pair virtual|servers|both] [--seconds 600]
        [--out bench/results] [--docs docs/benchmarks.md]

Copies input to output across two devices' clocks for SECONDS with each of
(a) two streams joined by a ring buffer, what sounddevice/PortAudio users
build (``duplexio feedback``), and (b) one duplex stream on the two
devices' ``dio.aggregate()`` (``duplexio feedback --aggregate``), and
samples twice a second the delay from input to output through the
buffering, the under- and overruns, and the drift measured. Pairs:

- ``virtual``: a virtual cable whose input clock runs 100 ppm fast (a USB
  microphone's crystal against a sound card's is of that order);
- ``servers``: a private jackd (dummy driver, 128 frames) as the output and a
  private PulseAudio null sink's monitor as the input (a silent stream keeps
  the sink running), two servers with clocks of their own.

Each pair's figures go to ``aggregate_drift_<pair>.json``; with both there,
the table goes to ``aggregate_drift.md`` and the section of
``docs/benchmarks.md`` between the aggregate_drift markers, and the plot to
``docs/img/aggregate_drift.png`` (matplotlib, if installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from _docs import publish

import duplexio as dio
from duplexio.cli import FeedbackRun, run_feedback
from duplexio.hosts.virtual import VirtualHost

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # support.servers: the one place servers are started
from support import servers  # noqa: E402

RATE = 48000
FRAMES = 128
INPUT_PPM = 100.0
PAIRS = ("virtual", "servers")
MODES = {"ring": "(a) two streams and a ring", "aggregate": "(b) aggregate"}


@contextlib.contextmanager
def devices(pair: str) -> Iterator[tuple[dio.Device, dio.Device, str]]:
    """(input, output, what they are) for a pair, set up and torn down."""
    if pair == "virtual":
        host = dio.host_from_id("virtual")
        assert isinstance(host, VirtualHost)
        out, inp = host.add_cable("bench", 0.0, INPUT_PPM, default_buffer_size=FRAMES)
        try:
            yield inp, out, f"virtual cable, input clock {INPUT_PPM:+g} ppm, {FRAMES} frames"
        finally:
            host.remove_device(out.id)
            host.remove_device(inp.id)
        return
    pulse = servers.start_pulseaudio(sink="da_bench")
    os.environ["PULSE_SERVER"] = pulse.address
    name = servers.unique_name("dio-bench-agg")
    try:
        with servers.jackd(name, frames=FRAMES, rate=RATE):
            host = dio.host_from_id("pulse")
            sink, monitor = (
                host.device_by_id("pulse:da_bench"),
                host.device_by_id("pulse:da_bench.monitor"),
            )
            jack = dio.host_from_id("jack").device_by_id(f"jack:{name}")
            assert sink is not None and monitor is not None and jack is not None
            # A null sink's monitor runs only while something plays to it.
            keep = sink.build_output_stream(dio.StreamConfig(2, RATE), lambda o, i: None)
            with keep:
                what = f"PulseAudio null sink's monitor -> jackd (dummy, {FRAMES} frames)"
                yield monitor, jack, what
    finally:
        pulse.stop()


def run_pair(pair: str, seconds: float) -> dict[str, Any]:
    """Both modes on one pair of devices; their samples."""
    result: dict[str, Any] = {"pair": pair, "seconds": seconds, "modes": {}}
    with devices(pair) as (inp, out, what):
        result["devices"] = what
        for mode in MODES:
            print(f"  {pair}: {MODES[mode]} for {seconds:g} s", flush=True)
            run: FeedbackRun = run_feedback(
                inp, out, rate=RATE, channels=2, buffer_size=dio.BufferSize.fixed(FRAMES),
                seconds=seconds, aggregate=mode == "aggregate",
            )  # fmt: skip
            result["modes"][mode] = {
                "setup": run.setup,
                "samples": [asdict(s) for s in run.samples],
            }
    return result


def summary(mode: dict[str, Any]) -> dict[str, Any]:
    """One mode's figures: delay at start and end, its range, glitches, drift."""
    samples = mode["samples"]
    delays = [s["delay_frames"] for s in samples]
    drifts = [s["drift_ppm"] for s in samples if s["drift_ppm"] is not None]
    last = samples[-1]
    return {
        "first": delays[0],
        "last": delays[-1],
        "low": min(delays),
        "high": max(delays),
        "underruns": last["underruns"],
        "overruns": last["overruns"],
        "drift": float(np.median(drifts[len(drifts) // 2 :])) if drifts else None,
        "seconds": last["seconds"],
    }


def markdown(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        "## Across two clocks: a ring between two streams against an aggregate",
        "",
        "How measured: `python bench/aggregate_drift.py` (one run of "
        f"{results[0]['seconds'] / 60:g} minutes per row). Input copied to output "
        "across two devices' clocks, (a) through two streams and a ring buffer (what "
        "sounddevice/PortAudio users build; `duplexio feedback`), (b) through one "
        "duplex stream on `dio.aggregate()` (`duplexio feedback --aggregate`). "
        "*Delay* is input to output through the buffering (device latencies, the "
        "ring's fill; the aggregate's round trip and its loop's error), in frames at "
        f"{RATE} Hz, sampled twice a second. Drift: the input clock against the "
        "output's, from the two streams' timestamps (a) or the aggregate's loop (b), "
        "median of the second half.",
        "",
        "| devices | way | delay at start | at end | range | underruns | overruns | drift ppm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for mode, label in MODES.items():
            s = summary(result["modes"][mode])
            drift = f"{s['drift']:+.2f}" if s["drift"] is not None else "-"
            lines.append(
                f"| {result['devices']} | {label} | {s['first']:.1f} | {s['last']:.1f} | "
                f"{s['low']:.1f}..{s['high']:.1f} | {s['underruns']} | {s['overruns']} | "
                f"{drift} |"
            )
    lines += ["", "![delay over time](img/aggregate_drift.png)", ""]
    return "\n".join(lines) + "\n"


def plot(results: Sequence[dict[str, Any]], path: Path) -> str:
    """Delay over time, one panel per pair; '' or why there is no plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed"
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 3.2 * len(results)), squeeze=False)
    for ax, result in zip(axes[:, 0], results, strict=True):
        for mode, label in MODES.items():
            samples = result["modes"][mode]["samples"]
            t = [s["seconds"] / 60 for s in samples]
            ax.plot(t, [s["delay_frames"] for s in samples], label=label)
        ax.set_title(result["devices"], fontsize=10)
        ax.set_xlabel("minutes")
        ax.set_ylabel(f"delay (frames at {RATE} Hz)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=[*PAIRS, "both"], default="both")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    pairs = PAIRS if args.pair == "both" else (args.pair,)
    for pair in pairs:
        if pair == "servers" and (servers.jack_missing() or servers.pulse_missing()):
            print(f"  servers: not run: {servers.jack_missing() or servers.pulse_missing()}")
            continue
        result = run_pair(pair, args.seconds)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"aggregate_drift_{pair}.json").write_text(json.dumps(result, indent=1))
    found = [args.out / f"aggregate_drift_{pair}.json" for pair in PAIRS]
    if all(p.exists() for p in found):
        results = [json.loads(p.read_text()) for p in found]
        text = markdown(results)
        why = plot(results, args.docs.parent / "img" / "aggregate_drift.png")
        if why:
            text += f"\n({why})\n"
        publish(args.out, args.docs, "aggregate_drift", [summary(r["modes"][m]) | {
            "pair": r["pair"], "mode": m} for r in results for m in MODES], text)  # fmt: skip
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
