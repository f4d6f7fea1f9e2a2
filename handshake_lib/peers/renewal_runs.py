"""Lesson 11's live runs: resumption by session ID and by ticket, and renegotiation, against OpenSSL.

Theory of operation
-------------------
:func:`openssl_resumption_server` starts OpenSSL (Python ``ssl``) for TLS 1.2 with its session cache and its
session tickets both on, and records OpenSSL's own ``session_reused`` for every connection: a resumption
counts only when OpenSSL says so too.  (OpenSSL drops a session from its cache when the connection did not
end with close_notify, so the page handler shuts each connection down cleanly.)

:func:`fetch_with_store` is one visit the way a browser makes it: look in a
:class:`~handshake_lib.tls.sessions.ClientSessionStore` for the server's name, offer what is there
(``TLSClient(session=...)``), and keep the session the handshake ends with.  :func:`compare_resumption`
makes ``repeat`` full handshakes, resumptions by session ID and resumptions by ticket, and measures each
one's handshake time: from our ClientHello leaving to our first application data record (the request)
leaving, on our client's clock (``TLSResponse.timings``), and the round trips in between.

:func:`ticket_from_our_server` gets a ticket from *our* server (``TicketKeys``) so that
:func:`handshake_lib.tls.tickets.explain_ticket` can show it as the server reads it.

:func:`renegotiate_with_openssl` keeps one connection to OpenSSL open, fetches a page, renegotiates
(:meth:`~handshake_lib.net.tls.TLSStream.renegotiate`), fetches again; :func:`records_under_keys` then
says, record by record, which handshake's keys protect it, and opens each protected record with those keys
and with the previous handshake's (which must fail after the new ChangeCipherSpec).

Exercise 11's live steps report instead of raising (the learner's function may fail any way):

* :func:`run_learner_renegotiation` plugs the learner's ``renegotiation_info`` (a
  :class:`~handshake_lib.tls.stages.Stages` field) into our client, which renegotiates with OpenSSL
  (:func:`learner_client_renegotiates`: right, OpenSSL's key log holds both handshakes; wrong, OpenSSL
  aborts with ``handshake_failure`` and says ``RENEGOTIATION_MISMATCH``), and into our server, to which
  ``openssl s_client`` types ``R`` (:func:`s_client_renegotiates_with_learner_server`: wrong, our server
  aborts s_client's hello, or s_client ours with ``illegal_parameter``);
* :func:`run_learner_ticket` plugs the learner's ``open_ticket`` into our server (its session-ID cache
  finds nothing, so only a ticket resumes): ``openssl s_client -reconnect`` must print ``Reused`` five
  times, and a session saved with ``-sess_out`` whose ticket has one IV bit flipped must get a full
  handshake (a server that skips the MAC resumes it with a wrong master secret: s_client's ``bad record
  mac``).

This module drives peers over sockets, so it sits in ``peers`` above the sans-I/O ``tls`` package.
"""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import HandshakeError, PeerAlert, TLSAlert
from ..net.tls import Timing, TLSPageServer, TLSResponse, TLSStream, open_tls, tls_get
from ..pki.builder import CoursePKI, ServerFiles
from ..tls.captured import CLIENT_TO_SERVER, SERVER_TO_CLIENT, ProtectedRecord
from ..tls.client import TLSClient
from ..tls.connection import AlertReceived, HandshakeComplete, TranscriptEntry
from ..tls.constants import ContentType, ProtocolVersion
from ..tls.extensions import RenegotiationInfoExtension
from ..tls.keylog import parse_keylog
from ..tls.messages import ClientHello, Finished, ServerHello, decode_handshake
from ..tls.negotiation import client_hello_for
from ..tls.record import RECORD_HEADER_LENGTH, RecordProtection
from ..tls.sessions import ClientSessionStore, Session, SessionCache
from ..tls.stages import Stages
from ..tls.suites import suite_params
from ..tls.tickets import TicketKeys
from . import PeerUnavailable
from .openssl import PythonSSLServer, s_client, server_context

__all__ = [
    "OP_ALLOW_CLIENT_RENEGOTIATION",
    "ResumptionServer",
    "Visit",
    "ResumptionRun",
    "ResumptionComparison",
    "ServerTicket",
    "RecordUnderKeys",
    "RenegotiationRun",
    "openssl_resumption_server",
    "fetch_with_store",
    "compare_resumption",
    "ticket_from_our_server",
    "renegotiate_with_openssl",
    "records_under_keys",
    "handshake_time",
    "round_trips",
    "ATTACK_PREFIX",
    "SpliceOutcome",
    "splice_victim_hello",
    "splice_against_openssl",
    "splice_against_our_server",
    "LearnerRenegotiationRun",
    "LearnerTicketRun",
    "RenegotiationBinding",
    "learner_client_renegotiates",
    "s_client_renegotiates_with_learner_server",
    "run_learner_renegotiation",
    "run_learner_ticket",
    "renegotiation_binding",
]

# OpenSSL 3.0 refuses a client's renegotiation unless the server sets SSL_OP_ALLOW_CLIENT_RENEGOTIATION
# (0x100; `openssl s_server -client_renegotiation`); Python's ssl has no name for it.
OP_ALLOW_CLIENT_RENEGOTIATION = 0x100
RESUMPTION_CIPHERS = "ECDHE-RSA-AES128-GCM-SHA256"
MAX_REQUEST_HEAD = 16384


