"""TCPSegment codec and checksum: round trips, hand-checked layouts, malformed input, fuzzing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, EncodeError
from handshake_lib.tcp import (
    EOL,
    MSS,
    NOP,
    SACK,
    ChecksumStatus,
    Flags,
    SACKPermitted,
    TCPSegment,
    Timestamps,
    UnknownOption,
    WindowScale,
    bundled_capture,
    checksum_status,
    pseudo_header,
    pseudo_header_sum,
    read_pcap,
    tcp_checksum,
    verify_checksum,
)
from handshake_lib.tcp.segment import _ones_complement_sum

REAL_SEGMENTS = [captured for captured in read_pcap(bundled_capture())]


def test_rfc1071_worked_example() -> None:
    # RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum (with end-around carry) to 0xddf2.
    assert _ones_complement_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    # An odd length is padded with a zero byte on the right, not the left.
    assert _ones_complement_sum(b"\x01") == 0x0100


def test_header_layout_by_hand() -> None:
    segment = TCPSegment(
        src_port=0x1234, dst_port=80, seq=1000, ack=0, flags=Flags.SYN, window=64240, checksum=0xBEEF,
        options=[MSS(1460), NOP(), WindowScale(7), SACKPermitted()],
    )
    encoded = segment.encode()
    assert encoded[:4] == bytes.fromhex("12340050")
    assert int.from_bytes(encoded[4:8], "big") == 1000
    # 10 option bytes padded to 12: header is 32 bytes = 8 words, in the top nibble of byte 12.
    assert encoded[12] == 0x80 and segment.data_offset == 8 and len(encoded) == 32
    assert encoded[13] == 0x02
    assert encoded[16:18] == b"\xbe\xef"  # an explicit checksum is kept, right or wrong
    assert encoded[20:] == bytes.fromhex("020405b4" "01" "030307" "0402" "0000")


def test_decode_annotates_every_field() -> None:
    captured = REAL_SEGMENTS[1]  # the SYN,ACK
    spans = []
    segment = TCPSegment.decode(captured.segment_bytes, base_offset=100, spans=spans,
                                src_ip=captured.src_ip, dst_ip=captured.dst_ip)
    by_field = {span.field: span for span in spans}
    assert by_field["tcp.flags"].meaning == "SYN, ACK"
    assert by_field["tcp.flags"].offset == 113
    assert "partial" in by_field["tcp.checksum"].meaning
    assert by_field["tcp.options.mss"].meaning == f"maximum segment size {segment.option(MSS).value} bytes"
    assert by_field["tcp.options.window_scale"].meaning.startswith("window scale: shift 10")
    assert "initial sequence number" in by_field["tcp.seq"].meaning
    # Leaves tile the segment exactly: every byte explained once.
    leaves = sorted((span for span in spans if not span.is_group and span.length), key=lambda span: span.offset)
    covered = [offset for span in leaves for offset in range(span.offset, span.end)]
    assert covered == list(range(100, 100 + len(captured.segment_bytes)))


@pytest.mark.parametrize("captured", REAL_SEGMENTS, ids=lambda c: f"frame{c.frame_number}")
def test_real_segments_round_trip_byte_for_byte(captured) -> None:
    decoded = TCPSegment.decode(captured.segment_bytes)
    assert decoded.encode() == captured.segment_bytes
    assert decoded == captured.segment
    # Recomputing the checksum gives a segment the checksum verifies, differing only in bytes 16-17.
    recomputed = TCPSegment(**{**decoded.__dict__, "checksum": None}).encode(captured.src_ip, captured.dst_ip)
    assert verify_checksum(captured.src_ip, captured.dst_ip, recomputed)
    assert recomputed[:16] == captured.segment_bytes[:16] and recomputed[18:] == captured.segment_bytes[18:]


def test_loopback_checksums_are_the_kernels_offload_placeholder() -> None:
    # Finding (Linux 6.x, tcpdump on lo): data-path segments carry only the folded pseudo-header sum,
    # because lo "offloads" the checksum to a device that never computes it.  The kernel's RST (sent
    # by tcp_v4_send_reset, outside the offload path) carries a complete checksum.
    statuses = {c.frame_number: checksum_status(c.src_ip, c.dst_ip, c.segment_bytes) for c in REAL_SEGMENTS}
    rst = [c for c in REAL_SEGMENTS if Flags.RST in c.segment.flags]
    assert rst, "the bundled capture should hold the refused connection's RST"
    for captured in REAL_SEGMENTS:
        stored = int.from_bytes(captured.segment_bytes[16:18], "big")
        if Flags.RST in captured.segment.flags:
            assert statuses[captured.frame_number] is ChecksumStatus.VALID
            assert tcp_checksum(captured.src_ip, captured.dst_ip, captured.segment_bytes) == stored
        else:
            assert statuses[captured.frame_number] is ChecksumStatus.PARTIAL
            assert stored == pseudo_header_sum(captured.src_ip, captured.dst_ip, len(captured.segment_bytes))


def test_checksum_detects_a_flipped_bit_and_covers_the_addresses() -> None:
    segment = TCPSegment(src_port=40000, dst_port=443, seq=7, ack=9, flags=Flags.ACK | Flags.PSH, payload=b"hello")
    encoded = segment.encode("10.0.0.1", "10.0.0.2")
    assert verify_checksum("10.0.0.1", "10.0.0.2", encoded)
    assert not verify_checksum("10.0.0.1", "10.0.0.3", encoded)  # the pseudo-header is what catches misdelivery
    damaged = bytearray(encoded)
    damaged[-1] ^= 0x01
    assert checksum_status("10.0.0.1", "10.0.0.2", bytes(damaged)) is ChecksumStatus.INCORRECT


def test_ipv6_pseudo_header_layout_and_address_types() -> None:
    header = pseudo_header("::1", ipaddress.IPv6Address("::2"), 20)
    assert len(header) == 40
    assert header[32:] == bytes.fromhex("00000014" "00000006")
    v4 = pseudo_header(ipaddress.IPv4Address("127.0.0.1"), "127.0.0.2", 20)
    assert v4 == bytes.fromhex("7f000001" "7f000002" "0006" "0014")
    with pytest.raises(EncodeError):
        pseudo_header("127.0.0.1", "::1", 20)
    with pytest.raises(EncodeError):
        pseudo_header("not an address", "::1", 20)


def test_encode_needs_addresses_for_a_computed_checksum() -> None:
    with pytest.raises(EncodeError, match="src_ip"):
        TCPSegment(src_port=1, dst_port=2).encode()
    with pytest.raises(EncodeError, match="source port"):
        TCPSegment(src_port=70000, dst_port=2, checksum=0).encode()
    with pytest.raises(EncodeError, match="at most 40"):
        TCPSegment(src_port=1, dst_port=2, checksum=0, options=[Timestamps()] * 5).encode()


def test_eol_padding_and_unknown_options_survive_a_round_trip() -> None:
    # An unknown option, a NOP, EOL, then padding that is not all zeros: all kept, all re-encoded.
    options_area = bytes.fromhex("fe041234" "01" "00" "000000ff0000")
    header = bytearray(TCPSegment(src_port=1, dst_port=2, seq=3, ack=4, flags=Flags.ACK, checksum=0).encode())
    header[12] = ((20 + len(options_area)) // 4) << 4
    segment_bytes = bytes(header) + options_area + b"data"
    decoded = TCPSegment.decode(segment_bytes)
    assert decoded.options == [UnknownOption(0xFE, b"\x12\x34"), NOP(), EOL(bytes.fromhex("000000ff0000"))]
    assert decoded.payload == b"data"
    assert decoded.encode() == segment_bytes


@pytest.mark.parametrize(
    ("options_hex", "message"),
    [
        ("01010102", "no length byte"),
        ("0201", "length 1"),
        ("0200", "length 0"),
        ("020805b4", "claims 8 bytes"),
        ("0203050000000000", "must be 4 bytes"),
        ("080a00000000", "claims 10 bytes"),
        ("050b0000000000000000000000000000", "not 2 \\+ 8n"),
    ],
)
def test_malformed_options_name_the_field_and_offset(options_hex: str, message: str) -> None:
    options = bytes.fromhex(options_hex)
    options += b"\x00" * (-len(options) % 4)
    header = bytearray(TCPSegment(src_port=1, dst_port=2, checksum=0).encode())
    header[12] = ((20 + len(options)) // 4) << 4
    with pytest.raises(DecodeError, match=message) as raised:
        TCPSegment.decode(bytes(header) + options, base_offset=14)
    assert raised.value.field == "tcp.options"
    assert raised.value.offset is not None and raised.value.offset >= 14 + 20


@pytest.mark.parametrize(("offset_words", "length"), [(4, 20), (0, 20), (6, 20), (15, 40)])
def test_bad_data_offset(offset_words: int, length: int) -> None:
    data = bytearray(length)
    data[12] = offset_words << 4
    with pytest.raises(DecodeError) as raised:
        TCPSegment.decode(bytes(data), base_offset=34)
    assert raised.value.field == "tcp.data_offset" and raised.value.offset == 34 + 12


def test_too_short_for_a_header() -> None:
    with pytest.raises(DecodeError, match="at least 20"):
        TCPSegment.decode(b"\x00" * 19)


# -- property-based ---------------------------------------------------------------------------------
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
option_strategy = st.one_of(
    st.just(NOP()),
    st.builds(MSS, u16),
    st.builds(WindowScale, st.integers(0, 255)),
    st.just(SACKPermitted()),
    st.builds(Timestamps, u32, u32),
    st.builds(SACK, st.lists(st.tuples(u32, u32), min_size=1, max_size=3)),
    st.builds(UnknownOption, st.sampled_from([6, 19, 28, 30, 34, 200, 254]), st.binary(max_size=6)),
)


@st.composite
def segments(draw) -> TCPSegment:
    options = draw(st.lists(option_strategy, max_size=5))
    while len(b"".join(option.encode() for option in options)) > 40:
        options.pop()
    return TCPSegment(
        src_port=draw(u16), dst_port=draw(u16), seq=draw(u32), ack=draw(u32), flags=Flags(draw(st.integers(0, 255))),
        window=draw(u16), urgent_pointer=draw(u16), options=options, payload=draw(st.binary(max_size=64)),
    )


@given(segments(), st.sampled_from([("192.0.2.1", "198.51.100.7"), ("2001:db8::1", "fe80::2")]))
def test_any_segment_round_trips_with_a_valid_checksum(segment: TCPSegment, addresses) -> None:
    encoded = segment.encode(*addresses)
    assert verify_checksum(*addresses, encoded)
    decoded = TCPSegment.decode(encoded)
    assert decoded.encode() == encoded
    assert decoded.payload == segment.payload and decoded.seq == segment.seq and decoded.flags == segment.flags
    padding_free = [option for option in decoded.options if not isinstance(option, EOL)]
    assert padding_free == segment.options


@given(st.binary(max_size=80))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        segment = TCPSegment.decode(data)
    except DecodeError:
        return
    assert segment.encode() == data


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_SEGMENTS), st.data())
def test_mutated_real_segments_only_raise_decode_error(captured, data) -> None:
    mutated = bytearray(captured.segment_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    try:
        segment = TCPSegment.decode(bytes(mutated[:cut]))
    except DecodeError:
        return
    assert segment.encode() == bytes(mutated[:cut])
