"""Issue 8, server side: the limits that keep our servers' memory, threads and time bounded under abuse.

Each test crosses one documented limit (docs/limits.md, "Server") and checks what a peer sees on the
wire and what the server keeps: a bounded log of connections, a capped number of records per
handshake message, of warning alerts and of empty records, the system's listen backlog, a cap on
connections served at once, h11's HTTP (bare LF answered, an oversized head refused), the console log
of ``tls serve``, and the alerts for a bad ChangeCipherSpec, a ClientHello without null compression
and an SSLv2-format ClientHello.  Performance figures are in ``bench/load.py``, not here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT

from handshake_lib import net
from handshake_lib.errors import (
    ConnectionTimeout,
    IllegalParameter,
    ProtocolVersionError,
    TLSAlert,
    UnexpectedMessage,
)
from handshake_lib.net.tls import MAX_REQUEST_HEAD, TLSPageServer, open_tls
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import (
    MAX_EMPTY_RECORDS,
    MAX_RECORDS_PER_HANDSHAKE_MESSAGE,
    MAX_TRANSCRIPT_RECORDS,
    MAX_WARNING_ALERTS,
    AlertReceived,
)
from handshake_lib.tls.constants import ContentType
from handshake_lib.tls.extensions import UnknownExtension
from handshake_lib.tls.messages import ClientHello
from handshake_lib.tls.record import MAX_HANDSHAKE_MESSAGE_LENGTH, encode_record
from handshake_lib.tls.server import TLSServer
from handshake_lib.tls.states import State

TIMEOUT = 5.0
# An SSL 2.0-format ClientHello (RFC 5246 appendix E.2) offering TLS 1.0: 2-byte length with the high
# bit set, msg_type 1, version 3.1, cipher_specs length 3, session_id length 0, challenge length 16.
SSL2_CLIENT_HELLO = bytes.fromhex("801c" "01" "0301" "0003" "0000" "0010" "00002f") + bytes(16)


# -- helpers ---------------------------------------------------------------------------------------
def tls12_context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-GCM-SHA256")
    return context


def ssl_exchange(context: ssl.SSLContext, port: int, request: bytes) -> bytes:
    """Python's ssl (OpenSSL) sends ``request`` to our server and reads until it closes."""
    with net.connect("127.0.0.1", port) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(request)
        response = b""
        try:
            while chunk := tls.recv(65536):
                response += chunk
        except (ssl.SSLError, OSError):
            pass  # the server may close hard after answering: what came first is what we check
        return response


