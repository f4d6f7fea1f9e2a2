"""Lesson 01's widgets, driven through their callbacks as a notebook would drive them."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons.tcp import (  # noqa: E402
    CaptureExplorer,
    handshake_replay,
    handshake_summary,
    state_machine_picture,
    state_marks,
)
from handshake_lib.tcp.pcap import bundled_capture, read_pcap  # noqa: E402
from handshake_lib.tcp.segment import Flags  # noqa: E402
from handshake_lib.tcp.simulator import simulate_handshake  # noqa: E402
from handshake_lib.tcp.states import diagram_rows  # noqa: E402


def arrows(widget) -> dict[str, list[str]]:
    gids = [p.get_gid() or "" for p in widget.ax.patches]
    return {
        "delivered": [g for g in gids if g.startswith("transmission:")],
        "lost": [g for g in gids if g.startswith("lost:")],
    }


def test_clean_handshake_has_three_arrows_and_no_retransmission():
    widget = handshake_replay(delay_ms=50)
    drawn = arrows(widget)
    assert len(drawn["delivered"]) == 3 and not drawn["lost"]
    assert "retransmissions: 0" in widget.summary_text
    assert "client ESTABLISHED at 100 ms" in widget.summary_text  # SYN out, SYN,ACK back: one RTT
    assert "server ESTABLISHED at 150 ms" in widget.summary_text
    isn = widget.result.isn
    assert f"client {isn['client']}" in widget.summary_text and f"server {isn['server']}" in widget.summary_text
    picture = bytes(widget.image.value)
    assert picture.startswith(b"<?xml") and b"<svg" in picture


def test_dropping_the_syn_shows_a_retransmission_and_one_more_arrow():
    widget = handshake_replay(delay_ms=50)
    result = widget.update(delay_ms=50, drop=(0,))
    drawn = arrows(widget)
    assert drawn["lost"] == ["lost:0"]
    assert len(drawn["delivered"]) == 3
    assert widget.arrow_count == len(result.transmissions) == 4
    summary = widget.summary_text
    assert "retransmissions: 1" in summary
    retransmitted = re.search(r"#1 client SYN seq=(\d+).*at (\d+) ms", summary)
    assert retransmitted, summary
    assert int(retransmitted.group(1)) == result.isn["client"]  # the same SYN, sent again
    assert int(retransmitted.group(2)) == 1000  # after the initial RTO of 1 s (RFC 6298)
    assert "client ESTABLISHED at 1100 ms" in summary
    # The text in the picture says it too.
    assert b"(lost)" in bytes(widget.image.value)


def test_controls_drive_the_same_callback():
    widget = handshake_replay()
    widget.delay_slider.value = 200
    assert widget.result.one_way_delay == pytest.approx(0.2)
    assert "client ESTABLISHED at 400 ms" in widget.summary_text
    widget.drop_select.value = (0, 1)  # the SYN and its first retransmission
    assert "retransmissions: 2" in widget.summary_text
    assert len(arrows(widget)["lost"]) == 2
    widget.simultaneous_box.value = True
    assert widget.result.transmissions[0].sender != widget.result.transmissions[1].sender


def test_simultaneous_open_and_random_loss_match_the_simulator():
    widget = handshake_replay()
    result = widget.update(simultaneous=True, drop=())
    expected = simulate_handshake(one_way_delay=0.05, simultaneous_open=True, seed=0)
    assert [t.label for t in result.transmissions] == [t.label for t in expected.transmissions]
    assert widget.arrow_count == len(expected.transmissions)
    result = widget.update(simultaneous=False, loss_rate=0.5, seed=7)
    expected = simulate_handshake(one_way_delay=0.05, loss_rate=0.5, seed=7)
    assert len(arrows(widget)["lost"]) == sum(t.received_at is None for t in expected.transmissions)
    assert handshake_summary(expected) == widget.summary_text


def test_state_marks_keep_the_last_state_of_each_instant():
    result = simulate_handshake(one_way_delay=0.05)
    marks = state_marks(result)
    at_zero = {(actor, name) for time, actor, name in marks if time == 0}
    assert at_zero == {("client", "SYN-SENT"), ("server", "LISTEN")}
    assert ("client", "ESTABLISHED") in {(actor, name) for _, actor, name in marks}


def test_capture_explorer_shows_the_chosen_segments_fields():
    segments = read_pcap(bundled_capture())
    explorer = CaptureExplorer()
    assert len(explorer.segment_list.options) == len(segments)
    both = Flags.SYN | Flags.ACK
    syn_ack = next(i for i, s in enumerate(segments) if s.segment.flags & both == both)
    view = explorer.select(syn_ack)
    chosen = segments[syn_ack]
    assert view is explorer.hexview and explorer.hex_box.children == (view,)
    assert view.data == chosen.frame
    # The flags field is chosen by default; its detail names the field and what the byte means.
    assert view.spans[view.selected].field == "tcp.flags"
    assert "tcp.flags" in view.detail.value and "SYN" in view.detail.value
    # Choosing the sequence number shows its real value from the capture.
    seq_index = next(i for i, span in enumerate(view.spans) if span.field == "tcp.seq")
    view.selected = seq_index
    assert str(chosen.segment.seq) in view.detail.value
    assert chosen.frame[view.spans[seq_index].offset : view.spans[seq_index].end].hex(" ") in view.detail.value
    # Picking in the list is the same callback.
    explorer.segment_list.value = 0
    assert explorer.hexview.data == segments[0].frame
    assert explorer.select(len(segments) + 5) is None
    assert "no segment number" in explorer.hex_box.children[0].value


def test_capture_explorer_builds_one_hex_view_per_selection(monkeypatch: pytest.MonkeyPatch):
    """select() moves the list, whose observer selects too: each choice must still render only once."""
    import handshake_lib.lessons.tcp as lesson

    built: list[object] = []

    class CountingHexView(lesson.HexView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(lesson, "HexView", CountingHexView)
    explorer = CaptureExplorer()
    assert len(explorer.segments) >= 3
    assert built == [explorer.hexview]  # the constructor shows segment 0 once
    built.clear()

    view = explorer.select(2)  # from code: the list follows without a second render
    assert built == [view] and explorer.segment_list.value == 2
    built.clear()
    explorer.segment_list.value = 1  # a click in the list
    assert built == [explorer.hexview] and explorer.hexview.data == explorer.segments[1].frame
    built.clear()
    view = explorer.select(1, field="tcp.seq")  # the list already shows 1: render for the new field only
    assert built == [view] and view.spans[view.selected].field == "tcp.seq"
    built.clear()
    # After all that, a click still works: the guard was released.
    explorer.segment_list.value = 0
    assert len(built) == 1 and explorer.hexview is built[0]


def test_state_machine_picture_draws_the_table():
    rows = diagram_rows()
    figure = state_machine_picture(["CLOSED", "SYN-SENT", "ESTABLISHED"])
    ax = figure.axes[0]
    gids = [p.get_gid() or "" for p in ax.patches]
    states = {state for row in rows for state in (row[0], row[2])}
    assert sorted(g for g in gids if g.startswith("state:")) == sorted(f"state:{s}" for s in states)
    assert sum(g.startswith("transition:") for g in gids) == len(rows)
    boxes = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("state:")}
    assert boxes["state:SYN-SENT"].get_edgecolor() != boxes["state:LISTEN"].get_edgecolor()
