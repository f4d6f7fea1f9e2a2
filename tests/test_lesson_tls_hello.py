"""Lessons 02 and 03: the widgets driven through their callbacks, and every answer checked against real
OpenSSL (its server on loopback, its client and server through memory BIOs, and ``openssl asn1parse``)."""

from __future__ import annotations

import re
import socket
import struct
import subprocess

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from conftest import require  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from handshake_lib.errors import HandshakeFailure  # noqa: E402
from handshake_lib.lessons import tls_hello  # noqa: E402
from handshake_lib.lessons.tls_hello import (  # noqa: E402
    DEFAULT_EXTENSIONS,
    EXERCISE_SIGNATURE_SCHEMES,
    NEGOTIATION_SUITES,
    CertificateExplorer,
    ClientHelloBuilder,
    NegotiationExplorer,
    OpenSSLPeer,
    build_client_hello,
    certificate_fields,
    client_hello_differences,
    compare_extensions,
    der_spans,
    fresh_pki,
    openssl_choice,
    openssl_client_hello,
    record_view,
    reference_client_hello,
    run_learner_cipher_choice,
    run_learner_client_hello,
    server_random_demo,
)
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, ExtensionType  # noqa: E402
from handshake_lib.tls.messages import ClientHello, decode_handshake  # noqa: E402
from handshake_lib.tls.negotiation import choose_cipher_suite  # noqa: E402


@pytest.fixture(scope="module")
def peer():
    with OpenSSLPeer() as running:
        yield running


@pytest.fixture(scope="module")
def pki():
    made = fresh_pki()
    yield made
    made.cleanup()


# -- building a ClientHello ---------------------------------------------------------------------------
def test_build_client_hello_has_exactly_the_chosen_extensions():
    hello = build_client_hello(suites=["AES128-SHA", 0x009C], extensions=["server_name", "renegotiation_info"])
    decoded, _ = decode_handshake(hello.to_bytes())
    assert decoded.cipher_suites == [0x002F, 0x009C]
    types = [e.extension_type for e in decoded.extensions]
    assert types == [ExtensionType.server_name, ExtensionType.renegotiation_info]
    assert decoded.extension(ExtensionType.server_name).host_name == "localhost"
    assert build_client_hello(client_random=bytes(range(32))).random == bytes(range(32))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"suites": []}, "at least one cipher suite"),
        ({"suites": ["NOT-A-SUITE"]}, "unknown cipher suite"),
        ({"extensions": ["heartbeat"]}, "unknown extension"),
        ({"server_name": "bücher.example"}, "ASCII"),
        ({"server_name": None}, "no server name"),
        ({"client_random": b"short"}, "32 bytes"),
    ],
)
def test_build_client_hello_refuses_bad_choices_with_a_message(settings, message):
    with pytest.raises(ValueError, match=message):
        build_client_hello(**settings)


# -- the live OpenSSL server -------------------------------------------------------------------------
def test_openssl_answers_a_good_hello_with_its_whole_first_flight(peer):
    hello = build_client_hello(suites=["AES128-SHA256", "AES128-GCM-SHA256"])
    answer = peer.send_client_hello(hello.to_bytes())
    assert answer.complete and answer.alert is None
    assert [m.name for m in answer.messages] == ["server_hello", "certificate", "server_hello_done"]
    # SERVER_CIPHERS lists AES128-GCM-SHA256 before AES128-SHA256 and Python's ssl prefers the server's order.
    assert answer.server_hello.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    leaf = answer.certificates[0]
    assert leaf == peer.pki.certificate_der  # the certificate of the keys this server was started with
    assert {ExtensionType.renegotiation_info, ExtensionType.extended_master_secret} == {
        e.extension_type for e in answer.server_hello.extensions
    }


@pytest.mark.parametrize(
    ("settings", "alert", "reason"),
    [
        ({"extensions": DEFAULT_EXTENSIONS - {"signature_algorithms"}}, "handshake_failure", "SIGNATURE_ALGORITHM"),
        ({"suites": ["ECDHE-RSA-AES256-GCM-SHA384"]}, "handshake_failure", "NO_SHARED_CIPHER"),
        # OpenSSL 3 will not do ECDHE without supported_groups: the only suite left is unusable.
        (
            {"suites": ["ECDHE-RSA-AES128-GCM-SHA256"], "extensions": DEFAULT_EXTENSIONS - {"supported_groups"}},
            "handshake_failure",
            "NO_SHARED_CIPHER",
        ),
        ({"version": 0x0302}, "protocol_version", "UNSUPPORTED_PROTOCOL"),
    ],
    ids=["no-signature_algorithms", "no-common-suite", "ecdhe-without-groups", "tls1.1"],
)
def test_openssl_refuses_with_the_alert_it_chose(peer, settings, alert, reason):
    answer = peer.send_client_hello(build_client_hello(**settings).to_bytes())
    assert not answer.complete
    assert answer.alert_name == alert
    assert reason in answer.openssl_error
    assert f"Alert: fatal {alert}" in answer.summary()


