"""Exercise 11's stages and live runs (handshake_lib.peers.renewal_runs): RFC 5746's renegotiation_info and
RFC 5077's open_ticket, the learner's function in our client and our server, judged by OpenSSL.

Real peers: OpenSSL 3 as a server (Python ``ssl``, client renegotiation allowed, its key log) and the
``openssl s_client`` program (``R`` to renegotiate, ``-reconnect`` to resume, ``-sess_in`` to offer a
saved session whose ticket we altered).  Each wrong function fails in OpenSSL's own words.
"""

from __future__ import annotations

import hmac

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from handshake_lib.peers.renewal_runs import (
    learner_client_renegotiates,
    renegotiate_with_openssl,
    renegotiation_binding,
    run_learner_renegotiation,
    run_learner_ticket,
    s_client_renegotiates_with_learner_server,
)
from handshake_lib.tls import Stages
from handshake_lib.tls.negotiation import renegotiation_info
from handshake_lib.tls.sessions import Session
from handshake_lib.tls.tickets import TicketKeys, open_ticket

pytestmark = pytest.mark.peer


def _learner_open_ticket(ticket, aes_key, hmac_key, now, lifetime):
    body, mac = ticket[:-32], ticket[-32:]
    if len(ticket) < 66 or int.from_bytes(body[32:34], "big") != len(body) - 34:
        return None
    if not hmac.compare_digest(hmac.new(hmac_key, body, "sha256").digest(), mac):
        return None
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(body[16:32])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        state = unpadder.update(decryptor.update(body[34:]) + decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        return None
    created = int.from_bytes(state[-8:], "big")
    return state if created <= now < created + lifetime else None


def _no_mac_check(ticket, aes_key, hmac_key, now, lifetime):
    resealed = ticket[:-32] + hmac.new(hmac_key, ticket[:-32], "sha256").digest()
    return _learner_open_ticket(resealed, aes_key, hmac_key, now, lifetime)


def test_the_library_binding_is_what_openssl_sent_and_the_default_stage():
    binding = renegotiation_binding(renegotiate_with_openssl().transcript)
    assert len(binding.client_verify_data) == len(binding.server_verify_data) == 12
    # OpenSSL's ServerHello and our ClientHello, both from the wire, against the library's function.
    assert binding.client_hello_info == renegotiation_info(
        "client", binding.client_verify_data, binding.server_verify_data
    )
    assert binding.server_hello_info == renegotiation_info(
        "server", binding.client_verify_data, binding.server_verify_data
    )
    assert Stages().renegotiation_info is renegotiation_info and Stages().open_ticket is open_ticket


def test_the_right_binding_renegotiates_both_ways_and_openssl_logs_both_handshakes():
    for run in run_learner_renegotiation(lambda sender, c, s: c if sender == "client" else c + s):
        assert run.renegotiated and run.openssl_logged == 2, run.summary()


def test_both_verify_data_in_the_client_hello_is_openssls_renegotiation_mismatch():
    def both(sender, client_verify_data, server_verify_data):
        return client_verify_data + server_verify_data

    ours = learner_client_renegotiates(both)
    assert not ours.renegotiated and ours.handshakes == 1
    assert "handshake_failure" in ours.error and ours.openssl_error == "RENEGOTIATION_MISMATCH"
    theirs = s_client_renegotiates_with_learner_server(both)
    assert not theirs.renegotiated and "RFC 5746 section 3.7" in theirs.error
    assert "sslv3 alert handshake failure" in theirs.openssl_error  # s_client received our alert


def test_a_server_hello_without_the_clients_verify_data_is_refused_by_s_client():
    def server_forgets(sender, client_verify_data, server_verify_data):
        return client_verify_data if sender == "client" else server_verify_data

    ours = learner_client_renegotiates(server_forgets)
    assert "HandshakeFailure" in ours.error and "SSLV3_ALERT_HANDSHAKE_FAILURE" in ours.openssl_error
    theirs = s_client_renegotiates_with_learner_server(server_forgets)
    assert "illegal_parameter" in theirs.error and "renegotiation mismatch" in theirs.openssl_error


def test_a_binding_that_raises_is_internal_error_naming_the_stage():
    run = learner_client_renegotiates(lambda sender, c, s: 1 / 0)
    assert not run.renegotiated and "renegotiation_info failed: ZeroDivisionError" in run.error


def test_the_library_and_a_learners_open_ticket_agree_on_a_sealed_ticket():
    keys = TicketKeys(lifetime=600)
    ticket = keys.seal(Session(b"", bytes(range(48)), 0xC02F, True), now=1000.0)
    key = keys.keys[-1]
    state, why = keys.unseal(ticket, 1001.0)
    assert why == "" and state[5:53] == bytes(range(48))
    for opener in (open_ticket, _learner_open_ticket):
        assert opener(ticket, key.aes_key, key.hmac_key, 1001.0, 600) == state
        assert opener(ticket, key.aes_key, key.hmac_key, 1600.0, 600) is None  # expired
        altered = ticket[:21] + bytes([ticket[21] ^ 1]) + ticket[22:]  # one IV bit
        assert opener(altered, key.aes_key, key.hmac_key, 1001.0, 600) is None
    # The stage's answer goes through TicketKeys.open: a session, or None for what is not a state of ours.
    assert keys.open(ticket, b"id", 1001.0, open_ticket=_learner_open_ticket).master_secret == bytes(range(48))
    assert keys.open(ticket, b"id", 1001.0, open_ticket=lambda *arguments: bytes(61)) is None


def test_s_client_reconnect_resumes_five_times_and_a_flipped_ticket_bit_is_a_full_handshake():
    run = run_learner_ticket(_learner_open_ticket)
    assert run.reused_five_times and run.tampered_refused, run.summary()
    assert run.resumed_by == [None] + ["ticket"] * 5  # our server's own record: by ticket, never by ID


def test_without_the_mac_check_the_flipped_ticket_resumes_and_s_client_sees_bad_record_mac():
    run = run_learner_ticket(_no_mac_check)
    assert run.reused_five_times  # honest tickets still work: only an attacker notices
    assert not run.tampered_refused and run.tampered == "Reused"
    assert "bad record mac" in run.tampered_error and "bad_record_mac" in run.server_error


def test_a_wrong_key_opens_nothing_every_connection_is_new():
    run = run_learner_ticket(lambda t, aes_key, hmac_key, now, lifetime: _learner_open_ticket(
        t, hmac_key[:16], hmac_key, now, lifetime))  # fmt: skip
    assert run.outcomes == ["New"] * 6 and run.resumed_by == [None] * 6


def test_an_open_ticket_that_raises_is_internal_error_not_a_crash():
    run = run_learner_ticket(lambda *arguments: 1 / 0)
    assert "Reused" not in run.outcomes and not run.reused_five_times
    assert "open_ticket failed: ZeroDivisionError" in run.server_error
    assert "tlsv1 alert internal error" in run.tampered_error  # s_client received our internal_error alert
