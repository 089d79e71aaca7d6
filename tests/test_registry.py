"""One host registry: a host is its folder (which declares itself in host.json) and
one line in `HostId`; the build, the registry, the cross-check and the tests read
the folder's declaration."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import duplexio as dio
from duplexio.declarations import HOSTS, declared_hosts

PACKAGE = HOSTS.parent
BUILD = PACKAGE / "_engine" / "build.py"

#: A whole host in one file: one output device that lists a configuration and
#: refuses to open (enough for the registry, the table and default configs).
MINIMAL = """
from __future__ import annotations

from duplexio.config import SupportedBufferSize, SupportedStreamConfigRange
from duplexio.contract import Backend, CData, StreamParams
from duplexio.errors import Error, ErrorKind
from duplexio.formats import SampleFormat
from duplexio.host import Device, DeviceDescription, DeviceId, Host, HostId

HOST = HostId("minimal")


def is_available() -> bool:
    return True


def open_host() -> Host:
    return MinimalHost()


class MinimalDevice(Device):
    id = DeviceId(HOST, "out")
    description = DeviceDescription(name="Minimal out", driver="minimal", direction="output")

    def supported_input_configs(self) -> list[SupportedStreamConfigRange]:
        return []

    def supported_output_configs(self) -> list[SupportedStreamConfigRange]:
        buffers = SupportedBufferSize.range(64, 1024)
        return [SupportedStreamConfigRange(1, 2, 48000, 48000, buffers, SampleFormat.F32)]

    def _default_frames(self, sample_rate: int) -> int:
        return 256

    def _open_backend(self, engine: CData, params: StreamParams) -> Backend:
        raise Error(ErrorKind.DEVICE_NOT_AVAILABLE, "a minimal host opens nothing")


class MinimalHost(Host):
    id = HOST
    name = "Minimal"

    def devices(self) -> list[Device]:
        return [MinimalDevice()]
"""

#: Its C: one function Python calls, in the library with everything else.
MINIMAL_C = """
#include "engine.h"
#include "minimal_api.h"

int da_minimal_answer(void) { return 42; }
"""
MINIMAL_API = "DA_EXPORT int da_minimal_answer(void);\n"

CHECK = """
import json, runpy, sys
import duplexio as dio
from duplexio._engine import lib
from duplexio.declarations import declared_hosts
host = dio.host_from_id("minimal")
build = runpy.run_path(sys.argv[1])
print(json.dumps({
    "declared": [d.name for d in declared_hosts()],
    "available": [h.value for h in dio.available_hosts()],
    "devices": [str(d.id) for d in host.devices()],
    "table": "minimal:out" in str(dio.query_devices()),
    "default": str(host.devices()[0].default_output_config()),
    "answer": lib.da_minimal_answer(),
    "linux": [p.parent.name for p in build["plan"]("linux").sources if "hosts" in p.parts],
    "win32": [p.parent.name for p in build["plan"]("win32").sources if "hosts" in p.parts],
}))
"""


def test_every_host_folder_declares_itself() -> None:
    declared = declared_hosts()
    assert [d.name for d in declared] == [h.value for h in dio.HostId if h.value in
                                          {d.name for d in declared}]  # fmt: skip
    assert {d.name for d in declared} == {h.value for h in dio.HostId}
    assert sum(d.fallback for d in declared) == 1
    for d in declared:
        assert (d.folder / "__init__.py").is_file(), d.name


def test_the_build_builds_what_the_folders_declare() -> None:
    plan = runpy.run_path(str(BUILD))["plan"]
    for platform in ("linux", "darwin", "win32"):
        built = {p.parent.name for p in plan(platform).sources if "hosts" in p.parts}
        with_c = {d.name for d in declared_hosts() if list(d.folder.glob("*.c"))}
        expected = {d.name for d in declared_hosts() if d.builds_on(platform)} & with_c
        if platform == "linux":
            # A host whose headers are missing is left out, and says so.
            expected -= {d.name for d in declared_hosts() if d.pkg_config} - built
        assert built == expected, platform


def test_a_bad_declaration_is_said_at_once(tmp_path: Path) -> None:
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "host.json").write_text(json.dumps({"preference": 1, "colour": "red"}))
    with pytest.raises(ValueError, match="colour"):
        declared_hosts(tmp_path)


@pytest.mark.skipif(sys.platform != "linux", reason="copies the built Linux package")
def test_a_new_host_is_its_folder_and_one_line(tmp_path: Path) -> None:
    """A copy of the package, plus a minimal host's folder (Python, C, host.json)
    and its HostId line, built: the registry lists it in its declared order, the
    device table shows it, its C is in the library and typed in the stub, the
    build leaves it out where its folder says it does not run; nothing else
    was touched."""
    tree = tmp_path / "duplexio"
    shutil.copytree(PACKAGE, tree, ignore=shutil.ignore_patterns("__pycache__"))
    folder = tree / "hosts" / "minimal"
    folder.mkdir()
    (folder / "__init__.py").write_text(MINIMAL)
    (folder / "host.json").write_text(json.dumps({"preference": 55, "platforms": ["linux"]}))
    (folder / "minimal.c").write_text(MINIMAL_C)
    (folder / "minimal_api.h").write_text(MINIMAL_API)
    ids_py = tree / "ids.py"
    text = ids_py.read_text()
    line = '    VIRTUAL = "virtual"\n'
    assert text.count(line) == 1
    ids_py.write_text(text.replace(line, line + '    MINIMAL = "minimal"\n'))

    for generated in ("_native.py", "_native.pyi", "libduplexio.so"):
        (tree / "_engine" / generated).unlink(missing_ok=True)
    built = subprocess.run(
        [sys.executable, str(tree / "_engine" / "build.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    stub = (tree / "_engine" / "_native.pyi").read_text()
    assert "def da_minimal_answer(self, /) -> int: ..." in stub
    ran = subprocess.run(
        [sys.executable, "-c", CHECK, str(tree / "_engine" / "build.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    found = json.loads(ran.stdout.splitlines()[-1])
    assert found["declared"] == ["pipewire", "jack", "pulse", "alsa", "portaudio", "minimal",
                                 "virtual"]  # fmt: skip
    assert "minimal" in found["available"]
    assert found["devices"] == ["minimal:out"] and found["table"]
    assert "sample_rate=48000" in found["default"]
    assert found["answer"] == 42
    # Its folder says Linux: built there, left out elsewhere.
    assert "minimal" in found["linux"] and "minimal" not in found["win32"]
