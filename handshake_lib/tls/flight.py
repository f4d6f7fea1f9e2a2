"""A server's first flight, read from raw bytes: what it answered to one ClientHello (sans-I/O).

Theory of operation
-------------------
Lessons 02 and 03 send a ClientHello that nothing in the library has checked (a learner's bytes, a
hello with a wrong length on purpose) and show what a real server answered.  That is not a
connection: no keys, no state table, just "what came back".  :class:`FirstFlightReader` reads it with
the same framing code as a connection, :class:`~handshake_lib.tls.record.RecordReader` for records and
:class:`~handshake_lib.tls.record.HandshakeReassembler` for handshake messages cut across (or packed
into) records, and stops at the first of:

* ServerHelloDone: the server's whole first flight arrived (RFC 5246 section 7.3);
* an alert: the server refused, and the two bytes say why (section 7.2);
* bytes that are not TLS records, a record of another type, or more than ``max_bytes``;
* the server's close (``b""``).

It has the shape :func:`handshake_lib.net.run_connection` drives (``receive_data`` / ``data_to_send``),
so the socket side is the library's one driver loop, with its deadline.  The result is a
:class:`ServerAnswer`: every byte received, each message decoded with its spans, or the alert.

:func:`handshake_records` does the opposite direction (handshake bytes into plaintext records, sent
as given), and :func:`handshake_record_spans` annotates such records for a hex view: the record
headers, and each handshake message decoded in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ProtocolError
from ..pki.fields import certificate_subject
from ..wire import Span
from .constants import CipherSuite, ContentType, ExtensionType, HandshakeType, ProtocolVersion, name_of
from .messages import Alert, Certificate, HandshakeMessage, ServerHello, ServerHelloDone, decode_handshake
from .record import (
    MAX_PLAINTEXT_LENGTH,
    RECORD_HEADER_LENGTH,
    HandshakeReassembler,
    Record,
    RecordReader,
    encode_record,
    read_header,
)

__all__ = [
    "MAX_ANSWER_BYTES",
    "FirstFlightReader",
    "ReceivedMessage",
    "ServerAnswer",
    "handshake_record_spans",
    "handshake_records",
]

# A first flight is a few kilobytes (ServerHello, a certificate chain, ServerHelloDone); 64 KiB is plenty.
MAX_ANSWER_BYTES = 1 << 16


def handshake_records(handshake: bytes, *, record_version: int = ProtocolVersion.TLS1_0) -> bytes:
    """Wrap handshake bytes, exactly as given, in plaintext handshake records of at most 2^14 bytes each.

    ``record_version`` 0x0301 is what OpenSSL's client writes on its first record (RFC 5246 appendix
    E.1: some old servers choke on a higher one); servers ignore it.
    """
    if not handshake:
        return encode_record(ContentType.handshake, record_version, b"")
    return b"".join(
        encode_record(ContentType.handshake, record_version, handshake[start : start + MAX_PLAINTEXT_LENGTH])
        for start in range(0, len(handshake), MAX_PLAINTEXT_LENGTH)
    )


@dataclass
class ReceivedMessage:
    """One handshake message from the server: its bytes, the decoded message and its spans."""

    raw: bytes
    message: HandshakeMessage | None
    spans: list[Span]
    error: str = ""  # why it did not decode (then ``message`` is None)

    @classmethod
    def decode(cls, raw: bytes) -> ReceivedMessage:
        try:
            message, spans = decode_handshake(raw)
        except ProtocolError as error:
            return cls(raw, None, [], str(error))
        return cls(raw, message, spans)

    @property
    def name(self) -> str:
        if self.message is not None:
            return name_of(HandshakeType, self.message.handshake_type)
        return name_of(HandshakeType, self.raw[0]) if self.raw else "empty message"


@dataclass
class ServerAnswer:
    """What a server answered to one ClientHello: its handshake messages, or the alert it sent."""

    sent: bytes  # the ClientHello record(s) as written
    received: bytes = b""  # every byte the server sent back, as received
    messages: list[ReceivedMessage] = field(default_factory=list)
    alert: Alert | None = None
    problem: str = ""  # no answer, a timeout, bytes that are not records...
    openssl_error: str = ""  # what an OpenSSL server of ours logged, when it refused

    @property
    def server_hello(self) -> ServerHello | None:
        return next((m.message for m in self.messages if isinstance(m.message, ServerHello)), None)

    @property
    def certificates(self) -> list[bytes]:
        found = next((m.message for m in self.messages if isinstance(m.message, Certificate)), None)
        return list(found.certificates) if found is not None else []

    @property
    def complete(self) -> bool:
        """True when the server's whole first flight (up to ServerHelloDone) arrived."""
        return any(isinstance(m.message, ServerHelloDone) for m in self.messages)

    @property
    def finished(self) -> bool:
        """Nothing more will be read: the flight is complete, or an alert or a problem ended it."""
        return self.complete or self.alert is not None or bool(self.problem)

    @property
    def alert_name(self) -> str | None:
        return self.alert.description_name if self.alert is not None else None

    def summary(self) -> str:
        lines = []
        for received in self.messages:
            lines.append(f"{received.name} ({len(received.raw)} bytes){_message_detail(received.message)}")
            if received.error:
                lines.append(f"  could not decode: {received.error}")
        if self.alert is not None:
            level = "fatal" if self.alert.is_fatal else "warning"
            lines.append(f"Alert: {level} {self.alert.description_name} ({self.alert.description})")
        if self.openssl_error:
            lines.append(f"OpenSSL's server said: {self.openssl_error}")
        if self.problem:
            lines.append(self.problem)
        return "\n".join(lines) or "no answer"


