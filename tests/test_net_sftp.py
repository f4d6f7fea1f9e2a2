"""SFTP against OpenSSH, both ways round, and the confined root.

* Our :class:`SFTPClient` (through ``net.sftp_stdio.SFTPPipeClient``) against OpenSSH's
  ``/usr/lib/openssh/sftp-server`` over pipes, and the same calls against our server
  (``python -m handshake_lib.net.sftp_stdio ROOT``): each test asks both and expects the same answer,
  so where ours agrees with OpenSSH's server is checked, not assumed.  Each server runs once per module.
* OpenSSH's ``sftp -D`` against our server, with a batch file: ls, get, put, mkdir (the same batch run
  against ``sftp-server`` in a copy of the tree prints the same listing and moves the same bytes), and
  the escape attempts (``get ../outside``, ``get /etc/passwd``, ``cd ..``, links planted inside the root
  pointing out, a symlinked parent directory): refused, each with what ``sftp`` printed, and nothing
  outside the root read or written.
* Oversized and malformed packets: typed errors and the exit statuses of ``sftp-server``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_environment, require

from handshake_lib.errors import SFTPStatusError
from handshake_lib.net.sftp_root import ConfinedRoot
from handshake_lib.net.sftp_stdio import SFTPPipeClient
from handshake_lib.ssh.sftp import (
    MAX_PACKET_LENGTH,
    Attributes,
    Init,
    OpenFlags,
    Realpath,
    Status,
    StatusCode,
    UnknownPacket,
    Version,
    decode_packet,
)

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
CONTENT = random.Random(11).randbytes(1024 * 1024)  # 1 MiB, the same every run
OUR_SERVER = [sys.executable, "-m", "handshake_lib.net.sftp_stdio"]
TIMEOUT = 20.0  # a deadline against hangs, never a measurement


def build_tree(base: Path, name: str) -> Path:
    """``base/name`` (the root) beside ``base/outside`` and ``base/outside_dir``, with links leading out."""
    (base / "outside").write_bytes(b"secret outside the root\n")
    (base / "outside_dir").mkdir(exist_ok=True)
    (base / "outside_dir" / "secret.txt").write_bytes(b"secret too\n")
    root = base / name
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_bytes(b"hello\n")
    (root / "big.bin").write_bytes(CONTENT)
    os.symlink("../outside", root / "link_out")  # a relative link inside the root, pointing out
    os.symlink("/etc", root / "etc_link")  # an absolute one
    os.symlink("../outside_dir", root / "linked_dir")  # a symlinked directory
    os.symlink("../outside", root / "sub" / "deep_link")
    return root


def sftp_server() -> str:
    return require(SFTP_SERVER, "OpenSSH's sftp-server (Debian's openssh-sftp-server)")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        name: build_tree(tmp_path_factory.mktemp(f"sftp_{name}"), "root")
        for name in ("openssh", "ours", "batch_ours", "batch_openssh")
    }


@pytest.fixture(scope="module")
def peers(roots: dict[str, Path]) -> Iterator[dict[str, SFTPPipeClient]]:
    """OpenSSH's sftp-server (started in its root: relative paths resolve there) and ours, once each."""
    openssh = SFTPPipeClient([sftp_server()], cwd=roots["openssh"], timeout=TIMEOUT)
    ours = SFTPPipeClient([*OUR_SERVER, str(roots["ours"])], env=cli_environment(), timeout=TIMEOUT)
    yield {"openssh": openssh, "ours": ours}
    assert openssh.close() == 0 and ours.close() == 0  # both exit 0 at end of input


BOTH = pytest.mark.parametrize("peer", ["openssh", "ours"])


