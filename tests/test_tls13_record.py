"""TLS 1.3 record protection (handshake_lib.tls.record13): OpenSSL's records, and our own under RFC 8448's keys.

Counting, replays, changed bytes and bad headers are tried on records we seal ourselves under the keys and
IVs RFC 8448 section 3 prints (the vectors hold no wire records, only values read from the RFC's text).
The byte-for-byte proof is a real peer: Python's ``ssl`` (OpenSSL 3) client and server
over memory BIOs with ``keylog_filename``; the logged handshake and application traffic secrets, through
our key schedule, open OpenSSL's records (EncryptedExtensions first), our Finished computation matches
OpenSSL's, and application data opens both ways.  For ChaCha20-Poly1305 and AES-128-GCM the ClientHello's
suite order is changed before OpenSSL's server reads it, so that its first flight is protected with them.
Last, ``openssl s_client`` through a recording proxy to ``s_server``, for each of the four suites (CCM
included): its KeyUpdate opens under CLIENT_TRAFFIC_SECRET_0, and what it sends after it under our
``next_application_secret`` of that secret, and not under the old one.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from handshake_lib.errors import BadRecordMac, DecodeError, EncodeError, RecordOverflow, UnexpectedMessage
from handshake_lib.peers.openssl import s_client, s_server
from handshake_lib.tls import key_schedule13 as ks
from handshake_lib.tls.record13 import (
    MAX_CIPHERTEXT_LENGTH,
    MAX_PLAINTEXT_LENGTH,
    SUITES13,
    RecordOpener13,
    RecordSealer13,
    decode_inner_plaintext,
    encode_inner_plaintext,
    record_header,
    record_nonce,
    suite13,
)
from tests.conftest import require
from tests.rfc8448 import section, split_handshake
from tests.tampering_proxy import TamperingProxy

S3 = section(3)
AES128 = suite13("TLS_AES_128_GCM_SHA256")


def rfc_direction(cls, keys: str, sequence_number: int = 0):
    direction = cls(AES128, S3[f"{keys}_key"], S3[f"{keys}_iv"])
    direction.sequence_number = sequence_number
    return direction


def sealed(keys: str, *plaintexts: tuple[bytes, int]) -> list[bytes]:
    """Records we seal in order (sequence 0, 1, ...) under section 3's ``keys``; OpenSSL's tests below show
    that our sealer's records are the ones OpenSSL sends."""
    sealer = rfc_direction(RecordSealer13, keys)
    return [sealer.seal(content, content_type) for content, content_type in plaintexts]


APPLICATION_DATA = bytes(range(50))


def test_an_opened_record_has_its_nonce_header_and_spans():
    handshake = b"\x08\x00\x00\x02\x00\x00" + b"\x14\x00\x00\x20" + bytes(32)  # EncryptedExtensions, Finished
    [record] = sealed("server_handshake", (handshake, 22))
    opened = rfc_direction(RecordOpener13, "server_handshake").open(record)
    assert (opened.content_type, opened.content, opened.padding_length) == (22, handshake, 0)
    assert [message[0] for message in split_handshake(opened.content)] == [8, 20]
    assert opened.nonce == record_nonce(S3["server_handshake_iv"], 0)
    assert opened.additional_data == record[:5] == record_header(len(record) - 5)
    spans = {span.field: span for span in opened.spans}
    assert spans["record.opaque_type"].meaning.startswith("application_data")
    assert spans["record.tag"].offset + spans["record.tag"].length == len(opened.record)
    assert spans["record.encrypted_record"].length == len(opened.content) + 1


def test_an_opener_counts_records_and_refuses_a_replay_or_a_skip():
    first, second, third = sealed(
        "server_application", (b"\x04\x00\x00\x00", 22), (APPLICATION_DATA, 23), (b"\x01\x00", 21)
    )
    opener = rfc_direction(RecordOpener13, "server_application")
    opener.open(first)
    with pytest.raises(BadRecordMac):  # the same record again: its nonce no longer matches
        opener.open(first)
    assert opener.sequence_number == 1  # a failed record does not count
    with pytest.raises(BadRecordMac):  # skipping the application data: the alert's nonce is seq 2, not 1
        opener.open(third)
    assert opener.open(second).content_type == 23


@pytest.mark.parametrize("where", [0, 3, 5, 40, -1])
def test_a_changed_byte_anywhere_is_bad_record_mac_or_a_header_error(where):
    [good] = sealed("client_application", (APPLICATION_DATA, 23))
    record = bytearray(good)
    record[where] ^= 0x01
    expected = {0: UnexpectedMessage, 3: DecodeError}.get(where, BadRecordMac)
    with pytest.raises(expected):
        rfc_direction(RecordOpener13, "client_application").open(bytes(record))


