"""Callbacks that record what a stream reports, for tests."""

from __future__ import annotations

import threading

import duplexio as dio


class Errors:
    """An ``error_callback`` that keeps every error and signals the first."""

    def __init__(self) -> None:
        self.items: list[dio.Error] = []
        self.arrived = threading.Event()

    def __call__(self, err: dio.Error) -> None:
        self.items.append(err)
        self.arrived.set()
