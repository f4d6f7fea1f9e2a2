"""CertificateVerify's signature (RFC 5246 section 7.4.8): choose a scheme, sign, check.

Theory of operation
-------------------
A client certificate alone proves nothing (certificates are public); the client proves it holds the
certificate's private key by signing every handshake message exchanged so far, headers included, from
ClientHello to its ClientKeyExchange.  Those messages hold both randoms, so the signature cannot be
replayed into another handshake.

In TLS 1.2 the signature is ``digitally-signed``: a SignatureAndHashAlgorithm (two bytes, which TLS 1.3
renamed SignatureScheme: :class:`~handshake_lib.tls.constants.SignatureScheme`) and the signature.  The
hash is the scheme's, not the cipher suite's PRF hash, and the whole message list is signed (the
signer hashes it), not a hash of it.  The server lists the schemes it accepts in CertificateRequest;
the client picks one that its key can make (:func:`choose_scheme`), in our order of preference: RSA-PSS
first for an RSA key (what TLS 1.3 requires, and OpenSSL 3 prefers), PKCS#1 v1.5 when the server
offers no PSS.  ``ecdsa_secp256r1_sha256`` reads in TLS 1.2 as "ECDSA with SHA-256", on any curve: we
sign with it using P-256 keys only, and ``ecdsa_secp384r1_sha384`` using P-384 keys (as TLS 1.3 pairs them),
and Ed25519 as RFC 8422 adds it to TLS 1.2; we accept either from any ECDSA key, as TLS 1.2 reads them.

The server checks the signature with the public key of the client's certificate
(:func:`verify_signature`): a scheme it did not offer or that does not fit the key is
``illegal_parameter`` (OpenSSL's "wrong signature type"), a signature that does not verify
``decrypt_error`` (RFC 5246 section 7.2.2; OpenSSL sends the same).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ..errors import DecryptError, IllegalParameter
from .constants import ClientCertificateType, SignatureScheme, name_of

__all__ = [
    "SigningKey",
    "SUPPORTED_SCHEMES",
    "CERTIFICATE_TYPES",
    "check_scheme",
    "check_scheme13",
    "schemes_for_key13",
    "check_server_key_exchange_signature",
    "choose_scheme",
    "schemes_for_key",
    "server_key_exchange_signed_bytes",
    "sign",
    "verify_signature",
]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_RSA_PSS = {
    SignatureScheme.rsa_pss_rsae_sha256: hashes.SHA256,
    SignatureScheme.rsa_pss_rsae_sha384: hashes.SHA384,
    SignatureScheme.rsa_pss_rsae_sha512: hashes.SHA512,
}
_RSA_PKCS1 = {
    SignatureScheme.rsa_pkcs1_sha256: hashes.SHA256,
    SignatureScheme.rsa_pkcs1_sha384: hashes.SHA384,
    SignatureScheme.rsa_pkcs1_sha512: hashes.SHA512,
}
_ECDSA = {
    SignatureScheme.ecdsa_secp256r1_sha256: (ec.SECP256R1, hashes.SHA256),
    SignatureScheme.ecdsa_secp384r1_sha384: (ec.SECP384R1, hashes.SHA384),
}

# What we sign and accept, in our order of preference (the server's CertificateRequest lists them so).
SUPPORTED_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)
# The certificate kinds a server asks for: keys that sign (RSA, and ECDSA for both EC curves and Ed25519).
CERTIFICATE_TYPES: tuple[ClientCertificateType, ...] = (
    ClientCertificateType.rsa_sign,
    ClientCertificateType.ecdsa_sign,
)


def schemes_for_key(key: SigningKey | VerifyingKey) -> tuple[SignatureScheme, ...]:
    """The schemes of :data:`SUPPORTED_SCHEMES` that ``key`` (private or public) can make, in preference order."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return tuple(s for s in SUPPORTED_SCHEMES if s in _RSA_PSS or s in _RSA_PKCS1)
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return tuple(s for s, (curve, _) in _ECDSA.items() if isinstance(key.curve, curve))
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return (SignatureScheme.ed25519,)
    return ()


