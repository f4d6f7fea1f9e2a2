"""Hostile bytes against our SSH client and our server: each ends the connection the way it must.

What every case asserts, for the side that received the bad bytes:

* the typed exception (``errors.*``), with a message that says what was wrong;
* the SSH_MSG_DISCONNECT we queued, read back from the bytes we would send, with the reason code RFC 4253
  section 11.1 gives for it (PROTOCOL_ERROR, MAC_ERROR, KEY_EXCHANGE_FAILED, ...); when the honest other
  side is still in step, it reads that DISCONNECT itself and raises ``PeerDisconnect`` with the same code;
* the connection is in ERROR and refuses to be used again (``ConnectionStateError``).

In memory, our client and server talk through :func:`pump`, which hands each side's packets (one
transcript entry each) to an optional ``tamper`` function on their way: the scripted peer is the real
other side with one packet replaced, added or removed.  Over sockets: peers that never finish their
banner, send endless lines, or never speak, against ``ssh_probe`` and ``SSHProbeServer`` with deadlines
(the assertions are on outcomes and bounds, never on durations); and a bit flipped by a proxy between
us and OpenSSH (sshd, ssh) in either direction, where OpenSSH decrypts and logs our MAC_ERROR, or hangs
up.  Last, hypothesis feeds random bytes and mutations of four recorded sessions to both cores: only
``HandshakeError`` subclasses come out, and every ``ProtocolError`` leaves a DISCONNECT queued.

The Terrapin attack (prefix truncation) has its own file, tests/test_ssh_terrapin.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable

import pytest
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tampering_proxy import TerrapinProxy

from handshake_lib import errors, net
from handshake_lib.errors import SSHDisconnect
from handshake_lib.net.ssh import SSHProbeServer, ssh_probe
from handshake_lib.ssh.client import AuthenticationMethods, SSHClient
from handshake_lib.ssh.connection import (
    Algorithms,
    ConnectionClosed,
    SSHConnection,
    TranscriptEntry,
    UnimplementedReceived,
)
from handshake_lib.ssh.constants import CIPHERS, MACS
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line
from handshake_lib.ssh.messages import (
    Disconnect,
    ExtInfo,
    Ignore,
    KexDHInit,
    KexECDHInit,
    KexECDHReply,
    NewKeys,
    ServiceAccept,
    ServiceRequest,
    UnknownMessage,
    decode_message,
)
from handshake_lib.ssh.packet import MAX_PACKET_SIZE, PacketDecoder, PacketEncoder
from handshake_lib.ssh.server import SSHServer
from handshake_lib.ssh.states import State
from handshake_lib.ssh.version import MAX_LINES_BEFORE, MAX_VERSION_LINE

ED25519 = HostKeyPair.generate("ssh-ed25519")
ECDSA = HostKeyPair.generate("ecdsa-sha2-nistp256")
FAST = Algorithms(kex=("curve25519-sha256",), ciphers=("chacha20-poly1305@openssh.com",))

Tamper = Callable[[str, list[TranscriptEntry]], bytes | None]


# -- the in-memory harness ------------------------------------------------------------------------------
def known(*pairs: HostKeyPair, port: int = 22) -> KnownHosts:
    return KnownHosts.parse("".join(known_hosts_line("127.0.0.1", port, pair.host_key) + "\n" for pair in pairs))


def pair(
    algorithms: Algorithms | None = FAST, server_algorithms: Algorithms | None = None, **options
) -> tuple[SSHClient, SSHServer]:
    client = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519, ECDSA), algorithms=algorithms, **options)
    server = SSHServer([ED25519, ECDSA], algorithms=server_algorithms or algorithms, **options)
    client.start()
    server.start()
    return client, server


class _Tap:
    """What one side queued since the last look, one transcript entry (one packet or line) at a time."""

    def __init__(self, connection: SSHConnection) -> None:
        self.connection = connection
        self.seen = 0

    def take(self) -> list[TranscriptEntry]:
        data = self.connection.data_to_send()
        transcript = self.connection.transcript
        new = [e for e in transcript[self.seen :] if e.direction == self.connection.outgoing_direction]
        self.seen = len(transcript)
        assert b"".join(e.wire for e in new) == data  # the transcript is exactly what went out
        return new


def pump(client: SSHClient, server: SSHServer, tamper: Tamper | None = None, rounds: int = 30) -> dict[str, list]:
    """Move packets both ways until both are quiet; ``tamper(direction, entries)`` may replace what goes."""
    taps = {"client": _Tap(client), "server": _Tap(server)}
    events: dict[str, list] = {"client": [], "server": []}
    for _ in range(rounds):
        moved = False
        for sender, receiver in (("client", server), ("server", client)):
            entries = taps[sender].take()
            if not entries:
                continue
            moved = True
            direction = entries[0].direction
            data = tamper(direction, entries) if tamper is not None else None
            taps[sender].seen = len(taps[sender].connection.transcript)  # what tamper added, it delivered
            if data is None:
                data = b"".join(e.wire for e in entries)
            events["server" if receiver is server else "client"] += receiver.receive_data(data)
        if not moved:
            break
    return events


KEX_INIT, KEX_REPLY = 30, 31  # KEX_ECDH_INIT / KEXDH_INIT and their replies share the numbers


def replace(direction: str, number: int, make: Callable[[TranscriptEntry], bytes]) -> Tamper:
    """A tamper that swaps the first packet with message ``number`` going ``direction`` for ``make(entry)``."""
    done = []

    def tamper(going: str, entries: list[TranscriptEntry]) -> bytes | None:
        if going != direction or done:
            return None
        out = []
        for entry in entries:
            if entry.packet is not None and entry.packet.message_number == number and not done:
                done.append(entry)
                out.append(make(entry))
            else:
                out.append(entry.wire)
        return b"".join(out)

    return tamper


def clear_packet(payload: bytes, sequence_number: int = 0) -> bytes:
    """``payload`` in a packet without protection (before the first NEWKEYS), as the peer would send it."""
    encoder = PacketEncoder()
    encoder.sequence_number = sequence_number
    return encoder.encode(payload)


def raw_packet(packet_length: int, padding_length: int, body: bytes) -> bytes:
    return packet_length.to_bytes(4, "big") + bytes([padding_length]) + body


def our_disconnect(connection: SSHConnection, *, queued: bool = True) -> Disconnect:
    """The DISCONNECT ``connection`` sent last, decoded from its packet's bytes; ``queued``: and the bytes
    still waiting in ``data_to_send()`` end with that packet (False: a driver already wrote them)."""
    last = connection.transcript[-1]
    assert last.direction == connection.outgoing_direction and last.packet is not None
    if queued:
        assert connection.data_to_send().endswith(last.packet.wire)
    message = decode_message(last.packet.payload)
    assert isinstance(message, Disconnect), message
    if last.packet.protection == "none":  # in clear, the wire bytes say it by themselves
        decoder = PacketDecoder()
        decoder.feed(last.packet.wire)
        assert decode_message(decoder.next_payload()) == message
    return message


def assert_failed(connection: SSHConnection, reason: SSHDisconnect, *, queued: bool = True) -> Disconnect:
    """``connection`` ended with DISCONNECT ``reason`` queued, is in ERROR, and refuses further use."""
    goodbye = our_disconnect(connection, queued=queued)
    assert goodbye.reason == reason, (SSHDisconnect(goodbye.reason).name, goodbye.description)
    assert connection.transport_state is State.ERROR and connection.closed
    with pytest.raises(errors.ConnectionStateError):
        connection.receive_data(b"more")
    with pytest.raises(errors.ConnectionStateError):
        connection.rekey()
    with pytest.raises(errors.ConnectionStateError):
        connection.start()
    return goodbye


def other(connection: SSHConnection, client: SSHClient, server: SSHServer) -> SSHConnection:
    return server if connection is client else client


def after_identification(connection: SSHConnection) -> bytes:
    """Start ``connection``, read its identification, and answer with a peer's identification line."""
    line = b"SSH-2.0-Scripted_1.0\r\n"
    connection.receive_data(line)
    return line


