"""The widgets and glue of lesson 13 (SSH host keys) and of exercise 13's live step.

Everything shown is computed by the library (``ssh.hostkeys``, ``ssh.fingerprints``,
``ssh.known_hosts``) or printed by OpenSSH itself; the live runs are in
:mod:`handshake_lib.peers.ssh_host_key_runs`.  This module only arranges them.

* :func:`explain_signature`: the host key K_S and the signature blob of a live KEX reply, field by field,
  checked over H by :meth:`~handshake_lib.ssh.hostkeys.HostKey.verify`, then over H with one bit changed.
* :class:`FingerprintExplorer`: one of sshd's host keys; our fingerprint and randomart beside what
  ``ssh-keygen -lv`` prints for the same key (SHA256 or MD5).
* :class:`KnownHostsExplorer`: a known_hosts text, every line explained, and what a lookup finds for a
  host, port and key (match, changed, revoked, unknown) with the message ``ssh`` prints.
* :class:`HostKeyPrompt`: "Are you sure you want to continue connecting?" as two buttons.  A live
  connection (``HostKeyPolicy.ASK``) waits at the question in a thread of
  :class:`~handshake_lib.peers.ssh_host_key_runs.WaitingConnection`, as ``ssh`` waits at its prompt; the
  click answers it: yes adds the line and the probe reaches user authentication, no refuses the key.

Speed: fingerprints and ``ssh-keygen`` runs are cached per key and hash; a known_hosts change is parsed
and looked up in well under a millisecond per line; a click finishes a connection already waiting at
the question (NEWKEYS, the service request and the ``none`` probe: a few ms), and opens the next one.
Bad input (a port out of range, a host that is not text, a file over the limits) is a short message
in the widget, or a TypeError/ValueError from ``update`` before anything changes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets

from ..errors import BadHostKeySignature, DecodeError, HandshakeError
from ..net.ssh import ProbeResult
from ..peers import BackgroundPeer
from ..peers.openssh import OpenSSHServer
from ..peers.ssh_host_key_runs import (
    HOST_KEY_CASES,
    HOST_KEY_TYPES,
    ChangedKeyRun,
    LearnerHostKeyRun,
    WaitingConnection,
    keygen_find,
    keygen_fingerprint,
    lesson_sshd,
    probe,
    run_changed_host_key,
    run_learner_host_key_checks,
)
from ..ssh.hostkeys import HostKey, decode_signature
from ..ssh.known_hosts import MAX_FILE_BYTES, HostKeyQuestion, KnownHosts, LookupStatus
from ..ssh.messages import KexECDHReply
from ..viz.hexview import render_hex_text
from ..viz.widget import ControlledWidget, check_choice, check_control, check_text

__all__ = [
    "HOST_KEY_CASES",
    "ChangedKeyRun",
    "FingerprintExplorer",
    "HostKeyPrompt",
    "KnownHostsExplorer",
    "LearnerHostKeyRun",
    "SignatureView",
    "explain_signature",
    "host_keys_of",
    "keygen_find",
    "lesson_sshd",
    "lookup_status",
    "probe",
    "run_changed_host_key",
    "run_learner_host_key_checks",
]

HASHES = ("SHA256", "MD5")
_STATUS_COLOURS = {"match": "#2e7d32", "changed": "#c62828", "revoked": "#c62828", "unknown": "#757575"}


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


def _message(text: str) -> str:
    return f"<span style='color:#c62828'>{html.escape(text)}</span>"


# -- the signature over H ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureView:
    """The host key and its signature from one live key exchange, and both checks of the signature."""

    host_key: HostKey
    signature_blob: bytes
    exchange_hash: bytes
    algorithm: str
    verified: str  # what verify said over H
    tampered: str  # what verify said over H with its first bit flipped

    @property
    def text(self) -> str:
        signature = decode_signature(self.signature_blob)
        return "\n".join(
            [
                f"K_S, the server's host key ({self.host_key.label}, {len(self.host_key.blob)} bytes):",
                render_hex_text(self.host_key.blob, self.host_key.spans),
                "",
                f"the signature over H ({self.algorithm}, {len(self.signature_blob)} bytes):",
                render_hex_text(self.signature_blob, signature.spans),
                "",
                f"H = {self.exchange_hash.hex()}",
                f"verify(signature, H):             {self.verified}",
                f"verify(signature, H, 1 bit off):  {self.tampered}",
            ]
        )


def explain_signature(result: ProbeResult) -> SignatureView:
    """The KEX reply of ``result`` taken apart: K_S, the signature blob, and the check over H (and a changed H)."""
    reply = next(entry.message for entry in result.transcript if isinstance(entry.message, KexECDHReply))
    completed = result.key_exchange
    digest = completed.exchange_hash.digest
    algorithm = completed.negotiated.host_key
    key = HostKey.decode(reply.host_key)
    outcomes = []
    for data in (digest, bytes([digest[0] ^ 0x80]) + digest[1:]):
        try:
            signature = key.verify(reply.signature, data, [algorithm])
            outcomes.append(f"valid ({signature.algorithm} signature by {key.fingerprint()})")
        except BadHostKeySignature as error:
            outcomes.append(f"refused: {error}")
    return SignatureView(key, reply.signature, digest, algorithm, *outcomes)


# -- fingerprints beside ssh-keygen ----------------------------------------------------------------------
@dataclass(frozen=True)
class FingerprintView:
    key_type: str
    hash_name: str
    ours: str  # fingerprint line and randomart, from the library
    openssh: str  # what ssh-keygen -lv printed (or why it could not)

    @property
    def same(self) -> bool:
        return self.ours == self.openssh

    @property
    def text(self) -> str:
        return f"ours:\n{self.ours}\nssh-keygen -lv:\n{self.openssh}"


class FingerprintExplorer(ControlledWidget, widgets.VBox):
    """One of a server's host keys: our fingerprint and randomart beside ``ssh-keygen -lv`` for the same key."""

    def __init__(self, public_keys: dict[str, str], key_type: str = "ed25519", hash_name: str = "SHA256") -> None:
        if not public_keys:
            raise ValueError("public_keys is empty: give the server's host keys (type -> OpenSSH public key line)")
        self.public_keys = dict(public_keys)
        self.key_dropdown = widgets.Dropdown(options=list(self.public_keys), description="host key")
        self.hash_buttons = widgets.ToggleButtons(options=list(HASHES), description="hash")
        self.output = widgets.HTML()
        self.view: FingerprintView | None = None
        super().__init__([widgets.HBox([self.key_dropdown, self.hash_buttons]), self.output])
        self.watch(self.key_dropdown, self.hash_buttons)
        self.update(key_type=key_type, hash_name=hash_name)

    def update(self, *, key_type: str | None = None, hash_name: str | None = None) -> FingerprintView:
        """Show ``key_type`` (one of the server's) with ``hash_name`` (SHA256 or MD5); the widget callback."""
        key_type = check_control("key_type", key_type, self.key_dropdown)
        hash_name = check_control("hash_name", hash_name, self.hash_buttons)
        with self.holding():
            if key_type is not None:
                self.key_dropdown.value = key_type
            if hash_name is not None:
                self.hash_buttons.value = hash_name
        line = self.public_keys[self.key_dropdown.value]
        hash_name = self.hash_buttons.value
        key, comment = HostKey.from_openssh(line), " ".join(line.split()[2:])
        ours = key.fingerprint_line(comment, hash_name) + "\n" + key.randomart(hash_name)
        try:
            openssh = keygen_fingerprint(line, hash_name)
        except (HandshakeError, OSError, ValueError) as error:  # PeerUnavailable, a timeout, a refusal
            openssh = f"could not ask ssh-keygen: {error}"
        self.view = FingerprintView(self.key_dropdown.value, hash_name, ours, openssh)
        verdict = "identical, character for character" if self.view.same else "DIFFERENT"
        self.output.value = (
            "<div style='display:flex;gap:2em'>"
            f"<div><b>ours</b> (<code>HostKey.fingerprint_line</code>, <code>.randomart</code>){_pre(ours)}</div>"
            f"<div><b>OpenSSH</b> (<code>ssh-keygen -lv -E {hash_name.lower()}</code>){_pre(openssh)}</div>"
            f"</div><div>{verdict}</div>"
        )
        return self.view


