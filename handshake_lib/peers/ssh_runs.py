"""The live runs of lesson 12 and of exercise 12: our SSH client against OpenSSH ``sshd``, learner code in the loop.

Theory of operation
-------------------
Each run uses Debian's ``sshd`` on loopback (:func:`~handshake_lib.peers.openssh.openssh_server`, fresh
config, the course's host keys): the caller's, or one shared by the whole process (started on first use,
stopped at exit: grading a class starts it once, not three times per notebook), runs our client
(:func:`~handshake_lib.net.ssh.ssh_probe`) up to the server's list of authentication methods, and reports
instead of raising:

* :func:`live_session` (lesson 12): one session, with the shared secret K our client computed (the
  ``on_secrets`` hook), so the lesson can lay out H and derive keys A..F from the very values that
  OpenSSH's signature and MACs accepted.
* :func:`key_share_sizes` (lesson 12): the post-quantum hybrid beside Curve25519, live: each method's
  key shares as they crossed the wire (sntrup761x25519 and curve25519 against sshd, which has no
  mlkem768x25519; mlkem768x25519 against asyncssh's server, which has).
* :func:`run_learner_ssh` (exercise 12): the learner's ``negotiate_algorithm``, ``exchange_hash`` and
  ``derive_key`` plugged into a key exchange with sshd through :func:`learner_stages`, which adapts
  each plain function (lists of names, bytes, an int) into the library's stage
  (:class:`~handshake_lib.ssh.stages.SSHStages`).  Right, and the server lists its methods; wrong, and
  the run says who noticed what: our client (a bad signature over H, a packet whose MAC fails) or
  OpenSSH (its log: "Corrupted MAC on input", "incorrect signature", "Bad packet length").

The learner's functions are called with plain data only (str, lists of str, bytes, int) and must
return plain data, so the grader can run them in its sandbox through stand-ins (``grading.runner``).

Limits: the learner's ``exchange_hash`` and ``derive_key`` compute SHA-256 and K as an mpint, which is
what curve25519-sha256 uses, so :data:`EXERCISE_ALGORITHMS` offers that method alone for those two
runs; the negotiation run offers lists in an order unlike OpenSSH's, so that "the server's first
choice" and "the client's first choice" give different answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    BadHostKeySignature,
    BadPacketMac,
    HandshakeError,
    InternalError,
    NoCommonAlgorithm,
    PeerDisconnect,
    UnexpectedEOF,
)
from ..net.ssh import ProbeResult, ssh_probe
from ..ssh.client import SSHClient
from ..ssh.connection import Algorithms
from ..ssh.constants import AEAD_CIPHERS
from ..ssh.exchange_hash import ExchangeHash
from ..ssh.exchange_hash import exchange_hash as library_exchange_hash
from ..ssh.kdf import DerivedKeys, derive_all
from ..ssh.kex import KexMethod, SharedSecret, decode_mpint_body, kex_method
from ..ssh.known_hosts import KnownHosts
from ..ssh.messages import KexInit
from ..ssh.negotiation import CATEGORIES, NegotiatedAlgorithms
from ..ssh.stages import LIBRARY_STAGES, SSHStages
from . import BackgroundPeer
from .openssh import OpenSSHServer, openssh_server

__all__ = [
    "EXERCISE_ALGORITHMS",
    "NEGOTIATION_ALGORITHMS",
    "KeyShareSize",
    "LearnerSSHRun",
    "LiveSSHSession",
    "key_share_sizes",
    "learner_stages",
    "live_session",
    "run_learner_ssh",
    "server_version",
]

# Exercise 12's offer for the H and key runs: one method whose hash is SHA-256 and whose K is an mpint;
# aes256-ctr keys of 32 bytes and hmac-sha2-512 keys of 64 bytes, so a derive_key without the
# extension loop (one 32-byte SHA-256 block) cannot make the MAC keys.  EtM: the length stays clear, so a
# wrong key shows up as what it is, a MAC that does not match.
EXERCISE_ALGORITHMS = Algorithms(
    kex=("curve25519-sha256",),
    host_key=("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"),
    ciphers=("aes256-ctr",),
    macs=("hmac-sha2-512-etm@openssh.com",),
)
# The negotiation run: our client prefers what OpenSSH puts second (curve25519 before sntrup761, AES-CTR
# before chacha20-poly1305), so a rule that takes the server's order picks what sshd does not.
NEGOTIATION_ALGORITHMS = Algorithms(
    kex=("curve25519-sha256", "sntrup761x25519-sha512@openssh.com", "ecdh-sha2-nistp256"),
    host_key=("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"),
    ciphers=("aes256-ctr", "aes128-ctr", "chacha20-poly1305@openssh.com"),
    macs=("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"),
)

NegotiateAlgorithm = Callable[[list[str], list[str]], "str | None"]
LearnerExchangeHash = Callable[..., bytes]
DeriveKey = Callable[[int, bytes, bytes, str, int], bytes]


# One sshd per process for the runs that are given none: starting one costs about 0.8 s, and an instructor
# grading 200 notebooks runs three of these per notebook.  Each run reads only the log lines written after
# it began, so runs one after another can share it; it stops at interpreter exit (BackgroundPeer).
_SHARED_SSHD: BackgroundPeer[OpenSSHServer] = BackgroundPeer(openssh_server)


@contextlib.contextmanager
def _server(sshd: OpenSSHServer | None, timeout: float) -> Iterator[OpenSSHServer]:
    if sshd is not None:
        yield sshd
        return
    shared = _SHARED_SSHD.get()
    if not shared.running:  # it died (killed by hand, the machine asleep): start a fresh one
        _SHARED_SSHD.stop()
        shared = _SHARED_SSHD.get()
    yield shared


def _sshd_says(sshd: OpenSSHServer, start: int, wait_until: float) -> list[str]:
    """sshd's own lines (not its debug chatter) logged after byte ``start``.

    Its per-connection child may still be writing as it exits: wait (until ``wait_until``) for a line, then
    for the log to stay the same for 50 ms.
    """
    size, lines = -1, []
    while True:
        log = sshd.log[start:]
        lines = [
            line.strip()
            for line in log.splitlines()
            if line.strip() and not line.startswith("debug") and not line.startswith("Connection from")
        ]
        if (lines and len(log) == size) or time.monotonic() >= wait_until:
            return lines
        size = len(log)
        time.sleep(0.05)


# -- lesson 12: a live session ------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveSSHSession:
    """One session of our client with sshd: the probe's result and K, as our client computed it."""

    result: ProbeResult
    shared_secret: SharedSecret
    sshd_version: str

    @property
    def exchange_hash(self) -> ExchangeHash:
        return self.result.key_exchange.exchange_hash

    @property
    def session_id(self) -> bytes:
        return self.result.key_exchange.session_id


