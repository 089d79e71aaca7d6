"""The engine's C self-test (tests/c/engine_selftest.c), built with the
system's C compiler and run: the engine and its platform layer with a C
device thread and a C worker, no Python in between. scripts/cross-check
runs the same program built for Windows under wine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "src" / "duplexio" / "_engine"


#: Every file of the engine (the hosts' C aside).
SOURCES = sorted(p.name for p in ENGINE.glob("*.c"))
FLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
#: What the device threads must never call (rt_guard.c counts them).
GUARDED = ("malloc", "calloc", "realloc", "free", "pthread_mutex_lock")


def build_and_run(tmp_path: Path, *extra: str) -> str:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    sources = [ROOT / "tests" / "c" / "engine_selftest.c"] + [ENGINE / name for name in SOURCES]
    exe = tmp_path / "selftest"
    built = subprocess.run(
        [compiler, *FLAGS, f"-I{ENGINE}", "-o", str(exe), *map(str, sources), *extra,
         "-lm", "-lpthread"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "all checks passed" in ran.stdout
    return ran.stdout


def test_the_engine_self_test_passes(tmp_path: Path) -> None:
    build_and_run(tmp_path)


@pytest.mark.skipif(sys.platform != "linux", reason="GNU ld's --wrap")
def test_the_aggregates_device_threads_neither_allocate_nor_lock(tmp_path: Path) -> None:
    """The same self-test with every allocation and mutex lock the engine's
    objects make counted on the two device threads of its aggregate check
    (which fails on any): three seconds of a 500 ppm drift, resampled."""
    wrap = ",".join(f"--wrap={name}" for name in GUARDED)
    build_and_run(
        tmp_path, "-DDA_RT_GUARD", str(ROOT / "tests" / "c" / "rt_guard.c"), f"-Wl,{wrap}"
    )


def test_the_self_test_passes_where_the_c_library_lacks_sem_clockwait(tmp_path: Path) -> None:
    """glibc before 2.30 has no sem_clockwait (the manylinux wheel supports such
    systems): the timed waits then use sem_timedwait, checked by the same program."""
    build_and_run(tmp_path, "-DDA_WITHOUT_CLOCKWAIT")
