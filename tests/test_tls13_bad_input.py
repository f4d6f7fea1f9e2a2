"""Bad input to the TLS 1.3 cores (issue 13, item 7): each case a typed error AND the RFC's alert on the wire.

Each test runs our client against our server and changes one thing on the way: a message moved to a
state with no row for it, a second ClientHello that changes what a HelloRetryRequest does not allow,
extensions missing or twice, a key share in a group not offered, records empty / too long / all padding,
a wrong binder, a 0-RTT flood, a bad Finished or CertificateVerify, a KeyUpdate flood, a second HRR, a
ServerHello choosing 1.2, two ChangeCipherSpecs, a stream cut short.  Protected messages are sealed with the
sending side's own traffic secret (read from its key log), so the receiver opens them and the *message* is
what is wrong.  The alert is read from the failing core's transcript (its plaintext, encrypted or not) and,
where the other core holds the keys, received by it as that alert (:func:`tls13_core_pair.expect_failure`).
Then a hypothesis test mutates the bytes each core receives at each step: only ProtocolError (never our own
InternalError, never another exception), a fatal alert queued, no hang.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import (
    CertificateRequired,
    DecryptError,
    IllegalParameter,
    InternalError,
    MissingExtension,
    PeerAlert,
    ProtocolError,
    ProtocolVersionError,
    RecordOverflow,
    TLSAlert,
    UnexpectedEOF,
    UnexpectedMessage,
)
from handshake_lib.tls.connection13 import MAX_KEY_UPDATES
from handshake_lib.tls.constants import ContentType, ExtensionType, NamedGroup
from handshake_lib.tls.extensions import (
    KeyShareClientHelloExtension,
    KeyShareEntry,
    KeyShareServerHelloExtension,
    SelectedVersionExtension,
    UnknownExtension,
)
from handshake_lib.tls.key_schedule13 import finished_verify_data, transcript_hash
from handshake_lib.tls.messages import CertificateVerify, ClientHello, Finished, ServerHello
from handshake_lib.tls.messages13 import (
    Certificate13,
    EncryptedExtensions,
    EndOfEarlyData,
    KeyUpdate,
    NewSessionTicket13,
    certificate_verify_content,
    decode_handshake13,
)
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.record13 import RecordSealer13, record_nonce
from handshake_lib.tls.states13 import State
from handshake_lib.tls.tickets13 import ReplayWindow
from tests.tls13_core_pair import World, connect, expect_failure, queued_alert, window_server

UNEXPECTED = TLSAlert.unexpected_message
ILLEGAL = TLSAlert.illegal_parameter


@pytest.fixture(scope="module")
def world() -> World:
    return World.create()


# -- tools: a handshake stopped where a test wants it, messages sealed as their sender would -----------------


@dataclasses.dataclass
class Run:
    client: Any
    server: Any
    client_log: list[str]
    server_log: list[str]

    def secret(self, label: str) -> bytes:
        for line in self.client_log + self.server_log:
            name, _, value = line.split()
            if name == label:
                return bytes.fromhex(value)
        raise KeyError(label)

    def sealer(self, label: str) -> RecordSealer13:
        """A fresh sealer for that traffic secret (sequence number 0), in the negotiated suite."""
        suite = self.server.suite or self.client.suite
        return RecordSealer13.from_secret(suite, self.secret(label))

    def sent(self, core: Any) -> list[Any]:
        """The (decoded message, raw bytes) of every handshake record ``core`` sent, in order."""
        return [
            (entry.messages[0], bytes(entry.plaintext))
            for entry in core.transcript
            if entry.direction == core.outgoing_direction and entry.content_type == ContentType.handshake
        ]


def run(world: World, *, client: dict[str, Any] | None = None, server: dict[str, Any] | None = None) -> Run:
    client_log: list[str] = []
    server_log: list[str] = []
    return Run(
        world.client(keylog=client_log.append, **(client or {})),
        world.server(keylog=server_log.append, **(server or {})),
        client_log,
        server_log,
    )


def plain(message: Any) -> bytes:
    return encode_record(ContentType.handshake, 0x0303, message.to_bytes())


def records(data: bytes) -> list[bytes]:
    out = []
    while data:
        length = int.from_bytes(data[3:5], "big")
        out.append(data[: 5 + length])
        data = data[5 + length :]
    return out


def first_flights(r: Run) -> tuple[bytes, list[Any]]:
    """The client's ClientHello to the server; the server's flight back (not delivered): its records."""
    r.client.start()
    r.server.receive_data(r.client.data_to_send())
    return r.client.data_to_send(), records(r.server.data_to_send())


def server_messages(r: Run) -> dict[str, bytes]:
    """The server's protected handshake messages by class name (raw bytes)."""
    return {type(message).__name__: raw for message, raw in r.sent(r.server)}