def raw_answer(port: int, data: bytes) -> bytes:
    """Send ``data`` on a plain TCP connection; everything the server sent back before closing."""
    with net.connect("127.0.0.1", port, timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def alert_in(answer: bytes) -> int:
    """The description of the (plaintext) alert record ``answer`` starts with."""
    assert answer[:1] == bytes([ContentType.alert]) and answer[3:5] == b"\x00\x02", answer[:16].hex()
    assert answer[5] == 2, "a fatal alert"
    return answer[6]


def wait_until_finished(server: TLSPageServer, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (len(server.connections) >= count and all(c.finished for c in list(server.connections)[:count])):
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not finish {count} connections: {list(server.connections)}")
        time.sleep(0.01)


def make_pair(server_certificate) -> tuple[TLSClient, TLSServer]:
    client = TLSClient("localhost", verify=False)
    server = TLSServer([server_certificate.der], server_certificate.private_key)
    return client, server


def handshake_in_memory(client: TLSClient, server: TLSServer) -> None:
    client.start()
    for _ in range(3):
        if data := client.data_to_send():
            server.receive_data(data)
        if data := server.data_to_send():
            client.receive_data(data)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED


def split_records(data: bytes) -> list[bytes]:
    records = []
    while data:
        length = int.from_bytes(data[3:5], "big")
        records.append(data[: 5 + length])
        data = data[5 + length :]
    return records


# -- item 1: a bounded log of connections, no transcripts unless asked, no dead threads ---------------
def test_page_server_keeps_a_bounded_log_without_transcripts(server_files: ServerFiles) -> None:
    issued = server_files.issued
    context = tls12_context(server_files.ca_path)
    threads_before = threading.active_count()
    with TLSPageServer([issued.der], issued.private_key, history=20) as server:
        for _ in range(300):  # connect and leave: each is a finished connection to log
            socket.create_connection(("127.0.0.1", server.port)).close()
        for _ in range(3):
            assert ssl_exchange(context, server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        wait_until_finished(server, 20)
        # One event loop thread, whatever the number of connections served.
        assert threading.active_count() <= threads_before + 1
    assert server.accepted == 303 and server.live_connections == 0
    kept = list(server.connections)
    assert len(kept) == 20 and [record.number for record in kept] == list(range(284, 304))
    assert all(record.transcript == [] for record in kept)
    assert [record.status for record in kept[-3:]] == [200, 200, 200]
    assert kept[0].outcome == "closed before the handshake"


def test_page_server_keeps_transcripts_when_asked(server_files: ServerFiles) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.der], issued.private_key, keep_transcripts=True) as server:
        ssl_exchange(tls12_context(server_files.ca_path), server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(server.connections[0].transcript[0].messages[0], ClientHello)


def test_thread_server_caps_its_threads_and_forgets_finished_ones() -> None:
    release = threading.Event()
    served: list[bytes] = []

    class Echo(net.LoopbackServer):
        def serve(self, conn: socket.socket) -> None:
            release.wait(TIMEOUT)
            served.append(conn.recv(16))

    with Echo(max_connections=2) as server:
        clients = [net.connect(server.host, server.port) for _ in range(6)]  # all connect: the kernel queues them
        for number, client in enumerate(clients):
            client.sendall(bytes([number]))
        deadline = time.monotonic() + TIMEOUT
        while server.live_threads < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.live_threads == 2  # the other four wait in the accept queue, not in threads
        release.set()
        while len(served) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        while server.live_threads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(served) == [bytes([n]) for n in range(6)] and server.live_threads == 0
        for client in clients:
            client.close()


def test_thread_server_ends_a_trickling_connection_at_its_deadline() -> None:
    """One byte every 0.05 s never trips a per-read timeout of 0.3 s; the whole-connection deadline ends it."""
    ended: list[bytes] = []

    class Reader(net.LoopbackServer):
        def serve(self, conn: socket.socket) -> None:
            received = b""
            with contextlib.suppress(OSError):
                while chunk := conn.recv(1):
                    received += chunk
            ended.append(received)

    with Reader(timeout=0.3) as server, net.connect(server.host, server.port) as client:
        closed_by_server = False
        for _ in range(200):  # up to 10 s of trickling, unless the server ends it first
            try:
                client.sendall(b"x")
            except OSError:
                closed_by_server = True
                break
            time.sleep(0.05)
        deadline = time.monotonic() + TIMEOUT
        while not ended and time.monotonic() < deadline:
            time.sleep(0.01)
    assert closed_by_server and ended and 0 < len(ended[0]) < 200


# -- item 2: records per handshake message ---------------------------------------------------------
def largest_client_hello() -> bytes:
    """A ClientHello of exactly MAX_HANDSHAKE_MESSAGE_LENGTH (128 KiB) bytes of body."""
    hello = ClientHello(random=bytes(32), cipher_suites=[0x009C] * 32767, extensions=[UnknownExtension(21, b"")])
    missing = MAX_HANDSHAKE_MESSAGE_LENGTH + 4 - len(hello.to_bytes())
    hello.extensions = [UnknownExtension(21, bytes(missing))]
    message = hello.to_bytes()
    assert len(message) == 131_076
    return message


def one_byte_records(message: bytes) -> bytes:
    return b"".join(encode_record(ContentType.handshake, 0x0301, message[i : i + 1]) for i in range(len(message)))


def test_a_hello_in_131076_one_byte_records_is_refused_early(server_certificate) -> None:
    _, server = make_pair(server_certificate)
    with pytest.raises(UnexpectedMessage, match="more than 4096 records"):
        server.receive_data(one_byte_records(largest_client_hello()))
    # What the connection kept is bounded by the limit, not by what the peer sent.
    received = [entry for entry in server.transcript if entry.direction == "client->server"]
    assert len(received) == MAX_RECORDS_PER_HANDSHAKE_MESSAGE + 1
    assert server.transcript[-1].messages[0].description == TLSAlert.unexpected_message
    assert server.data_to_send()[-2:] == bytes([2, TLSAlert.unexpected_message])
    # A core told to keep no transcript (as TLSPageServer's are by default) keeps not even those.
    quiet = TLSServer([server_certificate.der], server_certificate.private_key, keep_transcript=False)
    with pytest.raises(UnexpectedMessage):
        quiet.receive_data(one_byte_records(largest_client_hello()))
    assert quiet.transcript == [] and quiet.data_to_send()[-2:] == bytes([2, TLSAlert.unexpected_message])


def test_a_hello_in_one_byte_records_within_the_limit_is_still_served(server_certificate) -> None:
    client, server = make_pair(server_certificate)
    client.start()
    hello_records = split_records(client.data_to_send())
    assert len(hello_records) == 1
    message = hello_records[0][5:]
    assert len(message) < MAX_RECORDS_PER_HANDSHAKE_MESSAGE  # a real hello, byte by byte, as test suites send it
    server.receive_data(one_byte_records(message))
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.CONNECTED and server.state is State.CONNECTED


def test_page_server_sends_unexpected_message_for_a_hello_in_tiny_records(server_files: ServerFiles) -> None:
    issued = server_files.issued
    records = one_byte_records(largest_client_hello())[: 6 * (MAX_RECORDS_PER_HANDSHAKE_MESSAGE + 50)]
    with TLSPageServer([issued.der], issued.private_key) as server:
        answer = raw_answer(server.port, records)
        wait_until_finished(server, 1)
    assert alert_in(answer) == TLSAlert.unexpected_message
    assert isinstance(server.connections[0].error, UnexpectedMessage)


# -- item 2, both roles: what a connection keeps --------------------------------------------------------
@pytest.mark.parametrize("role", ["client", "server"])
def test_the_transcript_is_bounded_however_small_the_records(server_certificate, role: str) -> None:
    """A peer that sends its data one byte per record gets every byte through, but not a transcript entry
    for each: past MAX_TRANSCRIPT_RECORDS, records are counted, not kept."""
    client, server = make_pair(server_certificate)
    handshake_in_memory(client, server)
    peer, connection = (server, client) if role == "client" else (client, server)
    kept_before = len(connection.transcript)
    received = bytearray()
    sent = (MAX_TRANSCRIPT_RECORDS // 1000 + 2) * 1000
    for _ in range(sent // 1000):  # in rounds, as a socket would deliver them
        for _ in range(1000):
            peer.send_application_data(b"x")
        received += b"".join(e.data for e in connection.receive_data(peer.data_to_send()) if hasattr(e, "data"))
    assert bytes(received) == b"x" * sent
    assert len(connection.transcript) == MAX_TRANSCRIPT_RECORDS
    assert connection.transcript_overflow == kept_before + sent - MAX_TRANSCRIPT_RECORDS


# -- item 8: warning alerts; and empty records ------------------------------------------------------
WARNING_USER_CANCELED = encode_record(ContentType.alert, 0x0303, bytes([1, TLSAlert.user_canceled]))


@pytest.mark.parametrize("role", ["client", "server"])
def test_only_a_few_warning_alerts_in_a_row(server_certificate, role: str) -> None:
    client, server = make_pair(server_certificate)
    handshake_in_memory(client, server)
    peer, connection = (server, client) if role == "client" else (client, server)

    def warnings(count: int) -> bytes:
        for _ in range(count):
            peer._send_alert(1, TLSAlert.user_canceled)  # protected, as a real peer's would be
        return peer.data_to_send()

    # Four are accepted (OpenSSL and BoringSSL accept as many); any other record starts the count again.
    events = connection.receive_data(warnings(MAX_WARNING_ALERTS))
    assert [type(e) for e in events] == [AlertReceived] * MAX_WARNING_ALERTS
    peer.send_application_data(b"x")
    connection.receive_data(peer.data_to_send() + warnings(MAX_WARNING_ALERTS))
    with pytest.raises(UnexpectedMessage, match="warning alerts in a row"):
        connection.receive_data(warnings(1))
    assert connection.data_to_send()  # the fatal alert, protected: the keys are in use


def test_endless_warning_alerts_end_our_client_at_once_not_at_the_timeout() -> None:
    """A raw server answers the ClientHello with nothing but warning alerts, forever."""
    listener = net.listen_loopback()
    stop = threading.Event()

    def flood() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.recv(65536)
            try:
                while not stop.is_set():
                    conn.sendall(WARNING_USER_CANCELED * 100)
            except OSError:
                pass

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        with pytest.raises(UnexpectedMessage, match="warning alerts"):
            open_tls("127.0.0.1", listener.getsockname()[1], "localhost", timeout=30, verify=False)
    finally:
        stop.set()
        thread.join(TIMEOUT)
        listener.close()


def test_endless_empty_records_are_refused(server_certificate) -> None:
    client, server = make_pair(server_certificate)
    handshake_in_memory(client, server)
    for _ in range(MAX_EMPTY_RECORDS):
        client._send_records(ContentType.application_data, b"")  # an empty record, legal once in a while
    client.send_application_data(b"x")  # data resets the count
    for _ in range(MAX_EMPTY_RECORDS + 1):
        client._send_records(ContentType.application_data, b"")
    with pytest.raises(UnexpectedMessage, match="empty application data records"):
        server.receive_data(client.data_to_send())


# -- item 3: backlog and concurrency ----------------------------------------------------------------
def test_listeners_take_a_burst_of_clients_into_the_kernel_queue() -> None:
    assert net.listen_backlog() >= socket.SOMAXCONN
    with net.listen_loopback() as listener:  # nobody accepts: only the backlog holds the clients
        port = listener.getsockname()[1]
        clients = []
        try:
            for _ in range(200):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                clients.append(sock)
            # With the old backlog of 16, the 18th SYN onwards was dropped and retried for seconds.
            deadline = time.monotonic() + TIMEOUT
            pending = list(clients)
            while pending and time.monotonic() < deadline:
                import select

                _, writable, _ = select.select([], pending, [], 0.05)
                pending = [s for s in pending if s not in writable]
            assert not pending and all(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in clients)
        finally:
            for sock in clients:
                sock.close()


def test_page_server_serves_at_most_max_connections_and_queues_the_rest(server_files: ServerFiles) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.der], issued.private_key, max_connections=2, timeout=0.5) as server:
        idle = [net.connect("127.0.0.1", server.port) for _ in range(2)]  # connected, sending nothing
        deadline = time.monotonic() + TIMEOUT
        while server.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The third waits in the kernel's queue until an idle one reaches its deadline, then is served.
        response = ssl_exchange(tls12_context(server_files.ca_path), server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in idle:
            sock.close()
    assert response.startswith(b"HTTP/1.1 200 OK")
    first, second, third = list(server.connections)
    assert isinstance(first.error, ConnectionTimeout) and isinstance(second.error, ConnectionTimeout)
    assert "handshake did not finish" in str(first.error) and third.status == 200


# -- item 5 (HTTP by h11, TLS details) --------------------------------------------------------------
def test_a_request_with_bare_lf_line_ends_is_answered(server_files: ServerFiles) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.der], issued.private_key) as server:
        response = ssl_exchange(tls12_context(server_files.ca_path), server.port, b"GET / HTTP/1.0\n\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and b"Hello from the Handshakes TLS server" in response
    assert server.connections[0].outcome == "GET / HTTP/1.0 -> 200 OK"


def test_a_request_head_over_the_limit_gets_431(server_files: ServerFiles) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.der], issued.private_key) as server:
        request = b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD  # no blank line, ever
        response = ssl_exchange(tls12_context(server_files.ca_path), server.port, request)
    assert response.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    record = server.connections[0]
    assert record.status == 431 and len(record.request) <= MAX_REQUEST_HEAD


