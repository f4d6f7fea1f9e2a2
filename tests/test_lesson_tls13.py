"""Lesson 10's layout (handshake_lib/lessons/tls13.py and viz/key_schedule.py): what the learner sees changes
with the inputs.  The runs are live (OpenSSL 3 through Python ``ssl``, our TLS 1.3 server), made once per
module; what they prove is tested in tests/test_peers_tls13_runs.py."""

from __future__ import annotations

import html

import pytest

from handshake_lib.lessons.tls13 import (
    REMOVED,
    compare_versions,
    exchange_table,
    hello_retry_picture,
    hello_retry_run,
    hybrid_runs,
    hybrid_share_rows,
    key_schedule_explorer,
    key_schedule_picture,
    key_share_table,
    message_label,
    removed_table,
    transcript_viewer,
    versions_side_by_side,
)
from handshake_lib.viz.key_schedule import KEY_SCHEDULE_LAYOUT, draw_key_schedule

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def comparison():
    return compare_versions(repeat=2)


def _gids(figure) -> set[str]:
    return {artist.get_gid() for ax in figure.axes for artist in ax.get_children() if artist.get_gid()}


def test_two_ladders_side_by_side_with_the_encrypted_messages_in_braces(comparison) -> None:
    figure = versions_side_by_side(comparison)
    left, right = figure.axes
    assert left.get_ylim() == right.get_ylim()  # one time scale for both
    labels = [t.get_text() for t in right.texts]
    assert any("{EncryptedExtensions}" in t and "{Certificate}" in t and "{Finished}" in t for t in labels), labels
    assert any("ServerHello" in t and "{Certificate}" not in t for t in [x.get_text() for x in left.texts])
    assert "TLS 1.2" in left.get_title() and "TLS 1.3" in right.get_title()


def test_the_exchange_table_counts_round_trips_and_clear_messages(comparison) -> None:
    table = exchange_table(comparison)
    twelve, thirteen = table.split("<td>TLS 1.3</td>")
    assert "<td>2</td>" in twelve and "Certificate" in twelve.split("</tr>")[-2]
    assert thirteen.startswith("<td>1</td>") and "ClientHello, ServerHello</td>" in thirteen


def test_the_record_viewer_shows_the_inner_type_of_a_13_record(comparison) -> None:
    viewer = transcript_viewer(comparison)
    names = list(viewer.responses)
    viewer.update(version=names[1], record=0)
    assert "in the clear" in viewer.status_text and len(viewer.inside_box.children) == 1
    certificate = next(i for i, e in enumerate(comparison.tls13.transcript) if "{Certificate}" in message_label(e))
    text = viewer.update(record=certificate)
    assert (
        "{Certificate}" in text and "outer type 23" in viewer.status_text and "inside: handshake" in viewer.status_text
    )
    assert viewer.inside_box.children[1].data == comparison.tls13.transcript[certificate].plaintext
    before = viewer.position.value
    assert "has no record number 99" in viewer.update(record=99) and viewer.record_slider.value == certificate
    assert before != viewer.position.value
    with pytest.raises(ValueError):
        viewer.update(version="TLS 0.9")


def test_the_key_schedule_picture_and_explorer_show_the_live_values(comparison) -> None:
    schedule = comparison.tls13.handshake.key_schedule
    figure = key_schedule_picture(comparison.tls13, selected="handshake_secret")
    assert {f"step:{s.name}" for s in schedule.steps} <= _gids(figure)
    texts = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert schedule.value("master_secret")[:8].hex() in texts
    explorer = key_schedule_explorer(comparison)
    text = explorer.update(step="server_handshake_traffic_secret")
    assert schedule.value("server_handshake_traffic_secret").hex() in text
    assert "SERVER_HANDSHAKE_TRAFFIC_SECRET: the same" in text and 'label "tls13 s hs traffic"' in text
    assert explorer.label_view is not None and b"tls13 s hs traffic" in explorer.label_view.data
    text = explorer.update(step="handshake_secret")
    assert "HKDF-Extract" in text and explorer.label_view is None and "does not log" in text


def test_a_step_the_picture_does_not_place_is_still_listed() -> None:
    from handshake_lib.tls.key_schedule13 import ScheduleStep

    steps = [ScheduleStep("early_secret", "HKDF-Extract", (), bytes(32)), ScheduleStep("odd", "x", (), b"\x01" * 32)]
    figure = draw_key_schedule(steps)
    assert {"step:early_secret", "step:odd"} <= _gids(figure)
    assert "step:master_secret" not in _gids(figure) and "master_secret" in KEY_SCHEDULE_LAYOUT


def test_hello_retry_and_hybrid_key_shares() -> None:
    response, _ = hello_retry_run()
    figure = hello_retry_picture(response)
    assert any("HelloRetryRequest" in t.get_text() for t in figure.axes[0].texts)
    table = key_share_table(hybrid_share_rows(hybrid_runs()))
    assert "<td>X25519MLKEM768</td><td>1216</td>" in table and "<td>X25519MLKEM768</td><td>1120</td>" in table
    assert "<td>x25519</td><td>32</td>" in table


def test_what_13_removed() -> None:
    table = removed_table()
    assert all(html.escape(what) in table for what, _ in REMOVED) and "RSA key exchange" in table and "CBC" in table


def test_the_state_tables_highlight_the_live_paths(comparison) -> None:
    """The client's path through its table after a HelloRetryRequest, the server's through a plain handshake:
    both replayed from the live transcript (states13.replay), both ending in CONNECTED."""
    from handshake_lib.lessons.tls13 import state_machine_picture13
    from handshake_lib.peers.tls13_runs import hello_retry_run
    from handshake_lib.tls.connection13 import recorded
    from handshake_lib.tls.states13 import State, replay

    retry, _ = hello_retry_run()
    client_path = replay("client", recorded(retry.transcript))
    assert State.WAIT_SERVER_HELLO_AFTER_RETRY in client_path and client_path[-1] is State.CONNECTED
    server_path = replay("server", recorded(comparison.tls13.transcript))
    assert State.WAIT_SECOND_CLIENT_HELLO not in server_path and State.CONNECTED in server_path
    assert State.ERROR not in client_path + server_path
    for role, response in (("client", retry), ("server", comparison.tls13)):
        figure = state_machine_picture13(role, response)
        texts = {text.get_text() for ax in figure.axes for text in ax.texts}
        assert "WAIT_ENCRYPTED_EXTENSIONS" in texts if role == "client" else "WAIT_FLIGHT2" in texts