def hello_of(record: bytes) -> Any:
    return decode_handshake13(record[5:], annotate=False)[0]


# -- every message out of order ----------------------------------------------------------------------------

CLIENT_ORDER = ["EncryptedExtensions", "Certificate13", "CertificateVerify", "Finished"]


@pytest.mark.parametrize("position", range(len(CLIENT_ORDER) + 1))
def test_client_refuses_every_server_message_out_of_order(world: World, position: int) -> None:
    """The server's flight delivered up to ``position``, then each handshake message that has no row there."""
    r0 = run(world)
    first_flights(r0)
    candidates = {
        **server_messages(r0),  # ServerHello and the four protected ones
        "ClientHello": r0.sent(r0.client)[0][1],
        "NewSessionTicket13": NewSessionTicket13(7200, 1, b"\x00", b"ticket", []).to_bytes(),
        "KeyUpdate": KeyUpdate(0).to_bytes(),
        "EndOfEarlyData": EndOfEarlyData().to_bytes(),
    }
    connected = position == len(CLIENT_ORDER)
    for name, raw in candidates.items():
        if (not connected and name == CLIENT_ORDER[position]) or (
            connected and name in ("NewSessionTicket13", "KeyUpdate")
        ):
            continue  # the ones with a row
        r = run(world)
        _, flight = first_flights(r)
        r.client.receive_data(b"".join(flight[: 2 + position]))  # ServerHello, ChangeCipherSpec, ...
        if connected:
            assert r.client.state is State.CONNECTED
            sealer = r.sealer("SERVER_TRAFFIC_SECRET_0")
        else:
            sealer = r.sealer("SERVER_HANDSHAKE_TRAFFIC_SECRET")
            sealer.sequence_number = position
        peer = None if connected else r.server  # the server reads the client's handshake keys only
        expect_failure(r.client, sealer.seal(raw, ContentType.handshake), UnexpectedMessage, UNEXPECTED, peer)


def plain_hello(r: Run) -> bytes:
    return next(raw for message, raw in r.sent(r.server) if isinstance(message, ServerHello))


def test_client_refuses_plaintext_messages_before_the_server_hello(world: World) -> None:
    r0 = run(world)
    first_flights(r0)
    for name, raw in server_messages(r0).items():
        if name == "ServerHello":
            continue
        r = run(world)
        r.client.start()
        r.server.receive_data(r.client.data_to_send())
        expect_failure(r.client, encode_record(22, 0x0303, raw), UnexpectedMessage, UNEXPECTED, peer=r.server)


SERVER_WRONG = {
    "ServerHello": lambda r: plain_hello(r),
    "EncryptedExtensions": lambda r: EncryptedExtensions([]).to_bytes(),
    "CertificateVerify": lambda r: CertificateVerify(0x0403, b"\x30\x00").to_bytes(),
    "KeyUpdate": lambda r: KeyUpdate(1).to_bytes(),
    "EndOfEarlyData": lambda r: EndOfEarlyData().to_bytes(),
    "NewSessionTicket": lambda r: NewSessionTicket13(1, 1, b"", b"t", []).to_bytes(),
    "ClientHello": lambda r: r.sent(r.client)[0][1],
}


@pytest.mark.parametrize("name", sorted(SERVER_WRONG))
def test_server_refuses_messages_out_of_order_in_wait_flight2(world: World, name: str) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    assert r.client.state is State.CONNECTED
    r.client.data_to_send()  # its real flight is not delivered: the wrong message comes instead
    sealed = r.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET").seal(SERVER_WRONG[name](r), ContentType.handshake)
    expect_failure(r.server, sealed, UnexpectedMessage, UNEXPECTED, peer=r.client)


