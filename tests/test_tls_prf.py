"""The TLS 1.2 PRF and cipher suite parameters, against published vectors and the openssl CLI.

The end-to-end proof (our master secret, key block and Finished against a live OpenSSL handshake)
is in test_tls_keylog.py; these tests pin the pieces.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import HandshakeFailure
from handshake_lib.tls import suites
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite
from handshake_lib.tls.prf import (
    KeyBlock,
    extended_master_secret,
    hmac_digest,
    key_block,
    master_secret,
    p_hash,
    p_hash_steps,
    prf,
    transcript_hash,
    verify_data,
)
from handshake_lib.tls.suites import (
    RSA_SUITE_NAMES,
    SUITES,
    key_block_layout,
    parse_suite_name,
    suite_params,
)

# The TLS 1.2 PRF test vectors posted to the IETF TLS working group list ("TLS 1.2 test vectors",
# https://www.ietf.org/mail-archive/web/tls/current/msg03416.html).  Checked for this file against
# copies embedded independently in netty (PseudoRandomFunctionTest), the GNU Classpath/jessie TLS
# tests, an IBM OpenJCEPlus test and others, and reproduced with OpenSSL 3.0.19's
# `openssl kdf -kdfopt digest:SHA2-256 ... TLS1-PRF` (and SHA2-384).
PRF_VECTORS = [
    (
        "sha256",
        "9bbe436ba940f017b17652849a71db35",
        "a0ba9f936cda311827a6f796ffd5198c",
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
        "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
        "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
        "87347b66",
    ),
    (
        "sha384",
        "b80b733d6ceefcdc71566ea48e5567df",
        "cd665cf6a8447dd6ff8b27555edb7465",
        "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd"
        "e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd"
        "8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425"
        "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6"
        "91c8f3a26854308d5eaa3be85e0990703d73e56f",
    ),
]


@pytest.mark.parametrize(("hash_name", "secret", "seed", "expected"), PRF_VECTORS, ids=["P_SHA256", "P_SHA384"])
def test_prf_matches_the_published_vectors(hash_name: str, secret: str, seed: str, expected: str) -> None:
    output = prf(bytes.fromhex(secret), "test label", bytes.fromhex(seed), len(expected) // 2, hash_name)
    assert output.hex() == expected
    # The PRF is P_hash over label + seed.
    assert p_hash(bytes.fromhex(secret), b"test label" + bytes.fromhex(seed), 20, hash_name) == output[:20]


@given(length=st.integers(0, 200), shorter=st.integers(0, 200))
@settings(max_examples=50)
def test_a_shorter_output_is_a_prefix_of_a_longer_one(length: int, shorter: int) -> None:
    shorter = min(shorter, length)
    long_output = prf(b"secret", b"label", b"seed", length)
    assert len(long_output) == length
    assert prf(b"secret", b"label", b"seed", shorter) == long_output[:shorter]


def openssl_prf(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    openssl = require("openssl", "to compare the PRF with OpenSSL's TLS1-PRF")
    digest = {"sha256": "SHA2-256", "sha384": "SHA2-384"}[hash_name]
    result = subprocess.run(
        [openssl, "kdf", "-keylen", str(length), "-kdfopt", f"digest:{digest}", "-kdfopt", f"hexsecret:{secret.hex()}"]
        + ["-kdfopt", f"hexseed:{seed.hex()}", "-binary", "TLS1-PRF"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return result.stdout


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_prf_agrees_with_openssl_on_fresh_random_inputs(hash_name: str) -> None:
    """Fresh inputs every run, so agreement cannot come from a remembered answer."""
    for secret_length, seed_length, length in ((48, 77, 48), (1, 1, 13), (64, 150, 200)):
        secret, seed = os.urandom(secret_length), os.urandom(seed_length)
        assert prf(secret, b"key expansion", seed, length, hash_name) == openssl_prf(
            hash_name, secret, b"key expansion" + seed, length
        )


def test_master_secret_is_the_prf_with_its_label_and_both_randoms() -> None:
    pre_master, client_random, server_random = os.urandom(48), os.urandom(32), os.urandom(32)
    expected = prf(pre_master, b"master secret", client_random + server_random, 48)
    assert master_secret(pre_master, client_random, server_random) == expected
    # The order of the randoms matters: swapping them gives another secret.
    assert master_secret(pre_master, server_random, client_random) != expected
    session_hash = transcript_hash("sha256", b"handshake messages")
    assert extended_master_secret(pre_master, session_hash) == prf(
        pre_master, b"extended master secret", session_hash, 48
    )


def test_a_learners_prf_is_used_where_one_is_passed() -> None:
    calls = []

    def recording_prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
        calls.append((label, length, hash_name))
        return prf(secret, label, seed, length, hash_name)

    params = suite_params(CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384)
    master = master_secret(bytes(48), bytes(32), bytes(32), "sha384", prf=recording_prf)
    key_block(master, bytes(32), bytes(32), params, prf=recording_prf)
    verify_data(master, "client finished", b"handshake messages", "sha384", prf=recording_prf)
    assert calls == [
        (b"master secret", 48, "sha384"),
        (b"key expansion", params.key_block_length, "sha384"),
        (b"client finished", 12, "sha384"),
    ]
    # A wrong p_hash changes everything downstream.
    assert prf(b"s", b"l", b"seed", 16, p_hash=lambda secret, seed, n, hash_name: bytes(n)) == bytes(16)


@pytest.mark.parametrize("suite", sorted(SUITES), ids=lambda suite: suite.name)
def test_key_block_is_cut_in_rfc_order(suite: CipherSuite) -> None:
    params = suite_params(suite)
    master, server_random, client_random = os.urandom(48), os.urandom(32), os.urandom(32)
    keys = key_block(master, server_random, client_random, params)
    block = prf(master, b"key expansion", server_random + client_random, params.key_block_length, params.prf_hash)
    assert isinstance(keys, KeyBlock)
    assert (
        keys.client_write_mac_key
        + keys.server_write_mac_key
        + keys.client_write_key
        + keys.server_write_key
        + keys.client_write_iv
        + keys.server_write_iv
    ) == block
    assert len(keys.client_write_key) == len(keys.server_write_key) == params.enc_key_length
    assert len(keys.client_write_mac_key) == params.mac_key_length
    assert len(keys.server_write_iv) == params.fixed_iv_length


def test_verify_data_labels() -> None:
    messages = b"\x01\x00\x00\x00"  # any handshake messages: verify_data hashes them itself
    client = verify_data(bytes(48), "client finished", messages)
    server = verify_data(bytes(48), "server finished", messages)
    assert len(client) == len(server) == 12 and client != server
    # RFC 5246 section 7.4.9: PRF(master_secret, finished_label, Hash(handshake_messages))[:12].
    assert client == prf(bytes(48), b"client finished", transcript_hash("sha256", messages), 12)
    assert verify_data(bytes(48), "client finished", messages, "sha384") == prf(
        bytes(48), b"client finished", transcript_hash("sha384", messages), 12, "sha384"
    )
    with pytest.raises(ValueError):
        verify_data(bytes(48), "client finishd", messages)


# -- suites -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key_block_length", "mac", "prf_hash"),
    [
        # RFC 5246 appendix C: MAC key 20 (SHA-1) or 32 (SHA-256), AES key 16/32, IV 16.
        ("AES128-SHA", 2 * (20 + 16 + 16), "sha1", "sha256"),
        ("AES256-SHA", 2 * (20 + 32 + 16), "sha1", "sha256"),
        ("AES128-SHA256", 2 * (32 + 16 + 16), "sha256", "sha256"),
        ("AES256-SHA256", 2 * (32 + 32 + 16), "sha256", "sha256"),
        # RFC 5288: no MAC key, a 4-byte salt; RFC 5289: SHA-384 PRF for *_SHA384.
        ("AES128-GCM-SHA256", 2 * (16 + 4), None, "sha256"),
        ("AES256-GCM-SHA384", 2 * (32 + 4), None, "sha384"),
    ],
)
def test_suite_parameters(name: str, key_block_length: int, mac: str | None, prf_hash: str) -> None:
    params = suite_params(parse_suite_name(name))
    assert params.key_exchange == "RSA"
    assert params.key_block_length == key_block_length
    assert params.mac_algorithm == mac
    assert params.prf_hash == prf_hash
    assert params.verify_data_length == 12
    assert params.record_iv_length == (8 if params.is_aead else 16)


def test_suite_names_both_ways() -> None:
    for openssl_name, suite in OPENSSL_NAMES.items():
        assert parse_suite_name(openssl_name) == suite
        assert parse_suite_name(suite.name) == suite
        assert parse_suite_name(suite.name.lower()) == suite
    with pytest.raises(ValueError):
        parse_suite_name("RC4-MD5")


def test_suites_we_do_not_implement_fail_the_handshake() -> None:
    with pytest.raises(HandshakeFailure):
        suite_params(CipherSuite.TLS_AES_128_GCM_SHA256)  # TLS 1.3: no PRF, no key block
    with pytest.raises(HandshakeFailure):
        suite_params(0x0005)


# -- P_hash unrolled (lesson 06) ----------------------------------------------------------------------------
IETF_SECRET = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
IETF_SEED = b"test label" + bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
IETF_OUTPUT = bytes.fromhex(
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
    "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
    "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
    "87347b66"
)


def test_p_hash_steps_reproduce_the_ietf_vector() -> None:
    steps = p_hash_steps(IETF_SECRET, IETF_SEED, 100)
    assert [step.index for step in steps] == [1, 2, 3, 4]
    assert [step.used for step in steps] == [32, 32, 32, 4]
    assert b"".join(step.block[: step.used] for step in steps) == IETF_OUTPUT
    # A(i) is chained from A(i-1) alone; every block mixes A(i) with the seed.
    assert steps[0].a == hmac_digest("sha256", IETF_SECRET, IETF_SEED)
    assert steps[1].a == hmac_digest("sha256", IETF_SECRET, steps[0].a)
    assert steps[1].block == hmac_digest("sha256", IETF_SECRET, steps[1].a + IETF_SEED)


@pytest.mark.parametrize(("hash_name", "length"), [(h, n) for h in ("sha256", "sha384") for n in (0, 1, 47, 48, 104)])
def test_p_hash_steps_agree_with_p_hash(hash_name: str, length: int) -> None:
    steps = p_hash_steps(b"secret", b"seed", length, hash_name)
    assert b"".join(step.block[: step.used] for step in steps) == p_hash(b"secret", b"seed", length, hash_name)
    assert len(steps) == -(-length // (48 if hash_name == "sha384" else 32))
    with pytest.raises(ValueError):
        p_hash_steps(b"secret", b"seed", -1)


# -- the key block layout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", list(SUITES), ids=lambda s: s.name)
def test_key_block_layout_tiles_the_key_block_as_key_block_cuts_it(suite: CipherSuite) -> None:
    params = SUITES[suite]
    layout = key_block_layout(params)
    assert [name for name, _, _ in layout] == [
        "client_write_MAC_key",
        "server_write_MAC_key",
        "client_write_key",
        "server_write_key",
        "client_write_IV",
        "server_write_IV",
    ]
    offset = 0
    for _, start, length in layout:
        assert start == offset
        offset += length
    assert offset == params.key_block_length
    # The same cut prf.key_block makes: each part, found at its offset in the PRF output.
    master, server_random, client_random = os.urandom(48), os.urandom(32), os.urandom(32)
    block = prf(master, b"key expansion", server_random + client_random, params.key_block_length, params.prf_hash)
    keys = key_block(master, server_random, client_random, params)
    for name, start, length in layout:
        assert getattr(keys, name.lower()) == block[start : start + length], name


def test_rsa_suite_names_are_the_rsa_suites_by_openssl_name() -> None:
    assert RSA_SUITE_NAMES == (
        "AES128-SHA",
        "AES256-SHA",
        "AES128-SHA256",
        "AES256-SHA256",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
    for name in RSA_SUITE_NAMES:
        assert suites.openssl_name(parse_suite_name(name)) == name
    with pytest.raises(ValueError):
        suites.openssl_name(CipherSuite.TLS_AES_128_GCM_SHA256)
