"""authorized_keys parsing, ``from=`` matching and user private keys, checked against OpenSSH.

Peers: ``ssh-keygen`` makes the keys (ed25519, ecdsa, rsa, one encrypted with ``-N``), reads our
authorized_keys files (``-lf``: its fingerprints, per line, must be ours) and refuses a wrong
passphrase as we do (``-y -P wrong``); a real ``sshd`` with ``AuthorizedKeysFile`` pointing at our file
admits or refuses ``ssh -i key`` from 127.0.0.1 exactly as :func:`match_from` says it should.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import require

from handshake_lib.errors import (
    DecodeError,
    PassphraseRequired,
    PrivateKeyError,
    UnsupportedPrivateKey,
    WrongPassphrase,
)
from handshake_lib.ssh.authorized_keys import (
    MAX_LINE_BYTES,
    MAX_LINES,
    AuthorizedKeys,
    match_from,
    parse_line,
    parse_options,
)
from handshake_lib.ssh.hostkeys import HostKeyPair, UserKey, load_private_key

PASSPHRASE = "correct horse"


def keygen(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("ssh-keygen"), *arguments], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("user-keys")
    made = {}
    for name, arguments in {
        "ed25519": ["-t", "ed25519", "-N", ""],
        "ecdsa": ["-t", "ecdsa", "-b", "384", "-N", ""],
        "rsa": ["-t", "rsa", "-b", "2048", "-N", ""],
        "encrypted": ["-t", "ed25519", "-N", PASSPHRASE],
    }.items():
        path = folder / name
        result = keygen("-q", *arguments, "-C", f"{name} key", "-f", str(path))
        assert result.returncode == 0, result.stderr
        made[name] = path
    return made


def pub(path: Path) -> str:
    return Path(f"{path}.pub").read_text().strip()


def test_fingerprints_per_line_match_ssh_keygen(keys: dict[str, Path], tmp_path: Path) -> None:
    """ssh-keygen -lf reads the same file (options, comments, a bad line) and prints our fingerprints."""
    text = "\n".join([
        "# a comment, then a blank line",
        "",
        f'restrict,command="echo \\"hi there\\"",from="127.0.0.1,10.0.0.0/8" {pub(keys["ed25519"])}',
        f"  {pub(keys['ecdsa'])}",
        "this is not a key",
        'no-pty,no-port-forwarding,environment="LANG=C x",permitopen="localhost:80",permitopen="h:22" '
        + pub(keys["rsa"]),
        f'principals="alice,bob",expiry-time="20991231" {pub(keys["encrypted"])}',
    ])  # fmt: skip
    path = tmp_path / "authorized_keys"
    path.write_text(text + "\n")
    ours = AuthorizedKeys.parse(path.read_bytes())
    result = keygen("-lf", str(path))
    assert result.returncode == 0, result.stderr
    theirs = [line.split()[1] for line in result.stdout.splitlines()]
    assert [entry.fingerprint() for entry in ours.keys] == theirs
    assert len(theirs) == 4  # ssh-keygen skipped the bad line, as we did
    assert [entry.line_number for entry in ours.keys] == [3, 4, 6, 7]
    assert [(bad.line_number, "key type" in bad.reason) for bad in ours.bad_lines] == [(5, True)]
    # the fingerprint line ssh-keygen prints is ours, word for word
    assert [entry.key.fingerprint_line(entry.comment) for entry in ours.keys] == result.stdout.splitlines()

    first, second, third, fourth = ours.keys
    assert first.restricted and first.command == 'echo "hi there"'
    assert first.from_patterns == "127.0.0.1,10.0.0.0/8"
    assert second.flags == () and second.values == () and second.comment == "ecdsa key"
    assert third.flags == ("no-pty", "no-port-forwarding")
    assert third.all_values("environment") == ("LANG=C x",)
    assert third.all_values("permitopen") == ("localhost:80", "h:22")
    assert fourth.value("principals") == "alice,bob" and fourth.value("expiry-time") == "20991231"
    assert all(entry.accepted_by_sshd for entry in ours.keys)


def test_options_syntax() -> None:
    assert parse_options('NO-PTY,Command="a\\"b\\\\c",x-unknown,foo="bar"') == (
        ("no-pty",),
        (("command", 'a"b\\\\c'),),
        ("x-unknown", "foo"),
    )
    for bad, why in [
        ('command="unterminated', "closing quote"),
        ("command=bare", "double-quoted"),
        ("no-pty,,pty", "empty option"),
        ("no-pty,", "end with"),
        ('command="a",command="b"', "twice"),
        ('environment="NOEQUALS"', "NAME=value"),
        ('command="a"x', "expected ','"),
    ]:
        with pytest.raises(DecodeError, match=why):
            parse_options(bad)


def test_bad_lines_are_reported_never_fatal(keys: dict[str, Path]) -> None:
    good = pub(keys["ed25519"])
    blob_of_rsa = pub(keys["rsa"]).split()[1]
    text = "\n".join([
        f'command="open {good}',  # quote never closes: the key is swallowed
        f"ssh-ed25519 {blob_of_rsa}",  # says ed25519, holds rsa
        "ssh-ed25519 !!!notbase64",
        "x" * (MAX_LINE_BYTES + 1),
        f"bogus-option {good}",  # parsed, but sshd would refuse it ("bad options")
        good,
    ])  # fmt: skip
    parsed = AuthorizedKeys.parse(text)
    assert [bad.line_number for bad in parsed.bad_lines] == [1, 2, 3, 4]
    assert "unclosed quote" in parsed.bad_lines[0].reason
    assert [entry.line_number for entry in parsed.keys] == [5, 6]
    assert parsed.keys[0].unknown_options == ("bogus-option",) and not parsed.keys[0].accepted_by_sshd
    assert [entry.line_number for entry in parsed.for_client("127.0.0.1")] == [6]
    assert parse_line("   # indented comment") is None and parse_line("\t") is None


def test_line_count_bound(keys: dict[str, Path]) -> None:
    parsed = AuthorizedKeys.parse("#\n" * MAX_LINES + pub(keys["ed25519"]) + "\n")
    assert parsed.truncated and parsed.keys == ()
    with pytest.raises(DecodeError, match="larger than"):
        AuthorizedKeys.parse(b"#" * (4 * 1024 * 1024 + 1))


@pytest.mark.parametrize(
    ("patterns", "address", "hostname", "verdict"),
    [
        ("127.0.0.1", "127.0.0.1", None, True),
        ("10.0.0.1", "127.0.0.1", None, False),
        ("127.0.0.0/8", "127.0.0.9", None, True),
        ("127.0.0.0/8,!127.0.0.9", "127.0.0.9", None, False),  # a negated match wins wherever it is
        ("!127.0.0.9,*", "127.0.0.9", None, False),
        ("127.0.0.?", "127.0.0.5", None, True),
        ("127.*", "127.1.2.3", None, True),
        ("127.0.0.1/8", "127.0.0.1", None, False),  # host bits under the mask: the whole list is refused
        ("::1", "::1", None, True),
        ("fe80::/10", "::1", None, False),
        ("*.example.com", "192.0.2.7", "Web.EXAMPLE.com", True),  # names are lowercased
        ("*.example.com,!bad.example.com", "192.0.2.7", "bad.example.com", False),
        ("*.example.com", "192.0.2.7", None, False),  # no DNS: the name is the address
        ("", "127.0.0.1", None, False),
    ],
)
def test_match_from(patterns: str, address: str, hostname: str | None, verdict: bool) -> None:
    assert match_from(patterns, address, hostname) is verdict


def test_private_keys_load_and_match_ssh_keygen(keys: dict[str, Path]) -> None:
    """Each key's public line is what ``ssh-keygen -y`` derives; the comment survives (unencrypted)."""
    for name, path in keys.items():
        password = PASSPHRASE if name == "encrypted" else None
        pair = UserKey.load(path.read_bytes(), password.encode() if password else None)
        derived = keygen("-y", "-P", password or "", "-f", str(path))
        assert derived.returncode == 0, derived.stderr
        assert pair.host_key.openssh() == " ".join(derived.stdout.split()[:2])
        if name != "encrypted":
            assert pair.comment == f"{name} key"
    assert UserKey is HostKeyPair


