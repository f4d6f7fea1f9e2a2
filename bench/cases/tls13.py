"""Lesson 10's widgets: the record viewer over TLS 1.2 and 1.3, and the key schedule explorer."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from handshake_lib.lessons.tls13 import compare_versions, key_schedule_explorer, transcript_viewer


def viewer_update() -> Callable[[], Any]:
    viewer = transcript_viewer(compare_versions(repeat=1))
    steps = itertools.cycle(
        [(name, index) for name, response in viewer.responses.items() for index in range(len(response.transcript))]
    )

    def show() -> Any:
        version, record = next(steps)
        return viewer.update(version=version, record=record)

    return show


def explorer_update() -> Callable[[], Any]:
    explorer = key_schedule_explorer(compare_versions(repeat=1))
    names = itertools.cycle(explorer.step_menu.options)
    return lambda: explorer.update(step=next(names))


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "transcript_viewer.update": viewer_update,
    "key_schedule_explorer.update": explorer_update,
}
