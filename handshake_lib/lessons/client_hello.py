"""The widgets and glue of lesson 02 (the ClientHello) and of exercise 02's live step.

Everything shown is computed by the library or by a real OpenSSL; this module only arranges it.
:func:`build_client_hello` makes a TLS 1.2 ClientHello from the widget's choices, and
:class:`ClientHelloBuilder` shows it annotated, explains the chosen field
(:mod:`handshake_lib.tls.hello_explain`) and sends it to a live OpenSSL server with :func:`ask_openssl`
(:func:`handshake_lib.net.tls.send_client_hello`).  That server is a :class:`handshake_lib.peers.BackgroundPeer`:
started on the first send, stopped by :meth:`ClientHelloBuilder.stop_server` or when the kernel ends,
so the widget never has to be closed and stays on the page.  :func:`record_view` and
:func:`compare_extensions` show what OpenSSL's own client sends.  :func:`run_learner_client_hello` is
exercise 02's last step: the learner's bytes to OpenSSL, then a whole handshake started with them.

Widget callbacks are plain methods (``update``, ``select``, ``send``) so tests and ``make bench`` call
them.  What a learner types (a server name that is no DNS name) is a short message in the widget, never a
traceback; a value code passes that no control could hold is a ValueError or TypeError before anything changes.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import HandshakeError
from ..hostnames import check_server_name
from ..peers import BackgroundPeer
from ..peers.exercise_runs import HELLO_SERVER_CIPHERS as SERVER_CIPHERS
from ..peers.exercise_runs import LearnerHelloRun, run_learner_client_hello
from ..peers.openssl import OpenSSLServer, openssl_server
from ..peers.openssl_memory import openssl_client_hello, openssl_suite_name
from ..tls.constants import OPENSSL_NAMES, CipherSuite, ExtensionType, ProtocolVersion, name_of
from ..tls.extensions import (
    ECPointFormatsExtension,
    ExtendedMasterSecretExtension,
    Extension,
    RenegotiationInfoExtension,
    ServerNameExtension,
    SessionTicketExtension,
    SignatureAlgorithmsExtension,
    SupportedGroupsExtension,
)
from ..tls.flight import ServerAnswer, handshake_record_spans
from ..tls.hello_explain import (
    EXERCISE_SIGNATURE_SCHEMES,
    FIELD_HELP,
    client_hello_differences,
    explain_field,
    reference_client_hello,
)
from ..tls.messages import ClientHello, decode_handshake
from ..tls.negotiation import DEFAULT_GROUPS, DEFAULT_SIGNATURE_SCHEMES
from ..viz.hexview import HexView
from ..viz.widget import ControlledWidget, check_choices, check_control, check_text

__all__ = [
    "DEFAULT_EXTENSIONS",
    "DEMO_CLIENT_RANDOM",
    "EXERCISE_SIGNATURE_SCHEMES",
    "EXTENSION_CHOICES",
    "FIELD_HELP",
    "SERVER_CIPHERS",
    "SUITE_CHOICES",
    "VERSION_CHOICES",
    "ClientHelloBuilder",
    "LearnerHelloRun",
    "ServerAnswer",
    "ask_openssl",
    "build_client_hello",
    "client_hello_builder",
    "client_hello_differences",
    "compare_extensions",
    "explain_field",
    "lesson_server",
    "openssl_client_hello",
    "record_view",
    "reference_client_hello",
    "run_learner_client_hello",
]

# The suites the ClientHello widget offers (OpenSSL names, as the ssl module and s_client spell them).
SUITE_CHOICES: dict[str, CipherSuite] = {
    name: OPENSSL_NAMES[name]
    for name in (
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES128-SHA256",
        "AES128-SHA",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
}
EXTENSION_CHOICES: tuple[str, ...] = (
    "server_name",
    "signature_algorithms",
    "supported_groups",
    "ec_point_formats",
    "extended_master_secret",
    "renegotiation_info",
    "session_ticket",
)
DEFAULT_EXTENSIONS: frozenset[str] = frozenset(EXTENSION_CHOICES) - {"session_ticket"}
# Each choice's extension, as the library writes it (the argument is the server name).
_EXTENSION_MAKERS: dict[str, Callable[[str], Extension]] = {
    "server_name": lambda name: ServerNameExtension.for_host(check_server_name(name)),  # no trailing dot
    "signature_algorithms": lambda _: SignatureAlgorithmsExtension(list(DEFAULT_SIGNATURE_SCHEMES)),
    "supported_groups": lambda _: SupportedGroupsExtension(list(DEFAULT_GROUPS)),
    "ec_point_formats": lambda _: ECPointFormatsExtension(),
    "extended_master_secret": lambda _: ExtendedMasterSecretExtension(),
    "renegotiation_info": lambda _: RenegotiationInfoExtension(b""),
    "session_ticket": lambda _: SessionTicketExtension(b""),
}
VERSION_CHOICES: dict[str, int] = {
    "TLS 1.2 (0x0303)": ProtocolVersion.TLS1_2,
    "TLS 1.1 (0x0302)": ProtocolVersion.TLS1_1,
    "TLS 1.0 (0x0301)": ProtocolVersion.TLS1_0,
    "SSL 3.0 (0x0300)": ProtocolVersion.SSL3,
}
# The client random of the course's deterministic replays (DESIGN section 6): 0x00..0x1f.
DEMO_CLIENT_RANDOM = bytes(range(32))


# How long a learner waits for the live server at most (connect, send, whole answer).
SERVER_TIMEOUT = 3.0


def lesson_server(*, timeout: float = SERVER_TIMEOUT) -> Any:
    """The lesson's OpenSSL server (fresh keys, :data:`SERVER_CIPHERS`, TLS 1.2) for a ``with`` block."""
    return openssl_server(SERVER_CIPHERS, timeout=timeout)


