"""TLS 1.2 messages: round trips on real OpenSSL bytes, strict checks, alerts compared with OpenSSL, fuzzing.

Real peers: OpenSSL 3 through Python's ``ssl`` (memory BIOs: live flights from the installed
library, and the fixed captures in tests/data/tls), and the ``openssl s_client`` command line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import require
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handshake_lib.errors import (
    DecodeError,
    IllegalParameter,
    ProtocolError,
    TLSAlert,
    UnexpectedMessage,
)
from handshake_lib.pki import IssuedCertificate
from handshake_lib.tls.connection import record_spans
from handshake_lib.tls.constants import (
    OPENSSL_NAMES,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
)
from handshake_lib.tls.extensions import (
    CLIENT_HELLO_EXTENSIONS,
    SERVER_HELLO_EXTENSIONS,
    ExtendedMasterSecretExtension,
    KeyShareClientHelloExtension,
    ServerName,
    ServerNameExtension,
    SupportedVersionsExtension,
    UnknownExtension,
    decode_extensions,
    encode_extensions,
)
from handshake_lib.tls.messages import (
    Alert,
    Certificate,
    ChangeCipherSpec,
    ClientHello,
    ClientKeyExchange,
    Finished,
    NewSessionTicket,
    OpaqueHandshake,
    ServerHello,
    ServerHelloDone,
    decode_handshake,
    split_handshake_messages,
)
from handshake_lib.tls.negotiation import client_hello_for
from handshake_lib.tls.record import Record, RecordReader, encode_record, reassemble_handshake_messages
from handshake_lib.wire import Reader, Writer

DATA = Path(__file__).parent / "data" / "tls"
_spec = importlib.util.spec_from_file_location("tls_capture", DATA / "capture.py")
assert _spec is not None and _spec.loader is not None
if "tls_capture" not in sys.modules:  # shared with test_tls_negotiation.py; dataclasses need the module registered
    sys.modules["tls_capture"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["tls_capture"])
capture = sys.modules["tls_capture"]


def load_hex(name: str) -> bytes:
    return bytes.fromhex((DATA / name).read_text())


def records_in(data: bytes, *, protected: bool = False) -> list[Record]:
    """The complete records in ``data``, read by the record layer's own reader (a partial one fails)."""
    reader = RecordReader(protected=protected)
    records = reader.feed(data)
    assert reader.buffered == 0, f"{reader.buffered} bytes of a partial record"
    return records


def handshake_messages(records: bytes) -> list[bytes]:
    """The plaintext handshake messages in a run of records (encrypted Finished records are skipped)."""
    fragments: list[bytes] = []
    for record in records_in(records, protected=True):
        if record.content_type == ContentType.change_cipher_spec:
            break
        if record.content_type == ContentType.handshake:
            fragments.append(record.fragment)
    return [message.raw for message in reassemble_handshake_messages(fragments)]


CAPTURES = sorted(p.name for p in DATA.glob("*.hex"))
CAPTURED_MESSAGES = [m for name in CAPTURES for m in handshake_messages(load_hex(name))]


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return capture.write_throwaway_rsa_cert(tmp_path_factory.mktemp("tls-cert"))


# -- round trips on real bytes -------------------------------------------------------------------
@pytest.mark.parametrize("name", CAPTURES)
def test_captured_records_round_trip(name: str) -> None:
    data = load_hex(name)
    records = records_in(data, protected=True)
    assert b"".join(r.encode() for r in records) == data
    spans = record_spans(records[0].encode(), encrypted=False)
    assert spans[0].field == "record.content_type" and spans[0].offset == 0


def test_every_captured_handshake_message_round_trips() -> None:
    kinds = set()
    for message_bytes in CAPTURED_MESSAGES:
        message, spans = decode_handshake(message_bytes)
        assert message.to_bytes() == message_bytes
        assert spans[0].length == len(message_bytes)
        kinds.add(type(message))
    assert kinds == {ClientHello, ServerHello, Certificate, ServerHelloDone, ClientKeyExchange, NewSessionTicket}


