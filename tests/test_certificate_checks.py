"""Lesson 04's exercise in the loop: the learner's host-name and validity checks decide our validator's checks.

The library's own functions are checked on their own (RFC 9525's host-name rules as a table of cases,
RFC 5280's inclusive validity window).  A correct learner version, written here as a learner would
(plain Python, nothing from handshake_lib), gives the library's report on every course variant.  Then
live: our client with a deliberately wrong check connects where the library's check refuses (the
handshake *succeeds*, which is the proof that the learner's function is what decides), against our
own server and against OpenSSL; a function that raises fails its check with its own message.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time

import pytest

from handshake_lib.errors import (
    BadCertificate,
    CertificateExpired,
    CertificateUnknown,
    PeerAlert,
    TLSAlert,
)
from handshake_lib.net.tls import TLSPageServer, open_tls, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki import CoursePKI, IssuedCertificate
from handshake_lib.pki import names as names_module
from handshake_lib.pki.checks import LIBRARY_CHECKS, CertificateChecks, host_matches, within_validity
from handshake_lib.pki.loading import load_ocsp_response
from handshake_lib.pki.report import Status, ValidationReport
from handshake_lib.pki.validate import validate
from handshake_lib.pki.variants import KeyRing, Scenario, build_all
from handshake_lib.tls.client import TLSClient

UTC = dt.UTC


# -- what a learner writes (standard library only) ---------------------------------------------------------
MY_PUBLIC_SUFFIXES = {"co.uk", "com.au", "github.io"}  # a learner's short list; every single label counts too


def learners_host_matches(host, dns_names, ip_addresses):
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:  # an address matches only an iPAddress entry
        return any(ipaddress.ip_address(entry) == address for entry in ip_addresses)
    host = host.lower().removesuffix(".")
    for name in dns_names:
        name = name.lower().removesuffix(".")
        if name == host:
            return True
        first, _, base = name.partition(".")
        if first != "*" or "*" in base or "." not in base or base in MY_PUBLIC_SUFFIXES:
            continue  # not a wildcard we accept
        label, _, rest = host.partition(".")
        if label and rest == base:
            return True
    return False


def learners_within_validity(not_before, not_after, at):
    return not_before <= at <= not_after


def ignores_the_host(host, dns_names, ip_addresses):
    return bool(dns_names or ip_addresses)  # "it names something, good enough": the bug the lesson shows


def ignores_not_after(not_before, not_after, at):
    return not_before <= at  # forgot the other end of the window


def not_written_yet(*arguments):
    raise NotImplementedError("write me")


LEARNERS = CertificateChecks(host_matches=learners_host_matches, within_validity=learners_within_validity)


# -- the library's own functions ---------------------------------------------------------------------------
HOST_CASES = [
    # host, dNSName entries, iPAddress entries, matches, why
    ("www.shop.example", ["www.shop.example"], [], True, "the same name"),
    ("WWW.Shop.EXAMPLE", ["www.shop.example"], [], True, "case does not matter (host)"),
    ("www.shop.example", ["WWW.SHOP.Example"], [], True, "case does not matter (certificate)"),
    ("www.shop.example.", ["www.shop.example"], [], True, "a trailing dot on the host"),
    ("www.shop.example", ["www.shop.example."], [], True, "a trailing dot in the certificate"),
    ("www.shop.example", ["shop.example"], [], False, "a parent name is another name"),
    ("shop.example", ["www.shop.example"], [], False, "a child name is another name"),
    ("evilshop.example", ["shop.example"], [], False, "a suffix of the host is no match"),
    ("www.shop.example", ["mail.shop.example", "www.shop.example"], [], True, "any entry may match"),
    ("www.shop.example", ["*.shop.example"], [], True, "a wildcard: the whole left-most label"),
    ("WWW.SHOP.EXAMPLE.", ["*.Shop.Example"], [], True, "wildcard, case and trailing dot together"),
    ("a.b.shop.example", ["*.shop.example"], [], False, "a wildcard covers exactly one label"),
    ("shop.example", ["*.shop.example"], [], False, "a wildcard needs a label to stand for"),
    ("a.b.shop.example", ["*.*.shop.example"], [], False, "only the left-most label may be a wildcard"),
    ("a.www.shop.example", ["a.*.shop.example"], [], False, "a wildcard beyond the left-most label"),
    ("www.shop.example", ["w*.shop.example"], [], False, "a partial-label wildcard (RFC 9525 forbids it)"),
    ("www.shop.example", ["*w.shop.example"], [], False, "a partial-label wildcard, the other side"),
    ("shop.co.uk", ["*.co.uk"], [], False, "a wildcard on a public suffix"),
    ("example.com", ["*.com"], [], False, "a wildcard on a top-level domain"),
    ("www.example.com", ["*.example.com", "*.com"], [], True, "a good wildcard beside a bad one"),
    ("127.0.0.1", [], ["127.0.0.1"], True, "an IPv4 address against an iPAddress entry"),
    ("::1", [], ["::1"], True, "an IPv6 address against an iPAddress entry"),
    ("0:0:0:0:0:0:0:1", [], ["::1"], True, "the same address spelled out"),
    ("127.0.0.1", ["127.0.0.1"], [], False, "an address never matches a dNSName, even one spelled like it"),
    ("127.0.0.2", [], ["127.0.0.1"], False, "another address"),
    ("localhost", [], ["127.0.0.1"], False, "a name never matches an iPAddress entry"),
    ("10.0.0.1", ["*.0.0.1"], [], False, "a wildcard never matches an address"),
    ("www.shop.example", [], [], False, "no subjectAltName: the commonName is not consulted"),
]


@pytest.mark.parametrize(("host", "dns_names", "ip_addresses", "expected", "why"), HOST_CASES,
                         ids=[case[4] for case in HOST_CASES])
def test_the_library_host_check_follows_rfc_9525(host, dns_names, ip_addresses, expected, why) -> None:
    assert host_matches(host, list(dns_names), list(ip_addresses)) is expected, why
    # the learner's version in this file is held to the same table (its suffix list is shorter: none here)
    assert learners_host_matches(host, list(dns_names), list(ip_addresses)) is expected, why


def test_the_library_host_check_is_match_host_on_plain_values() -> None:
    assert LIBRARY_CHECKS.host_matches is names_module.host_matches
    # an iPAddress entry that does not parse matches nothing, and breaks nothing
    assert host_matches("127.0.0.1", [], ["not an address", "127.0.0.1"]) is True
    assert host_matches("127.0.0.1", [], ["not an address"]) is False
    # a host longer than any DNS name (253) is refused before any comparison
    assert host_matches("a" * 300 + ".example", ["a" * 300 + ".example"], []) is False


NB = dt.datetime(2026, 1, 1, tzinfo=UTC)
NA = dt.datetime(2026, 4, 1, tzinfo=UTC)
TICK = dt.timedelta(microseconds=1)


@pytest.mark.parametrize(("at", "expected"), [
    (NB - TICK, False), (NB, True), (NB + dt.timedelta(days=30), True), (NA, True), (NA + TICK, False),
], ids=["before notBefore", "at notBefore", "inside", "at notAfter", "after notAfter"])
def test_the_library_validity_window_is_inclusive_at_both_ends(at, expected) -> None:
    assert within_validity(NB, NA, at) is expected
    assert LIBRARY_CHECKS.within_validity is within_validity


def test_checks_are_a_frozen_object_of_functions() -> None:
    assert LIBRARY_CHECKS.replaced() == [] and CertificateChecks() == LIBRARY_CHECKS
    mine = LIBRARY_CHECKS.replace(host_matches=learners_host_matches)
    assert mine.replaced() == ["host_matches"] and mine.within_validity is within_validity
    with pytest.raises(TypeError, match="host_matches must be a function"):
        CertificateChecks(host_matches=True)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        mine.host_matches = ignores_the_host  # type: ignore[misc]


# -- a correct learner version gives the library's report on every course variant -----------------------
@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {scenario.name: scenario for scenario in build_all(keys=KeyRing())}


def run(scenario: Scenario, checks: CertificateChecks = LIBRARY_CHECKS) -> ValidationReport:
    stapled = load_ocsp_response(scenario.ocsp) if scenario.ocsp is not None else None
    return validate(
        scenario.leaf, intermediates=scenario.intermediates, trust_anchors=scenario.roots, purpose=scenario.purpose,
        at=scenario.at, host=scenario.host, crls=scenario.crls, stapled_ocsp=stapled, checks=checks,
    )  # fmt: skip


def outcome(report: ValidationReport) -> list[tuple[str, str, str | None, type | None]]:
    return [(c.check.value, c.status.value, c.certificate, c.error) for c in report.checks]


VARIANT_NAMES = [scenario.name for scenario in build_all(keys=KeyRing())]


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_a_correct_learner_check_gives_the_library_report(name: str, scenarios: dict[str, Scenario]) -> None:
    scenario = scenarios[name]
    ours, theirs = run(scenario), run(scenario, LEARNERS)
    assert outcome(theirs) == outcome(ours), theirs.summary()
    assert theirs.path_names == ours.path_names and theirs.verdict == ours.verdict
    assert type(theirs.error()) is type(ours.error())
    assert theirs.learner_functions == ("host_matches", "within_validity") and ours.learner_functions == ()
    # the report says whose function decided, and that nobody disagreed
    for check in ("host_name", "validity"):
        result = theirs.result(check)
        if result.status is not Status.NOT_CHECKED:
            assert result.reason.startswith("your "), result.reason
            assert "library's check" not in result.reason, result.reason
        assert not ours.result(check).reason.startswith("your ")


@pytest.mark.parametrize("name", ["wrong-host", "wildcard-two-labels", "wildcard-public-suffix", "dns-with-ip-san"])
def test_a_wrong_host_check_lets_the_wrong_host_through_and_the_report_says_so(name, scenarios) -> None:
    scenario = scenarios[name]
    assert run(scenario).result("host_name").status is Status.FAIL
    report = run(scenario, CertificateChecks(host_matches=ignores_the_host))
    result = report.result("host_name")
    assert result.status is Status.PASS and report.valid
    assert result.reason.startswith(f"your host_matches said {describe_leaf(report)} is for {scenario.host!r}")
    assert "the library's check disagrees" in result.reason


@pytest.mark.parametrize("name", ["expired", "expired-intermediate", "client-expired"])
def test_a_validity_check_that_ignores_not_after_passes_expired_chains(name, scenarios) -> None:
    scenario = scenarios[name]
    assert isinstance(run(scenario).error(), CertificateExpired)
    report = run(scenario, CertificateChecks(within_validity=ignores_not_after))
    result = report.result("validity")
    assert result.status is Status.PASS and report.valid
    assert "your within_validity said" in result.reason and "the library's check disagrees" in result.reason


def test_a_validity_check_that_refuses_a_good_chain_fails_it_and_says_the_library_disagrees(scenarios) -> None:
    report = run(scenarios["valid-ecdsa"], CertificateChecks(within_validity=lambda nb, na, at: False))
    result = report.result("validity")
    assert result.status is Status.FAIL and result.certificate == report.path_names[0]
    assert result.reason.startswith(f"your within_validity said {report.path_names[0]} (")
    assert "; the library's check says it is (and 2 more)" in result.reason
    assert type(report.error()) is BadCertificate  # in its window: not "expired", which would be a lie


def describe_leaf(report: ValidationReport) -> str:
    return report.path_names[0]


# -- a learner function that raises or answers something else fails its check, never passes --------------
@pytest.mark.parametrize(("function", "said"), [
    (not_written_yet, "your host_matches raised NotImplementedError: write me"),
    (lambda host, dns, ips: None, "your host_matches returned None, not True or False"),
    (lambda host, dns, ips: 1, "your host_matches returned 1, not True or False"),
    (lambda host, dns, ips: "yes", "your host_matches returned 'yes', not True or False"),
])
def test_a_host_check_that_gives_no_bool_fails(function, said, scenarios) -> None:
    report = run(scenarios["valid-ecdsa"], CertificateChecks(host_matches=function))
    result = report.result("host_name")
    assert result.status is Status.FAIL and result.reason.startswith(said), result.reason
    assert isinstance(report.error(), CertificateUnknown) and said in str(report.error())


def test_a_validity_check_that_raises_fails_for_every_certificate(scenarios) -> None:
    report = run(scenarios["valid-ecdsa"], CertificateChecks(within_validity=not_written_yet))
    result = report.result("validity")
    assert result.status is Status.FAIL and result.certificate == report.path_names[0]
    assert result.reason.startswith("your within_validity raised NotImplementedError: write me (asked about ")
    assert "(and 2 more)" in result.reason and isinstance(report.error(), CertificateUnknown)


def test_an_answer_whose_repr_raises_is_still_a_failing_check(scenarios) -> None:
    class Weird:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    report = run(scenarios["valid-ecdsa"], CertificateChecks(host_matches=lambda host, dns, ips: Weird()))
    assert report.result("host_name").reason.startswith("your host_matches returned a Weird, not True or False")


def test_what_a_learner_function_is_handed_is_plain_values(scenarios) -> None:
    calls = []

    def record(*arguments):
        calls.append(arguments)
        return True

    scenario = scenarios["valid-ipv4"]
    report = run(scenario, CertificateChecks(host_matches=record, within_validity=record))
    (host_call,) = [c for c in calls if isinstance(c[0], str)]
    validity_calls = [c for c in calls if isinstance(c[0], dt.datetime)]
    assert host_call == ("127.0.0.1", ["localhost"], ["127.0.0.1"])
    assert [type(v) for v in host_call[1] + host_call[2]] == [str, str]
    assert len(validity_calls) == len(report.path) == 3
    for not_before, not_after, at in validity_calls:
        assert all(t.tzinfo is not None and t.utcoffset() == dt.timedelta(0) for t in (not_before, not_after, at))
        assert at == scenario.at
    assert [(c[0], c[1]) for c in validity_calls] == [(p.not_valid_before_utc, p.not_valid_after_utc)
                                                      for p in report.path]


def test_what_a_raising_function_says_is_bounded(scenarios) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def long_message(*arguments):
        raise ValueError("x" * 500)

    def unprintable(*arguments):
        raise Unprintable

    reason = run(scenarios["valid-ecdsa"], CertificateChecks(host_matches=long_message)).result("host_name").reason
    assert reason.startswith("your host_matches raised ValueError: " + "x" * 120 + " (asked about")
    reason = run(scenarios["valid-ecdsa"], CertificateChecks(host_matches=unprintable)).result("host_name").reason
    assert reason.startswith("your host_matches raised Unprintable: (a message that cannot be shown)")


def test_checks_must_be_a_certificate_checks_object(scenarios) -> None:
    with pytest.raises(TypeError, match="CertificateChecks"):
        run(scenarios["valid-ecdsa"], learners_host_matches)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CertificateChecks"):
        TLSClient("localhost", verify=False, certificate_checks=learners_host_matches)  # type: ignore[arg-type]


# -- live: the learner's check guards a real connection ---------------------------------------------------
@pytest.fixture(scope="module")
def other_host(course_pki: CoursePKI) -> IssuedCertificate:
    return course_pki.issue_server(("www.other.example",))


@pytest.fixture(scope="module")
def expired_localhost(course_pki: CoursePKI) -> IssuedCertificate:
    now = dt.datetime.now(UTC)
    return course_pki.issue_server(("localhost",), not_before=now - dt.timedelta(days=10),
                                   not_after=now - dt.timedelta(days=1))


def served(server: TLSPageServer, index: int = 0, wait: float = 5.0):
    """The server's record of connection ``index`` once it is over (it ends a moment after our client)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        connections = list(server.connections)
        if len(connections) > index and connections[index].finished:
            return connections[index]
        time.sleep(0.005)
    raise AssertionError(f"connection {index} did not finish within {wait} s")


