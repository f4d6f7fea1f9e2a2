#!/usr/bin/env python3
"""The SSH interop matrix: our client and server against OpenSSH, asyncssh and paramiko, every combination.

Theory of operation
-------------------
The matrix is generated, not written: for each peer, its algorithm constants
(``peers.openssh.OPENSSH_ALGORITHMS``, ``peers.asyncssh_peers.ASYNCSSH_ALGORITHMS``,
``peers.paramiko_peers.PARAMIKO_ALGORITHMS``) intersected with ours (``ssh.constants``), in the peer's
order.  A key exchange known under two names (``sntrup761x25519-sha512`` and its ``@openssh.com`` name,
``curve25519-sha256`` and ``curve25519-sha256@libssh.org``) counts once; the rows of such a method take
its names in turn, so both names cross the wire.  A MAC is a dimension only for the CTR ciphers: with an
AEAD cipher (GCM, chacha20-poly1305) no MAC is negotiated (OpenSSH logs ``<implicit>``).  So one row is
peer x direction x kex x (cipher, MAC) x host key algorithm, and each runs one real connection:

* ``client`` (our client against the peer's server): :func:`handshake_lib.net.ssh.ssh_probe` with
  ``Algorithms`` narrowed to the row, against ``sshd`` (its own config and host keys), an asyncssh
  server and a paramiko server (every host key type each, their default algorithm lists).  The transport
  comes up (the server's signature over H verified, or the probe raises), the ``none`` request is
  answered with the server's methods (only the right keys decrypt that), and the negotiated algorithms
  must equal the row both as we saw them and as the server recorded them (sshd's ``-e`` debug log, the
  asyncssh/paramiko server's connection record).
* ``server`` (the peer's client against our server): :class:`handshake_lib.net.ssh.SSHProbeServer` with
  an ed25519, an ECDSA P-256 and an RSA host key; OpenSSH's ``ssh`` (``-o KexAlgorithms -c -m
  HostKeyAlgorithms``), asyncssh's and paramiko's clients forced to the row.  Each must reach user
  authentication, both sides must report the row's algorithms, and our server must have listed its
  methods: ssh and paramiko report the list they got; asyncssh keeps only what it has not tried yet, so
  its evidence is that it answered our list with a password attempt.

Besides the product, one row per peer and direction runs the *default offer*: our client offering
OpenSSH 9.2's lists (sntrup761x25519 first) against each server, and each peer's client with its own
defaults against our server; the expected choice is the client's first algorithm the server has.

Run from the repository root::

    python scripts/ssh_interop_matrix.py            # the full product, as a markdown table plus totals
    python scripts/ssh_interop_matrix.py --subset   # the covering subset tests/test_ssh_interop.py runs
    python scripts/ssh_interop_matrix.py --peer paramiko --direction client

``tests/test_ssh_interop.py`` imports this file for :func:`full_matrix`, :func:`covering_subset` and
:class:`Peers`.  Exit status 0 when every row passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from handshake_lib.errors import HandshakeError
from handshake_lib.net.ssh import SSHProbeServer, ssh_probe
from handshake_lib.peers.asyncssh_peers import ASYNCSSH_ALGORITHMS, IMPLICIT_MAC, asyncssh_client, asyncssh_server
from handshake_lib.peers.openssh import OPENSSH_ALGORITHMS, openssh_client, openssh_server
from handshake_lib.peers.paramiko_peers import PARAMIKO_ALGORITHMS, paramiko_client, paramiko_server
from handshake_lib.ssh.connection import Algorithms
from handshake_lib.ssh.constants import AEAD_CIPHERS, CIPHERS, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line
from handshake_lib.ssh.negotiation import NegotiatedAlgorithms

PEER_ALGORITHMS: dict[str, dict[str, tuple[str, ...]]] = {
    "OpenSSH": OPENSSH_ALGORITHMS,
    "asyncssh": ASYNCSSH_ALGORITHMS,
    "paramiko": PARAMIKO_ALGORITHMS,
}
DIRECTIONS = ("client", "server")  # client: our client -> the peer's server; server: the peer's client -> ours
DIRECTION_LABELS = {"client": "our client -> server", "server": "client -> our server"}
# One key exchange method, two names: counted once, their rows alternate between the names.
ALIASES: tuple[tuple[str, ...], ...] = (
    ("sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"),
    ("curve25519-sha256", "curve25519-sha256@libssh.org"),
)
USER = "alice"
PASSWORD = "wonderland"
OUR_AUTH_METHODS = ("publickey", "password")  # what SSHProbeServer lists (it authenticates nobody)
# What each server answers to "none": sshd runs with PasswordAuthentication no; asyncssh adds keyboard-interactive
# when it has passwords; our paramiko server lists publickey and password.
SERVER_AUTH_METHODS = {
    "OpenSSH": ("publickey",),
    "asyncssh": ("publickey", "keyboard-interactive", "password"),
    "paramiko": ("publickey", "password"),
}
TIMEOUT = 10.0


@dataclass(frozen=True)
class Combination:
    """One row of the matrix: who, which way, and the algorithms forced on both sides."""

    peer: str
    direction: str
    kex: str
    cipher: str
    mac: str | None  # None: an AEAD cipher, no MAC negotiated
    host_key: str
    default_offer: bool = False  # the client offers its default lists; the fields are the expected choice

    @property
    def id(self) -> str:
        """A readable pytest id: ``OpenSSH-server-curve25519-sha256-aes128-ctr-hmac-sha2-256-ssh-ed25519``."""
        if self.default_offer:
            return f"{self.peer}-{self.direction}-default-offer"
        return "-".join((self.peer, self.direction, self.kex, self.cipher, self.mac or "implicit", self.host_key))

    @property
    def expected(self) -> dict[str, str]:
        """What both sides must report, in the peers' shape (``<implicit>`` for an AEAD cipher's MAC)."""
        mac = self.mac or IMPLICIT_MAC
        return {
            "kex": self.kex, "host_key": self.host_key,
            "cipher_client_to_server": self.cipher, "cipher_server_to_client": self.cipher,
            "mac_client_to_server": mac, "mac_server_to_client": mac,
        }  # fmt: skip


# -- generating the rows ---------------------------------------------------------------------------------
def kex_methods(peer: str) -> list[tuple[str, ...]]:
    """The peer's key exchange methods we also have, in its order; each a tuple of the names it knows it by."""
    names = [name for name in PEER_ALGORITHMS[peer]["kex"] if name in KEX_ALGORITHMS]
    methods: list[tuple[str, ...]] = []
    for name in names:
        group = next((alias for alias in ALIASES if name in alias), (name,))
        known = tuple(alias for alias in group if alias in names)
        if known not in methods:
            methods.append(known)
    return methods


