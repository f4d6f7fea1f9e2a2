"""Issue a certificate with exactly the properties a lesson or a test asks for, good or bad.

One recipe for every certificate of the course: a root CA (self-signed), intermediates at any depth
and leaves, with RSA 2048, ECDSA P-256 or Ed25519 keys.  Each property RFC 5280 and the Web PKI check
is a keyword argument, so a faulty certificate differs from a good one in exactly the property a
variant breaks (:mod:`handshake_lib.pki.variants`):

* subjectAltName: DNS names, IP addresses (any text that parses as one), wildcards, written *as
  given*: ``*.*.example`` or ``*.com`` are accepted here on purpose, since catching them is the
  validator's job; a certificate's names are never checked against :mod:`handshake_lib.hostnames`;
* validity: ``not_before`` / ``not_after`` as times, or as offsets from ``now``;
* basicConstraints (CA flag, pathLenConstraint; critical, as RFC 5280 requires on a CA), or none;
* keyUsage (critical) and extendedKeyUsage (serverAuth, clientAuth);
* nameConstraints with permitted DNS subtrees (critical, RFC 5280 section 4.2.1.10);
* an extension no validator knows (:data:`UNKNOWN_EXTENSION_OID`), marked critical on request;
* subjectKeyIdentifier on every certificate and authorityKeyIdentifier on every one a CA signs, as
  real CAs set them (RFC 5280 section 4.2.1.1 and 4.2.1.2; ``openssl verify -x509_strict`` wants them).

Signatures are SHA-256 with RSA PKCS#1 v1.5 or ECDSA, and plain Ed25519 for an Ed25519 issuer key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

__all__ = [
    "CA_USAGE",
    "KEY_TYPES",
    "UNKNOWN_EXTENSION_OID",
    "Authority",
    "KeyType",
    "PrivateKey",
    "Purpose",
    "issue_certificate",
    "key_usage",
    "leaf_usage",
    "new_key",
    "signature_hash",
    "subject_name",
]

KeyType = Literal["rsa2048", "ecdsa-p256", "ed25519"]
KEY_TYPES: tuple[KeyType, ...] = ("rsa2048", "ecdsa-p256", "ed25519")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
Purpose = Literal["server", "client"]

# A private-enterprise arc nobody has registered for an extension: no validator can know what it means,
# so marked critical it must make the certificate unusable (RFC 5280 section 4.2).
UNKNOWN_EXTENSION_OID = ObjectIdentifier("1.3.6.1.4.1.55555.9.1")

PURPOSE_EKU = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}

# What the default notBefore backdates and notAfter allows, from ``now``: a small backdate for clocks
# a little behind (real CAs backdate too), 90 days as public CAs issue today, ten years for a CA.
DEFAULT_BACKDATE = dt.timedelta(hours=1)
DEFAULT_LEAF_LIFETIME = dt.timedelta(days=90)
DEFAULT_CA_LIFETIME = dt.timedelta(days=3650)

_USAGE_BITS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
    "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)
CA_USAGE = frozenset({"digital_signature", "key_cert_sign", "crl_sign"})


def new_key(key_type: KeyType) -> PrivateKey:
    """A fresh private key: RSA 2048 (about 50 ms), ECDSA P-256 or Ed25519 (well under a millisecond)."""
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r} (use one of {', '.join(KEY_TYPES)})")


def key_usage(bits: Iterable[str]) -> x509.KeyUsage:
    """A keyUsage with exactly ``bits`` set (``"key_cert_sign"``, ``"crl_sign"``, ...)."""
    chosen = set(bits)
    unknown = chosen - set(_USAGE_BITS)
    if unknown:
        raise ValueError(f"unknown keyUsage bits {sorted(unknown)} (use {', '.join(_USAGE_BITS)})")
    return x509.KeyUsage(**{bit: bit in chosen for bit in _USAGE_BITS})


def leaf_usage(public_key: PublicKey) -> frozenset[str]:
    """A TLS leaf's keyUsage: it signs; an RSA key also decrypts TLS_RSA_* pre-master secrets."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return frozenset({"digital_signature", "key_encipherment"})
    return frozenset({"digital_signature"})


def subject_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Handshakes course"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _when(value: dt.datetime | dt.timedelta, now: dt.datetime) -> dt.datetime:
    return now + value if isinstance(value, dt.timedelta) else value