def fresh(role: str, **options) -> SSHConnection:
    connection: SSHConnection
    if role == "client":
        connection = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519, ECDSA), algorithms=FAST, **options)
    else:
        connection = SSHServer([ED25519, ECDSA], algorithms=FAST, **options)
    connection.start()
    return connection


ROLES = ["client", "server"]


# -- bad packet lengths and padding, in clear ----------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_a_too_large_packet_length_is_refused_from_its_four_bytes(role):
    connection = fresh(role)
    after_identification(connection)
    with pytest.raises(errors.PacketTooLarge, match="above the limit"):
        connection.receive_data((MAX_PACKET_SIZE + 1).to_bytes(4, "big"))  # nothing of the body needed
    assert connection._decoder.buffered == 4  # refused before buffering the 256 KiB it announced
    assert_failed(connection, SSHDisconnect.PROTOCOL_ERROR)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("packet", "complaint"),
    [
        (raw_packet(13, 4, bytes([20]) + bytes(12)), "not aligned"),  # 17 bytes: not a multiple of 8
        (raw_packet(4, 4, b""), "below 5"),
        (raw_packet(12, 3, bytes([20]) + bytes(11)), "padding_length 3 is below 4"),
        (raw_packet(12, 11, bytes(11)), "leaves no payload"),
    ],
    ids=["misaligned", "too-short", "padding-3", "no-payload"],
)
def test_bad_lengths_in_clear_are_protocol_errors(role, packet, complaint):
    connection = fresh(role)
    after_identification(connection)
    with pytest.raises(errors.DecodeError, match=complaint):
        connection.receive_data(packet)
    assert_failed(connection, SSHDisconnect.PROTOCOL_ERROR)


# -- tampering under encryption ------------------------------------------------------------------------
def _up(algorithms: Algorithms) -> tuple[SSHClient, SSHServer]:
    client, server = pair(algorithms)
    pump(client, server)
    assert client.reached_user_authentication
    return client, server


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    tampered = bytearray(data)
    tampered[index] ^= mask
    return bytes(tampered)


CIPHER_MAC = [(cipher, MACS[0]) for cipher in CIPHERS] + [("aes128-ctr", mac) for mac in MACS[1:]]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("cipher", "mac"), CIPHER_MAC)
@pytest.mark.parametrize("where", ["length", "body", "tag"])
def test_a_flipped_bit_in_an_encrypted_packet_is_a_mac_error(role, cipher, mac, where):
    client, server = _up(Algorithms(ciphers=(cipher,), macs=(mac,), kex=("curve25519-sha256",)))
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    packet = sender._send_message(Ignore(b"sixteen bytes...")).wire
    sender.data_to_send()
    index = {"length": 0, "body": 9, "tag": len(packet) - 1}[where]
    mask = 0x80 if where == "length" else 0x01  # the top bit: a length of 2 GiB, whatever the cipher
    with pytest.raises(errors.BadPacketMac):
        victim.receive_data(_flip(packet, index, mask))
    goodbye = assert_failed(victim, SSHDisconnect.MAC_ERROR)
    # The sender's decoder is still in step with the victim's encoder: it reads the goodbye itself.
    with pytest.raises(errors.PeerDisconnect) as caught:
        sender.receive_data(victim_wire(victim))
    assert caught.value.reason == SSHDisconnect.MAC_ERROR == goodbye.reason


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("cipher", CIPHERS)
def test_bad_padding_under_a_valid_mac_is_a_protocol_error(role, cipher):
    # A peer with the keys (not an attacker) that pads wrongly: the MAC passes, then the padding is judged.
    client, server = _up(Algorithms(ciphers=(cipher,), kex=("curve25519-sha256",)))
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    encoder = sender._encoder
    body = bytes([2, 0, 0, 0, 0]) + bytes(2)  # IGNORE with an empty string, then 2 bytes of "padding"
    aligned = 16 if encoder.protection.length_in_clear_block else 12  # so that the length stays aligned
    clear = (len(body) + 1 + aligned - 8).to_bytes(4, "big") + bytes([2]) + body + bytes(aligned - 8)
    wire = encoder.protection.seal(encoder.sequence_number, clear)
    with pytest.raises(errors.DecodeError, match="padding_length 2 is below 4"):
        victim.receive_data(wire)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


