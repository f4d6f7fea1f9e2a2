"""Private stand-ins for the SSH message and negotiation tests (slice B1): real peers and a tiny packet codec.

The packet layer (``ssh/packet.py``) and the peers package (``peers/asyncssh_peers.py``...) are other
slices, written at the same time; these are the smallest versions the tests need, kept here so that
nothing shared depends on them.  Everything before NEWKEYS travels unencrypted (RFC 4253 section 6: the
"none" cipher and MAC), so reading a version line and the first packets needs no cryptography.

* :func:`read_version_line`, :func:`read_packet`, :func:`write_packet`: blocking socket I/O, deadlines on
  every read, unencrypted packets only;
* :class:`AsyncsshPeers`: one asyncio loop in a thread; ``server(**options)`` starts an asyncssh server on
  127.0.0.1 with narrowed algorithm lists, and records its connections;
* :class:`RecordingRelay`: a loopback relay between a client and a server that keeps what each side sent
  (so a test reads both real KEXINITs while the two peers negotiate with each other);
* :func:`paramiko_server_socket`: a paramiko ``Transport`` server on one end of a socketpair.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

from handshake_lib.wire import Reader, Writer

DEADLINE = 10.0  # seconds, for every wait


def read_version_line(sock: socket.socket, limit: int = 8192) -> bytes:
    """Read up to and including the ``SSH-`` line's LF (lines before it are skipped, RFC 4253 section 4.2)."""
    sock.settimeout(DEADLINE)
    data = b""
    while True:
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed before a version line: {data!r}")
        data += byte
        if byte == b"\n":
            if data.startswith(b"SSH-"):
                return data
            data = b""
        if len(data) > limit:
            raise ValueError("version line too long")


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(DEADLINE)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def split_packet(data: bytes) -> tuple[bytes, bytes]:
    """(payload, rest) of the first unencrypted packet at the start of ``data``."""
    length = int.from_bytes(data[:4], "big")
    padding = data[4]
    assert 5 <= length + 4 <= len(data), "incomplete packet"
    return data[5 : 4 + length - padding], data[4 + length :]


def read_packet(sock: socket.socket) -> bytes:
    """One unencrypted packet's payload."""
    header = _recv_exactly(sock, 5)
    length = int.from_bytes(header[:4], "big")
    assert length <= 35000, f"packet length {length}"
    rest = _recv_exactly(sock, length - 1)
    return rest[: length - 1 - header[4]]


def write_packet(sock: socket.socket, payload: bytes) -> None:
    """One unencrypted packet: padding to a multiple of 8, at least 4 bytes (RFC 4253 section 6)."""
    padding = 8 - (len(payload) + 5) % 8
    if padding < 4:
        padding += 8
    sock.sendall((len(payload) + padding + 1).to_bytes(4, "big") + bytes([padding]) + payload + bytes(padding))


def after_version_line(stream: bytes) -> bytes:
    """What follows the SSH- line in a recorded stream."""
    start = stream.index(b"SSH-")
    return stream[stream.index(b"\n", start) + 1 :]


# -- a private stand-in for slice B2's exchange hash (RFC 4253 section 8, RFC 5656 section 4, RFC 8731) --
def mpint(value: int) -> bytes:
    return Writer().ssh_mpint(value).getvalue()


def exchange_hash(*fields: bytes, shared: int) -> bytes:
    """SHA-256 over the already encoded ``fields``, then the shared secret K as an mpint."""
    return hashlib.sha256(b"".join(fields) + mpint(shared)).digest()


