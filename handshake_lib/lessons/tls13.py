"""Lesson 10 (TLS 1.3): its widgets and glue.

Theory of operation
-------------------
The library does the work: :mod:`handshake_lib.peers.tls13_runs` runs every live connection once
(:func:`compare_versions`: one OpenSSL server, the same page over TLS 1.2 and 1.3; :func:`hello_retry_run`:
an OpenSSL server that takes only P-256; :func:`hybrid_runs`: our TLS 1.3 server with X25519MLKEM768 and
with x25519; :func:`refused_legacy_hello`: OpenSSL's TLS 1.2-only RSA ClientHello refused by our 1.3 server),
our client keeps each transcript (``TranscriptEntry13``: the real content type of every protected record)
and its :class:`~handshake_lib.tls.key_schedule13.KeySchedule13`.  This module arranges the results:

* :func:`versions_side_by_side`: the two handshakes as ladder diagrams on one time scale (``{...}`` encrypted),
  :func:`exchange_table` their round trips, times and bytes in the clear;
* :class:`TranscriptViewer` (``transcript_viewer()``): any record of either handshake, as it crossed the wire and,
  when it was encrypted, as our client read it;
* :func:`key_schedule_picture` (:mod:`handshake_lib.viz.key_schedule`) and :class:`KeyScheduleExplorer`
  (``key_schedule_explorer()``): one step's inputs, its HkdfLabel in the hex view, and OpenSSL's key log beside it;
* :func:`state_machine_picture13`: a role's TLS 1.3 state table (:mod:`handshake_lib.tls.states13`), the path a
  live handshake took through it highlighted;
* :func:`key_share_table`: the key shares each run put on the wire; :func:`removed_table`: what 1.3 removed.

Widgets only look things up: no callback touches the network.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..net.tls import TLSResponse
from ..peers.tls13_runs import (
    KEYLOG_LABELS,
    HybridRun,
    KeyShareSeen,
    VersionComparison,
    compare_versions,
    exchange_summary,
    hello_retry_run,
    hybrid_runs,
    key_shares,
    refused_legacy_hello,
)
from ..tls.connection import ApplicationData, TranscriptEntry, plaintext_spans
from ..tls.connection13 import recorded
from ..tls.constants import CipherSuite, NamedGroup, name_of
from ..tls.key_schedule13 import KeySchedule13, hkdf_label_spans, transcript_hash
from ..tls.messages import Alert
from ..tls.messages13 import is_hello_retry_request
from ..tls.states13 import INITIAL_STATE, diagram_rows, replay
from ..viz.hexview import HexView
from ..viz.key_schedule import draw_key_schedule
from ..viz.sequence import draw_sequence
from ..viz.statediagram import draw_state_diagram
from ..viz.widget import ControlledWidget, check_control, check_index
from .finished import handshake_arrows

__all__ = [
    "KeyScheduleExplorer",
    "TranscriptViewer",
    "compare_versions",
    "exchange_table",
    "handshake_title",
    "hello_retry_picture",
    "hello_retry_run",
    "hybrid_runs",
    "hybrid_share_rows",
    "key_schedule_explorer",
    "key_schedule_picture",
    "key_share_table",
    "key_shares",
    "message_label",
    "refused_legacy_hello",
    "removed_table",
    "transcript_viewer",
    "versions_side_by_side",
]


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


# -- the two handshakes, drawn --------------------------------------------------------------------------------
def message_label(entry: TranscriptEntry) -> str:
    """A record's messages by their protocol names (a HelloRetryRequest by its own), ``{...}`` if encrypted."""
    parts = []
    for message in entry.messages or [None]:
        if message is None:
            text = f"{entry.content_type_name} ({len(entry.plaintext)} B)"
        elif isinstance(message, ApplicationData):
            text = f"ApplicationData ({len(message.data)} B)"
        elif isinstance(message, Alert):
            text = f"Alert {message.description_name}"
        elif is_hello_retry_request(message):
            text = "HelloRetryRequest"
        else:
            text = type(message).__name__.removesuffix("13")  # Certificate13 is TLS 1.3's Certificate
        parts.append("{" + text + "}" if entry.encrypted else text)
    return ", ".join(parts)


def handshake_title(response: TLSResponse) -> str:
    """``TLS 1.3: TLS_AES_256_GCM_SHA384, x25519``: the version, suite and group our client negotiated."""
    handshake = response.handshake
    version = "TLS 1.3" if handshake.version == 0x0304 else "TLS 1.2"
    group = name_of(NamedGroup, handshake.group) if handshake.group is not None else "no group"
    return f"{version}: {name_of(CipherSuite, handshake.cipher_suite)}, {group}"


