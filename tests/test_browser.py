"""Smoke test: the lessons run in a real JupyterLab, in a real browser, the way a learner opens them.

nbval proves every cell runs in a kernel; it cannot see what the learner sees.  This test starts the
JupyterLab the course ships (from this environment, with the course's `overrides.json`), opens each
lesson in Debian's headless Chromium driven by Playwright, runs all cells through Lab's own command and
then reads the page: every code cell got an execution count, no cell printed to stderr or raised (except
cells tagged `raises-exception`, which Lab also runs past), ipywidgets rendered as widgets (not as their
text fallback, which is what a missing or mismatched widget manager looks like), and the news toast
stayed silent.  A full-page screenshot of each lesson lands in test-artifacts/browser/ for a human to
look at.

Safety: Lab listens on 127.0.0.1 on a free port with a random token; its settings, workspaces, runtime and
IPython dirs are private temporary directories; autosave is off and the test never saves, and it checks
that the notebook's bytes on disk are unchanged.  Lab and the browser are always shut down, and every wait
has a timeout.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require, require_module

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = ROOT / "config" / "lab-overrides.json"


@dataclass(frozen=True)
class LessonExpects:
    """What a lesson must show once it has run, beyond "no errors"."""

    widgets: bool  # at least one live ipywidget (rendered by Lab's widget manager, not as text)
    figures: bool  # at least one drawn image (a matplotlib figure)


LESSONS = {
    "notebooks/00_start_here.ipynb": LessonExpects(widgets=False, figures=True),
    "notebooks/01_tcp_three_way_handshake.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/02_client_hello.ipynb": LessonExpects(widgets=True, figures=False),
    "notebooks/03_server_hello_and_certificate.ipynb": LessonExpects(widgets=True, figures=False),
    "notebooks/04_certificate_validation.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/05_premaster_secret.ipynb": LessonExpects(widgets=True, figures=False),
    "notebooks/06_session_keys.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/07_records_encryption_and_mac.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/08_finished_and_full_handshake.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/09_forward_secrecy.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/10_tls13.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/11_resumption_and_renewal.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/12_ssh_version_and_key_exchange.ipynb": LessonExpects(widgets=True, figures=True),
    "notebooks/13_ssh_host_keys.ipynb": LessonExpects(widgets=True, figures=False),
    "notebooks/14_ssh_user_authentication.ipynb": LessonExpects(widgets=True, figures=False),
    "notebooks/15_ssh_session_and_channels.ipynb": LessonExpects(widgets=True, figures=True),
}

LAB_START_TIMEOUT_S = 90
PAGE_LOAD_TIMEOUT_S = 90
KERNEL_READY_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 90
SHUTDOWN_TIMEOUT_S = 15

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Tall enough that a screenshot shows a good part of a lesson: Lab scrolls inside its own panel, so a
# "full page" screenshot is only ever as big as the viewport.
VIEWPORT = {"width": 1400, "height": 2400}

pytestmark = [pytest.mark.browser, pytest.mark.peer]


@dataclass(frozen=True)
class LabServer:
    base_url: str
    token: str
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def private_lab_environment(workdir: Path) -> dict[str, str]:
    """Environment for a Lab that reads nothing from, and writes nothing to, the user's own Jupyter dirs."""
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": workdir / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": workdir / "workspaces",
        "JUPYTER_RUNTIME_DIR": workdir / "runtime",
        "JUPYTER_CONFIG_DIR": workdir / "config",
        "JUPYTER_DATA_DIR": workdir / "data",
        "IPYTHONDIR": workdir / "ipython",
    }
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    # Autosave would write executed outputs back into the lesson after two minutes; a smoke test must not.
    docmanager = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True, exist_ok=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    env = {**os.environ, **{name: str(path) for name, path in dirs.items()}}
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("JUPYTER_PATH", None)
    # A learner's kernel draws inline; a backend some test set for itself (Agg) would leave every figure out.
    env.pop("MPLBACKEND", None)
    return env