def common(peer: str, category: str, ours: Sequence[str]) -> list[str]:
    return [name for name in PEER_ALGORITHMS[peer][category] if name in ours]


def cipher_macs(peer: str) -> list[tuple[str, str | None]]:
    """(cipher, MAC) pairs: each AEAD cipher once with no MAC, each other cipher with every MAC."""
    pairs: list[tuple[str, str | None]] = []
    for cipher in common(peer, "cipher", CIPHERS):
        if cipher in AEAD_CIPHERS:
            pairs.append((cipher, None))
        else:
            pairs += [(cipher, mac) for mac in common(peer, "mac", MACS)]
    return pairs


def _first(client: Sequence[str], server: Sequence[str]) -> str:
    return next(name for name in client if name in server)  # RFC 4253 7.1: the client's first the server has


def default_offer(peer: str, direction: str) -> Combination:
    """The client offers its default lists: OpenSSH 9.2's (for our client), or the peer client's own."""
    client = OPENSSH_ALGORITHMS if direction == "client" else PEER_ALGORITHMS[peer]
    server = (
        PEER_ALGORITHMS[peer]
        if direction == "client"
        else {"kex": KEX_ALGORITHMS, "cipher": CIPHERS, "mac": MACS, "host_key": HOST_KEY_ALGORITHMS}
    )
    ours = {"kex": KEX_ALGORITHMS, "cipher": CIPHERS, "mac": MACS, "host_key": HOST_KEY_ALGORITHMS}
    chosen = {
        category: _first([n for n in client[category] if n in ours[category]], server[category])
        for category in ("kex", "cipher", "mac", "host_key")
    }
    mac = None if chosen["cipher"] in AEAD_CIPHERS else chosen["mac"]
    return Combination(peer, direction, chosen["kex"], chosen["cipher"], mac, chosen["host_key"], default_offer=True)


