"""Second opinions on a course scenario: what ``cryptography.x509.verification`` says about it.

Lesson 04 shows our validator's report beside what two trusted validators say about the same
scenario: ``cryptography``'s verifier (here) and ``openssl verify``
(:func:`handshake_lib.peers.openssl_verify.openssl_opinion`, which runs a program and so lives in
``peers``).  Both answer with an :class:`Opinion`.  This module is the comparison, never the
judge: :mod:`handshake_lib.pki.validate` does not import it, and nothing here feeds our report.

``cryptography``'s verifier follows the Web PKI (CA/Browser Forum) profile with RFC 5280 path
validation, at most :data:`~handshake_lib.pki.variants.MAX_INTERMEDIATES` intermediates; it reads no
CRL and no OCSP response, so on a scenario whose fault lies in revocation data it says "valid": it
has no opinion there (:attr:`Opinion.has_opinion` is False).  Its error messages do not name a
check in our vocabulary, so its opinion's ``checks`` are always empty.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .variants import MAX_INTERMEDIATES, Scenario

__all__ = ["Opinion", "cryptography_opinion"]


@dataclass(frozen=True)
class Opinion:
    """A trusted validator's verdict on a scenario, in our vocabulary where it can be mapped.

    ``checks`` are the names of our checks (:data:`handshake_lib.pki.variants.CHECKS`) that the
    validator's errors point at, in its order; ``None`` for an error with no counterpart in our
    checks; empty when it is valid or cannot say which.  ``detail`` is one line, what it said.
    ``has_opinion`` is False when the validator does not look at what the scenario is about
    (``cryptography`` and revocation).
    """

    valid: bool
    checks: tuple[str | None, ...]
    detail: str
    has_opinion: bool = True


def cryptography_opinion(scenario: Scenario) -> Opinion:
    """``cryptography.x509.verification``'s verdict on ``scenario``: same leaf, pool, anchors, time, host, purpose.

    A server scenario is checked for its host (a DNS name, or an IP address when it parses as one); a
    client scenario by the client verifier (clientAuth, no name).  The detail is the verifier's
    message without its ``(encountered ...)`` tail, which lists every certificate and would not fit a line.
    """
    builder = PolicyBuilder().store(Store(list(scenario.roots))).time(scenario.at).max_chain_depth(MAX_INTERMEDIATES)
    revocation_only = bool(scenario.crls) or scenario.ocsp is not None
    try:
        if scenario.purpose == "server":
            if scenario.host is None:
                raise ValueError(f"server scenario {scenario.name} has no host to check")
            subject: x509.GeneralName = x509.DNSName(scenario.host)
            if scenario.host_is_ip:
                subject = x509.IPAddress(ipaddress.ip_address(scenario.host))
            builder.build_server_verifier(subject).verify(scenario.leaf, list(scenario.intermediates))
        else:
            builder.build_client_verifier().verify(scenario.leaf, list(scenario.intermediates))
    except VerificationError as error:
        detail = " ".join(str(error).split(" (encountered")[0].split())
        return Opinion(False, (), detail)
    # Valid with CRLs or an OCSP response in the scenario: it read neither, so it cannot have caught a
    # revocation fault; say so rather than pretend to a verdict on them.
    if revocation_only:
        return Opinion(True, (), "valid (CRLs and OCSP responses not read)", has_opinion=False)
    return Opinion(True, (), "valid")
