"""RFC 4253 section 7.2 key derivation against the NIST CAVS SSH KDF vectors and `openssl kdf SSHKDF`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import require

from handshake_lib.ssh import kdf

VECTORS = json.loads((Path(__file__).parent / "data" / "ssh" / "kdf_cavs.json").read_text())["vectors"]


def _case_id(vector: dict) -> str:
    return f"{vector['hash']}-{vector['session_id'][:8]}"


@pytest.mark.parametrize("vector", VECTORS, ids=_case_id)
def test_nist_cavs_vectors_all_six_letters(vector):
    k, h, sid = (bytes.fromhex(vector[key]) for key in ("shared_secret_k", "exchange_hash_h", "session_id"))
    for letter, expected in vector["outputs"].items():
        assert kdf.derive(vector["hash"], k, h, sid, letter, len(expected) // 2).hex() == expected, letter


def test_the_vectors_cover_extension_beyond_one_hash_block():
    # The SHA-1 sets ask 24 bytes for C and D (3DES keys): more than one 20-byte SHA-1 output, so
    # the K2 = HASH(K || H || K1) rule is checked against NIST, not only against ourselves.
    longest = {
        vector["hash"]: max(len(out) // 2 for out in vector["outputs"].values()) for vector in VECTORS
    }
    assert longest["sha1"] > kdf.HASH_NAMES["sha1"]
    assert set(longest) == {"sha1", "sha224", "sha256", "sha384", "sha512"}


def test_derive_all_names_each_letter():
    vector = next(v for v in VECTORS if v["hash"] == "sha256")
    k, h, sid = (bytes.fromhex(vector[key]) for key in ("shared_secret_k", "exchange_hash_h", "session_id"))
    lengths = {letter: len(out) // 2 for letter, out in vector["outputs"].items()}
    keys = kdf.derive_all("sha256", k, h, sid, lengths)
    assert {letter: value.hex() for letter, value in keys.by_letter().items()} == vector["outputs"]
    assert keys.key_client_to_server.hex() == vector["outputs"]["C"]
    assert keys.mac_server_to_client.hex() == vector["outputs"]["F"]
    assert bytes.fromhex(vector["outputs"]["C"]).hex() not in repr(keys)  # secrets stay out of repr
    # A letter that is not asked for is empty, not an error: an AEAD cipher has no MAC keys.
    assert kdf.derive_all("sha256", k, h, sid, {"C": 16}).mac_client_to_server == b""


def _openssl_sshkdf(hash_name: str, k: bytes, h: bytes, sid: bytes, letter: str, length: int) -> bytes:
    openssl = require("openssl", "OpenSSL 3's SSHKDF is the second implementation of RFC 4253 7.2")
    out = subprocess.run(
        [openssl, "kdf", "-keylen", str(length), "-kdfopt", f"digest:{hash_name.upper()}",
         "-kdfopt", f"hexkey:{k.hex()}", "-kdfopt", f"hexxcghash:{h.hex()}",
         "-kdfopt", f"hexsession_id:{sid.hex()}", "-kdfopt", f"type:{letter}", "SSHKDF"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    return bytes.fromhex("".join(out.split()).replace(":", ""))


@pytest.mark.parametrize(
    ("hash_name", "letter", "length"),
    [("sha256", "C", 64), ("sha256", "E", 100), ("sha512", "D", 150), ("sha1", "F", 41)],
)
def test_long_outputs_agree_with_openssl_sshkdf(hash_name, letter, length):
    # Lengths of two to five hash blocks (chacha20-poly1305 needs 64 bytes from SHA-256), from a K
    # encoded as a string (the hybrids' K) as well as an mpint: the KDF treats both as bytes.
    k = b"\x00\x00\x00\x20" + bytes(range(32))
    h = bytes((100 + i) % 256 for i in range(kdf.HASH_NAMES[hash_name]))
    sid = bytes((200 + i) % 256 for i in range(kdf.HASH_NAMES[hash_name]))
    ours = kdf.derive(hash_name, k, h, sid, letter, length)
    assert len(ours) == length
    assert ours == _openssl_sshkdf(hash_name, k, h, sid, letter, length)
    # The first block is HASH(K || H || letter || session_id); the rest differ from it.
    blocks = kdf.derivation_blocks(hash_name, k, h, sid, letter, length)
    assert len(blocks) == -(-length // kdf.HASH_NAMES[hash_name])
    assert len(set(blocks)) == len(blocks)


def test_session_id_and_letter_change_every_key():
    k, h = b"\x00\x00\x00\x01\x05", bytes(32)
    base = kdf.derive("sha256", k, h, h, "A", 32)
    assert kdf.derive("sha256", k, h, bytes(31) + b"\x01", "A", 32) != base
    assert kdf.derive("sha256", k, h, h, "B", 32) != base
    assert kdf.derive("sha256", k, h, h, "A", 16) == base[:16]  # shorter keys are prefixes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("md5", b"k", b"h", b"s", "A", 16), "unknown key exchange hash"),
        (("sha256", b"k", b"h", b"s", "G", 16), "A..F"),
        (("sha256", b"k", b"h", b"s", "a", 16), "A..F"),
        (("sha256", b"k", b"h", b"s", "A", -1), "outside"),
        (("sha256", b"k", b"h", b"s", "A", 1 << 20), "outside"),
    ],
)
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        kdf.derive(*args)


def test_derive_all_refuses_an_unknown_letter():
    with pytest.raises(ValueError, match="A..F"):
        kdf.derive_all("sha256", b"k", b"h", b"s", {"G": 16})


def test_derive_all_uses_a_replaced_derive_function():
    calls = []

    def learner_derive(hash_name, encoded_k, exchange_hash, session_id, letter, length):
        calls.append(letter)
        return letter.encode() * length

    keys = kdf.derive_all("sha256", b"k", b"h", b"s", {"A": 2, "C": 3}, derive=learner_derive)
    assert calls == list("ABCDEF")
    assert keys.iv_client_to_server == b"AA" and keys.key_client_to_server == b"CCC"
