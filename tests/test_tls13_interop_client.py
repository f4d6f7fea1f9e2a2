"""Our TLS 1.3 client against servers nobody here wrote: ``openssl s_server``, Python ``ssl``, OpenSSL 4.

Every case is a real connection through :func:`~handshake_lib.net.tls.tls_get` or
:func:`~handshake_lib.net.tls.open_tls` with ``tls_version="1.3"`` (the OpenSSL 4 case drives the
:class:`~handshake_lib.tls.client13.TLS13Client` core over memory BIOs), and the evidence is what the peer
itself recorded: the page ``s_server -www`` writes about the connection ("New, TLSv1.3, Cipher is ...",
"Reused, TLSv1.3", the client certificate's subject), what s_server printed (the early data it read, the
line we sent after its KeyUpdate, "bad record mac"), and its key log (``-keylogfile``, or Python's
``SSLContext.keylog_filename``), compared line by line with ours: the same labels with the same secrets for
our client random, so every key the two sides derived is the same.

OpenSSL 3.0 (Debian's, behind ``openssl`` and Python ``ssl``) has no X25519MLKEM768: our default key shares
(X25519MLKEM768 and x25519) make it pick x25519 directly, and a server restricted to another group answers
with a HelloRetryRequest.  The hybrid itself is checked against the OpenSSL 4 inside ``cryptography``'s wheel
(``BundledOpenSSLServer`` from ``test_tls13_handshake_by_hand.py``).
"""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path

import pytest
from conftest import require
from test_tls13_handshake_by_hand import BundledOpenSSLServer

from handshake_lib.errors import PeerAlert, TLSAlert
from handshake_lib.net.tls import TLSResponse, open_tls, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, s_server
from handshake_lib.pki.builder import CoursePKI, IssuedCertificate, ServerFiles
from handshake_lib.tls.client13 import TLS13Client
from handshake_lib.tls.connection import ApplicationData, HandshakeComplete
from handshake_lib.tls.connection13 import KeyUpdated
from handshake_lib.tls.constants import NamedGroup
from handshake_lib.tls.messages import ClientHello
from handshake_lib.tls.sessions import ClientSessionStore

WAIT = 10.0  # seconds to wait for a line s_server prints; never reached when things work
ALL_SUITES = (0x1302, 0x1303, 0x1301, 0x1304)  # CCM is not in our default offer: the server's restriction decides

SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
}
# s_server's -groups name -> the group; a share for that group alone goes in our hello (no HelloRetryRequest).
GROUPS = {
    "X25519": NamedGroup.x25519,
    "P-256": NamedGroup.secp256r1,
    "P-384": NamedGroup.secp384r1,
    "ffdhe2048": NamedGroup.ffdhe2048,
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    require("openssl", "openssl s_server is the peer")
    return CoursePKI.create().write_server_files(tmp_path_factory.mktemp("tls13-interop"), ("localhost", "127.0.0.1"))


@pytest.fixture(scope="module")
def client_certificates(files: ServerFiles) -> dict[str, IssuedCertificate]:
    return {
        "ecdsa": files.pki.issue_client("bob-ecdsa"),
        "rsa": files.pki.issue_client("alice-rsa", key_type="rsa2048"),
    }


def keylog_lines(path: Path, client_random: bytes) -> list[str]:
    """The NSS key log lines of one connection (its client random), sorted: the two sides log in different orders."""
    wanted = client_random.hex()
    return sorted(
        line
        for line in path.read_text().splitlines()
        if not line.startswith("#") and len(line.split()) == 3 and line.split()[1].lower() == wanted
    )


def assert_same_keys(ours: Path, theirs: Path, client_random: bytes, *, labels: set[str]) -> None:
    """Every secret of this connection, in both logs, equal; ``labels`` are the ones that must be there."""
    mine, peer = keylog_lines(ours, client_random), keylog_lines(theirs, client_random)
    assert mine == peer
    assert {line.split()[0] for line in mine} == labels


HANDSHAKE_LABELS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
}


def fetch(port: int, files: ServerFiles, keylog: Path, **options: object) -> TLSResponse:
    return tls_get(f"https://localhost:{port}/", cafile=files.ca_path, tls_version="1.3", keylog_path=keylog, **options)  # type: ignore[arg-type]


