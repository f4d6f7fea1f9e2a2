"""known_hosts against OpenSSH: ``ssh-keygen -F`` agrees with our lookups (hashed names included), lines we
add are found by it, and OpenSSH's own ``ssh`` client refuses (or accepts) exactly what we refuse (or accept),
with the same warning text, against an asyncssh server on loopback."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading

import asyncssh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, HostKeyChanged, HostKeyRevoked, UnknownHostKey
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import (
    MAX_FILE_BYTES,
    HostKeyPolicy,
    HostKeyQuestion,
    KnownHosts,
    LookupStatus,
    Marker,
    check_host_key,
    hash_host_name,
    host_name_for,
    known_hosts_line,
    match_pattern,
    match_pattern_list,
)
from tests.conftest import require
from tests.ssh_keygen_keys import keygen


@pytest.fixture(scope="module")
def pairs():
    return {
        "a": HostKeyPair.generate("ssh-ed25519"),
        "b": HostKeyPair.generate("ecdsa-sha2-nistp256"),
        "c": HostKeyPair.generate("ssh-rsa", rsa_bits=1024),
        "d": HostKeyPair.generate("ssh-ed25519"),
        "e": HostKeyPair.generate("ssh-ed25519"),
    }


@pytest.fixture(scope="module")
def keys(pairs):
    return {name: pair.host_key for name, pair in pairs.items()}


@pytest.fixture(scope="module")
def known_hosts_file(tmp_path_factory, keys):
    """A file in every shape OpenSSH reads: plain, wildcards, negation, ports, markers, hashed by ssh-keygen -H,
    comments, blank lines, and broken lines."""
    require("ssh-keygen", "ssh-keygen -H hashes and ssh-keygen -F looks up")
    directory = tmp_path_factory.mktemp("known-hosts")
    hashed = directory / "to_hash"
    hashed.write_text(
        f"secret.example.net,10.9.8.7 {keys['a'].openssh()}\n[secret.example.net]:2022 {keys['b'].openssh('c')}\n"
    )
    keygen("-q", "-H", "-f", hashed)  # three hashed lines: one per name
    hashed_lines = hashed.read_text().splitlines()
    assert len(hashed_lines) == 3 and all(line.startswith("|1|") for line in hashed_lines)
    lines = [
        "# known_hosts for the host key tests",  # 1
        "",  # 2
        f"server.example.com,192.0.2.10 {keys['a'].openssh()}",  # 3
        f"*.example.org,!bad.example.org {keys['a'].openssh('wild')}",  # 4
        f"[127.0.0.1]:2222 {keys['d'].openssh()}",  # 5
        f"host?.lan {keys['b'].openssh()}",  # 6
        f"@revoked * {keys['e'].openssh()}",  # 7
        f"@cert-authority *.example.com {keys['c'].openssh('ca')}",  # 8
        *hashed_lines,  # 9, 10, 11
        f"server.example.com {keys['b'].openssh()}",  # 12: a second key (another type) for the same host
        "   \t# an indented comment",  # 13
        "broken.invalid",  # 14: no key
        f"@bogus broken.invalid {keys['a'].openssh()}",  # 15: unknown marker
        "broken.invalid ssh-ed25519 !!!notbase64",  # 16
        f"|1|c2FsdA==|aGFzaA== {keys['a'].openssh()}",  # 17: salt and hash too short
        f"broken.invalid ssh-dss {keys['a'].openssh().split()[1]}",  # 18: a type we do not read
        f"*.lan,!*.lan {keys['a'].openssh()}",  # 19: a negation that always wins
        f"\tSERVER2.Example.COM {keys['c'].openssh()}",  # 20: leading tab; patterns are lowercased
    ]
    path = directory / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def known(known_hosts_file):
    return KnownHosts.parse(known_hosts_file.read_bytes(), path=str(known_hosts_file))


def ssh_keygen_finds(path, name: str) -> set[int]:
    done = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True, timeout=30)
    return {int(number) for number in re.findall(r"^# Host .* found: line (\d+)", done.stdout, re.M)}


HOSTS = [
    ("server.example.com", 22),
    ("SERVER.example.com", 22),
    ("192.0.2.10", 22),
    ("server.example.com", 2222),
    ("www.example.org", 22),
    ("bad.example.org", 22),
    ("example.org", 22),
    ("127.0.0.1", 2222),
    ("127.0.0.1", 22),
    ("host1.lan", 22),
    ("host12.lan", 22),
    ("secret.example.net", 22),
    ("10.9.8.7", 22),
    ("secret.example.net", 2022),
    ("secret.example.net", 2023),
    ("a.example.com", 22),
    ("server2.example.com", 22),
    ("nowhere.test", 22),
]


@pytest.mark.parametrize(("host", "port"), HOSTS)
def test_lookups_agree_with_ssh_keygen_F(known_hosts_file, known, host, port):
    ours = {line.number for line in known.entries_for(host, port)}
    assert ours == ssh_keygen_finds(known_hosts_file, host_name_for(host, port))


def test_the_table_covers_every_kind_of_match(known):
    def found(host, port=22):
        return {line.number for line in known.entries_for(host, port)}

    assert found("server.example.com") == {3, 7, 8, 12}  # plain, @revoked *, @cert-authority *.example.com
    assert found("bad.example.org") == {7}  # !bad.example.org wins over *.example.org
    assert found("host1.lan") == {6, 7} and found("host12.lan") == {7}  # ? is exactly one character
    assert found("secret.example.net") == {7, 9} and found("10.9.8.7") == {7, 10}  # hashed by ssh-keygen
    assert found("secret.example.net", 2022) == {7, 11} and found("127.0.0.1", 2222) == {5, 7}
    assert found("server2.example.com") == {7, 8, 20}


def test_bad_lines_are_skipped_with_a_reason(known):
    reasons = {line.number: line.reason for line in known.skipped}
    assert set(reasons) == {14, 15, 16, 17, 18}
    assert "truncated" in reasons[14]
    assert "invalid marker" in reasons[15]
    assert "base64" in reasons[16]
    assert "bad hashed host name" in reasons[17]
    assert "unsupported key type 'ssh-dss'" in reasons[18]
    assert {line.number for line in known.entries} == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 19, 20}
    assert [line.marker for line in known.entries if line.marker is not Marker.NONE] == [
        Marker.REVOKED,
        Marker.CERT_AUTHORITY,
    ]
    explained = known.explain()
    assert "line 8:" in explained and "certificate authority" in explained and "line 14: skipped" in explained


@pytest.mark.parametrize("hashed", [True, False])
@pytest.mark.parametrize("port", [22, 2200])
def test_a_line_we_add_is_found_by_ssh_keygen(tmp_path, keys, hashed, port):
    require("ssh-keygen")
    path = tmp_path / "known_hosts"
    path.write_text(f"other.test {keys['b'].openssh()}")  # no final newline: add() supplies one
    salt = bytes(range(20))
    text = KnownHosts.parse(path.read_text()).add(
        "New.Host.test", port, keys["a"], hashed=hashed, random=lambda n: salt
    )
    path.write_text(text)
    assert ssh_keygen_finds(path, host_name_for("new.host.test", port)) == {2}
    added = text.splitlines()[1]
    assert added == known_hosts_line("new.host.test", port, keys["a"], hashed=hashed, random=lambda n: salt)
    name = host_name_for("new.host.test", port)
    assert added.split()[0] == (hash_host_name(name, salt) if hashed else name)
    assert KnownHosts.parse(text).lookup("new.host.test", port, keys["a"]).status is LookupStatus.MATCH


def test_lookup_statuses_follow_openssh(known, keys, known_hosts_file):
    match = known.lookup("server.example.com", 22, keys["a"])
    assert match.status is LookupStatus.MATCH and match.found.number == 3
    assert match.line_numbers == (3, 12) and [line.number for line in match.cert_authorities] == [8]
    assert f"{known_hosts_file}:3" in match.message

    changed = known.lookup("server.example.com", 22, keys["d"])
    assert changed.status is LookupStatus.CHANGED
    assert changed.found.number == 12  # the last mismatching entry is the one ssh names
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed.message
    assert keys["d"].fingerprint() in changed.message
    assert f"Offending ECDSA key in {known_hosts_file}:12" in changed.message

    assert known.lookup("127.0.0.1", 2222, keys["e"]).status is LookupStatus.REVOKED
    assert known.lookup("anything.at.all", 22, keys["e"]).status is LookupStatus.REVOKED
    unknown = known.lookup("nowhere.test", 22, keys["a"])
    assert unknown.status is LookupStatus.UNKNOWN and unknown.found is None
    # A @cert-authority line never vouches for a plain key, even the CA's own.
    ca = known.lookup("a.example.com", 22, keys["c"])
    assert ca.status is LookupStatus.UNKNOWN and [line.number for line in ca.cert_authorities] == [8]
    # Another key type known for the host: hostfile.c calls that changed too.
    assert known.lookup("127.0.0.1", 2222, keys["b"]).status is LookupStatus.CHANGED
    assert known.known_key_types("server.example.com") == ("ssh-ed25519", "ecdsa-sha2-nistp256")


def test_policies(known, keys):
    with pytest.raises(UnknownHostKey, match="No ED25519 host key is known for nowhere.test"):
        check_host_key(known, "nowhere.test", 22, keys["a"], HostKeyPolicy.STRICT)
    decision = check_host_key(
        known, "nowhere.test", 22, keys["a"], HostKeyPolicy.ACCEPT_NEW, hashed=False, random=lambda n: b"\x00" * n
    )
    assert decision.added_line == f"nowhere.test {keys['a'].openssh()}"
    assert decision.new_text == known.text + decision.added_line + "\n"
    assert "Permanently added 'nowhere.test' (ED25519)" in decision.message
    assert KnownHosts.parse(decision.new_text).lookup("nowhere.test", 22, keys["a"]).status is LookupStatus.MATCH
    assert check_host_key(known, "server.example.com", 22, keys["a"]).added_line is None

    questions: list[HostKeyQuestion] = []
    decision = check_host_key(
        known, "127.0.0.1", 22, keys["a"], "ask", ask=lambda question: questions.append(question) or True
    )
    assert decision.asked and decision.added_line.startswith("|1|")
    (question,) = questions
    assert question.name == "127.0.0.1" and question.fingerprint == keys["a"].fingerprint()
    assert "Are you sure you want to continue connecting" in question.prompt and question.randomart.startswith("+--")
    with pytest.raises(UnknownHostKey, match="was not accepted"):
        check_host_key(known, "127.0.0.1", 22, keys["a"], HostKeyPolicy.ASK, ask=lambda question: False)
    with pytest.raises(ValueError, match="ask callback"):
        check_host_key(known, "127.0.0.1", 22, keys["a"], HostKeyPolicy.ASK)
    for policy in HostKeyPolicy:
        with pytest.raises(HostKeyChanged) as changed:
            check_host_key(known, "server.example.com", 22, keys["d"], policy, ask=lambda question: True)
        assert changed.value.lookup.found.number == 12
        with pytest.raises(HostKeyRevoked, match="REVOKED HOST KEY DETECTED"):
            check_host_key(known, "server.example.com", 22, keys["e"], policy, ask=lambda question: True)


# -- OpenSSH's client against an asyncssh server with a host key of ours ------------------------------
@pytest.fixture(scope="module")
def asyncssh_server(pairs):
    """An asyncssh server on 127.0.0.1 with host key ``pairs['a']``, in a thread with its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host_key = asyncssh.import_private_key(pairs["a"].private_bytes())

    async def listen():
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], login_timeout=10)

    server = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=20)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=20)
        loop.close()


