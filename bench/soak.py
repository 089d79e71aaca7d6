"""Soak: duplex streams opened, run, faulted and closed in a loop; does anything leak?

    python bench/soak.py [--minutes 30] [--out bench/results] [--docs docs/benchmarks.md]

One process, for ``--minutes``: round after round of short duplex streams on
the virtual host, on a private jackd and on a private PipeWire (both started
by the script), each ended a different way: closed while running, its
callback raising, its device disconnected (virtual), stopped and restarted,
a playrec program run to its end, a blocking stream written and read, an
aggregate of two virtual devices on two clocks (virtual), left to the garbage
collector. Every minute it samples the process's resident memory, its threads
(all, and duplexio's) and its open fds, and counts the rounds and the
errors each fault delivered (and any a stream life raised itself, such as a
server refusing a new client, by scenario). A leak shows as a column that
climbs; the figures go to ``soak.json`` / ``soak.md`` in ``--out`` and to the
soak section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _docs import publish  # noqa: E402

from support import servers  # noqa: E402

RATE = 48000


def sample(started: float, rounds: int, errors: Counter[str]) -> dict[str, Any]:
    """The process right now."""
    rss_kib = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return {
        "minute": round((time.monotonic() - started) / 60, 1),
        "rounds": rounds,
        "rss_mib": round(rss_kib / 1024, 1),
        "threads": len(os.listdir("/proc/self/task")),
        "duplexio_threads": sum(t.name.startswith("duplexio") for t in threading.enumerate()),
        "fds": len(os.listdir("/proc/self/fd")),
        "errors": dict(errors),
    }


def scenarios(dio: Any, real: dict[str, Any]) -> list[tuple[str, Callable[[Counter[str]], None]]]:
    """Each a short stream life that ends one way; they note the errors they got."""
    host = dio.host_from_id("virtual")
    names = iter(range(10**9))

    def config(frames: int = 128) -> Any:
        return dio.DuplexStreamConfig(2, 2, RATE, dio.BufferSize.fixed(frames))

    def copy(i: Any, o: Any, info: Any) -> None:
        o[:] = i

    def run_then_close(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            with device.build_duplex_stream(config(), copy) as s:
                s.wait(0.2)

        return go

    def callback_raises(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            def fail(i: Any, o: Any, info: Any) -> None:
                raise RuntimeError("soak")

            s = device.build_duplex_stream(config(), fail, lambda e: None)
            s.start()
            try:
                s.wait(5)
            except dio.Error as err:
                errors[err.kind.name] += 1
            s.close()

        return go

    def disconnected(errors: Counter[str]) -> None:
        device = host.add_loopback(f"soak-{next(names)}")
        s = device.build_duplex_stream(config(), copy, lambda e: None)
        s.start()
        time.sleep(0.05)
        device.disconnect()
        try:
            s.wait(5)
        except dio.Error as err:
            errors[err.kind.name] += 1
        s.close()
        host.remove_device(device.id)

    def stop_restart(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            s = device.build_duplex_stream(config(), copy)
            for _ in range(3):
                s.start()
                time.sleep(0.05)
                s.stop()
            s.close()

        return go

    def program(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            dio.playrec(np.zeros((RATE // 10, 2), np.float32), RATE, 2, device)

        return go

    def blocking(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            with device.build_duplex_stream(config()) as s:
                s.write(np.zeros((RATE // 10, 2), np.float32))
                s.start()
                s.read(RATE // 20, timeout=5)

        return go

    def aggregated(errors: Counter[str]) -> None:
        out_dev, in_dev = host.add_cable(f"soak-{next(names)}", input_ppm=100.0)
        try:
            with dio.aggregate(in_dev, out_dev).build_duplex_stream(config(), copy) as s:
                s.wait(0.2)
        finally:
            host.remove_device(out_dev.id)
            host.remove_device(in_dev.id)

    def collected(device: Any) -> Callable[[Counter[str]], None]:
        def go(errors: Counter[str]) -> None:
            s = device.build_duplex_stream(config(), copy)
            s.start()
            time.sleep(0.05)
            del s
            gc.collect()

        return go

    loop = host.device_by_id("virtual:loopback")
    out: list[tuple[str, Callable[[Counter[str]], None]]] = [
        ("virtual: run then close", run_then_close(loop)),
        ("virtual: callback raises", callback_raises(loop)),
        ("virtual: device disconnected", disconnected),
        ("virtual: stop and restart", stop_restart(loop)),
        ("virtual: playrec", program(loop)),
        ("virtual: blocking read/write", blocking(loop)),
        ("virtual: aggregate across a cable", aggregated),
        ("virtual: garbage-collected", collected(loop)),
    ]
    for host_name, device in real.items():  # a server's device: every life but a disconnect
        out += [
            (f"{host_name}: run then close", run_then_close(device)),
            (f"{host_name}: callback raises", callback_raises(device)),
            (f"{host_name}: stop and restart", stop_restart(device)),
            (f"{host_name}: playrec", program(device)),
            (f"{host_name}: blocking read/write", blocking(device)),
            (f"{host_name}: garbage-collected", collected(device)),
        ]
    return out


def soak(minutes: float) -> tuple[list[dict[str, Any]], list[str], str]:
    """Run; the samples, the scenario names, and a note (what could not run)."""
    import duplexio as dio

    notes = []
    real: dict[str, Any] = {}
    with contextlib.ExitStack() as servers_up:
        if reason := servers.jack_missing():
            notes.append(f"jackd scenarios not run: {reason}")
        else:
            jackd = servers.start_jackd(servers.unique_name("dio-soak"), frames=128)
            servers_up.callback(jackd.stop)
            os.environ.update(jackd.env)
            real["jack"] = dio.host_from_id("jack").device_by_id(f"jack:{jackd.name}/loopback")
        if reason := servers.pipewire_missing():
            notes.append(f"PipeWire scenarios not run: {reason}")
        else:
            pipewire = servers.start_pipewire()
            servers_up.callback(pipewire.stop)
            for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
                os.environ[key] = pipewire.env[key]
            real["pipewire"] = dio.host_from_id("pipewire").device_by_id(
                f"pipewire:{pipewire.sink}"
            )
        plan = scenarios(dio, real)
        errors: Counter[str] = Counter()
        for _, go in plan:  # warm-up: libraries loaded, caches filled, before the baseline
            go(errors)
        errors.clear()
        gc.collect()
        started = time.monotonic()
        samples = [sample(started, 0, errors)]
        rounds = 0
        next_sample = started + 60
        while time.monotonic() - started < minutes * 60:
            for name, go in plan:
                try:
                    go(errors)
                except dio.Error as err:  # e.g. jackd refusing a client: counted, not fatal
                    errors[f"{name}: {err.kind.name}"] += 1
            rounds += 1
            if time.monotonic() >= next_sample:
                gc.collect()
                samples.append(sample(started, rounds, errors))
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                next_sample += 60
        if rounds != samples[-1]["rounds"]:  # the last minute's sample may already be it
            gc.collect()
            samples.append(sample(started, rounds, errors))
        return samples, [name for name, _ in plan], "; ".join(notes)


def render(samples: list[dict[str, Any]], plan: list[str], note: str, minutes: float) -> str:
    """The markdown section."""
    first, last = samples[0], samples[-1]
    lines = [
        f"## Soak: streams opened, run, faulted and closed for {minutes:g} minutes\n",
        f"How measured: `python bench/soak.py --minutes {minutes:g}`, one process, "
        f"{last['rounds']} rounds of {len(plan)} stream lives each ({', '.join(plan)}). "
        "Sampled every minute after a garbage collection, the first after one warm-up round. Run "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n",
        (f"{note}\n" if note else ""),
        "| minute | rounds | RSS MiB | threads | duplexio threads | fds |",
        "|---|---|---|---|---|---|",
    ]
    for s in samples:
        lines.append(f"| {s['minute']:g} | {s['rounds']} | {s['rss_mib']:g} | {s['threads']} | "
                     f"{s['duplexio_threads']} | {s['fds']} |")  # fmt: skip
    lines.append(
        f"\nFrom the first sample to the last: RSS {first['rss_mib']:g} → {last['rss_mib']:g} MiB, "
        f"threads {first['threads']} → {last['threads']}, fds {first['fds']} → {last['fds']}. "
        f"Errors the faults delivered: {last['errors']}.\n"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    samples, plan, note = soak(args.minutes)
    md = render(samples, plan, note, args.minutes)
    publish(args.out, args.docs, "soak", {"plan": plan, "samples": samples}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
