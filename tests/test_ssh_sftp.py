"""The SFTP v3 codec and the sans-I/O client and server (``handshake_lib.ssh.sftp``).

Round trips with spans for every packet we model, bounds crossed (oversized packet, NAME counts, ATTRS
flags, requests in flight, server output), the client's id matching and pipelined reads.  The same code
against OpenSSH's ``sftp-server`` and ``sftp`` is in ``tests/test_net_sftp.py``; here the peers are
bytes we wrote by hand from draft-02, or (as extra checks only) our own server.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from handshake_lib.errors import (
    ConnectionStateError,
    DecodeError,
    EncodeError,
    SFTPError,
    SFTPPacketTooLarge,
    SFTPProtocolError,
)
from handshake_lib.ssh import sftp
from handshake_lib.ssh.sftp import (
    MAX_PACKET_LENGTH,
    MAX_SERVER_OUTPUT,
    Attributes,
    AttrsReply,
    Close,
    Data,
    Fsetstat,
    Fstat,
    Handle,
    Init,
    Lstat,
    Mkdir,
    Name,
    NameReply,
    Open,
    Opendir,
    OpenFlags,
    PacketReader,
    Read,
    Readdir,
    ReadFinished,
    Readlink,
    Realpath,
    Remove,
    Rename,
    ResponseReceived,
    Rmdir,
    Setstat,
    SFTPClient,
    SFTPServer,
    Stat,
    Status,
    StatusCode,
    UnknownPacket,
    Version,
    VersionReceived,
    Write,
    decode_packet,
)

FULL_ATTRS = Attributes(
    size=1 << 40, uid=1000, gid=100, permissions=0o100644, atime=1, mtime=2, extended=((b"a@b", b"x"),)
)

PACKETS = [
    Init(3),
    Init(3, (("x@example.com", b"1"),)),
    Version(3, (("posix-rename@openssh.com", b"1"), ("statvfs@openssh.com", b"2"))),
    Open(1, "/dir/file", OpenFlags.WRITE | OpenFlags.CREAT | OpenFlags.TRUNC, Attributes(permissions=0o644)),
    Close(2, b"h1"),
    Read(3, b"h1", 1 << 33, 32768),
    Write(4, b"h1", 7, b"data"),
    Lstat(5, "link"),
    Fstat(6, b"h1"),
    Setstat(7, "f", Attributes(atime=10, mtime=20)),
    Fsetstat(8, b"h", Attributes(size=0)),
    Opendir(9, "."),
    Readdir(10, b"d0"),
    Remove(11, "gone"),
    Mkdir(12, "new", Attributes(permissions=0o755)),
    Rmdir(13, "new"),
    Realpath(14, "."),
    Stat(15, "/"),
    Rename(16, "a", "b"),
    Readlink(17, "l"),
    Status(18, StatusCode.NO_SUCH_FILE, "No such file", "en"),
    Handle(19, b"0"),
    Data(20, bytes(range(256))),
    NameReply(21, (Name(".", "drwxr-xr-x ...", FULL_ATTRS), Name("\udcff-not-utf8", "", Attributes()))),
    AttrsReply(22, FULL_ATTRS),
    UnknownPacket(23, 200, b"\x00\x00\x00\x03foo"),
]


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: type(p).__name__)
def test_round_trip_with_spans(packet: sftp.SFTPPacket) -> None:
    wire = packet.to_bytes()
    assert int.from_bytes(wire[:4], "big") == len(wire) - 4
    decoded = decode_packet(wire[4:], base_offset=4)
    assert decoded == packet
    assert decoded.to_bytes() == wire
    spans = decoded.spans
    assert spans[0].field == "sftp_packet" and spans[0].offset == 4 and spans[0].length == len(wire) - 4
    leaves = [s for s in spans if not s.is_group]
    assert leaves[0].field == "sftp_packet.type" and leaves[0].meaning.startswith("SSH_FXP_")
    # The leaves tile the packet: every byte after the length field belongs to exactly one field.
    covered = sorted((s.offset, s.end) for s in leaves)
    position = 4
    for start, end in covered:
        assert start == position
        position = end
    assert position == len(wire)
    if not isinstance(packet, (Init, Version)):
        assert any(s.field == "sftp_packet.request_id" for s in leaves)


def test_spans_name_fields_with_meanings() -> None:
    packet = decode_packet(Status(5, StatusCode.PERMISSION_DENIED, "Permission denied").payload())
    meanings = {s.field: s.meaning for s in packet.spans}
    assert meanings["sftp_packet.code"] == "SSH_FX_PERMISSION_DENIED"
    attrs = decode_packet(AttrsReply(1, FULL_ATTRS).payload())
    fields = {s.field: s.meaning for s in attrs.spans}
    assert "SSH_FILEXFER_ATTR_SIZE" in fields["sftp_packet.attrs.flags"]
    assert fields["sftp_packet.attrs.permissions"].startswith("-rw-r--r--")


def test_hand_written_bytes_from_the_draft() -> None:
    # SSH_FXP_OPEN, id 1, "a", READ, empty ATTRS: written from draft-02 section 6.3, not by our encoder.
    payload = bytes([3]) + (1).to_bytes(4, "big") + b"\x00\x00\x00\x01a" + (1).to_bytes(4, "big") + bytes(4)
    assert decode_packet(payload) == Open(1, "a", OpenFlags.READ, Attributes())
    # SSH_FXP_INIT version 3, no extensions: the 9 bytes every OpenSSH sftp session begins with.
    assert Init(3).to_bytes() == bytes.fromhex("000000050100000003")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"", "type"),
        (bytes([17]) + b"\x00\x00", "request_id"),  # STAT with a truncated id
        (bytes([17]) + (1).to_bytes(4, "big") + b"\x00\x00\x00\x09ab", "path"),  # a string longer than the packet
        (bytes([105]) + (1).to_bytes(4, "big") + (0x40).to_bytes(4, "big"), "flags"),  # unknown ATTRS flag
        (bytes([104]) + (1).to_bytes(4, "big") + (10**6).to_bytes(4, "big"), "names_count"),  # count > bytes
        (bytes([105]) + (1).to_bytes(4, "big") + (0x80000000).to_bytes(4, "big") + (65).to_bytes(4, "big"), "count"),
        (Close(1, b"h").payload() + b"x", ""),  # bytes after the last field
    ],
)
def test_malformed_packets_are_decode_errors(payload: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_packet(payload)
    assert field in caught.value.field


def test_attributes_pairs_travel_together() -> None:
    with pytest.raises(EncodeError):
        Attributes(uid=1)
    with pytest.raises(EncodeError):
        Attributes(mtime=1)


def test_packet_reader_refuses_an_oversized_length_before_its_body() -> None:
    reader = PacketReader()
    assert reader.feed(Init(3).to_bytes() + Init(3).to_bytes()[:3]) == [Init(3).payload()]
    with pytest.raises(SFTPPacketTooLarge):
        PacketReader().feed((MAX_PACKET_LENGTH + 1).to_bytes(4, "big"))
    exact = PacketReader()
    exact.feed(MAX_PACKET_LENGTH.to_bytes(4, "big"))  # the limit itself is allowed
    assert exact.buffered == 4
    with pytest.raises(EncodeError):
        Data(1, bytes(MAX_PACKET_LENGTH)).to_bytes()


class MemoryFS:
    """A tiny FileSystem for sans-I/O tests: one file, ``/f``, whose reads are short."""

    def __init__(self, content: bytes, short: int = 1000) -> None:
        self.content = content
        self.short = short
        self.closed = 0

    def realpath(self, path: str) -> str:
        return "/"

    def stat(self, path: str, *, follow_symlinks: bool) -> Attributes:
        if path != "/f":
            raise sftp.SFTPStatusError(StatusCode.NO_SUCH_FILE, "No such file")
        return Attributes(size=len(self.content), permissions=0o100644)

    def open(self, path: str, flags: OpenFlags, attrs: Attributes) -> object:
        if path != "/f":
            raise FileNotFoundError(2, "nope")  # an OSError: mapped as sftp-server maps errno
        return "f"

    def read(self, file: object, offset: int, length: int) -> bytes:
        return self.content[offset : offset + min(length, self.short)]

    def close(self, file: object) -> None:
        self.closed += 1


def pump(client: SFTPClient, server: SFTPServer) -> list:
    events: list = []
    while True:
        data = client.data_to_send()
        if data:
            server.receive_data(data)
        answer = server.data_to_send()
        if not data and not answer:
            return events
        events.extend(client.receive_data(answer))


def pair(fs: MemoryFS, **client_args: int) -> tuple[SFTPClient, SFTPServer, list]:
    """Our client and server in memory, INIT and VERSION exchanged."""
    client = SFTPClient(**client_args)
    server = SFTPServer(fs)  # type: ignore[arg-type]
    assert pump(client, server) == [VersionReceived(3, ())]
    return client, server, []


def test_self_pair_errors_map_like_sftp_server() -> None:
    client, server, _ = pair(MemoryFS(b""))
    assert client.version == 3 and server.version == 3
    stat_id, open_id = client.stat("/nope"), client.open("/nope")
    events = {e.request_id: e.response for e in pump(client, server)}
    assert events[stat_id] == Status(stat_id, StatusCode.NO_SUCH_FILE, "No such file", "en")
    assert events[open_id].code == StatusCode.NO_SUCH_FILE and events[open_id].message == "No such file"


def test_pipelined_read_survives_short_reads_and_ends_at_eof() -> None:
    content = bytes(i % 251 for i in range(100_000))
    fs = MemoryFS(content, short=777)  # every DATA is shorter than asked: the client asks for the rest
    client, server, _ = pair(fs, max_in_flight=8)
    open_id = client.open("/f")
    (opened,) = pump(client, server)
    handle = opened.response.handle
    client.read_file(handle, chunk=4096)
    assert client.in_flight == 8  # the window is full from the start
    events = pump(client, server)
    (finished,) = [e for e in events if isinstance(e, ReadFinished)]
    assert finished.data == content and finished.error is None
    assert client.in_flight == 0
    assert open_id == opened.request_id


def test_read_file_is_bounded() -> None:
    client, server, _ = pair(MemoryFS(bytes(50_000), short=10**6))
    client.open("/f")
    (opened,) = pump(client, server)
    client.read_file(opened.response.handle, chunk=8192, max_size=20_000)
    (finished,) = [e for e in pump(client, server) if isinstance(e, ReadFinished)]
    assert finished.error is not None and finished.error.code == StatusCode.FAILURE and finished.data == b""
    client, server, _ = pair(MemoryFS(bytes(20_000), short=10**6))  # exactly max_size: fine
    client.open("/f")
    (opened,) = pump(client, server)
    client.read_file(opened.response.handle, chunk=5000, max_size=20_000)
    (finished,) = [e for e in pump(client, server) if isinstance(e, ReadFinished)]
    assert finished.error is None and finished.data == bytes(20_000)


def test_client_bounds_requests_in_flight() -> None:
    client = SFTPClient(max_in_flight=2)
    client.stat("a")
    client.stat("b")
    assert not client.can_send
    with pytest.raises(SFTPError):
        client.stat("c")
    with pytest.raises(ValueError):
        SFTPClient(max_in_flight=0)


def test_client_refuses_answers_it_did_not_ask_for() -> None:
    client = SFTPClient()
    with pytest.raises(SFTPProtocolError):
        client.receive_data(Status(0).to_bytes())  # an answer before VERSION
    client = SFTPClient()
    assert client.receive_data(Version(3).to_bytes()) == [VersionReceived(3, ())]
    request_id = client.realpath(".")
    events = client.receive_data(NameReply(request_id, (Name("/"),)).to_bytes())
    assert events == [ResponseReceived(request_id, Realpath(request_id, "."), NameReply(request_id, (Name("/"),)))]
    with pytest.raises(SFTPProtocolError):
        client.receive_data(Status(request_id).to_bytes())  # already answered
    with pytest.raises(SFTPProtocolError):
        client.receive_data(Version(3).to_bytes())
    with pytest.raises(SFTPPacketTooLarge):
        client.receive_data((MAX_PACKET_LENGTH + 1).to_bytes(4, "big"))
    with pytest.raises(SFTPProtocolError):
        SFTPClient().receive_data(Version(4).to_bytes())  # we speak 3 only


def test_server_refuses_requests_before_init_and_closes() -> None:
    server = SFTPServer(MemoryFS(b""))  # type: ignore[arg-type]
    with pytest.raises(SFTPProtocolError):
        server.receive_data(Stat(1, "/").to_bytes())
    assert server.closed and server.data_to_send() == b""
    with pytest.raises(ConnectionStateError):
        server.receive_data(Init(3).to_bytes())


def test_server_answers_unknown_types_and_goes_on() -> None:
    client, server, _ = pair(MemoryFS(b""))
    unknown = client.send_request(lambda i: UnknownPacket(i, 99, b"xyz"))
    readlink = client.send_request(lambda i: Readlink(i, "l"))
    answers = {e.request_id: e.response for e in pump(client, server)}
    assert answers[unknown].code == answers[readlink].code == StatusCode.OP_UNSUPPORTED
    assert answers[unknown].message == "Operation unsupported"


def test_server_output_is_bounded_while_input_waits() -> None:
    """A client that sends READs and never reads the answers cannot grow the server's output past its cap."""
    server = SFTPServer(MemoryFS(bytes(MAX_PACKET_LENGTH), short=10**6))  # type: ignore[arg-type]
    server.receive_data(Init(3).to_bytes() + Open(0, "/f").to_bytes())
    server.data_to_send()
    reads = b"".join(Read(i, b"0", 0, MAX_PACKET_LENGTH).to_bytes() for i in range(1, 200))
    server.receive_data(reads)
    assert 0 < server.queued_bytes <= MAX_SERVER_OUTPUT  # only as many answers as fit were made
    assert len(server._pending) > 150  # the rest waits, unprocessed
    total = 0
    while chunk := server.data_to_send():
        assert len(chunk) <= MAX_SERVER_OUTPUT
        total += len(chunk)
    assert total > 100 * (MAX_PACKET_LENGTH - 1024)  # every READ was answered in the end


