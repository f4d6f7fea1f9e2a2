"""The live runs of lesson 12 and exercise 12 (handshake_lib/peers/ssh_runs.py), against Debian's OpenSSH sshd.

A learner's right functions bring the session up (sshd lists its authentication methods: only the right
keys could read that answer); each classic slip fails, and the run says who noticed, from the real
peer: our client checking OpenSSH's signature over H, OpenSSH's log ("Corrupted MAC on input"), or the
learner's own function.  One sshd for the module; each run is one connection.
"""

from __future__ import annotations

import hashlib

import pytest

from handshake_lib.errors import BadHostKeySignature, BadPacketMac, InternalError, NoCommonAlgorithm, UnexpectedEOF
from handshake_lib.peers.ssh_runs import key_share_sizes, learner_stages, live_session, run_learner_ssh
from handshake_lib.ssh.kdf import derive
from handshake_lib.ssh.stages import LIBRARY_STAGES
from tests.conftest import require


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def ssh_mpint(number: int) -> bytes:
    return ssh_string(number.to_bytes(number.bit_length() // 8 + 1, "big") if number else b"")


def negotiate_algorithm(client_list, server_list):
    return next((name for name in client_list if name in server_list), None)


def exchange_hash(v_c, v_s, i_c, i_s, k_s, q_c, q_s, k):
    fields = [ssh_string(v_c.encode()), ssh_string(v_s.encode()), *map(ssh_string, (i_c, i_s, k_s, q_c, q_s))]
    return hashlib.sha256(b"".join(fields) + ssh_mpint(k)).digest()


def derive_key(k, h, session_id, letter, length):
    key = hashlib.sha256(ssh_mpint(k) + h + letter.encode() + session_id).digest()
    while len(key) < length:
        key += hashlib.sha256(ssh_mpint(k) + h + key).digest()
    return key[:length]


@pytest.fixture(scope="module")
def sshd():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    from handshake_lib.peers.openssh import openssh_server

    with openssh_server() as server:
        yield server


def test_the_adapted_functions_match_the_librarys_stages() -> None:
    stages = learner_stages(negotiate_algorithm=negotiate_algorithm, derive_key=derive_key)
    assert (
        set(stages.replaced()) == {"negotiate", "derive_keys"} and stages.exchange_hash is LIBRARY_STAGES.exchange_hash
    )
    keys = stages.derive_keys("sha256", ssh_mpint(0xDF4A), bytes(32), bytes(32), {"C": 32, "E": 64})
    assert keys.mac_client_to_server == derive("sha256", ssh_mpint(0xDF4A), bytes(32), bytes(32), "E", 64)
    assert learner_stages() is LIBRARY_STAGES


def test_right_functions_bring_the_session_up(sshd) -> None:
    run = run_learner_ssh(negotiate_algorithm=negotiate_algorithm, exchange_hash=exchange_hash,
                          derive_key=derive_key, sshd=sshd)  # fmt: skip
    assert run.session_up, run.summary()
    assert run.yours == ("derive_keys", "exchange_hash", "negotiate") and run.noticed_by == ""
    assert run.result is not None and "publickey" in run.result.methods
    assert (run.negotiated.kex, run.negotiated.cipher_client_to_server) == ("curve25519-sha256", "aes256-ctr")
    assert run.sshd_version.startswith("SSH-2.0-OpenSSH_") and "the session came up" in run.summary()


def test_the_servers_order_picks_what_sshd_did_not_and_sshd_hangs_up(sshd) -> None:
    def server_order(client_list, server_list):
        return next((name for name in server_list if name in client_list), None)

    run = run_learner_ssh(negotiate_algorithm=server_order, sshd=sshd)
    assert not run.session_up and isinstance(run.error, UnexpectedEOF) and run.noticed_by == "OpenSSH"
    sent = [entry.name for entry in run.error.exchange.transcript if entry.direction == "client->server"]
    assert "SSH_MSG_KEX_ECDH_INIT" in sent  # our sntrup761 share went out; sshd expected a curve25519 one
    assert any("ssh_dispatch_run_fatal" in line for line in run.sshd_log), run.sshd_log


def test_a_cipher_sshd_did_not_pick_ends_after_newkeys(sshd) -> None:
    asked: list[list[str]] = []

    def server_order_for_ciphers(client_list, server_list):
        asked.append(client_list)
        # Only the client-to-server cipher (the first cipher list asked) in the server's order: sshd picked
        # aes256-ctr, this picks chacha20-poly1305; the other direction stays right.
        order = server_list if "aes256-ctr" in client_list and len(asked) == 3 else client_list
        return next((name for name in order if name in client_list and name in server_list), None)

    run = run_learner_ssh(negotiate_algorithm=server_order_for_ciphers, sshd=sshd)
    # sshd cannot open our first encrypted packet and closes: ssh_probe says so instead of an empty success.
    assert isinstance(run.error, UnexpectedEOF) and "before answering" in str(run.error)
    assert any("Bad packet length" in line or "Corrupted" in line for line in run.sshd_log), run.sshd_log


def test_nothing_in_common_is_the_learners_answer(sshd) -> None:
    run = run_learner_ssh(negotiate_algorithm=lambda client, server: None, sshd=sshd)
    assert isinstance(run.error, NoCommonAlgorithm) and run.noticed_by == "your function"
    assert "no matching kex algorithm" in str(run.error)


def test_a_wrong_h_fails_openssh_s_signature(sshd) -> None:
    def without_v_s(v_c, v_s, i_c, i_s, k_s, q_c, q_s, k):
        return exchange_hash(v_c, "", i_c, i_s, k_s, q_c, q_s, k)

    run = run_learner_ssh(exchange_hash=without_v_s, sshd=sshd)
    assert isinstance(run.error, BadHostKeySignature) and run.noticed_by == "our client"
    assert "the H we computed is not the H OpenSSH signed" in run.outcome()


def test_an_h_of_the_wrong_size_is_named(sshd) -> None:
    run = run_learner_ssh(exchange_hash=lambda *fields: b"short", sshd=sshd)
    assert isinstance(run.error, InternalError) and run.noticed_by == "your function"
    assert "exchange_hash must return the 32-byte SHA-256 digest, not 5 bytes" in str(run.error)


def test_wrong_keys_are_a_mac_error_on_both_sides(sshd) -> None:
    def letter_again(k, h, session_id, letter, length):
        key = hashlib.sha256(ssh_mpint(k) + h + letter.encode() + session_id).digest()
        while len(key) < length:
            key += hashlib.sha256(ssh_mpint(k) + h + letter.encode() + session_id + key).digest()
        return key[:length]

    run = run_learner_ssh(derive_key=letter_again, sshd=sshd)
    assert isinstance(run.error, BadPacketMac) and run.noticed_by == "our client"
    assert any("Corrupted MAC on input" in line for line in run.sshd_log), run.sshd_log
    assert "Corrupted MAC on input" in run.brief() and "\n" not in run.brief()


def test_a_key_without_the_extension_is_named(sshd) -> None:
    def one_block(k, h, session_id, letter, length):
        return hashlib.sha256(ssh_mpint(k) + h + letter.encode() + session_id).digest()[:length]

    run = run_learner_ssh(derive_key=one_block, sshd=sshd)
    assert isinstance(run.error, InternalError)
    assert "derive_key returned 32 bytes for key E; 64 bytes were asked for" in str(run.error)


def test_live_session_keeps_k_and_the_signed_h(sshd) -> None:
    session = live_session(sshd)
    h = session.exchange_hash
    assert session.session_id == h.digest and session.shared_secret.encoded == h.field("K").encoded
    assert session.sshd_version.startswith("SSH-2.0-OpenSSH_")


def test_key_share_sizes_of_the_hybrids_and_curve25519(sshd) -> None:
    rows = {row.method: row for row in key_share_sizes(sshd)}
    curve = rows["curve25519-sha256"]
    assert (curve.client_share, curve.server_share, curve.k_encoding, curve.k_bytes) == (32, 32, "mpint", 32)
    sntrup = rows["sntrup761x25519-sha512@openssh.com"]  # RFC 9941: 1158 + 32 and 1039 + 32 bytes
    assert (sntrup.client_share, sntrup.server_share, sntrup.k_encoding, sntrup.k_bytes) == (1190, 1071, "string", 64)
    mlkem = rows["mlkem768x25519-sha256"]  # FIPS 203: 1184 + 32 and 1088 + 32 bytes
    assert (mlkem.client_share, mlkem.server_share, mlkem.k_encoding, mlkem.k_bytes) == (1216, 1120, "string", 32)
    assert mlkem.peer == "asyncssh" and sntrup.peer.startswith("OpenSSH_")
    assert sntrup.k_from == "SHA512(sntrup761 shared secret (32 B) || X25519 shared secret (32 B))"
    assert mlkem.k_from.startswith("SHA256(ML-KEM-768 shared secret (32 B) || X25519")
    assert sntrup.init_packet > 1190 and curve.init_packet < 64
