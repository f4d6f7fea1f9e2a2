"""Lesson 04 (handshake_lib.lessons.certificates): the variant explorer shows our report, the chain and
what cryptography and a real ``openssl verify`` say; bad input changes nothing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons import certificates  # noqa: E402
from handshake_lib.lessons.certificates import (  # noqa: E402
    REVOCATION_VARIANTS,
    VariantExplorer,
    compare_variant,
    variant_explorer,
)
from handshake_lib.pki.variants import VARIANTS  # noqa: E402


@pytest.fixture(scope="module")
def explorer() -> VariantExplorer:
    return variant_explorer()


@pytest.mark.parametrize(
    ("variant", "failing", "alert", "openssl_valid"),
    [
        ("valid-ecdsa", None, None, True),
        ("wrong-host", "host_name", "bad_certificate", False),
        ("expired", "validity", "certificate_expired", False),
        ("missing-intermediate", "path", "unknown_ca", False),
        ("wrong-eku", "extended_key_usage", "unsupported_certificate", False),
    ],
)
def test_update_shows_the_verdict_and_the_failing_check(explorer, variant, failing, alert, openssl_valid):
    view = explorer.update(variant=variant)
    assert view.alert == alert and (alert is None or f"alert {alert}" in explorer.opinions_html.value)
    assert explorer.dropdown.value == variant and view.name == variant
    assert view.first_failure == failing and view.as_expected
    assert view.report.verdict == ("valid" if failing is None else "not valid")
    # The report panel lists every check with its status; the failing one is marked fail.
    shown = explorer.report_html.value
    assert shown.count("<tr>") == len(view.report.checks)
    if failing is not None:
        row = next(r for r in shown.split("<tr>") if f">{failing}</td>" in r)
        assert ">fail</td>" in row
    else:
        assert ">fail</td>" not in shown
    assert view.openssl is not None and view.openssl.valid is openssl_valid
    picture = bytes(explorer.image.value)
    assert picture.startswith(b"<?xml") and b"certificate:0" in picture  # the chain, leaf box first (viz.chain gids)


def test_the_second_opinion_panel_shows_cryptography_and_openssl(explorer):
    view = explorer.update(variant="wrong-host")
    panel = explorer.opinions_html.value
    assert "cryptography (x509.verification)" in panel and "OpenSSL (openssl verify / ocsp)" in panel
    assert "hostname mismatch" in panel  # openssl verify's own words
    assert "no matching subjectAltName" in panel  # cryptography's own words
    assert view.cryptography is not None and view.cryptography.valid is False
    # Revocation: cryptography reads no OCSP (no opinion), OpenSSL's ocsp command does.
    view = explorer.update(variant="revoked-ocsp")
    assert not view.cryptography.has_opinion and "no opinion" in explorer.opinions_html.value
    assert view.openssl.valid is False and "OCSP: revoked" in explorer.opinions_html.value
    assert "profiles" in explorer.opinions_html.value  # the variant's note on RFC 5280 vs the Web PKI


def test_where_the_web_pki_differs_both_opinions_are_shown_as_they_are(explorer):
    view = explorer.update(variant="wildcard-public-suffix")
    assert view.first_failure == "host_name"
    assert view.cryptography.valid and view.openssl.valid  # neither knows the Public Suffix List


@pytest.mark.parametrize(
    ("bad", "error"),
    [("no-such-variant", ValueError), (3, TypeError), (["wrong-host"], TypeError), ("", ValueError)],
)
def test_a_bad_variant_is_refused_and_nothing_changes(explorer, bad, error):
    explorer.update(variant="expired")
    before = (explorer.dropdown.value, explorer.report_html.value, explorer.opinions_html.value, explorer.view)
    with pytest.raises(error, match="variant"):
        explorer.update(variant=bad)
    assert (explorer.dropdown.value, explorer.report_html.value, explorer.opinions_html.value, explorer.view) == before


def test_the_dropdown_drives_the_widget_and_views_are_cached(explorer, monkeypatch):
    calls = []
    real = certificates.openssl_opinion
    monkeypatch.setattr(certificates, "openssl_opinion", lambda scenario: calls.append(scenario.name) or real(scenario))
    fresh = VariantExplorer("valid-rsa")
    assert calls == ["valid-rsa"]  # only the variant shown: not all of them at start
    fresh.dropdown.value = "stale-crl"
    assert fresh.view.name == "stale-crl" and fresh.view.first_failure == "revocation"
    fresh.update(variant="valid-rsa")
    assert calls == ["valid-rsa", "stale-crl"]  # seen before: cached, OpenSSL not asked again
    assert len(fresh.dropdown.options) == len(VARIANTS)


def test_a_missing_openssl_is_a_line_in_the_panel_not_a_traceback(monkeypatch):
    from handshake_lib.peers import PeerUnavailable

    def missing(scenario):
        raise PeerUnavailable("the openssl program is not installed")

    monkeypatch.setattr(certificates, "openssl_opinion", missing)
    view = VariantExplorer("expired").view
    assert view.openssl is None and "could not ask: PeerUnavailable" in view.text


def test_revocation_variants_compare_as_the_lesson_says():
    views = {name: compare_variant(name) for name in REVOCATION_VARIANTS}
    assert views["revoked-leaf-crl"].first_failure == "revocation"
    assert views["stale-crl"].first_failure == "revocation"
    assert views["revoked-ocsp"].first_failure == "revocation"
    assert views["ocsp-unknown"].report.valid  # unknown counts as no answer under our default policy
    assert views["ocsp-unknown"].openssl.valid is False  # openssl ocsp calls it not good
    assert all(not view.cryptography.has_opinion for view in views.values())
    with pytest.raises(ValueError, match="variant"):
        compare_variant("revoked")
