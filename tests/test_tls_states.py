"""The two TLS 1.2 state tables: their shape, and that the cores enforce them message by message."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from handshake_lib.errors import TLSAlert, UnexpectedMessage
from handshake_lib.tls import State, TLSClient, TLSServer, diagram_rows
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.messages import Alert, ClientHello, Finished, ServerHelloDone
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.states import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    Guard,
    Input,
    allowed_inputs,
    transition_for,
)


@pytest.fixture(scope="module")
def issued(course_pki, server_certificate):
    """The session's course CA and the server certificate it issued (conftest), bundled as the helpers take them."""
    return course_pki, server_certificate


def new_pair(issued, **client_options):
    """Our client and server with RSA key exchange, asked for explicitly: these tests walk the RSA rows
    (the default offer puts ECDHE first; tests/test_tls_ecdhe.py walks the ephemeral rows)."""
    pki, server_cert = issued
    client_options.setdefault("cipher_suites", RSA_DEFAULT_SUITES)
    client = TLSClient("localhost", trusted_certificates=[pki.root.certificate], **client_options)
    server = TLSServer([server_cert.certificate.public_bytes(Encoding.DER)], server_cert.private_key)
    return client, server


# What holds on every connection that agreed renegotiation_info (tests/test_tls_renegotiation.py tests them).
RENEGOTIATION_GUARDS = {Guard.secure_renegotiation, Guard.renegotiation_allowed}


MUTUAL_TLS_STATES = {State.CERTIFICATE_REQUESTED, State.WAIT_CLIENT_CERTIFICATE, State.WAIT_CERTIFICATE_VERIFY}
STAPLING_STATES = {State.WAIT_CERTIFICATE_STATUS}
EPHEMERAL_STATES = {State.WAIT_SERVER_KEY_EXCHANGE}  # ECDHE/DHE: tests/test_tls_ecdhe.py walks them


def test_the_tables_walk_the_full_handshake() -> None:
    def plain(rows):
        return [
            row.target
            for row in rows
            if row.source is not row.target
            and row.when is None
            and not {row.source, row.target} & (MUTUAL_TLS_STATES | STAPLING_STATES | EPHEMERAL_STATES)
        ]

    assert plain(CLIENT_TRANSITIONS) == [
        State.WAIT_SERVER_HELLO,
        State.WAIT_CERTIFICATE,
        State.WAIT_SERVER_HELLO_DONE,
        State.WAIT_CHANGE_CIPHER_SPEC,
        State.WAIT_FINISHED,
        State.CONNECTED,
    ]
    assert plain(SERVER_TRANSITIONS) == [
        State.WAIT_CLIENT_KEY_EXCHANGE,
        State.WAIT_CHANGE_CIPHER_SPEC,
        State.WAIT_FINISHED,
        State.CONNECTED,
    ]


def test_the_tables_walk_mutual_tls() -> None:
    """With a client certificate: the server's guarded rows, the client's CERTIFICATE_REQUESTED."""
    requested = {Guard.client_certificate_requested}
    row = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, requested)
    assert row.send == ("ServerHello", "Certificate", "CertificateRequest", "ServerHelloDone")
    assert row.target is State.WAIT_CLIENT_CERTIFICATE
    assert (
        transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello).target is State.WAIT_CLIENT_KEY_EXCHANGE
    )
    after_certificate = transition_for("server", State.WAIT_CLIENT_CERTIFICATE, Input.certificate, requested).target
    assert after_certificate is State.WAIT_CLIENT_KEY_EXCHANGE
    sent = {Guard.client_certificate_sent}
    assert transition_for("server", after_certificate, Input.client_key_exchange, sent).target is (
        State.WAIT_CERTIFICATE_VERIFY
    )
    assert transition_for("server", after_certificate, Input.client_key_exchange).target is (
        State.WAIT_CHANGE_CIPHER_SPEC
    )
    assert transition_for("server", State.WAIT_CERTIFICATE_VERIFY, Input.certificate_verify).target is (
        State.WAIT_CHANGE_CIPHER_SPEC
    )
    # Out of order: CertificateVerify without a certificate, ClientKeyExchange before Certificate.
    with pytest.raises(UnexpectedMessage, match="CertificateVerify is not allowed in server state"):
        transition_for("server", State.WAIT_CHANGE_CIPHER_SPEC, Input.certificate_verify, set(Guard))
    with pytest.raises(UnexpectedMessage, match="ClientKeyExchange is not allowed in server state WAIT_CLIENT_CERT"):
        transition_for("server", State.WAIT_CLIENT_CERTIFICATE, Input.client_key_exchange, set(Guard))

    requested_state = transition_for("client", State.WAIT_SERVER_HELLO_DONE, Input.certificate_request).target
    assert requested_state is State.CERTIFICATE_REQUESTED
    mine = {Guard.client_certificate_to_send}
    assert transition_for("client", requested_state, Input.server_hello_done, mine).send == (
        "Certificate",
        "ClientKeyExchange",
        "CertificateVerify",
        "ChangeCipherSpec",
        "Finished",
    )
    assert transition_for("client", requested_state, Input.server_hello_done).send == (
        "Certificate",
        "ClientKeyExchange",
        "ChangeCipherSpec",
        "Finished",
    )
    with pytest.raises(UnexpectedMessage, match="CertificateRequest is not allowed in client state CERTIFICATE_REQ"):
        transition_for("client", requested_state, Input.certificate_request, set(Guard))
    # Both ServerHelloDone rows join the same two states: one arrow, CertificateVerify starred as in RFC 5246.
    (label,) = [label for source, label, _ in diagram_rows("client") if source == "CERTIFICATE_REQUESTED"]
    assert label == "ServerHelloDone / Certificate, ClientKeyExchange, CertificateVerify*, ChangeCipherSpec, Finished"


