"""Key exchange methods: published vectors (RFC 7748), a second ML-KEM implementation, the encodings of K,
and refusal of bad peer values.  The live proof (a real server's signature over our H) is in
tests/test_ssh_exchange_hash.py."""

from __future__ import annotations

import contextlib
import hashlib
from itertools import count

import pytest
from conftest import require_module
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, KeyExchangeFailed
from handshake_lib.ssh import kex
from handshake_lib.wire import Reader

# RFC 7748 section 6.1 (Alice and Bob) and section 5.2 (the first scalar-multiplication vector).
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
SCALAR_52 = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
U_52 = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
OUT_52 = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")

PEER_ERRORS = (DecodeError, KeyExchangeFailed)


def fixed(*chunks: bytes):
    """A `random` that hands out the given byte strings in order (each call must ask for the next one's size)."""
    queue = list(chunks)

    def random(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n, (len(chunk), n)
        return chunk

    return random


def counter_random():
    """Deterministic, different bytes on every call (for replays)."""
    counter = count()
    return lambda n: hashlib.shake_256(str(next(counter)).encode()).digest(n)


def mpint_value(encoded: bytes) -> int:
    return Reader(encoded).ssh_mpint("K")


def test_registry_has_every_method_of_the_issue_with_its_hash():
    expected = {
        "curve25519-sha256": "sha256", "curve25519-sha256@libssh.org": "sha256",
        "ecdh-sha2-nistp256": "sha256", "diffie-hellman-group14-sha256": "sha256",
        "diffie-hellman-group16-sha512": "sha512", "mlkem768x25519-sha256": "sha256",
        "sntrup761x25519-sha512": "sha512", "sntrup761x25519-sha512@openssh.com": "sha512",
    }
    assert {name: kex.kex_method(name).hash for name in expected} == expected
    with pytest.raises(KeyError, match="unknown key exchange method"):
        kex.kex_method("diffie-hellman-group1-sha1")


def test_curve25519_reproduces_rfc7748_alice_and_bob():
    method = kex.kex_method("curve25519-sha256")
    share = method.client_start(random=fixed(ALICE_PRIVATE))
    assert share.public == ALICE_PUBLIC
    server_public, server_secret = method.server_reply(ALICE_PUBLIC, random=fixed(BOB_PRIVATE))
    assert server_public == BOB_PUBLIC
    client_secret = share.finish(BOB_PUBLIC)
    assert client_secret.raw == server_secret.raw == SHARED
    # RFC 8731 section 3: K is the mpint of the 32 bytes read as a big-endian unsigned number; 0x4a
    # has its high bit clear, so the mpint is the plain 32 bytes after a length of 32.
    assert client_secret.encoded == b"\x00\x00\x00\x20" + SHARED
    assert client_secret.encoding == "mpint"


def test_curve25519_rfc7748_section_5_2_vector():
    method = kex.kex_method("curve25519-sha256@libssh.org")
    _, secret = method.server_reply(U_52, random=fixed(SCALAR_52))
    assert secret.raw == OUT_52
    # 0xc3 has its high bit set: the mpint gains a 0x00 so the number stays positive (33 bytes).
    assert secret.encoded == b"\x00\x00\x00\x21\x00" + OUT_52
    assert mpint_value(secret.encoded) == int.from_bytes(OUT_52, "big")


def test_curve25519_k_with_a_leading_zero_byte_is_a_shorter_mpint():
    # Search deterministic keys until the X25519 output starts with 0x00 (about 1 in 256): the mpint
    # then drops that byte, the corner a fixed 32-byte encoding gets wrong once per 256 connections.
    method = kex.kex_method("curve25519-sha256")
    for i in range(4096):
        private = hashlib.sha256(i.to_bytes(4, "big")).digest()
        _, secret = method.server_reply(ALICE_PUBLIC, random=fixed(private))
        if secret.raw[0] == 0:
            break
    assert secret.raw[0] == 0
    length = int.from_bytes(secret.encoded[:4], "big")
    assert length < 32 and mpint_value(secret.encoded) == int.from_bytes(secret.raw, "big")


# Low-order points of Curve25519 (u = 0, u = 1, and a point of order 8): X25519 with them is all zeros.
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


@pytest.mark.parametrize("point", LOW_ORDER, ids=["zero", "one", "order8"])
@pytest.mark.parametrize("name", ["curve25519-sha256", "mlkem768x25519-sha256", "sntrup761x25519-sha512"])
def test_all_zero_x25519_secret_is_refused_on_both_sides(name, point):
    method = kex.kex_method(name)
    share = method.client_start()
    with pytest.raises(KeyExchangeFailed, match="all zeros"):
        method.server_reply(share.public[:-32] + point)
    server_public, _ = method.server_reply(share.public)
    with pytest.raises(KeyExchangeFailed, match="all zeros"):
        share.finish(server_public[:-32] + point)


def test_ecdh_p256_against_cryptography_and_k_is_x_as_mpint():
    method = kex.kex_method("ecdh-sha2-nistp256")
    share = method.client_start(random=counter_random())
    assert len(share.public) == 65 and share.public[0] == 4
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_public = peer.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    secret = share.finish(peer_public)
    ours = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), share.public)
    expected_x = peer.exchange(ec.ECDH(), ours)
    assert secret.raw == expected_x
    assert mpint_value(secret.encoded) == int.from_bytes(expected_x, "big")


