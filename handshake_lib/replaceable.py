"""What the learner can swap: a frozen dataclass of functions whose defaults are the library's own.

DESIGN rule 6 ("learner code in the loop"): :class:`handshake_lib.tls.stages.Stages` (the TLS 1.2
handshake's stages) and :class:`handshake_lib.pki.checks.CertificateChecks` (lesson 04's certificate
checks) are both a frozen dataclass with one field per replaceable function.  This mixin gives them the
same behaviour: every field must be callable, ``replace(name=function)`` makes a copy with some swapped,
and ``replaced()`` names the fields that are not the library's default.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import ClassVar, Self

__all__ = ["ReplaceableFunctions"]


class ReplaceableFunctions:
    """Mixin for a frozen dataclass of functions; ``kind`` names one field in messages ("stage", "check")."""

    kind: ClassVar[str] = "function"

    def __post_init__(self) -> None:
        for slot in fields(self):  # type: ignore[arg-type]
            function = getattr(self, slot.name)
            if not callable(function):
                raise TypeError(f"{self.kind} {slot.name} must be a function, not {type(function).__name__}")

    def replace(self, **changes: object) -> Self:
        """A copy with some functions swapped: ``stages.replace(prf=my_prf)``."""
        return replace(self, **changes)  # type: ignore[type-var]

    def replaced(self) -> list[str]:
        """The names of the functions that are not the library's own (for messages, reports and tests)."""
        return [slot.name for slot in fields(self) if getattr(self, slot.name) is not slot.default]  # type: ignore[arg-type]
