"""Lesson 08 (Finished and the full handshake): its widgets and glue.

Theory of operation
-------------------
The library does the work: :func:`~handshake_lib.peers.openssl_sessions.capture_session` runs a live
handshake with OpenSSL and keeps OpenSSL's master secret, the one handshake reassembler
(:func:`~handshake_lib.tls.record.reassemble_handshake`) gives the messages each Finished hashes,
:func:`~handshake_lib.tls.prf.verify_data` recomputes them, and :func:`~handshake_lib.tls.states.replay`
walks a role's state table over the transcript.  This module arranges the results:

* :func:`finished_inputs` lists what each Finished hashes and recomputes both ``verify_data`` from
  OpenSSL's master secret; :func:`downgrade_check` shows what an attacker's edit of the ClientHello does.
* :func:`handshake_sequence` draws the handshake as a ladder diagram (our client's clock),
  :func:`state_machine_picture` a role's table with the path taken, :func:`page_view` the page, and
  :class:`HandshakeStepper` (``handshake_stepper()``) steps through the records.
* :data:`RECORDED_FINISHED` (``handshake_lib/data/openssl_finished.json``): real handshakes for the exercise.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import replace as replaced
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..data import load_recordings
from ..net.tls import TLSResponse
from ..peers.openssl_sessions import LiveSession, capture_session
from ..tls import prf as prf_module
from ..tls.captured import CLIENT_TO_SERVER, SERVER_TO_CLIENT
from ..tls.connection import ApplicationData, TranscriptEntry, plaintext_spans
from ..tls.constants import CipherSuite, ContentType, HandshakeType, name_of
from ..tls.messages import Alert, decode_handshake
from ..tls.prf import RecordedFinished
from ..tls.record import reassemble_handshake
from ..tls.states import INITIAL_STATE, diagram_rows, replay
from ..tls.suites import suite_params
from ..viz.hexview import HexView
from ..viz.sequence import Arrow, draw_sequence
from ..viz.statediagram import draw_state_diagram
from ..viz.widget import check_index
from .records import message_name

__all__ = [
    "RECORDED_FINISHED",
    "FinishedCheck",
    "HandshakeStepper",
    "capture_session",
    "downgrade_check",
    "finished_inputs",
    "handshake_arrows",
    "handshake_messages",
    "handshake_sequence",
    "handshake_stepper",
    "page_view",
    "state_machine_picture",
]

RECORDED_FINISHED: dict[str, RecordedFinished] = {
    recorded.suite_name: recorded for recorded in map(RecordedFinished.from_json, load_recordings("openssl_finished"))
}
"""Real handshakes with OpenSSL (``"AES128-GCM-SHA256"``, ``"AES256-GCM-SHA384"``) for the Finished exercise."""


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


# -- what Finished hashes ------------------------------------------------------------------------
def handshake_messages(transcript: Sequence[TranscriptEntry]) -> list[tuple[str, bytes]]:
    """Every handshake message in ``transcript``, in order, with its sender's direction (header included)."""
    fragments = [
        (entry.direction, entry.plaintext)
        for entry in transcript
        if entry.content_type == ContentType.handshake and entry.plaintext
    ]
    return [(direction, message.raw) for direction, message in reassemble_handshake(fragments)]


@dataclass
class FinishedCheck:
    """Both Finished messages of a handshake, recomputed from the messages and a master secret."""

    hash_name: str
    client_inputs: list[str]  # "client->server ClientHello (115 bytes)", ... in the client Finished's hash
    server_inputs: list[str]
    client_on_wire: bytes
    client_computed: bytes
    server_on_wire: bytes
    server_computed: bytes

    @property
    def both_match(self) -> bool:
        return self.client_on_wire == self.client_computed and self.server_on_wire == self.server_computed

    def summary(self) -> str:
        lines = []
        for side, sender, inputs, on_wire, computed in (
            ("client", "our client:", self.client_inputs, self.client_on_wire, self.client_computed),
            ("server", "OpenSSL:   ", self.server_inputs, self.server_on_wire, self.server_computed),
        ):
            lines.append(
                f'{side} Finished = PRF(master_secret, "{side} finished", {self.hash_name.upper()}(...))[:12] over:'
            )
            lines += [f"  {name}" for name in inputs]
            lines.append(f"  sent by {sender} {on_wire.hex()}")
            lines.append(f"  recomputed:         {computed.hex()}  ({'same' if on_wire == computed else 'DIFFERENT'})")
        return "\n".join(lines)


