"""The questions, points and tests of an exercise, read from its master notebook (never from a submission).

A master notebook (``solutions/NN_name.ipynb``, otter-assign format) holds, per question, a raw
``# BEGIN QUESTION`` cell with YAML (``name``, ``points``) and, between ``# BEGIN TESTS`` and
``# END TESTS``, one code cell per test: an optional ``\"\"\" # BEGIN TEST CONFIG`` block (``hidden``,
``points``), one ``def test_...(names...)`` whose parameters are the notebook variables it checks, and
its call, marked ``# IGNORE``.

The grader takes everything that decides a score from here: which tests exist, which are hidden, how
many points each is worth.  A submission's own metadata (otter embeds the public tests in the student
notebook) is never read for grading, so a learner who rewrites it changes nothing.

Points follow otter's rule, so the scores match what ``otter`` itself would give: a test with its own
``points`` keeps them; the rest of the question's points are split evenly among the other tests.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from .exercises import GradingError, assignment_name

__all__ = ["TestCase", "Question", "Assignment", "read_assignment"]

_CONFIG_START = '""" # BEGIN TEST CONFIG'
_CONFIG_END = '""" # END TEST CONFIG'


@dataclass(frozen=True)
class TestCase:
    """One test function of a question: its source (without the ``# IGNORE`` call) and what it is worth."""

    __test__ = False  # not a pytest test class, despite the name

    name: str  # the function's name, test_...
    parameters: tuple[str, ...]  # the notebook variables it is called with, by name
    source: str
    hidden: bool
    points: float


@dataclass(frozen=True)
class Question:
    name: str  # q1, q2...
    points: float
    tests: tuple[TestCase, ...]


@dataclass(frozen=True)
class Assignment:
    """Everything the grader needs from one master notebook."""

    name: str
    master: Path
    sha256: str  # of the master's bytes: which version of the tests graded a submission
    questions: tuple[Question, ...]

    @property
    def points(self) -> float:
        return sum(question.points for question in self.questions)


def _test_case(source: str, where: str) -> tuple[str, tuple[str, ...], str, dict]:
    config: dict = {}
    stripped = source.lstrip()
    if stripped.startswith(_CONFIG_START):
        end = stripped.find(_CONFIG_END)
        if end < 0:
            raise GradingError(f"{where}: a TEST CONFIG block is not closed")
        config = yaml.safe_load(stripped[len(_CONFIG_START) : end]) or {}
        stripped = stripped[end + len(_CONFIG_END) :]
    # The call that otter marks "# IGNORE" only serves grader.check in the learner's kernel.
    body = "\n".join(line for line in stripped.splitlines() if not line.rstrip().endswith("# IGNORE"))
    try:
        tree = ast.parse(body)
    except SyntaxError as error:
        raise GradingError(f"{where}: the test does not parse: {error}") from None
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]
    if len(functions) != 1:
        raise GradingError(f"{where}: expected one test function, found {len(functions)}")
    function = functions[0]
    parameters = tuple(argument.arg for argument in function.args.args)
    return function.name, parameters, body.strip() + "\n", config


def _resolve_points(total: float | None, explicit: list[float | None]) -> list[float]:
    """otter's rule (``otter.test_files.abstract_test.resolve_test_file_points``) for the cases we use."""
    given = sum(points for points in explicit if points is not None)
    unset = sum(points is None for points in explicit)
    if total is None:
        rest = 1 / unset if unset and given == 0 else 0.0
    else:
        if given > total:
            raise GradingError(f"the tests give {given} points, more than the question's {total}")
        rest = (total - given) / unset if unset else 0.0
    return [points if points is not None else rest for points in explicit]


def read_assignment(master: Path) -> Assignment:
    """Parse ``master`` into its questions and tests; a malformed master is a :class:`GradingError`."""
    master = Path(master)
    data = master.read_bytes()
    name = assignment_name(master)
    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    questions: list[Question] = []
    current: dict | None = None
    raw_tests: list[tuple[str, tuple[str, ...], str, dict]] = []
    in_tests = False
    for index, cell in enumerate(notebook.cells):
        marker = cell.source.strip().upper() if cell.cell_type == "raw" else ""
        if marker.startswith("# BEGIN QUESTION"):
            current = yaml.safe_load(cell.source) or {}
            raw_tests = []
        elif marker == "# BEGIN TESTS":
            in_tests = True
        elif marker == "# END TESTS":
            in_tests = False
        elif marker == "# END QUESTION":
            if current is None or "name" not in current:
                raise GradingError(f"{master.name}: a question without a name ends at cell {index}")
            total = current.get("points")
            points = _resolve_points(None if total is None else float(total), [
                None if config.get("points") is None else float(config["points"]) for *_, config in raw_tests
            ])
            tests = tuple(
                TestCase(test_name, parameters, source, bool(config.get("hidden", False)), test_points)
                for (test_name, parameters, source, config), test_points in zip(raw_tests, points, strict=True)
            )
            questions.append(Question(str(current["name"]), sum(points) if total is None else float(total), tests))
            current = None
        elif in_tests and cell.cell_type == "code" and cell.source.strip():
            raw_tests.append(_test_case(cell.source, f"{master.name}, cell {index}"))
    if not questions:
        raise GradingError(f"{master.name}: no questions found")
    return Assignment(name, master, hashlib.sha256(data).hexdigest(), tuple(questions))
