"""Lesson 11's widget: a visit through the client session store (a resumed handshake with OpenSSL and a GET)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handshake_lib.lessons.renewal import SessionStoreView


def store_visit() -> Callable[[], Any]:
    view = SessionStoreView()
    view.visit(tickets=True)  # the full handshake that fills the store; every timed visit resumes
    return lambda: view.visit()


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "SessionStoreView.visit": store_visit,
}