def _draw(responses: Sequence[tuple[str, TLSResponse]]) -> Figure:
    """Ladder diagrams side by side on one time scale: ms on our client's clock from its first ClientHello."""
    figure = Figure(figsize=(7.0 * len(responses), 6.6), layout=None)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(responses), squeeze=False)[0]
    ladders = []
    for title, response in responses:
        arrows = handshake_arrows(response.transcript, response.timings, entry_label=message_label)
        zero = arrows[0].sent_at
        ladders.append((title, [replace(a, sent_at=a.sent_at - zero, received_at=(a.received_at or zero) - zero)
                                for a in arrows]))  # fmt: skip
    end = max(a.received_at or a.sent_at for _, arrows in ladders for a in arrows)
    for ax, (title, arrows) in zip(axes, ladders, strict=True):
        draw_sequence(arrows, title=title, ax=ax, compress_idle=False, resize=False, xlim=(-0.6, 1.6),
                      time_range=(0.0, end))  # fmt: skip
    figure.subplots_adjust(left=0.12 if len(responses) == 1 else 0.06, right=0.98, wspace=0.18)
    return figure


def versions_side_by_side(comparison: VersionComparison) -> Figure:
    """TLS 1.2 and TLS 1.3 with the same OpenSSL server, two ladders on one time scale."""
    return _draw([(handshake_title(comparison.tls12), comparison.tls12), (handshake_title(comparison.tls13),
                                                                           comparison.tls13)])  # fmt: skip


def state_machine_picture13(role: str = "client", response: TLSResponse | None = None, *, ax: Any = None) -> Figure:
    """``role``'s TLS 1.3 state table, drawn; the path ``response``'s handshake took through it highlighted."""
    path: list[str] = []
    if response is not None:
        for state in [INITIAL_STATE[role], *replay(role, recorded(response.transcript))]:  # type: ignore[arg-type]
            if not path or path[-1] != state.value:
                path.append(state.value)
    return draw_state_diagram(diagram_rows(role), highlight=path, ax=ax)  # type: ignore[arg-type]


def hello_retry_picture(response: TLSResponse) -> Figure:
    """One handshake with a HelloRetryRequest, as a ladder."""
    return _draw([(handshake_title(response) + " after a HelloRetryRequest", response)])


def exchange_table(comparison: VersionComparison) -> str:
    """Round trips, medians of the repeated fetches, and bytes in the clear for both versions (HTML)."""
    rows = []
    for name, response in (("TLS 1.2", comparison.tls12), ("TLS 1.3", comparison.tls13)):
        first = exchange_summary(response)
        clear = sorted(
            {message_label(e) for e in response.transcript if not e.encrypted and e.content_type == 22}
        )  # handshake messages anyone on the path reads
        rows.append(
            f"<tr><td>{name}</td><td>{first.round_trips}</td>"
            f"<td>{comparison.median(name, 'request_sent') * 1000:.2f} ms</td>"
            f"<td>{comparison.median(name, 'response_arrived') * 1000:.2f} ms</td>"
            f"<td>{first.clear_bytes} / {first.encrypted_bytes}</td><td>{html.escape(', '.join(clear))}</td></tr>"
        )
    count = len(comparison.repeats.get("TLS 1.2", []))
    return (
        "<table style='color:inherit'><tr><th>version</th><th>round trips before the request</th>"
        f"<th>request sent (median of {count})</th><th>first answer record (median)</th>"
        "<th>record bytes clear / encrypted</th><th>handshake messages in the clear</th></tr>"
        + "".join(rows)
        + "</table>"
    )