def test_diagram_rows_label_what_is_sent() -> None:
    rows = diagram_rows("client")
    assert (
        "WAIT_SERVER_HELLO_DONE",
        "ServerHelloDone / ClientKeyExchange, ChangeCipherSpec, Finished",
        "WAIT_CHANGE_CIPHER_SPEC",
    ) in rows
    assert all(source != target for source, _, target in rows)
    assert len(diagram_rows("client", complete=True)) == len({(r.source, r.target) for r in CLIENT_TRANSITIONS})
    # Stapling or not, ECDHE or not, one arrow: CertificateStatus and ServerKeyExchange starred, as RFC 5246
    # and RFC 6066 draw optional messages.
    assert diagram_rows("server")[0] == (
        "WAIT_CLIENT_HELLO",
        "ClientHello / ServerHello, Certificate, CertificateStatus*, ServerKeyExchange*, ServerHelloDone",
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
                assert transition_for(role, state, received, set(Guard)).received is received
            else:
                with pytest.raises(UnexpectedMessage, match=re.escape(received.value)):
                    transition_for(role, state, received, set(Guard))
    connected = (
        [Input.application_data, Input.hello_request, Input.renegotiate]
        if role == "client"
        else [Input.application_data, Input.renegotiate, Input.client_hello, Input.no_renegotiation]
    )
    assert allowed_inputs(role, State.CONNECTED) == connected
    assert allowed_inputs(role, State.CLOSED) == [Input.application_data]  # discarded after our close_notify


def test_a_guarded_row_applies_only_while_its_guard_holds() -> None:
    row = transition_for("client", State.WAIT_CHANGE_CIPHER_SPEC, Input.new_session_ticket, {Guard.ticket_expected})
    assert row.target is State.WAIT_CHANGE_CIPHER_SPEC and row.when is Guard.ticket_expected
    with pytest.raises(UnexpectedMessage, match="only when session_ticket agreed"):
        transition_for("client", State.WAIT_CHANGE_CIPHER_SPEC, Input.new_session_ticket)
    assert Input.new_session_ticket not in allowed_inputs("client", State.WAIT_CHANGE_CIPHER_SPEC, ())
    assert Input.new_session_ticket in allowed_inputs("client", State.WAIT_CHANGE_CIPHER_SPEC)
    loops = [label for source, label, target in diagram_rows("client", complete=True) if source == target]
    assert "NewSessionTicket [session_ticket agreed, no ticket yet]" in "\n".join(loops).splitlines()


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


# -- the table drives the code: today's special cases are rows -------------------------------------------
def ticket_pair(issued, monkeypatch):
    """A client that offered session_ticket and a server that agrees but sends no ticket (ours, without
    ticket keys, would not agree: the test sends the NewSessionTicket itself)."""
    from handshake_lib.tls import server as server_module

    original = server_module.server_extensions

    def agreeing(*args, **options):
        return original(*args, **{**options, "session_tickets": True})

    monkeypatch.setattr(server_module, "server_extensions", agreeing)
    client, server = new_pair(issued, session_ticket=True)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert client.state is State.WAIT_CHANGE_CIPHER_SPEC
    return client, server


def ticket_record(ticket: bytes = b"opaque") -> bytes:
    from handshake_lib.tls.messages import NewSessionTicket

    return encode_record(22, 0x0303, NewSessionTicket(7200, ticket).to_bytes())


def test_new_session_ticket_is_accepted_once_when_agreed(issued, monkeypatch) -> None:
    client, _ = ticket_pair(issued, monkeypatch)
    assert client.guards() - RENEGOTIATION_GUARDS == {Guard.ticket_expected, Guard.rsa_key_exchange}
    client.receive_data(ticket_record())
    assert client.session_ticket is not None and client.session_ticket.ticket == b"opaque"
    assert client.state is State.WAIT_CHANGE_CIPHER_SPEC
    assert client.guards() - RENEGOTIATION_GUARDS == {Guard.rsa_key_exchange}
    with pytest.raises(UnexpectedMessage, match="only when session_ticket agreed, no ticket yet"):
        client.receive_data(ticket_record(b"again"))
    assert client.transcript[-1].messages == [Alert(2, TLSAlert.unexpected_message)]  # encrypted: our CCS is out


def test_new_session_ticket_without_agreement_is_unexpected(issued) -> None:
    client, server = new_pair(issued, session_ticket=True)  # offered, but our server does not agree
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.guards() - RENEGOTIATION_GUARDS == {Guard.rsa_key_exchange}
    with pytest.raises(UnexpectedMessage, match="NewSessionTicket is allowed in client state"):
        client.receive_data(ticket_record())


def connected_pair(issued, **client_options):
    client, server = new_pair(issued, **client_options)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    return client, server


def test_hello_request_when_connected_is_declined_with_a_warning_row(issued) -> None:
    client, server = connected_pair(issued, max_renegotiations=0)  # a client that allows none
    messages_before = bytes(client._handshake_messages)
    # The server's protection writes it as any real server would: an encrypted handshake record.
    server._send_records(22, b"\x00\x00\x00\x00", [])  # HelloRequest: type 0, empty body
    assert client.receive_data(server.data_to_send()) == []
    assert client.state is State.CONNECTED
    sent = client.transcript[-1]
    assert sent.messages == [Alert(1, TLSAlert.no_renegotiation)]
    assert bytes(client._handshake_messages) == messages_before  # HelloRequest is not hashed
    server.receive_data(client.data_to_send())  # a warning: the server goes on
    assert server.state is State.CONNECTED


def test_hello_request_during_the_handshake_is_unexpected(issued) -> None:
    client, _ = new_pair(issued)
    client.start()
    with pytest.raises(UnexpectedMessage, match="HelloRequest is not allowed in client state WAIT_SERVER_HELLO"):
        client.receive_data(encode_record(22, 0x0303, b"\x00\x00\x00\x00"))


@pytest.mark.parametrize("closer", ["client", "server"])
def test_application_data_after_our_close_is_discarded_by_a_row(issued, closer) -> None:
    client, server = connected_pair(issued)
    ours, peer = (client, server) if closer == "client" else (server, client)
    ours.close()
    assert ours.state is State.CLOSED
    peer.send_application_data(b"still talking")
    assert ours.receive_data(peer.data_to_send()) == []  # no event: discarded
    assert ours.state is State.CLOSED


def test_the_code_sends_exactly_the_rows_flight(issued, monkeypatch) -> None:
    from handshake_lib.errors import InternalError
    from handshake_lib.tls.messages import ServerHelloDone as Done

    client, server = new_pair(issued)
    sent_twice = lambda self: (self._send_handshake(Done()), self._send_handshake(Done()))  # noqa: E731
    monkeypatch.setattr(TLSServer, "_send_server_hello_done", sent_twice)
    client.start()
    with pytest.raises(InternalError, match=r"sends \['ServerHello', 'Certificate', 'ServerHelloDone'\]"):
        server.receive_data(client.data_to_send())
    assert server.state is State.ERROR
    assert server.transcript[-1].messages == [Alert(2, TLSAlert.internal_error)]


def test_a_class_without_a_handler_for_a_row_is_refused() -> None:
    with pytest.raises(TypeError, match="no sender for 'ServerHelloDone'"):

        class Broken(TLSServer):
            _SENDERS = {"ServerHelloDone": "_no_such_method"}  # noqa: RUF012

    with pytest.raises(TypeError, match="no handler for ClientKeyExchange"):

        class Deaf(TLSServer):
            _RECEIVERS = {Input.client_key_exchange: "_not_here"}  # noqa: RUF012


def test_the_state_changes_in_one_place() -> None:
    import inspect

    from handshake_lib.tls import client, client13, connection, connection13, core, server, server13

    for module in (client, connection, server, client13, connection13, server13, core):
        source = inspect.getsource(module)
        assert "self.state =" not in source and "self.state," not in source
        assert source.count("self._state =") == (1 if module is core else 0)  # in TLSCore._move, both versions'
        assert source.count("self._state: State =") == (1 if module in (connection, connection13) else 0)  # __init__


def test_a_recorded_ticket_handshake_replays_through_the_guarded_row(issued, monkeypatch) -> None:
    from handshake_lib.tls.states import replay

    client, server = ticket_pair(issued, monkeypatch)
    client.receive_data(ticket_record())
    assert replay("client", client.transcript)[-1] is State.WAIT_CHANGE_CIPHER_SPEC
    # A second ticket has no row: the guard no longer holds, as in the live connection.
    client.transcript.append(client.transcript[-1])
    assert replay("client", client.transcript)[-1] is State.ERROR
