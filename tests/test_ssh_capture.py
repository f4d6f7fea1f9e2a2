"""Decoding SSH sessions out of captures: the bundled one (our client against OpenSSH's sshd, recorded
by scripts/record_ssh_capture.py) and sessions of our client and server run in memory, cut into
segments we control (out of order, retransmitted, missing, a re-key in the middle)."""

from __future__ import annotations

import ipaddress
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError
from handshake_lib.ssh import capture
from handshake_lib.ssh.capture import CLIENT_TO_SERVER, SERVER_TO_CLIENT, decode_ssh_capture
from handshake_lib.ssh.client import SSHClient
from handshake_lib.ssh.connection import Algorithms
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.keylog import PRIVATE_KEY, SHARED_SECRET, KeyLogWriter, parse_keylog, read_keylog
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line
from handshake_lib.ssh.server import SSHServer
from handshake_lib.tcp.pcap import CapturedSegment, bundled_capture, read_pcap
from handshake_lib.tcp.segment import Flags, TCPSegment

DATA = resources.files("handshake_lib") / "data"
PCAP = Path(str(DATA / "ssh_session.pcap"))
KEYLOG = Path(str(DATA / "ssh_session.keylog"))
ED25519 = HostKeyPair.generate("ssh-ed25519")
USERAUTH = ["SSH_MSG_SERVICE_REQUEST", "SSH_MSG_SERVICE_ACCEPT", "SSH_MSG_USERAUTH_REQUEST", "SSH_MSG_USERAUTH_FAILURE"]


def names(connection, *, decrypted_only: bool = False) -> list[str]:
    return [p.name for p in connection.packets if p.decrypted or not decrypted_only]


# -- the bundled capture ------------------------------------------------------------------------------------
def test_the_bundled_session_decrypts_with_its_key_log():
    [connection] = decode_ssh_capture(PCAP, read_keylog(KEYLOG))
    [exchange] = connection.exchanges
    assert exchange.negotiated.kex == "curve25519-sha256" and exchange.strict
    assert exchange.signature_verified and exchange.keylog == PRIVATE_KEY  # the last line for the cookie wins
    assert connection.session_id == exchange.exchange_hash.digest
    assert [p.name for p in connection.packets[:2]] == ["identification", "identification"]
    assert connection.packets[1].message.software_version.startswith("OpenSSH_")
    assert names(connection, decrypted_only=True) == ["SSH_MSG_EXT_INFO", *USERAUTH, "SSH_MSG_DISCONNECT"]
    request = next(p for p in connection.packets if p.name == "SSH_MSG_USERAUTH_REQUEST")
    assert request.message.method == "none" and request.direction == CLIENT_TO_SERVER
    assert request.sequence_number == 1  # strict kex: counted again from 0 after NEWKEYS
    failure = next(p for p in connection.packets if p.name == "SSH_MSG_USERAUTH_FAILURE")
    assert failure.message.methods == ("publickey",) and failure.direction == SERVER_TO_CLIENT
    assert connection.notes == []


def test_without_a_key_log_the_rest_of_each_direction_stays_encrypted_and_says_why():
    [connection] = decode_ssh_capture(PCAP)
    [exchange] = connection.exchanges
    assert "no key log line for this session" in exchange.problem and not exchange.signature_verified
    encrypted = [p for p in connection.packets if p.message is None]
    assert {p.direction for p in encrypted} == {CLIENT_TO_SERVER, SERVER_TO_CLIENT}
    assert all(p.encrypted and not p.decrypted and "no key log line" in p.note for p in encrypted)
    assert "SSH_MSG_USERAUTH_REQUEST" not in names(connection)


def test_a_wrong_secret_is_caught_by_the_servers_signature_before_any_packet():
    [shared] = [e for e in read_keylog(KEYLOG).entries if e.kind == SHARED_SECRET]
    wrong = bytes([shared.value[0] ^ 1]) + shared.value[1:]
    [connection] = decode_ssh_capture(PCAP, parse_keylog(f"{shared.cookie.hex()} SHARED_SECRET {wrong.hex()}\n"))
    assert "signature does not verify" in connection.exchanges[0].problem
    assert connection.decrypted == []


def test_either_line_form_alone_opens_the_session():
    log = read_keylog(KEYLOG)
    results = []
    for kind in (SHARED_SECRET, PRIVATE_KEY):
        [entry] = [e for e in log.entries if e.kind == kind]
        text = f"{entry.cookie.hex()} {kind} {entry.value.hex()}\n"
        [connection] = decode_ssh_capture(PCAP, parse_keylog(text))
        assert connection.exchanges[0].keylog == kind
        results.append(names(connection, decrypted_only=True))
    assert results[0] == results[1] and USERAUTH[2] in results[0]


