"""``handshakes ssh serve`` run as a process, with OpenSSH's ``ssh`` and ``sftp`` and our ``ssh exec`` as clients.

The files are OpenSSH's own: the host key and the user keys made by ``ssh-keygen``, the authorized_keys
lines its ``.pub`` files.  OpenSSH's ``ssh -F /dev/null`` logs in with a key (``-i``), with a password
through ``SSH_ASKPASS`` (``SSH_ASKPASS_REQUIRE=force``) for ``password`` and ``keyboard-interactive``;
``sftp -b`` lists, gets and puts inside ``--sftp-root`` and is refused ``..``.  For each command of
the fixed set (and for forbidden ones) our ``ssh exec`` must print what OpenSSH's ``ssh`` prints, byte
for byte, with the same exit status.  SIGTERM (the module's end) and SIGINT (with a client still
connected) stop the server with status 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_environment, read_line, require

from handshake_lib.__main__ import main

PASSWORD = "s3cret: with a colon"


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   timeout=30, capture_output=True)  # fmt: skip
    return path


def _start(folder: Path, *extra: str) -> tuple[subprocess.Popen, int, str]:
    """``ssh serve --port 0 ...`` as a process; its port and its listening line."""
    argv = [
        sys.executable, "-m", "handshake_lib", "ssh", "serve", "--port", "0", "--host-key", str(folder / "host"),
        "--authorized-keys", str(folder / "authorized_keys"), *extra,
    ]  # fmt: skip
    log = (folder / f"serve-{len(list(folder.glob('serve-*.log')))}.log").open("wb")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, bufsize=0, env=cli_environment(), cwd=ROOT)
    log.close()
    line = read_line(process, 30)
    found = re.match(r"listening on 127\.0\.0\.1:(\d+) ", line)
    if found is None:
        process.kill()
        process.wait(10)
        pytest.fail(f"ssh serve did not start: {line!r}")
    return process, int(found.group(1)), line


class Served:
    def __init__(self, folder: Path, process: subprocess.Popen, port: int, line: str) -> None:
        self.folder, self.process, self.port, self.line = folder, process, port, line
        self.known_hosts = folder / "known_hosts"
        self.root = folder / "root"

    @property
    def log(self) -> str:
        return (self.folder / "serve-0.log").read_text()

    def logged(self, text: str, seconds: float = 15) -> bool:
        """Whether the server's stderr holds ``text`` (it logs a connection once it has ended)."""
        deadline = time.monotonic() + seconds
        while text not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require("ssh-keygen", "OpenSSH's ssh-keygen (Debian package openssh-client)")
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    folder = tmp_path_factory.mktemp("serve")
    _keygen(folder / "host", "serve host key")
    _keygen(folder / "id", "learner key")
    _keygen(folder / "stranger", "not authorized")
    (folder / "authorized_keys").write_text(
        (folder / "id.pub").read_text() + "not-a-key AAAA junk\n"  # line 2: reported, skipped
    )
    (folder / "passwords").write_text(f"alice:{PASSWORD}\nno colon here\n")
    root = folder / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello from the root\n")
    (folder / "secret.txt").write_text("outside the root\n")  # what ../secret.txt would reach
    process, port, line = _start(
        folder, "--password-file", str(folder / "passwords"), "--sftp-root", str(root), "--keylog",
        str(folder / "keylog"),
    )  # fmt: skip
    host_line = (folder / "host.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_line[0]} {host_line[1]}\n")
    askpass = folder / "askpass"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{PASSWORD}'\n")
    askpass.chmod(0o700)
    (folder / "wrong_askpass").write_text("#!/bin/sh\necho wrong\n")
    (folder / "wrong_askpass").chmod(0o700)
    (folder / "password_file").write_text(PASSWORD + "\r\n")
    (folder / "wrong_password_file").write_text("wrong\n")
    try:
        yield Served(folder, process, port, line)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            status = None
    assert status == 0  # SIGTERM stops it cleanly
    assert (folder / "serve-0.log").read_text().rstrip().endswith("stopped")


def _openssh(served: Served, user: str, command: str, *options: str, stdin: bytes = b"", env=None):
    argv = [
        "ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={served.known_hosts}", *options, "-p", str(served.port),
        f"{user}@127.0.0.1", command,
    ]  # fmt: skip
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, env=env)


def _with_key(served: Served, user: str, command: str, key: str = "id", stdin: bytes = b""):
    return _openssh(served, user, command, "-i", str(served.folder / key), "-o", "BatchMode=yes", stdin=stdin)


def _ours(served: Served, user: str, command: str, *credentials: str, stdin: bytes = b""):
    credentials = credentials or ("--identity", str(served.folder / "id"))
    argv = [
        sys.executable, "-m", "handshake_lib", "ssh", "exec", f"{user}@127.0.0.1:{served.port}", *credentials,
        "--known-hosts", str(served.known_hosts), "--", command,
    ]  # fmt: skip
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, env=cli_environment(), cwd=ROOT)


