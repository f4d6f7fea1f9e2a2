"""``make bench``'s widget cases (bench/cases): found by bench.widgets.discover, and each callback really
changes what its widget shows (a benchmark that timed a no-op would time nothing)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pkgutil  # noqa: E402

import pytest  # noqa: E402

import bench.cases  # noqa: E402
from bench import widgets as bench_widgets  # noqa: E402

CASES, ERRORS, NOTES = bench_widgets.discover()


def test_every_case_module_imports_and_defines_benchmarks():
    assert ERRORS == []
    modules = {info.name for info in pkgutil.iter_modules(bench.cases.__path__)}
    assert {"tcp", "client_hello", "server_hello"} <= modules
    assert {module for module, _, _ in CASES} == modules
    # Lesson modules hold no benchmark code any more.
    import handshake_lib.lessons.client_hello as client_hello
    import handshake_lib.lessons.server_hello as server_hello
    import handshake_lib.lessons.tcp as tcp

    assert not any(hasattr(module, "BENCHMARKS") for module in (tcp, client_hello, server_hello))


def test_a_lesson_module_without_cases_is_noted(tmp_path, monkeypatch):
    package = tmp_path / "empty_cases"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    found, errors, notes = bench_widgets.discover("empty_cases")
    assert found == [] and errors == []
    assert any("handshake_lib.lessons.client_hello has no empty_cases.client_hello" in note for note in notes)


def shown(result: object) -> object:
    """What the widget shows after a call, as far as the callback's result says it.

    Never a default repr: its object address differs on every call whatever the callback did, so a
    comparison of two of them could not fail.
    """
    if isinstance(result, bytes):
        return result
    for attribute in ("received", "value", "text", "spans", "transmissions"):
        if hasattr(result, attribute):
            return repr(getattr(result, attribute))
    if hasattr(result, "summary") and callable(result.summary):
        return result.summary()
    text = repr(result)
    assert " at 0x" not in text, f"no stable view of a {type(result).__name__}: add one to shown()"
    return text


# Cases whose result has no stable view of its own; the widget they drive is checked instead (below).
CHECKED_THROUGH_THE_WIDGET = {("premaster", "countermeasure_demo.update(byte_index)")}


@pytest.mark.parametrize(("module", "name", "setup"), CASES, ids=[f"{m}:{n}" for m, n, _ in CASES])
def test_each_callback_changes_what_the_widget_shows(module, name, setup):
    if (module, name) in CHECKED_THROUGH_THE_WIDGET:
        return
    callback = setup()
    first, second = callback(), callback()
    assert first is not None and second is not None, f"{name} returned nothing to show"
    assert shown(first) != shown(second), f"{name} showed the same thing twice: nothing new was timed"


def test_the_countermeasure_case_moves_the_byte_and_reruns_the_handshake():
    from bench.cases.premaster import bench_tamper
    from handshake_lib.lessons.premaster import countermeasure_demo

    demo = countermeasure_demo()
    callback = bench_tamper(demo)
    first = callback()
    seen = (demo.byte_slider.value, demo.ciphertext)
    second = callback()
    assert first is not second and demo.result is second
    assert (demo.byte_slider.value, demo.ciphertext) != seen
