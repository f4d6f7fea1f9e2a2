"""TCP segments (RFC 9293 section 3.1): decode with annotations, encode with the checksum.

Theory of operation
-------------------
A TCP header is 20 fixed bytes, then 0 to 40 bytes of options, then the payload::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |          Source Port          |       Destination Port        |
    |                        Sequence Number                        |
    |                    Acknowledgment Number                      |
    |  DOffset | Rsrvd |C|E|U|A|P|R|S|F|            Window          |
    |           Checksum            |         Urgent Pointer        |
    |                      [Options]          ...                   |

``DOffset`` counts the header in 32-bit words, so the options area is padded to a multiple of 4
bytes.  Senders pad differently (Linux puts NOPs *before* options to align them; others end the list
with EOL and zeros), so we keep every NOP and the EOL's trailing bytes as decoded options: encoding a
decoded segment gives back exactly the bytes that were captured, checksum included.

The checksum is the 16-bit ones' complement of the ones' complement sum of a *pseudo-header* (the IP
addresses, protocol 6 and the TCP length), the TCP header (with the checksum field as zero) and the
payload.  It covers the IP addresses so that a segment delivered to the wrong host is rejected.
``TCPSegment.checksum = None`` means "compute it when encoding"; any other value is written as is, so
a learner can send a segment with a wrong checksum on purpose.

Checksum offload: on the loopback interface Linux never completes the checksum (no wire, no
corruption), so tcpdump on ``lo`` records only the pseudo-header sum the kernel prepared for the
"hardware".  :func:`checksum_status` recognises that case as ``PARTIAL`` instead of calling it wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, IntFlag
from typing import ClassVar

from ..errors import DecodeError, EncodeError
from ..wire import Reader, Span

__all__ = [
    "Flags",
    "TCPOption",
    "EOL",
    "NOP",
    "MSS",
    "WindowScale",
    "SACKPermitted",
    "SACK",
    "Timestamps",
    "UnknownOption",
    "TCPSegment",
    "IPAddress",
    "ChecksumStatus",
    "tcp_checksum",
    "verify_checksum",
    "pseudo_header",
    "pseudo_header_sum",
    "checksum_status",
    "describe_options",
    "TCP_PROTOCOL_NUMBER",
    "MIN_HEADER_LENGTH",
    "MAX_OPTIONS_LENGTH",
]

TCP_PROTOCOL_NUMBER = 6
MIN_HEADER_LENGTH = 20
MAX_OPTIONS_LENGTH = 40  # data offset is 4 bits: at most 15 words = 60 bytes of header

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Flags(IntFlag):
    """The control bits, in the order of their bit values (RFC 9293 section 3.1; ECE/CWR: RFC 3168)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80

    def describe(self) -> str:
        """``"SYN, ACK"``: the set bits in the order tools such as Wireshark print them."""
        names = [flag.name for flag in _FLAG_DISPLAY_ORDER if flag in self and flag.name]
        return ", ".join(names) if names else "none"

    @property
    def short(self) -> str:
        """``"SYN,ACK"``, the compact form used in labels and state diagrams."""
        return self.describe().replace(", ", ",")


_FLAG_DISPLAY_ORDER = (Flags.CWR, Flags.ECE, Flags.URG, Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.ACK)


# -- options ------------------------------------------------------------------------------------
class TCPOption:
    """Base class of TCP options.  Subclasses are dataclasses with mirrored decode/encode."""

    kind: ClassVar[int]
    name: ClassVar[str]

    def encode(self) -> bytes:
        raise NotImplementedError

    def explain(self) -> str:
        raise NotImplementedError


@dataclass
class EOL(TCPOption):
    """End of option list (kind 0).  ``padding`` holds whatever followed it up to the data offset."""

    padding: bytes = b""
    kind: ClassVar[int] = 0
    name: ClassVar[str] = "eol"

    def encode(self) -> bytes:
        return b"\x00" + self.padding

    def explain(self) -> str:
        return "end of option list" + (f", then {len(self.padding)} padding bytes" if self.padding else "")


@dataclass
class NOP(TCPOption):
    """No operation (kind 1): one byte, used to align the next option on a 4-byte boundary."""

    kind: ClassVar[int] = 1
    name: ClassVar[str] = "nop"

    def encode(self) -> bytes:
        return b"\x01"

    def explain(self) -> str:
        return "no-operation (aligns the next option)"