def issue_certificate(
    subject: x509.Name,
    public_key: PublicKey,
    *,
    issuer: x509.Name,
    issuer_public_key: PublicKey,
    signing_key: PrivateKey,
    now: dt.datetime,
    not_before: dt.datetime | dt.timedelta = -DEFAULT_BACKDATE,
    not_after: dt.datetime | dt.timedelta = DEFAULT_LEAF_LIFETIME,
    serial: int | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    usage: Iterable[str] | None = None,
    extended_usage: Iterable[ObjectIdentifier] | None = None,
    names: Iterable[str] = (),
    permitted_dns: Iterable[str] = (),
    unknown_critical_extension: bool = False,
    authority_key_identifier: bool = True,
) -> x509.Certificate:
    """One certificate for ``public_key``, signed by ``signing_key`` in the name of ``issuer``.

    ``signing_key`` is normally the private half of ``issuer_public_key`` (whose identifier goes into
    authorityKeyIdentifier); a different key makes a certificate whose signature does not verify.
    ``ca=None`` leaves basicConstraints out; ``usage=None`` means :data:`CA_USAGE` for a CA and
    :func:`leaf_usage` otherwise, an empty set leaves keyUsage out.  ``extended_usage=None`` leaves
    extendedKeyUsage out (a CA's usual form).  ``names`` go into subjectAltName (left out when empty).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(_when(not_before, now))
        .not_valid_after(_when(not_after, now))
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    bits = frozenset(usage) if usage is not None else (CA_USAGE if ca else leaf_usage(public_key))
    if bits:
        builder = builder.add_extension(key_usage(bits), critical=True)
    if extended_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_usage)), critical=False)
    alt_names = [_general_name(name) for name in names]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    permitted = [x509.DNSName(name) for name in permitted_dns]
    if permitted:
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True
        )
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if authority_key_identifier:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    if unknown_critical_extension:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(UNKNOWN_EXTENSION_OID, b"\x05\x00"), critical=True  # DER NULL
        )
    return builder.sign(signing_key, signature_hash(signing_key))


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate and the private key it signs with (certificates, CRLs, OCSP responses)."""

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.certificate.subject

    @property
    def common_name(self) -> str:
        return str(self.name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    @classmethod
    def root(
        cls,
        common_name: str,
        key: PrivateKey,
        *,
        now: dt.datetime,
        not_after: dt.datetime | dt.timedelta = DEFAULT_CA_LIFETIME,
        **options: object,
    ) -> Authority:
        """A self-signed root CA (a trust anchor once someone trusts it)."""
        name = subject_name(common_name)
        options.setdefault("ca", True)
        certificate = issue_certificate(
            name, key.public_key(), issuer=name, issuer_public_key=key.public_key(), signing_key=key,
            now=now, not_after=not_after, **options,  # type: ignore[arg-type]
        )
        return cls(certificate, key)

    def issue(
        self, subject: x509.Name, public_key: PublicKey, *, now: dt.datetime, **options: object
    ) -> x509.Certificate:
        """A certificate signed by this CA; ``options`` are :func:`issue_certificate`'s."""
        options.setdefault("signing_key", self.private_key)
        return issue_certificate(
            subject, public_key, issuer=self.name, issuer_public_key=self.private_key.public_key(), now=now,
            **options,  # type: ignore[arg-type]
        )

    def intermediate(
        self,
        common_name: str,
        key: PrivateKey,
        *,
        now: dt.datetime,
        not_after: dt.datetime | dt.timedelta = DEFAULT_CA_LIFETIME,
        **options: object,
    ) -> Authority:
        """A subordinate CA (``ca=True`` unless ``options`` say otherwise)."""
        options.setdefault("ca", True)
        certificate = self.issue(subject_name(common_name), key.public_key(), now=now, not_after=not_after, **options)
        return Authority(certificate, key)

    def leaf(
        self,
        names: Iterable[str],
        key: PrivateKey,
        *,
        now: dt.datetime,
        purpose: Purpose = "server",
        common_name: str | None = None,
        **options: object,
    ) -> x509.Certificate:
        """An end-entity certificate for ``names`` with the extendedKeyUsage of ``purpose``."""
        names = tuple(names)
        options.setdefault("extended_usage", (PURPOSE_EKU[purpose],))
        options.setdefault("ca", False)
        cn = common_name or (names[0] if names and len(names[0]) <= 64 else "Handshakes course end entity")
        return self.issue(subject_name(cn), key.public_key(), now=now, names=names, **options)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)
