"""``handshakes tls get/serve`` with ECDHE: ``--cipher`` for every suite, ``--groups``, two identities.

Judged by peers nobody here wrote:

* ``tls get --cipher ECDHE-ECDSA-CHACHA20-POLY1305 --groups x25519,secp256r1`` against
  ``openssl s_server -www`` with an ECDSA certificate: the status page s_server writes (its own view of
  the connection) names the suite and the groups we offered, its Master-Key is the one in our key log,
  and ``--trace`` shows the ServerKeyExchange decoded.
* ``tls serve`` with an RSA and an ECDSA identity and ``--groups secp384r1``: curl asking for an
  ``ECDHE-ECDSA-*`` suite gets the ECDSA certificate and curl asking for ``ECDHE-RSA-*`` the RSA one
  (curl's ``%{certs}`` says which key it saw), and ``openssl s_client -groups P-384`` reports
  ``Server Temp Key: ECDH, secp384r1``.
* Bad arguments (an unknown group or suite, a second --cert without --key, a key that is not its
  certificate's) exit 2 with one line, before anything listens.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import ROOT, cli_environment, read_line, require

from handshake_lib.__main__ import main
from handshake_lib.peers.openssl import s_server
from handshake_lib.pki.builder import CoursePKI, ServerFiles
from handshake_lib.tls.keylog import read_keylog

TIMEOUT_S = 30
REQUEST = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def ecdsa_files(server_files: ServerFiles, tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    """An ECDSA P-256 server certificate from the same course CA as ``server_files``' RSA one."""
    issued = server_files.pki.issue_server(("localhost", "127.0.0.1"), key_type="ecdsa-p256")
    cert_path, key_path = CoursePKI.write_issued(issued, tmp_path_factory.mktemp("ecdsa"), "ecdsa")
    return ServerFiles(server_files.ca_path, cert_path, key_path, issued, server_files.pki)


def _log_line(process: subprocess.Popen) -> str:
    return read_line(process, TIMEOUT_S)


# -- tls get against openssl s_server ------------------------------------------------------------------
def test_get_ecdsa_chacha20_x25519_against_s_server(ecdsa_files, tmp_path, capsys) -> None:
    require("openssl")
    our_log = tmp_path / "ours.log"
    with s_server(ecdsa_files, "-tls1_2", "-www") as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(ecdsa_files.ca_path),
            "--cipher", "ECDHE-ECDSA-CHACHA20-POLY1305", "--groups", "x25519,secp256r1",
            "--keylog", str(our_log), "--trace", "--tls", "1.2",
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    # s_server -www's page (stdout) is its own account of the connection.
    assert "Ciphers common between both SSL end points:\nECDHE-ECDSA-CHACHA20-POLY1305\n" in captured.out
    assert "New, TLSv1.2, Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" in captured.out
    # x25519 first; P-256 too because the certificate is on it (RFC 8422 5.1: without it OpenSSL has no
    # certificate it may use and ends the handshake with handshake_failure).
    assert "Supported groups: x25519:secp256r1\n" in captured.out
    assert "* TLS 1.2, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, group x25519, HTTP 200" in captured.err
    # --trace decodes the ServerKeyExchange: the curve s_server chose and the ECDSA signature over it.
    server_key_exchange = captured.err.split("ServerKeyExchange", 1)[1].split("=== record", 1)[0]
    assert "named_curve = x25519  00 1d" in server_key_exchange
    assert "signature_algorithm = SignatureAndHashAlgorithm ecdsa_secp256r1_sha256" in server_key_exchange
    # The master secret s_server printed is the one in our key log: both derived the same ECDHE secret.
    (line,) = our_log.read_text().splitlines()
    master_key = captured.out.split("Master-Key: ", 1)[1].split()[0]
    assert bytes.fromhex(line.split()[2]) == bytes.fromhex(master_key)


def test_get_groups_in_preference_order_reach_s_server(server_files, capsys) -> None:
    """--groups is the order supported_groups carries: s_server's page lists the client's groups in it."""
    require("openssl")
    with s_server(server_files, "-tls1_2", "-www") as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
            "--cipher", "ECDHE-RSA-AES128-GCM-SHA256", "--groups", "P-384,x25519", "--tls", "1.2",
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "Supported groups: secp384r1:x25519\n" in captured.out
    assert ", group secp384r1, HTTP 200" in captured.err  # s_server takes the client's first group


