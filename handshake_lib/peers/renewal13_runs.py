"""Lesson 11's TLS 1.3 runs: PSK resumption with OpenSSL, 0-RTT and its replay against our server, KeyUpdate.

Theory of operation
-------------------
TLS 1.3 keeps both ideas of the 1.2 half of the lesson (:mod:`handshake_lib.peers.renewal_runs`) and
changes how each is done:

* Resumption.  After the handshake the server sends NewSessionTicket (RFC 8446 4.6.1); both sides derive
  the ticket's PSK from the ``resumption_master_secret`` and the ticket's nonce, so the secret never travels.
  :func:`compare_psk_resumption` runs full handshakes and resumptions with the PSK (``psk_dhe_ke``: a fresh
  ECDHE too; ``psk_ke``: the PSK alone, which OpenSSL refuses unless told ``SSL_OP_ALLOW_NO_DHE_KEX``)
  against a live OpenSSL (Python ``ssl``, TLS 1.3 only), and reads OpenSSL's own ``session_reused`` for
  each; :func:`tickets_issued` lists the tickets of one connection with the PSK derived from each, and the
  one our client kept.
* 0-RTT.  :func:`zero_rtt_replay` resumes with early data against our :class:`~handshake_lib.net.tls.TLSPageServer`
  (0-RTT on, behind its :class:`~handshake_lib.tls.tickets13.ReplayWindow`), then sends the very bytes of
  that first flight again over a raw socket, as an attacker on the path would; and the other order (the
  attacker's copy first, the real client's second), where the real client's early data is refused and its
  request goes again after the handshake, so the server's application saw it twice (RFC 8446 section 8).
* Renewal.  :func:`key_update_with_openssl` keeps one TLS 1.3 connection to OpenSSL open: a page, KeyUpdate
  with ``update_requested`` (OpenSSL answers with its own), another page; :func:`records_by_generation` opens
  every protected record with the traffic secret of its generation, derived from *OpenSSL's* key log
  (generation 0 is logged, later ones are HKDF-Expand-Label(secret, "traffic upd")), and with the previous
  generation's, which must fail.

This module drives peers over sockets, so it sits in ``peers`` above the sans-I/O ``tls`` package.
"""

from __future__ import annotations

import contextlib
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import net
from ..errors import HandshakeError
from ..net.tls import TLSPageServer, TLSResponse, TLSStream, open_tls, session_key, tls_get
from ..pki.builder import CoursePKI, ServerFiles
from ..tls.captured import CLIENT_TO_SERVER, SERVER_TO_CLIENT
from ..tls.client13 import TLS13Client
from ..tls.connection import ApplicationData, TranscriptEntry
from ..tls.constants import ContentType, PskKeyExchangeMode
from ..tls.key_schedule13 import next_application_secret, resumption_psk
from ..tls.keylog import KeyLog, parse_keylog
from ..tls.messages13 import KeyUpdate, NewSessionTicket13
from ..tls.record13 import RecordOpener13, suite13
from ..tls.sessions import ClientSessionStore
from ..tls.tickets13 import ResumptionTicket
from .openssl import PythonSSLServer, server_context
from .renewal_runs import PAGE, ResumptionServer, Visit, get_page, keep_alive_pages, round_trips

__all__ = [
    "OP_ALLOW_NO_DHE_KEX",
    "openssl13_server",
    "TicketIssued",
    "tickets_issued",
    "PSKRun",
    "PSKComparison",
    "compare_psk_resumption",
    "not_sent_on_resumption",
    "ReplayAttempt",
    "ZeroRTTRun",
    "zero_rtt_replay",
    "first_flight",
    "RecordGeneration",
    "KeyUpdateRun",
    "key_update_with_openssl",
    "records_by_generation",
    "renewal_records",
]

# OpenSSL resumes a psk_ke-only ClientHello (no fresh (EC)DHE) only with SSL_OP_ALLOW_NO_DHE_KEX; Python's ssl
# has no name for it (OpenSSL 3.0: 1 << 10).
OP_ALLOW_NO_DHE_KEX = 0x400
EARLY_DATA_SIZE = 16384
MAX_PAGE = 1 << 20  # our server's page is a few hundred bytes: anything bigger is not its answer


