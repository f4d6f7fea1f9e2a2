"""What ``cryptography.x509`` reads from a certificate, as rows a lesson or the CLI can show.

The annotating decoder (:mod:`handshake_lib.pki.der`) shows the bytes; this module shows the meaning a
mature X.509 parser gives the same bytes, so the two can be read side by side.  Nothing is validated
here (lesson 04's validator does that).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["certificate_fields", "certificate_subject"]


def certificate_subject(der: bytes) -> str:
    """The subject as an RFC 4514 string, or ``"(not X.509)"`` for bytes that do not parse."""
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return "(not X.509)"


def certificate_fields(der: bytes) -> list[tuple[str, str]]:
    """What ``cryptography.x509`` reads from the certificate: (field, value) rows for a table."""
    certificate = x509.load_der_x509_certificate(der)
    rows = [
        ("version", certificate.version.name),
        ("serial number", f"0x{certificate.serial_number:x}"),
        ("signature algorithm", certificate.signature_algorithm_oid._name),
        ("issuer", certificate.issuer.rfc4514_string()),
        ("subject", certificate.subject.rfc4514_string()),
        ("not before", certificate.not_valid_before_utc.isoformat()),
        ("not after", certificate.not_valid_after_utc.isoformat()),
    ]
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        rows.append(("public key", f"RSA, {key.key_size}-bit modulus, exponent {key.public_numbers().e}"))
    elif isinstance(key, ec.EllipticCurvePublicKey):
        rows.append(("public key", f"EC, curve {key.curve.name}"))
    else:
        rows.append(("public key", type(key).__name__))
    for extension in certificate.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectAlternativeName):
            text = ", ".join(str(name.value) for name in value)
        elif isinstance(value, x509.BasicConstraints):
            text = f"CA={value.ca}"
        elif isinstance(value, x509.ExtendedKeyUsage):
            text = ", ".join(oid._name for oid in value)
        elif isinstance(value, x509.KeyUsage):
            text = ", ".join(
                name for name in ("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign")
                if getattr(value, name)
            )
        else:
            text = type(value).__name__
        critical = " (critical)" if extension.critical else ""
        rows.append((f"extension {extension.oid._name}{critical}", text))
    rows.append(("signature", f"{len(certificate.signature)} bytes"))
    return rows
