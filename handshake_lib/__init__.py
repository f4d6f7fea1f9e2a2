"""Handshakes: TCP, TLS and SSH handshakes, implemented for real so that they can be taught.

The protocol code is sans-I/O: it takes bytes and returns events and bytes to send.  ``net`` is the
one module that touches sockets.  Start with :mod:`handshake_lib.wire` (how bytes are read and
annotated) and :mod:`handshake_lib.tcp` (the first lesson).
"""

__version__ = "0.1.0"
