"""What the TLS 1.3 client and server share: records in and out, keys per direction, the transcript, errors.

Theory of operation
-------------------
A :class:`TLS13Connection` is a sans-I/O core with the same public face as TLS 1.2's
:class:`~handshake_lib.tls.connection.TLSConnection` (``receive_data``, ``data_to_send``,
``send_application_data``, ``close``; the same events, the same errors: both are a
:class:`~handshake_lib.tls.core.TLSCore`), so :mod:`handshake_lib.net.tls` runs either.  It follows its
role's table in :mod:`handshake_lib.tls.states13` exactly as 1.2 follows :mod:`~handshake_lib.tls.states`: an
input's row is looked up before anything reads the message, the row names the handler (``_RECEIVERS``) and the
messages to send (``_SENDERS``), what was really queued is compared with the row's ``send`` column (a
difference is our bug: ``InternalError``), and ``_move`` alone changes the state.

What differs from 1.2 is where the keys change.  TLS 1.3 has no ChangeCipherSpec to say so: each direction
switches at fixed points of the handshake, and the handlers say when (:meth:`_set_read_secret`,
:meth:`_set_write_secret`)::

    ClientHello, ServerHello           plaintext records
    (0-RTT data)                       client_early_traffic_secret          (client -> server)
    EncryptedExtensions .. Finished    server_handshake_traffic_secret      (server -> client)
    (EndOfEarlyData), Certificate ..   client_handshake_traffic_secret      (client -> server)
    everything after each Finished     [sender]_application_traffic_secret_N, N + 1 after each KeyUpdate

A protected record says ``application_data`` outside; its real type is the last non-zero byte inside
(:mod:`~handshake_lib.tls.record13`).  A handshake message must not straddle a key change (RFC 8446 5.1:
``unexpected_message``).  ChangeCipherSpec is only the middlebox-compatibility byte (RFC 8446 D.4): we send
one before our first protected record, and drop one from the peer where the table allows it.  Alerts after
the keys are protected; a *plaintext* alert is still read while the handshake is under way, because a peer
that failed before it had our keys can only send it so.

The transcript hash covers every handshake message from the ClientHello (RFC 8446 4.4.1); each handler
sees it *without* the message it handles (:attr:`_messages`), which joins it right after, before the row's
replies are built.  After a HelloRetryRequest the first ClientHello is replaced by its ``message_hash``.

Every record, both ways, becomes a :class:`TranscriptEntry13` with its inner
content type, and every secret goes to the NSS key log (``keylog=``) under its 1.3 label, as OpenSSL writes
them (``CLIENT_HANDSHAKE_TRAFFIC_SECRET`` ... ``EXPORTER_SECRET``), so Wireshark opens our captures.

Errors and limits are 1.2's (docs/limits.md): a ProtocolError queues its fatal alert (encrypted when our
write keys are on), the state becomes ``ERROR``, and later calls raise ``ConnectionStateError``.  TLS 1.3
treats every alert but close_notify and user_canceled as fatal, whatever its level (RFC 8446 6.2).
KeyUpdates in a row without application data are bounded (:data:`MAX_KEY_UPDATES`, as BoringSSL), so a
peer cannot make us re-key forever.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, ClassVar

from ..errors import (
    ConnectionStateError,
    DecodeError,
    DecryptError,
    HandshakeError,
    PeerAlert,
    ProtocolError,
    RecordOverflow,
    TLSAlert,
    UnexpectedMessage,
)
from ..tables import Transition
from ..wire import Reader, Span
from .connection import HandshakeComplete, TranscriptEntry, plaintext_spans, record_spans, sent_name
from .constants import AlertLevel, CipherSuite, ContentType, HandshakeType, KeyUpdateRequest, ProtocolVersion, name_of
from .core import (
    MAX_EMPTY_RECORDS,
    MAX_RECORDS_PER_HANDSHAKE_MESSAGE,
    MAX_WARNING_ALERTS,
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    TLSCore,
)
from .key_schedule13 import (
    KeySchedule13,
    exporter,
    transcript_hash,
)
from .keylog import secret_line
from .messages import Alert, ChangeCipherSpec, Finished, HandshakeMessage
from .messages13 import KeyUpdate, decode_handshake13, is_hello_retry_request
from .record import (
    MAX_PLAINTEXT_LENGTH,
    RECORD_HEADER_LENGTH,
    HandshakeReassembler,
    Record,
    RecordReader,
    encode_record,
)
from .record13 import RecordOpener13, RecordSealer13, Suite13
from .stages13 import LIBRARY_STAGES13, Stages13
from .states13 import INITIAL_STATE, TABLES, Guard, Input, Recorded, Role, State, refine, transition_for

__all__ = [
    "TLS13Connection",
    "TranscriptEntry13",
    "plaintext_spans13",
    "KeyUpdated",
    "TicketReceived",
    "Event13",
    "MAX_KEY_UPDATES",
    "recorded",
]

RandomBytes = Callable[[int], bytes]
KeyLogWriter = Callable[[str], None]

# KeyUpdates accepted in a row with no application data between them (BoringSSL's kMaxKeyUpdates): each costs
# us a key derivation and, with update_requested, a record back.
MAX_KEY_UPDATES = 32
LEGACY_RECORD_VERSION = ProtocolVersion.TLS1_2  # every TLS 1.3 record header says 0x0303 (RFC 8446 5.1)


@dataclass(frozen=True)
class KeyUpdated:
    """A KeyUpdate moved one direction to its next traffic secret (``generation`` counts from 0)."""

    direction: str  # "sending" or "receiving"
    generation: int


@dataclass(frozen=True)
class TicketReceived:
    """The server sent NewSessionTicket: ``ticket`` (a :class:`~handshake_lib.tls.tickets13.ResumptionTicket`)
    resumes a later connection (``TLS13Client(ticket=...)``)."""

    ticket: Any


Event13 = HandshakeComplete | ApplicationData | AlertReceived | ConnectionClosed | KeyUpdated | TicketReceived

ReceiverKey = Input | tuple[State, Input]


class TranscriptEntry13(TranscriptEntry):
    """A record of a TLS 1.3 capture.  ``content_type`` is the real (inner) type of a protected record and
    ``plaintext`` its content without the type byte and padding; handshake messages are read with TLS 1.3's
    table of types (EncryptedExtensions, its Certificate, KeyUpdate...)."""

    @cached_property
    def spans(self) -> list[Span]:
        if self.encrypted or self.content_type != ContentType.handshake:
            return record_spans(self.record, encrypted=self.encrypted)
        header = [span for span in record_spans(self.record, encrypted=True) if span.offset < RECORD_HEADER_LENGTH]
        body = plaintext_spans13(self.content_type, self.record[RECORD_HEADER_LENGTH:])
        return header + [replace(s, offset=s.offset + RECORD_HEADER_LENGTH, depth=s.depth + 1) for s in body]

    def plaintext_spans(self) -> list[Span]:
        """Spans over ``plaintext`` (offsets from its first byte), for ``--trace``'s decrypted dump."""
        return plaintext_spans13(self.content_type, bytes(self.plaintext))


