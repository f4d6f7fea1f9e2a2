"""Lesson 08's widgets: the handshake stepper over a live handshake with OpenSSL."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from handshake_lib.lessons.finished import capture_session, handshake_stepper


def stepper_show() -> Callable[[], Any]:
    stepper = handshake_stepper(capture_session("AES128-SHA256").response)
    indices = itertools.cycle(range(len(stepper.transcript)))
    return lambda: stepper.show(next(indices))


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "handshake_stepper.show": stepper_show,
}
