"""Lesson 04's widget: the variant explorer (our report, cryptography's and OpenSSL's opinions, the picture).

Two cases: choosing a variant seen for the first time (build the scenario, validate it, ask
``cryptography`` and run ``openssl verify``, draw the chain), and going back to one already seen
(everything cached, only the widget's HTML and image are set again).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.certificates import VariantExplorer
from handshake_lib.pki.variants import VARIANTS

# Consecutive names differ, so every call changes what the widget shows.
_CYCLE = [name for name in VARIANTS if name != "valid-ecdsa"]


def _first_view() -> Callable[[], object]:
    explorer = VariantExplorer()
    names = itertools.cycle(_CYCLE)

    def choose() -> object:
        explorer.forget()
        return explorer.update(variant=next(names))

    return choose


def _cached_view() -> Callable[[], object]:
    explorer = VariantExplorer()
    for name in _CYCLE[:6]:
        explorer.update(variant=name)
    names = itertools.cycle(_CYCLE[:6])
    return lambda: explorer.update(variant=next(names))


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "variant_explorer.update (first view: build, validate, openssl verify, draw)": _first_view,
    "variant_explorer.update (a variant seen before)": _cached_view,
}
