"""Ephemeral key exchange for TLS 1.2: ECDHE (RFC 8422) and DHE with the RFC 7919 groups.

Theory of operation
-------------------
With RSA key exchange the client encrypts the pre-master secret to the server certificate's key, so
whoever later gets that key can read every recorded session.  With an *ephemeral* exchange each side
makes a fresh key pair for this one handshake, sends the public half, and both compute the same shared
secret from their own private half and the peer's public one.  The certificate's key only *signs* the
server's half (ServerKeyExchange), so stealing it later decrypts nothing: forward secrecy.

A :class:`Group` is one set of parameters both sides name by a code point (``supported_groups``):

* ``x25519`` (RFC 7748): 32-byte public values; the shared secret is the X25519 output as is.
* ``secp256r1``, ``secp384r1``: points sent *uncompressed* (``04 || X || Y``, RFC 8422 section 5.4.1:
  the only format still allowed); the shared secret is the x-coordinate of the product, as long as the
  field (RFC 8422 section 5.10).
* ``ffdhe2048``, ``ffdhe3072`` (RFC 7919 appendix A): safe primes, generator 2.  In TLS 1.2 the server
  sends p and g explicitly in ServerKeyExchange; the shared secret has its leading zero bytes removed
  (RFC 5246 section 8.1.2), which the ECDH secrets never do.

:class:`EphemeralKey` is one side's key pair: :meth:`Group.generate` makes it from injected randomness
(sans-I/O: a test can replay a handshake), ``public`` is what goes on the wire, and
:meth:`EphemeralKey.shared_secret` validates the peer's value before using it:

=====================================  ===================================================================
peer value                             refused with
=====================================  ===================================================================
EC point of the wrong length, or not   ``IllegalParameter`` (illegal_parameter): RFC 8422 section 5.4
uncompressed, or not on the curve      says such a point MUST be refused; OpenSSL's server answers
                                       illegal_parameter (``EVP_PKEY_set1_encoded_public_key`` fails)
X25519 value of the wrong length       ``DecodeError`` (decode_error)
X25519 result all zeros (a low-order   ``IllegalParameter``: RFC 8422 section 5.11 ("MUST abort the
point)                                 handshake"), the alert OpenSSL sends
DH value outside 1 < Y < p - 1         ``HandshakeFailure`` (handshake_failure): RFC 7919 sections 3 and 4
=====================================  ===================================================================

The range check on DH values is all a safe prime needs: with p = 2q + 1 the only small subgroup is
{1, p - 1}, exactly the two values refused.  A ServerKeyExchange naming a group the client did not
offer is the caller's check (``illegal_parameter``, as OpenSSL's ``SSL_R_WRONG_CURVE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from ..errors import DecodeError, HandshakeFailure, IllegalParameter
from ..ssh.kex import MODP_GROUP14  # the RFC 3526 prime, written out once in the library
from .constants import NamedGroup, name_of

__all__ = [
    "Group",
    "EphemeralKey",
    "ECDHPrivateKey",
    "ECDHESecret",
    "ecdhe_premaster_secret",
    "GROUPS",
    "EC_GROUPS",
    "FFDHE_GROUPS",
    "FFDHE2048_P",
    "FFDHE3072_P",
    "MODP2048",
    "group",
    "ffdhe_group_for",
    "parse_group_names",
]

RandomBytes = Callable[[int], bytes]
ECDHPrivateKey = x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey
"""A client's ephemeral ECDHE private key, as ``cryptography`` holds it (what the learner's stage is given)."""

# RFC 7919 appendix A.1 (ffdhe2048) and A.2 (ffdhe3072), as printed there; `openssl genpkey -genparam
# -algorithm DH -pkeyopt group:ffdhe2048` prints the same numbers (tests/test_tls_ecdhe.py checks).
FFDHE2048_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF",
    16,
)
FFDHE3072_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B66C62E37FFFFFFFFFFFFFFFF",
    16,
)
# Bytes of private exponent for DHE, by prime size.  RFC 7919 section 5.2 allows short exponents of at least
# twice the group's security strength with a margin (its table: 225 bits for ffdhe2048, 275 for ffdhe3072);
# we take 256 and 320 bits.  Python's pow() is the cost of a DHE handshake (a 512-bit exponent took 6 ms a
# side, twice OpenSSL's whole handshake), so the exponent is no longer than the RFC needs.
_DH_EXPONENT_BYTES = {256: 32, 384: 40}  # prime bytes -> exponent bytes


@dataclass(frozen=True)
class Group:
    """One key exchange group: its code point, kind (``"ecdhe"`` or ``"dhe"``) and parameters."""

    code: NamedGroup | None  # None: a well-known prime a server may send, with no code point (RFC 3526)
    kind: str
    public_length: int  # bytes of a public value on the wire (an EC point uncompressed; DH: len(p))
    p: int = 0  # DHE only
    g: int = 0  # DHE only
    curve: type[ec.EllipticCurve] | None = field(default=None, repr=False)  # NIST curves only
    label: str = ""  # the name of a group without a code point

    @property
    def name(self) -> str:
        return self.code.name if self.code is not None else self.label

    def generate(self, random_bytes: RandomBytes) -> EphemeralKey:
        """A fresh key pair for one handshake, from ``random_bytes`` (fixed in tests)."""
        if self.code == NamedGroup.x25519:
            private = x25519.X25519PrivateKey.from_private_bytes(random_bytes(32))
            public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return EphemeralKey(self, public, _x25519=private)
        if self.curve is not None:
            curve = self.curve()
            order = _ORDERS[self.code]
            # 8 extra bytes make the reduction's bias negligible (FIPS 186-4 B.4.1's "extra random bits").
            scalar = int.from_bytes(random_bytes(curve.key_size // 8 + 8), "big") % (order - 1) + 1
            private_ec = ec.derive_private_key(scalar, curve)
            public = private_ec.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            return EphemeralKey(self, public, _ec=private_ec)
        size = _DH_EXPONENT_BYTES[self.public_length]
        exponent = int.from_bytes(random_bytes(size), "big") | (1 << (8 * size - 1))
        public_int = pow(self.g, exponent, self.p)
        return EphemeralKey(self, public_int.to_bytes(self.public_length, "big"), _dh_exponent=exponent)

    def check_public(self, value: bytes) -> None:
        """Refuse a peer public value that must not be used (the table in the module docstring)."""
        if self.kind == "dhe":
            y = int.from_bytes(value, "big")
            if not 1 < y < self.p - 1:
                raise HandshakeFailure(
                    f"the peer's DH public value is outside 1 < Y < p - 1 for {self.name} (RFC 7919 section 3)"
                )
            return
        if self.code == NamedGroup.x25519:
            if len(value) != 32:
                raise DecodeError(f"an X25519 public value has 32 bytes, not {len(value)}", field="public")
            return
        if len(value) != self.public_length or value[:1] != b"\x04":
            raise IllegalParameter(
                f"a {self.name} point must be uncompressed (04 || X || Y, {self.public_length} bytes, RFC 8422 "
                f"section 5.4.1); got {len(value)} bytes starting {value[:1].hex() or 'with nothing'}"
            )
        try:
            assert self.curve is not None
            ec.EllipticCurvePublicKey.from_encoded_point(self.curve(), value)
        except ValueError:
            raise IllegalParameter(f"the peer's {self.name} point is not on the curve") from None


@dataclass(frozen=True)
class EphemeralKey:
    """One side's key pair for one handshake: ``public`` goes on the wire, the private half never does."""

    group: Group
    public: bytes
    _x25519: x25519.X25519PrivateKey | None = field(default=None, repr=False)
    _ec: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)
    _dh_exponent: int = field(default=0, repr=False)

    @property
    def private_key(self) -> ECDHPrivateKey | None:
        """The ECDHE private half as a ``cryptography`` key (None for DHE, whose exponent is a number)."""
        return self._x25519 if self._x25519 is not None else self._ec

    def shared_secret(self, peer_public: bytes, *, ecdhe: ECDHESecret | None = None) -> bytes:
        """The pre-master secret with the peer's ``peer_public`` (validated first: see the module docstring).

        ``ecdhe`` computes an ECDHE secret in place of :func:`ecdhe_premaster_secret` (the client's
        replaceable stage); the checks around it (the peer's value before, an all-zero X25519 result
        after) are the library's whichever function ran.
        """
        self.group.check_public(peer_public)
        private = self.private_key
        if private is not None:
            secret = (ecdhe or ecdhe_premaster_secret)(private, peer_public)
            if not isinstance(secret, bytes):
                raise TypeError(f"the ECDHE pre-master secret must be bytes, not {type(secret).__name__}")
            if self._x25519 is not None and secret == bytes(32):
                raise IllegalParameter("the X25519 shared secret is all zeros: a low-order point (RFC 8422 5.11)")
            return secret
        z = pow(int.from_bytes(peer_public, "big"), self._dh_exponent, self.group.p)
        # RFC 5246 section 8.1.2: "Leading bytes of Z that contain all zero bits are stripped".
        return z.to_bytes(self.group.public_length, "big").lstrip(b"\x00")


