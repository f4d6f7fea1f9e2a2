"""SSH identification lines (RFC 4253 section 4.2): ours, OpenSSH's, and what both sides refuse.

The real checks: Debian's ``sshd -i`` (inetd mode: its banner on stdout, ours read from stdin) accepts our
line and its first packet follows its own line in ``leftover``; the ``ssh`` client, given a server's
bytes through ``ProxyCommand``, accepts and refuses exactly the banners our client-side reader accepts
and refuses (lines before the version, lone LF, NUL, SSH-1.5, SSH-1.99, the 1,024-line limit).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, EncodeError, ProtocolError, ProtocolVersionError
from handshake_lib.ssh.packet import PacketDecoder
from handshake_lib.ssh.version import (
    MAX_LINES_BEFORE,
    Identification,
    IdentificationReader,
    our_identification,
)
from tests.conftest import require, require_module


def read_all(role: str, data: bytes, chunk: int = 0) -> IdentificationReader:
    reader = IdentificationReader(role)  # type: ignore[arg-type]
    if chunk:
        for start in range(0, len(data), chunk):
            reader.feed(data[start : start + chunk])
    else:
        reader.feed(data)
    return reader


# -- ours ------------------------------------------------------------------------------------------


def test_our_identification_line_and_spans():
    ident = our_identification(comments="course")
    assert ident.encode() == b"SSH-2.0-HandshakesSSH_0.1 course\r\n"
    assert ident.line == b"SSH-2.0-HandshakesSSH_0.1 course"
    fields = {span.field: ident.line[span.offset : span.end] for span in ident.spans}
    assert fields["identification.proto"] == b"2.0"
    assert fields["identification.software"] == b"HandshakesSSH_0.1"
    assert fields["identification.comments"] == b"course"


@pytest.mark.parametrize("software, comments", [("has space", ""), ("has-dash", ""), ("", ""), ("ok", "x" * 243)])
def test_our_identification_refuses_what_rfc_4253_forbids(software, comments):
    with pytest.raises(EncodeError):
        our_identification(software, comments)


# -- reading ---------------------------------------------------------------------------------------

DEBIAN = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_reads_openssh_line_in_any_pieces_and_keeps_the_rest(chunk):
    reader = read_all("client", DEBIAN + b"\x00\x00\x04\x3c rest", chunk)
    ident = reader.identification
    assert ident == Identification("2.0", "OpenSSH_9.2p1", "Debian-2+deb12u3", DEBIAN[:-2])
    assert reader.leftover == b"\x00\x00\x04\x3c rest"
    comments = next(s for s in ident.spans if s.field == "identification.comments")
    assert DEBIAN[comments.offset : comments.end] == b"Debian-2+deb12u3"


def test_client_skips_lines_before_and_offsets_spans_past_them():
    data = b"Welcome\r\nlegal notice\n" + DEBIAN
    reader = read_all("client", data, 3)
    assert reader.lines_before == [b"Welcome", b"legal notice"]
    software = next(s for s in reader.identification.spans if s.field == "identification.software")
    assert data[software.offset : software.end] == b"OpenSSH_9.2p1"


def test_server_refuses_lines_before_at_the_first_byte():
    reader = IdentificationReader("server")
    with pytest.raises(ProtocolVersionError):
        reader.feed(b"G")  # "GET / HTTP/1.1": no need to wait for the line
    with pytest.raises(ProtocolVersionError):  # and stays refused
        reader.feed(b"SSH-2.0-x\r\n")


def test_ssh_199_is_ssh2_and_ssh1_is_refused():
    assert read_all("client", b"SSH-1.99-Old\r\n").identification.is_ssh2
    for line in (b"SSH-1.5-Old\r\n", b"SSH-3.0-New\r\n"):
        with pytest.raises(ProtocolVersionError):
            read_all("client", line)


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-a\x00b\r\n",  # NUL
        b"SSH-2.0-ab\rc\r\n",  # CR not before LF
        b"SSH-2.0-" + b"x" * 246 + b"\r\n",  # 256 bytes with CR LF
        b"SSH-2.0-\r\n",  # no software version
        b"SSH-2-x\r\n",  # protocol not major.minor
        b"SSH-2.0\r\n",  # no dash after the protocol
        b"x" * 8193 + b"\n",  # a line before that is too long
    ],
)
def test_malformed_lines_are_decode_errors(data):
    with pytest.raises(DecodeError):
        read_all("client", data)


def test_longest_legal_version_line():
    line = b"SSH-2.0-" + b"x" * 245
    assert len(line + b"\r\n") == 255
    assert read_all("client", line + b"\r\n").identification.line == line


def test_lines_before_are_bounded_in_number_and_bytes():
    assert read_all("client", b"x\n" * MAX_LINES_BEFORE + DEBIAN).identification is not None
    with pytest.raises(DecodeError):
        read_all("client", b"x\n" * (MAX_LINES_BEFORE + 1) + DEBIAN)
    reader = IdentificationReader("client")
    with pytest.raises(DecodeError):
        # 8 KiB lines: refused at 64 KiB, long before the 1,024-line limit; nothing more is kept.
        for _ in range(100):
            reader.feed(b"y" * 8000 + b"\n")
    assert sum(len(line) for line in reader.lines_before) < 64 * 1024


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), role=st.sampled_from(["client", "server"]))
def test_fuzz_only_typed_errors(data, role):
    reader = IdentificationReader(role)
    try:
        ident = reader.feed(data)
    except ProtocolError:
        return
    if ident is not None:
        assert ident.line in data and ident.encode()[:-2] == ident.line


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.lists(st.text(alphabet="abc \t", max_size=20), max_size=5),
    software=st.from_regex(r"[A-Za-z0-9_.]{1,30}", fullmatch=True),
)
def test_fuzz_round_trip(prefix, software):
    ident = our_identification(software)
    data = b"".join(line.encode() + b"\r\n" for line in prefix if not line.startswith("SSH-")) + ident.encode()
    assert read_all("client", data, 5).identification == ident


# -- against OpenSSH -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd_host_key(tmp_path_factory) -> Path:
    keygen = require("ssh-keygen", "OpenSSH's ssh-keygen")
    folder = tmp_path_factory.mktemp("sshd_inetd")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host")], check=True, timeout=30)
    return folder / "host"


def sshd_inetd(host_key: Path, data: bytes) -> tuple[bytes, str]:
    """Run ``sshd -i`` (one connection on stdin/stdout) with ``data`` as the client's bytes."""
    sshd = require("sshd", "OpenSSH's server")
    run = subprocess.run(
        [sshd, "-i", "-e", "-ddd", "-f", "/dev/null", "-h", str(host_key), "-o", "PidFile=none", "-o", "UsePAM=no"],
        input=data,
        capture_output=True,
        timeout=20,
    )
    return run.stdout, run.stderr.decode(errors="replace")


