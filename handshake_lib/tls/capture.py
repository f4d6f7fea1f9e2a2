"""TLS connections read back from a capture: TLS 1.2 with a key log or the server's RSA key, TLS 1.3 with a key log.

Theory of operation
-------------------
:func:`decode_tls_capture` reads a pcap (or the segments of one), rebuilds each TCP connection's two
byte streams (:mod:`handshake_lib.tcp.streams`) and keeps the connections whose client starts with a
TLS handshake record.  Each one is then read as Wireshark reads it with a key log:

1. records, in capture order, by the record layer's own :class:`~handshake_lib.tls.record.RecordReader`
   (a direction switches to the protected length limit after its ChangeCipherSpec);
2. the plaintext handshake messages of each direction, reassembled across records
   (:class:`~handshake_lib.tls.record.HandshakeReassembler`) and decoded with their spans
   (:func:`~handshake_lib.tls.messages.decode_handshake`; a message this library does not model, or
   cannot decode in this context (an ECDHE ClientKeyExchange), stays an undecoded handshake message);
3. the master secret: the key log's ``CLIENT_RANDOM`` line for the ClientHello's random (or its ``RSA``
   line for the first 8 bytes of the encrypted pre-master secret), else, for an RSA key exchange, the
   pre-master secret decrypted from ClientKeyExchange with the server's private key
   (:func:`~handshake_lib.tls.rsa_kx.decrypt_pre_master_secret`) and the master secret derived from it
   (RFC 7627's extended master secret when both hellos carried the extension);
4. the key block (:func:`~handshake_lib.tls.prf.key_block`) and one
   :class:`~handshake_lib.tls.record.RecordProtection` per direction, which opens every record after
   that direction's ChangeCipherSpec: the client's Finished must open, so a wrong secret is caught
   there and said so, not shown as garbage.

Each record becomes a :class:`~handshake_lib.tls.connection.TranscriptEntry`, so ``--trace``'s renderer
(:mod:`handshake_lib.cli.trace`) shows a captured session exactly as it shows a live one.

What cannot be decrypted is said per connection in ``problem``: no key log line for this client random;
a server key that does not match the certificate; an ECDHE or DHE key exchange with only the server's
key (its pre-master secret came from ephemeral values that were never on the wire or in the key: the
server's key only signed them: that is forward secrecy); a resumed session with only the server's key
whose full handshake is not in the capture.

TLS 1.3 (the ServerHello, or a HelloRetryRequest, says so in supported_versions) is read as Wireshark reads
it with an NSS key log: there is no master secret to share, so the key log carries one traffic secret per
direction and stage for the client random, and each record is opened with the secret of its stage
(:meth:`_Reader.transcript13`, :class:`~handshake_lib.tls.record13.RecordOpener13`):

* the hellos, the middlebox ChangeCipherSpec records (one byte, shown and skipped) and an alert sent
  before the keys travel in the clear; a HelloRetryRequest (a ServerHello with the special random) and
  the second ClientHello are listed like any hello;
* after the ServerHello, protected records (type 23 on the wire, the real type inside) open with
  ``SERVER_HANDSHAKE_TRAFFIC_SECRET`` and ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``; each direction moves to
  ``SERVER_TRAFFIC_SECRET_0`` / ``CLIENT_TRAFFIC_SECRET_0`` after its own decrypted Finished, and to the
  next generation after each KeyUpdate it sends (:func:`~handshake_lib.tls.key_schedule13.next_application_secret`:
  later generations are never logged);
* a client that offered early data: its records after the ClientHello open with
  ``CLIENT_EARLY_TRAFFIC_SECRET`` until EndOfEarlyData, or until one opens with its handshake secret
  instead (the server refused the 0-RTT data, so no EndOfEarlyData comes).

Decrypted handshake messages are decoded with TLS 1.3's table of types
(:func:`~handshake_lib.tls.messages13.decode_handshake13`) and each record becomes a
:class:`TranscriptEntry13` carrying the real content type, so ``--trace`` shows a captured 1.3 session as
it shows a 1.2 one.  What stays encrypted is said in ``problem``: no key log (the server's key cannot open
TLS 1.3: every key exchange is ephemeral), no 1.3 line for this client random, a line missing (that stage's
records stay encrypted), or a wrong secret (its first record does not open, and the direction stops there:
never garbage).

Resumed sessions.  An abbreviated handshake (RFC 5246 7.4.1.2; RFC 5077) has no key exchange: its master
secret is the one an earlier full handshake made.  As Wireshark does, :func:`decode_tls_capture` remembers the
master secret of every connection it decrypted under the session ID the server gave and under each ticket
it sent (NewSessionTicket), and a later connection whose ServerHello echoes its session ID (a resumption)
is opened with the secret its ticket or ID names, when the key log has no line for it.

Renegotiations (RFC 5746) are followed with a key log: the new ClientHello and ServerHello arrive inside
protected records, the key log's line for the new client random gives the new master secret, and each
direction switches to the new keys after its next ChangeCipherSpec, as a live connection does.  With only the
server's key a renegotiation's records stay encrypted (the connection says so).

Limits (docs/limits.md): :data:`MAX_CONNECTIONS` connections, :data:`MAX_STREAM_BYTES` per direction,
:data:`MAX_RECORDS` records per connection; what is cut is said in the connection's ``notes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import HandshakeError
from ..tcp.pcap import CapturedSegment
from ..tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Endpoint, group_connections, read_segments
from ..wire import Reader
from . import prf as prf_module
from .connection import ApplicationData, TranscriptEntry
from .connection13 import TranscriptEntry13
from .constants import ContentType, ExtensionType, HandshakeType, ProtocolVersion
from .key_schedule13 import next_application_secret
from .keylog import TLS13_LABELS, TLS13_TRAFFIC_LABELS, KeyLog
from .messages import (
    Alert,
    Certificate,
    ChangeCipherSpec,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HandshakeMessage,
    NewSessionTicket,
    OpaqueHandshake,
    ServerHello,
    cipher_suite_name,
    decode_handshake,
)
from .messages13 import EndOfEarlyData, KeyUpdate, decode_handshake13
from .record import HandshakeReassembler, Record, RecordProtection, RecordReader
from .record13 import OpenedRecord13, RecordOpener13, Suite13, suite13
from .rsa_kx import decrypt_pre_master_secret
from .suites import SuiteParams, suite_params

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_STREAM_BYTES",
    "MAX_RECORDS",
    "TLSCaptureConnection",
    "UndecryptedRecord",
    "decode_tls_capture",
    "decode_tls_streams",
]

MAX_CONNECTIONS = 256
MAX_STREAM_BYTES = 32 << 20
MAX_RECORDS = 200_000

KEYLOG = "the key log (CLIENT_RANDOM)"
KEYLOG_RSA = "the key log (RSA: the pre-master secret)"
EARLIER_TICKET = "an earlier connection in this capture (the session the client's ticket resumed)"
EARLIER_ID = "an earlier connection in this capture (the session ID the server resumed)"
SERVER_KEY = "the server's RSA private key (the pre-master secret decrypted from ClientKeyExchange)"
KEYLOG13 = "the key log (TLS 1.3 traffic secrets)"

# TLS 1.3's key log labels (NSS), by what they open.
EARLY_LABEL = "CLIENT_EARLY_TRAFFIC_SECRET"
HANDSHAKE_LABELS = {
    CLIENT_TO_SERVER: "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    SERVER_TO_CLIENT: "SERVER_HANDSHAKE_TRAFFIC_SECRET",
}
APPLICATION_LABELS = {CLIENT_TO_SERVER: "CLIENT_TRAFFIC_SECRET_0", SERVER_TO_CLIENT: "SERVER_TRAFFIC_SECRET_0"}


@dataclass
class TLSCaptureConnection:
    """One TCP connection that carried TLS: its records as a transcript, and whether they were opened.

    ``problem`` is empty when every protected record was decrypted, else why they were not;
    ``key_source`` says where the master secret came from.
    """

    client: Endpoint
    server: Endpoint
    entries: list[TranscriptEntry] = field(default_factory=list)
    suite: int | None = None
    client_random: bytes = b""
    server_random: bytes = b""
    extended_master_secret: bool = False
    # What the key exchange left on the wire (lesson 09's exercise derives the master secret from these):
    # RSA: the encrypted pre-master secret from ClientKeyExchange; the suite's PRF hash; and, with the
    # extended master secret, the session hash (ClientHello .. ClientKeyExchange, RFC 7627 section 3).
    encrypted_pre_master_secret: bytes = field(default=b"", repr=False)
    prf_hash: str = ""
    session_hash: bytes = field(default=b"", repr=False)
    key_source: str = ""
    master_secret: bytes = b""
    problem: str = ""
    notes: list[str] = field(default_factory=list)
    # Renegotiations seen (new hellos inside protected records), and the client randoms whose keys opened them.
    renegotiations: int = 0
    renegotiation_randoms: list[bytes] = field(default_factory=list)
    # TLS 1.3: the ServerHello chose it; the key log labels whose secrets opened records, in the order first used
    # (with a KeyUpdate's next generations as ``CLIENT_TRAFFIC_SECRET_1``... though no key log has such lines).
    tls13: bool = False
    hello_retry_request: bool = False
    secrets_used: list[str] = field(default_factory=list)

    @property
    def suite_name(self) -> str:
        return cipher_suite_name(self.suite) if self.suite is not None else "(no ServerHello)"

    @property
    def decrypted(self) -> bool:
        return not self.problem

    def application_data(self, direction: str) -> bytes:
        """Every application data byte one side sent, decrypted, in order."""
        return b"".join(
            message.data
            for entry in self.entries
            if entry.direction == direction
            for message in entry.messages
            if isinstance(message, ApplicationData)
        )


@dataclass
class _Side:
    reader: RecordReader = field(default_factory=RecordReader)
    reassembler: HandshakeReassembler = field(default_factory=HandshakeReassembler)
    records: int = 0
    changed_cipher: bool = False
    clear_messages: list[bytes] = field(default_factory=list)  # raw handshake messages before its CCS
    stopped: str = ""


def _decode_message(raw: bytes) -> HandshakeMessage:
    try:
        message, _ = decode_handshake(raw, verify_data_length=None, annotate=False)
    except HandshakeError:  # a body this library reads only in another context (ECDHE ClientKeyExchange...)
        message = OpaqueHandshake(raw[0], raw[4:])
    return message


def _decode_message13(raw: bytes) -> HandshakeMessage:
    try:
        message, _ = decode_handshake13(raw, annotate=False)
    except HandshakeError:  # not a TLS 1.3 message, or one that does not decode: the hex dump still shows it
        message = OpaqueHandshake(raw[0], raw[4:])
    return message


def _looks_like_tls(client_bytes: bytes) -> bool:
    # A handshake record, major version 3, holding a ClientHello.
    return (
        len(client_bytes) >= 6
        and client_bytes[0] == ContentType.handshake
        and client_bytes[1] == 3
        and (client_bytes[5] == HandshakeType.client_hello)
    )


# Ephemeral key exchanges by code point (IANA TLS Cipher Suites registry), for suites this library does not
# run or name: the server's key cannot open them, and saying why must not depend on implementing them.
_EPHEMERAL = {
    **dict.fromkeys((0x0033, 0x0039, 0x0067, 0x006B, 0x009E, 0x009F, 0x00A2, 0x00A3, 0xCCAA), "DHE"),
    **dict.fromkeys((0xC009, 0xC00A, 0xC013, 0xC014, 0xC023, 0xC024, 0xC027, 0xC028), "ECDHE"),
    **dict.fromkeys((0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9, 0xC0AC, 0xC0AD, 0xC0AE, 0xC0AF), "ECDHE"),
}


def _key_exchange(suite: int, params: SuiteParams | None) -> str:
    name = cipher_suite_name(suite)
    if params is not None:
        return params.key_exchange.split("_", 1)[0]
    if suite in _EPHEMERAL:
        return _EPHEMERAL[suite]
    for kind in ("ECDHE", "DHE", "ECDH", "DH", "PSK"):
        if f"_{kind}_" in name:
            return kind
    return "RSA" if name.startswith("TLS_RSA_") else name


class _Reader:
    """One connection, record by record."""

    def __init__(self, connection: TLSCaptureConnection) -> None:
        self.connection = connection
        self.sides = {CLIENT_TO_SERVER: _Side(), SERVER_TO_CLIENT: _Side()}
        self.records: list[tuple[str, Record]] = []
        self.full = False

    def feed(self, direction: str, data: bytes) -> None:
        side = self.sides[direction]
        if side.stopped or self.full:
            return
        side.reader.extend(data)
        while True:
            try:
                record = side.reader.next_record()
            except HandshakeError as error:
                side.stopped = f"{direction}: not a TLS record ({error}): the rest is not read"
                self.connection.notes.append(side.stopped)
                return
            if record is None:
                return
            if len(self.records) >= MAX_RECORDS:
                self.full = True
                self.connection.notes.append(f"more than {MAX_RECORDS} records: the rest is not read")
                return
            self.records.append((direction, record))
            if record.content_type == ContentType.change_cipher_spec:
                side.changed_cipher = True
                side.reader.protected = True
            elif record.content_type == ContentType.handshake and not side.changed_cipher:
                try:
                    messages = [m.raw for m in side.reassembler.feed(record.fragment)]
                except HandshakeError as error:
                    side.stopped = f"{direction}: a handshake message cannot be read ({error})"
                    self.connection.notes.append(side.stopped)
                    return
                side.clear_messages += messages
                self._expect_protected_records(direction, messages)

    def _expect_protected_records(self, direction: str, messages: list[bytes]) -> None:
        """TLS 1.3 sends protected records (up to 2^14 + 256 bytes) without a ChangeCipherSpec before them:
        after a 1.3 ServerHello both directions, after a ClientHello offering 0-RTT the client's."""
        for raw in messages:
            if raw[0] not in (HandshakeType.client_hello, HandshakeType.server_hello):
                continue
            message = _decode_message(raw)
            if isinstance(message, ServerHello) and message.selected_version == ProtocolVersion.TLS1_3:
                for side in self.sides.values():
                    side.reader.protected = True
            elif isinstance(message, ClientHello) and message.extension(ExtensionType.early_data) is not None:
                self.sides[CLIENT_TO_SERVER].reader.protected = True

    # -- keys ------------------------------------------------------------------------------------
    def keys(
        self, keylog: KeyLog | None, server_key: rsa.RSAPrivateKey | None, sessions: dict[bytes, bytes] | None = None
    ) -> tuple[RecordProtection, ...] | None:
        connection = self.connection
        client = [_decode_message(raw) for raw in self.sides[CLIENT_TO_SERVER].clear_messages]
        server = [_decode_message(raw) for raw in self.sides[SERVER_TO_CLIENT].clear_messages]
        hello = next((m for m in client if isinstance(m, ClientHello)), None)
        server_hello = next((m for m in server if isinstance(m, ServerHello)), None)
        if hello is None or server_hello is None:
            connection.problem = "the capture has no " + ("ClientHello" if hello is None else "ServerHello")
            return None
        connection.client_random, connection.server_random = hello.random, server_hello.random
        connection.suite = server_hello.cipher_suite
        if server_hello.extension(ExtensionType.supported_versions) is not None:
            # TLS 1.3 (a HelloRetryRequest says so too): traffic secrets from the key log, read by transcript13.
            connection.tls13 = True
            return None
        try:
            params: SuiteParams | None = suite_params(server_hello.cipher_suite)
        except (HandshakeError, KeyError, ValueError):  # a suite we do not implement (DHE, CHACHA20...)
            params = None
        kind = _key_exchange(server_hello.cipher_suite, params)
        connection.extended_master_secret = (
            hello.extension(ExtensionType.extended_master_secret) is not None
            and server_hello.extension(ExtensionType.extended_master_secret) is not None
        )
        etm = (
            hello.extension(ExtensionType.encrypt_then_mac) is not None
            and server_hello.extension(ExtensionType.encrypt_then_mac) is not None
        )
        exchange = next((m for m in client if m.handshake_type == HandshakeType.client_key_exchange), None)
        encrypted_pms = exchange.encrypted_pre_master_secret if isinstance(exchange, ClientKeyExchange) else b""
        if kind == "RSA":
            connection.encrypted_pre_master_secret = encrypted_pms
        if params is not None:
            connection.prf_hash = params.prf_hash
            if connection.extended_master_secret and exchange is not None:
                connection.session_hash = self._session_hash(params)
        master = keylog.master_secret(hello.random) if keylog is not None else None
        earlier = self._resumed_from(sessions or {}, hello, server_hello)
        if master is not None:
            connection.key_source = KEYLOG
        elif earlier is not None:
            master, connection.key_source = earlier
        elif keylog is not None and encrypted_pms and keylog.find("RSA", encrypted_pms[:8]) is not None:
            pre_master = keylog.find("RSA", encrypted_pms[:8])
            assert pre_master is not None
            master = self._master(pre_master, hello, params)
            connection.key_source = KEYLOG_RSA
        elif server_key is not None:
            master = self._from_server_key(server_key, kind, exchange, encrypted_pms, hello, server, params)
            if master is None:
                return None
            connection.key_source = SERVER_KEY
        elif keylog is None:
            connection.problem = "no key log and no server key were given"
            return None
        else:
            connection.problem = f"no CLIENT_RANDOM line in the key log for client random {hello.random.hex()}"
            return None
        if params is None:
            connection.problem = f"{connection.suite_name} is not a suite this library decrypts"
            return None
        if master is None:
            return None
        connection.master_secret = master
        block = prf_module.key_block(master, server_hello.random, hello.random, params)
        options: dict[str, Any] = {"encrypt_then_mac": etm and not params.is_aead}
        return (RecordProtection.client_write(block, params, **options),
                RecordProtection.server_write(block, params, **options))  # fmt: skip

    @staticmethod
    def _resumed_from(
        sessions: dict[bytes, bytes], hello: ClientHello, server_hello: ServerHello
    ) -> tuple[bytes, str] | None:
        """The master secret of an earlier connection this one resumed, and how it was found (or None).

        The server resumes by echoing the session ID the client offered; with a ticket that ID is the
        client's fresh one, and the ticket names the session (RFC 5077 3.4).
        """
        if not server_hello.session_id or server_hello.session_id != hello.session_id:
            return None
        ticket = getattr(hello.extension(ExtensionType.session_ticket), "ticket", b"")
        if ticket and b"ticket:" + ticket in sessions:
            return sessions[b"ticket:" + ticket], EARLIER_TICKET
        if b"id:" + server_hello.session_id in sessions:
            return sessions[b"id:" + server_hello.session_id], EARLIER_ID
        return None

    def remember(self, sessions: dict[bytes, bytes]) -> None:
        """After a connection was decrypted: its master secret under its session ID and each ticket it got."""
        connection = self.connection
        if not connection.decrypted or not connection.master_secret:
            return
        for message in map(_decode_message, self.sides[SERVER_TO_CLIENT].clear_messages):
            if isinstance(message, ServerHello) and message.session_id:
                sessions[b"id:" + message.session_id] = connection.master_secret
            elif isinstance(message, NewSessionTicket) and message.ticket:
                sessions[b"ticket:" + message.ticket] = connection.master_secret

    def _master(self, pre_master: bytes, hello: ClientHello, params: SuiteParams | None) -> bytes | None:
        if params is None:
            return None
        server_hello = next(
            m for m in map(_decode_message, self.sides[SERVER_TO_CLIENT].clear_messages) if isinstance(m, ServerHello)
        )
        if self.connection.extended_master_secret:
            return prf_module.extended_master_secret(pre_master, self._session_hash(params), params.prf_hash)
        return prf_module.master_secret(pre_master, hello.random, server_hello.random, params.prf_hash)

    def _session_hash(self, params: SuiteParams) -> bytes:
        """Hash of ClientHello .. ClientKeyExchange, in the order they were sent (RFC 7627 section 3)."""
        client = self.sides[CLIENT_TO_SERVER].clear_messages
        server = self.sides[SERVER_TO_CLIENT].clear_messages
        done = next((i for i, raw in enumerate(server) if raw[0] == HandshakeType.server_hello_done), len(server) - 1)
        exchange = next(
            (i for i, raw in enumerate(client) if raw[0] == HandshakeType.client_key_exchange), len(client) - 1
        )
        messages = client[:1] + server[: done + 1] + client[1 : exchange + 1]
        return hashlib.new(params.prf_hash, b"".join(messages)).digest()

    def _from_server_key(
        self,
        server_key: rsa.RSAPrivateKey,
        kind: str,
        exchange: HandshakeMessage | None,
        encrypted_pms: bytes,
        hello: ClientHello,
        server: list[HandshakeMessage],
        params: SuiteParams | None,
    ) -> bytes | None:
        connection = self.connection
        if kind in ("ECDHE", "DHE"):
            connection.problem = (
                f"the pre-master secret came from an ephemeral {kind} exchange; the server's RSA key only "
                "signed it (forward secrecy: neither side's ephemeral private value is in the capture or the key)"
            )
            return None
        if kind != "RSA":
            connection.problem = f"{connection.suite_name}: the server's key does not give this key exchange's secret"
            return None
        if exchange is None:
            connection.problem = (
                "no ClientKeyExchange: a resumed session, whose master secret came from an earlier handshake "
                "that is not in this capture (a key log line for it decrypts it)"
            )
            return None
        certificate = next((m for m in server if isinstance(m, Certificate)), None)
        if certificate is not None and certificate.certificates:
            try:
                leaf_key = certificate.x509()[0].public_key()
            except (HandshakeError, ValueError, UnsupportedAlgorithm):
                leaf_key = None  # unreadable: the client's Finished will say whether the key is right
            if leaf_key is not None and leaf_key != server_key.public_key():
                connection.problem = "the server key given is not the key of the server's certificate"
                return None
        # Constant-time countermeasure or not, a wrong ciphertext gives a random secret: the Finished says.
        pre_master = decrypt_pre_master_secret(encrypted_pms, server_key, hello.legacy_version)
        return self._master(pre_master, hello, params)

    def _renegotiated_keys(
        self, hello: ClientHello, server_hello: ServerHello, keylog: KeyLog | None
    ) -> dict[str, RecordProtection] | None:
        """Each direction's protection after a renegotiation's ChangeCipherSpec, from the key log's line for
        the new client random (None, and the problem said, without one)."""
        connection = self.connection
        connection.renegotiations += 1
        master = keylog.master_secret(hello.random) if keylog is not None else None
        try:
            params = suite_params(server_hello.cipher_suite)
        except (HandshakeError, KeyError, ValueError):
            params = None
        if master is None or params is None:
            why = (
                f"no CLIENT_RANDOM line for its client random {hello.random.hex()}"
                if keylog is not None
                else "its keys need a key log line (the server's key alone does not follow it)"
            )
            connection.problem = connection.problem or f"renegotiation {connection.renegotiations}: {why}"
            return None
        connection.renegotiation_randoms.append(hello.random)
        etm = (
            not params.is_aead
            and hello.extension(ExtensionType.encrypt_then_mac) is not None
            and server_hello.extension(ExtensionType.encrypt_then_mac) is not None
        )
        block = prf_module.key_block(master, server_hello.random, hello.random, params)
        return {
            CLIENT_TO_SERVER: RecordProtection.client_write(block, params, encrypt_then_mac=etm),
            SERVER_TO_CLIENT: RecordProtection.server_write(block, params, encrypt_then_mac=etm),
        }

    # -- the transcript --------------------------------------------------------------------------
    def transcript(self, protections: tuple[RecordProtection, ...] | None, keylog: KeyLog | None = None) -> None:
        connection = self.connection
        protection = dict(zip((CLIENT_TO_SERVER, SERVER_TO_CLIENT), protections or (None, None), strict=True))
        changed = {CLIENT_TO_SERVER: False, SERVER_TO_CLIENT: False}
        reassemblers = {CLIENT_TO_SERVER: HandshakeReassembler(), SERVER_TO_CLIENT: HandshakeReassembler()}
        failed: set[str] = set()
        # A renegotiation: its ClientHello (once seen), then each direction's keys from its next ChangeCipherSpec.
        renegotiating: ClientHello | None = None
        pending: dict[str, RecordProtection] = {}
        for direction, record in self.records:
            raw = record.encode()
            if not changed[direction]:
                messages = self._messages(record.content_type, record.fragment, reassemblers[direction])
                connection.entries.append(
                    TranscriptEntry(direction, record.content_type, raw, record.fragment, messages)
                )
                if record.content_type == ContentType.change_cipher_spec:
                    changed[direction] = True
                    reassemblers[direction] = HandshakeReassembler()
                continue
            opener = protection[direction]
            plaintext = None
            if opener is not None and direction not in failed:
                try:
                    plaintext = opener.unprotect(record)
                except HandshakeError as error:
                    failed.add(direction)
                    who = "client's" if direction == CLIENT_TO_SERVER else "server's"
                    first = opener.sequence_number == 0
                    connection.problem = connection.problem or (
                        f"the {who} first protected record (Finished) does not open with these keys: the secret "
                        f"is wrong ({error})"
                        if first
                        else f"a {who} record does not open ({error}): a renegotiation's new keys are not followed"
                    )
            if plaintext is None:
                connection.entries.append(UndecryptedRecord(direction, record.content_type, raw))
                continue
            messages = self._messages(record.content_type, plaintext, reassemblers[direction])
            connection.entries.append(
                TranscriptEntry(direction, record.content_type, raw, plaintext, messages, encrypted=True)
            )
            for message in messages:
                if isinstance(message, ClientHello) and direction == CLIENT_TO_SERVER:
                    renegotiating = message
                elif isinstance(message, ServerHello) and renegotiating is not None:
                    pending = self._renegotiated_keys(renegotiating, message, keylog) or {}
                    renegotiating = None
            if record.content_type == ContentType.change_cipher_spec and direction in pending:
                protection[direction] = pending.pop(direction)  # the new keys, from this direction's next record
                reassemblers[direction] = HandshakeReassembler()
        if not connection.problem and any(isinstance(entry, UndecryptedRecord) for entry in connection.entries):
            connection.problem = "some records were not decrypted"

    @staticmethod
    def _messages(
        content_type: int,
        data: bytes,
        reassembler: HandshakeReassembler,
        decode: Callable[[bytes], HandshakeMessage] = _decode_message,
    ) -> list[Any]:
        try:
            if content_type == ContentType.handshake:
                return [decode(m.raw) for m in reassembler.feed(data)]
            if content_type == ContentType.application_data:
                return [ApplicationData(data)]
            if content_type == ContentType.alert:
                return [Alert.decode(Reader(data, annotate=False))]
            if content_type == ContentType.change_cipher_spec:
                return [ChangeCipherSpec()]
        except HandshakeError:
            pass  # the hex dump still shows the bytes; the record's spans say what does not decode
        return []

    # -- TLS 1.3 ---------------------------------------------------------------------------------
    def transcript13(self, keylog: KeyLog | None, server_key: rsa.RSAPrivateKey | None = None) -> None:
        """Every record of a TLS 1.3 connection, the protected ones opened with the key log's traffic secrets.

        Each direction moves through its secrets as the messages it sends say: the server's handshake
        secret from its ServerHello (not a HelloRetryRequest), the client's from the same moment (its
        0-RTT records, if it offered early data, are tried with CLIENT_EARLY_TRAFFIC_SECRET first, until
        EndOfEarlyData or until its handshake secret opens one: the server refused them); each
        application secret from that direction's own decrypted Finished; the next generation from each
        KeyUpdate (:func:`~handshake_lib.tls.key_schedule13.next_application_secret`).  Plaintext records
        (the hellos, the middlebox ChangeCipherSpec, an alert before the keys) are shown as they are.
        """
        connection = self.connection
        hello = next(m for m in map(_decode_message13, self.sides[CLIENT_TO_SERVER].clear_messages)
                     if isinstance(m, ClientHello))  # fmt: skip  # keys() found it before saying TLS 1.3
        client_random = hello.random
        try:
            suite: Suite13 | None = suite13(connection.suite if connection.suite is not None else -1)
        except ValueError:
            suite = None

        def find(label: str) -> bytes | None:
            return keylog.find(label, client_random) if keylog is not None else None

        if keylog is None:
            connection.problem = "TLS 1.3 is decrypted only with its traffic secrets, from a key log" + (
                " (the server's RSA key cannot: every TLS 1.3 key exchange is ephemeral, the key only signs)"
                if server_key is not None
                else ""
            )
        elif not any(find(label) is not None for label in TLS13_LABELS):
            connection.problem = (
                f"no TLS 1.3 secret lines ({', '.join(TLS13_TRAFFIC_LABELS)}) in the key log for client random "
                f"{client_random.hex()}"
            )
        elif suite is None:
            connection.problem = f"{connection.suite_name} is not a TLS 1.3 suite this library decrypts"
        usable = suite is not None and not connection.problem
        if usable:
            connection.key_source = KEYLOG13
        missing: list[str] = []

        def start(state: _Direction13, label: str, secret: bytes | None = None, *, logged: bool = True) -> None:
            if usable and suite is not None:
                state.use(suite, label, find(label) if logged else secret)

        sides = {CLIENT_TO_SERVER: _Direction13(), SERVER_TO_CLIENT: _Direction13()}
        early = _Direction13()  # the client's 0-RTT records, between its ClientHello and EndOfEarlyData
        early_pending = False
        clear = {CLIENT_TO_SERVER: HandshakeReassembler(), SERVER_TO_CLIENT: HandshakeReassembler()}
        for direction, record in self.records:
            raw = record.encode()
            if record.content_type != ContentType.application_data:  # in the clear in TLS 1.3
                messages = self._messages(record.content_type, record.fragment, clear[direction], _decode_message13)
                connection.entries.append(
                    TranscriptEntry13(direction, record.content_type, raw, record.fragment, messages)
                )
                for message in messages:
                    if isinstance(message, ClientHello) and direction == CLIENT_TO_SERVER:
                        if message.extension(ExtensionType.early_data) is not None and not early.label:
                            early_pending = True
                            start(early, EARLY_LABEL)
                    elif isinstance(message, ServerHello) and direction == SERVER_TO_CLIENT:
                        if message.is_hello_retry_request:
                            connection.hello_retry_request = True
                            continue
                        connection.server_random, connection.suite = message.random, message.cipher_suite
                        for side, state in sides.items():
                            if not state.label:
                                start(state, HANDSHAKE_LABELS[side])
                continue
            state = sides[direction]
            if direction == CLIENT_TO_SERVER and early_pending:
                # 0-RTT: the early secret, else the handshake secret (the early data ended, or was refused).
                if (opened := early.open(record)) is not None:
                    state = early
                elif (opened := state.open(record, trial=True)) is not None:
                    early_pending = False
                else:
                    state = early  # 0-RTT data that did not open
            else:
                opened = state.open(record)
            if opened is None:
                if usable and not connection.problem:
                    self._not_opened13(direction, state, missing)
                connection.entries.append(UndecryptedRecord(direction, record.content_type, raw))
                continue
            if state.label not in connection.secrets_used:
                connection.secrets_used.append(state.label)
            messages = self._messages(opened.content_type, opened.content, state.reassembler, _decode_message13)
            connection.entries.append(
                TranscriptEntry13(direction, opened.content_type, raw, opened.content, messages, encrypted=True)
            )
            for message in messages:
                if isinstance(message, EndOfEarlyData):
                    early_pending = False
                elif isinstance(message, Finished) and state.label == HANDSHAKE_LABELS[direction]:
                    start(state, APPLICATION_LABELS[direction])  # this direction's next record
                elif isinstance(message, KeyUpdate) and state.secret is not None and suite is not None:
                    generation = state.generation + 1
                    label = f"{APPLICATION_LABELS[direction][:-2]}_{generation}"
                    start(state, label, next_application_secret(suite.hash_name, state.secret), logged=False)
                    state.generation = generation
        if missing and not connection.problem:
            connection.problem = (
                f"the key log has no {', '.join(missing)} line for client random {client_random.hex()}: "
                "those records stay encrypted"
            )
        if not connection.problem and any(isinstance(entry, UndecryptedRecord) for entry in connection.entries):
            connection.problem = "some records were not decrypted"

    def _not_opened13(self, direction: str, state: _Direction13, missing: list[str]) -> None:
        """Say why a protected record stays encrypted: its secret is not in the key log, or is wrong."""
        if state.opener is None:
            if state.label and state.label not in missing:
                missing.append(state.label)
            return
        who = "client's" if direction == CLIENT_TO_SERVER else "server's"
        number = state.opener.sequence_number
        self.connection.problem = (
            f"the {who} first record under {state.label} does not open: the key log's secret is wrong ({state.error})"
            if number == 0
            else f"the {who} record {number} under {state.label} does not open ({state.error})"
        )


