"""Our certificate validator (handshake_lib.pki.validate): each check alone, path building, bad input,
and agreement with cryptography's verifier and ``openssl verify`` on the same chains.

The corpus is tests/pki_cases.py: each case is a chain built to be valid, or to break exactly one
check.  Where the other validators legitimately disagree (RFC 5280 software versus the Web PKI profile
we teach, or a question they do not answer), :data:`DIFFERENCES` says so by name, and the test checks
that the difference is still there, so the record stays true.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib import errors
from handshake_lib.pki import names
from handshake_lib.pki import validate as v
from handshake_lib.pki.names import match_host
from tests.conftest import require
from tests.pki_cases import AT, DAY, Keys, cert, corpus, crl

KEYS = Keys()
CASES = corpus(KEYS)
REVOCATION_DATA = {n for n, c in CASES.items() if c.crls or c.ocsp or c.stapled}


def run(case, **overrides) -> v.ValidationReport:
    arguments = dict(intermediates=case.pool, trust_anchors=case.anchors, purpose=case.purpose, at=AT,
                     host=case.host, crls=case.crls, ocsp_responses=case.ocsp, stapled_ocsp=case.stapled,
                     max_depth=case.max_depth)
    arguments.update(overrides)
    return v.validate(case.leaf, **arguments)


# -- each check alone -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_fails_exactly_the_checks_it_breaks(name):
    case = CASES[name]
    report = run(case)
    not_checked = set(case.not_checked)
    if case.host is None:
        not_checked.add("host_name")
    if name not in REVOCATION_DATA:
        not_checked.add("revocation")
    expected = {check.value: "pass" for check in v.Check}
    expected.update({c: "not checked" for c in not_checked})
    expected.update({c: "fail" for c in case.fails})
    assert report.status() == expected, report.summary()
    assert [c.check for c in report.checks] == list(v.Check)  # one entry per check, in order
    assert report.valid is case.valid and report.profile == v.PROFILE and report.at == AT
    if case.fails:
        first = report.failures[0]
        assert case.reason in first.reason, first.reason
        assert first.certificate is not None  # the reason names the certificate it is about
        error = report.error()
        assert isinstance(error, errors.CertificateError) and error.report is report
    else:
        assert report.error() is None and report.verdict == "valid"


def test_every_check_fails_alone_somewhere_in_the_corpus():
    alone = {next(iter(c.fails)) for c in CASES.values() if len(c.fails) == 1}
    assert alone == {check.value for check in v.Check}


ALERTS = {
    "expired_leaf": errors.CertificateExpired,
    "not_yet_valid_leaf": errors.BadCertificate,
    "untrusted_root": errors.UnknownCA,
    "missing_intermediate": errors.UnknownCA,
    "intermediate_not_ca": errors.UnknownCA,
    "path_length_exceeded": errors.UnknownCA,
    "bad_signature": errors.BadCertificate,
    "wrong_host": errors.BadCertificate,
    "wrong_eku_client_only": errors.UnsupportedCertificate,
    "unknown_critical_extension": errors.CertificateUnknown,
    "ca_without_key_cert_sign": errors.UnknownCA,
    "name_constraints_excluded": errors.CertificateUnknown,
    "revoked_leaf_crl": errors.CertificateRevoked,
    "revoked_stapled": errors.CertificateRevoked,
    "stale_crl": errors.CertificateExpired,
}


@pytest.mark.parametrize(("name", "alert"), sorted(ALERTS.items()))
def test_a_failure_maps_to_the_alert_openssl_sends(name, alert):
    error = run(CASES[name]).error()
    assert type(error) is alert
    assert error.tls_alert == alert.tls_alert


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.purpose == "server" and c.host
                                        and n not in REVOCATION_DATA and c.max_depth == 8))
def test_the_tls_client_refuses_with_the_validators_own_error_and_report(name):
    """tls/verify.py is the TLS client's one call into this validator: same verdict, same alert, the report
    attached to the exception (cryptography's verifier is only the tests' second opinion now)."""
    from handshake_lib.tls.verify import verify_server_chain

    case = CASES[name]
    ours = run(case).error()
    try:
        path = verify_server_chain([case.leaf, *case.pool], case.host, case.anchors, now=AT)
    except errors.CertificateError as error:
        assert ours is not None and type(error) is type(ours), (name, ours, error)
        assert error.report is not None and error.report.status() == run(case).status()
    else:
        assert ours is None and path and path[0] == case.leaf, (name, ours)


def test_certificate_revoked_is_alert_44():
    assert errors.CertificateRevoked.tls_alert == errors.TLSAlert.certificate_revoked == 44


def test_the_report_is_immutable_and_reads_as_text():
    report = run(CASES["expired_leaf"])
    with pytest.raises(AttributeError):
        report.checks = ()  # type: ignore[misc]
    text = report.summary()
    assert "validity" in text and "expired on" in text and text.endswith("verdict: not valid")
    assert report.path_names == ("'www.example.com'", "'Test Intermediate CA'", "'Test Root CA'")


def test_the_report_as_json_data():
    data = run(CASES["revoked_leaf_crl"]).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["verdict"] == "not valid" and data["profile"] == v.PROFILE
    revocation = next(c for c in data["checks"] if c["check"] == "revocation")
    assert revocation["status"] == "fail" and revocation["alert"] == "certificate_revoked"
    assert revocation["certificate"] == "'www.example.com'"


def test_the_course_pki_server_certificate_validates_now(course_pki, server_certificate):
    anchors = [course_pki.root.certificate]
    for host in ("localhost", "127.0.0.1"):
        report = v.validate(server_certificate.certificate, trust_anchors=anchors, host=host)
        assert report.valid, report.summary()
        assert abs(report.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)  # the default time is now
    wrong = v.validate(server_certificate.certificate, trust_anchors=anchors, host="127.0.0.2")
    assert wrong.status()["host_name"] == "fail"
    later = v.validate(server_certificate.certificate, trust_anchors=anchors, host="localhost",
                       at=server_certificate.certificate.not_valid_after_utc + dt.timedelta(seconds=1))
    assert type(later.error()) is errors.CertificateExpired


@pytest.mark.parametrize(
    ("name", "constraint", "inside"),
    [
        ("www.example.com", "example.com", True),
        ("example.com", "example.com", True),
        ("example.com", ".example.com", False),  # a leading dot: only names below it
        ("a.example.com", ".example.com", True),
        ("badexample.com", "example.com", False),  # a label boundary, not a string suffix
        ("WWW.EXAMPLE.COM.", "example.com", True),
        ("anything.org", "", True),
    ],
)
def test_dns_name_constraint_subtrees(name, constraint, inside):
    assert names.dns_in_subtree(name, constraint) is inside


def test_a_wildcard_reaches_an_excluded_name_one_label_below():
    assert names.wildcard_reaches("*.example.com", "secret.example.com")
    assert names.wildcard_reaches("*.example.com", "example.com")
    assert not names.wildcard_reaches("*.example.com", "a.secret.example.com")
    assert not names.wildcard_reaches("*.example.com", "example.org")


# -- path building -----------------------------------------------------------------------------------


def test_path_building_passes_over_an_expired_copy_of_the_intermediate():
    report = run(CASES["valid_alternative_to_expired_intermediate"])
    assert report.valid
    assert report.path[1].not_valid_after_utc > AT


def test_path_building_passes_over_an_untrusted_cross_signature():
    report = run(CASES["valid_alternative_to_untrusted_cross_sign"])
    assert report.valid
    assert report.path[-1].subject == CASES["valid_alternative_to_untrusted_cross_sign"].anchors[0].subject


def test_path_building_keeps_the_best_attempt_and_lists_the_others():
    case = CASES["valid_server_ecdsa"]
    expired = cert("Test Intermediate CA", KEYS.ec[1], case.anchors[0], KEYS.ec[0], ca=True,
                   not_before=AT - 90 * DAY, not_after=AT - DAY)
    report = run(case, intermediates=[expired])
    assert report.status()["validity"] == "fail" and report.status()["path"] == "pass"
    assert report.attempts[0].outcome == "reaches a trust anchor; fails validity"


def test_a_cycle_of_cross_signed_cas_ends():
    report = run(CASES["cycle_of_cross_signed_cas"])
    assert report.result("path").status is v.Status.FAIL
    assert any("cycle" in a.outcome for a in report.attempts)


def test_max_depth_counts_intermediates():
    case = CASES["valid_server_ecdsa"]  # one intermediate
    assert run(case, max_depth=1).valid
    report = run(case, max_depth=0)
    assert report.result("path").status is v.Status.FAIL and "max_depth" in report.result("path").reason
    assert run(CASES["valid_leaf_from_root"], max_depth=0).valid


def test_a_thousand_bad_candidates_are_bounded_by_max_candidates():
    case = CASES["valid_server_ecdsa"]
    root = case.anchors[0]
    forged = [cert("Test Intermediate CA", KEYS.ec[1], root, KEYS.ec[0], ca=True, sign_with=KEYS.ec[7])
              for _ in range(1000)]
    report = run(case, intermediates=forged, max_candidates=20)
    assert report.result("signature").status is v.Status.FAIL
    assert report.attempts[-1].outcome == "gave up after trying 20 candidate issuers"
    # each complete path costs two tries: a forged intermediate, then the trust anchor above it
    assert len([a for a in report.attempts if a.outcome.startswith("reaches")]) == 10


# -- host names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "dns", "matched"),
    [
        ("www.example.com", ["www.example.com"], True),
        ("WWW.EXAMPLE.COM.", ["www.example.com"], True),  # case and the trailing dot do not count
        ("www.example.com", ["www.example.com."], True),
        ("a.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], False),  # one label only
        ("example.com", ["*.example.com"], False),
        ("a.example.com", ["a.*.com"], False),
        ("foo.example.co.uk", ["*.example.co.uk"], True),
        ("example.co.uk", ["*.co.uk"], False),  # public suffix
        ("github.io", ["*.io"], False),
        ("127.0.0.1", ["127.0.0.1"], False),  # an address never matches a DNS name
    ],
)
def test_host_name_rules(host, dns, matched):
    assert match_host(host, dns, [], has_san=True).matched is matched


def test_an_ip_address_matches_only_an_ip_san():
    assert match_host("10.0.0.1", [], [ipaddress.ip_address("10.0.0.1")], has_san=True).matched
    assert not match_host("10.0.0.1", ["10.0.0.1"], [], has_san=True).matched
    assert match_host("::1", [], [ipaddress.ip_address("0::1")], has_san=True).matched


# -- revocation policy -----------------------------------------------------------------------------------


def test_revocation_policy_decides_missing_and_stale_answers():
    stale = CASES["stale_crl"]
    assert run(stale, revocation_policy="soft-fail").result("revocation").status is v.Status.PASS  # root's CRL
    assert run(stale).result("revocation").status is v.Status.FAIL  # the default, require-fresh
    plain = CASES["valid_server_ecdsa"]
    assert run(plain).result("revocation").status is v.Status.NOT_CHECKED
    hard = run(plain, revocation_policy=v.RevocationPolicy.HARD_FAIL)
    assert hard.result("revocation").status is v.Status.FAIL and type(hard.error()) is errors.UnknownCA
    leaf_only = CASES["valid_ocsp_good"]  # OCSP for the leaf, nothing for the intermediate
    assert run(leaf_only).result("revocation").status is v.Status.PASS
    assert "1 without an answer" in run(leaf_only).result("revocation").reason
    assert run(leaf_only, revocation_policy="hard-fail").result("revocation").status is v.Status.FAIL


# -- bad input -----------------------------------------------------------------------------------------------


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        b"\x30\x82\xff\xff" + b"\x00" * 10,  # a length that runs past the end
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30" * 5000,  # nesting without end
        b"",
        b"-----BEGIN CERTIFICATE-----\n" + b"A" * (v.MAX_INPUT_BYTES + 1),
    ],
    ids=["garbage", "long-length", "bad-pem", "deep-nesting", "empty", "oversized"],
)
def test_garbage_is_a_typed_error(data):
    with pytest.raises(errors.CertificateDecodeError):
        v.load_certificates(data)


def test_truncated_certificates_are_typed_errors():
    der = CASES["valid_server_ecdsa"].leaf.public_bytes(Encoding.DER)
    for end in range(0, len(der), 7):
        with pytest.raises(errors.CertificateDecodeError):
            v.load_certificates(der[:end] or b"\x30")
    pem = _pem(CASES["valid_server_ecdsa"].leaf)
    with pytest.raises(errors.CertificateDecodeError):
        v.load_certificates(pem[: len(pem) // 2])


def test_more_certificates_than_the_cap_is_a_typed_error():
    pem = _pem(CASES["valid_server_ecdsa"].leaf)
    with pytest.raises(errors.CertificateDecodeError, match="more than 1000 certificates"):
        v.load_certificates(pem * (v.MAX_CERTIFICATES_PER_INPUT + 1))


def test_thousands_of_sans_are_refused_in_one_line():
    case = CASES["valid_server_ecdsa"]
    leaf = cert("www.example.com", KEYS.ec[2], case.pool[0], KEYS.ec[1],
                sans=[f"h{n}.example.com" for n in range(3000)])
    with pytest.raises(errors.CertificateDecodeError, match="has 3000 subjectAltName entries; at most 1000"):
        v.validate(leaf, intermediates=case.pool, trust_anchors=case.anchors, at=AT)


def test_a_huge_extension_is_refused():
    case = CASES["valid_server_ecdsa"]
    blob = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x04\x00" * 40000)
    leaf = cert("www.example.com", KEYS.ec[2], case.pool[0], KEYS.ec[1], extra=[(blob, False)])
    with pytest.raises(errors.CertificateDecodeError, match="certificates over 65536 bytes are not read"):
        v.validate(leaf, intermediates=case.pool, trust_anchors=case.anchors, at=AT)


def test_deep_nesting_inside_a_subject_alt_name_is_a_failing_check():
    # An otherName holding 5,000 nested SEQUENCEs: cryptography keeps it as bytes, we never recurse into it.
    inner = b"\x05\x00"
    for _ in range(5000):
        inner = _header(0x30, len(inner)) + inner
    other = b"\x06\x03\x2a\x03\x04" + _header(0xA0, len(inner)) + inner
    general_name = _header(0xA0, len(other)) + other
    raw = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
                                     _header(0x30, len(general_name)) + general_name)
    case = CASES["valid_server_ecdsa"]
    leaf = cert("www.example.com", KEYS.ec[2], case.pool[0], KEYS.ec[1], sans=[], extra=[(raw, False)])
    report = v.validate(leaf, intermediates=case.pool, trust_anchors=case.anchors, at=AT, host=case.host)
    assert report.status()["host_name"] == "fail" and len(report.failures) == 1


def test_too_many_name_constraint_subtrees_are_refused():
    case = CASES["valid_server_ecdsa"]
    subtrees = [x509.DNSName(f"d{n}.example") for n in range(200)]
    constrained = cert("Constrained CA", KEYS.ec[4], case.anchors[0], KEYS.ec[0], ca=True,
                       name_constraints=x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None))
    leaf = cert("www.example.com", KEYS.ec[2], constrained, KEYS.ec[4])
    report = v.validate(leaf, intermediates=[constrained], trust_anchors=case.anchors, at=AT)
    assert report.status()["path"] == "fail"  # the only candidate issuer was skipped
    assert any("200 name constraint subtrees" in a.outcome for a in report.attempts)


def test_a_pool_certificate_that_does_not_parse_is_skipped():
    case = CASES["valid_server_ecdsa"]
    broken = x509.load_der_x509_certificate(_duplicate_first_extension(case.pool[0].public_bytes(Encoding.DER)))
    report = run(case, intermediates=[broken, *case.pool])
    assert report.valid
    assert any("does not parse" in a.outcome for a in report.attempts)


def test_a_pool_of_a_thousand_unrelated_certificates_is_indexed_not_read():
    case = CASES["valid_server_ecdsa"]
    other = CASES["untrusted_root"].anchors[0].public_bytes(Encoding.DER)
    garbled = [x509.load_der_x509_certificate(_duplicate_first_extension(other)) for _ in range(999)]
    report = run(case, intermediates=[*garbled, *case.pool])
    assert report.valid  # none of the 999 was a candidate issuer, so none was read past its subject
    assert not any("skipped" in a.outcome for a in report.attempts)
    with pytest.raises(errors.CertificateDecodeError, match="more than 1000"):
        run(case, intermediates=[*garbled, *case.pool, *case.pool])


def test_bad_crl_and_ocsp_input_are_typed_errors():
    for loader in (v.load_crl, v.load_ocsp_response):
        for data in (b"", b"junk", b"\x30\x03\x02\x01", b"\x30" * (5 * 1024 * 1024)):
            with pytest.raises(errors.CertificateDecodeError):
                loader(data)


def test_bad_arguments_are_value_errors():
    case = CASES["valid_server_ecdsa"]
    with pytest.raises(ValueError, match="Purpose"):
        run(case, purpose="email")
    with pytest.raises(ValueError):
        run(case, max_depth=-1)
    naive = run(case, at=AT.replace(tzinfo=None))  # a naive time is UTC
    assert naive.at == AT and naive.valid


# -- mutated certificates (hypothesis) ----------------------------------------------------------------------


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(header length, content length, total length) of the DER element at ``at``."""
    first = data[at + 1]
    if first < 0x80:
        return 2, first, 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[at + 2 : at + 2 + count], "big")
    return 2 + count, length, 2 + count + length


