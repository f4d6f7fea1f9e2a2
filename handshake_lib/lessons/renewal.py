"""Lesson 11 (resumption and renewal; the TLS 1.2 part): its widgets and glue.

Theory of operation
-------------------
The library does the work: :mod:`handshake_lib.peers.renewal_runs` runs full, session-ID and ticket
handshakes against a live OpenSSL and measures them, gets a ticket from our own server, and keeps one
connection open across a renegotiation; :func:`handshake_lib.tls.tickets.explain_ticket` annotates a
ticket as either side sees it.  This module arranges the results:

* :func:`resumption_sequences` draws the three handshakes side by side (lesson 08's ladder, our clock);
  :class:`SessionStoreView` is a client session store you can look into, visit through and clear.
* :func:`ticket_views` shows a ticket as the client holds it and as the server opens it.
* :func:`renegotiation_sequence` and :func:`records_table` show one long connection changing keys;
  :func:`attack_sequences` draws the 2009 renegotiation attack, without and with RFC 5746, and
  :func:`binding_check` reads ``renegotiation_info`` beside each Finished; the live splice itself
  (``splice_against_openssl``, ``splice_against_our_server``) is in the peers module.

The TLS 1.3 half of the lesson is arranged by :mod:`handshake_lib.lessons.renewal13`, beside this module
(a lesson module stays under 420 lines: tests/test_layers.py).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import HandshakeError
from ..net.tls import TLSResponse
from ..peers import BackgroundPeer
from ..peers.renewal_runs import (
    RecordUnderKeys,
    RenegotiationRun,
    ResumptionComparison,
    ResumptionServer,
    ServerTicket,
    Visit,
    compare_resumption,
    fetch_with_store,
    openssl_resumption_server,
    renegotiate_with_openssl,
    splice_against_openssl,
    splice_against_our_server,
    ticket_from_our_server,
)
from ..tls.connection import TranscriptEntry
from ..tls.constants import CipherSuite, name_of
from ..tls.extensions import RenegotiationInfoExtension, SessionTicketExtension
from ..tls.messages import ClientHello, Finished, ServerHello
from ..tls.sessions import ClientSessionStore
from ..tls.tickets import explain_ticket
from ..viz.hexview import HexView
from ..viz.sequence import Arrow, draw_sequence
from ..viz.widget import check_flag
from .finished import handshake_arrows

__all__ = [
    "SessionStoreView",
    "attack_sequences",
    "binding_check",
    "compare_resumption",
    "hello_fields",
    "records_table",
    "renegotiate_with_openssl",
    "renegotiation_sequence",
    "resumption_sequences",
    "splice_against_openssl",
    "splice_against_our_server",
    "store_rows",
    "ticket_from_our_server",
    "ticket_views",
]


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


def _figure(width: float, height: float, columns: int) -> tuple[Figure, list[Any]]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


# -- 1. resumption, side by side -----------------------------------------------------------------------
def _from_hello(arrows: list[Arrow], *, until_answer: bool = True) -> list[Arrow]:
    """The arrows with our ClientHello at 0 ms; ``until_answer``: stop at the server's first application data."""
    start = arrows[0].sent_at

    def moved(time: float | None) -> float | None:
        return None if time is None else time - start

    shifted = [Arrow(a.sender, a.receiver, a.label, a.sent_at - start, moved(a.received_at)) for a in arrows]
    if until_answer:
        answers = [i for i, a in enumerate(shifted) if a.sender == "server" and "ApplicationData" in a.label]
        shifted = shifted[: answers[0] + 1] if answers else shifted
    return shifted


def resumption_sequences(comparison: ResumptionComparison) -> Figure:
    """The full handshake, a resumption by session ID and one by ticket, as three ladders on one clock
    (0 = our ClientHello leaves), up to the page's first record."""
    figure, axes = _figure(16, 7.5, 3)
    for ax, run in zip(axes, comparison.runs, strict=True):
        response = run.response
        arrows = _from_hello(handshake_arrows(response.transcript, response.timings))
        title = f"{run.kind}: {run.round_trips} round trip(s), request after {run.milliseconds[-1]:.2f} ms"
        draw_sequence(arrows, title=title, ax=ax, resize=False, compress_idle=False, xlim=(-0.45, 1.45))
    bottom = max(ax.get_ylim()[0] for ax in axes)
    top = min(ax.get_ylim()[1] for ax in axes)
    for ax in axes:  # one time scale for all three, so the shorter handshakes look shorter
        ax.set_ylim(bottom, top)
    return figure


