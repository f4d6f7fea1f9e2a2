"""Handshake messages cut across records, and several messages in one record (RFC 5246 section 6.2.1).

Record boundaries mean nothing to the handshake: a sender may cut a message wherever it likes, and a
receiver must put it back together.  These tests cut on purpose, in both directions:

* core to core, down to one byte per record, for every suite (our reassembly against our cutting);
* our client cutting its flight into small records, and OpenSSL (Python's ``ssl``) putting it back
  together: the handshake completes and OpenSSL's key log holds our master secret;
* our server cutting its Certificate into pieces for an OpenSSL client;
* ``openssl s_server -max_send_frag 512`` cutting *its* flight (the Certificate does not fit one
  record) for our client to reassemble.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from conftest import require

from handshake_lib import net
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import openssl_server, s_server
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls import TLSClient, TLSServer
from handshake_lib.tls.connection import HandshakeComplete, TranscriptEntry
from handshake_lib.tls.constants import OPENSSL_NAMES, ContentType, HandshakeType
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.messages import Certificate
from handshake_lib.tls.record import RecordLayer

SUITES = ["AES128-SHA256", "AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384"]
PROCESS_TIMEOUT_S = 20


def handshake_records(transcript: list[TranscriptEntry], direction: str) -> list[TranscriptEntry]:
    return [e for e in transcript if e.direction == direction and e.content_type == ContentType.handshake]


def largest_fragment(entries: list[TranscriptEntry]) -> int:
    return max(len(entry.plaintext) for entry in entries)


# -- the record layer alone ---------------------------------------------------------------------------
def test_fragment_size_cuts_records_and_is_bounded() -> None:
    layer = RecordLayer(fragment_size=5)
    sent = layer.records_for(ContentType.handshake, bytes(range(12)))
    assert [s.plaintext for s in sent] == [bytes(range(5)), bytes(range(5, 10)), bytes(range(10, 12))]
    assert all(s.wire[:3] == b"\x16\x03\x03" and s.wire[5:] == s.plaintext for s in sent)
    # An alert is never cut, whatever the size: OpenSSL (and our own reader) want it whole.
    whole = RecordLayer(fragment_size=1)
    assert [s.plaintext for s in whole.records_for(ContentType.alert, b"\x02\x28")] == [b"\x02\x28"]
    for bad in (0, (1 << 14) + 1):
        with pytest.raises(ValueError, match="fragment_size"):
            RecordLayer(fragment_size=bad)
    # The bounds themselves are allowed: one byte, and RFC 5246's 2^14.
    largest = RecordLayer(fragment_size=1 << 14).records_for(ContentType.application_data, bytes((1 << 14) + 1))
    assert [len(s.plaintext) for s in largest] == [1 << 14, 1]


# -- core to core -------------------------------------------------------------------------------------
def run_cores(client: TLSClient, server: TLSServer) -> None:
    client.start()
    for _ in range(20):  # a handshake is two round trips; twenty turns means something is stuck
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            client.receive_data(to_client)
        if client.handshake is not None and server.handshake is not None:
            return
    pytest.fail("the handshake did not complete")


@pytest.mark.parametrize("suite_name", SUITES)
@pytest.mark.parametrize("fragment_size", [1, 7, 300])
def test_cores_reassemble_each_other_cut_to_any_size(
    server_files: ServerFiles, suite_name: str, fragment_size: int
) -> None:
    suite = OPENSSL_NAMES[suite_name]
    client = TLSClient("localhost", cafile=server_files.ca_path, cipher_suites=[suite], fragment_size=fragment_size)
    server = TLSServer(
        [server_files.issued.der], server_files.issued.private_key, cipher_suites=[suite], fragment_size=fragment_size
    )
    run_cores(client, server)
    assert client.handshake == server.handshake and client.handshake.cipher_suite == suite

    # The server's Certificate alone needs this many records; every record respects the size.
    certificate = len(Certificate([server_files.issued.der]).to_bytes())
    from_server = handshake_records(server.transcript, "server->client")
    assert len(from_server) >= -(-certificate // fragment_size)
    assert largest_fragment(from_server) <= fragment_size
    assert largest_fragment(handshake_records(client.transcript, "client->server")) <= fragment_size

    # Application data is cut the same way, and arrives whole; so does close_notify, in one record.
    page = bytes(range(256)) * 4
    server.send_application_data(page)
    events = client.receive_data(server.data_to_send())
    assert b"".join(e.data for e in events) == page
    assert len(events) == -(-len(page) // fragment_size)
    server.close()
    closing = client.receive_data(server.data_to_send())
    assert [type(e).__name__ for e in closing] == ["AlertReceived", "ConnectionClosed"]


# -- against OpenSSL ----------------------------------------------------------------------------------
@pytest.mark.parametrize("suite_name", SUITES)
def test_openssl_server_reassembles_our_small_records(suite_name: str) -> None:
    with openssl_server(suite_name) as peer:
        response = tls_get(peer.url, cafile=peer.cafile, fragment_size=64)
        openssl_secret = peer.master_secret(response.handshake.client_random)
    assert response.status == 200 and b"Hello from OpenSSL" in response.body
    ours = handshake_records(response.transcript, "client->server")
    # ClientHello, ClientKeyExchange (RSA-2048: 262 bytes) and Finished, in 64-byte pieces.
    assert len(ours) >= 7 and largest_fragment(ours) == 64
    assert openssl_secret == response.handshake.master_secret


@pytest.mark.parametrize("suite_name", ["AES128-SHA", "AES256-GCM-SHA384"])
def test_openssl_client_reassembles_our_cut_certificate(
    server_files: ServerFiles, tmp_path: Path, suite_name: str
) -> None:
    context = ssl.create_default_context(cafile=str(server_files.ca_path))
    context.set_ciphers(suite_name)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.keylog_filename = str(tmp_path / "openssl.log")
    with (
        TLSPageServer(
            [server_files.issued.der], server_files.issued.private_key, fragment_size=100, keep_transcripts=True
        ) as server,
        net.connect("127.0.0.1", server.port) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
        cipher = tls.cipher()[0]
    assert response.startswith(b"HTTP/1.1 200 OK") and cipher == suite_name
    served = server.connections[0]
    assert served.error is None
    sent = handshake_records(served.transcript, "server->client")
    assert len(sent) > len(server_files.issued.der) // 100 and largest_fragment(sent) == 100
    logged = read_keylog(tmp_path / "openssl.log").master_secret(served.handshake.client_random)
    assert logged == served.handshake.master_secret


@pytest.mark.peer
def test_our_client_reassembles_openssl_s_server_cut_at_512_bytes(server_files: ServerFiles) -> None:
    require("openssl", "s_server cuts its own records with -max_send_frag")
    options = ["-tls1_2", "-www", "-naccept", "1", "-max_send_frag", "512"]
    with s_server(server_files, *options, timeout=PROCESS_TIMEOUT_S) as peer:
        response = tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path, timeout=PROCESS_TIMEOUT_S)
    assert response.status == 200 and isinstance(response.handshake, HandshakeComplete)
    received = handshake_records(response.transcript, "server->client")
    # OpenSSL filled 512-byte records: the Certificate (over 700 bytes) started in one and ended in another.
    assert largest_fragment(received) == 512
    certificate_records = [e for e in received if any(isinstance(m, Certificate) for m in e.messages)]
    assert len(certificate_records) == 1  # listed in the record where it was completed...
    index = received.index(certificate_records[0])
    certificate = next(m for m in certificate_records[0].messages if isinstance(m, Certificate)).to_bytes()
    assert certificate[0] == HandshakeType.certificate
    before = received[index - 1].plaintext
    # ...which is not the record where it began: that one holds its first bytes, but not all of them.
    assert index > 0 and len(before) == 512
    assert certificate[:40] in before and certificate not in before
