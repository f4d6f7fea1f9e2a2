#!/usr/bin/env python3
"""The TLS 1.2 interop matrix: our client and server against OpenSSL's s_server and s_client, every combination.

Theory of operation
-------------------
The matrix is generated, not written: every suite the cores run (``tls.suites.SUITES``) x every group
that suite can use (x25519, secp256r1, secp384r1 for ECDHE; ffdhe2048, ffdhe3072 for DHE; none for RSA
key exchange) x both directions, the certificate type following from the suite (RSA, or ECDSA P-256 for
``TLS_ECDHE_ECDSA_*``).  Each row runs one or two real connections and passes only on evidence both
sides gave independently:

* ``handshake``, ``client`` (our client -> ``openssl s_server -www``): s_server is restricted to the
  row's suite (``-cipher``) and group (``-groups`` for ECDHE; ``-dhparam`` with the RFC 7919 group that
  ``openssl genpkey`` makes for DHE: without it OpenSSL 3.0 picks RFC 3526's group 14 on its own) and
  holds only the row's certificate.  Our client offers only the row's suite and group (plus P-256 beside
  another ECDHE group when the certificate is ECDSA: RFC 8422 5.1 has supported_groups name the curves
  the client can verify too).  Passes when our handshake's suite, group and server key type are the
  row's, and the master secret is the same in our key log line, in s_server's ``-keylogfile`` and on
  the status page s_server sends back (``Master-Key:`` under ``New, TLSv1.2, Cipher is <suite>``).
* ``handshake``, ``server`` (``openssl s_client`` -> our server): our
  :class:`~handshake_lib.net.tls.TLSPageServer` holds an RSA and an ECDSA identity and accepts every suite,
  with one server per group (``groups=[group]``: OpenSSL 3.0's client sends no supported_groups when it
  offers only DHE suites, so the server's own list decides, RFC 7919 section 4).  s_client is forced to
  the suite (``-cipher``) and group (``-curves``).  Passes when s_client verified our chain, reported
  ``Cipher is <suite>``, the row's ``Server Temp Key`` (none for RSA key exchange) and a signature of the
  row's key type, got the page, and its ``-keylogfile`` master secret equals our server's key log line and
  its handshake record (suite and group).
* ``resumption`` (by session ID or by RFC 5077 ticket), both directions, one row per suite with the
  suite's first group: a full handshake then an abbreviated one with the session it left.  Our client
  against s_server (``-no_ticket`` for the ID rows; ``TLSClient(session_ticket=True)`` for the ticket
  rows): s_server's page says ``New`` then ``Reused`` (its ``SSL_session_reused``), our
  ``HandshakeComplete.resumed`` says False then True, the session was resumable by the row's mechanism,
  and s_server logged the same master secret under both client randoms.  s_client against our server
  (``-sess_out`` then ``-sess_in``; ``-no_ticket`` for ID rows): s_client prints ``New`` then ``Reused``,
  our server's records say full then resumed, a ticket came (``TLS session ticket lifetime hint``) only
  on ticket rows, and the key logs agree.
* ``renegotiation`` (RFC 5746), one row per suite with its first group.  Client-initiated, our client ->
  ``openssl s_server -www -client_renegotiation`` (OpenSSL 3.0 refuses a client's renegotiation without
  it): ``TLSStream.renegotiate`` runs, then the page is fetched; our ``handshakes`` are numbered 0 and 1,
  s_server's page counts a server renegotiation and shows the second handshake's master secret, and
  its key log holds both handshakes' secrets as ours does.  Client-initiated, ``openssl s_client`` ->
  our server (``max_renegotiations=1``): s_client reads ``R`` on stdin (so no ``-ign_eof``), says
  ``RENEGOTIATING``, verifies our chain a second time, and gets the page over the new keys; both
  CLIENT_RANDOM lines it logs are in our key log with the same secrets.  Server-initiated, s_server
  (interactive) -> our client (``max_renegotiations=1``): s_server types ``r`` (a HelloRequest), our
  client renegotiates while it reads s_server's next line, then s_server prints ours; the key logs agree
  for both handshakes.  Server-initiated, s_client -> our server (``TLSPageServer(renegotiate=True)``
  sends HelloRequest before it answers the request): s_client answers it on its own, verifies our chain
  twice, gets the page; the key logs agree and our server's record numbers the handshake 1.  Whether
  the renegotiation resumed the session or ran a full handshake is shown.

Bounded and parallel: each row has its own deadline (:data:`ROW_TIMEOUT`) for every socket wait and
child process; rows run on a small thread pool (``--jobs``), each client row with its own s_server
process, the server rows sharing our twelve servers (one event loop each); progress goes to stderr.

Run from the repository root::

    python scripts/tls_interop_matrix.py                 # every row; writes docs/tls_interop_matrix.md
    python scripts/tls_interop_matrix.py --sample        # the covering sample tests/test_tls_interop_matrix.py runs
    python scripts/tls_interop_matrix.py --family resumption --direction server --no-write

``tests/test_tls_interop_matrix.py`` imports this file for :func:`full_matrix`, :func:`covering_sample`,
:class:`Peers` and :func:`parse_document`.  Exit status 0 when every row passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from handshake_lib.errors import ConnectionTimeout, HandshakeError
from handshake_lib.net.tls import ServedConnection, TLSPageServer, TLSStream, open_tls
from handshake_lib.peers.openssl import OpenSSLProcess, s_client, s_server
from handshake_lib.pki.builder import CoursePKI, ServerFiles
from handshake_lib.tls.connection import HandshakeComplete
from handshake_lib.tls.constants import CipherSuite, NamedGroup
from handshake_lib.tls.keylog import KeyLog, parse_keylog, read_keylog
from handshake_lib.tls.server import DEFAULT_SERVER_GROUPS
from handshake_lib.tls.sessions import SessionCache
from handshake_lib.tls.suites import SUITES, openssl_name
from handshake_lib.tls.tickets import TicketKeys

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "tls_interop_matrix.md"

FAMILIES = ("handshake", "resumption", "renegotiation")
DIRECTIONS = ("client", "server")  # client: our client -> s_server; server: s_client -> our server
DIRECTION_LABELS = {"client": "our client -> s_server", "server": "s_client -> our server"}
RESUMPTIONS = ("session ID", "ticket")
# Who starts a renegotiation, by direction: our client (TLSStream.renegotiate) with s_server
# -client_renegotiation, s_client's R with our server; s_server's r (a HelloRequest) to our client.
RENEGOTIATIONS: dict[str, tuple[str, ...]] = {
    "client": ("client-initiated", "server-initiated"),
    "server": ("client-initiated", "server-initiated"),
}
# The groups a suite can use, by key exchange; None: RSA key exchange has no group.
GROUPS_BY_KEY_EXCHANGE: dict[str, tuple[str | None, ...]] = {
    "ECDHE": ("x25519", "secp256r1", "secp384r1"),
    "DHE": ("ffdhe2048", "ffdhe3072"),
    "RSA": (None,),
}
OPENSSL_CURVES = {"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384"}  # -groups / -curves names
# What s_client prints after "Server Temp Key: " for each group.
TEMP_KEYS = {
    "x25519": "X25519, 253 bits", "secp256r1": "ECDH, prime256v1, 256 bits", "secp384r1": "ECDH, secp384r1, 384 bits",
    "ffdhe2048": "DH, 2048 bits", "ffdhe3072": "DH, 3072 bits",
}  # fmt: skip
SERVER_NAME = "localhost"
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
ROW_TIMEOUT = 20.0  # seconds for one row: every socket wait and child process in it
MAX_PAGE = 1 << 20  # bytes of s_server status page read at most


@dataclass(frozen=True)
class Row:
    """One row of the matrix: which family, which way, which suite and group (the certificate follows)."""

    family: str
    direction: str
    suite: CipherSuite
    group: str | None  # None: RSA key exchange
    variant: str | None = None  # resumption: "session ID" or "ticket"; renegotiation: who starts it

    @property
    def params(self):  # noqa: ANN201 - a SuiteParams
        return SUITES[self.suite]

    @property
    def certificate(self) -> str:
        """``RSA`` or ``ECDSA``: the kind of key the suite authenticates with."""
        return self.params.authentication

    @property
    def family_label(self) -> str:
        return f"{self.family} ({self.variant})" if self.variant else self.family

    @property
    def cells(self) -> tuple[str, str, str, str, str]:
        """The identifying cells of the row in the document: family, direction, suite, group, certificate."""
        return (
            self.family_label, DIRECTION_LABELS[self.direction], openssl_name(self.suite), self.group or "none",
            self.certificate,
        )  # fmt: skip

    @property
    def id(self) -> str:
        """A readable pytest id: ``handshake-client-ECDHE-RSA-AES128-GCM-SHA256-x25519``."""
        parts = [self.family, self.variant, self.direction, openssl_name(self.suite), self.group or "none"]
        return "-".join(p.replace(" ", "_") for p in parts if p)


@dataclass
class Outcome:
    """What one row showed: the evidence both sides gave, or why the row failed."""

    row: Row
    evidence: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.evidence)

    @property
    def result(self) -> str:
        return "pass" if self.ok else "FAIL"

    @property
    def cell(self) -> str:
        return self.evidence if self.ok else (self.error or "no evidence")


class RowFailed(Exception):
    """A check of a row did not hold; the message is the evidence column."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise RowFailed(message)