def _client_hello_from(records: bytes) -> ClientHello:
    (message_bytes,) = handshake_messages(records)
    message, _ = decode_handshake(message_bytes)
    assert isinstance(message, ClientHello)
    return message


def test_captured_tls12_client_hello_fields() -> None:
    hello = _client_hello_from(load_hex("openssl_client_hello_tls12.hex"))
    assert hello.legacy_version == ProtocolVersion.TLS1_2
    assert hello.extension(ExtensionType.supported_versions) is None  # TLS 1.2 max: no 1.3 extension
    assert CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256 in hello.cipher_suites
    assert CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites
    sni = hello.extension(ExtensionType.server_name)
    assert isinstance(sni, ServerNameExtension) and sni.host_name == "localhost"
    assert hello.extension(ExtensionType.signature_algorithms) is not None


def test_captured_tls13_client_hello_fields() -> None:
    hello = _client_hello_from(load_hex("openssl_client_hello_tls13.hex"))
    assert hello.legacy_version == ProtocolVersion.TLS1_2  # frozen at 1.2 by RFC 8446 4.1.2
    versions = hello.extension(ExtensionType.supported_versions)
    assert isinstance(versions, SupportedVersionsExtension)
    assert versions.versions[:2] == [ProtocolVersion.TLS1_3, ProtocolVersion.TLS1_2]
    assert len(hello.session_id) == 32  # middlebox compatibility mode
    # key_share is modelled since issue 13 (tls/extensions.py): OpenSSL 3.0 offers one X25519 share.
    key_share = hello.extension(ExtensionType.key_share)
    assert isinstance(key_share, KeyShareClientHelloExtension)
    assert [(share.group, len(share.key_exchange)) for share in key_share.client_shares] == [(NamedGroup.x25519, 32)]


def test_spans_name_fields_and_meanings() -> None:
    message_bytes = handshake_messages(load_hex("openssl_server_flight_aes128gcm.hex"))[0]
    _, spans = decode_handshake(message_bytes)
    by_field = {s.field: s for s in spans}
    suite = by_field["server_hello.body.cipher_suite"]
    assert suite.meaning == "TLS_RSA_WITH_AES_128_GCM_SHA256"
    assert message_bytes[suite.offset : suite.end] == b"\x00\x9c"
    assert by_field["server_hello.msg_type"].meaning == "server_hello"
    extension_groups = [s for s in spans if s.field.endswith("extensions.extension")]
    assert [s.meaning for s in extension_groups] == ["renegotiation_info", "session_ticket", "extended_master_secret"]


# -- live flights from the installed OpenSSL --------------------------------------------------------
@pytest.mark.parametrize("allow_tls13", [False, True])
def test_live_openssl_client_hello_round_trips(allow_tls13: bool) -> None:
    records = capture.client_hello_bytes(capture.client_context(allow_tls13=allow_tls13))
    (record,) = records_in(records)
    assert record.content_type == ContentType.handshake
    hello, _ = decode_handshake(record.fragment)
    assert isinstance(hello, ClientHello)
    assert hello.to_bytes() == record.fragment
    assert (hello.extension(ExtensionType.supported_versions) is not None) == allow_tls13


