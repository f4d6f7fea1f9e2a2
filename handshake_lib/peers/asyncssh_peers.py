"""asyncssh as a peer: an in-process SSH server in a thread of its own, and asyncssh's client, run to user auth.

Theory of operation
-------------------
* :func:`asyncssh_server` starts an asyncssh server on 127.0.0.1 on a port the kernel picks, in a
  background thread running its own event loop (so it works under Jupyter's running loop too).  Host
  keys are made in memory (ed25519 always; ecdsa P-256 and RSA when asked), algorithm lists can be
  narrowed, users log in by password and/or public key from the tables given, and a session runs a
  trivial handler: the text of the exec'd command comes back on stdout, exit status 0 (``exit N``: the
  text on stdout, ``exit N`` on stderr, exit status N).  ``direct-tcpip`` channels (``ssh -L``) to a
  loopback address are forwarded by asyncssh itself; with ``sftp_root`` asyncssh's own SFTP server
  serves that folder (``chroot``) to the ``sftp`` subsystem.  The yielded
  :class:`AsyncSSHServer` says where it listens, its host keys and a known_hosts text, and what asyncssh
  saw of each connection (:class:`AsyncSSHServerConnection`: negotiated algorithms, user, method,
  error).  Leaving the block closes the listener and every connection and joins the thread.
* :func:`asyncssh_client` connects asyncssh's client (in a worker thread, with its own event loop)
  and reports, in an :class:`AsyncSSHClientRun`, the negotiated algorithms, the server's KEXINIT
  name-lists, the methods the server offered, whether the login succeeded and the command's output,
  all within one deadline.

Where the negotiated algorithms come from: asyncssh's ``get_extra_info`` has the ciphers and MACs
(``send_cipher``, ``recv_mac``...) but forgets the key exchange and host key algorithm once the
exchange is over.  Both KEXINIT payloads stay on the connection (``_client_kexinit``,
``_server_kexinit``), so we read their name-lists with asyncssh's own packet reader and let asyncssh's
own ``_choose_alg`` (the RFC 4253 section 7.1 rule: the client's first algorithm the server also has)
name the choice.  Those are private attributes of asyncssh 2.24; a test fails if they move.

``ASYNCSSH_ALGORITHMS`` lists what asyncssh 2.24.1 supports among the course's algorithms; its server
announces strict kex (``kex-strict-s-v00@openssh.com``) and ``ext-info-s``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..net import DEFAULT_TIMEOUT, LOOPBACK
from . import PeerUnavailable
from .openssh import ClientRunReport, known_hosts_line

__all__ = [
    "ASYNCSSH_ALGORITHMS",
    "AsyncSSHClientRun",
    "AsyncSSHServer",
    "AsyncSSHServerConnection",
    "asyncssh_client",
    "asyncssh_server",
]

# asyncssh 2.24.1 among the algorithms the course implements, in its default preference order
# (asyncssh.kex.get_default_kex_algs() and friends); the interop matrix is generated from these.
ASYNCSSH_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "kex": (
        "mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
        "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
    ),
    "cipher": (
        "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr",
        "aes128-ctr",
    ),
    "mac": ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"),
    "host_key": ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"),
}  # fmt: skip

IMPLICIT_MAC = "<implicit>"  # what OpenSSH logs as the MAC of an AEAD cipher; used by every peer module
_KEY_ALGORITHMS = {
    "ed25519": ("ssh-ed25519", {}),
    "ecdsa": ("ecdsa-sha2-nistp256", {}),
    "rsa": ("ssh-rsa", {"key_size": 2048}),
}
# The methods asyncssh's client may try (it keeps only these of a server's list, so name all we report).
_AUTH_METHODS = ("publickey", "password", "keyboard-interactive")
_AEAD = ("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError as error:  # pragma: no cover - the venv has it
        raise PeerUnavailable(f"asyncssh cannot be imported ({error}); pip install asyncssh") from None
    return asyncssh


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return value.split(",") if isinstance(value, str) else list(value)


def kexinit_name_lists(payload: bytes) -> dict[str, list[str]]:
    """The ten name-lists of a KEXINIT payload, read by asyncssh's packet reader (OpenSSH's -vvv labels)."""
    from asyncssh.packet import SSHPacket

    packet = SSHPacket(payload)
    packet.get_byte()  # SSH_MSG_KEXINIT
    packet.get_bytes(16)  # cookie
    labels = (
        "KEX algorithms", "host key algorithms", "ciphers ctos", "ciphers stoc", "MACs ctos", "MACs stoc",
        "compression ctos", "compression stoc", "languages ctos", "languages stoc",
    )  # fmt: skip
    return {label: [name.decode("ascii") for name in packet.get_namelist()] for label in labels}


def _negotiated(conn: Any) -> dict[str, str | None]:
    """What this asyncssh connection negotiated (see the module docstring for where each item comes from)."""
    result: dict[str, str | None] = dict.fromkeys(
        ("kex", "host_key", "cipher_client_to_server", "cipher_server_to_client",
         "mac_client_to_server", "mac_server_to_client"),
    )  # fmt: skip
    if not conn._client_kexinit or not conn._server_kexinit:
        return result
    client, server = kexinit_name_lists(conn._client_kexinit), kexinit_name_lists(conn._server_kexinit)
    mine, theirs = (client, server) if conn.is_client() else (server, client)
    for key, label in (("kex", "KEX algorithms"), ("host_key", "host key algorithms")):
        with contextlib.suppress(_asyncssh().KeyExchangeFailed):  # no common algorithm: stays None
            result[key] = conn._choose_alg(
                key, [n.encode() for n in mine[label]], [n.encode() for n in theirs[label]]
            ).decode()
    sending = "client_to_server" if conn.is_client() else "server_to_client"
    receiving = "server_to_client" if conn.is_client() else "client_to_server"
    for direction, prefix in ((sending, "send"), (receiving, "recv")):
        cipher = conn.get_extra_info(f"{prefix}_cipher")
        result[f"cipher_{direction}"] = cipher
        result[f"mac_{direction}"] = IMPLICIT_MAC if cipher in _AEAD else conn.get_extra_info(f"{prefix}_mac")
    return result


# -- the server ------------------------------------------------------------------------------------------
@dataclass
class AsyncSSHServerConnection:
    """What the asyncssh server saw of one connection."""

    negotiated: dict[str, str | None] = field(default_factory=dict)
    client_version: str | None = None
    username: str | None = None
    authenticated: bool = False
    error: str | None = None  # why asyncssh ended it (a no-common-algorithm failure names both lists)
    finished: bool = False  # the connection is over and this record final


@dataclass
class AsyncSSHServer:
    """A running asyncssh server from :func:`asyncssh_server`; only valid inside the ``with`` block."""

    host: str
    port: int
    host_keys: dict[str, str]  # key type ("ed25519"...) -> OpenSSH public key line
    host_key_objects: dict[str, Any] = field(repr=False)  # key type -> asyncssh.SSHKey (private)
    connections: list[AsyncSSHServerConnection] = field(default_factory=list)

    @property
    def known_hosts(self) -> str:
        return "".join(known_hosts_line(self.host, self.port, key) + "\n" for key in self.host_keys.values())


@contextlib.contextmanager
def asyncssh_server(
    *,
    host_key_types: Sequence[str] = ("ed25519",),
    kex_algs: str | Sequence[str] | None = None,
    encryption_algs: str | Sequence[str] | None = None,
    mac_algs: str | Sequence[str] | None = None,
    server_host_key_algs: str | Sequence[str] | None = None,
    passwords: Mapping[str, str] | None = None,
    authorized_keys: Mapping[str, Sequence[str]] | None = None,
    keyboard_interactive: Mapping[str, Sequence[Sequence[tuple[str, str]]]] | None = None,
    expired_passwords: Sequence[str] = (),
    sftp_root: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[AsyncSSHServer]:
    """An asyncssh server on 127.0.0.1 (a port the kernel picks) for as long as the ``with`` block runs.

    ``passwords`` maps user -> password; ``authorized_keys`` maps user -> OpenSSH public key lines; a user
    in neither table cannot log in (the server still lists its methods).  ``keyboard_interactive``: user ->
    rounds of (prompt, expected answer); ``expired_passwords``: users whose right password is answered with
    PASSWD_CHANGEREQ (asyncssh's ``PasswordChangeRequired``).  ``server_host_key_algs``
    narrows what the host keys are offered for (``rsa-sha2-256`` only, say).  Waits at most ``timeout``
    s to start and to stop.
    """
    asyncssh = _asyncssh()
    keys = {}
    for key_type in host_key_types:
        algorithm, options = _KEY_ALGORITHMS[key_type]
        keys[key_type] = asyncssh.generate_private_key(algorithm, **options)
    passwords = dict(passwords or {})
    accepted = {
        user: {asyncssh.import_public_key(line).public_data for line in lines}  # the blob: comments do not count
        for user, lines in (authorized_keys or {}).items()
    }
    handle = AsyncSSHServer(
        LOOPBACK, 0,
        {kind: key.export_public_key().decode().strip() for kind, key in keys.items()},
        keys,
    )  # fmt: skip
    open_connections: list[Any] = []

    class Server(asyncssh.SSHServer):  # type: ignore[misc]
        def connection_made(self, conn: Any) -> None:
            self.conn = conn
            self.record = AsyncSSHServerConnection(client_version=conn.get_extra_info("client_version"))
            handle.connections.append(self.record)
            open_connections.append(conn)

        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None:
                self.record.error = str(exc)
            if not self.record.negotiated:
                self.record.negotiated = _negotiated(self.conn)
            with contextlib.suppress(ValueError):
                open_connections.remove(self.conn)
            self.record.finished = True

        def begin_auth(self, username: str) -> bool:
            self.record.negotiated = _negotiated(self.conn)  # the key exchange is over when auth begins
            self.record.client_version = self.conn.get_extra_info("client_version")
            self.record.username = username
            return True

        def password_auth_supported(self) -> bool:
            return bool(passwords)

        def validate_password(self, username: str, password: str) -> bool:
            self.record.authenticated = username in passwords and passwords[username] == password
            if self.record.authenticated and username in expired_passwords:
                self.record.authenticated = False
                raise asyncssh.PasswordChangeRequired("your password has expired")
            return self.record.authenticated

        def kbdint_auth_supported(self) -> bool:
            # asyncssh's own default offers keyboard-interactive as a password prompt when passwords are set
            return bool(keyboard_interactive) or super().kbdint_auth_supported()

        def _challenge(self, username: str) -> Any:
            questions = (keyboard_interactive or {})[username][self.round]
            return (f"round {self.round + 1}", "", "", [(prompt, False) for prompt, _ in questions])

        def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
            if username not in (keyboard_interactive or {}):
                return super().get_kbdint_challenge(username, lang, submethods)
            self.round = 0
            return self._challenge(username)

        def validate_kbdint_response(self, username: str, responses: Sequence[str]) -> Any:
            if username not in (keyboard_interactive or {}):
                return super().validate_kbdint_response(username, responses)
            rounds = (keyboard_interactive or {})[username]
            if list(responses) != [answer for _, answer in rounds[self.round]]:
                return False
            self.round += 1
            if self.round < len(rounds):
                return self._challenge(username)
            self.record.authenticated = True
            return True

        def public_key_auth_supported(self) -> bool:
            return bool(accepted)

        def validate_public_key(self, username: str, key: Any) -> bool:
            self.record.authenticated = key.public_data in accepted.get(username, set())
            return self.record.authenticated

        def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
            # True: asyncssh connects to the target itself and copies the bytes both ways; loopback only
            return dest_host in (LOOPBACK, "localhost")

    def session(process: Any) -> None:
        command = process.command or ""
        process.stdout.write(command)
        words = command.split()
        if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
            process.stderr.write(f"{command}\n")
            process.exit(int(words[1]))
        else:
            process.exit(0)

    def sftp_factory(channel: Any) -> Any:
        return asyncssh.SFTPServer(channel, chroot=os.fsencode(sftp_root))

    options = asyncssh.SSHServerConnectionOptions(
        server_host_keys=list(keys.values()),
        **{
            name: _names(value)
            for name, value in (("kex_algs", kex_algs), ("encryption_algs", encryption_algs), ("mac_algs", mac_algs))
            if value is not None
        },
    )
    if server_host_key_algs is not None:
        wanted = {name.encode() for name in _names(server_host_key_algs) or ()}
        for algorithm in [name for name in options.server_host_keys if name not in wanted]:
            del options.server_host_keys[algorithm]
        if not options.server_host_keys:
            raise ValueError(f"no host key of types {list(keys)} can sign with {sorted(wanted)}")

    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            listener = loop.run_until_complete(
                asyncssh.create_server(
                    Server, LOOPBACK, 0, options=options, process_factory=session,
                    sftp_factory=sftp_factory if sftp_root is not None else None,
                )  # fmt: skip
            )
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread
            started.set_exception(error)
            return
        started.set_result(listener)
        loop.run_forever()

    thread = threading.Thread(target=run, name="asyncssh-server", daemon=True)
    thread.start()
    try:
        listener = started.result(timeout)
    except concurrent.futures.TimeoutError:
        raise PeerUnavailable(f"the asyncssh server did not start within {timeout} s") from None
    handle.port = listener.get_port()

    async def close() -> None:
        listener.close()
        for conn in list(open_connections):
            conn.abort()
        await asyncio.wait_for(listener.wait_closed(), timeout)

    try:
        yield handle
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


# -- the client --------------------------------------------------------------------------------------
@dataclass
class AsyncSSHClientRun(ClientRunReport):
    """What asyncssh's client did against one server: the algorithms, how far it got, what the command said."""

    kex: str | None = None
    host_key_algorithm: str | None = None
    cipher_client_to_server: str | None = None
    mac_client_to_server: str | None = None  # "<implicit>" for AEAD ciphers
    cipher_server_to_client: str | None = None
    mac_server_to_client: str | None = None
    server_kexinit: dict[str, list[str]] = field(default_factory=dict)
    server_version: str | None = None
    auth_methods: list[str] | None = None  # what the server listed after a failed attempt (as asyncssh kept it)
    authenticated: bool = False
    stdout: str = ""
    exit_status: int | None = None
    error: str | None = None  # asyncssh's exception, as "ClassName: message"
    timed_out: bool = False

    @property
    def reached_user_auth(self) -> bool:
        return self.authenticated or self.auth_methods is not None




def asyncssh_client(
    host: str,
    port: int,
    *,
    user: str,
    known_hosts: str | None,
    password: str | None = None,
    client_keys: Sequence[Any] = (),
    kex_algs: str | Sequence[str] | None = None,
    encryption_algs: str | Sequence[str] | None = None,
    mac_algs: str | Sequence[str] | None = None,
    server_host_key_algs: str | Sequence[str] | None = None,
    command: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncSSHClientRun:
    """Connect asyncssh's client to ``host:port`` and log in as ``user``; errors are reported, not raised.

    ``known_hosts`` is known_hosts *text* (``AsyncSSHServer.known_hosts``, ``OpenSSHServer.known_hosts``);
    None turns host key checking off (only for probing a server whose key is not known yet).
    ``client_keys`` are asyncssh private keys or paths; ``command`` runs after a successful login.
    Runs in a worker thread with its own event loop, so it also works inside a notebook's running loop.
    """
    asyncssh = _asyncssh()
    result = AsyncSSHClientRun()
    known = None if known_hosts is None else asyncssh.import_known_hosts(known_hosts)
    options: dict[str, Any] = {
        name: _names(value)
        for name, value in (
            ("kex_algs", kex_algs), ("encryption_algs", encryption_algs), ("mac_algs", mac_algs),
            ("server_host_key_algs", server_host_key_algs),
        )
        if value is not None
    }  # fmt: skip
    connections: list[Any] = []

    class Client(asyncssh.SSHClient):  # type: ignore[misc]
        def connection_made(self, conn: Any) -> None:
            connections.append(conn)

    async def attempt() -> None:
        conn, _client = await asyncssh.create_connection(
            Client, host, port, username=user, known_hosts=known, password=password,
            client_keys=list(client_keys) or None, agent_path=None, config=None,
            preferred_auth=_AUTH_METHODS,
            ignore_encrypted=True, **options,
        )  # fmt: skip
        async with conn:
            result.authenticated = True
            if command is not None:
                completed = await conn.run(command)
                result.stdout = str(completed.stdout or "")
                result.exit_status = completed.exit_status

    async def run() -> None:
        try:
            await asyncio.wait_for(attempt(), timeout)
        except TimeoutError:
            result.timed_out = True
            result.error = f"TimeoutError: no answer within {timeout} s"
        except (OSError, asyncssh.Error) as error:
            result.error = f"{type(error).__name__}: {error}"
        finally:
            if connections:
                _fill(result, connections[0])

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asyncssh-client") as pool:
        pool.submit(asyncio.run, run()).result(timeout + 5)  # run() has its own deadline; this is a backstop
    return result


def _fill(result: AsyncSSHClientRun, conn: Any) -> None:
    negotiated = _negotiated(conn)
    result.kex, result.host_key_algorithm = negotiated["kex"], negotiated["host_key"]
    result.cipher_client_to_server = negotiated["cipher_client_to_server"]
    result.cipher_server_to_client = negotiated["cipher_server_to_client"]
    result.mac_client_to_server = negotiated["mac_client_to_server"]
    result.mac_server_to_client = negotiated["mac_server_to_client"]
    if conn._server_kexinit:
        result.server_kexinit = kexinit_name_lists(conn._server_kexinit)
    result.server_version = conn.get_extra_info("server_version")
    methods = [method.decode("ascii") for method in conn._auth_methods]
    if methods != ["none"] or result.authenticated:  # [b"none"] is asyncssh's start value: no answer yet
        result.auth_methods = methods