def test_ecdh_private_scalar_follows_the_injected_bytes():
    method = kex.kex_method("ecdh-sha2-nistp256")
    seed = bytes(39) + b"\x06"  # 6 mod (n-1) + 1 = 7: Q = 7G
    share = method.client_start(random=fixed(seed))
    seven_g = ec.derive_private_key(7, ec.SECP256R1()).public_key().public_numbers()
    assert share.public == b"\x04" + seven_g.x.to_bytes(32, "big") + seven_g.y.to_bytes(32, "big")


def test_ecdh_refuses_points_off_the_curve_and_compressed_points():
    method = kex.kex_method("ecdh-sha2-nistp256")
    good = method.client_start().public
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(KeyExchangeFailed, match="not on the curve"):
        method.server_reply(off_curve)
    with pytest.raises(KeyExchangeFailed, match="uncompressed"):
        method.server_reply(b"\x02" + good[1:])
    p = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
    with pytest.raises(KeyExchangeFailed, match="below the field prime"):
        method.server_reply(b"\x04" + p.to_bytes(32, "big") + good[33:])
    with pytest.raises(DecodeError, match="expected 65"):
        method.server_reply(good[:33])  # a compressed-length point


@pytest.mark.parametrize("name", ["diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512"])
def test_dh_groups_round_trip_and_e_is_g_to_the_x(name):
    method = kex.kex_method(name)
    exponent_bytes = 2 * hashlib.new(method.hash).digest_size
    x_bytes = bytes(range(1, exponent_bytes + 1))
    share = method.client_start(random=fixed(x_bytes))
    x = int.from_bytes(x_bytes, "big") + 2
    e = Reader(method.encode_public(share.public)).ssh_mpint("e")
    assert e == pow(2, x, method.prime)
    f_body, server_secret = method.server_reply(share.public, random=counter_random())
    client_secret = share.finish(f_body)
    assert client_secret == server_secret and client_secret.encoding == "mpint"
    f = Reader(method.encode_public(f_body)).ssh_mpint("f")
    assert mpint_value(client_secret.encoded) == pow(f, x, method.prime)
    assert client_secret.method == name


