"""Whatever the peer sends wrong ends the connection with the right alert and a typed error.

Also: a deterministic byte-for-byte replay (sans-I/O with injected randomness) and hypothesis fuzzing
of both cores with random and mutated flights.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import (
    BadRecordMac,
    CertificateError,
    DecryptError,
    HandshakeError,
    HandshakeFailure,
    IllegalParameter,
    PeerAlert,
    ProtocolError,
    ProtocolVersionError,
    RecordOverflow,
    TLSAlert,
    UnexpectedMessage,
)
from handshake_lib.pki import CoursePKI
from handshake_lib.tls import ConnectionStateError, Stages, State, TLSClient, TLSServer, UnexpectedEOF
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES, InternalError, UnsupportedExtension
from handshake_lib.tls.extensions import SupportedVersionsExtension, UnknownExtension
from handshake_lib.tls.messages import Alert, ClientHello, ServerHello, decode_handshake
from handshake_lib.tls.prf import verify_data
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.rsa_kx import encrypt_pre_master_secret

CLIENT_RANDOM = bytes(range(0x00, 0x20))  # the course's demo values (DESIGN.md section 6)
SERVER_RANDOM = bytes(range(0x70, 0x90))


@pytest.fixture(scope="module")
def issued(course_pki, server_certificate):
    """The session's course CA and the server certificate it issued (conftest), bundled as the helpers take them."""
    return course_pki, server_certificate


