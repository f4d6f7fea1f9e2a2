"""The SSH binary packet protocol (RFC 4253 section 6), one direction at a time (sans-I/O).

Theory of operation
-------------------
After the identification lines, everything SSH sends is a *packet*::

    uint32    packet_length     bytes that follow, MAC not counted
    byte      padding_length    at least 4
    byte[n1]  payload           n1 = packet_length - padding_length - 1; the first byte is the message number
    byte[n2]  random padding    n2 = padding_length
    byte[m]   mac               m bytes: the MAC or AEAD tag of the direction's protection (none at first)

The padding makes ``packet_length || padding_length || payload || padding`` a multiple of the cipher's
block size or 8, whichever is larger (without the 4 length bytes for EtM and AEAD ciphers, whose length is
outside the blocks: OpenSSH's rule, which every peer follows).  Each direction counts its packets in
a 32-bit *sequence number* that starts at 0 with the first packet, is never sent, wraps at 2^32 and feeds
every MAC; strict key exchange (``kex-strict-*-v00@openssh.com``, the Terrapin countermeasure) resets it
to 0 at each NEWKEYS (:meth:`PacketDecoder.reset_sequence_number`).

:class:`PacketEncoder` builds packets (padding from an injected ``random``); :class:`PacketDecoder`
takes bytes as they arrive and hands back whole payloads.  SSH_MSG_NEWKEYS switches a direction's
protection from the *next* packet on: the core calls ``set_protection`` once it has sent (encoder)
or read (decoder) NEWKEYS; bytes of the next packet already buffered are opened with the new keys,
because the decoder opens nothing before it is asked for the next packet.

Limits (docs/limits.md, "SSH"):

* ``packet_length`` above ``max_packet_size`` (default 256 KiB, OpenSSH's ``PACKET_MAX_SIZE``; RFC 4253
  section 6.1 requires at least 35,000) is refused as soon as the length is known (the first 4 to 16
  bytes), before any of the body is buffered: :class:`~handshake_lib.errors.PacketTooLarge` in the
  clear.  Under encryption an out-of-range or misaligned length is
  :class:`~handshake_lib.errors.BadPacketMac`: it is what a flipped bit or a wrong key looks like, and
  OpenSSH too treats it as corruption.
* ``packet_length`` below 5, or not block aligned: DecodeError (in the clear).
* ``padding_length`` below 4, or leaving no payload (the message number must be there): DecodeError,
  checked after the MAC (before it, they would be guesses about noise).

:func:`explain` opens one packet with every part annotated (length, padding length, payload, padding,
MAC) through the same function the decoder uses, and never raises: the verdict is in the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BadPacketMac, DecodeError, EncodeError, PacketTooLarge, ProtocolError
from ..wire import Reader, Span
from .protection import LENGTH_FIELD, NoProtection, PacketProtection

__all__ = [
    "MAX_PACKET_SIZE",
    "RFC_MIN_PACKET_SIZE",
    "MIN_PADDING",
    "Packet",
    "OpenedPacket",
    "PacketEncoder",
    "PacketDecoder",
    "explain",
    "padding_length_for",
]

MAX_PACKET_SIZE = 256 * 1024  # OpenSSH's PACKET_MAX_SIZE: the largest packet_length we accept
RFC_MIN_PACKET_SIZE = 35000  # RFC 4253 section 6.1: every implementation must take packets this large
MIN_PADDING = 4
SEQUENCE_MODULUS = 1 << 32


def padding_length_for(payload_length: int, protection: PacketProtection) -> int:
    """How many padding bytes a payload needs: at least 4, block aligned (the module docstring's rule)."""
    align = max(8, protection.block_size)
    covered = 1 + payload_length + (0 if protection.length_in_clear_block else LENGTH_FIELD)
    padding = align - covered % align
    if padding < MIN_PADDING:
        padding += align
    return padding


@dataclass(frozen=True)
class Packet:
    """One packet as it was on the wire (``wire``) and in clear (``packet``: length, padding length,
    payload, padding), with the sequence number it had.  The two have the same length up to the MAC,
    so :attr:`spans` annotate both."""

    sequence_number: int
    wire: bytes
    packet: bytes
    padding_length: int
    tag_length: int = 0
    protection: str = "none"

    @property
    def packet_length(self) -> int:
        return len(self.packet) - LENGTH_FIELD

    @property
    def payload(self) -> bytes:
        return self.packet[LENGTH_FIELD + 1 : len(self.packet) - self.padding_length]

    @property
    def padding(self) -> bytes:
        return self.packet[len(self.packet) - self.padding_length :]

    @property
    def mac(self) -> bytes:
        return self.wire[len(self.packet) :]

    @property
    def message_number(self) -> int:
        return self.payload[0]

    @property
    def spans(self) -> list[Span]:
        """The parts of the packet, annotated (offsets into :attr:`wire` and :attr:`packet` alike)."""
        spans, _ = _parse_clear(self.packet, annotate=True, tag_length=self.tag_length, protection=self.protection)
        return spans


@dataclass
class OpenedPacket:
    """One packet opened by :func:`explain`: what each byte is, and the verdict.

    ``failed`` names the check that refused it (``"length"``, ``"mac"``, ``"padding"``, ``"truncated"``)
    or is empty; ``error`` is the exception a connection would have raised.  ``packet_length`` is the
    length as read (decrypted if it was encrypted), even when it was refused.
    """

    wire: bytes
    protection: str
    sequence_number: int
    packet: Packet | None = None
    packet_length: int | None = None
    tag_received: bytes = b""
    tag_expected: bytes = b""
    failed: str = ""
    error: ProtocolError | None = None
    leftover: int = 0  # bytes after the packet the length announced

    @property
    def accepted(self) -> bool:
        return self.packet is not None and self.error is None

    @property
    def spans(self) -> list[Span]:
        if self.packet is not None:
            return self.packet.spans
        if self.packet_length is not None:
            return [Span(0, LENGTH_FIELD, "packet.packet_length", f"{self.packet_length} (refused: {self.failed})")]
        return []

    @property
    def payload(self) -> bytes | None:
        return self.packet.payload if self.packet is not None else None


def _parse_clear(
    packet: bytes, *, annotate: bool, tag_length: int = 0, protection: str = "none"
) -> tuple[list[Span], int]:
    """Read a clear packet's fields (the one reader of them) -> (spans, padding_length).

    The length was checked before the packet was complete; here the padding length and the payload.
    """
    reader = Reader(packet, path=("packet",), annotate=annotate)
    length = reader.u32("packet_length", lambda n: f"{n} bytes follow (padding_length, payload, padding)")
    padding_length = reader.u8("padding_length", lambda n: f"{n} bytes of random padding at the end")
    if padding_length < MIN_PADDING:
        raise DecodeError(
            f"padding_length {padding_length} is below {MIN_PADDING}", field="packet.padding_length", offset=4
        )
    payload_length = length - 1 - padding_length
    if payload_length < 1:
        raise DecodeError(
            f"padding_length {padding_length} leaves no payload in a packet of {length}",
            field="packet.padding_length",
            offset=4,
        )
    reader.raw(payload_length, "payload", f"{payload_length} bytes, message number {packet[5]}")
    reader.raw(padding_length, "padding", "random bytes, ignored")
    spans = reader.spans
    if annotate and tag_length:
        spans.append(Span(len(packet), tag_length, "packet.mac", f"MAC or tag ({protection})", 1))
    return spans, padding_length


def _check_length(length: int, protection: PacketProtection, max_packet_size: int) -> None:
    align = max(8, protection.block_size)
    covered = length if protection.length_in_clear_block else length + LENGTH_FIELD
    if length > max_packet_size:
        problem = f"packet_length {length} is above the limit of {max_packet_size}"
    elif length < 5:
        problem = f"packet_length {length} is below 5"
    elif covered % align:
        problem = f"packet_length {length} is not aligned to {align}-byte blocks"
    else:
        return
    if protection.encrypted:
        raise BadPacketMac(f"{problem}: the length decrypted to noise (tampered, or the wrong keys)")
    if length > max_packet_size:
        raise PacketTooLarge(problem)
    raise DecodeError(problem, field="packet.packet_length", offset=0)


def _open_one(
    data: bytes | bytearray,
    protection: PacketProtection,
    sequence_number: int,
    max_packet_size: int,
    notes: OpenedPacket | None = None,
    advance: bool = True,
) -> tuple[Packet, int] | None:
    """The one opener behind :class:`PacketDecoder` and :func:`explain`.

    Returns the first packet of ``data`` and how many bytes it took, or None while it is incomplete.
    ``notes`` (explain only) collects what was learnt before a check failed.
    """
    header_length = protection.header_length
    if len(data) < header_length:
        return None
    length = protection.packet_length(sequence_number, bytes(data[:header_length]))
    if notes is not None:
        notes.packet_length = length
        notes.failed = "length"
    _check_length(length, protection, max_packet_size)
    total = LENGTH_FIELD + length + protection.tag_length
    if len(data) < total:
        return None
    wire = bytes(data[:total])
    if notes is not None:
        notes.failed = "mac"
    clear, received, expected = protection.open(sequence_number, wire, advance=advance)
    if notes is not None:
        notes.tag_received, notes.tag_expected, notes.failed = received, expected, "padding"
    _, padding_length = _parse_clear(clear, annotate=False)
    if notes is not None:
        notes.failed = ""
    packet = Packet(sequence_number, wire, clear, padding_length, protection.tag_length, protection.name)
    return packet, total


def explain(
    wire: bytes,
    protection: PacketProtection | None = None,
    sequence_number: int = 0,
    *,
    max_packet_size: int = MAX_PACKET_SIZE,
) -> OpenedPacket:
    """Open one packet as a decoder would and say what each byte is and which check failed (never raises).

    The protection's position (AES-CTR counter, GCM invocation counter) is used, not moved: explain a
    packet before a decoder reads it, or with a protection made for the purpose.
    """
    protection = protection or NoProtection()
    notes = OpenedPacket(bytes(wire), protection.name, sequence_number)
    try:
        result = _open_one(wire, protection, sequence_number, max_packet_size, notes, advance=False)
        if result is None:
            notes.failed = "truncated"
            raise DecodeError(f"{len(wire)} bytes are not a whole packet", field="packet", offset=len(wire))
        notes.packet, used = result
        notes.leftover = len(wire) - used
    except ProtocolError as error:
        notes.error = error
    return notes


class PacketEncoder:
    """Builds one direction's packets: padding, protection, sequence number."""

    def __init__(
        self,
        *,
        random: Callable[[int], bytes] = os.urandom,
        protection: PacketProtection | None = None,
        max_packet_size: int = MAX_PACKET_SIZE,
    ) -> None:
        self._random = random
        self.protection: PacketProtection = protection or NoProtection()
        self.max_packet_size = max_packet_size
        self.sequence_number = 0

    def set_protection(self, protection: PacketProtection) -> None:
        """Protect every packet from the next one on (call it right after sending NEWKEYS)."""
        self.protection = protection

    def reset_sequence_number(self) -> None:
        """Strict key exchange: the packet after NEWKEYS is number 0 again."""
        self.sequence_number = 0

    def encode_packet(self, payload: bytes) -> Packet:
        """``payload`` as a :class:`Packet` (its ``wire`` is what to send); the sequence number advances."""
        if not payload:
            raise EncodeError("an SSH payload starts with its message number; it cannot be empty")
        padding_length = padding_length_for(len(payload), self.protection)
        packet_length = 1 + len(payload) + padding_length
        if packet_length > self.max_packet_size:
            raise EncodeError(f"packet_length {packet_length} is above the limit of {self.max_packet_size}")
        padding = self._random(padding_length)
        if len(padding) != padding_length:
            raise EncodeError(f"random gave {len(padding)} bytes, {padding_length} were asked for")
        clear = packet_length.to_bytes(4, "big") + bytes([padding_length]) + bytes(payload) + padding
        seq = self.sequence_number
        wire = self.protection.seal(seq, clear)
        self.sequence_number = (seq + 1) % SEQUENCE_MODULUS
        return Packet(seq, wire, clear, padding_length, self.protection.tag_length, self.protection.name)

    def encode(self, payload: bytes) -> bytes:
        """The bytes to send for ``payload``."""
        return self.encode_packet(payload).wire


class PacketDecoder:
    """Reads one direction's packets from a byte stream: ``feed`` bytes, then ``next_payload`` until None.

    After an error the decoder is finished: every later call raises the same error (the connection
    must end with the error's disconnect reason).  ``buffered`` is what it holds; it never holds more
    than what was fed and not yet returned, and refuses a too-large packet from its first bytes.
    """

    def __init__(self, *, max_packet_size: int = MAX_PACKET_SIZE, protection: PacketProtection | None = None) -> None:
        if max_packet_size < RFC_MIN_PACKET_SIZE:
            raise ValueError(f"max_packet_size must be at least {RFC_MIN_PACKET_SIZE} (RFC 4253 section 6.1)")
        self.max_packet_size = max_packet_size
        self.protection: PacketProtection = protection or NoProtection()
        self.sequence_number = 0
        self._buffer = bytearray()
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Bytes from the peer, in any pieces."""
        if self._error is not None:
            raise self._error
        self._buffer += data

    def set_protection(self, protection: PacketProtection) -> None:
        """Open every packet from the next one on with ``protection`` (right after reading NEWKEYS)."""
        self.protection = protection

    def reset_sequence_number(self) -> None:
        """Strict key exchange: the packet after NEWKEYS is number 0 again."""
        self.sequence_number = 0

    def next_packet(self) -> Packet | None:
        """The next whole packet, or None until its last byte has arrived."""
        if self._error is not None:
            raise self._error
        try:
            result = _open_one(self._buffer, self.protection, self.sequence_number, self.max_packet_size)
        except ProtocolError as error:
            self._error = error
            raise
        if result is None:
            return None
        packet, used = result
        del self._buffer[:used]
        self.sequence_number = (self.sequence_number + 1) % SEQUENCE_MODULUS
        return packet

    def next_payload(self) -> bytes | None:
        """The next packet's payload (message number first), or None until it is complete."""
        packet = self.next_packet()
        return packet.payload if packet is not None else None

    def explain(self, wire: bytes) -> OpenedPacket:
        """:func:`explain` with this decoder's protection, sequence number and limit (nothing moves)."""
        return explain(wire, self.protection, self.sequence_number, max_packet_size=self.max_packet_size)

