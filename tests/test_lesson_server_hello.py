"""Lesson 03 (handshake_lib.lessons.server_hello): the negotiation explorer against OpenSSL in memory, and
the certificate explorer over a real certificate."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons.server_hello import (  # noqa: E402
    NEGOTIATION_SUITES,
    CertificateExplorer,
    NegotiationExplorer,
    certificate_explorer,
    negotiation_explorer,
)
from handshake_lib.pki import CoursePKI  # noqa: E402
from handshake_lib.tls.constants import OPENSSL_NAMES  # noqa: E402


@pytest.fixture(scope="module")
def certificate_der() -> bytes:
    return CoursePKI.create().issue_server(("localhost", "127.0.0.1")).der


def test_negotiation_widget_shows_both_choices_and_reacts_to_preference():
    explorer = negotiation_explorer(
        offered=["AES128-SHA", "AES128-GCM-SHA256"], supported=["AES128-GCM-SHA256", "AES128-SHA"]
    )
    result = explorer.update(prefer="server")
    assert result.ours == result.openssl.chosen_name == "AES128-GCM-SHA256" and result.agree
    explorer.prefer_box.value = "client"
    assert explorer.result.ours == explorer.result.openssl.chosen_name == "AES128-SHA"
    assert "server picks:  AES128-SHA" in explorer.output.value
    explorer.update(offered=["AES256-SHA256"])
    assert "handshake_failure" in explorer.result.text and explorer.result.openssl.alert == "handshake_failure"
    explorer.update(offered=[])
    assert "at least one suite" in explorer.result.text


def test_negotiation_widget_update_computes_once_for_many_controls(monkeypatch):
    explorer = NegotiationExplorer()
    calls = []
    monkeypatch.setattr(explorer, "choose", lambda *args, **kw: calls.append(kw) or OPENSSL_NAMES["AES128-SHA"])
    explorer.update(offered=["AES128-SHA"], supported=["AES128-SHA"], prefer="client")
    assert calls == [{"prefer": "client"}]


def test_negotiation_widget_shows_a_broken_rule_instead_of_raising():
    explorer = NegotiationExplorer(choose=lambda offered, supported, prefer="server": 1 / 0)
    assert "ZeroDivisionError" in explorer.result.text and "DIFFERENT" in explorer.result.text


def test_negotiation_suites_are_all_known_to_openssl_and_to_the_library():
    import ssl

    for name in NEGOTIATION_SUITES:
        assert name in OPENSSL_NAMES, f"the library has no code point for {name}"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(name)  # OpenSSL itself: raises SSLError for a name it does not know
        assert [cipher["name"] for cipher in context.get_ciphers() if cipher["protocol"] != "TLSv1.3"] == [name]


def test_certificate_explorer_selects_fields_and_lists_what_cryptography_reads(certificate_der):
    explorer = certificate_explorer(certificate_der, "the server's certificate")
    rows = dict(explorer.fields)
    assert rows["subject"] == "CN=localhost,O=Handshakes course"
    assert rows["public key"].startswith("RSA, 2048-bit")
    span = explorer.select("validity")
    assert span.field.endswith("tbsCertificate.value.validity")
    assert explorer.hexview.spans[explorer.hexview.selected] == span
    assert explorer.select("no-such-field") is None
    assert f"{len(certificate_der)} bytes of DER" in explorer.hexview.title_html.value


def test_certificate_explorer_survives_bytes_that_are_not_a_certificate():
    explorer = CertificateExplorer(b"\x30\x03\x02\x01")
    assert explorer.fields == [] and explorer.error is not None
    assert "stopped" in explorer.hexview.title_html.value
    assert "cryptography cannot parse it" in explorer.children[0].value