def keep_alive_pages(tls: ssl.SSLSocket, page: bytes) -> None:
    """Answer HTTP/1.1 requests on one connection until the client closes it, then close_notify."""
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            chunk = tls.recv(4096)
            if not chunk or len(pending) > MAX_REQUEST_HEAD:
                with contextlib.suppress(OSError, ssl.SSLError):
                    tls.unwrap()  # close_notify: OpenSSL keeps the session in its cache
                return
            pending += chunk
        head, _, pending = pending.partition(b"\r\n\r\n")
        path = head.split(b" ")[1] if head.count(b" ") >= 2 else b"/"
        body = page.replace(b"{path}", path)
        tls.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


PAGE = b"<!doctype html><title>renewal</title><p>OpenSSL answered {path}</p>"


@dataclass
class ResumptionServer:
    """A running OpenSSL server from :func:`openssl_resumption_server`; ``reused``: OpenSSL's verdict per
    connection, in order."""

    url: str
    cafile: Path
    server: PythonSSLServer
    reused: list[bool] = field(default_factory=list)
    server_name: str = "localhost"

    def reused_at(self, index: int, *, wait: float = 1.0) -> bool | None:
        """OpenSSL's ``session_reused`` for connection ``index`` (its thread records it; wait a moment)."""
        deadline = time.monotonic() + wait
        while len(self.reused) <= index and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.reused[index] if len(self.reused) > index else None


@contextlib.contextmanager
def openssl_resumption_server(
    ciphers: str = RESUMPTION_CIPHERS,
    *,
    allow_client_renegotiation: bool = False,
    files: ServerFiles | None = None,
    keylog_path: Path | None = None,
) -> Iterator[ResumptionServer]:
    """OpenSSL (Python ``ssl``), TLS 1.2 only, with a session cache and tickets, on loopback while the block runs.

    Each connection is answered as a keep-alive HTTP/1.1 server would (several requests on one
    connection); ``allow_client_renegotiation`` sets OpenSSL's option for client-initiated renegotiation;
    ``keylog_path``: OpenSSL appends a key log line per handshake there.
    """
    with tempfile.TemporaryDirectory(prefix="handshakes-renewal-") as folder:
        if files is None:
            files = CoursePKI.create().write_server_files(Path(folder), ("localhost", "127.0.0.1"))
        context = server_context(
            files.cert_path, files.key_path, ciphers=ciphers, maximum_version=ssl.TLSVersion.TLSv1_2,
            keylog_path=keylog_path,
        )  # fmt: skip
        if allow_client_renegotiation:
            context.options |= OP_ALLOW_CLIENT_RENEGOTIATION
        reused: list[bool] = []

        def handler(tls: ssl.SSLSocket) -> None:
            reused.append(tls.session_reused)  # OpenSSL's own view of the handshake
            keep_alive_pages(tls, PAGE)

        with PythonSSLServer(context, handler) as server:
            yield ResumptionServer(f"https://localhost:{server.port}/", files.ca_path, server, reused)


# -- measuring a handshake ---------------------------------------------------------------------------
def _first_application_data(transcript: Sequence[TranscriptEntry]) -> int:
    for index, entry in enumerate(transcript):
        if entry.direction == CLIENT_TO_SERVER and entry.content_type == ContentType.application_data:
            return index
    raise ValueError("our client sent no application data in this transcript")


def handshake_time(transcript: Sequence[TranscriptEntry], timings: Sequence[Timing]) -> float:
    """Seconds from our ClientHello leaving to our first application data record leaving (our clock)."""
    stamp = {index: moment for moment, _, index in timings}
    first = _first_application_data(transcript)
    return stamp[first] - stamp[0]


def round_trips(transcript: Sequence[TranscriptEntry]) -> int:
    """How many times our client waited for the server before it could send application data."""
    first = _first_application_data(transcript)
    waits, previous = 0, CLIENT_TO_SERVER
    for entry in transcript[:first]:
        if entry.direction == SERVER_TO_CLIENT and previous == CLIENT_TO_SERVER:
            waits += 1
        previous = entry.direction
    return waits


# -- visits with a session store -----------------------------------------------------------------------
@dataclass
class Visit:
    """One GET through :func:`fetch_with_store`: what was offered, what happened, what OpenSSL said."""

    number: int
    offered: str  # "nothing", "session ID" or "ticket"
    response: TLSResponse
    openssl_reused: bool | None

    @property
    def resumed(self) -> bool:
        return self.response.handshake.resumed

    @property
    def milliseconds(self) -> float:
        return handshake_time(self.response.transcript, self.response.timings) * 1000

    def summary(self) -> str:
        how = f"resumed ({self.offered})" if self.resumed else "full"
        return (
            f"handshake {self.number}: {how}, {round_trips(self.response.transcript)} round trip(s), "
            f"{self.milliseconds:.2f} ms; OpenSSL's session_reused: {self.openssl_reused}"
        )


