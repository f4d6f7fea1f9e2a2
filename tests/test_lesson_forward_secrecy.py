"""Lesson 09's layout (handshake_lib/lessons/forward_secrecy.py): what the learner sees changes with the inputs.

The recordings are live (OpenSSL 3 through Python ``ssl``, made once per module); what the decoder and
the stages compute is tested in tests/test_peers_forward_secrecy_runs.py and tests/test_tls_capture.py.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from handshake_lib.lessons.forward_secrecy import (
    PROTECTION_ROWS,
    ServerKeyExchangeView,
    ecdhe_steps,
    ecdhe_steps_html,
    key_sources,
    page_view,
    protection_table,
    record_sessions,
    server_key_exchange_view,
    stolen_key_viewer,
)
from handshake_lib.tls.constants import ContentType

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def recording():
    return record_sessions()


@pytest.fixture(scope="module")
def opened(recording):
    return recording.decrypt_with_stolen_key()


def test_key_sources_say_where_the_keys_came_from_and_where_ecdhe_stopped(recording, opened):
    text = key_sources(opened)
    rsa_part, ecdhe_part = text.split("ECDHE: ")
    assert "the server's RSA private key" in rsa_part and recording.rsa.openssl_master_secret.hex() in rsa_part
    assert "5 protected, 5 of those decrypted" in rsa_part
    assert (
        "0 of those decrypted" in ecdhe_part and "stopped: the pre-master secret came from an ephemeral" in ecdhe_part
    )


def test_the_viewer_shows_plaintext_for_rsa_and_the_reason_for_ecdhe(opened):
    viewer = stolen_key_viewer(opened)
    rsa_session = opened["RSA key exchange"]
    first_protected = next(i for i, e in enumerate(rsa_session.entries) if e.encrypted)
    viewer.update(record=0)
    assert viewer.plain_view is None and "in the clear" in viewer.status_text
    assert viewer.hexview is not None and viewer.hexview.data == rsa_session.entries[0].record
    text = viewer.update(record=first_protected)
    assert "Finished" in text and viewer.status_text == "decrypted"
    assert viewer.plain_view is not None and viewer.plain_view.data == rsa_session.entries[first_protected].plaintext
    page = next(i for i, e in enumerate(rsa_session.entries) if e.content_type == ContentType.application_data
                and e.direction == "server->client")  # fmt: skip
    viewer.update(record=page)
    assert b"Hello from OpenSSL" in viewer.plain_view.data
    ecdhe = opened["ECDHE"]
    protected = next(i for i, e in enumerate(ecdhe.entries) if e.encrypted)
    viewer.update(session="ECDHE", record=protected)
    assert viewer.plain_view is None and viewer.status_text.startswith("not decrypted: the pre-master secret came")
    assert viewer.record_slider.max == len(ecdhe.entries) - 1


def test_the_viewer_answers_bad_input_without_changing(opened):
    viewer = stolen_key_viewer(opened)
    viewer.update(record=3)
    assert "has no record number 99" in viewer.update(record=99) and viewer.record_slider.value == 3
    assert "ECDHE has no record number 40" in viewer.update(session="ECDHE", record=40)
    assert viewer.session_menu.value == "RSA key exchange"  # nothing changed
    with pytest.raises(ValueError):
        viewer.update(session="DHE")
    with pytest.raises(TypeError):
        viewer.update(record="first")
    assert viewer.session_menu.value == "RSA key exchange" and viewer.record_slider.value == 3


def test_choosing_a_session_in_the_menu_starts_at_its_first_record(opened):
    viewer = stolen_key_viewer(opened)
    viewer.update(record=5)
    viewer.session_menu.value = "ECDHE"  # as a learner would
    assert viewer.record_slider.value == 0 and "ClientHello" in viewer.position.value


def test_ecdhe_steps_hold_the_real_values(recording, opened):
    steps = ecdhe_steps(recording.ecdhe, opened["ECDHE"])
    by_name = {step.name.split(" =")[0]: step for step in steps}
    private = x25519.X25519PrivateKey.from_private_bytes(by_name["client private value"].value)
    server = x25519.X25519PublicKey.from_public_bytes(by_name["server public value"].value)
    assert private.exchange(server) == by_name["pre-master secret"].value
    assert by_name["server private value"].value == b""
    assert steps[-1].value == recording.ecdhe.openssl_master_secret
    html = ecdhe_steps_html(steps)
    assert by_name["client public value"].value.hex() in html and "never left OpenSSL" in html
    with pytest.raises(ValueError):
        ecdhe_steps(recording.rsa, opened["RSA key exchange"])


def test_server_key_exchange_view_checks_the_real_bytes_and_refuses_tampered_ones(recording):
    view = server_key_exchange_view(recording)
    assert view.verdict is True and "VALID" in view.result.value
    params = view.message.params_bytes()
    assert params.hex() in view.result.value.replace("\n  ", "")
    assert view.hexview.data[4 : 4 + len(params)] == params  # the params follow the 4-byte message header
    assert view.update(tamper=ServerKeyExchangeView.TAMPERING[1]) is False and "INVALID" in view.result.value
    assert view.update(tamper=ServerKeyExchangeView.TAMPERING[2]) is False
    assert view.update(tamper="none") is True
    with pytest.raises(ValueError):
        view.update(tamper="every bit")
    assert view.tamper_menu.value == "none"


def test_protection_table_and_page(opened):
    table = protection_table()
    assert table.count("<tr>") == len(PROTECTION_ROWS) + 1 and "forward secrecy" in table
    assert "Hello from OpenSSL" in page_view(opened["RSA key exchange"]).value
    assert "nothing to show" in page_view(opened["ECDHE"]).value
