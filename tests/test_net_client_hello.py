"""Raw ClientHello bytes to a real OpenSSL server (net.tls.send_client_hello, OpenSSLServer.send_client_hello),
long-lived peers that still stop (peers.BackgroundPeer), and OpenSSL's client fetching a page
(peers.openssl.openssl_fetch)."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time

import pytest

from handshake_lib.lessons.client_hello import DEFAULT_EXTENSIONS, SERVER_CIPHERS, build_client_hello
from handshake_lib.net.tls import send_client_hello
from handshake_lib.peers import BackgroundPeer
from handshake_lib.peers.openssl import OpenSSLServer, openssl_fetch, openssl_server
from handshake_lib.tls.constants import CipherSuite, ExtensionType
from handshake_lib.tls.flight import handshake_records


@pytest.fixture(scope="module")
def peer():
    with openssl_server(SERVER_CIPHERS, timeout=3.0) as running:
        yield running


def send(peer: OpenSSLServer, hello: bytes, timeout: float = 3.0):
    return peer.send_client_hello(hello, timeout=timeout)


def test_openssl_answers_a_good_hello_with_its_whole_first_flight(peer):
    hello = build_client_hello(suites=["AES128-SHA256", "AES128-GCM-SHA256"])
    answer = send(peer, hello.to_bytes())
    assert answer.complete and answer.alert is None and not answer.openssl_error
    assert [m.name for m in answer.messages] == ["server_hello", "certificate", "server_hello_done"]
    assert answer.received.startswith(b"\x16\x03\x03") and answer.sent[5:] == hello.to_bytes()
    # SERVER_CIPHERS lists AES128-GCM-SHA256 before AES128-SHA256 and Python's ssl prefers the server's order.
    assert answer.server_hello.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    assert answer.certificates[0] == peer.files.issued.der  # the certificate of the keys this server was started with
    assert {ExtensionType.renegotiation_info, ExtensionType.extended_master_secret} == {
        e.extension_type for e in answer.server_hello.extensions
    }


@pytest.mark.parametrize(
    ("settings", "alert", "reason"),
    [
        ({"extensions": DEFAULT_EXTENSIONS - {"signature_algorithms"}}, "handshake_failure", "SIGNATURE_ALGORITHM"),
        ({"suites": ["ECDHE-RSA-AES256-GCM-SHA384"]}, "handshake_failure", "NO_SHARED_CIPHER"),
        # OpenSSL 3 will not do ECDHE without supported_groups: the only suite left is unusable.
        (
            {"suites": ["ECDHE-RSA-AES128-GCM-SHA256"], "extensions": DEFAULT_EXTENSIONS - {"supported_groups"}},
            "handshake_failure",
            "NO_SHARED_CIPHER",
        ),
        ({"version": 0x0302}, "protocol_version", "UNSUPPORTED_PROTOCOL"),
    ],
    ids=["no-signature_algorithms", "no-common-suite", "ecdhe-without-groups", "tls1.1"],
)
def test_openssl_refuses_with_the_alert_it_chose(peer, settings, alert, reason):
    answer = send(peer, build_client_hello(**settings).to_bytes())
    assert not answer.complete
    assert answer.alert_name == alert
    assert reason in answer.openssl_error
    assert f"Alert: fatal {alert}" in answer.summary()


def test_a_hello_shorter_than_its_length_is_a_decode_error_not_a_wait(peer):
    hello = bytearray(build_client_hello().to_bytes())
    hello[3] += 1  # the header promises one byte more than we send
    started = time.monotonic()
    answer = send(peer, bytes(hello), timeout=3)
    assert answer.alert_name == "decode_error"
    assert time.monotonic() - started < 2.5  # the half-close ended it, not the deadline


def test_garbage_gets_decode_error(peer):
    assert send(peer, b"\x01\x00\x00\x05hello").alert_name == "decode_error"


def test_a_silent_server_is_a_timeout_in_the_answer_not_an_exception():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        started = time.monotonic()
        answer = send_client_hello("127.0.0.1", port, build_client_hello().to_bytes(), timeout=0.3)
    assert answer.problem == "no complete answer before the timeout"
    assert time.monotonic() - started < 2


def test_a_server_that_talks_too_much_is_cut_off():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def flood() -> None:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError):  # the reader hangs up on us: that is the point
                conn.settimeout(2)
                # A legal 128 KiB Certificate message in full records: fine for TLS, too much for this reader.
                conn.sendall(handshake_records(b"\x0b\x01\xff\xff" + bytes(0x1FFFF)))

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        answer = send_client_hello(
            "127.0.0.1", listener.getsockname()[1], b"\x01\x00\x00\x00", timeout=3, max_answer_bytes=40_000
        )
        thread.join(5)
    assert "larger than 40000 bytes" in answer.problem


def test_background_peer_starts_once_and_stops_every_way():
    started: list[int] = []

    def start():
        started.append(1)
        return openssl_server(SERVER_CIPHERS, timeout=1.0)

    background = BackgroundPeer(start)
    assert not background.running
    first = background.get()
    assert background.get() is first and len(started) == 1 and background.running
    port, folder = first.port, first.cafile.parent
    background.stop()
    assert not background.running and not folder.exists()  # the private key went with the server
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    background.stop()  # idempotent
    again = background.get()  # a fresh one after a stop
    assert again.port != port or again.cafile != first.cafile
    folder = again.cafile.parent
    del background, again
    gc.collect()
    assert not folder.exists()  # garbage collection stopped it (and so would interpreter exit)


def test_openssl_fetch_reports_an_untrusted_server_instead_of_raising(peer, tmp_path):
    good = openssl_fetch(peer.host, peer.port, cafile=peer.cafile, ciphers="AES128-SHA")
    assert good.cipher == "AES128-SHA" and b"Hello from OpenSSL" in good.page and not good.error
    other_ca = tmp_path / "other.pem"
    from handshake_lib.pki import CoursePKI

    CoursePKI.create().write_ca(tmp_path).rename(other_ca)
    bad = openssl_fetch(peer.host, peer.port, cafile=other_ca)
    assert bad.cipher == "" and "CERTIFICATE_VERIFY_FAILED" in bad.error
