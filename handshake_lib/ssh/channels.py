"""The SSH connection protocol (RFC 4254) for one authenticated connection: channels, flow control, requests.

Theory of operation
-------------------
After user authentication an SSH connection carries *channels*: independent conversations (a command's
session, a forwarded TCP connection), each with its own flow control, multiplexed over the one encrypted
transport.  :class:`ConnectionProtocol` is that layer, sans-I/O and for either role: the caller hands it
every message 80-100 the peer sends (:meth:`~ConnectionProtocol.receive` returns *events*), calls its
methods to open channels, send data, make requests and answer the peer's, and drains
:meth:`~ConnectionProtocol.messages_to_send` into the transport, which encrypts them.

**Numbers.**  Each side names a channel by its own number (``sender_channel`` when opening); every later
message carries the *recipient's* number.  Our numbers are the keys of our table; a number is free again
only once both CLOSEs have crossed (section 5.3), so a late message for the old channel can never reach
a new one.

**The state machine** is one table, :data:`CHANNEL_TABLE`, in the shape of :mod:`handshake_lib.ssh.states`:
``Transition(source, received, target, send, note)`` rows, where ``received`` is a peer's message or one
of our own calls (``open()``, ``close()``...).  Every message and every call looks its row up first; a
message with no row is :class:`~handshake_lib.errors.UnexpectedMessage` (disconnect PROTOCOL_ERROR), a
call with no row :class:`~handshake_lib.errors.ChannelStateError` (nothing sent).  The handler named after
the input does the work and the channel moves to the row's target::

    Client (opener)                                     Server
    CHANNEL_OPEN session, window, max packet  ---->     (OPEN_RECEIVED: accept() or reject())
    (OPENING)                                 <----     CHANNEL_OPEN_CONFIRMATION
    (OPEN) CHANNEL_REQUEST exec, want_reply   ---->
                                              <----     CHANNEL_SUCCESS (replies in request order)
                                              <----     CHANNEL_DATA / EXTENDED_DATA 1 (stderr) ...
    WINDOW_ADJUST (half the window used)      ---->
                                              <----     CHANNEL_REQUEST exit-status; CHANNEL_EOF; CHANNEL_CLOSE
    CHANNEL_CLOSE (the answer, once)          ---->     (CLOSED on both sides: the numbers are free)

**EOF is a recorded fact, not a state.**  EOF goes one way (section 5.3: "no more data from me"; the
other direction goes on), so the two EOFs are independent of each other and of who closes: as states
they would double OPEN and CLOSE_SENT into eight.  Each channel keeps ``eof_received``/``eof_sent``; data
after the peer's EOF is :class:`~handshake_lib.errors.ChannelError`, data after ours a ChannelStateError.

**Flow control, both ways** (section 5.2).  *Outgoing*: the peer grants a window (bytes we may send) and
a maximum data packet; :meth:`~ConnectionProtocol.send_data` sends what the window allows, cut at the
peer's maximum packet size (and at :data:`MAX_SEND_PACKET`, our transport's comfort), and queues the
rest in a per-channel outbox bounded by ``max_buffered`` (past it :class:`~handshake_lib.errors.SendBufferFull`,
nothing queued); a WINDOW_ADJUST sends more.  Requests, EOF and CLOSE queued behind data go out after it,
so an ``exit-status`` never overtakes the output it ends.  *Incoming*: data beyond the window we granted,
or a packet larger than our maximum, is :class:`~handshake_lib.errors.WindowExceeded` (PROTOCOL_ERROR;
OpenSSH only logs and drops it).  With ``auto_window=True`` the data counts as consumed once it is handed
over as an event and the window is re-opened when half of it is used (as OpenSSH and paramiko do); with
``auto_window=False`` only :meth:`~ConnectionProtocol.consume` re-opens it, so a slow reader stalls the
sender: the lesson's way to *see* flow control.

**Replies in order** (sections 4 and 5.4).  SUCCESS/FAILURE carry no request identifier: they answer the
oldest unanswered request.  So both directions keep a FIFO, per channel and for global requests: ours
(which request does this reply answer?) and the peer's (our replies leave in the order its requests came,
whatever order the application decides them in).  A reply for a channel no longer in the table is
ignored (the :class:`LateReplyIgnored` event), as OpenSSH does: paramiko's server can reply after CLOSE.

**Limits**: ``max_channels`` channels at a time (an open past it is refused with RESOURCE_SHORTAGE, the
connection lives), ``max_buffered`` bytes queued per channel, :data:`MAX_PENDING_REQUESTS` unanswered
requests per FIFO (the peer's past it: ChannelError).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from ..errors import ChannelError, ChannelStateError, SendBufferFull, UnexpectedMessage, WindowExceeded
from . import channel_messages as cm
from .channel_messages import ChannelOpenFailureReason, TypedFields
from .messages import Message

__all__ = [
    "DEFAULT_WINDOW",
    "DEFAULT_MAX_PACKET",
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_BUFFERED",
    "MAX_SEND_PACKET",
    "MAX_PENDING_REQUESTS",
    "MAX_WINDOW",
    "ChannelState",
    "ChannelInput",
    "Transition",
    "CHANNEL_TABLE",
    "transition_for",
    "ConnectionProtocol",
    "ChannelOpenRequested",
    "ChannelOpened",
    "ChannelOpenRefused",
    "ChannelData",
    "ChannelEOF",
    "ChannelClosed",
    "LateReplyIgnored",
    "ChannelRequestReceived",
    "ChannelRequestAnswered",
    "ExitStatus",
    "ExitSignal",
    "GlobalRequestReceived",
    "GlobalRequestAnswered",
    "WindowAdjusted",
]

DEFAULT_WINDOW = 2 * 1024 * 1024  # OpenSSH's CHAN_SES_WINDOW_DEFAULT (64 packets of 32 KiB)
DEFAULT_MAX_PACKET = 32 * 1024  # OpenSSH's CHAN_SES_PACKET_DEFAULT
DEFAULT_MAX_CHANNELS = 64  # channels open at once, per connection
DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024  # bytes queued per channel while the peer's window is shut
MAX_SEND_PACKET = 32 * 1024  # never more data per packet, whatever the peer announces (its transport caps packets)
MAX_PENDING_REQUESTS = 64  # unanswered requests per FIFO (per channel, and global)
MAX_WINDOW = 2**32 - 1  # a window is a uint32 (RFC 4254 section 5.2)

Role = Literal["client", "server"]


class ChannelState(Enum):
    """Where one channel is, as we see it.  Values are what the diagrams print."""

    NONE = "(no channel)"  # the number is free
    OPENING = "OPENING"  # our CHANNEL_OPEN sent, no answer yet
    OPEN_RECEIVED = "OPEN_RECEIVED"  # the peer's CHANNEL_OPEN received; the application accepts or rejects
    OPEN = "OPEN"
    CLOSE_SENT = "CLOSE_SENT"  # our CLOSE sent (or queued behind data), the peer's to come
    CLOSED = "CLOSED"  # both CLOSEs (or an open refused): the number is free again


class ChannelInput(Enum):
    """A peer's message (the RFC names without SSH_MSG_) or one of our calls (with parentheses)."""

    CHANNEL_OPEN = "CHANNEL_OPEN"
    CHANNEL_OPEN_CONFIRMATION = "CHANNEL_OPEN_CONFIRMATION"
    CHANNEL_OPEN_FAILURE = "CHANNEL_OPEN_FAILURE"
    CHANNEL_WINDOW_ADJUST = "CHANNEL_WINDOW_ADJUST"
    CHANNEL_DATA = "CHANNEL_DATA"
    CHANNEL_EXTENDED_DATA = "CHANNEL_EXTENDED_DATA"
    CHANNEL_EOF = "CHANNEL_EOF"
    CHANNEL_CLOSE = "CHANNEL_CLOSE"
    CHANNEL_REQUEST = "CHANNEL_REQUEST"
    CHANNEL_SUCCESS = "CHANNEL_SUCCESS"
    CHANNEL_FAILURE = "CHANNEL_FAILURE"
    open = "open()"
    accept = "accept()"
    reject = "reject()"
    send_data = "send_data()"
    send_eof = "send_eof()"
    request = "request()"
    reply = "reply()"
    consume = "consume()"
    close = "close()"

    @property
    def is_call(self) -> bool:
        return self.value.endswith("()")


