"""Our TLS 1.2 client and server cores, run over real sockets.

Theory of operation
-------------------
:class:`~handshake_lib.tls.client.TLSClient` and :class:`~handshake_lib.tls.server.TLSServer` never
touch a socket.  :class:`~handshake_lib.net.SocketDriver` runs a core over one: write what the core
queued, wait (with a deadline) for the peer's bytes, feed them in.  Every wait has a timeout and
running past it raises :class:`~handshake_lib.errors.ConnectionTimeout`; when the core raises (a bad
record, a bad certificate...), the fatal alert it queued is sent before the error reaches the caller,
so the peer learns why too.  This module says what to wait for: a handshake, a page, a request.

* :func:`open_tls` connects, runs the handshake and returns a :class:`TLSStream` (``send``/``recv``).
* :func:`tls_get` fetches one HTTPS page and returns it with the handshake, the record transcript and
  when each record was sent or received (:class:`TLSResponse`), which is what the lessons display.
  The HTTP is h11's (sans-I/O, like our cores); one deadline covers the whole exchange and the body
  has a size limit (docs/limits.md).
* :class:`TLSPageServer` serves a small page with our server core on loopback, in a thread, like
  :class:`handshake_lib.peers.openssl.PythonSSLServer` does with OpenSSL, and records each connection's outcome.

Timings.  The driver stamps each transcript entry once: a record we received with the moment its bytes
came out of ``recv``, a record we sent with the moment its bytes went into ``sendall``.  The core builds
its answer (ClientKeyExchange, ChangeCipherSpec, Finished) while handling the server's flight, but the
answer leaves only after that work, RSA encryption included, so a sequence diagram drawn from these
times shows where the time really goes.

Failures.  When :func:`open_tls` or :func:`tls_get` fails once the connection is up, the exception is a
library error (a ProtocolError we raised, the peer's PeerAlert, a ConnectionTimeout; a network error
becomes :class:`~handshake_lib.errors.ConnectionLost`) whose ``exchange``
(:class:`~handshake_lib.errors.Exchange`: the records exchanged so far, the fatal alert included, and
their timings) lets a trace show the handshake up to the alert that ended it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import h11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from .. import net
from ..errors import (
    ConnectionLost,
    ConnectionTimeout,
    Exchange,
    HandshakeError,
    HTTPResponseError,
    ProtocolError,
    ResponseTooLarge,
    ResponseTruncated,
)
from ..tls.client import TLSClient
from ..tls.connection import (
    ApplicationData,
    ConnectionClosed,
    HandshakeComplete,
    TLSConnection,
    TranscriptEntry,
)
from ..tls.flight import MAX_ANSWER_BYTES, FirstFlightReader, ServerAnswer, handshake_records
from ..tls.keylog import append_line
from ..tls.server import TLSServer

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HTTPResponseError",
    "MAX_HEAD_BYTES",
    "TLSResponse",
    "TLSStream",
    "open_tls",
    "tls_get",
    "TLSPageServer",
    "ServedConnection",
    "PAGE",
    "send_client_hello",
]

PAGE = (
    b"<!doctype html><html><head><title>Handshakes</title></head>"
    b"<body><h1>Hello from the Handshakes TLS server</h1>"
    b"<p>This page came over a TLS 1.2 connection run by the course's own server code.</p></body></html>"
)

Timing = net.Timing  # (seconds since the connection started, direction, transcript index)

# tls_get's bounds on what a server can make it hold (docs/limits.md, "Client").
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # a course page is a few KB; a larger body is refused, not buffered
MAX_HEAD_BYTES = 64 * 1024  # status line and headers; curl allows about 100 KB, h11's own default is 16 KiB


def _with_exchange(
    error: HandshakeError | OSError, connection: TLSConnection, driver: net.SocketDriver | None
) -> HandshakeError:
    """The error to raise, carrying the records exchanged so far (for ``--trace`` and the notebooks).

    The one place an ``exchange`` is set: a library error keeps the first one it was given (the
    innermost runner saw the most), a network error becomes ConnectionLost (OSError is left alone).
    """
    exchange = Exchange(connection.transcript, driver.timings if driver is not None else [])
    if isinstance(error, HandshakeError):
        if error.exchange is None:
            error.exchange = exchange
        return error
    lost = ConnectionLost(error.errno, error.strerror or str(error))
    lost.exchange = exchange
    return lost


# -- client -----------------------------------------------------------------------------------------
class TLSStream:
    """A connected TLS client: ``send`` and ``recv`` application data; a context manager."""

    def __init__(self, client: TLSClient, sock: socket.socket, driver: net.SocketDriver, timeout: float) -> None:
        self.client = client
        self.sock = sock
        self.timeout = timeout
        self._driver = driver
        self._received: deque[bytes] = deque()
        self._peer_closed = False
        assert client.handshake is not None
        self.handshake: HandshakeComplete = client.handshake

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self.client.transcript

    @property
    def timings(self) -> list[Timing]:
        return self._driver.timings

    def send(self, data: bytes, *, deadline: float | None = None) -> None:
        """Send ``data`` as application data; with a ``deadline`` (a time.monotonic() value), writing must
        end by then (:class:`~handshake_lib.errors.ConnectionTimeout`), else each write may take ``timeout``."""
        self.client.send_application_data(data)
        if deadline is None:
            self._driver.flush()
            return
        self.sock.settimeout(_remaining(deadline))
        try:
            self._driver.flush()
        except TimeoutError as error:  # a peer that reads nothing: our bytes cannot leave
            raise ConnectionTimeout("the peer did not read what we sent in time") from error

    def send_altered(self, data: bytes, alter: Callable[[bytes], bytes]) -> bytes:
        """Send ``data`` as application data, its records changed by ``alter`` on the way out.

        For the lessons that damage a record on purpose (what does a real peer do with it?): our core
        protects ``data`` as usual and keeps it in the transcript, then ``alter`` gets the wire bytes
        and what it returns is written instead.  Returns the bytes written.
        """
        self._driver.flush()  # anything already queued leaves unaltered
        self.client.send_application_data(data)
        wire = alter(self.client.data_to_send())
        self.sock.sendall(wire)
        self._driver.flush()  # stamps the new transcript entry with the time it left
        return wire

    def recv(self, *, deadline: float | None = None) -> bytes:
        """The next application data; ``b""`` once the server has closed.

        Waits at most ``timeout`` from this call, or until ``deadline`` (a time.monotonic() value) when
        one is given: a caller that must finish a whole exchange in time (:func:`tls_get`) passes the
        same deadline to every call, so a peer that sends one byte at a time cannot stretch it.
        Running past it raises :class:`~handshake_lib.errors.ConnectionTimeout`.
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while not self._received and not self._peer_closed:
            for event in self._driver.receive(deadline):
                if isinstance(event, ApplicationData):
                    self._received.append(event.data)
                elif isinstance(event, ConnectionClosed):
                    self._peer_closed = True
        return self._received.popleft() if self._received else b""

    def close(self) -> None:
        """Send close_notify (if the connection is still healthy) and close the socket."""
        with contextlib.suppress(HandshakeError):
            self.client.close()
        self._driver.flush_quietly()
        self.sock.close()

    def __enter__(self) -> TLSStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _remaining(deadline: float) -> float:
    """Seconds left until ``deadline``; ConnectionTimeout when none are."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConnectionTimeout("the deadline passed")
    return remaining


def _keylog_writer(keylog_path: str | Path | None) -> Callable[[str], None] | None:
    if keylog_path is None:
        return None
    return lambda line: append_line(keylog_path, line)


def open_tls(
    host: str,
    port: int,
    server_name: str | None = None,
    *,
    timeout: float = net.DEFAULT_TIMEOUT,
    deadline: float | None = None,
    keylog_path: str | Path | None = None,
    **client_options: Any,
) -> TLSStream:
    """Connect to ``host:port``, run our TLS 1.2 client's handshake, return the open stream.

    ``server_name`` (default: ``host``) is sent in SNI and checked against the certificate;
    ``client_options`` go to :class:`~handshake_lib.tls.client.TLSClient` (``cafile``, ``verify``,
    ``cipher_suites``, ``stages=Stages(prf=...)``...).  Connecting and the whole handshake must finish
    within ``timeout`` seconds (finite, > 0, at most a day: ValueError otherwise), or by ``deadline`` (a
    time.monotonic() value) when one is given; the stream's ``recv`` then waits ``timeout`` per call.
    """
    timeout = net.check_timeout(timeout)
    if keylog_path is not None:
        client_options.setdefault("keylog", _keylog_writer(keylog_path))
    client = TLSClient(server_name or host, **client_options)
    started = time.perf_counter()
    if deadline is None:
        deadline = time.monotonic() + timeout
    try:
        sock = net.connect(host, port, timeout=min(_remaining(deadline), timeout))
    except HandshakeError as error:  # a connect timeout; a refused connection stays the OSError it is
        _with_exchange(error, client, None)
        raise
    driver = net.SocketDriver(client, sock, started)
    try:
        client.start()
        driver.flush()
        while client.handshake is None:
            driver.receive(deadline)
    except BaseException as error:
        sock.close()
        if isinstance(error, (HandshakeError, OSError)):
            failure = _with_exchange(error, client, driver)
            if failure is not error:
                raise failure from error
        raise
    return TLSStream(client, sock, driver, timeout)


@dataclass
class TLSResponse:
    """One HTTPS exchange with everything the lessons show about it.

    ``headers``: name (lower-case) -> value; a header the server repeated appears once, its values
    joined by ", " as RFC 9110 section 5.3 allows.  ``header_fields`` keeps every field line as it came,
    in order (what to read for ``set-cookie``, the one header that cannot be joined that way).
    """

    status: int
    headers: dict[str, str]
    body: bytes
    handshake: HandshakeComplete
    transcript: list[TranscriptEntry]
    timings: list[Timing] = field(default_factory=list)
    header_fields: list[tuple[str, str]] = field(default_factory=list)


def tls_get(
    url: str,
    *,
    cafile: str | Path | None = None,
    verify: bool = True,
    cipher_suites: Sequence[int] | None = None,
    keylog_path: str | Path | None = None,
    timeout: float = net.DEFAULT_TIMEOUT,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    **client_options: Any,
) -> TLSResponse:
    """GET ``https://host[:port]/path`` with our TLS 1.2 client and read the response with h11.

    Limits (docs/limits.md): ``timeout`` seconds (finite, > 0, at most a day) is one deadline for the
    whole exchange (connecting, the handshake, the request and every read of the response), so a server
    that drips its page cannot stretch it (:class:`~handshake_lib.errors.ConnectionTimeout`).  A body
    longer than ``max_body_bytes`` (default 16 MiB), or a Content-Length announcing one, raises
    :class:`~handshake_lib.errors.ResponseTooLarge`; the status line and headers may take 64 KiB.  A body
    that ends before its Content-Length or its last chunk raises
    :class:`~handshake_lib.errors.ResponseTruncated`; anything else h11 cannot read as an HTTP/1.x
    response raises :class:`~handshake_lib.errors.HTTPResponseError`.  Bodies may have a Content-Length,
    be chunked, or end with the connection (HTTP/1.0 style).

    A failure carries ``exchange`` (:class:`~handshake_lib.errors.Exchange`: the transcript and timings so
    far); a network error after connecting is a :class:`~handshake_lib.errors.ConnectionLost` (an OSError).
    """
    timeout = net.check_timeout(timeout)
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must be a whole number of bytes >= 0, not {max_body_bytes!r}")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"expected an https:// URL, not {url!r}")
    host, port = parts.hostname, parts.port or 443
    reader = _ResponseReader(max_body_bytes)
    request = reader.request(parts.path, parts.query, host, parts.port)
    if cipher_suites is not None:
        client_options["cipher_suites"] = cipher_suites
    deadline = time.monotonic() + timeout  # one deadline, computed once, for everything below
    try:
        stream = open_tls(
            host, port, host, timeout=timeout, deadline=deadline, cafile=cafile, verify=verify,
            keylog_path=keylog_path, **client_options,
        )  # fmt: skip
    except ConnectionTimeout as error:
        raise _timed_out(error, f"{host}:{port}", timeout, "connecting or in the handshake") from error
    try:
        with stream:
            stream.send(request, deadline=deadline)
            reader.read(stream, deadline)
    except ConnectionTimeout as error:
        failure = _timed_out(error, f"{host}:{port}", timeout, reader.progress())
        raise _with_exchange(failure, stream.client, stream._driver) from error
    except (HandshakeError, OSError) as error:
        failure = _with_exchange(error, stream.client, stream._driver)
        if failure is not error:
            raise failure from error
        raise
    response = reader.response
    assert response is not None  # read() returns only after the whole response
    fields = [(name.decode("ascii"), value.decode("iso-8859-1")) for name, value in response.headers]
    headers: dict[str, str] = {}
    for name, value in fields:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return TLSResponse(
        response.status_code, headers, bytes(reader.body), stream.handshake, stream.transcript, stream.timings,
        fields,
    )  # fmt: skip


def _timed_out(error: ConnectionTimeout, peer: str, timeout: float, stage: str) -> ConnectionTimeout:
    """The timeout tls_get raises: whose, which deadline, how far the exchange got (and what it exchanged)."""
    failure = ConnectionTimeout(f"{peer}: the exchange did not finish within {timeout:g} s ({stage})")
    failure.exchange = error.exchange
    return failure


class _ResponseReader:
    """One GET and its response through an ``h11.Connection(h11.CLIENT)``, its body bounded.

    h11 is sans-I/O, like our cores: it writes the request, and takes the bytes our TLS stream
    received and hands back events (the response head, pieces of the body, its end).  It knows every
    way a body can end (Content-Length, chunked, the close) and refuses what is not HTTP/1.x.
    """

    def __init__(self, max_body_bytes: int) -> None:
        self.http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.max_body_bytes = max_body_bytes
        self.response: h11.Response | None = None
        self.body = bytearray()  # grows in place: appending costs what the new bytes cost, not the whole body
        self.received = 0  # bytes of HTTP received, head included
        self.closed = False

    def request(self, path: str, query: str, host: str, port: int | None) -> bytes:
        """The bytes of ``GET path?query`` for ``host`` (the same bytes the hand-written request had)."""
        # What a browser does with a space or non-ASCII in a URL: percent-encode it (h11 refuses it raw).
        target = quote((path or "/") + (f"?{query}" if query else ""), safe="!#$%&'()*+,/:;=?@[]~")
        host_header = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        if port is not None:
            host_header += f":{port}"
        try:
            return self.http.send(
                h11.Request(method="GET", target=target, headers=[("Host", host_header), ("Connection", "close")])
            ) + self.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as error:
            raise ValueError(f"cannot request {target!r} from {host_header!r}: {error}") from None

    def read(self, stream: TLSStream, deadline: float) -> None:
        """Read the response from ``stream`` until its end, by ``deadline``; HTTPResponseError if it is bad."""
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as error:
                raise self._refused(error) from error
            if event is h11.NEED_DATA:
                data = stream.recv(deadline=deadline)
                self.received += len(data)
                self.closed = not data
                self.http.receive_data(data)  # b"" tells h11 the server closed
            elif isinstance(event, h11.Response):
                self.response = event
                self._check_declared_length()
            elif isinstance(event, h11.Data):
                if len(self.body) + len(event.data) > self.max_body_bytes:
                    raise ResponseTooLarge(self.max_body_bytes)
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return
            elif isinstance(event, h11.ConnectionClosed):  # h11 raises first when a response is cut; in case
                raise HTTPResponseError("the server closed before a complete response")
            # h11.InformationalResponse (100 Continue, 103 Early Hints): the real response follows.

    def progress(self) -> str:
        """How far the response got, for a timeout's message."""
        if self.response is None:
            return "waiting for the response head"
        received = len(self.body)
        return f"after {received} byte{'' if received == 1 else 's'} of the body"

    def _content_length(self) -> int | None:
        """The Content-Length that frames the body, or None (chunked, or delimited by the close)."""
        assert self.response is not None
        fields = dict(self.response.headers)  # h11 has checked every copy of Content-Length says the same
        if b"transfer-encoding" in fields:  # chunked wins over a Content-Length (RFC 9112 section 6.3)
            return None
        length = fields.get(b"content-length")
        return int(length) if length is not None else None  # h11 has checked that it is digits

    def _check_declared_length(self) -> None:
        declared = self._content_length()
        if declared is not None and declared > self.max_body_bytes:
            raise ResponseTooLarge(self.max_body_bytes, declared)

    def _refused(self, error: h11.RemoteProtocolError) -> HTTPResponseError:
        if self.closed and self.response is None:
            return HTTPResponseError(f"the server closed before a complete response head ({self.received} bytes)")
        if self.closed:
            return ResponseTruncated(len(self.body), self._content_length())
        if self.response is None and self.received > MAX_HEAD_BYTES:
            return HTTPResponseError(f"not an HTTP/1.x response we can read: a head longer than {MAX_HEAD_BYTES} bytes")
        return HTTPResponseError(f"not an HTTP/1.x response we can read: {error}")


