"""SSH packet protection: the ciphers and MACs of one direction (RFC 4253 section 6.3-6.4, and OpenSSH's).

Theory of operation
-------------------
Before the first SSH_MSG_NEWKEYS a direction is in the clear (:class:`NoProtection`).  After it, the
key exchange gives each direction an IV, an encryption key and a MAC key (keys A..F of RFC 4253
section 7.2, in a :class:`DirectionKeys`), and :func:`protection_for` builds the protection that the
negotiated cipher and MAC name.  Every protection takes the *clear packet*
(``packet_length || padding_length || payload || padding``) and the direction's sequence number, and
gives the bytes on the wire; the wire packet is always the clear packet's length plus a MAC or tag,
so a span over the clear packet marks the same bytes of the wire packet.  Four constructions:

* **AES-CTR with HMAC, encrypt-and-MAC** (RFC 4344, RFC 6668)::

      wire = AES-CTR(packet) || HMAC(mac_key, uint32(seq) || packet)

  The length is encrypted, so the receiver decrypts the first block to learn how much to wait for,
  before it can check anything.  The counter runs on across packets: it starts at the IV and every
  packet is a whole number of 16-byte blocks, so we keep the counter as a number and start a fresh
  AES-CTR at it for each packet (then :meth:`PacketProtection.open` can look at a packet without
  moving the stream, which is what ``explain`` needs).

* **AES-CTR with HMAC, encrypt-then-MAC** (``hmac-sha2-*-etm@openssh.com``, OpenSSH's PROTOCOL 1.7)::

      wire = packet_length || AES-CTR(rest of packet) || HMAC(mac_key, uint32(seq) || packet_length || ciphertext)

  The length travels in clear and the MAC is checked before anything is decrypted.

* **AES-GCM** (``aes*-gcm@openssh.com``, RFC 5647 as OpenSSH does it: PROTOCOL 1.6)::

      nonce = fixed (4 bytes of the IV) || invocation_counter (8 bytes, starts at the IV's last 8, +1 per packet)
      wire  = packet_length || AES-GCM(key, nonce, rest of packet, aad=packet_length) (16-byte tag)

  The MAC algorithm negotiated beside it is ignored (OpenSSH; RFC 5647 would make it AEAD_AES_*_GCM).

* **chacha20-poly1305@openssh.com** (OpenSSH's PROTOCOL.chacha20poly1305), from ``cryptography``'s
  ChaCha20 (the original 64-bit-nonce variant) and Poly1305::

      K_2 = key[0:32] (main), K_1 = key[32:64] (header); nonce = uint64(seq)
      poly_key = ChaCha20(K_2, nonce, block counter 0)[0:32]
      wire     = ChaCha20(K_1, nonce, counter 0)(packet_length) || ChaCha20(K_2, nonce, counter 1)(rest)
                 || Poly1305(poly_key, the encrypted length || the encrypted rest)

  The length is encrypted, with its own key, so it can be decrypted alone before the tag arrives.

Tampering anywhere (the length, the ciphertext, the MAC or tag) is :class:`~handshake_lib.errors.BadPacketMac`
(disconnect MAC_ERROR).  A length that decrypts to an impossible value is also BadPacketMac (see
:mod:`.packet`): with the wrong keys or a flipped bit the "length" is noise, and waiting for up to 4 GiB
of noise would be the hang that attack wants.

:func:`cipher_spec` and :func:`mac_spec` say how many key bytes each name needs, so the key derivation
asks for exactly that many.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

from ..errors import BadPacketMac

if TYPE_CHECKING:
    from .kdf import DerivedKeys
    from .negotiation import NegotiatedAlgorithms

__all__ = [
    "packet_mac",
    "MacFunction",
    "CipherSpec",
    "MacSpec",
    "CIPHERS",
    "MACS",
    "SUPPORTED_CIPHERS",
    "SUPPORTED_MACS",
    "cipher_spec",
    "mac_spec",
    "DirectionKeys",
    "PacketProtection",
    "NoProtection",
    "CtrHmacProtection",
    "GcmProtection",
    "ChaChaPolyProtection",
    "protection_for",
    "key_lengths",
    "protections_for",
]

LENGTH_FIELD = 4  # packet_length, uint32


@dataclass(frozen=True)
class CipherSpec:
    """What a cipher name needs: key and IV bytes (keys C/D and A/B), its block size, and its tag if AEAD."""

    name: str
    key_length: int
    iv_length: int
    block_size: int
    is_aead: bool = False
    tag_length: int = 0  # AEAD only: the bytes after the packet


@dataclass(frozen=True)
class MacSpec:
    """What a MAC name needs: key bytes (keys E/F), tag bytes, and whether it is encrypt-then-MAC."""

    name: str
    key_length: int
    tag_length: int
    encrypt_then_mac: bool = False
    hash_name: str = ""


CIPHERS: dict[str, CipherSpec] = {
    spec.name: spec
    for spec in (
        CipherSpec("chacha20-poly1305@openssh.com", 64, 0, 8, True, 16),
        CipherSpec("aes128-ctr", 16, 16, 16),
        CipherSpec("aes256-ctr", 32, 16, 16),
        CipherSpec("aes128-gcm@openssh.com", 16, 12, 16, True, 16),
        CipherSpec("aes256-gcm@openssh.com", 32, 12, 16, True, 16),
        CipherSpec("none", 0, 0, 8),
    )
}

MACS: dict[str, MacSpec] = {
    spec.name: spec
    for spec in (
        MacSpec("hmac-sha2-256-etm@openssh.com", 32, 32, True, "sha256"),
        MacSpec("hmac-sha2-512-etm@openssh.com", 64, 64, True, "sha512"),
        MacSpec("hmac-sha2-256", 32, 32, False, "sha256"),
        MacSpec("hmac-sha2-512", 64, 64, False, "sha512"),
        MacSpec("none", 0, 0),
    )
}

# What we offer, in OpenSSH 9's order of preference; "none" is never offered.
SUPPORTED_CIPHERS: tuple[str, ...] = (
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
)
SUPPORTED_MACS: tuple[str, ...] = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
)


def cipher_spec(name: str) -> CipherSpec:
    """The :class:`CipherSpec` of ``name``; ValueError for a cipher we do not implement."""
    try:
        return CIPHERS[name]
    except KeyError:
        raise ValueError(f"unsupported SSH cipher {name!r}") from None


def mac_spec(name: str) -> MacSpec:
    """The :class:`MacSpec` of ``name``; ValueError for a MAC we do not implement."""
    try:
        return MACS[name]
    except KeyError:
        raise ValueError(f"unsupported SSH MAC {name!r}") from None


@dataclass(frozen=True)
class DirectionKeys:
    """One direction's keys from the key exchange: IV (A or B), encryption key (C or D), MAC key (E or F)."""

    iv: bytes
    key: bytes
    mac_key: bytes = b""


