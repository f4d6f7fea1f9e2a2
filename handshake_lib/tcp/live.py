"""Watch a real TCP connection from the inside: the kernel's ``TCP_INFO`` for both ends of a loopback connection.

Theory of operation
-------------------
Linux keeps, for every TCP socket, the numbers RFC 9293 and RFC 6298 talk about: the state, the
smoothed round-trip time and its variation, the retransmission timeout, the maximum segment sizes
negotiated in the SYNs, the window scale shifts, how many segments were retransmitted.
``getsockopt(IPPROTO_TCP, TCP_INFO)`` returns them as ``struct tcp_info`` (``linux/tcp.h``).  No
privileges are needed: we open a listener on a free loopback port, connect to it, exchange a few
bytes so both ends have measured a round trip, and read the structure on the client socket and on
the server's accepted socket.

Everything stays on 127.0.0.1 (or ::1), every wait has a timeout, and every socket is closed by a
context manager, even when something fails.  On systems without ``TCP_INFO`` (macOS, Windows) the
entry point raises :class:`LiveObservationUnsupported`.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from dataclasses import dataclass

from ..errors import ConnectionTimeout, HandshakeError
from .states import State

__all__ = ["TCPInfo", "LoopbackObservation", "LiveObservationUnsupported", "read_tcp_info", "observe_loopback"]


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
_TCP_INFO_BUFFER = 256


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


@dataclass(frozen=True)
class LoopbackObservation:
    client: TCPInfo
    server: TCPInfo
    client_address: tuple[str, int]
    server_address: tuple[str, int]


def _tcp_info_option() -> int:
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not sys.platform.startswith("linux"):
        raise LiveObservationUnsupported(
            f"TCP_INFO is Linux's; this is {sys.platform}. The simulator and the bundled capture still work."
        )
    return option


def read_tcp_info(sock: socket.socket) -> TCPInfo:
    """``getsockopt(IPPROTO_TCP, TCP_INFO)`` on a TCP socket, unpacked."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, _tcp_info_option(), _TCP_INFO_BUFFER)
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


def observe_loopback(
    host: str = "127.0.0.1",
    *,
    payload: bytes = b"ping",
    timeout: float = 5.0,
    client_receive_buffer: int | None = None,
) -> LoopbackObservation:
    """Open a real loopback connection, echo ``payload`` once, and read TCP_INFO on both ends.

    ``client_receive_buffer`` sets the client's SO_RCVBUF before it connects, which changes the
    window scale it announces in its SYN (a small buffer needs no scaling): an experiment for the lesson.
    """
    # Arguments first, the platform second: a host that is not loopback is refused the same way everywhere.
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"observe_loopback only connects on the loopback interface (127.0.0.1 or ::1), not {host!r}")
    if not payload:
        raise ValueError("payload must not be empty: the echo is what gives both ends an RTT sample")
    _tcp_info_option()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        listener.settimeout(timeout)
        server_info: list[TCPInfo] = []
        server_error: list[BaseException] = []
        received_everything = threading.Event()

        def serve() -> None:
            try:
                connection, _ = listener.accept()
                with connection:
                    connection.settimeout(timeout)
                    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    data = b""
                    while len(data) < len(payload):
                        chunk = connection.recv(len(payload) - len(data))
                        if not chunk:
                            break
                        data += chunk
                    connection.sendall(data)
                    # Read TCP_INFO only once the client has our echo, so both ends are measured.
                    received_everything.wait(timeout)
                    server_info.append(read_tcp_info(connection))
            except BaseException as error:  # handed to the caller's thread below
                server_error.append(error)

        server = threading.Thread(target=serve, name="tcp-info-server", daemon=True)
        server.start()
        try:
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.settimeout(timeout)
                if client_receive_buffer is not None:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_receive_buffer)
                client.connect(listener.getsockname()[:2])
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.sendall(payload)
                echoed = b""
                while len(echoed) < len(payload):
                    chunk = client.recv(len(payload) - len(echoed))
                    if not chunk:
                        break
                    echoed += chunk
                client_info = read_tcp_info(client)
                addresses = (client.getsockname()[:2], client.getpeername()[:2])
                received_everything.set()
                server.join(timeout)
        except TimeoutError as error:
            raise ConnectionTimeout(f"loopback connection did not complete within {timeout} s") from error
        finally:
            received_everything.set()
        if server.is_alive():
            raise ConnectionTimeout(f"loopback server did not finish within {timeout} s")
        if server_error:
            error = server_error[0]
            if isinstance(error, TimeoutError):
                raise ConnectionTimeout(f"loopback server timed out after {timeout} s") from error
            raise error
        if echoed != payload:
            raise HandshakeError("the loopback echo came back different: the connection broke")
    return LoopbackObservation(client_info, server_info[0], addresses[0], addresses[1])
