"""From master notebooks to student notebooks: ``otter assign``, run reproducibly.

Every graded exercise starts life as a *master notebook* in ``solutions/``, written in otter-grader's
"otter assign" format: an ``ASSIGNMENT CONFIG`` raw cell, then questions delimited by raw cells
(``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` / ``# BEGIN TESTS`` ...).  ``otter assign`` turns one
master into a *student notebook*: solutions replaced by ``...``, public tests embedded in the notebook's
metadata (so ``grader.check("q1")`` works wherever the single ``.ipynb`` file goes: Binder, a laptop, an
e-mail attachment).

:func:`make_exercises` runs ``otter assign`` for every master and copies the student notebook into
``exercises/``, normalised so that the same master always gives the same bytes (cell ids numbered in
order, no outputs, no execution counts, no per-machine metadata).  A test regenerates the folder and
compares, so ``exercises/`` can never drift from ``solutions/``.

Grading does not use otter: see :mod:`handshake_lib.grading.runner`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

__all__ = [
    "REPO_ROOT",
    "SOLUTIONS_DIR",
    "EXERCISES_DIR",
    "GradingError",
    "AssignedNotebook",
    "master_notebooks",
    "assignment_config",
    "assignment_name",
    "assign",
    "normalise_student_notebook",
    "exercise_text",
    "make_exercises",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"

ASSIGN_TIMEOUT_SECONDS = 600.0

# Only these notebook-level metadata keys survive normalisation: the kernel to start and otter's own
# block (assignment name and the embedded public tests).  Everything else (language_info.version,
# widget state, a learner's JupyterLab settings) depends on the machine that last saved the file.
_KEPT_METADATA = ("kernelspec", "otter")


class GradingError(RuntimeError):
    """Making exercises or grading failed for a reason the instructor must see (not a learner's mistake)."""


@dataclass(frozen=True)
class AssignedNotebook:
    """What ``otter assign`` made from one master notebook."""

    name: str  # the assignment name from the ASSIGNMENT CONFIG cell
    master: Path
    student_notebook: Path
    autograder_notebook: Path  # the solution notebook with otter's init cell: a full-marks submission
    autograder_zip: Path


def master_notebooks(solutions_dir: Path = SOLUTIONS_DIR) -> list[Path]:
    """The master notebooks in ``solutions_dir``, in course order (their names start with the lesson number)."""
    return sorted(path for path in Path(solutions_dir).glob("*.ipynb") if not path.name.startswith("."))


def assignment_config(master: Path) -> dict:
    """The parsed ``# ASSIGNMENT CONFIG`` cell of a master notebook."""
    notebook = nbformat.read(master, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().upper().startswith("# ASSIGNMENT CONFIG"):
            config = yaml.safe_load(cell.source) or {}
            if not isinstance(config, dict):
                raise GradingError(f"{master}: the ASSIGNMENT CONFIG cell is not a YAML mapping")
            return config
    raise GradingError(f"{master} has no '# ASSIGNMENT CONFIG' raw cell: is it an otter master notebook?")


def assignment_name(master: Path) -> str:
    """The assignment name of a master notebook; by convention, the notebook's file name without .ipynb."""
    name = assignment_config(master).get("name")
    if name != master.stem:
        # Submissions are matched to their autograder by this name, and learners see the file name.
        raise GradingError(f"{master}: assignment name {name!r} should equal the notebook name {master.stem!r}")
    return name


def _otter(args: Sequence[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the otter command line of this interpreter's environment in its own process group."""
    command = [sys.executable, "-m", "otter", *args]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A process group of its own, so a timeout can stop the kernel the grader started as well.
        start_new_session=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"},
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def assign(master: Path, out_dir: Path, *, run_tests: bool = True) -> AssignedNotebook:
    """Run ``otter assign`` on ``master``, writing into ``out_dir`` (created; should be empty).

    With ``run_tests`` otter executes the solution notebook and fails if any test does not pass on it.
    """
    master = Path(master).resolve()
    out_dir = Path(out_dir).resolve()
    name = assignment_name(master)
    args = ["assign", "--no-pdfs", str(master), str(out_dir)]
    if not run_tests:
        args.insert(1, "--no-run-tests")
    result = _otter(args, cwd=master.parent, timeout=ASSIGN_TIMEOUT_SECONDS)
    student = out_dir / "student" / master.name
    zips = sorted((out_dir / "autograder").glob("*.zip"))
    if result.returncode != 0 or not student.exists() or len(zips) != 1:
        raise GradingError(f"otter assign failed for {master.name}:\n{result.stdout}")
    return AssignedNotebook(
        name=name,
        master=master,
        student_notebook=student,
        autograder_notebook=out_dir / "autograder" / master.name,
        autograder_zip=zips[0],
    )


def normalise_student_notebook(notebook: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """Make otter's student notebook reproducible: numbered cell ids, no outputs, stable metadata."""
    for index, cell in enumerate(notebook.cells):
        # otter assign gives each cell a random id; ids only need to be unique within the notebook.
        cell["id"] = f"{stem[:40]}-{index:03d}".replace(".", "-")
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook.metadata = nbformat.from_dict({key: notebook.metadata[key] for key in _KEPT_METADATA
                                            if key in notebook.metadata})
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return notebook


def exercise_text(assigned: AssignedNotebook) -> str:
    """The exact text ``make_exercises`` writes to ``exercises/`` for one ``otter assign`` output."""
    student = nbformat.read(assigned.student_notebook, as_version=4)
    # nbformat.writes sorts keys and indents by one space; the newline at the end is git's convention.
    return nbformat.writes(normalise_student_notebook(student, assigned.master.stem)) + "\n"


def make_exercises(
    solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR, *, run_tests: bool = True
) -> list[Path]:
    """Regenerate ``exercises_dir`` from every master notebook in ``solutions_dir``; return the files written.

    Student notebooks of masters that no longer exist are removed, so the folder mirrors ``solutions/``.
    """
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-assign-") as scratch:
        for master in master_notebooks(solutions_dir):
            assigned = assign(master, Path(scratch) / master.stem, run_tests=run_tests)
            target = exercises_dir / master.name
            target.write_text(exercise_text(assigned), encoding="utf-8")
            written.append(target)
    for stale in set(exercises_dir.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written