@contextlib.contextmanager
def openssl13_server(
    *, allow_psk_ke: bool = False, files: ServerFiles | None = None, keylog_path: Path | None = None
) -> Iterator[ResumptionServer]:
    """OpenSSL (Python ``ssl``) speaking TLS 1.3 only, with its default tickets (two after a full handshake, one
    after a resumption), on loopback while the block runs; keep-alive HTTP/1.1 pages; ``reused`` is OpenSSL's
    ``session_reused`` per connection.  ``allow_psk_ke``: SSL_OP_ALLOW_NO_DHE_KEX."""
    with tempfile.TemporaryDirectory(prefix="handshakes-renewal13-") as folder:
        if files is None:
            files = CoursePKI.create().write_server_files(Path(folder), ("localhost", "127.0.0.1"))
        context = server_context(
            files.cert_path, files.key_path, minimum_version=ssl.TLSVersion.TLSv1_3, keylog_path=keylog_path
        )
        if allow_psk_ke:
            context.options |= OP_ALLOW_NO_DHE_KEX
        reused: list[bool] = []

        def handler(tls: ssl.SSLSocket) -> None:
            reused.append(tls.session_reused)
            keep_alive_pages(tls, PAGE)

        with PythonSSLServer(context, handler) as server:
            yield ResumptionServer(f"https://localhost:{server.port}/", files.ca_path, server, reused)


# -- 1. tickets and PSK resumption ----------------------------------------------------------------------
@dataclass(frozen=True)
class TicketIssued:
    """One NewSessionTicket of a connection, with the PSK both sides derive from it."""

    message: NewSessionTicket13
    resumption_master_secret: bytes
    psk: bytes  # HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length)
    kept: bool  # our client's store kept this one (the newest; each ticket is offered once)

    def lines(self) -> list[str]:
        m = self.message
        early = next((getattr(e, "max_early_data_size", None) for e in m.extensions), None)
        return [
            f"ticket_lifetime: {m.ticket_lifetime} s ({m.ticket_lifetime / 3600:g} h)",
            f"ticket_age_add:  {m.ticket_age_add} (0x{m.ticket_age_add:08x})",
            f"ticket_nonce:    {m.ticket_nonce.hex() or '(empty)'}",
            f"ticket:          {len(m.ticket)} opaque bytes {m.ticket[:16].hex()}...",
            f"early_data:      {'max ' + str(early) + ' bytes' if early is not None else 'not allowed'}",
            f"PSK = HKDF-Expand-Label(resumption_master_secret, 'resumption', nonce, {len(self.psk)})",
            f"    = {self.psk.hex()}",
            f"kept by our client: {self.kept}",
        ]


def tickets_issued(response: TLSResponse, kept: ResumptionTicket | None = None) -> list[TicketIssued]:
    """The tickets the server sent on this connection, each with its PSK derived from the connection's
    ``resumption_master_secret`` (the client's key schedule); ``kept``: the one the client stored."""
    schedule = response.handshake.key_schedule
    if schedule is None:
        raise ValueError("not a TLS 1.3 handshake: no key schedule")
    master = schedule.value("resumption_master_secret")
    hash_name = schedule.hash_name
    issued = []
    for entry in response.transcript:
        for message in entry.messages:
            if isinstance(message, NewSessionTicket13):
                psk = resumption_psk(hash_name, master, message.ticket_nonce)
                same = kept is not None and kept.ticket == message.ticket and kept.psk == psk
                issued.append(TicketIssued(message, master, psk, same))
    return issued


def not_sent_on_resumption(full: TLSResponse, resumed: TLSResponse) -> list[str]:
    """Handshake messages of the full handshake that the resumed one did not send (by type name)."""

    def names(response: TLSResponse) -> list[str]:
        return [type(m).__name__ for e in response.transcript for m in e.messages if not isinstance(m, ApplicationData)]

    kept = set(names(resumed))
    return [name for name in dict.fromkeys(names(full)) if name not in kept]


@dataclass
class PSKRun:
    """``repeat`` visits of one kind: "full", "psk_dhe_ke" or "psk_ke" (the last two resume with a ticket)."""

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
        should = self.kind != "full"
        return all(v.resumed is should and v.openssl_reused is should for v in self.visits)


