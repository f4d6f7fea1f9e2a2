"""SSH key logs: the session secrets in the form Wireshark's SSH dissector reads (``ssh.keylog_file``).

Theory of operation
-------------------
Wireshark decrypts an SSH session the way the two peers do: it reads both identification lines, both
KEXINITs, the host key and the public values from the capture, and needs only the one thing that never
crosses the wire, the shared secret K (or a private value to compute it).  Its key log is a text file,
one secret per line, named by a KEXINIT *cookie* (16 random bytes, hex)::

    <cookie> SHARED_SECRET <K>       K itself (Wireshark 4.2 and later)
    <cookie> PRIVATE_KEY <x>         one side's ephemeral private value (Wireshark 4.2 and later)
    <cookie> <x>                     the same, the older form: the only one Wireshark 4.0 reads

For each session Wireshark looks the server's cookie up first, then the client's (packet-ssh.c,
``ssh_keylog_hash_write_secret``); the last line for a cookie wins.  A private value belongs with the
cookie of the side that chose it: Wireshark combines it with the *other* side's public value (the
client's x with the server's Q_S or f, the server's y with Q_C or e).  K is the number's bytes, big
endian: Wireshark adds the 0x00 an mpint needs before a high bit itself but strips no leading zero, so
we write the mpint's content (``SharedSecret.encoded`` without its length), which is right either way.

:class:`KeyLogWriter` is the ``on_secrets`` hook of :class:`~handshake_lib.ssh.client.SSHClient`,
:class:`~handshake_lib.ssh.server.SSHServer` and :func:`~handshake_lib.net.ssh.ssh_probe`.  After each
key exchange it appends a ``SHARED_SECRET`` line keyed by the client's cookie and, when the method has
one private value Wireshark knows how to use (curve25519 and the MODP groups), the older two-field
``<cookie> <private>`` line keyed by our own cookie, because that is what Debian 12's tshark 4.0.17
reads (it skips the three-field lines: they are not hexadecimal after the first space).

What Debian 12's tshark 4.0.17 decrypts, checked by ``tests/test_ssh_keylog.py`` on captures of our
client against ``sshd`` and of OpenSSH's ``ssh`` against our server: curve25519-sha256 (and its
``@libssh.org`` name) and diffie-hellman-group14-sha256 with aes128-gcm@openssh.com,
aes256-gcm@openssh.com, aes128-ctr and aes256-ctr with hmac-sha2-256 or hmac-sha2-512.  Not:
chacha20-poly1305@openssh.com (its nonce is the sequence number, which strict key exchange sets back
to 0 at NEWKEYS, and tshark 4.0 does not know strict kex; OpenSSH 9.2 always negotiates it), the
``-etm@openssh.com`` MACs (tshark 4.0 decrypts the clear length and loses the packets), and
ecdh-sha2-nistp256 and the post-quantum hybrids (no private-key form for them; their K works only with
``SHARED_SECRET``, which 4.0 does not read, and we could not check a later Wireshark here).
:mod:`~handshake_lib.ssh.capture` reads all three line forms for every method we implement.

Limits: a writer appends at most ``max_bytes`` (1 MiB by default, thousands of sessions) and then
drops lines, counting them in ``dropped``; :func:`parse_keylog` reads at most
:data:`MAX_KEYLOG_BYTES` and :data:`MAX_KEYLOG_LINES`, and skips lines it cannot read (kept in
``skipped`` with the reason, as Wireshark skips them silently).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .exchange_hash import ExchangeHash
from .kex import SharedSecret

__all__ = [
    "SHARED_SECRET",
    "PRIVATE_KEY",
    "MAX_KEYLOG_BYTES",
    "MAX_KEYLOG_LINES",
    "KeyLogEntry",
    "SSHKeyLog",
    "keylog_line",
    "private_key_line",
    "key_log_lines",
    "parse_keylog",
    "read_keylog",
    "KeyLogWriter",
]

SHARED_SECRET = "SHARED_SECRET"
PRIVATE_KEY = "PRIVATE_KEY"
COOKIE_LENGTH = 16
MAX_KEYLOG_BYTES = 4 << 20  # a key log is a few hundred bytes a session
MAX_KEYLOG_LINES = 50_000
MAX_SECRET_BYTES = 1024  # Wireshark's own bound on a key log value (ssh_kex_make_bignum: 1025)
DEFAULT_WRITER_BYTES = 1 << 20


def _cookie(cookie: bytes) -> str:
    if len(cookie) != COOKIE_LENGTH:
        raise ValueError(f"a KEXINIT cookie has {COOKIE_LENGTH} bytes, not {len(cookie)}")
    return bytes(cookie).hex()


def _k_bytes(shared_secret: SharedSecret | bytes) -> bytes:
    """K as the key log carries it: an mpint K's content (no length), a string K's bytes."""
    if isinstance(shared_secret, SharedSecret):
        return shared_secret.encoded[4:]
    return bytes(shared_secret)


def keylog_line(client_cookie: bytes, shared_secret: SharedSecret | bytes) -> str:
    """``<client cookie> SHARED_SECRET <K>``: the line Wireshark 4.2+ and our capture decoder read."""
    value = _k_bytes(shared_secret)
    if not value:
        raise ValueError("the shared secret is empty")
    return f"{_cookie(client_cookie)} {SHARED_SECRET} {value.hex()}"


def private_key_line(cookie: bytes, private: bytes) -> str:
    """``<cookie> <private>``: the older form (the only one Wireshark 4.0 reads); ``cookie`` is the owner's."""
    if not private:
        raise ValueError("the private value is empty")
    return f"{_cookie(cookie)} {bytes(private).hex()}"


