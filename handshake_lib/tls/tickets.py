"""Session tickets (RFC 5077): the server's session state, encrypted and given to the client to keep.

Theory of operation
-------------------
With a session-ID cache the server remembers every session; with a ticket the *client* carries it.  The
server encrypts what a resumption needs (version, suite, EMS flag, master secret, when it was made) under
a key only it knows, and sends the result in NewSessionTicket; the client hands it back, opaque, in the
``session_ticket`` extension of its next ClientHello.  The format is RFC 5077 section 4's recommendation::

    struct {
        opaque key_name[16];                    which ticket key sealed it
        opaque iv[16];                          fresh for every ticket
        opaque encrypted_state<0..2^16-1>;      AES-128-CBC, PKCS#7 padding
        opaque mac[32];                         HMAC-SHA256 over key_name .. encrypted_state
    } ticket;

:class:`TicketKeys` holds the keys and rotates them: a new key seals tickets every ``rotate_after``
seconds, and a key is still accepted for opening for ``lifetime`` seconds after it stopped sealing (so a
ticket lives at most ``rotate_after + lifetime``; it is also refused once ``lifetime`` has passed since it
was sealed).  ``ticket_lifetime_hint`` (what NewSessionTicket tells the client) is ``lifetime``.
A ticket renewed on resumption keeps the time its session was first made (``Session.created``), as
OpenSSL keeps a TLS 1.2 session's time: a client that resumes every hour still gets a full handshake
once ``lifetime`` has passed since the one that made the master secret.
:func:`open_ticket` (the server's ``open_ticket`` stage, :mod:`handshake_lib.tls.stages`, which exercise 11
replaces) opens one ticket with the key its ``key_name`` picks.  :meth:`TicketKeys.open` never raises on
what a client sent: a ticket whose key name is unknown, whose MAC
does not verify, whose padding or contents are wrong, or that has expired gives None, and the server does
a full handshake (RFC 5077 section 3.4), never an alert.  The MAC is checked before anything is decrypted.

No clock here either (``tests/test_layers.py``): every call takes ``now`` in seconds.  Fresh keys and IVs
come from ``random_bytes`` (``os.urandom`` unless a test fixes it).

:func:`explain_ticket` shows a ticket both ways, with spans for the hex view: to a client it is opaque
bytes (nothing in the protocol says how a server lays a ticket out: OpenSSL's own has no length field
before its encrypted state, and seals an ASN.1 session with AES-256-CBC); to the server that sealed it,
given its :class:`TicketKeys`, every field above, the MAC checked and the state decrypted and annotated.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..wire import Span
from .constants import CipherSuite, name_of
from .sessions import Session

__all__ = [
    "TicketKey",
    "TicketKeys",
    "TicketExplanation",
    "explain_ticket",
    "DEFAULT_TICKET_LIFETIME",
    "DEFAULT_ROTATE_AFTER",
    "OpenTicket",
    "open_ticket",
]

DEFAULT_TICKET_LIFETIME = 7200  # seconds; OpenSSL's server hints 7200 for TLS 1.2 tickets (SSL_CTX timeout)
DEFAULT_ROTATE_AFTER = 3600.0  # a new sealing key every hour
_STATE = struct.Struct("!HH?48sQ")  # version, suite, EMS, master secret, created (whole seconds)
_VERSION = 0x0303


@dataclass(frozen=True)
class TicketKey:
    """One ticket key: its public name, the AES and HMAC keys, and when it started sealing (seconds)."""

    name: bytes
    aes_key: bytes = field(repr=False)
    hmac_key: bytes = field(repr=False)
    created: float

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self.hmac_key, data, "sha256").digest()


class TicketKeys:
    """The server's rotating ticket keys: seal a session into a ticket, open a ticket into a session."""

    def __init__(
        self,
        *,
        lifetime: int = DEFAULT_TICKET_LIFETIME,
        rotate_after: float = DEFAULT_ROTATE_AFTER,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime < 2**32:
            raise ValueError(f"lifetime must be whole seconds, 1 .. 2^32-1, not {lifetime!r}")
        if not rotate_after > 0:
            raise ValueError(f"rotate_after must be positive seconds, not {rotate_after!r}")
        self.lifetime = lifetime
        self.rotate_after = float(rotate_after)
        self._random_bytes = random_bytes
        self.keys: list[TicketKey] = []  # newest last; the newest seals

    @property
    def ticket_lifetime_hint(self) -> int:
        """What NewSessionTicket tells the client (RFC 5077 section 3.3), in seconds."""
        return self.lifetime

    def current(self, now: float) -> TicketKey:
        """The key that seals at ``now``: a new one once the newest is ``rotate_after`` old (old ones are
        dropped once they can no longer open a live ticket)."""
        if not self.keys or now >= self.keys[-1].created + self.rotate_after:
            self.keys.append(TicketKey(self._random_bytes(16), self._random_bytes(16), self._random_bytes(32), now))
        # Key i stopped sealing when key i+1 started; after ``lifetime`` more seconds it opens nothing.
        while len(self.keys) > 1 and now >= self.keys[1].created + self.lifetime:
            del self.keys[0]
        return self.keys[-1]

    def seal(self, session: Session, now: float) -> bytes:
        """The ticket for ``session``, sealed with the current key; it dates from ``session.created`` (a
        renewal) or else from ``now`` (a new session)."""
        key = self.current(now)
        created = session.created if session.created is not None else now
        state = _STATE.pack(
            _VERSION, session.cipher_suite, session.extended_master_secret, session.master_secret, int(created)
        )
        padder = padding.PKCS7(128).padder()
        padded = padder.update(state) + padder.finalize()
        iv = self._random_bytes(16)
        encryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).encryptor()
        encrypted = encryptor.update(padded) + encryptor.finalize()
        body = key.name + iv + struct.pack("!H", len(encrypted)) + encrypted
        return body + key.mac(body)

    def open(
        self, ticket: bytes, session_id: bytes, now: float, *, open_ticket: OpenTicket | None = None
    ) -> Session | None:
        """The session inside ``ticket`` (with ``session_id``, the ID the client offered), or None if it
        is not one of ours, was altered, or has expired: the caller then does a full handshake.

        ``open_ticket`` (the server's stage; default :func:`open_ticket`) checks and decrypts the ticket with
        the key its name picks; what it returns is used only if it is a state as our server seals it."""
        key = self.key_for(ticket, now)
        if key is None:
            return None
        opener = open_ticket if open_ticket is not None else _library_open_ticket
        state = opener(ticket, key.aes_key, key.hmac_key, now, self.lifetime)
        if state is None:
            return None
        if not isinstance(state, bytes | bytearray):
            raise TypeError(f"open_ticket returned a {type(state).__name__}, not bytes or None")
        if _state_problem(bytes(state)):
            return None
        version, suite, ems, master, created = _STATE.unpack(state)
        return Session(session_id, master, CipherSuite(suite), ems, created=float(created))

    def key_for(self, ticket: bytes, now: float) -> TicketKey | None:
        """The key whose name starts ``ticket`` (RFC 5077 section 4: ``key_name``), if we still have it."""
        self.current(now)  # drop keys that can no longer open anything
        name = bytes(ticket[:16])
        return next((k for k in self.keys if len(name) == 16 and hmac.compare_digest(k.name, name)), None)

    def unseal(self, ticket: bytes, now: float) -> tuple[bytes | None, str]:
        """The decrypted state inside ``ticket`` and "" , or None and why it cannot be used (never raises)."""
        if len(ticket) < _SMALLEST:
            return None, "too short to be one of our tickets"
        if _layout_problem(ticket):
            return None, _layout_problem(ticket)
        key = self.key_for(ticket, now)
        if key is None:
            return None, "sealed with a key we do not have (another server's, or one rotated out)"
        return _unseal(ticket, key.aes_key, key.hmac_key, now, self.lifetime)


