"""RSA key exchange: the pre-master secret, and the Bleichenbacher countermeasure.

Decrypting a real OpenSSL ClientKeyExchange is checked in test_tls_keylog.py (against OpenSSL's own
``RSA`` key log line).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.tls.constants import ProtocolVersion
from handshake_lib.tls.prf import master_secret, verify_data
from handshake_lib.tls.rsa_kx import (
    _select,
    decrypt_pre_master_secret,
    encrypt_pre_master_secret,
    make_pre_master_secret,
)

TLS12 = ProtocolVersion.TLS1_2


@pytest.fixture(scope="module")
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def counting_random(byte: int):
    """A random source that records its calls and returns a recognisable value."""
    calls: list[int] = []

    def random_bytes(n: int) -> bytes:
        calls.append(n)
        return bytes([byte]) * n

    return random_bytes, calls


def test_pre_master_secret_layout() -> None:
    pre_master = make_pre_master_secret(TLS12, random_bytes=lambda n: bytes(range(n)))
    assert pre_master == b"\x03\x03" + bytes(range(46))
    fresh = make_pre_master_secret(TLS12)
    assert len(fresh) == 48 and fresh[:2] == b"\x03\x03"
    assert fresh != make_pre_master_secret(TLS12)


def test_round_trip_and_openssl_compatible_padding(server_key: rsa.RSAPrivateKey) -> None:
    pre_master = make_pre_master_secret(TLS12)
    encrypted = encrypt_pre_master_secret(pre_master, server_key.public_key())
    assert len(encrypted) == 256
    # Plain RSAES-PKCS1-v1_5, decryptable by anyone's implementation.
    assert server_key.decrypt(encrypted, padding.PKCS1v15()) == pre_master
    random_bytes, calls = counting_random(0xEE)
    assert decrypt_pre_master_secret(encrypted, server_key, TLS12, random_bytes) == pre_master
    assert calls == [48]  # R is generated even when it is not needed


def bad_ciphertexts(server_key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    public = server_key.public_key()
    good = encrypt_pre_master_secret(make_pre_master_secret(TLS12), public)
    return {
        "flipped byte": good[:100] + bytes([good[100] ^ 0x40]) + good[101:],
        "random bytes": os.urandom(256),
        "all zeros": bytes(256),
        "47-byte secret": public.encrypt(os.urandom(47), padding.PKCS1v15()),
        "49-byte secret": public.encrypt(os.urandom(49), padding.PKCS1v15()),
        "wrong version bytes": public.encrypt(make_pre_master_secret(ProtocolVersion.TLS1_1), padding.PKCS1v15()),
        "too short": good[:-1],
        "empty": b"",
    }


@pytest.mark.parametrize(
    "case",
    [
        "flipped byte",
        "random bytes",
        "all zeros",
        "47-byte secret",
        "49-byte secret",
        "wrong version bytes",
        "too short",
        "empty",
    ],
)
def test_any_bad_ciphertext_yields_R_and_no_exception(server_key: rsa.RSAPrivateKey, case: str) -> None:
    ciphertext = bad_ciphertexts(server_key)[case]
    random_bytes, calls = counting_random(0xAB)
    result = decrypt_pre_master_secret(ciphertext, server_key, TLS12, random_bytes)
    assert result == b"\x03\x03" + bytes([0xAB]) * 46
    assert calls == [48]


def test_a_corrupted_key_exchange_fails_later_at_finished(server_key: rsa.RSAPrivateKey) -> None:
    """The server carries on with R; the mismatch only shows when the client's Finished is checked."""
    client_random, server_random = os.urandom(32), os.urandom(32)
    client_pre_master = make_pre_master_secret(TLS12)
    encrypted = bytearray(encrypt_pre_master_secret(client_pre_master, server_key.public_key()))
    encrypted[7] ^= 1
    server_pre_master = decrypt_pre_master_secret(bytes(encrypted), server_key, TLS12)
    assert len(server_pre_master) == 48 and server_pre_master[:2] == b"\x03\x03"
    handshake_messages = os.urandom(200)
    client_finished = verify_data(
        master_secret(client_pre_master, client_random, server_random), "client finished", handshake_messages
    )
    server_expects = verify_data(
        master_secret(server_pre_master, client_random, server_random), "client finished", handshake_messages
    )
    assert client_finished != server_expects


@given(ciphertext=st.binary(min_size=0, max_size=300))
@settings(max_examples=40, deadline=None)
def test_decryption_never_raises_on_any_ciphertext(server_key: rsa.RSAPrivateKey, ciphertext: bytes) -> None:
    result = decrypt_pre_master_secret(ciphertext, server_key, TLS12)
    assert len(result) == 48 and result[:2] == b"\x03\x03"


def test_select_is_a_branch_free_choice() -> None:
    a, b = os.urandom(48), os.urandom(48)
    assert _select(1, a, b) == a
    assert _select(0, a, b) == b
    assert _select(1, bytes(48), b"\xff" * 48) == bytes(48)