# -- record by record -------------------------------------------------------------------------------------------
class TranscriptViewer(ControlledWidget, widgets.VBox):
    """Any record of the compared handshakes: the wire bytes, and what was inside an encrypted one."""

    def __init__(self, responses: Mapping[str, TLSResponse], *, version: str | None = None, record: int = 0):
        if not responses:
            raise ValueError("no handshakes to show")
        self.responses = dict(responses)
        names = list(self.responses)
        self.version_menu = widgets.Dropdown(options=names, value=names[0], description="handshake")
        self.record_slider = widgets.IntSlider(min=0, max=0, value=0, description="record")
        self.position = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.inside_box = widgets.VBox()
        self.status_text = ""
        super().__init__([widgets.HBox([self.version_menu, self.record_slider]), self.position,
                          self.wire_box, self.inside_box])  # fmt: skip
        self.watch(self.version_menu, self.record_slider)
        self.update(version=version or names[0], record=record)

    def changed(self, change: dict[str, Any]) -> None:
        if change.get("owner") is self.version_menu:
            self.update(record=0)
        else:
            self.update()

    def update(self, *, version: str | None = None, record: int | None = None) -> str:
        """Show record ``record`` of handshake ``version``; returns what the position line says."""
        version = check_control("version", version, self.version_menu)
        record = check_index("record", record) if record is not None else None
        name = version if version is not None else self.version_menu.value
        transcript = self.responses[name].transcript
        if record is not None and not 0 <= record < len(transcript):
            self.position.value = f"<i>{html.escape(name)} has no record number {record}.</i>"
            return self.position.value
        with self.holding():
            if version is not None:
                self.version_menu.value = version
            self.record_slider.max = max(len(transcript) - 1, 0)
            if record is not None:
                self.record_slider.value = record
        entry = transcript[self.record_slider.value]
        text = f"record {self.record_slider.value + 1} of {len(transcript)}, {entry.direction}: {message_label(entry)}"
        self.position.value = f"<b>{html.escape(text)}</b>"
        self.wire_box.children = [HexView(entry.record, entry.spans, title=f"on the wire ({len(entry.record)} B)")]
        if not entry.encrypted:
            self.status_text = "in the clear: anyone on the path reads this"
            self.inside_box.children = [widgets.HTML(_pre(self.status_text))]
        else:
            # TLS 1.3 hides the real type inside (the outer one always says application_data, 23).
            spans = entry.plaintext_spans() if hasattr(entry, "plaintext_spans") else plaintext_spans(
                entry.content_type, entry.plaintext)  # fmt: skip
            self.status_text = (
                f"encrypted (outer type {entry.record[0]}); inside: {entry.content_type_name}, as our client read it"
            )
            self.inside_box.children = [
                widgets.HTML(_pre(self.status_text)),
                HexView(entry.plaintext, spans, title=f"decrypted ({len(entry.plaintext)} B)"),
            ]
        return text


def transcript_viewer(comparison: VersionComparison, **settings: Any) -> TranscriptViewer:
    """The lesson's record viewer over both handshakes (``version``, ``record``)."""
    responses = {handshake_title(comparison.tls12): comparison.tls12, handshake_title(comparison.tls13):
                 comparison.tls13}  # fmt: skip
    return TranscriptViewer(responses, **settings)


# -- the key schedule ---------------------------------------------------------------------------------------------
DERIVE_LABELS = {
    "binder_key": "res binder",
    "client_early_traffic_secret": "c e traffic",
    "early_exporter_master_secret": "e exp master",
    "derived_for_handshake": "derived",
    "client_handshake_traffic_secret": "c hs traffic",
    "server_handshake_traffic_secret": "s hs traffic",
    "derived_for_master": "derived",
    "client_application_traffic_secret_0": "c ap traffic",
    "server_application_traffic_secret_0": "s ap traffic",
    "exporter_master_secret": "exp master",
    "resumption_master_secret": "res master",
}
"""Each Derive-Secret step's label (without ``"tls13 "``)."""


def key_schedule_picture(response: TLSResponse, *, selected: str | None = None) -> Figure:
    """The live TLS 1.3 handshake's key schedule, every value from our client's schedule."""
    schedule: KeySchedule13 = response.handshake.key_schedule
    title = f"TLS 1.3 key schedule of the live handshake ({schedule.hash_name.upper()})"
    return draw_key_schedule(schedule.steps, title=title, selected=selected)