def _private_owner(shared_secret: SharedSecret, exchange_hash: ExchangeHash) -> str | None:
    """'client' or 'server': whose public value the private one makes (None if neither: not ours to log)."""
    from .kex import kex_method

    method = kex_method(exchange_hash.method)
    private = shared_secret.ephemeral_private
    if method.public_encoding == "mpint":
        generator, prime = getattr(method, "generator", None), getattr(method, "prime", None)
        if generator is None or prime is None:
            return None
        public = method.encode_public(pow(generator, int.from_bytes(private, "big"), prime))
        names = ("e", "f")
    else:
        if len(private) != 32 or not exchange_hash.method.startswith("curve25519"):
            return None
        from cryptography.hazmat.primitives.asymmetric import x25519
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = (
            x25519.X25519PrivateKey.from_private_bytes(private)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        public = method.encode_public(raw)
        names = ("Q_C", "Q_S")
    for role, name in zip(("client", "server"), names, strict=True):
        if exchange_hash.field(name).encoded == public:
            return role
    return None


def key_log_lines(client_cookie: bytes, shared_secret: SharedSecret, exchange_hash: ExchangeHash) -> list[str]:
    """The lines :class:`KeyLogWriter` appends for one key exchange (see the module docstring)."""
    lines = [keylog_line(client_cookie, shared_secret)]
    if shared_secret.ephemeral_private:
        owner = _private_owner(shared_secret, exchange_hash)
        if owner is not None:
            # The owner's cookie is in its KEXINIT payload, right after the message number (and the
            # string length of the I_C / I_S field).
            kexinit = exchange_hash.field("I_C" if owner == "client" else "I_S").encoded
            lines.append(private_key_line(kexinit[5 : 5 + COOKIE_LENGTH], shared_secret.ephemeral_private))
    return lines


@dataclass(frozen=True)
class KeyLogEntry:
    """One readable line: the cookie naming the session, ``SHARED_SECRET`` or ``PRIVATE_KEY``, the value."""

    cookie: bytes
    kind: str
    value: bytes
    line_number: int = 0


@dataclass
class SSHKeyLog:
    """A parsed SSH key log: the entries in file order, and the skipped lines (line number, reason)."""

    entries: list[KeyLogEntry] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def find(self, server_cookie: bytes, client_cookie: bytes) -> KeyLogEntry | None:
        """Wireshark's choice: the last entry for the server's cookie, else the last for the client's."""
        for cookie in (server_cookie, client_cookie):
            found = None
            for entry in self.entries:
                if entry.cookie == cookie:
                    found = entry
            if found is not None:
                return found
        return None

    def text(self) -> str:
        return "".join(
            (
                f"{e.cookie.hex()} {e.kind} {e.value.hex()}"
                if e.kind == SHARED_SECRET
                else f"{e.cookie.hex()} {e.value.hex()}"
            )
            + "\n"
            for e in self.entries
        )


def _hex(text: str, what: str) -> bytes:
    if len(text) % 2:
        raise ValueError(f"{what} has an odd number of hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} is not hexadecimal") from None


def parse_keylog(text: str) -> SSHKeyLog:
    """Read key log text; unreadable lines go to ``skipped``, never fatal (as in Wireshark)."""
    log = SSHKeyLog()
    if len(text) > MAX_KEYLOG_BYTES:
        raise ValueError(f"a key log of more than {MAX_KEYLOG_BYTES >> 20} MiB is not one we read")
    for number, raw in enumerate(text.splitlines(), start=1):
        if number > MAX_KEYLOG_LINES:
            log.skipped.append((number, f"more than {MAX_KEYLOG_LINES} lines: the rest is not read"))
            break
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) == 3:
            cookie_hex, kind, value_hex = parts
            if kind not in (SHARED_SECRET, PRIVATE_KEY):
                log.skipped.append((number, f"unknown key type {kind[:30]!r} (SHARED_SECRET or PRIVATE_KEY)"))
                continue
        elif len(parts) == 2:
            (cookie_hex, value_hex), kind = parts, PRIVATE_KEY
        else:
            log.skipped.append((number, f"expected 2 or 3 fields, found {len(parts)}"))
            continue
        try:
            cookie, value = _hex(cookie_hex, "the cookie"), _hex(value_hex, "the key")
        except ValueError as error:
            log.skipped.append((number, str(error)))
            continue
        if len(cookie) != COOKIE_LENGTH:
            log.skipped.append((number, f"a cookie has {COOKIE_LENGTH} bytes, this one {len(cookie)}"))
        elif not value or len(value) > MAX_SECRET_BYTES:
            log.skipped.append((number, f"the key must have 1 to {MAX_SECRET_BYTES} bytes"))
        else:
            log.entries.append(KeyLogEntry(cookie, kind, value, number))
    return log


