"""OpenSSL as a peer: a TLS server on loopback, in this process or as the ``openssl`` program.

Theory of operation
-------------------
Three ways to run OpenSSL, from the one a lesson wants to the one a test needs:

* :func:`openssl_server`: a real OpenSSL TLS server on 127.0.0.1 with a fresh course CA and server
  key, a key log, and a small HTML page, for as long as the ``with`` block runs.  It yields an
  :class:`OpenSSLServer`: where it listens (``url``, ``host``, ``port``), what to trust (``cafile``),
  OpenSSL's key log (``master_secret()``) and why OpenSSL ended its latest connection (``last_error``).
* :class:`PythonSSLServer`: the engine underneath, OpenSSL through Python's ``ssl`` module in a
  background thread (a :class:`~handshake_lib.net.LoopbackServer`), given a ready ``SSLContext``
  (:func:`server_context` makes one); each connection's version and cipher, or the error that ended
  it, is appended to ``connections``.
* :func:`s_server`: the ``openssl s_server`` command-line program as a child process, for what only
  the program can do (``-max_send_frag`` cuts its records, ``-Verify`` prints the client certificate
  it checked); it yields an :class:`OpenSSLProcess`, whose ``read_output`` reads what it printed.

Every wait has a deadline; the folder holding the keys and the log is deleted after the server has
stopped; a child process is killed and reaped when the block ends, even when the block fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConnectionTimeout
from ..net import DEFAULT_TIMEOUT, LOOPBACK, LoopbackServer, connect
from ..net.tls import send_client_hello
from ..pki.builder import CoursePKI, ServerFiles
from ..tls.flight import MAX_ANSWER_BYTES, ServerAnswer
from ..tls.keylog import KeyLog, read_keylog
from . import PeerUnavailable

__all__ = [
    "DEFAULT_PAGE",
    "ConnectionOutcome",
    "OpenSSLFetch",
    "OpenSSLProcess",
    "OpenSSLServer",
    "PythonSSLServer",
    "http_page_handler",
    "openssl_fetch",
    "openssl_server",
    "s_client",
    "s_server",
    "server_context",
]

DEFAULT_PAGE = (
    b"<!doctype html><html><head><title>Handshakes</title></head>"
    b"<body><h1>Hello from OpenSSL</h1><p>This page came over a TLS connection you set up.</p></body></html>"
)


def http_page_handler(page: bytes = DEFAULT_PAGE) -> Callable[[ssl.SSLSocket], None]:
    """Answer one HTTP/1.1 request with ``page``; a minimal server, enough to show a real response."""

    def handle(conn: ssl.SSLSocket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 16384:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n"
        ).encode()
        conn.sendall(head + page)

    return handle


@dataclass
class ConnectionOutcome:
    """What OpenSSL saw of one connection: the negotiated version and cipher, or the error that ended it."""

    version: str | None = None
    cipher: str | None = None
    error: BaseException | None = None


class PythonSSLServer(LoopbackServer):
    """OpenSSL, through Python's ``ssl``, serving TLS on loopback in a thread while the ``with`` block runs.

    >>> with PythonSSLServer(context) as server:          # doctest: +SKIP
    ...     connect(server.host, server.port)

    Each connection's negotiated version and cipher, or the error that ended it, is appended to
    ``connections`` (a :class:`ConnectionOutcome`), so a lesson or a test can read what OpenSSL saw.
    """

    name = "PythonSSLServer"

    def __init__(
        self,
        context: ssl.SSLContext,
        handler: Callable[[ssl.SSLSocket], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        **listen_options: Any,
    ) -> None:
        super().__init__(timeout=timeout, **listen_options)
        self.context = context
        self.handler = handler if handler is not None else http_page_handler()
        self.connections: list[ConnectionOutcome] = []

    def serve(self, conn: socket.socket) -> None:
        outcome = ConnectionOutcome()
        self.connections.append(outcome)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                outcome.version = tls.version()
                cipher = tls.cipher()
                outcome.cipher = cipher[0] if cipher else None
                self.handler(tls)
        except (OSError, ssl.SSLError) as error:  # the peer's fault, recorded for the test or lesson to read
            outcome.error = error

    def error_of(self, index: int, *, wait: float = 0.5) -> str:
        """Why this server ended its connection number ``index``, in OpenSSL's words ("" if it did not say).

        The server thread records the error just after sending its alert, so this waits up to ``wait`` s.
        """
        deadline = time.monotonic() + wait
        while True:
            if len(self.connections) > index and self.connections[index].error is not None:
                error = self.connections[index].error
                return str(getattr(error, "reason", None) or error)
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.005)


def server_context(
    cert_path: Path,
    key_path: Path,
    *,
    ciphers: str | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    keylog_path: Path | None = None,
    ecdh_curve: str | None = None,
) -> ssl.SSLContext:
    """An OpenSSL server context.  ``ciphers`` uses OpenSSL's names, e.g. ``"AES128-GCM-SHA256"``.

    ``ecdh_curve`` (OpenSSL's name, ``"prime256v1"``) makes it the server's only group, in TLS 1.3 too
    (OpenSSL 3: ``SSL_CTX_set1_groups`` with that one group): a client without a share for it gets a
    HelloRetryRequest.

    OpenSSL 3 puts plain RSA key exchange below its default security level in some builds; callers
    that need it add ``@SECLEVEL=0`` to ``ciphers`` (lessons say so where they do).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.minimum_version = minimum_version
    context.maximum_version = maximum_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if keylog_path is not None:
        context.keylog_filename = str(keylog_path)
    if ecdh_curve is not None:
        context.set_ecdh_curve(ecdh_curve)
    return context


# -- a real OpenSSL server with fresh keys, in one call -------------------------------------------------
@dataclass
class OpenSSLServer:
    """A running OpenSSL server from :func:`openssl_server`: where it is, how to trust it, what it logged.

    Only valid inside the ``with`` block: afterwards the server is stopped and its files are gone.
    ``host``/``port`` are where it listens; ``url`` names it by ``server_name`` (the first name in its
    certificate), so a client checking the hostname checks a name the certificate really holds.
    """

    ciphers: str  # the OpenSSL cipher string the server was restricted to
    url: str
    host: str
    port: int
    cafile: Path  # trust this (and only this) to verify the server
    keylog_path: Path  # OpenSSL's own NSS key log: one CLIENT_RANDOM line per TLS 1.2 connection
    server: PythonSSLServer
    files: ServerFiles
    server_name: str = "localhost"

    @property
    def certificate(self) -> Any:  # cryptography.x509.Certificate
        """The server's certificate (made for this run)."""
        return self.files.issued.certificate

    @property
    def private_key(self) -> Any:  # the server's private key (RSA by default)
        return self.files.issued.private_key

    @property
    def connections(self) -> list[ConnectionOutcome]:
        """What OpenSSL saw of each connection so far, oldest first."""
        return self.server.connections

    def keylog(self) -> KeyLog:
        """OpenSSL's key log so far (empty before the first handshake)."""
        return read_keylog(self.keylog_path) if self.keylog_path.exists() else KeyLog()

    def master_secret(self, client_random: bytes) -> bytes | None:
        """The master secret OpenSSL logged for the connection that used ``client_random``, if any."""
        return self.keylog().master_secret(client_random)

    def send_client_hello(
        self, client_hello: bytes, *, timeout: float = DEFAULT_TIMEOUT, max_answer_bytes: int = MAX_ANSWER_BYTES
    ) -> ServerAnswer:
        """Send any bytes as a ClientHello (:func:`handshake_lib.net.tls.send_client_hello`) and read the answer.

        When OpenSSL refused the hello, the reason it logged on its side goes into ``answer.openssl_error``.
        """
        deadline = time.monotonic() + timeout
        seen = len(self.server.connections)
        answer = send_client_hello(
            self.host, self.port, client_hello, timeout=timeout, max_answer_bytes=max_answer_bytes
        )
        if not answer.complete:
            answer.openssl_error = self.server.error_of(seen, wait=min(0.5, max(deadline - time.monotonic(), 0)))
        return answer

    @property
    def last_error(self) -> str | None:
        """Why OpenSSL ended its latest connection, in OpenSSL's words; None if it ended well (or none came)."""
        connections = self.server.connections
        if not connections or connections[-1].error is None:
            return None
        return str(connections[-1].error)


# -- OpenSSL's client, fetching one page -----------------------------------------------------------
@dataclass
class OpenSSLFetch:
    """What OpenSSL's client (Python ``ssl``) saw fetching ``/``: the cipher it negotiated, the page, or why not."""

    cipher: str = ""  # as SSLSocket.cipher() names it (OpenSSL's name)
    page: bytes = b""  # the body of the response
    error: str = ""  # OpenSSL's reason when the handshake or the read failed


def openssl_fetch(
    host: str,
    port: int,
    *,
    cafile: Path,
    ciphers: str | None = None,
    server_hostname: str = "localhost",
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = 1 << 20,
) -> OpenSSLFetch:
    """GET ``/`` from ``host:port`` with OpenSSL's client, trusting ``cafile`` only; errors are reported, not raised.

    ``timeout`` bounds the whole exchange; at most ``max_bytes`` of response are read.
    """
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context(cafile=str(cafile))
    context.maximum_version = maximum_version
    result = OpenSSLFetch()
    try:
        if ciphers is not None:
            context.set_ciphers(ciphers)
        with (
            connect(host, port, timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            cipher = tls.cipher()
            result.cipher = cipher[0] if cipher else ""
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_hostname}\r\nConnection: close\r\n\r\n".encode())
            response = b""
            while len(response) < max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionTimeout(f"no complete response within {timeout} s")
                tls.settimeout(remaining)
                chunk = tls.recv(65536)
                if not chunk:
                    break
                response += chunk
            result.page = response[:max_bytes].partition(b"\r\n\r\n")[2]
    except (ssl.SSLError, OSError) as error:  # ConnectionTimeout is an OSError too
        result.error = str(getattr(error, "reason", None) or error)
    return result


@contextlib.contextmanager
def openssl_server(
    ciphers: str = "AES128-GCM-SHA256",
    *,
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    hostnames: tuple[str, ...] = ("localhost", "127.0.0.1"),
    files: ServerFiles | None = None,
    keylog: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    **context_options: Any,
) -> Iterator[OpenSSLServer]:
    """A real OpenSSL server on 127.0.0.1 with fresh keys and a key log, for as long as the ``with`` runs.

    >>> with openssl_server("AES128-SHA256") as peer:          # doctest: +SKIP
    ...     response = tls_get(peer.url, cafile=peer.cafile)
    ...     peer.master_secret(response.handshake.client_random)

    A new course CA and server certificate for ``hostnames`` are made for every call (pass ``files`` to
    reuse ones the caller made and will delete).  Everything lives in a private temporary folder that is
    deleted, after the server has stopped, when the block ends.  ``ciphers`` is an OpenSSL cipher
    string; other keywords go to :func:`server_context`.  TLS 1.2 only by default, because that is
    where OpenSSL logs a master secret (``CLIENT_RANDOM``) that the lessons compare with;
    ``keylog=False`` turns the log off (benchmarks: writing it costs OpenSSL time on every handshake),
    and then ``master_secret()`` finds nothing.
    """
    with tempfile.TemporaryDirectory(prefix="handshakes-openssl-") as folder:
        directory = Path(folder)
        if files is None:
            files = CoursePKI.create().write_server_files(directory, hostnames)
        keylog_path = directory / "openssl-keylog.txt"
        context = server_context(
            files.cert_path,
            files.key_path,
            ciphers=ciphers,
            minimum_version=minimum_version,
            maximum_version=maximum_version,
            keylog_path=keylog_path if keylog else None,
            **context_options,
        )
        with PythonSSLServer(context, timeout=timeout) as server:
            server_name = hostnames[0]
            yield OpenSSLServer(
                ciphers,
                f"https://{server_name}:{server.port}/",
                server.host,
                server.port,
                files.ca_path,
                keylog_path,
                server,
                files,
                server_name,
            )


# -- the openssl command-line program ---------------------------------------------------------------
@dataclass
class OpenSSLProcess:
    """A running ``openssl`` program started by :func:`s_server`: where it listens and what it printed."""

    command: list[str]
    host: str
    port: int
    process: subprocess.Popen[bytes]
    output: bytes = field(default=b"", repr=False)  # what it printed so far (see read_output)

    def read_output(self, until: re.Pattern[bytes], *, wait: float = 1.0, max_bytes: int = 1 << 16) -> bytes:
        """What the program printed since the last read, read until ``until`` matches it, or for ``wait`` s.

        s_server prints what it made of a connection as the handshake goes (``depth=N <subject>`` and
        ``verify return:1`` for each certificate of the client's chain, or the error that ended it), so a
        caller that has finished its side waits for the line that ends the account; the bytes are
        appended to ``output`` too.  Never blocks past ``wait``; at most
        ``max_bytes`` are read per call (s_server prints a few hundred per connection).
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + wait
        printed = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not until.search(printed) and len(printed) < max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    break
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break  # the program exited
                printed += chunk
        self.output += printed
        return printed

    def write(self, data: bytes) -> None:
        """Type ``data`` on the program's standard input (started with ``stdin=True``): s_server sends a line
        to its client, and ``r`` alone on a line asks it to renegotiate; s_client's ``R`` renegotiates."""
        if self.process.stdin is None:
            raise ValueError("this openssl process was started without stdin=True")
        self.process.stdin.write(data)
        self.process.stdin.flush()


@contextlib.contextmanager
def s_server(
    files: ServerFiles,
    *options: str,
    timeout: float = DEFAULT_TIMEOUT,
    executable: str | None = None,
    stdin: bool = False,
) -> Iterator[OpenSSLProcess]:
    """``openssl s_server`` on 127.0.0.1, on a port the kernel chose, with the certificate in ``files``.

    >>> with s_server(files, "-tls1_2", "-www", "-max_send_frag", "512") as peer:   # doctest: +SKIP
    ...     tls_get(f"https://localhost:{peer.port}/", cafile=files.ca_path)

    ``options`` are passed to the program as they are (``-www`` to answer GET with a status page,
    ``-naccept 1``...).  The port is read from the ``ACCEPT 127.0.0.1:PORT`` line it prints, never
    waiting past ``timeout``; the process is killed and reaped when the block ends.  Raises
    :class:`~handshake_lib.peers.PeerUnavailable` when ``openssl`` is not installed or does not start.
    ``stdin=True`` lets the caller type to it (:meth:`OpenSSLProcess.write`: without ``-www``, ``r`` on a
    line of its own sends HelloRequest to the client).
    """
    program = executable or shutil.which("openssl")
    if program is None:
        raise PeerUnavailable("the openssl program is not installed (it is on PATH nowhere)")
    command = [
        program, "s_server", "-accept", f"{LOOPBACK}:0",
        "-cert", str(files.cert_path), "-key", str(files.key_path), *options,
    ]  # fmt: skip
    with _openssl_process(command, stdin, timeout) as process:
        port, output = _accept_port(process, time.monotonic() + timeout)
        yield OpenSSLProcess(command, LOOPBACK, port, process, output)


@contextlib.contextmanager
def s_client(
    port: int,
    *options: str,
    host: str = LOOPBACK,
    timeout: float = DEFAULT_TIMEOUT,
    executable: str | None = None,
) -> Iterator[OpenSSLProcess]:
    """``openssl s_client -connect host:port`` with ``options``, its standard input open to the caller.

    >>> with s_client(server.port, "-tls1_2", "-CAfile", ca) as peer:   # doctest: +SKIP
    ...     peer.write(b"R\n")                         # renegotiate (RFC 5746)
    ...     peer.read_output(re.compile(rb"RENEGOTIATING"))

    What it prints (stdout and stderr together) comes through :meth:`OpenSSLProcess.read_output`, never
    waiting past its ``wait``; the process is killed and reaped when the block ends.  Raises
    :class:`~handshake_lib.peers.PeerUnavailable` when ``openssl`` is not installed.
    """
    program = executable or shutil.which("openssl")
    if program is None:
        raise PeerUnavailable("the openssl program is not installed (it is on PATH nowhere)")
    command = [program, "s_client", "-connect", f"{host}:{port}", *options]
    with _openssl_process(command, True, timeout) as process:
        yield OpenSSLProcess(command, host, port, process)


@contextlib.contextmanager
def _openssl_process(command: list[str], stdin: bool, timeout: float) -> Iterator[subprocess.Popen[bytes]]:
    """The program running, killed and reaped (pipes closed) when the block ends, however it ends."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout)
        for pipe in (process.stdout, process.stdin):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


_ACCEPT_LINE = re.compile(rb"^ACCEPT 127\.0\.0\.1:(\d+)\r?\n", re.MULTILINE)


def _accept_port(process: subprocess.Popen[bytes], deadline: float) -> tuple[int, bytes]:
    """The port in s_server's "ACCEPT 127.0.0.1:PORT" line, read without ever blocking past ``deadline``."""
    assert process.stdout is not None
    output = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0 and selector.select(remaining):
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break  # s_server exited
            output += chunk
            if match := _ACCEPT_LINE.search(output):
                return int(match.group(1)), output
    raise PeerUnavailable(
        f"openssl s_server did not say where it listens (exit status {process.poll()}): {output[-2000:]!r}"
    )
