"""Lesson 01's widgets: the handshake replay's redraws and the capture explorer's selections."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.tcp import capture_explorer, handshake_replay


def _replay_delay() -> Callable[[], object]:
    replay = handshake_replay()
    delays = itertools.cycle(range(10, 500, 7))  # a learner dragging the delay slider
    return lambda: replay.update(delay_ms=next(delays))


def _replay_loss() -> Callable[[], object]:
    replay = handshake_replay()
    seeds = itertools.count()  # random loss, a new seed each time: the heaviest redraws
    return lambda: replay.update(loss_rate=0.3, seed=next(seeds))


def _replay_simultaneous() -> Callable[[], object]:
    replay = handshake_replay()
    flips = itertools.cycle([True, False])
    return lambda: replay.update(simultaneous=next(flips))


def _explorer_select() -> Callable[[], object]:
    explorer = capture_explorer()
    indices = itertools.cycle(range(len(explorer.segments)))
    return lambda: explorer.select(next(indices))


def _hexview_select() -> Callable[[], object]:
    explorer = capture_explorer()
    view = explorer.hexview
    assert view is not None
    indices = itertools.cycle(range(len(view.spans)))

    def select() -> str:
        view.select(next(indices))
        return view.hex_html.value  # what the learner now sees

    return select


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "handshake_replay.update(delay_ms)": _replay_delay,
    "handshake_replay.update(loss_rate, seed)": _replay_loss,
    "handshake_replay.update(simultaneous)": _replay_simultaneous,
    "capture_explorer.select": _explorer_select,
    "hexview.select": _hexview_select,
}