def run_ssh(known_hosts_path, port: int, strict: str = "yes", *options: str) -> str:
    """OpenSSH's client against the server: the host key check, then a publickey attempt it cannot win."""
    command = [
        "ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={known_hosts_path}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"StrictHostKeyChecking={strict}", *options,
        "-o", "BatchMode=yes", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no",
        "-o", "ConnectTimeout=10", "-o", "HostKeyAlgorithms=ssh-ed25519", "-p", str(port), "nobody@127.0.0.1", "true",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL).stderr


@pytest.mark.parametrize("case", ["changed", "revoked", "unknown", "added", "portless"])
def test_openssh_client_decides_as_we_do(tmp_path, asyncssh_server, pairs, keys, case):
    require("ssh", "OpenSSH's client is the second opinion on our known_hosts decisions")
    port = asyncssh_server
    server_key = keys["a"]
    path = tmp_path / "known_hosts"
    text = {
        "changed": f"# the old key\n[127.0.0.1]:{port} {keys['d'].openssh()}\n",
        "revoked": f"@revoked * {server_key.openssh()}\n[127.0.0.1]:{port} {server_key.openssh()}\n",
        "unknown": f"localhost {server_key.openssh()}\n127.0.0.1 {keys['b'].openssh()}\n",
        "added": "",
        "portless": f"127.0.0.1 {server_key.openssh()}\n",  # the right key, for port 22: ssh trusts it
    }[case]
    known = KnownHosts.parse(text, path=str(path))
    if case == "added":
        text = check_host_key(known, "127.0.0.1", port, server_key, HostKeyPolicy.ACCEPT_NEW).new_text
    path.write_text(text)
    stderr = run_ssh(path, port)
    if case in ("added", "portless"):
        assert check_host_key(KnownHosts.parse(text), "127.0.0.1", port, server_key).added_line is None
        assert "Host key verification failed" not in stderr and "Permission denied" in stderr
        return
    error = {"changed": HostKeyChanged, "revoked": HostKeyRevoked, "unknown": UnknownHostKey}[case]
    with pytest.raises(error) as refused:
        check_host_key(known, "127.0.0.1", port, server_key, HostKeyPolicy.STRICT)
    # Our message is what ssh printed, line for line: same fingerprint, file and line, same words.
    assert str(refused.value).splitlines() == stderr.splitlines()