def ask_openssl(peer: OpenSSLServer, client_hello: bytes, *, timeout: float = SERVER_TIMEOUT) -> ServerAnswer:
    """Send ``client_hello`` exactly as given to a running OpenSSL server; its answer, and its reason if it refused."""
    return peer.send_client_hello(client_hello, timeout=timeout)


# -- lesson 02: build a ClientHello ---------------------------------------------------------------------
def build_client_hello(
    *,
    version: int = ProtocolVersion.TLS1_2,
    suites: Sequence[str | int] = ("AES128-GCM-SHA256",),
    server_name: str | None = "localhost",
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    client_random: bytes | None = None,
) -> ClientHello:
    """A ClientHello with exactly the chosen pieces (unlike ``client_hello_for``, nothing is added).

    ``suites`` are OpenSSL names or code points, in the order offered; ``extensions`` names from
    :data:`EXTENSION_CHOICES`, always written in that order.  Raises ValueError for bad choices.
    """
    chosen = set(extensions)
    unknown = chosen - set(EXTENSION_CHOICES)
    if unknown:
        raise ValueError(f"unknown extension(s) {sorted(unknown)}; choose from {list(EXTENSION_CHOICES)}")
    codes: list[int] = []
    for suite in suites:
        if isinstance(suite, str):
            if suite not in OPENSSL_NAMES:
                raise ValueError(f"unknown cipher suite name {suite!r}")
            codes.append(OPENSSL_NAMES[suite])
        else:
            codes.append(int(suite))
    if not codes:
        raise ValueError("offer at least one cipher suite (an empty list is a decode_error for any server)")
    random = os.urandom(32) if client_random is None else bytes(client_random)
    if len(random) != 32:
        raise ValueError("the client random is exactly 32 bytes")
    if "server_name" in chosen and not server_name:
        raise ValueError("server_name is on, but there is no server name")
    # A server name that is no DNS name (".", "a..b", 64-character labels, non-ASCII, an IP address)
    # raises ValueError here, by handshake_lib.hostnames' rules, with the reason in one line.
    built = [_EXTENSION_MAKERS[name](server_name or "") for name in EXTENSION_CHOICES if name in chosen]
    return ClientHello(
        legacy_version=int(version),
        random=random,
        session_id=b"",
        cipher_suites=codes,
        compression_methods=b"\x00",
        extensions=built,
    )


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


