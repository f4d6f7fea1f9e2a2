"""Mutual TLS (client certificates, TLS 1.2) against real peers, both ways.

Our client against ``openssl s_server -Verify 1`` / ``-verify 1`` and Python ``ssl`` with
``CERT_REQUIRED`` / ``CERT_OPTIONAL``; our server, required and optional, against ``openssl s_client
-cert -key``, Python ``ssl`` with ``load_cert_chain`` and ``curl --cert --key``; RSA and ECDSA P-256
client keys, PKCS#1 v1.5 and PSS forced from the OpenSSL side.  Success is read from the peer (the
subject it saw, or its exit status) *and* from the transcript (the scheme in our CertificateVerify, or
the client's).  Refusals are read on the wire: the alert the peer reports, beside the one OpenSSL
sends in the same case.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from handshake_lib.errors import (
    CertificateExpired,
    DecryptError,
    HandshakeFailure,
    PeerAlert,
    TLSAlert,
    UnknownCA,
    UnsupportedCertificate,
)
from handshake_lib.net.tls import ServedConnection, TLSPageServer, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, s_server, server_context
from handshake_lib.pki import CoursePKI, IssuedCertificate
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls import TLSClient, TLSServer
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import SignatureScheme
from handshake_lib.tls.messages import Certificate, CertificateRequest, CertificateVerify, decode_handshake
from handshake_lib.tls.signatures import sign

CIPHER = "AES128-GCM-SHA256"  # an RSA key exchange suite both sides run
TIMEOUT = 5.0


@dataclass(frozen=True)
class ClientFiles:
    cert: Path
    key: Path
    issued: IssuedCertificate

    @property
    def subject(self) -> str:
        return self.issued.certificate.subject.rfc4514_string()


@pytest.fixture(scope="session")
def clients(course_pki: CoursePKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientFiles]:
    """Client certificates, keys generated once per run: good RSA and ECDSA ones, and three a server refuses."""
    directory = tmp_path_factory.mktemp("clients")
    now = dt.datetime.now(dt.UTC)
    issued = {
        "rsa": course_pki.issue_client("alice-rsa", key_type="rsa2048"),
        "ecdsa": course_pki.issue_client("bob-ecdsa"),
        "untrusted": CoursePKI.create().issue_client("mallory"),
        "expired": course_pki.issue_client(
            "old-carol", not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1)
        ),
        "server-only": course_pki.issue_client("dave", extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,)),
    }
    files = {}
    for name, certificate in issued.items():
        cert, key = CoursePKI.write_issued(certificate, directory, name)
        files[name] = ClientFiles(cert, key, certificate)
    return files


def client_options(client: ClientFiles) -> dict[str, object]:
    return {
        "client_certificate_chain": [client.issued.certificate, *client.issued.chain],
        "client_private_key": client.issued.private_key,
    }


def sent_messages(transcript, kind):
    return [m for entry in transcript for m in entry.messages if isinstance(m, kind)]


# -- the issued certificates -----------------------------------------------------------------------
def test_issue_client_makes_a_client_auth_certificate(clients) -> None:
    certificate = clients["ecdsa"].issued.certificate
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_encipherment
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


# -- the two messages ------------------------------------------------------------------------------
def test_certificate_request_and_verify_round_trip_with_named_spans(course_pki) -> None:
    request = CertificateRequest(
        [1, 64], [SignatureScheme.rsa_pss_rsae_sha256, SignatureScheme.ecdsa_secp256r1_sha256],
        [course_pki.root.certificate.subject.public_bytes()],
    )  # fmt: skip
    raw = request.to_bytes()
    decoded, spans = decode_handshake(raw)
    assert decoded == request and decoded.to_bytes() == raw
    meanings = {span.field.rsplit(".", 1)[-1]: span.meaning for span in spans}
    assert meanings["certificate_types"] == "rsa_sign, ecdsa_sign"
    assert meanings["signature_scheme"] == "ecdsa_secp256r1_sha256"
    assert "Handshakes Course Root CA" in meanings["DistinguishedName"]
    verify = CertificateVerify(SignatureScheme.rsa_pkcs1_sha256, b"\x01" * 256)
    decoded, spans = decode_handshake(verify.to_bytes())
    assert decoded == verify
    assert any("rsa_pkcs1_sha256" in span.meaning for span in spans if span.field.endswith("algorithm"))


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x00\x02\x04\x01\x00\x00",  # no certificate type (<1..2^8-1>)
        b"\x01\x01\x00\x00\x00\x00",  # no signature algorithm (<2..2^16-2>)
        b"\x01\x01\x00\x03\x04\x01\x00\x00\x00",  # an odd-length algorithm list
        b"\x01\x01\x00\x02\x04\x01\x00\x02\x00\x00",  # an empty DistinguishedName (<1..2^16-1>)
    ],
    ids=["no-certificate-type", "no-signature-algorithm", "odd-algorithm-list", "empty-name"],
)
def test_malformed_certificate_request_is_decode_error(body) -> None:
    from handshake_lib.errors import DecodeError

    with pytest.raises(DecodeError):
        decode_handshake(bytes([13]) + len(body).to_bytes(3, "big") + body)


# -- in memory: guards and refusals, each from our own server --------------------------------------
def handshake_in_memory(client: TLSClient, server: TLSServer) -> None:
    client.start()
    while client.handshake is None or server.handshake is None:
        outgoing = client.data_to_send()
        if outgoing:
            server.receive_data(outgoing)
        incoming = server.data_to_send()
        if incoming:
            client.receive_data(incoming)
        if not outgoing and not incoming:
            raise AssertionError("the handshake stalled")


def memory_pair(course_pki, server_certificate, *, client=None, **server_options):
    options = client_options(client) if client is not None else {}
    options.setdefault("cipher_suites", RSA_DEFAULT_SUITES)  # the RSA rows; tests/test_tls_ecdhe.py: with ECDHE
    ours = TLSClient("localhost", trusted_certificates=[course_pki.root.certificate], **options)
    server = TLSServer(
        [server_certificate.der], server_certificate.private_key, client_ca=[course_pki.root.certificate],
        **server_options,
    )  # fmt: skip
    return ours, server


@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_in_memory_client_certificate_lands_in_handshake_complete(
    course_pki, server_certificate, clients, required
) -> None:
    client, server = memory_pair(
        course_pki, server_certificate, client=clients["ecdsa"], require_client_certificate=required
    )
    handshake_in_memory(client, server)
    assert server.handshake.client_subject == clients["ecdsa"].subject
    assert server.handshake.client_certificates[-1] == course_pki.root.certificate  # the path, to the root
    (verify,) = sent_messages(server.transcript, CertificateVerify)
    assert verify.algorithm == SignatureScheme.ecdsa_secp256r1_sha256


def test_optional_mode_accepts_an_empty_certificate(course_pki, server_certificate) -> None:
    client, server = memory_pair(course_pki, server_certificate)
    handshake_in_memory(client, server)
    assert server.handshake.client_subject is None
    (certificate,) = sent_messages(client.transcript, Certificate)[1:]  # the server's, then ours
    assert certificate.certificates == [] and not sent_messages(client.transcript, CertificateVerify)


class FlippingClient(TLSClient):
    """Signs CertificateVerify correctly, then flips one byte of the signature."""

    def _send_certificate_verify(self) -> None:
        scheme = self.client_signature_scheme
        signature = bytearray(sign(self._client_private_key, scheme, bytes(self._handshake_messages)))
        signature[len(signature) // 2] ^= 0x01
        self._send_handshake(CertificateVerify(scheme, bytes(signature)))


def test_a_flipped_certificate_verify_byte_is_decrypt_error(course_pki, server_certificate, clients) -> None:
    options = client_options(clients["rsa"])
    client = FlippingClient("localhost", trusted_certificates=[course_pki.root.certificate], **options)
    server = TLSServer(
        [server_certificate.der], server_certificate.private_key, client_ca=[course_pki.root.certificate]
    )
    with pytest.raises(DecryptError, match="does not verify"):
        handshake_in_memory(client, server)
    with pytest.raises(PeerAlert) as alert:
        client.receive_data(server.data_to_send())
    assert alert.value.description == TLSAlert.decrypt_error


def test_certificate_verify_without_a_certificate_is_unexpected(course_pki, server_certificate, clients) -> None:
    """A client that sends an empty Certificate and then a CertificateVerify breaks the server's table."""
    from handshake_lib.errors import UnexpectedMessage

    class Sneaky(TLSClient):
        def _send_certificate(self) -> None:
            self._send_handshake(Certificate([]))

    client = Sneaky("localhost", trusted_certificates=[course_pki.root.certificate], **client_options(clients["rsa"]))
    server = TLSServer(
        [server_certificate.der], server_certificate.private_key, client_ca=[course_pki.root.certificate]
    )
    with pytest.raises(UnexpectedMessage, match="CertificateVerify is not allowed in server state"):
        handshake_in_memory(client, server)


