"""Lesson 11 (resumption and renewal, TLS 1.2): its live runs against OpenSSL, its widgets and pictures.

Resumption is judged by OpenSSL too: every visit's ``session_reused`` (OpenSSL's own view) must agree with
ours, and a resumed handshake must carry the master secret of the full one it resumes.  Tickets: our
server's opened field by field with its keys, OpenSSL's refused by them (it lays its tickets out its own way).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons import renewal as lesson  # noqa: E402
from handshake_lib.peers import BackgroundPeer  # noqa: E402
from handshake_lib.peers.renewal_runs import (  # noqa: E402
    handshake_time,
    openssl_resumption_server,
    round_trips,
)
from handshake_lib.tls.constants import ContentType, HandshakeType  # noqa: E402
from handshake_lib.tls.tickets import explain_ticket  # noqa: E402


@pytest.fixture(scope="module")
def comparison() -> lesson.ResumptionComparison:
    return lesson.compare_resumption(2)


@pytest.fixture(scope="module")
def our_ticket() -> lesson.ServerTicket:
    return lesson.ticket_from_our_server()


def handshake_names(response) -> list[str]:
    return [
        HandshakeType(message.handshake_type).name
        for entry in response.transcript
        if entry.content_type == ContentType.handshake
        for message in entry.messages
    ]


# -- resumption with OpenSSL ------------------------------------------------------------------------
def test_full_id_and_ticket_handshakes_agree_with_openssl(comparison) -> None:
    assert [run.kind for run in comparison.runs] == ["full", "session ID", "ticket"]
    for run in comparison.runs:
        assert len(run.visits) == 2 and run.all_agree  # OpenSSL's session_reused says the same as we do
    assert [run.round_trips for run in comparison.runs] == [2, 1, 1]
    full, by_id, by_ticket = (run.response for run in comparison.runs)
    assert "certificate" in handshake_names(full) and "client_key_exchange" in handshake_names(full)
    for resumed in (by_id, by_ticket):
        assert handshake_names(resumed)[:2] == ["client_hello", "server_hello"]
        assert "certificate" not in handshake_names(resumed) and "client_key_exchange" not in handshake_names(resumed)
    # The resumed handshakes kept one master secret (the session's); new randoms gave new key blocks.
    ids = [visit.response.handshake for visit in comparison.by_session_id.visits]
    assert ids[0].master_secret == ids[1].master_secret and ids[0].key_block != ids[1].key_block
    fulls = [visit.response.handshake for visit in comparison.full.visits]
    assert fulls[0].master_secret != fulls[1].master_secret
    assert len(comparison.openssl_ticket) > 16 + 16 + 32  # key name, IV, state, HMAC
    table = comparison.table()
    assert "saved by resuming" in table and table.count("True") == 3


def test_the_measures_read_the_transcript_and_the_clock(comparison) -> None:
    response = comparison.full.response
    first_data = next(i for i, e in enumerate(response.transcript) if e.content_type == ContentType.application_data)
    stamps = {index: moment for moment, _, index in response.timings}
    assert handshake_time(response.transcript, response.timings) == stamps[first_data] - stamps[0]
    assert round_trips(response.transcript[:1] + response.transcript[1:]) == 2
    with pytest.raises(ValueError, match="no application data"):
        round_trips(response.transcript[:3])


def test_hello_fields_say_how_a_ticket_resumption_is_recognised(comparison) -> None:
    text = lesson.hello_fields(comparison.by_ticket.response)
    hello = next(m for e in comparison.by_ticket.response.transcript for m in e.messages)
    # RFC 5077 3.4: the client makes up a session ID; the server echoes it to say "resumed".
    assert f"ClientHello session_id: 32 bytes {hello.session_id.hex()[:16]}" in text
    assert f"ServerHello session_id: 32 bytes {hello.session_id.hex()[:16]}" in text
    assert f"session_ticket extension: {len(comparison.openssl_ticket)} bytes" in text  # OpenSSL's ticket, back
    assert "ChangeCipherSpec (resumed" in text
    assert "Certificate (a full handshake)" in lesson.hello_fields(comparison.full.response)


def test_the_three_ladders_share_one_clock(comparison) -> None:
    figure = lesson.resumption_sequences(comparison)
    axes = figure.axes
    assert len(axes) == 3 and len({ax.get_ylim() for ax in axes}) == 1
    assert "2 round trip" in axes[0].get_title() and "1 round trip" in axes[2].get_title()
    labels = [" ".join(c.get_text() for c in ax.get_children() if hasattr(c, "xyann")) for ax in axes]
    assert "Certificate" in labels[0] and "ClientKeyExchange" in labels[0]
    for resumed in labels[1:]:  # the abbreviated flights: no certificate, no key exchange
        assert "ServerHello, ChangeCipherSpec, {Finished}" in resumed and "Certificate" not in resumed
        assert "KeyExchange" not in resumed


# -- the session store widget ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def store_view():
    peer = BackgroundPeer(openssl_resumption_server)
    view = lesson.SessionStoreView(peer)
    yield view
    peer.stop()


def test_the_store_is_used_shown_and_cleared(store_view) -> None:
    first = store_view.visit(tickets=True)
    assert first is not None and not first.resumed and first.openssl_reused is False
    assert "ticket of" in store_view.store_html.value
    # OpenSSL issues a ticket instead of an ID: its ServerHello's session_id is empty (nothing to look up).
    assert "ServerHello session_id: empty" in lesson.hello_fields(first.response)
    second = store_view.visit()
    assert second is not None and second.resumed and second.offered == "ticket" and second.openssl_reused is True
    # Without the extension a ticket cannot be offered: a full handshake, and a session ID is kept instead.
    third = store_view.visit(tickets=False)
    assert third is not None and not third.resumed and "session ID" in store_view.store_html.value
    fourth = store_view.visit()
    assert fourth is not None and fourth.resumed and fourth.offered == "session ID"
    store_view.clear()
    assert "empty" in store_view.store_html.value and len(store_view.store) == 0
    fifth = store_view.visit()
    assert fifth is not None and not fifth.resumed
    log = store_view.log_html.value.splitlines()
    assert "resumed (session ID)" in log[-2] and ": full, 2 round trip(s)" in log[-1]
    master = fifth.response.handshake.master_secret.hex()
    assert master not in store_view.store_html.value  # never printed


def test_the_store_widget_refuses_a_bad_argument_before_changing_anything(store_view) -> None:
    before = (store_view.tickets.value, store_view.store_html.value, store_view.log_html.value, len(store_view.visits))
    with pytest.raises(TypeError, match="tickets must be True or False"):
        store_view.visit(tickets="yes")  # type: ignore[arg-type]
    after = (store_view.tickets.value, store_view.store_html.value, store_view.log_html.value, len(store_view.visits))
    assert after == before


def test_the_store_widget_says_so_when_its_server_is_gone() -> None:
    peer = BackgroundPeer(openssl_resumption_server)
    view = lesson.SessionStoreView(peer)
    server = peer.get()
    server.url = "https://localhost:9/"  # nothing listens on the discard port
    assert view.visit() is None and "the visit failed" in view.log_html.value
    peer.stop()


# -- the ticket, both ways ------------------------------------------------------------------------------
def test_our_servers_ticket_opens_with_its_keys_and_holds_the_master_secret(our_ticket) -> None:
    assert our_ticket.resumed.resumed
    client_view = explain_ticket(our_ticket.ticket)
    assert [s.field for s in client_view.spans] == ["ticket"] and not client_view.opened
    server_view = explain_ticket(our_ticket.ticket, our_ticket.keys, our_ticket.now)
    leaves = [s for s in server_view.spans if not s.is_group]
    assert [s.field for s in leaves] == [
        "ticket.key_name", "ticket.iv", "ticket.encrypted_state.length", "ticket.encrypted_state", "ticket.mac",
    ]  # fmt: skip
    assert sum(s.length for s in leaves) == len(our_ticket.ticket)
    assert server_view.opened and server_view.session.master_secret == our_ticket.full.master_secret
    master = next(s for s in server_view.state_spans if s.field == "state.master_secret")
    assert server_view.state[master.offset : master.offset + 48] == our_ticket.full.master_secret
    assert server_view.session.cipher_suite == our_ticket.full.cipher_suite


@pytest.mark.parametrize(
    ("position", "reason"), [(0, "key we do not have"), (40, "MAC does not verify"), (-1, "MAC does not verify")]
)
def test_an_altered_ticket_is_refused_with_a_reason(our_ticket, position, reason) -> None:
    ticket = bytearray(our_ticket.ticket)
    ticket[position] ^= 1
    view = explain_ticket(bytes(ticket), our_ticket.keys, our_ticket.now)
    assert not view.opened and reason in view.reason


def test_openssls_ticket_is_not_laid_out_as_ours(comparison, our_ticket) -> None:
    view = explain_ticket(comparison.openssl_ticket, our_ticket.keys, our_ticket.now)
    assert not view.opened and "not laid out" in view.reason
    widget = lesson.ticket_views(our_ticket, comparison.openssl_ticket)
    assert (
        len(widget.children) == 5 and "True" in widget.children[3].value and "not laid out" in widget.children[4].value
    )
    with pytest.raises(ValueError, match="clock"):
        explain_ticket(our_ticket.ticket, our_ticket.keys)


# -- the 2009 attack, drawn -------------------------------------------------------------------------------
def test_the_attack_pictures_show_the_splice_and_the_refusal() -> None:
    figure = lesson.attack_sequences()
    left, right = figure.axes
    texts = lambda ax: [t.get_text() for t in ax.texts]  # noqa: E731
    assert [t for t in texts(left) if t in ("victim", "attacker", "server")] == ["victim", "attacker", "server"]
    left_labels = " ".join(a.get_text() for a in left.texts + [c for c in left.get_children() if hasattr(c, "xyann")])
    right_labels = " ".join(c.get_text() for c in right.get_children() if hasattr(c, "xyann"))
    assert "Cookie" in left_labels and "handshake_failure" not in left_labels
    assert "handshake_failure" in right_labels and "Cookie" not in right_labels


# -- the 2009 attack, live ---------------------------------------------------------------------------------
def test_openssl_refuses_the_spliced_hello_as_rfc_5746_says() -> None:
    outcome = lesson.splice_against_openssl()
    # The victim's first hello carries an empty renegotiation_info; OpenSSL expected the attacker's Finished.
    assert outcome.victim_renegotiation_info == b"" and len(outcome.attacker_finished) == 12
    assert outcome.alert == "handshake_failure" and outcome.fatal
    assert "RENEGOTIATION_MISMATCH" in outcome.server_error
    assert "handshake_failure (fatal" in outcome.summary()


def test_openssl_by_default_declines_any_client_renegotiation_with_a_warning() -> None:
    outcome = lesson.splice_against_openssl(allow_client_renegotiation=False)
    assert outcome.alert == "no_renegotiation" and not outcome.fatal and outcome.server_error == ""


# -- renegotiation on one long connection ----------------------------------------------------------------
@pytest.fixture(scope="module")
def long_connection() -> lesson.RenegotiationRun:
    return lesson.renegotiate_with_openssl()


def test_a_renegotiated_connection_changes_keys_at_each_new_change_cipher_spec(long_connection) -> None:
    run = long_connection
    assert run.refused == "" and [h.renegotiation for h in run.handshakes] == [0, 1]
    assert run.pages == [
        b"<!doctype html><title>renewal</title><p>OpenSSL answered /before</p>",
        b"<!doctype html><title>renewal</title><p>OpenSSL answered /after</p>",
    ]  # application data before and after, on one connection
    first, second = run.handshakes
    assert first.key_block != second.key_block and first.master_secret != second.master_secret
    rows = run.records()
    protected = [row for row in rows if row.keys_of is not None]
    assert protected and all(row.opens_with_its_keys for row in protected)  # each opens with its own keys
    renewed = [row for row in protected if row.keys_of == 1]
    assert renewed and all(row.opens_with_previous_keys is False for row in renewed)  # and not with the old ones
    for direction in ("client->server", "server->client"):
        mine = [row for row in rows if row.entry.direction == direction]
        changes = [row for row in mine if row.entry.content_type == ContentType.change_cipher_spec]
        assert len(changes) == 2 and changes[1].keys_of == 0  # the new CCS still travels under the old keys
        after = mine[mine.index(changes[1]) + 1]
        assert after.keys_of == 1 and after.sequence_number == 0  # new keys, sequence numbers from 0
        kinds = {row.keys_of for row in mine if row.entry.content_type == ContentType.application_data}
        assert kinds == {0, 1}  # application data under both handshakes' keys
    # The renegotiation's own hello travels encrypted, under the first handshake's keys.
    hellos = [row for row in rows if any(type(m).__name__ == "ClientHello" for m in row.entry.messages)]
    assert [(row.entry.encrypted, row.keys_of) for row in hellos] == [(False, None), (True, 0)]
    table = lesson.records_table(rows).value
    assert table.count("<tr") == len(rows) + 1 and "handshake 2, seq 0" in table and "fails" in table


def test_renegotiation_info_carries_the_previous_finished(long_connection) -> None:
    text = lesson.binding_check(long_connection.transcript)
    assert "MISMATCH" not in text and text.count("(a first handshake)") == 2
    assert "= client verify_data above" in text and "= client + server verify_data above" in text
    finished = [
        (e.direction, m.verify_data)
        for e in long_connection.transcript
        for m in e.messages
        if type(m).__name__ == "Finished"
    ]
    client_first, server_first = finished[0][1], finished[1][1]
    if finished[0][0] != "client->server":
        client_first, server_first = server_first, client_first
    assert f"ServerHello renegotiation_info: {client_first.hex()}{server_first.hex()}" in text


def test_the_renegotiation_ladder_marks_where_each_side_switches(long_connection) -> None:
    figure = lesson.renegotiation_sequence(long_connection)
    ax = figure.axes[0]
    marks = [t.get_text() for t in ax.texts if "new keys" in t.get_text()]
    assert marks == ["client: new keys from here", "server: new keys from here"]
    assert len(ax.get_yticks()) == len([p for p in ax.patches + ax.artists if str(p.get_gid()).startswith("trans")])


def test_openssl_declines_our_renegotiation_by_default_and_the_connection_goes_on() -> None:
    run = lesson.renegotiate_with_openssl(allow=False)
    assert "no_renegotiation" in run.refused and [h.renegotiation for h in run.handshakes] == [0]
    assert len(run.pages) == 2 and b"/after" in run.pages[1]
    assert {row.keys_of for row in run.records() if row.keys_of is not None} == {0}


def test_our_server_refuses_the_spliced_hello_as_openssl_does() -> None:
    outcome = lesson.splice_against_our_server()
    assert outcome.victim_renegotiation_info == b"" and len(outcome.attacker_finished) == 12
    assert outcome.alert == "handshake_failure" and outcome.fatal and "RFC 5746" in outcome.server_error


@pytest.mark.parametrize("target", ["OpenSSL", "our server"])
def test_a_legacy_attackers_connection_may_not_renegotiate_at_all(target) -> None:
    # The attacker's own hello leaves RFC 5746 out (as before 2010): there is no Finished to bind a
    # renegotiation to, and both servers decline any renegotiation on that connection, with a warning.
    run = lesson.splice_against_openssl if target == "OpenSSL" else lesson.splice_against_our_server
    outcome = run(legacy_attacker=True)
    assert not outcome.bound and outcome.alert == "no_renegotiation" and not outcome.fatal
    assert "bound to nothing" in outcome.summary()
