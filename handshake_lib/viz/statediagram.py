"""State diagrams drawn from a state table's rows.

Theory of operation
-------------------
A protocol's state machine lives in one table (DESIGN.md, rule 2); its module can list the table as
``(source, label, target)`` rows, and this module draws those rows, so the picture cannot drift from
the code.  States are rounded boxes; each row is a curved arrow with its label at the middle of the
curve; a row whose source is its target is a loop above the box.  Two rows between the same pair of
states bend by different amounts so that neither hides the other.

Positions come from the caller (``positions={"LISTEN": (x, y), ...}``, y up) or, when there are none,
from a layered layout: a state's layer is its distance from the first row's source, so the diagram
reads top-down in handshake order.

``highlight`` is a path of state names (for example the states a simulated client went through):
those boxes and the rows between consecutive states on the path are drawn in a strong colour.

Boxes are ``FancyBboxPatch`` objects with ``gid="state:<name>"`` and arrows ``FancyArrowPatch`` objects
with ``gid="transition:<row index>"``, so tests and widgets can find them in ``ax.patches``.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from .figures import axes_for

__all__ = ["draw_state_diagram", "layered_layout", "states_of"]

BOX_FACE = "#eef3fb"
BOX_EDGE = "#4a5a70"
ARROW_COLOUR = "#6b7785"
HIGHLIGHT = "#d62728"
HIGHLIGHT_FACE = "#fde3e1"

_FONT_SIZE = 8.5
_LABEL_FONT_SIZE = 6.8
# Average glyph width of the default sans-serif font, as a fraction of the font size: good enough to
# size a box around a state name without asking a renderer (which would cost a draw).
_CHAR_WIDTH = 0.62


def states_of(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    """Every state named in ``rows``, in order of first appearance."""
    seen: dict[str, None] = {}
    for source, _, target in rows:
        seen.setdefault(source)
        seen.setdefault(target)
    return list(seen)


def layered_layout(rows: Sequence[tuple[str, str, str]]) -> dict[str, tuple[float, float]]:
    """Place states in layers by breadth-first distance from the first row's source (y decreasing)."""
    states = states_of(rows)
    successors: dict[str, list[str]] = defaultdict(list)
    for source, _, target in rows:
        if target != source:
            successors[source].append(target)
    layer: dict[str, int] = {}
    for root in states:  # states unreachable from the first one start their own layering
        if root in layer:
            continue
        layer[root] = 0 if not layer else max(layer.values()) + 1
        queue = deque([root])
        while queue:
            state = queue.popleft()
            for successor in successors[state]:
                if successor not in layer:
                    layer[successor] = layer[state] + 1
                    queue.append(successor)
    by_layer: dict[int, list[str]] = defaultdict(list)
    for state in states:
        by_layer[layer[state]].append(state)
    positions: dict[str, tuple[float, float]] = {}
    for depth, members in by_layer.items():
        for index, state in enumerate(members):
            positions[state] = (index - (len(members) - 1) / 2, -float(depth))
    return positions


def _wrap_label(label: str, width: int = 24) -> str:
    """Break a long label over lines, preferring the "received / sent" split and the commas in a flight.

    A label like "ServerHelloDone / ClientKeyExchange, ChangeCipherSpec, Finished" on one line runs
    off the figure; on three lines it stays beside its arrow.
    """
    if len(label) <= width:
        return label
    received, slash, sent = label.partition(" / ")
    head, items = (received + " /", sent.split(", ")) if slash else ("", label.split(", "))
    lines: list[str] = [head] if head else []
    current = ""
    for index, item in enumerate(items):
        piece = item + ("," if index < len(items) - 1 else "")
        if current and len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    lines.append(current)
    return "\n".join(textwrap.fill(line, width, break_long_words=False) for line in lines)


def _label_extent(
    anchor: tuple[float, float], normal: tuple[float, float], label: str, dpi: float
) -> tuple[float, float, float, float]:
    """Where the label drawn at ``anchor`` will sit, in display pixels (left, bottom, right, top), estimated
    as :func:`draw_state_diagram` places it: beside a mostly vertical arrow, above or below the others."""
    lines = _wrap_label(label).split("\n")
    width = max(len(line) for line in lines) * _CHAR_WIDTH * _LABEL_FONT_SIZE * dpi / 72
    height = len(lines) * 1.2 * _LABEL_FONT_SIZE * dpi / 72
    length = (normal[0] ** 2 + normal[1] ** 2) ** 0.5 or 1.0
    nx, ny = normal[0] / length, normal[1] / length
    x, y = anchor
    if abs(nx) > 0.6:  # beside the arrow
        left = x if nx > 0 else x - width
        return left, y - height / 2, left + width, y + height / 2
    bottom = y if ny > 0 else y - height
    return x - width / 2, bottom, x + width / 2, bottom + height


