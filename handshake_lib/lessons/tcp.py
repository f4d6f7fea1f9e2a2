"""The widgets of lesson 01 (the TCP three-way handshake), built on :mod:`handshake_lib.tcp`.

Theory of operation
-------------------
Each widget is an ``ipywidgets`` box that owns its controls and its output, and exposes its callback
as a plain method, so that a test or a benchmark can drive it without a browser:

* :class:`HandshakeReplay` (``handshake_replay()``): sliders for the one-way delay, a list of
  transmissions to lose, a random loss rate and its seed, and a checkbox for simultaneous open.  Every
  change calls :meth:`HandshakeReplay.update`, which re-runs the (virtual-time, microseconds-fast)
  simulator, redraws the ladder diagram into the *same* figure and writes it as SVG with the text
  left as text.  Reusing the figure, skipping pyplot and letting the browser draw the glyphs is what
  keeps a redraw well under 50 ms (see :mod:`handshake_lib.viz.figures` for the numbers).
* :class:`CaptureExplorer` (``capture_explorer()``): the segments of a real capture (by default the
  one recorded on loopback and shipped in ``handshake_lib/data``), and a hex view of the chosen frame
  annotated by the library's own decoders.  :meth:`CaptureExplorer.select` is its callback.
* :func:`state_machine_picture`: RFC 9293 Figure 5 drawn from the state table itself.

Nothing here simulates or decodes: it only arranges what :mod:`handshake_lib.tcp` computed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..tcp.pcap import CapturedSegment, bundled_capture, read_pcap
from ..tcp.simulator import HandshakeResult, simulate_handshake
from ..tcp.states import DIAGRAM_POSITIONS, diagram_rows
from ..viz.figures import axes_for, figure_svg
from ..viz.hexview import HexView
from ..viz.sequence import draw_sequence
from ..viz.statediagram import draw_state_diagram
from ..viz.widget import ControlledWidget, check_control, check_index, check_numbers

__all__ = [
    "CaptureExplorer",
    "HandshakeReplay",
    "capture_explorer",
    "handshake_replay",
    "handshake_summary",
    "state_machine_picture",
    "state_marks",
]

# How many transmissions the "lose" list offers: a handshake with a couple of retransmissions.
_DROPPABLE = 8
# The controls' ranges, which update() also holds code to (docs/limits.md).
MAX_DELAY_MS = 500
MAX_LOSS_RATE = 0.9
MAX_SEED = 2**31 - 1


def _ms(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds * 1000:g} ms"


def state_marks(result: HandshakeResult) -> list[tuple[float, str, str]]:
    """The timeline as ``(time, endpoint, state)`` marks for a ladder diagram.

    When an endpoint passes through several states at the same instant (CLOSED then LISTEN at 0)
    only the last is kept: they would be written on top of each other.
    """
    last: dict[tuple[float, str], str] = {}
    for time, endpoint, state in result.timeline:
        last[(time, endpoint)] = getattr(state, "value", str(state))
    return [(time, endpoint, name) for (time, endpoint), name in last.items()]


def handshake_summary(result: HandshakeResult) -> str:
    """A few lines a learner can check against the picture: ISNs, ESTABLISHED times, losses, resends."""
    lines = [
        f"ISNs: client {result.isn['client']}, server {result.isn['server']}",
        f"one-way delay {_ms(result.one_way_delay)} (RTT {_ms(result.rtt)})",
    ]
    for endpoint in ("client", "server"):
        lines.append(f"{endpoint} ESTABLISHED at {_ms(result.established_at.get(endpoint))}")
    lost = [t for t in result.transmissions if t.received_at is None]
    lines.append(
        f"lost: {len(lost)}"
        + "".join(f"\n  #{t.index} {t.sender} {t.label} (sent at {_ms(t.sent_at)})" for t in lost)
    )
    resent = result.retransmissions()
    lines.append(
        f"retransmissions: {len(resent)}"
        + "".join(f"\n  #{t.index} {t.sender} {t.label} at {_ms(t.sent_at)}" for t in resent)
    )
    for time, endpoint, why in result.ignored:
        lines.append(f"ignored by {endpoint} at {_ms(time)}: {why}")
    lines.append(f"outcome: {result.outcome.value}")
    return "\n".join(lines)


class HandshakeReplay(ControlledWidget, widgets.VBox):
    """Replay the three-way handshake with a chosen delay and losses; see :meth:`update`."""

    def __init__(
        self,
        *,
        delay_ms: float = 50,
        drop: Iterable[int] = (),
        loss_rate: float = 0.0,
        seed: int = 0,
        simultaneous: bool = False,
    ) -> None:
        # The controls start at rest; the settings go through update(), which checks them first.
        self.delay_slider = widgets.IntSlider(
            value=50, min=1, max=MAX_DELAY_MS, step=1, description="delay (ms)", continuous_update=True
        )
        self.drop_select = widgets.SelectMultiple(
            options=[(f"lose #{i}", i) for i in range(_DROPPABLE)], value=(), rows=4, description="lose"
        )
        self.loss_slider = widgets.FloatSlider(
            value=0.0, min=0.0, max=MAX_LOSS_RATE, step=0.05, description="loss rate", readout_format=".2f"
        )
        self.seed_box = widgets.BoundedIntText(value=0, min=0, max=MAX_SEED, description="seed")
        self.simultaneous_box = widgets.Checkbox(value=False, description="simultaneous open")
        self.image = widgets.Image(format="svg+xml", layout=widgets.Layout(max_width="100%"))
        self.summary = widgets.HTML()
        self.figure, self.ax = axes_for(None, (6.4, 4.2))
        self.result: HandshakeResult | None = None
        self.summary_text = ""
        self._extra_drop: tuple[int, ...] = ()
        controls = widgets.VBox(
            [self.delay_slider, self.drop_select, self.loss_slider, self.seed_box, self.simultaneous_box]
        )
        super().__init__([controls, self.image, self.summary])
        self.watch(self.delay_slider, self.drop_select, self.loss_slider, self.seed_box, self.simultaneous_box)
        self.update(delay_ms=delay_ms, drop=drop, loss_rate=loss_rate, seed=seed, simultaneous=simultaneous)

    def update(
        self,
        *,
        delay_ms: float | None = None,
        drop: Iterable[int] | None = None,
        loss_rate: float | None = None,
        seed: int | None = None,
        simultaneous: bool | None = None,
    ) -> HandshakeResult:
        """Set any of the controls, re-run the simulation once, and redraw; returns the result.

        Called with no arguments it uses the controls' current values (that is the widget callback).
        Values the controls could not hold (a delay outside 1..500 ms, a loss rate outside 0..0.9 or
        nan, a seed outside 0..2**31-1, a negative transmission number, a str) raise ValueError or
        TypeError before anything changes.
        """
        # All checked first: a bad loss_rate must not leave a new delay behind (nor nan in the slider).
        delay_ms = check_control("delay_ms", delay_ms, self.delay_slider)
        drop = check_numbers("drop", drop, 0, whole=True)
        loss_rate = check_control("loss_rate", loss_rate, self.loss_slider)
        seed = check_control("seed", seed, self.seed_box)
        simultaneous = check_control("simultaneous", simultaneous, self.simultaneous_box)
        with self.holding():  # setting several controls must not re-run the simulation each time
            if delay_ms is not None:
                self.delay_slider.value = delay_ms
            if drop is not None:
                indices = tuple(sorted(set(drop)))
                self.drop_select.value = tuple(i for i in indices if 0 <= i < _DROPPABLE)
                self._extra_drop = tuple(i for i in indices if i >= _DROPPABLE)
            if loss_rate is not None:
                self.loss_slider.value = loss_rate
            if seed is not None:
                self.seed_box.value = seed
            if simultaneous is not None:
                self.simultaneous_box.value = simultaneous
        result = simulate_handshake(
            seed=self.seed_box.value,
            one_way_delay=self.delay_slider.value / 1000,
            drop=(*self.drop_select.value, *self._extra_drop),
            loss_rate=self.loss_slider.value,
            simultaneous_open=self.simultaneous_box.value,
        )
        self.result = result
        title = "simultaneous open" if self.simultaneous_box.value else "three-way handshake"
        draw_sequence(result.transmissions, title=title, ax=self.ax, states=state_marks(result), resize=True)
        self.image.value = figure_svg(self.figure)
        self.summary_text = handshake_summary(result)
        self.summary.value = f'<pre style="color:inherit">{html.escape(self.summary_text)}</pre>'
        return result

    @property
    def arrow_count(self) -> int:
        """How many arrows the diagram shows (delivered and lost)."""
        return sum(1 for patch in self.ax.patches if (patch.get_gid() or "").startswith(("transmission:", "lost:")))


def handshake_replay(**settings: Any) -> HandshakeReplay:
    """The lesson's handshake replay widget (``delay_ms``, ``drop``, ``loss_rate``, ``seed``, ``simultaneous``)."""
    return HandshakeReplay(**settings)


