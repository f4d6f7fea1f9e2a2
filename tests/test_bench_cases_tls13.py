"""``make bench``'s tls13 group (bench/tls13.py) times what its rows say they time.

Each row's two calls run once against the group's real peers (OpenSSL through Python ``ssl``, our
TLSPageServer, tlslite-ng's client), and what happened is read from the other end, not from the bench's own
bookkeeping: the version and suite OpenSSL's server negotiated and whether it resumed (``session_reused``),
the ServerHellos it wrote (through ``SSLContext._msg_callback``, decoded by our decoder: a HelloRetryRequest,
the group of its key share), our server's own record of each handshake.  A call that did something else (TLS
1.2, a full handshake where a resumed one was meant, no HelloRetryRequest) must stop the bench, not be timed.
No timing is asserted: the whole group runs once with n=1 and its numbers are only checked to be sane.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import ssl
from collections.abc import Iterator

import pytest

from bench import tls13
from handshake_lib.tls.constants import ExtensionType, NamedGroup
from handshake_lib.tls.extensions import KeyShareHelloRetryRequestExtension, KeyShareServerHelloExtension
from handshake_lib.tls.messages import ServerHello
from handshake_lib.tls.messages13 import decode_handshake13, is_hello_retry_request


@pytest.fixture(scope="module")
def peers() -> Iterator[tls13.Peers]:
    with tls13.Peers.start() as started:
        yield started


@pytest.fixture(scope="module")
def pairs(peers) -> dict[tuple[str, str], tls13.Pair13]:
    return {(pair.side, pair.kind): pair for pair in tls13.pairs_for(peers)}


@contextlib.contextmanager
def server_hellos(context: ssl.SSLContext) -> Iterator[list[ServerHello]]:
    """Every ServerHello (and HelloRetryRequest) OpenSSL's server writes while the block runs, decoded by us."""
    written: list[ServerHello] = []

    def seen(_conn, direction, _version, content_type, msg_type, data) -> None:
        if direction == "write" and content_type == ssl._TLSContentType.HANDSHAKE and msg_type == 2:
            written.append(decode_handshake13(bytes(data))[0])

    context._msg_callback = seen  # OpenSSL's SSL_CTX_set_msg_callback, inherited by each new connection
    try:
        yield written
    finally:
        context._msg_callback = None


def shape(hellos: list[ServerHello]) -> list[tuple[str, int]]:
    """("HRR", the group asked for) / ("SH", the group of the server's share), in the order written."""
    result = []
    for hello in hellos:
        if is_hello_retry_request(hello):
            extension = hello.extension(ExtensionType.key_share)
            assert isinstance(extension, KeyShareHelloRetryRequestExtension)
            result.append(("HRR", extension.selected_group))
        else:
            extension = hello.extension(ExtensionType.key_share)
            assert isinstance(extension, KeyShareServerHelloExtension)
            result.append(("SH", extension.server_share.group))
    return result


FULL = [("SH", NamedGroup.x25519)]
HRR = [("HRR", NamedGroup.secp256r1), ("SH", NamedGroup.secp256r1)]


def test_the_rows_cover_both_roles_full_resumed_and_hrr_and_tlslite(pairs) -> None:
    assert set(pairs) == {(side, kind) for side in ("client", "server") for kind in ("full", "resumed", "HRR")} | {
        ("tlslite", "full")
    }


def test_our_client_rows_do_at_openssls_server_what_they_name(peers, pairs) -> None:
    for kind, context, expected in (
        ("full", peers.openssl.context, FULL),
        ("resumed", peers.openssl.context, FULL),  # psk_dhe_ke: still a fresh x25519 share
        ("HRR", peers.openssl_p256.context, HRR),
    ):
        pair = pairs["client", kind]
        for ours, call in ((True, pair.ours), (False, pair.theirs)):
            server = peers.openssl_p256 if kind == "HRR" else peers.openssl
            with server_hellos(context) as hellos:
                fetch = call()
            assert shape(hellos) == expected, (kind, ours)
            assert server.connections[-1].version == "TLSv1.3"
            assert server.connections[-1].cipher == tls13.SUITE.name
            assert peers.openssl_reused[-1] is (kind == "resumed"), (kind, ours)
            pair.check(fetch, ours)
            if ours:  # our client's own view agrees with OpenSSL's
                assert fetch.hello_retry_request is (kind == "HRR") and fetch.resumed is (kind == "resumed")


