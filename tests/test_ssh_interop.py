"""Interop: our SSH client and server against OpenSSH, asyncssh and paramiko, forced to each combination.

The rows come from ``scripts/ssh_interop_matrix.py`` (generated from the peers' algorithm constants
intersected with ours): its covering subset, in which every key exchange name, cipher, MAC and host key
algorithm appears at least once for every peer and direction, plus each peer's default-offer row
(OpenSSH 9.2's lists, sntrup761x25519 first, from our client; each peer client's own defaults against
our server).  The script runs the full product (``python scripts/ssh_interop_matrix.py``).

Our client against a peer's server: the probe returns only if the server's signature over H verified
and its answer to the ``none`` request decrypted (the methods it lists, checked); the algorithms we
negotiated and the ones the server recorded (sshd's debug log, the asyncssh/paramiko connection record)
both equal the row.  A peer's client against our server: it reached user authentication, it and our
server both report the row's algorithms, and it got (or, asyncssh, acted on) our list of methods.
The servers are started once for the module.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from conftest import ROOT, peers_required, require, require_module

from handshake_lib.peers import PeerUnavailable
from handshake_lib.peers.openssh import SSHD
from handshake_lib.ssh.constants import AEAD_CIPHERS, CIPHERS, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS


def _load_matrix():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("ssh_interop_matrix", ROOT / "scripts" / "ssh_interop_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


matrix = _load_matrix()
ROWS = matrix.covering_subset()

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def peers():
    if not os.access(SSHD, os.X_OK):
        (pytest.fail if peers_required() else pytest.skip)(f"{SSHD} is not installed (Debian package openssh-server)")
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    require("ssh-keygen", "OpenSSH's key tool (Debian package openssh-client)")
    require_module("asyncssh")
    require_module("paramiko")
    try:
        with matrix.Peers() as running:
            yield running
    except PeerUnavailable as error:
        (pytest.fail if peers_required() else pytest.skip)(f"peer unavailable: {error}")


# -- the rows are what the brief asks for ---------------------------------------------------------------
def test_the_subset_covers_every_algorithm_for_every_peer_and_direction():
    for peer, algorithms in matrix.PEER_ALGORITHMS.items():
        for direction in matrix.DIRECTIONS:
            rows = [r for r in ROWS if r.peer == peer and r.direction == direction and not r.default_offer]
            assert {r.kex for r in rows} == set(algorithms["kex"]) & set(KEX_ALGORITHMS), (peer, direction)
            assert {r.cipher for r in rows} == set(algorithms["cipher"]) & set(CIPHERS), (peer, direction)
            assert {r.mac for r in rows} - {None} == set(algorithms["mac"]) & set(MACS), (peer, direction)
            assert {r.host_key for r in rows} == set(algorithms["host_key"]) & set(HOST_KEY_ALGORITHMS)
            assert all((r.mac is None) == (r.cipher in AEAD_CIPHERS) for r in rows)  # no MAC beside an AEAD
            assert sum(r.default_offer for r in ROWS if r.peer == peer and r.direction == direction) == 1


def test_the_full_product_counts_each_key_exchange_method_once():
    rows = matrix.full_matrix()
    # OpenSSH 9.2 knows sntrup761 and curve25519 by two names each: 5 methods, not 7.
    assert [len(method) for method in matrix.kex_methods("OpenSSH")] == [2, 2, 1, 1, 1]
    assert [len(method) for method in matrix.kex_methods("paramiko")] == [1, 1, 1, 1, 1]  # curve25519 by one name
    per = {(p, d): sum(r.peer == p and r.direction == d and not r.default_offer for r in rows) for p, d in
           [(p, d) for p in matrix.PEER_ALGORITHMS for d in matrix.DIRECTIONS]}  # fmt: skip
    # kex methods x host keys x (AEAD ciphers + CTR ciphers x MACs)
    assert per[("OpenSSH", "client")] == per[("asyncssh", "server")] == 5 * 4 * (3 + 2 * 4)
    assert per[("paramiko", "client")] == per[("paramiko", "server")] == 5 * 4 * (2 + 2 * 4)  # no chacha20
    assert len(rows) == len(set(rows))


def test_the_default_offers_choose_what_each_peer_would():
    offers = {(r.peer, r.direction): r for r in ROWS if r.default_offer}
    assert offers[("OpenSSH", "client")].kex == "sntrup761x25519-sha512"  # OpenSSH 9.2's default, post-quantum
    assert offers[("asyncssh", "client")].kex == "curve25519-sha256"  # asyncssh has no sntrup761
    assert offers[("paramiko", "client")].kex == "curve25519-sha256@libssh.org"  # nor paramiko; old name only
    assert offers[("paramiko", "client")].cipher == "aes128-ctr"  # paramiko has no chacha20-poly1305
    assert offers[("asyncssh", "server")].kex == offers[("paramiko", "server")].kex == "mlkem768x25519-sha256"


# -- the connections ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_interop(peers, row):
    outcome = peers.run(row)
    want = row.expected
    assert outcome.error is None, outcome.error
    assert outcome.ours == want  # what our client or server negotiated
    assert outcome.theirs == want  # what the peer itself recorded
    if row.direction == "client":
        # the server's list of methods: an answer encrypted under the new keys, after the signature over H verified
        assert outcome.methods == matrix.SERVER_AUTH_METHODS[row.peer]
    elif row.peer == "asyncssh":
        assert outcome.methods == ("none", "password")  # it tried a password because our list named one
    else:
        assert outcome.methods == matrix.OUR_AUTH_METHODS  # the client reports the list our server sent


def test_our_server_accepts_the_ext_info_asyncssh_sends_after_newkeys(peers):
    """RFC 8308 2.4: a client that saw ext-info-s may send EXT_INFO as its first packet after NEWKEYS.
    asyncssh's client does (``global-requests-ok``); our server used to refuse it as out of order."""
    row = next(r for r in ROWS if r.peer == "asyncssh" and r.direction == "server")
    before = len(peers.ours.connections)
    outcome = peers.run(row)
    assert outcome.ok, outcome.result
    served = peers.ours.connections[before]
    assert served.error is None and served.reached_user_authentication
    assert served.server.client_extensions is not None
    assert dict(served.server.client_extensions).keys() >= {"global-requests-ok"}


def test_a_failed_row_is_reported_with_what_went_wrong(peers):
    """The harness can fail: a row whose expectation is wrong (paramiko has no chacha20) is not ok."""
    row = matrix.Combination("paramiko", "client", "curve25519-sha256@libssh.org", "aes128-gcm@openssh.com", None,
                             "ssh-ed25519")  # fmt: skip
    wrong = matrix.Combination(row.peer, row.direction, row.kex, "aes256-gcm@openssh.com", None, row.host_key)
    outcome = peers.run(row)
    assert outcome.ok
    outcome.combination = wrong  # judge the same connection against another row
    assert not outcome.ok and "we negotiated" in outcome.result and "paramiko recorded" in outcome.result
