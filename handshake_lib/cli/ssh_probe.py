"""``handshakes ssh probe``: (being built; see issue 10)."""

from __future__ import annotations

import argparse

from .errors import CommandError

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("probe", help="(not yet available)")
    parser.set_defaults(command=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    raise CommandError("ssh probe is not available yet")
