"""tls/capture.py on TLS 1.3: real OpenSSL 3.0 sessions recorded on loopback, decrypted with their key logs.

The sessions (made once per module by ``tests/tls13_sessions.py``, each through a relay that records both
directions as they cross, written as a pcap by ``tcp.streams.write_pcap``):

* ``full``: Python ``ssl`` client and server (OpenSSL 3.0), TLS 1.3, a GET and its page, the client's
  ``keylog_filename``;
* ``hrr``: the same with a server that wants only P-256 (``set_ecdh_curve``) while the client's one key
  share is x25519: a HelloRetryRequest and a second ClientHello;
* ``key_update``: ``openssl s_client`` to ``openssl s_server -www``, ``K`` typed to the client: KeyUpdate with
  update_requested, the server's own KeyUpdate, then the status page under the next secrets;
* ``early_data``: ``s_client -sess_in ... -early_data`` to ``s_server -early_data``: a request sent as 0-RTT
  data under CLIENT_EARLY_TRAFFIC_SECRET, then EndOfEarlyData.

What must hold: every handshake message is listed (the encrypted ones decrypted and decoded with TLS 1.3's
table) with the application data in plaintext; tshark (Wireshark 4.0), given the same pcap and key log,
lists the same handshake types in the same order; what cannot be opened (no key log, no line for this client
random, a wrong or missing secret) is said in ``problem``, never shown as garbage; the CLI prints it all.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import require
from tls13_sessions import (
    EARLY_DATA,
    REQUEST,
    RESPONSE,
    Session,
    openssl_early_data_session,
    openssl_key_update_session,
    python_ssl_session,
)

from handshake_lib.cli import run
from handshake_lib.cli.trace import render_entry
from handshake_lib.tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT
from handshake_lib.tls import capture
from handshake_lib.tls.capture import KEYLOG13, TranscriptEntry13, UndecryptedRecord, decode_tls_capture
from handshake_lib.tls.connection import ApplicationData
from handshake_lib.tls.constants import ContentType, KeyUpdateRequest, NamedGroup
from handshake_lib.tls.keylog import TLS13_LABELS, KeyLog, KeyLogEntry, parse_keylog, read_keylog, secret_line
from handshake_lib.tls.messages import CertificateVerify, ChangeCipherSpec, ClientHello, Finished, ServerHello
from handshake_lib.tls.messages13 import (
    Certificate13,
    EncryptedExtensions,
    EndOfEarlyData,
    KeyUpdate,
    NewSessionTicket13,
)

TIMEOUT = 60
HANDSHAKE_SECRETS = ["SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET"]
APPLICATION_SECRETS = ["CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"]


@pytest.fixture(scope="module")
def sessions(server_files, tmp_path_factory) -> dict[str, Session]:
    require("openssl", "s_client and s_server make the KeyUpdate and 0-RTT sessions")
    directory = tmp_path_factory.mktemp("tls13-captures")
    files = (server_files.cert_path, server_files.key_path, server_files.ca_path)
    return {
        "full": python_ssl_session(directory, "full", *files),
        "hrr": python_ssl_session(directory, "hrr", *files, server_curve="prime256v1"),
        "key_update": openssl_key_update_session(directory, server_files),
        "early_data": openssl_early_data_session(directory, server_files),
    }


SESSION_KEYLOG = KeyLog()  # decoded()'s default: the session's own key log


def decoded(session: Session, keylog: KeyLog | None = SESSION_KEYLOG, **options) -> capture.TLSCaptureConnection:
    if keylog is SESSION_KEYLOG:
        keylog = read_keylog(session.keylog)
    [connection] = decode_tls_capture(session.pcap, keylog=keylog, **options)
    return connection


def messages(connection, direction: str | None = None) -> list:
    return [
        message
        for entry in connection.entries
        if direction in (None, entry.direction)
        for message in entry.messages
        if not isinstance(message, ApplicationData | ChangeCipherSpec)
    ]


def handshake_types(connection) -> list[int]:
    return [message.handshake_type for message in messages(connection) if hasattr(message, "handshake_type")]


# -- a full handshake ------------------------------------------------------------------------------------
@pytest.mark.peer
def test_every_tls13_message_is_decrypted_and_the_page_is_in_plaintext(sessions):
    session = sessions["full"]
    assert session.received == RESPONSE  # OpenSSL's client read it: the session really worked
    connection = decoded(session)
    assert connection.tls13 and connection.decrypted, connection.problem
    assert connection.key_source == KEYLOG13 and not connection.hello_retry_request
    # The handshake secrets first (the server's flight, then the client's Finished); the application ones in
    # whichever order the request and the tickets crossed.
    assert connection.secrets_used[:2] == HANDSHAKE_SECRETS
    assert sorted(connection.secrets_used[2:]) == APPLICATION_SECRETS
    server = [type(m) for m in messages(connection, SERVER_TO_CLIENT)]
    assert server[:5] == [ServerHello, EncryptedExtensions, Certificate13, CertificateVerify, Finished]
    assert server[5:7] == [NewSessionTicket13, NewSessionTicket13]
    assert [type(m) for m in messages(connection, CLIENT_TO_SERVER)][:2] == [ClientHello, Finished]
    assert connection.application_data(CLIENT_TO_SERVER) == REQUEST
    assert connection.application_data(SERVER_TO_CLIENT) == RESPONSE
    # Protected records carry their real type and were opened; the middlebox ChangeCipherSpecs stay plaintext.
    kinds = [(entry.content_type, entry.encrypted) for entry in connection.entries]
    assert (ContentType.change_cipher_spec, False) in kinds and (ContentType.alert, True) in kinds
    assert all(entry.record[0] == ContentType.application_data for entry in connection.entries if entry.encrypted)
    assert not any(isinstance(entry, UndecryptedRecord) for entry in connection.entries)


@pytest.mark.peer
def test_the_trace_explains_decrypted_tls13_messages_with_their_spans(sessions):
    connection = decoded(sessions["full"])
    entry = next(e for e in connection.entries if any(isinstance(m, EncryptedExtensions) for m in e.messages))
    assert isinstance(entry, TranscriptEntry13) and entry.encrypted
    assert entry.plaintext_spans()[0].field == "encrypted_extensions"
    text = render_entry(4, entry)
    assert "handshake" in text.splitlines()[0] and "[encrypted]" in text
    assert "EncryptedExtensions:" in text and "msg_type = encrypted_extensions" in text
    certificate = next(e for e in connection.entries if any(isinstance(m, Certificate13) for m in e.messages))
    assert "Certificate: CN=localhost" in render_entry(5, certificate)
    hello = next(e for e in connection.entries if any(isinstance(m, ServerHello) for m in e.messages))
    assert "ServerHello (TLS 1.3): cipher_suite TLS_AES_" in render_entry(2, hello)
    assert "selected_version = TLS1_3" in render_entry(2, hello)


# -- HelloRetryRequest, KeyUpdate, 0-RTT ----------------------------------------------------------------
@pytest.mark.peer
def test_a_hello_retry_request_and_the_second_client_hello_are_listed(sessions):
    session = sessions["hrr"]
    assert session.received == RESPONSE
    connection = decoded(session)
    assert connection.decrypted and connection.hello_retry_request, connection.problem
    hellos = [m for m in messages(connection) if isinstance(m, ClientHello | ServerHello)]
    assert [type(m) for m in hellos] == [ClientHello, ServerHello, ClientHello, ServerHello]
    retry, final = hellos[1], hellos[3]
    assert retry.is_hello_retry_request and not final.is_hello_retry_request
    assert final.extension(0x33).server_share.group == NamedGroup.secp256r1  # the group the server asked for
    assert hellos[0].random == hellos[2].random == connection.client_random  # one client random, one key log line
    assert connection.server_random == final.random
    assert connection.application_data(SERVER_TO_CLIENT) == RESPONSE


@pytest.mark.peer
def test_key_update_moves_each_direction_to_its_next_secret(sessions):
    connection = decoded(sessions["key_update"])
    assert connection.decrypted, connection.problem
    updates = {entry.direction: m for entry in connection.entries for m in entry.messages if isinstance(m, KeyUpdate)}
    assert updates[CLIENT_TO_SERVER].request_update == KeyUpdateRequest.update_requested
    assert updates[SERVER_TO_CLIENT].request_update == KeyUpdateRequest.update_not_requested
    assert {"CLIENT_TRAFFIC_SECRET_1", "SERVER_TRAFFIC_SECRET_1"} <= set(connection.secrets_used)
    # The request and the page travelled after the updates: opened only with next_application_secret's keys.
    assert connection.application_data(CLIENT_TO_SERVER).startswith(b"GET / HTTP/1.0")
    page = connection.application_data(SERVER_TO_CLIENT)
    assert page.startswith(b"HTTP/1.0 200 ok") and b"</HTML>" in page.upper()


@pytest.mark.peer
def test_early_data_opens_with_the_early_secret_until_end_of_early_data(sessions):
    session = sessions["early_data"]
    assert b"Early data was accepted" in session.received
    connection = decoded(session)
    assert connection.decrypted, connection.problem
    assert connection.secrets_used[0] == "CLIENT_EARLY_TRAFFIC_SECRET"
    client = [type(m) for m in messages(connection, CLIENT_TO_SERVER)]
    assert client[:3] == [ClientHello, EndOfEarlyData, Finished]
    early = next(e for e in connection.entries if e.encrypted and e.direction == CLIENT_TO_SERVER)
    assert early.messages == [ApplicationData(EARLY_DATA)]  # sent before the server's first byte
    # Without the early secret, the 0-RTT record stays encrypted and the problem names the line; the rest opens.
    keylog = read_keylog(session.keylog)
    without = KeyLog([entry for entry in keylog.entries if entry.label != "CLIENT_EARLY_TRAFFIC_SECRET"])
    connection = decoded(session, without)
    assert "no CLIENT_EARLY_TRAFFIC_SECRET line" in connection.problem
    assert sum(isinstance(entry, UndecryptedRecord) for entry in connection.entries) == 2  # data, EndOfEarlyData
    assert Finished in [type(m) for m in messages(connection, CLIENT_TO_SERVER)]


# -- the second opinion: Wireshark -----------------------------------------------------------------------
@pytest.mark.peer
@pytest.mark.parametrize("name", ["full", "hrr", "key_update", "early_data"])
def test_tshark_lists_the_same_handshake_types_in_the_same_order(sessions, name):
    tshark = require("tshark", "Wireshark's TLS 1.3 dissector with the same key log is the second opinion")
    session = sessions[name]
    fields = subprocess.run(
        [tshark, "-r", str(session.pcap), "-d", f"tcp.port=={session.port},tls",
         "-o", f"tls.keylog_file:{session.keylog}", "-Y", "tls", "-T", "fields", "-e", "tls.handshake.type"],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    theirs = [int(value) for line in fields.stdout.split() for value in line.split(",")]
    ours = handshake_types(decoded(session))
    assert ours == theirs
    assert {8, 11, 15, 20} <= set(ours) or name == "early_data"  # a resumed handshake has no certificate
    assert ours.count(20) == 2


# -- what cannot be decrypted ----------------------------------------------------------------------------
@pytest.mark.peer
def test_without_a_key_log_or_its_line_the_problem_says_so(sessions, server_files):
    session = sessions["full"]
    connection = decoded(session, None)
    assert connection.problem.startswith("TLS 1.3 is decrypted only with its traffic secrets, from a key log")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(server_files.key_path.read_bytes(), None)
    with_key = decoded(session, None, server_key=key)
    assert "every TLS 1.3 key exchange is ephemeral" in with_key.problem
    other = decoded(session, read_keylog(sessions["hrr"].keylog))  # another connection's lines
    assert other.problem.startswith("no TLS 1.3 secret lines") and connection.client_random.hex() in other.problem
    for undecrypted in (connection, with_key, other):
        protected = [entry for entry in undecrypted.entries if entry.record[0] == ContentType.application_data]
        assert protected and all(isinstance(entry, UndecryptedRecord) for entry in protected)
        assert all(entry.messages == [] for entry in protected)


@pytest.mark.peer
def test_a_wrong_secret_is_caught_at_the_first_record_not_shown_as_garbage(sessions):
    keylog = read_keylog(sessions["full"].keylog)
    entries = [
        KeyLogEntry(e.label, e.client_random, bytes([e.secret[0] ^ 1]) + e.secret[1:])
        if e.label == "SERVER_HANDSHAKE_TRAFFIC_SECRET"
        else e
        for e in keylog.entries
    ]
    connection = decoded(sessions["full"], KeyLog(entries))
    assert connection.problem.startswith(
        "the server's first record under SERVER_HANDSHAKE_TRAFFIC_SECRET does not open: the key log's secret is wrong"
    )
    server = [e for e in connection.entries if e.direction == SERVER_TO_CLIENT and e.record[0] == 23]
    assert all(isinstance(entry, UndecryptedRecord) for entry in server)
    # The client's direction has its own secrets, which are right: its Finished and request still open.
    assert connection.application_data(CLIENT_TO_SERVER) == REQUEST
    # A missing application secret: the handshake opens, the data does not, and the problem names the line.
    partial = KeyLog([e for e in keylog.entries if e.label != "SERVER_TRAFFIC_SECRET_0"])
    connection = decoded(sessions["full"], partial)
    assert "no SERVER_TRAFFIC_SECRET_0 line" in connection.problem
    assert Finished in [type(m) for m in messages(connection, SERVER_TO_CLIENT)]
    assert connection.application_data(SERVER_TO_CLIENT) == b""


@pytest.mark.peer
def test_the_record_limit_holds_for_tls13(sessions, monkeypatch):
    monkeypatch.setattr(capture, "MAX_RECORDS", 5)
    connection = decoded(sessions["full"])
    assert len(connection.entries) == 5 and "more than 5 records: the rest is not read" in connection.notes
    assert connection.decrypted  # the five read were opened


# -- key logs --------------------------------------------------------------------------------------------
@pytest.mark.peer
def test_openssl_key_logs_hold_every_tls13_label_and_find_finds_them(sessions):
    connection = decoded(sessions["early_data"])
    keylog = read_keylog(sessions["early_data"].keylog)
    assert not keylog.skipped
    assert set(TLS13_LABELS) <= keylog.labels()  # OpenSSL's client logs all seven for a 0-RTT handshake
    for label in TLS13_LABELS:
        secret = keylog.find(label, connection.client_random)
        assert secret is not None and len(secret) == 48  # TLS_AES_256_GCM_SHA384: SHA-384 secrets
        assert parse_keylog(secret_line(label, connection.client_random, secret)).entries == [
            KeyLogEntry(label, connection.client_random, secret)
        ]


def test_secret_line_refuses_what_no_key_log_holds():
    client_random = bytes(range(32))
    assert secret_line("CLIENT_TRAFFIC_SECRET_0", client_random, bytes(32)).split() == [
        "CLIENT_TRAFFIC_SECRET_0", client_random.hex(), "00" * 32
    ]  # fmt: skip
    assert secret_line("CLIENT_RANDOM", client_random, bytes(48)).startswith("CLIENT_RANDOM ")
    with pytest.raises(ValueError, match="not a TLS 1.3 key log label"):
        secret_line("SERVER_TRAFFIC_SECRET_1", client_random, bytes(32))  # later generations are never logged
    with pytest.raises(ValueError, match="32 or 48 bytes"):
        secret_line("EXPORTER_SECRET", client_random, bytes(20))
    with pytest.raises(ValueError, match="32 bytes"):
        secret_line("EXPORTER_SECRET", client_random[:8], bytes(32))
    log = parse_keylog(f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {client_random.hex()} {'ab' * 20}\n")
    assert not log.entries and "32- or 48-byte secret" in log.skipped[0][1]


# -- the command line ------------------------------------------------------------------------------------
@pytest.mark.peer
def test_the_cli_prints_the_decrypted_tls13_handshake(sessions, capsys):
    session = sessions["hrr"]
    assert run(["tls", "decode", str(session.pcap), "--keylog", str(session.keylog)]) == 0
    out = capsys.readouterr().out
    assert "1 TLS connection(s), 1 decrypted" in out
    assert "decrypted: TLS 1.3, after a HelloRetryRequest, with SERVER_HANDSHAKE_TRAFFIC_SECRET" in out
    assert "HelloRetryRequest (TLS 1.3): cipher_suite TLS_AES_256_GCM_SHA384, send a key share for secp256r1" in out
    summaries = [
        "EncryptedExtensions:", "Certificate: CN=localhost", "CertificateVerify", "Finished: verify_data",
        "NewSessionTicket: lifetime", "Alert: close_notify", "--- decrypted with this session's keys",
    ]  # fmt: skip
    assert [summary for summary in summaries if summary not in out] == []
    assert RESPONSE.decode() in out and "GET /tls13 HTTP/1.1" in out


@pytest.mark.peer
def test_the_cli_says_what_it_could_not_decrypt_in_one_line(sessions, capsys, tmp_path):
    session = sessions["full"]
    assert run(["tls", "decode", str(session.pcap), "--keylog", str(sessions["hrr"].keylog)]) == 1
    captured = capsys.readouterr()
    assert "NOT decrypted: no TLS 1.3 secret lines" in captured.out
    assert captured.err.splitlines()[-1].startswith("handshakes: connection 1 not decrypted: no TLS 1.3 secret")
    garbage = tmp_path / "garbage.keys"
    garbage.write_bytes(b"CLIENT_HANDSHAKE_TRAFFIC_SECRET zz zz\n\x00\xff\n")
    assert run(["tls", "decode", str(session.pcap), "--keylog", str(garbage)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "holds no key log line we can read" in err.splitlines()[-1]
