"""Host keys as the wire carries them, their signatures over the exchange hash, and the server's key pair.

Theory of operation
-------------------
The server proves its identity in the key exchange reply: it sends its public host key (``K_S``) and
a signature over the exchange hash H made with the matching private key (RFC 4253 sections 6.6 and
8).  Both are SSH ``string``\\ s holding a little structure of their own:

* the public key *blob* starts with the key type name, then the key itself: ``ssh-ed25519`` and 32
  bytes (RFC 8709); ``ecdsa-sha2-nistp256``, the curve name ``nistp256`` again and the uncompressed
  point ``04 || x || y`` (RFC 5656 section 3.1); ``ssh-rsa``, then ``e`` and ``n`` as mpints (RFC 4253
  section 6.6).  The same blob, base64'd, is the middle of an OpenSSH ``.pub`` line and of a
  known_hosts line, and its hash is the fingerprint (:mod:`~handshake_lib.ssh.fingerprints`).
* the signature blob is the *signature algorithm* name and the signature: Ed25519's 64 bytes;
  ECDSA's ``r`` and ``s`` as two mpints inside one more string (RFC 5656 section 3.1.2); RSA's
  PKCS#1 v1.5 signature, as long as the modulus.

For RSA the key type and the signature algorithm differ: the key stays ``ssh-rsa`` while the
signature is ``rsa-sha2-256`` or ``rsa-sha2-512`` (RFC 8332), and the host key algorithm the two
KEXINITs negotiated names the signature, not the key.  The original ``ssh-rsa`` signature hashes
with SHA-1; OpenSSH 8.8 turned it off by default, and we refuse it by policy, whichever side asks.

:meth:`HostKey.verify` is the client's check; anything wrong (a malformed blob, an algorithm that was
not negotiated or does not fit the key, a signature that does not verify) is
:class:`~handshake_lib.errors.BadHostKeySignature`, which ends the connection with
KEY_EXCHANGE_FAILED.  :class:`HostKeyPair` is the server's side: a private key that signs, made fresh
or loaded from an OpenSSH private key file (``ssh-keygen``'s format, or PEM).  Ed25519 and RSA
PKCS#1 v1.5 signatures are deterministic, and we sign ECDSA deterministically too (RFC 6979), so a
replayed handshake reproduces its signature byte for byte.

Limits: RSA moduli from 1024 (OpenSSH's minimum) to 16384 bits; blobs and signatures decoded from at
most 16 KiB; no DSA and no certificates (``*-cert-v01@openssh.com``) yet.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..errors import (
    BadHostKeySignature,
    DecodeError,
    EncodeError,
    PassphraseRequired,
    PrivateKeyError,
    UnsupportedPrivateKey,
    WrongPassphrase,
)
from ..wire import Reader, Span, Writer
from .fingerprints import fingerprint_md5, fingerprint_sha256, key_type_label, randomart

__all__ = [
    "KEY_TYPES",
    "SIGNATURE_ALGORITHMS",
    "REFUSED_SIGNATURE_ALGORITHMS",
    "HostKey",
    "HostKeySignature",
    "HostKeyPair",
    "UserKey",
    "MAX_PRIVATE_KEY_FILE",
    "load_private_key",
    "PublicKey",
    "PrivateKey",
    "decode_host_key",
    "decode_signature",
    "parse_public_key_line",
]

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

MAX_BLOB = 16 * 1024  # a 16384-bit RSA key is about 2 KiB; anything much longer is not a host key
RSA_MIN_BITS = 1024  # SSH_RSA_MINIMUM_MODULUS_SIZE in OpenSSH
RSA_MAX_BITS = 16384  # OPENSSL_RSA_MAX_MODULUS_BITS / SSHBUF_MAX_BIGNUM

# ECDSA key types: curve identifier inside the blob, the curve, and the hash its signatures use (RFC 5656 6.2.1).
_ECDSA = {
    "ecdsa-sha2-nistp256": ("nistp256", ec.SECP256R1, hashes.SHA256),
    "ecdsa-sha2-nistp384": ("nistp384", ec.SECP384R1, hashes.SHA384),
    "ecdsa-sha2-nistp521": ("nistp521", ec.SECP521R1, hashes.SHA512),
}
_RSA_HASHES = {"rsa-sha2-256": hashes.SHA256, "rsa-sha2-512": hashes.SHA512}

KEY_TYPES: tuple[str, ...] = ("ssh-ed25519", *_ECDSA, "ssh-rsa")
# The signature algorithms each key type can make, our preference first.
SIGNATURE_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    **{name: (name,) for name in _ECDSA},
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}
# Known, decodable, and refused: why, in the words of the error.
REFUSED_SIGNATURE_ALGORITHMS: dict[str, str] = {
    "ssh-rsa": "ssh-rsa signatures hash with SHA-1, which is refused by policy (as OpenSSH 8.8+ does); "
    "use rsa-sha2-256 or rsa-sha2-512 (RFC 8332)",
}


def _key_type_meaning(name: str | bytes) -> str:
    # Reader.ssh_text hands a meaning function the raw bytes of the string.
    name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
    meanings = {
        "ssh-ed25519": "Ed25519 public key (RFC 8709)",
        "ssh-rsa": "RSA public key (RFC 4253 6.6); signs as rsa-sha2-256/512 (RFC 8332)",
    }
    if name in _ECDSA:
        return f"ECDSA public key on {_ECDSA[name][0]} (RFC 5656)"
    return meanings.get(name, "unknown key type")


@dataclass(frozen=True)
class HostKey:
    """A public host key: its type name, the ``cryptography`` key, and the blob it came from (or encodes to).

    Two HostKeys are equal when their blobs are equal (what OpenSSH's ``sshkey_equal`` compares).
    """

    key_type: str
    public_key: PublicKey = field(compare=False, repr=False)
    blob: bytes = field(repr=False)
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_public_key(cls, public_key: PublicKey) -> HostKey:
        """The host key of a ``cryptography`` public key (its blob built by :meth:`encode_blob`)."""
        return decode_host_key(_encode_public(public_key))

    @classmethod
    def decode(cls, blob: bytes, *, base_offset: int = 0) -> HostKey:
        return decode_host_key(blob, base_offset=base_offset)

    def encode(self) -> bytes:
        return self.blob

    @classmethod
    def from_openssh(cls, line: str) -> HostKey:
        """The key of a ``.pub`` line (``ssh-ed25519 AAAA... comment``); see :func:`parse_public_key_line`."""
        return parse_public_key_line(line)[0]

    def openssh(self, comment: str = "") -> str:
        """The one-line OpenSSH public key format: type, base64 blob, and the comment if any."""
        line = f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"
        return f"{line} {comment}" if comment else line

    # -- what it is ------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """OpenSSH's short name (``ED25519``, ``ECDSA``, ``RSA``), as in ``ssh-keygen -l`` and its warnings."""
        return key_type_label(self.key_type)

    @property
    def bits(self) -> int:
        """The size ``ssh-keygen -l`` prints: 256 for Ed25519, the curve size for ECDSA, the modulus for RSA."""
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            return 256
        return self.public_key.key_size

    @property
    def signature_algorithms(self) -> tuple[str, ...]:
        """The signature algorithms this key can verify, our preference first (for the KEXINIT's host key list)."""
        return SIGNATURE_ALGORITHMS[self.key_type]

    def fingerprint(self, hash_name: str = "SHA256") -> str:
        """``SHA256:...`` (or ``MD5:aa:bb:...``), as ``ssh-keygen -lf`` prints it."""
        return fingerprint_md5(self.blob) if hash_name.upper() == "MD5" else fingerprint_sha256(self.blob)

    def randomart(self, hash_name: str = "SHA256") -> str:
        """The picture ``ssh-keygen -lv`` draws for this key."""
        return randomart(self.blob, self.key_type, self.bits, hash_name)

    def fingerprint_line(self, comment: str = "", hash_name: str = "SHA256") -> str:
        """The line ``ssh-keygen -lf`` prints: ``256 SHA256:... comment (ED25519)``."""
        return f"{self.bits} {self.fingerprint(hash_name)} {comment or 'no comment'} ({self.label})"

    # -- the client's check ----------------------------------------------------------------------
    def verify(
        self, signature_blob: bytes, data: bytes, allowed_algorithms: Iterable[str] | None = None
    ) -> HostKeySignature:
        """Check ``signature_blob`` (the server's signature over ``data``, normally H) with this key.

        ``allowed_algorithms``: the signature algorithms acceptable here, normally the one host key
        algorithm the KEXINITs negotiated (None: any this key can verify).  Returns the decoded
        signature; raises :class:`~handshake_lib.errors.BadHostKeySignature` for any failure.
        """
        try:
            signature = decode_signature(signature_blob)
        except DecodeError as error:
            raise BadHostKeySignature(f"malformed host key signature: {error}") from error
        algorithm = signature.algorithm
        if algorithm in REFUSED_SIGNATURE_ALGORITHMS:
            raise BadHostKeySignature(REFUSED_SIGNATURE_ALGORITHMS[algorithm])
        if algorithm not in self.signature_algorithms:
            raise BadHostKeySignature(
                f"a {algorithm} signature cannot come from a {self.key_type} key "
                f"(it signs {', '.join(self.signature_algorithms)})"
            )
        if allowed_algorithms is not None:
            allowed = list(allowed_algorithms)
            if algorithm not in allowed:
                raise BadHostKeySignature(
                    f"signature algorithm {algorithm} was not negotiated (expected {', '.join(allowed) or 'none'})"
                )
        try:
            _verify(self.public_key, signature, data)
        except InvalidSignature:
            raise BadHostKeySignature(
                f"the {algorithm} signature does not verify with host key {self.fingerprint()}"
            ) from None
        return signature


@dataclass(frozen=True)
class HostKeySignature:
    """A signature blob: the algorithm name and the raw signature (for ECDSA, ``r`` and ``s`` too)."""

    algorithm: str
    signature: bytes = field(repr=False)
    r: int | None = None
    s: int | None = None
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def encode(self) -> bytes:
        return Writer().ssh_string(self.algorithm).ssh_string(self.signature).getvalue()

    @classmethod
    def decode(cls, blob: bytes, *, base_offset: int = 0) -> HostKeySignature:
        return decode_signature(blob, base_offset=base_offset)


# -- decoding ---------------------------------------------------------------------------------------
def _bounded_reader(blob: bytes, what: str, base_offset: int) -> Reader:
    if len(blob) > MAX_BLOB:
        raise DecodeError(f"{what} of {len(blob)} bytes is longer than {MAX_BLOB}", field=what, offset=base_offset)
    return Reader(blob, base_offset=base_offset)


def decode_host_key(blob: bytes, *, base_offset: int = 0) -> HostKey:
    """Decode a public key blob (K_S) with spans; DecodeError for anything malformed or unsupported."""
    reader = _bounded_reader(bytes(blob), "host_key", base_offset)
    with reader.group("host_key", "the server's public host key (K_S)"):
        key_type = reader.ssh_text("key_type", _key_type_meaning)
        public_key: PublicKey
        if key_type == "ssh-ed25519":
            start = reader.offset
            raw = reader.ssh_string("public_key", "the 32-byte Ed25519 public key A (RFC 8032)")
            if len(raw) != 32:
                raise DecodeError(
                    f"Ed25519 public key of {len(raw)} bytes, not 32", field="host_key.public_key", offset=start
                )
            try:
                public_key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                raise DecodeError("not an Ed25519 public key", field="host_key.public_key", offset=start) from None
        elif key_type in _ECDSA:
            curve_name, curve, _ = _ECDSA[key_type]
            start = reader.offset
            identifier = reader.ssh_text("curve", f"curve identifier, must be {curve_name}")
            if identifier != curve_name:
                raise DecodeError(f"curve {identifier!r} inside a {key_type} key", field="host_key.curve", offset=start)
            start = reader.offset
            point = reader.ssh_string("Q", "the public point, uncompressed: 04 || x || y (SEC 1 2.3.3)")
            try:
                public_key = ec.EllipticCurvePublicKey.from_encoded_point(curve(), point)
            except ValueError:
                raise DecodeError(f"not a point on {curve_name}", field="host_key.Q", offset=start) from None
            if point[:1] != b"\x04":  # OpenSSH accepts only uncompressed points
                raise DecodeError("ECDSA point is not uncompressed", field="host_key.Q", offset=start)
        elif key_type == "ssh-rsa":
            start = reader.offset
            exponent = reader.ssh_mpint("e", "RSA public exponent")
            modulus = reader.ssh_mpint("n", lambda raw: f"RSA modulus, {int.from_bytes(raw, 'big').bit_length()} bits")
            bits = modulus.bit_length()
            if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
                raise DecodeError(
                    f"RSA modulus of {bits} bits is outside {RSA_MIN_BITS}..{RSA_MAX_BITS}",
                    field="host_key.n",
                    offset=start,
                )
            if exponent < 3 or exponent % 2 == 0 or exponent >= modulus:
                raise DecodeError(f"RSA exponent {exponent} is not usable", field="host_key.e", offset=start)
            try:
                public_key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
            except (ValueError, UnsupportedAlgorithm):
                raise DecodeError("not a usable RSA public key", field="host_key.n", offset=start) from None
        else:
            raise DecodeError(f"unsupported host key type {key_type!r}", field="host_key.key_type", offset=base_offset)
    reader.expect_end("the host key blob")
    return HostKey(key_type, public_key, bytes(blob), tuple(reader.spans))


def decode_signature(blob: bytes, *, base_offset: int = 0) -> HostKeySignature:
    """Decode a signature blob with spans; shapes are checked here, the signature by :meth:`HostKey.verify`."""
    reader = _bounded_reader(bytes(blob), "signature", base_offset)
    r = s = None
    with reader.group("signature", "the server's signature over the exchange hash H"):
        algorithm = reader.ssh_text("algorithm", _signature_meaning)
        start = reader.offset
        if algorithm in _ECDSA:
            with reader.vector_reader(4, "signature_blob", "r and s, each an mpint (RFC 5656 3.1.2)") as inner:
                r = inner.ssh_mpint("r", "ECDSA r")
                s = inner.ssh_mpint("s", "ECDSA s")
            signature = Writer().ssh_mpint(r).ssh_mpint(s).getvalue()
            if r <= 0 or s <= 0:
                raise DecodeError("ECDSA r and s must be positive", field="signature.signature_blob", offset=start)
        else:
            signature = reader.ssh_string("signature_blob", _signature_blob_meaning(algorithm))
            if algorithm == "ssh-ed25519" and len(signature) != 64:
                raise DecodeError(
                    f"Ed25519 signature of {len(signature)} bytes, not 64",
                    field="signature.signature_blob",
                    offset=start,
                )
    reader.expect_end("the signature blob")
    return HostKeySignature(algorithm, signature, r, s, tuple(reader.spans))


def _signature_meaning(name: str | bytes) -> str:
    name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
    if name in REFUSED_SIGNATURE_ALGORITHMS:
        return "RSA with SHA-1 (refused by policy)"
    if name in _RSA_HASHES:
        return f"RSA PKCS#1 v1.5 with SHA-{name[-3:]} (RFC 8332)"
    if name in _ECDSA:
        return f"ECDSA on {_ECDSA[name][0]} (RFC 5656)"
    return {"ssh-ed25519": "Ed25519 (RFC 8709)"}.get(name, "unknown signature algorithm")


def _signature_blob_meaning(algorithm: str) -> str:
    if algorithm == "ssh-ed25519":
        return "64 bytes: R || S (RFC 8032)"
    return "the signature"


def parse_public_key_line(line: str) -> tuple[HostKey, str]:
    """Parse ``type base64 [comment]`` (an OpenSSH ``.pub`` line) into the key and its comment.

    The type in front must be the type inside the blob, as OpenSSH's ``sshkey_read`` requires.
    """
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise DecodeError("an OpenSSH public key line is 'type base64 [comment]'", field="public_key_line")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    if len(encoded) > MAX_BLOB * 4 // 3 + 4:
        raise DecodeError("public key line too long", field="public_key_line.key")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("the key is not valid base64", field="public_key_line.key") from None
    key = decode_host_key(blob)
    if key.key_type != key_type:
        raise DecodeError(
            f"line says {key_type!r} but the key inside is {key.key_type!r}", field="public_key_line.type"
        )
    return key, comment


# -- the server's side ------------------------------------------------------------------------------
def _encode_public(public_key: PublicKey) -> bytes:
    writer = Writer()
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        writer.ssh_string("ssh-ed25519").ssh_string(raw)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        for key_type, (curve_name, curve, _) in _ECDSA.items():
            if isinstance(public_key.curve, curve):
                point = public_key.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
                writer.ssh_string(key_type).ssh_string(curve_name).ssh_string(point)
                break
        else:
            raise EncodeError(f"no SSH key type for curve {public_key.curve.name}")
    elif isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        writer.ssh_string("ssh-rsa").ssh_mpint(numbers.e).ssh_mpint(numbers.n)
    else:
        raise EncodeError(f"{type(public_key).__name__} is not a host key type we support")
    return writer.getvalue()


def _verify(public_key: PublicKey, signature: HostKeySignature, data: bytes) -> None:
    """Raise InvalidSignature unless ``signature`` is ``data`` signed by ``public_key``."""
    algorithm = signature.algorithm
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature.signature, data)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        assert signature.r is not None and signature.s is not None
        der = encode_dss_signature(signature.r, signature.s)
        public_key.verify(der, data, ec.ECDSA(_ECDSA[algorithm][2]()))
    else:
        size = (public_key.key_size + 7) // 8
        raw = signature.signature
        if len(raw) > size:
            raise InvalidSignature
        # OpenSSH (ssh_rsa_verify) accepts a signature shorter than the modulus and pads it with zeros.
        public_key.verify(raw.rjust(size, b"\x00"), data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())


