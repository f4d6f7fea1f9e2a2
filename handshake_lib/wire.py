"""Reading and writing wire encodings, with every field annotated.

Theory of operation
-------------------
Protocol messages are built from a handful of encodings: big-endian unsigned integers of 1, 2, 3,
4 or 8 bytes; TLS vectors (a 1-, 2- or 3-byte length, then that many bytes); and SSH's ``string``,
``mpint``, ``name-list`` and ``boolean`` (RFC 4251 section 5).  ``Writer`` produces them, ``Reader``
consumes them.

Every read records a :class:`Span`: where the bytes were (absolute offset and length), which field
they hold (a dotted path such as ``client_hello.cipher_suites.cipher_suite``) and what they mean
(``TLS_RSA_WITH_AES_128_GCM_SHA256``).  ``Reader.group`` records a span for a whole structure.  The
hex view, the command line's ``--trace`` and the notebooks all render these spans, so an explanation
is always computed from the bytes it explains.

Spans cost time (a Span object and often a meaning string per field), and a protocol core that only
needs the values should not pay for them: ``Reader(data, annotate=False)`` reads the same fields with
the same checks and the same errors (field paths included) but records no spans.  The TLS cores
decode that way while they process a message, and build the annotated spans only when a view asks
for them, by decoding the bytes again with an annotating Reader.

A Reader never reads past the end of its data.  Truncated input, a length that claims more bytes than
exist, bytes left over inside a vector and SSH encodings that break RFC 4251 raise
:class:`~handshake_lib.errors.DecodeError` naming the field and the absolute offset, never
``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import DecodeError, EncodeError

Meaning = str | Callable[[Any], str] | None

__all__ = ["Span", "Reader", "Writer", "Meaning"]


@dataclass(frozen=True)
class Span:
    """An annotated run of bytes: ``length`` bytes at ``offset`` hold ``field``, which means ``meaning``.

    ``depth`` is how deeply the field is nested (0 for a top-level structure); a span that covers
    other spans (a group) has ``is_group`` set, so a view can colour leaves and outline groups.
    """

    offset: int
    length: int
    field: str
    meaning: str = ""
    depth: int = 0
    is_group: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def name(self) -> str:
        """The last part of the dotted field path."""
        return self.field.rsplit(".", 1)[-1]


def _explain(meaning: Meaning, value: Any) -> str:
    if meaning is None:
        return ""
    if isinstance(meaning, str):
        return meaning
    # A meaning function explains a value; it must never turn a decodable value into a crash.
    try:
        return meaning(value)
    except (ValueError, KeyError, TypeError):
        return f"unknown ({value!r})"


class Reader:
    """Consumes ``data`` from the front, recording a :class:`Span` for every field it reads.

    ``base_offset`` is the absolute offset of ``data[0]`` in the buffer the spans describe, so a
    Reader over a TCP segment inside an Ethernet frame can report frame offsets.  With
    ``annotate=False`` no span is recorded (``spans`` stays empty) and meanings are never computed:
    the fast path for code that needs only the values.  Sub-readers inherit the mode.
    """

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        *,
        base_offset: int = 0,
        spans: list[Span] | None = None,
        path: Sequence[str] = (),
        annotate: bool = True,
    ) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._base = base_offset
        self._path: tuple[str, ...] = tuple(path)
        self._annotating = annotate
        self.spans: list[Span] = spans if spans is not None else []

    # -- where we are -------------------------------------------------------------------------
    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to read."""
        return self._base + self._pos

    @property
    def position(self) -> int:
        """Offset of the next byte relative to this Reader's data."""
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    @property
    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def annotating(self) -> bool:
        """Whether this Reader records spans (False: values only, see the module docstring)."""
        return self._annotating

    def _field(self, name: str) -> str:
        return ".".join((*self._path, name)) if name else ".".join(self._path)

    def _record(self, start: int, length: int, field: str, meaning: Meaning, value: Any) -> None:
        if not self._annotating:
            return
        self.spans.append(
            Span(self._base + start, length, self._field(field), _explain(meaning, value), len(self._path))
        )

    def _take(self, n: int, field: str) -> bytes:
        if n < 0 or n > len(self._data) - self._pos:
            raise DecodeError(
                f"need {n} bytes but only {self.remaining} remain", field=self._field(field), offset=self.offset
            )
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    # -- integers -----------------------------------------------------------------------------
    def uint(self, size: int, field: str, meaning: Meaning = None) -> int:
        """A big-endian unsigned integer of ``size`` bytes."""
        start = self._pos
        value = int.from_bytes(self._take(size, field), "big")
        if self._annotating:
            self._record(start, size, field, meaning, value)
        return value

    def u8(self, field: str, meaning: Meaning = None) -> int:
        return self.uint(1, field, meaning)

    def u16(self, field: str, meaning: Meaning = None) -> int:
        return self.uint(2, field, meaning)

    def u24(self, field: str, meaning: Meaning = None) -> int:
        return self.uint(3, field, meaning)

    def u32(self, field: str, meaning: Meaning = None) -> int:
        return self.uint(4, field, meaning)

    def u64(self, field: str, meaning: Meaning = None) -> int:
        return self.uint(8, field, meaning)

    # -- bytes --------------------------------------------------------------------------------
    def raw(self, n: int, field: str, meaning: Meaning = None) -> bytes:
        """Exactly ``n`` bytes."""
        start = self._pos
        value = self._take(n, field)
        if self._annotating:
            self._record(start, n, field, meaning, value)
        return value

    def rest(self, field: str, meaning: Meaning = None) -> bytes:
        """Everything that is left (possibly nothing)."""
        return self.raw(self.remaining, field, meaning)

    def _length(self, length_bytes: int, field: str, min_length: int, max_length: int | None) -> int:
        length = self.uint(length_bytes, f"{field}_length" if field else "length", "length in bytes")
        if length < min_length or (max_length is not None and length > max_length):
            bound = f"{min_length}..{max_length}" if max_length is not None else f">= {min_length}"
            raise DecodeError(
                f"length {length} is outside {bound}", field=self._field(field), offset=self.offset - length_bytes
            )
        return length

    def vector(
        self,
        length_bytes: int,
        field: str,
        meaning: Meaning = None,
        *,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> bytes:
        """A TLS-style opaque vector: a ``length_bytes``-byte length, then that many bytes."""
        length = self._length(length_bytes, field, min_length, max_length)
        return self.raw(length, field, meaning)

    def vector_reader(
        self,
        length_bytes: int,
        field: str,
        meaning: str = "",
        *,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> _Block:
        """Read a length-prefixed structure with a sub-Reader limited to its bytes (a ``with`` block).

        Leaving the ``with`` block with bytes unread is a DecodeError: a length that does not match
        its contents is malformed, not something to skip over.
        """
        length = self._length(length_bytes, field, min_length, max_length)
        return self.sub_reader(length, field, meaning)

    def sub_reader(self, length: int, field: str, meaning: str = "") -> _Block:
        """Like :meth:`vector_reader` for a structure whose length is known from elsewhere."""
        start = self._pos
        body = self._take(length, field)
        index = self._open_group(start, field, meaning)
        sub = Reader(
            body, base_offset=self._base + start, spans=self.spans, path=(*self._path, field), annotate=self._annotating
        )
        return _Block(self, sub, index, start)

    def group(self, field: str, meaning: str = "") -> _Block:
        """Record one span over everything read inside the block, and nest field names under it."""
        start = self._pos
        index = self._open_group(start, field, meaning)
        return _Block(self, self, index, start, group_field=field)

    def _open_group(self, start: int, field: str, meaning: str) -> int:
        """Append a group's span (length still 0) and return its index; -1 when not annotating.

        The group's span goes in the list before its children's, so that a listing in span order
        reads top-down; :meth:`_close_group` fills in its length once the block is read.
        """
        if not self._annotating:
            return -1
        self.spans.append(Span(self._base + start, 0, self._field(field), meaning, len(self._path), True))
        return len(self.spans) - 1

    def _close_group(self, index: int, length: int) -> None:
        if index >= 0:
            old = self.spans[index]
            self.spans[index] = Span(old.offset, length, old.field, old.meaning, old.depth, True)

    def annotate(self, meaning: str) -> None:
        """Replace the meaning of the most recent span (for meanings known only after more reading)."""
        if self._annotating and self.spans:
            old = self.spans[-1]
            self.spans[-1] = Span(old.offset, old.length, old.field, meaning, old.depth, old.is_group)

    def expect_end(self, what: str = "") -> None:
        if self.remaining:
            raise DecodeError(
                f"{self.remaining} unexpected bytes after the end of {what or 'the structure'}",
                field=self._field(""),
                offset=self.offset,
            )

    # -- SSH encodings (RFC 4251 section 5) ---------------------------------------------------
    def ssh_string(self, field: str, meaning: Meaning = None) -> bytes:
        """``string``: a uint32 length, then that many bytes."""
        return self.vector(4, field, meaning)

    def ssh_text(self, field: str, meaning: Meaning = None) -> str:
        """A ``string`` that must hold UTF-8 text."""
        offset = self.offset
        value = self.ssh_string(field, meaning)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not valid UTF-8", field=self._field(field), offset=offset) from None

    def ssh_mpint(self, field: str, meaning: Meaning = None) -> int:
        """``mpint``: two's complement, big-endian, minimal, in a ``string``; zero is empty."""
        length_offset = self.offset
        body = self.vector(4, field, meaning)
        if len(body) >= 2 and (
            (body[0] == 0x00 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)
        ):
            raise DecodeError("mpint has an unnecessary leading byte", field=self._field(field), offset=length_offset)
        if body[:1] == b"\x00" and len(body) == 1:
            raise DecodeError("zero must be encoded as an empty mpint", field=self._field(field), offset=length_offset)
        return int.from_bytes(body, "big", signed=True)

    def ssh_name_list(self, field: str, meaning: Meaning = None) -> list[str]:
        """``name-list``: comma-separated US-ASCII names in a ``string``; no empty names."""
        offset = self.offset
        body = self.vector(4, field, meaning)
        if not body:
            return []
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("name-list is not US-ASCII", field=self._field(field), offset=offset) from None
        names = text.split(",")
        if any(not name or not name.isprintable() for name in names):
            raise DecodeError("name-list has an empty or unprintable name", field=self._field(field), offset=offset)
        return names

    def ssh_boolean(self, field: str, meaning: Meaning = None) -> bool:
        """``boolean``: one byte; every non-zero value means TRUE (RFC 4251)."""
        start = self._pos
        value = self._take(1, field)[0] != 0
        self._record(start, 1, field, meaning, value)
        return value


class _Block:
    """The ``with`` block of :meth:`Reader.group`, :meth:`Reader.sub_reader` and :meth:`Reader.vector_reader`.

    A small class rather than a ``@contextmanager`` generator: decoders open thousands of these per
    handshake, and a generator costs several times more.  On a clean exit a sub-Reader must have been
    read to its end, and the group's span gets its length; on an exception the span is left as it is
    (length 0) and the exception goes on.
    """

    __slots__ = ("_parent", "_reader", "_index", "_start", "_group_field", "_outer_path")

    def __init__(self, parent: Reader, reader: Reader, index: int, start: int, group_field: str | None = None) -> None:
        self._parent = parent
        self._reader = reader
        self._index = index
        self._start = start
        self._group_field = group_field  # set for a group: field names inside are nested under it
        self._outer_path: tuple[str, ...] | None = None

    def __enter__(self) -> Reader:
        if self._group_field is not None:
            self._outer_path = self._parent._path
            self._parent._path = (*self._outer_path, self._group_field)
        return self._reader

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        parent = self._parent
        if self._outer_path is not None:
            parent._path = self._outer_path
            if exc_type is None:
                parent._close_group(self._index, parent._pos - self._start)
            return
        if exc_type is None:
            sub = self._reader
            sub.expect_end()
            parent._close_group(self._index, len(sub._data))


class Writer:
    """Builds a message from the same encodings :class:`Reader` reads."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def __bytes__(self) -> bytes:
        return self.getvalue()

    def __len__(self) -> int:
        return len(self._buf)

    def uint(self, size: int, value: int) -> Writer:
        if not 0 <= value < 1 << (8 * size):
            raise EncodeError(f"{value} does not fit in {size} unsigned byte(s)")
        self._buf += value.to_bytes(size, "big")
        return self

    def u8(self, value: int) -> Writer:
        return self.uint(1, value)

    def u16(self, value: int) -> Writer:
        return self.uint(2, value)

    def u24(self, value: int) -> Writer:
        return self.uint(3, value)

    def u32(self, value: int) -> Writer:
        return self.uint(4, value)

    def u64(self, value: int) -> Writer:
        return self.uint(8, value)

    def raw(self, data: bytes | bytearray | memoryview) -> Writer:
        self._buf += data
        return self

    def vector(self, length_bytes: int, data: bytes | bytearray | memoryview) -> Writer:
        if len(data) >= 1 << (8 * length_bytes):
            raise EncodeError(f"{len(data)} bytes do not fit a {length_bytes}-byte length")
        self.uint(length_bytes, len(data))
        return self.raw(data)

    @contextmanager
    def vector_writer(self, length_bytes: int) -> Iterator[Writer]:
        """Write a length-prefixed structure; the length is filled in when the block ends."""
        inner = Writer()
        yield inner
        self.vector(length_bytes, inner.getvalue())

    def ssh_string(self, data: bytes | str) -> Writer:
        return self.vector(4, data.encode("utf-8") if isinstance(data, str) else data)

    def ssh_mpint(self, value: int) -> Writer:
        if value == 0:
            return self.ssh_string(b"")
        # Minimal two's complement: one more bit than the magnitude needs, for the sign.
        size = (value.bit_length() + 8) // 8 if value > 0 else ((-value - 1).bit_length() + 8) // 8
        return self.ssh_string(value.to_bytes(size, "big", signed=True))

    def ssh_name_list(self, names: Sequence[str]) -> Writer:
        for name in names:
            if not name or "," in name or not name.isascii() or not name.isprintable():
                raise EncodeError(f"{name!r} cannot be an SSH name-list entry")
        return self.ssh_string(",".join(names).encode("ascii"))

    def ssh_boolean(self, value: bool) -> Writer:
        return self.u8(1 if value else 0)
