"""TCP, the first lesson: segments, the RFC 9293 state table, a handshake simulator, real captures.

* :mod:`.segment`: :class:`TCPSegment` with annotated decoding, encoding and the checksum;
* :mod:`.states`: the connection state machine as one table, and a sans-I/O :class:`TCPConnection`;
* :mod:`.simulator`: the three-way handshake in virtual time, with delay, loss and retransmission;
* :mod:`.pcap`: TCP segments out of real captures (one ships with the library: :func:`bundled_capture`);
* :mod:`.info`: the kernel's own view of a connection (Linux's ``struct tcp_info``), decoded.

All sans-I/O.  A real loopback connection observed through ``TCP_INFO`` is
:func:`handshake_lib.net.tcp.observe_loopback`.
"""

from .info import LiveObservationUnsupported, TCPInfo, parse_tcp_info
from .pcap import (
    BUNDLED_CAPTURES,
    CapturedSegment,
    LinkType,
    PcapHeader,
    bundled_capture,
    iter_pcap,
    read_pcap,
    read_pcap_header,
)
from .segment import (
    EOL,
    MSS,
    NOP,
    SACK,
    ChecksumStatus,
    Flags,
    SACKPermitted,
    TCPOption,
    TCPSegment,
    Timestamps,
    UnknownOption,
    WindowScale,
    checksum_status,
    describe_options,
    pseudo_header,
    pseudo_header_sum,
    tcp_checksum,
    verify_checksum,
)
from .simulator import HandshakeResult, Outcome, Transmission, simulate_handshake
from .states import (
    DIAGRAM_POSITIONS,
    TRANSITIONS,
    Event,
    InvalidTransition,
    State,
    TCPConnection,
    Transition,
    diagram_rows,
    transition_for,
)

__all__ = [
    "BUNDLED_CAPTURES",
    "CapturedSegment",
    "ChecksumStatus",
    "DIAGRAM_POSITIONS",
    "EOL",
    "Event",
    "Flags",
    "HandshakeResult",
    "InvalidTransition",
    "LinkType",
    "LiveObservationUnsupported",
    "MSS",
    "NOP",
    "Outcome",
    "PcapHeader",
    "SACK",
    "SACKPermitted",
    "State",
    "TCPConnection",
    "TCPInfo",
    "TCPOption",
    "TCPSegment",
    "TRANSITIONS",
    "Timestamps",
    "Transition",
    "Transmission",
    "UnknownOption",
    "WindowScale",
    "bundled_capture",
    "checksum_status",
    "describe_options",
    "diagram_rows",
    "iter_pcap",
    "pseudo_header",
    "parse_tcp_info",
    "pseudo_header_sum",
    "read_pcap",
    "read_pcap_header",
    "simulate_handshake",
    "tcp_checksum",
    "transition_for",
    "verify_checksum",
]
