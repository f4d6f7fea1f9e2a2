"""TLS 1.3 key shares: the (EC)DHE and hybrid groups behind the key_share extension (RFC 8446 4.2.8).

Theory of operation
-------------------
In TLS 1.3 the key exchange moves into the hellos.  The client guesses a group and sends a public value
(a ``KeyShareEntry``) in its ClientHello; the server answers with its own value in the ServerHello, and
each side computes the same shared secret, which enters the key schedule as HKDF-Extract's input
(key_schedule13.py).  There is no ServerKeyExchange: the transcript signature in CertificateVerify covers
the server's share.

A :class:`KeyShareGroup13` is one group with three operations, the only three a handshake needs:

* :meth:`KeyShareGroup13.client_share` -> a :class:`ClientKeyShare13` (the entry for the ClientHello, from
  injected randomness), whose :meth:`~ClientKeyShare13.shared_secret` takes the ServerHello's value;
* :meth:`KeyShareGroup13.server_share` -> (the ServerHello's value, the shared secret) from a client's value.

What each group puts on the wire and takes as the secret (RFC 8446 4.2.8.1-2, 7.4):

==================  ========================  ========================  ===================================
group               client value              server value              shared secret
==================  ========================  ========================  ===================================
x25519              32 bytes                  32 bytes                  the X25519 output (RFC 7748)
secp256r1/384r1     04 || X || Y (65 / 97)    the same                  the x-coordinate, as long as the field
ffdhe2048           g^x mod p, left-padded    the same                  g^xy mod p, left-padded to 256 bytes
                    to 256 bytes                                        (TLS 1.2 strips the zeros: not 1.3)
X25519MLKEM768      ML-KEM-768 encapsulation  ML-KEM-768 ciphertext     ML-KEM secret (32) || X25519 secret
                    key (1184) || X25519 (32) (1088) || X25519 (32)     (32): 64 bytes, no hash
==================  ========================  ========================  ===================================

The hybrid is draft-kwiatkowski-tls-ecdhe-mlkem: unlike the other ``X || ML-KEM`` hybrids it puts ML-KEM
*first*, for FIPS 140 reasons (an approved KEM's secret leads the concatenation).  SSH's
mlkem768x25519-sha256 uses the same two halves, so the ML-KEM calls are ssh/kex.py's; SSH hashes the
two secrets into one, TLS feeds both to HKDF-Extract as they are.

Checks (refused before any secret is used, with the alert OpenSSL sends):

=============================================  =================================================================
peer value                                     refused with
=============================================  =================================================================
wrong size for the group (any group)           ``IllegalParameter``: OpenSSL's SSL_R_BAD_KEY_SHARE / BAD_ECPOINT
EC point not uncompressed, or not on the curve ``IllegalParameter`` (RFC 8446 4.2.8.2: "MUST validate")
X25519 result all zeros (low-order point)      ``IllegalParameter`` (RFC 8446 7.4.2, RFC 7748 section 6.1)
DH value outside 1 < Y < p - 1                 ``HandshakeFailure`` (RFC 8446 4.2.8.1 asks for the check;
                                               the alert is RFC 7919's, as for TLS 1.2)
ML-KEM encapsulation key fails FIPS 203 7.2    ``IllegalParameter`` (the draft: "MUST abort with
                                               illegal_parameter")
=============================================  =================================================================

An ML-KEM ciphertext cannot be "checked": decapsulation's implicit rejection turns a forged one into a
random secret, and the Finished MACs then fail (decrypt_error).  The key generation and checks for the
classic groups are tls/key_exchange.py's (one implementation for both versions); this module adds the 1.3
sizes, the padded FFDHE secret and the hybrid.  Sans-I/O: randomness is a ``random_bytes(n)`` argument,
except ML-KEM encapsulation, whose randomness ``cryptography`` draws itself.

tests/test_tls13_handshake_by_hand.py checks every group on a real peer: a hand-driven handshake whose
handshake and application secrets must equal the server's key log (OpenSSL 3.0 for the classic groups,
OpenSSL 4.0 from ``cryptography``'s wheel for X25519MLKEM768, which Debian's 3.0 lacks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import HandshakeFailure, IllegalParameter
from ..ssh.kex import mlkem768_decapsulate, mlkem768_encapsulate, mlkem768_keypair
from .constants import NamedGroup, name_of
from .extensions import KEY_SHARE_SIZES, KeyShareEntry
from .key_exchange import GROUPS, EphemeralKey, Group

__all__ = [
    "KeyShareGroup13",
    "ClientKeyShare13",
    "KEY_SHARE_GROUPS13",
    "key_share_group13",
]

RandomBytes = Callable[[int], bytes]

_MLKEM768_PUBLIC, _MLKEM768_CIPHERTEXT = 1184, 1088


@dataclass(frozen=True)
class KeyShareGroup13:
    """One TLS 1.3 group: its code point and the sizes of the two sides' values on the wire."""

    code: NamedGroup
    client_share_length: int
    server_share_length: int
    secret_length: int

    @property
    def name(self) -> str:
        return self.code.name

    @property
    def hybrid(self) -> bool:
        return self.code == NamedGroup.X25519MLKEM768

    def _classic(self) -> Group:
        return GROUPS[NamedGroup.x25519 if self.hybrid else self.code]

    def _check_length(self, value: bytes, expected: int, who: str) -> None:
        if len(value) != expected:
            raise IllegalParameter(f"{who} key share for {self.name} is {len(value)} bytes, not {expected}")

    def _classic_secret(self, key: EphemeralKey, peer: bytes) -> bytes:
        # key_exchange.py validates the peer's value and refuses an all-zero X25519 result; its DH secret
        # is TLS 1.2's (leading zeros stripped), which RFC 8446 7.4.1 pads back to the size of p.
        secret = key.shared_secret(peer)
        return secret.rjust(key.group.public_length, b"\x00") if key.group.kind == "dhe" else secret

    def client_share(self, random_bytes: RandomBytes) -> ClientKeyShare13:
        """This side's key pair for the ClientHello, from ``random_bytes`` (fixed in tests)."""
        if self.hybrid:
            kem_public, kem_private = mlkem768_keypair(_take(random_bytes, 64))
            ecdh = self._classic().generate(random_bytes)
            return ClientKeyShare13(self, kem_public + ecdh.public, ecdh, kem_private)
        ecdh = self._classic().generate(random_bytes)
        return ClientKeyShare13(self, ecdh.public, ecdh)

    def server_share(self, client_value: bytes, random_bytes: RandomBytes) -> tuple[bytes, bytes]:
        """(the ServerHello's key_exchange, the shared secret) for a client's value, checked first."""
        self._check_length(client_value, self.client_share_length, "the client's")
        ecdh = self._classic().generate(random_bytes)
        if not self.hybrid:
            return ecdh.public, self._classic_secret(ecdh, client_value)
        kem_public, x_peer = client_value[:_MLKEM768_PUBLIC], client_value[_MLKEM768_PUBLIC:]
        try:
            ciphertext, kem_secret = mlkem768_encapsulate(kem_public)
        except ValueError as exc:
            raise IllegalParameter(f"the client's ML-KEM-768 encapsulation key is invalid: {exc}") from None
        return ciphertext + ecdh.public, kem_secret + self._classic_secret(ecdh, x_peer)


