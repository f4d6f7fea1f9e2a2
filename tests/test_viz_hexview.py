"""The annotated hex view: colours and titles per leaf span, selection, and bad input."""

from __future__ import annotations

import html
import re

import pytest

from handshake_lib.viz.hexview import PALETTE, HexView, render_hex_html, render_hex_text, span_label
from handshake_lib.wire import Reader, Span

# A TLS record header followed by a two-byte body, decoded by the real Reader so that the spans
# (including the group span and its depth) are exactly what a decoder produces.
RECORD = bytes.fromhex("16 0303 0006") + bytes.fromhex("0100 0002 abcd")


def spans_for_record() -> list[Span]:
    reader = Reader(RECORD)
    with reader.group("record", "TLS record"):
        reader.u8("content_type", {22: "handshake"}.get)
        reader.u16("version", lambda v: "TLS 1.2" if v == 0x0303 else "?")
        reader.u16("length", "6 bytes follow")
        with reader.group("body", "handshake message"):
            reader.u8("msg_type", "client_hello")
            reader.u8("unused", "")
            reader.vector(2, "payload", "two opaque bytes")
    reader.expect_end()
    return reader.spans


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def span_elements(page: str) -> list[tuple[str, str]]:
    """(opening tag, inner text) of every element that marks bytes of a span."""
    return re.findall(r'(<span style="[^"]*"[^>]*data-span="\d+"[^>]*>)([^<]*)</span>', page)


def test_every_leaf_span_has_its_bytes_colour_and_title():
    spans = spans_for_record()
    page = render_hex_html(RECORD, spans)
    elements = span_elements(page)
    leaves = [i for i, s in enumerate(spans) if not s.is_group]
    colours_seen = []
    for index in leaves:
        span = spans[index]
        marked = [(tag, inner) for tag, inner in elements if f'data-span="{index}"' in tag]
        assert marked, f"no element for {span.field}"
        # The hex text of the span's elements (hex column) is exactly its bytes.
        hex_runs = [inner for _, inner in marked if re.fullmatch(r"[0-9a-f ]+", inner.strip())]
        assert " ".join(run.strip() for run in hex_runs) == RECORD[span.offset : span.end].hex(" ")
        tag = marked[0][0]
        colour = re.search(r"background:([^;\"]+)", tag).group(1)
        assert colour in PALETTE
        colours_seen.append(colour)
        title = html.unescape(re.search(r'title="([^"]*)"', tag).group(1))
        assert span.field in title
        if span.meaning:
            assert span.meaning in title
    # Neighbouring fields must not share a colour, or the learner cannot tell where one ends.
    assert all(a != b for a, b in zip(colours_seen, colours_seen[1:], strict=False))
    # Group spans colour nothing by themselves.
    groups = [i for i, s in enumerate(spans) if s.is_group]
    assert not any(f'data-span="{i}"' in page for i in groups)


def test_offsets_and_ascii_columns():
    data = b"GET / HTTP/1.1\r\nHost: x\r\n"
    page = render_hex_html(data, [Span(0, 3, "method", "GET")], bytes_per_row=16)
    lines = text_of(page).strip().splitlines()
    assert lines[0].startswith("0000") and lines[1].startswith("0010")
    assert lines[0].endswith("GET / HTTP/1.1..")
    # The second row is short: its ASCII column still starts where the first row's does.
    assert lines[1].index("Host") == lines[0].index("GET")


def test_field_text_is_html_escaped():
    spans = [Span(0, 2, "a<b>", 'quote " and <script>')]
    page = render_hex_html(b"<>", spans)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page


def test_selected_span_is_outlined_and_only_it():
    spans = spans_for_record()
    version = next(i for i, s in enumerate(spans) if s.field.endswith("version"))
    page = render_hex_html(RECORD, spans, selected=version)
    outlined = [inner for tag, inner in span_elements(page) if "outline" in tag]
    assert " ".join(s.strip() for s in outlined if re.fullmatch(r"[0-9a-f ]+", s.strip())) == "03 03"
    # A group selection outlines every byte it covers.
    body = next(i for i, s in enumerate(spans) if s.field.endswith("body"))
    page = render_hex_html(RECORD, spans, selected=body)
    outlined_hex = [s.strip() for tag, s in span_elements(page) if "outline" in tag and re.fullmatch(r"[0-9a-f ]+", s)]
    assert " ".join(outlined_hex) == RECORD[5:].hex(" ")


@pytest.mark.parametrize(
    "spans, message",
    [
        ([], "No annotated fields"),
        ([Span(3, 10, "too_long", "past the end")], "outside the 4 bytes"),
        ([Span(-1, 1, "negative")], "outside the 4 bytes"),
    ],
)
def test_bad_spans_give_a_message_not_an_exception(spans, message):
    data = b"\x01\x02\x03\x04"
    page = render_hex_html(data, spans, selected=0)
    assert message in text_of(page)
    assert "01 02 03 04" in text_of(page)  # the bytes are still shown
    assert message in render_hex_text(data, spans)
    view = HexView(data, spans)
    view.selected = 0
    assert "outside" in view.detail.value or "no field" in view.detail.value.lower()


def test_text_rendering_lists_spans_below_the_dump():
    spans = spans_for_record()
    text = render_hex_text(RECORD, spans)
    lines = text.splitlines()
    assert lines[0].startswith("0000  16 03 03 00 06 01 00 00 02 ab cd")
    for span in spans:
        assert any(span.name in line and (not span.meaning or span.meaning in line) for line in lines[2:])
    payload = next(line for line in lines if "payload =" in line)
    assert payload.rstrip().endswith("ab cd")


def test_selecting_a_span_updates_the_detail_and_the_list():
    spans = spans_for_record()
    view = HexView(RECORD, spans, title="a record")
    assert "Choose a field" in view.detail.value
    version = next(i for i, s in enumerate(spans) if s.field.endswith("version"))
    view.selected = version
    detail = text_of(view.detail.value)
    assert "record.version" in detail
    assert "offset1 (0x1)" in detail and "length2 bytes" in detail
    assert "TLS 1.2" in detail and "03 03" in detail
    assert view.span_list.value == version
    assert "outline" in view.hex_html.value
    # Picking in the list is the same as setting the index.
    payload = next(i for i, s in enumerate(spans) if s.field.endswith("payload"))
    view.span_list.value = payload
    assert view.selected == payload
    detail = text_of(view.detail.value)
    assert "record.body.payload" in detail and "two opaque bytes" in detail and "ab cd" in detail
    # Choosing nothing clears the outline.
    view.selected = None
    assert "outline" not in view.hex_html.value


def test_list_labels_are_indented_by_depth():
    spans = spans_for_record()
    labels = [label for label, value in HexView(RECORD, spans).span_list.options if value is not None]
    assert len(labels) == len(spans)
    for label, span in zip(labels, spans, strict=True):
        assert label == span_label(span)
        assert len(label) - len(label.lstrip("\u00a0")) == 2 * span.depth
        assert f"{span.offset:04x}" in label and span.name in label


def test_selecting_a_missing_index_shows_a_message():
    view = HexView(RECORD, spans_for_record())
    view.selected = 99
    assert "no field number 99" in view.detail.value
    assert view.span_list.value is None
