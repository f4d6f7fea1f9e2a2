"""OCSP stapling (RFC 6066 section 8) in our TLS 1.2 client and server, against real peers both ways.

Our client asks with ``status_request`` (``request_ocsp_status=True``) and keeps the CertificateStatus's
DER as it came; our server staples ``ocsp_response`` to a client that asks.  Checked against ``openssl
s_server -status_file`` (it staples that file: we must get its exact bytes) and ``openssl s_client
-status`` (it prints ``OCSP Response Status: successful`` and the certificate status it read from ours),
``curl --cert-status`` (which validates the staple: good passes, revoked and unknown fail), and our two
cores against each other.  Python's ``ssl`` is not a peer here: it can neither ask for nor
read a stapled response (no ``status_request`` in its API), so it has nothing to show.

The responses are built by :func:`handshake_lib.pki.revocation.ocsp_response` for good, revoked and
unknown certificates, and ``openssl ocsp -respin`` double-checks them (the command the scenarios'
manifest names).  What the table refuses (a CertificateStatus nobody asked for, one out of order) is
``unexpected_message``; malformed ones are ``decode_error``, from a raw server that sends those bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import require
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from handshake_lib.errors import CertificateRevoked, DecodeError, TLSAlert, UnexpectedMessage, UnsupportedExtension
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import s_server
from handshake_lib.pki.issue import Authority
from handshake_lib.pki.revocation_data import ocsp_response
from handshake_lib.tls import State, TLSClient, TLSServer
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import ContentType, ExtensionType
from handshake_lib.tls.extensions import StatusRequestExtension, UnknownExtension
from handshake_lib.tls.messages import (
    MAX_STAPLED_OCSP_RESPONSE,
    CertificateStatus,
    ClientHello,
    ServerHello,
    decode_handshake,
)
from handshake_lib.tls.negotiation import client_hello_for
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.states import Guard, Input, diagram_rows, refine, replay, transition_for

CIPHER = "AES128-GCM-SHA256"
TIMEOUT = 5.0
STATUSES = ("good", "revoked", "unknown")


@pytest.fixture(scope="module")
def responses(course_pki, server_certificate) -> dict[str, bytes]:
    """DER OCSP responses about the session's server certificate, signed by the course root that issued it."""
    issuer = Authority(course_pki.root.certificate, course_pki.root.private_key)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    window = {"this_update": now - dt.timedelta(hours=1), "next_update": now + dt.timedelta(days=1)}
    return {status: ocsp_response(server_certificate.certificate, issuer, status, **window) for status in STATUSES}


