"""An annotated hex view: bytes coloured by the field that holds them, and a list to pick a field from.

Theory of operation
-------------------
Every decoder in the library records :class:`~handshake_lib.wire.Span` objects while it reads.  A
*leaf* span (``is_group=False``) is one field (``tcp.source_port``); a *group* span covers a whole
structure (``tcp.options``).  This module only renders spans, it never decodes anything, so what the
learner sees is exactly what the decoder read.

* :func:`render_hex_html` is a pure function from ``(data, spans, selected)`` to an HTML string: an
  offsets column, the hex bytes with a background colour per leaf span, an ASCII column, and the
  selected span (leaf or group) outlined in bold.  Colours are translucent so that the same palette
  reads on JupyterLab's light and dark themes (the text keeps the theme's own colour).
* :func:`render_hex_text` is the plain-text version for the command line's ``--trace``.
* :class:`HexView` is the widget: the HTML, a list of spans indented by depth, and a detail pane.
  Choosing a span (``view.selected = i`` or the list) re-renders the HTML and the detail.

Spans that do not fit the data (negative offsets, past the end) are left out with a short note,
never an exception: a hex view is often shown *because* a decoder found something wrong.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import traitlets

from ..wire import Span

__all__ = ["PALETTE", "HexView", "render_hex_html", "render_hex_text", "span_label", "valid_spans"]

# Translucent fills: on a white page they look like pastel highlights, on a dark page like muted
# tints, and in both the theme's own text colour stays readable on top of them.
PALETTE: tuple[str, ...] = (
    "rgba(31, 119, 180, 0.30)",  # blue
    "rgba(255, 127, 14, 0.32)",  # orange
    "rgba(44, 160, 44, 0.30)",  # green
    "rgba(214, 39, 40, 0.28)",  # red
    "rgba(148, 103, 189, 0.32)",  # purple
    "rgba(140, 86, 75, 0.32)",  # brown
    "rgba(227, 119, 194, 0.32)",  # pink
    "rgba(188, 189, 34, 0.34)",  # olive
    "rgba(23, 190, 207, 0.32)",  # cyan
)

# Longest run of bytes quoted in the detail pane; a certificate would otherwise fill the screen.
_DETAIL_MAX_BYTES = 64

_LIST_STYLE = (
    "<style>.handshake-span-list select{font-family:var(--jp-code-font-family, monospace);font-size:12px}</style>"
)


def valid_spans(data: bytes, spans: Sequence[Span]) -> tuple[list[int], list[int]]:
    """Split span indices into those that lie inside ``data`` and those that do not."""
    inside: list[int] = []
    outside: list[int] = []
    for index, span in enumerate(spans):
        if span.offset >= 0 and span.length >= 0 and span.offset + span.length <= len(data):
            inside.append(index)
        else:
            outside.append(index)
    return inside, outside


def span_label(span: Span, *, indent: str = "\u00a0\u00a0") -> str:
    """``offset len field = meaning``, indented by depth (non-breaking spaces survive HTML)."""
    meaning = f" = {span.meaning}" if span.meaning else ""
    return f"{indent * span.depth}{span.offset:04x} {span.length:>3} {span.name}{meaning}"


def _byte_owners(data: bytes, spans: Sequence[Span], inside: Sequence[int]) -> list[int | None]:
    """For each byte, the index of the leaf span that holds it (the last one wins on overlap)."""
    owners: list[int | None] = [None] * len(data)
    for index in inside:
        span = spans[index]
        if not span.is_group:
            owners[span.offset : span.end] = [index] * span.length
    return owners


def _ascii(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."


def _title(span: Span) -> str:
    meaning = f": {span.meaning}" if span.meaning else ""
    return f"{span.field} (offset {span.offset}, {span.length} bytes){meaning}"


def _problems(data: bytes, spans: Sequence[Span], outside: Sequence[int]) -> list[str]:
    notes: list[str] = []
    if not data:
        notes.append("No bytes to show.")
    if not spans:
        notes.append("No annotated fields for these bytes.")
    if outside:
        names = ", ".join(spans[i].field for i in outside[:3]) + (", ..." if len(outside) > 3 else "")
        notes.append(f"{len(outside)} field(s) lie outside the {len(data)} bytes and are not shown: {names}.")
    return notes


def render_hex_html(
    data: bytes,
    spans: Sequence[Span],
    *,
    selected: int | None = None,
    bytes_per_row: int = 16,
) -> str:
    """Render ``data`` as an annotated hex dump in HTML.

    Each leaf span's bytes get a colour from :data:`PALETTE` and a tooltip naming the field; the span
    at index ``selected`` (leaf or group) is outlined and bold.  Returns a self-contained ``<div>``.
    """
    data = bytes(data)
    bytes_per_row = max(1, int(bytes_per_row))
    inside, outside = valid_spans(data, spans)
    owners = _byte_owners(data, spans, inside)
    colour_of: dict[int, str] = {}
    for index in inside:
        if not spans[index].is_group:
            colour_of[index] = PALETTE[len(colour_of) % len(PALETTE)]
    chosen = spans[selected] if selected is not None and selected in inside else None

    def is_chosen(position: int) -> bool:
        return chosen is not None and chosen.offset <= position < chosen.end

    def runs(start: int, stop: int, text_of_byte) -> str:
        # One <span> per run of bytes with the same owner and selection state keeps the HTML small
        # (a 1500-byte frame is a few hundred elements, not a few thousand).
        parts: list[str] = []
        position = start
        while position < stop:
            owner, picked = owners[position], is_chosen(position)
            end = position + 1
            while end < stop and owners[end] == owner and is_chosen(end) == picked:
                end += 1
            text = html.escape(text_of_byte(position, end))
            style: list[str] = []
            attrs = ""
            if owner is not None:
                style.append(f"background:{colour_of[owner]}")
                attrs = f' title="{html.escape(_title(spans[owner]), quote=True)}" data-span="{owner}"'
            if picked:
                style.append("outline:2px solid currentColor;outline-offset:-1px;font-weight:bold")
            if style:
                parts.append(f'<span style="{";".join(style)}"{attrs}>{text}</span>')
            else:
                parts.append(text)
            position = end
        return "".join(parts)

    def hex_text(start: int, end: int) -> str:
        # The space after each byte belongs to the run, except after the row's last byte, so that a
        # coloured run reads as one block.
        row_stop = min((start // bytes_per_row + 1) * bytes_per_row, len(data))
        return " ".join(f"{b:02x}" for b in data[start:end]) + (" " if end < row_stop else "")

    def ascii_text(start: int, end: int) -> str:
        return "".join(_ascii(b) for b in data[start:end])

    lines: list[str] = []
    for row_start in range(0, len(data), bytes_per_row):
        row_stop = min(row_start + bytes_per_row, len(data))
        padding = "   " * (bytes_per_row - (row_stop - row_start))
        lines.append(
            f'<span style="opacity:0.6">{row_start:04x}</span>  '
            f"{runs(row_start, row_stop, hex_text)}{padding}  "
            f"{runs(row_start, row_stop, ascii_text)}"
        )
    notes = "".join(
        f'<div style="font-style:italic;margin:2px 0">{html.escape(note)}</div>'
        for note in _problems(data, spans, outside)
    )
    body = "\n".join(lines)
    return (
        '<div class="handshake-hexview">'
        f"{notes}"
        '<pre style="font-family:var(--jp-code-font-family, monospace);font-size:12px;line-height:1.5;'
        f'margin:0;padding:4px;color:inherit;background:transparent">{body}</pre>'
        "</div>"
    )


def render_hex_text(data: bytes, spans: Sequence[Span], *, bytes_per_row: int = 16) -> str:
    """A plain-text hex dump with the spans listed below it, for the command line's ``--trace``."""
    data = bytes(data)
    bytes_per_row = max(1, int(bytes_per_row))
    inside, outside = valid_spans(data, spans)
    lines: list[str] = []
    for row_start in range(0, len(data), bytes_per_row):
        row = data[row_start : row_start + bytes_per_row]
        hex_part = " ".join(f"{b:02x}" for b in row).ljust(3 * bytes_per_row - 1)
        lines.append(f"{row_start:04x}  {hex_part}  {''.join(_ascii(b) for b in row)}")
    lines.extend(_problems(data, spans, outside))
    if inside:
        lines.append("")
        for index in inside:
            span = spans[index]
            value = "" if span.is_group else "  " + data[span.offset : span.end][:16].hex(" ")
            if not span.is_group and span.length > 16:
                value += " ..."
            lines.append(f"{span_label(span, indent='  ')}{value}")
    return "\n".join(lines)