def fetch_with_store(
    server: ResumptionServer, store: ClientSessionStore, *, tickets: bool = True, path: str = "/"
) -> Visit:
    """GET ``path`` offering the session ``store`` holds for the server's name, and keep the new one.

    ``tickets``: ask for a ticket (the ``session_ticket`` extension) rather than a session ID.
    """
    kept = store.get(server.server_name)
    if kept is not None and not tickets and kept.ticket:
        kept = None  # a ticket can only be offered with the extension
    seen = len(server.server.connections)
    response = tls_get(server.url + path.lstrip("/"), cafile=server.cafile, session_ticket=tickets, session=kept)
    handshake = response.handshake
    # Resumed: keep the session (with a renewed ticket, if the server sent one); else the new one, if any.
    store.store(server.server_name, (handshake.session or kept) if handshake.resumed else handshake.session)
    offered = "nothing" if kept is None else kept.resumable_by
    return Visit(seen + 1, offered, response, server.reused_at(seen))


@dataclass
class ResumptionRun:
    """``repeat`` visits of one kind (full, by session ID, by ticket); times are their handshake times."""

    kind: str
    visits: list[Visit]

    @property
    def response(self) -> TLSResponse:
        return self.visits[-1].response

    @property
    def milliseconds(self) -> list[float]:
        return [visit.milliseconds for visit in self.visits]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.milliseconds)

    @property
    def round_trips(self) -> int:
        return round_trips(self.response.transcript)

    @property
    def all_agree(self) -> bool:
        """Our client and OpenSSL agree on every visit: resumed (or not) as this kind should be."""
        should = self.kind != "full"
        return all(v.resumed is should and v.openssl_reused is should for v in self.visits)


@dataclass
class ResumptionComparison:
    full: ResumptionRun
    by_session_id: ResumptionRun
    by_ticket: ResumptionRun
    openssl_ticket: bytes  # what OpenSSL gave our client: opaque to it

    @property
    def runs(self) -> list[ResumptionRun]:
        return [self.full, self.by_session_id, self.by_ticket]

    def table(self) -> str:
        lines = [f"{'handshake':<12} {'round trips':>11} {'median ms':>10}   each run (ms)          OpenSSL agrees"]
        for run in self.runs:
            each = " ".join(f"{ms:.2f}" for ms in run.milliseconds)
            lines.append(f"{run.kind:<12} {run.round_trips:>11} {run.median_ms:>10.2f}   {each:<22} {run.all_agree}")
        saved = self.full.median_ms - min(self.by_session_id.median_ms, self.by_ticket.median_ms)
        lines.append(f"saved by resuming: {saved:.2f} ms and one round trip per connection (on loopback)")
        return "\n".join(lines)


def compare_resumption(repeat: int = 5, *, ciphers: str = RESUMPTION_CIPHERS) -> ResumptionComparison:
    """Full handshakes, resumptions by session ID and by ticket with a live OpenSSL, ``repeat`` of each.

    The three kinds take turns (full, ID, ticket, full, ...), so a busy machine slows them alike.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 50:
        raise ValueError(f"repeat must be a whole number from 1 to 50, not {repeat!r}")
    with openssl_resumption_server(ciphers) as server:
        fetch_with_store(server, ClientSessionStore())  # the first connection pays for OpenSSL's first-use costs
        by_id, by_ticket = ClientSessionStore(), ClientSessionStore()
        fetch_with_store(server, by_id, tickets=False)  # the full handshakes that make the sessions
        fetch_with_store(server, by_ticket, tickets=True)
        runs: dict[str, list[Visit]] = {"full": [], "session ID": [], "ticket": []}
        for _ in range(repeat):
            runs["full"].append(fetch_with_store(server, ClientSessionStore(), tickets=False))  # nothing to offer
            runs["session ID"].append(fetch_with_store(server, by_id, tickets=False))
            runs["ticket"].append(fetch_with_store(server, by_ticket, tickets=True))
    ticket_session = runs["ticket"][-1].response.handshake.session
    ticket = ticket_session.ticket if ticket_session is not None and ticket_session.ticket else b""
    return ResumptionComparison(
        ResumptionRun("full", runs["full"]),
        ResumptionRun("session ID", runs["session ID"]),
        ResumptionRun("ticket", runs["ticket"]),
        ticket,
    )


# -- a ticket from our own server ----------------------------------------------------------------------
@dataclass
class ServerTicket:
    """A ticket our server sealed, the keys that sealed it, and both handshakes (full, then resumed by it)."""

    ticket: bytes
    keys: TicketKeys
    now: float  # the server's clock (time.time()) just after the resumed handshake
    full: HandshakeComplete
    resumed: HandshakeComplete


def ticket_from_our_server(files: ServerFiles | None = None) -> ServerTicket:
    """Our client gets a ticket from our server (``TicketKeys``), then resumes with it."""
    with contextlib.ExitStack() as stack:
        if files is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-ticket-")))
            files = CoursePKI.create().write_server_files(folder, ("localhost", "127.0.0.1"))
        keys = TicketKeys()
        issued = files.issued
        server = stack.enter_context(
            TLSPageServer([issued.certificate], issued.private_key, ticket_keys=keys, clock=time.time)
        )
        url = f"https://localhost:{server.port}/"
        first = tls_get(url, cafile=files.ca_path, session_ticket=True)
        session = first.handshake.session
        if session is None or not session.ticket:
            raise HandshakeError("our server sent no ticket")
        second = tls_get(url, cafile=files.ca_path, session_ticket=True, session=session)
    return ServerTicket(session.ticket, keys, time.time(), first.handshake, second.handshake)


# -- renegotiation -------------------------------------------------------------------------------------
@dataclass
class RecordUnderKeys:
    """One record of a renegotiated connection: which handshake's keys protect it, and what opening says."""

    index: int
    entry: TranscriptEntry
    keys_of: int | None  # 0 for the first handshake's keys, 1 for the renegotiation's...; None: plaintext
    sequence_number: int
    opens_with_its_keys: bool | None = None
    opens_with_previous_keys: bool | None = None  # None: there were no previous keys


