"""ConnectionProtocol (client role) against a real asyncssh server, over our own SSH transport.

asyncssh's server asks for no authentication here (``begin_auth`` returns False), so our SSHClient's
``none`` request succeeds and the connection protocol starts: packets 80-100 go to the ConnectionProtocol
given to SSHClient, and what it queues goes out through the connection's encrypted path.  Everything is
real: asyncssh's channel code enforces its windows (a packet over its window or maximum packet size ends
the connection) and our core enforces ours (WindowExceeded), so a transfer that completes proves both
sides kept to the other's flow control.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import require_module

from handshake_lib.net import SocketDriver
from handshake_lib.ssh.channels import (
    ChannelClosed,
    ChannelData,
    ChannelOpened,
    ChannelRequestAnswered,
    ConnectionProtocol,
    ExitStatus,
    GlobalRequestAnswered,
    WindowAdjusted,
)
from handshake_lib.ssh.client import AuthenticationSucceeded, SSHClient
from handshake_lib.ssh.known_hosts import HostKeyPolicy

DEADLINE = 20.0
MiB = 1024 * 1024


class AsyncsshServer:
    """One asyncssh server in a daemon thread's event loop; ``options`` go to create_server."""

    def __init__(self, **options: Any) -> None:
        asyncssh = require_module("asyncssh", "the real SSH server these tests talk to")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.commands: list[str] = []

        class NoAuthentication(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return False  # no authentication needed: the none request succeeds

        async def handle(process: Any) -> None:
            command = process.command or ""
            self.commands.append(command)
            if command.startswith("produce "):
                process.stdout.write(bytes(range(256)) * (int(command.split()[1]) // 256))
            elif command == "cat":
                data = await process.stdin.read()
                process.stdout.write(data)
            else:
                process.stdout.write(f"ran {command}\n".encode())
                process.stderr.write(b"to stderr\n")
            process.exit(3)

        async def start() -> Any:
            key = asyncssh.generate_private_key("ssh-ed25519")
            return await asyncssh.create_server(
                NoAuthentication, "127.0.0.1", 0, server_host_keys=[key], process_factory=handle, encoding=None,
                **options,
            )  # fmt: skip

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(DEADLINE)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(DEADLINE)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)


@pytest.fixture(scope="module")
def asyncssh_server() -> Iterator[AsyncsshServer]:
    # a small window and packet size on asyncssh's side, so our sending side must split and stall
    server = AsyncsshServer(window=65536, max_pktsize=8192)
    yield server
    server.close()


class Session:
    """Our SSHClient, authenticated, running the ConnectionProtocol it was given."""

    def __init__(self, port: int, protocol: ConnectionProtocol) -> None:
        self.protocol = protocol
        self.client = SSHClient(
            "127.0.0.1", port, user="alice", host_key_policy=HostKeyPolicy.ACCEPT_NEW, channels=protocol
        )
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.driver = SocketDriver(self.client, self.sock)
        self.deadline = time.monotonic() + DEADLINE
        self.client.start()
        self.events: list[object] = []
        self.until(lambda e: isinstance(e, AuthenticationSucceeded))
        assert self.client.channels is self.protocol  # authenticated: the connection protocol runs

    def until(self, done: Any) -> list[object]:
        """Carry bytes until an event satisfies ``done``; the events since the last call."""
        start = len(self.events)
        while not any(done(e) for e in self.events[start:]):
            self.events += self.driver.receive(self.deadline)
            assert not self.driver.peer_closed, "asyncssh closed the connection"
        return self.events[start:]

    def close(self) -> None:
        self.client.disconnect()
        self.driver.flush_quietly()
        self.sock.close()


def _data(events: list[object], channel: int, stderr: bool = False) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, ChannelData) and e.channel == channel and e.stderr == stderr
    )


