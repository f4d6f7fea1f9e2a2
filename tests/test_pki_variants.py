"""The course's certificate factory (``pki/issue.py``, ``pki/revocation_data.py``) and its scenarios
(``pki/variants.py``).

Every scenario is built once per session from one key ring and written to a folder, and two real
validators judge each one with the files on disk (the library's second opinions, the ones lesson 04
shows: ``peers/openssl_verify.py`` and ``pki/second_opinion.py``):

* ``openssl verify`` (the CLI, with ``-attime``, ``-verify_hostname``/``-verify_ip``, ``-purpose``,
  ``-crl_check_all``, ``-untrusted``, ``-CAfile``, ``-x509_strict``, ``-verify_depth``), plus
  ``openssl ocsp -respin`` for a stapled OCSP response, which ``openssl verify`` does not read;
* ``cryptography.x509.verification``, where it has an opinion (it checks no revocation);
* a real TLS handshake through Python's ``ssl`` (OpenSSL, in memory): one end presents the chain, the
  other checks it with the roots, the host name and the CRLs (``peers.openssl_verify.handshake_opinion``).

Each must agree with the scenario's expected verdict, and OpenSSL's errors must include the expected
check, except in the cases recorded by name below, where the profile we teach (RFC 5280 plus the Web
PKI's rules) and the validator legitimately differ.  A recorded case must still differ: if a validator
changes its mind, the record is wrong and the test says so.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import require
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from handshake_lib.peers.openssl_verify import handshake_opinion, openssl_opinion
from handshake_lib.pki.issue import UNKNOWN_EXTENSION_OID, Authority, new_key
from handshake_lib.pki.revocation_data import build_crl, ocsp_response
from handshake_lib.pki.second_opinion import Opinion, cryptography_opinion
from handshake_lib.pki.variants import (
    CHECKS,
    VARIANTS,
    Expected,
    KeyRing,
    Scenario,
    build_all,
    build_variant,
)

NAMES = list(VARIANTS)

# Where `openssl verify` legitimately differs from the profile we teach, and why.
OPENSSL_DIFFERS = {
    "wildcard-partial-label": "OpenSSL matches w*.shop.example (RFC 6125 allowed it; RFC 9525 does not)",
    "wildcard-public-suffix": "OpenSSL knows no Public Suffix List: *.co.uk matches shop.co.uk",
    "common-name-only": "OpenSSL falls back to the subject's CN when there is no DNS SAN (RFC 9525 never does)",
    "ocsp-unknown": "openssl ocsp reports the status 'unknown' as it is; our default policy counts it as no answer",
    "leaf-is-ca": "OpenSSL accepts a CA certificate as a server's own (RFC 5280 does not forbid it)",
}
# Where a real TLS handshake (Python's ssl: OpenSSL with its defaults, in memory) differs, and why.  Its
# host-name rules are not `openssl verify`'s: Python asks for no partial wildcards, so w*.shop.example fails.
HANDSHAKE_DIFFERS = {
    "wildcard-public-suffix": OPENSSL_DIFFERS["wildcard-public-suffix"],
    "common-name-only": "Python's ssl keeps OpenSSL's fallback to the subject's CN when there is no DNS SAN",
    "leaf-is-ca": OPENSSL_DIFFERS["leaf-is-ca"],
    "too-long-chain": "Python's ssl cannot set a verify depth, and OpenSSL's default allows 100 intermediates",
    "chain-one-too-long": "Python's ssl cannot set a verify depth, and OpenSSL's default allows 100 intermediates",
}
# Where the handshake refuses for the same reason but names another check first: it stops at OpenSSL's first
# error, where `openssl verify` goes on and lists the precise one too.
HANDSHAKE_NAMES_ANOTHER_CHECK = {
    "ca-without-keycertsign": "OpenSSL's first error is 79 (invalid CA certificate); `openssl verify` goes on to 32",
}
# Where cryptography's verifier legitimately differs, and why (it follows the Web PKI otherwise).
CRYPTOGRAPHY_DIFFERS = {
    "wildcard-public-suffix": "cryptography knows no Public Suffix List: *.co.uk matches shop.co.uk",
    "wildcard-tld": "cryptography knows no Public Suffix List: *.com matches example.com",
}


@pytest.fixture(scope="session")
def scenarios() -> dict[str, Scenario]:
    return {scenario.name: scenario for scenario in build_all(keys=KeyRing())}


@pytest.fixture(scope="session")
def folders(scenarios: dict[str, Scenario], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("variants")
    for name, scenario in scenarios.items():
        scenario.write(top / name)
    return {name: top / name for name in scenarios}


@pytest.fixture(scope="session")
def openssl_opinions(scenarios: dict[str, Scenario], folders: dict[str, Path]) -> dict[str, Opinion]:
    """``openssl verify`` on every scenario, then ``openssl ocsp`` on a stapled response; two at a time."""
    openssl = require("openssl")

    def judge(name: str) -> Opinion:
        return openssl_opinion(scenarios[name], folders[name], openssl=openssl)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(scenarios, pool.map(judge, scenarios), strict=True))


@pytest.fixture(scope="session")
def handshake_opinions(scenarios: dict[str, Scenario], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Opinion]:
    """A real TLS handshake (Python's ssl, in memory) on every scenario: about 5 ms each."""
    top = tmp_path_factory.mktemp("handshakes")
    return {name: handshake_opinion(scenario, top / name) for name, scenario in scenarios.items()}


# -- every variant builds, writes and reads back ----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_variant_writes_files_openssl_and_cryptography_read_back(
    name: str, scenarios: dict[str, Scenario], folders: dict[str, Path]
) -> None:
    scenario, folder = scenarios[name], folders[name]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["variant"] == name and manifest["purpose"] == scenario.purpose
    assert manifest["host"] == scenario.host
    assert manifest["expected"] == {"valid": scenario.expected.valid, "first_failure": scenario.expected.first_failure}
    assert dt.datetime.fromisoformat(manifest["at"]) == scenario.at
    assert manifest["at_unix"] == int(scenario.at.timestamp())
    assert x509.load_pem_x509_certificate((folder / "leaf.pem").read_bytes()) == scenario.leaf
    chain = (folder / "chain.pem").read_bytes()
    assert (x509.load_pem_x509_certificates(chain) if chain else []) == list(scenario.intermediates)
    assert x509.load_pem_x509_certificates((folder / "roots.pem").read_bytes()) == list(scenario.roots)
    key = serialization.load_pem_private_key((folder / "leaf.key").read_bytes(), None)
    assert key.public_key() == scenario.leaf.public_key()  # type: ignore[comparison-overlap]
    assert (folder / "leaf.key").stat().st_mode & 0o077 == 0
    if scenario.crls:
        pem = (folder / "crls.pem").read_bytes()
        crls = re.findall(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\n", pem, re.S)
        assert [x509.load_pem_x509_crl(crl) for crl in crls] == list(scenario.crls)
    if scenario.ocsp is not None:
        response = ocsp.load_der_ocsp_response((folder / "ocsp.der").read_bytes())
        assert response.serial_number == scenario.leaf.serial_number
    for role, file_name in manifest["files"].items():
        assert (folder / file_name).is_file(), role


# -- agreement with OpenSSL and cryptography -------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_openssl_agrees_with_the_expected_verdict_and_check(name: str, scenarios: dict[str, Scenario],
                                                            openssl_opinions: dict[str, Opinion]) -> None:
    expected, opinion = scenarios[name].expected, openssl_opinions[name]
    if name in OPENSSL_DIFFERS:  # the recorded difference must still be there, or the record is stale
        assert opinion.valid != expected.valid, f"OpenSSL now agrees on {name}: drop it from OPENSSL_DIFFERS"
        return
    assert opinion.valid == expected.valid, f"{name}: expected {expected}, OpenSSL says {opinion.detail}"
    if not expected.valid:
        assert expected.first_failure in opinion.checks, f"{name}: expected {expected}, OpenSSL says {opinion.detail}"


