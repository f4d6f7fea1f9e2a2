"""The TLS 1.3 state tables (tls/states13.py): shape, guards, and replays of real OpenSSL flows.

The flows are recorded from a real Python ``ssl`` client and server (OpenSSL 3.0) talking over memory
BIOs, each end's sequence as that end saw it (the client reads the tickets after it sent its request;
the server sent them before reading it).  OpenSSL's message callback (``SSLContext._msg_callback``, the
hook behind ``openssl s_client -msg``) hands us each handshake message after the record layer decrypted
it, so no key log is needed here; tests/test_tls13_handshake_by_hand.py decrypts the same flights
itself.  Each replay also checks that what the role really sent is, flight by flight, the send column
of the row it took.  KeyUpdate is a synthetic sequence (``SSLObject`` has no key_update in Python 3.11).
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque
from typing import Any

import pytest

from handshake_lib.errors import UnexpectedMessage
from handshake_lib.tls.constants import ContentType, ExtensionType, KeyUpdateRequest
from handshake_lib.tls.messages13 import Certificate13, KeyUpdate, decode_handshake13
from handshake_lib.tls.states13 import (
    INITIAL_STATE,
    TABLES,
    Guard,
    Input,
    Recorded,
    State,
    Transition,
    allowed_inputs,
    diagram_rows,
    refine,
    replay,
    replay_rows,
    transition_for,
)

ROLES = ("client", "server")


# -- the tables' shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_state_of_the_table_is_reachable_from_the_start(role: str) -> None:
    rows = [row for twins in TABLES[role].values() for row in twins]
    seen, todo = {INITIAL_STATE[role]}, deque([INITIAL_STATE[role]])
    while todo:
        state = todo.popleft()
        for row in rows:
            if row.source is state and row.target not in seen:
                seen.add(row.target)
                todo.append(row.target)
    assert seen == {row.source for row in rows} | {row.target for row in rows}
    assert State.CONNECTED in seen


@pytest.mark.parametrize("role", ROLES)
def test_every_pair_without_a_row_is_unexpected_message(role: str) -> None:
    every_guard = set(Guard)
    for state in State:
        for received in Input:
            if (state, received) in TABLES[role]:
                assert transition_for(role, state, received, every_guard).source is state  # type: ignore[arg-type]
                continue
            with pytest.raises(UnexpectedMessage, match=received.value):
                transition_for(role, state, received, every_guard)  # type: ignore[arg-type]


def test_server_client_hello_rows_refined_by_what_the_client_hello_decided() -> None:
    first = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello)
    assert first.send == ("ServerHello", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished")
    retry = refine("server", first, {Guard.retry_needed})
    assert (retry.send, retry.target) == (("HelloRetryRequest",), State.WAIT_SECOND_CLIENT_HELLO)
    psk = refine("server", first, {Guard.psk_accepted})
    assert (psk.send, psk.target) == (("ServerHello", "EncryptedExtensions", "Finished"), State.WAIT_FLIGHT2)
    early = refine("server", first, {Guard.psk_accepted, Guard.early_data_accepted})
    assert early.target is State.WAIT_END_OF_EARLY_DATA
    asked = refine("server", first, {Guard.client_certificate_requested})
    assert "CertificateRequest" in asked.send
    # A PSK handshake never asks for a certificate (RFC 8446 4.3.2), whatever the server was configured to do.
    both = {Guard.client_certificate_requested, Guard.psk_accepted}
    assert refine("server", asked, both).send == ("ServerHello", "EncryptedExtensions", "Finished")
    assert transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, both) == psk
    # The second ClientHello never retries again, whatever the guards say.
    again = transition_for("server", State.WAIT_SECOND_CLIENT_HELLO, Input.client_hello, {Guard.retry_needed})
    assert again.target is State.WAIT_FLIGHT2


def test_client_guarded_paths() -> None:
    assert transition_for("client", State.WAIT_SERVER_HELLO, Input.hello_retry_request).send == ("ClientHello",)
    with pytest.raises(UnexpectedMessage, match="HelloRetryRequest"):
        transition_for("client", State.WAIT_SERVER_HELLO_AFTER_RETRY, Input.hello_retry_request)
    ee = State.WAIT_ENCRYPTED_EXTENSIONS
    assert transition_for("client", ee, Input.encrypted_extensions).target is State.WAIT_CERTIFICATE_OR_REQUEST
    assert transition_for("client", ee, Input.encrypted_extensions, {Guard.psk_accepted}).target is State.WAIT_FINISHED
    fin = State.WAIT_FINISHED
    assert transition_for("client", fin, Input.finished).send == ("Finished",)
    assert transition_for("client", fin, Input.finished, {Guard.certificate_requested}).send == (
        "Certificate",
        "Finished",
    )
    both = {Guard.certificate_requested, Guard.client_certificate_to_send}
    assert transition_for("client", fin, Input.finished, both).send == ("Certificate", "CertificateVerify", "Finished")
    early = {Guard.psk_accepted, Guard.early_data_accepted}
    assert transition_for("client", fin, Input.finished, early).send == ("EndOfEarlyData", "Finished")
    start = transition_for("client", State.IDLE, Input.start, {Guard.early_data_offered})
    assert start.send == ("ClientHello", "ApplicationData")


def test_server_client_certificate_and_ticket_guards() -> None:
    with pytest.raises(UnexpectedMessage, match="Certificate"):
        transition_for("server", State.WAIT_FLIGHT2, Input.certificate)  # not asked for
    asked = {Guard.client_certificate_requested}
    # A server that asked waits in WAIT_CERTIFICATE: the certificate (perhaps empty) comes first (4.4.2).
    flight = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, asked)
    assert (flight.target, "CertificateRequest" in flight.send) == (State.WAIT_CERTIFICATE, True)
    with pytest.raises(UnexpectedMessage, match="Finished"):
        transition_for("server", State.WAIT_CERTIFICATE, Input.finished, asked)  # skipping the Certificate
    assert transition_for("server", State.WAIT_CERTIFICATE, Input.certificate, asked).target is State.WAIT_FINISHED
    sent = asked | {Guard.client_certificate_sent}
    verify = transition_for("server", State.WAIT_CERTIFICATE, Input.certificate, sent)
    assert verify.target is State.WAIT_CERTIFICATE_VERIFY
    tickets = transition_for("server", State.WAIT_FLIGHT2, Input.finished, {Guard.tickets_to_send})
    assert tickets.send == ("NewSessionTicket",)
    with pytest.raises(UnexpectedMessage):
        transition_for("server", State.CONNECTED, Input.new_session_ticket)
    with pytest.raises(UnexpectedMessage):
        transition_for("server", State.WAIT_FINISHED, Input.finished)  # WAIT_FINISHED only after a Certificate


@pytest.mark.parametrize("role", ROLES)
def test_key_update_answered_only_when_requested(role: str) -> None:
    assert transition_for(role, State.CONNECTED, Input.key_update).send == ()  # type: ignore[arg-type]
    asked = transition_for(role, State.CONNECTED, Input.key_update, {Guard.update_requested})  # type: ignore[arg-type]
    assert (asked.send, asked.target) == (("KeyUpdate",), State.CONNECTED)


@pytest.mark.parametrize("role", ROLES)
def test_one_change_cipher_spec_dropped_only_inside_the_window(role: str) -> None:
    droppable = {Guard.change_cipher_spec_droppable}
    start = INITIAL_STATE[role]
    with pytest.raises(UnexpectedMessage):  # before the first ClientHello
        transition_for(role, start, Input.change_cipher_spec, droppable)  # type: ignore[arg-type]
    with pytest.raises(UnexpectedMessage):  # after the peer's Finished
        transition_for(role, State.CONNECTED, Input.change_cipher_spec, droppable)  # type: ignore[arg-type]
    with pytest.raises(UnexpectedMessage, match="no ChangeCipherSpec yet"):  # a second one
        transition_for(role, State.WAIT_FINISHED, Input.change_cipher_spec)  # type: ignore[arg-type]
    assert transition_for(role, State.WAIT_FINISHED, Input.change_cipher_spec, droppable).target is State.WAIT_FINISHED  # type: ignore[arg-type]


def test_allowed_inputs_and_diagram_rows() -> None:
    assert allowed_inputs("client", State.WAIT_SERVER_HELLO, ()) == [Input.hello_retry_request, Input.server_hello]
    assert allowed_inputs("server", State.WAIT_FLIGHT2, ()) == [Input.finished]
    arrows = diagram_rows("server")
    assert (
        "WAIT_CLIENT_HELLO",
        "ClientHello [no key_share for our group] / HelloRetryRequest",
        "WAIT_SECOND_CLIENT_HELLO",
    ) in arrows
    assert all(source != target for source, _, target in arrows)
    assert len(diagram_rows("client", complete=True)) > len(diagram_rows("client"))
    with pytest.raises(ValueError):
        diagram_rows("middlebox")  # type: ignore[arg-type]


# -- real flows from OpenSSL ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from handshake_lib.pki import CoursePKI

    folder = tmp_path_factory.mktemp("tls13-states")
    files = CoursePKI.create().write_server_files(folder, ("localhost",))
    client_cert = files.pki.issue_client("course client")
    cert, key = files.pki.write_issued(client_cert, folder, "client")
    return files, cert, key


def _contexts(pki_files: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    files, _, _ = pki_files
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert_path, files.key_path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(files.ca_path)
    for context in (server, client):
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    return client, server


Views = dict[str, list[Recorded]]  # role -> the messages in the order that role sent and received them


def _record(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, session: Any = None) -> tuple[Views, Any]:
    """One real handshake plus one request and answer, as each end saw it (its own message callback)."""
    views: Views = {"client": [], "server": []}

    def on_message(conn, direction, version, content_type, msg_type, data) -> None:  # type: ignore[no-untyped-def]
        me = "server" if conn.server_side else "client"
        sender = me if direction == "write" else ("client" if me == "server" else "server")
        recorded = views[me]
        if content_type == 256:  # a record header: a ChangeCipherSpec shows only as one when received
            if data[0] == ContentType.change_cipher_spec:
                recorded.append(Recorded(sender, ContentType.change_cipher_spec))
        elif content_type == ContentType.handshake:
            recorded.append(Recorded(sender, ContentType.handshake, decode_handshake13(data, annotate=False)[0]))
        elif content_type == 257 and data == bytes([ContentType.application_data]):  # the inner content type
            recorded.append(Recorded(sender, ContentType.application_data))

    client_ctx._msg_callback = server_ctx._msg_callback = on_message  # type: ignore[attr-defined]
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, to_server, server_hostname="localhost", session=session)
    server = server_ctx.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):  # each round moves one flight each way; a handshake needs three
        for end in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        server_in.write(to_server.read())
        to_client.write(server_out.read())
    client.write(b"GET / HTTP/1.0\r\n\r\n")
    server_in.write(to_server.read())
    assert server.read(100) == b"GET / HTTP/1.0\r\n\r\n"
    server.write(b"HTTP/1.0 200 OK\r\n\r\n")
    to_client.write(server_out.read())
    assert client.read(100) == b"HTTP/1.0 200 OK\r\n\r\n"
    assert client.version() == "TLSv1.3"
    return views, client.session


def _names(flow: list[Recorded]) -> list[str]:
    return [
        type(item.message).__name__ if item.message is not None else ContentType(item.content_type).name
        for item in flow
    ]


def _ends_connected(views: Views) -> None:
    """Both roles' replays end in CONNECTED with no refusal, and each role really sent what its rows say."""
    for role, flow in views.items():
        states = replay(role, flow)  # type: ignore[arg-type]
        assert len(states) == len(flow), (role, _names(flow), states)
        assert State.ERROR not in states
        assert states[-1] is State.CONNECTED
        _check_flights(role, flow)


