"""Issue 13's TLS 1.3 handshakes beside OpenSSL's and tlslite-ng's (group ``tls13``).

Theory of operation
-------------------
As in :mod:`bench.tls12`, every ratio row compares our code with another implementation doing the same thing
in the same run, calls interleaved round by round (:func:`bench.tls12.time_pairs`) so that a busy machine
slows every side alike, and reports ours/theirs ratio of medians.  One sample is: TCP connect
(``TCP_NODELAY``), a TLS 1.3 handshake, ``GET / HTTP/1.1``, the response read to its Content-Length, close
(close_notify from the client: OpenSSL drops a session it did not shut down cleanly).

The peers (:class:`Peers`, started once): two OpenSSL servers (:class:`~handshake_lib.peers.openssl.
PythonSSLServer`, TLS 1.3 only, one RSA-2048 certificate from a fresh course CA, one ticket per connection
like ours), the second allowing only P-256; and two of our :class:`~handshake_lib.net.tls.TLSPageServer`
(``tls_versions=("1.3",)``, the same certificate), the second allowing only P-256 (``groups13``).  A client
whose only key share is x25519 gets a HelloRetryRequest from the P-256 servers.

* **our client** (``tls_get(tls_version="1.3")``, its one key share x25519, as OpenSSL 3.0's client sends)
  vs Python ``ssl``'s client, both against the OpenSSL server: a **full** handshake, one **resumed** with a
  ticket (ours: a :class:`~handshake_lib.tls.sessions.ClientSessionStore`, whose newest ticket is offered
  once; Python's: the newest ``SSLSession`` of the previous call), one with a **HelloRetryRequest**;
* **our server** vs the OpenSSL server, both fetched by Python ``ssl``'s client: the same three;
* **tlslite-ng** (a pure-Python TLS 1.3 implementation from PyPI) as a second reference: our client's full
  handshake vs tlslite-ng's client against the same OpenSSL server (x25519).  tlslite-ng does not validate
  the server's certificate (no CA, only an optional fingerprint), ours does: its ratio's target is 1.
* **group costs**: our client and our server cores (:class:`~handshake_lib.tls.client13.TLS13Client`,
  :class:`~handshake_lib.tls.server13.TLS13Server`) pumped against each other in memory, no sockets, one
  group offered and shared: x25519, X25519MLKEM768, secp256r1, ffdhe2048.  Each handshake's time inside
  the client's calls and inside the server's calls is kept apart; a row gives the median of their sum
  (target < 50 ms, the widget callback budget: a notebook cell that runs a handshake stays interactive),
  each side's median and the ratio to x25519 in its detail.

Every call returns a :class:`Fetch13` checked after its timer stopped (:meth:`Pair13.check`): TLS 1.3, the
expected suite, the page, resumed or not, and where the client can tell (ours), the group and whether the
server asked for another key share.  ``tests/test_bench_cases_tls13.py`` reads the other end as well.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handshake_lib import net
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki import CoursePKI
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.constants import CipherSuite, NamedGroup
from handshake_lib.tls.sessions import ClientSessionStore

from .handshakes import RATIO_TARGET, TIMEOUT_S, _read_http_response
from .report import Measurement
from .tls12 import OPENSSL_PAGE, OUR_PAGE, REQUEST, _openssl_handler, ratio_rows, time_pairs

if TYPE_CHECKING:  # imported late at run time: a broken net.tls makes an ERROR row, not an import error
    from handshake_lib.net.tls import TLSPageServer

GROUP = "tls13"
DEFAULT_COUNT = 200  # samples per side per row: about 25 s for the socket rows on a 2-core machine
DEFAULT_GROUP_COUNT = 100  # in-memory handshakes per group: about 10 s
WARMUP = 3
TLSLITE_TARGET = 1.0  # another pure-Python implementation: ours should be no slower
GROUP_TARGET_MS = 50.0  # the widget callback budget (bench/README.md)
# Both servers' first choice for 1.3 clients offering OpenSSL's default order (OpenSSL's server keeps its
# own order, TLS_AES_256_GCM_SHA384 first, ours too): every row must end up there.
SUITE = CipherSuite.TLS_AES_256_GCM_SHA384
COST_GROUPS: tuple[NamedGroup, ...] = (
    NamedGroup.x25519, NamedGroup.X25519MLKEM768, NamedGroup.secp256r1, NamedGroup.ffdhe2048,
)  # fmt: skip
GROUP_LABELS = {
    NamedGroup.x25519: "x25519", NamedGroup.X25519MLKEM768: "X25519MLKEM768", NamedGroup.secp256r1: "P-256",
    NamedGroup.ffdhe2048: "ffdhe2048",
}  # fmt: skip
HRR_MAGIC = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")  # RFC 8446 4.1.3


# -- what one call fetched ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fetch13:
    """One TLS 1.3 handshake + GET as the client saw it.

    ``version``: "TLSv1.3" or what else was negotiated; ``cipher``: the suite's IANA name; ``resumed``:
    our ``psk_mode`` is set, or OpenSSL's ``session_reused``; ``group`` and ``hello_retry_request``: None
    when the client cannot tell (Python's ``ssl`` 3.11, tlslite-ng).
    """

    body: bytes
    version: str
    cipher: str
    resumed: bool
    group: int | None = None
    hello_retry_request: bool | None = None


@dataclass(frozen=True)
class Pair13:
    """One row: our call and the other implementation's, and what each must have done every time."""

    name: str
    ours: Callable[[], Fetch13]
    theirs: Callable[[], Fetch13]
    their_label: str
    our_page: bytes
    their_page: bytes
    kind: str = "full"  # "full", "resumed", "HRR"
    side: str = "client"  # "client": our client vs another client; "server": our server vs OpenSSL's
    group: NamedGroup = NamedGroup.x25519
    target: float = RATIO_TARGET

    @property
    def resumed(self) -> bool:
        return self.kind == "resumed"

    def check(self, fetch: Fetch13, ours: bool) -> None:
        """Raise unless ``fetch`` is what this row says it times."""
        page = self.our_page if ours else self.their_page
        problems = []
        if page not in fetch.body:
            problems.append(f"body {fetch.body[:80]!r}")
        if fetch.version != "TLSv1.3":
            problems.append(f"version {fetch.version}")
        if fetch.cipher != SUITE.name:
            problems.append(f"suite {fetch.cipher}")
        if fetch.resumed != self.resumed:
            problems.append("resumed" if fetch.resumed else "not resumed")
        if fetch.group is not None and fetch.group != self.group:
            problems.append(f"group {fetch.group}")
        if fetch.hello_retry_request is not None and fetch.hello_retry_request != (self.kind == "HRR"):
            problems.append("a HelloRetryRequest" if fetch.hello_retry_request else "no HelloRetryRequest")
        if problems:
            who = "ours" if ours else self.their_label
            raise RuntimeError(f"{self.name} ({who}): expected TLS 1.3 {self.kind}, got {', '.join(problems)}")


# -- the peers ------------------------------------------------------------------------------------------
def openssl_context(files: ServerFiles, *, p256_only: bool = False) -> ssl.SSLContext:
    """OpenSSL's TLS 1.3 server: one ticket per connection (as ours sends); optionally P-256 only."""
    context = server_context(files.cert_path, files.key_path, minimum_version=ssl.TLSVersion.TLSv1_3)
    context.num_tickets = 1
    if p256_only:
        context.set_ecdh_curve("prime256v1")  # OpenSSL 3: SSL_CTX_set1_groups, its only group, for 1.3 too
    return context


@dataclass
class Peers:
    """The four servers the group talks to (only valid inside :meth:`start`); ``*_reused``: OpenSSL's view."""

    files: ServerFiles
    openssl: PythonSSLServer
    openssl_p256: PythonSSLServer
    ours: TLSPageServer
    ours_p256: TLSPageServer
    openssl_reused: list[bool] = field(default_factory=list)

    @property
    def ca_path(self) -> Path:
        return self.files.ca_path

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[Peers]:
        from handshake_lib.net.tls import TLSPageServer

        with tempfile.TemporaryDirectory(prefix="handshakes-bench-tls13-") as name:
            files = CoursePKI.create().write_server_files(Path(name))
            reused: list[bool] = []
            chain, key = [files.issued.der], files.issued.private_key
            with (
                PythonSSLServer(openssl_context(files), _openssl_handler(reused), timeout=TIMEOUT_S) as openssl,
                PythonSSLServer(
                    openssl_context(files, p256_only=True), _openssl_handler(reused), timeout=TIMEOUT_S
                ) as openssl_p256,
                TLSPageServer(chain, key, timeout=TIMEOUT_S, tls_versions=("1.3",)) as ours,
                TLSPageServer(
                    chain, key, timeout=TIMEOUT_S, tls_versions=("1.3",), groups13=(NamedGroup.secp256r1,)
                ) as ours_p256,
            ):
                yield cls(files, openssl, openssl_p256, ours, ours_p256, reused)


# -- the three clients ----------------------------------------------------------------------------------
def client_context(ca_path: Path) -> ssl.SSLContext:
    """Python ``ssl``'s client, TLS 1.3 only (OpenSSL 3.0's defaults: one key share, x25519)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF  # the servers close after the page, as HTTP/1.1 allows
    return context


@dataclass
class PythonClient:
    """Python ``ssl``'s client; with ``resume``, each call offers the newest session the previous one got."""

    context: ssl.SSLContext
    port: int
    resume: bool = False
    session: ssl.SSLSession | None = None

    def __call__(self) -> Fetch13:
        raw = net.connect(net.LOOPBACK, self.port, timeout=TIMEOUT_S)
        offered = self.session if self.resume else None
        with raw, self.context.wrap_socket(raw, server_hostname="localhost", session=offered) as tls:
            tls.sendall(REQUEST)
            body = _read_http_response(lambda: tls.recv(65536))
            cipher = tls.cipher()
            fetch = Fetch13(body.partition(b"\r\n\r\n")[2], tls.version() or "", cipher[0] if cipher else "",
                            tls.session_reused)  # fmt: skip
            if self.resume and tls.session is not None and tls.session.has_ticket:
                self.session = tls.session  # the ticket came after the handshake, read with the response
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()  # close_notify, or OpenSSL marks the session not resumable
        return fetch

    def prime(self) -> PythonClient:
        """One full handshake, so that the first timed call has a ticket to offer."""
        self.resume, self.session = True, None
        self()
        if self.session is None:
            raise RuntimeError("OpenSSL's client got no TLS 1.3 ticket")
        return self


def our_fetch(url: str, ca_path: Path, **options: Any) -> Fetch13:
    """One GET with our client, TLS 1.3, one key share (x25519); ``options`` go to tls_get (session_store)."""
    from handshake_lib.net.tls import tls_get

    response = tls_get(url, cafile=ca_path, tls_version="1.3", key_share_groups=(NamedGroup.x25519,), **options)
    handshake = response.handshake
    return Fetch13(
        response.body, "TLSv1.3" if handshake.version == 0x0304 else hex(handshake.version),
        CipherSuite(handshake.cipher_suite).name, handshake.psk_mode is not None, handshake.group,
        handshake.hello_retry_request,
    )  # fmt: skip


def tlslite_fetch(port: int) -> Fetch13:
    """One GET with tlslite-ng's client, TLS 1.3 only, one key share (x25519); no certificate validation."""
    with warnings.catch_warnings():  # tlslite/__init__ imports its asyncore integration, deprecated in 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        from tlslite.handshakesettings import HandshakeSettings
        from tlslite.tlsconnection import TLSConnection

    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 4)
    settings.keyShares = ["x25519"]
    raw = net.connect(net.LOOPBACK, port, timeout=TIMEOUT_S)
    connection = TLSConnection(raw)
    try:
        connection.handshakeClientCert(settings=settings, serverName="localhost")
        connection.write(REQUEST)
        body = _read_http_response(lambda: bytes(connection.read(max=65536)))
        version = "TLSv1.3" if connection.version == (3, 4) else str(connection.version)
        return Fetch13(body.partition(b"\r\n\r\n")[2], version, CipherSuite(connection.session.cipherSuite).name,
                       bool(connection.resumed))  # fmt: skip
    finally:
        with contextlib.suppress(Exception):  # tlslite raises its own errors on a peer's early close
            connection.close()  # close_notify
        raw.close()