def test_wrong_or_missing_passphrase(keys: dict[str, Path]) -> None:
    data = keys["encrypted"].read_bytes()
    with pytest.raises(WrongPassphrase):
        load_private_key(data, "wrong")
    refused = keygen("-y", "-P", "wrong", "-f", str(keys["encrypted"]))
    assert refused.returncode != 0 and "incorrect passphrase" in refused.stderr
    with pytest.raises(PassphraseRequired):
        load_private_key(data)
    with pytest.raises(PassphraseRequired):
        HostKeyPair.load(data)
    # a passphrase for a plain key is ignored, as ssh-keygen -P ignores it
    assert UserKey.load(keys["ed25519"].read_bytes(), b"ignored").comment == "ed25519 key"
    assert keygen("-y", "-P", "ignored", "-f", str(keys["ed25519"])).returncode == 0


def test_unsupported_and_garbage_private_keys(tmp_path: Path) -> None:
    path = tmp_path / "dsa"
    made = keygen("-q", "-t", "dsa", "-N", "", "-f", str(path))
    assert made.returncode == 0, made.stderr
    with pytest.raises(UnsupportedPrivateKey):
        load_private_key(path.read_bytes())
    with pytest.raises(PrivateKeyError):
        load_private_key(b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(PrivateKeyError, match="64 KiB"):
        load_private_key(b"x" * (64 * 1024 + 1))


def test_sshd_verdicts_match_ours(keys: dict[str, Path], tmp_path: Path) -> None:
    """A real sshd reads our file: it admits and refuses each key from 127.0.0.1 as our parse says.

    ``from="10.0.0.1"`` refuses the loopback client, ``from="127.0.0.1"`` admits it, an unknown option
    makes sshd ignore the line ("bad options"), and ``command=`` replaces what the client asked to run.
    """
    from test_peers_ssh import known_hosts_file, require_sshd, started

    from handshake_lib.peers.openssh import openssh_client, openssh_server

    require_sshd()
    extras = []
    for index in range(5):
        extras.append(tmp_path / f"extra{index}")
        assert keygen("-q", "-t", "ed25519", "-N", "", "-f", str(extras[-1])).returncode == 0
    lines = [
        f'from="10.0.0.1" {pub(keys["ed25519"])}',
        f'from="127.0.0.1",no-pty {pub(keys["ecdsa"])}',
        f'restrict,command="echo forced \\"quoted\\"" {pub(keys["rsa"])}',
        f"bogus-option {pub(extras[0])}",
        f'from="!127.0.0.1,*" {pub(extras[1])}',  # a negated match refuses though * matches
        f'FROM="10.0.0.0/8,127.0.0.0/8" {pub(extras[2])}',  # CIDR, option name in capitals
        f'from="127.0.0.1/8" {pub(extras[3])}',  # host bits under the mask: the list is refused
        f'from="127.0.0.?" {pub(extras[4])}',  # a wildcard on the address
    ]
    parsed = AuthorizedKeys.parse("\n".join(lines))
    assert parsed.bad_lines == ()
    admitted_by_us = {entry.line_number for entry in parsed.for_client("127.0.0.1")}
    assert admitted_by_us == {2, 3, 6, 8}
    assert parsed.keys[2].command == 'echo forced "quoted"'

    server, context = started(openssh_server(authorized_keys=lines))
    try:
        known_hosts = known_hosts_file(tmp_path, server)
        verdicts = {}
        for number, identity in enumerate([keys["ed25519"], keys["ecdsa"], keys["rsa"], *extras], start=1):
            run = openssh_client(
                server.host, server.port, user=server.user, known_hosts_file=known_hosts, identity=identity,
                command="echo asked",
            )  # fmt: skip
            assert not run.timed_out
            verdicts[number] = run.returncode == 0
            if number == 3:
                # sshd's shell ran the dequoted command, echo forced "quoted", instead of ours
                assert run.stdout.strip() == "forced quoted"
            if number == 2:
                assert run.stdout.strip() == "asked"
        assert {number for number, ok in verdicts.items() if ok} == admitted_by_us
        log = server.log
        # sshd says why, line by line, as our parse does
        assert (
            "authorized_keys:1: Authentication tried for "
            + server.user
            + " with correct key but not from a permitted host"
            in log
        )
        assert "required=10.0.0.1" in log
        assert "authorized_keys:4: bad key options: unknown key option" in log
    finally:
        context.__exit__(None, None, None)
