"""The validator's report: the check names, their statuses, and the immutable report itself.

:class:`Check` is the vocabulary every part of lesson 04 shares (the report, the command line, the
course PKI's faulty variants): its values are the names that appear in the report.  A
:class:`ValidationReport` is made by :func:`handshake_lib.pki.validate.validate`, one
:class:`CheckResult` per check in :class:`Check` order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CertificateError, CertificateUnknown

__all__ = ["PROFILE", "Check", "Status", "Purpose", "CheckResult", "PathAttempt", "ValidationReport"]

PROFILE = "RFC 5280 with the Web PKI rules we teach"


class Check(Enum):
    """The checks, in report order; the values are the names the report, the CLI and the PKI variants use."""

    PATH = "path"
    SIGNATURE = "signature"
    VALIDITY = "validity"
    BASIC_CONSTRAINTS = "basic_constraints"
    PATH_LENGTH = "path_length"
    KEY_USAGE = "key_usage"
    EXTENDED_KEY_USAGE = "extended_key_usage"
    NAME_CONSTRAINTS = "name_constraints"
    HOST_NAME = "host_name"
    REVOCATION = "revocation"
    CRITICAL_EXTENSIONS = "critical_extensions"


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CHECKED = "not checked"


class Purpose(Enum):
    """What the leaf must be for: a TLS server (serverAuth) or a TLS client (clientAuth)."""

    SERVER = "server"
    CLIENT = "client"

    @property
    def eku(self) -> x509.ObjectIdentifier:
        return ExtendedKeyUsageOID.SERVER_AUTH if self is Purpose.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True)
class CheckResult:
    """One line of the report.  ``certificate`` names the certificate the reason is about (None: all)."""

    check: Check
    status: Status
    reason: str
    certificate: str | None = None
    details: tuple[str, ...] = ()  # one line per certificate looked at
    error: type[CertificateError] | None = None  # what report.error() raises when this is the first failure

    def __str__(self) -> str:
        return f"{self.check.value:<20} {self.status.value:<12} {self.reason}"


@dataclass(frozen=True)
class PathAttempt:
    """A path the builder tried: its certificates (leaf first) and what became of it."""

    certificates: tuple[str, ...]
    outcome: str


@dataclass(frozen=True)
class ValidationReport:
    """The whole answer of :func:`validate`; immutable, ordered as :class:`Check`."""

    profile: str
    purpose: Purpose
    host: str | None
    at: dt.datetime
    path: tuple[x509.Certificate, ...]  # the chosen path, leaf first, the trust anchor last when reached
    path_names: tuple[str, ...]
    attempts: tuple[PathAttempt, ...]
    checks: tuple[CheckResult, ...]
    # The check functions replaced for this validation (pki.checks), e.g. ("host_matches",): a learner's own
    learner_functions: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.failures

    @property
    def verdict(self) -> str:
        return "valid" if self.valid else "not valid"

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    def result(self, check: Check | str) -> CheckResult:
        wanted = Check(check)
        return next(c for c in self.checks if c.check is wanted)

    def status(self) -> dict[str, str]:
        """``{check name: status}``: what the tests and the PKI variants compare."""
        return {c.check.value: c.status.value for c in self.checks}

    def error(self) -> CertificateError | None:
        """The exception a TLS client raises (its class names the alert), report attached; None if valid."""
        for result in self.failures:
            error = (result.error or CertificateUnknown)(f"{result.check.value}: {result.reason}")
            error.report = self
            return error
        return None

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data (what ``cert check --json`` will print)."""
        return {
            "profile": self.profile,
            "purpose": self.purpose.value,
            "host": self.host,
            "at": self.at.isoformat(),
            "path": list(self.path_names),
            "attempts": [{"certificates": list(a.certificates), "outcome": a.outcome} for a in self.attempts],
            "checks": [
                {"check": c.check.value, "status": c.status.value, "reason": c.reason, "certificate": c.certificate,
                 "details": list(c.details), "alert": c.error.tls_alert.name if c.error else None}
                for c in self.checks
            ],
            "learner_functions": list(self.learner_functions),
            "verdict": self.verdict,
        }

    def summary(self) -> str:
        lines = [f"profile: {self.profile}", f"purpose: {self.purpose.value}; host: {self.host or '-'}; "
                 f"at: {self.at:%Y-%m-%dT%H:%M:%SZ}", "path: " + " <- ".join(self.path_names)]
        if self.learner_functions:
            lines.append("decided by your functions: " + ", ".join(self.learner_functions))
        lines += [str(c) for c in self.checks]
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)
