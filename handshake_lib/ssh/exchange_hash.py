"""The exchange hash H, every input listed, and the session identifier.

Theory of operation
-------------------
H binds a key exchange to everything both sides said before it.  The server signs H with its host
key, so a man in the middle who changed one byte of a banner or a KEXINIT, or swapped a public
value, gets a signature that does not verify.  H is the key exchange's hash over, in this order
(RFC 4253 section 8, RFC 5656 section 4, RFC 8731 section 3, the hybrid drafts / RFC 9941)::

    string  V_C   the client's identification line, without CR LF
    string  V_S   the server's identification line, without CR LF
    string  I_C   the payload of the client's SSH_MSG_KEXINIT (from the message number on)
    string  I_S   the payload of the server's SSH_MSG_KEXINIT
    string  K_S   the server's host key blob
    e / Q_C       the client's public value: mpint e (Diffie-Hellman) or string Q_C (the others;
                  for a hybrid, the KEM key || X25519 key)
    f / Q_S       the server's: mpint f or string Q_S (a hybrid: ciphertext || X25519 key)
    K             the shared secret, encoded as the method says: mpint, or string for the hybrids

The first H of a connection is also its session identifier: it is signed again in public-key user
authentication and goes into every later key derivation, also after a re-key, so it never changes.

:func:`exchange_hash` returns an :class:`ExchangeHash`: the digest, and each field with its encoded
bytes and meaning, the input a lesson lays out byte by byte (``spans()`` for the hex view).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..wire import Span, Writer
from .kex import KexMethod, SharedSecret, kex_method

__all__ = ["HashField", "ExchangeHash", "exchange_hash", "session_identifier"]


@dataclass(frozen=True)
class HashField:
    """One input of H: its name as the RFCs write it, the bytes that were hashed, what it is."""

    name: str
    encoded: bytes
    meaning: str


@dataclass(frozen=True)
class ExchangeHash:
    """H with its inputs.  ``digest`` is H; ``data`` is exactly what was hashed."""

    method: str
    hash: str
    fields: tuple[HashField, ...]
    digest: bytes

    @property
    def data(self) -> bytes:
        return b"".join(item.encoded for item in self.fields)

    def spans(self) -> list[Span]:
        """One span per field over :attr:`data`, for the hex view."""
        spans, offset = [], 0
        for item in self.fields:
            spans.append(Span(offset, len(item.encoded), item.name, item.meaning))
            offset += len(item.encoded)
        return spans

    def __repr__(self) -> str:
        # K is among the fields: a repr in a log or a traceback shows what H is, never the secret.
        return f"ExchangeHash({self.method}, {self.hash}, H={self.digest.hex()})"

    def field(self, name: str) -> HashField:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)


def _line(version: bytes | str, what: str) -> bytes:
    line = version.encode("utf-8") if isinstance(version, str) else bytes(version)
    if line.endswith(b"\r\n") or line.endswith(b"\n"):
        # The RFC hashes the line *without* its CR LF; accepting one silently would give an H no
        # peer computes, so a caller passing the raw line is told.
        raise ValueError(f"{what} must be given without its CR LF")
    return line


def exchange_hash(
    method: KexMethod | str,
    *,
    client_version: bytes | str,
    server_version: bytes | str,
    client_kexinit: bytes,
    server_kexinit: bytes,
    host_key_blob: bytes,
    client_public: bytes | int,
    server_public: bytes | int,
    shared_secret: SharedSecret | bytes,
) -> ExchangeHash:
    """H for one key exchange (see the module docstring for the order and encodings).

    ``client_public``/``server_public`` are the values as :mod:`~handshake_lib.ssh.kex` gives them
    (``ClientShare.public``, the first item of ``server_reply``); for Diffie-Hellman they may also be
    ints.  ``shared_secret`` is a :class:`SharedSecret` or K already encoded (``SharedSecret.encoded``).
    """
    if isinstance(method, str):
        method = kex_method(method)
    encoded_k = shared_secret.encoded if isinstance(shared_secret, SharedSecret) else bytes(shared_secret)
    dh = method.public_encoding == "mpint"
    k_type = "mpint" if method.shared_secret_encoding == "mpint" else "string"
    fields = (
        HashField("V_C", Writer().ssh_string(_line(client_version, "client_version")).getvalue(),
                  "string: the client's identification line, without CR LF"),
        HashField("V_S", Writer().ssh_string(_line(server_version, "server_version")).getvalue(),
                  "string: the server's identification line, without CR LF"),
        HashField("I_C", Writer().ssh_string(client_kexinit).getvalue(),
                  "string: the payload of the client's SSH_MSG_KEXINIT"),
        HashField("I_S", Writer().ssh_string(server_kexinit).getvalue(),
                  "string: the payload of the server's SSH_MSG_KEXINIT"),
        HashField("K_S", Writer().ssh_string(host_key_blob).getvalue(), "string: the server's public host key blob"),
        HashField("e" if dh else "Q_C", method.encode_public(client_public),
                  "mpint: the client's Diffie-Hellman value e = g^x mod p" if dh
                  else "string: the client's ephemeral public value"),
        HashField("f" if dh else "Q_S", method.encode_public(server_public),
                  "mpint: the server's Diffie-Hellman value f = g^y mod p" if dh
                  else "string: the server's ephemeral public value (for a hybrid: KEM ciphertext || X25519 key)"),
        HashField("K", encoded_k, f"{k_type}: the shared secret"),
    )
    digest = hashlib.new(method.hash, b"".join(item.encoded for item in fields)).digest()
    return ExchangeHash(method.name, method.hash, fields, digest)


def session_identifier(first_exchange_hash: bytes, previous: bytes | None = None) -> bytes:
    """The session identifier: the H of the first key exchange, kept across re-keys."""
    return previous if previous is not None else first_exchange_hash
