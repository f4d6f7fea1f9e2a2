"""The kernel's view of a TCP connection: Linux's ``struct tcp_info``, decoded.

Theory of operation
-------------------
Linux keeps, for every TCP socket, the numbers RFC 9293 and RFC 6298 talk about: the state, the
smoothed round-trip time and its variation, the retransmission timeout, the maximum segment sizes
negotiated in the SYNs, the window scale shifts, how many segments were retransmitted.
``getsockopt(IPPROTO_TCP, TCP_INFO)`` returns them as ``struct tcp_info`` (``linux/tcp.h``), and
:func:`parse_tcp_info` turns those bytes into a :class:`TCPInfo` with RFC 9293's state names.

Sans-I/O like the rest of :mod:`handshake_lib.tcp`: reading the bytes off a real socket, and the
loopback experiment that gives both ends something to measure, live in :mod:`handshake_lib.net.tcp`.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

from ..errors import HandshakeError
from .states import State

__all__ = ["TCPInfo", "LiveObservationUnsupported", "parse_tcp_info", "TCP_INFO_BUFFER_SIZE"]


class LiveObservationUnsupported(HandshakeError):
    """This platform has no Linux ``TCP_INFO``."""


# Linux's enum of TCP states (include/net/tcp_states.h), mapped onto RFC 9293's names.
_LINUX_STATES = {
    1: State.ESTABLISHED,
    2: State.SYN_SENT,
    3: State.SYN_RECEIVED,
    4: State.FIN_WAIT_1,
    5: State.FIN_WAIT_2,
    6: State.TIME_WAIT,
    7: State.CLOSED,
    8: State.CLOSE_WAIT,
    9: State.LAST_ACK,
    10: State.LISTEN,
    11: State.CLOSING,
    12: State.SYN_RECEIVED,  # TCP_NEW_SYN_RECV: a request socket still waiting for the final ACK
}
_OPTION_BITS = {1: "timestamps", 2: "sack", 4: "window_scale", 8: "ecn", 16: "ecn_seen", 32: "syn_data"}

# struct tcp_info up to tcpi_total_retrans (present since Linux 2.6), then the 64-bit counters and
# segment counts added in Linux 4.1-4.2.  Native byte order and sizes: it is the kernel's own struct.
_BASE = struct.Struct("=8B24I")
_EXTENDED = struct.Struct("=8B24I4Q2I")
TCP_INFO_BUFFER_SIZE = 256  # bytes to ask getsockopt for: more than any kernel returns today


@dataclass(frozen=True)
class TCPInfo:
    """The fields of ``struct tcp_info`` a lesson talks about (times in microseconds, as the kernel keeps them)."""

    state: State
    linux_state: int
    retransmits: int  # consecutive timeouts of the current segment
    backoff: int  # how many times the RTO has been doubled
    options: frozenset[str]  # negotiated in the handshake: timestamps, sack, window_scale, ecn...
    snd_wscale: int
    rcv_wscale: int
    rto_us: int
    ato_us: int
    snd_mss: int
    rcv_mss: int
    unacked: int
    lost: int
    pmtu: int
    rtt_us: int  # smoothed RTT (RFC 6298 SRTT)
    rttvar_us: int  # RTT variation (RFC 6298 RTTVAR)
    snd_cwnd: int  # congestion window, in segments
    advmss: int
    total_retrans: int
    bytes_acked: int | None = None  # None: the kernel is older than 4.1
    bytes_received: int | None = None
    segs_out: int | None = None
    segs_in: int | None = None


def parse_tcp_info(raw: bytes) -> TCPInfo:
    """Unpack the bytes ``getsockopt(IPPROTO_TCP, TCP_INFO)`` returned (Linux's ``struct tcp_info``)."""
    if len(raw) < _BASE.size:
        raise LiveObservationUnsupported(f"the kernel returned {len(raw)} bytes of tcp_info, expected {_BASE.size}+")
    extended = len(raw) >= _EXTENDED.size
    values = (_EXTENDED if extended else _BASE).unpack_from(raw)
    (state, _ca_state, retransmits, _probes, backoff, options, wscale, _flags) = values[:8]
    (rto, ato, snd_mss, rcv_mss, unacked, _sacked, lost, _retrans, _fackets,
     _last_data_sent, _last_ack_sent, _last_data_recv, _last_ack_recv,
     pmtu, _rcv_ssthresh, rtt, rttvar, _snd_ssthresh, snd_cwnd, advmss, _reordering,
     _rcv_rtt, _rcv_space, total_retrans) = values[8:32]  # fmt: skip
    more: dict[str, int | None] = {}
    if extended:
        _pacing, _max_pacing, bytes_acked, bytes_received, segs_out, segs_in = values[32:38]
        more = {"bytes_acked": bytes_acked, "bytes_received": bytes_received, "segs_out": segs_out, "segs_in": segs_in}
    return TCPInfo(
        state=_LINUX_STATES.get(state, State.CLOSED),
        linux_state=state,
        retransmits=retransmits,
        backoff=backoff,
        options=frozenset(name for bit, name in _OPTION_BITS.items() if options & bit),
        # The byte holds two 4-bit fields: snd_wscale in the low bits on little-endian GCC layouts.
        snd_wscale=wscale & 0x0F if sys.byteorder == "little" else wscale >> 4,
        rcv_wscale=wscale >> 4 if sys.byteorder == "little" else wscale & 0x0F,
        rto_us=rto,
        ato_us=ato,
        snd_mss=snd_mss,
        rcv_mss=rcv_mss,
        unacked=unacked,
        lost=lost,
        pmtu=pmtu,
        rtt_us=rtt,
        rttvar_us=rttvar,
        snd_cwnd=snd_cwnd,
        advmss=advmss,
        total_retrans=total_retrans,
        **more,
    )
