"""The widgets and glue of lesson 14 (SSH user authentication) and of exercise 14's live step.

Every message shown crossed a real connection and is decoded by the library (``ssh.messages``,
``ssh.userauth``); every verdict is sshd's own (its replies and its log) or our server's recorded one.
The live runs are in :mod:`handshake_lib.peers.ssh_auth_runs`; this module only arranges them.

* :func:`message_view`: one message of a transcript in the hex view, field by field.
* :class:`PublickeyLoginView`: a key login to sshd, one part at a time: the unsigned query, PK_OK, the
  signed request, and the RFC 4252 section 7 blob the signature covers, session identifier highlighted.
* :class:`OneTimeCodeLogin`: our server wanting a key, then a password, then a 6-digit code (keyboard-
  interactive); the learner picks a key, types the answers and sees each verdict and the transcript.
* :func:`options_table`: authorized_keys option lines, how they parse, our server's and sshd's verdicts.

Speed: a login to sshd or to our server on loopback takes a few tens of ms (Curve25519, one host key);
switching parts of the login view only re-renders.  Bad input (an answer that is not text, a code that
is not six digits, a part that does not exist) is a short message in the widget, or a TypeError/
ValueError from ``update`` before anything changes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets

from ..peers.ssh_auth_runs import (
    DEFAULT_OPTION_LINES,
    LessonKeys,
    MethodsProbe,
    OneTimeCodes,
    OptionVerdict,
    OTPLogin,
    OTPServerPeer,
    PartialSuccessRun,
    PublickeyLogin,
    ReplayRun,
    compare_authorized_keys,
    lesson_auth_sshd,
    lesson_keys,
    lesson_otp_server,
    login_with_key,
    otp_login,
    probe_methods,
    replay_signature,
    run_learner_signed_data,
    run_partial_success,
)
from ..ssh.connection import TranscriptEntry
from ..ssh.userauth import decode_publickey_signed_data
from ..viz.hexview import HexView
from ..viz.widget import ControlledWidget, check_choice, check_text

__all__ = [
    "DEFAULT_OPTION_LINES",
    "PARTS",
    "OneTimeCodeLogin",
    "PublickeyLoginView",
    "compare_authorized_keys",
    "lesson_auth_sshd",
    "lesson_keys",
    "lesson_otp_server",
    "login_with_key",
    "message_view",
    "methods_text",
    "options_table",
    "partial_text",
    "probe_methods",
    "replay_signature",
    "replay_text",
    "run_learner_signed_data",
    "run_partial_success",
    "transcript_text",
]


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


def _message(text: str) -> str:
    return f"<span style='color:#c62828'>{html.escape(text)}</span>"


def message_view(entry: TranscriptEntry, title: str = "") -> HexView:
    """One message as it was decoded (payload, message number first), every field annotated."""
    payload = entry.packet.payload if entry.packet is not None else entry.message.to_bytes()  # type: ignore[union-attr]
    return HexView(payload, entry.message_spans, title=title or f"{entry.direction}: {entry.name}")


def transcript_text(transcript: Sequence[TranscriptEntry], *, from_auth: bool = True) -> str:
    """The messages of a login, one a line (from the service request on, unless ``from_auth`` is False)."""
    lines, started = [], not from_auth
    for entry in transcript:
        started = started or entry.name == "SSH_MSG_SERVICE_REQUEST"
        if started:
            arrow = "->" if entry.direction == "client->server" else "<-"
            lines.append(f"  client {arrow} server  {entry.name}")
    return "\n".join(lines)


def methods_text(probe: MethodsProbe) -> str:
    """What the ``none`` request asked, what sshd answered, and what sshd logged about it."""
    failure = probe.failure.message
    return "\n".join(
        [
            f"our client: USERAUTH_REQUEST user={probe.none_request.message.user!r} method='none'",  # type: ignore[union-attr]
            f"sshd:       USERAUTH_FAILURE can continue: {', '.join(failure.methods)}; "  # type: ignore[union-attr]
            f"partial success: {failure.partial_success}",  # type: ignore[union-attr]
            "sshd's log:",
            *(f"  {line}" for line in probe.sshd_says),
        ]
    )


# -- a publickey login, part by part -----------------------------------------------------------------
PARTS = ("query", "PK_OK", "signed request", "signed blob")


class PublickeyLoginView(ControlledWidget, widgets.VBox):
    """A key login to sshd taken apart: pick a part, see its bytes field by field."""

    def __init__(self, login: PublickeyLogin, part: str = "signed blob") -> None:
        self.login = login
        self.part_buttons = widgets.ToggleButtons(options=list(PARTS), description="part")
        self.note = widgets.HTML()
        self.holder = widgets.VBox()
        self.view: HexView | None = None
        super().__init__([self.part_buttons, self.note, self.holder])
        self.watch(self.part_buttons)
        self.update(part=part)

    def update(self, *, part: str | None = None) -> HexView | None:
        """Show ``part`` (one of :data:`PARTS`); the widget callback."""
        part = check_choice("part", check_text("part", part), PARTS)
        with self.holding():
            if part is not None:
                self.part_buttons.value = part
        part = self.part_buttons.value
        login = self.login
        entry = {"query": login.query, "PK_OK": login.pk_ok, "signed request": login.signed_request}.get(part)
        if part == "signed blob":
            blob = login.signed_data
            if not blob:
                self.note.value, self.holder.children, self.view = (
                    _message("this login sent no publickey request"),
                    (),
                    None,
                )
                return None
            decoded = decode_publickey_signed_data(blob)
            self.view = HexView(blob, decoded.spans, title="what the signature covers (RFC 4252 section 7), rebuilt")
            self.view.select(next(i for i, s in enumerate(decoded.spans) if s.field.endswith(".session_id")))
            self.note.value = (
                f"Never sent as such: both sides build it. It starts with this connection's session identifier "
                f"({len(login.session_id)} bytes, highlighted), then repeats the signed request's fields."
            )
        elif entry is None:
            self.note.value, self.holder.children, self.view = _message(f"this login has no {part}"), (), None
            return None
        else:
            self.view = message_view(entry)
            self.note.value = ""
        self.holder.children = (self.view,)
        return self.view


def replay_text(run: ReplayRun) -> str:
    """The replayed signature's fate: sshd's words, and our check over each connection's blob."""
    said = [line for line in run.replayed.sshd_says if "publickey for" in line]
    return "\n".join(
        [
            f"first connection,  session id {run.first.session_id.hex()[:32]}...: "
            f"{'accepted' if run.first.accepted else 'refused'}",
            f"second connection, session id {run.replayed.session_id.hex()[:32]}...: the same signature sent again: "
            f"{'ACCEPTED' if run.replayed.accepted else 'refused'}",
            f"the signature verifies over the first blob: {run.valid_for_first}; over the second: "
            f"{run.valid_for_second}",
            "sshd's log for the second connection:",
            *(f"  {line}" for line in said),
        ]
    )


