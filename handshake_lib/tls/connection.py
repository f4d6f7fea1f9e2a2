"""What the TLS 1.2 client and server share: records in and out, events, the transcript, errors.

Theory of operation
-------------------
A :class:`TLSConnection` is a sans-I/O protocol core in the style of h11: the caller feeds it the
bytes that came from the peer (:meth:`~TLSConnection.receive_data`) and gets back *events*
(:class:`HandshakeComplete`, :class:`ApplicationData`, :class:`AlertReceived`,
:class:`ConnectionClosed`); it asks :meth:`~TLSConnection.data_to_send` for the bytes to write.  No
sockets, threads or clocks: randomness comes from an injected ``random_bytes``, so a test can replay a
whole handshake byte for byte.  :mod:`handshake_lib.net.tls` runs a core over a socket.

Incoming bytes go through three steps, one record at a time:

1. the :class:`~handshake_lib.tls.record.RecordLayer` cuts the stream into records (refusing oversized
   ones from the header alone);
2. its current read protection, if ChangeCipherSpec has switched it on, checks and decrypts the
   record (any failure is ``bad_record_mac``);
3. the content type decides: handshake fragments are reassembled into messages and decoded;
   alerts end or close the connection; everything else (each handshake message, ChangeCipherSpec,
   application data) is an input of the role's state table (:mod:`handshake_lib.tls.states`).

The table drives the code (:meth:`TLSConnection._step`): the input's row, looked up before anything
reads the message's contents, names the handler to run (``_RECEIVERS``: input -> method), the
messages to send in reply (``_SENDERS``: message name -> method that builds and queues it), and the
state to move to (after the handler, :func:`~handshake_lib.tls.states.refine` may pick the row's twin
that needs a guard the message itself decided: the ClientHello asked for a stapled OCSP response).
What was actually queued is compared with the row's ``send`` column, and a
difference is a bug (``InternalError``); only then does the state change, in :meth:`_move`, the one
method that changes it (table rows, and the moves to ``CLOSED`` and ``ERROR`` that alerts and errors
make outside the table).  Every row of both tables has a handler and every name it sends a sender,
or the class does not even get defined.

Every record, in both directions, becomes a :class:`TranscriptEntry` (wire bytes, plaintext, decoded
messages, annotated spans) so the notebooks can show the handshake as it really happened.  Each
message is decoded once, without spans, to be processed; an entry's ``spans`` are computed from its
bytes the first time someone looks at them (most handshakes are never displayed, and the spans used
to cost a third of the client's time).

Errors.  Whatever the peer sends wrong raises a :class:`~handshake_lib.errors.ProtocolError`
subclass naming the cause.  Before the exception leaves :meth:`receive_data`, the fatal alert that
the error maps to is queued in :meth:`data_to_send` (encrypted if our write direction is already
protected), the state becomes ``ERROR``, and every later call raises :class:`ConnectionStateError`.
A *received* fatal alert raises :class:`~handshake_lib.errors.PeerAlert` (with ``description``); it is
not also returned as an event, because the exception already says everything, and a connection that
ends with an exception cannot be mistaken for one that goes on.  A received ``close_notify`` is
returned as :class:`AlertReceived` then :class:`ConnectionClosed` after the handshake, and raises
``PeerAlert(close_notify)`` in the middle of one.

Limits (``docs/limits.md``).  What a peer can make a connection hold is bounded: a record by the record
layer (2^14 bytes, 2^14 + 2048 protected), a handshake message by the reassembler (128 KiB), the records
one handshake message may be cut into (:data:`MAX_RECORDS_PER_HANDSHAKE_MESSAGE`), and the records that
carry nothing: warning alerts (:data:`MAX_WARNING_ALERTS` in a row) and empty application data
(:data:`MAX_EMPTY_RECORDS` in a row).  Crossing one is ``unexpected_message``, as in OpenSSL and BoringSSL.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import (
    ConnectionStateError,
    DecodeError,
    DecryptError,
    InternalError,
    PeerAlert,
    ProtocolError,
    TLSAlert,
    UnexpectedEOF,
    UnexpectedMessage,
    UnsupportedExtension,
)
from ..wire import Reader, Span
from . import prf as prf_module
from .constants import AlertLevel, CipherSuite, ContentType, HandshakeType, ProtocolVersion, name_of
from .core import (  # the limits, events and dispatch check both versions share, still importable from here
    MAX_EMPTY_RECORDS,
    MAX_RECORDS_PER_HANDSHAKE_MESSAGE,
    MAX_TRANSCRIPT_RECORDS,
    MAX_WARNING_ALERTS,
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    TLSCore,
    check_dispatch,
)
from .key_schedule import derive_master_secret
from .keylog import client_random_line
from .messages import (
    Alert,
    ChangeCipherSpec,
    Finished,
    HandshakeMessage,
    decode_handshake,
    split_handshake_messages,
)
from .record import (
    MAX_PLAINTEXT_LENGTH,
    RECORD_HEADER_LENGTH,
    HandshakeReassembler,
    Record,
    RecordLayer,
    RecordProtection,
    encode_record,
)
from .record import _read_header as read_record_header
from .sessions import Session
from .stages import LIBRARY_STAGES, Stages
from .states import (
    INITIAL_STATE,
    TABLES,
    Guard,
    Input,
    Role,
    State,
    Transition,
    allowed_inputs,
    input_for,
    refine,
    transition_for,
)
from .suites import SUITES, SuiteParams

__all__ = [
    "HandshakeComplete",
    "ApplicationData",
    "AlertReceived",
    "ConnectionClosed",
    "RenegotiationRefused",
    "Event",
    "TranscriptEntry",
    "TLSConnection",
    "ConnectionStateError",
    "UnexpectedEOF",
    "UnsupportedExtension",
    "InternalError",
    "RSA_SUITES",
    "RUNNABLE_SUITES",
    "RSA_DEFAULT_SUITES",
    "ECDHE_DEFAULT_SUITES",
    "DEFAULT_CLIENT_SUITES",
    "MAX_RECORDS_PER_HANDSHAKE_MESSAGE",
    "MAX_WARNING_ALERTS",
    "MAX_EMPTY_RECORDS",
    "MAX_TRANSCRIPT_RECORDS",
    "check_dispatch",
    "DEFAULT_MAX_RENEGOTIATIONS",
    "DEFAULT_SERVER_SUITES",
    "record_spans",
    "plaintext_spans",
    "session_hash_messages",
    "session_hash_listing",
]

RandomBytes = Callable[[int], bytes]
KeyLogWriter = Callable[[str], None]

# The suites with RSA key exchange (lessons 05-08 teach them), and every suite this library runs end to
# end: RSA, ECDHE and DHE key exchange (tls/key_exchange.py) with the record protection tls/suites.py lists.
RSA_SUITES: tuple[CipherSuite, ...] = tuple(s for s, p in SUITES.items() if p.key_exchange == "RSA")
RUNNABLE_SUITES: tuple[CipherSuite, ...] = tuple(
    s for s, p in SUITES.items() if p.key_exchange in ("RSA", "ECDHE", "DHE")
)
# The four RSA key-exchange suites the course teaches, AEAD first, as OpenSSL orders them.
RSA_DEFAULT_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
)
# What a modern TLS 1.2 client offers: forward-secret ECDHE suites first (ECDSA before RSA, AES-256 before
# AES-128, as OpenSSL 3 orders them), then the RSA key exchange the early lessons teach, for old servers.
ECDHE_DEFAULT_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
)
DEFAULT_CLIENT_SUITES: tuple[CipherSuite, ...] = ECDHE_DEFAULT_SUITES + RSA_DEFAULT_SUITES
# A server also accepts DHE with the RFC 7919 groups (after ECDHE, before RSA: forward secrecy first), for
# clients that offer it; browsers no longer do, so the client's default leaves it out.
DHE_DEFAULT_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
)
# Everything else the record layer can run, for clients that ask for it (curl --ciphers, s_client -cipher):
# ECDHE with ChaCha20 and AES-CBC, DHE with ChaCha20 and AES-CBC, each after its AES-GCM suites.
_OTHER_FORWARD_SECRET: tuple[CipherSuite, ...] = tuple(
    s for s, p in SUITES.items() if p.forward_secret and s not in ECDHE_DEFAULT_SUITES + DHE_DEFAULT_SUITES
)
DEFAULT_SERVER_SUITES: tuple[CipherSuite, ...] = (
    ECDHE_DEFAULT_SUITES
    + tuple(s for s in _OTHER_FORWARD_SECRET if SUITES[s].key_exchange == "ECDHE")
    + DHE_DEFAULT_SUITES
    + tuple(s for s in _OTHER_FORWARD_SECRET if SUITES[s].key_exchange == "DHE")
    + RSA_DEFAULT_SUITES
)

# Renegotiations the *peer* may start on one connection (RFC 5746); beyond them we decline with the warning
# no_renegotiation.  Each costs us a full handshake's public-key work, so a peer that renegotiates in a loop
# is a denial of service (CVE-2011-1473; OpenSSL 3 servers refuse client-initiated ones unless told to).
DEFAULT_MAX_RENEGOTIATIONS = 3


# ConnectionStateError, UnexpectedEOF, UnsupportedExtension and InternalError live in errors.py now;
# they stay importable from here (and listed in __all__) for code written against this module.


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandshakeComplete:
    """Both Finished messages checked: the connection is ready for application data."""

    version: int
    cipher_suite: CipherSuite
    extended_master_secret: bool
    encrypt_then_mac: bool
    master_secret: bytes = field(repr=False)
    client_random: bytes
    server_random: bytes
    # The key block both directions' protection came from (lessons open records with it; never sent).
    key_block: prf_module.KeyBlock | None = field(default=None, repr=False, compare=False)
    # Mutual TLS: the client's certificates, leaf first.  On the server the path its validation built (to
    # the trusted root); on the client the chain it sent.  Empty when none was asked for or given.
    client_certificates: tuple[x509.Certificate, ...] = field(default=(), compare=False)
    # OCSP stapling (RFC 6066 section 8): the DER OCSP response the server sent in CertificateStatus, as it
    # came (on the server: the one it sent); None when none was asked for or stapled.  The client's validator
    # has read it when the client verifies certificates.
    stapled_ocsp_response: bytes | None = field(default=None, repr=False, compare=False)
    # ECDHE/DHE: the group the ephemeral keys came from (a NamedGroup); None for RSA key exchange.
    group: int | None = field(default=None, compare=False)
    # Resumption: True for an abbreviated handshake (the master secret is the resumed session's); ``session``
    # is what a client keeps to resume later (``TLSClient(session=...)``), None when the server offered none.
    resumed: bool = field(default=False, compare=False)
    session: Session | None = field(default=None, repr=False, compare=False)
    # How a resumed handshake found its session: "ticket" or "session ID" (None for a full handshake).
    resumed_by: str | None = field(default=None, compare=False)
    # Renegotiation (RFC 5746): 0 for a connection's first handshake, 1 for the first renegotiation, ...
    renegotiation: int = field(default=0, compare=False)
    # TLS 1.3 only (tls/client13.py, tls/server13.py): the server asked for another key share first
    # (HelloRetryRequest); what became of 0-RTT data ("accepted", "rejected", None: none offered); how a PSK
    # was used ("psk_dhe_ke", "psk_ke", None: a full handshake); every secret of the key schedule.
    hello_retry_request: bool = field(default=False, compare=False)
    early_data: str | None = field(default=None, compare=False)
    psk_mode: str | None = field(default=None, compare=False)
    key_schedule: Any = field(default=None, repr=False, compare=False)
    # The server's signature scheme in CertificateVerify (TLS 1.3) or ServerKeyExchange; None for RSA/PSK.
    signature_scheme: int | None = field(default=None, compare=False)

    @property
    def client_subject(self) -> str | None:
        """The client certificate's subject (RFC 4514), or None without one: who connected."""
        return self.client_certificates[0].subject.rfc4514_string() if self.client_certificates else None