def _header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes([tag, length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(body)]) + body


def _duplicate_first_extension(der: bytes) -> bytes:
    """The certificate with its first extension written twice (the lengths around it fixed up)."""
    head, _, _ = _tlv(der, 0)
    tbs_at = head
    tbs_head, tbs_len, tbs_total = _tlv(der, tbs_at)
    position = tbs_at + tbs_head
    while der[position] != 0xA3:  # walk the TBSCertificate's fields to [3] extensions
        position += _tlv(der, position)[2]
    a3_head, _, a3_total = _tlv(der, position)
    seq_at = position + a3_head
    seq_head, seq_len, _ = _tlv(der, seq_at)
    first_at = seq_at + seq_head
    first = der[first_at : first_at + _tlv(der, first_at)[2]]
    extensions = der[first_at : first_at + seq_len] + first
    a3 = _header(0xA3, len(_header(0x30, len(extensions))) + len(extensions)) + _header(0x30, len(extensions))
    a3 += extensions
    tbs_body = der[tbs_at + tbs_head : position] + a3 + der[position + a3_total : tbs_at + tbs_total]
    tbs = _header(0x30, len(tbs_body)) + tbs_body
    rest = tbs + der[tbs_at + tbs_total :]
    return _header(0x30, len(rest)) + rest


