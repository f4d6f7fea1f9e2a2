"""SSH key logs: the line forms, the writer, and the real check: Debian's tshark decrypts our sessions.

The live tests capture one of our sessions with OpenSSH on loopback (tcpdump), give tshark the key log
our KeyLogWriter wrote, and compare the message numbers tshark decrypted with the ones our own decoder
(handshake_lib.ssh.capture) found, which it only finds when the server's signature over the recomputed
H verifies and every packet's MAC or tag is right.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from conftest import require, require_loopback_capture
from hypothesis import given
from hypothesis import strategies as st

from handshake_lib.ssh.capture import decode_ssh_capture
from handshake_lib.ssh.client import SSHClient
from handshake_lib.ssh.connection import Algorithms
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.kex import kex_method
from handshake_lib.ssh.keylog import (
    PRIVATE_KEY,
    SHARED_SECRET,
    KeyLogWriter,
    keylog_line,
    parse_keylog,
    private_key_line,
    read_keylog,
)
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line
from handshake_lib.ssh.server import SSHServer

ROOT = Path(__file__).resolve().parent.parent
ED25519 = HostKeyPair.generate("ssh-ed25519")
COOKIE = bytes(range(16))


# -- the line forms -----------------------------------------------------------------------------------------
def test_a_shared_secret_line_carries_k_as_the_mpint_content():
    k = kex_method("curve25519-sha256")._secret(b"\x00\x81" + bytes(30), _x25519(1))  # leading zero, then a high bit
    line = keylog_line(COOKIE, k)
    cookie, kind, value = line.split()
    assert (cookie, kind) == (COOKIE.hex(), SHARED_SECRET)
    # The leading zero byte goes (an mpint is minimal) and the high bit gets its 0x00: Wireshark hashes
    # exactly these bytes as the mpint's content.
    assert value == "0081" + "00" * 30
    assert k.encoded == (len(bytes.fromhex(value))).to_bytes(4, "big") + bytes.fromhex(value)


def _x25519(seed: int):
    from cryptography.hazmat.primitives.asymmetric import x25519

    return x25519.X25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def test_lines_refuse_a_wrong_cookie_or_an_empty_value():
    with pytest.raises(ValueError, match="16 bytes"):
        keylog_line(b"short", b"\x01")
    with pytest.raises(ValueError, match="empty"):
        private_key_line(COOKIE, b"")


def test_the_parser_reads_all_three_forms_and_says_why_it_skips_a_line():
    text = "\n".join(
        [
            "# a comment",
            f"{COOKIE.hex()} SHARED_SECRET 0102",
            f"{COOKIE.hex()} PRIVATE_KEY 0304",
            f"{bytes(16).hex()} 0506",  # the older two-field form
            "garbage",
            f"{COOKIE.hex()} MASTER_SECRET 01",
            f"{COOKIE.hex()} SHARED_SECRET 0g",
            f"{COOKIE.hex()} SHARED_SECRET 123",
            "0011 SHARED_SECRET 01",
        ]
    )
    log = parse_keylog(text)
    assert [(e.kind, e.value) for e in log.entries] == [
        (SHARED_SECRET, b"\x01\x02"), (PRIVATE_KEY, b"\x03\x04"), (PRIVATE_KEY, b"\x05\x06"),
    ]  # fmt: skip
    reasons = dict(log.skipped)
    assert "expected 2 or 3 fields" in reasons[5]
    assert "unknown key type" in reasons[6]
    assert "not hexadecimal" in reasons[7]
    assert "odd number" in reasons[8]
    assert "16 bytes" in reasons[9]


@given(st.text(max_size=300))
def test_any_text_parses_into_entries_and_skipped_lines_never_an_error(text):
    log = parse_keylog(text)
    for entry in log.entries:
        assert len(entry.cookie) == 16 and 1 <= len(entry.value) <= 1024
        assert entry.kind in (SHARED_SECRET, PRIVATE_KEY)
    assert parse_keylog(log.text()).entries == [
        type(e)(e.cookie, e.kind, e.value, number) for number, e in enumerate(log.entries, start=1)
    ]  # what we keep, written back, reads the same


def test_an_oversized_key_log_is_refused_not_read():
    with pytest.raises(ValueError, match="MiB"):
        parse_keylog("#" * (5 << 20))


def test_lookup_is_wiresharks_server_cookie_first_then_the_client_cookie_last_line_winning():
    server, client = b"S" * 16, b"C" * 16
    log = parse_keylog(f"{client.hex()} SHARED_SECRET 01\n{client.hex()} SHARED_SECRET 02\n")
    assert log.find(server, client).value == b"\x02"
    log = parse_keylog(f"{client.hex()} SHARED_SECRET 01\n{server.hex()} 03\n")
    assert log.find(server, client).kind == PRIVATE_KEY
    assert log.find(b"x" * 16, b"y" * 16) is None


# -- the writer, fed by the core's on_secrets hook ------------------------------------------------------------
def _session(kex: str, client_writer, server_writer) -> tuple[SSHClient, SSHServer]:
    known = KnownHosts.parse(known_hosts_line("127.0.0.1", 22, ED25519.host_key) + "\n")
    algorithms = Algorithms(kex=(kex,))
    client = SSHClient("127.0.0.1", 22, known_hosts=known, algorithms=algorithms, on_secrets=client_writer)
    server = SSHServer([ED25519], algorithms=algorithms, on_secrets=server_writer)
    client.start()
    server.start()
    for _ in range(20):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            break
        if to_server:
            server.receive_data(to_server)
        if to_client:
            client.receive_data(to_client)
    return client, server


@pytest.mark.parametrize("kex", ["curve25519-sha256", "diffie-hellman-group14-sha256", "mlkem768x25519-sha256"])
def test_each_side_logs_k_and_its_own_private_value_under_its_own_cookie(tmp_path, kex):
    client_log, server_log = tmp_path / "client.keylog", tmp_path / "server.keylog"
    client, server = _session(kex, KeyLogWriter(client_log), KeyLogWriter(server_log))
    assert client.exchanges == 1 and server.exchanges == 1
    for path in (client_log, server_log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it decrypts the session
    client_cookie = next(
        e.message for e in client.transcript if e.name == "SSH_MSG_KEXINIT" and e.direction == "client->server"
    ).cookie
    server_kexinit = next(
        e.message for e in server.transcript if e.name == "SSH_MSG_KEXINIT" and e.direction == "server->client"
    )
    logs = {"client": read_keylog(client_log), "server": read_keylog(server_log)}
    for role, log in logs.items():
        shared = [e for e in log.entries if e.kind == SHARED_SECRET]
        assert [e.cookie for e in shared] == [client_cookie]  # SHARED_SECRET is keyed by the client's cookie
        private = [e for e in log.entries if e.kind == PRIVATE_KEY]
        if kex.startswith("mlkem"):
            assert private == []  # no private-key form exists for the hybrids
        else:
            # ... the private value by its owner's: Wireshark pairs it with the other side's public value.
            assert [e.cookie for e in private] == [client_cookie if role == "client" else server_kexinit.cookie]
    assert logs["client"].entries[0].value == logs["server"].entries[0].value  # both logged the same K


def test_the_writer_appends_and_stops_at_its_limit(tmp_path):
    path = tmp_path / "keys.log"
    path.write_text("# kept\n")
    path.chmod(0o640)
    writer = KeyLogWriter(path, max_bytes=250)  # one exchange's two lines (about 210 bytes) fit, two do not
    _session("curve25519-sha256", writer, None)
    _session("curve25519-sha256", writer, None)
    text = path.read_text()
    assert text.startswith("# kept\n") and len(parse_keylog(text).entries) == 2
    assert writer.dropped == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its mode


def test_a_writer_that_cannot_create_its_file_fails_before_any_connection(tmp_path):
    with pytest.raises(OSError):
        KeyLogWriter(tmp_path / "missing-folder" / "keys.log")


# -- live: tcpdump, OpenSSH, tshark ---------------------------------------------------------------------------
def _require_capture() -> ModuleType:
    """The recorder script (scripts/record_ssh_capture.py), once tcpdump (as root) and tshark are here."""
    recorder = require_loopback_capture("captures the session")
    require("tshark", "Wireshark's dissector is the key log's reader")
    return recorder


def tshark_message_numbers(pcap: Path, keylog: Path, port: int) -> list[int]:
    """The SSH message numbers tshark shows, in frame order (decrypted ones included)."""
    result = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", f"tcp.port=={port},ssh", "-o", f"ssh.keylog_file:{keylog}",
         "-Y", "ssh", "-T", "fields", "-e", "ssh.message_code"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [int(code) for line in result.stdout.split() for code in line.split(",") if code]


def our_message_numbers(pcap: Path, keylog: Path) -> tuple[list[int], list[int]]:
    """(every message number we decoded, the ones we decrypted), in capture order."""
    [connection] = decode_ssh_capture(pcap, read_keylog(keylog))
    assert all(e.signature_verified for e in connection.exchanges), connection.exchanges
    numbers = [p.packet.message_number for p in connection.packets if p.packet is not None]
    return numbers, [p.packet.message_number for p in connection.decrypted]


# (kex, cipher, mac, does Debian 12's tshark 4.0.17 decrypt it?)
CASES = [
    ("curve25519-sha256", "aes128-gcm@openssh.com", None, True),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, True),
    ("curve25519-sha256", "aes256-ctr", "hmac-sha2-256", True),
    ("curve25519-sha256@libssh.org", "aes128-ctr", "hmac-sha2-256", True),
    ("diffie-hellman-group14-sha256", "aes256-ctr", "hmac-sha2-256", True),
    # chacha20's nonce is the sequence number, which strict kex (always on with OpenSSH 9.2) sets back to
    # 0 at NEWKEYS; tshark 4.0 does not know strict kex, so it opens nothing.  Ours does.
    ("curve25519-sha256", "chacha20-poly1305@openssh.com", None, False),
    # tshark 4.0 does not check hmac-sha2-512 tags, but it knows their length and decrypts.
    ("curve25519-sha256", "aes256-ctr", "hmac-sha2-512", True),
    # No private-key form exists for these in tshark 4.0, and it skips SHARED_SECRET lines: nothing opens.
    ("sntrup761x25519-sha512@openssh.com", "aes128-gcm@openssh.com", None, False),
    ("ecdh-sha2-nistp256", "aes128-gcm@openssh.com", None, False),
    # EtM sends the length in the clear; tshark 4.0 decrypts it as if it were encrypted, and loses the frames.
    ("curve25519-sha256", "aes128-ctr", "hmac-sha2-256-etm@openssh.com", False),
]
USERAUTH = [5, 6, 50, 51]  # SERVICE_REQUEST, SERVICE_ACCEPT, USERAUTH_REQUEST, USERAUTH_FAILURE


def _check(pcap: Path, keylog: Path, port: int, tshark_decrypts: bool) -> None:
    ours, decrypted = our_message_numbers(pcap, keylog)
    assert [n for n in decrypted if n in USERAUTH] == USERAUTH  # we opened the session whatever the cipher
    theirs = tshark_message_numbers(pcap, keylog, port)
    if tshark_decrypts:
        assert theirs == ours  # same messages, same order, the encrypted ones included
    else:
        assert not set(USERAUTH) <= set(theirs)


@pytest.mark.peer
@pytest.mark.parametrize(("kex", "cipher", "mac", "tshark_decrypts"), CASES)
def test_tshark_decrypts_our_client_against_sshd(tmp_path, kex, cipher, mac, tshark_decrypts):
    record = _require_capture()
    require("sshd", "OpenSSH's server")
    pcap, keylog = tmp_path / "s.pcap", tmp_path / "s.keylog"
    port, result = record.our_client_against_sshd(pcap, keylog, kex=kex, cipher=cipher, mac=mac)
    assert result.methods  # the session reached user authentication
    _check(pcap, keylog, port, tshark_decrypts)


@pytest.mark.peer
@pytest.mark.parametrize(("kex", "cipher", "mac", "tshark_decrypts"), CASES[:3] + CASES[5:7])
def test_tshark_decrypts_openssh_ssh_against_our_server(tmp_path, kex, cipher, mac, tshark_decrypts):
    record = _require_capture()
    require("ssh", "OpenSSH's client")
    pcap, keylog = tmp_path / "c.pcap", tmp_path / "c.keylog"
    port, run = record.openssh_client_against_ours(
        pcap, keylog, tmp_path / "known_hosts", kex=kex, cipher=cipher, mac=mac
    )
    assert run.reached_user_auth
    # Our server logged its own private value under the server's cookie: the line tshark 4.0 uses.
    [connection] = decode_ssh_capture(pcap, read_keylog(keylog))
    assert connection.exchanges[0].keylog == PRIVATE_KEY
    _check(pcap, keylog, port, tshark_decrypts)


@pytest.mark.peer
def test_without_strict_kex_tshark_decrypts_chacha20_too(tmp_path, monkeypatch):
    """Why chacha20 fails above: strict kex.  With our client not offering it, tshark 4.0 opens chacha20."""
    record = _require_capture()
    require("sshd", "OpenSSH's server")
    import handshake_lib.ssh.connection as connection_module

    build = connection_module.build_kexinit
    monkeypatch.setattr(connection_module, "build_kexinit", lambda *a, **k: build(*a, **{**k, "strict": False}))
    pcap, keylog = tmp_path / "n.pcap", tmp_path / "n.keylog"
    port, result = record.our_client_against_sshd(
        pcap, keylog, kex="curve25519-sha256", cipher="chacha20-poly1305@openssh.com"
    )
    assert not result.key_exchange.strict
    _check(pcap, keylog, port, tshark_decrypts=True)
