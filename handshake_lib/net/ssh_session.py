"""A logged-in SSH connection of ours, over a socket: commands, several channels at once, SFTP, ``-L`` forwarding.

Theory of operation
-------------------
:func:`~handshake_lib.net.ssh.ssh_connect` returns an :class:`SSHSession`: our client core
(:class:`~handshake_lib.ssh.client.SSHClient`), authenticated, its socket and its ``SocketDriver``.
Everything here is the application side of RFC 4254 on top of the core's
:class:`~handshake_lib.ssh.channels.ConnectionProtocol`; every method drives the socket itself, one
loop (:meth:`SSHSession.pump`) with one deadline per wait, and records every event in
:attr:`SSHSession.events` (bounded) for a lesson to draw:

* :meth:`~SSHSession.exec`: a ``session`` channel, ``exec``, standard input and EOF if given, then
  stdout, stderr (EXTENDED_DATA 1), ``exit-status`` or ``exit-signal``, until the channel closes;
* :meth:`~SSHSession.exec_many`: several commands on as many channels at once, interleaved on the one
  connection; each result keeps its own output;
* :meth:`~SSHSession.sftp`: the ``sftp`` subsystem on a channel, driven by
  :class:`~handshake_lib.ssh.sftp.SFTPClient` (list, stat, read, write, mkdir...);
* :meth:`~SSHSession.forward_local`: ``ssh -L``: a listener on loopback whose every connection becomes a
  ``direct-tcpip`` channel to the target, bytes copied both ways;
* :meth:`~SSHSession.forward_remote`: ``ssh -R``: ``tcpip-forward`` asks the server to listen; each
  connection there arrives as a ``forwarded-tcpip`` channel, which we connect to a loopback target.

While a forwarding ``with`` block runs, a thread drives the session (one loop over the SSH socket, the
listener and every forwarded connection); the session must not be used otherwise meanwhile.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConnectionStateError, ConnectionTimeout, HandshakeError, SFTPError, UnexpectedEOF
from ..ssh.channel_messages import CancelTcpipForwardRequest, ChannelOpenFailureReason
from ..ssh.channels import (
    ChannelClosed,
    ChannelData,
    ChannelEOF,
    ChannelOpened,
    ChannelOpenRefused,
    ChannelOpenRequested,
    ChannelRequestAnswered,
    ConnectionProtocol,
    ExitSignal,
    ExitStatus,
    GlobalRequestAnswered,
)
from ..ssh.sftp import SFTPClient
from . import DEFAULT_TIMEOUT, SocketDriver
from .sftp_stdio import SFTPOperations

if TYPE_CHECKING:
    from ..ssh.client import SSHClient
    from .ssh import ProbeResult

__all__ = ["SSHSession", "ExecResult", "SFTPChannelClient", "MAX_EVENTS", "MAX_OUTPUT"]

MAX_EVENTS = 100_000  # events kept in SSHSession.events (a 16 MiB transfer is about 600 data events)
MAX_OUTPUT = 64 * 1024 * 1024  # bytes of stdout plus stderr one exec keeps


@dataclass
class ExecResult:
    """One command's run: its output apart, and how it ended (``exit_status`` None: it sent none)."""

    command: str
    channel: int
    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int | None = None
    exit_signal: str | None = None
    refused: str = ""  # the channel or the exec request was refused: why
    truncated: bool = False  # more than MAX_OUTPUT bytes came; the rest was dropped

    @property
    def ok(self) -> bool:
        return not self.refused and self.exit_status == 0