class ClientHelloBuilder(ControlledWidget, widgets.VBox):
    """Build a ClientHello, read it in the hex view, send it to a live OpenSSL server.

    :meth:`update` rebuilds (the controls' callback); :meth:`send` talks to OpenSSL (the button's);
    :meth:`stop_server` stops the server the widget started (the widget stays usable: a later send
    starts a new one).  Pass ``peer`` (a running :class:`handshake_lib.peers.openssl.OpenSSLServer`) to share one.
    """

    def __init__(
        self,
        *,
        version: int = ProtocolVersion.TLS1_2,
        suites: Sequence[str] = ("AES128-GCM-SHA256", "AES128-SHA"),
        server_name: str = "localhost",
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
        demo_random: bool = False,
        peer: OpenSSLServer | None = None,
    ) -> None:
        self.peer = peer
        self.server: BackgroundPeer[OpenSSLServer] = BackgroundPeer(lesson_server)
        # The controls start at rest; the settings go through update(), which checks them first.
        self.version_box = widgets.Dropdown(
            options=list(VERSION_CHOICES.items()), value=ProtocolVersion.TLS1_2, description="version"
        )
        self.suite_box = widgets.SelectMultiple(
            options=list(SUITE_CHOICES), value=(), rows=6, description="suites", layout=widgets.Layout(width="26em")
        )
        self.server_name_box = widgets.Text(value="", description="server name")
        self.extension_boxes = {
            name: widgets.Checkbox(value=False, description=name, indent=False) for name in EXTENSION_CHOICES
        }
        self.random_box = widgets.Checkbox(value=False, description="demo random 00..1f", indent=False)
        self.send_button = widgets.Button(description="Send to OpenSSL", icon="paper-plane")
        self.status = widgets.HTML()
        self.hex_box = widgets.VBox()
        self.explanation = widgets.HTML()
        self.answer_box = widgets.VBox()
        self.hello: ClientHello | None = None
        self.hello_bytes: bytes | None = None
        self.message = ""
        self.explanation_text = ""
        self.answer: ServerAnswer | None = None
        self.answer_text = ""
        self.hexview: HexView | None = None
        controls = widgets.HBox(
            [
                widgets.VBox([self.version_box, self.suite_box, self.server_name_box]),
                widgets.VBox([widgets.HTML("<b>extensions</b>"), *self.extension_boxes.values(), self.random_box]),
            ]
        )
        super().__init__(
            [controls, self.status, self.hex_box, self.explanation, self.send_button, self.answer_box]
        )
        self.watch(self.version_box, self.suite_box, self.server_name_box, self.random_box,
                   *self.extension_boxes.values())
        self.send_button.on_click(lambda _button: self.send())
        self.update(
            version=version, suites=suites, server_name=server_name, extensions=extensions, demo_random=demo_random
        )

    def update(
        self,
        *,
        version: int | None = None,
        suites: Sequence[str] | None = None,
        server_name: str | None = None,
        extensions: Iterable[str] | None = None,
        demo_random: bool | None = None,
    ) -> bytes | None:
        """Set any control, rebuild the hello once, show it; returns its bytes (None if the choices are bad).

        What the controls cannot hold (a version or suite they do not offer, an unknown extension, a
        str where a list is due, a server name that is not a str) raises ValueError or TypeError before
        anything changes.  A server name is text the learner may type, so one that is not a DNS name is
        shown as a message in the widget, as the box shows it.
        """
        version = check_control("version", version, self.version_box)
        suites = check_control("suites", suites, self.suite_box)
        server_name = check_control("server_name", server_name, self.server_name_box)
        extensions = check_choices("extensions", extensions, EXTENSION_CHOICES)
        demo_random = check_control("demo_random", demo_random, self.random_box)
        with self.holding():
            if version is not None:
                self.version_box.value = version
            if suites is not None:
                self.suite_box.value = suites
            if server_name is not None:
                self.server_name_box.value = server_name
            if extensions is not None:
                chosen = set(extensions)
                for name, box in self.extension_boxes.items():
                    box.value = name in chosen
            if demo_random is not None:
                self.random_box.value = demo_random
        try:
            hello = build_client_hello(
                version=self.version_box.value,
                suites=self.suite_box.value,
                server_name=self.server_name_box.value.strip() or None,
                extensions=[name for name, box in self.extension_boxes.items() if box.value],
                client_random=DEMO_CLIENT_RANDOM if self.random_box.value else None,
            )
            raw = hello.to_bytes()
            _, spans = decode_handshake(raw)  # inside: whatever the decoder refuses is a message too, not a raise
        except (ValueError, HandshakeError) as error:
            self.hello, self.hello_bytes, self.message = None, None, str(error)
            self.status.value = f"<i>{html.escape(self.message)}</i>"
            self.send_button.disabled = True
            return None
        self.hello, self.hello_bytes, self.message = hello, raw, ""
        self.status.value = f"ClientHello: {len(raw)} bytes (4 header + {len(raw) - 4} body)"
        self.send_button.disabled = False
        self.hexview = HexView(raw, spans, title="your ClientHello")
        self.hexview.observe(self._on_select, names="selected")
        self.hex_box.children = [self.hexview]
        self._explain(None)
        return raw

    def select(self, field: str) -> str:
        """Choose the first field whose dotted name ends with ``field``; returns its explanation."""
        check_text("field", field)
        if self.hexview is None:
            return ""
        index = next(
            (i for i, s in enumerate(self.hexview.spans) if s.field == field or s.field.endswith("." + field)), None
        )
        self.hexview.select(index)
        self._explain(index)
        return self.explanation_text

    def _on_select(self, change: dict) -> None:
        self._explain(change["new"])

    def _explain(self, index: int | None) -> None:
        span = None
        if self.hexview is not None and index is not None and 0 <= index < len(self.hexview.spans):
            span = self.hexview.spans[index]
        self.explanation_text = explain_field(span)
        self.explanation.value = f"<p>{html.escape(self.explanation_text)}</p>" if self.explanation_text else ""

    def send(self, *, timeout: float = SERVER_TIMEOUT) -> ServerAnswer | None:
        """Send the current hello to the live OpenSSL server and show what it answered."""
        if self.hello_bytes is None:
            return self._show_problem(f"Nothing to send: {self.message}")
        try:
            peer = self.peer if self.peer is not None else self.server.get()
            answer = ask_openssl(peer, self.hello_bytes, timeout=timeout)
        except (OSError, HandshakeError) as error:
            return self._show_problem(f"could not reach the OpenSSL server: {error}")
        self.answer, self.answer_text = answer, answer.summary()
        children: list[widgets.Widget] = [widgets.HTML("<b>OpenSSL answered</b>" + _pre(self.answer_text))]
        shown = next((m for m in answer.messages if m.message is not None), None)
        if shown is not None:
            children.append(HexView(shown.raw, shown.spans, title=f"{shown.name} from OpenSSL"))
        self.answer_box.children = children
        return answer

    def _show_problem(self, text: str) -> None:
        self.answer, self.answer_text = None, text
        self.answer_box.children = [widgets.HTML(f"<i>{html.escape(text)}</i>")]

    def stop_server(self) -> None:
        """Stop the OpenSSL server this widget started (idempotent); the widget stays on the page."""
        self.server.stop()