def client_hellos(response: TLSResponse) -> int:
    return sum(isinstance(m, ClientHello) for entry in response.transcript for m in entry.messages)


# -- s_server: each suite, each group, HelloRetryRequest ------------------------------------------------------
@pytest.mark.parametrize("code", sorted(SUITES), ids=[SUITES[c] for c in sorted(SUITES)])
def test_each_cipher_suite_with_s_server(code: int, files: ServerFiles, tmp_path: Path) -> None:
    theirs, ours = tmp_path / "s_server.keys", tmp_path / "ours.keys"
    with s_server(files, "-tls1_3", "-www", "-ciphersuites", SUITES[code], "-keylogfile", str(theirs)) as server:
        response = fetch(server.port, files, ours, cipher_suites=ALL_SUITES)
    assert response.status == 200 and response.handshake.cipher_suite == code
    assert f"New, TLSv1.3, Cipher is {SUITES[code]}".encode() in response.body  # s_server's own account
    assert_same_keys(ours, theirs, response.handshake.client_random, labels=HANDSHAKE_LABELS)


@pytest.mark.parametrize("name", list(GROUPS))
def test_each_group_with_s_server(name: str, files: ServerFiles, tmp_path: Path) -> None:
    """One share in the group s_server takes (``-groups``): a full handshake in it, no HelloRetryRequest."""
    theirs, ours = tmp_path / "s_server.keys", tmp_path / "ours.keys"
    group = GROUPS[name]
    with s_server(files, "-tls1_3", "-www", "-groups", name, "-keylogfile", str(theirs)) as server:
        response = fetch(server.port, files, ours, key_share_groups=[group])
    assert response.handshake.group == group and not response.handshake.hello_retry_request
    assert client_hellos(response) == 1
    assert b"New, TLSv1.3" in response.body
    assert_same_keys(ours, theirs, response.handshake.client_random, labels=HANDSHAKE_LABELS)


def test_hello_retry_request_from_s_server_that_takes_p256_only(files: ServerFiles, tmp_path: Path) -> None:
    """Our default shares (X25519MLKEM768, x25519) are both unwanted: s_server asks for P-256, we send it."""
    theirs, ours = tmp_path / "s_server.keys", tmp_path / "ours.keys"
    with s_server(files, "-tls1_3", "-www", "-groups", "P-256", "-keylogfile", str(theirs)) as server:
        response = fetch(server.port, files, ours)
    assert response.handshake.hello_retry_request and response.handshake.group == NamedGroup.secp256r1
    assert client_hellos(response) == 2
    assert b"New, TLSv1.3" in response.body
    assert_same_keys(ours, theirs, response.handshake.client_random, labels=HANDSHAKE_LABELS)


# -- resumption, KeyUpdate, 0-RTT --------------------------------------------------------------------------
def test_resumption_with_the_ticket_s_server_sent(files: ServerFiles, tmp_path: Path) -> None:
    theirs, ours = tmp_path / "s_server.keys", tmp_path / "ours.keys"
    store = ClientSessionStore()
    with s_server(files, "-tls1_3", "-www", "-keylogfile", str(theirs)) as server:
        first = fetch(server.port, files, ours, session_store=store)
        assert store.get(f"localhost:{server.port}") is not None  # s_server's NewSessionTicket, kept
        second = fetch(server.port, files, ours, session_store=store)
    assert b"New, TLSv1.3" in first.body and not first.handshake.resumed
    assert b"Reused, TLSv1.3" in second.body  # s_server resumed it: SSL_session_reused
    assert second.handshake.resumed and second.resumed_by == "ticket"
    assert second.handshake.psk_mode == "psk_dhe_ke"
    for response in (first, second):
        assert_same_keys(ours, theirs, response.handshake.client_random, labels=HANDSHAKE_LABELS)