def _messages(transcript: Sequence[TranscriptEntry]) -> list[tuple[str, Any]]:
    return [(entry.direction, message) for entry in transcript for message in entry.messages]


def hello_fields(response: TLSResponse) -> str:
    """What the hellos of one handshake say about resumption: session IDs, the ticket, what came next."""
    messages = [message for _, message in _messages(response.transcript)]
    hello = next(m for m in messages if isinstance(m, ClientHello))
    answer = next(m for m in messages if isinstance(m, ServerHello))
    after = messages[messages.index(answer) + 1]
    ticket = next((e for e in hello.extensions if isinstance(e, SessionTicketExtension)), None)
    offered = "not offered" if ticket is None else (f"{len(ticket.ticket)} bytes" if ticket.ticket else "empty")

    def ident(value: bytes) -> str:
        return f"{len(value)} bytes {value.hex()[:16]}..." if value else "empty"

    return "\n".join(
        [
            f"ClientHello session_id: {ident(hello.session_id)}; session_ticket extension: {offered}",
            f"ServerHello session_id: {ident(answer.session_id)}",
            f"the server's next message: {type(after).__name__}"
            + (" (resumed: no certificate, no key exchange)" if response.handshake.resumed else " (a full handshake)"),
        ]
    )


def store_rows(store: ClientSessionStore) -> str:
    """What the client keeps, one line per server name (master secrets never shown)."""
    if not len(store):
        return "(empty: the next visit is a full handshake)"
    lines = []
    for name, session in store:
        if session.ticket:
            what = f"ticket of {len(session.ticket)} bytes, kept up to {session.ticket_lifetime_hint} s"
        else:
            what = f"session ID {session.session_id.hex()[:16]}..."
        suite = name_of(CipherSuite, session.cipher_suite)
        lines.append(f"{name}: {what}; {suite}; EMS {session.extended_master_secret}")
    return "\n".join(lines)


class SessionStoreView(widgets.VBox):
    """A client session store you can watch: *visit* the server (offering what is stored), *clear* it."""

    def __init__(self, server: BackgroundPeer[ResumptionServer] | None = None) -> None:
        self.server = server if server is not None else BackgroundPeer(openssl_resumption_server)
        self.store = ClientSessionStore()
        self.visits: list[Visit] = []
        self.tickets = widgets.Checkbox(value=True, description="ask for a ticket", indent=False)
        self.visit_button = widgets.Button(description="visit the server")
        self.clear_button = widgets.Button(description="clear the store")
        self.store_html = widgets.HTML()
        self.log_html = widgets.HTML()
        self.visit_button.on_click(lambda _: self.visit())
        self.clear_button.on_click(lambda _: self.clear())
        controls = widgets.HBox([self.visit_button, self.tickets, self.clear_button])
        super().__init__([controls, widgets.HTML("<b>client session store</b>"), self.store_html, self.log_html])
        self._show()

    def visit(self, *, tickets: bool | None = None) -> Visit | None:
        """One GET through the store (``tickets`` sets the checkbox first); its line goes into the log.

        ``tickets`` that is not True, False or None: TypeError, before anything changes (as every widget's
        ``update``); a visit that fails (the server stopped) is a message in the widget and None.
        """
        tickets = check_flag("tickets", tickets)
        if tickets is not None:
            self.tickets.value = tickets
        try:
            visit = fetch_with_store(self.server.get(), self.store, tickets=self.tickets.value)
        except (HandshakeError, OSError) as error:  # a server that stopped or refused: say so in the widget
            self.log_html.value = _pre(f"the visit failed: {error}")
            return None
        self.visits.append(visit)
        self._show()
        return visit

    def clear(self) -> None:
        self.store.clear()
        self._show()

    def _show(self) -> None:
        self.store_html.value = _pre(store_rows(self.store))
        self.log_html.value = _pre("\n".join(visit.summary() for visit in self.visits[-8:]))


