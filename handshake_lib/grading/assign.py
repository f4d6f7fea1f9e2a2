"""Exercises and grading: from master notebooks to student notebooks, and from submissions to one CSV.

Theory of operation
-------------------
Every graded exercise starts life as a *master notebook* in ``solutions/``, written in otter-grader's
"otter assign" format: an ``ASSIGNMENT CONFIG`` raw cell, then questions delimited by raw cells
(``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` / ``# BEGIN TESTS`` ...).  ``otter assign`` turns one
master into

* a *student notebook*: solutions replaced by ``...``, public tests embedded in the notebook's
  metadata (so ``grader.check("q1")`` works wherever the single ``.ipynb`` file goes: Binder, a
  laptop, an e-mail attachment), and
* an *autograder zip*: every test, hidden ones included, which ``otter run`` uses to grade a
  submission without Docker.

:func:`make_exercises` runs ``otter assign`` for every master and copies the student notebook into
``exercises/``, normalised so that the same master always gives the same bytes (cell ids numbered
in order, no outputs, no execution counts, no per-machine metadata).  A test regenerates the folder
and compares, so ``exercises/`` can never drift from ``solutions/``.

:func:`grade_folder` is the instructor path: it builds the autograder zips on the fly (they hold a
timestamp, so they are never committed), copies each submitted notebook into a private temporary
directory (the instructor's files are never written to), runs ``otter run`` on the copy in its own
process with a timeout, and writes one CSV row per submission.

``otter run`` executes the learner's code on the grading machine with the grader's rights.  That is
fine for a class's own notebooks on a course machine; for untrusted code use otter's Docker path
(``otter grade``), which runs each submission in a container (see docs/instructors.md).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

__all__ = [
    "REPO_ROOT",
    "SOLUTIONS_DIR",
    "EXERCISES_DIR",
    "GradingError",
    "AssignedNotebook",
    "SubmissionScore",
    "master_notebooks",
    "assignment_name",
    "assign",
    "normalise_student_notebook",
    "exercise_text",
    "make_exercises",
    "build_autograders",
    "grade_submission",
    "grade_folder",
    "write_scores_csv",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"

# Generous: a lesson notebook runs in seconds, but a class's grading machine may be busy.  A
# submission that loops forever gets a row with an error instead of stopping the whole class.
DEFAULT_TIMEOUT_SECONDS = 300.0
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


@dataclass
class SubmissionScore:
    """One graded submission: a CSV row."""

    file: str  # path relative to the submissions folder
    assignment: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # question name -> points earned
    possible: dict[str, float] = field(default_factory=dict)  # question name -> points available
    error: str = ""  # why the submission could not be graded (empty when it was)
    feedback: dict[str, str] = field(default_factory=dict)  # question name -> otter's test output

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def total_possible(self) -> float:
        return sum(self.possible.values())


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


def build_autograders(
    names: Iterable[str], scratch: Path, solutions_dir: Path = SOLUTIONS_DIR
) -> dict[str, AssignedNotebook]:
    """Build the autograder of each named assignment under ``scratch``; unknown names are skipped."""
    masters = {master.stem: master for master in master_notebooks(solutions_dir)}
    built = {}
    for name in sorted(set(names)):
        if name in masters:
            # The tests were run against the solutions when the exercises were made; skip it here.
            built[name] = assign(masters[name], Path(scratch) / name, run_tests=False)
    return built


def _submitted_assignment(notebook_path: Path) -> str:
    """The assignment name otter stored in a submitted notebook's metadata ('' if it has none)."""
    with open(notebook_path, encoding="utf-8") as handle:
        notebook = json.load(handle)
    otter_metadata = notebook.get("metadata", {}).get("otter", {})
    return str(otter_metadata.get("assignment_name", "")) if isinstance(otter_metadata, dict) else ""


def _scores_from_results(results: dict, score: SubmissionScore) -> None:
    # results.json is Gradescope's format: one entry per question plus a score-less "Public Tests" summary.
    for test in results.get("tests", []):
        if test.get("max_score") is None:
            continue
        score.scores[test["name"]] = float(test.get("score") or 0.0)
        score.possible[test["name"]] = float(test["max_score"])
        score.feedback[test["name"]] = test.get("output", "")


