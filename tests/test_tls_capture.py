"""tls/capture.py: real TLS 1.2 sessions captured by tcpdump on loopback, decrypted, checked against tshark.

The sessions (made once per module, each in its own tcpdump capture filtered on the server's port):

* ``rsa_gcm``: our client (``tls_get``) against OpenSSL (Python ``ssl``), TLS_RSA_WITH_AES_128_GCM_SHA256,
  with the key log our client wrote and the one OpenSSL wrote (``SSLContext.keylog_filename``), and the
  same connection recorded in process by ``tls_get(record_to=...)``;
* ``rsa_cbc``: the same with TLS_RSA_WITH_AES_128_CBC_SHA256 (HMAC, padding, explicit IV), encrypt-then-MAC;
* ``rsa_cbc_mte``: TLS_RSA_WITH_AES_256_CBC_SHA with MAC-then-encrypt (our client not offering RFC 7366);
* ``ecdhe``: our client with TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (x25519);
* ``ecdhe_openssl``: OpenSSL's own client (Python ``ssl``, its own key log) with
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: another implementation's ECDHE share and key log.

What must hold: either key log opens every record and the page appears; tshark, given the same key log,
decrypts the same capture to the same bytes both ways; the server's RSA key opens the RSA sessions and
says why it cannot open the ECDHE one; a wrong secret or key is caught and named, never shown as garbage.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require, require_loopback_capture
from cryptography.hazmat.primitives.asymmetric import rsa

from handshake_lib.errors import DecodeError
from handshake_lib.net.tls import tls_get
from handshake_lib.peers.openssl import openssl_server
from handshake_lib.tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT
from handshake_lib.tls.capture import KEYLOG, SERVER_KEY, UndecryptedRecord, decode_tls_capture
from handshake_lib.tls.connection import ApplicationData
from handshake_lib.tls.keylog import KeyLog, KeyLogEntry, read_keylog
from handshake_lib.tls.messages import Certificate, ClientHello, ClientKeyExchange, Finished, ServerHello
from handshake_lib.tls.suites import parse_suite_name

ROOT = Path(__file__).resolve().parent.parent
ECDHE_REASON = "the pre-master secret came from an ephemeral ECDHE exchange; the server's RSA key only signed it"


@dataclass
class Session:
    pcap: Path
    client_keylog: Path  # written by the client (ours, or OpenSSL's for ecdhe)
    server_keylog: Path  # written by OpenSSL's server
    server_key: rsa.RSAPrivateKey
    request: bytes
    body: bytes
    recorded: Path | None = None  # tls_get(record_to=...)'s pcap of the same connection


def _tcpdump():
    return require_loopback_capture("captures the sessions").tcpdump


def require_capture() -> None:
    require_loopback_capture("captures the sessions")
    require("tshark", "Wireshark's TLS dissector is the second opinion")


def _our_client(directory: Path, name: str, cipher: str, **client_options) -> Session:
    tcpdump = _tcpdump()
    pcap, recorded = directory / f"{name}.pcap", directory / f"{name}.rec.pcap"
    keylog = directory / f"{name}.ours.keylog"
    with openssl_server(cipher) as peer:
        with tcpdump(pcap, peer.port):
            response = tls_get(
                peer.url, cafile=peer.cafile, cipher_suites=[parse_suite_name(cipher)], keylog_path=keylog,
                record_to=recorded, **client_options,
            )  # fmt: skip
        server_keylog = directory / f"{name}.openssl.keylog"
        server_keylog.write_bytes(peer.keylog_path.read_bytes())
        request = b"".join(
            m.data for e in response.transcript if e.direction == CLIENT_TO_SERVER for m in e.messages
            if isinstance(m, ApplicationData)
        )  # fmt: skip
        return Session(pcap, keylog, server_keylog, peer.private_key, request, response.body, recorded)


def _openssl_client(directory: Path, name: str, cipher: str) -> Session:
    tcpdump = _tcpdump()
    pcap, keylog = directory / f"{name}.pcap", directory / f"{name}.client.keylog"
    with openssl_server(cipher) as peer:
        context = ssl.create_default_context(cafile=str(peer.cafile))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(cipher)
        context.keylog_filename = str(keylog)
        request = f"GET / HTTP/1.1\r\nHost: localhost:{peer.port}\r\nConnection: close\r\n\r\n".encode()
        received = b""
        with (
            tcpdump(pcap, peer.port),
            socket.create_connection((peer.host, peer.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(request)
            while chunk := tls.recv(65536):
                received += chunk
        server_keylog = directory / f"{name}.openssl.keylog"
        server_keylog.write_bytes(peer.keylog_path.read_bytes())
        return Session(pcap, keylog, server_keylog, peer.private_key, request, received.split(b"\r\n\r\n", 1)[1])


def record_sessions(directory: Path) -> dict[str, Session]:
    """The captured sessions (see the module docstring); needs root for tcpdump."""
    require_capture()
    return {
        "rsa_gcm": _our_client(directory, "rsa_gcm", "AES128-GCM-SHA256"),
        "rsa_cbc": _our_client(directory, "rsa_cbc", "AES128-SHA256"),  # encrypt-then-MAC (RFC 7366), as offered
        "rsa_cbc_mte": _our_client(directory, "rsa_cbc_mte", "AES256-SHA", encrypt_then_mac=False),
        "ecdhe": _our_client(directory, "ecdhe", "ECDHE-RSA-AES128-GCM-SHA256"),  # our client speaks ECDHE now
        # OpenSSL's own client too: its ClientHello, its ECDHE share, its key log.
        "ecdhe_openssl": _openssl_client(directory, "ecdhe_openssl", "ECDHE-RSA-AES256-GCM-SHA384"),
    }


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> dict[str, Session]:
    return record_sessions(tmp_path_factory.mktemp("tls-captures"))


def tshark_application_data(pcap: Path, keylog: Path | None = None, option: str = "") -> tuple[bytes, bytes]:
    """What tshark decrypts of the capture's first TLS stream: (client -> server, server -> client).

    ``keylog``: an NSS key log; or ``option``: another ``-o`` preference (``uat:rsa_keys:...``)."""
    option = option or f"tls.keylog_file:{keylog}"
    result = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", option, "-q", "-z", "follow,tls,raw,0"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    client, server = bytearray(), bytearray()
    for line in result.stdout.split("Node 1:", 1)[1].splitlines()[1:]:
        if line.startswith("==="):
            break
        (server if line.startswith("\t") else client).extend(bytes.fromhex(line.strip()))
    return bytes(client), bytes(server)


def _only(pcap: Path, **secrets):
    [connection] = decode_tls_capture(pcap, **secrets)
    return connection


# -- with a key log ------------------------------------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.parametrize("name", ["rsa_gcm", "rsa_cbc", "rsa_cbc_mte", "ecdhe", "ecdhe_openssl"])
@pytest.mark.parametrize("writer", ["client", "server"])
def test_either_key_log_opens_every_record_and_the_page_appears(sessions, name, writer):
    session = sessions[name]
    keylog = read_keylog(session.client_keylog if writer == "client" else session.server_keylog)
    connection = _only(session.pcap, keylog=keylog)
    assert connection.decrypted and connection.key_source == KEYLOG, connection.problem
    assert not any(isinstance(entry, UndecryptedRecord) for entry in connection.entries)
    assert connection.application_data(CLIENT_TO_SERVER) == session.request
    response = connection.application_data(SERVER_TO_CLIENT)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(session.body)
    # The handshake is decoded with its messages, in order, and the two Finished messages were decrypted.
    kinds = [type(m).__name__ for e in connection.entries for m in e.messages]
    assert kinds[:3] == ["ClientHello", "ServerHello", "Certificate"]
    finished = [e.direction for e in connection.entries if any(isinstance(m, Finished) for m in e.messages)]
    assert finished == [CLIENT_TO_SERVER, SERVER_TO_CLIENT]  # both decrypted: in the clear there is none
    if name.startswith("ecdhe"):
        assert "ServerKeyExchange" in kinds
    else:
        assert any(isinstance(m, ClientKeyExchange) for e in connection.entries for m in e.messages)


@pytest.mark.peer
@pytest.mark.parametrize("name", ["rsa_gcm", "rsa_cbc", "rsa_cbc_mte", "ecdhe", "ecdhe_openssl"])
def test_tshark_decrypts_the_same_capture_to_the_same_bytes(sessions, name):
    session = sessions[name]
    connection = _only(session.pcap, keylog=read_keylog(session.client_keylog))
    theirs = tshark_application_data(session.pcap, session.client_keylog)
    assert theirs[1]  # tshark did decrypt something: the comparison is not between two empties
    assert theirs == (connection.application_data(CLIENT_TO_SERVER), connection.application_data(SERVER_TO_CLIENT))


@pytest.mark.peer
def test_the_in_process_recording_is_the_same_connection_as_tcpdumps(sessions):
    session = sessions["rsa_gcm"]
    keylog = read_keylog(session.client_keylog)
    captured, recorded = _only(session.pcap, keylog=keylog), _only(session.recorded, keylog=keylog)
    assert recorded.decrypted
    assert (recorded.client, recorded.server) == (captured.client, captured.server)
    assert [(e.direction, e.record, e.plaintext) for e in recorded.entries] == [
        (e.direction, e.record, e.plaintext) for e in captured.entries
    ]
    assert tshark_application_data(session.recorded, session.client_keylog)[1].endswith(session.body)


# -- with the server's private key ---------------------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.parametrize("name", ["rsa_gcm", "rsa_cbc", "rsa_cbc_mte"])
def test_the_servers_key_opens_an_rsa_session(sessions, name):
    session = sessions[name]
    connection = _only(session.pcap, server_key=session.server_key)
    assert connection.decrypted and connection.key_source == SERVER_KEY, connection.problem
    assert connection.application_data(SERVER_TO_CLIENT).endswith(session.body)
    # The master secret found from the key is the one both sides logged.
    assert read_keylog(session.server_keylog).master_secret(connection.client_random) == connection.master_secret


@pytest.mark.peer
def test_the_servers_key_cannot_open_an_ecdhe_session_and_says_why(sessions):
    session = sessions["ecdhe"]
    connection = _only(session.pcap, server_key=session.server_key)
    assert not connection.decrypted
    assert connection.problem.startswith(ECDHE_REASON)
    encrypted = [e for e in connection.entries if e.encrypted]
    assert encrypted and all(isinstance(e, UndecryptedRecord) for e in encrypted)
    # What is in the clear is still decoded: the hellos and the certificate.
    kinds = {type(m) for e in connection.entries for m in e.messages}
    assert {ClientHello, ServerHello, Certificate} <= kinds


@pytest.mark.peer
def test_another_servers_key_is_refused_by_name(sessions):
    session = sessions["rsa_gcm"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    connection = _only(session.pcap, server_key=other)
    assert connection.problem == "the server key given is not the key of the server's certificate"


@pytest.mark.peer
def test_a_wrong_master_secret_is_caught_at_the_first_finished(sessions):
    session = sessions["rsa_gcm"]
    [entry] = read_keylog(session.client_keylog).entries
    wrong = KeyLog([KeyLogEntry("CLIENT_RANDOM", entry.client_random, bytes(48))])
    connection = _only(session.pcap, keylog=wrong)
    assert connection.problem.startswith("the client's first protected record (Finished) does not open")
    assert not connection.application_data(SERVER_TO_CLIENT)


@pytest.mark.peer
def test_a_key_log_for_another_session_names_the_missing_client_random(sessions):
    connection = _only(sessions["rsa_gcm"].pcap, keylog=read_keylog(sessions["ecdhe"].client_keylog))
    random = connection.client_random.hex()
    assert connection.problem == f"no CLIENT_RANDOM line in the key log for client random {random}"


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.peer
def test_a_capture_cut_short_keeps_what_came_before_and_says_so(sessions):
    session = sessions["rsa_gcm"]
    data = session.pcap.read_bytes()
    connection = _only(data[: len(data) - 40], keylog=read_keylog(session.client_keylog))
    assert any(note.startswith("the capture ends inside a record") for note in connection.notes)
    assert [type(m).__name__ for m in connection.entries[0].messages] == ["ClientHello"]


@pytest.mark.parametrize("data", [b"", b"not a pcap at all, just text", bytes(24), b"\x0a\x0d\x0d\x0a" + bytes(40)])
def test_bytes_that_are_not_a_pcap_raise_a_decode_error(data):
    with pytest.raises(DecodeError):
        decode_tls_capture(data)


def test_garbage_after_the_client_hello_stops_that_direction_with_a_note():
    from handshake_lib.tls.capture import decode_tls_streams

    hello = bytes.fromhex("16030100") + bytes([4]) + bytes.fromhex("01000000")  # an empty ClientHello body
    connection = decode_tls_streams([(CLIENT_TO_SERVER, hello + b"\xff" * 20)])
    assert connection.notes and connection.notes[0].startswith(f"{CLIENT_TO_SERVER}: not a TLS record")
    assert not connection.decrypted


# -- curl against our server ---------------------------------------------------------------------------------
@pytest.mark.peer
def test_curl_against_our_server_decrypts_with_curls_key_log_ours_and_the_key(server_files, tmp_path):
    """curl's OpenSSL as the client, our TLSPageServer as the server, AES-256-GCM with the SHA-384 PRF."""
    require_capture()
    curl = require("curl")
    from handshake_lib.net.tls import TLSPageServer
    from handshake_lib.tls.constants import CipherSuite

    pcap, curl_keylog, our_keylog = tmp_path / "curl.pcap", tmp_path / "curl.keylog", tmp_path / "ours.keylog"
    suite = CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384
    issued = server_files.issued
    server = TLSPageServer([issued.der], issued.private_key, keylog_path=our_keylog, cipher_suites=[suite])
    with server, _tcpdump()(pcap, server.port):
        result = subprocess.run(
            [curl, "-sS", "--cacert", str(server_files.ca_path), "--tls-max", "1.2", "--ciphers",
             "AES256-GCM-SHA384", "--resolve", f"localhost:{server.port}:127.0.0.1",
             f"https://localhost:{server.port}/"],
            capture_output=True, timeout=30, env={**os.environ, "SSLKEYLOGFILE": str(curl_keylog)}, check=True,
        )  # fmt: skip
    page = result.stdout
    assert page
    for secrets in ({"keylog": read_keylog(curl_keylog)}, {"keylog": read_keylog(our_keylog)},
                    {"server_key": issued.private_key}):  # fmt: skip
        connection = _only(pcap, **secrets)
        assert connection.decrypted, connection.problem
        assert connection.suite == suite
        assert connection.application_data(SERVER_TO_CLIENT).endswith(page)
        assert connection.application_data(CLIENT_TO_SERVER).startswith(b"GET / HTTP/1.1\r\n")
    assert tshark_application_data(pcap, curl_keylog)[1] == connection.application_data(SERVER_TO_CLIENT)


