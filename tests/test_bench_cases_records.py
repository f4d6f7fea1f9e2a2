"""The benchmarks of lessons 07 and 08 time what a learner does: each call changes what the widget shows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from bench.cases import finished, records  # noqa: E402


def test_record_benchmarks_show_a_different_record_or_flip_each_call() -> None:
    assert set(records.BENCHMARKS) == {
        "record_explorer.select",
        "tamper_lab.update(offset)",
        "tamper_lab.update(record)",
    }
    select = records.BENCHMARKS["record_explorer.select"]()
    shown = [select().record for _ in range(3)]
    assert len(set(shown)) == 3  # three different records on screen, one after the other
    offset = records.BENCHMARKS["tamper_lab.update(offset)"]()
    first, second = offset(), offset()
    assert (first.offset, second.offset) == (0, 3) and first.layers.record != second.layers.record
    record = records.BENCHMARKS["tamper_lab.update(record)"]()
    results = [record() for _ in range(2)]
    assert results[0].layers.record != results[1].layers.record and all(r.rejected for r in results)


def test_finished_benchmark_steps_through_the_records() -> None:
    show = finished.BENCHMARKS["handshake_stepper.show"]()
    assert [show() for _ in range(3)] == [0, 1, 2]
