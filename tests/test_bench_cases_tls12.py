"""``make bench``'s suites and resumption groups (bench/tls12.py) time what their rows say they time.

Each row's two calls run once against the group's real peers (OpenSSL through Python ``ssl``, our
TLSPageServer), and what happened is read from the other end, not from the bench's own bookkeeping: the
suite and group OpenSSL's server or our server negotiated, OpenSSL's ``session_reused`` for our client's
resumptions, our server's ``HandshakeComplete.resumed`` for Python's.  A row whose call did something
else (a full handshake where a resumed one was meant, another suite) must make the bench fail, not time it.
"""

from __future__ import annotations

import dataclasses
import statistics

import pytest
from conftest import require

from bench import tls12
from bench.report import ERROR
from handshake_lib.tls.constants import OPENSSL_NAMES, NamedGroup
from handshake_lib.tls.suites import SUITES

SUITE_OF = dict(OPENSSL_NAMES)  # OpenSSL's name -> CipherSuite


@pytest.fixture(scope="module")
def suite_peers():
    with tls12.Peers.start([row.suite for row in tls12.SUITE_ROWS]) as peers:
        yield peers


@pytest.fixture(scope="module")
def resumption_peers():
    with tls12.Peers.start([tls12.RESUMPTION_SUITE], resumption=True) as peers:
        yield peers


def test_the_suite_rows_cover_each_key_exchange_authentication_and_cipher_family() -> None:
    def family(suite) -> str:
        params = SUITES[suite]
        return "CBC" if not params.is_aead else ("ChaCha20" if "CHACHA20" in suite.name else "GCM")

    covered = {(SUITES[r.suite].key_exchange, "ECDSA" if "_ECDSA_" in r.suite.name else "RSA", family(r.suite))
               for r in tls12.SUITE_ROWS}  # fmt: skip
    assert covered == {(kx, auth, cipher) for kx, auth in [("ECDHE", "RSA"), ("ECDHE", "ECDSA"), ("DHE", "RSA")]
                       for cipher in ("GCM", "ChaCha20", "CBC")}  # fmt: skip
    assert {r.group for r in tls12.SUITE_ROWS} == {NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.ffdhe2048}


def test_each_suite_row_negotiates_its_suite_and_group_at_both_ends(suite_peers) -> None:
    pairs = tls12.suite_pairs(suite_peers)
    assert len(pairs) == 2 * len(tls12.SUITE_ROWS)
    for row, (client_pair, server_pair) in zip(tls12.SUITE_ROWS, zip(pairs[::2], pairs[1::2], strict=True),
                                               strict=True):  # fmt: skip
        expected = tls12.OPENSSL_NAME[row.suite]
        # Our client: what OpenSSL's server says it negotiated, and the group our client used.
        ours = client_pair.ours()
        assert suite_peers.openssl.connections[-1].cipher == expected
        assert ours.group == row.group and tls12.OPENSSL_PAGE in ours.body and not ours.resumed
        client_pair.theirs()
        assert suite_peers.openssl.connections[-1].cipher == expected
        # Our server: what it negotiated with Python's client, read from its own record of the connection.
        fetched = server_pair.ours()
        handshake = suite_peers.ours.connections[-1].handshake
        assert handshake.cipher_suite == row.suite and handshake.group == row.group and not handshake.resumed
        assert SUITE_OF[fetched.cipher] == row.suite and tls12.OUR_PAGE in fetched.body
        client_pair.check(ours, ours=True)
        server_pair.check(fetched, ours=True)


def test_a_call_that_did_something_else_stops_the_row(suite_peers) -> None:
    pair = tls12.suite_pairs(suite_peers, tls12.SUITE_ROWS[:1])[0]
    good = pair.ours()
    pair.check(good, ours=True)
    for wrong in (
        dataclasses.replace(good, cipher="AES128-GCM-SHA256"),
        dataclasses.replace(good, group=NamedGroup.secp384r1),
        dataclasses.replace(good, resumed=True),
        dataclasses.replace(good, body=b"<html>an error page</html>"),
    ):
        with pytest.raises(RuntimeError, match="expected ECDHE-RSA-AES128-GCM-SHA256, got"):
            pair.check(wrong, ours=True)


