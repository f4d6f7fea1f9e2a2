"""The TLS 1.3 cores (tls/client13.py, server13.py, connection13.py, tickets13.py, negotiate_version.py) as
they work: our client against our server, and each against real OpenSSL 3.0 (Python ``ssl`` over memory BIOs).

Ours against ours is the place for what only both ends of our own code can show at once: every suite in
every group, HelloRetryRequest, client certificates of each key type, PSK resumption in both modes, 0-RTT
accepted / replayed / stale, KeyUpdate both ways; after each, the exporter and both key logs equal, the
HandshakeComplete fields, every record a TranscriptEntry13 with its real type, and each core's state the one
``states13.replay`` gives over the messages its transcript holds.  Randomness is seeded and the clock is
fixed (:mod:`tests.tls13_core_pair`), so a run repeats.  Against OpenSSL (a peer nobody here wrote) the
key logs must be equal as sets of lines, both roles, and a certificate Python ``ssl`` presents is validated
by our server.  Bad input is tests/test_tls13_bad_input.py.
"""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from handshake_lib.errors import (
    CertificateRequired,
    ConnectionStateError,
    IllegalParameter,
    MissingExtension,
    ProtocolError,
    TLSAlert,
)
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import DEFAULT_CLIENT_SUITES, ApplicationData, HandshakeComplete
from handshake_lib.tls.connection13 import KeyUpdated, TicketReceived, TranscriptEntry13
from handshake_lib.tls.constants import ContentType, NamedGroup, PskKeyExchangeMode
from handshake_lib.tls.messages import Alert, ChangeCipherSpec, HandshakeMessage
from handshake_lib.tls.negotiate_version import MAX_UNDECIDED_BYTES, NegotiatingClient, NegotiatingServer
from handshake_lib.tls.server import TLSServer
from handshake_lib.tls.server13 import EarlyData
from handshake_lib.tls.stages import Stages
from handshake_lib.tls.states13 import State
from handshake_lib.tls.tickets13 import ReplayWindow
from tests.tls13_core_pair import (
    World,
    assert_replays_to_own_state,
    connect,
    expect_failure,
    pump,
    window_server,
)

SUITES = (0x1301, 0x1302, 0x1303, 0x1304)
GROUPS = (NamedGroup.X25519MLKEM768, NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1,
          NamedGroup.ffdhe2048)  # fmt: skip
OPENSSL_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
}


@pytest.fixture(scope="module")
def world() -> World:
    return World.create()


def _keylogs(world: World, client_options: dict[str, Any], server_options: dict[str, Any]) -> Any:
    client_log: list[str] = []
    server_log: list[str] = []
    client = world.client(keylog=client_log.append, **client_options)
    server = world.server(keylog=server_log.append, **server_options)
    return client, server, client_log, server_log


def _check_transcript(core: Any) -> None:
    """Every record is a TranscriptEntry13 whose content_type is the real (inner) one of what it carried."""
    assert core.transcript
    for entry in core.transcript:
        assert isinstance(entry, TranscriptEntry13)
        assert entry.record[0] == (ContentType.application_data if entry.encrypted else entry.content_type)
        assert isinstance(entry.spans, list) and entry.spans[0].offset == 0  # the record annotated, not a flag
        for message in entry.messages:
            expected = {
                ChangeCipherSpec: ContentType.change_cipher_spec, Alert: ContentType.alert,
            }.get(type(message)) or (
                ContentType.application_data if isinstance(message, ApplicationData) else ContentType.handshake
            )  # fmt: skip
            assert entry.content_type == expected, (entry, message)
            if expected == ContentType.handshake:
                assert isinstance(message, HandshakeMessage)


