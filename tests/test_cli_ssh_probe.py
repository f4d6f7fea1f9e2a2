"""``handshakes ssh probe`` against Debian's OpenSSH ``sshd`` (and our own server for a changed key).

What OpenSSH says is the reference: the fingerprint printed is the line ``ssh-keygen -lf`` prints for
the server's key, the algorithms reported are the ones sshd logged ("kex: algorithm: ..."), a key added
by ``--accept-new`` or a "yes" is found by ``ssh-keygen -F``.  The host key question runs through a real
pseudo-terminal, as a person at a terminal would answer it.  ``--keylog`` is not tested here: it needs
``handshake_lib.ssh.keylog``, which lands separately (the flag refuses in one line while it is missing).
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, require, require_loopback_capture

from handshake_lib.__main__ import main
from handshake_lib.cli.ssh_probe import AGAIN, answer_accepts, parse_destination
from handshake_lib.net.ssh import SSHProbeServer, ssh_probe
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import HostKeyPolicy, KnownHosts, known_hosts_line

QUESTION = "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
ED25519 = HostKeyPair.generate("ssh-ed25519")


@pytest.fixture(scope="module")
def sshd():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    require("ssh-keygen", "OpenSSH's ssh-keygen (Debian package openssh-client)")
    from handshake_lib.peers.openssh import openssh_server

    # Listening on ::1 as well, for the [::1]:PORT form (the helper's own ListenAddress is 127.0.0.1).
    with openssh_server(extra_options={"ListenAddress": "::1"}) as server:
        yield server


def _facts(out: str) -> dict[str, str]:
    """The summary's ``name: value`` lines."""
    facts = {}
    for line in out.splitlines():
        name, colon, value = line.partition(":")
        if colon and name and not name.startswith(("=", " ")) and value.startswith(" "):
            facts.setdefault(name, value.strip())
    return facts


def _keygen_fingerprints(known_hosts: Path) -> dict[str, str]:
    """``ssh-keygen -lf FILE``'s lines, by the key label at their end: ``{"ED25519": "256 SHA256:... (ED25519)"}``."""
    listed = subprocess.run(["ssh-keygen", "-lf", str(known_hosts)], capture_output=True, text=True, timeout=10)
    assert listed.returncode == 0, listed.stderr
    return {line.rsplit("(", 1)[1].rstrip(")"): line for line in listed.stdout.splitlines()}


def _keygen_finds(known_hosts: Path, name: str) -> bool:
    found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(known_hosts)], capture_output=True, timeout=10)
    return found.returncode == 0 and b"found: line" in found.stdout


def _sshd_logged(sshd, text: str, seconds: float = 10) -> bool:
    """Whether sshd's log holds ``text``, waiting for it: sshd's child writes its log on its own time."""
    deadline = time.monotonic() + seconds
    while text not in sshd.log:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("handshakes: error:")]


@pytest.mark.peer
def test_the_probe_prints_what_was_negotiated_and_the_fingerprint_ssh_keygen_prints(sshd, tmp_path, capsys):
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    assert main(["ssh", "probe", f"root@127.0.0.1:{sshd.port}", "--known-hosts", str(known_hosts)]) == 0
    captured = capsys.readouterr()
    facts = _facts(captured.out)
    assert facts["server"].startswith("SSH-2.0-OpenSSH_9.2")
    assert facts["kex"].startswith("sntrup761x25519-sha512")  # Debian's OpenSSH 9.2 default, post-quantum
    assert facts["strict kex"].startswith("yes")  # Debian backported the Terrapin countermeasure
    assert facts["host key"] == "ssh-ed25519"
    assert facts["fingerprint"] == _keygen_fingerprints(known_hosts)["ED25519"]
    assert facts["known_hosts"] == f"known: {known_hosts}:1"
    assert facts["cipher c->s"] == facts["cipher s->c"] == "chacha20-poly1305@openssh.com"
    assert facts["mac c->s"].startswith("(implicit")
    assert facts["user"] == "root"
    assert facts["methods"] == "publickey"  # sshd's answer to "none", readable only with the right keys
    assert captured.err == ""