# -- server -----------------------------------------------------------------------------------------
@dataclass
class ServedConnection:
    """What :class:`TLSPageServer` saw of one connection: the handshake, the request, or the error."""

    handshake: HandshakeComplete | None = None
    request: bytes = b""
    error: BaseException | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)


class TLSPageServer(net.LoopbackServer):
    """Our TLS 1.2 server core serving ``page`` over HTTP/1.1 on loopback, in a thread.

    >>> with TLSPageServer(chain, key) as server:      # doctest: +SKIP
    ...     tls_get(f"https://localhost:{server.port}/", cafile=ca)

    ``host`` and ``port`` say where to listen: loopback and a free port (``port=0``) by default, which
    is what notebooks and tests want; after ``__enter__``, ``host`` and ``port`` hold the bound address.
    A host that is not a loopback address is refused (ValueError) unless ``allow_public=True``: a
    teaching server must not end up on a network by accident.  ``server_options`` go to
    :class:`~handshake_lib.tls.server.TLSServer` for every connection (``cipher_suites``,
    ``extended_master_secret``, ``keylog``...); ``keylog_path`` appends NSS key log lines to a file.
    Each connection's outcome is appended to ``connections``.
    """

    def __init__(
        self,
        certificate_chain: Sequence[bytes | x509.Certificate],
        private_key: rsa.RSAPrivateKey,
        *,
        page: bytes = PAGE,
        timeout: float = net.DEFAULT_TIMEOUT,
        keylog_path: str | Path | None = None,
        host: str = net.LOOPBACK,
        port: int = 0,
        allow_public: bool = False,
        **server_options: Any,
    ) -> None:
        self.certificate_chain = [
            c.public_bytes(Encoding.DER) if isinstance(c, x509.Certificate) else bytes(c) for c in certificate_chain
        ]
        super().__init__(host=host, port=port, allow_public=allow_public, timeout=timeout)
        self.private_key = private_key
        self.page = page
        if keylog_path is not None:
            server_options.setdefault("keylog", _keylog_writer(keylog_path))
        self.server_options = server_options
        # Fail now, in the caller's thread, if the options are wrong (not in a worker later).
        TLSServer(self.certificate_chain, private_key, **server_options)
        self.connections: list[ServedConnection] = []

    def _response(self) -> bytes:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(self.page)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + self.page

    name = "TLSPageServer"

    def serve(self, raw: socket.socket) -> None:
        record = ServedConnection()
        self.connections.append(record)
        server = TLSServer(self.certificate_chain, self.private_key, **self.server_options)
        record.transcript = server.transcript
        driver = net.SocketDriver(server, raw)
        deadline = time.monotonic() + self.timeout
        try:
            while b"\r\n\r\n" not in record.request:
                for event in driver.receive(deadline):
                    if isinstance(event, HandshakeComplete):
                        record.handshake = event
                    elif isinstance(event, ApplicationData):
                        record.request += event.data
                    elif isinstance(event, ConnectionClosed):
                        return
                if len(record.request) > 65536:
                    return
            server.send_application_data(self._response())
            server.close()
            driver.flush()
            # Wait briefly for the client's close_notify, so that it reads the page before our FIN.
            with contextlib.suppress(HandshakeError, OSError):
                driver.receive(min(deadline, time.monotonic() + 1.0))
        except (HandshakeError, ProtocolError, OSError) as error:
            record.error = error


