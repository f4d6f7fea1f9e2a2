"""The hold-and-update mechanics every lesson widget shares.

Theory of operation
-------------------
A lesson widget is an ``ipywidgets`` box of *controls* (sliders, checkboxes, lists) and an output it
recomputes from them.  Two paths lead to a recomputation:

* a learner moves a control: its observer fires and the widget recomputes once;
* code calls ``widget.update(delay_ms=80, drop=[1])`` (a test, a benchmark, a notebook cell): several
  controls are set at once, and the widget must recompute *once*, after the last one, not once per
  control (each recomputation may redraw a figure or talk to a live server).

:class:`ControlledWidget` holds both: :meth:`~ControlledWidget.watch` connects controls to
:meth:`~ControlledWidget.changed` (by default :meth:`~ControlledWidget.update`), and inside
``with self.holding():`` control changes are ignored, so the caller recomputes once at the end::

    class Replay(ControlledWidget, widgets.VBox):
        def __init__(self):
            self.delay = widgets.IntSlider()
            super().__init__([self.delay])
            self.watch(self.delay)

        def update(self, *, delay_ms=None):
            with self.holding():
                if delay_ms is not None:
                    self.delay.value = delay_ms
            ...  # recompute from the controls, once

It is a mixin (list it before the ipywidgets base class) with no traits of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["ControlledWidget"]


class ControlledWidget:
    """Mixin: watched controls call :meth:`changed`, except while :meth:`holding` is active."""

    _holding = False  # per instance once set; a class default so subclasses need no __init__ call

    def watch(self, *controls: Any, names: str = "value") -> None:
        """Call :meth:`changed` whenever trait ``names`` of any of ``controls`` changes (outside a hold)."""
        for control in controls:
            control.observe(self._on_control_change, names=names)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Within the block, control changes do not call :meth:`changed` (nested holds are fine)."""
        previous, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = previous

    def changed(self, change: dict[str, Any]) -> None:
        """What a watched control's change does; by default, recompute everything with :meth:`update`."""
        self.update()

    def update(self) -> object:
        """Recompute the widget's output from its controls (each widget defines it)."""
        raise NotImplementedError

    def _on_control_change(self, change: dict[str, Any]) -> None:
        if not self._holding:
            self.changed(change)