@pytest.fixture(scope="module")
def response_files(responses, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ocsp")
    files = {}
    for status, der in responses.items():
        files[status] = folder / f"{status}.der"
        files[status].write_bytes(der)
    return files


def messages_of(transcript, kind):
    return [m for entry in transcript for m in entry.messages if isinstance(m, kind)]


def in_memory(course_pki, server_certificate, client_options=None, **server_options):
    client_options = {"cipher_suites": RSA_DEFAULT_SUITES, **(client_options or {})}  # RSA: ECDHE in test_tls_ecdhe
    client = TLSClient("localhost", trusted_certificates=[course_pki.root.certificate], **client_options)
    server = TLSServer([server_certificate.der], server_certificate.private_key, **server_options)
    client.start()
    while client.handshake is None or server.handshake is None:
        outgoing, incoming = client.data_to_send(), b""
        if outgoing:
            server.receive_data(outgoing)
        incoming = server.data_to_send()
        if incoming:
            client.receive_data(incoming)
        assert outgoing or incoming, "the handshake stalled"
    return client, server


# -- the codecs --------------------------------------------------------------------------------------
def test_status_request_round_trips_in_both_hellos() -> None:
    hello = client_hello_for("localhost", [0x009C], status_request=True)
    raw = hello.to_bytes()
    decoded, spans = decode_handshake(raw)
    request = decoded.extension(ExtensionType.status_request)
    assert request == StatusRequestExtension() and request.asks_for_ocsp
    assert decoded.to_bytes() == raw
    # status_type ocsp, an empty responder_id_list, empty request_extensions: 00 05 00 05 01 0000 0000.
    assert bytes.fromhex("0005000501" "0000" "0000") in raw
    assert any(s.field.endswith("status_type") and s.meaning == "ocsp" for s in spans)
    answer = ServerHello(extensions=[StatusRequestExtension()])
    assert bytes.fromhex("00050000") in answer.to_bytes()  # empty extension_data
    assert decode_handshake(answer.to_bytes())[0] == answer


def test_a_client_hello_request_with_responders_and_another_status_type_decodes() -> None:
    with_ids = StatusRequestExtension(1, [b"\x30\x03\x02\x01\x01"], b"\x30\x00")
    hello = ClientHello(cipher_suites=[0x009C], extensions=[with_ids])
    assert decode_handshake(hello.to_bytes())[0] == hello
    other = StatusRequestExtension(7, request=b"\xab\xcd")  # ignored by a server, kept byte for byte
    hello = ClientHello(cipher_suites=[0x009C], extensions=[other])
    decoded = decode_handshake(hello.to_bytes())[0]
    assert decoded == hello and not decoded.extension(ExtensionType.status_request).asks_for_ocsp


@pytest.mark.parametrize(
    "data",
    [b"\x01\x00", b"\x01\x00\x00\x00", b"\x01\x00\x02\x00\x00\x00\x00", b"\x01\x00\x00\x00\x00\xff"],
    ids=["truncated", "no-extensions", "empty-responder-id", "trailing-byte"],
)
def test_malformed_status_requests_are_decode_error(data) -> None:
    hello = ClientHello(cipher_suites=[0x009C], extensions=[UnknownExtension(ExtensionType.status_request, data)])
    with pytest.raises(DecodeError):
        decode_handshake(hello.to_bytes())


def test_certificate_status_round_trips_with_the_response_read_as_der(responses) -> None:
    message = CertificateStatus(responses["revoked"])
    raw = message.to_bytes()
    assert raw[:1] == b"\x16" and raw[4:5] == b"\x01"  # certificate_status(22), status_type ocsp(1)
    decoded, spans = decode_handshake(raw)
    assert decoded == message and decoded.to_bytes() == raw
    (outer,) = [s for s in spans if s.field.endswith("body.ocsp_response")]
    assert "certificate revoked" in outer.meaning and "nextUpdate" in outer.meaning
    der = [s for s in spans if ".OCSPResponse" in s.field]
    assert any(s.meaning == "1.3.6.1.5.5.7.48.1.1" for s in der)  # id-pkix-ocsp-basic, read by pki/der.py
    # Bytes that are not DER still decode: shown as one opaque span, judged by nobody here.
    _, spans = decode_handshake(CertificateStatus(b"not der").to_bytes())
    assert [s.meaning for s in spans if s.field.endswith("ocsp_response.OCSPResponse")] == ["DER, RFC 6960"]


MALFORMED_STATUS = {
    "status-type-2": b"\x02\x00\x00\x01\x30",  # ocsp_multi belongs to RFC 6961, never to TLS 1.2's message
    "empty-response": b"\x01\x00\x00\x00",  # OCSPResponse<1..2^24-1>
    "length-past-end": b"\x01\x00\x00\x09\x30\x00",
    "trailing-bytes": b"\x01\x00\x00\x02\x30\x00\x00",
    "no-length": b"\x01",
    "empty-body": b"",
    "over-the-cap": b"\x01" + (MAX_STAPLED_OCSP_RESPONSE + 1).to_bytes(3, "big") + bytes(MAX_STAPLED_OCSP_RESPONSE + 1),
}


@pytest.mark.parametrize("body", MALFORMED_STATUS.values(), ids=MALFORMED_STATUS.keys())
def test_malformed_certificate_status_bodies_are_decode_error(body) -> None:
    message = bytes([22]) + len(body).to_bytes(3, "big") + body
    with pytest.raises(DecodeError):
        decode_handshake(message)


# -- the tables ---------------------------------------------------------------------------------------
def test_the_server_rows_need_one_or_both_guards_and_the_most_specific_wins() -> None:
    staple, ask = Guard.ocsp_response_to_staple, Guard.client_certificate_requested
    base = ("ServerHello", "Certificate")
    for guards, flight in [
        (set(), (*base, "ServerHelloDone")),
        ({staple}, (*base, "CertificateStatus", "ServerHelloDone")),
        ({ask}, (*base, "CertificateRequest", "ServerHelloDone")),
        ({staple, ask}, (*base, "CertificateStatus", "CertificateRequest", "ServerHelloDone")),
    ]:
        assert transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, guards).send == flight
    # The server learns from the ClientHello itself whether to staple: the row found before reading it is
    # refined afterwards, and a guard only ever adds to a flight.
    found = transition_for("server", State.WAIT_CLIENT_HELLO, Input.client_hello, {ask})
    assert refine("server", found, {ask, staple}).send[2:4] == ("CertificateStatus", "CertificateRequest")
    assert refine("server", found, {ask}) is found
    ticket = transition_for("client", State.WAIT_CHANGE_CIPHER_SPEC, Input.new_session_ticket, {Guard.ticket_expected})
    assert refine("client", ticket, set()) is ticket  # the handler used the guard up: the row stays