def victim_wire(connection: SSHConnection) -> bytes:
    """The last packet ``connection`` sent (its DISCONNECT), as wire bytes."""
    last = connection.transcript[-1]
    assert last.packet is not None
    return last.packet.wire


# -- memory: what a peer can make us keep --------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_endless_ignore_packets_cost_no_transcript_memory_past_the_cap(role, monkeypatch):
    from handshake_lib.ssh import connection as core

    # Smaller caps than the real ones (8,192 entries, 16 MiB), so that the test reaches both quickly.
    MAX_TRANSCRIPT_ENTRIES, MAX_TRANSCRIPT_BYTES = 300, 2 * 1024 * 1024  # noqa: N806
    monkeypatch.setattr(core, "MAX_TRANSCRIPT_ENTRIES", MAX_TRANSCRIPT_ENTRIES)
    monkeypatch.setattr(core, "MAX_TRANSCRIPT_BYTES", MAX_TRANSCRIPT_BYTES)
    client, server = _up(FAST)
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    kept_before = len(victim.transcript)
    big = Ignore(bytes(200_000))  # as large as a packet may be: the byte cap, not the count, binds first
    sent = 0
    while sent < MAX_TRANSCRIPT_BYTES // 200_000 + 50:
        victim.receive_data(sender._send_message(big).wire)
        sender.data_to_send()
        sent += 1
    small = 0
    while small < MAX_TRANSCRIPT_ENTRIES + 50:
        victim.receive_data(sender._send_message(Ignore(b"")).wire)
        sender.data_to_send()
        small += 1
    assert len(victim.transcript) <= MAX_TRANSCRIPT_ENTRIES
    assert sum(len(e.wire) for e in victim.transcript) <= MAX_TRANSCRIPT_BYTES
    assert victim.transcript_overflow == sent + small - (len(victim.transcript) - kept_before)
    # Every packet was still read, and the session goes on; the goodbye is kept whatever the count.
    sender.disconnect()
    assert victim.receive_data(sender.data_to_send())[0].reason == SSHDisconnect.BY_APPLICATION
    assert victim.transcript[-1].name == "SSH_MSG_DISCONNECT"


# -- unknown messages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_an_unknown_message_is_answered_with_unimplemented_and_the_session_goes_on(role):
    client, server = pair()
    # Up to the keys: the first encrypted flight of each side is where the unknown message goes.
    unknown_sent = []

    def inject(direction: str, entries: list[TranscriptEntry]) -> bytes | None:
        sender = client if direction == "client->server" else server
        if sender is not (client if role == "server" else server) or unknown_sent:
            return None
        if sender.transport_state is not State.ENCRYPTED and not any(e.name == "SSH_MSG_NEWKEYS" for e in entries):
            return None
        # Right after this flight, under the new keys: message 192 is nobody's.
        packet = sender._send_message(UnknownMessage(number=192, body=b"?"))
        sender.data_to_send()
        unknown_sent.append(packet)
        return b"".join(e.wire for e in entries) + packet.wire

    events = pump(client, server, inject)
    victim = client if role == "client" else server
    [unknown] = unknown_sent
    [answer] = [e for e in victim.transcript if e.name == "SSH_MSG_UNIMPLEMENTED"]
    assert answer.message.sequence_number == unknown.sequence_number
    peer_events = events["server" if role == "client" else "client"]
    assert UnimplementedReceived(unknown.sequence_number) in peer_events
    assert client.reached_user_authentication and victim.transport_state is State.ENCRYPTED


@pytest.mark.parametrize("role", ROLES)
def test_an_unknown_message_during_the_first_key_exchange_is_fatal_under_strict_kex(role):
    client, server = pair()
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    pump_once(client, server)  # identifications and KEXINITs crossed: strict kex is on
    packet = sender._send_message(UnknownMessage(number=192, body=b"?")).wire
    sender.data_to_send()
    with pytest.raises(errors.UnexpectedMessage, match="strict key exchange"):
        victim.receive_data(packet)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


def pump_once(client: SSHClient, server: SSHServer) -> None:
    """Identification lines and both KEXINITs, nothing more: both sides negotiated; the client's
    KEX_ECDH_INIT is left queued (a test sends it, drops it or replaces it)."""
    client.receive_data(server.data_to_send())  # the server's identification: the client sends KEXINIT
    server.receive_data(client.data_to_send())  # the client's identification and KEXINIT: the server's KEXINIT
    client.receive_data(server.data_to_send())  # the client negotiates and queues KEX_ECDH_INIT
    assert client.strict_kex == server.strict_kex == client.offer_strict_kex


# -- messages in the wrong order -----------------------------------------------------------------------
def test_a_kex_reply_before_kexinit_is_unexpected_for_the_client():
    client = fresh("client")
    after_identification(client)
    reply = KexECDHReply(ED25519.host_key.encode(), bytes(32), b"")
    with pytest.raises(errors.UnexpectedMessage, match="no key exchange is in progress"):
        client.receive_data(clear_packet(reply.to_bytes()))
    assert_failed(client, SSHDisconnect.PROTOCOL_ERROR)


def test_a_kex_init_before_kexinit_is_unexpected_for_the_server():
    server = fresh("server")
    after_identification(server)
    with pytest.raises(errors.UnexpectedMessage):
        server.receive_data(clear_packet(KexECDHInit(bytes(32)).to_bytes()))
    assert_failed(server, SSHDisconnect.PROTOCOL_ERROR)


