"""The second opinions as library calls: ``openssl verify`` (peers/openssl_verify.py) and
``cryptography.x509.verification`` (pki/second_opinion.py) on course scenarios, in our check names, and
the one-line typed errors when OpenSSL is missing, stuck or answers nonsense."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conftest import require

from handshake_lib.peers import PeerUnavailable
from handshake_lib.peers.openssl_verify import (
    OpenSSLAnswerError,
    OpenSSLTimeout,
    openssl_check,
    openssl_opinion,
)
from handshake_lib.pki.second_opinion import Opinion, cryptography_opinion
from handshake_lib.pki.variants import KeyRing, Scenario, build_variant

KEYS = KeyRing()
NAMES = ("valid-ecdsa", "valid-client", "expired", "wrong-host", "ca-without-keycertsign", "revoked-leaf-crl",
         "revoked-ocsp", "valid-ocsp-good", "missing-intermediate")


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {name: build_variant(name, keys=KEYS) for name in NAMES}


@pytest.fixture(scope="module")
def openssl() -> str:
    return require("openssl")


def fake_openssl(folder: Path, script: str) -> str:
    """A stand-in ``openssl`` program: a shell script, to make the real one's failures happen on purpose."""
    path = folder / "openssl"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# -- openssl verify ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("valid-ecdsa", Opinion(True, (), "OK")),
        ("valid-client", Opinion(True, (), "OK")),
        ("valid-ocsp-good", Opinion(True, (), "OCSP: good")),  # verify says OK, then openssl ocsp: good
        ("revoked-ocsp", Opinion(False, ("revocation",), "OCSP: revoked")),
    ],
)
def test_openssl_opinion_on_scenarios_it_accepts_or_refuses_by_ocsp(
    name: str, expected: Opinion, scenarios: dict[str, Scenario], openssl: str
) -> None:
    assert openssl_opinion(scenarios[name], openssl=openssl) == expected


@pytest.mark.parametrize(
    ("name", "checks", "said"),
    [
        ("expired", ("validity",), "error 10 at depth 0: certificate has expired"),
        ("wrong-host", ("host_name",), "error 62 at depth 0: hostname mismatch"),
        # 79 (invalid CA certificate) and 26 first, then the precise 32: all kept, in OpenSSL's order.
        ("ca-without-keycertsign", ("basic_constraints", "basic_constraints", "key_usage"), "error 79 at depth 1"),
        ("revoked-leaf-crl", ("revocation",), "error 23 at depth 0: certificate revoked"),
        ("missing-intermediate", ("path",), "error 20 at depth 0"),
    ],
)
def test_openssl_opinion_names_our_checks_for_its_errors(
    name: str, checks: tuple[str, ...], said: str, scenarios: dict[str, Scenario], openssl: str, tmp_path: Path
) -> None:
    opinion = openssl_opinion(scenarios[name], openssl=openssl)
    assert not opinion.valid and opinion.has_opinion
    assert opinion.checks[: len(checks)] == checks, opinion
    assert said in opinion.detail and "\n" not in opinion.detail
    # A folder the scenario was already written to gives the same answer, and is left in place.
    scenarios[name].write(tmp_path / name)
    assert openssl_opinion(scenarios[name], tmp_path / name, openssl=openssl) == opinion
    assert (tmp_path / name / "leaf.pem").is_file()


def test_error_26_is_the_leafs_eku_at_depth_0_and_a_ca_that_is_no_ca_above() -> None:
    assert openssl_check(26, 0) == "extended_key_usage"
    assert openssl_check(26, 1) == "basic_constraints"
    assert openssl_check(10, 2) == "validity"
    assert openssl_check(999, 0) is None


def test_no_openssl_program_is_peer_unavailable_in_one_line(scenarios: dict[str, Scenario], tmp_path: Path) -> None:
    with pytest.raises(PeerUnavailable) as caught:
        openssl_opinion(scenarios["valid-ecdsa"], openssl=str(tmp_path / "no-such-openssl"))
    assert "cannot run" in str(caught.value) and "\n" not in str(caught.value)


def test_a_stuck_openssl_is_killed_at_the_deadline(scenarios: dict[str, Scenario], tmp_path: Path) -> None:
    stuck = fake_openssl(tmp_path, "exec sleep 60")
    with pytest.raises(OpenSSLTimeout) as caught:
        openssl_opinion(scenarios["valid-ecdsa"], openssl=stuck, timeout=0.3)
    assert str(caught.value) == "openssl verify gave no answer within 0.3 s (killed)"
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, PeerUnavailable)


def test_an_answer_that_is_no_verdict_is_a_typed_error_or_says_what_it_printed(
    scenarios: dict[str, Scenario], tmp_path: Path
) -> None:
    # verify exits 0 (the chain is fine) but ocsp prints nonsense: no status to read.
    chatty = fake_openssl(tmp_path, 'echo "something else entirely"')
    with pytest.raises(OpenSSLAnswerError, match="^openssl ocsp gave no status for valid-ocsp-good: something else"):
        openssl_opinion(scenarios["valid-ocsp-good"], openssl=chatty)
    # verify fails without any "error N at D depth lookup" line: not valid, and what it said, on one line.
    failing = fake_openssl(tmp_path, 'echo "line one" >&2; echo "line two" >&2; exit 2')
    assert openssl_opinion(scenarios["valid-ecdsa"], openssl=failing) == Opinion(False, (), "line one / line two")


# -- cryptography's verifier ------------------------------------------------------------------------------
def test_cryptography_opinion_accepts_the_valid_and_refuses_the_faulty(scenarios: dict[str, Scenario]) -> None:
    assert cryptography_opinion(scenarios["valid-ecdsa"]) == Opinion(True, (), "valid")
    assert cryptography_opinion(scenarios["valid-client"]) == Opinion(True, (), "valid")
    for name in ("expired", "wrong-host", "missing-intermediate", "ca-without-keycertsign"):
        opinion = cryptography_opinion(scenarios[name])
        assert not opinion.valid and opinion.has_opinion and opinion.checks == (), name
        assert opinion.detail and "\n" not in opinion.detail and "encountered" not in opinion.detail, opinion
    expired = cryptography_opinion(scenarios["expired"])
    assert expired.detail == "validation failed: cert is not valid at validation time"


def test_cryptography_has_no_opinion_on_revocation_data(scenarios: dict[str, Scenario]) -> None:
    for name in ("revoked-leaf-crl", "revoked-ocsp"):
        opinion = cryptography_opinion(scenarios[name])
        assert opinion.valid and not opinion.has_opinion, name
        assert opinion.detail == "valid (CRLs and OCSP responses not read)"


def test_our_validator_never_asks_the_second_opinion() -> None:
    """The comparison stays a comparison: no module of the library but second_opinion.py imports
    cryptography's verifier, and nothing that validates (pki/, tls/) imports second_opinion.py; the peer
    that runs OpenSSL and the lesson that shows both opinions may."""
    import ast

    import handshake_lib

    top = Path(handshake_lib.__file__).parent
    for module in top.rglob("*.py"):
        tree = ast.parse(module.read_text(), str(module))
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        relative = module.relative_to(top).as_posix()
        if relative != "pki/second_opinion.py":
            assert not any("x509.verification" in name for name in imported), relative
        if relative.startswith(("pki/", "tls/")) and relative != "pki/second_opinion.py":
            assert not any(name.endswith("second_opinion") for name in imported), relative