# -- generating the rows ------------------------------------------------------------------------------------
def groups_for(suite: CipherSuite) -> tuple[str | None, ...]:
    return GROUPS_BY_KEY_EXCHANGE[SUITES[suite].key_exchange]


def full_matrix(families: Sequence[str] | None = None, directions: Sequence[str] = DIRECTIONS) -> list[Row]:
    """Every row: handshakes (suite x group), then resumption (suite x mechanism), then renegotiation (suite)."""
    if families is None:
        families = FAMILIES
    rows: list[Row] = []
    for family in families:
        for direction in directions:
            for suite in SUITES:
                if family == "handshake":
                    rows += [Row(family, direction, suite, group) for group in groups_for(suite)]
                elif family == "resumption":
                    rows += [Row(family, direction, suite, groups_for(suite)[0], kind) for kind in RESUMPTIONS]
                else:
                    group = groups_for(suite)[0]
                    rows += [Row(family, direction, suite, group, kind) for kind in RENEGOTIATIONS[direction]]
    return rows


def _features(row: Row) -> set[tuple[str, object]]:
    """What a row exercises: for handshakes every part of the suite and the group; for the other families
    the mechanism, the key exchange and the certificate (the record layer is the handshakes' business)."""
    params = row.params
    if row.family != "handshake":
        return {("certificate", row.variant, row.certificate), ("key_exchange", row.variant, params.key_exchange)}
    return {
        ("group", row.group), ("certificate", row.certificate), ("key_exchange", params.key_exchange),
        ("cipher", params.cipher), ("mac", params.mac_algorithm), ("prf", params.prf_hash),
    }  # fmt: skip


