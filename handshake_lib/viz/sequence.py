"""Sequence (ladder) diagrams: who sent what to whom, and when it arrived.

Theory of operation
-------------------
Each actor (``client``, ``server``) is a vertical time line; time runs downwards, in milliseconds.
Each transmission is an arrow from the sender's line at ``sent_at`` to the receiver's line at
``received_at``, so the slope of an arrow *is* the one-way delay.  A transmission that was lost
(``received_at is None``) is drawn dashed and ends in a cross half-way across: it left the sender and
never arrived.  Optional state annotations (``states=[(time, actor, "SYN_SENT"), ...]``) are written
beside the actor's line at the moment the state was entered.

Transmissions are duck-typed: anything with ``sender``, ``receiver``, ``label``, ``sent_at`` and
``received_at`` (seconds, as the simulators record them) will do; :class:`Arrow` is a ready-made one.

For tests and widgets, every arrow patch carries a ``gid``: ``"transmission:<i>"`` for a delivered
transmission and ``"lost:<i>"`` for a lost one, ``i`` being its index in the input.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from .figures import axes_for

__all__ = ["Arrow", "draw_sequence", "milliseconds"]

DELIVERED_COLOUR = "#1f77b4"
LOST_COLOUR = "#d62728"
STATE_COLOUR = "#2ca02c"


@dataclass(frozen=True)
class Arrow:
    """One transmission, for callers with no simulator result at hand.  Times are in seconds."""

    sender: str
    receiver: str
    label: str
    sent_at: float
    received_at: float | None = None


def _typical_delay(transmissions: Sequence[Any]) -> float:
    """The median one-way delay of delivered transmissions: how far a lost arrow gets drawn."""
    delays = [t.received_at - t.sent_at for t in transmissions if t.received_at is not None]
    delays = [d for d in delays if d > 0]
    if delays:
        return statistics.median(delays)
    times = [t.sent_at for t in transmissions]
    span = max(times) - min(times) if times else 0.0
    return span / 10 if span > 0 else 0.001


class _TimeAxis:
    """A piecewise-linear map from real time to axis time that squeezes idle gaps."""

    def __init__(self, busy: list[tuple[float, float]], typical: float | None) -> None:
        intervals = sorted(busy)
        merged: list[list[float]] = []
        for begin, finish in intervals:
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], finish)
            else:
                merged.append([begin, finish])
        self.squeezed: list[tuple[float, float]] = []
        self._knots: list[tuple[float, float]] = []  # (real time, axis time) at each gap's start and end
        self._origin = merged[0][0] if merged else 0.0
        if typical is None:
            return
        limit, squeezed_to = 4 * typical, 2 * typical
        removed = 0.0
        for before, after in zip(merged, merged[1:], strict=False):
            gap = after[0] - before[1]
            if gap > limit:
                self._knots.append((before[1], before[1] - removed))
                removed += gap - squeezed_to
                self._knots.append((after[0], after[0] - removed))
                self.squeezed.append((before[1], after[0]))

    def __call__(self, time: float) -> float:
        # Before the first knot time is unchanged; after a knot pair it is shifted by what was removed;
        # inside a squeezed gap it is interpolated.
        shift = 0.0
        for (real_a, axis_a), (real_b, axis_b) in zip(self._knots[::2], self._knots[1::2], strict=False):
            if time >= real_b:
                shift = real_b - axis_b
            elif time > real_a:
                return axis_a + (time - real_a) * (axis_b - axis_a) / (real_b - real_a)
        return time - shift


def draw_sequence(
    transmissions: Iterable[Any],
    *,
    actors: Sequence[str] = ("client", "server"),
    title: str = "",
    ax: Axes | None = None,
    states: Iterable[tuple[float, str, str]] = (),
    time_scale: float = 1000.0,
    compress_idle: bool = True,
    resize: bool | None = None,
    xlim: tuple[float, float] | None = None,
    time_range: tuple[float, float] | None = None,
) -> Figure:
    """Draw a ladder diagram of ``transmissions`` between ``actors`` and return its figure.

    ``time_scale`` converts the transmissions' times to the axis unit (the default turns seconds into
    milliseconds).  ``compress_idle`` squeezes long stretches where nothing is in flight (a 1 s
    retransmission timeout next to 50 ms delays) so that both stay readable; ticks keep real times.
    The figure grows taller with the number of transmissions so labels do not pile up; ``resize``
    (default: only for a figure made here) says whether to resize a caller's figure too.  With
    ``ax`` the diagram is drawn into that axes (emptied first), which lets a widget reuse one figure
    for every redraw.  ``xlim`` widens the axes (room for long state names beside the lines);
    ``time_range`` (seconds) makes the time axis span at least that, so diagrams drawn side by side can
    share one scale (lesson 10's TLS 1.2 beside TLS 1.3).

    Labels never overlap: a left-to-right arrow is labelled above its middle, a right-to-left one
    below, so two flights that cross keep their labels apart; then, in time order, a state name that
    touches an earlier one, and a label that touches an earlier label or a state name, is moved down
    until it does not (measured on the drawn text, so it holds for any font).  Tick labels are
    milliseconds with as few decimals as keep neighbouring ticks apart (at most 3).
    """
    items = list(transmissions)
    state_marks = list(states)
    size = (7.2, max(4.2, 1.6 + 0.42 * len(items)))
    if resize is None:
        resize = ax is None
    figure, ax = axes_for(ax, size)
    if resize and tuple(figure.get_size_inches()) != size:
        figure.set_size_inches(size)
    column = {actor: index for index, actor in enumerate(actors)}
    for item in items:
        # An actor we were not told about still gets a line rather than a KeyError.
        for name in (item.sender, item.receiver):
            if name not in column:
                column[name] = len(column)

    typical = _typical_delay(items)
    busy: list[tuple[float, float]] = []
    for item in items:
        arrival = item.received_at if item.received_at is not None else item.sent_at + typical / 2
        busy.append((item.sent_at, max(arrival, item.sent_at)))
    busy.extend((time, time) for time, _, _ in state_marks)
    to_axis = _TimeAxis(busy or [(0.0, 0.0)], typical if compress_idle else None)

    def y_of(time: float) -> float:
        return to_axis(time) * time_scale

    ys = [y_of(t) for interval in busy for t in interval] or [0.0]
    if time_range is not None:
        ys += [y_of(time_range[0]), y_of(time_range[1])]
    start, end = min(ys), max(ys)
    margin = max((end - start) * 0.08, typical * time_scale * 0.3, 0.5)

    for name, x in column.items():
        ax.plot([x, x], [start - margin, end + margin], color="0.45", linewidth=1.2, zorder=1)
        ax.text(x, start - margin, name, ha="center", va="bottom", fontsize=10, fontweight="bold")

    labels: list[Annotation] = []
    state_texts: list[Text] = []
    for index, item in enumerate(items):
        x_from, x_to = column[item.sender], column[item.receiver]
        y_from = y_of(item.sent_at)
        lost = item.received_at is None
        if lost:
            x_end = (x_from + x_to) / 2
            y_end = y_of(item.sent_at + typical / 2)
        else:
            x_end, y_end = x_to, y_of(item.received_at)
        arrow = FancyArrowPatch(
            (x_from, y_from),
            (x_end, y_end),
            arrowstyle="-" if lost else "-|>",
            mutation_scale=14,
            linewidth=1.6,
            linestyle="--" if lost else "-",
            color=LOST_COLOUR if lost else DELIVERED_COLOUR,
            shrinkA=0,
            shrinkB=0,
            zorder=3,
            gid=f"{'lost' if lost else 'transmission'}:{index}",
        )
        ax.add_artist(arrow)  # not add_patch: the limits are set below, and its limit update costs a draw of the arrow
        if lost:
            ax.plot([x_end], [y_end], marker="x", markersize=11, markeredgewidth=2.5, color=LOST_COLOUR, zorder=4)
        # The label sits at the middle of the arrow, above it for one direction and below it for the
        # other (crossing flights keep their labels apart), on a box so it stays readable.
        above = x_end >= x_from
        label = ax.annotate(
            item.label + (" (lost)" if lost else ""),
            ((x_from + x_end) / 2, (y_from + y_end) / 2),
            xytext=(0, 2.5 if above else -2.5),
            textcoords="offset points",
            ha="center",
            va="bottom" if above else "top",
            fontsize=7.5,
            color=LOST_COLOUR if lost else "black",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            zorder=5,
            annotation_clip=False,
            gid=f"label:{index}",
        )
        labels.append(label)

    last_column = max(column.values(), default=0)
    for time, actor, state_name in state_marks:
        if actor not in column:
            continue
        x = column[actor]
        # States of the leftmost actor go on its left, everyone else's on the right, away from arrows.
        left = x == 0 and last_column > 0
        text = ax.text(
            x - 0.04 if left else x + 0.04,
            y_of(time),
            state_name,
            ha="right" if left else "left",
            va="center",
            fontsize=7.5,
            color=STATE_COLOUR,
            fontstyle="italic",
            zorder=5,
            gid=f"state:{actor}:{state_name}",
        )
        state_texts.append(text)
        ax.plot([x], [y_of(time)], marker="o", markersize=3.5, color=STATE_COLOUR, zorder=4)

    ax.set_xlim(*(xlim or (-0.55, last_column + 0.55)))
    ax.set_ylim(end + margin, start - margin * 2.2)  # inverted: time runs downwards
    ax.set_xticks([])
    ax.set_ylabel("time (ms)")
    # Ticks at the moments something happened, labelled with the real time even where idle gaps
    # were squeezed; a gap that was squeezed says how long it really was.
    tick_times = sorted({round(t, 9) for interval in busy for t in interval})
    ticks: list[tuple[float, float]] = []
    min_gap = (end - start + 2 * margin) / 14
    for time in tick_times:
        if not ticks or y_of(time) - ticks[-1][0] >= min_gap:
            ticks.append((y_of(time), time))
    ax.set_yticks([y for y, _ in ticks], milliseconds([time * time_scale for _, time in ticks]), fontsize=8)
    for gap_start, gap_end in to_axis.squeezed:
        y_mid = (y_of(gap_start) + y_of(gap_end)) / 2
        ax.text(
            (last_column) / 2,
            y_mid,
            f"\u2248 {(gap_end - gap_start) * time_scale:.4g} ms idle",
            ha="center",
            va="center",
            fontsize=7.5,
            color="0.4",
            fontstyle="italic",
        )
        for x in column.values():
            ax.plot([x - 0.05, x + 0.05], [y_mid - margin * 0.08, y_mid + margin * 0.08], color="0.45", lw=1)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    # State names first (a nudge keeps one beside its dot), then the labels around them.
    _separate(state_texts)
    _separate(labels, fixed=state_texts, keep_order=True)
    return figure


def milliseconds(values: Sequence[float]) -> list[str]:
    """Tick labels for ``values`` (ms): the fewest decimals (0 to 3) that keep the labels distinct.

    At least one decimal below 10 ms and two below 1 ms, so a short handshake does not read as
    whole milliseconds; ``3.44196`` becomes ``3.4`` or ``3.44``, never more digits than needed.
    """
    if not values:
        return []
    span = max(values) - min(values)
    fewest = 0 if span >= 10 else 1 if span >= 1 else 2
    for decimals in range(fewest, 4):
        labels = [f"{value:.{decimals}f}" for value in values]
        if len(set(labels)) == len(labels):
            break
    return labels


def _renderer(figure: Figure) -> Any:
    get = getattr(figure.canvas, "get_renderer", None)
    return get() if get is not None else None


def _separate(
    texts: Sequence[Text], fixed: Sequence[Text] = (), *, keep_order: bool = False, gap_px: float = 1.5
) -> None:
    """Move ``texts`` down, in time order, until none touches an earlier one or one of ``fixed``.

    ``keep_order``: never leave a text higher than the one before it (labels read in arrow order).
    """
    if not texts:
        return
    figure = texts[0].get_figure()
    renderer = _renderer(figure)
    if renderer is None:  # a backend that cannot measure text: leave the texts where they are
        return
    points_per_pixel = 72.0 / figure.dpi
    taken: list[Bbox] = [text.get_window_extent(renderer) for text in fixed]
    previous: Bbox | None = None
    # In time order, by the moment each text belongs to (an arrow's middle, a state's dot), so labels
    # keep the order of their arrows.  Display y grows upwards and time runs downwards.
    for text in sorted(texts, key=lambda text: -_anchor_y(text)):
        for _ in range(4 * len(taken) + 4):
            box = text.get_window_extent(renderer)
            hit = [other for other in taken if _overlap(box, other, gap_px)]
            if keep_order and previous is not None and box.y1 > previous.y0 - gap_px:
                hit.append(previous)
            if not hit:
                break
            shift = box.y1 - min(other.y0 for other in hit) + gap_px
            if isinstance(text, Annotation):  # an arrow's label: its offset from the arrow, in points
                x, y = text.xyann
                text.xyann = (x, y - shift * points_per_pixel)
            else:  # a state name, placed in data coordinates
                x, y = text.get_position()
                to_data = text.get_transform().inverted()
                text.set_y(to_data.transform((0, box.y0 - shift))[1] - to_data.transform((0, box.y0))[1] + y)
        previous = text.get_window_extent(renderer)
        taken.append(previous)


def _anchor_y(text: Text) -> float:
    """The display y of the point a text belongs to."""
    if isinstance(text, Annotation):
        return float(text.axes.transData.transform(text.xy)[1])
    return float(text.get_transform().transform(text.get_position())[1])


def _overlap(a: Bbox, b: Bbox, gap: float) -> bool:
    return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap
