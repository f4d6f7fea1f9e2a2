"""Shared test helpers.

``require(name)`` is how a test asks for a system peer (openssl, curl, chromium, sshd, tcpdump).  On a
learner's machine a missing peer skips the test with a reason; in CI (``REQUIRE_PEERS=1``, set by
``.ci/run``) it fails, so that CI can never pass by skipping what it was meant to check.
``require_module(name)`` does the same for a Python module (in place of ``pytest.importorskip``).

Session fixtures for what is slow to make and never changes once made (a key pair, a CA):

* ``course_pki``: this run's course CA (:class:`~handshake_lib.pki.CoursePKI`, ECDSA P-256);
* ``server_certificate``: an RSA-2048 server certificate for ``localhost`` and ``127.0.0.1`` it issued
  (RSA, so TLS_RSA_* key exchange can encrypt the pre-master secret to it);
* ``server_files``: those two written to disk (``ca.pem``, ``server.pem``, ``server.key``), as a
  :class:`~handshake_lib.pki.builder.ServerFiles`;
* ``untrusted_ca_file``: ``ca.pem`` of another CA (same name, another key), which never issued
  ``server_certificate``: a client that trusts only it must refuse our servers (unknown_ca);
* ``rsa_private_key``: a bare RSA-2048 key pair, for tests of RSA key exchange without a certificate.

Tests must not modify them (they are shared); a test that needs its own CA or files makes them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handshake_lib.pki import CoursePKI, IssuedCertificate
from handshake_lib.pki.builder import ServerFiles

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def cli_environment() -> dict[str, str]:
    """The environment a ``python -m handshake_lib`` child process runs in: this checkout first on its path."""
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def read_line(process: subprocess.Popen, timeout: float) -> str:
    """The next line a child process prints (``tls serve`` logs one per finished connection), or what came if
    none ends within ``timeout`` s.  Read a byte at a time from an unbuffered pipe (``bufsize=0``), so select
    never misses a line already buffered."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        byte = process.stdout.read(1) if ready else b""
        if not byte:
            break
        line += byte
    return line.decode()


def peers_required() -> bool:
    return os.environ.get("REQUIRE_PEERS") == "1"


def require(executable: str, why: str = "") -> str:
    """Return the path of ``executable``; skip (or fail under REQUIRE_PEERS=1) when it is missing."""
    path = shutil.which(executable)
    if path is None:
        message = f"{executable} is not installed{': ' + why if why else ''}"
        if peers_required():
            pytest.fail(f"REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)
    return path


def require_sandbox() -> None:
    """Skip (or fail under REQUIRE_PEERS=1) when the grading sandbox (bubblewrap) cannot run here."""
    from handshake_lib.grading import sandbox_problem

    require("bwrap", "the grading sandbox (Debian's bubblewrap)")
    problem = sandbox_problem()
    if problem is not None:
        (pytest.fail if peers_required() else pytest.skip)(f"the grading sandbox cannot run: {problem}")


def require_module(name: str, why: str = "") -> ModuleType:
    """Import and return module ``name``; skip (or fail under REQUIRE_PEERS=1) when it cannot be imported.

    ``pytest.importorskip`` with the rule of :func:`require`: in CI a missing module is a broken install.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        message = f"{name} cannot be imported ({error}){': ' + why if why else ''}"
    if peers_required():
        pytest.fail(f"REQUIRE_PEERS=1 but {message}")
    pytest.skip(message)


def require_loopback_capture(why: str) -> ModuleType:
    """tcpdump on lo, as root: skip (or fail under REQUIRE_PEERS=1) otherwise; return the recorder script.

    ``scripts/record_ssh_capture.py`` holds the one tcpdump driver (``tcpdump(pcap, port)``) and the SSH
    recordings; the capture tests load it from here instead of each loading it their own way.
    """
    require("tcpdump", why)
    if os.geteuid() != 0:
        message = "capturing with tcpdump on lo needs root"
        if peers_required():
            pytest.fail(f"REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)
    spec = importlib.util.spec_from_file_location("record_ssh_capture", ROOT / "scripts" / "record_ssh_capture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def course_pki() -> CoursePKI:
    return CoursePKI.create()


@pytest.fixture(scope="session")
def server_certificate(course_pki: CoursePKI) -> IssuedCertificate:
    return course_pki.issue_server(("localhost", "127.0.0.1"))


@pytest.fixture(scope="session")
def server_files(
    course_pki: CoursePKI, server_certificate: IssuedCertificate, tmp_path_factory: pytest.TempPathFactory
) -> ServerFiles:
    directory = tmp_path_factory.mktemp("course-pki")
    cert_path, key_path = CoursePKI.write_issued(server_certificate, directory)
    return ServerFiles(course_pki.write_ca(directory), cert_path, key_path, server_certificate, course_pki)


@pytest.fixture(scope="session")
def untrusted_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return CoursePKI.create().write_ca(tmp_path_factory.mktemp("untrusted-ca"))


@pytest.fixture(scope="session")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark nbval's notebook items, so that `pytest -m "not notebooks"` gives a quick run."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