def get_page(port: int, trusted, checks: CertificateChecks):
    """Connect as localhost with ``checks``, fetch / over the connection; the client core and the body."""
    with open_tls("127.0.0.1", port, "localhost", trusted_certificates=trusted, certificate_checks=checks) as stream:
        stream.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        body = b""
        while b"</html>" not in body.lower() and len(body) < 1 << 16:
            chunk = stream.recv()
            if not chunk:
                break
            body += chunk
        return stream.client, body


LIVE_CASES = {
    # certificate fixture, the wrong learner check, the library's alert
    "wrong host": ("other_host", CertificateChecks(host_matches=ignores_the_host), BadCertificate),
    "expired": ("expired_localhost", CertificateChecks(within_validity=ignores_not_after), CertificateExpired),
}


@pytest.mark.parametrize("case", LIVE_CASES)
def test_live_a_wrong_learner_check_lets_our_client_in_where_the_library_refuses(case, request, course_pki) -> None:
    fixture, wrong, alert = LIVE_CASES[case]
    issued: IssuedCertificate = request.getfixturevalue(fixture)
    trusted = [course_pki.root.certificate]
    with TLSPageServer([issued.der], issued.private_key) as server:
        # the library's checks, and the learner's correct ones: refused, and the alert is on the wire
        for number, checks in enumerate((LIBRARY_CHECKS, LEARNERS)):
            with pytest.raises(alert) as refused:
                open_tls("127.0.0.1", server.port, "localhost", trusted_certificates=trusted, certificate_checks=checks)
            assert refused.value.report is not None and not refused.value.report.valid
            seen = served(server, number).error
            assert isinstance(seen, PeerAlert) and seen.description == alert.tls_alert, seen
        # the wrong learner check: the handshake succeeds and the page comes; the report says who let it in
        client, body = get_page(server.port, trusted, wrong)
        assert client.handshake is not None and b"<html" in body.lower()
        assert served(server, 2).error is None and served(server, 2).handshake is not None
    report = client.certificate_report
    assert report is not None and report.valid and report.learner_functions == tuple(wrong.replaced())
    decided = report.result("host_name" if case == "wrong host" else "validity")
    assert decided.reason.startswith("your ") and "the library's check disagrees" in decided.reason


