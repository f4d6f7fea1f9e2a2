"""Lesson 10's live runs (handshake_lib.peers.tls13_runs) and exercise 10's stages in our TLS 1.3 server.

Peers: OpenSSL 3.0 through Python ``ssl`` (server for the version comparison and the HelloRetryRequest, client
for the refused TLS 1.2 hello and the learner's key schedule), our TLS 1.3 server for the hybrid key share.
"""

from __future__ import annotations

import hmac

import pytest

from handshake_lib.peers.tls13_runs import (
    KEYLOG_LABELS,
    compare_versions,
    exchange_summary,
    hello_retry_run,
    hybrid_runs,
    key_shares,
    refused_legacy_hello,
    run_learner_key_schedule,
)
from handshake_lib.tls.constants import ContentType, NamedGroup
from handshake_lib.tls.key_schedule13 import hkdf_expand_label

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def comparison():
    return compare_versions(repeat=2)


def test_the_same_openssl_server_answers_both_versions_and_13_needs_one_round_trip_less(comparison) -> None:
    assert [o.version for o in comparison.openssl_saw[-2:]] == ["TLSv1.2", "TLSv1.3"]  # OpenSSL's own account
    assert comparison.tls12.status == comparison.tls13.status == 200
    assert comparison.tls12.body == comparison.tls13.body
    twelve, thirteen = exchange_summary(comparison.tls12), exchange_summary(comparison.tls13)
    assert (twelve.round_trips, thirteen.round_trips) == (2, 1)
    assert 0 < thirteen.request_sent < thirteen.response_arrived
    assert len(comparison.repeats["TLS 1.2"]) == len(comparison.repeats["TLS 1.3"]) == 2
    assert comparison.median("TLS 1.3", "request_sent") > 0


def test_what_travels_in_the_clear(comparison) -> None:
    """TLS 1.2 shows the certificate to the path; TLS 1.3 encrypts everything after ServerHello, and each of
    our protected records says so (its outer type is application_data, its content_type the real one)."""
    clear12 = {type(m).__name__ for e in comparison.tls12.transcript if not e.encrypted for m in e.messages}
    clear13 = {type(m).__name__ for e in comparison.tls13.transcript if not e.encrypted for m in e.messages}
    assert "Certificate" in clear12
    assert clear13 == {"ClientHello", "ServerHello", "ChangeCipherSpec"}
    for entry in comparison.tls13.transcript:
        assert entry.encrypted == (entry.record[0] == ContentType.application_data), entry
    ours = [e for e in comparison.tls13.transcript if e.direction == "client->server" and e.encrypted]
    assert {e.content_type for e in ours} == {ContentType.handshake, ContentType.application_data, ContentType.alert}


def test_our_key_schedule_is_openssls(comparison) -> None:
    assert comparison.openssl_agrees() == dict.fromkeys(KEYLOG_LABELS, True)


def test_a_p256_only_openssl_server_sends_a_hello_retry_request() -> None:
    response, outcomes = hello_retry_run()
    assert response.handshake.hello_retry_request and response.handshake.group == NamedGroup.secp256r1
    assert outcomes[-1].version == "TLSv1.3" and outcomes[-1].error is None
    shares = [(s.sender, s.message, s.group, s.length) for s in key_shares(response.transcript)]
    assert shares == [
        ("client", "ClientHello", "X25519MLKEM768", 1216),
        ("client", "ClientHello", "x25519", 32),
        ("server", "HelloRetryRequest", "secp256r1", 0),
        ("client", "ClientHello", "secp256r1", 65),
        ("server", "ServerHello", "secp256r1", 65),
    ]


def test_the_hybrid_key_share_with_our_server() -> None:
    hybrid, classic = hybrid_runs()
    assert hybrid.response.handshake.group == NamedGroup.X25519MLKEM768
    assert classic.response.handshake.group == NamedGroup.x25519
    assert [(s.message, s.group, s.length) for s in hybrid.shares] == [
        ("ClientHello", "X25519MLKEM768", 1216), ("ClientHello", "x25519", 32), ("ServerHello", "X25519MLKEM768", 1120)
    ]  # fmt: skip
    assert [(s.message, s.length) for s in classic.shares] == [("ClientHello", 32), ("ServerHello", 32)]
    assert hybrid.client_hello_bytes > classic.client_hello_bytes + 1216


def test_our_13_server_refuses_openssls_12_rsa_hello() -> None:
    refused = refused_legacy_hello()
    assert refused.openssl_says == "TLSV1_ALERT_PROTOCOL_VERSION"  # OpenSSL received our protocol_version alert
    assert refused.server_says.startswith("ProtocolVersionError")


def _expand_label(hash_name, secret, label, context, length):
    full = b"tls13 " + (label.encode() if isinstance(label, str) else label)
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hash_name).digest()
        output, counter = output + block, counter + 1
    return output[:length]


def test_a_learners_key_schedule_carries_openssls_handshakes_both_hashes() -> None:
    runs = run_learner_key_schedule(_expand_label)
    assert [run.suite for run in runs] == ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]
    assert all(run.page_arrived and not run.server_error for run in runs), [run.line() for run in runs]
    assert [run.fetch.cipher for run in runs] == ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]


def _context_changed(hash_name, secret, label, context, length):
    changed = context[:-1] + bytes([context[-1] ^ 1]) if context else context
    return hkdf_expand_label(hash_name, secret, label, changed, length)


def _key_and_iv_labels_swapped(hash_name, secret, key_length, iv_length):
    return hkdf_expand_label(hash_name, secret, "iv", b"", key_length), hkdf_expand_label(
        hash_name, secret, "key", b"", iv_length
    )


@pytest.mark.parametrize(
    "stages",
    [{"hkdf_expand_label": _context_changed}, {"traffic_keys": _key_and_iv_labels_swapped}],
    ids=["context-changed", "key-and-iv-labels-swapped"],
)
def test_a_wrong_stage_is_refused_by_openssl(stages) -> None:
    (run,) = run_learner_key_schedule(**stages, suites=(0x1301,))
    assert not run.page_arrived
    assert run.fetch.error == "DECRYPTION_FAILED_OR_BAD_RECORD_MAC", run.line()  # OpenSSL cannot open our records
    assert "bad_record_mac" in run.server_error, run.line()  # and told our server why


def test_the_page_server_gives_each_version_its_own_stages() -> None:
    """TLS 1.2's ``stages`` stay with the 1.2 core and ``stages13`` go to the 1.3 core (no sockets: not started)."""
    from handshake_lib.net.tls import TLSPageServer
    from handshake_lib.pki.builder import CoursePKI
    from handshake_lib.tls.stages import Stages
    from handshake_lib.tls.stages13 import Stages13

    issued = CoursePKI.create().issue_server(("localhost",))
    stages12, stages13 = Stages(), Stages13(hkdf_expand_label=_expand_label)
    server = TLSPageServer(
        [issued.der], issued.private_key, tls_versions=("1.3", "1.2"), stages=stages12, stages13=stages13
    )
    assert server.server_options["stages"] is stages12 and "stages13" not in server.server_options
    assert server.server_options13["stages"] is stages13
