"""Measurement rows, the printed table and the JSON file, shared by every benchmark module."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"


@dataclass(frozen=True)
class Measurement:
    """One row: a measured value against an upper-bound target (``value < target`` passes).

    ``value`` is None when the benchmark could not run; ``error`` then says why.
    """

    group: str  # "notebook", "widget", later "handshake"...
    name: str  # what was measured, e.g. "notebooks/01_x.ipynb wall time"
    value: float | None
    unit: str  # "s", "MB", "ms"
    target: float
    detail: str = ""  # a short human note: median, slowest cell, sample count...
    error: str | None = None
    extra: dict = field(default_factory=dict)  # machine-readable details for the JSON file

    @property
    def status(self) -> str:
        if self.error is not None or self.value is None:
            return ERROR
        return PASS if self.value < self.target else FAIL


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"


def format_table(rows: Iterable[Measurement]) -> str:
    """A plain-text table, one row per measurement; the last column (detail or error) is not padded."""
    header = ("group", "benchmark", "measured", "target", "result", "detail")
    lines = [header] + [
        (
            row.group,
            row.name,
            format_value(row.value, row.unit),
            f"< {row.target:g} {row.unit}",
            row.status,
            row.error if row.error is not None else row.detail,
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header) - 1)]

    def render(line: tuple[str, ...]) -> str:
        padded = [item.ljust(width) for item, width in zip(line, widths, strict=False)]
        return "  ".join([*padded, line[-1]]).rstrip()

    rule = tuple("-" * width for width in widths) + ("-" * len(header[-1]),)
    return "\n".join([render(lines[0]), render(rule), *(render(line) for line in lines[1:])])


def write_json(rows: Iterable[Measurement], path: Path) -> None:
    """Write the rows with enough context (when, which Python, which machine) to compare runs later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "results": [{**asdict(row), "status": row.status} for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