@pytest.mark.parametrize("name", ["Finished", "Certificate", "KeyUpdate", "ServerHello", "EndOfEarlyData"])
def test_server_refuses_anything_but_a_client_hello_first(world: World, name: str) -> None:
    messages = {
        "Finished": Finished(bytes(32)), "Certificate": Certificate13(b"", []), "KeyUpdate": KeyUpdate(0),
        "ServerHello": ServerHello(), "EndOfEarlyData": EndOfEarlyData(),
    }  # fmt: skip
    r = run(world)
    expect_failure(r.server, plain(messages[name]), UnexpectedMessage, UNEXPECTED)


def test_server_refuses_out_of_order_in_its_other_waiting_states(world: World) -> None:
    finished = Finished(bytes(48)).to_bytes()
    # WAIT_SECOND_CLIENT_HELLO: anything but the second ClientHello.
    r, _ = _retry(world)
    expect_failure(r.server, encode_record(22, 0x0303, finished), UnexpectedMessage, UNEXPECTED, peer=r.client)
    # WAIT_CERTIFICATE_VERIFY: the client's Finished right after its non-empty Certificate.
    issued = world.clients["ecdsa"]
    r = run(world, client={"client_certificate_chain": [issued.certificate], "client_private_key": issued.private_key},
            server={"client_ca": [world.pki.root.certificate]})  # fmt: skip
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    r.server.receive_data(b"".join(records(r.client.data_to_send())[:2]))  # ChangeCipherSpec, Certificate
    assert r.server.state is State.WAIT_CERTIFICATE_VERIFY
    sealer = r.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
    sealer.sequence_number = 1
    expect_failure(r.server, sealer.seal(finished, ContentType.handshake), UnexpectedMessage, UNEXPECTED,
                   peer=r.client)  # fmt: skip
    # WAIT_END_OF_EARLY_DATA: a Finished under the early keys instead of EndOfEarlyData.
    window = ReplayWindow()
    first = run(world, server={"max_early_data_size": 1024, "anti_replay": window})
    connect(first.client, first.server)
    world.clock.now += 1
    client_log: list[str] = []
    client = world.client(ticket=first.client.tickets[0], early_data=b"early", keylog=client_log.append)
    server = window_server(world, window=window)
    client.start()
    server.receive_data(client.data_to_send())
    assert server.state is State.WAIT_END_OF_EARLY_DATA
    client.receive_data(server.data_to_send())
    sealer = Run(client, server, client_log, []).sealer("CLIENT_EARLY_TRAFFIC_SECRET")
    sealer.sequence_number = 1
    expect_failure(server, sealer.seal(finished, ContentType.handshake), UnexpectedMessage, UNEXPECTED, peer=client)


def test_server_refuses_finished_when_its_certificate_request_got_no_certificate(world: World) -> None:
    """RFC 8446 4.4.2: a client asked for a certificate MUST send a Certificate (empty if it has none)."""
    r = run(world, server={"client_ca": [world.pki.root.certificate], "require_client_certificate": True})
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    r.client.data_to_send()
    hash_name = r.server.suite.hash_name
    # The client's Finished over the transcript as it stands (no Certificate, no CertificateVerify).
    handshake = [raw for _, raw in r.sent(r.client)[:1]] + [raw for _, raw in r.sent(r.server)]
    verify = finished_verify_data(
        hash_name, r.secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), transcript_hash(hash_name, handshake)
    )
    sealed = r.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET").seal(Finished(verify).to_bytes(), ContentType.handshake)
    expect_failure(r.server, sealed, UnexpectedMessage, UNEXPECTED, peer=r.client)


def test_messages_after_the_handshake_that_have_no_row(world: World) -> None:
    r = run(world)
    connect(r.client, r.server)
    for raw in (Finished(bytes(r.server.schedule.hash_length)).to_bytes(), r.sent(r.client)[0][1]):
        r2 = run(world)
        connect(r2.client, r2.server)
        sealed = r2.sealer("CLIENT_TRAFFIC_SECRET_0").seal(raw, ContentType.handshake)
        expect_failure(r2.server, sealed, UnexpectedMessage, UNEXPECTED, peer=r2.client)


