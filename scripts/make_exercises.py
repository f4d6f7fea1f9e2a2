#!/usr/bin/env python3
"""Regenerate exercises/ from the master notebooks in solutions/ (`make exercises`).

Runs `otter assign` on every master notebook (which also checks that the solutions pass every test),
and writes each student notebook into exercises/ with its public tests embedded, normalised so the
output is byte-for-byte reproducible.  Commit exercises/ after running this; tests/test_grading.py
fails when it is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handshake_lib.grading import EXERCISES_DIR, SOLUTIONS_DIR, GradingError, make_exercises  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="folder of master notebooks")
    parser.add_argument("--out", type=Path, default=EXERCISES_DIR, help="folder for the student notebooks")
    parser.add_argument(
        "--no-run-tests", action="store_true", help="skip running the tests against the solutions (faster)"
    )
    args = parser.parse_args(argv)
    try:
        written = make_exercises(args.solutions, args.out, run_tests=not args.no_run_tests)
    except GradingError as error:
        print(error, file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
