"""The two TLS 1.2 state tables: their shape, and that the cores enforce them message by message."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from handshake_lib.errors import TLSAlert, UnexpectedMessage
from handshake_lib.pki import CoursePKI
from handshake_lib.tls import State, TLSClient, TLSServer, diagram_rows
from handshake_lib.tls.messages import Alert, ClientHello, Finished, ServerHelloDone
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.states import CLIENT_TRANSITIONS, SERVER_TRANSITIONS, Input, allowed_inputs, transition_for


@pytest.fixture(scope="module")
def issued():
    pki = CoursePKI.create()
    return pki, pki.issue_server(("localhost",))


def new_pair(issued, **client_options):
    pki, server_cert = issued
    client = TLSClient("localhost", trusted_certificates=[pki.root.certificate], **client_options)
    server = TLSServer([server_cert.certificate.public_bytes(Encoding.DER)], server_cert.private_key)
    return client, server


def test_the_tables_walk_the_full_handshake() -> None:
    client_path = [row.target for row in CLIENT_TRANSITIONS if row.source is not row.target]
    assert client_path == [
        State.WAIT_SERVER_HELLO,
        State.WAIT_CERTIFICATE,
        State.WAIT_SERVER_HELLO_DONE,
        State.WAIT_CHANGE_CIPHER_SPEC,
        State.WAIT_FINISHED,
        State.CONNECTED,
    ]
    server_path = [row.target for row in SERVER_TRANSITIONS if row.source is not row.target]
    assert server_path == [
        State.WAIT_CLIENT_KEY_EXCHANGE,
        State.WAIT_CHANGE_CIPHER_SPEC,
        State.WAIT_FINISHED,
        State.CONNECTED,
    ]


def test_diagram_rows_label_what_is_sent() -> None:
    rows = diagram_rows("client")
    assert (
        "WAIT_SERVER_HELLO_DONE",
        "ServerHelloDone / ClientKeyExchange, ChangeCipherSpec, Finished",
        "WAIT_CHANGE_CIPHER_SPEC",
    ) in rows
    assert all(source != target for source, _, target in rows)
    assert len(diagram_rows("client", complete=True)) == len(CLIENT_TRANSITIONS)
    assert diagram_rows("server")[0] == (
        "WAIT_CLIENT_HELLO",
        "ClientHello / ServerHello, Certificate, ServerHelloDone",
        "WAIT_CLIENT_KEY_EXCHANGE",
    )
    with pytest.raises(ValueError):
        diagram_rows("proxy")  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["client", "server"])
def test_every_pair_missing_from_the_table_is_unexpected(role) -> None:
    table = CLIENT_TRANSITIONS if role == "client" else SERVER_TRANSITIONS
    allowed = {(row.source, row.received) for row in table}
    for state in State:
        for received in Input:
            if (state, received) in allowed:
                assert transition_for(role, state, received).received is received
            else:
                with pytest.raises(UnexpectedMessage, match=received.value):
                    transition_for(role, state, received)
    assert allowed_inputs(role, State.CONNECTED) == [Input.application_data]


def test_cores_move_through_the_states_in_order(issued) -> None:
    client, server = new_pair(issued)
    assert client.state is State.IDLE and server.state is State.WAIT_CLIENT_HELLO
    client.start()
    assert client.state is State.WAIT_SERVER_HELLO
    server.receive_data(client.data_to_send())
    assert server.state is State.WAIT_CLIENT_KEY_EXCHANGE
    flight = server.data_to_send()
    # Feed the server's flight one byte at a time: states advance exactly at message boundaries.
    seen = []
    for i in range(len(flight)):
        client.receive_data(flight[i : i + 1])
        if not seen or seen[-1] is not client.state:
            seen.append(client.state)
    assert seen == [
        State.WAIT_SERVER_HELLO,
        State.WAIT_CERTIFICATE,
        State.WAIT_SERVER_HELLO_DONE,
        State.WAIT_CHANGE_CIPHER_SPEC,
    ]
    server.receive_data(client.data_to_send())
    assert server.state is State.CONNECTED
    client.receive_data(server.data_to_send())
    assert client.state is State.CONNECTED


def test_server_hello_done_first_is_unexpected_straight_from_the_table(issued) -> None:
    client, _ = new_pair(issued)
    client.start()
    client.data_to_send()
    with pytest.raises(UnexpectedMessage, match="ServerHelloDone is not allowed in client state WAIT_SERVER_HELLO"):
        client.receive_data(encode_record(22, 0x0303, ServerHelloDone().to_bytes()))
    assert client.state is State.ERROR
    assert client.data_to_send() == encode_record(21, 0x0303, Alert(2, TLSAlert.unexpected_message).to_bytes())


def test_finished_before_client_key_exchange_is_unexpected(issued) -> None:
    client, server = new_pair(issued)
    client.start()
    server.receive_data(client.data_to_send())
    server.data_to_send()
    with pytest.raises(UnexpectedMessage, match="Finished is not allowed"):
        server.receive_data(encode_record(22, 0x0303, Finished(bytes(12)).to_bytes()))
    assert server.data_to_send()[-2:] == bytes([2, TLSAlert.unexpected_message])


def test_a_second_client_hello_is_unexpected(issued) -> None:
    _, server = new_pair(issued)
    hello = ClientHello(cipher_suites=[0x9C], random=bytes(32)).to_bytes()
    server.receive_data(encode_record(22, 0x0303, hello))
    with pytest.raises(UnexpectedMessage):
        server.receive_data(encode_record(22, 0x0303, hello))


def test_application_data_before_the_handshake_is_unexpected(issued) -> None:
    _, server = new_pair(issued)
    with pytest.raises(UnexpectedMessage, match="ApplicationData"):
        server.receive_data(encode_record(23, 0x0303, b"GET / HTTP/1.1\r\n\r\n"))