def test_the_client_expects_certificate_status_only_after_acknowledging() -> None:
    acknowledged = {Guard.status_request_acknowledged}
    row = transition_for("client", State.WAIT_CERTIFICATE, Input.certificate, acknowledged)
    assert row.target is State.WAIT_CERTIFICATE_STATUS
    assert transition_for("client", row.target, Input.certificate_status).target is State.WAIT_SERVER_HELLO_DONE
    # RFC 6066: acknowledged and then not sent; the rest of the flight goes on as OpenSSL's client lets it.
    rsa = {Guard.rsa_key_exchange}
    assert transition_for("client", row.target, Input.server_hello_done, rsa).send[0] == "ClientKeyExchange"
    assert transition_for("client", row.target, Input.certificate_request, rsa).target is State.CERTIFICATE_REQUESTED
    # With ECDHE/DHE the ServerKeyExchange may not be skipped: CertificateStatus or not, it comes next.
    ephemeral = {Guard.ephemeral_key_exchange}
    assert transition_for("client", row.target, Input.certificate_status, ephemeral).target is (
        State.WAIT_SERVER_KEY_EXCHANGE
    )
    assert transition_for("client", row.target, Input.server_key_exchange, ephemeral).target is (
        State.WAIT_SERVER_HELLO_DONE
    )
    for skipped in (Input.server_hello_done, Input.certificate_request):
        with pytest.raises(UnexpectedMessage):
            transition_for("client", row.target, skipped, ephemeral)
    for state in (State.WAIT_CERTIFICATE, State.WAIT_SERVER_HELLO_DONE, State.CERTIFICATE_REQUESTED):
        with pytest.raises(UnexpectedMessage, match="CertificateStatus is not allowed"):
            transition_for("client", state, Input.certificate_status, set(Guard))
    (arrow,) = [label for source, label, target in diagram_rows("client") if target == "WAIT_CERTIFICATE_STATUS"]
    assert arrow == "Certificate [status_request acknowledged in ServerHello]"


def test_our_client_and_server_staple_in_memory(course_pki, server_certificate, responses) -> None:
    client, server = in_memory(
        course_pki, server_certificate, {"request_ocsp_status": True}, ocsp_response=responses["good"]
    )
    assert client.stapled_ocsp_response == responses["good"] == client.handshake.stapled_ocsp_response
    # Our validator read it: revocation passes on the stapled answer (without one it is "not checked").
    assert client.certificate_report.status()["revocation"] == "pass"
    assert server.handshake.stapled_ocsp_response == responses["good"]
    flight = [type(m).__name__ for e in client.transcript if e.direction == "server->client" for m in e.messages]
    assert flight[:4] == ["ServerHello", "Certificate", "CertificateStatus", "ServerHelloDone"]
    assert server.server_hello.extension(ExtensionType.status_request) == StatusRequestExtension()
    # Replaying both transcripts walks the stapling rows: the client through WAIT_CERTIFICATE_STATUS.
    states = replay("client", client.transcript)
    assert State.WAIT_CERTIFICATE_STATUS in states and states[-1] is State.CONNECTED
    assert replay("server", server.transcript)[-1] is State.CONNECTED


