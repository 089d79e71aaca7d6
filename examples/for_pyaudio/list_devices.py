#!/usr/bin/env python3
"""List the host APIs and devices.

Written for PyAudio; duplexio runs it with the import changed.
"""

import pyaudio

p = pyaudio.PyAudio()
for i in range(p.get_host_api_count()):
    api = p.get_host_api_info_by_index(i)
    print(f"host API {i}: {api['name']}, {api['deviceCount']} devices")
    for j in range(api["deviceCount"]):
        info = p.get_device_info_by_host_api_device_index(i, j)
        print(
            f"  {info['index']}: {info['name']} ({info['maxInputChannels']} in, "
            f"{info['maxOutputChannels']} out, {info['defaultSampleRate']:.0f} Hz)"
        )
print("default input:", p.get_default_input_device_info()["name"])
print("default output:", p.get_default_output_device_info()["name"])
p.terminate()
