"""The one module that touches sockets.

Protocol cores in this library are sans-I/O: they take bytes and hand back events and bytes to send.
This module supplies the rest (:class:`SocketDriver` runs a core over a socket, :func:`run_connection`
until an event), with the course's safety rules built in:

* servers bind to loopback (127.0.0.1 or ::1) on a free port chosen by the kernel, and stop when their
  ``with`` block ends;
* every wait has a deadline, and running past it raises :class:`~handshake_lib.errors.ConnectionTimeout`;
* ``TCP_NODELAY`` is set on both ends: without it a handshake stalls about 40 ms on delayed ACKs
  (Nagle), which would hide every real cost from a learner and make widgets feel slow.

It also starts the real peers the lessons talk to: an OpenSSL server through Python's ``ssl``
(:class:`SSLServer`), serving a small HTML page, and :func:`openssl_server`, the same with fresh
keys, a trusted CA file and OpenSSL's key log made for it and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from .errors import ConnectionTimeout, HandshakeError

if TYPE_CHECKING:  # only for annotations: importing them at run time would make net pull in x509 and tls
    from .pki.builder import ServerFiles
    from .tls.keylog import KeyLog

DEFAULT_TIMEOUT = 5.0
LOOPBACK = "127.0.0.1"


class SansIOConnection(Protocol):
    """What :class:`SocketDriver` and :func:`run_connection` need from a protocol core (h11's shape)."""

    def receive_data(self, data: bytes) -> list[object]:
        """Feed bytes from the peer (``b""`` means the peer closed); return the events they caused."""
        ...

    def data_to_send(self) -> bytes:
        """Bytes the core wants sent, removed from its outgoing buffer."""
        ...


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listen_loopback(family: socket.AddressFamily = socket.AF_INET, backlog: int = 16) -> socket.socket:
    """A listening socket on loopback, on a port the kernel picks."""
    host = "::1" if family == socket.AF_INET6 else LOOPBACK
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def connect(host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    """A connected TCP socket with ``TCP_NODELAY`` and a timeout on every operation."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as error:
        raise ConnectionTimeout(f"connecting to {host}:{port} took longer than {timeout} s") from error
    return _nodelay(sock)


# (seconds since the connection started, direction, transcript index): when a record crossed the wire.
Timing = tuple[float, str, int]


class SocketDriver:
    """Runs one sans-I/O core over one connected socket, with deadlines: the only loop that does.

    :meth:`receive` writes what the core queued, waits (until a deadline) for the peer's bytes, feeds
    them in, and writes the core's answer.  When the core raises a
    :class:`~handshake_lib.errors.HandshakeError` (a bad record, a bad certificate...), the fatal alert it
    queued is written before the error reaches the caller, so the peer learns why too.  A reset counts as
    a close: the core sees ``b""`` and decides what that means; ``peer_closed`` says it happened.

    Timings.  A core that keeps a ``transcript`` (entries with a ``direction``) and names its
    ``incoming_direction`` gets each entry stamped once in ``timings``: a record received with the moment
    its bytes came out of ``recv``, a record sent with the moment its bytes went into ``sendall`` (the
    core builds its answer while handling the peer's flight, but the answer leaves only after that work,
    so a sequence diagram drawn from these times shows where the time really goes).
    """

    def __init__(self, connection: SansIOConnection, sock: socket.socket, started: float | None = None) -> None:
        self.connection = connection
        self.sock = sock
        self.started = time.perf_counter() if started is None else started
        self.timings: list[Timing] = []
        self.peer_closed = False
        self._transcript: list[Any] | None = getattr(connection, "transcript", None)
        self._incoming: str | None = getattr(connection, "incoming_direction", None)
        self._seen = 0  # transcript entries already sorted into stamped or waiting
        self._unsent: list[int] = []  # indices of outgoing entries whose bytes have not been written yet

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def _sort_new_entries(self, received_at: float | None) -> None:
        """Stamp new incoming entries with ``received_at``; queue new outgoing ones until they are sent."""
        transcript = self._transcript
        if transcript is None:
            return
        for index in range(self._seen, len(transcript)):
            direction = transcript[index].direction
            if direction == self._incoming and received_at is not None:
                self.timings.append((received_at, direction, index))
            else:
                self._unsent.append(index)
        self._seen = len(transcript)

    def _stamp_sent(self) -> None:
        if self._transcript is None or not self._unsent:
            return
        sent_at = self._now()
        self.timings.extend((sent_at, self._transcript[index].direction, index) for index in self._unsent)
        self._unsent.clear()

    def flush(self) -> None:
        """Write everything the core has queued."""
        self._sort_new_entries(None)
        data = self.connection.data_to_send()
        if data:
            self.sock.sendall(data)
        self._stamp_sent()

    def flush_quietly(self) -> None:
        """Send a queued alert after an error; the peer may already be gone, which is fine."""
        with contextlib.suppress(OSError):
            self.sock.settimeout(0.5)
            self.flush()

    def receive(self, deadline: float) -> list[Any]:
        """Wait (until ``deadline``, a time.monotonic() value) for bytes; feed them; send any answer."""
        self.flush()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectionTimeout("the peer did not answer in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError as error:
            raise ConnectionTimeout(f"the peer sent nothing within {remaining:.1f} s") from error
        except ConnectionResetError:
            data = b""  # a reset is a close, as far as the protocol can tell
        if not data:
            self.peer_closed = True
        received_at = self._now()
        try:
            events = self.connection.receive_data(data)
        except HandshakeError:
            self._sort_new_entries(received_at)
            self.flush_quietly()
            raise
        self._sort_new_entries(received_at)
        self.flush()
        return events


def run_connection(
    connection: SansIOConnection,
    sock: socket.socket,
    *,
    until: Callable[[object], bool],
    timeout: float = DEFAULT_TIMEOUT,
    on_event: Callable[[object], None] | None = None,
) -> list[object]:
    """Drive a sans-I/O ``connection`` over ``sock`` until an event satisfies ``until``.

    Returns every event seen.  The whole exchange, not each read, must finish within ``timeout``
    (:class:`~handshake_lib.errors.ConnectionTimeout` otherwise).  If the peer closes (or resets) first,
    the core sees ``b""`` and decides what that means (usually an error).  When the core raises, the alert
    it queued is sent first (see :class:`SocketDriver`).
    """
    driver = SocketDriver(connection, sock)
    deadline = time.monotonic() + timeout
    events: list[object] = []
    while True:
        try:
            new_events = driver.receive(deadline)
        except ConnectionTimeout as error:
            raise ConnectionTimeout(f"no result within {timeout} s: {error}") from error
        for event in new_events:
            events.append(event)
            if on_event is not None:
                on_event(event)
            if until(event):
                driver.flush()  # whatever the callbacks queued goes out before we return
                return events
        if driver.peer_closed:
            # The core has been told of the close and raised nothing: there is nothing left to wait for.
            return events


# -- a real OpenSSL server, through Python's ssl --------------------------------------------------------
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
class ServerRecord:
    """What the server saw of one connection: the negotiated parameters, or the error that ended it."""

    version: str | None = None
    cipher: str | None = None
    error: BaseException | None = None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address (127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str = LOOPBACK, port: int = 0, *, allow_public: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the kernel picks a free one).

    A host that is not loopback is refused unless ``allow_public``: a teaching server must not end
    up on a network by accident.
    """
    if not is_loopback(host) and not allow_public:
        raise ValueError(f"refusing to listen on {host!r}, which is not loopback (pass allow_public=True)")
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0 picks a free one)")
    if host == LOOPBACK and port == 0:
        return listen_loopback()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        if port:  # a fixed port: be able to restart at once while old connections sit in TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(16)
    except BaseException:
        listener.close()
        raise
    return listener


class LoopbackServer:
    """Accept connections in a background thread for as long as the ``with`` block runs.

    Each connection is handed to :meth:`serve` in a thread of its own, with ``TCP_NODELAY`` and a
    ``timeout`` on every operation.  Leaving the block stops accepting and joins every thread (each
    bounded by the timeout), so nothing outlives the notebook cell or the test that started it.
    After ``__enter__``, ``host`` and ``port`` hold the bound address.
    """

    name = "LoopbackServer"

    def __init__(
        self, *, host: str = LOOPBACK, port: int = 0, allow_public: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        # Refuse a bad address now, in the caller's thread, not later in __enter__.
        if not is_loopback(host) and not allow_public:
            raise ValueError(f"refusing to listen on {host!r}, which is not loopback (pass allow_public=True)")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range (0 picks a free one)")
        self.host = host
        self.port = port
        self.allow_public = allow_public
        self.timeout = timeout
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def serve(self, conn: socket.socket) -> None:
        """Handle one accepted connection (closed by the caller afterwards)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._listener = listen(self.host, self.port, allow_public=self.allow_public)
        self._listener.settimeout(0.1)  # how often the accept loop looks at the stop flag
        self.host, self.port = self._listener.getsockname()[:2]
        accept_thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        self._threads.append(accept_thread)
        accept_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(self.timeout + 1)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve_and_close, args=(raw,), name=f"{self.name}-conn", daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve_and_close(self, raw: socket.socket) -> None:
        with contextlib.closing(_nodelay(raw)):
            raw.settimeout(self.timeout)
            self.serve(raw)


class SSLServer(LoopbackServer):
    """An OpenSSL TLS server on loopback, in a background thread, for as long as the ``with`` block runs.

    >>> with SSLServer(context) as server:          # doctest: +SKIP
    ...     connect(server.host, server.port)

    Each connection's negotiated version and cipher, or the error that ended it, is appended to
    ``connections``, so a lesson or a test can read what OpenSSL saw.
    """

    name = "SSLServer"

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
        self.connections: list[ServerRecord] = []

    def serve(self, conn: socket.socket) -> None:
        record = ServerRecord()
        self.connections.append(record)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                record.version = tls.version()
                cipher = tls.cipher()
                record.cipher = cipher[0] if cipher else None
                self.handler(tls)
        except (OSError, ssl.SSLError) as error:  # the peer's fault, recorded for the test or lesson to read
            record.error = error


def server_context(
    cert_path: Path,
    key_path: Path,
    *,
    ciphers: str | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    keylog_path: Path | None = None,
) -> ssl.SSLContext:
    """An OpenSSL server context.  ``ciphers`` uses OpenSSL's names, e.g. ``"AES128-GCM-SHA256"``.

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
    return context


def wait_for_port(host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until something accepts connections on ``host:port`` (for peers started as processes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise ConnectionTimeout(f"nothing listened on {host}:{port} within {timeout} s") from None
            time.sleep(0.02)


# -- a real OpenSSL server with fresh keys, in one call -------------------------------------------------
@dataclass
class OpenSSLPeer:
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
    server: SSLServer
    files: ServerFiles
    server_name: str = "localhost"

    @property
    def certificate(self) -> Any:  # cryptography.x509.Certificate
        """The server's certificate (made for this run)."""
        return self.files.issued.certificate

    @property
    def private_key(self) -> Any:  # the server's private key (RSA by default)
        return self.files.issued.private_key

    def keylog(self) -> KeyLog:
        """OpenSSL's key log so far (empty before the first handshake)."""
        from .tls.keylog import KeyLog, read_keylog  # here, not at the top: net stays importable without tls

        return read_keylog(self.keylog_path) if self.keylog_path.exists() else KeyLog()

    def master_secret(self, client_random: bytes) -> bytes | None:
        """The master secret OpenSSL logged for the connection that used ``client_random``, if any."""
        return self.keylog().master_secret(client_random)

    @property
    def last_error(self) -> str | None:
        """Why OpenSSL ended its latest connection, in OpenSSL's words; None if it ended well (or none came)."""
        connections = self.server.connections
        if not connections or connections[-1].error is None:
            return None
        return str(connections[-1].error)


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
) -> Iterator[OpenSSLPeer]:
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
            from .pki.builder import CoursePKI  # here: cryptography's x509 is only needed when keys are made

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
        with SSLServer(context, timeout=timeout) as server:
            server_name = hostnames[0]
            yield OpenSSLPeer(
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


# == BEGIN raw ClientHello exchange and long-lived peers (issue 7, helper "hello") ==================
# One block, moved as a whole by the coordinator when net.py becomes a package.  Lessons 02 and 03 send
# bytes no library code has checked (a learner's hello, a wrong length on purpose) and show what a real
# server answered; `send_client_hello` is the socket side of that: the reading is the sans-I/O
# `tls.flight.FirstFlightReader`, driven by `run_connection` (the one loop with deadlines).
# `BackgroundPeer` keeps a peer from a context manager (e.g. `openssl_server`) running across notebook
# cells, and still stops it: on `stop()`, when it is garbage collected, or at interpreter exit.
# `openssl_fetch` is OpenSSL's client (Python `ssl`) fetching one page, with a deadline.
import weakref  # noqa: E402 - imports of this block stay in it, so that it moves as a whole
from typing import Generic, TypeVar  # noqa: E402

if TYPE_CHECKING:
    from .tls.flight import ServerAnswer

_PeerT = TypeVar("_PeerT")


def send_client_hello(
    host: str,
    port: int,
    client_hello: bytes,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_answer_bytes: int | None = None,
    server: SSLServer | None = None,
) -> ServerAnswer:
    """Send ``client_hello`` (a handshake message, header and body) in records, exactly as given; read the answer.

    Reads until the server's ServerHelloDone, an alert, its close, ``max_answer_bytes`` (default
    :data:`~handshake_lib.tls.flight.MAX_ANSWER_BYTES`) or ``timeout`` for the whole exchange; a
    timeout or a failed read is reported in ``answer.problem``, never raised.  Connecting can raise
    :class:`OSError` (:class:`~handshake_lib.errors.ConnectionTimeout` when it takes too long).  When
    ``server`` is the :class:`SSLServer` listening there, and it refused the hello, the reason OpenSSL
    logged on its side goes into ``answer.openssl_error``.
    """
    from .tls.flight import MAX_ANSWER_BYTES, FirstFlightReader, handshake_records  # net imports tls lazily

    deadline = time.monotonic() + timeout
    records = handshake_records(bytes(client_hello))
    reader = FirstFlightReader(records, max_bytes=MAX_ANSWER_BYTES if max_answer_bytes is None else max_answer_bytes)
    seen = len(server.connections) if server is not None else 0
    with connect(host, port, timeout=timeout) as sock:
        sock.sendall(records)
        # Nothing more will come from us: say so, so that a hello whose lengths promise more bytes than
        # were sent ends at once (the server sees the end of the stream) instead of at the timeout.  A
        # good hello is unaffected: the server answers it before it reads again.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        try:
            run_connection(reader, sock, until=lambda _answer: True, timeout=max(deadline - time.monotonic(), 0.001))
        except ConnectionTimeout:
            reader.answer.problem = "no complete answer before the timeout"
        except OSError as error:  # a reset right after an alert is common; anything else is reported
            if not reader.answer.received:
                reader.answer.problem = f"the connection failed: {error}"
    answer = reader.answer
    if server is not None and not answer.complete:
        answer.openssl_error = ssl_server_error(server, seen, wait=min(0.5, max(deadline - time.monotonic(), 0)))
    return answer


def ssl_server_error(server: SSLServer, index: int, *, wait: float = 0.5) -> str:
    """Why ``server`` ended its connection number ``index``, in OpenSSL's words ("" if it did not say).

    The server thread records the error just after sending its alert, so this waits up to ``wait`` s.
    """
    deadline = time.monotonic() + wait
    while True:
        if len(server.connections) > index and server.connections[index].error is not None:
            error = server.connections[index].error
            return str(getattr(error, "reason", None) or error)
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.005)


class BackgroundPeer(Generic[_PeerT]):
    """A peer from a context manager, kept running across notebook cells, yet always stopped.

    ``start`` makes the context manager (for example ``lambda: openssl_server("AES128-SHA")``); it is
    entered on the first :meth:`get`, and left by :meth:`stop`, when this object is garbage collected,
    or at interpreter exit (a kernel restart), whichever comes first.  :meth:`get` after :meth:`stop`
    starts a fresh one.  A widget holds one of these instead of closing itself to stop its server.
    """

    def __init__(self, start: Callable[[], contextlib.AbstractContextManager[_PeerT]]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._peer: _PeerT | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        return self._peer is not None

    def get(self) -> _PeerT:
        """The running peer (started now if it is not running)."""
        with self._lock:
            if self._peer is None:
                stack = contextlib.ExitStack()
                self._peer = stack.enter_context(self._start())
                # weakref.finalize runs at garbage collection or, at the latest, at interpreter exit.
                self._finalizer = weakref.finalize(self, stack.close)
            return self._peer

    def stop(self) -> None:
        """Stop the peer (idempotent)."""
        with self._lock:
            finalizer, self._finalizer, self._peer = self._finalizer, None, None
        if finalizer is not None:
            finalizer()


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


# == END raw ClientHello exchange and long-lived peers (helper "hello") =============================
