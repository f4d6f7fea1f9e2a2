"""The recorded key schedules (handshake_lib/data/rsa_key_schedules.json) and the one loader of data files.

Each recording carries the master secret OpenSSL computed and wrote to its key log; the tests recompute
it with the library from the recorded inputs, for every suite and both master secret modes.  A fresh
recording from a live OpenSSL run is checked in test_peers_openssl_runs.py.
"""

from __future__ import annotations

import json

import pytest

from handshake_lib import data
from handshake_lib.tls import Stages
from handshake_lib.tls import prf as prf_module
from handshake_lib.tls.key_schedule import (
    RECORDINGS,
    RecordedHandshake,
    derive_keys,
    derive_master_secret,
    key_block_bytes,
    recorded_handshake,
    recorded_handshakes,
)
from handshake_lib.tls.suites import RSA_SUITE_NAMES, key_block_layout


def test_every_recorded_handshake_gives_openssls_master_secret() -> None:
    recordings = recorded_handshakes()
    assert set(recordings) == {(name, ems) for name in RSA_SUITE_NAMES for ems in (True, False)}
    for (name, ems), recording in recordings.items():
        assert (recording.cipher, recording.extended_master_secret) == (name, ems)
        derived = derive_keys(recording)
        assert derived.matches_openssl, f"{name} ems={ems}"
        params = recording.params
        assert len(derived.key_block) == params.key_block_length
        # The key block is the PRF's "key expansion" output, and each key sits where the layout says.
        expected_block = prf_module.prf(
            derived.master_secret,
            b"key expansion",
            recording.server_random + recording.client_random,
            params.key_block_length,
            params.prf_hash,
        )
        assert derived.key_block == expected_block
        start = 2 * params.mac_key_length
        assert derived.keys.client_write_key == expected_block[start : start + params.enc_key_length]
        assert recording.pre_master_secret[:2] == b"\x03\x03"
        assert len(recording.session_hash) == (48 if params.prf_hash == "sha384" else 32)


def test_the_two_master_secret_modes_use_different_inputs() -> None:
    """EMS uses the session hash and not the randoms; the classic one the other way round."""
    ems = recorded_handshake("AES128-SHA256", extended_master_secret=True)
    classic = recorded_handshake("AES128-SHA256", extended_master_secret=False)
    for recording, mode in ((ems, True), (classic, False)):
        params = recording.params
        args = (recording.pre_master_secret, recording.client_random, recording.server_random)
        right = derive_master_secret(*args, recording.session_hash, params, mode)
        assert right == recording.openssl_master_secret
        assert derive_master_secret(*args, recording.session_hash, params, not mode) != right


def test_a_wrong_prf_does_not_match_openssl() -> None:
    def forgot_the_seed(secret, label, seed, length, hash_name="sha256"):
        return prf_module.p_hash(secret, label, length, hash_name)

    derived = derive_keys(recorded_handshake(), stages=Stages(prf=forgot_the_seed))
    assert not derived.matches_openssl


def test_key_block_bytes_is_the_inverse_of_the_cut() -> None:
    recording = recorded_handshake("AES256-SHA")
    derived = derive_keys(recording)
    block = key_block_bytes(derived.keys, recording.params)
    for name, start, length in key_block_layout(recording.params):
        assert block[start : start + length] == getattr(derived.keys, name.lower())


def test_recorded_handshake_json_round_trips_and_rejects_bad_entries() -> None:
    recording = recorded_handshake("AES256-GCM-SHA384", extended_master_secret=False)
    entry = recording.to_json()
    assert entry["suite"] == "TLS_RSA_WITH_AES_256_GCM_SHA384" and entry["extended_master_secret"] is False
    assert entry["pre_master_secret"] == recording.pre_master_secret.hex()
    assert RecordedHandshake.from_json(json.loads(json.dumps(entry))) == recording
    with pytest.raises(ValueError):
        RecordedHandshake.from_json({**entry, "extended_master_secret": "yes"})
    with pytest.raises(ValueError):
        RecordedHandshake.from_json({**entry, "client_random": "not hex"})
    with pytest.raises(KeyError):
        RecordedHandshake.from_json({k: v for k, v in entry.items() if k != "session_hash"})
    with pytest.raises(ValueError, match="choose one of"):
        recorded_handshake("RC4-MD5")


def test_the_data_file_has_the_one_format() -> None:
    document = json.loads((data.resources.files(data) / f"{RECORDINGS}.json").read_text())
    assert document["format"] == 1 and "OpenSSL" in document["made_by"] and "key log" in document["made_by"]
    assert document["recordings"] == data.load_recordings(RECORDINGS)
    for entry in document["recordings"]:
        for name, value in entry.items():
            if isinstance(value, str) and name != "suite":
                assert value == value.lower() and bytes.fromhex(value), name


def test_load_recordings_refuses_another_format(tmp_path, monkeypatch) -> None:
    (tmp_path / "old.json").write_text(json.dumps({"format": 2, "made_by": "", "recordings": []}))
    (tmp_path / "list.json").write_text(json.dumps([]))
    (tmp_path / "good.json").write_text(json.dumps({"format": 1, "made_by": "", "recordings": [{"a": "00"}]}))
    monkeypatch.setattr(data.resources, "files", lambda package: tmp_path)
    assert data.load_recordings("good") == [{"a": "00"}]
    with pytest.raises(ValueError, match="format 1, found 2"):
        data.load_recordings("old")
    with pytest.raises(ValueError, match="format 1"):
        data.load_recordings("list")
    with pytest.raises(FileNotFoundError):
        data.load_recordings("missing")