def covering_sample(families: Sequence[str] | None = None, directions: Sequence[str] = DIRECTIONS) -> list[Row]:
    """A few rows per family and direction that still touch every group, certificate type, key exchange,
    cipher, MAC, PRF hash and resumption mechanism: the full matrix walked in order, a row kept when it
    adds a value not seen yet in its family and direction.  Deterministic (SUITES' order)."""
    kept: list[Row] = []
    seen: dict[tuple[str, str], set[tuple[str, object]]] = {}
    for row in full_matrix(families, directions):
        features = _features(row)
        have = seen.setdefault((row.family, row.direction), set())
        if not features <= have:
            kept.append(row)
            have |= features
    return kept


# -- the peers -----------------------------------------------------------------------------------------------
class KeyLogLines:
    """Our key log: every line a core hands to ``keylog=``, kept in memory (thread-safe), parsed on demand."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def master_secret(self, client_random: bytes) -> bytes | None:
        with self._lock:
            text = "\n".join(self._lines)
        return parse_keylog(text).master_secret(client_random)


def _short(secret: bytes | None) -> str:
    return secret[:4].hex() + "…" if secret else "none"


def _says(printed: str, state: str, suite: CipherSuite) -> bool:
    """OpenSSL's summary line (``New, TLSv1.2, Cipher is X``; ``SSLv3``/``TLSv1`` there is the version that
    *defined* the suite, as ``openssl ciphers -v`` prints it) and the protocol of the session, TLS 1.2."""
    line = re.search(rf"^{state}, \S+, Cipher is {re.escape(openssl_name(suite))}$", printed, re.MULTILINE)
    return line is not None and re.search(r"^\s*Protocol\s*: TLSv1\.2$", printed, re.MULTILINE) is not None


def _wait_for(predicate: Callable[[], object], deadline: float) -> None:
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


class Peers:
    """Everything the rows share: the course PKI, an RSA and an ECDSA identity, the RFC 7919 DH parameter
    files for s_server, and our twelve servers (one per group, plus one for RSA key exchange, each with a twin
    that asks its clients to renegotiate)."""

    def __enter__(self) -> Peers:
        self._stack = contextlib.ExitStack()
        stack = self._stack.__enter__()
        try:
            self._start(stack)
        except BaseException:
            stack.close()
            raise
        return self

    def _start(self, stack: contextlib.ExitStack) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("the openssl program is not installed")
        self.openssl = openssl
        self.folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-tls-matrix-")))
        pki = CoursePKI.create()
        self.rsa_files = pki.write_server_files(self.folder)
        ecdsa = pki.issue_server(("localhost", "127.0.0.1"), key_type="ecdsa-p256")
        cert_path, key_path = CoursePKI.write_issued(ecdsa, self.folder, "ecdsa")
        self.files = {
            "RSA": self.rsa_files,
            "ECDSA": ServerFiles(self.rsa_files.ca_path, cert_path, key_path, ecdsa, pki),
        }
        self.dhparams: dict[str, Path] = {}
        for name in GROUPS_BY_KEY_EXCHANGE["DHE"]:
            assert name is not None
            path = self.folder / f"{name}.pem"
            subprocess.run(
                [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{name}", "-out", str(path)],
                check=True, capture_output=True, timeout=ROW_TIMEOUT,
            )  # fmt: skip
            self.dhparams[name] = path
        self.keylog = KeyLogLines()  # every line our servers and clients wrote
        issued = self.rsa_files.issued
        identities = [([ecdsa.certificate.public_bytes(Encoding.DER)], ecdsa.private_key)]
        # One server per group (None: RSA key exchange), and a twin that asks each client to renegotiate
        # (HelloRequest) before it answers: server-initiated renegotiation rows.  Each allows the client one.
        self.servers: dict[str | None, TLSPageServer] = {}
        self.renegotiating: dict[str | None, TLSPageServer] = {}
        for group in (None, *GROUPS_BY_KEY_EXCHANGE["ECDHE"], *GROUPS_BY_KEY_EXCHANGE["DHE"]):
            for servers, renegotiate in ((self.servers, False), (self.renegotiating, True)):
                servers[group] = stack.enter_context(
                    TLSPageServer(
                        [issued.certificate], issued.private_key, identities=identities, cipher_suites=list(SUITES),
                        groups=[NamedGroup[group]] if group else DEFAULT_SERVER_GROUPS, keylog=self.keylog,
                        session_cache=SessionCache(), ticket_keys=TicketKeys(), clock=time.monotonic,
                        max_renegotiations=1, renegotiate=renegotiate, timeout=ROW_TIMEOUT, history=1000,
                    )
                )  # fmt: skip

    def __exit__(self, *exc_info: object) -> None:
        self._stack.__exit__(*exc_info)

    def run(self, row: Row) -> Outcome:
        started = time.monotonic()
        outcome = Outcome(row)
        runner = {
            ("handshake", "client"): self._handshake_our_client,
            ("handshake", "server"): self._handshake_our_server,
            ("resumption", "client"): self._resumption_our_client,
            ("resumption", "server"): self._resumption_our_server,
            ("renegotiation", "client"): self._renegotiation_our_client,
            ("renegotiation", "server"): self._renegotiation_our_server,
        }[(row.family, row.direction)]
        if row.family == "renegotiation" and row.direction == "client" and row.variant == "server-initiated":
            runner = self._hello_request_to_our_client
        try:
            outcome.evidence = runner(row, started + ROW_TIMEOUT)
        except RowFailed as failure:
            outcome.error = str(failure)
        except HandshakeError as error:
            outcome.error = f"ours: {type(error).__name__}: {error}"
        except subprocess.TimeoutExpired:
            outcome.error = f"OpenSSL did not finish within {ROW_TIMEOUT:g} s"
        except Exception as error:  # a surprise in one row is a failed row, not a stopped matrix
            outcome.error = f"unexpected {type(error).__name__}: {error}"
        outcome.seconds = time.monotonic() - started
        return outcome

    # -- our client against s_server -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _s_server(self, row: Row, keylog: Path, *extra: str) -> Iterator[int]:
        options = ["-tls1_2", "-www", "-cipher", openssl_name(row.suite), "-keylogfile", str(keylog), *extra]
        if row.group in OPENSSL_CURVES:
            options += ["-groups", OPENSSL_CURVES[row.group]]
        elif row.group in self.dhparams:
            options += ["-dhparam", str(self.dhparams[row.group])]
        with s_server(self.files[row.certificate], *options, timeout=ROW_TIMEOUT) as peer:
            yield peer.port

    def _our_groups(self, row: Row) -> list[NamedGroup] | None:
        if row.group is None:
            return None
        groups = [NamedGroup[row.group]]
        if row.certificate == "ECDSA" and row.group != "secp256r1":
            groups.append(NamedGroup.secp256r1)  # RFC 8422 5.1: the certificate's curve, for its signature
        return groups

    def _fetch_status_page(self, row: Row, port: int, deadline: float, **options: object) -> tuple[TLSStream, str]:
        """Our client: one handshake with s_server and its ``-www`` status page (what OpenSSL made of it)."""
        groups = self._our_groups(row)
        if groups is not None:
            options["groups"] = groups
        stream = open_tls(
            "127.0.0.1", port, SERVER_NAME, timeout=ROW_TIMEOUT, deadline=deadline,
            cafile=self.rsa_files.ca_path, cipher_suites=[row.suite], keylog=self.keylog, **options,
        )  # fmt: skip
        page = b""
        with stream:
            stream.send(REQUEST, deadline=deadline)
            while len(page) < MAX_PAGE:
                chunk = stream.recv(deadline=deadline)
                if not chunk:
                    break
                page += chunk
        return stream, page.decode("utf-8", "replace")

    def _check_our_handshake(self, row: Row, stream: TLSStream) -> HandshakeComplete:
        handshake = stream.handshake
        expect(handshake.cipher_suite == row.suite, f"we negotiated {handshake.cipher_suite.name}")
        group = NamedGroup(handshake.group).name if handshake.group is not None else None
        expect(group == row.group, f"we negotiated group {group}")
        key = stream.client.server_certificates[0].public_key()
        kind = (
            "ECDSA"
            if isinstance(key, ec.EllipticCurvePublicKey)
            else "RSA"
            if isinstance(key, rsa.RSAPublicKey)
            else "?"
        )
        expect(kind == row.certificate, f"s_server presented a {kind} certificate")
        return handshake

    @staticmethod
    def _page_master_key(row: Row, page: str, state: str) -> bytes:
        """The master key s_server shows on its status page, after checking it says ``state`` and the suite."""
        expect(
            _says(page, state, row.suite),
            f"s_server's page does not say '{state}, ..., Cipher is {openssl_name(row.suite)}' over TLSv1.2",
        )
        found = re.search(r"Master-Key: ([0-9A-F]{96})", page)
        expect(found is not None, "no Master-Key on s_server's page")
        assert found is not None
        return bytes.fromhex(found.group(1))

    def _handshake_our_client(self, row: Row, deadline: float) -> str:
        keylog = self.folder / f"{row.id}.s_server.log"
        with self._s_server(row, keylog) as port:
            stream, page = self._fetch_status_page(row, port, deadline)
        handshake = self._check_our_handshake(row, stream)
        page_key = self._page_master_key(row, page, "New")
        ours = self.keylog.master_secret(handshake.client_random)
        theirs = read_keylog(keylog).master_secret(handshake.client_random)
        expect(ours == handshake.master_secret, "our key log line does not hold our master secret")
        expect(theirs == ours, f"master secret: ours {_short(ours)}, s_server's key log {_short(theirs)}")
        expect(page_key == ours, f"master secret: ours {_short(ours)}, s_server's page {_short(page_key)}")
        return f"s_server: New, {openssl_name(row.suite)}; master secret {_short(ours)} = s_server key log = page"

    def _resumption_our_client(self, row: Row, deadline: float) -> str:
        keylog = self.folder / f"{row.id}.s_server.log"
        by_ticket = row.variant == "ticket"
        with self._s_server(row, keylog, *(() if by_ticket else ("-no_ticket",))) as port:
            first, first_page = self._fetch_status_page(row, port, deadline, session_ticket=by_ticket)
            session = first.handshake.session
            expect(session is not None, "s_server gave our client no session to resume")
            assert session is not None
            expect(session.resumable_by == row.variant, f"the session is resumable by {session.resumable_by}")
            second, second_page = self._fetch_status_page(
                row, port, deadline, session_ticket=by_ticket, session=session
            )
        self._check_our_handshake(row, first)
        key = self._page_master_key(row, first_page, "New")
        again = self._page_master_key(row, second_page, "Reused")  # OpenSSL's SSL_session_reused
        expect(not first.handshake.resumed, "our first handshake says resumed")
        expect(second.handshake.resumed, "s_server says Reused, our second handshake says full")
        logged = read_keylog(keylog)
        secrets = {logged.master_secret(s.handshake.client_random) for s in (first, second)}
        ours = {self.keylog.master_secret(s.handshake.client_random) for s in (first, second)}
        expect(
            secrets == ours == {first.handshake.master_secret} == {key, again},
            "the master secrets of the two handshakes differ between our key log, s_server's and its page",
        )
        return (
            f"s_server: New then Reused; ours: full then resumed ({session.resumable_by}); "
            f"master secret {_short(key)} both"
        )

    # -- s_client against our server -----------------------------------------------------------------------
    def _s_client_options(self, row: Row, keylog: Path, *extra: str) -> list[str]:
        """s_client's options for a row (everything but ``-connect``): TLS 1.2, our CA, the suite and group."""
        options = [
            "-tls1_2", "-CAfile", str(self.rsa_files.ca_path), "-verify_return_error", "-servername", SERVER_NAME,
            "-keylogfile", str(keylog), "-cipher", openssl_name(row.suite), *extra,
        ]  # fmt: skip
        if row.group in OPENSSL_CURVES:
            curves = OPENSSL_CURVES[row.group]
            if row.certificate == "ECDSA" and row.group != "secp256r1":
                curves += ":P-256"  # RFC 8422 5.1: the curve of the certificate it will verify
            options += ["-curves", curves]
        return options

    def _server_for(self, row: Row) -> TLSPageServer:
        """Our server for the row's group; the one that sends HelloRequest for a server-initiated row."""
        return (self.renegotiating if row.variant == "server-initiated" else self.servers)[row.group]

    def _s_client(self, row: Row, keylog: Path, deadline: float, *extra: str) -> str:
        """s_client sends the request and reads until our server closes (``-ign_eof``); what it printed."""
        server = self._server_for(row)
        command = [
            self.openssl, "s_client", "-connect", f"{server.host}:{server.port}",
            *self._s_client_options(row, keylog, "-ign_eof", *extra),
        ]  # fmt: skip
        result = subprocess.run(
            command, input=REQUEST, capture_output=True, timeout=max(deadline - time.monotonic(), 0.1)
        )
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0:
            lines = [line for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            raise RowFailed(f"s_client exit {result.returncode}: {lines[-1] if lines else output[-200:]}")
        return output + result.stderr.decode("utf-8", "replace")

    def _served(self, row: Row, client_random: bytes, deadline: float) -> ServedConnection:
        server = self._server_for(row)

        def find() -> ServedConnection | None:
            for _ in range(5):
                with contextlib.suppress(RuntimeError):  # the server's thread appended meanwhile
                    for record in list(server.connections):
                        if record.handshake is not None and record.handshake.client_random == client_random:
                            return record
            return None

        _wait_for(find, deadline)
        record = find()
        expect(record is not None, "our server has no handshake with s_client's client random")
        assert record is not None
        return record

    @staticmethod
    def _client_random(keylog: Path, index: int = -1) -> tuple[bytes, bytes]:
        entries = [e for e in read_keylog(keylog).entries if e.label == "CLIENT_RANDOM"]
        expect(len(entries) > 0, "s_client wrote no CLIENT_RANDOM line")
        return entries[index].client_random, entries[index].secret

    def _check_s_client_output(self, row: Row, output: str, state: str) -> str:
        name = openssl_name(row.suite)
        expect(_says(output, state, row.suite), f"s_client did not say '{state}, ..., Cipher is {name}' over TLSv1.2")
        expect("Verify return code: 0 (ok)" in output, "s_client did not verify our chain")
        expect("Hello from the Handshakes TLS server" in output, "s_client did not get our page")
        if state == "Reused":
            return ""
        temp = re.search(r"Server Temp Key: (.*)", output)
        if row.group is None:
            expect(temp is None, f"Server Temp Key {temp.group(1) if temp else ''} in an RSA key exchange")
            expect("Server public key is 2048 bit" in output, "s_client did not get our 2048-bit RSA key")
            return "no Temp Key, RSA 2048 key"
        expect(
            temp is not None and temp.group(1).strip() == TEMP_KEYS[row.group],
            f"s_client's Server Temp Key: {temp.group(1).strip() if temp else None}",
        )
        signature = re.search(r"Peer signature type: (\S+)", output)
        kind = signature.group(1) if signature else None
        expect(kind is not None and (kind == "ECDSA") == (row.certificate == "ECDSA"), f"Peer signature type {kind}")
        return f"Temp Key {TEMP_KEYS[row.group]}, {kind} signature"

    def _check_served(self, row: Row, record: ServedConnection, resumed: bool) -> HandshakeComplete:
        handshake = record.handshake
        assert handshake is not None
        expect(handshake.cipher_suite == row.suite, f"our server negotiated {handshake.cipher_suite.name}")
        group = NamedGroup(handshake.group).name if handshake.group is not None else None
        expect(resumed or group == row.group, f"our server negotiated group {group}")
        expect(handshake.resumed == resumed, f"our server's handshake says resumed={handshake.resumed}")
        return handshake

    def _handshake_our_server(self, row: Row, deadline: float) -> str:
        keylog = self.folder / f"{row.id}.s_client.log"
        output = self._s_client(row, keylog, deadline)
        said = self._check_s_client_output(row, output, "New")
        client_random, theirs = self._client_random(keylog)
        handshake = self._check_served(row, self._served(row, client_random, deadline), resumed=False)
        ours = self.keylog.master_secret(client_random)
        expect(ours == handshake.master_secret, "our key log line does not hold our server's master secret")
        expect(theirs == ours, f"master secret: ours {_short(ours)}, s_client's key log {_short(theirs)}")
        return f"s_client: {said}; master secret {_short(ours)} = s_client key log"

    def _resumption_our_server(self, row: Row, deadline: float) -> str:
        keylog = self.folder / f"{row.id}.s_client.log"
        saved = self.folder / f"{row.id}.session.pem"
        extra = () if row.variant == "ticket" else ("-no_ticket",)
        first = self._s_client(row, keylog, deadline, "-sess_out", str(saved), *extra)
        second = self._s_client(row, keylog, deadline, "-sess_in", str(saved), *extra)
        self._check_s_client_output(row, first, "New")
        self._check_s_client_output(row, second, "Reused")
        ticket = "TLS session ticket lifetime hint:" in first
        expect(ticket == (row.variant == "ticket"), f"s_client {'got' if ticket else 'did not get'} a ticket")
        (first_random, first_secret), (second_random, second_secret) = (
            self._client_random(keylog, 0), self._client_random(keylog, 1)
        )  # fmt: skip
        full = self._check_served(row, self._served(row, first_random, deadline), resumed=False)
        resumed = self._check_served(row, self._served(row, second_random, deadline), resumed=True)
        ours = {self.keylog.master_secret(first_random), self.keylog.master_secret(second_random)}
        expect(
            ours == {first_secret, second_secret} == {full.master_secret, resumed.master_secret},
            "the master secrets of the two handshakes differ between our key log and s_client's",
        )
        return (
            f"s_client: New then Reused; ours: full then resumed ({row.variant}); "
            f"master secret {_short(first_secret)} both"
        )

    # -- renegotiation (RFC 5746) ---------------------------------------------------------------------------
    def _renegotiation_our_client(self, row: Row, deadline: float) -> str:
        """Our client renegotiates (``TLSStream.renegotiate``) with s_server ``-client_renegotiation``, then
        fetches s_server's status page over the new keys."""
        keylog = self.folder / f"{row.id}.s_server.log"
        with self._s_server(row, keylog, "-client_renegotiation") as port:
            groups = self._our_groups(row)
            options = {"groups": groups} if groups is not None else {}
            stream = open_tls(
                "127.0.0.1", port, SERVER_NAME, timeout=ROW_TIMEOUT, deadline=deadline,
                cafile=self.rsa_files.ca_path, cipher_suites=[row.suite], keylog=self.keylog, **options,
            )  # fmt: skip
            page = b""
            with stream:
                renegotiated = stream.renegotiate(deadline=deadline)
                expect(renegotiated is not None, "s_server declined the renegotiation (no_renegotiation)")
                stream.send(REQUEST, deadline=deadline)
                while len(page) < MAX_PAGE:
                    chunk = stream.recv(deadline=deadline)
                    if not chunk:
                        break
                    page += chunk
        self._check_our_handshake(row, stream)
        handshakes = list(stream.client.handshakes)
        numbers = [h.renegotiation for h in handshakes]
        expect(numbers == [0, 1], f"our client's handshakes: {numbers}")
        first, second = handshakes
        text = page.decode("utf-8", "replace")
        counted = re.search(r"(\d+) server renegotiates", text)
        expect(counted is not None and int(counted.group(1)) >= 1, "s_server's page counts no renegotiation")
        state = "Reused" if second.resumed else "New"
        page_key = self._page_master_key(row, text, state)  # the session now in use: the renegotiated one
        self._compare_key_logs((first, second), read_keylog(keylog), "s_server")
        expect(page_key == second.master_secret, "s_server's page shows another master secret than our second")
        how = "resumed" if second.resumed else "full"
        return (
            f"s_server counted {counted.group(1) if counted else '?'} renegotiation; ours: 2 handshakes ({how}); "
            f"master secrets {_short(first.master_secret)}, {_short(second.master_secret)} = s_server key log"
        )

    def _hello_request_to_our_client(self, row: Row, deadline: float) -> str:
        """s_server (interactive, no -www) types ``r``: a HelloRequest to our client, which renegotiates while
        it reads; then a line from s_server and one from us cross the connection under the new keys."""
        keylog = self.folder / f"{row.id}.s_server.log"
        options = ["-tls1_2", "-cipher", openssl_name(row.suite), "-keylogfile", str(keylog)]
        if row.group in OPENSSL_CURVES:
            options += ["-groups", OPENSSL_CURVES[row.group]]
        elif row.group in self.dhparams:
            options += ["-dhparam", str(self.dhparams[row.group])]
        groups = self._our_groups(row)
        extra = {"groups": groups} if groups is not None else {}
        with s_server(self.files[row.certificate], *options, timeout=ROW_TIMEOUT, stdin=True) as peer:
            stream = open_tls(
                peer.host, peer.port, SERVER_NAME, timeout=ROW_TIMEOUT, deadline=deadline,
                cafile=self.rsa_files.ca_path, cipher_suites=[row.suite], keylog=self.keylog,
                max_renegotiations=1, **extra,
            )  # fmt: skip
            with stream:
                expect(_printed(peer, rb"CIPHER is ", deadline), "s_server did not finish its handshake")
                # s_server: SSL_renegotiate, then SSL_do_handshake, which sends the HelloRequest and (its socket
                # blocks) runs the new handshake before it reads its input again.
                peer.write(b"r\n")
                while stream.handshake.renegotiation == 0:  # recv() answers the HelloRequest while it waits
                    expect(time.monotonic() < deadline, "no renegotiation in time")
                    with contextlib.suppress(ConnectionTimeout):
                        stream.recv(deadline=min(deadline, time.monotonic() + 0.2))
                expect(_printed(peer, rb"SSL_do_handshake -> 1", deadline), "s_server's new handshake failed")
                # Typed only now: s_server would read "r" and this line in one go as one command.
                peer.write(b"from s_server after the HelloRequest\n")
                received = stream.recv(deadline=deadline)
                stream.send(b"from our client after renegotiating\n", deadline=deadline)
                expect(
                    _printed(peer, rb"from our client after renegotiating", deadline), "s_server did not print our line"
                )
        self._check_our_handshake(row, stream)
        handshakes = list(stream.client.handshakes)
        numbers = [h.renegotiation for h in handshakes]
        expect(numbers == [0, 1], f"our client's handshakes: {numbers}")
        expect(received == b"from s_server after the HelloRequest\n", f"we read {received!r}")
        self._compare_key_logs(handshakes, read_keylog(keylog), "s_server")
        how = "resumed" if handshakes[1].resumed else "full"
        return (
            f"s_server: r, SSL_do_handshake -> 1, a line each way after; ours: 2 handshakes ({how}); "
            f"master secrets {_short(handshakes[0].master_secret)}, {_short(handshakes[1].master_secret)} "
            "= s_server key log"
        )

    def _compare_key_logs(self, handshakes: Sequence[HandshakeComplete], theirs: KeyLog, who: str) -> None:
        for handshake in handshakes:
            ours, logged = (
                self.keylog.master_secret(handshake.client_random),
                theirs.master_secret(handshake.client_random),
            )
            expect(
                ours == logged == handshake.master_secret,
                f"handshake {handshake.renegotiation}: ours {_short(ours)}, {who}'s key log {_short(logged)}",
            )

    def _renegotiation_our_server(self, row: Row, deadline: float) -> str:
        """s_client renegotiates with our server: it types ``R`` (client-initiated), or our server asks with a
        HelloRequest before it answers the request (server-initiated, ``TLSPageServer(renegotiate=True)``)."""
        keylog = self.folder / f"{row.id}.s_client.log"
        if row.variant == "server-initiated":
            output = self._s_client(row, keylog, deadline)
            started = "HelloRequest answered"
        else:
            server = self._server_for(row)
            # Without -ign_eof: s_client reads its commands (R) from stdin; our server closes after the page.
            with s_client(server.port, *self._s_client_options(row, keylog), timeout=ROW_TIMEOUT) as peer:
                expect(_printed(peer, rb"Extended master secret: \w+\r?\n---", deadline), "s_client's handshake")
                peer.write(b"R\n")
                expect(_printed(peer, rb"RENEGOTIATING", deadline), "s_client did not start renegotiating")
                peer.write(REQUEST)  # s_client starts the new handshake with this SSL_write
                expect(_printed(peer, rb"Hello from the Handshakes TLS server", deadline), "no page after R")
                output = peer.output.decode("utf-8", "replace")
            started = "RENEGOTIATING"
        self._check_s_client_output(row, output, "New")
        entries = [e for e in read_keylog(keylog).entries if e.label == "CLIENT_RANDOM"]
        expect(len(entries) == 2, f"s_client logged {len(entries)} handshakes")
        # A full renegotiation sends our chain again (s_client verifies it twice); a resumed one does not.
        resumed = entries[0].secret == entries[1].secret
        verified = output.count("verify return:1") // 2
        expect(verified == (1 if resumed else 2), f"s_client verified our chain {verified} times ({resumed=})")
        for entry in entries:
            ours = self.keylog.master_secret(entry.client_random)
            expect(
                ours == entry.secret, f"master secret: ours {_short(ours)}, s_client's key log {_short(entry.secret)}"
            )
        # The server's record holds the connection's latest handshake: the renegotiation, numbered 1.
        record = self._served(row, entries[1].client_random, deadline)
        assert record.handshake is not None
        expect(record.handshake.renegotiation == 1, f"our server numbered it {record.handshake.renegotiation}")
        _wait_for(lambda: record.finished, deadline)
        expect(record.status == 200, f"our server answered {record.status}")
        expect(record.handshake.resumed == resumed, f"our server's renegotiation says resumed={not resumed}")
        how = "resumed" if resumed else "full"
        return (
            f"s_client: {started}, chain verified {'once' if resumed else 'twice'}, page after; "
            f"ours: 2 handshakes ({how}); "
            f"master secrets {_short(entries[0].secret)}, {_short(entries[1].secret)} = s_client key log"
        )


def _printed(peer: OpenSSLProcess, pattern: bytes, deadline: float) -> bool:
    """Whether the openssl program printed ``pattern`` (stdout and stderr) by ``deadline``, reading on until it has."""
    found = re.compile(pattern)
    while found.search(peer.output) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not peer.read_output(found, wait=remaining) and peer.process.poll() is not None:
            return found.search(peer.output) is not None
    return True


# -- running and writing ---------------------------------------------------------------------------------------
def run_rows(
    peers: Peers, rows: Sequence[Row], jobs: int, progress: Callable[[str], None] | None = None
) -> list[Outcome]:
    """Every row on ``jobs`` threads; the outcomes in the rows' order."""
    started = time.monotonic()
    outcomes: dict[Row, Outcome] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(peers.run, row): row for row in rows}
        for done, future in enumerate(as_completed(futures), 1):
            outcome = future.result()
            outcomes[futures[future]] = outcome
            if progress is not None and (done % 20 == 0 or done == len(rows) or not outcome.ok):
                failed = "" if outcome.ok else f"  FAIL {outcome.row.id}: {outcome.error}"
                progress(f"{done}/{len(rows)} ({time.monotonic() - started:.0f} s){failed}")
    return [outcomes[row] for row in rows]


