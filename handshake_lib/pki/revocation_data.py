"""Revocation data as a CA publishes it: CRLs, and OCSP responses as a server staples them.

* A CRL (RFC 5280 section 5) lists the serial numbers its issuer revoked, with thisUpdate and
  nextUpdate (a CRL past its nextUpdate is stale), signed by the issuer, whose keyUsage must hold
  cRLSign (section 4.2.1.3) and whose key identifier goes into the CRL's authorityKeyIdentifier.
* An OCSP response (RFC 6960) answers for one certificate: good, revoked (with the time) or unknown,
  valid from thisUpdate until nextUpdate.  Here the issuing CA signs its own responses (RFC 6960
  section 4.2.2.2's first case), so no delegated responder certificate is needed.  The DER bytes are
  what a TLS server sends in its CertificateStatus message (RFC 6066 section 8, "stapling").

Public CAs turned OCSP off in 2025 (Let's Encrypt: privacy, and clients that soft-fail when the
responder is slow); lesson 04 teaches CRLs first and OCSP as the mechanism stapling was built for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .issue import Authority, signature_hash

__all__ = ["OCSPStatus", "build_crl", "ocsp_response"]

OCSPStatus = Literal["good", "revoked", "unknown"]

_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


def build_crl(
    issuer: Authority,
    revoked_serials: Iterable[int] = (),
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
    revoked_at: dt.datetime | None = None,
    number: int = 1,
) -> x509.CertificateRevocationList:
    """``issuer``'s CRL listing ``revoked_serials`` (revoked at ``revoked_at``, default ``this_update``).

    The issuer's keyUsage is not checked here: a CRL signed by a CA without cRLSign is one of the
    faults the course builds on purpose.
    """
    when = revoked_at or this_update
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()), critical=False
        )
    )
    for serial in revoked_serials:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.private_key, signature_hash(issuer.private_key))


def ocsp_response(
    certificate: x509.Certificate,
    issuer: Authority,
    status: OCSPStatus,
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
    revoked_at: dt.datetime | None = None,
) -> bytes:
    """A successful OCSP response about ``certificate``, signed by its ``issuer``, as DER.

    ``next_update`` in the past of the validation time makes the expired response a client must not
    trust.  The issuer's certificate travels in the response so that a client can check the signature
    without fetching anything.
    """
    if status not in _STATUS:
        raise ValueError(f"unknown OCSP status {status!r} (use good, revoked or unknown)")
    revoked = status == "revoked"
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=certificate,
            issuer=issuer.certificate,
            algorithm=hashes.SHA1(),  # the CertID hash every responder and client supports (RFC 6960 B.1)
            cert_status=_STATUS[status],
            this_update=this_update,
            next_update=next_update,
            revocation_time=(revoked_at or this_update) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
        .certificates([issuer.certificate])
    )
    response = builder.sign(issuer.private_key, signature_hash(issuer.private_key))
    return response.public_bytes(serialization.Encoding.DER)
