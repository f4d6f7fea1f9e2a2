"""Live sessions with OpenSSL (handshake_lib.peers.openssl_sessions): keys, a damaged record, the recorders."""

from __future__ import annotations

import pytest

from handshake_lib.peers.openssl_sessions import (
    RECORDED_SESSION_RUNS,
    capture_session,
    capture_sessions,
    record_openssl_finished,
    record_openssl_records,
    tamper_against_openssl,
)
from handshake_lib.tls import prf as prf_module
from handshake_lib.tls.captured import SERVER_TO_CLIENT, RecordedSession
from handshake_lib.tls.prf import RecordedFinished


@pytest.fixture(scope="module")
def live():
    return capture_sessions()


def test_live_records_open_with_the_key_block_of_openssls_master_secret(live) -> None:
    assert set(live) == {
        "AES128-SHA256 encrypt-then-MAC",
        "AES128-SHA256 MAC-then-encrypt",
        "AES128-GCM-SHA256 AEAD (AES-GCM)",
    }
    for session in live.values():
        assert session.openssl_cipher == session.suite_name and session.openssl_error == ""
        handshake = session.response.handshake
        # The core's key block is the one OpenSSL's logged master secret gives.
        assert session.keys == prf_module.key_block(
            session.openssl_master_secret, handshake.server_random, handshake.client_random, session.params
        )
        records = session.protected_records()
        # Finished, request, close_notify from us; Finished and the page from OpenSSL.
        assert [r.sequence_number for r in records if r.direction == SERVER_TO_CLIENT] == [0, 1]
        encrypted = [e for e in session.transcript if e.encrypted]
        for protected, entry in zip(records, encrypted, strict=True):
            opened = protected.open()
            assert opened.accepted and opened.plaintext == entry.plaintext, protected.label
            assert protected.params.is_aead or opened.mac_matches


@pytest.mark.parametrize(
    ("suite", "etm", "offset", "field"),
    [
        ("AES128-GCM-SHA256", True, -1, "record.gcm_tag"),
        ("AES128-SHA256", False, 8, "record.iv"),
        ("AES128-SHA256", True, -1, "record.mac"),
    ],
)
def test_openssl_answers_a_tampered_record_with_bad_record_mac(suite, etm, offset, field) -> None:
    outcome = tamper_against_openssl(suite, offset=offset, bit=0, encrypt_then_mac=etm)
    assert "bad_record_mac (20)" in outcome.alert
    assert "BAD_RECORD_MAC" in outcome.openssl_error.upper().replace(" ", "_")
    assert outcome.field == field and f"({field})" in outcome.summary()
    assert outcome.record.open().accepted  # what our core protected was fine: only the flip broke it
    with pytest.raises(ValueError):
        tamper_against_openssl(suite, offset=2)


def test_a_capture_refuses_a_typo_before_starting_a_server() -> None:
    with pytest.raises(ValueError):
        capture_session("AES128-GCM-SHA257")


def test_the_finished_recorder_makes_vectors_that_check_out() -> None:
    made_by, recordings = record_openssl_finished()
    assert "record_openssl_finished" in made_by and len(recordings) == 2
    for item in recordings:
        recorded = RecordedFinished.from_json(item)
        messages = recorded.handshake_messages
        assert prf_module.verify_data(recorded.master_secret, "client finished", messages, recorded.hash_name) == (
            recorded.client_verify_data
        )
        assert recorded.handshake_messages[0] == 1 and recorded.client_finished[0] == 20


def test_the_records_recorder_makes_records_that_open() -> None:
    made_by, recordings = record_openssl_records()
    assert "record_openssl_records" in made_by
    sessions = [RecordedSession.from_json(item) for item in recordings]
    assert [s.name for s in sessions] == [name for name, _, _ in RECORDED_SESSION_RUNS]
    for session in sessions:
        opened = [record.open() for record in session.protected_records()]
        assert len(opened) == 2 and all(o.accepted for o in opened), session.name
        assert opened[0].plaintext[0] == 20 and opened[1].plaintext.startswith(b"HTTP/1.1 200")
