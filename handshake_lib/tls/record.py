"""The TLS 1.2 record layer: framing, reassembly, and record protection (sans-I/O).

Theory of operation
-------------------
Everything TLS sends travels in *records*: a 5-byte header (content type, version, length) and a
fragment of at most 2^14 bytes of plaintext (RFC 5246 section 6.2).  Before ChangeCipherSpec the
fragment is plaintext; after it, each direction protects its records with the keys from the key block
and a 64-bit *sequence number* that starts at 0 after ChangeCipherSpec and counts records.  The
sequence number is never sent: both sides count, so a record that is dropped, replayed or reordered
makes the MAC fail.

Four small classes, none with any I/O:

* :class:`RecordReader` splits a byte stream into :class:`Record` objects.  It returns nothing until a
  whole record is there, and refuses lengths above the limits (RecordOverflow) as soon as it sees the
  header, without waiting for the bytes.
* :class:`HandshakeReassembler` turns the fragments of handshake records back into messages: one
  message may span several records, and one record may hold several messages.  It is the only code
  that cuts handshake messages apart: :func:`reassemble_handshake_messages` runs it over fragments
  already in hand (a recorded flight, a transcript), the connection feeds it record by record.
* :class:`RecordLayer` is one endpoint's records: the reader, and each direction's protection with the
  "pending state" of RFC 5246 section 6.1: the handshake installs the next protection as *pending*,
  and ChangeCipherSpec (sent or received) makes it *current* and restarts that direction's sequence
  number at 0.  It also cuts outgoing data into records (at most ``fragment_size`` bytes each).
  :class:`~handshake_lib.tls.connection.TLSConnection` runs on it, adding reassembly and its state table
  (which decides when a ChangeCipherSpec may switch keys: the record layer has no second path for it).
* :class:`RecordProtection` (one per direction) protects and unprotects fragments:

  - **AES-CBC, MAC-then-encrypt** (the classic TLS 1.2 construction, RFC 5246 section 6.2.3.2)::

        mac      = HMAC(mac_key, seq_num + type + version + length + plaintext)
        padding  = (padding_length + 1) bytes, each equal to padding_length
        fragment = IV + AES-CBC(key, IV, plaintext + mac + padding)

    The receiver must decrypt *before* it can check the MAC, and that order is the root of the padding
    oracle attacks (Vaudenay 2002, Lucky 13 in 2013, POODLE for SSL 3).  Every check is therefore
    folded into one flag and one error, :class:`~handshake_lib.errors.BadRecordMac`.

  - **AES-CBC, encrypt-then-MAC** (RFC 7366, negotiated by an extension that OpenSSL sends and accepts
    by default)::

        fragment = IV + AES-CBC(key, IV, plaintext + padding) + HMAC(mac_key, seq + type + version
                                                                    + length(IV + ciphertext) + IV + ciphertext)

    The MAC is checked first, over the ciphertext, so a forged record is rejected before any padding
    is looked at.  This is the order cryptographers recommend; supporting both is what a real
    implementation must do, because the peer chooses.

  - **AES-GCM** (RFC 5288): an AEAD, so no separate MAC::

        nonce           = salt (4 bytes from the key block) + explicit nonce (8 bytes, sent in the record)
        additional_data = seq_num + type + version + plaintext length
        fragment        = explicit nonce + AES-GCM(key, nonce, plaintext, additional_data) (tag included)

    The explicit nonce must never repeat under one key.  We send the sequence number, as RFC 5288
    section 3 suggests and Go and NSS do; OpenSSL 3 instead starts from a random value and counts up
    (seen in the interop tests).  Both are correct, because the receiver reads the nonce from the
    record; ``explicit_nonce`` lets a test choose OpenSSL's and reproduce its records byte for byte.

  - **ChaCha20-Poly1305** (RFC 7905): an AEAD whose nonce is never sent::

        nonce           = write_IV (12 bytes from the key block) XOR (4 zero bytes + seq_num)
        additional_data = seq_num + type + version + plaintext length
        fragment        = ChaCha20-Poly1305(key, nonce, plaintext, additional_data) (16-byte tag included)

    Both sides count the sequence number, so both know the nonce; nothing can make the sender repeat
    one, and the record is eight bytes shorter than GCM's.

The keys, the hash and the sizes come from :class:`~handshake_lib.tls.suites.SuiteParams` and
:class:`~handshake_lib.tls.prf.KeyBlock`; AES, GCM, ChaCha20-Poly1305 and HMAC come from ``cryptography``.
"""

from __future__ import annotations

import hmac as _hmac_compare
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..errors import BadRecordMac, DecodeError, ProtocolError, ProtocolVersionError, RecordOverflow, UnexpectedMessage
from ..wire import Reader, Span, Writer
from .constants import ContentType, ProtocolVersion, name_of
from .prf import HASHES, KeyBlock
from .suites import SuiteParams

__all__ = [
    "RECORD_HEADER_LENGTH",
    "MAX_PLAINTEXT_LENGTH",
    "MAX_CIPHERTEXT_LENGTH",
    "Record",
    "RecordReader",
    "RecordLayer",
    "Received",
    "Sent",
    "HandshakeReassembler",
    "ReassembledMessage",
    "reassemble_handshake_messages",
    "MAX_HANDSHAKE_MESSAGE_LENGTH",
    "RecordProtection",
    "encode_record",
    "read_header",
    "sequence_number_nonce",
    "chacha20_poly1305_nonce",
    "Check",
    "OpenedRecord",
    "receive_protected_record",
    "reassemble_handshake",
    "MessagePiece",
    "message_pieces",
]

RECORD_HEADER_LENGTH = 5
MAX_PLAINTEXT_LENGTH = 1 << 14  # TLSPlaintext.length limit (RFC 5246 section 6.2.1)
MAX_CIPHERTEXT_LENGTH = (1 << 14) + 2048  # TLSCiphertext.length limit (section 6.2.3)
MAX_SEQUENCE_NUMBER = (1 << 64) - 1
HANDSHAKE_HEADER_LENGTH = 4
# RFC 5246 appendix E.2: an SSL 2.0-format ClientHello starts with a two-byte length whose high bit is
# set, then msg_type 1.  We refuse it (a TLS 1.2 server MAY accept it; OpenSSL still does), with
# protocol_version, the alert for a peer speaking a version we do not: the SSL 2.0 record format.
SSL2_MT_CLIENT_HELLO = 1
# The largest handshake message we buffer: a certificate chain of a few 4 KB certificates fits many times.
MAX_HANDSHAKE_MESSAGE_LENGTH = 1 << 17


