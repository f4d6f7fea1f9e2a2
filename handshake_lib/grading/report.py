"""What the instructor gets from grading a class: one CSV row per notebook and a picture per question."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .masters import Assignment
    from .runner import SubmissionScore

__all__ = ["write_scores_csv", "score_distribution", "write_score_chart", "summary_lines"]

# How a question's score is counted in the picture: every learner lands in exactly one band.
BANDS = ("full marks", "part", "zero", "not graded")


def write_scores_csv(
    scores: Sequence[SubmissionScore], out_csv: Path, assignments: Iterable[Assignment] = ()
) -> None:
    """Write ``file, assignment, <one column per question>, total, possible, error``."""
    questions: list[str] = []
    for assignment in assignments:
        for question in assignment.questions:
            if question.name not in questions:
                questions.append(question.name)
    for score in scores:
        for question in score.possible:
            if question not in questions:
                questions.append(question)
    with open(out_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "assignment", *questions, "total", "possible", "error"])
        for score in scores:
            writer.writerow(
                [
                    score.file,
                    score.assignment,
                    *(_number(score.scores[q]) if q in score.scores else "" for q in questions),
                    _number(score.total),
                    _number(score.total_possible),
                    score.error,
                ]
            )


def score_distribution(scores: Sequence[SubmissionScore]) -> dict[tuple[str, str], dict[str, int]]:
    """(assignment, question) -> how many submissions fell in each of :data:`BANDS`."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for score in scores:
        if not score.assignment or not score.possible:
            continue
        for question, possible in score.possible.items():
            bands = counts.setdefault((score.assignment, question), dict.fromkeys(BANDS, 0))
            earned = score.scores.get(question, 0.0)
            if score.error and earned == 0:
                bands["not graded"] += 1
            elif earned >= possible:
                bands["full marks"] += 1
            elif earned > 0:
                bands["part"] += 1
            else:
                bands["zero"] += 1
    return counts


def write_score_chart(scores: Sequence[SubmissionScore], out_png: Path) -> bool:
    """One stacked bar per question (full marks, part, zero, not graded); False when nothing was graded."""
    counts = score_distribution(scores)
    if not counts:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = [f"{assignment[:2]} {question}" for assignment, question in counts]
    figure = Figure(figsize=(max(4.0, 0.7 * len(labels) + 2), 3.6), layout="constrained")
    axes = figure.subplots()
    bottoms = [0] * len(labels)
    colours = {"full marks": "#2e7d32", "part": "#f9a825", "zero": "#c62828", "not graded": "#9e9e9e"}
    for band in BANDS:
        heights = [bands[band] for bands in counts.values()]
        axes.bar(labels, heights, bottom=bottoms, label=band, color=colours[band])
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axes.set_ylabel("submissions")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Scores per question (exercise number and question)")
    axes.tick_params(axis="x", labelrotation=60)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.savefig(out_png, dpi=110)
    return True


def summary_lines(scores: Sequence[SubmissionScore]) -> list[str]:
    """The per-question counts as text, for the terminal."""
    lines = []
    for (assignment, question), bands in score_distribution(scores).items():
        parts = ", ".join(f"{count} {band}" for band, count in bands.items() if count)
        lines.append(f"{assignment} {question}: {parts}")
    return lines


def _number(value: float) -> str:
    # 2.0 -> "2", 1.5 -> "1.5": what a spreadsheet and a person both read without surprise.
    return f"{value:g}"