def client_hello_builder(**settings: Any) -> ClientHelloBuilder:
    """Lesson 02's ClientHello widget (``version``, ``suites``, ``server_name``, ``extensions``, ``demo_random``)."""
    return ClientHelloBuilder(**settings)


def record_view(records: bytes, title: str = "") -> HexView:
    """A hex view of handshake record(s): the record headers, and the messages inside decoded field by field."""
    spans, problem = handshake_record_spans(records)
    return HexView(records, spans, title=title + (f" ({problem})" if problem else ""))


def compare_extensions(ours: ClientHello, theirs: ClientHello) -> str:
    """A two-column listing: which cipher suites and extensions each hello carries."""
    def suites(hello: ClientHello) -> list[str]:
        return [openssl_suite_name(s) for s in hello.cipher_suites]

    def extensions(hello: ClientHello) -> list[str]:
        return [name_of(ExtensionType, e.extension_type) for e in hello.extensions or ()]

    lines = [f"{'':<22}{'yours':<40}OpenSSL's"]
    for label, left, right in (
        ("cipher suites", suites(ours), suites(theirs)),
        ("extensions", extensions(ours), extensions(theirs)),
    ):
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else ""
            b = right[index] if index < len(right) else ""
            lines.append(f"{label if index == 0 else '':<22}{a:<40}{b}")
    return "\n".join(lines)


# -- exercise 02: encode a ClientHello --------------------------------------------------------------