class PacketProtection(ABC):
    """One direction's cipher and MAC.  ``seal`` and ``open`` are the only ways bytes get in or out.

    ``block_size``: the cipher's block (padding aligns to ``max(8, block_size)``); ``tag_length``: the MAC
    or AEAD tag after each packet; ``length_in_clear_block``: whether the 4-byte length is left out of
    the block alignment and of the encryption proper (EtM, GCM and chacha20-poly1305: OpenSSH's
    ``aadlen``); ``header_length``: how many wire bytes :meth:`packet_length` needs.
    """

    name: str = "none"
    block_size: int = 8
    tag_length: int = 0
    length_in_clear_block: bool = False
    encrypted: bool = True

    @property
    def header_length(self) -> int:
        return LENGTH_FIELD if self.length_in_clear_block else max(8, self.block_size)

    @abstractmethod
    def packet_length(self, sequence_number: int, header: bytes) -> int:
        """The packet_length from the first :attr:`header_length` wire bytes (no state changes)."""

    @abstractmethod
    def seal(self, sequence_number: int, packet: bytes) -> bytes:
        """The clear packet (length included) as it goes on the wire; advances the cipher's position."""

    @abstractmethod
    def open(self, sequence_number: int, wire: bytes, *, advance: bool = True) -> tuple[bytes, bytes, bytes]:
        """One whole wire packet (tag included) -> (clear packet, tag received, tag expected).

        Raises BadPacketMac when the tag does not match.  ``advance=False`` leaves the cipher's position
        where it was (for ``explain``).
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class NoProtection(PacketProtection):
    """``none``: the clear packet is the wire packet (before the first NEWKEYS)."""

    name = "none"
    encrypted = False

    @property
    def header_length(self) -> int:
        return LENGTH_FIELD  # in the clear: the length is known from its own 4 bytes

    def packet_length(self, sequence_number: int, header: bytes) -> int:
        return int.from_bytes(header[:LENGTH_FIELD], "big")

    def seal(self, sequence_number: int, packet: bytes) -> bytes:
        return bytes(packet)

    def open(self, sequence_number: int, wire: bytes, *, advance: bool = True) -> tuple[bytes, bytes, bytes]:
        return bytes(wire), b"", b""


def packet_mac(hash_name: str, mac_key: bytes, sequence_number: int, data: bytes) -> bytes:
    """RFC 4253 section 6.4: HMAC(mac_key, uint32(sequence_number) || data); ``data`` is the clear packet
    (encrypt-and-MAC) or the length and ciphertext (encrypt-then-MAC).  What a learner's MAC replaces."""
    return hmac.new(mac_key, _seq(sequence_number) + data, getattr(hashlib, hash_name)).digest()