@pytest.mark.parametrize("role", ROLES)
def test_newkeys_too_early_is_unexpected(role):
    client, server = pair()
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    pump_once(client, server)
    if role == "client":
        client.data_to_send()  # its KEX_ECDH_INIT, which the server never gets
    packet = sender._send_message(NewKeys()).wire
    sender.data_to_send()
    with pytest.raises(errors.UnexpectedMessage, match="NEWKEYS is not allowed"):
        victim.receive_data(packet)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "not-strict"])
@pytest.mark.parametrize("role", ROLES)
def test_a_service_message_before_newkeys_is_unexpected(role, strict):
    client, server = pair(strict_kex=strict)
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    pump_once(client, server)
    client.data_to_send()
    message = ServiceAccept("ssh-userauth") if role == "client" else ServiceRequest("ssh-userauth")
    packet = sender._send_message(message).wire
    sender.data_to_send()
    complaint = "strict key exchange" if strict else "during a key exchange"
    with pytest.raises(errors.UnexpectedMessage, match=complaint):
        victim.receive_data(packet)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


@pytest.mark.parametrize("role", ROLES)
def test_under_strict_kex_the_kexinit_must_be_the_first_packet(role):
    client, server = pair()
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    line, _, _ = sender.data_to_send().partition(b"\n")
    victim.receive_data(line + b"\n")
    sender.receive_data(victim.data_to_send())  # the sender has sent its KEXINIT (which we hold back)
    kexinit = decode_message(kexinit_payload(sender))
    # An IGNORE first, then the same KEXINIT as the peer's second packet: strict kex is on once it is read.
    data = clear_packet(Ignore(b"").to_bytes(), 0) + clear_packet(kexinit.to_bytes(), 1)
    with pytest.raises(errors.UnexpectedMessage, match="KEXINIT was not its first packet"):
        victim.receive_data(data)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


def kexinit_payload(connection: SSHConnection) -> bytes:
    """The payload of the KEXINIT ``connection`` sent (what it queued is dropped)."""
    connection.data_to_send()
    [kexinit] = [
        e for e in connection.transcript if e.name == "SSH_MSG_KEXINIT" and e.direction == connection.outgoing_direction
    ]
    return kexinit.packet.payload


@pytest.mark.parametrize("role", ROLES)
def test_a_second_kexinit_during_the_key_exchange_is_unexpected(role):
    client, server = pair()
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    pump_once(client, server)
    victim.data_to_send()
    packet = sender._send_message(decode_message(kexinit_payload(sender))).wire
    sender.data_to_send()
    with pytest.raises(errors.UnexpectedMessage, match="KEXINIT is not allowed"):
        victim.receive_data(packet)
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


def test_a_second_ext_info_is_unexpected():
    client, server = pair()
    pump(client, server)
    assert client.server_sig_algs is not None  # the first EXT_INFO was taken
    packet = server._send_message(ExtInfo.with_server_sig_algs(["ssh-ed25519"])).wire
    server.data_to_send()
    with pytest.raises(errors.UnexpectedMessage, match="EXT_INFO is not allowed"):
        client.receive_data(packet)
    assert_failed(client, SSHDisconnect.PROTOCOL_ERROR)
    with pytest.raises(errors.PeerDisconnect) as caught:  # our server reads the goodbye under the keys
        server.receive_data(victim_wire(client))
    assert caught.value.reason == SSHDisconnect.PROTOCOL_ERROR


def test_ext_info_from_a_client_is_unexpected_for_our_server():
    client, server = pair()
    pump(client, server)
    packet = client._send_message(ExtInfo.with_server_sig_algs(["ssh-ed25519"])).wire
    client.data_to_send()
    with pytest.raises(errors.UnexpectedMessage):
        server.receive_data(packet)
    assert_failed(server, SSHDisconnect.PROTOCOL_ERROR)


# -- the service layer ---------------------------------------------------------------------------------
def forged(sender: SSHConnection, message) -> Callable[[TranscriptEntry], bytes]:
    """For :func:`replace`: ``message`` in place of a packet ``sender`` sent under its new keys, with that
    packet's sequence number (chacha20-poly1305 keys each packet by its number alone, so nothing else moves)."""

    def make(entry: TranscriptEntry) -> bytes:
        encoder = sender._encoder
        saved, encoder.sequence_number = encoder.sequence_number, entry.packet.sequence_number
        wire = encoder.encode(message.to_bytes())
        encoder.sequence_number = saved
        return wire

    return make


def test_a_service_we_do_not_run_is_service_not_available():
    client, server = pair()
    with pytest.raises(errors.ServiceNotAvailable, match="ssh-connection"):
        pump(client, server, replace("client->server", 5, forged(client, ServiceRequest("ssh-connection"))))
    assert_failed(server, SSHDisconnect.SERVICE_NOT_AVAILABLE)
    with pytest.raises(errors.PeerDisconnect) as caught:  # our client reads it under the new keys
        client.receive_data(victim_wire(server))
    assert caught.value.reason == SSHDisconnect.SERVICE_NOT_AVAILABLE


def test_a_server_accepting_a_service_we_did_not_ask_for_is_a_protocol_error():
    client, server = pair()
    with pytest.raises(errors.ProtocolError, match="accepted service 'ssh-connection'"):
        pump(client, server, replace("server->client", 6, forged(server, ServiceAccept("ssh-connection"))))
    assert_failed(client, SSHDisconnect.PROTOCOL_ERROR)


def test_too_many_authentication_requests_end_with_no_more_auth_methods():
    from handshake_lib.ssh.messages import UserauthRequest
    from handshake_lib.ssh.server import MAX_AUTH_REQUESTS

    client, server = pair()
    pump(client, server)
    assert server.auth_requests == 1
    with pytest.raises(errors.TooManyAuthenticationAttempts):
        for _ in range(MAX_AUTH_REQUESTS):
            server.receive_data(client._send_message(UserauthRequest("mallory", "ssh-connection", "none")).wire)
            client.data_to_send()
            server.data_to_send()
    assert server.auth_requests == MAX_AUTH_REQUESTS + 1
    assert_failed(server, SSHDisconnect.NO_MORE_AUTH_METHODS_AVAILABLE)