def test_key_update_from_s_server_both_kinds(files: ServerFiles, tmp_path: Path) -> None:
    """s_server's ``k`` (KeyUpdate) and ``K`` (update_requested, which we answer with our own): we keep reading
    its lines under each new key, and s_server reads ours under our new key."""
    deadline = time.monotonic() + WAIT
    with (
        s_server(files, "-tls1_3", stdin=True) as server,
        open_tls("127.0.0.1", server.port, "localhost", cafile=files.ca_path, tls_version="1.3") as stream,
    ):
        stream.send(b"hello before\n")
        server.read_output(re.compile(rb"hello before"), wait=WAIT)
        updates: list[KeyUpdated] = []
        for command, line in ((b"k\n", b"after k\n"), (b"K\n", b"after K\n")):
            server.write(command)  # alone on its line (s_server would send "k\nafter k\n" as data)
            before = len(updates)
            while len(updates) == before:  # s_server buffers what it prints: wait for the KeyUpdate itself
                updates += [e for e in stream._driver.receive(deadline) if isinstance(e, KeyUpdated)]
            server.write(line)
            assert stream.recv(deadline=deadline) == line  # opened with the next receiving key
        stream.send(b"ours after K\n")
        assert b"ours after K" in server.read_output(re.compile(rb"ours after K"), wait=WAIT)
    # ``K`` asked for ours: the core answered on its own, and s_server read our line under the new key
    assert [(u.direction, u.generation) for u in updates] == [("receiving", 1), ("receiving", 2)]
    assert stream.client.key_generations == {"receiving": 2, "sending": 1}


def test_early_data_to_s_server(files: ServerFiles, tmp_path: Path) -> None:
    """A ticket from ``s_server -early_data`` (max_early_data_size 16384), then 0-RTT data it reads before the
    handshake ends; both logs have CLIENT_EARLY_TRAFFIC_SECRET and EARLY_EXPORTER_SECRET."""
    theirs, ours = tmp_path / "s_server.keys", tmp_path / "ours.keys"
    store = ClientSessionStore()
    early = b"GET /early-from-handshakes\n"
    deadline = time.monotonic() + WAIT
    options = {"cafile": files.ca_path, "tls_version": "1.3", "session_store": store, "keylog_path": ours}
    with s_server(files, "-tls1_3", "-early_data", "-keylogfile", str(theirs), stdin=True) as server:
        with open_tls("127.0.0.1", server.port, "localhost", **options) as stream:  # type: ignore[arg-type]
            server.read_output(re.compile(rb"CIPHER is"), wait=WAIT)
            server.write(b"ticket first\n")  # its tickets went before this line: we hold one once we read it
            assert stream.recv(deadline=deadline) == b"ticket first\n"
        ticket = store.get(f"localhost:{server.port}")
        assert ticket is not None and ticket.max_early_data_size == 16384
        server.read_output(re.compile(rb"CONNECTION CLOSED"), wait=WAIT)
        with open_tls("127.0.0.1", server.port, "localhost", early_data=early, **options) as stream:  # type: ignore[arg-type]
            said = server.read_output(re.compile(rb"End of early data"), wait=WAIT)
            assert stream.handshake.early_data == "accepted" and stream.handshake.resumed
    assert b"Early data received:" in said and early in said
    assert_same_keys(
        ours,
        theirs,
        stream.handshake.client_random,
        labels=HANDSHAKE_LABELS | {"CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET"},
    )


# -- client certificates -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_client_certificate_checked_by_s_server(
    kind: str, files: ServerFiles, client_certificates: dict[str, IssuedCertificate]
) -> None:
    """``-Verify 1``: s_server requires a certificate, checks it against the course CA, names its subject."""
    issued = client_certificates[kind]
    common_name = issued.certificate.subject.rfc4514_string().split("CN=")[1].split(",")[0]
    with s_server(files, "-tls1_3", "-www", "-Verify", "1", "-CAfile", str(files.ca_path)) as server:
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=files.ca_path, tls_version="1.3",
            client_certificate_chain=[issued.certificate], client_private_key=issued.private_key,
        )  # fmt: skip
        printed = server.read_output(re.compile(rb"depth=0 .*\nverify return:1"), wait=WAIT)
    assert f"Subject: O=Handshakes course, CN={common_name}".encode() in response.body  # the -www page
    assert re.search(rf"depth=0 .*CN = {common_name}\nverify return:1".encode(), printed)


# -- refused: a TLS 1.2 server, a record we damaged ---------------------------------------------------------
def test_a_tls12_only_s_server_refuses_our_tls13_only_client(files: ServerFiles) -> None:
    with s_server(files, "-tls1_2", "-www") as server:
        with pytest.raises(PeerAlert) as refused:
            tls_get(f"https://localhost:{server.port}/", cafile=files.ca_path, tls_version="1.3")
        printed = server.read_output(re.compile(rb"unsupported protocol"), wait=WAIT)
    assert refused.value.description == TLSAlert.protocol_version
    assert b"unsupported protocol" in printed