MacFunction = Callable[[str, bytes, int, bytes], bytes]


def _seq(sequence_number: int) -> bytes:
    return (sequence_number & 0xFFFFFFFF).to_bytes(4, "big")


class CtrHmacProtection(PacketProtection):
    """AES-CTR with an HMAC-SHA2, encrypt-and-MAC or encrypt-then-MAC (see the module docstring)."""

    def __init__(
        self, cipher: CipherSpec, mac: MacSpec, keys: DirectionKeys, mac_function: MacFunction | None = None
    ) -> None:
        self.cipher, self.mac = cipher, mac
        self._mac_function = mac_function  # a learner's packet_mac; None: the library's, inlined below
        self.name = f"{cipher.name} + {mac.name}"
        self.block_size = cipher.block_size
        self.tag_length = mac.tag_length
        self.length_in_clear_block = mac.encrypt_then_mac
        self._aes = algorithms.AES(keys.key)
        self._mac_key = keys.mac_key
        self._digest = getattr(hashlib, mac.hash_name)
        # The counter block as a number; it advances by one per 16-byte block, across packets.
        self.counter = int.from_bytes(keys.iv, "big")

    def _ctr(self, data: bytes, counter: int) -> bytes:
        block = (counter % (1 << 128)).to_bytes(16, "big")
        worker = Cipher(self._aes, modes.CTR(block)).encryptor()
        return worker.update(data) + worker.finalize()

    def _tag(self, sequence_number: int, data: bytes) -> bytes:
        if self._mac_function is not None:
            return self._mac_function(self.mac.hash_name, self._mac_key, sequence_number, data)
        return hmac.new(self._mac_key, _seq(sequence_number) + data, self._digest).digest()

    def packet_length(self, sequence_number: int, header: bytes) -> int:
        if self.mac.encrypt_then_mac:
            return int.from_bytes(header[:LENGTH_FIELD], "big")
        return int.from_bytes(self._ctr(header[: self.block_size], self.counter)[:LENGTH_FIELD], "big")

    def seal(self, sequence_number: int, packet: bytes) -> bytes:
        if self.mac.encrypt_then_mac:
            wire = packet[:LENGTH_FIELD] + self._ctr(packet[LENGTH_FIELD:], self.counter)
            tag = self._tag(sequence_number, wire)
            self.counter += (len(packet) - LENGTH_FIELD) // 16
        else:
            tag = self._tag(sequence_number, packet)
            wire = self._ctr(packet, self.counter)
            self.counter += len(packet) // 16
        return wire + tag

    def open(self, sequence_number: int, wire: bytes, *, advance: bool = True) -> tuple[bytes, bytes, bytes]:
        body, received = wire[: -self.tag_length], wire[-self.tag_length :]
        if self.mac.encrypt_then_mac:
            # The MAC first, over what was sent: nothing forged is ever decrypted.
            expected = self._tag(sequence_number, body)
            if not hmac.compare_digest(received, expected):
                raise BadPacketMac(f"{self.mac.name} tag does not match (sequence number {sequence_number})")
            packet = body[:LENGTH_FIELD] + self._ctr(body[LENGTH_FIELD:], self.counter)
            blocks = (len(body) - LENGTH_FIELD) // 16
        else:
            packet = self._ctr(body, self.counter)
            expected = self._tag(sequence_number, packet)
            if not hmac.compare_digest(received, expected):
                raise BadPacketMac(f"{self.mac.name} tag does not match (sequence number {sequence_number})")
            blocks = len(body) // 16
        if advance:
            self.counter += blocks
        return packet, received, expected