def test_with_a_client_certificate_requested_too_certificate_status_comes_first(
    course_pki, server_certificate, responses
) -> None:
    client, server = in_memory(
        course_pki, server_certificate, {"request_ocsp_status": True},
        ocsp_response=responses["good"], client_ca=[course_pki.root.certificate],
    )  # fmt: skip
    flight = [type(m).__name__ for e in server.transcript if e.direction == "server->client" for m in e.messages]
    assert flight[:5] == ["ServerHello", "Certificate", "CertificateStatus", "CertificateRequest", "ServerHelloDone"]
    assert client.stapled_ocsp_response == responses["good"]


def test_a_client_that_did_not_ask_gets_nothing_stapled(course_pki, server_certificate, responses) -> None:
    client, server = in_memory(course_pki, server_certificate, ocsp_response=responses["good"])
    assert client.client_hello.extension(ExtensionType.status_request) is None  # off by default, as s_client
    assert server.server_hello.extension(ExtensionType.status_request) is None
    assert not messages_of(client.transcript, CertificateStatus)
    assert client.handshake.stapled_ocsp_response is None and server.handshake.stapled_ocsp_response is None


def test_a_server_without_a_response_does_not_acknowledge(course_pki, server_certificate) -> None:
    client, server = in_memory(course_pki, server_certificate, {"request_ocsp_status": True})
    assert server.server_hello.extension(ExtensionType.status_request) is None
    assert client.handshake.stapled_ocsp_response is None


class AcknowledgingServer(TLSServer):
    """Acknowledges status_request and then staples nothing: RFC 6066 allows it (OpenSSL's client accepts it)."""

    def _on_client_hello(self, hello):
        super()._on_client_hello(hello)
        self.server_hello.extensions.append(StatusRequestExtension())


class UnaskedStaplingServer(TLSServer):
    """Sends CertificateStatus after Certificate whether or not the client asked (and says nothing in ServerHello)."""

    def _send_certificate(self):
        super()._send_certificate()
        self._send_handshake(CertificateStatus(b"\x30\x00"))
        self._sent_names.pop()  # our own table would refuse this flight: the test is what the client does


def test_acknowledged_but_not_sent_is_accepted_like_openssl(course_pki, server_certificate) -> None:
    client = TLSClient(
        "localhost", trusted_certificates=[course_pki.root.certificate], request_ocsp_status=True,
        cipher_suites=RSA_DEFAULT_SUITES,
    )  # fmt: skip
    server = AcknowledgingServer([server_certificate.der], server_certificate.private_key)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.WAIT_CHANGE_CIPHER_SPEC  # through WAIT_CERTIFICATE_STATUS's ServerHelloDone row
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.handshake is not None and client.stapled_ocsp_response is None


@pytest.mark.parametrize("asked", [False, True], ids=["not-asked", "asked-not-acknowledged"])
def test_an_unrequested_certificate_status_is_unexpected_message(
    course_pki, server_certificate, responses, asked
) -> None:
    client = TLSClient(
        "localhost", trusted_certificates=[course_pki.root.certificate], request_ocsp_status=asked,
        cipher_suites=RSA_DEFAULT_SUITES,
    )  # fmt: skip
    server = UnaskedStaplingServer([server_certificate.der], server_certificate.private_key)  # no ocsp_response
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(UnexpectedMessage, match="CertificateStatus is not allowed in client state WAIT_SERVER_HELLO"):
        client.receive_data(server.data_to_send())
    assert client.data_to_send()[-2:] == bytes([2, TLSAlert.unexpected_message])