def _check_pair(client: Any, server: Any, client_log: list[str], server_log: list[str]) -> None:
    """What every successful handshake of ours against ours must show."""
    for core in (client, server):
        _check_transcript(core)
        assert_replays_to_own_state(core)
    assert set(client_log) == set(server_log) and len(client_log) == len(set(client_log))
    labels = {line.split()[0] for line in client_log}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"} <= labels  # fmt: skip
    assert client.exporter("EXPORTER-handshakes", b"ctx", 42) == server.exporter("EXPORTER-handshakes", b"ctx", 42)
    assert client.exporter("EXPORTER-handshakes", b"", 32) != client.exporter("EXPORTER-other", b"", 32)
    ours, theirs = client.handshake, server.handshake
    assert isinstance(ours, HandshakeComplete) and isinstance(theirs, HandshakeComplete)
    for name in ("version", "cipher_suite", "group", "hello_retry_request", "early_data", "psk_mode", "resumed",
                 "client_random", "server_random", "master_secret"):  # fmt: skip
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.version == 0x0304
    assert ours.key_schedule.value("exporter_master_secret") == theirs.key_schedule.value("exporter_master_secret")
    # Data both ways after the handshake.
    client.send_application_data(b"ping")
    server.send_application_data(b"pong")
    client_events, server_events = pump(client, server)
    assert b"".join(e.data for e in client_events if isinstance(e, ApplicationData)) == b"pong"
    assert b"".join(e.data for e in server_events if isinstance(e, ApplicationData)) == b"ping"


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: NamedGroup(g).name)
@pytest.mark.parametrize("suite", SUITES, ids=hex)
def test_every_suite_in_every_group(world: World, suite: int, group: NamedGroup) -> None:
    client, server, client_log, server_log = _keylogs(
        world, {"cipher_suites": [suite], "groups": [group], "key_share_groups": [group]},
        {"cipher_suites": [suite]},
    )  # fmt: skip
    client_events, server_events = connect(client, server)
    assert [type(e) for e in client_events] == [HandshakeComplete, TicketReceived]
    assert [type(e) for e in server_events] == [HandshakeComplete]
    assert client.handshake.cipher_suite == suite and client.handshake.group == group
    assert not client.handshake.hello_retry_request and client.handshake.psk_mode is None
    assert client.handshake.signature_scheme == server.handshake.signature_scheme == 0x0403  # ecdsa_secp256r1_sha256
    assert server.handshake.client_certificates == ()
    _check_pair(client, server, client_log, server_log)


def test_hello_retry_request_when_the_server_wants_p256(world: World) -> None:
    client, server, client_log, server_log = _keylogs(world, {}, {"groups": [NamedGroup.secp256r1]})
    connect(client, server)
    assert client.handshake.hello_retry_request and server.handshake.hello_retry_request
    assert client.handshake.group == NamedGroup.secp256r1
    hellos = [m for e in server.transcript for m in e.messages if type(m).__name__ == "ClientHello"]
    assert len(hellos) == 2 and hellos[0].random == hellos[1].random
    _check_pair(client, server, client_log, server_log)


def test_rsa_pss_server(world: World) -> None:
    client, server, client_log, server_log = _keylogs(world, {}, {"key_type": "rsa2048"})
    connect(client, server)
    assert client.handshake.signature_scheme == 0x0804  # rsa_pss_rsae_sha256: never PKCS#1 in 1.3
    _check_pair(client, server, client_log, server_log)


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_client_certificate_required_and_given(world: World, kind: str) -> None:
    issued = world.clients[kind]
    client, server, client_log, server_log = _keylogs(
        world, {"client_certificate_chain": [issued.certificate], "client_private_key": issued.private_key},
        {"client_ca": [world.pki.root.certificate], "require_client_certificate": True},
    )  # fmt: skip
    connect(client, server)
    assert server.handshake.client_certificates[0] == issued.certificate
    assert server.client_certificate_report is not None and server.client_certificate_report.valid
    assert client.certificate_request is not None
    _check_pair(client, server, client_log, server_log)


def test_client_certificate_required_and_missing(world: World) -> None:
    client = world.client()
    server = world.server(client_ca=[world.pki.root.certificate], require_client_certificate=True)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.CONNECTED  # it sent an empty Certificate and its Finished
    expect_failure(server, client.data_to_send(), CertificateRequired, TLSAlert.certificate_required, peer=client)


def test_client_certificate_optional_and_missing(world: World) -> None:
    client, server = world.client(), world.server(client_ca=[world.pki.root.certificate])
    connect(client, server)
    assert server.handshake.client_certificates == ()
    assert_replays_to_own_state(server)


def _ticket(world: World, **server_options: Any) -> Any:
    client, server = world.client(seed=11), world.server(seed=12, **server_options)
    client_events, _ = connect(client, server)
    tickets = [e.ticket for e in client_events if isinstance(e, TicketReceived)]
    assert tickets == client.tickets and len(tickets) == 1
    return tickets[0]