@dataclass
class PSKComparison:
    full: PSKRun
    psk_dhe_ke: PSKRun
    psk_ke: PSKRun
    psk_ke_by_default: Visit  # psk_ke only, to OpenSSL without SSL_OP_ALLOW_NO_DHE_KEX: a full handshake
    tickets: list[TicketIssued]  # the first full handshake's tickets
    kept: ResumptionTicket | None

    @property
    def runs(self) -> list[PSKRun]:
        return [self.full, self.psk_dhe_ke, self.psk_ke]

    def table(self) -> str:
        columns = f"{'handshake':<11} {'round trips':>11} {'median ms':>10}  {'key exchange':<16} {'each run (ms)':<24}"
        lines = [columns + " OpenSSL agrees"]
        for run in self.runs:
            group = run.response.handshake.group
            exchange = "none (PSK only)" if group is None else f"group 0x{int(group):04x}"
            each = " ".join(f"{ms:.2f}" for ms in run.milliseconds)
            measured = f"{run.kind:<11} {run.round_trips:>11} {run.median_ms:>10.2f}  {exchange:<16} {each:<24}"
            lines.append(f"{measured} {run.all_agree}")
        default = self.psk_ke_by_default
        lines.append(
            f"psk_ke to OpenSSL's defaults: {'resumed' if default.resumed else 'full handshake'} "
            f"(session_reused {default.openssl_reused})"
        )
        return "\n".join(lines)


def _visit13(
    server: ResumptionServer, store: ClientSessionStore, number: int, psk_modes: Sequence[int] = (1,)
) -> Visit:
    """One GET with our TLS 1.3 client, offering the ticket ``store`` holds (used once; the newest new one kept)."""
    port = server.server.port
    offered = store.get(session_key("localhost", port))
    response = tls_get(
        server.url, cafile=server.cafile, tls_version="1.3", session_store=store, psk_modes=tuple(psk_modes)
    )
    return Visit(number, "ticket" if offered is not None else "nothing", response, server.reused_at(number - 1))


def compare_psk_resumption(repeat: int = 5) -> PSKComparison:
    """Full TLS 1.3 handshakes and resumptions with a ticket's PSK (psk_dhe_ke, psk_ke) with a live OpenSSL,
    ``repeat`` of each, taking turns; then psk_ke to an OpenSSL left at its defaults."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 50:
        raise ValueError(f"repeat must be a whole number from 1 to 50, not {repeat!r}")
    dhe, ke = (PskKeyExchangeMode.psk_dhe_ke,), (PskKeyExchangeMode.psk_ke,)
    with openssl13_server(allow_psk_ke=True) as server:
        count = 0

        def visit(store: ClientSessionStore, modes: Sequence[int] = dhe) -> Visit:
            nonlocal count
            count += 1
            return _visit13(server, store, count, modes)

        first_store = ClientSessionStore()
        first = visit(first_store)  # also pays OpenSSL's first-use costs
        kept = first_store.get(session_key("localhost", server.server.port))
        tickets = tickets_issued(first.response, kept)
        stores = {"psk_dhe_ke": ClientSessionStore(), "psk_ke": ClientSessionStore()}
        for store in stores.values():
            visit(store)  # the full handshakes that give each store its first ticket
        runs: dict[str, list[Visit]] = {"full": [], "psk_dhe_ke": [], "psk_ke": []}
        for _ in range(repeat):
            runs["full"].append(visit(ClientSessionStore()))
            runs["psk_dhe_ke"].append(visit(stores["psk_dhe_ke"], dhe))
            runs["psk_ke"].append(visit(stores["psk_ke"], ke))
    with openssl13_server() as server:
        store = ClientSessionStore()
        _visit13(server, store, 1)
        by_default = _visit13(server, store, 2, ke)
    return PSKComparison(
        PSKRun("full", runs["full"]), PSKRun("psk_dhe_ke", runs["psk_dhe_ke"]), PSKRun("psk_ke", runs["psk_ke"]),
        by_default, tickets, kept,
    )  # fmt: skip


# -- 2. 0-RTT and its replay ----------------------------------------------------------------------------
def first_flight(transcript: Sequence[TranscriptEntry]) -> bytes:
    """The bytes of every record our client sent before the server's first answer (ClientHello, the
    middlebox ChangeCipherSpec, 0-RTT records): what an attacker on the path records and sends again."""
    flight = b""
    for entry in transcript:
        if entry.direction == SERVER_TO_CLIENT:
            break
        flight += entry.record
    return flight


@dataclass
class ReplayAttempt:
    """The attacker's copy: the server's answer to it (records, never finished: the attacker has no key
    share secret) and what our server's application saw on that connection."""

    answer_bytes: int
    request_seen: bytes  # the request bytes that reached the server's HTTP layer on that connection
    outcome: str
    refused: dict[str, int]  # the ReplayWindow's counters after it


