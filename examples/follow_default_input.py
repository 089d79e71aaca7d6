"""Follow the default input: when the user picks another microphone, record from it.

A device watcher tells the program when the host's default input moves; the
program then closes its stream and opens one on the new default. (On
PulseAudio and PipeWire a stream on ``@DEFAULT_SOURCE@`` follows by itself;
this works on every host that reports its defaults.) Four times a second
it prints the input's peak level and where it came from.

    python examples/follow_default_input.py -s 60
"""

from __future__ import annotations

import argparse
import math
import threading

import numpy as np

import duplexio as dio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--seconds", type=float, default=10.0, help="how long (10)")
    args = parser.parse_args(argv)

    host = dio.default_host()
    moved = threading.Event()

    def on_event(event: dio.DeviceEvent) -> None:
        if event.kind is dio.DeviceEventKind.DEFAULT_CHANGED and event.direction == "input":
            print(f"the default input is now {event.device_id}")
            moved.set()

    with host.watch_devices(on_event):
        left = args.seconds
        while left > 0:
            moved.clear()
            device = host.default_input_device()
            if device is None:
                print("no input device; waiting for one")
                moved.wait(min(left, 1.0))
                left -= 1.0
                continue
            config = device.default_input_config().config()
            print(f"recording from {device.id}")
            with device.build_input_stream(config) as stream:
                while left > 0 and not moved.is_set():
                    data, status = stream.read(config.sample_rate // 4)
                    left -= 0.25
                    peak = float(np.max(np.abs(data))) if data.size else 0.0
                    db = 20 * math.log10(peak) if peak > 0 else -120.0
                    print(
                        f"{db:7.1f} dBFS from {stream.device}{'  (lost input)' if status else ''}"
                    )


if __name__ == "__main__":
    main()