def _check_flights(role: str, flow: list[Recorded]) -> None:
    """Each row's ``send`` column is exactly the handshake messages ``role`` sent next (from the row's
    message, up to the next message it received).  Its own ChangeCipherSpec (the record layer's, for
    middleboxes) and application data are in no send column; OpenSSL's two tickets in a row are the one
    NewSessionTicket of the server's Finished row."""
    current: Transition | None = None
    sent: list[str] = []
    checked = 0
    for item, row in [*zip(flow, replay_rows(role, flow), strict=True), (None, None)]:  # type: ignore[arg-type]
        if item is None or item.sender != role or row is not None:
            expected = [name for name in (current.send if current is not None else ()) if name != "ApplicationData"]
            assert sent == expected, (role, current, sent)
            checked += bool(sent)
            current, sent = row, []
        if item is not None and item.sender == role and item.content_type == ContentType.handshake:
            name = _input_name(item)
            if not sent or sent[-1] != name:
                sent.append(name)
    assert checked >= 2  # at least the first flight and the Finished flight


def _input_name(item: Recorded) -> str:
    from handshake_lib.tls.messages13 import is_hello_retry_request

    if is_hello_retry_request(item.message):
        return "HelloRetryRequest"
    return {"Certificate13": "Certificate", "CertificateRequest13": "CertificateRequest"}.get(
        type(item.message).__name__, type(item.message).__name__.removesuffix("13")
    )