def _askpass_env(served: Served, script: str = "askpass") -> dict[str, str]:
    return dict(os.environ, SSH_ASKPASS=str(served.folder / script), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")


def test_the_listening_line_shows_the_port_and_the_fingerprint_ssh_keygen_shows(served):
    assert served.port > 0
    listed = subprocess.run(["ssh-keygen", "-lf", str(served.folder / "host.pub")], capture_output=True, text=True,
                            timeout=10, check=True)  # fmt: skip
    assert f"host key {listed.stdout.strip()};" in served.line  # "256 SHA256:... serve host key (ED25519)"
    assert "methods publickey,keyboard-interactive,password;" in served.line


def test_bad_lines_of_both_files_are_reported_with_their_numbers(served):
    assert served.logged(f"{served.folder / 'authorized_keys'}:2: skipped: ")
    assert served.logged(f"{served.folder / 'passwords'}:2: skipped: no ':' between the user name and the password")


@pytest.mark.peer
@pytest.mark.parametrize(
    ("command", "stdin"),
    [
        ("echo hello   world", b""),
        ("echo 'quoted  words' \"and more\"", b""),
        ("whoami", b""),
        ("ls", b""),
        ("exit 3", b""),
        ("bytes 300000", b""),  # more than one channel window: flow control both ways
        ("wc -c", b"x" * 100_000),
        ("cat", bytes(range(256)) * 100),
        ("nosuch --flag", b""),  # forbidden: 127 and the refusal on stderr
        ("sh -c id", b""),  # no shell, ever
        ("ls /etc", b""),  # the fixed set's own refusal of arguments
        ("exit 300", b""),
        ("echo 'unclosed", b""),
    ],
)
def test_our_exec_prints_what_openssh_ssh_prints(served, command, stdin):
    theirs = _with_key(served, "bob", command, stdin=stdin)
    ours = _ours(served, "bob", command, stdin=stdin)
    assert ours.returncode == theirs.returncode
    assert ours.stdout == theirs.stdout
    assert ours.stderr == theirs.stderr
    if command.startswith("nosuch"):
        assert theirs.returncode == 127 and b"command not found" in theirs.stderr
    assert served.logged(f"exec {command!r} -> exit status {theirs.returncode}")


@pytest.mark.peer
def test_a_key_not_in_authorized_keys_is_refused_with_the_same_line_for_both(served):
    theirs = _with_key(served, "bob", "true", key="stranger")
    ours = _ours(served, "bob", "true", "--identity", str(served.folder / "stranger"))
    line = "bob@127.0.0.1: Permission denied (publickey,keyboard-interactive,password)."
    assert ours.returncode == theirs.returncode == 255
    assert theirs.stderr.decode().rstrip("\r\n") == line and ours.stderr.decode() == line + "\n"
    assert served.logged("'bob' publickey refused: ")


@pytest.mark.peer
@pytest.mark.parametrize("method", ["password", "keyboard-interactive"])
def test_openssh_ssh_logs_in_with_a_password_through_askpass(served, method):
    options = ("-o", f"PreferredAuthentications={method}", "-o", "NumberOfPasswordPrompts=1")
    run = _openssh(served, "alice", "whoami", *options, env=_askpass_env(served))
    assert (run.returncode, run.stdout) == (0, b"alice\n"), run.stderr
    assert served.logged(f"'alice' logged in by {method}")
    wrong = _openssh(served, "alice", "whoami", *options, env=_askpass_env(served, "wrong_askpass"))
    assert wrong.returncode == 255 and b"Permission denied" in wrong.stderr
    assert served.logged(f"'alice' {method} refused: ")


@pytest.mark.peer
def test_our_exec_logs_in_with_the_password_file(served):
    ours = _ours(served, "alice", "whoami", "--password-file", str(served.folder / "password_file"))
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, b"alice\n", b"")
    wrong = _ours(served, "alice", "whoami", "--password-file", str(served.folder / "wrong_password_file"))
    assert wrong.returncode == 255
    assert wrong.stderr == b"alice@127.0.0.1: Permission denied (publickey,keyboard-interactive,password).\n"


@pytest.mark.peer
def test_openssh_sftp_lists_gets_and_puts_inside_the_root_and_never_leaves_it(served, tmp_path):
    require("sftp", "OpenSSH's sftp (Debian package openssh-client)")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(200_000))
    batch = tmp_path / "batch"
    batch.write_text(f"ls -1\nget hello.txt {tmp_path / 'got.txt'}\nput {upload} uploaded.bin\nls -1\n")
    base = ["sftp", "-F", "/dev/null", "-o", f"UserKnownHostsFile={served.known_hosts}", "-i",
            str(served.folder / "id"), "-P", str(served.port)]  # fmt: skip
    run = subprocess.run([*base, "-b", str(batch), "carol@127.0.0.1"], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "got.txt").read_bytes() == b"hello from the root\n"
    assert (served.root / "uploaded.bin").read_bytes() == upload.read_bytes()
    listings = [part.split("sftp>")[0].split() for part in run.stdout.decode().split("sftp> ls -1\n")[1:]]
    assert listings[0] == ["hello.txt"] and sorted(listings[1]) == ["hello.txt", "uploaded.bin"]
    stolen = tmp_path / "stolen"
    for escape in (
        f"get ../secret.txt {stolen}", f"get {served.folder / 'secret.txt'} {stolen}", f"put {upload} ../escaped.bin"
    ):  # fmt: skip
        batch.write_text(escape + "\n")
        refused = subprocess.run([*base, "-b", str(batch), "carol@127.0.0.1"], capture_output=True, timeout=60)
        assert refused.returncode == 1, escape  # sftp -b stops at the failed command
        assert not stolen.exists()
    assert not (served.folder / "escaped.bin").exists()
    assert served.logged("'carol' logged in by publickey")
    assert served.logged("subsystem sftp: ")


