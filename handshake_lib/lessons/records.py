"""Lesson 07 (records: encryption and MAC): its widgets and glue.

Theory of operation
-------------------
Nothing here decrypts or reassembles: :meth:`~handshake_lib.tls.captured.ProtectedRecord.open` opens a
record with the record layer a connection runs and names its parts and the check that refused it;
:func:`~handshake_lib.tls.record.message_pieces` says which message bytes a record carried;
:mod:`handshake_lib.peers.openssl_sessions` runs OpenSSL.  This module arranges the results:

* :func:`capture_sessions` (live) and :data:`RECORDED_SESSIONS` (recorded once from OpenSSL 3, in
  ``handshake_lib/data/openssl_records.json``): records of each construction.
* :func:`cut_handshake` / :func:`records_and_messages`: records are not messages.
* :class:`RecordExplorer` (``record_explorer()``): pick a record, see its parts.
* :class:`TamperLab` (``tamper_lab()``): flip one bit of a real record; the library refuses it and
  says which check caught it; the lab explains that check.  :func:`tamper_against_openssl` does the
  same to a live OpenSSL.
* :func:`record_layout_picture` (from :mod:`handshake_lib.viz.record_layouts`): the three layouts.

Widget callbacks are plain methods (``select``, ``update``), used by the tests and ``bench/cases/records.py``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..data import load_recordings
from ..net.tls import TLSResponse
from ..peers.openssl_sessions import LiveSession, capture_session, capture_sessions, tamper_against_openssl
from ..tls.captured import CLIENT_TO_SERVER, ProtectedRecord, RecordedSession
from ..tls.connection import TranscriptEntry, plaintext_spans
from ..tls.constants import ContentType, HandshakeType, name_of
from ..tls.record import RECORD_HEADER_LENGTH, Check, OpenedRecord, message_pieces, read_header
from ..viz.hexview import HexView, render_hex_html
from ..viz.record_layouts import record_layout_picture
from ..viz.widget import ControlledWidget, check_control, check_index, check_number
from ..wire import Span

__all__ = [
    "RECORDED_SESSIONS",
    "CutHandshake",
    "LiveSession",
    "RecordExplorer",
    "RecordPiece",
    "TamperLab",
    "TamperResult",
    "capture_sessions",
    "cut_handshake",
    "message_name",
    "record_explorer",
    "record_layout_picture",
    "records_and_messages",
    "tamper_against_openssl",
    "tamper_lab",
    "tamper_record",
]

RECORDED_SESSIONS: dict[str, RecordedSession] = {
    recorded.name: recorded for recorded in map(RecordedSession.from_json, load_recordings("openssl_records"))
}
"""Real records from OpenSSL, by session name (``"AES128-SHA256 MAC-then-encrypt"`` ...)."""


def _recorded_records() -> list[ProtectedRecord]:
    return [record for session in RECORDED_SESSIONS.values() for record in session.protected_records()]


def message_name(msg_type: int | None) -> str:
    """``ClientHello`` for 1: the name a learner reads in the RFC."""
    if msg_type is None:
        return "(a message header, cut short)"
    if msg_type not in HandshakeType._value2member_map_:
        return name_of(HandshakeType, msg_type)
    return "".join(part.capitalize() for part in HandshakeType(msg_type).name.split("_"))


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


# -- records are not messages -------------------------------------------------------------------
@dataclass(frozen=True)
class RecordPiece:
    """One handshake record and the part of each handshake message it carries (bytes ``start:end``)."""

    index: int  # position in the transcript
    direction: str
    length: int  # plaintext bytes in this record
    pieces: tuple[tuple[str, int, int, int], ...]  # (message name, start, end, message length)

    @property
    def cuts_a_message(self) -> bool:
        """True if some message here began in an earlier record or goes on in a later one."""
        return any(not (start == 0 and end == total) for _, start, end, total in self.pieces)

    def describe(self) -> str:
        """``"ClientKeyExchange bytes 64-127 of 262"``; a whole message is just its name."""
        return ", ".join(
            name if start == 0 and end == total else f"{name} bytes {start}-{end - 1} of {total}"
            for name, start, end, total in self.pieces
        )


def records_and_messages(transcript: Sequence[TranscriptEntry]) -> list[RecordPiece]:
    """Which bytes of which handshake messages each handshake record carried, direction by direction."""
    result: list[RecordPiece] = []
    for direction in ("client->server", "server->client"):
        entries = [
            (index, entry)
            for index, entry in enumerate(transcript)
            if entry.direction == direction and entry.content_type == ContentType.handshake and entry.plaintext
        ]
        pieces = message_pieces([entry.plaintext for _, entry in entries])
        for (index, entry), carried in zip(entries, pieces, strict=True):
            named = tuple((message_name(p.msg_type), p.start, p.end, p.length) for p in carried)
            result.append(RecordPiece(index, direction, len(entry.plaintext), named))
    return sorted(result, key=lambda piece: piece.index)


@dataclass(frozen=True)
class CutHandshake:
    """A live handshake with OpenSSL in which our client cut everything it sent into small records."""

    fragment_size: int
    session: LiveSession

    @property
    def response(self) -> TLSResponse:
        return self.session.response

    @property
    def records(self) -> list[RecordPiece]:
        return records_and_messages(self.response.transcript)

    def summary(self) -> str:
        arrow = {"client->server": "client -> server", "server->client": "server -> client"}
        records = self.records  # computed once: the property walks the whole transcript
        lines = [f"{'record':>6}  {'direction':<16}  {'bytes':>5}  carries"]
        lines += [
            f"{piece.index + 1:>6}  {arrow[piece.direction]:<16}  {piece.length:>5}  {piece.describe()}"
            for piece in records
        ]
        cut = any(piece.direction == CLIENT_TO_SERVER and piece.cuts_a_message for piece in records)
        what = f"put our {self.fragment_size}-byte pieces back together" if cut else "got every message whole"
        agreed = "equals ours" if self.session.same_master_secret else "DIFFERS from ours"
        lines.append(f"OpenSSL {what}: HTTP {self.response.status}, the master secret in its key log {agreed}.")
        return "\n".join(lines)


def cut_handshake(fragment_size: int = 64, suite_name: str = "AES128-GCM-SHA256") -> CutHandshake:
    """GET a page from a fresh OpenSSL server, our client sending records of at most ``fragment_size`` bytes."""
    return CutHandshake(
        fragment_size, capture_session(suite_name, fragment_size=fragment_size, require_same_secret=False)
    )


# -- what is inside a protected record --------------------------------------------------------------
def _decrypted_spans(opened: OpenedRecord) -> list[Span]:
    """The library's spans over the decrypted bytes, with the plaintext's own messages decoded inside."""
    if opened.plaintext is None:
        return opened.decrypted_spans
    decoded = plaintext_spans(opened.record[0], opened.plaintext)
    return sorted([s for s in opened.decrypted_spans if s.field != "plaintext"] + decoded, key=lambda s: s.offset)


def _summary(protected: ProtectedRecord, opened: OpenedRecord) -> str:
    lines = [f"{opened.construction}, {protected.params.name}, sequence number {protected.sequence_number}"]
    if opened.mac_received:
        lines.append(f"MAC in the record: {opened.mac_received.hex()}")
        verdict = "match" if opened.mac_matches else "NO MATCH"
        lines.append(f"MAC we compute:    {opened.mac_expected.hex()}  ({verdict})")
    elif protected.params.is_aead and opened.accepted:
        lines.append("GCM tag verified (AES-GCM checks it before it returns any plaintext)")
    if opened.plaintext is not None:
        more = " ..." if len(opened.plaintext) > 60 else ""
        lines.append(f"plaintext ({len(opened.plaintext)} bytes): {opened.plaintext[:60]!r}{more}")
    if not opened.accepted:
        lines.append(f"refused by: {opened.failed.value} ({opened.error or 'waiting for more bytes'})")
    return "\n".join(lines)


class RecordExplorer(ControlledWidget, widgets.VBox):
    """Protected records (live or recorded), each cut into its parts; see :meth:`select`."""

    def __init__(self, records: Sequence[ProtectedRecord]) -> None:
        self.records = list(records)
        self.record_list = widgets.Select(
            options=[(r.label, i) for i, r in enumerate(self.records)],
            value=None,
            rows=min(8, max(2, len(self.records))),
            layout=widgets.Layout(width="auto"),
        )
        self.record_list.add_class("handshake-span-list")
        self.summary = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.inner_box = widgets.VBox()
        self.mac_input_html = widgets.HTML()
        self.layers: OpenedRecord | None = None
        self.hexview: HexView | None = None
        self.inner_view: HexView | None = None
        super().__init__([self.record_list, self.summary, self.wire_box, self.inner_box, self.mac_input_html])
        self.watch(self.record_list)
        if self.records:
            self.select(0)
        else:
            self.summary.value = "<i>No protected records to show.</i>"

    def changed(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.select(change["new"])

    def select(self, index: int) -> OpenedRecord | None:
        """Show record ``index``: the wire bytes with their parts, what decryption gives, what the MAC covers."""
        index = check_index("index", index)  # not a number: TypeError; a number with no record: a message
        if not 0 <= index < len(self.records):
            self.summary.value = f"<i>There is no record number {index}.</i>"
            self.layers = None
            return None
        protected = self.records[index]
        opened = self.layers = protected.open()
        self.summary.value = _pre(_summary(protected, opened))
        self.hexview = HexView(opened.record, opened.spans, title=f"on the wire: {protected.label}")
        self.wire_box.children = [self.hexview]
        what = {"AEAD (AES-GCM)": "plaintext", "encrypt-then-MAC": "plaintext + padding"}
        title = "after decryption: " + what.get(opened.construction, "plaintext + MAC + padding")
        self.inner_view = HexView(opened.decrypted, _decrypted_spans(opened), title=title)
        self.inner_box.children = [self.inner_view]
        what_input = "GCM additional data" if protected.params.is_aead else "MAC input, before the data"
        self.mac_input_html.value = f"<b>{what_input} (never sent)</b>" + render_hex_html(
            opened.mac_input, opened.mac_input_spans
        )
        if self.record_list.value != index:
            self.record_list.value = index
        return opened


def record_explorer(records: Sequence[ProtectedRecord] | None = None) -> RecordExplorer:
    """The explorer over ``records`` (default: the recorded OpenSSL records of every construction)."""
    return RecordExplorer(_recorded_records() if records is None else records)


# -- tampering -----------------------------------------------------------------------------------
@dataclass
class TamperResult:
    """What the receiving record layer made of one flipped bit."""

    offset: int
    bit: int
    field: str
    original: int
    tampered: int
    layers: OpenedRecord  # the tampered record, as the receiver opened it

    @property
    def check(self) -> str:
        return self.layers.failed.value

    @property
    def rejected(self) -> bool:
        return not self.layers.accepted

    @property
    def error(self) -> str:
        error = self.layers.error
        if self.layers.failed is Check.INCOMPLETE:
            return "(none yet: the reader waits)"
        return "" if error is None else f"{type(error).__name__}: {error}"

    @property
    def explanation(self) -> str:
        opened = self.layers
        if opened.failed is Check.INCOMPLETE:
            _type, _version, claimed = read_header(opened.record)
            return (
                f"The header now claims {claimed} bytes but only {len(opened.record) - RECORD_HEADER_LENGTH} "
                "follow: the receiver waits for the rest, takes it from the next record, and the MAC check fails "
                "then (or the connection times out)."
            )
        text = opened.failed.explanation
        if opened.leftover:
            text += f" The header now claims {opened.leftover} bytes fewer, so the record checked is cut short."
        return text


def tamper_record(protected: ProtectedRecord, offset: int, bit: int) -> TamperResult:
    """Flip ``bit`` (0 = least significant) of byte ``offset`` and hand the record to the library's receiver."""
    if not 0 <= offset < len(protected.record):
        raise ValueError(f"offset must be between 0 and {len(protected.record) - 1}")
    if not 0 <= bit <= 7:
        raise ValueError("bit must be between 0 and 7")
    tampered = bytearray(protected.record)
    tampered[offset] ^= 1 << bit
    field = protected.open().field_at(offset)
    opened = protected.open(bytes(tampered))
    return TamperResult(offset, bit, field, protected.record[offset], tampered[offset], opened)