@pytest.mark.parametrize("name", NAMES)
def test_a_real_tls_handshake_agrees_with_the_expected_verdict_and_check(
    name: str, scenarios: dict[str, Scenario], handshake_opinions: dict[str, Opinion]
) -> None:
    scenario, opinion = scenarios[name], handshake_opinions[name]
    expected = scenario.expected
    if not opinion.has_opinion:  # ssl reads no stapled OCSP response: the fault, if any, is there
        assert scenario.ocsp is not None and opinion.valid
    elif name in HANDSHAKE_DIFFERS:
        assert opinion.valid != expected.valid, f"the handshake now agrees on {name}: drop it from HANDSHAKE_DIFFERS"
    else:
        assert opinion.valid == expected.valid, f"{name}: expected {expected}, the handshake says {opinion.detail}"
        if not expected.valid:
            named = expected.first_failure in opinion.checks
            assert named != (name in HANDSHAKE_NAMES_ANOTHER_CHECK), f"{name}: {opinion.detail}"


def test_the_handshake_refuses_a_client_chain_on_the_server_side(
    scenarios: dict[str, Scenario], handshake_opinions: dict[str, Opinion]
) -> None:
    # The client variants are judged by an ssl server with CERT_REQUIRED: its verify errors, not a missing cipher.
    clients = [name for name, scenario in scenarios.items() if scenario.purpose == "client"]
    assert len(clients) >= 8
    for name in clients:
        opinion = handshake_opinions[name]
        assert opinion.valid or opinion.detail.startswith("verify error"), f"{name}: {opinion.detail}"