class ECDHESecret(Protocol):
    """The ECDHE pre-master secret from our private key and the peer's public value (as sent)."""

    def __call__(self, client_private_key: ECDHPrivateKey, server_public: bytes, /) -> bytes: ...


def ecdhe_premaster_secret(client_private_key: ECDHPrivateKey, server_public: bytes, /) -> bytes:
    """The ECDHE pre-master secret: ``client_private_key`` (ours) with the server's public value.

    X25519 (RFC 7748): the 32-byte output of ``X25519(private, public)``, as is.  P-256 and P-384: ECDH's
    shared point's x-coordinate, as long as the field (RFC 8422 section 5.10).  ``cryptography`` does the
    curve arithmetic; the same call works for the server with its private key and the client's value.
    ``server_public`` must already be checked (:meth:`Group.check_public`).
    """
    if isinstance(client_private_key, x25519.X25519PrivateKey):
        try:
            return client_private_key.exchange(x25519.X25519PublicKey.from_public_bytes(server_public))
        except ValueError:  # cryptography refuses the all-zero result itself; the caller names it
            return bytes(32)
    peer = ec.EllipticCurvePublicKey.from_encoded_point(client_private_key.curve, server_public)
    return client_private_key.exchange(ec.ECDH(), peer)


_ORDERS = {
    NamedGroup.secp256r1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    NamedGroup.secp384r1: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
}

