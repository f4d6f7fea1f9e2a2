"""Lesson 15's live runs and exercise 15's last steps against OpenSSH's sshd (and our server for flow control).

Each packet of a logged-in session is opened again from the key exchange's secrets and checked with
``cryptography``'s AES and HMAC in this file (not the library's); sshd runs a command, two at once, SFTP,
a local forward to a real HTTP server and a rekey in the middle of a transfer; the learner's MAC and
reassembly are plugged in, right and wrong, and sshd's log says who noticed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from conftest import require
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from handshake_lib.peers.ssh_session_runs import (
    TWO_COMMANDS,
    captured_packet,
    event_tuples,
    flow_control_run,
    forward_http,
    open_packets,
    record_session,
    rekey_run,
    run_learner_packet_mac,
    run_learner_reassembly,
    start_lesson_sshd,
)
from handshake_lib.ssh.protection import packet_mac


@pytest.fixture(scope="module")
def sshd():
    require("/usr/sbin/sshd", "lesson 15 runs against OpenSSH's sshd")
    require("/usr/lib/openssh/sftp-server", "lesson 15 lists files with OpenSSH's sftp-server")
    with start_lesson_sshd() as server:
        yield server


@pytest.fixture(scope="module")
def recording(sshd):
    return record_session(sshd)


def reassemble(events):
    """Exercise 15's reassembly, written independently of SSHSession.exec_many."""
    out = {}
    for kind, channel, *rest in events:
        slot = out.setdefault(channel, {"stdout": b"", "stderr": b"", "exit_status": None})
        if kind == "data":
            slot["stdout"] += rest[0]
        elif kind == "stderr":
            slot["stderr"] += rest[0]
        elif kind == "exit-status":
            slot["exit_status"] = rest[0]
    return out


def test_exec_keeps_stdout_stderr_and_the_exit_status_apart(recording):
    result = recording.exec_result
    assert result.stdout == b"hello from Linux\n"
    assert result.stderr.endswith(b"a line on stderr\n")  # after sshd's own two debug lines (-e, DEBUG3)
    assert result.exit_status == 3
    assert recording.negotiated.cipher_client_to_server == "aes128-ctr"
    assert recording.negotiated.mac_server_to_client == "hmac-sha2-256"


def test_every_packet_opens_again_from_the_secrets_and_its_mac_is_the_one_on_the_wire(recording):
    packets = recording.packets()
    directions = {p.direction for p in packets}
    assert directions == {"client->server", "server->client"}
    assert len(packets) > 40
    for p in packets:
        # The clear bytes equal what our decoder read (or our encoder built), the MAC what crossed the wire:
        # sshd's MACs recomputed here, and ours accepted by sshd (it ran the commands).
        assert p.clear == recording.transcript[p.index].packet.packet
        assert p.mac_ok, (p.index, p.name)


def test_a_captured_packet_decrypts_with_aes_ctr_and_verifies_with_hmac_outside_the_library(recording):
    given = captured_packet(recording)
    clear_length = len(given["wire"]) - 32
    worker = Cipher(algorithms.AES(given["key"]), modes.CTR(given["counter"])).decryptor()
    clear = worker.update(given["wire"][:clear_length]) + worker.finalize()
    seq = given["sequence_number"].to_bytes(4, "big")
    assert hmac.new(given["mac_key"], seq + clear, hashlib.sha256).digest() == given["wire"][clear_length:]
    padding = clear[4]
    assert clear[5 : len(clear) - padding] == given["payload"]
    assert given["payload"][0] == 94 and given["payload"].endswith(b"hello from Linux\n")  # CHANNEL_DATA
    # One block later in the counter, or the next sequence number: garbage, and a MAC that fails.
    shifted = (int.from_bytes(given["counter"], "big") + 1).to_bytes(16, "big")
    worker = Cipher(algorithms.AES(given["key"]), modes.CTR(shifted)).decryptor()
    assert worker.update(given["wire"][:clear_length]) != clear
    next_seq = (given["sequence_number"] + 1).to_bytes(4, "big")
    assert hmac.new(given["mac_key"], next_seq + clear, hashlib.sha256).digest() != given["wire"][clear_length:]


def test_two_channels_on_one_connection_come_apart_by_channel_number(recording):
    left, right = recording.pair
    assert (left.channel, right.channel) == (0, 1)
    assert left.stdout == b"left 1\nleft 2\nleft 3\n" and left.exit_status == 0
    assert right.stdout == b"right 1\nright 2\nright 3\n" and right.exit_status == 4
    assert right.stderr.endswith(b"right 1\nright 2\nright 3\n")
    events = event_tuples(recording.pair_events)
    assert {e[1] for e in events if e[0] == "data"} == {0, 1}
    expected = {
        r.channel: {"stdout": r.stdout, "stderr": r.stderr, "exit_status": r.exit_status} for r in recording.pair
    }
    assert reassemble(events) == expected


