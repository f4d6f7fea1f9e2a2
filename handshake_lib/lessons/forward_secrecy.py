"""Lesson 09 (forward secrecy): its widgets and glue.

Theory of operation
-------------------
The library does the work: :func:`~handshake_lib.peers.forward_secrecy_runs.record_sessions` records an
RSA key exchange session and an ECDHE session with one OpenSSL server and keeps its key file;
:meth:`~handshake_lib.peers.forward_secrecy_runs.ForwardSecrecyRecording.decrypt_with_stolen_key` runs
``handshakes tls decode --server-key``'s decoder (:mod:`handshake_lib.tls.capture`) over both;
:func:`~handshake_lib.tls.messages.decode_handshake` gives ServerKeyExchange with its spans, and
:func:`~handshake_lib.tls.signatures.check_server_key_exchange_signature` checks it.  This module
arranges the results:

* :class:`StolenKeyViewer` (``stolen_key_viewer()``): pick a session, step through its records as the
  thief's decoder opened them (the wire bytes, and the plaintext or why there is none);
* :func:`key_sources` says, per session, where the decoder got its keys or where it stopped;
* :func:`ecdhe_steps` lists the ECDHE exchange step by step (our private value, both public ones, the
  pre-master secret, the master secret beside OpenSSL's key log line);
* :class:`ServerKeyExchangeView` (``server_key_exchange_view()``): the message in the hex view with
  the decoder's spans, what the signature covers, and the check on the real bytes or on a tampered copy;
* :func:`protection_table`: what forward secrecy protects, and what it does not.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..peers.forward_secrecy_runs import ForwardSecrecyRecording, RecordedSession, record_sessions
from ..tls.capture import TLSCaptureConnection
from ..tls.connection import plaintext_spans
from ..tls.constants import ContentType, HandshakeType, SignatureScheme, name_of
from ..tls.messages import ServerKeyExchange, decode_handshake
from ..tls.record import reassemble_handshake
from ..tls.signatures import check_server_key_exchange_signature, server_key_exchange_signed_bytes
from ..viz.hexview import HexView
from ..viz.widget import ControlledWidget, check_control, check_index

__all__ = [
    "EcdheStep",
    "ServerKeyExchangeView",
    "StolenKeyViewer",
    "ecdhe_steps",
    "ecdhe_steps_html",
    "page_view",
    "key_sources",
    "protection_table",
    "record_sessions",
    "server_key_exchange_view",
    "stolen_key_viewer",
]


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


# -- the thief's view ----------------------------------------------------------------------------------
def key_sources(opened: dict[str, TLSCaptureConnection]) -> str:
    """One paragraph per session: the suite, where the keys came from, or exactly where decoding stopped."""
    lines = []
    for name, connection in opened.items():
        records = len(connection.entries)
        protected = [e for e in connection.entries if e.encrypted]
        readable = [e for e in protected if e.plaintext]
        lines.append(f"{name}: {connection.suite_name}")
        lines.append(f"  {records} records, {len(protected)} protected, {len(readable)} of those decrypted")
        if connection.decrypted:
            lines.append(f"  keys from {connection.key_source}")
            lines.append(f"  master secret {connection.master_secret.hex()}")
        else:
            lines.append(f"  stopped: {connection.problem}")
    return "\n".join(lines)


class StolenKeyViewer(ControlledWidget, widgets.VBox):
    """Both recorded sessions as the stolen key opens them, one record at a time."""

    def __init__(self, opened: dict[str, TLSCaptureConnection], *, session: str | None = None, record: int = 0):
        if not opened:
            raise ValueError("no decoded sessions to show")
        self.opened = opened
        names = list(opened)
        self.session_menu = widgets.Dropdown(options=names, value=names[0], description="session")
        self.record_slider = widgets.IntSlider(min=0, max=0, value=0, description="record")
        self.position = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.plain_box = widgets.VBox()
        self.status_text = ""
        self.hexview: HexView | None = None
        self.plain_view: HexView | None = None
        super().__init__([widgets.HBox([self.session_menu, self.record_slider]), self.position,
                          self.wire_box, self.plain_box])  # fmt: skip
        self.watch(self.session_menu, self.record_slider)
        self.update(session=session or names[0], record=record)

    def changed(self, change: dict[str, Any]) -> None:
        if change.get("owner") is self.session_menu:
            self.update(record=0)  # a new session starts at its first record
        else:
            self.update()

    def update(self, *, session: str | None = None, record: int | None = None) -> str:
        """Show record ``record`` of ``session``; returns what the position line says.

        A session the menu does not offer raises ValueError, a record that is not a whole number TypeError,
        before anything changes; a record number the session does not have is answered in the widget.
        """
        session = check_control("session", session, self.session_menu)
        record = check_index("record", record) if record is not None else None
        connection = self.opened[session if session is not None else self.session_menu.value]
        if record is not None and not 0 <= record < len(connection.entries):
            name = session if session is not None else self.session_menu.value
            self.position.value = f"<i>{html.escape(name)} has no record number {record}.</i>"
            return self.position.value  # nothing else changes
        with self.holding():
            if session is not None:
                self.session_menu.value = session
            self.record_slider.max = max(len(connection.entries) - 1, 0)
            if record is not None:
                self.record_slider.value = record
        entry = connection.entries[self.record_slider.value]
        text = f"record {self.record_slider.value + 1} of {len(connection.entries)}: {entry.summary()}"
        self.position.value = f"<b>{html.escape(text)}</b>"
        self.hexview = HexView(entry.record, entry.spans, title=f"captured on the wire ({len(entry.record)} bytes)")
        self.wire_box.children = [self.hexview]
        if not entry.encrypted:
            self.plain_view = None
            self.status_text = "sent in the clear: anyone who recorded it reads it"
        elif entry.plaintext:
            self.plain_view = HexView(
                entry.plaintext, plaintext_spans(entry.content_type, entry.plaintext),
                title=f"decrypted with the stolen key ({len(entry.plaintext)} bytes)",
            )  # fmt: skip
            self.status_text = "decrypted"
        else:
            self.plain_view = None
            self.status_text = f"not decrypted: {connection.problem}"
        self.plain_box.children = (
            [self.plain_view] if self.plain_view is not None else [widgets.HTML(_pre(self.status_text))]
        )
        return text


def stolen_key_viewer(opened: dict[str, TLSCaptureConnection], **settings: Any) -> StolenKeyViewer:
    """The lesson's record viewer (``session``, ``record``)."""
    return StolenKeyViewer(opened, **settings)


