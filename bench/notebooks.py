"""How long each notebook takes to run top to bottom in a fresh kernel, and how much memory the kernel needs.

This is what a learner waits for after *Kernel > Restart Kernel and Run All Cells*, and what a Binder
or JupyterHub machine must hold per learner.  Each notebook runs in its own new kernel (nbclient, the
same machinery as `jupyter nbconvert --execute`), in the notebook's own directory as in JupyterLab.

Peak memory comes from the kernel itself: one extra cell, appended in memory only (the file on disk is
never written), reads ``getrusage(RUSAGE_SELF).ru_maxrss``, the high-water mark of the kernel
process's resident set over its whole life.  Peers the kernel started (openssl, sshd...) are separate
processes; the largest of those it has waited for is reported as ``children_peak_rss`` in the JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from .report import Measurement

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("notebooks", "solutions")

WALL_TIME_TARGET_S = 15.0
PEAK_RSS_TARGET_MB = 300.0
CELL_TIMEOUT_S = 120
KERNEL_STARTUP_TIMEOUT_S = 60

PROBE_MARKER = "HANDSHAKES-BENCH-PROBE "
# ru_maxrss is in kibibytes on Linux and in bytes on macOS.
PROBE_SOURCE = f"""\
import json as _bench_json, resource as _bench_resource, sys as _bench_sys
_bench_scale = 1 if _bench_sys.platform == "darwin" else 1024
print({PROBE_MARKER!r} + _bench_json.dumps({{
    "self_peak_rss": _bench_resource.getrusage(_bench_resource.RUSAGE_SELF).ru_maxrss * _bench_scale,
    "children_peak_rss": _bench_resource.getrusage(_bench_resource.RUSAGE_CHILDREN).ru_maxrss * _bench_scale,
    "executable": _bench_sys.executable,
}}))
"""


def discover(root: Path = ROOT, directories: Iterable[str] = NOTEBOOK_DIRS) -> list[Path]:
    """Every committed notebook in the lesson and solution folders (not exercises/: those raise by design)."""
    return sorted(
        path
        for directory in directories
        for path in (root / directory).glob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    )


def read_probe(cell: dict) -> dict:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            for line in output.get("text", "").splitlines():
                if line.startswith(PROBE_MARKER):
                    return json.loads(line[len(PROBE_MARKER) :])
    raise RuntimeError("the memory probe cell printed nothing; was the kernel restarted?")


def run_notebook(path: Path) -> dict:
    """Execute ``path`` in a fresh kernel; return timings (seconds) and the probe's memory figures."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    real_cells = len(notebook.cells)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE_SOURCE))
    marks: dict[str, float] = {}
    cell_started: dict[int, float] = {}
    cell_seconds: dict[int, float] = {}

    def on_cell_start(cell, cell_index: int) -> None:
        cell_started[cell_index] = time.perf_counter()

    def on_cell_executed(cell, cell_index: int, execute_reply) -> None:
        now = time.perf_counter()
        cell_seconds[cell_index] = now - cell_started[cell_index]
        if cell_index < real_cells:
            marks["last_real_cell_done"] = now

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=KERNEL_STARTUP_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_notebook_start=lambda notebook: marks.setdefault("kernel_ready", time.perf_counter()),
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
    )
    started = time.perf_counter()
    client.execute()
    kernel_ready = marks["kernel_ready"]
    done = marks.get("last_real_cell_done", kernel_ready)  # a notebook of markdown only runs no cell
    probe = read_probe(notebook.cells[-1])
    real_cell_seconds = {index: seconds for index, seconds in cell_seconds.items() if index < real_cells}
    slowest = max(real_cell_seconds, key=real_cell_seconds.get, default=None)
    return {
        "kernel_start_s": kernel_ready - started,
        "cells_s": done - kernel_ready,
        "wall_s": done - started,
        "slowest_cell": slowest,
        "slowest_cell_s": real_cell_seconds.get(slowest, 0.0),
        "cell_seconds": real_cell_seconds,
        **probe,
    }


def measure(paths: Iterable[Path], root: Path = ROOT) -> list[Measurement]:
    rows: list[Measurement] = []
    for path in paths:
        label = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        try:
            result = run_notebook(path)
        except Exception as error:  # noqa: BLE001 - any failure is reported as this notebook's ERROR row
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]
            rows.append(
                Measurement("notebook", f"{label} wall time", None, "s", WALL_TIME_TARGET_S,
                            error=f"{type(error).__name__}: {first_line}")
            )
            continue
        detail = f"kernel start {result['kernel_start_s']:.2f} s + cells {result['cells_s']:.2f} s"
        if result["slowest_cell"] is not None:
            detail += f"; slowest cell #{result['slowest_cell']} {result['slowest_cell_s']:.2f} s"
        if result["executable"] != sys.executable:
            detail += f"; kernel ran {result['executable']}, not this environment's python"
        rows.append(Measurement("notebook", f"{label} wall time", result["wall_s"], "s", WALL_TIME_TARGET_S,
                                detail=detail, extra=result))
        peak_mb = result["self_peak_rss"] / 2**20
        children_mb = result["children_peak_rss"] / 2**20
        rows.append(Measurement("notebook", f"{label} kernel peak RSS", peak_mb, "MB", PEAK_RSS_TARGET_MB,
                                detail=f"largest finished child process {children_mb:.0f} MB", extra=result))
    return rows
