"""The hold-and-update mechanics shared by lesson widgets (handshake_lib.viz.widget)."""

from __future__ import annotations

import ipywidgets as widgets

from handshake_lib.viz.widget import ControlledWidget


class Sum(ControlledWidget, widgets.VBox):
    def __init__(self) -> None:
        self.a = widgets.IntText(value=1)
        self.b = widgets.IntText(value=2)
        self.updates = 0
        super().__init__([self.a, self.b])
        self.watch(self.a, self.b)
        self.update()

    def update(self, *, a: int | None = None, b: int | None = None) -> int:
        with self.holding():
            if a is not None:
                self.a.value = a
            if b is not None:
                self.b.value = b
        self.updates += 1
        self.total = self.a.value + self.b.value
        return self.total


def test_a_control_change_updates_and_a_held_batch_updates_once():
    widget = Sum()
    assert (widget.updates, widget.total) == (1, 3)
    widget.a.value = 10  # a learner moves one control
    assert (widget.updates, widget.total) == (2, 12)
    assert widget.update(a=5, b=7) == 12 and widget.updates == 3  # two controls set, one recomputation
    assert not widget._holding


def test_holds_nest_and_survive_an_error():
    widget = Sum()
    try:
        with widget.holding():
            with widget.holding():
                widget.a.value = 100
            widget.b.value = 100  # still held by the outer block
            raise RuntimeError
    except RuntimeError:
        pass
    assert widget.updates == 1 and not widget._holding
    widget.b.value = 1
    assert widget.updates == 2 and widget.total == 101


def test_changed_can_do_something_else_than_update():
    class Picker(ControlledWidget, widgets.VBox):
        def __init__(self) -> None:
            self.choice = widgets.Dropdown(options=["x", "y"], value="x")
            self.seen: list[str] = []
            super().__init__([self.choice])
            self.watch(self.choice)

        def changed(self, change):
            self.seen.append(change["new"])

    picker = Picker()
    picker.choice.value = "y"
    assert picker.seen == ["y"]