def test_dh_group_primes_are_the_rfc3526_safe_primes():
    # p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + offset): check the published shape cheaply
    # (top and bottom 64 bits all ones, the right size) and that p = 2q + 1 with q odd.
    for prime, bits in ((kex.MODP_GROUP14, 2048), (kex.MODP_GROUP16, 4096)):
        assert prime.bit_length() == bits
        assert prime >> (bits - 64) == (1 << 64) - 1 and prime & ((1 << 64) - 1) == (1 << 64) - 1
        assert pow(2, prime - 1, prime) == 1  # Fermat: probably prime
        assert pow(3, (prime - 1) // 2, prime) in (1, prime - 1)


@pytest.mark.parametrize("value", [0, 1, "p-1", "p", "p+1"])
def test_dh_values_outside_2_to_p_minus_2_are_refused(value):
    method = kex.kex_method("diffie-hellman-group14-sha256")
    number = {"p-1": method.prime - 1, "p": method.prime, "p+1": method.prime + 1}.get(value, value)
    with pytest.raises(KeyExchangeFailed, match=r"outside \[2, p-2\]"):
        method.server_reply(number)
    share = method.client_start()
    with pytest.raises(KeyExchangeFailed, match=r"outside \[2, p-2\]"):
        share.finish(number)


def test_dh_values_as_mpint_bytes_are_decoded_strictly():
    method = kex.kex_method("diffie-hellman-group14-sha256")
    with pytest.raises(DecodeError, match="unnecessary leading byte"):
        method.server_reply(b"\x00\x05")
    with pytest.raises(KeyExchangeFailed, match="negative"):
        method.server_reply(b"\x85")
    with pytest.raises(DecodeError, match="longer than the group's prime"):
        method.server_reply(b"\x01" * 300)


def test_mlkem_round_trip_and_k_is_a_string_of_sha256():
    method = kex.kex_method("mlkem768x25519-sha256")
    share = method.client_start(random=counter_random())
    assert len(share.public) == 1184 + 32
    server_public, server_secret = method.server_reply(share.public)
    assert len(server_public) == 1088 + 32
    client_secret = share.finish(server_public)
    assert client_secret == server_secret
    (kem_label, kem_secret), (_, x_secret) = client_secret.parts
    assert kem_label == "ML-KEM-768 shared secret" and len(kem_secret) == 32 and len(x_secret) == 32
    assert client_secret.raw == hashlib.sha256(kem_secret + x_secret).digest()
    # A string, not an mpint: length 32 and the digest as is, even when its first bit is set.
    assert client_secret.encoded == b"\x00\x00\x00\x20" + client_secret.raw
    assert client_secret.encoding == "string"


def test_mlkem_client_keys_are_reproducible_from_injected_randomness():
    method = kex.kex_method("mlkem768x25519-sha256")
    assert method.client_start(random=counter_random()).public == method.client_start(random=counter_random()).public


def test_mlkem_interoperates_with_pqclean_through_pqcrypto():
    ml_kem_768 = require_module("pqcrypto.kem.ml_kem_768")
    method = kex.kex_method("mlkem768x25519-sha256")
    # Our client, PQClean's encapsulation on the server side.
    share = method.client_start()
    ciphertext, kem_secret = ml_kem_768.encaps(share.public[:1184])
    server_x = x25519.X25519PrivateKey.generate()
    x_secret = server_x.exchange(x25519.X25519PublicKey.from_public_bytes(share.public[1184:]))
    server_public = bytes(ciphertext) + server_x.public_key().public_bytes_raw()
    assert share.finish(server_public).raw == hashlib.sha256(bytes(kem_secret) + x_secret).digest()
    # PQClean's key pair on the client side, our server.
    public, private = ml_kem_768.keygen()
    client_x = x25519.X25519PrivateKey.generate()
    server_public, secret = method.server_reply(bytes(public) + client_x.public_key().public_bytes_raw())
    assert secret.parts[0][1] == bytes(ml_kem_768.decaps(private, server_public[:1088]))
    assert secret.parts[1][1] == client_x.exchange(x25519.X25519PublicKey.from_public_bytes(server_public[1088:]))


def test_mlkem_key_with_coefficients_above_q_is_refused():
    method = kex.kex_method("mlkem768x25519-sha256")
    share = method.client_start()
    # All-ones 12-bit coefficients are 4095 >= q = 3329: FIPS 203's modulus check fails.
    with pytest.raises(KeyExchangeFailed, match="ML-KEM-768 key is invalid"):
        method.server_reply(b"\xff" * 1184 + share.public[1184:])


@pytest.mark.parametrize("name", ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"])
def test_sntrup761_sizes_round_trip_and_sha512_string(name):
    method = kex.kex_method(name)
    share = method.client_start()
    assert len(share.public) == 1158 + 32  # sntrup761 public key || X25519 key
    server_public, server_secret = method.server_reply(share.public)
    assert len(server_public) == 1039 + 32  # sntrup761 ciphertext || X25519 key
    client_secret = share.finish(server_public)
    assert client_secret == server_secret
    kem_secret, x_secret = (part for _, part in client_secret.parts)
    assert client_secret.raw == hashlib.sha512(kem_secret + x_secret).digest()
    assert client_secret.encoded == b"\x00\x00\x00\x40" + client_secret.raw


def test_sntrup761_recorded_key_pair_can_be_injected():
    sntrup_761 = require_module("pqcrypto.kem.sntrup_761")
    public, private = sntrup_761.keygen()
    method = kex.kex_method("sntrup761x25519-sha512@openssh.com")
    share = method.client_start(random=fixed(ALICE_PRIVATE), kem_keypair=(bytes(public), bytes(private)))
    assert share.public == bytes(public) + ALICE_PUBLIC
    server_public, server_secret = method.server_reply(share.public)
    assert share.finish(server_public) == server_secret


@pytest.mark.parametrize("name", [n for n, m in sorted(kex.KEX_METHODS.items()) if m.public_encoding == "string"])
def test_wrong_lengths_are_decode_errors(name):
    # (Diffie-Hellman values have no fixed length; their range is checked instead, above.)
    method = kex.kex_method(name)
    share = method.client_start()
    with pytest.raises(DecodeError):
        method.server_reply(share.public + b"\x00")
    with pytest.raises(DecodeError):
        share.finish(b"\x01" * (method.server_public_length - 1))


# --- Hypothesis: whatever a peer sends, only typed errors come out ----------------------------------

FUZZ_METHODS = [name for name in sorted(kex.KEX_METHODS) if name != "diffie-hellman-group16-sha512"]
_SHARES = {name: kex.kex_method(name).client_start() for name in kex.KEX_METHODS}


def _sized(name: str, side: str):
    method = kex.kex_method(name)
    length = method.client_public_length if side == "client" else method.server_public_length
    if length is None:
        return st.binary(max_size=300)
    # Mostly the right length (so the value checks run), sometimes not (so the length check runs).
    return st.one_of(st.binary(min_size=length, max_size=length), st.binary(max_size=length + 2))


@pytest.mark.parametrize("name", FUZZ_METHODS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_peer_values_give_only_typed_errors(name, data):
    method = kex.kex_method(name)
    client_value = data.draw(_sized(name, "client"))
    with contextlib.suppress(*PEER_ERRORS):
        method.server_reply(client_value)
    server_value = data.draw(_sized(name, "server"))
    with contextlib.suppress(*PEER_ERRORS):
        _SHARES[name].finish(server_value)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=40))
def test_fuzz_mpint_bodies_give_only_typed_errors(body):
    try:
        value = kex.decode_mpint_body(body, "e")
    except PEER_ERRORS:
        return
    assert value >= 0 and kex.kex_method("diffie-hellman-group14-sha256").encode_public(value)[4:] == body


def test_encode_public_refuses_an_int_for_a_string_method():
    with pytest.raises(TypeError, match="byte strings"):
        kex.kex_method("curve25519-sha256").encode_public(5)