class TamperLab(ControlledWidget, widgets.VBox):
    """Flip one bit of a real protected record and watch the record layer refuse it; see :meth:`update`."""

    def __init__(self, records: Sequence[ProtectedRecord], *, record: int = 0, offset: int | None = None, bit: int = 0):
        self.records = list(records)
        if not self.records:
            raise ValueError("TamperLab needs at least one protected record")
        self.record_choice = widgets.Dropdown(
            options=[(r.label, i) for i, r in enumerate(self.records)],
            value=0,
            description="record",
            layout=widgets.Layout(width="auto"),
        )
        self.offset_slider = widgets.IntSlider(value=0, min=0, max=len(self.records[0].record) - 1, description="byte")
        self.bit_choice = widgets.Dropdown(
            options=[(f"bit {b} (0x{1 << b:02x})", b) for b in range(8)], value=0, description="flip"
        )
        self.hex_html = widgets.HTML()
        self.verdict = widgets.HTML()
        self.result: TamperResult | None = None
        self.verdict_text = ""
        super().__init__(
            [self.record_choice, widgets.HBox([self.offset_slider, self.bit_choice]), self.hex_html, self.verdict]
        )
        self.watch(self.record_choice, self.offset_slider, self.bit_choice)
        self.update(record=record, offset=-1 if offset is None else offset, bit=bit)  # -1: the last byte

    def update(
        self, *, record: int | None = None, offset: int | None = None, bit: int | None = None
    ) -> TamperResult:
        """Set any control, flip the bit, and show what the receiver said (no argument: the controls' values).

        ``offset`` counts from the end when negative (-1: the last byte).  A record, byte or bit the
        controls do not offer raises ValueError (TypeError for what is not a whole number) before
        anything changes.
        """
        record = check_control("record", record, self.record_choice)
        size = len(self.records[self.record_choice.value if record is None else record].record)
        offset = check_number("offset", offset, -size, size - 1, whole=True)
        bit = check_control("bit", bit, self.bit_choice)
        with self.holding():
            if record is not None:
                self.record_choice.value = record
            protected = self.records[self.record_choice.value]
            self.offset_slider.max = len(protected.record) - 1
            if offset is not None:
                self.offset_slider.value = offset + size if offset < 0 else offset
            if bit is not None:
                self.bit_choice.value = bit
        result = self.result = tamper_record(protected, self.offset_slider.value, self.bit_choice.value)
        marked = [*protected.open().spans, Span(result.offset, 1, "flipped", "the flipped byte", 0, True)]
        self.hex_html.value = render_hex_html(result.layers.record, marked, selected=len(marked) - 1)
        self.verdict_text = (
            f"byte {result.offset} ({result.field}): 0x{result.original:02x} -> 0x{result.tampered:02x}\n"
            f"receiver: {result.error or 'accepted'}\n"
            f"caught by: {result.check}\n{result.explanation}"
        )
        self.verdict.value = _pre(self.verdict_text)
        return result


def tamper_lab(records: Sequence[ProtectedRecord] | None = None, **settings: Any) -> TamperLab:
    """The tamper lab over ``records`` (default: OpenSSL's recorded records of each construction)."""
    return TamperLab(_recorded_records() if records is None else records, **settings)