@pytest.mark.parametrize("mode", ["psk_dhe_ke", "psk_ke"])
def test_psk_resumption(world: World, mode: str) -> None:
    ticket = _ticket(world)
    world.clock.now += 5
    both = (PskKeyExchangeMode.psk_dhe_ke, PskKeyExchangeMode.psk_ke)
    client, server, client_log, server_log = _keylogs(
        world, {"ticket": ticket, "psk_modes": [PskKeyExchangeMode[mode]]}, {"psk_modes": both}
    )
    connect(client, server)
    assert client.handshake.resumed and client.handshake.psk_mode == mode
    assert client.handshake.group == (None if mode == "psk_ke" else NamedGroup.X25519MLKEM768)
    assert client.handshake.signature_scheme is None  # authenticated by the PSK
    assert not client.server_certificates and server.resumed_ticket is not None
    _check_pair(client, server, client_log, server_log)


def test_psk_ke_refused_by_a_server_allowing_only_psk_dhe_ke(world: World) -> None:
    ticket = _ticket(world)
    client = world.client(ticket=ticket, psk_modes=[PskKeyExchangeMode.psk_ke])
    server = world.server()  # psk_modes=(psk_dhe_ke,)
    connect(client, server)
    assert not client.handshake.resumed and client.handshake.psk_mode is None and client.server_certificates


def test_zero_rtt_accepted_then_replayed_then_stale(world: World) -> None:
    window = ReplayWindow()
    ticket = _ticket(world, max_early_data_size=1024, anti_replay=window)
    assert ticket.max_early_data_size == 1024
    world.clock.now += 2
    client, server, client_log, server_log = _keylogs(
        world, {"ticket": ticket, "early_data": b"GET /0rtt"},
        {"max_early_data_size": 1024, "anti_replay": window},
    )  # fmt: skip
    client.start()
    first_flight = client.data_to_send()
    server_events = server.receive_data(first_flight)
    assert server_events == [EarlyData(b"GET /0rtt")] and server.state is State.WAIT_END_OF_EARLY_DATA
    more_client, more_server = pump(client, server)
    assert client.handshake.early_data == server.handshake.early_data == "accepted"
    assert "CLIENT_EARLY_TRAFFIC_SECRET" in {line.split()[0] for line in server_log}
    assert any(type(m).__name__ == "EndOfEarlyData" for e in server.transcript for m in e.messages)
    _check_pair(client, server, client_log, server_log)

    # The same first flight again (an attacker's copy): the window has seen its binder; no EarlyData event.
    replayed = window_server(world, window=window)
    assert replayed.receive_data(first_flight) == []
    assert replayed.early_data_status == "rejected" and window.refused["replayed"] == 1
    assert replayed.state is State.WAIT_FLIGHT2
    assert_replays_to_own_state(replayed)

    # A ClientHello whose ticket age is far from the ticket's own (the client's clock 60 s ahead): stale.
    late = world.client(ticket=ticket, early_data=b"GET /late", clock=lambda: world.clock.now + 60)
    server = window_server(world, window=window)
    late.start()
    _, server_events = pump(late, server)
    assert window.refused["stale"] == 1
    assert late.handshake.early_data == server.handshake.early_data == "rejected"
    assert late.handshake.resumed and not any(isinstance(e, EarlyData) for e in server_events)
    assert server.state is State.CONNECTED
    for core in (late, server):
        assert_replays_to_own_state(core)


def test_zero_rtt_needs_an_anti_replay_window(world: World) -> None:
    with pytest.raises(ValueError, match="anti_replay"):
        world.server(max_early_data_size=1024)
    # A server without early data allowed issues tickets without early_data, so the client sends none.
    ticket = _ticket(world)
    assert ticket.max_early_data_size == 0
    client = world.client(ticket=ticket, early_data=b"GET /")
    assert client.early_data is None


