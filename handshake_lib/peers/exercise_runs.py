"""The last step of exercises 02, 03 and 04: the learner's function inside a real handshake with OpenSSL.

A passing exercise ends with a handshake that succeeds against a real peer, and a wrong answer fails
the way that peer makes it fail (DESIGN section 3, rule 6).  Each function starts what it needs on
loopback with fresh keys, for the duration of the call, and reports instead of raising: the learner's
function may fail any way, and the notebook shows what happened.

* :func:`run_learner_client_hello` (exercise 02): the learner's ClientHello bytes go to an OpenSSL
  server exactly as encoded (:func:`handshake_lib.net.tls.send_client_hello`); if OpenSSL answers with its
  whole first flight, our client runs a complete handshake whose ClientHello is the learner's and
  fetches the page.
* :func:`run_learner_cipher_choice` (exercise 03): our server (:class:`~handshake_lib.net.tls.TLSPageServer`)
  picks the suite with the learner's rule, and OpenSSL's client (:func:`handshake_lib.peers.openssl.openssl_fetch`)
  says what it negotiated.
* :func:`run_learner_certificate_checks` (exercise 04): the learner's ``host_matches`` and
  ``within_validity`` decide our client's host-name and validity checks (:mod:`handshake_lib.pki.checks`)
  against OpenSSL servers presenting the right certificate, another host's, an expired one and one not
  yet valid; a right check gets the page or refuses with the library's alert, a wrong one lets the
  wrong certificate through, and the report says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import CertificateError, HandshakeError, TLSAlert
from ..net.tls import TLSPageServer, open_tls, tls_get
from ..pki.builder import CoursePKI, ServerFiles
from ..pki.checks import LIBRARY_CHECKS, CertificateChecks, HostMatches, WithinValidity
from ..pki.issue import Authority, new_key
from ..pki.report import ValidationReport
from ..tls.constants import OPENSSL_NAMES, CipherSuite, name_of
from ..tls.flight import ServerAnswer
from ..tls.stages import BuildClientHello, ChooseCipherSuite, Stages
from .openssl import PythonSSLServer, openssl_fetch, openssl_server, server_context

__all__ = [
    "CERTIFICATE_CASES",
    "HELLO_SERVER_CIPHERS",
    "CertificateCase",
    "CertificateCaseRun",
    "LearnerChecksRun",
    "LearnerChoiceRun",
    "LearnerHelloRun",
    "run_learner_certificate_checks",
    "run_learner_cipher_choice",
    "run_learner_client_hello",
]

# What lesson 02's OpenSSL server accepts: the four RSA key exchange suites the course teaches and one
# ECDHE suite, so that offering ECDHE-RSA-AES256-GCM-SHA384 alone finds nothing in common.
HELLO_SERVER_CIPHERS = "AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"


# -- exercise 02: encode a ClientHello --------------------------------------------------------------
@dataclass
class LearnerHelloRun:
    """Exercise 02's live step: OpenSSL's answer to the learner's bytes, then (if it liked them) a full fetch."""

    answer: ServerAnswer | None = None
    status: int | None = None
    body: bytes = b""
    cipher_suite: str = ""
    error: str = ""

    @property
    def page_arrived(self) -> bool:
        return self.status == 200 and bool(self.body)

    def summary(self) -> str:
        lines = []
        if self.answer is not None:
            lines.append("1. your ClientHello, sent as it is to OpenSSL:")
            lines.extend("   " + line for line in self.answer.summary().splitlines())
        if self.status is not None:
            lines.append(f"2. a full handshake started by your ClientHello: {self.cipher_suite}, HTTP {self.status}")
            lines.append(f"   page: {self.body[:120].decode('utf-8', errors='replace')}")
        if self.error:
            lines.append(f"stopped: {self.error}")
        return "\n".join(lines)