def schemes_for_key13(key: SigningKey | VerifyingKey) -> tuple[SignatureScheme, ...]:
    """The schemes ``key`` may sign a TLS 1.3 CertificateVerify with (RFC 8446 section 4.2.3 and 4.4.3).

    Stricter than TLS 1.2: RSA only as RSASSA-PSS ("RSA signatures MUST use an RSASSA-PSS algorithm"), and
    each ECDSA scheme names its curve (ecdsa_secp256r1_sha256 only with a P-256 key).
    """
    return tuple(s for s in schemes_for_key(key) if s not in _RSA_PKCS1)


def check_scheme13(public_key: object, scheme: int, offered: Sequence[int], *, signer: str) -> None:
    """IllegalParameter for a TLS 1.3 CertificateVerify scheme we did not offer or that ``public_key`` cannot
    make under 1.3's rules (:func:`schemes_for_key13`): OpenSSL's "wrong signature type"."""
    name = name_of(SignatureScheme, scheme)
    if scheme not in offered:
        raise IllegalParameter(f"the {signer}'s CertificateVerify uses {name}, which we did not offer")
    fits = isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    if not fits or scheme not in schemes_for_key13(public_key):  # type: ignore[arg-type]
        raise IllegalParameter(
            f"the {signer}'s CertificateVerify uses {name}, which its {type(public_key).__name__} cannot make in 1.3"
        )


def _certificate_type(key: SigningKey) -> ClientCertificateType:
    return ClientCertificateType.rsa_sign if isinstance(key, rsa.RSAPrivateKey) else ClientCertificateType.ecdsa_sign


def choose_scheme(
    key: SigningKey, offered: Sequence[int], certificate_types: Sequence[int] = CERTIFICATE_TYPES
) -> SignatureScheme | None:
    """The scheme to sign CertificateVerify with: ours for ``key``, in our order, that the server ``offered``.

    None when the server accepts no kind of certificate or no scheme that this key can make: the client
    then sends an empty Certificate (RFC 5246 section 7.4.6), as OpenSSL does, and the server decides.
    """
    if _certificate_type(key) not in certificate_types:
        return None
    return next((scheme for scheme in schemes_for_key(key) if scheme in offered), None)


def sign(key: SigningKey, scheme: int, messages: bytes) -> bytes:
    """The signature of ``messages`` with ``key`` under ``scheme`` (ValueError if the key cannot make it)."""
    if scheme not in schemes_for_key(key):
        raise ValueError(f"a {type(key).__name__} cannot sign with {name_of(SignatureScheme, scheme)}")
    if isinstance(key, rsa.RSAPrivateKey):
        if scheme in _RSA_PSS:
            hash_algorithm = _RSA_PSS[SignatureScheme(scheme)]()
            # rsa_pss_rsae_*: MGF1 with the same hash, salt as long as the hash (RFC 8446 section 4.2.3).
            return key.sign(
                messages, padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size), hash_algorithm
            )
        return key.sign(messages, padding.PKCS1v15(), _RSA_PKCS1[SignatureScheme(scheme)]())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(messages, ec.ECDSA(_ECDSA[SignatureScheme(scheme)][1]()))
    return key.sign(messages)


def check_scheme(public_key: object, scheme: int, offered: Sequence[int], *, what: str = "CertificateVerify") -> None:
    """IllegalParameter for a scheme we did not ``offer``, or that the peer's ``public_key`` cannot make
    (OpenSSL's "wrong signature type"); the first half of :func:`verify_signature`."""
    name = name_of(SignatureScheme, scheme)
    signer = "client" if what == "CertificateVerify" else "server"
    if scheme not in offered:
        raise IllegalParameter(f"{what} uses {name}, which we did not offer")
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise IllegalParameter(f"the {signer} certificate's {type(public_key).__name__} cannot sign {what}")
    if not _fits(public_key, scheme):
        raise IllegalParameter(f"{what} uses {name}, which the {signer} certificate's key cannot make")


