"""Lesson 11, the TLS 1.3 half (PSK resumption, 0-RTT and its replay, KeyUpdate): its widgets and pictures.

Theory of operation
-------------------
:mod:`handshake_lib.peers.renewal13_runs` does the work: full and PSK handshakes with OpenSSL judged by its own
``session_reused``, the PSK derived from each ticket, 0-RTT accepted and replayed against our server's replay
window, one connection to OpenSSL through a KeyUpdate with every record opened with OpenSSL's secrets.  This
module arranges the results, as :mod:`handshake_lib.lessons.renewal` does for the TLS 1.2 half (whose
helpers it shares):

* :func:`psk_sequences` draws the full, ``psk_dhe_ke`` and ``psk_ke`` handshakes as ladders on one clock;
  :func:`zero_rtt_sequences` draws an accepted and a refused 0-RTT resumption, one flight per step;
* :class:`TicketView` shows a connection's tickets, one at a time, with the PSK of each;
* :func:`generations_table` lists the long connection's records with their key generation, and
  :func:`renewal_comparison` sets KeyUpdate's cost beside a TLS 1.2 renegotiation's.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..net.tls import TLSResponse
from ..peers.renewal13_runs import (
    KeyUpdateRun,
    PSKComparison,
    RecordGeneration,
    TicketIssued,
    ZeroRTTRun,
    compare_psk_resumption,
    key_update_with_openssl,
    not_sent_on_resumption,
    renewal_records,
    zero_rtt_replay,
)
from ..peers.renewal_runs import RenegotiationRun, round_trips
from ..tls.connection import TranscriptEntry
from ..tls.constants import ContentType
from ..tls.messages13 import decode_handshake13
from ..viz.hexview import HexView
from ..viz.sequence import Arrow, draw_sequence
from .finished import handshake_arrows
from .renewal import _figure, _from_hello, _pre

__all__ = [
    "TicketView",
    "compare_psk_resumption",
    "generations_table",
    "key_update_with_openssl",
    "not_sent_on_resumption",
    "psk_sequences",
    "renewal_comparison",
    "ticket_text",
    "zero_rtt_replay",
    "zero_rtt_sequences",
]


# -- 1. tickets and PSK resumption ------------------------------------------------------------
def _ladders(responses: Sequence[tuple[str, TLSResponse]], *, width: float = 16) -> Figure:
    """Handshakes as ladders side by side on one clock (0 = our ClientHello leaves), up to the page."""
    figure, axes = _figure(width, 7.5, len(responses))
    for ax, (title, response) in zip(axes, responses, strict=True):
        arrows = _one_flight_per_turn(_from_hello(handshake_arrows(response.transcript, response.timings)))
        draw_sequence(arrows, title=title, ax=ax, resize=False, compress_idle=False, xlim=(-0.45, 1.45))
    bottom = max(ax.get_ylim()[0] for ax in axes)
    top = min(ax.get_ylim()[1] for ax in axes)
    for ax in axes:  # one time scale for all, so the shorter handshakes look shorter
        ax.set_ylim(bottom, top)
    return figure


def _one_flight_per_turn(arrows: list[Arrow]) -> list[Arrow]:
    """Arrows of one side sent one after the other without waiting for the peer, as one: a TLS 1.3 client
    writes its Finished, then its request, in two writes but in one turn."""
    merged: list[Arrow] = []
    for arrow in arrows:
        if merged and merged[-1].sender == arrow.sender:
            last = merged[-1]
            ends = [t for t in (last.received_at, arrow.received_at) if t is not None]
            merged[-1] = Arrow(last.sender, last.receiver, f"{last.label}, {arrow.label}", last.sent_at,
                               max(ends) if ends else None)  # fmt: skip
        else:
            merged.append(arrow)
    return merged


def psk_sequences(comparison: PSKComparison) -> Figure:
    """TLS 1.3 with OpenSSL: the full handshake, a resumption with psk_dhe_ke and one with psk_ke, as ladders."""
    return _ladders(
        [
            (f"{run.kind}: {run.round_trips} round trip(s), request after {run.milliseconds[-1]:.2f} ms", run.response)
            for run in comparison.runs
        ]
    )


def ticket_text(ticket: TicketIssued) -> str:
    """One NewSessionTicket's fields and the PSK derived from it, as lines."""
    return "\n".join(ticket.lines())


