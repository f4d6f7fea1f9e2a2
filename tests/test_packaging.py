"""Binder and local installs must build the same course.

pyproject.toml is the source of truth for dependency pins; environment.yml repeats them for Binder
(repo2docker), and postBuild installs handshake_lib itself and silences JupyterLab's news pop-up.  These
tests catch the drift that otherwise shows up only when a class opens Binder: a pin bumped in one file
and not the other, a postBuild that no longer installs the package, an overrides file whose value
JupyterLab ignores, a README badge that opens the wrong page.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import require_module

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
POSTBUILD = ROOT / "postBuild"
OVERRIDES = ROOT / "config" / "lab-overrides.json"
README = ROOT / "README.md"

EXACT_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*$")
BINDER_LINK = re.compile(
    r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?urlpath=lab/tree/notebooks/00_start_here\.ipynb(?=[)\s\"'>]|$)"
)


def normalize(name: str) -> str:
    """PEP 503 name normalisation, so `PyYAML`, `pyyaml` and `py_yaml` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(requirements: list[str], where: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = EXACT_PIN.match(requirement)
        assert match, f"{where}: {requirement!r} is not an exact pin (name==version)"
        name, version = normalize(match.group(1)), match.group(2)
        assert name not in pins, f"{where}: {name} is listed twice"
        pins[name] = version
    return pins


def load_minimal_yaml(text: str) -> dict:
    """Read the subset of YAML environment.yml uses (scalars, lists, one nested `pip:` list).

    Used only when PyYAML is missing; `test_minimal_yaml_reader_agrees_with_pyyaml` keeps it honest.
    """
    document: dict = {}
    current_key: str | None = None
    pip_list: list[str] | None = None
    for raw_line in text.splitlines():
        line = raw_line.split(" #", 1)[0].rstrip() if not raw_line.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 0:
            key, _, value = stripped.partition(":")
            current_key, pip_list = key.strip(), None
            document[current_key] = value.strip() or []
        elif stripped.startswith("- "):
            item = stripped[2:].strip()
            if pip_list is not None and indent > 4:
                pip_list.append(item)
            elif item.endswith(":"):
                pip_list = []
                document[current_key].append({item[:-1]: pip_list})
            else:
                pip_list = None
                document[current_key].append(item)
    return document


def load_environment() -> dict:
    text = ENVIRONMENT.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with jupyter_events
        return load_minimal_yaml(text)
    return yaml.safe_load(text)


def environment_parts(environment: dict) -> tuple[list[str], list[str]]:
    """Split environment.yml's dependencies into conda specs and the pip list."""
    conda_specs: list[str] = []
    pip_requirements: list[str] = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pip_requirements.extend(entry["pip"])
        else:
            conda_specs.append(str(entry))
    return conda_specs, pip_requirements


def test_pyproject_dependencies_are_exact_pins() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    pins = parse_pins(project["dependencies"], "pyproject.toml")
    assert pins, "pyproject.toml has no dependencies"


def test_environment_yml_pins_match_pyproject_both_ways() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    pyproject_pins = parse_pins(project["dependencies"], "pyproject.toml")
    _, pip_requirements = environment_parts(load_environment())
    environment_pins = parse_pins(pip_requirements, "environment.yml")

    missing = {name: version for name, version in pyproject_pins.items() if name not in environment_pins}
    extra = {name: version for name, version in environment_pins.items() if name not in pyproject_pins}
    different = {
        name: (version, environment_pins[name])
        for name, version in pyproject_pins.items()
        if name in environment_pins and environment_pins[name] != version
    }
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    assert not different, f"pins differ (pyproject, environment.yml): {different}"


def test_environment_yml_uses_conda_forge_python_311_and_pip() -> None:
    environment = load_environment()
    assert environment["channels"] == ["conda-forge"]
    conda_specs, pip_requirements = environment_parts(environment)
    pythons = [spec for spec in conda_specs if re.match(r"python\b", spec)]
    assert pythons == ["python=3.11"], f"expected exactly python=3.11, got {pythons}"
    assert "pip" in conda_specs, "a pip: list needs pip itself in the conda dependencies"
    assert not any(normalize(r.split("=")[0]) == "handshake-lib" for r in pip_requirements), (
        "handshake_lib belongs in postBuild (pip install -e .), not in environment.yml"
    )
    # python=3.11 must satisfy the package's own requires-python.
    requires_python = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    assert requires_python in (">=3.11", ">=3.11,<4", "~=3.11"), requires_python


def test_minimal_yaml_reader_agrees_with_pyyaml() -> None:
    yaml = require_module("yaml", "PyYAML (pinned in pyproject.toml) checks the fallback YAML reader")
    text = ENVIRONMENT.read_text(encoding="utf-8")
    assert load_minimal_yaml(text) == yaml.safe_load(text)


def test_postbuild_installs_package_and_overrides(tmp_path: Path) -> None:
    """Run postBuild for real, with a stand-in `pip` that records its arguments and working directory."""
    assert POSTBUILD.stat().st_mode & stat.S_IXUSR, "postBuild must be executable (repo2docker runs it directly)"
    assert POSTBUILD.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash")

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    pip_log = tmp_path / "pip.log"
    fake_pip = fake_bin / "pip"
    fake_pip.write_text(f'#!/bin/sh\necho "$PWD|$*" >> "{pip_log}"\n')
    fake_pip.chmod(0o755)
    prefix = tmp_path / "prefix"

    env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}", "NB_PYTHON_PREFIX": str(prefix)}
    result = subprocess.run(
        [str(POSTBUILD)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

    calls = pip_log.read_text().splitlines()
    assert calls == [f"{ROOT}|install --no-deps -e ."], calls
    installed = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.read_bytes() == OVERRIDES.read_bytes()


def test_overrides_switch_off_news_with_values_lab_accepts() -> None:
    """fetchNews is a *string* enum in Lab 4 ("true"/"false"/"none"); a JSON false would be ignored."""
    overrides = json.loads(OVERRIDES.read_text(encoding="utf-8"))
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false"
    assert notification["checkForUpdates"] is False

    # Lab installs its settings schemas under the prefix it runs from, next to where postBuild puts overrides.
    # JupyterLab is a pinned dependency that `make setup` always installs, so a missing schema is a broken
    # install (or a Lab that moved its schemas), never a reason to skip.
    schema_path = Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/apputils-extension/notification.json"
    assert schema_path.exists(), f"JupyterLab's notification settings schema is missing: {schema_path}"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))["properties"]
    allowed_fetch_news = {option["const"] for option in schema["fetchNews"]["oneOf"]}
    assert notification["fetchNews"] in allowed_fetch_news
    assert schema["checkForUpdates"]["type"] == "boolean"
    assert set(notification) <= set(schema), f"unknown settings: {set(notification) - set(schema)}"


