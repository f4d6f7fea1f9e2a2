"""Grading under attack: hostile submissions cannot cheat, poison, hang, escape or read what is not theirs,
and the honest submissions graded beside them still get their right scores.

One class folder is graded once per session (``hostile_class``): two honest solutions of exercise 06
(first and last in grading order) around one notebook per attack.  Each attack is a real notebook, the
exercise with its answers left blank and one extra code cell, graded by the real ``grade_folder`` in the
real sandbox (bubblewrap; ``.ci/run`` installs it).
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import require_sandbox

from handshake_lib.grading import GradingError, SandboxLimits, SubmissionScore, grade_folder, read_assignment
from handshake_lib.grading import sandbox as sandbox_module
from handshake_lib.grading.channel import FunctionReference, Unrepresentable, dumps_checked, restricted_loads
from handshake_lib.grading.sandbox import SandboxedProcess, sandbox_problem
from handshake_lib.tls.constants import CipherSuite

pytestmark = pytest.mark.peer  # bubblewrap is a system peer: CI installs it, REQUIRE_PEERS makes it mandatory

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = "06_session_keys"
SOLUTION = ROOT / "solutions" / f"{EXERCISE}.ipynb"
BLANK = ROOT / "exercises" / f"{EXERCISE}.ipynb"
MARKER = "handshakes-escape-917"  # a child process that would outlive grading carries this in its command line
SECRET = "instructor-token-5d1e"




def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _solution_notebook() -> nbformat.NotebookNode:
    """The master with otter's assignment name, as a learner with every answer right hands it in."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if cell.cell_type != "raw"]
    notebook.metadata["otter"] = {"assignment_name": EXERCISE}
    return notebook


def _hostile(extra: str, *, metadata: dict | None = None) -> nbformat.NotebookNode:
    notebook = nbformat.read(BLANK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(extra))
    if metadata:
        notebook.metadata["otter"].update(metadata)
    return notebook


def _attacks(outside: Path, port: int) -> dict[str, nbformat.NotebookNode]:
    grading_files = sorted(str(path) for path in (ROOT / "handshake_lib" / "grading").glob("*.py"))
    return {
        # Patches whatever test machinery it can reach, and answers with an object equal to everything.
        "monkeypatch": _hostile(
            "import builtins, handshake_lib.grading.runner as runner\n"
            "runner._run_test = lambda *args, **kwargs: (True, '')\n"
            "builtins.AssertionError = type('Never', (Exception,), {})\n"
            "class Always(bytes):\n"
            "    def __eq__(self, other): return True\n"
            "    def __ne__(self, other): return False\n"
            "def p_sha256(secret, seed, length): return Always(b'x' * length)\n"
            "def prf(secret, label, seed, length, hash_name='sha256'): return Always(b'x' * length)\n"
        ),
        # otter embeds the public tests in the notebook: these claim 200 points and always pass.
        "rewritten_tests": _hostile(
            "x = 1\n",
            metadata={"tests": {"q1": {"name": "q1", "points": 200, "suites": [{"cases": [{"code": "True"}]}]}}},
        ),
        # Tries to rewrite the grader and the masters for everyone graded after it.
        "poison": _hostile(
            "import pathlib\n"
            "def _poison():\n"
            "    done = []\n"
            f"    for name in {grading_files!r} + [{str(SOLUTION)!r}]:\n"
            "        try:\n"
            "            pathlib.Path(name).write_text('def p_sha256(*a): return b\"\"\\n')\n"
            "            done.append(name)\n"
            "        except OSError:\n"
            "            pass\n"
            "    return done\n"
            "poisoned = _poison()\n"
        ),
        # A C-level loop that never releases the GIL.
        "gil_loop": _hostile("x = sum(range(10**14))\n"),
        # A child in a session of its own, and a grandchild of a double fork.
        "escape": _hostile(
            "import subprocess\n"
            f"child = subprocess.Popen(['sh', '-c', 'exec -a {MARKER} sleep 600'], start_new_session=True)\n"
            f"daemon = subprocess.Popen(['sh', '-c', '(setsid sh -c \"exec -a {MARKER} sleep 600\" &)'])\n"
        ),
        # Writes outside its folder, reads the instructor's environment, phones home over the network.
        "outside": _hostile(
            "import os, socket\n"
            "def _try(action):\n"
            "    try:\n"
            "        return action()\n"
            "    except Exception as error:\n"
            "        return error\n"
            f"wrote = _try(lambda: open({str(outside)!r}, 'w').write('escaped'))\n"
            f"phoned = _try(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi'))\n"
            "def p_sha256(secret, seed, length):\n"
            f"    raise ValueError('token=' + repr(os.environ.get('HANDSHAKES_SECRET')))\n"
        ),
        # Eats memory and processes.
        "hog": _hostile(
            "import os\n"
            "big = bytearray(8 * 1024**3)\n"
        ),
    }


