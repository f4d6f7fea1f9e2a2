"""Watch a real TCP connection from the inside: the kernel's ``TCP_INFO`` for both ends of a loopback connection.

Theory of operation
-------------------
Linux keeps, for every TCP socket, the numbers RFC 9293 and RFC 6298 talk about (state, smoothed RTT,
RTO, MSS, window scale, retransmissions) and ``getsockopt(IPPROTO_TCP, TCP_INFO)`` returns them as
``struct tcp_info``; :func:`handshake_lib.tcp.info.parse_tcp_info` decodes those bytes (sans-I/O).
This module owns the sockets and the thread.  No privileges are needed: :func:`observe_loopback`
opens a listener on a free loopback port, connects to it, exchanges a few bytes so both ends have
measured a round trip, and reads the structure on the client socket and on the server's accepted
socket.

Everything stays on 127.0.0.1 (or ::1), every wait has a timeout, and every socket is closed by a
context manager, even when something fails.  On systems without ``TCP_INFO`` (macOS, Windows) the
entry point raises :class:`LiveObservationUnsupported`.
"""

from __future__ import annotations

import socket
import sys
import threading
from dataclasses import dataclass

from ..errors import ConnectionTimeout, HandshakeError
from ..tcp.info import TCP_INFO_BUFFER_SIZE, LiveObservationUnsupported, TCPInfo, parse_tcp_info

__all__ = ["TCPInfo", "LoopbackObservation", "LiveObservationUnsupported", "read_tcp_info", "observe_loopback"]


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
    return parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, _tcp_info_option(), TCP_INFO_BUFFER_SIZE))


def _receive_up_to(sock: socket.socket, length: int) -> bytes:
    """Read until ``length`` bytes came or the peer closed (the socket's own timeout bounds each wait)."""
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            break
        data += chunk
    return data


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
                    connection.sendall(_receive_up_to(connection, len(payload)))
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
                echoed = _receive_up_to(client, len(payload))
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
