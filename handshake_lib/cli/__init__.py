"""The command line's parts: one module per command group, each with ``register(subparsers)``.

A command is a function ``(args: argparse.Namespace) -> int`` stored as ``args.command`` by
``set_defaults``.  Commands raise :class:`CommandError` for failures they can explain in one line;
:func:`run` prints ``handshakes: error: <message>`` on stderr and returns the error's exit status, so
that a learner sees the cause, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import cert, pki, ssh, tcp, tls
from .errors import EXIT_FAILURE, EXIT_USAGE, CommandError

__all__ = ["CommandError", "EXIT_FAILURE", "EXIT_USAGE", "build_parser", "run"]

PROG = "handshakes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="See the TCP, TLS and SSH handshakes byte by byte, against real peers.",
    )
    groups = parser.add_subparsers(title="command groups", metavar="{tls,ssh,tcp,pki,cert}", required=True)
    for module in (tls, ssh, tcp, pki, cert):
        module.register(groups)
    return parser


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help (0) or a usage error (2): argparse has printed why
        return int(exit_request.code or 0)
    try:
        return int(args.command(args) or 0)
    except CommandError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``handshakes tcp decode | head``): nothing is wrong with the command, and
        # nobody is left to read a message.  Point stdout at /dev/null so the interpreter's last flush
        # at exit does not raise the same error again (the recipe of Python's signal documentation).
        _silence_stdout()
        return EXIT_FAILURE
    except OSError as error:  # what no command expected: most often stdout itself (a full disk, /dev/full)
        print(f"{PROG}: error: {error.strerror or error}", file=sys.stderr)
        _silence_stdout()
        return EXIT_FAILURE


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout): nothing to silence
        pass