def test_options_are_checked_at_construction(course_pki, server_certificate, clients) -> None:
    with pytest.raises(ValueError, match="does not match"):
        TLSClient(
            "localhost", client_certificate_chain=[clients["rsa"].issued.certificate],
            client_private_key=clients["ecdsa"].issued.private_key,
        )  # fmt: skip
    with pytest.raises(ValueError, match="go together"):
        TLSClient("localhost", client_certificate_chain=[clients["rsa"].issued.certificate])
    with pytest.raises(ValueError, match="needs client_ca"):
        TLSServer([server_certificate.der], server_certificate.private_key, require_client_certificate=True)
    with pytest.raises(ValueError, match="holds no certificate"):  # never the system's roots by accident
        TLSServer([server_certificate.der], server_certificate.private_key, client_ca=[])


# -- our client against real servers -----------------------------------------------------------------
@contextmanager
def python_server(server_files: ServerFiles, verify_mode: ssl.VerifyMode) -> Iterator[PythonSSLServer]:
    context = server_context(server_files.cert_path, server_files.key_path, ciphers=CIPHER)
    context.verify_mode = verify_mode
    context.load_verify_locations(server_files.ca_path)
    seen: list[object] = []

    def handler(tls: ssl.SSLSocket) -> None:
        seen.append(tls.getpeercert())  # what OpenSSL verified, or None
        tls.recv(4096)
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with PythonSSLServer(context, handler) as server:
        server.peer_certificates = seen  # type: ignore[attr-defined]
        yield server


