"""Lesson 02 (handshake_lib.lessons.client_hello): building a ClientHello, and the builder widget driven
through its callbacks against a live OpenSSL server."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons.client_hello import (  # noqa: E402
    SERVER_CIPHERS,
    ClientHelloBuilder,
    ask_openssl,
    build_client_hello,
    compare_extensions,
    lesson_server,
    openssl_client_hello,
    record_view,
)
from handshake_lib.tls.constants import CipherSuite, ExtensionType  # noqa: E402
from handshake_lib.tls.messages import ClientHello, decode_handshake  # noqa: E402


@pytest.fixture(scope="module")
def peer():
    with lesson_server() as running:
        yield running


def test_build_client_hello_has_exactly_the_chosen_extensions():
    hello = build_client_hello(suites=["AES128-SHA", 0x009C], extensions=["server_name", "renegotiation_info"])
    decoded, _ = decode_handshake(hello.to_bytes())
    assert decoded.cipher_suites == [0x002F, 0x009C]
    types = [e.extension_type for e in decoded.extensions]
    assert types == [ExtensionType.server_name, ExtensionType.renegotiation_info]
    assert decoded.extension(ExtensionType.server_name).host_name == "localhost"
    assert build_client_hello(client_random=bytes(range(32))).random == bytes(range(32))
    every = build_client_hello(extensions=["session_ticket", "server_name", "ec_point_formats"], server_name="a.b.")
    assert [e.extension_type for e in every.extensions] == [
        ExtensionType.server_name, ExtensionType.ec_point_formats, ExtensionType.session_ticket,
    ]  # always in EXTENSION_CHOICES order
    assert every.extension(ExtensionType.server_name).host_name == "a.b"


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


def test_the_lesson_server_accepts_what_the_lesson_says(peer):
    assert peer.ciphers == SERVER_CIPHERS
    answer = ask_openssl(peer, build_client_hello(suites=["AES128-SHA"]).to_bytes())
    assert answer.server_hello.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA
    refused = ask_openssl(peer, build_client_hello(suites=["ECDHE-RSA-AES256-GCM-SHA384"]).to_bytes())
    assert refused.alert_name == "handshake_failure" and "NO_SHARED_CIPHER" in refused.openssl_error


def test_builder_shows_the_hello_and_explains_a_field(peer):
    builder = ClientHelloBuilder(peer=peer, demo_random=True)
    raw = builder.update(suites=["AES128-SHA"], server_name="example.org")
    assert raw == builder.hello_bytes and raw[0] == 1 and int.from_bytes(raw[1:4], "big") == len(raw) - 4
    assert f"{len(raw)} bytes" in builder.status.value
    assert builder.hexview.data == raw
    assert "32 bytes" in builder.select("random") and "32 bytes" in builder.explanation.value
    chosen = builder.hexview.spans[builder.hexview.selected]
    assert chosen.field.endswith("random") and raw[chosen.offset : chosen.end] == bytes(range(32))
    assert "Server Name Indication" in builder.select("server_name_list")
    assert b"example.org" in raw
    builder.hexview.selected = 0  # picking in the hex view explains that field too
    assert builder.explanation_text.startswith("The whole handshake message")


def test_builder_update_rebuilds_once_for_many_controls(peer, monkeypatch):
    builder = ClientHelloBuilder(peer=peer)
    built = []
    import handshake_lib.lessons.client_hello as lesson

    original = lesson.build_client_hello
    monkeypatch.setattr(lesson, "build_client_hello", lambda **kw: built.append(kw) or original(**kw))
    builder.update(suites=["AES128-SHA"], server_name="example.org", extensions=["server_name"], demo_random=True)
    assert len(built) == 1 and built[0]["extensions"] == ["server_name"]
    builder.suite_box.value = ("AES128-SHA256",)  # one control moved by hand: one rebuild
    assert len(built) == 2 and builder.hello.cipher_suites == [0x003C]


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


def test_builder_without_a_peer_starts_its_own_and_stop_server_keeps_the_widget():
    builder = ClientHelloBuilder()
    assert not builder.server.running  # nothing starts until the learner sends
    assert builder.send().complete and builder.server.running
    builder.stop_server()
    assert not builder.server.running
    assert builder.comm is not None and builder.children  # still a live widget, still on the page
    assert builder.send().complete and builder.server.running  # a later send starts a fresh server
    builder.stop_server()


def test_builder_reports_an_unreachable_server_in_the_widget(peer):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    gone = type(peer)(**{**peer.__dict__, "port": closed_port})
    builder = ClientHelloBuilder(peer=gone)
    assert builder.send() is None and "could not reach the OpenSSL server" in builder.answer_text


def test_openssl_client_hello_in_the_record_view_and_compared():
    records = openssl_client_hello()
    hello, _ = decode_handshake(records[5:])
    assert isinstance(hello, ClientHello)
    view = record_view(records, "OpenSSL's ClientHello")
    fields = {span.field for span in view.spans}
    assert "record.client_hello.body.random" in fields and "record.content_type" in fields
    assert "(" not in view.title_html.value.split("</style>")[1]  # no decode problem noted in the title
    table = compare_extensions(build_client_hello(), hello)
    assert "encrypt_then_mac" in table and "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" in table
    assert table.splitlines()[1].split()[:3] == ["cipher", "suites", "AES128-GCM-SHA256"]


def test_record_view_notes_a_broken_record_instead_of_raising():
    view = record_view(b"\x16\x03\x01\x00\x10\x01\x00")
    assert "need 21 bytes" in view.title_html.value