@dataclass(frozen=True)
class ClientKeyShare13:
    """A client's share: ``entry`` goes in the ClientHello's key_share, the private halves never leave."""

    group: KeyShareGroup13
    public: bytes
    _ecdh: EphemeralKey = field(repr=False)
    _kem_private: object = field(default=None, repr=False)

    @property
    def entry(self) -> KeyShareEntry:
        return KeyShareEntry(self.group.code, self.public)

    def shared_secret(self, server_value: bytes) -> bytes:
        """The shared secret with the ServerHello's key_exchange (checked first: see the module docstring)."""
        self.group._check_length(server_value, self.group.server_share_length, "the server's")
        if not self.group.hybrid:
            return self.group._classic_secret(self._ecdh, server_value)
        ciphertext, x_peer = server_value[:_MLKEM768_CIPHERTEXT], server_value[_MLKEM768_CIPHERTEXT:]
        kem_secret = mlkem768_decapsulate(self._kem_private, ciphertext)  # type: ignore[arg-type]
        return kem_secret + self.group._classic_secret(self._ecdh, x_peer)


def _take(random_bytes: RandomBytes, n: int) -> bytes:
    value = random_bytes(n)
    if len(value) != n:
        raise ValueError(f"random_bytes({n}) returned {len(value)} bytes")
    return bytes(value)


def _group(code: NamedGroup, secret_length: int) -> KeyShareGroup13:
    client, server = KEY_SHARE_SIZES[code]
    return KeyShareGroup13(code, client, server, secret_length)


KEY_SHARE_GROUPS13: dict[NamedGroup, KeyShareGroup13] = {
    NamedGroup.x25519: _group(NamedGroup.x25519, 32),
    NamedGroup.secp256r1: _group(NamedGroup.secp256r1, 32),
    NamedGroup.secp384r1: _group(NamedGroup.secp384r1, 48),
    NamedGroup.ffdhe2048: _group(NamedGroup.ffdhe2048, 256),
    NamedGroup.X25519MLKEM768: _group(NamedGroup.X25519MLKEM768, 64),
}


def key_share_group13(code: int) -> KeyShareGroup13:
    """The group for a code point; HandshakeFailure for one we do not implement in TLS 1.3."""
    try:
        return KEY_SHARE_GROUPS13[NamedGroup(code)]
    except (ValueError, KeyError):
        raise HandshakeFailure(f"group {name_of(NamedGroup, code)} is not implemented for TLS 1.3") from None
