"""Our certificate validator: every check a TLS client makes, each one named, in a report.

Theory of operation
-------------------
A certificate is believed when a *path* leads from it to a certificate we already trust (a trust
anchor), and every certificate on that path passes a list of checks.  :func:`validate` builds the
path (:mod:`handshake_lib.pki.paths`), runs the checks below in this order on it, and returns a
:class:`ValidationReport`: the profile, the path (and the other paths it tried), one
:class:`CheckResult` per check (``pass``, ``fail`` or ``not checked``, with a one-line reason that
names the certificate), and the verdict.  Nothing raises for a chain that is merely wrong; only input
that does not parse raises, as :class:`~handshake_lib.errors.CertificateDecodeError`.

A *check* is one property of RFC 5280 section 6 (plus the Web PKI rules we teach), applied to every
certificate it concerns:

==========================  ==========================================================  =====================
check (:class:`Check`)      passes when                                                 alert when it fails
==========================  ==========================================================  =====================
``path``                    a path reaches a trust anchor within ``max_depth``           unknown_ca
                            intermediates and ``max_candidates`` tries
``signature``               each certificate verifies under its issuer's key            bad_certificate
``validity``                notBefore <= at <= notAfter, every certificate, anchor too   certificate_expired /
                                                                                        bad_certificate (not yet)
``basic_constraints``       every issuer has cA=TRUE; the leaf is not a CA (Web PKI)    unknown_ca
``path_length``             no issuer has more intermediates below it than its          unknown_ca
                            pathLenConstraint
``key_usage``               issuers may keyCertSign; a CRL's issuer may cRLSign; the    unknown_ca /
                            leaf's keyUsage allows the purpose for its key type         certificate_unknown /
                                                                                        unsupported_certificate
``extended_key_usage``      the leaf's (and any intermediate's) extendedKeyUsage holds  unsupported_certificate
                            serverAuth or clientAuth; absent means any purpose
``name_constraints``        names below a constrained CA stay in its permitted and out  certificate_unknown
                            of its excluded dNSName / iPAddress subtrees
``host_name``               the leaf's subjectAltName names the host (names.py rules)   bad_certificate
``revocation``              no certificate revoked, answers fresh and genuine           certificate_revoked /
                            (revocation.py; ``revocation_policy`` decides what a        certificate_expired (stale)
                            missing or stale answer counts as)                          / bad_certificate (forged)
                                                                                        / unknown_ca (none, hard-fail)
``critical_extensions``     no certificate carries a critical extension we do not       certificate_unknown
                            apply
==========================  ==========================================================  =====================

The alerts are OpenSSL's (``ssl_x509err2alert``, as :mod:`handshake_lib.tls.verify` already maps
them) with one exception: a bad signature (on a certificate or a CRL) is ``bad_certificate``, the
alert RFC 5246 section 7.2.2 describes ("contained signatures that did not verify"), where OpenSSL
sends ``decrypt_error``.  ``tests/test_pki_validate.py`` holds OpenSSL's table and checks each case.
:meth:`ValidationReport.error` returns the exception for the *first* failing check in the order above.

Path building tries alternatives: when a complete path fails some check, the builder keeps looking
and the report keeps the path with the fewest failures (the first such), so an expired cross-signed
intermediate gives way to a valid one.  When no path reaches an anchor, ``path`` fails and the other
checks still run on the longest partial path found, so the report says everything that is wrong at
once.  Trust anchors are trusted as configured: their signatures are not checked and their own issuer
is not looked for; their validity, CA flag and pathLenConstraint are.

Two checks can be decided by a learner's function (lesson 04's exercise, DESIGN rule 6):
``validate(..., checks=CertificateChecks(host_matches=..., within_validity=...))``.  The function says
pass or fail on plain values; which certificates are asked about, the reason and the alert stay ours.
The reason then begins "your host_matches said ..." and says where the library's own check disagrees,
and a function that raises or answers anything but a bool fails its check (certificate_unknown):
:mod:`handshake_lib.pki.checks` says how, and the report lists the replaced functions
(``learner_functions``).  The default, :data:`LIBRARY_CHECKS`, gives exactly the report described above.

Inputs come as ``cryptography`` objects; :mod:`handshake_lib.pki.loading` makes them from bytes, with
size caps.  The report's types and the check names live in :mod:`handshake_lib.pki.report`.

Profile: :data:`PROFILE`.  Where RFC 5280 software (OpenSSL) and this profile part ways, the Web PKI
rule wins: no commonName fallback for host names, no wildcard on a public suffix, a CA certificate is no
end entity.  Limits (documented in docs/limits.md): :data:`~handshake_lib.pki.paths.MAX_CERTIFICATE_BYTES`
per certificate, :data:`~handshake_lib.pki.paths.MAX_SAN_ENTRIES` subjectAltName entries,
:data:`~handshake_lib.pki.paths.MAX_POOL_CERTIFICATES` pool certificates read, ``max_depth``
(default :data:`DEFAULT_MAX_DEPTH`) and ``max_candidates`` (default :data:`DEFAULT_MAX_CANDIDATES`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import (
    BadCertificate,
    CertificateDecodeError,
    CertificateError,
    CertificateExpired,
    CertificateRevoked,
    CertificateUnknown,
    UnknownCA,
    UnsupportedCertificate,
)
from . import names
from .checks import LIBRARY_CHECKS, CertificateChecks
from .loading import MAX_CERTIFICATES_PER_INPUT, MAX_INPUT_BYTES, load_certificates, load_crl, load_ocsp_response
from .paths import MAX_POOL_CERTIFICATES, PARSE_ERRORS, CertView, PathSearch, build_paths
from .report import PROFILE, Check, CheckResult, PathAttempt, Purpose, Status, ValidationReport
from .revocation import Answer, RevocationPolicy, answer_for

__all__ = [
    "PROFILE",
    "Check",
    "Status",
    "Purpose",
    "RevocationPolicy",
    "CertificateChecks",
    "LIBRARY_CHECKS",
    "CheckResult",
    "PathAttempt",
    "ValidationReport",
    "validate",
    "load_certificates",
    "load_crl",
    "load_ocsp_response",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_CANDIDATES",
    "MAX_INPUT_BYTES",
    "MAX_CERTIFICATES_PER_INPUT",
]

DEFAULT_MAX_DEPTH = 8  # intermediates; OpenSSL's default allows 100, browsers meet 1 or 2
DEFAULT_MAX_CANDIDATES = 64  # candidate issuers tried in one path search


# -- the checks, each on one path -----------------------------------------------------------------


def _result(check: Check, failures: list[tuple[str, str, type[CertificateError]]], passed: str,
            details: list[str]) -> CheckResult:
    if failures:
        who, reason, error = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return CheckResult(check, Status.FAIL, reason + more, who, tuple(details), error)
    return CheckResult(check, Status.PASS, passed, None, tuple(details))


def _check_signature(path: Sequence[CertView]) -> CheckResult:
    failures, details = [], []
    for child, issuer in zip(path, path[1:], strict=False):
        try:
            child.certificate.verify_directly_issued_by(issuer.certificate)
            details.append(f"{child.name} is signed by {issuer.name}")
        except (InvalidSignature, *PARSE_ERRORS) as error:
            why = "the signature does not verify" if isinstance(error, InvalidSignature) else str(error)[:120]
            failures.append((child.name, f"{child.name} is not signed by {issuer.name}'s key: {why}", BadCertificate))
            details.append(failures[-1][1])
    if len(path) < 2:
        return CheckResult(Check.SIGNATURE, Status.PASS, "the leaf is itself a trust anchor", None, ())
    return _result(Check.SIGNATURE, failures, f"{len(path) - 1} signature(s) verify", details)


def _ask(function: object, name: str, *arguments: object) -> bool | str:
    """Call a replaceable check; its bool, or one line saying why it gave none (it raised, or not a bool)."""
    try:
        answer = function(*arguments)  # type: ignore[operator]
    except Exception as error:  # noqa: BLE001 - a learner's bug fails the check; it never crashes the validator
        try:
            message = str(error)[:120] or "(no message)"
        except Exception:  # noqa: BLE001 - its __str__ is the learner's code too
            message = "(a message that cannot be shown)"
        return f"your {name} raised {type(error).__name__}: {message}"
    if not isinstance(answer, bool):
        try:
            shown = repr(answer)[:60]
        except Exception:  # noqa: BLE001 - even its repr is the learner's code
            shown = f"a {type(answer).__name__}"
        return f"your {name} returned {shown}, not True or False"
    return answer


def _check_validity(path: Sequence[CertView], at: dt.datetime, checks: CertificateChecks) -> CheckResult:
    within = checks.within_validity
    theirs = within is not LIBRARY_CHECKS.within_validity
    failures, details, overruled = [], [], []
    for cert in path:
        window = f"{cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M} UTC"
        details.append(f"{cert.name}: {window}")
        answer = _ask(within, "within_validity", cert.not_before, cert.not_after, at)
        if isinstance(answer, str):
            failures.append((cert.name, f"{answer} (asked about {cert.name}, {window})", CertificateUnknown))
            continue
        library = LIBRARY_CHECKS.within_validity(cert.not_before, cert.not_after, at)
        if answer:
            if not library:
                overruled.append(f"{cert.name} is outside its window ({window})")
            continue
        # Refused: the alert says which end of the window ``at`` is past, as the library's own check does.
        if at > cert.not_after:
            why, error = f"{cert.name} expired on {cert.not_after:%Y-%m-%d %H:%M} UTC", CertificateExpired
        elif at < cert.not_before:
            why, error = f"{cert.name} is not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC", BadCertificate
        else:
            why, error = f"{cert.name} is not valid at {at:%Y-%m-%d %H:%M:%S} UTC", BadCertificate
        if theirs:
            why = f"your within_validity said {cert.name} ({window}) is not valid at {at:%Y-%m-%d %H:%M:%S} UTC"
            if library:
                why += "; the library's check says it is"
        failures.append((cert.name, why, error))
    passed = f"{len(path)} certificate(s) valid at {at:%Y-%m-%d %H:%M} UTC"
    if theirs:
        passed = f"your within_validity said {len(path)} certificate(s) are valid at {at:%Y-%m-%d %H:%M} UTC"
        if overruled:
            passed += f"; the library's check disagrees: {overruled[0]}"
            details.append("the library's check: " + "; ".join(overruled))
    return _result(Check.VALIDITY, failures, passed, details)


def _check_basic_constraints(path: Sequence[CertView], anchored: bool) -> CheckResult:
    failures, details = [], []
    leaf = path[0]
    if len(path) > 1 and leaf.basic_constraints is not None and leaf.basic_constraints.ca:
        failures.append((leaf.name, f"the leaf {leaf.name} is a CA certificate (cA=TRUE), not an end entity",
                         BadCertificate))
    for position, issuer in enumerate(path[1:], start=1):
        is_anchor = anchored and position == len(path) - 1
        bc = issuer.basic_constraints
        if bc is None and is_anchor:
            details.append(f"{issuer.name}: trust anchor without basicConstraints (trusted as configured)")
        elif bc is None or not bc.ca:
            failures.append((issuer.name, f"{issuer.name} issues certificates but is not a CA "
                             f"({'no basicConstraints' if bc is None else 'cA=FALSE'})", UnknownCA))
        else:
            details.append(f"{issuer.name}: cA=TRUE")
    return _result(Check.BASIC_CONSTRAINTS, failures, "every issuer is a CA", details)


def _check_path_length(path: Sequence[CertView]) -> CheckResult:
    failures, details = [], []
    for position, issuer in enumerate(path[1:], start=1):
        bc = issuer.basic_constraints
        if bc is None or bc.path_length is None:
            continue
        # intermediates between this issuer and the leaf; self-issued ones do not count (RFC 5280 6.1.4 (l))
        below = sum(1 for c in path[1:position] if not c.is_self_issued)
        details.append(f"{issuer.name}: pathLenConstraint {bc.path_length}, {below} intermediate(s) below")
        if below > bc.path_length:
            failures.append((issuer.name, f"{issuer.name} allows {bc.path_length} intermediate(s) below it; "
                             f"the path has {below}", UnknownCA))
    return _result(Check.PATH_LENGTH, failures, "no pathLenConstraint exceeded" if details
                   else "no pathLenConstraint on the path", details)


def _leaf_usage_problem(leaf: CertView, purpose: Purpose) -> str | None:
    ku = leaf.key_usage
    if ku is None:
        return None
    key = leaf.certificate.public_key()
    allowed = {"digital_signature"}
    if purpose is Purpose.SERVER and isinstance(key, rsa.RSAPublicKey):
        allowed.add("key_encipherment")  # TLS_RSA_* key exchange encrypts to it
    if isinstance(key, ec.EllipticCurvePublicKey):
        allowed.add("key_agreement")  # static ECDH
    if any(getattr(ku, flag) for flag in allowed):
        return None
    kind = "an RSA" if isinstance(key, rsa.RSAPublicKey) else "an ECDSA" if "key_agreement" in allowed else "this"
    return (f"the leaf {leaf.name}'s keyUsage allows none of {', '.join(sorted(allowed))}, "
            f"which a TLS {purpose.value} with {kind} key needs")


def _check_key_usage(path: Sequence[CertView], purpose: Purpose,
                     crls: Sequence[x509.CertificateRevocationList]) -> CheckResult:
    failures: list[tuple[str, str, type[CertificateError]]] = []
    details: list[str] = []
    problem = _leaf_usage_problem(path[0], purpose)
    if problem:
        failures.append((path[0].name, problem, UnsupportedCertificate))
    for issuer in path[1:]:
        ku = issuer.key_usage
        if ku is None:
            details.append(f"{issuer.name}: no keyUsage (any use)")
            continue
        if not ku.key_cert_sign:
            # OpenSSL 3 takes such a certificate for no CA at all (X509_V_ERR_INVALID_CA): unknown_ca
            failures.append((issuer.name, f"{issuer.name} signs certificates but its keyUsage lacks keyCertSign",
                             UnknownCA))
        if not ku.crl_sign and any(crl.issuer == issuer.subject for crl in crls):
            failures.append((issuer.name, f"{issuer.name} signs a CRL given here but its keyUsage lacks cRLSign",
                             CertificateUnknown))
    return _result(Check.KEY_USAGE, failures, f"key usages allow a TLS {purpose.value} and certificate signing",
                   details)


def _check_extended_key_usage(path: Sequence[CertView], purpose: Purpose, anchored: bool) -> CheckResult:
    failures, details = [], []
    wanted = purpose.eku
    leaf = path[0]
    if leaf.extended_key_usage is None:
        details.append(f"{leaf.name}: no extendedKeyUsage (any purpose, RFC 5280)")
    elif wanted not in leaf.extended_key_usage:
        has_any = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in leaf.extended_key_usage
        why = " (anyExtendedKeyUsage alone does not count for a TLS leaf in the Web PKI)" if has_any else ""
        failures.append((leaf.name, f"the leaf {leaf.name}'s extendedKeyUsage lacks {wanted._name}{why}",
                         UnsupportedCertificate))
    last = len(path) - 1 if anchored else len(path)
    for issuer in path[1:last]:  # a trust anchor's EKU is the store's business, not the path's
        usages = issuer.extended_key_usage
        if usages is not None and wanted not in usages and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
            failures.append((issuer.name, f"the intermediate {issuer.name} is restricted to other purposes "
                             f"(its extendedKeyUsage lacks {wanted._name})", UnsupportedCertificate))
    return _result(Check.EXTENDED_KEY_USAGE, failures, f"the leaf may be a TLS {purpose.value} ({wanted._name})",
                   details)


def _names_of(cert: CertView) -> tuple[list[str], list[object]]:
    return list(cert.dns_names), list(cert.ip_addresses)


def _check_name_constraints(path: Sequence[CertView]) -> CheckResult:
    failures, details = [], []
    for position, ca in enumerate(path[1:], start=1):
        nc = ca.name_constraints
        if nc is None:
            continue
        permitted = list(nc.permitted_subtrees or ())
        excluded = list(nc.excluded_subtrees or ())
        permitted_dns = [g.value for g in permitted if isinstance(g, x509.DNSName)]
        permitted_ip = [g.value for g in permitted if isinstance(g, x509.IPAddress)]
        excluded_dns = [g.value for g in excluded if isinstance(g, x509.DNSName)]
        excluded_ip = [g.value for g in excluded if isinstance(g, x509.IPAddress)]
        others = [g for g in (*permitted, *excluded) if not isinstance(g, x509.DNSName | x509.IPAddress)]
        if others:
            details.append(f"{ca.name}: {len(others)} constraint(s) of other name types not evaluated")
        for below in path[:position]:
            if below is not path[0] and below.is_self_issued:
                continue
            dns_names, ips = _names_of(below)
            for name in dns_names:
                if permitted_dns and not any(names.dns_in_subtree(name, c) for c in permitted_dns):
                    failures.append((below.name, f"{below.name}'s DNS name {name!r} is outside {ca.name}'s "
                                     f"permitted subtrees ({', '.join(permitted_dns[:3])})", CertificateUnknown))
                reach = names.wildcard_reaches if name.startswith("*.") else names.dns_in_subtree
                hit = next((c for c in excluded_dns if reach(name, c)), None)
                if hit is not None:
                    failures.append((below.name, f"{below.name}'s DNS name {name!r} is in {ca.name}'s excluded "
                                     f"subtree {hit!r}", CertificateUnknown))
            for address in ips:
                assert isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
                if permitted_ip and not any(address in n for n in permitted_ip):
                    failures.append((below.name, f"{below.name}'s IP address {address} is outside {ca.name}'s "
                                     "permitted ranges", CertificateUnknown))
                if any(address in n for n in excluded_ip):
                    failures.append((below.name, f"{below.name}'s IP address {address} is in {ca.name}'s "
                                     "excluded ranges", CertificateUnknown))
        details.append(f"{ca.name}: permits {len(permitted)}, excludes {len(excluded)} subtree(s)")
    if not details:
        return CheckResult(Check.NAME_CONSTRAINTS, Status.PASS, "no CA on the path constrains names")
    return _result(Check.NAME_CONSTRAINTS, failures, "every name is within its CAs' constraints", details)


def _check_host(leaf: CertView, host: str | None, checks: CertificateChecks) -> CheckResult:
    if host is None:
        return CheckResult(Check.HOST_NAME, Status.NOT_CHECKED, "no host name or IP address to check")
    match = names.match_host(host, leaf.dns_names, leaf.ip_addresses, has_san=leaf.has_san)
    if checks.host_matches is LIBRARY_CHECKS.host_matches:  # names.host_matches is match_host's verdict
        if match.matched:
            return CheckResult(Check.HOST_NAME, Status.PASS, f"{leaf.name}: {match.reason}")
        return CheckResult(Check.HOST_NAME, Status.FAIL, f"{leaf.name} is not for {host!r}: {match.reason}",
                           leaf.name, (), BadCertificate)
    # A learner's function decides, on plain values (fresh lists: what it does to them stays with it).
    dns_names, ip_addresses = list(leaf.dns_names), [str(a) for a in leaf.ip_addresses]
    more = len(dns_names) + len(ip_addresses) - 5
    shown = ", ".join(repr(n) for n in [*dns_names, *ip_addresses][:5]) + (f" and {more} more" if more > 0 else "")
    details = (f"{leaf.name}: subjectAltName {shown or 'absent or empty'}", f"the library's check: {match.reason}")
    answer = _ask(checks.host_matches, "host_matches", host, dns_names, ip_addresses)
    if isinstance(answer, str):
        return CheckResult(Check.HOST_NAME, Status.FAIL, f"{answer} (asked about {leaf.name} and the host {host!r})",
                           leaf.name, details, CertificateUnknown)
    if answer:
        disagree = "" if match.matched else f"; the library's check disagrees: {match.reason}"
        return CheckResult(Check.HOST_NAME, Status.PASS, f"your host_matches said {leaf.name} is for {host!r}"
                           f"{disagree}", None, details)
    disagree = f"; the library's check says it is: {match.reason}" if match.matched else ""
    return CheckResult(Check.HOST_NAME, Status.FAIL, f"your host_matches said {leaf.name} is not for {host!r}"
                       f"{disagree}", leaf.name, details, BadCertificate)


def _check_revocation(path: Sequence[CertView], at: dt.datetime,
                      crls: Sequence[x509.CertificateRevocationList], ocsp_responses: Sequence[ocsp.OCSPResponse],
                      stapled: ocsp.OCSPResponse | None, policy: RevocationPolicy) -> CheckResult:
    if not (crls or ocsp_responses or stapled is not None) and policy is not RevocationPolicy.HARD_FAIL:
        return CheckResult(Check.REVOCATION, Status.NOT_CHECKED, "no CRL or OCSP response given "
                           f"(policy {policy.value}: not checked)")
    failures: list[tuple[str, str, type[CertificateError]]] = []
    details: list[str] = []
    answered = 0
    links = list(zip(path, path[1:], strict=False))
    for cert, issuer in links:
        answer = answer_for(cert, issuer, at=at, crls=crls, ocsp_responses=ocsp_responses,
                            stapled=stapled if cert is path[0] else None)
        details.append(answer.reason)
        if answer.answer is Answer.GOOD:
            answered += 1
        elif answer.answer is Answer.REVOKED:
            failures.append((cert.name, answer.reason, CertificateRevoked))
        elif answer.answer is Answer.FORGED:
            failures.append((cert.name, answer.reason, BadCertificate))
        elif answer.answer is Answer.STALE and policy is not RevocationPolicy.SOFT_FAIL:
            failures.append((cert.name, f"{answer.reason} (policy {policy.value})", CertificateExpired))
        elif answer.answer is Answer.NONE and policy is RevocationPolicy.HARD_FAIL:
            failures.append((cert.name, f"{answer.reason} (policy {policy.value})", UnknownCA))
    if failures:
        return _result(Check.REVOCATION, failures, "", details)
    if not answered:
        return CheckResult(Check.REVOCATION, Status.NOT_CHECKED, f"no usable answer for any certificate "
                           f"(policy {policy.value}): {details[0] if details else 'nothing to check'}",
                           None, tuple(details))
    unchecked = len(links) - answered
    tail = f"; {unchecked} without an answer (policy {policy.value})" if unchecked else ""
    return CheckResult(Check.REVOCATION, Status.PASS, f"{answered} certificate(s) not revoked{tail}", None,
                       tuple(details))


def _check_critical(path: Sequence[CertView]) -> CheckResult:
    failures, details = [], []
    for cert in path:
        if cert.unknown_critical:
            failures.append((cert.name, f"{cert.name} has a critical extension we do not apply "
                             f"({', '.join(cert.unknown_critical[:3])})", CertificateUnknown))
    return _result(Check.CRITICAL_EXTENSIONS, failures, "every critical extension is understood", details)


@dataclass(frozen=True)
class _Inputs:
    purpose: Purpose
    host: str | None
    at: dt.datetime
    crls: tuple[x509.CertificateRevocationList, ...]
    ocsp_responses: tuple[ocsp.OCSPResponse, ...]
    stapled: ocsp.OCSPResponse | None
    policy: RevocationPolicy
    checks: CertificateChecks


def _run_checks(
    path: Sequence[CertView], anchored: bool, path_result: CheckResult, inputs: _Inputs
) -> tuple[CheckResult, ...]:
    return (
        path_result,
        _check_signature(path),
        _check_validity(path, inputs.at, inputs.checks),
        _check_basic_constraints(path, anchored),
        _check_path_length(path),
        _check_key_usage(path, inputs.purpose, inputs.crls),
        _check_extended_key_usage(path, inputs.purpose, anchored),
        _check_name_constraints(path),
        _check_host(path[0], inputs.host, inputs.checks),
        _check_revocation(path, inputs.at, inputs.crls, inputs.ocsp_responses, inputs.stapled,
                          inputs.policy),
        _check_critical(path),
    )


def validate(
    leaf: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate] = (),
    trust_anchors: Sequence[x509.Certificate],
    purpose: Purpose | str = Purpose.SERVER,
    at: dt.datetime | None = None,
    host: str | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp_responses: Sequence[ocsp.OCSPResponse] = (),
    stapled_ocsp: ocsp.OCSPResponse | None = None,
    revocation_policy: RevocationPolicy | str = RevocationPolicy.REQUIRE_FRESH,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    checks: CertificateChecks = LIBRARY_CHECKS,
) -> ValidationReport:
    """Validate ``leaf`` for ``purpose`` at ``at`` (default: now, UTC; the report records it).

    ``intermediates`` is an unordered pool of untrusted certificates, ``trust_anchors`` the certificates
    trusted as configured; ``host`` (a DNS name, or an IP address when it parses as one) is checked
    when given; ``max_depth`` counts intermediates (0: the leaf is issued directly by an anchor).
    ``checks`` holds the functions that decide the host_name and validity checks (a learner's own:
    :mod:`handshake_lib.pki.checks`); TypeError if it is not a :class:`CertificateChecks`.
    Raises :class:`CertificateDecodeError` when the leaf or an anchor does not parse (pool certificates
    that do not parse are skipped, and said so in the attempts), ValueError for a bad argument.
    """
    purpose = Purpose(purpose)
    policy = RevocationPolicy(revocation_policy)
    if not isinstance(checks, CertificateChecks):
        raise TypeError(f"checks must be a CertificateChecks (pki.checks), not {type(checks).__name__}: "
                        "CertificateChecks(host_matches=your_function)")
    if max_depth < 0 or max_candidates < 1:
        raise ValueError("max_depth must be >= 0 and max_candidates >= 1")
    when = at if at is not None else dt.datetime.now(dt.UTC)
    if when.tzinfo is None:  # a naive time is UTC, as cryptography's verifier takes it
        when = when.replace(tzinfo=dt.UTC)
    when = when.astimezone(dt.UTC)
    if len(intermediates) > MAX_POOL_CERTIFICATES or len(trust_anchors) > MAX_POOL_CERTIFICATES:
        raise CertificateDecodeError(f"more than {MAX_POOL_CERTIFICATES} intermediates or trust anchors")
    inputs = _Inputs(purpose, host, when, tuple(crls), tuple(ocsp_responses), stapled_ocsp, policy, checks)
    leaf_view = CertView.read(leaf, "leaf")
    anchors = [CertView.read(a, f"trust anchor #{n + 1}") for n, a in enumerate(trust_anchors)]

    search = PathSearch()
    best: tuple[int, tuple[CertView, ...], tuple[CheckResult, ...]] | None = None
    attempts: list[PathAttempt] = []
    for path in build_paths(leaf_view, list(intermediates), anchors, at=when, max_depth=max_depth,
                            max_candidates=max_candidates, search=search):
        found = CheckResult(Check.PATH, Status.PASS, f"{len(path) - 2 if len(path) > 1 else 0} intermediate(s) "
                            f"to the trust anchor {path[-1].name}")
        results = _run_checks(path, True, found, inputs)
        failed = [r.check.value for r in results if r.status is Status.FAIL]
        attempts.append(PathAttempt(tuple(c.name for c in path),
                                    "valid" if not failed else "reaches a trust anchor; fails " + ", ".join(failed)))
        if best is None or len(failed) < best[0]:
            best = (len(failed), path, results)
        if not failed:
            break
    for dead_path, why in search.dead_ends[:20]:
        attempts.append(PathAttempt(tuple(c.name for c in dead_path), why))
    if search.stopped:
        attempts.append(PathAttempt((), search.stopped))

    if best is not None:
        path, results = best[1], best[2]
    else:
        # No path reaches an anchor: report the longest dead end, and run the checks on what we have.
        dead = [p for p, _ in search.dead_ends if p]
        path = max(dead, key=len) if dead else (leaf_view,)
        why = next((w for p, w in search.dead_ends if p == path), "no issuer found")
        if search.stopped:
            why = f"{why}; {search.stopped}"
        failed_path = CheckResult(Check.PATH, Status.FAIL, f"no path to a trust anchor: {why}", path[-1].name,
                                  tuple(a.outcome for a in attempts[:10]), UnknownCA)
        results = _run_checks(path, False, failed_path, inputs)
    return ValidationReport(
        profile=PROFILE,
        purpose=purpose,
        host=host,
        at=when,
        path=tuple(c.certificate for c in path),
        path_names=tuple(c.name for c in path),
        attempts=tuple(attempts),
        checks=results,
        learner_functions=tuple(checks.replaced()),
    )