def plaintext_spans13(content_type: int, plaintext: bytes) -> list[Span]:
    """Spans over the content of a TLS 1.3 record: handshake messages decoded with TLS 1.3's table
    (:func:`~handshake_lib.tls.messages13.decode_handshake13`), anything else as TLS 1.2 annotates it."""
    if content_type != ContentType.handshake:
        return plaintext_spans(content_type, plaintext)
    spans: list[Span] = []
    try:
        whole = [message.raw for message in HandshakeReassembler().feed(plaintext)]
    except HandshakeError:
        whole = []
    position = 0
    for raw in whole:
        try:
            _, inner = decode_handshake13(raw)
        except HandshakeError:
            inner = [Span(0, len(raw), "handshake", "a handshake message this library does not decode", 0)]
        spans.extend(replace(span, offset=span.offset + position) for span in inner)
        position += len(raw)
    if position < len(plaintext):
        spans.append(Span(position, len(plaintext) - position, "fragment", "part of a message continued elsewhere"))
    return spans


def _input_for(message: HandshakeMessage) -> Input:
    if is_hello_retry_request(message):
        return Input.hello_retry_request
    try:
        return Input[HandshakeType(message.msg_type).name]
    except (KeyError, ValueError):  # pragma: no cover - decode_handshake13 knows only 1.3's messages
        raise UnexpectedMessage(f"{name_of(HandshakeType, message.msg_type)} is not a TLS 1.3 message") from None


