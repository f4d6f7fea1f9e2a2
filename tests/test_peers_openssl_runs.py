"""Lessons 05 and 06's live runs (handshake_lib/peers/openssl_runs.py) against OpenSSL on loopback.

OpenSSL runs behind Python's ``ssl`` with fresh keys and a key log; the tests check the pre-master and
master secrets from both ends, and OpenSSL's answer to a ClientKeyExchange we changed.  The recorder of
the shipped key schedules is run too, through scripts/regenerate_data.py, and what it writes is checked
against the master secrets OpenSSL logged.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from handshake_lib.data import FORMAT
from handshake_lib.peers.openssl import openssl_server
from handshake_lib.peers.openssl_runs import (
    live_handshake_outcome,
    live_key_exchange,
    live_tampered_exchange,
    openssl_client_exchange,
    record_key_schedules,
    record_live_handshake,
)
from handshake_lib.tls import Stages, rsa_kx
from handshake_lib.tls import prf as prf_module
from handshake_lib.tls.key_schedule import RecordedHandshake, derive_keys

ROOT = Path(__file__).resolve().parent.parent


def test_live_both_sides_hold_the_same_pre_master_secret() -> None:
    with openssl_server("AES128-GCM-SHA256") as peer:
        live = live_key_exchange(peer)
    assert live.response.status == 200 and b"Hello from OpenSSL" in live.response.body
    assert live.decrypted_with_server_key == live.pre_master_secret
    assert live.pre_master_secret[:2] == b"\x03\x03"
    assert live.response.handshake.extended_master_secret
    assert live.openssl_master_secret == live.master_secret_from_pre_master == live.response.handshake.master_secret
    assert live.lines()[0].endswith(live.pre_master_secret.hex())


@pytest.mark.parametrize(("cipher", "ems"), [("AES256-GCM-SHA384", True), ("AES128-SHA", False)])
def test_a_fresh_recording_matches_openssl(cipher: str, ems: bool) -> None:
    with openssl_server(cipher) as peer:
        recording = record_live_handshake(peer, extended_master_secret=ems)
    assert recording.extended_master_secret is ems and recording.cipher == cipher
    assert derive_keys(recording).matches_openssl


def test_openssl_answers_a_tampered_client_key_exchange_at_finished() -> None:
    with openssl_server() as peer:
        outcome = live_tampered_exchange(peer, byte_index=40, mask=0x01)
    assert not outcome.completed and outcome.alert == "bad_record_mac"
    assert "BAD_RECORD_MAC" in outcome.openssl_error.upper()
    # OpenSSL said nothing after ClientKeyExchange until our Finished arrived.
    assert outcome.records[-4:] == [
        "client->server handshake: ClientKeyExchange",
        "client->server change_cipher_spec: ChangeCipherSpec",
        "client->server handshake (encrypted): Finished",
        "server->client alert: Alert",
    ]
    assert outcome.lines()[-2] == "alert from OpenSSL: bad_record_mac"


def test_openssl_treats_wrong_version_bytes_like_a_bad_ciphertext() -> None:
    def rolled_back(pre_master, public_key):
        return rsa_kx.encrypt_pre_master_secret(b"\x03\x01" + pre_master[2:], public_key)

    with openssl_server() as peer:
        outcome = live_handshake_outcome(peer, stages=Stages(encrypt_pre_master_secret=rolled_back))
    assert outcome.alert == "bad_record_mac" and "BAD_RECORD_MAC" in outcome.openssl_error.upper()
    assert outcome.records[-2:] == ["client->server handshake (encrypted): Finished", "server->client alert: Alert"]


def test_a_correct_stage_completes_through_live_handshake_outcome() -> None:
    with openssl_server("AES128-SHA256") as peer:
        outcome = live_handshake_outcome(peer)
    assert outcome.completed and outcome.alert == "" and outcome.openssl_error == ""


def test_a_prf_wrong_only_for_finished_gets_decrypt_error_from_openssl() -> None:
    """The keys agree, so the Finished record decrypts; its verify_data does not match (exercise 06's key points)."""

    def finished_wrong(secret, label, seed, length, hash_name="sha256"):
        output = prf_module.prf(secret, label, seed, length, hash_name)
        return bytes(length) if label == b"client finished" else output

    with openssl_server() as peer:
        outcome = live_handshake_outcome(peer, stages=Stages(prf=finished_wrong))
    assert outcome.alert == "decrypt_error" and "DIGEST_CHECK_FAILED" in outcome.openssl_error.upper()


def test_openssl_as_client_logs_the_pre_master_secret_our_server_decrypted() -> None:
    rsa_line, decrypted = openssl_client_exchange()
    label, ciphertext_prefix, secret = rsa_line.split()
    assert label == "RSA" and len(bytes.fromhex(ciphertext_prefix)) == 8
    assert bytes.fromhex(secret) == decrypted and decrypted[:2] == b"\x03\x03"


def test_the_runs_refuse_a_server_without_rsa_key_exchange() -> None:
    with openssl_server("ECDHE-RSA-AES128-GCM-SHA256") as peer:
        with pytest.raises(ValueError, match="RSA key exchange"):
            live_key_exchange(peer)
        with pytest.raises(ValueError, match="RSA key exchange"):
            live_handshake_outcome(peer)


def _regenerate_data_script():
    spec = importlib.util.spec_from_file_location("regenerate_data", ROOT / "scripts" / "regenerate_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerate_data_records_key_schedules_openssl_agrees_with(tmp_path: Path, monkeypatch) -> None:
    script = _regenerate_data_script()
    assert script.RECORDERS["rsa_key_schedules"] is record_key_schedules
    # Two suites instead of six keep the test short; the script's registry entry runs all of them.
    monkeypatch.setitem(
        script.RECORDERS, "rsa_key_schedules", lambda: record_key_schedules(("AES128-SHA", "AES256-GCM-SHA384"))
    )
    assert script.main(["--out", str(tmp_path), "rsa_key_schedules"]) == 0
    document = json.loads((tmp_path / "rsa_key_schedules.json").read_text())
    assert document["format"] == FORMAT and "OpenSSL 3" in document["made_by"]
    recordings = [RecordedHandshake.from_json(entry) for entry in document["recordings"]]
    assert [(r.cipher, r.extended_master_secret) for r in recordings] == [
        ("AES128-SHA", True),
        ("AES128-SHA", False),
        ("AES256-GCM-SHA384", True),
        ("AES256-GCM-SHA384", False),
    ]
    assert all(derive_keys(recording).matches_openssl for recording in recordings)
    with pytest.raises(SystemExit):
        script.main(["no_such_file"])
