"""TLS 1.3 record protection (RFC 8446 section 5): TLSInnerPlaintext, the per-record nonce, AEAD (sans-I/O).

Theory of operation
-------------------
TLS 1.2 protected a record according to its suite: MAC-then-encrypt, encrypt-then-MAC, or an AEAD with
an explicit nonce.  TLS 1.3 keeps only AEADs and builds every protected record the same way::

    TLSInnerPlaintext = content || real content type (1 byte) || zeros (padding, any amount)
    nonce             = write_iv XOR (the 64-bit sequence number, left-padded with zeros to the IV's length)
    additional_data   = the record header: 23 (application_data) || 0x0303 || length of the encrypted record
    encrypted_record  = AEAD-Encrypt(write_key, nonce, additional_data, TLSInnerPlaintext)

So the header of every protected record says ``application_data`` and TLS 1.2: the real type travels
encrypted, and a receiver finds it by scanning back from the end over the zero padding to the first
non-zero byte (section 5.4).  A plaintext made only of zeros has no type at all: ``unexpected_message``,
as are a ChangeCipherSpec or unknown type inside, and an empty handshake fragment (section 5.1); an
empty application_data record is allowed (a sender may use one to hide traffic patterns).
Padding lets a sender hide how long its messages are; nothing else about it is checked.

Each direction and epoch (early data, handshake, application data _0, _1 after each KeyUpdate) has its
own key, IV (from :func:`~handshake_lib.tls.key_schedule13.traffic_keys`) and 64-bit sequence number that
starts at 0 and counts records; it is never sent, so a dropped, replayed or reordered record fails the
AEAD's tag (``bad_record_mac``).  :class:`RecordSealer13` and :class:`RecordOpener13` are one direction
each: the sealer's sequence number counts what it sent, the opener's what it accepted.

Limits (section 5.2): TLSInnerPlaintext is at most 2^14 + 1 bytes (the content at most 2^14) and the
encrypted record at most 2^14 + 256 bytes; more is ``record_overflow``.  A record whose header is not
``application_data``/0x0303 is not a protected record (``unexpected_message`` for the type, a decode
error for the version).  The suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
TLS_CHACHA20_POLY1305_SHA256 and TLS_AES_128_CCM_SHA256 (all with 16-byte tags and 12-byte IVs), their
AEADs from ``cryptography``.  Checked byte for byte against OpenSSL's records, sealed again from what
they hold, with keys from its key log (``tests/test_tls13_record.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from ..errors import BadRecordMac, DecodeError, EncodeError, RecordOverflow, UnexpectedMessage
from ..wire import Reader, Span, Writer
from .constants import ContentType
from .key_schedule13 import TrafficKeys, traffic_keys

__all__ = [
    "Suite13",
    "SUITES13",
    "suite13",
    "MAX_PLAINTEXT_LENGTH",
    "MAX_INNER_PLAINTEXT_LENGTH",
    "MAX_CIPHERTEXT_LENGTH",
    "MAX_SEQUENCE_NUMBER",
    "LEGACY_RECORD_VERSION",
    "InnerPlaintext",
    "encode_inner_plaintext",
    "decode_inner_plaintext",
    "record_nonce",
    "record_header",
    "OpenedRecord13",
    "RecordSealer13",
    "RecordOpener13",
]

MAX_PLAINTEXT_LENGTH = 1 << 14  # the content of one record (section 5.1)
MAX_INNER_PLAINTEXT_LENGTH = MAX_PLAINTEXT_LENGTH + 1  # content + type + padding (section 5.2)
MAX_CIPHERTEXT_LENGTH = (1 << 14) + 256  # TLSCiphertext.length (section 5.2)
MAX_SEQUENCE_NUMBER = (1 << 64) - 1  # a sequence number must not wrap: rekey (KeyUpdate) first (5.3)
LEGACY_RECORD_VERSION = 0x0303  # every protected record claims TLS 1.2 (section 5.2)
RECORD_HEADER_LENGTH = 5
TAG_LENGTH = 16
# What a TLSInnerPlaintext may carry (section 5): ChangeCipherSpec travels only in the clear.
PROTECTED_CONTENT_TYPES = frozenset({ContentType.alert, ContentType.handshake, ContentType.application_data})


@dataclass(frozen=True)
class Suite13:
    """A TLS 1.3 cipher suite: its AEAD, key and IV sizes and the hash of its key schedule (appendix B.4)."""

    code: int
    name: str
    hash_name: str
    key_length: int
    aead: Callable[[bytes], AESGCM | ChaCha20Poly1305 | AESCCM]
    iv_length: int = 12
    tag_length: int = TAG_LENGTH

    def keys(self, traffic_secret: bytes) -> TrafficKeys:
        """The write key and IV this suite takes from a traffic secret ("key", "iv": section 7.3)."""
        return traffic_keys(self.hash_name, traffic_secret, self.key_length, self.iv_length)


SUITES13: dict[int, Suite13] = {
    suite.code: suite
    for suite in (
        Suite13(0x1301, "TLS_AES_128_GCM_SHA256", "sha256", 16, AESGCM),
        Suite13(0x1302, "TLS_AES_256_GCM_SHA384", "sha384", 32, AESGCM),
        Suite13(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32, ChaCha20Poly1305),
        Suite13(0x1304, "TLS_AES_128_CCM_SHA256", "sha256", 16, lambda key: AESCCM(key, tag_length=TAG_LENGTH)),
    )
}


def suite13(code_or_name: int | str) -> Suite13:
    """A TLS 1.3 suite by its code (0x1301) or IANA name; ValueError for anything else."""
    for suite in SUITES13.values():
        if code_or_name in (suite.code, suite.name):
            return suite
    raise ValueError(f"not a TLS 1.3 cipher suite this library runs: {code_or_name!r}")


# -- TLSInnerPlaintext ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InnerPlaintext:
    """A decoded TLSInnerPlaintext: the content, its real type, and how many zero bytes of padding followed."""

    content: bytes
    content_type: int
    padding_length: int = 0


def encode_inner_plaintext(content: bytes, content_type: int, padding_length: int = 0) -> bytes:
    """content || type || padding zeros; EncodeError for an oversized content or a type of 0."""
    if content_type not in PROTECTED_CONTENT_TYPES:
        raise EncodeError(f"content type {content_type} does not travel in a protected TLS 1.3 record")
    if content_type == ContentType.handshake and not content:
        raise EncodeError("a handshake fragment must not be empty (section 5.1)")
    if len(content) > MAX_PLAINTEXT_LENGTH:
        raise EncodeError(f"{len(content)} bytes of content; one record holds at most {MAX_PLAINTEXT_LENGTH}")
    if padding_length < 0 or len(content) + 1 + padding_length > MAX_INNER_PLAINTEXT_LENGTH:
        raise EncodeError(f"{padding_length} bytes of padding take the record over {MAX_INNER_PLAINTEXT_LENGTH} bytes")
    return content + bytes([content_type]) + bytes(padding_length)


def decode_inner_plaintext(data: bytes) -> InnerPlaintext:
    """Find the real content type by scanning back over the zero padding (section 5.4).

    All zeros (or nothing): ``unexpected_message``.  More than 2^14 + 1 bytes: ``record_overflow``.
    """
    if len(data) > MAX_INNER_PLAINTEXT_LENGTH:
        raise RecordOverflow(f"TLSInnerPlaintext of {len(data)} bytes; the limit is {MAX_INNER_PLAINTEXT_LENGTH}")
    end = len(data.rstrip(b"\x00"))
    if end == 0:
        raise UnexpectedMessage("a protected record whose plaintext is only padding has no content type")
    plaintext = InnerPlaintext(data[: end - 1], data[end - 1], len(data) - end)
    if plaintext.content_type not in PROTECTED_CONTENT_TYPES:
        # ChangeCipherSpec is never protected in TLS 1.3 (section 5), and an unknown type is unexpected.
        raise UnexpectedMessage(f"content type {plaintext.content_type} cannot be inside a TLS 1.3 record")
    if plaintext.content_type == ContentType.handshake and not plaintext.content:
        raise UnexpectedMessage("a zero-length handshake fragment (section 5.1 forbids them, padding or not)")
    return plaintext


# -- nonce and additional data ----------------------------------------------------------------------


def record_nonce(iv: bytes, sequence_number: int) -> bytes:
    """The per-record nonce: the 64-bit sequence number, left-padded to the IV's length, XOR the IV (5.3)."""
    if not 0 <= sequence_number <= MAX_SEQUENCE_NUMBER:
        raise ValueError(f"sequence number {sequence_number} is not a 64-bit unsigned integer")
    padded = sequence_number.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(iv, padded, strict=True))


