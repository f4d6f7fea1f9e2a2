"""The only commands ``handshakes ssh serve`` runs: a fixed, harmless set, never a shell.

Theory of operation
-------------------
An SSH ``exec`` request carries one command string (RFC 4254 section 6.5); sshd hands it to the user's
shell.  A teaching server must not: :func:`start_command` splits the string as a POSIX shell would
quote it (``shlex``, no expansion of any kind: no ``$``, globs, pipes or redirections) and looks the
first word up in :data:`COMMANDS`.  Anything else is refused with exit status 127 and sshd's shell's
message ("command not found"), on stderr.

Each command is a small object the channel feeds (:class:`CommandRun`): ``begin()`` gives what it
writes at once, ``feed(data)`` what it writes for standard input, ``end()`` what it writes at EOF,
then ``exit_status``.  ``bytes N`` streams N bytes in chunks (:meth:`CommandRun.chunks`) so a 64 MiB
answer is never held in memory: the server sends each chunk as the channel window allows, which is
what lesson 15's flow-control demo watches.

The set: ``echo WORDS...``, ``date`` (UTC, as ``date -u``), ``whoami`` (the SSH user), ``ls`` (the
SFTP root's names, one per line, sorted), ``exit N``, ``bytes N`` (N bytes of a repeating pattern,
at most :data:`MAX_BYTES`), ``wc -c`` (counts standard input until EOF), ``cat`` (echoes standard
input back, at most :data:`MAX_CAT` bytes).
"""

from __future__ import annotations

import datetime
import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["COMMANDS", "MAX_BYTES", "MAX_CAT", "MAX_COMMAND", "CommandRun", "start_command"]

MAX_COMMAND = 4096  # bytes of command string (sshd passes up to 256 KiB to the shell; ours are one line)
MAX_BYTES = 64 * 1024 * 1024  # ``bytes N``
MAX_CAT = 16 * 1024 * 1024  # ``cat`` echoes at most this much, then stops echoing and exits 1
CHUNK = 32 * 1024
_PATTERN = bytes(range(32, 127)) + b"\n"  # printable, so a terminal shows it; 96 bytes per line


@dataclass
class CommandRun:
    """One running command: what it writes now, for input, at EOF; its exit status once done."""

    name: str
    stdout: bytes = b""  # written at once
    stderr: bytes = b""
    exit_status: int = 0
    reads_stdin: bool = False  # True: the command ends at EOF (``end``); False: it ends after ``begin``
    streamed: int = 0  # ``bytes N``: how many bytes ``chunks`` yields
    _on_input: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    _on_end: Callable[[], bytes] | None = field(default=None, repr=False)

    def chunks(self) -> Iterator[bytes]:
        """``bytes N``'s output, CHUNK bytes at a time (nothing for the other commands)."""
        left = self.streamed
        line = _PATTERN * (CHUNK // len(_PATTERN) + 1)
        while left > 0:
            size = min(left, CHUNK)
            yield line[:size]
            left -= size

    def feed(self, data: bytes) -> bytes:
        """Standard input arrived; what the command writes on stdout for it."""
        return self._on_input(data) if self._on_input is not None else b""

    def end(self) -> bytes:
        """Standard input ended (EOF); what the command writes last."""
        return self._on_end() if self._on_end is not None else b""


def _usage(name: str, message: str, status: int = 2) -> CommandRun:
    return CommandRun(name, stderr=f"{name}: {message}\n".encode(), exit_status=status)


def _echo(args: list[str], user: str, root: Path | None) -> CommandRun:
    return CommandRun("echo", stdout=(" ".join(args) + "\n").encode())


def _date(args: list[str], user: str, root: Path | None) -> CommandRun:
    if args:
        return _usage("date", "takes no arguments here")
    now = datetime.datetime.now(datetime.UTC)
    return CommandRun("date", stdout=now.strftime("%a %b %d %H:%M:%S UTC %Y\n").encode())


def _whoami(args: list[str], user: str, root: Path | None) -> CommandRun:
    return CommandRun("whoami", stdout=f"{user}\n".encode())


def _ls(args: list[str], user: str, root: Path | None) -> CommandRun:
    if args:
        return _usage("ls", "lists the served folder only, without arguments")
    if root is None:
        return _usage("ls", "no folder is served (start the server with --sftp-root)", 1)
    try:
        names = sorted(os.listdir(root))[:10_000]
    except OSError as error:
        return _usage("ls", error.strerror or str(error), 1)
    return CommandRun("ls", stdout="".join(f"{name}\n" for name in names).encode())


def _exit(args: list[str], user: str, root: Path | None) -> CommandRun:
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 255:
        return _usage("exit", "needs one status from 0 to 255")
    return CommandRun("exit", exit_status=int(args[0]))


def _bytes(args: list[str], user: str, root: Path | None) -> CommandRun:
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) > MAX_BYTES:
        return _usage("bytes", f"needs one count from 0 to {MAX_BYTES}")
    return CommandRun("bytes", streamed=int(args[0]))


def _wc(args: list[str], user: str, root: Path | None) -> CommandRun:
    if args != ["-c"]:
        return _usage("wc", "only wc -c (count the bytes of standard input)")
    count = [0]

    def feed(data: bytes) -> bytes:
        count[0] += len(data)
        return b""

    return CommandRun("wc", reads_stdin=True, _on_input=feed, _on_end=lambda: f"{count[0]}\n".encode())


def _cat(args: list[str], user: str, root: Path | None) -> CommandRun:
    if args:
        return _usage("cat", "echoes standard input; it reads no files")
    run = CommandRun("cat", reads_stdin=True)
    echoed = [0]

    def feed(data: bytes) -> bytes:
        room = MAX_CAT - echoed[0]
        echoed[0] += min(len(data), room)
        if len(data) > room:
            run.exit_status = 1
        return data[:room]

    run._on_input = feed
    return run


COMMANDS: dict[str, Callable[[list[str], str, Path | None], CommandRun]] = {
    "echo": _echo,
    "date": _date,
    "whoami": _whoami,
    "ls": _ls,
    "exit": _exit,
    "bytes": _bytes,
    "wc": _wc,
    "cat": _cat,
}


def start_command(command: str | bytes, *, user: str, root: Path | None = None) -> CommandRun:
    """The run of ``command`` (an exec request's string) for ``user``; refused ones exit 127 (126 too long)."""
    if isinstance(command, bytes):
        command = command.decode("utf-8", errors="replace")
    if len(command.encode()) > MAX_COMMAND:
        return _usage("handshakes", f"command longer than {MAX_COMMAND} bytes", 126)
    try:
        words = shlex.split(command)
    except ValueError as error:  # an unclosed quote
        return _usage("handshakes", f"cannot parse the command: {error}", 2)
    if not words:
        return _usage("handshakes", "no command (this server runs no shell)", 127)
    handler = COMMANDS.get(words[0])
    if handler is None:
        known = ", ".join(sorted(COMMANDS))
        return _usage(words[0], f"command not found (this server runs only: {known})", 127)
    return handler(words[1:], user, root)