def render_span_detail(data: bytes, span: Span | None) -> str:
    """The detail pane's HTML for one span: field, offset, length, bytes and meaning."""
    if span is None:
        return "<i>Choose a field in the list to see its bytes and what they mean.</i>"
    if not (span.offset >= 0 and span.length >= 0 and span.end <= len(data)):
        return f"<i>{html.escape(span.field)} lies outside the {len(data)} bytes.</i>"
    value = data[span.offset : span.end]
    shown = value[:_DETAIL_MAX_BYTES].hex(" ")
    if len(value) > _DETAIL_MAX_BYTES:
        shown += f" ... ({len(value)} bytes)"
    rows = [
        ("field", span.field + (" (group)" if span.is_group else "")),
        ("offset", f"{span.offset} (0x{span.offset:x})"),
        ("length", f"{span.length} byte{'s' if span.length != 1 else ''}"),
        ("bytes", shown or "(none)"),
        ("meaning", span.meaning or "-"),
    ]
    cells = "".join(
        f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">{name}</th>'
        '<td style="font-family:var(--jp-code-font-family, monospace);word-break:break-all">'
        f"{html.escape(text)}</td></tr>"
        for name, text in rows
    )
    return f'<table class="handshake-span-detail" style="color:inherit">{cells}</table>'


