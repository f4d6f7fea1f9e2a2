"""Lesson 09's live runs (handshake_lib.peers.forward_secrecy_runs) and the two ECDHE stages it teaches.

The real peer is OpenSSL 3 (Python ``ssl``): one server, one session per key exchange, each recorded by
our client as a pcap; OpenSSL's key log is the second opinion on every master secret.  The stages are
checked against RFC 7748's published X25519 vector and against OpenSSL's genuine ServerKeyExchange.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, x25519

from handshake_lib.peers.forward_secrecy_runs import record_sessions, run_learner_decryption, run_learner_ecdhe
from handshake_lib.tls import Stages
from handshake_lib.tls.key_exchange import ecdhe_premaster_secret
from handshake_lib.tls.messages import ServerKeyExchange, decode_handshake
from handshake_lib.tls.prf import extended_master_secret, master_secret
from handshake_lib.tls.record import reassemble_handshake
from handshake_lib.tls.signatures import check_server_key_exchange_signature

pytestmark = pytest.mark.peer

# RFC 7748 section 6.1: Alice's private key, Bob's public key, and their shared secret K.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED_K = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


@pytest.fixture(scope="module")
def recording():
    return record_sessions()


def _learner_premaster(client_private_key, server_public):
    if isinstance(client_private_key, x25519.X25519PrivateKey):
        return client_private_key.exchange(x25519.X25519PublicKey.from_public_bytes(server_public))
    peer = ec.EllipticCurvePublicKey.from_encoded_point(client_private_key.curve, server_public)
    return client_private_key.exchange(ec.ECDH(), peer)


def _learner_check(server_public_key, signature_scheme, signature, client_random, server_random, params):
    sha256 = hashes.SHA256()
    scheme = padding.PSS(padding.MGF1(sha256), 32) if signature_scheme == 0x0804 else padding.PKCS1v15()
    try:
        server_public_key.verify(signature, client_random + server_random + params, scheme, sha256)
    except InvalidSignature:
        return False
    return True


def _stolen_master_secret(connection, server_private_key):
    pre_master = server_private_key.decrypt(connection.encrypted_pre_master_secret, padding.PKCS1v15())
    if connection.extended_master_secret:
        return extended_master_secret(pre_master, connection.session_hash, connection.prf_hash)
    return master_secret(pre_master, connection.client_random, connection.server_random, connection.prf_hash)


def test_library_ecdhe_stage_gives_rfc_7748s_shared_secret():
    alice = x25519.X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
    assert ecdhe_premaster_secret(alice, BOB_PUBLIC) == SHARED_K
    assert Stages().ecdhe_premaster_secret is ecdhe_premaster_secret
    assert Stages(ecdhe_premaster_secret=_learner_premaster).replaced() == ["ecdhe_premaster_secret"]


def test_the_stolen_key_opens_the_rsa_session_and_stops_at_the_ecdhe_one(recording):
    assert recording.rsa.same_master_secret and recording.ecdhe.same_master_secret  # OpenSSL's key log agrees
    opened = recording.decrypt_with_stolen_key()
    rsa_session, ecdhe_session = opened["RSA key exchange"], opened["ECDHE"]
    assert rsa_session.decrypted and rsa_session.master_secret == recording.rsa.openssl_master_secret
    assert b"Hello from OpenSSL" in rsa_session.application_data("server->client")
    assert not ecdhe_session.decrypted and "ephemeral ECDHE" in ecdhe_session.problem
    assert ecdhe_session.application_data("server->client") == b""
    assert ecdhe_session.suite_name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"


def test_the_ecdhe_values_kept_give_openssls_master_secret(recording):
    values = recording.ecdhe.ephemeral
    assert values is not None and values.group == "x25519"
    client = x25519.X25519PrivateKey.from_private_bytes(values.client_private)
    assert _learner_premaster(client, values.server_public) == values.pre_master_secret
    bare = recording.decrypt_with_stolen_key()["ECDHE"]  # the session hash is on the wire; the secret is not
    assert bare.extended_master_secret and bare.session_hash
    derived = extended_master_secret(values.pre_master_secret, bare.session_hash, bare.prf_hash)
    assert derived == recording.ecdhe.openssl_master_secret


def test_openssls_server_key_exchange_signature_checks_over_both_randoms(recording):
    handshake = recording.ecdhe.response.handshake
    fragments = [(e.direction, e.plaintext) for e in recording.ecdhe.response.transcript if e.content_type == 22]
    raw = next(m.raw for _, m in reassemble_handshake(fragments) if m.raw[0] == 12)
    message, spans = decode_handshake(raw, key_exchange="ECDHE")
    assert isinstance(message, ServerKeyExchange) and message.params.public == recording.ecdhe.ephemeral.server_public
    fields = {span.field.rsplit(".", 1)[-1]: span for span in spans}
    assert raw[fields["point"].offset :][:32] == message.params.public and fields["signature"].length == 256
    key = recording.certificate.public_key()
    arguments = (key, message.signature_algorithm, message.signature)
    params = message.params_bytes()
    assert check_server_key_exchange_signature(*arguments, handshake.client_random, handshake.server_random, params)
    assert not check_server_key_exchange_signature(*arguments, handshake.server_random, handshake.client_random, params)
    assert not check_server_key_exchange_signature(*arguments, handshake.client_random, handshake.server_random,
                                                   params[:-1] + bytes([params[-1] ^ 1]))  # fmt: skip


def test_learner_stages_in_a_live_ecdhe_handshake_get_the_page_on_both_curves():
    runs = run_learner_ecdhe(_learner_premaster, _learner_check, groups=("x25519", "secp256r1"))
    assert [run.group for run in runs] == ["x25519", "secp256r1"]
    for run in runs:
        assert run.page_arrived and b"Hello from OpenSSL" in run.body and run.openssl_agrees, run.summary()


def test_a_wrong_premaster_secret_is_refused_by_openssl_with_bad_record_mac():
    def public_value_as_secret(client_private_key, server_public):
        return server_public  # 32 bytes, the right length, the wrong secret

    (run,) = run_learner_ecdhe(public_value_as_secret)
    assert not run.page_arrived and "bad_record_mac" in run.error
    assert "BAD_RECORD_MAC" in run.openssl_error


def test_a_check_over_the_wrong_bytes_refuses_openssls_genuine_signature_with_decrypt_error():
    def randoms_swapped(key, scheme, signature, client_random, server_random, params):
        return _learner_check(key, scheme, signature, server_random, client_random, params)

    (run,) = run_learner_ecdhe(check_server_key_exchange_signature=randoms_swapped)
    assert not run.page_arrived and "DecryptError" in run.error and "returned False" in run.error
    assert "DECRYPT_ERROR" in run.openssl_error  # OpenSSL received our decrypt_error alert


def test_a_stage_that_raises_ends_in_internal_error_not_a_crash():
    (run,) = run_learner_ecdhe(lambda client_private_key, server_public: 1 / 0)
    assert not run.page_arrived and "ZeroDivisionError" in run.error


def test_learner_decryption_of_the_recorded_rsa_session(recording):
    key = recording.server_private_key
    run = run_learner_decryption(_stolen_master_secret, recording.rsa, key)
    assert run.master_secret == recording.rsa.openssl_master_secret
    assert b"Hello from OpenSSL" in run.page

    def forgets_extended_master_secret(connection, server_private_key):
        pre_master = server_private_key.decrypt(connection.encrypted_pre_master_secret, padding.PKCS1v15())
        return master_secret(pre_master, connection.client_random, connection.server_random, connection.prf_hash)

    wrong = run_learner_decryption(forgets_extended_master_secret, recording.rsa, key)
    assert wrong.page == b"" and "Finished" in wrong.connection.problem
    short = run_learner_decryption(lambda connection, server_private_key: b"\x00" * 47, recording.rsa, key)
    assert "47 bytes" in short.error and short.connection is None
    ecdhe = run_learner_decryption(_stolen_master_secret, recording.ecdhe, key)
    assert "nothing for the stolen key to decrypt" in ecdhe.error and ecdhe.page == b""
