"""Our SSH session layer over sockets (net/ssh_session.py, net/ssh_server.py): commands, channels, SFTP, -L and -R.

Each feature runs against our server and against OpenSSH's sshd (the real one decides: its sftp-server, its
forwarding, its shell); the forwarding tests carry a real HTTP request through the tunnel.
"""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from handshake_lib.errors import ConnectionStateError, SFTPStatusError
from handshake_lib.net.ssh import SSHProbeServer, ssh_connect
from handshake_lib.ssh.authentication import ClientAuth, ServerAuthPolicy
from handshake_lib.ssh.authorized_keys import AuthorizedKeys
from handshake_lib.ssh.channels import ChannelData, ConnectionProtocol, WindowAdjusted
from handshake_lib.ssh.client import SSHClient
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import KnownHosts
from tests.conftest import require

HOST_KEY = HostKeyPair.generate()
USER = HostKeyPair.generate(comment="user")
FORCED = HostKeyPair.generate(comment="forced")
PAGE = b"hello through the tunnel\n"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("web")
    (folder / "index.html").write_bytes(PAGE)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("root")
    (folder / "hello.txt").write_bytes(b"hi there\n")
    (folder / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (folder.parent / "outside.txt").write_text("secret")
    return folder


@pytest.fixture(scope="module")
def ours(root: Path) -> Iterator[SSHProbeServer]:
    lines = f'{USER.public_line()}\ncommand="echo forced",restrict {FORCED.public_line()}\n'
    with SSHProbeServer(
        [HOST_KEY], auth=ServerAuthPolicy(authorized_keys=AuthorizedKeys.parse(lines)), sftp_root=root
    ) as server:
        yield server


def _connect(server: SSHProbeServer, key: HostKeyPair = USER, **options: object):  # noqa: ANN202
    known = KnownHosts.parse(f"[{server.host}]:{server.port} {HOST_KEY.public_line()}\n")
    return ssh_connect(
        server.host, server.port, user="alice", auth=ClientAuth(identities=(key,)), known_hosts=known, **options
    )


@pytest.fixture(scope="module")
def sshd() -> Iterator[object]:
    require("sshd")
    from handshake_lib.peers.openssh import openssh_server

    options = {"AllowTcpForwarding": "yes", "Subsystem": "sftp /usr/lib/openssh/sftp-server"}
    with openssh_server(authorized_keys=[USER.public_line()], extra_options=options) as server:
        yield server


def _sshd_session(sshd: object):  # noqa: ANN202
    return ssh_connect(
        sshd.host,
        sshd.port,
        user=sshd.user,
        auth=ClientAuth(identities=(USER,)),
        known_hosts=KnownHosts.parse(sshd.known_hosts),
    )


# -- commands ---------------------------------------------------------------------------------------------
def test_exec_output_status_stdin_and_refusals_on_our_server(ours: SSHProbeServer) -> None:
    with _connect(ours) as session:
        assert session.exec("echo hello world").stdout == b"hello world\n"
        counted = session.exec("wc -c", stdin=b"x" * 300_000)
        assert (counted.stdout, counted.exit_status) == (b"300000\n", 0)
        refused = session.exec("sh -c id")
        assert (refused.stdout, refused.exit_status) == (b"", 127) and b"command not found" in refused.stderr
        assert session.exec("exit 42").exit_status == 42
    served = ours.connections[-1].channels
    assert [(c.command, c.exit_status) for c in served] == [
        ("echo hello world", 0), ("wc -c", 0), ("sh -c id", 127), ("exit 42", 42)
    ]  # fmt: skip


def test_exec_many_interleaves_channels_and_keeps_outputs_apart(ours: SSHProbeServer, sshd: object) -> None:
    with _connect(ours) as session:
        results = session.exec_many(["bytes 200000", "echo two", "exit 3"])
        assert [len(r.stdout) for r in results] == [200_000, 4, 0] and results[2].exit_status == 3
        data = [e.channel for e in session.events if isinstance(e, ChannelData)]
        first_echo = data.index(results[1].channel)
        assert results[0].channel in data[first_echo:]  # the echo's output arrived in the middle of the bytes
    with _sshd_session(sshd) as session:
        a, b = session.exec_many(["echo a; sleep 0.2; echo a2", "echo b; exit 5"])
        assert (a.stdout, b.stdout, a.exit_status, b.exit_status) == (b"a\na2\n", b"b\n", 0, 5)


def test_a_forced_command_replaces_what_the_client_asked(ours: SSHProbeServer) -> None:
    with _connect(ours, FORCED) as session:
        result = session.exec("whoami")
    assert (result.stdout, result.exit_status) == (b"forced\n", 0)
    assert ours.connections[-1].channels[-1].command == "echo forced"


def test_a_slow_reader_stalls_the_server_at_our_window(ours: SSHProbeServer) -> None:
    protocol = ConnectionProtocol("client", window=65536, max_packet=16384, auto_window=False)
    known = KnownHosts.parse(f"[{ours.host}]:{ours.port} {HOST_KEY.public_line()}\n")
    client = SSHClient(
        ours.host, ours.port, user="alice", auth=ClientAuth(identities=(USER,)), known_hosts=known, channels=protocol
    )
    with ssh_connect(ours.host, ours.port, user="alice", auth=ClientAuth(), client=client) as session:
        channel = protocol.open_session()
        protocol.exec(channel, "bytes 300000")
        total = 300_000
        received = [0]

        def stalled_or_done() -> bool:
            received[0] += sum(len(e.data) for e in session._collect() if isinstance(e, ChannelData))
            return received[0] >= total or protocol.channel_info(channel)["window"] == 0

        stalls = []
        while received[0] < total:
            session.pump(stalled_or_done)
            if channel in protocol.channels and protocol.channel_info(channel)["window"] == 0:
                waiting = protocol.channel_info(channel)["unconsumed"]
                stalls.append(received[0])
                assert waiting == 65536  # exactly the window we granted, nothing beyond it
                protocol.consume(channel, waiting)
        assert received[0] == total
        assert stalls == [65536 * k for k in range(1, len(stalls) + 1)] and len(stalls) >= 4
        assert not any(isinstance(e, WindowAdjusted) for e in session.events)  # only we adjust: the server sends


# -- SFTP -------------------------------------------------------------------------------------------------
def test_sftp_over_a_channel_to_our_server_stays_in_its_root(ours: SSHProbeServer, root: Path) -> None:
    with _connect(ours) as session, session.sftp() as sftp:
        assert sorted(n.filename for n in sftp.listdir("/")) == [".", "..", "big.bin", "hello.txt"]
        assert sftp.read_file("/big.bin") == (root / "big.bin").read_bytes()
        sftp.write_file("/upload.bin", b"u" * 100_000)
        assert (root / "upload.bin").read_bytes() == b"u" * 100_000
        for escape in ("/../outside.txt", "../outside.txt"):
            with pytest.raises(SFTPStatusError):
                sftp.read_file(escape)
    assert ours.connections[-1].channels[-1].subsystem == "sftp"


def test_sftp_over_a_channel_to_sshd(sshd: object, root: Path) -> None:
    with _sshd_session(sshd) as session, session.sftp() as sftp:
        assert sftp.read_file(str(root / "big.bin")) == (root / "big.bin").read_bytes()
        assert "hello.txt" in {n.filename for n in sftp.listdir(str(root))}


# -- forwarding -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("server", ["ours", "sshd"])
def test_local_and_remote_forwarding_carry_http(server: str, web: int, request: pytest.FixtureRequest) -> None:
    peer = request.getfixturevalue(server)
    with _connect(peer) if server == "ours" else _sshd_session(peer) as session:
        with session.forward_local("127.0.0.1", web) as port:
            for _ in range(2):  # a second connection reuses the first one's channel number
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read() == PAGE
        with session.forward_remote("127.0.0.1", web) as port:
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read() == PAGE
        assert session.exec("echo still here").stdout == b"still here\n"
    if server == "ours":
        kinds = [c.kind for c in peer.connections[-1].channels]
        assert kinds == ["direct-tcpip", "direct-tcpip", "forwarded-tcpip", "session"]


def test_restrict_forbids_forwarding_as_sshd_does(ours: SSHProbeServer, web: int) -> None:
    with _connect(ours, FORCED) as session:
        with pytest.raises(ConnectionStateError, match="refused"), session.forward_remote("127.0.0.1", web):
            pass
        with session.forward_local("127.0.0.1", web) as port, pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read()
    assert ours.connections[-1].channels[-1].refused.startswith("port forwarding is not allowed")
