"""The SSH binary packet protocol (RFC 4253 section 6): padding, limits, sequence numbers, NEWKEYS, explain.

Real peers: OpenSSH ``sshd -i`` receives a packet we encode (its debug log says it read message 2) and
refuses, as we do, one whose padding_length is 3 ("Corrupted padlen 3 on input"); paramiko's Packetizer
builds and reads packets over a socket pair with aes128-ctr + hmac-sha2-256 and we read/write them.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import BadPacketMac, DecodeError, EncodeError, PacketTooLarge, ProtocolError
from handshake_lib.ssh.packet import (
    MAX_PACKET_SIZE,
    PacketDecoder,
    PacketEncoder,
    explain,
    padding_length_for,
)
from handshake_lib.ssh.protection import NoProtection, protection_for
from handshake_lib.ssh.version import our_identification
from tests.conftest import require_module
from tests.test_ssh_protection import COMBINATIONS, IDS, keys_for
from tests.test_ssh_version import sshd_host_key, sshd_inetd  # noqa: F401  (a fixture, used by name)


def zeros(n: int) -> bytes:
    return bytes(n)


def clear_packet(padding_length: int, payload: bytes, padding: int | None = None) -> bytes:
    """A packet in clear with whatever fields we say, right or wrong."""
    padding = padding_length if padding is None else padding
    body = bytes([padding_length]) + payload + bytes(padding)
    return len(body).to_bytes(4, "big") + body


ALL = [("none", None)] + COMBINATIONS
ALL_IDS = ["none"] + IDS


def make(cipher, mac):
    return NoProtection() if cipher == "none" else protection_for(cipher, mac, keys_for(cipher, mac))


# -- padding and framing -----------------------------------------------------------------------------


@pytest.mark.parametrize("cipher, mac", ALL, ids=ALL_IDS)
def test_padding_is_random_at_least_4_and_block_aligned(cipher, mac):
    asked = []

    def random(n: int) -> bytes:
        asked.append(n)
        return bytes([0xA5]) * n

    protection = make(cipher, mac)
    encoder = PacketEncoder(protection=make(cipher, mac), random=random)
    align = max(8, protection.block_size)
    for size in range(1, 70):
        packet = encoder.encode_packet(b"\x02" * size)
        assert 4 <= packet.padding_length < 4 + align
        aligned = packet.packet if not protection.length_in_clear_block else packet.packet[4:]
        assert len(aligned) % align == 0
        assert packet.padding == b"\xa5" * packet.padding_length  # the injected random, nothing else
        assert len(packet.wire) == len(packet.packet) + protection.tag_length
    assert asked == [padding_length_for(size, protection) for size in range(1, 70)]


def test_encoder_refuses_empty_payload_and_oversize_and_short_random():
    with pytest.raises(EncodeError):
        PacketEncoder().encode(b"")
    with pytest.raises(EncodeError):
        PacketEncoder().encode(b"\x5e" * MAX_PACKET_SIZE)
    with pytest.raises(EncodeError):
        PacketEncoder(random=lambda n: b"\x00").encode(b"\x02")


@pytest.mark.parametrize("cipher, mac", ALL, ids=ALL_IDS)
def test_round_trip_one_byte_at_a_time_with_wrapping_sequence_numbers(cipher, mac):
    encoder = PacketEncoder(protection=make(cipher, mac))
    decoder = PacketDecoder(protection=make(cipher, mac))
    encoder.sequence_number = decoder.sequence_number = 2**32 - 1
    payloads = [b"\x14" + bytes(300), b"\x02", b"\x5e" * 1000]
    stream = b"".join(encoder.encode(p) for p in payloads)
    got = []
    for byte in stream:
        decoder.feed(bytes([byte]))
        packet = decoder.next_packet()
        if packet is not None:
            got.append((packet.sequence_number, packet.payload))
    assert got == [(2**32 - 1, payloads[0]), (0, payloads[1]), (1, payloads[2])]
    assert encoder.sequence_number == decoder.sequence_number == 2


def test_newkeys_switches_from_the_next_packet_even_if_already_buffered():
    cipher, mac = "aes128-ctr", "hmac-sha2-256-etm@openssh.com"
    encoder, decoder = PacketEncoder(), PacketDecoder()
    stream = encoder.encode(b"\x15")  # SSH_MSG_NEWKEYS, in clear
    encoder.set_protection(make(cipher, mac))
    encoder.reset_sequence_number()  # strict kex
    stream += encoder.encode(b"\x05ssh-userauth")
    decoder.feed(stream)  # both packets arrive in one read
    assert decoder.next_payload() == b"\x15" and decoder.sequence_number == 1
    decoder.set_protection(make(cipher, mac))
    decoder.reset_sequence_number()
    packet = decoder.next_packet()
    assert packet.payload == b"\x05ssh-userauth" and packet.sequence_number == 0
    assert packet.protection == "aes128-ctr + hmac-sha2-256-etm@openssh.com"


def test_without_strict_kex_reset_the_sequence_number_mismatch_is_a_mac_error():
    cipher, mac = "chacha20-poly1305@openssh.com", "hmac-sha2-256"  # (ignored beside an AEAD cipher)
    encoder, decoder = PacketEncoder(), PacketDecoder()
    decoder.feed(encoder.encode(b"\x15"))
    decoder.next_payload()
    encoder.set_protection(make(cipher, mac))
    encoder.reset_sequence_number()
    decoder.set_protection(make(cipher, mac))  # forgot reset_sequence_number(): 1 != 0
    decoder.feed(encoder.encode(b"\x05ssh-userauth"))
    with pytest.raises(BadPacketMac):
        decoder.next_payload()


# -- limits -------------------------------------------------------------------------------------------


def test_a_huge_length_in_clear_is_refused_after_four_bytes():
    decoder = PacketDecoder()
    decoder.feed(b"\xff\xff\xff")
    assert decoder.next_payload() is None
    decoder.feed(b"\xff")
    with pytest.raises(PacketTooLarge):
        decoder.next_payload()
    assert decoder.buffered == 4
    with pytest.raises(PacketTooLarge):  # and it stays refused
        decoder.feed(b"more")


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_a_huge_encrypted_length_is_refused_from_the_first_block(cipher, mac):
    # The peer has the keys and announces 2^32-1 bytes: refused before any body byte is waited for.
    sender = make(cipher, mac)
    forged = sender.seal(0, b"\xff\xff\xff\xff" + bytes(28))
    decoder = PacketDecoder(protection=make(cipher, mac))
    needed = decoder.protection.header_length
    assert 4 <= needed <= 16
    decoder.feed(forged[: needed - 1])
    assert decoder.next_payload() is None
    decoder.feed(forged[needed - 1 : needed])
    with pytest.raises(BadPacketMac, match="above the limit"):
        decoder.next_payload()


def test_the_largest_packet_is_accepted_and_one_block_more_is_not():
    largest = MAX_PACKET_SIZE - 4  # 262,140: the largest aligned packet_length (262,144 + 4 is not aligned)
    decoder = PacketDecoder()
    decoder.feed(clear_packet(4, b"\x5e" * (largest - 5)))
    assert len(decoder.next_payload()) == largest - 5
    decoder = PacketDecoder()
    decoder.feed(clear_packet(12, b"\x5e" * (largest - 5)))
    with pytest.raises(PacketTooLarge):
        decoder.next_payload()
    with pytest.raises(ValueError):
        PacketDecoder(max_packet_size=34_999)  # RFC 4253 section 6.1's minimum


@pytest.mark.parametrize(
    "wire, field",
    [
        (clear_packet(3, b"\x02" * 8), "padding_length"),  # padding below 4
        (clear_packet(11, b""), "padding_length"),  # padding leaves no payload
        (clear_packet(255, b"\x02" * 11, 0), "padding_length"),  # padding longer than the packet
        ((4).to_bytes(4, "big") + bytes(4), "packet_length"),  # below 5
        (clear_packet(4, b"\x02" * 4), "packet_length"),  # 13 + 4 bytes: not aligned to 8
    ],
)
def test_bad_lengths_in_clear_are_decode_errors(wire, field):
    decoder = PacketDecoder()
    decoder.feed(wire + bytes(64))
    with pytest.raises(DecodeError) as caught:
        decoder.next_payload()
    assert caught.value.field == f"packet.{field}"


# -- explain -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cipher, mac", ALL, ids=ALL_IDS)
def test_explain_annotates_every_byte_and_moves_nothing(cipher, mac):
    encoder = PacketEncoder(protection=make(cipher, mac))
    decoder = PacketDecoder(protection=make(cipher, mac))
    first, second = encoder.encode(b"\x02first"), encoder.encode(b"\x02second")
    opened = decoder.explain(first)
    assert opened.accepted and opened.payload == b"\x02first" and opened.failed == ""
    leaves = [span for span in opened.spans if not span.is_group]
    assert [span.field for span in leaves][:4] == [
        "packet.packet_length",
        "packet.padding_length",
        "packet.payload",
        "packet.padding",
    ]
    covered = sorted((span.offset, span.end) for span in leaves)
    assert covered[0][0] == 0 and covered[-1][1] == len(first)
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))  # no gaps, no overlaps
    # explain moved nothing: the decoder still opens both packets in order
    decoder.feed(first + second)
    assert decoder.next_payload() == b"\x02first" and decoder.next_payload() == b"\x02second"


@pytest.mark.parametrize("cipher, mac", COMBINATIONS, ids=IDS)
def test_explain_says_which_check_failed(cipher, mac):
    wire = PacketEncoder(protection=make(cipher, mac)).encode(b"\x02hello")
    tampered = wire[:-1] + bytes([wire[-1] ^ 1])
    opened = explain(tampered, make(cipher, mac))
    assert opened.failed == "mac" and isinstance(opened.error, BadPacketMac) and not opened.accepted
    assert opened.packet_length == len(wire) - 4 - make(cipher, mac).tag_length
    assert explain(wire[:10], make(cipher, mac)).failed in ("truncated", "length")


def test_explain_in_clear():
    opened = explain(clear_packet(3, b"\x02" * 8))
    assert opened.failed == "padding" and isinstance(opened.error, DecodeError)
    opened = explain(b"\xff\xff\xff\xff")
    assert opened.failed == "length" and isinstance(opened.error, PacketTooLarge)


# -- fuzzing -------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), cut=st.integers(0, 200))
def test_fuzz_clear_decoder_only_typed_errors(data, cut):
    decoder = PacketDecoder()
    try:
        decoder.feed(data[:cut])
        decoder.next_payload()
        decoder.feed(data[cut:])
        while decoder.next_payload() is not None:
            pass
    except ProtocolError:
        return
    assert decoder.buffered <= len(data)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=4),
    position=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_fuzz_clear_mutations(payloads, position, bit):
    stream = bytearray(b"".join(PacketEncoder().encode(p) for p in payloads))
    stream[position % len(stream)] ^= 1 << bit
    decoder = PacketDecoder()
    decoder.feed(bytes(stream))
    try:
        while decoder.next_payload() is not None:
            pass
    except ProtocolError:
        pass


# -- real peers ----------------------------------------------------------------------------------------


def test_sshd_reads_our_packet_and_refuses_bad_padding_as_we_do(sshd_host_key):  # noqa: F811
    good = PacketEncoder(random=zeros).encode(b"\x02\x00\x00\x00\x05hello")  # SSH_MSG_IGNORE
    _, log = sshd_inetd(sshd_host_key, our_identification().encode() + good)
    assert "receive packet: type 2" in log and "Corrupted padlen" not in log
    bad = clear_packet(3, b"\x02" + bytes(7))  # 16 bytes, aligned: only the padding is wrong
    _, log = sshd_inetd(sshd_host_key, our_identification().encode() + good + bad)
    assert "Corrupted padlen 3 on input" in log
    decoder = PacketDecoder()
    decoder.feed(good + bad)
    assert decoder.next_payload() == b"\x02\x00\x00\x00\x05hello"
    with pytest.raises(DecodeError):
        decoder.next_payload()


def paramiko_pair(cipher: str, mac: str, keys_out, keys_in):
    """A paramiko Packetizer over one end of a socket pair, keyed as ``Transport._activate_*bound`` keys it.

    paramiko's own tables (``_cipher_info``, ``_mac_info``) and ``_get_engine`` build the engines, on a
    Transport made without ``__init__`` (no socket, no thread: only its class tables are used).
    """
    paramiko = require_module("paramiko")
    transport = object.__new__(paramiko.Transport)
    info = paramiko.Transport._cipher_info[cipher]
    aead = info.get("is_aead", False)
    mac_info = paramiko.Transport._mac_info[mac]
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    theirs.settimeout(5)
    packetizer = paramiko.packet.Packetizer(theirs)
    engines = [
        transport._get_engine(cipher, keys.key, keys.iv, operation, aead)
        for keys, operation in ((keys_out, transport._ENCRYPT), (keys_in, transport._DECRYPT))
    ]
    etm = not aead and "etm@openssh.com" in mac
    packetizer.set_outbound_cipher(
        engines[0],
        info["block-size"],
        None if aead else mac_info["class"],
        16 if aead else mac_info["size"],
        None if aead else keys_out.mac_key,
        sdctr=cipher.endswith("-ctr"),
        etm=etm,
        aead=aead,
        iv_out=keys_out.iv if aead else None,
    )
    packetizer.set_inbound_cipher(
        engines[1],
        info["block-size"],
        None if aead else mac_info["class"],
        16 if aead else mac_info["size"],
        None if aead else keys_in.mac_key,
        etm=etm,
        aead=aead,
        iv_in=keys_in.iv if aead else None,
    )
    return paramiko, ours, theirs, packetizer


# paramiko has every cipher x MAC we implement but chacha20-poly1305.
PARAMIKO = [(cipher, mac) for cipher, mac in COMBINATIONS if not cipher.startswith("chacha")]


@pytest.mark.parametrize("cipher, mac", PARAMIKO, ids=[i for i in IDS if not i.startswith("chacha")])
def test_paramiko_packetizer_reads_ours_and_we_read_its(cipher, mac):
    to_paramiko, from_paramiko = keys_for(cipher, mac, b"c2s"), keys_for(cipher, mac, b"s2c")
    paramiko, ours, theirs, packetizer = paramiko_pair(cipher, mac, from_paramiko, to_paramiko)
    try:
        encoder = PacketEncoder(protection=protection_for(cipher, mac, to_paramiko))
        decoder = PacketDecoder(protection=protection_for(cipher, mac, from_paramiko))
        for round_number in range(3):  # three packets each way: the CTR stream and GCM counter run on
            text = b"abc" * (round_number * 50 + 1)
            ours.sendall(encoder.encode(b"\x02" + len(text).to_bytes(4, "big") + text))
            kind, message = packetizer.read_message()
            assert kind == 2 and message.get_binary() == text
            reply = paramiko.Message()
            reply.add_byte(b"\x5e")
            reply.add_string(b"from paramiko" * (round_number * 20 + 1))
            packetizer.send_message(reply)
            payload = None
            while payload is None:
                decoder.feed(ours.recv(4096))
                payload = decoder.next_payload()
            assert payload == reply.asbytes()
        assert decoder.sequence_number == encoder.sequence_number == 3
    finally:
        ours.close()
        theirs.close()
