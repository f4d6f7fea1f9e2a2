"""Imports go downward only: the sans-I/O protocol packages load no socket, thread or process code.

The layers (DESIGN.md, issue 7): lessons and cli -> net (runs cores over sockets) and peers (real
implementations we start) -> protocol packages (tcp, tls, pki, later ssh) -> wire and errors.  A
protocol package that imports ``socket`` or ``threading``, or reaches up into ``net`` or ``peers``,
stops being testable byte for byte and drags I/O into every notebook that only decodes.

Two checks, because each misses what the other sees:

* **at run time**, in a fresh interpreter: import every module of the protocol packages and look at
  ``sys.modules``.  ``cryptography`` itself loads some of these modules (``socket``, through its own
  imports), so the baseline is measured first in the same interpreter, by importing every
  ``cryptography`` module the protocol packages name; only what our code adds on top counts;
* **statically**, on the source: no ``import`` of a forbidden module anywhere in a protocol module,
  not even inside a function (a lazy import still puts a socket in a sans-I/O core).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "handshake_lib"

SANS_IO_PACKAGES = ["tcp", "tls", "pki", "ssh"]  # ssh does not exist yet; it is checked once it does
SANS_IO_MODULES = ["wire", "errors", "hostnames", "tables"]

# Never loaded by importing a protocol package (beyond what cryptography loads by itself).
FORBIDDEN_AT_RUN_TIME = [
    "socket",
    "selectors",
    "ssl",
    "threading",
    "subprocess",
    "asyncio",
    "handshake_lib.net",
    "handshake_lib.peers",
]
# Never imported by a protocol module, at the top or inside a function.
FORBIDDEN_IMPORTS = {"socket", "selectors", "ssl", "threading", "subprocess", "asyncio", "multiprocessing"}
UPPER_LAYERS = {"net", "peers", "lessons", "cli", "viz", "grading"}  # handshake_lib.<these>

# (module, imported name) -> why it is allowed.  Keep this short; every entry is a debt.
ALLOWED = {
    ("handshake_lib/tls/verify.py", "ssl"): "finds the system CA bundle OpenSSL uses, only when no cafile is given",
}


def protocol_sources() -> list[Path]:
    sources = [LIBRARY / f"{name}.py" for name in SANS_IO_MODULES]
    for package in SANS_IO_PACKAGES:
        sources += sorted((LIBRARY / package).rglob("*.py"))
    return sources


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in ``path``, wherever it is."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # "from .. import net": the names are modules
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def test_protocol_modules_import_no_socket_thread_or_upper_layer_code() -> None:
    sources = protocol_sources()
    assert len(sources) > 20, "the scan found too few modules: the paths are wrong"
    offences = []
    for path in sources:
        relative = path.relative_to(ROOT).as_posix()
        for line, name in imported_names(path):
            top = name.split(".")[0]
            layer = name.split(".")[1] if top == "handshake_lib" and "." in name else None
            if (top in FORBIDDEN_IMPORTS or layer in UPPER_LAYERS) and (relative, top) not in ALLOWED:
                offences.append(f"{relative}:{line} imports {name}")
    assert not offences, "sans-I/O modules must import downward only:\n" + "\n".join(offences)


def test_lessons_are_layout_and_net_does_not_reach_up_into_peers() -> None:
    """Lesson modules arrange library results (no primitives, no sockets, about 400 lines at most); net runs
    cores over sockets and knows nothing of the real peers that build on it."""
    offences = []
    lessons = sorted((LIBRARY / "lessons").glob("*.py"))
    assert len(lessons) >= 7, "the scan found too few lesson modules: the path is wrong"
    for path in lessons:
        relative = path.relative_to(ROOT).as_posix()
        for line, name in imported_names(path):
            if name.split(".")[0] in ({"cryptography"} | FORBIDDEN_IMPORTS):
                offences.append(f"{relative}:{line} imports {name}")
        length = len(path.read_text().splitlines())
        if length > 420:
            offences.append(f"{relative} has {length} lines: move what is not layout into the library")
    for path in sorted((LIBRARY / "net").rglob("*.py")):
        for line, name in imported_names(path):
            if name.startswith("handshake_lib.peers"):
                offences.append(f"{path.relative_to(ROOT).as_posix()}:{line} imports {name}")
    assert not offences, "\n".join(offences)


def test_the_static_check_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    package = tmp_path / "handshake_lib" / "tls"
    package.mkdir(parents=True)
    sample = package / "sample.py"
    sample.write_text("from .. import net\nfrom ..peers.openssl import x\n\ndef f():\n    import threading\n")
    names = {name for _, name in imported_names(sample, tmp_path)}
    assert names == {"handshake_lib.net", "handshake_lib.peers.openssl", "threading"}


# Runs in a fresh interpreter: the baseline (cryptography alone), then every protocol module.
_PROBE = """
import importlib, json, pkgutil, sys
baseline_modules, packages, forbidden = json.loads(sys.argv[1])
for name in baseline_modules:
    importlib.import_module(name)
baseline = {name for name in forbidden if name in sys.modules}
imported = []
for name in packages:
    module = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
added = sorted(name for name in forbidden if name in sys.modules and name not in baseline)
print(json.dumps({"baseline": sorted(baseline), "added": added, "imported": imported}))
"""


def cryptography_modules(sources: list[Path]) -> list[str]:
    return sorted({name for path in sources for _, name in imported_names(path) if name.startswith("cryptography")})


def run_probe(packages: list[str]) -> dict[str, list[str]]:
    sources = protocol_sources()
    arguments = json.dumps([cryptography_modules(sources), packages, FORBIDDEN_AT_RUN_TIME])
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, arguments], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_importing_protocol_packages_loads_no_socket_or_thread_code() -> None:
    packages = [f"handshake_lib.{name}" for name in SANS_IO_MODULES]
    packages += [f"handshake_lib.{name}" for name in SANS_IO_PACKAGES if (LIBRARY / name).is_dir()]
    result = run_probe(packages)
    # The probe really imported the record layer and the client (not just the package __init__s).
    assert {"handshake_lib.tls.record", "handshake_lib.tls.client", "handshake_lib.tcp.segment"} <= set(
        result["imported"]
    )
    assert result["added"] == [], (
        f"importing the sans-I/O packages loaded {result['added']} (cryptography alone loads {result['baseline']})"
    )


@pytest.mark.parametrize("upper", ["handshake_lib.net", "handshake_lib.peers"])
def test_the_probe_notices_an_upper_layer(upper: str) -> None:
    # The same probe, pointed at a package that does use sockets and threads, must see them.
    result = run_probe([upper])
    assert "threading" in result["added"] and upper in result["added"]
