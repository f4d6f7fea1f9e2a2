"""A certificate chain as a picture: the path our validator built, each certificate coloured by its checks.

Theory of operation
-------------------
The picture is drawn from a :class:`~handshake_lib.pki.report.ValidationReport` and nothing else, so it
cannot say something the report does not.  The path is a column of boxes, the leaf at the bottom, then
the intermediates, the trust anchor at the top; an arrow from each box to the one above it reads
"signed by".  When no path reached a trust anchor, the top box is a dashed "?": the issuer nobody
could find (missing intermediate, untrusted root), or the one that would have closed a cycle or made
the path too long.

Which checks concern a certificate (:func:`chain_boxes`): a result whose ``certificate`` names it, and
a passing or unchecked result with no ``certificate`` whose reason or one of whose ``details`` lines
starts with its name (the validator writes one line per certificate it looked at, the certificate's
name first: ``'www.shop.example' is signed by 'Issuing CA'``).  A box is red when a check concerning
it failed, green when at least one passed and none failed, grey when none concerns it.  Each failing
check's one-line reason is written beside the box it names, wrapped; a failure that names no
certificate on the path goes under the caption.  The caption gives the host, the purpose, the time
and the verdict; when the builder tried several paths, they are listed under the chain, one a line.

Layout is done in inches (the axes cover the whole figure and one data unit is one inch), so font
sizes and spacing do not depend on the chain's length: the figure grows by one box and one arrow per
certificate (about 0.9 inch each, 10 certificates: about 10 inches).  Long names are cut with an
ellipsis to fit their box, reasons are wrapped to the width beside it (at most
:data:`MAX_REASON_LINES` lines per failing check), at most :data:`MAX_ATTEMPTS_SHOWN` attempts are
listed.  Widths are estimated from the font size (no renderer is asked), with a margin that
``tests/test_viz_chain.py`` checks on the rendered figure.

For tests and widgets every patch has a ``gid``: ``certificate:<i>`` (0 is the leaf) for a box,
``anchor:missing`` for the "?", ``signed-by:<i>`` for the arrow from box ``i`` up to its issuer; texts
have ``name:<i>``, ``role:<i>``, ``reason:<i>``, ``signed-by-label:<i>``, ``caption``, ``verdict``,
``notes`` and ``attempts``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..pki.report import Check, CheckResult, Status, ValidationReport
from .figures import axes_for

__all__ = ["CertificateBox", "STATUS_COLOURS", "chain_boxes", "draw_chain", "unplaced_failures"]

# (face, edge) per status: the same green / red / grey in every picture of lesson 04.
STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.PASS: ("#d8f0d8", "#2c8a2c"),
    Status.FAIL: ("#fbd7d4", "#c62828"),
    Status.NOT_CHECKED: ("#e6e6e6", "#808080"),
}
ARROW_COLOUR = "#4a5a70"
REASON_COLOUR = "#a31515"
MUTED = "#555555"

MAX_REASON_LINES = 4  # per failing check; a longer reason ends in an ellipsis (the report has it whole)
MAX_ATTEMPTS_SHOWN = 8  # the builder's bound is higher; the rest are counted, not listed

FIGURE_WIDTH_IN = 9.0
_LEFT_IN = 0.25
_BOX_W_IN = 3.1
_BOX_H_IN = 0.5
_GAP_IN = 0.4  # between two boxes: the arrow and its "signed by"
_REASON_LEFT_IN = _LEFT_IN + _BOX_W_IN + 0.25
_RIGHT_MARGIN_IN = 0.2
_BOTTOM_IN, _TOP_IN = 0.15, 0.12
# Data units are inches.  An arrow stops a point short of each box: set by its end points, not matplotlib's
# shrinkA/shrinkB, which clip the path with Bezier splitting at every draw (half the picture's cost).
_POINT_IN = 1 / 72

_NAME_FONT = 8.5
_ROLE_FONT = 7.0
_REASON_FONT = 7.5
_CAPTION_FONT = 9.0
_SMALL_FONT = 7.0
# Average glyph width as a fraction of the font size, a little above DejaVu Sans's own (~0.6 for text
# with digits and capitals), so an estimated line is never wider than the drawn one.
_CHAR_WIDTH = 0.6
_LINE_SPACING = 1.25  # matplotlib's default linespacing is 1.2; a little more for the estimate


@dataclass(frozen=True)
class CertificateBox:
    """One certificate of the path as the picture shows it."""

    index: int  # 0: the leaf
    name: str  # as the report names it (quoted)
    role: str  # "leaf", "intermediate", "trust anchor", "leaf and trust anchor"
    status: Status  # the box's colour
    checks: tuple[CheckResult, ...]  # the checks that concern it, in report order

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)


def _anchor_reached(report: ValidationReport) -> bool:
    return bool(report.path) and report.result(Check.PATH).status is Status.PASS


def _concerns(result: CheckResult, name: str) -> bool:
    if result.certificate is not None:
        return result.certificate == name
    if result.status is Status.FAIL:  # a failure about the whole path belongs to no one box
        return False
    return any(line.startswith(name) for line in (result.reason, *result.details))


def chain_boxes(report: ValidationReport) -> list[CertificateBox]:
    """The path's certificates, leaf first, each with the checks that concern it and its colour."""
    reached = _anchor_reached(report)
    boxes = []
    last = len(report.path_names) - 1
    for index, name in enumerate(report.path_names):
        checks = tuple(result for result in report.checks if _concerns(result, name))
        statuses = {result.status for result in checks}
        status = next((s for s in (Status.FAIL, Status.PASS) if s in statuses), Status.NOT_CHECKED)
        if index == last and reached:
            role = "leaf and trust anchor" if index == 0 else "trust anchor"
        else:
            role = "leaf" if index == 0 else "intermediate"
        boxes.append(CertificateBox(index, name, role, status, checks))
    return boxes


def unplaced_failures(report: ValidationReport) -> tuple[CheckResult, ...]:
    """Failures that name no certificate of the path: the picture writes them under its caption."""
    names = set(report.path_names)
    return tuple(f for f in report.failures if f.certificate is None or f.certificate not in names)


# -- text fitting -----------------------------------------------------------------------------------------
def _chars(width_in: float, font_size: float) -> int:
    """How many characters of ``font_size`` fit in ``width_in`` inches (by the estimate above)."""
    return max(4, int(width_in * 72 / (_CHAR_WIDTH * font_size)))


def _line_height(font_size: float) -> float:
    return font_size * _LINE_SPACING / 72


def _shorten(text: str, chars: int) -> str:
    """``text`` on one line of at most ``chars`` characters, an ellipsis marking a cut."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "\u2026"


def _wrap(text: str, chars: int, max_lines: int) -> list[str]:
    """``text`` over at most ``max_lines`` lines of at most ``chars`` characters (long names are broken)."""
    lines = textwrap.wrap(" ".join(text.split()), chars, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _shorten(lines[max_lines - 1] + " " + " ".join(lines[max_lines:]), chars)]
        if not lines[-1].endswith("\u2026"):
            lines[-1] = lines[-1][: chars - 1] + "\u2026"
    return lines


def _display_name(name: str) -> str:
    """A report name without its quotes: ``'www.shop.example'`` is drawn as www.shop.example."""
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "'" else name


def _role_line(box: CertificateBox) -> str:
    failed = [c.check.value for c in box.failures]
    passed = sum(1 for c in box.checks if c.status is Status.PASS)
    if failed:
        return f"{box.role} \u00b7 fails {', '.join(failed)}"
    if passed:
        return f"{box.role} \u00b7 {passed} check{'s' if passed > 1 else ''} pass"
    return f"{box.role} \u00b7 not checked"


# -- the picture --------------------------------------------------------------------------------------------
def draw_chain(report: ValidationReport, *, ax: Axes | None = None) -> Figure:
    """Draw ``report``'s path (leaf at the bottom, trust anchor or "?" at the top) and return the figure.

    With ``ax``, the picture is drawn there and, when ``ax`` is its figure's only axes, the figure is
    resized to fit the chain (a widget that redraws keeps one figure whatever the chain's length).
    """
    boxes = chain_boxes(report)
    reached = _anchor_reached(report)
    reason_width_in = FIGURE_WIDTH_IN - _REASON_LEFT_IN - _RIGHT_MARGIN_IN
    reason_chars = _chars(reason_width_in, _REASON_FONT)
    full_chars = _chars(FIGURE_WIDTH_IN - _LEFT_IN - _RIGHT_MARGIN_IN, _SMALL_FONT)
    caption_chars = _chars(FIGURE_WIDTH_IN - _LEFT_IN - _RIGHT_MARGIN_IN, _CAPTION_FONT)

    reasons = {
        box.index: [line for f in box.failures for line in _wrap(f"{f.check.value}: {f.reason}", reason_chars,
                                                                 MAX_REASON_LINES)]
        for box in boxes
    }  # fmt: skip
    notes = [line for f in unplaced_failures(report)
             for line in _wrap(f"{f.check.value} (whole path): {f.reason}", full_chars, MAX_REASON_LINES)]
    attempt_lines: list[str] = []
    if len(report.attempts) > 1:
        attempt_lines.append(f"path building tried {len(report.attempts)} paths (leaf first):")
        for number, attempt in enumerate(report.attempts[:MAX_ATTEMPTS_SHOWN], start=1):
            names = " <- ".join(_shorten(_display_name(n), 28) for n in attempt.certificates)
            line = f"{number}. {names}: {attempt.outcome}" if names else f"{number}. {attempt.outcome}"
            attempt_lines.append(_shorten(line, full_chars))
        if len(report.attempts) > MAX_ATTEMPTS_SHOWN:
            attempt_lines.append(f"\u2026 and {len(report.attempts) - MAX_ATTEMPTS_SHOWN} more")

    # Vertical layout, bottom up, in inches: attempts, then one slot per box (as tall as the box or its
    # reasons, whichever is taller) with an arrow gap between slots, the "?" if no anchor, notes, caption.
    reason_line = _line_height(_REASON_FONT)
    y = _BOTTOM_IN
    attempts_y = y
    if attempt_lines:
        y += len(attempt_lines) * _line_height(_SMALL_FONT) + 0.2
    centres: list[float] = []
    slots = [max(_BOX_H_IN, len(reasons[box.index]) * reason_line + 0.06) for box in boxes]
    if not reached:
        slots.append(_BOX_H_IN)
    for number, slot in enumerate(slots):
        if number:
            y += _GAP_IN
        centres.append(y + slot / 2)
        y += slot
    y += 0.15
    notes_y = y
    if notes:
        y += len(notes) * _line_height(_SMALL_FONT) + 0.08
    caption_y = y
    y += 2 * _line_height(_CAPTION_FONT) + 0.1
    height_in = y + _TOP_IN

    own_figure = ax is None
    figure, ax = axes_for(ax, (FIGURE_WIDTH_IN, height_in))
    if own_figure or len(figure.axes) == 1:
        figure.set_size_inches(FIGURE_WIDTH_IN, height_in)
        ax.set_position((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, FIGURE_WIDTH_IN)
    ax.set_ylim(0, height_in)
    ax.set_axis_off()

    name_chars = _chars(_BOX_W_IN - 0.2, _NAME_FONT)
    role_chars = _chars(_BOX_W_IN - 0.2, _ROLE_FONT)
    x_mid = _LEFT_IN + _BOX_W_IN / 2
    for box in boxes:
        face, edge = STATUS_COLOURS[box.status]
        centre = centres[box.index]
        ax.add_artist(FancyBboxPatch(
            (_LEFT_IN, centre - _BOX_H_IN / 2), _BOX_W_IN, _BOX_H_IN, boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=face, edgecolor=edge, linewidth=1.6 if box.status is Status.FAIL else 1.1, zorder=3,
            gid=f"certificate:{box.index}",
        ))  # fmt: skip
        ax.text(x_mid, centre + 0.085, _shorten(_display_name(box.name), name_chars), ha="center", va="center",
                fontsize=_NAME_FONT, fontweight="bold", zorder=4, gid=f"name:{box.index}")
        ax.text(x_mid, centre - 0.12, _shorten(_role_line(box), role_chars), ha="center", va="center",
                fontsize=_ROLE_FONT, color=MUTED, zorder=4, gid=f"role:{box.index}")
        if reasons[box.index]:
            ax.text(_REASON_LEFT_IN, centre, "\n".join(reasons[box.index]), ha="left", va="center",
                    fontsize=_REASON_FONT, color=REASON_COLOUR, linespacing=1.2, gid=f"reason:{box.index}")
    if not reached:
        centre = centres[-1]
        face, edge = STATUS_COLOURS[Status.NOT_CHECKED]
        ax.add_artist(FancyBboxPatch(
            (_LEFT_IN, centre - _BOX_H_IN / 2), _BOX_W_IN, _BOX_H_IN, boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=face, edgecolor=edge, linewidth=1.1, linestyle="--", zorder=3, gid="anchor:missing",
        ))  # fmt: skip
        ax.text(x_mid, centre + 0.085, "?", ha="center", va="center", fontsize=_NAME_FONT, fontweight="bold",
                zorder=4, gid="name:missing")
        ax.text(x_mid, centre - 0.12, "no trust anchor reached", ha="center", va="center", fontsize=_ROLE_FONT,
                color=MUTED, zorder=4, gid="role:missing")

    for index in range(len(centres) - 1):
        bottom = centres[index] + _BOX_H_IN / 2
        top = centres[index + 1] - _BOX_H_IN / 2
        to_missing = not reached and index == len(centres) - 2
        ax.add_artist(FancyArrowPatch(
            (x_mid, bottom + _POINT_IN), (x_mid, top - _POINT_IN), arrowstyle="-|>", mutation_scale=12,
            color=ARROW_COLOUR, linewidth=1.1, linestyle="--" if to_missing else "-", shrinkA=0, shrinkB=0, zorder=2,
            gid=f"signed-by:{index}",
        ))  # fmt: skip
        ax.text(x_mid + 0.1, (bottom + top) / 2, "signed by ?" if to_missing else "signed by", ha="left",
                va="center", fontsize=_SMALL_FONT, color=MUTED, gid=f"signed-by-label:{index}")

    if attempt_lines:
        ax.text(_LEFT_IN, attempts_y, "\n".join(attempt_lines), ha="left", va="bottom", fontsize=_SMALL_FONT,
                color=MUTED, linespacing=1.2, gid="attempts")
    if notes:
        ax.text(_LEFT_IN, notes_y, "\n".join(notes), ha="left", va="bottom", fontsize=_SMALL_FONT,
                color=REASON_COLOUR, linespacing=1.2, gid="notes")
    host = _shorten(report.host, 60) if report.host else "-"
    caption = f"host {host} \u00b7 purpose {report.purpose.value} \u00b7 at {report.at:%Y-%m-%d %H:%M:%S} UTC"
    line = _line_height(_CAPTION_FONT)
    ax.text(_LEFT_IN, caption_y + line, _shorten(caption, caption_chars), ha="left", va="bottom",
            fontsize=_CAPTION_FONT, gid="caption")
    verdict = f"verdict: {report.verdict}"
    if report.failures:
        verdict += f" (first failure: {report.failures[0].check.value})"
    ax.text(_LEFT_IN, caption_y, verdict, ha="left", va="bottom", fontsize=_CAPTION_FONT, fontweight="bold",
            color=STATUS_COLOURS[Status.PASS if report.valid else Status.FAIL][1], gid="verdict")
    return figure
