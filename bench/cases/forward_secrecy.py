"""Lesson 09's widgets: the stolen key's record viewer and the ServerKeyExchange check."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from handshake_lib.lessons.forward_secrecy import (
    ServerKeyExchangeView,
    record_sessions,
    server_key_exchange_view,
    stolen_key_viewer,
)


def viewer_update() -> Callable[[], Any]:
    viewer = stolen_key_viewer(record_sessions().decrypt_with_stolen_key())
    steps = itertools.cycle(
        [(name, index) for name, connection in viewer.opened.items() for index in range(len(connection.entries))]
    )

    def show() -> Any:
        session, record = next(steps)
        return viewer.update(session=session, record=record)

    return show


def signature_check() -> Callable[[], Any]:
    view = server_key_exchange_view(record_sessions())
    choices = itertools.cycle(ServerKeyExchangeView.TAMPERING)
    return lambda: view.update(tamper=next(choices))


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "stolen_key_viewer.update": viewer_update,
    "server_key_exchange_view.update": signature_check,
}