def test_headers_a_protected_record_cannot_have():
    opener = rfc_direction(RecordOpener13, "client_application")
    [good] = sealed("client_application", (APPLICATION_DATA, 23))
    with pytest.raises(UnexpectedMessage):  # a handshake record where a protected one belongs
        opener.open(b"\x16" + good[1:])
    with pytest.raises(DecodeError):  # version 0x0304 in the record layer
        opener.open(good[:1] + b"\x03\x04" + good[3:])
    with pytest.raises(DecodeError):  # shorter than its header
        opener.open(good[:4])
    with pytest.raises(DecodeError):  # a length that leaves no room for the tag and a type
        opener.open(record_header(16) + bytes(16))
    with pytest.raises(RecordOverflow):
        opener.open(record_header(MAX_CIPHERTEXT_LENGTH + 1) + bytes(MAX_CIPHERTEXT_LENGTH + 1))
    assert opener.open(good).content == APPLICATION_DATA  # none of that moved the sequence number


def test_inner_plaintext_padding_and_its_limits():
    inner = encode_inner_plaintext(b"hello", 23, padding_length=10)
    assert inner == b"hello\x17" + bytes(10)
    decoded = decode_inner_plaintext(inner)
    assert (decoded.content, decoded.content_type, decoded.padding_length) == (b"hello", 23, 10)
    assert decode_inner_plaintext(b"\x00\x16").content == b"\x00"  # zeros inside the content are content
    for only_padding in (b"", bytes(1), bytes(300)):
        with pytest.raises(UnexpectedMessage):
            decode_inner_plaintext(only_padding)
    with pytest.raises(RecordOverflow):
        decode_inner_plaintext(b"\x17" + bytes(MAX_PLAINTEXT_LENGTH + 1))
    assert decode_inner_plaintext(b"x" * MAX_PLAINTEXT_LENGTH + b"\x17").content_type == 23
    with pytest.raises(EncodeError):
        encode_inner_plaintext(b"x" * (MAX_PLAINTEXT_LENGTH + 1), 23)
    with pytest.raises(EncodeError):
        encode_inner_plaintext(b"x" * MAX_PLAINTEXT_LENGTH, 23, padding_length=1)
    with pytest.raises(EncodeError):
        encode_inner_plaintext(b"x", 0)
    with pytest.raises(EncodeError):
        encode_inner_plaintext(b"", 22)  # an empty handshake fragment
    assert decode_inner_plaintext(b"\x17" + bytes(3)).content == b""  # empty application data is fine
    for forbidden in (b"\x16\x00", b"\x01\x14", b"\x01\x63"):  # empty handshake, ChangeCipherSpec, type 99
        with pytest.raises(UnexpectedMessage):
            decode_inner_plaintext(forbidden)


def test_a_padding_only_record_is_unexpected_message_after_the_tag_checks():
    # A sender that seals nothing but padding: the tag is fine, the missing type is the peer's fault.
    sealer = RecordSealer13(AES128, bytes(16), bytes(12))
    inner = bytes(5)
    header = record_header(len(inner) + 16)
    record = header + sealer._aead.encrypt(record_nonce(bytes(12), 0), inner, header)
    with pytest.raises(UnexpectedMessage):
        RecordOpener13(AES128, bytes(16), bytes(12)).open(record)


@pytest.mark.parametrize("code", sorted(SUITES13))
def test_every_suite_seals_and_opens_with_padding_and_counts(code):
    suite = SUITES13[code]
    secret = bytes(range(ks.hash_length(suite.hash_name)))
    sealer, opener = RecordSealer13.from_secret(suite, secret), RecordOpener13.from_secret(code, secret)
    assert len(sealer.key) == suite.key_length and len(sealer.iv) == 12
    for sequence_number, (content, padding) in enumerate([(b"GET /", 0), (b"", 7), (b"x" * MAX_PLAINTEXT_LENGTH, 0)]):
        record = sealer.seal(content, 23, padding)
        assert len(record) == 5 + len(content) + 1 + padding + 16
        opened = opener.open(record)
        assert (opened.content, opened.padding_length, opened.sequence_number) == (content, padding, sequence_number)


def test_record_nonce_and_suites_refuse_what_they_cannot_take():
    iv = bytes.fromhex("5d313eb2671276ee13000b30")
    assert record_nonce(iv, 1) == bytes.fromhex("5d313eb2671276ee13000b31")
    assert record_nonce(iv, 0x0102) == bytes.fromhex("5d313eb2671276ee13000a32")
    with pytest.raises(ValueError):
        record_nonce(iv, 1 << 64)
    with pytest.raises(ValueError, match="not a TLS 1.3 cipher suite"):
        suite13(0x009C)
    with pytest.raises(ValueError, match="16-byte key"):
        RecordSealer13(AES128, bytes(32), bytes(12))
    sealer = RecordSealer13(AES128, bytes(16), bytes(12))
    sealer.sequence_number = (1 << 64) - 1
    sealer.seal(b"last", 23)
    with pytest.raises(ValueError, match="KeyUpdate"):
        sealer.seal(b"one too many", 23)


