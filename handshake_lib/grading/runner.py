"""Grading: the masters' tests, run in the grader, against a learner's functions held in a sandbox.

Theory of operation
-------------------
A submission is graded in two processes that do not trust each other in the same way:

1. A **worker** (:mod:`.worker`) starts in a fresh sandbox (:mod:`.sandbox`: bubblewrap, limits, no
   network but loopback, no writes outside its own folder, a clean environment).  It receives the code
   cells of the submitted notebook and runs only their definitions (imports, functions, classes,
   assignments), which gives it the learner's functions.
2. The **tests** come from the master notebook (:mod:`.masters`), never from the submission, and run
   here, in the grader.  Each test function is called with stand-ins (:class:`LearnerFunction`) for the
   notebook variables it names; calling one sends the arguments to the worker, which calls the
   learner's function and sends back the value (plain data only, :mod:`.channel`) or the exception.
   So a test's live handshake runs here with the learner's function plugged into it, one call at a time.

The learner's code can do anything inside the sandbox (patch the library, rewrite files, loop forever)
and none of it reaches a test: the verdicts, the points (from the master) and the CSV are computed on
this side.  One deadline covers a whole submission; past it the sandbox is killed with everything it
started, the tests that ran keep their scores and the row says why the rest did not.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import inspect
import io
import json
import pickle
import socket
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from .. import errors as library_errors
from .channel import (
    Channel,
    ChannelClosed,
    ChannelTimeout,
    FunctionReference,
    load_certificate,
    load_private_key,
    load_public_key,
    restricted_loads,
)
from .exercises import SOLUTIONS_DIR, GradingError, master_notebooks
from .masters import Assignment, TestCase, read_assignment
from .report import write_scores_csv
from .sandbox import SandboxedProcess, SandboxLimits, sandbox_problem

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "SubmissionScore",
    "LearnerRaised",
    "grade_submission",
    "grade_folder",
    "read_assignments",
]

# Per submission, from the sandbox's start to the last test.  A solved exercise takes about a second;
# the rest is room for a busy machine.  Past it the submission gets an error row, the class goes on.
DEFAULT_TIMEOUT_SECONDS = 60.0
_OUTPUT_FILE = "output.txt"  # the learner's prints and tracebacks, inside the sandbox's folder


@dataclass
class SubmissionScore:
    """One graded submission: a CSV row."""

    file: str  # path relative to the submissions folder
    assignment: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # question name -> points earned
    possible: dict[str, float] = field(default_factory=dict)  # question name -> points available (from the master)
    error: str = ""  # why the submission could not be (fully) graded; empty when it was
    feedback: dict[str, str] = field(default_factory=dict)  # question name -> one line per test
    seconds: float = 0.0  # how long grading it took

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def total_possible(self) -> float:
        return sum(self.possible.values())


class LearnerRaised(Exception):
    """The learner's function raised an exception the grader does not rebuild as itself (its own class...)."""


class _SubmissionStopped(BaseException):
    """The sandbox ended or ran out of time: no further test can run.  (A BaseException, so that a test's
    ``except Exception`` cannot turn it into one more failed assertion.)"""


def _rebuilt_exception(module: str, name: str, message: str) -> BaseException:
    """The learner's exception as the tests expect to catch it: builtin and library classes as themselves."""
    found: Any = None
    if module == "builtins":
        found = getattr(builtins, name, None)
    elif module == library_errors.__name__:
        found = getattr(library_errors, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        with contextlib.suppress(Exception):
            return found(message)
    return LearnerRaised(f"{name}: {message}")


# X25519: lesson 09's ecdhe_premaster_secret stage is handed our ephemeral X25519 private key.
_PUBLIC_KEY_TYPES = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, x25519.X25519PublicKey)
_PRIVATE_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, x25519.X25519PrivateKey)


class _CallbackPickler(pickle.Pickler):
    """Pickles arguments for the worker; a function that cannot travel by reference becomes a callback."""

    def __init__(self, file: io.BytesIO, callbacks: dict[int, Callable[..., Any]]) -> None:
        super().__init__(file, protocol=5)
        self.callbacks = callbacks

    def reducer_override(self, obj: Any) -> Any:
        # cryptography's keys and certificates do not pickle; they travel as DER and are loaded again.
        if isinstance(obj, _PUBLIC_KEY_TYPES):
            return load_public_key, (
                obj.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            )
        if isinstance(obj, _PRIVATE_KEY_TYPES):
            der = obj.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return load_private_key, (der,)
        if isinstance(obj, x509.Certificate):
            return load_certificate, (obj.public_bytes(serialization.Encoding.DER),)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinMethodType)) and not _by_reference(obj):
            self.callbacks[id(obj)] = obj
            return id(obj)
        return None