@pytest.mark.parametrize("initiator", ["client", "server"])
@pytest.mark.parametrize("request_peer", [True, False])
def test_key_update(world: World, initiator: str, request_peer: bool) -> None:
    client, server, client_log, server_log = _keylogs(world, {}, {})
    connect(client, server)
    first, second = (client, server) if initiator == "client" else (server, client)
    first.update_keys(request_peer=request_peer)
    client_events, server_events = pump(client, server)
    first_events, second_events = (
        (client_events, server_events) if initiator == "client" else (server_events, client_events)
    )
    assert second_events == [KeyUpdated("receiving", 1)]
    assert first_events == ([KeyUpdated("receiving", 1)] if request_peer else [])
    assert first.key_generations == {"sending": 1, "receiving": int(request_peer)}
    assert second.key_generations == {"sending": int(request_peer), "receiving": 1}
    _check_pair(client, server, client_log, server_log)  # data both ways under the new keys
    for _ in range(3):  # more, and the other way
        second.update_keys(request_peer=False)
        pump(client, server)
    assert second.key_generations["sending"] == int(request_peer) + 3
    _check_pair(client, server, client_log, server_log)


def test_no_renegotiation_and_no_exporter_before_the_end(world: World) -> None:
    client, server = world.client(), world.server()
    client.start()
    with pytest.raises(ConnectionStateError):
        client.exporter("EXPORTER-x", b"", 16)
    with pytest.raises(ConnectionStateError):
        client.update_keys()
    pump(client, server)
    with pytest.raises(ConnectionStateError):
        server.renegotiate()
    client.close()
    client_events, server_events = pump(client, server)
    assert client.state is State.CLOSED and server.state is State.CLOSED
    assert_replays_to_own_state(client)


def test_missing_extension_through_both_cores(world: World) -> None:
    """tests/test_tls_errors.py leaves the 1.3-only alert classes to this module: MissingExtension here (each
    core raising it, missing_extension on the wire, the other core receiving it), CertificateRequired in
    test_client_certificate_required_and_missing."""
    import dataclasses

    from handshake_lib.errors import PeerAlert
    from handshake_lib.tls.constants import ExtensionType
    from handshake_lib.tls.messages13 import decode_handshake13
    from handshake_lib.tls.record import encode_record

    def without(record: bytes, extension_type: int) -> bytes:
        message = decode_handshake13(record[5:], annotate=False)[0]
        kept = [e for e in message.extensions if e.extension_type != extension_type]
        return encode_record(ContentType.handshake, 0x0303, dataclasses.replace(message, extensions=kept).to_bytes())

    client, server = world.client(), world.server()
    client.start()
    hello = client.data_to_send()
    expect_failure(server, without(hello, ExtensionType.signature_algorithms), MissingExtension, 109, peer=client)
    client, server = world.client(), world.server()
    client.start()
    server.receive_data(client.data_to_send())
    server_hello = server.data_to_send()
    length = 5 + int.from_bytes(server_hello[3:5], "big")
    expect_failure(client, without(server_hello[:length], ExtensionType.key_share), MissingExtension, 109, peer=server)
    assert isinstance(server.error, PeerAlert) and server.error.description == TLSAlert.missing_extension
    assert CertificateRequired.tls_alert == TLSAlert.certificate_required == 116


# -- against OpenSSL 3.0 (Python ssl over memory BIOs) --------------------------------------------------


