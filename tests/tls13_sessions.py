"""Real TLS 1.3 sessions recorded as they cross a loopback relay, for ``tests/test_tls13_capture.py``.

:class:`RecordingRelay` sits between a client and a server on 127.0.0.1 and forwards bytes both ways,
keeping each chunk with its direction in the order it crossed; :func:`write_session` turns that into a
pcap with :func:`handshake_lib.tcp.streams.write_pcap`.  The peers are OpenSSL 3.0 through Python's
``ssl`` (client and server in threads, the client's ``keylog_filename`` as the key log) or
``openssl s_client``/``s_server`` (for KeyUpdate, which Python's ``ssl`` cannot send).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from handshake_lib import net
from handshake_lib.peers.openssl import s_client, s_server
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT, write_pcap

RELAY_LIFETIME_S = 20.0
POLL_S = 0.05
REQUEST = b"GET /tls13 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
BODY = b"<p>Hello from OpenSSL over TLS 1.3</p>\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BODY), BODY)


class RecordingRelay:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port`` for one connection, recording both directions."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = net.listen_loopback()
        self.port = self.listener.getsockname()[1]
        self.chunks: list[tuple[str, bytes]] = []
        self.ends: tuple[tuple[str, int], tuple[str, int]] = (("127.0.0.1", 0), ("127.0.0.1", target_port))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + RELAY_LIFETIME_S
        self.listener.settimeout(RELAY_LIFETIME_S)
        try:
            client, address = self.listener.accept()
        except OSError:
            return
        self.ends = (address[:2], ("127.0.0.1", self.target_port))
        with contextlib.ExitStack() as sockets:
            sockets.enter_context(client)
            try:
                upstream = sockets.enter_context(net.connect("127.0.0.1", self.target_port))
            except OSError:
                return
            open_sides = {client, upstream}
            while open_sides and time.monotonic() < deadline:
                readable, _, _ = select.select(list(open_sides), [], [], POLL_S)
                for sock in readable:
                    other = upstream if sock is client else client
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        open_sides.discard(sock)
                        with contextlib.suppress(OSError):
                            other.shutdown(socket.SHUT_WR)
                        continue
                    self.chunks.append((CLIENT_TO_SERVER if sock is client else SERVER_TO_CLIENT, data))
                    with contextlib.suppress(OSError):
                        other.sendall(data)

    def close(self) -> None:
        self.thread.join(RELAY_LIFETIME_S + 2)
        self.listener.close()
        assert not self.thread.is_alive(), "the recording relay did not stop"

    def pcap(self) -> bytes:
        client, server = self.ends
        return write_pcap(self.chunks, client=client, server=server, start_time=time.time())

    def __enter__(self) -> RecordingRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class Session:
    pcap: Path
    keylog: Path
    port: int
    request: bytes = REQUEST
    response: bytes = RESPONSE
    received: bytes = b""  # what the client read
    notes: list[str] = field(default_factory=list)


def _serve_once(listener: socket.socket, context: ssl.SSLContext, errors: list[BaseException]) -> None:
    try:
        raw, _ = listener.accept()
        raw.settimeout(10)
        with context.wrap_socket(raw, server_side=True) as conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            conn.sendall(RESPONSE)
            conn.unwrap()  # close_notify, and the client's
    except BaseException as error:  # noqa: BLE001 - reported by the test through ``errors``
        errors.append(error)


def python_ssl_session(
    directory: Path,
    name: str,
    cert_path: Path,
    key_path: Path,
    ca_path: Path,
    *,
    server_curve: str | None = None,
) -> Session:
    """Python ``ssl`` client -> relay -> Python ``ssl`` server, TLS 1.3 only, one GET; the client's key log."""
    keylog = directory / f"{name}.keys"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    if server_curve is not None:
        server.set_ecdh_curve(server_curve)  # the client's x25519 share is not wanted: HelloRetryRequest
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(ca_path)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.keylog_filename = str(keylog)
    listener = net.listen_loopback()
    errors: list[BaseException] = []
    thread = threading.Thread(target=_serve_once, args=(listener, server, errors), daemon=True)
    thread.start()
    received = b""
    with listener, RecordingRelay(listener.getsockname()[1]) as relay:
        with (
            net.connect("127.0.0.1", relay.port, timeout=10) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as conn,
        ):
            conn.sendall(REQUEST)
            while len(received) < len(RESPONSE):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                received += chunk
            conn.unwrap()
        thread.join(15)
    assert not errors, errors
    pcap = directory / f"{name}.pcap"
    pcap.write_bytes(relay.pcap())
    return Session(pcap, keylog, relay.target_port, received=received)