def _table_name(message: object) -> str:
    """How the tables' ``send`` column names a message we sent (a HelloRetryRequest is a ServerHello on the wire)."""
    return "HelloRetryRequest" if is_hello_retry_request(message) else sent_name(message)  # type: ignore[arg-type]


class TLS13Connection(TLSCore):
    """The shared core of :class:`~handshake_lib.tls.client13.TLS13Client` and ``TLS13Server`` (on :class:`TLSCore`)."""

    role: Role
    _TABLES = TABLES
    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.change_cipher_spec: None,  # dropped: the row's guard allows one (RFC 8446 section 5)
        Input.application_data: "_on_application_data",
        Input.finished: "_on_finished",
        Input.key_update: "_on_key_update",
        Input.update_keys: None,
    }
    _SENDERS: ClassVar[dict[str, str]] = {
        "Finished": "_send_finished",
        "KeyUpdate": "_send_key_update",
    }

    def __init__(
        self,
        *,
        random_bytes: RandomBytes = os.urandom,
        keylog: KeyLogWriter | None = None,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        keep_transcript: bool = True,
        clock: Callable[[], float] | None = None,
        stages: Stages13 = LIBRARY_STAGES13,
    ) -> None:
        if not 1 <= fragment_size <= MAX_PLAINTEXT_LENGTH:
            raise ValueError(f"fragment_size must be 1 .. {MAX_PLAINTEXT_LENGTH}, not {fragment_size!r}")
        if not isinstance(stages, Stages13):
            raise TypeError(f"stages must be a Stages13 object, not {type(stages).__name__}")
        self.stages = stages  # as given; ``_stages`` has the library's defaults wired to replaced ones
        self._stages = stages.resolved()
        self._random_bytes = random_bytes
        self._keylog = keylog
        self._fragment_size = fragment_size
        self._keep_transcript = keep_transcript
        self._clock = clock
        self._state: State = INITIAL_STATE[self.role]
        self._records = RecordReader()
        self._reassembler = HandshakeReassembler()
        self._opener: RecordOpener13 | None = None
        self._sealer: RecordSealer13 | None = None
        self._outgoing = bytearray()
        self.transcript: list[TranscriptEntry] = []
        self.transcript_overflow = 0
        self.error: BaseException | None = None
        self.handshake: HandshakeComplete | None = None
        self.suite: Suite13 | None = None
        self.schedule: KeySchedule13 | None = None
        self.client_random = b""
        self.server_random = b""
        self.group: int | None = None
        self.signature_scheme: int | None = None
        self.hello_retry_request = False
        self.early_data_status: str | None = None
        self.psk_mode: str | None = None
        # The handshake messages (headers included) the transcript hash covers so far.
        self._messages: list[bytes] = []
        self._sent_names: list[str] = []
        self._guards: set[Guard] = {Guard.change_cipher_spec_droppable}
        self._handshake_secrets: dict[str, bytes] = {}  # "client"/"server" handshake traffic secrets
        self._application_secrets: dict[str, bytes] = {}  # the current generation, per sender
        self.key_generations = {"sending": 0, "receiving": 0}
        self._key_update_request = KeyUpdateRequest.update_not_requested
        self._key_updates_in_a_row = 0
        self._message_records = 0
        self._warning_alerts = 0
        self._empty_records = 0
        self._compatibility_ccs_due = False  # send one ChangeCipherSpec before our first protected record
        self._close_sent = False
        self._close_received = False

    # -- the h11-style public API ----------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def version(self) -> int:
        return ProtocolVersion.TLS1_3

    @property
    def can_send_application_data(self) -> bool:
        return self._state is State.CONNECTED and not self._close_sent

    @property
    def renegotiating(self) -> bool:
        return False  # TLS 1.3 has no renegotiation: KeyUpdate renews the keys (RFC 8446 4.6.3)

    @property
    def handshakes(self) -> list[HandshakeComplete]:
        """The connection's handshakes: one at most (TLS 1.3 has no renegotiation)."""
        return [self.handshake] if self.handshake is not None else []

    def renegotiate(self) -> None:
        raise ConnectionStateError("TLS 1.3 has no renegotiation: KeyUpdate renews the keys (update_keys)")

    def guards(self) -> frozenset[Guard]:
        return frozenset(self._guards)

    def send_application_data(self, data: bytes) -> None:
        if not self.can_send_application_data:
            raise ConnectionStateError(f"cannot send application data in state {self._state.value}")
        if data:
            self._send_content(ContentType.application_data, data)

    def update_keys(self, *, request_peer: bool = True) -> None:
        """Send KeyUpdate (RFC 8446 4.6.3) and move our sending keys on; ``request_peer`` asks the peer to do
        the same (update_requested), as ``s_client``'s ``K`` does."""
        if self._state is not State.CONNECTED or self._close_sent:
            raise ConnectionStateError(f"KeyUpdate needs a connected session, not state {self._state.value}")
        self._key_update_request = (
            KeyUpdateRequest.update_requested if request_peer else KeyUpdateRequest.update_not_requested
        )
        try:
            self._step(Input.update_keys, None, [])
        finally:
            self._key_update_request = KeyUpdateRequest.update_not_requested

    def exporter(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter (RFC 8446 7.5), as ``openssl s_client -keymatexport`` computes it."""
        if self.schedule is None or self._state is not State.CONNECTED:
            raise ConnectionStateError("the exporter secret exists once the handshake is complete")
        return exporter(self.schedule.hash_name, self.schedule.value("exporter_master_secret"), label, context, length)

    # -- incoming ----------------------------------------------------------------------------------
    def _receive_record(self, record: Record, events: list[Any]) -> None:
        raw = record.encode()
        outer = record.content_type
        protected = self._opener is not None and outer == ContentType.application_data
        entry = TranscriptEntry13(self.incoming_direction, outer, raw, b"", [], encrypted=protected)
        self._keep(entry)
        if outer == ContentType.change_cipher_spec:
            # Never protected, exactly the byte 1 (RFC 8446 section 5), and never inside a handshake message.
            if record.fragment != b"\x01" or self._reassembler.buffered:
                raise UnexpectedMessage("a ChangeCipherSpec in TLS 1.3 is the single byte 01, between messages")
            entry.plaintext = record.fragment
            entry.messages.append(ChangeCipherSpec())
            self._step(Input.change_cipher_spec, None, events)
            self._guards.discard(Guard.change_cipher_spec_droppable)
            return
        if protected:
            if len(record.fragment) > (1 << 14) + 256:
                raise RecordOverflow(f"a protected record of {len(record.fragment)} bytes; the limit is 2^14 + 256")
            assert self._opener is not None
            try:
                opened = self._opener.open(raw)
            except DecryptError:
                raise
            except ProtocolError as error:
                if self._skip_undecryptable(raw, error):
                    entry.messages.append(ApplicationData(b""))
                    return
                raise
            content_type, plaintext = opened.content_type, opened.content
        else:
            if outer == ContentType.application_data:
                if self._skip_undecryptable(raw, None):
                    return
                raise UnexpectedMessage("an encrypted record before the keys to read it")
            if self._opener is not None and not (outer == ContentType.alert and self._state is not State.CONNECTED):
                raise UnexpectedMessage(f"a plaintext {name_of(ContentType, outer)} record once records are encrypted")
            if outer not in (ContentType.handshake, ContentType.alert):
                raise UnexpectedMessage(f"a {name_of(ContentType, outer)} record in TLS 1.3")
            content_type, plaintext = outer, record.fragment
        entry.plaintext = plaintext
        entry.content_type = content_type  # the real type (a protected record says application_data outside)
        if content_type != ContentType.handshake and self._reassembler.buffered:
            raise UnexpectedMessage(
                f"{name_of(ContentType, content_type)} in the middle of a fragmented handshake message"
            )
        if content_type != ContentType.alert:
            self._warning_alerts = 0
        if content_type == ContentType.handshake:
            self._receive_handshake_fragment(plaintext, entry, events)
        elif content_type == ContentType.alert:
            reader = Reader(plaintext, annotate=False)
            alert = Alert.decode(reader)
            reader.expect_end("the alert, which is two bytes")
            entry.messages.append(alert)
            self._receive_alert(alert, events)
        else:
            if plaintext:
                self._empty_records = 0
                self._key_updates_in_a_row = 0
            else:
                self._empty_records += 1
                if self._empty_records > MAX_EMPTY_RECORDS:
                    raise UnexpectedMessage(f"more than {MAX_EMPTY_RECORDS} empty application data records in a row")
            data = ApplicationData(plaintext)
            entry.messages.append(data)
            self._step(Input.application_data, data, events)

    def _skip_undecryptable(self, record: bytes, error: ProtocolError | None) -> bool:
        """Whether to drop a record we cannot open (a server skipping refused 0-RTT data; the server's hook)."""
        return False

    def _receive_handshake_fragment(self, plaintext: bytes, entry: TranscriptEntry, events: list[Any]) -> None:
        if not plaintext:
            raise UnexpectedMessage("an empty handshake record (RFC 8446 section 5.1 forbids them)")
        self._message_records += 1
        if self._message_records > MAX_RECORDS_PER_HANDSHAKE_MESSAGE:
            raise UnexpectedMessage(
                f"a handshake message cut into more than {MAX_RECORDS_PER_HANDSHAKE_MESSAGE} records: refused"
            )
        messages = self._reassembler.feed(plaintext)
        if not self._reassembler.buffered:
            self._message_records = 0
        elif messages:
            self._message_records = 1
        hash_length = self.schedule.hash_length if self.schedule is not None else None
        for reassembled in messages:
            message, _ = decode_handshake13(reassembled.raw, hash_length=hash_length, annotate=False)
            entry.messages.append(message)
            self._receive_handshake(message, reassembled.raw, events)
            if self._close_received or self._state is State.ERROR:
                break

    def _receive_handshake(self, message: HandshakeMessage, raw: bytes, events: list[Any]) -> None:
        received = _input_for(message)
        row = transition_for(self.role, self._state, received, self.guards())
        self._step(received, message, events, row, raw=raw)

    def _receive_alert(self, alert: Alert, events: list[Any]) -> None:
        if alert.level not in (AlertLevel.warning, AlertLevel.fatal):
            raise DecodeError(f"alert level {alert.level} is neither warning nor fatal", field="alert.level")
        if alert.description == TLSAlert.user_canceled and alert.level == AlertLevel.warning:
            self._warning_alerts += 1
            if self._warning_alerts > MAX_WARNING_ALERTS:
                raise UnexpectedMessage(f"more than {MAX_WARNING_ALERTS} warning alerts in a row")
            events.append(AlertReceived(alert.level, alert.description))
            return
        if alert.description != TLSAlert.close_notify:
            # RFC 8446 6.2: every error alert is fatal, "regardless of the AlertLevel in the message".
            raise PeerAlert(alert.description)
        if self._state not in (State.CONNECTED, State.CLOSED):
            raise PeerAlert(TLSAlert.close_notify, f"peer sent close_notify during the handshake ({self._state.value})")
        events.extend((AlertReceived(alert.level, alert.description), ConnectionClosed()))
        self._close_received = True
        if not self._close_sent:
            self._send_alert(AlertLevel.warning, TLSAlert.close_notify)
            self._close_sent = True
        self._move(State.CLOSED)

    # -- the table drives the code ------------------------------------------------------------------
    def _step(
        self,
        received: Input,
        message: object,
        events: list[Any],
        row: Transition | None = None,
        *,
        raw: bytes | None = None,
    ) -> Transition:
        """Take the row for ``received``: handle ``message``, add it to the transcript, send the row's flight."""
        if self._state is State.CLOSED and received is Input.application_data:
            return Transition(State.CLOSED, received, State.CLOSED)  # we closed: discard (as 1.2 does)
        if row is None:
            row = transition_for(self.role, self._state, received, self.guards())
        receiver = self._RECEIVERS.get((row.source, row.received), self._RECEIVERS.get(row.received))
        already_sent = len(self._sent_names)
        if receiver is not None:
            event = getattr(self, receiver)(message)
            if event is not None:
                events.append(event)
        if raw is not None and row.source is not State.CONNECTED:
            self._messages.append(raw)  # post-handshake messages are not part of the transcript
            self._after_transcript(received)
        row = refine(self.role, row, self.guards())
        self._send_flight(row, already_sent)
        if row.target is State.CONNECTED and row.received is Input.finished:
            events.append(self._handshake_complete())
        return row

    def _after_transcript(self, received: Input) -> None:
        """The message just joined the transcript: derive what its hash now allows (each role's hook)."""

    # -- handlers both roles share ------------------------------------------------------------------
    def _on_application_data(self, data: ApplicationData) -> Any:
        return data if data.data else None

    def _peer(self) -> str:
        return "server" if self.role == "client" else "client"

    def _transcript_hash(self) -> bytes:
        assert self.suite is not None
        return transcript_hash(self.suite.hash_name, self._messages)

    def _on_finished(self, finished: Finished) -> None:
        """The peer's verify_data: HMAC over the transcript with its handshake traffic secret's finished key."""
        assert self.suite is not None
        peer = self._peer()
        assert self.schedule is not None
        expected = self.schedule.finished_verify_data(self._handshake_secrets[peer], self._transcript_hash())
        if not hmac.compare_digest(expected, finished.verify_data):
            raise DecryptError(f"the {peer}'s Finished verify_data does not match our transcript")

    def _send_finished(self) -> None:
        assert self.suite is not None
        assert self.schedule is not None
        verify_data = self.schedule.finished_verify_data(self._handshake_secrets[self.role], self._transcript_hash())
        self._send_handshake(Finished(verify_data))

    def _on_key_update(self, update: KeyUpdate) -> KeyUpdated:
        """The peer's next records use its next secret; update_requested makes the row answer with ours."""
        self._key_updates_in_a_row += 1
        if self._key_updates_in_a_row > MAX_KEY_UPDATES:
            raise UnexpectedMessage(f"more than {MAX_KEY_UPDATES} KeyUpdates in a row without application data")
        if self._reassembler.buffered:
            raise UnexpectedMessage("a KeyUpdate must be the last message of its record (RFC 8446 section 5.1)")
        peer = self._peer()
        self._application_secrets[peer] = self._next_secret(peer)
        self._set_read_secret(self._application_secrets[peer])
        self.key_generations["receiving"] += 1
        if update.request_update == KeyUpdateRequest.update_requested:
            self._guards.add(Guard.update_requested)
        else:
            self._guards.discard(Guard.update_requested)
        return KeyUpdated("receiving", self.key_generations["receiving"])

    def _next_secret(self, sender: str) -> bytes:
        assert self.schedule is not None
        return self.schedule.next_application_secret(self._application_secrets[sender])

    def _send_key_update(self) -> None:
        self._guards.discard(Guard.update_requested)
        self._send_handshake(KeyUpdate(self._key_update_request))
        self._application_secrets[self.role] = self._next_secret(self.role)
        self._set_write_secret(self._application_secrets[self.role])
        self.key_generations["sending"] += 1

    # -- keys ---------------------------------------------------------------------------------------
    def _log_secret(self, label: str, secret: bytes) -> None:
        if self._keylog is not None:
            self._keylog(secret_line(label, self.client_random, secret))

    def _set_read_secret(self, secret: bytes, label: str | None = None) -> None:
        assert self.suite is not None
        if self._reassembler.buffered:
            # RFC 8446 5.1: "Handshake messages MUST NOT span key changes".
            raise UnexpectedMessage("a handshake message continues across a change of keys (RFC 8446 section 5.1)")
        keys = self._stages.keys(self.suite.hash_name, secret, self.suite.key_length, self.suite.iv_length)
        self._opener = RecordOpener13(self.suite, keys.key, keys.iv)
        self._records.protected = True
        if label:
            self._log_secret(label, secret)

    def _set_write_secret(self, secret: bytes, label: str | None = None) -> None:
        assert self.suite is not None
        keys = self._stages.keys(self.suite.hash_name, secret, self.suite.key_length, self.suite.iv_length)
        self._sealer = RecordSealer13(self.suite, keys.key, keys.iv)
        if label:
            self._log_secret(label, secret)

    # -- outgoing -----------------------------------------------------------------------------------
    def _send_handshake(self, message: HandshakeMessage, raw: bytes | None = None) -> bytes:
        if raw is None:
            raw = message.to_bytes()
        if self._state is not State.CONNECTED:
            self._messages.append(raw)
        self._send_content(ContentType.handshake, raw, [message])
        return raw

    def _send_content(self, content_type: int, data: bytes, messages: list[Any] | None = None) -> None:
        chunks = [data[i : i + self._fragment_size] for i in range(0, len(data), self._fragment_size)] or [b""]
        if self._sealer is not None and self._compatibility_ccs_due:
            self._compatibility_ccs_due = False
            self._send_compatibility_ccs()
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            if self._sealer is None:
                wire = encode_record(content_type, self._plaintext_record_version(), chunk)
                encrypted = False
            else:
                wire = self._sealer.seal(chunk, content_type)
                encrypted = True
            self._outgoing += wire
            if messages is None:
                carried: list[Any] = [ApplicationData(chunk)]
            else:
                carried = list(messages) if last else []
                if last:
                    self._sent_names += (_table_name(message) for message in messages)
            self._keep(
                TranscriptEntry13(self.outgoing_direction, content_type, wire, chunk, carried, encrypted=encrypted)
            )

    def _send_compatibility_ccs(self) -> None:
        """RFC 8446 D.4's dummy ChangeCipherSpec: one plaintext record holding the byte 01, for middleboxes."""
        ccs = encode_record(ContentType.change_cipher_spec, LEGACY_RECORD_VERSION, b"\x01")
        self._outgoing += ccs
        self._keep(TranscriptEntry13(self.outgoing_direction, ContentType.change_cipher_spec, ccs, b"\x01",
                                     [ChangeCipherSpec()]))  # fmt: skip

    def _plaintext_record_version(self) -> int:
        return LEGACY_RECORD_VERSION

    def _send_alert(self, level: int, description: int) -> None:
        alert = Alert(level, description)
        self._send_content(ContentType.alert, alert.to_bytes(), [alert])

    # -- errors -------------------------------------------------------------------------------------
    # -- the end of the handshake ---------------------------------------------------------------------
    def _install_application_secrets(self) -> None:
        """Right after the server's Finished joined the transcript: the application secrets and the exporter."""
        assert self.schedule is not None
        client, server, exporter_secret = self.schedule.application(self._transcript_hash())
        self._application_secrets = {"client": client, "server": server}
        self._log_secret("CLIENT_TRAFFIC_SECRET_0", client)
        self._log_secret("SERVER_TRAFFIC_SECRET_0", server)
        self._log_secret("EXPORTER_SECRET", exporter_secret)

    def _handshake_complete(self) -> HandshakeComplete:
        assert self.suite is not None and self.schedule is not None
        self.handshake = self._completion()
        return self.handshake

    def _completion(self, **fields: Any) -> HandshakeComplete:
        assert self.suite is not None and self.schedule is not None
        return HandshakeComplete(
            version=ProtocolVersion.TLS1_3,
            cipher_suite=CipherSuite(self.suite.code),
            extended_master_secret=False,
            encrypt_then_mac=False,
            master_secret=self.schedule.master_secret,
            client_random=self.client_random,
            server_random=self.server_random,
            group=self.group,
            resumed=self.psk_mode is not None,
            resumed_by="ticket" if self.psk_mode is not None else None,
            hello_retry_request=self.hello_retry_request,
            early_data=self.early_data_status,
            psk_mode=self.psk_mode,
            key_schedule=self.schedule,
            signature_scheme=self.signature_scheme,
            **fields,
        )


def recorded(transcript: Sequence[TranscriptEntry]) -> list[Recorded]:
    """A TLS 1.3 transcript's messages as :func:`~handshake_lib.tls.states13.replay` reads them: who sent each,
    its real content type, the decoded handshake message (alerts are not table inputs and are left out)."""
    items: list[Recorded] = []
    for entry in transcript:
        sender: Role = "client" if entry.direction == "client->server" else "server"
        if entry.content_type == ContentType.handshake:
            items += [Recorded(sender, ContentType.handshake, message) for message in entry.messages]
        elif entry.content_type in (ContentType.change_cipher_spec, ContentType.application_data) and entry.messages:
            items.append(Recorded(sender, entry.content_type))
    return items
