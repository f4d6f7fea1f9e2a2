"""Lesson 14's live runs and exercise 14's last step: every verdict is checked against the peer's own record:
sshd's replies and its log (Accepted/Failed/Partial/Postponed publickey, "not from a permitted host"), and our
SSHProbeServer's recorded verdicts (itself checked against asyncssh's and paramiko's clients in test_ssh_login)."""

from __future__ import annotations

import re

import pytest
from conftest import require

from handshake_lib.errors import DecodeError
from handshake_lib.peers.ssh_auth_runs import (
    OneTimeCodes,
    compare_authorized_keys,
    lesson_auth_sshd,
    lesson_keys,
    lesson_otp_server,
    login_with_key,
    otp_login,
    probe_methods,
    replay_signature,
    run_learner_signed_data,
    run_partial_success,
    signed_data_difference,
    sshd_auth_lines,
)
from handshake_lib.ssh.messages import UserauthFailure, UserauthInfoRequest, UserauthPkOk
from handshake_lib.ssh.userauth import (
    decode_publickey_signed_data,
    publickey_signed_data,
    request_fields,
    verify_publickey_request,
)


@pytest.fixture(scope="module")
def sshd():
    require("/usr/sbin/sshd", "lesson 14 runs against OpenSSH's sshd")
    peer = lesson_auth_sshd()
    yield peer.get()
    peer.stop()


@pytest.fixture(scope="module")
def otp():
    peer = lesson_otp_server()
    yield peer
    peer.stop()


def test_the_none_request_lists_what_sshd_offers_and_sshd_logs_it(sshd):
    probe = probe_methods(sshd)
    assert probe.result.methods == ("publickey",)
    assert probe.failure.message.methods == ("publickey",) and not probe.failure.message.partial_success
    assert probe.none_request.message.method == "none" and probe.none_request.message.user == sshd.user
    assert f"userauth-request for user {sshd.user} service ssh-connection method none" in probe.sshd_says
    assert 'userauth_finish: failure partial=0 next methods="publickey"' in probe.sshd_says
    assert "attempt 0 failures 0" in probe.sshd_says  # sshd does not count the first none request


def test_a_key_login_is_query_pk_ok_signature_and_the_blob_is_what_sshd_verified(sshd):
    keys = lesson_keys()
    login = login_with_key(sshd)
    assert login.accepted, login.error
    query, signed = request_fields(login.query.message), request_fields(login.signed_request.message)
    assert not query.has_signature and signed.has_signature and query.public_key == signed.public_key
    assert isinstance(login.pk_ok.message, UserauthPkOk) and login.pk_ok.message.public_key == query.public_key
    # the blob the lesson shows is the one the signature verifies over (sshd verified the same signature)
    assert verify_publickey_request(login.session_id, login.signed_request.message)
    keys.learner.host_key.verify(login.signature, login.signed_data, [signed.algorithm])
    blob = decode_publickey_signed_data(login.signed_data)
    assert (blob.session_id, blob.message_number, blob.user, blob.method, blob.has_signature) == (
        login.session_id, 50, sshd.user, "publickey", True,
    )  # fmt: skip
    fingerprint = re.escape(keys.learner.host_key.fingerprint())
    said = "\n".join(login.sshd_says)
    assert re.search(rf"Postponed publickey for {sshd.user} from 127\.0\.0\.1 port \d+ ssh2", said)  # the query
    accepted = rf"Accepted publickey for {sshd.user} from 127\.0\.0\.1 port \d+ ssh2: ED25519 {fingerprint}"
    assert re.search(accepted, said)


def test_a_replayed_signature_is_refused_by_sshd(sshd):
    first = login_with_key(sshd)
    run = replay_signature(sshd, first)
    assert first.accepted and not run.replayed.accepted
    assert run.valid_for_first and not run.valid_for_second
    assert run.replayed.session_id != first.session_id
    assert request_fields(run.replayed.signed_request.message).signature == first.signature  # the same bytes sent
    said = "\n".join(run.replayed.sshd_says)
    assert "Postponed publickey" in said  # the key itself is still authorized (PK_OK)
    fingerprint = re.escape(first.key.host_key.fingerprint())
    assert re.search(r"Failed publickey for \S+ from 127\.0\.0\.1 .*" + fingerprint, said)