def _streams(pcap: Path) -> list[tuple[str, bytes]]:
    from handshake_lib.tcp.pcap import read_pcap
    from handshake_lib.tcp.streams import group_connections

    [conversation], _ = group_connections(read_pcap(pcap), max_connections=2)
    return list(conversation.chunks(1 << 24))


@pytest.mark.peer
def test_a_suite_this_library_does_not_implement_is_explained_not_raised(sessions):
    """The ServerHello's suite changed to TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (0x009e): ephemeral, so the server's
    key cannot open it; then to a suite this library has no record protection for (Camellia)."""
    from handshake_lib.tls.capture import decode_tls_streams

    chunks = _streams(sessions["rsa_gcm"].pcap)
    index, server_first = next((i, data) for i, (d, data) in enumerate(chunks) if d == SERVER_TO_CLIENT)
    suite_at = 5 + 4 + 2 + 32 + 1 + server_first[5 + 4 + 2 + 32]  # record and message headers, version, random, id
    changed = server_first[:suite_at] + b"\x00\x9e" + server_first[suite_at + 2 :]
    chunks[index] = (SERVER_TO_CLIENT, changed)
    with_key = decode_tls_streams(chunks, server_key=sessions["rsa_gcm"].server_key)
    assert with_key.problem.startswith("the pre-master secret came from an ephemeral DHE exchange")
    with_log = decode_tls_streams(chunks, keylog=read_keylog(sessions["rsa_gcm"].client_keylog))
    # DHE-RSA-AES128-GCM-SHA256 derives the same keys from the same master secret: the log opens it all.
    assert with_log.problem == ""
    camellia = server_first[:suite_at] + b"\x00\x41" + server_first[suite_at + 2 :]  # RSA_WITH_CAMELLIA_128_CBC_SHA
    chunks[index] = (SERVER_TO_CLIENT, camellia)
    unknown = decode_tls_streams(chunks, keylog=read_keylog(sessions["rsa_gcm"].client_keylog))
    assert unknown.problem.endswith(" is not a suite this library decrypts")