@pytest.mark.peer
def test_narrowed_algorithms_are_the_ones_sshd_logged_and_trace_shows_every_packet_decrypted(sshd, tmp_path, capsys):
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    argv = [
        "ssh", "probe", f"root@127.0.0.1:{sshd.port}", "--known-hosts", str(known_hosts), "--trace",
        "--kex", "curve25519-sha256,ecdh-sha2-nistp256", "--cipher", "aes256-ctr",
        "--mac", "hmac-sha2-256-etm@openssh.com", "--host-key-algorithms", "ecdsa-sha2-nistp256",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    facts = _facts(out.rsplit("\nH = ", 1)[1])
    assert facts["kex"] == "curve25519-sha256" and facts["host key"] == "ecdsa-sha2-nistp256"
    assert facts["cipher c->s"] == facts["cipher s->c"] == "aes256-ctr"
    assert facts["mac c->s"] == facts["mac s->c"] == "hmac-sha2-256-etm@openssh.com"
    assert facts["fingerprint"] == _keygen_fingerprints(known_hosts)["ECDSA"]
    # sshd's own account (only this test narrows to these, so finding them finds this connection)
    for logged in (
        "kex: algorithm: curve25519-sha256 ",
        "kex: host key algorithm: ecdsa-sha2-nistp256 ",
        "kex: client->server cipher: aes256-ctr MAC: hmac-sha2-256-etm@openssh.com compression: none",
        "kex: server->client cipher: aes256-ctr MAC: hmac-sha2-256-etm@openssh.com compression: none",
    ):
        assert _sshd_logged(sshd, logged), logged

    headers = [line for line in out.splitlines() if line.startswith("=== ")]
    names = [header.split("  ")[1].split(",")[0] for header in headers if header[4].isdigit()]
    for name in ("identification line", "SSH_MSG_KEXINIT", "SSH_MSG_KEX_ECDH_INIT", "SSH_MSG_KEX_ECDH_REPLY",
                 "SSH_MSG_NEWKEYS", "SSH_MSG_SERVICE_REQUEST", "SSH_MSG_USERAUTH_REQUEST", "SSH_MSG_USERAUTH_FAILURE",
                 "SSH_MSG_DISCONNECT"):  # fmt: skip
        assert name in names
    numbers = [int(header[4:].split(":")[0]) for header in headers if header[4].isdigit()]
    assert numbers == list(range(1, len(numbers) + 1))  # every entry, in order
    clear = (
        "identification line",
        "SSH_MSG_KEXINIT",
        "SSH_MSG_KEX_ECDH_INIT",
        "SSH_MSG_KEX_ECDH_REPLY",
        "SSH_MSG_NEWKEYS",
    )
    for header, name in zip(headers, names, strict=False):  # everything after NEWKEYS, and nothing before it
        assert ("[encrypted: aes256-ctr + hmac-sha2-256-etm@openssh.com]" in header) == (name not in clear), header
    # The decrypted dump shows what only the keys could: the user name and the server's list of methods.
    failure = out.split("SSH_MSG_USERAUTH_FAILURE, sequence number")[1].split("\n=== ")[0]
    assert "authentications_that_can_continue = methods that may continue: publickey" in failure
    assert "mac = MAC or tag (aes256-ctr + hmac-sha2-256-etm@openssh.com)" in failure
    assert "packet_length = " in failure and "padding = random bytes" in failure
    # H's inputs, once, named as RFC 5656 / RFC 8731 name them
    assert out.count("=== the exchange hash H = sha256(V_C, V_S, I_C, I_S, K_S, Q_C, Q_S, K)") == 1


@pytest.mark.peer
def test_an_unknown_key_is_refused_when_nobody_can_be_asked(sshd, tmp_path, capsys, monkeypatch):
    known_hosts = tmp_path / "known_hosts"
    with open(os.devnull) as not_a_terminal:
        monkeypatch.setattr(sys, "stdin", not_a_terminal)
        assert main(["ssh", "probe", f"127.0.0.1:{sshd.port}", "--known-hosts", str(known_hosts)]) == 1
    err = capsys.readouterr().err
    assert f"No ED25519 host key is known for [127.0.0.1]:{sshd.port} and you have requested strict checking." in err
    assert _error_lines(err) == ["handshakes: error: Host key verification failed."]
    assert not known_hosts.exists()  # refused: nothing written


@pytest.mark.peer
def test_accept_new_creates_the_file_with_a_line_ssh_keygen_finds(sshd, tmp_path, capsys):
    known_hosts = tmp_path / "known_hosts"
    argv = ["ssh", "probe", f"127.0.0.1:{sshd.port}", "--known-hosts", str(known_hosts)]
    assert main([*argv, "--accept-new"]) == 0
    captured = capsys.readouterr()
    name = f"[127.0.0.1]:{sshd.port}"
    assert f"Warning: Permanently added '{name}' (ED25519) to the list of known hosts." in captured.err
    assert _facts(captured.out)["known_hosts"] == f"new, accepted for {known_hosts} (--accept-new)"
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    assert _keygen_finds(known_hosts, name)
    assert main(argv) == 0  # the next run finds it, without being told to accept anything
    assert _facts(capsys.readouterr().out)["known_hosts"] == f"known: {known_hosts}:1"


@pytest.mark.peer
def test_an_ipv6_destination_in_brackets_reaches_sshd_and_is_known_as_such(sshd, tmp_path, capsys):
    known_hosts = tmp_path / "known_hosts"
    assert main(["ssh", "probe", f"[::1]:{sshd.port}", "--known-hosts", str(known_hosts), "--accept-new"]) == 0
    assert _facts(capsys.readouterr().out)["fingerprint"].endswith(f" [::1]:{sshd.port} (ED25519)")
    assert _keygen_finds(known_hosts, f"[::1]:{sshd.port}")


@pytest.mark.peer
def test_no_common_algorithm_is_refused_in_one_line_naming_the_category(sshd, tmp_path, capsys):
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    # OpenSSH 9.2 has no ML-KEM (9.9 added it): nothing in common.
    argv = [
        "ssh",
        "probe",
        f"127.0.0.1:{sshd.port}",
        "--known-hosts",
        str(known_hosts),
        "--kex",
        "mlkem768x25519-sha256",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert line.startswith("handshakes: error: no matching kex algorithm: client offered mlkem768x25519-sha256")
    assert "KEY_EXCHANGE_FAILED" in line
    assert _sshd_logged(sshd, "kex: algorithm: (no match)")  # sshd saw the same


def test_a_changed_host_key_is_refused_with_openssh_warning(tmp_path, capsys):
    other = HostKeyPair.generate("ssh-ed25519")
    with SSHProbeServer([ED25519]) as server:
        known_hosts = tmp_path / "known_hosts"
        text = known_hosts_line(server.host, server.port, other.host_key, hashed=False) + "\n"
        known_hosts.write_text(text)
        argv = ["ssh", "probe", f"127.0.0.1:{server.port}", "--known-hosts", str(known_hosts), "--accept-new"]
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @" in err
    assert f"The fingerprint for the ED25519 key sent by the remote host is\n{ED25519.host_key.fingerprint()}." in err
    assert f"Offending ED25519 key in {known_hosts}:1" in err
    assert _error_lines(err) == ["handshakes: error: Host key verification failed."]
    assert known_hosts.read_text() == text  # --accept-new never replaces a known key


def test_a_refused_connection_is_exit_1(tmp_path, capsys):
    assert main(["ssh", "probe", "127.0.0.1:1", "--known-hosts", str(tmp_path / "kh"), "--timeout", "2"]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        "handshakes: error: connection refused: is an SSH server running on that port?"
    ]


# -- the question, through a pseudo-terminal ------------------------------------------------------------
def _probe_on_a_terminal(port: int, known_hosts: Path, answers: bytes) -> subprocess.CompletedProcess:
    """Run the command with a pseudo-terminal as standard input, type ``answers``, collect stdout and stderr."""
    controller, terminal = pty.openpty()
    environment = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [
        sys.executable,
        "-m",
        "handshake_lib",
        "ssh",
        "probe",
        f"127.0.0.1:{port}",
        "--known-hosts",
        str(known_hosts),
    ]
    try:
        process = subprocess.Popen(
            argv, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, cwd=ROOT
        )
        os.close(terminal)
        os.write(controller, answers)  # the terminal holds the lines until the question reads them
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.1)[0]:
                try:
                    os.read(controller, 4096)  # the terminal's echo of what was typed
                except OSError:
                    break
        out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), err.decode())


