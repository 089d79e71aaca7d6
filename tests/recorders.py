"""Callbacks that record what a stream reports, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import duplexio as dio


class Errors:
    """An ``error_callback`` that keeps every error and signals the first."""

    def __init__(self) -> None:
        self.items: list[dio.Error] = []
        self.arrived = threading.Event()

    def __call__(self, err: dio.Error) -> None:
        self.items.append(err)
        self.arrived.set()


def wait_for(check: Callable[[], bool], seconds: float = 20) -> bool:
    """Poll `check` until it is true (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
