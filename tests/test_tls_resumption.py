"""Session resumption by session ID (RFC 5246 7.4.1.2), judged by OpenSSL on both sides.

Our client resumes with OpenSSL's server (Python ``ssl``: OpenSSL's own ``session_reused`` must say True,
and its key log must hold the same master secret for both connections); ``openssl s_client -sess_out`` /
``-sess_in`` resumes with our server ("Reused, TLSv1.2").  In memory: the cache's bounds, the EMS rule
of RFC 7627 section 5.3, and a resumption with another suite refused (RFC 5246 7.4.1.3).
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from dataclasses import replace

import pytest
from conftest import require

from handshake_lib.errors import HandshakeFailure, IllegalParameter, UnexpectedMessage
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, http_page_handler, server_context
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import CipherSuite, ContentType, ExtensionType, HandshakeType
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.pair import PairKeys
from handshake_lib.tls.server import TLSServer
from handshake_lib.tls.sessions import ClientSessionStore, Session, SessionCache
from handshake_lib.tls.states import Guard, Input, State, refine, replay, transition_for
from handshake_lib.tls.tickets import TicketKeys

TIMEOUT = 10


# -- in memory: our client and our server ---------------------------------------------------------
@pytest.fixture(scope="module")
def keys() -> PairKeys:
    return PairKeys.fresh()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(client: TLSClient, server: TLSServer) -> None:
    client.start()
    for _ in range(16):
        data = client.data_to_send()
        if data:
            server.receive_data(data)
        answer = server.data_to_send()
        if answer:
            client.receive_data(answer)
        if not data and not answer:
            break


def pair(keys: PairKeys, cache: SessionCache, clock: Clock, session: Session | None = None, **client_options):
    client = TLSClient(keys.server_name, trusted_certificates=keys.trusted, session=session, **client_options)
    server = TLSServer(keys.chain, keys.private_key, session_cache=cache, clock=clock)
    run(client, server)
    return client, server


def handshake_types(connection) -> list[str]:
    return [
        HandshakeType(m.handshake_type).name
        for entry in connection.transcript
        if entry.content_type == ContentType.handshake
        for m in entry.messages
    ]


def test_a_cached_session_resumes_with_the_same_master_secret_and_new_keys(keys) -> None:
    cache, clock = SessionCache(), Clock()
    first_client, first_server = pair(keys, cache, clock)
    first = first_client.handshake
    assert first is not None and not first.resumed and first.session is not None
    assert len(first.session.session_id) == 32 and first.session.session_id in cache
    client, server = pair(keys, cache, clock, session=first.session)
    assert client.handshake.resumed and server.handshake.resumed
    assert client.handshake.master_secret == first.master_secret == server.handshake.master_secret
    assert client.handshake.key_block != first.key_block  # new randoms, new keys
    # The abbreviated handshake: no Certificate, no key exchange; the server finishes first.
    assert handshake_types(client) == ["client_hello", "server_hello", "finished", "finished"]
    assert [e.content_type for e in server.transcript if e.direction == "server->client"] == [
        ContentType.handshake, ContentType.change_cipher_spec, ContentType.handshake,
    ]  # fmt: skip
    # The tables walk the same transcript to CONNECTED, for both roles.
    assert replay("client", client.transcript)[-1] is State.CONNECTED
    assert replay("server", server.transcript)[-1] is State.CONNECTED
    # Data flows with the resumed keys.
    client.send_application_data(b"ping")
    events = server.receive_data(client.data_to_send())
    assert any(getattr(e, "data", None) == b"ping" for e in events)


def test_an_unknown_or_expired_session_gets_a_full_handshake(keys) -> None:
    cache, clock = SessionCache(lifetime=60), Clock()
    first, _ = pair(keys, cache, clock)
    session = first.handshake.session
    forged = replace(session, session_id=bytes(32))
    client, _ = pair(keys, cache, clock, session=forged)
    assert client.handshake is not None and not client.handshake.resumed
    assert client.handshake.master_secret != session.master_secret
    clock.now += 60  # the lifetime is over
    client, _ = pair(keys, cache, clock, session=session)
    assert client.handshake is not None and not client.handshake.resumed
    assert "certificate" in handshake_types(client)


def test_the_server_does_not_resume_a_session_whose_suite_the_client_no_longer_offers(keys) -> None:
    cache, clock = SessionCache(), Clock()
    first, _ = pair(keys, cache, clock, cipher_suites=RSA_DEFAULT_SUITES)
    session = first.handshake.session
    others = [s for s in RSA_DEFAULT_SUITES if s != session.cipher_suite]
    client, _ = pair(keys, cache, clock, session=session, cipher_suites=others)
    assert client.handshake is not None and not client.handshake.resumed  # RFC 5246 7.4.1.2: full handshake
    assert client.handshake.cipher_suite in others


def test_a_resumed_handshake_writes_its_key_log_line_and_a_session_stays_with_its_server(keys) -> None:
    cache, clock = SessionCache(), Clock()
    first, _ = pair(keys, cache, clock)
    lines: list[str] = []
    client, _ = pair(keys, cache, clock, session=first.handshake.session, keylog=lines.append)
    assert client.handshake.resumed
    assert lines == [f"CLIENT_RANDOM {client.client_random.hex()} {first.handshake.master_secret.hex()}"]
    with pytest.raises(ValueError, match="cannot be offered"):
        TLSClient("other.example", trusted_certificates=keys.trusted, session=first.handshake.session)


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = SessionCache(max_entries=2, lifetime=10)
    sessions = [Session(bytes([i]) * 32, bytes(48), CipherSuite(0x009C), True) for i in range(3)]
    cache.store(sessions[0], 0)
    cache.store(sessions[1], 0)
    assert cache.get(sessions[0].session_id, 1) == sessions[0]  # 0 is now the most recently used
    cache.store(sessions[2], 1)
    assert len(cache) == 2 and sessions[1].session_id not in cache and sessions[0].session_id in cache
    assert cache.get(sessions[2].session_id, 11) is None and sessions[2].session_id not in cache  # expired


@pytest.mark.parametrize("first_ems", [True, False])
def test_ems_must_match_or_the_server_does_a_full_handshake(keys, first_ems) -> None:
    # RFC 7627 section 5.3: neither a session with EMS resumed without it, nor the other way round.
    cache, clock = SessionCache(), Clock()
    first, _ = pair(keys, cache, clock, extended_master_secret=first_ems)
    assert first.handshake.extended_master_secret is first_ems
    client, _ = pair(keys, cache, clock, session=first.handshake.session, extended_master_secret=not first_ems)
    assert client.handshake is not None and not client.handshake.resumed
    assert client.handshake.master_secret != first.handshake.master_secret


@pytest.mark.parametrize("first_ems", [True, False])
def test_our_client_aborts_a_resumption_whose_ems_differs(keys, first_ems) -> None:
    # The server resumes (its cache and the new hello agree), but the session the client kept says the
    # other EMS flag: the client must abort rather than resume on other terms.
    cache, clock = SessionCache(), Clock()
    first, _ = pair(keys, cache, clock, extended_master_secret=first_ems)
    kept = replace(first.handshake.session, extended_master_secret=not first_ems)
    with pytest.raises(HandshakeFailure, match="RFC 7627"):
        pair(keys, cache, clock, session=kept, extended_master_secret=first_ems)


def test_our_client_refuses_a_resumption_with_another_suite(keys) -> None:
    cache, clock = SessionCache(), Clock()
    first, _ = pair(keys, cache, clock, cipher_suites=RSA_DEFAULT_SUITES)
    session = first.handshake.session
    other = next(s for s in RSA_DEFAULT_SUITES if s != session.cipher_suite)
    cache.store(replace(session, cipher_suite=other), clock.now)  # the server resumes with another suite
    with pytest.raises(IllegalParameter, match="7.4.1.3"):
        pair(keys, cache, clock, session=session, cipher_suites=RSA_DEFAULT_SUITES)


def test_the_client_session_store_can_be_inspected_and_cleared(keys) -> None:
    cache, clock = SessionCache(), Clock()
    client, _ = pair(keys, cache, clock)
    store = ClientSessionStore()
    store.store("localhost", client.handshake.session)
    assert [(name, s.resumable_by) for name, s in store] == [("localhost", "session ID")]
    assert client.handshake.master_secret.hex() not in repr(store.get("localhost"))
    assert repr(client.handshake.master_secret) not in repr(store.get("localhost"))
    resumed, _ = pair(keys, cache, clock, session=store.get("localhost"))
    assert resumed.handshake.resumed
    store.clear()
    assert len(store) == 0 and store.get("localhost") is None


# -- our client, OpenSSL's server -----------------------------------------------------------------
def test_our_client_resumes_with_openssl_which_says_session_reused(server_files, tmp_path) -> None:
    keylog = tmp_path / "openssl.log"
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog,
    )  # fmt: skip
    context.options |= ssl.OP_NO_TICKET  # by session ID: OpenSSL's server-side cache
    reused: list[bool] = []
    page = http_page_handler()

    def handler(tls: ssl.SSLSocket) -> None:
        reused.append(tls.session_reused)  # OpenSSL's own view of the handshake
        page(tls)
        # A session OpenSSL did not shut down cleanly (close_notify sent) is dropped from its cache.
        with contextlib.suppress(OSError, ssl.SSLError):
            tls.unwrap()

    with PythonSSLServer(context, handler) as server:
        url = f"https://localhost:{server.port}/"
        first = tls_get(url, cafile=server_files.ca_path)
        second = tls_get(url, cafile=server_files.ca_path, session=first.handshake.session)
    assert first.status == second.status == 200
    assert reused == [False, True]
    assert not first.handshake.resumed and second.handshake.resumed
    assert second.handshake.master_secret == first.handshake.master_secret
    # OpenSSL logged the same master secret under both client randoms.
    logged = read_keylog(keylog)
    secrets = {logged.master_secret(h.client_random) for h in (first.handshake, second.handshake)}
    assert secrets == {first.handshake.master_secret}


# -- OpenSSL's client, our server -----------------------------------------------------------------
def s_client(server_files, port: int, *options: str) -> str:
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-no_ticket",
        "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost", "-ign_eof",
        *options,
    ]  # fmt: skip
    result = subprocess.run(
        command, input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


def test_openssl_s_client_resumes_with_our_server(server_files, tmp_path) -> None:
    issued = server_files.issued
    saved = tmp_path / "session.pem"
    cache = SessionCache()
    import time  # the net layer's clock; the core is handed it

    with TLSPageServer(
        [issued.certificate], issued.private_key, timeout=TIMEOUT, session_cache=cache, clock=time.monotonic
    ) as server:
        first = s_client(server_files, server.port, "-sess_out", str(saved))
        second = s_client(server_files, server.port, "-sess_in", str(saved))
    assert "New, TLSv1.2" in first and "HTTP/1.1 200 OK" in first
    assert "Reused, TLSv1.2" in second and "HTTP/1.1 200 OK" in second
    assert len(cache) == 1
    # The same ID both times: s_client's "Session-ID:" line.
    ids = [line for text in (first, second) for line in text.splitlines() if "Session-ID:" in line]
    assert len(ids) == 2 and ids[0] == ids[1]


# -- tickets (RFC 5077) ---------------------------------------------------------------------------
def ticket_pair(keys: PairKeys, tickets: TicketKeys, clock: Clock, session: Session | None = None):
    client = TLSClient(keys.server_name, trusted_certificates=keys.trusted, session=session, session_ticket=True)
    server = TLSServer(keys.chain, keys.private_key, ticket_keys=tickets, clock=clock)
    run(client, server)
    return client, server


def test_a_ticket_resumes_without_any_server_cache(keys) -> None:
    tickets, clock = TicketKeys(lifetime=600), Clock()
    first, _ = ticket_pair(keys, tickets, clock)
    session = first.handshake.session
    assert session is not None and session.ticket and session.resumable_by == "ticket"
    assert session.ticket_lifetime_hint == 600 and session.session_id == b""  # no cache: no ID
    assert "new_session_ticket" in handshake_types(first)
    client, server = ticket_pair(keys, tickets, clock, session=session)
    assert client.handshake.resumed and server.resumed_by == "ticket"
    assert client.handshake.master_secret == server.handshake.master_secret == first.handshake.master_secret
    # ServerHello, a renewed NewSessionTicket, then Finished: the abbreviated flight with a ticket.
    assert handshake_types(client) == ["client_hello", "server_hello", "new_session_ticket", "finished", "finished"]
    assert client.handshake.session.ticket != session.ticket  # renewed (fresh IV)
    assert replay("client", client.transcript)[-1] is State.CONNECTED
    assert replay("server", server.transcript)[-1] is State.CONNECTED


@pytest.mark.parametrize("position", [0, 20, 40, -1], ids=["key_name", "iv", "state", "mac"])
def test_a_tampered_ticket_gives_a_full_handshake_never_an_error(keys, position) -> None:
    tickets, clock = TicketKeys(), Clock()
    first, _ = ticket_pair(keys, tickets, clock)
    ticket = bytearray(first.handshake.session.ticket)
    ticket[position] ^= 0x01
    client, server = ticket_pair(keys, tickets, clock, session=replace(first.handshake.session, ticket=bytes(ticket)))
    assert client.handshake is not None and not client.handshake.resumed and server.resumed_by is None
    assert client.handshake.master_secret != first.handshake.master_secret
    assert "certificate" in handshake_types(client)


def test_ticket_keys_rotate_and_old_tickets_expire(keys) -> None:
    tickets, clock = TicketKeys(lifetime=100, rotate_after=50), Clock()
    first, _ = ticket_pair(keys, tickets, clock)
    old_name = first.handshake.session.ticket[:16]
    clock.now += 60  # a new key seals from now on; the old one still opens
    second, _ = ticket_pair(keys, tickets, clock, session=first.handshake.session)
    assert second.handshake.resumed
    assert second.handshake.session.ticket[:16] != old_name and len(tickets.keys) == 2
    clock.now += 45  # the first ticket is 105 s old: past its lifetime, though its key is still kept
    third, _ = ticket_pair(keys, tickets, clock, session=first.handshake.session)
    assert not third.handshake.resumed
    # Another server's keys (or a restart) cannot open our tickets.
    stranger, _ = ticket_pair(keys, TicketKeys(), clock, session=second.handshake.session)
    assert not stranger.handshake.resumed


def test_our_client_resumes_by_ticket_with_openssl(server_files, tmp_path) -> None:
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )  # fmt: skip
    assert not context.options & ssl.OP_NO_TICKET  # OpenSSL issues tickets by default
    reused: list[bool] = []
    page = http_page_handler()

    def handler(tls: ssl.SSLSocket) -> None:
        reused.append(tls.session_reused)
        page(tls)

    with PythonSSLServer(context, handler) as server:
        url = f"https://localhost:{server.port}/"
        first = tls_get(url, cafile=server_files.ca_path, session_ticket=True)
        session = first.handshake.session
        assert session is not None and session.ticket
        second = tls_get(url, cafile=server_files.ca_path, session=session)
    assert reused == [False, True]
    assert second.handshake.resumed and second.handshake.master_secret == first.handshake.master_secret
    # What resumed it was the ticket, handed back in the extension with a fresh session ID (RFC 5077 3.4).
    (hello,) = [m for e in second.transcript for m in e.messages if getattr(m, "handshake_type", 0) == 1]
    assert hello.extension(ExtensionType.session_ticket).ticket == session.ticket
    assert len(hello.session_id) == 32 and hello.session_id != session.session_id


def test_openssl_s_client_resumes_by_ticket_with_our_server(server_files, tmp_path) -> None:
    issued = server_files.issued
    saved = tmp_path / "ticket.pem"
    tickets = TicketKeys()
    import time  # the net layer's clock; the core is handed it

    with TLSPageServer(
        [issued.certificate], issued.private_key, timeout=TIMEOUT, ticket_keys=tickets, clock=time.monotonic
    ) as server:
        first = s_client_tickets(server_files, server.port, "-sess_out", str(saved))
        second = s_client_tickets(server_files, server.port, "-sess_in", str(saved))
    assert "New, TLSv1.2" in first and "TLS session ticket lifetime hint: 7200 (seconds)" in first
    assert "Reused, TLSv1.2" in second and "HTTP/1.1 200 OK" in second


def s_client_tickets(server_files, port: int, *options: str) -> str:
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2",
        "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost", "-ign_eof",
        *options,
    ]  # fmt: skip
    result = subprocess.run(
        command, input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


# -- the tables ---------------------------------------------------------------------------------------
def test_after_a_resumed_server_hello_the_client_table_has_no_certificate_row() -> None:
    row = transition_for("client", State.WAIT_SERVER_HELLO, Input.server_hello, {Guard.session_resumed})
    assert row.target is State.WAIT_CHANGE_CIPHER_SPEC
    # A server that echoes our ID and then sends its certificate anyway is breaking the protocol.
    with pytest.raises(UnexpectedMessage, match="Certificate is not allowed"):
        transition_for("client", row.target, Input.certificate, {Guard.session_resumed})
    finished = transition_for("client", State.WAIT_FINISHED, Input.finished, {Guard.session_resumed})
    assert finished.send == ("ChangeCipherSpec", "Finished")
    # The server's abbreviated flight, with and without a new ticket, refined from its full-handshake twin.
    full = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, {Guard.client_certificate_requested})
    resumed = refine("server", full, {Guard.session_resumed, Guard.ticket_to_send})
    assert resumed.send == ("ServerHello", "NewSessionTicket", "ChangeCipherSpec", "Finished")
    assert refine("server", full, {Guard.session_resumed}).send == ("ServerHello", "ChangeCipherSpec", "Finished")


def test_a_full_handshake_with_a_ticket_replays_to_connected(keys) -> None:
    client, server = ticket_pair(keys, TicketKeys(), Clock())
    assert [e.content_type for e in server.transcript if e.direction == "server->client"][-3:] == [
        ContentType.handshake, ContentType.change_cipher_spec, ContentType.handshake,
    ]  # fmt: skip
    assert handshake_types(server)[-3:] == ["finished", "new_session_ticket", "finished"]
    assert replay("server", server.transcript)[-1] is State.CONNECTED
    assert replay("client", client.transcript)[-1] is State.CONNECTED


def test_openssl_s_client_reconnect_resumes_five_times_with_our_server(server_files) -> None:
    issued = server_files.issued
    import time  # the net layer's clock; the core is handed it

    with TLSPageServer(
        [issued.certificate], issued.private_key, timeout=TIMEOUT, session_cache=SessionCache(), clock=time.monotonic
    ) as server:
        output = s_client(server_files, server.port, "-reconnect")
    outcomes = [line.split(",")[0] for line in output.splitlines() if line.startswith(("New, TLSv1.2", "Reused, "))]
    assert outcomes == ["New"] + ["Reused"] * 5


def test_a_renewed_ticket_keeps_the_time_its_session_was_made(keys) -> None:
    # Resuming renews the ticket, but not the session's life: RFC 5077 4 puts the session state, its
    # creation time included, in the ticket, and OpenSSL keeps a TLS 1.2 session's time across renewals.
    tickets, clock = TicketKeys(lifetime=100, rotate_after=1000), Clock()
    first, _ = ticket_pair(keys, tickets, clock)
    clock.now += 90
    renewed, _ = ticket_pair(keys, tickets, clock, session=first.handshake.session)
    assert renewed.handshake.resumed and renewed.handshake.session.ticket != first.handshake.session.ticket
    clock.now += 20  # 110 s after the full handshake, 20 s after the renewal
    late, _ = ticket_pair(keys, tickets, clock, session=renewed.handshake.session)
    assert not late.handshake.resumed and "certificate" in handshake_types(late)


def test_a_ticket_issued_on_a_resumption_by_id_dates_from_the_full_handshake(keys) -> None:
    cache, tickets, clock = SessionCache(lifetime=300), TicketKeys(lifetime=500, rotate_after=1000), Clock()

    def connect(session=None, ask_ticket=False):
        client = TLSClient(keys.server_name, trusted_certificates=keys.trusted, session=session,
                           session_ticket=ask_ticket)  # fmt: skip
        server = TLSServer(keys.chain, keys.private_key, session_cache=cache, ticket_keys=tickets, clock=clock)
        run(client, server)
        return client, server

    first, _ = connect()  # by ID only, at 1000
    clock.now += 200
    by_id, server = connect(first.handshake.session, ask_ticket=True)  # resumed by ID, and given a ticket
    assert server.resumed_by == "session ID" and by_id.handshake.session.ticket
    clock.now += 250  # 450 s after the full handshake: the ticket is good
    by_ticket, server = connect(by_id.handshake.session)
    assert server.resumed_by == "ticket"
    clock.now += 60  # 510 s after the full handshake, only 310 s after the ticket was sealed
    late, server = connect(by_id.handshake.session)
    assert server.resumed_by is None and not late.handshake.resumed
