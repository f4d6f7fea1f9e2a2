"""SSH connection protocol messages (RFC 4254, numbers 80-100) and their type-specific fields.

Theory of operation
-------------------
Once user authentication succeeds, everything on an SSH connection is a *global request* (80-82: "forward
this port to me", "are you alive?") or a *channel* message (90-100).  A channel is one conversation among
several on the connection: a session running a command, or a TCP connection being forwarded.  Each side
names a channel by its own number, so every channel message carries the *recipient's* number for it.

The messages are frozen dataclasses in the style of :mod:`handshake_lib.ssh.messages` (same base class,
same mirrored ``decode_body``/``encode_body``, spans through :class:`~handshake_lib.wire.Reader`).  Three
of them end in fields that depend on a name: CHANNEL_OPEN and CHANNEL_OPEN_CONFIRMATION on the channel
type, CHANNEL_REQUEST on the request type, GLOBAL_REQUEST on the request name (and REQUEST_SUCCESS on the
request it answers, which only the requester knows).  Those fields are kept raw (``type_data``, ``data``),
as :class:`~handshake_lib.ssh.messages.UserauthRequest` keeps ``method_data``; the typed dataclasses below
decode and encode them, with spans, for the types this library speaks:

* channel types (RFC 4254 sections 6.1 and 7.2): ``session``, ``direct-tcpip``, ``forwarded-tcpip``;
* channel requests (sections 6.2-6.10): ``pty-req``, ``env``, ``shell``, ``exec``, ``subsystem``,
  ``window-change``, ``signal``, ``exit-status``, ``exit-signal``;
* global requests (section 7.1, and OpenSSH's ``keepalive@openssh.com``): ``tcpip-forward``,
  ``cancel-tcpip-forward``, ``keepalive@openssh.com`` (no data).

:func:`decode_open_fields`, :func:`decode_request_fields` and :func:`decode_global_fields` take the name
and the raw bytes (and ``base_offset``, where those bytes start in the payload, so spans point into the
packet); each typed class's ``encode()`` is the exact inverse.  A name we do not know is ``None`` from
:func:`open_fields`/:func:`request_fields`/:func:`global_fields` (a server answers it with a failure, it is
not malformed); a known name with malformed fields is :class:`~handshake_lib.errors.DecodeError`.

Text fields: names, addresses, commands, environment variables and signal names are decoded as UTF-8
(what OpenSSH, asyncssh and paramiko send); bytes that are not UTF-8 are a DecodeError.  Terminal modes
(``pty-req``) stay raw bytes (RFC 4254 section 8 encodes them as opcode/uint32 pairs, not decoded here).

Limits: every string lies inside the payload, which the packet layer bounds (256 KiB).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, ClassVar

from ..errors import DecodeError, EncodeError
from ..wire import Reader, Span, Writer
from .constants import MessageNumber
from .messages import MESSAGES, Message

__all__ = [
    "ChannelOpenFailureReason",
    "EXTENDED_DATA_STDERR",
    "GlobalRequest",
    "RequestSuccess",
    "RequestFailure",
    "ChannelOpen",
    "ChannelOpenConfirmation",
    "ChannelOpenFailure",
    "ChannelWindowAdjust",
    "ChannelData",
    "ChannelExtendedData",
    "ChannelEOF",
    "ChannelClose",
    "ChannelRequest",
    "ChannelSuccess",
    "ChannelFailure",
    "CHANNEL_MESSAGES",
    "TypedFields",
    "SessionOpen",
    "DirectTcpipOpen",
    "ForwardedTcpipOpen",
    "PtyRequest",
    "EnvRequest",
    "ShellRequest",
    "ExecRequest",
    "SubsystemRequest",
    "WindowChangeRequest",
    "SignalRequest",
    "ExitStatusRequest",
    "ExitSignalRequest",
    "TcpipForwardRequest",
    "CancelTcpipForwardRequest",
    "KeepaliveRequest",
    "OPEN_TYPES",
    "CHANNEL_REQUEST_TYPES",
    "GLOBAL_REQUEST_TYPES",
    "decode_open_fields",
    "decode_request_fields",
    "decode_global_fields",
    "open_fields",
    "request_fields",
    "global_fields",
]


class ChannelOpenFailureReason(IntEnum):
    """SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 section 5.1)."""

    ADMINISTRATIVELY_PROHIBITED = 1
    CONNECT_FAILED = 2
    UNKNOWN_CHANNEL_TYPE = 3
    RESOURCE_SHORTAGE = 4


EXTENDED_DATA_STDERR = 1  # SSH_EXTENDED_DATA_STDERR, the only data_type RFC 4254 section 5.2 defines


def _reason_name(value: int) -> str:
    try:
        return f"SSH_OPEN_{ChannelOpenFailureReason(value).name}"
    except ValueError:
        return f"unknown reason code {value}"


def _want_reply(v: bool) -> str:
    return "TRUE: answer me (SUCCESS or FAILURE)" if v else "FALSE: no answer"


def _recipient(r: Reader) -> int:
    return r.u32("recipient_channel", "the receiver's number for this channel")


# -- global requests (RFC 4254 section 4) ---------------------------------------------------------------
@dataclass(frozen=True)
class GlobalRequest(Message):
    """SSH_MSG_GLOBAL_REQUEST (80): a request about the whole connection; ``data`` depends on ``request_name``."""

    NUMBER: ClassVar[int] = MessageNumber.GLOBAL_REQUEST
    GROUP: ClassVar[str] = "global_request"
    request_name: str = ""
    want_reply: bool = False
    data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> GlobalRequest:
        name = r.ssh_text("request_name", "what is asked (tcpip-forward, keepalive@openssh.com, ...)")
        want_reply = r.ssh_boolean("want_reply", _want_reply)
        return cls(name, want_reply, r.rest("request_data", f"fields of {name!r} (see global_fields)"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.request_name).ssh_boolean(self.want_reply).raw(self.data)


@dataclass(frozen=True)
class RequestSuccess(Message):
    """SSH_MSG_REQUEST_SUCCESS (81): the oldest unanswered global request succeeded.

    ``data`` is request specific: a ``tcpip-forward`` for port 0 is answered with the uint32 port the
    server bound (:attr:`bound_port` reads it); most answers carry nothing.
    """

    NUMBER: ClassVar[int] = MessageNumber.REQUEST_SUCCESS
    GROUP: ClassVar[str] = "request_success"
    data: bytes = b""

    @property
    def bound_port(self) -> int | None:
        """The port in a ``tcpip-forward`` answer (exactly 4 bytes of data), else None."""
        return int.from_bytes(self.data, "big") if len(self.data) == 4 else None

    @classmethod
    def decode_body(cls, r: Reader) -> RequestSuccess:
        return cls(r.rest("response_data", lambda v: f"request specific ({len(v)} bytes)" if v else "none"))

    def encode_body(self, w: Writer) -> None:
        w.raw(self.data)


@dataclass(frozen=True)
class RequestFailure(Message):
    """SSH_MSG_REQUEST_FAILURE (82): the oldest unanswered global request failed (or is not known)."""

    NUMBER: ClassVar[int] = MessageNumber.REQUEST_FAILURE
    GROUP: ClassVar[str] = "request_failure"

    @classmethod
    def decode_body(cls, r: Reader) -> RequestFailure:
        return cls()

    def encode_body(self, w: Writer) -> None:
        pass


# -- opening a channel (RFC 4254 section 5.1) -----------------------------------------------------------
@dataclass(frozen=True)
class ChannelOpen(Message):
    """SSH_MSG_CHANNEL_OPEN (90): the sender's number for the new channel, its window and packet size."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_OPEN
    GROUP: ClassVar[str] = "channel_open"
    channel_type: str = "session"
    sender_channel: int = 0
    initial_window: int = 0
    max_packet: int = 0
    type_data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelOpen:
        kind = r.ssh_text("channel_type", "session, direct-tcpip, forwarded-tcpip, ...")
        sender = r.u32("sender_channel", "the opener's number for this channel")
        window = r.u32("initial_window_size", "bytes the opener will accept before a WINDOW_ADJUST")
        packet = r.u32("maximum_packet_size", "the largest data packet the opener accepts")
        return cls(kind, sender, window, packet, r.rest("type_data", f"fields of a {kind!r} channel"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.channel_type).u32(self.sender_channel).u32(self.initial_window).u32(self.max_packet)
        w.raw(self.type_data)


@dataclass(frozen=True)
class ChannelOpenConfirmation(Message):
    """SSH_MSG_CHANNEL_OPEN_CONFIRMATION (91): the channel is open; the answerer's number, window, packet size."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_OPEN_CONFIRMATION
    GROUP: ClassVar[str] = "channel_open_confirmation"
    recipient_channel: int = 0
    sender_channel: int = 0
    initial_window: int = 0
    max_packet: int = 0
    type_data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelOpenConfirmation:
        recipient = r.u32("recipient_channel", "the opener's number (its sender_channel)")
        sender = r.u32("sender_channel", "the answerer's number for this channel")
        window = r.u32("initial_window_size", "bytes the answerer will accept before a WINDOW_ADJUST")
        packet = r.u32("maximum_packet_size", "the largest data packet the answerer accepts")
        return cls(recipient, sender, window, packet, r.rest("type_data", "channel type specific (usually none)"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).u32(self.sender_channel).u32(self.initial_window).u32(self.max_packet)
        w.raw(self.type_data)


@dataclass(frozen=True)
class ChannelOpenFailure(Message):
    """SSH_MSG_CHANNEL_OPEN_FAILURE (92): the open is refused, with a reason code and text.

    ``reason`` is a :class:`ChannelOpenFailureReason` for codes 1-4, else the plain number.
    """

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_OPEN_FAILURE
    GROUP: ClassVar[str] = "channel_open_failure"
    recipient_channel: int = 0
    reason: int = ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED
    description: str = ""
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelOpenFailure:
        recipient = r.u32("recipient_channel", "the opener's number (its sender_channel)")
        code = r.u32("reason_code", _reason_name)
        try:
            reason: int = ChannelOpenFailureReason(code)
        except ValueError:
            reason = code
        description = r.ssh_text("description", "why (UTF-8)")
        return cls(recipient, reason, description, r.ssh_text("language_tag", "language of the text, usually empty"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).u32(self.reason).ssh_string(self.description).ssh_string(self.language)


# -- data and flow control (RFC 4254 sections 5.2 and 5.3) --------------------------------------------
@dataclass(frozen=True)
class ChannelWindowAdjust(Message):
    """SSH_MSG_CHANNEL_WINDOW_ADJUST (93): "you may send me ``bytes_to_add`` more bytes"."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_WINDOW_ADJUST
    GROUP: ClassVar[str] = "channel_window_adjust"
    recipient_channel: int = 0
    bytes_to_add: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelWindowAdjust:
        recipient = _recipient(r)
        return cls(recipient, r.u32("bytes_to_add", "bytes added to the sender's window"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).u32(self.bytes_to_add)


@dataclass(frozen=True)
class ChannelData(Message):
    """SSH_MSG_CHANNEL_DATA (94): bytes of the channel's stream (stdout of a command, a forwarded socket)."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_DATA
    GROUP: ClassVar[str] = "channel_data"
    recipient_channel: int = 0
    data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelData:
        recipient = _recipient(r)
        return cls(recipient, r.ssh_string("data", lambda v: f"{len(v)} bytes of the channel's stream"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).ssh_string(self.data)


@dataclass(frozen=True)
class ChannelExtendedData(Message):
    """SSH_MSG_CHANNEL_EXTENDED_DATA (95): a second stream; ``data_type`` 1 is stderr."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_EXTENDED_DATA
    GROUP: ClassVar[str] = "channel_extended_data"
    recipient_channel: int = 0
    data_type: int = EXTENDED_DATA_STDERR
    data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelExtendedData:
        recipient = _recipient(r)
        kind = r.u32("data_type_code", lambda v: "SSH_EXTENDED_DATA_STDERR" if v == 1 else f"unknown type {v}")
        return cls(recipient, kind, r.ssh_string("data", lambda v: f"{len(v)} bytes"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).u32(self.data_type).ssh_string(self.data)


@dataclass(frozen=True)
class ChannelEOF(Message):
    """SSH_MSG_CHANNEL_EOF (96): the sender will send no more data on this channel (it may still read)."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_EOF
    GROUP: ClassVar[str] = "channel_eof"
    recipient_channel: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelEOF:
        return cls(_recipient(r))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel)


@dataclass(frozen=True)
class ChannelClose(Message):
    """SSH_MSG_CHANNEL_CLOSE (97): the channel ends; each side sends one, and the number is free after both."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_CLOSE
    GROUP: ClassVar[str] = "channel_close"
    recipient_channel: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelClose:
        return cls(_recipient(r))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel)


# -- channel requests (RFC 4254 section 5.4) ----------------------------------------------------------
@dataclass(frozen=True)
class ChannelRequest(Message):
    """SSH_MSG_CHANNEL_REQUEST (98): exec, env, pty-req, exit-status...; ``type_data`` depends on the type."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_REQUEST
    GROUP: ClassVar[str] = "channel_request"
    recipient_channel: int = 0
    request_type: str = ""
    want_reply: bool = False
    type_data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelRequest:
        recipient = _recipient(r)
        kind = r.ssh_text("request_type", "exec, env, pty-req, shell, exit-status, ...")
        want_reply = r.ssh_boolean("want_reply", _want_reply)
        return cls(recipient, kind, want_reply, r.rest("type_data", f"fields of {kind!r} (see request_fields)"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel).ssh_string(self.request_type).ssh_boolean(self.want_reply).raw(self.type_data)


@dataclass(frozen=True)
class ChannelSuccess(Message):
    """SSH_MSG_CHANNEL_SUCCESS (99): the oldest unanswered request on this channel succeeded."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_SUCCESS
    GROUP: ClassVar[str] = "channel_success"
    recipient_channel: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelSuccess:
        return cls(_recipient(r))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel)


@dataclass(frozen=True)
class ChannelFailure(Message):
    """SSH_MSG_CHANNEL_FAILURE (100): the oldest unanswered request on this channel failed."""

    NUMBER: ClassVar[int] = MessageNumber.CHANNEL_FAILURE
    GROUP: ClassVar[str] = "channel_failure"
    recipient_channel: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> ChannelFailure:
        return cls(_recipient(r))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.recipient_channel)