def subject_of(peercert: dict) -> str:
    return ",".join(f"{key}={value}" for rdn in peercert["subject"] for key, value in rdn)


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
@pytest.mark.parametrize("mode", [ssl.CERT_REQUIRED, ssl.CERT_OPTIONAL], ids=["CERT_REQUIRED", "CERT_OPTIONAL"])
def test_our_client_against_python_ssl(server_files, clients, key_type, mode) -> None:
    client = clients[key_type]
    with python_server(server_files, mode) as server:
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=server_files.ca_path, timeout=TIMEOUT, **client_options(client)
        )
    assert response.status == 200
    (peercert,) = server.peer_certificates
    common_name = client.issued.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert subject_of(peercert) == f"organizationName=Handshakes course,commonName={common_name}"
    (verify,) = sent_messages(response.transcript, CertificateVerify)
    expected = SignatureScheme.rsa_pss_rsae_sha256 if key_type == "rsa" else SignatureScheme.ecdsa_secp256r1_sha256
    assert verify.algorithm == expected


def test_our_client_without_certificate_against_python_optional_and_required(server_files) -> None:
    with python_server(server_files, ssl.CERT_OPTIONAL) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, timeout=TIMEOUT)
    assert response.status == 200 and server.peer_certificates == [None]
    with python_server(server_files, ssl.CERT_REQUIRED) as server, pytest.raises(PeerAlert) as alert:
        tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, timeout=TIMEOUT)
    assert alert.value.description == TLSAlert.handshake_failure


# OpenSSL's names for the schemes we force on its side.
SIGALGS = {
    SignatureScheme.rsa_pkcs1_sha256: "RSA+SHA256",
    SignatureScheme.rsa_pkcs1_sha384: "RSA+SHA384",
    SignatureScheme.rsa_pss_rsae_sha256: "rsa_pss_rsae_sha256",
    SignatureScheme.ecdsa_secp256r1_sha256: "ECDSA+SHA256",
}
SERVER_CASES = [
    ("rsa", SignatureScheme.rsa_pkcs1_sha256),
    ("rsa", SignatureScheme.rsa_pkcs1_sha384),
    ("rsa", SignatureScheme.rsa_pss_rsae_sha256),
    ("ecdsa", SignatureScheme.ecdsa_secp256r1_sha256),
]


