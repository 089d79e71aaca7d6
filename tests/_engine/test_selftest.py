"""The engine's C self-test (tests/c/engine_selftest.c), built with the
system's C compiler and run: the engine and its platform layer with a C
device thread and a C worker, no Python in between. scripts/cross-check
runs the same program built for Windows under wine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "src" / "duplexaudio" / "_engine"


def test_the_engine_self_test_passes(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    sources = [ROOT / "tests" / "c" / "engine_selftest.c"] + [
        ENGINE / name
        for name in ("engine.c", "ring.c", "samples.c", "platform_posix.c", "platform_win32.c")
    ]
    exe = tmp_path / "selftest"
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    built = subprocess.run(
        [compiler, *flags, f"-I{ENGINE}", "-o", str(exe), *map(str, sources), "-lm", "-lpthread"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "all checks passed" in ran.stdout
