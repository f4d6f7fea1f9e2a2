"""Lesson 15 (handshake_lib.lessons.ssh_sessions) against a real OpenSSH sshd and our server: the packet views
show what the live session carried, the sequence diagram draws both channels' packets in the order they crossed,
the window widget changes what it shows with its input, and bad input is refused before anything changes."""

from __future__ import annotations

import matplotlib
import pytest
from conftest import require

from handshake_lib.lessons.ssh_sessions import (
    WindowExplorer,
    channel_arrows,
    channels_sequence,
    packet_table_html,
    packet_text,
    record_session,
)
from handshake_lib.peers.ssh_session_runs import start_lesson_sshd

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def recording():
    require("/usr/sbin/sshd", "lesson 15 runs against OpenSSH's sshd")
    require("/usr/lib/openssh/sftp-server", "lesson 15 lists files with OpenSSH's sftp-server")
    with start_lesson_sshd() as sshd:
        yield record_session(sshd)


def test_the_packet_text_shows_the_wire_the_clear_payload_and_the_mac_recomputed(recording):
    packet = next(p for p in recording.packets() if p.name == "SSH_MSG_CHANNEL_DATA")
    text = packet_text(packet)
    assert packet.wire[:8].hex(" ") in text  # ciphertext as it crossed
    assert packet.payload[:8].hex(" ") in text  # payload decrypted
    assert f"packet_length {len(packet.clear) - 4}, padding_length {packet.clear[4]}" in text
    assert text.count(packet.mac_received[:8].hex(" ")) == 2 and "= the MAC received" in text
    assert b"hello from Linux" in packet.payload


def test_the_packet_table_lists_one_channel_or_the_messages_of_none(recording):
    packets = recording.packets()
    one = packet_table_html(packets, channel=1)
    assert one.count("<tr>") - 1 == min(len([p for p in packets if p.channel == 1]), 40)
    assert "CHANNEL_OPEN" in one and "USERAUTH" not in one
    none = packet_table_html([p for p in packets if p.channel is None], limit=1000)
    assert "USERAUTH_REQUEST" in none and "SERVICE_REQUEST" in none
    assert "<b>NO</b>" not in packet_table_html(packets, limit=1000)  # every MAC recomputed matched


def test_the_sequence_diagram_has_both_channels_packets_in_the_order_they_crossed(recording):
    arrows = channel_arrows(recording)
    labels = [a.label for a in arrows]
    for channel, word in ((0, "left"), (1, "right")):
        data = [label for label in labels if label.startswith(f"ch {channel}: DATA")]
        assert data == [f"ch {channel}: DATA {f'{word} {n}'.encode() + bytes([10])!r}" for n in (1, 2, 3)]
        assert f"ch {channel}: REQUEST exit-status" in labels and f"ch {channel}: OPEN" in labels
    server_times = [a.sent_at for a in arrows if a.sender == "server"]
    assert server_times == sorted(server_times)
    figure = channels_sequence(recording)
    assert len(figure.axes) == 1 and "two channels" in figure.axes[0].get_title()


def test_the_window_explorer_changes_with_the_window_and_refuses_bad_input():
    explorer = WindowExplorer(stall=0.05)
    assert explorer.run.window == 64 * 1024 and explorer.run.stalled
    first_adjusts, first_html = explorer.run.adjusts, explorer.output.value
    small = explorer.update(window=16 * 1024)
    assert small.window == 16 * 1024 and explorer.window_dropdown.value == 16 * 1024
    assert small.adjusts > first_adjusts and explorer.output.value != first_html
    assert "window   16384" in explorer.output.value
    for bad in (12345, "big"):
        with pytest.raises((TypeError, ValueError)):
            explorer.update(window=bad)
    assert explorer.window_dropdown.value == 16 * 1024 and explorer.run is small  # nothing changed
