"""A TLS 1.2 key schedule from recorded inputs, checked against the master secret OpenSSL computed.

Theory of operation
-------------------
Everything TLS 1.2 key derivation needs from a handshake fits in a few values: the pre-master secret,
both randoms and, for the extended master secret of RFC 7627, the session hash (the hash of
ClientHello .. ClientKeyExchange).  A :class:`RecordedHandshake` keeps those from one real handshake of
our client with OpenSSL, together with the master secret OpenSSL wrote to its key log for that
connection.  :func:`derive_keys` recomputes the master secret (classic or extended) and the key block
with :mod:`handshake_lib.tls.prf`, so a lesson, a test or a learner's PRF can be checked against
OpenSSL offline, in microseconds.

The recordings ship as ``handshake_lib/data/rsa_key_schedules.json`` (one per RSA suite, with and
without the extended master secret), read by :func:`recorded_handshakes`.  They were made by
:func:`handshake_lib.peers.openssl_runs.record_key_schedules`; ``scripts/regenerate_data.py`` makes
them again.  The server keys were fresh and are gone: these secrets protect nothing and are published
on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ..data import load_recordings
from . import prf as prf_module
from .constants import CipherSuite
from .stages import LIBRARY_STAGES, Stages
from .suites import RSA_SUITE_NAMES, SuiteParams, key_block_layout, openssl_name, parse_suite_name, suite_params

__all__ = [
    "RECORDINGS",
    "RecordedHandshake",
    "DerivedKeys",
    "derive_master_secret",
    "derive_keys",
    "key_block_bytes",
    "recorded_handshakes",
    "recorded_handshake",
]

# The data file (handshake_lib/data/<RECORDINGS>.json) holding the recorded key schedules.
RECORDINGS = "rsa_key_schedules"

_BYTE_FIELDS = ("pre_master_secret", "client_random", "server_random", "session_hash", "openssl_master_secret")


@dataclass(frozen=True)
class RecordedHandshake:
    """What key derivation needs from one real TLS 1.2 handshake, and OpenSSL's master secret for it."""

    suite: CipherSuite
    extended_master_secret: bool
    pre_master_secret: bytes
    client_random: bytes
    server_random: bytes
    session_hash: bytes  # Hash(ClientHello .. ClientKeyExchange) with the suite's PRF hash (RFC 7627)
    openssl_master_secret: bytes  # from OpenSSL's key log

    @property
    def params(self) -> SuiteParams:
        return suite_params(self.suite)

    @property
    def cipher(self) -> str:
        """The suite by OpenSSL's name (``"AES128-GCM-SHA256"``)."""
        return openssl_name(self.suite)

    def to_json(self) -> dict[str, Any]:
        """This recording as one entry of the data file (bytes as lowercase hex)."""
        return {
            "suite": self.suite.name,
            "extended_master_secret": self.extended_master_secret,
            **{name: getattr(self, name).hex() for name in _BYTE_FIELDS},
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> RecordedHandshake:
        """The recording in one entry of the data file; ValueError or KeyError if it is malformed."""
        ems = entry["extended_master_secret"]
        if not isinstance(ems, bool):
            raise ValueError(f"extended_master_secret must be true or false, not {ems!r}")
        values = {name: bytes.fromhex(entry[name]) for name in _BYTE_FIELDS}
        return cls(parse_suite_name(entry["suite"]), ems, **values)


@dataclass(frozen=True)
class DerivedKeys:
    """The master secret and key block derived from a recording, and whether OpenSSL agrees."""

    recording: RecordedHandshake
    master_secret: bytes
    keys: prf_module.KeyBlock

    @property
    def key_block(self) -> bytes:
        """The whole key block, its six parts joined in RFC 5246 section 6.3 order."""
        return key_block_bytes(self.keys, self.recording.params)

    @property
    def matches_openssl(self) -> bool:
        return self.master_secret == self.recording.openssl_master_secret


def key_block_bytes(keys: prf_module.KeyBlock, params: SuiteParams) -> bytes:
    """The key block as PRF output, from its parts (the inverse of :func:`~handshake_lib.tls.prf.key_block`'s cut)."""
    return b"".join(getattr(keys, name.lower()) for name, _, _ in key_block_layout(params))


def derive_master_secret(
    pre_master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
    session_hash: bytes,
    params: SuiteParams,
    extended_master_secret: bool,
    *,
    stages: Stages = LIBRARY_STAGES,
) -> bytes:
    """The master secret as the handshake makes it: RFC 7627's from the session hash, or the classic one.

    The one place that choice is made: a live connection calls this too.  Run by ``stages`` (the
    library's by default; ``Stages(prf=mine)`` puts a learner's PRF underneath, as a connection would).
    ``session_hash`` is only read for the extended master secret.
    """
    run = stages.resolved()
    if extended_master_secret:
        return run.extended_master_secret(pre_master_secret, session_hash, params.prf_hash)
    return run.master_secret(pre_master_secret, client_random, server_random, params.prf_hash)


def derive_keys(recording: RecordedHandshake, *, stages: Stages = LIBRARY_STAGES) -> DerivedKeys:
    """Master secret (classic or extended) and key block of ``recording``, run by ``stages``."""
    params = recording.params
    stages = stages.resolved()  # once, for both steps
    master = derive_master_secret(
        recording.pre_master_secret,
        recording.client_random,
        recording.server_random,
        recording.session_hash,
        params,
        recording.extended_master_secret,
        stages=stages,
    )
    keys = stages.key_block(master, recording.server_random, recording.client_random, params)
    return DerivedKeys(recording, master, keys)


@cache
def _load() -> tuple[RecordedHandshake, ...]:
    return tuple(map(RecordedHandshake.from_json, load_recordings(RECORDINGS)))


def recorded_handshakes() -> dict[tuple[str, bool], RecordedHandshake]:
    """The shipped recordings by (OpenSSL suite name, extended master secret); the file is read once."""
    return {(recording.cipher, recording.extended_master_secret): recording for recording in _load()}


def recorded_handshake(cipher: str = "AES128-GCM-SHA256", extended_master_secret: bool = True) -> RecordedHandshake:
    """The shipped recording for this suite (OpenSSL name) and master secret mode."""
    try:
        return recorded_handshakes()[(cipher, bool(extended_master_secret))]
    except KeyError:
        raise ValueError(f"no recording for {cipher!r}; choose one of {', '.join(RSA_SUITE_NAMES)}") from None
