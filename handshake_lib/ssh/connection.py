"""One SSH endpoint's transport, sans-I/O: bytes in, events and bytes out, through the tables of ``ssh.states``.

Theory of operation
-------------------
:class:`SSHConnection` holds what both roles share; :class:`~handshake_lib.ssh.client.SSHClient` and
:class:`~handshake_lib.ssh.server.SSHServer` add the handlers and senders of their own rows.  The
caller (``net.SocketDriver``, a notebook, a test) calls :meth:`start`, then feeds the peer's bytes to
:meth:`receive_data`, which returns events (:class:`KeyExchangeComplete`, :class:`AuthenticationMethods`,
...), and sends whatever :meth:`data_to_send` returns.  No socket, thread or clock: randomness comes
from an injected ``random`` so a replay is byte for byte.

Everything that arrives goes through one path, :meth:`SSHConnection._step`:

1. the peer's identification line (``ssh.version.IdentificationReader``), then packets
   (``ssh.packet.PacketDecoder``), each decoded with its spans (``ssh.messages.decode_message``) and
   kept in :attr:`transcript` (up to :data:`MAX_TRANSCRIPT_ENTRIES` and :data:`MAX_TRANSCRIPT_BYTES`);
2. DISCONNECT, IGNORE, DEBUG and UNIMPLEMENTED are handled here, outside the tables (a message number
   nobody defined is answered with UNIMPLEMENTED); under strict key exchange none of them may arrive
   during the first exchange;
3. every other message is looked up in its machine's table (``states.transition_for``): no row,
   ``UnexpectedMessage``.  The row's handler (``_on_<input>``) checks the message and computes; then
   the row's ``send`` column is sent in order, each message built by its sender (``_send_<name>``);
   what went out is checked against the column (anything else is ``InternalError``: a bug of ours);
   only then does the machine move to the row's target.

A :class:`~handshake_lib.errors.ProtocolError` (ours or a check's) queues SSH_MSG_DISCONNECT with the
error's reason, puts the connection in ERROR and is re-raised to the caller; the peer's DISCONNECT raises
:class:`~handshake_lib.errors.PeerDisconnect`, except ``BY_APPLICATION``, the normal goodbye, which is a
:class:`ConnectionClosed` event.

Channels.  Once user authentication succeeds (service state AUTHENTICATED) the connection protocol
starts: :attr:`SSHConnection.channels` is a :class:`~handshake_lib.ssh.channels.ConnectionProtocol` (the
one given at construction, or one with its defaults).  Messages 80-100 pass the service table (a row that
admits them only when AUTHENTICATED) and go to it; its events are returned with the others, and what it
queues (answers, data the application wrote with ``connection.channels.send_data(...)``) is encrypted
and sent on the next :meth:`data_to_send`, held like any service message during our key exchange.

Keys.  After both KEXINITs the negotiated method runs (``ssh.kex``); the exchange hash H
(``ssh.exchange_hash``) is signed by the server's host key and checked by the client; keys A..F
(``ssh.kdf``) make each direction's protection (``ssh.protection``), switched on for our packets right
after we send NEWKEYS and for the peer's right after we read its NEWKEYS.  The first H is the session
identifier.  Either side may start a new exchange later (:meth:`rekey`, or automatically past
:attr:`rekey_after_bytes` / :attr:`rekey_after_packets`); while ours runs, service messages the
application asks to send wait until our NEWKEYS (RFC 4253 section 7.1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import (
    ConnectionStateError,
    HandshakeError,
    InternalError,
    PeerDisconnect,
    ProtocolError,
    ProtocolVersionError,
    SSHDisconnect,
    UnexpectedEOF,
    UnexpectedMessage,
)
from ..wire import Span
from . import states
from .channels import ConnectionProtocol
from .constants import CIPHERS, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS
from .exchange_hash import ExchangeHash
from .hostkeys import HostKey
from .kdf import DerivedKeys
from .kex import KexMethod, SharedSecret, kex_method
from .messages import (
    AUTH_METHOD_MESSAGES,
    Debug,
    Disconnect,
    Ignore,
    KexDHInit,
    KexDHReply,
    KexInit,
    Message,
    NewKeys,
    Unimplemented,
    UnknownMessage,
    decode_message,
)
from .negotiation import NegotiatedAlgorithms, build_kexinit, strict_kex
from .packet import MAX_PACKET_SIZE, Packet, PacketDecoder, PacketEncoder
from .protection import PacketProtection, key_lengths, protections_for
from .stages import LIBRARY_STAGES, SSHStages, call_stage
from .states import Guard, Input, Machine, Role, State
from .version import Identification, IdentificationReader, our_identification

__all__ = [
    "Algorithms",
    "TranscriptEntry",
    "IdentificationReceived",
    "KeyExchangeComplete",
    "ExtInfoReceived",
    "DebugReceived",
    "IgnoreReceived",
    "UnimplementedReceived",
    "ConnectionClosed",
    "SSHConnection",
    "DEFAULT_REKEY_BYTES",
    "DEFAULT_REKEY_PACKETS",
    "MAX_TRANSCRIPT_ENTRIES",
    "MAX_TRANSCRIPT_BYTES",
]

# RFC 4253 section 9 recommends a new key exchange after a gigabyte; OpenSSH's default for AES is 4 GiB.
DEFAULT_REKEY_BYTES = 1 << 30
# Well before a 32-bit sequence number could wrap (OpenSSH rekeys after 2^31 packets too).
DEFAULT_REKEY_PACKETS = 1 << 31
DIRECTION = {"client": "client->server", "server": "server->client"}
# What the transcript keeps (as tls/connection.py's MAX_TRANSCRIPT_RECORDS): a handshake has about a dozen
# packets, but a peer may send IGNORE packets of up to 256 KiB for as long as the connection lasts, and each
# entry holds the wire bytes, the clear packet and the decoded message.  Past either cap packets are still
# read, only counted in ``transcript_overflow``; a DISCONNECT (the end, either way) is always kept.
MAX_TRANSCRIPT_ENTRIES = 8192
MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024  # of wire bytes


@dataclass(frozen=True)
class Algorithms:
    """What one side offers, in preference order (RFC 4253 section 7.1), for each category.

    The defaults are ours (``ssh.constants``); a lesson or the CLI narrows or reorders them.  Every name
    must be one the library implements, and no list may be empty (ValueError at construction).
    """

    kex: tuple[str, ...] = KEX_ALGORITHMS
    host_key: tuple[str, ...] = HOST_KEY_ALGORITHMS
    ciphers: tuple[str, ...] = CIPHERS
    macs: tuple[str, ...] = MACS

    def __post_init__(self) -> None:
        known = {
            "kex": set(KEX_ALGORITHMS),
            "host_key": set(HOST_KEY_ALGORITHMS),
            # Not the protection registry: it knows "none", which no connection of ours may offer.
            "ciphers": set(CIPHERS),
            "macs": set(MACS),
        }
        for category, names in known.items():
            offered = tuple(getattr(self, category))
            object.__setattr__(self, category, offered)
            if not offered:
                raise ValueError(f"{category}: the list is empty")
            unknown = [name for name in offered if name not in names]
            if unknown:
                choices = ", ".join(sorted(names))
                raise ValueError(f"{category}: {', '.join(unknown)} not implemented (choose from {choices})")
            if len(set(offered)) != len(offered):
                raise ValueError(f"{category}: a name appears twice")


@dataclass(frozen=True)
class TranscriptEntry:
    """One thing that crossed the wire: an identification line, or a packet with its decoded message."""

    direction: str
    message: Message | Identification
    packet: Packet | None = None  # None for an identification line

    @property
    def name(self) -> str:
        return "identification" if isinstance(self.message, Identification) else self.message.name

    @property
    def sequence_number(self) -> int | None:
        return self.packet.sequence_number if self.packet is not None else None

    @property
    def message_spans(self) -> tuple[Span, ...]:
        """The message's fields, annotated (offsets into the payload; the identification line's into the line).

        A connection reads packets without recording spans (it costs a tenth of a probe's time, and only a
        trace or a lesson looks), and a message we built has none: either way the payload is decoded again
        here, annotated, by the same decoder.  Messages 30, 31 and 60 are read as the message's own class says.
        """
        if isinstance(self.message, Identification):
            return self.message.spans
        if self.message.spans or self.packet is None:
            return tuple(self.message.spans)
        family = "dh" if isinstance(self.message, KexDHInit | KexDHReply) else "ecdh"
        try:
            method = next((m for m, cls in AUTH_METHOD_MESSAGES.items() if isinstance(self.message, cls)), None)
            return decode_message(self.packet.payload, kex_family=family, auth_method=method).spans
        except HandshakeError:  # it crossed the wire, so it decodes; if not, the packet's own spans still show it
            return ()

    @property
    def wire(self) -> bytes:
        """The bytes as they crossed the wire (encrypted, MAC included, for a packet after NEWKEYS)."""
        if self.packet is not None:
            return self.packet.wire
        assert isinstance(self.message, Identification)
        return self.message.encode()


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IdentificationReceived:
    identification: Identification
    lines_before: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class KeyExchangeComplete:
    """Both NEWKEYS crossed: new keys both ways.  ``number`` counts exchanges (1: the first)."""

    number: int
    negotiated: NegotiatedAlgorithms
    exchange_hash: ExchangeHash
    session_id: bytes
    host_key: HostKey
    strict: bool


@dataclass(frozen=True)
class ExtInfoReceived:
    extensions: tuple[tuple[str, bytes], ...]
    server_sig_algs: tuple[str, ...] | None


@dataclass(frozen=True)
class DebugReceived:
    message: str
    always_display: bool


@dataclass(frozen=True)
class IgnoreReceived:
    data: bytes


@dataclass(frozen=True)
class UnimplementedReceived:
    sequence_number: int


@dataclass(frozen=True)
class ConnectionClosed:
    """DISCONNECT ``BY_APPLICATION``: the normal end (``by_peer``: they said goodbye, else we did)."""

    reason: int
    description: str
    by_peer: bool


@dataclass
class _KeyExchange:
    """One key exchange in progress: both KEXINITs (the payload bytes go into H), the method, the results."""

    number: int
    our_kexinit: KexInit | None = None
    our_payload: bytes = b""
    peer_kexinit: KexInit | None = None
    peer_payload: bytes = b""
    negotiated: NegotiatedAlgorithms | None = None
    method: KexMethod | None = None
    client_share: Any = None  # the client's ClientShare
    server_public: bytes | int = b""
    shared_secret: SharedSecret | None = None
    exchange_hash: ExchangeHash | None = None
    host_key: HostKey | None = None
    keys: DerivedKeys | None = field(default=None, repr=False)
    outgoing: PacketProtection | None = field(default=None, repr=False)
    incoming: PacketProtection | None = field(default=None, repr=False)


class SSHConnection:
    """What an SSH client and server share (see the module docstring); use a role's subclass."""

    role: ClassVar[Role]

    def __init__(
        self,
        *,
        algorithms: Algorithms | None = None,
        software_version: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
        max_packet_size: int = MAX_PACKET_SIZE,
        rekey_after_bytes: int = DEFAULT_REKEY_BYTES,
        rekey_after_packets: int = DEFAULT_REKEY_PACKETS,
        on_secrets: Callable[[bytes, SharedSecret, ExchangeHash], None] | None = None,
        stages: SSHStages = LIBRARY_STAGES,
        strict_kex: bool = True,
        channels: ConnectionProtocol | None = None,
    ) -> None:
        """``channels``: the connection protocol to run once authenticated, built with the caller's window,
        packet size and limits (default: ``ConnectionProtocol(role)``).  ``strict_kex=False`` leaves
        ``kex-strict-*-v00@openssh.com`` out of our first KEXINIT.  It exists
        only to demonstrate the Terrapin attack (CVE-2023-48795) that strict key exchange prevents: never
        turn it off for a real connection."""
        if rekey_after_bytes < 1 or rekey_after_packets < 1:
            raise ValueError("rekey limits must be positive")
        self.algorithms = algorithms or Algorithms()
        self.stages = stages
        self.random = random
        self.our_identification = our_identification(software_version) if software_version else our_identification()
        self.peer_identification: Identification | None = None
        self.transport_state = State.IDLE
        self.service_state = State.NO_SERVICE
        self.transcript: list[TranscriptEntry] = []
        self.transcript_overflow = 0  # packets not kept: the transcript was full
        self._transcript_bytes = 0
        self.session_id: bytes | None = None
        self.negotiated: NegotiatedAlgorithms | None = None
        self.host_key: HostKey | None = None  # the server's, once known (it may not change on a rekey)
        self.strict_kex = False  # negotiated: both KEXINITs said so
        self.offer_strict_kex = strict_kex
        self.exchanges = 0  # key exchanges completed
        self.rekey_after_bytes = rekey_after_bytes
        self.rekey_after_packets = rekey_after_packets
        self._on_secrets = on_secrets
        self._reader = IdentificationReader(self.role)
        self._encoder = PacketEncoder(random=random, max_packet_size=max_packet_size)
        self._decoder = PacketDecoder(max_packet_size=max_packet_size)
        # Pieces to send, joined once by data_to_send: appending to one bytearray copies it again each time it
        # grows, which for a 2 MiB window of channel data cost more than encrypting it.
        self._out: list[bytes] = []
        self._kex: _KeyExchange | None = None
        self._flight: list[str] = []  # what the current row has sent so far
        self._held: list[Message] = []  # service messages waiting for our NEWKEYS
        self._sent_since_keys = [0, 0]  # bytes, packets under the current keys
        self._error: HandshakeError | None = None
        if channels is not None and channels.role != self.role:
            raise ValueError(f"a {channels.role} ConnectionProtocol cannot run in an SSH {self.role}")
        self._channels_given = channels
        self.channels: ConnectionProtocol | None = None  # set once authenticated

    # -- the caller's side ---------------------------------------------------------------------------
    @property
    def incoming_direction(self) -> str:
        return DIRECTION["server" if self.role == "client" else "client"]

    @property
    def outgoing_direction(self) -> str:
        return DIRECTION[self.role]

    @property
    def closed(self) -> bool:
        return self.transport_state in (State.CLOSED, State.ERROR)

    def start(self) -> None:
        """Send our identification line, the first thing either side sends (a client's KEXINIT goes with it)."""
        self._check_usable()
        self._guarded(lambda: self._step("transport", Input.start, None, []))

    def rekey(self) -> None:
        """Start a new key exchange now (only once the first one is done, and none is running)."""
        self._check_usable()
        if self.transport_state is not State.ENCRYPTED:
            raise ConnectionStateError(f"cannot start a key exchange in transport state {self.transport_state.value}")
        self._guarded(lambda: self._step("transport", Input.rekey, None, []))

    def disconnect(self, reason: int = SSHDisconnect.BY_APPLICATION, description: str = "goodbye") -> None:
        """Queue SSH_MSG_DISCONNECT and close (nothing more is sent or read)."""
        if self.closed:
            return
        self._send_disconnect(reason, description)
        self.transport_state = self.service_state = State.CLOSED

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer (and forget), the channels' queued messages included."""
        if self.channels is not None and not self.closed:
            self._guarded(self._flush_channels)
        data = b"".join(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> list[object]:
        """Feed bytes from the peer (``b""``: it closed); return the events they caused."""
        if self._error is not None:
            raise ConnectionStateError(f"the connection already failed: {self._error}")
        if self.closed:
            return []
        if self.transport_state is State.IDLE:
            raise ConnectionStateError("call start() first")
        events: list[object] = []
        self._guarded(lambda: self._receive(bytes(data), events))
        return events

    # -- the one path in ----------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._error is not None:
            raise ConnectionStateError(f"the connection already failed: {self._error}")
        if self.closed:
            raise ConnectionStateError("the connection is closed")

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except ProtocolError as error:
            self._fail(error)
            raise
        except PeerDisconnect as error:
            self._error = error
            self.transport_state = self.service_state = State.ERROR
            raise

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        if not self.closed:
            # A message we cannot even encode: the peer learns from the closed socket instead.
            with contextlib.suppress(HandshakeError):
                self._send_disconnect(error.ssh_disconnect, str(error)[:200])
        self.transport_state = self.service_state = State.ERROR

    def _receive(self, data: bytes, events: list[object]) -> None:
        if not data:
            if self.transport_state is State.ENCRYPTED and self.service_state is not State.NO_SERVICE:
                # Between key exchanges a peer may just close (OpenSSH's ssh does, after a failed login).
                self.transport_state = self.service_state = State.CLOSED
                closed = ConnectionClosed(int(SSHDisconnect.CONNECTION_LOST), "the peer closed the connection", True)
                events.append(closed)
                return
            raise UnexpectedEOF(
                f"the peer closed the connection in transport state {self.transport_state.value}, "
                f"service state {self.service_state.value}"
            )
        if self.peer_identification is None:
            identification = self._reader.feed(data)
            if identification is None:
                return
            self._keep(TranscriptEntry(self.incoming_direction, identification))
            events.append(IdentificationReceived(identification, tuple(self._reader.lines_before)))
            self._step("transport", Input.identification, identification, events)
            data = self._reader.leftover
        self._decoder.feed(data)
        while not self.closed:
            packet = self._decoder.next_packet()
            if packet is None:
                break
            self._on_packet(packet, events)
        self._flush_channels()
        self._flush_held()
        self._maybe_rekey()

    def _on_packet(self, packet: Packet, events: list[object]) -> None:
        number = packet.message_number
        first_exchange = self.exchanges == 0
        # DISCONNECT is read even then, as OpenSSH does ("Always process disconnect messages", packet.c).
        if first_exchange and self.strict_kex and number != 1 and not states.strict_kex_allows(number):
            raise UnexpectedMessage(
                f"strict key exchange: message {number} arrived during the first key exchange (Terrapin countermeasure)"
            )
        kex = self._kex
        family = kex.negotiated.kex_family if kex is not None and kex.negotiated is not None else None
        # spans: on demand; 60 is read as the reply to our outstanding authentication request's method
        message = decode_message(packet.payload, kex_family=family, auth_method=self._auth_method(), annotate=False)
        self._keep(TranscriptEntry(self.incoming_direction, message, packet))
        if number in states.GENERIC_MESSAGES:
            self._on_generic(message, events)
            return
        received = states.input_for(number, message.name)
        if received is None or isinstance(message, UnknownMessage):
            self._send_message(Unimplemented(packet.sequence_number))  # RFC 4253 section 11.4
            return
        machine = states.machine_for(received)
        if machine == "service" and self.transport_state not in states.SERVICE_STATES:
            raise UnexpectedMessage(
                f"{message.name} during a key exchange (transport state {self.transport_state.value})"
            )
        self._step(machine, received, message, events, packet)

    def _on_generic(self, message: Message, events: list[object]) -> None:
        if isinstance(message, Disconnect):
            self.transport_state = self.service_state = State.CLOSED
            if message.reason == SSHDisconnect.BY_APPLICATION:
                events.append(ConnectionClosed(int(message.reason), message.description, by_peer=True))
                return
            raise PeerDisconnect(int(message.reason), message.description)
        if isinstance(message, Ignore):
            events.append(IgnoreReceived(message.data))
        elif isinstance(message, Debug):
            events.append(DebugReceived(message.message, message.always_display))
        elif isinstance(message, Unimplemented):
            events.append(UnimplementedReceived(message.sequence_number))

    def _guards(self) -> set[Guard]:
        """The guards that hold now (a role adds its own)."""
        return set()

    def _auth_method(self) -> str | None:
        """The method of our authentication request in flight (a client's), which says what message 60 is."""
        return None

    def _step(
        self, machine: Machine, received: Input, message: object, events: list[object], packet: Packet | None = None
    ) -> None:
        state = self.transport_state if machine == "transport" else self.service_state
        guards = self._guards()
        row = states.transition_for(self.role, machine, state, received, guards)
        handler = getattr(self, f"_on_{received.name}")
        decided = handler(message, events, packet) or set()
        if decided:
            row = states.refine(self.role, machine, row, guards | decided)
        self._flight = []
        for name in row.send:
            getattr(self, f"_send_{name.lower()}")()
        if tuple(self._flight) != row.send:
            raise InternalError(f"sent {self._flight}, but the {self.role} table's row says {list(row.send)}")
        if machine == "transport":
            self.transport_state = row.target
            if row.target is State.ENCRYPTED and self.service_state is State.NO_SERVICE:
                self._step("service", Input.keys_on, None, events)
        else:
            self.service_state = row.target
            if row.target is State.AUTHENTICATED and self.channels is None:
                self.channels = self._channels_given or ConnectionProtocol(self.role)

    # -- sending ------------------------------------------------------------------------------------
    def _keep(self, entry: TranscriptEntry) -> None:
        """Add ``entry`` to the transcript unless it is full (MAX_TRANSCRIPT_ENTRIES, MAX_TRANSCRIPT_BYTES)."""
        size = len(entry.wire)
        full = len(self.transcript) >= MAX_TRANSCRIPT_ENTRIES or self._transcript_bytes + size > MAX_TRANSCRIPT_BYTES
        if full and not isinstance(entry.message, Disconnect):
            self.transcript_overflow += 1
            return
        self.transcript.append(entry)
        self._transcript_bytes += size

    def _send_message(self, message: Message) -> Packet:
        packet = self._encoder.encode_packet(message.to_bytes())
        self._out.append(packet.wire)
        self._keep(TranscriptEntry(self.outgoing_direction, message, packet))
        self._sent_since_keys[0] += len(packet.wire)
        self._sent_since_keys[1] += 1
        return packet

    def _send_service_message(self, message: Message) -> None:
        """A service message: now, or after our NEWKEYS if our key exchange is running (RFC 4253 7.1)."""
        if self.transport_state in (State.ENCRYPTED,) and not self._held:
            self._send_message(message)
        else:
            self._held.append(message)

    def _flush_channels(self) -> None:
        if self.channels is None:
            return
        # The limit is checked after every message, not once per batch: a megabyte written at once must not
        # all go out under the old keys; what follows our KEXINIT waits for our NEWKEYS (_send_service_message).
        for message in self.channels.messages_to_send():
            self._send_service_message(message)
            self._maybe_rekey()

    def _flush_held(self) -> None:
        while self._held and self.transport_state is State.ENCRYPTED:
            self._send_message(self._held.pop(0))

    def _maybe_rekey(self) -> None:
        if self.transport_state is not State.ENCRYPTED:
            return
        sent_bytes, sent_packets = self._sent_since_keys
        if sent_bytes >= self.rekey_after_bytes or sent_packets >= self.rekey_after_packets:
            self._step("transport", Input.rekey, None, [])

    def _send_disconnect(self, reason: int, description: str) -> None:
        self._send_message(Disconnect(reason, description))

    def _send_identification(self) -> None:
        self._flight.append("identification")
        self._out.append(self.our_identification.encode())
        self._keep(TranscriptEntry(self.outgoing_direction, self.our_identification))

    def _send_kexinit(self) -> None:
        self._flight.append("KEXINIT")
        kex = self._kex if self._kex is not None else _KeyExchange(self.exchanges + 1)
        self._kex = kex
        self._build_kexinit(kex)
        assert kex.our_kexinit is not None
        self._send_message(kex.our_kexinit)
        self._sent_since_keys = [0, 0]

    def _build_kexinit(self, kex: _KeyExchange) -> None:
        """Our KEXINIT for ``kex``, made once (the handler may need it before the row sends it)."""
        if kex.our_kexinit is not None:
            return
        first = self.exchanges == 0
        kex.our_kexinit = build_kexinit(
            self.role,
            kex_algorithms=self.algorithms.kex,
            host_key_algorithms=self._host_key_algorithms(),
            ciphers=self.algorithms.ciphers,
            macs=self.algorithms.macs,
            ext_info=first,  # RFC 8308 2.1: the signal belongs in the first KEXINIT only
            strict=first and self.offer_strict_kex,  # OpenSSH announces strict kex in the first KEXINIT only
            random=self.random,
        )
        kex.our_payload = kex.our_kexinit.to_bytes()  # exactly the bytes sent: they go into H

    def _host_key_algorithms(self) -> tuple[str, ...]:
        return self.algorithms.host_key

    def _send_newkeys(self) -> None:
        self._flight.append("NEWKEYS")
        kex = self._require_kex()
        self._send_message(NewKeys())
        assert kex.outgoing is not None
        self._encoder.set_protection(kex.outgoing)
        if self.strict_kex:
            self._encoder.reset_sequence_number()
        self._sent_since_keys = [0, 0]

    # -- handlers both roles share ------------------------------------------------------------------
    def _on_start(self, message: object, events: list[object], packet: Packet | None) -> None:
        return None

    def _on_rekey(self, message: object, events: list[object], packet: Packet | None) -> None:
        self._kex = _KeyExchange(self.exchanges + 1)

    def _on_identification(self, identification: Identification, events: list[object], packet: Packet | None) -> None:
        if not identification.is_ssh2:
            raise ProtocolVersionError(
                f"the peer speaks SSH-{identification.protocol_version}; we speak 2.0 only "
                f"({identification.line.decode('ascii', 'backslashreplace')})"
            )
        self.peer_identification = identification

    def _on_kexinit(self, kexinit: KexInit, events: list[object], packet: Packet | None) -> set[Guard] | None:
        if self._kex is None:  # the peer started this exchange
            self._kex = _KeyExchange(self.exchanges + 1)
        kex = self._kex
        assert packet is not None
        kex.peer_kexinit, kex.peer_payload = kexinit, packet.payload
        self._build_kexinit(kex)
        self._negotiate(kex, packet)
        return None

    def _negotiate(self, kex: _KeyExchange, packet: Packet) -> None:
        """Both KEXINITs are known: pick the algorithms, and under strict kex check the peer's was its first packet."""
        assert kex.our_kexinit is not None and kex.peer_kexinit is not None
        client, server = (
            (kex.our_kexinit, kex.peer_kexinit) if self.role == "client" else (kex.peer_kexinit, kex.our_kexinit)
        )
        kex.negotiated = call_stage(self.stages, "negotiate", client, server)
        kex.method = kex_method(kex.negotiated.kex)
        if kex.number == 1:
            self.strict_kex = strict_kex(client, server)
            if self.strict_kex and packet.sequence_number != 0:
                raise UnexpectedMessage("strict key exchange: the peer's KEXINIT was not its first packet")

    def _derive(self, kex: _KeyExchange) -> None:
        """Keys A..F for the exchange just computed, and each direction's protection from them."""
        assert kex.negotiated is not None and kex.exchange_hash is not None and kex.shared_secret is not None
        negotiated = kex.negotiated
        if self.session_id is None:
            self.session_id = kex.exchange_hash.digest
        keys = call_stage(
            self.stages, "derive_keys",
            kex.exchange_hash.hash, kex.shared_secret.encoded, kex.exchange_hash.digest, self.session_id,
            key_lengths(negotiated),
        )  # fmt: skip
        kex.keys = keys
        mac_function = self._learner_mac if "packet_mac" in self.stages.replaced() else None  # else inlined
        client_to_server, server_to_client = protections_for(negotiated, keys, mac_function=mac_function)
        kex.outgoing, kex.incoming = (
            (client_to_server, server_to_client) if self.role == "client" else (server_to_client, client_to_server)
        )
        if self._on_secrets is not None:
            client_kexinit = kex.our_kexinit if self.role == "client" else kex.peer_kexinit
            assert client_kexinit is not None
            self._on_secrets(client_kexinit.cookie, kex.shared_secret, kex.exchange_hash)

    def _learner_mac(self, hash_name: str, mac_key: bytes, sequence_number: int, data: bytes) -> bytes:
        tag = call_stage(self.stages, "packet_mac", hash_name, mac_key, sequence_number, data)
        if not isinstance(tag, bytes | bytearray):
            raise InternalError(f"your packet_mac returned {type(tag).__name__}, not bytes")
        return bytes(tag)

    def _on_newkeys(self, message: NewKeys, events: list[object], packet: Packet | None) -> None:
        kex = self._require_kex()
        assert kex.incoming is not None and kex.negotiated is not None and kex.exchange_hash is not None
        self._decoder.set_protection(kex.incoming)
        if self.strict_kex:
            self._decoder.reset_sequence_number()
        self.exchanges += 1
        self.negotiated = kex.negotiated
        assert kex.host_key is not None and self.session_id is not None
        events.append(
            KeyExchangeComplete(
                kex.number, kex.negotiated, kex.exchange_hash, self.session_id, kex.host_key, self.strict_kex
            )
        )
        self._kex = None

    def _on_keys_on(self, message: object, events: list[object], packet: Packet | None) -> None:
        return None

    def _on_connection_message(self, message: Message, events: list[object], packet: Packet | None) -> None:
        """Messages 80-100, admitted by the service table once AUTHENTICATED: the channel tables judge them."""
        if self.channels is None:
            raise InternalError("a connection protocol message was admitted before authentication")
        events.extend(self.channels.receive(message))

    def _require_kex(self) -> _KeyExchange:
        if self._kex is None:
            raise InternalError("no key exchange is running")
        return self._kex


# Every connection protocol input has the same handler: the channel layer (ssh/channels.py) has its own table.
for _input in states.CONNECTION_INPUTS:
    setattr(SSHConnection, f"_on_{_input.name}", SSHConnection._on_connection_message)
