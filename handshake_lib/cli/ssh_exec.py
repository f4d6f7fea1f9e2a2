"""``handshakes ssh exec USER@HOST[:PORT] (--identity KEY | --password-file F) --known-hosts FILE -- COMMAND...``

Theory of operation
-------------------
OpenSSH's ``ssh USER@HOST COMMAND`` with our client: :func:`handshake_lib.net.ssh.ssh_connect` connects,
checks the host key against ``--known-hosts`` exactly as ``ssh probe`` does (``--accept-new``, the
question on a terminal, "Host key verification failed."), logs in, then this module opens one
``session`` channel and sends ``exec`` with the words after ``--`` joined by spaces (``ssh`` joins its
arguments the same way: the server's shell, not us, splits them again).

While the command runs, one loop (:func:`_run_command`) waits on the socket and on our standard input:

* CHANNEL_DATA goes to our stdout and CHANNEL_EXTENDED_DATA (type 1) to our stderr, as it arrives, bytes
  untouched, so the two stay apart as they were on the server;
* our standard input is copied into the channel (at most :data:`STDIN_HIGH_WATER` bytes queued behind
  the server's window), then EOF when it ends: ``... -- wc -c < file`` works as with ``ssh``;
* ``exit-status`` N becomes our exit status.  A command killed by a signal (``exit-signal``) gives 255,
  as OpenSSH's ``ssh`` does (its exit status stays -1, which ``exit()`` turns into 255; it prints
  nothing); so does a channel closed without either.

Failures before the command runs exit 255, as ``ssh``'s do, with the line ``ssh`` would print
("USER@HOST: Permission denied (publickey,password).", "Host key verification failed.", "connect to
host H port P: Connection refused"), prefixed ``handshakes:`` where ``ssh`` writes ``ssh:``.  A bad
command line exits 2 with one line (argparse's, or ours for what argparse cannot check).

Credentials:

* ``--identity KEY``: an OpenSSH or PEM private key (Ed25519, ECDSA, RSA).  An encrypted one asks its
  passphrase on the terminal (``/dev/tty``, echo off, as ``ssh`` reads it: "Enter passphrase for key
  'KEY': ", three tries), waiting at most :data:`ASK_SECONDS`; with no terminal it fails in one line
  (exit 255, as ``ssh -o BatchMode=yes`` ends once it has no key to offer).
* ``--password-file F``: the password is F's first line, its line end (``\\n`` or ``\\r\\n``) not part of
  it.  It is offered to ``password`` and to ``keyboard-interactive`` prompts that do not echo (what a
  person would type at sshd+PAM's "Password:"); a prompt that echoes is answered with an empty line.

``--trace`` prints every packet of the connection, decrypted and annotated field by field (``ssh
probe``'s rendering; channel messages' fields come from ``ssh.channel_messages``), once the command
has ended, on **stderr**: stdout carries the command's output and nothing else, so ``... -- bytes 100 |
wc -c`` or a redirect into a file stays exact whether or not the trace is on.  ``--keylog FILE`` appends
the session's secrets for Wireshark.  ``--timeout`` bounds the connection and the login; the command
itself may run as long as it likes (``ssh`` sets no limit either), but each silence of the server is
bounded by :data:`COMMAND_SILENCE` seconds.
"""

from __future__ import annotations

import argparse
import os
import select
import selectors
import socket
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    AuthenticationFailed,
    ConnectionLost,
    ConnectionTimeout,
    HandshakeError,
    HostKeyNotVerifiable,
    PassphraseRequired,
    PasswordChangeRequired,
    PrivateKeyError,
    WrongPassphrase,
)
from ..ssh.hostkeys import MAX_PRIVATE_KEY_FILE, HostKeyPair
from ..ssh.known_hosts import HostKeyPolicy
from .arguments import MAX_SECONDS, append_file, input_file, seconds
from .errors import EXIT_USAGE, CommandError
from .ssh_probe import (
    ASK_SECONDS,
    DEFAULT_TIMEOUT,
    _append_known_host,
    _check_writable,
    _known_hosts_path,
    _local_user,
    _read_known_hosts,
    _stdin_is_terminal,
    ask_on_terminal,
    explain_ssh_failure,
    parse_destination,
    render_ssh_transcript,
)

