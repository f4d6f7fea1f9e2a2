"""SSH session interop matrix: peer x direction x auth method x feature, each cell run against a real peer.

Run ``python scripts/ssh_session_matrix.py > docs/ssh_session_matrix.md`` to regenerate the document (the
whole matrix, about a minute); ``--subset`` runs only the covering subset that
``tests/test_ssh_sessions_interop.py`` runs.

Theory of operation
-------------------
:class:`Peers` starts, once, every server a cell needs: OpenSSH's ``sshd`` (``AllowTcpForwarding yes``,
``Subsystem sftp`` with Debian's ``sftp-server``), asyncssh's server (with its own SFTP server in a folder),
paramiko's server (its ``SFTPServer`` over a folder too), and ours
(:class:`~handshake_lib.net.ssh.SSHProbeServer`: one that offers publickey, password and two-round
keyboard-interactive, one that requires a key *and* keyboard-interactive), plus a loopback HTTP server
(``http.server.ThreadingHTTPServer``) for the forwarding cells.  Each cell
(:class:`Cell`: peer, direction, auth method, feature) is one function that makes one real connection, checks
what happened (an :class:`AssertionError` names what differed) and returns its *evidence*: what the peer
itself recorded (sshd's debug log, the asyncssh/paramiko server's connection record, OpenSSH ``ssh``'s exit
status and output, our server's :class:`~handshake_lib.net.ssh.ServedConnection`, the HTTP server's log).

Directions: ``client`` is our client (:func:`~handshake_lib.net.ssh.ssh_connect`) against the peer's
server; ``server`` is the peer's client (OpenSSH ``ssh``/``sftp``, asyncssh, paramiko) against our server.
sshd runs as the user running this (root in CI), so it logs in by public key only: it has no password for
that user.  The ``verdict`` cells compare OpenSSH's own verdicts with ours: the same wrong key refused by
sshd and by our server, and a command that does not exist (a shell's 127 on sshd, our fixed set's on ours).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handshake_lib.net.ssh import SSHProbeServer, ssh_connect  # noqa: E402
from handshake_lib.ssh.authentication import ClientAuth, KeyboardInteractiveRound, ServerAuthPolicy  # noqa: E402
from handshake_lib.ssh.authorized_keys import AuthorizedKeys  # noqa: E402
from handshake_lib.ssh.channels import ChannelClosed, ChannelOpened, LateReplyIgnored  # noqa: E402
from handshake_lib.ssh.client import SSHClient  # noqa: E402
from handshake_lib.ssh.hostkeys import HostKeyPair  # noqa: E402
from handshake_lib.ssh.known_hosts import KnownHosts  # noqa: E402
from handshake_lib.ssh.messages import Prompt, UserauthInfoRequest  # noqa: E402

DIRECTIONS = ("client", "server")
DIRECTION_LABELS = {"client": "our client -> server", "server": "client -> our server"}
PEER_LABELS = {"openssh": "OpenSSH", "asyncssh": "asyncssh", "paramiko": "paramiko"}
USER = "alice"
PASSWORD = "s3cret"
CODE = "123456"
TIMEOUT = 10.0
HELLO = b"hello from the loopback HTTP server\n"
REKEY_AFTER = 1024 * 1024  # our client's rekey limit in the rekey cell
TRANSFER = 5 * 1024 * 1024  # bytes written then read back over SFTP in the rekey cell

KEY = HostKeyPair.generate("ssh-ed25519", comment="matrix user key")
STRANGER = HostKeyPair.generate("ssh-ed25519", comment="authorized nowhere")
HOST_KEY = HostKeyPair.generate("ssh-ed25519", comment="our server")

FEATURES = {
    "exec": "exec: stdout, stderr apart, exit status",
    "two-channels": "two channels at once",
    "forward": "-L to a loopback HTTP server",
    "sftp": "SFTP list/read/write",
    "rekey": f"{TRANSFER >> 20} MiB over SFTP, rekeying every {REKEY_AFTER >> 20} MiB",
    "second-factor": "publickey then keyboard-interactive (required)",
    "wrong-key": "verdict: a wrong key is refused alike",
    "no-command": "verdict: a missing command exits 127 alike",
}


@dataclass(frozen=True)
class Cell:
    peer: str
    direction: str
    auth: str
    feature: str

    def __str__(self) -> str:
        return f"{self.peer}-{self.direction}-{self.auth}-{self.feature}"


@dataclass
class Outcome:
    cell: Cell
    ok: bool
    evidence: str


def full_matrix() -> list[Cell]:
    """Every cell: each peer, direction, auth method it supports, feature it supports."""
    cells: list[Cell] = []
    add = cells.append
    # our client -> their servers
    for feature in ("exec", "two-channels", "forward", "sftp", "rekey"):
        add(Cell("openssh", "client", "publickey", feature))
    for peer, features in (
        ("asyncssh", ("exec", "two-channels", "forward", "sftp")),
        ("paramiko", ("exec", "two-channels", "forward", "sftp")),
    ):
        for auth in ("publickey", "password", "keyboard-interactive"):
            for feature in features:
                add(Cell(peer, "client", auth, feature))
    # their clients -> our server
    for auth in ("publickey", "password", "keyboard-interactive"):
        for feature in ("exec", "forward", "sftp"):
            add(Cell("openssh", "server", auth, feature))
    add(Cell("openssh", "server", "publickey", "second-factor"))
    add(Cell("openssh", "server", "publickey", "wrong-key"))
    add(Cell("openssh", "server", "publickey", "no-command"))
    for peer in ("asyncssh", "paramiko"):
        for auth in ("publickey", "password", "keyboard-interactive"):
            for feature in ("exec", "sftp"):
                add(Cell(peer, "server", auth, feature))
    return cells


def covering_subset() -> list[Cell]:
    """Every (peer, direction, feature) once and every (peer, direction, auth) once: the tests' cells.

    The first auth method listed for a feature carries it; exec goes under every auth method.
    """
    chosen: list[Cell] = []
    features_seen: set[tuple[str, str, str]] = set()
    auths_seen: set[tuple[str, str, str]] = set()
    for cell in full_matrix():
        feature_key = (cell.peer, cell.direction, cell.feature)
        auth_key = (cell.peer, cell.direction, cell.auth)
        if feature_key not in features_seen or (auth_key not in auths_seen and cell.feature == "exec"):
            chosen.append(cell)
            features_seen.add(feature_key)
            auths_seen.add(auth_key)
    return chosen


def check(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def wait_for(condition: Callable[[], object], seconds: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _otp_rounds() -> tuple[KeyboardInteractiveRound, ...]:
    return (
        KeyboardInteractiveRound((Prompt("Password: "),), lambda user, answers: answers == (PASSWORD,)),
        KeyboardInteractiveRound((Prompt("One-time code: ", echo=True),), lambda user, answers: answers == (CODE,)),
    )


def _answers(request: UserauthInfoRequest) -> list[str]:
    return [CODE if "code" in prompt.text.lower() else PASSWORD for prompt in request.prompts]


ROUNDS = [[("Password: ", PASSWORD)], [("One-time code: ", CODE)]]
CLIENT_AUTH = {
    "publickey": ClientAuth(identities=(KEY,)),
    "password": ClientAuth(password=PASSWORD),
    "keyboard-interactive": ClientAuth(answer=_answers),
}


class _HTTPLog(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        self.requests.append(format % args)


def _port_below_ephemeral() -> int:
    """A free loopback port below the kernel's ephemeral range, for ``ssh -L``'s listener.

    Waiting for ssh to listen means connecting until it answers; to a port in the ephemeral range such a
    probe can connect to *itself* (TCP simultaneous open: the kernel picks the same port as the source)
    and so "succeed" before ssh listens.  Below the range, no source port can equal it.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in range(max(low - 1, 1025), 1024, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port below the ephemeral range")


# -- the peers, started once -------------------------------------------------------------------------------
class Peers:
    """Every server the cells use, for as long as the ``with`` block runs (see the module docstring)."""

    def __enter__(self) -> Peers:
        from handshake_lib.peers.asyncssh_peers import asyncssh_server
        from handshake_lib.peers.openssh import openssh_server
        from handshake_lib.peers.paramiko_peers import paramiko_server

        self._stack = contextlib.ExitStack()
        stack = self._stack.__enter__()
        try:
            self.folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-matrix-")))
            for name in ("www", "ours", "asyncssh", "paramiko", "sshd", "local"):
                (self.folder / name).mkdir()
            (self.folder / "www" / "hello.txt").write_bytes(HELLO)
            for name in ("ours", "asyncssh", "paramiko", "sshd"):
                (self.folder / name / "hello.txt").write_bytes(HELLO)
            self.key_file = self.folder / "id_ed25519"
            self.key_file.write_bytes(KEY.private_bytes())
            self.stranger_file = self.folder / "id_stranger"
            self.stranger_file.write_bytes(STRANGER.private_bytes())
            for path in (self.key_file, self.stranger_file):
                path.chmod(0o600)
            self.askpass = self.folder / "askpass"
            # OpenSSH runs this for each prompt with the prompt as its argument (SSH_ASKPASS_REQUIRE=force)
            self.askpass.write_text(f'#!/bin/sh\ncase "$1" in *code*) echo {CODE};; *) echo {PASSWORD};; esac\n')
            self.askpass.chmod(0o700)
            self.http_requests: list[str] = []
            handler = type("Handler", (_HTTPLog,), {"requests": self.http_requests})
            web = http.server.ThreadingHTTPServer(
                ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(self.folder / "www"))
            )
            threading.Thread(target=web.serve_forever, daemon=True).start()
            stack.callback(web.server_close)
            stack.callback(web.shutdown)
            self.http_port = web.server_address[1]
            self.sshd = stack.enter_context(
                openssh_server(
                    authorized_keys=[KEY.public_line()],
                    extra_options={
                        "AllowTcpForwarding": "yes",
                        "Subsystem": "sftp /usr/lib/openssh/sftp-server",
                        "AuthenticationMethods": "publickey",
                    },
                )
            )
            lines = {USER: [KEY.public_line()]}
            self.asyncssh = stack.enter_context(
                asyncssh_server(
                    passwords={USER: PASSWORD}, authorized_keys=lines, keyboard_interactive={USER: ROUNDS},
                    sftp_root=self.folder / "asyncssh", timeout=TIMEOUT,
                )
            )  # fmt: skip
            self.paramiko = stack.enter_context(
                paramiko_server(
                    passwords={USER: PASSWORD}, authorized_keys=lines, keyboard_interactive={USER: ROUNDS},
                    sftp_root=self.folder / "paramiko", timeout=TIMEOUT,
                )
            )  # fmt: skip
            keys = AuthorizedKeys.parse(KEY.public_line())
            self.ours = stack.enter_context(
                SSHProbeServer(
                    [HOST_KEY],
                    auth=ServerAuthPolicy(
                        authorized_keys=keys, passwords={USER: PASSWORD}, keyboard_interactive=_otp_rounds()
                    ),
                    sftp_root=self.folder / "ours", timeout=TIMEOUT,
                )
            )  # fmt: skip
            self.ours_2fa = stack.enter_context(
                SSHProbeServer(
                    [HOST_KEY],
                    auth=ServerAuthPolicy(
                        authorized_keys=keys, keyboard_interactive=_otp_rounds(),
                        required=(("publickey", "keyboard-interactive"),),
                    ),
                    timeout=TIMEOUT,
                )
            )  # fmt: skip
            for server in (self.ours, self.ours_2fa):
                known = self.folder / f"known_hosts_{server.port}"
                known.write_text(f"[{server.host}]:{server.port} {HOST_KEY.public_line()}\n")
            self.sshd_known = self.sshd.write_known_hosts(self.folder / "known_hosts_sshd")
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.__exit__(*exc_info)

    def known_hosts_file(self, server: SSHProbeServer) -> Path:
        return self.folder / f"known_hosts_{server.port}"

    def run(self, cell: Cell) -> Outcome:
        try:
            evidence = getattr(self, f"_{cell.direction}_{cell.feature.replace('-', '_')}")(cell)
            return Outcome(cell, True, evidence)
        except Exception as error:  # noqa: BLE001 - a failed cell is a row of the table
            return Outcome(cell, False, f"FAILED: {type(error).__name__}: {error}")

    # -- our client against their servers -------------------------------------------------------------------
    def _server_of(self, peer: str) -> object:
        return {"openssh": self.sshd, "asyncssh": self.asyncssh, "paramiko": self.paramiko}[peer]

    def _connect(self, cell: Cell, **client_options: object) -> object:
        server = self._server_of(cell.peer)
        user = server.user if cell.peer == "openssh" else USER
        auth = CLIENT_AUTH[cell.auth]
        known = KnownHosts.parse(server.known_hosts)
        client = None
        if client_options:
            client = SSHClient(server.host, server.port, user=user, auth=auth, known_hosts=known, **client_options)
        session = ssh_connect(
            server.host, server.port, user=user, auth=auth, known_hosts=known, timeout=TIMEOUT, client=client
        )
        check(session.methods == (cell.auth,), f"logged in by {session.methods}, not {cell.auth}")
        return session

    def _peer_record(self, cell: Cell) -> str:
        """What the peer server itself says about the login."""
        if cell.peer == "openssh":
            match = re.findall(r"Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: ED25519", self.sshd.log)
            check(match, "sshd logged no accepted publickey")
            return f'sshd: "{match[-1]}"'
        record = self._server_of(cell.peer).connections[-1]
        check(wait_for(lambda: record.authenticated), f"{cell.peer}'s record says not authenticated")
        check(record.username == USER, f"{cell.peer} logged in {record.username!r}")
        methods = f" by {'+'.join(dict.fromkeys(record.methods))}" if cell.peer == "paramiko" else ""
        return f"{cell.peer} record: {record.username} authenticated{methods}"

    def _client_exec(self, cell: Cell) -> str:
        if cell.peer == "openssh":
            command, stdout = "echo hello; echo oops >&2; exit 3", b"hello\n"
            stderr = b"oops\n"
        else:  # the peer servers' session: the command's text on stdout, "exit N" also on stderr, status N
            command, stdout, stderr = "exit 3", b"exit 3", b"exit 3\n"
        with self._connect(cell) as session:
            result = session.exec(command)
        got_stderr = result.stderr
        if cell.peer == "openssh":
            # sshd at LogLevel DEBUG3 (the harness's, for its log) also writes its child's debug lines to the
            # session's stderr before running the command ("debug1: permanently_set_uid: 0/0"): set them apart
            got_stderr = b"".join(
                line for line in result.stderr.splitlines(keepends=True) if not line.startswith(b"debug")
            )
        check((result.stdout, got_stderr, result.exit_status) == (stdout, stderr, 3), f"exec gave {result}")
        seen = f"stdout {result.stdout!r}, stderr {got_stderr!r}, exit-status {result.exit_status}"
        if cell.peer == "openssh":
            lines = re.findall(r"Starting session: command for \S+ from 127\.0\.0\.1 port \d+ id \d+", self.sshd.log)
            check(lines, "sshd logged no command session")
            return f'{seen}; sshd: "{lines[-1]}"'
        if cell.peer == "paramiko":
            check(self.paramiko.connections[-1].commands == [command], "paramiko recorded other commands")
        return f"{seen}; {self._peer_record(cell)}"

    def _client_two_channels(self, cell: Cell) -> str:
        commands = ["echo one", "echo two"]
        with self._connect(cell) as session:
            results = session.exec_many(commands)
            late = sum(isinstance(e, LateReplyIgnored) for e in session.events)  # paramiko: a reply after CLOSE
            order = [
                (type(e).__name__, e.channel) for e in session.events if isinstance(e, ChannelOpened | ChannelClosed)
            ]
        expected = [b"one\n", b"two\n"] if cell.peer == "openssh" else [b"echo one", b"echo two"]
        check([r.stdout for r in results] == expected, f"outputs {[r.stdout for r in results]}")
        check(len({r.channel for r in results}) == 2, "one channel for both")
        first_close = next(i for i, (kind, _) in enumerate(order) if kind == "ChannelClosed")
        check(sum(kind == "ChannelOpened" for kind, _ in order[:first_close]) == 2, f"not open at once: {order}")
        if cell.peer == "openssh":
            sessions = re.findall(
                r"Starting session: command for \S+ from 127\.0\.0\.1 port (\d+) id (\d+)", self.sshd.log
            )
            check(len({i for _, i in sessions[-2:]}) == 2, "sshd did not log two sessions")
            record = f"sshd: two command sessions, ids {sorted(i for _, i in sessions[-2:])}"
        elif cell.peer == "paramiko":
            record = f"paramiko record: commands {self.paramiko.connections[-1].commands}"
        else:
            record = self._peer_record(cell)
        ignored = f" ({late} reply after the CLOSE ignored, as OpenSSH does)" if late else ""
        return f"channels {[r.channel for r in results]} both open before either closed{ignored}; {record}"

    def _fetch_through(self, port: int) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=TIMEOUT) as answer:
            return answer.read()

    def _client_forward(self, cell: Cell) -> str:
        before = len(self.http_requests)
        with self._connect(cell) as session, session.forward_local("127.0.0.1", self.http_port) as port:
            body = self._fetch_through(port)
        check(body == HELLO, f"the HTTP answer was {body!r}")
        check(len(self.http_requests) > before, "the HTTP server logged no request")
        served = f"HTTP server logged {self.http_requests[-1]}"
        if cell.peer == "openssh":
            lines = re.findall(
                r"server_request_direct_tcpip: originator \S+ port \d+, target \S+ port \d+", self.sshd.log
            )
            check(lines, "sshd logged no direct-tcpip")
            return f'{served}; sshd: "{lines[-1]}"'
        return f"{served}; {self._peer_record(cell)}"

    def _client_sftp(self, cell: Cell) -> str:
        folder = self.folder / ("sshd" if cell.peer == "openssh" else cell.peer)
        base = str(folder) if cell.peer == "openssh" else ""  # asyncssh's and paramiko's: paths inside the folder
        name = f"up-{cell.auth}.txt"
        with self._connect(cell) as session, session.sftp() as sftp:
            listed = sorted(n.filename for n in sftp.listdir(base or "/"))
            read = sftp.read_file(f"{base}/hello.txt")
            sftp.write_file(f"{base}/{name}", b"written by our client\n")
        check("hello.txt" in listed and read == HELLO, f"listed {listed}, read {read!r}")
        check((folder / name).read_bytes() == b"written by our client\n", "the file on disk differs")
        if cell.peer == "openssh":
            opened = re.findall(r"subsystem request for sftp by user \S+", self.sshd.log)
            check(opened, "sshd logged no sftp subsystem")
            return f'listed {len(listed)} names, read {len(read)} B, wrote {name} (on disk); sshd: "{opened[-1]}"'
        return f"listed {listed}, read {len(read)} B, wrote {name} (on disk); {self._peer_record(cell)}"

    def _client_rekey(self, cell: Cell) -> str:
        data = os.urandom(TRANSFER)
        path = self.folder / "sshd" / "big.bin"
        log_before = len(self.sshd.log)
        with self._connect(cell, rekey_after_bytes=REKEY_AFTER) as session:
            with session.sftp() as sftp:
                sftp.write_file(str(path), data)
                back = sftp.read_file(str(path))
            ours = session.client.exchanges  # key exchanges on this connection, the first one included
        check(back == data and path.read_bytes() == data, "the 5 MiB came back different")
        log = self.sshd.log[log_before:]
        rekeys = log.count("SSH2_MSG_KEXINIT received")
        # rekey_after_bytes counts what we send (5 MiB of writes: at least 4 rekeys, each logged by sshd)
        check(
            ours - 1 >= TRANSFER // REKEY_AFTER - 1 and rekeys == ours, f"sshd: {rekeys} KEXINITs, we: {ours} exchanges"
        )
        return (
            f"{TRANSFER} B written and read back intact; our client ran {ours} key exchanges; "
            f'sshd logged "SSH2_MSG_KEXINIT received" {rekeys} times on this connection'
        )

    # -- their clients against our server --------------------------------------------------------------------
    def _served(self, server: SSHProbeServer, before: int) -> object:
        check(wait_for(lambda: len(server.connections) > before), "our server saw no connection")
        served = server.connections[before]
        return served

    def _ssh(self, server: object, auth: str, *arguments: str, program: str = "ssh",
             identity: Path | None = None, known: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """OpenSSH's ``ssh`` (or ``sftp``) with its own files only; a password or code through SSH_ASKPASS."""
        command, environment = self._ssh_arguments(
            server, auth, *arguments, program=program, identity=identity, known=known
        )
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT, env=environment,
            start_new_session=True,
        )  # fmt: skip

    def _ssh_arguments(self, server: object, auth: str, *arguments: str, program: str = "ssh",
                       identity: Path | None = None, known: Path | None = None,
                       ) -> tuple[list[str], dict[str, str]]:  # fmt: skip
        port_flag = "-P" if program == "sftp" else "-p"
        options = [
            "-F", "/dev/null", port_flag, str(server.port),
            "-o", f"UserKnownHostsFile={known or self.known_hosts_file(server)}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "IdentityAgent=none",
            "-o", "IdentitiesOnly=yes", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no", "-o", "ControlPath=none",
            "-o", f"PreferredAuthentications={auth}", "-o", "NumberOfPasswordPrompts=1",
        ]  # fmt: skip
        if identity is not None or auth.startswith("publickey"):
            options += ["-o", f"IdentityFile={identity or self.key_file}"]
        else:
            options += ["-o", "IdentityFile=/dev/null", "-o", "PubkeyAuthentication=no"]
        if program == "sftp" and not auth.startswith("publickey"):
            # sftp -b implies BatchMode=yes (no password prompt, not even through SSH_ASKPASS); ssh takes an
            # option's first value, so ours, given before sftp adds its own, wins
            options = ["-o", "BatchMode=no", *options]
        environment = dict(os.environ, SSH_ASKPASS=str(self.askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        return [program, *options, *arguments], environment

    def _our_login(self, served: object, auth: str) -> str:
        check(wait_for(lambda: served.user is not None), f"our server logged nobody in: {served.error}")
        check(served.user.methods == tuple(auth.split(",")), f"our server logged in by {served.user.methods}")
        return f"our server: {served.user.user} by {'+'.join(served.user.methods)}"

    def _server_exec(self, cell: Cell) -> str:
        before = len(self.ours.connections)
        if cell.peer == "openssh":
            run = self._ssh(self.ours, cell.auth, "-T", f"{USER}@127.0.0.1", "echo hello")
            check((run.returncode, run.stdout) == (0, "hello\n"), f"ssh: {run.returncode} {run.stdout!r} {run.stderr}")
            seen = f"ssh: exit 0, stdout {run.stdout!r}"
        else:
            stdout, status = self._their_client(cell, "echo hello", sftp=False)
            check((stdout, status) == (b"hello\n", 0), f"{cell.peer}: {stdout!r} {status}")
            seen = f"{cell.peer}: exit-status {status}, stdout {stdout!r}"
        served = self._served(self.ours, before)
        login = self._our_login(served, cell.auth)
        check(wait_for(lambda: served.channels and served.channels[0].exit_status == 0), "no exit status recorded")
        return f"{seen}; {login}, channel {served.channels[0].kind} `{served.channels[0].command}` exit 0"

    def _server_forward(self, cell: Cell) -> str:
        before, requests = len(self.ours.connections), len(self.http_requests)
        local = _port_below_ephemeral()
        command, environment = self._ssh_arguments(
            self.ours, cell.auth, "-v", "-N", "-o", "ExitOnForwardFailure=yes", "-L",
            f"{local}:127.0.0.1:{self.http_port}", f"{USER}@127.0.0.1",
        )  # fmt: skip
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        said: list[bytes] = []  # ssh -v's log, read as it comes: it says when its listener is up
        reader = threading.Thread(target=lambda: said.extend(iter(process.stderr.readline, b"")), daemon=True)
        reader.start()
        ready = f"Local forwarding listening on 127.0.0.1 port {local}.".encode()
        try:
            check(wait_for(lambda: any(ready in line for line in said) or process.poll() is not None), "no listener")
            check(process.poll() is None, f"ssh exited: {b''.join(said)[-500:]!r}")
            body = self._fetch_through(local)
        finally:
            process.terminate()
            process.wait(TIMEOUT)
            reader.join(TIMEOUT)
        check(body == HELLO, f"through ssh -L: {body!r}")
        served = self._served(self.ours, before)
        login = self._our_login(served, cell.auth)
        forwarded = [c for c in served.channels if c.kind == "direct-tcpip" and c.bytes_out > 0]
        check(forwarded, "our server recorded no direct-tcpip channel with data")
        check(len(self.http_requests) > requests, "the HTTP server logged nothing")
        channel = forwarded[-1]
        return (
            f"HTTP server logged {self.http_requests[-1]}; {login}, direct-tcpip to {channel.target[0]}:port, "
            f"{channel.bytes_in} B in, {channel.bytes_out} B out"
        )

    def _server_sftp(self, cell: Cell) -> str:
        before = len(self.ours.connections)
        root = self.folder / "ours"
        name = f"{cell.peer}-{cell.auth}"
        if cell.peer == "openssh":
            local = self.folder / "local" / f"{name}.txt"
            local.write_bytes(b"put by OpenSSH sftp\n")
            batch = self.folder / "local" / f"{name}.batch"
            fetched = self.folder / "local" / f"{name}-got.txt"
            batch.write_text(f"mkdir {name}\nput {local} {name}/up.txt\nls {name}\nget hello.txt {fetched}\n")
            run = self._ssh(self.ours, cell.auth, "-b", str(batch), f"{USER}@127.0.0.1", program="sftp")
            check(run.returncode == 0, f"sftp exited {run.returncode}: {run.stderr[-500:]}")
            check(f"{name}/up.txt" in run.stdout, f"ls did not show the file: {run.stdout}")
            check(fetched.read_bytes() == HELLO, "get fetched something else")
            check((root / name / "up.txt").read_bytes() == local.read_bytes(), "put wrote something else")
            seen = "sftp -b: mkdir, put, ls (lists it), get: exit 0, files identical"
        else:
            listed = self._their_client(cell, name, sftp=True)
            check("hello.txt" in listed, f"{cell.peer} listed {listed}")
            check((root / name / "up.txt").read_bytes() == HELLO, f"{cell.peer}'s upload differs")
            seen = f"{cell.peer}: listed {sorted(listed)}, read hello.txt, mkdir + wrote {name}/up.txt (on disk)"
        served = self._served(self.ours, before)
        login = self._our_login(served, cell.auth)
        check(wait_for(lambda: any(c.subsystem == "sftp" for c in served.channels)), "no sftp channel recorded")
        return f"{seen}; {login}, subsystem sftp"

    def _their_client(self, cell: Cell, argument: str, *, sftp: bool) -> object:
        if cell.peer == "asyncssh":
            return asyncio.run(self._asyncssh_client(cell, argument, sftp=sftp))
        return self._paramiko_client(cell, argument, sftp=sftp)

    async def _asyncssh_client(self, cell: Cell, argument: str, *, sftp: bool) -> object:
        import asyncssh

        options: dict[str, object] = {"preferred_auth": cell.auth, "client_keys": None, "password": None}
        if cell.auth == "publickey":
            options["client_keys"] = [asyncssh.import_private_key(KEY.private_bytes())]
        elif cell.auth == "password":
            options["password"] = PASSWORD
        else:

            class Answers(asyncssh.SSHClient):  # type: ignore[misc]
                def kbdint_auth_requested(self) -> str:
                    return ""

                def kbdint_challenge_received(self, name: str, instructions: str, lang: str, prompts: list) -> list:
                    return [CODE if "code" in p.lower() else PASSWORD for p, _ in prompts]

            options["client_factory"] = Answers
        known = asyncssh.import_known_hosts(self.known_hosts_file(self.ours).read_text())
        async with asyncssh.connect(
            "127.0.0.1", self.ours.port, username=USER, known_hosts=known, agent_path=None, config=[],
            connect_timeout=TIMEOUT, login_timeout=TIMEOUT, **options,
        ) as conn:  # fmt: skip
            if not sftp:
                result = await asyncio.wait_for(conn.run(argument, encoding=None), TIMEOUT)
                return result.stdout, result.exit_status
            async with conn.start_sftp_client() as client:
                listed = await client.listdir(".")
                async with client.open("hello.txt", "rb") as remote:
                    check(await remote.read() == HELLO, "asyncssh read something else")
                await client.mkdir(argument)
                async with client.open(f"{argument}/up.txt", "wb") as remote:
                    await remote.write(HELLO)
                return listed

    def _paramiko_client(self, cell: Cell, argument: str, *, sftp: bool) -> object:
        import paramiko

        with socket.create_connection(("127.0.0.1", self.ours.port), timeout=TIMEOUT) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=TIMEOUT)
                offered = transport.get_remote_server_key()
                check(f"{offered.get_name()} {offered.get_base64()}" == " ".join(HOST_KEY.public_line().split()[:2]),
                      "paramiko saw another host key")  # fmt: skip
                if cell.auth == "publickey":
                    key = paramiko.Ed25519Key.from_private_key(io.StringIO(KEY.private_bytes().decode()))
                    transport.auth_publickey(USER, key)
                elif cell.auth == "password":
                    transport.auth_password(USER, PASSWORD)
                else:
                    transport.auth_interactive(
                        USER, lambda title, instructions, prompts: [
                            CODE if "code" in p.lower() else PASSWORD for p, _ in prompts
                        ],
                    )  # fmt: skip
                if sftp:
                    client = paramiko.SFTPClient.from_transport(transport)
                    listed = client.listdir(".")
                    with client.open("hello.txt", "rb") as remote:
                        check(remote.read() == HELLO, "paramiko read something else")
                    client.mkdir(argument)
                    with client.open(f"{argument}/up.txt", "wb") as remote:
                        remote.write(HELLO)
                    client.close()
                    return listed
                channel = transport.open_session(timeout=TIMEOUT)
                channel.settimeout(TIMEOUT)
                channel.exec_command(argument)
                stdout = channel.makefile("rb").read()
                return stdout, channel.recv_exit_status()
            finally:
                transport.close()

    def _server_second_factor(self, cell: Cell) -> str:
        before = len(self.ours_2fa.connections)
        run = self._ssh(self.ours_2fa, "publickey,keyboard-interactive", "-v", "-T", f"{USER}@127.0.0.1", "echo hello")
        check((run.returncode, run.stdout) == (0, "hello\n"), f"ssh: {run.returncode} {run.stderr[-500:]}")
        partial = 'Authenticated using "publickey" with partial success.'
        check(partial in run.stderr, f"ssh reported no partial success: {run.stderr[-300:]}")
        served = self._served(self.ours_2fa, before)
        login = self._our_login(served, "publickey,keyboard-interactive")
        return f"ssh: partial success after the key, then the code; exit 0 {run.stdout!r}; {login}"

    def _server_wrong_key(self, cell: Cell) -> str:
        ours = self._ssh(
            self.ours_2fa, "publickey", "-T", f"{USER}@127.0.0.1", "echo hello", identity=self.stranger_file
        )
        theirs = self._ssh(
            self.sshd, "publickey", "-T", f"{self.sshd.user}@127.0.0.1", "echo hello", identity=self.stranger_file,
            known=self.sshd_known,
        )  # fmt: skip
        said = [
            next((line for line in run.stderr.splitlines() if "Permission denied" in line), "")
            for run in (ours, theirs)
        ]
        check([run.returncode for run in (ours, theirs)] == [255, 255], "ssh did not fail twice")
        check(said[0].endswith("Permission denied (publickey).") and said[1].endswith("Permission denied (publickey)."),
              f"ssh said {said}")  # fmt: skip
        check("Failed publickey for" in self.sshd.log, "sshd logged no failed publickey")
        return f'ssh against both, exit 255: "{said[1]}"; sshd logged "Failed publickey"'

    def _server_no_command(self, cell: Cell) -> str:
        ours = self._ssh(self.ours, "publickey", "-T", f"{USER}@127.0.0.1", "nosuchcommand")
        theirs = self._ssh(self.sshd, "publickey", "-T", f"{self.sshd.user}@127.0.0.1", "nosuchcommand",
                           known=self.sshd_known)  # fmt: skip
        check([ours.returncode, theirs.returncode] == [127, 127], f"exit {ours.returncode}, {theirs.returncode}")
        check("command not found" in ours.stderr and "command not found" in theirs.stderr,
              f"stderr {ours.stderr[-200:]!r} / {theirs.stderr[-200:]!r}")  # fmt: skip
        mine = next(line for line in ours.stderr.splitlines() if "command not found" in line)
        shell = next(line for line in theirs.stderr.splitlines() if "command not found" in line)
        return f'ssh exit 127 from both; sshd\'s shell: "{shell}"; ours: "{mine}"'


# -- the command line ---------------------------------------------------------------------------------------
def markdown(outcomes: Sequence[Outcome]) -> str:
    lines = ["| peer | direction | auth | feature | evidence |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        cell = outcome.cell
        evidence = outcome.evidence.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {PEER_LABELS[cell.peer]} | {DIRECTION_LABELS[cell.direction]} | {cell.auth} | "
            f"{FEATURES[cell.feature]} | {evidence} |"
        )
    return "\n".join(lines)


def header(subset: bool) -> str:
    import asyncssh
    import paramiko

    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=TIMEOUT).stderr.split(",")[0]
    return (
        "# SSH session interop matrix\n\n"
        f"Generated by `python scripts/ssh_session_matrix.py{' --subset' if subset else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {ssh_version}, asyncssh {asyncssh.__version__}, paramiko "
        f"{paramiko.__version__}; Python {sys.version.split()[0]}); regenerate it rather than edit it. Each row "
        "is one real connection: peer x direction x auth method x feature, and the evidence is what the peer "
        "itself recorded (sshd's debug log, the asyncssh/paramiko server's connection record, OpenSSH's exit "
        "status and output, the loopback HTTP server's log) beside what our side recorded.  "
        "`tests/test_ssh_sessions_interop.py` runs the covering subset (`--subset`).\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", action="store_true", help="only the covering subset the tests run")
    args = parser.parse_args(argv)
    cells = covering_subset() if args.subset else full_matrix()
    print(f"{len(cells)} cells ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with Peers() as peers:
        outcomes = [peers.run(cell) for cell in cells]
    passed = sum(o.ok for o in outcomes)
    counted = Counter(o.ok for o in outcomes)
    print(header(args.subset) + markdown(outcomes))
    print(f"\n**{passed} of {len(outcomes)} cells passed** ({counted[False]} failed) in "
          f"{time.monotonic() - started:.0f} s.")  # fmt: skip
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
