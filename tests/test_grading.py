"""Graded exercises: solutions score full marks, untouched exercises run and score zero, exercises/ is
otter assign's output byte for byte, wrong answers get feedback that says what was expected, and the
instructor's grading leaves the submitted files alone.

Nothing is mocked: ``otter assign`` and ``grader.check`` run for real in executing kernels, and grading
runs the real sandbox.  The expensive work is done once per session and shared:

* ``otter assign`` runs once per master notebook (the ``assigned`` fixture).  Its student notebook,
  normalised, must equal the committed ``exercises/`` file byte for byte.  Those bytes came from an
  earlier run, so the comparison also proves the output is reproducible.
* every notebook the course ships runs top to bottom once in a fresh kernel (``executed``): each
  solution (otter's autograder notebook) and each untouched exercise; a cell that raises fails.
  ``solutions/`` is therefore not also run by nbval.
* one strict ``grade_folder`` grades a class folder of all of them (``graded_class``), as
  ``scripts/grade_class.py`` grades a class.  Hostile submissions: tests/test_grading_sandbox.py.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbclient
import nbformat
import pytest
from conftest import require_sandbox

from handshake_lib.grading import (
    EXERCISES_DIR,
    SOLUTIONS_DIR,
    AssignedNotebook,
    SubmissionScore,
    assign,
    exercise_text,
    grade_folder,
    grade_submission,
    master_notebooks,
    normalise_student_notebook,
    read_assignment,
    write_score_chart,
)
from handshake_lib.grading.report import score_distribution

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
MASTERS = master_notebooks(SOLUTIONS_DIR)
EXERCISE_01 = "01_tcp_three_way_handshake"
# Two at a time: a notebook spends much of its run starting a kernel and waiting on loopback peers.
JOBS = 2




def _ids(path: Path) -> str:
    return path.stem


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def assigned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AssignedNotebook]:
    """otter assign output (student notebook, solution notebook, autograder zip) for every master.

    No ``run_tests``: otter would execute every solution once more; ``executed`` runs each one and
    ``graded_class`` grades it against every test, hidden ones included.
    """
    scratch = tmp_path_factory.mktemp("assigned")
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        built = pool.map(lambda master: assign(master, scratch / master.stem, run_tests=False), MASTERS)
        return {master.stem: notebook for master, notebook in zip(MASTERS, built, strict=True)}


@dataclass(frozen=True)
class GradedClass:
    submissions: Path
    hashes_before: dict[Path, str]  # every file in ``submissions`` before grading
    scores: dict[str, SubmissionScore]  # by path relative to ``submissions``
    csv_rows: dict[str, dict[str, str]]  # the CSV grade_folder wrote, by its ``file`` column


@pytest.fixture(scope="session")
def graded_class(assigned: dict[str, AssignedNotebook], tmp_path_factory: pytest.TempPathFactory) -> GradedClass:
    """A class folder with every solution (``solved/``), every untouched exercise (``untouched/``) and a
    notebook that is no exercise, graded once, strictly, as ``scripts/grade_class.py`` grades a class."""
    require_sandbox()
    root = tmp_path_factory.mktemp("class")
    submissions = root / "submissions"
    for folder in ("solved", "untouched"):
        (submissions / folder).mkdir(parents=True)
    for master in MASTERS:
        # The autograder notebook is the solution with otter's init cell: what a perfect learner hands in.
        shutil.copy(assigned[master.stem].autograder_notebook, submissions / "solved" / master.name)
        shutil.copy(EXERCISES_DIR / master.name, submissions / "untouched" / master.name)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), submissions / "notes.ipynb")
    hashes_before = {path: sha256(path) for path in submissions.rglob("*") if path.is_file()}
    out = root / "scores.csv"
    scores = grade_folder(submissions, out, strict=True, jobs=JOBS)
    with open(out, newline="", encoding="utf-8") as handle:
        csv_rows = {row["file"]: row for row in csv.DictReader(handle)}
    return GradedClass(submissions, hashes_before, {score.file: score for score in scores}, csv_rows)


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


def hidden_test_names(master: Path) -> set[str]:
    """The names of the hidden test functions of a master, as the grader reads them."""
    return {test.name for question in read_assignment(master).questions for test in question.tests if test.hidden}


def test_there_is_a_master_for_every_exercise() -> None:
    assert [path.name for path in MASTERS] == sorted(path.name for path in EXERCISES_DIR.glob("*.ipynb"))
    assert f"{EXERCISE_01}.ipynb" in [path.name for path in MASTERS]


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_committed_exercise_is_otter_assigns_output_byte_for_byte(
    master: Path, assigned: dict[str, AssignedNotebook]
) -> None:
    committed = EXERCISES_DIR / master.name
    assert committed.exists(), f"exercises/{master.name} is missing: run `make exercises`"
    fresh = exercise_text(assigned[master.stem]).encode("utf-8")
    assert committed.read_bytes() == fresh, f"exercises/{master.name} is stale: run `make exercises`"


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_student_notebook_has_no_outputs_public_checks_and_no_hidden_tests(
    master: Path, assigned: dict[str, AssignedNotebook]
) -> None:
    text = (EXERCISES_DIR / master.name).read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert "grader.check(" in text
    # Only public tests travel with the student: hidden ones stay in the autograder.
    hidden = hidden_test_names(master)
    assert "hidden=True" not in text
    assert not {name for name in hidden if f"def {name}(" in text}, "a hidden test is in the student notebook"


def test_every_master_has_hidden_tests(assigned: dict[str, AssignedNotebook]) -> None:
    """What makes the check above bite: the masters do hold hidden tests, found by name, and otter's
    autograder (what otter itself would grade with) holds the same ones."""
    for master in MASTERS:
        hidden = hidden_test_names(master)
        assert hidden
        with zipfile.ZipFile(assigned[master.stem].autograder_zip) as archive:
            sources = "".join(archive.read(name).decode() for name in archive.namelist() if name.startswith("tests/"))
        assert all(f"def {name}(" in sources for name in hidden)


def otter_like_student_notebook(seed: int) -> nbformat.NotebookNode:
    """A notebook with what otter assign and a machine put in one: random ids, outputs, local metadata."""
    rng = random.Random(seed)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Question 1"),
            nbformat.v4.new_code_cell(
                "answer = ...", execution_count=rng.randint(1, 99), outputs=[nbformat.v4.new_output("stream", text="x")]
            ),
            nbformat.v4.new_code_cell('grader.check("q1")'),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": f"3.11.{seed}"},
            "otter": {"assignment_name": "99_example", "tests": {"q1": "..."}},
            "widgets": {"state": {str(seed): {}}},
        },
    )
    for cell in notebook.cells:
        cell["id"] = f"{rng.getrandbits(64):016x}"
    return notebook


def test_normalising_makes_two_otter_runs_give_the_same_bytes(tmp_path: Path) -> None:
    """otter assign gives cells random ids: exercise_text must not let them (or outputs, or the machine) through.

    The committed exercises prove this for the real masters across runs; this proves it without a second run.
    """
    texts = []
    for seed in (1, 2):
        student = tmp_path / str(seed) / "99_example.ipynb"
        student.parent.mkdir()
        nbformat.write(otter_like_student_notebook(seed), student)
        built = AssignedNotebook("99_example", tmp_path / "99_example.ipynb", student, student, student)
        texts.append(exercise_text(built))
    assert nbformat.writes(otter_like_student_notebook(1)) != nbformat.writes(otter_like_student_notebook(2))
    assert texts[0] == texts[1] and texts[0].endswith("}\n")
    normalised = nbformat.reads(texts[0], as_version=4)
    assert [cell.id for cell in normalised.cells] == ["99_example-000", "99_example-001", "99_example-002"]
    assert normalised.cells[1].outputs == [] and normalised.cells[1].execution_count is None
    assert sorted(normalised.metadata) == ["kernelspec", "otter"]
    assert normalise_student_notebook(otter_like_student_notebook(3), "1.5").cells[0].id == "1-5-000"


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_solution_scores_full_marks(master: Path, graded_class: GradedClass) -> None:
    score = graded_class.scores[f"solved/{master.name}"]
    assert score.error == ""
    assert score.assignment == master.stem
    assert score.possible and score.total_possible > 0
    assert score.scores == score.possible, score.feedback


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_untouched_exercise_scores_zero(master: Path, graded_class: GradedClass) -> None:
    score = graded_class.scores[f"untouched/{master.name}"]
    assert score.error == ""  # strict grading: every definition in the untouched notebook ran
    assert score.total_possible > 0 and score.total == 0, score.scores
    # Every question reports its failing tests, hidden ones included, each with the assertion's message.
    assert set(score.feedback) == set(score.possible)
    for question, feedback in score.feedback.items():
        header, *lines = feedback.splitlines()
        assert header == f"{question}: 0 of {len(lines)} tests passed", feedback
        assert all(": FAILED: " in line for line in lines), feedback
        assert any("(hidden): FAILED" in line for line in lines), feedback


def test_strict_grading_turns_a_definition_that_raises_into_an_error(tmp_path: Path) -> None:
    """What makes the two tests above fail when a solution or an untouched exercise cannot be defined."""
    require_sandbox()
    master = SOLUTIONS_DIR / f"{EXERCISE_01}.ipynb"
    notebook = nbformat.read(master, as_version=4)
    notebook.cells.insert(1, nbformat.v4.new_code_cell('broken = int("this cell always raises")'))
    crashing = tmp_path / f"{EXERCISE_01}.ipynb"
    nbformat.write(notebook, crashing)
    assignment = read_assignment(master)
    strict = grade_submission(crashing, assignment, strict=True)
    assert strict.error.startswith("a definition raised: code cell 1, line 1: ValueError"), strict.error
    assert strict.total == 0
    # Not strict (a learner's notebook): the statement is skipped, reported, and the rest is graded.
    lenient = grade_submission(crashing, assignment)
    assert lenient.error == "" and lenient.total == lenient.total_possible == 5
    assert "ValueError: invalid literal" in lenient.feedback["definitions"]


@pytest.fixture(scope="session")
def executed(
    assigned: dict[str, AssignedNotebook], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, nbformat.NotebookNode | str]:
    """Every solution (otter's autograder notebook) and every untouched exercise, run top to bottom once in a
    fresh kernel, in a folder of its own: ``solved/NN_name`` or ``untouched/NN_name`` -> the executed
    notebook, or the error that stopped it."""
    scratch = tmp_path_factory.mktemp("executed")
    notebooks = {}
    for master in MASTERS:
        notebooks[f"solved/{master.stem}"] = assigned[master.stem].autograder_notebook
        untouched = scratch / master.stem / master.name  # grader.check writes .OTTER_LOG beside the notebook
        untouched.parent.mkdir()
        shutil.copy(EXERCISES_DIR / master.name, untouched)
        notebooks[f"untouched/{master.stem}"] = untouched

    def run(path: Path) -> nbformat.NotebookNode | str:
        try:
            return execute(path)
        except nbclient.exceptions.CellExecutionError as error:
            return str(error)[:2000]

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        return dict(zip(notebooks, pool.map(run, notebooks.values()), strict=True))


def check_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    return [outputs_of(notebook, f'grader.check("{question}")') for question in ("q1", "q2", "q3")
            if outputs_of(notebook, f'grader.check("{question}")')]


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_solution_runs_top_to_bottom_and_passes_its_checks(
    master: Path, executed: dict[str, nbformat.NotebookNode | str]
) -> None:
    notebook = executed[f"solved/{master.stem}"]
    assert not isinstance(notebook, str), notebook
    checks = check_outputs(notebook)
    assert checks and all("All test cases passed" in check for check in checks), checks


@pytest.mark.parametrize("master", MASTERS, ids=_ids)
def test_untouched_exercise_runs_top_to_bottom_and_its_checks_fail(
    master: Path, executed: dict[str, nbformat.NotebookNode | str]
) -> None:
    notebook = executed[f"untouched/{master.stem}"]
    assert not isinstance(notebook, str), notebook
    checks = check_outputs(notebook)
    assert checks and all("failed" in check and "All test cases passed" not in check for check in checks), checks


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


def test_grading_a_class_writes_one_csv_and_leaves_submissions_untouched(graded_class: GradedClass) -> None:
    after = {path: sha256(path) for path in graded_class.submissions.rglob("*") if path.is_file()}
    assert after == graded_class.hashes_before, "grading modified, added or removed a file in the submissions"
    rows = graded_class.csv_rows
    every_notebook = {f"{kind}/{master.name}" for master in MASTERS for kind in ("solved", "untouched")}
    assert set(rows) == set(graded_class.scores) == every_notebook | {"notes.ipynb"}
    columns = ("q1", "q2", "total", "possible", "error")
    solved, untouched = rows[f"solved/{EXERCISE_01}.ipynb"], rows[f"untouched/{EXERCISE_01}.ipynb"]
    assert tuple(solved[column] for column in columns) == ("2", "3", "5", "5", "")
    assert tuple(untouched[column] for column in columns) == ("0", "0", "0", "5", "")
    assert solved["assignment"] == untouched["assignment"] == EXERCISE_01
    notes = rows["notes.ipynb"]
    assert notes["assignment"] == "" and notes["total"] == "0" and "no otter assignment name" in notes["error"]


def test_exercise_04_wrong_checks_let_the_wrong_certificates_through_and_grading_says_so(tmp_path: Path) -> None:
    """Exercise 04's hidden live tests, graded in the sandbox: the learner's checks decide our client's, so a
    host check that only asks "does it name something?" and a validity check that forgot notAfter let
    another host's and an expired certificate through, and the feedback says which and why."""
    require_sandbox()
    name = "04_certificate_validation"
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{name}.ipynb")
    wrong = {}
    for first_line in answers:
        if "def host_matches" in first_line:
            wrong[first_line] = first_line + "\n    return bool(dns_names or ip_addresses)\n"
        elif "def within_validity" in first_line:
            wrong[first_line] = first_line + "\n    return not_before <= at\n"
    assert len(wrong) == 2, "the master's answer cells changed; update this test"
    submission = fill_answers(EXERCISES_DIR / f"{name}.ipynb", wrong, tmp_path / f"{name}.ipynb")
    score = grade_submission(submission, read_assignment(SOLUTIONS_DIR / f"{name}.ipynb"), strict=True)
    assert score.error == "" and score.scores == {"q1": 0.0, "q2": 1.0}, score.feedback
    q1, q2 = score.feedback["q1"], score.feedback["q2"]
    assert "a certificate for www.other.example, asked for as localhost: your host_matches let the wrong host " \
           "through (the page arrived)" in q1, q1
    assert "the library's check disagrees" in q1, q1  # the validator's report, quoted to the learner
    assert "host_matches('127.0.0.2', [], ['127.0.0.1']) should be False (another address), yours says True" in q1
    assert "a certificate for localhost that expired yesterday: your within_validity let it through" in q2, q2
    assert "test_both_ends_are_inclusive: passed" in q2, q2


def test_grade_class_script_writes_a_row_per_notebook_and_exits_zero(tmp_path: Path) -> None:
    """The command line around grade_folder (graded above), on notebooks it can grade without a kernel."""
    submissions = tmp_path / "submissions"
    (submissions / "bob").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), submissions / "notes.ipynb")
    other_course = nbformat.v4.new_notebook(metadata={"otter": {"assignment_name": "99_not_this_course"}})
    nbformat.write(other_course, submissions / "bob" / "99_not_this_course.ipynb")
    (submissions / "broken.ipynb").write_text("{not json", encoding="utf-8")
    before = {path: sha256(path) for path in submissions.rglob("*") if path.is_file()}
    out = tmp_path / "scores.csv"

    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grade_class.py"), str(submissions), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(rf"wrote {re.escape(str(out))} \(3 submissions in [0-9.]+ s\)", run.stdout), run.stdout
    assert {path: sha256(path) for path in submissions.rglob("*") if path.is_file()} == before
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"notes.ipynb", "bob/99_not_this_course.ipynb", "broken.ipynb"}
    assert "no otter assignment name" in rows["notes.ipynb"]["error"]
    assert "no master notebook for assignment '99_not_this_course'" in rows["bob/99_not_this_course.ipynb"]["error"]
    assert rows["broken.ipynb"]["error"].startswith("not a readable notebook")
    assert all(row["total"] == "0" for row in rows.values())