def test_a_hello_shorter_than_its_length_is_a_decode_error_not_a_wait(peer):
    hello = bytearray(build_client_hello().to_bytes())
    hello[3] += 1  # the header promises one byte more than we send
    answer = peer.send_client_hello(bytes(hello), timeout=3)
    assert answer.alert_name == "decode_error"
    assert not answer.problem.startswith("no complete answer")


def test_garbage_gets_decode_error(peer):
    answer = peer.send_client_hello(b"\x01\x00\x00\x05hello")
    assert answer.alert_name == "decode_error"


def test_the_peer_stops_and_its_port_closes():
    peer = OpenSSLPeer().start()
    port, folder = peer.port, peer.pki.directory.name
    peer.close()
    assert not peer.running and peer.pki is None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    import os

    assert not os.path.exists(folder)  # the private key is gone too
    peer.close()  # idempotent


# -- the ClientHello widget --------------------------------------------------------------------------
def test_builder_shows_the_hello_and_explains_a_field(peer):
    builder = ClientHelloBuilder(peer=peer, demo_random=True)
    raw = builder.update(suites=["AES128-SHA"], server_name="example.org")
    assert raw == builder.hello_bytes and raw[0] == 1 and int.from_bytes(raw[1:4], "big") == len(raw) - 4
    assert f"{len(raw)} bytes" in builder.status.value
    assert builder.hexview.data == raw
    assert "client random" in builder.select("random") or "32 bytes" in builder.explanation_text
    chosen = builder.hexview.spans[builder.hexview.selected]
    assert chosen.field.endswith("random") and raw[chosen.offset : chosen.end] == bytes(range(32))
    assert "Server Name Indication" in builder.select("server_name_list")
    assert b"example.org" in raw


def test_builder_controls_drive_update_and_bad_input_is_a_message(peer):
    builder = ClientHelloBuilder(peer=peer)
    builder.server_name_box.value = "bücher.example"
    assert builder.hello_bytes is None and builder.send_button.disabled
    assert "ASCII" in builder.status.value
    assert builder.send() is None and "Nothing to send" in builder.answer_text
    builder.server_name_box.value = "localhost"
    builder.extension_boxes["signature_algorithms"].value = False
    assert builder.hello.extension(ExtensionType.signature_algorithms) is None
    answer = builder.send()
    assert answer.alert_name == "handshake_failure"
    assert "handshake_failure" in builder.answer_text


def test_builder_send_shows_the_server_hello(peer):
    builder = ClientHelloBuilder(peer=peer, suites=["AES128-SHA"])
    answer = builder.send()
    assert answer.server_hello.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in builder.answer_text
    shown = builder.answer_box.children[-1]
    assert shown.data == answer.messages[0].raw  # the hex view holds the ServerHello's bytes


def test_builder_close_stops_its_own_server():
    builder = ClientHelloBuilder()
    assert builder.send().complete
    assert builder.peer.running
    builder.close()
    assert not builder.peer.running


def test_openssl_client_hello_is_decoded_field_by_field():
    records = openssl_client_hello()
    hello, _ = decode_handshake(records[5:])
    assert isinstance(hello, ClientHello)
    assert CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites
    assert hello.extension(ExtensionType.signature_algorithms) is not None
    view = record_view(records, "OpenSSL's ClientHello")
    fields = {span.field for span in view.spans}
    assert "record.client_hello.body.random" in fields and "record.type" in fields
    assert "(" not in view.title_html.value.split("</style>")[1]  # no decode problem noted in the title
    table = compare_extensions(build_client_hello(), hello)
    assert "encrypt_then_mac" in table and "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" in table


def test_record_view_notes_a_broken_record_instead_of_raising():
    view = record_view(b"\x16\x03\x01\x00\x10\x01\x00")
    assert "need" in view.title_html.value