def counter_random():
    """Deterministic 'random' bytes for replays (SHA-256 of a counter; DEMO ONLY)."""
    counter = itertools.count()

    def random_bytes(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return random_bytes


def make_client(issued, **options) -> TLSClient:
    pki, _ = issued
    options.setdefault("trusted_certificates", [pki.root.certificate])
    options.setdefault("cipher_suites", RSA_DEFAULT_SUITES)  # these cases are about RSA key exchange
    return TLSClient("localhost", **options)


def make_server(issued, **options) -> TLSServer:
    _, cert = issued
    return TLSServer([cert.certificate.public_bytes(Encoding.DER)], cert.private_key, **options)


def run(client: TLSClient, server: TLSServer) -> tuple[bytes, bytes]:
    """Complete a handshake in memory; return (all client bytes, all server bytes)."""
    client.start()
    sent_by_client, sent_by_server = b"", b""
    for _ in range(3):
        data = client.data_to_send()
        sent_by_client += data
        if data:
            server.receive_data(data)
        data = server.data_to_send()
        sent_by_server += data
        if data:
            client.receive_data(data)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    return sent_by_client, sent_by_server


def server_flight(issued, **client_options) -> tuple[TLSClient, bytes]:
    client = make_client(issued, client_random=CLIENT_RANDOM, **client_options)
    server = make_server(issued, server_random=SERVER_RANDOM)
    client.start()
    server.receive_data(client.data_to_send())
    return client, server.data_to_send()


# -- replay -------------------------------------------------------------------------------------------
def test_handshake_replays_byte_for_byte_with_fixed_randoms(issued) -> None:
    # RSA PKCS#1 v1.5 padding is random inside OpenSSL, so the test records the one ciphertext and
    # replays it: everything else is computed afresh by both cores and must come out identical.
    recorded: dict[bytes, bytes] = {}

    def recording_encrypt(pre_master, public_key):
        return recorded.setdefault(pre_master, encrypt_pre_master_secret(pre_master, public_key))

    runs = []
    for _ in range(2):
        client = make_client(
            issued,
            client_random=CLIENT_RANDOM,
            random_bytes=counter_random(),
            stages=Stages(encrypt_pre_master_secret=recording_encrypt),
            cipher_suites=[0x3C],
        )
        server = make_server(issued, server_random=SERVER_RANDOM, random_bytes=counter_random())
        runs.append((run(client, server), client, server))
    (first, c1, _), (second, c2, _) = runs
    assert first == second
    assert c1.handshake == c2.handshake
    assert c1.handshake.client_random == CLIENT_RANDOM and c1.handshake.server_random == SERVER_RANDOM
    # A different server random changes every byte after the hellos: the replay is not vacuous.
    client = make_client(
        issued,
        client_random=CLIENT_RANDOM,
        random_bytes=counter_random(),
        stages=Stages(encrypt_pre_master_secret=recording_encrypt),
        cipher_suites=[0x3C],
    )
    other = run(client, make_server(issued, server_random=bytes(32), random_bytes=counter_random()))
    assert other[0][:100] == first[0][:100] and other[0] != first[0]


def test_transcript_spans_cover_plaintext_records(issued) -> None:
    client, flight = server_flight(issued)
    client.receive_data(flight)
    server_hello_entry = client.transcript[1]
    fields = [s.field for s in server_hello_entry.spans]
    assert fields[:3] == ["record.content_type", "record.version", "record.length"]
    random_span = next(s for s in server_hello_entry.spans if s.field.endswith("random"))
    assert server_hello_entry.record[random_span.offset : random_span.end] == SERVER_RANDOM
    finished_entry = client.transcript[-1]
    assert finished_entry.encrypted and finished_entry.spans[-1].field == "record.protected_fragment"


# -- what the peer can get wrong -----------------------------------------------------------------------
def expect_failure(connection, data: bytes, error: type[ProtocolError], alert: TLSAlert) -> ProtocolError:
    with pytest.raises(error) as caught:
        connection.receive_data(data)
    assert connection.state is State.ERROR
    sent = connection.transcript[-1]
    assert sent.direction == connection.outgoing_direction and sent.messages == [Alert(2, alert)]
    assert connection.data_to_send()  # the alert is queued for the wire
    with pytest.raises(ConnectionStateError):
        connection.receive_data(b"\x15\x03\x03\x00\x02\x01\x00")
    with pytest.raises(ConnectionStateError):
        connection.send_application_data(b"x")
    return caught.value


def test_the_validators_report_stays_with_the_connection_and_the_error(issued) -> None:
    """Refused: every check in the report, on the exception and on the client; accepted: on the client."""
    client, flight = _expired(issued)
    error = expect_failure(client, flight, CertificateError, TLSAlert.certificate_expired)
    assert error.report is client.certificate_report and not error.report.valid
    assert error.report.status()["validity"] == "fail" and error.report.status()["host_name"] == "pass"
    client, flight = _client_facing(issued)
    client.receive_data(flight)
    report = client.certificate_report
    assert report is not None and report.valid and report.host == client.server_name
    assert list(report.path) == client.verified_chain and report.status()["revocation"] == "not checked"


def test_wrong_server_finished_is_decrypt_error(issued) -> None:
    client = make_client(issued)

    def wrong_server_finished(master_secret, label, handshake_messages, hash_name):
        if label == "server finished":
            return bytes(12)
        return verify_data(master_secret, label, handshake_messages, hash_name)

    server = make_server(issued, stages=Stages(verify_data=wrong_server_finished))
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    error = expect_failure(client, server.data_to_send(), DecryptError, TLSAlert.decrypt_error)
    assert "Finished" in str(error)
    assert client.transcript[-1].encrypted  # our write side was already protected


def test_garbled_pre_master_secret_fails_at_finished_not_earlier(issued) -> None:
    garbling = Stages(encrypt_pre_master_secret=lambda pms, key: encrypt_pre_master_secret(b"\x00" * 48, key))
    client = make_client(issued, stages=garbling)
    server = make_server(issued)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    # The server says nothing about the bad pre-master secret; it only fails to read our Finished.
    expect_failure(server, client.data_to_send(), BadRecordMac, TLSAlert.bad_record_mac)


def test_oversized_record_is_record_overflow(issued) -> None:
    server = make_server(issued)
    expect_failure(server, b"\x16\x03\x03\xff\xff", RecordOverflow, TLSAlert.record_overflow)


def test_unknown_content_type_is_unexpected(issued) -> None:
    expect_failure(make_server(issued), b"\x63\x03\x03\x00\x01\x00", UnexpectedMessage, TLSAlert.unexpected_message)


def test_bad_lengths_are_decode_errors(issued) -> None:
    hello = bytearray(ClientHello(cipher_suites=[0x9C]).to_bytes())
    hello[3] += 1  # the body claims one byte more than the record holds... and then the next one arrives
    server = make_server(issued)
    server.receive_data(encode_record(22, 0x0303, bytes(hello)))  # incomplete: waits for more
    from handshake_lib.errors import DecodeError

    expect_failure(server, encode_record(22, 0x0303, b"\x00"), DecodeError, TLSAlert.decode_error)


def test_peer_closing_mid_handshake_is_unexpected_eof(issued) -> None:
    client, flight = server_flight(issued)
    client.receive_data(flight[:20])
    with pytest.raises(UnexpectedEOF):
        client.receive_data(b"")
    client2, flight2 = server_flight(issued)
    client2.receive_data(flight2)
    with pytest.raises(UnexpectedEOF, match="during the handshake"):
        client2.receive_data(b"")


def test_received_fatal_alert_raises_peer_alert_and_ends_the_connection(issued) -> None:
    client, _ = server_flight(issued)
    with pytest.raises(PeerAlert) as caught:
        client.receive_data(encode_record(21, 0x0303, bytes([2, TLSAlert.handshake_failure])))
    assert caught.value.description == TLSAlert.handshake_failure
    assert client.state is State.ERROR and client.data_to_send() == b""
    with pytest.raises(ConnectionStateError):
        client.receive_data(b"\x00")


def test_close_notify_mid_handshake_is_an_error(issued) -> None:
    client, _ = server_flight(issued)
    with pytest.raises(PeerAlert, match="close_notify"):
        client.receive_data(encode_record(21, 0x0303, bytes([1, 0])))


def test_close_notify_after_the_handshake_closes_cleanly(issued) -> None:
    client, server = make_client(issued), make_server(issued)
    run(client, server)
    server.close()
    events = client.receive_data(server.data_to_send())
    assert [type(e).__name__ for e in events] == ["AlertReceived", "ConnectionClosed"]
    assert client.state is State.CLOSED and client.data_to_send()  # our close_notify answers


def client_hello_with(**changes) -> bytes:
    hello = ClientHello(random=CLIENT_RANDOM, cipher_suites=[0x9C, 0x2F], extensions=[])
    for name, value in changes.items():
        setattr(hello, name, value)
    return encode_record(22, 0x0301, hello.to_bytes())


def test_server_refuses_tls13_only_client(issued) -> None:
    data = client_hello_with(cipher_suites=[0x1301], extensions=[SupportedVersionsExtension([0x0304])])
    expect_failure(make_server(issued), data, ProtocolVersionError, TLSAlert.protocol_version)


def test_server_without_a_common_suite_says_handshake_failure(issued) -> None:
    # A server restricted to RSA key exchange, a client offering ECDHE-RSA-AES128-GCM-SHA256 only.
    expect_failure(
        make_server(issued, cipher_suites=RSA_DEFAULT_SUITES),
        client_hello_with(cipher_suites=[0xC02F]), HandshakeFailure, TLSAlert.handshake_failure,
    )  # fmt: skip


def server_hello_record(client: TLSClient, **changes) -> bytes:
    hello = ServerHello(random=SERVER_RANDOM, cipher_suite=0x9C, extensions=[])
    for name, value in changes.items():
        setattr(hello, name, value)
    return encode_record(22, 0x0303, hello.to_bytes())


@pytest.mark.parametrize(
    ("changes", "error", "alert"),
    [
        ({"cipher_suite": 0x35}, IllegalParameter, TLSAlert.illegal_parameter),  # not offered
        ({"compression_method": 1}, IllegalParameter, TLSAlert.illegal_parameter),
        ({"legacy_version": 0x0302}, ProtocolVersionError, TLSAlert.protocol_version),
        ({"extensions": [UnknownExtension(0x1234, b"")]}, UnsupportedExtension, TLSAlert.unsupported_extension),
        ({"extensions": [UnknownExtension(22, b"")]}, IllegalParameter, TLSAlert.illegal_parameter),  # EtM + GCM
    ],
)
def test_client_checks_the_server_hello(issued, changes, error, alert) -> None:
    client = make_client(issued)
    client.start()
    expect_failure(client, server_hello_record(client, **changes), error, alert)


def test_client_refuses_a_non_rsa_certificate(issued) -> None:
    pki, _ = issued
    ecdsa = pki.issue_server(("localhost",), key_type="ecdsa-p256")
    client, flight = server_flight(issued)
    from handshake_lib.tls.messages import Certificate

    records = [
        server_hello_record(client),
        encode_record(22, 0x0303, Certificate([ecdsa.certificate.public_bytes(Encoding.DER)]).to_bytes()),
    ]
    client = make_client(issued)
    client.start()
    client.receive_data(records[0])
    error = expect_failure(client, records[1], CertificateError, TLSAlert.unsupported_certificate)
    assert "RSA" in str(error)


def test_client_with_expired_clock_says_certificate_expired(issued) -> None:
    import datetime as dt

    client, flight = server_flight(issued, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=60))
    expect_failure(client, flight, CertificateError, TLSAlert.certificate_expired)