def status_of(call: object, *args: object) -> int:
    with pytest.raises(SFTPStatusError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code


# -- our client against OpenSSH's server, and the same against ours -------------------------------------
@BOTH
def test_version_and_listing(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    client = peers[peer]
    assert client.version == 3
    names = {entry.filename: entry for entry in client.listdir(".")}
    assert set(names) == {".", "..", "sub", "big.bin", "link_out", "etc_link", "linked_dir"}
    assert names["big.bin"].attrs.size == len(CONTENT) and names["big.bin"].attrs.is_regular
    assert names["link_out"].attrs.is_symlink  # READDIR's attributes are lstat's, on both
    assert names["sub"].longname.startswith("d") and names["sub"].longname.endswith(" sub")


@BOTH
def test_stat_and_lstat(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    client = peers[peer]
    assert client.stat("big.bin").size == len(CONTENT)
    assert client.stat("sub").is_dir
    assert client.lstat("link_out").is_symlink
    assert status_of(client.stat, "no_such_file") == StatusCode.NO_SUCH_FILE


@BOTH
def test_read_one_mebibyte_byte_exact(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    assert peers[peer].read_file("big.bin") == CONTENT  # 32 READs of 32 KiB pipelined through the window


@BOTH
def test_read_past_the_end_is_eof(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    client = peers[peer]
    handle = client.open("sub/a.txt")
    try:
        assert client.read_data(handle, 0, 100) == b"hello\n"  # a short read, legal
        assert client.read_data(handle, 6, 100) == b""  # STATUS EOF
    finally:
        client.close_handle(handle)


@BOTH
def test_write_mkdir_rename_remove(peers: dict[str, SFTPPipeClient], peer: str, roots: dict[str, Path]) -> None:
    client, root = peers[peer], roots[peer]
    data = CONTENT[: 300 * 1000]
    client.write_file("written.bin", data)
    assert (root / "written.bin").read_bytes() == data
    client.mkdir("made")
    assert (root / "made").is_dir()
    client.rename("written.bin", "made/moved.bin")
    assert (root / "made" / "moved.bin").read_bytes() == data and not (root / "written.bin").exists()
    client.write_file("other.bin", b"x")
    # draft-02: RENAME onto an existing name fails; sftp-server says FAILURE, so do we.
    assert status_of(client.rename, "other.bin", "made/moved.bin") == StatusCode.FAILURE
    assert status_of(client.rmdir, "made") == StatusCode.FAILURE  # not empty
    client.remove("made/moved.bin")
    client.remove("other.bin")
    client.rmdir("made")
    assert not (root / "made").exists()
    assert status_of(client.remove, "made") == StatusCode.NO_SUCH_FILE


@BOTH
def test_setstat_and_fstat(peers: dict[str, SFTPPipeClient], peer: str, roots: dict[str, Path]) -> None:
    client, root = peers[peer], roots[peer]
    client.write_file("attrs.txt", b"0123456789")
    client._ok(client.client.setstat("attrs.txt", Attributes(permissions=0o600, atime=1_000_000, mtime=2_000_000)))
    st = (root / "attrs.txt").stat()
    assert st.st_mode & 0o777 == 0o600 and int(st.st_mtime) == 2_000_000
    client._ok(client.client.setstat("attrs.txt", Attributes(size=4)))
    handle = client.open("attrs.txt")
    try:
        answer = client._ok(client.client.fstat(handle))
        assert answer.attrs.size == 4 and answer.attrs.mtime is not None  # type: ignore[attr-defined]
    finally:
        client.close_handle(handle)
    client.remove("attrs.txt")


@BOTH
def test_open_flags(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    client = peers[peer]
    exclusive = OpenFlags.WRITE | OpenFlags.CREAT | OpenFlags.EXCL
    assert status_of(client.open, "big.bin", exclusive, Attributes()) == StatusCode.FAILURE  # EEXIST
    assert status_of(client.open, "no_such_file") == StatusCode.NO_SUCH_FILE


@BOTH
def test_unknown_extended_request_is_op_unsupported(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    client = peers[peer]
    body = len(b"nope@x.org").to_bytes(4, "big") + b"nope@x.org"  # SSH_FXP_EXTENDED "nope@x.org"
    answer = client.request(client.client.send_request(lambda i: UnknownPacket(i, 200, body)))
    assert isinstance(answer, Status) and answer.code == StatusCode.OP_UNSUPPORTED


@BOTH
def test_unknown_packet_type(peers: dict[str, SFTPPipeClient], peer: str) -> None:
    """OpenSSH 9.2 logs "Unknown message 99" and never answers; ours answers OP_UNSUPPORTED (draft-02).

    sftp-server also handles one request per pass of its select loop (one read of at most 16 KiB), and a
    pass that produced nothing leaves it waiting for input: a request that came in the same read as the
    unknown one is answered only once more bytes arrive.  So a 200 kB WRITE to a handle that does not
    exist follows (FAILURE from both): its bytes take several reads, each a pass, whatever the timing.
    """
    client = peers[peer]
    unknown = client.client.send_request(lambda i: UnknownPacket(i, 99, b"xyz"))
    second = client.client.send_request(lambda i: Realpath(i, "."))
    third = client.client.write(b"no such handle", 0, bytes(200_000))
    answer = client.request(third)
    assert isinstance(answer, Status) and answer.code == StatusCode.FAILURE
    assert client.answered(second)  # answered in order, before the third
    if peer == "openssh":
        assert not client.answered(unknown)
        client.client.abandon(unknown)  # or it would hold a slot for ever
    else:
        answer = client.request(unknown)
        assert isinstance(answer, Status) and answer.code == StatusCode.OP_UNSUPPORTED


# -- broken peers: both servers end the session the same way ----------------------------------------------
def start(peer: str, root: Path) -> SFTPPipeClient:
    if peer == "openssh":
        return SFTPPipeClient([sftp_server()], cwd=root, timeout=TIMEOUT)
    return SFTPPipeClient([*OUR_SERVER, str(root)], env=cli_environment(), timeout=TIMEOUT)


@BOTH
def test_oversized_packet_exits_11(peer: str, roots: dict[str, Path]) -> None:
    """A length over 256 KiB: sftp-server calls sftp_server_cleanup_exit(11) without answering; so do we."""
    client = start(peer, roots[peer])
    try:
        client.send_raw((MAX_PACKET_LENGTH + 1).to_bytes(4, "big") + b"\x05")
        assert client.wait() == 11
    finally:
        client.close()


@BOTH
def test_truncated_request_is_fatal(peer: str, roots: dict[str, Path]) -> None:
    """A STAT whose path string claims more bytes than the packet holds: fatal (exit 255) in both."""
    client = start(peer, roots[peer])
    try:
        payload = bytes([17]) + (1).to_bytes(4, "big") + (100).to_bytes(4, "big") + b"ab"
        client.send_raw(len(payload).to_bytes(4, "big") + payload)
        assert client.wait() == 255
    finally:
        client.close()


@BOTH
def test_first_packet_must_be_init_and_a_second_init_is_answered(peer: str, roots: dict[str, Path]) -> None:
    argv = [sftp_server()] if peer == "openssh" else [*OUR_SERVER, str(roots[peer])]
    env = None if peer == "openssh" else cli_environment()
    stat = bytes([17]) + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"."
    before = subprocess.run(
        argv, input=len(stat).to_bytes(4, "big") + stat, capture_output=True, timeout=TIMEOUT, cwd=roots[peer], env=env
    )
    assert before.returncode == 255 and before.stdout == b""
    # Two INITs, read one answer at a time (sftp-server stops at EOF before writing what it queued).
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=roots[peer], env=env)
    assert process.stdin is not None and process.stdout is not None
    try:
        for _ in range(2):
            process.stdin.write(Init(3).to_bytes())
            process.stdin.flush()
            length = int.from_bytes(process.stdout.read(4), "big")
            answer = decode_packet(process.stdout.read(length))
            assert isinstance(answer, Version) and answer.version == 3
    finally:
        process.stdin.close()
        assert process.wait(TIMEOUT) == 0


# -- the confined root, through our server ---------------------------------------------------------------
def test_escapes_are_refused_through_our_server(peers: dict[str, SFTPPipeClient], roots: dict[str, Path]) -> None:
    client, root = peers["ours"], roots["ours"]
    outside = root.parent / "outside"
    assert client.realpath(".") == "/" and client.realpath("sub/../big.bin") == "/big.bin"
    denied = StatusCode.PERMISSION_DENIED
    assert status_of(client.realpath, "..") == denied
    assert status_of(client.stat, "../outside") == denied
    assert status_of(client.stat, "/../outside") == denied
    assert status_of(client.stat, "/etc/passwd") == StatusCode.NO_SUCH_FILE  # "/" is the root: no etc there
    assert status_of(client.read_file, "link_out") == denied  # a link planted inside, pointing out
    assert status_of(client.read_file, "sub/deep_link") == denied
    assert status_of(client.read_file, "etc_link/passwd") == denied  # a symlinked parent directory
    assert status_of(client.listdir, "linked_dir") == denied
    assert status_of(client.stat, "link_out") == denied  # STAT would follow the link: refused
    assert client.lstat("link_out").is_symlink  # LSTAT describes the link itself, inside the root
    assert status_of(client.write_file, "link_out", b"overwrite") == denied
    assert status_of(client.write_file, "linked_dir/new.txt", b"planted") == denied
    assert status_of(client.write_file, "../escaped", b"x") == denied
    assert status_of(client.rename, "big.bin", "../stolen") == denied
    assert status_of(client.mkdir, "linked_dir/d") == denied
    assert outside.read_bytes() == b"secret outside the root\n"
    assert sorted(p.name for p in (root.parent / "outside_dir").iterdir()) == ["secret.txt"]
    assert not (root.parent / "escaped").exists() and not (root.parent / "stolen").exists()


def test_confined_root_directly(tmp_path: Path) -> None:
    root = build_tree(tmp_path, "root")
    fs = ConfinedRoot(root)
    assert ConfinedRoot.parts("/a/./b//../c") == ("a", "c")
    os.mkfifo(root / "fifo")  # opening a FIFO would block the server: refused, without blocking
    with pytest.raises(SFTPStatusError) as caught:
        fs.open("fifo", OpenFlags.READ, Attributes())
    assert caught.value.code == StatusCode.FAILURE
    with pytest.raises(SFTPStatusError):
        fs.open("sub\x00x", OpenFlags.READ, Attributes())
    fs.remove("link_out")  # removing a link removes the link, not its target
    assert (tmp_path / "outside").exists() and not (root / "link_out").is_symlink()
    with pytest.raises(NotADirectoryError):
        ConfinedRoot(root / "big.bin")


# -- OpenSSH's sftp client against our server ----------------------------------------------------------
COMMON_BATCH = """\
ls -1
get big.bin got_big.bin
put upload.bin uploaded.bin
mkdir made
ls -1
"""
ESCAPE_BATCH = """\
-get ../outside got1
-get /etc/passwd got2
-get link_out got3
-get etc_link/passwd got4
-get linked_dir/secret.txt got5
-cd ..
pwd
-cd linked_dir
pwd
-put upload.bin ../escaped
-put upload.bin link_out
-rename big.bin ../stolen
"""


def run_sftp(server: str, batch: str, local: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    batch_file = local / "batch"
    batch_file.write_text(batch)
    return subprocess.run(
        [require("sftp", "OpenSSH's sftp client"), "-D", server, "-b", str(batch_file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        env=cli_environment(),
    )


@pytest.fixture(scope="module")
def sftp_runs(roots: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One ``sftp -D`` run against our server (common batch, then the escapes), one against sftp-server."""
    runs: dict[str, object] = {}
    for name in ("batch_ours", "batch_openssh"):
        local = tmp_path_factory.mktemp(f"local_{name}")
        (local / "upload.bin").write_bytes(CONTENT[:100_000])
        if name == "batch_ours":
            server = " ".join([*OUR_SERVER, str(roots[name])])
            batch = COMMON_BATCH + ESCAPE_BATCH
        else:
            server = sftp_server()  # started by sftp in its cwd: the root's copy
            batch = COMMON_BATCH
        # sftp starts the server in its own cwd (the root, for sftp-server); lcd sends what it gets elsewhere.
        batch = f"lcd {local}\n" + batch
        runs[name] = (run_sftp(server, batch, local, roots[name]), local)
    return runs


def test_sftp_client_agrees_on_listing_get_put_mkdir(sftp_runs: dict[str, object], roots: dict[str, Path]) -> None:
    outputs = {}
    for name in ("batch_ours", "batch_openssh"):
        result, local = sftp_runs[name]  # type: ignore[misc]
        assert result.returncode == 0, result.stderr
        assert (local / "got_big.bin").read_bytes() == CONTENT
        assert (roots[name] / "uploaded.bin").read_bytes() == CONTENT[:100_000]
        assert (roots[name] / "made").is_dir()
        # The common part, after the lcd line (whose local path differs between the runs).
        outputs[name] = result.stdout.split("sftp> -get ../outside")[0].split("\n", 1)[1]
    assert outputs["batch_ours"] == outputs["batch_openssh"]  # the same listings, line for line
    assert "sftp> ls -1\nbig.bin\netc_link\nlink_out\nlinked_dir\nsub\n" in outputs["batch_ours"]


def test_sftp_client_escapes_refused(sftp_runs: dict[str, object], roots: dict[str, Path]) -> None:
    result, local = sftp_runs["batch_ours"]  # type: ignore[misc]
    root = roots["batch_ours"]
    assert result.returncode == 0  # every refusal was a "-" command: the batch went on
    errors = result.stderr.splitlines()
    # What sftp prints for each refusal (OpenSSH 9.2's wording around our status).
    assert 'File "/../outside" not found.' in errors
    assert 'File "/etc/passwd" not found.' in errors
    assert "stat remote: Permission denied" in errors  # get link_out, cd linked_dir
    assert 'File "/etc_link/passwd" not found.' in errors
    assert 'File "/linked_dir/secret.txt" not found.' in errors
    assert "realpath /..: '/..' climbs above the root" in errors
    assert 'dest open "/../escaped": Permission denied' in errors
    assert 'dest open "/link_out": Permission denied' in errors
    assert 'remote rename "/big.bin" to "/../stolen": Permission denied' in errors
    assert result.stdout.count("Remote working directory: /\n") == 2  # cd .. and cd linked_dir went nowhere
    assert not list(local.glob("got[0-9]"))  # nothing left the root
    assert (root.parent / "outside").read_bytes() == b"secret outside the root\n"
    assert not (root.parent / "escaped").exists() and not (root.parent / "stolen").exists()
    assert os.readlink(root / "link_out") == "../outside"


def test_our_server_module_refuses_a_bad_root(tmp_path: Path) -> None:
    result = subprocess.run(
        [*OUR_SERVER, str(tmp_path / "missing")], capture_output=True, text=True, env=cli_environment(), timeout=TIMEOUT
    )
    assert result.returncode == 2 and "usage" in result.stderr