class GcmProtection(PacketProtection):
    """AES-GCM as OpenSSH does it (RFC 5647 with the length as additional data)."""

    length_in_clear_block = True

    def __init__(self, cipher: CipherSpec, keys: DirectionKeys) -> None:
        self.cipher = cipher
        self.name = cipher.name
        self.block_size = cipher.block_size
        self.tag_length = cipher.tag_length
        self._aead = AESGCM(keys.key)
        self.fixed = keys.iv[:4]
        self.invocation_counter = int.from_bytes(keys.iv[4:12], "big")

    def nonce(self) -> bytes:
        """The 12-byte nonce of the next packet: fixed field and invocation counter (RFC 5647 section 7.1)."""
        return self.fixed + self.invocation_counter.to_bytes(8, "big")

    def _advance(self) -> None:
        self.invocation_counter = (self.invocation_counter + 1) % (1 << 64)

    def packet_length(self, sequence_number: int, header: bytes) -> int:
        return int.from_bytes(header[:LENGTH_FIELD], "big")

    def seal(self, sequence_number: int, packet: bytes) -> bytes:
        length = packet[:LENGTH_FIELD]
        wire = length + self._aead.encrypt(self.nonce(), packet[LENGTH_FIELD:], length)
        self._advance()
        return wire

    def open(self, sequence_number: int, wire: bytes, *, advance: bool = True) -> tuple[bytes, bytes, bytes]:
        length, sealed = wire[:LENGTH_FIELD], wire[LENGTH_FIELD:]
        try:
            rest = self._aead.decrypt(self.nonce(), sealed, length)
        except InvalidTag:
            raise BadPacketMac(f"{self.name} tag does not match (sequence number {sequence_number})") from None
        if advance:
            self._advance()
        tag = sealed[-self.tag_length :]
        return length + rest, tag, tag


class ChaChaPolyProtection(PacketProtection):
    """chacha20-poly1305@openssh.com (see the module docstring for the construction)."""

    length_in_clear_block = True  # aligned without the length, as OpenSSH (its aadlen is 4)

    def __init__(self, cipher: CipherSpec, keys: DirectionKeys) -> None:
        self.cipher = cipher
        self.name = cipher.name
        self.block_size = cipher.block_size
        self.tag_length = cipher.tag_length
        self.main_key = keys.key[:32]  # K_2: the payload and the Poly1305 key
        self.header_key = keys.key[32:64]  # K_1: the packet length only

    @staticmethod
    def _chacha(key: bytes, sequence_number: int, block_counter: int, data: bytes) -> bytes:
        # cryptography's 16-byte ChaCha20 nonce is the initial block counter (little-endian, 64 bits
        # in the original variant OpenSSH uses) then the 64-bit nonce: here the sequence number.
        nonce = block_counter.to_bytes(8, "little") + (sequence_number & 0xFFFFFFFF).to_bytes(8, "big")
        worker = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor()
        return worker.update(data) + worker.finalize()

    def poly_key(self, sequence_number: int) -> bytes:
        """The one-time Poly1305 key: the first 32 bytes of K_2's keystream at block counter 0."""
        return self._chacha(self.main_key, sequence_number, 0, bytes(32))

    def packet_length(self, sequence_number: int, header: bytes) -> int:
        return int.from_bytes(self._chacha(self.header_key, sequence_number, 0, header[:LENGTH_FIELD]), "big")

    def seal(self, sequence_number: int, packet: bytes) -> bytes:
        sealed = self._chacha(self.header_key, sequence_number, 0, packet[:LENGTH_FIELD]) + self._chacha(
            self.main_key, sequence_number, 1, packet[LENGTH_FIELD:]
        )
        return sealed + Poly1305.generate_tag(self.poly_key(sequence_number), sealed)

    def open(self, sequence_number: int, wire: bytes, *, advance: bool = True) -> tuple[bytes, bytes, bytes]:
        sealed, received = wire[: -self.tag_length], wire[-self.tag_length :]
        expected = Poly1305.generate_tag(self.poly_key(sequence_number), sealed)
        if not hmac.compare_digest(received, expected):
            raise BadPacketMac(f"{self.name} tag does not match (sequence number {sequence_number})")
        packet = self._chacha(self.header_key, sequence_number, 0, sealed[:LENGTH_FIELD]) + self._chacha(
            self.main_key, sequence_number, 1, sealed[LENGTH_FIELD:]
        )
        return packet, received, expected