def live_session(
    sshd: OpenSSHServer | None = None, *, algorithms: Algorithms | None = None, timeout: float = 10.0
) -> LiveSSHSession:
    """Our client against sshd (started for the call unless given), host key checked against its known_hosts."""
    secrets: list[SharedSecret] = []
    with _server(sshd, timeout) as server:
        result = ssh_probe(
            server.host, server.port, user=server.user, known_hosts=KnownHosts.parse(server.known_hosts),
            algorithms=algorithms, timeout=timeout, on_secrets=lambda cookie, secret, digest: secrets.append(secret),
        )  # fmt: skip
    return LiveSSHSession(result, secrets[0], result.server_identification)


# -- lesson 12: the hybrid beside Curve25519 -------------------------------------------------------------
@dataclass(frozen=True)
class KeyShareSize:
    """One key exchange method, live: the sizes of what each side sent, and of K."""

    method: str
    peer: str
    client_share: int  # Q_C (the KEM public key || the X25519 key, for a hybrid)
    server_share: int  # Q_S (the KEM ciphertext || the X25519 key)
    init_packet: int  # the whole KEX_ECDH_INIT packet on the wire
    reply_packet: int  # the whole KEX_ECDH_REPLY (host key and signature included)
    k_encoding: str
    k_bytes: int
    k_from: str = ""  # what K was hashed from (a hybrid), or how the number was read

    @property
    def k_text(self) -> str:
        return f"{self.k_encoding}, {self.k_bytes} bytes" + (f": {self.k_from}" if self.k_from else "")


