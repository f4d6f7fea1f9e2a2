"""Lesson 13 (handshake_lib.lessons.ssh_host_keys) against a real OpenSSH sshd: what each widget shows changes
with its inputs, it agrees with OpenSSH's own tools, and bad input is a short message or a refused update
that changes nothing."""

from __future__ import annotations

import pytest
from conftest import require

from handshake_lib.errors import DecodeError, UnknownHostKey
from handshake_lib.lessons.ssh_host_keys import (
    FingerprintExplorer,
    HostKeyPrompt,
    KnownHostsExplorer,
    explain_signature,
    host_keys_of,
    keygen_find,
    lesson_sshd,
    probe,
)
from handshake_lib.ssh.hostkeys import HostKey, HostKeyPair, decode_host_key, decode_signature
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line


@pytest.fixture(scope="module")
def sshd_peer():
    require("/usr/sbin/sshd", "lesson 13 runs against OpenSSH's sshd")
    require("ssh-keygen", "lesson 13 compares fingerprints with ssh-keygen -lv")
    peer = lesson_sshd()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def sshd(sshd_peer):
    return sshd_peer.get()


@pytest.fixture(scope="module")
def stranger() -> HostKey:
    return HostKeyPair.generate("ssh-ed25519").host_key


def snapshot(widget) -> list[tuple[str, object]]:
    values, stack = [], [widget]
    while stack:
        item = stack.pop()
        if "value" in item.trait_names():
            values.append((type(item).__name__, item.value))
        stack.extend(reversed(getattr(item, "children", ())))
    return values


# -- the signature over H ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_the_signature_over_h_from_sshd_verifies_and_one_changed_bit_breaks_it(sshd, key_type):
    view = explain_signature(probe(sshd, host_key_type=key_type))
    assert view.host_key == HostKey.from_openssh(sshd.host_keys[key_type])  # the key sshd was configured with
    assert view.verified.startswith("valid") and view.tampered.startswith("refused")
    assert decode_signature(view.signature_blob).algorithm == view.algorithm
    text = view.text
    assert view.exchange_hash.hex() in text and "signature_blob" in text and "key_type" in text


def test_key_type_and_signature_spans_name_the_algorithm():
    # The bug this lesson found: the meanings were looked up with bytes and always said "unknown".
    pair = HostKeyPair.generate("ecdsa-sha2-nistp256")
    meanings = {span.field: span.meaning for span in decode_host_key(pair.host_key.blob).spans}
    assert meanings["host_key.key_type"] == "ECDSA public key on nistp256 (RFC 5656)"
    signature = decode_signature(pair.sign(b"H"))
    meanings = {span.field: span.meaning for span in signature.spans}
    assert meanings["signature.algorithm"] == "ECDSA on nistp256 (RFC 5656)"


# -- fingerprints beside ssh-keygen ----------------------------------------------------------------------
def test_fingerprints_and_randomart_equal_ssh_keygen_for_every_key_and_hash(sshd):
    explorer = FingerprintExplorer(sshd.host_keys)
    seen = set()
    for key_type in ("ed25519", "ecdsa", "rsa"):
        for hash_name in ("SHA256", "MD5"):
            view = explorer.update(key_type=key_type, hash_name=hash_name)
            assert view.same, f"{key_type} {hash_name}:\n{view.ours}\n!=\n{view.openssh}"
            assert view.openssh.startswith(("256 ", "3072 ")) and f"[{hash_name}]" in view.openssh
            assert "identical" in explorer.output.value
            seen.add(view.ours)
    assert len(seen) == 6  # every key and every hash shows something else


def test_fingerprint_explorer_refuses_bad_updates_and_changes_nothing(sshd):
    explorer = FingerprintExplorer(sshd.host_keys)
    before = snapshot(explorer)
    for arguments, error in (({"key_type": "dsa"}, ValueError), ({"hash_name": "SHA1"}, ValueError),
                             ({"key_type": 3}, (TypeError, ValueError))):  # fmt: skip
        with pytest.raises(error):
            explorer.update(**arguments)
        assert snapshot(explorer) == before
    assert explorer.update(key_type="rsa").key_type == "rsa"


