"""Our TLS server against clients nobody here wrote: ``openssl s_client``, curl and headless Chromium.

Each test starts our server (:class:`handshake_lib.net.tls.TLSPageServer`) on loopback with a fresh
certificate from a fresh course CA, restricted to one TLS 1.2 suite, and lets the external client fetch
the page, trusting only that CA.  What each test checks, beyond "the page came back":

* s_client: the protocol and cipher it reports, and that the master secret in its ``-keylogfile`` is
  the one our server logged for the same client random (both sides derived the same keys);
* curl: the HTTP status from ``-w '%{http_code}'`` and the body;
* Chromium: the DOM it rendered, and the suite our server recorded for the connection.

What Chromium 156 (Debian's build) does with RSA key exchange was found out by experiment, and the
experiment is kept as tests (``test_chromium_offers_*``): its ClientHello, read off the wire, offers
TLS_RSA_WITH_AES_128_GCM_SHA256, _AES_256_GCM_SHA384, _AES_128_CBC_SHA and _AES_256_CBC_SHA (after all
its ECDHE suites) and no *_CBC_SHA256 suite.  So Chromium can load a page over AES128-GCM-SHA256 from an
RSA-only server, and cannot over AES128-SHA256: it fails with ERR_SSL_VERSION_OR_CIPHER_MISMATCH.

Every subprocess has a timeout; servers bind 127.0.0.1 on a free port and stop with their ``with``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import require
from cryptography.hazmat.primitives import serialization

from handshake_lib import net
from handshake_lib.errors import HandshakeFailure, PeerAlert, TLSAlert
from handshake_lib.net.tls import ServedConnection, TLSPageServer
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki import IssuedCertificate
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite
from handshake_lib.tls.keylog import parse_keylog
from handshake_lib.tls.messages import ClientHello, decode_handshake
from handshake_lib.tls.record import RecordReader

PROCESS_TIMEOUT_S = 30
CHROMIUM_TIMEOUT_S = 60
OPENSSL_NAME = {suite: name for name, suite in OPENSSL_NAMES.items()}
SUITES = [
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
]
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def spki_pin(issued: IssuedCertificate) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the leaf: what --ignore-certificate-errors-spki-list takes."""
    spki = issued.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


# -- the servers ---------------------------------------------------------------------------------------
@dataclass
class RunningServer:
    port: int
    page_server: TLSPageServer | PythonSSLServer
    keylog: Path
    negotiated: list[str]  # OpenSSL names of the suites of completed handshakes, in order
    page_text: str  # a sentence of the page the server sends


@contextmanager
def our_server(files: ServerFiles, suites: list[CipherSuite], keylog: Path) -> Iterator[RunningServer]:
    """Our TLS server, accepting only ``suites``, appending its key log to ``keylog``."""
    with TLSPageServer(
        [files.issued.der], files.issued.private_key, cipher_suites=suites, keylog_path=keylog
    ) as server:
        heading = re.search(rb"<h1>(.*?)</h1>", server.page)
        assert heading, "the page has a heading to look for"
        running = RunningServer(server.port, server, keylog, [], heading.group(1).decode())
        yield running
    # Read after the with block: the server's threads have finished, every record is complete.
    running.negotiated.extend(
        OPENSSL_NAME[CipherSuite(record.handshake.cipher_suite)]
        for record in server.connections
        if record.handshake is not None
    )


@contextmanager
def openssl_server(files: ServerFiles, openssl_ciphers: str, keylog: Path) -> Iterator[RunningServer]:
    """The control experiment: OpenSSL (through Python's ssl) in our server's place."""
    context = server_context(
        files.cert_path,
        files.key_path,
        ciphers=openssl_ciphers,
        maximum_version=ssl.TLSVersion.TLSv1_2,
        keylog_path=keylog,
    )
    with PythonSSLServer(context) as server:
        running = RunningServer(server.port, server, keylog, [], "Hello from OpenSSL")
        yield running
    running.negotiated.extend(record.cipher for record in server.connections if record.cipher)


# -- the clients ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SClientResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def cipher(self) -> str | None:
        match = re.search(r"Cipher is (\S+)", self.stdout)
        return match.group(1) if match else None

    @property
    def protocol(self) -> str | None:
        match = re.search(r"^\s*Protocol\s*:\s*(\S+)", self.stdout, re.MULTILINE)
        return match.group(1) if match else None


def server_connections(running: RunningServer) -> list[ServedConnection]:
    """Our server's records of its connections (read after the ``with`` block, when they are complete)."""
    assert isinstance(running.page_server, TLSPageServer)
    return running.page_server.connections