# -- fuzzing ------------------------------------------------------------------------------------------
def feed_and_check(connection, data: bytes) -> None:
    """Feeding ``data`` either works or raises a specific ProtocolError with an alert queued."""
    try:
        connection.receive_data(data)
    except PeerAlert:
        assert connection.state is State.ERROR
    except ProtocolError as error:
        assert not isinstance(error, InternalError), f"an internal error leaked: {error!r}"
        assert type(error) is not ProtocolError
        assert connection.state is State.ERROR
        queued = connection.data_to_send()
        assert last_record_type(queued) == 21  # the fatal alert is the last thing we send
        assert connection.transcript[-1].messages == [Alert(2, error.tls_alert)]
    except HandshakeError as error:  # pragma: no cover - a failure message that names the type
        pytest.fail(f"unexpected HandshakeError {error!r}")


def last_record_type(stream: bytes) -> int | None:
    position, last = 0, None
    while position + 5 <= len(stream):
        last = stream[position]
        position += 5 + int.from_bytes(stream[position + 3 : position + 5], "big")
    return last


FUZZ_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300))
def test_fuzz_client_with_random_bytes(issued, data) -> None:
    client = make_client(issued)
    client.start()
    client.data_to_send()
    feed_and_check(client, data)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300))
def test_fuzz_server_with_random_bytes(issued, data) -> None:
    feed_and_check(make_server(issued), data)


