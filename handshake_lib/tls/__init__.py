"""TLS 1.2 (and later 1.3), implemented for teaching: messages, key derivation, records, client, server.

Sans-I/O: the cores :class:`TLSClient` and :class:`TLSServer` take bytes and return events and bytes
to send, with their state tables in :mod:`handshake_lib.tls.states`; nothing here opens a socket.
To run them over one, :mod:`handshake_lib.net.tls` has :func:`~handshake_lib.net.tls.tls_get`,
:func:`~handshake_lib.net.tls.open_tls` and :class:`~handshake_lib.net.tls.TLSPageServer`.
The stages a learner can replace are one :class:`Stages` object (:mod:`handshake_lib.tls.stages`).
"""

from .client import TLSClient
from .connection import (
    DEFAULT_CLIENT_SUITES,
    DEFAULT_SERVER_SUITES,
    RSA_DEFAULT_SUITES,
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    ConnectionStateError,
    HandshakeComplete,
    TLSConnection,
    TranscriptEntry,
    UnexpectedEOF,
)
from .key_exchange import GROUPS, Group
from .server import Identity, TLSServer
from .sessions import ClientSessionStore, Session, SessionCache
from .stages import Stages
from .states import State, diagram_rows
from .tickets import TicketKeys

__all__ = [
    "TLSClient",
    "TLSServer",
    "TLSConnection",
    "HandshakeComplete",
    "ApplicationData",
    "AlertReceived",
    "ConnectionClosed",
    "ConnectionStateError",
    "UnexpectedEOF",
    "TranscriptEntry",
    "DEFAULT_CLIENT_SUITES",
    "DEFAULT_SERVER_SUITES",
    "RSA_DEFAULT_SUITES",
    "GROUPS",
    "Group",
    "Identity",
    "State",
    "diagram_rows",
    "Stages",
    "Session",
    "SessionCache",
    "ClientSessionStore",
    "TicketKeys",
]