def test_replay_full_handshake(pki_files: Any) -> None:
    views, _ = _record(*_contexts(pki_files))
    _ends_connected(views)
    flow = views["client"]
    assert _names(flow)[:3] == ["ClientHello", "ServerHello", "change_cipher_spec"]  # OpenSSL's middlebox mode
    assert replay("client", flow)[1:3] == [State.WAIT_ENCRYPTED_EXTENSIONS, State.WAIT_ENCRYPTED_EXTENSIONS]


def test_replay_hello_retry_request(pki_files: Any) -> None:
    client, server = _contexts(pki_files)
    server.set_ecdh_curve("prime256v1")  # the server wants P-256; OpenSSL's client sends an x25519 share first
    views, _ = _record(client, server)
    _ends_connected(views)
    assert replay("client", views["client"])[1] is State.WAIT_SERVER_HELLO_AFTER_RETRY
    assert replay("server", views["server"])[0] is State.WAIT_SECOND_CLIENT_HELLO


def test_replay_client_certificate_and_a_moved_message_refused(pki_files: Any) -> None:
    client, server = _contexts(pki_files)
    files, cert, key = pki_files
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(files.ca_path)
    client.load_cert_chain(cert, key)
    views, _ = _record(client, server)
    _ends_connected(views)
    flow = views["server"]
    assert "CertificateRequest13" in _names(flow)
    assert State.WAIT_CERTIFICATE_VERIFY in replay("server", flow)
    # The client's Certificate moved after its CertificateVerify: the server refuses the CertificateVerify.
    at = next(i for i, item in enumerate(flow) if item.sender == "client" and isinstance(item.message, Certificate13))
    moved = [*flow[:at], flow[at + 1], flow[at], *flow[at + 2 :]]
    assert replay("server", moved) == [*replay("server", flow)[:at], State.ERROR]