@contextmanager
def running_lab(root_dir: Path, workdir: Path) -> Iterator[LabServer]:
    """Start JupyterLab from this environment on a free loopback port; always stop it."""
    port = free_loopback_port()
    token = secrets.token_hex(24)
    # The same overrides.json that postBuild and `make setup` install, in a private app settings dir.
    app_settings = workdir / "app-settings"
    app_settings.mkdir(parents=True, exist_ok=True)
    overrides = json.loads(OVERRIDES.read_text())
    # Lab 4 attaches only the cells near the viewport to the DOM ("windowing"); the test counts every
    # cell's prompt, so it asks for all of them to be rendered.  Learners keep Lab's default.
    overrides["@jupyterlab/notebook-extension:tracker"] = {"windowingMode": "none"}
    (app_settings / "overrides.json").write_text(json.dumps(overrides))
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.app_settings_dir={app_settings}",
        # Lab makes a checkpoint when it opens a notebook; an absolute checkpoint_dir keeps it out of the
        # repository (a relative one means <notebook dir>/.ipynb_checkpoints).
        f"--FileCheckpoints.checkpoint_dir={workdir / 'checkpoints'}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = workdir / "lab.log"
    server = LabServer(base_url=f"http://127.0.0.1:{port}", token=token, log_path=log_path)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=private_lab_environment(workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_lab(process, server)
        yield server
    finally:
        stop_process_group(process)


def wait_for_lab(process: subprocess.Popen, server: LabServer) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    status_url = server.url("api/status")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer within {LAB_START_TIMEOUT_S} s:\n{server.log_tail()}")


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM lets Lab shut its kernels down; SIGKILL the whole group if it does not finish in time."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except ProcessLookupError:
        pass


@contextmanager
def chromium_context(user_data_dir: Path) -> Iterator[object]:
    """Debian's chromium, driven by Playwright (its own browser downloads are not needed or possible)."""
    chromium = require("chromium", "the browser smoke test drives JupyterLab in headless Chromium")
    sync_api = require_module("playwright.sync_api", "the browser smoke test drives Chromium through Playwright")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            timeout=PAGE_LOAD_TIMEOUT_S * 1000,
        )
        try:
            yield context
        finally:
            context.close()


# --- what the page says, read in the browser -------------------------------------------------------------

KERNEL_IDLE_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return Boolean(panel && panel.content && panel.content.widgets && panel.content.widgets.length
        && kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""

# Every code cell shows "[n]:" once it has run; "[*]:" while queued or running, "[ ]:" if never run.
ALL_CELLS_RAN_JS = """(expected) => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length === expected && prompts.every(p => /^\\[\\d+\\]:?$/.test(p.textContent.trim()));
}"""

CELL_REPORT_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, index) => ({
    index,
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
    stderr: [...cell.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(o => o.innerText),
    widgets: cell.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
    images: cell.querySelectorAll('.jp-OutputArea-output img').length,
    undrawnFigures: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText.trim())
        .filter(text => /^<Figure size [\\d.]+x[\\d.]+ with \\d+ Axes>$/.test(text)),
    widgetErrors: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText)
        .filter(text => /Error displaying widget|Loading widget\\.\\.\\./.test(text)),
}))"""

NEWS_TOAST_JS = """() => [...document.querySelectorAll('.jp-toast-message, .Toastify__toast')]
    .map(toast => toast.innerText).filter(text => /news|update/i.test(text))"""


@dataclass(frozen=True)
class BrowserRun:
    cells: list[dict]
    news_toasts: list[str]


def run_all_cells_in_browser(context, server: LabServer, relative_path: str, screenshot: Path) -> BrowserRun:
    """Open a notebook in Lab, run all cells without saving, and report what the page shows."""
    page = context.new_page()
    page.set_default_timeout(PAGE_LOAD_TIMEOUT_S * 1000)
    try:
        # A new workspace of its own per notebook: otherwise Lab restores the previous notebook's tab
        # and can stop on a "Select Kernel" dialog for the new one.
        workspace = Path(relative_path).stem
        page.goto(server.url(f"lab/workspaces/{workspace}/tree/{relative_path}"), wait_until="domcontentloaded")
        page.wait_for_function(KERNEL_IDLE_JS, timeout=KERNEL_READY_TIMEOUT_S * 1000, polling=250)
        expected_code_cells = sum(1 for cell in notebook_cells(server, relative_path) if cell["cell_type"] == "code")
        # Not awaited: the command resolves only when the last cell finishes, and a hung cell would hang
        # evaluate() with no timeout of ours.  The DOM wait below carries the timeout instead.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(
                ALL_CELLS_RAN_JS, arg=expected_code_cells, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=250
            )
        except Exception:
            # Leave evidence: what the page looked like, and which cells never finished.
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot.with_suffix(".timeout.png")), full_page=True)
            prompts = [(c["index"], c["prompt"]) for c in page.evaluate(CELL_REPORT_JS) if c["code"]]
            raise AssertionError(
                f"not every cell of {relative_path} ran within {RUN_ALL_TIMEOUT_S} s; prompts: {prompts}; "
                f"screenshot: {screenshot.with_suffix('.timeout.png')}"
            ) from None
        # Widgets render asynchronously after the output arrives; give the kernel one idle moment too.
        page.wait_for_function(KERNEL_IDLE_JS, timeout=KERNEL_READY_TIMEOUT_S * 1000, polling=250)
        page.wait_for_timeout(1000)
        cells = page.evaluate(CELL_REPORT_JS)
        news_toasts = page.evaluate(NEWS_TOAST_JS)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return BrowserRun(cells=cells, news_toasts=news_toasts)
    finally:
        page.close()


def notebook_cells(server: LabServer, relative_path: str) -> list[dict]:
    """The cells as stored on disk, fetched through Lab's contents API (read only)."""
    with urllib.request.urlopen(server.url(f"api/contents/{relative_path}"), timeout=30) as response:
        return json.load(response)["content"]["cells"]


