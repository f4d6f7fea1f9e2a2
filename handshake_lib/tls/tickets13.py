"""TLS 1.3 resumption: what a ticket holds on each side, how our server seals it, and 0-RTT's replay guard.

Theory of operation
-------------------
After a TLS 1.3 handshake the server sends NewSessionTicket (RFC 8446 section 4.6.1): an opaque ``ticket``,
a ``ticket_nonce``, a ``ticket_age_add`` and a lifetime.  Both sides derive the same pre-shared key from
it, ``HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length)``, so the
secret itself never travels.  The client keeps a :class:`ResumptionTicket` (the ticket, the PSK, when it
arrived); the server keeps nothing: it seals a :class:`TicketState13` (suite, PSK, age_add, when it was
issued, how much early data it allows) into the ticket itself with its :class:`~.tickets.TicketKeys`
(AES-128-GCM under the current key, the key's name in front so it can be found again), as stateless
servers do.

Next time the client offers the ticket in ``pre_shared_key`` with its *obfuscated* age (the age in
milliseconds plus ``ticket_age_add``, mod 2^32, so that two resumptions cannot be linked by their ages)
and a binder that proves it holds the PSK.  The server opens the ticket, recovers the real age and, for
0-RTT, checks it is close to what the ticket's own clock says.

Early data can be replayed: an attacker who recorded a ClientHello with 0-RTT data can send it again, and
the data is acted on twice (RFC 8446 section 8).  :class:`ReplayWindow` is RFC 8446 section 8.2's
"ClientHello recording": a ClientHello's 0-RTT is accepted only when its ticket age says it was sent
within ``window`` seconds and its binder has not been seen in that window; anything outside the window
is refused (the handshake goes on, the early data is skipped).  A server given no window never accepts
early data.

No clock here (``tests/test_layers.py``): every call takes ``now`` in seconds, from the caller.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .tickets import TicketKeys

__all__ = [
    "ResumptionTicket",
    "TicketState13",
    "seal_ticket13",
    "open_ticket13",
    "ReplayWindow",
    "DEFAULT_REPLAY_WINDOW",
    "MAX_TICKET_AGE_SKEW",
]

# How far the age a client reports may be from the age the ticket's own clock gives, in seconds, for its
# early data to be accepted (RFC 8446 8.3: "a small window"; OpenSSL allows 10 s).
MAX_TICKET_AGE_SKEW = 10.0
DEFAULT_REPLAY_WINDOW = 10.0


@dataclass(frozen=True)
class ResumptionTicket:
    """What a client keeps from one NewSessionTicket: enough to offer it again (RFC 8446 4.6.1)."""

    ticket: bytes
    psk: bytes
    cipher_suite: int
    ticket_age_add: int
    lifetime: int
    received_at: float  # the client's clock, seconds
    max_early_data_size: int = 0
    server_name: str | None = None

    def age_ms(self, now: float) -> int:
        return max(0, int((now - self.received_at) * 1000))

    def obfuscated_age(self, now: float) -> int:
        """The age in milliseconds plus ``ticket_age_add``, mod 2^32, as ``pre_shared_key`` carries it."""
        return (self.age_ms(now) + self.ticket_age_add) % (1 << 32)

    def usable(self, now: float) -> bool:
        """Still within its lifetime (and never more than 7 days: RFC 8446 4.6.1)."""
        return 0 <= now - self.received_at < min(self.lifetime, 604_800)


# version, suite, age_add, issued (ms), max early data, psk length; then the PSK and the server name.
_STATE = struct.Struct("!HHIQIB")
_STATE_VERSION = 0x0304


@dataclass(frozen=True)
class TicketState13:
    """What our server seals inside a TLS 1.3 ticket: everything it needs to accept the PSK again."""

    cipher_suite: int
    psk: bytes
    ticket_age_add: int
    issued_at: float  # the server's clock, seconds
    max_early_data_size: int = 0
    server_name: str = ""

    def encode(self) -> bytes:
        name = self.server_name.encode()
        head = _STATE.pack(
            _STATE_VERSION,
            self.cipher_suite,
            self.ticket_age_add,
            int(self.issued_at * 1000),
            self.max_early_data_size,
            len(self.psk),
        )
        return head + self.psk + name

    @classmethod
    def decode(cls, data: bytes) -> TicketState13 | None:
        """The state, or None if these bytes are not one we wrote (never raises: it is the client's input)."""
        if len(data) < _STATE.size:
            return None
        version, suite, age_add, issued_ms, max_early, psk_length = _STATE.unpack_from(data)
        rest = data[_STATE.size :]
        if version != _STATE_VERSION or psk_length not in (32, 48) or len(rest) < psk_length:
            return None
        try:
            name = rest[psk_length:].decode()
        except UnicodeDecodeError:
            return None
        return cls(suite, rest[:psk_length], age_add, issued_ms / 1000, max_early, name)


def seal_ticket13(
    keys: TicketKeys, state: TicketState13, now: float, random_bytes: Callable[[int], bytes] = os.urandom
) -> bytes:
    """``key_name || nonce || AES-128-GCM(state)``, with the key name as additional data."""
    key = keys.current(now)
    nonce = random_bytes(12)
    return key.name + nonce + AESGCM(key.aes_key).encrypt(nonce, state.encode(), key.name)


def open_ticket13(keys: TicketKeys, ticket: bytes, now: float) -> TicketState13 | None:
    """The state inside one of our tickets, or None (unknown key, altered, expired, not ours): never raises."""
    if len(ticket) < 16 + 12 + 16:
        return None
    key = keys.key_for(ticket, now)
    if key is None:
        return None
    try:
        plain = AESGCM(key.aes_key).decrypt(ticket[16:28], ticket[28:], ticket[:16])
    except InvalidTag:
        return None
    state = TicketState13.decode(plain)
    if state is None or not state.issued_at <= now < state.issued_at + keys.lifetime:
        return None
    return state


class ReplayWindow:
    """RFC 8446 8.2: accept a ClientHello's 0-RTT once, and only if it is recent.

    Shared by all of a server's connections.  ``window`` seconds both bound how old a ClientHello may be
    (by the age its ticket reports against when the ticket was issued) and how long its binder is
    remembered; at most ``max_entries`` binders are kept (docs/limits.md), and when full the window
    refuses new early data rather than forget one it must still refuse.
    """

    def __init__(self, window: float = DEFAULT_REPLAY_WINDOW, *, max_entries: int = 10_000) -> None:
        if not window > 0:
            raise ValueError(f"window must be positive seconds, not {window!r}")
        self.window = float(window)
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self.refused: dict[str, int] = {"replayed": 0, "stale": 0, "full": 0}

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, when = next(iter(self._seen.items()))
            if now - when < self.window:
                break
            del self._seen[oldest]

    def admit(self, binder: bytes, client_age_ms: int, ticket_issued_at: float, now: float) -> bool:
        """Whether to accept this ClientHello's early data (and remember it if so)."""
        self._expire(now)
        expected_age = now - ticket_issued_at
        if abs(client_age_ms / 1000 - expected_age) > min(self.window, MAX_TICKET_AGE_SKEW):
            self.refused["stale"] += 1
            return False
        key = hashlib.sha256(binder).digest()
        if key in self._seen:
            self.refused["replayed"] += 1
            return False
        if len(self._seen) >= self.max_entries:
            self.refused["full"] += 1
            return False
        self._seen[key] = now
        return True
