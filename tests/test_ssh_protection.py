"""SSH packet protection, checked byte for byte against asyncssh's packet encryption (nobody here wrote it).

For every cipher x MAC we implement, with the same keys and sequence numbers: packets we seal are what
asyncssh's ``encrypt_packet`` gives and what its ``decrypt_header``/``decrypt_packet`` open, and packets
asyncssh seals are what our decoder opens; sequence numbers cross 2^32 and the GCM invocation counter
crosses 2^64 on the way.  The key sizes of our registry are asyncssh's.  Then tampering: flipping any
bit of a protected packet (length, ciphertext, MAC or tag) is BadPacketMac, never another exception and
never a decoder waiting for a forged length.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import BadPacketMac, ProtocolError, SSHDisconnect
from handshake_lib.ssh.packet import PacketDecoder, PacketEncoder
from handshake_lib.ssh.protection import (
    CIPHERS,
    SUPPORTED_CIPHERS,
    SUPPORTED_MACS,
    ChaChaPolyProtection,
    DirectionKeys,
    cipher_spec,
    mac_spec,
    protection_for,
)
from tests.conftest import require_module

COMBINATIONS = [
    (cipher, mac)
    for cipher in SUPPORTED_CIPHERS
    for mac in (SUPPORTED_MACS if not CIPHERS[cipher].is_aead else ("hmac-sha2-256",))
]
IDS = [f"{cipher}+{mac}" if not CIPHERS[cipher].is_aead else cipher for cipher, mac in COMBINATIONS]


def keys_for(cipher: str, mac: str, label: bytes = b"", *, iv: bytes | None = None) -> DirectionKeys:
    """Deterministic keys of the right sizes (published nowhere: fixed so a failure replays)."""

    def stream(name: bytes, size: int) -> bytes:
        return hashlib.shake_256(label + name + cipher.encode() + mac.encode()).digest(size)

    cspec, mspec = cipher_spec(cipher), mac_spec(mac)
    return DirectionKeys(
        iv if iv is not None else stream(b"iv", cspec.iv_length),
        stream(b"key", cspec.key_length),
        stream(b"mac", mspec.key_length),
    )


def asyncssh_encryption(cipher: str, mac: str, keys: DirectionKeys):
    encryption = require_module("asyncssh.encryption")
    etm = mac_spec(mac).encrypt_then_mac
    return encryption.get_encryption(cipher.encode(), keys.key, keys.iv, mac.encode(), keys.mac_key, etm)


def tag_size(cipher: str, mac: str) -> int:
    spec = cipher_spec(cipher)
    return spec.tag_length if spec.is_aead else mac_spec(mac).tag_length


def asyncssh_seal(encryption, seq: int, payload: bytes, cipher: str, mac: str, padding: bytes) -> bytes:
    """A packet as asyncssh's connection builds it (connection.py ``send_packet``), padding given."""
    spec = cipher_spec(cipher)
    in_clear = spec.is_aead or mac_spec(mac).encrypt_then_mac
    block = max(8, spec.block_size)
    padlen = -((1 if in_clear else 5) + len(payload)) % block
    if padlen < 4:
        padlen += block
    body = bytes([padlen]) + payload + padding[:padlen]
    header = (len(body)).to_bytes(4, "big")
    sealed, tag = encryption.encrypt_packet(seq, header, body)
    return sealed + tag


def asyncssh_open(encryption, seq: int, wire: bytes, cipher: str, mac: str) -> bytes:
    """Open ``wire`` as asyncssh's connection does (``_recv_pkthdr``, ``_recv_packet``); the payload."""
    block = max(8, cipher_spec(cipher).block_size)
    macsize = tag_size(cipher, mac)
    first, length = encryption.decrypt_header(seq, wire[:block], 4)
    remaining = 4 + int.from_bytes(length, "big") + macsize - block
    rest = wire[block : block + remaining - macsize]
    tag = wire[block + remaining - macsize : block + remaining]
    assert block + remaining == len(wire)
    data = encryption.decrypt_packet(seq, first, rest, 4, tag)
    assert data is not None, "asyncssh refused our packet"
    return data[1 : -data[0]]


