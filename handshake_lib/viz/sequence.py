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

from .figures import axes_for

__all__ = ["Arrow", "draw_sequence"]

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
) -> Figure:
    """Draw a ladder diagram of ``transmissions`` between ``actors`` and return its figure.

    ``time_scale`` converts the transmissions' times to the axis unit (the default turns seconds into
    milliseconds).  ``compress_idle`` squeezes long stretches where nothing is in flight (a 1 s
    retransmission timeout next to 50 ms delays) so that both stay readable; ticks keep real times.
    The figure grows taller with the number of transmissions so labels do not pile up; ``resize``
    (default: only for a figure made here) says whether to resize a caller's figure too.  With
    ``ax`` the diagram is drawn into that axes (emptied first), which lets a widget reuse one figure
    for every redraw.
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
    start, end = min(ys), max(ys)
    margin = max((end - start) * 0.08, typical * time_scale * 0.3, 0.5)

    for name, x in column.items():
        ax.plot([x, x], [start - margin, end + margin], color="0.45", linewidth=1.2, zorder=1)
        ax.text(x, start - margin, name, ha="center", va="bottom", fontsize=10, fontweight="bold")

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
        ax.add_patch(arrow)
        if lost:
            ax.plot([x_end], [y_end], marker="x", markersize=11, markeredgewidth=2.5, color=LOST_COLOUR, zorder=4)
        # The label sits just above the middle of the arrow, on a box so it stays readable where
        # arrows cross.
        ax.annotate(
            item.label + (" (lost)" if lost else ""),
            ((x_from + x_end) / 2, (y_from + y_end) / 2),
            xytext=(0, 2.5),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7.5,
            color=LOST_COLOUR if lost else "black",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            zorder=5,
            annotation_clip=False,
        )

    last_column = max(column.values(), default=0)
    for time, actor, state_name in state_marks:
        if actor not in column:
            continue
        x = column[actor]
        # States of the leftmost actor go on its left, everyone else's on the right, away from arrows.
        left = x == 0 and last_column > 0
        ax.text(
            x - 0.04 if left else x + 0.04,
            y_of(time),
            state_name,
            ha="right" if left else "left",
            va="center",
            fontsize=7.5,
            color=STATE_COLOUR,
            fontstyle="italic",
            zorder=5,
        )
        ax.plot([x], [y_of(time)], marker="o", markersize=3.5, color=STATE_COLOUR, zorder=4)

    ax.set_xlim(-0.55, last_column + 0.55)
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
    ax.set_yticks([y for y, _ in ticks], [f"{time * time_scale:g}" for _, time in ticks], fontsize=8)
    for gap_start, gap_end in to_axis.squeezed:
        y_mid = (y_of(gap_start) + y_of(gap_end)) / 2
        ax.text(
            (last_column) / 2, y_mid, f"\u2248 {(gap_end - gap_start) * time_scale:.4g} ms idle",
            ha="center", va="center", fontsize=7.5, color="0.4", fontstyle="italic",
        )
        for x in column.values():
            ax.plot([x - 0.05, x + 0.05], [y_mid - margin * 0.08, y_mid + margin * 0.08], color="0.45", lw=1)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    return figure