class HexView(widgets.VBox):
    """A hex dump of ``data`` annotated with ``spans``, a list of the spans, and a detail pane.

    ``view.selected`` is the index (into ``spans``) of the chosen span, or None.  Setting it, or
    picking in ``view.span_list``, re-renders ``view.hex_html`` and ``view.detail``.
    """

    selected = traitlets.Int(None, allow_none=True)

    def __init__(self, data: bytes, spans: Sequence[Span], title: str = "", *, bytes_per_row: int = 16) -> None:
        self.data = bytes(data)
        self.spans = list(spans)
        self.bytes_per_row = bytes_per_row
        inside, _ = valid_spans(self.data, self.spans)
        self.title_html = widgets.HTML(
            _LIST_STYLE + (f"<b>{html.escape(title)}</b>" if title else "")
        )
        self.hex_html = widgets.HTML(render_hex_html(self.data, self.spans, bytes_per_row=bytes_per_row))
        options = [("(none)", None)] + [(span_label(self.spans[i]), i) for i in inside]
        self.span_list = widgets.Select(
            options=options,
            value=None,
            rows=min(12, max(2, len(options))),
            layout=widgets.Layout(flex="3 1 0%", min_width="24em"),
        )
        # A Select has no font setting; a class and one CSS rule give it the code font, so that the
        # offsets and lengths line up.
        self.span_list.add_class("handshake-span-list")
        # The detail pane gets a fair share of the row: squeezed, it would break field names mid-word.
        self.detail = widgets.HTML(
            render_span_detail(self.data, None), layout=widgets.Layout(flex="2 1 0%", min_width="18em")
        )
        super().__init__(
            children=[
                self.title_html,
                self.hex_html,
                widgets.HBox([self.span_list, self.detail], layout=widgets.Layout(align_items="flex-start")),
            ]
        )
        self._syncing_list = False
        self.span_list.observe(self._on_list_change, names="value")

    def _on_list_change(self, change: dict) -> None:
        if not self._syncing_list:
            self.selected = change["new"]

    @traitlets.observe("selected")
    def _on_selected(self, change: dict) -> None:
        self.select(change["new"])

    def select(self, index: int | None) -> None:
        """Show span ``index`` (or nothing) highlighted; the widget callback, callable directly."""
        if self.selected != index:
            self.selected = index  # comes back here through the observer
            return
        span = self.spans[index] if index is not None and 0 <= index < len(self.spans) else None
        self.hex_html.value = render_hex_html(
            self.data, self.spans, selected=index if span is not None else None, bytes_per_row=self.bytes_per_row
        )
        # An index that names no span shows a message rather than raising from inside a widget
        # callback, where the learner would never see the traceback.
        if index is not None and span is None:
            self.detail.value = f"<i>There is no field number {index}.</i>"
        else:
            self.detail.value = render_span_detail(self.data, span)
        listed = any(value == index for _, value in self.span_list.options)
        self._syncing_list = True
        try:
            self.span_list.value = index if listed else None
        finally:
            self._syncing_list = False