LEAF_DER = CASES["valid_crls_good"].leaf.public_bytes(Encoding.DER)
INTER_DER = CASES["valid_crls_good"].pool[0].public_bytes(Encoding.DER)


CRL_DER = CASES["valid_crls_good"].crls[0].public_bytes(Encoding.DER)


@st.composite
def mutations(draw) -> tuple[bytes, bytes, bytes]:
    which = draw(st.sampled_from(["leaf", "intermediate", "crl"]))
    der = {"leaf": LEAF_DER, "intermediate": INTER_DER, "crl": CRL_DER}[which]
    kind = draw(st.sampled_from(["flip", "truncate", "insert"] + (["duplicate"] if which != "crl" else [])))
    if kind == "flip":
        at = draw(st.integers(0, len(der) - 1))
        der = der[:at] + bytes([der[at] ^ draw(st.integers(1, 255))]) + der[at + 1 :]
    elif kind == "truncate":
        der = der[: draw(st.integers(0, len(der) - 1))]
    elif kind == "duplicate":
        der = _duplicate_first_extension(der)
    else:
        at = draw(st.integers(0, len(der)))
        der = der[:at] + draw(st.binary(min_size=1, max_size=8)) + der[at:]
    return (der if which == "leaf" else LEAF_DER, der if which == "intermediate" else INTER_DER,
            der if which == "crl" else CRL_DER)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutated_chains_give_typed_errors_or_failing_checks(chain):
    leaf_der, inter_der, crl_der = chain
    case = CASES["valid_crls_good"]
    try:
        leaf = v.load_certificates(leaf_der)[0]
        pool = v.load_certificates(inter_der)
        crls = [v.load_crl(crl_der), case.crls[1]]
        report = v.validate(leaf, intermediates=pool, trust_anchors=case.anchors, at=AT, host=case.host,
                            crls=crls)
    except errors.CertificateDecodeError as error:
        assert str(error)
        return
    if crl_der != CRL_DER:
        # A changed CRL never vouches for the leaf: it fails its signature (a failing check), or it no
        # longer names the intermediate, and the leaf is left without an answer (the policy's business).
        assert not any("is not on the CRL of 'Test Intermediate CA'" in d for d in report.result("revocation").details)
        return
    assert not report.valid, report.summary()
    assert isinstance(report.error(), errors.CertificateError)