# -- ECDHE, step by step -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EcdheStep:
    """One step of the exchange: who holds the value, whether it crossed the wire, the value."""

    name: str
    held_by: str
    on_the_wire: str
    value: bytes


def ecdhe_steps(session: RecordedSession, opened: TLSCaptureConnection) -> list[EcdheStep]:
    """The ECDHE exchange of ``session`` as our client computed it; ``opened`` is the thief's decode of
    its recording (for the session hash, which is on the wire)."""
    values = session.ephemeral
    if values is None:
        raise ValueError(f"{session.name} is not an ECDHE session")
    return [
        EcdheStep("client private value", "our client only", "never", values.client_private),
        EcdheStep("client public value", "both", "ClientKeyExchange", values.client_public),
        EcdheStep("server private value", "OpenSSL only", "never", b""),
        EcdheStep("server public value", "both", "ServerKeyExchange (signed)", values.server_public),
        EcdheStep(
            f"pre-master secret = {values.group}(client private, server public)",
            "both, computed",
            "never",
            values.pre_master_secret,
        ),  # fmt: skip
        EcdheStep(
            "session hash (ClientHello .. ClientKeyExchange)",
            "anyone with the capture",
            "yes (hashed)",
            opened.session_hash,
        ),  # fmt: skip
        EcdheStep(
            "master secret (RFC 7627), as OpenSSL's key log says",
            "both, computed",
            "never",
            session.openssl_master_secret or b"",
        ),  # fmt: skip
    ]


_NEVER_SEEN = "(never left OpenSSL: thrown away after the handshake)"


def ecdhe_steps_html(steps: list[EcdheStep]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.held_by)}</td><td>{html.escape(s.on_the_wire)}</td>"
        f"<td><code>{s.value.hex() if s.value else _NEVER_SEEN}</code></td></tr>"
        for s in steps
    )
    return (
        "<table style='color:inherit'><tr><th>value</th><th>who has it</th><th>on the wire</th><th>bytes</th></tr>"
        + rows
        + "</table>"
    )


