"""Lesson 14 (handshake_lib.lessons.ssh_user_authentication) against a real OpenSSH sshd and our server: what
each widget shows changes with its inputs and agrees with the peer's record (sshd's log, our server's verdicts),
and bad input is a short message or a refused update that changes nothing."""

from __future__ import annotations

import pytest
from conftest import require

from handshake_lib.lessons.ssh_user_authentication import (
    OneTimeCodeLogin,
    PublickeyLoginView,
    compare_authorized_keys,
    lesson_auth_sshd,
    lesson_otp_server,
    login_with_key,
    message_view,
    methods_text,
    options_table,
    partial_text,
    probe_methods,
    replay_signature,
    replay_text,
    run_partial_success,
    transcript_text,
)


@pytest.fixture(scope="module")
def sshd():
    require("/usr/sbin/sshd", "lesson 14 runs against OpenSSH's sshd")
    peer = lesson_auth_sshd()
    yield peer.get()
    peer.stop()


@pytest.fixture(scope="module")
def login(sshd):
    return login_with_key(sshd)


@pytest.fixture(scope="module")
def otp_peer():
    peer = lesson_otp_server()
    yield peer
    peer.stop()


def snapshot(widget) -> list[tuple[str, object]]:
    values, stack = [], [widget]
    while stack:
        item = stack.pop()
        if "value" in item.trait_names():
            values.append((type(item).__name__, item.value))
        stack.extend(reversed(getattr(item, "children", ())))
    return values


def test_methods_text_and_the_failure_view_show_sshds_answer(sshd):
    probe = probe_methods(sshd)
    text = methods_text(probe)
    assert "can continue: publickey; partial success: False" in text
    assert "userauth-request for user" in text and 'next methods="publickey"' in text
    view = message_view(probe.failure)
    fields = [span.field for span in view.spans]
    assert any(f.endswith("authentications_that_can_continue") for f in fields)
    assert any(f.endswith("partial_success") for f in fields)
    assert view.data[0] == 51  # SSH_MSG_USERAUTH_FAILURE


def test_login_view_shows_each_part_and_highlights_the_session_id(login):
    view = PublickeyLoginView(login)
    blob = view.view
    assert blob.data == login.signed_data and blob.data[4 : 4 + len(login.session_id)] == login.session_id
    assert blob.spans[blob.selected].field == "signed_data.session_id"
    assert "session_id" in blob.detail.value
    shown = {}
    for part, number in (("query", 50), ("PK_OK", 60), ("signed request", 50)):
        shown[part] = view.update(part=part)
        assert view.part_buttons.value == part and shown[part].data[0] == number
    assert len(shown["signed request"].data) > len(shown["query"].data) + 64  # the signature is added
    before = snapshot(view)
    with pytest.raises(ValueError):
        view.update(part="the password")
    with pytest.raises(TypeError):
        view.update(part=3)
    assert snapshot(view) == before


def test_replay_text_says_sshd_refused(sshd, login):
    text = replay_text(replay_signature(sshd, login))
    assert "the same signature sent again: refused" in text
    assert "verifies over the first blob: True; over the second: False" in text
    assert "Failed publickey" in text


def test_one_time_code_login_answers_with_the_servers_verdicts(otp_peer):
    widget = OneTimeCodeLogin(otp_peer)
    assert widget.show_code() in widget.app.value
    result = widget.update(key="my key (learner@laptop)", password="correct horse", code=widget.show_code())
    assert result.authenticated and "logged in" in widget.output.value
    assert "USERAUTH_FAILURE, partial success" in widget.output.value
    assert "SSH_MSG_USERAUTH_INFO_RESPONSE" in widget.output.value  # the transcript
    result = widget.update(password="wrong")
    assert not result.authenticated and "wrong answer in round 1" in widget.output.value
    result = widget.update(key="no key", password="correct horse")
    assert not result.authenticated and "permission denied (publickey)" in widget.output.value
    # bad input: a short message, no connection
    connections = len(otp_peer.get().connections)
    assert widget.update(code="12ab56") is None and "6 digits" in widget.output.value
    assert len(otp_peer.get().connections) == connections
    before = snapshot(widget)
    with pytest.raises(ValueError):
        widget.update(key="a key I made up")
    with pytest.raises(TypeError):
        widget.update(password=123456)
    assert snapshot(widget) == before


def test_partial_text_and_options_table_follow_sshd():
    require("/usr/sbin/sshd", "lesson 14 runs against OpenSSH's sshd")
    run = run_partial_success()
    text = partial_text(run)
    assert "partial_success=FALSE" in text and "partial_success=TRUE" in text
    assert "Partial publickey for" in text and "Accepted publickey for" in text
    assert "SSH_MSG_USERAUTH_SUCCESS" in transcript_text(run.transcript)
    table = options_table(compare_authorized_keys(['from="10.0.0.0/8"', 'command="echo hi",restrict', "bogus"]))
    assert table.count("<tr>") == 4 and "<b>NO</b>" not in table
    assert "not from a permitted host" in table and "runs &#x27;echo hi&#x27; whatever the client asks" in table
    assert "unknown option(s) bogus" in table
