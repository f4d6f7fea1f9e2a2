"""Has the issuer taken a certificate back?  Answers from CRLs and OCSP responses, and what they are worth.

For each certificate of the path but the trust anchor, the answers are tried in this order and the
first usable one decides:

1. the **stapled** OCSP response (the leaf only: a server sends it in its handshake);
2. other OCSP responses given to the validator;
3. CRLs whose issuer name is the certificate's issuer.

An OCSP response is usable when it is ``successful``, one of its single responses has our certID
(serial number, and hashes of the issuer's name and key), it is signed by the issuer itself or by a
delegated responder (a certificate in the response, issued by the issuer, valid, with
id-kp-OCSPSigning in its extendedKeyUsage), and ``thisUpdate <= at <= nextUpdate``.  A CRL is usable
when it verifies under the issuer's key, the issuer may sign CRLs (cRLSign, when it has a keyUsage),
and ``lastUpdate <= at <= nextUpdate``.  Full CRLs only: delta CRLs and issuingDistributionPoint
scopes are not interpreted.  No clock skew is allowed; an answer without nextUpdate counts as stale.

What an answer says is one of :class:`Answer`; how "no answer" and "stale" count is the caller's
:class:`RevocationPolicy` (the validator's ``revocation_policy``):

========================  ======================  ======================
policy                    no usable answer        only stale answers
========================  ======================  ======================
``soft-fail``             not checked             not checked
``require-fresh`` (default) not checked           fail
``hard-fail``             fail                    fail
========================  ======================  ======================

The default lets a client without revocation data go on (as every browser does today) but never
accepts an out-of-date "good" in place of a current one; ``hard-fail`` is what OpenSSL's
``-crl_check_all`` does.  A forged answer (bad signature) and "revoked" always fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from ..errors import CertificateDecodeError
from .paths import PARSE_ERRORS, CertView

__all__ = ["RevocationPolicy", "Answer", "CertificateAnswer", "answer_for", "MAX_CRL_BYTES", "MAX_OCSP_BYTES"]

MAX_CRL_BYTES = 4 * 1024 * 1024  # a busy public CA's CRL is a few MiB; the course's are ~1 KiB
MAX_OCSP_BYTES = 64 * 1024  # an OCSP response with its responder certificate is ~2-4 KiB


class RevocationPolicy(Enum):
    """How the ``revocation`` check counts a missing or stale answer (table in the module docstring)."""

    SOFT_FAIL = "soft-fail"
    REQUIRE_FRESH = "require-fresh"
    HARD_FAIL = "hard-fail"


class Answer(Enum):
    GOOD = "good"
    REVOKED = "revoked"
    STALE = "stale"  # only answers outside thisUpdate..nextUpdate
    NONE = "none"  # no usable answer at all
    FORGED = "forged"  # an answer for this certificate whose signature does not verify


@dataclass(frozen=True)
class CertificateAnswer:
    answer: Answer
    reason: str  # one line naming the certificate and the source ("CRL of 'X'", "stapled OCSP response")


def _verify(public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None,
            oid: x509.ObjectIdentifier) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            if oid == SignatureAlgorithmOID.RSASSA_PSS:
                public_key.verify(signature, data, padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO), algorithm)
            else:
                public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _key_hash(
    subject: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a certID for ``subject`` issued by ``issuer``, as cryptography has it."""
    request = ocsp.OCSPRequestBuilder().add_certificate(subject, issuer, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


def _fresh(this_update: dt.datetime, next_update: dt.datetime | None, at: dt.datetime) -> bool:
    return next_update is not None and this_update <= at <= next_update


def _ocsp_signer(response: ocsp.OCSPResponse, issuer: CertView, at: dt.datetime) -> x509.Certificate | None:
    """The certificate whose key signed ``response``: the issuer, or a delegated responder it issued."""
    candidates = [issuer.certificate, *response.certificates]
    for candidate in candidates:
        if response.responder_name is not None and candidate.subject != response.responder_name:
            continue
        key_hash = response.responder_key_hash
        if key_hash is not None and _key_hash(candidate, candidate, hashes.SHA1())[1] != key_hash:
            continue
        if candidate is not issuer.certificate:
            try:
                candidate.verify_directly_issued_by(issuer.certificate)
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except (InvalidSignature, x509.ExtensionNotFound, *PARSE_ERRORS):
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
            if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
                continue
        if _verify(candidate.public_key(), response.signature, response.tbs_response_bytes,
                   response.signature_hash_algorithm, response.signature_algorithm_oid):
            return candidate
    return None


def _from_ocsp(response: ocsp.OCSPResponse, source: str, cert: CertView, issuer: CertView,
               at: dt.datetime) -> CertificateAnswer | None:
    try:
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        for single in response.responses:
            if single.serial_number != cert.certificate.serial_number:
                continue
            if (single.issuer_name_hash, single.issuer_key_hash) != _key_hash(
                cert.certificate, issuer.certificate, single.hash_algorithm
            ):
                continue
            if _ocsp_signer(response, issuer, at) is None:
                return CertificateAnswer(Answer.FORGED, f"the {source} for {cert.name} is not signed by "
                                         f"{issuer.name} nor by a responder it delegated (id-kp-OCSPSigning)")
            if not _fresh(single.this_update_utc, single.next_update_utc, at):
                return CertificateAnswer(Answer.STALE, f"the {source} for {cert.name} is stale (thisUpdate "
                                         f"{single.this_update_utc:%Y-%m-%d %H:%M}, nextUpdate "
                                         f"{single.next_update_utc or 'absent'})")
            status = single.certificate_status
            if status == ocsp.OCSPCertStatus.GOOD:
                return CertificateAnswer(Answer.GOOD, f"the {source} says {cert.name} is good")
            if status == ocsp.OCSPCertStatus.REVOKED:
                return CertificateAnswer(Answer.REVOKED, f"the {source} says {cert.name} was revoked on "
                                         f"{single.revocation_time_utc:%Y-%m-%d %H:%M} UTC")
            return CertificateAnswer(Answer.NONE, f"the {source} does not know {cert.name} (status unknown)")
    except PARSE_ERRORS as error:
        raise CertificateDecodeError(f"the {source} does not parse: {str(error)[:200]}") from None
    return None


def _from_crl(crl: x509.CertificateRevocationList, cert: CertView, issuer: CertView,
              at: dt.datetime) -> CertificateAnswer | None:
    source = f"CRL of {issuer.name}"
    try:
        if crl.issuer != issuer.subject:
            return None
        if not crl.is_signature_valid(issuer.certificate.public_key()):  # type: ignore[arg-type]
            return CertificateAnswer(Answer.FORGED, f"the {source} does not verify under {issuer.name}'s key")
        if issuer.key_usage is not None and not issuer.key_usage.crl_sign:
            return CertificateAnswer(Answer.NONE, f"the {source} is not accepted: {issuer.name}'s keyUsage "
                                     "lacks cRLSign")
        if not _fresh(crl.last_update_utc, crl.next_update_utc, at):
            return CertificateAnswer(Answer.STALE, f"the {source} is stale (nextUpdate "
                                     f"{crl.next_update_utc or 'absent'})")
        entry = crl.get_revoked_certificate_by_serial_number(cert.certificate.serial_number)
    except PARSE_ERRORS as error:
        raise CertificateDecodeError(f"the {source} does not parse: {str(error)[:200]}") from None
    if entry is not None:
        return CertificateAnswer(Answer.REVOKED, f"{cert.name} is on the {source} (revoked "
                                 f"{entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC)")
    return CertificateAnswer(Answer.GOOD, f"{cert.name} is not on the {source}")


def answer_for(
    cert: CertView,
    issuer: CertView,
    *,
    at: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList],
    ocsp_responses: Sequence[ocsp.OCSPResponse],
    stapled: ocsp.OCSPResponse | None,
) -> CertificateAnswer:
    """The answer about ``cert``: REVOKED if any usable answer says so, else FORGED, else the first GOOD
    (in the order of the module docstring: the stapled response first), else STALE, else NONE."""
    found: list[CertificateAnswer] = []
    sources: list[tuple[str, ocsp.OCSPResponse]] = []
    if stapled is not None:
        sources.append(("stapled OCSP response", stapled))
    sources += [(f"OCSP response #{n + 1}", r) for n, r in enumerate(ocsp_responses)]
    for source, response in sources:
        answer = _from_ocsp(response, source, cert, issuer, at)
        if answer is not None:
            found.append(answer)
    for crl in crls:
        answer = _from_crl(crl, cert, issuer, at)
        if answer is not None:
            found.append(answer)
    # "Revoked" from any usable source wins over "good" from another (a stapled "good" may be older than
    # the CRL that revoked the certificate), and a forged answer is an attack to report, not to ignore.
    for kind in (Answer.REVOKED, Answer.FORGED, Answer.GOOD, Answer.STALE, Answer.NONE):
        for answer in found:
            if answer.answer is kind:
                return answer
    return CertificateAnswer(Answer.NONE, f"no CRL or OCSP response about {cert.name}")
