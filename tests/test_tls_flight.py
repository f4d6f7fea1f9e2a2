"""Reading a server's first flight from raw bytes (handshake_lib.tls.flight), and the ClientHello notes and
field-by-field differences of exercise 02 (handshake_lib.tls.hello_explain).  No sockets here: the flights
are built with the library's own message classes and cut into records by hand."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.tls.constants import CipherSuite, ContentType, ProtocolVersion
from handshake_lib.tls.flight import (
    FirstFlightReader,
    handshake_record_spans,
    handshake_records,
)
from handshake_lib.tls.hello_explain import (
    EXERCISE_SIGNATURE_SCHEMES,
    client_hello_differences,
    explain_field,
    reference_client_hello,
)
from handshake_lib.tls.messages import Certificate, ClientHello, ServerHello, ServerHelloDone, decode_handshake
from handshake_lib.tls.record import encode_record

SERVER_HELLO = ServerHello(
    legacy_version=ProtocolVersion.TLS1_2, random=bytes(32), session_id=b"",
    cipher_suite=CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256, compression_method=0, extensions=[],
).to_bytes()
CERTIFICATE = Certificate([b"\x30\x03\x02\x01\x01"]).to_bytes()
DONE = ServerHelloDone().to_bytes()
FLIGHT = SERVER_HELLO + CERTIFICATE + DONE


def records(handshake: bytes, cuts: list[int]) -> bytes:
    """``handshake`` in handshake records cut at ``cuts``."""
    edges = [0, *cuts, len(handshake)]
    return b"".join(
        encode_record(ContentType.handshake, ProtocolVersion.TLS1_2, handshake[start:end])
        for start, end in zip(edges, edges[1:], strict=False)
    )


def feed(reader: FirstFlightReader, data: bytes, chunk: int) -> list[object]:
    events: list[object] = []
    for start in range(0, len(data), chunk):
        events += reader.receive_data(data[start : start + chunk])
    return events


@pytest.mark.parametrize("cuts", [[], [3], [len(SERVER_HELLO) - 1, len(SERVER_HELLO) + 5], list(range(1, len(FLIGHT)))])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_the_flight_is_reassembled_however_records_and_reads_cut_it(cuts, chunk):
    reader = FirstFlightReader()
    events = feed(reader, records(FLIGHT, cuts), chunk)
    answer = reader.answer
    assert events == [answer] and answer.complete and not answer.problem
    assert [m.name for m in answer.messages] == ["server_hello", "certificate", "server_hello_done"]
    assert [m.raw for m in answer.messages] == [SERVER_HELLO, CERTIFICATE, DONE]
    assert answer.server_hello.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    assert answer.certificates == [b"\x30\x03\x02\x01\x01"]
    assert "1 certificate(s): (not X.509)" in answer.summary()


def test_reading_stops_at_server_hello_done():
    reader = FirstFlightReader()
    trailing = encode_record(ContentType.handshake, ProtocolVersion.TLS1_2, b"\x00\x00\x00\x00")
    assert reader.receive_data(records(FLIGHT, []) + trailing) == [reader.answer]
    assert len(reader.answer.messages) == 3


def test_an_alert_ends_the_answer():
    reader = FirstFlightReader()
    assert reader.receive_data(encode_record(ContentType.alert, ProtocolVersion.TLS1_2, b"\x02\x28")[:6]) == []
    assert reader.receive_data(b"\x28") == [reader.answer]
    assert reader.answer.alert_name == "handshake_failure" and not reader.answer.complete
    assert "Alert: fatal handshake_failure (40)" in reader.answer.summary()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not TLS records"),
        (encode_record(ContentType.application_data, ProtocolVersion.TLS1_2, b"x"), "unexpected application_data"),
        (b"\x16\x03\x03\x00\x04\x02\xff\xff\xff", "not TLS records"),  # a message claiming 16 MiB
    ],
    ids=["http", "application-data", "huge-message"],
)
def test_bytes_that_are_not_a_first_flight_are_a_problem_not_an_exception(data, problem):
    reader = FirstFlightReader()
    assert reader.receive_data(data) == [reader.answer]
    assert problem in reader.answer.problem


def test_the_answer_is_bounded_and_a_close_is_reported():
    reader = FirstFlightReader(max_bytes=10)
    assert reader.receive_data(records(SERVER_HELLO, [])) == [reader.answer]
    assert "larger than 10 bytes" in reader.answer.problem
    reader = FirstFlightReader()
    assert reader.receive_data(records(SERVER_HELLO, [])) == []
    assert reader.receive_data(b"") == [reader.answer]
    assert "closed the connection without a complete answer" in reader.answer.problem
    assert reader.data_to_send() == b""


def test_a_message_that_does_not_decode_is_kept_with_its_error():
    reader = FirstFlightReader()
    reader.receive_data(records(b"\x02\x00\x00\x01\x00" + DONE, []))
    first = reader.answer.messages[0]
    assert first.message is None and first.error and first.name == "server_hello"
    assert "could not decode" in reader.answer.summary() and reader.answer.complete


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_answer_or_a_wait_never_an_exception(data):
    reader = FirstFlightReader()
    events = reader.receive_data(data) + reader.receive_data(b"")
    assert events and events[-1] is reader.answer and reader.answer.finished


def test_handshake_records_round_trip_and_cut_at_the_record_limit():
    hello = reference_client_hello(bytes(32), [0x009C], "localhost")
    wire = handshake_records(hello)
    assert wire[:3] == b"\x16\x03\x01" and wire[5:] == hello
    big = b"\x01" + (70_000 - 4).to_bytes(3, "big") + bytes(70_000 - 4)
    cut = handshake_records(big, record_version=ProtocolVersion.TLS1_2)
    assert len(cut) == len(big) + 5 * 5  # five records of at most 2^14 bytes
    assert handshake_records(b"") == b"\x16\x03\x01\x00\x00"


def test_record_spans_decode_the_message_in_place():
    hello = reference_client_hello(bytes(range(32)), [0x009C], "localhost")
    wire = handshake_records(hello)
    spans, problem = handshake_record_spans(wire)
    assert problem == ""
    by_field = {span.field: span for span in spans}
    assert by_field["record.content_type"].offset == 0
    random = by_field["record.client_hello.body.random"]
    assert wire[random.offset : random.end] == bytes(range(32))
    # Cut across two records, the message is shown as fragments, and nothing is decoded at a wrong offset.
    spans, problem = handshake_record_spans(records(hello, [10]))
    assert problem == "" and not any(s.field.startswith("record.client_hello") for s in spans)
    assert [s.field for s in spans].count("record.fragment") == 2


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"\x16\x03\x01\x00\x10\x01\x00", "need 21 bytes, have 7"), (b"\x16\x03", "need 5 bytes, have 2"),
     (records(b"\x01\x00\x00\x09abc", []), "inside a handshake message"), (b"\x63\x03\x01\x00\x00", "content type")],
)
def test_record_spans_say_what_stopped_them(data, problem):
    _, found = handshake_record_spans(data)
    assert problem in found


# -- hello_explain ------------------------------------------------------------------------------------
def test_reference_client_hello_matches_bytes_written_by_hand():
    random = bytes(range(32))
    host = b"localhost"
    server_name = struct.pack("!HHHBH", 0, 2 + 1 + 2 + len(host), 1 + 2 + len(host), 0, len(host)) + host
    schemes = b"".join(struct.pack("!H", s) for s in EXERCISE_SIGNATURE_SCHEMES)
    signature_algorithms = struct.pack("!HHH", 13, 2 + len(schemes), len(schemes)) + schemes
    extensions = server_name + signature_algorithms
    body = (
        b"\x03\x03" + random + b"\x00" + struct.pack("!HHH", 4, 0x009C, 0x002F) + b"\x01\x00"
        + struct.pack("!H", len(extensions)) + extensions
    )
    by_hand = b"\x01" + len(body).to_bytes(3, "big") + body
    assert reference_client_hello(random, [0x009C, 0x002F], "localhost") == by_hand


def test_client_hello_differences_name_the_field():
    expected = reference_client_hello(bytes(32), [0x009C], "localhost")
    assert client_hello_differences(expected, expected) == []
    wrong_length = bytearray(expected)
    wrong_length[3] += 1
    assert any("handshake length" in p for p in client_hello_differences(bytes(wrong_length), expected))
    other = reference_client_hello(bytes(32), [0x002F], "localhost")
    assert client_hello_differences(other, expected) == ["cipher_suites: expected ['0x009c'], found ['0x002f']"]
    bare = ClientHello(random=bytes(32), cipher_suites=[0x009C], extensions=[]).to_bytes()
    assert "extensions: expected ['server_name', 'signature_algorithms']" in client_hello_differences(bare, expected)[0]
    assert client_hello_differences("nope", expected) == ["expected bytes, found str"]


def test_every_client_hello_field_has_a_note():
    _, spans = decode_handshake(reference_client_hello(bytes(32), [0x009C], "localhost"))
    silent = {span.field for span in spans if not explain_field(span)}
    assert silent == set()
    assert explain_field(None) == ""
    extension = next(span for span in spans if span.name == "extension")
    assert explain_field(extension).startswith(f"The {extension.meaning} extension.")
