"""Lesson 04's live runs: mutual TLS with OpenSSL asking, a stapled OCSP answer, a short-lived certificate renewed.

Each function starts what it needs on loopback with fresh keys from a fresh course root, for the
duration of the call, and returns what both sides saw instead of raising: a refusal is the point of
half of these runs.

* :func:`run_mutual_tls`: ``openssl s_server -Verify 1 -verify_return_error`` (it requires a client
  certificate from the course root) meets our client twice: with the course client certificate (OpenSSL
  prints ``verify return:1`` for it and its root, and the subject it saw; our transcript holds the
  CertificateRequest we got and the Certificate and CertificateVerify we sent), then without one (OpenSSL
  says "peer did not return a certificate" and sends ``handshake_failure``).
* :func:`run_stapled_ocsp`: ``openssl s_server -status_file`` staples a *good*, then a *revoked* OCSP
  response about its own certificate; our client asks for it (``request_ocsp_status=True``), our
  validator reads it: the first connection completes, the second ends with ``certificate_revoked``.
* :func:`run_short_lived`: an OpenSSL server (Python ``ssl``) presents a leaf valid for six days (Let's
  Encrypt's short-lived profile); our client validates it now, then as of seven days from now
  (``TLSClient(now=...)``, the time the validator checks at: ``certificate_expired``), then the server is
  renewed in place (a new leaf from the same root for the same key, loaded into the running server's
  context, as a reload does) and the client, still seven days ahead, connects again.

Every wait has a deadline (``timeout`` per connection, s_server's output read for at most a second);
OpenSSL processes are killed and their files deleted when the call returns.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import CertificateError, HandshakeError, PeerAlert, TLSAlert
from ..net.tls import open_tls
from ..pki.builder import CoursePKI, ServerFiles
from ..pki.issue import Authority, new_key
from ..pki.loading import load_ocsp_response
from ..pki.report import ValidationReport
from ..pki.revocation_data import ocsp_response
from ..tls.connection import TranscriptEntry
from ..tls.constants import ClientCertificateType, SignatureScheme, name_of
from ..tls.messages import Certificate, CertificateRequest, CertificateStatus, CertificateVerify
from .openssl import OpenSSLProcess, PythonSSLServer, s_server, server_context

__all__ = [
    "MutualTLSAttempt",
    "MutualTLSRun",
    "ShortLivedRun",
    "ShortLivedStep",
    "StapledOCSPAttempt",
    "StapledOCSPRun",
    "ocsp_fields",
    "run_mutual_tls",
    "run_short_lived",
    "run_stapled_ocsp",
]

CIPHER = "AES128-GCM-SHA256"  # an RSA key exchange suite: what our client runs


def _messages(transcript: Sequence[TranscriptEntry] | None, kind: type) -> list:
    return [m for entry in transcript or () for m in entry.messages if isinstance(m, kind)]


def _alert_name(code: int | None) -> str:
    if code is None:
        return ""
    try:
        return TLSAlert(code).name
    except ValueError:
        return f"alert {code}"


# -- mutual TLS: OpenSSL asks for our certificate -----------------------------------------------------
# s_server's verify callback prints "depth=N <subject>" then "verify return:1" (or 0) for each certificate
# of the client's chain, root first; an error that ends a handshake is one line of OpenSSL's error queue.
_VERIFY_LINE = re.compile(rb"^depth=(\d+) (.*?)\r?\nverify (?:return|error):(\d+)", re.MULTILINE)
_ERROR_LINE = re.compile(rb"^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:\n]*)", re.MULTILINE)
_VERIFIED_LEAF = re.compile(rb"^depth=0 .*\r?\nverify (?:return|error):\d", re.MULTILINE)
_CONNECTION_ENDED = re.compile(_VERIFIED_LEAF.pattern + rb"|" + _ERROR_LINE.pattern, re.MULTILINE)


@dataclass
class MutualTLSAttempt:
    """One connection of :func:`run_mutual_tls`: what OpenSSL printed, and what our transcript holds."""

    with_certificate: bool
    completed: bool = False  # our client finished the handshake
    alert: TLSAlert | int | None = None  # the alert OpenSSL sent when it refused
    error: str = ""  # anything else that stopped it
    openssl_printed: str = ""  # s_server's lines about this connection, as printed
    certificate_request: CertificateRequest | None = None  # what OpenSSL asked for
    sent_certificates: tuple[str, ...] = ()  # the subjects in the Certificate we sent (empty: none)
    certificate_verify: str = ""  # the scheme of the CertificateVerify we sent ("" when none was sent)

    @property
    def openssl_verified(self) -> list[tuple[int, str, int]]:
        """(depth, subject as OpenSSL prints it, verify return code) for each certificate OpenSSL checked."""
        return [
            (int(depth), subject.decode("utf-8", "replace"), int(code))
            for depth, subject, code in _VERIFY_LINE.findall(self.openssl_printed.encode())
        ]

    @property
    def openssl_subject(self) -> str | None:
        """The client certificate's subject as OpenSSL printed it (depth 0), None when it saw none."""
        return next((subject for depth, subject, _ in self.openssl_verified if depth == 0), None)

    @property
    def openssl_errors(self) -> list[str]:
        """OpenSSL's reasons for ending the connection, e.g. "peer did not return a certificate"."""
        return [reason.decode("utf-8", "replace") for reason in _ERROR_LINE.findall(self.openssl_printed.encode())]

    def lines(self) -> list[str]:
        title = "with the course client certificate" if self.with_certificate else "without a client certificate"
        lines = [f"{title}:"]
        if self.certificate_request is not None:
            request = self.certificate_request
            kinds = ", ".join(name_of(ClientCertificateType, kind) for kind in request.certificate_types)
            names = [_rfc4514(der) for der in request.certificate_authorities]
            lines.append(
                f"  OpenSSL's CertificateRequest: types {kinds}; "
                f"{len(request.supported_signature_algorithms)} signature schemes; CAs {names or 'any'}"
            )
        sent = ", ".join(self.sent_certificates) or "an empty list (no certificate)"
        lines.append(f"  our Certificate: {sent}")
        lines.append(f"  our CertificateVerify: {self.certificate_verify or 'not sent (nothing to prove)'}")
        for depth, subject, code in self.openssl_verified:
            lines.append(f"  OpenSSL checked depth {depth}: {subject} -> verify return:{code}")
        lines += [f"  OpenSSL: {reason}" for reason in self.openssl_errors]
        if self.completed:
            lines.append("  handshake complete: OpenSSL accepted our certificate")
        elif self.alert is not None:
            lines.append(f"  refused: OpenSSL sent the alert {_alert_name(int(self.alert))}")
        if self.error:
            lines.append(f"  stopped: {self.error}")
        return lines