# -- the rows -------------------------------------------------------------------------------------------
def pairs_for(peers: Peers) -> list[Pair13]:
    """Full, resumed, HRR for each role, and our client beside tlslite-ng's."""
    ca = peers.ca_path
    openssl_url = f"https://localhost:{peers.openssl.port}/"
    p256_url = f"https://localhost:{peers.openssl_p256.port}/"
    context = client_context(ca)
    store = ClientSessionStore()
    our_fetch(openssl_url, ca, session_store=store)  # a ticket for the first resumed call
    client = {"their_label": "Python ssl client", "our_page": OPENSSL_PAGE, "their_page": OPENSSL_PAGE}
    server = {"their_label": "OpenSSL server", "our_page": OUR_PAGE, "their_page": OPENSSL_PAGE, "side": "server"}
    return [
        Pair13(
            "our client -> OpenSSL server, TLS 1.3 x25519: full handshake + GET",
            lambda: our_fetch(openssl_url, ca), PythonClient(context, peers.openssl.port), **client,
        ),
        Pair13(
            "our client -> OpenSSL server, TLS 1.3: resumed (ticket, psk_dhe_ke) + GET",
            lambda: our_fetch(openssl_url, ca, session_store=store),
            PythonClient(context, peers.openssl.port).prime(), kind="resumed", **client,
        ),
        Pair13(
            "our client -> OpenSSL server (P-256 only), TLS 1.3: HelloRetryRequest + GET",
            lambda: our_fetch(p256_url, ca), PythonClient(context, peers.openssl_p256.port),
            kind="HRR", group=NamedGroup.secp256r1, **client,
        ),
        Pair13(
            "ssl client -> our server, TLS 1.3 x25519: full handshake + GET",
            PythonClient(context, peers.ours.port), PythonClient(context, peers.openssl.port), **server,
        ),
        Pair13(
            "ssl client -> our server, TLS 1.3: resumed (ticket, psk_dhe_ke) + GET",
            PythonClient(context, peers.ours.port).prime(), PythonClient(context, peers.openssl.port).prime(),
            kind="resumed", **server,
        ),
        Pair13(
            "ssl client -> our server (P-256 only), TLS 1.3: HelloRetryRequest + GET",
            PythonClient(context, peers.ours_p256.port), PythonClient(context, peers.openssl_p256.port),
            kind="HRR", group=NamedGroup.secp256r1, **server,
        ),
        Pair13(
            "our client vs tlslite-ng -> OpenSSL server, TLS 1.3 x25519: full handshake + GET",
            lambda: our_fetch(openssl_url, ca), lambda: tlslite_fetch(peers.openssl.port),
            "tlslite-ng client", OPENSSL_PAGE, OPENSSL_PAGE, kind="full", side="tlslite", target=TLSLITE_TARGET,
        ),
    ]  # fmt: skip


