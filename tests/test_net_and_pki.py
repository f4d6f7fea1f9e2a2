"""net: loopback servers that really stop, deadlines that really fire; pki: chains OpenSSL accepts."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time

import pytest
from conftest import require

from handshake_lib.errors import ConnectionTimeout
from handshake_lib.net import SSLServer, connect, listen_loopback, run_connection, server_context
from handshake_lib.pki import CoursePKI


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("pki")
    pki = CoursePKI.create()
    server = pki.issue_server()
    ca = pki.write_ca(directory)
    cert, key = CoursePKI.write_issued(server, directory)
    return ca, cert, key


def test_openssl_verifies_the_course_chain(pki_files) -> None:
    openssl = require("openssl")
    ca, cert, _ = pki_files
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), "-verify_hostname", "localhost", "-purpose", "sslserver", str(cert)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK" in result.stdout


def test_openssl_rejects_the_chain_for_another_host(pki_files) -> None:
    openssl = require("openssl")
    ca, cert, _ = pki_files
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), "-verify_hostname", "example.com", str(cert)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "hostname mismatch" in result.stdout + result.stderr


def test_ssl_server_serves_a_page_to_a_verifying_openssl_client(pki_files, tmp_path) -> None:
    ca, cert, key = pki_files
    keylog = tmp_path / "keys.log"
    context = server_context(cert, key, maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog)
    client_context = ssl.create_default_context(cafile=str(ca))
    with SSLServer(context) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        with connect(server.host, server.port) as raw:
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                response = b""
                while chunk := tls.recv(4096):
                    response += chunk
        port = server.port
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert b"Hello from OpenSSL" in response
    assert server.connections[0].version == "TLSv1.2"
    key_lines = [line for line in keylog.read_text().splitlines() if not line.startswith("#")]
    assert len(key_lines) == 1 and key_lines[0].startswith("CLIENT_RANDOM ")
    # After the with block, nothing listens any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_ssl_server_records_the_clients_failure(pki_files) -> None:
    _, cert, key = pki_files
    with SSLServer(server_context(cert, key)) as server, connect(server.host, server.port) as raw:
        raw.sendall(b"this is not TLS\r\n\r\n")
        raw.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            raw.recv(100)  # the server's alert, or the close
        deadline = time.monotonic() + 2
        while not server.connections or server.connections[0].error is None:
            assert time.monotonic() < deadline, "the server never recorded the failure"
            time.sleep(0.01)
    assert isinstance(server.connections[0].error, ssl.SSLError)


class _SilentCore:
    """A core that sends a greeting and then waits forever for an answer that never comes."""

    def __init__(self) -> None:
        self.sent = False
        self.received: list[bytes] = []

    def data_to_send(self) -> bytes:
        if self.sent:
            return b""
        self.sent = True
        return b"hello?"

    def receive_data(self, data: bytes) -> list[object]:
        self.received.append(data)
        return []


def test_run_connection_times_out_on_a_silent_peer() -> None:
    with listen_loopback() as listener:
        host, port = listener.getsockname()
        with connect(host, port) as sock:
            peer, _ = listener.accept()
            with peer:
                started = time.monotonic()
                with pytest.raises(ConnectionTimeout):
                    run_connection(_SilentCore(), sock, until=lambda event: True, timeout=0.3)
                assert time.monotonic() - started < 3
                assert peer.recv(10) == b"hello?"


def test_run_connection_stops_when_the_peer_closes() -> None:
    core = _SilentCore()
    with listen_loopback() as listener:
        host, port = listener.getsockname()
        with connect(host, port) as sock:
            peer, _ = listener.accept()
            peer.close()
            events = run_connection(core, sock, until=lambda event: True, timeout=2)
    assert events == []
    assert core.received[-1] == b""
