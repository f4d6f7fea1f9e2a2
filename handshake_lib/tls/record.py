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
  message may span several records, and one record may hold several messages.
* :class:`RecordLayer` is one endpoint's records: the reader, and each direction's protection with the
  "pending state" of RFC 5246 section 6.1: the handshake installs the next protection as *pending*,
  and ChangeCipherSpec (sent or received) makes it *current* and restarts that direction's sequence
  number at 0.  It also cuts outgoing data into records (at most ``fragment_size`` bytes each).
  :class:`~handshake_lib.tls.connection.TLSConnection` runs on it, adding reassembly and its state table.
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

The keys, the hash and the sizes come from :class:`~handshake_lib.tls.suites.SuiteParams` and
:class:`~handshake_lib.tls.prf.KeyBlock`; AES, GCM and HMAC come from ``cryptography``.
"""

from __future__ import annotations

import hmac as _hmac_compare
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
    "RecordProtection",
    "encode_record",
    "sequence_number_nonce",
]

RECORD_HEADER_LENGTH = 5
MAX_PLAINTEXT_LENGTH = 1 << 14  # TLSPlaintext.length limit (RFC 5246 section 6.2.1)
MAX_CIPHERTEXT_LENGTH = (1 << 14) + 2048  # TLSCiphertext.length limit (section 6.2.3)
MAX_SEQUENCE_NUMBER = (1 << 64) - 1
HANDSHAKE_HEADER_LENGTH = 4


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

    def __init__(self, *, max_message_length: int = 1 << 17) -> None:
        self._buffer = bytearray()
        self._consumed = 0
        self.max_message_length = max_message_length

    @property
    def buffered(self) -> int:
        return len(self._buffer)

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


# -- protection ---------------------------------------------------------------------------------

RandomBytes = Callable[[int], bytes]
ExplicitNonce = Callable[[int], bytes]


def sequence_number_nonce(sequence_number: int) -> bytes:
    """The default GCM explicit nonce: the record's 64-bit sequence number (unique for each key)."""
    return sequence_number.to_bytes(8, "big")


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