def verify_ed25519(host_key: bytes, signature: bytes, data: bytes) -> None:
    """Check an ssh-ed25519 signature blob over ``data`` with an ssh-ed25519 key blob (InvalidSignature if not)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = Reader(host_key)
    assert key.ssh_string("type") == b"ssh-ed25519"
    public = ed25519.Ed25519PublicKey.from_public_bytes(key.ssh_string("key"))
    blob = Reader(signature)
    assert blob.ssh_string("type") == b"ssh-ed25519"
    public.verify(blob.ssh_string("signature"), data)


# -- asyncssh -----------------------------------------------------------------------------------------
class AsyncsshPeers:
    """An asyncio loop in a daemon thread, for asyncssh servers and clients used from synchronous tests."""

    def __init__(self) -> None:
        import asyncssh

        self.asyncssh = asyncssh
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.keys = {
            "ssh-ed25519": asyncssh.generate_private_key("ssh-ed25519"),
            "ecdsa-sha2-nistp256": asyncssh.generate_private_key("ecdsa-sha2-nistp256"),
            "ssh-rsa": asyncssh.generate_private_key("ssh-rsa", key_size=2048),
        }
        self.connections: list[Any] = []
        self._servers: list[Any] = []
        # asyncssh keeps the chosen kex method only while the exchange runs; its debug log names it.
        self._kex_log = LogMatches("asyncssh", r"Key exchange alg: (\S+)")
        self.kex_algorithms = self._kex_log.matches
        asyncssh.set_debug_level(2)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(DEADLINE)

    def server(self, key_types: tuple[str, ...] = ("ssh-ed25519",), *, banner: str = "", **options: Any) -> int:
        """Start a server with these host keys and asyncssh options; return its port.

        It offers password authentication and refuses every password; with ``banner`` it sends
        SSH_MSG_USERAUTH_BANNER first.
        """
        asyncssh = self.asyncssh
        peers = self

        class Recorder(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                self.conn = conn
                peers.connections.append(conn)

            def begin_auth(self, username: str) -> bool:
                if banner:
                    self.conn.send_auth_banner(banner)
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return False

        keys = [self.keys[name] for name in key_types]

        async def start() -> Any:
            return await asyncssh.create_server(
                Recorder, "127.0.0.1", 0, server_host_keys=keys, login_timeout=DEADLINE, **options
            )

        server = self.run(start())
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for conn in self.connections:
                conn.abort()

        with contextlib.suppress(Exception):
            self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        self._kex_log.remove()


class LogMatches(logging.Handler):
    """Collects group 1 of ``pattern`` from every formatted record of logger ``name`` (and its children)."""

    def __init__(self, name: str, pattern: str, into: list[str] | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.pattern = re.compile(pattern)
        self.matches: list[str] = into if into is not None else []
        self.logger = logging.getLogger(name)
        self._old_level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        match = self.pattern.search(record.getMessage())
        if match:
            self.matches.append(match.group(1))

    def remove(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._old_level)


# -- a relay that records ------------------------------------------------------------------------------
class RecordingRelay:
    """Accept one connection on 127.0.0.1, connect it to ``target_port``, relay both ways, keep both streams.

    ``client_bytes`` / ``server_bytes``: what each side sent (the first 256 KiB).  Use as a ``with``
    block; the relay thread ends when both sides have closed, or at the end of the block.
    """

    LIMIT = 256 * 1024

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.client_bytes = bytearray()
        self.server_bytes = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RecordingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self.listener.close()

    def _run(self) -> None:
        self.listener.settimeout(DEADLINE)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.target_port), timeout=DEADLINE)
        pairs = {client: (server, self.client_bytes), server: (client, self.server_bytes)}
        open_sockets = {client, server}
        try:
            while open_sockets and not self._stop.is_set():
                readable, _, _ = select.select(list(open_sockets), [], [], 0.1)
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    other, record = pairs[sock]
                    if not data:
                        open_sockets.discard(sock)
                        with contextlib.suppress(OSError):
                            other.shutdown(socket.SHUT_WR)
                        continue
                    if len(record) < self.LIMIT:
                        record += data[: self.LIMIT - len(record)]
                    with contextlib.suppress(OSError):
                        other.sendall(data)
        finally:
            client.close()
            server.close()


# -- paramiko -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def paramiko_server_socket(**security: Any) -> Iterator[socket.socket]:
    """A paramiko server Transport on one end of a socketpair (ed25519 and ECDSA host keys); yields the other.

    ``security``: attributes of ``Transport.get_security_options()`` to narrow (kex, ciphers, digests...).
    """
    import paramiko

    ours, theirs = socket.socketpair()
    transport = paramiko.Transport(theirs)
    transport.add_server_key(paramiko.Ed25519Key.from_private_key(_ed25519_pem()))
    transport.add_server_key(paramiko.ECDSAKey.generate(bits=256))
    options = transport.get_security_options()
    for name, value in security.items():
        setattr(options, name, value)
    # With an event, start_server returns at once (without one it waits for the whole key exchange).
    transport.start_server(event=threading.Event(), server=paramiko.ServerInterface())
    try:
        yield ours
    finally:
        transport.close()
        ours.close()


def _ed25519_pem() -> Any:
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    return io.StringIO(pem.decode())


@contextlib.contextmanager
def paramiko_listener(**security: Any) -> Iterator[tuple[int, list[Any]]]:
    """A paramiko server on a loopback port, for one connection; yields (port, [its Transport once accepted]).

    ``security``: attributes of ``Transport.get_security_options()`` to narrow, as in
    :func:`paramiko_server_socket` (ed25519 and ECDSA host keys).
    """
    import paramiko

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(DEADLINE)
    transports: list[Any] = []

    def serve() -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        transport = paramiko.Transport(sock)
        transport.add_server_key(paramiko.Ed25519Key.from_private_key(_ed25519_pem()))
        transport.add_server_key(paramiko.ECDSAKey.generate(bits=256))
        options = transport.get_security_options()
        for name, value in security.items():
            setattr(options, name, value)
        transports.append(transport)
        transport.start_server(event=threading.Event(), server=paramiko.ServerInterface())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], transports
    finally:
        listener.close()
        thread.join(DEADLINE)
        for transport in transports:
            transport.close()