def _by_reference(function: Any) -> bool:
    """Whether pickle can send ``function`` as a name the worker imports (os.urandom), not as a callback."""
    owner = getattr(function, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return False  # a bound method (calls.append): its object lives here
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or "<" in qualname or module not in sys.modules:
        return False
    found: Any = sys.modules[module]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is function


class _Session:
    """The grader's side of one worker: calls with a deadline, callbacks served while waiting."""

    def __init__(self, channel: Channel, deadline: float) -> None:
        self.channel = channel
        self.deadline = deadline

    def _receive(self) -> tuple:
        try:
            message = self.channel.receive(self.deadline)
        except ChannelTimeout:
            raise _SubmissionStopped("time") from None
        except (ChannelClosed, OSError) as error:
            raise _SubmissionStopped(f"closed: {error}") from None
        except Exception as error:  # noqa: BLE001 - a malformed message from the sandbox: stop trusting it
            raise _SubmissionStopped(f"malformed message: {error}") from None
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            raise _SubmissionStopped("malformed message")
        return message

    def request(self, message: tuple) -> tuple:
        try:
            self.channel.send_bytes(pickle.dumps(message, protocol=5))
        except OSError as error:
            raise _SubmissionStopped(f"closed: {error}") from None
        return self._receive()

    def _value(self, payload: Any) -> Any:
        try:
            value = restricted_loads(payload)
        except Exception as error:  # noqa: BLE001 - see _receive
            raise _SubmissionStopped(f"malformed value: {error}") from None
        return value.resolve() if isinstance(value, FunctionReference) else value

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        callbacks: dict[int, Callable[..., Any]] = {}
        buffer = io.BytesIO()
        _CallbackPickler(buffer, callbacks).dump((args, kwargs))
        answer = self.request(("call", name, buffer.getvalue()))
        while answer[0] == "callback":
            answer = self._serve_callback(callbacks, answer)
        if answer[0] == "return":
            return self._value(answer[1])
        if answer[0] == "raise" and len(answer) == 4:
            raise _rebuilt_exception(*(str(part) for part in answer[1:]))
        raise _SubmissionStopped("malformed answer")

    def _serve_callback(self, callbacks: dict[int, Callable[..., Any]], message: tuple) -> tuple:
        function = callbacks.get(message[1]) if len(message) == 3 else None
        if function is None:
            raise _SubmissionStopped("a callback the grader never sent")
        args, kwargs = self._value(message[2])
        try:
            result = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the test's function raised: tell the learner's code
            return self.request(("callback-raise", type(error).__name__, str(error)))
        buffer = io.BytesIO()
        _CallbackPickler(buffer, callbacks).dump(result)
        return self.request(("callback-return", buffer.getvalue()))

    def variable(self, name: str) -> Any:
        """The notebook variable ``name`` as a test receives it: a :class:`LearnerFunction` or a value."""
        answer = self.request(("describe", name))
        if answer[0] == "missing":
            return _Missing(name)
        if answer[0] == "value":
            return self._value(answer[1])
        if answer[0] == "function":
            return LearnerFunction(self, name, self._signature(answer[1]))
        raise _SubmissionStopped("malformed answer")

    def _signature(self, parameters: Any) -> inspect.Signature | None:
        if parameters is None:
            return None
        try:
            return inspect.Signature([
                inspect.Parameter(str(name), inspect._ParameterKind(kind), **(
                    {"default": self._value(default)} if has_default else {}
                ))
                for name, kind, has_default, default in parameters
            ])
        except (TypeError, ValueError):
            return None


class LearnerFunction:
    """What a test receives for a learner's function: calling it calls the function in the sandbox."""

    def __init__(self, session: _Session, name: str, signature: inspect.Signature | None) -> None:
        self._session = session
        self.__name__ = self.__qualname__ = name
        if signature is not None:
            self.__signature__ = signature

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"


class _Missing:
    """A notebook variable the submission does not define: any use fails the test with a clear message."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NameError(f"{self.name} is not defined in your notebook (was its cell deleted or renamed?)")

    def __repr__(self) -> str:
        return f"<{self.name}: not defined in your notebook>"


def _run_test(test: TestCase, session: _Session, assignment: str) -> tuple[bool, str]:
    namespace: dict[str, Any] = {"__name__": "handshakes_grading_tests", "__builtins__": builtins}
    exec(compile(test.source, f"<{assignment}: {test.name}>", "exec"), namespace)  # noqa: S102 - our masters' tests
    arguments = [session.variable(name) for name in test.parameters]
    try:
        namespace[test.name](*arguments)
    except AssertionError as failure:
        return False, str(failure) or "an assertion failed"
    except Exception as error:  # noqa: BLE001 - the learner's code (or what it returned) made the test raise
        return False, f"{type(error).__name__}: {error}"
    return True, ""


def _notebook_code_cells(notebook_path: Path) -> list[str]:
    notebook = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    cells = []
    for cell in notebook.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def _output_tail(path: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        tail = handle.read().decode("utf-8", "replace").strip().splitlines()[-lines:]
        return " | ".join(tail)
    return ""


def grade_submission(
    submission: Path,
    assignment: Assignment,
    *,
    relative_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    strict: bool = False,
    sandboxed: bool = True,
    limits: SandboxLimits | None = None,
    hidden: Sequence[Path] = (),
) -> SubmissionScore:
    """Grade one notebook against ``assignment`` (see the module docstring); the file is only read.

    A definition that raises is skipped and the tests that need it fail, as a kernel would go on.
    ``strict`` makes it an ``error`` instead: the course's own notebooks must define everything
    cleanly, and the tests grade them this way.  ``hidden`` folders are invisible in the sandbox
    (the submissions folder, say); the masters' folder always is.
    """
    started = time.monotonic()
    deadline = started + timeout
    score = SubmissionScore(file=relative_name or Path(submission).name, assignment=assignment.name)
    score.possible = {question.name: question.points for question in assignment.questions}
    score.scores = dict.fromkeys(score.possible, 0.0)
    try:
        cells = _notebook_code_cells(submission)
    except (OSError, ValueError) as error:
        score.error = f"not a readable notebook: {error}"
        return score
    limits = limits or SandboxLimits(cpu_seconds=max(1, int(timeout) + 1))
    grader_end, worker_end = socket.socketpair()
    with tempfile.TemporaryDirectory(prefix="handshakes-grade-") as scratch, grader_end:
        workdir = Path(scratch)
        sandbox = SandboxedProcess(
            workdir, limits=limits, hidden=[assignment.master.parent, *hidden], sandboxed=sandboxed
        )
        with sandbox, worker_end:
            sandbox.start(
                [sys.executable, "-m", "handshake_lib.grading.worker", str(worker_end.fileno()),
                 json.dumps(limits.as_dict())],
                pass_fds=[worker_end.fileno()],
                output=workdir / _OUTPUT_FILE,
            )
            worker_end.close()  # the worker holds its own copy; ours would keep the channel open after it dies
            session = _Session(Channel(grader_end, trusting=False), deadline)
            try:
                _grade_in_session(session, assignment, cells, strict, score)
            except _SubmissionStopped as stopped:
                reason = str(stopped)
                if reason == "time":
                    score.error = f"grading took longer than {timeout:g} s and was stopped"
                else:
                    status = sandbox.stop()
                    tail = _output_tail(workdir / _OUTPUT_FILE)
                    score.error = f"the notebook's code ended the grading process (exit status {status}): {tail}"
                    if reason.startswith("malformed"):
                        score.error = f"grading stopped: the sandbox sent a {reason}"
            with contextlib.suppress(OSError, _SubmissionStopped):
                if not score.error:
                    session.channel.send_bytes(pickle.dumps(("bye",), protocol=5))
    score.seconds = time.monotonic() - started
    return score


def _grade_in_session(
    session: _Session, assignment: Assignment, cells: list[str], strict: bool, score: SubmissionScore
) -> None:
    answer = session.request(("define", cells, strict))
    problems = [str(problem) for problem in answer[1]] if answer[0] == "defined" else ["malformed answer"]
    if strict and problems:
        score.error = f"a definition raised: {problems[0]}"
        return
    for question in assignment.questions:
        lines = []
        for test in question.tests:
            passed, message = _run_test(test, session, assignment.name)
            label = f"{test.name}{' (hidden)' if test.hidden else ''}"
            if passed:
                score.scores[question.name] += test.points
                lines.append(f"{label}: passed")
            else:
                lines.append(f"{label}: FAILED: {message}")
        passed_count = sum(line.endswith(": passed") for line in lines)
        header = f"{question.name}: {passed_count} of {len(lines)} tests passed"
        score.feedback[question.name] = "\n".join([header, *(f"  {line}" for line in lines)])
    if problems:
        score.feedback["definitions"] = "\n".join(problems)


def _submitted_assignment(notebook_path: Path) -> str:
    """The assignment name otter stored in a submitted notebook's metadata ('' if it has none)."""
    with open(notebook_path, encoding="utf-8") as handle:
        notebook = json.load(handle)
    metadata = notebook.get("metadata", {}) if isinstance(notebook, dict) else {}
    otter_metadata = metadata.get("otter", {}) if isinstance(metadata, dict) else {}
    return str(otter_metadata.get("assignment_name", "")) if isinstance(otter_metadata, dict) else ""


def _submissions(submissions_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in Path(submissions_dir).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts and path.is_file()
    )


def read_assignments(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, Assignment]:
    """Every master in ``solutions_dir``, parsed once, by assignment name."""
    return {assignment.name: assignment for assignment in map(read_assignment, master_notebooks(solutions_dir))}


def grade_folder(
    submissions_dir: Path,
    out_csv: Path,
    *,
    solutions_dir: Path = SOLUTIONS_DIR,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    jobs: int = 1,
    strict: bool = False,
    sandboxed: bool = True,
    limits: SandboxLimits | None = None,
    assignments: Mapping[str, Assignment] | None = None,
) -> list[SubmissionScore]:
    """Grade every ``.ipynb`` under ``submissions_dir``; write one CSV row per notebook to ``out_csv``.

    Each notebook is matched to its master by the assignment name otter stored in its metadata.  A
    notebook that cannot be graded (not one of the course's exercises, not valid JSON, too slow) still
    gets a row, with zero points and the reason in ``error``, so nobody silently goes missing.
    Refuses (:class:`GradingError`) to run learners' code outside the sandbox unless ``sandboxed=False``.
    """
    if sandboxed and (problem := sandbox_problem()) is not None:
        raise GradingError(
            f"the grading sandbox cannot run on this machine: {problem}. Fix that, or grade with --no-sandbox "
            "(the learners' code then runs with your rights; see docs/instructors.md)"
        )
    submissions_dir = Path(submissions_dir)
    assignments = dict(assignments) if assignments is not None else read_assignments(solutions_dir)
    submissions = _submissions(submissions_dir)
    rows: dict[Path, SubmissionScore] = {}
    to_grade: list[tuple[Path, Assignment]] = []
    for submission in submissions:
        relative = submission.relative_to(submissions_dir).as_posix()
        try:
            name = _submitted_assignment(submission)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            rows[submission] = SubmissionScore(file=relative, error=f"not a readable notebook: {error}")
            continue
        if not name:
            rows[submission] = SubmissionScore(file=relative, error="no otter assignment name in the notebook")
        elif name not in assignments:
            rows[submission] = SubmissionScore(
                file=relative, assignment=name, error=f"no master notebook for assignment {name!r} in {solutions_dir}"
            )
        else:
            to_grade.append((submission, assignments[name]))

    def grade(item: tuple[Path, Assignment]) -> SubmissionScore:
        path, assignment = item
        return grade_submission(
            path, assignment, relative_name=path.relative_to(submissions_dir).as_posix(), timeout=timeout,
            strict=strict, sandboxed=sandboxed, limits=limits, hidden=[submissions_dir],
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for (path, _), score in zip(to_grade, pool.map(grade, to_grade), strict=True):
            rows[path] = score
    ordered = [rows[path] for path in submissions]
    write_scores_csv(ordered, out_csv, assignments.values())
    _check_masters_unchanged(assignments.values())
    return ordered


def _check_masters_unchanged(assignments: Iterable[Assignment]) -> None:
    """The scores came from the tests read before grading; say so loudly if the files changed since.

    In the sandbox the masters are not even visible.  Without it (``--no-sandbox``) a submission could
    rewrite one, which would not change this run's scores but would the next run's.
    """
    changed = []
    for assignment in assignments:
        try:
            digest = hashlib.sha256(assignment.master.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        if digest != assignment.sha256:
            changed.append(str(assignment.master))
    if changed:
        raise GradingError(
            f"master notebooks changed while grading: {', '.join(changed)}. This run's scores used the tests "
            "read before grading and are in the CSV; restore the masters (git checkout solutions/) before "
            "grading again"
        )

