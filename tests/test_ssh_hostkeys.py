"""Host keys and their signatures, checked against OpenSSH's ssh-keygen, paramiko, asyncssh and RFC 8032.

Every signature we make is verified by two implementations we did not write, and every signature
they make is verified by ours, on the same data, for each algorithm; a flipped bit anywhere in a
signature is BadHostKeySignature.  Keys come from ``ssh-keygen`` and go back to it.
"""

from __future__ import annotations

import base64
import os

import asyncssh
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import BadHostKeySignature, DecodeError, EncodeError
from handshake_lib.ssh.hostkeys import (
    HostKey,
    HostKeyPair,
    HostKeySignature,
    decode_host_key,
    decode_signature,
    parse_public_key_line,
)
from handshake_lib.wire import Writer
from tests.conftest import require
from tests.ssh_keygen_keys import KEYGEN_TYPES, keygen, make_keys

DATA = bytes(range(32)) + b"exchange hash H stand-in"  # 56 bytes, like a SHA-256 H plus some
# Each signature algorithm and the ssh-keygen key that makes it.
ALGORITHMS = [
    ("ed25519", "ssh-ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("ecdsa384", "ecdsa-sha2-nistp384"),
    ("ecdsa521", "ecdsa-sha2-nistp521"),
    ("rsa", "rsa-sha2-256"),
    ("rsa", "rsa-sha2-512"),
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    require("ssh-keygen", "keys made by OpenSSH's own tool")
    return make_keys(tmp_path_factory.mktemp("hostkey-keys"))


@pytest.fixture(scope="module")
def pairs(keys):
    return {name: HostKeyPair.load(files.private.read_bytes()) for name, files in keys.items()}


def paramiko_key(files):
    return paramiko.PKey.from_path(files.private)


def paramiko_public(files):
    """paramiko's own reading of the public key (a private Ed25519Key from a file cannot verify)."""
    key_type, encoded = files.public_line.split()[:2]
    return paramiko.PKey.from_type_string(key_type, base64.b64decode(encoded))


# -- keys ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(KEYGEN_TYPES))
def test_ssh_keygen_private_keys_load_with_their_public_line_and_comment(keys, pairs, name):
    files, pair = keys[name], pairs[name]
    assert pair.host_key.key_type == files.key_type and pair.host_key.bits == files.bits
    assert pair.comment == files.comment
    assert pair.public_line() == files.public_line  # byte for byte what ssh-keygen wrote
    key, comment = parse_public_key_line(files.public_line)
    assert key == pair.host_key and comment == files.comment
    assert HostKey.decode(key.encode()) == key


@pytest.mark.parametrize("name", ["ecdsa", "rsa"])
def test_pem_private_keys_from_ssh_keygen_load(keys, tmp_path, name):
    files = keys[name]
    copy = tmp_path / "pem_key"
    copy.write_bytes(files.private.read_bytes())
    copy.chmod(0o600)
    keygen("-q", "-p", "-N", "", "-m", "PEM", "-f", copy)  # rewrite it in PEM
    assert copy.read_bytes().startswith(b"-----BEGIN ")
    assert b"OPENSSH" not in copy.read_bytes()
    assert HostKeyPair.load(copy.read_bytes()).host_key == HostKey.from_openssh(files.public_line)


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa"])
def test_keys_we_generate_are_read_by_ssh_keygen(tmp_path, key_type):
    require("ssh-keygen")
    pair = HostKeyPair.generate(key_type, rsa_bits=2048, comment="ours@handshakes")
    path = tmp_path / "host_key"
    path.write_bytes(pair.private_bytes())
    path.chmod(0o600)
    # ssh-keygen -y derives the public line from our private key file.
    assert keygen("-y", "-f", path).split()[:2] == pair.public_line().split()[:2]
    assert HostKeyPair.load(path.read_bytes()).host_key == pair.host_key


def test_blob_spans_name_every_field(pairs):
    key = decode_host_key(pairs["ecdsa"].host_key.blob, base_offset=100)
    fields = {span.field: (span.offset, span.length) for span in key.spans}
    assert fields["host_key"] == (100, len(key.blob))
    assert fields["host_key.key_type"] == (104, 19)  # after the 4-byte length: "ecdsa-sha2-nistp256"
    assert fields["host_key.curve"] == (127, 8)
    assert fields["host_key.Q"] == (139, 65)
    rsa = decode_host_key(pairs["rsa"].host_key.blob)
    assert [span.field for span in rsa.spans if not span.is_group and "length" not in span.field] == [
        "host_key.key_type",
        "host_key.e",
        "host_key.n",
    ]
    assert any("2048 bits" in span.meaning for span in rsa.spans)


def _blob(*parts: bytes | str | int) -> bytes:
    writer = Writer()
    for part in parts:
        writer.ssh_mpint(part) if isinstance(part, int) else writer.ssh_string(part)
    return writer.getvalue()


def test_bad_key_blobs_are_decode_errors(pairs):
    point = (
        pairs["ecdsa"]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    small = pairs["rsa"].private_key.public_key().public_numbers().n >> 1100
    cases = {
        "unsupported host key type": _blob("ssh-dss", 1, 2, 3, 4),
        "not 32": _blob("ssh-ed25519", b"\x01" * 31),
        "curve 'nistp384'": _blob("ecdsa-sha2-nistp256", "nistp384", b"\x04" + b"\x01" * 64),
        "not uncompressed": _blob("ecdsa-sha2-nistp256", "nistp256", point),
        "not a point": _blob("ecdsa-sha2-nistp256", "nistp256", b"\x04" + b"\x01" * 64),
        "outside 1024..16384": _blob("ssh-rsa", 65537, small | 1),
        "exponent": _blob("ssh-rsa", 65536, pairs["rsa"].private_key.public_key().public_numbers().n),
        "unexpected bytes": pairs["ed25519"].host_key.blob + b"\x00",
        "need": pairs["ed25519"].host_key.blob[:-1],
    }
    for expected, blob in cases.items():
        with pytest.raises(DecodeError, match=expected):
            decode_host_key(blob)
    with pytest.raises(DecodeError, match="the key inside is 'ssh-ed25519'"):
        parse_public_key_line("ssh-rsa " + base64.b64encode(pairs["ed25519"].host_key.blob).decode())


# -- signatures against paramiko and asyncssh ---------------------------------------------------------
@pytest.mark.parametrize(("name", "algorithm"), ALGORITHMS)
def test_our_signatures_verify_with_paramiko_and_asyncssh(keys, pairs, name, algorithm):
    signature = pairs[name].sign(DATA, algorithm)
    assert decode_signature(signature).algorithm == algorithm
    assert paramiko_public(keys[name]).verify_ssh_sig(DATA, paramiko.Message(signature))
    assert asyncssh.import_public_key(keys[name].public_line).verify(DATA, signature)
    assert not asyncssh.import_public_key(keys[name].public_line).verify(DATA + b".", signature)


@pytest.mark.parametrize(("name", "algorithm"), ALGORITHMS)
def test_their_signatures_verify_with_ours(keys, pairs, name, algorithm):
    host_key = HostKey.from_openssh(keys[name].public_line)
    from_paramiko = paramiko_key(keys[name]).sign_ssh_data(DATA, algorithm).asbytes()
    from_asyncssh = asyncssh.read_private_key(keys[name].private).sign(DATA, algorithm.encode())
    for signature in (from_paramiko, from_asyncssh):
        assert host_key.verify(signature, DATA, [algorithm]).algorithm == algorithm
        with pytest.raises(BadHostKeySignature, match="does not verify"):
            host_key.verify(signature, DATA[:-1])


@pytest.mark.parametrize(("name", "algorithm"), ALGORITHMS)
def test_a_flipped_bit_anywhere_is_refused(pairs, name, algorithm):
    pair = pairs[name]
    signature = bytearray(pair.sign(DATA, algorithm))
    for position in range(0, len(signature) * 8, 7):
        flipped = bytearray(signature)
        flipped[position // 8] ^= 1 << (position % 8)
        with pytest.raises(BadHostKeySignature):
            pair.host_key.verify(bytes(flipped), DATA, [algorithm])


def test_ssh_rsa_sha1_is_refused_by_policy(keys, pairs):
    from_asyncssh = asyncssh.read_private_key(keys["rsa"].private).sign(DATA, b"ssh-rsa")  # paramiko 5 has no ssh-rsa
    assert decode_signature(from_asyncssh).algorithm == "ssh-rsa"
    with pytest.raises(BadHostKeySignature, match="SHA-1.*refused by policy"):
        pairs["rsa"].host_key.verify(from_asyncssh, DATA)
    with pytest.raises(EncodeError, match="SHA-1"):
        pairs["rsa"].sign(DATA, "ssh-rsa")


def test_the_negotiated_algorithm_and_the_key_type_must_fit(pairs):
    rsa = pairs["rsa"]
    with pytest.raises(BadHostKeySignature, match="rsa-sha2-256 was not negotiated"):
        rsa.host_key.verify(rsa.sign(DATA, "rsa-sha2-256"), DATA, ["rsa-sha2-512"])
    with pytest.raises(BadHostKeySignature, match="cannot come from a ssh-ed25519 key"):
        pairs["ed25519"].host_key.verify(pairs["ecdsa"].sign(DATA), DATA)
    with pytest.raises(BadHostKeySignature, match="malformed"):
        rsa.host_key.verify(b"\x00\x00\x00", DATA)
    with pytest.raises(EncodeError):
        pairs["ed25519"].sign(DATA, "rsa-sha2-256")


def test_rsa_signature_shorter_than_the_modulus_is_padded_as_openssh_does(pairs):
    """ssh_rsa_verify pads a short signature with zeros; find a message whose signature starts with 00."""
    rsa = pairs["rsa"]
    for counter in range(4000):
        data = DATA + counter.to_bytes(2, "big")
        signature = decode_signature(rsa.sign(data, "rsa-sha2-256")).signature
        if signature[0] == 0:
            short = HostKeySignature("rsa-sha2-256", signature.lstrip(b"\x00")).encode()
            assert rsa.host_key.verify(short, data).algorithm == "rsa-sha2-256"
            return
    pytest.fail("no signature with a leading zero byte in 4000 tries (expected about 16)")


def test_ecdsa_signature_blob_holds_r_and_s_as_mpints(pairs):
    blob = pairs["ecdsa"].sign(DATA)
    signature = decode_signature(blob)
    assert signature.encode() == blob
    assert signature.signature == Writer().ssh_mpint(signature.r).ssh_mpint(signature.s).getvalue()
    assert pairs["ecdsa"].sign(DATA) == blob  # deterministic ECDSA (RFC 6979): replays are exact
    assert [span.field for span in signature.spans if span.field.endswith(("r", "s"))][-2:] == [
        "signature.signature_blob.r",
        "signature.signature_blob.s",
    ]


def test_rfc8032_ed25519_test_vector_1():
    """RFC 8032 section 7.1, TEST 1: the empty message."""
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pair = HostKeyPair.from_private_key(ed25519.Ed25519PrivateKey.from_private_bytes(secret))
    assert pair.host_key.blob[-32:].hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    signature = decode_signature(pair.sign(b"")).signature
    assert signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0"
        "595bbe24655141438e7a100b"
    )


# -- hostile bytes -------------------------------------------------------------------------------
def _mutations():
    return st.tuples(
        st.sampled_from(["flip", "truncate", "insert", "replace"]),
        st.integers(min_value=0, max_value=4000),
        st.binary(min_size=1, max_size=8),
    )


def _mutate(blob: bytes, mutation) -> bytes:
    kind, where, data = mutation
    where %= len(blob) + 1
    if kind == "flip":
        index = min(where, len(blob) - 1)
        return blob[:index] + bytes([blob[index] ^ data[0] or 1]) + blob[index + 1 :]
    if kind == "truncate":
        return blob[:where]
    if kind == "insert":
        return blob[:where] + data + blob[where:]
    return blob[:where] + data + blob[where + len(data) :]


@pytest.fixture(scope="module")
def samples():
    made = {t: HostKeyPair.generate(t, rsa_bits=1024) for t in ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")}
    return [(pair, pair.sign(DATA, algorithm)) for pair in made.values() for algorithm in pair.signature_algorithms]


@settings(max_examples=300, deadline=None)
@given(index=st.integers(min_value=0, max_value=3), mutation=_mutations())
def test_mutated_blobs_give_only_typed_errors(samples, index, mutation):
    pair, signature = samples[index]
    blob = _mutate(pair.host_key.blob, mutation)
    try:
        key = decode_host_key(blob)
    except DecodeError:
        pass
    else:  # what decodes is canonical: built again from the key, it is the same bytes
        assert HostKey.from_public_key(key.public_key).blob == blob
    blob = _mutate(signature, mutation)
    try:
        decoded = decode_signature(blob)
    except DecodeError:
        pass
    else:
        assert decoded.encode() == blob
    try:
        pair.host_key.verify(blob, DATA)
    except BadHostKeySignature:
        pass
    else:
        assert blob == signature  # only the untouched signature verifies


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_only_typed_errors(data):
    for decode in (decode_host_key, decode_signature):
        try:
            decoded = decode(data)
        except DecodeError:
            continue
        assert decoded.encode() == data


def test_oversized_blobs_are_refused_before_parsing():
    with pytest.raises(DecodeError, match="longer than"):
        decode_host_key(os.urandom(20000))
    with pytest.raises(DecodeError, match="longer than"):
        decode_signature(b"\x00" * 20000)