@dataclass(frozen=True)
class HostileClass:
    scores: dict[str, SubmissionScore]
    csv_rows: dict[str, dict[str, str]]
    outside: Path
    phoned: list[bytes]
    grading_hashes_before: dict[Path, str]


@pytest.fixture(scope="session")
def hostile_class(tmp_path_factory: pytest.TempPathFactory) -> HostileClass:
    require_sandbox()
    root = tmp_path_factory.mktemp("hostile")
    submissions = root / "submissions"
    submissions.mkdir()
    outside = root / "escaped.txt"
    listener = socket.create_server(("127.0.0.1", 0))
    phoned: list[bytes] = []

    def listen() -> None:
        listener.settimeout(0.2)
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                phoned.append(conn.recv(100))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    grading_files = [*sorted((ROOT / "handshake_lib" / "grading").glob("*.py")), SOLUTION]
    before = {path: _sha(path) for path in grading_files}
    nbformat.write(_solution_notebook(), submissions / "a_honest.ipynb")
    for name, notebook in _attacks(outside, listener.getsockname()[1]).items():
        nbformat.write(notebook, submissions / f"m_{name}.ipynb")
    nbformat.write(_solution_notebook(), submissions / "z_honest.ipynb")
    out = root / "scores.csv"
    old = os.environ.get("HANDSHAKES_SECRET")
    os.environ["HANDSHAKES_SECRET"] = SECRET  # in the grader's environment, as an instructor's token would be
    try:
        scores = grade_folder(submissions, out, timeout=6, jobs=2)
    finally:
        if old is None:
            del os.environ["HANDSHAKES_SECRET"]
        else:
            os.environ["HANDSHAKES_SECRET"] = old
        listener.close()
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    return HostileClass({score.file: score for score in scores}, rows, outside, phoned, before)


@pytest.mark.parametrize("honest", ["a_honest.ipynb", "z_honest.ipynb"])
def test_honest_submissions_beside_the_attacks_get_full_marks(hostile_class: HostileClass, honest: str) -> None:
    score = hostile_class.scores[honest]
    assert score.error == "" and score.total == score.total_possible == 5, score.feedback


def test_monkeypatching_the_test_runner_and_an_always_equal_answer_score_nothing(hostile_class: HostileClass) -> None:
    score = hostile_class.scores["m_monkeypatch.ipynb"]
    assert score.total == 0 and score.total_possible == 5, score.feedback
    assert "cannot accept" in score.feedback["q1"], score.feedback["q1"]  # the Always object never arrived


def test_points_come_from_the_master_not_from_the_submission(hostile_class: HostileClass) -> None:
    row = hostile_class.csv_rows["m_rewritten_tests.ipynb"]
    assert (row["q1"], row["q2"], row["total"], row["possible"]) == ("0", "0", "0", "5")
    master = read_assignment(SOLUTION)
    assert [(q.name, q.points) for q in master.questions] == [("q1", 3.0), ("q2", 2.0)]


def test_a_submission_cannot_poison_the_grader_or_the_masters(hostile_class: HostileClass) -> None:
    after = {path: _sha(path) for path in hostile_class.grading_hashes_before}
    assert after == hostile_class.grading_hashes_before
    assert hostile_class.scores["m_poison.ipynb"].total == 0
    assert hostile_class.scores["z_honest.ipynb"].total == 5  # graded after the poison, with the real tests


def test_a_loop_that_holds_the_gil_is_stopped_at_the_deadline(hostile_class: HostileClass) -> None:
    score = hostile_class.scores["m_gil_loop.ipynb"]
    assert score.error == "grading took longer than 6 s and was stopped", score.error
    assert score.seconds < 6 + 3, score.seconds  # stopped at the deadline, not when the loop ended
    assert hostile_class.csv_rows["m_gil_loop.ipynb"]["error"] == score.error


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_no_process_outlives_grading(hostile_class: HostileClass) -> None:
    assert hostile_class.scores["m_escape.ipynb"].total == 0
    assert _processes_with(MARKER) == []
    assert _processes_with("handshake_lib.grading.worker") == []
    # Nor any folder or cgroup: the sandboxes' scratch folders and pids cgroups are all gone.
    assert list(Path(tempfile.gettempdir()).glob("handshakes-grade-*")) == []
    cgroups = Path("/sys/fs/cgroup")
    assert [*cgroups.glob("handshakes-grade-*"), *cgroups.glob("*/handshakes-grade-*")] == []