def test_live_a_learner_check_that_raises_ends_the_handshake_with_its_message(course_pki) -> None:
    issued = course_pki.issue_server(("localhost",))
    trusted = [course_pki.root.certificate]
    with TLSPageServer([issued.der], issued.private_key) as server:
        with pytest.raises(CertificateUnknown, match="your host_matches raised NotImplementedError: write me"):
            open_tls("127.0.0.1", server.port, "localhost", trusted_certificates=trusted,
                     certificate_checks=CertificateChecks(host_matches=not_written_yet))
        seen = served(server).error
        assert isinstance(seen, PeerAlert) and seen.description == TLSAlert.certificate_unknown
        # the same server, the learner's correct check: in
        client, body = get_page(server.port, trusted, LEARNERS)
        assert b"<html" in body.lower() and client.certificate_report.valid


# -- against OpenSSL: the learner's check in our client, OpenSSL as the server ---------------------------
def openssl_serving(issued: IssuedCertificate, tmp_path) -> PythonSSLServer:
    cert_path, key_path = CoursePKI.write_issued(issued, tmp_path)
    context = server_context(cert_path, key_path, ciphers="AES128-GCM-SHA256", maximum_version=ssl.TLSVersion.TLSv1_2)
    return PythonSSLServer(context)


@pytest.mark.parametrize(("case", "openssl_says"),
                         [("wrong host", "bad certificate"), ("expired", "certificate expired")])
def test_openssl_hears_the_library_refuse_and_serves_the_wrong_learner_check(
    case, openssl_says, request, course_pki, tmp_path
) -> None:
    fixture, wrong, alert = LIVE_CASES[case]
    issued: IssuedCertificate = request.getfixturevalue(fixture)
    trusted = [course_pki.root.certificate]
    with openssl_serving(issued, tmp_path) as server:
        for number, checks in enumerate((LIBRARY_CHECKS, LEARNERS)):
            with pytest.raises(alert):
                open_tls("127.0.0.1", server.port, "localhost", trusted_certificates=trusted, certificate_checks=checks)
            assert openssl_says in server.error_of(number, wait=5).lower().replace("_", " ")
        response = tls_get(f"https://localhost:{server.port}/", trusted_certificates=trusted, certificate_checks=wrong)
        assert response.status == 200 and b"Hello from OpenSSL" in response.body
        assert server.connections[2].error is None and server.connections[2].cipher == "AES128-GCM-SHA256"