# -- the ticket, both ways ---------------------------------------------------------------------------
def ticket_views(ours: ServerTicket, openssl_ticket: bytes = b"") -> widgets.VBox:
    """Our server's ticket as the client holds it, then as the server opens it; OpenSSL's beside it."""
    client_side = explain_ticket(ours.ticket)
    server_side = explain_ticket(ours.ticket, ours.keys, ours.now)
    parts: list[widgets.Widget] = [
        HexView(client_side.ticket, client_side.spans, title=f"the client's view ({len(ours.ticket)} bytes)"),
        HexView(server_side.ticket, server_side.spans, title="the server's view: RFC 5077 section 4's fields"),
    ]
    if server_side.opened:
        parts.append(HexView(server_side.state, server_side.state_spans, title="decrypted with the server's key"))
        same = server_side.session is not None and server_side.session.master_secret == ours.full.master_secret
        parts.append(widgets.HTML(_pre(f"the master secret inside = the full handshake's: {same}")))
    else:
        parts.append(widgets.HTML(_pre(f"the server could not open it: {server_side.reason}")))
    if openssl_ticket:
        theirs = explain_ticket(openssl_ticket, ours.keys, ours.now)
        parts.append(
            widgets.HTML(
                _pre(
                    f"OpenSSL's ticket ({len(openssl_ticket)} bytes) to our client: {openssl_ticket[:24].hex()}...\n"
                    f"what our server's keys make of it: {theirs.reason}"
                )
            )
        )
    return widgets.VBox(parts)


# -- 2. renegotiation ----------------------------------------------------------------------------------
def renegotiation_sequence(run: RenegotiationRun) -> Figure:
    """The long connection as one ladder, one flight per step (our client's times on the left, ms from its
    first ClientHello), with the moment each side switches to the renegotiated keys marked."""
    arrows = _from_hello(handshake_arrows(run.transcript, run.timings), until_answer=False)
    arrows = [a for a in arrows if "close_notify" not in a.label]
    steps = [Arrow(a.sender, a.receiver, a.label, index, index + 0.8) for index, a in enumerate(arrows)]
    figure, (ax,) = _figure(9, 1.5 + 0.62 * len(steps), 1)
    draw_sequence(steps, title="one connection, two handshakes", ax=ax, resize=False, xlim=(-1.1, 2.1), time_scale=1)
    # Our client's clock only knows when it sent a flight and when a flight reached it: those are the ticks.
    moments = [a.sent_at if a.sender == "client" else (a.received_at or a.sent_at) for a in arrows]
    ax.set_yticks(range(len(arrows)), [f"{moment * 1000:.2f}" for moment in moments], fontsize=8)
    ax.set_ylabel("our client's clock (ms): when it sent or received the flight; one flight per step")
    switched = {"client": False, "server": False}
    for index, arrow in enumerate(arrows):
        # The second ChangeCipherSpec a side sends is where its renegotiated keys start.
        if "ChangeCipherSpec" in arrow.label and not switched[arrow.sender]:
            switched[arrow.sender] = arrow.label.count("ChangeCipherSpec") > 1 or any(
                "ChangeCipherSpec" in a.label for a in arrows[:index] if a.sender == arrow.sender
            )
            if switched[arrow.sender]:
                x = 0 if arrow.sender == "client" else 1
                ax.plot([x - 0.08, x + 0.08], [index, index], color="#d62728", linewidth=2.5, zorder=6)
                ax.text(
                    x - 0.1 if x == 0 else x + 0.1, index, f"{arrow.sender}: new keys from here",
                    ha="right" if x == 0 else "left", va="center", fontsize=8, color="#d62728",
                )  # fmt: skip
    return figure


def binding_check(transcript: Sequence[TranscriptEntry]) -> str:
    """RFC 5746 in a live transcript: each hello's renegotiation_info beside the previous handshake's Finished."""
    lines: list[str] = []
    finished = {"client->server": b"", "server->client": b""}
    number = 0
    for direction, message in _messages(transcript):
        if isinstance(message, ClientHello):
            number += 1
            lines.append(f"handshake {number}:")
        if isinstance(message, (ClientHello, ServerHello)):
            info = next((e for e in message.extensions if isinstance(e, RenegotiationInfoExtension)), None)
            expected = finished["client->server"]
            if isinstance(message, ServerHello):
                expected += finished["server->client"]
            name = type(message).__name__
            if info is None:
                lines.append(f"  {name}: no renegotiation_info")
                continue
            got = info.renegotiated_connection
            shown = got.hex() if got else "empty"
            if not got:
                verdict = "(a first handshake)" if not expected else "MISMATCH: the previous Finished was expected"
            elif got == expected:
                verdict = "= " + ("client" if name == "ClientHello" else "client + server") + " verify_data above"
            else:
                verdict = "MISMATCH"
            lines.append(f"  {name:<11} renegotiation_info: {shown} {verdict}")
        elif isinstance(message, Finished):
            finished[direction] = message.verify_data
            lines.append(
                f"  {'client' if direction == 'client->server' else 'server'} Finished verify_data: "
                f"{message.verify_data.hex()}"
            )
    return "\n".join(lines)


