"""Widget benchmarks of lesson 06 (``handshake_lib.lessons.session_keys``); conventions in bench/README.md.

The setup builds its widget once (or takes one, so a test can watch what the callback changes) and
returns the zero-argument callback to time, which varies its input on every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.session_keys import KeyScheduleExplorer, key_schedule_explorer
from handshake_lib.tls.suites import RSA_SUITE_NAMES


def bench_explorer(explorer: KeyScheduleExplorer | None = None) -> Callable[[], object]:
    """A learner going through every suite, with and without the extended master secret."""
    explorer = explorer or key_schedule_explorer()
    choices = itertools.cycle(itertools.product(RSA_SUITE_NAMES, (True, False)))

    def step() -> object:
        cipher, ems = next(choices)
        return explorer.update(cipher=cipher, extended_master_secret=ems)

    return step


# Read by `python -m bench` (bench/widgets.py): name -> setup returning the callback to time.
BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "key_schedule_explorer.update(cipher, ems)": bench_explorer,
}
