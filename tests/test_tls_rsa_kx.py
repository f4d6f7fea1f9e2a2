"""RSA key exchange: the pre-master secret, the Bleichenbacher countermeasure, and the teaching view
of the padding (lesson 05) that shows what the countermeasure hides.

Decrypting a real OpenSSL ClientKeyExchange is checked in test_tls_keylog.py (against OpenSSL's own
``RSA`` key log line).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError
from handshake_lib.tls.constants import ProtocolVersion
from handshake_lib.tls.prf import master_secret, verify_data
from handshake_lib.tls.rsa_kx import (
    _select,
    decrypt_pre_master_secret,
    encrypt_pre_master_secret,
    make_pre_master_secret,
    padded_block,
    pre_master_secret_spans,
    read_padded_block,
    tamper,
)

TLS12 = ProtocolVersion.TLS1_2


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


def test_round_trip_and_openssl_compatible_padding(rsa_private_key: rsa.RSAPrivateKey) -> None:
    pre_master = make_pre_master_secret(TLS12)
    encrypted = encrypt_pre_master_secret(pre_master, rsa_private_key.public_key())
    assert len(encrypted) == 256
    # Plain RSAES-PKCS1-v1_5, decryptable by anyone's implementation.
    assert rsa_private_key.decrypt(encrypted, padding.PKCS1v15()) == pre_master
    random_bytes, calls = counting_random(0xEE)
    assert decrypt_pre_master_secret(encrypted, rsa_private_key, TLS12, random_bytes) == pre_master
    assert calls == [48]  # R is generated even when it is not needed


def bad_ciphertexts(rsa_private_key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    public = rsa_private_key.public_key()
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
def test_any_bad_ciphertext_yields_R_and_no_exception(rsa_private_key: rsa.RSAPrivateKey, case: str) -> None:
    ciphertext = bad_ciphertexts(rsa_private_key)[case]
    random_bytes, calls = counting_random(0xAB)
    result = decrypt_pre_master_secret(ciphertext, rsa_private_key, TLS12, random_bytes)
    assert result == b"\x03\x03" + bytes([0xAB]) * 46
    assert calls == [48]


def test_a_corrupted_key_exchange_fails_later_at_finished(rsa_private_key: rsa.RSAPrivateKey) -> None:
    """The server carries on with R; the mismatch only shows when the client's Finished is checked."""
    client_random, server_random = os.urandom(32), os.urandom(32)
    client_pre_master = make_pre_master_secret(TLS12)
    encrypted = bytearray(encrypt_pre_master_secret(client_pre_master, rsa_private_key.public_key()))
    encrypted[7] ^= 1
    server_pre_master = decrypt_pre_master_secret(bytes(encrypted), rsa_private_key, TLS12)
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
def test_decryption_never_raises_on_any_ciphertext(rsa_private_key: rsa.RSAPrivateKey, ciphertext: bytes) -> None:
    result = decrypt_pre_master_secret(ciphertext, rsa_private_key, TLS12)
    assert len(result) == 48 and result[:2] == b"\x03\x03"


def test_select_is_a_branch_free_choice() -> None:
    a, b = os.urandom(48), os.urandom(48)
    assert _select(1, a, b) == a
    assert _select(0, a, b) == b
    assert _select(1, bytes(48), b"\xff" * 48) == bytes(48)


# -- the teaching view: the padding shown, never used to decrypt -------------------------------------------
def _fields(spans) -> list[str]:
    return [span.field for span in spans]


def test_pre_master_secret_spans_name_the_version_and_the_random() -> None:
    spans = pre_master_secret_spans(bytes([3, 1]) + bytes(46))
    assert _fields(spans) == ["pre_master_secret.client_version", "pre_master_secret.random"]
    assert (spans[0].offset, spans[0].length, spans[1].offset, spans[1].length) == (0, 2, 2, 46)
    assert "TLS1_0" in spans[0].meaning and "0x0301" in spans[0].meaning
    assert "unknown version 0x0909" in pre_master_secret_spans(bytes([9, 9]) + bytes(46))[0].meaning
    with pytest.raises(DecodeError):
        pre_master_secret_spans(bytes(47))