def openssl_key_update_session(directory: Path, files: ServerFiles, name: str = "key_update") -> Session:
    """``openssl s_client`` -> relay -> ``openssl s_server -www``: the client sends KeyUpdate with
    update_requested (``K``), so the server answers with its own before its next record, then a GET."""
    keylog = directory / f"{name}.keys"
    options = ["-tls1_3", "-CAfile", str(files.ca_path), "-keylogfile", str(keylog), "-servername", "localhost"]
    with (
        s_server(files, "-tls1_3", "-www") as server,
        RecordingRelay(server.port) as relay,
        s_client(relay.port, *options) as client,
    ):
        client.read_output(re.compile(rb"Verify return code"), wait=20)
        client.write(b"K\n")  # KeyUpdate, update_requested (RFC 8446 section 4.6.3)
        client.read_output(re.compile(rb"KEYUPDATE"), wait=20)
        client.write(b"GET / HTTP/1.0\r\n\r\n")
        received = client.read_output(re.compile(rb"</HTML>|</html>|closed", re.IGNORECASE), wait=20)
        assert client.process.stdin is not None
        client.process.stdin.close()
        client.process.wait(20)
    pcap = directory / f"{name}.pcap"
    pcap.write_bytes(relay.pcap())
    return Session(pcap, keylog, relay.target_port, request=b"GET / HTTP/1.0", received=received)


EARLY_DATA = b"GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n"


def openssl_early_data_session(directory: Path, files: ServerFiles, name: str = "early_data") -> Session:
    """Two ``openssl s_client`` connections to ``openssl s_server -early_data``: the first keeps its ticket
    (``-sess_out``), the second resumes with it and sends a request as 0-RTT data (``-early_data``).
    The pcap and key log are the second connection's."""
    keylog, session_file, early = (directory / f"{name}{suffix}" for suffix in (".keys", ".session", ".early"))
    early.write_bytes(EARLY_DATA)
    common = ["-tls1_3", "-CAfile", str(files.ca_path), "-servername", "localhost"]
    with s_server(files, "-tls1_3", "-early_data", stdin=True) as server:
        with s_client(server.port, *common, "-sess_out", str(session_file)) as first:
            first.read_output(re.compile(rb"Verify return code"), wait=20)
            # s_client writes -sess_out when a NewSessionTicket arrives, right after the handshake.
            deadline = time.monotonic() + 10
            while not (session_file.exists() and session_file.stat().st_size) and time.monotonic() < deadline:
                first.read_output(re.compile(rb"$^"), wait=0.1)
            assert first.process.stdin is not None
            first.process.stdin.close()
            first.process.wait(20)
        with (
            RecordingRelay(server.port) as relay,
            s_client(relay.port, *common, "-sess_in", str(session_file), "-early_data", str(early),
                     "-keylogfile", str(keylog)) as second,
        ):  # fmt: skip
            received = second.read_output(re.compile(rb"Early data was accepted|Early data was rejected"), wait=20)
            server.read_output(re.compile(rb"END EARLY DATA|Early data"), wait=5)
            assert second.process.stdin is not None
            second.process.stdin.close()
            second.process.wait(20)
    pcap = directory / f"{name}.pcap"
    pcap.write_bytes(relay.pcap())
    return Session(pcap, keylog, relay.target_port, request=EARLY_DATA, received=received)