def test_live_full_handshake_decodes_and_matches_what_ssl_reports(rsa_cert: tuple[Path, Path]) -> None:
    cert_path, key_path = rsa_cert
    run = capture.memory_handshake(capture.server_context(cert_path, key_path), capture.client_context())
    assert run.version == "TLSv1.2"

    server_messages = [decode_handshake(m)[0] for m in handshake_messages(run.server_flight)]
    server_hello, certificate, done = server_messages
    assert isinstance(server_hello, ServerHello) and isinstance(certificate, Certificate)
    assert isinstance(done, ServerHelloDone)
    assert server_hello.cipher_suite == OPENSSL_NAMES[run.cipher]
    assert server_hello.legacy_version == ProtocolVersion.TLS1_2
    # The certificate on the wire is the one we loaded, and it parses.
    pem_der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert certificate.certificates == [pem_der]
    assert certificate.x509()[0].subject.rfc4514_string() == "CN=localhost"

    # The client's ClientKeyExchange really is the pre-master secret under our RSA key: decrypt it.
    (client_key_exchange,) = [decode_handshake(m)[0] for m in handshake_messages(run.client_flight)]
    assert isinstance(client_key_exchange, ClientKeyExchange)
    private_key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    pre_master = private_key.decrypt(client_key_exchange.encrypted_pre_master_secret, padding.PKCS1v15())  # type: ignore[union-attr]
    client_hello = _client_hello_from(run.client_hello)
    assert len(pre_master) == 48 and pre_master[:2] == client_hello.legacy_version.to_bytes(2, "big")

    # ChangeCipherSpec records hold the single byte 1; the encrypted Finished is 8+16+16 bytes of GCM.
    for flight in (run.client_flight, run.server_finish):
        records = records_in(flight, protected=True)
        ccs_index = [r.content_type for r in records].index(ContentType.change_cipher_spec)
        ChangeCipherSpec.decode(Reader(records[ccs_index].fragment))
        assert len(records[ccs_index + 1].fragment) == 8 + 16 + 16  # explicit nonce, Finished, tag


# -- openssl s_client as a second, independent peer ------------------------------------------------
def _hex_blocks(msg_output: str, direction: str, kind: str) -> bytes:
    """The hex dump ``openssl s_client -msg`` prints after a line like ``>>> TLS 1.2, Handshake [...], ClientHello``."""
    lines = msg_output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(direction) and line.rstrip().endswith(kind):
            hex_lines = []
            for following in lines[index + 1 :]:
                if not re.fullmatch(r"\s+([0-9a-f]{2}[ -]+)*[0-9a-f]{2}\s*", following):
                    break
                hex_lines.append(following)
            return bytes.fromhex("".join(hex_lines).replace("-", " "))
    raise AssertionError(f"no {direction} {kind} in s_client output:\n{msg_output}")


@pytest.mark.peer
def test_openssl_s_client_hello_and_server_hello(rsa_cert: tuple[Path, Path]) -> None:
    openssl = require("openssl")
    cert_path, key_path = rsa_cert
    ctx = capture.server_context(cert_path, key_path, "AES128-GCM-SHA256")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    result: dict[str, object] = {}

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(10)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                result["cipher"] = tls.cipher()
                with contextlib.suppress(OSError, ssl.SSLError):
                    tls.recv(1)  # s_client closes after its handshake; wait for that, bounded
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    completed = subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-tls1_2",
            "-cipher",
            "AES128-GCM-SHA256",
            "-msg",
            "-servername",
            "localhost",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
    )
    thread.join(timeout=15)
    output = completed.stdout.decode(errors="replace")
    assert "error" not in result, result
    client_hello_bytes = _hex_blocks(output, ">>>", "ClientHello")
    server_hello_bytes = _hex_blocks(output, "<<<", "ServerHello")

    client_hello, _ = decode_handshake(client_hello_bytes)
    assert isinstance(client_hello, ClientHello)
    assert client_hello.to_bytes() == client_hello_bytes
    assert client_hello.cipher_suites[0] == CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    sni = client_hello.extension(ExtensionType.server_name)
    assert isinstance(sni, ServerNameExtension) and sni.host_name == "localhost"

    server_hello, _ = decode_handshake(server_hello_bytes)
    assert isinstance(server_hello, ServerHello)
    assert server_hello.to_bytes() == server_hello_bytes
    cipher = result["cipher"]
    assert isinstance(cipher, tuple)
    assert server_hello.cipher_suite == OPENSSL_NAMES[cipher[0]]
    assert cipher[1] == "TLSv1.2" and server_hello.legacy_version == ProtocolVersion.TLS1_2


