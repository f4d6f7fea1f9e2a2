"""Our client and our server, run against each other in memory: a whole handshake with no network.

Theory of operation
-------------------
Both :class:`~handshake_lib.tls.client.TLSClient` and :class:`~handshake_lib.tls.server.TLSServer` are
sans-I/O cores, so a handshake between them is a loop that moves ``data_to_send()`` of one into
``receive_data()`` of the other until neither has anything left to say (a handshake is four flights;
the loop is bounded all the same, in case a core keeps answering).  No socket, no thread, no clock:
a run takes a few milliseconds and is repeatable, which is what a widget that re-runs the handshake
on every slider move needs.

:func:`handshake_in_memory` also records the pre-master secret each side ended up with, and lets the
caller pass the client's ciphertext through a function of its own, so lesson 05 can tamper with
ClientKeyExchange and show Bleichenbacher's countermeasure at work: the server says nothing about the
padding, carries on with a random secret, and the handshake fails later, at the client's Finished,
with ``bad_record_mac``.  A :class:`InMemoryHandshake` keeps both cores, their transcripts and the
error each one raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import HandshakeError, TLSAlert
from . import rsa_kx
from .client import TLSClient
from .constants import CipherSuite
from .server import TLSServer
from .stages import Stages

__all__ = ["PairKeys", "InMemoryHandshake", "handshake_in_memory"]

# A handshake is four flights; the bound only guards against a core that keeps answering.
MAX_EXCHANGES = 16


@dataclass(frozen=True)
class PairKeys:
    """The server's chain and RSA key, and what the client trusts; ``fresh()`` makes a new set in memory."""

    chain: list[bytes]  # DER, leaf first
    trusted: list[x509.Certificate]
    private_key: rsa.RSAPrivateKey
    server_name: str = "localhost"

    @classmethod
    def fresh(cls, server_name: str = "localhost") -> PairKeys:
        """A new course CA and an RSA server certificate for ``server_name``, kept in memory only."""
        from ..pki import CoursePKI  # here: only callers that want fresh keys pay for the x509 builder

        pki = CoursePKI.create()
        issued = pki.issue_server((server_name,))
        if not isinstance(issued.private_key, rsa.RSAPrivateKey):
            raise TypeError("the course PKI issued a non-RSA server key; RSA key exchange needs an RSA key")
        return cls([issued.der], [pki.root.certificate], issued.private_key, server_name)


@dataclass
class InMemoryHandshake:
    """Both cores' transcripts and errors after running a handshake by passing bytes between them."""

    client: TLSClient
    server: TLSServer
    client_pre_master_secret: bytes
    server_pre_master_secret: bytes
    client_error: BaseException | None
    server_error: BaseException | None

    @property
    def completed(self) -> bool:
        return self.client.handshake is not None and self.server.handshake is not None

    @property
    def server_alert(self) -> TLSAlert | None:
        """The fatal alert the server sent, if it failed."""
        if self.server_error is None:
            return None
        return getattr(self.server_error, "tls_alert", TLSAlert.internal_error)

    def steps(self) -> list[str]:
        """The records in the order they crossed, from the server's transcript (it sees both directions)."""
        lines = [
            f"{entry.direction} {entry.content_type_name} (encrypted): does not decrypt with the server's keys"
            if entry.encrypted and not entry.messages
            else entry.summary()
            for entry in self.server.transcript
        ]
        if self.server_error is not None:
            alert = self.server_alert
            assert alert is not None
            lines.append(f"server: {type(self.server_error).__name__}: {self.server_error} -> alert {alert.name}")
        if self.client_error is not None:
            lines.append(f"client: {type(self.client_error).__name__}: {self.client_error}")
        return lines


def handshake_in_memory(
    keys: PairKeys | None = None,
    *,
    encrypt_pre_master_secret: Callable[[bytes, rsa.RSAPublicKey], bytes] = rsa_kx.encrypt_pre_master_secret,
    cipher_suite: CipherSuite = CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
) -> InMemoryHandshake:
    """Run TLSClient against TLSServer with no network at all (fresh keys unless ``keys`` are given).

    The client's ClientKeyExchange ciphertext passes through ``encrypt_pre_master_secret`` (give it one
    that tampers to watch the countermeasure).  Errors are kept, not raised: the result says who failed.
    """
    keys = keys or PairKeys.fresh()
    seen: dict[str, bytes] = {"client": b"", "server": b""}

    def client_side(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        seen["client"] = pre_master
        return encrypt_pre_master_secret(pre_master, public_key)

    def server_side(
        encrypted: bytes, private_key: rsa.RSAPrivateKey, client_version: int, random_bytes: rsa_kx.RandomBytes
    ) -> bytes:
        seen["server"] = rsa_kx.decrypt_pre_master_secret(encrypted, private_key, client_version, random_bytes)
        return seen["server"]

    client = TLSClient(
        keys.server_name,
        trusted_certificates=keys.trusted,
        cipher_suites=[cipher_suite],
        stages=Stages(encrypt_pre_master_secret=client_side),
    )
    server = TLSServer(
        keys.chain, keys.private_key, cipher_suites=[cipher_suite], stages=Stages(decrypt_pre_master_secret=server_side)
    )
    errors: dict[str, BaseException | None] = {"client": None, "server": None}
    client.start()
    for _ in range(MAX_EXCHANGES):
        moved = False
        for sender, receiver, name in ((client, server, "server"), (server, client, "client")):
            data = sender.data_to_send()
            if data and errors[name] is None:
                moved = True
                try:
                    receiver.receive_data(data)
                except HandshakeError as error:
                    errors[name] = error
        if not moved:
            break
    return InMemoryHandshake(client, server, seen["client"], seen["server"], errors["client"], errors["server"])
