"""One connection, either version: TLS 1.3 with a fallback to TLS 1.2, on both sides (RFC 8446 4.1 and 4.2.1).

Theory of operation
-------------------
Which version a connection speaks is decided by two messages: the ClientHello offers versions in
``supported_versions``, and the server's answer chooses.  Everything before that is shared, and everything
after belongs to one version's core: :class:`~handshake_lib.tls.client13.TLS13Client` /
:class:`~handshake_lib.tls.server13.TLS13Server` or TLS 1.2's :class:`~handshake_lib.tls.client.TLSClient` /
:class:`~handshake_lib.tls.server.TLSServer`.  The two classes here hold the decision point and then hand
every call to the core that won (:attr:`core`), so a socket driver runs them like any core.

* :class:`NegotiatingClient` starts a TLS 1.3 client that offers 1.2 as well (its ClientHello carries both
  versions, 1.3's key shares and 1.2's suites and extensions).  If the ServerHello chooses 1.3 nothing
  changes.  If it chooses 1.2, the 1.3 client has checked the downgrade sentinel (RFC 8446 4.1.3: a 1.3
  server that negotiates 1.2 ends its random with ``DOWNGRD\\x01``, and a client that offered 1.3 seeing it
  knows someone removed its offer: ``illegal_parameter``), and a TLS 1.2 client built by ``fallback`` takes
  over *as if it had sent that very ClientHello* (its ``build_client_hello`` stage returns it); it is then
  fed every byte the server has sent so far.  That the 1.2 client's hello is byte for byte the one on the
  wire is checked, not assumed.
* :class:`NegotiatingServer` reads records until the first ClientHello is whole (nothing is answered
  before), then builds the TLS 1.3 server if ``supported_versions`` offers 1.3, the TLS 1.2 server otherwise
  (with the downgrade sentinel in its random), and feeds it everything received.  Anything that is not a
  plausible ClientHello goes to the TLS 1.2 server, whose checks answer it with the right alert.

Bounds: what is held before the decision is at most one handshake message's worth of records
(:data:`MAX_UNDECIDED_BYTES`); past it, the bytes go to the TLS 1.2 core, which refuses them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..errors import InternalError, ProtocolError
from .client import TLSClient
from .client13 import TLS13Client
from .constants import ContentType, ExtensionType, HandshakeType, ProtocolVersion
from .extensions import SupportedVersionsExtension
from .messages import ClientHello, decode_handshake
from .record import MAX_HANDSHAKE_MESSAGE_LENGTH, HandshakeReassembler, RecordReader
from .server import TLSServer
from .server13 import TLS13Server

__all__ = ["NegotiatingClient", "NegotiatingServer", "MAX_UNDECIDED_BYTES", "offers_tls13"]

# Bytes held before the version is known: a ClientHello (or the server's first flight) with its records.
MAX_UNDECIDED_BYTES = MAX_HANDSHAKE_MESSAGE_LENGTH + 4096

AnyCore = TLSClient | TLS13Client | TLSServer | TLS13Server


class _Delegating:
    """Every attribute not defined here is the winning core's."""

    core: Any

    def __getattr__(self, name: str) -> Any:
        if name == "core":  # pragma: no cover - set in __init__ before anything reads it
            raise AttributeError(name)
        return getattr(self.core, name)