def run_s_client(openssl: str, port: int, cipher: str, files: ServerFiles, keylog: Path) -> SClientResult:
    # -ign_eof: keep reading after our request (stdin) ends, until the server closes: the page comes back.
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", cipher,
        "-CAfile", str(files.ca_path), "-verify_return_error", "-servername", "localhost",
        "-keylogfile", str(keylog), "-ign_eof",
    ]  # fmt: skip
    completed = subprocess.run(command, input=REQUEST, capture_output=True, timeout=PROCESS_TIMEOUT_S)
    return SClientResult(
        completed.returncode, completed.stdout.decode("utf-8", "replace"), completed.stderr.decode("utf-8", "replace")
    )


@dataclass(frozen=True)
class CurlResult:
    returncode: int
    body: str
    http_code: str  # "%{http_code}": "000" when no HTTP response arrived
    stderr: str


def run_curl(curl: str, port: int, cipher: str, files: ServerFiles) -> CurlResult:
    marker = "\nHTTP-STATUS:"
    command = [
        curl, "--silent", "--show-error", "--cacert", str(files.ca_path), "--tlsv1.2", "--tls-max", "1.2",
        "--ciphers", cipher, "--max-time", "20", "--write-out", marker + "%{http_code}",
        f"https://localhost:{port}/",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    body, _, http_code = completed.stdout.rpartition(marker)
    return CurlResult(completed.returncode, body, http_code.strip(), completed.stderr)


def chromium_dump_dom(chromium: str, url: str, files: ServerFiles, profile: Path) -> subprocess.CompletedProcess:
    """``chromium --headless --dump-dom URL``, trusting only the test leaf; net errors are logged to stderr."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={spki_pin(files.issued)}", "--enable-logging=stderr", "--v=0",
        "--dump-dom", url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)


def master_secrets(keylog: Path) -> dict[bytes, bytes]:
    log = parse_keylog(keylog.read_text(encoding="utf-8")) if keylog.exists() else parse_keylog("")
    return {entry.client_random: entry.secret for entry in log.entries if entry.label == "CLIENT_RANDOM"}


# -- openssl s_client ----------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: OPENSSL_NAME[suite])
def test_s_client_fetches_page_from_our_server(suite: CipherSuite, server_files: ServerFiles, tmp_path: Path) -> None:
    openssl = require("openssl")
    cipher = OPENSSL_NAME[suite]
    client_keylog = tmp_path / "s_client.keylog"
    with our_server(server_files, [suite], tmp_path / "server.keylog") as server:
        result = run_s_client(openssl, server.port, cipher, server_files, client_keylog)
    assert result.returncode == 0, result.stderr  # 0 also means our close_notify arrived before the FIN
    assert "Verify return code: 0 (ok)" in result.stdout
    assert result.protocol == "TLSv1.2"
    assert result.cipher == cipher
    assert "HTTP/1.1 200 OK" in result.stdout
    assert server.page_text in result.stdout
    assert server.negotiated == [cipher]
    # Both ends wrote CLIENT_RANDOM <client random> <master secret>: the same connection, the same secret.
    ours, theirs = master_secrets(server.keylog), master_secrets(client_keylog)
    assert len(theirs) == 1
    client_random, secret = next(iter(theirs.items()))
    assert ours.get(client_random) == secret


def test_s_client_and_our_server_share_no_suite(server_files: ServerFiles, tmp_path: Path) -> None:
    """Our server only accepting AES128-SHA256, s_client only offering AES128-GCM-SHA256: a clean refusal."""
    openssl = require("openssl")
    suite = CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256
    with our_server(server_files, [suite], tmp_path / "server.keylog") as server:
        result = run_s_client(openssl, server.port, "AES128-GCM-SHA256", server_files, tmp_path / "c.keylog")
    assert result.returncode != 0
    assert "handshake failure" in result.stderr  # s_client's name for the alert our server sent
    assert server.negotiated == []
    (record,) = server_connections(server)
    assert isinstance(record.error, HandshakeFailure)


# -- curl ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: OPENSSL_NAME[suite])
def test_curl_fetches_page_from_our_server(suite: CipherSuite, server_files: ServerFiles, tmp_path: Path) -> None:
    curl = require("curl")
    cipher = OPENSSL_NAME[suite]
    with our_server(server_files, [suite], tmp_path / "server.keylog") as server:
        result = run_curl(curl, server.port, cipher, server_files)
    assert result.returncode == 0, result.stderr
    assert result.http_code == "200"
    assert server.page_text in result.body
    assert server.negotiated == [cipher]


def test_curl_rejects_our_server_without_the_ca(
    server_files: ServerFiles, untrusted_ca_file: Path, tmp_path: Path
) -> None:
    """curl trusting another CA refuses our certificate: the CA file is what makes the tests above pass."""
    curl = require("curl")
    files = replace(server_files, ca_path=untrusted_ca_file)
    with our_server(server_files, [CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256], tmp_path / "k") as server:
        result = run_curl(curl, server.port, "AES128-GCM-SHA256", files)
    assert result.returncode == 60, result.stderr  # CURLE_PEER_FAILED_VERIFICATION
    assert result.http_code == "000"
    assert "certificate" in result.stderr
    assert server.negotiated == []
    # curl's OpenSSL told our server why, with an alert, and our server recorded it.
    (record,) = server_connections(server)
    assert isinstance(record.error, PeerAlert)
    assert record.error.description == TLSAlert.unknown_ca


# -- headless Chromium ---------------------------------------------------------------------------------
# The three of our four suites that Chromium offers (see test_chromium_offers_rsa_key_exchange_but_no_cbc_sha256).
CHROMIUM_SUITES = [
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
]


@pytest.mark.parametrize("suite", CHROMIUM_SUITES, ids=lambda suite: OPENSSL_NAME[suite])
def test_chromium_loads_page_from_our_server_over_rsa_key_exchange(
    suite: CipherSuite, server_files: ServerFiles, tmp_path: Path
) -> None:
    chromium = require("chromium")
    with our_server(server_files, [suite], tmp_path / "server.keylog") as server:
        completed = chromium_dump_dom(chromium, f"https://localhost:{server.port}/", server_files, tmp_path / "p")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert server.page_text in completed.stdout
    # Chromium may open a second (preconnect) connection: every completed one used the suite we allowed.
    assert server.negotiated and set(server.negotiated) == {OPENSSL_NAME[suite]}


def test_chromium_refuses_our_server_with_aes128_sha256_only(server_files: ServerFiles, tmp_path: Path) -> None:
    chromium = require("chromium")
    with our_server(server_files, [CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256], tmp_path / "k") as server:
        completed = chromium_dump_dom(chromium, f"https://localhost:{server.port}/", server_files, tmp_path / "p")
    connections = server_connections(server)
    assert server.page_text not in completed.stdout
    assert "ERR_SSL_VERSION_OR_CIPHER_MISMATCH" in completed.stderr
    assert server.negotiated == []
    # Our side of the story: every attempt (Chromium retries) ended in handshake_failure, no suite in common.
    assert connections and all(isinstance(record.error, HandshakeFailure) for record in connections)


def _capture_client_hello(chromium: str, files: ServerFiles, profile: Path) -> ClientHello:
    """Start Chromium against a socket that only reads, and decode the first ClientHello it sends."""
    with net.listen_loopback() as listener:
        listener.settimeout(CHROMIUM_TIMEOUT_S)
        port = listener.getsockname()[1]
        browser = subprocess.Popen(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--dump-dom", f"https://localhost:{port}/",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(20)
                data = b""
                while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        finally:
            browser.kill()
            browser.wait(timeout=20)
    (record,) = RecordReader().feed(data[: 5 + int.from_bytes(data[3:5], "big")])
    message, _ = decode_handshake(record.fragment)
    assert isinstance(message, ClientHello)
    return message


def test_chromium_offers_rsa_key_exchange_but_no_cbc_sha256(server_files: ServerFiles, tmp_path: Path) -> None:
    """What Chromium's ClientHello says, read off the wire: the evidence behind the two tests above."""
    chromium = require("chromium")
    hello = _capture_client_hello(chromium, server_files, tmp_path / "profile")
    offered = set(hello.cipher_suites)
    assert CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256 in offered
    assert CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384 in offered
    assert CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA in offered
    assert CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256 not in offered
    # ECDHE first: RSA key exchange is offered, but as a last resort.
    order = [suite for suite in hello.cipher_suites if suite in CipherSuite._value2member_map_]
    assert order.index(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) < order.index(
        CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    )


def test_chromium_prefers_ecdhe_from_openssl(server_files: ServerFiles, tmp_path: Path) -> None:
    """The control: an OpenSSL server offering ECDHE and RSA key exchange gets ECDHE from Chromium."""
    chromium = require("chromium")
    with openssl_server(server_files, "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256", tmp_path / "k") as server:
        completed = chromium_dump_dom(chromium, f"https://localhost:{server.port}/", server_files, tmp_path / "p")
    assert completed.returncode == 0
    assert server.page_text in completed.stdout
    assert server.negotiated and set(server.negotiated) == {"ECDHE-RSA-AES128-GCM-SHA256"}