def rows_for(pairs: list[Pair13], samples: dict[str, tuple[list[float], list[float]]]) -> list[Measurement]:
    """One ratio row per pair; resumed and HRR rows also give each side's median as a fraction of its full one."""
    return ratio_rows(
        GROUP, pairs, samples, compared=lambda pair: None if pair.kind == "full" else f"{pair.kind}/full",
        target=lambda pair: pair.target,
    )  # fmt: skip


# -- group costs, in memory -----------------------------------------------------------------------------
@dataclass
class GroupCost:
    """One in-memory handshake of our two cores: where the time went."""

    group: int
    client_ms: float
    server_ms: float
    hello_retry_request: bool
    version: int


def pumped_handshake(group: NamedGroup, chain: list[bytes], key: Any, root: Any) -> GroupCost:
    """Our client and our server, one group offered and shared, pumped until both completed."""
    from handshake_lib.tls.client13 import TLS13Client
    from handshake_lib.tls.connection import HandshakeComplete
    from handshake_lib.tls.server13 import TLS13Server

    spent = {"client": 0.0, "server": 0.0}

    def timed(side: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            spent[side] += time.perf_counter() - started

    client = timed("client", lambda: TLS13Client("localhost", trusted_certificates=[root], groups=(group,),
                                                 key_share_groups=(group,)))  # fmt: skip
    server = timed("server", lambda: TLS13Server(chain, key))
    timed("client", client.start)
    done = {"client": False, "server": False}
    for _ in range(8):  # a full handshake is three flights (no HRR here)
        flight = timed("client", client.data_to_send)
        if flight:
            events = timed("server", lambda flight=flight: server.receive_data(flight))
            done["server"] |= any(isinstance(event, HandshakeComplete) for event in events)
        answer = timed("server", server.data_to_send)
        if answer:
            events = timed("client", lambda answer=answer: client.receive_data(answer))
            done["client"] |= any(isinstance(event, HandshakeComplete) for event in events)
        if all(done.values()):
            break
    else:
        raise RuntimeError(f"{GROUP_LABELS[group]}: the in-memory handshake did not complete")
    handshake = client.handshake
    return GroupCost(handshake.group, spent["client"] * 1000, spent["server"] * 1000,
                     handshake.hello_retry_request, handshake.version)  # fmt: skip


def measure_group_costs(count: int = DEFAULT_GROUP_COUNT, warmup: int = WARMUP) -> list[Measurement]:
    """Per group, ``count`` in-memory handshakes, groups interleaved; client and server time kept apart."""
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost",))
    chain, root = [issued.der], pki.root.certificate
    costs: dict[NamedGroup, list[GroupCost]] = {group: [] for group in COST_GROUPS}
    for round_ in itertools.chain(range(-warmup, 0), range(count)):
        start = round_ % len(COST_GROUPS)  # each round starts at another group
        for group in COST_GROUPS[start:] + COST_GROUPS[:start]:
            cost = pumped_handshake(group, chain, issued.private_key, root)
            if cost.group != group or cost.hello_retry_request or cost.version != 0x0304:
                raise RuntimeError(f"{GROUP_LABELS[group]}: negotiated {cost.group}, HRR {cost.hello_retry_request}")
            if round_ >= 0:
                costs[group].append(cost)
    base = statistics.median(c.client_ms + c.server_ms for c in costs[NamedGroup.x25519])
    rows = []
    for group in COST_GROUPS:
        totals = [c.client_ms + c.server_ms for c in costs[group]]
        client_ms = statistics.median(c.client_ms for c in costs[group])
        server_ms = statistics.median(c.server_ms for c in costs[group])
        total = statistics.median(totals)
        detail = (f"client {client_ms:.2f} ms + server {server_ms:.2f} ms (medians), {total / base:.2f} x x25519's, "
                  f"n={len(totals)}")  # fmt: skip
        extra = {
            "client_median_ms": client_ms, "server_median_ms": server_ms, "of_x25519": total / base,
            "client_ms": [c.client_ms for c in costs[group]], "server_ms": [c.server_ms for c in costs[group]],
        }  # fmt: skip
        rows.append(Measurement(
            GROUP, f"our client + our server in memory, TLS 1.3 {GROUP_LABELS[group]}: full handshake",
            total, "ms", GROUP_TARGET_MS, detail=detail, extra=extra,
        ))  # fmt: skip
    return rows


def _error_row(name: str, error: BaseException, unit: str = "x", target: float = RATIO_TARGET) -> Measurement:
    return Measurement(GROUP, name, None, unit, target, error=f"{type(error).__name__}: {error}")


def measure(
    count: int = DEFAULT_COUNT, group_count: int = DEFAULT_GROUP_COUNT, warmup: int = WARMUP
) -> list[Measurement]:
    rows: list[Measurement] = []
    try:
        with Peers.start() as peers:
            pairs = pairs_for(peers)
            rows.extend(rows_for(pairs, time_pairs(pairs, count, warmup)))  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - one ERROR row says why the socket rows could not run
        rows.append(_error_row("TLS 1.3 handshakes + GET (ours, OpenSSL's, tlslite-ng's)", error))
    try:
        rows.extend(measure_group_costs(group_count, warmup))
    except Exception as error:  # noqa: BLE001
        rows.append(_error_row("TLS 1.3 group costs in memory", error, "ms", GROUP_TARGET_MS))
    return rows
