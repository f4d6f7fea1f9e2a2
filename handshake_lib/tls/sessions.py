"""TLS 1.2 sessions to resume: the server's session-ID cache and the client's session store.

Theory of operation
-------------------
A full handshake ends with both sides holding the same 48-byte master secret.  RFC 5246 section 7.4.1.2
lets a client offer it again: its ClientHello carries the ``session_id`` the server gave it, and a server
that still remembers that session answers with the same ID, skips Certificate and the key exchange, and
both derive fresh keys from the old master secret and the two new randoms (the *abbreviated handshake*,
drawn in :mod:`handshake_lib.tls.states`).

What is remembered is a :class:`Session`: the master secret, the cipher suite, and whether the extended
master secret (RFC 7627) made it.  The suite must be the same on resumption (RFC 5246 section 7.4.1.3), and
so must the EMS flag (RFC 7627 section 5.3): a server falls back to a full handshake when the new hello
disagrees with the cached session, a client aborts (``handshake_failure``) when the server's answer does.

The server keeps sessions in a :class:`SessionCache`, bounded twice: at most ``max_entries`` (the least
recently used goes first) and each for ``lifetime`` seconds.  The cache has no clock: every call takes
``now`` (seconds, any epoch, as long as the caller is consistent), because the protocol cores under
``tls/`` never read the time themselves (``tests/test_layers.py``).  One cache is shared by every
connection of a server (the one object is passed to each :class:`~handshake_lib.tls.server.TLSServer`).

The client keeps what it may resume in a :class:`ClientSessionStore`, keyed by server name, that a notebook
can list, look into and clear.  Master secrets are never printed (``repr`` leaves them out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .constants import CipherSuite

__all__ = ["Session", "SessionCache", "ClientSessionStore", "DEFAULT_CACHE_SIZE", "DEFAULT_SESSION_LIFETIME"]

# OpenSSL's defaults: SSL_SESSION_CACHE_MAX_SIZE_DEFAULT is 20480 entries, and an SSL_CTX's timeout is 7200 s
# (lesson 11 reads it from a live OpenSSL 3.0 session).  A teaching server needs far fewer entries, and keeps
# each for 300 s, as Apache's mod_ssl does by default: a cached master secret decrypts every recorded
# connection of its session, so it should not outlive the visit it speeds up.
DEFAULT_CACHE_SIZE = 1024
DEFAULT_SESSION_LIFETIME = 300.0


@dataclass(frozen=True)
class Session:
    """What a resumption needs: the session's ID (or ticket), its master secret, suite and EMS flag."""

    session_id: bytes
    master_secret: bytes = field(repr=False)
    cipher_suite: CipherSuite
    extended_master_secret: bool
    server_name: str | None = None
    # RFC 5077: the opaque ticket the server gave us (client side), and how long it said to keep it (s).
    ticket: bytes | None = field(default=None, repr=False)
    ticket_lifetime_hint: int = 0
    # Server side, from a ticket: when the session was first made (the full handshake), in the clock's
    # seconds.  A renewed ticket keeps it, so resuming again and again does not make a session immortal.
    created: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.master_secret) != 48:
            raise ValueError("a master secret is 48 bytes")
        if len(self.session_id) > 32:
            raise ValueError("a session ID is at most 32 bytes")

    @property
    def resumable_by(self) -> str:
        """``ticket`` or ``session ID``: how a client would offer it."""
        return "ticket" if self.ticket else "session ID"


class SessionCache:
    """The server's sessions by ID: at most ``max_entries``, each for ``lifetime`` seconds after it was made."""

    def __init__(self, max_entries: int = DEFAULT_CACHE_SIZE, lifetime: float = DEFAULT_SESSION_LIFETIME) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, not {max_entries!r}")
        if not lifetime > 0:
            raise ValueError(f"lifetime must be positive seconds, not {lifetime!r}")
        self.max_entries = max_entries
        self.lifetime = float(lifetime)
        self._entries: OrderedDict[bytes, tuple[float, Session]] = OrderedDict()

    def store(self, session: Session, now: float) -> None:
        """Remember ``session`` from ``now``; the least recently used one goes if the cache is full.

        The kept session says when it was made (``created``, ``now`` unless it already knew), so a ticket
        sealed for it on a later resumption by ID dates from its full handshake, not from the resumption.
        """
        if not session.session_id:
            raise ValueError("a session without an ID cannot be cached")
        if session.created is None:
            session = replace(session, created=now)
        self._entries[session.session_id] = (now, session)
        self._entries.move_to_end(session.session_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, session_id: bytes, now: float) -> Session | None:
        """The session, if it is known and younger than ``lifetime`` at ``now`` (an old one is dropped)."""
        found = self._entries.get(session_id)
        if found is None:
            return None
        created, session = found
        if not created <= now < created + self.lifetime:
            del self._entries[session_id]
            return None
        self._entries.move_to_end(session_id)
        return session

    def remove(self, session_id: bytes) -> None:
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._entries


class ClientSessionStore:
    """The client's sessions, one per server name (the newest wins): inspect with ``list``, empty with
    :meth:`clear`.  At most ``max_entries`` servers are remembered (least recently stored goes first)."""

    def __init__(self, max_entries: int = 64) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, not {max_entries!r}")
        self.max_entries = max_entries
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def store(self, server_name: str, session: Session | None) -> None:
        """Keep ``session`` for ``server_name`` (None: forget it, e.g. the server did not offer one)."""
        if session is None:
            self._sessions.pop(server_name, None)
            return
        self._sessions[server_name] = session
        self._sessions.move_to_end(server_name)
        while len(self._sessions) > self.max_entries:
            self._sessions.popitem(last=False)

    def get(self, server_name: str) -> Session | None:
        return self._sessions.get(server_name)

    def forget(self, server_name: str) -> None:
        self._sessions.pop(server_name, None)

    def clear(self) -> None:
        self._sessions.clear()

    def __iter__(self) -> Iterator[tuple[str, Session]]:
        return iter(list(self._sessions.items()))

    def __len__(self) -> int:
        return len(self._sessions)