HEADER = "| family | direction | suite | group | certificate | result | evidence |"


def heading(outcomes: Sequence[Outcome]) -> str:
    passed = sum(o.ok for o in outcomes)
    return f"# TLS 1.2 interop matrix: {passed} of {len(outcomes)} rows passed"


def markdown(outcomes: Sequence[Outcome]) -> str:
    lines = [HEADER, "|---|---|---|---|---|---|---|"]
    for outcome in outcomes:
        cell = outcome.cell.replace("|", "\\|").replace("\n", " ")
        lines.append("| " + " | ".join((*outcome.row.cells, outcome.result, cell)) + " |")
    return "\n".join(lines)


def totals(outcomes: Sequence[Outcome], seconds: float) -> str:
    passed = Counter((o.row.family_label, o.row.direction) for o in outcomes if o.ok)
    counted = Counter((o.row.family_label, o.row.direction) for o in outcomes)
    lines = ["| family | direction | rows | passed | failed |", "|---|---|---|---|---|"]
    for (family, direction), count in counted.items():
        ok = passed[(family, direction)]
        lines.append(f"| {family} | {DIRECTION_LABELS[direction]} | {count} | {ok} | {count - ok} |")
    total_ok = sum(passed.values())
    lines.append(
        f"\n**{total_ok} of {len(outcomes)} rows passed** ({len(outcomes) - total_ok} failed) in {seconds:.0f} s."
    )
    return "\n".join(lines)


