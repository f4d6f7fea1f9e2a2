"""The record layer: protection for every suite and mode, tampering, sequence numbers, framing.

That our records are byte-for-byte OpenSSL's (CBC with and without encrypt-then-MAC, and GCM) is
checked against live OpenSSL handshakes in test_tls_keylog.py (RSA key exchange) and
test_tls_suites_records.py (every ECDHE and DHE suite, ChaCha20-Poly1305 included).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import (
    BadRecordMac,
    DecodeError,
    ProtocolError,
    ProtocolVersionError,
    RecordOverflow,
    UnexpectedMessage,
)
from handshake_lib.tls.constants import CipherSuite, ContentType, HandshakeType, ProtocolVersion
from handshake_lib.tls.prf import key_block
from handshake_lib.tls.record import (
    MAX_CIPHERTEXT_LENGTH,
    MAX_PLAINTEXT_LENGTH,
    HandshakeReassembler,
    Record,
    RecordLayer,
    RecordProtection,
    RecordReader,
    encode_record,
    reassemble_handshake_messages,
)
from handshake_lib.tls.suites import suite_params

TLS12 = ProtocolVersion.TLS1_2
APP = ContentType.application_data
SUITES = [
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
    # The record layouts the ephemeral suites add: ChaCha20-Poly1305 (no nonce sent) and HMAC-SHA384.
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
]
# (suite, encrypt_then_mac): EtM only exists for CBC suites.
MODES = [(suite, False) for suite in SUITES] + [(suite, True) for suite in SUITES if not suite_params(suite).is_aead]
MODE_IDS = [f"{suite.name}{'-etm' if etm else ''}" for suite, etm in MODES]


def pair(suite: CipherSuite, etm: bool) -> tuple[RecordProtection, RecordProtection]:
    """The client's writer and the server's reader for client-to-server records, from a fresh key block."""
    params = suite_params(suite)
    keys = key_block(os.urandom(48), os.urandom(32), os.urandom(32), params)
    return (
        RecordProtection.client_write(keys, params, encrypt_then_mac=etm),
        RecordProtection.client_write(keys, params, encrypt_then_mac=etm),
    )


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 1000, MAX_PLAINTEXT_LENGTH])
def test_round_trip_and_record_size(suite: CipherSuite, etm: bool, length: int) -> None:
    writer, reader = pair(suite, etm)
    params = suite_params(suite)
    plaintext = os.urandom(length)
    record = writer.protect(APP, TLS12, plaintext)
    assert record[:3] == bytes([APP, 3, 3])
    fragment_length = int.from_bytes(record[3:5], "big")
    assert fragment_length == len(record) - 5
    if params.is_aead:
        assert fragment_length == params.record_iv_length + length + 16  # GCM: 8-byte explicit nonce; ChaCha: 0
    else:
        # IV + whole blocks of (plaintext [+ MAC] + minimal padding) [+ MAC for EtM]
        inner = length + (0 if etm else params.mac_length)
        padded = (inner // 16 + 1) * 16
        assert fragment_length == 16 + padded + (params.mac_length if etm else 0)
    assert reader.unprotect(record) == plaintext
    assert writer.sequence_number == reader.sequence_number == 1


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
@given(data=st.data())
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_single_byte_change_is_rejected(suite: CipherSuite, etm: bool, data: st.DataObject) -> None:
    writer, reader = pair(suite, etm)
    plaintext = data.draw(st.binary(max_size=100), label="plaintext")
    record = bytearray(writer.protect(APP, TLS12, plaintext))
    position = data.draw(st.integers(0, len(record) - 1), label="position")
    record[position] ^= data.draw(st.integers(1, 255), label="xor")
    # Type and version are covered by the MAC/tag; a changed length no longer matches the bytes.
    expected = DecodeError if position in (3, 4) else BadRecordMac
    with pytest.raises(expected):
        reader.unprotect(bytes(record))
    assert reader.sequence_number == 0  # a failure does not advance the sequence number


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
def test_sequence_numbers_catch_replay_reorder_and_drop(suite: CipherSuite, etm: bool) -> None:
    writer, reader = pair(suite, etm)
    first, second, third = (writer.protect(APP, TLS12, bytes([n]) * 20) for n in range(3))
    assert reader.unprotect(first) == bytes(20)
    with pytest.raises(BadRecordMac):
        reader.unprotect(first)  # replayed
    with pytest.raises(BadRecordMac):
        reader.unprotect(third)  # second was dropped (or reordered)
    assert reader.unprotect(second) == b"\x01" * 20
    assert reader.unprotect(third) == b"\x02" * 20
    # A receiver that did not restart at 0 after ChangeCipherSpec fails on the first record.
    writer2, reader2 = pair(suite, etm)
    reader2.sequence_number = 1
    with pytest.raises(BadRecordMac):
        reader2.unprotect(writer2.protect(APP, TLS12, b"hello"))


def test_the_two_directions_use_different_keys() -> None:
    params = suite_params(CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256)
    keys = key_block(os.urandom(48), os.urandom(32), os.urandom(32), params)
    record = RecordProtection.client_write(keys, params).protect(APP, TLS12, b"hi")
    with pytest.raises(BadRecordMac):
        RecordProtection.server_write(keys, params).unprotect(record)


def test_gcm_explicit_nonce_is_the_sequence_number_and_the_additional_data_is_checked() -> None:
    writer, reader = pair(CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256, False)
    writer.sequence_number = 0x0102030405060708
    reader.sequence_number = 0x0102030405060708
    record = writer.protect(ContentType.handshake, TLS12, b"Finished")
    assert record[5:13] == bytes.fromhex("0102030405060708")
    with pytest.raises(BadRecordMac):
        reader.unprotect(Record(ContentType.application_data, TLS12, record[5:]))  # type is in the AAD
    assert reader.unprotect(Record(ContentType.handshake, TLS12, record[5:])) == b"Finished"


def mac_then_encrypt_by_hand(
    writer: RecordProtection, seq: int, plaintext: bytes, mac: bytes | None, padding: bytes
) -> bytes:
    """Build a CBC record from parts, so tests can break one part at a time."""
    if mac is None:
        algorithm = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384()}
        h = hmac.HMAC(writer.mac_key, algorithm[writer.params.mac_algorithm])
        h.update(seq.to_bytes(8, "big") + bytes([APP, 3, 3]) + len(plaintext).to_bytes(2, "big") + plaintext)
        mac = h.finalize()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(writer.key), modes.CBC(iv)).encryptor()
    return encode_record(APP, TLS12, iv + encryptor.update(plaintext + mac + padding) + encryptor.finalize())


@pytest.mark.parametrize("suite", [s for s in SUITES if not suite_params(s).is_aead], ids=lambda s: s.name)
def test_bad_padding_and_bad_mac_look_the_same(suite: CipherSuite) -> None:
    writer, reader = pair(suite, False)
    mac_length = writer.params.mac_length
    plaintext = b"A" * (32 - mac_length % 16)  # plaintext + MAC ends on a block boundary
    # A hand-built record with correct padding is accepted, including long (non-minimal) padding.
    assert reader.unprotect(mac_then_encrypt_by_hand(writer, 0, plaintext, None, bytes([15]) * 16)) == plaintext
    assert reader.unprotect(mac_then_encrypt_by_hand(writer, 1, plaintext, None, bytes([31]) * 32)) == plaintext
    errors = []
    for mac, padding in (
        (None, bytes([15]) * 15 + b"\x0e"),  # padding bytes disagree with the length byte
        (None, b"\x00" * 15 + b"\x0f"),  # correct length, wrong padding bytes
        (None, bytes([200]) * 16),  # padding longer than the record
        (bytes(mac_length), bytes([15]) * 16),  # good padding, bad MAC
    ):
        with pytest.raises(BadRecordMac) as caught:
            reader.unprotect(mac_then_encrypt_by_hand(writer, 2, plaintext, mac, padding))
        errors.append(str(caught.value))
    assert len(set(errors)) == 1  # one message for every failure: no padding oracle in the error


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
@given(fragment=st.binary(max_size=200))
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_fragments_only_ever_fail_as_bad_record_mac(suite: CipherSuite, etm: bool, fragment: bytes) -> None:
    _, reader = pair(suite, etm)
    with pytest.raises(BadRecordMac):
        reader.unprotect(Record(APP, TLS12, fragment))


def test_length_limits() -> None:
    writer, reader = pair(CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256, False)
    with pytest.raises(RecordOverflow):
        writer.protect(APP, TLS12, bytes(MAX_PLAINTEXT_LENGTH + 1))
    with pytest.raises(RecordOverflow):
        reader.unprotect(Record(APP, TLS12, bytes(MAX_CIPHERTEXT_LENGTH + 1)))
    # A record whose plaintext is longer than 2^14 is refused even with a valid MAC.
    params = writer.params
    keys = key_block(bytes(48), bytes(32), bytes(32), params)
    oversized = mac_then_encrypt_by_hand(
        RecordProtection.client_write(keys, params), 0, bytes(MAX_PLAINTEXT_LENGTH + 16), None, bytes([15]) * 16
    )
    with pytest.raises(RecordOverflow):
        RecordProtection.client_write(keys, params).unprotect(oversized)


def test_sequence_numbers_do_not_wrap() -> None:
    writer, _ = pair(CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256, False)
    writer.sequence_number = (1 << 64) - 1
    writer.protect(APP, TLS12, b"last")
    with pytest.raises(ProtocolError):
        writer.protect(APP, TLS12, b"one too many")


# -- framing -------------------------------------------------------------------------------------


def test_reader_waits_for_a_whole_record() -> None:
    stream = encode_record(ContentType.handshake, TLS12, b"abc") + encode_record(APP, TLS12, b"defg")
    reader = RecordReader()
    for byte in stream[:7]:
        assert reader.feed(bytes([byte])) == []
    records = reader.feed(stream[7:])
    assert [(r.content_type, r.fragment) for r in records] == [(ContentType.handshake, b"abc"), (APP, b"defg")]
    assert reader.buffered == 0
    assert records[0].spans[0].field == "record.content_type"
    assert records[1].spans[0].offset == 8  # spans give offsets in the whole stream


def test_reader_refuses_oversized_records_from_the_header_alone() -> None:
    header = bytes([APP, 3, 3]) + (MAX_PLAINTEXT_LENGTH + 1).to_bytes(2, "big")
    with pytest.raises(RecordOverflow):
        RecordReader().feed(header)
    assert RecordReader(protected=True).feed(header) == []  # allowed once protected...
    header = bytes([APP, 3, 3]) + (MAX_CIPHERTEXT_LENGTH + 1).to_bytes(2, "big")
    with pytest.raises(RecordOverflow):
        RecordReader(protected=True).feed(header)  # ...up to 2^14 + 2048


def test_reader_rejects_unknown_types_and_versions() -> None:
    with pytest.raises(UnexpectedMessage):
        RecordReader().feed(bytes([99, 3, 3, 0, 0]))
    with pytest.raises(ProtocolVersionError):
        RecordReader().feed(bytes([APP, 2, 0, 0, 0]))


@given(stream=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_fuzzed_streams_give_records_or_typed_errors_independent_of_chunking(stream: bytes, cuts: list[int]) -> None:
    def run(chunks: list[bytes]) -> tuple[list[Record], type | None]:
        reader, records = RecordReader(), []
        try:
            for chunk in chunks:
                records += reader.feed(chunk)
        except ProtocolError as error:  # RecordOverflow, UnexpectedMessage, ProtocolVersionError, DecodeError
            return records, type(error)
        return records, None

    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole = run([stream])
    assert run(chunks) == whole
    consumed = sum(5 + len(record.fragment) for record in whole[0])
    assert b"".join(record.encode() for record in whole[0]) == stream[:consumed]


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


@given(
    bodies=st.lists(st.binary(max_size=70), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_reassembly_is_independent_of_how_records_cut_the_messages(bodies: list[bytes], cuts: list[int]) -> None:
    messages = [handshake_message(HandshakeType.certificate, body) for body in bodies]
    stream = b"".join(messages)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reassembler, found = HandshakeReassembler(), []
    for a, b in zip([0, *points], [*points, len(stream)], strict=True):
        found += reassembler.feed(stream[a:b])
    assert [message.raw for message in found] == messages
    assert [message.body for message in found] == bodies
    assert reassembler.buffered == 0


def test_several_messages_in_one_record_and_one_message_in_several() -> None:
    hello_done = handshake_message(HandshakeType.server_hello_done, b"")
    certificate = handshake_message(HandshakeType.certificate, os.urandom(5000))
    reassembler = HandshakeReassembler()
    assert reassembler.feed(certificate[:3]) == []
    assert reassembler.feed(certificate[3:2000]) == []
    found = reassembler.feed(certificate[2000:] + hello_done + hello_done[:2])
    assert [m.msg_type for m in found] == [HandshakeType.certificate, HandshakeType.server_hello_done]
    assert reassembler.buffered == 2


def test_reassembler_bounds_what_a_peer_can_make_us_buffer() -> None:
    with pytest.raises(DecodeError):
        HandshakeReassembler(max_message_length=1000).feed(
            bytes([HandshakeType.certificate]) + (1001).to_bytes(3, "big")
        )


# -- one endpoint's record layer ----------------------------------------------------------------


def connected_layers(suite: CipherSuite) -> tuple[RecordLayer, RecordLayer]:
    params = suite_params(suite)
    keys = key_block(os.urandom(48), os.urandom(32), os.urandom(32), params)
    client, server = RecordLayer(), RecordLayer()
    client.pending_write = RecordProtection.client_write(keys, params)
    client.pending_read = RecordProtection.server_write(keys, params)
    server.pending_write = RecordProtection.server_write(keys, params)
    server.pending_read = RecordProtection.client_write(keys, params)
    return client, server


# The step-by-step methods, used as TLSConnection uses them (it asks its state table before a switch).
def wire_for(layer: RecordLayer, content_type: int, data: bytes) -> bytes:
    wire = b"".join(sent.wire for sent in layer.records_for(content_type, data))
    if content_type == ContentType.change_cipher_spec:
        layer.activate_pending_write()
    return wire


def read_all(layer: RecordLayer, data: bytes) -> list[tuple[int, bytes]]:
    layer.extend(data)
    received = []
    while (record := layer.next_record()) is not None:
        received.append((record.content_type, layer.unprotect(record).data))
        if record.content_type == ContentType.change_cipher_spec:
            layer.activate_pending_read()
    return received


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_change_cipher_spec_switches_to_the_pending_keys(suite: CipherSuite) -> None:
    client, server = connected_layers(suite)
    hello = wire_for(client, ContentType.handshake, b"plaintext hello")
    assert hello[5:] == b"plaintext hello"
    wire = hello + wire_for(client, ContentType.change_cipher_spec, b"\x01")
    wire += wire_for(client, ContentType.handshake, b"finished")
    big = os.urandom(MAX_PLAINTEXT_LENGTH + 100)
    wire += wire_for(client, APP, big)  # two records: 2^14 bytes, then 100
    assert b"finished" not in wire[len(hello) :]
    received = read_all(server, wire)
    assert [(content_type, len(data)) for content_type, data in received] == [
        (ContentType.handshake, 15),
        (ContentType.change_cipher_spec, 1),
        (ContentType.handshake, 8),
        (APP, MAX_PLAINTEXT_LENGTH),
        (APP, 100),
    ]
    assert received[2][1] == b"finished" and received[3][1] + received[4][1] == big
    assert server.read_protection is not None and server.read_protection.sequence_number == 3


def test_change_cipher_spec_before_keys_is_unexpected() -> None:
    with pytest.raises(UnexpectedMessage):
        RecordLayer().activate_pending_read()
    with pytest.raises(UnexpectedMessage):
        RecordLayer().activate_pending_write()


def test_a_plaintext_record_after_change_cipher_spec_fails_the_mac() -> None:
    client, server = connected_layers(CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA)
    read_all(server, wire_for(client, ContentType.change_cipher_spec, b"\x01"))
    with pytest.raises(BadRecordMac):
        read_all(server, encode_record(APP, TLS12, b"not protected at all, but long enough for CBC......"))


def test_reassembling_fragments_in_hand_is_the_same_reassembler() -> None:
    hello_done = handshake_message(HandshakeType.server_hello_done, b"")
    certificate = handshake_message(HandshakeType.certificate, b"x" * 300)
    fragments = [certificate[:3], certificate[3:200], certificate[200:] + hello_done]
    found = reassemble_handshake_messages(fragments)
    assert [m.raw for m in found] == [certificate, hello_done]
    with pytest.raises(DecodeError, match="2 bytes after the last whole handshake message"):
        reassemble_handshake_messages([*fragments, hello_done[:2]])
    assert len(reassemble_handshake_messages([*fragments, hello_done[:2]], complete=False)) == 2
    with pytest.raises(DecodeError):
        reassemble_handshake_messages([certificate], max_message_length=100)


def test_record_size_limits_are_rfc_5246s() -> None:
    # RFC 5246 6.2.1 and 6.2.3: a plaintext fragment holds at most 2^14 bytes, a protected one 2^14 + 2048.
    # Spelled out here, so a wrong constant in the library cannot make its own test pass.
    assert (MAX_PLAINTEXT_LENGTH, MAX_CIPHERTEXT_LENGTH) == (2**14, 2**14 + 2048)
    largest = encode_record(APP, TLS12, bytes(2**14))
    (record,) = RecordReader().feed(largest)
    assert len(record.fragment) == 2**14
    with pytest.raises(RecordOverflow):
        RecordReader().feed(encode_record(APP, TLS12, bytes(2**14 + 1)))
    (protected,) = RecordReader(protected=True).feed(encode_record(APP, TLS12, bytes(2**14 + 2048)))
    assert len(protected.fragment) == 2**14 + 2048
    with pytest.raises(RecordOverflow):
        RecordReader(protected=True).feed(encode_record(APP, TLS12, bytes(2**14 + 2049)))
