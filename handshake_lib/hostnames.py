"""What a host name may be: the DNS rules a certificate, a URL and a ClientHello's server_name share.

A DNS name in text is labels joined by dots, one optional trailing dot (the root) ignored:

* at most :data:`MAX_NAME_LENGTH` (253) characters, which is the 255 octets RFC 1035 section 2.3.4
  allows on the wire (each label carries a length octet, plus the root's zero octet);
* each label from 1 to :data:`MAX_LABEL_LENGTH` (63) characters, so ``a..b`` and ``.`` are no names;
* ASCII letters, digits and hyphens, not starting or ending with a hyphen (RFC 1123 section 2.1), and
  underscores, which real DNS names carry (``_acme-challenge``) and clients accept; an internationalised
  name is written in its ``xn--`` form (an A-label, RFC 5890), which is ASCII;
* in a certificate only, a wildcard ``*`` as the whole leftmost label (RFC 6125 section 6.4.3).

A ClientHello's server_name is such a name and never an IP address ("Literal IPv4 and IPv6 addresses
are not permitted in HostName", RFC 6066 section 3).  Each check raises ValueError with one line that
says what is wrong, so a command line or a widget can show it as it is.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["MAX_LABEL_LENGTH", "MAX_NAME_LENGTH", "check_certificate_name", "check_dns_name", "check_server_name"]

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def _require_text(name: object) -> None:
    # Before ipaddress sees it: ip_address(5) is 0.0.0.5, which nobody typing a host name meant.
    if not isinstance(name, str):
        raise TypeError(f"a host name is a str, not {type(name).__name__}")


def check_dns_name(name: str, *, wildcard: bool = False) -> str:
    """``name`` without its trailing dot, if it is a DNS name by the rules above; ValueError otherwise."""
    _require_text(name)
    shown = repr(name) if len(name) <= 40 else repr(name[:37] + "...")
    if not name.isascii():
        raise ValueError(f"host name {shown} is not ASCII: write an internationalised name in its xn-- form")
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        raise ValueError(f"host name {shown} is empty")
    if len(bare) > MAX_NAME_LENGTH:
        raise ValueError(f"host name {shown} has {len(bare)} characters; a DNS name has at most {MAX_NAME_LENGTH}")
    labels = bare.split(".")
    for position, label in enumerate(labels):
        if not label:
            raise ValueError(f"host name {shown} has an empty label (a leading dot or two dots in a row)")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"host name {shown} has a label of {len(label)} characters; a label has at most {MAX_LABEL_LENGTH}"
            )
        if label == "*" and wildcard and position == 0 and len(labels) > 1:
            continue
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"host name {shown}: label {label!r} may hold only letters, digits and inner hyphens"
            )
    return bare


def check_server_name(name: str) -> str:
    """A ClientHello's server_name (RFC 6066): a DNS name, not an IP address; ValueError otherwise."""
    _require_text(name)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return check_dns_name(name)
    raise ValueError(f"{name} is an IP address; RFC 6066 sends only DNS names as server_name")


def check_certificate_name(name: str) -> str:
    """A name for a certificate's subjectAltName: an IP address, or a DNS name (a leftmost ``*`` allowed)."""
    _require_text(name)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return check_dns_name(name, wildcard=True)