def _version_meaning(value: int) -> str:
    return name_of(ProtocolVersion, value)


def _type_meaning(value: int) -> str:
    return name_of(ContentType, value)


# -- framing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record as it is on the wire: header fields and the (possibly protected) fragment.

    ``offset`` is where the record started in the stream it was read from; ``spans`` annotates the
    header and the fragment at that offset, computed only when something (a hex view, a trace) asks.
    """

    content_type: int
    version: int
    fragment: bytes
    offset: int = field(default=0, compare=False, repr=False)

    @property
    def spans(self) -> tuple[Span, ...]:
        spans: list[Span] = []
        _read_header(self.encode(), self.offset, spans)
        spans.append(Span(self.offset + RECORD_HEADER_LENGTH, len(self.fragment), "record.fragment", "", 1))
        return tuple(spans)

    def encode(self) -> bytes:
        return encode_record(self.content_type, self.version, self.fragment)

    @property
    def header(self) -> bytes:
        return self.encode()[:RECORD_HEADER_LENGTH]


def encode_record(content_type: int, version: int, fragment: bytes) -> bytes:
    """Header (type, version, length) + fragment."""
    return Writer().u8(content_type).u16(version).vector(2, fragment).getvalue()


def _read_header(data: bytes, base_offset: int, spans: list[Span] | None) -> tuple[int, int, int]:
    """Read a record header; with ``spans=None`` nothing is annotated (the hot path of a connection)."""
    if spans is None:
        reader = Reader(data[:RECORD_HEADER_LENGTH], base_offset=base_offset, annotate=False)
    else:
        reader = Reader(data[:RECORD_HEADER_LENGTH], base_offset=base_offset, spans=spans, path=("record",))
    content_type = reader.u8("content_type", _type_meaning)
    version = reader.u16("version", _version_meaning)
    length = reader.u16("length", "length of the fragment in bytes")
    return content_type, version, length


def read_header(data: bytes) -> tuple[int, int, int]:
    """(content type, version, claimed fragment length) of the record header ``data`` starts with."""
    return _read_header(data, 0, None)


def _check_header(content_type: int, version: int, length: int, limit: int, offset: int) -> None:
    if content_type not in ContentType._value2member_map_:
        raise UnexpectedMessage(f"record at offset {offset} has unknown content type {content_type}")
    if version >> 8 != 3:
        raise ProtocolVersionError(f"record at offset {offset} has version 0x{version:04x}, which is not TLS")
    if length > limit:
        raise RecordOverflow(f"record at offset {offset} claims {length} bytes; the limit is {limit}")


class RecordReader:
    """Split a byte stream into records.  Feed it bytes as they arrive; it returns whole records only.

    ``protected`` selects the length limit: 2^14 for plaintext records, 2^14 + 2048 once the peer's
    ChangeCipherSpec has switched the direction to protected records.
    """

    def __init__(self, *, protected: bool = False) -> None:
        self._buffer = bytearray()
        self._consumed = 0  # bytes of the stream already returned as records, for offsets in errors
        self.protected = protected

    @property
    def limit(self) -> int:
        return MAX_CIPHERTEXT_LENGTH if self.protected else MAX_PLAINTEXT_LENGTH

    @property
    def buffered(self) -> int:
        """Bytes received that do not make a whole record yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Record]:
        """Add bytes and return every record that is now complete."""
        self.extend(data)
        return list(iter(self.next_record, None))

    def extend(self, data: bytes) -> None:
        """Add bytes without reading records (for callers that change ``protected`` between records)."""
        self._buffer += data

    def next_record(self) -> Record | None:
        """The next whole record in the buffer, or None if more bytes are needed."""
        if len(self._buffer) < RECORD_HEADER_LENGTH:
            return None
        if self._consumed == 0 and self._buffer[0] & 0x80 and self._buffer[2] == SSL2_MT_CLIENT_HELLO:
            raise ProtocolVersionError(
                f"an SSLv2-compatible ClientHello (RFC 5246 appendix E.2, first byte 0x{self._buffer[0]:02x}): "
                "this server speaks only the TLS record format; the client must send its ClientHello in a TLS record"
            )
        content_type, version, length = _read_header(bytes(self._buffer[:RECORD_HEADER_LENGTH]), self._consumed, None)
        # Check the header before waiting for the body: a peer claiming 60000 bytes must not make us wait.
        _check_header(content_type, version, length, self.limit, self._consumed)
        total = RECORD_HEADER_LENGTH + length
        if len(self._buffer) < total:
            return None
        fragment = bytes(self._buffer[RECORD_HEADER_LENGTH:total])
        record = Record(content_type, version, fragment, self._consumed)
        del self._buffer[:total]
        self._consumed += total
        return record


@dataclass(frozen=True)
class ReassembledMessage:
    """One whole handshake message: its type, its body, and the exact bytes (for the transcript hash)."""

    msg_type: int
    body: bytes
    raw: bytes


class HandshakeReassembler:
    """Turn handshake record fragments back into handshake messages (RFC 5246 section 6.2.1).

    A handshake message is 1 byte of type, 3 bytes of length, then the body; records cut this stream
    wherever they like.  ``max_message_length`` bounds what a peer can make us buffer.
    """

    def __init__(self, *, max_message_length: int = MAX_HANDSHAKE_MESSAGE_LENGTH) -> None:
        self._buffer = bytearray()
        self._consumed = 0
        self.max_message_length = max_message_length

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def pending(self) -> bytes:
        """The start of a message that has not arrived whole yet (b"" when none)."""
        return bytes(self._buffer)

    def feed(self, fragment: bytes) -> list[ReassembledMessage]:
        self._buffer += fragment
        messages = []
        while len(self._buffer) >= HANDSHAKE_HEADER_LENGTH:
            reader = Reader(bytes(self._buffer[:HANDSHAKE_HEADER_LENGTH]), base_offset=self._consumed)
            msg_type = reader.u8("handshake.msg_type")
            length = reader.u24("handshake.length")
            if length > self.max_message_length:
                raise DecodeError(
                    f"handshake message of {length} bytes exceeds the limit of {self.max_message_length}",
                    field="handshake.length",
                    offset=self._consumed + 1,
                )
            total = HANDSHAKE_HEADER_LENGTH + length
            if len(self._buffer) < total:
                break
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            self._consumed += total
            messages.append(ReassembledMessage(msg_type, raw[HANDSHAKE_HEADER_LENGTH:], raw))
        return messages


