"""net: loopback servers that really stop, deadlines that really fire; pki: chains OpenSSL accepts."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require
from cryptography import x509

from handshake_lib import net
from handshake_lib.errors import ConnectionTimeout
from handshake_lib.net import connect, listen_loopback, run_connection
from handshake_lib.peers import PeerUnavailable
from handshake_lib.peers.openssl import PythonSSLServer, openssl_server, s_server, server_context
from handshake_lib.pki import CoursePKI
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.verify import clear_trust_store_cache, load_trust_store


def test_openssl_verifies_the_course_chain(server_files: ServerFiles) -> None:
    openssl = require("openssl")
    ca, cert = server_files.ca_path, server_files.cert_path
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), "-verify_hostname", "localhost", "-purpose", "sslserver", str(cert)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK" in result.stdout


def test_openssl_rejects_the_chain_for_another_host(server_files: ServerFiles) -> None:
    openssl = require("openssl")
    ca, cert = server_files.ca_path, server_files.cert_path
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), "-verify_hostname", "example.com", str(cert)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "hostname mismatch" in result.stdout + result.stderr


def test_ssl_server_serves_a_page_to_a_verifying_openssl_client(server_files: ServerFiles, tmp_path: Path) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    keylog = tmp_path / "keys.log"
    context = server_context(cert, key, maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog)
    client_context = ssl.create_default_context(cafile=str(ca))
    with PythonSSLServer(context) as server:
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


def test_ssl_server_records_the_clients_failure(server_files: ServerFiles) -> None:
    cert, key = server_files.cert_path, server_files.key_path
    with PythonSSLServer(server_context(cert, key)) as server, connect(server.host, server.port) as raw:
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


class _EchoCore:
    """Each chunk received is an event; whatever ``queue`` holds is sent next."""

    def __init__(self) -> None:
        self.queue = b""

    def data_to_send(self) -> bytes:
        data, self.queue = self.queue, b""
        return data

    def receive_data(self, data: bytes) -> list[object]:
        return [data] if data else []


def test_run_connection_sends_what_the_callbacks_queued_before_returning() -> None:
    core = _EchoCore()
    with listen_loopback() as listener:
        host, port = listener.getsockname()
        with connect(host, port) as sock:
            peer, _ = listener.accept()
            with peer:
                peer.sendall(b"ping")
                answer = lambda event: setattr(core, "queue", b"pong")  # noqa: E731 - a one-line callback
                events = run_connection(core, sock, until=lambda event: event == b"ping", on_event=answer)
                peer.settimeout(2)
                assert events == [b"ping"] and peer.recv(10) == b"pong"


@dataclass
class _Entry:
    direction: str


class _FakeClock:
    """``perf_counter`` that moves only when told; ``monotonic`` stays real (deadlines still work)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


class _ScriptedSocket:
    """A socket on a fake clock: the peer's bytes arrive at given moments; each write takes 1 ms."""

    def __init__(self, clock: _FakeClock, arrivals: list[tuple[float, bytes]]) -> None:
        self.clock, self.arrivals = clock, arrivals
        self.written: list[tuple[float, bytes]] = []  # (moment sendall returned, bytes)

    def settimeout(self, timeout: float | None) -> None:
        pass

    def recv(self, size: int) -> bytes:
        self.clock.now, data = self.arrivals.pop(0)
        return data

    def sendall(self, data: bytes) -> None:
        self.clock.now += 0.001
        self.written.append((self.clock.now, data))


class _AnsweringCore:
    """Says hello, then answers each chunk with one record after 10 ms of work; keeps a transcript."""

    incoming_direction = "server->client"

    def __init__(self, clock: _FakeClock) -> None:
        self.clock = clock
        self.transcript: list[_Entry] = [_Entry("client->server")]
        self.queue = b"hello"

    def data_to_send(self) -> bytes:
        data, self.queue = self.queue, b""
        return data

    def receive_data(self, data: bytes) -> list[object]:
        self.transcript.append(_Entry("server->client"))
        self.clock.now += 0.010  # building the answer (an RSA encryption, say) takes time
        self.transcript.append(_Entry("client->server"))
        self.queue = b"answer"
        return [data]


