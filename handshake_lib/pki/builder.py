"""A small certificate authority for live lessons and tests.

Every live server in the course gets a *fresh* key and certificate, issued by a CA created for that
run: nothing secret is committed, and trusting the CA means trusting only this run's servers.
Primitives and encodings come from ``cryptography``; what the course teaches about certificates
(chains, expiry, names, revocation) is in lesson 04's validator, not here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..hostnames import check_certificate_name

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class IssuedCertificate:
    certificate: x509.Certificate
    private_key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)  # intermediates, leaf first excluded

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def cert_pem(self) -> bytes:
        """The leaf followed by its intermediates, as servers send them."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [self.certificate, *self.chain])

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":  # a TLS server identity on the other curve we sign ServerKeyExchange with
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":  # TLS 1.3 only (RFC 8446's ed25519 scheme; TLS 1.2's suites name RSA or ECDSA)
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r} (use 'rsa2048', 'ecdsa-p256', 'ecdsa-p384' or 'ed25519')")


# RFC 5280's upper bound for a commonName (ub-common-name); a DNS name may be up to 253 characters.
MAX_COMMON_NAME_LENGTH = 64


def _common_name(hostname: str) -> str:
    """The subject's commonName: the first host name if it fits; clients read the subjectAltName anyway."""
    return hostname if len(hostname) <= MAX_COMMON_NAME_LENGTH else "Handshakes course server"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Handshakes course"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass
class CoursePKI:
    """A root CA that issues server certificates; ``files()`` writes PEMs for ``ssl`` and the CLIs."""

    root: IssuedCertificate
    _directory: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def create(cls, *, key_type: str = "ecdsa-p256", name: str = "Handshakes Course Root CA") -> CoursePKI:
        key = _new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(IssuedCertificate(certificate, key))

    def issue_server(
        self,
        hostnames: tuple[str, ...] = ("localhost", "127.0.0.1"),
        *,
        key_type: str = "rsa2048",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A server certificate for ``hostnames`` (DNS names or IP addresses).

        RSA by default because TLS_RSA_* key exchange encrypts the pre-master secret to this key.
        """
        if not hostnames:
            raise ValueError("a server certificate needs at least one host name")
        for host in hostnames:  # one clear line for a bad name, not cryptography's error deep in the builder
            check_certificate_name(host)
        key = _new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=isinstance(key, rsa.RSAPrivateKey),
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(_common_name(hostnames[0])))
            .issuer_name(self.root.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.private_key.public_key()), critical=False
            )
            .sign(self.root.private_key, hashes.SHA256())
        )
        return IssuedCertificate(certificate, key)

    def issue_client(
        self,
        common_name: str,
        *,
        key_type: str = "ecdsa-p256",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        extended_key_usage: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    ) -> IssuedCertificate:
        """A client certificate (mutual TLS) naming ``common_name``: clientAuth EKU, digitalSignature only.

        A client proves it holds the key by signing the handshake (CertificateVerify), so the key only
        ever signs: ECDSA P-256 by default, ``key_type="rsa2048"`` for the RSA signature schemes.
        ``extended_key_usage`` can be changed to make a certificate a server must refuse (serverAuth only).
        """
        if not common_name or len(common_name) > MAX_COMMON_NAME_LENGTH:
            raise ValueError(f"a client's common name must be 1 to {MAX_COMMON_NAME_LENGTH} characters")
        key = _new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.root.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=7))
            # A subjectAltName is required of every leaf by RFC 5280's Web PKI profile (cryptography's client
            # verifier refuses one without); a client has no host name, so it repeats the subject.
            .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(_name(common_name))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.private_key.public_key()), critical=False
            )
        )
        if extended_key_usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
        return IssuedCertificate(builder.sign(self.root.private_key, hashes.SHA256()), key)

    def write_ca(self, directory: Path) -> Path:
        path = Path(directory) / "ca.pem"
        path.write_bytes(self.root.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    @staticmethod
    def write_issued(issued: IssuedCertificate, directory: Path, stem: str = "server") -> tuple[Path, Path]:
        """Write ``stem.pem`` (chain) and ``stem.key`` (private key, mode 0600); return their paths."""
        cert_path = Path(directory) / f"{stem}.pem"
        key_path = Path(directory) / f"{stem}.key"
        cert_path.write_bytes(issued.cert_pem())
        key_path.touch(mode=0o600)
        key_path.write_bytes(issued.key_pem())
        return cert_path, key_path

    def write_server_files(
        self, directory: Path, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")
    ) -> ServerFiles:
        """Issue a fresh server certificate for ``hostnames`` and write everything a server and its client need.

        ``ca.pem`` (what a client trusts), ``server.pem`` (the chain a server sends) and ``server.key``
        (mode 0600) land in ``directory``; deleting that folder is the caller's business.
        """
        issued = self.issue_server(hostnames)
        ca_path = self.write_ca(directory)
        cert_path, key_path = self.write_issued(issued, directory)
        return ServerFiles(ca_path, cert_path, key_path, issued, self)


@dataclass(frozen=True)
class ServerFiles:
    """A server's certificate files on disk (from :meth:`CoursePKI.write_server_files`), and what made them."""

    ca_path: Path  # the course CA a client trusts
    cert_path: Path  # the server's chain, leaf first
    key_path: Path  # the server's private key, readable by its owner only
    issued: IssuedCertificate
    pki: CoursePKI
