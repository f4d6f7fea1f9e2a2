"""TLS 1.2 (and later 1.3), implemented for teaching: messages, key derivation, records, client, server.

The easy entry points: :func:`tls_get` and :func:`open_tls` (our client over a socket),
:class:`TLSPageServer` (our server on loopback); the sans-I/O cores :class:`TLSClient` and
:class:`TLSServer` underneath, with their state tables in :mod:`handshake_lib.tls.states` and the
stages a learner can replace in :class:`Stages` (:mod:`handshake_lib.tls.stages`).
"""

from .client import TLSClient
from .connection import (
    DEFAULT_CLIENT_SUITES,
    DEFAULT_SERVER_SUITES,
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    ConnectionStateError,
    HandshakeComplete,
    TLSConnection,
    TranscriptEntry,
    UnexpectedEOF,
)
from .server import TLSServer
from .session import TLSPageServer, TLSResponse, TLSStream, open_tls, tls_get
from .stages import Stages
from .states import State, diagram_rows

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
    "State",
    "diagram_rows",
    "tls_get",
    "open_tls",
    "TLSStream",
    "TLSResponse",
    "TLSPageServer",
    "Stages",
]