@dataclass(frozen=True)
class RenegotiationRefused:
    """The peer declined the renegotiation we asked for (warning ``no_renegotiation``): the keys stay."""


Event = HandshakeComplete | ApplicationData | AlertReceived | ConnectionClosed | RenegotiationRefused


class TranscriptEntry:
    """One record as it crossed the wire, with what it meant.

    ``spans`` annotate ``record`` (offset 0 is the record's first header byte): header fields always,
    the decoded messages when the record is plaintext, one opaque span for a protected fragment.
    Unless given, they are computed by :func:`record_spans` on first access and then kept.

    ``direction`` is ``"client->server"`` or ``"server->client"``; ``plaintext`` is the record's
    content after decryption (the fragment itself for an unprotected record).
    """

    def __init__(
        self,
        direction: str,
        content_type: int,
        record: bytes,
        plaintext: bytes,
        messages: list[Any] | None = None,
        spans: list[Span] | None = None,
        encrypted: bool = False,
    ) -> None:
        self.direction = direction
        self.content_type = content_type
        self.record = record
        self.plaintext = plaintext
        self.messages: list[Any] = [] if messages is None else messages
        self.encrypted = encrypted
        if spans is not None:
            self.__dict__["spans"] = spans  # given: cached_property returns it as is

    @cached_property
    def spans(self) -> list[Span]:
        return record_spans(self.record, encrypted=self.encrypted)

    def __repr__(self) -> str:
        return (
            f"TranscriptEntry(direction={self.direction!r}, content_type={self.content_type!r}, "
            f"record={self.record!r}, plaintext={self.plaintext!r}, messages={self.messages!r}, "
            f"encrypted={self.encrypted!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TranscriptEntry):
            return NotImplemented
        return (self.direction, self.content_type, self.record, self.plaintext, self.messages, self.encrypted) == (
            other.direction,
            other.content_type,
            other.record,
            other.plaintext,
            other.messages,
            other.encrypted,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    @property
    def content_type_name(self) -> str:
        return name_of(ContentType, self.content_type)

    def summary(self) -> str:
        """``server->client handshake: ServerHello`` - one line for listings."""
        names = ", ".join(type(m).__name__ for m in self.messages) or f"{len(self.plaintext)} bytes"
        lock = " (encrypted)" if self.encrypted else ""
        return f"{self.direction} {self.content_type_name}{lock}: {names}"


def plaintext_spans(content_type: int, plaintext: bytes) -> list[Span]:
    """Spans over a decrypted fragment, from the same decoders that annotate plaintext records.

    A transcript annotates a protected record as header + opaque ciphertext; to explain what it held, the
    plaintext is decoded as the unprotected record it would have been (:func:`record_spans`), and the
    header's spans are dropped: offsets count from the fragment's first byte, depths from its top level.
    The CLI's ``--trace``, lesson 07's record explorer and lesson 08's stepper all use this.
    """
    whole = encode_record(content_type, ProtocolVersion.TLS1_2, plaintext)
    return [
        replace(span, offset=span.offset - RECORD_HEADER_LENGTH, depth=max(0, span.depth - 1))
        for span in record_spans(whole, encrypted=False)
        if span.offset >= RECORD_HEADER_LENGTH
    ]


def record_spans(record: bytes, *, encrypted: bool) -> list[Span]:
    """Annotated spans over one whole record: its header, and its contents when they are plaintext.

    Never raises: bytes that do not decode (a fragment of a message continued in the next record, or
    a malformed one) get one span saying so.  The header is read by the record layer's header reader,
    and handshake messages are cut apart by its reassembler: the same code the connection runs.
    """
    spans: list[Span] = []
    try:
        content_type, _, length = read_record_header(record, 0, spans)
    except ProtocolError:
        return spans
    if encrypted:
        if length:
            spans.append(
                Span(RECORD_HEADER_LENGTH, length, "record.protected_fragment", "encrypted and authenticated", 1)
            )
        return spans
    position = RECORD_HEADER_LENGTH
    end = min(len(record), RECORD_HEADER_LENGTH + length)
    whole_messages: list[bytes] = []
    if content_type == ContentType.handshake:
        # A claimed length over the bound leaves the list empty: the fragment is then "continued elsewhere".
        with contextlib.suppress(ProtocolError):
            whole_messages = [message.raw for message in HandshakeReassembler().feed(record[position:end])]
    next_message = iter(whole_messages)
    while position < end:
        chunk = record[position:end]
        try:
            if content_type == ContentType.handshake:
                raw = next(next_message, None)
                if raw is None:  # the rest is the start of a message that a later record completes
                    raise DecodeError("partial")
                message_length = len(raw)
                _, inner = decode_handshake(raw, verify_data_length=None)
            elif content_type == ContentType.change_cipher_spec:
                message_length, inner = 1, _spans_of(ChangeCipherSpec.decode, chunk[:1])
            elif content_type == ContentType.alert:
                message_length, inner = 2, _spans_of(Alert.decode, chunk[:2])
            else:
                message_length = len(chunk)
                inner = [Span(0, message_length, "application_data", "application data (plaintext)")]
        except ProtocolError:
            spans.append(Span(position, len(chunk), "record.fragment", "part of a message continued elsewhere", 1))
            break
        spans.extend(replace(s, offset=s.offset + position, depth=s.depth + 1) for s in inner)
        position += message_length
    return spans


def _spans_of(decode: Callable[[Reader], object], data: bytes) -> list[Span]:
    reader = Reader(data)
    decode(reader)
    reader.expect_end()
    return reader.spans


# A row finds its handler by (source state, input) if there is an entry for the pair, else by its input.
ReceiverKey = Input | tuple[State, Input]


def sent_name(message: object) -> str:
    """How a state table's ``send`` column names ``message``: ``ServerHello``, ``Alert(no_renegotiation)``."""
    if isinstance(message, Alert):
        return f"Alert({name_of(TLSAlert, message.description)})"
    return getattr(message, "table_name", type(message).__name__)


class TLSConnection(TLSCore):
    """The shared core of :class:`~handshake_lib.tls.client.TLSClient` and ``TLSServer`` (on :class:`TLSCore`)."""

    role: Role
    _TABLES = TABLES
    # Table input -> name of the method that handles the received message (None: nothing to check).
    # Each class lists its own; __init_subclass__ merges them along the class hierarchy.
    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.change_cipher_spec: "_on_change_cipher_spec",
        Input.finished: "_on_finished",
        Input.application_data: "_on_application_data",
        (State.CLOSED, Input.application_data): None,  # discarded: we closed (RFC 5246 section 7.2.1)
        Input.renegotiate: "_on_renegotiate",
        Input.no_renegotiation: "_on_no_renegotiation",
    }
    # A name in a row's ``send`` column -> name of the method that builds the message and queues it.
    _SENDERS: ClassVar[dict[str, str]] = {
        "ChangeCipherSpec": "_send_change_cipher_spec",
        "Finished": "_send_finished",
        "Alert(no_renegotiation)": "_send_no_renegotiation",
    }

    def __init__(
        self,
        *,
        random_bytes: RandomBytes = os.urandom,
        keylog: KeyLogWriter | None = None,
        extended_master_secret: bool = True,
        encrypt_then_mac: bool = True,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        stages: Stages = LIBRARY_STAGES,
        keep_transcript: bool = True,
        max_renegotiations: int = DEFAULT_MAX_RENEGOTIATIONS,
    ) -> None:
        if isinstance(max_renegotiations, bool) or not isinstance(max_renegotiations, int) or max_renegotiations < 0:
            raise ValueError(f"max_renegotiations must be a whole number >= 0, not {max_renegotiations!r}")
        # Framing, both directions' protection and the switch at ChangeCipherSpec live in the record layer;
        # ``fragment_size`` below 2^14 cuts our handshake messages across records (the peer reassembles).
        self._records = RecordLayer(ProtocolVersion.TLS1_2, fragment_size=fragment_size)
        self._state: State = INITIAL_STATE[self.role]
        # Every record in and out, for the lessons; a server that does not show them (``keep_transcript=False``)
        # keeps none, so that a long or hostile connection costs no memory per record.
        self.transcript: list[TranscriptEntry] = []
        self._keep_transcript = keep_transcript
        self.transcript_overflow = 0  # records not kept: the transcript was full (MAX_TRANSCRIPT_RECORDS)
        self.error: BaseException | None = None
        self.params: SuiteParams | None = None
        self.client_random: bytes = b""
        self.server_random: bytes = b""
        self.master_secret: bytes = b""
        self.key_block: prf_module.KeyBlock | None = None  # set with the master secret
        self.handshake: HandshakeComplete | None = None
        self._reset_handshake_outcome()
        # What we asked for; ``use_*`` say what was agreed once the hellos are exchanged.
        self.offer_extended_master_secret = extended_master_secret
        self.offer_encrypt_then_mac = encrypt_then_mac
        self.use_extended_master_secret = False
        self.use_encrypt_then_mac = False
        self._random_bytes = random_bytes
        self._keylog = keylog
        if not isinstance(stages, Stages):
            raise TypeError(f"stages must be a Stages object, not {type(stages).__name__}")
        self.stages = stages  # as given; ``_stages`` has the library's defaults wired to replaced ones
        self._stages = stages.resolved()
        self._reassembler = HandshakeReassembler()
        self._message_records = 0  # records that carried pieces of the handshake message being reassembled
        self._warning_alerts = 0  # warning alerts in a row (MAX_WARNING_ALERTS)
        self._empty_records = 0  # empty application data records in a row (MAX_EMPTY_RECORDS)
        self._outgoing = bytearray()
        # Every handshake message, header included, in order: the input of the transcript hash.
        self._handshake_messages = bytearray()
        self._messages_before_current = b""
        self._close_sent = False
        self._close_received = False
        # Names (as the tables' ``send`` column spells them) of every message we queued, in order.
        self._sent_names: list[str] = []
        # Renegotiation (RFC 5746).  Every completed handshake, in order (``handshake`` is the last); whether the
        # first one agreed renegotiation_info; each side's last Finished verify_data, which the next handshake's
        # renegotiation_info must carry; how many renegotiations the peer started (max_renegotiations bounds it).
        self.handshakes: list[HandshakeComplete] = []
        self.secure_renegotiation = False
        self.client_verify_data = b""
        self.server_verify_data = b""
        self.max_renegotiations = max_renegotiations
        self.peer_renegotiations = 0
        self._handshake_under_way = True  # until this handshake's Finished messages are both checked
        self._change_cipher_spec_sent = False  # in this handshake: our records are under its keys

    # -- the h11-style public API ----------------------------------------------------------------
    @property
    def state(self) -> State:
        """Where the connection is (read only: it changes in :meth:`_move` alone)."""
        return self._state

    @property
    def version(self) -> int:
        """The protocol version in our record headers (and, once agreed, of the connection)."""
        return self._records.version

    @version.setter
    def version(self, value: int) -> None:
        self._records.version = value

    def send_application_data(self, data: bytes) -> None:
        """Queue ``data`` as application data records (the handshake must be complete).

        During a renegotiation data may still go out under the current keys, until our ChangeCipherSpec.
        """
        if not self.can_send_application_data:
            raise ConnectionStateError(f"cannot send application data in state {self.state.value}")
        if data:  # an empty record is legal but says nothing: send none
            self._send_records(ContentType.application_data, data)

    @property
    def renegotiating(self) -> bool:
        """A renegotiation is under way (the connection had a handshake and is in another one)."""
        return bool(self.handshakes) and self._handshake_under_way and self._state is not State.ERROR

    @property
    def can_send_application_data(self) -> bool:
        """Connected, or renegotiating and our ChangeCipherSpec not sent yet (data goes under the current keys;
        between our ChangeCipherSpec and the end of the handshake it must wait: RFC 5246 7.4.9)."""
        return self._state is State.CONNECTED or (self.renegotiating and not self._change_cipher_spec_sent)

    def renegotiate(self) -> None:
        """Start a new handshake over the open connection (RFC 5746): a client sends a ClientHello whose
        renegotiation_info carries its last Finished; a server sends HelloRequest (the client may decline).

        Needs the first handshake to have agreed secure renegotiation, and no handshake under way
        (ConnectionStateError otherwise: the table has no row for it).  New keys take effect at the new
        ChangeCipherSpec; application data keeps flowing until then.
        """
        if self.state is State.ERROR:
            raise ConnectionStateError(f"the connection ended with an error: {self.error}")
        try:
            row = self._transition(Input.renegotiate)
        except UnexpectedMessage as refused:
            why = (
                "the peer did not agree to secure renegotiation (RFC 5746)"
                if self.state is State.CONNECTED
                else f"in state {self.state.value}; it needs an open connection with no handshake under way"
            )
            raise ConnectionStateError(f"cannot renegotiate: {why}") from refused
        self._step(Input.renegotiate, None, [], row)

    # -- incoming records ------------------------------------------------------------------------
    def _receive_record(self, record: Record, events: list[Event]) -> None:
        # Into the transcript before it is checked: a record that fails its MAC is part of the story.
        raw = record.encode()
        entry = TranscriptEntry(
            self.incoming_direction, record.content_type, raw, b"", [], encrypted=self._records.read_protected
        )
        self._keep(entry)
        plaintext = self._records.unprotect(record).data
        entry.plaintext = plaintext
        content_type = record.content_type
        if content_type != ContentType.handshake and self._reassembler.buffered:
            raise UnexpectedMessage(
                f"{name_of(ContentType, content_type)} record in the middle of a fragmented handshake message"
            )
        if content_type != ContentType.alert:
            self._warning_alerts = 0
        if content_type != ContentType.application_data or plaintext:
            self._empty_records = 0
        if content_type == ContentType.handshake:
            if not plaintext:
                raise DecodeError("empty handshake record (RFC 5246 section 6.2.1 forbids it)", field="record.length")
            self._message_records += 1
            if self._message_records > MAX_RECORDS_PER_HANDSHAKE_MESSAGE:
                # unexpected_message, as BoringSSL answers too many empty records: each record is well
                # formed (not decode_error), it is the way the peer cuts its messages that we refuse.
                raise UnexpectedMessage(
                    f"a handshake message cut into more than {MAX_RECORDS_PER_HANDSHAKE_MESSAGE} records "
                    f"({self._reassembler.buffered + len(plaintext)} bytes so far): refused as a denial of service"
                )
            verify_length = self.params.verify_data_length if self.params is not None else 12
            # ServerKeyExchange and ClientKeyExchange have one body per key exchange: the suite's says which.
            key_exchange = self.params.key_exchange if self.params is not None else None
            messages = self._reassembler.feed(plaintext)
            if not self._reassembler.buffered:
                self._message_records = 0  # the record ended on a message boundary
            elif messages:
                self._message_records = 1  # the next message started in this record
            for reassembled in messages:
                message, _ = decode_handshake(
                    reassembled.raw, verify_data_length=verify_length, annotate=False, key_exchange=key_exchange
                )
                entry.messages.append(message)
                self._receive_handshake(message, reassembled.raw, events)
                if self._close_received:
                    break
        elif content_type == ContentType.change_cipher_spec:
            # The record holds exactly one byte, 1 (RFC 5246 section 7.1).  Anything else is not a
            # ChangeCipherSpec message at all: unexpected_message, as OpenSSL answers
            # (SSL_R_BAD_CHANGE_CIPHER_SPEC) and the independent test suite of issue 8 expects.
            if plaintext != b"\x01":
                raise UnexpectedMessage(
                    f"a ChangeCipherSpec record of {len(plaintext)} bytes ({plaintext[:8].hex()}); "
                    "RFC 5246 section 7.1 allows only the one byte 01"
                )
            change_cipher_spec = ChangeCipherSpec.decode(Reader(plaintext, annotate=False))
            entry.messages.append(change_cipher_spec)
            self._step(Input.change_cipher_spec, change_cipher_spec, events)
        elif content_type == ContentType.alert:
            reader = Reader(plaintext, annotate=False)
            alert = Alert.decode(reader)
            reader.expect_end("the alert, which is two bytes")
            entry.messages.append(alert)
            self._receive_alert(alert, events)
        elif content_type == ContentType.application_data:
            if not plaintext:
                self._empty_records += 1
                if self._empty_records > MAX_EMPTY_RECORDS:
                    raise UnexpectedMessage(f"more than {MAX_EMPTY_RECORDS} empty application data records in a row")
            data = ApplicationData(plaintext)
            entry.messages.append(data)
            self._step(Input.application_data, data, events)

    def _receive_handshake(self, message: HandshakeMessage, raw: bytes, events: list[Event]) -> None:
        received = input_for(ContentType.handshake, message)
        if received is None:
            raise UnexpectedMessage(
                f"{name_of(HandshakeType, message.handshake_type)} is not part of the TLS 1.2 handshake"
            )
        row = self._transition(received)
        if received is not Input.hello_request:  # HelloRequest is left out of the handshake hashes (7.4.1.1)
            if self._state is State.CONNECTED:
                self._handshake_messages.clear()  # a renegotiating ClientHello: the hashes start anew
            self._messages_before_current = bytes(self._handshake_messages)
            self._handshake_messages += raw
        self._step(received, message, events, row)

    def _receive_alert(self, alert: Alert, events: list[Event]) -> None:
        if alert.level not in (AlertLevel.warning, AlertLevel.fatal):
            raise DecodeError(f"alert level {alert.level} is neither warning nor fatal", field="alert.level")
        if alert.level == AlertLevel.fatal:
            raise PeerAlert(alert.description)
        if alert.description != TLSAlert.close_notify:
            self._warning_alerts += 1
            if self._warning_alerts > MAX_WARNING_ALERTS:
                # OpenSSL: SSL_R_TOO_MANY_WARN_ALERTS with unexpected_message; BoringSSL the same.
                raise UnexpectedMessage(f"more than {MAX_WARNING_ALERTS} warning alerts in a row")
            if alert.description == TLSAlert.no_renegotiation and Input.no_renegotiation in allowed_inputs(
                self.role, self._state, self.guards()
            ):
                self._step(Input.no_renegotiation, alert, events)  # the answer to our renegotiation: a row
                return
            events.append(AlertReceived(alert.level, alert.description))
            return
        if self.state not in (State.CONNECTED, State.CLOSED):
            raise PeerAlert(TLSAlert.close_notify, f"peer sent close_notify during the handshake ({self.state.value})")
        events.extend((AlertReceived(alert.level, alert.description), ConnectionClosed()))
        self._close_received = True
        if not self._close_sent:
            # RFC 5246 section 7.2.1: answer close_notify with our own before closing.
            self._send_alert(AlertLevel.warning, TLSAlert.close_notify)
            self._close_sent = True
        self._move(State.CLOSED)

    # -- the state table drives the code ---------------------------------------------------------
    def guards(self) -> frozenset[Guard]:
        """The table guards that hold now (see :class:`~handshake_lib.tls.states.Guard`).

        The renegotiation guards always; the role's handshake guards (:meth:`_handshake_guards`) only while
        a handshake is under way: once connected, what the last handshake decided (its suite, a stapled
        response) must not pick the rows of the next one, which its own ClientHello decides.
        """
        guards = set(self._renegotiation_guards())
        if self._handshake_under_way:
            guards |= self._handshake_guards()
        return frozenset(guards)

    def _handshake_guards(self) -> frozenset[Guard]:
        return frozenset()

    def _renegotiation_guards(self) -> set[Guard]:
        guards: set[Guard] = set()
        if self.secure_renegotiation:
            guards.add(Guard.secure_renegotiation)
        renegotiating = self.renegotiating
        if renegotiating:
            guards.add(Guard.renegotiating)
        if self.peer_renegotiations < self.max_renegotiations or renegotiating:  # one under way was allowed
            guards.add(Guard.renegotiation_allowed)
        return guards

    def _transition(self, received: Input) -> Transition:
        return transition_for(self.role, self._state, received, self.guards())

    def _step(self, received: Input, message: object, events: list[Event], row: Transition | None = None) -> Transition:
        """Take the table's row for ``received``: handle ``message``, send the row's flight, move on.

        The handler and each message of the flight come from the row (``_RECEIVERS``, ``_SENDERS``); if
        what was queued differs from the row's ``send`` column, the code and its table disagree: that is
        our bug, an InternalError, and the state does not move.
        """
        if row is None:
            row = self._transition(received)
        receiver = self._RECEIVERS.get((row.source, row.received), self._RECEIVERS.get(row.received))
        already_sent = len(self._sent_names)
        if receiver is not None:
            event = getattr(self, receiver)(message)
            if event is not None:
                events.append(event)
            # A guard the message itself decided (the ClientHello asked for a stapled response) can only
            # add to the flight: the row's twin that needs it too, if there is one (states.refine).
            row = refine(self.role, row, self.guards())
        self._send_flight(row, already_sent)
        if row.target is State.CONNECTED and row.received is Input.finished:
            events.append(self._handshake_complete())
        return row

    # -- handlers both roles share (the rest are in client.py and server.py) ----------------------
    def _on_change_cipher_spec(self, message: ChangeCipherSpec) -> None:
        self._records.activate_pending_read()  # the peer's next records are protected

    def _on_application_data(self, data: ApplicationData) -> Event | None:
        # Empty records are legal (and were used as padding against BEAST): they make no event.
        return data if data.data else None

    def _on_finished(self, finished: Finished) -> None:
        """The peer's Finished must carry verify_data over every handshake message before it."""
        peer = "server" if self.role == "client" else "client"
        expected = self._finished_verify_data(f"{peer} finished", self._messages_before_current)
        if not hmac.compare_digest(expected, finished.verify_data):
            raise DecryptError(f"the {peer}'s Finished verify_data does not match our transcript")
        self._keep_verify_data(peer, finished.verify_data)

    def _send_finished(self) -> None:
        verify_data = self._finished_verify_data(f"{self.role} finished", bytes(self._handshake_messages))
        self._keep_verify_data(self.role, verify_data)
        self._send_handshake(Finished(verify_data))

    def _keep_verify_data(self, role: str, verify_data: bytes) -> None:
        # RFC 5746 section 3.1: the next handshake's renegotiation_info carries this handshake's Finished data.
        if role == "client":
            self.client_verify_data = verify_data
        else:
            self.server_verify_data = verify_data

    def _send_no_renegotiation(self) -> None:
        self._send_alert(AlertLevel.warning, TLSAlert.no_renegotiation)

    # -- renegotiation (RFC 5746) ----------------------------------------------------------------
    def _on_renegotiate(self, _: None) -> None:
        """The application asked for a new handshake (the row says what goes out)."""

    def _on_no_renegotiation(self, _: Alert) -> Event:
        self._handshake_under_way = False  # the client's hello was declined: the old keys go on
        return RenegotiationRefused()

    def _begin_renegotiation(self) -> None:
        """Forget the last handshake's per-handshake state; the connection's keys stay until the new CCS.

        The handshake hashes start again with the new hello: a ClientHello received once connected clears
        them (:meth:`_receive_handshake`), and a client clears them before it sends its own.
        """
        self._handshake_under_way = True
        self._change_cipher_spec_sent = False
        self._reset_handshake_outcome()
        self._reset_handshake()

    def _reset_handshake_outcome(self) -> None:
        """What a handshake ends with besides its keys (HandshakeComplete's fields): empty at first and
        again when a renegotiation begins."""
        self.client_certificates: list[x509.Certificate] = []  # see HandshakeComplete.client_certificates
        # The validator's report on the client's chain (mutual TLS), kept by a server that asked for one.
        self.client_certificate_report: Any = None
        self.stapled_ocsp_response: bytes | None = None  # see HandshakeComplete.stapled_ocsp_response
        self.group: int | None = None  # see HandshakeComplete.group
        self.resumed = False  # see HandshakeComplete.resumed
        self.session: Session | None = None  # see HandshakeComplete.session

    def _reset_handshake(self) -> None:
        """What each role forgets when a renegotiation begins (its hellos, the peer's messages, its guards)."""

    def _renegotiation_info(self, sender: str | None = None) -> bytes:
        """What ``sender``'s (default: our) hello carries in renegotiation_info in this handshake (RFC 5746
        3.4-3.7): empty on the first handshake, then what the ``renegotiation_info`` stage says (the library's:
        the client's last verify_data in ClientHello, both sides' in ServerHello)."""
        if not self.handshakes:
            return b""
        try:
            info = self._stages.renegotiation_info(
                sender or self.role, self.client_verify_data, self.server_verify_data
            )
        except Exception as error:  # a learner's stage may fail any way; say which stage
            raise InternalError(f"renegotiation_info failed: {type(error).__name__}: {error}") from error
        if not isinstance(info, bytes | bytearray):
            raise InternalError(f"renegotiation_info returned a {type(info).__name__}, not bytes")
        return bytes(info)

    # -- errors ----------------------------------------------------------------------------------
    # -- outgoing --------------------------------------------------------------------------------
    def _send_records(self, content_type: int, data: bytes, messages: list[Any] | None = None) -> None:
        """Queue ``data`` in as many records as the fragment size needs, each one in the transcript.

        ``messages`` are what ``data`` holds.  A message cut into pieces is listed in the record that
        completes it, as for the records we receive, so that a walk over the transcript meets each message
        once; by default each record's plaintext is its own application data.
        """
        records = self._records.records_for(content_type, data)
        for number, sent in enumerate(records, start=1):
            self._outgoing += sent.wire
            if messages is None:
                carried: list[Any] = [ApplicationData(sent.plaintext)]
            else:
                carried = list(messages) if number == len(records) else []
                if number == len(records):
                    self._sent_names += (sent_name(message) for message in messages)
            self._keep(
                TranscriptEntry(
                    self.outgoing_direction, content_type, sent.wire, sent.plaintext, carried, encrypted=sent.encrypted
                )
            )

    def _send_handshake(self, message: HandshakeMessage, raw: bytes | None = None) -> bytes:
        """Send one handshake message (in as many records as it needs); returns its bytes.

        ``raw`` is the message's encoding when the caller already has it (saves encoding it twice).
        """
        if raw is None:
            raw = message.to_bytes()
        self._handshake_messages += raw
        self._send_records(ContentType.handshake, raw, [message])
        return raw

    def _send_change_cipher_spec(self) -> None:
        if self._records.pending_write is None:  # pragma: no cover - the handshake code always installs keys first
            raise InternalError("ChangeCipherSpec without pending keys")
        self._send_records(ContentType.change_cipher_spec, ChangeCipherSpec().to_bytes(), [ChangeCipherSpec()])
        self._records.activate_pending_write()
        self._change_cipher_spec_sent = True

    def _send_alert(self, level: int, description: int) -> None:
        alert = Alert(level, description)
        self._send_records(ContentType.alert, alert.to_bytes(), [alert])

    # -- key schedule (shared by both roles) ------------------------------------------------------
    def _transcript_hash(self, messages: bytes) -> bytes:
        assert self.params is not None
        return prf_module.transcript_hash(self.params.prf_hash, messages)

    def _install_keys(self, pre_master_secret: bytes) -> None:
        """Master secret, key block, pending protection for both directions, and the key log line.

        Must run right after ClientKeyExchange joined the transcript: that is where the extended
        master secret's session hash stops (RFC 7627 section 3).
        """
        params = self.params
        assert params is not None
        ems = self.use_extended_master_secret
        session_hash = self._transcript_hash(bytes(self._handshake_messages)) if ems else b""
        master = derive_master_secret(
            pre_master_secret, self.client_random, self.server_random, session_hash, params, ems, stages=self._stages
        )
        if not isinstance(master, bytes) or len(master) != 48:
            # Only a replaced stage can get here; name them, so the learner knows where to look.
            replaced = ", ".join(self.stages.replaced())
            raise InternalError(f"the master secret is {master!r:.40}, not 48 bytes (replaced stages: {replaced})")
        self._install_master_secret(master)

    def _install_master_secret(self, master: bytes) -> None:
        """Key block and pending protection from ``master`` and this handshake's randoms, and the key log
        line: after a full key exchange, or straight from a resumed session's master secret."""
        params = self.params
        assert params is not None
        self.master_secret = master
        keys = self._stages.key_block(master, self.server_random, self.client_random, params)
        self.key_block = keys
        options = {
            "encrypt_then_mac": self.use_encrypt_then_mac,
            "random_bytes": self._random_bytes,
            "record_mac": self._stages.record_mac,
        }
        client_write = RecordProtection.client_write(keys, params, **options)
        server_write = RecordProtection.server_write(keys, params, **options)
        if self.role == "client":
            self._records.pending_write, self._records.pending_read = client_write, server_write
        else:
            self._records.pending_write, self._records.pending_read = server_write, client_write
        if self._keylog is not None:
            self._keylog(client_random_line(self.client_random, master))

    def _resumed_by(self) -> str | None:
        """``"ticket"`` or ``"session ID"`` when this handshake resumed a session (each role knows how)."""
        return None

    def _finished_verify_data(self, label: str, messages: bytes) -> bytes:
        """verify_data for ``label`` over the handshake ``messages`` (headers included, in order)."""
        assert self.params is not None
        return self._stages.verify_data(self.master_secret, label, messages, self.params.prf_hash)

    def _handshake_complete(self) -> HandshakeComplete:
        assert self.params is not None
        self.handshake = HandshakeComplete(
            version=self.version,
            cipher_suite=self.params.suite,
            extended_master_secret=self.use_extended_master_secret,
            encrypt_then_mac=self.use_encrypt_then_mac,
            master_secret=self.master_secret,
            client_random=self.client_random,
            server_random=self.server_random,
            key_block=self.key_block,
            client_certificates=tuple(self.client_certificates),
            stapled_ocsp_response=self.stapled_ocsp_response,
            group=self.group,
            resumed=self.resumed,
            session=self.session,
            resumed_by=self._resumed_by(),
            renegotiation=len(self.handshakes),
        )
        self.handshakes.append(self.handshake)
        self._handshake_under_way = False
        return self.handshake


def check_rsa_private_key(key: object) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("TLS_RSA_* suites need an RSA private key")
    return key


# -- walks over a transcript ------------------------------------------------------------------------
def session_hash_messages(transcript: Sequence[TranscriptEntry]) -> bytes:
    """ClientHello .. ClientKeyExchange as RFC 7627's session hash covers them: each handshake message
    with its 4-byte header, no record headers, in the order they crossed.  ValueError without a
    ClientKeyExchange."""
    messages = b""
    for entry in transcript:
        if entry.content_type != ContentType.handshake or entry.encrypted:
            continue
        messages += entry.plaintext
        if any(getattr(m, "handshake_type", None) == HandshakeType.client_key_exchange for m in entry.messages):
            return messages
    raise ValueError("the transcript has no ClientKeyExchange")


def session_hash_listing(transcript: Sequence[TranscriptEntry], hash_name: str = "sha256") -> list[str]:
    """The messages the session hash covers (ClientHello .. ClientKeyExchange), one line each, then the hash."""
    messages = session_hash_messages(transcript)
    lines = [
        f"{name_of(HandshakeType, message[0]):<20} {len(message):>5} bytes"
        for message in split_handshake_messages(messages)
    ]
    lines.append(f"{'session_hash':<20} {prf_module.transcript_hash(hash_name, messages).hex()}  ({hash_name})")
    return lines