@dataclass
class ZeroRTTRun:
    full: TLSResponse  # the full handshake that brought the ticket
    ticket: ResumptionTicket
    accepted: TLSResponse  # the resumption with the request as early data
    flight: bytes  # its first flight, as the attacker recorded it
    replay: ReplayAttempt  # that flight again, after the real one
    raced: ReplayAttempt  # the other order: the attacker's copy first...
    retried: TLSResponse  # ...then the real client's: its 0-RTT refused, the request sent after the handshake
    refused_after: dict[str, int]  # the window's counters at the end
    served: list[str] = field(default_factory=list)  # every connection the server saw, in order: its outcome

    def summary(self) -> str:
        replay, raced, retried = self.replay, self.raced, self.retried
        return "\n".join(
            [
                f"full handshake: a ticket allowing {self.ticket.max_early_data_size} bytes of early data",
                f"resumed, the request as 0-RTT: early data {self.accepted.handshake.early_data}, "
                f"status {self.accepted.status}",
                f"the same first flight ({len(self.flight)} bytes) sent again: the request reached the server's "
                f"HTTP layer: {bool(replay.request_seen)}; ReplayWindow.refused {replay.refused}",
                f"the other order, the attacker's copy first: the request reached the server's HTTP layer: "
                f"{bool(raced.request_seen)}; ReplayWindow.refused {raced.refused}",
                f"  then the real client: early data {retried.handshake.early_data}, the request sent again after "
                f"the handshake, status {retried.status}; ReplayWindow.refused {self.refused_after}",
            ]
        )


def _send_raw(host: str, port: int, flight: bytes, *, wait: float = 0.15) -> int:
    """Send ``flight`` on a new connection, read what comes back for ``wait`` seconds, close: byte count."""
    with net.connect(host, port, timeout=net.DEFAULT_TIMEOUT) as sock:
        sock.sendall(flight)
        received = 0
        deadline = time.monotonic() + wait
        sock.settimeout(wait)
        with contextlib.suppress(TimeoutError, OSError):
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
    return received


