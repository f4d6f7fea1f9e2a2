"""TEMPORARY: lessons import these until the lesson split lands (issue 7); then delete this module.

Our TLS client and server over sockets moved to :mod:`handshake_lib.net.tls` (the protocol package
imports no socket code).  Importing ``handshake_lib.tls`` does not load this module; only the old
``handshake_lib.tls.session`` import path does.  ``tests/test_layers.py`` lists it as the one exemption.
"""

from ..net.tls import *  # noqa: F403
from ..net.tls import PAGE, ServedConnection, TLSPageServer, TLSResponse, TLSStream, open_tls, tls_get  # noqa: F401
