"""TCP connections of a capture as two bounded byte streams each, in sequence order; and the reverse.

Theory of operation
-------------------
A pcap holds TCP segments (:func:`~handshake_lib.tcp.pcap.iter_pcap`); an application protocol (TLS,
SSH) is read from the two byte streams of one TCP connection.  :func:`read_segments` reads a capture,
keeping what came before a truncated end; :func:`group_connections` puts segments in one
:class:`TCPConversation` per connection (both directions share a key: the sorted endpoint pair), with
the client being the side that sent the SYN (when the capture missed it: the side that did not send
from a well-known ``server_ports`` port, else the first speaker).

:meth:`TCPConversation.chunks` replays the conversation in capture order, yielding for each segment
the bytes that became contiguous in its direction (:class:`StreamAssembler`): retransmitted bytes
once, out-of-order segments held until the gap fills.  A gap that never fills, or a direction longer
than its cap, stops that direction; :attr:`TCPConversation.notes` says so afterwards.  Capture order
matters to protocols that need the other side's earlier message to read the next one (SSH).

:func:`write_pcap` does the reverse: a classic pcap (raw IPv4) of a conversation given as
(direction, bytes) chunks, with a three-way handshake and a FIN each way, so a recording of a live
connection (``net.tls``'s ``record_to``) or a synthetic benchmark capture reads back with the same
code as ``tcpdump -w``'s files (and opens in Wireshark).

Limits (docs/limits.md): the caller's ``max_connections`` and ``max_stream_bytes``; at most
:data:`MAX_PENDING_SEGMENTS` segments held waiting for a gap per direction.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DecodeError
from .pcap import CapturedSegment, LinkType, iter_pcap
from .segment import Flags, TCPSegment

__all__ = [
    "CLIENT_TO_SERVER",
    "SERVER_TO_CLIENT",
    "MAX_PENDING_SEGMENTS",
    "Endpoint",
    "StreamAssembler",
    "TCPConversation",
    "read_segments",
    "group_connections",
    "write_pcap",
]

CLIENT_TO_SERVER = "client->server"
SERVER_TO_CLIENT = "server->client"
MAX_PENDING_SEGMENTS = 4096
_SEQUENCE_SPACE = 1 << 32
Endpoint = tuple[str, int]


class StreamAssembler:
    """Puts one direction's segments in order; :meth:`add` returns the bytes that became contiguous."""

    def __init__(self, source: Endpoint, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.start: int | None = None  # sequence number of the stream's first byte
        self.end = 0  # bytes of the stream assembled so far
        self.stopped = ""
        self._pending: dict[int, bytes] = {}

    def add(self, item: CapturedSegment) -> bytes:
        segment = item.segment
        if Flags.SYN in segment.flags:
            self.start = (segment.seq + 1) % _SEQUENCE_SPACE
        if not segment.payload or self.stopped:
            return b""
        if self.start is None:
            self.start = segment.seq
        offset = (segment.seq - self.start) % _SEQUENCE_SPACE
        if offset >= _SEQUENCE_SPACE // 2:  # before the start: a retransmission of bytes before the SYN's
            return b""
        self._pending[offset] = max(self._pending.get(offset, b""), segment.payload, key=len)
        out = bytearray()
        progressed = True
        while progressed:
            progressed = False
            for offset in sorted(self._pending):
                data = self._pending[offset]
                if offset > self.end:
                    break
                del self._pending[offset]
                progressed = True  # a segment used up, fresh bytes or none (a retransmission): look again
                fresh = data[self.end - offset :]
                if fresh:
                    room = self.max_bytes - self.end
                    if len(fresh) > room:
                        fresh = fresh[:room]
                        self.stopped = f"more than {_size(self.max_bytes)}: the rest is not read"
                    out += fresh
                    self.end += len(fresh)
                break
        if len(self._pending) > MAX_PENDING_SEGMENTS:  # a gap that never fills: stop holding bytes after it
            self.stopped = f"bytes missing at stream offset {self.end}: the rest is not read"
            self._pending.clear()
        return bytes(out)

    def finish(self) -> str:
        """Why this direction is incomplete, empty when it is not."""
        if self._pending and not self.stopped:
            waiting = sum(map(len, self._pending.values()))
            return f"bytes missing at stream offset {self.end}: {waiting} bytes after it not read"
        return self.stopped


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 and not count % (1 << 20) else f"{count} bytes"


@dataclass
class TCPConversation:
    """One TCP connection's segments, in capture order, with who was the client."""

    client: Endpoint
    server: Endpoint
    segments: list[CapturedSegment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # filled by chunks(): a direction cut short, and why

    def direction_of(self, item: CapturedSegment) -> str:
        return CLIENT_TO_SERVER if (str(item.src_ip), item.segment.src_port) == self.client else SERVER_TO_CLIENT

    def chunks(self, max_stream_bytes: int) -> Iterator[tuple[str, bytes]]:
        """(direction, new contiguous bytes) per segment that added some, in capture order."""
        streams = {
            CLIENT_TO_SERVER: StreamAssembler(self.client, max_stream_bytes),
            SERVER_TO_CLIENT: StreamAssembler(self.server, max_stream_bytes),
        }
        for item in self.segments:
            direction = self.direction_of(item)
            data = streams[direction].add(item)
            if data:
                yield direction, data
        for direction, stream in streams.items():
            problem = stream.finish()
            if problem:
                self.notes.append(f"{direction}: {problem}")

    def streams(self, max_stream_bytes: int) -> dict[str, bytes]:
        """Both directions whole: {CLIENT_TO_SERVER: bytes, SERVER_TO_CLIENT: bytes}."""
        out = {CLIENT_TO_SERVER: bytearray(), SERVER_TO_CLIENT: bytearray()}
        for direction, data in self.chunks(max_stream_bytes):
            out[direction] += data
        return {direction: bytes(data) for direction, data in out.items()}


def read_segments(source: str | Path | bytes | bytearray) -> tuple[list[CapturedSegment], str]:
    """Every TCP segment of a pcap, and a note when the capture ends inside a record (else "").

    Raises :class:`~handshake_lib.errors.DecodeError` for bytes that are not a pcap we read, or a
    capture cut before its first segment.
    """
    segments: list[CapturedSegment] = []
    try:
        segments.extend(iter_pcap(source))
    except DecodeError as error:
        if not segments:
            raise
        # A capture stopped mid-write (tcpdump killed, a file cut short): what came before is still good.
        return segments, f"the capture ends inside a record ({error}): the segments before it are decoded"
    return segments, ""


def _connection_key(item: CapturedSegment) -> tuple[Endpoint, Endpoint]:
    a = (str(item.src_ip), item.segment.src_port)
    b = (str(item.dst_ip), item.segment.dst_port)
    return (a, b) if a <= b else (b, a)


def _roles(segments: list[CapturedSegment], server_ports: Iterable[int]) -> tuple[Endpoint, Endpoint]:
    """(client, server) of one connection's segments."""
    for item in segments:
        if Flags.SYN in item.segment.flags and Flags.ACK not in item.segment.flags:
            return (str(item.src_ip), item.segment.src_port), (str(item.dst_ip), item.segment.dst_port)
    first = segments[0]
    a, b = (str(first.src_ip), first.segment.src_port), (str(first.dst_ip), first.segment.dst_port)
    ports = set(server_ports)
    if a[1] in ports and b[1] not in ports:
        return b, a
    return a, b


def group_connections(
    segments: Iterable[CapturedSegment], *, max_connections: int, server_ports: Iterable[int] = ()
) -> tuple[list[TCPConversation], int]:
    """Segments grouped per connection (first seen first), and how many segments of connections past
    ``max_connections`` were left out."""
    by_key: dict[object, list[CapturedSegment]] = {}
    skipped = 0
    for item in segments:
        key = _connection_key(item)
        if key not in by_key:
            if len(by_key) >= max_connections:
                skipped += 1
                continue
            by_key[key] = []
        by_key[key].append(item)
    ports = tuple(server_ports)
    conversations = []
    for items in by_key.values():
        client, server = _roles(items, ports)
        conversations.append(TCPConversation(client, server, items))
    return conversations, skipped


# -- writing ----------------------------------------------------------------------------------------------
_MAX_SEGMENT_PAYLOAD = 16384  # well under the 65535-byte IPv4 datagram; loopback's MTU is 65536


def _ipv4_header(src: bytes, dst: bytes, payload_length: int, identification: int) -> bytes:
    header = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_length, identification & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
    )
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(header)


def write_pcap(
    chunks: Iterable[tuple[str, bytes]],
    *,
    client: Endpoint = ("127.0.0.1", 40000),
    server: Endpoint = ("127.0.0.1", 443),
    start_time: float = 0.0,
) -> bytes:
    """A classic pcap (raw IPv4, microseconds) of one TCP connection carrying ``chunks`` in that order.

    Each chunk is ``(CLIENT_TO_SERVER or SERVER_TO_CLIENT, bytes)``; long chunks are cut into segments.
    Timestamps advance a microsecond per frame from ``start_time``: the order is real, the times are not.
    """
    addresses = {CLIENT_TO_SERVER: (client, server), SERVER_TO_CLIENT: (server, client)}
    raw = {side: ipaddress.IPv4Address(endpoint[0]).packed for side, endpoint in (("c", client), ("s", server))}
    sequence = {CLIENT_TO_SERVER: 1000, SERVER_TO_CLIENT: 5000}
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LinkType.IPV4))
    frame_number = 0

    def frame(direction: str, flags: Flags, payload: bytes = b"") -> None:
        nonlocal frame_number
        (src, dst) = addresses[direction]
        other = SERVER_TO_CLIENT if direction == CLIENT_TO_SERVER else CLIENT_TO_SERVER
        segment = TCPSegment(
            src[1], dst[1], sequence[direction], sequence[other] if Flags.ACK in flags else 0, flags, payload=payload
        ).encode(src[0], dst[0])
        src_raw, dst_raw = (raw["c"], raw["s"]) if direction == CLIENT_TO_SERVER else (raw["s"], raw["c"])
        packet = _ipv4_header(src_raw, dst_raw, len(segment), frame_number) + segment
        micros = int(start_time * 1_000_000) + frame_number
        out.extend(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(packet), len(packet)))
        out.extend(packet)
        frame_number += 1
        used = len(payload) + (1 if flags & (Flags.SYN | Flags.FIN) else 0)
        sequence[direction] = (sequence[direction] + used) % _SEQUENCE_SPACE

    frame(CLIENT_TO_SERVER, Flags.SYN)
    frame(SERVER_TO_CLIENT, Flags.SYN | Flags.ACK)
    frame(CLIENT_TO_SERVER, Flags.ACK)
    for direction, data in chunks:
        for start in range(0, len(data), _MAX_SEGMENT_PAYLOAD):
            frame(direction, Flags.PSH | Flags.ACK, data[start : start + _MAX_SEGMENT_PAYLOAD])
    frame(CLIENT_TO_SERVER, Flags.FIN | Flags.ACK)
    frame(SERVER_TO_CLIENT, Flags.FIN | Flags.ACK)
    return bytes(out)
