"""Lesson 07's widgets: the record explorer and the tamper lab, driven as a learner drives them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from handshake_lib.lessons.records import record_explorer, tamper_lab


def explorer_select() -> Callable[[], Any]:
    explorer = record_explorer()
    indices = itertools.cycle(range(len(explorer.records)))
    return lambda: explorer.select(next(indices))


def tamper_offset() -> Callable[[], Any]:
    lab = tamper_lab()
    offsets = itertools.cycle(range(0, len(lab.records[0].record), 3))  # a learner dragging the byte slider
    return lambda: lab.update(offset=next(offsets))


def tamper_record() -> Callable[[], Any]:
    lab = tamper_lab()
    choices = itertools.cycle(range(len(lab.records)))
    return lambda: lab.update(record=next(choices), offset=-1)


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "record_explorer.select": explorer_select,
    "tamper_lab.update(offset)": tamper_offset,
    "tamper_lab.update(record)": tamper_record,
}