# -- negotiation fails ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("ours", "theirs", "category"),
    [
        (Algorithms(kex=("curve25519-sha256",)), Algorithms(kex=("ecdh-sha2-nistp256",)), "kex"),
        (Algorithms(host_key=("ssh-ed25519",)), Algorithms(host_key=("ecdsa-sha2-nistp256",)), "host key"),
        (Algorithms(ciphers=("aes128-ctr",)), Algorithms(ciphers=("aes256-gcm@openssh.com",)), "cipher"),
        (
            Algorithms(ciphers=("aes128-ctr",), macs=("hmac-sha2-256",)),
            Algorithms(ciphers=("aes128-ctr",), macs=("hmac-sha2-512",)),
            "MAC",
        ),
    ],
    ids=["kex", "host-key", "cipher", "mac"],
)
def test_no_common_algorithm_names_the_category(role, ours, theirs, category):
    client_algorithms, server_algorithms = (ours, theirs) if role == "client" else (theirs, ours)
    client, server = pair(client_algorithms, server_algorithms)
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    # Only the identification lines cross first (a client sends its KEXINIT right behind its line, a server
    # once it has read the client's), so each side has sent its KEXINIT before it reads the other's.
    sender_line, _, sender_rest = sender.data_to_send().partition(b"\n")
    victim.receive_data(sender_line + b"\n")
    victim_line, _, _ = victim.data_to_send().partition(b"\n")
    sender.receive_data(victim_line + b"\n")
    with pytest.raises(errors.NoCommonAlgorithm) as caught:
        victim.receive_data(sender_rest + sender.data_to_send())
    # As OpenSSH says it: "no matching cipher found: client ... server ..."
    assert str(caught.value).startswith(f"no matching {category}")
    assert caught.value.category.startswith(category)
    assert_failed(victim, SSHDisconnect.KEY_EXCHANGE_FAILED)


# -- identification lines ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_a_version_line_that_never_ends_is_refused_at_255_bytes(role):
    connection = fresh(role)
    with pytest.raises(errors.DecodeError, match="longer than 255"):
        for _ in range(100):
            connection.receive_data(b"SSH-2.0-" + b"x" * 64)
    assert len(connection._reader._line) < MAX_VERSION_LINE  # what it held when it refused
    assert_failed(connection, SSHDisconnect.PROTOCOL_ERROR)


def test_endless_lines_before_the_version_are_refused_by_the_client():
    client = fresh("client")
    with pytest.raises(errors.DecodeError, match="lines before the version line"):
        for _ in range(MAX_LINES_BEFORE + 10):
            client.receive_data(b"welcome\r\n")
    assert len(client._reader.lines_before) == MAX_LINES_BEFORE
    assert_failed(client, SSHDisconnect.PROTOCOL_ERROR)


def test_a_line_before_the_version_is_refused_by_the_server():
    server = fresh("server")
    with pytest.raises(errors.ProtocolVersionError, match="not an SSH client"):
        server.receive_data(b"GET / HTTP/1.1\r\n")
    assert_failed(server, SSHDisconnect.PROTOCOL_VERSION_NOT_SUPPORTED)


@pytest.mark.parametrize("role", ROLES)
def test_ssh_1_5_is_protocol_version_not_supported(role):
    connection = fresh(role)
    with pytest.raises(errors.ProtocolVersionError, match="1.5"):
        connection.receive_data(b"SSH-1.5-OldSSH_1.2.27\r\n")
    assert_failed(connection, SSHDisconnect.PROTOCOL_VERSION_NOT_SUPPORTED)


# -- the key exchange's values -------------------------------------------------------------------------
def _reply(entry: TranscriptEntry, kex_family: str = "ecdh", **changes) -> bytes:
    assert entry.packet is not None
    reply = decode_message(entry.packet.payload, kex_family=kex_family)
    return clear_packet(dataclasses.replace(reply, **changes).to_bytes(), entry.packet.sequence_number)


def test_a_bad_host_key_signature_is_key_exchange_failed():
    def bad_signature(entry: TranscriptEntry) -> bytes:
        signature = decode_message(entry.packet.payload, kex_family="ecdh").signature
        return _reply(entry, signature=_flip(signature, len(signature) - 1))

    client, server = pair()
    with pytest.raises(errors.BadHostKeySignature):
        pump(client, server, replace("server->client", KEX_REPLY, bad_signature))
    assert_failed(client, SSHDisconnect.KEY_EXCHANGE_FAILED)


def test_a_host_key_of_another_type_than_negotiated_is_key_exchange_failed():
    client, server = pair(Algorithms(host_key=("ssh-ed25519",), kex=("curve25519-sha256",)))
    swap = replace("server->client", KEX_REPLY, lambda e: _reply(e, host_key=ECDSA.host_key.encode()))
    with pytest.raises(errors.KeyExchangeFailed, match="ecdsa-sha2-nistp256 host key, but ssh-ed25519 was negotiated"):
        pump(client, server, swap)
    assert_failed(client, SSHDisconnect.KEY_EXCHANGE_FAILED)


LOW_ORDER_X25519 = [bytes(32), (1).to_bytes(32, "little")]  # zero and one: all-zero shared secrets


