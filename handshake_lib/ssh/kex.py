"""SSH key exchange methods: each side's public value, the shared secret K and how K is encoded.

Theory of operation
-------------------
After KEXINIT the client sends one public value and the server answers with its own, its host key
and a signature over the exchange hash H (:mod:`handshake_lib.ssh.exchange_hash`).  Both sides then
hold the same shared secret K.  Every method here is the same two steps::

    client: share = method.client_start()           -> share.public      (Q_C, or e)
    server: server_public, K = method.server_reply(client_public)        (Q_S, or f)
    client: K = share.finish(server_public)

The methods differ in the mathematics and in how K is *encoded* for H and the key derivation:

============================================  ==================  ===========================================
method                                        public values       K
============================================  ==================  ===========================================
curve25519-sha256 (+ @libssh.org), RFC 8731   32-byte ``string``  ``mpint`` of the X25519 output read as a
                                                                  big-endian unsigned number
ecdh-sha2-nistp256, RFC 5656                  65-byte ``string``  ``mpint`` of the shared point's x
                                              (uncompressed)
diffie-hellman-group14-sha256, -group16-      ``mpint`` e and f   ``mpint`` of f^x mod p (RFC 3526 groups,
sha512, RFC 4253 / RFC 8268                                       RFC 8268 names)
mlkem768x25519-sha256                         client: ML-KEM-768  ``string`` of SHA-256(ML-KEM secret ||
(draft-ietf-sshm-mlkem-hybrid-kex)            key || X25519;      X25519 secret)
                                              server: ciphertext
                                              || X25519
sntrup761x25519-sha512 (+ @openssh.com),      the same with       ``string`` of SHA-512(sntrup761 secret ||
RFC 9941                                      sntrup761           X25519 secret)
============================================  ==================  ===========================================

In the hybrids the X25519 output enters the hash as its raw 32 bytes, never as an mpint, and the
result is a ``string``: an mpint would drop a leading zero byte or add one, and both sides of
OpenSSH's code use ``sshbuf_put_string`` there.  Getting this wrong still gives both ends "a" key,
just never the same one as a real peer.

Peer values are checked before use: an X25519 exchange that yields all zeros (a low-order point),
a P-256 point that is not on the curve, or a Diffie-Hellman value outside [2, p-2] raises
:class:`~handshake_lib.errors.KeyExchangeFailed`; a value of the wrong length raises
:class:`~handshake_lib.errors.DecodeError`.

Randomness is injected (``random=``, default :func:`os.urandom`), so a test or a notebook can
replay an exchange byte for byte.  The limits: ML-KEM encapsulation (cryptography) and sntrup761
key generation and encapsulation (PQClean through ``pqcrypto``) draw their own randomness; the
X25519 halves and the ML-KEM key pair (from its 64-byte seed) are injectable, and a recorded
sntrup761 key pair can be passed in (``kem_keypair=``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import DecodeError, KeyExchangeFailed
from ..wire import Writer

__all__ = [
    "Random",
    "SharedSecret",
    "ClientShare",
    "KexMethod",
    "Curve25519Sha256",
    "EcdhNistp256",
    "DiffieHellmanGroup",
    "MlKem768X25519Sha256",
    "Sntrup761X25519Sha512",
    "KEX_METHODS",
    "kex_method",
    "decode_mpint_body",
    "MODP_GROUP14",
    "MODP_GROUP16",
    "mlkem768_keypair",
    "mlkem768_encapsulate",
    "mlkem768_decapsulate",
]

Random = Callable[[int], bytes]
Encoding_ = Literal["mpint", "string"]


def _mpint_field(value: int) -> bytes:
    return Writer().ssh_mpint(value).getvalue()


def _string_field(value: bytes) -> bytes:
    return Writer().ssh_string(value).getvalue()


def _mpint_body(value: int) -> bytes:
    """The bytes inside an mpint ``string`` (minimal two's complement), as a public value travels."""
    return _mpint_field(value)[4:]


def decode_mpint_body(body: bytes, field_name: str) -> int:
    """Read the content of an mpint field (RFC 4251 section 5) that must hold a non-negative number."""
    if len(body) >= 2 and ((body[0] == 0 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)):
        raise DecodeError("mpint has an unnecessary leading byte", field=field_name)
    if body == b"\x00":
        raise DecodeError("zero must be encoded as an empty mpint", field=field_name)
    value = int.from_bytes(body, "big", signed=True)
    if value < 0:
        raise KeyExchangeFailed(f"{field_name} is negative")
    return value


def _take_random(random: Random, n: int) -> bytes:
    value = random(n)
    if not isinstance(value, bytes | bytearray) or len(value) != n:
        raise ValueError(f"random({n}) must return {n} bytes")
    return bytes(value)


@dataclass(frozen=True)
class SharedSecret:
    """K, the secret both sides share after a key exchange.

    ``raw`` is the secret as the mathematics gives it (the X25519 output, the P-256 x coordinate,
    f^x mod p as big-endian bytes, or the hybrid's hash); ``encoded`` is K as it goes into the
    exchange hash and the key derivation (``encoding`` says which: an ``mpint`` or a ``string``).
    ``parts`` names the hybrid's inputs (the KEM secret, the X25519 secret) for a lesson to show.
    ``ephemeral_private`` is this side's ephemeral private value (the X25519 scalar, the
    Diffie-Hellman exponent), kept for one reader only: a key log in the form Wireshark before 4.2
    reads (``<cookie> <private key>``, :mod:`~handshake_lib.ssh.keylog`); empty for the other methods.
    """

    method: str
    raw: bytes
    encoded: bytes
    encoding: Encoding_
    parts: tuple[tuple[str, bytes], ...] = ()
    ephemeral_private: bytes = field(default=b"", repr=False, compare=False)

    def __repr__(self) -> str:
        return f"SharedSecret({self.method}, {len(self.raw)} bytes, encoded as {self.encoding})"


@dataclass(frozen=True)
class ClientShare:
    """The client's half of a key exchange: ``public`` to send, ``finish`` to call with the reply.

    ``public`` is the value's bytes as they sit inside its wire field: Q_C for the ``string`` methods,
    the content of the mpint e for Diffie-Hellman (``method.encode_public`` adds the length prefix).
    """

    method: KexMethod
    public: bytes
    _finish: Callable[[bytes | int], SharedSecret] = field(repr=False)

    def finish(self, server_public: bytes | int) -> SharedSecret:
        """K from the server's value (Q_S, f or the hybrid's ciphertext || X25519 key), checked first."""
        return self._finish(server_public)


class KexMethod:
    """One key exchange method.  Subclasses set the class attributes and the two steps."""

    name: str = ""
    hash: str = ""  # the hash for H and the key derivation ("sha256", "sha512")
    # How the public values travel in KEX*_INIT / KEX*_REPLY and go into H.
    public_encoding: ClassVar[Encoding_] = "string"
    shared_secret_encoding: ClassVar[Encoding_] = "mpint"
    client_public_length: ClassVar[int | None] = None  # fixed sizes; None for Diffie-Hellman
    server_public_length: ClassVar[int | None] = None
    description: ClassVar[str] = ""

    def client_start(self, random: Random = os.urandom) -> ClientShare:
        raise NotImplementedError

    def server_reply(self, client_public: bytes | int, random: Random = os.urandom) -> tuple[bytes, SharedSecret]:
        raise NotImplementedError

    def encode_public(self, public: bytes | int) -> bytes:
        """A public value as its whole wire field (length prefix included), as it goes into H."""
        if self.public_encoding == "mpint":
            value = public if isinstance(public, int) else decode_mpint_body(public, "public value")
            return _mpint_field(value)
        if not isinstance(public, bytes | bytearray):
            raise TypeError(f"{self.name} public values are byte strings, not {type(public).__name__}")
        return _string_field(bytes(public))

    def _check_length(self, value: bytes | int, expected: int | None, what: str) -> bytes:
        if not isinstance(value, bytes | bytearray):
            raise DecodeError(f"{self.name}: {what} must be a byte string", field=what)
        if expected is not None and len(value) != expected:
            raise DecodeError(f"{self.name}: {what} is {len(value)} bytes, expected {expected}", field=what)
        return bytes(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --- X25519 (RFC 7748) ---------------------------------------------------------------------------


def _x25519_private(random: Random) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(_take_random(random, 32))


def _x25519_public(private: x25519.X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _x25519_shared(private: x25519.X25519PrivateKey, peer_public: bytes, what: str) -> bytes:
    """The X25519 output with the peer's key; all zeros (a low-order point) is refused (RFC 8731 s3)."""
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        # OpenSSL refuses the all-zero result itself; the message says why in the RFC's words.
        shared = bytes(32)
    if shared == bytes(32):
        raise KeyExchangeFailed(f"{what}: the X25519 shared secret is all zeros (a low-order point)")
    return shared


class Curve25519Sha256(KexMethod):
    """curve25519-sha256 (RFC 8731): X25519, K = mpint of the 32 output bytes read big-endian."""

    public_encoding = "string"
    shared_secret_encoding = "mpint"
    client_public_length = 32
    server_public_length = 32
    description = "X25519 Diffie-Hellman (RFC 8731)"

    def __init__(self, name: str = "curve25519-sha256") -> None:
        self.name = name
        self.hash = "sha256"

    def _secret(self, shared: bytes, private: x25519.X25519PrivateKey) -> SharedSecret:
        # RFC 8731 section 3: the 32 bytes are an unsigned number in network byte order, then an
        # mpint like any other K (so a leading zero byte disappears, a high bit gains a 0x00).
        encoded = _mpint_field(int.from_bytes(shared, "big"))
        return SharedSecret(self.name, shared, encoded, "mpint", ephemeral_private=private.private_bytes_raw())

    def client_start(self, random: Random = os.urandom) -> ClientShare:
        private = _x25519_private(random)

        def finish(server_public: bytes | int) -> SharedSecret:
            peer = self._check_length(server_public, 32, "server public key Q_S")
            return self._secret(_x25519_shared(private, peer, "Q_S"), private)

        return ClientShare(self, _x25519_public(private), finish)

    def server_reply(self, client_public: bytes | int, random: Random = os.urandom) -> tuple[bytes, SharedSecret]:
        peer = self._check_length(client_public, 32, "client public key Q_C")
        private = _x25519_private(random)
        return _x25519_public(private), self._secret(_x25519_shared(private, peer, "Q_C"), private)


# --- ECDH on NIST P-256 (RFC 5656) ---------------------------------------------------------------

# SEC 2 / FIPS 186-4 domain parameters for P-256 (y^2 = x^3 - 3x + b mod p, n the group order).
_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _p256_point(encoded: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """An uncompressed point (0x04 || x || y) checked as RFC 5656 section 4 and SEC 1 3.2.2.1 ask."""
    if encoded[0] != 0x04:
        raise KeyExchangeFailed(f"{what}: not an uncompressed point (first byte {encoded[0]:#04x}, expected 0x04)")
    x = int.from_bytes(encoded[1:33], "big")
    y = int.from_bytes(encoded[33:], "big")
    if x >= _P256_P or y >= _P256_P:
        raise KeyExchangeFailed(f"{what}: a coordinate is not below the field prime p")
    if (y * y - (x * x * x - 3 * x + _P256_B)) % _P256_P != 0:
        raise KeyExchangeFailed(f"{what}: the point is not on the curve P-256")
    # P-256 has cofactor 1, so a point on the curve (never the point at infinity, which has no
    # uncompressed form) is in the group of order n; cryptography checks the same again.
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), encoded)
    except ValueError as exc:
        raise KeyExchangeFailed(f"{what}: refused by the P-256 implementation: {exc}") from None


class EcdhNistp256(KexMethod):
    """ecdh-sha2-nistp256 (RFC 5656): ephemeral P-256 keys, K = mpint of the shared point's x."""

    name = "ecdh-sha2-nistp256"
    hash = "sha256"
    public_encoding = "string"
    shared_secret_encoding = "mpint"
    client_public_length = 65
    server_public_length = 65
    description = "Elliptic-curve Diffie-Hellman on NIST P-256 (RFC 5656)"

    @staticmethod
    def _private(random: Random) -> ec.EllipticCurvePrivateKey:
        # FIPS 186-4 B.4.1: 64 extra random bits, reduced mod n-1, plus one: a scalar in [1, n-1]
        # with negligible bias, from a fixed number of bytes (so a replay needs no retry loop).
        scalar = int.from_bytes(_take_random(random, 40), "big") % (_P256_N - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())

    @staticmethod
    def _public(private: ec.EllipticCurvePrivateKey) -> bytes:
        return private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def _secret(self, private: ec.EllipticCurvePrivateKey, peer: bytes, what: str) -> SharedSecret:
        shared_x = private.exchange(ec.ECDH(), _p256_point(peer, what))
        return SharedSecret(self.name, shared_x, _mpint_field(int.from_bytes(shared_x, "big")), "mpint")

    def client_start(self, random: Random = os.urandom) -> ClientShare:
        private = self._private(random)

        def finish(server_public: bytes | int) -> SharedSecret:
            return self._secret(private, self._check_length(server_public, 65, "server public key Q_S"), "Q_S")

        return ClientShare(self, self._public(private), finish)

    def server_reply(self, client_public: bytes | int, random: Random = os.urandom) -> tuple[bytes, SharedSecret]:
        peer = self._check_length(client_public, 65, "client public key Q_C")
        private = self._private(random)
        return self._public(private), self._secret(private, peer, "Q_C")


# --- Finite-field Diffie-Hellman (RFC 4253 section 8, RFC 3526 groups, RFC 8268 names) ------------

# RFC 3526 section 3: the 2048-bit MODP group (id 14), generator 2.
MODP_GROUP14 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
# RFC 3526 section 5: the 4096-bit MODP group (id 16), generator 2.
MODP_GROUP16 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
    16,
)


class DiffieHellmanGroup(KexMethod):
    """diffie-hellman-group14-sha256 / -group16-sha512: e = g^x mod p, f = g^y mod p, K = f^x = e^y."""

    public_encoding = "mpint"
    shared_secret_encoding = "mpint"
    description = "Finite-field Diffie-Hellman over an RFC 3526 MODP group (RFC 4253, RFC 8268)"

    def __init__(self, name: str, prime: int, hash_name: str, generator: int = 2) -> None:
        self.name = name
        self.prime = prime
        self.generator = generator
        self.hash = hash_name

    def _exponent(self, random: Random) -> int:
        # Twice the hash size in bits, as OpenSSH sizes its exponent (dh_gen_key: twice the bits of
        # the longest key needed): far below p, at least 2, and cheap to raise to.
        size = 2 * hashlib.new(self.hash).digest_size
        return int.from_bytes(_take_random(random, size), "big") + 2

    def _peer_value(self, value: bytes | int, what: str) -> int:
        if isinstance(value, bytes | bytearray):
            if len(value) > (self.prime.bit_length() + 8) // 8:
                raise DecodeError(f"{self.name}: {what} is longer than the group's prime", field=what)
            number = decode_mpint_body(bytes(value), what)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise DecodeError(f"{self.name}: {what} must be an mpint (bytes) or an int", field=what)
        # RFC 4253 section 8 refuses values outside [1, p-1]; 1 and p-1 are refused too (as OpenSSH's
        # dh_pub_is_valid does): they would force K to 1 or p-1, a value an attacker knows.
        if not 2 <= number <= self.prime - 2:
            raise KeyExchangeFailed(f"{self.name}: {what} is outside [2, p-2]")
        return number

    def _secret(self, peer: int, exponent: int) -> SharedSecret:
        shared = pow(peer, exponent, self.prime)
        raw = shared.to_bytes((shared.bit_length() + 7) // 8, "big")
        private = exponent.to_bytes((exponent.bit_length() + 7) // 8, "big")
        return SharedSecret(self.name, raw, _mpint_field(shared), "mpint", ephemeral_private=private)

    def client_start(self, random: Random = os.urandom) -> ClientShare:
        exponent = self._exponent(random)
        public = pow(self.generator, exponent, self.prime)

        def finish(server_public: bytes | int) -> SharedSecret:
            return self._secret(self._peer_value(server_public, "f"), exponent)

        return ClientShare(self, _mpint_body(public), finish)

    def server_reply(self, client_public: bytes | int, random: Random = os.urandom) -> tuple[bytes, SharedSecret]:
        peer = self._peer_value(client_public, "e")
        exponent = self._exponent(random)
        return _mpint_body(pow(self.generator, exponent, self.prime)), self._secret(peer, exponent)


# --- Post-quantum hybrids ---------------------------------------------------------------------


class _HybridX25519(KexMethod):
    """A KEM plus X25519; K = string(HASH(kem_secret || x25519_secret)).  Subclasses supply the KEM."""

    public_encoding = "string"
    shared_secret_encoding = "string"
    kem_name: ClassVar[str] = ""
    kem_public_length: ClassVar[int] = 0
    kem_ciphertext_length: ClassVar[int] = 0

    def _kem_keypair(self, random: Random) -> tuple[bytes, object]:
        raise NotImplementedError

    def _kem_encapsulate(self, kem_public: bytes) -> tuple[bytes, bytes]:
        """(ciphertext, shared secret)."""
        raise NotImplementedError

    def _kem_decapsulate(self, private: object, ciphertext: bytes) -> bytes:
        raise NotImplementedError

    def _secret(self, kem_secret: bytes, x25519_secret: bytes) -> SharedSecret:
        digest = hashlib.new(self.hash, kem_secret + x25519_secret).digest()
        return SharedSecret(
            self.name,
            digest,
            _string_field(digest),
            "string",
            ((f"{self.kem_name} shared secret", kem_secret), ("X25519 shared secret", x25519_secret)),
        )

    def client_start(self, random: Random = os.urandom, kem_keypair: tuple[bytes, bytes] | None = None) -> ClientShare:
        if kem_keypair is not None:
            kem_public, kem_private = kem_keypair[0], self._kem_private_from_bytes(kem_keypair[1])
        else:
            kem_public, kem_private = self._kem_keypair(random)
        x_private = _x25519_private(random)

        def finish(server_public: bytes | int) -> SharedSecret:
            reply = self._check_length(server_public, self.server_public_length, "server reply (ciphertext || X25519)")
            ciphertext, x_peer = reply[: self.kem_ciphertext_length], reply[self.kem_ciphertext_length :]
            kem_secret = self._kem_decapsulate(kem_private, ciphertext)
            return self._secret(kem_secret, _x25519_shared(x_private, x_peer, "server X25519 key"))

        return ClientShare(self, kem_public + _x25519_public(x_private), finish)

    def _kem_private_from_bytes(self, private: bytes) -> object:
        return private

    def server_reply(self, client_public: bytes | int, random: Random = os.urandom) -> tuple[bytes, SharedSecret]:
        what = f"client value ({self.kem_name} key || X25519)"
        offer = self._check_length(client_public, self.client_public_length, what)
        kem_public, x_peer = offer[: self.kem_public_length], offer[self.kem_public_length :]
        ciphertext, kem_secret = self._kem_encapsulate(kem_public)
        x_private = _x25519_private(random)
        x_secret = _x25519_shared(x_private, x_peer, "client X25519 key")
        return ciphertext + _x25519_public(x_private), self._secret(kem_secret, x_secret)


class MlKem768X25519Sha256(_HybridX25519):
    """mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex): ML-KEM-768 (FIPS 203) + X25519."""

    name = "mlkem768x25519-sha256"
    hash = "sha256"
    kem_name = "ML-KEM-768"
    kem_public_length = 1184
    kem_ciphertext_length = 1088
    client_public_length = 1184 + 32
    server_public_length = 1088 + 32
    description = "ML-KEM-768 + X25519 hybrid (post-quantum)"

    def _kem_keypair(self, random: Random) -> tuple[bytes, object]:
        return mlkem768_keypair(_take_random(random, 64))

    def _kem_private_from_bytes(self, private: bytes) -> object:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(private)

    def _kem_encapsulate(self, kem_public: bytes) -> tuple[bytes, bytes]:
        try:
            return mlkem768_encapsulate(kem_public)
        except ValueError as exc:
            raise KeyExchangeFailed(f"{self.name}: the client's ML-KEM-768 key is invalid: {exc}") from None

    def _kem_decapsulate(self, private: object, ciphertext: bytes) -> bytes:
        assert isinstance(private, mlkem.MLKEM768PrivateKey)
        return mlkem768_decapsulate(private, ciphertext)


# ML-KEM-768 (FIPS 203) as both hybrids that use it need it: SSH's mlkem768x25519-sha256 here and TLS's
# X25519MLKEM768 (tls/key_share13.py), which differ only in how the two secrets are combined.
def mlkem768_keypair(seed: bytes) -> tuple[bytes, mlkem.MLKEM768PrivateKey]:
    """(encapsulation key, private key) from FIPS 203's 64-byte seed (d || z): injectable key generation."""
    private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    return private.public_key().public_bytes_raw(), private


def mlkem768_encapsulate(kem_public: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, shared secret) for a peer's encapsulation key; ValueError for an invalid key.

    ``cryptography`` runs FIPS 203 7.2's input check (the length, and every coefficient below q = 3329)
    and takes the encapsulation's randomness itself: the one non-injectable random input of a hybrid.
    """
    try:
        public = mlkem.MLKEM768PublicKey.from_public_bytes(kem_public)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(str(exc)) from None
    shared, ciphertext = public.encapsulate()
    return ciphertext, shared


def mlkem768_decapsulate(private: mlkem.MLKEM768PrivateKey, ciphertext: bytes) -> bytes:
    """The shared secret from a ciphertext (1088 bytes: the caller checks the length).

    Implicit rejection (FIPS 203): a forged ciphertext gives a pseudo-random secret, never an error, so
    the failure shows up later (SSH: a signature over H that does not verify; TLS: the Finished MACs).
    """
    return private.decapsulate(ciphertext)


class Sntrup761X25519Sha512(_HybridX25519):
    """sntrup761x25519-sha512 (RFC 9941; @openssh.com is OpenSSH's older name): sntrup761 + X25519."""

    hash = "sha512"
    kem_name = "sntrup761"
    kem_public_length = 1158
    kem_ciphertext_length = 1039
    client_public_length = 1158 + 32
    server_public_length = 1039 + 32
    description = "Streamlined NTRU Prime 761 + X25519 hybrid (post-quantum)"

    def __init__(self, name: str = "sntrup761x25519-sha512") -> None:
        self.name = name

    @staticmethod
    def _module():  # noqa: ANN205 - pqcrypto has no stubs
        # Imported on first use: pqcrypto is only needed when this method is negotiated.
        from pqcrypto.kem import sntrup_761

        return sntrup_761

    def _kem_keypair(self, random: Random) -> tuple[bytes, object]:
        public, private = self._module().keygen()  # PQClean draws its own randomness
        return bytes(public), bytes(private)

    def _kem_encapsulate(self, kem_public: bytes) -> tuple[bytes, bytes]:
        # sntrup761 public keys have no invalid encodings (every string decodes to some key), so
        # there is nothing to refuse here: a garbage key only means the client cannot decapsulate.
        ciphertext, shared = self._module().encaps(kem_public)
        return bytes(ciphertext), bytes(shared)

    def _kem_decapsulate(self, private: object, ciphertext: bytes) -> bytes:
        assert isinstance(private, bytes)
        return bytes(self._module().decaps(private, ciphertext))


KEX_METHODS: dict[str, KexMethod] = {
    method.name: method
    for method in (
        MlKem768X25519Sha256(),
        Sntrup761X25519Sha512("sntrup761x25519-sha512"),
        Sntrup761X25519Sha512("sntrup761x25519-sha512@openssh.com"),
        Curve25519Sha256("curve25519-sha256"),
        Curve25519Sha256("curve25519-sha256@libssh.org"),
        EcdhNistp256(),
        DiffieHellmanGroup("diffie-hellman-group16-sha512", MODP_GROUP16, "sha512"),
        DiffieHellmanGroup("diffie-hellman-group14-sha256", MODP_GROUP14, "sha256"),
    )
}


def kex_method(name: str) -> KexMethod:
    """The key exchange method called ``name`` (as KEXINIT spells it)."""
    try:
        return KEX_METHODS[name]
    except KeyError:
        raise KeyError(f"unknown key exchange method {name!r} (known: {', '.join(KEX_METHODS)})") from None
