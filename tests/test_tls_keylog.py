"""Key logs, and the real proof of the TLS 1.2 key schedule: OpenSSL's own secrets.

A Python ``ssl`` client and server (both OpenSSL, whose code nobody here wrote) run a real TLS 1.2
handshake in memory (``SSLObject`` + ``MemoryBIO``, no sockets).  We record every byte, and with the
server's private key we redo the server's work with our own code:

    ClientKeyExchange --rsa_kx--> pre-master secret      == OpenSSL's "RSA" key log line
    PRF (extended) master secret                         == OpenSSL's "CLIENT_RANDOM" key log line
    key block --record.py--> decrypt both Finished records, and the application data, in both directions
    verify_data (PRF over the transcript hash)           == the decrypted Finished messages
    re-protecting a CBC record with OpenSSL's IV         == OpenSSL's record, byte for byte

for the four RSA suites the course uses, with OpenSSL's defaults (extended master secret, and
encrypt-then-MAC for CBC) and with both switched off (the classic RFC 5246 constructions).
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from handshake_lib.tls.constants import ContentType, ExtensionType, HandshakeType, ProtocolVersion
from handshake_lib.tls.keylog import KeyLogEntry, append_line, client_random_line, parse_keylog, read_keylog
from handshake_lib.tls.prf import (
    extended_master_secret,
    key_block,
    master_secret,
    transcript_hash,
    verify_data,
)
from handshake_lib.tls.record import (
    HandshakeReassembler,
    ReassembledMessage,
    Record,
    RecordLayer,
    RecordProtection,
    RecordReader,
)
from handshake_lib.tls.rsa_kx import decrypt_pre_master_secret
from handshake_lib.tls.suites import parse_suite_name, suite_params
from handshake_lib.wire import Reader

# OpenSSL option bits Python's ssl module does not name (openssl/ssl.h, OpenSSL 3.0).
SSL_OP_NO_EXTENDED_MASTER_SECRET = 1 << 0
SSL_OP_NO_ENCRYPT_THEN_MAC = 1 << 19


# -- unit tests of the key log format ---------------------------------------------------------------


def test_client_random_line_round_trips() -> None:
    client_random = bytes(range(32))
    master = bytes(range(100, 148))
    line = client_random_line(client_random, master)
    assert line == "CLIENT_RANDOM " + client_random.hex() + " " + master.hex()
    log = parse_keylog(line + "\n")
    assert log.master_secret(client_random) == master
    assert log.master_secret(bytes(32)) is None


def test_client_random_line_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError):
        client_random_line(bytes(31), bytes(48))
    with pytest.raises(ValueError):
        client_random_line(bytes(32), bytes(32))


def test_parse_keeps_tls13_labels_and_skips_bad_lines() -> None:
    client_random = bytes.fromhex("11" * 32)
    text = "\n".join(
        [
            "# TLS secrets log file",
            "",
            f"SERVER_HANDSHAKE_TRAFFIC_SECRET {client_random.hex()} {'22' * 32}",
            f"CLIENT_RANDOM {client_random.hex()} {'33' * 48}",
            "CLIENT_RANDOM nothex " + "33" * 48,
            f"CLIENT_RANDOM {client_random.hex()}",
            f"CLIENT_RANDOM {'44' * 31} {'33' * 48}",
            f"CLIENT_RANDOM {client_random.hex()} {'33' * 47}",
            f"RSA {'55' * 8} 0303{'66' * 46}",
            f"CLIENT_RANDOM {client_random.hex()} {'77' * 48}",
        ]
    )
    log = parse_keylog(text)
    assert [entry.label for entry in log.entries] == [
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_RANDOM",
        "RSA",
        "CLIENT_RANDOM",
    ]
    assert log.find("SERVER_HANDSHAKE_TRAFFIC_SECRET", client_random) == bytes.fromhex("22" * 32)
    assert log.master_secret(client_random) == bytes.fromhex("77" * 48)  # the last line wins
    assert [number for number, _ in log.skipped] == [5, 6, 7, 8]
    assert parse_keylog(log.text()).entries == log.entries


def test_a_key_log_we_create_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    append_line(path, client_random_line(bytes(32), bytes(48)))
    assert path.stat().st_mode & 0o777 == 0o600
    shared = tmp_path / "shared.log"
    shared.write_text("")
    shared.chmod(0o644)  # the owner chose this mode: appending keeps it
    append_line(shared, client_random_line(bytes(32), bytes(48)))
    assert shared.stat().st_mode & 0o777 == 0o644 and shared.read_text().count("CLIENT_RANDOM") == 1


def test_append_line_writes_a_file_openssl_style_readers_accept(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    entry = KeyLogEntry("CLIENT_RANDOM", bytes(range(32)), bytes(48))
    append_line(path, entry.line())
    append_line(path, client_random_line(bytes(32), bytes(range(48))))
    log = read_keylog(path)
    assert log.entries[0] == entry
    assert log.master_secret(bytes(32)) == bytes(range(48))


# -- a real OpenSSL handshake, captured --------------------------------------------------------------


@pytest.fixture(scope="module")
def server_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[rsa.RSAPrivateKey, Path, Path]:
    """A throwaway RSA key and self-signed certificate for localhost, made fresh for this test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls_identity")
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key, cert_path, key_path