_SMALLEST = 16 + 16 + 2 + 32


def _layout_problem(ticket: bytes) -> str:
    (length,) = struct.unpack("!H", ticket[32:34])
    encrypted = ticket[34:-32]
    if length != len(encrypted) or not encrypted or len(encrypted) % 16:
        return "not laid out as our tickets are (the state's length does not match)"
    return ""


def _state_problem(state: bytes) -> str:
    try:
        version, suite, _ems, _master, _created = _STATE.unpack(state)
        CipherSuite(suite)
    except (ValueError, struct.error):  # our own MAC verified: only a bug gets here; still not an error
        return "the state inside is not one we wrote"
    if version != _VERSION:
        return "the state inside is not TLS 1.2's"
    return ""


def _unseal(ticket: bytes, aes_key: bytes, hmac_key: bytes, now: float, lifetime: int) -> tuple[bytes | None, str]:
    if len(ticket) < _SMALLEST:
        return None, "too short to be one of our tickets"
    if problem := _layout_problem(ticket):
        return None, problem
    body, mac = ticket[:-32], ticket[-32:]
    if not hmac.compare_digest(hmac.new(hmac_key, body, "sha256").digest(), mac):
        return None, "the MAC does not verify: the ticket was altered"
    iv, encrypted = body[16:32], body[34:]
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        state = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None, "the state inside is not one we wrote"
    if problem := _state_problem(state):
        return None, problem
    (created,) = struct.unpack("!Q", state[-8:])
    if not created <= now < created + lifetime:
        return None, "expired"
    return state, ""