def test_the_duplicated_extension_helper_makes_what_cryptography_refuses():
    duplicated = x509.load_der_x509_certificate(_duplicate_first_extension(LEAF_DER))
    with pytest.raises(x509.DuplicateExtension):
        _ = duplicated.extensions
    with pytest.raises(errors.CertificateDecodeError, match="does not parse"):
        v.validate(duplicated, trust_anchors=CASES["valid_crls_good"].anchors, at=AT)


# -- agreement with cryptography and OpenSSL -----------------------------------------------------------------

# Cases where another validator legitimately says otherwise; the reason is the profile difference.
DIFFERENCES: dict[str, dict[str, str]] = {
    "valid_alternative_to_untrusted_cross_sign": {
        "openssl": "OpenSSL builds one chain from the untrusted pool (first match) and does not backtrack to "
                   "the other copy of the intermediate; RFC 4158 path building, which we do, tries it",
    },
    "wildcard_partial_label": {
        "openssl": "OpenSSL accepts a partial wildcard (w*.example.com) unless NO_PARTIAL_WILDCARDS is set; "
                   "RFC 9525 and the Web PKI refuse it",
    },
    "wildcard_on_public_suffix": {
        "openssl": "OpenSSL only refuses a wildcard with fewer than two dots; *.co.uk passes it",
        "cryptography": "cryptography has no public suffix list",
    },
    "wildcard_on_tld": {"cryptography": "cryptography has no public suffix list: *.com matches example.com"},
    "common_name_only": {"openssl": "OpenSSL falls back to the subject CN when there is no DNS name (RFC 2818); "
                                    "RFC 9525 and the Web PKI never do"},
    "leaf_is_a_ca": {"openssl": "RFC 5280 lets a CA certificate be used as an end entity; the Web PKI "
                                "(and cryptography) do not"},
    "leaf_key_usage_wrong": {"cryptography": "cryptography's verifier does not check the leaf's keyUsage "
                                             "against the TLS purpose; OpenSSL's sslserver purpose does"},
    "client_key_usage_without_digital_signature": {"cryptography": "as leaf_key_usage_wrong, for sslclient"},
}