def test_a_stranger_key_is_refused_at_the_query(sshd):
    login = login_with_key(sshd, lesson_keys().stranger)
    assert not login.accepted and login.pk_ok is None and login.signed_request is None
    assert login.error.endswith("permission denied (publickey)")
    assert any(line.startswith("Failed publickey") for line in login.sshd_says)


def test_our_server_wants_a_key_then_a_password_then_a_code(otp):
    keys, server = lesson_keys(), otp.get()
    no_key = otp_login(server, password="correct horse", code=otp.codes.current())
    assert not no_key.authenticated
    assert [v[1] for v in no_key.verdicts] == ["USERAUTH_FAILURE (can continue: publickey)"]
    wrong_key = otp_login(server, key=keys.stranger, password="correct horse", code=otp.codes.current())
    assert not wrong_key.authenticated and "not in authorized_keys" in wrong_key.verdicts[-1][2]
    bad_code = next(code for code in ("000000", "111111", "222222") if not otp.codes.check(code))
    wrong_code = otp_login(server, key=keys.learner, password="correct horse", code=bad_code)
    assert not wrong_code.authenticated
    assert wrong_code.verdicts[-1][2] == "keyboard-interactive: wrong answer in round 2"
    wrong_password = otp_login(server, key=keys.learner, password="nope", code=otp.codes.current())
    assert wrong_password.verdicts[-1][2] == "keyboard-interactive: wrong answer in round 1"
    good = otp_login(server, key=keys.learner, password="correct horse", code=otp.codes.current())
    assert good.authenticated, good
    assert [sent for sent, _, _ in good.verdicts] == [
        "none", "publickey query", "publickey, signed", "keyboard-interactive", "answer to round 1",
        "answer to round 2",
    ]  # fmt: skip
    assert good.verdicts[2][1] == "USERAUTH_FAILURE, partial success (can continue: keyboard-interactive)"
    assert good.verdicts[-1][1] == "USERAUTH_SUCCESS"
    rounds = [e.message for e in good.transcript if isinstance(e.message, UserauthInfoRequest)]
    assert [(p.text, p.echo) for r in rounds for p in r.prompts] == [
        ("Password: ", False), ("One-time code from your app: ", True),
    ]  # fmt: skip
    assert good.banner.startswith("Handshakes lesson 14")
    served = server.connections[-1]
    assert served.user is not None and served.user.methods == ("publickey", "keyboard-interactive")


def test_one_time_codes_follow_rfc_6238():
    # RFC 6238 appendix B, SHA-1, the 20-byte secret "12345678901234567890": 8-digit 94287082 at T=59;
    # our 6-digit code is its last six digits (the same truncation, modulo 10^6).
    clock = [59.0]
    codes = OneTimeCodes(b"12345678901234567890", clock=lambda: clock[0])
    assert codes.current() == "287082"
    assert codes.check("287082") and not codes.check("287083") and not codes.check("28708") and not codes.check(None)
    clock[0] = 59.0 + 30  # the next step: the previous code is still accepted, not older ones
    assert codes.check("287082")
    clock[0] = 59.0 + 60
    assert not codes.check("287082")


def test_sshd_two_keys_required_is_partial_success_then_success():
    require("/usr/sbin/sshd", "lesson 14 runs against OpenSSH's sshd")
    keys = lesson_keys()
    run = run_partial_success()
    assert run.accepted and run.methods == ("publickey", "publickey"), run.error
    assert [f.message.partial_success for f in run.failures] == [False, True]
    assert isinstance(run.partial.message, UserauthFailure) and run.partial.message.methods == ("publickey",)
    said = "\n".join(run.sshd_says)
    assert re.search(r"Partial publickey for \S+ .*" + re.escape(keys.learner.host_key.fingerprint()), said)
    assert re.search(r"Accepted publickey for \S+ .*" + re.escape(keys.second.host_key.fingerprint()), said)
    assert 'userauth_finish: failure partial=1 next methods="publickey"' in said
    one_key = run_partial_success([keys.learner])
    assert not one_key.accepted and [f.message.partial_success for f in one_key.failures] == [False, True]


