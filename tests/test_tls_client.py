"""Our TLS 1.2 client against a real OpenSSL server (Python ``ssl``), which nobody here wrote.

Success is judged by OpenSSL: the page arrives, and the master secret we derived is the one OpenSSL
wrote to its own key log.  Failures are judged by OpenSSL too: a broken Finished or a tampered record
must make OpenSSL send the alert the RFC asks for.
"""

from __future__ import annotations

import contextlib
import ssl

import pytest
from tampering_proxy import TamperingProxy, record_types

from handshake_lib import net
from handshake_lib.errors import BadRecordMac, CertificateError, PeerAlert, TLSAlert
from handshake_lib.net.tls import open_tls, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls import HandshakeComplete, Stages
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import OPENSSL_NAMES, ContentType
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.messages import Alert

SUITES = ["AES128-SHA256", "AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384"]
CBC_SUITES = ["AES128-SHA256", "AES128-SHA"]


def openssl_server(files: ServerFiles, tmp_path, ciphers: str, **options):
    """An OpenSSL server with the session's certificate (conftest's ``server_files``), and its key log."""
    keylog = tmp_path / f"openssl-{ciphers}.log"
    context = server_context(
        files.cert_path,
        files.key_path,
        ciphers=ciphers,
        maximum_version=ssl.TLSVersion.TLSv1_2,
        keylog_path=keylog,
        **options,
    )
    return PythonSSLServer(context), keylog


@pytest.mark.parametrize("suite_name", SUITES)
@pytest.mark.parametrize("ems", [True, False], ids=["ems", "no-ems"])
def test_get_from_openssl_and_agree_on_the_master_secret(server_files, tmp_path, suite_name, ems) -> None:
    ca = server_files.ca_path
    server, keylog = openssl_server(server_files, tmp_path, suite_name)
    our_keylog = tmp_path / "ours.log"
    with server:
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=ca, keylog_path=our_keylog, extended_master_secret=ems
        )
    assert response.status == 200
    assert b"Hello from OpenSSL" in response.body
    assert response.headers["content-length"] == str(len(response.body))
    handshake = response.handshake
    assert handshake.cipher_suite == OPENSSL_NAMES[suite_name]
    assert server.connections[0].cipher == suite_name and server.connections[0].error is None
    assert handshake.extended_master_secret is ems
    # OpenSSL accepts encrypt-then-MAC for CBC suites and must not for AEAD ones.
    assert handshake.encrypt_then_mac is (suite_name in CBC_SUITES)
    openssl_secret = read_keylog(keylog).master_secret(handshake.client_random)
    assert openssl_secret is not None and openssl_secret == handshake.master_secret
    assert read_keylog(our_keylog).master_secret(handshake.client_random) == openssl_secret
    # The transcript tells the story in order, and every timing points at an entry.
    kinds = [type(m).__name__ for entry in response.transcript for m in entry.messages]
    assert kinds[:9] == [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ServerHelloDone",
        "ClientKeyExchange",
        "ChangeCipherSpec",
        "Finished",
        "ChangeCipherSpec",
        "Finished",
    ]
    assert sorted(index for _, _, index in response.timings) == list(range(len(response.transcript)))


@pytest.mark.parametrize("suite_name", CBC_SUITES)
def test_cbc_without_encrypt_then_mac_uses_mac_then_encrypt(server_files, tmp_path, suite_name) -> None:
    server, keylog = openssl_server(server_files, tmp_path, suite_name)
    with server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, encrypt_then_mac=False)
    assert response.status == 200 and b"Hello from OpenSSL" in response.body
    assert response.handshake.encrypt_then_mac is False
    assert read_keylog(keylog).master_secret(response.handshake.client_random) == response.handshake.master_secret


def test_client_hello_offers_what_openssl_3_needs(server_files, tmp_path) -> None:
    client = TLSClient("localhost", cafile=server_files.ca_path)
    client.start()
    hello = client.client_hello
    types = [e.extension_type for e in hello.extensions]
    # server_name, supported_groups and ec_point_formats (ECDHE is offered), signature_algorithms (OpenSSL 3
    # insists), EtM, EMS, renegotiation_info.
    assert set(types) >= {0, 10, 11, 13, 22, 23, 0xFF01}
    # A modern client's offer: ECDHE (ECDSA, then RSA; AES-256 before AES-128) first, RSA key exchange after.
    assert hello.cipher_suites == [0xC02C, 0xC030, 0xC02B, 0xC02F, 0x9D, 0x9C, 0x3C, 0x2F]


def test_wrong_verify_data_makes_openssl_send_decrypt_error(server_files, tmp_path) -> None:
    wrong_finished = Stages(verify_data=lambda master_secret, label, handshake_messages, hash_name: bytes(12))
    server, _ = openssl_server(server_files, tmp_path, "AES128-GCM-SHA256")
    with server, pytest.raises(PeerAlert) as caught:
        open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path, stages=wrong_finished)
    assert caught.value.description == TLSAlert.decrypt_error
    assert "decrypt_error" in str(caught.value)


def test_a_learner_prf_that_is_wrong_fails_at_openssl(server_files, tmp_path) -> None:
    from handshake_lib.tls import prf as prf_module

    def swapped_prf(secret, label, seed, length, hash_name):
        return prf_module.prf(secret, label, seed[::-1], length, hash_name)  # a classic bug: seed reversed

    server, _ = openssl_server(server_files, tmp_path, "AES128-GCM-SHA256")
    with server, pytest.raises(PeerAlert) as caught:
        open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path, stages=Stages(prf=swapped_prf))
    # Keys differ, so OpenSSL cannot even decrypt our Finished.
    assert caught.value.description == TLSAlert.bad_record_mac