def records_under_keys(
    transcript: Sequence[TranscriptEntry], handshakes: Sequence[HandshakeComplete]
) -> list[RecordUnderKeys]:
    """Each record with the keys that protect it: a direction switches to the next handshake's keys at its
    ChangeCipherSpec (and its sequence numbers restart at 0); every protected record is opened with those
    keys and, once there were earlier ones, with the previous handshake's keys too."""
    changes = {CLIENT_TO_SERVER: -1, SERVER_TO_CLIENT: -1}
    numbers = {CLIENT_TO_SERVER: 0, SERVER_TO_CLIENT: 0}
    result = []
    for index, entry in enumerate(transcript):
        epoch = changes[entry.direction]
        if not entry.encrypted or epoch < 0 or epoch >= len(handshakes):
            row = RecordUnderKeys(index, entry, None, 0)
        else:
            number = numbers[entry.direction]
            numbers[entry.direction] += 1
            row = RecordUnderKeys(index, entry, epoch, number)
            row.opens_with_its_keys = _opens(entry, handshakes[epoch], number)
            if epoch > 0:
                row.opens_with_previous_keys = _opens(entry, handshakes[epoch - 1], number)
        result.append(row)
        if entry.content_type == ContentType.change_cipher_spec:
            changes[entry.direction] += 1
            numbers[entry.direction] = 0
    return result


def _opens(entry: TranscriptEntry, handshake: HandshakeComplete, sequence_number: int) -> bool:
    if handshake.key_block is None:
        return False
    record = ProtectedRecord(
        "", entry.direction, sequence_number, entry.record, suite_params(handshake.cipher_suite),
        handshake.key_block, handshake.encrypt_then_mac,
    )  # fmt: skip
    return record.open().plaintext == entry.plaintext and record.open().error is None


@dataclass
class RenegotiationRun:
    """One long connection with OpenSSL: a page, a renegotiation, another page (or why it stopped)."""

    transcript: list[TranscriptEntry]
    timings: list[Timing]
    handshakes: list[HandshakeComplete]
    pages: list[bytes]
    refused: str = ""  # OpenSSL declined to renegotiate: what our client was told

    def records(self) -> list[RecordUnderKeys]:
        return records_under_keys(self.transcript, self.handshakes)


def get_page(stream: TLSStream, path: str) -> bytes:
    """One keep-alive GET on an open stream; the body (``keep_alive_pages`` always sends Content-Length)."""
    stream.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    received = b""
    while True:
        head, found, body = received.partition(b"\r\n\r\n")
        if found:
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                return body[:length]
        chunk = stream.recv()
        if not chunk or len(received) > MAX_REQUEST_HEAD:
            raise HandshakeError(f"OpenSSL's answer to GET {path} ended early: {received[:200]!r}")
        received += chunk


def renegotiate_with_openssl(*, allow: bool = True, ciphers: str = RESUMPTION_CIPHERS) -> RenegotiationRun:
    """GET /before, renegotiate on the same connection, GET /after; ``allow=False`` keeps OpenSSL 3.0's
    default, which declines a client's renegotiation (a no_renegotiation warning): the run records that,
    and the second page comes under the first handshake's keys."""
    with (
        openssl_resumption_server(ciphers, allow_client_renegotiation=allow) as server,
        open_tls("127.0.0.1", server.server.port, "localhost", cafile=server.cafile) as stream,
    ):
        pages = [get_page(stream, "/before")]
        renewed = stream.renegotiate()
        refused = "" if renewed is not None else "OpenSSL declined (warning no_renegotiation): the keys stay"
        pages.append(get_page(stream, "/after"))
        handshakes = list(stream.client.handshakes)
        transcript, timings = list(stream.transcript), list(stream.timings)
    return RenegotiationRun(transcript, timings, handshakes, pages, refused)


# -- the 2009 attack, live: a victim's ClientHello spliced into the attacker's connection -----------------
ATTACK_PREFIX = b"GET /pay?to=mallory HTTP/1.1\r\nX-Ignore: "