@dataclass(frozen=True)
class Transition:
    """One row: in ``source``, on ``received``, send ``send`` (in order), go to ``target``."""

    source: ChannelState
    received: ChannelInput
    target: ChannelState
    send: tuple[str, ...] = ()
    note: str = ""


_S, _I = ChannelState, ChannelInput

CHANNEL_TABLE: tuple[Transition, ...] = (
    # opening (5.1)
    Transition(_S.NONE, _I.open, _S.OPENING, ("CHANNEL_OPEN",), "our number, window and max packet"),
    Transition(
        _S.NONE, _I.CHANNEL_OPEN, _S.OPEN_RECEIVED,
        note="a type this role accepts, under max_channels; else CHANNEL_OPEN_FAILURE at once and no channel",
    ),
    Transition(_S.OPEN_RECEIVED, _I.accept, _S.OPEN, ("CHANNEL_OPEN_CONFIRMATION",), "our number, window, max packet"),
    Transition(_S.OPEN_RECEIVED, _I.reject, _S.CLOSED, ("CHANNEL_OPEN_FAILURE",), "reason code and text"),
    Transition(_S.OPENING, _I.CHANNEL_OPEN_CONFIRMATION, _S.OPEN, note="queued requests and data go out now"),
    Transition(_S.OPENING, _I.CHANNEL_OPEN_FAILURE, _S.CLOSED, note="refused: the number is free"),
    # what we may queue before the peer confirms: it leaves, in order, with the confirmation
    Transition(_S.OPENING, _I.request, _S.OPENING, note="queued until confirmed"),
    Transition(_S.OPENING, _I.send_data, _S.OPENING, note="queued until confirmed (the window is not known)"),
    Transition(_S.OPENING, _I.send_eof, _S.OPENING, note="queued until confirmed"),
    # open (5.2-5.4)
    Transition(_S.OPEN, _I.CHANNEL_WINDOW_ADJUST, _S.OPEN, ("CHANNEL_DATA*",), "the window grows: queued data goes"),
    Transition(_S.OPEN, _I.CHANNEL_DATA, _S.OPEN, ("CHANNEL_WINDOW_ADJUST?",), "within our window and max packet"),
    Transition(_S.OPEN, _I.CHANNEL_EXTENDED_DATA, _S.OPEN, ("CHANNEL_WINDOW_ADJUST?",), "type 1: stderr"),
    Transition(_S.OPEN, _I.CHANNEL_EOF, _S.OPEN, note="the peer sends no more data; we still may"),
    Transition(_S.OPEN, _I.CHANNEL_REQUEST, _S.OPEN, note="want_reply: answered in order (reply())"),
    Transition(_S.OPEN, _I.CHANNEL_SUCCESS, _S.OPEN, note="answers our oldest request on this channel"),
    Transition(_S.OPEN, _I.CHANNEL_FAILURE, _S.OPEN, note="answers our oldest request on this channel"),
    Transition(_S.OPEN, _I.CHANNEL_CLOSE, _S.CLOSED, ("CHANNEL_CLOSE",), "answered once; queued data dropped"),
    Transition(_S.OPEN, _I.send_data, _S.OPEN, ("CHANNEL_DATA*",), "what the window allows, the rest queued"),
    Transition(_S.OPEN, _I.send_eof, _S.OPEN, ("CHANNEL_EOF",), "after queued data"),
    Transition(_S.OPEN, _I.request, _S.OPEN, ("CHANNEL_REQUEST",), "after queued data (exit-status after output)"),
    Transition(_S.OPEN, _I.reply, _S.OPEN, ("CHANNEL_SUCCESS|FAILURE*",), "in the order the requests came"),
    Transition(_S.OPEN, _I.consume, _S.OPEN, ("CHANNEL_WINDOW_ADJUST?",), "half the window consumed: re-open it"),
    Transition(_S.OPEN, _I.close, _S.CLOSE_SENT, ("CHANNEL_CLOSE",), "after queued data and EOF"),
    # closing (5.3): the peer's messages sent before it saw our CLOSE still arrive; they are checked and dropped
    Transition(_S.CLOSE_SENT, _I.CHANNEL_CLOSE, _S.CLOSED, note="both CLOSEs: the number is free"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_WINDOW_ADJUST, _S.CLOSE_SENT, ("CHANNEL_DATA*",), "queued data still goes"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_DATA, _S.CLOSE_SENT, note="in flight: window checked, dropped"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_EXTENDED_DATA, _S.CLOSE_SENT, note="in flight: window checked, dropped"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_EOF, _S.CLOSE_SENT, note="in flight"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_REQUEST, _S.CLOSE_SENT, note="in flight: exit-status reported, no reply"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_SUCCESS, _S.CLOSE_SENT, note="answers our oldest request"),
    Transition(_S.CLOSE_SENT, _I.CHANNEL_FAILURE, _S.CLOSE_SENT, note="answers our oldest request"),
    Transition(_S.CLOSE_SENT, _I.consume, _S.CLOSE_SENT, note="nothing to re-open"),
)  # fmt: skip