@dataclass(frozen=True)
class HostKeyPair:
    """A server's host key: the private key that signs, its public :class:`HostKey`, and a comment."""

    private_key: PrivateKey = field(repr=False)
    host_key: HostKey
    comment: str = ""

    @classmethod
    def from_private_key(cls, private_key: PrivateKey, comment: str = "") -> HostKeyPair:
        """Wrap a ``cryptography`` private key (an injected, fixed key for replays)."""
        if not isinstance(private_key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise EncodeError(f"{type(private_key).__name__} cannot be an SSH host key")
        return cls(private_key, HostKey.from_public_key(private_key.public_key()), comment)

    @classmethod
    def generate(cls, key_type: str = "ssh-ed25519", *, rsa_bits: int = 3072, comment: str = "") -> HostKeyPair:
        """A fresh key pair of ``key_type`` (``ssh-ed25519``, ``ecdsa-sha2-nistp256/384/521``, ``ssh-rsa``)."""
        private_key: PrivateKey
        if key_type == "ssh-ed25519":
            private_key = ed25519.Ed25519PrivateKey.generate()
        elif key_type in _ECDSA:
            private_key = ec.generate_private_key(_ECDSA[key_type][1]())
        elif key_type == "ssh-rsa":
            if not RSA_MIN_BITS <= rsa_bits <= RSA_MAX_BITS:
                raise EncodeError(f"RSA host keys are {RSA_MIN_BITS}..{RSA_MAX_BITS} bits, not {rsa_bits}")
            private_key = rsa.generate_private_key(65537, rsa_bits)
        else:
            raise EncodeError(f"cannot generate a {key_type!r} host key (we make {', '.join(KEY_TYPES)})")
        return cls.from_private_key(private_key, comment)

    @classmethod
    def load(cls, data: bytes, password: bytes | None = None) -> HostKeyPair:
        """Load a private key file's bytes: OpenSSH's format (``ssh-keygen``'s default) or PEM (``-m PEM``).

        The OpenSSH format carries the comment, which we keep.  Errors are :func:`load_private_key`'s
        (each a DecodeError).  A user's key pair (``ssh -i``) is the same thing: :data:`UserKey`.
        """
        data = bytes(data)
        private_key = load_private_key(data, password)
        # The comment is readable only when the file is not encrypted (_openssh_comment checks the cipher).
        return cls.from_private_key(private_key, _openssh_comment(data))

    def private_bytes(self) -> bytes:
        """The private key in OpenSSH's format, unencrypted (what ``sshd``'s ``HostKey`` file holds)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )

    def public_line(self) -> str:
        """The ``.pub`` line: ``ssh-ed25519 AAAA... comment``."""
        return self.host_key.openssh(self.comment)

    @property
    def signature_algorithms(self) -> tuple[str, ...]:
        return self.host_key.signature_algorithms

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        """Sign ``data`` (normally H) and return the signature blob; ``algorithm`` defaults to our first choice."""
        algorithm = algorithm or self.signature_algorithms[0]
        if algorithm in REFUSED_SIGNATURE_ALGORITHMS:
            raise EncodeError(REFUSED_SIGNATURE_ALGORITHMS[algorithm])
        if algorithm not in self.signature_algorithms:
            raise EncodeError(f"a {self.host_key.key_type} key cannot sign {algorithm}")
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.sign(data)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            # Deterministic ECDSA (RFC 6979): same key and data, same signature, so replays are exact.
            der = key.sign(data, ec.ECDSA(_ECDSA[algorithm][2](), deterministic_signing=True))
            r, s = decode_dss_signature(der)
            raw = Writer().ssh_mpint(r).ssh_mpint(s).getvalue()
        else:
            raw = key.sign(data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
        return Writer().ssh_string(algorithm).ssh_string(raw).getvalue()


UserKey = HostKeyPair
"""A user's key pair (``ssh -i KEY``): the same private key, public blob and comment as a host key's."""

MAX_PRIVATE_KEY_FILE = 64 * 1024  # a 16384-bit RSA key in OpenSSH's format is about 12 KiB


def load_private_key(data: bytes, password: bytes | str | None = None) -> PrivateKey:
    """Load a private key file's bytes (OpenSSH's format, or PEM), decrypting it with ``password``.

    Each failure has its own type (all :class:`~handshake_lib.errors.PrivateKeyError`, a DecodeError):
    :class:`PassphraseRequired` for an encrypted file and no passphrase, :class:`WrongPassphrase` when
    the passphrase does not decrypt it (OpenSSH's "incorrect passphrase supplied to decrypt private
    key"), :class:`UnsupportedPrivateKey` for a key type we do not use (DSA, ``sk-*`` security keys);
    anything else that does not parse is a plain PrivateKeyError.  A passphrase given for a file that
    is not encrypted is ignored, as ``ssh-keygen -y -P x`` ignores it.
    """
    data = bytes(data)
    if len(data) > MAX_PRIVATE_KEY_FILE:
        raise PrivateKeyError("private key file larger than 64 KiB", field="private_key")
    secret = password.encode() if isinstance(password, str) else password
    openssh = b"BEGIN OPENSSH PRIVATE KEY" in data
    loader = serialization.load_ssh_private_key if openssh else serialization.load_pem_private_key
    try:
        try:
            with warnings.catch_warnings():  # cryptography warns on DSA before we refuse it below
                warnings.simplefilter("ignore")
                private_key = loader(data, secret or None)
        except TypeError as error:
            if "not encrypted" in str(error):  # a passphrase for a plain key: ignored, as OpenSSH does
                private_key = loader(data, None)
            elif secret:
                raise
            else:
                raise PassphraseRequired(
                    "the private key is encrypted: a passphrase is needed", field="private_key"
                ) from None
    except PrivateKeyError:
        raise
    except UnsupportedAlgorithm as error:
        raise UnsupportedPrivateKey(f"a key type we do not support: {error}", field="private_key") from None
    except (ValueError, TypeError) as error:
        text = str(error)
        # cryptography says "Corrupt data: broken checksum" when the decrypted check integers differ
        # (OpenSSH format) and "Bad decrypt" / "Could not deserialize" for PEM with a wrong passphrase.
        if secret and ("checksum" in text or "decrypt" in text.lower() or (not openssh and "deserialize" in text)):
            raise WrongPassphrase("incorrect passphrase supplied to decrypt private key", field="private_key") from None
        if "Unsupported key type" in text or "unsupported" in text.lower():
            raise UnsupportedPrivateKey(f"a key type we do not support: {text}", field="private_key") from None
        raise PrivateKeyError(f"not a private key we can load: {text}", field="private_key") from None
    if not isinstance(private_key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnsupportedPrivateKey(
            f"{type(private_key).__name__} is not a key type we support (Ed25519, ECDSA, RSA)", field="private_key"
        )
    return private_key


def _openssh_comment(data: bytes) -> str:
    """The comment stored inside an unencrypted OpenSSH private key (PROTOCOL.key); "" when there is none.

    ``cryptography`` does not return it.  The format: "openssh-key-v1\\0", cipher, kdf, kdf options,
    number of keys, public keys, then a string with two check ints, each key's type, fields and comment.
    """
    try:
        lines = [line for line in data.decode("ascii").splitlines() if line and not line.startswith("-----")]
        body = base64.b64decode("".join(lines))
        magic = b"openssh-key-v1\x00"
        reader = Reader(body[len(magic) :], annotate=False)
        if not body.startswith(magic) or reader.ssh_string("cipher") != b"none":
            return ""
        reader.ssh_string("kdf")
        reader.ssh_string("kdf_options")
        if reader.u32("keys") != 1:
            return ""
        reader.ssh_string("public_key")
        private = Reader(reader.ssh_string("private"), annotate=False)
        private.u32("check1")
        private.u32("check2")
        key_type = private.ssh_text("key_type")
        # The private fields of each key type, as PROTOCOL.key lists them, before the comment.
        fields = {"ssh-ed25519": 2, "ssh-rsa": 6, **{name: 3 for name in _ECDSA}}.get(key_type)
        if fields is None:
            return ""
        for index in range(fields):
            private.ssh_string(f"field{index}")
        return private.ssh_text("comment")
    except (DecodeError, ValueError, binascii.Error):
        return ""
