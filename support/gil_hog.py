"""A C function that holds the GIL, for tests and benchmarks of GIL stalls.

Real programs stall the GIL in C extensions that do long work without
releasing it. This builds the smallest such extension on the fly: a busy
loop in C, loaded with :class:`ctypes.PyDLL`, whose calls keep the GIL
(ctypes.CDLL and cffi release it). :class:`GilHog` calls it from a thread,
``hold`` seconds out of every ``every`` seconds.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType

_SOURCE = r"""
#include <time.h>
static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
/* Spin for ns nanoseconds: CPU-bound, like real extension work. */
void spin_ns(long long ns) {
    long long until = now_ns() + ns;
    while (now_ns() < until) {
    }
}
"""

_lib: ctypes.PyDLL | None = None
_lib_lock = threading.Lock()


class CompilerMissing(RuntimeError):
    """No C compiler to build the GIL-holding extension."""


def _spin_library() -> ctypes.PyDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            cc = shutil.which("cc") or shutil.which("gcc")
            if cc is None:
                raise CompilerMissing("no C compiler (cc) to build the GIL-holding extension")
            folder = Path(tempfile.mkdtemp(prefix="dio-gil-hog-"))
            (folder / "spin.c").write_text(_SOURCE)
            subprocess.run(
                [
                    cc,
                    "-O1",
                    "-shared",
                    "-fPIC",
                    "-o",
                    str(folder / "spin.so"),
                    str(folder / "spin.c"),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            lib = ctypes.PyDLL(str(folder / "spin.so"))
            shutil.rmtree(folder)  # a loaded library needs no file on Linux
            lib.spin_ns.argtypes = [ctypes.c_longlong]
            lib.spin_ns.restype = None
            _lib = lib
        return _lib


def hold_gil(seconds: float) -> None:
    """Hold the GIL for ``seconds`` in C (a busy loop); nothing else in Python runs meanwhile."""
    _spin_library().spin_ns(int(seconds * 1e9))


class GilHog:
    """A thread holding the GIL ``hold`` s out of every ``every`` s while in a ``with`` block.

    Attributes
    ----------
    holds
        How many times the GIL was held so far.
    """

    def __init__(self, hold: float = 0.05, every: float = 0.1) -> None:
        _spin_library()  # build before the timed part starts
        self.hold = hold
        self.every = every
        self.holds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gil-hog", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every - self.hold):
            hold_gil(self.hold)
            self.holds += 1

    def __enter__(self) -> GilHog:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(10)