def run_learner_client_hello(
    encode_client_hello: BuildClientHello,
    cipher_suites: Sequence[int] = (
        CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    ),
    *,
    server_ciphers: str = HELLO_SERVER_CIPHERS,
    timeout: float = 5.0,
) -> LearnerHelloRun:
    """Exercise 02's last step, against a fresh OpenSSL server on loopback.

    1. The learner's bytes go to OpenSSL exactly as encoded; its answer (ServerHello... or an alert)
       is recorded.
    2. If OpenSSL answered with its whole first flight, our client runs a complete handshake whose
       ClientHello is the learner's (``build_client_hello``), and fetches the page.
    """
    run = LearnerHelloRun()
    host = "localhost"
    with openssl_server(server_ciphers, timeout=timeout) as peer:
        try:
            first = encode_client_hello(client_random=os.urandom(32), suites=list(cipher_suites), server_name=host)
        except Exception as error:  # noqa: BLE001 - the learner's function; report, do not crash
            run.error = f"encode_client_hello raised {type(error).__name__}: {error}"
            return run
        if not isinstance(first, bytes | bytearray):
            run.error = f"encode_client_hello returned {type(first).__name__}, not bytes"
            return run
        run.answer = peer.send_client_hello(bytes(first), timeout=timeout)
        if not run.answer.complete:
            run.error = "OpenSSL did not accept your ClientHello"
            return run

        try:
            response = tls_get(
                peer.url, cafile=peer.cafile, cipher_suites=list(cipher_suites),
                stages=Stages(build_client_hello=encode_client_hello),
                timeout=timeout,
            )
        except HandshakeError as error:
            run.error = f"{type(error).__name__}: {error}"
            return run
        run.status, run.body = response.status, response.body
        run.cipher_suite = name_of(CipherSuite, response.handshake.cipher_suite)
    return run


# -- exercise 03: choose the cipher suite as a server ---------------------------------------------
@dataclass
class LearnerChoiceRun:
    """Exercise 03's live step: what OpenSSL's client negotiated with our server running the learner's rule."""

    offered: list[str]
    supported: list[str]
    prefer: str
    openssl_cipher: str = ""  # from the OpenSSL client's SSLSocket.cipher()
    server_error: str = ""
    client_error: str = ""
    page: bytes = b""

    def summary(self) -> str:
        lines = [
            f"OpenSSL client offers {self.offered}; our server supports {self.supported}, {self.prefer} preference",
        ]
        if self.openssl_cipher:
            lines.append(f"handshake complete: OpenSSL's client reports cipher {self.openssl_cipher}")
        if self.page:
            lines.append(f"page: {self.page[:80].decode('utf-8', errors='replace')}...")
        if self.client_error:
            lines.append(f"OpenSSL's client: {self.client_error}")
        if self.server_error:
            lines.append(f"our server (your rule): {self.server_error}")
        return "\n".join(lines)


def run_learner_cipher_choice(
    choose_cipher_suite: ChooseCipherSuite,
    offered: Sequence[str],
    supported: Sequence[str] = ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES128-SHA"),
    *,
    prefer: str = "server",
    files: ServerFiles | None = None,
    timeout: float = 5.0,
) -> LearnerChoiceRun:
    """Our TLS server, with the learner's rule choosing the suite, meets OpenSSL's client (Python ``ssl``).

    ``offered`` and ``supported`` are OpenSSL names; ``supported`` must be RSA key exchange suites
    (what our server runs).  The client verifies our certificate against the course CA.
    """
    run = LearnerChoiceRun(list(offered), list(supported), prefer)
    with contextlib.ExitStack() as cleanup:
        if files is None:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-exercise-"))
            files = CoursePKI.create().write_server_files(Path(folder))
        server = TLSPageServer(
            [files.issued.der], files.issued.private_key, cipher_suites=[OPENSSL_NAMES[n] for n in supported],
            prefer=prefer, stages=Stages(choose_cipher_suite=choose_cipher_suite), timeout=timeout,
        )
        with server:
            fetched = openssl_fetch(
                server.host, server.port, cafile=files.ca_path, ciphers=":".join(offered), timeout=timeout
            )
        run.openssl_cipher, run.page, run.client_error = fetched.cipher, fetched.page, fetched.error
        if server.connections and server.connections[0].error is not None:
            run.server_error = str(server.connections[0].error)
    return run