_TABLE: dict[tuple[ChannelState, ChannelInput], Transition] = {}
for _row in CHANNEL_TABLE:
    assert (_row.source, _row.received) not in _TABLE, _row  # one row per pair: no guards needed
    _TABLE[(_row.source, _row.received)] = _row


def transition_for(state: ChannelState, received: ChannelInput) -> Transition:
    """The row for ``received`` in ``state``: UnexpectedMessage for a peer's message with no row,
    ChannelStateError for one of our calls with no row."""
    row = _TABLE.get((state, received))
    if row is None:
        if received.is_call:
            raise ChannelStateError(f"{received.value} is not allowed on a channel in state {state.value}")
        raise UnexpectedMessage(f"SSH_MSG_{received.value} is not allowed on a channel in state {state.value}")
    return row


# -- events -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelOpenRequested:
    """The peer opens a channel (``kind``: session, direct-tcpip, forwarded-tcpip); accept() or reject()."""

    channel: int
    kind: str
    fields: TypedFields
    peer_window: int
    peer_max_packet: int


@dataclass(frozen=True)
class ChannelOpened:
    """Our open was confirmed (``peer_channel``: the peer's number for it)."""

    channel: int
    peer_channel: int
    peer_window: int
    peer_max_packet: int


@dataclass(frozen=True)
class ChannelOpenRefused:
    """Our open was refused; the number is free again."""

    channel: int
    reason: int
    description: str


@dataclass(frozen=True)
class ChannelData:
    """Bytes from the peer: the stream (``stderr`` False) or extended data type 1 (``stderr`` True)."""

    channel: int
    data: bytes = field(repr=False)
    stderr: bool = False


@dataclass(frozen=True)
class ChannelEOF:
    """The peer will send no more data on this channel."""

    channel: int


@dataclass(frozen=True)
class ChannelClosed:
    """Both CLOSEs crossed: the channel is gone (``dropped``: queued bytes of ours that never went out)."""

    channel: int
    dropped: int = 0


@dataclass(frozen=True)
class LateReplyIgnored:
    """A CHANNEL_SUCCESS/FAILURE for a channel no longer open, ignored as OpenSSH does ("unknown" logged).

    paramiko's server sends its reply to ``exec`` after its ``check_channel_exec_request`` returns, so a
    thread that runs the command at once can send the output, exit-status and CLOSE first: both CLOSEs
    cross, the number is free, and the reply comes after.  Data for such a channel stays a ChannelError."""

    channel: int
    name: str