def problems_in(run: BrowserRun, stored_cells: list[dict], expects: LessonExpects) -> list[str]:
    """Everything a learner would see go wrong, as readable lines (empty list: all good)."""
    problems: list[str] = []
    if len(run.cells) != len(stored_cells):
        problems.append(f"the page shows {len(run.cells)} cells, the notebook has {len(stored_cells)}")
    for shown, stored in zip(run.cells, stored_cells, strict=False):
        expected_error = "raises-exception" in stored.get("metadata", {}).get("tags", [])
        if shown["code"] and shown["stderr"] and not expected_error:
            problems.append(f"cell {shown['index']} wrote to stderr or raised:\n" + "\n".join(shown["stderr"])[:2000])
        if shown["widgetErrors"]:
            problems.append(f"cell {shown['index']} shows a broken widget: {shown['widgetErrors']}")
        if shown["undrawnFigures"]:
            # A bare matplotlib.figure.Figure has no PNG formatter until pyplot (or %matplotlib inline)
            # has been imported, so the learner sees only its repr.
            problems.append(f"cell {shown['index']} shows a figure as text, not drawn: {shown['undrawnFigures']}")
    if expects.widgets and not any(cell["widgets"] for cell in run.cells):
        problems.append("no ipywidget rendered (no .jupyter-widgets element in any output)")
    if expects.figures and not any(cell["images"] for cell in run.cells):
        problems.append("no figure drawn (no image in any output)")
    if run.news_toasts:
        problems.append(f"the news/update toast appeared despite overrides.json: {run.news_toasts}")
    return problems


# --- fixtures and tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    require("chromium", "the browser smoke test drives JupyterLab in headless Chromium")
    with running_lab(ROOT, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def test_every_lesson_is_run_in_the_browser() -> None:
    """A new notebook must be added to LESSONS (with what it should show), not silently left out."""
    on_disk = {f"notebooks/{path.name}" for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert on_disk == set(LESSONS), f"add to LESSONS: {sorted(on_disk - set(LESSONS))}"


@pytest.mark.parametrize("relative_path", list(LESSONS))
def test_lesson_runs_in_jupyterlab(relative_path: str, lab: LabServer, browser_context, artifacts: Path) -> None:
    notebook_file = ROOT / relative_path
    assert notebook_file.is_file(), f"{relative_path} is missing"
    bytes_before = notebook_file.read_bytes()
    stored_cells = json.loads(bytes_before)["cells"]
    screenshot = artifacts / "browser" / f"{notebook_file.stem}.png"

    run = run_all_cells_in_browser(browser_context, lab, relative_path, screenshot)

    assert notebook_file.read_bytes() == bytes_before, f"running {relative_path} in Lab changed it on disk"
    problems = problems_in(run, stored_cells, LESSONS[relative_path])
    assert not problems, "\n".join(problems) + f"\nscreenshot: {screenshot}"