# -- exercise 04: the learner's certificate checks guard a connection ------------------------------
@dataclass(frozen=True)
class CertificateCase:
    """One server of exercise 04's live step: the certificate it presents and the name our client asks for."""

    name: str
    summary: str
    names: tuple[str, ...]  # the leaf's subjectAltName entries (DNS names and IP addresses)
    valid_from: dt.timedelta  # notBefore, from now
    valid_until: dt.timedelta  # notAfter, from now
    connect_as: str  # the host our client wants: its SNI, and what host_matches is asked about
    library_alert: TLSAlert | None  # what the library's own checks answer; None: the page arrives


_IN_DATE = (-dt.timedelta(hours=1), dt.timedelta(days=7))
CERTIFICATE_CASES: dict[str, CertificateCase] = {
    case.name: case
    for case in (
        CertificateCase("right", "a certificate for localhost and 127.0.0.1, asked for as localhost",
                        ("localhost", "127.0.0.1"), *_IN_DATE, "localhost", None),
        CertificateCase("right-by-address", "the same certificate, asked for as 127.0.0.1",
                        ("localhost", "127.0.0.1"), *_IN_DATE, "127.0.0.1", None),
        CertificateCase("other-host", "a certificate for www.other.example, asked for as localhost",
                        ("www.other.example",), *_IN_DATE, "localhost", TLSAlert.bad_certificate),
        CertificateCase("expired", "a certificate for localhost that expired yesterday",
                        ("localhost",), -dt.timedelta(days=10), -dt.timedelta(days=1), "localhost",
                        TLSAlert.certificate_expired),
        CertificateCase("not-yet-valid", "a certificate for localhost valid from tomorrow",
                        ("localhost",), dt.timedelta(days=1), dt.timedelta(days=10), "localhost",
                        TLSAlert.bad_certificate),
    )
}  # fmt: skip


@dataclass
class CertificateCaseRun:
    """What became of one case: the page, or the alert our client sent; the report's two replaceable checks."""

    case: CertificateCase
    status: int | None = None  # the HTTP status when the page arrived
    body: bytes = b""
    alert: TLSAlert | None = None  # the alert our client sent when it refused the certificate
    error: str = ""  # anything else that stopped it, or the refusal in one line
    host_name: str = ""  # the report's host_name line (who decided, and whether the library agrees)
    validity: str = ""  # the report's validity line
    openssl_says: str = ""  # why OpenSSL ended the connection, in its words, when our client refused

    @property
    def page_arrived(self) -> bool:
        return self.status == 200 and bool(self.body)

    @property
    def as_the_library_decides(self) -> bool:
        """The page arrived where the library lets it in, or our client refused with the library's alert."""
        if self.case.library_alert is None:
            return self.page_arrived
        return self.alert is self.case.library_alert and not self.page_arrived

    def outcome(self) -> str:
        if self.page_arrived:
            return f"the page arrived (HTTP {self.status})"
        if self.alert is not None:
            return f"refused: our client sent the alert {self.alert.name}"
        return f"stopped: {self.error}"

    def lines(self) -> list[str]:
        alert = self.case.library_alert
        wanted = "the page arrives" if alert is None else f"refused with {alert.name}"
        mark = "as it should" if self.as_the_library_decides else f"WRONG: with the library's checks, {wanted}"
        lines = [f"{self.case.summary}:", f"  {self.outcome()}  ({mark})"]
        lines += [f"  {line}" for line in (self.host_name, self.validity) if line]
        if self.openssl_says:
            lines.append(f"  OpenSSL says: {self.openssl_says}")
        return lines


@dataclass
class LearnerChecksRun:
    """Exercise 04's live step: one :class:`CertificateCaseRun` per case, by case name."""

    runs: dict[str, CertificateCaseRun] = field(default_factory=dict)

    def __getitem__(self, name: str) -> CertificateCaseRun:
        return self.runs[name]

    def summary(self) -> str:
        return "\n".join(line for run in self.runs.values() for line in run.lines())


