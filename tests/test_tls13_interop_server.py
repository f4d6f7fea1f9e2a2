"""Our TLS 1.3 server against clients nobody here wrote: ``openssl s_client``, curl, Chromium, OpenSSL 4, Python ssl.

Every server is :class:`handshake_lib.net.tls.TLSPageServer` (TLS 1.3 only, or 1.3 and 1.2), started once per
module with ``keep_transcripts=True`` and a key log file, on loopback, with a certificate from this module's
course CA (which every client trusts, and nothing else).  Each test finds the connection our server recorded
for its client by the client random (the ClientHello in the transcript) and checks both sides' stories:

* ``openssl s_client -tls1_3`` (Debian's OpenSSL 3.0): each of the four TLS 1.3 suites and each group we
  serve; its key log equals ours line for line (the same secrets, so the same keys).  Its default offer has
  no ML-KEM, and our server settles on x25519 without a HelloRetryRequest.  ``-sess_out``/``-sess_in``
  resume ("Reused, TLSv1.3"); ``-early_data`` sends the request as 0-RTT, which our server accepts and
  answers.  Replay: the very same first flight (ClientHello and early data, taken from our transcript) sent
  again is refused by the server's :class:`~handshake_lib.tls.tickets13.ReplayWindow`.  A second s_client
  run with the same session is *not* a replay (a new ClientHello, a new binder: RFC 8446 8.2 records
  ClientHellos, not tickets) and is accepted again; a server whose replay window is full refuses the early
  data ("Early data was rejected") and still serves the request s_client sends after the handshake.
  ``k``/``K`` on s_client's stdin (it has no ``-keyupdate`` in 3.0; commands need stdin open, so no
  ``-ign_eof``) send KeyUpdate, answered in kind for ``K``.  Client certificates, ECDSA and RSA, are
  accepted by a server that requires them; without one, s_client gets alert certificate_required (116).
* curl: ``--tlsv1.3`` (its ``-v`` says "SSL connection using TLSv1.3 / ..."), and ``--tls-max 1.2`` against
  the server of both versions: TLS 1.2, with the downgrade sentinel (RFC 8446 4.1.3) in our random, which
  curl accepts since it capped itself.  ``SSLKEYLOGFILE`` gives curl's key log, equal to ours.
* headless Chromium with its normal offer (GREASE, an X25519MLKEM768 share first, ECH GREASE): the page
  loads, and our server settled on TLS 1.3 and X25519MLKEM768 (0x11ec).
* OpenSSL 4, the copy inside ``cryptography``'s wheel, as a client over memory BIOs (its cffi bindings)
  against the sans-I/O :class:`~handshake_lib.tls.server13.TLS13Server`: X25519MLKEM768, key logs equal.
* Python ``ssl`` (OpenSSL 3.0) against a server that takes one group: x25519 at once, the others after a
  HelloRetryRequest (Python's client sends an x25519 share only); key logs equal.

Every subprocess and every wait has a bound; nothing asserts on time.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require
from cryptography.hazmat.primitives import serialization

from handshake_lib.errors import CertificateRequired
from handshake_lib.net.tls import ServedConnection, TLSPageServer
from handshake_lib.pki import CoursePKI
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls.connection import ApplicationData, HandshakeComplete
from handshake_lib.tls.constants import ContentType, ExtensionType, NamedGroup
from handshake_lib.tls.extensions import KeyShareClientHelloExtension, SupportedGroupsExtension, UnknownExtension
from handshake_lib.tls.messages import ClientHello
from handshake_lib.tls.messages13 import EndOfEarlyData, KeyUpdate
from handshake_lib.tls.server13 import TLS13Server

PROCESS_TIMEOUT_S = 30
CHROMIUM_TIMEOUT_S = 90
WAIT_S = 20  # the longest we wait for the server to record a connection that already ended on the client's side
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
HEADING = "Hello from the Handshakes TLS server"  # in the page every server here serves
SUITES13 = {  # OpenSSL's name: code
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,  # OpenSSL never offers it unless asked: the server must be told to serve it
}
GROUPS13 = {  # s_client's -groups name: NamedGroup
    "X25519": NamedGroup.x25519,
    "P-256": NamedGroup.secp256r1,
    "P-384": NamedGroup.secp384r1,
    "ffdhe2048": NamedGroup.ffdhe2048,
}
EARLY_DATA_LIMIT = 4096


def is_grease(value: int) -> bool:
    """RFC 8701's 0x0A0A, 0x1A1A... 0xFAFA: values a client sends so that servers learn to ignore the unknown."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


