"""Graded exercises: solutions score full marks, untouched exercises run and score zero, exercises/ is up to
date, wrong answers get feedback that says what was expected, and the instructor's grading leaves the
submitted files alone.

Everything here runs otter-grader 7.0.0 for real (``otter assign``, ``otter run``, ``grader.check`` inside
an executing kernel); nothing is mocked.  ``otter assign`` is run once per master notebook per session.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

from handshake_lib.grading import (
    EXERCISES_DIR,
    SOLUTIONS_DIR,
    AssignedNotebook,
    assign,
    grade_submission,
    make_exercises,
    master_notebooks,
)

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
MASTERS = master_notebooks(SOLUTIONS_DIR)
EXERCISE_01 = "01_tcp_three_way_handshake"


def _ids(path: Path) -> str:
    return path.stem


@pytest.fixture(scope="session")
def assigned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AssignedNotebook]:
    """otter assign output (student notebook, solution notebook, autograder zip) for every master."""
    scratch = tmp_path_factory.mktemp("assigned")
    # run_tests=True: otter itself also executes each solution against every test, hidden ones included.
    return {master.stem: assign(master, scratch / master.stem, run_tests=True) for master in MASTERS}


def execute(notebook_path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel, in its own folder; any cell error fails the test."""
    notebook = nbformat.read(notebook_path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebook_path.parent)}}
    )
    client.execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode, source_prefix: str) -> str:
    """The text of every output of the code cells whose source starts with ``source_prefix``."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith(source_prefix):
            for output in cell.outputs:
                texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def answer_cell_sources(master: Path) -> dict[str, str]:
    """The master's solution code cells (those between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` raw cells),
    keyed by their first line (``def expected_numbers(...`` and so on)."""
    notebook = nbformat.read(master, as_version=4)
    answers, inside = {}, False
    for cell in notebook.cells:
        if cell.cell_type == "raw" and cell.source.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
            inside = cell.source.strip() == "# BEGIN SOLUTION"
        elif inside and cell.cell_type == "code":
            answers[cell.source.splitlines()[0]] = cell.source
    return answers


def fill_answers(exercise: Path, answers: dict[str, str], target: Path) -> Path:
    """Copy ``exercise`` to ``target`` with its answer cells replaced by ``answers`` (matched by first line)."""
    notebook = nbformat.read(exercise, as_version=4)
    replaced = 0
    for cell in notebook.cells:
        if "otter_answer_cell" in cell.metadata.get("tags", []):
            first_line = cell.source.splitlines()[0]
            if first_line in answers:
                cell.source = answers[first_line]
                replaced += 1
    assert replaced == len(answers), f"replaced {replaced} of {len(answers)} answer cells in {exercise.name}"
    nbformat.write(notebook, target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_there_is_a_master_for_every_exercise() -> None:
    assert [path.name for path in MASTERS] == sorted(path.name for path in EXERCISES_DIR.glob("*.ipynb"))
    assert f"{EXERCISE_01}.ipynb" in [path.name for path in MASTERS]


def test_exercises_folder_is_up_to_date(tmp_path: Path) -> None:
    regenerated = make_exercises(SOLUTIONS_DIR, tmp_path, run_tests=False)
    assert regenerated, "no master notebooks in solutions/"
    for fresh in regenerated:
        committed = EXERCISES_DIR / fresh.name
        assert committed.exists(), f"exercises/{fresh.name} is missing: run `make exercises`"
        assert committed.read_bytes() == fresh.read_bytes(), f"exercises/{fresh.name} is stale: run `make exercises`"


def test_make_exercises_is_deterministic(tmp_path: Path) -> None:
    """Two runs give identical bytes (otter gives cells random ids; we must not let them through)."""
    first = make_exercises(SOLUTIONS_DIR, tmp_path / "a", run_tests=False)
    second = make_exercises(SOLUTIONS_DIR, tmp_path / "b", run_tests=False)
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    for path in first:
        notebook = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        assert "grader.check(" in path.read_text(encoding="utf-8")
        # Only public tests travel with the student: hidden ones stay in the autograder.
        assert "hidden=True" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_solution_scores_full_marks(master: Path, assigned: dict[str, AssignedNotebook]) -> None:
    built = assigned[master.stem]
    score = grade_submission(built.autograder_notebook, built.autograder_zip)
    assert score.error == ""
    assert score.possible and score.total_possible > 0
    assert score.scores == score.possible, score.feedback


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_untouched_exercise_runs_and_scores_zero(
    master: Path, assigned: dict[str, AssignedNotebook], tmp_path: Path
) -> None:
    # Copy first: grader.check writes a .OTTER_LOG next to the notebook.
    exercise = shutil.copy(EXERCISES_DIR / master.name, tmp_path / master.name)
    notebook = execute(Path(exercise))  # raises on any cell error: untouched cells must not crash
    checks = outputs_of(notebook, "grader.check(")
    assert "Test case failed" in checks and "All test cases passed" not in checks, checks
    score = grade_submission(Path(exercise), assigned[master.stem].autograder_zip)
    assert score.error == ""
    assert score.total_possible > 0 and score.total == 0, score.scores


def test_wrong_answer_gets_a_failing_check_that_says_what_was_expected(tmp_path: Path) -> None:
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{EXERCISE_01}.ipynb")
    numbers_cell = next(source for line, source in answers.items() if "expected_numbers" in line)
    off_by_one = numbers_cell.replace("syn_ack_ack = (syn.seq + 1) % 2**32", "syn_ack_ack = syn.seq % 2**32")
    assert off_by_one != numbers_cell, "the solution changed; update this test's off-by-one edit"
    answers = {line: (off_by_one if source == numbers_cell else source) for line, source in answers.items()}
    submission = fill_answers(EXERCISES_DIR / f"{EXERCISE_01}.ipynb", answers, tmp_path / f"{EXERCISE_01}.ipynb")

    notebook = execute(submission)
    q1 = outputs_of(notebook, 'grader.check("q1")')
    assert "Test case failed" in q1
    # The message names the field, the value the kernel sent and the value the learner computed.
    assert "ack of the SYN-ACK should be 101, found 100" in q1, q1
    assert "the kernel sent ack of the SYN-ACK = 1201067135, your code says 1201067134" in q1, q1
    q2 = outputs_of(notebook, 'grader.check("q2")')
    assert "All test cases passed" in q2, q2


def test_wrong_checksum_is_explained(tmp_path: Path) -> None:
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{EXERCISE_01}.ipynb")
    syn_ack_cell = next(source for line, source in answers.items() if "build_syn_ack" in line)
    # A classic mistake: a checksum left at zero instead of computed over the pseudo-header.
    zero_checksum = syn_ack_cell.replace("options=[MSS(65495)],", "options=[MSS(65495)],\n        checksum=0,")
    assert zero_checksum != syn_ack_cell
    answers = {line: (zero_checksum if source == syn_ack_cell else source) for line, source in answers.items()}
    submission = fill_answers(EXERCISES_DIR / f"{EXERCISE_01}.ipynb", answers, tmp_path / f"{EXERCISE_01}.ipynb")
    q2 = outputs_of(execute(submission), 'grader.check("q2")')
    assert "checksum 0x0000 is wrong" in q2 and "it should be 0x" in q2, q2


def test_grade_class_writes_one_csv_and_leaves_submissions_untouched(
    assigned: dict[str, AssignedNotebook], tmp_path: Path
) -> None:
    submissions = tmp_path / "submissions"
    (submissions / "bob").mkdir(parents=True)
    full = Path(shutil.copy(assigned[EXERCISE_01].autograder_notebook, submissions / "alice.ipynb"))
    empty = Path(shutil.copy(EXERCISES_DIR / f"{EXERCISE_01}.ipynb", submissions / "bob" / f"{EXERCISE_01}.ipynb"))
    stray = submissions / "notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), stray)
    before = {path: sha256(path) for path in (full, empty, stray)}
    out = tmp_path / "scores.csv"

    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grade_class.py"), str(submissions), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    assert {path: sha256(path) for path in before} == before, "grading modified a submitted notebook"
    assert sorted(path.name for path in submissions.rglob("*") if path.is_file()) == [
        f"{EXERCISE_01}.ipynb",
        "alice.ipynb",
        "notes.ipynb",
    ], "grading left files in the submissions folder"
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"alice.ipynb", f"bob/{EXERCISE_01}.ipynb", "notes.ipynb"}
    alice, bob, notes = rows["alice.ipynb"], rows[f"bob/{EXERCISE_01}.ipynb"], rows["notes.ipynb"]
    assert (alice["q1"], alice["q2"], alice["total"], alice["possible"], alice["error"]) == ("2", "3", "5", "5", "")
    assert (bob["q1"], bob["q2"], bob["total"], bob["possible"], bob["error"]) == ("0", "0", "0", "5", "")
    assert notes["assignment"] == "" and notes["total"] == "0" and "no otter assignment name" in notes["error"]