def reassemble_handshake_messages(
    fragments: Iterable[bytes], *, complete: bool = True, max_message_length: int = MAX_HANDSHAKE_MESSAGE_LENGTH
) -> list[ReassembledMessage]:
    """The whole handshake messages in ``fragments`` (handshake record plaintexts, in order).

    The same :class:`HandshakeReassembler` a connection runs, for fragments already in hand: a recorded
    flight, the handshake records of a transcript, or one concatenation of messages (``[data]``).  With
    ``complete`` (the default) bytes left over after the last whole message are a DecodeError; with
    ``complete=False`` they are ignored (a capture that stops mid-message).
    """
    reassembler = HandshakeReassembler(max_message_length=max_message_length)
    messages = [message for fragment in fragments for message in reassembler.feed(fragment)]
    if complete and reassembler.buffered:
        raise DecodeError(
            f"{reassembler.buffered} bytes after the last whole handshake message", field="handshake.length"
        )
    return messages


# -- protection ---------------------------------------------------------------------------------

RandomBytes = Callable[[int], bytes]
ExplicitNonce = Callable[[int], bytes]


def sequence_number_nonce(sequence_number: int) -> bytes:
    """The default GCM explicit nonce: the record's 64-bit sequence number (unique for each key)."""
    return sequence_number.to_bytes(8, "big")


def chacha20_poly1305_nonce(write_iv: bytes, sequence_number: int) -> bytes:
    """RFC 7905 section 2: the 64-bit sequence number, left-padded to 96 bits, XORed with the 12-byte write IV."""
    return (int.from_bytes(write_iv, "big") ^ sequence_number).to_bytes(len(write_iv), "big")


def _hmac(hash_name: str, key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, HASHES[hash_name]())
    mac.update(data)
    return mac.finalize()


def mac_input(sequence_number: int, content_type: int, version: int, fragment: bytes) -> bytes:
    """What the record MAC covers (RFC 5246 section 6.2.3.1)::

        seq_num (uint64) + type (uint8) + version (uint16) + length (uint16) + fragment

    The sequence number is never sent: both sides count records, so a dropped, replayed or reordered
    record changes the input and the MAC no longer matches.
    """
    return Writer().u64(sequence_number).u8(content_type).u16(version).u16(len(fragment)).raw(fragment).getvalue()


def record_mac(
    hash_name: str, mac_key: bytes, sequence_number: int, content_type: int, version: int, fragment: bytes
) -> bytes:
    """HMAC(MAC_write_key, seq_num + type + version + length + fragment): the MAC on every CBC record.

    With MAC-then-encrypt ``fragment`` is the plaintext; with encrypt-then-MAC (RFC 7366) it is the IV
    and ciphertext.  A learner's own version can be plugged into a live connection through
    ``TLSClient(..., stages=Stages(record_mac=...))`` (or ``TLSServer``).
    """
    return _hmac(hash_name, mac_key, mac_input(sequence_number, content_type, version, fragment))


RecordMac = Callable[[str, bytes, int, int, int, bytes], bytes]


# -- a record opened with annotations -----------------------------------------------------------------
class Check(Enum):
    """Which check refused a protected record (the receiver reports every one as ``bad_record_mac``)."""

    NONE = "none"  # accepted
    HEADER = "record header"  # type, version or length refused before any cryptography
    INCOMPLETE = "record header: length"  # the header claims more bytes than arrived: the reader waits
    LENGTH = "length"  # impossible for the construction (too short, not whole blocks)
    GCM_TAG = "GCM tag"
    POLY1305_TAG = "Poly1305 tag"
    MAC_BEFORE_DECRYPTION = "MAC (over IV + ciphertext, before decryption)"  # encrypt-then-MAC
    PADDING = "padding (after decryption)"  # MAC-then-encrypt, folded with the MAC into one error
    MAC_AFTER_DECRYPTION = "MAC (after decryption)"  # MAC-then-encrypt
    AUTHENTICATED_PADDING = "padding (in an authenticated record)"  # encrypt-then-MAC, a broken sender
    SIZE = "plaintext size"

    @property
    def explanation(self) -> str:
        """Why this check caught a damaged record, in a sentence or three (the tamper lab shows it)."""
        return _CHECK_EXPLANATIONS.get(self, f"Refused by the {self.value} check.")


_CHECK_EXPLANATIONS: dict[Check, str] = {
    Check.NONE: "The record was accepted: this should never happen for a flipped bit.",
    Check.HEADER: "The header itself is refused before any cryptography.",
    Check.GCM_TAG: "AES-GCM checks its 16-byte tag over the explicit nonce, the ciphertext and the additional "
    "data (sequence number, type, version, length) before returning anything: any change fails it, and no "
    "plaintext is ever released.",
    Check.POLY1305_TAG: "ChaCha20-Poly1305 checks its 16-byte Poly1305 tag over the ciphertext and the additional "
    "data (sequence number, type, version, length) before returning anything; the nonce is never sent but comes "
    "from the sequence number, so a replayed, dropped or reordered record fails the same check.",
    Check.MAC_BEFORE_DECRYPTION: "Encrypt-then-MAC: the receiver checks the HMAC over the header fields and the "
    "IV + ciphertext first, and refuses the record without decrypting it. Nothing about the padding is ever "
    "computed, so there is nothing for a padding oracle to leak.",
    Check.PADDING: "MAC-then-encrypt: the receiver must decrypt first; the padding came out wrong. It still "
    "computes a MAC and reports the same bad_record_mac, so that an attacker cannot tell a padding error from a "
    "MAC error (the distinction was Vaudenay's padding oracle).",
    Check.MAC_AFTER_DECRYPTION: "MAC-then-encrypt: decryption worked and the padding looked right, but the changed "
    "bits reached the plaintext, the MAC or the header fields the MAC covers, so the HMAC over seq + header + "
    "plaintext no longer matches.",
    Check.INCOMPLETE: "The header claims more bytes than arrived: the receiver waits for the rest, takes it from "
    "the next record, and the MAC check fails then (or the connection times out).",
}


