"""Test signals and what is measured of them, shared by the virtual and real-host tests."""

from __future__ import annotations

import numpy as np


def tone(frames: int, rate: int, hz: float = 1000.0, channels: int = 1) -> np.ndarray:
    t = np.arange(frames) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * hz * t))[:, None], channels, axis=1)


def frequency(x: np.ndarray, rate: int) -> float:
    """The strongest frequency in ``x`` (Hz), interpolated between FFT bins."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x))