def document(outcomes: Sequence[Outcome], seconds: float, jobs: int) -> str:
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=10).stdout
    openssl = version.split(" (Library")[0].strip()
    families = sorted({o.row.family for o in outcomes}, key=FAMILIES.index)
    missing = [f for f in FAMILIES if f not in families]
    intro = (
        f"Generated by `python scripts/tls_interop_matrix.py` ({date.today().isoformat()}, {openssl}; "
        f"Python {platform.python_version()} with {ssl.OPENSSL_VERSION}; {jobs} rows at a time); regenerate it "
        "rather than edit it. Rows: every suite the cores run (`tls/suites.py`) x every group it can use x both "
        "directions for the handshakes, the certificate (RSA or ECDSA P-256) following from the suite; then "
        "resumption by session ID and by ticket for every suite (its first group), both directions; then "
        "renegotiation for every suite (its first group), started by either side, both ways (OpenSSL's client "
        "resumes the session when our server's HelloRequest asks it to renegotiate). Our client "
        "talks to `openssl s_server -www` restricted to the row; `openssl s_client` forced to the row talks to "
        "our `TLSPageServer` holding both identities. Evidence: the master secret (first 4 bytes shown) as "
        "our key log line, OpenSSL's `-keylogfile` (and s_server's status page) hold it; s_client's `Cipher "
        "is`, `Server Temp Key` and peer signature type; s_server's page and s_client saying `New` or `Reused` "
        "beside our `HandshakeComplete.resumed`; for renegotiation, both handshakes' master secrets in both key "
        "logs and OpenSSL saying it renegotiated. See the script's docstring for every check."
    )
    if missing:
        intro += f" Not run here: {', '.join(missing)} (the cores do not have it yet)."
    return "\n".join(
        (heading(outcomes), "", intro, "", markdown(outcomes), "", "## Totals", "", totals(outcomes, seconds), "")
    )