@pytest.mark.parametrize("suite_name", ["AES128-GCM-SHA256", "AES128-SHA256"])
def test_tampered_application_data_makes_openssl_send_bad_record_mac(server_files, tmp_path, suite_name) -> None:
    server, _ = openssl_server(server_files, tmp_path, suite_name)
    with server, open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path) as stream:
        stream.client.send_application_data(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        record = bytearray(stream.client.data_to_send())
        record[-1] ^= 0x01  # the last byte: GCM tag, or the MAC under EtM
        stream.sock.sendall(bytes(record))
        with pytest.raises(PeerAlert) as caught:
            stream.recv()
    assert caught.value.description == TLSAlert.bad_record_mac


@pytest.mark.parametrize(
    ("suite_name", "etm"), [("AES256-GCM-SHA384", True), ("AES128-SHA", True), ("AES128-SHA", False)]
)
def test_our_client_detects_a_record_tampered_in_transit(server_files, tmp_path, suite_name, etm) -> None:
    server, _ = openssl_server(server_files, tmp_path, suite_name)
    with server, TamperingProxy(server.port) as proxy, pytest.raises(BadRecordMac):
        tls_get(f"https://localhost:{proxy.port}/", cafile=server_files.ca_path, encrypt_then_mac=etm)
    assert proxy.flipped is not None and proxy.flipped[0] == ContentType.application_data
    # Our client answered with a fatal alert, encrypted, that went out on the wire.
    assert record_types(bytes(proxy.to_server))[-1] == ContentType.alert


def test_the_alert_our_client_sends_on_bad_record_mac(server_files, tmp_path) -> None:
    server, _ = openssl_server(server_files, tmp_path, "AES128-GCM-SHA256")
    with server, open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path) as stream:
        stream.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        client = stream.client
        # Read the server's response record ourselves, damage it, and hand it to the core.
        stream.sock.settimeout(5)
        data = bytearray(stream.sock.recv(65536))
        data[-1] ^= 1
        with pytest.raises(BadRecordMac):
            client.receive_data(bytes(data))
        alert_record = client.data_to_send()
        assert alert_record[0] == ContentType.alert
        sent = client.transcript[-1]
        assert sent.encrypted and sent.messages == [Alert(2, TLSAlert.bad_record_mac)]
        with pytest.raises(Exception, match="ended with an error"):
            client.receive_data(b"\x17\x03\x03\x00\x00")


def test_wrong_hostname_is_refused_with_bad_certificate(server_files, tmp_path) -> None:
    server, _ = openssl_server(server_files, tmp_path, "AES128-GCM-SHA256")
    with server, pytest.raises(CertificateError) as caught:
        open_tls("127.0.0.1", server.port, "example.com", cafile=server_files.ca_path)
    assert caught.value.tls_alert == TLSAlert.bad_certificate
    assert "example.com" in str(caught.value)
    server.close()
    assert "bad certificate" in str(server.connections[0].error).lower()


def test_untrusted_ca_is_refused_with_unknown_ca(server_files, untrusted_ca_file, tmp_path) -> None:
    server, _ = openssl_server(server_files, tmp_path, "AES128-GCM-SHA256")
    with server, pytest.raises(CertificateError) as caught:
        tls_get(f"https://localhost:{server.port}/", cafile=untrusted_ca_file)
    assert caught.value.tls_alert == TLSAlert.unknown_ca
    server.close()
    assert "unknown ca" in str(server.connections[0].error).lower()


def test_verify_false_must_be_explicit_and_then_works(server_files, tmp_path) -> None:
    server, _ = openssl_server(server_files, tmp_path, "AES128-SHA")
    with server:
        response = tls_get(f"https://127.0.0.1:{server.port}/", verify=False)
    assert isinstance(response.handshake, HandshakeComplete) and response.status == 200
    with pytest.raises(ValueError):
        TLSClient(None)  # verifying needs a name


def test_openssl_that_only_speaks_tls13_gets_refused(server_files, tmp_path) -> None:
    context = server_context(server_files.cert_path, server_files.key_path, minimum_version=ssl.TLSVersion.TLSv1_3)
    with PythonSSLServer(context) as server, pytest.raises(PeerAlert) as caught:
        open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path)
    assert caught.value.description == TLSAlert.protocol_version


def test_openssl_without_our_suites_says_handshake_failure(server_files, tmp_path) -> None:
    server, _ = openssl_server(server_files, tmp_path, "ECDHE-RSA-AES128-GCM-SHA256")
    with server, pytest.raises(PeerAlert) as caught:
        # Our client asks for RSA key exchange only (its default offer has ECDHE, which this server runs).
        open_tls("127.0.0.1", server.port, "localhost", cafile=server_files.ca_path, cipher_suites=RSA_DEFAULT_SUITES)
    assert caught.value.description == TLSAlert.handshake_failure


def test_a_silent_server_times_out() -> None:
    from handshake_lib.errors import ConnectionTimeout

    with contextlib.closing(net.listen_loopback()) as listener:
        port = listener.getsockname()[1]
        # Either wait can be the one that runs out, on a busy machine: the answer's, or the deadline itself.
        with pytest.raises(ConnectionTimeout, match="sent nothing|did not answer in time"):
            open_tls("127.0.0.1", port, "localhost", verify=False, timeout=0.3)
        accepted, _ = listener.accept()
        with accepted:
            accepted.settimeout(5)
            sent = accepted.recv(65536)
    # The connection was made and the ClientHello went out: the wait that timed out was for the answer.
    assert sent[:3] == b"\x16\x03\x03" and sent[5] == 1  # a handshake record holding a ClientHello