@pytest.mark.parametrize("key_type, scheme", SERVER_CASES, ids=lambda v: getattr(v, "name", v))
@pytest.mark.parametrize("verify", ["-Verify", "-verify"], ids=["required", "optional"])
def test_our_client_against_openssl_s_server(server_files, clients, key_type, scheme, verify) -> None:
    require("openssl")
    client = clients[key_type]
    # -client_sigalgs: the schemes s_server lists in its CertificateRequest (only one, to force it).
    options = ("-tls1_2", "-www", verify, "1", "-CAfile", str(server_files.ca_path), "-client_sigalgs", SIGALGS[scheme])
    with s_server(server_files, *options) as peer:
        response = tls_get(
            f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=TIMEOUT, **client_options(client)
        )
    assert response.status == 200
    (request,) = sent_messages(response.transcript, CertificateRequest)
    assert request.supported_signature_algorithms == [scheme]
    (verify_message,) = sent_messages(response.transcript, CertificateVerify)
    assert verify_message.algorithm == scheme
    assert response.handshake.client_subject == client.subject


# -- refusals, on the wire: our server beside OpenSSL's ------------------------------------------------
REFUSALS = [
    ("untrusted", TLSAlert.unknown_ca, UnknownCA),
    ("expired", TLSAlert.certificate_expired, CertificateExpired),
    ("server-only", TLSAlert.unsupported_certificate, UnsupportedCertificate),
    (None, TLSAlert.handshake_failure, HandshakeFailure),  # no certificate, one required
]


@contextmanager
def our_server(server_files: ServerFiles, **options) -> Iterator[TLSPageServer]:
    issued = server_files.issued
    with TLSPageServer(
        [issued.certificate], issued.private_key, client_ca=server_files.ca_path, keep_transcripts=True,
        timeout=TIMEOUT, **options,
    ) as server:  # fmt: skip
        yield server


def last_record(server: TLSPageServer) -> ServedConnection:
    deadline = time.monotonic() + TIMEOUT
    while not (server.connections and server.connections[-1].finished):
        assert time.monotonic() < deadline, "the server never finished the connection"
        time.sleep(0.005)
    return server.connections[-1]


@pytest.mark.parametrize("name, alert, error", REFUSALS, ids=lambda v: v if isinstance(v, str) else None)
def test_refusals_match_openssl_s_server(server_files, clients, name, alert, error) -> None:
    """Our client presents the certificate to both servers; both answer with the same alert."""
    require("openssl")
    options = client_options(clients[name]) if name else {}
    openssl_options = ("-tls1_2", "-www", "-Verify", "1", "-verify_return_error", "-CAfile", str(server_files.ca_path))
    with s_server(server_files, *openssl_options) as peer, pytest.raises(PeerAlert) as openssl_said:
        tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=TIMEOUT, **options)
    with our_server(server_files, require_client_certificate=True) as server:
        with pytest.raises(PeerAlert) as we_said:
            tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, timeout=TIMEOUT, **options)
        record = last_record(server)
    assert openssl_said.value.description == alert
    assert we_said.value.description == alert
    assert isinstance(record.error, error)


def test_flipped_certificate_verify_is_decrypt_error_like_openssl(server_files, clients) -> None:
    require("openssl")
    options = client_options(clients["rsa"])
    openssl_options = ("-tls1_2", "-www", "-Verify", "1", "-verify_return_error", "-CAfile", str(server_files.ca_path))
    outcomes = []
    with s_server(server_files, *openssl_options) as peer:
        outcomes.append(flipped_against(peer.port, server_files, options))
    with our_server(server_files) as server:
        outcomes.append(flipped_against(server.port, server_files, options))
        assert isinstance(last_record(server).error, DecryptError)
    assert outcomes == [TLSAlert.decrypt_error, TLSAlert.decrypt_error]


def flipped_against(port: int, server_files: ServerFiles, options) -> int:
    client = FlippingClient("localhost", cafile=server_files.ca_path, **options)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        client.start()
        sock.sendall(client.data_to_send())
        try:
            while True:
                data = sock.recv(65536)
                client.receive_data(data)
                sock.sendall(client.data_to_send())
                assert data, "the server closed without an alert"
        except PeerAlert as alert:
            return alert.description