def _fits(public_key: VerifyingKey, scheme: int) -> bool:
    """Whether a signature under ``scheme`` can come from ``public_key``, as TLS 1.2 reads the schemes: an
    ``ecdsa_*`` scheme names ECDSA with its hash, on any curve (RFC 5246's SignatureAndHashAlgorithm:
    OpenSSL 3.0 signs with ``ecdsa_secp256r1_sha256`` on a P-384 key when the client lists it first).  We
    sign more strictly (each curve with its own hash, :func:`schemes_for_key`), as TLS 1.3 requires."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return scheme in _RSA_PSS or scheme in _RSA_PKCS1
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return scheme in _ECDSA
    return scheme == SignatureScheme.ed25519


def verify_signature(
    public_key: object,
    scheme: int,
    signature: bytes,
    messages: bytes,
    offered: Sequence[int] = SUPPORTED_SCHEMES,
    *,
    what: str = "CertificateVerify",
) -> None:
    """Check a CertificateVerify (or, with ``what="ServerKeyExchange"``, the server's signature over both
    randoms and its params: RFC 5246 section 7.4.3, the same digitally-signed struct): IllegalParameter
    for a scheme we did not offer or that does not fit the key, DecryptError for a signature that does not
    verify (RFC 5246 section 7.2.2; OpenSSL sends decrypt_error for both)."""
    check_scheme(public_key, scheme, offered, what=what)
    if not _verifies(public_key, scheme, signature, messages):  # type: ignore[arg-type]  # checked just above
        name = name_of(SignatureScheme, scheme)
        signer = "client" if what == "CertificateVerify" else "server"
        raise DecryptError(f"the {signer}'s {what} ({name}) does not verify with its certificate's key")


def _verifies(public_key: VerifyingKey, scheme: int, signature: bytes, messages: bytes) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if scheme in _RSA_PSS:
                hash_algorithm = _RSA_PSS[SignatureScheme(scheme)]()
                pss = padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
                public_key.verify(signature, messages, pss, hash_algorithm)
            else:
                public_key.verify(signature, messages, padding.PKCS1v15(), _RSA_PKCS1[SignatureScheme(scheme)]())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, messages, ec.ECDSA(_ECDSA[SignatureScheme(scheme)][1]()))
        else:
            public_key.verify(signature, messages)
    except InvalidSignature:
        return False
    return True


# -- ServerKeyExchange (ECDHE/DHE suites) ---------------------------------------------------------------
def server_key_exchange_signed_bytes(client_random: bytes, server_random: bytes, params: bytes) -> bytes:
    """What the server signs in ServerKeyExchange: ``client_random + server_random + params``.

    RFC 5246 section 7.4.3 (``digitally-signed struct { opaque client_random[32]; opaque
    server_random[32]; ServerDHParams params; }``) and RFC 8422 section 5.4 (the same with
    ServerECDHParams).  ``params`` are the encoded parameters exactly as sent (curve type, named curve,
    the length-prefixed public point): the randoms tie this ephemeral key to *this* handshake, so it
    cannot be replayed into another one.
    """
    return client_random + server_random + params


def check_server_key_exchange_signature(
    server_public_key: VerifyingKey,
    signature_scheme: int,
    signature: bytes,
    client_random: bytes,
    server_random: bytes,
    params: bytes,
    /,
) -> bool:
    """Whether ServerKeyExchange's ``signature`` (made with ``signature_scheme``) verifies with the server
    certificate's key over :func:`server_key_exchange_signed_bytes` (the library's stage
    ``check_server_key_exchange_signature``; the client has already checked that the scheme was offered
    and fits the key, with :func:`check_scheme`)."""
    signed = server_key_exchange_signed_bytes(client_random, server_random, params)
    return _verifies(server_public_key, signature_scheme, signature, signed)
