"""SFTP version 3 (draft-ietf-secsh-filexfer-02): the packet codec, a client core and a server core.

Theory of operation
-------------------
SFTP runs inside an SSH channel opened for the ``sftp`` subsystem, but its byte stream knows nothing of
SSH: OpenSSH's ``sftp-server`` speaks it on stdin/stdout and ``sftp -D PROGRAM`` talks to a local
program over pipes.  Every packet is framed the same way (draft-02 section 3)::

    uint32 length    (of what follows)
    byte   type      (SSH_FXP_*: PacketType)
    uint32 request-id  (every packet but INIT and VERSION)
    ...    type-specific fields (strings, uint32/uint64, ATTRS)

The client sends requests, each with an id it chose; the server answers each with STATUS, HANDLE,
DATA, NAME or ATTRS carrying the same id, possibly out of order, so a client may keep many requests in
flight (that is how ``sftp`` reads a file fast: 64 READs of 32 KiB outstanding).

* Packets are frozen dataclasses (:class:`SFTPPacket` subclasses) with mirrored ``decode``/``encode``:
  ``decode_packet(encode(p)) == p``; the decoder records a :class:`~handshake_lib.wire.Span` per field.
  Each class lists its fields in ``FIELDS`` (name, kind, meaning), and one generic reader/writer walks
  that list, so the two directions cannot drift apart.  A type we do not model decodes to
  :class:`UnknownPacket` (its request id read, its body kept), which a server answers with
  SSH_FX_OP_UNSUPPORTED, as ``sftp-server``'s ``handle_unknown`` does.
* :class:`Attributes` is draft-02's ATTRS: a flags word saying which of size, uid/gid, permissions,
  atime/mtime and extended pairs follow.
* :class:`PacketReader` cuts a byte stream into packets, refusing a length over
  :data:`MAX_PACKET_LENGTH` (OpenSSH's ``SFTP_MAX_MSG_LENGTH``, 256 KiB) as soon as the four length bytes
  arrive, before buffering any of the body: :class:`~handshake_lib.errors.SFTPPacketTooLarge`.
* :class:`SFTPServer` (sans-I/O: ``receive_data(bytes)``, ``data_to_send()``) answers requests from a
  :class:`FileSystem` (a Protocol; ``net.sftp_root.ConfinedRoot`` is the one we ship).  What it does with a
  broken peer follows ``sftp-server.c`` (OpenSSH 9.2, checked in ``tests/test_net_sftp.py``): a first
  packet other than INIT, an oversized packet or a packet too short for its fields end the session
  (OpenSSH's server exits; ours sets ``closed`` and raises the typed error); bytes left over after the
  fields are skipped; a second INIT is answered with VERSION again.  One deliberate difference: a
  request type we do not serve is answered OP_UNSUPPORTED (draft-02 section 7) where ``sftp-server``
  logs "Unknown message" and answers nothing, leaving its client waiting; an unknown EXTENDED request
  is answered OP_UNSUPPORTED by both.  Output is bounded as in OpenSSH's server: a request is taken
  only while the outgoing queue has room for a maximal answer; the others wait in the input buffer, and
  ``wants_input`` tells the driver when to stop reading.
* :class:`SFTPClient` (sans-I/O) sends INIT, then requests: each method queues one request and returns
  its id; ``receive_data(bytes)`` returns events (:class:`VersionReceived`, :class:`ResponseReceived`,
  :class:`ReadFinished`).  A response whose id matches no outstanding request is an
  :class:`~handshake_lib.errors.SFTPProtocolError`.  At most ``max_in_flight`` requests are outstanding
  (a method past it raises :class:`~handshake_lib.errors.SFTPError`); :meth:`SFTPClient.read_file`
  pipelines READs of ``chunk`` bytes through a window, re-asking for the rest of a short read as
  ``sftp`` does, and reports the whole content in one :class:`ReadFinished`.

Paths are bytes on the wire (draft-02 leaves their encoding open; OpenSSH passes them through); we read
them as UTF-8 with ``surrogateescape``, so any byte string survives a round trip unchanged.
"""

from __future__ import annotations

import errno
import stat as stat_module
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Protocol

from ..errors import (
    ConnectionStateError,
    DecodeError,
    EncodeError,
    SFTPError,
    SFTPPacketTooLarge,
    SFTPProtocolError,
    SFTPStatusError,
)
from ..wire import Reader, Span, Writer

__all__ = [
    "SFTP_VERSION",
    "MAX_PACKET_LENGTH",
    "MAX_READ_LENGTH",
    "MAX_EXTENSIONS",
    "MAX_HANDLES",
    "MAX_NAMES_PER_READDIR",
    "MAX_SERVER_OUTPUT",
    "MAX_SERVER_INPUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "MAX_IN_FLIGHT",
    "MAX_READ_FILE_SIZE",
    "PacketType",
    "StatusCode",
    "OpenFlags",
    "AttributeFlags",
    "Attributes",
    "Name",
    "SFTPPacket",
    "Init",
    "Version",
    "Open",
    "Close",
    "Read",
    "Write",
    "Lstat",
    "Fstat",
    "Setstat",
    "Fsetstat",
    "Opendir",
    "Readdir",
    "Remove",
    "Mkdir",
    "Rmdir",
    "Realpath",
    "Stat",
    "Rename",
    "Readlink",
    "Status",
    "Handle",
    "Data",
    "NameReply",
    "AttrsReply",
    "UnknownPacket",
    "PACKETS",
    "decode_packet",
    "frame",
    "PacketReader",
    "FileSystem",
    "longname",
    "status_for_errno",
    "SFTPServer",
    "SFTPClient",
    "VersionReceived",
    "ResponseReceived",
    "ReadFinished",
]

SFTP_VERSION = 3  # draft-ietf-secsh-filexfer-02, the version OpenSSH speaks
MAX_PACKET_LENGTH = 256 * 1024  # OpenSSH's SFTP_MAX_MSG_LENGTH: the length field past which both ends give up
MAX_READ_LENGTH = MAX_PACKET_LENGTH - 1024  # OpenSSH's SFTP_MAX_READ_LENGTH: a longer READ is served short
MAX_EXTENSIONS = 64  # extension pairs in INIT/VERSION and in one ATTRS (OpenSSH sends about 15)
MAX_HANDLES = 256  # open files and directories per session; one more is answered FAILURE
MAX_NAMES_PER_READDIR = 100  # entries per NAME answer to READDIR (sftp-server's own batch size)
MAX_SERVER_OUTPUT = 4 * MAX_PACKET_LENGTH  # answers queued before the server stops taking requests
MAX_SERVER_INPUT = 4 * MAX_PACKET_LENGTH  # bytes of unprocessed requests past which wants_input is False
DEFAULT_MAX_IN_FLIGHT = 64  # requests a client keeps outstanding (OpenSSH sftp's default, -R 64)
MAX_IN_FLIGHT = 1024  # the most SFTPClient(max_in_flight=...) accepts
MAX_READ_FILE_SIZE = 64 * 1024 * 1024  # the most read_file collects in memory unless told otherwise
_DEFAULT_CHUNK = 32 * 1024  # OpenSSH sftp's default read/write size without limits@openssh.com


