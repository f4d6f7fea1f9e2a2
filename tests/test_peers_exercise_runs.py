"""The live last step of exercises 02, 03 and 04 (handshake_lib.peers.exercise_runs): a right answer ends in a
real handshake with OpenSSL, a wrong one fails the way OpenSSL makes it fail."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from handshake_lib.errors import TLSAlert
from handshake_lib.peers.exercise_runs import (
    CERTIFICATE_CASES,
    run_learner_certificate_checks,
    run_learner_cipher_choice,
    run_learner_client_hello,
)
from handshake_lib.pki import CoursePKI
from handshake_lib.tls.hello_explain import reference_client_hello
from handshake_lib.tls.messages import ClientHello
from handshake_lib.tls.negotiation import choose_cipher_suite


@pytest.fixture(scope="module")
def server_files():
    with tempfile.TemporaryDirectory() as folder:
        yield CoursePKI.create().write_server_files(Path(folder))


def test_exercise_02_live_step_with_a_correct_encoder_fetches_the_page():
    run = run_learner_client_hello(reference_client_hello)
    assert run.answer.complete and run.page_arrived and b"Hello from OpenSSL" in run.body
    assert run.cipher_suite == "TLS_RSA_WITH_AES_128_GCM_SHA256"
    assert "HTTP 200" in run.summary()


def test_exercise_02_live_step_with_wrong_encoders_fails_as_openssl_says():
    def without_extensions(client_random, suites, server_name):
        return ClientHello(random=client_random, cipher_suites=list(suites), extensions=[]).to_bytes()

    def one_byte_short(client_random, suites, server_name):
        return reference_client_hello(client_random, suites, server_name)[:-1]

    run = run_learner_client_hello(without_extensions)
    assert run.answer.alert_name == "handshake_failure" and not run.page_arrived
    run = run_learner_client_hello(one_byte_short)
    assert run.answer.alert_name == "decode_error" and "did not accept" in run.error
    run = run_learner_client_hello(lambda **stage_arguments: None)
    assert "returned NoneType" in run.error
    run = run_learner_client_hello(lambda **stage_arguments: 1 / 0)
    assert "raised ZeroDivisionError" in run.summary()


@pytest.mark.parametrize(("prefer", "expected"), [("server", "AES256-GCM-SHA384"), ("client", "AES128-SHA")])
def test_exercise_03_live_step_the_openssl_client_gets_the_rules_choice(server_files, prefer, expected):
    run = run_learner_cipher_choice(
        choose_cipher_suite, ["AES128-SHA", "AES256-GCM-SHA384"], prefer=prefer, files=server_files
    )
    assert run.openssl_cipher == expected and b"Hello from the Handshakes TLS server" in run.page
    assert not run.server_error and not run.client_error


def test_exercise_03_live_step_a_wrong_rule_ends_in_openssls_handshake_failure(server_files):
    def wrong_rule(offered, supported, prefer="server"):
        return supported[0]

    run = run_learner_cipher_choice(wrong_rule, ["AES128-SHA"], files=server_files)
    assert run.openssl_cipher == "" and "HANDSHAKE_FAILURE" in run.client_error
    assert "chooser picked" in run.server_error


def test_exercise_03_live_step_makes_its_own_keys_by_default():
    run = run_learner_cipher_choice(choose_cipher_suite, ["AES128-GCM-SHA256"])
    assert run.openssl_cipher == "AES128-GCM-SHA256" and not run.client_error


# -- exercise 04: the learner's certificate checks in our client, OpenSSL as the server -------------------
def test_exercise_04_live_step_with_the_librarys_checks_gets_the_page_or_the_librarys_alert():
    run = run_learner_certificate_checks()
    assert list(run.runs) == list(CERTIFICATE_CASES)
    for name in ("right", "right-by-address"):
        assert run[name].page_arrived and b"Hello from OpenSSL" in run[name].body and run[name].alert is None
    assert "IP address 127.0.0.1 is in its subjectAltName" in run["right-by-address"].host_name
    for name, alert, openssl_says in [("other-host", TLSAlert.bad_certificate, "BAD_CERTIFICATE"),
                                      ("expired", TLSAlert.certificate_expired, "CERTIFICATE_EXPIRED"),
                                      ("not-yet-valid", TLSAlert.bad_certificate, "BAD_CERTIFICATE")]:
        assert run[name].alert is alert and not run[name].page_arrived, run[name].lines()
        assert openssl_says in run[name].openssl_says  # the alert went on the wire and OpenSSL read it
    assert all(case.as_the_library_decides for case in run.runs.values())
    assert "WRONG" not in run.summary() and "as it should" in run.summary()


def test_exercise_04_live_step_a_wrong_check_lets_the_wrong_certificate_through_and_says_so():
    def names_something(host, dns_names, ip_addresses):
        return bool(dns_names or ip_addresses)

    def forgets_not_after(not_before, not_after, at):
        return not_before <= at

    run = run_learner_certificate_checks(names_something, forgets_not_after, cases=["expired", "other-host"])
    assert list(run.runs) == ["expired", "other-host"]  # in the order asked for
    for name in ("other-host", "expired"):
        assert run[name].page_arrived and run[name].alert is None and not run[name].as_the_library_decides
    assert "the library's check disagrees" in run["other-host"].host_name
    assert "the library's check disagrees" in run["expired"].validity
    assert "WRONG: with the library's checks, refused with bad_certificate" in run.summary()


def test_exercise_04_live_step_an_unwritten_check_is_refused_with_certificate_unknown_not_raised():
    run = run_learner_certificate_checks(lambda host, dns_names, ip_addresses: None, cases=["right"])
    assert run["right"].alert is TLSAlert.certificate_unknown and not run["right"].page_arrived
    assert "your host_matches returned None, not True or False" in run["right"].host_name
    with pytest.raises(ValueError, match="unknown case"):
        run_learner_certificate_checks(cases=["nonsense"])