def protection_for(
    cipher: str, mac: str | None, keys: DirectionKeys, *, mac_function: MacFunction | None = None
) -> PacketProtection:
    """The protection that ``cipher`` and ``mac`` name, keyed with ``keys``; ``mac_function`` replaces
    :func:`packet_mac` for an HMAC (a learner's, in a live connection).

    The MAC is ignored for an AEAD cipher (as OpenSSH does); ``none`` for both gives
    :class:`NoProtection`.  Keys of the wrong length are a caller's mistake: ValueError.
    """
    spec = cipher_spec(cipher)
    if len(keys.key) < spec.key_length or len(keys.iv) < spec.iv_length:
        raise ValueError(
            f"{cipher} needs a {spec.key_length}-byte key and a {spec.iv_length}-byte IV, "
            f"got {len(keys.key)} and {len(keys.iv)}"
        )
    keys = DirectionKeys(keys.iv[: spec.iv_length], keys.key[: spec.key_length], keys.mac_key)
    if spec.name == "chacha20-poly1305@openssh.com":
        return ChaChaPolyProtection(spec, keys)
    if spec.is_aead:
        return GcmProtection(spec, keys)
    if spec.name == "none":
        if mac not in (None, "none"):
            raise ValueError("a MAC without a cipher is not something we support")
        return NoProtection()
    mac_name = mac or "none"
    if mac_name == "none":
        raise ValueError(f"{cipher} needs a MAC")
    mspec = mac_spec(mac_name)
    if len(keys.mac_key) < mspec.key_length:
        raise ValueError(f"{mspec.name} needs a {mspec.key_length}-byte key, got {len(keys.mac_key)}")
    keys = DirectionKeys(keys.iv, keys.key, keys.mac_key[: mspec.key_length])
    return CtrHmacProtection(spec, mspec, keys, mac_function)


def key_lengths(negotiated: NegotiatedAlgorithms) -> dict[str, int]:
    """How many bytes each of keys A..F needs for ``negotiated`` (RFC 4253 section 7.2): A/B the ciphers' IVs,
    C/D their keys, E/F the MAC keys (0 where the cipher is an AEAD, whose tag needs no key of its own)."""
    c2s, s2c = cipher_spec(negotiated.cipher_client_to_server), cipher_spec(negotiated.cipher_server_to_client)
    mac_c2s, mac_s2c = negotiated.mac_client_to_server, negotiated.mac_server_to_client
    return {
        "A": c2s.iv_length, "B": s2c.iv_length, "C": c2s.key_length, "D": s2c.key_length,
        "E": mac_spec(mac_c2s).key_length if mac_c2s else 0, "F": mac_spec(mac_s2c).key_length if mac_s2c else 0,
    }  # fmt: skip


def protections_for(
    negotiated: NegotiatedAlgorithms, keys: DerivedKeys, *, mac_function: MacFunction | None = None
) -> tuple[PacketProtection, PacketProtection]:
    """(client to server, server to client): each direction's protection from keys A..F."""
    client_to_server = protection_for(
        negotiated.cipher_client_to_server,
        negotiated.mac_client_to_server,
        DirectionKeys(keys.iv_client_to_server, keys.key_client_to_server, keys.mac_client_to_server),
        mac_function=mac_function,
    )
    server_to_client = protection_for(
        negotiated.cipher_server_to_client,
        negotiated.mac_server_to_client,
        DirectionKeys(keys.iv_server_to_client, keys.key_server_to_client, keys.mac_server_to_client),
        mac_function=mac_function,
    )
    return client_to_server, server_to_client