# -- lesson 03: negotiation, compared with OpenSSL -------------------------------------------------
CASES = [
    (["AES128-SHA", "AES128-GCM-SHA256"], ["AES128-GCM-SHA256", "AES128-SHA"]),
    (["AES256-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA"], ["AES128-SHA", "ECDHE-RSA-AES128-GCM-SHA256"]),
    (["ECDHE-RSA-CHACHA20-POLY1305", "AES256-GCM-SHA384"], ["AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]),
    (["AES256-SHA"], ["AES128-SHA"]),
]


@pytest.mark.parametrize("prefer", ["server", "client"])
@pytest.mark.parametrize(("offered", "supported"), CASES)
def test_the_library_rule_picks_what_openssl_picks(offered, supported, prefer):
    openssl = openssl_choice(offered, supported, prefer)
    assert CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in openssl.offered  # OpenSSL's client signals RFC 5746
    try:
        ours = choose_cipher_suite(openssl.offered, [OPENSSL_NAMES[n] for n in supported], prefer=prefer)
    except HandshakeFailure:
        ours = None
    assert ours == openssl.chosen
    if ours is None:
        assert openssl.alert == "handshake_failure"
    else:
        order = supported if prefer == "server" else offered
        assert openssl.chosen_name == next(n for n in order if n in offered and n in supported)


def test_negotiation_widget_shows_both_choices_and_reacts_to_preference():
    explorer = NegotiationExplorer(
        offered=["AES128-SHA", "AES128-GCM-SHA256"], supported=["AES128-GCM-SHA256", "AES128-SHA"]
    )
    result = explorer.update(prefer="server")
    assert result.ours == result.openssl.chosen_name == "AES128-GCM-SHA256" and result.agree
    explorer.prefer_box.value = "client"
    assert explorer.result.ours == explorer.result.openssl.chosen_name == "AES128-SHA"
    assert "server picks:  AES128-SHA" in explorer.output.value
    explorer.update(offered=["AES256-SHA256"])
    assert "handshake_failure" in explorer.result.text and explorer.result.openssl.alert == "handshake_failure"
    explorer.update(offered=[])
    assert "at least one suite" in explorer.result.text


def test_negotiation_widget_shows_a_broken_rule_instead_of_raising():
    explorer = NegotiationExplorer(choose=lambda offered, supported, prefer="server": 1 / 0)
    assert "ZeroDivisionError" in explorer.result.text and "DIFFERENT" in explorer.result.text


def test_a_tls13_capable_openssl_marks_its_random_when_it_speaks_tls12():
    (label12, random12), (label13, random13) = server_random_demo()
    assert "1.2" in label12 and "1.3" in label13
    assert random13.endswith(b"DOWNGRD\x01")  # RFC 8446 section 4.1.3
    assert not random12.startswith(b"DOWNGRD") and not random12.endswith(b"DOWNGRD\x01")
    assert len(random12) == len(random13) == 32


# -- X.509 DER annotation ---------------------------------------------------------------------------
def asn1parse(der: bytes) -> list[tuple[int, int, int]]:
    """(offset, header length, value length) of every element, as ``openssl asn1parse`` reads them."""
    out = subprocess.run(
        [require("openssl"), "asn1parse", "-inform", "DER"], input=der, capture_output=True, check=True, timeout=10
    ).stdout.decode()
    return [
        (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\s*(\d+):d=\s*\d+\s+hl=\s*(\d+)\s+l=\s*(\d+)", out, re.MULTILINE)
    ]


def tlv_groups(spans) -> list[tuple[int, int, int]]:
    """(offset, header length, value length) of every TLV our annotator found."""
    found = []
    for index, span in enumerate(spans):
        if span.is_group and index + 2 < len(spans) and spans[index + 1].name == "tag":
            header = 1 + spans[index + 2].length
            found.append((span.offset, header, span.length - header))
    return found


def test_der_annotation_matches_openssl_asn1parse(pki):
    der = pki.certificate_der
    spans, error = der_spans(der)
    assert error is None
    assert tlv_groups(spans) == asn1parse(der)


def test_der_annotation_of_an_rsa_ca_certificate_matches_openssl_too():
    from cryptography.hazmat.primitives.serialization import Encoding

    from handshake_lib.pki import CoursePKI

    root = CoursePKI.create(key_type="rsa2048").root.certificate.public_bytes(Encoding.DER)
    spans, error = der_spans(root)
    assert error is None and tlv_groups(spans) == asn1parse(root)


def test_der_annotation_names_the_rfc5280_fields(pki):
    spans, _ = der_spans(pki.certificate_der)
    by_field = {span.field: span for span in spans}
    tbs = "certificate.value.tbsCertificate.value"
    for name in ("version", "serialNumber", "signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"):
        assert f"{tbs}.{name}" in by_field, name
    assert "X.509 v3" in by_field[f"{tbs}.version.value.versionNumber.value"].meaning
    not_after = by_field[f"{tbs}.validity.value.notAfter.value"].meaning
    expiry = pki.issued.certificate.not_valid_after_utc
    assert expiry.strftime("%y%m%d%H%M%S") in not_after
    assert "subjectAltName" in " ".join(s.meaning for s in spans)


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"\x30\x80\x00\x00", "indefinite length"),
        (b"\x30\x81\x05\x02\x01\x01\x05\x00", "shortest form"),
        (b"\x30\x10\x02\x01", "need"),
        (b"\x1f\x01\x00", "high tag numbers"),
        (b"\x30" * 40 * 2, "nested more than"),
        (b"\x30\x03\x02\x01\x01\xff", "unexpected bytes"),
    ],
)
def test_der_annotation_stops_with_a_decode_error(der, message):
    if message == "nested more than":
        der = b"".join(b"\x30" + bytes([2 * (40 - i - 1)]) for i in range(40))
    spans, error = der_spans(der)
    assert error is not None and message in str(error)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_der_annotation_never_raises(data):
    spans, error = der_spans(data)
    assert all(s.offset >= 0 and s.end <= len(data) for s in spans)


