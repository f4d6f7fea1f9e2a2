"""Is this the peer we meant to reach?  The TLS client's and server's one call into certificate validation.

Theory of operation
-------------------
The Certificate message proves nothing by itself: anyone can send a certificate.  The client trusts
it only when (1) it chains up to a certificate the client already trusts (a root CA in its store),
every signature in the chain verifying, every certificate valid *now* and allowed to do its job, and
(2) the leaf names the host the client wanted (a ``DNSName`` or ``IPAddress`` in subjectAltName; the
Common Name has not counted since RFC 6125).  Only then does encrypting the pre-master secret to the
leaf's key mean "only that server can read it".  With client certificates (mutual TLS) the server asks
the same of the client's chain, for clientAuth, with no host name.

The checks are the course's own validator, :func:`handshake_lib.pki.validate.validate`, which makes
an ordered report, one entry per check (path, signature, validity, basic constraints, path length, key
usage, extended key usage, name constraints, host name, revocation, critical extensions), each pass,
fail or not checked with a one-line reason.  The first failure names the alert a real TLS stack sends
for it (OpenSSL's ``ssl_x509err2alert``): :class:`~handshake_lib.errors.UnknownCA`,
:class:`~handshake_lib.errors.CertificateExpired`, :class:`~handshake_lib.errors.BadCertificate`,
:class:`~handshake_lib.errors.UnsupportedCertificate`, :class:`~handshake_lib.errors.CertificateRevoked`,
:class:`~handshake_lib.errors.CertificateUnknown`; the exception carries the whole report
(``error.report``), and so does the connection that succeeded (``certificate_report``).
``cryptography.x509.verification`` is no longer used here: it is the tests' second opinion.

Parsing a CA file is not free (the system bundle holds ~140 roots: about a millisecond), and a
notebook or benchmark may open hundreds of connections with the same file, so parsed files are kept
in a small cache keyed by path, modification time and size: editing or replacing the file (a lesson
that swaps CAs) is noticed on the next handshake.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from ..errors import BadCertificate, CertificateError, UnknownCA
from ..pki.checks import LIBRARY_CHECKS, CertificateChecks
from ..pki.loading import load_ocsp_response
from ..pki.report import Purpose, ValidationReport
from ..pki.revocation import RevocationPolicy
from ..pki.validate import validate

__all__ = [
    "load_trust_store",
    "validate_peer_chain",
    "verify_server_chain",
    "verify_client_chain",
    "clear_trust_store_cache",
]

_CACHE_SIZE = 16  # distinct CA files kept parsed; a course uses a handful


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_pem_file(resolved: str, mtime_ns: int, size: int) -> tuple[x509.Certificate, ...]:
    """The certificates in one version of a PEM file (the key names the version: path, mtime, size).

    ``lru_cache`` is safe to call from several threads (TLSPageServer serves each connection in one),
    so the sans-I/O package needs no lock of its own; an edited file has a new key, and its stale
    version ages out of the cache.
    """
    with warnings.catch_warnings():
        # Some old roots in system bundles break RFC 5280 (negative serials): warn-only noise.
        warnings.simplefilter("ignore")
        return tuple(x509.load_pem_x509_certificates(Path(resolved).read_bytes()))


def clear_trust_store_cache() -> None:
    """Forget every parsed CA file (the next handshake reads and parses them again)."""
    _parse_pem_file.cache_clear()


def _pem_certificates(path: str | Path) -> list[x509.Certificate]:
    """The certificates in a PEM file, parsed once per (path, mtime, size)."""
    resolved = os.path.realpath(path)
    status = os.stat(resolved)
    return list(_parse_pem_file(resolved, status.st_mtime_ns, status.st_size))


def load_trust_store(
    cafile: str | Path | None = None, trusted_certificates: Sequence[x509.Certificate] | None = None
) -> list[x509.Certificate]:
    """Trust anchors: the PEM certificates in ``cafile`` plus ``trusted_certificates``.

    With neither, the system's CA bundle (the file OpenSSL itself would use), so that ``verify=True``
    means "trust what the machine trusts", as browsers and curl do.
    """
    anchors: list[x509.Certificate] = list(trusted_certificates or ())
    if cafile is not None:
        anchors += _pem_certificates(cafile)
    if cafile is None and not trusted_certificates:
        import ssl  # only here, to ask OpenSSL where its CA bundle is: importing tls loads no socket code

        paths = ssl.get_default_verify_paths()
        for candidate in (paths.cafile, paths.openssl_cafile):
            if candidate and Path(candidate).is_file():
                anchors += _pem_certificates(candidate)
                break
    return anchors


def _as_utc(now: datetime | None) -> datetime:
    when = now or datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when  # naive: UTC, as cryptography takes it


def validate_peer_chain(
    chain: Sequence[x509.Certificate],
    trust_anchors: Sequence[x509.Certificate],
    *,
    purpose: Purpose,
    host: str | None = None,
    now: datetime | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    stapled_ocsp: bytes | None = None,
    revocation_policy: RevocationPolicy | str = RevocationPolicy.REQUIRE_FRESH,
    checks: CertificateChecks = LIBRARY_CHECKS,
) -> ValidationReport:
    """The report for a chain as a peer sent it (leaf first, then its intermediates in any order).

    ``checks`` are the functions deciding the host_name and validity checks (lesson 04's exercise puts
    the learner's own there: :mod:`handshake_lib.pki.checks`).

    Raises the report's error (a :class:`~handshake_lib.errors.CertificateError` subclass named after the
    alert to send, ``error.report`` attached) when the chain is refused.
    """
    peer = "server" if purpose is Purpose.SERVER else "client"
    if not chain:
        raise BadCertificate(f"the {peer} sent no certificate")
    if not trust_anchors:
        raise UnknownCA(f"no trusted certificates to validate the {peer}'s certificate against")
    stapled = None
    if stapled_ocsp is not None:
        try:
            stapled = load_ocsp_response(stapled_ocsp)
        except CertificateError:
            stapled = None  # a stapled answer we cannot read counts as no answer; the policy decides
    report = validate(
        chain[0], intermediates=list(chain[1:]), trust_anchors=list(trust_anchors), purpose=purpose, host=host,
        at=_as_utc(now), crls=list(crls), stapled_ocsp=stapled, revocation_policy=revocation_policy,
        checks=checks,
    )  # fmt: skip
    error = report.error()
    if error is not None:
        raise error
    return report


def verify_server_chain(
    chain: Sequence[x509.Certificate],
    server_name: str,
    trust_anchors: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
) -> list[x509.Certificate]:
    """Validate ``chain`` (leaf first, as sent) for ``server_name``; return the path to the trusted root.

    Raises a :class:`~handshake_lib.errors.CertificateError` subclass named after the alert to send
    (:class:`~handshake_lib.errors.UnknownCA`, :class:`~handshake_lib.errors.CertificateExpired`...), with
    the validator's report as ``error.report``.
    """
    report = validate_peer_chain(chain, trust_anchors, purpose=Purpose.SERVER, host=server_name, now=now)
    return list(report.path)


def verify_client_chain(
    chain: Sequence[x509.Certificate],
    trust_anchors: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
) -> list[x509.Certificate]:
    """Validate a client's ``chain`` (leaf first, as sent) for clientAuth; return the path to the trusted root.

    The server side of mutual TLS: no host name to match (the server did not choose whom it talks to),
    but the same trust, validity and purpose checks, and the same alert classes as
    :func:`verify_server_chain` (a leaf without clientAuth in its extendedKeyUsage:
    :class:`~handshake_lib.errors.UnsupportedCertificate`).
    """
    report = validate_peer_chain(chain, trust_anchors, purpose=Purpose.CLIENT, now=now)
    return list(report.path)