@pytest.mark.peer
@pytest.mark.parametrize("name", ["rsa_gcm", "rsa_cbc", "ecdhe"])
def test_damaged_streams_give_a_connection_with_a_reason_never_an_exception(sessions, name):
    """Bytes changed and streams cut at random (a fixed seed): each run ends in a result, not a traceback.

    (This found two crashes while it was written: a certificate cryptography cannot read, and a ServerHello
    naming a suite we do not implement.)"""
    import random

    from handshake_lib.tls.capture import decode_tls_streams

    session = sessions[name]
    chunks = _streams(session.pcap)
    keylog = read_keylog(session.client_keylog)
    rng = random.Random(name)
    for _ in range(150):
        damaged = [(direction, bytearray(data)) for direction, data in chunks]
        for _ in range(rng.randint(1, 4)):
            data = rng.choice(damaged)[1]
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            index = rng.randrange(len(damaged))
            direction, data = damaged[index]
            damaged[index] = (direction, data[: rng.randrange(len(data) + 1)])
        streams = [(direction, bytes(data)) for direction, data in damaged]
        for secrets in ({"keylog": keylog}, {"server_key": session.server_key}):
            connection = decode_tls_streams(streams, **secrets)
            assert connection.decrypted or connection.problem


# -- headless Chromium against our server --------------------------------------------------------------------
@pytest.mark.peer
def test_chromium_against_our_server_decrypts_with_chromiums_key_log_and_the_key(server_files, tmp_path, monkeypatch):
    """Chromium's own offer (ECDHE first, TLS 1.3): our server answers with RSA key exchange, TLS 1.2."""
    require_capture()
    chromium = require("chromium")
    from test_tls_interop_external import chromium_dump_dom

    from handshake_lib.net.tls import TLSPageServer
    from handshake_lib.tls.constants import CipherSuite

    pcap, browser_keylog = tmp_path / "chromium.pcap", tmp_path / "chromium.keylog"
    issued = server_files.issued
    suite = CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    server = TLSPageServer([issued.der], issued.private_key, cipher_suites=[suite])
    monkeypatch.setenv("SSLKEYLOGFILE", str(browser_keylog))  # Chromium reads it as NSS did
    with server, _tcpdump()(pcap, server.port):
        completed = chromium_dump_dom(chromium, f"https://localhost:{server.port}/", server_files, tmp_path / "p")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert browser_keylog.exists() and read_keylog(browser_keylog).entries
    for secrets in ({"keylog": read_keylog(browser_keylog)}, {"server_key": issued.private_key}):
        connections = decode_tls_capture(pcap, **secrets)
        handshaken = [c for c in connections if c.suite is not None]
        assert handshaken and all(c.decrypted and c.suite == suite for c in handshaken), [c.problem for c in handshaken]
        pages = [c.application_data(SERVER_TO_CLIENT) for c in handshaken]
        assert any(b"HTTP/1.1 200 OK" in page and b"Hello from the Handshakes TLS server" in page for page in pages)