CHANNEL_MESSAGES: tuple[type[Message], ...] = (
    GlobalRequest,
    RequestSuccess,
    RequestFailure,
    ChannelOpen,
    ChannelOpenConfirmation,
    ChannelOpenFailure,
    ChannelWindowAdjust,
    ChannelData,
    ChannelExtendedData,
    ChannelEOF,
    ChannelClose,
    ChannelRequest,
    ChannelSuccess,
    ChannelFailure,
)
# messages.py imports this module at its end, so decode_message knows 80-100 whichever module loads first.
MESSAGES.update({cls.NUMBER: cls for cls in CHANNEL_MESSAGES})


# -- type-specific fields -------------------------------------------------------------------------------
# Each typed class lists its wire fields once, in order, as (attribute, encoding, meaning); one generic
# decoder and one generic encoder read that list, so decode and encode cannot drift apart.
_Encoding = str  # "text" (UTF-8 string), "string" (raw bytes), "u32", "bool"


@dataclass(frozen=True)
class TypedFields:
    """Base of the decoded type-specific fields: ``KIND`` (the name on the wire), ``WIRE`` (the field list)."""

    KIND: ClassVar[str] = ""
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str | Callable[[Any], str]], ...]] = ()
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    def encode(self) -> bytes:
        w = Writer()
        for attribute, encoding, _ in self.WIRE:
            value = getattr(self, attribute)
            if encoding in ("text", "string"):
                w.ssh_string(value)
            elif encoding == "u32":
                w.u32(value)
            elif encoding == "bool":
                w.ssh_boolean(value)
            else:  # pragma: no cover - a typo in a WIRE list
                raise EncodeError(f"unknown encoding {encoding!r}")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, *, base_offset: int = 0) -> TypedFields:
        r = Reader(bytes(data), base_offset=base_offset)
        values: dict[str, Any] = {}
        with r.group(cls.KIND.replace("-", "_").replace("@", "_at_").replace(".", "_"), f"{cls.KIND} fields"):
            for attribute, encoding, meaning in cls.WIRE:
                if encoding == "text":
                    values[attribute] = r.ssh_text(attribute, meaning)
                elif encoding == "string":
                    values[attribute] = r.ssh_string(attribute, meaning)
                elif encoding == "u32":
                    values[attribute] = r.u32(attribute, meaning)
                else:
                    values[attribute] = r.ssh_boolean(attribute, meaning)
        r.expect_end(f"the {cls.KIND} fields")
        return cls(**values, spans=tuple(r.spans))

    def describe(self) -> dict[str, Any]:
        """The fields as a dict (what an event shows), without the spans."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "spans"}


# channel types (RFC 4254 sections 6.1, 7.1, 7.2)
@dataclass(frozen=True)
class SessionOpen(TypedFields):
    """``session``: a program (shell, command, subsystem) will run on the server; no fields."""

    KIND: ClassVar[str] = "session"


@dataclass(frozen=True)
class DirectTcpipOpen(TypedFields):
    """``direct-tcpip`` (ssh -L): the server connects to host:port for the client."""

    KIND: ClassVar[str] = "direct-tcpip"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("host", "text", "the host to connect to"),
        ("port", "u32", "the port to connect to"),
        ("originator_address", "text", "the address the connection came from"),
        ("originator_port", "u32", "the port it came from"),
    )
    host: str = ""
    port: int = 0
    originator_address: str = ""
    originator_port: int = 0


@dataclass(frozen=True)
class ForwardedTcpipOpen(TypedFields):
    """``forwarded-tcpip`` (ssh -R): a connection arrived on a port the client asked the server to listen on."""

    KIND: ClassVar[str] = "forwarded-tcpip"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("connected_address", "text", "the address that was connected (as in tcpip-forward)"),
        ("connected_port", "u32", "the port that was connected"),
        ("originator_address", "text", "the address the connection came from"),
        ("originator_port", "u32", "the port it came from"),
    )
    connected_address: str = ""
    connected_port: int = 0
    originator_address: str = ""
    originator_port: int = 0


# channel requests (RFC 4254 sections 6.2-6.10)
@dataclass(frozen=True)
class PtyRequest(TypedFields):
    """``pty-req`` (6.2): a pseudo-terminal; ``modes`` are RFC 4254 section 8's encoded terminal modes, raw."""

    KIND: ClassVar[str] = "pty-req"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("term", "text", "TERM, e.g. xterm-256color"),
        ("columns", "u32", "terminal width, characters"),
        ("rows", "u32", "terminal height, rows"),
        ("width_pixels", "u32", "terminal width, pixels (0: unknown)"),
        ("height_pixels", "u32", "terminal height, pixels (0: unknown)"),
        ("modes", "string", "encoded terminal modes (opcode, uint32 value)*, TTY_OP_END"),
    )
    term: str = "vt100"
    columns: int = 80
    rows: int = 24
    width_pixels: int = 0
    height_pixels: int = 0
    modes: bytes = b""