class SSHSession:
    """A logged-in connection from :func:`~handshake_lib.net.ssh.ssh_connect` (see the module docstring).

    Use it in a ``with`` block (or call :meth:`close`): it says goodbye and closes the socket.
    """

    def __init__(
        self, client: SSHClient, sock: socket.socket, driver: SocketDriver, login: ProbeResult,
        *, timeout: float = DEFAULT_TIMEOUT,
    ) -> None:  # fmt: skip
        self.client = client
        self.sock = sock
        self.driver = driver
        self.login = login
        self.timeout = timeout
        self.events: list[object] = []  # every event since the login, in order (at most MAX_EVENTS)
        self._new: list[object] = []  # events not yet looked at by the running operation

    @property
    def channels(self) -> ConnectionProtocol:
        if self.client.channels is None:
            raise ConnectionStateError("the connection protocol has not started (not logged in)")
        return self.client.channels

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods that logged us in, in order (two for a partial success then a success)."""
        return tuple(self.client.authenticator.succeeded)

    # -- the one loop ---------------------------------------------------------------------------------
    def pump(self, done: Callable[[], bool], *, timeout: float | None = None) -> None:
        """Carry bytes until ``done()``; each wait for the server has ``timeout`` (default the session's)."""
        wait = self.timeout if timeout is None else timeout
        while not done():
            if self.client.closed or self.driver.peer_closed:
                raise UnexpectedEOF("the server closed the connection")
            self._record(self.driver.receive(time.monotonic() + wait))

    def _record(self, events: Sequence[object]) -> None:
        room = MAX_EVENTS - len(self.events)
        self.events.extend(events[: max(room, 0)])
        self._new.extend(events)

    def _collect(self) -> list[object]:
        out, self._new = self._new, []
        return out

    # -- commands ----------------------------------------------------------------------------------------
    def exec(self, command: str, *, stdin: bytes | None = None, timeout: float | None = None) -> ExecResult:
        """Run ``command`` on a new channel; its output and exit status (see the module docstring)."""
        return self.exec_many([command], stdin=[stdin], timeout=timeout)[0]

    def exec_many(
        self, commands: Sequence[str], *, stdin: Sequence[bytes | None] | None = None, timeout: float | None = None
    ) -> list[ExecResult]:
        """Run each command on its own channel, all at once over this connection; their results in order."""
        self._new = []
        protocol = self.channels
        inputs = list(stdin) if stdin is not None else [None] * len(commands)
        results = {protocol.open_session(): ExecResult(command, 0) for command in commands}
        for number, result in results.items():
            result.channel = number
        stdin_for = dict(zip(results, inputs, strict=True))
        closed: set[int] = set()
        opened: set[int] = set()

        def step() -> bool:
            for event in self._collect():
                number = getattr(event, "channel", None)
                result = results.get(number) if number is not None else None
                if result is None:
                    continue
                if isinstance(event, ChannelOpened):
                    opened.add(number)
                    protocol.exec(number, result.command)
                    data = stdin_for[number]
                    if data is not None:
                        protocol.send_data(number, data)
                        protocol.send_eof(number)
                elif isinstance(event, ChannelOpenRefused):
                    result.refused = f"channel refused: {event.description or event.reason}"
                    closed.add(number)
                elif isinstance(event, ChannelRequestAnswered) and event.name == "exec" and not event.success:
                    result.refused = "the server refused the exec request"
                    protocol.close(number)
                elif isinstance(event, ChannelData):
                    kept = len(result.stdout) + len(result.stderr)
                    piece = event.data[: max(MAX_OUTPUT - kept, 0)]
                    result.truncated |= len(piece) < len(event.data)
                    if event.stderr:
                        result.stderr += piece
                    else:
                        result.stdout += piece
                elif isinstance(event, ExitStatus):
                    result.exit_status = event.status
                elif isinstance(event, ExitSignal):
                    result.exit_signal = event.signal
                elif isinstance(event, ChannelClosed):
                    closed.add(number)
            return len(closed) == len(results)

        self.pump(step, timeout=timeout)
        return [results[number] for number in results]

    # -- SFTP -------------------------------------------------------------------------------------------------
    def sftp(self, *, timeout: float | None = None) -> SFTPChannelClient:
        """The ``sftp`` subsystem on a new channel (close it with its ``close()`` or a ``with`` block)."""
        return SFTPChannelClient(self, timeout=self.timeout if timeout is None else timeout)

    # -- ssh -L -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def forward_local(self, host: str, port: int, *, listen_port: int = 0) -> Iterator[int]:
        """``ssh -L listen_port:host:port``: yields the loopback port to connect to; stops when the block ends."""
        listener = socket.create_server(("127.0.0.1", listen_port))
        listener.setblocking(False)
        stop = threading.Event()
        errors: list[BaseException] = []
        worker = threading.Thread(
            target=self._forward_loop, args=(listener, (host, port), stop, errors), name="ssh-forward", daemon=True
        )
        worker.start()
        try:
            yield listener.getsockname()[1]
        finally:
            stop.set()
            worker.join(self.timeout + 1)
            listener.close()
        if errors:
            raise errors[0]

    @contextlib.contextmanager
    def forward_remote(self, host: str, port: int, *, remote_port: int = 0) -> Iterator[int]:
        """``ssh -R remote_port:host:port``: yields the port the server listens on (on its loopback)."""
        protocol = self.channels
        self._new = []
        protocol.tcpip_forward("127.0.0.1", remote_port)
        answer: list[GlobalRequestAnswered] = []

        def answered() -> bool:
            answer.extend(e for e in self._collect() if isinstance(e, GlobalRequestAnswered))
            return bool(answer)

        self.pump(answered)
        if not answer[0].success:
            raise ConnectionStateError("the server refused the remote forwarding (tcpip-forward)")
        bound = int.from_bytes(answer[0].data, "big") if len(answer[0].data) == 4 else remote_port
        stop = threading.Event()
        errors: list[BaseException] = []
        worker = threading.Thread(
            target=self._forward_loop, args=(None, (host, port), stop, errors), name="ssh-forward-remote", daemon=True
        )
        worker.start()
        try:
            yield bound
        finally:
            stop.set()
            worker.join(self.timeout + 1)
            if not self.client.closed:
                protocol.global_request(
                    "cancel-tcpip-forward", CancelTcpipForwardRequest("127.0.0.1", bound).encode(), want_reply=False
                )
                with contextlib.suppress(OSError):
                    self.driver.flush()
        if errors:
            raise errors[0]

    def _forward_loop(
        self,
        listener: socket.socket | None,
        target: tuple[str, int],
        stop: threading.Event,
        errors: list[BaseException],
    ) -> None:
        """``listener``: ssh -L (each local connection opens a channel to ``target`` on the server's side);
        None: ssh -R (each forwarded-tcpip channel the server opens is connected to ``target`` here)."""
        host, port = target
        protocol = self.channels
        selector = selectors.DefaultSelector()
        if listener is not None:
            selector.register(listener, selectors.EVENT_READ, "listener")
        selector.register(self.sock, selectors.EVENT_READ, "ssh")
        local: dict[int, socket.socket] = {}  # channel -> the local connection
        self._new = []

        def drop(number: int) -> None:
            conn = local.pop(number)
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(conn)
            conn.close()

        def handle_events() -> None:
            # Right after each read from the server: a channel number is reused once both CLOSEs are done, so
            # an old channel's ChannelClosed must be handled before a new connection can be given its number.
            for event in self._collect():
                number = getattr(event, "channel", None)
                if isinstance(event, ChannelOpenRequested) and listener is None and number is not None:
                    try:  # ssh -R: the server's forwarded connection, to our loopback target
                        conn = socket.create_connection((host, port), timeout=self.timeout)
                    except OSError as error:
                        protocol.reject(number, ChannelOpenFailureReason.CONNECT_FAILED, str(error))
                        continue
                    conn.setblocking(False)
                    protocol.accept(number)
                    local[number] = conn
                    selector.register(conn, selectors.EVENT_READ, number)
                    continue
                conn = local.get(number) if number is not None else None
                if conn is None:
                    continue
                if isinstance(event, ChannelOpened):
                    selector.register(conn, selectors.EVENT_READ, number)
                elif isinstance(event, ChannelData):
                    conn.setblocking(True)
                    conn.settimeout(self.timeout)
                    with contextlib.suppress(OSError):
                        conn.sendall(event.data)
                    conn.setblocking(False)
                elif isinstance(event, ChannelOpenRefused | ChannelClosed):
                    drop(number)
                elif isinstance(event, ChannelEOF):
                    # the target finished: so does our local connection's reading side, and the channel
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_WR)
                    if number in protocol.channels:
                        with contextlib.suppress(HandshakeError):
                            protocol.close(number)

        try:
            while not stop.is_set():
                self.driver.flush()
                for key, _ in selector.select(0.05):
                    if key.data == "ssh":
                        self._record(self.driver.receive(time.monotonic() + self.timeout))
                        if self.driver.peer_closed:
                            raise UnexpectedEOF("the server closed the connection")
                        handle_events()
                    elif key.data == "listener":
                        with contextlib.suppress(BlockingIOError):
                            conn, peer = listener.accept()
                            conn.setblocking(False)
                            local[protocol.open_direct_tcpip(host, port, peer[0], peer[1])] = conn
                    elif key.data in local:
                        number = key.data
                        try:
                            data = local[number].recv(32768)
                        except OSError:
                            data = b""
                        if data:
                            protocol.send_data(number, data)
                        else:
                            selector.unregister(local[number])
                            with contextlib.suppress(HandshakeError):
                                protocol.send_eof(number)
        except (HandshakeError, OSError) as error:
            errors.append(error)
        finally:
            for conn in local.values():
                conn.close()
            selector.close()

    # -- the end ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if not self.client.closed:
            self.client.disconnect()
            self.driver.flush_quietly()
        self.sock.close()

    def __enter__(self) -> SSHSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SFTPChannelClient(SFTPOperations):
    """Our :class:`~handshake_lib.ssh.sftp.SFTPClient` over an SSH channel (the ``sftp`` subsystem)."""

    def __init__(self, session: SSHSession, *, timeout: float, max_in_flight: int = 64) -> None:
        self.session = session
        self.timeout = timeout
        self.client = SFTPClient(max_in_flight=max_in_flight)
        self._answers = {}
        self._finished_reads = []
        protocol = session.channels
        session._new = []
        self.channel = protocol.open_session()
        state: dict[str, object] = {}

        def started() -> bool:
            for event in session._collect():
                self._on_event(event, state)
            return "answered" in state or "closed" in state

        session.pump(started, timeout=timeout)
        if state.get("answered") is not True:
            raise SFTPError(f"the server refused the sftp subsystem: {state.get('why', 'no reason given')}")
        self.closed = False
        self.version = self._pump(lambda: self.client.version is not None)

    def _on_event(self, event: object, state: dict[str, object]) -> None:
        if getattr(event, "channel", None) != self.channel:
            return
        protocol = self.session.channels
        if isinstance(event, ChannelOpened):
            protocol.subsystem(self.channel, "sftp")
        elif isinstance(event, ChannelOpenRefused):
            state["closed"], state["why"] = True, event.description
        elif isinstance(event, ChannelRequestAnswered) and event.name == "subsystem":
            state["answered"] = event.success
            if not event.success:
                state["why"] = "subsystem request refused"
        elif isinstance(event, ChannelData) and not event.stderr:
            self._absorb(self.client.receive_data(event.data))
        elif isinstance(event, ChannelClosed):
            state["closed"] = True

    def _pump(self, done: Callable[[], bool]) -> int | None:
        session = self.session
        state: dict[str, object] = {}

        def step() -> bool:
            for event in session._collect():
                self._on_event(event, state)  # answers may queue new requests (pipelined reads, a short read's rest)
            out = self.client.data_to_send()
            if out:
                session.channels.send_data(self.channel, out)
            if "closed" in state and not done():
                raise UnexpectedEOF("the server closed the SFTP channel")
            return done()

        try:
            session.pump(step, timeout=self.timeout)
        except ConnectionTimeout as error:
            raise ConnectionTimeout(f"the SFTP server did not answer within {self.timeout} s") from error
        return self.client.version

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(HandshakeError):
                self.session.channels.send_eof(self.channel)
                self.session.channels.close(self.channel)

    def __enter__(self) -> SFTPChannelClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

