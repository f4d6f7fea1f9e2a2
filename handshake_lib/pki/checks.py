"""The certificate checks a learner can replace: does the leaf name the host, and is each certificate in date?

Theory of operation
-------------------
DESIGN rule 6 ("learner code in the loop") for lesson 04's exercise: the learner writes the host-name
check and the validity-window check, and *their* functions then decide those two checks in our
validator, so in a live handshake a right check refuses the wrong host and a wrong one lets it
through.  It follows :mod:`handshake_lib.tls.stages`: one frozen :class:`CertificateChecks` object
names each replaceable function once, each typed by a :class:`typing.Protocol` whose ``__call__`` is
exactly how the validator calls it, the defaults being the library's own (:data:`LIBRARY_CHECKS`)::

    from handshake_lib.pki.checks import CertificateChecks
    checks = CertificateChecks(host_matches=my_host_matches)          # or LIBRARY_CHECKS.replace(...)
    validate(leaf, ..., host="www.shop.example", checks=checks)
    tls_get("https://localhost:8443/", cafile=..., certificate_checks=checks)   # TLSClient(..., certificate_checks=...)

The functions take plain values, nothing from ``cryptography``:

* ``host_matches(host, dns_names, ip_addresses) -> bool``: ``host`` as the client wants it (a DNS name,
  or an IP address in text), the leaf's subjectAltName ``dNSName`` entries as they are written and its
  ``iPAddress`` entries in text (``"127.0.0.1"``, ``"::1"``); both lists are empty when the leaf has no
  subjectAltName.  The library's answer is :func:`handshake_lib.pki.names.host_matches` (RFC 9525).
* ``within_validity(not_before, not_after, at) -> bool``: called once per certificate on the path, trust
  anchor included, with timezone-aware UTC datetimes.  The library's answer is :func:`within_validity`
  (RFC 5280 section 4.1.2.5: "from notBefore through notAfter, inclusive").

The function decides pass or fail; the rest of the check stays library code: which certificates are
asked about, the report's wording, and the alert (a refused host is bad_certificate; a certificate the
function refuses is certificate_expired when ``at`` is past its notAfter, else bad_certificate).  When a
replaced function decides, the reason says so ("your host_matches said ..."), and adds where the
library's own check would have decided otherwise, so a wrong check that lets a certificate through
is visible in the report of the handshake it let through.  A function that raises, or returns
anything but ``True`` or ``False`` (``None``, a forgotten ``return``, is the usual one), fails its
check with a reason that says so and the alert certificate_unknown ("some other issue arose in
processing the certificate", RFC 5246 section 7.2.2): it never passes and never crashes the validator.
Only ``Exception`` is caught; a learner's function runs in this process with no time limit, as a
replaced TLS stage does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ..replaceable import ReplaceableFunctions
from . import names

__all__ = [
    "CertificateChecks",
    "HostMatches",
    "WithinValidity",
    "LIBRARY_CHECKS",
    "within_validity",
    "host_matches",
]

host_matches = names.host_matches


def within_validity(not_before: dt.datetime, not_after: dt.datetime, at: dt.datetime) -> bool:
    """Is ``at`` inside the validity period?  RFC 5280 section 4.1.2.5: both ends are inclusive."""
    return not_before <= at <= not_after


# Parameters are positional-only (``/``): a learner's function may name them as it likes.
class HostMatches(Protocol):
    """Does a leaf whose subjectAltName holds ``dns_names`` and ``ip_addresses`` (text) name ``host``?"""

    def __call__(self, host: str, dns_names: list[str], ip_addresses: list[str], /) -> bool: ...


class WithinValidity(Protocol):
    """Is ``at`` within [``not_before``, ``not_after``]?  All three are timezone-aware, in UTC."""

    def __call__(self, not_before: dt.datetime, not_after: dt.datetime, at: dt.datetime, /) -> bool: ...


@dataclass(frozen=True)
class CertificateChecks(ReplaceableFunctions):
    """One function per replaceable certificate check; the defaults are the library's own."""

    kind: ClassVar[str] = "check"

    host_matches: HostMatches = names.host_matches
    within_validity: WithinValidity = within_validity


LIBRARY_CHECKS = CertificateChecks()
