"""Abuse against our running SSH server: each misbehaving client gets the right answer, and the server goes on.

Each test runs one misbehaving client against :class:`~handshake_lib.net.ssh.SSHProbeServer`, checks the
answer on the wire and the typed error the server recorded (``ServedConnection.error``), then logs a
normal client in and runs ``echo`` (the server still serves).  The misbehaving clients are built from our
own client core, :class:`~handshake_lib.ssh.client.SSHClient`, with one check bypassed each:

* a channel flood: our client's ``ConnectionProtocol(max_channels=200)`` (its own limit raised) opens 100
  session channels at once;
* a window overflow and data on a closed channel: a CHANNEL_DATA message handed straight to the core's
  transport (``SSHClient._send_service_message``), past our own channel layer's window and state checks;
* an oversized SFTP request: raw bytes on an ``sftp`` channel, a 4-byte length of 300 KiB (past
  OpenSSH's 256 KiB SFTP_MAX_MSG_LENGTH) that our SFTP encoder would refuse to write; sftp-server gets
  the same bytes for comparison;
* an idle client: logs in normally, then sends nothing;
* wrong passwords past the limit: our client's authenticator replaced so that, refused, it asks again
  with another wrong password (ours tries each credential once).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest

from handshake_lib.errors import (
    ChannelError,
    ConnectionTimeout,
    PeerDisconnect,
    SSHDisconnect,
    TooManyAuthenticationAttempts,
    UnexpectedEOF,
    WindowExceeded,
)
from handshake_lib.net.ssh import SSHProbeServer, ssh_connect
from handshake_lib.ssh.authentication import ClientAuth, ServerAuthPolicy
from handshake_lib.ssh.channel_messages import ChannelData, ChannelOpenFailureReason
from handshake_lib.ssh.channels import ChannelClosed, ChannelOpened, ChannelOpenRefused, ConnectionProtocol, ExitStatus
from handshake_lib.ssh.client import SSHClient
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import KnownHosts
from handshake_lib.ssh.messages import UserauthRequest
from handshake_lib.ssh.sftp import MAX_PACKET_LENGTH
from handshake_lib.ssh.userauth import PasswordFields

HOST_KEY = HostKeyPair.generate("ssh-ed25519")
USER, PASSWORD = "alice", "s3cret"
WINDOW = 8192  # our server's channel window in these tests: small, so a flood overflows it at once


def _policy(**overrides: object) -> ServerAuthPolicy:
    return ServerAuthPolicy(passwords={USER: PASSWORD}, **overrides)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHProbeServer]:
    root = tmp_path_factory.mktemp("sftp-root")
    (root / "hello.txt").write_bytes(b"hello\n")
    with SSHProbeServer([HOST_KEY], auth=_policy(), sftp_root=root, channel_window=WINDOW, timeout=10) as running:
        yield running


def _known(server: SSHProbeServer) -> KnownHosts:
    return KnownHosts.parse(f"[{server.host}]:{server.port} {HOST_KEY.public_line()}\n")


def _connect(server: SSHProbeServer, *, client: SSHClient | None = None, password: str = PASSWORD) -> object:
    return ssh_connect(
        server.host, server.port, user=USER, auth=ClientAuth(password=password), known_hosts=_known(server),
        timeout=5, client=client,
    )  # fmt: skip


def _served(server: SSHProbeServer, index: int) -> object:
    deadline = time.monotonic() + 10
    while len(server.connections) <= index and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.connections[index]


def _ended(served: object) -> object:
    """The connection's record once its thread is done."""
    deadline = time.monotonic() + 10
    while not served.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served.finished
    return served


def _still_serves(server: SSHProbeServer) -> None:
    with _connect(server) as session:
        result = session.exec("echo still serving")
    assert (result.stdout, result.exit_status) == (b"still serving\n", 0)


def _raw_data(session: object, channel: int, data: bytes) -> None:
    """CHANNEL_DATA straight into the transport: our channel layer's window and state checks bypassed."""
    peer = session.channels.channel_info(channel)["peer_channel"]
    session.client._send_service_message(ChannelData(peer, data))
    session.driver.flush()


def _open(session: object) -> int:
    channel = session.channels.open_session()
    session.pump(lambda: any(isinstance(e, ChannelOpened) and e.channel == channel for e in session._collect()))
    return channel