def _rfc4514(der: bytes) -> str:
    """A DistinguishedName from a CertificateRequest, as RFC 4514 text (its hex if it is not a DER Name)."""
    try:
        return x509.Name.from_bytes(der).rfc4514_string()
    except ValueError:
        return der.hex()


@dataclass
class MutualTLSRun:
    """Both connections of :func:`run_mutual_tls`, and the subject of the certificate we presented."""

    client_subject: str  # RFC 4514, as our certificate holds it
    with_certificate: MutualTLSAttempt
    without_certificate: MutualTLSAttempt
    command: list[str] = field(default_factory=list)  # the s_server command line (file paths shortened)

    def summary(self) -> str:
        lines = [f"openssl {' '.join(self.command)}", f"our client certificate: {self.client_subject}"]
        return "\n".join(lines + self.with_certificate.lines() + self.without_certificate.lines())


def run_mutual_tls(*, client_name: str = "alice", key_type: str = "ecdsa-p256", timeout: float = 5.0) -> MutualTLSRun:
    """OpenSSL's ``s_server -Verify 1 -verify_return_error -CAfile <course root>`` meets our client twice.

    The course root issues the server's certificate and the client's (``client_name``, ``key_type``:
    ``"ecdsa-p256"`` or ``"rsa2048"``, clientAuth); our client trusts the root for the server and
    sends its certificate and a CertificateVerify when asked.  Then it connects again without one.
    Raises :class:`~handshake_lib.peers.PeerUnavailable` when ``openssl`` is not installed.
    """
    pki = CoursePKI.create()
    client = pki.issue_client(client_name, key_type=key_type)
    credentials = {"client_certificate_chain": [client.certificate], "client_private_key": client.private_key}
    with tempfile.TemporaryDirectory(prefix="handshakes-mtls-") as folder:
        files = pki.write_server_files(Path(folder))
        options = ("-tls1_2", "-cipher", CIPHER, "-www", "-Verify", "1", "-verify_return_error",
                   "-CAfile", str(files.ca_path))  # fmt: skip
        with s_server(files, *options, timeout=timeout) as peer:
            with_certificate = _mutual_attempt(peer, files, credentials, timeout)
            without_certificate = _mutual_attempt(peer, files, {}, timeout)
            command = [Path(part).name if "/" in part else part for part in peer.command[1:]]
    return MutualTLSRun(client.certificate.subject.rfc4514_string(), with_certificate, without_certificate, command)


