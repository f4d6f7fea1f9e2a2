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
:meth:`TicketKeys.open` never raises on what a client sent: a ticket whose key name is unknown, whose MAC
does not verify, whose padding or contents are wrong, or that has expired gives None, and the server does
a full handshake (RFC 5077 section 3.4), never an alert.  The MAC is checked before anything is decrypted.

No clock here either (``tests/test_layers.py``): every call takes ``now`` in seconds.  Fresh keys and IVs
come from ``random_bytes`` (``os.urandom`` unless a test fixes it).
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .constants import CipherSuite
from .sessions import Session

__all__ = ["TicketKey", "TicketKeys", "DEFAULT_TICKET_LIFETIME", "DEFAULT_ROTATE_AFTER"]

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

    def open(self, ticket: bytes, session_id: bytes, now: float) -> Session | None:
        """The session inside ``ticket`` (with ``session_id``, the ID the client offered), or None if it
        is not one of ours, was altered, or has expired: the caller then does a full handshake."""
        if len(ticket) < 16 + 16 + 2 + 32:
            return None
        body, mac = ticket[:-32], ticket[-32:]
        name, iv = body[:16], body[16:32]
        (length,) = struct.unpack("!H", body[32:34])
        encrypted = body[34:]
        if length != len(encrypted) or not encrypted or len(encrypted) % 16:
            return None
        self.current(now)  # drop keys that can no longer open anything
        key = next((k for k in self.keys if hmac.compare_digest(k.name, name)), None)
        if key is None or not hmac.compare_digest(key.mac(body), mac):
            return None
        decryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(encrypted) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            state = unpadder.update(padded) + unpadder.finalize()
            version, suite, ems, master, created = _STATE.unpack(state)
            suite = CipherSuite(suite)
        except (ValueError, struct.error):  # our own MAC verified: only a bug gets here; still not an error
            return None
        if version != _VERSION or not created <= now < created + self.lifetime:
            return None
        return Session(session_id, master, suite, ems, created=float(created))