@dataclass
class OpenedRecord:
    """One protected record, opened by :meth:`RecordProtection.explain`: what each byte is, and the verdict.

    ``spans`` annotate ``record`` (header, explicit nonce or IV, ciphertext, MAC, GCM or Poly1305 tag);
    ``decrypted`` is what the cipher gave (CBC: plaintext [+ MAC] + padding; an AEAD: the plaintext) and
    ``decrypted_spans`` annotate it.  ``mac_input`` is the 13-byte pseudo-header the MAC or tag also
    covered (sequence number, type, version, length: never sent).  ``plaintext`` is set whenever
    decryption produced one, even if a later check refused it (``accepted`` says whether it did).
    """

    record: bytes
    construction: str
    sequence_number: int
    spans: list[Span] = field(default_factory=list)
    decrypted: bytes = b""
    decrypted_spans: list[Span] = field(default_factory=list)
    plaintext: bytes | None = None
    mac_received: bytes = b""
    mac_expected: bytes = b""
    padding: bytes = b""
    mac_input: bytes = b""
    failed: Check = Check.NONE
    error: ProtocolError | None = None
    leftover: int = 0  # bytes after the record (a header that claims fewer bytes than were sent)

    @property
    def accepted(self) -> bool:
        return self.failed is Check.NONE and self.error is None

    @property
    def mac_matches(self) -> bool:
        return bool(self.mac_received) and self.mac_received == self.mac_expected

    def field_at(self, offset: int) -> str:
        """The innermost field of :attr:`spans` that holds the record's byte ``offset`` (``"?"`` if none)."""
        names = [s.field for s in self.spans if not s.is_group and s.offset <= offset < s.end]
        return names[-1] if names else "?"

    @property
    def mac_input_spans(self) -> list[Span]:
        """Spans over :attr:`mac_input`."""
        if len(self.mac_input) != 13:
            return []
        content_type, version = self.mac_input[8], int.from_bytes(self.mac_input[9:11], "big")
        covers = "IV + ciphertext" if self.construction == "encrypt-then-MAC" else "plaintext"
        return [
            Span(0, 8, "seq_num", f"{self.sequence_number}: counted by both sides, never sent"),
            Span(8, 1, "type", name_of(ContentType, content_type)),
            Span(9, 2, "version", name_of(ProtocolVersion, version)),
            Span(11, 2, "length", f"{int.from_bytes(self.mac_input[11:], 'big')} bytes of {covers}"),
        ]

    # What the openers write, in the order they learn it.
    def gcm_parts(self, salt: bytes, nonce_length: int, body_length: int, tag_length: int, aad: bytes) -> None:
        base = RECORD_HEADER_LENGTH
        self.mac_input = aad
        self.spans += [
            Span(
                base,
                nonce_length,
                "record.explicit_nonce",
                f"sent nonce part; full nonce = salt {salt.hex()} (from the key block) + these {nonce_length}",
                1,
            ),
            Span(
                base + nonce_length,
                body_length,
                "record.ciphertext",
                "AES-GCM(plaintext): same length as the plaintext",
                1,
            ),
            Span(
                base + nonce_length + body_length,
                tag_length,
                "record.gcm_tag",
                "authenticates nonce, ciphertext and additional data (seq, type, version, length)",
                1,
            ),
        ]

    def chacha_parts(self, write_iv: bytes, nonce: bytes, body_length: int, tag_length: int, aad: bytes) -> None:
        base = RECORD_HEADER_LENGTH
        self.mac_input = aad
        self.spans += [
            Span(
                base,
                body_length,
                "record.ciphertext",
                f"ChaCha20(plaintext): same length as the plaintext; no nonce is sent, it is nonce {nonce.hex()} = "
                f"IV {write_iv.hex()} (from the key block) XOR sequence number {self.sequence_number}",
                1,
            ),
            Span(
                base + body_length,
                tag_length,
                "record.poly1305_tag",
                "authenticates ciphertext and additional data (seq, type, version, length)",
                1,
            ),
        ]

    def cbc_parts(self, iv_length: int, ciphertext_length: int, mac_length: int, what: str) -> None:
        base = RECORD_HEADER_LENGTH
        self.spans += [
            Span(base, iv_length, "record.iv", "random CBC IV, sent in the clear", 1),
            Span(base + iv_length, ciphertext_length, "record.ciphertext", what, 1),
        ]
        if mac_length:
            self.spans.append(
                Span(
                    base + iv_length + ciphertext_length,
                    mac_length,
                    "record.mac",
                    "HMAC(seq + type + version + length + IV + ciphertext)",
                    1,
                )
            )

    def macs(self, received: bytes, expected: bytes, mac_input: bytes) -> None:
        self.mac_received, self.mac_expected, self.mac_input = received, expected, mac_input
        for index, span in enumerate(self.spans):
            if span.field == "record.mac":
                verdict = "matches" if self.mac_matches else "does NOT match"
                self.spans[index] = Span(span.offset, span.length, span.field, f"{span.meaning}: {verdict}", span.depth)

    def opened(self, decrypted: bytes, plaintext: bytes) -> None:
        self.decrypted, self.plaintext = decrypted, plaintext
        self.decrypted_spans = [Span(0, len(plaintext), "plaintext", f"{len(plaintext)} bytes", 0)]

    def padded(self, padded: bytes, content_end: int, mac_length: int, padding_length: int, good: bool) -> None:
        """CBC: ``padded`` = content, MAC (``mac_length`` bytes, MAC-then-encrypt only), padding."""
        self.decrypted = padded
        if not good:
            self.decrypted_spans = [
                Span(
                    0,
                    len(padded),
                    "decrypted",
                    f"garbled: the last byte says {padding_length} padding bytes; they are not all {padding_length}",
                )
            ]
            return
        self.plaintext = padded[:content_end]
        self.padding = padded[len(padded) - padding_length - 1 :]
        spans = [Span(0, content_end, "plaintext", f"{content_end} bytes")]
        if mac_length:
            verdict = "matches" if self.mac_matches else "does NOT match"
            meaning = f"HMAC(seq + type + version + length + plaintext): {verdict}"
            spans.append(Span(content_end, mac_length, "mac", meaning))
        if padding_length:
            spans.append(
                Span(
                    len(padded) - padding_length - 1,
                    padding_length,
                    "padding",
                    f"{padding_length} bytes, each {padding_length}",
                )
            )
        spans.append(Span(len(padded) - 1, 1, "padding_length", f"{padding_length}: that many padding bytes before me"))
        self.decrypted_spans = spans

    def mac_then_encrypt_parts(
        self,
        padded: bytes,
        content_length: int,
        mac_length: int,
        padding_length: int,
        padding_good: bool,
        received: bytes,
        expected: bytes,
        mac_input: bytes,
    ) -> None:
        self.macs(received, expected, mac_input)
        self.padded(padded, content_length, mac_length, padding_length, padding_good)
        if not padding_good:
            self.failed = Check.PADDING
        elif not self.mac_matches:
            self.failed = Check.MAC_AFTER_DECRYPTION