def _mutual_attempt(peer: OpenSSLProcess, files: ServerFiles, credentials: dict, timeout: float) -> MutualTLSAttempt:
    attempt = MutualTLSAttempt(with_certificate=bool(credentials))
    transcript = None
    try:
        with open_tls(
            peer.host, peer.port, "localhost", cafile=files.ca_path, timeout=timeout, **credentials
        ) as stream:
            attempt.completed = True
            transcript = stream.transcript
    except PeerAlert as refused:
        attempt.alert = _as_alert(refused.description)
        transcript = refused.transcript
    except (HandshakeError, OSError) as error:
        attempt.error = f"{type(error).__name__}: {error}"
        transcript = getattr(error, "transcript", None)
    attempt.openssl_printed = peer.read_output(_CONNECTION_ENDED, wait=min(1.0, timeout)).decode("utf-8", "replace")
    requests = _messages(transcript, CertificateRequest)
    attempt.certificate_request = requests[0] if requests else None
    certificates = _messages(transcript, Certificate)
    if len(certificates) > 1:  # the server's, then ours
        attempt.sent_certificates = tuple(
            x509.load_der_x509_certificate(der).subject.rfc4514_string() for der in certificates[1].certificates
        )
    verifies = _messages(transcript, CertificateVerify)
    attempt.certificate_verify = name_of(SignatureScheme, verifies[0].algorithm) if verifies else ""
    return attempt


def _as_alert(code: int) -> TLSAlert | int:
    try:
        return TLSAlert(code)
    except ValueError:
        return code


# -- a stapled OCSP response, good then revoked --------------------------------------------------------
@dataclass
class StapledOCSPAttempt:
    """One connection of :func:`run_stapled_ocsp`: the response OpenSSL stapled, and what our client made of it."""

    status: str  # the status the stapled response was built with: good or revoked
    completed: bool = False
    alert: TLSAlert | None = None  # the alert our client sent when its validator refused
    error: str = ""
    stapled: bytes | None = None  # the CertificateStatus's OCSP response, byte for byte as it came
    fields: dict[str, str] = field(default_factory=dict)  # what the stapled response says
    revocation: str = ""  # our validator's revocation line

    def lines(self) -> list[str]:
        lines = [f"OpenSSL staples a '{self.status}' response ({len(self.stapled or b'')} bytes):"]
        lines += [f"  {name}: {value}" for name, value in self.fields.items()]
        if self.revocation:
            lines.append(f"  our validator: {self.revocation}")
        if self.completed:
            lines.append("  handshake complete")
        elif self.alert is not None:
            lines.append(f"  refused: our client sent the alert {self.alert.name}")
        if self.error:
            lines.append(f"  stopped: {self.error}")
        return lines


@dataclass
class StapledOCSPRun:
    """Both connections of :func:`run_stapled_ocsp`, by status."""

    good: StapledOCSPAttempt
    revoked: StapledOCSPAttempt

    def summary(self) -> str:
        return "\n".join(self.good.lines() + self.revoked.lines())