def _cryptography_says(case) -> bool | None:
    """cryptography's verdict, or None where it has no opinion (revocation, or no host for a server)."""
    if case.crls or case.ocsp or case.stapled is not None or (case.purpose == "server" and case.host is None):
        return None
    builder = PolicyBuilder().store(Store(case.anchors)).time(AT).max_chain_depth(case.max_depth)
    try:
        if case.purpose == "server":
            try:
                subject = IPAddress(ipaddress.ip_address(case.host))
            except ValueError:
                subject = DNSName(case.host)
            builder.build_server_verifier(subject).verify(case.leaf, case.pool)
        else:
            builder.build_client_verifier().verify(case.leaf, case.pool)
    except VerificationError:
        return False
    return True


# OpenSSL's ssl_x509err2alert (ssl/statem/statem_lib.c): the alert an OpenSSL client sends for the
# verification error ``openssl verify`` prints (X509_V_ERR_* numbers); anything else is certificate_unknown.
A = errors.TLSAlert
OPENSSL_ALERTS = {
    2: A.unknown_ca, 3: A.unknown_ca, 7: A.decrypt_error, 8: A.decrypt_error, 9: A.bad_certificate,
    10: A.certificate_expired, 11: A.bad_certificate, 12: A.certificate_expired, 18: A.unknown_ca,
    19: A.unknown_ca, 20: A.unknown_ca, 21: A.unknown_ca, 22: A.unknown_ca, 23: A.certificate_revoked,
    25: A.unknown_ca, 26: A.unsupported_certificate, 27: A.bad_certificate, 28: A.bad_certificate,
    62: A.bad_certificate, 64: A.bad_certificate, 79: A.unknown_ca,
}
# Where our alert is not OpenSSL's for the same chain, and why.
ALERT_DIFFERENCES = {
    "bad_signature": "RFC 5246 names bad_certificate for a signature that does not verify; OpenSSL sends decrypt_error",
    "bad_signature_on_intermediate": "as bad_signature",
    "client_bad_signature": "as bad_signature",
    "crl_bad_signature": "as bad_signature, for the CRL's signature",
}