def python_client(server_files: ServerFiles, port: int, client: ClientFiles | None) -> bytes:
    context = ssl.create_default_context(cafile=str(server_files.ca_path))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHER)
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
        return response


@pytest.mark.parametrize("name, alert, error", REFUSALS, ids=lambda v: v if isinstance(v, str) else None)
def test_python_ssl_client_hears_our_refusal(server_files, clients, name, alert, error) -> None:
    with our_server(server_files, require_client_certificate=True) as server:
        with pytest.raises(ssl.SSLError) as refused:
            python_client(server_files, server.port, clients[name] if name else None)
        record = last_record(server)
    assert isinstance(record.error, error)
    # OpenSSL names the alert it received in its reason: TLSV1_ALERT_UNKNOWN_CA, SSLV3_ALERT_..._EXPIRED...
    assert alert.name.upper() in refused.value.reason


# -- real clients against our server ------------------------------------------------------------------
@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_python_ssl_client_with_load_cert_chain(server_files, clients, key_type, required) -> None:
    client = clients[key_type]
    with our_server(server_files, require_client_certificate=required) as server:
        response = python_client(server_files, server.port, client)
        record = last_record(server)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert record.client_subject == client.subject
    (verify,) = sent_messages(record.transcript, CertificateVerify)
    # OpenSSL 3 prefers PSS for an RSA key, as we do.
    expected = SignatureScheme.rsa_pss_rsae_sha256 if key_type == "rsa" else SignatureScheme.ecdsa_secp256r1_sha256
    assert verify.algorithm == expected


def test_python_ssl_client_without_certificate_in_optional_mode(server_files) -> None:
    with our_server(server_files) as server:
        response = python_client(server_files, server.port, None)
        record = last_record(server)
    assert response.startswith(b"HTTP/1.1 200 OK") and record.handshake.client_subject is None


@pytest.mark.parametrize("key_type, scheme", SERVER_CASES, ids=lambda v: getattr(v, "name", v))
@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_openssl_s_client_with_cert_and_key(server_files, clients, key_type, scheme, required) -> None:
    openssl = require("openssl")
    client = clients[key_type]
    with our_server(server_files, require_client_certificate=required) as server:
        command = [
            openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_2", "-cipher", CIPHER,
            "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost",
            "-cert", str(client.cert), "-key", str(client.key), "-client_sigalgs", SIGALGS[scheme], "-ign_eof",
        ]  # fmt: skip
        result = subprocess.run(
            command, input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            capture_output=True, timeout=TIMEOUT,
        )  # fmt: skip
        record = last_record(server)
    assert result.returncode == 0, result.stderr
    assert b"HTTP/1.1 200 OK" in result.stdout
    assert record.handshake.client_subject == client.subject
    (verify,) = sent_messages(record.transcript, CertificateVerify)
    assert verify.algorithm == scheme


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
def test_curl_with_cert_and_key(server_files, clients, key_type) -> None:
    curl = require("curl")
    client = clients[key_type]
    with our_server(server_files, require_client_certificate=True) as server:
        result = subprocess.run(
            [
                curl, "--silent", "--show-error", "--tlsv1.2", "--tls-max", "1.2", "--ciphers", CIPHER,
                "--cacert", str(server_files.ca_path), "--cert", str(client.cert), "--key", str(client.key),
                "--max-time", str(TIMEOUT), f"https://localhost:{server.port}/",
            ],
            capture_output=True, timeout=TIMEOUT + 1,
        )  # fmt: skip
        record = last_record(server)
    assert result.returncode == 0, result.stderr
    assert b"Hello from the Handshakes TLS server" in result.stdout
    assert record.client_subject == client.subject
    (verify,) = sent_messages(record.transcript, CertificateVerify)
    expected = SignatureScheme.rsa_pss_rsae_sha256 if key_type == "rsa" else SignatureScheme.ecdsa_secp256r1_sha256
    assert verify.algorithm == expected