def ocsp_fields(der: bytes) -> dict[str, str]:
    """What an OCSP response says, field by field, in the order RFC 6960 puts them (for a lesson to print)."""
    response = load_ocsp_response(der)
    fields = {"responseStatus": response.response_status.name.lower()}
    if response.response_status.name != "SUCCESSFUL":
        return fields
    fields["responderID (key hash)"] = (response.responder_key_hash or b"").hex()[:16] + "..."
    fields["producedAt"] = response.produced_at_utc.isoformat()
    fields["certID serialNumber"] = f"{response.serial_number:x}"[:16] + "..."
    fields["certStatus"] = response.certificate_status.name.lower()
    if response.revocation_time_utc is not None:
        reason = response.revocation_reason.name if response.revocation_reason is not None else "unspecified"
        fields["revocationTime"] = f"{response.revocation_time_utc.isoformat()} (reason {reason})"
    fields["thisUpdate"] = response.this_update_utc.isoformat()
    if response.next_update_utc is not None:
        fields["nextUpdate"] = response.next_update_utc.isoformat()
    fields["signed by"] = (
        ", ".join(cert.subject.rfc4514_string() for cert in response.certificates) or "(no certificate)"
    )
    return fields


def run_stapled_ocsp(*, timeout: float = 5.0) -> StapledOCSPRun:
    """``openssl s_server -status_file`` staples a good, then a revoked OCSP response; our client asks and judges.

    The responses are about the server's own certificate, signed by the course root that issued it
    (:func:`handshake_lib.pki.revocation_data.ocsp_response`), valid from an hour ago to tomorrow.  Our
    client trusts that root and asks with ``request_ocsp_status=True``; its validator reads the stapled
    answer (the report's revocation check), so the revoked one ends the handshake with
    ``certificate_revoked``.  Raises :class:`~handshake_lib.peers.PeerUnavailable` without ``openssl``.
    """
    pki = CoursePKI.create()
    issuer = Authority(pki.root.certificate, pki.root.private_key)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    attempts = {}
    with tempfile.TemporaryDirectory(prefix="handshakes-ocsp-") as folder:
        files = pki.write_server_files(Path(folder))
        for status in ("good", "revoked"):
            der = ocsp_response(files.issued.certificate, issuer, status, this_update=now - dt.timedelta(hours=1),
                                next_update=now + dt.timedelta(days=1))  # fmt: skip
            status_file = Path(folder) / f"{status}.der"
            status_file.write_bytes(der)
            options = ("-tls1_2", "-cipher", CIPHER, "-www", "-status_file", str(status_file))
            with s_server(files, *options, timeout=timeout) as peer:
                attempts[status] = _stapled_attempt(status, peer, files, timeout)
    return StapledOCSPRun(attempts["good"], attempts["revoked"])


def _stapled_attempt(status: str, peer: OpenSSLProcess, files: ServerFiles, timeout: float) -> StapledOCSPAttempt:
    attempt = StapledOCSPAttempt(status)
    report: ValidationReport | None = None
    try:
        with open_tls(peer.host, peer.port, "localhost", cafile=files.ca_path, timeout=timeout,
                      request_ocsp_status=True) as stream:  # fmt: skip
            attempt.completed = True
            attempt.stapled = stream.handshake.stapled_ocsp_response
            report = stream.client.certificate_report
    except CertificateError as refused:
        attempt.alert, report = refused.tls_alert, refused.report
        attempt.stapled = _stapled_in(refused.transcript)
    except (HandshakeError, OSError) as error:
        attempt.error = f"{type(error).__name__}: {error}"
    if attempt.stapled is not None:
        attempt.fields = ocsp_fields(attempt.stapled)
    if report is not None:
        attempt.revocation = str(report.result("revocation"))
    return attempt


def _stapled_in(transcript: Sequence[TranscriptEntry] | None) -> bytes | None:
    found = _messages(transcript, CertificateStatus)
    return found[0].ocsp_response if found else None


# -- a short-lived certificate, expired, then renewed ---------------------------------------------------
@dataclass
class ShortLivedStep:
    """One connection of :func:`run_short_lived`: the client's clock, the leaf the server sent, the outcome."""

    label: str
    client_time: dt.datetime  # the time our client validated at
    serial: str = ""  # the leaf's serial number (hex, shortened): a renewed certificate has a new one
    valid: str = ""  # the leaf's notBefore .. notAfter
    completed: bool = False
    alert: TLSAlert | None = None
    error: str = ""
    validity: str = ""  # our validator's validity line

    def lines(self) -> list[str]:
        outcome = (
            "handshake complete" if self.completed
            else f"refused with {self.alert.name}" if self.alert is not None
            else f"stopped: {self.error}"
        )  # fmt: skip
        return [
            f"{self.label} (client's clock {self.client_time:%Y-%m-%d %H:%M} UTC): {outcome}",
            f"  leaf serial {self.serial}, valid {self.valid}",
            f"  {self.validity}",
        ]


