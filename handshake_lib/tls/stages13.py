"""The stages of the TLS 1.3 key schedule a learner can replace (lesson 10's exercise), each with its call signature.

Theory of operation
-------------------
As :class:`~handshake_lib.tls.stages.Stages` does for TLS 1.2 (DESIGN rule 5), :class:`Stages13` names the
functions a learner writes, and the 1.3 cores (``TLS13Client(stages=...)``, ``TLS13Server(stages=...)``)
run the learner's functions in a real handshake, so a wrong one is refused by the real peer::

    hkdf_expand_label(hash_name, secret, label, context, length)   every HKDF-Expand-Label of RFC 8446 7.1
    derive_secret(hash_name, secret, label, transcript_hash)       every Derive-Secret (transcript already hashed)
    traffic_keys(hash_name, secret, key_length, iv_length)         a traffic secret's write key and IV (7.3)

The defaults are the library's (:mod:`~handshake_lib.tls.key_schedule13`), and a stage left at its default
runs over the ones *above it in this list* (:meth:`Stages13.resolved`): replacing ``hkdf_expand_label``
alone changes every secret, every Finished and every key, as a wrong HKDF-Expand-Label in a real
implementation would.  ``traffic_keys`` may return a :class:`~handshake_lib.tls.key_schedule13.TrafficKeys`
or a ``(key, iv)`` pair.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar, Protocol

from ..errors import InternalError
from ..replaceable import ReplaceableFunctions
from . import key_schedule13
from .key_schedule13 import KeySchedule13, TrafficKeys

__all__ = [
    "Stages13",
    "LIBRARY_STAGES13",
    "HkdfExpandLabel",
    "DeriveSecret",
    "TrafficKeysStage",
    "derive_secret",
    "traffic_keys",
]


class HkdfExpandLabel(Protocol):
    """HKDF-Expand(secret, HkdfLabel(length, "tls13 " + label, context), length) (RFC 8446 7.1)."""

    def __call__(self, hash_name: str, secret: bytes, label: str | bytes, context: bytes, length: int, /) -> bytes: ...


class DeriveSecret(Protocol):
    """HKDF-Expand-Label(secret, label, transcript_hash, Hash.length): Derive-Secret with the hash given."""

    def __call__(self, hash_name: str, secret: bytes, label: str | bytes, transcript_hash: bytes, /) -> bytes: ...


class TrafficKeysStage(Protocol):
    """A traffic secret's write key ("key", key_length) and IV ("iv", iv_length) (RFC 8446 7.3)."""

    def __call__(
        self, hash_name: str, secret: bytes, key_length: int, iv_length: int, /
    ) -> TrafficKeys | tuple[bytes, bytes]: ...


def derive_secret(
    hash_name: str,
    secret: bytes,
    label: str | bytes,
    transcript_hash: bytes,
    *,
    expand_label: HkdfExpandLabel = key_schedule13.hkdf_expand_label,
) -> bytes:
    """The library's Derive-Secret over ``expand_label`` (the transcript hash given, not the messages)."""
    return expand_label(hash_name, secret, label, transcript_hash, key_schedule13.hash_length(hash_name))


def traffic_keys(
    hash_name: str,
    secret: bytes,
    key_length: int,
    iv_length: int,
    *,
    expand_label: HkdfExpandLabel = key_schedule13.hkdf_expand_label,
) -> TrafficKeys:
    """The library's traffic keys over ``expand_label``: ``"key"`` and ``"iv"`` with an empty context."""
    return TrafficKeys(
        expand_label(hash_name, secret, "key", b"", key_length), expand_label(hash_name, secret, "iv", b"", iv_length)
    )


@dataclass(frozen=True)
class Stages13(ReplaceableFunctions):
    """One function per replaceable step of the TLS 1.3 key schedule; the defaults are the library's own."""

    kind: ClassVar[str] = "stage"

    hkdf_expand_label: HkdfExpandLabel = key_schedule13.hkdf_expand_label
    derive_secret: DeriveSecret = derive_secret
    traffic_keys: TrafficKeysStage = traffic_keys

    def resolved(self) -> Stages13:
        """These stages as a connection runs them: each default wired to the replaced stages above it."""
        expand = self.hkdf_expand_label
        if expand is key_schedule13.hkdf_expand_label:
            return self
        return replace(
            self,
            derive_secret=partial(derive_secret, expand_label=expand)
            if self.derive_secret is derive_secret
            else self.derive_secret,
            traffic_keys=partial(traffic_keys, expand_label=expand)
            if self.traffic_keys is traffic_keys
            else self.traffic_keys,
        )

    def schedule(self, hash_name: str, psk: bytes | None = None) -> KeySchedule13:
        """A :class:`KeySchedule13` whose every rung runs through these (resolved) stages."""
        return KeySchedule13(hash_name, psk=psk, expand_label=self.hkdf_expand_label, derive=self.derive_secret)

    def keys(self, hash_name: str, secret: bytes, key_length: int, iv_length: int) -> TrafficKeys:
        """``traffic_keys``'s answer, checked: a learner's function returning the wrong sizes is named."""
        try:
            keys = self.traffic_keys(hash_name, secret, key_length, iv_length)
        except Exception as error:  # a learner's stage may fail any way; say which stage
            raise InternalError(f"traffic_keys failed: {type(error).__name__}: {error}") from error
        key, iv = (keys.key, keys.iv) if isinstance(keys, TrafficKeys) else tuple(keys)  # type: ignore[misc]
        if not isinstance(key, bytes | bytearray) or len(key) != key_length:
            raise InternalError(f"traffic_keys returned a key of {key!r:.40}, not {key_length} bytes")
        if not isinstance(iv, bytes | bytearray) or len(iv) != iv_length:
            raise InternalError(f"traffic_keys returned an IV of {iv!r:.40}, not {iv_length} bytes")
        return TrafficKeys(bytes(key), bytes(iv))


LIBRARY_STAGES13 = Stages13()