def record_header(encrypted_length: int) -> bytes:
    """The header of a protected record, which is also its additional data: 23, 0x0303, length."""
    return Writer().u8(ContentType.application_data).u16(LEGACY_RECORD_VERSION).u16(encrypted_length).getvalue()


# -- one direction ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedRecord13:
    """A protected record opened: what was inside, and everything that went into opening it.

    ``spans`` annotate the record as it was on the wire (header, encrypted body, tag); the inner
    plaintext's layout is in ``content``, ``content_type`` and ``padding_length``.
    """

    record: bytes
    sequence_number: int
    nonce: bytes
    content_type: int
    content: bytes
    padding_length: int

    @property
    def additional_data(self) -> bytes:
        return self.record[:RECORD_HEADER_LENGTH]

    @property
    def spans(self) -> tuple[Span, ...]:
        spans: list[Span] = []
        reader = Reader(self.record, spans=spans, path=("record",))
        reader.u8("opaque_type", "application_data: the real type travels encrypted")
        reader.u16("legacy_record_version", "0x0303 (TLS 1.2) on every TLS 1.3 record")
        length = reader.u16("length", "the encrypted record's length; the header is the AEAD's additional data")
        reader.raw(length - TAG_LENGTH, "encrypted_record", f"content, type and padding, nonce {self.nonce.hex()}")
        reader.raw(TAG_LENGTH, "tag", "the AEAD's authentication tag")
        return tuple(spans)