GROUPS: dict[NamedGroup, Group] = {
    NamedGroup.x25519: Group(NamedGroup.x25519, "ecdhe", 32),
    NamedGroup.secp256r1: Group(NamedGroup.secp256r1, "ecdhe", 65, curve=ec.SECP256R1),
    NamedGroup.secp384r1: Group(NamedGroup.secp384r1, "ecdhe", 97, curve=ec.SECP384R1),
    NamedGroup.ffdhe2048: Group(NamedGroup.ffdhe2048, "dhe", 256, p=FFDHE2048_P, g=2),
    NamedGroup.ffdhe3072: Group(NamedGroup.ffdhe3072, "dhe", 384, p=FFDHE3072_P, g=2),
}
EC_GROUPS: tuple[NamedGroup, ...] = tuple(code for code, g in GROUPS.items() if g.kind == "ecdhe")
FFDHE_GROUPS: tuple[NamedGroup, ...] = tuple(code for code, g in GROUPS.items() if g.kind == "dhe")


def group(code: int) -> Group:
    """The :class:`Group` for a code point; HandshakeFailure for one we do not implement."""
    try:
        return GROUPS[NamedGroup(code)]
    except (ValueError, KeyError):
        raise HandshakeFailure(f"group {name_of(NamedGroup, code)} is not implemented here") from None


# OpenSSL 3.0's servers ignore supported_groups in TLS 1.2 and, with automatic DH parameters (s_server's
# default), send RFC 3526's 2048-bit MODP group 14: a safe prime too (the one SSH's group14 uses), so the
# same range check is all its values need.  A client accepts it; it has no code point, and is never offered.
MODP2048 = Group(None, "dhe", 256, p=MODP_GROUP14, g=2, label="modp2048 (RFC 3526 group 14)")


def ffdhe_group_for(p: int, g: int) -> Group | None:
    """The RFC 7919 group (or RFC 3526's group 14) with prime ``p`` and generator ``g``; None for another."""
    known = [*(gr for gr in GROUPS.values() if gr.kind == "dhe"), MODP2048]
    return next((gr for gr in known if gr.p == p and gr.g == g), None)


def parse_group_names(text: str) -> tuple[NamedGroup, ...]:
    """``"x25519,secp256r1"`` (OpenSSL's ``X25519``, ``P-256``, ``prime256v1`` too) -> the groups, in order."""
    aliases = {"p-256": "secp256r1", "prime256v1": "secp256r1", "p-384": "secp384r1"}
    groups: list[NamedGroup] = []
    for raw in text.split(","):
        name = aliases.get(raw.strip().lower(), raw.strip().lower())
        if name not in NamedGroup.__members__ or NamedGroup[name] not in GROUPS:
            raise ValueError(f"unknown group {raw.strip()!r}: use {', '.join(g.name for g in GROUPS.values())}")
        groups.append(NamedGroup[name])
    return tuple(groups)