def test_an_unrequested_acknowledgement_is_unsupported_extension(course_pki, server_certificate) -> None:
    client = TLSClient("localhost", trusted_certificates=[course_pki.root.certificate])
    server = AcknowledgingServer([server_certificate.der], server_certificate.private_key)
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(UnsupportedExtension):
        client.receive_data(server.data_to_send())


def test_the_server_refuses_a_response_it_cannot_send(server_certificate) -> None:
    for bad in (b"", bytes(MAX_STAPLED_OCSP_RESPONSE + 1), "der"):
        with pytest.raises(ValueError, match="ocsp_response"):
            TLSServer([server_certificate.der], server_certificate.private_key, ocsp_response=bad)
    TLSServer([server_certificate.der], server_certificate.private_key, ocsp_response=bytes(MAX_STAPLED_OCSP_RESPONSE))


# -- a raw server sends bad CertificateStatus bytes -----------------------------------------------------
@contextmanager
def raw_server(course_pki, server_certificate, status_body: bytes) -> Iterator[int]:
    """A loopback server that runs our core up to Certificate, then sends ``status_body`` as CertificateStatus."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            conn.settimeout(TIMEOUT)
            core = TLSServer([server_certificate.der], server_certificate.private_key, ocsp_response=b"\x30\x00")
            while core.server_hello is None:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                core.receive_data(chunk)
            flight = core.data_to_send()
            # Cut our flight after Certificate and put the raw message in place of CertificateStatus.
            good = CertificateStatus(b"\x30\x00").to_bytes()
            records = flight.split(encode_record(ContentType.handshake, 0x0303, good))
            raw = bytes([22]) + len(status_body).to_bytes(3, "big") + status_body
            pieces = [raw[i : i + (1 << 14)] for i in range(0, len(raw), 1 << 14)]  # a record holds 2^14 at most
            conn.sendall(records[0] + b"".join(encode_record(ContentType.handshake, 0x0303, p) for p in pieces))
            with contextlib.suppress(OSError):
                conn.recv(65536)  # our client's alert

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(TIMEOUT)


@pytest.mark.parametrize(
    "name", ["status-type-2", "empty-response", "length-past-end", "trailing-bytes", "over-the-cap"]
)
def test_malformed_certificate_status_from_a_raw_server_is_decode_error(
    course_pki, server_certificate, name
) -> None:
    body = MALFORMED_STATUS[name]
    with raw_server(course_pki, server_certificate, body) as port, pytest.raises(DecodeError) as failed:
        tls_get(
            f"https://localhost:{port}/", trusted_certificates=[course_pki.root.certificate],
            request_ocsp_status=True, timeout=TIMEOUT,
        )  # fmt: skip
    assert failed.value.tls_alert == TLSAlert.decode_error
    transcript = failed.value.exchange.transcript
    assert transcript[-1].direction == "client->server" and transcript[-1].messages[0].description == 50


# -- real peers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", STATUSES)
def test_our_client_gets_the_exact_bytes_openssl_s_server_staples(server_files, response_files, status) -> None:
    require("openssl")
    options = ("-tls1_2", "-www", "-cipher", CIPHER, "-status_file", str(response_files[status]))
    with s_server(server_files, *options) as peer:
        url = f"https://localhost:{peer.port}/"
        if status == "revoked":
            # Our validator reads the stapled answer: a revoked certificate ends the handshake, and the
            # transcript still holds the exact bytes OpenSSL stapled.
            with pytest.raises(CertificateRevoked) as refused:
                tls_get(url, cafile=server_files.ca_path, timeout=TIMEOUT, request_ocsp_status=True)
            assert refused.value.report.status()["revocation"] == "fail"
            transcript = refused.value.transcript
        else:
            response = tls_get(url, cafile=server_files.ca_path, timeout=TIMEOUT, request_ocsp_status=True)
            assert response.status == 200
            assert response.handshake.stapled_ocsp_response == response_files[status].read_bytes()
            transcript = response.transcript
    (message,) = messages_of(transcript, CertificateStatus)
    assert message.ocsp_response == response_files[status].read_bytes()
    reading = ocsp.load_der_ocsp_response(message.ocsp_response)
    assert reading.certificate_status.name.lower() == status


def test_our_client_without_status_gets_nothing_from_openssl(server_files, response_files) -> None:
    require("openssl")
    options = ("-tls1_2", "-www", "-cipher", CIPHER, "-status_file", str(response_files["good"]))
    with s_server(server_files, *options) as peer:
        response = tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=TIMEOUT)
    assert response.handshake.stapled_ocsp_response is None
    assert not messages_of(response.transcript, CertificateStatus)


@contextmanager
def our_server(server_files, **options) -> Iterator[TLSPageServer]:
    issued = server_files.issued
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, **options) as server:
        yield server


def s_client(server_files, port: int, *options: str) -> str:
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", CIPHER,
        "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost", "-ign_eof",
        *options,
    ]  # fmt: skip
    result = subprocess.run(
        command, input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("status", STATUSES)
def test_openssl_s_client_status_reads_what_our_server_staples(server_files, responses, status) -> None:
    with our_server(server_files, ocsp_response=responses[status]) as server:
        output = s_client(server_files, server.port, "-status")
    assert "OCSP Response Status: successful (0x0)" in output
    assert f"Cert Status: {status}" in output
    assert "HTTP/1.1 200 OK" in output


def test_openssl_s_client_status_hears_no_response_from_a_server_without_one(server_files) -> None:
    with our_server(server_files) as server:
        output = s_client(server_files, server.port, "-status")
    assert "OCSP response: no response sent" in output and "HTTP/1.1 200 OK" in output


def test_openssl_s_client_without_status_gets_no_staple(server_files, responses) -> None:
    with our_server(server_files, ocsp_response=responses["good"], keep_transcripts=True) as server:
        output = s_client(server_files, server.port)
        transcript = server.connections[-1].transcript if server.connections else []
    assert "OCSP response" not in output and "HTTP/1.1 200 OK" in output
    assert not messages_of(transcript, CertificateStatus)


CURL_VERDICTS = {
    "good": (0, ""),
    "revoked": (91, "SSL certificate revocation reason: keyCompromise"),
    "unknown": (91, "SSL server certificate status verification FAILED"),
}


@pytest.mark.parametrize("status", STATUSES)
def test_curl_cert_status_judges_what_our_server_staples(server_files, course_pki, responses, status) -> None:
    """curl --cert-status *validates* the stapled response (signature, CertID, status): a second opinion that
    our server's bytes are a usable staple.  curl finds the responder's issuer in the chain the server sent,
    so the server sends its root too (with the leaf only, curl says "Error computing OCSP ID")."""
    curl = require("curl")
    issued = server_files.issued
    chain = [issued.certificate, course_pki.root.certificate]
    with TLSPageServer(chain, issued.private_key, timeout=TIMEOUT, ocsp_response=responses[status]) as server:
        result = subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "--cert-status", "--tls-max", "1.2", "--ciphers", CIPHER,
             "--cacert", str(server_files.ca_path), f"https://localhost:{server.port}/"],
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
    exit_status, message = CURL_VERDICTS[status]
    assert result.returncode == exit_status, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("status", STATUSES)
def test_our_client_and_server_over_loopback(server_files, responses, status) -> None:
    with our_server(server_files, ocsp_response=responses[status]) as server:
        url = f"https://localhost:{server.port}/"
        if status == "revoked":
            with pytest.raises(CertificateRevoked, match="revocation: the stapled OCSP response says"):
                tls_get(url, cafile=server_files.ca_path, timeout=TIMEOUT, request_ocsp_status=True)
            return
        response = tls_get(url, cafile=server_files.ca_path, timeout=TIMEOUT, request_ocsp_status=True)
    assert response.status == 200 and response.handshake.stapled_ocsp_response == responses[status]


@pytest.mark.parametrize("status", STATUSES)
def test_openssl_ocsp_reads_the_responses_as_we_built_them(server_files, response_files, status, tmp_path) -> None:
    """``openssl ocsp -respin`` (the scenarios' manifest command) agrees on what each response says."""
    openssl = require("openssl")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(server_files.issued.certificate.public_bytes(Encoding.PEM))
    result = subprocess.run(
        [
            openssl, "ocsp", "-respin", str(response_files[status]), "-issuer", str(server_files.ca_path),
            "-cert", str(leaf), "-CAfile", str(server_files.ca_path), "-no_nonce",
        ],
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    output = result.stdout.decode() + result.stderr.decode()
    assert "Response verify OK" in output
    assert f"{leaf}: {status}" in output


# -- the command line ---------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handshake_lib", *args], capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.mark.parametrize("status", ["good", "revoked"])
def test_cli_get_status_prints_what_openssl_stapled(server_files, response_files, status) -> None:
    require("openssl")
    options = ("-tls1_2", "-www", "-cipher", CIPHER, "-status_file", str(response_files[status]))
    with s_server(server_files, *options) as peer:
        url = f"https://localhost:{peer.port}/"
        result = run_cli("tls", "get", url, "--cafile", str(server_files.ca_path), "--status", "--tls", "1.2")
        if status == "revoked":  # refused by our validator; --insecure shows what was stapled anyway
            assert result.returncode == 1 and "we sent alert certificate_revoked" in result.stderr, result.stderr
            result = run_cli("tls", "get", url, "--insecure", "--status", "--tls", "1.2")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("* OCSP")]
    assert "a response was stapled" in line and "OCSP Response Status successful" in line
    assert f"cert status {status}," in line and "thisUpdate" in line and "nextUpdate" in line
    assert ("revoked at" in line) is (status == "revoked")


def test_cli_get_status_says_when_nothing_was_stapled(server_files) -> None:
    require("openssl")
    with s_server(server_files, "-tls1_2", "-www", "-cipher", CIPHER) as peer:
        url = f"https://localhost:{peer.port}/"
        result = run_cli("tls", "get", url, "--cafile", str(server_files.ca_path), "--status", "--tls", "1.2")
    assert result.returncode == 0, result.stderr
    assert "* OCSP: no response stapled" in result.stderr.splitlines()


def test_cli_serve_staples_for_openssl_s_client(server_files, response_files) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0", "--cert", str(server_files.cert_path),
         "--key", str(server_files.key_path), "--ocsp-response", str(response_files["revoked"]), "--tls", "1.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = process.stdout.readline()
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        stapling = process.stdout.readline()
        output = s_client(server_files, port, "-status")
        line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    assert stapling.startswith(f"stapling {response_files['revoked']}") and "cert status revoked" in stapling
    assert "Cert Status: revoked" in output
    assert "OCSP response stapled" in line, line


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda folder: folder / "missing.der", "does not exist"),
        (lambda folder: _write(folder / "cert.der", b"\x30\x03\x02\x01\x01"), "is not a DER OCSP response"),
        (lambda folder: _write(folder / "big.der", bytes(MAX_STAPLED_OCSP_RESPONSE + 1)), "larger than 16380 bytes"),
        (lambda folder: folder, "is a folder"),
    ],
    ids=["missing", "not-ocsp", "too-large", "folder"],
)
def test_cli_serve_refuses_a_bad_ocsp_response_in_one_line(server_files, tmp_path, make, message) -> None:
    path = make(tmp_path)
    result = run_cli("tls", "serve", "--port", "0", "--cert", str(server_files.cert_path), "--key",
                     str(server_files.key_path), "--ocsp-response", str(path), "--tls", "1.2")  # fmt: skip
    assert result.returncode == 2
    # One line that says why: the command's own, or argparse's after its usage (the file's argument type).
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert message in line and line == result.stderr.strip().splitlines()[-1], result.stderr
    assert "Traceback" not in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