def mutate(data: bytes, position: int, value: int, cut: int) -> bytes:
    position %= len(data)
    mutated = bytearray(data)
    mutated[position] ^= value or 1
    return bytes(mutated[: max(1, len(mutated) - cut)])


@pytest.fixture(scope="module")
def flights(issued):
    client = make_client(issued, client_random=CLIENT_RANDOM)
    server = make_server(issued, server_random=SERVER_RANDOM)
    client_bytes, server_bytes = run(client, server)
    return client_bytes, server_bytes


@FUZZ_SETTINGS
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.integers(0, 3))
def test_fuzz_client_with_mutated_server_flights(issued, flights, position, value, cut) -> None:
    client = make_client(issued, client_random=CLIENT_RANDOM)
    client.start()
    client.data_to_send()
    feed_and_check(client, mutate(flights[1], position, value, cut))


@FUZZ_SETTINGS
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.integers(0, 3))
def test_fuzz_server_with_mutated_client_flights(issued, flights, position, value, cut) -> None:
    server = make_server(issued, server_random=SERVER_RANDOM)
    feed_and_check(server, mutate(flights[0], position, value, cut))


def test_decode_handshake_of_our_client_hello_round_trips(issued) -> None:
    client = make_client(issued, client_random=CLIENT_RANDOM)
    client.start()
    raw = client.client_hello.to_bytes()
    assert decode_handshake(raw)[0].to_bytes() == raw