@pytest.mark.peer
def test_the_question_on_a_terminal_answered_yes_adds_the_key(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    run = _probe_on_a_terminal(sshd.port, known_hosts, b"perhaps\nyes\n")
    assert run.returncode == 0, run.stderr
    name = f"[127.0.0.1]:{sshd.port}"
    fingerprint = _facts(run.stdout)["fingerprint"].split()[1]
    assert run.stderr.startswith(
        f"The authenticity of host '{name} ({name})' can't be established.\n"
        f"ED25519 key fingerprint is {fingerprint}.\n{QUESTION}{AGAIN}"  # "perhaps" is no answer: asked again
    )
    assert f"Warning: Permanently added '{name}' (ED25519) to the list of known hosts." in run.stderr
    assert _facts(run.stdout)["known_hosts"] == f"new, accepted for {known_hosts} (you answered yes)"
    assert _keygen_finds(known_hosts, name)


@pytest.mark.peer
def test_the_question_on_a_terminal_answered_no_refuses(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    run = _probe_on_a_terminal(sshd.port, known_hosts, b"no\n")
    assert run.returncode == 1
    assert QUESTION in run.stderr and run.stdout == ""
    assert _error_lines(run.stderr) == ["handshakes: error: Host key verification failed."]
    assert not known_hosts.exists()


@pytest.mark.peer
def test_a_yes_that_cannot_be_saved_is_a_warning_as_in_ssh(sshd, tmp_path):
    known_hosts = tmp_path / "no-such-folder" / "known_hosts"
    run = _probe_on_a_terminal(sshd.port, known_hosts, b"yes\n")
    assert run.returncode == 0, run.stderr  # the server answered: the probe succeeded
    assert f"Failed to add the host to the list of known hosts ({known_hosts}): No such file or directory" in run.stderr
    assert _facts(run.stdout)["methods"] == "publickey"
    assert not known_hosts.parent.exists()


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("yes\n", True), ("YES\n", True), ("  yes  \n", True), ("yes please\n", True),  # the first word counts
        ("SHA256:abc\n", True), ("sha256:abc\n", None),  # the fingerprint exactly (strcmp), yes/no in any case
        ("no\n", False), ("No\n", False), ("\n", False), ("   \n", False),  # an empty answer is no
        ("y\n", None), ("yess\n", None), ("perhaps\n", None),  # asked again
    ],
)  # fmt: skip
def test_answers_are_read_as_openssh_confirm_reads_them(answer, verdict):
    assert answer_accepts(answer, "SHA256:abc") is verdict