# -- the second ClientHello ----------------------------------------------------------------------------------


def _retry(world: World) -> tuple[Run, ClientHello]:
    r = run(world, server={"groups": [NamedGroup.secp256r1]})
    r.client.start()
    r.server.receive_data(r.client.data_to_send())
    r.client.receive_data(r.server.data_to_send())
    assert r.server.state is State.WAIT_SECOND_CLIENT_HELLO
    second = hello_of(records(r.client.data_to_send())[-1])
    return r, second


def _extensions_without(hello: ClientHello, extension_type: int) -> list[Any]:
    return [e for e in hello.extensions if e.extension_type != extension_type]


SECOND_HELLO_CHANGES = {
    "cipher_suites": lambda h: dataclasses.replace(h, cipher_suites=h.cipher_suites[:-1]),
    "random": lambda h: dataclasses.replace(h, random=bytes(32)),
    "session_id": lambda h: dataclasses.replace(h, session_id=bytes(32)),
    "another extension": lambda h: dataclasses.replace(h, extensions=[UnknownExtension(0x7A7A, b"x"), *h.extensions]),
    "supported_groups dropped": lambda h: dataclasses.replace(
        h, extensions=_extensions_without(h, ExtensionType.supported_groups)
    ),
    "cookie not echoed": lambda h: dataclasses.replace(h, extensions=_extensions_without(h, ExtensionType.cookie)),
    "cookie altered": lambda h: dataclasses.replace(
        h,
        extensions=[
            dataclasses.replace(e, cookie=e.cookie[:-1] + bytes([e.cookie[-1] ^ 1]))
            if e.extension_type == ExtensionType.cookie
            else e
            for e in h.extensions
        ],
    ),  # fmt: skip
    "share in another group": lambda h: dataclasses.replace(
        h,
        extensions=[
            KeyShareClientHelloExtension([KeyShareEntry(NamedGroup.x25519, bytes(range(32)))])
            if e.extension_type == ExtensionType.key_share
            else e
            for e in h.extensions
        ],
    ),  # fmt: skip
}


@pytest.mark.parametrize("change", sorted(SECOND_HELLO_CHANGES))
def test_second_client_hello_changing_more_than_hrr_allows(world: World, change: str) -> None:
    r, second = _retry(world)
    changed = SECOND_HELLO_CHANGES[change](second)
    expect_failure(r.server, plain(changed), IllegalParameter, ILLEGAL, peer=r.client)


def test_the_unchanged_second_client_hello_is_taken(world: World) -> None:
    r, second = _retry(world)
    r.server.receive_data(plain(second))
    assert r.server.state is State.WAIT_FLIGHT2


def test_client_refuses_a_server_hello_that_changes_the_retry_suite(world: World) -> None:
    r, second = _retry(world)
    r.server.receive_data(plain(second))
    hello = hello_of(records(r.server.data_to_send())[0])
    other = next(suite for suite in r.client.cipher_suites if suite != hello.cipher_suite)
    changed = plain(dataclasses.replace(hello, cipher_suite=other))
    expect_failure(r.client, changed, IllegalParameter, ILLEGAL, peer=r.server)


def test_client_refuses_a_second_hello_retry_request(world: World) -> None:
    r = run(world, server={"groups": [NamedGroup.secp256r1]})
    r.client.start()
    r.server.receive_data(r.client.data_to_send())
    hrr = r.server.data_to_send()
    r.client.receive_data(hrr)
    r.client.data_to_send()
    expect_failure(r.client, records(hrr)[0], UnexpectedMessage, UNEXPECTED, peer=r.server)


# -- missing, duplicated and unoffered extensions -----------------------------------------------------------------


def _client_hello(world: World) -> tuple[Run, ClientHello]:
    r = run(world)
    r.client.start()
    return r, hello_of(records(r.client.data_to_send())[0])


