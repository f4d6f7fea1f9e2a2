"""Certificates, CRLs and OCSP responses from bytes, with size caps and one typed error.

Whatever does not parse, or is larger than its cap, is :class:`~handshake_lib.errors.CertificateDecodeError`
with one line that says which input and why; nothing else comes out of these functions.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509 import ocsp

from ..errors import CertificateDecodeError
from .paths import MAX_POOL_CERTIFICATES, PARSE_ERRORS
from .revocation import MAX_CRL_BYTES, MAX_OCSP_BYTES

__all__ = ["load_certificates", "load_crl", "load_ocsp_response", "MAX_INPUT_BYTES", "MAX_CERTIFICATES_PER_INPUT"]

MAX_INPUT_BYTES = 1024 * 1024  # one PEM or DER input for load_certificates (as the CLI's PEM cap)
MAX_CERTIFICATES_PER_INPUT = MAX_POOL_CERTIFICATES


def _check_size(data: bytes, limit: int, what: str) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{what}: expected bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise CertificateDecodeError(f"{what} is empty")
    if len(data) > limit:
        raise CertificateDecodeError(f"{what} has {len(data)} bytes; at most {limit} are read")


def load_certificates(data: bytes, what: str = "certificate input") -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM, one or many, or one DER certificate).

    At most :data:`MAX_INPUT_BYTES` bytes and :data:`MAX_CERTIFICATES_PER_INPUT` certificates;
    anything else that does not parse is :class:`CertificateDecodeError`, with one line saying why.
    """
    _check_size(data, MAX_INPUT_BYTES, what)
    data = bytes(data)
    try:
        if b"-----BEGIN" in data:
            if data.count(b"-----BEGIN CERTIFICATE-----") > MAX_CERTIFICATES_PER_INPUT:
                raise CertificateDecodeError(f"{what} holds more than {MAX_CERTIFICATES_PER_INPUT} certificates")
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except CertificateDecodeError:
        raise
    except PARSE_ERRORS as error:
        raise CertificateDecodeError(f"{what} is not a certificate: {str(error)[:200]}") from None
    return certificates


def load_crl(data: bytes, what: str = "CRL") -> x509.CertificateRevocationList:
    """A CRL in PEM or DER, at most :data:`~handshake_lib.pki.revocation.MAX_CRL_BYTES`."""
    _check_size(data, MAX_CRL_BYTES, what)
    try:
        if bytes(data).lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(bytes(data))
        return x509.load_der_x509_crl(bytes(data))
    except PARSE_ERRORS as error:
        raise CertificateDecodeError(f"{what} is not a CRL: {str(error)[:200]}") from None


def load_ocsp_response(data: bytes, what: str = "OCSP response") -> ocsp.OCSPResponse:
    """A DER OCSPResponse, at most :data:`~handshake_lib.pki.revocation.MAX_OCSP_BYTES`."""
    _check_size(data, MAX_OCSP_BYTES, what)
    try:
        return ocsp.load_der_ocsp_response(bytes(data))
    except PARSE_ERRORS as error:
        raise CertificateDecodeError(f"{what} is not an OCSP response: {str(error)[:200]}") from None
