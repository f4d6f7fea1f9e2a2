"""The process that holds a learner's code during grading, inside the sandbox.

    python -m handshake_lib.grading.worker FD LIMITS_JSON

It first sets its own limits (CPU, memory, file size, open files, processes: inherited by anything it
starts and impossible to raise again), then serves the grader over the socket ``FD``
(:mod:`.channel`):

``("define", cells, strict)``
    Run the *definitions* of the submitted notebook's code cells, in order, in one namespace: imports,
    ``def``, ``class`` and assignments at the top level of a cell.  Everything else (a ``print``, a
    ``with`` block that starts a live handshake, ``grader.check``...) is left out, as is any statement
    that mentions ``otter`` or ``grader``: the grader needs the learner's functions, not the lesson's
    demonstrations.  A statement that raises is reported and skipped (``strict``: reported, then stop).
``("describe", name)``
    What the learner's notebook holds under ``name``: a function (with its signature, defaults
    included), a value, or nothing.
``("call", name, arguments)``
    Call the learner's function with the grader's arguments and send back what it returned or raised.
    An argument that the grader sent as a callback calls back over the channel.
``("bye",)``
    Exit.

Nothing the learner's code does here reaches the tests, which run in the grader's process and see only
the data this worker sends back.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import json
import os
import pickle
import resource
import signal
import socket
import sys
import types
from typing import Any

from .channel import Channel, FunctionReference, dumps_checked

_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                    ast.AnnAssign)
_GRADER_NAMES = {"otter", "grader"}


def apply_limits(limits: dict[str, int]) -> None:
    def limit(kind: int, value: int, hard: int | None = None) -> None:
        resource.setrlimit(kind, (value, value if hard is None else hard))

    limit(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 1)  # SIGXCPU, then SIGKILL
    limit(resource.RLIMIT_AS, limits["memory_bytes"])
    limit(resource.RLIMIT_FSIZE, limits["max_file_bytes"])
    limit(resource.RLIMIT_NOFILE, limits["max_open_files"])
    limit(resource.RLIMIT_NPROC, limits["max_processes"])  # the kernel ignores it for root: see sandbox.py
    limit(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over the limit: an OSError in Python, not a kill


def _mentions_grader(node: ast.AST) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in _GRADER_NAMES:
            return True
        if isinstance(child, ast.alias) and child.name.split(".")[0] in _GRADER_NAMES:
            return True
    return False


def _without_magics(source: str) -> str:
    # IPython's %magics and !shell lines are not Python; blank them, keeping line numbers.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def define(namespace: dict[str, Any], cells: list[str], strict: bool) -> list[str]:
    """Run the definitions in ``cells``; return one line per problem (a cell that does not parse, a raise)."""
    problems: list[str] = []
    for number, source in enumerate(cells, start=1):
        try:
            tree = ast.parse(_without_magics(source))
        except SyntaxError as error:
            problems.append(f"code cell {number} does not parse (line {error.lineno}): {error.msg}")
            if strict:
                return problems
            continue
        for statement in tree.body:
            if not isinstance(statement, _KEPT_STATEMENTS) or _mentions_grader(statement):
                continue
            code = compile(ast.Module(body=[statement], type_ignores=[]), f"<code cell {number}>", "exec")
            try:
                exec(code, namespace)  # noqa: S102 - the point of this process; it runs in the sandbox
            except BaseException as error:  # noqa: BLE001 - SystemExit and friends are the learner's too
                problems.append(f"code cell {number}, line {statement.lineno}: {type(error).__name__}: {error}")
                if strict:
                    return problems
    return problems


def _describe_default(value: Any) -> bytes:
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return dumps_checked(FunctionReference(getattr(value, "__module__", None) or "", value.__qualname__))
    return dumps_checked(value)


def describe(namespace: dict[str, Any], name: str) -> tuple:
    if name not in namespace:
        return ("missing",)
    value = namespace[name]
    if not callable(value):
        return ("value", dumps_checked(value))
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return ("function", None)
    parameters = []
    for parameter in signature.parameters.values():
        has_default = parameter.default is not parameter.empty
        default = _describe_default(parameter.default) if has_default else b""
        parameters.append((parameter.name, int(parameter.kind), has_default, default))
    return ("function", parameters)


class Worker:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def _load_from_grader(self, payload: bytes) -> Any:
        worker = self

        class Loader(pickle.Unpickler):
            def persistent_load(self, pid: Any) -> Any:
                return worker.callback(pid)

        return Loader(io.BytesIO(payload)).load()

    def callback(self, pid: Any) -> Any:
        """A stand-in for a function of the grader's: calling it asks the grader to run it."""
        channel = self.channel

        def call_back(*args: Any, **kwargs: Any) -> Any:
            channel.send_bytes(pickle.dumps(("callback", pid, dumps_checked((args, kwargs))), protocol=5))
            kind, *rest = channel.receive()
            if kind == "callback-return":
                return self._load_from_grader(rest[0])
            exception = getattr(builtins, rest[0], None)
            if isinstance(exception, type) and issubclass(exception, Exception):
                raise exception(rest[1])
            raise RuntimeError(f"{rest[0]}: {rest[1]}")

        return call_back

    def call(self, name: str, payload: bytes) -> tuple:
        args, kwargs = self._load_from_grader(payload)
        try:
            result = self.namespace[name](*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - whatever the learner's code raised goes back as data
            try:
                message = str(error)[:4000]
            except BaseException:  # noqa: BLE001 - a learner's __str__ may raise too
                message = "?"
            return ("raise", type(error).__module__, type(error).__qualname__, message)
        return ("return", dumps_checked(result))

    def serve(self) -> None:
        while True:
            kind, *rest = self.channel.receive()
            if kind == "define":
                answer: tuple = ("defined", define(self.namespace, rest[0], rest[1]))
            elif kind == "describe":
                answer = describe(self.namespace, rest[0])
            elif kind == "call":
                answer = self.call(rest[0], rest[1])
            else:
                return
            self.channel.send_bytes(pickle.dumps(answer, protocol=5))


def main(argv: list[str]) -> None:
    fd, limits = int(argv[0]), json.loads(argv[1])
    apply_limits(limits)
    channel = Channel(socket.socket(fileno=fd), trusting=True)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the process
    Worker(channel).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