# -- patterns and hostile files ----------------------------------------------------------------------
def test_pattern_lists_as_match_c():
    assert match_pattern_list("www.example.org", "*.example.org,!bad.example.org") == 1
    assert match_pattern_list("bad.example.org", "*.example.org,!bad.example.org") == -1
    assert match_pattern_list("x.lan", "!*.com") == 0  # only negations: never a match
    assert match_pattern_list("host.lan", "HOST.LAN") == 1  # patterns are lowercased
    assert match_pattern_list("a" * 2000, "a" * 1100 + ",*") == 0  # an over-long pattern fails the whole list
    assert match_pattern("", "*") and not match_pattern("", "?") and match_pattern("a.b", "a?b")


def _reference_match(name: str, pattern: str) -> bool:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


@settings(max_examples=500, deadline=None)
@given(st.text("ab.*?", max_size=12), st.text("ab.", max_size=12))
def test_match_pattern_agrees_with_a_regular_expression(pattern, name):
    assert match_pattern(name, pattern) == _reference_match(name, pattern)


def test_many_stars_stay_fast():
    assert not match_pattern("a" * 3000 + "b", "*a" * 200 + "c")


@pytest.fixture(scope="module")
def sample_text(known_hosts_file):
    return known_hosts_file.read_text()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**6), st.sampled_from(["del", "ins", "dup"]), st.text(max_size=6)
        ),
        max_size=8,
    ),
    st.sampled_from(["server.example.com", "127.0.0.1", "secret.example.net", "x"]),
)
def test_mutated_files_give_skipped_lines_or_entries(sample_text, keys, edits, host):
    text = sample_text
    for where, kind, piece in edits:
        where %= len(text) + 1
        if kind == "del":
            text = text[:where] + text[where + len(piece) + 1 :]
        elif kind == "ins":
            text = text[:where] + piece + text[where:]
        else:
            text = text[:where] + text[where : where + 40] + text[where:]
    known = KnownHosts.parse(text.encode("utf-8", errors="replace"))
    numbers = [line.number for line in (*known.entries, *known.skipped)]
    assert len(numbers) == len(set(numbers)) and all(1 <= n <= text.count("\n") + 1 for n in numbers)
    for port in (22, 2222):
        result = known.lookup(host, port, keys["a"])
        assert result.status in LookupStatus
        assert result.message