# -- known_hosts -----------------------------------------------------------------------------------------
@pytest.fixture()
def known_hosts_explorer(sshd, stranger):
    keys = host_keys_of(sshd)
    text = (
        known_hosts_line(sshd.host, sshd.port, keys["ed25519"], hashed=False) + "\n"
        + known_hosts_line(sshd.host, sshd.port, keys["ecdsa"], hashed=True) + "\n"
        + f"@revoked {sshd.host} {stranger.openssh()}\n"
        + "shop.example ssh-ed25519 AAAA-not-base64\n"
    )  # fmt: skip
    return KnownHostsExplorer(text, sshd.host, sshd.port, {**keys, "stranger": stranger})


def test_known_hosts_lookup_follows_host_port_and_key(known_hosts_explorer, sshd):
    explorer = known_hosts_explorer
    assert explorer.view.status == "match" and "is known and matches the ED25519" in explorer.result_html.value
    assert explorer.update(key="ecdsa").status == "match"  # the hashed line
    assert explorer.update(key="stranger").status == "changed"
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in explorer.result_html.value
    assert explorer.update(port=22).status == "revoked"  # the @revoked line names plain 127.0.0.1
    assert explorer.update(key="ed25519").status == "unknown"  # port 22: the [host]:port lines do not count
    assert explorer.update(host="shop.example", port=sshd.port).status == "unknown"
    lines = explorer.view.lines
    assert len(lines) == 4 and "one hashed host name" in lines[1] and "revoked" in lines[2]
    assert lines[3].startswith("line 4: skipped: bad key")


def test_known_hosts_finds_what_ssh_keygen_finds(known_hosts_explorer, sshd):
    text = known_hosts_explorer.text_area.value
    found = keygen_find(text, sshd.host, sshd.port)
    ours = KnownHosts.parse(text).entries_for(sshd.host, sshd.port)
    assert [line.number for line in ours] == [1, 2]
    assert [int(line.split()[-1]) for line in found.splitlines() if line.startswith("# Host")] == [1, 2]


def test_known_hosts_bad_input_is_a_message_or_a_refused_update(known_hosts_explorer):
    explorer = known_hosts_explorer
    view = explorer.update(host="two words")
    assert view.status is None and "type a host name" in explorer.result_html.value
    view = explorer.update(host="")
    assert view.status is None and "type a host name" in view.message
    before = snapshot(explorer)
    for arguments, error in (({"port": 0}, ValueError), ({"port": 70000}, ValueError), ({"port": "22"}, TypeError),
                             ({"host": 5}, TypeError), ({"key": "dsa"}, ValueError), ({"text": None, "key": 1},
                             TypeError)):  # fmt: skip
        with pytest.raises(error):
            explorer.update(**arguments)
        assert snapshot(explorer) == before
    huge = "x" * (4 * 1024 * 1024 + 1)
    with pytest.raises(DecodeError):
        KnownHosts.parse(huge)
    view = explorer.update(text=huge, host="127.0.0.1")
    assert view.status is None and "larger than" in explorer.result_html.value


# -- the question ----------------------------------------------------------------------------------------
def test_the_prompt_asks_then_each_answer_decides_a_live_connection(sshd_peer, sshd):
    prompt = HostKeyPrompt(sshd_peer)
    server_key = HostKey.from_openssh(sshd.host_keys["ed25519"])
    assert "Are you sure you want to continue connecting" in prompt.prompt_html.value
    assert server_key.fingerprint() in prompt.prompt_html.value  # the key sshd holds, from a live exchange
    refused = prompt.update(answer="no")
    assert not refused.went_through and "UnknownHostKey" in refused.text and refused.known_hosts == ""
    accepted = prompt.update(answer="yes")
    assert accepted.went_through and "Permanently added" in accepted.text and "publickey" in accepted.text
    line = KnownHosts.parse(accepted.known_hosts).entries[0]
    assert line.hashed and line.key == server_key and line.matches(f"[{sshd.host}]:{sshd.port}")
    again = prompt.update(answer="yes")
    assert again.went_through and "no question" in again.text and again.known_hosts == accepted.known_hosts
    assert "you were asked" in accepted.text
    prompt.forget()
    assert prompt.known_hosts == "" and prompt.connection is not None and prompt.connection.waiting
    waiting = prompt.connection
    prompt.forget()  # the question still waiting is answered no: its connection is refused and ends
    with pytest.raises(UnknownHostKey):
        waiting.answer(True)
    prompt.connection.close()  # as if the question had waited past its time: a click opens a fresh connection
    fresh = prompt.update(answer="yes")
    assert fresh.went_through and "Permanently added" in fresh.text
    with pytest.raises(ValueError):
        prompt.update(answer="maybe")
    with pytest.raises(TypeError):
        prompt.update(answer=True)