# -- a real peer: OpenSSL through Python's ssl over memory BIOs --------------------------------------------


def read_records(data: bytes) -> list[bytes]:
    records = []
    while data:
        length = 5 + int.from_bytes(data[3:5], "big")
        records.append(data[:length])
        data = data[length:]
    return records


def read_keylog(path: Path) -> dict[str, bytes]:
    secrets = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):  # Python heads the file with a comment
            continue
        label, _client_random, secret = line.split()
        secrets[label] = bytes.fromhex(secret)
    return secrets


def server_hello_suite(record: bytes) -> int:
    """The cipher suite of a ServerHello record: after version (2), random (32) and the session id."""
    body = record[5 + 4 :]
    session_id_length = body[34]
    return int.from_bytes(body[35 + session_id_length : 37 + session_id_length], "big")


@pytest.fixture
def contexts(server_files, tmp_path):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_files.cert_path, server_files.key_path)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.keylog_filename = str(tmp_path / "server.keys")
    server.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # the client's order decides (Python turns this on)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(server_files.ca_path)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.keylog_filename = str(tmp_path / "client.keys")
    return client, server, tmp_path


def pump(source: ssl.MemoryBIO, destination: ssl.MemoryBIO) -> bytes:
    data = source.read()
    destination.write(data)
    return data


