"""Our TLS 1.2 server against real OpenSSL clients (Python ``ssl``), and against our own client.

OpenSSL is the judge: its client must validate our certificate chain, agree on the suite, decrypt
our page, and write the same master secret to its key log as our server derived.
"""

from __future__ import annotations

import ssl
import time

import pytest
from tampering_proxy import TamperingProxy, first_protected_handshake

from handshake_lib import net
from handshake_lib.errors import PeerAlert, ProtocolVersionError, TLSAlert
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.tls import Stages
from handshake_lib.tls import prf as prf_module
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import OPENSSL_NAMES, ContentType
from handshake_lib.tls.keylog import read_keylog

SUITES = ["AES128-SHA256", "AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384"]


def ssl_client_context(cafile, ciphers: str, keylog=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_ciphers(ciphers)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if keylog is not None:
        context.keylog_filename = str(keylog)
    return context


def ssl_get(context: ssl.SSLContext, port: int, server_hostname: str = "localhost") -> tuple[bytes, tuple]:
    with net.connect("127.0.0.1", port) as raw, context.wrap_socket(raw, server_hostname=server_hostname) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
        return response, tls.cipher()


def wait_for_outcome(server: TLSPageServer, count: int = 1) -> None:
    """Wait until our server's first ``count`` connections have finished."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(server.connections) >= count and all(c.finished for c in list(server.connections)[:count]):
            return
        time.sleep(0.01)
    pytest.fail(f"our server's connections did not finish within 5 s: {server.connections[:count]}")


@pytest.mark.parametrize("suite_name", SUITES)
def test_openssl_client_gets_our_page_and_agrees_on_keys(server_files, tmp_path, suite_name) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    client_keylog, server_keylog = tmp_path / "client.log", tmp_path / "server.log"
    context = ssl_client_context(ca, suite_name, client_keylog)
    with TLSPageServer([issued.certificate], issued.private_key, keylog_path=server_keylog) as server:
        response, cipher = ssl_get(context, server.port)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert b"Hello from the Handshakes TLS server" in response
    assert cipher[0] == suite_name and cipher[1] in ("TLSv1.2", "SSLv3")  # OpenSSL names AES128-SHA's origin
    served = server.connections[0]
    assert served.error is None and served.request.startswith(b"GET / HTTP/1.1")
    handshake = served.handshake
    assert handshake.cipher_suite == OPENSSL_NAMES[suite_name]
    assert handshake.extended_master_secret  # OpenSSL always offers EMS
    assert handshake.encrypt_then_mac is (not suite_name.endswith(("GCM-SHA256", "GCM-SHA384")))
    openssl_secret = read_keylog(client_keylog).master_secret(handshake.client_random)
    assert openssl_secret is not None and openssl_secret == handshake.master_secret
    assert read_keylog(server_keylog).master_secret(handshake.client_random) == openssl_secret


@pytest.mark.parametrize("suite_name", ["AES128-SHA256", "AES128-GCM-SHA256"])
def test_without_ems_and_etm_on_our_side(server_files, tmp_path, suite_name) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    client_keylog = tmp_path / "client.log"
    context = ssl_client_context(ca, suite_name, client_keylog)
    with TLSPageServer(
        [issued.certificate], issued.private_key, extended_master_secret=False, encrypt_then_mac=False
    ) as server:
        response, _ = ssl_get(context, server.port)
    assert b"200 OK" in response
    handshake = server.connections[0].handshake
    assert not handshake.extended_master_secret and not handshake.encrypt_then_mac
    assert read_keylog(client_keylog).master_secret(handshake.client_random) == handshake.master_secret


@pytest.mark.parametrize(("prefer", "expected"), [("server", "AES128-SHA"), ("client", "AES256-GCM-SHA384")])
def test_whose_preference_decides_the_suite(server_files, prefer: str, expected: str) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    # OpenSSL's client lists AES256-GCM-SHA384 before AES128-SHA; our server lists them the other way round.
    context = ssl_client_context(ca, "AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA")
    ours = [OPENSSL_NAMES["AES128-SHA"], OPENSSL_NAMES["AES256-GCM-SHA384"]]
    with TLSPageServer(
        [issued.certificate], issued.private_key, cipher_suites=ours, prefer=prefer, keep_transcripts=True
    ) as server:
        _, cipher = ssl_get(context, server.port)
    assert cipher[0] == expected
    offered = server.connections[0].transcript[0].messages[0].cipher_suites
    assert offered.index(OPENSSL_NAMES["AES256-GCM-SHA384"]) < offered.index(OPENSSL_NAMES["AES128-SHA"])


def test_openssl_client_with_the_wrong_ca_refuses_and_we_hear_unknown_ca(server_certificate, untrusted_ca_file) -> None:
    issued = server_certificate
    context = ssl_client_context(untrusted_ca_file, "AES128-GCM-SHA256")
    with TLSPageServer([issued.certificate], issued.private_key) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl_get(context, server.port)
        wait_for_outcome(server)
    error = server.connections[0].error
    assert isinstance(error, PeerAlert) and error.description == TLSAlert.unknown_ca


def test_openssl_client_checking_another_hostname_refuses(server_files) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    context = ssl_client_context(ca, "AES128-GCM-SHA256")
    with TLSPageServer([issued.certificate], issued.private_key) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            ssl_get(context, server.port, server_hostname="example.com")
        wait_for_outcome(server)
    error = server.connections[0].error
    assert isinstance(error, PeerAlert) and error.description == TLSAlert.bad_certificate


def test_tls13_only_openssl_client_gets_protocol_version(server_files) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with TLSPageServer([issued.certificate], issued.private_key) as server:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            ssl_get(context, server.port)
        wait_for_outcome(server)
    assert isinstance(server.connections[0].error, ProtocolVersionError)


def test_openssl_client_without_rsa_suites_gets_handshake_failure(server_files) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    context = ssl_client_context(ca, "ECDHE-RSA-AES128-GCM-SHA256")
    with (
        # Our server restricted to RSA key exchange (its default accepts ECDHE too).
        TLSPageServer([issued.certificate], issued.private_key, cipher_suites=RSA_DEFAULT_SUITES) as server,
        pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"),
    ):
        ssl_get(context, server.port)


@pytest.mark.parametrize("suite_name", SUITES)
def test_our_client_and_our_server(server_files, tmp_path, suite_name) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    with TLSPageServer([issued.certificate], issued.private_key) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=ca, cipher_suites=[OPENSSL_NAMES[suite_name]])
    assert response.status == 200 and b"Handshakes TLS server" in response.body
    assert server.connections[0].handshake == response.handshake


# -- negative interop: OpenSSL judges what our server sends ------------------------------------------------
def wrong_server_finished(master_secret, label, handshake_messages, hash_name) -> bytes:
    """Right for the client's Finished (so we accept it), wrong for our own: the server-side bug to catch."""
    right = prf_module.verify_data(master_secret, label, handshake_messages, hash_name)
    return right if label == "client finished" else bytes(b ^ 0xFF for b in right)


@pytest.mark.parametrize("suite_name", ["AES128-SHA256", "AES256-GCM-SHA384"])
def test_openssl_client_refuses_our_wrong_finished_with_decrypt_error(server_files, suite_name) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    context = ssl_client_context(ca, suite_name)
    stages = Stages(verify_data=wrong_server_finished)
    with TLSPageServer([issued.certificate], issued.private_key, stages=stages) as server:
        # OpenSSL's words for a Finished that does not match: "digest check failed".
        with pytest.raises(ssl.SSLError, match="DIGEST_CHECK_FAILED|digest check failed"):
            ssl_get(context, server.port)
        wait_for_outcome(server)
    error = server.connections[0].error
    # RFC 5246 section 7.4.9: the recipient of a bad Finished sends decrypt_error; we heard it as such.
    assert isinstance(error, PeerAlert) and error.description == TLSAlert.decrypt_error
    # Our side of the handshake ended with our Finished; OpenSSL's verdict came after, and no request did.
    assert server.connections[0].handshake is not None and server.connections[0].request == b""


@pytest.mark.parametrize(
    ("suite_name", "etm"), [("AES128-GCM-SHA256", True), ("AES128-SHA", True), ("AES128-SHA", False)]
)
def test_openssl_client_refuses_our_finished_tampered_in_transit(server_files, suite_name, etm) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    context = ssl_client_context(ca, suite_name)
    with (
        TLSPageServer([issued.certificate], issued.private_key, encrypt_then_mac=etm) as server,
        TamperingProxy(server.port, first_protected_handshake) as proxy,
    ):
        with pytest.raises(ssl.SSLError, match="BAD_RECORD_MAC|DECRYPTION_FAILED_OR_BAD_RECORD_MAC|bad record mac"):
            ssl_get(context, proxy.port)
        wait_for_outcome(server)
    assert proxy.flipped is not None and proxy.flipped[0] == ContentType.handshake  # our Finished, protected
    error = server.connections[0].error
    assert isinstance(error, PeerAlert) and error.description == TLSAlert.bad_record_mac
    assert server.connections[0].request == b""
