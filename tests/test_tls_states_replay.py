"""``states.replay``: a transcript walked through a role's table, one state per record."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from handshake_lib.tls import TLSClient, TLSServer
from handshake_lib.tls.connection import ApplicationData, TranscriptEntry
from handshake_lib.tls.constants import AlertLevel, ContentType, HandshakeType
from handshake_lib.tls.messages import Alert, ChangeCipherSpec
from handshake_lib.tls.states import State, replay

C2S, S2C = "client->server", "server->client"


def handshake(direction: str, *types: HandshakeType) -> TranscriptEntry:
    # Only what replay reads: the type, and (for a ServerHello) its extensions: this server agreed to every
    # extension asked about, session_ticket included, so FULL's NewSessionTicket is expected.
    messages = [SimpleNamespace(handshake_type=t, extension=lambda _type: object()) for t in types]
    return TranscriptEntry(direction, ContentType.handshake, b"", b"", messages)


def ccs(direction: str) -> TranscriptEntry:
    return TranscriptEntry(direction, ContentType.change_cipher_spec, b"", b"\x01", [ChangeCipherSpec()])


FULL = [
    handshake(C2S, HandshakeType.client_hello),
    handshake(S2C, HandshakeType.server_hello, HandshakeType.certificate, HandshakeType.server_hello_done),
    handshake(C2S, HandshakeType.client_key_exchange),
    ccs(C2S),
    handshake(C2S, HandshakeType.finished),
    handshake(S2C, HandshakeType.new_session_ticket),
    ccs(S2C),
    handshake(S2C, HandshakeType.finished),
    TranscriptEntry(C2S, ContentType.application_data, b"", b"GET", [ApplicationData(b"GET")]),
    TranscriptEntry(S2C, ContentType.application_data, b"", b"200", [ApplicationData(b"200")]),
    TranscriptEntry(C2S, ContentType.alert, b"", b"\x01\x00", [Alert(AlertLevel.warning, 0)]),
]


def values(states: list[State]) -> list[str]:
    return [state.value for state in states]


def test_the_full_handshake_for_both_roles() -> None:
    assert values(replay("client", FULL)) == [
        "WAIT_SERVER_HELLO",  # start(), sending ClientHello
        "WAIT_CHANGE_CIPHER_SPEC",
        "WAIT_CHANGE_CIPHER_SPEC",
        "WAIT_CHANGE_CIPHER_SPEC",
        "WAIT_CHANGE_CIPHER_SPEC",
        "WAIT_CHANGE_CIPHER_SPEC",  # NewSessionTicket: a row that stays
        "WAIT_FINISHED",
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "CLOSED",  # close_notify, whoever sends it
    ]
    assert values(replay("server", FULL)) == [
        "WAIT_CLIENT_KEY_EXCHANGE",
        "WAIT_CLIENT_KEY_EXCHANGE",
        "WAIT_CHANGE_CIPHER_SPEC",
        "WAIT_FINISHED",
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "CLOSED",
    ]


def test_what_the_table_refuses_ends_in_error_and_a_fatal_alert_too() -> None:
    out_of_order = [handshake(C2S, HandshakeType.client_hello), handshake(S2C, HandshakeType.finished)]
    assert values(replay("client", out_of_order)) == ["WAIT_SERVER_HELLO", "ERROR"]
    fatal = [FULL[0], TranscriptEntry(S2C, ContentType.alert, b"", b"\x02\x28", [Alert(AlertLevel.fatal, 40)])]
    assert values(replay("client", fatal)) == ["WAIT_SERVER_HELLO", "ERROR"]
    assert values(replay("server", fatal)) == ["WAIT_CLIENT_KEY_EXCHANGE", "ERROR"]


def test_a_hello_request_once_connected_is_the_tables_self_loop() -> None:
    hello_request = handshake(S2C, HandshakeType.hello_request)
    # Declined: the client's warning no_renegotiation follows it (tests/test_tls_renegotiation.py replays
    # renegotiations that went ahead).
    declined = TranscriptEntry(C2S, ContentType.alert, b"", b"\x01\x64", [Alert(AlertLevel.warning, 100)])
    assert values(replay("client", [*FULL[:8], hello_request, declined])) == values(replay("client", FULL[:8])) + [
        "CONNECTED",
        "CONNECTED",
    ]
    with pytest.raises(ValueError):
        replay("proxy", FULL)  # type: ignore[arg-type]


def test_replay_of_a_real_transcript_ends_where_the_connections_ended() -> None:
    """An in-memory handshake between our client and server: replay agrees with both cores' own state."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    client = TLSClient("localhost", verify=False)
    server = TLSServer([certificate.public_bytes(Encoding.DER)], key)
    client.start()
    while client.state is not State.CONNECTED:  # b"" would mean "closed": pass only real bytes
        if data := client.data_to_send():
            server.receive_data(data)
        if data := server.data_to_send():
            client.receive_data(data)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    assert replay("client", client.transcript)[-1] is client.state
    assert replay("server", server.transcript)[-1] is server.state