def _share_size(result: ProbeResult, secret: SharedSecret, peer: str) -> KeyShareSize:
    # Messages 30 and 31: KEX_ECDH_INIT/REPLY here (every method we run against sshd sends strings).
    numbered = {entry.message.message_number: entry for entry in result.transcript if entry.packet is not None}
    init, reply = numbered[30], numbered[31]
    h = result.key_exchange.exchange_hash
    client_field, server_field = h.fields[5], h.fields[6]  # Q_C and Q_S as they went into H
    return KeyShareSize(
        result.key_exchange.negotiated.kex, peer, len(client_field.encoded) - 4, len(server_field.encoded) - 4,
        len(init.wire), len(reply.wire), secret.encoding, len(secret.raw),
        f"{h.hash.upper()}({' || '.join(f'{name} ({len(value)} B)' for name, value in secret.parts)})"
        if secret.parts else "the X25519 output as a number",
    )  # fmt: skip


def key_share_sizes(sshd: OpenSSHServer | None = None, *, timeout: float = 10.0) -> list[KeyShareSize]:
    """curve25519-sha256 and sntrup761x25519-sha512 against sshd, mlkem768x25519-sha256 against asyncssh."""
    rows = []
    with _server(sshd, timeout) as server:
        for method in ("curve25519-sha256", "sntrup761x25519-sha512@openssh.com"):
            session = live_session(server, algorithms=Algorithms(kex=(method,)), timeout=timeout)
            rows.append(_share_size(session.result, session.shared_secret, server_version(session)))
    from .asyncssh_peers import asyncssh_server  # imported here: asyncssh is slow to import

    secrets: list[SharedSecret] = []
    with asyncssh_server(kex_algs=["mlkem768x25519-sha256"]) as peer:
        result = ssh_probe(
            peer.host, peer.port, known_hosts=KnownHosts.parse(peer.known_hosts),
            algorithms=Algorithms(kex=("mlkem768x25519-sha256",)), timeout=timeout,
            on_secrets=lambda cookie, secret, digest: secrets.append(secret),
        )  # fmt: skip
    rows.append(_share_size(result, secrets[0], "asyncssh"))
    return rows


def server_version(session: LiveSSHSession) -> str:
    return session.sshd_version.removeprefix("SSH-2.0-").split()[0]


# -- exercise 12: the learner's functions as stages ------------------------------------------------------
def _negotiate_stage(negotiate_algorithm: NegotiateAlgorithm) -> Callable[[KexInit, KexInit], NegotiatedAlgorithms]:
    def negotiate(client: KexInit, server: KexInit) -> NegotiatedAlgorithms:
        chosen: list[str | None] = []
        for category, attribute in CATEGORIES:
            client_list, server_list = list(getattr(client, attribute)), list(getattr(server, attribute))
            if category.startswith("MAC") and chosen[2 if "client to" in category else 3] in AEAD_CIPHERS:
                chosen.append(None)  # an AEAD cipher brings its own MAC: the lists are not consulted
                continue
            name = negotiate_algorithm(client_list, server_list)
            if name is None:
                raise NoCommonAlgorithm(category, client_list, server_list)
            if not isinstance(name, str):
                raise TypeError(f"negotiate_algorithm returned {type(name).__name__} for {category}, not a name")
            chosen.append(name)
        kex, host_key, cipher_cs, cipher_sc, mac_cs, mac_sc, compression_cs, compression_sc = chosen
        assert kex and host_key and cipher_cs and cipher_sc and compression_cs and compression_sc
        return NegotiatedAlgorithms(kex, host_key, cipher_cs, cipher_sc, mac_cs, mac_sc, compression_cs, compression_sc)

    return negotiate


def _k_as_number(method: KexMethod, shared_secret: SharedSecret | bytes) -> int:
    encoded = shared_secret.encoded if isinstance(shared_secret, SharedSecret) else bytes(shared_secret)
    if method.shared_secret_encoding != "mpint" or method.hash != "sha256":
        raise ValueError(f"your function computes SHA-256 over K as an mpint; {method.name} is not such a method")
    return decode_mpint_body(encoded[4:], "K") if len(encoded) > 4 else 0