@dataclass(frozen=True)
class EnvRequest(TypedFields):
    """``env`` (6.4): set an environment variable for the program to come (sshd: only AcceptEnv names)."""

    KIND: ClassVar[str] = "env"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("name", "text", "variable name"),
        ("value", "text", "variable value"),
    )
    name: str = ""
    value: str = ""


@dataclass(frozen=True)
class ShellRequest(TypedFields):
    """``shell`` (6.5): start the user's login shell; no fields."""

    KIND: ClassVar[str] = "shell"


@dataclass(frozen=True)
class ExecRequest(TypedFields):
    """``exec`` (6.5): run one command (the user's shell runs it, as ``sh -c``)."""

    KIND: ClassVar[str] = "exec"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (("command", "text", "the command line to run"),)
    command: str = ""


@dataclass(frozen=True)
class SubsystemRequest(TypedFields):
    """``subsystem`` (6.5): run a named service, e.g. ``sftp``."""

    KIND: ClassVar[str] = "subsystem"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (("name", "text", "the subsystem, e.g. sftp"),)
    name: str = ""


@dataclass(frozen=True)
class WindowChangeRequest(TypedFields):
    """``window-change`` (6.7): the terminal was resized; sent without want_reply."""

    KIND: ClassVar[str] = "window-change"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("columns", "u32", "terminal width, characters"),
        ("rows", "u32", "terminal height, rows"),
        ("width_pixels", "u32", "terminal width, pixels"),
        ("height_pixels", "u32", "terminal height, pixels"),
    )
    columns: int = 80
    rows: int = 24
    width_pixels: int = 0
    height_pixels: int = 0


