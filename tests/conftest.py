"""Shared test helpers.

``require(name)`` is how a test asks for a system peer (openssl, curl, chromium, sshd, tcpdump).  On a
learner's machine a missing peer skips the test with a reason; in CI (``REQUIRE_PEERS=1``, set by
``.ci/run``) it fails, so that CI can never pass by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark nbval's notebook items, so that `pytest -m "not notebooks"` gives a quick run."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