# -- raw ClientHello bytes to a real server ---------------------------------------------------------
def send_client_hello(
    host: str,
    port: int,
    client_hello: bytes,
    *,
    timeout: float = net.DEFAULT_TIMEOUT,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> ServerAnswer:
    """Send ``client_hello`` (a handshake message, header and body) in records, exactly as given; read the answer.

    Lessons 02 and 03 send bytes no library code has checked (a learner's hello, a wrong length on
    purpose) and show what a real server answered.  The reading is the sans-I/O
    :class:`~handshake_lib.tls.flight.FirstFlightReader`, driven by :func:`~handshake_lib.net.run_connection`
    (the one loop with deadlines).  Reads until the server's ServerHelloDone, an alert, its close,
    ``max_answer_bytes`` or ``timeout`` for the whole exchange; a timeout or a failed read is reported in
    ``answer.problem``, never raised.  Connecting can raise :class:`OSError`
    (:class:`~handshake_lib.errors.ConnectionTimeout` when it takes too long).
    """
    deadline = time.monotonic() + timeout
    records = handshake_records(bytes(client_hello))
    reader = FirstFlightReader(records, max_bytes=max_answer_bytes)
    with net.connect(host, port, timeout=timeout) as sock:
        sock.sendall(records)
        # Nothing more will come from us: say so, so that a hello whose lengths promise more bytes than
        # were sent ends at once (the server sees the end of the stream) instead of at the timeout.  A
        # good hello is unaffected: the server answers it before it reads again.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        try:
            net.run_connection(
                reader, sock, until=lambda _answer: True, timeout=max(deadline - time.monotonic(), 0.001)
            )
        except ConnectionTimeout:
            reader.answer.problem = "no complete answer before the timeout"
        except OSError as error:  # a reset right after an alert is common; anything else is reported
            if not reader.answer.received:
                reader.answer.problem = f"the connection failed: {error}"
    return reader.answer