@dataclass(frozen=True)
class SignalRequest(TypedFields):
    """``signal`` (6.9): deliver a signal (name without SIG, e.g. ``INT``) to the program."""

    KIND: ClassVar[str] = "signal"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (("signal", "text", "signal name without SIG"),)
    signal: str = ""


@dataclass(frozen=True)
class ExitStatusRequest(TypedFields):
    """``exit-status`` (6.10): the program ended with this status (server to client, no want_reply)."""

    KIND: ClassVar[str] = "exit-status"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (("status", "u32", "the program's exit status"),)
    status: int = 0


@dataclass(frozen=True)
class ExitSignalRequest(TypedFields):
    """``exit-signal`` (6.10): the program was killed by a signal."""

    KIND: ClassVar[str] = "exit-signal"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str | Callable[[Any], str]], ...]] = (
        ("signal", "text", "signal name without SIG, e.g. TERM"),
        ("core_dumped", "bool", lambda v: "TRUE: core dumped" if v else "FALSE: no core"),
        ("message", "text", "error message (UTF-8)"),
        ("language", "text", "language tag, usually empty"),
    )
    signal: str = ""
    core_dumped: bool = False
    message: str = ""
    language: str = ""


# global requests (RFC 4254 section 7.1; OpenSSH PROTOCOL)
@dataclass(frozen=True)
class TcpipForwardRequest(TypedFields):
    """``tcpip-forward`` (ssh -R): listen on address:port and open forwarded-tcpip channels back; port 0:
    any port, answered in REQUEST_SUCCESS."""

    KIND: ClassVar[str] = "tcpip-forward"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("address", "text", "address to bind ('' all, 'localhost', ...)"),
        ("port", "u32", "port to bind (0: the server picks)"),
    )
    address: str = ""
    port: int = 0