class PacketType(IntEnum):
    """SSH_FXP_* (draft-02 section 3)."""

    INIT = 1
    VERSION = 2
    OPEN = 3
    CLOSE = 4
    READ = 5
    WRITE = 6
    LSTAT = 7
    FSTAT = 8
    SETSTAT = 9
    FSETSTAT = 10
    OPENDIR = 11
    READDIR = 12
    REMOVE = 13
    MKDIR = 14
    RMDIR = 15
    REALPATH = 16
    STAT = 17
    RENAME = 18
    READLINK = 19
    SYMLINK = 20
    STATUS = 101
    HANDLE = 102
    DATA = 103
    NAME = 104
    ATTRS = 105
    EXTENDED = 200
    EXTENDED_REPLY = 201


class StatusCode(IntEnum):
    """SSH_FX_* (draft-02 section 7), with ``sftp-server``'s texts in :data:`STATUS_MESSAGES`."""

    OK = 0
    EOF = 1
    NO_SUCH_FILE = 2
    PERMISSION_DENIED = 3
    FAILURE = 4
    BAD_MESSAGE = 5
    NO_CONNECTION = 6
    CONNECTION_LOST = 7
    OP_UNSUPPORTED = 8


# The texts OpenSSH's sftp-server puts in a STATUS (status_to_message), so sftp prints the same to both.
STATUS_MESSAGES = {
    StatusCode.OK: "Success",
    StatusCode.EOF: "End of file",
    StatusCode.NO_SUCH_FILE: "No such file",
    StatusCode.PERMISSION_DENIED: "Permission denied",
    StatusCode.FAILURE: "Failure",
    StatusCode.BAD_MESSAGE: "Bad message",
    StatusCode.NO_CONNECTION: "No connection",
    StatusCode.CONNECTION_LOST: "Connection lost",
    StatusCode.OP_UNSUPPORTED: "Operation unsupported",
}


class OpenFlags(IntFlag):
    """SSH_FXF_* pflags of OPEN (draft-02 section 6.3)."""

    READ = 0x01
    WRITE = 0x02
    APPEND = 0x04
    CREAT = 0x08
    TRUNC = 0x10
    EXCL = 0x20


class AttributeFlags(IntFlag):
    """SSH_FILEXFER_ATTR_* (draft-02 section 5): which ATTRS fields follow the flags word."""

    SIZE = 0x00000001
    UIDGID = 0x00000002
    PERMISSIONS = 0x00000004
    ACMODTIME = 0x00000008
    EXTENDED = 0x80000000


def _name(enum: type[IntEnum], prefix: str) -> Callable[[int], str]:
    def meaning(value: int) -> str:
        try:
            return prefix + enum(value).name
        except ValueError:
            return f"unknown ({value})"

    return meaning


def _flags_meaning(enum: type[IntFlag], prefix: str) -> Callable[[int], str]:
    def meaning(value: int) -> str:
        names = [prefix + member.name for member in enum if member.name and value & member]
        known = 0
        for member in enum:
            known |= member
        if value & ~known:
            names.append(f"unknown bits {value & ~known:#x}")
        return " | ".join(names) if names else "none"

    return meaning


def _decode_text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _encode_text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


# -- ATTRS ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attributes:
    """ATTRS (draft-02 section 5): each field is None when its flag is clear.

    ``uid`` and ``gid`` travel together (one flag), as do ``atime`` and ``mtime``; ``extended`` holds
    (type, data) pairs.  ``flags`` is computed from which fields are set.
    """

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    atime: int | None = None
    mtime: int | None = None
    extended: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        if (self.uid is None) != (self.gid is None):
            raise EncodeError("ATTRS carries uid and gid together (SSH_FILEXFER_ATTR_UIDGID)")
        if (self.atime is None) != (self.mtime is None):
            raise EncodeError("ATTRS carries atime and mtime together (SSH_FILEXFER_ATTR_ACMODTIME)")
        if len(self.extended) > MAX_EXTENSIONS:
            raise EncodeError(f"more than {MAX_EXTENSIONS} extended attributes")

    @property
    def flags(self) -> AttributeFlags:
        flags = AttributeFlags(0)
        if self.size is not None:
            flags |= AttributeFlags.SIZE
        if self.uid is not None:
            flags |= AttributeFlags.UIDGID
        if self.permissions is not None:
            flags |= AttributeFlags.PERMISSIONS
        if self.atime is not None:
            flags |= AttributeFlags.ACMODTIME
        if self.extended:
            flags |= AttributeFlags.EXTENDED
        return flags

    @property
    def is_dir(self) -> bool:
        return self.permissions is not None and stat_module.S_ISDIR(self.permissions)

    @property
    def is_regular(self) -> bool:
        return self.permissions is not None and stat_module.S_ISREG(self.permissions)

    @property
    def is_symlink(self) -> bool:
        return self.permissions is not None and stat_module.S_ISLNK(self.permissions)

    @classmethod
    def decode(cls, r: Reader, field_name: str = "attrs") -> Attributes:
        with r.group(field_name, "ATTRS (draft-02 section 5)") as a:
            offset = a.offset
            flags = a.u32("flags", _flags_meaning(AttributeFlags, "SSH_FILEXFER_ATTR_"))
            known = 0
            for member in AttributeFlags:
                known |= member
            if flags & ~known:
                # Unknown bits would mean fields we cannot skip (their lengths are unknown): malformed.
                raise DecodeError(
                    f"ATTRS flags {flags:#x} has bits draft-02 does not define", field="flags", offset=offset
                )
            size = a.u64("size", "file size in bytes") if flags & AttributeFlags.SIZE else None
            uid = gid = None
            if flags & AttributeFlags.UIDGID:
                uid = a.u32("uid", "owner's numeric user id")
                gid = a.u32("gid", "group's numeric id")
            permissions = (
                a.u32("permissions", lambda v: f"{stat_module.filemode(v)} ({v:o})")
                if flags & AttributeFlags.PERMISSIONS
                else None
            )
            atime = mtime = None
            if flags & AttributeFlags.ACMODTIME:
                atime = a.u32("atime", "last access, seconds since 1970 UTC")
                mtime = a.u32("mtime", "last modification, seconds since 1970 UTC")
            extended: list[tuple[bytes, bytes]] = []
            if flags & AttributeFlags.EXTENDED:
                count_offset = a.offset
                count = a.u32("extended_count", "number of extended type/data pairs")
                if count > MAX_EXTENSIONS:
                    raise DecodeError(
                        f"{count} extended attributes, more than {MAX_EXTENSIONS}",
                        field="extended_count",
                        offset=count_offset,
                    )
                for _ in range(count):
                    extended.append((a.ssh_string("extended_type", "name@domain"), a.ssh_string("extended_data")))
        return cls(size, uid, gid, permissions, atime, mtime, tuple(extended))

    def encode(self, w: Writer) -> None:
        w.u32(self.flags)
        if self.size is not None:
            w.u64(self.size)
        if self.uid is not None and self.gid is not None:
            w.u32(self.uid).u32(self.gid)
        if self.permissions is not None:
            w.u32(self.permissions)
        if self.atime is not None and self.mtime is not None:
            w.u32(self.atime).u32(self.mtime)
        if self.extended:
            w.u32(len(self.extended))
            for kind, data in self.extended:
                w.ssh_string(kind).ssh_string(data)