# -- keyboard-interactive with a one-time code ------------------------------------------------------------
class OneTimeCodeLogin(ControlledWidget, widgets.VBox):
    """Log in to our server (a key, then a password, then a one-time code) with what the learner types."""

    KEYS = ("my key (learner@laptop)", "someone else's key", "no key")

    def __init__(self, server: OTPServerPeer) -> None:
        self.server = server
        self.user_keys: LessonKeys = server.keys
        self.codes: OneTimeCodes = server.codes
        self.key_choice = widgets.Dropdown(options=list(self.KEYS), description="key")
        self.password_box = widgets.Password(description="password")
        self.code_box = widgets.Text(description="code", placeholder="6 digits")
        self.app = widgets.HTML()
        self.app_button = widgets.Button(description="look at my phone")
        self.login_button = widgets.Button(description="log in", button_style="primary")
        self.output = widgets.HTML()
        self.result: OTPLogin | None = None
        self.app_button.on_click(lambda _: self.show_code())
        self.login_button.on_click(lambda _: self.update())
        super().__init__(
            [
                widgets.HBox([self.key_choice, self.password_box, self.code_box]),
                widgets.HBox([self.app_button, self.app, self.login_button]),
                self.output,
            ]
        )
        self.show_code()

    def show_code(self) -> str:
        """The authenticator app's current code (what the learner reads off their phone)."""
        code = self.codes.current()
        self.app.value = f"<code style='font-size:120%'>app: {code}</code>"
        return code

    def update(
        self, *, key: str | None = None, password: str | None = None, code: str | None = None
    ) -> OTPLogin | None:
        """Log in with ``key`` (one of :attr:`KEYS`), ``password`` and ``code`` (default: the controls' values)."""
        key = check_choice("key", check_text("key", key), self.KEYS)
        password, code = check_text("password", password), check_text("code", code)
        with self.holding():
            for control, value in ((self.key_choice, key), (self.password_box, password), (self.code_box, code)):
                if value is not None:
                    control.value = value
        typed = self.code_box.value.strip()
        if typed and not (len(typed) == 6 and typed.isdigit()):
            self.result = None
            self.output.value = _message("a one-time code is 6 digits: look at your phone (the button)")
            return None
        identity = {self.KEYS[0]: self.user_keys.learner, self.KEYS[1]: self.user_keys.stranger}.get(
            self.key_choice.value
        )
        try:
            server = self.server.get()
        except Exception as error:  # noqa: BLE001 - the server would not start: say so in the widget
            self.output.value = _message(f"could not start the server: {error}")
            return None
        self.result = otp_login(server, key=identity, password=self.password_box.value, code=typed)
        rows = "".join(
            f"<tr><td>{html.escape(sent)}</td><td>{html.escape(answer)}</td><td>{html.escape(why)}</td></tr>"
            for sent, answer, why in self.result.verdicts
        )
        mark = "<b style='color:#2e7d32'>logged in</b>" if self.result.authenticated else (
            f"<b style='color:#c62828'>refused</b>: {html.escape(self.result.error)}"
        )  # fmt: skip
        self.output.value = (
            f"{mark}<table><tr><th>the client sent</th><th>the server answered</th><th>why</th></tr>{rows}</table>"
            f"<b>transcript</b>{_pre(transcript_text(self.result.transcript))}"
        )
        return self.result