@dataclass(frozen=True)
class ChannelRequestReceived:
    """A CHANNEL_REQUEST (not exit-status/exit-signal); ``fields`` None for a type we do not decode.
    With ``want_reply`` the application must call reply(); replies leave in request order."""

    channel: int
    name: str
    fields: TypedFields | None
    want_reply: bool


@dataclass(frozen=True)
class ChannelRequestAnswered:
    """The peer answered our oldest request on this channel (``name``: which one it was)."""

    channel: int
    name: str
    success: bool


@dataclass(frozen=True)
class ExitStatus:
    """The program on the channel ended with ``status`` (RFC 4254 section 6.10)."""

    channel: int
    status: int


@dataclass(frozen=True)
class ExitSignal:
    """The program on the channel was killed by ``signal`` (RFC 4254 section 6.10)."""

    channel: int
    signal: str
    core_dumped: bool
    message: str


@dataclass(frozen=True)
class GlobalRequestReceived:
    """A GLOBAL_REQUEST; ``fields`` None for a name we do not decode.  With ``want_reply``: reply_global()."""

    name: str
    fields: TypedFields | None
    want_reply: bool
    data: bytes = b""


@dataclass(frozen=True)
class GlobalRequestAnswered:
    """The peer answered our oldest global request (``data``: e.g. the port a tcpip-forward for 0 bound)."""

    name: str
    success: bool
    data: bytes = b""


@dataclass(frozen=True)
class WindowAdjusted:
    """The peer opened its window by ``added`` bytes; ``window`` is what we may send now (before queued data)."""

    channel: int
    added: int
    window: int


# -- one channel's bookkeeping ----------------------------------------------------------------------------
@dataclass
class _Channel:
    number: int
    kind: str
    state: ChannelState = ChannelState.NONE
    peer_number: int | None = None
    # what we may send: the peer's window and maximum data packet
    peer_window: int = 0
    peer_max_packet: int = 0
    # what the peer may send: our window, and bytes received but not yet given back by a WINDOW_ADJUST
    window: int = 0
    unconsumed: int = 0  # received, not yet consumed (auto_window=False)
    consumed: int = 0  # consumed, not yet given back
    eof_received: bool = False
    eof_sent: bool = False  # send_eof() called (the EOF may still be queued behind data)
    close_sent: bool = False  # our CLOSE is on the wire (not merely queued)
    # the outbox: ("data", data_type or None, memoryview of bytes) or ("message", Message), in order
    outbox: deque[tuple[Any, ...]] = field(default_factory=deque)
    buffered: int = 0  # data bytes in the outbox
    our_requests: deque[str] = field(default_factory=deque)  # our want_reply requests, oldest first
    peer_requests: deque[list[Any]] = field(default_factory=deque)  # [name, decision or None], oldest first


def _check_u32(value: int, what: str) -> None:
    if not 0 <= value <= MAX_WINDOW:
        raise ValueError(f"{what} must be a uint32, not {value}")