def test_sshd_accepts_our_line_and_we_read_its_line_and_first_packet(sshd_host_key):
    out, log = sshd_inetd(sshd_host_key, our_identification().encode())
    assert "remote software version HandshakesSSH_0.1" in log
    reader = IdentificationReader("client")
    ident = reader.feed(out)
    assert ident.software_version.startswith("OpenSSH_9") and ident.protocol_version == "2.0"
    assert ident.comments.startswith("Debian")
    decoder = PacketDecoder()
    decoder.feed(reader.leftover)
    assert decoder.next_payload()[0] == 20  # SSH_MSG_KEXINIT, sshd's first packet


def test_sshd_and_we_refuse_ssh1(sshd_host_key):
    out, _ = sshd_inetd(sshd_host_key, b"SSH-1.5-Old\r\n")
    assert b"Protocol major versions differ" in out
    with pytest.raises(ProtocolVersionError):
        read_all("server", b"SSH-1.5-Old\r\n")


def ssh_client_verdict(tmp_path: Path, server_bytes: bytes) -> tuple[bool, bytes]:
    """Whether OpenSSH's ``ssh`` accepts ``server_bytes`` as a server's banner, and the line it sent."""
    ssh = require("ssh", "OpenSSH's client")
    (tmp_path / "server").write_bytes(server_bytes)
    sent = tmp_path / "client_line"
    proxy = f"sh -c 'head -n 1 > {sent}; cat {tmp_path / 'server'}'"
    run = subprocess.run(
        [ssh, "-v", "-F", "/dev/null", "-o", f"ProxyCommand={proxy}", "-o", "BatchMode=yes", "user@example"],
        capture_output=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    return "SSH2_MSG_KEXINIT sent" in run.stderr.decode(errors="replace"), sent.read_bytes()


@pytest.mark.parametrize(
    "server_bytes",
    [
        DEBIAN,
        b"hello\r\nworld\n" + DEBIAN,
        b"SSH-2.0-lonelf\n",
        b"SSH-1.99-both\r\n",
        b"SSH-1.5-old\r\n",
        b"SSH-2.0-nul\x00\r\n",
        b"SSH-2.0-cr\rx\r\n",
        b"x\n" * 1023 + DEBIAN,
        b"x\n" * 1024 + DEBIAN,
        b"y" * 8192 + b"\n" + DEBIAN,
        b"y" * 8193 + b"\n" + DEBIAN,
    ],
    ids=[
        *("plain", "lines-before", "lone-lf", "1.99", "1.5", "nul", "bare-cr"),
        *("1023-lines-before", "1024-lines-before", "8192-byte-line", "8193-byte-line"),
    ],
)
def test_ssh_client_and_our_client_agree(tmp_path, server_bytes):
    openssh_accepts, client_line = ssh_client_verdict(tmp_path, server_bytes)
    try:
        ours = read_all("client", server_bytes).identification is not None
    except ProtocolError:
        ours = False
    assert ours == openssh_accepts
    # ssh's own line is one we accept as a server
    assert read_all("server", client_line).identification.software_version.startswith("OpenSSH_9")


# -- against asyncssh --------------------------------------------------------------------------------


def first_packet_complete(received: bytes) -> bool:
    lines = IdentificationReader("client")
    if lines.feed(received) is None:
        return False
    packets = PacketDecoder()
    packets.feed(lines.leftover)
    return packets.next_payload() is not None


def asyncssh_server_exchange(client_bytes: bytes) -> bytes:
    """Start an asyncssh server on loopback, send it ``client_bytes`` raw, return what it sends back."""
    asyncssh = require_module("asyncssh")

    async def run() -> bytes:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], login_timeout=5)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(client_bytes)
            received = b""
            try:
                while not first_packet_complete(received):  # its line, then its KEXINIT, or it hangs up
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    if not chunk:
                        break
                    received += chunk
            finally:
                writer.close()
            return received
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(run())


def test_asyncssh_server_accepts_our_line_and_we_read_its_line_and_first_packet():
    answer = asyncssh_server_exchange(our_identification().encode())
    reader = IdentificationReader("client")
    ident = reader.feed(answer)
    assert ident.software_version.startswith("AsyncSSH_2") and ident.is_ssh2
    decoder = PacketDecoder()
    decoder.feed(reader.leftover)
    assert decoder.next_payload()[0] == 20  # its KEXINIT: it took our line


def test_asyncssh_server_and_we_refuse_ssh1():
    answer = asyncssh_server_exchange(b"SSH-1.5-Old\r\n")
    reader = IdentificationReader("client")
    assert reader.feed(answer).software_version.startswith("AsyncSSH_2")
    assert reader.leftover == b""  # its line, then it hung up: no KEXINIT for an SSH-1.5 client
    with pytest.raises(ProtocolVersionError) as caught:
        read_all("server", b"SSH-1.5-Old\r\n")
    assert caught.value.ssh_disconnect == 8  # PROTOCOL_VERSION_NOT_SUPPORTED
