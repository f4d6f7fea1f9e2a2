"""``handshakes ssh decode``: the bundled capture decrypted, checked against Debian's tshark on the same
file; bad input answered with one line and the right exit status."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from conftest import require

from handshake_lib.cli import run
from handshake_lib.ssh.constants import MessageNumber
from handshake_lib.tcp.pcap import bundled_capture, read_pcap

DATA = resources.files("handshake_lib") / "data"
PCAP = str(DATA / "ssh_session.pcap")
KEYLOG = str(DATA / "ssh_session.keylog")
PACKET_LINE = re.compile(r"^(\d+)\s+(client|server) -> (server|client)\s+(\S+)\s+(\S+)(.*)$")


def _packet_lines(output: str) -> list[re.Match]:
    return [m for line in output.splitlines() if (m := PACKET_LINE.match(line))]


def test_the_bundled_capture_prints_the_decrypted_user_authentication(capsys):
    assert run(["ssh", "decode", PCAP, "--keylog", KEYLOG]) == 0
    out = capsys.readouterr().out
    lines = _packet_lines(out)
    decrypted = [m.group(5) for m in lines if "[decrypted]" in m.group(6)]
    assert decrypted[1:5] == [
        "SSH_MSG_SERVICE_REQUEST", "SSH_MSG_SERVICE_ACCEPT", "SSH_MSG_USERAUTH_REQUEST", "SSH_MSG_USERAUTH_FAILURE",
    ]  # fmt: skip
    # The fields are under their packet: the none request and the methods the server offers.
    assert "method_name = 'none'" in out and "authentications_that_can_continue = 'publickey'" in out
    assert "the server's signature over H verifies" in out


def test_without_the_key_log_the_packets_after_newkeys_show_as_encrypted(capsys):
    assert run(["ssh", "decode", PCAP]) == 0
    out = capsys.readouterr().out
    assert "USERAUTH" not in out
    assert out.count("[encrypted,") == 2 and "no key log line for this session" in out


def test_trace_adds_the_annotated_hex_dumps(capsys):
    assert run(["ssh", "decode", PCAP, "--keylog", KEYLOG, "--trace"]) == 0
    out = capsys.readouterr().out
    assert "packet_length = " in out and "MAC or tag (aes128-gcm@openssh.com)" in out


@pytest.mark.peer
def test_our_decryption_agrees_with_tsharks_on_the_same_file(capsys):
    require("tshark", "Wireshark's SSH dissector, the second opinion")
    assert run(["ssh", "decode", PCAP, "--keylog", KEYLOG]) == 0
    names = [m.group(5) for m in _packet_lines(capsys.readouterr().out) if m.group(5) != "identification"]
    port = read_pcap(PCAP)[0].segment.dst_port
    result = subprocess.run(
        ["tshark", "-r", PCAP, "-d", f"tcp.port=={port},ssh", "-o", f"ssh.keylog_file:{KEYLOG}",
         "-Y", "ssh", "-T", "fields", "-e", "ssh.message_code"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    codes = [int(code) for line in result.stdout.split() for code in line.split(",") if code]
    # 30/31 are named by the key exchange that runs (the bundled session's is curve25519: KEX_ECDH_*);
    # tshark gives the numbers, so compare numbers.
    assert codes == [_number_of(name) for name in names]
    assert {50, 51} <= set(codes)


def _number_of(name: str) -> int:
    ecdh = {"SSH_MSG_KEX_ECDH_INIT": 30, "SSH_MSG_KEX_ECDH_REPLY": 31}
    return ecdh[name] if name in ecdh else int(MessageNumber[name.removeprefix("SSH_MSG_")])


# -- bad input -----------------------------------------------------------------------------------------------
def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_a_capture_without_ssh_is_exit_1(capsys):
    assert run(["ssh", "decode", str(bundled_capture())]) == 1
    assert "holds no SSH connection" in _one_line_error(capsys)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is not a capture", bytes.fromhex("0a0d0d0a") + bytes(40), Path(PCAP).read_bytes()[:20]],
    ids=["empty", "text", "pcapng", "truncated header"],
)
def test_bytes_that_are_no_pcap_are_exit_1_in_one_line(tmp_path, capsys, content):
    path = tmp_path / "capture.pcap"
    path.write_bytes(content)
    assert run(["ssh", "decode", str(path)]) == 1
    assert "is not a capture we can read" in _one_line_error(capsys)


def test_a_capture_cut_in_the_middle_still_decodes_what_it_holds(tmp_path, capsys):
    path = tmp_path / "cut.pcap"
    path.write_bytes(Path(PCAP).read_bytes()[:1500])
    assert run(["ssh", "decode", str(path), "--keylog", KEYLOG]) == 0
    out = capsys.readouterr().out
    assert "SSH_MSG_KEXINIT" in out and "note: the capture ends inside a record" in out


def test_a_key_log_with_garbage_lines_names_the_first_and_goes_on(tmp_path, capsys):
    keylog = tmp_path / "keys.log"
    keylog.write_text("garbage line\n\x00\x01 not hex\n" + Path(KEYLOG).read_text())
    assert run(["ssh", "decode", PCAP, "--keylog", str(keylog)]) == 0
    captured = capsys.readouterr()
    assert "SSH_MSG_USERAUTH_FAILURE  [decrypted]" in captured.out
    line = _one_line_error_from(captured.err)
    assert "line 1 skipped: the cookie has an odd number of hex digits" in line and "(and 1 more)" in line


def _one_line_error_from(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_key_log_that_is_binary_garbage_decrypts_nothing_but_does_not_fail(tmp_path, capsys):
    keylog = tmp_path / "keys.log"
    keylog.write_bytes(bytes(range(256)) * 4)
    assert run(["ssh", "decode", PCAP, "--keylog", str(keylog)]) == 0
    captured = capsys.readouterr()
    assert "[decrypted]" not in captured.out and "no key log line" in captured.out
    _one_line_error_from(captured.err)


@pytest.mark.parametrize(
    "argv",
    [["ssh", "decode"], ["ssh", "decode", "/nonexistent.pcap"], ["ssh", "decode", PCAP, "--keylog", "/nonexistent"],
     ["ssh", "decode", "/"]],
)  # fmt: skip
def test_usage_errors_are_exit_2(argv, capsys):
    assert run(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_command_runs_as_a_module_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "handshake_lib", "ssh", "decode", PCAP, "--keylog", KEYLOG],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert result.returncode == 0 and "SSH_MSG_USERAUTH_REQUEST  [decrypted]" in result.stdout