# -- strict checks ---------------------------------------------------------------------------------
def _good_hello() -> ClientHello:
    return client_hello_for("localhost", [CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256], client_random=bytes(32))


def _with_body(message_type: int, body: bytes) -> bytes:
    return Writer().u8(message_type).vector(3, body).getvalue()


def test_unknown_handshake_type_is_unexpected_message() -> None:
    with pytest.raises(UnexpectedMessage):
        decode_handshake(_with_body(99, b""))
    with pytest.raises(UnexpectedMessage):
        ServerHello.decode(Reader(_good_hello().to_bytes()))  # a known type, but not the one expected


def test_known_but_unmodelled_type_is_kept_raw() -> None:
    # (a TLS 1.3 message: this TLS 1.2 decoder keeps it as bytes; ServerKeyExchange is modelled now)
    data = _with_body(HandshakeType.encrypted_extensions, b"\x01\x01\x00\x00")
    message, _ = decode_handshake(data)
    assert isinstance(message, OpaqueHandshake) and message.body == b"\x01\x01\x00\x00"
    assert message.to_bytes() == data


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda h: setattr(h, "cipher_suites", []), DecodeError),
        (lambda h: setattr(h, "compression_methods", b"\x01"), IllegalParameter),
        (lambda h: setattr(h, "compression_methods", b""), DecodeError),
        (lambda h: setattr(h, "session_id", bytes(33)), DecodeError),
        (lambda h: h.extensions.append(ExtendedMasterSecretExtension()), IllegalParameter),
        (lambda h: h.extensions.extend([UnknownExtension(0x7777), UnknownExtension(0x7777)]), IllegalParameter),
        (
            lambda h: h.extensions.append(UnknownExtension(ExtensionType.supported_versions, b"\x03\x03\x04")),
            DecodeError,
        ),
        (
            lambda h: h.extensions.insert(0, ServerNameExtension([ServerName(0, b"a"), ServerName(0, b"b")])),
            DecodeError,
        ),
    ],
)
def test_client_hello_strict_checks(mutate, error) -> None:  # type: ignore[no-untyped-def]
    hello = _good_hello()
    mutate(hello)
    with pytest.raises(error):
        decode_handshake(hello.to_bytes())


def test_client_hello_odd_cipher_suites_and_trailing_bytes() -> None:
    body = _good_hello().to_bytes()[4:]
    with pytest.raises(DecodeError):
        decode_handshake(_with_body(HandshakeType.client_hello, body + b"\x00"))
    odd = bytearray(_with_body(HandshakeType.client_hello, body))
    suites_at = 4 + 2 + 32 + 1  # after version, random, empty session id
    odd[suites_at : suites_at + 2] = b"\x00\x03"
    with pytest.raises(DecodeError):
        decode_handshake(bytes(odd))


def test_client_hello_without_extensions_keeps_none() -> None:
    hello = _good_hello()
    hello.extensions = None
    data = hello.to_bytes()
    decoded, _ = decode_handshake(data)
    assert isinstance(decoded, ClientHello) and decoded.extensions is None and decoded.to_bytes() == data
    hello.extensions = []
    assert hello.to_bytes() == data[:1] + (len(data) - 4 + 2).to_bytes(3, "big") + data[4:] + b"\x00\x00"


def test_finished_length_and_other_small_messages() -> None:
    with pytest.raises(DecodeError):
        decode_handshake(_with_body(HandshakeType.finished, bytes(11)))
    message, _ = decode_handshake(_with_body(HandshakeType.finished, bytes(32)), verify_data_length=None)
    assert isinstance(message, Finished) and len(message.verify_data) == 32
    with pytest.raises(DecodeError):
        decode_handshake(_with_body(HandshakeType.server_hello_done, b"\x00"))
    with pytest.raises(DecodeError):
        ChangeCipherSpec.decode(Reader(b"\x02"))
    alert = Alert.decode(Reader(b"\x02\x28"))
    assert alert.is_fatal and alert.description_name == "handshake_failure" and alert.to_bytes() == b"\x02\x28"


