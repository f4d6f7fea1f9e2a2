"""Our client against our server in memory (tls/pair.py), and the transcript walks of the session hash.

The countermeasure is checked from the server's side: a tampered ClientKeyExchange gets no early,
distinguishable answer, and the handshake fails at the client's Finished with bad_record_mac.
"""

from __future__ import annotations

import pytest

from handshake_lib.errors import BadRecordMac, PeerAlert, TLSAlert
from handshake_lib.tls import prf as prf_module
from handshake_lib.tls import rsa_kx
from handshake_lib.tls.connection import session_hash_listing, session_hash_messages
from handshake_lib.tls.constants import CipherSuite
from handshake_lib.tls.key_schedule import derive_master_secret
from handshake_lib.tls.messages import split_handshake_messages
from handshake_lib.tls.pair import PairKeys, handshake_in_memory
from handshake_lib.tls.suites import suite_params


@pytest.fixture(scope="module")
def keys() -> PairKeys:
    return PairKeys.fresh()


def test_an_untouched_handshake_in_memory_completes(keys: PairKeys) -> None:
    result = handshake_in_memory(keys)
    assert result.completed and result.client_error is None and result.server_error is None
    assert result.server_alert is None
    assert result.server_pre_master_secret == result.client_pre_master_secret
    assert result.client.handshake.master_secret == result.server.handshake.master_secret
    assert result.steps()[0] == "client->server handshake: ClientHello"


def test_a_tampered_ciphertext_fails_only_at_finished_with_bad_record_mac(keys: PairKeys) -> None:
    def corrupting(pre_master, public_key):
        return rsa_kx.tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), 100, 0x40)

    result = handshake_in_memory(keys, encrypt_pre_master_secret=corrupting)
    assert not result.completed
    assert isinstance(result.server_error, BadRecordMac) and result.server_alert is TLSAlert.bad_record_mac
    assert isinstance(result.client_error, PeerAlert) and result.client_error.description == TLSAlert.bad_record_mac
    # The server carried on with its own random secret, keeping the version the client offered.
    assert result.server_pre_master_secret != result.client_pre_master_secret
    assert result.server_pre_master_secret[:2] == b"\x03\x03" and len(result.server_pre_master_secret) == 48
    # Between ClientKeyExchange and its alert the server sent nothing: no early, distinguishable answer.
    summaries = [entry.summary() for entry in result.server.transcript]
    after_cke = summaries[summaries.index("client->server handshake: ClientKeyExchange") + 1 :]
    assert [s for s in after_cke if s.startswith("server->client")] == ["server->client alert: Alert"]
    steps = result.steps()
    assert steps[-4].endswith("does not decrypt with the server's keys")
    assert "-> alert bad_record_mac" in steps[-2] and steps[-1].startswith("client: PeerAlert")


@pytest.mark.parametrize(
    "suite", [CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384, CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA]
)
def test_the_session_hash_walk_gives_the_master_secret_both_cores_made(keys: PairKeys, suite: CipherSuite) -> None:
    result = handshake_in_memory(keys, cipher_suite=suite)
    assert result.completed and result.client.handshake.extended_master_secret
    params = suite_params(suite)
    for core in (result.client, result.server):
        messages = session_hash_messages(core.transcript)
        assert [m[0] for m in split_handshake_messages(messages)] == [1, 2, 11, 14, 16]  # CH SH Cert SHD CKE
        session_hash = prf_module.transcript_hash(params.prf_hash, messages)
        handshake = core.handshake
        randoms = (handshake.client_random, handshake.server_random)
        master = derive_master_secret(result.client_pre_master_secret, *randoms, session_hash, params, True)
        assert master == handshake.master_secret
    listing = session_hash_listing(result.client.transcript, params.prf_hash)
    assert [line.split()[0] for line in listing] == [
        "client_hello",
        "server_hello",
        "certificate",
        "server_hello_done",
        "client_key_exchange",
        "session_hash",
    ]
    assert listing[-1].split()[1] == session_hash.hex() and listing[-1].endswith(f"({params.prf_hash})")


def test_a_transcript_without_client_key_exchange_has_no_session_hash(keys: PairKeys) -> None:
    result = handshake_in_memory(keys)
    with pytest.raises(ValueError, match="no ClientKeyExchange"):
        session_hash_messages(result.client.transcript[:3])