class ConnectionProtocol:
    """The connection protocol of one authenticated SSH connection, for ``role`` (see the module docstring).

    ``window``/``max_packet``: what we grant the peer per channel; ``max_channels``: channels at once;
    ``max_buffered``: bytes queued per channel; ``auto_window``: re-open our window by itself (True) or
    only on :meth:`consume` (False).
    """

    def __init__(
        self,
        role: Role,
        *,
        window: int = DEFAULT_WINDOW,
        max_packet: int = DEFAULT_MAX_PACKET,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        auto_window: bool = True,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        _check_u32(window, "window")
        _check_u32(max_packet, "max_packet")
        if max_packet < 1 or window < 1 or max_channels < 1 or max_buffered < 0:
            raise ValueError("window, max_packet and max_channels must be positive, max_buffered not negative")
        self.role: Role = role
        self.window = window
        self.max_packet = max_packet
        self.max_channels = max_channels
        self.max_buffered = max_buffered
        self.auto_window = auto_window
        self._channels: dict[int, _Channel] = {}
        self._outgoing: list[Message] = []
        self._our_global: deque[str] = deque()  # our want_reply global requests, oldest first
        self._peer_global: deque[list[Any]] = deque()  # [name, decision or None], oldest first
        # Channel types each role accepts from its peer (RFC 4254 6.1: a client SHOULD refuse sessions;
        # direct-tcpip goes client to server, forwarded-tcpip server to client).
        self._acceptable = {"session", "direct-tcpip"} if role == "server" else {"forwarded-tcpip"}

    # -- the caller's two pipes ---------------------------------------------------------------------
    def messages_to_send(self) -> list[Message]:
        """The messages to send, in order, since the last call (the caller encrypts and sends them)."""
        out, self._outgoing = self._outgoing, []
        return out

    def receive(self, message: Message) -> list[object]:
        """Process one message 80-100 from the peer; return the events it caused."""
        events: list[object] = []
        if isinstance(message, cm.GlobalRequest):
            self._on_global_request(message, events)
        elif isinstance(message, (cm.RequestSuccess, cm.RequestFailure)):
            if not self._our_global:
                raise ChannelError(f"{message.name} answers no global request of ours")
            name = self._our_global.popleft()
            success = isinstance(message, cm.RequestSuccess)
            events.append(GlobalRequestAnswered(name, success, message.data if success else b""))
        elif isinstance(message, cm.ChannelOpen):
            self._on_channel_open(message, events)
        else:
            received = _MESSAGE_INPUTS.get(type(message))
            if received is None:
                raise UnexpectedMessage(f"{message.name} is not a connection protocol message")
            channel = self._channels.get(message.recipient_channel)  # type: ignore[attr-defined]
            if channel is None and isinstance(message, (cm.ChannelSuccess, cm.ChannelFailure)):
                events.append(LateReplyIgnored(message.recipient_channel, message.name))
                return events
            if channel is None:
                raise ChannelError(f"{message.name} for channel {message.recipient_channel}, which is not open")  # type: ignore[attr-defined]
            row = transition_for(channel.state, received)
            _HANDLERS[received](self, channel, message, events)
            self._move(channel, row)
        return events

    # -- channels ------------------------------------------------------------------------------------
    @property
    def channels(self) -> dict[int, ChannelState]:
        """Our channel numbers in use, and their states."""
        return {number: channel.state for number, channel in self._channels.items()}

    def channel_info(self, channel: int) -> dict[str, Any]:
        """One channel's flow-control numbers and EOF facts (for a lesson's table)."""
        c = self._get(channel)
        return {
            "state": c.state, "kind": c.kind, "peer_channel": c.peer_number, "peer_window": c.peer_window,
            "peer_max_packet": c.peer_max_packet, "window": c.window, "unconsumed": c.unconsumed,
            "buffered": c.buffered, "eof_sent": c.eof_sent, "eof_received": c.eof_received,
        }  # fmt: skip

    def open_session(self) -> int:
        """Open a ``session`` channel; returns our number for it (usable at once: requests are queued)."""
        return self._open(cm.SessionOpen())

    def open_direct_tcpip(self, host: str, port: int, originator: str, originator_port: int) -> int:
        """Open a ``direct-tcpip`` channel (ssh -L): the server connects to host:port."""
        return self._open(cm.DirectTcpipOpen(host, port, originator, originator_port))

    def open_forwarded_tcpip(self, address: str, port: int, originator: str, originator_port: int) -> int:
        """Server: open a ``forwarded-tcpip`` channel for a connection to a port the client forwarded."""
        return self._open(cm.ForwardedTcpipOpen(address, port, originator, originator_port))

    def _open(self, fields: TypedFields) -> int:
        if len(self._channels) >= self.max_channels:
            raise ChannelStateError(f"{len(self._channels)} channels are in use, the limit (max_channels)")
        number = self._free_number()
        channel = _Channel(number, fields.KIND, window=self.window)
        row = transition_for(channel.state, _I.open)
        self._channels[number] = channel
        self._outgoing.append(cm.ChannelOpen(fields.KIND, number, self.window, self.max_packet, fields.encode()))
        self._move(channel, row)
        return number

    def accept(self, channel: int) -> None:
        """Confirm the peer's CHANNEL_OPEN (ChannelOpenRequested)."""
        c = self._get(channel)
        row = transition_for(c.state, _I.accept)
        assert c.peer_number is not None
        self._outgoing.append(cm.ChannelOpenConfirmation(c.peer_number, c.number, self.window, self.max_packet))
        self._move(c, row)

    def reject(
        self,
        channel: int,
        reason: ChannelOpenFailureReason = ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
        description: str = "",
    ) -> None:
        """Refuse the peer's CHANNEL_OPEN; the number is free at once."""
        c = self._get(channel)
        row = transition_for(c.state, _I.reject)
        assert c.peer_number is not None
        self._outgoing.append(cm.ChannelOpenFailure(c.peer_number, reason, description))
        self._move(c, row)

    def send_data(self, channel: int, data: bytes, *, stderr: bool = False) -> None:
        """Send ``data`` (extended data type 1 if ``stderr``): what the peer's window allows now, the rest
        when it grows.  SendBufferFull (nothing queued) past ``max_buffered`` queued bytes."""
        c = self._get(channel)
        row = transition_for(c.state, _I.send_data)
        if c.eof_sent:
            raise ChannelStateError(f"channel {channel}: data after our EOF")
        if c.buffered + len(data) - self._sendable_now(c) > self.max_buffered:
            raise SendBufferFull(
                f"channel {channel}: {c.buffered} bytes queued, {len(data)} more would pass max_buffered "
                f"({self.max_buffered}) while the peer's window is {c.peer_window}"
            )
        if data:
            # a memoryview, so that sending it a packet at a time copies each byte once, not the rest each time
            c.outbox.append(("data", cm.EXTENDED_DATA_STDERR if stderr else None, memoryview(bytes(data))))
            c.buffered += len(data)
        self._move(c, row)
        self._flush(c)

    def send_eof(self, channel: int) -> None:
        """No more data from us on this channel (sent after any queued data); once only."""
        c = self._get(channel)
        row = transition_for(c.state, _I.send_eof)
        if c.eof_sent:
            raise ChannelStateError(f"channel {channel}: EOF already sent")
        c.eof_sent = True
        c.outbox.append(("message", "eof"))
        self._move(c, row)
        self._flush(c)

    def close(self, channel: int) -> None:
        """Close the channel (CLOSE after any queued data and EOF); ChannelClosed comes with the peer's CLOSE."""
        c = self._get(channel)
        row = transition_for(c.state, _I.close)
        c.outbox.append(("message", "close"))
        self._move(c, row)
        self._flush(c)

    def request(self, channel: int, name: str, data: bytes = b"", want_reply: bool = True) -> None:
        """Send a CHANNEL_REQUEST (after queued data); with ``want_reply`` a ChannelRequestAnswered follows."""
        c = self._get(channel)
        row = transition_for(c.state, _I.request)
        if want_reply:
            if len(c.our_requests) >= MAX_PENDING_REQUESTS:
                raise ChannelStateError(f"channel {channel}: {MAX_PENDING_REQUESTS} requests await an answer")
            c.our_requests.append(name)
        c.outbox.append(("message", "request", name, want_reply, bytes(data)))
        self._move(c, row)
        self._flush(c)

    def exec(self, channel: int, command: str, want_reply: bool = True) -> None:
        self.request(channel, "exec", cm.ExecRequest(command).encode(), want_reply)

    def shell(self, channel: int, want_reply: bool = True) -> None:
        self.request(channel, "shell", b"", want_reply)

    def subsystem(self, channel: int, name: str, want_reply: bool = True) -> None:
        self.request(channel, "subsystem", cm.SubsystemRequest(name).encode(), want_reply)

    def env(self, channel: int, name: str, value: str, want_reply: bool = False) -> None:
        """``env``: OpenSSH's client sends it without want_reply (sshd drops names AcceptEnv does not list)."""
        self.request(channel, "env", cm.EnvRequest(name, value).encode(), want_reply)

    def send_exit_status(self, channel: int, status: int) -> None:
        self.request(channel, "exit-status", cm.ExitStatusRequest(status).encode(), want_reply=False)

    def send_exit_signal(self, channel: int, signal: str, core_dumped: bool = False, message: str = "") -> None:
        fields = cm.ExitSignalRequest(signal, core_dumped, message)
        self.request(channel, "exit-signal", fields.encode(), want_reply=False)

    def reply(self, channel: int, success: bool) -> None:
        """Answer the peer's oldest undecided request on this channel; answers leave in request order."""
        c = self._get(channel)
        row = transition_for(c.state, _I.reply)
        undecided = next((entry for entry in c.peer_requests if entry[1] is None), None)
        if undecided is None:
            raise ChannelStateError(f"channel {channel}: no request awaits a reply")
        undecided[1] = success
        self._move(c, row)
        self._send_replies(c)

    def consume(self, channel: int, n: int) -> None:
        """The application processed ``n`` more received bytes: re-open the window once half of it is used."""
        c = self._get(channel)
        row = transition_for(c.state, _I.consume)
        if not 0 <= n <= c.unconsumed:
            raise ChannelStateError(f"channel {channel}: consume({n}) but {c.unconsumed} bytes are unconsumed")
        c.unconsumed -= n
        c.consumed += n
        self._move(c, row)
        self._maybe_adjust(c)

    # -- global requests ------------------------------------------------------------------------------
    def global_request(self, name: str, data: bytes = b"", want_reply: bool = True) -> None:
        """Send a GLOBAL_REQUEST; with ``want_reply`` a GlobalRequestAnswered follows (in request order)."""
        if want_reply:
            if len(self._our_global) >= MAX_PENDING_REQUESTS:
                raise ChannelStateError(f"{MAX_PENDING_REQUESTS} global requests await an answer")
            self._our_global.append(name)
        self._outgoing.append(cm.GlobalRequest(name, want_reply, bytes(data)))

    def tcpip_forward(self, address: str, port: int) -> None:
        self.global_request("tcpip-forward", cm.TcpipForwardRequest(address, port).encode())

    def reply_global(self, success: bool, data: bytes = b"") -> None:
        """Answer the peer's oldest undecided global request (``data``: e.g. the bound port, uint32)."""
        undecided = next((entry for entry in self._peer_global if entry[1] is None), None)
        if undecided is None:
            raise ChannelStateError("no global request awaits a reply")
        undecided[1] = success
        undecided[2] = bytes(data)
        while self._peer_global and self._peer_global[0][1] is not None:
            _, ok, payload = self._peer_global.popleft()
            self._outgoing.append(cm.RequestSuccess(payload) if ok else cm.RequestFailure())

    # -- handlers for the peer's messages ---------------------------------------------------------------
    def _on_global_request(self, message: cm.GlobalRequest, events: list[object]) -> None:
        fields = cm.global_fields(message)
        if message.want_reply:
            if len(self._peer_global) >= MAX_PENDING_REQUESTS:
                raise ChannelError(f"{MAX_PENDING_REQUESTS} global requests of the peer are unanswered")
            self._peer_global.append([message.request_name, None, b""])
        events.append(GlobalRequestReceived(message.request_name, fields, message.want_reply, message.data))

    def _on_channel_open(self, message: cm.ChannelOpen, events: list[object]) -> None:
        # Refusals that need no channel: the peer's number is all the answer needs, the connection lives.
        refusal: tuple[ChannelOpenFailureReason, str] | None = None
        if message.channel_type not in cm.OPEN_TYPES:
            refusal = (ChannelOpenFailureReason.UNKNOWN_CHANNEL_TYPE, f"unknown channel type {message.channel_type}")
        elif message.channel_type not in self._acceptable:
            refusal = (
                ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
                f"a {self.role} opens no {message.channel_type}",
            )
        elif len(self._channels) >= self.max_channels:
            refusal = (ChannelOpenFailureReason.RESOURCE_SHORTAGE, f"{self.max_channels} channels open already")
        fields = cm.open_fields(message) if refusal is None else None  # malformed fields: DecodeError
        if refusal is None and message.max_packet == 0:
            raise ChannelError("CHANNEL_OPEN with a maximum packet size of 0: no data could ever be sent")
        if refusal is not None or fields is None:
            assert refusal is not None
            self._outgoing.append(cm.ChannelOpenFailure(message.sender_channel, refusal[0], refusal[1]))
            return
        channel = _Channel(self._free_number(), message.channel_type, window=self.window)
        row = transition_for(channel.state, _I.CHANNEL_OPEN)
        channel.peer_number = message.sender_channel
        channel.peer_window = message.initial_window
        channel.peer_max_packet = message.max_packet
        self._channels[channel.number] = channel
        self._move(channel, row)
        events.append(
            ChannelOpenRequested(
                channel.number, message.channel_type, fields, message.initial_window, message.max_packet
            )
        )

    def _on_confirmation(self, c: _Channel, message: Message, events: list[object]) -> None:
        assert isinstance(message, cm.ChannelOpenConfirmation)
        if message.max_packet == 0:
            raise ChannelError("CHANNEL_OPEN_CONFIRMATION with a maximum packet size of 0")
        c.peer_number = message.sender_channel
        c.peer_window = message.initial_window
        c.peer_max_packet = message.max_packet
        events.append(ChannelOpened(c.number, message.sender_channel, message.initial_window, message.max_packet))

    def _on_open_failure(self, c: _Channel, message: Message, events: list[object]) -> None:
        assert isinstance(message, cm.ChannelOpenFailure)
        events.append(ChannelOpenRefused(c.number, message.reason, message.description))

    def _on_window_adjust(self, c: _Channel, message: Message, events: list[object]) -> None:
        assert isinstance(message, cm.ChannelWindowAdjust)
        if c.peer_window + message.bytes_to_add > MAX_WINDOW:
            raise WindowExceeded(
                f"channel {c.number}: WINDOW_ADJUST of {message.bytes_to_add} takes the window past 2^32-1"
            )
        c.peer_window += message.bytes_to_add
        events.append(WindowAdjusted(c.number, message.bytes_to_add, c.peer_window))

    def _on_data(self, c: _Channel, message: Message, events: list[object]) -> None:
        assert isinstance(message, (cm.ChannelData, cm.ChannelExtendedData))
        size = len(message.data)
        if c.eof_received:
            raise ChannelError(f"channel {c.number}: {message.name} after the peer's EOF")
        if size > self.max_packet:
            raise WindowExceeded(f"channel {c.number}: a data packet of {size} bytes, our maximum is {self.max_packet}")
        if size > c.window:
            raise WindowExceeded(f"channel {c.number}: {size} bytes of data, but the window left is {c.window}")
        c.window -= size
        if c.state is not ChannelState.OPEN:  # in flight after our CLOSE: counted, dropped
            return
        stderr = isinstance(message, cm.ChannelExtendedData)
        if stderr and message.data_type != cm.EXTENDED_DATA_STDERR:  # type: ignore[union-attr]
            c.consumed += size  # a type RFC 4254 does not define: dropped, but the window is given back
        else:
            events.append(ChannelData(c.number, message.data, stderr))
            if self.auto_window:
                c.consumed += size
            else:
                c.unconsumed += size
        self._maybe_adjust(c)

    def _on_eof(self, c: _Channel, message: Message, events: list[object]) -> None:
        if c.eof_received:
            raise ChannelError(f"channel {c.number}: a second CHANNEL_EOF")
        c.eof_received = True
        if c.state is ChannelState.OPEN:
            events.append(ChannelEOF(c.number))

    def _on_close(self, c: _Channel, message: Message, events: list[object]) -> None:
        dropped = 0
        if not c.close_sent:  # answered once: queued data, EOF and requests give way to the CLOSE
            dropped = c.buffered
            c.outbox.clear()
            c.buffered = 0
            assert c.peer_number is not None
            self._outgoing.append(cm.ChannelClose(c.peer_number))
            c.close_sent = True
        events.append(ChannelClosed(c.number, dropped))

    def _on_request(self, c: _Channel, message: Message, events: list[object]) -> None:
        assert isinstance(message, cm.ChannelRequest)
        fields = cm.request_fields(message)  # malformed fields of a known type: DecodeError
        open_ = c.state is ChannelState.OPEN
        if message.want_reply and open_:
            if len(c.peer_requests) >= MAX_PENDING_REQUESTS:
                raise ChannelError(f"channel {c.number}: {MAX_PENDING_REQUESTS} requests of the peer are unanswered")
            c.peer_requests.append([message.request_type, None])
        if isinstance(fields, cm.ExitStatusRequest):
            events.append(ExitStatus(c.number, fields.status))
        elif isinstance(fields, cm.ExitSignalRequest):
            events.append(ExitSignal(c.number, fields.signal, fields.core_dumped, fields.message))
        elif open_:
            events.append(ChannelRequestReceived(c.number, message.request_type, fields, message.want_reply))
            return
        if message.want_reply and open_:  # exit-status/-signal with want_reply (RFC: FALSE): we answer it
            c.peer_requests[-1][1] = True
            self._send_replies(c)

    def _on_answer(self, c: _Channel, message: Message, events: list[object]) -> None:
        if not c.our_requests:
            raise ChannelError(f"channel {c.number}: {message.name} answers no request of ours")
        events.append(
            ChannelRequestAnswered(c.number, c.our_requests.popleft(), isinstance(message, cm.ChannelSuccess))
        )

    # -- plumbing ----------------------------------------------------------------------------------
    def _get(self, channel: int) -> _Channel:
        c = self._channels.get(channel)
        if c is None:
            raise ChannelStateError(f"channel {channel} is not in use")
        return c

    def _free_number(self) -> int:
        number = 0
        while number in self._channels:  # at most max_channels steps
            number += 1
        return number

    def _move(self, c: _Channel, row: Transition) -> None:
        c.state = row.target
        if c.state is ChannelState.CLOSED:
            del self._channels[c.number]  # both CLOSEs (or a refused open): the number is free
            return
        if c.state is ChannelState.OPEN or c.state is ChannelState.CLOSE_SENT:
            self._flush(c)

    def _sendable_now(self, c: _Channel) -> int:
        """Bytes of new data that would leave at once (nothing queued before it, the window open)."""
        if c.peer_number is None or c.outbox:
            return 0
        return c.peer_window

    def _flush(self, c: _Channel) -> None:
        """Send from the front of the outbox while the window allows (nothing before the confirmation)."""
        if c.peer_number is None or c.close_sent:
            return
        while c.outbox:
            item = c.outbox[0]
            if item[0] == "data":
                _, data_type, data = item
                chunk = min(len(data), c.peer_window, c.peer_max_packet, MAX_SEND_PACKET)
                if chunk == 0:
                    return  # the window is shut: wait for WINDOW_ADJUST
                piece, rest = bytes(data[:chunk]), data[chunk:]
                if data_type is None:
                    self._outgoing.append(cm.ChannelData(c.peer_number, piece))
                else:
                    self._outgoing.append(cm.ChannelExtendedData(c.peer_number, data_type, piece))
                c.peer_window -= chunk
                c.buffered -= chunk
                if rest:
                    c.outbox[0] = ("data", data_type, rest)
                    continue
            elif item[1] == "eof":
                self._outgoing.append(cm.ChannelEOF(c.peer_number))
            elif item[1] == "close":
                self._outgoing.append(cm.ChannelClose(c.peer_number))
                c.close_sent = True
                c.outbox.clear()
                c.peer_requests.clear()  # nothing may follow our CLOSE: pending replies are dropped
                return
            else:
                _, _, name, want_reply, data = item
                self._outgoing.append(cm.ChannelRequest(c.peer_number, name, want_reply, data))
            c.outbox.popleft()

    def _send_replies(self, c: _Channel) -> None:
        assert c.peer_number is not None
        while c.peer_requests and c.peer_requests[0][1] is not None:
            _, success = c.peer_requests.popleft()
            if not c.close_sent:
                self._outgoing.append((cm.ChannelSuccess if success else cm.ChannelFailure)(c.peer_number))

    def _maybe_adjust(self, c: _Channel) -> None:
        """Give consumed bytes back once they reach half the window (fewer, larger adjusts, as OpenSSH)."""
        if c.consumed and c.consumed >= self.window // 2 and c.state is ChannelState.OPEN and not c.eof_received:
            assert c.peer_number is not None
            self._outgoing.append(cm.ChannelWindowAdjust(c.peer_number, c.consumed))
            c.window += c.consumed
            c.consumed = 0


_Handler = Callable[[ConnectionProtocol, _Channel, Message, list[object]], None]
_HANDLERS: dict[ChannelInput, _Handler] = {
    _I.CHANNEL_OPEN_CONFIRMATION: ConnectionProtocol._on_confirmation,
    _I.CHANNEL_OPEN_FAILURE: ConnectionProtocol._on_open_failure,
    _I.CHANNEL_WINDOW_ADJUST: ConnectionProtocol._on_window_adjust,
    _I.CHANNEL_DATA: ConnectionProtocol._on_data,
    _I.CHANNEL_EXTENDED_DATA: ConnectionProtocol._on_data,
    _I.CHANNEL_EOF: ConnectionProtocol._on_eof,
    _I.CHANNEL_CLOSE: ConnectionProtocol._on_close,
    _I.CHANNEL_REQUEST: ConnectionProtocol._on_request,
    _I.CHANNEL_SUCCESS: ConnectionProtocol._on_answer,
    _I.CHANNEL_FAILURE: ConnectionProtocol._on_answer,
}
_MESSAGE_INPUTS: dict[type[Message], ChannelInput] = {
    cm.ChannelOpenConfirmation: _I.CHANNEL_OPEN_CONFIRMATION,
    cm.ChannelOpenFailure: _I.CHANNEL_OPEN_FAILURE,
    cm.ChannelWindowAdjust: _I.CHANNEL_WINDOW_ADJUST,
    cm.ChannelData: _I.CHANNEL_DATA,
    cm.ChannelExtendedData: _I.CHANNEL_EXTENDED_DATA,
    cm.ChannelEOF: _I.CHANNEL_EOF,
    cm.ChannelClose: _I.CHANNEL_CLOSE,
    cm.ChannelRequest: _I.CHANNEL_REQUEST,
    cm.ChannelSuccess: _I.CHANNEL_SUCCESS,
    cm.ChannelFailure: _I.CHANNEL_FAILURE,
}
