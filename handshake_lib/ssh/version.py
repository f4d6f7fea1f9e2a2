"""The SSH identification strings (RFC 4253 section 4.2), read and written without I/O.

Theory of operation
-------------------
Each side starts by sending one line, in clear, before any packet::

    SSH-protoversion-softwareversion SP comments CR LF          e.g. SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3

``protoversion`` is ``2.0`` (``1.99`` means "2.0, and 1.x as well": RFC 4253 section 5.1, accepted as
2.0); ``softwareversion`` has no spaces or minus signs; ``comments`` are optional.  The line without its
CR LF goes into the exchange hash (V_C and V_S), so it is kept byte for byte in
:attr:`Identification.line`.  A server may send other lines first (a legal notice, say); a client may
not, so :class:`IdentificationReader` skips them only in the client role.  The bytes after the line's LF
are the start of the first binary packet: :attr:`IdentificationReader.leftover`.

Limits, as OpenSSH enforces them in ``kex_exchange_identification`` (kex.c) unless noted:

* a line ends at LF; a CR must come right before it (a lone LF is accepted, as OpenSSH and asyncssh
  accept it); a NUL, or a CR followed by anything but LF, is a DecodeError;
* the version line is at most 255 bytes with its CR LF (RFC 4253 section 4.2; asyncssh also enforces
  255; OpenSSH only its general 8,192): a longer one is a DecodeError as soon as its 254th byte arrives;
* any other line is at most 8,192 bytes (``SSH_MAX_BANNER_LEN``), and the version line must be among
  the first 1,024 lines (``SSH_MAX_PRE_BANNER_LINES``), so at most 1,023 come before it;
* and at most 64 KiB of them in all (ours: OpenSSH keeps no lines, we keep them in
  :attr:`IdentificationReader.lines_before` to show them, so their total is bounded too);
* a line that starts with ``SSH-`` and more is the version line; one that does not parse as
  ``SSH-x.y-software`` is a DecodeError; a protocol other than 2.0 or 1.99 is ProtocolVersionError;
* a server receiving anything but ``SSH-`` first: ProtocolVersionError (OpenSSH: "client sent invalid
  protocol identifier").

Time limits are the driver's business (``net``): a peer that trickles a byte a minute never reaches these
byte limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import DecodeError, EncodeError, ProtocolError, ProtocolVersionError
from ..wire import Span

__all__ = [
    "Identification",
    "IdentificationReader",
    "our_identification",
    "SOFTWARE_VERSION",
    "MAX_VERSION_LINE",
    "MAX_LINE",
    "MAX_LINES_BEFORE",
    "MAX_BYTES_BEFORE",
]

SOFTWARE_VERSION = "HandshakesSSH_0.1"
MAX_VERSION_LINE = 255  # bytes, CR LF included (RFC 4253 section 4.2)
MAX_LINE = 8192  # bytes of any other line (OpenSSH's SSH_MAX_BANNER_LEN)
MAX_LINES_BEFORE = 1023  # the version line must be among the first 1,024 (OpenSSH's SSH_MAX_PRE_BANNER_LINES)
MAX_BYTES_BEFORE = 64 * 1024  # all the lines before the version line together (ours)

_PROTOCOL = re.compile(rb"([0-9]+)\.([0-9]+)")


def _text(data: bytes) -> str:
    # RFC 4253 asks for US-ASCII; peers send what they like, and we show it without failing on it.
    return data.decode("ascii", "backslashreplace")


@dataclass(frozen=True)
class Identification:
    """One identification line: ``SSH-{protocol_version}-{software_version}[ {comments}]``.

    ``line`` is the line without CR LF, exactly as sent (it goes into the exchange hash); ``spans``
    annotate it, at ``offset`` in the stream it was read from.
    """

    protocol_version: str
    software_version: str
    comments: str = ""
    line: bytes = b""
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.line:
            comments = f" {self.comments}" if self.comments else ""
            text = f"SSH-{self.protocol_version}-{self.software_version}{comments}"
            object.__setattr__(self, "line", text.encode("ascii", "backslashreplace"))

    @property
    def is_ssh2(self) -> bool:
        """True for 2.0 and for 1.99 (RFC 4253 section 5.1: a server that speaks both)."""
        return self.protocol_version in ("2.0", "1.99")

    def encode(self) -> bytes:
        """The line as sent: ``line`` and CR LF."""
        return self.line + b"\r\n"

    @classmethod
    def decode(cls, line: bytes, *, offset: int = 0) -> Identification:
        """Parse a version line (without its line end); ``offset`` places its spans in a stream."""
        if not line.startswith(b"SSH-"):
            raise DecodeError("an SSH identification starts with 'SSH-'", field="identification", offset=offset)
        dash = line.find(b"-", 4)
        if dash < 0:
            raise DecodeError("no '-' after the protocol version", field="identification.proto", offset=offset + 4)
        proto = line[4:dash]
        match = _PROTOCOL.fullmatch(proto)
        if match is None:
            raise DecodeError(
                f"protocol version {_text(proto)!r} is not 'major.minor'",
                field="identification.proto",
                offset=offset + 4,
            )
        rest = line[dash + 1 :]
        space = rest.find(b" ")
        software, comments = (rest, b"") if space < 0 else (rest[:space], rest[space + 1 :])
        if not software:
            raise DecodeError(
                "the software version is empty", field="identification.software", offset=offset + dash + 1
            )
        major, minor = int(match.group(1)), int(match.group(2))
        version = f"{major}.{minor}"
        if version not in ("2.0", "1.99"):
            raise ProtocolVersionError(
                f"the peer speaks SSH protocol {_text(proto)}; only 2.0 (or 1.99, meaning 2.0 too) is supported"
            )
        spans = [
            Span(offset, len(line), "identification", "the identification (V_C or V_S in the exchange hash)", 0, True),
            Span(offset, 4, "identification.magic", "'SSH-'", 1),
            Span(offset + 4, len(proto), "identification.proto", f"protocol version {version}", 1),
            Span(offset + dash, 1, "identification.dash", "'-'", 1),
            Span(offset + dash + 1, len(software), "identification.software", f"software version {_text(software)}", 1),
        ]
        if space >= 0:
            start = offset + dash + 1 + space
            spans.append(Span(start, 1, "identification.space", "' '", 1))
            spans.append(Span(start + 1, len(comments), "identification.comments", f"comments: {_text(comments)}", 1))
        return cls(_text(proto), _text(software), _text(comments), bytes(line), tuple(spans))


def our_identification(software: str = SOFTWARE_VERSION, comments: str = "") -> Identification:
    """The line we send: SSH-2.0, our software version, optional comments (checked: RFC 4253 section 4.2)."""
    if not software or any(not (0x21 <= ord(c) <= 0x7E) or c == "-" for c in software):
        raise EncodeError(f"software version {software!r} must be printable US-ASCII without spaces or '-'")
    if any(not (0x20 <= ord(c) <= 0x7E) for c in comments):
        raise EncodeError(f"comments {comments!r} must be printable US-ASCII")
    ident = Identification("2.0", software, comments)
    if len(ident.encode()) > MAX_VERSION_LINE:
        raise EncodeError(f"the identification line is {len(ident.encode())} bytes with CR LF; the limit is 255")
    return Identification.decode(ident.line)


class IdentificationReader:
    """Reads the peer's identification from a byte stream (``feed`` until it returns one).

    ``role`` is *our* role: a client skips lines before the version line (``lines_before`` keeps them),
    a server refuses them.  Once the line is read, ``identification`` holds it and ``leftover`` the
    bytes that followed (the first packet's start); later ``feed`` calls add to ``leftover``.
    """

    def __init__(
        self,
        role: Literal["client", "server"],
        *,
        max_lines_before: int = MAX_LINES_BEFORE,
        max_bytes_before: int = MAX_BYTES_BEFORE,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        self.role = role
        self.max_lines_before = max_lines_before
        self.max_bytes_before = max_bytes_before
        self.lines_before: list[bytes] = []
        self.identification: Identification | None = None
        self.leftover = b""
        self._line = bytearray()  # the line being read
        self._offset = 0  # stream offset of the line being read
        self._bytes_before = 0
        self._error: ProtocolError | None = None

    @property
    def done(self) -> bool:
        return self.identification is not None

    def feed(self, data: bytes) -> Identification | None:
        """Take bytes from the peer; the identification once its line is complete, else None.

        After an error the reader is finished: every later call raises the same error.
        """
        if self._error is not None:
            raise self._error
        if self.identification is not None:
            self.leftover += data
            return self.identification
        try:
            for index, byte in enumerate(data):
                if byte == 0x0A:  # LF: the line is complete
                    if self._finish_line():
                        self.leftover = bytes(data[index + 1 :])
                        return self.identification
                    continue
                self._take(byte)
        except ProtocolError as error:
            self._error = error
            raise
        return None

    def _take(self, byte: int) -> None:
        where = self._offset + len(self._line)
        if self._line.endswith(b"\r"):
            raise DecodeError("a CR not followed by LF in an identification line", field="identification", offset=where)
        if byte == 0:
            raise DecodeError("a NUL byte in an identification line", field="identification", offset=where)
        self._line.append(byte)
        is_version = self._line.startswith(b"SSH-") and len(self._line) > 4
        if is_version and len(self._line) > MAX_VERSION_LINE - 2 + (byte == 0x0D):
            raise DecodeError(
                f"the version line is longer than {MAX_VERSION_LINE} bytes with CR LF",
                field="identification",
                offset=self._offset,
            )
        if len(self._line) > MAX_LINE:
            raise DecodeError(
                f"a line longer than {MAX_LINE} bytes before the version line", field="identification", offset=where
            )
        if self.role == "server" and len(self._line) <= 4 and not b"SSH-".startswith(bytes(self._line)):
            # A server takes nothing before the version line, so it need not wait for the line's end.
            raise ProtocolVersionError(
                f"the client's first bytes {_text(bytes(self._line))!r} do not start 'SSH-': not an SSH client"
            )
        if not is_version and self._bytes_before + len(self._line) > self.max_bytes_before:
            raise DecodeError(
                f"more than {self.max_bytes_before} bytes before the version line", field="identification", offset=where
            )

    def _finish_line(self) -> bool:
        """A whole line is in ``_line`` (without its LF): the version line (True) or one to skip."""
        raw = bytes(self._line)
        length = len(raw) + 1
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line.startswith(b"SSH-") and len(line) > 4:
            self.identification = Identification.decode(line, offset=self._offset)
            return True
        if self.role == "server":
            raise ProtocolVersionError(f"the client's first line is {_text(line)!r}: not an SSH identification")
        if len(self.lines_before) >= self.max_lines_before:
            raise DecodeError(
                f"more than {self.max_lines_before} lines before the version line", field="identification",
                offset=self._offset,
            )
        self.lines_before.append(line)
        self._bytes_before += length
        self._offset += length
        self._line.clear()
        return False
