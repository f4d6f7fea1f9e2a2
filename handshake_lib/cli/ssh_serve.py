"""``handshakes ssh serve --port P --host-key K --authorized-keys F [--password-file F] [--sftp-root DIR]``

Theory of operation
-------------------
Runs :class:`handshake_lib.net.ssh.SSHProbeServer`, our SSH server, on 127.0.0.1 (loopback only: it is
a teaching server, never a public one) until Ctrl-C or SIGTERM.  OpenSSH's ``ssh`` and ``sftp``,
``handshakes ssh exec``, asyncssh and paramiko can all log in to it.

* ``--host-key K``: a private key file in OpenSSH's format (``ssh-keygen -t ed25519 -N '' -f K``) or
  PEM, unencrypted, as sshd's ``HostKey`` files are.  Its fingerprint is printed at start, so a
  learner can compare it with what ``ssh`` asks about.
* ``--authorized-keys F``: one authorized_keys file for *every* user name (sshd keeps one per user);
  lines sshd would skip are skipped and reported on stderr with their numbers.
* ``--password-file F``: ``user:password`` lines (the password is everything after the first colon,
  the line end not part of it); empty lines and ``#`` comments are skipped, other bad lines reported.
  The passwords are offered through ``password`` and ``keyboard-interactive`` (one round with a
  "Password: " prompt that does not echo, as sshd with PAM asks), checked in constant time.
* Once logged in, a client runs only :mod:`handshake_lib.net.ssh_commands`' fixed command set (echo,
  date, whoami, ls, exit N, bytes N, wc -c, cat), never a shell; ``--sftp-root DIR`` serves the
  ``sftp`` subsystem inside DIR (``..``, absolute paths and symlinks never leave it), and ``ls`` lists
  it; ``direct-tcpip`` (``ssh -L``) reaches loopback only.  ``--keylog FILE`` appends each
  connection's secrets for Wireshark.

Output: one line on **stdout**, ``listening on 127.0.0.1:P (...)`` (``--port 0`` picks a free port:
scripts read it there); then on **stderr**, once each connection has ended, who logged in by which
method (and with which key), each failed attempt, each channel (the command and its exit status, the
SFTP session, the forward) and how the connection ended.  A connection lives at most
:data:`CONNECTION_SECONDS` (the whole connection and each silence of the client), logging in at most
:data:`LOGIN_GRACE` (sshd's LoginGraceTime is 120 s; a demo needs less); at most
:data:`MAX_CONNECTIONS` are served at once.  Stopping ends the connections still open at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import PassphraseRequired, PrivateKeyError
from ..ssh.authorized_keys import MAX_FILE_BYTES as MAX_AUTHORIZED_KEYS_BYTES
from ..ssh.authorized_keys import AuthorizedKeys
from ..ssh.hostkeys import MAX_PRIVATE_KEY_FILE, HostKeyPair
from .arguments import append_file, input_file, port
from .errors import EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from ..net.ssh import ServedConnection, SSHProbeServer

__all__ = [
    "CONNECTION_SECONDS",
    "LOGIN_GRACE",
    "MAX_CONNECTIONS",
    "MAX_PASSWORD_FILE",
    "MAX_PASSWORD_LINES",
    "PasswordFile",
    "describe_connection",
    "parse_password_file",
    "register",
    "run_serve",
]

CONNECTION_SECONDS = 600.0  # a connection's whole life, and the longest silence of its client
LOGIN_GRACE = 30.0
MAX_CONNECTIONS = 16
MAX_PASSWORD_FILE = 1024 * 1024
MAX_PASSWORD_LINES = 10_000
MAX_USER = 256
MAX_PASSWORD = 1024
SHOWN_BAD_LINES = 20  # bad lines reported one by one; past that, only their number


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="run our SSH server on loopback (a fixed command set, SFTP in one folder)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--port", type=port, required=True, metavar="P", help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--host-key", type=input_file, required=True, metavar="K", help="the server's private key (OpenSSH or PEM)"
    )
    parser.add_argument(
        "--authorized-keys", type=input_file, required=True, metavar="FILE",
        help="authorized_keys lines accepted for every user name",
    )  # fmt: skip
    parser.add_argument("--password-file", type=input_file, metavar="FILE", help="user:password lines")
    parser.add_argument("--sftp-root", type=_folder, metavar="DIR", help="serve SFTP inside this folder")
    parser.add_argument(
        "--keylog", type=append_file, metavar="FILE", help="append each connection's secrets (Wireshark's key log)"
    )
    parser.set_defaults(command=run_serve)


def _folder(text: str) -> Path:
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder" if path.exists() else f"{text} does not exist")
    return path


# -- the files ---------------------------------------------------------------------------------------
def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    if len(data) > limit:
        raise CommandError(f"{path}: {what} larger than {limit} bytes", EXIT_USAGE)
    return data


@dataclass(frozen=True)
class PasswordFile:
    """``user:password`` lines: the passwords, and the lines skipped (number, why)."""

    passwords: Mapping[str, str]
    bad_lines: tuple[tuple[int, str], ...] = ()


def parse_password_file(data: bytes) -> PasswordFile:
    """Parse ``user:password`` lines (see the module docstring); never raises for a bad line, only skips it."""
    passwords: dict[str, str] = {}
    bad: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number > MAX_PASSWORD_LINES:
            bad.append((number, f"more than {MAX_PASSWORD_LINES} lines: the rest were not read"))
            break
        line = raw.removesuffix(b"\r")
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((number, "not UTF-8 text"))
            continue
        user, colon, password = text.partition(":")
        if not colon:
            bad.append((number, "no ':' between the user name and the password"))
        elif not user or len(user) > MAX_USER or not user.isprintable() or any(c.isspace() for c in user):
            bad.append((number, f"the user name must be 1 to {MAX_USER} printable characters without spaces"))
        elif not password:
            bad.append((number, f"empty password for {user!r} (sshd's PermitEmptyPasswords is no)"))
        elif len(password.encode()) > MAX_PASSWORD:
            bad.append((number, f"password longer than {MAX_PASSWORD} bytes"))
        elif user in passwords:
            bad.append((number, f"{user!r} already has a password on an earlier line"))
        else:
            passwords[user] = password
    return PasswordFile(passwords, tuple(bad))


def _report_bad_lines(path: Path, bad: list[tuple[int, str]]) -> None:
    for number, reason in bad[:SHOWN_BAD_LINES]:
        print(f"{path}:{number}: skipped: {reason}", file=sys.stderr)
    if len(bad) > SHOWN_BAD_LINES:
        print(f"{path}: {len(bad) - SHOWN_BAD_LINES} more lines skipped", file=sys.stderr)


def _load_host_key(path: Path) -> HostKeyPair:
    data = _read_bounded(path, MAX_PRIVATE_KEY_FILE, "a private key file")
    try:
        return HostKeyPair.load(data)
    except PassphraseRequired:
        raise CommandError(
            f"{path} is encrypted: a host key must not be (sshd's are not either: ssh-keygen -N '')", EXIT_USAGE
        ) from None
    except PrivateKeyError as error:
        raise CommandError(f"{path}: {error}", EXIT_USAGE) from None


def _load_authorized_keys(path: Path) -> AuthorizedKeys:
    from ..errors import DecodeError

    data = _read_bounded(path, MAX_AUTHORIZED_KEYS_BYTES, "authorized_keys")
    try:
        keys = AuthorizedKeys.parse(data)
    except DecodeError as error:
        raise CommandError(f"{path}: {error}", EXIT_USAGE) from None
    _report_bad_lines(path, [(bad.line_number, bad.reason) for bad in keys.bad_lines])
    if keys.truncated:
        print(f"{path}: too many lines: the rest were not read", file=sys.stderr)
    return keys


# -- the log -----------------------------------------------------------------------------------------
def describe_connection(served: ServedConnection) -> list[str]:
    """A finished connection in a few lines: who logged in, the failed attempts, each channel, the end."""
    address, client_port = served.peer
    who = f"{address}:{client_port}"
    lines: list[str] = []
    for verdict in served.verdicts:
        outcome = verdict.outcome
        if verdict.method == "none" or outcome.verdict.name in ("SUCCESS", "PK_OK", "INFO_REQUEST", "PARTIAL"):
            continue
        lines.append(f"{who} {verdict.user!r} {verdict.method} refused: {outcome.reason or 'failed'}")
    user = served.user
    if user is not None:
        key = f" ({user.key.key.label} {user.key.fingerprint()})" if user.key is not None else ""
        lines.append(f"{who} {user.user!r} logged in by {'+'.join(user.methods)}{key}")
    for channel in served.channels:
        if channel.command is not None:
            what = f"exec {channel.command!r} -> exit status {channel.exit_status}"
        elif channel.subsystem is not None:
            what = f"subsystem {channel.subsystem}: {channel.bytes_in} bytes in, {channel.bytes_out} out"
        elif channel.target is not None:
            what = f"direct-tcpip to {channel.target[0]}:{channel.target[1]}: {channel.bytes_in} bytes in, " \
                f"{channel.bytes_out} out"  # fmt: skip
        else:
            what = channel.kind
        if channel.refused:
            what += f" (refused: {channel.refused})"
        lines.append(f"{who}   channel {channel.channel}: {what}")
    ending = f"ended: {served.error}" if served.error is not None else "closed"
    lines.append(f"{who} {ending}")
    return lines


def _stoppable(base: type[SSHProbeServer]) -> type[SSHProbeServer]:
    class StoppableServer(base):  # type: ignore[misc,valid-type]
        """SSHProbeServer whose open connections end as soon as it stops (Ctrl-C should not wait ten minutes)."""

        def _end_overdue_connections(self) -> None:
            # LoopbackServer's accept thread calls this while it runs and, once stopping, until every connection
            # thread has ended: then every connection is overdue, even one accepted a moment before the stop.
            if self._stop.is_set():
                with self._workers_lock:
                    for watch in self._deadlines:
                        self._deadlines[watch] = 0.0
            super()._end_overdue_connections()

    return StoppableServer


# -- the command -----------------------------------------------------------------------------------------
def run_serve(args: argparse.Namespace) -> int:
    host_key = _load_host_key(args.host_key)
    authorized = _load_authorized_keys(args.authorized_keys)
    passwords: Mapping[str, str] = {}
    if args.password_file is not None:
        parsed = parse_password_file(_read_bounded(args.password_file, MAX_PASSWORD_FILE, "the password file"))
        _report_bad_lines(args.password_file, list(parsed.bad_lines))
        passwords = parsed.passwords
    from ..net.ssh import SSHProbeServer
    from ..ssh.authentication import KeyboardInteractiveRound, ServerAuthPolicy
    from ..ssh.keylog import KeyLogWriter
    from ..ssh.messages import Prompt

    rounds: tuple[KeyboardInteractiveRound, ...] = ()
    if passwords:
        policy_passwords = dict(passwords)
        check = ServerAuthPolicy(passwords=policy_passwords).check_password  # the same constant-time comparison
        rounds = (
            KeyboardInteractiveRound(
                (Prompt("Password: ", echo=False),), lambda user, answers: len(answers) == 1 and check(user, answers[0])
            ),
        )
    policy = ServerAuthPolicy(authorized_keys=authorized, passwords=dict(passwords), keyboard_interactive=rounds)
    lock = threading.Lock()

    def finished(served: ServedConnection) -> None:
        with lock:
            for line in describe_connection(served):
                print(line, file=sys.stderr, flush=True)
            if served in server.connections:
                server.connections.remove(served)  # a server that runs for days keeps no old connections

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = _stoppable(SSHProbeServer)(
            (host_key,), auth=policy, sftp_root=args.sftp_root, login_grace=LOGIN_GRACE, timeout=CONNECTION_SECONDS,
            max_session=CONNECTION_SECONDS,
            max_connections=MAX_CONNECTIONS, on_secrets=KeyLogWriter(args.keylog) if args.keylog else None,
            on_finished=finished,
        )  # fmt: skip
        server.port = args.port
        with server:
            methods = ",".join(policy.offered_methods) or "none: nobody can log in"
            fingerprint = host_key.host_key.fingerprint_line(host_key.comment)
            print(
                f"listening on {server.host}:{server.port} (host key {fingerprint}; methods {methods}; Ctrl-C to stop)",
                flush=True,
            )
            while not stop.wait(0.2):
                pass
    except ValueError as error:
        raise CommandError(f"cannot serve: {error}", EXIT_USAGE) from None
    except OSError as error:
        raise CommandError(f"cannot serve on 127.0.0.1:{args.port}: {error.strerror or error}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", file=sys.stderr, flush=True)
    return 0