def test_s_server_refuses_a_record_we_damaged_with_bad_record_mac(files: ServerFiles) -> None:
    with (
        s_server(files, "-tls1_3", stdin=True) as server,
        open_tls("127.0.0.1", server.port, "localhost", cafile=files.ca_path, tls_version="1.3") as stream,
    ):
        stream.send(b"intact\n")
        assert b"intact" in server.read_output(re.compile(rb"intact"), wait=WAIT)
        stream.send_altered(b"damaged\n", lambda wire: wire[:-1] + bytes([wire[-1] ^ 1]))  # one bit of the tag
        printed = server.read_output(re.compile(rb"bad record mac"), wait=WAIT)
        with pytest.raises(PeerAlert) as refused:
            stream.recv(deadline=time.monotonic() + WAIT)
    assert b"decryption failed or bad record mac" in printed and b"damaged" not in printed
    assert refused.value.description == TLSAlert.bad_record_mac


# -- Python ssl (OpenSSL 3.0 in this process) ------------------------------------------------------------------
PYTHON_GROUPS = {  # set_ecdh_curve's name -> the group; our default shares make every one but x25519 an HRR
    "X25519": NamedGroup.x25519,
    "prime256v1": NamedGroup.secp256r1,
    "secp384r1": NamedGroup.secp384r1,
    "ffdhe2048": NamedGroup.ffdhe2048,
}


@pytest.mark.parametrize("curve", list(PYTHON_GROUPS))
def test_each_group_with_python_ssl(curve: str, files: ServerFiles, tmp_path: Path) -> None:
    theirs, ours = tmp_path / "python.keys", tmp_path / "ours.keys"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_path, files.key_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_ecdh_curve(curve)
    context.keylog_filename = str(theirs)
    with PythonSSLServer(context) as server:
        response = fetch(server.port, files, ours)
        outcome = server.connections[0]
    group = PYTHON_GROUPS[curve]
    assert response.status == 200 and outcome.version == "TLSv1.3"
    assert outcome.cipher == response.handshake.cipher_suite.name
    assert response.handshake.group == group
    assert response.handshake.hello_retry_request == (group != NamedGroup.x25519)
    assert client_hellos(response) == (1 if group == NamedGroup.x25519 else 2)
    assert_same_keys(ours, theirs, response.handshake.client_random, labels=HANDSHAKE_LABELS)


# -- X25519MLKEM768 with OpenSSL 4 (inside cryptography's wheel) ---------------------------------------------
def test_x25519mlkem768_with_the_openssl_4_inside_cryptography(files: ServerFiles, tmp_path: Path) -> None:
    """Our client core's default hello against OpenSSL 4 over memory BIOs: it takes the hybrid share (0x11ec)
    first, the handshake ends on both sides, its data opens with our keys, and its key log equals ours."""
    theirs = tmp_path / "openssl4.keys"
    peer = BundledOpenSSLServer(files, theirs)
    ours: list[str] = []
    client = TLS13Client("localhost", cafile=files.ca_path, keylog=ours.append, clock=time.time)
    client.start()
    events: list[object] = []
    for _ in range(4):  # ClientHello -> its flight; our Finished -> its tickets
        outgoing = client.data_to_send()
        if not outgoing:
            break
        events += client.receive_data(b"".join(record for _, record in peer.send(outgoing)))
    assert peer.handshake_done and peer.version() == "TLSv1.3"
    events += client.receive_data(b"".join(record for _, record in peer.write(b"hello from OpenSSL 4\n")))
    handshake = next(e for e in events if isinstance(e, HandshakeComplete))
    assert handshake.group == NamedGroup.X25519MLKEM768 == 0x11EC and not handshake.hello_retry_request
    assert [e.data for e in events if isinstance(e, ApplicationData)] == [b"hello from OpenSSL 4\n"]
    assert not [e for e in events if isinstance(e, KeyUpdated)]
    (ours_path := tmp_path / "ours.keys").write_text("".join(line + "\n" for line in ours))
    assert_same_keys(ours_path, theirs, handshake.client_random, labels=HANDSHAKE_LABELS)