def test_exec_with_output_stderr_exit_status_and_close(asyncssh_server: AsyncsshServer) -> None:
    session = Session(asyncssh_server.port, ConnectionProtocol("client"))
    try:
        channel = session.protocol.open_session()
        session.protocol.exec(channel, "hello world")
        events = session.until(lambda e: isinstance(e, ChannelClosed))
        ours = [e for e in events if type(e).__module__ == "handshake_lib.ssh.channels"]
        kinds = [type(e) for e in ours if not isinstance(e, ChannelData | WindowAdjusted)]
        # asyncssh sends exit-status then CLOSE, without an EOF (RFC 4254 5.3 does not require one)
        assert kinds == [ChannelOpened, ChannelRequestAnswered, ExitStatus, ChannelClosed]
        assert ChannelRequestAnswered(channel, "exec", True) in events
        assert _data(events, channel) == b"ran hello world\n" and _data(events, channel, True) == b"to stderr\n"
        assert ExitStatus(channel, 3) in events
        assert session.protocol.channels == {}  # asyncssh's CLOSE answered, the number free
        session.protocol.global_request("keepalive@openssh.com")
        answers = session.until(lambda e: isinstance(e, GlobalRequestAnswered))
        assert [e for e in answers if isinstance(e, GlobalRequestAnswered)] == [
            GlobalRequestAnswered("keepalive@openssh.com", True)  # asyncssh knows OpenSSH's keepalive
        ]
    finally:
        session.close()


def test_a_large_download_stalls_at_our_window_and_resumes_on_consume(asyncssh_server: AsyncsshServer) -> None:
    """asyncssh sends exactly our window, in packets no larger than our maximum, then waits for WINDOW_ADJUST;
    an overshoot would be WindowExceeded here."""
    protocol = ConnectionProtocol("client", window=1 * MiB, max_packet=16384, auto_window=False)
    session = Session(asyncssh_server.port, protocol)
    try:
        channel = protocol.open_session()
        size = 3 * MiB
        protocol.exec(channel, f"produce {size}")
        got = b""
        consumed_at: list[int] = []

        def stalled() -> bool:
            return channel in protocol.channels and protocol.channel_info(channel)["window"] == 0

        while len(got) < size:
            events = session.until(lambda e: stalled() or isinstance(e, ChannelClosed))
            got += _data(events, channel)
            assert all(len(e.data) <= 16384 for e in events if isinstance(e, ChannelData))
            if stalled():
                consumed_at.append(len(got))  # exactly the window is in, nothing beyond it
                protocol.consume(channel, protocol.channel_info(channel)["unconsumed"])
        assert got == bytes(range(256)) * (size // 256)
        # a stall at exactly each window's end (the last one only if asyncssh's CLOSE came in a later read)
        assert consumed_at in ([1 * MiB, 2 * MiB], [1 * MiB, 2 * MiB, 3 * MiB])
    finally:
        session.close()


def test_upload_through_asyncssh_window_and_two_channels_at_once(asyncssh_server: AsyncsshServer) -> None:
    """Our send_data keeps to asyncssh's 64 KiB window and 8 KiB packets (asyncssh disconnects otherwise);
    two channels run interleaved on one connection."""
    session = Session(asyncssh_server.port, ConnectionProtocol("client"))
    try:
        first, second = session.protocol.open_session(), session.protocol.open_session()
        session.protocol.exec(first, "cat")
        session.protocol.exec(second, "second channel")
        upload = bytes(range(256)) * 1200  # 307,200 bytes: almost five windows
        session.protocol.send_data(first, upload)
        session.protocol.send_eof(first)
        assert session.protocol.channel_info(first)["buffered"] == len(upload)  # nothing before the confirmation
        session.until(lambda e: isinstance(e, ChannelClosed) and e.channel == first)
        if second in session.protocol.channels:
            session.until(lambda e: isinstance(e, ChannelClosed) and e.channel == second)
        events = session.events
        assert _data(events, first) == upload
        assert _data(events, second) == b"ran second channel\n"
        assert sum(isinstance(e, WindowAdjusted) and e.channel == first for e in events) >= 4
        sent = [e for e in session.client.transcript if e.direction == session.client.outgoing_direction]
        data_sizes = [len(e.message.data) for e in sent if type(e.message).__name__ == "ChannelData"]
        assert max(data_sizes) <= 8192 and sum(data_sizes) == len(upload)
        assert session.protocol.channels == {}
    finally:
        session.close()