class TicketView(widgets.VBox):
    """The tickets of one connection: pick one to see its fields, its bytes and the PSK derived from it
    (everything is computed already: the callback only renders)."""

    def __init__(self, tickets: Sequence[TicketIssued]) -> None:
        if not tickets:
            raise ValueError("no tickets to show")
        self.tickets = list(tickets)
        options = [(f"ticket {number} (nonce {t.message.ticket_nonce.hex()})", number - 1) for number, t in
                   enumerate(self.tickets, start=1)]  # fmt: skip
        self.picker = widgets.Dropdown(options=options, value=0, description="ticket")
        self.fields = widgets.HTML()
        self.bytes_box = widgets.Box()
        self.picker.observe(lambda _: self.show(), names="value")
        super().__init__([self.picker, self.fields, self.bytes_box])
        self.show()

    def show(self, index: int | None = None) -> None:
        """Show ticket ``index`` (0-based; default: the one picked)."""
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.tickets):
                raise ValueError(f"index must be 0 to {len(self.tickets) - 1}, not {index!r}")
            self.picker.value = index  # observe calls show() again
            return
        ticket = self.tickets[self.picker.value]
        self.fields.value = _pre(ticket_text(ticket))
        raw = ticket.message.to_bytes()
        _, spans = decode_handshake13(raw)
        self.bytes_box.children = [HexView(raw, spans, title=f"NewSessionTicket ({len(raw)} bytes, decrypted)")]


# -- 2. 0-RTT ---------------------------------------------------------------------------------
def _early(response: TLSResponse) -> list[TranscriptEntry]:
    """The application data records of the client's first flight (its 0-RTT data)."""
    early = []
    for entry in response.transcript:
        if entry.direction != "client->server":
            break
        if entry.content_type == ContentType.application_data:
            early.append(entry)
    return early


def zero_rtt_sequences(run: ZeroRTTRun) -> Figure:
    """Our server, two resumptions, one flight per step: the request as accepted 0-RTT data, and the real
    client whose 0-RTT was refused (the attacker's copy came first), which sends its request again after
    the handshake.  Steps, not times: our server runs in this process, and its thread and our client's
    share one interpreter, so sub-millisecond times here would say more about Python's scheduling."""
    figure, axes = _figure(13, 5.5, 2)
    for ax, response in zip(axes, (run.accepted, run.retried), strict=True):
        arrows = _one_flight_per_turn(_from_hello(handshake_arrows(response.transcript, response.timings)))
        accepted = response.handshake.early_data == "accepted"
        if not accepted:  # the early data in the first flight was skipped by the server: say so
            arrows[0] = Arrow("client", "server", arrows[0].label.replace("ApplicationData (", "early data, skipped ("),
                              arrows[0].sent_at, arrows[0].received_at)  # fmt: skip
        steps = [Arrow(a.sender, a.receiver, a.label, index, index + 0.8) for index, a in enumerate(arrows)]
        waits = 0 if accepted else round_trips([e for e in response.transcript if e not in _early(response)])
        title = f"0-RTT {response.handshake.early_data}: {waits} round trip(s) before the request is read"
        draw_sequence(steps, title=title, ax=ax, resize=False, xlim=(-0.45, 1.45), time_scale=1)
        ax.set_yticks([])
        ax.set_ylabel("one flight per step")
    bottom = max(ax.get_ylim()[0] for ax in axes)
    top = min(ax.get_ylim()[1] for ax in axes)
    for ax in axes:
        ax.set_ylim(bottom, top)
    return figure


# -- 3. KeyUpdate beside renegotiation --------------------------------------------------------
def generations_table(rows: Sequence[RecordGeneration]) -> widgets.HTML:
    """Every record of the long TLS 1.3 connection with the secret that protects it, opened with OpenSSL's."""

    def verdict(value: bool | None) -> str:
        return "-" if value is None else ("opens" if value else "fails")

    cells = []
    for row in rows:
        if row.keys == "application":
            keys = f"application secret {row.generation}, seq {row.sequence_number}"
            colour = ["#e8f0ff", "#fff0e0", "#e8ffe8"][(row.generation or 0) % 3]
        else:
            keys = "plaintext" if row.keys == "plaintext" else f"handshake secret, seq {row.sequence_number}"
            colour = "#fff" if row.keys == "plaintext" else "#f0f0f0"
        cells.append(
            f'<tr style="background:{colour};color:black"><td>{row.index}</td>'
            f"<td>{html.escape(row.entry.summary())}</td><td>{keys}</td>"
            f"<td>{verdict(row.opens_with_its_keys)}</td><td>{verdict(row.opens_with_previous_keys)}</td></tr>"
        )
    head = (
        "<tr><th>#</th><th>record</th><th>protected by</th><th>with that secret (OpenSSL's key log)</th>"
        "<th>with the previous generation's</th></tr>"
    )
    return widgets.HTML(f'<table style="font-size:12px">{head}{"".join(cells)}</table>')


def renewal_comparison(renegotiation: RenegotiationRun, key_update: KeyUpdateRun) -> str:
    """What renewing the keys cost on each live connection: TLS 1.2's renegotiation, TLS 1.3's KeyUpdate."""
    lines = [f"{'':<28} {'records':>7} {'bytes':>6}  messages"]
    for name, transcript in (
        ("TLS 1.2 renegotiation", renegotiation.transcript),
        ("TLS 1.3 KeyUpdate", key_update.transcript),
    ):
        count, size, names = renewal_records(transcript)
        lines.append(f"{name:<28} {count:>7} {size:>6}  {', '.join(names)}")
    return "\n".join(lines)