class KeyScheduleExplorer(ControlledWidget, widgets.VBox):
    """One step of the live key schedule: how it was made, its inputs, its HkdfLabel, OpenSSL's value."""

    def __init__(self, response: TLSResponse, openssl_agrees: Mapping[str, bool | None], *, step: str | None = None):
        self.schedule: KeySchedule13 = response.handshake.key_schedule
        self.openssl_agrees = dict(openssl_agrees)
        names = [s.name for s in self.schedule.steps]
        self.step_menu = widgets.Dropdown(options=names, value=names[0], description="step")
        self.details = widgets.HTML()
        self.label_box = widgets.VBox()
        self.label_view: HexView | None = None
        super().__init__([self.step_menu, self.details, self.label_box])
        self.watch(self.step_menu)
        self.update(step=step or names[0])

    def update(self, *, step: str | None = None) -> str:
        """Show ``step``; returns the text shown."""
        step = check_control("step", step, self.step_menu)
        with self.holding():
            if step is not None:
                self.step_menu.value = step
        chosen = next(s for s in self.schedule.steps if s.name == self.step_menu.value)
        lines = [f"{chosen.name} = {chosen.operation}(...)"]
        lines += [f"  {name:10} {value.hex()}" for name, value in chosen.inputs]
        lines.append(f"  = {chosen.value.hex()}")
        agrees = self.openssl_agrees.get(chosen.name)
        if chosen.name in KEYLOG_LABELS:
            verdict = {True: "the same", False: "DIFFERENT", None: "not logged"}[agrees]
            lines.append(f"OpenSSL's key log, {KEYLOG_LABELS[chosen.name]}: {verdict}")
        else:
            lines.append("OpenSSL does not log this one: it never leaves the key schedule")
        label = DERIVE_LABELS.get(chosen.name)
        if label is not None and chosen.operation == "Derive-Secret":
            context = dict(chosen.inputs).get("transcript", transcript_hash(self.schedule.hash_name, []))
            info, spans = hkdf_label_spans(self.schedule.hash_length, label, context)
            lines.append(f'HKDF-Expand(secret, HkdfLabel below, {self.schedule.hash_length}): label "tls13 {label}"')
            self.label_view = HexView(info, spans, title=f"HkdfLabel ({len(info)} B)")
            self.label_box.children = [self.label_view]
        else:
            self.label_view = None
            self.label_box.children = []
        text = "\n".join(lines)
        self.details.value = _pre(text)
        return text


def key_schedule_explorer(comparison: VersionComparison, **settings: Any) -> KeyScheduleExplorer:
    """The lesson's key schedule widget over the live TLS 1.3 handshake (``step``)."""
    return KeyScheduleExplorer(comparison.tls13, comparison.openssl_agrees(), **settings)


# -- key shares, and what went away ------------------------------------------------------------------------------
def key_share_table(rows: Sequence[tuple[str, Sequence[KeyShareSeen]]]) -> str:
    """The key shares of each run (``(run name, key_shares(...))``), with their sizes on the wire (HTML)."""
    body = "".join(
        f"<tr><td>{html.escape(run)}</td><td>{share.sender}</td><td>{share.message}</td><td>{share.group}</td>"
        f"<td>{share.length if share.length else '(names the group only)'}</td></tr>"
        for run, shares in rows
        for share in shares
    )
    return (
        "<table style='color:inherit'><tr><th>run</th><th>sent by</th><th>in</th><th>group</th>"
        "<th>key_exchange bytes</th></tr>" + body + "</table>"
    )


def hybrid_share_rows(runs: Sequence[HybridRun]) -> list[tuple[str, list[KeyShareSeen]]]:
    """:func:`key_share_table`'s rows for :func:`hybrid_runs`, each run named by what it negotiated."""
    return [(f"our server, {run.group} (ClientHello record {run.client_hello_bytes} B)", run.shares) for run in runs]


REMOVED: tuple[tuple[str, str], ...] = (
    ("RSA key exchange", "no forward secrecy (lesson 09): a stolen key opened every recording. Every 1.3 "
     "handshake is (EC)DHE, or PSK with (EC)DHE."),
    ("renegotiation", "the 2009 splice (lesson 11) and a complex state machine; 1.3 has KeyUpdate for new keys "
     "and post-handshake authentication for a late client certificate."),
    ("compression", "CRIME (2012): the size of compressed secrets leaks them. Nothing is compressed."),
    ("CBC and every MAC-then-encrypt suite, RC4, 3DES", "padding oracles (Lucky 13, POODLE) and biased "
     "streams; only AEAD remains (AES-GCM, ChaCha20-Poly1305, AES-CCM)."),
    ("custom (EC)DH groups", "a server's own DH prime could be weak or backdoored (Logjam); only named groups "
     "(x25519, P-256, ffdhe2048..., X25519MLKEM768) may be used."),
    ("ChangeCipherSpec, the separate ServerKeyExchange, 1.2's PRF", "the key schedule is HKDF; the signature "
     "covers the whole transcript (CertificateVerify); CCS survives only as a dummy for middleboxes."),
)  # fmt: skip


def removed_table() -> str:
    """What TLS 1.3 removed and why (HTML)."""
    body = "".join(f"<tr><td>{html.escape(what)}</td><td>{html.escape(why)}</td></tr>" for what, why in REMOVED)
    return "<table style='color:inherit'><tr><th>removed</th><th>why</th></tr>" + body + "</table>"