@pytest.mark.parametrize(
    ("dhparam", "named"), [(None, "modp2048 (RFC 3526 group 14)"), ("ffdhe2048", "ffdhe2048")], ids=["auto", "ffdhe"]
)
def test_get_dhe_names_the_prime_s_server_sent(server_files, tmp_path, capsys, dhparam, named) -> None:
    """OpenSSL 3.0's s_server sends RFC 3526's group 14 (no code point) unless -dhparam gives it another:
    the summary names the prime that came, read from the ServerKeyExchange."""
    openssl = require("openssl")
    options = ["-tls1_2", "-www"]
    if dhparam is not None:
        path = tmp_path / "dh.pem"
        subprocess.run(
            [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{dhparam}", "-out", str(path)],
            check=True, capture_output=True, timeout=TIMEOUT_S,
        )  # fmt: skip
        options += ["-dhparam", str(path)]
    with s_server(server_files, *options) as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
            "--cipher", "DHE-RSA-AES128-GCM-SHA256",
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "Cipher is DHE-RSA-AES128-GCM-SHA256" in captured.out
    assert f"* TLS 1.2, TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, group {named}, HTTP 200" in captured.err


# -- tls serve with two identities, against curl and s_client -------------------------------------------
@pytest.fixture(scope="module")
def served(server_files, ecdsa_files, tmp_path_factory):
    """One ``tls serve`` process with an RSA and an ECDSA identity, ECDHE on P-384 only."""
    keylog = tmp_path_factory.mktemp("serve") / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0",
         "--cert", str(server_files.cert_path), "--key", str(server_files.key_path),
         "--cert", str(ecdsa_files.cert_path), "--key", str(ecdsa_files.key_path),
         "--groups", "secp384r1", "--keylog", str(keylog)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=cli_environment(), cwd=ROOT,
    )  # fmt: skip
    try:
        first = _log_line(process)
        assert first.startswith("serving https://localhost:"), first + process.stderr.read().decode()
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        yield port, process, keylog
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT_S)


@pytest.mark.parametrize(
    ("cipher", "public_key"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "id-ecPublicKey"), ("ECDHE-RSA-AES128-GCM-SHA256", "rsaEncryption")],
)
def test_serve_picks_the_identity_by_suite_for_curl(served, server_files, cipher, public_key) -> None:
    curl = require("curl")
    port, process, _ = served
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.2", "--tls-max", "1.2",
         "--ciphers", cipher, "--write-out", "\n%{certs}", f"https://localhost:{port}/"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Hello from the Handshakes TLS server" in result.stdout
    # %{certs}: the chain curl received, as OpenSSL describes it ("Public Key Algorithm:rsaEncryption").
    assert f"Public Key Algorithm:{public_key}" in result.stdout
    other = "rsaEncryption" if public_key == "id-ecPublicKey" else "id-ecPublicKey"
    assert f"Public Key Algorithm:{other}" not in result.stdout
    line = _log_line(process)  # our log agrees: the suite, and the one group --groups allows
    assert f"TLS_ECDHE_{cipher.split('-')[1]}_WITH_AES_128_GCM_SHA256, group secp384r1: " in line, line


def test_serve_groups_honoured_by_s_client(served, server_files, tmp_path) -> None:
    openssl = require("openssl")
    port, process, keylog = served
    client_log = tmp_path / "s_client.log"
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(server_files.ca_path),
         "-verify_return_error", "-servername", "localhost", "-groups", "P-384", "-keylogfile", str(client_log),
         "-ign_eof"],
        input=REQUEST, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Server Temp Key: ECDH, secp384r1, 384 bits" in result.stdout
    assert "Hello from the Handshakes TLS server" in result.stdout
    line = _log_line(process)
    assert "group secp384r1" in line, line
    entry = next(ln for ln in client_log.read_text().splitlines() if ln.startswith("CLIENT_RANDOM"))
    client_random = bytes.fromhex(entry.split()[1])
    assert read_keylog(keylog).master_secret(client_random) == bytes.fromhex(entry.split()[2])


def test_serve_refuses_a_client_whose_groups_it_does_not_accept(served, server_files) -> None:
    """--groups secp384r1 only: s_client offering X25519 alone gets no ECDHE suite (handshake_failure)."""
    openssl = require("openssl")
    port, process, _ = served
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(server_files.ca_path),
         "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-groups", "X25519"],
        input="", capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode != 0
    assert "handshake failure" in result.stderr, result.stderr
    assert "failed" in _log_line(process)