if TYPE_CHECKING:
    from ..net.ssh_session import SSHSession
    from ..ssh.channels import ConnectionProtocol
    from ..ssh.messages import UserauthInfoRequest

__all__ = [
    "EXIT_SSH_FAILURE",
    "COMMAND_SILENCE",
    "MAX_COMMAND",
    "MAX_PASSWORD",
    "STDIN_HIGH_WATER",
    "register",
    "run_exec",
]

EXIT_SSH_FAILURE = 255  # ssh's status for every failure of its own (connection, host key, login, a signal)
COMMAND_SILENCE = MAX_SECONDS  # an hour without a byte from the server ends the wait (ssh would wait forever)
MAX_COMMAND = 256 * 1024  # bytes of command string: sshd's own limit on an exec request's command
MAX_PASSWORD = 1024  # bytes of a password file's first line (sshd refuses passwords longer than 1024 too)
MAX_PASSPHRASE = 1024
PASSPHRASE_TRIES = 3  # ssh's NumberOfPasswordPrompts
STDIN_HIGH_WATER = 1024 * 1024  # bytes of our stdin queued behind the server's window before we stop reading
READ_SIZE = 32 * 1024
PROG = "handshakes"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "exec", help="run one command on an SSH server, as 'ssh USER@HOST COMMAND' does", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("destination", metavar="USER@HOST[:PORT]", help="the server ([::1]:2222 for IPv6)")
    credentials = parser.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--identity", type=input_file, metavar="KEY", help="private key file (ssh -i)")
    credentials.add_argument(
        "--password-file", type=input_file, metavar="FILE", help="file whose first line is the password"
    )
    parser.add_argument(
        "--known-hosts", type=_known_hosts_path, required=True, metavar="FILE",
        help="known_hosts file in OpenSSH's format (a missing file is an empty one)",
    )  # fmt: skip
    parser.add_argument(
        "--accept-new", action="store_true",
        help="add an unknown host key to FILE without asking; a changed key is still refused",
    )  # fmt: skip
    parser.add_argument(
        "--trace", action="store_true", help="print every packet, decrypted and annotated, on stderr at the end"
    )
    parser.add_argument(
        "--keylog", type=append_file, metavar="FILE", help="append the session's secrets (Wireshark's SSH key log)"
    )
    parser.add_argument(
        "--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"seconds for the connection and the login (default {DEFAULT_TIMEOUT:g}, at most {MAX_SECONDS:g})",
    )  # fmt: skip
    parser.add_argument("words", nargs="*", metavar="-- COMMAND", help="the command and its arguments")
    parser.set_defaults(command=run_exec)
    parser.__class__ = _CommandAfterDashes  # the subparsers action made it; we only change how it splits


class _CommandAfterDashes(argparse.ArgumentParser):
    """Everything after the first ``--`` is the command, whatever options come between it and the host.

    argparse matches positionals in runs: in ``exec USER@HOST --identity K -- ls -l`` the run before
    ``--identity`` fills both USER@HOST and an empty COMMAND, and ``ls -l`` is then "unrecognized".
    ``ssh`` reads everything after the host as the command; we split at ``--`` first, as the usage says.
    """

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        args = list(sys.argv[1:] if args is None else args)
        if "--" not in args:
            parsed, extras = super().parse_known_args(args, namespace)
            if extras and not any(word.startswith("-") for word in extras):
                shown = " ".join(extras)
                self.error(f"put the command after '--' (found {shown[:60] + '...' if len(shown) > 60 else shown!r})")
            return parsed, extras
        split = args.index("--")
        parsed, extras = super().parse_known_args(args[:split], namespace)
        parsed.words = [*parsed.words, *args[split + 1 :]]
        return parsed, extras


