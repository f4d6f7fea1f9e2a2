"""Lesson 05's layout (handshake_lib/lessons/premaster.py) and its widget benchmarks (bench/cases/premaster.py).

What the widgets compute is tested in the library (test_tls_rsa_kx.py, test_tls_pair.py); these tests
check what the learner sees, and that the benchmark callbacks change it.
"""

from __future__ import annotations

import pytest

from bench.cases import premaster as premaster_bench
from handshake_lib.lessons.premaster import client_key_exchange_view, countermeasure_demo, padding_view
from handshake_lib.tls import rsa_kx
from handshake_lib.tls.pair import PairKeys


@pytest.fixture(scope="module")
def keys() -> PairKeys:
    return PairKeys.fresh()


def test_client_key_exchange_view_annotates_the_handshake_message(keys: PairKeys) -> None:
    ciphertext = rsa_kx.encrypt_pre_master_secret(bytes(48), keys.private_key.public_key())
    view = client_key_exchange_view(ciphertext)
    assert view.data[:1] == b"\x10" and view.data[1:4] == (258).to_bytes(3, "big")
    assert view.data[4:6] == (256).to_bytes(2, "big") and view.data[6:] == ciphertext
    assert any("encrypted_pre_master_secret" in span.field for span in view.spans)
    assert view.title_html.value.endswith("<b>ClientKeyExchange (262 bytes)</b>")


def test_padding_view_names_the_parts_and_gives_the_verdict(keys: PairKeys) -> None:
    ciphertext = rsa_kx.encrypt_pre_master_secret(bytes([3, 3]) + bytes(46), keys.private_key.public_key())
    block = rsa_kx.padded_block(ciphertext, keys.private_key)
    view = padding_view(block)
    assert view.data == block and "(valid padding)" in view.title_html.value
    assert [span.field for span in view.spans][:2] == ["eme_pkcs1_v1_5.leading_zero", "eme_pkcs1_v1_5.block_type"]
    broken = padding_view(b"\x00\x01" + block[2:])
    assert "invalid padding: the block type is 0x01, not 0x02" in broken.title_html.value
    assert padding_view(block, "mine").title_html.value.endswith("<b>mine</b>")


def test_countermeasure_widget_reacts_to_byte_and_mask(keys: PairKeys) -> None:
    demo = countermeasure_demo(byte_index=10, mask=0x01, keys=keys)
    assert "sent: byte 10 XOR 0x01" in demo.summary_text
    assert "!= the client's" in demo.summary_text and "alert the server sends: bad_record_mac (20)" in demo.summary_text
    assert "failed at the client's Finished" in demo.summary_text
    assert not demo.check.valid and demo.check.problem in demo.summary_text
    assert demo.block_box.children and demo.block_box.children[0].data == demo.check.block

    result = demo.update(mask=0)
    assert result is not None and result.completed
    assert "sent: untouched ciphertext" in demo.summary_text and "= the client's" in demo.summary_text
    assert "padding check (hidden inside the server): valid" in demo.summary_text
    assert "handshake: completed" in demo.summary_text and "alert" not in demo.summary_text

    demo.update(byte_index=255, mask=0xFF)
    assert demo.byte_slider.value == 255 and demo.mask_box.value == 0xFF
    assert "sent: byte 255 XOR 0xff" in demo.summary_text
    assert "<b>records, as the server saw them</b>" in demo.steps.value
    # Moving the slider is the same callback as update().
    demo.byte_slider.value = 3
    assert "sent: byte 3 XOR 0xff" in demo.summary_text


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"byte_index": 256}, "byte_index must be from 0 to 255"), ({"mask": 300}, "mask must be from 0 to 255")],
)
def test_countermeasure_widget_refuses_what_its_controls_do_not_offer(keys: PairKeys, settings, message) -> None:
    demo = countermeasure_demo(keys=keys)
    before = (demo.byte_slider.value, demo.summary_text)
    with pytest.raises(ValueError, match=message):
        demo.update(**settings)
    assert (demo.byte_slider.value, demo.summary_text) == before


def test_benchmarks_move_the_widget(keys: PairKeys) -> None:
    assert set(premaster_bench.BENCHMARKS) == {"countermeasure_demo.update(byte_index)", "padding_view(padded_block)"}
    demo = countermeasure_demo(byte_index=100, mask=0, keys=keys)
    callback = premaster_bench.bench_tamper(demo)
    shown = []
    for _ in range(3):
        result = callback()
        assert result is demo.result and not result.completed
        shown.append(demo.summary_text.splitlines()[0])
    assert shown == ["sent: byte 0 XOR 0x10", "sent: byte 7 XOR 0x10", "sent: byte 14 XOR 0x10"]

    draw = premaster_bench.bench_padding_view(keys)
    first, second = draw(), draw()
    assert "(valid padding)" in first.title_html.value and first.data[:2] == b"\x00\x02"
    assert first.data != second.data  # a fresh ciphertext on every call: nothing cached
