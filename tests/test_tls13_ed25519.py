"""An Ed25519 identity in TLS 1.3 (RFC 8446's ``ed25519`` scheme), with OpenSSL 3.0 on the other end both ways.

TLS 1.2's suites name the key that authenticates (RSA or ECDSA), so only TLS 1.3 can use an Ed25519
certificate: our server signs its CertificateVerify with it and Python ``ssl``'s client (OpenSSL) must accept
the signature and the chain; OpenSSL's server signs with one and our client must verify it.  Both ends' key
logs must hold the same secrets, so the handshake really is the same one.
"""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import pytest

from handshake_lib.pki import CoursePKI
from handshake_lib.tls.client13 import TLS13Client
from handshake_lib.tls.constants import SignatureScheme
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.server13 import TLS13Server


@pytest.fixture(scope="module")
def ed25519_files(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost",), key_type="ed25519")
    folder = tmp_path_factory.mktemp("ed25519")
    cert, key = CoursePKI.write_issued(issued, folder)
    return pki, issued, pki.write_ca(folder), cert, key, folder


def _pump(ours, theirs: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *, we_start: bool) -> None:  # type: ignore[no-untyped-def]
    if we_start:
        ours.start()
    for _ in range(8):
        sent = ours.data_to_send()
        if sent:
            incoming.write(sent)
        with contextlib.suppress(ssl.SSLWantReadError):
            theirs.do_handshake()
        back = outgoing.read()
        if back:
            ours.receive_data(back)
        if not sent and not back:
            break


def test_our_server_signs_with_ed25519_and_openssl_accepts(ed25519_files) -> None:  # type: ignore[no-untyped-def]
    pki, issued, ca, _, _, folder = ed25519_files
    lines: list[str] = []
    server = TLS13Server([issued.der], issued.private_key, keylog=lines.append)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.keylog_filename = str(folder / "client.keys")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    for _ in range(6):  # the Python client starts; our server answers
        with contextlib.suppress(ssl.SSLWantReadError):
            client.do_handshake()
        sent = outgoing.read()
        if sent:
            server.receive_data(sent)
        incoming.write(server.data_to_send())
    assert client.version() == "TLSv1.3"  # OpenSSL verified our Ed25519 CertificateVerify and chain
    assert server.handshake is not None and server.signature_scheme == SignatureScheme.ed25519
    text = Path(folder / "client.keys").read_text()
    theirs = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    assert set(lines) == theirs


def test_our_client_verifies_openssls_ed25519_signature(ed25519_files) -> None:  # type: ignore[no-untyped-def]
    pki, issued, _, cert, key, folder = ed25519_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.keylog_filename = str(folder / "server.keys")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(incoming, outgoing, server_side=True)
    lines: list[str] = []
    client = TLS13Client("localhost", trusted_certificates=[pki.root.certificate], keylog=lines.append)
    _pump(client, server, incoming, outgoing, we_start=True)
    assert client.handshake is not None and client.handshake.signature_scheme == SignatureScheme.ed25519
    assert client.server_certificates[0] == issued.certificate
    theirs = read_keylog(folder / "server.keys")
    for line in lines:
        label, random, secret = line.split()
        assert theirs.find(label, bytes.fromhex(random)) == bytes.fromhex(secret), label