def _openssl_alert(output: str) -> errors.TLSAlert | None:
    found = re.search(r"error (\d+) at \d+ depth", output)
    return OPENSSL_ALERTS.get(int(found.group(1)), A.certificate_unknown) if found else None


def _openssl_says(case, folder) -> tuple[bool, errors.TLSAlert | None] | None:
    """``openssl verify``'s verdict on the same PEM files and the alert it means, or None where it has no
    opinion (OCSP)."""
    if case.ocsp or case.stapled is not None:
        return None
    openssl = require("openssl", "the validator is checked against openssl verify")

    def write(stem: str, objects) -> str:
        path = folder / f"{stem}.pem"
        path.write_bytes(b"".join(o.public_bytes(Encoding.PEM) for o in objects))
        return str(path)

    command = [openssl, "verify", "-attime", str(int(AT.timestamp())), "-purpose",
               "sslserver" if case.purpose == "server" else "sslclient", "-CAfile", write("ca", case.anchors),
               "-verify_depth", str(case.max_depth)]
    if case.pool:
        command += ["-untrusted", write("untrusted", case.pool)]
    if case.host is not None:
        try:
            ipaddress.ip_address(case.host)
            command += ["-verify_ip", case.host]
        except ValueError:
            command += ["-verify_hostname", case.host]
    if case.crls:  # our cases give a CRL for every issuer, as -crl_check_all wants
        command += ["-crl_check_all", "-CRLfile", write("crls", case.crls)]
    command.append(write("leaf", [case.leaf]))
    finished = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return finished.returncode == 0, _openssl_alert(finished.stdout + finished.stderr)


