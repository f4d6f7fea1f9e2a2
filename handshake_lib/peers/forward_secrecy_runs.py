"""Lesson 09's live runs: two recorded sessions with OpenSSL, a stolen key, and the learner's ECDHE stages.

Theory of operation
-------------------
:func:`record_sessions` starts one OpenSSL server (:func:`~handshake_lib.peers.openssl.openssl_server`: a
fresh course PKI and RSA key, loopback only, a key log) that accepts one RSA key exchange suite and one
ECDHE suite, and fetches its page twice with our client, once per suite, each connection recorded as a
pcap by :func:`~handshake_lib.net.tls.tls_get` (``record_to``).  It keeps both recordings, the master
secret OpenSSL logged for each, and the server's private key *file* as ``s_server`` reads it: what a thief
who breaks into the server later walks away with.  On the ECDHE run our client's
``ecdhe_premaster_secret`` stage is the library's own, wrapped to keep what a lesson shows (our
ephemeral private key, both public values, the pre-master secret); the recording is refused unless
OpenSSL's key log agrees with the master secret our client derived from it.

:meth:`ForwardSecrecyRecording.decrypt_with_stolen_key` hands both pcaps and the stolen key to the same
decoder as ``handshakes tls decode --server-key`` (:func:`~handshake_lib.tls.capture.decode_tls_capture`):
the RSA session opens record by record, the ECDHE one stops where its ``problem`` says.

The exercise's live steps report instead of raising (the learner's function may fail any way):

* :func:`run_learner_ecdhe` plugs the learner's ``ecdhe_premaster_secret`` and
  ``check_server_key_exchange_signature`` into our client (:class:`~handshake_lib.tls.stages.Stages`)
  for an ECDHE handshake with a fresh OpenSSL server: the page arrives, or OpenSSL refuses our Finished
  (``bad_record_mac``: a wrong pre-master secret gives wrong keys), or our client refuses OpenSSL's
  genuine signature (``decrypt_error``: OpenSSL logs the alert it received);
* :func:`run_learner_decryption` calls the learner's ``master_secret_from_stolen_key`` on a recorded
  RSA session's key exchange and the stolen key, writes the answer as a key log line, and decrypts the
  recording with it: the page appears, or the decoder says the client's Finished does not open.

This module drives peers over sockets, so it sits in ``peers`` above the sans-I/O ``tls`` package.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519

from ..errors import HandshakeError
from ..net.tls import TLSResponse, tls_get
from ..tls.capture import TLSCaptureConnection, decode_tls_capture
from ..tls.constants import NamedGroup
from ..tls.key_exchange import ECDHESecret, ECDHPrivateKey, ecdhe_premaster_secret, parse_group_names
from ..tls.keylog import client_random_line, parse_keylog
from ..tls.stages import CheckServerKeyExchangeSignature, Stages
from ..tls.suites import parse_suite_name
from .openssl import openssl_server

__all__ = [
    "ECDHE_SUITE",
    "RSA_SUITE",
    "EphemeralValues",
    "ForwardSecrecyRecording",
    "LearnerDecryptionRun",
    "LearnerEcdheRun",
    "MasterSecretFromStolenKey",
    "RecordedSession",
    "record_sessions",
    "run_learner_decryption",
    "run_learner_ecdhe",
]

RSA_SUITE = "AES128-GCM-SHA256"  # TLS_RSA_WITH_AES_128_GCM_SHA256: the pre-master secret travels encrypted
ECDHE_SUITE = "ECDHE-RSA-AES128-GCM-SHA256"  # the same record protection, an ephemeral key exchange

MasterSecretFromStolenKey = Callable[[TLSCaptureConnection, rsa.RSAPrivateKey], bytes]
"""Exercise 09's (c): the master secret of a recorded RSA session, from its key exchange and the stolen key."""


@dataclass(frozen=True)
class EphemeralValues:
    """One ECDHE exchange as our client computed it (the private half never left the process)."""

    group: str
    client_private: bytes = field(repr=False)  # X25519: the 32-byte scalar; P-256/P-384: the scalar, big-endian
    client_public: bytes
    server_public: bytes
    pre_master_secret: bytes = field(repr=False)


@dataclass
class RecordedSession:
    """One page fetched from OpenSSL and recorded as a pcap, with the master secret OpenSSL logged."""

    name: str
    suite_name: str  # OpenSSL's name
    pcap: bytes
    response: TLSResponse
    openssl_master_secret: bytes | None
    ephemeral: EphemeralValues | None = None

    @property
    def same_master_secret(self) -> bool:
        return self.openssl_master_secret == self.response.handshake.master_secret