def _exchange_hash_stage(learner: LearnerExchangeHash) -> Callable[..., ExchangeHash]:
    def exchange_hash(method: KexMethod | str, **inputs: Any) -> ExchangeHash:
        method = kex_method(method) if isinstance(method, str) else method
        library = library_exchange_hash(method, **inputs)  # its fields are what the lesson shows beside yours
        digest = learner(
            bytes(inputs["client_version"]).decode("ascii", "backslashreplace"),
            bytes(inputs["server_version"]).decode("ascii", "backslashreplace"),
            bytes(inputs["client_kexinit"]),
            bytes(inputs["server_kexinit"]),
            bytes(inputs["host_key_blob"]),
            bytes(inputs["client_public"]),
            bytes(inputs["server_public"]),
            _k_as_number(method, inputs["shared_secret"]),
        )
        if not isinstance(digest, bytes | bytearray) or len(digest) != len(library.digest):
            shown = f"{len(digest)} bytes" if isinstance(digest, bytes | bytearray) else type(digest).__name__
            raise ValueError(f"exchange_hash must return the {len(library.digest)}-byte SHA-256 digest, not {shown}")
        return dataclasses.replace(library, digest=bytes(digest))

    return exchange_hash


def _derive_keys_stage(derive_key: DeriveKey) -> Callable[..., DerivedKeys]:
    def derive(hash_name: str, encoded_k: bytes, h: bytes, session_id: bytes, letter: str, length: int) -> bytes:
        if hash_name != "sha256":
            raise ValueError(f"your derive_key uses SHA-256; this key exchange hashes with {hash_name}")
        k = decode_mpint_body(encoded_k[4:], "K") if len(encoded_k) > 4 else 0
        key = derive_key(k, bytes(h), bytes(session_id), letter, length)
        if not isinstance(key, bytes | bytearray) or len(key) != length:
            shown = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
            raise ValueError(f"derive_key returned {shown} for key {letter}; {length} bytes were asked for")
        return bytes(key)

    def derive_keys(hash_name: str, encoded_k: bytes, h: bytes, session_id: bytes, lengths: Any) -> DerivedKeys:
        return derive_all(hash_name, encoded_k, h, session_id, lengths, derive=derive)

    return derive_keys


def learner_stages(
    *,
    negotiate_algorithm: NegotiateAlgorithm | None = None,
    exchange_hash: LearnerExchangeHash | None = None,
    derive_key: DeriveKey | None = None,
) -> SSHStages:
    """The library's stages with the learner's plain functions adapted in (those given; the rest the library's).

    * ``negotiate_algorithm(client_list, server_list) -> name or None``, asked once per category (not for
      the MACs when the cipher is an AEAD); None ends the key exchange with NoCommonAlgorithm.
    * ``exchange_hash(client_version, server_version, client_kexinit, server_kexinit, host_key,
      client_public, server_public, shared_secret) -> H``: versions as str without CR LF, the rest bytes,
      K as an int (curve25519-sha256: SHA-256, K an mpint).
    * ``derive_key(shared_secret, exchange_hash, session_id, letter, length) -> key``: K as an int.
    """
    replacements: dict[str, Any] = {}
    if negotiate_algorithm is not None:
        replacements["negotiate"] = _negotiate_stage(negotiate_algorithm)
    if exchange_hash is not None:
        replacements["exchange_hash"] = _exchange_hash_stage(exchange_hash)
    if derive_key is not None:
        replacements["derive_keys"] = _derive_keys_stage(derive_key)
    return LIBRARY_STAGES.replace(**replacements) if replacements else LIBRARY_STAGES