def _finished_split(messages: list[tuple[str, bytes]]) -> tuple[int, int]:
    finished = [i for i, (_, raw) in enumerate(messages) if raw[0] == HandshakeType.finished]
    if len(finished) < 2:
        raise ValueError("the transcript does not hold both Finished messages (did the handshake complete?)")
    client = next(i for i in finished if messages[i][0] == CLIENT_TO_SERVER)
    server = next(i for i in finished if messages[i][0] == SERVER_TO_CLIENT)
    return client, server


def _verify(session: LiveSession, label: str, messages: bytes) -> bytes:
    params = session.params
    return prf_module.verify_data(session.openssl_master_secret or b"", label, messages, params.prf_hash)


def _verify_data_in(finished: bytes) -> bytes:
    """The verify_data a Finished message carries, read by the library's decoder."""
    message, _spans = decode_handshake(finished)
    return message.verify_data


def finished_inputs(session: LiveSession) -> FinishedCheck:
    """Which messages each Finished hashes, and both verify_data recomputed from OpenSSL's master secret."""
    messages = handshake_messages(session.transcript)
    client_index, server_index = _finished_split(messages)

    def hashed(upto: int) -> bytes:
        return b"".join(raw for _, raw in messages[:upto])

    def names(upto: int) -> list[str]:
        return [f"{d} {message_name(raw[0])} ({len(raw)} bytes)" for d, raw in messages[:upto]]

    return FinishedCheck(
        session.params.prf_hash,
        names(client_index),
        names(server_index),
        _verify_data_in(messages[client_index][1]),
        _verify(session, "client finished", hashed(client_index)),
        _verify_data_in(messages[server_index][1]),
        _verify(session, "server finished", hashed(server_index)),
    )


def downgrade_check(session: LiveSession, keep: str = "TLS_RSA_WITH_AES_128_CBC_SHA") -> str:
    """What Finished does to an attacker who rewrites our ClientHello's cipher suites to ``keep`` only.

    The server hashes the edited ClientHello while our client hashes the one it sent: the server's
    check of our Finished fails (decrypt_error) even with the same master secret.
    """
    messages = handshake_messages(session.transcript)
    client_index, _ = _finished_split(messages)
    original = messages[0][1]
    hello, _ = decode_handshake(original)
    edited = replaced(hello, cipher_suites=[CipherSuite[keep]]).to_bytes()
    rest = b"".join(raw for _, raw in messages[1:client_index])
    ours = _verify(session, "client finished", original + rest)
    servers = _verify(session, "client finished", edited + rest)
    offered = ", ".join(name_of(CipherSuite, s) for s in hello.cipher_suites)
    verdict = (
        "identical?!"
        if ours == servers
        else ("different: the server answers decrypt_error and the handshake stops before any application data.")
    )
    lines = [
        f"our ClientHello offered: {offered}",
        f"the attacker forwards:   {keep} only ({len(original)} -> {len(edited)} bytes)",
        f"our client's Finished (over what it sent):       {ours.hex()}",
        f"what the server expects (over what it received): {servers.hex()}",
        f"-> {verdict}",
    ]
    if session.response.handshake.extended_master_secret:
        lines.append(
            "(With the extended master secret the edit changes the master secret itself, so the keys differ too.)"
        )
    return "\n".join(lines)