@dataclass
class ForwardSecrecyRecording:
    """Two recorded sessions with one OpenSSL server, and that server's private key file (the theft)."""

    rsa: RecordedSession
    ecdhe: RecordedSession
    server_key_pem: bytes = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def sessions(self) -> dict[str, RecordedSession]:
        return {self.rsa.name: self.rsa, self.ecdhe.name: self.ecdhe}

    @property
    def server_private_key(self) -> rsa.RSAPrivateKey:
        """The stolen key, read from the PEM file as the server kept it."""
        key = serialization.load_pem_private_key(self.server_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)  # the course PKI's server key
        return key

    def decrypt_with_stolen_key(self) -> dict[str, TLSCaptureConnection]:
        """Both recordings through ``tls decode --server-key``'s decoder: one connection per session."""
        key = self.server_private_key
        found: dict[str, TLSCaptureConnection] = {}
        for name, session in self.sessions.items():
            connections = decode_tls_capture(session.pcap, server_key=key)
            if len(connections) != 1:
                raise HandshakeError(f"the {name} recording holds {len(connections)} TLS connections, not one")
            found[name] = connections[0]
        return found


def _private_bytes(key: ECDHPrivateKey) -> bytes:
    if isinstance(key, x25519.X25519PrivateKey):
        return key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    return key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")


def _public_bytes(key: ECDHPrivateKey) -> bytes:
    if isinstance(key, x25519.X25519PrivateKey):
        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def record_sessions(
    *,
    rsa_suite: str = RSA_SUITE,
    ecdhe_suite: str = ECDHE_SUITE,
    group: str = "x25519",
    extended_master_secret: bool = True,
    timeout: float = 5.0,
) -> ForwardSecrecyRecording:
    """Fetch one page over ``rsa_suite`` and one over ``ecdhe_suite`` (with ``group``) from the same fresh
    OpenSSL server, each recorded as a pcap; keep the server's key file.  ``extended_master_secret=False``:
    our client does not offer RFC 7627 (as clients before 2015).  HandshakeError if OpenSSL's key log
    disagrees with our client about either master secret."""
    groups = parse_group_names(group)
    kept: list[EphemeralValues] = []

    def keeping(client_private_key: ECDHPrivateKey, server_public: bytes, /) -> bytes:
        secret = ecdhe_premaster_secret(client_private_key, server_public)
        kept.append(
            EphemeralValues(
                NamedGroup(groups[0]).name, _private_bytes(client_private_key), _public_bytes(client_private_key),
                server_public, secret,
            )
        )  # fmt: skip
        return secret

    sessions: list[RecordedSession] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-lesson09-") as folder, \
            openssl_server(f"{rsa_suite}:{ecdhe_suite}", timeout=timeout) as peer:  # fmt: skip
        for name, suite_name in (("RSA key exchange", rsa_suite), ("ECDHE", ecdhe_suite)):
            path = Path(folder) / f"{suite_name}.pcap"
            response = tls_get(
                peer.url, cafile=peer.cafile, cipher_suites=[parse_suite_name(suite_name)], groups=groups,
                record_to=path, timeout=timeout, stages=Stages(ecdhe_premaster_secret=keeping),
                extended_master_secret=extended_master_secret,
            )  # fmt: skip
            session = RecordedSession(
                name, suite_name, path.read_bytes(), response, peer.master_secret(response.handshake.client_random)
            )
            if not session.same_master_secret:
                raise HandshakeError(f"{name}: OpenSSL's key log does not hold the master secret our client derived")
            sessions.append(session)
        key_pem = peer.files.key_path.read_bytes()
        certificate = peer.certificate
    if len(kept) != 1:
        raise HandshakeError(f"the ECDHE session computed {len(kept)} pre-master secrets, not one")
    sessions[1].ephemeral = kept[0]
    return ForwardSecrecyRecording(sessions[0], sessions[1], key_pem, certificate)


# -- the exercise's live steps --------------------------------------------------------------------------
@dataclass
class LearnerEcdheRun:
    """An ECDHE handshake with OpenSSL in which the learner's stages computed the secret and checked the key."""

    suite_name: str
    group: str
    status: int | None = None
    body: bytes = b""
    error: str = ""  # our client's error, if the handshake failed
    openssl_error: str = ""  # what OpenSSL logged for the connection
    openssl_agrees: bool = False  # OpenSSL's key log holds the master secret our client derived

    @property
    def page_arrived(self) -> bool:
        return self.status == 200 and bool(self.body)

    def line(self) -> str:
        """The summary on one line (a grader's feedback has one line per test)."""
        return "; ".join(part.strip() for part in self.summary().splitlines())

    def summary(self) -> str:
        lines = [f"{self.suite_name} with {self.group}:"]
        if self.status is not None:
            lines.append(f"  HTTP {self.status}, {len(self.body)} bytes: {self.body[:60]!r}")
            lines.append(
                "  OpenSSL's key log: " + ("the same master secret" if self.openssl_agrees else "ANOTHER secret")
            )
        if self.error:
            lines.append(f"  our client: {self.error}")
        if self.status is None:
            lines.append(f"  OpenSSL: {self.openssl_error or 'no error logged'}")
        return "\n".join(lines)


