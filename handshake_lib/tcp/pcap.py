"""Reading TCP segments out of classic pcap files, with every byte of every frame annotated.

Theory of operation
-------------------
A classic pcap file (what ``tcpdump -w`` writes) is a 24-byte global header, then records: a 16-byte
record header (seconds, micro- or nanoseconds, captured length, original length) and the frame.
The magic number says both the byte order of these headers (the capturing machine's) and the
timestamp resolution: ``a1b2c3d4`` for microseconds, ``a1b23c4d`` for nanoseconds, byte-swapped when
written little-endian.  The frame itself is in network byte order, and its first header depends on
the file's *link type*:

* 1 Ethernet: destination and source MAC, EtherType (``tcpdump -i lo`` writes zero MACs);
* 113 Linux cooked (SLL) and 276 SLL2: what ``tcpdump -i any`` writes, since "any" has no real link;
* 0 BSD loopback (NULL): a 4-byte address family in the *capturing host's* byte order;
* 101 / 228 / 229 raw IP: no link header at all.

Then the IPv4 or IPv6 header (IPv6 extension headers are walked), and, when the protocol is 6, the
TCP segment, decoded by :meth:`TCPSegment.decode` with a Reader over the frame so that every span
has a frame offset: a hex view can show and explain the entire frame.  Packets that are not TCP, IP
fragments and frames cut short by the snapshot length are skipped; bytes that cannot be a pcap file
or a header that contradicts itself raise :class:`~handshake_lib.errors.DecodeError`.

pcapng (Wireshark's default format) is recognised and refused with a hint: ``editcap -F pcap`` or
``tcpdump -r in.pcapng -w out.pcap`` converts it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import DecodeError
from ..wire import Reader, Span
from .segment import ChecksumStatus, IPAddress, TCPSegment, checksum_status

__all__ = [
    "CapturedSegment",
    "PcapHeader",
    "LinkType",
    "read_pcap",
    "iter_pcap",
    "read_pcap_header",
    "bundled_capture",
    "BUNDLED_CAPTURES",
]

BUNDLED_CAPTURES = ("loopback_handshakes.pcap", "any_handshakes.pcap")


class LinkType:
    """The link-layer header types we read (tcpdump.org/linktypes.html)."""

    NULL = 0
    ETHERNET = 1
    RAW = 101
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276

    NAMES = {
        0: "BSD loopback",
        1: "Ethernet",
        101: "raw IP",
        113: "Linux cooked capture (SLL)",
        228: "raw IPv4",
        229: "raw IPv6",
        276: "Linux cooked capture v2 (SLL2)",
    }


_MAGIC = {
    b"\xa1\xb2\xc3\xd4": ("big", 1_000_000),
    b"\xd4\xc3\xb2\xa1": ("little", 1_000_000),
    b"\xa1\xb2\x3c\x4d": ("big", 1_000_000_000),
    b"\x4d\x3c\xb2\xa1": ("little", 1_000_000_000),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_GLOBAL_HEADER_LENGTH = 24
_RECORD_HEADER_LENGTH = 16

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_VLAN = (0x8100, 0x88A8)
_ETHERTYPE_NAMES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP", 0x8100: "802.1Q VLAN", 0x88A8: "802.1ad VLAN"}
_AF_INET6_VALUES = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
_SLL_PACKET_TYPES = {0: "to us", 1: "broadcast", 2: "multicast", 3: "to someone else", 4: "sent by us"}
_IPV6_SKIPPABLE_EXTENSIONS = {0: "hop-by-hop options", 43: "routing", 60: "destination options"}
_IPV6_FRAGMENT = 44
_TCP = 6


@dataclass(frozen=True)
class PcapHeader:
    byte_order: str  # "big" or "little": the capturing machine's
    ticks_per_second: int  # 1_000_000 (microsecond magic) or 1_000_000_000 (nanosecond magic)
    version: tuple[int, int]
    snaplen: int
    link_type: int

    @property
    def link_name(self) -> str:
        return LinkType.NAMES.get(self.link_type, f"link type {self.link_type}")


@dataclass
class CapturedSegment:
    """One TCP segment from a capture, with the frame it came in and spans annotating all of it."""

    timestamp: float  # seconds since the epoch
    src_ip: IPAddress
    dst_ip: IPAddress
    segment: TCPSegment
    segment_bytes: bytes
    frame: bytes
    segment_offset: int  # where segment_bytes start in frame
    spans: list[Span] = field(repr=False)
    frame_number: int = 0  # 1-based, counting every frame of the file, as Wireshark numbers them
    link_type: int = LinkType.ETHERNET
    timestamp_ticks: int = 0  # exact timestamp in the file's resolution (see PcapHeader.ticks_per_second)

    def checksum_status(self) -> ChecksumStatus:
        """VALID, PARTIAL (offloaded: normal on loopback captures) or INCORRECT."""
        return checksum_status(self.src_ip, self.dst_ip, self.segment_bytes)


def bundled_capture(name: str = "loopback_handshakes.pcap") -> Path:
    """The path of a capture shipped with the library (see ``scripts/record_capture.sh``)."""
    if name not in BUNDLED_CAPTURES:
        raise ValueError(f"no bundled capture {name!r}; choose one of {', '.join(BUNDLED_CAPTURES)}")
    path = Path(str(resources.files("handshake_lib") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"bundled capture {path} is missing from this installation")
    return path


def _load(source: str | Path | bytes | bytearray) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return Path(source).read_bytes()


def read_pcap_header(data: bytes) -> PcapHeader:
    if len(data) < _GLOBAL_HEADER_LENGTH:
        raise DecodeError(
            f"a pcap file starts with a {_GLOBAL_HEADER_LENGTH}-byte header; got {len(data)} bytes",
            field="pcap.header",
            offset=0,
        )
    magic = data[:4]
    if magic == _PCAPNG_MAGIC:
        raise DecodeError(
            "this is a pcapng file; convert it to classic pcap with `editcap -F pcap in.pcapng out.pcap`",
            field="pcap.magic",
            offset=0,
        )
    if magic not in _MAGIC:
        raise DecodeError(f"not a pcap file: magic number {magic.hex()}", field="pcap.magic", offset=0)
    byte_order, ticks = _MAGIC[magic]

    def number(offset: int, size: int) -> int:
        return int.from_bytes(data[offset : offset + size], byte_order)  # type: ignore[arg-type]

    return PcapHeader(byte_order, ticks, (number(4, 2), number(6, 2)), number(16, 4), number(20, 4) & 0x0FFFFFFF)


def read_pcap(source: str | Path | bytes | bytearray) -> list[CapturedSegment]:
    """Every TCP segment in a classic pcap file (a path or the file's bytes)."""
    return list(iter_pcap(source))


def iter_pcap(source: str | Path | bytes | bytearray) -> Iterator[CapturedSegment]:
    """Like :func:`read_pcap`, one segment at a time."""
    data = _load(source)
    header = read_pcap_header(data)
    if header.link_type not in LinkType.NAMES:
        raise DecodeError(f"unsupported link type {header.link_type}", field="pcap.link_type", offset=20)
    position = _GLOBAL_HEADER_LENGTH
    frame_number = 0
    while position < len(data):
        if len(data) - position < _RECORD_HEADER_LENGTH:
            raise DecodeError(
                f"truncated record header: {len(data) - position} of {_RECORD_HEADER_LENGTH} bytes",
                field="pcap.record",
                offset=position,
            )
        fields = [
            int.from_bytes(data[position + i : position + i + 4], header.byte_order)  # type: ignore[arg-type]
            for i in (0, 4, 8, 12)
        ]
        seconds, fraction, captured_length, original_length = fields
        if fraction >= header.ticks_per_second:
            raise DecodeError(
                f"timestamp fraction {fraction} is not below {header.ticks_per_second}",
                field="pcap.record.ts_fraction",
                offset=position + 4,
            )
        frame_start = position + _RECORD_HEADER_LENGTH
        if captured_length > len(data) - frame_start:
            raise DecodeError(
                f"record claims {captured_length} bytes but only {len(data) - frame_start} remain in the file",
                field="pcap.record.incl_len",
                offset=position + 8,
            )
        frame = data[frame_start : frame_start + captured_length]
        position = frame_start + captured_length
        frame_number += 1
        truncated = captured_length < original_length
        captured = _decode_frame(frame, header.link_type, truncated)
        if captured is None:
            continue
        ticks = seconds * header.ticks_per_second + fraction
        captured.timestamp = ticks / header.ticks_per_second
        captured.timestamp_ticks = ticks
        captured.frame_number = frame_number
        captured.link_type = header.link_type
        yield captured


# -- link layers --------------------------------------------------------------------------------
def _decode_frame(frame: bytes, link_type: int, truncated: bool) -> CapturedSegment | None:
    """Decode one frame; None when it holds no complete TCP segment."""
    reader = Reader(frame)
    try:
        version = _decode_link_header(reader, link_type)
        if version is None:
            return None
        return _decode_ip(reader, version, frame)
    except DecodeError:
        if truncated:
            return None  # cut short by the snapshot length: not the sender's fault, nothing to decode
        raise


def _decode_link_header(reader: Reader, link_type: int) -> int | None:
    """Read the link header; return the IP version of what follows, or None for anything else."""
    if link_type == LinkType.ETHERNET:
        with reader.group("ethernet", "Ethernet II header") as eth:
            eth.raw(6, "dst_mac", _mac)
            eth.raw(6, "src_mac", _mac)
            ethertype = eth.u16("ethertype", _ethertype)
            while ethertype in _ETHERTYPE_VLAN:
                eth.u16("vlan_tci", lambda tci: f"VLAN {tci & 0x0FFF}, priority {tci >> 13}")
                ethertype = eth.u16("ethertype", _ethertype)
        return _version_for_ethertype(ethertype)
    if link_type == LinkType.LINUX_SLL:
        with reader.group("sll", "Linux cooked capture header") as sll:
            sll.u16("packet_type", lambda kind: _SLL_PACKET_TYPES.get(kind, f"type {kind}"))
            sll.u16("arphrd_type", _arphrd)
            length = sll.u16("address_length", "link-layer address length")
            sll.raw(8, "address", lambda address: _mac(address[: min(length, 8)]))
            protocol = sll.u16("protocol", _ethertype)
        return _version_for_ethertype(protocol)
    if link_type == LinkType.LINUX_SLL2:
        with reader.group("sll2", "Linux cooked capture v2 header") as sll:
            protocol = sll.u16("protocol", _ethertype)
            sll.u16("reserved", "reserved (zero)")
            sll.u32("interface_index", lambda index: f"interface index {index} (1 is usually lo)")
            sll.u16("arphrd_type", _arphrd)
            sll.u8("packet_type", lambda kind: _SLL_PACKET_TYPES.get(kind, f"type {kind}"))
            length = sll.u8("address_length", "link-layer address length")
            sll.raw(8, "address", lambda address: _mac(address[: min(length, 8)]))
        return _version_for_ethertype(protocol)
    if link_type == LinkType.NULL:
        family_bytes = reader.raw(4, "null.family", "address family, in the capturing host's byte order")
        family = min(int.from_bytes(family_bytes, "little"), int.from_bytes(family_bytes, "big"))
        meaning = "AF_INET (IPv4)" if family == 2 else "AF_INET6 (IPv6)" if family in _AF_INET6_VALUES else ""
        reader.annotate(meaning or f"address family {family}")
        return 4 if family == 2 else 6 if family in _AF_INET6_VALUES else None
    if link_type == LinkType.IPV4:
        return 4
    if link_type == LinkType.IPV6:
        return 6
    # RAW: the IP version is the first nibble of the packet itself.
    if reader.at_end:
        raise DecodeError("empty raw IP frame", field="ip", offset=0)
    version = reader.data[0] >> 4
    return version if version in (4, 6) else None


def _version_for_ethertype(ethertype: int) -> int | None:
    return {_ETHERTYPE_IPV4: 4, _ETHERTYPE_IPV6: 6}.get(ethertype)


def _mac(address: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in address)


def _ethertype(value: int) -> str:
    return f"0x{value:04x}: {_ETHERTYPE_NAMES.get(value, 'other protocol')}"


def _arphrd(value: int) -> str:
    return {1: "Ethernet", 772: "loopback", 65534: "none (tunnel)"}.get(value, f"ARPHRD type {value}")


# -- IP -----------------------------------------------------------------------------------------
def _decode_ip(reader: Reader, version: int, frame: bytes) -> CapturedSegment | None:
    if reader.at_end:
        raise DecodeError("frame ends before the IP header", field="ip", offset=reader.offset)
    actual_version = reader.data[reader.position] >> 4
    if actual_version != version:
        raise DecodeError(
            f"link header announced IPv{version}, packet says version {actual_version}",
            field="ip.version",
            offset=reader.offset,
        )
    located = _decode_ipv4(reader) if version == 4 else _decode_ipv6(reader)
    if located is None:
        return None
    src_ip, dst_ip, tcp_length = located
    segment_offset = reader.offset
    # The segment's own Reader shares the frame's span list and knows its frame offset, so its spans
    # line up with the frame in a hex view.  (Its length comes from the IP header, not the frame end:
    # Ethernet pads short frames to 60 bytes.)
    segment_bytes = frame[segment_offset : segment_offset + tcp_length]
    spans = reader.spans
    segment = TCPSegment.decode(
        reader=Reader(segment_bytes, base_offset=segment_offset, spans=spans), src_ip=src_ip, dst_ip=dst_ip
    )
    trailer = len(frame) - segment_offset - tcp_length
    if trailer:
        spans.append(Span(segment_offset + tcp_length, trailer, "trailer", "link-layer padding after the IP packet"))
    return CapturedSegment(
        timestamp=0.0,
        src_ip=src_ip,
        dst_ip=dst_ip,
        segment=segment,
        segment_bytes=segment_bytes,
        frame=frame,
        segment_offset=segment_offset,
        spans=spans,
    )


def _decode_ipv4(reader: Reader) -> tuple[IPAddress, IPAddress, int] | None:
    start = reader.offset
    available = reader.remaining
    with reader.group("ipv4", "IPv4 header") as ip:
        version_ihl = ip.u8("version_ihl", lambda value: f"version {value >> 4}, header {(value & 0x0F) * 4} bytes")
        header_length = (version_ihl & 0x0F) * 4
        ip.u8("dscp_ecn", lambda value: f"DSCP {value >> 2}, ECN {value & 3}")
        total_length = ip.u16("total_length", lambda value: f"{value} bytes of IP packet")
        ip.u16("identification", "identification (for reassembling fragments)")
        flags_fragment = ip.u16("flags_fragment_offset", _ipv4_fragment)
        ip.u8("ttl", "time to live (hops)")
        protocol = ip.u8("protocol", lambda value: "6: TCP" if value == _TCP else f"{value}: not TCP")
        ip.u16("header_checksum", "IPv4 header checksum")
        src_ip = ipaddress.IPv4Address(ip.raw(4, "src", lambda raw: str(ipaddress.IPv4Address(raw))))
        dst_ip = ipaddress.IPv4Address(ip.raw(4, "dst", lambda raw: str(ipaddress.IPv4Address(raw))))
        if header_length < 20:
            raise DecodeError(f"IPv4 header length {header_length} is below 20", field="ipv4.version_ihl", offset=start)
        if total_length < header_length or total_length > available:
            raise DecodeError(
                f"IPv4 total length {total_length} does not fit header {header_length} and frame {available}",
                field="ipv4.total_length",
                offset=start + 2,
            )
        if header_length > 20:
            ip.raw(header_length - 20, "options", "IPv4 options")
    more_fragments, fragment_offset = flags_fragment & 0x2000, flags_fragment & 0x1FFF
    if protocol != _TCP or more_fragments or fragment_offset:
        return None
    return src_ip, dst_ip, total_length - header_length


def _ipv4_fragment(value: int) -> str:
    flags = [name for bit, name in ((0x4000, "don't fragment"), (0x2000, "more fragments")) if value & bit]
    return ", ".join(flags + [f"fragment offset {value & 0x1FFF}"])


def _decode_ipv6(reader: Reader) -> tuple[IPAddress, IPAddress, int] | None:
    start = reader.offset
    available = reader.remaining
    with reader.group("ipv6", "IPv6 header") as ip:
        ip.u32("version_class_flow", lambda v: f"version {v >> 28}, traffic class {(v >> 20) & 0xFF}, "
               f"flow label {v & 0xFFFFF}")
        payload_length = ip.u16("payload_length", lambda value: f"{value} bytes after this header")
        next_header = ip.u8("next_header", _next_header)
        ip.u8("hop_limit", "hop limit")
        src_ip = ipaddress.IPv6Address(ip.raw(16, "src", lambda raw: str(ipaddress.IPv6Address(raw))))
        dst_ip = ipaddress.IPv6Address(ip.raw(16, "dst", lambda raw: str(ipaddress.IPv6Address(raw))))
        if payload_length == 0:
            return None  # a jumbogram (RFC 2675) or nothing at all: not something we teach with
        if 40 + payload_length > available:
            raise DecodeError(
                f"IPv6 payload length {payload_length} exceeds the {available - 40} bytes in the frame",
                field="ipv6.payload_length",
                offset=start + 4,
            )
        remaining = payload_length
        while next_header in _IPV6_SKIPPABLE_EXTENSIONS:
            with ip.group("extension", _IPV6_SKIPPABLE_EXTENSIONS[next_header]) as extension:
                following = extension.u8("next_header", _next_header)
                length = (extension.u8("length", "length in 8-byte units, not counting the first 8") + 1) * 8
                if length > remaining:
                    raise DecodeError(
                        f"IPv6 extension header of {length} bytes overruns the payload",
                        field="ipv6.extension.length",
                        offset=extension.offset - 1,
                    )
                extension.raw(length - 2, "data", "extension header data")
            remaining -= length
            next_header = following
    if next_header != _TCP:
        return None  # including fragments (44): reassembly is out of scope
    return src_ip, dst_ip, remaining


def _next_header(value: int) -> str:
    names = {6: "TCP", 17: "UDP", 58: "ICMPv6", _IPV6_FRAGMENT: "fragment", **_IPV6_SKIPPABLE_EXTENSIONS}
    return f"{value}: {names.get(value, 'other')}"