def test_server_context_extension_rules() -> None:
    # In a ServerHello, server_name and session_ticket must be empty and supported_versions is one version.
    for extension_type, data in [(0, b"\x00\x01\x00"), (35, b"\x01")]:
        w = Writer()
        with w.vector_writer(2) as block:
            block.u16(extension_type).vector(2, data)
        with pytest.raises(DecodeError):
            decode_extensions(Reader(w.getvalue()), "server_hello")


# -- our alerts against OpenSSL's, for the same malformed ClientHello --------------------------------
# Where RFC 5246 names no alert, ours follow OpenSSL; these are the cases where the RFCs say otherwise.
KNOWN_DIFFERENCES = {
    # cipher_suites<2..2^16-2>: out of range is decode_error (RFC 8446 6.2); OpenSSL says illegal_parameter.
    "empty cipher suites": (TLSAlert.decode_error, TLSAlert.illegal_parameter),
    # A compression list without null: illegal_parameter (RFC 8446 4.1.2, issue 8); OpenSSL 3 says decode_error.
    "compression without null": (TLSAlert.illegal_parameter, TLSAlert.decode_error),
}
MALFORMED_HELLOS = {
    "duplicate extension": lambda h: h.extensions.append(ExtendedMasterSecretExtension()),
    "compression without null": lambda h: setattr(h, "compression_methods", b"\x01"),
    "33-byte session id": lambda h: setattr(h, "session_id", bytes(33)),
    "two host names": lambda h: h.extensions.insert(0, ServerNameExtension([ServerName(0, b"a"), ServerName(0, b"b")])),
    "empty cipher suites": lambda h: setattr(h, "cipher_suites", []),
    "non-empty extended_master_secret": lambda h: setattr(
        h, "extensions", [e for e in h.extensions if e.extension_type != 23] + [UnknownExtension(23, b"\x00")]
    ),
}


def _openssl_alert(server_ctx: ssl.SSLContext, handshake: bytes) -> int:
    answer = capture.server_answer(server_ctx, encode_record(ContentType.handshake, 0x0301, handshake))
    records = records_in(answer)
    assert records and records[0].content_type == ContentType.alert, records
    return Alert.decode(Reader(records[0].fragment)).description


@pytest.mark.parametrize("case", sorted(MALFORMED_HELLOS))
def test_our_alert_matches_openssl(case: str, rsa_cert: tuple[Path, Path]) -> None:
    hello = _good_hello()
    hello.extensions = [e for e in hello.extensions or () if not isinstance(e, ServerNameExtension)]
    MALFORMED_HELLOS[case](hello)
    data = hello.to_bytes()
    with pytest.raises(ProtocolError) as raised:
        decode_handshake(data)
    theirs = _openssl_alert(capture.server_context(*rsa_cert), data)
    ours = raised.value.tls_alert
    if case in KNOWN_DIFFERENCES:
        assert (ours, theirs) == KNOWN_DIFFERENCES[case]
    else:
        assert ours == theirs, f"{case}: we say {TLSAlert(ours).name}, OpenSSL says {TLSAlert(theirs).name}"


def test_unknown_handshake_type_alert_matches_openssl(rsa_cert: tuple[Path, Path]) -> None:
    data = _with_body(99, _good_hello().to_bytes()[4:])
    with pytest.raises(UnexpectedMessage) as raised:
        decode_handshake(data)
    assert raised.value.tls_alert == _openssl_alert(capture.server_context(*rsa_cert), data)


def test_the_valid_hello_is_accepted_by_openssl(rsa_cert: tuple[Path, Path]) -> None:
    record = encode_record(ContentType.handshake, 0x0301, _good_hello().to_bytes())
    answer = capture.server_answer(capture.server_context(*rsa_cert), record)
    records = RecordReader().feed(answer)  # OpenSSL's whole flight; we only read its first record
    assert records[0].content_type == ContentType.handshake
    assert isinstance(decode_handshake(split_handshake_messages(records[0].fragment)[0])[0], ServerHello)


