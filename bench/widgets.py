"""How fast each lesson widget answers a change: the time from a slider move to the new picture.

A widget callback runs in the kernel while the learner holds the mouse; above about 50 ms it feels
sluggish, and continuous sliders queue up.  What to time is said through a convention (see
bench/README.md): each ``bench.cases.<module>``, named after the lesson module it times, defines

    BENCHMARKS: dict[str, Callable[[], Callable[[], object] | None]]

Each value is a *setup* function.  It builds the widget once (construction is not what a learner waits
for on every change) and returns the zero-argument callback to time, which should vary its input from
call to call so nothing is served from a cache.  A setup that returns None is itself the callback.

Widgets run here without a kernel or browser (ipywidgets then uses a do-nothing comm), so the figures
measure the Python side: simulation, drawing, PNG encoding, trait updates.  Sending the new value to
the browser adds a little on top.
"""

from __future__ import annotations

import importlib
import pkgutil
import statistics
import time
from collections.abc import Callable

from .report import Measurement

CASES_PACKAGE = "bench.cases"
LESSONS_PACKAGE = "handshake_lib.lessons"  # each of its modules should have a namesake in CASES_PACKAGE
CALLBACK_TARGET_MS = 50.0
DEFAULT_REPEAT = 50
WARMUP_CALLS = 3

Setup = Callable[[], "Callable[[], object] | None"]


def discover(package_name: str = CASES_PACKAGE) -> tuple[list[tuple[str, str, Setup]], list[Measurement], list[str]]:
    """Find every ``BENCHMARKS`` entry in the modules of ``bench.cases``.

    Returns (benchmarks as (module, name, setup), error rows for modules that fail to import, notes for
    modules without benchmarks and for lesson modules that nothing times).
    """
    package = importlib.import_module(package_name)
    lessons = importlib.import_module(LESSONS_PACKAGE)
    timed = {info.name for info in pkgutil.iter_modules(package.__path__)}
    notes_untimed = [
        f"{LESSONS_PACKAGE}.{info.name} has no {package_name}.{info.name} (see bench/README.md)"
        for info in sorted(pkgutil.iter_modules(lessons.__path__), key=lambda info: info.name)
        if not info.name.startswith("_") and info.name not in timed
    ]
    found: list[tuple[str, str, Setup]] = []
    errors: list[Measurement] = []
    notes: list[str] = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        if module_info.name.startswith("_"):
            continue
        module_name = f"{package_name}.{module_info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # noqa: BLE001 - reported as an ERROR row
            errors.append(Measurement("widget", f"import {module_name}", None, "ms", CALLBACK_TARGET_MS,
                                      error=f"{type(error).__name__}: {error}"))
            continue
        benchmarks = getattr(module, "BENCHMARKS", None)
        if not benchmarks:
            notes.append(f"{module_name} defines no BENCHMARKS (see bench/README.md)")
            continue
        for name, setup in benchmarks.items():
            found.append((module_info.name, name, setup))
    return found, errors, notes + notes_untimed


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``fraction`` of samples at or below it."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def time_callback(callback: Callable[[], object], repeat: int, warmup: int = WARMUP_CALLS) -> list[float]:
    """Seconds per call, after ``warmup`` untimed calls (imports, font caches and first draws)."""
    for _ in range(warmup):
        callback()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        callback()
        samples.append(time.perf_counter() - started)
    return samples


def measure(repeat: int = DEFAULT_REPEAT) -> tuple[list[Measurement], list[str]]:
    benchmarks, rows, notes = discover()
    for module_name, name, setup in benchmarks:
        label = f"{module_name}: {name}"
        try:
            started = time.perf_counter()
            callback = setup()
            setup_s = time.perf_counter() - started
            if callback is None:
                callback, setup_s = setup, 0.0
            samples_ms = [seconds * 1000 for seconds in time_callback(callback, repeat)]
        except Exception as error:  # noqa: BLE001 - reported as an ERROR row
            rows.append(Measurement("widget", f"{label} p95", None, "ms", CALLBACK_TARGET_MS,
                                    error=f"{type(error).__name__}: {error}"))
            continue
        median_ms = statistics.median(samples_ms)
        p95_ms = percentile(samples_ms, 0.95)
        extra = {"median_ms": median_ms, "p95_ms": p95_ms, "max_ms": max(samples_ms), "calls": repeat,
                 "setup_ms": setup_s * 1000, "samples_ms": samples_ms}
        rows.append(Measurement("widget", f"{label} p95", p95_ms, "ms", CALLBACK_TARGET_MS,
                                detail=f"median {median_ms:.1f} ms, max {max(samples_ms):.1f} ms, n={repeat}, "
                                f"setup {setup_s * 1000:.0f} ms", extra=extra))
    return rows, notes
