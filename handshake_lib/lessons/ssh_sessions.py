"""Lesson 15 (SSH session and channels): the glue between the notebook and the live runs.

Theory of operation
-------------------
Every number this lesson shows comes from a live run in
:mod:`handshake_lib.peers.ssh_session_runs` (our client logged in to OpenSSH ``sshd``, and our own
server for flow control); this module only lays them out:

* :func:`packet_table_html`: the encrypted packets of a session, channel by channel, each with its
  sequence number, the size on the wire and whether the MAC recomputed with ``ssh.protection.packet_mac``
  equals the one that crossed the wire;
* :func:`packet_text`: one packet's wire bytes (ciphertext, MAC) beside its clear bytes (length, padding
  length, payload, padding), and the MAC recomputed;
* :func:`channel_arrows` and :func:`channels_sequence`: two channels interleaved on one connection, as
  a sequence diagram timed by our client's clock (each packet when its bytes left or arrived);
* :class:`WindowExplorer`: a download from our server to a client granting a window you choose, re-opened
  only by ``consume()``: the window falls to 0, the server stops, WINDOW_ADJUST, the bytes resume.

Bad input (a window that is not one of the choices) is a TypeError/ValueError from ``update`` before
anything changes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..peers.ssh_session_runs import (
    TWO_COMMANDS,
    FlowControlRun,
    OpenedPacket,
    SessionRecording,
    captured_packet,
    event_tuples,
    flow_control_run,
    forward_http,
    lesson_sshd,
    record_session,
    rekey_run,
    run_learner_packet_mac,
    run_learner_reassembly,
)
from ..viz.sequence import Arrow, draw_sequence
from ..viz.widget import ControlledWidget, check_control

__all__ = [
    "TWO_COMMANDS",
    "WindowExplorer",
    "captured_packet",
    "channel_arrows",
    "channels_sequence",
    "event_tuples",
    "flow_control_run",
    "forward_http",
    "lesson_sshd",
    "packet_table_html",
    "packet_text",
    "record_session",
    "rekey_run",
    "run_learner_packet_mac",
    "run_learner_reassembly",
]

WINDOW_CHOICES = (16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024)


def _short(name: str) -> str:
    return name.removeprefix("SSH_MSG_")


def _hex(data: bytes, limit: int = 48) -> str:
    text = data[:limit].hex(" ")
    return text + (f" ... ({len(data)} bytes)" if len(data) > limit else "")


def packet_table_html(packets: Sequence[OpenedPacket], *, channel: int | None = None, limit: int = 40) -> str:
    """A table of ``packets`` (only those of ``channel`` if given): who sent it, what, and its MAC checked."""
    rows = [p for p in packets if channel is None or p.channel == channel][:limit]
    body = "".join(
        f"<tr><td>{p.index}</td><td>{'client &rarr;' if p.direction == 'client->server' else '&larr; server'}</td>"
        f"<td>{html.escape(_short(p.name))}</td><td>{'' if p.channel is None else p.channel}</td>"
        f"<td>{p.sequence_number}</td><td>{p.exchange}</td><td>{len(p.wire)}</td><td>{len(p.payload)}</td>"
        f"<td>{'yes' if p.mac_ok else '<b>NO</b>'}</td></tr>"
        for p in rows
    )
    return (
        "<table style='color:inherit'><tr><th>#</th><th>direction</th><th>message</th><th>channel</th>"
        "<th>sequence number</th><th>keys of exchange</th><th>bytes on the wire</th><th>payload bytes</th>"
        "<th>MAC recomputed = MAC received</th></tr>" + body + "</table>"
    )


def packet_text(packet: OpenedPacket) -> str:
    """One packet, wire beside clear, and the MAC recomputed (plain text)."""
    clear_length = len(packet.clear)
    lines = [
        f"{_short(packet.name)}, {packet.direction}, sequence number {packet.sequence_number}",
        f"on the wire ({len(packet.wire)} bytes):",
        f"  ciphertext  {_hex(packet.wire[:clear_length])}",
        f"  MAC         {_hex(packet.mac_received)}",
        f"decrypted with AES-128-CTR, counter block {packet.counter.hex()}:",
        f"  packet_length {int.from_bytes(packet.clear[:4], 'big')}, padding_length {packet.clear[4]}",
        f"  payload     {_hex(packet.payload)}",
        f"              {packet.payload[:48]!r}",
        "MAC recomputed: HMAC-SHA256(mac_key, uint32(sequence_number) || clear packet)",
        f"  {_hex(packet.mac_recomputed)}  {'= the MAC received' if packet.mac_ok else 'DIFFERENT'}",
    ]
    return "\n".join(lines)


def channel_arrows(recording: SessionRecording) -> list[Arrow]:
    """One arrow per channel packet of the two-command run, timed by our client's clock."""
    stamp = {index: moment for moment, _, index in recording.timings}
    names = {"SSH_MSG_CHANNEL_DATA": "DATA", "SSH_MSG_CHANNEL_EXTENDED_DATA": "STDERR"}
    # The pair's packets: from its first CHANNEL_OPEN to the SFTP channel's CHANNEL_OPEN.
    opens = [i for i, e in enumerate(recording.transcript) if e.name == "SSH_MSG_CHANNEL_OPEN"]
    start, end = opens[1], opens[3] if len(opens) > 3 else len(recording.transcript)
    moments = [stamp[i] for i in range(start, end) if i in stamp]
    origin = min(moments) if moments else 0.0
    ours: dict[int, int] = {}  # sshd's number for a channel -> ours (what a client->server message carries)
    arrows = []
    for index in range(start, end):
        entry = recording.transcript[index]
        if not entry.name.startswith("SSH_MSG_CHANNEL") or index not in stamp:
            continue
        message: Any = entry.message
        if entry.name == "SSH_MSG_CHANNEL_OPEN_CONFIRMATION":
            ours[message.sender_channel] = message.recipient_channel
        if entry.name == "SSH_MSG_CHANNEL_OPEN":
            number = message.sender_channel
        elif entry.direction == "client->server":
            number = ours.get(message.recipient_channel, message.recipient_channel)
        else:
            number = message.recipient_channel
        label = names.get(entry.name, _short(entry.name).removeprefix("CHANNEL_"))
        if entry.name == "SSH_MSG_CHANNEL_REQUEST":
            label = f"REQUEST {message.request_type}"
        data = bytes(getattr(message, "data", b"") or b"")
        if data and len(data) < 24:
            label += f" {data!r}"
        moment = stamp[index] - origin
        if entry.direction == "client->server":
            arrows.append(Arrow("client", "server", f"ch {number}: {label}", moment, moment + 0.002))
        else:
            arrows.append(Arrow("server", "client", f"ch {number}: {label}", max(moment - 0.002, 0.0), moment))
    return arrows