@pytest.mark.parametrize(
    ("change", "error", "alert"),
    [
        (lambda h: _extensions_without(h, ExtensionType.supported_versions), ProtocolVersionError,
         TLSAlert.protocol_version),
        (lambda h: _extensions_without(h, ExtensionType.signature_algorithms), MissingExtension,
         TLSAlert.missing_extension),
        (lambda h: _extensions_without(h, ExtensionType.supported_groups), MissingExtension,
         TLSAlert.missing_extension),
        (lambda h: [*h.extensions[:1], h.extensions[1], *h.extensions[1:]], IllegalParameter, ILLEGAL),
        (lambda h: [
            KeyShareClientHelloExtension([*e.client_shares, KeyShareEntry(NamedGroup.x448, bytes(56))])
            if e.extension_type == ExtensionType.key_share else e for e in h.extensions
        ], IllegalParameter, ILLEGAL),
        (lambda h: [
            KeyShareClientHelloExtension([*e.client_shares, e.client_shares[-1]])
            if e.extension_type == ExtensionType.key_share else e for e in h.extensions
        ], IllegalParameter, ILLEGAL),
    ],
    ids=["no supported_versions", "no signature_algorithms", "key_share without supported_groups",
         "an extension twice", "a share in a group not offered", "two shares in one group"],
)  # fmt: skip
def test_server_refuses_client_hello_extensions(world: World, change: Any, error: type, alert: int) -> None:
    r, hello = _client_hello(world)
    bad = dataclasses.replace(hello, extensions=change(hello))
    expect_failure(r.server, plain(bad), error, alert, peer=r.client)


def test_server_refuses_a_psk_without_psk_key_exchange_modes(world: World) -> None:
    ticket_run = run(world)
    connect(ticket_run.client, ticket_run.server)
    r = run(world, client={"ticket": ticket_run.client.tickets[0]})
    r.client.start()
    hello = hello_of(records(r.client.data_to_send())[0])
    bad = dataclasses.replace(hello, extensions=_extensions_without(hello, ExtensionType.psk_key_exchange_modes))
    expect_failure(r.server, plain(bad), MissingExtension, TLSAlert.missing_extension, peer=r.client)


def _server_hello_changed(world: World, change: Any) -> tuple[Run, bytes]:
    r = run(world)
    _, flight = first_flights(r)
    hello = hello_of(flight[0])
    return r, plain(dataclasses.replace(hello, extensions=change(hello)))


def test_client_refuses_a_server_hello_without_key_share_or_psk(world: World) -> None:
    r, bad = _server_hello_changed(world, lambda h: _extensions_without(h, ExtensionType.key_share))
    expect_failure(r.client, bad, MissingExtension, TLSAlert.missing_extension, peer=r.server)


def test_client_refuses_a_server_hello_choosing_tls12_in_supported_versions(world: World) -> None:
    r, bad = _server_hello_changed(
        world,
        lambda h: [SelectedVersionExtension(0x0303) if e.extension_type == ExtensionType.supported_versions else e
                   for e in h.extensions],
    )  # fmt: skip
    expect_failure(r.client, bad, IllegalParameter, ILLEGAL, peer=r.server)


def test_client_refuses_a_server_share_in_a_group_it_sent_no_share_for(world: World) -> None:
    share = KeyShareServerHelloExtension(KeyShareEntry(NamedGroup.secp256r1, b"\x04" + bytes(64)))
    r, bad = _server_hello_changed(
        world, lambda h: [share if e.extension_type == ExtensionType.key_share else e for e in h.extensions]
    )
    expect_failure(r.client, bad, IllegalParameter, ILLEGAL, peer=r.server)


def test_client_refuses_a_server_hello_with_an_extension_twice(world: World) -> None:
    r, bad = _server_hello_changed(world, lambda h: [*h.extensions, h.extensions[0]])
    expect_failure(r.client, bad, IllegalParameter, ILLEGAL, peer=r.server)


def test_client_refuses_encrypted_extensions_with_an_extension_twice(world: World) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:2]))
    twice = EncryptedExtensions(
        [UnknownExtension(ExtensionType.server_name), UnknownExtension(ExtensionType.server_name)]
    )
    sealed = r.sealer("SERVER_HANDSHAKE_TRAFFIC_SECRET").seal(twice.to_bytes(), ContentType.handshake)
    expect_failure(r.client, sealed, IllegalParameter, ILLEGAL, peer=r.server)