@pytest.fixture(scope="module")
def files(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls13-core")
    ca = world.pki.write_ca(folder)
    cert, key = world.pki.write_issued(world.servers["ecdsa-p256"], folder)
    client_cert, client_key = world.pki.write_issued(world.clients["rsa"], folder, "client")
    return {"folder": folder, "ca": ca, "cert": cert, "key": key, "client_cert": client_cert, "client_key": client_key}


def _openssl_lines(path: Path) -> set[str]:
    return {line for line in path.read_text().splitlines() if line and not line.startswith("#")}


def _context(side: int, files: dict[str, Path], keylog: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(side)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.keylog_filename = str(keylog)
    return context


def _drive(ours: Any, theirs: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> list[Any]:
    events: list[Any] = []
    for _ in range(10):
        with contextlib.suppress(ssl.SSLWantReadError):
            theirs.do_handshake()
        back = outgoing.read()
        if back:
            events += ours.receive_data(back)
        out = ours.data_to_send()
        if out:
            incoming.write(out)
        if not back and not out and ours.handshake is not None:
            break
    return events


@pytest.mark.parametrize("suite", sorted(OPENSSL_SUITES), ids=hex)
@pytest.mark.parametrize("curve", [None, "prime256v1", "ffdhe2048"])
def test_our_client_against_openssl_key_logs_equal(
    world: World, files: dict[str, Path], suite: int, curve: Any
) -> None:
    keylog = files["folder"] / f"server-{suite:x}-{curve}.keys"
    context = _context(ssl.PROTOCOL_TLS_SERVER, files, keylog)
    context.load_cert_chain(files["cert"], files["key"])
    if curve:
        context.set_ecdh_curve(curve)  # OpenSSL lacks X25519MLKEM768 and our shares: HelloRetryRequest
    lines: list[str] = []
    client = world.client(keylog=lines.append, cipher_suites=[suite])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = context.wrap_bio(incoming, outgoing, server_side=True)
    client.start()
    incoming.write(client.data_to_send())
    _drive(client, theirs, incoming, outgoing)
    assert client.state is State.CONNECTED and theirs.version() == "TLSv1.3"
    assert theirs.cipher()[0] == OPENSSL_SUITES[suite]
    assert client.handshake.hello_retry_request == (curve is not None)
    theirs.write(b"from openssl")
    events = client.receive_data(outgoing.read())
    assert ApplicationData(b"from openssl") in events
    assert _openssl_lines(keylog) == set(lines)
    assert_replays_to_own_state(client)


@pytest.mark.parametrize("curve", [None, "prime256v1", "secp384r1", "ffdhe2048"])
def test_our_server_against_openssl_key_logs_equal(world: World, files: dict[str, Path], curve: Any) -> None:
    keylog = files["folder"] / f"client-{curve}.keys"
    context = _context(ssl.PROTOCOL_TLS_CLIENT, files, keylog)
    context.load_verify_locations(files["ca"])
    if curve:
        context.set_ecdh_curve(curve)
    lines: list[str] = []
    server = world.server(keylog=lines.append)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    _drive(server, theirs, incoming, outgoing)
    assert server.state is State.CONNECTED and not server.hello_retry_request
    theirs.write(b"from openssl")
    assert server.receive_data(outgoing.read()) == [ApplicationData(b"from openssl")]
    server.send_application_data(b"to openssl")
    incoming.write(server.data_to_send())
    assert theirs.read(100) == b"to openssl"  # and it read our ticket on the way
    assert _openssl_lines(keylog) == set(lines)
    assert_replays_to_own_state(server)


def test_openssl_client_certificate_validated_by_our_server(world: World, files: dict[str, Path]) -> None:
    keylog = files["folder"] / "client-auth.keys"
    context = _context(ssl.PROTOCOL_TLS_CLIENT, files, keylog)
    context.load_verify_locations(files["ca"])
    context.load_cert_chain(files["client_cert"], files["client_key"])
    server = world.server(client_ca=[world.pki.root.certificate], require_client_certificate=True)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    _drive(server, theirs, incoming, outgoing)
    assert server.state is State.CONNECTED
    leaf = server.handshake.client_certificates[0]
    assert leaf.public_bytes(serialization.Encoding.PEM) == files["client_cert"].read_bytes()
    assert server.client_certificate_report.valid
    assert server.signature_scheme in (0x0804, 0x0805, 0x0806, 0x0403)
    assert_replays_to_own_state(server)


def test_openssl_client_without_certificate_gets_certificate_required(world: World, files: dict[str, Path]) -> None:
    context = _context(ssl.PROTOCOL_TLS_CLIENT, files, files["folder"] / "no-cert.keys")
    context.load_verify_locations(files["ca"])
    server = world.server(client_ca=[world.pki.root.certificate], require_client_certificate=True)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        theirs.do_handshake()
    server.receive_data(outgoing.read())
    incoming.write(server.data_to_send())
    with contextlib.suppress(ssl.SSLWantReadError):
        theirs.do_handshake()  # OpenSSL's client finishes its side with an empty Certificate
    flight = outgoing.read()
    with pytest.raises(CertificateRequired):
        server.receive_data(flight)
    incoming.write(server.data_to_send())
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|certificate required"):
        theirs.read(10)


# -- negotiate_version ------------------------------------------------------------------------------------


def _negotiating_client(world: World) -> NegotiatingClient:
    client13 = world.client(offer_tls12=True, tls12_cipher_suites=DEFAULT_CLIENT_SUITES)

    def fallback(hello: Any) -> TLSClient:
        return TLSClient("localhost", trusted_certificates=[world.pki.root.certificate], client_random=hello.random,
                         stages=Stages(build_client_hello=lambda **_: hello))  # fmt: skip

    return NegotiatingClient(client13, fallback)


def _negotiating_server(world: World) -> NegotiatingServer:
    issued = world.servers["ecdsa-p256"]
    return NegotiatingServer(
        lambda: world.server(),
        lambda: TLSServer([issued.der], issued.private_key, downgrade_sentinel=True),
    )


def test_negotiating_pairs_settle_on_each_version(world: World) -> None:
    issued = world.servers["ecdsa-p256"]
    # Ours both ways, negotiating: TLS 1.3.
    client, server = _negotiating_client(world), _negotiating_server(world)
    client.start()
    pump(client, server)
    assert client.version == server.version == 0x0304 and client.handshake.version == 0x0304
    # A negotiating client and a 1.3-only server; a negotiating server and a 1.3-only client.
    client = _negotiating_client(world)
    client.start()
    pump(client, world.server())
    assert client.version == 0x0304
    client13, server = world.client(), _negotiating_server(world)
    client13.start()
    pump(client13, server)
    assert type(server.core).__name__ == "TLS13Server" and client13.state is State.CONNECTED
    # A 1.2-only client and a negotiating server: TLS 1.2, with the sentinel in the random it sends.
    client12 = TLSClient("localhost", trusted_certificates=[world.pki.root.certificate])
    server = _negotiating_server(world)
    client12.start()
    pump(client12, server)
    assert server.version == 0x0303 and client12.handshake.version == 0x0303
    assert server.server_random[-8:] == b"DOWNGRD\x01"
    # A negotiating client and a 1.2-only server without the sentinel (an old server): TLS 1.2.
    client = _negotiating_client(world)
    client.start()
    pump(client, TLSServer([issued.der], issued.private_key))
    assert client.version == 0x0303 and type(client.core).__name__ == "TLSClient"


def test_negotiating_client_refuses_the_downgrade_sentinel(world: World) -> None:
    issued = world.servers["ecdsa-p256"]
    client = _negotiating_client(world)
    server = TLSServer([issued.der], issued.private_key, downgrade_sentinel=True)  # someone removed our 1.3
    client.start()
    server.receive_data(client.data_to_send())
    expect_failure(client.client13, server.data_to_send(), IllegalParameter, TLSAlert.illegal_parameter)


def test_negotiating_server_holds_a_bounded_undecided_prefix(world: World) -> None:
    from handshake_lib.tls.record import MAX_HANDSHAKE_MESSAGE_LENGTH

    server = _negotiating_server(world)
    # The largest handshake message allowed, announced in its first record and sent record by record: nothing
    # is decided (nor answered) until it is whole, and what is held never passes the bound.
    length = MAX_HANDSHAKE_MESSAGE_LENGTH
    message = bytes([1]) + length.to_bytes(3, "big") + bytes(length)
    pieces = [message[i : i + 0x4000] for i in range(0, len(message), 0x4000)]
    for piece in pieces[:-1]:
        assert server.receive_data(bytes([22, 3, 3]) + len(piece).to_bytes(2, "big") + piece) == []
        assert not server.decided and server.data_to_send() == b""
        assert len(server._received) <= MAX_UNDECIDED_BYTES
    last = pieces[-1]
    with pytest.raises(ProtocolError):  # whole, it is no ClientHello: the TLS 1.2 core refuses it
        server.receive_data(bytes([22, 3, 3]) + len(last).to_bytes(2, "big") + last)
    assert server.decided and type(server.core).__name__ == "TLSServer" and not server._received


def test_psk_after_a_hello_retry_request(world: World) -> None:
    """The binder of the second ClientHello covers message_hash(ClientHello1) and the HRR (RFC 8446 4.2.11.2)."""
    ticket = _ticket(world)
    client, server, client_log, server_log = _keylogs(world, {"ticket": ticket}, {"groups": [NamedGroup.secp256r1]})
    connect(client, server)
    assert client.handshake.hello_retry_request and client.handshake.psk_mode == "psk_dhe_ke"
    assert client.handshake.group == NamedGroup.secp256r1
    _check_pair(client, server, client_log, server_log)


def test_zero_rtt_abandoned_by_a_hello_retry_request(world: World) -> None:
    """The server retries: the 0-RTT records before the second ClientHello are skipped, the PSK still taken."""
    window = ReplayWindow()
    ticket = _ticket(world, max_early_data_size=1024, anti_replay=window)
    client = world.client(ticket=ticket, early_data=b"GET /early")
    server = window_server(world, window=window, groups=[NamedGroup.secp256r1])
    client.start()
    _, server_events = pump(client, server)
    assert not any(isinstance(e, EarlyData) for e in server_events)
    assert client.handshake.early_data == server.handshake.early_data == "rejected"
    assert client.handshake.hello_retry_request and client.handshake.resumed
    for core in (client, server):
        assert_replays_to_own_state(core)


def test_no_certificate_request_on_a_psk_handshake(world: World) -> None:
    ticket = _ticket(world)
    issued = world.clients["ecdsa"]
    client = world.client(
        ticket=ticket, client_certificate_chain=[issued.certificate], client_private_key=issued.private_key
    )
    server = world.server(client_ca=[world.pki.root.certificate])
    connect(client, server)
    assert client.handshake.resumed and client.certificate_request is None
    assert server.handshake.client_certificates == ()
    assert_replays_to_own_state(server)


@pytest.mark.parametrize("fragment_size", [1, 64, 1000])
def test_small_records_both_ways(world: World, fragment_size: int) -> None:
    issued = world.clients["rsa"]
    client, server, client_log, server_log = _keylogs(
        world,
        {
            "fragment_size": fragment_size,
            "client_certificate_chain": [issued.certificate],
            "client_private_key": issued.private_key,
        },
        {"fragment_size": fragment_size, "client_ca": [world.pki.root.certificate], "key_type": "rsa2048"},
    )
    connect(client, server)
    assert server.handshake.client_certificates
    _check_pair(client, server, client_log, server_log)


def _openssl_server(files: dict[str, Path], keylog: Path) -> ssl.SSLContext:
    context = _context(ssl.PROTOCOL_TLS_SERVER, files, keylog)
    context.load_cert_chain(files["cert"], files["key"])
    return context


def _our_client_with_openssl(world: World, context: ssl.SSLContext, **options: Any) -> tuple[Any, Any, Any, Any]:
    lines: list[str] = []
    client = world.client(keylog=lines.append, **options)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = context.wrap_bio(incoming, outgoing, server_side=True)
    client.start()
    incoming.write(client.data_to_send())
    _drive(client, theirs, incoming, outgoing)
    theirs.write(b"tickets first")  # OpenSSL sends its tickets with the first write
    client.receive_data(outgoing.read())
    return client, theirs, (incoming, outgoing), lines


def test_our_client_resumes_with_openssl_and_updates_keys(world: World, files: dict[str, Path]) -> None:
    keylog = files["folder"] / "resume.keys"
    context = _openssl_server(files, keylog)
    first, _, _, first_lines = _our_client_with_openssl(world, context)
    assert len(first.tickets) == 2  # OpenSSL's default num_tickets
    client, theirs, (incoming, outgoing), lines = _our_client_with_openssl(world, context, ticket=first.tickets[0])
    assert theirs.session_reused and client.handshake.psk_mode == "psk_dhe_ke"
    assert _openssl_lines(keylog) == set(first_lines) | set(lines)
    client.update_keys(request_peer=True)
    client.send_application_data(b"after the update")
    incoming.write(client.data_to_send())
    assert theirs.read(100) == b"after the update"
    theirs.write(b"openssl answered the update")
    events = client.receive_data(outgoing.read())
    assert KeyUpdated("receiving", 1) in events and ApplicationData(b"openssl answered the update") in events
    assert client.key_generations == {"sending": 1, "receiving": 1}
    assert_replays_to_own_state(client)


def test_openssl_client_resumes_with_our_server(world: World, files: dict[str, Path]) -> None:
    keylog = files["folder"] / "client-resume.keys"
    context = _context(ssl.PROTOCOL_TLS_CLIENT, files, keylog)
    context.load_verify_locations(files["ca"])
    session = None
    for round_ in range(2):
        lines: list[str] = []
        server = world.server(keylog=lines.append)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        theirs = context.wrap_bio(incoming, outgoing, server_hostname="localhost", session=session)
        _drive(server, theirs, incoming, outgoing)
        server.send_application_data(b"page")
        incoming.write(server.data_to_send())
        assert theirs.read(10) == b"page"
        assert set(lines) <= _openssl_lines(keylog)
        assert theirs.session_reused == bool(round_) and (server.psk_mode == "psk_dhe_ke") == bool(round_)
        session = theirs.session
