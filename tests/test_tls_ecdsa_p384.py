"""A P-384 ECDSA server identity: ServerKeyExchange signed with ecdsa_secp384r1_sha384, judged by OpenSSL.

``openssl s_client`` verifies our server's signature ("Peer signing digest: SHA384", "Peer signature type:
ECDSA") and both key logs agree; our client verifies ``openssl s_server``'s with a P-384 certificate.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import require
from cryptography.hazmat.primitives.asymmetric import ec

from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import s_server
from handshake_lib.pki.builder import CoursePKI, ServerFiles
from handshake_lib.tls.constants import CipherSuite, SignatureScheme
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.signatures import choose_scheme, schemes_for_key

TIMEOUT = 10


@pytest.fixture(scope="module")
def p384_files(course_pki, tmp_path_factory) -> ServerFiles:
    issued = course_pki.issue_server(("localhost",), key_type="ecdsa-p384")
    directory = tmp_path_factory.mktemp("p384")
    cert_path, key_path = CoursePKI.write_issued(issued, directory)
    return ServerFiles(course_pki.write_ca(directory), cert_path, key_path, issued, course_pki)


def test_a_p384_key_signs_with_sha384_and_a_p256_key_with_sha256() -> None:
    p384, p256 = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1())
    assert schemes_for_key(p384) == (SignatureScheme.ecdsa_secp384r1_sha384,)
    assert schemes_for_key(p256) == (SignatureScheme.ecdsa_secp256r1_sha256,)
    assert choose_scheme(p384, [SignatureScheme.ecdsa_secp256r1_sha256]) is None  # never SHA-256 on P-384


def test_s_client_verifies_our_p384_server_key_exchange(p384_files, tmp_path) -> None:
    openssl = require("openssl")
    issued = p384_files.issued
    server_log, client_log = tmp_path / "server.log", tmp_path / "client.log"
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, keylog_path=server_log) as server:
        result = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_2", "-CAfile", str(p384_files.ca_path),
             "-verify_return_error", "-servername", "localhost", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384",
             "-keylogfile", str(client_log), "-ign_eof"],
            input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", capture_output=True,
            timeout=TIMEOUT,
        )  # fmt: skip
    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "Peer signing digest: SHA384" in output and "Peer signature type: ECDSA" in output
    assert "Hello from the Handshakes TLS server" in output
    (served,) = server.connections
    random = served.handshake.client_random
    assert read_keylog(client_log).master_secret(random) == read_keylog(server_log).master_secret(random)


def test_our_client_verifies_s_servers_p384_server_key_exchange(p384_files) -> None:
    require("openssl")
    with s_server(p384_files, "-tls1_2", "-www", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384") as peer:
        response = tls_get(
            f"https://localhost:{peer.port}/", cafile=p384_files.ca_path, timeout=TIMEOUT,
            cipher_suites=[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        )  # fmt: skip
    assert response.status == 200
    [exchange] = [m for e in response.transcript for m in e.messages if type(m).__name__ == "ServerKeyExchange"]
    # OpenSSL 3.0 takes our first ECDSA scheme, SHA-256, on its P-384 key: TLS 1.2 names only the hash.
    assert exchange.signature_algorithm == SignatureScheme.ecdsa_secp256r1_sha256


def test_our_client_verifies_s_servers_p384_signature_with_sha384_when_asked(p384_files) -> None:
    require("openssl")
    options = ("-tls1_2", "-www", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384", "-sigalgs", "ECDSA+SHA384")
    with s_server(p384_files, *options) as peer:
        response = tls_get(
            f"https://localhost:{peer.port}/", cafile=p384_files.ca_path, timeout=TIMEOUT,
            cipher_suites=[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        )  # fmt: skip
    [exchange] = [m for e in response.transcript for m in e.messages if type(m).__name__ == "ServerKeyExchange"]
    assert response.status == 200 and exchange.signature_algorithm == SignatureScheme.ecdsa_secp384r1_sha384