@dataclass(frozen=True)
class CancelTcpipForwardRequest(TypedFields):
    """``cancel-tcpip-forward``: stop a tcpip-forward."""

    KIND: ClassVar[str] = "cancel-tcpip-forward"
    WIRE: ClassVar[tuple[tuple[str, _Encoding, str], ...]] = (
        ("address", "text", "the address bound"),
        ("port", "u32", "the port bound"),
    )
    address: str = ""
    port: int = 0


@dataclass(frozen=True)
class KeepaliveRequest(TypedFields):
    """``keepalive@openssh.com``: "are you there?" (OpenSSH's ServerAliveInterval); no fields, answered
    with REQUEST_FAILURE by servers that do not know it, which is answer enough."""

    KIND: ClassVar[str] = "keepalive@openssh.com"


def _index(*classes: type[TypedFields]) -> dict[str, type[TypedFields]]:
    return {cls.KIND: cls for cls in classes}


OPEN_TYPES = _index(SessionOpen, DirectTcpipOpen, ForwardedTcpipOpen)
CHANNEL_REQUEST_TYPES = _index(
    PtyRequest, EnvRequest, ShellRequest, ExecRequest, SubsystemRequest, WindowChangeRequest, SignalRequest,
    ExitStatusRequest, ExitSignalRequest,
)  # fmt: skip
GLOBAL_REQUEST_TYPES = _index(TcpipForwardRequest, CancelTcpipForwardRequest, KeepaliveRequest)


