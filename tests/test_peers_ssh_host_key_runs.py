"""Lesson 13's live runs and exercise 13's last step against OpenSSH: a changed key refused by our client and
by OpenSSH's ssh in the same words; the learner's check deciding real connections to sshd, right and wrong."""

from __future__ import annotations

import pytest
from conftest import require

from handshake_lib.errors import HostKeyChanged, UnknownHostKey
from handshake_lib.peers.openssh import openssh_server
from handshake_lib.peers.ssh_host_key_runs import (
    HOST_KEY_CASES,
    keygen_fingerprint,
    learner_host_key_stage,
    run_changed_host_key,
    run_learner_host_key_checks,
)
from handshake_lib.ssh.hostkeys import HostKey, HostKeyPair
from handshake_lib.ssh.known_hosts import HostKeyPolicy, KnownHosts, known_hosts_line


@pytest.fixture(scope="module")
def sshd():
    require("/usr/sbin/sshd", "exercise 13 runs against OpenSSH's sshd")
    require("ssh", "OpenSSH's client is the second opinion on a changed key")
    with openssh_server(host_key_types=("ed25519",)) as server:
        yield server


def library_answer(text: str, host: str, port: int, key: str) -> str:
    return KnownHosts.parse(text).lookup(host, port, HostKey.from_openssh(key)).status.value


@pytest.mark.parametrize("hashed", [True, False])
def test_a_changed_key_is_refused_by_both_clients_with_the_same_warning(sshd, hashed):
    run = run_changed_host_key(sshd, hashed=hashed)
    assert run.ours_error == "HostKeyChanged" and run.openssh_refused
    assert run.server_fingerprint != run.known_fingerprint
    for text in (run.ours, run.openssh):
        assert "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!" in text
        assert f"The fingerprint for the ED25519 key sent by the remote host is\n{run.server_fingerprint}." in text
        assert "Offending ED25519 key in" in text and text.rstrip().endswith("Host key verification failed.")
    # Line for line, OpenSSH's words and ours are the same (the file's path is the same file).
    assert run.ours.strip().splitlines() == [line.rstrip() for line in run.openssh.strip().splitlines()]


def test_the_library_check_lets_the_known_server_in_and_refuses_the_changed_key(sshd):
    run = run_learner_host_key_checks(sshd=sshd)
    for name, case in HOST_KEY_CASES.items():
        assert run[name].as_the_library_decides, run.summary()
        assert run[name].went_through is case.goes_through
    assert run["known-hashed"].methods == ("publickey",)  # sshd's answer to the none request
    assert run["unknown"].added  # accept-new wrote the line
    assert run["changed"].refused == "HostKeyChanged"
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in run["changed"].openssh_says  # OpenSSH, same file


def test_each_case_text_gets_the_answer_the_case_expects_from_the_library(sshd):
    # The cases' known_hosts texts are what they claim: the library's lookup gives each its expected answer.
    answers = {}

    def spy(text, host, port, key):
        answers[text] = library_answer(text, host, port, key)
        return answers[text]

    run = run_learner_host_key_checks(spy, sshd=sshd, ask_openssh=False)
    for name, case in HOST_KEY_CASES.items():
        assert library_answer(run[name].known_hosts, sshd.host, sshd.port, sshd.host_keys["ed25519"]) == case.expected
        assert run[name].yours == repr(case.expected) and run[name].as_the_library_decides


def without_hashed(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("|1|"))


@pytest.mark.parametrize(
    ("wrong", "fails"),
    [
        (lambda text, host, port, key: "match", {"changed"}),  # trusts everything
        # never hashes: a hashed line is invisible
        (lambda text, host, port, key: library_answer(without_hashed(text), host, port, key), {"known-hashed"}),
        # ignores the port: [host]:port lines never match, the port-22 line with another key looks changed
        (lambda text, host, port, key: library_answer(text, host, 22, key), {"known-hashed", "known-plain", "unknown"}),
        (lambda text, host, port, key: None, {"known-hashed", "known-plain", "unknown"}),  # forgot to return
        (lambda text, host, port, key: 1 / 0, {"known-hashed", "known-plain", "unknown"}),  # raises
    ],
)
def test_a_wrong_check_changes_what_happens_and_the_run_says_so(sshd, wrong, fails):
    run = run_learner_host_key_checks(wrong, sshd=sshd, ask_openssh=False)
    assert {name for name, case in run.runs.items() if not case.as_the_library_decides} == fails
    summary = run.summary()
    assert summary.count("WRONG") == len(fails)


def test_the_stage_keeps_the_library_policy_for_unknown_keys():
    key = HostKeyPair.generate("ssh-ed25519").host_key
    stage = learner_host_key_stage(library_answer)
    empty = KnownHosts.parse("")
    with pytest.raises(UnknownHostKey):
        stage(empty, "127.0.0.1", 2222, key, HostKeyPolicy.STRICT)
    added = stage(empty, "127.0.0.1", 2222, key, HostKeyPolicy.ACCEPT_NEW)
    assert added.added_line is not None and added.new_text is not None
    assert KnownHosts.parse(added.new_text).lookup("127.0.0.1", 2222, key).status.value == "match"
    asked = []
    decision = stage(empty, "127.0.0.1", 2222, key, HostKeyPolicy.ASK, ask=lambda q: asked.append(q) or True)
    assert decision.asked and asked[0].fingerprint == key.fingerprint()
    other = HostKeyPair.generate("ssh-ed25519").host_key
    known = KnownHosts.parse(known_hosts_line("127.0.0.1", 2222, other) + "\n")
    with pytest.raises(HostKeyChanged):
        stage(known, "127.0.0.1", 2222, key, HostKeyPolicy.ACCEPT_NEW)  # a change is refused under every policy


def test_keygen_fingerprint_is_ssh_keygens_output(sshd):
    line = sshd.host_keys["ed25519"]
    printed = keygen_fingerprint(line)
    key = HostKey.from_openssh(line)
    assert printed.splitlines()[0] == key.fingerprint_line("handshakes-ed25519")
    assert "\n".join(printed.splitlines()[1:]) == key.randomart()
    with pytest.raises(ValueError):
        keygen_fingerprint("ssh-ed25519 AAAAnotakey")