@dataclass
class MSS(TCPOption):
    """Maximum segment size (kind 2, RFC 9293 section 3.7.1): the largest payload this side accepts."""

    value: int = 1460
    kind: ClassVar[int] = 2
    name: ClassVar[str] = "mss"

    def encode(self) -> bytes:
        _check_uint(self.value, 2, "MSS")
        return bytes((2, 4)) + self.value.to_bytes(2, "big")

    def explain(self) -> str:
        return f"maximum segment size {self.value} bytes"


@dataclass
class WindowScale(TCPOption):
    """Window scale (kind 3, RFC 7323 section 2): windows from this sender are shifted left by ``shift``."""

    shift: int = 7
    kind: ClassVar[int] = 3
    name: ClassVar[str] = "window_scale"

    def encode(self) -> bytes:
        _check_uint(self.shift, 1, "window scale shift")
        return bytes((3, 3, self.shift))

    def explain(self) -> str:
        # RFC 7323: a shift above 14 must be treated as 14 (windows cannot exceed 2**30).
        effective = min(self.shift, 14)
        note = " (above 14: treated as 14)" if self.shift > 14 else ""
        return f"window scale: shift {self.shift}, multiply windows by {1 << effective}{note}"


@dataclass
class SACKPermitted(TCPOption):
    """SACK permitted (kind 4, RFC 2018): this side understands selective acknowledgements."""

    kind: ClassVar[int] = 4
    name: ClassVar[str] = "sack_permitted"

    def encode(self) -> bytes:
        return bytes((4, 2))

    def explain(self) -> str:
        return "selective acknowledgements permitted"


@dataclass
class SACK(TCPOption):
    """Selective acknowledgement (kind 5, RFC 2018): blocks of data received beyond ``ack``."""

    blocks: list[tuple[int, int]] = field(default_factory=list)
    kind: ClassVar[int] = 5
    name: ClassVar[str] = "sack"

    def encode(self) -> bytes:
        body = b""
        for left, right in self.blocks:
            _check_uint(left, 4, "SACK left edge")
            _check_uint(right, 4, "SACK right edge")
            body += left.to_bytes(4, "big") + right.to_bytes(4, "big")
        return bytes((5, 2 + len(body))) + body

    def explain(self) -> str:
        return "selective ack of " + ", ".join(f"{left}-{right}" for left, right in self.blocks)


@dataclass
class Timestamps(TCPOption):
    """Timestamps (kind 8, RFC 7323 section 3): RTT measurement and protection against wrapped sequences."""

    ts_val: int = 0
    ts_ecr: int = 0
    kind: ClassVar[int] = 8
    name: ClassVar[str] = "timestamps"

    def encode(self) -> bytes:
        _check_uint(self.ts_val, 4, "TSval")
        _check_uint(self.ts_ecr, 4, "TSecr")
        return bytes((8, 10)) + self.ts_val.to_bytes(4, "big") + self.ts_ecr.to_bytes(4, "big")

    def explain(self) -> str:
        return f"timestamps TSval={self.ts_val} TSecr={self.ts_ecr}"


@dataclass
class UnknownOption(TCPOption):
    """Any other option, kept as its raw bytes (after kind and length) so that it re-encodes exactly."""

    option_kind: int = 254
    data: bytes = b""
    kind: ClassVar[int] = -1
    name: ClassVar[str] = "unknown"

    def encode(self) -> bytes:
        _check_uint(self.option_kind, 1, "option kind")
        if len(self.data) + 2 > 255:
            raise EncodeError(f"option kind {self.option_kind} has {len(self.data)} data bytes (at most 253)")
        return bytes((self.option_kind, 2 + len(self.data))) + self.data

    def explain(self) -> str:
        known = _OTHER_OPTION_NAMES.get(self.option_kind, "unknown option")
        return f"{known} (kind {self.option_kind}), {len(self.data)} data bytes"


# Options we recognise by name but keep as raw bytes (IANA "TCP Option Kind Numbers").
_OTHER_OPTION_NAMES = {
    19: "TCP MD5 signature (RFC 2385)",
    28: "user timeout (RFC 5482)",
    29: "TCP authentication option (RFC 5925)",
    30: "multipath TCP (RFC 8684)",
    34: "TCP Fast Open cookie (RFC 7413)",
    253: "experimental (RFC 4727)",
    254: "experimental (RFC 4727)",
}