def test_socket_driver_stamps_a_record_received_when_recv_returns_and_one_sent_when_sendall_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _FakeClock(100.0)
    # Only the driver's module sees the fake clock; wherever SocketDriver lives, that is the one to patch.
    monkeypatch.setattr(sys.modules[net.SocketDriver.__module__], "time", clock)
    sock = _ScriptedSocket(clock, [(100.050, b"server flight")])
    core = _AnsweringCore(clock)
    driver = net.SocketDriver(core, sock)  # type: ignore[arg-type]
    driver.flush()
    assert driver.receive(time.monotonic() + 5) == [b"server flight"]
    assert [data for _, data in sock.written] == [b"hello", b"answer"]
    # hello: written at 100.001.  The server's flight: out of recv at 100.050.  The answer: built by
    # 100.060 while the flight was handled, but on the wire only when sendall returned, at 100.061.
    assert driver.timings == [
        (pytest.approx(0.001), "client->server", 0),
        (pytest.approx(0.050), "server->client", 1),
        (pytest.approx(0.061), "client->server", 2),
    ]
    assert [at for at, _ in sock.written] == pytest.approx([100.001, 100.061])


# -- openssl_server: fresh keys, a real OpenSSL, a key log, and nothing left behind -----------------------
def _python_client(cafile: Path, ciphers: str, *, keylog: Path | None = None) -> ssl.SSLContext:
    # Python's default client list has no plain RSA key exchange, so name the suites the server runs.
    client = ssl.create_default_context(cafile=str(cafile))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers(ciphers)
    if keylog is not None:
        client.keylog_filename = str(keylog)
    return client


def _get_page(client: ssl.SSLContext, host: str, port: int, server_name: str) -> tuple[bytes, str]:
    with connect(host, port) as raw, client.wrap_socket(raw, server_hostname=server_name) as tls:
        cipher = tls.cipher()[0]
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
    return response, cipher