def open_ticket(ticket: bytes, aes_key: bytes, hmac_key: bytes, now: float, lifetime: int) -> bytes | None:
    """The session state sealed in ``ticket`` (RFC 5077 section 4's layout), or None.

    The MAC (HMAC-SHA256 with ``hmac_key`` over everything before it) is checked first, in constant time;
    only then is ``encrypted_state`` decrypted (AES-128-CBC with ``aes_key`` and the ticket's IV) and
    unpadded (PKCS#7).  The state's last 8 bytes say when its session was made (seconds, big-endian): a
    ticket is good from then for ``lifetime`` seconds.  Anything wrong gives None, never an exception: the
    server then does a full handshake (RFC 5077 section 3.4).
    """
    return _unseal(ticket, aes_key, hmac_key, now, lifetime)[0]


_library_open_ticket = open_ticket  # TicketKeys.open's default (its parameter has the same name)

OpenTicket = Callable[[bytes, bytes, bytes, float, int], "bytes | None"]
"""``(ticket, aes_key, hmac_key, now, lifetime) -> state or None``: the server's ``open_ticket`` stage."""


@dataclass(frozen=True)
class TicketExplanation:
    """A ticket as one side sees it: ``spans`` over ``ticket``; when the server's keys opened it, the
    decrypted ``state`` with its own ``state_spans`` and the ``session`` it resumes."""

    ticket: bytes
    spans: list[Span]
    state: bytes = b""
    state_spans: list[Span] = field(default_factory=list)
    session: Session | None = field(default=None, repr=False)
    reason: str = ""  # why it was not opened ("" when it was, or when no keys were given)

    @property
    def opened(self) -> bool:
        return self.session is not None


def _layout_spans(ticket: bytes) -> list[Span] | None:
    """RFC 5077 section 4's fields, if ``ticket`` is laid out that way (its length field agrees)."""
    if len(ticket) < 16 + 16 + 2 + 32:
        return None
    (length,) = struct.unpack("!H", ticket[32:34])
    if length != len(ticket) - 34 - 32:
        return None
    return [
        Span(0, len(ticket), "ticket", "RFC 5077 section 4: what the server sealed", 0, True),
        Span(0, 16, "ticket.key_name", "which ticket key sealed it (public, so the server can pick the key)", 1),
        Span(16, 16, "ticket.iv", "AES-CBC IV, fresh for every ticket", 1),
        Span(32, 2, "ticket.encrypted_state.length", f"{length} bytes of encrypted state", 1),
        Span(34, length, "ticket.encrypted_state", "AES-128-CBC of the session state, PKCS#7 padded", 1),
        Span(34 + length, 32, "ticket.mac", "HMAC-SHA256 over key_name .. encrypted_state", 1),
    ]


def _state_spans(state: bytes) -> list[Span]:
    version, suite, ems, _master, created = _STATE.unpack(state)
    return [
        Span(0, len(state), "state", "what a resumption needs, as our server seals it", 0, True),
        Span(0, 2, "state.version", f"0x{version:04x} (TLS 1.2)", 1),
        Span(2, 2, "state.cipher_suite", name_of(CipherSuite, suite), 1),
        Span(4, 1, "state.extended_master_secret", f"{bool(ems)} (RFC 7627: must match on resumption)", 1),
        Span(5, 48, "state.master_secret", "the session's master secret: why a ticket must be encrypted", 1),
        Span(53, 8, "state.created", f"session made at {created} s (server clock, kept on renewal)", 1),
    ]


def explain_ticket(ticket: bytes, keys: TicketKeys | None = None, now: float | None = None) -> TicketExplanation:
    """``ticket`` as a client sees it (``keys`` None: opaque bytes, annotated only if laid out as RFC 5077
    recommends) or as the server holding ``keys`` sees it at ``now`` (opened, the state annotated)."""
    ticket = bytes(ticket)
    layout = _layout_spans(ticket)
    if keys is None:
        opaque = Span(0, len(ticket), "ticket", "opaque to the client: it stores it and sends it back unread")
        return TicketExplanation(ticket, [opaque])
    if now is None:
        raise ValueError("opening a ticket needs the server's clock: pass now")
    spans = layout or [Span(0, len(ticket), "ticket", "not in the layout our server seals")]
    state, reason = keys.unseal(ticket, now)
    if state is None:
        return TicketExplanation(ticket, spans, reason=reason)
    session = keys.open(ticket, b"", now)
    return TicketExplanation(ticket, spans, state, _state_spans(state), session)
