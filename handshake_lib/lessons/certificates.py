"""The widgets and glue of lesson 04 (certificate validation) and of exercise 04's live step.

Everything shown is computed by the library, by ``cryptography``'s verifier or by a real ``openssl
verify``; this module only arranges it.

* :class:`VariantExplorer`: pick one of the course's PKI variants (:data:`handshake_lib.pki.variants.VARIANTS`,
  each a chain with one property broken) and see the chain as a picture
  (:func:`handshake_lib.viz.chain.draw_chain`), our validator's report check by check, and beside it
  what ``cryptography`` (:func:`~handshake_lib.pki.second_opinion.cryptography_opinion`) and OpenSSL
  (:func:`~handshake_lib.peers.openssl_verify.openssl_opinion`) say about the same scenario.
* :func:`compare_variant`: the same comparison as text, for a cell that prints a few variants.
* :func:`run_learner_certificate_checks`: our client against OpenSSL servers whose certificates are
  wrong (:mod:`handshake_lib.peers.exercise_runs`); the lesson runs it with the library's checks.
* :func:`run_mutual_tls`, :func:`run_stapled_ocsp`, :func:`run_short_lived`: the live runs of the
  sections on mutual TLS, stapling and short-lived certificates
  (:mod:`handshake_lib.peers.certificate_runs`); each result's ``summary()`` is what the cell prints.

Speed: scenarios are built once per variant, on first use, from one key ring (so they share keys and
cost a few ms each), at the time the widget was made; the report, both opinions and the picture are
cached per variant too.  Only the variant shown is built: ``openssl verify`` is a process (about
20 ms), run when a variant is first chosen, never for all of them at start.

A name that is not a variant, or anything but a str, is a ValueError or TypeError from
:meth:`VariantExplorer.update` before anything changes; an OpenSSL that is missing or fails shows as
one line in the OpenSSL column, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

import ipywidgets as widgets

from ..errors import HandshakeError
from ..peers.certificate_runs import run_mutual_tls, run_short_lived, run_stapled_ocsp
from ..peers.exercise_runs import CERTIFICATE_CASES, LearnerChecksRun, run_learner_certificate_checks
from ..peers.openssl_verify import openssl_opinion
from ..pki.report import Status, ValidationReport
from ..pki.second_opinion import Opinion, cryptography_opinion
from ..pki.variants import VARIANTS, KeyRing, Scenario, build_variant
from ..viz.chain import draw_chain
from ..viz.figures import axes_for, figure_svg
from ..viz.widget import ControlledWidget, check_choice, check_text

__all__ = [
    "CERTIFICATE_CASES",
    "REVOCATION_VARIANTS",
    "LearnerChecksRun",
    "VariantExplorer",
    "VariantView",
    "compare_variant",
    "run_learner_certificate_checks",
    "run_mutual_tls",
    "run_short_lived",
    "run_stapled_ocsp",
    "variant_explorer",
]

# The variants section 3 of the lesson prints: revocation by CRL, by a stapled OCSP answer, and the
# two ways revocation data can fail to answer.
REVOCATION_VARIANTS: tuple[str, ...] = ("revoked-leaf-crl", "stale-crl", "revoked-ocsp", "ocsp-unknown")

_STATUS_COLOURS = {Status.PASS: "#2e7d32", Status.FAIL: "#c62828", Status.NOT_CHECKED: "#757575"}
_SUMMARY_CHARS = 70  # dropdown labels: the name and the start of the summary


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


def _opinion_line(opinion: Opinion | None, problem: str) -> str:
    if opinion is None:
        return f"could not ask: {problem}"
    if not opinion.has_opinion:
        return f"no opinion: {opinion.detail}"
    verdict = "valid" if opinion.valid else "not valid"
    named = [check for check in opinion.checks if check]
    return f"{verdict}: {opinion.detail}" + (f"  [our check: {', '.join(named)}]" if named else "")


@dataclass(frozen=True)
class VariantView:
    """Everything the explorer shows for one variant (cached per variant)."""

    scenario: Scenario
    report: ValidationReport
    cryptography: Opinion | None
    openssl: Opinion | None
    cryptography_problem: str = ""
    openssl_problem: str = ""

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def first_failure(self) -> str | None:
        failures = self.report.failures
        return failures[0].check.value if failures else None

    @property
    def alert(self) -> str | None:
        """The alert our TLS client sends for this report (the first failing check's), None when valid."""
        error = self.report.error()
        return None if error is None else error.tls_alert.name

    @property
    def as_expected(self) -> bool:
        """Our verdict (and first failing check) is the one the variant was built to get."""
        return self.first_failure == self.scenario.expected.first_failure

    @property
    def text(self) -> str:
        """The comparison as plain text (what :func:`compare_variant` returns)."""
        lines = [
            f"{self.name}: {self.scenario.summary}",
            f"  expected (the profile we teach): {self.scenario.expected}",
            f"  ours:         {self.report.verdict}"
            + (f" ({self.first_failure}; a TLS client sends the alert {self.alert})" if self.first_failure else ""),
            f"  cryptography: {_opinion_line(self.cryptography, self.cryptography_problem)}",
            f"  OpenSSL:      {_opinion_line(self.openssl, self.openssl_problem)}",
        ]
        return "\n".join(lines)


def _view(scenario: Scenario) -> VariantView:
    """Our report and both second opinions on ``scenario``; a validator that cannot answer becomes a line."""
    report = scenario.validate()
    cryptography, cryptography_problem = None, ""
    try:
        cryptography = cryptography_opinion(scenario)
    except Exception as error:  # noqa: BLE001 - a second opinion must never take the lesson down
        cryptography_problem = f"{type(error).__name__}: {error}"
    openssl, openssl_problem = None, ""
    try:
        openssl = openssl_opinion(scenario)
    except (HandshakeError, OSError, ValueError) as error:  # PeerUnavailable, OpenSSLTimeout, bad output
        openssl_problem = f"{type(error).__name__}: {error}"
    return VariantView(scenario, report, cryptography, openssl, cryptography_problem, openssl_problem)


class _Variants:
    """Scenarios and their views, built on first use from one key ring at one time."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.keys = KeyRing()
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.views: dict[str, VariantView] = {}

    def view(self, name: str) -> VariantView:
        found = self.views.get(name)
        if found is None:
            found = self.views[name] = _view(build_variant(name, now=self.now, keys=self.keys))
        return found


def compare_variant(name: str) -> VariantView:
    """One variant, freshly built: our report and both second opinions (print ``.text`` or ``.report.summary()``)."""
    if name is None:
        raise TypeError("variant must be a str, not None")
    check_choice("variant", check_text("variant", name), VARIANTS)
    return _view(build_variant(name))


def _report_table(report: ValidationReport) -> str:
    rows = []
    for result in report.checks:
        colour = _STATUS_COLOURS[result.status]
        rows.append(
            f"<tr><td style='padding-right:1em'>{html.escape(result.check.value)}</td>"
            f"<td style='color:{colour};font-weight:bold;padding-right:1em'>{html.escape(result.status.value)}</td>"
            f"<td>{html.escape(result.reason)}</td></tr>"
        )
    path = " &larr; ".join(html.escape(name) for name in report.path_names) or "-"
    return (
        f"<div><b>our report</b>: {html.escape(report.verdict)}<br><small>path: {path}</small></div>"
        f"<table style='color:inherit;font-size:90%'>{''.join(rows)}</table>"
    )


def _opinions_table(view: VariantView) -> str:
    scenario = view.scenario
    ours = view.report.verdict + (f" ({view.first_failure}: alert {view.alert})" if view.first_failure else "")
    rows = [
        ("expected (the profile we teach)", str(scenario.expected)),
        ("ours (handshake_lib.pki.validate)", ours),
        ("cryptography (x509.verification)", _opinion_line(view.cryptography, view.cryptography_problem)),
        ("OpenSSL (openssl verify / ocsp)", _opinion_line(view.openssl, view.openssl_problem)),
    ]
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>{html.escape(who)}</th>"
        f"<td>{html.escape(says)}</td></tr>"
        for who, says in rows
    )
    note = ""
    if scenario.profiles:
        note = f"<p style='font-size:90%'><b>profiles</b>: {html.escape(scenario.profiles)}</p>"
    return f"<b>second opinions</b><table style='color:inherit;font-size:90%'>{body}</table>{note}"


class VariantExplorer(ControlledWidget, widgets.VBox):
    """A dropdown of the PKI variants; the chosen one's chain, our report, and what cryptography and OpenSSL say."""

    def __init__(self, variant: str = "valid-ecdsa", *, now: dt.datetime | None = None) -> None:
        self.variants = _Variants(now)
        options = []
        for info in VARIANTS.values():
            summary = info.summary
            if len(summary) > _SUMMARY_CHARS:
                summary = summary[: _SUMMARY_CHARS - 3] + "..."
            options.append((f"{info.name}: {summary}", info.name))
        # The control starts at rest; the variant goes through update(), which checks it first.
        self.dropdown = widgets.Dropdown(
            options=options, value="valid-ecdsa", description="variant", layout=widgets.Layout(width="95%")
        )
        self.summary = widgets.HTML()
        self.image = widgets.Image(format="svg+xml", layout=widgets.Layout(max_width="100%"))
        self.report_html = widgets.HTML()
        self.opinions_html = widgets.HTML()
        self.figure, self.ax = axes_for(None, (6.4, 4.0))
        self._pictures: dict[str, bytes] = {}
        self.view: VariantView | None = None
        # The picture is about 9 inches wide: it gets the full width, the report and the opinions share a row.
        report_and_opinions = widgets.HBox(
            [
                widgets.Box([self.report_html], layout=widgets.Layout(width="58%", padding="0 1em 0 0")),
                widgets.Box([self.opinions_html], layout=widgets.Layout(width="42%")),
            ]
        )
        super().__init__([self.dropdown, self.summary, self.image, report_and_opinions])
        self.watch(self.dropdown)
        self.update(variant=variant)

    def forget(self) -> None:
        """Drop the cached scenarios, reports, opinions and pictures (the next view of each is built afresh)."""
        self.variants.views.clear()
        self._pictures.clear()

    def update(self, *, variant: str | None = None) -> VariantView:
        """Choose a variant (one of :data:`~handshake_lib.pki.variants.VARIANTS`) and show it; the widget callback.

        Called with no argument it shows the dropdown's current variant.  Anything but a variant's
        name raises TypeError or ValueError before anything changes.
        """
        variant = check_choice("variant", check_text("variant", variant), VARIANTS)
        with self.holding():
            if variant is not None:
                self.dropdown.value = variant
        name = self.dropdown.value
        view = self.variants.view(name)
        picture = self._pictures.get(name)
        if picture is None:
            draw_chain(view.report, ax=self.ax)
            picture = self._pictures[name] = figure_svg(self.figure)
        self.view = view
        self.image.value = picture
        mark = "as expected" if view.as_expected else "NOT what the variant expects"
        self.summary.value = (
            f"<b>{html.escape(view.name)}</b>: {html.escape(view.scenario.summary)} "
            f"<i>(expected: {html.escape(str(view.scenario.expected))}; ours: {mark})</i>"
        )
        self.report_html.value = _report_table(view.report)
        self.opinions_html.value = _opinions_table(view)
        return view


def variant_explorer(variant: str = "valid-ecdsa") -> VariantExplorer:
    """Lesson 04's variant explorer, showing ``variant`` first."""
    return VariantExplorer(variant)