def test_a_change_cipher_spec_longer_than_one_byte_is_unexpected_message(server_certificate) -> None:
    for bad in (b"\x01\x01", b"\x02"):
        client, server = make_pair(server_certificate)
        client.start()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        key_exchange, change_cipher_spec, _finished = split_records(client.data_to_send())
        assert change_cipher_spec == b"\x14\x03\x03\x00\x01\x01"
        with pytest.raises(UnexpectedMessage, match="ChangeCipherSpec"):
            server.receive_data(key_exchange + encode_record(ContentType.change_cipher_spec, 0x0303, bad))
        assert server.data_to_send()[-2:] == bytes([2, TLSAlert.unexpected_message])


@pytest.mark.parametrize("bad", [b"\x01\x01", b"\x02"], ids=["two bytes", "value 2"])
def test_openssl_answers_a_bad_change_cipher_spec_with_unexpected_message_too(server_files: ServerFiles, bad) -> None:
    """The same bad ChangeCipherSpec, sent by our client core to OpenSSL (Python's ssl): the alert we chose."""
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )  # fmt: skip
    client = TLSClient("localhost", verify=False)
    with PythonSSLServer(context) as server, net.connect(server.host, server.port, timeout=TIMEOUT) as sock:
        client.start()
        sock.sendall(client.data_to_send())
        answer = b""
        while not answer:  # until the server's flight is in and our core has its second flight ready
            client.receive_data(sock.recv(65536))
            answer = client.data_to_send()
        key_exchange, _change_cipher_spec, _finished = split_records(answer)
        sock.sendall(key_exchange + encode_record(ContentType.change_cipher_spec, 0x0303, bad))
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                answer += chunk
    assert alert_in(answer) == TLSAlert.unexpected_message