def grade_submission(
    submission: Path,
    autograder_zip: Path,
    *,
    relative_name: str | None = None,
    assignment: str = "",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    strict: bool = False,
) -> SubmissionScore:
    """Grade one notebook with ``otter run`` (no container) on a private copy; the original is only read.

    A learner's cell that raises is graded like otter does by default: execution goes on, and the tests
    that depend on it fail.  ``strict`` (otter's ``--debug``) stops at the first cell that raises and
    reports it as an ``error`` instead: the course's own notebooks (solutions, untouched exercises) must
    never raise, and the tests grade them this way.
    """
    score = SubmissionScore(file=relative_name or Path(submission).name, assignment=assignment)
    with tempfile.TemporaryDirectory(prefix="handshakes-grade-") as scratch:
        scratch_path = Path(scratch)
        copy = scratch_path / "submission" / Path(submission).name
        copy.parent.mkdir()
        shutil.copyfile(submission, copy)
        results_dir = scratch_path / "results"
        results_dir.mkdir()
        try:
            # --debug: otter executes with allow_errors=False, so the first cell that raises stops the run.
            debug = ["--debug"] if strict else []
            run = _otter(
                ["run", "--no-logo", *debug, "-a", str(autograder_zip), "-o", str(results_dir), str(copy)],
                cwd=scratch_path,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            score.error = f"grading took longer than {timeout:g} s and was stopped"
            return score
        results_file = results_dir / "results.json"
        if run.returncode != 0 or not results_file.exists():
            last_lines = "\n".join(run.stdout.strip().splitlines()[-5:])
            score.error = f"otter run failed (exit {run.returncode}): {last_lines}"
            return score
        _scores_from_results(json.loads(results_file.read_text(encoding="utf-8")), score)
    return score


def _submissions(submissions_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in Path(submissions_dir).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts and path.is_file()
    )


def grade_folder(
    submissions_dir: Path,
    out_csv: Path,
    *,
    solutions_dir: Path = SOLUTIONS_DIR,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    jobs: int = 1,
    autograders: Mapping[str, AssignedNotebook] | None = None,
    strict: bool = False,
) -> list[SubmissionScore]:
    """Grade every ``.ipynb`` under ``submissions_dir`` and write one CSV row per notebook to ``out_csv``.

    Each notebook is matched to its assignment by the name otter stored in its metadata.  A notebook
    that cannot be graded (not one of the course's exercises, not valid JSON, too slow) still gets a
    row, with zero points and the reason in the ``error`` column, so nobody silently goes missing.
    ``autograders`` (assignment name -> :func:`assign` output) are used as given; by default they are
    built from ``solutions_dir``.  ``strict`` is :func:`grade_submission`'s.
    """
    submissions_dir = Path(submissions_dir)
    submissions = _submissions(submissions_dir)
    names: dict[Path, str] = {}
    rows: dict[Path, SubmissionScore] = {}
    for submission in submissions:
        relative = submission.relative_to(submissions_dir).as_posix()
        try:
            names[submission] = _submitted_assignment(submission)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            rows[submission] = SubmissionScore(file=relative, error=f"not a readable notebook: {error}")
            continue
        if not names[submission]:
            rows[submission] = SubmissionScore(file=relative, error="no otter assignment name in the notebook")

    with tempfile.TemporaryDirectory(prefix="handshakes-autograders-") as scratch:
        if autograders is None:
            wanted = (name for path, name in names.items() if path not in rows)
            autograders = build_autograders(wanted, Path(scratch), solutions_dir)
        built = autograders
        for path, name in names.items():
            if path not in rows and name not in built:
                rows[path] = SubmissionScore(
                    file=path.relative_to(submissions_dir).as_posix(),
                    assignment=name,
                    error=f"no master notebook for assignment {name!r} in {solutions_dir}",
                )
        to_grade = [path for path in submissions if path not in rows]

        def grade(path: Path) -> SubmissionScore:
            return grade_submission(
                path,
                built[names[path]].autograder_zip,
                relative_name=path.relative_to(submissions_dir).as_posix(),
                assignment=names[path],
                timeout=timeout,
                strict=strict,
            )

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for path, score in zip(to_grade, pool.map(grade, to_grade), strict=True):
                rows[path] = score

    ordered = [rows[path] for path in submissions]
    write_scores_csv(ordered, out_csv)
    return ordered


def write_scores_csv(scores: Sequence[SubmissionScore], out_csv: Path) -> None:
    """Write ``file, assignment, <one column per question>, total, possible, error``."""
    questions: list[str] = []
    for score in scores:
        for question in list(score.possible) + list(score.scores):
            if question not in questions:
                questions.append(question)
    with open(out_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "assignment", *questions, "total", "possible", "error"])
        for score in scores:
            writer.writerow(
                [
                    score.file,
                    score.assignment,
                    *(_number(score.scores[q]) if q in score.scores else "" for q in questions),
                    _number(score.total),
                    _number(score.total_possible),
                    score.error,
                ]
            )


def _number(value: float) -> str:
    # 2.0 -> "2", 1.5 -> "1.5": what a spreadsheet and a person both read without surprise.
    return f"{value:g}"