@dataclass
class _Direction13:
    """One direction of a TLS 1.3 capture: the secret in use (its key log label), its opener and reassembler."""

    label: str = ""
    secret: bytes | None = None
    opener: RecordOpener13 | None = None
    generation: int = 0
    error: str = ""  # why the first record that did not open did not; the direction then stops trying
    reassembler: HandshakeReassembler = field(default_factory=HandshakeReassembler)

    def use(self, suite: Suite13, label: str, secret: bytes | None) -> None:
        # A handshake message never spans a change of keys (RFC 8446 section 5.1): a fresh reassembler.
        self.label, self.secret, self.error = label, secret, ""
        self.opener = RecordOpener13.from_secret(suite, secret) if secret is not None else None
        self.reassembler = HandshakeReassembler()

    def open(self, record: Record, *, trial: bool = False) -> OpenedRecord13 | None:
        """The record opened, or None: no secret, or it does not open (``error`` says why, and this direction
        stops trying, unless it was only a ``trial``: a 0-RTT record tried with the handshake secret)."""
        if self.opener is None or self.error:
            return None
        try:
            return self.opener.open(record.encode())
        except HandshakeError as error:
            if not trial:
                self.error = str(error)
            return None


class UndecryptedRecord(TranscriptEntry):
    """A protected record that could not be opened: shown as it travelled, with no plaintext."""

    def __init__(self, direction: str, content_type: int, record: bytes) -> None:
        super().__init__(direction, content_type, record, b"", [], encrypted=True)