def test_a_client_hello_without_null_compression_gets_illegal_parameter(server_files: ServerFiles) -> None:
    issued = server_files.issued
    hello = ClientHello(random=bytes(32), cipher_suites=[0x009C], compression_methods=b"\x01", extensions=[])
    with TLSPageServer([issued.der], issued.private_key) as server:
        answer = raw_answer(server.port, encode_record(ContentType.handshake, 0x0301, hello.to_bytes()))
        wait_until_finished(server, 1)
    assert alert_in(answer) == TLSAlert.illegal_parameter
    assert isinstance(server.connections[0].error, IllegalParameter)


def test_an_sslv2_client_hello_is_refused_by_name(server_files: ServerFiles) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.der], issued.private_key) as server:
        answer = raw_answer(server.port, SSL2_CLIENT_HELLO)
        wait_until_finished(server, 1)
    assert alert_in(answer) == TLSAlert.protocol_version
    record = server.connections[0]
    assert isinstance(record.error, ProtocolVersionError) and "SSLv2-compatible ClientHello" in record.outcome


# -- item 4: the console log of `tls serve` ----------------------------------------------------------
def test_tls_serve_logs_every_connection_whatever_it_did(server_files: ServerFiles) -> None:
    command = [
        sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0",
        "--cert", str(server_files.cert_path), "--key", str(server_files.key_path),
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    context = tls12_context(server_files.ca_path)
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        match = re.search(r"https://localhost:(\d+)/", banner)
        assert match, banner + (server.stderr.read() if server.poll() is not None else "")  # type: ignore[union-attr]
        port = int(match.group(1))
        # 1: a handshake, then a close without a request (this froze the log before).
        with net.connect("127.0.0.1", port) as raw, context.wrap_socket(raw, server_hostname="localhost"):
            pass
        # 2: more than the request limit with no blank line (this froze it too).
        ssl_exchange(context, port, b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_REQUEST_HEAD + 10))
        # 3: an SSLv2-format ClientHello; 4: a normal request.
        raw_answer(port, SSL2_CLIENT_HELLO)
        ssl_exchange(context, port, b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # Whatever the 0.2 s log loop has not printed yet is printed when the server stops.
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    assert server.returncode == 0 and "Traceback" not in err
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"^connection (\d+): (.*)$", out, re.MULTILINE)}
    assert sorted(lines) == [1, 2, 3, 4], out
    assert "closed after the handshake without a request" in lines[1]
    assert "431" in lines[2]
    assert "SSLv2-compatible ClientHello" in lines[3] and "protocol_version" in lines[3]
    assert "GET /after HTTP/1.1 -> 200 OK" in lines[4]