def test_authorized_keys_options_our_server_and_sshd_agree():
    require("/usr/sbin/sshd", "lesson 14 runs against OpenSSH's sshd")
    options = ["", 'from="10.0.0.0/8"', 'from="127.0.0.1,::1"', 'command="echo hello",restrict', 'from="!127.0.0.1,*"',
               "no-such-option", 'FROM="127.0.0.0/8"']  # fmt: skip
    verdicts = compare_authorized_keys(options)
    assert [v.sshd for v in verdicts] == [True, False, True, True, False, False, True]
    assert all(v.agree for v in verdicts), [(v.options, v.ours, v.sshd) for v in verdicts]
    assert verdicts[3].forced_command == "echo hello" and verdicts[3].restricted
    assert verdicts[5].parsed is not None and verdicts[5].parsed.unknown_options == ("no-such-option",)
    said = "\n".join(verdicts[1].sshd_says)
    assert "authorized_keys:2: Authentication tried for" in said and "required=10.0.0.0/8" in said
    assert "authorized_keys:6: bad key options: unknown key option" in "\n".join(verdicts[5].sshd_says)
    with pytest.raises(ValueError):
        compare_authorized_keys([])


def test_the_learners_blob_decides_the_login_to_sshd(sshd):
    right = run_learner_signed_data(publickey_signed_data, sshd=sshd)
    assert right.accepted and right.difference == "" and right.yours == right.expected
    assert any(line.startswith("Accepted publickey") for line in right.sshd_says)

    def no_session_id(session_id, user, service, algorithm, public_key):
        return publickey_signed_data(b"", user, service, algorithm, public_key)

    def wrong_number(session_id, user, service, algorithm, public_key):
        blob = publickey_signed_data(session_id, user, service, algorithm, public_key)
        at = 4 + len(session_id)
        return blob[:at] + b"\x33" + blob[at + 1 :]

    for wrong, field in ((no_session_id, "session_id"), (wrong_number, "message_number")):
        run = run_learner_signed_data(wrong, sshd=sshd)
        assert not run.accepted and run.difference.startswith(f"field {field}:"), run.summary()
        assert any(line.startswith("Failed publickey") for line in run.sshd_says), run.summary()
    broken = run_learner_signed_data(lambda *args: "not bytes", sshd=sshd)
    assert not broken.accepted and broken.difference == "signed_data must return bytes, not str"
    assert "InternalError" in broken.error
    raising = run_learner_signed_data(lambda *args: 1 / 0, sshd=sshd)
    assert not raising.accepted and "ZeroDivisionError" in raising.error


def test_signed_data_difference_and_the_decoder_name_the_field():
    blob = publickey_signed_data(bytes(32), "root", "ssh-connection", "ssh-ed25519", b"key")
    assert signed_data_difference(blob, blob) == ""
    other = publickey_signed_data(bytes(32), "root", "ssh-connection", "rsa-sha2-256", b"key")
    assert signed_data_difference(other, blob).startswith("field algorithm: yours is 'rsa-sha2-256'")
    assert "do not read as the eight fields" in signed_data_difference(blob[:-1], blob)
    with pytest.raises(DecodeError):
        decode_publickey_signed_data(blob + b"\x00")
    spans = {span.field: span for span in decode_publickey_signed_data(blob).spans}
    assert (spans["signed_data.session_id"].offset, spans["signed_data.session_id"].length) == (4, 32)
    assert spans["signed_data.message_number"].offset == 36


def test_sshd_auth_lines_keep_the_verdicts_and_drop_the_noise():
    log = (
        "debug3: receive packet: type 50 [preauth]\n"
        "debug1: userauth-request for user root service ssh-connection method none [preauth]\n"
        "Failed publickey for root from 127.0.0.1 port 1 ssh2: ED25519 SHA256:x\n"
        "debug1: /tmp/handshakes-sshd-abc/authorized_keys:1: key options: command\n"
        "debug3: /tmp/handshakes-sshd-abc/authorized_keys:1: key options: command\n"
    )
    assert sshd_auth_lines(log) == [
        "userauth-request for user root service ssh-connection method none",
        "Failed publickey for root from 127.0.0.1 port 1 ssh2: ED25519 SHA256:x",
        "authorized_keys:1: key options: command",
    ]
