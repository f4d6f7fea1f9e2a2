"""Issue 12's handshakes beside OpenSSL's: the ephemeral suites (group ``suites``) and resumption (``resumption``).

Theory of operation
-------------------
Both groups compare our code with OpenSSL (Python's ``ssl``) doing the same thing in the same run, calls
interleaved so that a busy machine slows every side alike, and report ours/OpenSSL's ratio of medians
(target < 1.5, as in :mod:`bench.handshakes`).  One sample is: TCP connect (``TCP_NODELAY``), a TLS 1.2
handshake, ``GET / HTTP/1.1``, the response read to its Content-Length, close.

Each group starts its peers once (:class:`Peers`): one OpenSSL server (:class:`~handshake_lib.peers.openssl.
PythonSSLServer`) holding an RSA-2048 and an ECDSA P-256 certificate from one course CA and the RFC 7919
ffdhe2048 parameters, and one :class:`~handshake_lib.net.tls.TLSPageServer` with the same two identities
(picked by suite); every row of the group talks to those two.  Each row is a :class:`Pair` of callables,
ours and OpenSSL's, each returning a :class:`Fetch` (the body, the suite, the group, whether the handshake
was resumed) that is checked after every timed call, so a row cannot time something other than what its
name says (another suite, a full handshake where a resumed one was meant, an error page).  As in
:mod:`bench.handshakes`, both servers run in threads of the benchmark's own process, beside both clients:
every side shares the one interpreter alike.

* ``suites``: per suite, **our client** (:func:`~handshake_lib.net.tls.tls_get`) vs Python ``ssl``'s
  client, both against the OpenSSL server; **our server** vs the OpenSSL server, both fetched by Python
  ``ssl``'s client.  :data:`SUITE_ROWS` covers each key exchange x authentication x cipher family the cores
  run: ECDHE with an RSA and an ECDSA certificate x AES-GCM, ChaCha20-Poly1305 and AES-CBC (encrypt-then-MAC,
  SHA-1, SHA-256 and SHA-384 MACs), ECDHE over x25519 (both clients' first choice) and once over secp256r1,
  and DHE-RSA over ffdhe2048 x the three cipher families.  No session tickets on either side (the Python
  client sets ``OP_NO_TICKET``, ours does not ask), so both servers send the same flights.
* ``resumption``: ECDHE-RSA-AES128-GCM-SHA256 over x25519, a **full** handshake, a handshake **resumed by
  session ID** and one **resumed by ticket** (RFC 5077), ours beside OpenSSL's in both roles: our client
  (``TLSClient(session=...)`` through ``tls_get(session=...)``) vs Python ``ssl``'s client
  (``wrap_socket(session=...)``) against the OpenSSL server, and Python ``ssl``'s client against our server
  (``session_cache=``, ``ticket_keys=``) vs against the OpenSSL server.  Every resumed sample resumes the
  session of one earlier full handshake, and must come back resumed (our ``HandshakeComplete.resumed``,
  OpenSSL's ``session_reused``) by the right mechanism; each row's detail also gives each side's resumed
  median as a fraction of its own full one.  Both clients send close_notify before closing (OpenSSL marks
  a session it did not shut down cleanly as not resumable), and so does the OpenSSL server.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import Encoding

from handshake_lib import net
from handshake_lib.peers.openssl import PythonSSLServer, http_page_handler, server_context
from handshake_lib.pki import CoursePKI
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, NamedGroup
from handshake_lib.tls.key_exchange import FFDHE2048_P
from handshake_lib.tls.sessions import Session, SessionCache
from handshake_lib.tls.suites import SUITES
from handshake_lib.tls.tickets import TicketKeys

from .handshakes import RATIO_TARGET, TIMEOUT_S, _read_http_response
from .report import Measurement

if TYPE_CHECKING:  # imported late at run time: a broken net.tls makes an ERROR row, not an import error
    from handshake_lib.net.tls import TLSPageServer

SUITES_GROUP = "suite"
RESUMPTION_GROUP = "resumption"
DEFAULT_SUITE_COUNT = 100  # samples per side per suite: about 40 s for the group on a 2-core machine
DEFAULT_RESUMPTION_COUNT = 400  # samples per side per row: about 15 s for the group
WARMUP = 3
OPENSSL_NAME = {suite: name for name, suite in OPENSSL_NAMES.items()}
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
OPENSSL_PAGE = b"Hello from OpenSSL"  # in peers.openssl.DEFAULT_PAGE
OUR_PAGE = b"Hello from the Handshakes TLS server"  # in net.tls.PAGE
GROUP_NAMES = {NamedGroup.x25519: "x25519", NamedGroup.secp256r1: "secp256r1", NamedGroup.ffdhe2048: "ffdhe2048"}


@dataclass(frozen=True)
class SuiteRow:
    """One suite to time, over one group (the group both clients offer, alone or first)."""

    suite: CipherSuite
    group: NamedGroup

    @property
    def label(self) -> str:
        return f"{OPENSSL_NAME[self.suite]} ({GROUP_NAMES[self.group]})"


# Each key exchange x authentication x cipher family (see the module docstring).
SUITE_ROWS: tuple[SuiteRow, ...] = (
    SuiteRow(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, NamedGroup.secp256r1),
    SuiteRow(CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, NamedGroup.x25519),
    SuiteRow(CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, NamedGroup.ffdhe2048),
    SuiteRow(CipherSuite.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256, NamedGroup.ffdhe2048),
    SuiteRow(CipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA256, NamedGroup.ffdhe2048),
)
RESUMPTION_SUITE = CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256


# -- what one call fetched, and the peers ---------------------------------------------------------------
@dataclass(frozen=True)
class Fetch:
    """One handshake + GET as the client saw it.

    ``cipher``: the negotiated suite, by OpenSSL's name; ``group``: the key exchange group when the client
    can tell (ours can, Python's ``ssl`` 3.11 cannot: None); ``resumed``: our ``HandshakeComplete.resumed``
    or OpenSSL's ``session_reused``; ``ticket``: the session was resumed (or can be) with a ticket.
    """

    body: bytes
    cipher: str
    group: int | None
    resumed: bool
    ticket: bool = False


@dataclass(frozen=True)
class Pair:
    """One row: our call and OpenSSL's, and what each must have done every time."""

    name: str
    ours: Callable[[], Fetch]
    theirs: Callable[[], Fetch]
    their_label: str
    cipher: str
    group: int | None
    resumed: bool
    ticket: bool
    our_page: bytes
    their_page: bytes
    kind: str = "full"  # "full", "session ID", "ticket": resumption rows are compared with their side's full one
    side: str = "client"  # "client": our client vs Python's; "server": our server vs OpenSSL's

    def check(self, fetch: Fetch, ours: bool) -> None:
        """Raise unless ``fetch`` is what this row says it times."""
        page = self.our_page if ours else self.their_page
        who = "ours" if ours else self.their_label
        problems = []
        if page not in fetch.body:
            problems.append(f"body {fetch.body[:80]!r}")
        if fetch.cipher != self.cipher:
            problems.append(f"suite {fetch.cipher}")
        if fetch.group is not None and self.group is not None and fetch.group != self.group:
            problems.append(f"group {fetch.group}")
        if fetch.resumed != self.resumed:
            problems.append("resumed" if fetch.resumed else "not resumed")
        if self.resumed and fetch.ticket != self.ticket:
            problems.append("resumed by ticket" if fetch.ticket else "resumed by session ID")
        if problems:
            raise RuntimeError(f"{self.name} ({who}): expected {self.cipher}, got {', '.join(problems)}")


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def ffdhe2048_pem() -> bytes:
    """RFC 7919's ffdhe2048 as PKCS#3 DHParameter ``SEQUENCE {p, g}``, what ``SSLContext.load_dh_params`` reads.

    Encoded here rather than by ``cryptography``, whose DH parameter API warns that FFDH is deprecated.
    """
    integers = b"".join(_der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big")) for n in (FFDHE2048_P, 2))
    body = base64.encodebytes(_der(0x30, integers)).decode("ascii")
    return f"-----BEGIN DH PARAMETERS-----\n{body}-----END DH PARAMETERS-----\n".encode("ascii")


def _openssl_handler(reused: list[bool]) -> Callable[[ssl.SSLSocket], None]:
    page = http_page_handler()

    def handle(tls: ssl.SSLSocket) -> None:
        reused.append(tls.session_reused)  # OpenSSL's own view, for the tests
        page(tls)
        # close_notify: OpenSSL drops a session it did not shut down cleanly from its cache.
        with contextlib.suppress(OSError, ssl.SSLError):
            tls.unwrap()

    return handle


@dataclass
class Peers:
    """The two servers a group talks to, and how to trust them (only valid inside :meth:`start`)."""

    files: ServerFiles
    openssl: PythonSSLServer
    ours: TLSPageServer
    ecdsa_chain: list[bytes]
    openssl_reused: list[bool] = field(default_factory=list)

    @property
    def ca_path(self) -> Path:
        return self.files.ca_path

    @classmethod
    @contextlib.contextmanager
    def start(cls, ciphers: list[CipherSuite], *, resumption: bool = False) -> Iterator[Peers]:
        """Both servers for ``ciphers``; with ``resumption``, ours has a session cache and ticket keys."""
        from handshake_lib.net.tls import TLSPageServer

        with tempfile.TemporaryDirectory(prefix="handshakes-bench-tls12-") as name:
            directory = Path(name)
            files = CoursePKI.create().write_server_files(directory)
            ecdsa = files.pki.issue_server(("localhost", "127.0.0.1"), key_type="ecdsa-p256")
            ecdsa_cert, ecdsa_key = CoursePKI.write_issued(ecdsa, directory, "ecdsa")
            dh_path = directory / "ffdhe2048.pem"
            dh_path.write_bytes(ffdhe2048_pem())
            context = server_context(
                files.cert_path, files.key_path, ciphers=":".join(OPENSSL_NAME[s] for s in ciphers),
                maximum_version=ssl.TLSVersion.TLSv1_2,
            )  # fmt: skip
            context.load_cert_chain(ecdsa_cert, ecdsa_key)  # OpenSSL keeps one certificate per key type
            context.load_dh_params(str(dh_path))
            reused: list[bool] = []
            ecdsa_chain = [ecdsa.certificate.public_bytes(Encoding.DER)]
            options: dict[str, object] = {}
            if resumption:
                options = {"session_cache": SessionCache(), "ticket_keys": TicketKeys(), "clock": time.monotonic}
            with (
                PythonSSLServer(context, _openssl_handler(reused), timeout=TIMEOUT_S) as openssl,
                TLSPageServer(
                    [files.issued.der], files.issued.private_key, timeout=TIMEOUT_S, cipher_suites=ciphers,
                    identities=[(ecdsa_chain, ecdsa.private_key)], **options,
                ) as ours,
            ):  # fmt: skip
                yield cls(files, openssl, ours, ecdsa_chain, reused)


# -- the two clients ------------------------------------------------------------------------------------
def client_context(ca_path: Path, row_cipher: CipherSuite, *, tickets: bool = False) -> ssl.SSLContext:
    """Python ``ssl``'s client for one suite, TLS 1.2 only; no session ticket unless ``tickets``."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OPENSSL_NAME[row_cipher])
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF  # the servers close after the page, as HTTP/1.1 allows
    if not tickets:
        context.options |= ssl.OP_NO_TICKET
    return context


def python_fetch(
    context: ssl.SSLContext, port: int, session: ssl.SSLSession | None = None, *, close_notify: bool = False
) -> tuple[Fetch, ssl.SSLSession | None]:
    """One GET with Python's ``ssl`` client; returns what it saw and the session to resume later."""
    raw = net.connect(net.LOOPBACK, port, timeout=TIMEOUT_S)
    with raw, context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(REQUEST)
        body = _read_http_response(lambda: tls.recv(65536))
        cipher = tls.cipher()
        fetch = Fetch(
            body.partition(b"\r\n\r\n")[2], cipher[0] if cipher else "", None, tls.session_reused,
            bool(tls.session is not None and tls.session.has_ticket),
        )  # fmt: skip
        kept = tls.session
        if close_notify:  # else OpenSSL marks the session not resumable when the socket is freed
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()
    return fetch, kept


def our_fetch(url: str, ca_path: Path, row: SuiteRow, **options: object) -> Fetch:
    """One GET with our client (``tls_get``); ``options`` go to TLSClient (``session=``, ``session_ticket=``)."""
    from handshake_lib.net.tls import tls_get

    groups = [row.group, NamedGroup.secp256r1] if row.group != NamedGroup.secp256r1 else [row.group]
    if SUITES[row.suite].key_exchange == "DHE":
        groups = [row.group]
    response = tls_get(url, cafile=ca_path, cipher_suites=[row.suite], groups=groups, **options)
    handshake = response.handshake
    session = handshake.session
    return Fetch(
        response.body, OPENSSL_NAME[handshake.cipher_suite], handshake.group, handshake.resumed,
        bool(session is not None and session.ticket),
    )  # fmt: skip


def our_session(url: str, ca_path: Path, row: SuiteRow, *, ticket: bool) -> Session:
    """The session of one full handshake of our client, to resume in every sample of a row."""
    from handshake_lib.net.tls import tls_get

    response = tls_get(url, cafile=ca_path, cipher_suites=[row.suite], session_ticket=ticket)
    session = response.handshake.session
    if session is None or bool(session.ticket) != ticket:
        raise RuntimeError(f"the server gave no {'ticket' if ticket else 'session ID'} to resume")
    return session


# -- the rows -------------------------------------------------------------------------------------------
def suite_pairs(peers: Peers, rows: tuple[SuiteRow, ...] = SUITE_ROWS) -> list[Pair]:
    """Per suite: our client beside Python's against OpenSSL, our server beside OpenSSL's for Python's client."""
    openssl_url = f"https://localhost:{peers.openssl.port}/"
    ours_port, openssl_port = peers.ours.port, peers.openssl.port
    pairs: list[Pair] = []
    for row in rows:
        context = client_context(peers.ca_path, row.suite)
        if row.group == NamedGroup.secp256r1:
            # Its only group (OpenSSL 3: SSL_CTX_set1_groups).  Not for x25519, OpenSSL's first choice anyway:
            # alone it would leave out P-256, which a TLS 1.2 server needs named to use an ECDSA P-256 certificate.
            context.set_ecdh_curve("prime256v1")
        common = {"cipher": OPENSSL_NAME[row.suite], "group": row.group, "resumed": False, "ticket": False}
        pairs.append(Pair(
            f"our client -> OpenSSL server, {row.label}: full handshake + GET",
            lambda row=row: our_fetch(openssl_url, peers.ca_path, row),
            lambda context=context: python_fetch(context, openssl_port)[0],
            "Python ssl client", our_page=OPENSSL_PAGE, their_page=OPENSSL_PAGE, **common,
        ))  # fmt: skip
        pairs.append(Pair(
            f"ssl client -> our server, {row.label}: full handshake + GET",
            lambda context=context: python_fetch(context, ours_port)[0],
            lambda context=context: python_fetch(context, openssl_port)[0],
            "OpenSSL server", our_page=OUR_PAGE, their_page=OPENSSL_PAGE, side="server", **common,
        ))  # fmt: skip
    return pairs


def resumption_pairs(peers: Peers) -> list[Pair]:
    """Full, resumed by session ID, resumed by ticket: our client and Python's; our server and OpenSSL's."""
    row = SuiteRow(RESUMPTION_SUITE, NamedGroup.x25519)
    label = OPENSSL_NAME[row.suite]
    openssl_url = f"https://localhost:{peers.openssl.port}/"
    ours_port, openssl_port = peers.ours.port, peers.openssl.port
    by_id = client_context(peers.ca_path, row.suite)  # OP_NO_TICKET: resumes by session ID
    by_ticket = client_context(peers.ca_path, row.suite, tickets=True)

    def python_session(context: ssl.SSLContext, port: int) -> ssl.SSLSession:
        fetch, session = python_fetch(context, port, close_notify=True)
        if session is None or fetch.ticket != (context is by_ticket):
            raise RuntimeError(f"OpenSSL's client got no {'ticket' if context is by_ticket else 'session ID'}")
        return session

    def python(context: ssl.SSLContext, port: int, session: ssl.SSLSession | None) -> Callable[[], Fetch]:
        return lambda: python_fetch(context, port, session, close_notify=True)[0]

    common = {"cipher": label, "group": row.group, "our_page": OPENSSL_PAGE, "their_page": OPENSSL_PAGE}
    ours_id = our_session(openssl_url, peers.ca_path, row, ticket=False)
    ours_ticket = our_session(openssl_url, peers.ca_path, row, ticket=True)
    client_side = [
        Pair(
            f"our client -> OpenSSL server, {label}: full handshake + GET",
            lambda: our_fetch(openssl_url, peers.ca_path, row), python(by_id, openssl_port, None),
            "Python ssl client", resumed=False, ticket=False, **common,
        ),
        Pair(
            f"our client -> OpenSSL server, {label}: resumed by session ID + GET",
            lambda: our_fetch(openssl_url, peers.ca_path, row, session=ours_id),
            python(by_id, openssl_port, python_session(by_id, openssl_port)),
            "Python ssl client", resumed=True, ticket=False, kind="session ID", **common,
        ),
        Pair(
            f"our client -> OpenSSL server, {label}: resumed by ticket + GET",
            lambda: our_fetch(openssl_url, peers.ca_path, row, session=ours_ticket),
            python(by_ticket, openssl_port, python_session(by_ticket, openssl_port)),
            "Python ssl client", resumed=True, ticket=True, kind="ticket", **common,
        ),
    ]  # fmt: skip
    common["our_page"] = OUR_PAGE
    server_side = [
        Pair(
            f"ssl client -> our server, {label}: full handshake + GET",
            python(by_id, ours_port, None), python(by_id, openssl_port, None),
            "OpenSSL server", resumed=False, ticket=False, side="server", **common,
        ),
        Pair(
            f"ssl client -> our server, {label}: resumed by session ID + GET",
            python(by_id, ours_port, python_session(by_id, ours_port)),
            python(by_id, openssl_port, python_session(by_id, openssl_port)),
            "OpenSSL server", resumed=True, ticket=False, kind="session ID", side="server", **common,
        ),
        Pair(
            f"ssl client -> our server, {label}: resumed by ticket + GET",
            python(by_ticket, ours_port, python_session(by_ticket, ours_port)),
            python(by_ticket, openssl_port, python_session(by_ticket, openssl_port)),
            "OpenSSL server", resumed=True, ticket=True, kind="ticket", side="server", **common,
        ),
    ]  # fmt: skip
    return client_side + server_side


# -- timing ---------------------------------------------------------------------------------------------
def time_pairs(pairs: list[Pair], count: int, warmup: int = WARMUP) -> dict[str, tuple[list[float], list[float]]]:
    """``count`` rounds of every pair's two calls, interleaved; each call checked after its timer stopped."""
    for pair in pairs:
        for _ in range(warmup):
            pair.check(pair.ours(), ours=True)
            pair.check(pair.theirs(), ours=False)
    samples: dict[str, tuple[list[float], list[float]]] = {pair.name: ([], []) for pair in pairs}
    for round_ in range(count):
        # Each round starts at another row and alternates who goes first, so that no row or side always
        # follows the same call (a DHE handshake leaves the caches colder than a resumed one).
        start = round_ % len(pairs)
        for pair in pairs[start:] + pairs[:start]:
            our_ms, their_ms = samples[pair.name]
            calls = ((True, pair.ours, our_ms), (False, pair.theirs, their_ms))
            for ours, call, kept in calls if round_ % 2 == 0 else calls[::-1]:
                started = time.perf_counter()
                fetch = call()
                kept.append((time.perf_counter() - started) * 1000)
                pair.check(fetch, ours)
    return samples


def rows_for(group: str, pairs: list[Pair], samples: dict[str, tuple[list[float], list[float]]]) -> list[Measurement]:
    """One ratio row per pair; a resumed row also says how it compares with its side's full handshake."""
    return ratio_rows(
        group, pairs, samples, their_word="OpenSSL's",
        compared=lambda pair: "resumed/full" if pair.kind != "full" and group == RESUMPTION_GROUP else None,
    )  # fmt: skip


def ratio_rows(
    group: str,
    pairs: Sequence[Any],
    samples: dict[str, tuple[list[float], list[float]]],
    *,
    compared: Callable[[Any], str | None],
    their_word: str = "theirs",
    target: Callable[[Any], float] = lambda pair: RATIO_TARGET,
) -> list[Measurement]:
    """One ours/theirs ratio row per timed pair (the TLS 1.2 and 1.3 groups share it): medians, every sample in
    ``extra``, and for a row ``compared`` names (``"resumed/full"``) both sides' fraction of their full row."""
    medians = {name: (statistics.median(ours), statistics.median(theirs)) for name, (ours, theirs) in samples.items()}
    full = {pair.side: medians[pair.name] for pair in pairs if pair.kind == "full"}
    rows = []
    for pair in pairs:
        ours, theirs = medians[pair.name]
        our_ms, their_ms = samples[pair.name]
        detail = f"median {ours:.2f} ms vs {pair.their_label} {theirs:.2f} ms, n={len(our_ms)}"
        extra: dict[str, object] = {
            "ours_median_ms": ours, "theirs_median_ms": theirs, "ours_ms": our_ms, "theirs_ms": their_ms,
        }  # fmt: skip
        label = compared(pair)
        if label is not None and pair.side in full:
            our_full, their_full = full[pair.side]
            detail += f"; {label}: ours {ours / our_full:.2f}, {their_word} {theirs / their_full:.2f}"
            extra |= {"ours_of_full": ours / our_full, "theirs_of_full": theirs / their_full}
        rows.append(Measurement(group, pair.name, ours / theirs, "x", target(pair), detail=detail, extra=extra))
    return rows


def _error_row(group: str, name: str, error: BaseException) -> Measurement:
    return Measurement(group, name, None, "x", RATIO_TARGET, error=f"{type(error).__name__}: {error}")


def measure_suites(
    count: int = DEFAULT_SUITE_COUNT, rows: tuple[SuiteRow, ...] = SUITE_ROWS, warmup: int = WARMUP
) -> list[Measurement]:
    try:
        with Peers.start([row.suite for row in rows]) as peers:
            pairs = suite_pairs(peers, rows)
            return rows_for(SUITES_GROUP, pairs, time_pairs(pairs, count, warmup))
    except Exception as error:  # noqa: BLE001 - one ERROR row says why the group could not run
        return [_error_row(SUITES_GROUP, "ECDHE/DHE suites: full handshake + GET", error)]


def measure_resumption(count: int = DEFAULT_RESUMPTION_COUNT, warmup: int = WARMUP) -> list[Measurement]:
    try:
        with Peers.start([RESUMPTION_SUITE], resumption=True) as peers:
            pairs = resumption_pairs(peers)
            return rows_for(RESUMPTION_GROUP, pairs, time_pairs(pairs, count, warmup))
    except Exception as error:  # noqa: BLE001 - one ERROR row says why the group could not run
        return [_error_row(RESUMPTION_GROUP, "resumed handshakes + GET", error)]