def test_resumed_rows_really_resume_by_the_mechanism_they_name(resumption_peers) -> None:
    pairs = {(pair.side, pair.kind): pair for pair in tls12.resumption_pairs(resumption_peers)}
    assert set(pairs) == {(side, kind) for side in ("client", "server") for kind in ("full", "session ID", "ticket")}
    reused = resumption_peers.openssl_reused
    for kind in ("full", "session ID", "ticket"):
        pair = pairs["client", kind]
        # Our client: OpenSSL's server says whether it resumed.
        ours = pair.ours()
        assert reused[-1] is (kind != "full") and ours.resumed is (kind != "full")
        assert ours.ticket is (kind == "ticket")
        theirs = pair.theirs()
        assert reused[-1] is (kind != "full") and theirs.resumed is (kind != "full")
        # Python's client against our server: our server's record of the handshake says whether it resumed.
        pair = pairs["server", kind]
        fetched = pair.ours()
        handshake = resumption_peers.ours.connections[-1].handshake
        assert handshake.resumed is (kind != "full") and fetched.resumed is (kind != "full")
        if kind != "full":
            assert fetched.ticket is (kind == "ticket")  # Python's session held a ticket, or only an ID
        pair.theirs()
        assert reused[-1] is (kind != "full")
    with pytest.raises(RuntimeError, match="not resumed"):
        pairs["client", "ticket"].check(pairs["client", "full"].ours(), ours=True)


def test_measure_reports_ratios_of_the_medians_it_measured() -> None:
    rows = tls12.measure_resumption(count=3, warmup=1)
    assert [row.status for row in rows].count(ERROR) == 0 and len(rows) == 6
    for row in rows:
        ours, theirs = row.extra["ours_ms"], row.extra["theirs_ms"]
        assert len(ours) == len(theirs) == 3 and len(set(ours)) > 1  # measured, not one number repeated
        assert row.value == pytest.approx(statistics.median(ours) / statistics.median(theirs))
        assert ("resumed/full" in row.detail) is ("resumed by" in row.name)
    by_name = {row.name: row for row in rows}
    full = next(row for name, row in by_name.items() if name.startswith("our client") and "full" in name)
    ticket = next(row for name, row in by_name.items() if name.startswith("our client") and "ticket" in name)
    assert ticket.extra["ours_of_full"] == pytest.approx(ticket.extra["ours_median_ms"] / full.extra["ours_median_ms"])


def test_the_ffdhe2048_parameters_are_rfc_7919s(tmp_path) -> None:
    openssl = require("openssl")
    import subprocess

    path = tmp_path / "dh.pem"
    path.write_bytes(tls12.ffdhe2048_pem())
    result = subprocess.run([openssl, "pkeyparam", "-in", str(path), "-text", "-noout"], capture_output=True,
                            text=True, timeout=30, check=True)  # fmt: skip
    assert "GROUP: ffdhe2048" in result.stdout  # OpenSSL recognises the prime as the named group


def test_python_m_bench_only_resumption_writes_its_rows(tmp_path, capsys, monkeypatch) -> None:
    import json

    # bench.__main__ sets MPLBACKEND=Agg when imported; set it through monkeypatch first, so that it is gone
    # again afterwards: a Jupyter kernel started later by this process (tests/test_browser.py) would inherit
    # it and draw no inline figure.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    from bench.__main__ import main

    path = tmp_path / "latest.json"
    assert main(["--only", "resumption", "--handshakes", "2", "--json", str(path)]) == 0
    results = json.loads(path.read_text())["results"]
    assert [r["group"] for r in results] == ["resumption"] * 6
    assert all(r["status"] in ("PASS", "FAIL") and len(r["extra"]["ours_ms"]) == 2 for r in results)
    assert "resumed by ticket + GET" in capsys.readouterr().out  # the printed table has the rows too
