"""Is this the server we meant to reach?  Chain and host name validation for the TLS client.

Theory of operation
-------------------
The Certificate message proves nothing by itself: anyone can send a certificate.  The client trusts
it only when (1) it chains up to a certificate the client already trusts (a root CA in its store),
every signature in the chain verifying, every certificate valid *now* and allowed to do its job, and
(2) the leaf names the host the client wanted (a ``DNSName`` or ``IPAddress`` in subjectAltName; the
Common Name has not counted since RFC 6125).  Only then does encrypting the pre-master secret to the
leaf's key mean "only that server can read it".

We do not hand-roll this: ``cryptography.x509.verification`` (a Rust implementation of the Web PKI
profile of RFC 5280 and the CA/Browser Forum rules) builds and checks the chain.  What this module
adds is the translation of its verdict into the alert a real TLS client sends (OpenSSL's
``ssl_x509err2alert``): no path to a trusted root -> ``unknown_ca``; outside the validity period ->
``certificate_expired``; wrong name or anything else -> ``bad_certificate``.

Parsing a CA file is not free (the system bundle holds ~140 roots: about a millisecond), and a
notebook or benchmark may open hundreds of connections with the same file, so parsed files are kept
in a small cache keyed by path, modification time and size: editing or replacing the file (a lesson
that swaps CAs) is noticed on the next handshake.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError

from ..errors import CertificateError, TLSAlert

__all__ = ["load_trust_store", "verify_server_chain", "subject_for", "clear_trust_store_cache"]

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


def subject_for(server_name: str) -> DNSName | IPAddress:
    """The name the leaf must carry: an IPAddress for a literal address, a DNSName otherwise."""
    try:
        return IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return DNSName(server_name.rstrip("."))


def _alert_for(message: str) -> TLSAlert:
    text = message.lower()
    if "expired" in text or "validation time" in text or "validity" in text:
        return TLSAlert.certificate_expired
    if "candidates exhausted" in text or "issuer" in text or "no valid chain" in text or "self-signed" in text:
        return TLSAlert.unknown_ca
    return TLSAlert.bad_certificate


def verify_server_chain(
    chain: Sequence[x509.Certificate],
    server_name: str,
    trust_anchors: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
) -> list[x509.Certificate]:
    """Validate ``chain`` (leaf first, as sent) for ``server_name``; return the path to the trusted root.

    Raises :class:`~handshake_lib.errors.CertificateError` whose ``tls_alert`` is the alert to send.
    """
    if not chain:
        raise CertificateError("the server sent no certificate")
    if not trust_anchors:
        error = CertificateError("no trusted certificates to validate against (pass cafile= or verify=False)")
        error.tls_alert = TLSAlert.unknown_ca
        raise error
    builder = PolicyBuilder().store(Store(list(trust_anchors))).time(now or datetime.now(UTC))
    verifier = builder.build_server_verifier(subject_for(server_name))
    try:
        return list(verifier.verify(chain[0], list(chain[1:])))
    except VerificationError as exc:
        error = CertificateError(f"certificate for {server_name!r} did not validate: {exc}")
        error.tls_alert = _alert_for(str(exc))
        raise error from None