# -- credentials -------------------------------------------------------------------------------------
def read_password_file(path: Path) -> str:
    """The first line of ``path``, without its line end; CommandError (exit 2) when there is none."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PASSWORD + 2)  # the longest password and its \r\n
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    line, newline, _ = data.partition(b"\n")
    if not newline and len(data) > MAX_PASSWORD:
        raise CommandError(f"{path}: the first line is longer than {MAX_PASSWORD} bytes", EXIT_USAGE)
    line = line.removesuffix(b"\r")
    if len(line) > MAX_PASSWORD:
        raise CommandError(f"{path}: the first line is longer than {MAX_PASSWORD} bytes", EXIT_USAGE)
    if not line:
        raise CommandError(f"{path}: the first line is empty; it should hold the password", EXIT_USAGE)
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: the password is not UTF-8 text", EXIT_USAGE) from None


def read_secret_on_terminal(prompt: str, deadline: float) -> str | None:
    """One line typed on the controlling terminal with echo off (``ssh``'s read_passphrase); None: no
    terminal, nothing typed before ``deadline``, or the end of input."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        saved = termios.tcgetattr(fd)
        quiet = list(saved)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        try:
            os.write(fd, prompt.encode())
            data = b""
            while not data.endswith(b"\n") and len(data) <= MAX_PASSPHRASE:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    return None
                chunk = os.read(fd, MAX_PASSPHRASE)
                if not chunk:
                    break
                data += chunk
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            os.write(fd, b"\n")  # the newline the person typed was not echoed
    except termios.error:
        return None
    finally:
        os.close(fd)
    if not data:
        return None
    return data.split(b"\n", 1)[0].removesuffix(b"\r").decode("utf-8", "replace")


def load_identity(path: Path) -> HostKeyPair:
    """The private key in ``path``; an encrypted one asks its passphrase on the terminal (three tries)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PRIVATE_KEY_FILE + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    try:
        return HostKeyPair.load(data)
    except PassphraseRequired:
        pass
    except PrivateKeyError as error:
        raise CommandError(f"{path}: {error}", EXIT_USAGE) from None
    deadline = time.monotonic() + ASK_SECONDS
    prompt = f"Enter passphrase for key '{path}': "
    for _ in range(PASSPHRASE_TRIES):
        passphrase = read_secret_on_terminal(prompt, deadline)
        if passphrase is None:
            raise CommandError(
                f"{path} is encrypted and no passphrase could be read (no terminal, or nothing typed)",
                EXIT_SSH_FAILURE,
            )
        try:
            return HostKeyPair.load(data, passphrase.encode())
        except WrongPassphrase:
            prompt = f"Bad passphrase, try again for {path}: "
        except PrivateKeyError as error:
            raise CommandError(f"{path}: {error}", EXIT_USAGE) from None
    raise CommandError(f"{path}: incorrect passphrase supplied to decrypt private key", EXIT_SSH_FAILURE)


def _password_answers(password: str) -> Callable[[UserauthInfoRequest], list[str]]:
    def answer(request: UserauthInfoRequest) -> list[str]:
        # sshd+PAM's "Password:" does not echo; a question that echoes is not asking for the password
        return [("" if prompt.echo else password) for prompt in request.prompts]

    return answer


# -- the command -----------------------------------------------------------------------------------
@dataclass
class _Run:
    """What the channel has said so far."""

    channel: int
    opened: bool = False
    exit_status: int | None = None
    exit_signal: str | None = None
    refused: str = ""
    closed: bool = False
    stdin_done: bool = False


class _OutputFailed(Exception):
    """Writing our own stdout or stderr failed (a closed pipe): not the connection's fault."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as error:
        raise _OutputFailed(error) from error


def _run_command(session: SSHSession, command: str) -> _Run:
    """Open a session channel, exec ``command``, copy stdin in and stdout/stderr out until it closes."""
    from ..ssh.channels import (
        ChannelClosed,
        ChannelData,
        ChannelOpened,
        ChannelOpenRefused,
        ChannelRequestAnswered,
        ExitSignal,
        ExitStatus,
    )

    protocol = session.channels
    run = _Run(protocol.open_session())
    protocol.exec(run.channel, command)
    selector = selectors.DefaultSelector()
    selector.register(session.sock, selectors.EVENT_READ, "ssh")
    try:
        stdin_fd: int | None = sys.stdin.fileno()
        os.fstat(stdin_fd)
    except (AttributeError, OSError, ValueError):
        stdin_fd = None  # no standard input at all: the command gets EOF at once
    stdout_fd, stderr_fd = sys.stdout.fileno(), sys.stderr.fileno()
    reading = False  # stdin is registered with the selector
    direct = False  # stdin cannot be polled (a regular file, /dev/null: epoll refuses them): read it in turn
    try:
        while not run.closed:
            if run.opened and not run.stdin_done and run.channel in protocol.channels:
                if stdin_fd is None:
                    run.stdin_done = True
                    protocol.send_eof(run.channel)
                elif direct:
                    while not run.stdin_done and _room(protocol, run):
                        _copy_stdin_once(protocol, run, stdin_fd)
                else:
                    room = _room(protocol, run)
                    if room and not reading:
                        try:
                            selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
                            reading = True
                        except (PermissionError, ValueError):
                            direct = True
                            continue
                    elif not room and reading:
                        selector.unregister(stdin_fd)  # the server's window is shut: wait for WINDOW_ADJUST
                        reading = False
            session.driver.flush()
            ready = selector.select(COMMAND_SILENCE)
            if not ready:
                raise ConnectionTimeout(f"the server sent nothing for {COMMAND_SILENCE:g} s")
            for key, _ in ready:
                if key.data == "stdin":
                    _copy_stdin_once(protocol, run, stdin_fd)  # after the socket's events of this wake-up
                    if run.stdin_done:
                        selector.unregister(stdin_fd)
                        reading = False
                    continue
                events = session.driver.receive(time.monotonic() + COMMAND_SILENCE)
                for event in events:
                    if getattr(event, "channel", None) != run.channel:
                        continue
                    if isinstance(event, ChannelOpened):
                        run.opened = True
                    elif isinstance(event, ChannelOpenRefused):
                        run.refused = f"channel {run.channel}: open failed: {event.description or event.reason}"
                        run.closed = True
                    elif isinstance(event, ChannelRequestAnswered) and event.name == "exec" and not event.success:
                        run.refused = f"exec request failed on channel {run.channel}"
                        protocol.close(run.channel)
                    elif isinstance(event, ChannelData):
                        _write(stderr_fd if event.stderr else stdout_fd, event.data)
                    elif isinstance(event, ExitStatus):
                        run.exit_status = event.status
                    elif isinstance(event, ExitSignal):
                        run.exit_signal = event.signal
                    elif isinstance(event, ChannelClosed):
                        run.closed = True
                if session.driver.peer_closed or session.client.closed:
                    run.closed = True
    finally:
        selector.close()
    return run


def _room(protocol: ConnectionProtocol, run: _Run) -> bool:
    """Whether less than STDIN_HIGH_WATER of our input waits behind the server's window (read more)."""
    return int(protocol.channel_info(run.channel)["buffered"]) < STDIN_HIGH_WATER


def _copy_stdin_once(protocol: ConnectionProtocol, run: _Run, fd: int | None) -> None:
    """One read of our stdin into the channel; at its end, EOF."""
    assert fd is not None
    if run.closed or run.channel not in protocol.channels:
        run.stdin_done = True  # the command has ended (its CLOSE came in the same wake-up): nobody reads more
        return
    try:
        data = os.read(fd, READ_SIZE)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if data:
        protocol.send_data(run.channel, data)
    else:
        run.stdin_done = True
        protocol.send_eof(run.channel)


def _fail(line: str) -> int:
    print(f"{PROG}: {line}", file=sys.stderr)
    return EXIT_SSH_FAILURE


def _print_trace(transcript: list, overflow: int = 0) -> None:
    if not transcript:
        return
    print(render_ssh_transcript(transcript), file=sys.stderr)
    if overflow:
        print(f"({overflow} more packets not kept: the transcript is bounded)", file=sys.stderr)
    sys.stderr.flush()


def run_exec(args: argparse.Namespace) -> int:
    user, host, port = parse_destination(args.destination)
    user = user if user is not None else _local_user()
    words = list(args.words)
    if not words:
        raise CommandError("no command after '--' (this client runs commands, never a shell)", EXIT_USAGE)
    command = " ".join(words)
    if len(command.encode("utf-8", "surrogateescape")) > MAX_COMMAND:
        raise CommandError(f"the command is longer than {MAX_COMMAND} bytes", EXIT_USAGE)
    known = _read_known_hosts(args.known_hosts)
    asking = not args.accept_new and _stdin_is_terminal()
    if args.accept_new:
        _check_writable(args.known_hosts)
    from ..ssh.authentication import ClientAuth

    if args.identity is not None:
        auth = ClientAuth(identities=(load_identity(args.identity),))
    else:
        password = read_password_file(args.password_file)
        auth = ClientAuth(password=password, answer=_password_answers(password))
    from ..net.ssh import ssh_connect
    from ..ssh.keylog import KeyLogWriter

    policy = HostKeyPolicy.ACCEPT_NEW if args.accept_new else HostKeyPolicy.ASK if asking else HostKeyPolicy.STRICT
    try:
        session = ssh_connect(
            host, port, user=user, auth=auth, known_hosts=known, host_key_policy=policy,
            ask=ask_on_terminal if asking else None, timeout=args.timeout,
            on_secrets=KeyLogWriter(args.keylog) if args.keylog is not None else None,
        )  # fmt: skip
    except (HandshakeError, OSError) as error:
        exchange = error.exchange if isinstance(error, HandshakeError) else None
        if args.trace and exchange is not None:
            _print_trace(exchange.transcript)
        return _login_failure(error, user, host, port, policy)
    with session:
        decision = session.login.host_key_decision
        if decision.new_text is not None:
            problem = _append_known_host(args.known_hosts, known, decision.new_text)
            if problem is None:
                print(decision.message, file=sys.stderr)
            else:
                print(f"Failed to add the host to the list of known hosts ({args.known_hosts}): {problem}",
                      file=sys.stderr)  # fmt: skip
        try:
            run = _run_command(session, command)
        except _OutputFailed as failed:
            raise failed.error from None  # cli.run's handling: a reader that went away is not an error to print
        except (HandshakeError, OSError) as error:
            if args.trace:
                _print_trace(session.client.transcript, session.client.transcript_overflow)
            return _fail(explain_ssh_failure(error))
    if args.trace:
        _print_trace(session.client.transcript, session.client.transcript_overflow)
    if run.refused:
        return _fail(run.refused)
    if run.exit_status is not None:
        return run.exit_status
    return EXIT_SSH_FAILURE  # killed by a signal, or no status at all: ssh's -1, which exit() makes 255


def _login_failure(error: BaseException, user: str, host: str, port: int, policy: HostKeyPolicy) -> int:
    """The line ``ssh`` prints for a failure before the command ran; exit 255."""
    if isinstance(error, AuthenticationFailed):
        print(f"{user}@{host}: Permission denied ({','.join(error.methods)}).", file=sys.stderr)
        return EXIT_SSH_FAILURE
    if isinstance(error, HostKeyNotVerifiable):
        lines = str(error).splitlines()
        for line in lines[:-1]:
            print(line, file=sys.stderr)
        if policy is HostKeyPolicy.STRICT and type(error).__name__ == "UnknownHostKey":
            print("(standard input is not a terminal, so nobody could be asked: --accept-new adds a new key)",
                  file=sys.stderr)  # fmt: skip
        print(lines[-1] if lines else "Host key verification failed.", file=sys.stderr)
        return EXIT_SSH_FAILURE
    if isinstance(error, PasswordChangeRequired):
        return _fail(f"{user}@{host}: the password has expired and must be changed (not done here): {error}")
    cause = error.__cause__ if isinstance(error, ConnectionLost) and error.__cause__ is not None else error
    if isinstance(cause, ConnectionRefusedError):
        return _fail(f"connect to host {host} port {port}: Connection refused")
    if isinstance(cause, socket.gaierror):
        return _fail(f"Could not resolve hostname {host}: {cause.strerror or cause}")
    if isinstance(error, ConnectionTimeout):
        return _fail(f"connect to host {host} port {port}: {explain_ssh_failure(error)}")
    return _fail(explain_ssh_failure(error))