def parse_document(text: str) -> tuple[tuple[int, int], list[tuple[str, ...]]]:
    """``((passed, rows), [cells + (result,)])`` from a document :func:`document` wrote."""
    found = re.search(r"^# TLS 1\.2 interop matrix: (\d+) of (\d+) rows passed$", text, re.MULTILINE)
    if found is None:
        raise ValueError("no heading with the counts")
    rows: list[tuple[str, ...]] = []
    in_table = False
    for line in text.splitlines():
        if line == HEADER:
            in_table = True
            continue
        if in_table and line.startswith("|---"):
            continue
        if in_table and line.startswith("| "):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows.append(tuple(cells[:6]))
        elif in_table:
            break
    return (int(found.group(1)), int(found.group(2))), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="only the covering sample the tests run")
    parser.add_argument("--family", choices=FAMILIES, action="append", help="only this family (repeatable)")
    parser.add_argument("--direction", choices=DIRECTIONS, action="append", help="only this direction")
    parser.add_argument("--jobs", type=int, default=4, help="rows run at a time (default 4)")
    parser.add_argument("--no-write", action="store_true", help=f"print, do not write {DOCUMENT.relative_to(ROOT)}")
    parser.add_argument("--failures-only", action="store_true", help="print only the rows that failed")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    directions = tuple(args.direction or DIRECTIONS)
    rows = (covering_sample if args.sample else full_matrix)(args.family, directions)
    partial = args.sample or args.family or args.direction
    print(f"{len(rows)} rows, {args.jobs} at a time ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with Peers() as peers:
        outcomes = run_rows(peers, rows, args.jobs, lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.monotonic() - started
    if args.no_write or partial:
        shown = [o for o in outcomes if not o.ok] if args.failures_only else outcomes
        print(markdown(shown))
        print(totals(outcomes, seconds))
    else:
        DOCUMENT.write_text(document(outcomes, seconds, args.jobs), encoding="utf-8")
        print(f"wrote {DOCUMENT.relative_to(ROOT)}", file=sys.stderr)
        print(totals(outcomes, seconds))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