def test_readme_has_binder_badge_opening_start_here() -> None:
    assert README.exists(), "README.md is missing"
    readme = README.read_text(encoding="utf-8")
    assert BINDER_LINK.search(readme), (
        "README.md needs a Binder badge linking to "
        "https://mybinder.org/v2/gh/OWNER/REPO/HEAD?urlpath=lab/tree/notebooks/00_start_here.ipynb"
    )
    assert re.search(r"mybinder\.org/(static/)?badge(_logo)?\.svg", readme), "the Binder link has no badge image"


def test_package_ships_py_typed_and_its_data(tmp_path: Path) -> None:
    """The PEP 561 marker and the bundled captures must reach an installed (non-editable) package.

    An editable install reads the source tree, where the files exist whatever pyproject.toml says; so this
    runs setuptools' build_py (the step that copies package data into a wheel) on a copy of the package.
    """
    assert importlib.resources.files("handshake_lib").joinpath("py.typed").is_file()
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "handshake_lib", source / "handshake_lib", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    result = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "build_py", "--build-lib", str(built)],
        cwd=source, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    package = built / "handshake_lib"
    assert (package / "py.typed").is_file(), "py.typed is missing from the built package (pyproject package-data)"
    bundled = sorted(path.name for path in (ROOT / "handshake_lib" / "data").iterdir() if path.is_file())
    assert bundled and sorted(path.name for path in (package / "data").iterdir()) == bundled