@pytest.mark.parametrize("share", LOW_ORDER_X25519, ids=["zero", "one"])
@pytest.mark.parametrize("kex", ["curve25519-sha256", "mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com"])
def test_a_low_order_x25519_share_is_key_exchange_failed_for_both_roles(kex, share):
    # The hybrids end their share (and their reply) with the X25519 key: the same check guards them.
    def low_order(public: bytes) -> bytes:
        return public[:-32] + share

    def bad_init(entry: TranscriptEntry) -> bytes:
        public = decode_message(entry.packet.payload, kex_family="ecdh").client_public
        return clear_packet(KexECDHInit(low_order(public)).to_bytes(), entry.packet.sequence_number)

    def bad_reply(entry: TranscriptEntry) -> bytes:
        public = decode_message(entry.packet.payload, kex_family="ecdh").server_public
        return _reply(entry, server_public=low_order(public))

    client, server = pair(Algorithms(kex=(kex,)))
    with pytest.raises(errors.KeyExchangeFailed, match="low-order"):
        pump(client, server, replace("client->server", KEX_INIT, bad_init))
    assert_failed(server, SSHDisconnect.KEY_EXCHANGE_FAILED)

    client, server = pair(Algorithms(kex=(kex,)))
    with pytest.raises(errors.KeyExchangeFailed, match="low-order"):
        pump(client, server, replace("server->client", KEX_REPLY, bad_reply))
    assert_failed(client, SSHDisconnect.KEY_EXCHANGE_FAILED)


def test_a_p256_point_off_the_curve_is_key_exchange_failed():
    client, server = pair(Algorithms(kex=("ecdh-sha2-nistp256",)))
    off_curve = b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big")
    with pytest.raises(errors.KeyExchangeFailed, match="not on the curve"):
        pump(
            client,
            server,
            replace(
                "client->server",
                KEX_INIT,
                lambda e: clear_packet(KexECDHInit(off_curve).to_bytes(), e.packet.sequence_number),
            ),
        )
    assert_failed(server, SSHDisconnect.KEY_EXCHANGE_FAILED)


GROUP14_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B"
    "302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE6"
    "49286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D"
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)


@pytest.mark.parametrize("value", [0, 1, GROUP14_P - 1, GROUP14_P], ids=["0", "1", "p-1", "p"])
def test_a_diffie_hellman_value_out_of_range_is_key_exchange_failed(value):
    client, server = pair(Algorithms(kex=("diffie-hellman-group14-sha256",)))
    bad_e = replace(
        "client->server", KEX_INIT, lambda e: clear_packet(KexDHInit(value).to_bytes(), e.packet.sequence_number)
    )
    with pytest.raises(errors.KeyExchangeFailed, match=r"outside \[2, p-2\]"):
        pump(client, server, bad_e)
    assert_failed(server, SSHDisconnect.KEY_EXCHANGE_FAILED)
    client, server = pair(Algorithms(kex=("diffie-hellman-group14-sha256",)))
    bad_f = replace("server->client", KEX_REPLY, lambda e: _reply(e, kex_family="dh", server_public=value))
    with pytest.raises(errors.KeyExchangeFailed, match=r"outside \[2, p-2\]"):
        pump(client, server, bad_f)
    assert_failed(client, SSHDisconnect.KEY_EXCHANGE_FAILED)


# -- the peer says goodbye -----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("when", ["before-kexinit", "during-kex", "encrypted"])
def test_a_peer_disconnect_is_peer_disconnect_with_its_reason(role, when):
    client, server = pair()
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    if when == "during-kex":
        pump_once(client, server)
        victim.data_to_send()
    elif when == "encrypted":
        pump(client, server)
    else:
        victim.receive_data(sender.data_to_send().split(b"\n")[0] + b"\n")
        victim.data_to_send()
    packet = sender._send_message(Disconnect(SSHDisconnect.HOST_NOT_ALLOWED_TO_CONNECT, "go away")).wire
    with pytest.raises(errors.PeerDisconnect) as caught:
        victim.receive_data(packet)
    assert caught.value.reason == SSHDisconnect.HOST_NOT_ALLOWED_TO_CONNECT and caught.value.description == "go away"
    assert victim.transport_state is State.ERROR
    assert victim.data_to_send() == b""  # nobody is left to read an answer
    with pytest.raises(errors.ConnectionStateError):
        victim.receive_data(b"more")


@pytest.mark.parametrize("role", ROLES)
def test_a_peer_disconnect_by_application_is_a_closed_event(role):
    client, server = pair()
    pump(client, server)
    victim = client if role == "client" else server
    sender = other(victim, client, server)
    sender.disconnect()
    events = victim.receive_data(sender.data_to_send())
    assert events == [ConnectionClosed(int(SSHDisconnect.BY_APPLICATION), "goodbye", True)]
    assert victim.transport_state is State.CLOSED and victim.receive_data(b"") == []


# -- over sockets, with deadlines ----------------------------------------------------------------------
class HostilePeer:
    """A loopback listener whose one connection runs ``behave(sock, sent)``, bounded by ``lifetime`` s.

    ``sent`` counts the bytes it managed to write; the thread ends when the other side goes away or the
    lifetime runs out, whichever comes first, and :meth:`close` checks that it did.
    """

    def __init__(self, behave: Callable[[socket.socket, list[int], float], None], lifetime: float = 8.0) -> None:
        self.listener = net.listen_loopback()
        self.port = self.listener.getsockname()[1]
        self.sent = [0]
        self.lifetime = lifetime
        self.thread = threading.Thread(target=self._run, args=(behave,), daemon=True)
        self.thread.start()

    def _run(self, behave) -> None:
        deadline = time.monotonic() + self.lifetime
        self.listener.settimeout(self.lifetime)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):  # the client hung up: what we were waiting for
                behave(conn, self.sent, deadline)

    def __enter__(self) -> HostilePeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.thread.join(self.lifetime + 2)
        self.listener.close()
        assert not self.thread.is_alive()


def trickle(conn: socket.socket, sent: list[int], deadline: float) -> None:
    """A banner one byte a second, forever (until the client leaves or the lifetime ends)."""
    banner = b"SSH-2.0-" + b"s" * 10_000
    while time.monotonic() < deadline:
        conn.sendall(banner[sent[0] : sent[0] + 1])
        sent[0] += 1
        time.sleep(1.0)