def test_padded_block_shows_pkcs1_v1_5_around_the_secret(rsa_private_key: rsa.RSAPrivateKey) -> None:
    pre_master = make_pre_master_secret(0x0303)
    ciphertext = rsa_private_key.public_key().encrypt(pre_master, padding.PKCS1v15())
    block = padded_block(ciphertext, rsa_private_key)
    assert len(block) == 256 and block[:2] == b"\x00\x02" and block.endswith(b"\x00" + pre_master)
    check = read_padded_block(block)
    assert check.valid and check.problem == "" and check.is_pre_master_secret
    assert check.message == pre_master
    names = _fields(check.spans)
    assert names[:4] == [
        "eme_pkcs1_v1_5.leading_zero",
        "eme_pkcs1_v1_5.block_type",
        "eme_pkcs1_v1_5.padding_string",
        "eme_pkcs1_v1_5.separator",
    ]
    assert "eme_pkcs1_v1_5.message.client_version" in names and "eme_pkcs1_v1_5.message.random" in names
    padding_span = check.spans[2]
    assert padding_span.length == 256 - 3 - 48 and b"\x00" not in block[2 : 2 + padding_span.length]
    # Spans tile the block: the hex view can explain every byte.
    leaves = [span for span in check.spans if not span.is_group]
    assert sum(span.length for span in leaves) == len(block)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (b"\x01\x02" + b"\x11" * 10 + b"\x00" + b"m", "first byte is 0x01"),
        (b"\x00\x01" + b"\xff" * 10 + b"\x00" + b"m", "block type is 0x01"),
        (b"\x00\x02" + b"\x11" * 20, "no 00 byte"),
        (b"\x00\x02" + b"\x11" * 3 + b"\x00" + b"m" * 48, "only 3 padding bytes"),
        (b"\x00", "need 1 bytes"),
        (b"", "need 1 bytes"),
    ],
)
def test_a_broken_block_is_explained_not_raised(block: bytes, problem: str) -> None:
    check = read_padded_block(block)
    assert not check.valid and problem in check.problem, check.problem
    assert check.message == b"" and not check.is_pre_master_secret


def test_a_valid_block_with_a_short_message_is_not_a_pre_master_secret() -> None:
    check = read_padded_block(b"\x00\x02" + b"\x11" * 8 + b"\x00" + b"hello")
    assert check.valid and check.message == b"hello" and not check.is_pre_master_secret
    assert _fields(check.spans)[-1] == "eme_pkcs1_v1_5.message"


def test_padded_block_is_textbook_rsa_decryption(rsa_private_key: rsa.RSAPrivateKey) -> None:
    numbers = rsa_private_key.private_numbers()
    modulus = numbers.public_numbers.n
    for ciphertext in (bytes(range(256)), b"\xff" * 256, (modulus - 1).to_bytes(256, "big")):
        expected = pow(int.from_bytes(ciphertext, "big") % modulus, numbers.d, modulus).to_bytes(256, "big")
        assert padded_block(ciphertext, rsa_private_key) == expected


def test_padded_block_refuses_a_ciphertext_of_the_wrong_size(rsa_private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        padded_block(bytes(255), rsa_private_key)


def test_a_tampered_ciphertext_shows_broken_padding_but_decrypts_to_a_random_secret(
    rsa_private_key: rsa.RSAPrivateKey,
) -> None:
    """The teaching view reports what the real decryption must hide: same ciphertext, two answers."""
    pre_master = make_pre_master_secret(TLS12)
    tampered = tamper(encrypt_pre_master_secret(pre_master, rsa_private_key.public_key()), 0, 0x80)
    check = read_padded_block(padded_block(tampered, rsa_private_key))
    assert not check.valid and check.problem
    random_bytes, calls = counting_random(0x5A)
    assert decrypt_pre_master_secret(tampered, rsa_private_key, TLS12, random_bytes) == b"\x03\x03" + b"\x5a" * 46


def test_tamper_flips_exactly_the_chosen_bits() -> None:
    original = bytes(range(16))
    changed = tamper(original, 5, 0x81)
    assert [i for i in range(16) if original[i] != changed[i]] == [5]
    assert changed[5] == 5 ^ 0x81 and tamper(original, 5, 0) == original
    with pytest.raises(ValueError):
        tamper(original, 16, 1)
    with pytest.raises(ValueError):
        tamper(original, 0, 256)
