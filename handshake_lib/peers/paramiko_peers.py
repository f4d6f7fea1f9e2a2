"""paramiko as a peer: a ``Transport`` in server mode on loopback, and paramiko's client, run to user auth.

Theory of operation
-------------------
* :func:`paramiko_server` listens on 127.0.0.1 (a port the kernel picks) with a
  :class:`~handshake_lib.net.LoopbackServer`: each connection gets a thread running a paramiko
  ``Transport`` in server mode, host keys made in memory (ed25519 always; ecdsa P-256 and RSA when
  asked), algorithm lists narrowed through ``Transport.get_security_options()``, a ``ServerInterface``
  that allows password and/or public key logins from the tables given, and sessions that answer an
  exec request with the command's text and exit status 0 (``exit N``: N, and the command on stderr), each
  channel in a thread of its own so several run at once; a ``direct-tcpip`` channel to loopback is
  connected and its bytes copied both ways (paramiko's server leaves both to the application); with
  ``sftp_root``, paramiko's ``SFTPServer`` serves that folder to the ``sftp`` subsystem.
  What paramiko saw of each connection is kept in :class:`ParamikoServerConnection` (negotiated
  algorithms, user, result, error, paramiko's log).
* :func:`paramiko_client` runs paramiko's client ``Transport``: key exchange, the server's host key
  checked against a known_hosts text, a ``none`` request (which returns the server's methods), then a
  password or public key login when given, then the command; all within one deadline, reported in a
  :class:`ParamikoClientRun`.

Where the negotiated algorithms come from: the ``Transport`` keeps the agreed host key type, ciphers
and MACs as attributes (``host_key_type``, ``local_cipher``, ``remote_mac``...), but neither the key
exchange's name nor the peer's KEXINIT (``remote_kex_init`` is cleared when the exchange ends).  Both
are in paramiko's own debug log ("kex algos: ...", "Kex: ..."), so every transport gets a private log
channel (``set_log_channel``) whose records we keep; :func:`parse_paramiko_log` reads them.

``PARAMIKO_ALGORITHMS`` is what paramiko 5.1.0 supports among the course's algorithms (found with
``Transport._preferred_kex`` and friends): it knows Curve25519 only by its old name
``curve25519-sha256@libssh.org``, has ``mlkem768x25519-sha256`` (5.x), and has no chacha20-poly1305;
its server announces strict kex (``kex-strict-s-v00@openssh.com``, paramiko 3.4+) and its client
``ext-info-c`` and ``kex-strict-c-v00@openssh.com``.  Our client is paramiko's
``ServiceRequestingTransport`` with two bugs of its 5.1 auth handler worked around (see
:func:`_client_transport_class`).
paramiko picks a MAC even for AES-GCM and then ignores it; we report ``<implicit>`` for AEAD ciphers,
as OpenSSH does.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..net import DEFAULT_TIMEOUT, LOOPBACK, LoopbackServer, connect
from . import PeerUnavailable
from .asyncssh_peers import IMPLICIT_MAC
from .openssh import ClientRunReport, known_hosts_line

__all__ = [
    "PARAMIKO_ALGORITHMS",
    "ParamikoClientRun",
    "ParamikoServer",
    "ParamikoServerConnection",
    "paramiko_client",
    "paramiko_server",
    "parse_paramiko_log",
]

PARAMIKO_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "kex": (
        "mlkem768x25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
        "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha256",
    ),
    "cipher": ("aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"),
    "mac": ("hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"),
    "host_key": ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"),
}  # fmt: skip

_AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
_LOG_LINES = 2000  # paramiko's debug log kept per connection, at most (a lesson shows the start of it)
_connection_numbers = iter(range(1, 1 << 62))


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError as error:  # pragma: no cover - the venv has it
        raise PeerUnavailable(f"paramiko cannot be imported ({error}); pip install paramiko") from None
    return paramiko


def _names(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(value.split(",")) if isinstance(value, str) else tuple(value)


class _LogKeeper(logging.Handler):
    """Keeps the formatted records of one transport's private log channel (bounded)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < _LOG_LINES:
            self.lines.append(record.getMessage())