# -- one exception class per alert, each reached from a real condition ---------------------------------
def _leaf(pki, *, usages=None, hosts=("localhost",), unknown_critical_extension=False):
    """A server certificate from ``pki``'s root, with what CoursePKI.issue_server does not let a test vary."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(pki.root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages or [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.private_key.public_key()), critical=False
        )
    )
    if unknown_critical_extension:  # a verifier must refuse what it cannot understand (RFC 5280 section 4.2)
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"), critical=True
        )
    certificate = builder.sign(pki.root.private_key, hashes.SHA256())
    return certificate.public_bytes(Encoding.DER), key


def _client_facing(issued, server_chain=None, *, server_options=None, **client_options):
    """A client that sent its hello, and the server flight that answers it (from a server with ``server_chain``)."""
    pki, cert = issued
    chain, key = server_chain or ([cert.certificate.public_bytes(Encoding.DER)], cert.private_key)
    client = make_client(issued, **client_options)
    server = TLSServer(chain, key, **(server_options or {}))
    client.start()
    server.receive_data(client.data_to_send())
    return client, server.data_to_send()


def _untrusted_ca(issued):
    return _client_facing(issued, trusted_certificates=[CoursePKI.create().root.certificate])


def _expired(issued):
    import datetime as dt

    return _client_facing(issued, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=60))


def _revoked(issued):
    """The course CA's own CRL lists the server's certificate: the client, holding that CRL, refuses it."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    pki, cert = issued
    now = dt.datetime.now(dt.UTC)
    revoked = (
        x509.RevokedCertificateBuilder().serial_number(cert.certificate.serial_number).revocation_date(now).build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.certificate.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(pki.root.private_key, hashes.SHA256())
    )
    return _client_facing(issued, crls=[crl])


def _not_yet_valid(issued):
    import datetime as dt

    return _client_facing(issued, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))


def _other_host(issued):
    pki, cert = issued
    client = TLSClient("example.com", trusted_certificates=[pki.root.certificate], cipher_suites=RSA_DEFAULT_SUITES)
    server = make_server(issued)
    client.start()
    server.receive_data(client.data_to_send())
    return client, server.data_to_send()