# -- fuzzing: only ProtocolError subclasses, and whatever decodes re-encodes identically -------------
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_and_check(data: bytes) -> None:
    try:
        message, spans = decode_handshake(data)
    except ProtocolError:
        return
    assert message.to_bytes() == data
    assert all(s.offset >= 0 and s.end <= len(data) for s in spans)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_decode_handshake_random(data: bytes) -> None:
    _decode_and_check(data)


@FUZZ
@given(st.sampled_from(range(256)), st.binary(max_size=200))
def test_fuzz_every_handshake_type(msg_type: int, body: bytes) -> None:
    _decode_and_check(_with_body(msg_type, body))


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    original = bytearray(draw(st.sampled_from(CAPTURED_MESSAGES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if not original:
            break
        position = draw(st.integers(0, len(original) - 1))
        if kind == "flip":
            original[position] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del original[position:]
        elif kind == "insert":
            original[position:position] = draw(st.binary(min_size=1, max_size=4))
        else:
            del original[position : position + draw(st.integers(1, 4))]
    return bytes(original)


@FUZZ
@given(mutated_capture())
def test_fuzz_mutated_real_messages(data: bytes) -> None:
    _decode_and_check(data)


@FUZZ
@given(
    st.sampled_from(["client_hello", "server_hello"]),
    st.sampled_from(sorted(set(CLIENT_HELLO_EXTENSIONS) | set(SERVER_HELLO_EXTENSIONS) | {0x7777})),
    st.binary(max_size=40),
)
def test_fuzz_each_extension(context: str, extension_type: int, data: bytes) -> None:
    block = Writer()
    with block.vector_writer(2) as extensions:
        extensions.u16(extension_type).vector(2, data)
    try:
        decoded = decode_extensions(Reader(block.getvalue()), context)  # type: ignore[arg-type]
    except ProtocolError:
        return
    again = Writer()
    encode_extensions(again, decoded, context)  # type: ignore[arg-type]
    assert again.getvalue() == block.getvalue()


@FUZZ
@given(st.binary(max_size=4))
def test_fuzz_alert_and_change_cipher_spec(data: bytes) -> None:
    for cls in (Alert, ChangeCipherSpec):
        r = Reader(data)
        try:
            message = cls.decode(r)
            r.expect_end()
        except ProtocolError:
            continue
        assert message.to_bytes() == data


def test_a_certificate_with_a_negative_serial_number_is_refused(server_certificate: IssuedCertificate) -> None:
    """RFC 5280 4.1.2.2: serial numbers are positive; cryptography only warns, we refuse now."""
    from handshake_lib.errors import CertificateError
    from handshake_lib.tls.messages import Certificate

    issued = server_certificate
    number = issued.certificate.serial_number
    serial = number.to_bytes((number.bit_length() + 8) // 8, "big")
    field = b"\x02" + bytes([len(serial)]) + serial
    negative = issued.der.replace(field, b"\x02" + bytes([len(serial)]) + b"\x80" + serial[1:], 1)
    assert Certificate([issued.der]).x509()[0].serial_number == number
    with pytest.raises(CertificateError, match="serial number"):
        Certificate([negative]).x509()


def test_a_certificate_with_an_unknown_x509_version_is_a_certificate_error(
    server_certificate: IssuedCertificate,
) -> None:
    """Found by fuzzing: cryptography raises InvalidVersion (not a ValueError) for a version other than v1/v3."""
    from handshake_lib.errors import CertificateError
    from handshake_lib.tls.messages import Certificate

    der = server_certificate.der
    v3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: version v3, near the start of the TBSCertificate
    assert der.index(v3) < 16
    unknown_version = der.replace(v3, b"\xa0\x03\x02\x01\x05", 1)
    with pytest.raises(CertificateError, match="certificate 0 is not valid DER X.509"):
        Certificate([unknown_version]).x509()