def test_certificate_explorer_selects_fields_and_lists_what_cryptography_reads(pki):
    explorer = CertificateExplorer(pki.certificate_der)
    rows = dict(explorer.fields)
    assert rows["subject"] == "CN=localhost,O=Handshakes course"
    assert "localhost" in rows["extension subjectAltName"] and "127.0.0.1" in rows["extension subjectAltName"]
    assert rows["public key"].startswith("RSA, 2048-bit")
    span = explorer.select("validity")
    assert span.field.endswith("tbsCertificate.value.validity")
    assert explorer.hexview.spans[explorer.hexview.selected] == span
    assert explorer.select("no-such-field") is None
    serial = subprocess.run(
        [require("openssl"), "x509", "-inform", "DER", "-noout", "-serial"],
        input=pki.certificate_der, capture_output=True, check=True, timeout=10,
    ).stdout.decode()
    assert int(serial.strip().split("=")[1], 16) == int(rows["serial number"], 16)


def test_certificate_explorer_survives_bytes_that_are_not_a_certificate():
    explorer = CertificateExplorer(b"\x30\x03\x02\x01")
    assert explorer.fields == [] and explorer.error is not None
    assert "stopped" in explorer.hexview.title_html.value
    with pytest.raises(ValueError):
        certificate_fields(b"\x30\x03\x02\x01")  # what the explorer caught and turned into a message


# -- exercise 02 --------------------------------------------------------------------------------------
def test_reference_client_hello_matches_bytes_written_by_hand():
    random = bytes(range(32))
    host = b"localhost"
    server_name = struct.pack("!HHHBH", 0, 2 + 1 + 2 + len(host), 1 + 2 + len(host), 0, len(host)) + host
    schemes = b"".join(struct.pack("!H", s) for s in EXERCISE_SIGNATURE_SCHEMES)
    signature_algorithms = struct.pack("!HHH", 13, 2 + len(schemes), len(schemes)) + schemes
    extensions = server_name + signature_algorithms
    body = (
        b"\x03\x03" + random + b"\x00" + struct.pack("!HHH", 4, 0x009C, 0x002F) + b"\x01\x00"
        + struct.pack("!H", len(extensions)) + extensions
    )
    by_hand = b"\x01" + len(body).to_bytes(3, "big") + body
    assert reference_client_hello(random, [0x009C, 0x002F], "localhost") == by_hand


def test_client_hello_differences_name_the_field():
    expected = reference_client_hello(bytes(32), [0x009C], "localhost")
    assert client_hello_differences(expected, expected) == []
    wrong_length = bytearray(expected)
    wrong_length[3] += 1
    assert any("handshake length" in p for p in client_hello_differences(bytes(wrong_length), expected))
    other = reference_client_hello(bytes(32), [0x002F], "localhost")
    assert client_hello_differences(other, expected) == ["cipher_suites: expected ['0x009c'], found ['0x002f']"]
    bare = ClientHello(random=bytes(32), cipher_suites=[0x009C], extensions=[]).to_bytes()
    assert "extensions: expected ['server_name', 'signature_algorithms']" in client_hello_differences(bare, expected)[0]
    assert client_hello_differences("nope", expected) == ["expected bytes, found str"]


