"""Callbacks that record what a stream reports, for tests."""

from __future__ import annotations

import threading

import duplexaudio as da


class Errors:
    """An ``error_callback`` that keeps every error and signals the first."""

    def __init__(self) -> None:
        self.items: list[da.Error] = []
        self.arrived = threading.Event()

    def __call__(self, err: da.Error) -> None:
        self.items.append(err)
        self.arrived.set()