def run_learner_ecdhe(
    ecdhe_premaster_secret: ECDHESecret | None = None,
    check_server_key_exchange_signature: CheckServerKeyExchangeSignature | None = None,
    *,
    suite_name: str = ECDHE_SUITE,
    groups: Sequence[str] = ("x25519",),
    timeout: float = 5.0,
) -> list[LearnerEcdheRun]:
    """One handshake and GET per group with a fresh OpenSSL server restricted to ``suite_name``, our client
    using the learner's stages (None: the library's).  Reported, never raised."""
    changes: dict[str, Any] = {}
    if ecdhe_premaster_secret is not None:
        changes["ecdhe_premaster_secret"] = ecdhe_premaster_secret
    if check_server_key_exchange_signature is not None:
        changes["check_server_key_exchange_signature"] = check_server_key_exchange_signature
    stages = Stages(**changes)
    runs = []
    with openssl_server(suite_name, timeout=timeout) as peer:
        for name in groups:
            run = LearnerEcdheRun(suite_name, name)
            seen = len(peer.connections)
            try:
                response = tls_get(
                    peer.url, cafile=peer.cafile, cipher_suites=[parse_suite_name(suite_name)],
                    groups=parse_group_names(name), stages=stages, timeout=timeout,
                )  # fmt: skip
            except (HandshakeError, OSError) as error:
                run.error = f"{type(error).__name__}: {error}"
                run.openssl_error = peer.server.error_of(seen, wait=1.0)
            else:
                run.status, run.body = response.status, response.body
                run.openssl_agrees = peer.master_secret(response.handshake.client_random) == (
                    response.handshake.master_secret
                )
            runs.append(run)
    return runs


@dataclass
class LearnerDecryptionRun:
    """A recorded RSA session decrypted with the master secret the learner's function gave."""

    master_secret: bytes | None = None
    expected_length: int = 48
    connection: TLSCaptureConnection | None = None
    error: str = ""

    @property
    def page(self) -> bytes:
        """What the server sent, decrypted (headers and body), when the records opened."""
        if self.connection is None or not self.connection.decrypted:
            return b""
        return self.connection.application_data("server->client")

    def line(self) -> str:
        """What happened on one line (a grader's feedback has one line per test)."""
        if self.error or self.connection is None or not self.connection.decrypted:
            return self.summary()
        return f"every record opened; the server sent {len(self.page)} bytes starting {self.page[:40]!r}"

    def summary(self) -> str:
        if self.error:
            return f"stopped: {self.error}"
        assert self.connection is not None
        if self.connection.decrypted:
            return f"every record opened; the server sent {len(self.page)} bytes:\n{self.page.decode(errors='replace')}"
        return f"the records do not open: {self.connection.problem}"


def run_learner_decryption(
    master_secret_from_stolen_key: MasterSecretFromStolenKey, session: RecordedSession, server_key: rsa.RSAPrivateKey
) -> LearnerDecryptionRun:
    """Decrypt ``session``'s recording with the master secret the learner's function derives from its key
    exchange (read from the recording with no key) and the stolen ``server_key``.  Reported, never raised."""
    run = LearnerDecryptionRun()
    (bare,) = decode_tls_capture(session.pcap)  # the handshake's clear part: randoms, ClientKeyExchange
    if not bare.encrypted_pre_master_secret:
        run.error = (
            f"nothing for the stolen key to decrypt: {bare.suite_name}'s ClientKeyExchange holds the client's "
            "ephemeral public value, not an encrypted pre-master secret"
        )
        return run
    try:
        secret = master_secret_from_stolen_key(bare, server_key)
    except Exception as error:  # noqa: BLE001 - the learner's function; report, do not crash
        run.error = f"master_secret_from_stolen_key raised {type(error).__name__}: {error}"
        return run
    if not isinstance(secret, bytes) or len(secret) != run.expected_length:
        shown = f"{len(secret)} bytes" if isinstance(secret, bytes) else type(secret).__name__
        run.error = f"master_secret_from_stolen_key returned {shown}, not the 48-byte master secret"
        return run
    run.master_secret = secret
    (run.connection,) = decode_tls_capture(
        session.pcap, keylog=parse_keylog(client_random_line(bare.client_random, secret))
    )
    return run