@contextlib.contextmanager
def _transport_log(transport: Any, role: str) -> Iterator[_LogKeeper]:
    """Give ``transport`` a private log channel whose debug records are kept (and not passed upwards)."""
    name = f"handshake_lib.peers.paramiko.{role}{next(_connection_numbers)}"
    logger = logging.getLogger(name)
    keeper = _LogKeeper()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(keeper)
    transport.set_log_channel(name)
    try:
        yield keeper
    finally:
        logger.removeHandler(keeper)
        logging.Logger.manager.loggerDict.pop(name, None)  # do not keep one logger per connection forever
        logging.Logger.manager.loggerDict.pop(f"{name}.chan", None)


def parse_paramiko_log(lines: Sequence[str]) -> dict[str, Any]:
    """The peer's KEXINIT lists ("kex algos", "server key", ...) and the agreed kex, from paramiko's debug log."""
    peer: dict[str, list[str]] = {}
    kex = None
    in_possibilities = False
    for line in lines:
        if line == "=== Key exchange possibilities ===":
            in_possibilities, peer = True, {}
        elif line == "=== Key exchange agreements ===":
            in_possibilities = False
        elif in_possibilities and ": " in line and not line.startswith("kex follows"):
            label, _, value = line.partition(": ")
            peer[label] = [] if value == "<none>" else value.split(", ")
        elif line.startswith("Kex: ") and kex is None:
            kex = line.removeprefix("Kex: ")
    return {"peer_kexinit": peer, "kex": kex}


def _negotiated(transport: Any, log: Sequence[str], *, server: bool) -> dict[str, str | None]:
    def mac(cipher: str | None, mac_name: str | None) -> str | None:
        return IMPLICIT_MAC if cipher in _AEAD else mac_name

    local = (transport.local_cipher or None, mac(transport.local_cipher, transport.local_mac))
    remote = (transport.remote_cipher or None, mac(transport.remote_cipher, transport.remote_mac))
    to_server, to_client = (remote, local) if server else (local, remote)
    return {
        "kex": parse_paramiko_log(log)["kex"],
        "host_key": transport.host_key_type,
        "cipher_client_to_server": to_server[0], "cipher_server_to_client": to_client[0],
        "mac_client_to_server": to_server[1], "mac_server_to_client": to_client[1],
    }  # fmt: skip


def _narrow(transport: Any, kex: Any, ciphers: Any, macs: Any, host_key_algorithms: Any) -> None:
    options = transport.get_security_options()
    for attribute, value in (("kex", kex), ("ciphers", ciphers), ("digests", macs), ("key_types", host_key_algorithms)):
        if (names := _names(value)) is not None:
            setattr(options, attribute, names)  # paramiko refuses names it does not know (ValueError)


_KEY_MAKERS = {"ed25519", "ecdsa", "rsa"}


def _make_host_key(key_type: str) -> Any:
    """A paramiko private key made in memory (paramiko has no ed25519 generator: go through cryptography)."""
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    paramiko = _paramiko()
    if key_type == "rsa":
        return paramiko.RSAKey.generate(2048)
    if key_type == "ecdsa":
        return paramiko.ECDSAKey.generate(curve=ec.SECP256R1())
    if key_type != "ed25519":
        raise ValueError(f"unknown host key type {key_type!r}; choose from {sorted(_KEY_MAKERS)}")
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


def _public_line(key: Any) -> str:
    return f"{key.get_name()} {key.get_base64()}"


# -- the server ------------------------------------------------------------------------------------------
@dataclass
class ParamikoServerConnection:
    """What the paramiko server saw of one connection."""

    negotiated: dict[str, str | None] = field(default_factory=dict)
    client_version: str | None = None
    username: str | None = None
    authenticated: bool = False
    methods: list[str] = field(default_factory=list)  # what paramiko accepted, in order
    command: str | None = None  # the last exec'd command
    commands: list[str] = field(default_factory=list)  # every exec'd command, in order
    error: str | None = None  # paramiko's exception ("Incompatible ssh peer (no acceptable kex algorithm)")
    log: list[str] = field(default_factory=list, repr=False)  # paramiko's debug log for this connection
    finished: bool = False  # the connection is over and this record final

    @property
    def peer_kexinit(self) -> dict[str, list[str]]:
        return parse_paramiko_log(self.log)["peer_kexinit"]


