"""Shared test helpers.

``require(name)`` is how a test asks for a system peer (openssl, curl, chromium, sshd, tcpdump).  On a
learner's machine a missing peer skips the test with a reason; in CI (``REQUIRE_PEERS=1``, set by
``.ci/run``) it fails, so that CI can never pass by skipping what it was meant to check.
``require_module(name)`` does the same for a Python module (in place of ``pytest.importorskip``).
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


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


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark nbval's notebook items, so that `pytest -m "not notebooks"` gives a quick run."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