@dataclass
class _Direction:
    suite: Suite13
    key: bytes
    iv: bytes
    sequence_number: int = 0
    _aead: AESGCM | ChaCha20Poly1305 | AESCCM = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != self.suite.key_length or len(self.iv) != self.suite.iv_length:
            raise ValueError(
                f"{self.suite.name} takes a {self.suite.key_length}-byte key and a {self.suite.iv_length}-byte IV"
            )
        self._aead = self.suite.aead(self.key)

    @classmethod
    def from_secret(cls, suite: Suite13 | int | str, traffic_secret: bytes) -> Self:
        """The direction a traffic secret protects, its key and IV derived with ``suite``'s hash."""
        params = suite if isinstance(suite, Suite13) else suite13(suite)
        keys = params.keys(traffic_secret)
        return cls(params, keys.key, keys.iv)

    def _next_nonce(self) -> tuple[int, bytes]:
        if self.sequence_number > MAX_SEQUENCE_NUMBER:
            raise ValueError("the sequence number would wrap: these keys must be updated (KeyUpdate) first")
        return self.sequence_number, record_nonce(self.iv, self.sequence_number)


class RecordSealer13(_Direction):
    """One direction's sending side: seals TLSInnerPlaintexts into records, counting its sequence number."""

    def seal(self, content: bytes, content_type: int, padding_length: int = 0) -> bytes:
        """The whole protected record (header included) for ``content`` of ``content_type``."""
        inner = encode_inner_plaintext(content, content_type, padding_length)
        header = record_header(len(inner) + self.suite.tag_length)
        _, nonce = self._next_nonce()
        record = header + self._aead.encrypt(nonce, inner, header)
        self.sequence_number += 1
        return record


class RecordOpener13(_Direction):
    """One direction's receiving side: opens protected records in order, counting its sequence number."""

    def open(self, record: bytes) -> OpenedRecord13:
        """Check the header, decrypt and authenticate, strip the padding; the sequence number counts only successes.

        ``unexpected_message`` for a header type other than application_data (or a plaintext of zeros),
        ``decode_error`` for a bad version or a length that does not match, ``record_overflow`` above
        2^14 + 256 bytes, ``bad_record_mac`` when the tag does not verify.
        """
        if len(record) < RECORD_HEADER_LENGTH:
            raise DecodeError(f"a record header is 5 bytes, not {len(record)}", field="record", offset=0)
        reader = Reader(record, annotate=False, path=("record",))
        content_type = reader.u8("opaque_type")
        version = reader.u16("legacy_record_version")
        length = reader.u16("length")
        if content_type != ContentType.application_data:
            raise UnexpectedMessage(f"a protected TLS 1.3 record has type 23 (application_data), not {content_type}")
        if version != LEGACY_RECORD_VERSION:
            raise DecodeError(f"a protected record says 0x0303, not 0x{version:04x}", field="record.version", offset=1)
        if length > MAX_CIPHERTEXT_LENGTH:
            raise RecordOverflow(f"an encrypted record of {length} bytes; the limit is {MAX_CIPHERTEXT_LENGTH}")
        if length != reader.remaining:
            raise DecodeError(
                f"the header says {length} bytes, {reader.remaining} follow", field="record.length", offset=3
            )
        if length < self.suite.tag_length + 1:
            raise DecodeError(f"{length} bytes cannot hold a tag and a content type", field="record.length", offset=3)
        sequence_number, nonce = self._next_nonce()
        try:
            inner = self._aead.decrypt(nonce, record[RECORD_HEADER_LENGTH:], record[:RECORD_HEADER_LENGTH])
        except InvalidTag:
            raise BadRecordMac(f"record {sequence_number} failed its {self.suite.name} tag") from None
        plaintext = decode_inner_plaintext(inner)
        self.sequence_number += 1
        return OpenedRecord13(
            bytes(record), sequence_number, nonce, plaintext.content_type, plaintext.content, plaintext.padding_length
        )
