"""Lesson 11, the TLS 1.3 half (handshake_lib.peers.renewal13_runs and its glue in lessons/renewal.py).

Resumption is judged by OpenSSL too: its own ``session_reused`` must agree with ours on every visit, and psk_ke
must be refused by an OpenSSL left at its defaults.  0-RTT runs against our server and its ReplayWindow, whose
counters and the server's own record of each connection say what reached the application.  KeyUpdate is
checked with *OpenSSL's* key log: every protected record opens with the secret of its generation, derived from
OpenSSL's generation 0, and those after a KeyUpdate do not open with the one before.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from handshake_lib.lessons import renewal13 as lesson  # noqa: E402
from handshake_lib.peers import renewal13_runs as runs  # noqa: E402
from handshake_lib.peers.renewal_runs import renegotiate_with_openssl  # noqa: E402
from handshake_lib.tls.constants import ContentType  # noqa: E402
from handshake_lib.tls.keylog import parse_keylog  # noqa: E402
from handshake_lib.tls.messages13 import NewSessionTicket13  # noqa: E402


@pytest.fixture(scope="module")
def comparison() -> runs.PSKComparison:
    return runs.compare_psk_resumption(2)


@pytest.fixture(scope="module")
def zero_rtt() -> runs.ZeroRTTRun:
    return runs.zero_rtt_replay()


@pytest.fixture(scope="module")
def key_update() -> runs.KeyUpdateRun:
    return runs.key_update_with_openssl()


def names(response) -> list[str]:
    return [type(m).__name__ for e in response.transcript for m in e.messages]


# -- PSK resumption with OpenSSL --------------------------------------------------------------------
def test_full_and_psk_handshakes_agree_with_openssl(comparison) -> None:
    assert [run.kind for run in comparison.runs] == ["full", "psk_dhe_ke", "psk_ke"]
    for run in comparison.runs:
        assert len(run.visits) == 2 and run.all_agree  # OpenSSL's session_reused says what we say
        assert run.round_trips == 1
    full, dhe, ke = (run.response.handshake for run in comparison.runs)
    assert full.psk_mode is None and dhe.psk_mode == "psk_dhe_ke" and ke.psk_mode == "psk_ke"
    assert full.group is not None and dhe.group is not None and ke.group is None  # psk_ke: no fresh ECDHE
    assert not comparison.psk_ke_by_default.resumed and comparison.psk_ke_by_default.openssl_reused is False
    table = comparison.table()
    assert "none (PSK only)" in table and "psk_ke to OpenSSL's defaults: full handshake" in table


def test_a_resumption_sends_no_certificate(comparison) -> None:
    full, resumed = comparison.full.response, comparison.psk_dhe_ke.response
    assert runs.not_sent_on_resumption(full, resumed) == ["Certificate13", "CertificateVerify"]
    assert "Finished" in names(resumed) and "EncryptedExtensions" in names(resumed)


def test_tickets_carry_distinct_nonces_and_psks(comparison) -> None:
    tickets = comparison.tickets
    assert len(tickets) == 2  # OpenSSL 3.0 sends two after a full handshake
    assert len({t.message.ticket_nonce for t in tickets}) == 2 and len({t.psk for t in tickets}) == 2
    assert len({t.resumption_master_secret for t in tickets}) == 1
    assert [t.kept for t in tickets] == [False, True]  # the store keeps the newest
    assert comparison.kept is not None and comparison.kept.psk == tickets[1].psk
    text = lesson.ticket_text(tickets[0])
    assert "ticket_age_add" in text and tickets[0].psk.hex() in text


def test_ticket_view_renders_without_the_network(comparison) -> None:
    view = lesson.TicketView(comparison.tickets)
    first = view.fields.value
    view.show(1)
    assert view.picker.value == 1 and view.fields.value != first
    assert comparison.tickets[1].psk.hex() in view.fields.value
    with pytest.raises(ValueError, match="index"):
        view.show(2)
    with pytest.raises(ValueError, match="no tickets"):
        lesson.TicketView([])
    assert isinstance(lesson.psk_sequences(comparison), Figure)


def test_tickets_issued_needs_a_tls13_handshake(comparison) -> None:
    from handshake_lib.peers.renewal_runs import compare_resumption

    tls12 = compare_resumption(1).full.response
    with pytest.raises(ValueError, match="TLS 1.3"):
        runs.tickets_issued(tls12)


# -- 0-RTT and its replay, against our server ---------------------------------------------------------
def test_early_data_is_accepted_once(zero_rtt) -> None:
    assert zero_rtt.ticket.max_early_data_size == runs.EARLY_DATA_SIZE
    assert zero_rtt.accepted.handshake.early_data == "accepted" and zero_rtt.accepted.status == 200
    flight = zero_rtt.flight
    assert flight[0] == ContentType.handshake and flight.count(bytes([ContentType.application_data, 3, 3])) >= 1
    # The replayed flight: the window refused it, and the request never reached the server's HTTP layer.
    assert zero_rtt.replay.refused == {"replayed": 1, "stale": 0, "full": 0}
    assert zero_rtt.replay.request_seen == b"" and zero_rtt.replay.answer_bytes > 0
    assert "failed" in zero_rtt.served[2]


def test_the_attackers_copy_first_makes_the_request_arrive_twice(zero_rtt) -> None:
    assert zero_rtt.raced.request_seen.startswith(b"GET / HTTP/1.1")  # the attacker's copy was acted on
    assert zero_rtt.raced.refused["replayed"] == 1
    assert zero_rtt.retried.handshake.early_data == "rejected"  # the real client's copy came second
    assert zero_rtt.retried.status == 200 and zero_rtt.retried.body
    assert zero_rtt.refused_after["replayed"] == 2
    assert zero_rtt.served[-1].endswith("200 OK")
    assert "early data rejected" in zero_rtt.summary()
    assert isinstance(lesson.zero_rtt_sequences(zero_rtt), Figure)


# -- KeyUpdate with OpenSSL, checked with OpenSSL's key log -------------------------------------------
def test_every_record_opens_with_its_generation_from_openssls_key_log(key_update) -> None:
    assert [page.split(b"answered ")[1][:7] for page in key_update.pages] == [b"/before", b"/after<"]
    assert key_update.key_generations == {"sending": 1, "receiving": 1}
    assert key_update.keylog.find("CLIENT_TRAFFIC_SECRET_0", key_update.client_random) is not None
    rows = key_update.records()
    protected = [row for row in rows if row.keys != "plaintext"]
    assert protected and all(row.opens_with_its_keys for row in protected)
    later = [row for row in rows if row.generation == 1]
    assert {row.entry.direction for row in later} == {"client->server", "server->client"}
    assert all(row.opens_with_previous_keys is False and row.sequence_number == 0 for row in later)
    updates = [row for row in rows if any(type(m).__name__ == "KeyUpdate" for m in row.entry.messages)]
    assert len(updates) == 2 and all(row.generation == 0 for row in updates)  # sent under the old keys
    assert isinstance(lesson.generations_table(rows).value, str)


def test_a_wrong_or_missing_key_log_opens_nothing(key_update) -> None:
    empty = runs.records_by_generation(
        key_update.transcript, parse_keylog(""), key_update.client_random, key_update.suite
    )
    assert not any(row.opens_with_its_keys for row in empty if row.keys != "plaintext")
    wrong = parse_keylog(key_update.keylog.text().replace("CLIENT_TRAFFIC_SECRET_0 ", "CLIENT_TRAFFIC_SECRET_X "))
    rows = runs.records_by_generation(key_update.transcript, wrong, key_update.client_random, key_update.suite)
    client_app = [r for r in rows if r.keys == "application" and r.entry.direction == "client->server"]
    assert client_app and not any(r.opens_with_its_keys for r in client_app)


def test_key_update_is_one_message_where_renegotiation_is_a_handshake(key_update) -> None:
    count, size, carried = runs.renewal_records(key_update.transcript)
    assert count == 2 and carried == ["KeyUpdate", "KeyUpdate"] and size < 60
    renegotiation = renegotiate_with_openssl()
    count12, size12, carried12 = runs.renewal_records(renegotiation.transcript)
    assert count12 > count and size12 > size and "Certificate" in carried12
    assert not any(isinstance(m, NewSessionTicket13) for m in carried)
    text = lesson.renewal_comparison(renegotiation, key_update)
    assert "TLS 1.2 renegotiation" in text and "KeyUpdate, KeyUpdate" in text