# -- a channel flood ----------------------------------------------------------------------------------------
def test_a_hundred_channel_opens_past_64_are_refused_with_resource_shortage_and_the_connection_lives(server):
    before = len(server.connections)
    flooder = SSHClient(
        server.host, server.port, user=USER, auth=ClientAuth(password=PASSWORD), known_hosts=_known(server),
        channels=ConnectionProtocol("client", max_channels=200),
    )  # fmt: skip
    with _connect(server, client=flooder) as session:
        numbers = [session.channels.open_session() for _ in range(100)]
        answers: dict[int, object] = {}

        def all_answered() -> bool:
            for event in session._collect():
                if isinstance(event, ChannelOpened | ChannelOpenRefused):
                    answers[event.channel] = event
            return len(answers) == len(numbers)

        session.pump(all_answered)
        opened = [n for n in numbers if isinstance(answers[n], ChannelOpened)]
        refused = [answers[n] for n in numbers if isinstance(answers[n], ChannelOpenRefused)]
        assert (len(opened), len(refused)) == (64, 36)  # our server's DEFAULT_MAX_CHANNELS
        assert {r.reason for r in refused} == {ChannelOpenFailureReason.RESOURCE_SHORTAGE}
        assert refused[0].description == "64 channels open already"
        # the connection lives: one channel closed, and a command runs on a new one
        session.channels.close(opened[0])
        session.pump(lambda: any(isinstance(e, ChannelClosed) for e in session._collect()))
        result = session.exec("echo alive")
        assert (result.stdout, result.exit_status) == (b"alive\n", 0)
    served = _ended(_served(server, before))
    assert served.error is None and sum(c.kind == "session" for c in served.channels) == 65
    _still_serves(server)


# -- a window overflow -------------------------------------------------------------------------------------------
def test_data_past_our_window_is_a_protocol_error_disconnect_and_a_typed_error(server):
    before = len(server.connections)
    with _connect(server) as session:
        channel = _open(session)
        assert session.channels.channel_info(channel)["peer_window"] == WINDOW
        _raw_data(session, channel, b"x" * (WINDOW + 1))  # one byte past it (within the 32 KiB maximum packet)
        with pytest.raises(PeerDisconnect) as raised:
            session.pump(lambda: False)
    assert raised.value.reason == SSHDisconnect.PROTOCOL_ERROR
    assert "window left is" in raised.value.description
    served = _ended(_served(server, before))
    assert isinstance(served.error, WindowExceeded)
    assert str(served.error) == f"channel 0: {WINDOW + 1} bytes of data, but the window left is {WINDOW}"
    _still_serves(server)


# -- data on a closed channel ---------------------------------------------------------------------------------
def test_data_on_a_closed_channel_is_a_protocol_error_disconnect(server):
    before = len(server.connections)
    with _connect(server) as session:
        result = session.exec("echo once")
        assert result.exit_status == 0
        peer = result.channel  # our server numbers its channels as we do here: the same number, now free
        session.client._send_service_message(ChannelData(peer, b"too late"))
        session.driver.flush()
        with pytest.raises(PeerDisconnect) as raised:
            session.pump(lambda: False)
    assert raised.value.reason == SSHDisconnect.PROTOCOL_ERROR
    served = _ended(_served(server, before))
    assert type(served.error) is ChannelError and "which is not open" in str(served.error)
    _still_serves(server)


# -- an oversized SFTP request ----------------------------------------------------------------------------------
OVERSIZED = struct.pack(">I", 300 * 1024) + bytes([17]) + b"\0" * 64  # a 300 KiB REALPATH, its start only


def test_an_oversized_sftp_request_ends_the_sftp_channel_like_sftp_server_and_the_connection_lives(server):
    assert MAX_PACKET_LENGTH < 300 * 1024
    before = len(server.connections)
    with _connect(server) as session:
        sftp = session.sftp()
        assert sftp.listdir(".")  # a working SFTP session first
        session.channels.send_data(sftp.channel, OVERSIZED)  # raw bytes: our SFTP encoder would refuse this
        status: list[int] = []

        def closed() -> bool:
            for event in session._collect():
                if isinstance(event, ExitStatus) and event.channel == sftp.channel:
                    status.append(event.status)
                if isinstance(event, ChannelClosed) and event.channel == sftp.channel:
                    return True
            return False

        session.pump(closed)
        assert status == [11]  # the subsystem ended with sftp-server's own exit status for "bad message"
        result = session.exec("echo alive")  # the SSH connection goes on
        assert result.stdout == b"alive\n"
    served = _ended(_served(server, before))
    assert served.error is None
    assert [c.subsystem for c in served.channels if c.kind == "session"][0] == "sftp"
    _still_serves(server)