def test_write_server_files_writes_a_chain_the_ca_vouches_for(tmp_path) -> None:
    pki = CoursePKI.create()
    files = pki.write_server_files(tmp_path, ("course.test", "127.0.0.1"))
    assert files.pki is pki and {files.ca_path, files.cert_path, files.key_path} <= set(tmp_path.iterdir())
    assert files.key_path.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    leaf = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    assert leaf == files.issued.certificate
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["course.test"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    leaf.verify_directly_issued_by(ca)  # raises if the CA file did not sign this certificate


def test_openssl_server_serves_a_page_and_logs_the_clients_master_secret(tmp_path) -> None:
    client_keylog = tmp_path / "python-client.log"
    with openssl_server("AES128-SHA256") as peer:
        client = _python_client(peer.cafile, "AES128-SHA256", keylog=client_keylog)
        assert peer.last_error is None and peer.master_secret(bytes(32)) is None  # nothing happened yet
        response, cipher = _get_page(client, peer.host, peer.port, peer.server_name)
        assert peer.url == f"https://localhost:{peer.port}/" and peer.host == "127.0.0.1"
        assert peer.ciphers == "AES128-SHA256" and cipher == "AES128-SHA256"
        assert peer.certificate == peer.files.issued.certificate
        # The client also logs an "RSA" line (the pre-master secret, keyed by its encryption).
        client_lines = [entry for entry in read_keylog(client_keylog).entries if entry.label == "CLIENT_RANDOM"]
        assert len(client_lines) == 1
        client_random, client_secret = client_lines[0].client_random, client_lines[0].secret
        # Two implementations' key logs, one secret: the server's log is OpenSSL's, read by our parser.
        assert peer.master_secret(client_random) == client_secret
        assert peer.keylog().master_secret(client_random) == client_secret
    assert response.startswith(b"HTTP/1.1 200 OK") and b"Hello from OpenSSL" in response
    assert peer.server.connections[-1].version == "TLSv1.2" and peer.last_error is None


def test_openssl_server_stops_and_deletes_its_folder() -> None:
    with openssl_server() as peer:
        folders = {peer.keylog_path.parent, peer.files.key_path.parent, peer.cafile.parent}
        assert all(folder.is_dir() for folder in folders)
        socket.create_connection((peer.host, peer.port), timeout=1).close()  # listening now
    assert not any(folder.exists() for folder in folders)  # keys, CA and key log are gone
    with pytest.raises(OSError):
        socket.create_connection((peer.host, peer.port), timeout=1).close()


def test_openssl_server_reports_why_the_latest_connection_failed() -> None:
    with openssl_server("AES128-GCM-SHA256") as peer:
        _get_page(_python_client(peer.cafile, peer.ciphers), peer.host, peer.port, peer.server_name)
        client = _python_client(peer.cafile, "AES256-SHA256")  # nothing the server accepts
        with pytest.raises(ssl.SSLError):
            _get_page(client, peer.host, peer.port, peer.server_name)
    # Read after the block: the server's threads have finished, so the error is recorded.
    assert [record.error is None for record in peer.server.connections] == [True, False]
    assert peer.last_error is not None and "NO_SHARED_CIPHER" in peer.last_error.upper().replace(" ", "_")


def test_openssl_server_names_itself_by_the_first_hostname_and_verifies_only_those() -> None:
    with openssl_server(hostnames=("course.test", "127.0.0.1")) as peer:
        assert peer.url == f"https://course.test:{peer.port}/" and peer.server_name == "course.test"
        response, _ = _get_page(_python_client(peer.cafile, peer.ciphers), peer.host, peer.port, "course.test")
        assert response.startswith(b"HTTP/1.1 200 OK")
        with pytest.raises(ssl.SSLCertVerificationError, match="localhost"):
            _get_page(_python_client(peer.cafile, peer.ciphers), peer.host, peer.port, "localhost")


def test_openssl_server_reuses_the_callers_files_and_leaves_them(tmp_path) -> None:
    files = CoursePKI.create().write_server_files(tmp_path)
    with openssl_server("AES128-GCM-SHA256", files=files, keylog=False) as peer:
        assert peer.files is files and peer.cafile == files.ca_path
        response, _ = _get_page(_python_client(files.ca_path, peer.ciphers), peer.host, peer.port, "localhost")
        assert response.startswith(b"HTTP/1.1 200 OK")
        assert not peer.keylog_path.exists() and peer.keylog().entries == []  # keylog=False: nothing written
    assert files.key_path.exists() and files.cert_path.exists()  # the caller's to delete, not the server's


def test_s_server_says_when_openssl_is_missing(tmp_path, monkeypatch) -> None:
    # Without the program, a typed error before anything starts (tests turn it into a skip), never a hang.
    files = CoursePKI.create().write_server_files(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PeerUnavailable, match="openssl program is not installed"), s_server(files):
        pass


def test_s_server_reports_a_program_that_never_listens(tmp_path) -> None:
    # A program that exits at once (here: `false`) never prints its ACCEPT line: a typed error, quickly.
    false = require("false")
    files = CoursePKI.create().write_server_files(tmp_path)
    started = time.monotonic()
    with pytest.raises(PeerUnavailable, match="did not say where it listens"), s_server(files, executable=false):
        pass
    assert time.monotonic() - started < 5


def test_trust_store_cache_notices_a_swapped_ca_file(tmp_path) -> None:
    # tls.verify keeps parsed CA files (lru_cache, no lock: the sans-I/O package imports no threading);
    # a lesson that swaps CAs must still be seen on the next load.
    first, second = CoursePKI.create(), CoursePKI.create(name="Another Course Root CA")
    path = first.write_ca(tmp_path)
    assert load_trust_store(path) == [first.root.certificate]
    assert load_trust_store(path)[0] is load_trust_store(path)[0]  # parsed once, then cached
    second.write_ca(tmp_path)  # the same file name, another CA
    assert load_trust_store(path) == [second.root.certificate]
    clear_trust_store_cache()
    assert load_trust_store(path) == [second.root.certificate]
