"""tcp/streams.py: per-connection byte streams in sequence order, and write_pcap, checked against tshark.

The reassembly is checked on a capture written by write_pcap and read back by our pcap reader, with its
segments then shuffled, duplicated and dropped the way a real capture can show them; write_pcap's files
are checked by tshark (Wireshark's TCP dissector follows the same streams), and the bundled tcpdump
capture's connections are found with the client the side that sent the SYN.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace

import pytest
from conftest import require

from handshake_lib.tcp.pcap import bundled_capture, read_pcap
from handshake_lib.tcp.segment import Flags
from handshake_lib.tcp.streams import (
    CLIENT_TO_SERVER,
    SERVER_TO_CLIENT,
    StreamAssembler,
    group_connections,
    read_segments,
    write_pcap,
)

CHUNKS = [
    (CLIENT_TO_SERVER, b"hello " * 10),
    (SERVER_TO_CLIENT, bytes(range(256)) * 100),  # 25600 bytes: cut into two segments
    (CLIENT_TO_SERVER, b"bye"),
    (SERVER_TO_CLIENT, b"\x00" * 7),
]


def _expected(direction: str) -> bytes:
    return b"".join(data for d, data in CHUNKS if d == direction)


def _conversation(segments):
    conversations, skipped = group_connections(segments, max_connections=4)
    assert skipped == 0 and len(conversations) == 1
    return conversations[0]


def test_a_written_pcap_reads_back_as_the_same_two_streams_with_the_syn_sender_as_client():
    data = write_pcap(CHUNKS, client=("10.0.0.1", 50000), server=("10.0.0.2", 443))
    segments = read_pcap(data)
    assert [bool(s.segment.flags & Flags.SYN) for s in segments[:3]] == [True, True, False]
    conversation = _conversation(segments)
    assert conversation.client == ("10.0.0.1", 50000) and conversation.server == ("10.0.0.2", 443)
    streams = conversation.streams(1 << 20)
    assert streams[CLIENT_TO_SERVER] == _expected(CLIENT_TO_SERVER)
    assert streams[SERVER_TO_CLIENT] == _expected(SERVER_TO_CLIENT)
    assert conversation.notes == []
    # All checksums right: Wireshark would not flag a frame.
    assert {s.checksum_status().name for s in segments} == {"VALID"}


def test_out_of_order_and_retransmitted_segments_give_each_byte_once_in_order():
    segments = read_pcap(write_pcap([(CLIENT_TO_SERVER, bytes(range(200)) * 300)] * 3))
    data_segments = [s for s in segments if s.segment.payload]
    others = [s for s in segments if not s.segment.payload]
    shuffled = data_segments + data_segments[::2]  # every other segment twice
    random.Random(7).shuffle(shuffled)
    conversation = _conversation(others[:3] + shuffled)
    assert conversation.streams(1 << 22)[CLIENT_TO_SERVER] == bytes(range(200)) * 300 * 3
    assert conversation.notes == []


def test_a_missing_segment_stops_the_direction_and_says_where():
    segments = read_pcap(write_pcap(CHUNKS))
    lost = next(s for s in segments if len(s.segment.payload) == 16384)
    conversation = _conversation([s for s in segments if s is not lost])
    streams = conversation.streams(1 << 20)
    assert streams[SERVER_TO_CLIENT] == b""  # the first server bytes are missing: nothing after them is usable
    assert streams[CLIENT_TO_SERVER] == _expected(CLIENT_TO_SERVER)
    assert conversation.notes == [f"{SERVER_TO_CLIENT}: bytes missing at stream offset 0: 9223 bytes after it not read"]


def test_the_per_direction_cap_holds_and_is_noted():
    conversation = _conversation(read_pcap(write_pcap(CHUNKS)))
    streams = conversation.streams(1000)
    assert streams[SERVER_TO_CLIENT] == _expected(SERVER_TO_CLIENT)[:1000]
    assert conversation.notes == [f"{SERVER_TO_CLIENT}: more than 1000 bytes: the rest is not read"]


def test_a_segment_with_a_sequence_number_before_the_stream_start_is_ignored():
    segments = read_pcap(write_pcap(CHUNKS))
    first = next(s for s in segments if s.segment.payload)
    early = replace(first, segment=replace(first.segment, seq=(first.segment.seq - 5000) % (1 << 32)))
    stream = StreamAssembler(("10.0.0.1", 1), 1 << 20)
    stream.add(segments[0])  # the SYN sets the start
    assert stream.add(early) == b""
    assert stream.add(first) == first.segment.payload


def test_the_connection_cap_counts_what_it_leaves_out():
    pcap_a = read_pcap(write_pcap(CHUNKS, client=("127.0.0.1", 1111)))
    pcap_b = read_pcap(write_pcap(CHUNKS, client=("127.0.0.1", 2222)))
    conversations, skipped = group_connections(pcap_a + pcap_b, max_connections=1)
    assert len(conversations) == 1 and skipped == len(pcap_b)


def test_a_truncated_capture_keeps_its_first_segments_and_says_so():
    data = write_pcap(CHUNKS)
    segments, cut = read_segments(data[:-30])
    assert len(segments) == len(read_pcap(data)) - 1
    assert cut.startswith("the capture ends inside a record")


def test_the_bundled_tcpdump_capture_has_the_syn_sender_as_client():
    segments = read_pcap(bundled_capture())
    conversations, _ = group_connections(segments, max_connections=64)
    assert conversations
    for conversation in conversations:
        syn = next(s for s in conversation.segments if s.segment.flags & Flags.SYN)
        assert not syn.segment.flags & Flags.ACK
        assert conversation.client == (str(syn.src_ip), syn.segment.src_port)


@pytest.mark.peer
def test_tshark_follows_the_same_streams_in_a_written_pcap(tmp_path):
    require("tshark", "Wireshark's TCP dissector, the second opinion")
    path = tmp_path / "written.pcap"
    path.write_bytes(write_pcap(CHUNKS, client=("127.0.0.1", 40001), server=("127.0.0.1", 8443)))
    result = subprocess.run(
        ["tshark", "-r", str(path), "-q", "-z", "follow,tcp,raw,0"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    client, server = bytearray(), bytearray()
    lines = result.stdout.split("Node 1:", 1)[1].splitlines()[1:]
    for line in lines:
        if line.startswith("==="):
            break
        (server if line.startswith("\t") else client).extend(bytes.fromhex(line.strip()))
    assert bytes(client) == _expected(CLIENT_TO_SERVER)
    assert bytes(server) == _expected(SERVER_TO_CLIENT)
