"""Real implementations we start, on this machine, for lessons and tests to talk to.

Theory of operation
-------------------
A lesson is only convincing if our code meets the real thing: OpenSSL today; OpenSSH's ``sshd``,
asyncssh and paramiko when the SSH lessons come.  This package starts them on loopback, with fresh
keys made for the run, a deadline on every wait, and everything stopped and deleted when the ``with``
block ends.  It builds on :mod:`handshake_lib.net` (sockets, loopback servers) and the protocol
packages (``pki`` makes the keys, ``tls.keylog`` reads what a peer logged); nothing below imports it.

Naming scheme: one module per implementation, and names that say which peer and which role.

* ``peers/<implementation>.py``: :mod:`.openssl`, :mod:`.openssh`, :mod:`.asyncssh_peers` and
  :mod:`.paramiko_peers` (``_peers`` so that the module is never mistaken for the library it runs).
* ``<implementation>_<role>(...)``: the context manager a lesson calls, with fresh keys, a key log
  (where the implementation keeps one) and cleanup: :func:`.openssl.openssl_server`,
  :func:`.openssh.openssh_server`, :func:`.asyncssh_peers.asyncssh_server`,
  :func:`.paramiko_peers.paramiko_client`...
* ``<Implementation><Role>``: the handle it yields, saying where the peer listens, how to trust it,
  what it logged and why it ended its last connection: :class:`.openssl.OpenSSLServer`,
  :class:`.openssh.OpenSSHServer`, :class:`.asyncssh_peers.AsyncSSHServer`...  A client run that
  returns rather than yields is ``<Implementation>ClientRun`` (:class:`.openssh.OpenSSHClientRun`).
* When one implementation can be run in two ways, the lower-level piece is named after *how* it runs:
  :class:`.openssl.PythonSSLServer` is OpenSSL inside this process through Python's ``ssl`` module
  (a thread, given a ready ``SSLContext``); :func:`.openssl.s_server` is the ``openssl s_server``
  command-line program as a child process, yielding an :class:`.openssl.OpenSSLProcess`.  For SSH,
  ``sshd(...)`` yielding an ``OpenSSHProcess`` would follow the same rule.

A peer that is not installed raises :class:`PeerUnavailable` (tests turn it into a skip, or a failure
under ``REQUIRE_PEERS=1``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import HandshakeError

__all__ = ["PeerUnavailable", "BackgroundPeer"]

_PeerT = TypeVar("_PeerT")


class PeerUnavailable(HandshakeError):
    """The real implementation asked for is not installed here, or would not start."""


class BackgroundPeer(Generic[_PeerT]):
    """A peer from a context manager, kept running across notebook cells, yet always stopped.

    ``start`` makes the context manager (for example ``lambda: openssl_server("AES128-SHA")``); it is
    entered on the first :meth:`get`, and left by :meth:`stop`, when this object is garbage collected,
    or at interpreter exit (a kernel restart), whichever comes first.  :meth:`get` after :meth:`stop`
    starts a fresh one.  A widget holds one of these instead of closing itself to stop its server.
    """

    def __init__(self, start: Callable[[], contextlib.AbstractContextManager[_PeerT]]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._peer: _PeerT | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        return self._peer is not None

    def get(self) -> _PeerT:
        """The running peer (started now if it is not running)."""
        with self._lock:
            if self._peer is None:
                stack = contextlib.ExitStack()
                self._peer = stack.enter_context(self._start())
                # weakref.finalize runs at garbage collection or, at the latest, at interpreter exit.
                self._finalizer = weakref.finalize(self, stack.close)
            return self._peer

    def stop(self) -> None:
        """Stop the peer (idempotent)."""
        with self._lock:
            finalizer, self._finalizer, self._peer = self._finalizer, None, None
        if finalizer is not None:
            finalizer()