class ServerKeyExchangeView(ControlledWidget, widgets.VBox):
    """ServerKeyExchange in the hex view (the decoder's spans), what its signature covers, and the check."""

    TAMPERING = ("none", "one bit of the server's public value", "client and server random swapped")

    def __init__(self, recording: ForwardSecrecyRecording, *, tamper: str = "none") -> None:
        session = recording.ecdhe
        fragments = [
            (entry.direction, entry.plaintext)
            for entry in session.response.transcript
            if entry.content_type == ContentType.handshake and entry.plaintext and not entry.encrypted
        ]
        raw = next(m.raw for _, m in reassemble_handshake(fragments) if m.raw[0] == HandshakeType.server_key_exchange)
        message, spans = decode_handshake(raw, key_exchange="ECDHE")
        assert isinstance(message, ServerKeyExchange)
        self.message = message
        self.public_key = recording.certificate.public_key()
        self.client_random = session.response.handshake.client_random
        self.server_random = session.response.handshake.server_random
        self.hexview = HexView(raw, spans, title=f"ServerKeyExchange from OpenSSL ({len(raw)} bytes)")
        self.tamper_menu = widgets.Dropdown(options=self.TAMPERING, value="none", description="tamper")
        self.result = widgets.HTML()
        self.verdict = False
        super().__init__([self.hexview, self.tamper_menu, self.result])
        self.watch(self.tamper_menu)
        self.update(tamper=tamper)

    def update(self, *, tamper: str | None = None) -> bool:
        """Check the signature over the real bytes, or a tampered copy; returns the verdict."""
        tamper = check_control("tamper", tamper, self.tamper_menu)
        with self.holding():
            if tamper is not None:
                self.tamper_menu.value = tamper
        params = self.message.params_bytes()
        client_random, server_random = self.client_random, self.server_random
        if self.tamper_menu.value == self.TAMPERING[1]:
            params = params[:-1] + bytes([params[-1] ^ 0x01])  # the last byte of the public value
        elif self.tamper_menu.value == self.TAMPERING[2]:
            client_random, server_random = server_random, client_random
        scheme = self.message.signature_algorithm
        self.verdict = check_server_key_exchange_signature(
            self.public_key,
            scheme,
            self.message.signature,
            client_random,
            server_random,
            params,  # type: ignore[arg-type]
        )
        signed = server_key_exchange_signed_bytes(client_random, server_random, params)
        text = (
            f"signed bytes ({len(signed)}) = client_random (32, from ClientHello) + server_random (32, from "
            f"ServerHello) + params ({len(params)}: curve type, named curve, the public value)\n"
            f"  {signed[:32].hex()}\n  {signed[32:64].hex()}\n  {signed[64:].hex()}\n"
            f"{name_of(SignatureScheme, scheme)} signature with the certificate's RSA key: "
            + ("VALID: this public value came from the certificate's owner, for this handshake" if self.verdict
               else "INVALID: our client refuses the handshake with decrypt_error")
        )  # fmt: skip
        self.result.value = _pre(text)
        return self.verdict


def server_key_exchange_view(recording: ForwardSecrecyRecording, **settings: Any) -> ServerKeyExchangeView:
    """The lesson's ServerKeyExchange widget (``tamper``)."""
    return ServerKeyExchangeView(recording, **settings)


# -- what it protects ------------------------------------------------------------------------------------
PROTECTION_ROWS: tuple[tuple[str, str, str], ...] = (
    ("a recording made before the key was stolen", "readable by the thief",
     "not readable: the ephemeral values are gone"),
    ("a session after the theft, attacker only listening", "readable", "not readable"),
    ("a session after the theft, attacker in the middle", "readable (and he can impersonate the server)",
     "he can impersonate the server: he signs his own ServerKeyExchange"),
    ("a session whose endpoint is broken into while it runs", "readable", "readable: the keys are in memory"),
    ("a master secret written to a key log, kept in a session cache or a ticket key", "readable",
     "readable: whoever holds those has the keys (rotate ticket keys)"),
    ("who talked to whom, when, how much", "visible", "visible: names (SNI), sizes and times are not encrypted"),
)  # fmt: skip


def protection_table() -> str:
    """What forward secrecy protects and what it does not: RSA key exchange beside ECDHE, once the key is stolen."""
    rows = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{html.escape(rsa_kx)}</td><td>{html.escape(ecdhe)}</td></tr>"
        for what, rsa_kx, ecdhe in PROTECTION_ROWS
    )
    return (
        "<table style='color:inherit'><tr><th>the server's private key is stolen; what about...</th>"
        "<th>RSA key exchange</th><th>ECDHE (forward secrecy)</th></tr>" + rows + "</table>"
    )


def page_view(connection: TLSCaptureConnection) -> widgets.HTML:
    """What the server sent in a decrypted session: the page in a sandboxed iframe, and the raw response."""
    response = connection.application_data("server->client").decode("utf-8", errors="replace")
    if not response:
        return widgets.HTML(_pre(f"nothing to show: {connection.problem or 'no application data'}"))
    body = response.partition("\r\n\r\n")[2]
    frame = (
        f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{html.escape(body, quote=True)}" '
        'style="width:100%;height:120px;border:1px solid #888;background:white"></iframe>'
    )
    return widgets.HTML(frame + f"<details><summary>the whole response</summary>{_pre(response)}</details>")