def run_learner_certificate_checks(
    host_matches: HostMatches | None = None,
    within_validity: WithinValidity | None = None,
    *,
    cases: Sequence[str] = tuple(CERTIFICATE_CASES),
    timeout: float = 5.0,
) -> LearnerChecksRun:
    """Exercise 04's last step: our client, with the learner's checks deciding, meets OpenSSL servers.

    For each of ``cases`` (names in :data:`CERTIFICATE_CASES`) an OpenSSL server (Python ``ssl``) on
    loopback presents a certificate from a fresh course root, and our client, trusting that root and
    nothing else, connects with ``certificate_checks=CertificateChecks(host_matches=...,
    within_validity=...)`` (a function left None is the library's) and fetches ``/``.  Cases with the
    same certificate share one server.  The learner's functions may fail in any way: every outcome is
    recorded, nothing is raised.  Keys: one RSA key for every leaf (our client runs RSA key exchange),
    an ECDSA root; all of it lives in a temporary folder for the duration of the call.
    """
    unknown = [name for name in cases if name not in CERTIFICATE_CASES]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}: use {', '.join(CERTIFICATE_CASES)}")
    replaced = {"host_matches": host_matches, "within_validity": within_validity}
    checks = LIBRARY_CHECKS.replace(**{name: function for name, function in replaced.items() if function is not None})
    now = dt.datetime.now(dt.UTC)
    root = Authority.root("Handshakes Exercise 04 Root CA", new_key("ecdsa-p256"), now=now)
    key = new_key("rsa2048")
    by_certificate: dict[tuple[object, ...], list[CertificateCase]] = {}
    for name in cases:
        case = CERTIFICATE_CASES[name]
        by_certificate.setdefault((case.names, case.valid_from, case.valid_until), []).append(case)
    run = LearnerChecksRun()
    with tempfile.TemporaryDirectory(prefix="handshakes-exercise-04-") as folder:
        key_path = Path(folder) / "server.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        for number, ((names, valid_from, valid_until), group) in enumerate(by_certificate.items()):
            leaf = root.leaf(names, key, now=now, not_before=valid_from, not_after=valid_until)
            cert_path = Path(folder) / f"server-{number}.pem"
            cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
            context = server_context(cert_path, key_path, ciphers="AES128-GCM-SHA256",
                                     maximum_version=ssl.TLSVersion.TLSv1_2)
            with PythonSSLServer(context, timeout=timeout) as server:
                for case in group:
                    run.runs[case.name] = _fetch_with_checks(server, case, root.certificate, checks, timeout)
    return LearnerChecksRun({name: run.runs[name] for name in cases})  # in the order asked for


def _fetch_with_checks(
    server: PythonSSLServer, case: CertificateCase, root: x509.Certificate, checks: CertificateChecks, timeout: float
) -> CertificateCaseRun:
    result = CertificateCaseRun(case)
    deadline = time.monotonic() + timeout
    seen = len(server.connections)
    try:
        with open_tls(server.host, server.port, case.connect_as, trusted_certificates=[root],
                      certificate_checks=checks, timeout=timeout, deadline=deadline) as stream:
            _describe(result, stream.client.certificate_report)
            stream.send(f"GET / HTTP/1.1\r\nHost: {case.connect_as}\r\nConnection: close\r\n\r\n".encode(),
                        deadline=deadline)
            response = b""
            while len(response) < _MAX_PAGE_BYTES:
                chunk = stream.recv(deadline=deadline)
                if not chunk:
                    break
                response += chunk
    except CertificateError as refused:
        result.alert, result.error = refused.tls_alert, f"{type(refused).__name__}: {refused}"
        _describe(result, refused.report)
        result.openssl_says = server.error_of(seen, wait=min(1.0, timeout))
        return result
    except (HandshakeError, OSError) as error:
        result.error = f"{type(error).__name__}: {error}"
        return result
    head, _, body = response[:_MAX_PAGE_BYTES].partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) >= 2 and status_line[1].isdigit():
        result.status, result.body = int(status_line[1]), body
    else:
        result.error = f"no HTTP response, only {response[:60]!r}"
    return result


_MAX_PAGE_BYTES = 1 << 16  # the OpenSSL server's page is a few hundred bytes


def _describe(result: CertificateCaseRun, report: ValidationReport | None) -> None:
    if report is not None:
        result.host_name = str(report.result("host_name"))
        result.validity = str(report.result("validity"))
