"""SSH key derivation: the six keys A..F from K, H and the session identifier (RFC 4253 section 7.2).

Theory of operation
-------------------
A key exchange leaves both sides with the same shared secret K and the exchange hash H (see
:mod:`handshake_lib.ssh.kex` and :mod:`handshake_lib.ssh.exchange_hash`).  Every key the transport
needs is hashed out of them with the key exchange's own hash function, one letter per key::

    A  initial IV, client to server        B  initial IV, server to client
    C  encryption key, client to server    D  encryption key, server to client
    E  integrity (MAC) key, client to s.   F  integrity (MAC) key, server to client

    K1 = HASH(K || H || letter || session_id)
    K2 = HASH(K || H || K1)
    K3 = HASH(K || H || K1 || K2)          ... until there are enough bytes
    key = the first `length` bytes of K1 || K2 || K3 || ...

K goes in *encoded*, exactly as it went into H: an ``mpint`` for the classic exchanges (curve25519,
ECDH, finite-field Diffie-Hellman), a ``string`` for the post-quantum hybrids.  The session identifier
is the H of the connection's *first* key exchange; it stays the same when the keys are renewed.  The
lengths come from the negotiated cipher and MAC (a 32-byte key for aes256-ctr, 64 bytes for
chacha20-poly1305@openssh.com, ...), so they are parameters here: the packet layer knows them.

Checked against the NIST CAVS 14.1 SSH KDF vectors (SHA-1 to SHA-512, all six letters) and against
``openssl kdf ... SSHKDF`` in ``tests/test_ssh_kdf.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["HASH_NAMES", "LETTERS", "Derive", "DerivedKeys", "derive", "derivation_blocks", "derive_all"]

# The shape of :func:`derive`, for a stage a learner can replace:
# (hash name, encoded K, H, session_id, letter, length) -> key bytes.
Derive = Callable[[str, bytes, bytes, bytes, str, int], bytes]

# The hash functions SSH key exchanges use (RFC 4253, 5656, 8268, 8731): name -> digest size.
HASH_NAMES: dict[str, int] = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}

LETTERS: dict[str, str] = {
    "A": "initial IV, client to server",
    "B": "initial IV, server to client",
    "C": "encryption key, client to server",
    "D": "encryption key, server to client",
    "E": "integrity key, client to server",
    "F": "integrity key, server to client",
}

# No cipher or MAC needs more than a few blocks; this bound only stops a caller's mistake
# (a length in bits, a negative number) from hashing for ever.
MAX_KEY_LENGTH = 1024


def _check_hash(hash_name: str) -> None:
    if hash_name not in HASH_NAMES:
        raise ValueError(f"unknown key exchange hash {hash_name!r} (known: {', '.join(HASH_NAMES)})")


def derivation_blocks(
    hash_name: str, encoded_k: bytes, exchange_hash: bytes, session_id: bytes, letter: str, length: int
) -> list[bytes]:
    """K1, K2, ... for one letter: as many hash outputs as ``length`` bytes need (what a lesson shows)."""
    _check_hash(hash_name)
    if letter not in LETTERS:
        raise ValueError(f"key letter must be one of A..F, not {letter!r}")
    if not 0 <= length <= MAX_KEY_LENGTH:
        raise ValueError(f"key length {length} is outside 0..{MAX_KEY_LENGTH} bytes")
    prefix = encoded_k + exchange_hash
    blocks = [hashlib.new(hash_name, prefix + letter.encode("ascii") + session_id).digest()]
    while sum(map(len, blocks)) < length:
        # The extension hashes K || H || all blocks so far (not the letter or session_id again).
        blocks.append(hashlib.new(hash_name, prefix + b"".join(blocks)).digest())
    return blocks


def derive(
    hash_name: str, encoded_k: bytes, exchange_hash: bytes, session_id: bytes, letter: str, length: int
) -> bytes:
    """One key: the first ``length`` bytes of K1 || K2 || ... for ``letter`` (RFC 4253 section 7.2)."""
    return b"".join(derivation_blocks(hash_name, encoded_k, exchange_hash, session_id, letter, length))[:length]


@dataclass(frozen=True)
class DerivedKeys:
    """The six values of RFC 4253 section 7.2, named by what they key.  Unused ones are empty."""

    iv_client_to_server: bytes
    iv_server_to_client: bytes
    key_client_to_server: bytes
    key_server_to_client: bytes
    mac_client_to_server: bytes
    mac_server_to_client: bytes

    def by_letter(self) -> dict[str, bytes]:
        """``{"A": ..., ..., "F": ...}``, the RFC's names for the same six values."""
        return dict(
            zip(
                LETTERS,
                (
                    self.iv_client_to_server,
                    self.iv_server_to_client,
                    self.key_client_to_server,
                    self.key_server_to_client,
                    self.mac_client_to_server,
                    self.mac_server_to_client,
                ),
                strict=True,
            )
        )

    def __repr__(self) -> str:
        # Keys stay out of tracebacks and logs; their lengths are what a reader needs there.
        sizes = ", ".join(f"{letter}={len(value)}B" for letter, value in self.by_letter().items())
        return f"DerivedKeys({sizes})"


def derive_all(
    hash_name: str,
    encoded_k: bytes,
    exchange_hash: bytes,
    session_id: bytes,
    lengths: Mapping[str, int],
    *,
    derive: Derive = derive,
) -> DerivedKeys:
    """All six keys; ``lengths`` maps each letter A..F to the bytes it needs (missing letters: 0).

    The packet layer gives the lengths: A/B the cipher's IV (or nonce) size, C/D its key size, E/F the
    MAC key size (0 for an AEAD cipher, whose tag needs no separate key).  ``derive`` is the one-key
    function to use (a learner's, in an exercise); the library's by default.
    """
    unknown = set(lengths) - set(LETTERS)
    if unknown:
        raise ValueError(f"key letters must be A..F, not {sorted(unknown)}")
    values = [
        derive(hash_name, encoded_k, exchange_hash, session_id, letter, lengths.get(letter, 0)) for letter in LETTERS
    ]
    return DerivedKeys(*values)