def test_time_spent_answering_does_not_count_against_the_timeout():
    """``ssh_probe``'s deadline pauses while ``ask`` runs: a person takes longer than a network should."""

    def slow_yes(question):
        time.sleep(1.0)  # longer than the whole timeout below
        return True

    with SSHProbeServer([ED25519]) as server:
        result = ssh_probe(
            server.host, server.port, known_hosts=KnownHosts.parse(""), host_key_policy=HostKeyPolicy.ASK,
            ask=slow_yes, timeout=0.8,
        )  # fmt: skip
    assert result.host_key_decision.asked and result.methods == ("publickey", "password")


@pytest.mark.parametrize(
    ("destination", "parsed"),
    [
        ("127.0.0.1", (None, "127.0.0.1", 22)),
        ("root@127.0.0.1:2222", ("root", "127.0.0.1", 2222)),
        ("[::1]:2222", (None, "::1", 2222)),
        ("alice@[::1]", ("alice", "::1", 22)),
        ("::1", (None, "::1", 22)),  # a bare IPv6 address: no port (as ssh reads it)
        ("me@corp@localhost:22", ("me@corp", "localhost", 22)),  # the user ends at the last @ (ssh's strrchr)
    ],
)
def test_destinations_are_read_as_ssh_reads_them(destination, parsed):
    assert parse_destination(destination) == parsed


def test_kex_ecdh_messages_are_named_as_themselves_not_as_their_number_s_dh_alias():
    """30 and 31 are KEXDH_INIT/REPLY's numbers too; the trace headers named curve25519's messages wrongly."""
    from handshake_lib.ssh.messages import KexDHInit, KexECDHInit, KexECDHReply, decode_message

    assert KexECDHInit(b"\x01" * 32).name == "SSH_MSG_KEX_ECDH_INIT"
    assert KexECDHReply().name == "SSH_MSG_KEX_ECDH_REPLY"
    assert KexDHInit(5).name == "SSH_MSG_KEXDH_INIT"
    decoded = decode_message(KexECDHInit(b"\x01" * 32).to_bytes(), kex_family="ecdh")
    assert decoded.name == "SSH_MSG_KEX_ECDH_INIT" and decoded.spans[0].meaning == "SSH_MSG_KEX_ECDH_INIT"


@pytest.mark.peer
def test_the_keylog_it_writes_decrypts_a_capture_of_the_probe(sshd, tmp_path, capsys):
    # The key log is right only if it opens the real session: capture the probe, decrypt it with the log.
    from handshake_lib.ssh.capture import decode_ssh_capture
    from handshake_lib.ssh.keylog import read_keylog

    recorder = require_loopback_capture("captures the probe")
    known_hosts = sshd.write_known_hosts(tmp_path / "kh")
    keylog, pcap = tmp_path / "ssh.keylog", tmp_path / "probe.pcap"
    with recorder.tcpdump(pcap, sshd.port):
        destination = f"root@127.0.0.1:{sshd.port}"
        assert main(["ssh", "probe", destination, "--known-hosts", str(known_hosts), "--keylog", str(keylog)]) == 0
    assert keylog.stat().st_mode & 0o777 == 0o600
    [connection] = decode_ssh_capture(pcap, read_keylog(keylog))
    decrypted = [p.message.name for p in connection.packets if p.decrypted and p.message is not None]
    assert "SSH_MSG_USERAUTH_FAILURE" in decrypted and "SSH_MSG_SERVICE_ACCEPT" in decrypted
