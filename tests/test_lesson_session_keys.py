"""Lesson 06's layout (handshake_lib/lessons/session_keys.py) and its widget benchmark (bench/cases/session_keys.py).

What the widgets compute is tested in the library (test_tls_prf.py, test_tls_key_schedule.py); these
tests check what the learner sees, and that the benchmark callback changes it.
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from bench.cases import session_keys as session_keys_bench  # noqa: E402
from handshake_lib.lessons.session_keys import (  # noqa: E402
    key_block_layout_html,
    key_schedule_explorer,
    p_hash_picture,
)
from handshake_lib.tls.key_schedule import recorded_handshake  # noqa: E402
from handshake_lib.tls.suites import RSA_SUITE_NAMES, SUITES  # noqa: E402


def test_p_hash_picture_draws_one_column_per_round() -> None:
    texts = [text.get_text() for text in p_hash_picture(100).axes[0].texts]
    assert "A(0) = seed" in texts and "A(4) + seed)" in " ".join(texts)
    assert [t for t in texts if t.startswith("block ")] == [
        "block 1\n32 bytes",
        "block 2\n32 bytes",
        "block 3\n32 bytes",
        "block 4\n4 of 32 bytes",
    ]
    assert len([t for t in p_hash_picture(48, "sha384").axes[0].texts if t.get_text().startswith("block ")]) == 1


@pytest.mark.parametrize("suite", [s for s, p in SUITES.items() if p.key_exchange == "RSA"], ids=lambda s: s.name)
def test_key_block_layout_html_draws_every_part(suite) -> None:
    params = SUITES[suite]
    html = key_block_layout_html(params)
    assert f"key block of {params.key_block_length} bytes" in html
    if params.is_aead:
        assert "GCM&#x27;s authentication tag" in html or "GCM's authentication tag" in html
        assert "client_write_IV (4)" in html and "client_write_MAC_key (" not in html
    else:
        assert f"client_write_MAC_key ({params.mac_key_length})" in html and "client_write_IV (16)" in html
    block = bytes(range(params.key_block_length))
    with_values = key_block_layout_html(params, block)
    assert f"<code>{block[-params.fixed_iv_length :].hex()}</code>" in with_values


def test_key_schedule_widget_recomputes_for_each_suite_and_mode() -> None:
    explorer = key_schedule_explorer()
    for name, ems in itertools.product(RSA_SUITE_NAMES, (True, False)):
        derived = explorer.update(cipher=name, extended_master_secret=ems)
        recording = recorded_handshake(name, ems)
        assert derived is not None and derived.matches_openssl
        assert explorer.suite_menu.value == name and explorer.ems_box.value is ems
        assert f"OpenSSL's key log line {recording.openssl_master_secret.hex()}  -> the same" in explorer.summary_text
        assert ('"extended master secret", session_hash' in explorer.summary_text) is ems
        assert ('"master secret", client_random + server_random' in explorer.summary_text) is not ems
        hash_name = recording.params.prf_hash.upper()
        assert f"PRF_{hash_name}(master_secret" in explorer.summary_text
        assert f"key block of {recording.params.key_block_length} bytes" in explorer.layout_html.value
        assert derived.keys.server_write_key.hex() in explorer.layout_html.value


def test_key_schedule_widget_refuses_an_unknown_suite() -> None:
    explorer = key_schedule_explorer(cipher="AES128-SHA")
    with pytest.raises(ValueError, match="cipher must be one of .*'AES128-SHA'.*; not 'RC4-MD5'"):
        explorer.update(cipher="RC4-MD5")
    assert explorer.suite_menu.value == "AES128-SHA"
    explorer.ems_box.value = False  # the checkbox runs the same callback
    assert '"master secret", client_random + server_random' in explorer.summary_text


def test_benchmark_moves_the_widget() -> None:
    assert set(session_keys_bench.BENCHMARKS) == {"key_schedule_explorer.update(cipher, ems)"}
    explorer = key_schedule_explorer()
    callback = session_keys_bench.bench_explorer(explorer)
    seen = []
    for _ in range(2 * len(RSA_SUITE_NAMES)):
        derived = callback()
        assert derived is explorer.derived and derived.matches_openssl
        seen.append((explorer.suite_menu.value, explorer.ems_box.value, explorer.layout_html.value))
    assert [(suite, ems) for suite, ems, _ in seen] == list(itertools.product(RSA_SUITE_NAMES, (True, False)))
    assert len({layout for _, _, layout in seen}) == len(seen)  # every call redrew the key block
