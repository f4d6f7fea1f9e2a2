"""pcap reading, checked against tshark on the shipped captures and on a fresh tcpdump capture."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, peers_required, require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError
from handshake_lib.tcp import (
    BUNDLED_CAPTURES,
    MSS,
    ChecksumStatus,
    Flags,
    LinkType,
    TCPSegment,
    Timestamps,
    WindowScale,
    bundled_capture,
    read_pcap,
    read_pcap_header,
    verify_checksum,
)

LOOPBACK = bundled_capture("loopback_handshakes.pcap")
ANY = bundled_capture("any_handshakes.pcap")
TSHARK_FIELDS = [
    "frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.window_size_value",
    "tcp.hdr_len", "tcp.len", "tcp.checksum", "tcp.options.mss_val", "tcp.options.wscale.shift",
    "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
    "tcp.payload",
]


def tshark_rows(path: Path, *extra: str) -> list[dict[str, str]]:
    tshark = require("tshark", "the TCP decoder is cross-checked against Wireshark's")
    command = [tshark, "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f", *extra]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(TSHARK_FIELDS, line.split("|"), strict=True)) for line in output.splitlines()]


def our_fields(captured) -> dict[str, str]:
    segment: TCPSegment = captured.segment
    mss, scale, stamps = segment.option(MSS), segment.option(WindowScale), segment.option(Timestamps)
    v4 = captured.src_ip.version == 4
    return {
        "frame.number": str(captured.frame_number),
        "tcp.srcport": str(segment.src_port),
        "tcp.dstport": str(segment.dst_port),
        "tcp.seq_raw": str(segment.seq),
        "tcp.ack_raw": str(segment.ack),
        "tcp.flags": f"0x{int(segment.flags) | segment.reserved << 8:04x}",
        "tcp.window_size_value": str(segment.window),
        "tcp.hdr_len": str(segment.header_length),
        "tcp.len": str(len(segment.payload)),
        "tcp.checksum": f"0x{segment.checksum:04x}",
        "tcp.options.mss_val": str(mss.value) if mss else "",
        "tcp.options.wscale.shift": str(scale.shift) if scale else "",
        "tcp.options.timestamp.tsval": str(stamps.ts_val) if stamps else "",
        "tcp.options.timestamp.tsecr": str(stamps.ts_ecr) if stamps else "",
        "ip.src": str(captured.src_ip) if v4 else "",
        "ipv6.src": "" if v4 else str(captured.src_ip),
        "ip.dst": str(captured.dst_ip) if v4 else "",
        "ipv6.dst": "" if v4 else str(captured.dst_ip),
        "tcp.payload": segment.payload.hex(),
    }


@pytest.mark.peer
@pytest.mark.parametrize("name", BUNDLED_CAPTURES)
def test_bundled_captures_match_tshark(name: str) -> None:
    path = bundled_capture(name)
    ours = [our_fields(captured) for captured in read_pcap(path)]
    theirs = tshark_rows(path)
    assert len(ours) == len(theirs) > 0
    assert ours == theirs


def test_bundled_captures_hold_the_lesson() -> None:
    """The shipped captures hold what the lesson shows: handshakes on IPv4 and IPv6, data, FIN, RST."""
    for name, link in (("loopback_handshakes.pcap", LinkType.ETHERNET), ("any_handshakes.pcap", LinkType.LINUX_SLL2)):
        path = bundled_capture(name)
        assert path.stat().st_size < 8192
        assert read_pcap_header(path.read_bytes()).link_type == link
        captured = read_pcap(path)
        assert_lesson_contents(captured)
        assert all(c.link_type == link for c in captured)


def assert_lesson_contents(captured) -> None:
    for version in (4, 6):
        flows = [c.segment for c in captured if c.src_ip.version == version]
        syn, syn_ack, ack = flows[:3]
        assert syn.flags == Flags.SYN and syn_ack.flags == Flags.SYN | Flags.ACK and ack.flags == Flags.ACK
        assert syn_ack.ack == (syn.seq + 1) % 2**32 and ack.ack == (syn_ack.seq + 1) % 2**32
        assert ack.seq == syn_ack.ack
        assert syn.option(MSS) is not None and syn_ack.option(MSS) is not None
        assert any(segment.payload for segment in flows)
        assert sum(Flags.FIN in segment.flags for segment in flows) == 2
    refused = [c.segment for c in captured if Flags.RST in c.segment.flags]
    assert len(refused) == 1 and refused[0].flags == Flags.RST | Flags.ACK


def test_spans_cover_whole_frames() -> None:
    for captured in read_pcap(ANY) + read_pcap(LOOPBACK):
        leaves = sorted((s for s in captured.spans if not s.is_group and s.length), key=lambda s: s.offset)
        covered = [offset for span in leaves for offset in range(span.offset, span.end)]
        assert covered == list(range(len(captured.frame)))
        tcp_group = next(s for s in captured.spans if s.field == "tcp")
        assert tcp_group.offset == captured.segment_offset
        assert captured.frame[captured.segment_offset :][: len(captured.segment_bytes)] == captured.segment_bytes


@pytest.mark.peer
def test_our_checksums_are_what_wireshark_calls_good(tmp_path: Path) -> None:
    """Fill in every offloaded checksum with ours; Wireshark must then find every segment Good."""
    data = bytearray(LOOPBACK.read_bytes())
    captured = read_pcap(bytes(data))
    position = 24
    for item in captured:
        position += 16
        fixed = TCPSegment(**{**item.segment.__dict__, "checksum": None}).encode(item.src_ip, item.dst_ip)
        start = position + item.segment_offset
        data[start : start + len(fixed)] = fixed
        position += len(item.frame)
    path = tmp_path / "fixed.pcap"
    path.write_bytes(bytes(data))
    tshark = require("tshark")
    output = subprocess.run(
        [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "tcp.checksum.status"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    assert output == ["1"] * len(captured)  # 1 = PROTO_CHECKSUM_E_GOOD
    assert all(item.checksum_status() is ChecksumStatus.VALID for item in read_pcap(path))
    # And the original, as tshark sees it: everything but the kernel-built RST is "bad" (offloaded).
    original = subprocess.run(
        [tshark, "-r", str(LOOPBACK), "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "tcp.checksum.status"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    ours = ["1" if item.checksum_status() is ChecksumStatus.VALID else "0" for item in captured]
    assert original == ours


# -- other link types and file variants, built from the real packets ---------------------------------
def ip_packets() -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, IP packet) for each frame of the Ethernet capture."""
    data = LOOPBACK.read_bytes()
    packets, position = [], 24
    while position < len(data):
        seconds, fraction, length = (int.from_bytes(data[position + i : position + i + 4], "little") for i in (0, 4, 8))
        frame = data[position + 16 : position + 16 + length]
        packets.append((seconds, fraction, frame[14:]))
        position += 16 + length
    return packets