def test_curl_without_certificate_is_refused_when_required(server_files) -> None:
    curl = require("curl")
    with our_server(server_files, require_client_certificate=True) as server:
        result = subprocess.run(
            [
                curl, "--silent", "--show-error", "--tlsv1.2", "--tls-max", "1.2", "--ciphers", CIPHER,
                "--cacert", str(server_files.ca_path), "--max-time", str(TIMEOUT), f"https://localhost:{server.port}/",
            ],
            capture_output=True, timeout=TIMEOUT + 1,
        )  # fmt: skip
        record = last_record(server)
    assert result.returncode != 0 and b"handshake failure" in result.stderr
    assert isinstance(record.error, HandshakeFailure)


# -- the command line ------------------------------------------------------------------------------
def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "handshake_lib", *args], capture_output=True, text=True, timeout=timeout
    )


def test_cli_get_with_cert_and_key_against_openssl(server_files, clients) -> None:
    require("openssl")
    client = clients["ecdsa"]
    options = ("-tls1_2", "-www", "-Verify", "1", "-CAfile", str(server_files.ca_path))
    with s_server(server_files, *options) as peer:
        result = run_cli(
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
            "--cert", str(client.cert), "--key", str(client.key),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"client certificate {client.subject}" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["tls", "get", "https://localhost:1/", "--cert", "{rsa.cert}", "--key", "{ecdsa.key}"],
            "is not the private key",
        ),
        (["tls", "get", "https://localhost:1/", "--cert", "{rsa.cert}"], "--cert and --key go together"),
        (["tls", "serve", "--port", "0", "--cert", "{server.cert}", "--key", "{server.key}", "--require-client-cert"],
         "--require-client-cert needs --client-ca"),
    ],
    ids=["key-mismatch", "cert-without-key", "require-without-ca"],
)
def test_cli_refuses_bad_mutual_tls_options_in_one_line(server_files, clients, args, message) -> None:
    values = {
        "{rsa.cert}": str(clients["rsa"].cert), "{ecdsa.key}": str(clients["ecdsa"].key),
        "{server.cert}": str(server_files.cert_path), "{server.key}": str(server_files.key_path),
    }  # fmt: skip
    result = run_cli(*(values.get(arg, arg) for arg in args))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_serve_logs_the_client_subject(server_files, clients, tmp_path) -> None:
    import signal
    import sys

    client = clients["rsa"]
    process = subprocess.Popen(
        [sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0", "--cert", str(server_files.cert_path),
         "--key", str(server_files.key_path), "--client-ca", str(server_files.ca_path), "--require-client-cert"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = process.stdout.readline()
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        python_client(server_files, port, client)
        line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    assert f"client certificate {client.subject}" in line, line



def test_replay_walks_a_mutual_tls_transcript_through_both_tables(course_pki, server_certificate, clients) -> None:
    from handshake_lib.tls.states import replay

    client, server = memory_pair(course_pki, server_certificate, client=clients["rsa"])
    handshake_in_memory(client, server)
    # One state per record: ClientHello, our four messages, then the client's Certificate, ClientKeyExchange,
    # CertificateVerify, ChangeCipherSpec, Finished, and our ChangeCipherSpec and Finished.
    assert [state.value for state in replay("server", server.transcript)] == [
        *["WAIT_CLIENT_CERTIFICATE"] * 5,
        "WAIT_CLIENT_KEY_EXCHANGE", "WAIT_CERTIFICATE_VERIFY", "WAIT_CHANGE_CIPHER_SPEC", "WAIT_FINISHED",
        *["CONNECTED"] * 3,
    ]  # fmt: skip
    client_states = [state.value for state in replay("client", client.transcript)]
    assert client_states[:5] == [
        "WAIT_SERVER_HELLO", "WAIT_CERTIFICATE", "WAIT_SERVER_HELLO_DONE", "CERTIFICATE_REQUESTED",
        "WAIT_CHANGE_CIPHER_SPEC",
    ]  # fmt: skip
    assert client_states[-1] == "CONNECTED"


def test_the_client_sends_its_intermediates_too(course_pki, server_certificate, clients) -> None:
    leaf = clients["ecdsa"].issued
    extra = course_pki.root.certificate  # stands in for an intermediate: sent, and the path still builds
    client = TLSClient(
        "localhost", trusted_certificates=[course_pki.root.certificate],
        client_certificate_chain=[leaf.certificate, extra], client_private_key=leaf.private_key,
    )  # fmt: skip
    server = TLSServer(
        [server_certificate.der], server_certificate.private_key, client_ca=[course_pki.root.certificate]
    )
    handshake_in_memory(client, server)
    received = sent_messages(server.transcript, Certificate)[1]  # ours first, then the client's
    assert len(received.certificates) == 2
    assert server.handshake.client_subject == clients["ecdsa"].subject


def test_client_ca_names_over_a_certificate_request_are_refused(server_certificate) -> None:
    """RFC 5246 7.4.4: certificate_authorities is a vector of at most 65,535 bytes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cas = []
    for number in range(3):  # three names of ~30 KB each
        name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, f"{number}" + "u" * 30000)])
        cas.append(
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(number + 1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )  # fmt: skip
    TLSServer([server_certificate.der], server_certificate.private_key, client_ca=cas[:2])  # 60 KB: fits
    with pytest.raises(ValueError, match="at most 65535"):
        TLSServer([server_certificate.der], server_certificate.private_key, client_ca=cas)


def test_our_client_without_certificate_against_openssl_optional(server_files) -> None:
    require("openssl")
    with s_server(server_files, "-tls1_2", "-www", "-verify", "1", "-CAfile", str(server_files.ca_path)) as peer:
        response = tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=TIMEOUT)
    assert response.status == 200 and response.handshake.client_subject is None
    assert [m.certificates for m in sent_messages(response.transcript, Certificate)][1] == []


@pytest.fixture(scope="module")
def ed25519_client(course_pki, tmp_path_factory) -> ClientFiles:
    """An Ed25519 client certificate (RFC 8422 brings Ed25519 to TLS 1.2), issued by hand: the builder makes
    RSA and ECDSA keys only."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519

    rsa_like = course_pki.issue_client("erin-ed25519")  # the same extensions, re-signed over an Ed25519 key
    key = ed25519.Ed25519PrivateKey.generate()
    template = rsa_like.certificate
    builder = (
        x509.CertificateBuilder().subject_name(template.subject).issuer_name(template.issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc).not_valid_after(template.not_valid_after_utc)
    )  # fmt: skip
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    issued = IssuedCertificate(builder.sign(course_pki.root.private_key, hashes.SHA256()), key)
    cert, key_path = CoursePKI.write_issued(issued, tmp_path_factory.mktemp("ed25519"), "erin")
    return ClientFiles(cert, key_path, issued)


def test_ed25519_client_certificate_both_ways(server_files, ed25519_client) -> None:
    openssl = require("openssl")
    options = ("-tls1_2", "-www", "-Verify", "1", "-verify_return_error", "-CAfile", str(server_files.ca_path))
    with s_server(server_files, *options) as peer:
        response = tls_get(
            f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=TIMEOUT,
            **client_options(ed25519_client),
        )  # fmt: skip
    (verify,) = sent_messages(response.transcript, CertificateVerify)
    assert response.status == 200 and verify.algorithm == SignatureScheme.ed25519
    with our_server(server_files, require_client_certificate=True) as server:
        result = subprocess.run(
            [
                openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_2", "-cipher", CIPHER,
                "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost",
                "-cert", str(ed25519_client.cert), "-key", str(ed25519_client.key), "-ign_eof",
            ],
            input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", capture_output=True,
            timeout=TIMEOUT,
        )  # fmt: skip
        record = last_record(server)
    assert result.returncode == 0, result.stderr
    assert record.client_subject == ed25519_client.subject
    (verify,) = sent_messages(record.transcript, CertificateVerify)
    assert verify.algorithm == SignatureScheme.ed25519


def test_a_client_certificate_stays_home_when_the_server_does_not_ask(course_pki, server_certificate, clients) -> None:
    client = TLSClient(
        "localhost", trusted_certificates=[course_pki.root.certificate], **client_options(clients["rsa"])
    )
    server = TLSServer([server_certificate.der], server_certificate.private_key)
    handshake_in_memory(client, server)
    assert client.handshake.client_certificates == () and server.handshake.client_subject is None
    assert len(sent_messages(client.transcript, Certificate)) == 1  # the server's only
