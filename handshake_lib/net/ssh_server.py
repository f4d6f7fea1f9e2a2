"""What our SSH server does with a logged-in connection's channels: exec, SFTP, and forwarded TCP connections.

Theory of operation
-------------------
:class:`~handshake_lib.net.ssh.SSHProbeServer` runs one thread per connection.  Once the client has
logged in, every channel event the core returns is handed to a :class:`SessionHandler`, which answers
it with calls on the core's :class:`~handshake_lib.ssh.channels.ConnectionProtocol`:

* a ``session`` channel is accepted; its ``exec`` request runs one command of the fixed, harmless set
  in :mod:`handshake_lib.net.ssh_commands` (never a shell; an authorized_keys ``command=`` replaces
  what the client asked for, as sshd does), its output goes back as CHANNEL_DATA (stdout) and
  EXTENDED_DATA 1 (stderr), then exit-status, EOF and CLOSE in that order.  ``bytes N`` is fed in as the
  channel's window empties (:meth:`SessionHandler.pump`), never all at once.  ``subsystem sftp`` runs
  :class:`~handshake_lib.ssh.sftp.SFTPServer` over a :class:`~handshake_lib.net.sftp_root.ConfinedRoot`
  when the server has an SFTP root.  ``shell``, ``pty-req`` and ``env`` are refused: there is no shell.
* a ``direct-tcpip`` channel (``ssh -L``) is connected to its target only when forwarding is on, the
  target is on loopback, and the key's authorized_keys line does not say ``restrict`` or
  ``no-port-forwarding``; the TCP connection's bytes and the channel's are then copied both ways.  The
  connection's thread waits on the SSH socket and every forwarded socket at once (``selectors``).
* ``tcpip-forward`` (``ssh -R``): when forwarding is allowed, a listener on the loopback address asked for
  (port 0: one the kernel picks, answered in REQUEST_SUCCESS); each connection to it becomes a
  ``forwarded-tcpip`` channel to the client, copied both ways like ``direct-tcpip``;
  ``cancel-tcpip-forward`` closes it.  At most :data:`MAX_LISTENERS` per connection.  Other global
  requests with want_reply (keepalives) are answered with failure, as sshd answers unknown ones.

Every command and every forwarded connection ends with its channel; every socket is closed when the
SSH connection ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HandshakeError, SFTPPacketTooLarge
from ..ssh.authentication import AuthenticatedUser
from ..ssh.channel_messages import (
    CancelTcpipForwardRequest,
    ChannelOpenFailureReason,
    DirectTcpipOpen,
    ExecRequest,
    SubsystemRequest,
    TcpipForwardRequest,
)
from ..ssh.channels import (
    ChannelClosed,
    ChannelData,
    ChannelEOF,
    ChannelOpened,
    ChannelOpenRefused,
    ChannelOpenRequested,
    ChannelRequestReceived,
    ConnectionProtocol,
    GlobalRequestReceived,
)
from ..ssh.sftp import SFTPServer
from .sftp_root import ConfinedRoot
from .ssh_commands import CommandRun, start_command

__all__ = ["SessionHandler", "ServedChannel", "OUTPUT_HIGH_WATER", "FORWARD_CONNECT_TIMEOUT", "MAX_LISTENERS"]

# Data queued per channel beyond which we stop producing (bytes N) or reading (a forwarded socket): the
# channel's window decides when the peer gets it, this decides how much waits in our memory meanwhile.
OUTPUT_HIGH_WATER = 1024 * 1024
FORWARD_CONNECT_TIMEOUT = 2.0
MAX_LISTENERS = 8  # tcpip-forward listeners per connection
# OpenSSH's sftp-server exits with 11 on a request longer than SFTP_MAX_MSG_LENGTH (sftp_server_cleanup_exit(11)
# after "bad message"); the subsystem's exit status says the same here.  Other broken sessions exit 1.
SFTP_TOO_LONG_EXIT = 11
_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


@dataclass
class ServedChannel:
    """What one channel of a served connection did (for tests and the lessons)."""

    channel: int
    kind: str
    command: str | None = None  # exec: what ran (the forced command, if any)
    exit_status: int | None = None
    subsystem: str | None = None
    target: tuple[str, int] | None = None  # direct-tcpip
    refused: str = ""  # why a request or the open was refused
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class _Live:
    record: ServedChannel
    run: CommandRun | None = None
    chunks: Iterator[bytes] | None = None
    sftp: SFTPServer | None = None
    sock: socket.socket | None = None
    finished: bool = False
    reading: bool = True  # a forwarded socket is being watched
    extra: dict[str, object] = field(default_factory=dict)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SessionHandler:
    """Answers one logged-in connection's channel events (see the module docstring)."""

    def __init__(
        self,
        channels: ConnectionProtocol,
        user: AuthenticatedUser,
        selector: selectors.BaseSelector,
        *,
        sftp_root: Path | None = None,
        allow_forwarding: bool = True,
    ) -> None:
        self.channels = channels
        self.user = user
        self.selector = selector
        self.sftp_root = sftp_root
        self.allow_forwarding = allow_forwarding
        self.served: list[ServedChannel] = []
        self._live: dict[int, _Live] = {}
        self._listeners: dict[tuple[str, int], socket.socket] = {}  # (address asked for, bound port)

    # -- events from the core --------------------------------------------------------------------------
    def handle(self, event: object) -> None:
        if isinstance(event, ChannelOpenRequested):
            self._open(event)
        elif isinstance(event, ChannelRequestReceived):
            self._request(event)
        elif isinstance(event, ChannelData):
            self._data(event)
        elif isinstance(event, ChannelEOF):
            self._eof(event.channel)
        elif isinstance(event, ChannelClosed):
            self._closed(event.channel)
        elif isinstance(event, ChannelOpened):
            live = self._live.get(event.channel)
            if live is not None and live.sock is not None:  # our forwarded-tcpip: the client took it
                self.selector.register(live.sock, selectors.EVENT_READ, event.channel)
        elif isinstance(event, ChannelOpenRefused):
            live = self._live.pop(event.channel, None)
            if live is not None:
                live.record.refused = f"the client refused it: {event.description}"
                live.reading = False
                self._drop_socket(live)
        elif isinstance(event, GlobalRequestReceived):
            self._global(event)

    def _forwarding_forbidden(self) -> str:
        key = self.user.key
        if not self.allow_forwarding:
            return "port forwarding is not allowed"
        refused = key is not None and (key.restricted or "no-port-forwarding" in key.flags)
        if refused and "port-forwarding" not in key.flags:  # restrict,port-forwarding turns it back on
            return "port forwarding is not allowed for this key (authorized_keys)"
        return ""

    def _global(self, event: GlobalRequestReceived) -> None:
        success, data = False, b""
        if isinstance(event.fields, TcpipForwardRequest):
            address, port = event.fields.address, event.fields.port
            if not self._forwarding_forbidden() and len(self._listeners) < MAX_LISTENERS:
                host = "127.0.0.1" if address in ("", "localhost", "0.0.0.0", "*") else address
                if _is_loopback(host):
                    try:
                        listener = socket.create_server((host, port))
                    except OSError:
                        listener = None
                    if listener is not None:
                        listener.setblocking(False)
                        bound = listener.getsockname()[1]
                        self._listeners[(address, bound)] = listener
                        self.selector.register(listener, selectors.EVENT_READ, ("listener", (address, bound)))
                        success, data = True, (bound.to_bytes(4, "big") if port == 0 else b"")
        elif isinstance(event.fields, CancelTcpipForwardRequest):
            listener = self._listeners.pop((event.fields.address, event.fields.port), None)
            if listener is not None:
                self.selector.unregister(listener)
                listener.close()
                success = True
        if event.want_reply:
            self.channels.reply_global(success, data)

    def _accept_forwarded(self, key: tuple[str, int]) -> None:
        listener = self._listeners.get(key)
        if listener is None:
            return
        try:
            sock, peer = listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        try:
            number = self.channels.open_forwarded_tcpip(key[0], key[1], peer[0], peer[1])
        except HandshakeError:
            sock.close()  # too many channels: the connection to the forwarded port is refused
            return
        record = ServedChannel(number, "forwarded-tcpip", target=key)
        self.served.append(record)
        self._live[number] = _Live(record, sock=sock)  # read once the client confirms (ChannelOpened)

    def _open(self, event: ChannelOpenRequested) -> None:
        record = ServedChannel(event.channel, event.kind)
        self.served.append(record)
        if event.kind == "session":
            self.channels.accept(event.channel)
            self._live[event.channel] = _Live(record)
            return
        assert isinstance(event.fields, DirectTcpipOpen)
        target = (event.fields.host, event.fields.port)
        record.target = target
        forbidden = self._forwarding_forbidden()
        if forbidden:
            record.refused = forbidden
            self.channels.reject(event.channel, ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED, record.refused)
            return
        if not _is_loopback(target[0]):
            record.refused = "this server forwards to loopback only"
            self.channels.reject(event.channel, ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED, record.refused)
            return
        try:
            sock = socket.create_connection(target, timeout=FORWARD_CONNECT_TIMEOUT)
        except OSError as error:
            record.refused = f"connect failed: {error.strerror or error}"
            self.channels.reject(event.channel, ChannelOpenFailureReason.CONNECT_FAILED, record.refused)
            return
        sock.setblocking(False)
        self.channels.accept(event.channel)
        self._live[event.channel] = _Live(record, sock=sock)
        self.selector.register(sock, selectors.EVENT_READ, event.channel)

    def _request(self, event: ChannelRequestReceived) -> None:
        live = self._live.get(event.channel)
        busy = live is None or live.run is not None or live.sftp is not None or live.sock is not None
        if event.name == "exec" and isinstance(event.fields, ExecRequest) and not busy:
            assert live is not None
            command = self.user.forced_command or event.fields.command
            live.record.command = command
            live.run = start_command(command, user=self.user.user, root=self.sftp_root)
            self._reply(event, True)
            if live.run.stdout:
                self._send(live, live.run.stdout)
            if live.run.stderr:
                self.channels.send_data(event.channel, live.run.stderr, stderr=True)
            if live.run.streamed:
                live.chunks = live.run.chunks()
            elif not live.run.reads_stdin:
                self._finish(live)
            return
        if event.name == "subsystem" and isinstance(event.fields, SubsystemRequest) and not busy:
            assert live is not None
            if event.fields.name == "sftp" and self.sftp_root is not None:
                live.record.subsystem = "sftp"
                live.sftp = SFTPServer(ConfinedRoot(self.sftp_root))
                self._reply(event, True)
                return
        if live is not None:
            live.record.refused = f"{event.name} refused (no shell, no terminal, no environment)"
        self._reply(event, False)

    def _reply(self, event: ChannelRequestReceived, success: bool) -> None:
        if event.want_reply:
            self.channels.reply(event.channel, success)

    def _data(self, event: ChannelData) -> None:
        live = self._live.get(event.channel)
        if live is None or event.stderr:
            return
        live.record.bytes_in += len(event.data)
        if live.run is not None and live.run.reads_stdin and not live.finished:
            out = live.run.feed(event.data)
            if out:
                self._send(live, out)
        elif live.sftp is not None and not live.sftp.closed:
            try:
                live.sftp.receive_data(event.data)
            except SFTPPacketTooLarge:
                live.extra["exit_status"] = SFTP_TOO_LONG_EXIT  # sftp-server's "bad message": exit 11
            except HandshakeError:
                pass  # a broken SFTP session ends (sftp-server exits too)
            self._drain_sftp(live)
        elif live.sock is not None:
            try:
                live.sock.setblocking(True)
                live.sock.settimeout(FORWARD_CONNECT_TIMEOUT)
                live.sock.sendall(event.data)
                live.sock.setblocking(False)
            except OSError:
                self._end_forward(live)

    def _eof(self, channel: int) -> None:
        live = self._live.get(channel)
        if live is None or live.finished:
            return
        if live.run is not None and live.run.reads_stdin:
            out = live.run.end()
            if out:
                self._send(live, out)
            self._finish(live)
        elif live.sftp is not None:
            self._finish(live, status=0)
        elif live.sock is not None:
            with contextlib.suppress(OSError):
                live.sock.shutdown(socket.SHUT_WR)

    def _closed(self, channel: int) -> None:
        live = self._live.pop(channel, None)
        if live is not None and live.sock is not None:
            self._drop_socket(live)

    # -- sending -----------------------------------------------------------------------------------------
    def _send(self, live: _Live, data: bytes) -> None:
        live.record.bytes_out += len(data)
        self.channels.send_data(live.record.channel, data)

    def _finish(self, live: _Live, status: int | None = None) -> None:
        """exit-status, EOF, CLOSE: in that order, behind the output still queued (ConnectionProtocol keeps it)."""
        if live.finished:
            return
        live.finished = True
        if status is None:
            status = live.run.exit_status if live.run is not None else 0
        live.record.exit_status = status
        channel = live.record.channel
        self.channels.send_exit_status(channel, status)
        self.channels.send_eof(channel)
        self.channels.close(channel)

    def _drain_sftp(self, live: _Live) -> None:
        """The SFTP server's answers into the channel; it takes more requests as its output drains, so
        keep going until it has nothing more or the channel holds OUTPUT_HIGH_WATER (pump goes on later)."""
        assert live.sftp is not None
        while self._buffered(live.record.channel) < OUTPUT_HIGH_WATER:
            out = live.sftp.data_to_send()
            if not out:
                break
            self._send(live, out)
        if live.sftp.closed:
            self._finish(live, status=int(live.extra.get("exit_status", 1)))

    def _buffered(self, channel: int) -> int:
        try:
            return int(self.channels.channel_info(channel)["buffered"])
        except HandshakeError:
            return 0

    def pump(self) -> None:
        """Produce streamed output (``bytes N``) and resume reading forwarded sockets, as the windows drain."""
        for live in list(self._live.values()):
            channel = live.record.channel
            if live.chunks is not None and not live.finished:
                while self._buffered(channel) < OUTPUT_HIGH_WATER:
                    chunk = next(live.chunks, None)
                    if chunk is None:
                        live.chunks = None
                        self._finish(live)
                        break
                    self._send(live, chunk)
            if live.sftp is not None and not live.finished:
                self._drain_sftp(live)
            if live.sock is not None and not live.reading and self._buffered(channel) < OUTPUT_HIGH_WATER // 2:
                live.reading = True
                self.selector.register(live.sock, selectors.EVENT_READ, channel)

    def on_socket_readable(self, channel: int | tuple[str, tuple[str, int]]) -> None:
        """A forwarded TCP connection has bytes (or closed): into its channel; a listener: a new connection."""
        if isinstance(channel, tuple):
            self._accept_forwarded(channel[1])
            return
        live = self._live.get(channel)
        if live is None or live.sock is None:
            return
        try:
            data = live.sock.recv(32768)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end_forward(live)
            return
        self._send(live, data)
        if self._buffered(channel) >= OUTPUT_HIGH_WATER:
            live.reading = False  # the peer's window is shut: stop reading until it drains (pump resumes)
            self.selector.unregister(live.sock)

    def _end_forward(self, live: _Live) -> None:
        self._drop_socket(live)
        if not live.finished:
            live.finished = True
            with contextlib.suppress(HandshakeError):
                self.channels.send_eof(live.record.channel)
                self.channels.close(live.record.channel)

    def _drop_socket(self, live: _Live) -> None:
        if live.sock is None:
            return
        if live.reading:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(live.sock)
        live.sock.close()
        live.sock = None

    def close(self) -> None:
        """The SSH connection ended: close every forwarded socket and listener."""
        for live in self._live.values():
            self._drop_socket(live)
        self._live.clear()
        for listener in self._listeners.values():
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(listener)
            listener.close()
        self._listeners.clear()
