"""Builds the engine, a plain C shared library, into the package (see _engine/build.py).

The library includes no Python header and Python opens it with cffi's ABI
mode, so a wheel is tagged ``py3-none-<platform>``: one per platform for
every CPython and PyPy. Everything else is in pyproject.toml.

``DUPLEXIO_PREBUILT_ENGINE=FOLDER`` packs an engine built elsewhere instead
(a tree of package files: ``duplexio/_engine/...``, and on macOS and Windows
the bundled PortAudio); ``scripts/build-wheels`` builds every platform's so.
"""

from __future__ import annotations

import os
import runpy
import shutil
from pathlib import Path

from setuptools import Command, Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build import build

ROOT = Path(__file__).resolve().parent
BUILD_SCRIPT = ROOT / "src" / "duplexio" / "_engine" / "build.py"


class BuildEngine(Command):
    """Compile the engine library and emit its ABI-mode module into the package."""

    description = "build duplexio's engine (a C shared library) and its cffi module"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False
        self.outputs: list[str] = []

    def finalize_options(self) -> None:
        self.set_undefined_options("build", ("build_lib", "build_lib"))

    def run(self) -> None:
        prebuilt = os.environ.get("DUPLEXIO_PREBUILT_ENGINE")
        if prebuilt and not self.editable_mode:
            for source in sorted(p for p in Path(prebuilt).rglob("*") if p.is_file()):
                target = Path(self.build_lib, source.relative_to(prebuilt))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                self.outputs.append(str(target))
            return
        engine = runpy.run_path(str(BUILD_SCRIPT))
        # An editable install imports from src/: the engine is built beside its sources.
        folder = BUILD_SCRIPT.parent if self.editable_mode else Path(self.build_lib, "duplexio", "_engine")
        folder.mkdir(parents=True, exist_ok=True)
        module = engine["emit_module"](folder)
        library = engine["compile_library"](folder)
        self.outputs = [str(module), str(library)]

    def get_outputs(self) -> list[str]:
        return [] if self.editable_mode else self.outputs

    def get_source_files(self) -> list[str]:
        return []

    def get_output_mapping(self) -> dict[str, str]:
        return {}


class BuildWithEngine(build):
    sub_commands = [*build.sub_commands, ("build_engine", None)]


class PlatformWheel(bdist_wheel):
    """A wheel for one platform and any Python 3: the library calls no Python API."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        return "py3", "none", super().get_tag()[2]


class EngineDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # a platform wheel, its files in platlib


setup(
    distclass=EngineDistribution,
    cmdclass={"build": BuildWithEngine, "build_engine": BuildEngine, "bdist_wheel": PlatformWheel},
)