def test_the_instructor_gets_a_picture_of_each_questions_scores(graded_class: GradedClass, tmp_path: Path) -> None:
    scores = list(graded_class.scores.values())
    counts = score_distribution(scores)
    # One solved and one untouched notebook per exercise: one full mark and one zero for every question.
    questions = {(master.stem, question.name) for master in MASTERS for question in read_assignment(master).questions}
    assert set(counts) == questions
    assert all(bands == {"full marks": 1, "part": 0, "zero": 1, "not graded": 0} for bands in counts.values())
    picture = tmp_path / "scores.png"
    assert write_score_chart(scores, picture)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    assert not write_score_chart([], tmp_path / "empty.png") and not (tmp_path / "empty.png").exists()


def test_exercise_09_wrong_ecdhe_stages_fail_the_way_openssl_makes_them_fail(tmp_path: Path) -> None:
    """Exercise 09's hidden live tests, graded in the sandbox: a pre-master secret that is not the shared
    secret ends in OpenSSL's bad_record_mac, a signature check over the wrong bytes refuses OpenSSL's genuine
    ServerKeyExchange (decrypt_error, which OpenSSL logs), and a thief who forgets RFC 7627 gets the
    master secret of a session without it only."""
    require_sandbox()
    name = "09_forward_secrecy"
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{name}.ipynb")
    edits = {
        "def ecdhe_premaster_secret": (
            "return client_private_key.exchange(x25519.X25519PublicKey.from_public_bytes(server_public))",
            "return server_public",
        ),
        "def check_server_key_exchange_signature": (
            "signed = client_random + server_random + params",
            "signed = server_random + client_random + params",
        ),
        "from handshake_lib.tls.prf": ("if connection.extended_master_secret:", "if False:"),
    }
    wrong = {}
    for first_line, source in answers.items():
        for start, (old, new) in edits.items():
            if first_line.startswith(start):
                assert old in source, "the master's answer cells changed; update this test"
                wrong[first_line] = source.replace(old, new)
    assert len(wrong) == 3, "the master's answer cells changed; update this test"
    submission = fill_answers(EXERCISES_DIR / f"{name}.ipynb", wrong, tmp_path / f"{name}.ipynb")
    score = grade_submission(submission, read_assignment(SOLUTIONS_DIR / f"{name}.ipynb"), strict=True)
    assert score.error == "", score.feedback
    assert score.scores == {"q1": pytest.approx(1.0), "q2": 0.0, "q3": pytest.approx(4 / 3)}, score.feedback
    q1, q2, q3 = score.feedback["q1"], score.feedback["q2"], score.feedback["q3"]
    assert "test_rfc_5903_p256_vector: passed" in q1 and "RFC 7748's shared secret is 4a5d9d5b" in q1, q1
    assert "bad_record_mac" in q1 and "DECRYPTION_FAILED_OR_BAD_RECORD_MAC" in q1, q1  # OpenSSL's words
    assert "OpenSSL's real ServerKeyExchange signature must give True, yours gave False" in q2, q2
    assert "TLSV1_ALERT_DECRYPT_ERROR" in q2, q2  # OpenSSL received our decrypt_error
    assert "test_a_session_without_extended_master_secret (hidden): passed" in q3, q3
    assert "the client's first protected record (Finished) does not open" in q3, q3


