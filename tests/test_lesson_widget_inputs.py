"""Bad values given to a lesson widget's ``update(...)``: refused with a clear error, the widget left as it was.

Issue 8, item 12: ``HandshakeReplay.update(loss_rate=nan)`` left NaN in the slider and broke every later
change; strings and out-of-range values were clamped, filtered out silently, or raised half-way through
an update.  Now every widget checks all its arguments first (``handshake_lib.viz.widget.check_control``
and friends), so each case below raises TypeError or ValueError naming the argument, nothing on the page
changes (every control and every output keeps its value), and a good update afterwards still works.

Typing a name that is not a DNS name into lesson 02's server-name box (``.`` raised DecodeError inside
the callback) shows a message in the widget instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import pytest

from handshake_lib.lessons import certificates, client_hello, premaster, records, server_hello, session_keys, tcp
from handshake_lib.tls.pair import PairKeys
from handshake_lib.viz.widget import check_choice, check_control, check_number

NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """One of each widget, built once: a refused update changes nothing, so the cases can share them."""
    return {
        "replay": tcp.handshake_replay(),
        "capture": tcp.capture_explorer(),
        "hello": client_hello.client_hello_builder(),
        "negotiation": server_hello.negotiation_explorer(),
        "variants": certificates.variant_explorer(),
        "countermeasure": premaster.countermeasure_demo(keys=PairKeys.fresh()),
        "key_schedule": session_keys.key_schedule_explorer(),
        "tamper": records.tamper_lab(),
        "record_explorer": records.record_explorer(),
    }


def snapshot(widget: widgets.Widget) -> list[tuple[str, Any]]:
    """Every value on the page: each control's and each output's (HTML, SVG image, hex views), depth first."""
    values: list[tuple[str, Any]] = []
    stack = [widget]
    while stack:
        item = stack.pop()
        if "value" in item.trait_names():
            values.append((type(item).__name__, item.value))
        stack.extend(reversed(getattr(item, "children", ())))
    return values


# (widget, method, arguments, error type, words of the message)
BAD_UPDATES: list[tuple[str, str, dict[str, Any], type[Exception], str]] = [
    # lesson 01: the handshake replay
    ("replay", "update", {"loss_rate": NAN}, ValueError, "loss_rate must be a finite number"),
    ("replay", "update", {"loss_rate": INF}, ValueError, "loss_rate must be a finite number"),
    ("replay", "update", {"loss_rate": 0.95}, ValueError, "loss_rate must be from 0 to 0.9"),
    ("replay", "update", {"loss_rate": -0.1}, ValueError, "loss_rate must be from 0 to 0.9"),
    ("replay", "update", {"loss_rate": "0.1"}, TypeError, "loss_rate must be a number, not '0.1'"),
    ("replay", "update", {"delay_ms": 0}, ValueError, "delay_ms must be from 1 to 500"),
    ("replay", "update", {"delay_ms": 10_000}, ValueError, "delay_ms must be from 1 to 500"),
    ("replay", "update", {"delay_ms": 50.5}, ValueError, "delay_ms must be a whole number"),
    ("replay", "update", {"delay_ms": NAN}, ValueError, "finite"),
    ("replay", "update", {"delay_ms": "fast"}, TypeError, "delay_ms must be a whole number, not 'fast'"),
    ("replay", "update", {"delay_ms": True}, TypeError, "delay_ms must be a whole number, not True"),
    ("replay", "update", {"drop": 1}, TypeError, "drop must be a list of numbers"),
    ("replay", "update", {"drop": "01"}, TypeError, "drop must be a list of numbers"),
    ("replay", "update", {"drop": [-1]}, ValueError, "each of drop must be at least 0"),
    ("replay", "update", {"drop": [NAN]}, ValueError, "finite"),
    ("replay", "update", {"drop": [1, None]}, TypeError, "drop holds None"),
    ("replay", "update", {"seed": -1}, ValueError, "seed must be from 0 to 2.14748e+09"),
    ("replay", "update", {"seed": 2**31}, ValueError, "seed must be from 0"),
    ("replay", "update", {"seed": "7"}, TypeError, "seed must be a whole number"),
    ("replay", "update", {"simultaneous": 1}, TypeError, "simultaneous must be True or False"),
    ("replay", "update", {"simultaneous": "yes"}, TypeError, "simultaneous must be True or False"),
    # checked before anything is set: a good delay next to a bad loss rate is not applied either
    ("replay", "update", {"delay_ms": 120, "loss_rate": NAN}, ValueError, "loss_rate"),
    ("capture", "select", {"index": "0"}, TypeError, "index must be a whole number"),
    ("capture", "select", {"index": 1.0}, TypeError, "index must be a whole number"),
    # lesson 02: the ClientHello builder
    ("hello", "update", {"version": 0x0304}, ValueError, "version must be one of"),
    ("hello", "update", {"version": "1.2"}, ValueError, "version must be one of"),
    ("hello", "update", {"suites": "AES128-SHA"}, TypeError, "suites must be a list of choices"),
    ("hello", "update", {"suites": ["RC4-MD5"]}, ValueError, "each of suites must be one of"),
    ("hello", "update", {"suites": ["AES128-SHA"], "extensions": ["nope"]}, ValueError, "each of extensions"),
    ("hello", "update", {"extensions": "server_name"}, TypeError, "extensions must be a list"),
    ("hello", "update", {"server_name": 5}, TypeError, "server_name must be a str"),
    ("hello", "update", {"server_name": b"localhost"}, TypeError, "server_name must be a str"),
    ("hello", "update", {"demo_random": "yes"}, TypeError, "demo_random must be True or False"),
    ("hello", "select", {"field": 5}, TypeError, "field must be a str"),
    # lesson 03: negotiation
    ("negotiation", "update", {"offered": "AES128-SHA"}, TypeError, "offered must be a list of choices"),
    ("negotiation", "update", {"offered": ["RC4-MD5"]}, ValueError, "each of offered must be one of"),
    ("negotiation", "update", {"supported": [None]}, ValueError, "supported holds None"),
    ("negotiation", "update", {"offered": ["AES128-SHA"], "prefer": "both"}, ValueError, "prefer must be one of"),
    ("negotiation", "update", {"prefer": 1}, ValueError, "prefer must be one of 'server', 'client'"),
    # lesson 04: the PKI variants
    ("variants", "update", {"variant": "expired-leaf"}, ValueError, "variant must be one of 'valid-ecdsa'"),
    ("variants", "update", {"variant": 3}, TypeError, "variant must be a str"),
    ("variants", "update", {"variant": ["expired"]}, TypeError, "variant must be a str"),
    # lesson 05: Bleichenbacher's countermeasure
    ("countermeasure", "update", {"byte_index": NAN}, ValueError, "byte_index must be a finite number"),
    ("countermeasure", "update", {"byte_index": -1}, ValueError, "byte_index must be from 0 to 255"),
    ("countermeasure", "update", {"byte_index": 256}, ValueError, "byte_index must be from 0 to 255"),
    ("countermeasure", "update", {"byte_index": "3"}, TypeError, "byte_index must be a whole number"),
    ("countermeasure", "update", {"byte_index": 3, "mask": 256}, ValueError, "mask must be from 0 to 255"),
    ("countermeasure", "update", {"mask": 0.5}, ValueError, "mask must be a whole number"),
    ("countermeasure", "update", {"mask": "ff"}, TypeError, "mask must be a whole number"),
    # lesson 06: the key schedule
    ("key_schedule", "update", {"cipher": "RC4-MD5"}, ValueError, "cipher must be one of"),
    ("key_schedule", "update", {"cipher": 5}, ValueError, "cipher must be one of"),
    ("key_schedule", "update", {"extended_master_secret": "no"}, TypeError, "must be True or False"),
    ("key_schedule", "update", {"extended_master_secret": 0}, TypeError, "must be True or False"),
    # lesson 07: records
    ("tamper", "update", {"record": 99}, ValueError, "record must be one of"),
    ("tamper", "update", {"record": "0"}, ValueError, "record must be one of"),
    ("tamper", "update", {"offset": 10_000}, ValueError, "offset must be from"),
    ("tamper", "update", {"offset": NAN}, ValueError, "offset must be a finite number"),
    ("tamper", "update", {"offset": "-1"}, TypeError, "offset must be a whole number"),
    ("tamper", "update", {"offset": 3, "bit": 8}, ValueError, "bit must be one of"),
    ("tamper", "update", {"bit": 1.5}, ValueError, "bit must be one of"),
    ("record_explorer", "select", {"index": "0"}, TypeError, "index must be a whole number"),
    ("record_explorer", "select", {"index": NAN}, TypeError, "index must be a whole number"),
]

# A good update for each widget: it must still work after every refusal.
GOOD_UPDATES: dict[str, tuple[str, dict[str, Any], Callable[[Any], bool]]] = {
    "replay": ("update", {"loss_rate": 0.5, "delay_ms": 120}, lambda w: w.loss_slider.value == 0.5),
    "capture": ("select", {"index": 1}, lambda w: w.segment_list.value == 1),
    "hello": ("update", {"suites": ["AES128-SHA"], "server_name": "example.org"}, lambda w: w.hello is not None),
    "negotiation": ("update", {"offered": ["AES128-SHA"], "prefer": "client"}, lambda w: w.result.ours == "AES128-SHA"),
    "variants": ("update", {"variant": "expired"}, lambda w: w.view.first_failure == "validity"),
    "countermeasure": ("update", {"byte_index": 3, "mask": 0}, lambda w: "untouched" in w.summary_text),
    "key_schedule": ("update", {"cipher": "AES128-SHA256"}, lambda w: "AES_128_CBC_SHA256" in w.summary_text),
    "tamper": ("update", {"offset": 3, "bit": 1}, lambda w: w.result.offset == 3 and w.result.bit == 1),
    "record_explorer": ("select", {"index": 1}, lambda w: w.record_list.value == 1),
}


@pytest.mark.parametrize(("name", "method", "arguments", "error", "words"), BAD_UPDATES, ids=lambda v: repr(v)[:40])
def test_a_bad_value_is_refused_and_the_widget_is_left_as_it_was(
    built: dict[str, Any], name: str, method: str, arguments: dict[str, Any], error: type[Exception], words: str
) -> None:
    widget = built[name]
    before = snapshot(widget)
    with pytest.raises(error) as raised:
        getattr(widget, method)(**arguments)
    assert words in str(raised.value) and "\n" not in str(raised.value)
    assert snapshot(widget) == before
    good_method, good_arguments, works = GOOD_UPDATES[name]
    getattr(widget, good_method)(**good_arguments)
    assert works(widget)


@pytest.mark.parametrize(
    ("make", "settings", "error", "words"),
    [
        (tcp.handshake_replay, {"loss_rate": NAN}, ValueError, "loss_rate must be a finite number"),
        (tcp.handshake_replay, {"delay_ms": 1000}, ValueError, "delay_ms must be from 1 to 500"),
        (client_hello.client_hello_builder, {"suites": "AES128-SHA"}, TypeError, "suites must be a list"),
        (client_hello.client_hello_builder, {"version": 0x0304}, ValueError, "version must be one of"),
        (server_hello.negotiation_explorer, {"offered": ["RC4-MD5"]}, ValueError, "each of offered"),
        (certificates.variant_explorer, {"variant": "nope"}, ValueError, "variant must be one of"),
        (session_keys.key_schedule_explorer, {"cipher": "RC4-MD5"}, ValueError, "cipher must be one of"),
        (records.tamper_lab, {"bit": 9}, ValueError, "bit must be one of"),
    ],
    ids=lambda value: getattr(value, "__name__", repr(value)[:30]),
)
def test_a_constructor_refuses_what_update_refuses(make, settings, error, words) -> None:
    """The settings a widget is built with go through the same checks (they used to be clamped or dropped)."""
    with pytest.raises(error, match=words):
        make(**settings)


@pytest.mark.parametrize(
    ("typed", "words"),
    [(".", "is empty"), ("a..b", "empty label"), ("x" * 64 + ".example", "at most 63"),
     ("a." * 127 + "bb", "at most 253"), ("caf\u00e9.example", "xn-- form"), ("a b", "only letters"),
     ("127.0.0.1", "RFC 6066")],
)  # fmt: skip
def test_typing_a_bad_server_name_shows_a_message(built: dict[str, Any], typed: str, words: str) -> None:
    builder = built["hello"]
    builder.update(extensions=client_hello.DEFAULT_EXTENSIONS)
    builder.server_name_box.value = typed  # what a learner's keystroke does: the observer runs update()
    assert builder.hello is None and builder.hello_bytes is None and builder.send_button.disabled
    assert words in builder.message and words in builder.status.value
    builder.server_name_box.value = "localhost."  # a trailing dot is the root: fine, and not sent
    assert builder.hello is not None and not builder.send_button.disabled
    assert builder.hello.extensions[0].host_name == "localhost"


def test_check_control_takes_its_rules_from_the_control() -> None:
    slider = widgets.FloatSlider(min=0.0, max=0.9)
    assert check_control("x", 0.9, slider) == 0.9 and check_control("x", None, slider) is None
    with pytest.raises(ValueError, match="x must be from 0 to 0.9, not 1"):
        check_control("x", 1, slider)
    menu = widgets.Dropdown(options=[("one", 1), ("two", 2)], value=1)
    assert check_control("n", 2, menu) == 2
    with pytest.raises(ValueError, match="n must be one of 1, 2; not True"):  # True == 1, but not for a user
        check_control("n", True, menu)
    with pytest.raises(ValueError, match="must be at least 3"):
        check_number("n", 2, 3)
    with pytest.raises(ValueError, match="not"):
        check_choice("c", [1], {1, 2})  # an unhashable value asked of a set is simply not a choice
