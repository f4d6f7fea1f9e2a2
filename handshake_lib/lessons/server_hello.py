"""The widgets and glue of lesson 03 (ServerHello and Certificate) and of exercise 03's live step.

Everything shown is computed by the library or by a real OpenSSL; this module only arranges it.

* :class:`NegotiationExplorer`: the client offers, the server supports, one side is preferred; the
  library's rule (:func:`handshake_lib.tls.negotiation.choose_cipher_suite`, or a learner's) next to
  what a real OpenSSL server picks for the same offer
  (:func:`~handshake_lib.peers.openssl_memory.openssl_choice`, memory BIOs, no socket).
* :func:`server_random_demo`: the ServerHello random of OpenSSL servers that speak up to TLS 1.2 and up
  to TLS 1.3, for the downgrade sentinel.
* :class:`CertificateExplorer`: a certificate's DER in the hex view, annotated element by element
  (:func:`handshake_lib.pki.der.der_spans`), beside what ``cryptography.x509`` reads
  (:func:`handshake_lib.pki.fields.certificate_fields`).
* :func:`run_learner_cipher_choice`: exercise 03's last step (:mod:`handshake_lib.peers.exercise_runs`).

Widget callbacks are plain methods (``update``, ``select``) so tests and ``make bench`` call them; a
learner's rule that raises gives a short message in the widget, never a traceback, and a value code
passes that no control could hold is a ValueError or TypeError before anything changes.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..errors import HandshakeFailure
from ..peers.exercise_runs import LearnerChoiceRun, run_learner_cipher_choice
from ..peers.openssl_memory import OpenSSLChoice, openssl_choice, openssl_suite_name
from ..peers.openssl_memory import downgrade_randoms as server_random_demo
from ..pki.der import der_spans
from ..pki.fields import certificate_fields
from ..tls.constants import OPENSSL_NAMES
from ..tls.negotiation import choose_cipher_suite as library_choose_cipher_suite
from ..tls.suites import RSA_SUITE_NAMES
from ..viz.hexview import HexView
from ..viz.widget import ControlledWidget, check_control, check_text
from ..wire import Span

__all__ = [
    "NEGOTIATION_SUITES",
    "CertificateExplorer",
    "LearnerChoiceRun",
    "NegotiationExplorer",
    "NegotiationResult",
    "OpenSSLChoice",
    "certificate_explorer",
    "certificate_fields",
    "der_spans",
    "negotiation_explorer",
    "openssl_choice",
    "run_learner_cipher_choice",
    "server_random_demo",
]

# Suites an OpenSSL server with an RSA certificate can really choose (ECDSA suites would need an EC key).
NEGOTIATION_SUITES: tuple[str, ...] = (
    *RSA_SUITE_NAMES,
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
)


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


# -- how the server chooses ---------------------------------------------------------------------------
@dataclass
class NegotiationResult:
    ours: str  # the library rule's choice (an OpenSSL name), or "" for handshake_failure
    openssl: OpenSSLChoice
    text: str

    @property
    def agree(self) -> bool:
        return not self.openssl.problem and self.ours == self.openssl.chosen_name


class NegotiationExplorer(ControlledWidget, widgets.VBox):
    """Client offers, server supports, who prefers: the library's choice next to OpenSSL's own."""

    def __init__(
        self,
        offered: Sequence[str] = ("AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        supported: Sequence[str] = ("ECDHE-RSA-AES128-GCM-SHA256", "AES128-GCM-SHA256", "AES128-SHA"),
        prefer: str = "server",
        *,
        choose: Callable[..., Any] = library_choose_cipher_suite,
    ) -> None:
        self.choose = choose
        # The controls start at rest; the settings go through update(), which checks them first.
        self.offered_box = widgets.TagsInput(value=[], allowed_tags=list(NEGOTIATION_SUITES), allow_duplicates=False)
        self.supported_box = widgets.TagsInput(value=[], allowed_tags=list(NEGOTIATION_SUITES), allow_duplicates=False)
        self.prefer_box = widgets.ToggleButtons(options=["server", "client"], value="server", description="prefer")
        self.output = widgets.HTML()
        self.result: NegotiationResult | None = None
        super().__init__(
            [
                widgets.HTML("<b>the client offers</b> (drag to reorder; first = most preferred)"),
                self.offered_box,
                widgets.HTML("<b>the server supports</b> (its order of preference)"),
                self.supported_box,
                self.prefer_box,
                self.output,
            ]
        )
        self.watch(self.offered_box, self.supported_box, self.prefer_box)
        self.update(offered=offered, supported=supported, prefer=prefer)

    def update(
        self,
        *,
        offered: Sequence[str] | None = None,
        supported: Sequence[str] | None = None,
        prefer: str | None = None,
    ) -> NegotiationResult:
        """Set any control and recompute both choices (the widget callback).

        A suite not in :data:`NEGOTIATION_SUITES`, a str where a list is due, or a ``prefer`` other than
        ``"server"`` or ``"client"`` raises ValueError or TypeError before anything changes.
        """
        offered = check_control("offered", offered, self.offered_box)
        supported = check_control("supported", supported, self.supported_box)
        prefer = check_control("prefer", prefer, self.prefer_box)
        with self.holding():
            if offered is not None:
                self.offered_box.value = offered
            if supported is not None:
                self.supported_box.value = supported
            if prefer is not None:
                self.prefer_box.value = prefer
        offered_names, supported_names = list(self.offered_box.value), list(self.supported_box.value)
        openssl = openssl_choice(offered_names, supported_names, self.prefer_box.value)
        # The library's rule gets exactly what OpenSSL's server got: the suites as the real client sent them.
        offer = openssl.offered or [OPENSSL_NAMES[n] for n in offered_names]
        try:
            ours = openssl_suite_name(
                self.choose(offer, [OPENSSL_NAMES[n] for n in supported_names], prefer=self.prefer_box.value)
            )
        except HandshakeFailure:
            ours = ""
        except Exception as error:  # noqa: BLE001 - a learner's rule may fail any way; show it, do not raise
            ours = f"error: {type(error).__name__}: {error}"
        lines = [
            "ClientHello.cipher_suites as OpenSSL's client sent them: "
            + (", ".join(openssl_suite_name(s) for s in openssl.offered) or "-"),
            f"the rule ({self.prefer_box.value} preference) picks: {ours or 'nothing in common -> handshake_failure'}",
        ]
        if openssl.problem:
            lines.append(f"OpenSSL: {openssl.problem}")
        elif openssl.chosen is not None:
            lines.append(f"OpenSSL's server picks:  {openssl.chosen_name}")
        else:
            lines.append(f"OpenSSL's server answers with the alert {openssl.alert}")
        result = NegotiationResult(ours, openssl, "\n".join(lines))
        if not openssl.problem:
            lines.append("same choice" if result.agree or (not ours and openssl.alert) else "DIFFERENT")
        result.text = "\n".join(lines)
        self.result = result
        self.output.value = _pre(result.text)
        return result


def negotiation_explorer(**settings: Any) -> NegotiationExplorer:
    """Lesson 03's negotiation widget (``offered``, ``supported``, ``prefer``)."""
    return NegotiationExplorer(**settings)