def test_exercise_10_a_wrong_traffic_key_is_refused_by_openssl(tmp_path: Path) -> None:
    """Exercise 10's hidden live test, graded in the sandbox: traffic keys with the "key" and "iv" labels mixed up
    leave HKDF-Expand-Label and Derive-Secret right (full marks), and our TLS 1.3 server running them cannot be
    read by OpenSSL's client, which says so (DECRYPTION_FAILED_OR_BAD_RECORD_MAC) and alerts our server."""
    require_sandbox()
    name = "10_tls13"
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{name}.ipynb")
    old = 'hkdf_expand_label(hash_name, secret, "key", b"", key_length)'
    wrong = {  # every answer right but traffic_keys
        first: source.replace(old, 'hkdf_expand_label(hash_name, secret, "iv", b"", key_length)')
        if first.startswith("def traffic_keys")
        else source
        for first, source in answers.items()
    }
    assert len(wrong) == 3 and sum(old in source for source in answers.values()) == 1, (
        "the master's answer cells changed; update this test"
    )
    submission = fill_answers(EXERCISES_DIR / f"{name}.ipynb", wrong, tmp_path / f"{name}.ipynb")
    score = grade_submission(submission, read_assignment(SOLUTIONS_DIR / f"{name}.ipynb"), strict=True)
    assert score.error == "", score.feedback
    assert score.scores == {"q1": pytest.approx(3.0), "q2": pytest.approx(2.0), "q3": 0.0}, score.feedback
    q3 = score.feedback["q3"]
    assert "the client handshake key and IV are dbfaa693" in q3, q3
    assert "DECRYPTION_FAILED_OR_BAD_RECORD_MAC" in q3 and "bad_record_mac" in q3, q3  # OpenSSL's words, then ours


