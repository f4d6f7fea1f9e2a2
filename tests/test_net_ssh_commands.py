"""The fixed command set ``ssh serve`` runs: each command's output beside the real coreutils' for the same line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from handshake_lib.net.ssh_commands import MAX_BYTES, start_command


def _shell(line: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", line], input=stdin, capture_output=True, timeout=5, check=False)


@pytest.mark.parametrize("line", ["echo hello", "echo 'two  spaces' \"and quotes\"", "echo", "echo a\\ b c"])
def test_echo_splits_and_prints_as_sh_does(line: str) -> None:
    run = start_command(line, user="u")
    assert (run.stdout, run.exit_status) == (_shell(line).stdout, 0)


def test_wc_and_cat_read_standard_input_as_coreutils_do() -> None:
    data = b"x" * 70_000 + b"\n"
    wc = start_command("wc -c", user="u")
    assert wc.reads_stdin and wc.stdout == b""
    assert wc.feed(data[:1000]) == b"" and wc.feed(data[1000:]) == b""
    assert wc.end() == _shell("wc -c", data).stdout.strip() + b"\n"
    cat = start_command("cat", user="u")
    assert cat.feed(data) + cat.end() == _shell("cat", data).stdout


def test_exit_whoami_ls_and_bytes(tmp_path: Path) -> None:
    assert start_command("exit 3", user="u").exit_status == _shell("exit 3").returncode == 3
    assert start_command("whoami", user="alice").stdout == b"alice\n"
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "a").mkdir()
    assert start_command("ls", user="u", root=tmp_path).stdout == _shell(f"LC_ALL=C ls -1 {tmp_path}").stdout
    run = start_command("bytes 100000", user="u")
    streamed = b"".join(run.chunks())
    assert len(streamed) == 100_000 and max(len(c) for c in run.chunks()) <= 32 * 1024
    assert start_command(f"bytes {MAX_BYTES + 1}", user="u").exit_status == 2


@pytest.mark.parametrize(
    "line",
    ["rm -rf /", "sh -c id", "bash", "/bin/echo hi", "", "echo 'unclosed", "x" * 5000],
)
def test_anything_else_is_refused_without_a_shell(line: str) -> None:
    run = start_command(line, user="u")
    assert run.exit_status in (2, 126, 127) and run.stdout == b"" and run.stderr
    if line.split()[:1] == ["rm"]:
        assert run.stderr.startswith(b"rm: command not found")


def test_echo_does_not_expand_anything() -> None:
    # sh would run id and expand $HOME; the exec string reaches echo as words, never a shell
    assert start_command("echo $(id) $HOME *", user="u").stdout == b"$(id) $HOME *\n"