def decode_tls_streams(
    chunks: Iterable[tuple[str, bytes]],
    *,
    client: Endpoint = ("client", 0),
    server: Endpoint = ("server", 0),
    keylog: KeyLog | None = None,
    server_key: rsa.RSAPrivateKey | None = None,
    sessions: dict[bytes, bytes] | None = None,
) -> TLSCaptureConnection:
    """One TLS connection given as (direction, bytes) chunks in the order they were seen.

    ``sessions``: master secrets of earlier connections by session ID and ticket (``decode_tls_capture``
    keeps one for a whole capture); a resumed connection is opened with the one it names, and a connection
    that decrypts adds its own.
    """
    connection = TLSCaptureConnection(client, server)
    reader = _Reader(connection)
    for direction, data in chunks:
        reader.feed(direction, data)
    protections = reader.keys(keylog, server_key, sessions)
    if connection.tls13:
        reader.transcript13(keylog, server_key)
    else:
        reader.transcript(protections, keylog)
    if sessions is not None:
        reader.remember(sessions)
    return connection


def decode_tls_capture(
    source: str | Path | bytes | Iterable[CapturedSegment],
    *,
    keylog: KeyLog | None = None,
    server_key: rsa.RSAPrivateKey | None = None,
) -> list[TLSCaptureConnection]:
    """Every TLS connection of a capture (a pcap's path or bytes, or its segments), decrypted if it can be.

    Raises :class:`~handshake_lib.errors.DecodeError` for bytes that are not a pcap we read; a capture
    without TLS gives an empty list.
    """
    if isinstance(source, str | Path | bytes | bytearray):
        segments, cut = read_segments(source)
    else:
        segments, cut = list(source), ""
    conversations, skipped = group_connections(segments, max_connections=MAX_CONNECTIONS, server_ports=(443,))
    connections = []
    sessions: dict[bytes, bytes] = {}  # at most two entries per connection: MAX_CONNECTIONS bounds it
    for conversation in conversations:
        chunks = list(conversation.chunks(MAX_STREAM_BYTES))
        first = next((data for direction, data in chunks if direction == CLIENT_TO_SERVER), b"")
        if not _looks_like_tls(first):
            continue
        connection = decode_tls_streams(
            chunks, client=conversation.client, server=conversation.server, keylog=keylog, server_key=server_key,
            sessions=sessions,
        )  # fmt: skip
        connection.notes.extend(conversation.notes)
        connections.append(connection)
    if cut:
        for connection in connections:
            connection.notes.append(cut)
    if skipped and connections:
        connections[-1].notes.append(
            f"more than {MAX_CONNECTIONS} connections in the capture: {skipped} segments of later ones not read"
        )
    return connections