# -- partial success and authorized_keys options -----------------------------------------------------------
def partial_text(run: PartialSuccessRun) -> str:
    """Each USERAUTH_FAILURE of the run with its partial_success flag, and sshd's verdict lines."""
    lines = [f"{'logged in' if run.accepted else 'refused: ' + run.error} (methods: {', '.join(run.methods) or '-'})"]
    for entry in run.failures:
        failure = entry.message
        lines.append(
            f"  USERAUTH_FAILURE can continue: {', '.join(failure.methods)}; "  # type: ignore[union-attr]
            f"partial_success={str(failure.partial_success).upper()}"  # type: ignore[union-attr]
        )
    lines.append("sshd's log:")
    lines += [f"  {line}" for line in run.sshd_says if "publickey for" in line]
    return "\n".join(lines)


def options_table(verdicts: Sequence[OptionVerdict]) -> str:
    """One row per line: the options, what they mean to the parser, our server's and sshd's verdicts."""
    rows = []
    for number, verdict in enumerate(verdicts, start=1):
        entry = verdict.parsed
        if entry is None:
            parsed = f"bad line: {verdict.problem}"
        elif entry.unknown_options:
            parsed = f"unknown option(s) {', '.join(entry.unknown_options)}: sshd ignores the whole line"
        else:
            parts = [*entry.flags, *(f"{name}={value!r}" for name, value in entry.values)]
            parsed = ", ".join(parts) or "no options"
        said = [
            line
            for line in verdict.sshd_says
            if f"authorized_keys:{number}:" in line
            and ("permitted" in line or "bad" in line or "options: command" in line)
        ]
        extra = []
        if verdict.forced_command is not None:
            extra.append(f"runs {verdict.forced_command!r} whatever the client asks")
        if verdict.restricted:
            extra.append("no forwarding, no pty")
        ours_extra = "; " + html.escape("; ".join(extra)) if extra and verdict.ours else ""
        rows.append(
            "<tr>"
            f"<td><code>{html.escape(verdict.options or '(none)')}</code></td><td>{html.escape(parsed)}</td>"
            f"<td>{'in' if verdict.ours else 'refused'}{ours_extra}</td>"
            f"<td>{'in' if verdict.sshd else 'refused'}</td>"
            f"<td><small>{html.escape(' / '.join(said))}</small></td>"
            f"<td>{'yes' if verdict.agree else '<b>NO</b>'}</td></tr>"
        )
    return (
        "<table><tr><th>options</th><th>parsed</th><th>our server</th><th>sshd</th><th>sshd's log</th>"
        f"<th>agree</th></tr>{''.join(rows)}</table>"
    )
