"""OpenSSL in memory (handshake_lib.peers.openssl_memory): its client's ClientHello, its server's choice of
suite compared with the library's rule, and the TLS 1.3 downgrade sentinel in its ServerHello random."""

from __future__ import annotations

import ssl

import pytest

from handshake_lib.errors import HandshakeFailure
from handshake_lib.peers.openssl_memory import (
    downgrade_randoms,
    memory_server_answer,
    openssl_choice,
    openssl_client_hello,
    openssl_suite_name,
)
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, ExtensionType
from handshake_lib.tls.messages import ClientHello, decode_handshake
from handshake_lib.tls.negotiation import choose_cipher_suite

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
        assert openssl.alert == "handshake_failure" and openssl.chosen_name == ""
    else:
        order = supported if prefer == "server" else offered
        assert openssl.chosen_name == next(n for n in order if n in offered and n in supported)


def test_openssl_choice_explains_what_it_cannot_ask():
    assert "at least one suite" in openssl_choice([], ["AES128-SHA"]).problem
    assert "refuses the cipher list" in openssl_choice(["NOT-A-SUITE"], ["AES128-SHA"]).problem
    with pytest.raises(ValueError, match="prefer"):
        openssl_choice(["AES128-SHA"], ["AES128-SHA"], prefer="random")


def test_openssl_client_hello_is_a_real_client_hello():
    records = openssl_client_hello("example.org", ciphers="AES128-SHA:AES256-SHA")
    hello, _ = decode_handshake(records[5:])
    assert isinstance(hello, ClientHello) and records[:3] == b"\x16\x03\x01"
    assert hello.cipher_suites == [0x002F, 0x0035, CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV]
    assert hello.extension(ExtensionType.server_name).host_name == "example.org"
    tls13, _ = decode_handshake(openssl_client_hello(tls13=True)[5:])
    assert tls13.extension(ExtensionType.supported_versions) is not None
    assert hello.extension(ExtensionType.supported_versions) is None


def test_memory_server_answer_reads_the_whole_flight_or_the_alert():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no certificate: OpenSSL cannot choose anything
    answer = memory_server_answer(context, openssl_client_hello())
    assert answer.server_hello is None and answer.alert_name == "handshake_failure"


def test_a_tls13_capable_openssl_marks_its_random_when_it_speaks_tls12():
    (label12, random12), (label13, random13) = downgrade_randoms()
    assert "1.2" in label12 and "1.3" in label13
    assert random13.endswith(b"DOWNGRD\x01")  # RFC 8446 section 4.1.3
    assert not random12.startswith(b"DOWNGRD") and not random12.endswith(b"DOWNGRD\x01")
    assert len(random12) == len(random13) == 32


def test_openssl_suite_names():
    assert openssl_suite_name(0x009C) == "AES128-GCM-SHA256"
    assert openssl_suite_name(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV) == "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    assert openssl_suite_name(None) == ""