# -- known_hosts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KnownHostsView:
    """What the explorer shows: the parsed file and the lookup (None when the input was refused)."""

    known_hosts: KnownHosts | None
    status: str | None  # match, changed, revoked, unknown
    message: str  # ssh's message for the lookup, or the one-line reason the input was refused
    lines: tuple[str, ...]  # every line explained

    @property
    def text(self) -> str:
        return "\n".join([f"lookup: {self.status or 'refused input'}", self.message, *self.lines])


class KnownHostsExplorer(ControlledWidget, widgets.VBox):
    """A known_hosts text, each line explained, and what a lookup finds for a host, a port and a key."""

    def __init__(self, text: str, host: str, port: int, keys: dict[str, HostKey]) -> None:
        if not keys:
            raise ValueError("keys is empty: give the keys a lookup can be asked about (label -> HostKey)")
        self.host_keys = dict(keys)
        self.text_area = widgets.Textarea(
            value="", description="known_hosts", layout=widgets.Layout(width="98%", height="9em")
        )
        self.host_box = widgets.Text(value="", description="host")
        self.port_box = widgets.BoundedIntText(value=22, min=1, max=65535, description="port")
        self.key_dropdown = widgets.Dropdown(options=list(self.host_keys), description="the server's key",
                                             style={"description_width": "initial"})  # fmt: skip
        self.lines_html = widgets.HTML()
        self.result_html = widgets.HTML()
        self.view: KnownHostsView | None = None
        controls = widgets.HBox([self.host_box, self.port_box, self.key_dropdown])
        super().__init__([self.text_area, controls, self.result_html, self.lines_html])
        self.watch(self.text_area, self.host_box, self.port_box, self.key_dropdown)
        self.update(text=text, host=host, port=port)

    def update(
        self, *, text: str | None = None, host: str | None = None, port: int | None = None, key: str | None = None
    ) -> KnownHostsView:
        """Change any of the file's text, the host, the port and the key (a label of ``keys``); the callback."""
        text = check_text("text", text)
        host = check_text("host", host)
        port = check_control("port", port, self.port_box)
        key = check_choice("key", check_text("key", key), self.host_keys)
        with self.holding():
            for control, value in ((self.text_area, text), (self.host_box, host), (self.port_box, port),
                                   (self.key_dropdown, key)):  # fmt: skip
                if value is not None:
                    control.value = value
        self.view = self._compute()
        self._show(self.view)
        return self.view

    def _compute(self) -> KnownHostsView:
        host = self.host_box.value.strip()
        try:
            known = KnownHosts.parse(self.text_area.value, "known_hosts")
        except DecodeError:
            return KnownHostsView(None, None, f"the file is larger than {MAX_FILE_BYTES} characters", ())
        explained = [(line.number, line.explain()) for line in known.entries]
        explained += [(skip.number, f"line {skip.number}: skipped: {skip.reason}") for skip in known.skipped]
        lines = tuple(text for _, text in sorted(explained))
        if not host or any(char.isspace() or char in ",[]" for char in host):
            return KnownHostsView(known, None, "type a host name or address (no spaces, commas or brackets)", lines)
        result = known.lookup(host, self.port_box.value, self.host_keys[self.key_dropdown.value])
        return KnownHostsView(known, result.status.value, result.message, lines)

    def _show(self, view: KnownHostsView) -> None:
        if view.status is None:
            self.result_html.value = _message(view.message)
        else:
            colour = _STATUS_COLOURS[view.status]
            self.result_html.value = (
                f"<b>lookup</b>: <span style='color:{colour};font-weight:bold'>{view.status}</span>{_pre(view.message)}"
            )
        self.lines_html.value = "<b>the file, line by line</b>" + _pre("\n".join(view.lines) or "(no entries)")


