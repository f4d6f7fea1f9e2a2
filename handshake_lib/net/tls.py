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
* :class:`TLSPageServer` serves a small page with our server core on loopback, like
  :class:`handshake_lib.peers.openssl.PythonSSLServer` does with OpenSSL, and records each connection's
  outcome.  All its connections run in one thread, a ``selectors`` event loop (the cores are sans-I/O,
  and so is ``h11``, which reads the requests): a thousand slow clients cost memory, not threads.

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

Resumption.  ``session_store=`` (a :class:`~handshake_lib.tls.sessions.ClientSessionStore`) makes
:func:`open_tls` and :func:`tls_get` offer the session the store holds for ``server_name:port`` (as curl
and browsers key their caches) and keep whatever session the handshake ends with, so fetching N times
with one store resumes N-1 times (``session=`` offers one session explicitly).  ``session_ticket=True``
asks for a ticket as well.  ``TLSStream.resumed_by`` / ``TLSResponse.resumed_by`` say how a handshake
resumed (``"ticket"``, ``"session ID"``) or None for a full one; the key log gets one line per handshake,
resumed ones included (the core writes it when the master secret is installed).  :class:`TLSPageServer`
resumes by default: one bounded session-ID cache and one set of rotating ticket keys shared by all its
connections, all used from its one thread (docs/limits.md).

Recording.  ``record_to=PATH`` (:func:`open_tls`, :func:`tls_get`) keeps the raw bytes of the connection
both ways, in the order they crossed the socket, and writes them when the socket closes as a classic
pcap (:func:`~handshake_lib.tcp.streams.write_pcap`, with the connection's real addresses and ports):
what ``tcpdump`` would have seen, without needing root, ready for ``handshakes tls decode`` or Wireshark.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import h11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from .. import net
from ..errors import (
    ConnectionLost,
    ConnectionStateError,
    ConnectionTimeout,
    Exchange,
    HandshakeError,
    HTTPResponseError,
    InternalError,
    ResponseTooLarge,
    ResponseTruncated,
)
from ..tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT, write_pcap
from ..tls.client import TLSClient
from ..tls.client13 import DEFAULT_KEY_SHARES13, TLS13Client
from ..tls.connection import (
    DEFAULT_CLIENT_SUITES,
    ApplicationData,
    ConnectionClosed,
    HandshakeComplete,
    RenegotiationRefused,
    TLSConnection,
    TranscriptEntry,
)
from ..tls.connection13 import TicketReceived
from ..tls.constants import ProtocolVersion
from ..tls.flight import MAX_ANSWER_BYTES, FirstFlightReader, ServerAnswer, handshake_records
from ..tls.key_exchange import GROUPS
from ..tls.keylog import append_line
from ..tls.messages import ClientHello
from ..tls.negotiate_version import NegotiatingClient, NegotiatingServer
from ..tls.negotiation import DEFAULT_GROUPS
from ..tls.server import TLSServer
from ..tls.server13 import TLS13Server
from ..tls.sessions import ClientSessionStore, Session, SessionCache
from ..tls.stages import Stages
from ..tls.tickets import TicketKeys
from ..tls.tickets13 import ReplayWindow, ResumptionTicket

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HTTPResponseError",
    "MAX_HEAD_BYTES",
    "TLSResponse",
    "TLSStream",
    "open_tls",
    "session_key",
    "tls_get",
    "TLSPageServer",
    "ServedConnection",
    "PAGE",
    "send_client_hello",
    "TLSVersionChoice",
    "TLS_VERSION_CHOICES",
]

# Which TLS our client speaks: "1.2" (TLSClient, lessons 02-09), "1.3" (TLS13Client), or "auto": one ClientHello
# offering both, the server's choice wins (tls/negotiate_version.py), as browsers and curl connect.
TLSVersionChoice = Literal["1.2", "1.3", "auto"]
TLS_VERSION_CHOICES: tuple[str, ...] = ("1.2", "1.3", "auto")

