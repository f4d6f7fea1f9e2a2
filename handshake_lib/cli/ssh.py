"""``handshakes ssh ...``: the SSH transport against real servers, and captures decoded.

One module per command, each with ``register(commands)``: ``ssh probe`` (:mod:`.ssh_probe`) and ``ssh
decode`` (:mod:`.ssh_decode`).
"""

from __future__ import annotations

import argparse

from . import ssh_decode, ssh_probe

__all__ = ["register"]


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("ssh", help="the SSH transport: probe a server, decode a capture")
    commands = parser.add_subparsers(title="commands", metavar="{probe,decode}", required=True)
    ssh_probe.register(commands)
    ssh_decode.register(commands)