def _clear_label_point(
    p1: tuple[float, float],
    control: tuple[float, float],
    p2: tuple[float, float],
    normal: tuple[float, float],
    label: str,
    extents: Mapping[str, tuple[float, float, float, float]],
    dpi: float,
    labels: Sequence[tuple[float, float, float, float]] = (),
) -> tuple[float, float]:
    """A point on the quadratic Bezier (p1, control, p2) where ``label`` covers no state box: the middle
    if it is clear, else the clear point nearest the middle, else the middle after all.  Where one exists,
    a point where it covers none of the ``labels`` already placed either (rows that leave one state for
    the same place, as the TLS client's two ServerHelloDone flights do) is preferred."""
    def point(t: float) -> tuple[float, float]:
        return (
            (1 - t) ** 2 * p1[0] + 2 * t * (1 - t) * control[0] + t * t * p2[0],
            (1 - t) ** 2 * p1[1] + 2 * t * (1 - t) * control[1] + t * t * p2[1],
        )

    def clear(anchor: tuple[float, float], others: Iterable[tuple[float, float, float, float]]) -> bool:
        left, bottom, right, top = _label_extent(anchor, normal, label, dpi)
        return not any(
            left < b_right and b_left < right and bottom < b_top and b_bottom < top
            for b_left, b_bottom, b_right, b_top in others
        )

    steps = (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.2, 0.8)
    for avoid in ([*extents.values(), *labels], list(extents.values())):
        for t in steps:
            if not label or clear(point(t), avoid):
                return point(t)
    return point(0.5)