def records_table(rows: Sequence[RecordUnderKeys]) -> widgets.HTML:
    """Every record of the connection with the keys that protect it, and whether each key block opens it."""

    def verdict(value: bool | None) -> str:
        return "-" if value is None else ("opens" if value else "fails")

    cells = []
    for row in rows:
        keys = "plaintext" if row.keys_of is None else f"handshake {row.keys_of + 1}, seq {row.sequence_number}"
        colour = ["#fff", "#e8f0ff", "#fff0e0", "#e8ffe8"][0 if row.keys_of is None else 1 + row.keys_of % 3]
        cells.append(
            f'<tr style="background:{colour};color:black"><td>{row.index}</td>'
            f"<td>{html.escape(row.entry.summary())}</td><td>{keys}</td>"
            f"<td>{verdict(row.opens_with_its_keys)}</td><td>{verdict(row.opens_with_previous_keys)}</td></tr>"
        )
    head = (
        "<tr><th>#</th><th>record</th><th>protected by the keys of</th><th>with those keys</th>"
        "<th>with the previous handshake's keys</th></tr>"
    )
    return widgets.HTML(f'<table style="font-size:12px">{head}{"".join(cells)}</table>')


# -- 3. the 2009 renegotiation attack ------------------------------------------------------------------
def _attack_arrows(protected: bool) -> list[Arrow]:
    """The attack as Marsh Ray and Steve Dispensa described it (2009), times only for the drawing."""
    arrows = [
        Arrow("victim", "attacker", "ClientHello (held back)", 0.0, 1.0),
        Arrow("attacker", "server", "attacker's own ClientHello", 1.0, 2.0),
        Arrow("server", "attacker", "ServerHello ... ServerHelloDone", 2.0, 3.0),
        Arrow("attacker", "server", "ClientKeyExchange, CCS, {Finished}", 3.0, 4.0),
        Arrow("server", "attacker", "CCS, {Finished}", 4.0, 5.0),
        Arrow("attacker", "server", "{GET /pay?to=mallory\\r\\nX-Ignore: }", 5.0, 6.0),
        Arrow("attacker", "server", "{victim's ClientHello} = renegotiation", 6.0, 7.0),
    ]
    if protected:
        return [
            *arrows[:-1],
            Arrow("attacker", "server", "{victim's ClientHello, renegotiation_info = empty}", 6.0, 7.0),
            Arrow("server", "attacker", "{Alert handshake_failure}: expected our Finished", 7.0, 8.0),
        ]
    return [
        *arrows,
        Arrow("server", "victim", "ServerHello ... (relayed; the victim's first handshake)", 7.0, 8.5),
        Arrow("victim", "server", "ClientKeyExchange, CCS, {Finished} (relayed)", 8.5, 10.0),
        Arrow("server", "victim", "CCS, {Finished}", 10.0, 11.5),
        Arrow("victim", "server", "{GET /account\\r\\nCookie: victim's}", 11.5, 13.0),
    ]


def attack_sequences() -> Figure:
    """Left: the attacker's prefix spliced before the victim's request; right: RFC 5746 stops it."""
    figure, axes = _figure(16, 7.5, 2)
    actors = ("victim", "attacker", "server")
    for ax, protected in zip(axes, (False, True), strict=True):
        title = "with RFC 5746: the handshakes are bound" if protected else "2009: no binding between handshakes"
        draw_sequence(_attack_arrows(protected), actors=actors, title=title, ax=ax, resize=False, time_scale=1)
        ax.set_yticks([])
        ax.set_ylabel("")
    return figure
