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
adds is the alert a real TLS client sends (OpenSSL's ``ssl_x509err2alert``) when the verdict is no.
``cryptography`` says *that* the chain failed (one ``VerificationError`` type, with a message meant for
people), not why, so a refused chain goes through our own checks, in the order OpenSSL meets the same
problems, and each one raises its own exception class (:mod:`handshake_lib.errors`):

1. no presented certificate is a trust anchor or signed by one: :class:`UnknownCA` (``unknown_ca``);
2. a certificate past its notAfter: :class:`CertificateExpired` (``certificate_expired``); one before
   its notBefore: :class:`BadCertificate` (OpenSSL says ``bad_certificate`` for "not yet valid");
3. a leaf whose extendedKeyUsage leaves out serverAuth: :class:`UnsupportedCertificate`;
4. a leaf that verifies for a name it carries but not for the one we wanted: :class:`BadCertificate`;
5. anything else: :class:`CertificateUnknown` (``certificate_unknown``, OpenSSL's default), with
   ``cryptography``'s own words in the message for the learner.

The server checks a client certificate (mutual TLS) the same way, with :func:`verify_client_chain`:
``cryptography``'s client verifier (the chain, validity, and the clientAuth purpose; no host name), and
the same alerts for a refusal, except that a leaf whose extendedKeyUsage leaves out *clientAuth* is the
:class:`UnsupportedCertificate`.  Both functions are the one place each role calls a verifier, so that
our own validator (``pki``) can take over in one change.

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
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError

from ..errors import (
    BadCertificate,
    CertificateError,
    CertificateExpired,
    CertificateUnknown,
    UnknownCA,
    UnsupportedCertificate,
)

__all__ = [
    "load_trust_store",
    "verify_server_chain",
    "verify_client_chain",
    "subject_for",
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


def subject_for(server_name: str) -> DNSName | IPAddress:
    """The name the leaf must carry: an IPAddress for a literal address, a DNSName otherwise."""
    try:
        return IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return DNSName(server_name.rstrip("."))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Does ``issuer``'s name and key sign ``cert``?  (Two CAs may share a name: the signature decides.)"""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _anchored(chain: Sequence[x509.Certificate], trust_anchors: Sequence[x509.Certificate]) -> bool:
    """Is some presented certificate a trust anchor, or signed by one?"""
    return any(cert in trust_anchors or any(_issued_by(cert, a) for a in trust_anchors) for cert in chain)


def _names_on(leaf: x509.Certificate) -> list[DNSName | IPAddress]:
    """The subjectAltName entries the verifier could match (DNS names and IP addresses)."""
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = [DNSName(name) for name in names.get_values_for_type(x509.DNSName) if "*" not in name]
    return [*dns, *(IPAddress(address) for address in names.get_values_for_type(x509.IPAddress))]


def _serves_tls(leaf: x509.Certificate, purpose: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH) -> bool:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no extendedKeyUsage: any purpose (RFC 5280 section 4.2.1.12)
    return purpose in usages


def _window_refusal(chain: Sequence[x509.Certificate], now: datetime, owner: str, what: str) -> CertificateError | None:
    """The first certificate of ``chain`` outside its validity window at ``now``, as its alert; None if none."""
    for position, cert in enumerate(chain):
        which = f"the {owner}'s certificate" if position == 0 else f"chain certificate {position}"
        if now > cert.not_valid_after_utc:
            return CertificateExpired(
                f"{what} did not validate: {which} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if now < cert.not_valid_before_utc:
            return BadCertificate(
                f"{what} did not validate: {which} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
    return None


def _refusal(
    chain: Sequence[x509.Certificate],
    server_name: str,
    trust_anchors: Sequence[x509.Certificate],
    now: datetime,
    verifier_said: str,
) -> CertificateError:
    """Why a chain the verifier refused is wrong, as the exception class of the alert to send."""
    if not _anchored(chain, trust_anchors):
        return UnknownCA(
            f"certificate for {server_name!r} did not validate: no certificate in the chain is trusted or issued "
            f"by a trusted CA (issuer {chain[-1].issuer.rfc4514_string()!r})"
        )
    window = _window_refusal(chain, now, "server", f"certificate for {server_name!r}")
    if window is not None:
        return window
    leaf = chain[0]
    if not _serves_tls(leaf):
        return UnsupportedCertificate(
            f"certificate for {server_name!r} did not validate: its extendedKeyUsage does not include serverAuth"
        )
    builder = PolicyBuilder().store(Store(list(trust_anchors))).time(now)
    for name in _names_on(leaf):
        try:
            builder.build_server_verifier(name).verify(leaf, list(chain[1:]))
        except VerificationError:
            continue
        carried = ", ".join(str(n.value) for n in _names_on(leaf))
        return BadCertificate(
            f"certificate for {server_name!r} did not validate: it is for {carried}, not {server_name!r}"
        )
    return CertificateUnknown(f"certificate for {server_name!r} did not validate: {verifier_said}")


def verify_server_chain(
    chain: Sequence[x509.Certificate],
    server_name: str,
    trust_anchors: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
) -> list[x509.Certificate]:
    """Validate ``chain`` (leaf first, as sent) for ``server_name``; return the path to the trusted root.

    Raises a :class:`~handshake_lib.errors.CertificateError` subclass named after the alert to send
    (:class:`~handshake_lib.errors.UnknownCA`, :class:`~handshake_lib.errors.CertificateExpired`...).
    """
    if not chain:
        raise BadCertificate("the server sent no certificate")
    if not trust_anchors:
        raise UnknownCA("no trusted certificates to validate against (pass cafile= or verify=False)")
    when = now or datetime.now(UTC)
    if when.tzinfo is None:  # a naive time is taken as UTC, as cryptography's verifier does
        when = when.replace(tzinfo=UTC)
    builder = PolicyBuilder().store(Store(list(trust_anchors))).time(when)
    verifier = builder.build_server_verifier(subject_for(server_name))
    try:
        return list(verifier.verify(chain[0], list(chain[1:])))
    except VerificationError as exc:
        try:
            refusal = _refusal(chain, server_name, trust_anchors, when, str(exc))
        except ValueError as parse_error:  # cryptography parses lazily: a garbled field fails only when read
            refusal = BadCertificate(f"certificate for {server_name!r} does not parse: {parse_error}")
        raise refusal from None


def _as_utc(now: datetime | None) -> datetime:
    when = now or datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when  # naive: UTC, as cryptography takes it


def _client_refusal(
    chain: Sequence[x509.Certificate], trust_anchors: Sequence[x509.Certificate], now: datetime, verifier_said: str
) -> CertificateError:
    """Why a client chain the verifier refused is wrong, as the exception class of the alert to send."""
    subject = chain[0].subject.rfc4514_string() or "(empty subject)"
    what = f"client certificate {subject!r}"
    if not _anchored(chain, trust_anchors):
        return UnknownCA(
            f"{what} did not validate: no certificate in the chain is trusted or issued by a trusted CA "
            f"(issuer {chain[-1].issuer.rfc4514_string()!r})"
        )
    window = _window_refusal(chain, now, "client", what)
    if window is not None:
        return window
    if not _serves_tls(chain[0], ExtendedKeyUsageOID.CLIENT_AUTH):
        return UnsupportedCertificate(f"{what} did not validate: its extendedKeyUsage does not include clientAuth")
    return CertificateUnknown(f"{what} did not validate: {verifier_said}")


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
    if not chain:
        raise BadCertificate("the client sent no certificate")
    if not trust_anchors:
        raise UnknownCA("no trusted certificates to validate the client's certificate against")
    when = _as_utc(now)
    verifier = PolicyBuilder().store(Store(list(trust_anchors))).time(when).build_client_verifier()
    try:
        return list(verifier.verify(chain[0], list(chain[1:])).chain)
    except VerificationError as exc:
        try:
            refusal = _client_refusal(chain, trust_anchors, when, str(exc))
        except ValueError as parse_error:  # cryptography parses lazily: a garbled field fails only when read
            refusal = BadCertificate(f"the client's certificate does not parse: {parse_error}")
        raise refusal from None