@dataclass
class Capture:
    client_to_server: bytes
    server_to_client: bytes
    keylog_text: str
    negotiated: str
    request: bytes
    response: bytes


def run_openssl_pair(openssl_suite: str, options: int, identity: tuple, keylog_path: Path) -> Capture:
    """Handshake an ssl client with an ssl server through memory BIOs, then exchange one message each way."""
    _, cert_path, key_path = identity
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    server_context.load_cert_chain(cert_path, key_path)
    server_context.set_ciphers(openssl_suite)
    server_context.options |= options
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    client_context.load_verify_locations(cert_path)
    client_context.set_ciphers(openssl_suite)
    client_context.options |= options
    client_context.keylog_filename = str(keylog_path)

    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname="localhost")
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    streams = {"c2s": b"", "s2c": b""}

    def pump() -> bool:
        to_server = client_out.read()
        to_client = server_out.read()
        streams["c2s"] += to_server
        streams["s2c"] += to_client
        server_in.write(to_server)
        client_in.write(to_client)
        return bool(to_server or to_client)

    # A bounded number of flights: a full TLS 1.2 handshake needs 4, so 10 rounds without progress is a bug.
    for _ in range(10):
        for endpoint in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                endpoint.do_handshake()
        if not pump():
            break
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" * 3
    client.write(request)
    pump()
    assert server.read(len(request)) == request
    server.write(response)
    pump()
    assert client.read(len(response)) == response
    cipher = client.cipher()
    assert cipher is not None
    return Capture(streams["c2s"], streams["s2c"], keylog_path.read_text(), cipher[0], request, response)


@dataclass
class Flight:
    """One direction of the connection, split at ChangeCipherSpec."""

    handshake: list[ReassembledMessage]  # plaintext handshake messages before ChangeCipherSpec
    protected: list[Record]  # records after ChangeCipherSpec


def split_direction(stream: bytes) -> Flight:
    reader = RecordReader(protected=True)
    records = reader.feed(stream)
    assert reader.buffered == 0, "the capture ends in the middle of a record"
    reassembler = HandshakeReassembler()
    handshake: list[ReassembledMessage] = []
    for index, record in enumerate(records):
        if record.content_type == ContentType.change_cipher_spec:
            assert record.fragment == b"\x01"
            assert reassembler.buffered == 0
            return Flight(handshake, records[index + 1 :])
        assert record.content_type == ContentType.handshake
        handshake.extend(reassembler.feed(record.fragment))
    raise AssertionError("no ChangeCipherSpec in this direction")


def parse_hello(body: bytes, is_server: bool) -> tuple[int, bytes, int | None, set[int]]:
    """(version, random, cipher suite for ServerHello, extension types): just what the key schedule needs."""
    reader = Reader(body)
    version = reader.u16("version")
    random = reader.raw(32, "random")
    reader.vector(1, "session_id")
    if is_server:
        suite: int | None = reader.u16("cipher_suite")
        reader.u8("compression_method")
    else:
        suite = None
        reader.vector(2, "cipher_suites")
        reader.vector(1, "compression_methods")
    extensions: set[int] = set()
    if not reader.at_end:
        with reader.vector_reader(2, "extensions") as block:
            while not block.at_end:
                extensions.add(block.u16("extension_type"))
                block.vector(2, "extension_data")
    reader.expect_end()
    return version, random, suite, extensions


SUITES_UNDER_TEST = [
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
]
OPENSSL_NAME = {
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
}


