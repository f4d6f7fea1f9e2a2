"""``handshakes ssh ...``: the SSH transport against real servers, and captures decoded.

One module per command, each with ``register(commands)``: ``ssh probe`` (:mod:`.ssh_probe`), ``ssh exec``
(:mod:`.ssh_exec`), ``ssh serve`` (:mod:`.ssh_serve`) and ``ssh decode`` (:mod:`.ssh_decode`).
"""

from __future__ import annotations

import argparse

from . import ssh_decode, ssh_exec, ssh_probe, ssh_serve

__all__ = ["register"]


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("ssh", help="SSH: probe a server, run a command, serve, decode a capture")
    commands = parser.add_subparsers(title="commands", metavar="{probe,exec,serve,decode}", required=True)
    ssh_probe.register(commands)
    ssh_exec.register(commands)
    ssh_serve.register(commands)
    ssh_decode.register(commands)