def test_a_banner_trickled_a_byte_a_second_ends_at_the_deadline_with_connection_timeout():
    client = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519))
    with HostilePeer(trickle) as peer:
        with pytest.raises(errors.ConnectionTimeout) as caught:
            ssh_probe("127.0.0.1", peer.port, timeout=1.5, client=client)
        client_held = len(client._reader._line)
    assert caught.value.exchange is not None  # the probe says what crossed the wire before it gave up
    assert client.peer_identification is None and 1 <= client_held <= peer.sent[0]  # held only what came
    assert peer.sent[0] < MAX_VERSION_LINE  # the deadline ended it, not a byte limit


def chatter(line: bytes) -> Callable[[socket.socket, list[int], float], None]:
    def behave(conn: socket.socket, sent: list[int], deadline: float) -> None:
        chunk = line * max(1, 16384 // len(line))
        while time.monotonic() < deadline:
            conn.sendall(chunk)
            sent[0] += len(chunk)

    return behave


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (b"Welcome!\r\n", "more than 1023 lines before the version line"),
        (b"x" * 2000 + b"\r\n", "more than 65536 bytes before the version line"),
        (b"x" * 20_000, "a line longer than 8192 bytes"),
    ],
    ids=["many-lines", "many-bytes", "one-endless-line"],
)
def test_a_server_that_talks_forever_before_its_banner_is_refused_at_the_limit(line, complaint):
    client = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519))
    with HostilePeer(chatter(line)) as peer, pytest.raises(errors.DecodeError, match=complaint):
        ssh_probe("127.0.0.1", peer.port, timeout=10, client=client)
    assert len(client._reader.lines_before) <= MAX_LINES_BEFORE
    assert sum(len(kept) + 2 for kept in client._reader.lines_before) <= 64 * 1024
    assert len(client._reader._line) <= 8192 + 1  # at most the byte that crossed the limit
    assert_failed(client, SSHDisconnect.PROTOCOL_ERROR, queued=False)  # the driver wrote it


def test_a_client_that_never_speaks_is_let_go_at_the_server_timeout():
    with SSHProbeServer([ED25519], timeout=1.0) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            received = b""
            while chunk := sock.recv(4096):  # the server's line, then its close: no bytes from us
                received += chunk
        assert received.startswith(b"SSH-2.0-") and received.endswith(b"\r\n")
    [served] = server.connections
    assert isinstance(served.error, errors.ConnectionTimeout)
    assert served.server.peer_identification is None and not served.key_exchanges
    assert server.live_threads == 0


# -- tampering between real OpenSSH and us --------------------------------------------------------------
@pytest.fixture(scope="module")
def sshd():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    from handshake_lib.peers.openssh import openssh_server

    with openssh_server() as server:
        yield server


def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (a peer's log is written after it answers)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


TAMPERED_CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes128-ctr"]


@pytest.mark.peer
@pytest.mark.parametrize("cipher", TAMPERED_CIPHERS)
def test_a_bit_flipped_in_sshd_packets_is_a_mac_error_that_sshd_reads(sshd, cipher):
    algorithms = Algorithms(kex=("curve25519-sha256",), ciphers=(cipher,), macs=("hmac-sha2-256",))
    client = SSHClient(sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts), algorithms=algorithms)
    with (
        TerrapinProxy(sshd.port, inject=False, flip=8) as proxy,
        pytest.raises(errors.BadPacketMac) as caught,
    ):
        ssh_probe("127.0.0.1", proxy.port, client=client, timeout=10)
    assert proxy.flipped and caught.value.exchange is not None
    goodbye = client.transcript[-1]
    assert isinstance(goodbye.message, Disconnect) and goodbye.message.reason == SSHDisconnect.MAC_ERROR
    # sshd opened our DISCONNECT with the keys we share and logged its reason code (5: MAC_ERROR).
    assert goodbye.message.description == str(caught.value)[:200]
    assert eventually(lambda: f":5: {goodbye.message.description} [preauth]" in sshd.log)


@pytest.mark.peer
@pytest.mark.parametrize("cipher", TAMPERED_CIPHERS)
def test_sshd_hangs_up_on_a_bit_flipped_in_our_packets_and_the_probe_says_so(sshd, cipher):
    # sshd does not get its DISCONNECT out after a bad MAC: it just closes.  Our probe must not take that
    # close (legal for a core between key exchanges) for an answer.
    algorithms = Algorithms(kex=("curve25519-sha256",), ciphers=(cipher,), macs=("hmac-sha2-256",))
    client = SSHClient(sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts), algorithms=algorithms)
    complaint = "message authentication code incorrect [preauth]"
    before = sshd.log.count(complaint)
    with (
        TerrapinProxy(sshd.port, inject=False, flip=8, attacked="client") as proxy,
        pytest.raises(errors.UnexpectedEOF, match="closed the connection after the key exchange") as caught,
    ):
        ssh_probe("127.0.0.1", proxy.port, client=client, timeout=10)
    assert proxy.flipped and caught.value.exchange is not None and client.methods is None
    assert eventually(lambda: sshd.log.count(complaint) > before)


@pytest.mark.peer
@pytest.mark.parametrize("cipher", TAMPERED_CIPHERS)
def test_a_bit_flipped_in_openssh_ssh_packets_is_a_mac_error_that_ssh_reads(tmp_path, cipher):
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    from handshake_lib.peers.openssh import openssh_client

    algorithms = Algorithms(kex=("curve25519-sha256",), ciphers=(cipher,), macs=("hmac-sha2-256",))
    with (
        SSHProbeServer([ED25519], algorithms=algorithms, timeout=10) as server,
        TerrapinProxy(server.port, inject=False, flip=8, attacked="client") as proxy,
    ):
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(known_hosts_line("127.0.0.1", proxy.port, ED25519.host_key) + "\n")
        run = openssh_client(
            "127.0.0.1", proxy.port, user="alice", known_hosts_file=known_hosts, timeout=10,
            kex="curve25519-sha256", ciphers=cipher, macs="hmac-sha2-256",
        )  # fmt: skip
    [served] = server.connections
    assert proxy.flipped and isinstance(served.error, errors.BadPacketMac)
    assert_failed(served.server, SSHDisconnect.MAC_ERROR, queued=False)  # the driver wrote it
    # ssh decrypted our DISCONNECT and printed its reason code: "Received disconnect from ... port N:5: ..."
    assert not run.reached_user_auth and re.search(r"Received disconnect from 127\.0\.0\.1 port \d+:5: ", run.stderr)