def write_pcap(link_type: int, wrap, *, byte_order: str = "little", nanoseconds: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = bytearray(magic.to_bytes(4, byte_order))
    out += (2).to_bytes(2, byte_order) + (4).to_bytes(2, byte_order) + bytes(8)
    out += (262144).to_bytes(4, byte_order) + link_type.to_bytes(4, byte_order)
    for seconds, micros, packet in ip_packets():
        frame = wrap(packet)
        fraction = micros * 1000 if nanoseconds else micros
        for value in (seconds, fraction, len(frame), len(frame)):
            out += value.to_bytes(4, byte_order)
        out += frame
    return bytes(out)


def version(packet: bytes) -> int:
    return packet[0] >> 4


VARIANTS = {
    "null-little-endian": (LinkType.NULL, lambda p: (2 if version(p) == 4 else 30).to_bytes(4, "little") + p, {}),
    "null-big-endian": (
        LinkType.NULL, lambda p: (2 if version(p) == 4 else 24).to_bytes(4, "big") + p, {"byte_order": "big"},
    ),
    "raw": (LinkType.RAW, lambda p: p, {"nanoseconds": True}),
    "sll": (
        LinkType.LINUX_SLL,
        lambda p: bytes.fromhex("0000" "0304" "0006") + bytes(8) + (0x0800 if version(p) == 4 else 0x86DD).to_bytes(2)
        + p,
        {"byte_order": "big"},
    ),
    "ethernet-vlan-padded": (
        LinkType.ETHERNET,
        lambda p: bytes(12) + b"\x81\x00\x00\x2a" + (0x0800 if version(p) == 4 else 0x86DD).to_bytes(2) + p + bytes(6),
        {},
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_link_types_and_file_variants_decode_the_same_segments(variant: str) -> None:
    link_type, wrap, options = VARIANTS[variant]
    data = write_pcap(link_type, wrap, **options)
    reference = read_pcap(LOOPBACK)
    decoded = read_pcap(data)
    assert [c.segment for c in decoded] == [c.segment for c in reference]
    assert [c.segment_bytes for c in decoded] == [c.segment_bytes for c in reference]
    assert [c.timestamp_ticks for c in decoded] == [
        c.timestamp_ticks * (1000 if options.get("nanoseconds") else 1) for c in reference
    ]
    assert [(c.src_ip, c.dst_ip) for c in decoded] == [(c.src_ip, c.dst_ip) for c in reference]
    if variant == "ethernet-vlan-padded":
        assert decoded[0].spans[-1].field == "trailer"


@pytest.mark.peer
@pytest.mark.parametrize("variant", VARIANTS)
def test_link_type_variants_match_tshark(variant: str, tmp_path: Path) -> None:
    """Wireshark reads the synthetic files as we do: checks the test's writer and our reader at once."""
    link_type, wrap, options = VARIANTS[variant]
    path = tmp_path / f"{variant}.pcap"
    path.write_bytes(write_pcap(link_type, wrap, **options))
    assert [our_fields(c) for c in read_pcap(path)] == tshark_rows(path)


def test_non_tcp_packets_and_fragments_are_skipped() -> None:
    packets = ip_packets()
    udp = bytearray(packets[0][2])
    udp[9] = 17  # protocol UDP
    fragment = bytearray(packets[1][2])
    fragment[6] |= 0x20  # more fragments
    frames = [bytes(udp), bytes(fragment), packets[2][2]]
    data = bytearray(write_pcap(LinkType.RAW, lambda p: p)[:24])
    for frame in frames:
        data += bytes(8) + len(frame).to_bytes(4, "little") * 2 + frame
    decoded = read_pcap(bytes(data))
    assert [c.frame_number for c in decoded] == [3]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "pcap.header"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "pcap.magic"),
        (b"GIF89a" + bytes(30), "pcap.magic"),
    ],
)
def test_not_a_pcap_file(data: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as raised:
        read_pcap(data)
    assert raised.value.field == field


def test_truncated_and_contradictory_files() -> None:
    data = LOOPBACK.read_bytes()
    with pytest.raises(DecodeError, match="truncated record header") as raised:
        read_pcap(data[:30])
    assert raised.value.offset == 24
    with pytest.raises(DecodeError, match="remain in the file") as raised:
        read_pcap(data[:-1])
    assert raised.value.field == "pcap.record.incl_len"
    unsupported = data[:20] + (147).to_bytes(4, "little") + data[24:]
    with pytest.raises(DecodeError, match="unsupported link type"):
        read_pcap(unsupported)
    lying = bytearray(data)
    lying[24 + 16 + 14 + 2 : 24 + 16 + 14 + 4] = (9000).to_bytes(2, "big")  # IPv4 total length beyond the frame
    with pytest.raises(DecodeError) as raised:
        read_pcap(bytes(lying))
    assert raised.value.field == "ipv4.total_length" and raised.value.offset == 16


def test_snaplen_truncated_frames_are_skipped_not_errors() -> None:
    data = bytearray(LOOPBACK.read_bytes())
    # Claim the first frame was 100 bytes longer on the wire: its IP length no longer fits, and that is
    # the snapshot length's doing, so the frame is skipped rather than called malformed.
    original = int.from_bytes(data[24 + 12 : 24 + 16], "little")
    data[24 + 12 : 24 + 16] = (original + 100).to_bytes(4, "little")
    data[24 + 16 + 14 + 2 : 24 + 16 + 14 + 4] = (original - 14 + 100).to_bytes(2, "big")
    decoded = read_pcap(bytes(data))
    assert [c.frame_number for c in decoded][:2] == [2, 3]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_captures_only_raise_decode_error(data) -> None:
    source = data.draw(st.sampled_from([LOOPBACK, ANY])).read_bytes()
    mutated = bytearray(source)
    for _ in range(data.draw(st.integers(1, 8))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    mutated = mutated[: data.draw(st.integers(0, len(mutated)))]
    try:
        for captured in read_pcap(bytes(mutated)):
            assert captured.segment.encode() == captured.segment_bytes
    except DecodeError:
        pass


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(blob: bytes) -> None:
    for header in (b"", bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")):
        with contextlib.suppress(DecodeError):
            read_pcap(header + blob)


# -- a fresh capture, recorded now ----------------------------------------------------------------
@pytest.mark.peer
def test_fresh_tcpdump_capture_decodes_and_matches_tshark(tmp_path: Path) -> None:
    """Run the maintainer script (tcpdump on lo and any) and decode what it recorded."""
    require("tcpdump", "the live capture test records a real loopback handshake")
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else "python3"
    command = [str(ROOT / "scripts" / "record_capture.sh"), str(tmp_path)]
    if os.geteuid() != 0:
        # .ci/run may run as a user with sudo (it installs the peers that way too); ask without a prompt.
        if not _passwordless_sudo():
            message = "capturing with tcpdump needs root (or passwordless sudo)"
            if peers_required():
                pytest.fail(f"REQUIRE_PEERS=1 but {message}")
            pytest.skip(message)
        command = ["sudo", "-n", "env", f"PYTHON={python}", *command]
    subprocess.run(command, env={**os.environ, "PYTHON": python}, capture_output=True, timeout=60, check=True)
    for name in BUNDLED_CAPTURES:
        path = tmp_path / name
        captured = read_pcap(path)
        assert_lesson_contents(captured)
        assert [our_fields(c) for c in captured] == tshark_rows(path)
        for item in captured:
            assert item.segment.encode() == item.segment_bytes
            assert item.checksum_status() in (ChecksumStatus.VALID, ChecksumStatus.PARTIAL)
            if item.checksum_status() is ChecksumStatus.VALID:
                assert verify_checksum(item.src_ip, item.dst_ip, item.segment_bytes)


def _passwordless_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10, check=False).returncode == 0