def test_server_closes_handles_at_the_end() -> None:
    fs = MemoryFS(b"x")
    server = SFTPServer(fs)  # type: ignore[arg-type]
    server.receive_data(Init(3).to_bytes() + Open(0, "/f").to_bytes() + Open(1, "/f").to_bytes())
    assert server.open_handles == 2
    server.close()
    assert fs.closed == 2


def test_server_bounds_open_handles() -> None:
    client = SFTPClient(max_in_flight=8)
    server = SFTPServer(MemoryFS(b"x"), max_handles=3)  # type: ignore[arg-type]
    pump(client, server)
    ids = [client.open("/f") for _ in range(4)]
    answers = {e.request_id: e.response for e in pump(client, server)}
    assert [type(answers[i]).__name__ for i in ids] == ["Handle", "Handle", "Handle", "Status"]
    assert answers[ids[3]].code == StatusCode.FAILURE and server.open_handles == 3
    close = client.close(answers[ids[0]].handle)
    again = client.open("/f")
    answers = {e.request_id: e.response for e in pump(client, server)}
    assert answers[close].code == StatusCode.OK and isinstance(answers[again], Handle)
    unknown = client.close(b"no such handle")
    (event,) = pump(client, server)
    assert event.response.code == StatusCode.FAILURE and event.request_id == unknown