@dataclass
class SpliceOutcome:
    """What a server did when an attacker forwarded a victim's ClientHello inside his own connection."""

    target: str
    attacker_finished: bytes  # the verify_data RFC 5746 makes the server expect in renegotiation_info
    victim_renegotiation_info: bytes | None  # what the victim's hello carried (empty: "my first handshake")
    alert: str  # the alert the server answered with ("" if none)
    fatal: bool = False  # a fatal alert ends the connection; a warning (no_renegotiation) leaves it open
    server_error: str = ""  # the server's own account (OpenSSL's reason), if it gave one
    bound: bool = True  # the attacker's own handshake agreed RFC 5746 (renegotiation_info in both hellos)

    def summary(self) -> str:
        carried = self.victim_renegotiation_info
        shown = "none" if carried is None else (carried.hex() or "empty")
        return "\n".join(
            [
                f"{self.target}: the attacker's connection is up and his prefix {ATTACK_PREFIX!r} was sent",
                (
                    f"the server now expects renegotiation_info = the attacker's client verify_data "
                    f"{self.attacker_finished.hex()}"
                    if self.bound
                    else "the attacker's handshake left RFC 5746 out: a renegotiation would be bound to nothing"
                ),
                f"the victim's ClientHello (forwarded, encrypted under the attacker's keys) carries: {shown}",
                f"the server answered: {self.alert or 'nothing'}"
                + (" (fatal: the connection is over)" if self.fatal else " (a warning: the connection goes on)")
                + (f"; its own reason: {self.server_error}" if self.server_error else ""),
            ]
        )


def _client_verify_data(transcript: Sequence[TranscriptEntry]) -> bytes:
    finished = [m for e in transcript if e.direction == CLIENT_TO_SERVER for m in e.messages if isinstance(m, Finished)]
    return finished[-1].verify_data if finished else b""


def splice_victim_hello(
    host: str,
    port: int,
    cafile: Path,
    server_name: str = "localhost",
    *,
    legacy_attacker: bool = False,
    timeout: float = 5.0,
) -> SpliceOutcome:
    """The 2009 renegotiation attack against the server at ``host:port``, as far as RFC 5746 lets it go.

    The attacker (our client) completes his own handshake and sends his request prefix; a victim (a fresh
    client core, never connected) makes its first ClientHello, and the attacker sends that hello to the
    server as a handshake record protected with *his* connection's keys: a renegotiation, for the server.
    A server that follows RFC 5746 finds the victim's empty renegotiation_info where the attacker's
    Finished should be, and aborts (handshake_failure); one that refuses client renegotiation altogether
    answers no_renegotiation.  ``legacy_attacker``: the attacker's own handshake leaves RFC 5746 out (a
    ClientHello without renegotiation_info or the SCSV, as before 2010), so there is no Finished to bind
    to; a server must then refuse any renegotiation on that connection.
    """
    victim = TLSClient(server_name, cafile=cafile)
    victim.start()
    victim_records = victim.data_to_send()
    hello_fragment = victim_records[RECORD_HEADER_LENGTH:]  # one record: the victim's ClientHello
    hello, _spans = decode_handshake(hello_fragment)
    info = next((e for e in hello.extensions if isinstance(e, RenegotiationInfoExtension)), None)
    options: dict[str, Any] = {}
    if legacy_attacker:
        options["stages"] = Stages(build_client_hello=partial(client_hello_for, secure_renegotiation=False))
    stream = open_tls(host, port, server_name, cafile=cafile, **options)
    try:
        answer = next(m for e in stream.transcript for m in e.messages if isinstance(m, ServerHello))
        bound = any(isinstance(e, RenegotiationInfoExtension) for e in answer.extensions)
        stream.send(ATTACK_PREFIX)
        handshake = stream.handshake
        assert handshake.key_block is not None
        sent = sum(1 for e in stream.transcript if e.direction == CLIENT_TO_SERVER and e.encrypted)
        protection = RecordProtection.client_write(
            handshake.key_block,
            suite_params(handshake.cipher_suite),
            sequence_number=sent,
            encrypt_then_mac=handshake.encrypt_then_mac,
        )
        stream.sock.sendall(protection.protect(ContentType.handshake, ProtocolVersion.TLS1_2, hello_fragment))
        alert, fatal = _first_alert(stream.client, stream.sock, time.monotonic() + timeout)
        attacker_finished = _client_verify_data(stream.transcript)
    finally:
        # Not stream.close(): its close_notify would carry a sequence number our spliced record already used.
        stream.sock.close()
    carried = None if info is None else info.renegotiated_connection
    return SpliceOutcome(f"{host}:{port}", attacker_finished, carried, alert, fatal, bound=bound)


def _first_alert(client: TLSClient, sock: Any, deadline: float) -> tuple[str, bool]:
    """Read the server's answer into the attacker's core until an alert comes: (its name, fatal?)."""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        try:
            events = client.receive_data(data)
        except PeerAlert as error:
            return TLSAlert(error.description).name, True
        for event in events:
            if isinstance(event, AlertReceived) and event.description != TLSAlert.close_notify:
                return TLSAlert(event.description).name, False
        if not data:
            break
    return "", False


def splice_against_openssl(*, allow_client_renegotiation: bool = True, legacy_attacker: bool = False) -> SpliceOutcome:
    """:func:`splice_victim_hello` against OpenSSL (which must refuse it), with OpenSSL's own reason."""
    with openssl_resumption_server(allow_client_renegotiation=allow_client_renegotiation) as server:
        outcome = splice_victim_hello("127.0.0.1", server.server.port, server.cafile, legacy_attacker=legacy_attacker)
        outcome.target = "OpenSSL" + ("" if allow_client_renegotiation else " (its defaults)")
        if outcome.fatal:
            outcome.server_error = server.server.error_of(len(server.server.connections) - 1)
    return outcome


