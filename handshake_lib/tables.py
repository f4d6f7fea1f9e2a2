"""One row of a protocol's state table, shared by every table that has guarded rows (SSH's, TLS 1.3's).

A :class:`Transition` says: in ``source``, on ``received`` (if every guard in ``when`` holds), send the
messages of ``send`` in order and go to ``target``.  Each protocol module defines its own ``State``,
``Input`` and ``Guard`` enums and its own lookup (``transition_for``); the row itself, its guards and the
label a diagram prints are the same everywhere, so they live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

__all__ = ["Transition"]


@dataclass(frozen=True)
class Transition:
    """One row: in ``source``, on ``received`` (if ``when`` holds), send ``send`` in order, go to ``target``."""

    source: Enum
    received: Enum
    target: Enum
    send: tuple[str, ...] = ()
    note: str = ""
    when: Enum | tuple[Enum, ...] | None = None

    @cached_property
    def needs(self) -> frozenset[Enum]:
        """The guards this row needs (empty for an unguarded row); computed once, every lookup reads it."""
        if self.when is None:
            return frozenset()
        return frozenset(self.when) if isinstance(self.when, tuple) else frozenset((self.when,))

    @property
    def label(self) -> str:
        """``KEX_ECDH_REPLY / NEWKEYS``: the arrow's text, guards in their enum's order."""
        needs = self.needs
        guard_type = type(next(iter(needs))) if needs else None
        guards = [guard.value for guard in guard_type if guard in needs] if guard_type is not None else []
        event = f"{self.received.value} [{'; '.join(guards)}]" if guards else self.received.value
        return f"{event} / {', '.join(self.send)}" if self.send else event