def _client_auth_only(issued):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    der, key = _leaf(issued[0], usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    return _client_facing(issued, ([der], key))


def _unknown_critical_extension(issued):
    der, key = _leaf(issued[0], unknown_critical_extension=True)  # anchored, valid, named, for servers: still no
    return _client_facing(issued, ([der], key))


def _wrong_server_finished(issued):
    from handshake_lib.tls import prf

    client = make_client(issued)
    server = make_server(
        issued,
        stages=Stages(
            verify_data=lambda m, label, messages, hash_name="sha256": (
                bytes(12) if "server" in label else prf.verify_data(m, label, messages, hash_name)
            )
        ),
    )
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server.data_to_send()


def _tampered_finished(issued):
    client, server = make_client(issued), make_server(issued)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    flight = bytearray(server.data_to_send())
    flight[-1] ^= 1  # the last byte of the server's encrypted Finished (its GCM tag)
    return client, bytes(flight)


def _server_hello(**changes):
    def condition(issued):
        client = make_client(issued)
        client.start()
        return client, server_hello_record(client, **changes)

    return condition


def _server_hello_done_first(issued):
    client = make_client(issued)
    client.start()
    from handshake_lib.tls.messages import ServerHelloDone

    return client, encode_record(22, 0x0303, ServerHelloDone().to_bytes())


def _bad_length(issued):
    client = make_client(issued)
    client.start()
    return client, encode_record(21, 0x0303, b"\x02\x28\x00")  # a three-byte alert


def _oversized(issued):
    client = make_client(issued)
    client.start()
    return client, b"\x16\x03\x03\xff\xff"


def _learner_stage_fails(issued):
    def broken(pre_master, key):
        raise ZeroDivisionError("a learner's bug")

    return _client_facing(issued, stages=Stages(encrypt_pre_master_secret=broken))


def _eof_mid_handshake(issued):
    client, flight = _client_facing(issued)
    client.receive_data(flight)
    return client, b""


def _renegotiating_server_hello(issued):
    from handshake_lib.tls.extensions import RenegotiationInfoExtension

    return _server_hello(extensions=[RenegotiationInfoExtension(b"\x01" * 12)])(issued)


# (condition, the class it must raise): every ProtocolError subclass the client can raise is here.
ALERT_CONDITIONS = [
    (_untrusted_ca, "UnknownCA"),
    (_expired, "CertificateExpired"),
    (_revoked, "CertificateRevoked"),
    (_other_host, "BadCertificate"),
    (_not_yet_valid, "BadCertificate"),
    (_client_auth_only, "UnsupportedCertificate"),
    (_unknown_critical_extension, "CertificateUnknown"),
    (_wrong_server_finished, "DecryptError"),
    (_tampered_finished, "BadRecordMac"),
    (_renegotiating_server_hello, "HandshakeFailure"),
    (_server_hello(legacy_version=0x0302), "ProtocolVersionError"),
    (_server_hello_done_first, "UnexpectedMessage"),
    (_bad_length, "DecodeError"),
    (_oversized, "RecordOverflow"),
    (_server_hello(compression_method=1), "IllegalParameter"),
    (_server_hello(extensions=[UnknownExtension(0x1234, b"")]), "UnsupportedExtension"),
    (_learner_stage_fails, "InternalError"),
    (_eof_mid_handshake, "UnexpectedEOF"),
]


@pytest.mark.parametrize(
    ("condition", "name"), ALERT_CONDITIONS, ids=[f"{n}-{c.__name__}" for c, n in ALERT_CONDITIONS]
)
def test_each_alert_class_is_raised_and_its_code_goes_on_the_wire(issued, condition, name) -> None:
    from handshake_lib import errors

    cls = getattr(errors, name)
    client, data = condition(issued)
    with pytest.raises(ProtocolError) as caught:
        client.receive_data(data)
    assert type(caught.value) is cls, caught.value
    assert client.state is State.ERROR
    sent = client.transcript[-1]
    assert sent.direction == "client->server" and sent.messages == [Alert(2, cls.tls_alert)]
    wire = client.data_to_send()
    assert wire.endswith(sent.record)  # what the transcript shows is what went out, last
    if not sent.encrypted:
        assert wire[-7:] == encode_record(21, 0x0303, bytes([2, cls.tls_alert]))


def test_every_alert_class_has_a_condition_and_its_own_code() -> None:
    from handshake_lib import errors

    classes = {
        cls for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ProtocolError) and "tls_alert" in vars(cls)
    }
    # ProtocolError and CertificateError are bases (never raised as such); the rest each name one alert.
    raised = classes - {errors.ProtocolError, errors.CertificateError}
    # MissingExtension and CertificateRequired exist only in TLS 1.3: tests/test_tls13_core.py raises each
    # through the 1.3 cores and checks its alert on the wire.
    assert {name for _, name in ALERT_CONDITIONS} | {"MissingExtension", "CertificateRequired"} == {
        cls.__name__ for cls in raised
    }
    by_alert: dict[TLSAlert, list[str]] = {}
    for cls in raised:
        by_alert.setdefault(cls.tls_alert, []).append(cls.__name__)
    # One class per alert, except the end of the stream, which borrows unexpected_message (errors.UnexpectedEOF).
    assert {alert: sorted(names) for alert, names in by_alert.items() if len(names) > 1} == {
        TLSAlert.unexpected_message: ["UnexpectedEOF", "UnexpectedMessage"]
    }


def test_verify_never_reads_cryptographys_message_text() -> None:
    import inspect

    from handshake_lib.tls import verify

    source = inspect.getsource(verify)
    assert "str(exc).lower()" not in source and ".lower()" not in source
    assert "tls_alert =" not in source