def draw_state_diagram(
    rows: Iterable[tuple[str, str, str]],
    *,
    positions: Mapping[str, tuple[float, float]] | None = None,
    highlight: Sequence[str] | str = (),
    ax: Axes | None = None,
) -> Figure:
    """Draw the state machine given by ``(source, label, target)`` rows and return its figure."""
    rows = [(str(source), str(label), str(target)) for source, label, target in rows]
    states = states_of(rows)
    layout = dict(layered_layout(rows))
    if positions:
        layout.update({state: (float(x), float(y)) for state, (x, y) in positions.items() if state in layout})
    path = [highlight] if isinstance(highlight, str) else list(highlight)
    path_states = set(path)
    path_steps = set(zip(path, path[1:], strict=False))

    xs = [layout[s][0] for s in states] or [0.0]
    ys = [layout[s][1] for s in states] or [0.0]
    x_range = (max(xs) - min(xs)) or 1.0
    y_range = (max(ys) - min(ys)) or 1.0
    # The figure grows with the number of columns and rows of states (not with the units the caller's
    # positions happen to use), so that ~11 states and ~20 labels stay legible.
    columns, levels = len({round(x, 6) for x in xs}), len({round(y, 6) for y in ys})
    width_in = min(15.0, max(6.0, 2.6 * columns + 2.4))
    height_in = min(12.0, max(3.5, 1.0 * levels + 1.2))
    own_figure = ax is None
    figure, ax = axes_for(ax, (width_in, height_in))
    if own_figure:
        ax.set_position((0.01, 0.01, 0.98, 0.98))
    figure_w, figure_h = figure.get_size_inches()
    axes_box = ax.get_position()
    axes_w_in, axes_h_in = figure_w * axes_box.width, figure_h * axes_box.height
    # Margins are fixed in inches (room for half a box, and a loop above the top row), turned into
    # data units: m = m_in * (range + 2m) / axes_size.
    x_margin_in, y_margin_in = 1.35, 0.45
    x_margin = x_margin_in * x_range / max(axes_w_in - 2 * x_margin_in, 0.5)
    y_margin = y_margin_in * y_range / max(axes_h_in - 2 * y_margin_in, 0.5)
    ax.set_xlim(min(xs) - x_margin, max(xs) + x_margin)
    ax.set_ylim(min(ys) - y_margin, max(ys) + y_margin)
    ax.set_axis_off()
    data_per_in_x = (x_range + 2 * x_margin) / axes_w_in
    data_per_in_y = (y_range + 2 * y_margin) / axes_h_in

    boxes: dict[str, FancyBboxPatch] = {}
    box_size: dict[str, tuple[float, float]] = {}
    for state in states:
        x, y = layout[state]
        text_w_in = len(state) * _CHAR_WIDTH * _FONT_SIZE / 72
        w = (text_w_in + 0.18) * data_per_in_x
        h = (_FONT_SIZE / 72 + 0.16) * data_per_in_y
        on_path = state in path_states
        box = FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle=f"round,pad=0,rounding_size={min(w, h) * 0.3}",
            facecolor=HIGHLIGHT_FACE if on_path else BOX_FACE,
            edgecolor=HIGHLIGHT if on_path else BOX_EDGE,
            linewidth=2.2 if on_path else 1.1,
            zorder=3,
            gid=f"state:{state}",
        )
        ax.add_patch(box)
        ax.text(
            x, y, state, ha="center", va="center", fontsize=_FONT_SIZE, zorder=4,
            fontweight="bold" if on_path else "normal", color=HIGHLIGHT if on_path else "black",
        )
        boxes[state] = box
        box_size[state] = (w, h)

    to_display = ax.transData.transform
    from_display = ax.transData.inverted().transform
    # Display-space rectangles of the boxes, slightly inflated: an arrow should not graze a box it
    # does not start or end at.
    extents: dict[str, tuple[float, float, float, float]] = {}
    for state in states:
        (left, bottom), (right, top) = to_display(
            [(layout[state][0] - box_size[state][0] / 2, layout[state][1] - box_size[state][1] / 2),
             (layout[state][0] + box_size[state][0] / 2, layout[state][1] + box_size[state][1] / 2)]
        )
        extents[state] = (left - 4, bottom - 4, right + 4, top + 4)

    def collisions(p1, p2, rad: float, ends: tuple[str, str]) -> int:
        control = ((p1[0] + p2[0]) / 2 + rad * (p2[1] - p1[1]), (p1[1] + p2[1]) / 2 - rad * (p2[0] - p1[0]))
        hits = 0
        for step in range(1, 20):
            t = step / 20
            px = (1 - t) ** 2 * p1[0] + 2 * t * (1 - t) * control[0] + t * t * p2[0]
            py = (1 - t) ** 2 * p1[1] + 2 * t * (1 - t) * control[1] + t * t * p2[1]
            hits += sum(
                1
                for state, (left, bottom, right, top) in extents.items()
                if state not in ends and left <= px <= right and bottom <= py <= top
            )
        return hits

    placed: list[tuple[float, float, float, float]] = []  # display extents of the arcs' labels drawn so far
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    loop_count: dict[str, int] = defaultdict(int)
    for index, (source, label, target) in enumerate(rows):
        strong = (source, target) in path_steps
        colour = HIGHLIGHT if strong else ARROW_COLOUR
        style = {
            "arrowstyle": "-|>",
            "mutation_scale": 11,
            "linewidth": 2.0 if strong else 0.9,
            "color": colour,
            "zorder": 2.5 if strong else 2,
            "gid": f"transition:{index}",
        }
        if source == target:
            x, y = layout[source]
            w, h = box_size[source]
            turn = loop_count[source]
            loop_count[source] += 1
            top = y + h / 2
            reach = h * (1.6 + 0.9 * turn)
            loop = Path(
                [(x - w / 4, top), (x - w / 2, top + reach), (x + w / 2, top + reach), (x + w / 4, top)],
                [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4],
            )
            ax.add_patch(FancyArrowPatch(path=loop, **style))
            label_xy, normal = to_display([(x, top + reach * 0.75)])[0], (0.0, 1.0)
        else:
            # Rows between the same pair in the same direction bend more and more; the opposite
            # direction bends the other way by itself, since arc3's bend is relative to the direction.
            # An arc that would cross another state's box bends further until it goes round it.
            turn = pair_count[(source, target)]
            pair_count[(source, target)] += 1
            base = 0.18 + 0.22 * turn
            start, end = layout[source], layout[target]
            p1, p2 = to_display([start, end])
            candidates = [base, base + 0.15, base + 0.3, base + 0.45, -(base + 0.15), -(base + 0.3)]
            rad = min(candidates, key=lambda r: (collisions(p1, p2, r, (source, target)), candidates.index(r)))
            ax.add_patch(
                FancyArrowPatch(
                    start, end, patchA=boxes[source], patchB=boxes[target],
                    connectionstyle=f"arc3,rad={rad}", shrinkA=1, shrinkB=1, **style,
                )
            )
            # arc3 is a quadratic Bezier built in display space: control point = midpoint +
            # rad * (dy, -dx).  The label goes at the curve's own midpoint (half-way to the control
            # point, the bulge) unless its text would cover a state there; then it slides along the curve.
            (x1, y1), (x2, y2) = p1, p2
            control = ((x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1))
            normal = (rad * (y2 - y1), -rad * (x2 - x1))
            label_xy = _clear_label_point((x1, y1), control, (x2, y2), normal, label, extents, figure.dpi, placed)
            placed.append(_label_extent(label_xy, normal, label, figure.dpi))
        if label:
            # The label sits just outside the bulge, so that the two arrows of a back-and-forth pair
            # (which bulge to opposite sides) keep their labels apart.
            length = (normal[0] ** 2 + normal[1] ** 2) ** 0.5 or 1.0
            nx, ny = normal[0] / length, normal[1] / length
            mostly_vertical_arrow = abs(nx) > 0.6
            ax.annotate(
                _wrap_label(label),
                tuple(from_display(label_xy)),
                xytext=(3 * nx, 3 * ny),
                textcoords="offset points",
                ha=("left" if nx > 0 else "right") if mostly_vertical_arrow else "center",
                va="center" if mostly_vertical_arrow else ("bottom" if ny > 0 else "top"),
                fontsize=_LABEL_FONT_SIZE,
                color=HIGHLIGHT if strong else "#333333",
                zorder=2.8,  # under the state boxes: a long label never hides a state's name
                bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                annotation_clip=False,
            )
    return figure
