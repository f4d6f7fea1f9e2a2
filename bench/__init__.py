"""Benchmarks for the course (`make bench`, i.e. ``python -m bench``).

Each module measures one thing and returns :class:`bench.report.Measurement` rows; ``__main__`` runs
them, prints one table with a target and PASS/FAIL per row, and writes ``bench/results/latest.json``.
A missed target is reported, not fatal: the exit status is non-zero only when a benchmark could not run.
See bench/README.md for what is measured and how lesson authors add widget benchmarks.
"""