def test_replay_psk_resumption(pki_files: Any) -> None:
    client, server = _contexts(pki_files)
    _, session = _record(client, server)
    views, _ = _record(client, server, session=session)
    _ends_connected(views)
    flow = views["client"]
    server_hello = next(item.message for item in flow if type(item.message).__name__ == "ServerHello")
    assert server_hello.extension(ExtensionType.pre_shared_key) is not None
    assert "Certificate13" not in _names(flow)
    # Its ServerHello moved after the EncryptedExtensions: the client refuses the EncryptedExtensions.
    assert _names(flow)[:4] == ["ClientHello", "ServerHello", "change_cipher_spec", "EncryptedExtensions"]
    moved = [flow[0], flow[2], flow[3], flow[1], *flow[4:]]
    assert replay("client", moved) == [State.WAIT_SERVER_HELLO, State.WAIT_SERVER_HELLO, State.ERROR]


def test_replay_key_update_synthetic_after_a_real_handshake(pki_files: Any) -> None:
    views, _ = _record(*_contexts(pki_files))
    asked = KeyUpdate(KeyUpdateRequest.update_requested)
    answer = KeyUpdate(KeyUpdateRequest.update_not_requested)
    ku = ContentType.handshake
    after = [
        Recorded("client", ku, asked),  # the client's update_keys(), asking for the server's
        Recorded("server", ku, answer),
        Recorded("server", ku, asked),  # the server's own, later, asking again
        Recorded("client", ku, answer),
    ]
    both = {role: [*flow, *after] for role, flow in views.items()}
    _ends_connected(both)
    row = transition_for("server", State.CONNECTED, Input.key_update, {Guard.update_requested})
    assert isinstance(row, Transition) and row.send == ("KeyUpdate",)


def test_replay_refuses_a_second_change_cipher_spec(pki_files: Any) -> None:
    flow = _record(*_contexts(pki_files))[0]["client"]
    ccs = next(i for i, item in enumerate(flow) if item.content_type == ContentType.change_cipher_spec)
    twice = [*flow[: ccs + 1], flow[ccs], *flow[ccs + 1 :]]
    assert replay("client", twice)[-1] is State.ERROR


def test_refine_returns_the_row_itself_when_nothing_more_holds() -> None:
    row = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello)
    assert refine("server", row, ()) is row


def test_replay_zero_rtt_synthetic_both_roles() -> None:
    """0-RTT has no real flow here (Python ``ssl`` cannot send early data); a sequence of our own messages."""
    from handshake_lib.tls.extensions import EarlyDataExtension, PreSharedKeyServerHelloExtension
    from handshake_lib.tls.messages import ClientHello, Finished, ServerHello
    from handshake_lib.tls.messages13 import EncryptedExtensions, EndOfEarlyData, NewSessionTicket13

    hs, data = ContentType.handshake, ContentType.application_data
    eoed = Recorded("client", hs, EndOfEarlyData())
    client_finished = Recorded("client", hs, Finished(bytes(32)))
    flow = [
        Recorded("client", hs, ClientHello(extensions=[EarlyDataExtension()])),
        Recorded("client", data),  # 0-RTT
        Recorded("server", hs, ServerHello(extensions=[PreSharedKeyServerHelloExtension(0)])),
        Recorded("server", hs, EncryptedExtensions([EarlyDataExtension()])),
        Recorded("server", hs, Finished(bytes(32))),
        eoed,
        client_finished,
        Recorded("server", hs, NewSessionTicket13()),
    ]
    # The server answers the ClientHello before it reads the early data that followed it.
    server_view = [flow[0], *flow[2:5], flow[1], *flow[5:]]
    _ends_connected({"client": flow, "server": server_view})
    assert replay("server", server_view)[:5] == [State.WAIT_END_OF_EARLY_DATA] * 5
    assert replay("client", flow)[4] is State.CONNECTED
    # The client's Finished before its EndOfEarlyData: the server refuses the Finished.
    assert replay("server", [*server_view[:5], client_finished, eoed])[-1] is State.ERROR