@dataclass(frozen=True)
class Name:
    """One entry of a NAME answer: the file name, an ``ls -l`` line (``longname``) and its ATTRS."""

    filename: str
    longname: str = ""
    attrs: Attributes = field(default_factory=Attributes)


# -- packets -------------------------------------------------------------------------------------------
# Field kinds the generic reader and writer know: u32, u64, bytes (a string kept as bytes), text (a
# string read as UTF-8 with surrogateescape), attrs, extensions (name/data pairs to the end), names
# (uint32 count, then filename/longname/ATTRS triples).
FieldSpec = tuple[str, str, str]  # (attribute, kind, meaning)

_MIN_NAME_ENTRY = 4 + 4 + 4  # two empty strings and an empty ATTRS: bounds a NAME count by the bytes left


def _read_field(r: Reader, name: str, kind: str, meaning: str) -> Any:
    if kind == "u32":
        return r.u32(name, meaning)
    if kind == "u64":
        return r.u64(name, meaning)
    if kind == "bytes":
        return r.ssh_string(name, meaning)
    if kind == "text":
        return _decode_text(r.ssh_string(name, meaning))
    if kind == "attrs":
        return Attributes.decode(r, name)
    if kind == "extensions":
        pairs: list[tuple[str, bytes]] = []
        while not r.at_end:
            if len(pairs) == MAX_EXTENSIONS:
                raise DecodeError(f"more than {MAX_EXTENSIONS} extensions", field=name, offset=r.offset)
            with r.group(name, meaning):
                pairs.append((_decode_text(r.ssh_string("name", "extension name")), r.ssh_string("data")))
        return tuple(pairs)
    if kind == "names":
        offset = r.offset
        count = r.u32(f"{name}_count", "number of names that follow")
        if count * _MIN_NAME_ENTRY > r.remaining:
            raise DecodeError(f"{count} names cannot fit in {r.remaining} bytes", field=f"{name}_count", offset=offset)
        entries = []
        for _ in range(count):
            with r.group("name", meaning):
                filename = _decode_text(r.ssh_string("filename", "the name"))
                long = _decode_text(r.ssh_string("longname", "an ls -l line for people, not to be parsed"))
                entries.append(Name(filename, long, Attributes.decode(r)))
        return tuple(entries)
    raise AssertionError(kind)


def _write_field(w: Writer, kind: str, value: Any) -> None:
    if kind == "u32":
        w.u32(value)
    elif kind == "u64":
        w.u64(value)
    elif kind == "bytes":
        w.ssh_string(value)
    elif kind == "text":
        w.ssh_string(_encode_text(value))
    elif kind == "attrs":
        value.encode(w)
    elif kind == "extensions":
        for extension, data in value:
            w.ssh_string(_encode_text(extension)).ssh_string(data)
    elif kind == "names":
        w.u32(len(value))
        for entry in value:
            w.ssh_string(_encode_text(entry.filename)).ssh_string(_encode_text(entry.longname))
            entry.attrs.encode(w)
    else:  # pragma: no cover - FIELDS are ours
        raise AssertionError(kind)


@dataclass(frozen=True)
class SFTPPacket:
    """Base of every packet: type byte, request id (but for INIT/VERSION), then ``FIELDS``.

    ``spans`` holds what :func:`decode_packet` recorded (offsets within the packet, length field
    included); it takes no part in equality.
    """

    TYPE: ClassVar[int]
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()
    HAS_ID: ClassVar[bool] = True
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    @property
    def type_name(self) -> str:
        try:
            return "SSH_FXP_" + PacketType(self.TYPE).name
        except ValueError:
            return f"SSH_FXP type {self.TYPE}"

    @classmethod
    def decode_body(cls, r: Reader, packet_type: int) -> SFTPPacket:
        values = {}
        if cls.HAS_ID:
            values["request_id"] = r.u32("request_id", "chosen by the client, echoed in the answer")
        for name, kind, meaning in cls.FIELDS:
            values[name] = _read_field(r, name, kind, meaning)
        return cls(**values)

    def encode_body(self, w: Writer) -> None:
        if self.HAS_ID:
            w.u32(self.request_id)  # type: ignore[attr-defined]
        for name, kind, _ in self.FIELDS:
            _write_field(w, kind, getattr(self, name))

    @property
    def packet_type(self) -> int:
        return self.TYPE

    def payload(self) -> bytes:
        """Type byte and body: what the length field counts."""
        w = Writer().u8(self.packet_type)
        self.encode_body(w)
        return w.getvalue()

    def to_bytes(self) -> bytes:
        """The whole packet, length field first."""
        return frame(self.payload())


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_PACKET_LENGTH:
        raise EncodeError(f"an SFTP packet of {len(payload)} bytes is longer than {MAX_PACKET_LENGTH}")
    return len(payload).to_bytes(4, "big") + payload


@dataclass(frozen=True)
class Init(SFTPPacket):
    """SSH_FXP_INIT: the client's version (3) and extensions; no request id."""

    TYPE: ClassVar[int] = PacketType.INIT
    HAS_ID: ClassVar[bool] = False
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("version", "u32", "the highest SFTP version the client speaks"),
        ("extensions", "extensions", "extension name and data"),
    )
    version: int = SFTP_VERSION
    extensions: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Version(SFTPPacket):
    """SSH_FXP_VERSION: the version the server will use and its extensions; no request id."""

    TYPE: ClassVar[int] = PacketType.VERSION
    HAS_ID: ClassVar[bool] = False
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("version", "u32", "the SFTP version for this session"),
        ("extensions", "extensions", "extension name and data (OpenSSH: posix-rename@openssh.com, ...)"),
    )
    version: int = SFTP_VERSION
    extensions: tuple[tuple[str, bytes], ...] = ()