def test_sftp_server_ends_its_channel_on_the_same_oversized_request() -> None:
    """The comparison: OpenSSH's sftp-server (under sshd) exits on the same bytes; sshd keeps the connection."""
    from tests.conftest import require

    require("sshd")
    from handshake_lib.peers.openssh import openssh_server

    key = HostKeyPair.generate("ssh-ed25519")
    options = {"Subsystem": "sftp /usr/lib/openssh/sftp-server", "AuthenticationMethods": "publickey"}
    with openssh_server(authorized_keys=[key.public_line()], extra_options=options) as sshd, ssh_connect(
        sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(identities=(key,)),
        known_hosts=KnownHosts.parse(sshd.known_hosts), timeout=5,
    ) as session:  # fmt: skip
        sftp = session.sftp()
        session.channels.send_data(sftp.channel, OVERSIZED)
        seen: list[object] = []

        def closed() -> bool:
            seen.extend(e for e in session._collect() if getattr(e, "channel", None) == sftp.channel)
            return any(isinstance(e, ChannelClosed) for e in seen)

        session.pump(closed)
        statuses = [e.status for e in seen if isinstance(e, ExitStatus)]
        assert statuses == [11]  # sftp-server: error("bad message ..."); sftp_server_cleanup_exit(11)
        assert session.exec("echo alive").stdout == b"alive\n"  # sshd keeps the connection


# -- an idle client -------------------------------------------------------------------------------------------
def test_a_client_that_logs_in_and_then_sends_nothing_is_dropped_and_the_server_goes_on(tmp_path):
    with SSHProbeServer([HOST_KEY], auth=_policy(), timeout=0.5) as idle_server:
        with _connect(idle_server) as session:
            assert session.client.authenticated
            with pytest.raises((UnexpectedEOF, PeerDisconnect)):
                session.pump(lambda: False, timeout=5)  # we wait longer than the server does
        served = _ended(_served(idle_server, 0))
        assert served.user is not None and served.user.user == USER
        assert isinstance(served.error, ConnectionTimeout)
        _still_serves(idle_server)


# -- wrong passwords past the limit --------------------------------------------------------------------------
def test_wrong_passwords_past_max_failures_are_cut_off_with_a_typed_error(server):
    with SSHProbeServer([HOST_KEY], auth=_policy(max_failures=3)) as strict:
        guesser = SSHClient(
            strict.host, strict.port, user=USER, auth=ClientAuth(password="guess 0"), known_hosts=_known(strict)
        )
        guesses = iter(range(1, 100))

        def guess_again(methods: object, partial: bool, sig_algs: object) -> UserauthRequest:
            return UserauthRequest(
                USER, "ssh-connection", "password", PasswordFields(False, f"guess {next(guesses)}").encode()
            )

        guesser.authenticator.after_failure = guess_again  # ours would give up after one refusal
        with pytest.raises(PeerDisconnect) as raised:
            _connect(strict, client=guesser)
        assert raised.value.reason == SSHDisconnect.NO_MORE_AUTH_METHODS_AVAILABLE
        served = _ended(_served(strict, 0))
        assert isinstance(served.error, TooManyAuthenticationAttempts)
        # three refusals judged and recorded; the fourth guess ended the connection before any verdict
        assert [v.method for v in served.verdicts] == ["none", "password", "password", "password"]
        assert str(served.error).startswith("more than 3 failed authentication attempts")
        _still_serves(strict)


def test_a_busy_session_outlives_the_idle_timeout() -> None:
    """``timeout`` is an idle timeout, not a cap on the session (LoopbackServer's whole-connection bound was
    ``timeout`` too, so every session to our server ended after it, busy or not, with no error recorded)."""
    with SSHProbeServer([HOST_KEY], auth=_policy(), timeout=2.0) as busy_server:
        with _connect(busy_server) as session:
            started = time.monotonic()
            runs = 0
            while time.monotonic() - started < 3.0:  # longer than the timeout, never idle for long
                assert session.exec(f"echo {runs}").stdout == f"{runs}\n".encode()
                runs += 1
        served = _ended(_served(busy_server, 0))
        assert served.error is None and len(served.channels) == runs