# -- "Are you sure you want to continue connecting?" -----------------------------------------------------
@dataclass(frozen=True)
class PromptOutcome:
    """What one answer did: the connection's end and the known_hosts text after it."""

    answer: str  # yes or no
    went_through: bool
    text: str  # what our client reports, in ssh's words
    known_hosts: str


class HostKeyPrompt(ControlledWidget, widgets.VBox):
    """The first-connection question as buttons, asked by a live connection to ``sshd`` that waits for the answer.

    A :class:`~handshake_lib.peers.ssh_host_key_runs.WaitingConnection` stops at the question, as ``ssh``
    stops at its prompt; a click answers it and the same connection goes on (yes: the line is added and
    sshd lists its authentication methods) or ends (no: refused).  The next connection is opened at once
    with the known_hosts text as it is now, so the next question is waiting before the next click.  A
    question left unanswered past sshd's login grace time is answered no; a click then opens a fresh
    connection decided by that click.
    """

    def __init__(self, sshd: BackgroundPeer[OpenSSHServer] | OpenSSHServer) -> None:
        self.sshd = sshd
        self.known_hosts = ""
        self.question: HostKeyQuestion | None = None
        self.outcome: PromptOutcome | None = None
        self.connection: WaitingConnection | None = None
        self.prompt_html = widgets.HTML()
        self.yes = widgets.Button(description="yes", button_style="success")
        self.no = widgets.Button(description="no", button_style="danger")
        self.forget_button = widgets.Button(description="forget the host")
        self.outcome_html = widgets.HTML()
        self.yes.on_click(lambda _: self.update(answer="yes"))
        self.no.on_click(lambda _: self.update(answer="no"))
        self.forget_button.on_click(lambda _: self.forget())
        super().__init__([self.prompt_html, widgets.HBox([self.yes, self.no, self.forget_button]), self.outcome_html])
        self.forget()

    def _server(self) -> OpenSSHServer:
        return self.sshd.get() if isinstance(self.sshd, BackgroundPeer) else self.sshd

    def _open(self) -> None:
        """Open the next connection; it waits at the question (or finishes by itself if the key is known)."""
        if self.connection is not None:
            self.connection.close()  # a question still waiting is answered no
        try:
            self.connection = WaitingConnection(self._server(), self.known_hosts)
        except (HandshakeError, OSError) as error:  # sshd would not start
            self.connection = None
            self.prompt_html.value = _message(f"could not start sshd: {error}")

    def forget(self, *, wait: bool = True) -> None:
        """Empty known_hosts and open a connection: the server is unknown, so the question is shown.

        ``wait=False`` opens the connection and returns at once (the question on the page stays as it was).
        """
        self.known_hosts, self.outcome = "", None
        self._open()
        if not wait:
            return
        question = self.connection.wait_for_question() if self.connection is not None else None
        if self.connection is not None and question is None:
            self.prompt_html.value = _message(f"no question was asked: {self.connection.error}")
            return
        if question is not None:
            self.question = question
            self.prompt_html.value = "<b>ssh asks</b>" + _pre(question.prompt + "\n" + question.randomart)
        self.outcome_html.value = "<i>answer with a button, or <code>prompt.update(answer='yes')</code></i>"

    def _decide(self, yes: bool) -> ProbeResult:
        connection = self.connection
        if connection is not None:
            connection.wait_for_question()
        if connection is None or not (connection.waiting or connection.result is not None):
            connection = WaitingConnection(self._server(), self.known_hosts)  # the last one expired: a new one
            connection.wait_for_question()
        return connection.answer(yes)

    def update(self, *, answer: str | None = None) -> PromptOutcome | None:
        """Answer the question (``"yes"`` or ``"no"``): the waiting connection goes on or is refused."""
        answer = check_choice("answer", check_text("answer", answer), ("yes", "no"))
        if answer is None:
            return self.outcome
        try:
            result = self._decide(answer == "yes")
            decision = result.host_key_decision
            if decision.added_line is not None and decision.new_text is not None:
                self.known_hosts = decision.new_text
            asked = "(you were asked)" if decision.asked else "(no question: the key is known)"
            text = (
                f"{decision.message}\n{asked}\n"
                f"key exchange {result.key_exchange.negotiated.kex}, then sshd offers: {', '.join(result.methods)}"
            )
            self.outcome = PromptOutcome(answer, True, text, self.known_hosts)
        except HandshakeError as error:
            self.outcome = PromptOutcome(answer, False, f"{type(error).__name__}: {error}", self.known_hosts)
        except OSError as error:  # TimeoutError included
            self.outcome = PromptOutcome(answer, False, f"could not reach sshd: {error}", self.known_hosts)
        mark = "went through" if self.outcome.went_through else "refused"
        self.outcome_html.value = (
            f"<b>you said {answer}</b>: the connection {mark}{_pre(self.outcome.text)}"
            f"<b>known_hosts now</b>{_pre(self.known_hosts or '(empty)')}"
        )
        self._open()  # the next connection, with known_hosts as it is now
        return self.outcome


def host_keys_of(sshd: OpenSSHServer) -> dict[str, HostKey]:
    """The server's host keys by type (``ed25519``...), as HostKeys."""
    return {kind: HostKey.from_openssh(line) for kind, line in sshd.host_keys.items() if kind in HOST_KEY_TYPES}


def lookup_status(known_hosts: str, host: str, port: int, key: HostKey) -> LookupStatus:
    """The library's answer for exercise 13's question (what the learner's function must agree with)."""
    return KnownHosts.parse(known_hosts).lookup(host, port, key).status