# -- the recorder on a failed handshake ----------------------------------------------------------------------
@pytest.mark.peer
def test_a_handshake_that_fails_is_recorded_up_to_the_alert(tmp_path, untrusted_ca_file):
    from handshake_lib.errors import CertificateError
    from handshake_lib.tls.messages import Alert

    recorded = tmp_path / "failed.pcap"
    with openssl_server("AES128-GCM-SHA256") as peer, pytest.raises(CertificateError):
        tls_get(peer.url, cafile=untrusted_ca_file, record_to=recorded)
    connection = _only(recorded, keylog=KeyLog())
    # OpenSSL's whole first flight arrived; our client answered it with a fatal alert in the clear.
    kinds = [type(m).__name__ for e in connection.entries for m in e.messages]
    assert kinds[:3] == ["ClientHello", "ServerHello", "Certificate"] and kinds[-1] == "Alert"
    alert = connection.entries[-1].messages[0]
    assert isinstance(alert, Alert) and alert.description_name == "unknown_ca"
    assert connection.entries[-1].direction == CLIENT_TO_SERVER


@pytest.mark.peer
def test_the_two_cbc_sessions_cover_both_mac_orders(sessions):
    from handshake_lib.tls.constants import ExtensionType

    def server_hello(name: str) -> ServerHello:
        connection = _only(sessions[name].pcap, keylog=read_keylog(sessions[name].client_keylog))
        return next(m for e in connection.entries for m in e.messages if isinstance(m, ServerHello))

    assert server_hello("rsa_cbc").extension(ExtensionType.encrypt_then_mac) is not None
    assert server_hello("rsa_cbc_mte").extension(ExtensionType.encrypt_then_mac) is None


@pytest.mark.peer
def test_tshark_with_the_servers_key_agrees_on_the_rsa_session(sessions, tmp_path):
    """Wireshark's own RSA key decryption (``uat:rsa_keys``) on the same capture: the same bytes both ways."""
    from cryptography.hazmat.primitives import serialization

    session = sessions["rsa_gcm"]
    key = tmp_path / "server.key"
    key.write_bytes(
        session.server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    client, server = tshark_application_data(session.pcap, option=f'uat:rsa_keys:"{key}",""')
    connection = _only(session.pcap, server_key=session.server_key)
    assert server.endswith(session.body)
    assert (client, server) == (
        connection.application_data(CLIENT_TO_SERVER),
        connection.application_data(SERVER_TO_CLIENT),
    )