# -- the certificate, annotated ---------------------------------------------------------------------
class CertificateExplorer(widgets.VBox):
    """A certificate's DER in the hex view, annotated element by element, beside cryptography's reading."""

    def __init__(self, der: bytes, title: str = "certificate") -> None:
        self.der = bytes(der)
        self.spans, self.error = der_spans(self.der)
        try:
            self.fields = certificate_fields(self.der)
            fields_html = "".join(
                f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                f"<td>{html.escape(v)}</td></tr>"
                for k, v in self.fields
            )
            table = widgets.HTML(f"<table style='color:inherit'>{fields_html}</table>")
        except ValueError as error:
            self.fields = []
            table = widgets.HTML(f"<i>cryptography cannot parse it: {html.escape(str(error))}</i>")
        note = f" - stopped: {self.error}" if self.error else ""
        self.hexview = HexView(self.der, self.spans, title=f"{title}: {len(self.der)} bytes of DER{note}")
        super().__init__([table, self.hexview])

    def select(self, field: str) -> Span | None:
        """Choose the element whose dotted path ends with ``field`` (e.g. ``"validity"``, ``"subject"``)."""
        check_text("field", field)
        index = next(
            (i for i, s in enumerate(self.spans) if s.field == field or s.field.endswith("." + field)), None
        )
        self.hexview.select(index)
        return self.spans[index] if index is not None else None


def certificate_explorer(der: bytes, title: str = "certificate") -> CertificateExplorer:
    return CertificateExplorer(der, title)