# -- hypothesis: random and mutated bytes --------------------------------------------------------------
def seeded(seed: int) -> Callable[[int], bytes]:
    import random

    generator = random.Random(seed)
    return generator.randbytes


# Recorded sessions: each protection family, and each kind of key exchange value (fixed bytes, point, mpint).
# No post-quantum hybrid: their encapsulation takes no injected randomness, so a server cannot replay one.
RECORDINGS = {
    "chacha20-x25519": FAST,
    "ctr-hmac-p256": Algorithms(kex=("ecdh-sha2-nistp256",), ciphers=("aes128-ctr",), macs=("hmac-sha2-256",)),
    "ctr-etm-group14": Algorithms(
        kex=("diffie-hellman-group14-sha256",), ciphers=("aes256-ctr",), macs=("hmac-sha2-512-etm@openssh.com",)
    ),
    "gcm-x25519": Algorithms(kex=("curve25519-sha256@libssh.org",), ciphers=("aes256-gcm@openssh.com",)),
}


def deterministic_pair(recording: str = "chacha20-x25519") -> tuple[SSHClient, SSHServer]:
    """Our client and server with fixed randomness: a second pair says exactly the same bytes."""
    algorithms = RECORDINGS[recording]
    client = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519), algorithms=algorithms, random=seeded(1))
    server = SSHServer([ED25519], algorithms=algorithms, random=seeded(2))
    client.start()
    server.start()
    return client, server


def _record(recording: str) -> dict[str, list[bytes]]:
    """A whole session, our client and server, up to the list of methods: each side's writes in order."""
    client, server = deterministic_pair(recording)
    writes: dict[str, list[bytes]] = {"client->server": [], "server->client": []}

    def keep(direction: str, entries: list[TranscriptEntry]) -> None:
        writes[direction].append(b"".join(e.wire for e in entries))

    pump(client, server, keep)
    assert client.reached_user_authentication
    return writes


RECORDED = {name: _record(name) for name in RECORDINGS}


def check_outcome(connection: SSHConnection, feed: Callable[[], None]) -> None:
    """``feed`` may raise only HandshakeError subclasses; a ProtocolError leaves our DISCONNECT queued."""
    try:
        feed()
    except errors.ProtocolError as error:
        assert connection.transport_state is State.ERROR
        goodbye = connection.transcript[-1]
        assert isinstance(goodbye.message, Disconnect) and goodbye.direction == connection.outgoing_direction
        assert goodbye.message.reason == error.ssh_disconnect
        assert connection.data_to_send().endswith(goodbye.wire)
    except (errors.PeerDisconnect, errors.ConnectionStateError):
        assert connection.closed
    except errors.HandshakeError:
        pass


def _feed_chunks(connection: SSHConnection, data: bytes, cuts: list[int]) -> Callable[[], None]:
    def feed() -> None:
        edges = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
        for start, end in zip(edges, edges[1:], strict=False):
            connection.receive_data(data[start:end])
            connection.data_to_send()  # our answers go nowhere: the recorded peer does not listen

    return feed


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(role=st.sampled_from(ROLES), prefix=st.booleans(), data=st.binary(max_size=600))
def test_random_bytes_raise_only_typed_errors(role, prefix, data):
    connection = fresh(role)
    payload = (b"SSH-2.0-Fuzz_1.0\r\n" if prefix else b"") + data
    check_outcome(connection, _feed_chunks(connection, payload, [len(payload) // 2]))


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buffer = bytearray(data)
    for kind, where, what in mutations:
        where %= max(1, len(buffer))
        if kind == "flip" and buffer:
            buffer[where] ^= what
        elif kind == "insert":
            buffer[where:where] = what
        elif kind == "delete":
            del buffer[where : where + what]
        else:
            del buffer[where:]
    return bytes(buffer)


@FUZZ
@given(
    recording=st.sampled_from(sorted(RECORDINGS)),
    role=st.sampled_from(ROLES),
    mutations=st.lists(mutation, min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=6),
    eof=st.booleans(),
)
def test_mutations_of_a_recorded_session_raise_only_typed_errors(recording, role, mutations, cuts, eof):
    client, server = deterministic_pair(recording)
    victim = client if role == "client" else server
    recorded = b"".join(RECORDED[recording]["server->client" if role == "client" else "client->server"])
    data = mutate(recorded, mutations)

    def feed() -> None:
        _feed_chunks(victim, data, cuts)()
        if eof:
            victim.receive_data(b"")

    check_outcome(victim, feed)


@pytest.mark.parametrize("recording", sorted(RECORDINGS))
def test_the_recording_replays_byte_for_byte(recording):
    # What makes the mutations meaningful: unmutated, the recorded server bytes take a fresh client all the
    # way, so a mutation is the only reason anything fails.
    client, _ = deterministic_pair(recording)
    events = _feed_events(client, RECORDED[recording]["server->client"])
    assert client.reached_user_authentication
    assert [e.methods for e in events if isinstance(e, AuthenticationMethods)] == [("publickey", "password")]
    _, server = deterministic_pair(recording)
    _feed_events(server, RECORDED[recording]["client->server"])
    assert server.service_state is State.WAIT_USERAUTH and server.auth_requests == 1


def _feed_events(connection: SSHConnection, writes: list[bytes]) -> list[object]:
    events: list[object] = []
    for write in writes:
        events += connection.receive_data(write)
    return events