def splice_against_our_server(
    files: ServerFiles | None = None, *, legacy_attacker: bool = False, **server_options: Any
) -> SpliceOutcome:
    """:func:`splice_victim_hello` against our own server (``TLSPageServer``; ``server_options`` go to it)."""
    with contextlib.ExitStack() as stack:
        if files is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-splice-")))
            files = CoursePKI.create().write_server_files(folder, ("localhost", "127.0.0.1"))
        issued = files.issued
        server = stack.enter_context(TLSPageServer([issued.certificate], issued.private_key, **server_options))
        outcome = splice_victim_hello("127.0.0.1", server.port, files.ca_path, legacy_attacker=legacy_attacker)
        outcome.target = "our server"
        if outcome.fatal:
            deadline = time.monotonic() + 1.0
            while not (server.connections and server.connections[-1].error) and time.monotonic() < deadline:
                time.sleep(0.005)  # the server's thread records the error just after sending its alert
            if server.connections and server.connections[-1].error:
                outcome.server_error = str(server.connections[-1].error)
    return outcome


# -- exercise 11's live steps: the learner's functions in our client and our server -------------------
RenegotiationInfoFunction = Callable[[str, bytes, bytes], bytes]
"""Exercise 11's q1: ``(sender, client_verify_data, server_verify_data) -> renegotiation_info``."""


@dataclass
class LearnerRenegotiationRun:
    """One connection with OpenSSL that renegotiated (or tried to) with the learner's renegotiation_info.

    ``handshakes``: how many handshakes completed on our side (2: the first and the renegotiation);
    ``openssl_logged``: how many of them OpenSSL's key log holds with our master secret.
    """

    setup: str
    handshakes: int = 0
    page: bytes = b""  # what came after the renegotiation
    error: str = ""  # our side's error, if the renegotiation failed
    openssl_error: str = ""  # what OpenSSL said about it
    openssl_logged: int = 0

    @property
    def renegotiated(self) -> bool:
        return self.handshakes == 2 and self.openssl_logged == 2 and bool(self.page)

    def line(self) -> str:
        """The summary on one line (a grader's feedback has one line per test)."""
        return "; ".join(part.strip() for part in self.summary().splitlines())

    def summary(self) -> str:
        lines = [f"{self.setup}:"]
        if self.renegotiated:
            lines.append(f"  renegotiated; after it: {self.page[:70]!r}")
            lines.append("  OpenSSL's key log holds both handshakes, with our master secrets")
        else:
            lines.append(f"  handshakes completed on our side: {self.handshakes}")
            if self.error:
                lines.append(f"  ours: {self.error}")
            lines.append(f"  OpenSSL: {self.openssl_error or 'no error reported'}")
        return "\n".join(lines)


def _logged(keylog: Path, handshakes: Sequence[HandshakeComplete]) -> int:
    log = parse_keylog(keylog.read_text()) if keylog.exists() else parse_keylog("")
    return sum(1 for h in handshakes if log.master_secret(h.client_random) == h.master_secret)


def learner_client_renegotiates(
    renegotiation_info: RenegotiationInfoFunction | None, *, timeout: float = 5.0
) -> LearnerRenegotiationRun:
    """Our client (the learner's ``renegotiation_info`` builds its renegotiating ClientHello and checks the
    ServerHello) renegotiates with OpenSSL (client renegotiation allowed, as ``s_server
    -client_renegotiation``): GET, renegotiate, GET.  Reported, never raised."""
    run = LearnerRenegotiationRun("our client renegotiates with OpenSSL's server")
    stages = Stages() if renegotiation_info is None else Stages(renegotiation_info=renegotiation_info)
    with tempfile.TemporaryDirectory(prefix="handshakes-ex11-") as folder:
        keylog = Path(folder) / "openssl.keys"
        with openssl_resumption_server(allow_client_renegotiation=True, keylog_path=keylog) as server:
            try:
                with open_tls(
                    "127.0.0.1", server.server.port, "localhost", cafile=server.cafile, stages=stages, timeout=timeout
                ) as stream:
                    try:
                        get_page(stream, "/before")
                        if stream.renegotiate() is None:
                            run.error = "OpenSSL declined to renegotiate"
                        else:
                            run.page = get_page(stream, "/after")
                    finally:
                        handshakes = list(stream.client.handshakes)
                        run.handshakes = len(handshakes)
            except (HandshakeError, OSError) as error:
                run.error = f"{type(error).__name__}: {error}"
                run.openssl_error = server.server.error_of(0, wait=1.0)
            else:
                run.openssl_logged = _logged(keylog, handshakes)
    return run


_S_CLIENT_ENDED = re.compile(rb"</html>|alert|error|errno", re.IGNORECASE)


