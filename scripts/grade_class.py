#!/usr/bin/env python3
"""Grade every submitted exercise notebook in a folder: one CSV row each, and a picture per question.

    .venv/bin/python scripts/grade_class.py SUBMISSIONS_DIR --out scores.csv

Each notebook is matched to its exercise by the name otter stored in it.  The tests (hidden ones
included) and the points come from the master notebooks in solutions/; the learner's code runs in a
bubblewrap sandbox (no network but loopback, no writes outside its own folder, none of your environment
variables, CPU, memory and process limits) and only its functions' answers reach the tests.  The
submitted files are only read.  Writes scores.csv and scores.png (how many learners got full marks,
part, zero, or could not be graded, per question).  See docs/instructors.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handshake_lib.cli.arguments import seconds  # noqa: E402
from handshake_lib.grading import (  # noqa: E402
    DEFAULT_TIMEOUT_SECONDS,
    SOLUTIONS_DIR,
    GradingError,
    grade_folder,
    summary_lines,
    write_score_chart,
)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 256")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"), help="CSV file to write (default scores.csv)")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="folder of master notebooks")
    parser.add_argument(
        "--timeout", type=seconds, default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds allowed per submission (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--jobs", type=_jobs, default=os.cpu_count() or 1, help="submissions graded at the same time (default: cores)"
    )
    parser.add_argument(
        "--no-sandbox", action="store_true",
        help="run learners' code WITHOUT the bubblewrap sandbox (only where it cannot run; see docs/instructors.md)",
    )
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if not args.out.parent.is_dir():
        parser.error(f"cannot write {args.out}: {args.out.parent} is not a folder")
    if args.no_sandbox:
        print("grade_class: warning: --no-sandbox: learners' code runs with your rights", file=sys.stderr)
    started = time.monotonic()
    try:
        scores = grade_folder(
            args.submissions, args.out, solutions_dir=args.solutions, timeout=args.timeout, jobs=args.jobs,
            sandboxed=not args.no_sandbox,
        )
    except GradingError as error:
        print(f"grade_class: {error}", file=sys.stderr)
        return 1
    for score in scores:
        status = f"{score.total:g} / {score.total_possible:g}"
        if score.error:
            status += f" (error: {score.error})"
        print(f"{score.file}: {status}")
    print(*summary_lines(scores), sep="\n")
    chart = args.out.with_suffix(".png")
    drew = write_score_chart(scores, chart)
    elapsed = time.monotonic() - started
    print(f"wrote {args.out}{f' and {chart}' if drew else ''} ({len(scores)} submissions in {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