@dataclass
class RecordProtection:
    """Protection of one direction of a connection: keys, sequence number, and the suite's construction.

    Build one per direction with :meth:`client_write` / :meth:`server_write` (or directly).  The client
    uses ``client_write`` to protect and ``server_write`` to unprotect; the server the other way round.
    ``random_bytes`` supplies CBC's per-record IVs and ``explicit_nonce`` GCM's (from the sequence
    number), so a test can make records reproducible.
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
        if self.params.is_aead:
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
        if len(fragment) > MAX_CIPHERTEXT_LENGTH:
            raise RecordOverflow(f"protected record of {len(fragment)} bytes (limit {MAX_CIPHERTEXT_LENGTH})")
        seq = self.sequence_number
        if seq > MAX_SEQUENCE_NUMBER:
            raise ProtocolError("sequence number exhausted; the connection must be renegotiated")
        if self.params.is_aead:
            plaintext = self._gcm_open(seq, content_type, version, fragment)
        elif self.encrypt_then_mac:
            plaintext = self._cbc_etm_open(seq, content_type, version, fragment)
        else:
            plaintext = self._cbc_open(seq, content_type, version, fragment)
        if len(plaintext) > MAX_PLAINTEXT_LENGTH:
            raise RecordOverflow(f"record decrypted to {len(plaintext)} bytes (limit {MAX_PLAINTEXT_LENGTH})")
        self.sequence_number = seq + 1
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
        """seq_num (8) + type (1) + version (2) + length (2): the MAC input prefix and the GCM additional data."""
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

    def _gcm_open(self, seq: int, content_type: int, version: int, fragment: bytes) -> bytes:
        explicit_length = self.params.record_iv_length
        plaintext_length = len(fragment) - explicit_length - self.params.tag_length
        if plaintext_length < 0:
            raise BadRecordMac("record too short for an explicit nonce and a GCM tag")
        nonce = self.fixed_iv + fragment[:explicit_length]
        additional_data = self._pseudo_header(seq, content_type, version, plaintext_length)
        try:
            return AESGCM(self.key).decrypt(nonce, fragment[explicit_length:], additional_data)
        except InvalidTag:
            raise BadRecordMac("GCM tag did not verify") from None

    # -- AES-CBC, MAC-then-encrypt --------------------------------------------------------------
    def _cbc_seal(self, seq: int, content_type: int, version: int, plaintext: bytes) -> bytes:
        mac = self._mac(seq, content_type, version, plaintext)
        body = plaintext + mac
        iv = self.random_bytes(self.params.record_iv_length)
        encryptor = self._aes_cbc(iv).encryptor()
        return iv + encryptor.update(body + self._padding(len(body))) + encryptor.finalize()

    def _cbc_open(self, seq: int, content_type: int, version: int, fragment: bytes) -> bytes:
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
        good &= int(_hmac_compare.compare_digest(expected_mac, received_mac))
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

    def _cbc_etm_open(self, seq: int, content_type: int, version: int, fragment: bytes) -> bytes:
        block = self.params.block_length
        mac_length = self.params.mac_length
        iv_length = self.params.record_iv_length
        ciphertext, received_mac = fragment[:-mac_length], fragment[-mac_length:]
        if len(fragment) < mac_length + iv_length + block or (len(ciphertext) - iv_length) % block:
            raise BadRecordMac("CBC record has an impossible length")
        expected_mac = self._mac(seq, content_type, version, ciphertext)
        # MAC first: nothing about a forged record's padding is ever computed, so there is no oracle.
        if not _hmac_compare.compare_digest(expected_mac, received_mac):
            raise BadRecordMac("bad record MAC")
        decryptor = self._aes_cbc(ciphertext[:iv_length]).decryptor()
        padded = decryptor.update(ciphertext[iv_length:]) + decryptor.finalize()
        padding_length = padded[-1]
        if padding_length + 1 > len(padded) or padded[-(padding_length + 1) :] != bytes([padding_length]) * (
            padding_length + 1
        ):
            # Only the MAC key holder can produce this record, so this is a broken peer, not an attack.
            raise BadRecordMac("bad CBC padding in an authenticated record")
        return padded[: -(padding_length + 1)]


# -- one endpoint's record layer ------------------------------------------------------------------

CHANGE_CIPHER_SPEC_BODY = b"\x01"


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
    ChangeCipherSpec and switching keys.  :meth:`receive` and :meth:`send` do the whole round for callers
    that have no state table (tests, lessons).

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

    def receive(self, data: bytes) -> list[Received]:
        """Feed bytes from the peer; returns every complete record, switching keys at ChangeCipherSpec."""
        self.extend(data)
        received = []
        while (record := self.next_record()) is not None:
            received.append(self.unprotect(record))
            if record.content_type == ContentType.change_cipher_spec:
                if received[-1].data != CHANGE_CIPHER_SPEC_BODY:
                    raise DecodeError("ChangeCipherSpec must be the single byte 1", field="change_cipher_spec")
                self.activate_pending_read()
        return received

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

    def send(self, content_type: int, data: bytes) -> bytes:
        """Bytes to send for ``data`` (see :meth:`records_for`); a ChangeCipherSpec switches keys after it."""
        if content_type == ContentType.change_cipher_spec and self.pending_write is None:
            raise UnexpectedMessage("cannot send ChangeCipherSpec before the keys are agreed")
        out = b"".join(sent.wire for sent in self.records_for(content_type, data))
        if content_type == ContentType.change_cipher_spec:
            self.activate_pending_write()
        return out

    def send_change_cipher_spec(self) -> bytes:
        return self.send(ContentType.change_cipher_spec, CHANGE_CIPHER_SPEC_BODY)
