"""Exercises and grading: master notebooks become student notebooks; submissions become one CSV.

* :mod:`.exercises`: ``otter assign`` on the masters in ``solutions/``, written reproducibly to ``exercises/``
  (``make exercises``).  Learners check their work with otter's ``grader.check`` (public tests only).
* :mod:`.masters`: the questions, points and tests (hidden ones included) read from a master.
* :mod:`.runner`: grading.  The masters' tests run in the grader; the learner's functions run in a
  sandbox (:mod:`.sandbox`, bubblewrap) and answer over a channel that carries data only
  (:mod:`.channel`, :mod:`.worker`).  Nothing a submission does can change a score but its answers.
* :mod:`.report`: the CSV and the per-question picture.

Names are imported lazily (PEP 562): the sandboxed worker imports this package and should not pay for
nbformat, YAML and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "REPO_ROOT": "exercises",
    "SOLUTIONS_DIR": "exercises",
    "EXERCISES_DIR": "exercises",
    "GradingError": "exercises",
    "AssignedNotebook": "exercises",
    "master_notebooks": "exercises",
    "assignment_config": "exercises",
    "assignment_name": "exercises",
    "assign": "exercises",
    "normalise_student_notebook": "exercises",
    "exercise_text": "exercises",
    "make_exercises": "exercises",
    "Assignment": "masters",
    "Question": "masters",
    "TestCase": "masters",
    "read_assignment": "masters",
    "DEFAULT_TIMEOUT_SECONDS": "runner",
    "SubmissionScore": "runner",
    "LearnerRaised": "runner",
    "grade_submission": "runner",
    "grade_folder": "runner",
    "read_assignments": "runner",
    "SandboxLimits": "sandbox",
    "sandbox_problem": "sandbox",
    "write_scores_csv": "report",
    "write_score_chart": "report",
    "summary_lines": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