_PATH: FieldSpec = ("path", "text", "a path on the server")
_HANDLE: FieldSpec = ("handle", "bytes", "an opaque handle the server returned")


@dataclass(frozen=True)
class Open(SFTPPacket):
    """SSH_FXP_OPEN: open ``path`` with ``pflags`` (OpenFlags); ``attrs`` for a file it creates."""

    TYPE: ClassVar[int] = PacketType.OPEN
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("path", "text", "the file to open"),
        ("pflags", "u32", "SSH_FXF_READ/WRITE/APPEND/CREAT/TRUNC/EXCL"),
        ("attrs", "attrs", "initial attributes of a created file"),
    )
    request_id: int
    path: str
    pflags: int = OpenFlags.READ
    attrs: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class Close(SFTPPacket):
    """SSH_FXP_CLOSE: release a file or directory handle."""

    TYPE: ClassVar[int] = PacketType.CLOSE
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_HANDLE,)
    request_id: int
    handle: bytes


@dataclass(frozen=True)
class Read(SFTPPacket):
    """SSH_FXP_READ: up to ``length`` bytes at ``offset``; DATA (maybe shorter) or STATUS EOF."""

    TYPE: ClassVar[int] = PacketType.READ
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        _HANDLE,
        ("offset", "u64", "byte offset in the file"),
        ("length", "u32", "the most bytes wanted"),
    )
    request_id: int
    handle: bytes
    offset: int
    length: int


@dataclass(frozen=True)
class Write(SFTPPacket):
    """SSH_FXP_WRITE: ``data`` at ``offset``; answered by STATUS."""

    TYPE: ClassVar[int] = PacketType.WRITE
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        _HANDLE,
        ("offset", "u64", "byte offset in the file"),
        ("data", "bytes", "the bytes to write"),
    )
    request_id: int
    handle: bytes
    offset: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class _PathRequest(SFTPPacket):
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_PATH,)
    request_id: int
    path: str


@dataclass(frozen=True)
class _HandleRequest(SFTPPacket):
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_HANDLE,)
    request_id: int
    handle: bytes


@dataclass(frozen=True)
class Lstat(_PathRequest):
    """SSH_FXP_LSTAT: attributes of ``path`` itself (a symbolic link is not followed)."""

    TYPE: ClassVar[int] = PacketType.LSTAT


@dataclass(frozen=True)
class Stat(_PathRequest):
    """SSH_FXP_STAT: attributes of ``path`` (a symbolic link is followed)."""

    TYPE: ClassVar[int] = PacketType.STAT


@dataclass(frozen=True)
class Opendir(_PathRequest):
    """SSH_FXP_OPENDIR: a handle for READDIR."""

    TYPE: ClassVar[int] = PacketType.OPENDIR


@dataclass(frozen=True)
class Remove(_PathRequest):
    """SSH_FXP_REMOVE: delete a file."""

    TYPE: ClassVar[int] = PacketType.REMOVE


@dataclass(frozen=True)
class Rmdir(_PathRequest):
    """SSH_FXP_RMDIR: delete an empty directory."""

    TYPE: ClassVar[int] = PacketType.RMDIR


@dataclass(frozen=True)
class Realpath(_PathRequest):
    """SSH_FXP_REALPATH: the canonical absolute form of ``path`` (``sftp`` asks for "." to learn its home)."""

    TYPE: ClassVar[int] = PacketType.REALPATH


@dataclass(frozen=True)
class Readlink(_PathRequest):
    """SSH_FXP_READLINK: the target of a symbolic link."""

    TYPE: ClassVar[int] = PacketType.READLINK


@dataclass(frozen=True)
class Fstat(_HandleRequest):
    """SSH_FXP_FSTAT: attributes of an open file."""

    TYPE: ClassVar[int] = PacketType.FSTAT


@dataclass(frozen=True)
class Readdir(_HandleRequest):
    """SSH_FXP_READDIR: the next names of an open directory, or STATUS EOF."""

    TYPE: ClassVar[int] = PacketType.READDIR


@dataclass(frozen=True)
class Setstat(SFTPPacket):
    """SSH_FXP_SETSTAT: change the attributes of ``path``."""

    TYPE: ClassVar[int] = PacketType.SETSTAT
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_PATH, ("attrs", "attrs", "the attributes to set"))
    request_id: int
    path: str
    attrs: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class Fsetstat(SFTPPacket):
    """SSH_FXP_FSETSTAT: change the attributes of an open file."""

    TYPE: ClassVar[int] = PacketType.FSETSTAT
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_HANDLE, ("attrs", "attrs", "the attributes to set"))
    request_id: int
    handle: bytes
    attrs: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class Mkdir(SFTPPacket):
    """SSH_FXP_MKDIR: create a directory with ``attrs`` (permissions)."""

    TYPE: ClassVar[int] = PacketType.MKDIR
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (_PATH, ("attrs", "attrs", "attributes of the new directory"))
    request_id: int
    path: str
    attrs: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class Rename(SFTPPacket):
    """SSH_FXP_RENAME: ``old_path`` becomes ``new_path`` (draft-02: fails if ``new_path`` exists)."""

    TYPE: ClassVar[int] = PacketType.RENAME
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("old_path", "text", "the existing name"),
        ("new_path", "text", "the new name"),
    )
    request_id: int
    old_path: str
    new_path: str


@dataclass(frozen=True)
class Status(SFTPPacket):
    """SSH_FXP_STATUS: the outcome of a request (``code``: StatusCode) with a message for people."""

    TYPE: ClassVar[int] = PacketType.STATUS
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (
        ("code", "u32", "SSH_FX_* status code"),
        ("message", "text", "what happened, for people"),
        ("language", "text", "language tag of the message"),
    )
    request_id: int
    code: int = StatusCode.OK
    message: str = ""
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader, packet_type: int) -> SFTPPacket:
        request_id = r.u32("request_id", "the request this answers")
        code = r.u32("code", _name(StatusCode, "SSH_FX_"))
        message = _decode_text(r.ssh_string("message", "what happened, for people"))
        language = _decode_text(r.ssh_string("language", "language tag of the message"))
        return cls(request_id, code, message, language)


@dataclass(frozen=True)
class Handle(SFTPPacket):
    """SSH_FXP_HANDLE: the handle of an opened file or directory."""

    TYPE: ClassVar[int] = PacketType.HANDLE
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("handle", "bytes", "opaque, at most 256 bytes"),)
    request_id: int
    handle: bytes


@dataclass(frozen=True)
class Data(SFTPPacket):
    """SSH_FXP_DATA: bytes read."""

    TYPE: ClassVar[int] = PacketType.DATA
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("data", "bytes", "the bytes read"),)
    request_id: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class NameReply(SFTPPacket):
    """SSH_FXP_NAME: names (REALPATH's one, READDIR's many)."""

    TYPE: ClassVar[int] = PacketType.NAME
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("names", "names", "one name"),)
    request_id: int
    names: tuple[Name, ...] = ()


