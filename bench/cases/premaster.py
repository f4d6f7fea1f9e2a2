"""Widget benchmarks of lesson 05 (``handshake_lib.lessons.premaster``); conventions in bench/README.md.

Each setup builds its widget once (or takes one, so a test can watch what the callback changes) and
returns the zero-argument callback to time, which varies its input on every call.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

from handshake_lib.lessons.premaster import CountermeasureDemo, countermeasure_demo, padding_view
from handshake_lib.tls import rsa_kx
from handshake_lib.tls.pair import PairKeys


def bench_tamper(demo: CountermeasureDemo | None = None) -> Callable[[], object]:
    """A learner dragging the byte slider: every call tampers another byte and re-runs the handshake."""
    demo = demo or countermeasure_demo()
    positions = itertools.cycle(range(0, len(demo.ciphertext), 7))
    return lambda: demo.update(byte_index=next(positions), mask=0x10)


def bench_padding_view(keys: PairKeys | None = None) -> Callable[[], object]:
    """A fresh ciphertext every call, opened with textbook RSA and drawn as a hex view."""
    keys = keys or PairKeys.fresh()
    public_key = keys.private_key.public_key()
    return lambda: padding_view(
        rsa_kx.padded_block(rsa_kx.encrypt_pre_master_secret(os.urandom(48), public_key), keys.private_key)
    )


# Read by `python -m bench` (bench/widgets.py): name -> setup returning the callback to time.
BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "countermeasure_demo.update(byte_index)": bench_tamper,
    "padding_view(padded_block)": bench_padding_view,
}