def _served(server: TLSPageServer, index: int, *, wait: float = 2.0) -> tuple[bytes, str]:
    """The request bytes and outcome of the server's connection ``index`` (0-based), once it has ended."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if len(server.connections) > index and server.connections[index].finished:
            break
        time.sleep(0.005)
    if len(server.connections) <= index:
        return b"", "(the server never saw this connection)"
    record = server.connections[index]
    return record.request, record.outcome


def _finish_resumption(host: str, port: int, client: TLS13Client, request: bytes, timeout: float) -> TLSResponse:
    """Run ``client`` (started, its first flight still queued) on a new connection, then its request: again
    after the handshake if the server refused the early data (RFC 8446 4.2.10); the page read to the close."""
    deadline = time.monotonic() + timeout
    sock = net.connect(host, port, timeout=timeout)
    driver = net.SocketDriver(client, sock)
    try:
        driver.flush()
        while client.handshake is None:
            driver.receive(deadline)
    except BaseException:
        sock.close()
        raise
    body = b""
    with TLSStream(client, sock, driver, timeout) as stream:
        if client.handshake.early_data != "accepted":
            stream.send(request, deadline=deadline)
        while len(body) <= MAX_PAGE and (chunk := stream.recv(deadline=deadline)):
            body += chunk
    head, _, page = body.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return TLSResponse(status, {}, page, client.handshake, list(client.transcript), list(driver.timings))


def zero_rtt_replay(*, timeout: float = 5.0) -> ZeroRTTRun:
    """0-RTT accepted, then replayed; and the replay first, the real client second (see the module's text)."""
    with tempfile.TemporaryDirectory(prefix="handshakes-0rtt-") as folder:
        pki = CoursePKI.create()
        issued = pki.issue_server(("localhost", "127.0.0.1"))
        with TLSPageServer(
            [issued.der], issued.private_key, tls_versions=("1.3",), max_early_data_size=EARLY_DATA_SIZE
        ) as server:
            window = server.anti_replay
            assert window is not None
            url = f"https://localhost:{server.port}/"
            store = ClientSessionStore()
            ca = pki.write_ca(Path(folder))
            full = tls_get(url, cafile=ca, tls_version="1.3", session_store=store)
            key = session_key("localhost", server.port)
            ticket = store.get(key)
            assert isinstance(ticket, ResumptionTicket)
            accepted = tls_get(url, cafile=ca, tls_version="1.3", session_store=store, early_data=True)
            flight = first_flight(accepted.transcript)
            answer = _send_raw("127.0.0.1", server.port, flight)
            request, outcome = _served(server, 2)
            replay = ReplayAttempt(answer, request, outcome, dict(window.refused))
            # The other order: the attacker holds back the real flight and sends his copy first.
            second = store.get(key)
            assert isinstance(second, ResumptionTicket)
            request_bytes = f"GET / HTTP/1.1\r\nHost: localhost:{server.port}\r\n\r\n".encode()
            client = TLS13Client("localhost", cafile=ca, ticket=second, early_data=request_bytes, clock=time.time)
            client.start()  # its first flight is queued: the attacker sends a copy of it first
            answer = _send_raw("127.0.0.1", server.port, first_flight(client.transcript))
            raced_request, raced_outcome = _served(server, 3)
            raced = ReplayAttempt(answer, raced_request, raced_outcome, dict(window.refused))
            retried = _finish_resumption("127.0.0.1", server.port, client, request_bytes, timeout)
            _served(server, 4)
            served = [record.outcome for record in server.connections]
            after = dict(window.refused)
    return ZeroRTTRun(full, ticket, accepted, flight, replay, raced, retried, after, served)


# -- 3. KeyUpdate on a long connection ------------------------------------------------------------------
@dataclass
class RecordGeneration:
    """One record of a TLS 1.3 connection with the keys that protect it, opened with OpenSSL's secrets."""

    index: int
    entry: TranscriptEntry
    keys: str  # "plaintext", "handshake", "application"
    generation: int | None  # application traffic secret N (N + 1 after each KeyUpdate that direction sent)
    sequence_number: int
    opens_with_its_keys: bool | None = None
    opens_with_previous_keys: bool | None = None  # None: generation 0 (or not application data keys)


def _opener(suite: int, secret: bytes, sequence_number: int) -> RecordOpener13:
    opener = RecordOpener13.from_secret(suite13(suite), secret)
    opener.sequence_number = sequence_number
    return opener


def _opens(entry: TranscriptEntry, suite: int, secret: bytes | None, sequence_number: int) -> bool:
    if secret is None:
        return False
    try:
        opened = _opener(suite, secret, sequence_number).open(entry.record)
    except HandshakeError:
        return False
    return opened.content == bytes(entry.plaintext) and opened.content_type == entry.content_type


def records_by_generation(
    transcript: Sequence[TranscriptEntry], keylog: KeyLog, client_random: bytes, suite: int
) -> list[RecordGeneration]:
    """Every record with the secret that protects it, and whether it opens with that secret and with the
    previous generation's.  Secrets come from ``keylog`` (the peer's): the handshake secrets, generation 0 of
    each direction's application secret, and each next one as ``next_application_secret`` of the one before.

    A direction is on its handshake keys from the ServerHello until its own Finished, on its application
    keys after it, and moves to the next generation right after each KeyUpdate it sends (RFC 8446 4.6.3).
    Protection is read from the wire (outer type 23), not from the entry.
    """
    hash_name = suite13(suite).hash_name
    labels = {
        CLIENT_TO_SERVER: ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"),
        SERVER_TO_CLIENT: ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"),
    }
    secrets: dict[str, list[bytes | None]] = {}
    for direction, (_, application) in labels.items():
        secrets[direction] = [keylog.find(application, client_random)]
    stage = {CLIENT_TO_SERVER: "plaintext", SERVER_TO_CLIENT: "plaintext"}
    numbers = {CLIENT_TO_SERVER: 0, SERVER_TO_CLIENT: 0}
    generation = {CLIENT_TO_SERVER: 0, SERVER_TO_CLIENT: 0}
    rows = []
    for index, entry in enumerate(transcript):
        direction = entry.direction
        protected = entry.record[:1] == bytes([ContentType.application_data])
        if not protected:
            rows.append(RecordGeneration(index, entry, "plaintext", None, 0))
            if any(type(m).__name__ == "ServerHello" for m in entry.messages):
                stage = {CLIENT_TO_SERVER: "handshake", SERVER_TO_CLIENT: "handshake"}
            continue
        number = numbers[direction]
        numbers[direction] += 1
        if stage[direction] == "handshake":
            secret = keylog.find(labels[direction][0], client_random)
            rows.append(RecordGeneration(index, entry, "handshake", None, number, _opens(entry, suite, secret, number)))
        else:
            n = generation[direction]
            while len(secrets[direction]) <= n:
                previous = secrets[direction][-1]
                secrets[direction].append(None if previous is None else next_application_secret(hash_name, previous))
            row = RecordGeneration(index, entry, "application", n, number)
            row.opens_with_its_keys = _opens(entry, suite, secrets[direction][n], number)
            if n > 0:
                row.opens_with_previous_keys = _opens(entry, suite, secrets[direction][n - 1], number)
            rows.append(row)
        names = [type(m).__name__ for m in entry.messages]
        if stage[direction] == "handshake" and "Finished" in names:
            stage[direction], numbers[direction] = "application", 0
        elif any(isinstance(m, KeyUpdate) for m in entry.messages):
            generation[direction] += 1
            numbers[direction] = 0
    return rows


@dataclass
class KeyUpdateRun:
    """One TLS 1.3 connection to OpenSSL: a page, KeyUpdate (update_requested), another page."""

    transcript: list[TranscriptEntry]
    timings: list[net.Timing]
    pages: list[bytes]
    key_generations: dict[str, int]  # our client's count, after the run
    keylog: KeyLog  # OpenSSL's
    client_random: bytes
    suite: int

    def records(self) -> list[RecordGeneration]:
        return records_by_generation(self.transcript, self.keylog, self.client_random, self.suite)


def key_update_with_openssl() -> KeyUpdateRun:
    """GET /before, KeyUpdate with update_requested, GET /after, on one TLS 1.3 connection to OpenSSL, whose
    own key log (Python ``ssl``'s ``keylog_filename``) is kept for :func:`records_by_generation`."""
    with tempfile.TemporaryDirectory(prefix="handshakes-keyupdate-") as folder:
        keylog_path = Path(folder) / "openssl.keys"
        with (
            openssl13_server(keylog_path=keylog_path) as server,
            open_tls("127.0.0.1", server.server.port, "localhost", cafile=server.cafile, tls_version="1.3") as stream,
        ):
            pages = [get_page(stream, "/before")]
            stream.update_keys(request_peer=True)
            pages.append(get_page(stream, "/after"))
            generations = dict(stream.client.key_generations)
            transcript, timings = list(stream.transcript), list(stream.timings)
            handshake = stream.handshake
        keylog = parse_keylog(keylog_path.read_text())
    return KeyUpdateRun(
        transcript, timings, pages, generations, keylog, handshake.client_random, int(handshake.cipher_suite)
    )


def renewal_records(transcript: Sequence[TranscriptEntry]) -> tuple[int, int, list[str]]:
    """What renewing the keys cost on the wire, after the first application data: (records, bytes, messages)
    of every handshake or ChangeCipherSpec record, tickets left out (they are not part of the renewal)."""
    started = False
    count, size, names = 0, 0, []
    for entry in transcript:
        if not started:
            started = entry.direction == SERVER_TO_CLIENT and entry.content_type == ContentType.application_data
            continue
        if entry.content_type not in (ContentType.handshake, ContentType.change_cipher_spec):
            continue
        carried = [m for m in entry.messages if not isinstance(m, NewSessionTicket13)]
        if not carried and entry.messages:
            continue
        count += 1
        size += len(entry.record)
        names += [type(m).__name__ for m in carried]
    return count, size, names