def full_matrix(
    peers: Sequence[str] = tuple(PEER_ALGORITHMS), directions: Sequence[str] = DIRECTIONS
) -> list[Combination]:
    """Every kex x (cipher, MAC) x host key for every peer and direction, then the default-offer rows."""
    rows: list[Combination] = []
    for peer in peers:
        for direction in directions:
            for method in kex_methods(peer):
                index = 0
                for host_key in common(peer, "host_key", HOST_KEY_ALGORITHMS):
                    for cipher, mac in cipher_macs(peer):
                        rows.append(Combination(peer, direction, method[index % len(method)], cipher, mac, host_key))
                        index += 1
            rows.append(default_offer(peer, direction))
    return rows


def covering_subset(
    peers: Sequence[str] = tuple(PEER_ALGORITHMS), directions: Sequence[str] = DIRECTIONS
) -> list[Combination]:
    """A few rows per peer and direction that still touch every kex name, cipher, MAC and host key.

    The (cipher, MAC) column walks every AEAD cipher once, then the CTR ciphers in turn with each MAC;
    the kex column cycles through the methods (a method's second name on its second turn) and the host
    key column through the host key algorithms, so every value of every column appears at least once.
    """
    rows: list[Combination] = []
    for peer in peers:
        methods, host_keys = kex_methods(peer), common(peer, "host_key", HOST_KEY_ALGORITHMS)
        ciphers = common(peer, "cipher", CIPHERS)
        aead = [(cipher, None) for cipher in ciphers if cipher in AEAD_CIPHERS]
        ctr = [cipher for cipher in ciphers if cipher not in AEAD_CIPHERS]
        macs = common(peer, "mac", MACS)
        pairs: list[tuple[str, str | None]] = aead + [(ctr[i % len(ctr)], mac) for i, mac in enumerate(macs)]
        count = max(len(pairs), len(methods), len(host_keys))
        for direction in directions:
            for row in range(count):
                method = methods[row % len(methods)]
                cipher, mac = pairs[row % len(pairs)]
                kex = method[(row // len(methods)) % len(method)]
                rows.append(Combination(peer, direction, kex, cipher, mac, host_keys[row % len(host_keys)]))
            rows.append(default_offer(peer, direction))
    return rows


# -- running a row ------------------------------------------------------------------------------------------
def _ours(negotiated: NegotiatedAlgorithms) -> dict[str, str]:
    """Our negotiated algorithms in the peers' shape."""
    return {
        "kex": negotiated.kex, "host_key": negotiated.host_key,
        "cipher_client_to_server": negotiated.cipher_client_to_server,
        "cipher_server_to_client": negotiated.cipher_server_to_client,
        "mac_client_to_server": negotiated.mac_client_to_server or IMPLICIT_MAC,
        "mac_server_to_client": negotiated.mac_server_to_client or IMPLICIT_MAC,
    }  # fmt: skip


_SSHD_KEX = re.compile(r"debug1: kex: algorithm: (\S+)")
_SSHD_HOST_KEY = re.compile(r"debug1: kex: host key algorithm: (\S+)")
_SSHD_CIPHER = re.compile(r"debug1: kex: (client->server|server->client) cipher: (\S+) MAC: (\S+)")


def sshd_negotiated(log: str) -> dict[str, str | None]:
    """What sshd logged it negotiated (LogLevel DEBUG3, ``-e``) in ``log``: the first connection in it."""
    kex, host_key = _SSHD_KEX.search(log), _SSHD_HOST_KEY.search(log)
    ciphers: dict[str, tuple[str, str]] = {}
    for direction, cipher, mac in _SSHD_CIPHER.findall(log):
        ciphers.setdefault(direction, (cipher, mac))
    none = (None, None)
    return {
        "kex": kex.group(1) if kex else None, "host_key": host_key.group(1) if host_key else None,
        "cipher_client_to_server": ciphers.get("client->server", none)[0],
        "cipher_server_to_client": ciphers.get("server->client", none)[0],
        "mac_client_to_server": ciphers.get("client->server", none)[1],
        "mac_server_to_client": ciphers.get("server->client", none)[1],
    }  # fmt: skip


@dataclass
class Outcome:
    """What one row's connection showed: each side's view of the algorithms and the methods listed."""

    combination: Combination
    ours: dict[str, str | None] = field(default_factory=dict)  # our client's or our server's record
    theirs: dict[str, str | None] = field(default_factory=dict)  # the peer's record (its log, its connection)
    methods: tuple[str, ...] | None = None  # the methods the client got (asyncssh client: what it tried)
    expected_methods: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        want = self.combination.expected
        found = []
        if self.error is not None:
            found.append(self.error)
        if self.ours != want:
            found.append(f"we negotiated {self.ours}")
        if self.theirs != want:
            found.append(f"{self.combination.peer} recorded {self.theirs}")
        if self.methods != self.expected_methods:
            found.append(f"methods {self.methods}, expected {self.expected_methods}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def result(self) -> str:
        return "ok" if self.ok else "FAIL: " + "; ".join(self.problems)


def _wait_for(condition, deadline: float) -> bool:  # noqa: ANN001 - a zero-argument predicate
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _paramiko_race(peer: str, record: object) -> bool:
    """paramiko's ``start_server`` polls for the end of the key exchange every 0.1 s and raises "Negotiation
    failed." when the transport is no longer active by then: a client that finishes the exchange, the
    ``none`` request and its goodbye inside 0.1 s (ours does) looks failed to it.  Its own log tells: it
    answered the ``none`` request, so the exchange did not fail."""
    log = getattr(record, "log", [])
    return (
        peer == "paramiko" and "Auth rejected (none)." in log and getattr(record, "error", "") == "Negotiation failed."
    )


class Peers:
    """Every server a row needs, started once: sshd, asyncssh, paramiko (all host key types) and ours.

    Use as a context manager; :meth:`run` runs one :class:`Combination` and returns its :class:`Outcome`.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Peers:
        try:
            return self._start()
        except BaseException:
            self._stack.close()  # stop what did start
            raise

    def _start(self) -> Peers:
        stack = self._stack
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-interop-")))
        self.sshd = stack.enter_context(openssh_server(host_key_types=("ed25519", "ecdsa", "rsa")))
        self.asyncssh = stack.enter_context(
            asyncssh_server(
                host_key_types=("ed25519", "ecdsa", "rsa"), passwords={USER: PASSWORD},
                authorized_keys={USER: [self.sshd.host_keys["ed25519"]]},  # any key: publickey is listed then
            )
        )  # fmt: skip
        self.paramiko = stack.enter_context(
            paramiko_server(
                host_key_types=("ed25519", "ecdsa", "rsa"), passwords={USER: PASSWORD},
                authorized_keys={USER: [self.sshd.host_keys["ed25519"]]},
            )
        )  # fmt: skip
        self.host_keys = [
            HostKeyPair.generate("ssh-ed25519"),
            HostKeyPair.generate("ecdsa-sha2-nistp256"),
            HostKeyPair.generate("ssh-rsa", rsa_bits=2048),
        ]
        self.ours = stack.enter_context(SSHProbeServer(self.host_keys, auth_methods=OUR_AUTH_METHODS, timeout=TIMEOUT))
        self.our_known_hosts = "".join(
            known_hosts_line(self.ours.host, self.ours.port, pair.host_key) + "\n" for pair in self.host_keys
        )
        self.our_known_hosts_file = folder / "known_hosts"
        self.our_known_hosts_file.write_text(self.our_known_hosts)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def run(self, combination: Combination) -> Outcome:
        started = time.monotonic()
        runner = self._run_our_client if combination.direction == "client" else self._run_their_client
        outcome = Outcome(combination)
        try:
            runner(combination, outcome)
        except HandshakeError as error:
            outcome.error = f"{type(error).__name__}: {error}"
        except Exception as error:  # a peer helper's surprise is a failed row, not a stopped matrix
            outcome.error = f"unexpected {type(error).__name__}: {error}"
        outcome.seconds = time.monotonic() - started
        return outcome

    # -- our client against the peer's server -------------------------------------------------------------
    def _run_our_client(self, row: Combination, outcome: Outcome) -> None:
        if row.default_offer:
            offer = OPENSSH_ALGORITHMS
            algorithms = Algorithms(
                kex=tuple(n for n in offer["kex"] if n in KEX_ALGORITHMS),
                host_key=tuple(n for n in offer["host_key"] if n in HOST_KEY_ALGORITHMS),
                ciphers=tuple(n for n in offer["cipher"] if n in CIPHERS),
                macs=tuple(n for n in offer["mac"] if n in MACS),
            )
        else:
            algorithms = Algorithms(
                kex=(row.kex,), host_key=(row.host_key,), ciphers=(row.cipher,), macs=(row.mac,) if row.mac else MACS
            )
        server = {"OpenSSH": self.sshd, "asyncssh": self.asyncssh, "paramiko": self.paramiko}[row.peer]
        outcome.expected_methods = SERVER_AUTH_METHODS[row.peer]
        since = len(self.sshd.log) if row.peer == "OpenSSH" else 0
        before = len(server.connections) if row.peer != "OpenSSH" else 0
        result = ssh_probe(
            server.host, server.port, user=USER, known_hosts=KnownHosts.parse(server.known_hosts),
            algorithms=algorithms, timeout=TIMEOUT,
        )  # fmt: skip
        outcome.ours = _ours(result.key_exchange.negotiated)
        outcome.methods = result.methods
        deadline = time.monotonic() + TIMEOUT
        if row.peer == "OpenSSH":
            outcome.theirs = sshd_negotiated(self.sshd.log[since:])
        else:
            _wait_for(lambda: len(server.connections) > before and server.connections[before].finished, deadline)
            record = server.connections[before] if len(server.connections) > before else None
            outcome.theirs = dict(record.negotiated) if record is not None else {}
            if record is not None and record.error and not _paramiko_race(row.peer, record):
                outcome.error = f"{row.peer} server: {record.error}"

    # -- the peer's client against our server -------------------------------------------------------------
    def _run_their_client(self, row: Combination, outcome: Outcome) -> None:
        forced = (
            {}
            if row.default_offer
            else {"kex": row.kex, "cipher": row.cipher, "mac": row.mac, "host_key": row.host_key}
        )
        before = len(self.ours.connections)
        host, port = self.ours.host, self.ours.port
        if row.peer == "OpenSSH":
            run = openssh_client(
                host, port, user=USER, known_hosts_file=self.our_known_hosts_file, kex=forced.get("kex"),
                ciphers=forced.get("cipher"), macs=forced.get("mac"), host_key_algorithms=forced.get("host_key"),
                timeout=TIMEOUT,
            )  # fmt: skip
            methods, error = run.auth_methods, run.no_matching or (None if run.reached_user_auth else run.stderr[-300:])
        elif row.peer == "asyncssh":
            run = asyncssh_client(
                host, port, user=USER, known_hosts=self.our_known_hosts, password="not the password",
                kex_algs=forced.get("kex"), encryption_algs=forced.get("cipher"), mac_algs=forced.get("mac"),
                server_host_key_algs=forced.get("host_key"), timeout=TIMEOUT,
            )  # fmt: skip
            methods = run.auth_methods
            expected_error = f"PermissionDenied: Permission denied for user {USER} on host {host}"
            error = None if run.error == expected_error else run.error
        else:
            run = paramiko_client(
                host, port, user=USER, known_hosts=self.our_known_hosts, kex=forced.get("kex"),
                ciphers=forced.get("cipher"), macs=forced.get("mac"), host_key_algorithms=forced.get("host_key"),
                timeout=TIMEOUT,
            )  # fmt: skip
            methods, error = run.auth_methods, run.error
        outcome.theirs = dict(run.negotiated)
        outcome.error = error
        deadline = time.monotonic() + TIMEOUT
        _wait_for(
            lambda: len(self.ours.connections) > before and self.ours.connections[before].reached_user_authentication,
            deadline,
        )
        if len(self.ours.connections) <= before:
            outcome.error = outcome.error or "our server saw no connection"
            return
        served = self.ours.connections[before]
        if served.key_exchanges:
            outcome.ours = _ours(served.key_exchanges[0].negotiated)
        if row.peer == "asyncssh":
            # asyncssh keeps only the methods it has not tried; it tried a password because our list had it.
            _wait_for(lambda: len(served.auth_requests) >= 2, deadline)
            tried = tuple(request.method for request in served.auth_requests)
            outcome.methods, outcome.expected_methods = tried, ("none", "password")
            if methods != []:
                outcome.error = outcome.error or f"asyncssh still had methods {methods} to try"
        else:
            outcome.methods = tuple(methods) if methods is not None else None
            outcome.expected_methods = OUR_AUTH_METHODS


# -- the command line ---------------------------------------------------------------------------------------
def markdown(outcomes: Sequence[Outcome]) -> str:
    lines = [
        "| peer | direction | kex | cipher | MAC | host key | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        row = outcome.combination
        kex = f"{row.kex} (default offer)" if row.default_offer else row.kex
        lines.append(
            f"| {row.peer} | {DIRECTION_LABELS[row.direction]} | {kex} | {row.cipher} | {row.mac or IMPLICIT_MAC} "
            f"| {row.host_key} | {outcome.result} |"
        )
    return "\n".join(lines)


def totals(outcomes: Sequence[Outcome], seconds: float) -> str:
    passed = Counter((o.combination.peer, o.combination.direction) for o in outcomes if o.ok)
    counted = Counter((o.combination.peer, o.combination.direction) for o in outcomes)
    lines = ["", "| peer | direction | rows | passed | failed |", "|---|---|---|---|---|"]
    for (peer, direction), count in counted.items():
        ok = passed[(peer, direction)]
        lines.append(f"| {peer} | {DIRECTION_LABELS[direction]} | {count} | {ok} | {count - ok} |")
    total_ok = sum(passed.values())
    lines.append(
        f"\n**{total_ok} of {len(outcomes)} rows passed** ({len(outcomes) - total_ok} failed) in {seconds:.0f} s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", action="store_true", help="only the covering subset the tests run")
    parser.add_argument("--peer", choices=tuple(PEER_ALGORITHMS), action="append", help="only this peer (repeatable)")
    parser.add_argument("--direction", choices=DIRECTIONS, action="append", help="only this direction")
    parser.add_argument("--failures-only", action="store_true", help="print only the rows that failed")
    args = parser.parse_args(argv)
    peers, directions = tuple(args.peer or PEER_ALGORITHMS), tuple(args.direction or DIRECTIONS)
    rows = (covering_subset if args.subset else full_matrix)(peers, directions)
    print(f"{len(rows)} rows ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with Peers() as running:
        for number, row in enumerate(rows, 1):
            outcomes.append(running.run(row))
            if number % 50 == 0:
                print(f"{number}/{len(rows)} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    shown = [o for o in outcomes if not o.ok] if args.failures_only else outcomes
    print(markdown(shown))
    print(totals(outcomes, time.monotonic() - started))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
