#!/usr/bin/env python3
"""Show the devices, the host APIs and the defaults.

Written for python-sounddevice; duplexio runs it with the import changed.
"""

import sounddevice as sd

print(sd.query_devices())
for api in sd.query_hostapis():
    print(
        f"{api['name']}: {len(api['devices'])} devices, "
        f"default in {api['default_input_device']}, out {api['default_output_device']}"
    )
print("default devices:", sd.default.device)
print("default input:", sd.query_devices(kind="input")["name"])
print("default output:", sd.query_devices(kind="output")["name"])