def test_exercise_02_live_step_with_a_correct_encoder_fetches_the_page():
    run = run_learner_client_hello(reference_client_hello)
    assert run.answer.complete and run.page_arrived and b"Hello from OpenSSL" in run.body
    assert run.cipher_suite == "TLS_RSA_WITH_AES_128_GCM_SHA256"


def test_exercise_02_live_step_with_wrong_encoders_fails_as_openssl_says():
    def without_extensions(client_random, suites, server_name):
        return ClientHello(random=client_random, cipher_suites=list(suites), extensions=[]).to_bytes()

    def one_byte_short(client_random, suites, server_name):
        return reference_client_hello(client_random, suites, server_name)[:-1]

    run = run_learner_client_hello(without_extensions)
    assert run.answer.alert_name == "handshake_failure" and not run.page_arrived
    run = run_learner_client_hello(one_byte_short)
    assert run.answer.alert_name == "decode_error" and "did not accept" in run.error
    run = run_learner_client_hello(lambda **stage_arguments: None)
    assert "returned NoneType" in run.error


def test_the_lessons_build_client_hello_is_the_clients_stage_in_a_real_handshake(peer):
    """Lesson 02's builder plugs into TLSClient as is, and OpenSSL completes the handshake it starts."""
    from handshake_lib.tls import Stages, tls_get

    response = tls_get(
        f"https://localhost:{peer.port}/", cafile=peer.pki.ca_path, stages=Stages(build_client_hello=build_client_hello)
    )
    assert response.status == 200 and b"Hello from OpenSSL" in response.body
    # What went on the wire is exactly the lesson's hello: its extensions, in its order, nothing added.
    sent = response.transcript[0].messages[0]
    expected = build_client_hello(suites=sent.cipher_suites, client_random=sent.random)
    assert sent.to_bytes() == expected.to_bytes()
    assert response.handshake.extended_master_secret  # the lesson's hello offers it; OpenSSL agreed


def test_an_encoder_returning_bytes_is_a_build_client_hello_stage_too(peer):
    from handshake_lib.errors import InternalError
    from handshake_lib.tls import Stages, tls_get

    url, ca = f"https://localhost:{peer.port}/", peer.pki.ca_path
    response = tls_get(url, cafile=ca, stages=Stages(build_client_hello=reference_client_hello))
    assert response.status == 200
    assert response.transcript[0].record[5:] == reference_client_hello(
        response.handshake.client_random, response.transcript[0].messages[0].cipher_suites, "localhost"
    )
    server_hello_done = b"\x0e\x00\x00\x00"  # a well-formed handshake message, but not a ClientHello
    with pytest.raises(InternalError, match="build_client_hello failed: .*ServerHelloDone, not a ClientHello"):
        tls_get(url, cafile=ca, stages=Stages(build_client_hello=lambda **stage_arguments: server_hello_done))


# -- exercise 03 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prefer", "expected"), [("server", "AES256-GCM-SHA384"), ("client", "AES128-SHA")])
def test_exercise_03_live_step_the_openssl_client_gets_the_rules_choice(pki, prefer, expected):
    run = run_learner_cipher_choice(choose_cipher_suite, ["AES128-SHA", "AES256-GCM-SHA384"], prefer=prefer, pki=pki)
    assert run.openssl_cipher == expected and b"Hello from the Handshakes TLS server" in run.page
    assert not run.server_error and not run.client_error


def test_exercise_03_live_step_a_wrong_rule_ends_in_openssls_handshake_failure(pki):
    run = run_learner_cipher_choice(lambda offered, supported, prefer="server": supported[0], ["AES128-SHA"], pki=pki)
    assert run.openssl_cipher == "" and "HANDSHAKE_FAILURE" in run.client_error
    assert "chooser picked" in run.server_error


def test_negotiation_suites_are_all_known_to_openssl_and_to_the_library():
    assert all(name in OPENSSL_NAMES for name in NEGOTIATION_SUITES)


def test_benchmarks_build_and_run_once():
    try:
        for setup in tls_hello.BENCHMARKS.values():
            setup()()
    finally:
        tls_hello._bench_peer().close()
