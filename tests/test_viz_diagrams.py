"""Sequence and state diagrams: one arrow per transmission or row, lost ones drawn differently."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from handshake_lib.viz.figures import figure_png  # noqa: E402
from handshake_lib.viz.sequence import Arrow, draw_sequence  # noqa: E402
from handshake_lib.viz.statediagram import draw_state_diagram, layered_layout  # noqa: E402

HANDSHAKE_WITH_LOST_SYN = [
    Arrow("client", "server", "SYN seq=100", 0.000, None),
    Arrow("client", "server", "SYN seq=100", 1.000, 1.050),
    Arrow("server", "client", "SYN,ACK seq=300 ack=101", 1.050, 1.100),
    Arrow("client", "server", "ACK ack=301", 1.100, 1.150),
]


def patches_with(ax, prefix: str) -> list:
    return [p for p in ax.patches if (p.get_gid() or "").startswith(prefix)]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_one_arrow_per_transmission_and_lost_ones_differ():
    figure = draw_sequence(HANDSHAKE_WITH_LOST_SYN, title="lost SYN")
    ax = figure.axes[0]
    delivered = patches_with(ax, "transmission:")
    lost = patches_with(ax, "lost:")
    assert [p.get_gid() for p in lost] == ["lost:0"]
    assert sorted(p.get_gid() for p in delivered) == ["transmission:1", "transmission:2", "transmission:3"]
    assert lost[0].get_linestyle() != delivered[0].get_linestyle()
    assert lost[0].get_edgecolor() != delivered[0].get_edgecolor()
    # The lost arrow stops half-way between the two time lines, and a cross marks where it died.
    (x0, _), (x1, _) = lost[0]._posA_posB
    assert x0 == 0 and x1 == 0.5
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 0.5
    # Delivered arrows go from sender's line to receiver's line (client x=0, server x=1).
    ends = {p.get_gid(): p._posA_posB for p in delivered}
    assert ends["transmission:2"][0][0] == 1 and ends["transmission:2"][1][0] == 0
    labels = [a.get_text() for a in ax.texts]
    assert "SYN seq=100 (lost)" in labels and "ACK ack=301" in labels
    assert ax.get_ylabel() == "time (ms)"


def test_time_runs_down_and_ticks_are_real_milliseconds():
    figure = draw_sequence(HANDSHAKE_WITH_LOST_SYN)
    ax = figure.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom > top  # inverted axis: later is lower
    tick_labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "0" in tick_labels and "1000" in tick_labels and "1150" in tick_labels
    # The 1 s wait for the retransmission is squeezed, and says how long it really was.
    assert any("975 ms idle" in text for text in texts(ax))  # from where the lost SYN died (25 ms)
    y_of = {p.get_gid(): p._posA_posB for p in patches_with(ax, "transmission:")}
    assert y_of["transmission:1"][0][1] < y_of["transmission:3"][0][1]


def test_state_annotations_are_drawn_beside_their_line():
    states = [(0.0, "client", "SYN_SENT"), (1.1, "client", "ESTABLISHED"), (1.15, "server", "ESTABLISHED")]
    ax = draw_sequence(HANDSHAKE_WITH_LOST_SYN, states=states).axes[0]
    placed = [(t.get_text(), t.get_position()[0]) for t in ax.texts if t.get_text() in {"SYN_SENT", "ESTABLISHED"}]
    assert ("SYN_SENT", -0.04) in placed
    assert any(name == "ESTABLISHED" and x > 1 for name, x in placed)


def test_redrawing_into_the_same_axes_replaces_the_picture():
    figure = draw_sequence(HANDSHAKE_WITH_LOST_SYN)
    ax = figure.axes[0]
    again = draw_sequence(HANDSHAKE_WITH_LOST_SYN[1:], ax=ax)
    assert again is figure and len(figure.axes) == 1
    assert len(patches_with(ax, "transmission:")) == 3 and not patches_with(ax, "lost:")
    assert figure_png(figure).startswith(b"\x89PNG")


def test_no_transmissions_still_draws_the_actors():
    ax = draw_sequence([]).axes[0]
    assert {"client", "server"} <= set(texts(ax))
    assert not ax.patches


ROWS = [
    ("CLOSED", "passive open", "LISTEN"),
    ("CLOSED", "active open / snd SYN", "SYN_SENT"),
    ("LISTEN", "rcv SYN / snd SYN,ACK", "SYN_RECEIVED"),
    ("SYN_SENT", "rcv SYN,ACK / snd ACK", "ESTABLISHED"),
    ("SYN_SENT", "rcv SYN / snd SYN,ACK", "SYN_RECEIVED"),
    ("SYN_RECEIVED", "rcv ACK of SYN", "ESTABLISHED"),
    ("SYN_SENT", "timeout / snd SYN", "SYN_SENT"),
    ("LISTEN", "close", "CLOSED"),
]


def test_one_box_per_state_and_one_arrow_per_row():
    figure = draw_state_diagram(ROWS)
    ax = figure.axes[0]
    boxes = patches_with(ax, "state:")
    arrows = patches_with(ax, "transition:")
    assert sorted(b.get_gid() for b in boxes) == sorted(
        f"state:{s}" for s in ["CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED"]
    )
    assert all(isinstance(b, FancyBboxPatch) for b in boxes)
    assert sorted(a.get_gid() for a in arrows) == [f"transition:{i}" for i in range(len(ROWS))]
    assert all(isinstance(a, FancyArrowPatch) for a in arrows)
    for _, label, _ in ROWS:
        assert label in texts(ax)
    assert figure_png(figure).startswith(b"\x89PNG")


def test_highlighted_path_is_drawn_in_a_strong_colour():
    ax = draw_state_diagram(ROWS, highlight=["CLOSED", "SYN_SENT", "ESTABLISHED"]).axes[0]
    box = {p.get_gid(): p for p in patches_with(ax, "state:")}
    arrow = {p.get_gid(): p for p in patches_with(ax, "transition:")}
    strong = box["state:SYN_SENT"].get_edgecolor()
    assert box["state:ESTABLISHED"].get_edgecolor() == strong
    assert box["state:LISTEN"].get_edgecolor() != strong
    on_path, off_path = arrow["transition:1"], arrow["transition:2"]
    assert on_path.get_edgecolor() == strong and off_path.get_edgecolor() != strong
    assert on_path.get_linewidth() > off_path.get_linewidth()
    assert arrow["transition:3"].get_edgecolor() == strong  # SYN_SENT -> ESTABLISHED
    assert arrow["transition:4"].get_edgecolor() != strong  # SYN_SENT -> SYN_RECEIVED is not on the path


def test_given_positions_are_used_and_the_layout_is_layered():
    positions = {"CLOSED": (0, 10), "LISTEN": (-3, 8)}
    ax = draw_state_diagram(ROWS, positions=positions).axes[0]
    box = {p.get_gid(): p for p in patches_with(ax, "state:")}
    closed = box["state:CLOSED"]
    assert abs(closed.get_x() + closed.get_width() / 2) < 1e-9
    assert abs(closed.get_y() + closed.get_height() / 2 - 10) < 1e-9
    layout = layered_layout(ROWS)
    assert layout["CLOSED"][1] == 0 and layout["LISTEN"][1] == layout["SYN_SENT"][1] == -1
    assert layout["ESTABLISHED"][1] == -2 and layout["SYN_RECEIVED"][1] == -2
    assert len(set(layout.values())) == len(layout)  # no two states on top of each other


def test_arrows_between_the_same_states_do_not_overlap():
    rows = [("A", "one", "B"), ("A", "two", "B"), ("B", "back", "A")]
    ax = draw_state_diagram(rows).axes[0]
    styles = [a.get_connectionstyle().rad for a in patches_with(ax, "transition:")]
    assert styles[0] != styles[1]
    anchors = {t.get_text(): tuple(t.xy) for t in ax.texts if hasattr(t, "xy")}  # the arrows' labels
    assert len({anchors["one"], anchors["two"], anchors["back"]}) == 3


@pytest.mark.parametrize("role", ["client", "server"])
def test_no_transition_label_covers_a_state(role: str) -> None:
    """Measured on the rendered figure: every label's text box is clear of every state's box (the TLS 1.2
    tables with client certificates have long labels on arcs that pass close to other states)."""
    from handshake_lib.tls.states import diagram_rows as tls_rows

    figure = draw_state_diagram(tls_rows(role))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    states = [patch.get_window_extent(renderer) for patch in patches_with(ax, "state:")]
    labels = [text.get_window_extent(renderer) for text in ax.texts if hasattr(text, "xy")]
    assert states and labels
    for label in labels:
        assert not any(label.overlaps(state) for state in states), label


@pytest.mark.parametrize("role", ["client", "server"])
def test_no_two_transition_labels_overlap(role: str) -> None:
    """Measured on the rendered figure too: the client's two ServerHelloDone flights that leave
    WAIT_CERTIFICATE_STATUS and CERTIFICATE_REQUESTED for WAIT_CHANGE_CIPHER_SPEC drew one label over the other."""
    from handshake_lib.tls.states import diagram_rows as tls_rows

    figure = draw_state_diagram(tls_rows(role))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels = [text.get_window_extent(renderer) for text in figure.axes[0].texts if hasattr(text, "xy")]
    for index, label in enumerate(labels):
        assert not any(label.overlaps(other) for other in labels[index + 1 :]), label


def test_long_transition_labels_wrap_without_losing_words() -> None:
    from handshake_lib.tls.states import diagram_rows as tls_rows
    from handshake_lib.viz.statediagram import _wrap_label

    labels = [label for role in ("client", "server") for _, label, _ in tls_rows(role)]
    labels.append("ServerHelloDone / ClientKeyExchange, ChangeCipherSpec, Finished")
    for label in labels:
        wrapped = _wrap_label(label)
        assert " ".join(wrapped.split()) == " ".join(label.split()), wrapped
        for line in wrapped.splitlines():
            assert len(line) <= 24 or " " not in line.strip(), f"{line!r} of {label!r} is too long"
    assert _wrap_label("rcv SYN / snd SYN,ACK") == "rcv SYN / snd SYN,ACK"  # short labels stay on one line


# -- labels and times (lesson 08 showed overlapping labels and ticks such as 3.44196) -------------------
def test_tick_labels_are_milliseconds_with_few_decimals() -> None:
    from handshake_lib.viz.sequence import milliseconds

    assert milliseconds([1.69362, 2.16389, 4.4547, 4.8284]) == ["1.7", "2.2", "4.5", "4.8"]
    assert milliseconds([3.44196, 3.46]) == ["3.44", "3.46"]  # one decimal would make them equal
    assert milliseconds([0.0, 50.0, 1050.0]) == ["0", "50", "1050"]
    assert milliseconds([0.1234, 0.5]) == ["0.12", "0.50"]
    assert milliseconds([]) == []


def test_crossing_flights_keep_their_labels_apart() -> None:
    # Two flights that cross (the shape of lesson 08's CKE/Finished and NewSessionTicket/Finished), then
    # three quick flights, with long labels and state names beside both lines.
    arrows = [
        Arrow("client", "server", "ClientKeyExchange, ChangeCipherSpec, {Finished}", 0.0040, 0.0042),
        Arrow("server", "client", "NewSessionTicket, ChangeCipherSpec, {Finished}", 0.0041, 0.0043),
        Arrow("client", "server", "{ApplicationData (60 B)}", 0.0044, 0.00445),
        Arrow("server", "client", "{ApplicationData (260 B)}", 0.00445, 0.0045),
        Arrow("client", "server", "{Alert close_notify}", 0.00452, 0.00455),
    ]
    states = [(0.0042, "server", "WAIT_CHANGE_CIPHER_SPEC"), (0.0043, "client", "CONNECTED")]
    figure = draw_sequence(arrows, states=states, compress_idle=False, xlim=(-1.3, 1.75))
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    texts = [t for t in ax.texts if (t.get_gid() or "").startswith(("label:", "state:"))]
    assert len(texts) == len(arrows) + len(states)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for number, box in enumerate(boxes):
        for other in boxes[number + 1 :]:
            assert not box.overlaps(other)
    assert all(len(t.get_text().split(".")[-1]) <= 3 for t in ax.get_yticklabels())