def s_client_renegotiates_with_learner_server(
    renegotiation_info: RenegotiationInfoFunction | None, *, timeout: float = 5.0
) -> LearnerRenegotiationRun:
    """``openssl s_client`` connects to our server (the learner's ``renegotiation_info`` checks its
    renegotiating ClientHello and builds our ServerHello's), types ``R`` (renegotiate) then a GET.
    Reported, never raised."""
    run = LearnerRenegotiationRun("openssl s_client types R to our server")
    stages = Stages() if renegotiation_info is None else Stages(renegotiation_info=renegotiation_info)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-ex11-")))
        files = CoursePKI.create().write_server_files(folder, ("localhost", "127.0.0.1"))
        keylog = folder / "s_client.keys"
        issued = files.issued
        server = stack.enter_context(
            TLSPageServer([issued.certificate], issued.private_key, timeout=timeout, stages=stages)
        )
        peer = stack.enter_context(
            s_client(
                server.port, "-tls1_2", "-CAfile", str(files.ca_path), "-verify_return_error",
                "-servername", "localhost", "-keylogfile", str(keylog), timeout=timeout,
            )
        )  # fmt: skip
        peer.read_output(re.compile(rb"Verify return code: 0"), wait=timeout)
        with contextlib.suppress(OSError):  # s_client exits when the renegotiation fails: a closed pipe
            peer.write(b"R\n")  # s_client: SSL_renegotiate (client-initiated, RFC 5746)
            peer.read_output(re.compile(rb"RENEGOTIATING"), wait=timeout)
            peer.write(b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        printed = peer.read_output(_S_CLIENT_ENDED, wait=timeout)
        deadline = time.monotonic() + timeout
        while not (server.connections and server.connections[-1].finished) and time.monotonic() < deadline:
            peer.read_output(_S_CLIENT_ENDED, wait=0.05)
        record = server.connections[-1] if server.connections else None
        handshakes = [] if record is None or record.handshake is None else [record.handshake]
        if record is not None and record.handshake is not None and record.handshake.renegotiation == 1:
            run.handshakes = 2
            run.page = printed[printed.find(b"<!doctype") :] if b"<!doctype" in printed else printed
            run.openssl_logged = _s_client_logged(keylog, record.handshake)
        else:
            run.handshakes = len(handshakes)
            run.error = str(record.error) if record is not None and record.error else "no renegotiation"
            run.openssl_error = _openssl_complaint(peer.output)
    return run


def _s_client_logged(keylog: Path, last: HandshakeComplete) -> int:
    """How many handshakes s_client logged, if the last one carries our server's master secret (else 0)."""
    log = parse_keylog(keylog.read_text()) if keylog.exists() else parse_keylog("")
    return len(log.entries) if log.master_secret(last.client_random) == last.master_secret else 0


def _openssl_complaint(output: bytes) -> str:
    """The lines where an openssl program said what went wrong (its error queue, its alerts)."""
    lines = [
        line.strip() for line in output.decode("utf-8", "replace").splitlines()
        if re.search(r"error|alert|mismatch", line, re.IGNORECASE) and "Verify return code" not in line
    ]  # fmt: skip
    return " / ".join(lines[:3])


def run_learner_renegotiation(
    renegotiation_info: RenegotiationInfoFunction | None, *, timeout: float = 5.0
) -> list[LearnerRenegotiationRun]:
    """The learner's ``renegotiation_info`` in both roles: our client renegotiating with OpenSSL's server,
    then ``openssl s_client`` renegotiating with our server.  Reported, never raised."""
    return [
        learner_client_renegotiates(renegotiation_info, timeout=timeout),
        s_client_renegotiates_with_learner_server(renegotiation_info, timeout=timeout),
    ]


OpenTicketFunction = Callable[[bytes, bytes, bytes, float, int], "bytes | None"]
"""Exercise 11's q2: ``(ticket, aes_key, hmac_key, now, lifetime) -> state or None``."""

_S_CLIENT_OUTCOME = re.compile(rb"^(New|Reused), ", re.MULTILINE)


@dataclass
class LearnerTicketRun:
    """``openssl s_client`` against our server, whose ``open_ticket`` stage is the learner's function.

    ``outcomes``: s_client's word for each connection of ``-reconnect`` (``New`` or ``Reused``; six
    connections, the first must be New); ``tampered``: what s_client said when it offered, with
    ``-sess_in``, a ticket of ours with one bit flipped (right: New, a full handshake), and how it ended.
    """

    outcomes: list[str] = field(default_factory=list)
    resumed_by: list[str | None] = field(default_factory=list)  # our server's record of each connection
    tampered: str = ""
    tampered_error: str = ""  # s_client's complaint on the tampered run, if it failed
    server_error: str = ""  # our server's error on the tampered run, if any

    @property
    def reused_five_times(self) -> bool:
        return self.outcomes == ["New"] + ["Reused"] * 5

    @property
    def tampered_refused(self) -> bool:
        return self.tampered == "New" and not self.tampered_error

    def line(self) -> str:
        return "; ".join(part.strip() for part in self.summary().splitlines())

    def summary(self) -> str:
        lines = [
            "openssl s_client -reconnect against our server: " + (", ".join(self.outcomes) or "no handshake"),
            "  a ticket with one bit flipped (-sess_in): "
            + (self.tampered or "no handshake")
            + (f" ({self.tampered_error})" if self.tampered_error else "")
            + (f"; our server: {self.server_error}" if self.server_error else ""),
        ]
        return "\n".join(lines)


class _TicketsOnly(SessionCache):
    """A session cache that finds nothing: s_client offers its ticket *and* a session ID, and the exercise's
    server must resume by the ticket alone (the learner's ``open_ticket``), never by ID."""

    def get(self, session_id: bytes, now: float) -> Session | None:
        return None


def _flip_ticket_bit(session_pem: bytes, key_name: bytes, offset: int) -> bytes | None:
    """s_client's saved session (PEM) with one bit of our ticket flipped at ``offset`` from its start."""
    lines = session_pem.strip().splitlines()
    der = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    at = der.find(key_name)
    if at < 0:
        return None
    der[at + offset] ^= 0x01
    body = base64.encodebytes(bytes(der)).replace(b"\n", b"")
    wrapped = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([lines[0], *wrapped, lines[-1]]) + b"\n"


def _s_client_run(port: int, cafile: Path, *options: str, timeout: float) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PeerUnavailable("the openssl program is not installed (it is on PATH nowhere)")
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(cafile),
         "-verify_return_error", "-servername", "localhost", "-ign_eof", *options],
        input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", capture_output=True,
        timeout=timeout * 4,
    )  # fmt: skip
    return (result.stdout + result.stderr).decode("utf-8", "replace")


