"""Runs of our TLS 1.2 client and server against OpenSSL that look inside the RSA key exchange.

Theory of operation
-------------------
Lessons 05 and 06 check the pre-master and master secrets from both ends of a real connection.  The
peer is OpenSSL behind Python's ``ssl``, started by :func:`handshake_lib.peers.openssl.openssl_server` with fresh
keys and a key log; because the run made the server's key itself, it can do what only the server should
be able to do and decrypt our ClientKeyExchange, and it can read the master secret OpenSSL wrote to its
key log (the ``CLIENT_RANDOM`` line of that connection).

* :func:`live_key_exchange`: one page fetched by our client; the pre-master secret as our client made
  it, as it crossed the wire, decrypted with the server's key, and the master secret the PRF makes of
  it next to OpenSSL's (:class:`LiveKeyExchange`).
* :func:`live_handshake_outcome` / :func:`live_tampered_exchange`: our client with a changed stage (a
  tampered ciphertext, a learner's PRF) up to the end of the handshake, and how OpenSSL ended it
  (:class:`TamperedOutcome`), keeping the client's transcript even when it fails.
* :func:`openssl_client_exchange`: the other way round, OpenSSL as the client and our
  :class:`~handshake_lib.net.tls.TLSPageServer` as the server; OpenSSL's ``RSA`` key log line
  against the pre-master secret our server decrypted.
* :func:`record_live_handshake` / :func:`record_key_schedules`: what
  :class:`~handshake_lib.tls.key_schedule.RecordedHandshake` keeps, from live runs; the recorder of
  ``handshake_lib/data/rsa_key_schedules.json`` (``scripts/regenerate_data.py``).

Every wait has a deadline (``timeout``) and every peer stops when its ``with`` block ends.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from .. import net
from ..errors import HandshakeError, PeerAlert, TLSAlert
from ..net.tls import TLSPageServer, TLSResponse, tls_get
from ..tls import prf as prf_module
from ..tls import rsa_kx
from ..tls.client import TLSClient
from ..tls.connection import HandshakeComplete, session_hash_messages
from ..tls.constants import CipherSuite, ProtocolVersion
from ..tls.key_schedule import RecordedHandshake, derive_keys, derive_master_secret
from ..tls.pair import PairKeys
from ..tls.stages import LIBRARY_STAGES, Stages
from ..tls.suites import RSA_SUITE_NAMES, parse_suite_name, suite_params
from .openssl import OpenSSLServer, openssl_server

__all__ = [
    "LiveKeyExchange",
    "TamperedOutcome",
    "rsa_suite_of",
    "live_key_exchange",
    "live_handshake_outcome",
    "live_tampered_exchange",
    "openssl_client_exchange",
    "record_live_handshake",
    "record_key_schedules",
]

_TLS12 = int(ProtocolVersion.TLS1_2)


def rsa_suite_of(peer: OpenSSLServer) -> CipherSuite:
    """The one RSA key-exchange suite ``peer`` was started with; ValueError for any other cipher string."""
    if peer.ciphers not in RSA_SUITE_NAMES:
        raise ValueError(
            f"start the server with one of {', '.join(RSA_SUITE_NAMES)} (RSA key exchange), not {peer.ciphers!r}"
        )
    return parse_suite_name(peer.ciphers)


# -- the pre-master secret from both ends ---------------------------------------------------------------
@dataclass
class LiveKeyExchange:
    """One live handshake of our client with OpenSSL, seen from both ends."""

    response: TLSResponse
    pre_master_secret: bytes  # what our client made
    encrypted_pre_master_secret: bytes  # what crossed the wire in ClientKeyExchange
    decrypted_with_server_key: bytes  # that ciphertext, decrypted with the server's private key
    openssl_master_secret: bytes | None  # OpenSSL's key log line for this connection
    master_secret_from_pre_master: bytes  # what the PRF makes of decrypted_with_server_key

    def lines(self) -> list[str]:
        return [
            f"our client's pre-master secret      {self.pre_master_secret.hex()}",
            f"decrypted with the server's key     {self.decrypted_with_server_key.hex()}",
            f"master secret in OpenSSL's key log  {(self.openssl_master_secret or b'').hex()}",
            f"PRF of that pre-master secret       {self.master_secret_from_pre_master.hex()}",
        ]


def live_key_exchange(peer: OpenSSLServer, **client_options: Any) -> LiveKeyExchange:
    """Fetch the page from ``peer`` with our client and collect the pre-master secret from every side."""
    suite = rsa_suite_of(peer)
    made: list[tuple[bytes, bytes]] = []
    stages: Stages = client_options.pop("stages", LIBRARY_STAGES)
    encrypt = stages.encrypt_pre_master_secret

    def recording(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        encrypted = encrypt(pre_master, public_key)
        made.append((pre_master, encrypted))
        return encrypted

    # Offer what the server accepts (our client's default list has only four of the six RSA suites).
    client_options.setdefault("cipher_suites", [suite])
    recording_stages = stages.replace(encrypt_pre_master_secret=recording)
    response = tls_get(peer.url, cafile=peer.cafile, stages=recording_stages, **client_options)
    pre_master, encrypted = made[-1]
    # This run made the server's key, so it can do what only the server should be able to do.
    decrypted = rsa_kx.decrypt_pre_master_secret(encrypted, peer.private_key, _TLS12)
    handshake = response.handshake
    params = suite_params(handshake.cipher_suite)
    session_hash = prf_module.transcript_hash(params.prf_hash, session_hash_messages(response.transcript))
    derived = derive_master_secret(
        decrypted,
        handshake.client_random,
        handshake.server_random,
        session_hash,
        params,
        handshake.extended_master_secret,
    )
    return LiveKeyExchange(
        response, pre_master, encrypted, decrypted, peer.master_secret(handshake.client_random), derived
    )


# -- how OpenSSL ends a handshake we changed ------------------------------------------------------------
@dataclass
class TamperedOutcome:
    """How a real OpenSSL server ended a handshake whose client side we changed."""

    alert: str  # the alert OpenSSL sent, by name ("" if none arrived)
    openssl_error: str  # OpenSSL's own reason, from the server side
    records: list[str]  # our client's transcript, in order
    completed: bool

    def lines(self) -> list[str]:
        return [
            *self.records,
            f"alert from OpenSSL: {self.alert or 'none'}",
            f"OpenSSL's reason:   {self.openssl_error or 'none'}",
        ]


def live_handshake_outcome(
    peer: OpenSSLServer, *, timeout: float = net.DEFAULT_TIMEOUT, **client_options: Any
) -> TamperedOutcome:
    """Run our client (with ``client_options``, e.g. a learner's stage) against ``peer`` up to the end of
    the handshake and report how it ended: completed, or which alert OpenSSL sent and why.  Stops ``peer``.

    Unlike :func:`~handshake_lib.net.tls.tls_get`, this keeps the client's transcript when the
    handshake fails, so a lesson can show *at which step* OpenSSL objected.
    """
    client_options.setdefault("cipher_suites", [rsa_suite_of(peer)])
    client = TLSClient(peer.server_name, cafile=peer.cafile, **client_options)
    alert = ""
    with net.connect(peer.host, peer.port, timeout=timeout) as sock:
        client.start()
        try:
            net.run_connection(client, sock, until=lambda event: isinstance(event, HandshakeComplete), timeout=timeout)
        except PeerAlert as error:
            try:
                alert = TLSAlert(error.description).name
            except ValueError:
                alert = str(error)
        except HandshakeError as error:
            alert = f"(none received; our client stopped: {type(error).__name__}: {error})"
    # Stop the server so that its thread has recorded how OpenSSL ended the connection.
    peer.server.close()
    records = [entry.summary() for entry in client.transcript]
    return TamperedOutcome(alert, (peer.last_error or ""), records, client.handshake is not None)


def live_tampered_exchange(
    peer: OpenSSLServer,
    encrypt_pre_master_secret: Callable[[bytes, rsa.RSAPublicKey], bytes] | None = None,
    *,
    byte_index: int = 40,
    mask: int = 0x01,
    timeout: float = net.DEFAULT_TIMEOUT,
) -> TamperedOutcome:
    """Send ``peer`` a ClientKeyExchange made by ``encrypt_pre_master_secret`` (by default: the right
    ciphertext with byte ``byte_index`` XOR ``mask``) and report OpenSSL's answer.  Stops ``peer``."""

    def corrupting(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        return rsa_kx.tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), byte_index, mask)

    return live_handshake_outcome(
        peer, timeout=timeout, stages=Stages(encrypt_pre_master_secret=encrypt_pre_master_secret or corrupting)
    )