def channels_sequence(recording: SessionRecording, *, ax: Any = None) -> Figure:
    """:func:`channel_arrows` drawn: two commands' packets interleaved on one connection."""
    return draw_sequence(
        channel_arrows(recording), actors=("client", "server"), ax=ax, compress_idle=False,
        title="two channels on one connection to sshd (ch: our channel number)",
    )  # fmt: skip


class WindowExplorer(ControlledWidget, widgets.VBox):
    """A download of ``size`` bytes from our server; the window the client grants is yours to choose."""

    def __init__(self, window: int = 64 * 1024, *, size: int = 128 * 1024, stall: float = 0.05) -> None:
        self.size, self.stall = size, stall
        self.window_dropdown = widgets.Dropdown(
            options=[(f"{w // 1024} KiB", w) for w in WINDOW_CHOICES], value=64 * 1024, description="window"
        )
        self.output = widgets.HTML()
        self.run: FlowControlRun | None = None
        super().__init__([self.window_dropdown, self.output])
        self.watch(self.window_dropdown)
        self.update(window=window)

    def update(self, *, window: int | None = None) -> FlowControlRun:
        """Download again with ``window`` bytes granted (one of :data:`WINDOW_CHOICES`); the widget callback."""
        window = check_control("window", window, self.window_dropdown)
        with self.holding():
            if window is not None:
                self.window_dropdown.value = window
        run = flow_control_run(self.window_dropdown.value, self.size, stall=self.stall)
        self.run = run
        head = (
            f"{run.received} of {run.size} bytes in a window of {run.window} bytes: {run.adjusts} WINDOW_ADJUST, "
            f"and the server {'stopped every time' if run.stalled else 'did NOT stop'} at window 0"
        )
        self.output.value = f"<div>{html.escape(head)}</div><pre>{html.escape(chr(10).join(run.lines()))}</pre>"
        return run