# -- the servers, once per module ------------------------------------------------------------------------
@dataclass
class Peers:
    """This module's CA and server files, and the client certificates it issued (``(cert.pem, key.pem)``)."""

    files: ServerFiles
    ecdsa_client: tuple[Path, Path]
    rsa_client: tuple[Path, Path]
    folder: Path


@dataclass
class Served:
    """A running TLSPageServer and the file its key log goes to."""

    server: TLSPageServer
    keylog: Path

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Peers:
    folder = tmp_path_factory.mktemp("tls13-interop-server")
    pki = CoursePKI.create()
    files = pki.write_server_files(folder, ("localhost", "127.0.0.1"))
    ecdsa = CoursePKI.write_issued(pki.issue_client("alice"), folder, "alice")
    rsa = CoursePKI.write_issued(pki.issue_client("bob", key_type="rsa2048"), folder, "bob")
    return Peers(files, ecdsa, rsa, folder)


def _start(peers: Peers, name: str, **options: object) -> Iterator[Served]:
    keylog = peers.folder / f"{name}.keys"
    with TLSPageServer(
        [peers.files.issued.der], peers.files.issued.private_key, keep_transcripts=True, keylog_path=keylog, **options
    ) as server:
        yield Served(server, keylog)


@pytest.fixture(scope="module")
def server13(peers: Peers) -> Iterator[Served]:
    """TLS 1.3 only, all four suites (CCM too), 0-RTT up to EARLY_DATA_LIMIT bytes behind the replay window."""
    yield from _start(
        peers, "tls13", tls_versions=("1.3",), tls13_cipher_suites=tuple(SUITES13.values()),
        max_early_data_size=EARLY_DATA_LIMIT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server_both(peers: Peers) -> Iterator[Served]:
    """TLS 1.3 and 1.2: the ClientHello decides; a 1.2 answer carries the downgrade sentinel."""
    yield from _start(peers, "both", tls_versions=("1.3", "1.2"))


@pytest.fixture(scope="module")
def server_mutual(peers: Peers) -> Iterator[Served]:
    """TLS 1.3, requiring a client certificate from this module's CA."""
    yield from _start(
        peers, "mutual", tls_versions=("1.3",), client_ca=str(peers.files.ca_path), require_client_certificate=True
    )


@pytest.fixture(scope="module")
def server_full_window(peers: Peers) -> Iterator[Served]:
    """TLS 1.3 with 0-RTT allowed in its tickets, but a replay window with no room: every early data is refused."""
    for served in _start(peers, "full-window", tls_versions=("1.3",), max_early_data_size=EARLY_DATA_LIMIT):
        assert served.server.anti_replay is not None
        served.server.anti_replay.max_entries = 0  # "full": it must refuse rather than forget (docs/limits.md)
        yield served


# -- finding what our server recorded --------------------------------------------------------------------
def client_hello_of(record: ServedConnection) -> ClientHello | None:
    for entry in record.transcript:
        for message in entry.messages:
            if isinstance(message, ClientHello):
                return message
    return None


def served(target: Served, client_random: bytes, count: int = 1) -> list[ServedConnection]:
    """The finished connections whose (first) ClientHello had ``client_random``, once there are ``count``.

    The client has already ended when this is called; the server may need a moment to record its side.
    """
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [
            record
            for record in list(target.server.connections)
            if record.finished and (hello := client_hello_of(record)) is not None and hello.random == client_random
        ]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, f"{len(found)} connections recorded with that client random, not {count}"
            return found
        time.sleep(0.05)


def keylog_lines(path: Path, client_random: bytes | None = None) -> list[str]:
    """The NSS key log lines of ``path`` (comments dropped), of one client random if given, sorted."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    if client_random is not None:
        lines = [line for line in lines if line.split()[1] == client_random.hex()]
    return sorted(lines)


def client_random_of(keylog: Path) -> bytes:
    randoms = {line.split()[1] for line in keylog_lines(keylog)}
    assert len(randoms) == 1, f"one connection in {keylog}, not {len(randoms)}"
    return bytes.fromhex(randoms.pop())


def assert_same_keylog(ours: Path, theirs: Path, client_random: bytes, labels: set[str]) -> None:
    """Both ends wrote the same secrets under the same labels for this connection: line by line equal."""
    their_lines = keylog_lines(theirs, client_random)
    assert {line.split()[0] for line in their_lines} == labels
    assert keylog_lines(ours, client_random) == their_lines


HANDSHAKE_LABELS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
}

EARLY_LABELS = {"CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET"}  # 0-RTT accepted: OpenSSL logs both


# -- openssl s_client --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SClient:
    returncode: int
    stdout: str
    stderr: str
    keylog: Path

    @property
    def client_random(self) -> bytes:
        return client_random_of(self.keylog)


def s_client(port: int, peers: Peers, keylog: Path, *args: str, stdin: bytes = REQUEST) -> SClient:
    """``openssl s_client -tls1_3`` trusting only the course CA; ``-ign_eof``: it reads until our server closes."""
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-servername", "localhost",
        "-CAfile", str(peers.files.ca_path), "-verify_return_error", "-keylogfile", str(keylog), "-ign_eof", *args,
    ]  # fmt: skip
    completed = subprocess.run(command, input=stdin, capture_output=True, timeout=PROCESS_TIMEOUT_S)
    return SClient(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        keylog,
    )


def assert_page(stdout: str) -> None:
    assert "HTTP/1.1 200 OK" in stdout
    assert HEADING in stdout


@pytest.mark.parametrize("suite", SUITES13)
@pytest.mark.parametrize("group", GROUPS13)
def test_s_client_each_suite_and_group(suite: str, group: str, server13: Served, peers: Peers, tmp_path: Path) -> None:
    result = s_client(server13.port, peers, tmp_path / "c.keys", "-ciphersuites", suite, "-groups", group)
    assert result.returncode == 0, result.stderr
    assert f"New, TLSv1.3, Cipher is {suite}" in result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout
    assert_page(result.stdout)
    (record,) = served(server13, result.client_random)
    assert record.error is None and record.status == 200
    handshake = record.handshake
    assert handshake is not None
    assert (handshake.version, handshake.cipher_suite, handshake.group) == (0x0304, SUITES13[suite], GROUPS13[group])
    assert not handshake.hello_retry_request  # s_client sent a share of the one group it offered
    # Every record we sent after the ServerHello went out protected (outer type application_data), and says so.
    sent = [entry for entry in record.transcript if entry.direction == "server->client"]
    protected = [entry for entry in sent if entry.record[0] == ContentType.application_data]
    assert protected and all(entry.encrypted and isinstance(entry.spans, list) for entry in protected)
    assert_same_keylog(server13.keylog, result.keylog, result.client_random, HANDSHAKE_LABELS)


def test_s_client_default_offer_without_ml_kem_gets_x25519_without_hrr(
    server13: Served, peers: Peers, tmp_path: Path
) -> None:
    """Debian's OpenSSL 3.0 has no ML-KEM: it offers x25519 first (and shares it), and our server takes it."""
    result = s_client(server13.port, peers, tmp_path / "c.keys")
    assert result.returncode == 0, result.stderr
    assert "Server Temp Key: X25519" in result.stdout
    (record,) = served(server13, result.client_random)
    hello = client_hello_of(record)
    assert hello is not None
    offered = hello.extension(ExtensionType.supported_groups)
    assert isinstance(offered, SupportedGroupsExtension) and NamedGroup.X25519MLKEM768 not in offered.groups
    assert record.handshake is not None
    assert record.handshake.group == NamedGroup.x25519 and not record.handshake.hello_retry_request


@pytest.fixture(scope="module")
def session_file(server13: Served, peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session (with our ticket, allowing 0-RTT) that s_client saved after a full handshake with server13."""
    folder = tmp_path_factory.mktemp("s_client-session")
    session = folder / "session.pem"
    result = s_client(server13.port, peers, folder / "full.keys", "-sess_out", str(session))
    assert result.returncode == 0, result.stderr
    assert session.exists()
    assert f"Max Early Data: {EARLY_DATA_LIMIT}" in result.stdout
    return session


def test_s_client_resumes_with_our_ticket(server13: Served, peers: Peers, session_file: Path, tmp_path: Path) -> None:
    result = s_client(server13.port, peers, tmp_path / "c.keys", "-sess_in", str(session_file))
    assert result.returncode == 0, result.stderr
    assert "Reused, TLSv1.3" in result.stdout
    assert_page(result.stdout)
    (record,) = served(server13, result.client_random)
    assert record.resumed_by == "ticket" and record.status == 200
    assert record.handshake is not None and record.handshake.psk_mode == "psk_dhe_ke"
    assert_same_keylog(server13.keylog, result.keylog, result.client_random, HANDSHAKE_LABELS)


def early_run(served_by: Served, peers: Peers, session: Path, folder: Path, early: bytes, stdin: bytes) -> SClient:
    (folder / "early.txt").write_bytes(early)
    return s_client(
        served_by.port, peers, folder / "c.keys", "-sess_in", str(session), "-early_data", str(folder / "early.txt"),
        stdin=stdin,
    )  # fmt: skip


def test_s_client_early_data_accepted_and_a_replay_refused(
    server13: Served, peers: Peers, session_file: Path, tmp_path: Path
) -> None:
    # stdin empty: the only request is the 0-RTT one, answered once the handshake is done.
    result = early_run(server13, peers, session_file, tmp_path, REQUEST, b"")
    assert result.returncode == 0, result.stderr
    assert "Reused, TLSv1.3" in result.stdout
    assert "Early data was accepted" in result.stdout
    assert_page(result.stdout)
    (record,) = served(server13, result.client_random)
    assert record.handshake is not None and record.handshake.early_data == "accepted"
    assert record.request == REQUEST and record.status == 200
    assert_same_keylog(server13.keylog, result.keylog, result.client_random, HANDSHAKE_LABELS | EARLY_LABELS)

    # The replay an attacker can make: s_client's first flight byte for byte (ClientHello, CCS, the 0-RTT
    # records; the transcript kept them as they came), sent again on a new connection.
    first_flight = b""
    for entry in record.transcript:
        if any(isinstance(message, EndOfEarlyData) for message in entry.messages):
            break
        if entry.direction == "client->server":
            first_flight += entry.record
    assert server13.server.anti_replay is not None
    refused_before = sum(server13.server.anti_replay.refused.values())
    answer = replay(server13.port, first_flight)
    assert answer[:1] == bytes([ContentType.handshake])  # a ServerHello: the handshake goes on, without 0-RTT
    _, replayed = served(server13, result.client_random, count=2)
    # Refused as "replayed" (or "stale", had more than 10 s passed since the ticket's age was taken).
    assert sum(server13.server.anti_replay.refused.values()) == refused_before + 1
    assert replayed.handshake is None  # the replayer has no keys to finish with
    assert replayed.request == b"" and replayed.status is None


def replay(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read what the server answers to it (until it waits for more)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROCESS_TIMEOUT_S) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            ready, _, _ = select.select([sock], [], [], 2 if answer else PROCESS_TIMEOUT_S)
            chunk = sock.recv(65536) if ready else b""
            if not chunk:
                return answer  # our server waits for a Finished the replayer cannot make; we leave
            answer += chunk


def test_s_client_same_session_again_is_a_new_client_hello_not_a_replay(
    server13: Served, peers: Peers, session_file: Path, tmp_path: Path
) -> None:
    """Running s_client twice with one session: a new random, so a new binder; RFC 8446 8.2 lets both in."""
    randoms = []
    for run in range(2):
        folder = tmp_path / str(run)
        folder.mkdir()
        result = early_run(server13, peers, session_file, folder, REQUEST, b"")
        assert "Early data was accepted" in result.stdout, result.stdout
        assert_page(result.stdout)
        randoms.append(result.client_random)
    assert randoms[0] != randoms[1]


def test_s_client_early_data_refused_by_a_full_replay_window(
    server_full_window: Served, peers: Peers, tmp_path: Path
) -> None:
    session = tmp_path / "session.pem"
    full = s_client(server_full_window.port, peers, tmp_path / "full.keys", "-sess_out", str(session))
    assert full.returncode == 0 and session.exists(), full.stderr
    early = b"GET /early HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    late = b"GET /late HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    folder = tmp_path / "early"
    folder.mkdir()
    result = early_run(server_full_window, peers, session, folder, early, late)
    assert result.returncode == 0, result.stderr
    assert "Reused, TLSv1.3" in result.stdout
    assert "Early data was rejected" in result.stdout
    assert_page(result.stdout)  # the request s_client sent after the handshake
    (record,) = served(server_full_window, result.client_random)
    assert record.handshake is not None and record.handshake.early_data == "rejected"
    assert record.request == late and record.outcome.startswith("GET /late HTTP/1.1 -> 200")
    assert server_full_window.server.anti_replay is not None
    assert server_full_window.server.anti_replay.refused["full"] >= 1


def read_until(stream: int, marker: bytes, seen: bytearray) -> None:
    """Read from a pipe into ``seen`` until ``marker`` is in it (or the pipe ends, or PROCESS_TIMEOUT_S pass)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while marker not in seen:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(stream, 65536) if ready else b""
        if not chunk:
            return
        seen += chunk


@pytest.mark.parametrize("command", ["k", "K"])
def test_s_client_key_update(command: str, server13: Served, peers: Peers, tmp_path: Path) -> None:
    """s_client's ``k`` (update mine) and ``K`` (update mine, and yours): then the request, under the new keys."""
    openssl = require("openssl")
    keylog = tmp_path / "c.keys"
    process = subprocess.Popen(
        [
            openssl, "s_client", "-connect", f"127.0.0.1:{server13.port}", "-tls1_3", "-servername", "localhost",
            "-CAfile", str(peers.files.ca_path), "-verify_return_error", "-keylogfile", str(keylog),
        ],  # fmt: skip
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stdout, stderr = bytearray(), bytearray()
    try:
        read_until(process.stdout.fileno(), b"Verify return code", stdout)  # s_client's summary: handshake done
        process.stdin.write(command.encode() + b"\n")
        process.stdin.flush()
        read_until(process.stderr.fileno(), b"KEYUPDATE", stderr)  # s_client sent it (one command per line read)
        process.stdin.write(REQUEST)
        process.stdin.flush()
        read_until(process.stdout.fileno(), b"</html>", stdout)
        process.stdin.close()
        process.wait(timeout=PROCESS_TIMEOUT_S)
    finally:
        process.kill()
        process.wait(timeout=PROCESS_TIMEOUT_S)
    assert b"KEYUPDATE" in stderr
    assert_page(stdout.decode("utf-8", "replace"))
    (record,) = served(server13, client_random_of(keylog))
    assert record.status == 200 and record.error is None
    updates = [
        (entry.direction, message.request_update)
        for entry in record.transcript
        for message in entry.messages
        if isinstance(message, KeyUpdate)
    ]
    if command == "k":
        assert updates == [("client->server", 0)]
    else:  # update_requested: our server answers with its own KeyUpdate (update_not_requested)
        assert updates == [("client->server", 1), ("server->client", 0)]
    # The request came after the KeyUpdate: read with the client's next traffic secret.
    kinds = [
        "update" if any(isinstance(m, KeyUpdate) for m in entry.messages) else "request"
        for entry in record.transcript
        if entry.direction == "client->server" and (entry.content_type == ContentType.application_data or
                                                    any(isinstance(m, KeyUpdate) for m in entry.messages))
    ]  # fmt: skip
    assert kinds[:2] == ["update", "request"]


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_s_client_with_a_client_certificate(key_type: str, server_mutual: Served, peers: Peers, tmp_path: Path) -> None:
    cert, key = peers.ecdsa_client if key_type == "ecdsa" else peers.rsa_client
    result = s_client(server_mutual.port, peers, tmp_path / "c.keys", "-cert", str(cert), "-key", str(key))
    assert result.returncode == 0, result.stderr
    assert_page(result.stdout)
    (record,) = served(server_mutual, result.client_random)
    assert record.status == 200
    assert record.client_subject == f"CN={'alice' if key_type == 'ecdsa' else 'bob'},O=Handshakes course"


def test_s_client_without_a_client_certificate_is_refused(server_mutual: Served, peers: Peers, tmp_path: Path) -> None:
    result = s_client(server_mutual.port, peers, tmp_path / "c.keys")
    assert result.returncode != 0
    assert "alert certificate required" in result.stderr and "SSL alert number 116" in result.stderr
    (record,) = served(server_mutual, result.client_random)
    assert record.handshake is None and isinstance(record.error, CertificateRequired)


# -- curl --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curl:
    returncode: int
    body: str
    stderr: str
    keylog: Path

    @property
    def ssl_connection(self) -> str:
        """curl -v's "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384" (its -w has no TLS version)."""
        lines = [line for line in self.stderr.splitlines() if "SSL connection using" in line]
        assert len(lines) == 1, self.stderr
        return lines[0].split("SSL connection using", 1)[1].strip()


def run_curl(port: int, peers: Peers, keylog: Path, *args: str) -> Curl:
    curl = require("curl")
    command = [curl, "-v", "--silent", "--show-error", "--cacert", str(peers.files.ca_path), "--max-time", "20", *args,
               f"https://localhost:{port}/"]  # fmt: skip
    environment = dict(os.environ, SSLKEYLOGFILE=str(keylog))  # curl's OpenSSL writes the NSS key log there
    completed = subprocess.run(command, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, env=environment)
    return Curl(completed.returncode, completed.stdout, completed.stderr, keylog)


@pytest.mark.parametrize("which", ["1.3 only", "1.3 and 1.2"])
def test_curl_tls13(which: str, server13: Served, server_both: Served, peers: Peers, tmp_path: Path) -> None:
    target = server13 if which == "1.3 only" else server_both
    result = run_curl(target.port, peers, tmp_path / "curl.keys", "--tlsv1.3")
    assert result.returncode == 0, result.stderr
    assert result.ssl_connection.startswith("TLSv1.3 / TLS_")
    assert HEADING in result.body
    client_random = client_random_of(result.keylog)
    (record,) = served(target, client_random)
    assert record.handshake is not None and record.handshake.version == 0x0304 and record.status == 200
    assert result.ssl_connection == f"TLSv1.3 / {record.handshake.cipher_suite.name}"
    assert_same_keylog(target.keylog, result.keylog, client_random, HANDSHAKE_LABELS)


def test_curl_capped_at_tls12_gets_tls12_with_the_downgrade_sentinel(
    server_both: Served, peers: Peers, tmp_path: Path
) -> None:
    result = run_curl(server_both.port, peers, tmp_path / "curl.keys", "--tls-max", "1.2")
    assert result.returncode == 0, result.stderr  # curl capped itself: the sentinel is no reason to stop
    assert result.ssl_connection.startswith("TLSv1.2 / ECDHE-")
    assert HEADING in result.body
    client_random = client_random_of(result.keylog)
    (record,) = served(server_both, client_random)
    handshake = record.handshake
    assert isinstance(handshake, HandshakeComplete) and handshake.version == 0x0303 and record.status == 200
    assert handshake.server_random[-8:] == b"DOWNGRD\x01"  # RFC 8446 4.1.3: a 1.3 server answering 1.2
    (line,) = keylog_lines(result.keylog, client_random)
    assert line.startswith("CLIENT_RANDOM ") and line in keylog_lines(server_both.keylog, client_random)


# -- headless Chromium -------------------------------------------------------------------------------------
def spki_pin(files: ServerFiles) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of our leaf: what --ignore-certificate-errors-spki-list takes."""
    spki = files.issued.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_chromium_loads_the_page_over_x25519mlkem768(server13: Served, peers: Peers, tmp_path: Path) -> None:
    chromium = require("chromium")
    before = server13.server.accepted
    completed = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}",
            f"--ignore-certificate-errors-spki-list={spki_pin(peers.files)}", "--enable-logging=stderr", "--v=0",
            "--dump-dom", f"https://localhost:{server13.port}/",
        ],  # fmt: skip
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert HEADING in completed.stdout
    # Chromium may open a second (preconnect) connection; the one that asked for the page:
    deadline = time.monotonic() + WAIT_S
    while True:
        records = [r for r in list(server13.server.connections) if r.number > before]
        pages = [r for r in records if r.finished and r.status == 200]
        if pages or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert pages, [r.outcome for r in records]
    record = pages[0]
    assert record.handshake is not None
    assert record.handshake.version == 0x0304
    assert record.handshake.group == NamedGroup.X25519MLKEM768 == 0x11EC
    assert not record.handshake.hello_retry_request
    # Chromium's normal offer, which must not confuse us: GREASE everywhere, the hybrid share first, ECH GREASE.
    hello = client_hello_of(record)
    assert hello is not None and hello.extensions is not None
    assert any(is_grease(suite) for suite in hello.cipher_suites)
    assert any(is_grease(extension.extension_type) for extension in hello.extensions)
    assert any(isinstance(e, UnknownExtension) and e.extension_type == 0xFE0D for e in hello.extensions)  # ECH
    shares = hello.extension(ExtensionType.key_share)
    assert isinstance(shares, KeyShareClientHelloExtension)
    real = [share.group for share in shares.client_shares if not is_grease(share.group)]
    assert real[0] == NamedGroup.X25519MLKEM768 and NamedGroup.x25519 in real
    groups = hello.extension(ExtensionType.supported_groups)
    assert isinstance(groups, SupportedGroupsExtension) and any(is_grease(g) for g in groups.groups)


# -- OpenSSL 4 (cryptography's own copy) as a client over memory BIOs -------------------------------------
class BundledOpenSSLClient:
    """OpenSSL 4, the copy inside ``cryptography``'s wheel (it has X25519MLKEM768), as a TLS 1.3 client.

    Debian's OpenSSL 3.0 behind Python's ``ssl`` has no ML-KEM; ``cryptography``'s cffi bindings keep the
    SSL calls pyOpenSSL uses, enough for a client over memory BIOs that verifies our chain and host name
    and logs its secrets.  Its default groups put X25519MLKEM768 first, with a share of it and of x25519.
    """

    def __init__(self, ca_path: Path, host: str) -> None:
        from cryptography.hazmat.bindings.openssl.binding import Binding

        lib, ffi = Binding.lib, Binding.ffi
        self.lib, self.ffi, self.keylog = lib, ffi, []  # type: ignore[var-annotated]
        self._ctx = ffi.gc(lib.SSL_CTX_new(lib.TLS_client_method()), lib.SSL_CTX_free)
        assert lib.SSL_CTX_load_verify_locations(self._ctx, str(ca_path).encode(), ffi.NULL) == 1
        lib.SSL_CTX_set_verify(self._ctx, lib.SSL_VERIFY_PEER, ffi.NULL)
        assert lib.SSL_CTX_set_min_proto_version(self._ctx, lib.TLS1_3_VERSION) == 1

        def log_line(_ssl, line) -> None:  # type: ignore[no-untyped-def]
            self.keylog.append(ffi.string(line).decode())

        self._keylog_callback = ffi.callback(ffi.typeof(lib.SSL_CTX_set_keylog_callback).args[1], log_line)
        lib.SSL_CTX_set_keylog_callback(self._ctx, self._keylog_callback)
        self._ssl = ffi.gc(lib.SSL_new(self._ctx), lib.SSL_free)
        self._in, self._out = lib.BIO_new(lib.BIO_s_mem()), lib.BIO_new(lib.BIO_s_mem())
        lib.SSL_set_bio(self._ssl, self._in, self._out)  # the SSL owns both BIOs now
        lib.SSL_set_tlsext_host_name(self._ssl, host.encode())  # void in these bindings
        assert lib.X509_VERIFY_PARAM_set1_host(lib.SSL_get0_param(self._ssl), host.encode(), len(host)) == 1
        lib.SSL_set_connect_state(self._ssl)
        self.handshake_done = False

    def step(self, incoming: bytes) -> bytes:
        """Give it the server's bytes, let it move its handshake on; what it sends back."""
        if incoming:
            assert self.lib.BIO_write(self._in, incoming, len(incoming)) == len(incoming)
        if not self.handshake_done:
            self.handshake_done = self.lib.SSL_do_handshake(self._ssl) == 1
        return self._drain()

    def _drain(self) -> bytes:
        buffer, chunks = self.ffi.new("char[]", 65536), []
        while (n := self.lib.BIO_read(self._out, buffer, 65536)) > 0:
            chunks.append(self.ffi.buffer(buffer, n)[:])
        return b"".join(chunks)

    def write(self, data: bytes) -> bytes:
        assert self.lib.SSL_write(self._ssl, data, len(data)) == len(data)
        return self._drain()

    def read(self, incoming: bytes) -> bytes:
        assert self.lib.BIO_write(self._in, incoming, len(incoming)) == len(incoming)
        buffer, chunks = self.ffi.new("char[]", 65536), []
        while (n := self.lib.SSL_read(self._ssl, buffer, 65536)) > 0:
            chunks.append(self.ffi.buffer(buffer, n)[:])
        return b"".join(chunks)

    def version(self) -> str:
        return self.ffi.string(self.lib.SSL_get_version(self._ssl)).decode()

    def verify_result(self) -> int:
        return self.lib.SSL_get_verify_result(self._ssl)


def test_bundled_openssl4_client_gets_x25519mlkem768(peers: Peers) -> None:
    client = BundledOpenSSLClient(peers.files.ca_path, "localhost")
    ours: list[str] = []
    server = TLS13Server([peers.files.issued.der], peers.files.issued.private_key, keylog=ours.append)
    events: list[object] = []
    to_server = client.step(b"")
    for _ in range(6):  # ClientHello, then its Finished: two round trips are plenty
        events += server.receive_data(to_server)
        to_server = client.step(server.data_to_send())
        if client.handshake_done and server.handshake is not None and not to_server:
            break
    assert client.handshake_done and client.version() == "TLSv1.3" and client.verify_result() == 0
    handshake = server.handshake
    assert handshake is not None and handshake.group == NamedGroup.X25519MLKEM768
    assert not handshake.hello_retry_request  # its first share was the hybrid, and we took it
    assert sorted(client.keylog) == sorted(ours)
    assert {line.split()[0] for line in ours} == HANDSHAKE_LABELS
    events += server.receive_data(client.write(REQUEST))
    assert [e.data for e in events if isinstance(e, ApplicationData)] == [REQUEST]
    server.send_application_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert client.read(server.data_to_send()) == b"HTTP/1.1 204 No Content\r\n\r\n"


# -- Python ssl (OpenSSL 3.0): one group per server, HRR for all but x25519 --------------------------------
@pytest.fixture(scope="module", params=list(GROUPS13.values()), ids=lambda group: group.name)
def one_group_server(request: pytest.FixtureRequest, peers: Peers) -> Iterator[tuple[NamedGroup, Served]]:
    group = request.param
    for served_by in _start(peers, f"group-{group.name}", tls_versions=("1.3",), groups13=(group,)):
        yield group, served_by


def test_python_ssl_client_each_group(
    one_group_server: tuple[NamedGroup, Served], peers: Peers, tmp_path: Path
) -> None:
    """Python's client offers x25519, P-256, x448, P-521, P-384, ffdhe2048... with an x25519 share only."""
    group, target = one_group_server
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(peers.files.ca_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.keylog_filename = str(tmp_path / "python.keys")
    raw = socket.create_connection(("127.0.0.1", target.port), timeout=PROCESS_TIMEOUT_S)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() == "TLSv1.3"
        tls.sendall(REQUEST)
        page = b""
        while chunk := tls.recv(65536):
            page += chunk
    assert page.startswith(b"HTTP/1.1 200 OK") and HEADING.encode() in page
    client_random = client_random_of(tmp_path / "python.keys")
    (record,) = served(target, client_random)
    assert record.handshake is not None and record.handshake.group == group
    assert record.handshake.hello_retry_request == (group != NamedGroup.x25519)
    assert_same_keylog(target.keylog, tmp_path / "python.keys", client_random, HANDSHAKE_LABELS)