def run_learner_ticket(
    open_ticket: OpenTicketFunction | None, *, files: ServerFiles | None = None, timeout: float = 5.0
) -> LearnerTicketRun:
    """Our server (``TicketKeys``; the learner's ``open_ticket`` opens what clients bring back) and
    ``openssl s_client -reconnect`` (one full handshake, five resumptions), then s_client offering a ticket
    of ours with one bit of its IV flipped (which moves a bit of the master secret inside, if it is
    decrypted without its MAC checked).  Reported, never raised."""
    run = LearnerTicketRun()
    stages = Stages() if open_ticket is None else Stages(open_ticket=open_ticket)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-ex11-")))
        if files is None:
            files = CoursePKI.create().write_server_files(folder, ("localhost", "127.0.0.1"))
        issued = files.issued
        keys = TicketKeys()
        server = stack.enter_context(
            TLSPageServer(
                [issued.certificate], issued.private_key, timeout=timeout, ticket_keys=keys,
                session_cache=_TicketsOnly(), stages=stages,
            )
        )  # fmt: skip
        output = _s_client_run(server.port, files.ca_path, "-reconnect", timeout=timeout)
        run.outcomes = [m.group(1).decode() for m in _S_CLIENT_OUTCOME.finditer(output.encode())]
        saved = folder / "session.pem"
        _s_client_run(server.port, files.ca_path, "-sess_out", str(saved), timeout=timeout)
        flipped = _flip_ticket_bit(saved.read_bytes(), keys.keys[-1].name, 16 + 5) if saved.exists() else None
        if flipped is None:
            run.tampered_error = "s_client saved no session with one of our tickets"
            return run
        tampered = folder / "tampered.pem"
        tampered.write_bytes(flipped)
        before = server.accepted
        output = _s_client_run(server.port, files.ca_path, "-sess_in", str(tampered), timeout=timeout)
        found = _S_CLIENT_OUTCOME.search(output.encode())
        run.tampered = found.group(1).decode() if found else ""
        if "Hello from the Handshakes TLS server" not in output:
            run.tampered_error = _openssl_complaint(output.encode()) or "no page"
        deadline = time.monotonic() + timeout
        while server.accepted > before and not server.connections[-1].finished and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.connections and server.connections[-1].error:
            run.server_error = str(server.connections[-1].error)
        run.resumed_by = [record.resumed_by for record in list(server.connections)[:6]]
    return run


@dataclass(frozen=True)
class RenegotiationBinding:
    """RFC 5746 in a renegotiated connection: the first handshake's Finished verify_data of each side, and
    what the renegotiation's hellos carried in renegotiation_info (None: no such extension)."""

    client_verify_data: bytes
    server_verify_data: bytes
    client_hello_info: bytes | None
    server_hello_info: bytes | None


def renegotiation_binding(transcript: Sequence[TranscriptEntry]) -> RenegotiationBinding:
    """The first renegotiation's binding in ``transcript`` (a connection that renegotiated once at least)."""
    finished: dict[str, bytes] = {}
    infos: dict[str, bytes | None] = {}
    hellos = 0
    for entry in transcript:
        for message in entry.messages:
            if isinstance(message, Finished) and hellos == 1:
                finished.setdefault(entry.direction, message.verify_data)
            elif isinstance(message, ClientHello | ServerHello):
                hellos += isinstance(message, ClientHello)
                if hellos == 2:
                    info = next((e for e in message.extensions if isinstance(e, RenegotiationInfoExtension)), None)
                    infos[type(message).__name__] = None if info is None else info.renegotiated_connection
    if hellos < 2 or len(finished) < 2:
        raise HandshakeError("this connection did not renegotiate after a complete first handshake")
    return RenegotiationBinding(
        finished[CLIENT_TO_SERVER], finished[SERVER_TO_CLIENT], infos.get("ClientHello"), infos.get("ServerHello")
    )
