#!/usr/bin/env python3
"""Grade every submitted exercise notebook in a folder and write one CSV, without Docker.

    .venv/bin/python scripts/grade_class.py SUBMISSIONS_DIR --out scores.csv

Each notebook is matched to its assignment by the name otter stored in it, graded on a private
copy with `otter run` (hidden tests included), and gets one row: file, assignment, one column per
question, total, possible, error.  The submitted files are only ever read.  Learners' code runs with
your rights: for untrusted submissions use otter's Docker path instead (docs/instructors.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handshake_lib.grading import (  # noqa: E402
    DEFAULT_TIMEOUT_SECONDS,
    SOLUTIONS_DIR,
    GradingError,
    grade_folder,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"), help="CSV file to write (default scores.csv)")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="folder of master notebooks")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds allowed per submission"
    )
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    try:
        scores = grade_folder(
            args.submissions, args.out, solutions_dir=args.solutions, timeout=args.timeout, jobs=args.jobs
        )
    except GradingError as error:
        print(error, file=sys.stderr)
        return 1
    for score in scores:
        status = f"error: {score.error}" if score.error else f"{score.total:g} / {score.total_possible:g}"
        print(f"{score.file}: {status}")
    print(f"wrote {args.out} ({len(scores)} submissions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