@dataclass
class LearnerSSHRun:
    """Exercise 12's live step: how far the key exchange with sshd went with the learner's functions in it."""

    yours: tuple[str, ...]
    sshd_version: str = ""
    result: ProbeResult | None = None
    error: HandshakeError | None = None
    sshd_log: list[str] = field(default_factory=list)

    @property
    def session_up(self) -> bool:
        """The transport came up and the server answered the ``none`` request with its methods."""
        return self.result is not None and bool(self.result.methods)

    @property
    def negotiated(self) -> NegotiatedAlgorithms | None:
        return self.result.key_exchange.negotiated if self.result is not None else None

    @property
    def noticed_by(self) -> str:
        """Who stopped the key exchange: "" (nobody), "your function", "our client" or "OpenSSH"."""
        if self.error is None:
            return ""
        if isinstance(self.error, InternalError | NoCommonAlgorithm):
            return "your function"
        if isinstance(self.error, PeerDisconnect | UnexpectedEOF):
            return "OpenSSH"
        return "our client"

    def outcome(self) -> str:
        if self.session_up:
            assert self.result is not None
            return f"the session came up: {self.sshd_version} offers {', '.join(self.result.methods)}"
        if self.error is None:
            return "the server answered without listing methods"
        why = {
            BadHostKeySignature: "OpenSSH's signature over our H does not verify: the H we computed is not the H "
            "OpenSSH signed",
            BadPacketMac: "OpenSSH's first encrypted packet does not open with our keys",
        }.get(type(self.error), "")
        return f"{self.noticed_by} stopped it: {type(self.error).__name__}: {self.error}" + (f" ({why})" if why else "")

    def brief(self) -> str:
        """One line: the outcome and OpenSSH's last word (for a test's failure message)."""
        said = f"; OpenSSH's log: {' | '.join(self.sshd_log[-2:])}" if self.sshd_log and not self.session_up else ""
        return self.outcome() + said

    def summary(self) -> str:
        lines = [f"your functions in the loop: {', '.join(self.yours) or 'none'}", self.outcome()]
        if self.result is not None:
            completed = self.result.key_exchange
            lines += ["negotiated:", *("  " + line for line in completed.negotiated.describe().splitlines())]
            lines.append(f"H (signed by OpenSSH, checked by our client): {completed.exchange_hash.digest.hex()}")
        elif self.error is not None and self.error.exchange is not None:
            transcript = self.error.exchange.transcript
            crossed = [f"{'->' if e.direction == 'client->server' else '<-'} {e.name}" for e in transcript]
            lines.append("on the wire: " + ", ".join(crossed))
        if self.sshd_log:
            lines.append("OpenSSH's log: " + " | ".join(self.sshd_log[-3:]))
        return "\n".join(lines)


def run_learner_ssh(
    *,
    negotiate_algorithm: NegotiateAlgorithm | None = None,
    exchange_hash: LearnerExchangeHash | None = None,
    derive_key: DeriveKey | None = None,
    sshd: OpenSSHServer | None = None,
    algorithms: Algorithms | None = None,
    timeout: float = 10.0,
) -> LearnerSSHRun:
    """A key exchange with sshd (started for the call unless given) with the learner's functions in our client.

    The negotiation run offers :data:`NEGOTIATION_ALGORITHMS`, the others :data:`EXERCISE_ALGORITHMS`
    (``algorithms`` overrides).  Never raises for what the learner's functions do: the run reports it.
    """
    stages = learner_stages(negotiate_algorithm=negotiate_algorithm, exchange_hash=exchange_hash, derive_key=derive_key)
    if algorithms is None:
        algorithms = NEGOTIATION_ALGORITHMS if negotiate_algorithm is not None else EXERCISE_ALGORITHMS
    run = LearnerSSHRun(tuple(sorted(stages.replaced())))
    with _server(sshd, timeout) as server:
        start = len(server.log)
        client = SSHClient(
            server.host, server.port, user=server.user, known_hosts=KnownHosts.parse(server.known_hosts),
            algorithms=algorithms, stages=stages,
        )  # fmt: skip
        try:
            run.result = ssh_probe(server.host, server.port, client=client, timeout=timeout)
        except HandshakeError as error:
            run.error = error
        # sshd's child logs its verdict as it exits; give it a moment when something went wrong.
        run.sshd_log = _sshd_says(server, start, time.monotonic() + (0.5 if run.error is not None else 0.0))
        run.sshd_version = run.result.server_identification if run.result is not None else _peer_line(run.error)
    return run


def _peer_line(error: HandshakeError | None) -> str:
    if error is None or error.exchange is None:
        return ""
    for entry in error.exchange.transcript:
        if entry.name == "identification" and entry.direction == "server->client":
            return bytes(entry.message.line).decode("ascii", "backslashreplace")  # type: ignore[union-attr]
    return ""