def test_our_server_rows_do_with_pythons_client_what_they_name(peers, pairs) -> None:
    for kind, ours_server, openssl_server, expected in (
        ("full", peers.ours, peers.openssl, FULL),
        ("resumed", peers.ours, peers.openssl, FULL),
        ("HRR", peers.ours_p256, peers.openssl_p256, HRR),
    ):
        pair = pairs["server", kind]
        fetch = pair.ours()
        handshake = ours_server.connections[-1].handshake  # our server's record of the handshake
        assert handshake.version == 0x0304 and handshake.cipher_suite == tls13.SUITE
        assert handshake.psk_mode == ("psk_dhe_ke" if kind == "resumed" else None)
        assert handshake.hello_retry_request is (kind == "HRR")
        assert handshake.group == (NamedGroup.secp256r1 if kind == "HRR" else NamedGroup.x25519)
        assert fetch.resumed is (kind == "resumed")  # Python's client (OpenSSL) says so too
        pair.check(fetch, ours=True)
        with server_hellos(openssl_server.context) as hellos:
            fetch = pair.theirs()
        assert shape(hellos) == expected and peers.openssl_reused[-1] is (kind == "resumed")
        pair.check(fetch, ours=False)


def test_tlslite_ngs_client_does_a_full_tls13_x25519_handshake_at_openssls_server(peers, pairs) -> None:
    pair = pairs["tlslite", "full"]
    with server_hellos(peers.openssl.context) as hellos:
        fetch = pair.theirs()
    assert shape(hellos) == FULL and peers.openssl.connections[-1].version == "TLSv1.3"
    assert not peers.openssl_reused[-1]
    pair.check(fetch, ours=False)


def test_a_call_that_did_something_else_stops_the_row(pairs) -> None:
    pair = pairs["client", "HRR"]
    good = pair.ours()
    pair.check(good, ours=True)
    for wrong in (
        dataclasses.replace(good, version="TLSv1.2"),
        dataclasses.replace(good, cipher="TLS_AES_128_GCM_SHA256"),
        dataclasses.replace(good, resumed=True),
        dataclasses.replace(good, hello_retry_request=False),
        dataclasses.replace(good, group=NamedGroup.x25519),
        dataclasses.replace(good, body=b"<html>an error page</html>"),
    ):
        with pytest.raises(RuntimeError, match="expected TLS 1.3 HRR, got"):
            pair.check(wrong, ours=True)


@pytest.mark.parametrize("group", tls13.COST_GROUPS, ids=tls13.GROUP_LABELS.get)
def test_each_in_memory_handshake_uses_the_group_it_is_named_for(group) -> None:
    from handshake_lib.pki import CoursePKI

    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost",))
    cost = tls13.pumped_handshake(group, [issued.der], issued.private_key, pki.root.certificate)
    assert cost.group == group and cost.version == 0x0304 and not cost.hello_retry_request
    assert cost.client_ms > 0 and cost.server_ms > 0


def test_python_m_bench_only_tls13_runs_every_row_once(tmp_path, capsys, monkeypatch) -> None:
    # bench.__main__ sets MPLBACKEND=Agg when imported; through monkeypatch first, so that it is gone afterwards.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    from bench.__main__ import main

    path = tmp_path / "latest.json"
    assert main(["--only", "tls13", "--handshakes", "1", "--json", str(path)]) == 0
    results = json.loads(path.read_text())["results"]
    assert [r["group"] for r in results] == ["tls13"] * 11
    assert all(r["status"] in ("PASS", "FAIL") for r in results)
    ratios, costs = results[:7], results[7:]
    for row in ratios:
        ours, theirs = row["extra"]["ours_ms"], row["extra"]["theirs_ms"]
        assert len(ours) == len(theirs) == 1 and 0 < ours[0] < 5000 and 0 < theirs[0] < 5000
        assert row["unit"] == "x" and row["value"] == pytest.approx(ours[0] / theirs[0])
        assert ("/full:" in row["detail"]) is ("resumed" in row["name"] or "HelloRetryRequest" in row["name"])
    assert [row["target"] for row in ratios] == [1.5] * 6 + [1.0]
    for row, group in zip(costs, tls13.COST_GROUPS, strict=True):
        client_ms, server_ms = row["extra"]["client_ms"], row["extra"]["server_ms"]
        assert tls13.GROUP_LABELS[group] in row["name"] and row["unit"] == "ms"
        assert len(client_ms) == len(server_ms) == 1 and 0 < client_ms[0] < 5000 and 0 < server_ms[0] < 5000
        assert row["value"] == pytest.approx(client_ms[0] + server_ms[0]) and math.isfinite(row["extra"]["of_x25519"])
    assert costs[0]["extra"]["of_x25519"] == 1.0
    out = capsys.readouterr().out
    assert "HelloRetryRequest + GET" in out and "tlslite-ng" in out and "X25519MLKEM768" in out