PAGE = (
    b"<!doctype html><html><head><title>Handshakes</title></head>"
    b"<body><h1>Hello from the Handshakes TLS server</h1>"
    b"<p>This page came over a TLS connection run by the course's own server code.</p></body></html>"
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

    def __init__(
        self,
        client: TLSClient | TLS13Client | NegotiatingClient,
        sock: socket.socket,
        driver: net.SocketDriver,
        timeout: float,
        on_ticket: Callable[[ResumptionTicket], None] | None = None,
    ) -> None:
        self.client: Any = client
        self._on_ticket = on_ticket
        self.sock = sock
        self.timeout = timeout
        self._driver = driver
        self._received: deque[bytes] = deque()
        self._peer_closed = False
        assert client.handshake is not None
        self.handshake: HandshakeComplete = client.handshake

    @property
    def resumed_by(self) -> str | None:
        """How the connection's handshake resumed an earlier session: ``"ticket"``, ``"session ID"``, or None
        (full); a later renegotiation does not change it (:attr:`HandshakeComplete.resumed_by`)."""
        return self.client.handshakes[0].resumed_by

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self.client.transcript

    @property
    def timings(self) -> list[Timing]:
        return self._driver.timings

    def send(self, data: bytes, *, deadline: float | None = None) -> None:
        """Send ``data`` as application data; with a ``deadline`` (a time.monotonic() value), writing must
        end by then (:class:`~handshake_lib.errors.ConnectionTimeout`), else each write may take ``timeout``.

        In the middle of a renegotiation, after our ChangeCipherSpec (when data must wait for the new
        handshake to end), the handshake is run to its end first; data that arrives meanwhile is kept."""
        if not self.client.can_send_application_data and self.client.renegotiating:
            wait_until = deadline if deadline is not None else time.monotonic() + self.timeout
            while not self.client.can_send_application_data and self.client.renegotiating:
                for event in self._driver.receive(wait_until):
                    self._keep(event)
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

    def renegotiate(self, *, deadline: float | None = None) -> HandshakeComplete | None:
        """Run a new handshake over the open connection (RFC 5746) and return it; None if the server declined.

        Application data that arrives meanwhile is kept for :meth:`recv`.  The whole handshake must end
        within ``timeout`` from this call, or by ``deadline`` (a time.monotonic() value).  A server that did
        not agree to secure renegotiation in the first handshake: ConnectionStateError before anything is sent.
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        before = len(self.client.handshakes)
        self.client.renegotiate()
        self._driver.flush()
        while len(self.client.handshakes) == before:
            for event in self._driver.receive(deadline):
                if isinstance(event, RenegotiationRefused):
                    return None
                self._keep(event)
        self.handshake = self.client.handshakes[-1]
        return self.handshake

    def _keep(self, event: object) -> None:
        """What :meth:`recv` hands out later: application data, the server's close, and each new handshake
        (a server may ask for one with HelloRequest at any time: the core answers it on its own)."""
        if isinstance(event, ApplicationData):
            self._received.append(event.data)
        elif isinstance(event, ConnectionClosed):
            self._peer_closed = True
        elif isinstance(event, HandshakeComplete):
            self.handshake = event
        elif isinstance(event, TicketReceived) and self._on_ticket is not None:
            self._on_ticket(event.ticket)  # TLS 1.3: tickets come after the handshake

    def update_keys(self, *, request_peer: bool = True, deadline: float | None = None) -> None:
        """TLS 1.3: send KeyUpdate (``request_peer``: update_requested, so the server moves its keys on too).

        ConnectionStateError on a TLS 1.2 connection (``tls_version="auto"`` and a server that chose 1.2)."""
        if self.handshake.version != ProtocolVersion.TLS1_3:
            raise ConnectionStateError("KeyUpdate is TLS 1.3's, and the server chose TLS 1.2 (it renegotiates instead)")
        self.client.update_keys(request_peer=request_peer)
        if deadline is not None:
            self.sock.settimeout(_remaining(deadline))
        self._driver.flush()

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
                self._keep(event)
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


class _RecordingSocket:
    """A client socket that keeps what it sends and receives, and writes it as a pcap when closed.

    Bounded by what the connection itself may carry (:func:`tls_get`'s body limit and deadline).
    """

    def __init__(self, sock: socket.socket, path: str | Path) -> None:
        self._sock = sock
        self._path = Path(path)
        self._chunks: list[tuple[str, bytes]] = []
        self._ends = (sock.getsockname()[:2], sock.getpeername()[:2])

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._chunks.append((CLIENT_TO_SERVER, bytes(data)))

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        if data:
            self._chunks.append((SERVER_TO_CLIENT, data))
        return data

    def close(self) -> None:
        self._sock.close()
        if self._chunks is not None:
            client, server = self._ends
            self._path.write_bytes(write_pcap(self._chunks, client=client, server=server, start_time=time.time()))
            self._chunks = None  # type: ignore[assignment]  # written once

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _keylog_writer(keylog_path: str | Path | None) -> Callable[[str], None] | None:
    if keylog_path is None:
        return None
    return lambda line: append_line(keylog_path, line)


def session_key(server_name: str, port: int) -> str:
    """The key a :class:`~handshake_lib.tls.sessions.ClientSessionStore` keeps a server's session under."""
    return f"{server_name}:{port}"


def open_tls(
    host: str,
    port: int,
    server_name: str | None = None,
    *,
    timeout: float = net.DEFAULT_TIMEOUT,
    deadline: float | None = None,
    keylog_path: str | Path | None = None,
    record_to: str | Path | None = None,
    session_store: ClientSessionStore | None = None,
    session: Session | ResumptionTicket | None = None,
    tls_version: TLSVersionChoice = "1.2",
    **client_options: Any,
) -> TLSStream:
    """Connect to ``host:port``, run our client's handshake, return the open stream.

    ``tls_version``: "1.2" (:class:`~handshake_lib.tls.client.TLSClient`, the default: lessons 02-09), "1.3"
    (:class:`~handshake_lib.tls.client13.TLS13Client`), or "auto" (one hello offering both; the server's
    choice wins and the downgrade sentinel is checked: :mod:`handshake_lib.tls.negotiate_version`).  With TLS
    1.3 a ``session_store`` keeps the newest ticket the server sent for ``server_name:port`` and the next
    connection offers it (PSK resumption); each ticket is offered once.

    ``server_name`` (default: ``host``) is sent in SNI and checked against the certificate;
    ``client_options`` go to :class:`~handshake_lib.tls.client.TLSClient` (``cafile``, ``verify``,
    ``cipher_suites``, ``stages=Stages(prf=...)``, for mutual TLS ``client_certificate_chain`` and
    ``client_private_key``, ``request_ocsp_status=True`` to ask for a stapled OCSP response, which ends up
    in ``stream.handshake.stapled_ocsp_response``...).  Connecting and the whole handshake must finish
    within ``timeout`` seconds (finite, > 0, at most a day: ValueError otherwise), or by ``deadline`` (a
    time.monotonic() value) when one is given; the stream's ``recv`` then waits ``timeout`` per call.
    ``record_to``: a pcap file written when the stream closes, with every byte of the connection both ways
    (IPv4 only), a failed handshake included.

    Resumption: ``session`` (an earlier ``handshake.session`` from the same server name) is offered in the
    ClientHello; with a ``session_store`` and no ``session``, the one the store holds for
    ``server_name:port`` (:func:`session_key`) is.  After the handshake the store keeps its session (the
    resumed one, with a renewed ticket if one came, or the new one; none if the server offered none), and a
    failed handshake removes the offered session from it (RFC 5246 section 7.2.2: a session ended by a fatal
    alert must not be resumed).  ``stream.resumed_by`` says how it went.
    """
    timeout = net.check_timeout(timeout)
    if tls_version not in TLS_VERSION_CHOICES:
        raise ValueError(f"tls_version must be one of {TLS_VERSION_CHOICES}, not {tls_version!r}")
    if keylog_path is not None:
        client_options.setdefault("keylog", _keylog_writer(keylog_path))
    name = server_name or host
    store_key = session_key(name, port)
    if session is None and session_store is not None:
        session = session_store.get(store_key)
    ticket = session if isinstance(session, ResumptionTicket) else None
    if isinstance(session, Session) and tls_version in ("1.2", "auto"):
        client_options["session"] = session  # "auto": resumed if the server picks 1.2 (_make_client)
    else:
        session = ticket
    on_ticket = (lambda t: session_store.store(store_key, t)) if session_store is not None else None  # type: ignore[arg-type]
    client = _make_client(name, tls_version, ticket, client_options)
    started = time.perf_counter()
    if deadline is None:
        deadline = time.monotonic() + timeout
    try:
        sock = net.connect(host, port, timeout=min(_remaining(deadline), timeout))
    except HandshakeError as error:  # a connect timeout; a refused connection stays the OSError it is
        _with_exchange(error, client, None)
        raise
    if record_to is not None:
        if sock.family != socket.AF_INET:
            sock.close()
            raise ValueError("record_to writes IPv4 captures only: connect to an IPv4 address")
        sock = _RecordingSocket(sock, record_to)  # type: ignore[assignment]  # a socket, as far as we use it
    driver = net.SocketDriver(client, sock, started)
    try:
        client.start()
        driver.flush()
        while client.handshake is None:
            driver.receive(deadline)
    except BaseException as error:
        sock.close()
        if session_store is not None and session is not None and session_store.get(store_key) == session:
            session_store.forget(store_key)
        if isinstance(error, (HandshakeError, OSError)):
            failure = _with_exchange(error, client, driver)
            if failure is not error:
                raise failure from error
        raise
    if session_store is not None and client.handshake.version != ProtocolVersion.TLS1_3:
        session_store.store(store_key, client.handshake.session)
    elif session_store is not None and session is not None:
        session_store.forget(store_key)  # a TLS 1.3 ticket is used once (RFC 8446 C.4); new ones replace it
    return TLSStream(client, sock, driver, timeout, on_ticket)


@functools.cache
def _client_options() -> tuple[frozenset[str], frozenset[str]]:
    """The options TLS13Client and TLSClient take (read once: "auto" sorts every call's options by them)."""
    return (
        frozenset(inspect.signature(TLS13Client).parameters) - {"server_name"},
        frozenset(inspect.signature(TLSClient).parameters) - {"server_name"},
    )


def _make_client(
    name: str, tls_version: str, ticket: ResumptionTicket | None, options: dict[str, Any]
) -> TLSClient | TLS13Client | NegotiatingClient:
    """The core for ``tls_version``: options go to it as they are; for "auto", each goes to the core(s) that
    take it (``cipher_suites`` are TLS 1.2's there, ``tls13_cipher_suites`` TLS 1.3's)."""
    if tls_version == "1.2":
        return TLSClient(name, **options)
    options = dict(options)
    options.setdefault("clock", time.time)  # ticket ages (the core reads no clock)
    if ticket is not None:
        options["ticket"] = ticket
    if tls_version == "1.3":
        return TLS13Client(name, **options)
    takes13, takes12 = _client_options()
    suites12 = options.pop("cipher_suites", DEFAULT_CLIENT_SUITES)
    suites13 = options.pop("tls13_cipher_suites", None)
    groups = options.pop("groups", None)
    unknown = set(options) - takes13 - takes12
    if unknown:
        raise TypeError(f"unknown client options: {sorted(unknown)}")
    options13 = {k: v for k, v in options.items() if k in takes13}
    options12 = {k: v for k, v in options.items() if k in takes12 and k not in ("clock",)}
    session12 = options12.get("session")
    if isinstance(session12, Session):
        # The one hello offers the 1.2 session too, as browsers do: its ID as legacy_session_id, or its ticket.
        if session12.ticket:
            options13["tls12_session_ticket"] = session12.ticket
        else:
            options13["tls12_session_id"] = session12.session_id
    if options12.get("session_ticket") and "tls12_session_ticket" not in options13:
        options13["tls12_session_ticket"] = b""  # ask a 1.2 server for a ticket (RFC 5077)
    if suites13 is not None:
        options13["cipher_suites"] = suites13
    if groups is not None:
        options13["groups"] = groups
        options13.setdefault("key_share_groups", [g for g in DEFAULT_KEY_SHARES13 if g in groups] or list(groups)[:1])
    groups12 = [g for g in (groups or GROUPS) if g in GROUPS and GROUPS[g].kind == "ecdhe"] or list(DEFAULT_GROUPS)
    client13 = TLS13Client(name, offer_tls12=True, tls12_cipher_suites=suites12, **options13)

    def fallback(hello: ClientHello) -> TLSClient:
        # The TLS 1.2 client takes over as if it had sent this very hello (negotiate_version.py checks it did).
        stages = Stages(build_client_hello=lambda **_: hello)
        return TLSClient(name, cipher_suites=suites12, groups=groups12, client_random=hello.random, stages=stages,
                         **options12)  # fmt: skip

    return NegotiatingClient(client13, fallback)


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
    # "ticket" or "session ID" when the handshake resumed a session (TLSStream.resumed_by), None when full.
    resumed_by: str | None = None
    # tls_get(renegotiate=True): True once the connection renegotiated before the request, False when the
    # server declined (no_renegotiation); None when not asked.  ``handshake`` is then the renegotiation's.
    renegotiated: bool | None = None
    # Every handshake of the connection, in order (the first, then any renegotiation).
    handshakes: list[HandshakeComplete] = field(default_factory=list)


def tls_get(
    url: str,
    *,
    cafile: str | Path | None = None,
    verify: bool = True,
    cipher_suites: Sequence[int] | None = None,
    keylog_path: str | Path | None = None,
    record_to: str | Path | None = None,
    timeout: float = net.DEFAULT_TIMEOUT,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    session_store: ClientSessionStore | None = None,
    session: Session | ResumptionTicket | None = None,
    renegotiate: bool = False,
    tls_version: TLSVersionChoice = "1.2",
    early_data: bool = False,
    key_update: bool = False,
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
    ``client_options`` go to :func:`open_tls` (``request_ocsp_status=True``: a stapled OCSP response, if
    the server sends one, is in ``response.handshake.stapled_ocsp_response``; ``record_to``: a pcap of the
    connection).  ``session_store``/``session``: resume, as :func:`open_tls` does; fetching again with the
    same store resumes (``response.resumed_by``)::

        store = ClientSessionStore()
        first = tls_get(url, cafile=ca, session_store=store, session_ticket=True)   # full
        again = tls_get(url, cafile=ca, session_store=store)                        # resumed_by "ticket"

    ``renegotiate=True`` renegotiates once (RFC 5746) on the open connection before sending the request
    (a server that answers one request per connection, as ``s_server -www`` and our own do, could not be
    asked again after it), within the same deadline; ``response.renegotiated`` says whether the server
    took part, and ``response.handshakes`` lists both handshakes.

    TLS 1.3 (``tls_version="1.3"`` or ``"auto"``, see :func:`open_tls`): ``early_data=True`` sends the request
    as 0-RTT data when resuming with a ticket that allows it (``response.handshake.early_data`` says whether
    the server took it; if not, the request goes again after the handshake, as RFC 8446 4.2.10 says);
    ``key_update=True`` sends KeyUpdate with update_requested before the request.
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
    if early_data and tls_version != "1.2":
        offered = session if session is not None else (
            session_store.get(session_key(host, port)) if session_store is not None else None
        )
        if isinstance(offered, ResumptionTicket) and offered.max_early_data_size >= len(request):
            client_options["early_data"] = request
    try:
        stream = open_tls(
            host, port, host, timeout=timeout, deadline=deadline, cafile=cafile, verify=verify,
            keylog_path=keylog_path, record_to=record_to, session_store=session_store, session=session,
            tls_version=tls_version, **client_options,
        )  # fmt: skip
    except ConnectionTimeout as error:
        raise _timed_out(error, f"{host}:{port}", timeout, "connecting or in the handshake") from error
    renegotiated: bool | None = None
    try:
        with stream:
            if renegotiate:
                renegotiated = stream.renegotiate(deadline=deadline) is not None
            if key_update:
                stream.update_keys(request_peer=True, deadline=deadline)
            if stream.handshake.early_data != "accepted":
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
        fields, stream.resumed_by, renegotiated, list(stream.client.handshakes),
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
# Limits of TLSPageServer (docs/limits.md, "Server").
DEFAULT_MAX_CONNECTIONS = 1024  # served at once; the rest wait in the kernel's accept queue
DEFAULT_HISTORY = 100  # finished connections kept in ``connections``
MAX_REQUEST_HEAD = 65536  # bytes of request head (h11's max_incomplete_event_size): more is a 431
CLOSE_GRACE = 1.0  # seconds we wait, after our close_notify, for the client's (so it reads the page first)
RECV_SIZE = 65536  # bytes read from a socket at a time


@dataclass(eq=False)
class ServedConnection:
    """What :class:`TLSPageServer` saw of one connection: the handshake, the request, or the error.

    ``number`` counts from 1 in the order connections were accepted.  ``finished`` turns true once the
    connection is over, and ``outcome`` then says in one line how it ended (the request line and our
    status, "closed after the handshake without a request", the error...).  ``request`` holds the
    request bytes as they came (at most ``MAX_REQUEST_HEAD``), ``status`` the HTTP status we answered
    (None if we sent no response).  ``transcript`` stays empty unless the server keeps transcripts.
    """

    number: int = 0
    handshake: HandshakeComplete | None = None
    request: bytes = b""
    error: BaseException | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)
    status: int | None = None
    outcome: str = ""
    finished: bool = False
    # "ticket" or "session ID" when the client resumed a session (the abbreviated handshake), else None.
    resumed_by: str | None = None

    @property
    def client_subject(self) -> str | None:
        """Who connected (mutual TLS): the subject of the client certificate our server validated, else None."""
        return self.handshake.client_subject if self.handshake is not None else None


def _forget_frames(error: BaseException) -> BaseException:
    """``error`` without its traceback (nor its causes'): a kept record must not keep the connection's core alive."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return error


class _PageConnection:
    """One client of :class:`TLSPageServer`'s event loop: a TLS core, an h11 connection, a bounded outbox.

    Everything here runs in the loop's thread and never blocks: :meth:`readable` is called when the
    socket has bytes, :meth:`writable` when it can take more.  We read only while the outbox is
    empty, so a client that does not read what we send cannot make us buffer more than one answer.
    """

    def __init__(self, server: TLSPageServer, sock: socket.socket, record: ServedConnection, now: float) -> None:
        self.server = server
        self.sock = sock
        self.fileno = sock.fileno()
        self.record = record
        self.deadline = now + server.timeout
        self.tls = server._new_core()
        if server.keep_transcripts and not isinstance(self.tls, NegotiatingServer):
            record.transcript = self.tls.transcript  # (a negotiating core's is known once it has decided)
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self.outbox = bytearray()
        self.answered = False  # our response and close_notify are queued
        self.waiting: tuple[int, str] | None = None  # a whole request, held while the client renegotiates
        self.early_answer: tuple[int, str] | None = None  # a 0-RTT request's answer, held until the handshake ends
        self.ending = False  # nothing more to read: close once the outbox is written
        self.closed = False
        self.received = False  # any byte from the client yet

    # -- what the loop calls ---------------------------------------------------------------------
    @property
    def wants_read(self) -> bool:
        return not self.ending and not self.outbox

    def readable(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a reset is a close, as far as the protocol can tell
        self._feed(data)
        self.writable()

    def writable(self) -> None:
        if self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.outbox.clear()  # the peer is gone: nothing we queued can reach it
                self.ending = True
            else:
                del self.outbox[:sent]
        if self.ending and not self.outbox:
            self.close()

    def expire(self) -> None:
        """The deadline passed: record why, and close (a queued alert or page gets no more time)."""
        if not self.answered:
            waited = self.server.timeout
            if self.record.handshake is None:
                self._finish(error=ConnectionTimeout(f"the handshake did not finish within {waited} s"))
            else:
                self._finish(error=ConnectionTimeout(f"no whole request within {waited} s"))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.record.finished:
            self._finish()
        # Forget the socket before closing it: the next accept may be given the same file descriptor.
        self.server._forget(self)
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- protocol ----------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        if not data and not self.received:
            # Connected and left without a byte (a port check, a client that changed its mind): no error.
            self.ending = True
            return
        self.received = True
        try:
            events = self.tls.receive_data(data)
        except HandshakeError as error:  # a ProtocolError (we queued the alert) or the client's PeerAlert
            self.outbox += self.tls.data_to_send()
            self._finish(error=error)
            self.ending = True
            return
        self.outbox += self.tls.data_to_send()
        closed = not data
        for event in events:
            if isinstance(event, HandshakeComplete):
                self.record.handshake = event
                if self.server.keep_transcripts and not self.record.transcript:
                    self.record.transcript = self.tls.transcript  # a negotiating core's, now that it has one
                if not event.renegotiation:  # how the connection began; a renegotiation is always full
                    self.record.resumed_by = event.resumed_by
                if event.renegotiation and self.waiting is not None:
                    self._respond(*self.waiting)  # renegotiated, as we asked: now the answer
                elif self.early_answer is not None:
                    self._respond(*self.early_answer)  # a 0-RTT request, answered once the handshake is done
            elif isinstance(event, RenegotiationRefused) and self.waiting is not None:
                status, what = self.waiting
                self._respond(status, f"{what} (the client declined to renegotiate)")
            elif isinstance(event, ApplicationData) and not self.answered:
                room = MAX_REQUEST_HEAD - len(self.record.request)
                self.record.request += event.data[: max(room, 0)]
                self.http.receive_data(event.data)
            elif isinstance(event, ConnectionClosed):
                closed = True
        if closed and not self.answered:
            self.http.receive_data(b"")
        if not self.answered:
            self._read_request()
        if closed:
            self.ending = True

    def _read_request(self) -> None:
        """Run h11 over what arrived: answer a whole request, or a request h11 refuses (431, 400)."""
        while not self.answered:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as error:
                # Too big a head is 431 (h11's hint), anything else it cannot parse 400 (RFC 9112 section 2.2).
                status = error.error_status_hint
                if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
                    self._respond(status, f"a request head over {MAX_REQUEST_HEAD} bytes")
                else:
                    self._respond(status, f"a request h11 cannot read ({error})")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                method, target = event.method.decode("ascii"), event.target.decode("iso-8859-1")
                self.record.outcome = f"{method} {target} HTTP/{event.http_version.decode('ascii')}"  # see _respond
            elif isinstance(event, h11.EndOfMessage):
                if self.server.renegotiate and self.waiting is None and self._ask_to_renegotiate():
                    self.waiting = (200, self.record.outcome)  # answered once the new handshake is done
                    return
                self._respond(200, self.record.outcome)
            elif isinstance(event, h11.ConnectionClosed):
                return

    def _ask_to_renegotiate(self) -> bool:
        """``renegotiate=True``: HelloRequest before the answer (False: the client cannot renegotiate)."""
        try:
            self.tls.renegotiate()
        except HandshakeError:  # no secure renegotiation agreed: answer at once, as an OpenSSL server would
            return False
        self.outbox += self.tls.data_to_send()
        return True

    def _respond(self, status: int, what: str) -> None:
        if self.answered:
            return
        if self.record.handshake is None:
            # TLS 1.3 0-RTT: the request came as early data; the answer waits for the client's Finished.
            self.early_answer = (status, what)
            return
        if status == 200:
            body, content_type = self.server.page, "text/html; charset=utf-8"
        else:
            body, content_type = f"{status} {HTTPStatus(status).phrase}\n".encode(), "text/plain; charset=utf-8"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")]
        try:
            head = h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase)
            response = self.http.send(head)
            response += self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # h11 will not let us answer (the client already closed): just close
            self.answered = True
            self.ending = True
            return
        self.answered = True
        self.record.status = status
        self.record.outcome = f"{what} -> {status} {HTTPStatus(status).phrase}"
        with contextlib.suppress(HandshakeError):
            self.tls.send_application_data(response)
            self.tls.close()
        self.outbox += self.tls.data_to_send()
        # Wait a little for the client's close_notify, so that it reads the page before our FIN.
        self.deadline = min(self.deadline, time.monotonic() + CLOSE_GRACE)

    def _finish(self, *, error: BaseException | None = None) -> None:
        record = self.record
        if record.finished:
            return
        if error is not None and record.error is None and not self.answered:
            record.error = _forget_frames(error)
        if not record.outcome:
            record.outcome = "closed before the handshake" if record.handshake is None else (
                "closed after the handshake without a request"
            )
        elif record.status is None:
            record.outcome += " (closed before the request was complete)"
        if record.error is not None:
            record.outcome = f"failed: {record.error}"
        record.finished = True
        self.server._finished(record)


class TLSPageServer(net.LoopbackServer):
    """Our TLS 1.2 server core serving ``page`` over HTTP/1.1 on loopback, in one thread.

    >>> with TLSPageServer(chain, key) as server:      # doctest: +SKIP
    ...     tls_get(f"https://localhost:{server.port}/", cafile=ca)

    ``host`` and ``port`` say where to listen: loopback and a free port (``port=0``) by default, which
    is what notebooks and tests want; after ``__enter__``, ``host`` and ``port`` hold the bound address.
    A host that is not a loopback address is refused (ValueError) unless ``allow_public=True``: a
    teaching server must not end up on a network by accident.  ``server_options`` go to
    :class:`~handshake_lib.tls.server.TLSServer` for every connection (``cipher_suites``, ``groups``,
    ``identities=[(ecdsa_chain, ecdsa_key)]`` for a second certificate picked by suite,
    ``extended_master_secret``, ``keylog``, for mutual TLS ``client_ca`` and ``require_client_certificate``,
    ``ocsp_response`` to staple for clients that ask...); ``keylog_path`` appends NSS key log lines to a file.
    TLS 1.3 connections take the options :class:`~handshake_lib.tls.server13.TLS13Server` knows, except TLS 1.2's
    ``cipher_suites``, ``groups`` and ``stages``: theirs are ``tls13_cipher_suites``, ``groups13`` and
    ``stages13`` (a :class:`~handshake_lib.tls.stages13.Stages13`: lesson 10's learner key schedule).

    Resumption is on by default: every connection shares one ``session_cache``
    (:class:`~handshake_lib.tls.sessions.SessionCache`: at most 1024 sessions, each for 300 s, OpenSSL's
    lifetime) and one set of ``ticket_keys`` (:class:`~handshake_lib.tls.tickets.TicketKeys`: a new key
    every hour, tickets good for 7200 s), both read with ``time.monotonic`` unless ``clock=`` says
    otherwise; pass your own to size them, or ``resumption=False`` for a server that makes every client do
    a full handshake.  ``connections[i].resumed_by`` says how each client resumed.  A server that asks for
    client certificates (``client_ca``) does not resume unless ``resumption=True`` says so: a
    :class:`~handshake_lib.tls.sessions.Session` does not carry the client's certificate yet, so a resumed
    connection would have no ``client_subject`` (docs/limits.md).

    One event loop (``selectors``, non-blocking sockets) serves every connection: each is a sans-I/O
    TLS core plus an ``h11`` HTTP/1.1 connection, so a thousand slow clients cost memory, not threads,
    and a normal client is still served at once.  HTTP is h11's: a request with bare LF line ends is
    answered, a head over ``MAX_REQUEST_HEAD`` bytes gets 431, one h11 cannot parse 400.

    Limits (``docs/limits.md``): every connection has ``timeout`` seconds from accept to its last
    byte; at most ``max_connections`` (default :data:`DEFAULT_MAX_CONNECTIONS`) are served at once,
    the next ones wait in the kernel's accept queue (the system's largest); ``connections`` keeps the
    ``history`` (default :data:`DEFAULT_HISTORY`) most recent :class:`ServedConnection` records, in the
    order they were accepted, without transcripts unless ``keep_transcripts=True``.  ``renegotiate=True``
    asks each client for a new handshake (HelloRequest, RFC 5746) once its request is in, and answers after
    it (or after the client declines); ``max_renegotiations`` (a server option) bounds the ones clients
    start.  ``on_finished``, if given, is called (in the server's thread) with each record once its
    connection is over: the ``tls serve`` console log uses it.  ``accepted`` counts every connection since the start.
    """

    name = "TLSPageServer"

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
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        history: int = DEFAULT_HISTORY,
        keep_transcripts: bool = False,
        on_finished: Callable[[ServedConnection], None] | None = None,
        resumption: bool | None = None,
        session_cache: SessionCache | None = None,
        ticket_keys: TicketKeys | None = None,
        renegotiate: bool = False,
        tls_versions: Sequence[str] = ("1.2",),
        max_early_data_size: int = 0,
        **server_options: Any,
    ) -> None:
        versions = tuple(tls_versions)
        if not versions or any(v not in ("1.2", "1.3") for v in versions):
            raise ValueError(f"tls_versions must name '1.2' and/or '1.3', not {versions!r}")
        if max_early_data_size and "1.3" not in versions:
            raise ValueError("max_early_data_size is TLS 1.3's 0-RTT: add '1.3' to tls_versions")
        self.tls_versions = versions
        self.certificate_chain = [
            c.public_bytes(Encoding.DER) if isinstance(c, x509.Certificate) else bytes(c) for c in certificate_chain
        ]
        super().__init__(
            host=host, port=port, allow_public=allow_public, timeout=timeout, max_connections=max_connections
        )
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, not {history!r}")
        self.private_key = private_key
        self.page = page
        if keylog_path is not None:
            server_options.setdefault("keylog", _keylog_writer(keylog_path))
        if resumption is None:  # on, unless client certificates are asked for (a session forgets them)
            resumption = not server_options.get("client_ca")
        if not resumption and (session_cache is not None or ticket_keys is not None):
            raise ValueError("resumption=False serves without a session cache or ticket keys: do not pass them")
        self.resumption = resumption
        # Shared by every connection, used only from the event loop's thread: no lock needed.
        self.session_cache = session_cache if session_cache is not None or not resumption else SessionCache()
        self.ticket_keys = ticket_keys if ticket_keys is not None or not resumption else TicketKeys()
        if resumption:
            server_options["session_cache"] = self.session_cache
            server_options["ticket_keys"] = self.ticket_keys
            server_options.setdefault("clock", time.monotonic)
        self.server_options = server_options
        # TLS 1.3 takes the options it knows (identities, keylog, client_ca, clock...); 0-RTT only with a replay
        # window shared by every connection (RFC 8446 8.2), and its tickets from the same rotating keys.
        takes13 = set(inspect.signature(TLS13Server).parameters)
        # TLS 1.2's suites and stages are not 1.3's: 1.3 takes its own as tls13_cipher_suites and stages13.
        self.server_options13 = {
            k: v for k, v in server_options.items() if k in takes13 and k not in ("cipher_suites", "stages")
        }
        if "stages13" in server_options:
            self.server_options13["stages"] = server_options.pop("stages13")
        if "tls13_cipher_suites" in server_options:
            self.server_options13["cipher_suites"] = server_options.pop("tls13_cipher_suites")
        if "groups13" in server_options:
            self.server_options13["groups"] = server_options.pop("groups13")
        else:
            self.server_options13.pop("groups", None)  # TLS 1.2's ECDHE groups; 1.3 has its own default
        self.anti_replay = ReplayWindow() if max_early_data_size else None
        if max_early_data_size:
            if not resumption:
                raise ValueError("0-RTT needs resumption (tickets)")
            self.server_options13.update(max_early_data_size=max_early_data_size, anti_replay=self.anti_replay)
        if resumption:
            self.server_options13.setdefault("clock", time.monotonic)
        # Fail now, in the caller's thread, if the options are wrong (not in the loop later).
        self._new_core()
        self.keep_transcripts = keep_transcripts
        self.on_finished = on_finished
        self.renegotiate = renegotiate
        self.connections: deque[ServedConnection] = deque(maxlen=history)
        self.accepted = 0
        self._clients: dict[int, _PageConnection] = {}  # file descriptor -> connection
        self._selector: selectors.BaseSelector | None = None

    def _new_core(self) -> TLSServer | TLS13Server | NegotiatingServer:
        """One connection's TLS core: TLS 1.2, TLS 1.3, or both (the ClientHello decides)."""
        keep = self.keep_transcripts if hasattr(self, "keep_transcripts") else False

        def tls12() -> TLSServer:
            # RFC 8446 4.1.3: a server that could speak 1.3 marks its 1.2 random (``downgrade_sentinel=`` overrides,
            # e.g. to show what a 1.3-capable server says to a client that stripped its 1.3 offer).
            options = {"downgrade_sentinel": "1.3" in self.tls_versions, **self.server_options}
            return TLSServer(self.certificate_chain, self.private_key, keep_transcript=keep, **options)

        def tls13() -> TLS13Server:
            return TLS13Server(self.certificate_chain, self.private_key, keep_transcript=keep, **self.server_options13)

        if self.tls_versions == ("1.2",):
            return tls12()
        if self.tls_versions == ("1.3",):
            return tls13()
        return NegotiatingServer(tls13, tls12)

    @property
    def live_connections(self) -> int:
        """How many connections are being served now (at most ``max_connections``)."""
        return len(self._clients)

    def serve(self, conn: socket.socket) -> None:  # pragma: no cover - the event loop serves instead
        raise NotImplementedError("TLSPageServer serves every connection in its event loop")

    def _finished(self, record: ServedConnection) -> None:
        if self.on_finished is not None:
            # The caller's callback must not stop the server for everyone else.
            with contextlib.suppress(Exception):
                self.on_finished(record)

    def _run(self) -> None:
        """The event loop: accept while below the cap, read and write whatever is ready, expire deadlines."""
        listener = self._listener
        assert listener is not None
        listener.setblocking(False)
        selector = self._selector = selectors.DefaultSelector()
        listening = False
        try:
            while True:
                stopping = self._stop.is_set()
                want_listen = not stopping and len(self._clients) < self.max_connections
                if want_listen != listening:
                    if want_listen:
                        selector.register(listener, selectors.EVENT_READ, None)
                    else:
                        selector.unregister(listener)
                    listening = want_listen
                if stopping and not self._clients:
                    return
                for key, mask in selector.select(self._wait_time()):
                    if key.data is None:
                        self._accept(selector)
                        continue
                    client: _PageConnection = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._guarded(client, client.writable)
                    if mask & selectors.EVENT_READ and not client.closed:
                        self._guarded(client, client.readable)
                now = time.monotonic()
                for client in list(self._clients.values()):
                    if not client.closed and client.deadline <= now:
                        self._guarded(client, client.expire)
                    self._update(selector, client)
        finally:
            for client in list(self._clients.values()):
                client.close()
            self._clients.clear()
            selector.close()
            self._selector = None

    def _wait_time(self) -> float:
        # Wake at the nearest deadline, and every 0.1 s to look at the stop flag.
        if not self._clients:
            return 0.1
        nearest = min(client.deadline for client in self._clients.values())
        return min(0.1, max(0.0, nearest - time.monotonic()))

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        while len(self._clients) < self.max_connections:
            try:
                raw, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED, EMFILE...: this client is lost, the loop goes on
                return
            raw.setblocking(False)
            net._nodelay(raw)
            self.accepted += 1
            record = ServedConnection(number=self.accepted)
            self.connections.append(record)
            try:
                client = _PageConnection(self, raw, record, time.monotonic())
            except Exception as error:  # noqa: BLE001 - a bug in setting up one connection must not stop the loop
                raw.close()
                record.error = InternalError(f"{type(error).__name__}: {error}")
                record.outcome, record.finished = f"failed: {record.error}", True
                self._finished(record)
                continue
            self._clients[client.fileno] = client
            selector.register(raw, selectors.EVENT_READ, client)

    def _guarded(self, client: _PageConnection, step: Callable[[], None]) -> None:
        """Run one step of one connection; a bug there ends that connection, never the loop."""
        try:
            step()
        except Exception as error:  # noqa: BLE001 - logged in the record, as an internal error
            client._finish(error=InternalError(f"{type(error).__name__}: {error}"))
            client.close()

    def _forget(self, client: _PageConnection) -> None:
        if self._clients.get(client.fileno) is client:
            del self._clients[client.fileno]
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(client.sock)

    def _update(self, selector: selectors.BaseSelector, client: _PageConnection) -> None:
        """Register what ``client`` waits for now (a closed one has already been forgotten)."""
        if client.closed:
            return
        events = (selectors.EVENT_READ if client.wants_read else 0) | (
            selectors.EVENT_WRITE if client.outbox else 0
        )
        key = selector.get_key(client.sock)
        if events == 0:
            # Ending with nothing left to write closes at once; a client we stopped reading waits for its deadline.
            events = selectors.EVENT_READ
        if key.events != events:
            selector.modify(client.sock, events, client)


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