def test_limits():
    with pytest.raises(DecodeError, match="larger than"):
        KnownHosts.parse(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(DecodeError, match="lines, more than"):
        KnownHosts.parse("\n" * 100_001)
    long_line = KnownHosts.parse("host ssh-ed25519 " + "A" * 20000)
    assert "longer than" in long_line.skipped[0].reason


@pytest.mark.parametrize("hashed", [False, True])
def test_ssh_keyscan_lines_are_read_and_match_the_server_key(asyncssh_server, keys, hashed):
    """ssh-keyscan asks the live server for its key and prints known_hosts lines (-H: hashed)."""
    require("ssh-keyscan", "OpenSSH's ssh-keyscan writes the lines")
    port = asyncssh_server
    command = ["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", str(port), *(["-H"] if hashed else []), "127.0.0.1"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    known = KnownHosts.parse(output)
    assert len(known.entries) == 1 and not known.skipped
    (entry,) = known.entries
    assert entry.hashed == hashed and (hashed or entry.hosts == f"[127.0.0.1]:{port}")
    result = known.lookup("127.0.0.1", port, keys["a"])
    assert result.status is LookupStatus.MATCH and result.found == entry
    assert known.lookup("127.0.0.1", port, keys["d"]).status is LookupStatus.CHANGED
    assert known.lookup("127.0.0.1", 22, keys["a"]).status is LookupStatus.UNKNOWN


@pytest.mark.parametrize("hashed", [False, True])
def test_the_line_ssh_adds_is_the_line_we_add(tmp_path, asyncssh_server, keys, hashed):
    """ssh -o StrictHostKeyChecking=accept-new writes its line; ours is the same (hashed: same but for the salt)."""
    require("ssh")
    port = asyncssh_server
    path = tmp_path / "known_hosts"
    path.write_text("")
    stderr = run_ssh(path, port, "accept-new", "-o", f"HashKnownHosts={'yes' if hashed else 'no'}")
    assert f"Permanently added '[127.0.0.1]:{port}' (ED25519) to the list of known hosts." in stderr
    written = path.read_text()
    known = KnownHosts.parse(written)
    (entry,) = known.entries
    assert known.lookup("127.0.0.1", port, keys["a"]).status is LookupStatus.MATCH
    salt = entry.salt if hashed else b"\x00" * 20
    ours = KnownHosts.parse("").add("127.0.0.1", port, keys["a"], hashed=hashed, random=lambda n: salt)
    assert ours == written
    decision = check_host_key(KnownHosts.parse(""), "127.0.0.1", port, keys["a"], HostKeyPolicy.ACCEPT_NEW)
    assert decision.message in stderr.splitlines()