def _message_detail(message: HandshakeMessage | None) -> str:
    if isinstance(message, ServerHello):
        extensions = ", ".join(name_of(ExtensionType, e.extension_type) for e in message.extensions or ()) or "none"
        return (
            f": version {name_of(ProtocolVersion, message.legacy_version)}, cipher suite "
            f"{name_of(CipherSuite, message.cipher_suite)}, extensions {extensions}"
        )
    if isinstance(message, Certificate):
        subjects = "; ".join(certificate_subject(der) for der in message.certificates)
        return f": {len(message.certificates)} certificate(s): {subjects}"
    return ""


class FirstFlightReader:
    """Read a server's answer to one ClientHello (sans-I/O, the shape ``net.run_connection`` drives).

    :meth:`receive_data` returns ``[answer]`` once the answer is finished (see the module docstring for
    when), and ``[]`` while more bytes are needed; ``b""`` is the server's close.  Nothing is ever sent:
    the ClientHello went out before, as raw bytes.
    """

    def __init__(self, sent: bytes = b"", *, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.answer = ServerAnswer(sent)
        self.max_bytes = max_bytes
        self._records = RecordReader()
        self._messages = HandshakeReassembler()

    def data_to_send(self) -> bytes:
        return b""

    def receive_data(self, data: bytes) -> list[ServerAnswer]:
        answer = self.answer
        if answer.finished:
            return [answer]
        if not data:
            answer.problem = "the server closed the connection without a complete answer"
            return [answer]
        answer.received += data
        if len(answer.received) > self.max_bytes:
            answer.problem = f"the answer is larger than {self.max_bytes} bytes; stopped reading"
            return [answer]
        self._records.extend(data)
        try:
            while not answer.finished and (record := self._records.next_record()) is not None:
                self._receive_record(record)
        except ProtocolError as error:
            answer.problem = f"the server's bytes are not TLS records: {error}"
        return [answer] if answer.finished else []

    def _receive_record(self, record: Record) -> None:
        answer = self.answer
        if record.content_type == ContentType.alert and len(record.fragment) == 2:
            answer.alert = Alert(record.fragment[0], record.fragment[1])
        elif record.content_type != ContentType.handshake:
            answer.problem = f"unexpected {name_of(ContentType, record.content_type)} record"
        else:
            for reassembled in self._messages.feed(record.fragment):
                answer.messages.append(ReceivedMessage.decode(reassembled.raw))
                if answer.complete:
                    return


def handshake_record_spans(data: bytes) -> tuple[list[Span], str]:
    """Annotate plaintext handshake records: each record's header, and the messages inside, in place.

    A message that lies inside one record is decoded field by field at its offset (fields named
    ``record.<message>...``); one cut across records is shown as fragments.  Returns the spans and a
    sentence about what stopped decoding ("" when nothing did).
    """
    spans: list[Span] = []
    records = RecordReader()
    messages = HandshakeReassembler()
    records.extend(data)
    try:
        while (record := records.next_record()) is not None:
            spans.extend(record.spans)
            if record.content_type != ContentType.handshake:
                continue
            starts_clean = messages.buffered == 0
            complete = messages.feed(record.fragment)
            if not (starts_clean and messages.buffered == 0):
                continue  # part of a message cut across records: its bytes are shown as a fragment
            position = record.offset + RECORD_HEADER_LENGTH
            for reassembled in complete:
                _, inner = decode_handshake(reassembled.raw)
                spans.extend(
                    dataclasses.replace(
                        span, offset=span.offset + position, field=f"record.{span.field}", depth=span.depth + 1
                    )
                    for span in inner
                )
                position += len(reassembled.raw)
    except ProtocolError as error:
        return spans, str(error)
    if records.buffered:
        have = records.buffered
        rest = data[len(data) - have :]
        need = RECORD_HEADER_LENGTH + read_header(rest)[2] if have >= RECORD_HEADER_LENGTH else RECORD_HEADER_LENGTH
        return spans, f"the data ends inside a record: need {need} bytes, have {have}"
    if messages.buffered:
        return spans, f"the data ends inside a handshake message ({messages.buffered} bytes of it)"
    return spans, ""