def test_exercise_11_wrong_binding_and_ticket_check_fail_the_way_openssl_makes_them_fail(tmp_path: Path) -> None:
    """Exercise 11's hidden live tests, graded in the sandbox: both verify_data in every hello makes OpenSSL's
    server abort our client's renegotiation (RENEGOTIATION_MISMATCH) and our server abort s_client's; a ticket
    opened without its MAC checked resumes honest tickets but also a tampered one, and s_client then
    cannot open our Finished (bad record mac)."""
    require_sandbox()
    name = "11_resumption_and_renewal"
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{name}.ipynb")
    edits = {
        "def renegotiation_info": ('    if sender == "client":\n        return client_verify_data\n', ""),
        "def open_ticket": (
            '    if not hmac.compare_digest(hmac.new(hmac_key, body, "sha256").digest(), mac):\n        return None\n',
            "",
        ),
    }
    wrong = {}
    for first_line, source in answers.items():
        for start, (old, new) in edits.items():
            if first_line.startswith(start):
                assert old in source, "the master's answer cells changed; update this test"
                wrong[first_line] = source.replace(old, new)
    assert len(wrong) == 2, "the master's answer cells changed; update this test"
    submission = fill_answers(EXERCISES_DIR / f"{name}.ipynb", wrong, tmp_path / f"{name}.ipynb")
    score = grade_submission(submission, read_assignment(SOLUTIONS_DIR / f"{name}.ipynb"), strict=True)
    assert score.error == "", score.feedback
    # q1: 4 tests, the ServerHello's value still right; q2: 5 tests, expiry and padding still right.
    assert score.scores == {"q1": pytest.approx(1.0), "q2": pytest.approx(2.4)}, score.feedback
    q1, q2 = score.feedback["q1"], score.feedback["q2"]
    assert "test_a_renegotiating_server_hello: passed" in q1, q1
    assert "a renegotiating ClientHello carries the client's verify_data" in q1, q1
    assert "RENEGOTIATION_MISMATCH" in q1, q1  # OpenSSL's server, on our client's ClientHello
    assert "sslv3 alert handshake failure" in q1, q1  # s_client, refused by our server with the same check
    assert "one bit of the MAC changed: expected None" in q2, q2
    assert "test_an_expired_ticket_is_refused (hidden): passed" in q2, q2
    assert "a ticket with one bit flipped (-sess_in): Reused" in q2 and "bad record mac" in q2, q2