class _ParamikoListener(LoopbackServer):
    name = "ParamikoServer"

    def __init__(self, handle: ParamikoServer, settings: dict[str, Any], timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.handle = handle
        self.settings = settings

    def serve(self, conn: socket.socket) -> None:
        paramiko = _paramiko()
        record = ParamikoServerConnection()
        self.handle.connections.append(record)
        deadline = time.monotonic() + self.timeout
        passwords: dict[str, str] = self.settings["passwords"]
        accepted: dict[str, set[str]] = self.settings["authorized_keys"]
        rounds: dict[str, list[list[tuple[str, str]]]] = self.settings["keyboard_interactive"]
        commands: dict[int, str | None] = {}  # channel id -> its exec'd command (None: a subsystem)
        forwards: dict[int, tuple[str, int]] = {}  # channel id -> the direct-tcpip target
        exec_requested = threading.Condition()

        class Interface(paramiko.ServerInterface):  # type: ignore[misc]
            round = 0

            def get_allowed_auths(self, username: str) -> str:
                record.username = username
                methods = (["publickey"] if accepted else []) + (["password"] if passwords else [])
                methods += ["keyboard-interactive"] if rounds else []
                return ",".join(methods) or "publickey"

            def _verdict(self, method: str, ok: bool) -> int:
                record.authenticated = ok
                if ok:
                    record.methods.append(method)
                return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

            def check_auth_password(self, username: str, password: str) -> int:
                return self._verdict("password", username in passwords and passwords[username] == password)

            def check_auth_publickey(self, username: str, key: Any) -> int:
                return self._verdict("publickey", _public_line(key) in accepted.get(username, set()))

            def _query(self) -> Any:
                questions = rounds[record.username or ""][self.round]
                return paramiko.server.InteractiveQuery(
                    f"round {self.round + 1}", "", *((prompt, False) for prompt, _ in questions)
                )

            def check_auth_interactive(self, username: str, submethods: str) -> Any:
                if username not in rounds:
                    return paramiko.AUTH_FAILED
                self.round = 0
                return self._query()

            def check_auth_interactive_response(self, responses: Sequence[str]) -> Any:
                questions = rounds[record.username or ""][self.round]
                if list(responses) != [answer for _, answer in questions]:
                    return self._verdict("keyboard-interactive", False)
                self.round += 1
                if self.round < len(rounds[record.username or ""]):
                    return self._query()
                return self._verdict("keyboard-interactive", True)

            def check_channel_request(self, kind: str, chanid: int) -> int:
                if kind == "session":
                    return paramiko.OPEN_SUCCEEDED
                return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

            def check_channel_direct_tcpip_request(self, chanid: int, origin: Any, destination: Any) -> int:
                if destination[0] not in (LOOPBACK, "localhost"):
                    return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
                forwards[chanid] = (destination[0], int(destination[1]))
                return paramiko.OPEN_SUCCEEDED

            def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
                started = super().check_channel_subsystem_request(channel, name)  # paramiko runs the handler
                with exec_requested:
                    commands[channel.get_id()] = None  # not an exec: its thread leaves it to the subsystem
                    exec_requested.notify_all()
                return bool(started)

            def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
                with exec_requested:
                    record.command = command.decode(errors="replace")
                    record.commands.append(record.command)
                    commands[channel.get_id()] = record.command
                    exec_requested.notify_all()
                return True

        transport = paramiko.Transport(conn)
        with _transport_log(transport, "server") as log:
            record.log = log.lines
            try:
                for key in self.settings["host_keys"].values():
                    transport.add_server_key(key)
                _narrow(transport, *self.settings["algorithms"])
                if self.settings["sftp_root"] is not None:
                    transport.set_subsystem_handler(
                        "sftp", paramiko.SFTPServer, _sftp_interface(self.settings["sftp_root"])
                    )
                transport.start_server(server=Interface())
                record.client_version = transport.remote_version or None
                # accept() returns each channel the client opens (after a login); each is served by a thread
                # of its own, so two channels run at once, until the client hangs up or the deadline.
                workers: list[threading.Thread] = []
                while transport.is_active() and time.monotonic() < deadline:
                    # accept() is not woken when the client hangs up: wait in short slices
                    channel = transport.accept(min(0.05, max(deadline - time.monotonic(), 0.001)))
                    if not record.negotiated and transport.is_authenticated():
                        record.negotiated = _negotiated(transport, log.lines, server=True)
                    if channel is not None:
                        target = forwards.get(channel.get_id())
                        work = _relay if target is not None else _run_exec
                        argument = target if target is not None else (commands, exec_requested)
                        worker = threading.Thread(target=work, args=(channel, argument, deadline), daemon=True)
                        worker.start()
                        workers.append(worker)
                for worker in workers:
                    worker.join(max(deadline - time.monotonic(), 0.01))
                record.negotiated = record.negotiated or _negotiated(transport, log.lines, server=True)
            except (paramiko.SSHException, OSError, EOFError) as error:
                record.error = str(error) or type(error).__name__
            finally:
                if not record.negotiated:
                    record.negotiated = _negotiated(transport, log.lines, server=True)
                transport.close()
                record.finished = True


def _run_exec(channel: Any, waiting: tuple[dict[int, str | None], threading.Condition], deadline: float) -> None:
    """A session channel: wait for its exec, answer with the command's text (``exit N``: N, and stderr)."""
    commands, condition = waiting
    with condition:  # in slices: a channel closed without a request wakes nobody
        while channel.get_id() not in commands and not channel.closed and time.monotonic() < deadline:
            condition.wait(0.05)
    if channel.get_id() in commands and commands[channel.get_id()] is None:
        return  # the sftp subsystem: paramiko's SFTPServer thread serves the channel
    command = commands.get(channel.get_id())
    if command is None:
        channel.close()
        return
    with contextlib.suppress(OSError, EOFError):
        channel.sendall(command.encode())
        words = command.split()
        status = int(words[1]) if len(words) == 2 and words[0] == "exit" and words[1].isdigit() else 0
        if status:
            channel.sendall_stderr(f"{command}\n".encode())
        channel.send_exit_status(status)
    channel.close()


def _sftp_interface(root: Path) -> Any:
    """A paramiko ``SFTPServerInterface`` over ``root``: list, stat, open, mkdir, remove, rename, inside it only."""
    paramiko = _paramiko()

    class Folder(paramiko.SFTPServerInterface):  # type: ignore[misc]
        def _path(self, path: str) -> Path:
            full = (root / path.lstrip("/")).resolve()
            if full != root and root not in full.parents:
                raise PermissionError(errno.EACCES, "outside the SFTP root")
            return full

        def _guard(self, action: Any) -> Any:
            try:
                return action()
            except OSError as error:
                return paramiko.SFTPServer.convert_errno(error.errno or errno.EIO)

        def canonicalize(self, path: str) -> str:
            inside = self._path(path).relative_to(root).as_posix()
            return "/" if inside == "." else f"/{inside}"

        def list_folder(self, path: str) -> Any:
            def listing() -> list[Any]:
                folder = self._path(path)
                names = []
                for name in sorted(os.listdir(folder)):
                    attributes = paramiko.SFTPAttributes.from_stat(os.lstat(folder / name))
                    attributes.filename = name
                    names.append(attributes)
                return names

            return self._guard(listing)

        def stat(self, path: str) -> Any:
            return self._guard(lambda: paramiko.SFTPAttributes.from_stat(os.stat(self._path(path))))

        def lstat(self, path: str) -> Any:
            return self._guard(lambda: paramiko.SFTPAttributes.from_stat(os.lstat(self._path(path))))

        def open(self, path: str, flags: int, attr: Any) -> Any:
            def opened() -> Any:
                fd = os.open(self._path(path), flags, 0o644)
                writing = flags & (os.O_WRONLY | os.O_RDWR)
                mode = ("ab" if flags & os.O_APPEND else "r+b" if flags & os.O_RDWR else "wb") if writing else "rb"
                handle = paramiko.SFTPHandle(flags)
                handle.filename = str(self._path(path))
                handle.readfile = handle.writefile = os.fdopen(fd, mode)
                return handle

            return self._guard(opened)

        def mkdir(self, path: str, attr: Any) -> Any:
            return self._guard(lambda: os.mkdir(self._path(path)) or paramiko.SFTP_OK)

        def rmdir(self, path: str) -> Any:
            return self._guard(lambda: os.rmdir(self._path(path)) or paramiko.SFTP_OK)

        def remove(self, path: str) -> Any:
            return self._guard(lambda: os.remove(self._path(path)) or paramiko.SFTP_OK)

        def rename(self, oldpath: str, newpath: str) -> Any:
            return self._guard(lambda: os.rename(self._path(oldpath), self._path(newpath)) or paramiko.SFTP_OK)

    return Folder


def _relay(channel: Any, target: tuple[str, int], deadline: float) -> None:
    """A direct-tcpip channel: connect to ``target`` and copy bytes both ways until either side ends."""
    try:
        sock = socket.create_connection(target, timeout=max(deadline - time.monotonic(), 0.01))
    except OSError:
        channel.close()
        return
    with sock:
        ends = {channel: sock, sock: channel}
        while time.monotonic() < deadline and ends:
            ready, _, _ = select.select(list(ends), [], [], 0.05)
            for source in ready:
                data = source.recv(32768)
                if not data:
                    with contextlib.suppress(OSError):
                        if source is sock:
                            channel.shutdown_write()
                        else:
                            sock.shutdown(socket.SHUT_WR)
                    ends.pop(source)
                    continue
                if source is sock:
                    channel.sendall(data)
                else:
                    sock.sendall(data)
            if channel.closed:
                break
    channel.close()


@dataclass
class ParamikoServer:
    """A running paramiko server from :func:`paramiko_server`; only valid inside the ``with`` block."""

    host: str
    port: int
    host_keys: dict[str, str]  # key type -> OpenSSH public key line
    host_key_objects: dict[str, Any] = field(repr=False)  # key type -> paramiko PKey (private)
    connections: list[ParamikoServerConnection] = field(default_factory=list)

    @property
    def known_hosts(self) -> str:
        return "".join(known_hosts_line(self.host, self.port, key) + "\n" for key in self.host_keys.values())


_SERVER_KEYS: dict[str, Any] = {}  # host keys made once per process (an RSA key takes a while)


@contextlib.contextmanager
def paramiko_server(
    *,
    host_key_types: Sequence[str] = ("ed25519",),
    kex: str | Sequence[str] | None = None,
    ciphers: str | Sequence[str] | None = None,
    macs: str | Sequence[str] | None = None,
    host_key_algorithms: str | Sequence[str] | None = None,
    passwords: Mapping[str, str] | None = None,
    authorized_keys: Mapping[str, Sequence[str]] | None = None,
    keyboard_interactive: Mapping[str, Sequence[Sequence[tuple[str, str]]]] | None = None,
    sftp_root: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[ParamikoServer]:
    """A paramiko server on 127.0.0.1 (a port the kernel picks) for as long as the ``with`` block runs.

    Algorithm lists use paramiko's names (``curve25519-sha256@libssh.org``, not ``curve25519-sha256``);
    an unknown name raises ValueError at the first connection.  ``passwords``: user -> password;
    ``authorized_keys``: user -> OpenSSH public key lines; ``keyboard_interactive``: user -> rounds, each a list
    of (prompt, expected answer), asked one round after another.  ``sftp_root``: paramiko's ``SFTPServer``
    serves that folder to the ``sftp`` subsystem (through :func:`_sftp_interface`, confined to it).  Every
    connection ends ``timeout`` s after its accept at the latest.
    """
    _paramiko()
    keys = {}
    for key_type in host_key_types:
        if key_type not in _SERVER_KEYS:
            _SERVER_KEYS[key_type] = _make_host_key(key_type)
        keys[key_type] = _SERVER_KEYS[key_type]
    settings = {
        "sftp_root": Path(sftp_root).resolve() if sftp_root is not None else None,
        "host_keys": keys,
        "algorithms": (kex, ciphers, macs, host_key_algorithms),
        "passwords": dict(passwords or {}),
        "keyboard_interactive": {user: [list(r) for r in rs] for user, rs in (keyboard_interactive or {}).items()},
        "authorized_keys": {
            user: {" ".join(line.split()[:2]) for line in lines} for user, lines in (authorized_keys or {}).items()
        },
    }
    handle = ParamikoServer(LOOPBACK, 0, {kind: _public_line(key) for kind, key in keys.items()}, keys)
    with _ParamikoListener(handle, settings, timeout) as listener:
        handle.port = listener.port
        yield handle


# -- the client --------------------------------------------------------------------------------------
@dataclass
class ParamikoClientRun(ClientRunReport):
    """What paramiko's client did against one server: the algorithms, how far it got, what the command said."""

    KEX_LIST_NAME: ClassVar[str] = "kex algos"  # paramiko's debug log names the KEXINIT's lists its own way

    kex: str | None = None
    host_key_algorithm: str | None = None
    cipher_client_to_server: str | None = None
    mac_client_to_server: str | None = None
    cipher_server_to_client: str | None = None
    mac_server_to_client: str | None = None
    server_kexinit: dict[str, list[str]] = field(default_factory=dict)  # paramiko's labels: "kex algos", ...
    server_version: str | None = None
    auth_methods: list[str] | None = None  # the server's answer to the "none" request
    authenticated: bool = False
    stdout: str = ""
    exit_status: int | None = None
    error: str | None = None
    host_key_verification_failed: bool = False
    log: list[str] = field(default_factory=list, repr=False)

    @property
    def reached_user_auth(self) -> bool:
        return self.authenticated or self.auth_methods is not None




def paramiko_client(
    host: str,
    port: int,
    *,
    user: str,
    known_hosts: str | None,
    password: str | None = None,
    key: Any = None,
    kex: str | Sequence[str] | None = None,
    ciphers: str | Sequence[str] | None = None,
    macs: str | Sequence[str] | None = None,
    host_key_algorithms: str | Sequence[str] | None = None,
    command: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ParamikoClientRun:
    """paramiko's client against ``host:port``: key exchange, host key check, ``none``, login, command.

    ``known_hosts`` is known_hosts text; the server's key must be in it under ``[host]:port`` (None: not
    checked).  ``key`` is a paramiko private key (``PKey``).  Errors are reported, not raised; the whole
    run is bounded by ``timeout``.
    """
    paramiko = _paramiko()
    deadline = time.monotonic() + timeout
    result = ParamikoClientRun()

    def remaining() -> float:
        return max(deadline - time.monotonic(), 0.01)

    try:
        sock = connect(host, port, timeout=timeout)
    except OSError as error:
        result.error = f"{type(error).__name__}: {error}"
        return result
    transport = _client_transport_class()(sock)
    transport.banner_timeout = transport.auth_timeout = transport.handshake_timeout = timeout
    with _transport_log(transport, "client") as log:
        result.log = log.lines
        try:
            _narrow(transport, kex, ciphers, macs, host_key_algorithms)
            transport.start_client(timeout=remaining())
            result.server_version = transport.remote_version or None
            if known_hosts is not None and not _known(paramiko, known_hosts, host, port, transport):
                result.host_key_verification_failed = True
                raise paramiko.SSHException(f"host key for [{host}]:{port} is not in known_hosts")
            try:
                transport.ensure_session()
                transport.auth_handler.send_auth_request(user, "none")
                result.auth_methods, result.authenticated = [], True
            except paramiko.BadAuthenticationType as refusal:
                result.auth_methods = [name for name in refusal.allowed_types if name]
            if not result.authenticated and key is not None and "publickey" in result.auth_methods:
                with contextlib.suppress(paramiko.AuthenticationException):
                    transport.auth_publickey(user, key)
                result.authenticated = transport.is_authenticated()
            if not result.authenticated and password is not None and "password" in result.auth_methods:
                with contextlib.suppress(paramiko.AuthenticationException):
                    transport.auth_password(user, password)
                result.authenticated = transport.is_authenticated()
            if result.authenticated and command is not None:
                channel = transport.open_session(timeout=remaining())
                channel.settimeout(remaining())
                channel.exec_command(command)
                output = b""
                while chunk := channel.recv(65536):
                    output += chunk
                result.stdout = output.decode(errors="replace")
                result.exit_status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as error:
            result.error = f"{type(error).__name__}: {error}"
        finally:
            negotiated = _negotiated(transport, log.lines, server=False)
            result.kex, result.host_key_algorithm = negotiated["kex"], negotiated["host_key"]
            result.cipher_client_to_server = negotiated["cipher_client_to_server"]
            result.cipher_server_to_client = negotiated["cipher_server_to_client"]
            result.mac_client_to_server = negotiated["mac_client_to_server"]
            result.mac_server_to_client = negotiated["mac_server_to_client"]
            result.server_kexinit = parse_paramiko_log(log.lines)["peer_kexinit"]
            transport.close()
            sock.close()
    return result


_CLIENT_TRANSPORT: Any = None


def _client_transport_class() -> Any:
    """paramiko's ``ServiceRequestingTransport`` with two bugs of paramiko 5.1's ``AuthOnlyHandler`` worked around.

    ``ServiceRequestingTransport`` (3.2+) asks for ``ssh-userauth`` once; the classic ``Transport`` asks
    again before every ``auth_*`` call, which asyncssh's server refuses ("Unexpected service in service
    request").  Its handler's ``send_auth_request`` makes the event it waits on only *after* sending, so
    an answer that comes back first sets the previous event and the call waits for ``auth_timeout``
    (seen about one run in three against asyncssh); and ``auth_none`` calls a ``finish_message`` of None
    (a TypeError).  Our handler makes the event before sending and takes no finish_message.
    """
    global _CLIENT_TRANSPORT
    if _CLIENT_TRANSPORT is None:
        paramiko = _paramiko()
        from paramiko.auth_handler import AuthOnlyHandler
        from paramiko.common import cMSG_USERAUTH_REQUEST

        class AuthHandler(AuthOnlyHandler):  # type: ignore[misc]
            def send_auth_request(self, username: str, method: str, finish_message: Any = None) -> Any:
                self.auth_method, self.username = method, username
                message = paramiko.Message()
                message.add_byte(cMSG_USERAUTH_REQUEST)
                message.add_string(username)
                message.add_string("ssh-connection")
                message.add_string(method)
                if finish_message is not None:
                    finish_message(message)
                self.auth_event = threading.Event()  # before sending: the answer may come back at once
                with self.transport.lock:
                    self.transport._send_message(message)
                return self.wait_for_response(self.auth_event)

        class ClientTransport(paramiko.ServiceRequestingTransport):  # type: ignore[misc]
            def get_auth_handler(self) -> Any:
                return AuthHandler(self)

        _CLIENT_TRANSPORT = ClientTransport
    return _CLIENT_TRANSPORT


def _known(paramiko: Any, known_hosts: str, host: str, port: int, transport: Any) -> bool:
    """Whether the server's host key is one ``known_hosts`` lists for ``host:port`` (paramiko's own lookup)."""
    entries = paramiko.HostKeys()
    for number, line in enumerate(known_hosts.splitlines(), 1):
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        if entry is not None:
            for name in entry.hostnames:
                entries.add(name, entry.key.get_name(), entry.key)
    name = host if port == 22 else f"[{host}]:{port}"
    return bool(entries.check(name, transport.get_remote_server_key()))
