"""What every TLS core shares, whichever version it speaks: the h11-style face, table dispatch, the transcript, errors.

Theory of operation
-------------------
TLS 1.2's :class:`~handshake_lib.tls.connection.TLSConnection` and TLS 1.3's
:class:`~handshake_lib.tls.connection13.TLS13Connection` differ in their records, keys, messages and tables, and
in nothing else a caller sees.  :class:`TLSCore` is that common part, written once:

* the sans-I/O face: :meth:`receive_data` (records out of the byte stream, one at a time, into the version's
  ``_receive_record``), :meth:`data_to_send`, :meth:`close`, :attr:`state`;
* the table dispatch every subclass declares: ``_RECEIVERS`` (table input, or ``(state, input)``, -> the
  method that handles the message) and ``_SENDERS`` (a name in a row's ``send`` column -> the method that
  builds and queues it), merged along the class hierarchy, and checked against the version's tables
  (``_TABLES``) when a class with a ``role`` is defined: a row without a handler is a TypeError at import;
* the error discipline: a :class:`~handshake_lib.errors.ProtocolError` queues the fatal alert it names and
  moves to ``ERROR`` (:meth:`_fail`), a received fatal alert raises :class:`~handshake_lib.errors.PeerAlert`,
  anything else is our bug and becomes ``InternalError``; later calls raise ``ConnectionStateError``;
* the end of the stream (:meth:`_peer_closed`) and the bounded transcript (:meth:`_keep`).

Each version's State enum has ``CONNECTED``, ``CLOSED`` and ``ERROR``; the base reads them from the enum of
the state the connection is in, so it needs neither version's tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ..errors import (
    ConnectionStateError,
    HandshakeError,
    InternalError,
    PeerAlert,
    ProtocolError,
    TLSAlert,
    UnexpectedEOF,
)
from .constants import AlertLevel

__all__ = [
    "TLSCore",
    "check_dispatch",
    "ApplicationData",
    "AlertReceived",
    "ConnectionClosed",
    "MAX_RECORDS_PER_HANDSHAKE_MESSAGE",
    "MAX_WARNING_ALERTS",
    "MAX_EMPTY_RECORDS",
    "MAX_TRANSCRIPT_RECORDS",
]

# -- limits on what a peer can make a connection do (docs/limits.md) --------------------------------
# Each record costs us far more than its bytes (an object in the transcript, a pass through the record
# layer), so a peer that cuts its messages into tiny records could make a connection hold tens of MB
# and seconds of CPU (issue 8: a 128 KiB ClientHello in 131,076 one-byte records).  Cutting a message
# into small records is legal, and test suites cut a ClientHello into one-byte records; the bound is
# set so that a 4 KiB message (twice the largest ClientHello browsers send, post-quantum key share
# included) still passes byte by byte, and our largest message (MAX_HANDSHAKE_MESSAGE_LENGTH, 128 KiB)
# in records of at least 32 bytes.  It also caps the transcript: a handshake has a handful of messages.
MAX_RECORDS_PER_HANDSHAKE_MESSAGE = 4096
# Consecutive warning alerts accepted before the connection fails with unexpected_message; the fifth
# in a row is refused, as OpenSSL (MAX_WARN_ALERT_COUNT 5) and BoringSSL (kMaxWarningAlerts 4) do.
# The count starts again at any other record, so a long connection is never refused for a few.
MAX_WARNING_ALERTS = 4
# Consecutive empty application data records accepted (legal, once used against BEAST) before the
# connection fails with unexpected_message: BoringSSL's kMaxEmptyRecords.  Each would otherwise be a
# transcript entry for free.
MAX_EMPTY_RECORDS = 32
# Records a connection keeps in its transcript.  A page fetch has about a dozen; a peer that sends its data
# in one-byte records would otherwise make the transcript, not the data, the connection's cost (550 bytes
# a record: 36 MB after 65,000 records).  Later records are still processed, only counted in
# ``transcript_overflow``.  Twice MAX_RECORDS_PER_HANDSHAKE_MESSAGE, so that a handshake refused for too
# many records still shows them all and the alert that ended it.
MAX_TRANSCRIPT_RECORDS = 2 * MAX_RECORDS_PER_HANDSHAKE_MESSAGE


# -- events both versions return ------------------------------------------------------------------
@dataclass(frozen=True)
class ApplicationData:
    data: bytes


@dataclass(frozen=True)
class AlertReceived:
    """A warning alert (close_notify included; a fatal one raises PeerAlert instead)."""

    level: int
    description: int


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed: close_notify, or the end of the TCP stream after the handshake."""


class _Row(Protocol):
    source: Any
    received: Any
    target: Any
    send: tuple[str, ...]
    label: str