@dataclass(frozen=True)
class AttrsReply(SFTPPacket):
    """SSH_FXP_ATTRS: the answer to STAT, LSTAT, FSTAT."""

    TYPE: ClassVar[int] = PacketType.ATTRS
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (("attrs", "attrs", "the attributes"),)
    request_id: int
    attrs: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class UnknownPacket(SFTPPacket):
    """A packet type we do not model (SYMLINK, EXTENDED, ...): its request id and raw body."""

    TYPE: ClassVar[int] = 0
    request_id: int
    packet_type_number: int = 0
    body: bytes = field(default=b"", repr=False)

    @property
    def packet_type(self) -> int:
        return self.packet_type_number

    @property
    def type_name(self) -> str:
        try:
            return "SSH_FXP_" + PacketType(self.packet_type_number).name
        except ValueError:
            return f"SSH_FXP type {self.packet_type_number}"

    @classmethod
    def decode_body(cls, r: Reader, packet_type: int) -> SFTPPacket:
        request_id = r.u32("request_id", "the request id (every packet type after INIT/VERSION has one)")
        return cls(request_id, packet_type, r.rest("body", "fields of a packet type we do not model"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.request_id).raw(self.body)


PACKETS: dict[int, type[SFTPPacket]] = {
    cls.TYPE: cls
    for cls in (
        Init, Version, Open, Close, Read, Write, Lstat, Fstat, Setstat, Fsetstat, Opendir, Readdir, Remove,
        Mkdir, Rmdir, Realpath, Stat, Rename, Readlink, Status, Handle, Data, NameReply, AttrsReply,
    )
}  # fmt: skip

# Requests the server answers (anything else with a request id gets OP_UNSUPPORTED).
_RESPONSES = (Status, Handle, Data, NameReply, AttrsReply)


def decode_packet(
    payload: bytes, *, base_offset: int = 0, annotate: bool = True, allow_trailing: bool = False
) -> SFTPPacket:
    """Decode one packet's payload (type byte and body, without the length field); spans in ``.spans``.

    ``base_offset``: where the payload starts in the buffer the spans describe (4 for a framed packet).
    ``allow_trailing``: bytes after the last field are skipped (as ``sftp-server`` does, "bytes left
    over") instead of being a DecodeError.
    """
    if not payload:
        raise DecodeError("an empty SFTP packet has no type", field="type", offset=base_offset)
    r = Reader(payload, base_offset=base_offset, annotate=annotate)
    packet_type = payload[0]
    cls = PACKETS.get(packet_type, UnknownPacket)
    with r.group("sftp_packet", cls.__name__) as p:
        p.u8("type", _name(PacketType, "SSH_FXP_"))
        packet = cls.decode_body(p, packet_type)
    if not allow_trailing:
        r.expect_end(getattr(packet, "type_name", "the packet"))
    if annotate:
        object.__setattr__(packet, "spans", tuple(r.spans))  # frozen: set once, right after decoding
    return packet


class PacketReader:
    """Cuts a byte stream into SFTP packet payloads, refusing a length over ``max_length`` at once.

    ``feed(data)`` returns the complete payloads; an oversized length raises
    :class:`~handshake_lib.errors.SFTPPacketTooLarge` before its body is buffered, so the most this
    holds is one packet under construction (``max_length`` + 4 bytes) plus what one ``feed`` brought.
    """

    def __init__(self, max_length: int = MAX_PACKET_LENGTH) -> None:
        self.max_length = max_length
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _check_length(self) -> int | None:
        if len(self._buffer) < 4:
            return None
        length = int.from_bytes(self._buffer[:4], "big")
        if length > self.max_length:
            raise SFTPPacketTooLarge(f"SFTP packet of {length} bytes announced; the limit is {self.max_length}")
        if length == 0:
            raise DecodeError("an SFTP packet of length 0 has no type", field="length", offset=0)
        return length

    def next_packet(self) -> bytes | None:
        """One complete payload from what was fed, or None."""
        length = self._check_length()
        if length is None or len(self._buffer) < 4 + length:
            return None
        payload = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return payload

    def add(self, data: bytes) -> None:
        self._buffer += data
        self._check_length()

    def feed(self, data: bytes) -> list[bytes]:
        self.add(data)
        payloads = []
        while (payload := self.next_packet()) is not None:
            payloads.append(payload)
        return payloads


# -- the server ----------------------------------------------------------------------------------------
class FileSystem(Protocol):
    """What :class:`SFTPServer` serves.  Refuse with :class:`~handshake_lib.errors.SFTPStatusError`
    (that code and text are answered) or ``OSError`` (mapped by :func:`status_for_errno`, as
    ``sftp-server``'s ``errno_to_portable``).  Open files and directories are opaque objects; the server
    keeps the handle table.
    """

    def realpath(self, path: str) -> str: ...
    def stat(self, path: str, *, follow_symlinks: bool) -> Attributes: ...
    def setstat(self, path: str, attrs: Attributes) -> None: ...
    def open(self, path: str, flags: OpenFlags, attrs: Attributes) -> object: ...
    def read(self, file: object, offset: int, length: int) -> bytes: ...  # b"" at end of file
    def write(self, file: object, offset: int, data: bytes) -> None: ...
    def fstat(self, file: object) -> Attributes: ...
    def fsetstat(self, file: object, attrs: Attributes) -> None: ...
    def close(self, file: object) -> None: ...
    def opendir(self, path: str) -> object: ...
    def readdir(self, directory: object, limit: int) -> list[Name]: ...  # [] at the end
    def closedir(self, directory: object) -> None: ...
    def remove(self, path: str) -> None: ...
    def mkdir(self, path: str, attrs: Attributes) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def rename(self, old_path: str, new_path: str) -> None: ...


_ERRNO_STATUS = {  # sftp-server.c's errno_to_portable, by errno name (values differ between systems)
    "ENOENT": StatusCode.NO_SUCH_FILE,
    "ENOTDIR": StatusCode.NO_SUCH_FILE,
    "EBADF": StatusCode.NO_SUCH_FILE,
    "ELOOP": StatusCode.NO_SUCH_FILE,
    "EPERM": StatusCode.PERMISSION_DENIED,
    "EACCES": StatusCode.PERMISSION_DENIED,
    "EFAULT": StatusCode.PERMISSION_DENIED,
    "ENAMETOOLONG": StatusCode.BAD_MESSAGE,
    "EINVAL": StatusCode.BAD_MESSAGE,
    "ENOSYS": StatusCode.OP_UNSUPPORTED,
}


def status_for_errno(error: OSError) -> StatusCode:
    """The status ``sftp-server`` answers for an ``OSError`` (FAILURE for anything it does not map)."""
    name = errno.errorcode.get(error.errno or 0, "")
    return _ERRNO_STATUS.get(name, StatusCode.FAILURE)


def longname(filename: str, attrs: Attributes, *, now: float | None = None) -> str:
    """An ``ls -l`` line as ``sftp-server``'s ``ls_file`` writes it (numeric owner and group)."""
    mode = stat_module.filemode(attrs.permissions or 0)
    mtime = attrs.mtime or 0
    now = time.time() if now is None else now
    # ls shows the year instead of the time for files older (or newer) than six months.
    when = time.strftime("%b %d %H:%M" if abs(now - mtime) < 182 * 86400 else "%b %d  %Y", time.localtime(mtime))
    user = str(attrs.uid if attrs.uid is not None else 0)
    group = str(attrs.gid if attrs.gid is not None else 0)
    return f"{mode}    1 {user:<8} {group:<8} {attrs.size or 0:>8} {when} {filename}"


@dataclass
class _OpenHandle:
    kind: str  # "file" or "dir"
    target: object


class SFTPServer:
    """The server side of one SFTP session over a :class:`FileSystem` (sans-I/O).

    ``receive_data`` takes bytes from the client; ``data_to_send`` returns the answers.  A fatal error
    (see the module docstring) sets ``closed`` and ``error`` and is raised; after it the server takes
    nothing more.  ``wants_input`` is False while enough requests wait unprocessed: stop reading then.
    """

    def __init__(self, filesystem: FileSystem, *, max_handles: int = MAX_HANDLES) -> None:
        self.filesystem = filesystem
        self.max_handles = max_handles
        self.version: int | None = None  # the negotiated version, once INIT arrived
        self.closed = False
        self.error: SFTPError | DecodeError | None = None
        self._reader = PacketReader()
        self._pending: deque[bytes] = deque()  # complete payloads not yet processed
        self._pending_bytes = 0
        self._out: list[bytes] = []  # answers, joined once by data_to_send (see SSHConnection._out for why)
        self._out_bytes = 0
        self._handles: dict[bytes, _OpenHandle] = {}
        self._next_handle = 0

    @property
    def wants_input(self) -> bool:
        return not self.closed and self._pending_bytes + self._reader.buffered < MAX_SERVER_INPUT

    @property
    def open_handles(self) -> int:
        return len(self._handles)

    @property
    def queued_bytes(self) -> int:
        """Bytes of answers made and not yet taken by :meth:`data_to_send` (at most MAX_SERVER_OUTPUT)."""
        return self._out_bytes

    def receive_data(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionStateError("the SFTP session is closed")
        try:
            for payload in self._reader.feed(data):
                self._pending.append(payload)
                self._pending_bytes += len(payload)
        except (SFTPError, DecodeError) as error:
            self._fail(error)
        self._process()

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        if not self.closed:
            self._process()
        return out

    def close(self) -> None:
        """The client went away: release every open handle (sftp-server does the same at EOF)."""
        for entry in list(self._handles.values()):
            self._release(entry)
        self._handles.clear()
        self.closed = True

    def _fail(self, error: SFTPError | DecodeError) -> None:
        self.error = error
        self.close()
        raise error

    def _process(self) -> None:
        # Like sftp-server: take a request only while the output queue has room for a maximal answer.
        while self._pending and self._out_bytes + MAX_PACKET_LENGTH + 4 <= MAX_SERVER_OUTPUT:
            payload = self._pending.popleft()
            self._pending_bytes -= len(payload)
            try:
                packet = decode_packet(payload, annotate=False, allow_trailing=True)
            except DecodeError as error:
                self._fail(error)  # sftp-server: a request that does not parse is fatal
                return
            self._handle_packet(packet)

    def _send(self, packet: SFTPPacket) -> None:
        encoded = packet.to_bytes()
        self._out.append(encoded)
        self._out_bytes += len(encoded)

    def _status(self, request_id: int, code: int, message: str = "") -> None:
        text = message or STATUS_MESSAGES.get(code, "")  # type: ignore[call-overload]
        self._send(Status(request_id, code, text, "en"))

    def _handle_packet(self, packet: SFTPPacket) -> None:
        if self.version is None:
            if not isinstance(packet, Init):
                self._fail(SFTPProtocolError(f"{packet.type_name} before SSH_FXP_INIT"))
            assert isinstance(packet, Init)
            # We speak version 3 only; draft-02 says the server answers with the version it will use.
            self.version = min(packet.version, SFTP_VERSION)
            self._send(Version(self.version))
            return
        if isinstance(packet, Init):
            # OpenSSH 9.2's sftp-server runs process_init again and answers a second VERSION; so do we.
            self._send(Version(self.version))
            return
        # A VERSION sent to a server: its first uint32 is where a request id would be (sftp-server reads
        # it as one, then finds no handler for type 2).
        request_id: int = packet.version if isinstance(packet, Version) else packet.request_id  # type: ignore[attr-defined]
        handler = self._HANDLERS.get(type(packet))
        if handler is None:  # responses sent to a server, SYMLINK, EXTENDED, unknown types
            self._status(request_id, StatusCode.OP_UNSUPPORTED)
            return
        try:
            handler(self, packet)
        except SFTPStatusError as error:
            self._status(request_id, error.code, error.message)
        except OSError as error:
            self._status(request_id, status_for_errno(error))
        except EncodeError as error:  # an answer that cannot be sent (a file system's too-long names)
            self._status(request_id, StatusCode.FAILURE, str(error))

    # -- handles --------------------------------------------------------------------------------------
    def _new_handle(self, kind: str, target: object) -> bytes:
        handle = str(self._next_handle).encode()
        self._next_handle += 1
        self._handles[handle] = _OpenHandle(kind, target)
        return handle

    def _handle(self, handle: bytes, kind: str) -> object:
        entry = self._handles.get(handle)
        if entry is None or entry.kind != kind:
            raise SFTPStatusError(StatusCode.FAILURE, "Failure")  # sftp-server: an unknown handle fails
        return entry.target

    def _room_for_handle(self) -> None:
        if len(self._handles) >= self.max_handles:
            raise SFTPStatusError(StatusCode.FAILURE, f"too many open handles (at most {self.max_handles})")

    def _release(self, entry: _OpenHandle) -> None:
        try:
            if entry.kind == "file":
                self.filesystem.close(entry.target)
            else:
                self.filesystem.closedir(entry.target)
        except (OSError, SFTPStatusError):
            pass  # closing at the end of a session: nobody is left to tell

    # -- requests -------------------------------------------------------------------------------------
    def _open(self, p: Open) -> None:
        self._room_for_handle()
        self._send(
            Handle(
                p.request_id,
                self._new_handle("file", self.filesystem.open(p.path, OpenFlags(p.pflags & 0x3F), p.attrs)),
            )
        )

    def _close(self, p: Close) -> None:
        entry = self._handles.get(p.handle)
        if entry is None:
            raise SFTPStatusError(StatusCode.FAILURE, "Failure")
        del self._handles[p.handle]
        if entry.kind == "file":
            self.filesystem.close(entry.target)
        else:
            self.filesystem.closedir(entry.target)
        self._status(p.request_id, StatusCode.OK)

    def _read(self, p: Read) -> None:
        target = self._handle(p.handle, "file")
        data = self.filesystem.read(target, p.offset, min(p.length, MAX_READ_LENGTH))
        if not data:
            self._status(p.request_id, StatusCode.EOF)
        else:
            self._send(Data(p.request_id, data[:MAX_READ_LENGTH]))

    def _write(self, p: Write) -> None:
        self.filesystem.write(self._handle(p.handle, "file"), p.offset, p.data)
        self._status(p.request_id, StatusCode.OK)

    def _stat(self, p: Stat) -> None:
        self._send(AttrsReply(p.request_id, self.filesystem.stat(p.path, follow_symlinks=True)))

    def _lstat(self, p: Lstat) -> None:
        self._send(AttrsReply(p.request_id, self.filesystem.stat(p.path, follow_symlinks=False)))

    def _fstat(self, p: Fstat) -> None:
        self._send(AttrsReply(p.request_id, self.filesystem.fstat(self._handle(p.handle, "file"))))

    def _setstat(self, p: Setstat) -> None:
        self.filesystem.setstat(p.path, p.attrs)
        self._status(p.request_id, StatusCode.OK)

    def _fsetstat(self, p: Fsetstat) -> None:
        self.filesystem.fsetstat(self._handle(p.handle, "file"), p.attrs)
        self._status(p.request_id, StatusCode.OK)

    def _opendir(self, p: Opendir) -> None:
        self._room_for_handle()
        self._send(Handle(p.request_id, self._new_handle("dir", self.filesystem.opendir(p.path))))

    def _readdir(self, p: Readdir) -> None:
        names = self.filesystem.readdir(self._handle(p.handle, "dir"), MAX_NAMES_PER_READDIR)
        if not names:
            self._status(p.request_id, StatusCode.EOF)
            return
        # At most MAX_NAMES_PER_READDIR entries, as sftp-server: 100 names of 255 bytes with their ls -l
        # lines and ATTRS stay far below one packet's 256 KiB.
        self._send(NameReply(p.request_id, tuple(names[:MAX_NAMES_PER_READDIR])))

    def _remove(self, p: Remove) -> None:
        self.filesystem.remove(p.path)
        self._status(p.request_id, StatusCode.OK)

    def _mkdir(self, p: Mkdir) -> None:
        self.filesystem.mkdir(p.path, p.attrs)
        self._status(p.request_id, StatusCode.OK)

    def _rmdir(self, p: Rmdir) -> None:
        self.filesystem.rmdir(p.path)
        self._status(p.request_id, StatusCode.OK)

    def _realpath(self, p: Realpath) -> None:
        resolved = self.filesystem.realpath(p.path)
        # sftp-server answers one name whose longname is the path itself and whose ATTRS are empty.
        self._send(NameReply(p.request_id, (Name(resolved, resolved, Attributes()),)))

    def _rename(self, p: Rename) -> None:
        self.filesystem.rename(p.old_path, p.new_path)
        self._status(p.request_id, StatusCode.OK)

    _HANDLERS: ClassVar[dict[type, Callable[[Any, Any], None]]] = {
        Open: _open,
        Close: _close,
        Read: _read,
        Write: _write,
        Stat: _stat,
        Lstat: _lstat,
        Fstat: _fstat,
        Setstat: _setstat,
        Fsetstat: _fsetstat,
        Opendir: _opendir,
        Readdir: _readdir,
        Remove: _remove,
        Mkdir: _mkdir,
        Rmdir: _rmdir,
        Realpath: _realpath,
        Rename: _rename,
    }


# -- the client ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionReceived:
    """The server's VERSION: the session is ready for requests."""

    version: int
    extensions: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class ResponseReceived:
    """The answer to one request (not one of a :meth:`SFTPClient.read_file`'s READs)."""

    request_id: int
    request: SFTPPacket
    response: SFTPPacket

    def raise_for_status(self) -> SFTPPacket:
        """The response, or SFTPStatusError when it is a STATUS other than OK."""
        if isinstance(self.response, Status) and self.response.code != StatusCode.OK:
            raise SFTPStatusError(self.response.code, self.response.message)
        return self.response


@dataclass(frozen=True)
class ReadFinished:
    """A :meth:`SFTPClient.read_file` is complete: the bytes from offset 0 to end of file, or the error."""

    handle: bytes
    data: bytes = field(repr=False)
    error: SFTPStatusError | None = None


@dataclass
class _PipelinedRead:
    handle: bytes
    chunk: int
    max_size: int
    next_offset: int = 0
    eof_at: int | None = None  # the smallest offset answered EOF
    received: dict[int, bytes] = field(default_factory=dict)
    outstanding: set[int] = field(default_factory=set)  # request ids
    error: SFTPStatusError | None = None


class SFTPClient:
    """The client side of one SFTP session (sans-I/O).  INIT is queued at construction.

    Each request method queues a packet and returns its request id; ``receive_data`` returns events.
    ``max_in_flight`` bounds outstanding requests (at most :data:`MAX_IN_FLIGHT`): a method called with
    none left raises :class:`~handshake_lib.errors.SFTPError`; ``can_send`` says whether one is left.
    """

    def __init__(self, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        if not 1 <= max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be 1..{MAX_IN_FLIGHT}")
        self.max_in_flight = max_in_flight
        self.version: int | None = None
        self.extensions: tuple[tuple[str, bytes], ...] = ()
        self._reader = PacketReader()
        self._out = bytearray(Init(SFTP_VERSION).to_bytes())
        self._outstanding: dict[int, SFTPPacket] = {}
        self._next_id = 0
        self._reads: dict[int, _PipelinedRead] = {}  # request id -> the read_file it belongs to

    @property
    def in_flight(self) -> int:
        return len(self._outstanding)

    @property
    def can_send(self) -> bool:
        return self.in_flight < self.max_in_flight

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _queue(self, build: Callable[[int], SFTPPacket]) -> int:
        if not self.can_send:
            raise SFTPError(f"{self.in_flight} requests in flight already (max_in_flight={self.max_in_flight})")
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        packet = build(request_id)
        self._out += packet.to_bytes()
        self._outstanding[request_id] = packet
        return request_id

    # -- requests -------------------------------------------------------------------------------------
    def open(self, path: str, flags: int = OpenFlags.READ, attrs: Attributes | None = None) -> int:
        return self._queue(lambda i: Open(i, path, flags, attrs or Attributes()))

    def close(self, handle: bytes) -> int:
        return self._queue(lambda i: Close(i, handle))

    def read(self, handle: bytes, offset: int, length: int) -> int:
        return self._queue(lambda i: Read(i, handle, offset, length))

    def write(self, handle: bytes, offset: int, data: bytes) -> int:
        return self._queue(lambda i: Write(i, handle, offset, data))

    def stat(self, path: str) -> int:
        return self._queue(lambda i: Stat(i, path))

    def lstat(self, path: str) -> int:
        return self._queue(lambda i: Lstat(i, path))

    def fstat(self, handle: bytes) -> int:
        return self._queue(lambda i: Fstat(i, handle))

    def setstat(self, path: str, attrs: Attributes) -> int:
        return self._queue(lambda i: Setstat(i, path, attrs))

    def opendir(self, path: str) -> int:
        return self._queue(lambda i: Opendir(i, path))

    def readdir(self, handle: bytes) -> int:
        return self._queue(lambda i: Readdir(i, handle))

    def remove(self, path: str) -> int:
        return self._queue(lambda i: Remove(i, path))

    def mkdir(self, path: str, attrs: Attributes | None = None) -> int:
        return self._queue(lambda i: Mkdir(i, path, attrs or Attributes()))

    def rmdir(self, path: str) -> int:
        return self._queue(lambda i: Rmdir(i, path))

    def realpath(self, path: str) -> int:
        return self._queue(lambda i: Realpath(i, path))

    def rename(self, old_path: str, new_path: str) -> int:
        return self._queue(lambda i: Rename(i, old_path, new_path))

    def abandon(self, request_id: int) -> None:
        """Stop waiting for an answer (OpenSSH's sftp-server never answers an unknown type): frees its slot.

        An answer that comes later is then an answer to no request, an SFTPProtocolError.
        """
        self._outstanding.pop(request_id, None)
        transfer = self._reads.pop(request_id, None)
        if transfer is not None:
            transfer.outstanding.discard(request_id)

    def send_request(self, build: Callable[[int], SFTPPacket]) -> int:
        """Any request, built from its id (for experiments: an unknown type, a READLINK, ...)."""
        return self._queue(build)

    def read_file(self, handle: bytes, *, chunk: int = _DEFAULT_CHUNK, max_size: int = MAX_READ_FILE_SIZE) -> None:
        """Read an open file from offset 0 to its end with pipelined READs; ends in :class:`ReadFinished`.

        READs of ``chunk`` bytes are kept outstanding while requests are free (``max_in_flight``), as
        OpenSSH's ``sftp`` does.  A short DATA is legal; the missing rest is asked for again.  More than
        ``max_size`` bytes end the read with an SFTPStatusError(FAILURE) in ``ReadFinished.error``.
        """
        if not 1 <= chunk <= MAX_READ_LENGTH:
            raise ValueError(f"chunk must be 1..{MAX_READ_LENGTH}")
        transfer = _PipelinedRead(handle, chunk, max_size)
        self._top_up(transfer)
        if not transfer.outstanding:
            raise SFTPError("no request free for read_file")

    def _top_up(self, t: _PipelinedRead) -> None:
        while (
            t.error is None
            and self.can_send
            and t.eof_at is None  # past the end every READ is answered EOF: ask no more
            and t.next_offset <= t.max_size  # one READ at max_size itself: it must say EOF
        ):
            request_id = self.read(t.handle, t.next_offset, t.chunk)
            t.outstanding.add(request_id)
            self._reads[request_id] = t
            t.next_offset += t.chunk

    def _read_answer(self, t: _PipelinedRead, request: Read, response: SFTPPacket) -> ReadFinished | None:
        t.outstanding.discard(request.request_id)
        if isinstance(response, Data):
            if len(response.data) > request.length:
                raise SFTPProtocolError(f"DATA of {len(response.data)} bytes for a READ of {request.length}")
            if request.offset + len(response.data) > t.max_size:
                t.error = t.error or SFTPStatusError(StatusCode.FAILURE, f"file longer than {t.max_size} bytes")
            elif response.data:
                t.received[request.offset] = response.data
            if len(response.data) < request.length and t.error is None:
                # A short read: ask for the rest of this range (sftp does the same).
                rest_offset = request.offset + len(response.data)
                request_id = self._queue(lambda i: Read(i, t.handle, rest_offset, request.length - len(response.data)))
                t.outstanding.add(request_id)
                self._reads[request_id] = t
        elif isinstance(response, Status) and response.code == StatusCode.EOF:
            t.eof_at = request.offset if t.eof_at is None else min(t.eof_at, request.offset)
        elif isinstance(response, Status):
            t.error = t.error or SFTPStatusError(response.code, response.message)
        else:
            raise SFTPProtocolError(f"{response.type_name} in answer to SSH_FXP_READ")
        self._top_up(t)
        if t.outstanding:
            return None
        if t.error is not None:
            return ReadFinished(t.handle, b"", t.error)
        pieces, position = [], 0  # joined once at the end: growing one buffer would copy it again and again
        for offset in sorted(t.received):
            if offset != position:
                raise SFTPProtocolError(f"hole at offset {position} in a file that ended at {t.eof_at}")
            pieces.append(t.received[offset])
            position += len(pieces[-1])
        return ReadFinished(t.handle, b"".join(pieces))

    # -- answers --------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[VersionReceived | ResponseReceived | ReadFinished]:
        events: list[VersionReceived | ResponseReceived | ReadFinished] = []
        for payload in self._reader.feed(data):
            packet = decode_packet(payload, annotate=False)
            if self.version is None:
                if not isinstance(packet, Version):
                    raise SFTPProtocolError(f"{packet.type_name} before SSH_FXP_VERSION")
                if packet.version != SFTP_VERSION:
                    raise SFTPProtocolError(f"the server chose SFTP version {packet.version}; we speak 3")
                self.version = packet.version
                self.extensions = packet.extensions
                events.append(VersionReceived(packet.version, packet.extensions))
                continue
            if not isinstance(packet, _RESPONSES):
                raise SFTPProtocolError(f"{packet.type_name} is not an answer")
            request_id: int = packet.request_id  # type: ignore[attr-defined]
            request = self._outstanding.pop(request_id, None)
            if request is None:
                raise SFTPProtocolError(f"an answer to request {request_id}, which is not outstanding")
            transfer = self._reads.pop(request_id, None)
            if transfer is not None:
                assert isinstance(request, Read)
                finished = self._read_answer(transfer, request, packet)
                if finished is not None:
                    events.append(finished)
            else:
                events.append(ResponseReceived(request_id, request, packet))
        return events