# kind -> the exact total length (kind and length bytes included) RFC 9293 and RFC 7323 require
_FIXED_LENGTH = {MSS.kind: 4, WindowScale.kind: 3, SACKPermitted.kind: 2, Timestamps.kind: 10}


def _check_uint(value: int, size: int, what: str) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise EncodeError(f"{what} {value!r} does not fit in {size} unsigned byte(s)")


def _decode_options(reader: Reader) -> list[TCPOption]:
    """Read the options area (the sub-Reader holds exactly data_offset*4 - 20 bytes)."""
    options: list[TCPOption] = []
    while not reader.at_end:
        start = reader.offset
        kind = reader.data[reader.position]
        if kind == EOL.kind:
            with reader.group("eol", "end of option list"):
                reader.u8("kind", "0: end of option list")
                padding = reader.rest("padding", "padding after the end of the option list")
            options.append(EOL(padding))
            continue
        if kind == NOP.kind:
            reader.u8("nop", NOP().explain())
            options.append(NOP())
            continue
        if reader.remaining < 2:
            raise DecodeError(f"option kind {kind} is truncated: no length byte", field="tcp.options", offset=start)
        length = reader.data[reader.position + 1]
        if length < 2:
            raise DecodeError(f"option kind {kind} has length {length} (at least 2)", field="tcp.options", offset=start)
        if length > reader.remaining:
            raise DecodeError(
                f"option kind {kind} claims {length} bytes but only {reader.remaining} remain in the options",
                field="tcp.options",
                offset=start,
            )
        expected = _FIXED_LENGTH.get(kind)
        if expected is not None and length != expected:
            raise DecodeError(
                f"option kind {kind} must be {expected} bytes long, not {length}", field="tcp.options", offset=start
            )
        if kind == SACK.kind and (length - 2) % 8:
            raise DecodeError(f"SACK option length {length} is not 2 + 8n", field="tcp.options", offset=start)
        options.append(_decode_option(reader, kind, length))
    return options


