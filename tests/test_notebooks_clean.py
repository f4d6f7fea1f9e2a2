"""Notebooks are committed without outputs or execution counts.

Outputs in the repository make diffs unreadable, leak whatever the author's machine printed (paths, keys
from a live run, timings) and show learners results they have not produced yet.  nbval and the browser
test execute the notebooks; nothing needs stored outputs.  Clear them with
`jupyter nbconvert --clear-output --inplace notebooks/*.ipynb` before committing.

No exceptions.  nbval (in --nbval-lax mode) compares only cells tagged `nbval-check-output` *and*
stored with their output; with nothing stored, such a tag would compare against nothing and pass
silently.  So the tag is refused too: results a notebook must reproduce are asserted in the unit tests of
its lesson module (tests/test_lesson_*.py), where a failure says what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")
# These exist from the first lesson on; if they vanish the checks below would pass on nothing.
REQUIRED = ("notebooks/00_start_here.ipynb", "notebooks/01_tcp_three_way_handshake.ipynb")


def stored_notebooks() -> list[Path]:
    return sorted(
        path
        for directory in NOTEBOOK_DIRS
        for path in (ROOT / directory).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    )


def checks_output(cell: dict) -> bool:
    """True for cells nbval compares in --nbval-lax mode, read the way nbval 0.11 reads them.

    A comment line `# NBVAL_CHECK_OUTPUT` / `# NBVAL_IGNORE_OUTPUT` anywhere in the cell wins over tags.
    """
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    for line in reversed(source.splitlines()):
        line = line.strip()
        if line.startswith("#"):
            marker = line.lstrip("#").strip()
            if marker == "NBVAL_CHECK_OUTPUT":
                return True
            if marker in ("NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT"):
                return False
    tags = cell.get("metadata", {}).get("tags", [])
    checked = [tag for tag in tags if tag in ("nbval-check-output", "nbval-ignore-output")]
    return bool(checked) and checked[-1] == "nbval-check-output"


def stored_output_problems(notebook: dict) -> list[str]:
    """Describe every stored output or execution count that should not be there (empty list: clean)."""
    problems = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if checks_output(cell):
            problems.append(
                f"cell {index} is tagged nbval-check-output, which compares nothing in notebooks stored without "
                "outputs; drop the tag and assert the result in tests/test_lesson_*.py"
            )
        if cell.get("outputs"):
            problems.append(f"cell {index} has {len(cell['outputs'])} stored output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has execution_count {cell['execution_count']}")
    if any("stored output" in problem or "execution_count" in problem for problem in problems):
        problems.append("clear them with `jupyter nbconvert --clear-output --inplace <notebook>`")
    return problems


@pytest.mark.parametrize("relative", REQUIRED)
def test_required_notebooks_exist(relative: str) -> None:
    assert (ROOT / relative).is_file(), f"{relative} is missing"


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda path: str(path.relative_to(ROOT)))
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook.get("nbformat") == 4, "expected an nbformat 4 notebook"
    problems = stored_output_problems(notebook)
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_checker_sees_outputs_and_counts() -> None:
    """The checker itself must notice both kinds of leftovers, and leave markdown cells alone."""
    dirty = {
        "cells": [
            {"cell_type": "markdown", "source": "# title", "metadata": {}},
            {"cell_type": "code", "source": "1", "execution_count": 3, "outputs": [], "metadata": {}},
            {
                "cell_type": "code",
                "source": "print(1)",
                "execution_count": None,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
                "metadata": {},
            },
        ]
    }
    assert stored_output_problems(dirty)[:2] == ["cell 1 has execution_count 3", "cell 2 has 1 stored output(s)"]
    clean = {"cells": [{"cell_type": "code", "source": "1", "execution_count": None, "outputs": [], "metadata": {}}]}
    assert stored_output_problems(clean) == []


def code_cell(source: str, execution_count: int | None, outputs: list, tags: tuple[str, ...] = ()) -> dict:
    metadata = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "source": source,
        "execution_count": execution_count,
        "outputs": outputs,
        "metadata": metadata,
    }


def test_checker_refuses_nbval_check_output_tags() -> None:
    for cell in (
        code_cell("print(1 + 1)", None, [], tags=("nbval-check-output",)),
        code_cell("# NBVAL_CHECK_OUTPUT\nprint(1 + 1)", None, []),
    ):
        problems = stored_output_problems({"cells": [cell]})
        assert len(problems) == 1 and "compares nothing" in problems[0], problems
    ignored = code_cell("print(1 + 1)", None, [], tags=("nbval-ignore-output",))
    assert stored_output_problems({"cells": [ignored]}) == []
