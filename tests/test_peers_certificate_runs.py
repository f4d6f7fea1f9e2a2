"""Lesson 04's live runs (handshake_lib.peers.certificate_runs), each run once per module against OpenSSL.

The mutual-TLS run is read from both sides: what ``openssl s_server`` printed about our certificate
(its verify callback's depth lines, its error queue) and what our transcript holds (its
CertificateRequest, our Certificate and CertificateVerify).  The stapled-OCSP run checks that the
response our client got is the file s_server stapled, read field by field, and that our validator's
revocation check decided the outcome.  The short-lived run checks the three connections: valid now,
certificate_expired a week later, a new leaf (new serial, same key) from the same running server after
renewal.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import require
from cryptography.x509 import ocsp

from handshake_lib.errors import TLSAlert
from handshake_lib.peers.certificate_runs import (
    LATER,
    SHORT_LIFETIME,
    ocsp_fields,
    run_mutual_tls,
    run_short_lived,
    run_stapled_ocsp,
)
from handshake_lib.peers.openssl import s_server
from handshake_lib.tls.constants import SignatureScheme


@pytest.fixture(scope="module")
def mutual():
    require("openssl")
    return run_mutual_tls(client_name="alice-04")


@pytest.fixture(scope="module")
def stapled():
    require("openssl")
    return run_stapled_ocsp()


@pytest.fixture(scope="module")
def short_lived():
    return run_short_lived()


# -- mutual TLS -----------------------------------------------------------------------------------------
def test_openssl_verified_our_certificate_and_saw_its_subject(mutual) -> None:
    attempt = mutual.with_certificate
    assert attempt.completed and attempt.alert is None and not attempt.openssl_errors
    # s_server's verify callback: the root (depth 1), then our leaf (depth 0), each "verify return:1".
    assert attempt.openssl_verified == [
        (1, "O = Handshakes course, CN = Handshakes Course Root CA", 1),
        (0, "O = Handshakes course, CN = alice-04", 1),
    ]
    assert attempt.openssl_subject == "O = Handshakes course, CN = alice-04"
    assert mutual.client_subject == "CN=alice-04,O=Handshakes course"


def test_our_transcript_holds_the_request_and_what_we_sent(mutual) -> None:
    attempt = mutual.with_certificate
    request = attempt.certificate_request
    assert request is not None
    assert SignatureScheme.ecdsa_secp256r1_sha256 in request.supported_signature_algorithms
    assert len(request.certificate_authorities) == 1  # -CAfile: the course root, by name
    assert attempt.sent_certificates == (mutual.client_subject,)
    assert attempt.certificate_verify == "ecdsa_secp256r1_sha256"


def test_without_a_certificate_openssl_refuses_with_handshake_failure(mutual) -> None:
    attempt = mutual.without_certificate
    assert not attempt.completed
    assert attempt.alert is TLSAlert.handshake_failure  # what OpenSSL sends, as our client received it
    assert attempt.openssl_errors == ["peer did not return a certificate"]
    assert attempt.openssl_verified == [] and attempt.openssl_subject is None
    assert attempt.certificate_request is not None  # it asked; we answered with an empty Certificate
    assert attempt.sent_certificates == () and attempt.certificate_verify == ""


def test_the_account_says_what_each_side_saw(mutual) -> None:
    text = mutual.summary()
    assert "-Verify 1 -verify_return_error" in text
    assert "OpenSSL checked depth 0: O = Handshakes course, CN = alice-04 -> verify return:1" in text
    assert "OpenSSL: peer did not return a certificate" in text
    assert "refused: OpenSSL sent the alert handshake_failure" in text
    assert "/" not in text.splitlines()[0]  # the command line names its files, not the temporary folder


def test_read_output_stops_at_its_deadline_when_nothing_matches(server_files) -> None:
    require("openssl")
    with s_server(server_files, "-tls1_2") as peer:
        assert peer.read_output(re.compile(rb"never printed"), wait=0.05) == b""


# -- stapled OCSP -----------------------------------------------------------------------------------------
def test_a_good_staple_lets_the_handshake_complete(stapled) -> None:
    good = stapled.good
    assert good.completed and good.alert is None
    assert ocsp.load_der_ocsp_response(good.stapled).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.fields["certStatus"] == "good" and "revocationTime" not in good.fields
    assert good.revocation.split()[:2] == ["revocation", "pass"]


def test_a_revoked_staple_ends_with_certificate_revoked(stapled) -> None:
    revoked = stapled.revoked
    assert not revoked.completed and revoked.alert is TLSAlert.certificate_revoked
    assert ocsp.load_der_ocsp_response(revoked.stapled).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.fields["certStatus"] == "revoked"
    assert revoked.fields["revocationTime"].endswith("(reason key_compromise)")
    assert revoked.revocation.split()[:2] == ["revocation", "fail"]
    assert "stapled OCSP response" in revoked.revocation
    assert "refused: our client sent the alert certificate_revoked" in stapled.summary()


def test_ocsp_fields_reads_a_response_in_rfc_6960_order(stapled) -> None:
    fields = ocsp_fields(stapled.revoked.stapled)
    assert list(fields)[:5] == ["responseStatus", "responderID (key hash)", "producedAt", "certID serialNumber",
                                "certStatus"]  # fmt: skip
    assert fields["signed by"] == "CN=Handshakes Course Root CA,O=Handshakes course"


# -- short-lived certificates ---------------------------------------------------------------------------
def test_a_short_lived_leaf_expires_and_renewal_brings_the_connection_back(short_lived) -> None:
    now, expired, renewed = short_lived.steps
    assert short_lived.lifetime == SHORT_LIFETIME == dt.timedelta(days=6)
    assert now.completed and now.validity.split()[:2] == ["validity", "pass"]
    assert expired.client_time - now.client_time == LATER
    assert not expired.completed and expired.alert is TLSAlert.certificate_expired
    assert "expired on" in expired.validity
    assert expired.serial == now.serial  # the same leaf, only the clock moved
    assert renewed.completed and renewed.client_time == expired.client_time
    assert renewed.serial != now.serial  # the server sent the new leaf
    assert renewed.validity.split()[:2] == ["validity", "pass"]