def read_keylog(path: str | Path) -> SSHKeyLog:
    """:func:`parse_keylog` on a file, reading at most :data:`MAX_KEYLOG_BYTES` (+1, to know it is more)."""
    with open(path, "rb") as file:
        data = file.read(MAX_KEYLOG_BYTES + 1)
    return parse_keylog(data.decode("ascii", errors="replace"))


class KeyLogWriter:
    """The ``on_secrets`` hook that appends each key exchange's lines to a key log file.

    The file is created with mode 0600 (it decrypts every session it lists; an existing file keeps
    its mode) when the writer is made, so a path that cannot be written fails before any connection.
    One writer may serve several connections at once (a server's threads): each exchange's lines go
    out in one ``write`` on an ``O_APPEND`` descriptor, so lines of two sessions never interleave.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_WRITER_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.written = 0  # bytes appended by this writer
        self.dropped = 0  # lines not written: the writer's limit was reached
        os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))

    def __call__(self, client_cookie: bytes, shared_secret: SharedSecret, exchange_hash: ExchangeHash) -> None:
        lines = key_log_lines(client_cookie, shared_secret, exchange_hash)
        text = "".join(line + "\n" for line in lines)
        if self.written + len(text) > self.max_bytes:
            self.dropped += len(lines)
            return
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, text.encode("ascii"))
        finally:
            os.close(descriptor)
        self.written += len(text)

    def __repr__(self) -> str:
        return f"KeyLogWriter({str(self.path)!r}, {self.written} bytes written)"
