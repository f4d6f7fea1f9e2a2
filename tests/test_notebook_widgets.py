"""A *Run All* of every lesson leaves every widget it displayed on the page.

A widget shown in a cell's output is drawn by the browser from its model; when the kernel closes the
widget (``widget.close()``), the front end deletes the model and the output shows nothing, or an error
where the widget was.  Each notebook in ``notebooks/`` runs once, top to bottom, as JupyterLab's *Run
All* would; the client here plays the front end and forgets a model when its comm is closed, exactly as
JupyterLab does.  At the end, every widget view in an output, and every widget it contains, must still
have its model.

One execution per notebook, parametrized over the folder, so a new lesson is checked without edits here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
MODEL_REFERENCE = "IPY_MODEL_"


class FrontEndClient(NotebookClient):
    """A notebook client that drops a widget's model when the kernel closes its comm (as a browser does)."""

    def handle_comm_msg(self, outs: list[Any], msg: dict[str, Any], cell_index: int) -> None:
        super().handle_comm_msg(outs, msg, cell_index)
        if msg["msg_type"] == "comm_close":
            comm_id = msg["content"]["comm_id"]
            self.widget_state.pop(comm_id, None)
            self.widget_buffers.pop(comm_id, None)


def displayed_views(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, model id) of every widget view shown in an output."""
    views = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW_MIME)
            if view is not None:
                views.append((index, view["model_id"]))
    return views


def referenced_models(state: Any) -> list[str]:
    """The model ids a widget's state points to (its children, layout, style...)."""
    if isinstance(state, str):
        return [state[len(MODEL_REFERENCE) :]] if state.startswith(MODEL_REFERENCE) else []
    if isinstance(state, dict):
        return [found for value in state.values() for found in referenced_models(value)]
    if isinstance(state, list):
        return [found for value in state for found in referenced_models(value)]
    return []


def missing_models(notebook: nbformat.NotebookNode) -> list[str]:
    """A line for every displayed view (or a widget inside one) whose model is gone at the end."""
    saved = notebook.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    problems = []
    for cell_index, model_id in displayed_views(notebook):
        waiting, seen = [(model_id, "the widget")], set()
        while waiting:
            current, what = waiting.pop()
            if current in seen:
                continue
            seen.add(current)
            if current not in saved:
                source = notebook.cells[cell_index].source.splitlines()
                problems.append(f"cell {cell_index} ({source[0] if source else ''!r}): {what} {current} was closed")
                continue
            model = saved[current]
            name = model.get("model_name", "?")
            waiting.extend((child, f"a {name}'s part") for child in referenced_models(model.get("state", {})))
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_run_all_leaves_every_widget_on_the_page(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = FrontEndClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    assert missing_models(notebook) == []