def _decode_option(reader: Reader, kind: int, length: int) -> TCPOption:
    name = {
        MSS.kind: MSS.name,
        WindowScale.kind: WindowScale.name,
        SACKPermitted.kind: SACKPermitted.name,
        SACK.kind: SACK.name,
        Timestamps.kind: Timestamps.name,
    }.get(kind, f"kind_{kind}")
    with reader.group(name) as sub:
        sub.u8("kind", f"option kind {kind}")
        sub.u8("length", f"{length} bytes including kind and length")
        option: TCPOption
        if kind == MSS.kind:
            option = MSS(sub.u16("value", lambda value: f"{value} bytes"))
        elif kind == WindowScale.kind:
            option = WindowScale(sub.u8("shift", lambda shift: f"windows are multiplied by 2**{min(shift, 14)}"))
        elif kind == SACKPermitted.kind:
            option = SACKPermitted()
        elif kind == SACK.kind:
            blocks = []
            for index in range((length - 2) // 8):
                left = sub.u32(f"block{index}.left", "first sequence number received")
                right = sub.u32(f"block{index}.right", "sequence number after the last one received")
                blocks.append((left, right))
            option = SACK(blocks)
        elif kind == Timestamps.kind:
            ts_val = sub.u32("ts_val", "sender's timestamp clock")
            ts_ecr = sub.u32("ts_ecr", "echo of the peer's latest TSval (0 in a SYN)")
            option = Timestamps(ts_val, ts_ecr)
        else:
            option = UnknownOption(kind, sub.raw(length - 2, "data", "raw option data"))
    group_index = _last_group_index(reader.spans, reader.offset - length)
    reader.spans[group_index] = _with_meaning(reader.spans[group_index], option.explain())
    return option


def _last_group_index(spans: list[Span], offset: int) -> int:
    for index in range(len(spans) - 1, -1, -1):
        if spans[index].is_group and spans[index].offset == offset:
            return index
    raise AssertionError("option group span not found")  # pragma: no cover - Reader.group always records it


def _with_meaning(span: Span, meaning: str) -> Span:
    return Span(span.offset, span.length, span.field, meaning, span.depth, span.is_group)


# -- checksum -----------------------------------------------------------------------------------
def _address(value: IPAddress | str | bytes) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError as error:
        raise EncodeError(f"{value!r} is not an IPv4 or IPv6 address") from error


def pseudo_header(src_ip: IPAddress | str, dst_ip: IPAddress | str, tcp_length: int) -> bytes:
    """The bytes the checksum covers before the segment (RFC 9293 section 3.1; IPv6: RFC 8200 section 8.1)."""
    source, destination = _address(src_ip), _address(dst_ip)
    if source.version != destination.version:
        raise EncodeError(f"cannot mix IPv{source.version} and IPv{destination.version} addresses")
    if source.version == 4:
        _check_uint(tcp_length, 2, "TCP length")
        return source.packed + destination.packed + bytes((0, TCP_PROTOCOL_NUMBER)) + tcp_length.to_bytes(2, "big")
    _check_uint(tcp_length, 4, "TCP length")
    return source.packed + destination.packed + tcp_length.to_bytes(4, "big") + bytes((0, 0, 0, TCP_PROTOCOL_NUMBER))


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"  # an odd last byte is padded with zero on the right
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:  # fold the carries back in (end-around carry)
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_header_sum(src_ip: IPAddress | str, dst_ip: IPAddress | str, tcp_length: int) -> int:
    """The folded sum of the pseudo-header alone: what Linux leaves in the checksum field for offload."""
    return _ones_complement_sum(pseudo_header(src_ip, dst_ip, tcp_length))


def tcp_checksum(src_ip: IPAddress | str, dst_ip: IPAddress | str, segment_bytes: bytes) -> int:
    """The checksum ``segment_bytes`` should carry (its own checksum field is ignored: treated as zero)."""
    if len(segment_bytes) < MIN_HEADER_LENGTH:
        raise EncodeError(f"a TCP segment is at least {MIN_HEADER_LENGTH} bytes, not {len(segment_bytes)}")
    zeroed = bytes(segment_bytes[:16]) + b"\x00\x00" + bytes(segment_bytes[18:])
    return ~_ones_complement_sum(pseudo_header(src_ip, dst_ip, len(segment_bytes)) + zeroed) & 0xFFFF


def verify_checksum(src_ip: IPAddress | str, dst_ip: IPAddress | str, segment_bytes: bytes) -> bool:
    """True when the sum over pseudo-header and segment, checksum included, is all ones (RFC 1071)."""
    if len(segment_bytes) < MIN_HEADER_LENGTH:
        return False
    return _ones_complement_sum(pseudo_header(src_ip, dst_ip, len(segment_bytes)) + bytes(segment_bytes)) == 0xFFFF


class ChecksumStatus(Enum):
    VALID = "valid"
    PARTIAL = "partial: pseudo-header sum only, left for checksum offload (normal on loopback captures)"
    INCORRECT = "incorrect"


def checksum_status(src_ip: IPAddress | str, dst_ip: IPAddress | str, segment_bytes: bytes) -> ChecksumStatus:
    """Is the checksum right, a Linux offload placeholder, or wrong?"""
    if verify_checksum(src_ip, dst_ip, segment_bytes):
        return ChecksumStatus.VALID
    stored = int.from_bytes(segment_bytes[16:18], "big")
    if stored == pseudo_header_sum(src_ip, dst_ip, len(segment_bytes)):
        return ChecksumStatus.PARTIAL
    return ChecksumStatus.INCORRECT


def _checksum_meaning(src_ip: IPAddress | str | None, dst_ip: IPAddress | str | None, segment: bytes) -> str:
    stored = int.from_bytes(segment[16:18], "big")
    if src_ip is None or dst_ip is None:
        return f"0x{stored:04x} (needs the IP addresses to check)"
    try:
        status = checksum_status(src_ip, dst_ip, segment)
    except EncodeError as error:
        return f"0x{stored:04x} (cannot check: {error})"
    if status is ChecksumStatus.INCORRECT:
        return f"0x{stored:04x}: incorrect, should be 0x{tcp_checksum(src_ip, dst_ip, segment):04x}"
    return f"0x{stored:04x}: {status.value}"


# -- the segment --------------------------------------------------------------------------------
@dataclass
class TCPSegment:
    """One TCP segment.  ``checksum=None`` means "compute it in :meth:`encode`"."""

    src_port: int
    dst_port: int
    seq: int = 0
    ack: int = 0
    flags: Flags = Flags(0)
    window: int = 65535
    checksum: int | None = None
    urgent_pointer: int = 0
    options: list[TCPOption] = field(default_factory=list)
    payload: bytes = b""
    reserved: int = 0  # the 4 bits between data offset and CWR; must be zero (RFC 9293), kept for round trips

    # -- derived values ---------------------------------------------------------------------
    def options_bytes(self) -> bytes:
        """The options area as it goes on the wire, padded with zeros to a multiple of 4 bytes."""
        raw = b"".join(option.encode() for option in self.options)
        padded = raw + b"\x00" * (-len(raw) % 4)
        if len(padded) > MAX_OPTIONS_LENGTH:
            raise EncodeError(f"options take {len(padded)} bytes; at most {MAX_OPTIONS_LENGTH} fit in a TCP header")
        return padded

    @property
    def data_offset(self) -> int:
        """Header length in 32-bit words (5 without options)."""
        return (MIN_HEADER_LENGTH + len(self.options_bytes())) // 4

    @property
    def header_length(self) -> int:
        return self.data_offset * 4

    @property
    def sequence_space(self) -> int:
        """How many sequence numbers the segment uses: payload bytes, plus one each for SYN and FIN."""
        return len(self.payload) + (Flags.SYN in self.flags) + (Flags.FIN in self.flags)

    def option(self, option_type: type[TCPOption]) -> TCPOption | None:
        """The first option of ``option_type`` (for example ``segment.option(MSS)``), or None."""
        return next((option for option in self.options if isinstance(option, option_type)), None)

    def summary(self) -> str:
        """A one-line description such as ``"SYN,ACK seq=5000 ack=1001"``."""
        parts = [self.flags.short, f"seq={self.seq}"]
        if Flags.ACK in self.flags:
            parts.append(f"ack={self.ack}")
        if self.payload:
            parts.append(f"len={len(self.payload)}")
        return " ".join(parts)

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, src_ip: IPAddress | str | None = None, dst_ip: IPAddress | str | None = None) -> bytes:
        """The segment's bytes; the checksum is computed over the pseudo-header when ``checksum`` is None."""
        for value, size, what in (
            (self.src_port, 2, "source port"),
            (self.dst_port, 2, "destination port"),
            (self.seq, 4, "sequence number"),
            (self.ack, 4, "acknowledgment number"),
            (int(self.flags), 1, "flags"),
            (self.window, 2, "window"),
            (self.urgent_pointer, 2, "urgent pointer"),
        ):
            _check_uint(value, size, what)
        if not 0 <= self.reserved <= 0xF:
            raise EncodeError(f"reserved bits {self.reserved!r} do not fit in 4 bits")
        options = self.options_bytes()
        data_offset = (MIN_HEADER_LENGTH + len(options)) // 4
        stored = 0 if self.checksum is None else self.checksum
        _check_uint(stored, 2, "checksum")
        segment = bytearray()
        segment += self.src_port.to_bytes(2, "big") + self.dst_port.to_bytes(2, "big")
        segment += self.seq.to_bytes(4, "big") + self.ack.to_bytes(4, "big")
        segment += bytes((data_offset << 4 | self.reserved, int(self.flags)))
        segment += self.window.to_bytes(2, "big") + stored.to_bytes(2, "big")
        segment += self.urgent_pointer.to_bytes(2, "big") + options + self.payload
        if self.checksum is None:
            if src_ip is None or dst_ip is None:
                raise EncodeError("computing the checksum needs src_ip and dst_ip (or set checksum explicitly)")
            segment[16:18] = tcp_checksum(src_ip, dst_ip, bytes(segment)).to_bytes(2, "big")
        return bytes(segment)

    def with_checksum(self, src_ip: IPAddress | str, dst_ip: IPAddress | str) -> TCPSegment:
        """A copy whose ``checksum`` holds the correct value for these addresses."""
        encoded = TCPSegment(**{**self.__dict__, "checksum": None}).encode(src_ip, dst_ip)
        return TCPSegment(**{**self.__dict__, "checksum": int.from_bytes(encoded[16:18], "big")})

    # -- decoding ---------------------------------------------------------------------------
    @classmethod
    def decode(
        cls,
        data: bytes | bytearray | memoryview = b"",
        *,
        reader: Reader | None = None,
        base_offset: int = 0,
        spans: list[Span] | None = None,
        src_ip: IPAddress | str | None = None,
        dst_ip: IPAddress | str | None = None,
    ) -> TCPSegment:
        """Decode a whole segment (header, options, payload), recording annotated spans.

        Pass ``reader`` to decode from an existing Reader (it must hold exactly the segment from its
        current position, for example a ``sub_reader`` of the IP payload); otherwise ``data`` is read
        with spans placed at ``base_offset`` and appended to ``spans``.  With ``src_ip`` and ``dst_ip``
        the checksum's annotation says whether it is right.
        """
        if reader is None:
            reader = Reader(data, base_offset=base_offset, spans=spans)
        segment_bytes = reader.data[reader.position :]
        start = reader.offset
        if len(segment_bytes) < MIN_HEADER_LENGTH:
            raise DecodeError(
                f"a TCP header is at least {MIN_HEADER_LENGTH} bytes, got {len(segment_bytes)}",
                field="tcp",
                offset=start,
            )
        with reader.group("tcp", "TCP segment") as tcp:
            src_port = tcp.u16("src_port", lambda port: f"source port {port}")
            dst_port = tcp.u16("dst_port", lambda port: f"destination port {port}")
            seq = tcp.u32("seq", lambda value: f"sequence number {value}")
            ack_span = len(tcp.spans)
            ack = tcp.u32("ack", "acknowledgment number")
            offset_byte_at = tcp.offset
            offset_byte = tcp.u8("data_offset", _explain_offset_byte)
            data_offset, reserved = offset_byte >> 4, offset_byte & 0x0F
            flags = Flags(tcp.u8("flags", lambda bits: Flags(bits).describe()))
            if Flags.SYN in flags:
                tcp.spans[ack_span - 1] = _with_meaning(
                    tcp.spans[ack_span - 1], f"initial sequence number (ISN) {seq}: the SYN uses it"
                )
            if Flags.ACK not in flags:
                # Without ACK the acknowledgment field means nothing; say so in its annotation.
                tcp.spans[ack_span] = _with_meaning(tcp.spans[ack_span], f"{ack} (ignored: ACK flag not set)")
            else:
                tcp.spans[ack_span] = _with_meaning(tcp.spans[ack_span], f"next sequence number expected: {ack}")
            window = tcp.u16("window", lambda value: f"{value} bytes (before window scaling)")
            checksum = tcp.u16("checksum", _checksum_meaning(src_ip, dst_ip, segment_bytes))
            urgent_pointer = tcp.u16(
                "urgent_pointer", "urgent data offset" if Flags.URG in flags else "unused (URG not set)"
            )
            if data_offset < 5:
                raise DecodeError(
                    f"data offset {data_offset} is below the minimum of 5 words", field="tcp.data_offset",
                    offset=offset_byte_at,
                )
            if data_offset * 4 > len(segment_bytes):
                raise DecodeError(
                    f"data offset {data_offset} words ({data_offset * 4} bytes) exceeds the "
                    f"{len(segment_bytes)}-byte segment",
                    field="tcp.data_offset",
                    offset=offset_byte_at,
                )
            options: list[TCPOption] = []
            if data_offset > 5:
                with tcp.sub_reader(data_offset * 4 - MIN_HEADER_LENGTH, "options", "TCP options") as area:
                    options = _decode_options(area)
            payload = tcp.rest("payload", lambda body: f"{len(body)} bytes of data" if body else "no data")
        return cls(
            src_port=src_port,
            dst_port=dst_port,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            checksum=checksum,
            urgent_pointer=urgent_pointer,
            options=options,
            payload=payload,
            reserved=reserved,
        )


def _explain_offset_byte(value: int) -> str:
    words, reserved = value >> 4, value & 0x0F
    text = f"data offset {words} words: header is {words * 4} bytes"
    return text + (f"; reserved bits 0x{reserved:x} should be zero" if reserved else "")


def describe_options(options: Sequence[TCPOption]) -> str:
    """``"MSS 65495, SACK permitted, ..."``: a short line for tables and sequence-diagram labels."""
    return "; ".join(option.explain() for option in options if not isinstance(option, NOP))
