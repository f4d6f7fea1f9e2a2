"""Shared by tests/test_tls13_core.py and tests/test_tls13_bad_input.py: one PKI, our 1.3 client and server
built with seeded randomness and a fixed clock, a pump between them, and the checks every test repeats
(the fatal alert a failing core queued, the state table replayed over what a core saw).

Everything here is made by our own code (``CoursePKI``) or by the test's peer; nothing is copied.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from handshake_lib.errors import PeerAlert, ProtocolError
from handshake_lib.pki.builder import CoursePKI, IssuedCertificate
from handshake_lib.tls.client13 import TLS13Client
from handshake_lib.tls.connection import ApplicationData
from handshake_lib.tls.constants import ContentType
from handshake_lib.tls.messages import Alert, ChangeCipherSpec
from handshake_lib.tls.server13 import TLS13Server
from handshake_lib.tls.states13 import Recorded, State, replay
from handshake_lib.tls.tickets import TicketKeys
from handshake_lib.tls.tickets13 import ReplayWindow

START = 1_800_000_000.0  # the fixed clock's first reading (seconds)


@dataclass
class Clock:
    """A clock the test moves by hand: the cores read no clock of their own."""

    now: float = START

    def __call__(self) -> float:
        return self.now


def seeded(seed: int) -> Any:
    """``random_bytes`` for a core: the same bytes for the same seed, so a run can be repeated exactly."""
    return random.Random(seed).randbytes


def issue_ed25519_client(pki: CoursePKI, common_name: str) -> IssuedCertificate:
    """An Ed25519 client certificate (CoursePKI issues RSA and ECDSA only), with the same profile."""
    key = ed25519.Ed25519PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(pki.root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.private_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.root.private_key, hashes.SHA256())
    )
    return IssuedCertificate(certificate, key)


@dataclass
class World:
    """What the tests of one module share: the PKI, a server identity per key type, client identities."""

    pki: CoursePKI
    servers: dict[str, IssuedCertificate]
    clients: dict[str, IssuedCertificate]
    clock: Clock = field(default_factory=Clock)
    ticket_keys: TicketKeys = field(default_factory=lambda: TicketKeys(random_bytes=seeded(99)))

    @classmethod
    def create(cls) -> World:
        pki = CoursePKI.create()
        servers = {kind: pki.issue_server(("localhost",), key_type=kind) for kind in ("ecdsa-p256", "rsa2048")}
        clients = {
            "ecdsa": pki.issue_client("ecdsa client"),
            "rsa": pki.issue_client("rsa client", key_type="rsa2048"),
            "ed25519": issue_ed25519_client(pki, "ed25519 client"),
        }
        return cls(pki, servers, clients)

    def client(self, *, seed: int = 1, **options: Any) -> TLS13Client:
        options.setdefault("trusted_certificates", [self.pki.root.certificate])
        options.setdefault("clock", self.clock)
        return TLS13Client("localhost", random_bytes=seeded(seed), **options)

    def server(self, *, seed: int = 2, key_type: str = "ecdsa-p256", **options: Any) -> TLS13Server:
        issued = self.servers[key_type]
        options.setdefault("ticket_keys", self.ticket_keys)
        options.setdefault("clock", self.clock)
        return TLS13Server([issued.der], issued.private_key, random_bytes=seeded(seed), **options)


def pump(client: Any, server: Any, rounds: int = 12) -> tuple[list[Any], list[Any]]:
    """Move bytes both ways until neither side has anything to send; the events each side saw."""
    client_events: list[Any] = []
    server_events: list[Any] = []
    for _ in range(rounds):
        to_server = client.data_to_send()
        if to_server:
            server_events += server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            client_events += client.receive_data(to_client)
        if not to_server and not to_client:
            return client_events, server_events
    raise AssertionError(f"still talking after {rounds} rounds")


def connect(client: TLS13Client, server: TLS13Server) -> tuple[list[Any], list[Any]]:
    client.start()
    events = pump(client, server)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    return events


def recorded(core: Any) -> list[Recorded]:
    """The messages a core saw, in order, from its transcript (what states13.replay walks)."""
    me = core.role
    peer = "server" if me == "client" else "client"
    items: list[Recorded] = []
    for entry in core.transcript:
        sender = me if entry.direction == core.outgoing_direction else peer
        for message in entry.messages:
            if isinstance(message, ChangeCipherSpec):
                items.append(Recorded(sender, ContentType.change_cipher_spec))
            elif isinstance(message, ApplicationData):
                if message.data:  # an empty one is a skipped (refused) 0-RTT record: no input of the table
                    items.append(Recorded(sender, ContentType.application_data))
            elif not isinstance(message, Alert):
                items.append(Recorded(sender, ContentType.handshake, message))
    return items


def assert_replays_to_own_state(core: Any) -> None:
    """The state the core ends in is the one its table's replay over the messages it saw gives."""
    states = replay(core.role, recorded(core))
    # close_notify is no row of the tables (it ends the connection from CONNECTED, as in 1.2).
    expected = State.CONNECTED if core.state is State.CLOSED else core.state
    assert states and states[-1] is expected, (core.role, states, core.state)


def queued_alert(core: Any, wire: bytes) -> int:
    """The fatal alert the failed ``core`` queued as its last record (its plaintext from the transcript)."""
    last = core.transcript[-1]
    assert last.content_type == ContentType.alert, last
    assert wire.endswith(last.record)  # that record is what went out, last
    assert bytes(last.plaintext)[0] == 2  # fatal
    if not last.encrypted:
        assert last.record[:3] == bytes([ContentType.alert, 3, 3])
    return bytes(last.plaintext)[1]


def expect_failure(core: Any, data: bytes, error: type[ProtocolError], alert: int, peer: Any = None) -> ProtocolError:
    """Feeding ``data`` raises exactly ``error``; the core is in ERROR and queued ``alert``, which ``peer``
    (if given, the other core, holding the keys to read it) receives as that alert."""
    with pytest.raises(ProtocolError) as caught:
        core.receive_data(data)
    assert type(caught.value) is error, repr(caught.value)
    assert core.state is State.ERROR and core.error is caught.value
    wire = core.data_to_send()
    assert queued_alert(core, wire) == alert
    if peer is not None:
        with pytest.raises(PeerAlert) as got:
            peer.receive_data(wire)
        assert got.value.description == alert
    return caught.value


def window_server(world: World, *, seed: int = 2, window: ReplayWindow | None = None, **options: Any) -> TLS13Server:
    return world.server(
        seed=seed, max_early_data_size=1024, anti_replay=window if window is not None else ReplayWindow(), **options
    )
