"""``handshakes ssh exec`` against Debian's OpenSSH ``sshd``, compared with OpenSSH's own ``ssh``.

The reference for every outcome is ``ssh -F /dev/null`` run against the same sshd with the same key and
known_hosts file: the command's stdout, stderr and exit status byte for byte (an ``exit-signal`` is
255 for both), and the one line ``ssh`` prints when the login or the host key fails.  sshd's log says
what it saw ("Failed publickey").  ``--trace`` goes to stderr, so stdout stays the command's.  The
passphrase of an encrypted key is typed on a real pseudo-terminal, the process's controlling one.
``ssh exec`` against our own server (``ssh serve``) is in ``test_cli_ssh_serve.py``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_environment, require

from handshake_lib.__main__ import main
from handshake_lib.ssh.hostkeys import HostKeyPair

KEY = HostKeyPair.generate("ssh-ed25519", comment="exec test")
STRANGER = HostKeyPair.generate("ssh-ed25519", comment="not authorized")
PASSPHRASE = "correct horse"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    require("ssh-keygen", "OpenSSH's ssh-keygen (Debian package openssh-client)")
    folder = tmp_path_factory.mktemp("exec-keys")
    paths = {}
    for name, key in (("id", KEY), ("stranger", STRANGER)):
        path = folder / name
        path.write_bytes(key.private_bytes())
        path.chmod(0o600)
        paths[name] = path
    # an encrypted copy of the authorized key, made by ssh-keygen itself (bcrypt KDF, aes256-ctr)
    encrypted = folder / "encrypted"
    encrypted.write_bytes(KEY.private_bytes())
    encrypted.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", PASSPHRASE, "-P", "", "-f", str(encrypted)], check=True, timeout=30,
        capture_output=True,
    )  # fmt: skip
    paths["encrypted"] = encrypted
    return paths


@pytest.fixture(scope="module")
def sshd():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    from handshake_lib.peers.openssh import openssh_server

    with openssh_server(authorized_keys=[KEY.public_line()]) as server:
        yield server


@pytest.fixture
def known_hosts(sshd, tmp_path) -> Path:
    return sshd.write_known_hosts(tmp_path / "known_hosts")


def _exec(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handshake_lib", "ssh", "exec", *argv], input=stdin, capture_output=True,
        env=cli_environment(), cwd=ROOT, timeout=60,
    )  # fmt: skip


def _ours(sshd, key: Path, known: Path, command: str, stdin: bytes = b"", *extra: str):
    return _exec([f"{sshd.user}@127.0.0.1:{sshd.port}", "--identity", str(key), "--known-hosts", str(known),
                  *extra, "--", command], stdin)  # fmt: skip


def _openssh(sshd, key: Path, known: Path, command: str, stdin: bytes = b""):
    argv = [
        "ssh", "-F", "/dev/null", "-i", str(key), "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
        "-p", str(sshd.port), f"{sshd.user}@127.0.0.1", command,
    ]  # fmt: skip
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60)


def _sshd_logged(sshd, text: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while text not in sshd.log:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.peer
@pytest.mark.parametrize(
    "command",
    [
        "echo out; echo err >&2; exit 3",
        "printf 'no newline'; printf 'half' >&2",
        "kill -TERM $$",  # exit-signal TERM: ssh's exit status stays -1, so 255
        "exit 0",
        "head -c 300000 /dev/zero | tr '\\0' x",  # more than one window of output
    ],
)
def test_output_and_exit_status_are_the_ones_openssh_ssh_gives(sshd, keys, known_hosts, command):
    ours = _ours(sshd, keys["id"], known_hosts, command)
    theirs = _openssh(sshd, keys["id"], known_hosts, command)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    # sshd in debug mode sends its child's debug lines on the channel's stderr too: the same for both
    assert ours.stderr == theirs.stderr


@pytest.mark.peer
def test_standard_input_is_forwarded_then_eof(sshd, keys, known_hosts):
    data = bytes(range(256)) * 4000  # 1 MB: several windows' worth, with every byte value
    ours = _ours(sshd, keys["id"], known_hosts, "wc -c; exit 5", data)
    assert (ours.returncode, ours.stdout.strip()) == (5, str(len(data)).encode())
    echoed = _ours(sshd, keys["id"], known_hosts, "cat", data)
    assert echoed.returncode == 0 and echoed.stdout == data


@pytest.mark.peer
def test_standard_input_from_a_file_or_dev_null_which_cannot_be_polled(sshd, keys, known_hosts, tmp_path):
    data = os.urandom(1_500_000)  # more than STDIN_HIGH_WATER: read in turns as the window opens
    (tmp_path / "input").write_bytes(data)
    argv = [sys.executable, "-m", "handshake_lib", "ssh", "exec", f"{sshd.user}@127.0.0.1:{sshd.port}",
            "--identity", str(keys["id"]), "--known-hosts", str(known_hosts), "--"]  # fmt: skip
    with (tmp_path / "input").open("rb") as stdin:
        counted = subprocess.run([*argv, "wc -c"], stdin=stdin, capture_output=True, env=cli_environment(), timeout=60)
    assert (counted.returncode, counted.stdout.strip()) == (0, str(len(data)).encode())
    nothing = subprocess.run(
        [*argv, "cat; echo end"], stdin=subprocess.DEVNULL, capture_output=True, env=cli_environment(), timeout=60
    )
    assert (nothing.returncode, nothing.stdout) == (0, b"end\n")


@pytest.mark.peer
def test_the_words_after_dashes_are_joined_with_spaces_as_ssh_joins_them(sshd, keys, known_hosts):
    argv = [f"{sshd.user}@127.0.0.1:{sshd.port}", "--identity", str(keys["id"]), "--known-hosts", str(known_hosts),
            "--", "printf", "%s,", "a", "b c"]  # fmt: skip
    ours = _exec(argv)
    theirs = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(keys["id"]), "-o", f"UserKnownHostsFile={known_hosts}",
         "-p", str(sshd.port), f"{sshd.user}@127.0.0.1", "printf", "%s,", "a", "b c"],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert ours.stdout == theirs.stdout == b"a,b,c,"  # the remote shell splits "b c" again, for both


@pytest.mark.peer
def test_a_key_sshd_does_not_know_is_permission_denied_255_as_ssh(sshd, keys, known_hosts):
    ours = _ours(sshd, keys["stranger"], known_hosts, "true")
    theirs = _openssh(sshd, keys["stranger"], known_hosts, "true")
    assert ours.returncode == theirs.returncode == 255
    line = f"{sshd.user}@127.0.0.1: Permission denied (publickey)."
    assert ours.stderr.decode() == line + "\n" and theirs.stderr.decode().rstrip("\r\n") == line
    assert ours.stdout == b""
    assert _sshd_logged(sshd, f"Failed publickey for {sshd.user}")


@pytest.mark.peer
def test_an_unknown_host_key_is_refused_255_as_ssh(sshd, keys, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    ours = _ours(sshd, keys["id"], empty, "echo never")
    theirs = _openssh(sshd, keys["id"], empty, "echo never")
    assert ours.returncode == theirs.returncode == 255
    assert ours.stdout == theirs.stdout == b""
    assert ours.stderr.decode().splitlines()[-1] == theirs.stderr.decode().splitlines()[-1].rstrip("\r")
    assert ours.stderr.decode().splitlines()[-1] == "Host key verification failed."
    assert empty.read_text() == ""


@pytest.mark.peer
def test_accept_new_adds_the_key_and_runs(sshd, keys, tmp_path):
    known = tmp_path / "known_hosts"
    ours = _ours(sshd, keys["id"], known, "echo ok", b"", "--accept-new")
    assert ours.returncode == 0 and ours.stdout == b"ok\n"
    assert b"Warning: Permanently added" in ours.stderr
    again = _openssh(sshd, keys["id"], known, "echo ok")  # ssh itself trusts the line we wrote
    assert again.returncode == 0 and again.stdout == b"ok\n"


@pytest.mark.parametrize("destination", ["root@127.0.0.1:1", "root@nosuch.invalid"])
def test_a_refused_or_unresolvable_server_is_255_with_the_line_ssh_prints(tmp_path, keys, destination):
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    ours = _exec([destination, "--identity", str(keys["id"]), "--known-hosts", str(tmp_path / "kh"), "--", "true"])
    host, _, port = destination.partition("@")[2].partition(":")
    theirs = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-p", port or "22", f"root@{host}", "true"],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert ours.returncode == theirs.returncode == 255
    # ssh's line, with our program's name where ssh writes its own
    assert ours.stderr.decode() == theirs.stderr.decode().replace("ssh: ", "handshakes: ", 1).replace("\r\n", "\n")


@pytest.mark.peer
def test_trace_shows_channel_data_with_its_fields_on_stderr_only(sshd, keys, known_hosts, tmp_path):
    keylog = tmp_path / "keylog"
    ours = _ours(sshd, keys["id"], known_hosts, "echo traced", b"", "--trace", "--keylog", str(keylog))
    assert ours.returncode == 0 and ours.stdout == b"traced\n"  # stdout is the command's, trace or not
    trace = ours.stderr.decode()
    assert "SSH_MSG_CHANNEL_DATA: channel " in trace and "7 bytes" in trace
    block = trace[trace.index("SSH_MSG_CHANNEL_DATA, sequence number") :].split("\n\n=== ")[0]
    for field in ("packet_length", "padding_length", "message_number", "recipient_channel", "data_length",
                  "data = 7 bytes", "padding", "mac"):  # fmt: skip
        assert field in block, field
    assert "74 72 61 63 65 64 0a" in block  # "traced\n", decrypted
    # the exec request's own field, nested inside type_data
    assert "command = the command line to run" in trace
    assert "SSH_MSG_CHANNEL_REQUEST: channel 0, exec command='echo traced'" in trace
    assert keylog.read_text().count("\n") >= 1


@pytest.mark.peer
def test_an_encrypted_key_asks_its_passphrase_on_the_terminal(sshd, keys, known_hosts):
    controller, terminal = pty.openpty()

    def controlling_terminal() -> None:  # after setsid (start_new_session): the pty becomes /dev/tty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    argv = [sys.executable, "-m", "handshake_lib", "ssh", "exec", f"{sshd.user}@127.0.0.1:{sshd.port}",
            "--identity", str(keys["encrypted"]), "--known-hosts", str(known_hosts), "--", "echo unlocked"]  # fmt: skip
    seen = b""
    try:
        process = subprocess.Popen(
            argv, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_environment(), cwd=ROOT,
            start_new_session=True, preexec_fn=controlling_terminal,
        )  # fmt: skip
        os.close(terminal)
        deadline = time.monotonic() + 30
        typed = []
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.1)[0]:
                try:
                    seen += os.read(controller, 4096)
                except OSError:
                    break
            prompts = seen.count(b"Enter passphrase for key") + seen.count(b"Bad passphrase, try again")
            if prompts > len(typed):
                answer = b"wrong\n" if not typed else PASSPHRASE.encode() + b"\n"
                os.write(controller, answer)
                typed.append(answer)
        out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
    assert process.returncode == 0, err
    assert out == b"unlocked\n"
    assert f"Enter passphrase for key '{keys['encrypted']}': ".encode() in seen
    assert f"Bad passphrase, try again for {keys['encrypted']}: ".encode() in seen  # the wrong one first
    assert PASSPHRASE.encode() not in seen  # echo was off


def test_an_encrypted_key_without_a_terminal_fails_in_one_line(keys, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "handshake_lib", "ssh", "exec", "root@127.0.0.1:1", "--identity",
         str(keys["encrypted"]), "--known-hosts", str(tmp_path / "kh"), "--", "true"],
        capture_output=True, env=cli_environment(), cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal at all
    )  # fmt: skip
    assert run.returncode == 255
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and "is encrypted and no passphrase could be read" in lines[0]


# -- bad input: one line, exit 2 ---------------------------------------------------------------------
def _bad_input_cases(keys: dict[str, Path], tmp: Path) -> list[tuple[list[str], str]]:
    empty = tmp / "empty"
    empty.write_text("")
    blank = tmp / "blank-first-line"
    blank.write_text("\nsecret\n")
    long_line = tmp / "long"
    long_line.write_text("x" * 5000)
    not_key = tmp / "not-a-key"
    not_key.write_text("hello\n")
    kh = str(tmp / "kh")
    key = str(keys["id"])
    return [
        (["root@h", "--known-hosts", kh, "--", "true"], "one of the arguments --identity --password-file is required"),
        (["root@h", "--identity", key, "--password-file", key, "--known-hosts", kh, "--", "true"], "not allowed with"),
        (["root@h", "--identity", key, "--", "true"], "--known-hosts"),
        (["root@h", "--identity", key, "--known-hosts", kh], "no command after '--'"),
        (["root@h", "--identity", key, "--known-hosts", kh, "echo", "hi"], "put the command after '--'"),
        (["root@h", "--identity", key, "--known-hosts", kh, "--bogus", "--", "true"], "unrecognized arguments"),
        (["root@h", "--identity", key, "--known-hosts", kh, "--"], "no command after '--'"),
        (["root@h:99999", "--identity", key, "--known-hosts", kh, "--", "true"], "bad port"),
        (["@h", "--identity", key, "--known-hosts", kh, "--", "true"], "empty user name"),
        (["root@bad host", "--identity", key, "--known-hosts", kh, "--", "true"], "bad host"),
        (["root@h", "--identity", str(tmp / "missing"), "--known-hosts", kh, "--", "true"], "does not exist"),
        (["root@h", "--identity", str(tmp), "--known-hosts", kh, "--", "true"], "is a folder"),
        (["root@h", "--identity", str(not_key), "--known-hosts", kh, "--", "true"], "not a private key"),
        (["root@h", "--password-file", str(empty), "--known-hosts", kh, "--", "true"], "the first line is empty"),
        (["root@h", "--password-file", str(blank), "--known-hosts", kh, "--", "true"], "the first line is empty"),
        (["root@h", "--password-file", str(long_line), "--known-hosts", kh, "--", "true"], "longer than 1024"),
        (["root@h", "--identity", key, "--known-hosts", str(tmp), "--", "true"], "is a folder"),
        (["root@h", "--identity", key, "--known-hosts", kh, "--timeout", "0", "--", "true"], "expected seconds"),
        (["root@h", "--identity", key, "--known-hosts", kh, "--timeout", "nan", "--", "true"], "expected seconds"),
        (
            ["root@h", "--identity", key, "--known-hosts", kh, "--keylog", str(tmp / "no" / "k"), "--", "true"],
            "does not exist",
        ),  # fmt: skip
        (
            ["root@h", "--identity", key, "--known-hosts", str(tmp / "no" / "kh"), "--accept-new", "--", "true"],
            "cannot write",
        ),  # fmt: skip
        (["root@h", "--identity", key, "--known-hosts", kh, "--", "x" * 300_000], "longer than"),
    ]


def test_bad_input_is_one_line_and_exit_2(keys, tmp_path, capsys):
    for argv, expected in _bad_input_cases(keys, tmp_path):
        assert main(["ssh", "exec", *argv]) == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and expected in errors[0], (argv, err)
        assert not [line for line in err.splitlines() if line and not line.startswith(("usage:", " ", "handshakes"))]