# -- records ----------------------------------------------------------------------------------------------------


def test_zero_length_handshake_records(world: World) -> None:
    r = run(world)
    expect_failure(r.server, encode_record(ContentType.handshake, 0x0301, b""), UnexpectedMessage, UNEXPECTED)
    # Protected: a record whose inner type is handshake and whose content is empty.
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:2]))
    expect_failure(r.client, _seal_raw(r, "SERVER_HANDSHAKE_TRAFFIC_SECRET", b"\x16"), UnexpectedMessage,
                   UNEXPECTED, peer=r.server)  # fmt: skip


def _seal_raw(r: Run, label: str, inner: bytes, sequence: int = 0) -> bytes:
    """A protected record around ``inner`` as it is (content, type byte, padding): what RecordSealer13 refuses
    to build (an empty handshake fragment, no content type at all)."""
    sealer = r.sealer(label)
    header = bytes([23, 3, 3]) + (len(inner) + sealer.suite.tag_length).to_bytes(2, "big")
    return header + sealer._aead.encrypt(record_nonce(sealer.iv, sequence), inner, header)


def test_a_protected_record_over_the_limit_is_record_overflow(world: World) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:2]))
    length = (1 << 14) + 256 + 1
    expect_failure(r.client, bytes([23, 3, 3]) + length.to_bytes(2, "big") + bytes(length), RecordOverflow,
                   TLSAlert.record_overflow, peer=r.server)  # fmt: skip


def test_a_padding_only_record_is_unexpected_message(world: World) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:2]))
    sealed = _seal_raw(r, "SERVER_HANDSHAKE_TRAFFIC_SECRET", bytes(40))
    expect_failure(r.client, sealed, UnexpectedMessage, UNEXPECTED, peer=r.server)


def test_two_change_cipher_specs(world: World) -> None:
    ccs = encode_record(ContentType.change_cipher_spec, 0x0303, b"\x01")
    r = run(world)
    _, flight = first_flights(r)
    assert flight[1] == ccs
    r.client.receive_data(b"".join(flight[:2]))
    expect_failure(r.client, ccs, UnexpectedMessage, UNEXPECTED, peer=r.server)
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    client_flight = records(r.client.data_to_send())
    assert client_flight[0] == ccs
    r.server.receive_data(ccs)
    expect_failure(r.server, ccs, UnexpectedMessage, UNEXPECTED, peer=r.client)


@pytest.mark.parametrize("cut", [3, 40, -1])
def test_a_stream_cut_short_is_unexpected_eof(world: World, cut: int) -> None:
    r = run(world)
    _, flight = first_flights(r)
    wire = b"".join(flight)
    r.client.receive_data(wire[:cut] if cut > 0 else b"".join(flight[:2]))
    expect_failure(r.client, b"", UnexpectedEOF, UNEXPECTED)


# -- authentication ------------------------------------------------------------------------------------------------


def test_a_wrong_binder_is_decrypt_error(world: World) -> None:
    ticket_run = run(world)
    connect(ticket_run.client, ticket_run.server)
    r = run(world, client={"ticket": ticket_run.client.tickets[0]})
    r.client.start()
    hello = bytearray(r.client.data_to_send())
    end = 5 + int.from_bytes(hello[3:5], "big")
    hello[end - 1] ^= 1  # the ClientHello ends with the binder (pre_shared_key is last)
    expect_failure(r.server, bytes(hello[:end]), DecryptError, TLSAlert.decrypt_error, peer=r.client)


def test_a_bad_server_finished_is_decrypt_error(world: World) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:-1]))
    finished = server_messages(r)["Finished"]
    sealer = r.sealer("SERVER_HANDSHAKE_TRAFFIC_SECRET")
    sealer.sequence_number = 3  # after EncryptedExtensions, Certificate, CertificateVerify
    bad = finished[:-1] + bytes([finished[-1] ^ 1])
    expect_failure(r.client, sealer.seal(bad, ContentType.handshake), DecryptError, TLSAlert.decrypt_error,
                   peer=r.server)  # fmt: skip