class TLSCore:
    """The shared base of both TLS versions' cores (see the module docstring)."""

    role: str
    # role -> {(state, input): rows}: the version's state tables, which the dispatch is checked against.
    _TABLES: ClassVar[Mapping[str, Mapping[tuple[Any, Any], tuple[_Row, ...]]]]
    _RECEIVERS: ClassVar[dict[Any, str | None]] = {}
    _SENDERS: ClassVar[dict[str, str]] = {}

    # Set by each version's __init__.
    _state: Any
    _records: Any  # RecordLayer (1.2) or RecordReader (1.3): extend(), next_record(), buffered
    _reassembler: Any
    _outgoing: bytearray
    _close_sent: bool
    _close_received: bool
    _keep_transcript: bool
    transcript: list[Any]
    transcript_overflow: int
    error: BaseException | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        receivers: dict[Any, str | None] = {}
        senders: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            receivers.update(vars(klass).get("_RECEIVERS", {}))
            senders.update(vars(klass).get("_SENDERS", {}))
        cls._RECEIVERS, cls._SENDERS = receivers, senders
        if hasattr(cls, "role"):
            check_dispatch(cls)

    # -- the h11-style public API ------------------------------------------------------------------
    @property
    def state(self) -> Any:
        """Where the connection is (read only: it changes in :meth:`_move` alone)."""
        return self._state

    @property
    def incoming_direction(self) -> str:
        return "server->client" if self.role == "client" else "client->server"

    @property
    def outgoing_direction(self) -> str:
        return "client->server" if self.role == "client" else "server->client"

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer, removed from the outgoing buffer."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes) -> list[Any]:
        """Feed bytes from the peer (``b""``: the peer closed TCP); return the events they caused."""
        states = type(self._state)
        if self._state is states.ERROR:
            raise ConnectionStateError(f"the connection ended with an error: {self.error}")
        events: list[Any] = []
        try:
            if not data:
                self._peer_closed(events)
                return events
            self._records.extend(data)
            while not self._close_received and (record := self._records.next_record()) is not None:
                self._receive_record(record, events)
        except PeerAlert as alert:
            self.error = alert
            self._move(states.ERROR)
            raise
        except ProtocolError as error:
            self._fail(error)
        except HandshakeError:
            raise
        except Exception as error:  # noqa: BLE001 - never let a bug surface as an unrelated exception type
            self._fail(InternalError(f"{type(error).__name__}: {error}"), cause=error)
        return events

    def close(self) -> None:
        """Queue close_notify (once); the connection then accepts no more application data to send."""
        states = type(self._state)
        if self._state is states.ERROR or self._close_sent:
            return
        self._send_alert(AlertLevel.warning, TLSAlert.close_notify)
        self._close_sent = True
        self._move(states.CLOSED)

    # -- what each version provides -----------------------------------------------------------------
    def _receive_record(self, record: Any, events: list[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _send_alert(self, level: int, description: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the table drives the code ------------------------------------------------------------------
    _sent_names: list[str]  # the names (as the tables' send column spells them) of every message we queued

    def _send_flight(self, row: _Row, already_sent: int) -> None:
        """Send ``row``'s messages, each built by its sender, and move along it.

        If what was queued since ``already_sent`` differs from the row's ``send`` column, the code and its
        table disagree: that is our bug, an InternalError, and the state does not move.
        """
        for name in row.send:
            getattr(self, self._SENDERS[name])()
        sent = tuple(self._sent_names[already_sent:])
        if sent != row.send:
            raise InternalError(
                f"the {self.role} table says {row.label!r} sends {list(row.send)}, but the code sent {list(sent)}"
            )
        self._move(row.target, row)

    def _move(self, target: Any, row: Any = None) -> None:
        """The one place the state changes: along a table ``row``, or (alerts, closes, errors, which the
        tables leave out) to CLOSED or ERROR from anywhere."""
        states = type(self._state)
        if row is None and target not in (states.CLOSED, states.ERROR):
            raise InternalError(f"a move to {target.value} outside the {self.role} table")
        self._state = target

    # -- shared machinery ---------------------------------------------------------------------------
    def _peer_closed(self, events: list[Any]) -> None:
        """The TCP stream ended: a close after the handshake, an UnexpectedEOF in the middle of anything."""
        states = type(self._state)
        if self._records.buffered or self._reassembler.buffered:
            raise UnexpectedEOF("the peer closed the connection in the middle of a record or message")
        if self._state in (states.CONNECTED, states.CLOSED):
            # No close_notify first means the data might have been truncated; HTTP with Content-Length
            # (and every TLS stack in practice) tolerates it, so we report a close, not an error.
            if not self._close_received:
                events.append(ConnectionClosed())
            self._close_received = True
            self._move(states.CLOSED)
            return
        raise UnexpectedEOF(f"the peer closed the connection during the handshake (in state {self._state.value})")

    def _keep(self, entry: Any) -> None:
        """Add ``entry`` to the transcript, if this connection keeps one and it is not full."""
        if not self._keep_transcript:
            return
        if len(self.transcript) < MAX_TRANSCRIPT_RECORDS:
            self.transcript.append(entry)
        else:
            self.transcript_overflow += 1

    def _fail(self, error: ProtocolError, cause: BaseException | None = None) -> None:
        """Queue the fatal alert ``error`` maps to, refuse further use, and raise ``error``."""
        states = type(self._state)
        if self._state is not states.ERROR:
            self.error = error
            self._move(states.ERROR)
            # If even the alert cannot be built, the error still stands.
            with contextlib.suppress(Exception):
                self._send_alert(AlertLevel.fatal, error.tls_alert)
        raise error from cause


def check_dispatch(cls: type[TLSCore]) -> None:
    """Every row of ``cls.role``'s table has a handler, and every name it sends a sender (TypeError if not)."""
    for row in (row for rows in cls._TABLES[cls.role].values() for row in rows):
        key = (row.source, row.received)
        receiver = cls._RECEIVERS[key] if key in cls._RECEIVERS else cls._RECEIVERS.get(row.received, "")
        if receiver == "" or (receiver is not None and not callable(getattr(cls, receiver, None))):
            raise TypeError(f"{cls.__name__}: no handler for {row.received.value} in {row.source.value}")
        for name in row.send:
            if not callable(getattr(cls, cls._SENDERS.get(name, ""), None)):
                raise TypeError(f"{cls.__name__}: no sender for {name!r} ({row.label})")
