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

Checking what code passes to ``update``
---------------------------------------
A slider cannot hold ``nan`` or ``"fast"``, and a learner dragging it never leaves its range; code can
pass anything.  A control given a bad value clamps it, keeps ``nan`` (which then breaks every later
change), or raises half-way through an update that has already set other controls.  So an ``update``
checks all its arguments first, with :func:`check_control` (the range, the type and the choices come
from the control itself, so the API and the slider cannot disagree) or, for an argument no single
control holds, :func:`check_number`, :func:`check_numbers`, :func:`check_flag`, :func:`check_text`,
:func:`check_choice`, :func:`check_choices`, :func:`check_index`.  Each returns the value (``None``
passes through: "leave it as it is") or raises TypeError (not a number, not a bool, a str where a list
was due) or ValueError (nan, inf, out of range, not one of the choices) with one line naming the
argument and what it accepts; nothing has changed yet.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import ipywidgets as widgets

__all__ = [
    "ControlledWidget",
    "check_choice",
    "check_choices",
    "check_control",
    "check_flag",
    "check_index",
    "check_number",
    "check_numbers",
    "check_text",
]


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


# -- checking arguments before anything changes ------------------------------------------------------
def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_number(
    name: str, value: object, minimum: float, maximum: float | None = None, *, whole: bool = False
) -> Any:
    """``value`` if it is a finite (``whole``) number from ``minimum`` to ``maximum`` (None: no maximum)."""
    if value is None:
        return None
    kind = "a whole number" if whole else "a number"
    # bool is an int to Python, never a number to someone who typed True.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind}, not {_shown(value)} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value}")
    if whole and value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value}")
    if value < minimum or (maximum is not None and value > maximum):
        span = f"from {minimum:g} to {maximum:g}" if maximum is not None else f"at least {minimum:g}"
        raise ValueError(f"{name} must be {span}, not {value:g}")
    return int(value) if whole else value


def check_index(name: str, value: object) -> int:
    """``value`` if it is a whole number (a position a widget's ``select``/``show`` then looks up)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, not {_shown(value)} ({type(value).__name__})")
    return int(value)


def check_text(name: str, value: object) -> str | None:
    """``value`` if it is a str (or None)."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a str, not {_shown(value)} ({type(value).__name__})")


def check_flag(name: str, value: object) -> bool | None:
    """``value`` if it is True or False (or None)."""
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be True or False, not {_shown(value)} ({type(value).__name__})")


def check_choice(name: str, value: object, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices`` (or None)."""
    if value is None:
        return None
    try:
        known = value in choices
    except TypeError:  # an unhashable value asked of a set or dict
        known = False
    if not known or isinstance(value, bool) != any(isinstance(choice, bool) for choice in choices):
        listed = ", ".join(_shown(choice) for choice in list(choices)[:12])
        raise ValueError(f"{name} must be one of {listed}{', ...' if len(choices) > 12 else ''}; not {_shown(value)}")
    return value


def _many(name: str, values: object, what: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        # A str is iterable, and "AES128-SHA" would become eleven one-letter choices.
        raise TypeError(f"{name} must be a list of {what}, not {_shown(values)} ({type(values).__name__})")
    return list(values)


def check_choices(name: str, values: object, choices: Collection[Any]) -> tuple[Any, ...] | None:
    """``values`` as a tuple if it is a list (or any iterable but a str) of ``choices`` (or None)."""
    if values is None:
        return None
    items = _many(name, values, "choices")
    if any(value is None for value in items):  # None means "leave it" for one argument, never inside a list
        raise ValueError(f"{name} holds None, which is not one of its choices")
    return tuple(check_choice(f"each of {name}", value, choices) for value in items)


def check_numbers(
    name: str, values: object, minimum: float, maximum: float | None = None, *, whole: bool = False
) -> tuple[Any, ...] | None:
    """``values`` as a tuple if it is a list of numbers that :func:`check_number` accepts (or None)."""
    if values is None:
        return None
    items = _many(name, values, "numbers")
    if any(value is None for value in items):
        raise TypeError(f"{name} holds None, which is not a number")
    return tuple(check_number(f"each of {name}", value, minimum, maximum, whole=whole) for value in items)


def _option_values(control: Any) -> list[Any]:
    # ipywidgets keeps (label, value) pairs in _options_values, whatever form the options were given in.
    return list(control._options_values)


def check_control(name: str, value: object, control: widgets.Widget) -> Any:
    """``value`` if ``control`` could hold it without clamping or changing it; the rules come from the control.

    Bounded numbers (sliders, bounded text boxes): their type, ``min`` and ``max``; a checkbox: a bool;
    a one-of-several choice (dropdown, toggle buttons, list): one of its options' values; a
    several-of-several choice (multiple selection, tags): a list of them.
    """
    if value is None:
        return None
    if isinstance(control, (widgets.IntSlider, widgets.BoundedIntText)):
        return check_number(name, value, control.min, control.max, whole=True)
    if isinstance(control, (widgets.FloatSlider, widgets.BoundedFloatText)):
        return check_number(name, value, control.min, control.max)
    if isinstance(control, (widgets.Checkbox, widgets.ToggleButton)):
        return check_flag(name, value)
    if isinstance(control, widgets.SelectMultiple):
        return check_choices(name, value, _option_values(control))
    if isinstance(control, widgets.TagsInput):
        return list(check_choices(name, value, control.allowed_tags) or ())
    if isinstance(control, (widgets.Dropdown, widgets.ToggleButtons, widgets.Select, widgets.RadioButtons)):
        return check_choice(name, value, _option_values(control))
    if isinstance(control, (widgets.Text, widgets.Textarea)):
        return check_text(name, value)
    raise TypeError(f"check_control does not know {type(control).__name__} controls")  # a bug of ours, not input