@dataclass
class ShortLivedRun:
    """The three connections of :func:`run_short_lived`, in order."""

    lifetime: dt.timedelta
    steps: list[ShortLivedStep]

    def summary(self) -> str:
        head = f"a leaf valid for {self.lifetime.days} days; the server renews it after {RENEW_AFTER.days} days"
        return "\n".join([head] + [line for step in self.steps for line in step.lines()])


SHORT_LIFETIME = dt.timedelta(days=6)  # Let's Encrypt's short-lived profile: 160 hours, a little under
RENEW_AFTER = dt.timedelta(days=4)  # renew at two thirds of the lifetime, as ACME clients do by default
LATER = dt.timedelta(days=7)  # the client's second look: past the first leaf's notAfter


def run_short_lived(*, timeout: float = 5.0) -> ShortLivedRun:
    """A six-day leaf checked now and a week from now, then renewed in the running server and checked again.

    An OpenSSL server (Python ``ssl``) on loopback presents a leaf for ``localhost`` from a fresh root.
    Our client trusts that root; ``TLSClient(now=...)`` sets the time its validator checks at, so "a
    week from now" needs no clock change.  Renewal issues a new leaf (new serial, same key, valid from
    day 4 to day 10) and loads it into the running server's context, as a reload does: the next
    connection gets it, on the same port.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root = Authority.root("Handshakes Short-lived Root CA", new_key("ecdsa-p256"), now=now)
    key = new_key("rsa2048")
    first = root.leaf(["localhost"], key, now=now, not_before=-dt.timedelta(hours=1), not_after=SHORT_LIFETIME)
    renewed_at = now + RENEW_AFTER
    renewed = root.leaf(["localhost"], key, now=renewed_at, not_before=-dt.timedelta(hours=1),
                        not_after=SHORT_LIFETIME)  # fmt: skip
    steps = []
    with tempfile.TemporaryDirectory(prefix="handshakes-short-lived-") as folder:
        key_path = Path(folder) / "server.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path = Path(folder) / "server.pem"
        cert_path.write_bytes(first.public_bytes(serialization.Encoding.PEM))
        context = server_context(cert_path, key_path, ciphers=CIPHER, maximum_version=ssl.TLSVersion.TLSv1_2)
        with PythonSSLServer(context, timeout=timeout) as server:
            steps.append(_short_lived_step("1. now", server, root, first, now, timeout))
            steps.append(_short_lived_step("2. a week later, not renewed", server, root, first, now + LATER, timeout))
            cert_path.write_bytes(renewed.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(cert_path, key_path)  # the renewal: new connections get the new leaf
            steps.append(_short_lived_step("3. a week later, renewed on day 4", server, root, renewed, now + LATER,
                                           timeout))  # fmt: skip
    return ShortLivedRun(SHORT_LIFETIME, steps)


def _short_lived_step(
    label: str, server: PythonSSLServer, root: Authority, leaf: x509.Certificate, at: dt.datetime, timeout: float
) -> ShortLivedStep:
    step = ShortLivedStep(label, at)
    report: ValidationReport | None = None
    presented = None
    try:
        with open_tls(server.host, server.port, "localhost", trusted_certificates=[root.certificate], now=at,
                      timeout=timeout) as stream:  # fmt: skip
            step.completed = True
            report = stream.client.certificate_report
            presented = _messages(stream.transcript, Certificate)
    except CertificateError as refused:
        step.alert, report = refused.tls_alert, refused.report
        presented = _messages(refused.transcript, Certificate)
    except (HandshakeError, OSError) as error:
        step.error = f"{type(error).__name__}: {error}"
    if presented:
        leaf = x509.load_der_x509_certificate(presented[0].certificates[0])  # what the server really sent
    step.serial = f"{leaf.serial_number:x}"[:12] + "..."
    step.valid = f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} .. {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if report is not None:
        step.validity = str(report.result("validity"))
    return step