def _segment_label(number: int, captured: CapturedSegment, start: float) -> str:
    segment = captured.segment
    return (
        f"{captured.frame_number:>3}  {(captured.timestamp - start) * 1000:8.3f} ms  "
        f"{captured.src_ip}:{segment.src_port} \u2192 {captured.dst_ip}:{segment.dst_port}  {segment.summary()}"
    )


class CaptureExplorer(ControlledWidget, widgets.VBox):
    """The TCP segments of a capture, and an annotated hex view of the chosen frame; see :meth:`select`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else bundled_capture()
        self.segments: list[CapturedSegment] = read_pcap(self.path)
        start = self.segments[0].timestamp if self.segments else 0.0
        self.segment_list = widgets.Select(
            options=[(_segment_label(i, s, start), i) for i, s in enumerate(self.segments)],
            value=None,
            rows=min(10, max(2, len(self.segments))),
            layout=widgets.Layout(width="auto"),
        )
        self.segment_list.add_class("handshake-span-list")  # the code font, as in the hex view
        self.heading = widgets.HTML(
            f"<b>{html.escape(self.path.name)}</b>: {len(self.segments)} TCP segments"
            if self.segments
            else f"<i>{html.escape(self.path.name)} holds no TCP segments.</i>"
        )
        self.hexview: HexView | None = None
        self.hex_box = widgets.VBox()
        super().__init__([self.heading, self.segment_list, self.hex_box])
        self.watch(self.segment_list)
        if self.segments:
            self.select(0)

    def changed(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.select(change["new"])

    def update(self) -> HexView | None:
        """Show the segment chosen in the list."""
        return self.select(self.segment_list.value) if self.segment_list.value is not None else None

    def select(self, index: int, field: str = "tcp.flags") -> HexView | None:
        """Show segment ``index`` (0-based) in the hex view, with ``field`` chosen in it."""
        index = check_index("index", index)  # not a number: TypeError; a number with no segment: a message
        if not 0 <= index < len(self.segments):
            self.hex_box.children = [widgets.HTML(f"<i>There is no segment number {index}.</i>")]
            self.hexview = None
            return None
        captured = self.segments[index]
        title = f"frame {captured.frame_number}: {captured.segment.summary()}"
        self.hexview = HexView(captured.frame, captured.spans, title=title)
        chosen = next((i for i, span in enumerate(captured.spans) if span.field == field), None)
        self.hexview.selected = chosen
        self.hex_box.children = [self.hexview]
        # Keep the list in step when called from code; the guard stops the list's observer from building
        # a second hex view for the same selection (a 1500-byte frame costs milliseconds to render).
        if self.segment_list.value != index:
            with self.holding():
                self.segment_list.value = index
        return self.hexview


def capture_explorer(path: str | Path | None = None) -> CaptureExplorer:
    """The lesson's capture explorer over ``path`` (default: the loopback capture shipped with the library)."""
    return CaptureExplorer(path)


def state_machine_picture(
    highlight: Sequence[Any] | str = (), *, complete: bool = False, ax: Any = None
) -> Figure:
    """RFC 9293 Figure 5, drawn from the state table; ``highlight`` is a path of states (names or States)."""
    path = [highlight] if isinstance(highlight, str) else [getattr(state, "value", state) for state in highlight]
    return draw_state_diagram(
        diagram_rows(complete=complete), positions=DIAGRAM_POSITIONS, highlight=[str(p) for p in path], ax=ax
    )
