"""The host contract (hosts/_contract.py) and the layout rules it states."""

from __future__ import annotations

import ast
import errno
import importlib
import inspect
import re
from pathlib import Path

import pytest

import duplexio as dio
from duplexio._engine import ffi
from duplexio.host import Device, Host
from duplexio.hosts import _contract
from duplexio.hosts._contract import DeviceHooks, HandleBackend, HostHooks, check

HOSTS = Path(_contract.__file__).parent
HOST_NAMES = sorted(p.name for p in HOSTS.iterdir() if (p / "__init__.py").exists())
# What a host's C may include of ours: its own folder, and the engine.
ENGINE_HEADERS = {"engine.h", "engine_api.h"}


def test_every_registered_host_has_a_folder_of_its_own() -> None:
    assert sorted(h.value for h in dio.HostId) == HOST_NAMES


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a Python file imports (relative ones resolved)."""
    package = "duplexio.hosts." + path.parent.name
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


@pytest.mark.parametrize("host", HOST_NAMES)
def test_no_host_imports_another(host: str) -> None:
    others = {f"duplexio.hosts.{h}" for h in HOST_NAMES if h != host}
    for path in (HOSTS / host).rglob("*.py"):
        for module in imported_modules(path):
            assert not any(module == o or module.startswith(o + ".") for o in others), (
                f"{path.relative_to(HOSTS)} imports {module}"
            )


@pytest.mark.parametrize("host", HOST_NAMES)
def test_no_host_c_includes_another_hosts_c(host: str) -> None:
    folder = HOSTS / host
    own = {p.name for p in folder.iterdir()}
    for path in [*folder.glob("*.c"), *folder.glob("*.h")]:
        for name in re.findall(r'#include\s+"([^"]+)"', path.read_text()):
            assert name in own | ENGINE_HEADERS, f"{path.name} includes {name}"


def c_sources() -> list[Path]:
    return sorted(HOSTS.glob("*/*.c"))


@pytest.mark.parametrize("path", c_sources(), ids=lambda p: p.name)
def test_no_host_c_keeps_a_message_in_a_file_scope_buffer(path: Path) -> None:
    # Messages go into the caller's buffer (the C boundary's one convention).
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    file_scope = [line for line in text.splitlines() if not line.startswith((" ", "\t", "}"))]
    buffers = [line for line in file_scope if re.match(r"(static\s+)?char\s+\w+\s*\[", line)]
    assert not buffers, f"{path.name}: {buffers}"


@pytest.mark.parametrize("path", c_sources(), ids=lambda p: p.name)
def test_no_host_c_converts_samples_itself(path: Path) -> None:
    # One converter (the engine's samples.c), one rounding and NaN rule.
    text = path.read_text()
    assert not re.search(r"\b(lrintf?|nearbyintf?|rintf?)\s*\(", text), path.name


def host_classes(base: type) -> list[type]:
    found = []
    for host in HOST_NAMES:
        module = importlib.import_module(f"duplexio.hosts.{host}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, base) and cls is not base and cls.__module__ == module.__name__
        ]
    return found


@pytest.mark.parametrize(
    ("base", "hooks"),
    [(Device, DeviceHooks), (Host, HostHooks)],
    ids=["Device", "Host"],
)
def test_hosts_override_only_declared_hooks(base: type, hooks: type) -> None:
    classes = host_classes(base)
    assert classes
    for cls in classes:
        for name in vars(cls):
            private = name.startswith("_") and not name.startswith("__")
            if private and hasattr(base, name):
                assert name in vars(hooks), f"{cls.__name__}.{name} is not a declared hook"


def test_every_hook_says_what_it_must_guarantee() -> None:
    for hooks in (DeviceHooks, HostHooks, _contract.Backend):
        for name, member in vars(hooks).items():
            if callable(member) or isinstance(member, property):
                if name.startswith("__"):
                    continue
                assert inspect.getdoc(member), f"{hooks.__name__}.{name}"


def test_handle_backends_are_what_the_hosts_build_on() -> None:
    backends = host_classes(HandleBackend)
    assert {cls.__module__.rsplit(".", 1)[1] for cls in backends} == set(HOST_NAMES)


# -- the C boundary -----------------------------------------------------------------


def message(text: str) -> object:
    return ffi.new("char[]", text.encode())


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOENT, dio.ErrorKind.DEVICE_NOT_AVAILABLE),
        (errno.ECONNREFUSED, dio.ErrorKind.DEVICE_NOT_AVAILABLE),
        (errno.EBUSY, dio.ErrorKind.DEVICE_BUSY),
        (errno.EACCES, dio.ErrorKind.PERMISSION_DENIED),
        (errno.EINVAL, dio.ErrorKind.UNSUPPORTED_CONFIG),
        (errno.ETIMEDOUT, dio.ErrorKind.TIMED_OUT),
        (errno.EIO, dio.ErrorKind.BACKEND_ERROR),
    ],
)
def test_check_turns_a_negative_errno_into_its_kind_with_the_hosts_message(
    code: int, kind: dio.ErrorKind
) -> None:
    with pytest.raises(dio.Error) as raised:
        check(-code, message("the server said no"), context="device 'x:y'")
    assert raised.value.kind is kind
    assert raised.value.message == "device 'x:y': the server said no"
    assert raised.value.code == -code


def test_check_passes_counts_through_and_names_a_code_without_message() -> None:
    assert check(7, message(""), context="c") == 7
    with pytest.raises(dio.Error, match="error -5"):
        check(-errno.EIO, message(""), context="c")
    with pytest.raises(dio.Error) as raised:
        check(-errno.EIO, message(""), context="c", default=dio.ErrorKind.DEVICE_NOT_AVAILABLE)
    assert raised.value.kind is dio.ErrorKind.DEVICE_NOT_AVAILABLE
