"""Names in certificates: does a leaf name the host we wanted, and do names stay inside a CA's subtrees?

Host names (RFC 9525, which replaced RFC 6125 in 2023, as the Web PKI applies it):

* the host is an IP address when it parses as one, and then it matches only an ``iPAddress`` entry of
  subjectAltName, never a DNS name (``"127.0.0.1"`` in a dNSName is not an address);
* a DNS host matches a ``dNSName`` entry compared without case and without a trailing dot;
* a wildcard is only the whole left-most label (``*.example.com``; never ``f*.example.com``,
  ``*.*.example.com`` or ``a.*.example.com``), it stands for exactly one label (``*.example.com`` does not
  match ``a.b.example.com`` nor ``example.com``), and it is never put on a public suffix: ``*.com`` or
  ``*.co.uk`` would name every site under it.  We know public suffixes from a small built-in list
  (:data:`PUBLIC_SUFFIXES`: every single label, plus the common two-label registries), not the whole
  Public Suffix List, so ``*.some-rare-registry.example`` passes here where a browser would refuse it;
* the subject's commonName is never consulted (RFC 9525 section 6.1.1): a certificate without a
  subjectAltName names no host.  OpenSSL still falls back to the CN when there is no DNS name; this
  is one of the places where the profile we teach is stricter than RFC 5280 software.

:func:`match_host` says whether and why; :func:`host_matches` is the same answer as a bool over plain
strings, the library's side of lesson 04's exercise (:mod:`handshake_lib.pki.checks`).

Name constraints (RFC 5280 section 4.2.1.10) for dNSName and iPAddress subtrees: a DNS constraint
``example.com`` holds ``example.com`` and every name made by adding labels on the left; ``.example.com``
(a leading dot, as OpenSSL writes it) holds only the names below it; an IP constraint is a network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PUBLIC_SUFFIXES",
    "HostMatch",
    "match_host",
    "host_matches",
    "dns_in_subtree",
    "wildcard_problem",
]

# Every single label is a suffix (a top-level domain: ``*.com``, ``*.example``); these two-label ones are
# the registries people meet most.  A small list on purpose: the real Public Suffix List has ~10,000 rules.
PUBLIC_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "sch.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.nz", "org.nz", "com.br", "net.br", "org.br", "com.cn", "net.cn", "org.cn", "gov.cn",
        "co.in", "net.in", "org.in", "co.za", "org.za", "com.mx", "com.tr", "co.kr", "or.kr",
        "com.tw", "com.hk", "com.sg", "com.ar", "co.il", "com.ua",
        "github.io", "gitlab.io", "herokuapp.com", "appspot.com", "blogspot.com", "cloudfront.net",
        "azurewebsites.net", "netlify.app", "vercel.app", "pages.dev", "workers.dev", "s3.amazonaws.com",
    }
)

MAX_HOST_LENGTH = 253  # RFC 1035: longer is not a DNS name, and nothing we compare should grow without bound


def _normal(name: str) -> str:
    return name.lower().removesuffix(".")


def is_public_suffix(name: str) -> bool:
    """Is ``name`` (lower case, no trailing dot) a public suffix by our small list?"""
    return "." not in name or name in PUBLIC_SUFFIXES


def wildcard_problem(pattern: str) -> str | None:
    """Why a subjectAltName DNS pattern with a ``*`` is not a wildcard we accept, or None if it is one."""
    labels = _normal(pattern).split(".")
    if labels[0] != "*":
        return f"{pattern!r} has a '*' that is not the whole left-most label"
    if any("*" in label for label in labels[1:]):
        return f"{pattern!r} has a '*' beyond the left-most label"
    base = ".".join(labels[1:])
    if not base or is_public_suffix(base):
        return f"{pattern!r} puts a wildcard on the public suffix {base!r}"
    return None


def _dns_matches(pattern: str, host: str) -> bool:
    pattern = _normal(pattern)
    if "*" not in pattern:
        return pattern == host
    if wildcard_problem(pattern) is not None:
        return False
    first, _, rest = host.partition(".")
    return bool(first) and rest == pattern[2:]


@dataclass(frozen=True)
class HostMatch:
    """The answer of :func:`match_host`: did it match, by which entry, and in one line why (not)."""

    matched: bool
    entry: str | None
    reason: str


def match_host(host: str, dns_names: Iterable[str], ip_addresses: Iterable[object], *, has_san: bool) -> HostMatch:
    """Does a leaf whose subjectAltName holds ``dns_names`` and ``ip_addresses`` name ``host``?"""
    if len(host) > MAX_HOST_LENGTH + 1:
        return HostMatch(False, None, f"the host name has {len(host)} characters; a DNS name has at most 253")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not has_san:
        return HostMatch(False, None, "it has no subjectAltName (the commonName is not consulted, RFC 9525)")
    if address is not None:
        for candidate in ip_addresses:
            if candidate == address:
                return HostMatch(True, str(candidate), f"IP address {address} is in its subjectAltName")
        shown = ", ".join(str(a) for a in ip_addresses) or "no IP address"
        return HostMatch(False, None, f"IP address {address} is not among its iPAddress entries ({shown})")
    wanted = _normal(host)
    names = list(dns_names)
    for pattern in names:
        if _dns_matches(pattern, wanted):
            return HostMatch(True, pattern, f"{host!r} matches its subjectAltName entry {pattern!r}")
    bad = [problem for pattern in names if "*" in pattern and (problem := wildcard_problem(pattern))]
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    why = f"; {bad[0]}" if bad else ""
    return HostMatch(False, None, f"{host!r} is not among its DNS names ({shown or 'none'}){why}")


def host_matches(host: str, dns_names: list[str], ip_addresses: list[str]) -> bool:
    """The library's answer to lesson 04's exercise: does a leaf with these subjectAltName entries name ``host``?

    Plain values in, a bool out (:class:`handshake_lib.pki.checks.HostMatches`): ``ip_addresses`` in
    text; an entry that is not an address matches nothing.  Both lists empty (no subjectAltName) match
    nothing either, since the commonName is never consulted.  The rules are :func:`match_host`'s.
    """
    addresses: list[object] = []
    for text in ip_addresses:
        try:
            addresses.append(ipaddress.ip_address(str(text)))
        except ValueError:
            continue
    return match_host(host, dns_names, addresses, has_san=True).matched


def dns_in_subtree(name: str, constraint: str) -> bool:
    """Is the DNS ``name`` inside the subtree ``constraint`` (RFC 5280 section 4.2.1.10)?"""
    name, constraint = _normal(name), _normal(constraint)
    if not constraint:
        return True
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def wildcard_reaches(name: str, constraint: str) -> bool:
    """Could the wildcard ``name`` (``*.base``) stand for some name in the subtree ``constraint``?"""
    base = _normal(name)[2:]
    constraint = _normal(constraint).lstrip(".")
    return dns_in_subtree(base, constraint) or constraint.partition(".")[2] == base