def _decode(table: dict[str, type[TypedFields]], what: str, name: str, data: bytes, base_offset: int) -> TypedFields:
    cls = table.get(name)
    if cls is None:
        raise DecodeError(f"{what} {name!r} has no decoder here", field=what.replace(" ", "_"), offset=base_offset)
    return cls.decode(data, base_offset=base_offset)


def decode_open_fields(channel_type: str, data: bytes, *, base_offset: int = 0) -> TypedFields:
    """The fields of a CHANNEL_OPEN's ``type_data``; DecodeError if malformed or a type we do not know."""
    return _decode(OPEN_TYPES, "channel type", channel_type, data, base_offset)


def decode_request_fields(request_type: str, data: bytes, *, base_offset: int = 0) -> TypedFields:
    """The fields of a CHANNEL_REQUEST's ``type_data``; DecodeError if malformed or a type we do not know."""
    return _decode(CHANNEL_REQUEST_TYPES, "request type", request_type, data, base_offset)


def decode_global_fields(request_name: str, data: bytes, *, base_offset: int = 0) -> TypedFields:
    """The fields of a GLOBAL_REQUEST's ``data``; DecodeError if malformed or a name we do not know."""
    return _decode(GLOBAL_REQUEST_TYPES, "request name", request_name, data, base_offset)