@pytest.mark.parametrize("name", NAMES)
def test_cryptography_agrees_where_it_has_an_opinion(name: str, scenarios: dict[str, Scenario]) -> None:
    scenario = scenarios[name]
    opinion = cryptography_opinion(scenario)
    if not scenario.expected.valid and (scenario.crls or scenario.ocsp is not None):
        # No opinion: what is wrong is in the CRLs or the OCSP response, and cryptography's verifier reads neither.
        assert opinion.valid, f"{name}: {opinion.detail}"
    elif name in CRYPTOGRAPHY_DIFFERS:
        assert opinion.valid != scenario.expected.valid, f"cryptography now agrees on {name}: update the record"
    else:
        assert opinion.valid == scenario.expected.valid, f"{name}: expected {scenario.expected}, got {opinion.detail}"


def test_the_recorded_differences_name_real_variants_and_say_why() -> None:
    for record in (OPENSSL_DIFFERS, CRYPTOGRAPHY_DIFFERS, HANDSHAKE_DIFFERS, HANDSHAKE_NAMES_ANOTHER_CHECK):
        for name, why in record.items():
            assert name in VARIANTS and why
            assert VARIANTS[name].profiles, f"{name} differs between profiles but its variant does not say how"


def test_the_variants_cover_every_check_both_purposes_and_the_required_cases(scenarios: dict[str, Scenario]) -> None:
    failing = {info.expected.first_failure for info in VARIANTS.values()}
    assert failing == {*CHECKS, None}
    required = {
        "valid-rsa", "valid-ecdsa", "valid-ed25519", "valid-no-intermediate", "valid-client", "valid-ipv4",
        "valid-wildcard", "expired", "not-yet-valid", "wrong-host", "wildcard-nested", "wildcard-two-labels",
        "wildcard-public-suffix", "wildcard-tld", "ip-with-dns-san", "untrusted-root", "missing-intermediate",
        "intermediate-not-ca", "path-length-exceeded", "bad-signature", "wrong-signing-key", "revoked-leaf-crl",
        "revoked-intermediate-crl", "revoked-ocsp", "ocsp-unknown", "ocsp-expired", "wrong-eku",
        "ca-without-keycertsign", "unknown-critical-extension", "name-constraints-violated",
        "cross-signed-cycle", "too-long-chain",
    }
    assert required <= set(VARIANTS)
    for purpose in ("server", "client"):
        verdicts = {s.expected.valid for s in scenarios.values() if s.purpose == purpose}
        assert verdicts == {True, False}, purpose


# -- the recipe, piece by piece ------------------------------------------------------------------------------
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
KEYS = KeyRing()


def test_a_scenario_is_reproducible_from_the_same_time_and_keys() -> None:
    for name in ("valid-crl", "too-long-chain", "revoked-ocsp"):
        first, second = build_variant(name, now=NOW, keys=KEYS), build_variant(name, now=NOW, keys=KEYS)
        assert first.leaf.tbs_certificate_bytes == second.leaf.tbs_certificate_bytes
        assert [c.tbs_certificate_bytes for c in first.intermediates] == [
            c.tbs_certificate_bytes for c in second.intermediates
        ]
        assert first.at == second.at == NOW