def test_sftp_lists_the_folder_and_reads_a_file(recording):
    assert recording.listing == ["notes.txt", "numbers.csv"]
    assert recording.file_text == b"Channels share one encrypted connection.\n"
    assert any(p.name == "SSH_MSG_CHANNEL_REQUEST" for p in recording.packets())


def test_a_local_forward_carries_an_http_get_through_sshd(sshd):
    run = forward_http(sshd)
    assert run.status == 200 and run.body == b"Hello through an SSH tunnel.\n"
    assert run.served_paths == ("/hello.txt",)  # the HTTP server was asked, by sshd
    assert run.channel_messages[:2] == ("-> CHANNEL_OPEN", "<- CHANNEL_OPEN_CONFIRMATION")
    assert "-> CHANNEL_DATA" in run.channel_messages and "<- CHANNEL_DATA" in run.channel_messages


@pytest.mark.parametrize("window", [16 * 1024, 64 * 1024])
def test_our_server_stops_at_a_window_of_zero_and_resumes_after_window_adjust(window):
    run = flow_control_run(window, 128 * 1024, stall=0.1)
    assert run.received == 128 * 1024
    assert run.stalled  # nothing came while the window was 0
    assert run.adjusts >= 128 * 1024 // window - 1
    assert all(0 <= step.window <= window for step in run.steps)
    # Every time the window hit 0, the next thing was our consume() and its WINDOW_ADJUST, never more data.
    whats = [step.what for step in run.steps]
    for n, what in enumerate(whats):
        if what.startswith("window 0"):
            assert whats[n + 1].startswith("nothing for") and whats[n + 2].startswith("consume(")


def test_a_rekey_starts_in_the_middle_of_our_channel_data_and_the_transfer_arrives_whole(sshd):
    run = rekey_run(sshd, size=300_000, rekey_after_bytes=150_000)
    assert run.counted == b"300000" and run.exchanges == 2
    around = run.around_rekey()
    names = [(direction, name) for _, direction, name in around]
    kexinit = names.index(("client->server", "KEXINIT"))
    assert names[kexinit - 1] == ("client->server", "CHANNEL_DATA")  # our data, then our KEXINIT
    newkeys = names.index(("client->server", "NEWKEYS"))
    ours_between = [name for direction, name in names[kexinit + 1 : newkeys] if direction == "client->server"]
    assert ours_between == ["KEX_ECDH_INIT"]  # no data of ours during our own key exchange
    assert ("client->server", "CHANNEL_DATA") in names[newkeys:]  # and it resumes under the new keys


def test_the_learners_packet_mac_runs_a_command_when_right_and_sshd_notices_when_wrong(sshd):
    right = run_learner_packet_mac(lambda h, k, s, d: packet_mac(h, k, s, d), sshd)
    assert right.went_through and right.output == b"your MAC works\n", right.summary()
    wrong = run_learner_packet_mac(lambda h, k, s, d: hmac.new(k, d, h).digest(), sshd)  # no sequence number
    assert not wrong.went_through
    assert wrong.error.startswith("BadPacketMac")  # our client checked sshd's MAC with the same wrong function
    assert any("Corrupted MAC on input" in line for line in wrong.sshd_says), wrong.sshd_says


def test_the_learners_reassembly_is_checked_against_the_channels_kept_apart(sshd):
    right = run_learner_reassembly(reassemble, sshd)
    assert right.agrees, right.summary()
    assert right.commands == TWO_COMMANDS
    merged = run_learner_reassembly(
        lambda events: {
            0: {"stdout": b"".join(e[2] for e in events if e[0] == "data"), "stderr": b"", "exit_status": 0}
        },
        sshd,
    )
    assert not merged.agrees and "yours:" in merged.summary()


def test_the_packet_opener_refuses_what_it_cannot_read(recording):
    aead = dataclasses.replace(
        recording.negotiated, cipher_client_to_server="aes128-gcm@openssh.com", mac_client_to_server=""
    )
    etm = dataclasses.replace(recording.negotiated, mac_client_to_server="hmac-sha2-256-etm@openssh.com")
    for negotiated in (aead, etm):
        with pytest.raises(ValueError, match="AES-CTR"):
            open_packets(recording.transcript, recording.secrets, negotiated)