def receive_protected_record(protection: RecordProtection, data: bytes) -> OpenedRecord:
    """What a receiver makes of ``data``, read as a connection reads it: header first, then the opener.

    A :class:`RecordReader` for protected records checks the header (``Check.HEADER``) and waits for
    the length it claims (``Check.INCOMPLETE`` when fewer bytes came); the record it cuts is then
    opened by :meth:`RecordProtection.explain` at the protection's sequence number.  Bytes beyond
    the record (a header claiming fewer) are counted in ``leftover``.
    """
    reader = RecordReader(protected=True)
    reader.extend(data)
    try:
        record = reader.next_record()
    except ProtocolError as error:
        return OpenedRecord(
            bytes(data), protection.construction, protection.sequence_number, failed=Check.HEADER, error=error
        )
    if record is None:
        return OpenedRecord(bytes(data), protection.construction, protection.sequence_number, failed=Check.INCOMPLETE)
    opened = protection.explain(record)
    opened.leftover = reader.buffered
    return opened


@dataclass
class RecordProtection:
    """Protection of one direction of a connection: keys, sequence number, and the suite's construction.

    Build one per direction with :meth:`client_write` / :meth:`server_write` (or directly).  The client
    uses ``client_write`` to protect and ``server_write`` to unprotect; the server the other way round.
    ``random_bytes`` supplies CBC's per-record IVs and ``explicit_nonce`` GCM's (from the sequence
    number), so a test can make records reproducible; ChaCha20-Poly1305 needs neither (RFC 7905's nonce
    is the write IV XOR the sequence number).
    """

    params: SuiteParams
    key: bytes
    mac_key: bytes = b""
    fixed_iv: bytes = b""
    sequence_number: int = 0
    encrypt_then_mac: bool = False
    random_bytes: RandomBytes = os.urandom
    explicit_nonce: ExplicitNonce = sequence_number_nonce
    record_mac: RecordMac = record_mac

    def __post_init__(self) -> None:
        if len(self.key) != self.params.enc_key_length:
            raise ValueError(f"{self.params.name} needs a {self.params.enc_key_length}-byte key")
        if len(self.mac_key) != self.params.mac_key_length:
            raise ValueError(f"{self.params.name} needs a {self.params.mac_key_length}-byte MAC key")
        if self.params.is_aead and len(self.fixed_iv) != self.params.fixed_iv_length:
            raise ValueError(f"{self.params.name} needs a {self.params.fixed_iv_length}-byte implicit nonce")

    @classmethod
    def client_write(cls, keys: KeyBlock, params: SuiteParams, **options: object) -> RecordProtection:
        return cls(params, keys.client_write_key, keys.client_write_mac_key, keys.client_write_iv, **options)  # type: ignore[arg-type]

    @classmethod
    def server_write(cls, keys: KeyBlock, params: SuiteParams, **options: object) -> RecordProtection:
        return cls(params, keys.server_write_key, keys.server_write_mac_key, keys.server_write_iv, **options)  # type: ignore[arg-type]

    # -- public entry points --------------------------------------------------------------------
    def protect(self, content_type: int, version: int, plaintext: bytes) -> bytes:
        """Protect ``plaintext`` as the next record of this direction; returns header + fragment."""
        if len(plaintext) > MAX_PLAINTEXT_LENGTH:
            raise RecordOverflow(f"{len(plaintext)} bytes do not fit one record (limit {MAX_PLAINTEXT_LENGTH})")
        seq = self._next_sequence_number()
        if self.params.cipher == "CHACHA20-POLY1305":
            fragment = self._chacha_seal(seq, content_type, version, plaintext)
        elif self.params.is_aead:
            fragment = self._gcm_seal(seq, content_type, version, plaintext)
        elif self.encrypt_then_mac:
            fragment = self._cbc_etm_seal(seq, content_type, version, plaintext)
        else:
            fragment = self._cbc_seal(seq, content_type, version, plaintext)
        return encode_record(content_type, version, fragment)

    def unprotect(self, record: bytes | Record) -> bytes:
        """Check and decrypt one record (header + fragment, or a :class:`Record`); returns the plaintext.

        Any failure (MAC, tag, padding, a length that cannot be right) raises BadRecordMac, the same
        error every time.  The sequence number advances only on success.
        """
        if isinstance(record, Record):
            content_type, version, fragment = record.content_type, record.version, record.fragment
        else:
            content_type, version, length = _read_header(bytes(record), 0, [])
            fragment = bytes(record[RECORD_HEADER_LENGTH:])
            if length != len(fragment):
                raise DecodeError(
                    f"record header says {length} bytes but {len(fragment)} follow", field="record.length", offset=3
                )
        seq = self.sequence_number
        plaintext = self._open(seq, content_type, version, fragment, None)
        self.sequence_number = seq + 1
        return plaintext

    def explain(self, record: bytes | Record) -> OpenedRecord:
        """Open ``record`` as :meth:`unprotect` does, and say what each byte is and which check failed.

        The same code runs (the same openers, with a notebook to write in), so the explanation cannot
        disagree with the verdict.  Never raises on bad bytes: the error goes to ``error`` and the
        check that caught it to ``failed``.  The sequence number does not advance.
        """
        raw = record.encode() if isinstance(record, Record) else bytes(record)
        notes = OpenedRecord(raw, self.construction, self.sequence_number)
        try:
            content_type, version, length = _read_header(raw, 0, notes.spans)
            fragment = raw[RECORD_HEADER_LENGTH:]
            if length != len(fragment):
                raise DecodeError(
                    f"record header says {length} bytes but {len(fragment)} follow", field="record.length", offset=3
                )
        except ProtocolError as error:
            notes.failed, notes.error = Check.HEADER, error
            return notes
        try:
            self._open(self.sequence_number, content_type, version, fragment, notes)
        except ProtocolError as error:
            notes.error = error
            if notes.failed is Check.NONE:
                notes.failed = Check.LENGTH
        return notes

    @property
    def construction(self) -> str:
        """``"AEAD (AES-GCM)"``, ``"AEAD (ChaCha20-Poly1305)"``, ``"encrypt-then-MAC"`` or ``"MAC-then-encrypt"``."""
        if self.params.cipher == "CHACHA20-POLY1305":
            return "AEAD (ChaCha20-Poly1305)"
        if self.params.is_aead:
            return "AEAD (AES-GCM)"
        return "encrypt-then-MAC" if self.encrypt_then_mac else "MAC-then-encrypt"

    def _open(self, seq: int, content_type: int, version: int, fragment: bytes, notes: OpenedRecord | None) -> bytes:
        """The one opener behind :meth:`unprotect` and :meth:`explain` (``notes``: None on the hot path)."""
        if len(fragment) > MAX_CIPHERTEXT_LENGTH:
            raise RecordOverflow(f"protected record of {len(fragment)} bytes (limit {MAX_CIPHERTEXT_LENGTH})")
        if seq > MAX_SEQUENCE_NUMBER:
            raise ProtocolError("sequence number exhausted; the connection must be renegotiated")
        if self.params.cipher == "CHACHA20-POLY1305":
            plaintext = self._chacha_open(seq, content_type, version, fragment, notes)
        elif self.params.is_aead:
            plaintext = self._gcm_open(seq, content_type, version, fragment, notes)
        elif self.encrypt_then_mac:
            plaintext = self._cbc_etm_open(seq, content_type, version, fragment, notes)
        else:
            plaintext = self._cbc_open(seq, content_type, version, fragment, notes)
        if len(plaintext) > MAX_PLAINTEXT_LENGTH:
            if notes is not None:
                notes.failed = Check.SIZE
            raise RecordOverflow(f"record decrypted to {len(plaintext)} bytes (limit {MAX_PLAINTEXT_LENGTH})")
        return plaintext

    # -- shared pieces --------------------------------------------------------------------------
    def _next_sequence_number(self) -> int:
        seq = self.sequence_number
        if seq > MAX_SEQUENCE_NUMBER:
            # "Sequence numbers do not wrap" (RFC 5246 section 6.1): a wrapped number would reuse MAC inputs.
            raise ProtocolError("sequence number exhausted; the connection must be renegotiated")
        self.sequence_number = seq + 1
        return seq

    @staticmethod
    def _pseudo_header(seq: int, content_type: int, version: int, length: int) -> bytes:
        """seq_num (8) + type (1) + version (2) + length (2): the MAC input prefix and the AEAD additional data."""
        return Writer().u64(seq).u8(content_type).u16(version).u16(length).getvalue()

    def _mac(self, seq: int, content_type: int, version: int, fragment: bytes) -> bytes:
        assert self.params.mac_algorithm is not None
        return self.record_mac(self.params.mac_algorithm, self.mac_key, seq, content_type, version, fragment)

    def _aes_cbc(self, iv: bytes) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(iv))

    def _padding(self, length: int) -> bytes:
        """Minimal TLS padding that makes ``length`` a multiple of the block size (1 to 16 bytes)."""
        block = self.params.block_length
        padding_length = block - 1 - (length % block)
        return bytes([padding_length]) * (padding_length + 1)

    # -- AES-GCM --------------------------------------------------------------------------------
    def _gcm_seal(self, seq: int, content_type: int, version: int, plaintext: bytes) -> bytes:
        explicit_nonce = self.explicit_nonce(seq)
        if len(explicit_nonce) != self.params.record_iv_length:
            raise ValueError(f"the GCM explicit nonce has {self.params.record_iv_length} bytes")
        nonce = self.fixed_iv + explicit_nonce
        additional_data = self._pseudo_header(seq, content_type, version, len(plaintext))
        return explicit_nonce + AESGCM(self.key).encrypt(nonce, plaintext, additional_data)

    def _gcm_open(
        self, seq: int, content_type: int, version: int, fragment: bytes, notes: OpenedRecord | None = None
    ) -> bytes:
        explicit_length = self.params.record_iv_length
        plaintext_length = len(fragment) - explicit_length - self.params.tag_length
        if plaintext_length < 0:
            raise BadRecordMac("record too short for an explicit nonce and a GCM tag")
        nonce = self.fixed_iv + fragment[:explicit_length]
        additional_data = self._pseudo_header(seq, content_type, version, plaintext_length)
        if notes is not None:
            notes.gcm_parts(self.fixed_iv, explicit_length, plaintext_length, self.params.tag_length, additional_data)
        try:
            plaintext = AESGCM(self.key).decrypt(nonce, fragment[explicit_length:], additional_data)
        except InvalidTag:
            if notes is not None:
                notes.failed = Check.GCM_TAG
            raise BadRecordMac("GCM tag did not verify") from None
        if notes is not None:
            notes.opened(plaintext, plaintext)
        return plaintext

    # -- ChaCha20-Poly1305 (RFC 7905) ----------------------------------------------------------
    def _chacha_seal(self, seq: int, content_type: int, version: int, plaintext: bytes) -> bytes:
        nonce = chacha20_poly1305_nonce(self.fixed_iv, seq)
        additional_data = self._pseudo_header(seq, content_type, version, len(plaintext))
        return ChaCha20Poly1305(self.key).encrypt(nonce, plaintext, additional_data)

    def _chacha_open(
        self, seq: int, content_type: int, version: int, fragment: bytes, notes: OpenedRecord | None = None
    ) -> bytes:
        plaintext_length = len(fragment) - self.params.tag_length
        if plaintext_length < 0:
            raise BadRecordMac("record too short for a Poly1305 tag")
        nonce = chacha20_poly1305_nonce(self.fixed_iv, seq)
        additional_data = self._pseudo_header(seq, content_type, version, plaintext_length)
        if notes is not None:
            notes.chacha_parts(self.fixed_iv, nonce, plaintext_length, self.params.tag_length, additional_data)
        try:
            plaintext = ChaCha20Poly1305(self.key).decrypt(nonce, fragment, additional_data)
        except InvalidTag:
            if notes is not None:
                notes.failed = Check.POLY1305_TAG
            raise BadRecordMac("Poly1305 tag did not verify") from None
        if notes is not None:
            notes.opened(plaintext, plaintext)
        return plaintext

    # -- AES-CBC, MAC-then-encrypt --------------------------------------------------------------
    def _cbc_seal(self, seq: int, content_type: int, version: int, plaintext: bytes) -> bytes:
        mac = self._mac(seq, content_type, version, plaintext)
        body = plaintext + mac
        iv = self.random_bytes(self.params.record_iv_length)
        encryptor = self._aes_cbc(iv).encryptor()
        return iv + encryptor.update(body + self._padding(len(body))) + encryptor.finalize()

    def _cbc_open(
        self, seq: int, content_type: int, version: int, fragment: bytes, notes: OpenedRecord | None = None
    ) -> bytes:
        block = self.params.block_length
        mac_length = self.params.mac_length
        iv_length = self.params.record_iv_length
        ciphertext = fragment[iv_length:]
        # Length checks use only public information (the record length), so failing early is safe.
        # The smallest possible body is MAC + 1 padding-length byte, rounded up to whole blocks.
        if (
            len(fragment) < iv_length
            or len(ciphertext) % block
            or len(ciphertext) < max(block, -(-(mac_length + 1) // block) * block)
        ):
            raise BadRecordMac("CBC record has an impossible length")
        if notes is not None:
            notes.cbc_parts(iv_length, len(ciphertext), 0, "AES-CBC(plaintext + MAC + padding)")
        decryptor = self._aes_cbc(fragment[:iv_length]).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()

        # From here on, no early exits: padding and MAC are both checked and folded into one flag.
        # Padding: the last byte says how many bytes before it must carry the same value.
        padding_length = padded[-1]
        good = int(padding_length + 1 + mac_length <= len(padded))
        # Always scan the same number of bytes (up to 256), whatever the padding length claims.
        scan = min(256, len(padded))
        for i in range(1, scan + 1):
            in_padding = int(i <= padding_length + 1)
            good &= 1 - (in_padding & int(padded[-i] != padding_length))
        # A fixed-length choice: with bad padding, MAC as if there were no padding at all (RFC 5246
        # section 6.2.3.2), so that a MAC is computed either way.
        strip = (padding_length + 1) * good
        content_length = len(padded) - strip - mac_length
        content_length = max(content_length, 0)
        content = padded[:content_length]
        received_mac = padded[content_length : content_length + mac_length]
        expected_mac = self._mac(seq, content_type, version, content)
        padding_good = good
        good &= int(_hmac_compare.compare_digest(expected_mac, received_mac))
        if notes is not None:
            # After the constant-time part: the explanation may tell padding from MAC, the error must not.
            notes.mac_then_encrypt_parts(
                padded,
                content_length,
                mac_length,
                padding_length,
                bool(padding_good),
                received_mac,
                expected_mac,
                self._pseudo_header(seq, content_type, version, content_length),
            )
        # Lucky 13 (AlFardan and Paterson, 2013): even so, HMAC over a shorter content takes fewer hash
        # compression rounds, so timing still leaks the padding length.  OpenSSL's fix computes HMAC in
        # constant time with dummy blocks; Python cannot promise constant time at all (allocation,
        # big integers, the interpreter), so this code shows the structure, not a guarantee.  The real
        # fix is encrypt-then-MAC, or an AEAD.
        if not good:
            raise BadRecordMac("bad record MAC")
        return content

    # -- AES-CBC, encrypt-then-MAC (RFC 7366) ---------------------------------------------------
    def _cbc_etm_seal(self, seq: int, content_type: int, version: int, plaintext: bytes) -> bytes:
        iv = self.random_bytes(self.params.record_iv_length)
        encryptor = self._aes_cbc(iv).encryptor()
        ciphertext = iv + encryptor.update(plaintext + self._padding(len(plaintext))) + encryptor.finalize()
        mac = self._mac(seq, content_type, version, ciphertext)
        return ciphertext + mac

    def _cbc_etm_open(
        self, seq: int, content_type: int, version: int, fragment: bytes, notes: OpenedRecord | None = None
    ) -> bytes:
        block = self.params.block_length
        mac_length = self.params.mac_length
        iv_length = self.params.record_iv_length
        ciphertext, received_mac = fragment[:-mac_length], fragment[-mac_length:]
        if len(fragment) < mac_length + iv_length + block or (len(ciphertext) - iv_length) % block:
            raise BadRecordMac("CBC record has an impossible length")
        expected_mac = self._mac(seq, content_type, version, ciphertext)
        if notes is not None:
            notes.cbc_parts(iv_length, len(ciphertext) - iv_length, mac_length, "AES-CBC(plaintext + padding)")
            notes.macs(received_mac, expected_mac, self._pseudo_header(seq, content_type, version, len(ciphertext)))
        # MAC first: nothing about a forged record's padding is ever computed, so there is no oracle.
        if not _hmac_compare.compare_digest(expected_mac, received_mac):
            if notes is not None:
                notes.failed = Check.MAC_BEFORE_DECRYPTION
            raise BadRecordMac("bad record MAC")
        decryptor = self._aes_cbc(ciphertext[:iv_length]).decryptor()
        padded = decryptor.update(ciphertext[iv_length:]) + decryptor.finalize()
        padding_length = padded[-1]
        padding_good = padding_length + 1 <= len(padded) and padded[-(padding_length + 1) :] == bytes(
            [padding_length]
        ) * (padding_length + 1)
        if notes is not None:
            notes.padded(padded, len(padded) - padding_length - 1, 0, padding_length, padding_good)
        if not padding_good:
            # Only the MAC key holder can produce this record, so this is a broken peer, not an attack.
            if notes is not None:
                notes.failed = Check.AUTHENTICATED_PADDING
            raise BadRecordMac("bad CBC padding in an authenticated record")
        return padded[: -(padding_length + 1)]


# -- one endpoint's record layer ------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    """A record after unprotection: its content type and plaintext, the record as it arrived, and
    whether it was protected."""

    content_type: int
    data: bytes
    record: Record = field(compare=False, repr=False)
    encrypted: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Sent:
    """One record queued for the wire: its bytes, the plaintext it carries, and whether it is protected."""

    wire: bytes
    plaintext: bytes
    encrypted: bool


class RecordLayer:
    """Records in and out for one endpoint, switching protection at ChangeCipherSpec (sans-I/O).

    The handshake sets ``pending_read`` / ``pending_write`` once it has the key block;
    :meth:`activate_pending_read` / :meth:`activate_pending_write` make a pending protection current
    and restart that direction's sequence number.  :class:`~handshake_lib.tls.connection.TLSConnection`
    uses the step-by-step methods (:meth:`next_record`, :meth:`unprotect`, :meth:`records_for`): it puts
    each record in its transcript before checking it, and consults its state table between reading a
    ChangeCipherSpec and switching keys (:meth:`activate_pending_read`, :meth:`activate_pending_write`).

    ``fragment_size`` is the most plaintext we put in one record: 2^14, the limit, by default.  A
    smaller one cuts handshake messages across records, which every peer must reassemble (RFC 5246
    section 6.2.1), and shows in a trace what a record boundary is and is not.
    """

    def __init__(self, version: int = ProtocolVersion.TLS1_2, *, fragment_size: int = MAX_PLAINTEXT_LENGTH) -> None:
        if not 1 <= fragment_size <= MAX_PLAINTEXT_LENGTH:
            raise ValueError(f"fragment_size must be between 1 and {MAX_PLAINTEXT_LENGTH} bytes")
        self.version = version
        self.fragment_size = fragment_size
        self._reader = RecordReader()
        self.read_protection: RecordProtection | None = None
        self.write_protection: RecordProtection | None = None
        self.pending_read: RecordProtection | None = None
        self.pending_write: RecordProtection | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not make a whole record yet."""
        return self._reader.buffered

    # -- incoming -------------------------------------------------------------------------------
    def extend(self, data: bytes) -> None:
        """Add bytes from the peer without reading records yet (see :meth:`next_record`)."""
        self._reader.extend(data)

    def next_record(self) -> Record | None:
        """The next whole record as it arrived (still protected, if it is), or None if more bytes are needed."""
        return self._reader.next_record()

    @property
    def read_protected(self) -> bool:
        return self.read_protection is not None

    def unprotect(self, record: Record) -> Received:
        """Check and decrypt ``record`` with the current read protection (plaintext records pass as they are)."""
        if self.read_protection is None:
            return Received(record.content_type, record.fragment, record, encrypted=False)
        return Received(record.content_type, self.read_protection.unprotect(record), record, encrypted=True)

    def activate_pending_read(self) -> None:
        """The peer's ChangeCipherSpec: its next records are protected with the pending keys."""
        if self.pending_read is None:
            raise UnexpectedMessage("ChangeCipherSpec before the keys were agreed")
        self.read_protection, self.pending_read = self.pending_read, None
        self.read_protection.sequence_number = 0
        self._reader.protected = True

    # -- outgoing -------------------------------------------------------------------------------
    def records_for(self, content_type: int, data: bytes) -> list[Sent]:
        """``data`` cut into records of at most ``fragment_size`` bytes, each protected if keys are active.

        Empty ``data`` makes one empty record (legal for application data; the caller decides).  Only
        handshake messages and application data are cut: an alert or a ChangeCipherSpec goes whole, because
        OpenSSL refuses a fragmented alert (as TLS 1.3 does, RFC 8446 section 5.1), and so do we.
        """
        cut = content_type in (ContentType.handshake, ContentType.application_data)
        size = self.fragment_size if cut else MAX_PLAINTEXT_LENGTH
        chunks = [data[start : start + size] for start in range(0, len(data), size)] or [b""]
        protection = self.write_protection
        if protection is None:
            return [Sent(encode_record(content_type, self.version, chunk), chunk, False) for chunk in chunks]
        return [Sent(protection.protect(content_type, self.version, chunk), chunk, True) for chunk in chunks]

    def activate_pending_write(self) -> None:
        """We sent ChangeCipherSpec: our next records are protected with the pending keys."""
        if self.pending_write is None:
            raise UnexpectedMessage("cannot send ChangeCipherSpec before the keys are agreed")
        self.write_protection, self.pending_write = self.pending_write, None
        self.write_protection.sequence_number = 0


# -- handshake messages across records ------------------------------------------------------------


def reassemble_handshake(fragments: Iterable[tuple[str, bytes]]) -> list[tuple[str, ReassembledMessage]]:
    """Every whole handshake message in ``fragments``, in the order each was completed, with its stream.

    ``fragments`` are (stream, plaintext of one handshake record) in arrival order, the stream being a
    direction such as ``"client->server"``: each stream has its own :class:`HandshakeReassembler`, as
    each side of a connection does.  A message still incomplete at the end is left out.
    """
    reassemblers: dict[str, HandshakeReassembler] = {}
    messages: list[tuple[str, ReassembledMessage]] = []
    for stream, fragment in fragments:
        reassembler = reassemblers.setdefault(stream, HandshakeReassembler())
        messages.extend((stream, message) for message in reassembler.feed(fragment))
    return messages


@dataclass(frozen=True)
class MessagePiece:
    """The bytes ``start:end`` of a handshake message of ``length`` bytes (header included) in one record.

    ``msg_type`` is None when not even the 4-byte header arrived (``length`` is then the header's).
    """

    msg_type: int | None
    start: int
    end: int
    length: int

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end == self.length


def message_pieces(fragments: Sequence[bytes]) -> list[tuple[MessagePiece, ...]]:
    """For each fragment of ONE handshake stream, the pieces of messages it carries (RFC 5246 section 6.2.1).

    The fragments go through a :class:`HandshakeReassembler` as a receiver's would; a message it still
    holds at the end (a transcript that stops mid-message) is described from its header, or as a cut
    header.
    """
    reassembler = HandshakeReassembler()
    bounds: list[tuple[int | None, int, int]] = []  # (type, first byte, one past the last) in the stream
    position = 0
    for fragment in fragments:
        for message in reassembler.feed(fragment):
            bounds.append((message.msg_type, position, position + len(message.raw)))
            position += len(message.raw)
    pending = reassembler.pending
    if pending:
        if len(pending) < HANDSHAKE_HEADER_LENGTH:
            bounds.append((None, position, position + HANDSHAKE_HEADER_LENGTH))
        else:
            total = HANDSHAKE_HEADER_LENGTH + int.from_bytes(pending[1:4], "big")
            bounds.append((pending[0], position, position + total))
    result, offset = [], 0
    for fragment in fragments:
        start, end = offset, offset + len(fragment)
        result.append(
            tuple(
                MessagePiece(kind, max(start, first) - first, min(end, last) - first, last - first)
                for kind, first, last in bounds
                if first < end and start < last
            )
        )
        offset = end
    return result