@pytest.mark.parametrize(
    ("key_type", "public_type"),
    [("rsa2048", rsa.RSAPublicKey), ("ecdsa-p256", ec.EllipticCurvePublicKey), ("ed25519", ed25519.Ed25519PublicKey)],
)
def test_each_key_type_can_be_a_root_an_intermediate_and_a_leaf(key_type: str, public_type: type) -> None:
    key = KEYS.get("recipe", key_type)  # type: ignore[arg-type]
    root = Authority.root("Recipe Root", key, now=NOW, path_length=1)
    middle = root.intermediate("Recipe CA", key, now=NOW, path_length=0, permitted_dns=("shop.example",))
    leaf = middle.leaf(("www.shop.example", "10.0.0.1", "*.shop.example"), key, now=NOW, purpose="client",
                       not_before=dt.timedelta(days=-2), not_after=NOW + dt.timedelta(days=3))
    assert isinstance(leaf.public_key(), public_type)
    leaf.verify_directly_issued_by(middle.certificate)
    middle.certificate.verify_directly_issued_by(root.certificate)
    extensions = {e.value.__class__: e for e in leaf.extensions}
    aki = extensions[x509.AuthorityKeyIdentifier].value
    assert aki.key_identifier == middle.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    san = extensions[x509.SubjectAlternativeName].value
    assert san.get_values_for_type(x509.DNSName) == ["www.shop.example", "*.shop.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert list(extensions[x509.ExtendedKeyUsage].value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    window = (leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    assert window == (NOW - dt.timedelta(days=2), NOW + dt.timedelta(days=3))
    constraints = middle.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value.permitted_subtrees == [x509.DNSName("shop.example")]
    basic = middle.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = middle.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


def test_an_unknown_critical_extension_is_there_and_critical() -> None:
    key = KEYS.get("recipe")
    root = Authority.root("Recipe Root", key, now=NOW)
    leaf = root.leaf(("www.shop.example",), key, now=NOW, unknown_critical_extension=True)
    extension = leaf.extensions.get_extension_for_oid(UNKNOWN_EXTENSION_OID)
    assert extension.critical


def test_a_crl_lists_the_revoked_serials_and_verifies_under_its_issuer() -> None:
    root = Authority.root("Recipe Root", KEYS.get("recipe"), now=NOW)
    crl = build_crl(root, (7, 9), this_update=NOW, next_update=NOW + dt.timedelta(days=1))
    assert crl.is_signature_valid(root.private_key.public_key())  # type: ignore[arg-type]
    assert crl.issuer == root.name and crl.next_update_utc == NOW + dt.timedelta(days=1)
    assert {entry.serial_number for entry in crl} == {7, 9}
    assert crl.get_revoked_certificate_by_serial_number(8) is None


@pytest.mark.parametrize("status", ["good", "revoked", "unknown"])
def test_an_ocsp_response_answers_for_one_certificate(status: str) -> None:
    root = Authority.root("Recipe Root", KEYS.get("recipe"), now=NOW)
    leaf = root.leaf(("www.shop.example",), KEYS.get("recipe-leaf"), now=NOW)
    der = ocsp_response(leaf, root, status, this_update=NOW, next_update=NOW + dt.timedelta(hours=4))  # type: ignore[arg-type]
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status.name.lower() == status
    assert response.serial_number == leaf.serial_number and response.next_update_utc == NOW + dt.timedelta(hours=4)
    assert response.certificates == [root.certificate]
    root.private_key.public_key().verify(  # type: ignore[call-arg]
        response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="unknown OCSP status"):
        ocsp_response(leaf, root, "fine", this_update=NOW, next_update=NOW)  # type: ignore[arg-type]


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        build_variant("nope")
    with pytest.raises(ValueError, match="time zone"):
        build_variant("expired", now=dt.datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="unknown key type"):
        new_key("dsa")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names exactly one"):
        Expected(False)
    with pytest.raises(ValueError, match="unknown check"):
        Expected(False, "hostname")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_a_scenarios_own_report_is_its_expected_verdict(name: str, scenarios: dict[str, Scenario]) -> None:
    """``Scenario.validate()`` hands every input to our validator (what lesson 04 and the chain picture use)."""
    scenario = scenarios[name]
    report = scenario.validate()
    assert report.valid == scenario.expected.valid, report.summary()
    assert report.at == scenario.at and report.host == scenario.host and report.purpose.value == scenario.purpose
    if not scenario.expected.valid:
        assert report.failures[0].check.value == scenario.expected.first_failure, report.summary()
    if scenario.purpose == "server":
        assert scenario.validate(host="nowhere.invalid").result("host_name").status.value == "fail"
