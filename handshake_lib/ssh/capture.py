"""SSH sessions read back from a capture: every packet, decrypted when a key log holds its secret.

Theory of operation
-------------------
A pcap holds TCP segments (:func:`~handshake_lib.tcp.pcap.read_pcap`); an SSH session is the two byte
streams of one TCP connection.  :func:`decode_ssh_capture` groups segments by connection and puts each
direction's payload back in sequence-number order (:mod:`handshake_lib.tcp.streams`: retransmitted bytes
once; a gap ends that direction, noted), and keeps the connections whose streams start like SSH.  The
client is the side that sent the SYN (when the capture missed it, the side that did not send from
port 22, else the first speaker).

Each connection is then walked the way a peer walks it, with this package's own parsers, in capture
order (a direction's bytes are read as their segment arrives, so the other side's KEXINIT or reply is
known by the time it is needed):

1. the identification lines (:class:`~handshake_lib.ssh.version.IdentificationReader`);
2. packets in the clear (:class:`~handshake_lib.ssh.packet.PacketDecoder`), each decoded by
   :func:`~handshake_lib.ssh.messages.decode_message`: both KEXINITs give the negotiated algorithms
   (:func:`~handshake_lib.ssh.negotiation.negotiate`), which say what messages 30 and 31 are;
3. at the server's KEX*_REPLY, the key log line for the session (looked up by the server's cookie,
   then the client's, as Wireshark does) gives K, directly (``SHARED_SECRET``) or from one side's
   private value and the other side's public one (``PRIVATE_KEY``, curve25519 and the MODP groups);
   H is recomputed from the transcript (:func:`~handshake_lib.ssh.exchange_hash.exchange_hash`: V_C,
   V_S, I_C, I_S, K_S, the public values, K) and the server's signature over it is checked with its
   host key, which proves K right; keys A..F follow (:func:`~handshake_lib.ssh.kdf.derive_all`);
4. after each NEWKEYS that direction is opened with :func:`~handshake_lib.ssh.protection.protection_for`
   (sequence numbers back to 0 under strict kex); a later KEXINIT starts a re-key, and steps 2-4 repeat
   (the session identifier stays the first H).

Without a usable key log line the packets after NEWKEYS cannot even be told apart (most ciphers
encrypt the length): the rest of that direction is shown as one encrypted block, with the reason.

Limits (docs/limits.md): at most :data:`MAX_CONNECTIONS` connections, :data:`MAX_STREAM_BYTES` per
direction and :data:`MAX_PACKETS` packets per connection are read; what is cut is said in the
connection's ``notes``.  A wrong guess (``first_kex_packet_follows``) and group exchange
(``diffie-hellman-group-exchange-*``) are not followed: the packets show as not decrypted, saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HandshakeError, ProtocolError
from ..tcp.pcap import CapturedSegment
from ..tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT, group_connections, read_segments
from ..wire import Writer
from .exchange_hash import ExchangeHash, exchange_hash
from .hostkeys import decode_host_key
from .kdf import derive_all
from .kex import KexMethod, kex_method
from .keylog import PRIVATE_KEY, SSHKeyLog
from .messages import (
    KexDHInit,
    KexDHReply,
    KexECDHInit,
    KexECDHReply,
    KexInit,
    Message,
    NewKeys,
    UserauthRequest,
    decode_message,
)
from .negotiation import NegotiatedAlgorithms, negotiate, strict_kex
from .packet import MAX_PACKET_SIZE, Packet, PacketDecoder
from .protection import PacketProtection, key_lengths, protections_for
from .version import Identification, IdentificationReader

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_STREAM_BYTES",
    "MAX_PACKETS",
    "DecodedPacket",
    "CapturedExchange",
    "SSHCaptureConnection",
    "decode_ssh_capture",
]

MAX_CONNECTIONS = 64
MAX_STREAM_BYTES = 4 << 20
MAX_PACKETS = 10_000


@dataclass(frozen=True)
class DecodedPacket:
    """One thing a side sent: an identification line, a packet (decoded, decrypted if it was
    encrypted), or the encrypted rest of a direction that could not be opened (``message`` None).

    ``wire`` is the bytes as captured; ``packet`` the clear packet (its spans annotate ``wire`` too);
    ``note`` says why a packet was not decrypted or decoded, empty when all went well.
    """

    direction: str
    wire: bytes
    message: Message | Identification | None = None
    packet: Packet | None = None
    encrypted: bool = False
    decrypted: bool = False
    note: str = ""

    @property
    def sequence_number(self) -> int | None:
        return self.packet.sequence_number if self.packet is not None else None

    @property
    def name(self) -> str:
        if isinstance(self.message, Identification):
            return "identification"
        if self.message is not None:
            return self.message.name
        return "encrypted"


@dataclass
class CapturedExchange:
    """One key exchange seen in the capture, and what became of it."""

    number: int
    negotiated: NegotiatedAlgorithms | None = None
    strict: bool = False
    exchange_hash: ExchangeHash | None = None
    keylog: str = ""  # "SHARED_SECRET", "PRIVATE_KEY" or "" (no line)
    signature_verified: bool = False
    problem: str = ""  # why this exchange's keys are unknown, empty when they are known


@dataclass
class SSHCaptureConnection:
    """One TCP connection that carried SSH: its endpoints, packets in capture order, key exchanges."""

    client: tuple[str, int]
    server: tuple[str, int]
    packets: list[DecodedPacket] = field(default_factory=list)
    exchanges: list[CapturedExchange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    session_id: bytes | None = None

    @property
    def decrypted(self) -> list[DecodedPacket]:
        return [packet for packet in self.packets if packet.decrypted]


# -- the SSH walk ---------------------------------------------------------------------------------------
@dataclass
class _Kex:
    number: int
    record: CapturedExchange
    client_kexinit: KexInit | None = None
    server_kexinit: KexInit | None = None
    client_payload: bytes = b""
    server_payload: bytes = b""
    method: KexMethod | None = None
    client_public: bytes | int | None = None
    keys: dict[str, PacketProtection] = field(default_factory=dict)  # direction -> protection
    newkeys: set[str] = field(default_factory=set)  # directions that sent NEWKEYS


class _Walker:
    def __init__(self, connection: SSHCaptureConnection, keylog: SSHKeyLog | None) -> None:
        self.connection = connection
        self.keylog = keylog
        self.readers = {
            # The server may send lines before its version line; the client may not (RFC 4253 4.2).
            SERVER_TO_CLIENT: IdentificationReader("client"),
            CLIENT_TO_SERVER: IdentificationReader("server"),
        }
        self.identification: dict[str, Identification] = {}
        self.decoders = {
            d: PacketDecoder(max_packet_size=MAX_PACKET_SIZE) for d in (CLIENT_TO_SERVER, SERVER_TO_CLIENT)
        }
        self.opaque: dict[str, str] = {}  # direction -> why its bytes cannot be opened (after NEWKEYS)
        self.opaque_bytes = {CLIENT_TO_SERVER: bytearray(), SERVER_TO_CLIENT: bytearray()}
        self.dead: set[str] = set()
        self.kex: _Kex | None = None
        self.strict = False
        self.is_ssh = False
        self.auth_method: str | None = None  # the client's last USERAUTH_REQUEST method: what message 60 is

    def _add(self, packet: DecodedPacket) -> None:
        if len(self.connection.packets) >= MAX_PACKETS:
            if not any("packets" in note for note in self.connection.notes):
                self.connection.notes.append(f"more than {MAX_PACKETS} packets: the rest is not shown")
            self.dead.update((CLIENT_TO_SERVER, SERVER_TO_CLIENT))
            return
        self.connection.packets.append(packet)

    def feed(self, direction: str, data: bytes) -> None:
        if direction in self.dead or not data:
            return
        if direction in self.opaque:
            self.opaque_bytes[direction] += data
            return
        reader = self.readers[direction]
        if direction not in self.identification:
            try:
                found = reader.feed(data)
            except ProtocolError as error:
                self.dead.add(direction)
                self.connection.notes.append(f"{direction}: not an SSH identification ({error})")
                return
            if found is None:
                return
            self.is_ssh = True
            self.identification[direction] = found
            self._add(DecodedPacket(direction, found.encode(), found))
            data = reader.leftover
        decoder = self.decoders[direction]
        decoder.feed(data)
        self._drain(direction)

    def _drain(self, direction: str) -> None:
        decoder = self.decoders[direction]
        while direction not in self.dead and direction not in self.opaque:
            try:
                packet = decoder.next_packet()
            except ProtocolError as error:
                self.dead.add(direction)
                self._add(
                    DecodedPacket(direction, b"", None, None, True, False, f"cannot open the next packet: {error}")
                )
                return
            if packet is None:
                return
            encrypted = packet.protection != "none"
            self._packet(direction, packet, encrypted)

    def _kex_family(self) -> str | None:
        if self.kex is None or self.kex.method is None:
            return None
        return "dh" if self.kex.method.public_encoding == "mpint" else "ecdh"

    def _packet(self, direction: str, packet: Packet, encrypted: bool) -> None:
        try:
            message: Message | None = decode_message(
                packet.payload,
                kex_family=self._kex_family(),  # type: ignore[arg-type]
                auth_method=self.auth_method if direction == SERVER_TO_CLIENT else None,
            )
            note = ""
        except HandshakeError as error:
            message, note = None, f"the payload does not decode: {error}"
        self._add(DecodedPacket(direction, packet.wire, message, packet, encrypted, encrypted, note))
        if isinstance(message, UserauthRequest) and direction == CLIENT_TO_SERVER:
            self.auth_method = message.method if message.method != "none" else None
        if isinstance(message, KexInit):
            self._on_kexinit(direction, message, packet.payload)
        elif isinstance(message, KexECDHInit | KexDHInit) and self.kex is not None:
            self.kex.client_public = message.client_public
        elif isinstance(message, KexECDHReply | KexDHReply) and self.kex is not None:
            self._on_reply(message)
        elif isinstance(message, NewKeys):
            self._on_newkeys(direction)

    def _on_kexinit(self, direction: str, message: KexInit, payload: bytes) -> None:
        if self.kex is None:
            number = len(self.connection.exchanges) + 1
            self.kex = _Kex(number, CapturedExchange(number))
            self.connection.exchanges.append(self.kex.record)
        kex = self.kex
        if direction == CLIENT_TO_SERVER:
            kex.client_kexinit, kex.client_payload = message, payload
        else:
            kex.server_kexinit, kex.server_payload = message, payload
        if kex.client_kexinit is None or kex.server_kexinit is None:
            return
        try:
            kex.record.negotiated = negotiate(kex.client_kexinit, kex.server_kexinit)
            kex.method = kex_method(kex.record.negotiated.kex)
        except (HandshakeError, ValueError) as error:
            kex.record.problem = f"the key exchange cannot be followed: {error}"
            return
        if kex.number == 1:
            self.strict = strict_kex(kex.client_kexinit, kex.server_kexinit)
        kex.record.strict = self.strict

    def _shared_secret(self, kex: _Kex, server_public: bytes | int) -> bytes | None:
        """K encoded as it goes into H (mpint or string), from the key log; None with record.problem set."""
        assert kex.method is not None and kex.client_kexinit is not None and kex.server_kexinit is not None
        record = kex.record
        entry = self.keylog.find(kex.server_kexinit.cookie, kex.client_kexinit.cookie) if self.keylog else None
        if entry is None:
            record.problem = (
                "no key log line for this session (client cookie "
                f"{kex.client_kexinit.cookie.hex()}, server cookie {kex.server_kexinit.cookie.hex()})"
            )
            return None
        record.keylog = entry.kind
        method = kex.method
        if entry.kind == PRIVATE_KEY:
            # The private value belongs to the side whose cookie names it; the other side's public value completes it.
            peer = kex.client_public if entry.cookie == kex.server_kexinit.cookie else server_public
            number = _private_key_secret(method, entry.value, peer)
            if number is None:
                record.problem = (
                    f"a PRIVATE_KEY line cannot be used with {method.name} (only curve25519 and the MODP groups)"
                )
                return None
            return Writer().ssh_mpint(number).getvalue()
        if method.shared_secret_encoding == "mpint":
            return Writer().ssh_mpint(int.from_bytes(entry.value, "big")).getvalue()
        return Writer().ssh_string(entry.value).getvalue()

    def _on_reply(self, message: KexECDHReply | KexDHReply) -> None:
        kex = self.kex
        assert kex is not None
        record = kex.record
        if kex.method is None or record.negotiated is None or kex.client_public is None:
            record.problem = record.problem or "the key exchange's first messages were not captured"
            return
        v_c, v_s = self.identification.get(CLIENT_TO_SERVER), self.identification.get(SERVER_TO_CLIENT)
        if v_c is None or v_s is None:
            record.problem = "an identification line is missing"
            return
        try:
            encoded_k = self._shared_secret(kex, message.server_public)
            if encoded_k is None:
                return
            record.exchange_hash = exchange_hash(
                kex.method, client_version=v_c.line, server_version=v_s.line,
                client_kexinit=kex.client_payload, server_kexinit=kex.server_payload,
                host_key_blob=message.host_key, client_public=kex.client_public,
                server_public=message.server_public, shared_secret=encoded_k,
            )  # fmt: skip
        except (HandshakeError, ValueError) as error:
            record.problem = f"the exchange hash cannot be computed: {error}"
            return
        digest = record.exchange_hash.digest
        try:
            decode_host_key(message.host_key).verify(message.signature, digest)
            record.signature_verified = True
        except (HandshakeError, ValueError):
            # A wrong K gives a wrong H: the signature says so before any packet fails to open.
            record.problem = "the server's signature does not verify over the H this key log gives: wrong secret"
            return
        if self.connection.session_id is None:
            self.connection.session_id = digest
        negotiated = record.negotiated
        try:
            keys = derive_all(kex.method.hash, encoded_k, digest, self.connection.session_id, key_lengths(negotiated))
            kex.keys[CLIENT_TO_SERVER], kex.keys[SERVER_TO_CLIENT] = protections_for(negotiated, keys)
        except ValueError as error:
            record.problem = f"keys for these algorithms cannot be made: {error}"

    def _on_newkeys(self, direction: str) -> None:
        kex = self.kex
        decoder = self.decoders[direction]
        protection = kex.keys.get(direction) if kex is not None else None
        if protection is None:
            reason = (kex.record.problem if kex is not None else "") or "no key exchange was seen before NEWKEYS"
            self.opaque[direction] = reason
        else:
            decoder.set_protection(protection)
        if self.strict:
            decoder.reset_sequence_number()
        if kex is not None:
            kex.newkeys.add(direction)
            if len(kex.newkeys) == 2:  # both sides switched: a later KEXINIT starts a new exchange
                self.kex = None

    def finish(self) -> None:
        for direction, reason in self.opaque.items():
            data = bytes(self.opaque_bytes[direction])
            if data:
                self._add(DecodedPacket(direction, data, None, None, True, False, f"not decrypted: {reason}"))
        for direction, decoder in self.decoders.items():
            if decoder.buffered and direction not in self.dead and direction not in self.opaque:
                self.connection.notes.append(
                    f"{direction}: {decoder.buffered} bytes of an unfinished packet at the end"
                )


def _private_key_secret(method: KexMethod, private: bytes, peer: bytes | int | None) -> int | None:
    """K as a number from one side's private value and the other side's public one; None if unsupported."""
    if peer is None:
        return None
    if method.name.startswith("curve25519") and isinstance(peer, bytes) and len(private) == 32 and len(peer) == 32:
        from cryptography.hazmat.primitives.asymmetric import x25519

        shared = x25519.X25519PrivateKey.from_private_bytes(private).exchange(
            x25519.X25519PublicKey.from_public_bytes(peer)
        )
        return int.from_bytes(shared, "big")
    prime = getattr(method, "prime", None)
    if method.public_encoding == "mpint" and prime is not None and isinstance(peer, int):
        return pow(peer, int.from_bytes(private, "big"), prime)
    return None


def decode_ssh_capture(
    source: str | Path | bytes | Iterable[CapturedSegment], keylog: SSHKeyLog | None = None
) -> list[SSHCaptureConnection]:
    """Every SSH connection of a capture (a pcap's path or bytes, or segments already read), decoded.

    Raises :class:`~handshake_lib.errors.DecodeError` for bytes that are not a pcap we read; a
    capture without SSH gives an empty list.
    """
    cut = ""
    if isinstance(source, str | Path | bytes | bytearray):
        segments, cut = read_segments(source)
    else:
        segments = list(source)
    conversations, skipped = group_connections(segments, max_connections=MAX_CONNECTIONS, server_ports=(22,))
    connections = []
    for conversation in conversations:
        connection = SSHCaptureConnection(conversation.client, conversation.server)
        walker = _Walker(connection, keylog)
        for direction, data in conversation.chunks(MAX_STREAM_BYTES):
            walker.feed(direction, data)
        walker.finish()
        connection.notes.extend(conversation.notes)
        if walker.is_ssh:
            connections.append(connection)
    if cut:
        for connection in connections:
            connection.notes.append(cut)
    if skipped and connections:
        connections[-1].notes.append(
            f"more than {MAX_CONNECTIONS} connections in the capture: {skipped} segments of later ones not read"
        )
    return connections