@pytest.mark.peer
def test_the_keylog_holds_each_connections_secrets(served):
    assert _with_key(served, "dave", "echo k").returncode == 0
    assert served.logged("'dave' logged in")
    lines = (served.folder / "keylog").read_text().splitlines()
    assert lines and all(len(line.split()) >= 3 for line in lines)  # cookie, type, value


@pytest.mark.peer
def test_sigint_stops_the_server_with_a_client_still_connected(served):
    process, port, _ = _start(served.folder)
    try:
        argv = ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={served.folder / 'kh2'}", "-o",
                "StrictHostKeyChecking=accept-new", "-i", str(served.folder / "id"), "-o", "BatchMode=yes",
                "-p", str(port), "eve@127.0.0.1", "cat"]  # fmt: skip
        client = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        client.stdin.write(b"still here\n")
        client.stdin.flush()
        assert read_line(client, 30) == "still here\n"  # logged in, the command running, its stdin open
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        client.wait(30)  # the server's end closed the connection: ssh ends too
        assert client.returncode == 255
    finally:
        for child in (process,):
            if child.poll() is None:
                child.kill()
                child.wait(10)
    log = (served.folder / "serve-1.log").read_text()
    assert "'eve' logged in by publickey" in log and log.rstrip().endswith("stopped")


# -- bad input: one line, exit 2 ---------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_2(served, tmp_path, capsys):
    folder = served.folder
    host, keys = str(folder / "host"), str(folder / "authorized_keys")
    not_key = tmp_path / "not-a-key"
    not_key.write_text("hello\n")
    encrypted = tmp_path / "encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass", "-f", str(encrypted)], check=True, timeout=30)
    huge = tmp_path / "huge"
    huge.write_bytes(b"a:b\n" * 300_000)  # 1.2 MB of passwords
    cases = [
        (["--host-key", host, "--authorized-keys", keys], "--port"),
        (["--port", "-1", "--host-key", host, "--authorized-keys", keys], "expected a port"),
        (["--port", "http", "--host-key", host, "--authorized-keys", keys], "expected a port"),
        (["--port", "70000", "--host-key", host, "--authorized-keys", keys], "expected a port"),
        (["--port", "0", "--authorized-keys", keys], "--host-key"),
        (["--port", "0", "--host-key", str(tmp_path / "missing"), "--authorized-keys", keys], "does not exist"),
        (["--port", "0", "--host-key", str(tmp_path), "--authorized-keys", keys], "is a folder"),
        (["--port", "0", "--host-key", str(not_key), "--authorized-keys", keys], "not a private key"),
        (["--port", "0", "--host-key", str(encrypted), "--authorized-keys", keys], "is encrypted"),
        (["--port", "0", "--host-key", host], "--authorized-keys"),
        (["--port", "0", "--host-key", host, "--authorized-keys", str(tmp_path / "missing")], "does not exist"),
        (["--port", "0", "--host-key", host, "--authorized-keys", keys, "--password-file", str(tmp_path / "no")],
         "does not exist"),  # fmt: skip
        (["--port", "0", "--host-key", host, "--authorized-keys", keys, "--password-file", str(huge)], "larger than"),
        (["--port", "0", "--host-key", host, "--authorized-keys", keys, "--sftp-root", str(not_key)],
         "is not a folder"),  # fmt: skip
        (["--port", "0", "--host-key", host, "--authorized-keys", keys, "--sftp-root", str(tmp_path / "no")],
         "does not exist"),  # fmt: skip
        (["--port", "0", "--host-key", host, "--authorized-keys", keys, "--keylog", str(tmp_path / "no" / "k")],
         "does not exist"),  # fmt: skip
    ]
    for argv, expected in cases:
        assert main(["ssh", "serve", *argv]) == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and expected in errors[0], (argv, err)


def test_a_port_in_use_is_one_line_exit_1(served, capsys):
    argv = ["ssh", "serve", "--port", str(served.port), "--host-key", str(served.folder / "host"),
            "--authorized-keys", str(served.folder / "authorized_keys")]  # fmt: skip
    assert main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"handshakes: error: cannot serve on 127.0.0.1:{served.port}: Address already in use"]