class NegotiatingClient(_Delegating):
    """A client offering TLS 1.3 and 1.2 in one hello; afterwards, the core of the version the server chose."""

    def __init__(self, client13: TLS13Client, fallback: Callable[[ClientHello], TLSClient]) -> None:
        if not client13.offer_tls12:
            raise ValueError("the TLS 1.3 client must offer TLS 1.2 too (offer_tls12=True)")
        self.core: TLS13Client | TLSClient = client13
        self.client13 = client13
        self._fallback = fallback
        self._received = bytearray()  # everything the server sent, until the version is known

    def start(self) -> None:
        self.client13.start()

    def receive_data(self, data: bytes) -> list[Any]:
        if self.core is not self.client13 or self.client13.server_hello is not None:
            return self.core.receive_data(data)
        if len(self._received) + len(data) <= MAX_UNDECIDED_BYTES:
            self._received += data
        events = self.client13.receive_data(data)
        hello = self.client13.tls12_server_hello
        if hello is None:
            if self.client13.server_hello is not None:
                self._received.clear()  # 1.3 it is
            return events
        return self._become_tls12()

    def _become_tls12(self) -> list[Any]:
        hello = self.client13.first_client_hello
        assert hello is not None
        client12 = self._fallback(hello)
        client12.start()
        sent = client12.data_to_send()
        # Every record our hello went out in (a small fragment_size cuts it into several), up to the server's first.
        ours = b"".join(
            entry.record
            for entry in itertools.takewhile(lambda e: e.direction == "client->server", self.client13.transcript)
        )
        if self.client13.transcript and sent != ours:
            raise InternalError("the TLS 1.2 client's ClientHello differs from the one on the wire")
        self.core = client12
        received, self._received = bytes(self._received), bytearray()
        return client12.receive_data(received)

    @property
    def version(self) -> int:
        return self.core.version


def offers_tls13(hello: ClientHello) -> bool:
    versions = hello.extension(ExtensionType.supported_versions)
    return isinstance(versions, SupportedVersionsExtension) and ProtocolVersion.TLS1_3 in versions.versions


class NegotiatingServer(_Delegating):
    """A server speaking TLS 1.3 and 1.2: the first ClientHello picks the core."""

    def __init__(self, make_tls13: Callable[[], TLS13Server], make_tls12: Callable[[], TLSServer]) -> None:
        self._make_tls13 = make_tls13
        self._make_tls12 = make_tls12
        self.core: TLS13Server | TLSServer | None = None
        self._received = bytearray()
        self._records = RecordReader()
        self._reassembler = HandshakeReassembler()

    @property
    def decided(self) -> bool:
        return self.core is not None

    def __getattr__(self, name: str) -> Any:
        if self.core is None:
            raise AttributeError(f"{name}: the version is not decided yet (no ClientHello)")
        return getattr(self.core, name)

    @property
    def transcript(self) -> list[Any]:
        return self.core.transcript if self.core is not None else []

    @property
    def handshake(self) -> Any:
        return self.core.handshake if self.core is not None else None

    @property
    def error(self) -> Any:
        return self.core.error if self.core is not None else None

    def data_to_send(self) -> bytes:
        return self.core.data_to_send() if self.core is not None else b""

    def receive_data(self, data: bytes) -> list[Any]:
        if self.core is not None:
            return self.core.receive_data(data)
        self._received += data
        choice = self._choose(data)
        if choice is None and len(self._received) <= MAX_UNDECIDED_BYTES and data:
            return []
        self.core = self._make_tls13() if choice == "1.3" else self._make_tls12()
        received, self._received = bytes(self._received), bytearray()
        events = self.core.receive_data(received) if received else []
        if not data:
            events += self.core.receive_data(b"")
        return events

    def _choose(self, data: bytes) -> str | None:
        """ "1.3", "1.2", or None while the ClientHello is incomplete; never raises (the core will)."""
        try:
            for record in self._records.feed(data):
                if record.content_type != ContentType.handshake:
                    return "1.2"
                for message in self._reassembler.feed(record.fragment):
                    if message.msg_type != HandshakeType.client_hello:
                        return "1.2"
                    hello, _ = decode_handshake(message.raw, annotate=False)
                    return "1.3" if isinstance(hello, ClientHello) and offers_tls13(hello) else "1.2"
        except ProtocolError:
            return "1.2"
        return None

    @property
    def version(self) -> int:
        return self.core.version if self.core is not None else ProtocolVersion.TLS1_2