# -- OpenSSL as the client ------------------------------------------------------------------------------
def openssl_client_exchange(timeout: float = net.DEFAULT_TIMEOUT) -> tuple[str, bytes]:
    """OpenSSL as the *client*, our TLSServer as the server: returns OpenSSL's ``RSA`` key log line and
    the pre-master secret our server decrypted from its ClientKeyExchange."""
    keys = PairKeys.fresh()
    decrypted: list[bytes] = []

    def recording(
        encrypted: bytes, private_key: rsa.RSAPrivateKey, client_version: int, random_bytes: rsa_kx.RandomBytes
    ) -> bytes:
        pre_master = rsa_kx.decrypt_pre_master_secret(encrypted, private_key, client_version, random_bytes)
        decrypted.append(pre_master)
        return pre_master

    with tempfile.TemporaryDirectory(prefix="handshakes-") as folder:
        keylog = Path(folder) / "openssl-client-keys.log"
        cafile = Path(folder) / "ca.pem"
        cafile.write_bytes(keys.trusted[0].public_bytes(Encoding.PEM))
        context = ssl.create_default_context(cafile=str(cafile))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("AES128-GCM-SHA256")
        context.keylog_filename = str(keylog)
        stages = Stages(decrypt_pre_master_secret=recording)
        server = TLSPageServer(keys.chain, keys.private_key, stages=stages, timeout=timeout)
        with (
            server,
            net.connect(server.host, server.port, timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=keys.server_name) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            tls.recv(4096)
        rsa_lines = [line for line in keylog.read_text().splitlines() if line.startswith("RSA ")]
    return (rsa_lines[-1] if rsa_lines else ""), (decrypted[-1] if decrypted else b"")


# -- recordings for lesson 06 (handshake_lib/data/rsa_key_schedules.json) -------------------------------
def record_live_handshake(peer: OpenSSLServer, *, extended_master_secret: bool = True) -> RecordedHandshake:
    """Fetch ``peer``'s page with our client and keep what :class:`RecordedHandshake` holds."""
    live = live_key_exchange(peer, extended_master_secret=extended_master_secret)
    handshake = live.response.handshake
    params = suite_params(handshake.cipher_suite)
    if live.openssl_master_secret is None:
        raise ValueError("OpenSSL wrote no key log line for this connection")
    return RecordedHandshake(
        handshake.cipher_suite,
        handshake.extended_master_secret,
        live.pre_master_secret,
        handshake.client_random,
        handshake.server_random,
        prf_module.transcript_hash(params.prf_hash, session_hash_messages(live.response.transcript)),
        live.openssl_master_secret,
    )


def record_key_schedules(ciphers: tuple[str, ...] = RSA_SUITE_NAMES) -> tuple[str, list[dict[str, Any]]]:
    """One live handshake per suite in ``ciphers`` (OpenSSL names), with and without the extended master
    secret: ``(made_by, recordings as JSON dicts)``.  Refuses to return a recording whose master secret,
    recomputed by the library, differs from the one in OpenSSL's key log."""
    recordings = []
    for cipher in ciphers:
        for ems in (True, False):
            with openssl_server(cipher) as peer:
                recorded = record_live_handshake(peer, extended_master_secret=ems)
            if not derive_keys(recorded).matches_openssl:
                raise AssertionError(f"{cipher} ems={ems}: our master secret differs from OpenSSL's")
            recordings.append(recorded.to_json())
    made_by = (
        f"our TLSClient against {' '.join(ssl.OPENSSL_VERSION.split()[:2])} (Python ssl)"
        " on loopback, one handshake per RSA suite with and without the extended master secret;"
        " openssl_master_secret is the CLIENT_RANDOM line of OpenSSL's own key log."
        " Remake with: python scripts/regenerate_data.py rsa_key_schedules"
    )
    return made_by, recordings
