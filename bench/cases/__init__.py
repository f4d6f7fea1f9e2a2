"""Widget benchmarks, one module per lesson: each defines ``BENCHMARKS`` (see bench/README.md).

``BENCHMARKS: dict[str, Callable[[], Callable[[], object] | None]]`` maps a name to a *setup* that
builds the widget once and returns the callback to time (varying its input from call to call).
"""