# -- the live handshake, drawn -----------------------------------------------------------------------
def _entry_label(entry: TranscriptEntry) -> str:
    parts = []
    for message in entry.messages or [None]:
        if message is None:
            text = f"{entry.content_type_name} ({len(entry.plaintext)} B)"
        elif isinstance(message, ApplicationData):
            text = f"ApplicationData ({len(message.data)} B)"
        elif isinstance(message, Alert):
            text = f"Alert {message.description_name}"
        else:
            text = type(message).__name__
        parts.append("{" + text + "}" if entry.encrypted else text)
    return ", ".join(parts)


def _flights(
    transcript: Sequence[TranscriptEntry], timings: Sequence[tuple[float, str, int]]
) -> list[tuple[str, float, list[int]]]:
    stamp = {index: time for time, _, index in timings}
    if any(i not in stamp for i in range(len(transcript))):
        raise ValueError("every transcript entry needs a timing (use a TLSResponse from tls_get)")
    flights: list[tuple[str, float, list[int]]] = []
    for index, entry in enumerate(transcript):
        if flights and flights[-1][0] == entry.direction and flights[-1][1] == stamp[index]:
            flights[-1][2].append(index)
        else:
            flights.append((entry.direction, stamp[index], [index]))
    return flights


def handshake_arrows(
    transcript: Sequence[TranscriptEntry],
    timings: Sequence[tuple[float, str, int]],
    *,
    entry_label: Callable[[TranscriptEntry], str] | None = None,
) -> list[Arrow]:
    """One arrow per flight (records sent together), timed with our client's clock.

    ``entry_label`` names a record on its arrow (lesson 10 names TLS 1.3's messages its own way).

    The client knows when it sent each flight and when each server flight arrived, not when its
    bytes reached OpenSSL; so each round trip is split in half: a flight of ours is drawn arriving
    half-way to the answer, and the answer leaving then.
    """
    flights = _flights(transcript, timings)
    halves: dict[int, float] = {}
    for number, (direction, time, _) in enumerate(flights[:-1]):
        # The answer to a flight of ours is the server's next flight, even when we sent another before it
        # arrived (TLS 1.3's request follows the client's Finished at once).
        following = next((f for f in flights[number + 1 :] if f[0] == SERVER_TO_CLIENT), None)
        if direction == CLIENT_TO_SERVER and following is not None:
            halves[number] = max((following[1] - time) / 2, 1e-6)
    typical = statistics.median(halves.values()) if halves else 1e-4
    arrows = []
    for number, (direction, time, indices) in enumerate(flights):
        label = ", ".join((entry_label or _entry_label)(transcript[i]) for i in indices)
        if direction == CLIENT_TO_SERVER:
            arrows.append(Arrow("client", "server", label, time, time + halves.get(number, typical)))
        else:
            half = halves.get(number - 1, typical)
            arrows.append(Arrow("server", "client", label, max(time - half, 0.0), time))
    return arrows


def _state_marks(
    arrows: Sequence[Arrow], transcript: Sequence[TranscriptEntry], timings: Any
) -> list[tuple[float, str, str]]:
    flights = _flights(transcript, timings)
    marks: list[tuple[float, str, str]] = []
    for role in ("client", "server"):
        path = replay(role, transcript)  # type: ignore[arg-type]
        previous = None
        for arrow, (_, _, indices) in zip(arrows, flights, strict=True):
            state = path[indices[-1]]
            if state is not previous:
                # A side changes state when it sends (start) or when a flight reaches it.
                first_send = arrow.sender == role and role == "client" and previous is None
                moment = arrow.sent_at if first_send or arrow.receiver != role else arrow.received_at
                marks.append((moment or 0.0, role, state.value))
                previous = state
    return marks


def handshake_sequence(
    response: TLSResponse, *, ax: Any = None, states: bool = True, compress_idle: bool = False
) -> Figure:
    """The live handshake as a ladder diagram: one arrow per flight, ``{...}`` = encrypted."""
    arrows = handshake_arrows(response.transcript, response.timings)
    marks = _state_marks(arrows, response.transcript, response.timings) if states else []
    suite = suite_params(response.handshake.cipher_suite).name
    title = f"TLS 1.2 with OpenSSL: {suite}"
    # xlim: room for state names such as WAIT_CHANGE_CIPHER_SPEC beside both lines.
    return draw_sequence(arrows, title=title, ax=ax, states=marks, compress_idle=compress_idle, xlim=(-1.3, 1.75))