def test_exercise_14_a_blob_without_the_session_id_is_refused_by_sshd(tmp_path: Path) -> None:
    """Exercise 14's hidden live test, graded in the sandbox: a blob that leaves out the session identifier
    (the learner's function runs in the sandbox, the login to sshd here) is refused by sshd, which logs
    "Failed publickey", and the feedback names the first field that differs; q1 (ssh_string) keeps its points."""
    require_sandbox()
    name = "14_ssh_user_authentication"
    answers = answer_cell_sources(SOLUTIONS_DIR / f"{name}.ipynb")
    old, new = "        ssh_string(session_id)\n", '        ssh_string(b"")\n'
    wrong = {line: source.replace(old, new) for line, source in answers.items()}  # ssh_string stays right
    assert sum(old in source for source in answers.values()) == 1, "the master's answer cells changed; update this"
    submission = fill_answers(EXERCISES_DIR / f"{name}.ipynb", wrong, tmp_path / f"{name}.ipynb")
    score = grade_submission(submission, read_assignment(SOLUTIONS_DIR / f"{name}.ipynb"), strict=True)
    assert score.error == "", score.feedback
    assert score.scores == {"q1": pytest.approx(3.0), "q2": 0.0}, score.feedback
    q2 = score.feedback["q2"]
    assert "field session_id: yours is (empty)" in q2, q2
    assert "sshd refused the login with a signature over your blob" in q2 and "Failed publickey for" in q2, q2