def test_nothing_is_written_outside_no_network_no_environment(hostile_class: HostileClass) -> None:
    score = hostile_class.scores["m_outside.ipynb"]
    assert not hostile_class.outside.exists()
    assert hostile_class.phoned == []
    assert "token=None" in score.feedback["q1"], score.feedback["q1"]
    assert SECRET not in repr(score)


def test_memory_limit_turns_a_huge_allocation_into_a_failure(hostile_class: HostileClass) -> None:
    score = hostile_class.scores["m_hog.ipynb"]
    assert score.error == "" and score.total == 0
    assert "MemoryError" in score.feedback["definitions"], score.feedback


def test_the_sandbox_limits_processes(tmp_path: Path) -> None:
    """The process limit holds for root too (a pids cgroup where one can be made, RLIMIT_NPROC otherwise)."""
    require_sandbox()
    script = (
        "import os, time\n"
        "from handshake_lib.grading.worker import apply_limits\n"
        "apply_limits({'cpu_seconds': 10, 'memory_bytes': 2**31, 'max_file_bytes': 2**20, 'max_open_files': 64,"
        " 'max_processes': 8})\n"
        "made = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(3); os._exit(0)\n"
        "        made += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print('made', made, flush=True)\n"
    )
    output = tmp_path / "out.txt"
    with SandboxedProcess(tmp_path, limits=SandboxLimits(max_processes=8)) as sandbox:
        sandbox.start([sys.executable, "-c", script], output=output)
        assert sandbox.process is not None
        sandbox.process.wait(timeout=20)
    made = int(output.read_text().split()[-1])
    assert made < 8, output.read_text()


def test_grading_refuses_without_a_sandbox_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "_bwrap", lambda: None)
    sandbox_problem.cache_clear()
    try:
        assert "bubblewrap is not installed" in (sandbox_problem() or "")
        with pytest.raises(GradingError, match="--no-sandbox"):
            grade_folder(tmp_path, tmp_path / "scores.csv")
        nbformat.write(_solution_notebook(), tmp_path / "honest.ipynb")
        scores = grade_folder(tmp_path, tmp_path / "scores.csv", sandboxed=False, timeout=30)
        assert [score.total for score in scores] == [5]
    finally:
        sandbox_problem.cache_clear()


def test_a_master_changed_during_grading_is_reported(tmp_path: Path) -> None:
    """Without the sandbox a submission can rewrite a master on disk: this run's scores stay right (the tests
    were read before grading), and grading says the file changed instead of leaving it for the next run."""
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    master = solutions / SOLUTION.name
    master.write_bytes(SOLUTION.read_bytes())
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(_hostile(f"import pathlib\nwritten = pathlib.Path({str(master)!r}).write_text('{{}}')\n"),
                   submissions / "poison.ipynb")
    nbformat.write(_solution_notebook(), submissions / "z_honest.ipynb")
    out = tmp_path / "scores.csv"
    with pytest.raises(GradingError, match="master notebooks changed while grading"):
        grade_folder(submissions, out, solutions_dir=solutions, sandboxed=False, timeout=30)
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row["total"] for row in csv.DictReader(handle)}
    assert rows == {"poison.ipynb": "0", "z_honest.ipynb": "5"}


# -- the channel: what learner code may send back ---------------------------------------------------------------
class _Sneaky(bytes):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = bytes.__hash__


class _Bomb:
    def __reduce__(self) -> tuple:
        return bytes, (10**12,)


def test_the_grader_accepts_plain_data_and_the_librarys_enums_only() -> None:
    value = (b"\x00\x01", 7, "text", [1.5, None, ...], {"k": {1, 2}}, CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256)
    assert restricted_loads(dumps_checked(value)) == value
    refused = restricted_loads(dumps_checked(_Sneaky(b"abc")))
    assert isinstance(refused, Unrepresentable) and refused != b"abc" and refused != refused
    # A crafted pickle that would make the grader allocate: builtins are not callable by name.
    bomb = pickle.dumps(_Bomb(), protocol=5)
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(bomb)
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps(os.system))
    assert FunctionReference("posix", "urandom").resolve() is os.urandom
    assert FunctionReference("os", "system").resolve() == FunctionReference("os", "system")