def state_machine_picture(
    role: str = "client", transcript: Sequence[TranscriptEntry] | None = None, *, ax: Any = None
) -> Figure:
    """The ``role``'s TLS 1.2 state table, drawn; the path a live transcript took is highlighted."""
    rows = diagram_rows(role)  # type: ignore[arg-type]
    path: list[str] = []
    if transcript is not None:
        for state in [INITIAL_STATE[role], *replay(role, transcript)]:  # type: ignore[arg-type]
            if not path or path[-1] != state.value:
                path.append(state.value)
    return draw_state_diagram(rows, highlight=path, ax=ax)


def page_view(response: TLSResponse) -> widgets.HTML:
    """The page OpenSSL served, drawn in a sandboxed iframe (no scripts, no forms), and its source."""
    body = response.body.decode("utf-8", errors="replace")
    kind = response.headers.get("content-type", "?")
    frame = (
        f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{html.escape(body, quote=True)}" '
        'style="width:100%;height:140px;border:1px solid #888;background:white"></iframe>'
    )
    source = f"<details><summary>HTML source ({len(response.body)} bytes)</summary>{_pre(body)}</details>"
    return widgets.HTML(f"<b>HTTP {response.status}</b>, {html.escape(kind)}" + frame + source)


class HandshakeStepper(widgets.VBox):
    """Step through a live handshake one record at a time; see :meth:`show`, :meth:`next`, :meth:`previous`."""

    def __init__(self, response: TLSResponse) -> None:
        self.response = response
        self.transcript = response.transcript
        if not self.transcript:
            raise ValueError("the response holds no transcript")
        self.client_states = replay("client", self.transcript)
        self.server_states = replay("server", self.transcript)
        self.previous_button = widgets.Button(description="\u25c0 previous")
        self.next_button = widgets.Button(description="next \u25b6")
        self.position = widgets.HTML()
        self.states_html = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.plain_box = widgets.VBox()
        self.index = 0
        self.status_text = ""
        self.hexview: HexView | None = None
        self.plain_view: HexView | None = None
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        buttons = widgets.HBox([self.previous_button, self.next_button, self.position])
        super().__init__([buttons, self.states_html, self.wire_box, self.plain_box])
        self.show(0)

    def next(self) -> int:
        return self.show(min(self.index + 1, len(self.transcript) - 1))

    def previous(self) -> int:
        return self.show(max(self.index - 1, 0))

    def show(self, index: int) -> int:
        """Show record ``index``: its wire bytes, its decrypted contents if it was protected, both states."""
        index = check_index("index", index)  # not a number: TypeError; a number with no record: a message
        if not 0 <= index < len(self.transcript):
            self.position.value = f"<i>There is no record number {index}.</i>"
            return self.index
        self.index = index
        entry = self.transcript[index]
        self.position.value = f"record {index + 1} of {len(self.transcript)}: <b>{html.escape(entry.summary())}</b>"
        client, server = self.client_states[index].value, self.server_states[index].value
        self.status_text = f"after it: client {client}, server {server}"
        self.states_html.value = _pre(self.status_text)
        self.hexview = HexView(entry.record, entry.spans, title=f"on the wire ({len(entry.record)} bytes)")
        self.wire_box.children = [self.hexview]
        if entry.encrypted:
            spans = plaintext_spans(entry.content_type, entry.plaintext)
            self.plain_view = HexView(entry.plaintext, spans, title=f"decrypted ({len(entry.plaintext)} bytes)")
            self.plain_box.children = [self.plain_view]
        else:
            self.plain_view = None
            self.plain_box.children = [widgets.HTML("<i>Sent in the clear: the bytes above are the message.</i>")]
        self.previous_button.disabled = index == 0
        self.next_button.disabled = index == len(self.transcript) - 1
        return index


def handshake_stepper(response: TLSResponse) -> HandshakeStepper:
    return HandshakeStepper(response)