def test_a_bad_client_finished_is_decrypt_error(world: World) -> None:
    r = run(world)
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    r.client.data_to_send()
    finished = next(raw for message, raw in r.sent(r.client) if isinstance(message, Finished))
    bad = finished[:-1] + bytes([finished[-1] ^ 1])
    sealed = r.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET").seal(bad, ContentType.handshake)
    expect_failure(r.server, sealed, DecryptError, TLSAlert.decrypt_error, peer=r.client)


def test_a_pkcs1_certificate_verify_is_illegal_parameter(world: World) -> None:
    """RSA signs CertificateVerify only with PSS in TLS 1.3 (RFC 8446 4.2.3): a true PKCS#1 signature is refused."""
    r = run(world, server={"key_type": "rsa2048"})
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight[:4]))  # through the Certificate
    handshake = [raw for _, raw in r.sent(r.client)[:1]] + [raw for _, raw in r.sent(r.server)[:3]]
    content = certificate_verify_content("server", transcript_hash(r.server.suite.hash_name, handshake))
    key = world.servers["rsa2048"].private_key
    verify = CertificateVerify(0x0401, key.sign(content, padding.PKCS1v15(), hashes.SHA256()))
    sealer = r.sealer("SERVER_HANDSHAKE_TRAFFIC_SECRET")
    sealer.sequence_number = 2
    expect_failure(r.client, sealer.seal(verify.to_bytes(), ContentType.handshake), IllegalParameter, ILLEGAL,
                   peer=r.server)  # fmt: skip


def test_a_client_pkcs1_certificate_verify_is_illegal_parameter(world: World) -> None:
    issued = world.clients["rsa"]
    r = run(world, client={"client_certificate_chain": [issued.certificate], "client_private_key": issued.private_key},
            server={"client_ca": [world.pki.root.certificate]})  # fmt: skip
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    client_flight = records(r.client.data_to_send())
    r.server.receive_data(b"".join(client_flight[:2]))  # ChangeCipherSpec, Certificate
    handshake = [raw for _, raw in r.sent(r.client)[:1]] + [raw for _, raw in r.sent(r.server)]
    handshake.append(r.sent(r.client)[1][1])
    content = certificate_verify_content("client", transcript_hash(r.server.suite.hash_name, handshake))
    verify = CertificateVerify(0x0401, issued.private_key.sign(content, padding.PKCS1v15(), hashes.SHA256()))
    sealer = r.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
    sealer.sequence_number = 1
    expect_failure(r.server, sealer.seal(verify.to_bytes(), ContentType.handshake), IllegalParameter, ILLEGAL,
                   peer=r.client)  # fmt: skip


def test_certificate_required_is_its_own_alert(world: World) -> None:
    r = run(world, server={"client_ca": [world.pki.root.certificate], "require_client_certificate": True})
    _, flight = first_flights(r)
    r.client.receive_data(b"".join(flight))
    expect_failure(r.server, r.client.data_to_send(), CertificateRequired, TLSAlert.certificate_required,
                   peer=r.client)  # fmt: skip


# -- floods -------------------------------------------------------------------------------------------------------


def test_an_early_data_flood_is_unexpected_message(world: World) -> None:
    window = ReplayWindow()
    first = run(world, server={"max_early_data_size": 1024, "anti_replay": window})
    connect(first.client, first.server)
    world.clock.now += 1
    client_log: list[str] = []
    client = world.client(ticket=first.client.tickets[0], early_data=bytes(1000), keylog=client_log.append)
    server = window_server(world, window=window)
    client.start()
    assert len(server.receive_data(client.data_to_send())) == 1
    client.receive_data(server.data_to_send())  # the client can now read the server's alert
    r = Run(client, server, client_log, [])
    sealer = r.sealer("CLIENT_EARLY_TRAFFIC_SECRET")
    sealer.sequence_number = 1
    expect_failure(server, sealer.seal(bytes(100), ContentType.application_data), UnexpectedMessage, UNEXPECTED,
                   peer=client)  # fmt: skip


def test_a_key_update_flood_is_unexpected_message(world: World) -> None:
    r = run(world)
    connect(r.client, r.server)
    for _ in range(MAX_KEY_UPDATES):
        r.client.update_keys(request_peer=False)
    r.server.receive_data(r.client.data_to_send())
    assert r.server.key_generations["receiving"] == MAX_KEY_UPDATES
    r.client.update_keys(request_peer=False)
    expect_failure(r.server, r.client.data_to_send(), UnexpectedMessage, UNEXPECTED, peer=r.client)