# Where the raw fields start in each message's payload, so the typed spans point into the packet.
def _offset_after(*parts: int) -> int:
    return sum(parts)


def open_fields(message: ChannelOpen) -> TypedFields | None:
    """The typed fields of a CHANNEL_OPEN, None for a channel type we do not know (answer UNKNOWN_CHANNEL_TYPE)."""
    if message.channel_type not in OPEN_TYPES:
        return None
    offset = _offset_after(1, 4 + len(message.channel_type.encode()), 12)
    return decode_open_fields(message.channel_type, message.type_data, base_offset=offset)


def request_fields(message: ChannelRequest) -> TypedFields | None:
    """The typed fields of a CHANNEL_REQUEST, None for a request type we do not know (answer FAILURE)."""
    if message.request_type not in CHANNEL_REQUEST_TYPES:
        return None
    offset = _offset_after(1, 4, 4 + len(message.request_type.encode()), 1)
    return decode_request_fields(message.request_type, message.type_data, base_offset=offset)


def global_fields(message: GlobalRequest) -> TypedFields | None:
    """The typed fields of a GLOBAL_REQUEST, None for a name we do not know (answer REQUEST_FAILURE)."""
    if message.request_name not in GLOBAL_REQUEST_TYPES:
        return None
    offset = _offset_after(1, 4 + len(message.request_name.encode()), 1)
    return decode_global_fields(message.request_name, message.data, base_offset=offset)