@pytest.mark.parametrize("classic", [False, True], ids=["openssl-defaults", "no-ems-no-etm"])
@pytest.mark.parametrize("iana_name", SUITES_UNDER_TEST)
def test_our_key_schedule_reproduces_openssl(
    iana_name: str, classic: bool, server_identity: tuple, tmp_path: Path
) -> None:
    server_key = server_identity[0]
    suite = parse_suite_name(iana_name)
    assert parse_suite_name(OPENSSL_NAME[iana_name]) == suite
    params = suite_params(suite)
    options = SSL_OP_NO_EXTENDED_MASTER_SECRET | SSL_OP_NO_ENCRYPT_THEN_MAC if classic else 0
    capture = run_openssl_pair(OPENSSL_NAME[iana_name], options, server_identity, tmp_path / "keys.log")
    assert capture.negotiated == OPENSSL_NAME[iana_name]

    client, server = split_direction(capture.client_to_server), split_direction(capture.server_to_client)
    client_types = [message.msg_type for message in client.handshake]
    server_types = [message.msg_type for message in server.handshake]
    assert client_types == [HandshakeType.client_hello, HandshakeType.client_key_exchange]
    assert server_types[:3] == [HandshakeType.server_hello, HandshakeType.certificate, HandshakeType.server_hello_done]
    client_hello, client_key_exchange = client.handshake
    client_version, client_random, _, _ = parse_hello(client_hello.body, is_server=False)
    server_version, server_random, chosen_suite, server_extensions = parse_hello(server.handshake[0].body, True)
    assert server_version == ProtocolVersion.TLS1_2
    assert chosen_suite == suite
    uses_ems = ExtensionType.extended_master_secret in server_extensions
    uses_etm = ExtensionType.encrypt_then_mac in server_extensions
    # What OpenSSL negotiates by default, and that the options really switch it off.
    assert uses_ems is not classic
    assert uses_etm is (not classic and not params.is_aead)

    # 1. The server's job, with the server's key: ClientKeyExchange -> pre-master secret.
    encrypted_pre_master = Reader(client_key_exchange.body).vector(2, "encrypted_pre_master_secret")
    pre_master = decrypt_pre_master_secret(encrypted_pre_master, server_key, client_version)
    keylog = parse_keylog(capture.keylog_text)
    assert keylog.find("RSA", encrypted_pre_master[:8]) == pre_master  # OpenSSL logs the pre-master too

    # 2. Master secret: ours against OpenSSL's CLIENT_RANDOM line.
    transcript_to_key_exchange = b"".join(
        message.raw for message in (client_hello, *server.handshake[:3], client_key_exchange)
    )
    if uses_ems:
        session_hash = transcript_hash(params.prf_hash, transcript_to_key_exchange)
        master = extended_master_secret(pre_master, session_hash, params.prf_hash)
    else:
        master = master_secret(pre_master, client_random, server_random, params.prf_hash)
    assert keylog.master_secret(client_random) == master

    # 3. Key block -> decrypt the client's Finished and data; check verify_data.
    keys = key_block(master, server_random, client_random, params)
    client_reads = RecordProtection.client_write(keys, params, encrypt_then_mac=uses_etm)
    client_finished = client_reads.unprotect(client.protected[0])
    expected_client_verify = verify_data(master, "client finished", transcript_to_key_exchange, params.prf_hash)
    assert client_finished == bytes([HandshakeType.finished, 0, 0, 12]) + expected_client_verify
    assert client.protected[1].content_type == ContentType.application_data
    assert client_reads.unprotect(client.protected[1]) == capture.request

    # 4. The server's Finished covers the client's Finished and the NewSessionTicket that preceded it.
    server_reads = RecordProtection.server_write(keys, params, encrypt_then_mac=uses_etm)
    server_finished = server_reads.unprotect(server.protected[0])
    transcript_to_client_finished = transcript_to_key_exchange + client_finished
    transcript_to_client_finished += b"".join(message.raw for message in server.handshake[3:])  # NewSessionTicket
    expected_server_verify = verify_data(master, "server finished", transcript_to_client_finished, params.prf_hash)
    assert server_finished == bytes([HandshakeType.finished, 0, 0, 12]) + expected_server_verify
    response = b"".join(server_reads.unprotect(record) for record in server.protected[1:])
    assert response == capture.response

    # 4b. The same, through a client's RecordLayer fed OpenSSL's stream in awkward 7-byte pieces.
    layer = RecordLayer()
    layer.pending_read = RecordProtection.server_write(keys, params, encrypt_then_mac=uses_etm)
    received = []
    for start in range(0, len(capture.server_to_client), 7):
        layer.extend(capture.server_to_client[start : start + 7])
        while (record := layer.next_record()) is not None:  # as TLSConnection reads: record by record
            received.append(layer.unprotect(record))
            if record.content_type == ContentType.change_cipher_spec:
                layer.activate_pending_read()
    handshake_stream = b"".join(r.data for r in received if r.content_type == ContentType.handshake)
    assert handshake_stream == b"".join(m.raw for m in server.handshake) + server_finished
    assert b"".join(r.data for r in received if r.content_type == ContentType.application_data) == capture.response

    # 5. Our protect() makes OpenSSL's exact bytes, given OpenSSL's per-record randomness.
    original = client.protected[1]
    if params.is_aead:
        # OpenSSL's explicit nonces count up from a random start: record 0 (Finished) carried `start`.
        start = int.from_bytes(client.protected[0].fragment[: params.record_iv_length], "big")
        writer = RecordProtection.client_write(
            keys, params, sequence_number=1, explicit_nonce=lambda seq: (start + seq).to_bytes(8, "big")
        )
    else:
        iv = original.fragment[: params.record_iv_length]
        writer = RecordProtection.client_write(
            keys, params, sequence_number=1, encrypt_then_mac=uses_etm, random_bytes=lambda n: iv[:n]
        )
    assert writer.protect(original.content_type, original.version, capture.request) == original.encode()