def test_a_capture_without_ssh_gives_nothing_and_bytes_that_are_no_pcap_are_refused():
    assert decode_ssh_capture(bundled_capture()) == []  # lesson 01's capture: TCP, but no SSH
    with pytest.raises(DecodeError):
        decode_ssh_capture(b"not a pcap file at all")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_capture_gives_a_result_or_a_decode_error_never_a_crash(data):
    mutated = bytearray(PCAP.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        mutated[data.draw(st.integers(24, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    mutated = mutated[: data.draw(st.integers(24, len(mutated)))]
    try:
        connections = decode_ssh_capture(bytes(mutated), read_keylog(KEYLOG))
    except DecodeError:
        return
    for connection in connections:
        for packet in connection.packets:
            assert packet.decrypted <= packet.encrypted  # nothing claims decryption it did not do


# -- sessions run in memory, cut into segments we choose ------------------------------------------------------
CLIENT, SERVER = ("127.0.0.1", 50000), ("127.0.0.1", 22)


def _run_session(kex: str, cipher: str, tmp_path: Path, *, rekey: bool = False):
    """Our client and server in memory; each flight as it was sent, in order: [(direction, bytes)]."""
    known = KnownHosts.parse(known_hosts_line("127.0.0.1", 22, ED25519.host_key) + "\n")
    algorithms = Algorithms(kex=(kex,), ciphers=(cipher,))
    keylog = tmp_path / "keys.log"
    client = SSHClient("127.0.0.1", 22, known_hosts=known, algorithms=algorithms, on_secrets=KeyLogWriter(keylog))
    server = SSHServer([ED25519], algorithms=algorithms)
    client.start()
    server.start()
    flights: list[tuple[str, bytes]] = []

    def pump() -> None:
        for _ in range(30):
            to_server, to_client = client.data_to_send(), server.data_to_send()
            if not to_server and not to_client:
                return
            if to_server:
                flights.append((CLIENT_TO_SERVER, to_server))
                server.receive_data(to_server)
            if to_client:
                flights.append((SERVER_TO_CLIENT, to_client))
                client.receive_data(to_client)

    pump()
    if rekey:
        client.rekey()
        pump()
    return client, flights, read_keylog(keylog)


def _segments(flights, *, pieces: int = 1, order=None, repeat: bool = False, drop: int | None = None):
    """CapturedSegments carrying the flights: each cut in ``pieces``, sent in ``order``, maybe twice."""
    seq = {CLIENT_TO_SERVER: 1000, SERVER_TO_CLIENT: 9000}
    out: list[CapturedSegment] = []

    def segment(direction: str, offset: int, payload: bytes, flags: Flags) -> CapturedSegment:
        source, destination = (CLIENT, SERVER) if direction == CLIENT_TO_SERVER else (SERVER, CLIENT)
        tcp = TCPSegment(source[1], destination[1], seq=offset, flags=flags, payload=payload)
        address = ipaddress.ip_address
        return CapturedSegment(0.0, address(source[0]), address(destination[0]), tcp, b"", b"", 0, [])

    out.append(segment(CLIENT_TO_SERVER, 999, b"", Flags.SYN))
    out.append(segment(SERVER_TO_CLIENT, 8999, b"", Flags.SYN | Flags.ACK))
    count = 0
    for direction, data in flights:
        size = -(-len(data) // pieces)
        parts = [(seq[direction] + i, data[i : i + size]) for i in range(0, len(data), size)]
        seq[direction] += len(data)
        for index in order(len(parts)) if order else range(len(parts)):
            count += 1
            if count == drop:
                continue
            offset, payload = parts[index]
            out.append(segment(direction, offset, payload, Flags.ACK | Flags.PSH))
            if repeat:
                out.append(segment(direction, offset, payload, Flags.ACK | Flags.PSH))
    return out


@pytest.mark.parametrize(
    ("kex", "cipher"),
    [
        ("curve25519-sha256", "chacha20-poly1305@openssh.com"),
        ("ecdh-sha2-nistp256", "aes256-ctr"),
        ("mlkem768x25519-sha256", "aes128-gcm@openssh.com"),
        ("diffie-hellman-group14-sha256", "aes128-ctr"),
    ],
)
def test_every_method_decrypts_through_a_rekey(tmp_path, kex, cipher):
    client, flights, keylog = _run_session(kex, cipher, tmp_path, rekey=True)
    assert client.exchanges == 2
    [connection] = decode_ssh_capture(_segments(flights), keylog)
    assert [e.number for e in connection.exchanges] == [1, 2]
    assert all(e.signature_verified and not e.problem for e in connection.exchanges)
    assert connection.session_id == client.session_id  # the first H, kept through the re-key
    decrypted = names(connection, decrypted_only=True)
    # The second exchange runs inside the first one's encryption, then switches again.
    assert decrypted.count("SSH_MSG_KEXINIT") == 2 and decrypted.count("SSH_MSG_NEWKEYS") == 2
    assert "SSH_MSG_USERAUTH_FAILURE" in decrypted
    assert [p.name for p in connection.packets if p.message is None] == []
    for direction in (CLIENT_TO_SERVER, SERVER_TO_CLIENT):  # the client's own record, each direction exactly
        ours = [(e.name, e.wire) for e in client.transcript if e.direction == direction]
        assert [(p.name, p.wire) for p in connection.packets if p.direction == direction] == ours


def test_out_of_order_and_retransmitted_segments_are_put_back_in_order(tmp_path):
    _, flights, keylog = _run_session("curve25519-sha256", "aes128-gcm@openssh.com", tmp_path)
    [plain] = decode_ssh_capture(_segments(flights), keylog)
    shuffled = _segments(flights, pieces=3, order=lambda n: [2, 0, 1][:n] if n == 3 else range(n), repeat=True)
    [again] = decode_ssh_capture(shuffled, keylog)
    seen = [(p.direction, p.name, p.wire) for p in again.packets]
    assert seen == [(p.direction, p.name, p.wire) for p in plain.packets]
    assert again.notes == []


def test_a_missing_segment_stops_its_direction_and_says_where(tmp_path):
    _, flights, keylog = _run_session("curve25519-sha256", "aes128-gcm@openssh.com", tmp_path)
    [connection] = decode_ssh_capture(_segments(flights, pieces=2, drop=9), keylog)
    assert any("bytes missing at stream offset" in note for note in connection.notes)


def test_the_caps_on_packets_and_stream_bytes_hold(tmp_path, monkeypatch):
    _, flights, keylog = _run_session("curve25519-sha256", "aes128-gcm@openssh.com", tmp_path)
    monkeypatch.setattr(capture, "MAX_PACKETS", 5)
    [connection] = decode_ssh_capture(_segments(flights), keylog)
    assert len(connection.packets) == 5 and any("more than 5 packets" in note for note in connection.notes)
    monkeypatch.setattr(capture, "MAX_PACKETS", 10_000)
    monkeypatch.setattr(capture, "MAX_STREAM_BYTES", 600)
    [connection] = decode_ssh_capture(_segments(flights), keylog)
    assert any("the rest is not read" in note for note in connection.notes)


def test_a_pcap_of_segments_read_back_matches_the_segments_given_directly():
    segments = read_pcap(PCAP)
    keylog = read_keylog(KEYLOG)
    [from_file] = decode_ssh_capture(PCAP, keylog)
    [from_segments] = decode_ssh_capture(segments, keylog)
    assert [p.wire for p in from_file.packets] == [p.wire for p in from_segments.packets]


def test_message_60_is_named_by_the_method_the_client_asked_for(tmp_path):
    """A publickey login, then keyboard-interactive: PK_OK and INFO_REQUEST share number 60 (RFC 4250)."""
    from handshake_lib.ssh.authentication import ClientAuth, KeyboardInteractiveRound, ServerAuthPolicy
    from handshake_lib.ssh.authorized_keys import AuthorizedKeys
    from handshake_lib.ssh.hostkeys import HostKeyPair
    from handshake_lib.ssh.messages import Prompt

    user = HostKeyPair.generate()
    known = KnownHosts.parse(known_hosts_line("127.0.0.1", 22, ED25519.host_key) + "\n")
    keylog = tmp_path / "keys.log"
    rounds = (KeyboardInteractiveRound((Prompt("Code: "),), lambda u, a: a == ("1",)),)
    policy = ServerAuthPolicy(
        authorized_keys=AuthorizedKeys.parse(user.public_line()), keyboard_interactive=rounds,
        required=(("publickey", "keyboard-interactive"),),
    )  # fmt: skip
    client = SSHClient(
        "127.0.0.1", 22, known_hosts=known, on_secrets=KeyLogWriter(keylog),
        auth=ClientAuth(identities=(user,), answer=lambda request: ["1"]),
    )  # fmt: skip
    server = SSHServer([ED25519], auth=policy)
    client.start()
    server.start()
    flights: list[tuple[str, bytes]] = []
    for _ in range(30):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if to_server:
            flights.append((CLIENT_TO_SERVER, to_server))
            server.receive_data(to_server)
        if to_client:
            flights.append((SERVER_TO_CLIENT, to_client))
            client.receive_data(to_client)
    assert client.authenticated and client.authenticator.succeeded == ["publickey", "keyboard-interactive"]
    [connection] = decode_ssh_capture(_segments(flights), read_keylog(keylog))
    decoded = names(connection, decrypted_only=True)
    assert "SSH_MSG_USERAUTH_PK_OK" in decoded and "SSH_MSG_USERAUTH_INFO_REQUEST" in decoded
    for direction in (CLIENT_TO_SERVER, SERVER_TO_CLIENT):  # each direction exactly as the client recorded it
        ours = [(e.name, e.wire) for e in client.transcript if e.direction == direction]
        assert [(p.name, p.wire) for p in connection.packets if p.direction == direction] == ours