@pytest.mark.parametrize("name", sorted(CASES))
def test_agreement_with_cryptography_and_openssl(name, tmp_path):
    case = CASES[name]
    report = run(case)
    ours = report.valid
    assert ours is case.valid
    recorded = DIFFERENCES.get(name, {})
    openssl = _openssl_says(case, tmp_path)
    if openssl is not None and not openssl[0] and not ours and "openssl" not in recorded:
        same_alert = openssl[1] == report.error().tls_alert
        assert same_alert is (name not in ALERT_DIFFERENCES), (name, openssl[1], report.error().tls_alert)
    for tool, says in (("cryptography", _cryptography_says(case)),
                       ("openssl", openssl[0] if openssl is not None else None)):
        if says is None:
            assert tool not in recorded
        elif tool in recorded:
            assert says is not ours, f"{name}: {tool} now agrees; drop the recorded difference"
        else:
            assert says is ours, f"{name}: ours says {ours}, {tool} says {says}"


def test_the_corpus_is_large_and_covers_both_purposes():
    assert len(CASES) >= 80
    assert {c.purpose for c in CASES.values()} == {"server", "client"}
    assert sum(c.valid for c in CASES.values()) >= 20


def test_crl_freshness_window_is_inclusive():
    case = CASES["valid_crls_good"]
    inter, root = case.pool[0], case.anchors[0]
    edge = [crl(inter, KEYS.ec[1], last=AT - DAY, next_=AT), crl(root, KEYS.ec[0])]
    assert run(case, crls=edge).valid
    assert not run(case, crls=edge, at=AT + dt.timedelta(seconds=1)).valid