# -- random and mutated bytes at every step (hypothesis) ------------------------------------------------------------

_FUZZ_WORLD: list[World] = []


def _fuzz_world() -> World:
    if not _FUZZ_WORLD:
        _FUZZ_WORLD.append(World.create())
    return _FUZZ_WORLD[0]


def _mutate(data: bytes, how: str, position: int, value: bytes) -> bytes:
    if not data:
        return value
    position %= len(data)
    if how == "flip":
        return (
            data[:position] + bytes([data[position] ^ (value[0] if value and value[0] else 1)]) + data[position + 1 :]
        )
    if how == "truncate":
        return data[:position]
    if how == "insert":
        return data[:position] + value + data[position:]
    return value  # replace everything with random bytes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=st.sampled_from(["client", "server"]),
    step=st.integers(0, 4),
    how=st.sampled_from(["flip", "truncate", "insert", "replace"]),
    position=st.integers(0, 1 << 16),
    value=st.binary(min_size=0, max_size=64),
    shape=st.sampled_from(["full", "client certificate", "retry", "resumed", "0-RTT"]),
)
def test_mutated_bytes_at_every_step_give_only_protocol_errors(
    target: str, step: int, how: str, position: int, value: bytes, shape: str
) -> None:
    world = _fuzz_world()
    options: dict[str, Any] = {"key_share_groups": [NamedGroup.x25519]}
    server_options: dict[str, Any] = {}
    if shape in ("resumed", "0-RTT"):
        if not hasattr(world, "fuzz_ticket"):
            c = world.client(**options)
            connect(c, window_server(world))
            world.fuzz_ticket = c.tickets[0]  # type: ignore[attr-defined]
        options["ticket"] = world.fuzz_ticket  # type: ignore[attr-defined]
    if shape == "0-RTT":
        options["early_data"] = b"GET / HTTP/1.1\r\n\r\n"
        server_options = {"max_early_data_size": 1024, "anti_replay": ReplayWindow()}
    elif shape == "client certificate":
        issued = world.clients["ed25519"]
        options.update(client_certificate_chain=[issued.certificate], client_private_key=issued.private_key)
        server_options = {"client_ca": [world.pki.root.certificate], "require_client_certificate": True}
    elif shape == "retry":
        server_options = {"groups": [NamedGroup.secp256r1]}
    client, server = world.client(**options), world.server(**server_options)
    client.start()
    deliveries = {"client": 0, "server": 0}
    receiver: Any = None
    try:
        for _ in range(10):  # a handshake and a message each way take five; never more than ten
            moved = False
            for sender, receiver in ((client, server), (server, client)):
                data = sender.data_to_send()
                if not data:
                    continue
                moved = True
                if receiver.role == target and deliveries[target] == step:
                    data = _mutate(data, how, position, value)
                deliveries[receiver.role] += 1
                receiver.receive_data(data)
            if not moved:
                if client.state is server.state is State.CONNECTED and deliveries[target] <= step:
                    (server if target == "client" else client).send_application_data(b"data")
                    continue
                break
    except PeerAlert:
        return  # the other core refused first and said so (its own error was checked as it raised)
    except ProtocolError as error:
        assert not isinstance(error, InternalError), repr(error.__cause__)
        assert receiver.state is State.ERROR and receiver.error is error
        wire = receiver.data_to_send()
        if wire:
            assert queued_alert(receiver, wire) == error.tls_alert  # fatal, and the last record out
        return
    done = (State.CONNECTED, State.CLOSED)  # CLOSED: a cut to nothing after the handshake is a clean end
    if client.state in done and server.state in done:
        return  # the mutation changed nothing that mattered
    # Someone waits for the rest of a record or message (a cut, an inserted length): the end of the stream
    # then is UnexpectedEOF, with its alert.
    waiting = client if client.state not in done else server
    with pytest.raises(UnexpectedEOF):
        waiting.receive_data(b"")
    assert queued_alert(waiting, waiting.data_to_send()) == UNEXPECTED