def test_an_answer_too_large_to_send_is_failure() -> None:
    class HugeNames(MemoryFS):
        def realpath(self, path: str) -> str:
            return "/" + "x" * MAX_PACKET_LENGTH

    client, server, _ = pair(HugeNames(b""))
    request = client.realpath(".")
    (event,) = pump(client, server)
    assert event.request_id == request and event.response.code == StatusCode.FAILURE


def mutations(seed: int, count: int) -> list[bytes]:
    """Valid packets with a few bytes changed, cut short or grown: what a broken peer sends."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        payload = bytearray(rng.choice(PACKETS).payload())
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.6 and payload:
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            elif kind < 0.8:
                del payload[rng.randrange(len(payload) + 1) :]
            else:
                payload += rng.randbytes(rng.randint(1, 8))
        out.append(bytes(payload))
    return out


def test_mutated_requests_end_in_answers_or_typed_errors(tmp_path) -> None:
    from handshake_lib.net.sftp_root import ConfinedRoot

    (tmp_path / "f").write_bytes(b"content")
    (tmp_path / "d").mkdir()
    for payload in mutations(7, 400):
        server = SFTPServer(ConfinedRoot(tmp_path))
        server.receive_data(Init(3).to_bytes())
        server.data_to_send()
        try:
            server.receive_data(len(payload).to_bytes(4, "big") + payload)
        except (SFTPError, DecodeError):
            assert server.closed
            continue
        answer = server.data_to_send()
        if answer:  # anything answered is one well-formed packet
            decode_packet(answer[4:])
        server.close()


def test_mutated_answers_are_typed_errors_in_the_client() -> None:
    for payload in mutations(8, 400):
        client = SFTPClient()
        client.receive_data(Version(3).to_bytes())
        for path in ("a", "b", "c"):
            client.stat(path)
        with contextlib.suppress(SFTPError, DecodeError):
            client.receive_data(len(payload).to_bytes(4, "big") + payload)
