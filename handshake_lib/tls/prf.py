"""The TLS 1.2 pseudo-random function, and every secret TLS 1.2 derives with it.

Theory of operation
-------------------
TLS 1.2 has one key-derivation tool, the PRF (RFC 5246 section 5).  It stretches a secret into as
many bytes as needed with HMAC, chaining an internal value A(i) so that each output block depends on
all the ones before::

    A(0) = seed
    A(i) = HMAC(secret, A(i-1))
    P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...
    PRF(secret, label, seed) = P_<hash>(secret, label + seed)

The hash is SHA-256, except for suites ending in ``_SHA384`` (RFC 5289).  The handshake uses it four
times, each with its own label:

1. ``"master secret"``: pre-master secret + both randoms -> 48-byte master secret (RFC 5246 section 8.1),
   or ``"extended master secret"`` over the hash of the handshake so far (RFC 7627), which binds the
   master secret to this one handshake and defeats the triple-handshake attack.
2. ``"key expansion"``: master secret + both randoms -> the key block, cut into MAC keys, encryption
   keys and IVs (section 6.3).  Note the order of the randoms flips: *server* random first.
3. ``"client finished"`` / ``"server finished"``: master secret + hash of the handshake -> the 12-byte
   ``verify_data`` in each Finished message (section 7.4.9).

One argument order.  Every function takes the RFC's arguments in the order RFC 5246 writes them
(``PRF(secret, label, seed)``, then the output length where the caller chooses it), followed by what the
cipher suite fixes: ``hash_name`` (default ``"sha256"``), or the whole :class:`SuiteParams` when sizes
are needed too (:func:`key_block`).  Each of these functions is a *stage* a learner can replace
(:mod:`handshake_lib.tls.stages`); the higher ones take the stage below as a keyword (``prf=``, and
``p_hash=`` for :func:`prf`), which is how a replaced PRF reaches the library's own key schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac

from .suites import SuiteParams

__all__ = [
    "HASHES",
    "PHash",
    "Prf",
    "KeyBlock",
    "hmac_digest",
    "transcript_hash",
    "p_hash",
    "prf",
    "master_secret",
    "extended_master_secret",
    "key_block",
    "verify_data",
    "PHashStep",
    "p_hash_steps",
    "RecordedFinished",
]

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

MASTER_SECRET_LENGTH = 48
VERIFY_DATA_LENGTH = 12  # RFC 5246 section 7.4.9: every suite that does not say otherwise

# The signatures of the stages below (typing.Protocol versions with the parameter names: ``stages.py``).
PHash = Callable[[bytes, bytes, int, str], bytes]
Prf = Callable[[bytes, bytes, bytes, int, str], bytes]


def _algorithm(hash_name: str) -> hashes.HashAlgorithm:
    try:
        return HASHES[hash_name.lower()]()
    except KeyError:
        raise ValueError(f"unknown hash {hash_name!r}; expected one of {sorted(HASHES)}") from None


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """HMAC(key, data) with the named hash (the primitive comes from ``cryptography``)."""
    mac = hmac.HMAC(key, _algorithm(hash_name))
    mac.update(data)
    return mac.finalize()


def transcript_hash(hash_name: str, handshake_messages: bytes) -> bytes:
    """Hash of the concatenated handshake messages (type + length + body each, no record headers)."""
    digest = hashes.Hash(_algorithm(hash_name))
    digest.update(handshake_messages)
    return digest.finalize()


def p_hash(secret: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """P_hash(secret, seed) of RFC 5246 section 5, cut to ``length`` bytes."""
    if length < 0:
        raise ValueError("length must not be negative")
    output = b""
    a = seed  # A(0)
    while len(output) < length:
        a = hmac_digest(hash_name, secret, a)  # A(i) = HMAC(secret, A(i-1))
        output += hmac_digest(hash_name, secret, a + seed)  # one more block of output
    return output[:length]


def prf(
    secret: bytes,
    label: bytes | str,
    seed: bytes,
    length: int,
    hash_name: str = "sha256",
    *,
    p_hash: PHash = p_hash,
) -> bytes:
    """PRF(secret, label, seed) = P_<hash>(secret, label + seed), ``length`` bytes."""
    label_bytes = label.encode("ascii") if isinstance(label, str) else label
    return p_hash(secret, label_bytes + seed, length, hash_name)


def master_secret(
    pre_master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
    hash_name: str = "sha256",
    *,
    prf: Prf = prf,
) -> bytes:
    """The 48-byte master secret of RFC 5246 section 8.1 (seed: client random, then server random)."""
    return prf(pre_master_secret, b"master secret", client_random + server_random, MASTER_SECRET_LENGTH, hash_name)


def extended_master_secret(
    pre_master_secret: bytes,
    session_hash: bytes,
    hash_name: str = "sha256",
    *,
    prf: Prf = prf,
) -> bytes:
    """The RFC 7627 master secret; ``session_hash`` = hash of ClientHello .. ClientKeyExchange."""
    return prf(pre_master_secret, b"extended master secret", session_hash, MASTER_SECRET_LENGTH, hash_name)


@dataclass(frozen=True)
class KeyBlock:
    """The key block cut into its six parts, in the order RFC 5246 section 6.3 lays them out."""

    client_write_mac_key: bytes
    server_write_mac_key: bytes
    client_write_key: bytes
    server_write_key: bytes
    client_write_iv: bytes
    server_write_iv: bytes


def key_block(
    master_secret: bytes,
    server_random: bytes,
    client_random: bytes,
    params: SuiteParams,
    *,
    prf: Prf = prf,
) -> KeyBlock:
    """Expand the master secret into keys.  The seed is server random + client random (not the other way)."""
    seed = server_random + client_random
    block = prf(master_secret, b"key expansion", seed, params.key_block_length, params.prf_hash)
    parts = []
    offset = 0
    for size in (
        params.mac_key_length,
        params.mac_key_length,
        params.enc_key_length,
        params.enc_key_length,
        params.fixed_iv_length,
        params.fixed_iv_length,
    ):
        parts.append(block[offset : offset + size])
        offset += size
    return KeyBlock(*parts)


FINISHED_LABELS = ("client finished", "server finished")


def verify_data(
    master_secret: bytes,
    label: str,
    handshake_messages: bytes,
    hash_name: str = "sha256",
    *,
    prf: Prf = prf,
) -> bytes:
    """Finished.verify_data = PRF(master_secret, label, Hash(handshake_messages))[:12] (section 7.4.9).

    ``handshake_messages`` are the messages themselves, headers included, in order (not their hash):
    the function hashes them with the suite's hash, as the RFC writes it.  Every TLS 1.2 suite here
    has the default ``verify_data_length`` of 12.
    """
    if label not in FINISHED_LABELS:
        raise ValueError(f"label must be one of {FINISHED_LABELS}, not {label!r}")
    handshake_hash = transcript_hash(hash_name, handshake_messages)
    return prf(master_secret, label.encode("ascii"), handshake_hash, VERIFY_DATA_LENGTH, hash_name)


# -- P_hash unrolled, for lesson 06's pictures --------------------------------------------------------
@dataclass(frozen=True)
class PHashStep:
    """Round ``index`` of P_hash: A(i) = HMAC(secret, A(i-1)) and the output block HMAC(secret, A(i) + seed)."""

    index: int
    a: bytes
    block: bytes
    used: int  # how many bytes of ``block`` end up in the output


def p_hash_steps(secret: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> list[PHashStep]:
    """The rounds of P_hash(secret, seed) needed for ``length`` bytes (RFC 5246 section 5), in order.

    The same computation as :func:`p_hash`, keeping every A(i) and block: joining ``block[:used]`` of
    each step gives ``p_hash(secret, seed, length, hash_name)``.
    """
    if length < 0:
        raise ValueError("length must not be negative")
    steps: list[PHashStep] = []
    a = seed  # A(0)
    produced = 0
    while produced < length:
        a = hmac_digest(hash_name, secret, a)
        block = hmac_digest(hash_name, secret, a + seed)
        used = min(len(block), length - produced)
        steps.append(PHashStep(len(steps) + 1, a, block, used))
        produced += used
    return steps


@dataclass(frozen=True)
class RecordedFinished:
    """A real TLS 1.2 handshake's messages and both Finished, with the master secret from the peer's key log.

    The Finished exercise's vectors, stored in ``handshake_lib/data/openssl_finished.json`` (see
    :func:`handshake_lib.data.load_recordings`).
    """

    suite_name: str  # OpenSSL's name, e.g. "AES128-GCM-SHA256"
    hash_name: str  # the PRF hash of the suite
    master_secret: bytes
    handshake_messages: bytes  # ClientHello .. ClientKeyExchange, exactly as sent (no record headers)
    client_finished: bytes  # the client's Finished message (4-byte header + verify_data)
    server_finished: bytes

    @classmethod
    def from_json(cls, item: dict[str, object]) -> RecordedFinished:
        def raw(key: str) -> bytes:
            return bytes.fromhex(str(item[key]))

        return cls(
            str(item["suite_name"]),
            str(item["hash_name"]),
            raw("master_secret"),
            raw("handshake_messages"),
            raw("client_finished"),
            raw("server_finished"),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "suite_name": self.suite_name,
            "hash_name": self.hash_name,
            "master_secret": self.master_secret.hex(),
            "handshake_messages": self.handshake_messages.hex(),
            "client_finished": self.client_finished.hex(),
            "server_finished": self.server_finished.hex(),
        }

    @property
    def client_verify_data(self) -> bytes:
        return self.client_finished[4:]

    @property
    def server_verify_data(self) -> bytes:
        return self.server_finished[4:]
