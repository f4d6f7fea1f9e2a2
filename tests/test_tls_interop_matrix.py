"""The TLS 1.2 interop matrix stays honest: its rows are the product of the suites the cores run, the committed
document is what the script generates for them, and a covering sample of rows runs here against OpenSSL.

``scripts/tls_interop_matrix.py`` runs the whole matrix (every suite x group x direction, resumption by ID
and by ticket both ways, renegotiation started by either side both ways) and writes
``docs/tls_interop_matrix.md``.  This module does not run it all; it checks that

* the rows are what issue 12 asks for: every suite in ``tls.suites.SUITES`` with every group its key
  exchange can use, the certificate following from the suite, both directions, and resumption and
  renegotiation rows for every suite, both mechanisms and both initiators; so a suite added to the cores
  without its rows in the document fails here;
* the committed document has exactly those rows, in that order, each a pass, with the counts in its heading;
* a deterministic sample that still touches every group, certificate type, key exchange, cipher, MAC, PRF
  hash, resumption mechanism and renegotiation initiator per direction runs through the same
  :class:`Peers` code against ``openssl s_server`` and ``openssl s_client`` and passes (the evidence:
  master secrets equal in our key log and OpenSSL's, s_client's ``Server Temp Key``, ``New``/``Reused``
  beside our ``resumed``, both handshakes of a renegotiation in both key logs);
* the checks can fail: the same real connection judged against a wrong Temp Key, a key log that does not
  hold our master secret, a resumption OpenSSL did not see, a ticket row without a ticket, a renegotiation
  OpenSSL declined: each a failed row naming what differed.

The peers (course PKI, DH parameter files, our twelve servers) are started once for the module.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

import pytest
from conftest import ROOT, peers_required, require

from handshake_lib.peers import PeerUnavailable
from handshake_lib.tls.constants import CipherSuite
from handshake_lib.tls.keylog import KeyLog
from handshake_lib.tls.suites import SUITES, openssl_name


def _load_matrix():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("tls_interop_matrix", ROOT / "scripts" / "tls_interop_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


matrix = _load_matrix()
SAMPLE = matrix.covering_sample()

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def peers():
    require("openssl", "OpenSSL's s_server and s_client (Debian package openssl)")
    try:
        with matrix.Peers() as running:
            yield running
    except PeerUnavailable as error:
        (pytest.fail if peers_required() else pytest.skip)(f"peer unavailable: {error}")


# -- the rows are what the issue asks for ------------------------------------------------------------------
def test_the_full_matrix_is_every_suite_with_every_group_it_can_use():
    rows = matrix.full_matrix()
    assert len(rows) == len(set(rows))
    by_kx = {kx: [s for s, p in SUITES.items() if p.key_exchange == kx] for kx in ("RSA", "ECDHE", "DHE")}
    assert len(SUITES) == 27 and {k: len(v) for k, v in by_kx.items()} == {"RSA": 6, "ECDHE": 14, "DHE": 7}
    for direction in matrix.DIRECTIONS:
        handshakes = {(r.suite, r.group) for r in rows if r.family == "handshake" and r.direction == direction}
        assert handshakes == (
            {(s, None) for s in by_kx["RSA"]}
            | {(s, g) for s in by_kx["ECDHE"] for g in ("x25519", "secp256r1", "secp384r1")}
            | {(s, g) for s in by_kx["DHE"] for g in ("ffdhe2048", "ffdhe3072")}
        )  # 6 + 14 x 3 + 7 x 2 = 62
        resumptions = {(r.suite, r.variant) for r in rows if r.family == "resumption" and r.direction == direction}
        assert resumptions == {(s, kind) for s in SUITES for kind in ("session ID", "ticket")}
        # Renegotiation both ways: s_client's R and our client's renegotiate(), each side's HelloRequest.
        renegotiations = {
            (r.suite, r.variant) for r in rows if r.family == "renegotiation" and r.direction == direction
        }
        assert renegotiations == {(s, who) for s in SUITES for who in ("client-initiated", "server-initiated")}
    # The certificate follows from the suite: ECDSA exactly for TLS_ECDHE_ECDSA_*.
    assert all((r.certificate == "ECDSA") == ("_ECDSA_" in r.suite.name) for r in rows)
    assert len(rows) == 2 * (62 + 54 + 54)


def test_the_sample_covers_every_group_certificate_cipher_and_mechanism_in_each_direction():
    for direction in matrix.DIRECTIONS:
        handshakes = [r for r in SAMPLE if r.family == "handshake" and r.direction == direction]
        assert {r.group for r in handshakes} == {None, "x25519", "secp256r1", "secp384r1", "ffdhe2048", "ffdhe3072"}
        assert {r.certificate for r in handshakes} == {"RSA", "ECDSA"}
        assert {r.params.cipher for r in handshakes} == {"AES-CBC", "AES-GCM", "CHACHA20-POLY1305"}
        assert {r.params.mac_algorithm for r in handshakes} == {None, "sha1", "sha256", "sha384"}
        for family, variants in (("resumption", ("session ID", "ticket")),
                                 ("renegotiation", ("client-initiated", "server-initiated"))):  # fmt: skip
            rows = [r for r in SAMPLE if r.family == family and r.direction == direction]
            for kind in variants:
                assert {r.params.key_exchange for r in rows if r.variant == kind} == {"RSA", "ECDHE", "DHE"}
                assert {r.certificate for r in rows if r.variant == kind} == {"RSA", "ECDSA"}
    assert len(SAMPLE) < len(matrix.full_matrix()) / 4  # a sample, not the matrix again


def test_the_committed_document_has_every_row_the_script_generates_and_each_passed():
    (passed, total), rows = matrix.parse_document(matrix.DOCUMENT.read_text(encoding="utf-8"))
    expected = [(*row.cells, "pass") for row in matrix.full_matrix()]
    assert rows == expected, "docs/tls_interop_matrix.md is stale: run python scripts/tls_interop_matrix.py"
    assert passed == total == len(expected)


def test_a_suite_without_a_row_in_the_document_is_noticed(monkeypatch):
    """What the document test relies on: the rows come from SUITES, so one more suite is one more row set."""
    (_, _), rows = matrix.parse_document(matrix.DOCUMENT.read_text(encoding="utf-8"))
    fewer = {s: p for s, p in SUITES.items() if s != CipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA256}
    monkeypatch.setattr(matrix, "SUITES", fewer)
    generated = [(*row.cells, "pass") for row in matrix.full_matrix()]
    missing = [r for r in rows if r not in generated]
    assert len(missing) == 2 * (2 + 2 + 2) and {r[2] for r in missing} == {"DHE-RSA-AES256-SHA256"}


# -- the sample, run ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", SAMPLE, ids=[row.id for row in SAMPLE])
def test_interop(peers, row):
    outcome = peers.run(row)
    assert outcome.ok, outcome.error
    assert "master secret" in outcome.evidence
    if row.family == "resumption":
        assert "New then Reused" in outcome.evidence and "full then resumed" in outcome.evidence
    elif row.family == "renegotiation":
        assert "2 handshakes" in outcome.evidence  # numbered 0 and 1, both secrets in both key logs
    elif row.direction == "server" and row.group is not None:
        assert f"Temp Key {matrix.TEMP_KEYS[row.group]}" in outcome.evidence


def test_a_wrong_temp_key_fails_the_row(peers, monkeypatch):
    row = matrix.Row("handshake", "server", CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "x25519")
    assert peers.run(row).ok
    monkeypatch.setitem(matrix.TEMP_KEYS, "x25519", "X448, 448 bits")  # judge the same connection wrongly
    outcome = peers.run(row)
    assert not outcome.ok and outcome.error == "s_client's Server Temp Key: X25519, 253 bits"


def test_a_key_log_without_our_master_secret_fails_the_row(peers, monkeypatch):
    row = matrix.Row("handshake", "client", CipherSuite.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ffdhe3072")
    assert peers.run(row).ok
    monkeypatch.setattr(matrix, "read_keylog", lambda path: KeyLog())  # OpenSSL's log, as if it held nothing
    outcome = peers.run(row)
    assert not outcome.ok and "s_server's key log none" in outcome.error


def test_a_resumption_openssl_does_not_see_fails_the_row(peers, monkeypatch):
    """Our client offers a session ID s_server never issued: both sides run a full handshake, s_server's page
    says New the second time, and the row fails on that."""
    row = matrix.Row("resumption", "client", CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "x25519", "session ID")
    fetch = peers._fetch_status_page

    def forged(r, port, deadline, **options):
        if options.get("session") is not None:
            options["session"] = replace(options["session"], session_id=bytes(32))
        return fetch(r, port, deadline, **options)

    monkeypatch.setattr(peers, "_fetch_status_page", forged)
    outcome = peers.run(row)
    assert not outcome.ok and "Reused" in outcome.error and openssl_name(row.suite) in outcome.error


def test_a_ticket_row_without_a_ticket_fails(peers, monkeypatch):
    """s_server told not to issue tickets (``-no_ticket``) leaves a session resumable by ID only: not a ticket row."""
    row = matrix.Row("resumption", "client", CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "secp384r1", "ticket")
    start = peers._s_server
    monkeypatch.setattr(peers, "_s_server", lambda r, keylog, *extra: start(r, keylog, *extra, "-no_ticket"))
    outcome = peers.run(row)
    assert not outcome.ok and outcome.error == "the session is resumable by session ID"


def test_a_renegotiation_openssl_declines_fails_the_row(peers, monkeypatch):
    """s_server without ``-client_renegotiation`` (OpenSSL 3.0's default) answers our renegotiation with a
    warning no_renegotiation: ``TLSStream.renegotiate`` returns None and the row fails saying so."""
    row = matrix.Row("renegotiation", "client", CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "x25519",
                     "client-initiated")  # fmt: skip
    start = peers._s_server

    def without_the_option(r, keylog, *extra):
        return start(r, keylog, *(option for option in extra if option != "-client_renegotiation"))

    monkeypatch.setattr(peers, "_s_server", without_the_option)
    outcome = peers.run(row)
    assert not outcome.ok and outcome.error == "s_server declined the renegotiation (no_renegotiation)"