PAYLOADS = [b"\x14" + bytes(range(200)), b"\x02", b"\x5e" + b"x" * 33, b"\x15"]


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_registry_sizes_are_asyncssh_sizes(cipher, mac):
    encryption = require_module("asyncssh.encryption")
    key, iv, block, mac_key, mac_tag, etm = encryption.get_encryption_params(cipher.encode(), mac.encode())
    spec = cipher_spec(cipher)
    # asyncssh calls chacha20's block 1 (a stream cipher), OpenSSH 8; padding aligns to max(8, block) in all.
    assert (spec.key_length, spec.iv_length, max(8, spec.block_size)) == (key, iv, max(8, block))
    if spec.is_aead:
        assert (spec.tag_length, mac_key) == (mac_tag, 0)
    else:
        mspec = mac_spec(mac)
        assert (mspec.key_length, mspec.tag_length, mspec.encrypt_then_mac) == (mac_key, mac_tag, etm)


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_we_seal_what_asyncssh_seals_and_opens(cipher, mac):
    # The GCM invocation counter starts two below 2^64; the sequence numbers two below 2^32.
    spec = cipher_spec(cipher)
    iv = None if spec.iv_length != 12 else b"\x01\x02\x03\x04" + b"\xff" * 7 + b"\xfe"
    keys = keys_for(cipher, mac, iv=iv)
    padding = bytes(range(7, 7 + 40))
    encoder = PacketEncoder(protection=protection_for(cipher, mac, keys), random=lambda n: padding[:n])
    encoder.sequence_number = 2**32 - 2
    their_sealer = asyncssh_encryption(cipher, mac, keys)
    their_opener = asyncssh_encryption(cipher, mac, keys)
    seqs = []
    for payload in PAYLOADS:
        packet = encoder.encode_packet(payload)
        seqs.append(packet.sequence_number)
        assert packet.wire == asyncssh_seal(their_sealer, packet.sequence_number, payload, cipher, mac, padding)
        assert asyncssh_open(their_opener, packet.sequence_number, packet.wire, cipher, mac) == payload
    assert seqs == [2**32 - 2, 2**32 - 1, 0, 1]


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_we_open_what_asyncssh_seals_in_any_pieces(cipher, mac):
    keys = keys_for(cipher, mac, b"other")
    sealer = asyncssh_encryption(cipher, mac, keys)
    stream = b"".join(
        asyncssh_seal(sealer, (2**32 - 1 + index) % 2**32, payload, cipher, mac, os.urandom(40))
        for index, payload in enumerate(PAYLOADS)
    )
    decoder = PacketDecoder(protection=protection_for(cipher, mac, keys))
    decoder.sequence_number = 2**32 - 1
    got = []
    for start in range(0, len(stream), 13):
        decoder.feed(stream[start : start + 13])
        while (payload := decoder.next_payload()) is not None:
            got.append(payload)
    assert got == PAYLOADS and decoder.buffered == 0 and decoder.sequence_number == 3


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_every_flipped_byte_is_bad_packet_mac(cipher, mac):
    keys = keys_for(cipher, mac)
    wire = PacketEncoder(protection=protection_for(cipher, mac, keys)).encode(b"\x05" + b"ssh-userauth")
    # Whatever length a flipped bit makes, 40,000 more bytes cover it (or it is above the limit).
    more = bytes(40_000)
    for position in range(len(wire)):
        forged = bytearray(wire)
        forged[position] ^= 1 << (position % 8)
        decoder = PacketDecoder(protection=protection_for(cipher, mac, keys), max_packet_size=35_000)
        decoder.feed(bytes(forged) + more)
        with pytest.raises(BadPacketMac) as caught:
            decoder.next_packet()
        assert caught.value.ssh_disconnect == SSHDisconnect.MAC_ERROR
        # A decoder that failed stays failed, with the same error.
        with pytest.raises(BadPacketMac):
            decoder.next_packet()


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_wrong_sequence_number_is_bad_packet_mac(cipher, mac):
    # What a dropped, replayed or inserted packet does (the Terrapin attack deletes one; strict kex is the fix).
    keys = keys_for(cipher, mac)
    wire = PacketEncoder(protection=protection_for(cipher, mac, keys)).encode(b"\x02hello")
    decoder = PacketDecoder(protection=protection_for(cipher, mac, keys))
    decoder.sequence_number = 1
    decoder.feed(wire)
    if cipher_spec(cipher).is_aead and "gcm" in cipher:
        assert decoder.next_payload() == b"\x02hello"  # GCM's nonce is its own counter, not the sequence number
    else:
        with pytest.raises(BadPacketMac):
            decoder.next_payload()


def test_chacha20_poly1305_layout():
    # PROTOCOL.chacha20poly1305: K_2 is the first 32 bytes (main), K_1 the next 32 (header).
    keys = DirectionKeys(b"", bytes(range(64)))
    protection = protection_for("chacha20-poly1305@openssh.com", None, keys)
    assert isinstance(protection, ChaChaPolyProtection)
    assert protection.main_key == bytes(range(32)) and protection.header_key == bytes(range(32, 64))
    clear = (12).to_bytes(4, "big") + b"\x06\x02" + bytes(10)
    wire = protection.seal(7, clear)
    assert len(wire) == len(clear) + 16
    assert protection.packet_length(7, wire[:4]) == 12
    assert protection.packet_length(8, wire[:4]) != 12  # the sequence number is the nonce


@pytest.mark.parametrize(
    "cipher, mac, keys",
    [
        ("aes128-ctr", "hmac-sha2-256", DirectionKeys(bytes(16), bytes(15), bytes(32))),
        ("aes256-gcm@openssh.com", None, DirectionKeys(bytes(11), bytes(32))),
        ("aes128-ctr", "hmac-sha2-512", DirectionKeys(bytes(16), bytes(16), bytes(32))),
        ("aes128-ctr", None, DirectionKeys(bytes(16), bytes(16))),
        ("aes128-cbc", "hmac-sha2-256", DirectionKeys(bytes(16), bytes(16), bytes(32))),
        ("aes128-ctr", "hmac-md5", DirectionKeys(bytes(16), bytes(16), bytes(32))),
    ],
)
def test_protection_for_refuses_short_keys_and_unknown_names(cipher, mac, keys):
    with pytest.raises(ValueError):
        protection_for(cipher, mac, keys)


@settings(max_examples=60, deadline=None)
@given(
    combination=st.sampled_from(COMBINATIONS),
    data=st.binary(max_size=300),
    seq=st.integers(0, 2**32 - 1),
)
def test_fuzz_protected_decoder_only_typed_errors(combination, data, seq):
    cipher, mac = combination
    decoder = PacketDecoder(protection=protection_for(cipher, mac, keys_for(cipher, mac)))
    decoder.sequence_number = seq
    decoder.feed(data)
    try:
        payload = decoder.next_payload()
    except ProtocolError as error:
        assert isinstance(error, BadPacketMac)  # under protection every refusal is a MAC error
        return
    assert payload is None  # random bytes never pass a MAC