def test_openssl_records_open_with_keys_from_its_key_log(contexts):
    client_context, server_context, folder = contexts
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    client_hello = pump(c_out, s_in)
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    server_flight = pump(s_out, c_in)
    client.do_handshake()
    client_flight = pump(c_out, s_in)
    server.do_handshake()
    client.write(b"GET / HTTP/1.1\r\n\r\n")
    request = pump(c_out, s_in)
    assert server.read() == b"GET / HTTP/1.1\r\n\r\n"
    server.write(b"HTTP/1.1 200 OK\r\n\r\n")
    response = pump(s_out, c_in)
    assert client.read() == b"HTTP/1.1 200 OK\r\n\r\n"

    keys = read_keylog(folder / "client.keys")
    assert keys == read_keylog(folder / "server.keys")  # both ends of one connection log the same secrets
    records = read_records(server_flight)
    assert records[0][0] == 22 and records[1][:6] == b"\x14\x03\x03\x00\x01\x01"  # ServerHello, then the dummy CCS
    suite = SUITES13[server_hello_suite(records[0])]
    assert suite.name == client.cipher()[0]

    # The server's handshake records: EncryptedExtensions first, then Certificate, CertificateVerify, Finished.
    opener = RecordOpener13.from_secret(suite, keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"])
    opened = [opener.open(record) for record in records[2:]]
    assert all(record.content_type == 22 for record in opened)
    assert opened[0].content[0] == 8  # EncryptedExtensions
    messages = split_handshake(b"".join(record.content for record in opened))
    assert [message[0] for message in messages] == [8, 11, 15, 20]

    # Our Finished over OpenSSL's transcript is OpenSSL's Finished.
    hello = split_handshake(b"".join(r[5:] for r in read_records(client_hello)) + records[0][5:])
    transcript = [*hello, *messages[:3]]
    verify_data = ks.finished_verify_data(
        suite.hash_name, keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"], ks.transcript_hash(suite.hash_name, transcript)
    )
    assert messages[3][4:] == verify_data

    # The client's Finished (after its own dummy ChangeCipherSpec), then application data both ways.
    client_records = read_records(client_flight)
    assert client_records[0][0] == 20
    [finished] = [RecordOpener13.from_secret(suite, keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"]).open(client_records[1])]
    client_verify = ks.finished_verify_data(
        suite.hash_name,
        keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"],
        ks.transcript_hash(suite.hash_name, [*hello, *messages]),
    )
    assert finished.content == b"\x14" + len(client_verify).to_bytes(3, "big") + client_verify
    [data] = [RecordOpener13.from_secret(suite, keys["CLIENT_TRAFFIC_SECRET_0"]).open(r) for r in read_records(request)]
    assert (data.content_type, data.content) == (23, b"GET / HTTP/1.1\r\n\r\n")
    server_app = RecordOpener13.from_secret(suite, keys["SERVER_TRAFFIC_SECRET_0"])
    after_handshake = [server_app.open(record) for record in read_records(response)]
    # OpenSSL sends its NewSessionTickets (inner type 22) before the response (23).
    assert [record.content_type for record in after_handshake][-1] == 23
    assert {record.content[0] for record in after_handshake if record.content_type == 22} == {4}
    assert after_handshake[-1].content == b"HTTP/1.1 200 OK\r\n\r\n"
    # What our sealer makes of the same response is what OpenSSL sent, byte for byte (OpenSSL does not pad).
    sealer = RecordSealer13.from_secret(suite, keys["SERVER_TRAFFIC_SECRET_0"])
    assert [sealer.seal(r.content, r.content_type) for r in after_handshake] == read_records(response)


def prefer_suite(client_hello_record: bytes, code: int) -> bytes:
    """The ClientHello record with ``code`` moved to the front of the TLS 1.3 suites (same length)."""
    body = client_hello_record[5 + 4 :]
    session_id_length = body[34]
    start = 5 + 4 + 35 + session_id_length
    count = int.from_bytes(client_hello_record[start : start + 2], "big") // 2
    suites = [client_hello_record[start + 2 + 2 * i : start + 4 + 2 * i] for i in range(count)]
    wanted = code.to_bytes(2, "big")
    assert wanted in suites, f"OpenSSL's client does not offer {code:#06x}"
    suites.remove(wanted)
    return client_hello_record[: start + 2] + wanted + b"".join(suites) + client_hello_record[start + 2 + 2 * count :]


@pytest.mark.parametrize("name", ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"])
def test_openssl_server_flight_opens_for_each_suite_it_offers(contexts, name):
    client_context, server_context, folder = contexts
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    suite = suite13(name)
    s_in.write(prefer_suite(c_out.read(), suite.code))  # OpenSSL's server takes the client's first choice
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    records = read_records(s_out.read())
    assert server_hello_suite(records[0]) == suite.code
    secret = read_keylog(folder / "server.keys")["SERVER_HANDSHAKE_TRAFFIC_SECRET"]
    assert len(secret) == ks.hash_length(suite.hash_name)
    opener = RecordOpener13.from_secret(suite, secret)
    first = opener.open(records[2])
    assert (first.content_type, first.content[0]) == (22, 8)  # EncryptedExtensions
    assert all(opener.open(record).content_type == 22 for record in records[3:])


# -- KeyUpdate and every suite (CCM too) on OpenSSL's own records: s_client -> proxy -> s_server ---------------


@pytest.mark.parametrize("name", sorted(suite.name for suite in SUITES13.values()))
def test_openssl_client_records_after_key_update_open_with_the_next_secret(server_files, tmp_path, name):
    require("openssl", "s_client's K command sends KeyUpdate on a real connection")
    keylog = tmp_path / "client.keys"
    options = ["-tls1_3", "-ciphersuites", name, "-CAfile", str(server_files.ca_path), "-keylogfile", str(keylog)]
    with (
        s_server(server_files, "-tls1_3", "-ciphersuites", name, "-www") as server,
        TamperingProxy(server.port, should_flip=lambda record, earlier: False) as proxy,  # it only records
        s_client(proxy.port, *options) as client,
    ):
        client.read_output(re.compile(rb"Verify return code"), wait=20)
        client.write(b"K\n")  # KeyUpdate with update_requested (RFC 8446 section 4.6.3)
        assert b"KEYUPDATE" in client.read_output(re.compile(rb"KEYUPDATE"), wait=20)
        client.write(b"after the update\n")
        assert client.process.stdin is not None
        client.process.stdin.close()  # s_client sends close_notify and exits
        client.process.wait(20)
    suite = suite13(name)
    keys = read_keylog(keylog)
    records = read_records(bytes(proxy.to_server))
    assert [record[0] for record in records[:3]] == [22, 20, 23]  # ClientHello, dummy CCS, then protected
    handshake = RecordOpener13.from_secret(suite, keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
    assert handshake.open(records[2]).content[0] == 20  # the client's Finished
    generation_0 = RecordOpener13.from_secret(suite, keys["CLIENT_TRAFFIC_SECRET_0"])
    key_update = generation_0.open(records[3])
    assert (key_update.content_type, key_update.content) == (22, b"\x18\x00\x00\x01\x01")  # update_requested
    next_secret = ks.next_application_secret(suite.hash_name, keys["CLIENT_TRAFFIC_SECRET_0"])
    generation_1 = RecordOpener13.from_secret(suite, next_secret)
    data, alert = (generation_1.open(record) for record in records[4:6])
    assert (data.content_type, data.content) == (23, b"after the update\n")
    assert (alert.content_type, alert.content) == (21, b"\x01\x00")  # close_notify, under the new keys
    with pytest.raises(BadRecordMac):  # and not under the old ones
        RecordOpener13.from_secret(suite, keys["CLIENT_TRAFFIC_SECRET_0"]).open(records[4])
