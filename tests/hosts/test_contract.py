"""The host contract (contract.py, and the hooks in host.py) and the layout rules it states."""

from __future__ import annotations

import ast
import errno
import importlib
import inspect
import re
from pathlib import Path

import pytest

import duplexio as dio
from duplexio import contract
from duplexio._engine import ffi
from duplexio.contract import HandleBackend, check
from duplexio.host import Device, DeviceHooks, Host, HostHooks

HOSTS = Path(contract.__file__).parent / "hosts"
HOST_NAMES = sorted(p.name for p in HOSTS.iterdir() if (p / "__init__.py").exists())
# What a host's C may include of ours: its own folder, the engine's interface, the
# converter and the interpolator; never the engine's own units (engine_internal.h,
# aggregate.h, ring.h).
ENGINE_HEADERS = {"engine.h", "engine_api.h", "samples.h", "resample.h"}


def test_every_registered_host_has_a_folder_of_its_own() -> None:
    assert sorted(h.value for h in dio.HostId) == HOST_NAMES


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of the modules a Python file imports (relative ones resolved),
    wherever the import is: in a function, or under ``if TYPE_CHECKING``."""
    package = package or "duplexio.hosts." + path.parent.name
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


#: The package's layers, top to bottom (docs/architecture.md): a module imports
#: only from its own layer or lower ones. ``duplexio/__init__.py``, the facade,
#: re-exports from every layer and is imported by none.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "__main__", "sounddevice", "pyaudio"),
    ("files", "measure", "numbering"),
    ("aggregate",),
    ("devices",),
    ("hosts",),
    ("host",),
    ("stream",),
    ("blocking",),
    ("contract",),
    ("watch", "ids"),
    ("_engine",),
    ("config", "formats", "errors", "timing", "stats", "declarations", "_validate", "_version"),
]
PACKAGE = HOSTS.parent


def package_modules() -> dict[str, Path]:
    """Every module of the package by its name below ``duplexio``, the facade aside."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if parts and "__pycache__" not in parts and parts != ("_engine", "_native"):
            found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    return next(i for i, layer in enumerate(LAYERS) if head in layer)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (the nearest that exists)."""
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = "duplexio." + (name if is_package else name.rpartition(".")[0])
        edges = set()
        for imported in imported_modules(path, package.rstrip(".")):
            if imported == "duplexio":
                edges.add("")  # the facade
            elif imported.startswith("duplexio."):
                target = imported.removeprefix("duplexio.")
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def test_every_module_belongs_to_a_layer() -> None:
    for module in package_modules():
        layer_of(module)  # StopIteration: a module the layers do not name


def test_imports_run_down_the_layers_only() -> None:
    """Nothing below ``hosts/`` imports from it, ``host`` and ``stream`` never reach up to
    the devices or the aggregate, nothing imports the facade; type-only imports count."""
    for module, edges in import_graph().items():
        for target in edges:
            assert target, f"{module} imports the duplexio package itself"
            assert layer_of(target) >= layer_of(module), f"{module} imports {target}, a layer up"


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            circle = " -> ".join([*path[path.index(module) :], module])
            raise AssertionError(f"import circle: {circle}")
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_benchmarks_use_the_shared_support_not_the_tests() -> None:
    """Private servers and the GIL hog live in support/, which both import."""
    root = PACKAGE.parents[1]
    for path in [*(root / "bench").glob("*.py"), *(root / "support").glob("*.py")]:
        for module in imported_modules(path, "bench"):
            assert module != "tests" and not module.startswith("tests."), f"{path.name}: {module}"


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
    for hooks in (DeviceHooks, HostHooks, contract.Backend):
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
